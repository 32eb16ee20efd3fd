"""Where gammastar caches what it computes once per machine (the pair-acceptance tables, the
PDG masses): :func:`cache_dir`, :func:`cache_path` and the atomic writer :func:`store`."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from typing import IO


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


def cache_path(*parts: str) -> str | None:
    """The path of a cache entry under :func:`cache_dir` (``None``: no cache)."""
    d = cache_dir()
    return None if d is None else os.path.join(d, *parts)


def store(path: str, write: Callable[[IO[bytes]], None]) -> None:
    """Write a cache entry atomically: ``write`` fills a temporary file in the entry's folder,
    which is then renamed over ``path`` (a reader never sees half a file, a mapped one never
    changes). An unwritable cache is skipped: it only saves time.

    Example:
        >>> import pathlib, tempfile
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "sub" / "x.bin"
        >>> store(str(p), lambda f: f.write(b"42"))
        >>> p.read_bytes()
        b'42'
    """
    folder = os.path.dirname(path)
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".part", dir=folder)
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
