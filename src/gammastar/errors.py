"""User-facing errors: one clear line naming the file, branch or config key."""

from __future__ import annotations


class GammastarError(Exception):
    """An error caused by the user's input (file, branch, config key, option).

    The command line prints ``str(error)`` on one line and exits with status 2;
    no library traceback is shown. Raise it (or a subclass) with a message that
    names the offending file, branch or key.
    """


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
