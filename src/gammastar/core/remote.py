"""Input files at URLs: ``root://`` (XRootD, through ``fsspec-xrootd``), ``http(s)://``,
``s3://`` and the other fsspec protocols uproot reads.

:func:`expand` lists a glob where the protocol can list (XRootD, S3, local; not HTTP),
:func:`open_root` opens a ROOT file with uproot and :func:`retrying` runs any read: each
request bounded by :data:`TIMEOUT`, a transient failure (a timeout, an unreachable host) tried
:data:`ATTEMPTS` times, and every network or access failure one
:class:`~gammastar.errors.InputError` naming the URL (:func:`failure`): the host unreachable,
the permission refused, the file missing, the request timed out.
"""

from __future__ import annotations

import functools
import os
import re
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from gammastar.core.urls import redact, split_url
from gammastar.errors import InputError

TIMEOUT = 30.0
"""Seconds one request (a connection, a read) may take before it counts as timed out."""
ATTEMPTS = 3
"""Tries of an open or a read that failed transiently (timed out, host unreachable)."""
BACKOFF = 0.5
"""Seconds before the second try; doubled before each later one."""

UNLISTABLE = frozenset({"http", "https"})
"""Protocols without a directory listing: their globs are errors (name the files)."""

T = TypeVar("T")


def protocol(url: str) -> str:
    """The URL's protocol (``root``, ``https``, ``s3``, ...).

    Example:
        >>> protocol("root://eospublic.cern.ch//eos/opendata/cms/x.root")
        'root'
    """
    return split_url(url)[0].lower()


def host(url: str) -> str:
    """The URL's ``host[:port]`` (empty for ``file://``).

    Example:
        >>> host("root://eospublic.cern.ch:1094//eos/x.root")
        'eospublic.cern.ch:1094'
    """
    return split_url(url)[1].split("/", 1)[0]


def storage_options(url: str) -> dict[str, Any]:
    """fsspec options bounding each request to ``url`` by :data:`TIMEOUT` (botocore's and
    XRootD's own retries off: :func:`retrying` retries, and says so; s3fs's: :func:`open_root`)."""
    proto = protocol(url)
    if proto in ("http", "https"):
        import aiohttp  # fsspec's HTTP backend

        limit = aiohttp.ClientTimeout(total=None, sock_connect=TIMEOUT, sock_read=TIMEOUT)
        return {"client_kwargs": {"timeout": limit}}
    if proto in ("s3", "s3a"):
        return {
            "config_kwargs": {
                "connect_timeout": TIMEOUT,
                "read_timeout": TIMEOUT,
                "retries": {"total_max_attempts": 1},
            }
        }
    if proto in ("root", "xroot"):
        _xrootd_timeouts()
    return {}


@functools.cache  # process-wide settings: once per process
def _xrootd_timeouts() -> None:
    """The XRootD client's request and connection timeouts set to :data:`TIMEOUT`, its
    connection retries to one (process-wide client settings; an ``XRD_*`` environment variable
    the user set wins)."""
    try:
        from XRootD.client import EnvPutInt
    except ImportError:  # reported when the open fails: fsspec-xrootd missing
        return
    for name, value in (
        ("RequestTimeout", TIMEOUT),
        ("StreamTimeout", TIMEOUT),
        ("ConnectionWindow", TIMEOUT),
        ("ConnectionRetry", 1),
        ("TimeoutResolution", 1),
    ):
        if f"XRD_{name.upper()}" not in os.environ:
            EnvPutInt(name, int(value))


@dataclass(frozen=True)
class Failure:
    """A network or access failure of one URL: ``kind`` (``missing``, ``permission``,
    ``unreachable``, ``timeout``), its one line, and whether another try may succeed."""

    kind: str
    text: str

    @property
    def transient(self) -> bool:
        return self.kind in ("unreachable", "timeout")


_MISSING = ("[3011]", "no such file", "nosuchkey", "nosuchbucket")
_PERMISSION = ("[3010]", "permission denied", "accessdenied", "access denied", "forbidden")
# the exception names too: uproot's fsspec source hands a failed range's exception on as its
# data, and the error raised then (a TypeError) names it only in its text
_UNREACHABLE = ("connection error", "connection refused", "could not connect", "socket error",
                "name or service not known", "invalid address", "cannot connect",
                "serverdisconnectederror", "clientconnectorerror", "clientoserror",
                "endpointconnectionerror", "connectionreseterror")  # fmt: skip
_TIMEOUT = ("operation expired", "timed out", "timeout")


def _chain(err: BaseException) -> Iterator[BaseException]:
    """``err``, its causes and contexts, and exceptions held in its arguments (aiohttp's
    connector error holds the ``OSError``)."""
    seen: set[int] = set()
    todo = [err]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo += [x for x in (e.__cause__, e.__context__) if x is not None]
        todo += [a for a in getattr(e, "args", ()) if isinstance(a, BaseException)]
        inner = getattr(e, "os_error", None)
        if isinstance(inner, BaseException):
            todo.append(inner)


def _kind(err: BaseException) -> str | None:
    """The :class:`Failure` kind of ``err`` (``None``: not a network or access failure)."""
    chain = list(_chain(err))
    for e in chain:  # typed first: the most specific evidence
        if isinstance(e, FileNotFoundError):
            return "missing"
        if isinstance(e, PermissionError):
            return "permission"
        if isinstance(e, ConnectionRefusedError | socket.gaierror):
            return "unreachable"
        if isinstance(e, TimeoutError | socket.timeout):
            return "timeout"
        status = getattr(e, "status", None)  # aiohttp's response error
        if status in (401, 403):
            return "permission"
        if status == 404:
            return "missing"
    names = {type(e).__name__ for e in chain}
    if names & {"EndpointConnectionError", "ClientConnectorError", "ServerDisconnectedError"}:
        return "unreachable"
    if names & {"ConnectTimeoutError", "ReadTimeoutError", "ServerTimeoutError"}:
        return "timeout"
    text = " ".join(str(e) for e in chain).lower()
    for kind, words in (("missing", _MISSING), ("permission", _PERMISSION),
                        ("unreachable", _UNREACHABLE), ("timeout", _TIMEOUT)):  # fmt: skip
        if any(w in text for w in words):
            return kind
    return None


def failure(url: str, err: BaseException, tries: int = 1) -> Failure | None:
    """The one-line :class:`Failure` of ``err`` raised reading ``url`` after ``tries`` tries;
    ``None`` when ``err`` is no network or access failure (a damaged file, say).

    Example:
        >>> failure("root://h//f.root", OSError("[ERROR] Server responded with an error: "
        ...     "[3010] Unable to open /f.root; permission denied")).text
        'root://h//f.root: permission refused by the server (its answer: [3010] Unable to open /f.root; permission denied)'
    """
    kind = _kind(err)
    if kind is None:
        return None
    why = _failure_text(kind, url, err, tries)
    return Failure(kind, redact(why))  # the URL without its credentials


def _failure_text(kind: str, url: str, err: BaseException, tries: int) -> str:
    again = f"; tried {tries} times" if tries > 1 else ""
    if kind == "missing":
        return f"{url}: input file not found on the server"
    if kind == "permission":
        return f"{url}: permission refused by the server (its answer: {_said(err)})"
    if kind == "unreachable":
        return f"{url}: cannot reach {_server(url)} ({_said(err)}{again})"
    return f"{url}: timed out (no answer within {TIMEOUT:g} s{again})"


def _server(url: str) -> str:
    """The server of ``url`` as a failure names it: the host, or for S3 its endpoint."""
    if protocol(url) in ("s3", "s3a"):
        return os.environ.get("AWS_ENDPOINT_URL", "the S3 endpoint")
    return host(url) or "the server"


def _said(err: BaseException) -> str:
    """The most telling line of ``err``'s chain (an XRootD server's answer, an OS error)."""
    chain = list(_chain(err))
    for e in chain:  # an HTTP answer: its status and reason
        if isinstance(getattr(e, "status", None), int) and getattr(e, "message", None):
            return f"HTTP {e.status} {e.message}"  # type: ignore[attr-defined]
    lines = [str(e).strip().splitlines()[0] for e in chain if str(e).strip()]
    text = lines[-1] if lines else type(err).__name__
    said = re.search(r"\[(?:FATAL|ERROR)\] (.*)", text)  # the XRootD client's status
    if said:
        text = said.group(1).split("Server responded with an error: ")[-1]
    handed_on = re.match(r"'(\w+)' object is not subscriptable", text)  # uproot's, see above
    return (handed_on.group(1) if handed_on else text)[:200]


def retrying(url: str, fn: Callable[[], T]) -> T:
    """``fn()``, tried again after a transient failure (up to :data:`ATTEMPTS` tries, waiting
    :data:`BACKOFF` seconds, doubled each time).

    Raises:
        InputError: a network or access failure (:func:`failure`), one line naming ``url``;
            other errors propagate as raised.
    """
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return fn()
        except InputError:  # already one line (an inner open, retried there)
            raise
        except Exception as err:
            why = failure(url, err, attempt)
            if why is None:
                raise
            if not why.transient or attempt == ATTEMPTS:
                raise InputError(why.text) from None
        time.sleep(BACKOFF * 2 ** (attempt - 1))
    raise AssertionError("unreachable")  # the loop returns or raises


def open_root(url: str) -> Any:
    """``uproot.open(url)`` with :func:`storage_options` and :func:`retrying`.

    Raises:
        InputError: a network or access failure, or the protocol's package missing (naming the
            extra to install); anything else as uproot raises it.
    """
    import uproot

    def attempt() -> Any:
        if protocol(url) in ("s3", "s3a"):
            _filesystem(url)
        if protocol(url) in ("http", "https"):
            check_ranges(url)
        return uproot.open(url, **storage_options(url))  # fresh options: the same instance

    try:
        return retrying(url, attempt)
    except ImportError as err:
        extra = " (pip install 'gammastar[xrootd]')" if protocol(url) in ("root", "xroot") else ""
        raise InputError(
            redact(f"{url}: cannot read {protocol(url)}:// URLs: {err}{extra}")
        ) from None


RANGE_PROBE = (1, 17)
"""The byte range ``[start, stop)`` :func:`check_ranges` asks for: a few bytes, not from the
file's start (a reply from the start could be a cut-off whole file)."""

_RANGES_OK: set[str] = set()
"""The HTTP URLs whose server answered :func:`check_ranges` with a range (in this process)."""


def check_ranges(url: str) -> None:
    """Refuse an HTTP(S) server that ignores byte ranges, before anything is read from it.

    uproot reads a ROOT file by ranges (the header, the directory, each basket); a server
    that answers a ``Range`` request with the whole file (Python's ``http.server``, some
    proxies) makes every read look like a damaged file. One ``GET`` of :data:`RANGE_PROBE`
    through fsspec's session for the URL (the options and credentials uproot uses) tells: a
    ``206 Partial Content``, or a body no longer than asked, passes (once per URL and
    process); a whole file is refused before its body is read. Network and access failures
    propagate as aiohttp raises them (for :func:`retrying` and :func:`failure`).

    Raises:
        InputError: the server ignores ranges (one line naming the URL without its
            credentials, and what to do).
    """
    if url in _RANGES_OK:
        return
    from fsspec.asyn import sync

    fs, path = _filesystem(url)
    start, stop = RANGE_PROBE

    async def probe() -> bool:
        session = await fs.set_session()
        headers = {"Range": f"bytes={start}-{stop - 1}", "Accept-Encoding": "identity"}
        async with session.get(fs.encode_url(path), headers=headers, **fs.kwargs) as r:
            r.raise_for_status()
            length = r.headers.get("Content-Length")
            return r.status == 206 or (length is not None and int(length) <= stop - start)

    if not sync(fs.loop, probe):
        raise InputError(
            redact(
                f"{url}: the HTTP server ignores byte ranges (it answered a request for bytes "
                f"{start}-{stop - 1} with the whole file); gammastar reads ROOT files by byte "
                "range: serve them from a range-capable HTTP server (Apache, nginx, XRootD's "
                "HTTP), read them over XRootD (root://), or copy them to a local disk"
            )
        )
    _RANGES_OK.add(url)


def _filesystem(url: str) -> tuple[Any, str]:
    """``(fsspec filesystem, path)`` of ``url``: the instance uproot will use (fsspec's cached
    one of these options, in this thread), with s3fs's own retries off (it tries a timed-out
    request five times, with waits, before :func:`retrying` would see it)."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(url, **storage_options(url))
    if protocol(url) in ("s3", "s3a"):
        fs.retries = 1
    return fs, path


def size(file: Any) -> int:
    """The byte size of an open ``uproot.ReadOnlyFile`` (``tree.file``; its source's)."""
    return int(file.source.num_bytes)


def expand(pattern: str) -> list[str]:
    """The URLs a glob ``pattern`` matches, sorted (a pattern without ``*?[`` as given).

    Raises:
        InputError: the protocol cannot list (HTTP), the glob matches nothing, or the listing
            fails (:func:`retrying`).
    """
    import glob

    rest = split_url(pattern)[1]
    path, _, query = rest.partition("?")
    if "=" not in query:  # a ? without a query string (name=value) is a glob's
        path = rest
    if not glob.has_magic(path):  # a URL's query string (?authz=...) is no glob
        return [pattern]
    if protocol(pattern) in UNLISTABLE:
        raise InputError(
            f"{redact(pattern)}: {protocol(pattern)}:// cannot list a directory, so no globs: "
            "name the files (globs work for root://, s3:// and local paths)"
        )
    fs, path = retrying(pattern, lambda: _filesystem(pattern))
    hits = retrying(pattern, lambda: sorted(fs.glob(path)))
    if not hits:
        raise InputError(f"{redact(pattern)}: the glob matches no file")
    return [fs.unstrip_protocol(h) for h in hits]


__all__ = [
    "ATTEMPTS",
    "BACKOFF",
    "RANGE_PROBE",
    "TIMEOUT",
    "UNLISTABLE",
    "Failure",
    "check_ranges",
    "expand",
    "failure",
    "host",
    "open_root",
    "protocol",
    "retrying",
    "size",
    "storage_options",
]
