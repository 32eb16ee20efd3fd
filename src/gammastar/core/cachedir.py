"""Where gammastar caches what it computes once per machine (the pair-acceptance tables, the
PDG masses and branching fractions, the efficiency maps as read): :func:`cache_dir`,
:func:`cache_path`, the atomic writer :func:`store` and :func:`cached_json`, a value cached
per version of the package it comes from."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from typing import IO, Any, TypeVar

T = TypeVar("T")


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


def cached_json(
    folder: str,
    package: str,
    compute: Callable[[], T],
    encode: Callable[[T], Any],
    decode: Callable[[Any], T | None],
) -> T:
    """``compute()``, cached as JSON per installed version of ``package`` (where the value
    comes from) in ``<cache_dir>/<folder>/<package>-<version>.json``.

    ``encode`` makes the value JSON-ready; ``decode`` gives it back from the file's JSON, or
    ``None`` for an incomplete entry. A missing, unreadable, damaged or incomplete entry is
    computed again and rewritten (atomically, :func:`store`); without a cache, or without
    ``package``'s metadata, nothing is stored.
    """
    import json
    from importlib.metadata import PackageNotFoundError, version

    try:
        path = cache_path(folder, f"{package}-{version(package)}.json")
    except PackageNotFoundError:
        path = None
    if path is not None:
        try:
            with open(path, encoding="utf-8") as f:
                got = decode(json.load(f))
            if got is not None:
                return got
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            pass
    out = compute()
    if path is not None:
        text = json.dumps(encode(out)).encode("utf-8")

        def write(f: IO[bytes]) -> None:
            f.write(text)

        store(path, write)
    return out
