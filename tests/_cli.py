"""Test helper: ``gammastar ARGS`` through the CLI's entry point in the test's process, for the
tests whose subject is not the process boundary (exit statuses of a real process, signals and
the environment: tests/test_reliability.py runs those as processes)."""

from __future__ import annotations

import contextlib
import io
from typing import NamedTuple


class CliRun(NamedTuple):
    """A command's exit status and what it printed."""

    status: int
    stdout: str
    stderr: str


def main_in_process(*args: str) -> CliRun:
    """``gammastar ARGS`` by :func:`gammastar.cli.main` in this process, its output captured."""
    from gammastar.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        status = main(list(args))
    return CliRun(status, out.getvalue(), err.getvalue())
