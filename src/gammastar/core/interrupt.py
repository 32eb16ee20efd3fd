"""SIGINT and SIGTERM as exceptions, and the stage a command is in.

The command line (:func:`gammastar.cli.main`) turns SIGINT and SIGTERM into
:class:`Interrupted`, raised where the main thread is, so that every ``finally`` and
``except BaseException`` on the way out runs: temporary files are removed
(:func:`gammastar.core.artifacts.atomic_paths`), executors and clusters closed, the run
directory's lock released. The command then prints one line naming the interrupted stage
(:func:`stage`, :func:`current_stage`) and exits with ``128 + signal`` (130, 143), as a shell
reports a process killed by that signal. A second signal during that clean-up exits at once.
An interruption that Python swallows where it cannot propagate (raised inside a weakref
callback or ``__del__``, such as the import system's module-lock callbacks) is raised again at
the next call or return, or as the block ends, instead of being lost.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Literal

SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""The signals turned into :class:`Interrupted`."""

_STAGES: list[str] = []
_RECEIVED: list[Interrupted] = []
_ARMED: list[Interrupted] = []  # swallowed, to be raised again (_redeliver)


class Interrupted(BaseException):
    """The process received SIGINT or SIGTERM (a ``BaseException``, like
    :class:`KeyboardInterrupt`: ``except Exception`` does not swallow it).

    Attributes:
        signum: the signal number.
        status: the exit status a shell reports for it, ``128 + signum``.
        stage: the stage running when it arrived (:func:`current_stage`).
    """

    def __init__(self, signum: int, stage: str | None = None) -> None:
        self.signum = int(signum)
        self.status = 128 + self.signum
        self.stage = stage
        super().__init__(signal.Signals(self.signum).name)

    @property
    def name(self) -> str:
        """``"SIGINT"`` or ``"SIGTERM"``."""
        return signal.Signals(self.signum).name


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    """Mark the code inside as stage ``name`` (what an interruption message names)."""
    _STAGES.append(name)
    try:
        yield
    finally:
        _STAGES.pop()


def current_stage() -> str | None:
    """The innermost stage running now, or ``None``."""
    return _STAGES[-1] if _STAGES else None


def _again(signum: int, frame: object) -> None:
    os._exit(128 + signum)  # a second signal while cleaning up: stop at once


def _raise(signum: int, frame: object) -> None:
    for s in SIGNALS:
        signal.signal(s, _again)
    exc = Interrupted(signum, current_stage())
    _RECEIVED.append(exc)
    raise exc


def _redeliver(unraisable: object, previous: object) -> None:
    """``sys.unraisablehook`` inside :func:`signals_as_exceptions`.

    An :class:`Interrupted` that Python could only report as "Exception ignored in ..."
    (raised in a weakref callback, a finaliser or ``__del__``) is raised again at the next
    call or return of the main code, once this hook has returned (a one-shot
    :func:`sys.setprofile`, which Python removes when it raises: a profiler active then, such
    as cProfile, is dropped as the command stops), or, when the block ends first, as it
    ends, instead of letting the command run to its end. Raising it here, or signalling again
    from here, would only be swallowed once more. Any other unraisable exception goes to the
    previous hook.

    Where that next call is the next finaliser of the same cascade (objects freed together),
    the interruption is raised, and swallowed, there too and armed again: those finalisers'
    bodies are cut short, as a signal arriving in each would cut it.
    """
    exc = getattr(unraisable, "exc_value", None)
    if not isinstance(exc, Interrupted):
        previous(unraisable)  # type: ignore[operator]
        return
    if exc in _RECEIVED:
        _RECEIVED.remove(exc)
    _ARMED[:] = [exc]
    inside = {
        _redeliver.__code__,
        _Signals.unraisable.__code__,  # ours, even where another hook wraps it,
        getattr(sys.unraisablehook, "__code__", None),  # and that one
        _disarm.__code__,
        _Signals.__exit__.__code__,  # the block's end restores first, then raises it
    }

    def deliver(frame, event, arg):  # the profiler's signature
        if frame.f_code in inside:
            return
        _ARMED.clear()
        _raise(exc.signum, frame)  # Python unsets the profiler on the way out

    sys.setprofile(deliver)


def _disarm() -> Interrupted | None:
    """The interruption :func:`_redeliver` armed and not yet raised (now received), the
    profiler removed; ``None`` when there is none."""
    if not _ARMED:
        return None
    exc = _ARMED.pop()
    sys.setprofile(None)
    _RECEIVED.append(exc)
    return exc


def received() -> Interrupted | None:
    """The interruption raised inside :func:`signals_as_exceptions`, if one was, even when
    a library turned it into another exception on its way out (a C extension's module
    initialisation reports any exception as ``ImportError: initialization failed``)."""
    return _RECEIVED[-1] if _RECEIVED else None


class _Signals:
    """The context manager of :func:`signals_as_exceptions` (a class, not a generator: its
    exit restores the handlers and the hook even when an interruption is raised as the block
    ends, and a generator's ``finally`` would then wait for the garbage collector)."""

    def __enter__(self) -> None:
        self.active = threading.current_thread() is threading.main_thread()
        if not self.active:
            return
        self.previous = {s: signal.getsignal(s) for s in SIGNALS}
        self.hook = sys.unraisablehook
        _RECEIVED.clear()
        _ARMED.clear()
        for s in SIGNALS:
            signal.signal(s, _raise)
        sys.unraisablehook = self.unraisable

    def unraisable(self, unraisable: object) -> None:
        """The ``sys.unraisablehook`` installed inside: :func:`_redeliver`."""
        _redeliver(unraisable, self.hook)

    def __exit__(self, exc_type: object, exc: object, tb: object) -> Literal[False]:
        if not self.active:
            return False
        armed = _disarm()
        sys.unraisablehook = self.hook
        for s, h in self.previous.items():
            signal.signal(s, h)
        if armed is not None and exc_type is None:
            raise armed  # swallowed just before the block ended: raised as it ends
        return False


def signals_as_exceptions() -> _Signals:
    """Inside, SIGINT and SIGTERM raise :class:`Interrupted` (main thread only; elsewhere
    a no-op); the previous handlers and ``sys.unraisablehook`` are restored on exit.

    Example:
        >>> with signals_as_exceptions():
        ...     signal.getsignal(signal.SIGTERM) is _raise
        True
        >>> signal.getsignal(signal.SIGTERM) is _raise
        False
    """
    return _Signals()


def message(exc: Interrupted, command: str | None = None) -> str:
    """The one line printed for an interruption.

    Example:
        >>> message(Interrupted(signal.SIGTERM), "select")  # doctest: +NORMALIZE_WHITESPACE
        "interrupted by SIGTERM during stage 'select': its outputs were not replaced and its
        temporary files removed; a rerun redoes it"
    """
    where = exc.stage or current_stage() or command
    during = f" during stage {where!r}" if where else ""
    return (
        f"interrupted by {exc.name}{during}: its outputs were not replaced and its temporary "
        "files removed; a rerun redoes it"
    )
