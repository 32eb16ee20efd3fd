"""One writer per run directory, and the temporary files of killed writers swept.

Every command that writes into a run directory holds an exclusive ``fcntl.flock`` on
``<run>/.gammastar/lock`` for as long as it runs (:func:`acquire`); the file records the
holder's PID, host, command and start time. A second writer is refused with one line naming
the holder (:class:`~gammastar.errors.RunDirBusyError`, exit 1), or waits for it (``--wait``).
The kernel drops a lock when its process dies, however it dies; a record left behind by such
a process is a *stale* lock: the next writer takes it over and says so.

A writer that holds the lock also sweeps the temporary files that a killed writer (SIGKILL,
power loss) left in the directory (:func:`sweep`): only names of this package's own patterns
(:data:`TEMP_PATTERNS`), only at the top of the run directory and in its sub-directories
(``figures/``, ``flow/``, ``workspaces/``, ``.gammastar/``, ...), and never while another
process holds the lock. Readers (``report``, ``sample``, the Python API's loads) take no lock:
every output is renamed into place whole (:mod:`gammastar.core.artifacts`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shlex
import shutil
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gammastar.core.artifacts import ENVIRONMENT_ERRNOS, os_error_text
from gammastar.errors import EnvironmentFailure, GammastarError, RunDirBusyError

LOCK_NAME = ".gammastar/lock"
"""The lock file, relative to the run directory."""

TEMP_PATTERNS: tuple[re.Pattern[str], ...] = (
    # artifacts.atomic_paths: ".<name>.<pid>.<mkstemp 8 chars>.part" (older: no pid)
    re.compile(r"^\..+\.[a-z0-9_]{8}\.part$"),
    # artifacts.replace: ".<name>.<pid>.<mkstemp 8 chars>.old" (an old file moved aside)
    re.compile(r"^\..+\.[a-z0-9_]{8}\.old$"),
    # select's staging directory of parquet parts: ".gammastar-parts-<mkdtemp 8 chars>"
    re.compile(r"^\.gammastar-parts-[a-z0-9_]{8}$"),
)
"""Names of this package's temporary files and directories (nothing else is ever swept)."""

_PID = re.compile(r"\.(\d+)\.[a-z0-9_]{8}\.(?:part|old)$")

_HELD: dict[str, _Held] = {}
"""Locks this process holds: real path of the run directory → holder (re-entrant)."""


@dataclass
class _Held:
    fd: int
    path: Path
    depth: int = 1


def holder_record(command: str | None = None) -> dict[str, Any]:
    """What the lock file records about this process."""
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": command if command is not None else _command_line(),
        "since": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def _command_line() -> str:
    """This process's command line, ``gammastar ...`` for the package's own entry points."""
    prog = os.path.basename(sys.argv[0]) if sys.argv else ""
    args = sys.argv[1:] if prog in ("gammastar", "__main__.py") else sys.argv
    head = ["gammastar"] if prog in ("gammastar", "__main__.py") else []
    return shlex.join([*head, *args])[:300]


def describe(record: dict[str, Any] | None) -> str:
    """``"PID 123 on host 'h' (gammastar select a.yaml, since ...)"``: a lock holder in words.

    Example:
        >>> describe({"pid": 7, "host": "h", "command": "gammastar run a.yaml", "since": "t"})
        "PID 7 on host 'h' (gammastar run a.yaml, since t)"
    """
    if not record:
        return "another process (it has not recorded itself yet)"
    return (
        f"PID {record.get('pid', '?')} on host {record.get('host', '?')!r} "
        f"({record.get('command', '?')}, since {record.get('since', '?')})"
    )


def _read_record(fd: int) -> dict[str, Any] | None:
    try:
        data = os.pread(fd, 4096, 0)
        return json.loads(data) if data.strip() else None
    except (OSError, ValueError):
        return {"pid": "?", "host": "?", "command": "unreadable lock record", "since": "?"}


def _not_writable(run_dir: Path, err: OSError) -> EnvironmentFailure:
    return EnvironmentFailure(
        f"{run_dir}: cannot write into this run directory ({os_error_text(err)}); "
        "its outputs can be read (report, sample, the Python API), not written: "
        "use --output for a run directory of your own"
    )


def _open_lock(run_dir: Path) -> tuple[int, Path]:
    path = run_dir / LOCK_NAME
    try:
        if not path.parent.is_dir():  # (mkdir of an existing directory on a read-only mount: EROFS)
            path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        if run_dir.is_dir() and err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise _not_writable(run_dir, err) from None
        # no run directory: nothing in it to read either
        kind = EnvironmentFailure if err.errno in ENVIRONMENT_ERRNOS else GammastarError
        raise kind(
            f"{run_dir}: cannot create the run directory ({os_error_text(err)}); choose "
            "another with output or --output"
        ) from None
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666), path
    except OSError as err:
        if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise _not_writable(run_dir, err) from None
        kind = EnvironmentFailure if err.errno in ENVIRONMENT_ERRNOS else GammastarError
        raise kind(
            f"{path}: cannot create the run directory's lock file ({os_error_text(err)})"
        ) from None


def acquire(
    run_dir: str | os.PathLike[str],
    *,
    wait: bool = False,
    command: str | None = None,
    echo: Callable[[str], None] | None = None,
) -> Path:
    """Take the run directory's writer lock (re-entrant within a process).

    Arguments:
        run_dir: the run directory (created if missing).
        wait: wait for another holder to finish instead of refusing.
        command: what to record as the holder's command (default: this process's argv).
        echo: where the one-line notices go (waiting, a stale lock taken over); default
            standard error.

    Returns:
        The lock file.

    Raises:
        RunDirBusyError: another process holds the lock and ``wait`` is false.
        EnvironmentFailure: the run directory cannot be written (permission, read-only
            filesystem, no space).
    """
    say = echo or (lambda s: print(f"gammastar: {s}", file=sys.stderr, flush=True))
    run_dir = Path(run_dir).absolute()
    key = os.path.realpath(run_dir)
    if key in _HELD:
        _HELD[key].depth += 1
        return _HELD[key].path
    fd, path = _open_lock(run_dir)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                # a filesystem without flock (some NFS or Lustre mounts): go on, unguarded
                say(
                    f"{run_dir}: cannot lock the run directory on this filesystem "
                    f"({os.strerror(err.errno or 0)}); make sure no other command writes it"
                )
                os.close(fd)
                _HELD[key] = _Held(-1, path)  # nothing held: no sweep either
                return path
            holder = _read_record(fd)
            for _ in range(50):  # the holder writes its record right after locking
                if holder:
                    break
                time.sleep(0.01)
                holder = _read_record(fd)
            if not wait:
                raise RunDirBusyError(
                    f"{run_dir}: run directory in use by {describe(holder)}; "
                    "wait for it to finish, or add --wait"
                ) from None
            say(f"{run_dir}: waiting for {describe(holder)} to finish")
            fcntl.flock(fd, fcntl.LOCK_EX)
        stale = _read_record(fd)
        if stale and stale.get("pid") != os.getpid():
            say(
                f"{run_dir}: taking over the stale lock of {describe(stale)}, which ended "
                "without releasing it; sweeping its temporary files"
            )
        record = json.dumps(holder_record(command)).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, record + b"\n", 0)
    except BaseException:
        os.close(fd)
        raise
    _HELD[key] = _Held(fd, path)
    sweep(run_dir)
    return path


def release(run_dir: str | os.PathLike[str]) -> None:
    """Give the lock back (the outermost :func:`acquire` of this process's nesting)."""
    key = os.path.realpath(Path(run_dir).absolute())
    held = _HELD.get(key)
    if held is None:
        return
    held.depth -= 1
    if held.depth > 0:
        return
    del _HELD[key]
    if held.fd < 0:
        return
    with contextlib.suppress(OSError):
        os.ftruncate(held.fd, 0)  # an empty record: released cleanly, not stale
    with contextlib.suppress(OSError):
        fcntl.flock(held.fd, fcntl.LOCK_UN)
    os.close(held.fd)


def release_all() -> None:
    """Release every lock this process holds (the command line's exit path)."""
    for key in list(_HELD):
        _HELD[key].depth = 1
        release(key)


def holds(run_dir: str | os.PathLike[str]) -> bool:
    """Whether this process holds the lock of ``run_dir``."""
    held = _HELD.get(os.path.realpath(Path(run_dir).absolute()))
    return held is not None and held.fd >= 0


@contextlib.contextmanager
def locked(
    run_dir: str | os.PathLike[str],
    *,
    wait: bool = False,
    command: str | None = None,
    echo: Callable[[str], None] | None = None,
) -> Iterator[Path]:
    """:func:`acquire` … :func:`release` as a context manager."""
    path = acquire(run_dir, wait=wait, command=command, echo=echo)
    try:
        yield path
    finally:
        release(run_dir)


def is_temporary(name: str) -> bool:
    """Whether ``name`` is one of this package's temporary names (:data:`TEMP_PATTERNS`).

    Example:
        >>> is_temporary(".mock.root.123.k3j_x9a2.part"), is_temporary("mock.root")
        (True, False)
    """
    return any(p.match(name) for p in TEMP_PATTERNS)


def _writer_alive(name: str) -> bool:
    """Whether the PID in a temporary name is a running process on this host."""
    found = _PID.search(name)
    if not found:
        return False
    pid = int(found.group(1))
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists (another user's)
        return True
    return True


def sweep(run_dir: str | os.PathLike[str], *, depth: int = 2) -> list[Path]:
    """Remove the temporary files a killed writer left in ``run_dir``.

    Only while this process holds the directory's lock (else nothing is touched: they may be
    another writer's), only names matching :data:`TEMP_PATTERNS` whose writer's PID (in the
    name) is not a running process of this host (a lock-free writer, e.g. ``report``, may be
    writing), only ``depth`` directory levels deep (the run directory and its
    sub-directories), symbolic links never followed.

    Returns:
        The paths removed.
    """
    run_dir = Path(run_dir).absolute()
    if not holds(run_dir):
        return []
    removed: list[Path] = []

    def visit(d: Path, level: int) -> None:
        try:
            entries = list(os.scandir(d))
        except OSError:
            return
        for e in entries:
            if is_temporary(e.name) and not _writer_alive(e.name):
                p = Path(e.path)
                try:
                    if e.is_dir(follow_symlinks=False):
                        shutil.rmtree(p)
                    else:
                        p.unlink()
                    removed.append(p)
                except OSError:
                    pass
            elif level < depth and e.is_dir(follow_symlinks=False):
                visit(Path(e.path), level + 1)

    visit(run_dir, 1)
    return removed
