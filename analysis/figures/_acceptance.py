"""Figs. 9 and 10 share one computation:
:func:`gammastar.reach.acceptance.grid.plot_acceptance_comparison` of the flows trained with and
without the combinatorial background."""

from __future__ import annotations

from typing import Any

import _common as c
import numpy as np

N_MAP_MASSES = 16
CTAUS = np.geomspace(1e-3, 1e3, 61)
"""cτ grid (m) of both figures (the package default)."""


def compare(cfg: Any, *, retrain: bool = False) -> dict[str, Any]:
    """Acceptance vs cτ for both flows on the paper's mock detector (``detector:`` section).

    Masses: :data:`_common.FIG_MASSES` for the curves and 16 masses spanning the flows' common
    range (at most 0.25–1.0 GeV) for the map; ``reach.samples`` A′ samples per mass; seed = the
    config's. Returns the dict of the package function (figures included, still open).
    """
    from gammastar.reach.acceptance.grid import ComparisonGrid, plot_acceptance_comparison
    from gammastar.source.geometry import Geometry

    with_bkg, no_bkg = c.flows_with_and_without_background(cfg, retrain=retrain)
    lo = max(with_bkg.mass_range[0], no_bkg.mass_range[0], 0.25)
    hi = min(with_bkg.mass_range[1], no_bkg.mass_range[1], 1.0)
    curves = tuple(m for m in c.FIG_MASSES if lo <= m <= hi)
    res = plot_acceptance_comparison(
        with_bkg,
        no_bkg,
        Geometry.from_config(cfg.detector),
        grid=ComparisonGrid(
            masses_curve=curves,
            masses_map=np.linspace(lo, hi, N_MAP_MASSES),
            ctaus=CTAUS,
            n=cfg.reach.samples,
            seed=cfg.seed,
        ),
        labels=("NF", "NF (no bg)"),
    )
    rel = np.abs(res["rel_diff"])
    for name, sel in (
        ("cτ ≥ 10 m (long-lived)", CTAUS >= 10),
        ("1 m ≤ cτ < 10 m", (CTAUS >= 1) & (CTAUS < 10)),
        ("0.1 m ≤ cτ < 1 m", (CTAUS >= 0.1) & (CTAUS < 1)),
    ):
        v = rel[:, sel]
        v = v[np.isfinite(v)]
        if v.size:
            print(f"|relative difference| {name}: max {v.max():.3f}, median {np.median(v):.3f}")
    return res
