r"""Sensitivity reach in the (m_A′, ε) plane (paper Sec. IV/App. B; docs/explanation/physics.md §9–10).

Expected signal (NA62 Eq. A1 with the data-driven yield):

.. math:: N_{\rm sig}(m, \varepsilon) = N_{\rm POT}\, Y(m)\, \varepsilon^2 \sum_{\ell}
          {\rm BR}(A' \to \ell\ell)\, \mathcal{E}(m, c\tau(m, \varepsilon))\, \epsilon_{\rm sel},

with Y(m) the A′ yield per POT per ε² from ``yields.json`` (log-linear interpolation in m), the
acceptance 𝓔 from :mod:`gammastar.reach.acceptance` and cτ from :mod:`gammastar.physics.darkphoton`.

**The ε scan (the efficient method).** For a given mass the channel fractions
BR_ℓℓ/ΣBR_ℓℓ do not depend on ε (both widths scale as ε²/Γ_tot; the acceptance is common to the
channels), so the whole likelihood at (m, ε) is the per-mass likelihood with the signal strength
n_signal = N_sig(m, ε). CLs decreases monotonically with n_signal, hence

    (m, ε) excluded  ⇔  N_sig(m, ε) ≥ s_up(m),

with s_up(m) the per-mass upper limit on the signal event count (one limit per band). The
exclusion boundaries ε_low(m), ε_high(m) are the two crossings of N_sig(m, ε) = s_up(m)
(N_sig rises as ε⁴…ε² at small ε and falls exponentially once the A′ decays before L1), found on
the ε grid and refined with Brent's method on the exact N_sig(ε). ``tests/test_reach.py`` shows
that this reproduces a full per-grid-point hypothesis test.

The stage itself (:func:`run_reach`) is a thin orchestration over
:mod:`~gammastar.reach.signal`, :mod:`~gammastar.reach.observed`, :mod:`~gammastar.reach.scan`
and :mod:`~gammastar.reach.plots`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gammastar.config import AnalysisConfig
from gammastar.config_checks import experiment_problems
from gammastar.core import rundir
from gammastar.core.artifacts import atomic_paths, check_writable, make_meta
from gammastar.core.results import StageResult
from gammastar.core.threads import limit_threads
from gammastar.errors import ConfigError, GammastarError, InputError
from gammastar.physics import darkphoton
from gammastar.physics.sampling import SamplerLike
from gammastar.reach import edges
from gammastar.reach.flow_closure import closure_record, plot_closure
from gammastar.reach.flow_closure import log as closure_log
from gammastar.reach.impact import plot_impact
from gammastar.reach.observed import observed_counts
from gammastar.reach.plots import plot_reach, plot_reach_productions
from gammastar.reach.scan import scan_with
from gammastar.reach.scan.settings import ReachInputs, ScanResult, ScanSettings
from gammastar.reach.stats.interface import BANDS
from gammastar.reach.stats.workspace import build_spec
from gammastar.source.geometry import Geometry
from gammastar.source.modes import PRODUCTIONS
from gammastar.source.production import (
    Yields,
    check_refuse,
    load_yields,
    resolve_yield_scale,
    with_mock_nuisance,
    with_target_nuisance,
)
from gammastar.source.source import Source, ensemble_sources
from gammastar.yields.nuisance import reach_nuisances

__all__ = ["OUTPUTS", "ReachResult", "check_config", "plot_productions", "plot_reach_figures", "reach_dir", "reach_document", "reach_inputs", "reach_meta", "run_reach", "write_reach"]

OUTPUTS = rundir.stage_outputs("reach", tracked=False)
"""What the reach writes (:data:`gammastar.core.rundir.ARTIFACTS`, with the pipeline's
``STAGES``), besides one pyhf workspace per mass point."""


# --------------------------------------------------------------------------- stage
def _bands_json(result: ScanResult, key: str) -> dict[str, Any]:
    lo, hi = result.boundaries[key]
    low = [None if not np.isfinite(v) else float(v) for v in lo]
    high = [None if not np.isfinite(v) else float(v) for v in hi]
    return {
        "mass": result.masses.tolist(),
        "eps_low": low,
        "eps_high": high,
        # a boundary at the grid's end is where the scan stopped (gammastar.reach.edges)
        **edges.edge_flags(low, high, float(result.eps[0]), float(result.eps[-1])),
    }


def _extrapolation_json(res: ScanResult, mode: str, yields: Yields) -> dict[str, Any] | None:
    """Share of N_sig from outside the data's fiducial region: per mass at the expected
    exclusion's ε boundaries and its largest value inside the excluded region."""
    if yields.extrapolation is None and res.acceptance_extrapolated is None:
        return None
    out: dict[str, Any] = {
        "mode": mode,
        "model": None if yields.extrapolation is None else yields.extrapolation.get("model"),
    }
    if res.acceptance_extrapolated is None:
        out["note"] = "fiducial region only: no extrapolated signal"
        return out
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(res.acceptance > 0, res.acceptance_extrapolated / res.acceptance, np.nan)
    lo, hi = res.boundaries["0"]
    le = np.log(res.eps)

    def at(i: int, e: float) -> float | None:
        if not np.isfinite(e):
            return None
        v = float(np.interp(np.log(e), le, frac[i]))
        return v if np.isfinite(v) else None

    in_excl = []
    for i in range(res.masses.size):
        k = (res.eps >= lo[i]) & (res.eps <= hi[i]) if np.isfinite(lo[i]) else np.zeros(0, bool)
        f = frac[i][k] if k.size else np.array([])
        in_excl.append(float(np.nanmax(f)) if f.size and np.any(np.isfinite(f)) else None)
    out.update(
        mass=res.masses.tolist(),
        fraction_at_eps_low=[at(i, lo[i]) for i in range(res.masses.size)],
        fraction_at_eps_high=[at(i, hi[i]) for i in range(res.masses.size)],
        max_fraction_in_excluded_region=in_excl,
        note="share of the expected signal from A' kinematics outside the data's fiducial "
        "region (the yields' fitted model): extrapolated, not measured",
    )
    return out


def check_config(config: AnalysisConfig) -> None:
    """Refuse a reach whose statistics inputs are not all given, or (outside the mock) whose
    detector is not stated, before anything is written.

    Raises:
        ConfigError: one line per missing key, all in one message
            (:func:`gammastar.config_checks.experiment_problems` with the reach run).
    """
    given = config.model_dump(mode="python", by_alias=True, exclude_unset=True)
    missing = experiment_problems(given, reach=True)
    if missing:
        src = config.source or "<config>"
        raise ConfigError("\n".join(f"{src}: {line}" for line in missing))
    from gammastar.formats.bounds import read_config_bounds

    read_config_bounds(config)  # a bad bound file stops the reach before the scan


def _reach_yields(config: AnalysisConfig) -> tuple[Path, Yields]:
    """``reach.yields`` (its fiducial part only with ``reach.extrapolation: refuse``)."""
    path = config.resolve(config.reach.yields)
    yields = load_yields(path)
    if yields.extrapolation is not None and config.reach.extrapolation == "refuse":
        check_refuse(config, yields)
        yields = load_yields(path, fiducial=True)
    return path, yields


def _reach_n_pot(config: AnalysisConfig, yields: Yields) -> float:
    """``reach.n_pot``, else ``beam.n_pot``, else (``from_input``) the yields' ``meta.n_pot``.

    Raises:
        GammastarError: none of them is a positive number.
    """
    n_pot: Any = config.reach.n_pot if config.reach.n_pot is not None else config.beam.n_pot
    if not isinstance(n_pot, int | float):  # beam.n_pot: from_input → the data's own exposure
        n_pot = yields.meta.get("n_pot")
    if not isinstance(n_pot, int | float) or not n_pot > 0:
        raise GammastarError(
            f"{config.source or 'config'}: reach.n_pot or beam.n_pot must be a number for the "
            "reach (the facility's protons on target)"
        )
    return float(n_pot)


def _reach_masses(config: AnalysisConfig, yields: Yields, source: Source) -> NDArray[np.float64]:
    """The mass grid: ``reach.mass_min``/``mass_max`` (default: the yields' range within the
    flow's), ``reach.mass_points`` points.

    Raises:
        InputError: the range leaves the flow's mass range.
        GammastarError: the range is empty.
    """
    rc = config.reach
    lo, hi = yields.mass_range
    frange = source.mass_range
    if frange is not None:
        lo, hi = max(lo, frange[0]), min(hi, frange[1])
    m_lo = rc.mass_min if rc.mass_min is not None else lo
    m_hi = rc.mass_max if rc.mass_max is not None else hi
    if frange is not None and (m_lo < frange[0] - 1e-12 or m_hi > frange[1] + 1e-12):
        raise InputError(
            f"reach mass range [{m_lo:g}, {m_hi:g}] GeV lies outside the flow's mass range "
            f"[{frange[0]:g}, {frange[1]:g}] GeV"
        )
    if m_hi <= m_lo:
        raise GammastarError(f"reach: empty mass range [{m_lo:g}, {m_hi:g}] GeV")
    return np.linspace(m_lo, m_hi, rc.mass_points)


def reach_inputs(
    config: AnalysisConfig, *, source: Any = None, output: str | Path | None = None
) -> ReachInputs:
    """Read and resolve everything the reach scan needs from the config (nothing written).

    Arguments:
        config: the :class:`~gammastar.config.AnalysisConfig`.
        source: the A′ kinematics (a :class:`Source` or a kinematics model, with the config's
            yields; default: the config's, :meth:`Source.from_config`).
        output: run directory (default: the config's).

    Returns:
        The :class:`ReachInputs`.
    """
    rc = config.reach
    yields_path, data = _reach_yields(config)
    scale, scale_info = resolve_yield_scale(config, data)
    n_pot = _reach_n_pot(config, data)
    data_driven = source is not None or rc.production == "data_driven"
    if source is None:
        source = PRODUCTIONS[rc.production].build(config, data, yields_path)
    else:
        source = Source.from_model(source, data)
    yields = source.yields if source.yields is not None else data
    masses = _reach_masses(config, data, source)  # the data's masses, whatever the production
    observed = None
    if rc.observed is not None:
        observed = observed_counts(
            rc.observed,
            masses,
            template=rc.template,
            mass_resolution=rc.mass_resolution,
            window_sigmas=rc.mass_window_sigmas,
            mass_bins=rc.mass_bins,
            resolve=config.resolve,
        )

    # the data's named nuisances belong to the data-driven yield; the target's A-dependence
    # and the mock's normalisation scale every production's mesons alike
    named = reach_nuisances(config, yields, masses) if data_driven else (None, None)
    nuis, nuis_record = with_mock_nuisance(
        *with_target_nuisance(*named, scale_info, masses), yields.meta, masses
    )
    ensemble, ensemble_seeds = None, None
    if config.uncertainties.kinematic_model and data_driven:

        ensemble, ensemble_seeds = ensemble_sources(config, yields, source)
    return ReachInputs(
        output=Path(output) if output is not None else config.output_dir,
        yields_path=yields_path,
        yields=yields,
        yield_scale=scale,
        yield_scale_info=scale_info,
        n_pot=n_pot,
        source=source,
        geometry=Geometry.from_config(config.detector),
        masses=masses,
        eps=np.geomspace(rc.eps_min, rc.eps_max, rc.eps_points),
        observed=observed,
        dark=darkphoton.DarkSector(rc.dark_alpha, rc.dark_mass) if rc.dark_alpha > 0 else None,
        nuisances=nuis,
        nuisance_record=nuis_record,
        ensemble=ensemble,
        ensemble_seeds=ensemble_seeds,
    )


def _record_kinematic(inp: ReachInputs, res: ScanResult) -> None:
    """Add the ``kinematic_model`` nuisance the scan measured to ``inp.nuisance_record``."""
    if not res.kinematic or inp.nuisance_record is None:
        return
    n, k = inp.masses.size, len(inp.ensemble or [])
    kin: dict[str, Any] = {
        "kind": "normsys",
        "rel": [None] * n,
        "origin": f"acceptance spread (std/mean) over the {k} members of "
        f"the flow ensemble (training seeds {inp.ensemble_seeds}), at the median expected "
        "eps_low and eps_high of a first pass, each edge's limit with its own (at_eps_low, "
        "at_eps_high); rel: the one at eps_high, else eps_low",
        "correlation": "one parameter shared by all channels and mass points",
        "at_eps_low": [None] * n,
        "at_eps_high": [None] * n,
        # the standard deviation of k draws is itself uncertain (Gaussian: 1/sqrt(2(k-1)));
        # train >= 10 replicas for a size known to ±24% (docs/validation/uncertainties-and-coverage.md)
        "members": k,
        "size_rel_err": 1.0 / math.sqrt(2 * (k - 1)) if k > 1 else None,
    }
    inp.nuisance_record["nuisances"]["kinematic_model"] = kin
    for row in res.kinematic:
        j = int(np.argmin(np.abs(inp.masses - row["mass"])))
        kin["rel"][j], kin["at_eps_low"][j] = row["rel"], row["eps_low"]
        kin["at_eps_high"][j] = row["eps_high"]


def _record_extrapolation(inp: ReachInputs, res: ScanResult) -> None:
    """Replace the yield-level ``extrapolation`` and ``acceptance_lambda_theta`` sizes in
    ``inp.nuisance_record`` by the N_sig-level ones the scan used (:func:`_extrapolation_row`),
    keeping the former as ``rel_yield``."""
    _record_nsig_level(inp, res.extrapolation_nsig, "extrapolation", (
        "the extrapolation fit's sandwich covariance carried to N_sig "
        "(gammastar.yields.extrapolation.nsig.nsig_relative_error: the model's acceptance outside the "
        "fiducial region moves with f_F; propagation 'log': the 1 sigma w of ln N_sig from "
        "N_sig recomputed at +-1 sigma along the covariance's principal axes, rel = e^w - 1; "
        "below a both-channels run's seam with the model fitted there, "
        "gammastar.yields.extrapolation.nsig.arm.nsig_full_space_error: the acceptance's change "
        "alone; above it with the arm's model, the same as for the fiducial fit on that model "
        "normalised in the fiducial region), at the median expected eps_low and eps_high of a first pass, each edge's limit "
        "with its own (at_eps_low, at_eps_high; rel, the larger; an edge where N_sig is not "
        "resolved, flagged unresolved, takes the largest resolved size at the mass, never below "
        "the other edge's, and fallback names it); rel_yield: the yield's delta f_F / f_F; "
        "the likelihood's normsys is two-sided, hi = 1 + up, lo = 1/(1 + down) (up, down: "
        "each side with the model forms whose shift of N_sig points there; rel and at_eps_*: "
        "all parts in quadrature, symmetrised)"
    ))  # fmt: skip
    _record_nsig_level(inp, res.lambda_theta_nsig, "acceptance_lambda_theta", (
        "the measured lambda_theta moved per polarisation bin by +-1 sigma, the fiducial "
        "region following it, carried to N_sig (gammastar.yields.extrapolation.nsig.nsig_lambda_theta: "
        "the fiducial yield's change, the extrapolation refitted in the moved region, the "
        "A' samples reweighted; the width w of ln N_sig, rel = e^w - 1), at the median "
        "expected eps_low and eps_high of a first pass, each edge's limit with its own "
        "(at_eps_low, at_eps_high; rel, the larger; an unresolved edge as for extrapolation); "
        "rel_yield: the fiducial yield's change (yields.json)"
    ))  # fmt: skip


def _record_nsig_level(
    inp: ReachInputs, rows: list[dict[str, Any]] | None, name: str, origin: str
) -> None:
    """Nuisance ``name``'s record at N_sig's level from the scan's ``rows``."""
    if not rows or inp.nuisance_record is None:
        return
    rec = inp.nuisance_record["nuisances"].get(name)
    if rec is None:
        return
    n = inp.masses.size
    rec["rel_yield"] = list(rec["rel"])
    rec["at_eps_low"], rec["at_eps_high"] = [None] * n, [None] * n
    rec["origin"] = origin
    sides = [s for s in ("up", "down") if any(s in row for row in rows)]
    for s in sides:  # a two-sided nuisance: the likelihood's hi = 1 + up, lo = 1/(1 + down)
        rec[s] = {k: [None] * n for k in ("rel", "at_eps_low", "at_eps_high")}
    if sides and "modifier" in rec:
        rec["modifier"] = "normsys on the signal of every channel, hi = 1 + up, lo = 1/(1 + down)"
    for row in rows:
        j = int(np.argmin(np.abs(inp.masses - row["mass"])))
        rec["rel"][j], rec["at_eps_low"][j] = row["rel"], row["eps_low"]
        rec["at_eps_high"][j] = row["eps_high"]
        for s in sides:
            if s in row:
                rec[s]["rel"][j], rec[s]["at_eps_low"][j] = row[s]["rel"], row[s]["eps_low"]
                rec[s]["at_eps_high"][j] = row[s]["eps_high"]
        if row.get("unresolved"):  # N_sig not resolved at eps_low or eps_high
            rec.setdefault("unresolved", [False] * n)[j] = True
        if row.get("fallback"):  # the edges that took the largest resolved size (edge_size)
            rec.setdefault("fallback", [[] for _ in range(n)])[j] = list(row["fallback"])


def _observed_source(v: Any) -> str:
    """How one channel's observed counts were given (``reach.observed.<channel>``)."""
    if getattr(v, "histogram", None):
        return "histogram " + str(v.histogram)
    if getattr(v, "masses", None) is not None:
        return "event masses"
    return "per mass point" if isinstance(v, list) else "one count for every mass point"


def _statistics_meta(config: AnalysisConfig, inp: ReachInputs) -> dict[str, Any]:
    """``reach.json`` ``meta.statistics``: the statistics inputs as used."""
    rc = config.reach
    observed = None
    if inp.observed is not None:
        n = inp.masses.size
        observed = {
            ch: np.asarray(v).reshape(n, -1).sum(axis=1).round().astype(int).tolist()
            for ch, v in inp.observed.items()
        }
    return {
        "background": dict(rc.background or {}),
        "background_kappa": dict(rc.background_kappa or {}),
        "efficiency_uncertainty": rc.efficiency_uncertainty,
        "n_pot_rel_uncertainty": rc.n_pot_rel_uncertainty,
        "template": rc.template,
        "mass_resolution": rc.mass_resolution,
        "window_sigmas": rc.mass_window_sigmas,
        "observed_counts": observed,
        "observed_source": None
        if rc.observed is None
        else {ch: _observed_source(v) for ch, v in rc.observed.items()},
    }


def reach_meta(config: AnalysisConfig, inp: ReachInputs, res: ScanResult, wall: float) -> dict[str, Any]:
    """``reach.json`` ``meta`` (also the workspaces index's): provenance, method, inputs."""
    rc = config.reach
    return make_meta(
        config_sha256=config.section_sha256("beam", "detector", "reach", "seed"),
        seed=config.seed,
        inputs=[inp.yields_path],
        stage="reach",
        method=res.method,
        method_note=(
            "exact: hybrid CLs (Poisson sums exact, log-normal nuisances by quadrature); "
            "toys: pyhf pseudo-experiments; asymptotic: pyhf asymptotic formulae"
        ),
        eps_method="per-mass upper limit on the signal count, eps boundaries where "
        "N_sig(m, eps) = s_up(m) (see gammastar.reach.stage)",
        n_pot=inp.n_pot,
        yield_scale=inp.yield_scale,
        **inp.yield_scale_info,
        n_pot_rel_uncertainty=rc.n_pot_rel_uncertainty,
        statistics=_statistics_meta(config, inp),
        channels=list(rc.channels),
        sampler=inp.source.description,
        production=rc.production,
        geometry=inp.geometry.model_dump(),
        yields_n_pot=inp.yields.meta.get("n_pot"),
        seconds=dict(res.seconds, total=wall),
        workers=res.workers,
        workspaces_poi="n_signal = expected signal events (template normalised to 1 event)",
        **(
            {"kinematic_ensemble": {"members": len(inp.ensemble), "seeds": inp.ensemble_seeds}}
            if inp.ensemble
            else {}
        ),
    )


def reach_document(
    config: AnalysisConfig, inp: ReachInputs, res: ScanResult, meta: dict[str, Any]
) -> dict[str, Any]:
    """The ``reach.json`` content (public contract, docs/reference/outputs.md) of a scan."""
    rc = config.reach
    limits_json = {
        "mass": res.masses.tolist(),
        **{b: [None if lim is None else lim.expected[b] for lim in res.limits] for b in BANDS},
        "observed": [None if lim is None else lim.observed for lim in res.limits],
        "method": [None if lim is None else lim.method for lim in res.limits],
    }
    if res.limits_high is not None:  # ε_high solved with its own sizes (mass_limit._sizes_at)
        highs = res.limits_high
        limits_json["eps_high"] = {
            **{b: [None if lim is None else lim.expected[b] for lim in highs] for b in BANDS},
            "observed": [None if lim is None else lim.observed for lim in highs],
        }
    nuis_record, impact = inp.nuisance_record, res.impact
    return {
        "cl": rc.cl,
        "expected": _bands_json(res, "0"),
        "bands": {b: _bands_json(res, b) for b in ("-2", "-1", "+1", "+2")},
        **({"observed": _bands_json(res, "obs")} if "obs" in res.boundaries else {}),
        "event_lines": {
            k.split("_", 1)[1]: _bands_json(res, k)
            for k in res.boundaries
            if k.startswith("events_")
        },
        "signal_limit": limits_json,
        "extrapolation": _extrapolation_json(res, rc.extrapolation, inp.yields),
        **({"nuisances": nuis_record} if nuis_record is not None else {}),
        **({"impact": impact} if impact is not None else {}),
        "meta": meta,
    }


def _acceptance_arrays(res: ScanResult, dark: darkphoton.DarkSector | None) -> dict[str, Any]:
    """``acceptance.npz``'s arrays."""
    members = {}
    if res.acceptance_members is not None:
        members = {
            "acceptance_members": res.acceptance_members,
            "acceptance_spread": res.acceptance_members.std(axis=0, ddof=1),
        }
    return {
        "mass": res.masses,
        "eps": res.eps,
        "acceptance": res.acceptance,
        "nsig": res.nsig,
        "ctau": darkphoton.ctau(res.masses[:, None], res.eps[None, :], dark=dark),
        "acceptance_extrapolated": (
            res.acceptance_extrapolated
            if res.acceptance_extrapolated is not None
            else np.zeros_like(res.acceptance)
        ),
        **members,
    }


def write_reach(
    out: Path,
    res: ScanResult,
    reach: dict[str, Any],
    dark: darkphoton.DarkSector | None,
    *,
    force: bool,
) -> None:
    """Write the workspaces, their index, ``acceptance.npz`` and ``reach.json`` as one set,
    ``reach.json`` (the mark of a finished run) renamed into place last."""

    docs: dict[str, Any] = {}
    index = []
    for m, model in zip(res.masses, res.models, strict=True):
        if model is None:
            continue
        name = rundir.workspace_name(m)
        docs[name] = build_spec(model)
        index.append({"mass": float(m), "file": name})
    rd = rundir.RunDir(out)
    docs[rundir.WORKSPACES_INDEX] = {"workspaces": index, "meta": reach["meta"]}
    names = [*docs, rundir.ACCEPTANCE, rundir.REACH]
    with atomic_paths([out / n for n in names], force=force) as tmps:
        for tmp, (name, doc) in zip(tmps[: len(docs)], docs.items(), strict=True):
            tmp.write_text(rd.json_text(name, doc))  # the index schema-checked
        with open(tmps[-2], "wb") as f:
            np.savez(f, **_acceptance_arrays(res, dark))
        tmps[-1].write_text(rd.json_text(rundir.REACH, reach))  # schema-checked


def plot_reach_figures(
    config: AnalysisConfig,
    out: Path,
    res: ScanResult,
    *,
    closure: dict[str, Any] | None = None,
    nuisances: dict[str, Any] | None = None,
) -> None:
    """``figures/reach.png``, ``figures/reach_impact.png`` (with an impact table),
    ``figures/aprime_decays.png`` and ``figures/reach_flow_closure.png`` (with a
    ``flow_closure`` record that compared something)."""
    import matplotlib.pyplot as plt

    rd = rundir.RunDir(out)
    reach_png, decays_png, impact_png, closure_png, _ = map(rd.path, rundir.stage_figures("reach"))
    title = f"{config.name}: {config.reach.cl:.0%} CL, {res.method}"
    from gammastar.formats.bounds import read_config_bounds

    plt.close(plot_reach(res, reach_png, title=title, bounds=read_config_bounds(config)))
    if res.impact is not None:

        plt.close(plot_impact(res.impact, impact_png, title=f"{config.name}: impact on s_up"))
    plt.close(darkphoton.plot_decays(str(decays_png)))
    if closure is not None and closure.get("n_compared"):

        kin = None
        if nuisances is not None and "kinematic_model" in nuisances.get("nuisances", {}):
            kin = {"mass": nuisances["mass"], **nuisances["nuisances"]["kinematic_model"]}
        title = f"{config.name}: the flow against its pairs where the detector looks"
        plt.close(plot_closure(closure, closure_png, kinematic=kin, title=title))


def reach_dir(config: Any, output: str | Path | None = None) -> Path:
    """Where the reach of ``config`` writes: the run directory (``output``, else the config's),
    or its ``reach.production``'s folder inside it (:data:`gammastar.source.modes.PRODUCTIONS`)."""
    root = Path(output) if output is not None else config.output_dir
    sub = PRODUCTIONS[config.reach.production].subdir
    return root if sub is None else root / sub


def plot_productions(config: Any, out: Path, reach: dict[str, Any]) -> Path | None:
    """``figures/reach_productions.png`` (:func:`gammastar.reach.plots.plot_reach_productions`):
    this reach beside the other productions' already written in the same run directory; the
    figure goes into each production's folder. ``None``: no other reach there."""
    import matplotlib.pyplot as plt

    root = out if PRODUCTIONS[config.reach.production].subdir is None else out.parent
    docs = []
    for name, prod in PRODUCTIONS.items():
        where = root if prod.subdir is None else root / prod.subdir
        if name == config.reach.production:
            docs.append((name.replace("_", " "), reach))
        elif (where / rundir.REACH).exists():
            try:
                docs.append((name.replace("_", " "), rundir.RunDir(where).read_json(rundir.REACH)))
            except GammastarError as exc:  # a figure: an unreadable neighbour is left out
                closure_log.warning("reach: %s left out of the productions figure: %s", where, exc)
    if len(docs) < 2:
        return None
    path = rundir.RunDir(out).path(rundir.stage_figures("reach")[-1])
    from gammastar.formats.bounds import read_config_bounds

    title = f"{config.name}: {config.reach.cl:.0%} CL, data-driven and standard recipe"
    plt.close(plot_reach_productions(docs, path, title=title, bounds=read_config_bounds(config)))
    return path


@dataclass(frozen=True)
class ReachResult(StageResult):
    """What :func:`run_reach` wrote: ``reach.json`` (``path``), its ``document``, and the
    ``scan`` (:class:`ScanResult`) it was made from."""

    scan: ScanResult | None = None


def run_reach(
    config: AnalysisConfig,
    *,
    force: bool = False,
    source: Source | SamplerLike | None = None,
    output: str | Path | None = None,
) -> ReachResult:
    """The ``reach`` stage: read yields and the flow, write ``reach.json``, ``workspaces/``,
    ``acceptance.npz``, ``figures/reach.png`` and ``figures/aprime_decays.png`` in the run directory.

    A thin orchestration: :func:`reach_inputs`, :meth:`ScanSettings.from_config`,
    :func:`scan_with`, :func:`reach_meta`, :func:`reach_document`, :func:`write_reach`,
    :func:`plot_reach_figures`.

    Arguments:
        config: the :class:`~gammastar.config.AnalysisConfig`.
        force: overwrite existing outputs.
        source: the A′ kinematics (a :class:`Source` or a kinematics model, with the config's
            yields; default: the config's, :meth:`Source.from_config`).
        output: run directory (default: the config's).

    Returns:
        A :class:`ReachResult`: ``reach.json``, its document and the scan.
    """
    check_config(config)
    out = reach_dir(config, output)
    for name in OUTPUTS:
        check_writable(out / name, force)
    inp = reach_inputs(config, source=source, output=out)
    t0 = time.perf_counter()
    res = scan_with(
        inp.masses,
        inp.eps,
        sampler=inp.source,
        settings=ScanSettings.from_config(config, inp),
        ensemble=inp.ensemble,
    )
    _record_kinematic(inp, res)
    _record_extrapolation(inp, res)
    closure = None
    data_driven = config.reach.production == "data_driven"
    if config.reach.flow_closure and source is None and data_driven:  # the config's flow

        t1 = time.perf_counter()
        try:
            with limit_threads(None):  # its products are small, as the scan's
                closure = closure_record(config, inp, res)
        except GammastarError as exc:  # a check: it never stops the reach
            closure_log.warning("reach: the flow's closure was not computed: %s", exc)
            closure = {"skipped": str(exc)}
        res.seconds["flow_closure"] = time.perf_counter() - t1
    meta = reach_meta(config, inp, res, time.perf_counter() - t0)
    reach = reach_document(config, inp, res, meta)
    if closure is not None:
        reach["flow_closure"] = closure
    edges.warn(reach["expected"])
    # the figures (by-products) first: a figure that fails (no space) publishes nothing of
    # the stage, whose outputs then appear together, before the pipeline records the stage
    plot_reach_figures(config, out, res, closure=closure, nuisances=inp.nuisance_record)
    write_reach(out, res, reach, inp.dark, force=force)
    plot_productions(config, out, reach)
    return ReachResult(out / rundir.REACH, reach, res)
