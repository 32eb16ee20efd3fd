"""The yields of one flavour from its inputs (:class:`gammastar.yields.inputs.YieldInputs`).

``_yields``: the A′ and χχ̄ yields from the pairs or from ``unfolded_m``; in the fiducial phase
space first the fiducial-region yields, the fitted extrapolation and the resolution migration
(``_fiducial_yields``); :func:`flag_acceptance_loss` (flag ``acceptance_lost``) and the
warnings of the serious flags.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gammastar.config import AnalysisConfig
from gammastar.corrections.migration import migration_correction, read_simulation
from gammastar.corrections.pair_acceptance import fiducial_from_config
from gammastar.corrections.unfold import PHASE_SPACE_FIDUCIAL
from gammastar.yields.extrapolation.fitting import FitSettings, fit_extrapolation
from gammastar.yields.formulas import (
    AprimeYield,
    McpYield,
    aprime_yield,
    aprime_yield_from_pairs,
    mcp_yield_from_hist,
    mcp_yield_from_pairs,
)
from gammastar.yields.inputs import YieldInputs

log = logging.getLogger(__name__)


def _fiducial_yields(
    cfg: AnalysisConfig,
    pairs: Any,
    edges: NDArray,
    n_pot: float,
    m_chi: NDArray,
    m_lepton: float,
) -> dict[str, Any]:
    """The fiducial-region yields, the fitted extrapolation and the full-phase-space pair
    weights (``weight_full`` = weight / f_F(m)); on mock data also the generator's true f_F.

    The A′ yield of the main keys is then computed from ``weight_full``: inside the fiducial
    region it is the data's, outside the model's (docs/explanation/method.md)."""
    fiducial = fiducial_from_config(cfg)
    m = pairs["m"].to_numpy()
    w = pairs["weight"].to_numpy()
    ap_fid = aprime_yield_from_pairs(
        m, w, n_pot, edges, m_lepton=m_lepton, bin_width=cfg.yields.mass_bin_width,
        charge=pairs["charge"].to_numpy(),
    )  # fmt: skip
    mcp_fid = mcp_yield_from_pairs(
        m, w, n_pot, m_chi, m_lepton=m_lepton, mass_range=(float(edges[0]), float(edges[-1]))
    )
    # ȳ as yields.extrapolation_y_mean says (FitSettings.from_config)
    ex = fit_extrapolation(m, pairs["pT"].to_numpy(), pairs["y"].to_numpy(), w, ap_fid.edges,
                           fiducial, settings=FitSettings.from_config(cfg))  # fmt: skip
    f_pair = ex.at(m)[0]
    ext = ex.as_dict()
    mig = _migration(cfg, fiducial, ap_fid.edges)
    ext["resolution_migration"] = (
        {"applied": False, "note": "yields.resolution_migration not given: Y = Y_F / f_F"}
        if mig is None
        else {"applied": True, **mig.as_dict()}
    )
    c_pair = np.ones(m.shape) if mig is None else mig.at_pairs(m)
    aprime = {
        "per_pot_per_eps2_fiducial": ap_fid.per_pot_per_eps2,
        "stat_err_fiducial": ap_fid.stat_err,
        "fiducial_fraction": ex.fiducial_fraction,
        "fiducial_fraction_err": ex.fiducial_fraction_err,
        "extrapolated_fraction": 1.0 - ex.fiducial_fraction,
    }
    mcp = {"per_pot_per_q2_fiducial": mcp_fid.per_pot_per_q2, "stat_err_fiducial": mcp_fid.stat_err}
    log.info(
        "yields: fiducial region holds %s of the γ* (model fit, per mass bin)",
        ", ".join(f"{f:.2f}" for f in ex.fiducial_fraction[:: max(1, len(ex.mass) // 6)]),
    )
    return {"aprime": aprime, "mcp": mcp, "extrapolation": ext, "weight_full": w * c_pair / f_pair}


def _migration(cfg: AnalysisConfig, fiducial: Any, edges: NDArray) -> Any:
    """The configured simulation's migration correction (``yields.resolution_migration``) on
    the yield bins ``edges``, or ``None``."""

    mc = cfg.yields.resolution_migration
    if mc is None:
        return None
    paths = [cfg.resolve(p) for p in mc.simulation]
    sim = read_simulation(paths, tree=mc.tree, histogram=mc.histogram)
    seed = cfg.seed if mc.seed is None else mc.seed
    mig = migration_correction(sim, fiducial, edges, bootstrap=mc.bootstrap,
                               seed=seed, simulation=[str(p) for p in paths])  # fmt: skip
    if mig.uncorrected:
        log.warning(
            "yields: resolution_migration: %d mass bin(s) left uncorrected (no simulated γ*, or "
            "a bootstrap replica without any in F): %s GeV",
            len(mig.uncorrected),
            ", ".join(f"{0.5 * (edges[i] + edges[i + 1]):.3f}" for i in mig.uncorrected),
        )
    centres = 0.5 * (edges[1:] + edges[:-1])
    k = np.argsort(np.abs(np.nan_to_num(mig.correction, nan=1.0) - 1.0))[::-1][:3]
    largest = ", ".join(
        f"{mig.correction[i]:.3f} ± {mig.correction_err[i]:.3f} at {centres[i]:.3f} GeV"
        for i in sorted(k)
    )
    log.info("yields: resolution migration from %d simulated γ*: c = %s", mig.sources, largest)
    return mig


ACCEPTANCE_LOST_FLAG = 0.05
"""A yield point is flagged ``acceptance_lost`` when more than this fraction of the generated
γ* of its mass range lies in (m, pT) bins below ``unfold.min_acceptance`` (full phase space)."""


def flag_acceptance_loss(
    loss: tuple[np.ndarray, np.ndarray], ap: AprimeYield, mcp: McpYield, m_lepton: float
) -> list[float]:
    """Add ``acceptance_lost`` to the A′ bins whose mean lost fraction (over the native bins
    inside) exceeds :data:`ACCEPTANCE_LOST_FLAG`, and to the χχ̄ points whose sum (m > 2m_χ)
    includes such a native bin. Returns the A′ bins' lost fractions.

    Example:
        >>> ap = AprimeYield(np.array([.3, .5]), np.array([.2, .4, .6]), np.ones(2), np.ones(2),
        ...                  np.ones(2), [[], []], 1.0)
        >>> mcp = McpYield(np.array([.05, .25]), np.ones(2), np.ones(2), [[], []], 1.0, "pairs")
        >>> flag_acceptance_loss((np.array([.2, .3, .4, .5, .6]), np.array([.4, .2, 0, 0])),
        ...                      ap, mcp, 0.1057)
        [0.30000000000000004, 0.0]
        >>> ap.flags, mcp.flags
        ([['acceptance_lost'], []], [['acceptance_lost'], []])
    """
    edges, values = loss
    centres = 0.5 * (edges[1:] + edges[:-1])
    out = []
    for i in range(len(ap.mass)):
        inside = (centres >= ap.edges[i]) & (centres < ap.edges[i + 1]) & np.isfinite(values)
        f = float(values[inside].mean()) if inside.any() else float("nan")
        out.append(f)
        if f > ACCEPTANCE_LOST_FLAG:
            ap.flags[i].append("acceptance_lost")
    lossy = centres[np.nan_to_num(values) > ACCEPTANCE_LOST_FLAG]
    for i, m_chi in enumerate(np.atleast_1d(mcp.mass)):
        if lossy.size and lossy.max() > 2 * max(float(m_chi), m_lepton):
            mcp.flags[i].append("acceptance_lost")
    return out


def _yields(
    cfg: AnalysisConfig, inp: YieldInputs
) -> tuple[AprimeYield, str, McpYield, dict[str, Any] | None]:
    """``(A′ yield, its source, χχ̄ yield, fiducial-region document or None)``: from the pairs
    (``pairs``, or ``auto`` when they sum to ``unfolded_m``; always in the fiducial phase
    space, with the full-phase-space weights) or from the histogram."""
    ycfg, m_lepton, n_pot = cfg.yields, cfg.input.lepton_mass, inp.n_pot
    unf = inp.hists["unfolded_m"]
    edges = np.asarray(unf.axes[0].edges)
    m_chi = np.asarray(ycfg.mcp_masses, dtype=np.float64)
    pairs, fid = inp.pairs, None
    if inp.phase_space == PHASE_SPACE_FIDUCIAL:
        fid = _fiducial_yields(cfg, pairs, edges, n_pot, m_chi, m_lepton)
        # from here on the pairs stand for the full phase space: each weight / f_F(m)
        pairs = pairs.assign(weight=fid.pop("weight_full"))

    def use_pairs(choice: str) -> bool:
        return pairs is not None and (
            fid is not None or choice == "pairs" or (choice == "auto" and bool(inp.consistent))
        )

    if use_pairs(ycfg.aprime_source):
        ap = aprime_yield_from_pairs(
            pairs["m"].to_numpy(), pairs["weight"].to_numpy(), n_pot, edges, m_lepton=m_lepton,
            bin_width=ycfg.mass_bin_width, charge=pairs["charge"].to_numpy(),
        )  # fmt: skip
        ap_source = "pairs"
    else:
        ap = aprime_yield(
            unf, n_pot, m_lepton=m_lepton, bin_width=ycfg.mass_bin_width,
            comb=inp.hists.get("comb_m"), signal=inp.hists.get("signal_m"),
        )  # fmt: skip
        ap_source = "histogram"
    if use_pairs(ycfg.mcp_source):
        mcp = mcp_yield_from_pairs(
            pairs["m"].to_numpy(), pairs["weight"].to_numpy(), n_pot, m_chi, m_lepton=m_lepton,
            mass_range=(float(edges[0]), float(edges[-1])),
        )  # fmt: skip
    else:
        mcp = mcp_yield_from_hist(unf, n_pot, m_chi, m_lepton=m_lepton)
    return ap, ap_source, mcp, fid


def _warn_flags(ap: AprimeYield, channel: str | None = None) -> None:
    """Warn of the serious flags of ``ap``: the run's yield, or with ``channel`` one channel's
    yield of a both-channels run (its bins before the combination, which the other channel
    can cover)."""
    serious = {"negative", "empty", "below_threshold"}
    n_flagged = sum(1 for f in ap.flags if serious & set(f))
    if n_flagged:
        what, key = (f" ({channel}, before the combination)", f"flavours.{channel}.") \
            if channel else ("", "")  # fmt: skip
        log.warning(
            "yields%s: %d of %d A′ mass bins are negative, empty or below threshold "
            "(yields.json %saprime.flags)", what, n_flagged, len(ap.flags), key,
        )  # fmt: skip
