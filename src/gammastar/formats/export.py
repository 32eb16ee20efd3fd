"""``gammastar export``: a run's reach and A′ yields in the field's formats.

Writes, under the output directory:

- ``hepdata/``: a HEPData submission made with ``hepdata_lib`` (``submission.yaml`` and one
  YAML file per table) and ``submission.tar.gz``, the archive to upload; its tables:

  * *Reach*: per A′ mass, the excluded ε range (lower and upper edge) of the expected limit
    (median) and of its ±1σ, ±2σ bands, and of the observed limit when the run has one
    (``reach.json``);
  * *Aprime yield*: the A′ yield per proton on target per ε² in bins of the dilepton mass,
    with its statistical and named systematic uncertainties: the run's ``yields.json``, else
    the yields file ``reach.json`` names among its inputs (``reach.yields`` elsewhere).

  The likelihoods below travel with it as an additional resource (``likelihoods.tar.gz``).
- ``likelihoods/pyhf/m_<mass>.json``: each mass point's pyhf workspace, as the reach wrote it;
- ``likelihoods/hs3/m_<mass>.json``: the same likelihood as HS3 JSON
  (:func:`gammastar.formats.hs3.workspace_to_hs3`), which RooFit's ``RooJSONFactoryWSTool``
  imports.

Example:
    ``gammastar export runs/na62 -o export/na62``
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import math
import os
import shutil
import sys
import tarfile
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gammastar._version import __version__
from gammastar.core import rundir
from gammastar.core.results import StageResult
from gammastar.errors import ArtifactError, EnvironmentFailure, InputError, OutputExistsError
from gammastar.formats.hs3 import workspace_to_hs3

HEPDATA_DIR = "hepdata"
ARCHIVE = "submission.tar.gz"
LIKELIHOODS_DIR = "likelihoods"
LIKELIHOODS_ARCHIVE = "likelihoods.tar.gz"
OUTPUTS = (HEPDATA_DIR, ARCHIVE, LIKELIHOODS_DIR)
"""What ``gammastar export`` writes under its output directory."""

BANDS = (("-2", "−2σ"), ("-1", "−1σ"), ("+1", "+1σ"), ("+2", "+2σ"))
DIGITS = 6
"""Significant digits of the tables' numbers."""


@dataclass(frozen=True)
class ExportResult(StageResult):
    """What :func:`export_run` wrote: the HEPData submission directory (``path``), its archive,
    the tables' names, the pyhf and HS3 likelihoods, and notes on what was left out."""

    archive: Path | None = None
    tables: tuple[str, ...] = ()
    pyhf: tuple[Path, ...] = ()
    hs3: tuple[Path, ...] = ()
    notes: tuple[str, ...] = ()


def hepdata_lib() -> Any:
    """The ``hepdata_lib`` module (the ``export`` extra), imported quietly.

    Raises:
        EnvironmentFailure: it is not installed (one line with the ``pip`` command).
    """
    # hepdata_lib imports PyROOT when it can, for readers this module does not use: keep
    # it out (a second of start-up, ROOT's signal handlers) unless the process has it already
    block = "ROOT" not in sys.modules
    try:
        if block:
            sys.modules["ROOT"] = None  # type: ignore[assignment]
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            import hepdata_lib as lib
    except ImportError as err:
        raise EnvironmentFailure(
            f"gammastar export needs hepdata_lib and hepdata-validator ({err.name or err} is "
            "missing): pip install 'gammastar[export]'"
        ) from None
    finally:
        if block and sys.modules.get("ROOT", 0) is None:
            del sys.modules["ROOT"]
    return lib


def validate_submission(path: str | os.PathLike[str]) -> list[str]:
    """Check a HEPData submission, a directory or an archive (``.tar.gz``, ``.zip``), with
    ``hepdata-validator``.

    Returns:
        The validator's messages (empty: valid).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from hepdata_validator.full_submission_validator import FullSubmissionValidator

    validator = FullSubmissionValidator()
    where = {"directory": str(path)} if Path(path).is_dir() else {"archive": str(path)}
    # the validator leaves the files it reads for the garbage collector to close
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore", ResourceWarning)
        ok = validator.validate(**where)
    messages = [
        f"{Path(name).name}: {m.message}"
        for name, msgs in validator.get_messages().items()
        for m in msgs
    ]
    return [] if ok else messages or ["invalid (no message)"]


def export_run(
    run_dir: str | os.PathLike[str], out: str | os.PathLike[str], *, force: bool = False
) -> ExportResult:
    """Write a run's reach and yields as a HEPData submission, and its likelihoods as pyhf
    and HS3 JSON (module docstring).

    Arguments:
        run_dir: the run directory (with ``reach.json`` and ``workspaces/``).
        out: the output directory.
        force: replace what an earlier export wrote there.

    Returns:
        An :class:`ExportResult`.

    Raises:
        InputError: no ``reach.json`` (run ``gammastar reach`` first), an invalid artifact;
        OutputExistsError: an earlier export is there and ``force`` is false;
        EnvironmentFailure: ``hepdata_lib`` is not installed.
    """
    run = Path(run_dir)
    out = Path(out).resolve()  # hepdata_lib works relative to a changed directory
    if not run.is_dir():
        raise InputError(f"{run}: run directory not found")
    rd = rundir.RunDir(run)
    if not rd.path(rundir.REACH).exists():
        raise InputError(f"{rd.path(rundir.REACH)}: not found; run `gammastar reach` first")
    for name in OUTPUTS:
        if (out / name).exists() and not force:
            raise OutputExistsError(f"{out / name}: exists; use --force to replace it")
    lib = hepdata_lib()
    reach = rd.read_json(rundir.REACH)
    yields, notes = _yields(rd, reach)
    workspaces = _workspaces(rd)
    if not workspaces:
        notes.append(f"no workspaces in {rd.path(rundir.WORKSPACES_INDEX)}: no likelihoods")

    out.mkdir(parents=True, exist_ok=True)
    with _staging(out) as tmp:
        pyhf_files, hs3_files = _write_likelihoods(tmp / LIKELIHOODS_DIR, workspaces, reach)
        submission = lib.Submission()
        submission.comment = _comment(reach)
        tables = [_reach_table(lib, reach)]
        if yields is not None:
            tables.append(_yield_table(lib, yields))
        for table in tables:
            submission.add_table(table)
        if pyhf_files:
            archive = tmp / LIKELIHOODS_ARCHIVE
            with tarfile.open(archive, "w:gz") as tar:
                tar.add(tmp / LIKELIHOODS_DIR, arcname=LIKELIHOODS_DIR)
            poi = reach.get("meta", {}).get("workspaces_poi", "the signal strength")
            submission.add_additional_resource(
                "The likelihood of each A′ mass point: pyhf workspaces (pyhf/) and the same "
                f"as HS3 JSON for RooFit's RooJSONFactoryWSTool (hs3/); POI: {poi}",
                str(archive),
                copy_file=True,
                file_type="HistFactory",
            )
        # hepdata_lib writes its archive into the working directory (a process-wide change:
        # the command line's single thread)
        with contextlib.chdir(tmp), contextlib.redirect_stdout(io.StringIO()):
            submission.create_files(HEPDATA_DIR, validate=False, remove_old=True)
        if pyhf_files:
            (tmp / LIKELIHOODS_ARCHIVE).unlink()
        problems = validate_submission(tmp / HEPDATA_DIR)
        if problems:  # a bug of this writer, not of the run
            raise RuntimeError(f"{out}: hepdata-validator refuses the export: {problems[0]}")
        _install(tmp, out)
    return ExportResult(
        path=out / HEPDATA_DIR,
        archive=out / ARCHIVE,
        tables=tuple(t.name for t in tables),
        pyhf=tuple(out / p.relative_to(tmp) for p in pyhf_files),
        hs3=tuple(out / p.relative_to(tmp) for p in hs3_files),
        notes=tuple(notes),
    )


# --------------------------------------------------------------------------- staging
@contextlib.contextmanager
def _staging(out: Path) -> Iterator[Path]:
    """A temporary directory in ``out``, removed afterwards (its contents moved or not)."""
    tmp = Path(tempfile.mkdtemp(prefix=".export-", dir=out))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _install(tmp: Path, out: Path) -> None:
    """Move the staged outputs into ``out``, replacing an earlier export's."""
    for name in OUTPUTS:
        src, dst = tmp / name, out / name
        if not src.exists():
            continue
        if dst.is_dir() and not dst.is_symlink():
            shutil.rmtree(dst)
        elif dst.exists():
            dst.unlink()
        os.replace(src, dst)


# --------------------------------------------------------------------------- yields
def _yields(rd: rundir.RunDir, reach: Mapping[str, Any]) -> tuple[dict[str, Any] | None, list[str]]:
    """The A′ yields the reach was built on: the run's ``yields.json``, else the yields file
    ``reach.json`` names among its inputs (``reach.yields`` may point elsewhere)."""
    if rd.path(rundir.YIELDS).exists():
        return rd.read_json(rundir.YIELDS), []
    for entry in reach.get("meta", {}).get("inputs", []):
        path = Path(str(entry.get("path", "")))
        if not (path.suffix == ".json" and path.is_file()):
            continue
        try:
            doc = rundir.read_artifact(path, "yields.json", what="the reach's yields")
        except ArtifactError:  # another input, not a yields file
            continue
        return doc, [f"A′ yield table from {path} (the reach's input)"]
    return None, [
        f"no {rundir.YIELDS} in {rd.root} nor among the reach's inputs: no A′ yield table"
    ]


# --------------------------------------------------------------------------- likelihoods
def _workspaces(rd: rundir.RunDir) -> list[tuple[float, Path]]:
    if not rd.path(rundir.WORKSPACES_INDEX).exists():
        return []
    index = rd.read_json(rundir.WORKSPACES_INDEX)
    out = []
    for entry in index["workspaces"]:
        path = rd.path(entry["file"])
        if not path.is_file():
            raise InputError(f"{path}: listed in {rundir.WORKSPACES_INDEX} but missing")
        out.append((float(entry["mass"]), path))
    return out


def _write_likelihoods(
    folder: Path, workspaces: Sequence[tuple[float, Path]], reach: Mapping[str, Any]
) -> tuple[list[Path], list[Path]]:
    """Copy each pyhf workspace and write its HS3 form; returns both lists of files."""
    pyhf_files: list[Path] = []
    hs3_files: list[Path] = []
    poi_note = reach.get("meta", {}).get("workspaces_poi", "the signal strength")
    for mass, path in workspaces:
        try:
            spec = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise InputError(f"{path}: unreadable pyhf workspace ({err})") from None
        name = Path(path).name
        doc = workspace_to_hs3(
            spec, description=f"gammastar reach at m_A' = {mass:.6g} GeV; POI: {poi_note}"
        )
        for sub, content, files in (("pyhf", spec, pyhf_files), ("hs3", doc, hs3_files)):
            target = folder / sub / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(content, indent=1) + "\n")
            files.append(target)
    return pyhf_files, hs3_files


# --------------------------------------------------------------------------- tables
def _comment(reach: Mapping[str, Any]) -> str:
    meta = reach.get("meta", {})
    method = meta.get("method", "?")
    n_pot = meta.get("n_pot")
    pot = f", {n_pot:.3g} protons on target" if isinstance(n_pot, int | float) else ""
    return (
        f"Data-driven dark-photon (A′) prediction made with gammastar {__version__}: the expected "
        f"{100 * float(reach['cl']):.0f}% CL exclusion (CLs, method {method}{pot}) in the "
        "(m_A′, ε) plane, and the A′ yield per proton on target per ε² it is built on."
    )


def _numbers(values: Sequence[Any]) -> list[Any]:
    """A table column: finite numbers, ``"-"`` where there is none (HEPData's blank)."""
    out: list[Any] = []
    for v in values:
        ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        out.append(float(v) if ok else "-")
    return out


def _variable(lib: Any, name: str, values: Sequence[Any], *, independent: bool, **kw: Any) -> Any:
    var = lib.Variable(name, is_independent=independent, is_binned=False, **kw)
    var.values = _numbers(values)
    var.digits = DIGITS
    return var


def _reach_table(lib: Any, reach: Mapping[str, Any]) -> Any:
    """The reach: per mass the excluded ε range of the expected limit, its bands, observed."""
    cl = f"{100 * float(reach['cl']):.0f}%"
    meta = reach.get("meta", {})
    table = lib.Table("Reach")
    table.description = (
        f"Excluded range of the kinetic mixing ε at {cl} CL (CLs) per A′ mass: the lower and "
        "upper edge of the expected exclusion (median of the background-only pseudo-data) and "
        "of its ±1σ and ±2σ bands"
        + (", and of the observed exclusion" if "observed" in reach else "")
        + "; '-' where nothing is excluded."
    )
    table.location = "gammastar reach.json"
    table.keywords["phrases"] = ["Dark photon", "Beam dump", "Exclusion limit"]
    expected = reach["expected"]
    table.add_variable(_variable(lib, "m_A'", expected["mass"], independent=True, units="GeV"))
    columns = [("expected (median)", expected)]
    columns += [(f"expected {label}", reach["bands"][key]) for key, label in BANDS]
    if "observed" in reach:
        columns.append(("observed", reach["observed"]))
    for label, band in columns:
        for edge, key in (("lower", "eps_low"), ("upper", "eps_high")):
            var = _variable(lib, f"epsilon {edge} edge, {label}", band[key], independent=False)
            var.add_qualifier("CL", cl)
            var.add_qualifier("CLs method", str(meta.get("method", "?")))
            if "n_pot" in meta:
                var.add_qualifier("N_POT", f"{float(meta['n_pot']):.4g}")
            table.add_variable(var)
    return table


def _yield_table(lib: Any, yields: Mapping[str, Any]) -> Any:
    """The A′ yield per POT per ε² in mass bins, with its uncertainties."""
    ap = yields["aprime"]
    mass = [float(m) for m in ap["mass"]]
    table = lib.Table("Aprime yield")
    table.description = (
        "Data-driven A′ yield per proton on target per ε² (Eq. 6 of the gammastar method) in bins "
        "of the dilepton mass, with its statistical uncertainty and its named systematic ones "
        "(the ±1σ effect of each nuisance of yields.json, sys,<name>); '-' where the bin has no "
        "yield."
    )
    table.location = "gammastar yields.json"
    table.keywords["phrases"] = ["Dark photon", "Yield"]
    edges = ap.get("bin_edges")
    if isinstance(edges, list) and len(edges) == len(mass) + 1:
        m = lib.Variable("m_A'", is_independent=True, is_binned=True, units="GeV")
        m.values = [(float(a), float(b)) for a, b in itertools.pairwise(edges)]
        m.digits = DIGITS
    else:
        m = _variable(lib, "m_A'", mass, independent=True, units="GeV")
    table.add_variable(m)
    y = _numbers(ap["per_pot_per_eps2"])
    var = lib.Variable(
        "A' yield per POT per epsilon^2", is_independent=False, is_binned=False, units="1/POT"
    )
    var.values = y
    var.digits = DIGITS
    n_pot = yields.get("meta", {}).get("n_pot")
    if isinstance(n_pot, int | float):
        var.add_qualifier("N_POT of the data", f"{float(n_pot):.4g}")
    _add_uncertainty(lib, var, "stat", ap.get("stat_err"), y)
    unc = yields.get("uncertainties") or {}
    unc_mass = [float(x) for x in unc.get("mass") or []]
    named = len(unc_mass) == len(mass) and all(
        math.isclose(a, b) for a, b in zip(unc_mass, mass, strict=True)
    )
    if named:
        for name, entry in (unc.get("nuisances") or {}).items():
            if name == "data_stat":  # the stat error above (gammastar.yields.uncertainties)
                continue
            rel = entry.get("rel") or []
            absolute = [
                r * v if isinstance(r, int | float) and isinstance(v, float) else None
                for r, v in zip(rel, y, strict=False)
            ]
            if any(absolute):
                _add_uncertainty(lib, var, f"sys,{name}", absolute, y)
    elif ap.get("syst_err") is not None:
        _add_uncertainty(lib, var, "sys", ap.get("syst_err"), y)
    table.add_variable(var)
    return table


def _add_uncertainty(
    lib: Any, var: Any, label: str, errors: Sequence[Any] | None, values: Sequence[Any]
) -> None:
    if errors is None or len(errors) != len(values):
        return
    unc = lib.Uncertainty(label, is_symmetric=True)
    unc.values = [
        float(e) if isinstance(e, int | float) and math.isfinite(e) and v != "-" else 0.0
        for e, v in zip(errors, values, strict=True)
    ]
    var.add_uncertainty(unc)


__all__ = ["ExportResult", "export_run", "hepdata_lib", "validate_submission"]
