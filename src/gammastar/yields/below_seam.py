"""The extrapolation model fitted to a both-channels run's full-phase-space arm
(:func:`fit_below_seam`, :func:`fit_above_seam`).

Below the seam the yields are the full-phase-space channel's (a 2-D acceptance map), and a
reach without a flow takes every A′ there from a model. The model is fitted as the fiducial
channel's is (:func:`gammastar.yields.extrapolation.fitting.fit_extrapolation`), to the same
pairs reweighted from the map's 1/A(m, p_T) to the per-pair 1/A(m, q) of the channel's own
lepton acceptance (``yields.extrapolation_below_seam``): a dielectron arm at small angles sees
the forward rapidities that a beam dump looks at. With ``above_seam`` the arm's pairs above
the seam are fitted too: a reach without a flow then takes the A′ kinematics there from the
arm's model, normalised in the fiducial channel's region
(:func:`gammastar.yields.extrapolation.nsig.arm.arm_in_fiducial`).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gammastar.config import AnalysisConfig
from gammastar.corrections.pair_acceptance import FiducialRegion
from gammastar.corrections.pair_acceptance.lepton import LeptonAcceptance
from gammastar.corrections.pair_acceptance.table import PairAcceptance
from gammastar.errors import InputError
from gammastar.physics.vector_decay import lambda_for_lepton
from gammastar.yields.extrapolation.fitting import FitSettings, fit_extrapolation
from gammastar.yields.extrapolation.result import Extrapolation

__all__ = [
    "LAMBDA_MIN_BETA2",
    "above_seam_record",
    "arm_region",
    "below_seam_record",
    "below_seam_region",
    "below_seam_weights",
    "fit_above_seam",
    "fit_below_seam",
]

log = logging.getLogger(__name__)


LAMBDA_MIN_BETA2 = 0.5
"""The lowest β² = 1 − 4m_ℓ²/m² of the fiducial channel's leptons at which :func:`arm_region`
takes their λ_θ (dimuons from m ≈ 0.30 GeV): dρ₀₀/dλ_θ grows as 1/β², so a measured λ_θ of
±0.1 at 0.22 GeV (β² ≈ 0.08) spans every ρ₀₀."""


def below_seam_region(cfg: AnalysisConfig, seam: float) -> FiducialRegion:
    """The fit's region: A(m, q) ≥ ``min_acceptance`` of ``yields.extrapolation_below_seam``'s
    lepton acceptance (the selection's lepton cuts of ``cfg``, the full-phase-space flavour's
    config, on top), from the selection's lowest mass to the seam."""
    return arm_region(cfg, (cfg.selection.mass_min, seam))


def arm_region(cfg: AnalysisConfig, mass_range: tuple[float, float],
               lambda_from: PairAcceptance | None = None) -> FiducialRegion:  # fmt: skip
    """:func:`below_seam_region` over ``mass_range`` (GeV); ``lambda_from``: λ_θ(m) taken
    from that table's mass nodes (linear between them) instead of ``decay_lambda_theta``
    where its leptons' β² = 1 − 4m_ℓ²/m² ≥ :data:`LAMBDA_MIN_BETA2` (nearer their threshold
    the inversion to ρ₀₀ turns the measurement's noise into any λ_θ, and
    ``decay_lambda_theta`` stands),
    carried from its leptons to this config's: the γ*'s spin density ρ₀₀ from its λ_θ, then
    this lepton mass's λ_θ of that ρ₀₀ (:func:`gammastar.physics.vector_decay.lambda_for_lepton`:
    a transverse γ* has λ_θ = 1 for electrons but (1 − 4m_μ²/m²)/(1 + 4m_μ²/m²) for muons)."""
    block = cfg.yields.extrapolation_below_seam
    if block is None:
        raise InputError("yields.extrapolation_below_seam: not configured")
    sel = cfg.selection
    lepton = LeptonAcceptance.from_config(block.lepton_acceptance, resolve=cfg.resolve).intersect(
        sel.lepton_min_energy, sel.lepton_theta_min, sel.lepton_theta_max
    )
    pa = PairAcceptance.build(
        lepton,
        lepton_mass=cfg.input.lepton_mass,
        mass_range=(float(mass_range[0]), float(mass_range[1])),
        p_max=cfg.beam.energy,
        lambda_theta=block.decay_lambda_theta,
    )
    if lambda_from is not None:
        lam = np.broadcast_to(np.asarray(lambda_from.lambda_theta, dtype=np.float64), lambda_from.m_grid.shape)
        at = np.interp(pa.m_grid, lambda_from.m_grid, lam)
        m_l = lambda_from.lepton_mass
        pa = pa.with_lambda([
            lambda_for_lepton(v, m, m_l, cfg.input.lepton_mass)
            if 1.0 - 4 * m_l**2 / m**2 >= LAMBDA_MIN_BETA2 else float(block.decay_lambda_theta)
            for v, m in zip(at, pa.m_grid, strict=True)
        ])  # fmt: skip
    return FiducialRegion(pa, block.min_acceptance)


def below_seam_weights(pairs: Any, region: FiducialRegion) -> NDArray[np.float64]:
    """Each pair's weight with the map's acceptance (column ``acc``) replaced by the region's
    per-pair A(m, q): ``weight`` × acc / A inside the region, 0 outside (the background
    subtraction's sign, the efficiency and the conversion correction kept)."""
    m, qt, e = (pairs[c].to_numpy(np.float64) for c in ("m", "qT", "E"))
    a = np.asarray(region.acceptance.of_kinematics(m, qt, e), dtype=np.float64)
    inside = a >= region.min_acceptance
    w = pairs["weight"].to_numpy(np.float64) * pairs["acc"].to_numpy(np.float64)
    return np.where(inside, w / np.where(inside, a, 1.0), 0.0)


def fit_below_seam(cfg: AnalysisConfig, pairs: Any, edges: NDArray, seam: float) -> Extrapolation:
    """The model fitted below ``seam`` (GeV) to the full-phase-space channel's ``pairs``
    (columns ``m``, ``qT``, ``E``, ``pT``, ``y``, ``weight``, ``acc``) on the yield bins
    ``edges`` that lie below it, with the settings of ``yields`` (ȳ's rule, the p_T power) but
    σ_y fitted: the arm sees the rapidity distribution's forward side over several units,
    not the ±0.5 that make the dimuon fit take it from outside.

    Arguments:
        cfg: the full-phase-space flavour's config (its selection cuts and lepton mass).
        pairs: that flavour's pairs.
        edges: its A′ yield bin edges (those above the seam are dropped).
        seam: the seam (GeV).

    Raises:
        InputError: no yield bin below the seam, or no pair inside the region.
    """
    edges = np.asarray(edges, dtype=np.float64)
    edges = edges[edges <= seam * (1 + 1e-9)]
    if edges.size < 2:
        raise InputError(f"yields.extrapolation_below_seam: no yield bin below the seam {seam:g} GeV")
    region = below_seam_region(cfg, float(edges[-1]))
    return _fit_arm(cfg, pairs, edges, region, "below the seam")


def fit_above_seam(cfg: AnalysisConfig, pairs: Any, edges: NDArray, seam: float,
                   lambda_from: PairAcceptance | None = None) -> Extrapolation:  # fmt: skip
    """:func:`fit_below_seam` on the yield bins from ``seam`` up: the arm's pairs there,
    inside its lepton acceptance, the model that a reach without a flow samples above the seam
    (``yields.extrapolation_below_seam.above_seam``). The fiducial channel sees the central
    rapidities, the arm the forward ones where a beam dump looks; the fits share no data.
    ``lambda_from``: the per-pair acceptance's λ_θ(m) from that table (the fiducial channel's,
    measured there: the same γ*, whose decay anisotropy the arm's weights need).

    Raises:
        InputError: no yield bin above the seam, or no pair inside the region.
    """
    edges = np.asarray(edges, dtype=np.float64)
    edges = edges[edges >= seam * (1 - 1e-9)]
    if edges.size < 2:
        raise InputError(f"yields.extrapolation_below_seam.above_seam: no yield bin above the seam {seam:g} GeV")
    region = arm_region(cfg, (float(edges[0]), float(edges[-1])), lambda_from)
    try:
        return _fit_arm(cfg, pairs, edges, region, "above the seam")
    except InputError as exc:
        raise InputError(f"yields.extrapolation_below_seam.above_seam: {exc}") from exc


def _fit_arm(cfg: AnalysisConfig, pairs: Any, edges: NDArray, region: FiducialRegion,
             where: str) -> Extrapolation:  # fmt: skip
    m = pairs["m"].to_numpy()
    sel = pairs[(m >= edges[0]) & (m < edges[-1])]
    w = below_seam_weights(sel, region)
    # the other error method (compare) is a study of the dimuon fit, four more fits here
    settings = dataclasses.replace(FitSettings.from_config(cfg), y_sigma=None, y_sigma_source=None,
                                   compare=False)
    ex = fit_extrapolation(
        sel["m"].to_numpy(), sel["pT"].to_numpy(), sel["y"].to_numpy(), w, edges, region,
        settings=settings,
    )  # fmt: skip
    log.info(
        "yields: %s, the model fitted to %d pairs inside the arm's lepton acceptance: "
        "ȳ %.2f, σ_y %.2f, T %.3f-%.3f GeV",
        where, int(np.count_nonzero(w)), float(ex.y_mean[0]), float(ex.y_sigma[0]),
        float(np.min(ex.temperature)), float(np.max(ex.temperature)),
    )  # fmt: skip
    return ex


def below_seam_record(cfg: AnalysisConfig, per: dict[str, Any], seam: float) -> dict[str, Any] | None:
    """``yields.json`` ``extrapolation.below_seam`` of a both-channels run (``per``: the
    yields stage's per-channel ``cfg``, ``inp``, ``ap``): the fit of :func:`fit_below_seam` to
    the full-phase-space channel with its ``channel``; ``None`` when
    ``yields.extrapolation_below_seam`` is not configured."""
    if cfg.yields.extrapolation_below_seam is None:
        return None
    ch = _full_channel(per)
    ex = fit_below_seam(per[ch]["cfg"], per[ch]["inp"].pairs, per[ch]["ap"].edges, seam)
    return {**ex.as_dict(), "channel": ch}


def above_seam_record(cfg: AnalysisConfig, per: dict[str, Any], seam: float) -> dict[str, Any] | None:
    """``yields.json`` ``extrapolation.arm_above_seam``: :func:`fit_above_seam` of the
    full-phase-space channel with its ``channel`` (as :func:`below_seam_record`), λ_θ(m) the
    fiducial channel's region's (``per``'s ``doc`` ``extrapolation.fiducial``, when there);
    ``None`` unless ``yields.extrapolation_below_seam.above_seam``."""
    block = cfg.yields.extrapolation_below_seam
    if block is None or not block.above_seam:
        return None
    ch = _full_channel(per)
    fid = next((per[c]["doc"]["extrapolation"]["fiducial"] for c in per
                if "fiducial" in (per[c].get("doc", {}).get("extrapolation") or {})), None)  # fmt: skip
    if fid is None:
        log.warning("yields: the arm's fit above the seam takes decay_lambda_theta (%g): no "
                    "fiducial channel's λ_θ(m) in this run", block.decay_lambda_theta)  # fmt: skip
    lam = None if fid is None else FiducialRegion.from_dict(fid).acceptance
    ex = fit_above_seam(per[ch]["cfg"], per[ch]["inp"].pairs, per[ch]["ap"].edges, seam, lam)
    return {**ex.as_dict(), "channel": ch}


def _full_channel(per: dict[str, Any]) -> str:
    """The one full-phase-space channel of the yields stage's ``per`` that has its pairs."""
    full = [c for c in per if per[c]["inp"].phase_space == "full"]
    if len(full) != 1 or per[full[0]]["inp"].pairs is None:
        raise InputError(
            "yields.extrapolation_below_seam: needs one full-phase-space channel with its pairs "
            "(pairs.parquet)"
        )
    return full[0]
