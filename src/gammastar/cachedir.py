"""Where gammastar caches what it computes once per machine (the pair-acceptance tables, the
PDG masses): :func:`cache_dir`."""

from __future__ import annotations

import os


def cache_dir() -> str | None:
    """Where tables are cached: ``$GAMMASTAR_CACHE`` (empty: no cache), else
    ``$XDG_CACHE_HOME/gammastar`` or ``~/.cache/gammastar``.

    Example:
        >>> import os
        >>> os.environ["GAMMASTAR_CACHE"] = ""
        >>> cache_dir() is None
        True
        >>> del os.environ["GAMMASTAR_CACHE"]
    """
    env = os.environ.get("GAMMASTAR_CACHE")
    if env is not None:
        return env or None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "gammastar")
