"""Outputs at an fsspec URL outside the run directory (``selection.pairs_url``: the pair
dataset on object storage, XRootD or another filesystem the workers reach).

:func:`split_url` parses a URL's protocol (the one parser: the inputs' URLs too,
:mod:`gammastar.core.remote`), :func:`url_problem` checks a URL's form and protocol (the config check), :func:`filesystem`
opens its filesystem, :func:`write_bytes` writes one object atomically where the filesystem
renames (a temporary name, then a move; on object stores one PUT, which is whole or absent),
:func:`move_tree` moves a staged directory into place, :func:`read_table` reads a Parquet
file or dataset directory through pyarrow. :func:`redact` hides the credentials a URL may carry
(``user:TOKEN@``, ``?authz=``, signed query strings) wherever a URL is written or said.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
from collections.abc import Iterable, Sequence
from typing import Any

from gammastar.errors import ConfigError


def split_url(url: str) -> tuple[str, str]:
    """``(protocol, rest)`` of ``protocol://rest``, as given; ``("", "")`` without ``://``.

    Example:
        >>> split_url("root://eospublic.cern.ch//eos/x.root"), split_url("/data/x.root")
        (('root', 'eospublic.cern.ch//eos/x.root'), ('', ''))
    """
    proto, sep, rest = url.partition("://")
    return (proto, rest) if sep else ("", "")


REDACTED = "<redacted>"
"""What :func:`redact` writes in place of a credential."""

SECRET_PARAMS = frozenset({
    "authz", "token", "access_token", "refresh_token", "id_token", "bearer_token",
    "x-amz-signature", "x-amz-credential", "x-amz-security-token", "signature", "sig",
    "x-goog-signature", "x-goog-credential", "password", "passwd", "secret", "key",
    "api_key", "apikey", "xrd.gsiusrpxy", "xrd.k5ccname",
})  # fmt: skip
"""Query parameters (case-insensitive) whose values are credentials: tokens, S3/GCS/Azure
signatures, XRootD's authorisation CGI (``authz``, the grid proxy ``xrd.gsiusrpxy``)."""

_SECRET_WORDS = ("token", "secret", "passw", "signature", "credential", "authz")
"""Parts of a parameter's name that make it a credential too (``X-Auth-Token``, ...)."""

_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]+")
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")  # to the authority's last @
_PARAM = re.compile(r"([?&;])([^=&;#]+)=([^&;#]+)")


def _secret(name: str) -> bool:
    low = name.lower()
    return low in SECRET_PARAMS or any(w in low for w in _SECRET_WORDS)


def _redact_url(url: str) -> str:
    core = url.rstrip(".,:;!?)]}")  # the prose's punctuation after a URL: kept as it is
    tail = url[len(core) :]
    out = _USERINFO.sub(lambda m: f"{m.group(1)}{REDACTED}@", core, count=1)
    out = _PARAM.sub(
        lambda m: f"{m.group(1)}{m.group(2)}={REDACTED}" if _secret(m.group(2)) else m.group(0),
        out,
    )
    return out + tail


def redact(text: str) -> str:
    """``text`` with the credentials of every URL in it hidden: the userinfo (``user:TOKEN@``)
    and the values of credential-bearing query parameters (:data:`SECRET_PARAMS`, and names
    holding ``token``, ``secret``, ``signature``, ...), each replaced by :data:`REDACTED`. A
    URL or a message that names one; anything without ``://`` is returned as it is. Applied
    wherever a URL is recorded (artifacts' ``meta.inputs``, ``select.json``), logged or said
    in an error.

    Example:
        >>> redact("http://user:TOKEN@host:8000/f.root?authz=T2&x=1: not found")
        'http://<redacted>@host:8000/f.root?authz=<redacted>&x=1: not found'
        >>> redact("s3://b/f.root?X-Amz-Signature=abc&X-Amz-Expires=60")
        's3://b/f.root?X-Amz-Signature=<redacted>&X-Amz-Expires=60'
        >>> redact("/data/run/a.root")
        '/data/run/a.root'
    """
    if "://" not in text:
        return text
    return _URL.sub(lambda m: _redact_url(m.group(0)), text)


def is_url(location: str | os.PathLike[str]) -> bool:
    """Whether ``location`` is a URL (``protocol://...``) rather than a local path.

    Example:
        >>> is_url("s3://bucket/run/pairs.parquet/"), is_url("/data/run/pairs.parquet")
        (True, False)
    """
    return isinstance(location, str) and "://" in location


def url_problem(url: str, key: str, protocols: Iterable[str]) -> str | None:
    """Why ``url`` cannot hold an output (one line naming ``key``), or ``None``.

    Arguments:
        url: the URL, ``protocol://path``.
        key: the config key or option that gave it.
        protocols: the known protocols (fsspec's registry).

    Example:
        >>> url_problem("nope://x/pairs.parquet/", "selection.pairs_url", ["file", "s3"])
        "selection.pairs_url: unknown protocol 'nope' in 'nope://x/pairs.parquet/' (an fsspec protocol: file, s3, root, ...)"
    """
    proto, path = split_url(url)
    if not proto:
        return (
            f"{key}: {url!r} is not a URL (protocol://path, e.g. s3://bucket/run/pairs.parquet/ "
            "or file:///data/run/pairs.parquet/)"
        )
    if proto not in set(protocols):
        return (
            f"{key}: unknown protocol {proto!r} in {url!r} (an fsspec protocol: file, s3, "
            "root, ...)"
        )
    if not path.strip("/"):
        return f"{key}: {url!r} names no path"
    if redact(url) != url:  # select.json records this URL: no credential may be in it
        return (
            f"{key}: {redact(url)!r} carries credentials (user:password@ or a token "
            "parameter), which select.json would record: give them through the filesystem's "
            "own settings (environment, fsspec configuration)"
        )
    return None


def known_protocols() -> list[str]:
    """The protocols fsspec knows (its registry; a backend may still need its package)."""
    from fsspec.registry import known_implementations, registry

    return sorted({*known_implementations, *registry})


def check_url(url: str, key: str) -> None:
    """:func:`url_problem` against fsspec's protocols, and the protocol's backend importable.

    Raises:
        ConfigError: one line naming ``key``.
    """
    why = url_problem(url, key, known_protocols())
    if why is not None:
        raise ConfigError(why)
    filesystem(url, key)


def filesystem(url: str, key: str = "selection.pairs_url") -> tuple[Any, str]:
    """``(fsspec filesystem, path on it)`` of ``url`` (no trailing slash).

    Raises:
        ConfigError: the protocol's backend cannot be loaded (its package missing).
    """
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as err:
        msg = " ".join(str(err).split())
        raise ConfigError(f"{key}: cannot open {url!r}: {msg}") from None
    return fs, path.rstrip("/")


def join(url: str, name: str) -> str:
    """``url/name`` (URLs use ``/`` on every platform)."""
    return posixpath.join(url.rstrip("/"), name)


def exists(url: str) -> bool:
    """Whether anything exists at ``url`` (asked afresh: other processes write there)."""
    fs, path = filesystem(url)
    fs.invalidate_cache()
    return bool(fs.exists(path))


def write_bytes(url: str, data: bytes) -> None:
    """Write ``data`` as the object ``url``: under a hidden temporary name next to it (dataset
    readers skip it), then moved onto its name (a rename where the filesystem has one; on
    object stores a copy of an object that was written whole)."""
    fs, path = filesystem(url)
    parent, name = posixpath.split(path)
    tmp = posixpath.join(parent, f".{name}.{os.getpid()}.tmp")
    try:
        with fs.open(tmp, "wb") as fh:
            fh.write(data)
        fs.mv(tmp, path)
    except BaseException:
        with contextlib.suppress(Exception):
            fs.rm(tmp)
        raise


def listing(url: str) -> list[str]:
    """The names directly under the directory ``url`` (listed afresh: the workers wrote them)."""
    fs, path = filesystem(url)
    fs.invalidate_cache()
    return [posixpath.basename(p.rstrip("/")) for p in fs.ls(path, detail=False)]


def remove(url: str) -> None:
    """Remove ``url`` (a directory with everything under it); nothing there is fine."""
    fs, path = filesystem(url)
    fs.invalidate_cache()
    if fs.exists(path):
        fs.rm(path, recursive=True)


def make_dirs(url: str) -> None:
    """Create the directory ``url`` (object stores have no directories: a no-op there)."""
    fs, path = filesystem(url)
    fs.makedirs(path, exist_ok=True)


def move_tree(src: str, dst: str) -> None:
    """Move the directory ``src`` onto the free name ``dst`` (one rename on a local or POSIX
    filesystem; on object stores object by object: a reader during the move may see part of
    the parts, which is why ``select.json``, written after, marks a finished dataset)."""
    fs, s = filesystem(src)
    _, d = filesystem(dst)
    fs.mv(s, d, recursive=True)


def read_table(url: str, columns: Sequence[str] | None = None) -> Any:
    """The Parquet file or dataset directory at ``url`` as an Arrow table (the parts in name
    order; hidden and ``_`` names skipped, as for a local dataset)."""
    import pyarrow.dataset as ds

    fs, path = filesystem(url)
    dataset = ds.dataset(path, format="parquet", filesystem=fs)
    return dataset.to_table(columns=list(columns) if columns is not None else None)


def read_schema(url: str) -> Any:
    """The Arrow schema of the Parquet file or dataset directory at ``url``.

    Raises:
        FileNotFoundError: nothing there; ValueError: a directory without parts.
    """
    import pyarrow.dataset as ds

    fs, path = filesystem(url)
    if not fs.exists(path):
        raise FileNotFoundError(url)
    dataset = ds.dataset(path, format="parquet", filesystem=fs)
    if not dataset.files:
        raise ValueError("a dataset directory without parquet parts")
    return dataset.schema


__all__ = [
    "REDACTED",
    "SECRET_PARAMS",
    "check_url",
    "exists",
    "filesystem",
    "is_url",
    "join",
    "known_protocols",
    "listing",
    "make_dirs",
    "move_tree",
    "read_schema",
    "read_table",
    "redact",
    "remove",
    "split_url",
    "url_problem",
    "write_bytes",
]
