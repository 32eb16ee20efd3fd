"""User-facing errors: one clear line naming the file, branch or config key."""

from __future__ import annotations


class GammastarError(Exception):
    """An error caused by the user's input (file, branch, config key, option).

    The command line prints ``str(error)`` on one line and exits with status 2;
    no library traceback is shown. Raise it (or a subclass) with a message that
    names the offending file, branch or key.
    """

    exit_status: int = 2
    """The command line's exit status for this error (2: bad input)."""


class ConfigError(GammastarError):
    """An invalid analysis configuration (unknown key, bad value, missing file)."""


class InputError(GammastarError):
    """An unreadable or inconsistent input file (missing tree or branch, bad values)."""


class OutputExistsError(GammastarError):
    """An output exists already and ``force`` was not given."""


class ChunkError(RuntimeError):
    """A chunk of the selection failed after its input was read (a bug, a full disk, no
    memory): not a bad input file, so ``--skip-bad-files`` never skips a file for it; the
    run stops. The command line prints it on one line (exit 1; ``GAMMASTAR_DEBUG=1`` for the
    traceback)."""


class EnvironmentFailure(GammastarError):
    """The environment, not the input, stopped a command: no space left, quota exceeded,
    permission denied, read-only filesystem, a run directory held by another process.

    The command line prints it on one line, like any :class:`GammastarError`, but exits
    with status 1 (:attr:`exit_status`): rerunning with the same input can succeed once the
    environment is fixed.
    """

    exit_status = 1


class RunDirBusyError(EnvironmentFailure):
    """Another process holds the run directory's lock (:mod:`gammastar.core.runlock`)."""


class ArtifactError(InputError):
    """A run-directory artifact of an unknown schema version, or one that breaks its JSON
    Schema (:mod:`gammastar.core.rundir`): the message names the file and the failing key."""
