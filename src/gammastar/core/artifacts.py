"""Atomic writing of artifacts and the metadata every artifact carries.

Outputs get the modes the umask allows (:func:`file_mode`: ``0666 & ~umask``; directories
``0777 & ~umask``), and a write that fails for the environment (no space, quota, permission,
read-only filesystem; whatever library wrote: torch, matplotlib/PIL, uproot, pyarrow) is one
:class:`~gammastar.errors.EnvironmentFailure` naming the output (:func:`write_failure`).
"""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import json
import math
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from gammastar._version import __version__
from gammastar.core.urls import redact
from gammastar.errors import EnvironmentFailure, GammastarError, OutputExistsError

SCHEMA_VERSION = 1
"""Version of every artifact format written by this package (``meta.schema_version``)."""


def check_writable(path: str | os.PathLike[str], force: bool = False) -> Path:
    """Check that ``path`` may be written: refuse to overwrite without ``force``.

    Arguments:
        path: the output file.
        force: allow overwriting an existing file.

    Returns:
        The path as a :class:`~pathlib.Path`, its parent directory created.

    Raises:
        OutputExistsError: the file exists and ``force`` is false.
        GammastarError: the directory cannot be created or written.
    """
    path = Path(path)
    if path.exists() and not force:
        raise OutputExistsError(f"{path}: output exists already; use --force to overwrite it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        kind = EnvironmentFailure if err.errno in ENVIRONMENT_ERRNOS else GammastarError
        raise kind(f"{path}: cannot create output directory ({os_error_text(err)})") from None
    if not os.access(path.parent, os.W_OK):
        raise EnvironmentFailure(
            f"{path}: output directory {path.parent} is not writable by you "
            f"({_owner(path.parent)}); read it, or write elsewhere with --output"
        )
    return path


ENVIRONMENT_ERRNOS: dict[int, str] = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only filesystem",
    errno.EFBIG: "file too large for the filesystem",
}
"""errno values that are the environment's fault (exit status 1), with their one-line text."""

LOW_SPACE_BYTES = 1 << 20
"""A write that failed without an errno (torch's ``basic_ios::clear``, PIL's
``AttributeError``) is reported as *no space left* when the filesystem has less than this
many bytes free for the user."""


def os_error_text(err: OSError) -> str:
    """``"no space left on device (ENOSPC)"``: the cause of an :class:`OSError` in words.

    Example:
        >>> os_error_text(OSError(errno.ENOSPC, "No space left on device"))
        'no space left on device (ENOSPC)'
    """
    code = err.errno
    name = errno.errorcode.get(code, "") if code is not None else ""
    text = ENVIRONMENT_ERRNOS.get(code or -1) or (err.strerror or str(err) or type(err).__name__)
    return f"{text} ({name})" if name else text


def _owner(path: Path) -> str:
    try:
        import pwd

        st = path.stat()
        return f"owner {pwd.getpwuid(st.st_uid).pw_name}, mode {stat.filemode(st.st_mode)}"
    except (OSError, KeyError, ImportError):
        return "permission denied"


def _environment_errno(err: BaseException) -> int | None:
    """The environment errno behind ``err``: an :class:`OSError` in its cause/context chain,
    or the strerror text in a library's message (C++ or wrapped errors keep only the text)."""
    seen: set[int] = set()
    cause: BaseException | None = err
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.errno in ENVIRONMENT_ERRNOS:
            return cause.errno
        cause = cause.__cause__ or cause.__context__
    text = str(err)
    for code in ENVIRONMENT_ERRNOS:
        if os.strerror(code) in text:
            return code
    return None


def write_failure(err: BaseException, path: str | os.PathLike[str]) -> EnvironmentFailure | None:
    """The one-line error for a failed write of ``path`` when the environment caused it.

    Looks for an environment errno (:data:`ENVIRONMENT_ERRNOS`) in the exception chain and
    message; a write that failed without one (torch raises ``RuntimeError: basic_ios::clear``,
    PIL an ``AttributeError`` on a full disk) counts as *no space left* when the filesystem
    has less than :data:`LOW_SPACE_BYTES` free.

    Returns:
        An :class:`~gammastar.errors.EnvironmentFailure` naming ``path`` and the cause, or
        ``None`` (not an environment failure: the caller re-raises ``err``).

    Example:
        >>> str(write_failure(OSError(errno.EROFS, "Read-only file system"), "/x/a.json"))
        '/x/a.json: cannot write: read-only filesystem (EROFS)'
    """
    code = _environment_errno(err)
    extra = ""
    if code is None and isinstance(err, Exception):
        try:
            st = os.statvfs(Path(path).parent)
            free = st.f_bavail * st.f_frsize
        except OSError:
            free = None
        if free is not None and free < LOW_SPACE_BYTES:
            code = errno.ENOSPC
            extra = f"; {free} bytes free ({type(err).__name__} from the writer)"
    if code is None:
        return None
    return EnvironmentFailure(
        f"{path}: cannot write: {os_error_text(OSError(code, os.strerror(code)))}{extra}"
    )


def umask() -> int:
    """The process's umask (read from ``/proc/self/status`` where it can, without changing it).

    Example:
        >>> 0 <= umask() <= 0o777
        True
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)  # no /proc: read it by setting it (and put it back at once)
    os.umask(old)
    return old


def file_mode() -> int:
    """The mode of a new output file: ``0666 & ~umask`` (0644 under umask 022), what
    ``open(path, "w")`` would give; temporary files (``mkstemp``: 0600) are set to it."""
    return 0o666 & ~umask()


def temp_prefix(path: Path) -> str:
    """Prefix of the temporary names next to ``path``: ``.<name>.<pid>.`` (hidden, and the
    writer's PID, by which :func:`gammastar.core.runlock.sweep` tells a killed writer's leftovers
    from a running one's)."""
    return f".{path.name}.{os.getpid()}."


MOVE_ASIDE_BYTES = 32 * 2**20
"""New files at least this large are renamed in by :func:`replace` with the old one moved
aside first."""


def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """Rename ``src`` onto ``dst`` (same directory).

    ``os.replace`` onto an existing file makes ext4 (``auto_da_alloc``) start writing the
    new file's data to disk inside the rename: a large ``pairs.parquet`` then takes a
    noticeable fraction of a second, against well under a millisecond onto a free name. So a
    large new file (:data:`MOVE_ASIDE_BYTES`) is renamed onto a free ``dst``: the old one is
    first renamed to a hidden name and removed after (put back if the second rename fails); in
    between
    ``dst`` is briefly absent, never half-written, and a hidden leftover of an interrupted
    replace is removed by the next one. Smaller files are renamed directly (the flush costs
    nothing there, and ``dst`` never disappears). A directory (a Parquet dataset of parts) in
    either place takes the same way (a rename cannot replace a file by a directory, nor a
    non-empty directory), the old one removed after.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "a").write_text("new"), (d / "b").write_text("old")
        >>> replace(d / "a", d / "b")
        >>> (d / "b").read_text(), sorted(p.name for p in d.iterdir())
        ('new', ['b'])
    """
    dst = Path(dst)
    dirs = os.path.isdir(src) or os.path.isdir(dst)
    if not os.path.lexists(dst) or (not dirs and os.path.getsize(src) < MOVE_ASIDE_BYTES):
        os.replace(src, dst)
        return
    fd, aside = tempfile.mkstemp(prefix=temp_prefix(dst), suffix=".old", dir=dst.parent)
    os.close(fd)
    os.unlink(aside)  # a free name of our own
    os.replace(dst, aside)
    try:
        os.replace(src, dst)
    except BaseException:
        os.replace(aside, dst)
        raise
    for old in dst.parent.glob(f".{glob.escape(dst.name)}.*.old"):  # this one, and leftovers
        _remove(old)


def _remove(path: Path) -> None:
    """Remove a file or a directory tree (a temporary or an old output), if still there."""
    with contextlib.suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], force: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success
    (:func:`atomic_paths` for one file).

    Nothing half-written is ever left at ``path``: on any exception the temporary
    file is removed and ``path`` is untouched.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> with atomic_path(d / "x.txt") as tmp:
        ...     _ = tmp.write_text("hello")
        >>> (d / "x.txt").read_text()
        'hello'
    """
    with atomic_paths([path], force) as (tmp,):
        yield tmp


@contextlib.contextmanager
def atomic_paths(
    paths: Sequence[str | os.PathLike[str]], force: bool = False
) -> Iterator[list[Path]]:
    """Like :func:`atomic_path` for a set of outputs that belong together: yields one
    temporary path per output; on success renames them all, **the last one last**.

    The last output marks the set as complete (``select.json``, ``reach.json``): an old
    version of it is removed before the first rename, so an interruption between the renames
    leaves a set without its marker, never old and new files that look like one run. On
    any exception before the renames nothing of ``paths`` is touched and every temporary
    file is removed.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> with atomic_paths([d / "data.txt", d / "done.json"]) as (data, done):
        ...     _ = data.write_text("x"), done.write_text("{}")
        >>> sorted(p.name for p in d.iterdir())
        ['data.txt', 'done.json']
    """
    targets = [check_writable(p, force) for p in paths]
    tmps: list[Path] = []
    mode = file_mode()
    try:
        for path in targets:
            fd = _create_temporary(path, tmps)
            try:
                os.fchmod(fd, mode)  # the umask's mode, not mkstemp's 0600
            finally:
                os.close(fd)
        yield list(tmps)
        if len(targets) > 1 and os.path.lexists(targets[-1]):
            os.unlink(targets[-1])
        for tmp, path in zip(tmps, targets, strict=True):
            replace(tmp, path)
    except BaseException as err:
        failure = None
        if isinstance(err, Exception) and not isinstance(err, GammastarError):
            failure = write_failure(err, _failed_target(err, tmps, targets))
        for tmp in tmps:  # those not renamed yet (a directory: a dataset moved in)
            _remove(tmp)
        if failure is not None:
            raise failure from err
        raise


_TEMP_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_"


def _create_temporary(path: Path, tmps: list[Path]) -> int:
    """Create ``path``'s temporary file (``.<name>.<pid>.<8 random>.part``, exclusive) and
    return its descriptor. Its name joins ``tmps`` *before* the file exists: a raising signal
    handler (SIGTERM, Ctrl-C) runs between any two bytecodes, and one between the open and the
    recording would leave a file the cleanup does not know (seen under load, where the signal
    follows the file's appearance; ``tempfile.mkstemp`` returns the name only after its open)."""
    import random

    rng = random.Random()
    for _ in range(100):
        tmp = path.parent / f"{temp_prefix(path)}{''.join(rng.choices(_TEMP_CHARS, k=8))}.part"
        tmps.append(tmp)
        try:
            return os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            tmps.pop()  # another's: never removed by this cleanup
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(path.parent))


def _failed_target(err: BaseException, tmps: list[Path], targets: list[Path]) -> Path:
    """The output whose write failed: the one whose temporary file the error names, else
    the first (one output) or the directory (a set)."""
    name = getattr(err, "filename", None)
    for tmp, target in zip(tmps, targets, strict=False):
        if name is not None and os.fspath(name) == os.fspath(tmp):
            return target
    if len(targets) == 1 or not tmps:
        return targets[0]
    written = [t for t, p in zip(targets, tmps, strict=False) if p.exists() and p.stat().st_size]
    return written[-1] if written else targets[0]


def _default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def json_text(obj: Mapping[str, Any]) -> str:
    """``obj`` as the indented JSON text that :func:`write_json` writes (NaN as ``null``)."""
    return json.dumps(_nan_to_none(obj), indent=2, default=_default, allow_nan=False) + "\n"


def write_json(path: str | os.PathLike[str], obj: Mapping[str, Any], force: bool = False) -> Path:
    """Write ``obj`` as indented JSON, atomically (NaN written as ``null``)."""
    text = json_text(obj)
    with atomic_path(path, force) as tmp:
        tmp.write_text(text)
    return Path(path)


_LEAVES = frozenset({str, int, bool, type(None)})
"""Types :func:`_nan_to_none` returns as they are."""


def _nan_to_none(obj: Any) -> Any:
    import numpy as np

    t = type(obj)
    if t is float:  # the bulk of a document: its numbers, without a call each
        return obj if math.isfinite(obj) else None
    if t in _LEAVES:
        return obj
    if isinstance(obj, float | np.floating) and not math.isfinite(float(obj)):
        return None
    if isinstance(obj, Mapping):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [
            (v if math.isfinite(v) else None) if type(v) is float
            else v if type(v) in _LEAVES else _nan_to_none(v)
            for v in obj
        ]  # fmt: skip
    if isinstance(obj, np.ndarray):
        return _nan_to_none(obj.tolist())
    return obj


def load_json(path: str | os.PathLike[str], *, what: str = "artifact") -> Any:
    """Parse a JSON file; a missing or unreadable file is one clear :class:`GammastarError`."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise GammastarError(f"{path}: {what} not found") from None
    except (OSError, ValueError) as err:
        raise GammastarError(f"{path}: not a readable JSON {what} ({err})") from None


def read_json(path: str | os.PathLike[str], *, what: str = "artifact") -> dict[str, Any]:
    """Read a JSON artifact and check its ``meta.schema_version``.

    Raises:
        GammastarError: the file is missing, not JSON, or of an unknown schema version.
    """
    path = Path(path)
    data = load_json(path, what=what)
    version = data.get("meta", {}).get("schema_version") if isinstance(data, dict) else None
    if version != SCHEMA_VERSION:
        raise GammastarError(
            f"{path}: {what} has schema_version {version!r}; this gammastar reads {SCHEMA_VERSION}"
        )
    return data


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_json(obj: Any) -> str:
    """SHA-256 of the canonical JSON form of ``obj`` (sorted keys)."""
    text = json.dumps(obj, sort_keys=True, default=_default, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def make_meta(
    *,
    config_sha256: str | None,
    seed: int | None,
    inputs: Sequence[str | os.PathLike[str]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The ``meta`` block every artifact carries (docs/reference/outputs.md).

    Arguments:
        config_sha256: hash of the config (section) that produced the artifact.
        seed: the random seed used, or None for deterministic steps.
        inputs: input files; their sizes are recorded.
        extra: further stage-specific entries.

    Returns:
        A JSON-serialisable dict with ``gammastar_version``, ``config_sha256``, ``seed``,
        ``schema_version``, ``inputs`` and the extra entries.
    """
    files: list[dict[str, Any]] = []
    for p in inputs or []:
        if isinstance(p, str) and "://" in p:  # a URL: no local size, no credential
            files.append({"path": redact(p), "size": None})
            continue
        p = Path(p)
        files.append({"path": str(p), "size": p.stat().st_size if p.exists() else None})
    return {
        "gammastar_version": __version__,
        "config_sha256": config_sha256,
        "seed": seed,
        "schema_version": SCHEMA_VERSION,
        "inputs": files,
        **extra,
    }
