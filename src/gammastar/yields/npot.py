"""N_POT of the yields stage and the input files' metadata.

:func:`resolve_n_pot` (the config, ``select.json`` or the input files' ``meta``; per flavour its
effective exposure) and :func:`mock_normalisation` (the mock files' normalisation record), with
the readers of the input files' ``meta`` JSON string they share with the theory curves.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from gammastar.config import AnalysisConfig
from gammastar.core import rundir
from gammastar.errors import ConfigError, InputError
from gammastar.yields.formulas import check_n_pot


def meta_from_root(path: Path) -> dict[str, Any] | None:
    """The ``meta`` JSON string of a ROOT file (a mock file's, DEVELOPERS.md), ``None`` when
    the file has none.

    Raises:
        InputError: the file cannot be read, or its ``meta`` is not JSON.
    """
    import uproot  # deferred: uproot is heavy and only the mock's metadata needs it here

    try:
        with uproot.open(path) as f:
            if "meta" not in f:
                return None
            obj = f["meta"]
            text = str(obj)
    except Exception as err:  # noqa: BLE001 - any unreadable file is reported by name
        raise InputError(f"{path}: cannot read the 'meta' string ({err})") from None
    try:
        return json.loads(text)
    except ValueError:
        raise InputError(f"{path}: 'meta' is not a JSON string") from None


def mock_normalisation(n_pot_source: str) -> dict[str, Any] | None:
    """The mock files' ``meta.mock_normalisation`` when N_POT came from their metadata
    (``n_pot_source`` ``input_meta:<paths>``, :func:`resolve_n_pot`): the first file's record
    with the largest ``rel_uncertainty`` of the files (``None`` if a file states none);
    ``None`` for an N_POT from the config or ``select.json``, or files without the record
    (real data, an older mock): no ``mock_normalisation`` nuisance then."""
    if not n_pot_source.startswith("input_meta:"):
        return None
    names = n_pot_source.removeprefix("input_meta:").split(" (n_pot_by_flavour.")[0]
    records = []
    for name in names.split(","):
        meta = meta_from_root(Path(name))
        rec = (meta or {}).get("mock_normalisation")
        if not isinstance(rec, dict):
            return None
        records.append(rec)
    if not records:
        return None
    rels = [r.get("rel_uncertainty") for r in records]
    rel = None if any(r is None for r in rels) else max(float(r) for r in rels if r is not None)
    return {**records[0], "rel_uncertainty": rel}


def _input_paths(cfg: AnalysisConfig) -> list[Path]:
    import glob

    files = cfg.input.files
    names: list[str] = []
    if isinstance(files, dict):
        for spec in files.values():
            fs = spec.get("files", {}) if isinstance(spec, dict) else spec
            names.extend(fs.keys() if isinstance(fs, dict) else fs)
    else:
        names = list(files)
    out: list[Path] = []
    for n in names:
        p = str(cfg.resolve(n))
        matches = sorted(glob.glob(p)) if any(c in p for c in "*?[") else [p]
        out.extend(Path(x) for x in matches)
    return out


def resolve_n_pot(
    cfg: AnalysisConfig, run_dir: Path | None = None, flavour: str | None = None
) -> tuple[float, str]:
    """N_POT and where it came from: the config, ``select.json``, or the input files' ``meta``.

    With ``beam.n_pot: from_input``: ``select.json`` in the run directory when it carries
    ``n_pot`` (top level or ``meta``); otherwise the sum of ``n_pot`` over the input ROOT files'
    ``meta`` JSON strings (the mock generator's files, DEVELOPERS.md).

    The flavour's effective exposure (``flavour``, default the config's one flavour; a
    both-flavour config without ``flavour``: the run's N_POT): the mock file's
    ``meta.n_pot_by_flavour`` (``mock.electrons.prescale``), else the run's N_POT divided by
    ``beam.prescale`` of the flavour (1 when not given).

    Raises:
        ConfigError / InputError: no N_POT found, or a non-positive one (naming the source);
            ``beam.prescale`` different from the prescale an input file records.
    """
    flavours = cfg.input.flavours
    if flavour is None and len(flavours) == 1:
        flavour = flavours[0]
    # a flavour's name is one of the config's literal keys (mu, e)
    k = float(cfg.beam.prescale.get(flavour, 1.0)) if flavour is not None else 1.0  # type: ignore[call-overload]
    tag = f" / beam.prescale.{flavour}" if k != 1.0 else ""
    if cfg.beam.n_pot != "from_input":
        return check_n_pot(cfg.beam.n_pot, "beam.n_pot") / k, "config:beam.n_pot" + tag
    run_dir = run_dir or cfg.output_dir
    sel = run_dir / rundir.SELECT
    if sel.exists():
        try:
            doc = json.loads(sel.read_text())
        except ValueError:
            raise InputError(f"{sel}: not valid JSON") from None
        for where in (doc, doc.get("meta", {})):
            if isinstance(where, dict) and where.get("n_pot") is not None:
                n = check_n_pot(where["n_pot"], f"{sel}: n_pot")
                return n / k, f"select.json:{sel}{tag}"
    total, used = 0.0, []
    for path in _input_paths(cfg):
        if not path.exists():
            continue
        meta = meta_from_root(path)
        if meta is None or meta.get("n_pot") is None:
            raise InputError(
                f"{path}: no 'meta' with n_pot; set beam.n_pot in the config "
                "(beam.n_pot: from_input needs the mock generator's metadata)"
            )
        total += _file_n_pot(path, meta, flavour, k)
        used.append(str(path))
    if not used:
        raise ConfigError(
            "beam.n_pot is 'from_input' but neither select.json nor any input file "
            "carries n_pot; set beam.n_pot"
        )
    by = f" (n_pot_by_flavour.{flavour})" if flavour is not None and len(flavours) > 1 else ""
    return total, "input_meta:" + ",".join(used) + by


def _file_n_pot(path: Path, meta: dict[str, Any], flavour: str | None, k: float) -> float:
    """One input file's N_POT for ``flavour``: ``meta.n_pot_by_flavour`` when the file
    records it (then ``beam.prescale`` k must equal the file's ``meta.prescale``), else
    ``meta.n_pot`` / k."""
    by = meta.get("n_pot_by_flavour")
    if flavour is None or not isinstance(by, dict) or flavour not in by:
        return check_n_pot(meta["n_pot"], f"{path}: meta.n_pot") / k
    recorded = (meta.get("prescale") or {}).get(flavour, 1.0)
    if k != 1.0 and not math.isclose(k, float(recorded), rel_tol=1e-12):
        raise ConfigError(
            f"beam.prescale.{flavour}: {k:g}, but {path} records the mock's prescale "
            f"{recorded:g} (meta.prescale; its meta.n_pot_by_flavour already holds it): "
            f"drop beam.prescale.{flavour} with beam.n_pot: from_input"
        )
    return check_n_pot(by[flavour], f"{path}: meta.n_pot_by_flavour.{flavour}")
