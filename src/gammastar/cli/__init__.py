"""The ``gammastar`` command line: one sub-command per stage, one for the whole chain.

Each stage has its command in its own module (``gammastar.cli.<stage>``; the shared options
in :mod:`gammastar.cli.options`); :func:`_register` adds them to :data:`app` from one table,
and heavy imports happen inside the commands so that ``--help`` is fast.
Every failure prints one line (``GAMMASTAR_DEBUG=1`` adds the traceback): bad input
(:class:`~gammastar.errors.GammastarError`) exits with 2, the environment (no space, quota,
permission, read-only filesystem, a run directory held by another writer) with 1, SIGINT
with 130 and SIGTERM with 143 (:mod:`gammastar.core.interrupt`). Commands that write into a run
directory hold its lock (:func:`lock_run`, :mod:`gammastar.core.runlock`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer

from gammastar.core.urls import redact
from gammastar.errors import ChunkError, GammastarError

HELP = """Data-driven dark-photon and millicharged-particle predictions from dilepton data.

Start with the demo: `gammastar run analysis/na60_like_both.yaml` in a clone of the
repository (or `make demo`, which installs first) runs every stage on NA60-like mock data
into runs/na60_like_both/ and writes its report.html. `gammastar COMMAND --help` lists a
command's options; every command takes the analysis YAML file as its argument.

Documentation: docs/index.md in the repository (tutorials, how-to guides, the config and
command references); `make docs` builds it as a site.
"""

app = typer.Typer(
    name="gammastar",
    help=HELP,
    # Markdown: a docstring's lines are joined into paragraphs and `code` is set off
    rich_markup_mode="markdown",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@functools.cache
def _register() -> None:
    """Add every command to :data:`app`, once, in workflow order (``--help`` lists them in
    this order). The command modules keep their heavy imports inside the commands."""
    from gammastar.cli import (
        events,
        export,
        flow,
        generate,
        idm,
        mcp,
        reach,
        report,
        run,
        select,
        yields,
    )

    commands: tuple[tuple[str, Callable[..., None]], ...] = (
        ("run", run.run_command),
        ("generate", generate.generate_command),
        ("select", select.select_command),
        ("yields", yields.yields_command),
        ("train", flow.train_command),
        ("sample", flow.sample_command),
        ("validate", flow.validate_command),
        ("reach", reach.reach_command),
        ("acceptance", reach.acceptance_command),
        ("report", report.report_command),
        ("events", events.events_command),
        ("export", export.export_command),
        ("reach-idm", idm.reach_idm_command),
        ("reach-mcp", mcp.reach_mcp_command),
    )
    for name, func in commands:
        app.command(name)(func)


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        from gammastar import __version__

        typer.echo(__version__)
        raise typer.Exit()


def _command(argv: list[str] | None) -> str | None:
    """The sub-command of a command line (the first argument that is not an option)."""
    args = sys.argv[1:] if argv is None else argv
    return next((a for a in args if not a.startswith("-")), None)


def _fail(text: str, status: int) -> int:
    typer.echo(f"gammastar: error: {redact(text)}", err=True)  # no URL's credentials
    return status


@contextlib.contextmanager
def _redacted_logs() -> Iterator[None]:
    """Every log record of the command (the package's and the libraries') made with the
    credentials of the URLs in its message hidden (:func:`gammastar.core.urls.redact`)."""
    make = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record: logging reports it itself
            return record
        if "://" in text:
            record.msg, record.args = redact(text), None
        return record

    logging.setLogRecordFactory(factory)
    try:
        yield
    finally:
        logging.setLogRecordFactory(make)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gammastar`` script: the exit status of the command.

    0 success; 2 bad input (:class:`~gammastar.errors.GammastarError`); 1 the environment
    (:class:`~gammastar.errors.EnvironmentFailure`, an ``OSError`` such as no space left) or an
    unexpected error; 130 SIGINT, 143 SIGTERM. Every failure is one line on standard error;
    ``GAMMASTAR_DEBUG=1`` re-raises it with its traceback.

    Called as the script (``argv`` ``None``), the process ends after it: the objects loaded
    by then are frozen out of the garbage collector (``gc.freeze``), so that the
    interpreter's final collections do not walk every object of the libraries a command
    loaded (torch, pyhf, vector and what they import).
    """
    try:
        return _main(argv)
    finally:
        if argv is None:
            import gc

            gc.freeze()


def _main(argv: list[str] | None) -> int:
    """:func:`main`'s command and its exit status."""
    from gammastar.core import interrupt, runlock

    _register()
    debug = bool(os.environ.get("GAMMASTAR_DEBUG"))
    hint = " (GAMMASTAR_DEBUG=1 shows the traceback)"
    command = _command(argv)
    try:
        with interrupt.signals_as_exceptions(), warnings.catch_warnings(), _redacted_logs():
            if not debug:  # a library's warning: one line, not its source line
                warnings.showwarning = _warning_line
            try:
                status = app(args=argv, standalone_mode=False)
            finally:
                runlock.release_all()
    except interrupt.Interrupted as exc:
        typer.echo(f"gammastar: {interrupt.message(exc, command)}", err=True)
        return exc.status
    except Exception as exc:
        # a signal whose Interrupted a library turned into another exception (an import
        # running when it arrived): still the interruption, 128 + signal
        if (sig := interrupt.received()) is not None:
            typer.echo(f"gammastar: {interrupt.message(sig, command)}", err=True)
            return sig.status
        status = _report(exc, debug, hint)
        if status is None:  # GAMMASTAR_DEBUG: the traceback
            raise
        return status
    except KeyboardInterrupt:  # signals_as_exceptions not active (not the main thread)
        typer.echo("gammastar: interrupted; a rerun redoes it", err=True)
        return 130
    except SystemExit as exc:  # typer.Exit
        return int(exc.code or 0)
    return status if isinstance(status, int) else 0


def _warning_line(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """``warnings.showwarning`` of the command line: one line naming the warning's class and
    the package that raised it (``GAMMASTAR_DEBUG=1``: Python's own text, with file and line)."""
    text = str(message).splitlines()[0] if str(message) else ""
    parts = Path(filename).with_suffix("").parts
    site = next((p for p in reversed(parts[:-1]) if p.endswith("-packages")), None)
    origin = parts[parts.index(site) + 1] if site else Path(filename).stem
    typer.echo(f"gammastar: warning: {redact(text)} ({category.__name__} in {origin})", err=True)


def _report(exc: Exception, debug: bool, hint: str) -> int | None:
    """The one line and exit status of an exception (``None``: re-raise it, debug)."""
    from gammastar.core.artifacts import ENVIRONMENT_ERRNOS, os_error_text

    # Usage errors of the (possibly vendored) click inside typer: show them like click does.
    if hasattr(exc, "show") and hasattr(exc, "exit_code"):
        exc.show()
        return int(exc.exit_code)
    if type(exc).__name__ in {"Exit", "Abort"}:
        return int(getattr(exc, "exit_code", 1))
    if debug:
        return None
    if isinstance(exc, GammastarError):
        return _fail(str(exc), int(getattr(exc, "exit_status", 2)))
    if isinstance(exc, ChunkError):
        return _fail(f"{exc}{hint}", 1)
    if isinstance(exc, OSError):
        where = exc.filename if exc.filename is not None else "gammastar"
        cause = os_error_text(exc)
        if exc.errno in ENVIRONMENT_ERRNOS:
            return _fail(f"{where}: {cause}", 1)
        return _fail(f"{where}: {cause}{hint}", 1)
    if isinstance(exc, MemoryError):
        return _fail(f"out of memory{hint}", 1)
    text = str(exc).splitlines()[0] if str(exc) else ""
    return _fail(f"unexpected {type(exc).__name__}: {text[:300]}{hint}", 1)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
