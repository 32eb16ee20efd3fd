"""HEPData tables by reference, downloaded on first use and cached: ``hepdata:RECORD/TABLE``.

``hepdata:ins1313628/Figure 5`` is the table "Figure 5" of the HEPData record ins1313628
(version 1; ``hepdata:ins1313628/Figure 5@2`` another version), fetched as YAML from
``{base}/download/table/{record}/{table}/{version}/yaml`` (HEPData's REST download; ``base``
is ``$GAMMASTAR_HEPDATA_URL``, default ``https://www.hepdata.net``) and kept under the
gammastar cache (:mod:`gammastar.core.cachedir`: ``hepdata/{record}/{table}.v{version}.yaml``),
so that a later run reads the cached copy. Nothing published ships with the package.

:data:`KNOWN` holds what a bare table does not say (legend label, citation, shape, the column to
read) for the references gammastar knows, and :data:`NAMES` short names for them
(``reach.compare_with: [phenix_2015]``).
"""

from __future__ import annotations

import functools
import os
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from gammastar.core.cachedir import cache_dir, cache_path, store
from gammastar.errors import EnvironmentFailure, InputError

PREFIX = "hepdata:"
URL_ENV = "GAMMASTAR_HEPDATA_URL"
DEFAULT_URL = "https://www.hepdata.net"
TIMEOUT_S = 10.0
"""How long a download waits for the server: an offline run fails fast."""


class BoundUnavailable(EnvironmentFailure):
    """A referenced bound that is neither cached nor downloadable (offline, server down)."""


@dataclass(frozen=True)
class Known:
    """What a known HEPData table does not say itself."""

    label: str
    reference: str
    shape: str | None = None
    column: str | None = None


KNOWN: dict[str, Known] = {
    "hepdata:ins1313628/Figure 5": Known(
        label="PHENIX, π0 and η → γe+e- (90% CL)",
        reference=(
            "PHENIX Collaboration (A. Adare et al.), Search for dark photons from neutral meson "
            "decays in p+p and d+Au collisions at √s_NN = 200 GeV, Phys. Rev. C 91 (2015) "
            '031901(R), arXiv:1409.0851; HEPData record ins1313628, table "Figure 5" (90% CL)'
        ),
        # a prompt search: the upper limit on ε² per 1 MeV bin, every ε above it excluded
        shape="above",
        column="90%",
    ),
}
"""Legend label, citation, shape and column of the HEPData tables gammastar knows."""

NAMES: dict[str, str] = {"phenix_2015": "hepdata:ins1313628/Figure 5"}
"""Short names of known references (``reach.compare_with: [phenix_2015]``)."""

_FAILED: dict[str, str] = {}  # one try per process: an offline run waits once, not per stage


@dataclass(frozen=True)
class TableRef:
    """A parsed ``hepdata:RECORD/TABLE[@VERSION]`` reference.

    Example:
        >>> r = TableRef.parse("hepdata:ins1313628/Figure 5")
        >>> r.record, r.table, r.version, r.url("https://www.hepdata.net")
        ('ins1313628', 'Figure 5', 1, 'https://www.hepdata.net/download/table/ins1313628/Figure%205/1/yaml')
    """

    record: str
    table: str
    version: int = 1

    @classmethod
    def parse(cls, text: str) -> TableRef:
        m = re.fullmatch(r"hepdata:([A-Za-z0-9_.-]+)/(.+?)(?:@(\d+))?", text.strip())
        if m is None:
            raise InputError(
                f"reach.compare_with: '{text}': a HEPData reference is hepdata:RECORD/TABLE "
                "(e.g. hepdata:ins1313628/Figure 5), optionally @VERSION"
            )
        return cls(m.group(1), m.group(2), int(m.group(3) or 1))

    @property
    def key(self) -> str:
        """The reference without a default version (the :data:`KNOWN` key)."""
        tail = "" if self.version == 1 else f"@{self.version}"
        return f"{PREFIX}{self.record}/{self.table}{tail}"

    def url(self, base: str | None = None) -> str:
        """The table's YAML download address under ``base`` (default: ``$GAMMASTAR_HEPDATA_URL``
        or https://www.hepdata.net)."""
        base = (base or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")
        table = urllib.parse.quote(self.table, safe="")
        return f"{base}/download/table/{self.record}/{table}/{self.version}/yaml"

    def cache_file(self) -> str | None:
        """Where the table is cached (``None``: caching is off, ``GAMMASTAR_CACHE=""``)."""
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.table)
        return cache_path("hepdata", self.record, f"{safe}.v{self.version}.yaml")


def is_reference(text: str) -> bool:
    """Whether a ``reach.compare_with`` file is a HEPData reference or a known name."""
    return text.startswith(PREFIX) or text in NAMES


def resolve(text: str) -> TableRef:
    """The reference of a ``hepdata:`` string or a known name (:data:`NAMES`)."""
    return TableRef.parse(NAMES.get(text, text))


def fetch(ref: TableRef, *, base_url: str | None = None, timeout: float = TIMEOUT_S) -> Path:
    """The YAML file of a HEPData table: the cached copy, else downloaded (and cached).

    Arguments:
        ref: the table.
        base_url: the server (default: ``$GAMMASTAR_HEPDATA_URL``, else https://www.hepdata.net).
        timeout: seconds to wait for the server.

    Raises:
        BoundUnavailable: not cached and not downloadable (one line: the address, why, and how
            to get it).
        InputError: the server answered with something that is not a HEPData table.
    """
    cached = ref.cache_file()
    if cached is not None and os.path.isfile(cached):
        return Path(cached)
    url = ref.url(base_url)
    if url in _FAILED:
        raise BoundUnavailable(_FAILED[url])
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data = response.read()
    except urllib.error.HTTPError as err:
        err.close()  # the error holds the answer's open connection
        why = f"HTTP {err.code}" + (": no such record or table" if err.code == 404 else "")
        _fail(ref, url, why)
    except (urllib.error.URLError, OSError) as err:
        _fail(ref, url, str(getattr(err, "reason", err)))
    _check_table(data, ref, url)
    if cached is None:  # no cache: a private temporary copy for this process
        folder = tempfile.mkdtemp(prefix="gammastar-hepdata-")
        cached = os.path.join(folder, os.path.basename(ref.cache_file() or "table.yaml"))
        with open(cached, "wb") as f:
            f.write(data)
        return Path(cached)
    store(cached, functools.partial(_write, data=data))
    if not os.path.isfile(cached):  # an unwritable cache: read from a temporary copy
        fd, cached = tempfile.mkstemp(prefix="gammastar-hepdata-", suffix=".yaml")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    return Path(cached)


def _fail(ref: TableRef, url: str, why: str) -> None:
    where = os.path.join(cache_dir() or "$GAMMASTAR_CACHE", "hepdata")
    msg = (
        f"{ref.key}: cannot download {url} ({why}); it is cached under {where} on first use: "
        "run once with network access, or give the table's YAML file by its path"
    )
    _FAILED[url] = msg
    raise BoundUnavailable(msg)


def _check_table(data: bytes, ref: TableRef, url: str) -> None:
    """Refuse (and never cache) an answer that is not a HEPData table: an error page, say."""
    import yaml

    try:
        doc = yaml.safe_load(data.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError):
        doc = None
    if not isinstance(doc, dict) or "dependent_variables" not in doc:
        raise InputError(f"{ref.key}: {url} did not return a HEPData table (YAML)")


__all__ = [
    "DEFAULT_URL",
    "KNOWN",
    "NAMES",
    "URL_ENV",
    "BoundUnavailable",
    "Known",
    "TableRef",
    "fetch",
    "is_reference",
    "resolve",
]


def _write(f: IO[bytes], *, data: bytes) -> None:
    """Write ``data`` to the cache entry ``f`` (:func:`gammastar.core.cachedir.store`)."""
    f.write(data)
