"""The report's provenance: the config's text and hash, package versions, stages, seeds and
files of the run.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import platform
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from gammastar._version import __version__
from gammastar.config import AnalysisConfig
from gammastar.core import rundir
from gammastar.core.urls import redact
from gammastar.errors import GammastarError
from gammastar.report.layout import (
    KEY_PACKAGES,
    META_ARTIFACTS,
    REPORT_NAME,
)
from gammastar.report.markup import (
    Raw,
    _is_number,
    details,
    esc,
    fmt,
    kv_table,
    table,
)
from gammastar.report.reading import _num

__all__ = ["package_versions"]


# =========================================================================== provenance
def package_versions(names: Sequence[str] = KEY_PACKAGES) -> dict[str, str]:
    """Installed versions of ``names`` (``not installed`` when absent)."""
    out = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = "not installed"
    return out


def _config_text(cfg: AnalysisConfig) -> tuple[str, str]:
    """The config's YAML text and where it came from."""
    src = getattr(cfg, "source", None)
    if src and Path(src).is_file():
        try:
            return Path(src).read_text(encoding="utf-8"), str(src)
        except (OSError, UnicodeDecodeError):
            pass
    import yaml

    data = cfg.model_dump(mode="json", by_alias=True)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True), "(in memory; dumped)"


def _provenance(cfg: AnalysisConfig, run: Path) -> tuple[Raw, Raw]:
    """(run information, seeds/artifact metadata) blocks."""
    text, where = _config_text(cfg)
    text_sha = hashlib.sha256(text.encode("utf-8")).hexdigest()  # of the file as it is
    text = redact(text)  # shown without a URL's credentials (input.files)
    full = getattr(cfg, "sha256", None)
    info = kv_table(
        [
            ("analysis", getattr(cfg, "name", "?")),
            ("run directory", str(run)),
            ("report written", _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")),
            ("gammastar", __version__),
            ("python", f"{platform.python_version()} ({platform.platform()})"),
            ("config file", where),
            ("config file sha256", text_sha),
            ("config canonical sha256 (config_sha256_full)", full or "n/a"),
        ]
    )
    versions = table(["package", "version"], list(package_versions().items()))
    config_html = details(
        f"config YAML ({len(text.splitlines())} lines, sha256 {text_sha[:12]}…)",
        f'<pre class="config">{esc(text)}</pre>',
        open_=True,
    )

    rows = []
    for name, m in _artifact_metas(run):
        if isinstance(m, dict):
            full_hash = m.get("config_sha256_full")
            same = "n/a" if not full_hash or not full else ("yes" if full_hash == full else "NO")
            rows.append(
                (
                    name,
                    "none (deterministic)" if m.get("seed") is None else fmt(m.get("seed")),
                    fmt(m.get("gammastar_version")),
                    fmt(m.get("schema_version")),
                    str(m.get("config_sha256") or "n/a")[:12],
                    same,
                )
            )
        else:
            rows.append((name, str(m), "", "", "", ""))
    seeds = table(
        ["artifact", "seed", "gammastar", "schema", "config sha256 (section)", "same full config"],
        rows,
    )
    top = Raw(
        str(info)
        + "<h3>Package versions</h3>"
        + str(versions)
        + "<h3>Configuration</h3>"
        + str(config_html)
    )
    return top, seeds if rows else Raw("<p>No artifact metadata found.</p>")


def _artifact_metas(run: Path) -> list[tuple[str, Any]]:
    """``(artifact, its meta)`` of the mock and :data:`META_ARTIFACTS` present; the meta is
    the one-line reason instead where the artifact cannot be read (a schema error is its
    section's warning: the meta is shown as far as it goes)."""
    rd = rundir.RunDir(run)
    metas: list[tuple[str, Any]] = []
    if rd.path(rundir.MOCK).exists():
        try:
            metas.append((rundir.MOCK, rd.read_root_meta(rundir.MOCK)))
        except GammastarError as err:
            metas.append((rundir.MOCK, str(err)))
    for name in META_ARTIFACTS:
        try:
            d = rd.read_optional(name, invalid=lambda err: None)
        except GammastarError as err:
            metas.append((name, str(err)))
            continue
        if d is not None:
            metas.append((name, d.get("meta")))
    return metas


def _stage_table(run: Path) -> Raw | None:
    state = run / rundir.STATE_DIR
    if not state.is_dir():
        return None
    rd = rundir.RunDir(run)
    order = {name: i for i, name in enumerate(rundir.STAGE_ORDER)}
    rows = []
    for p in sorted(state.glob("*.json"), key=lambda q: (order.get(q.stem, len(order)), q.stem)):
        problems: list[GammastarError] = []  # a schema error: the record as far as it goes
        try:
            d = rd.read_optional(rundir.state_name(p.stem), invalid=problems.append)
        except GammastarError as err:
            rows.append((p.stem, "unreadable", "", str(err)))
            continue
        if d is None:  # removed while the report was written
            continue
        fin = d.get("finished")
        when = (
            _dt.datetime.fromtimestamp(float(fin), _dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
            if _is_number(fin)
            else "n/a"
        )
        rows.append(
            (
                str(d.get("stage", p.stem)),
                when,
                fmt(_num(d.get("seconds")), ".3g"),
                str(problems[0]) if problems else d.get("note") or "",
            )
        )
    return table(["stage", "last finished", "seconds", "note"], rows) if rows else None


def _artifact_list(run: Path) -> Raw:
    rows = []
    for p in sorted(run.iterdir()):
        if p.name.startswith(".") or p.name == REPORT_NAME:
            continue
        if p.is_dir():
            n = sum(1 for q in p.rglob("*") if q.is_file())
            rows.append((f"{p.name}/", f"{n} files"))
        else:
            size = p.stat().st_size
            rows.append((p.name, _size(size)))
    return table(["file", "size"], rows)


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)
