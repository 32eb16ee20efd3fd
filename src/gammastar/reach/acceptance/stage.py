"""The ``gammastar acceptance`` stage (:func:`run_acceptance`): the reach's A′ kinematics
decayed in the config's detector on a (m, cτ) grid (:func:`gammastar.reach.acceptance.grid
.acceptance_grid`), with a second flow the Fig. 9/10 comparison; ``acceptance_ctau.npz``,
``acceptance_ctau.json`` and their figures in the run directory.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from gammastar.config import AnalysisConfig
from gammastar.core import rundir
from gammastar.core.artifacts import atomic_path, check_writable, make_meta
from gammastar.core.figures import figure_style
from gammastar.reach.acceptance.grid import (
    ComparisonGrid,
    acceptance_grid,
    plot_acceptance_comparison,
)
from gammastar.source.geometry import Geometry
from gammastar.source.production import load_yields
from gammastar.source.source import Source

__all__ = ["run_acceptance"]


# --------------------------------------------------------------------------- the stage
@figure_style()
def _plot_curves(acc: NDArray, masses: NDArray, ctaus: NDArray, path: Any, force: bool) -> None:
    """``figures/acceptance_ctau.png`` of one sampler: acceptance vs cτ at three of the map's
    masses."""
    import matplotlib.pyplot as plt


    fig, ax = plt.subplots()
    for k in (1, 7, 14):
        ax.loglog(ctaus, acc[k], label=f"m = {masses[k]:.3g} GeV")
    ax.set_xlabel(r"$c\tau$ [m]")
    ax.set_ylabel("acceptance")
    ax.legend()
    with atomic_path(path, force=force) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def run_acceptance(config: AnalysisConfig, *, compare: Any = None, force: bool = False) -> Any:
    """The ``gammastar acceptance`` stage: the reach's A′ kinematics (with fiducial-region
    yields, the flow inside the region and the yields' fitted model outside it, as
    ``gammastar reach`` uses them) decayed in the config's detector, on 16 masses × 61 cτ
    values; with ``compare`` (a second flow) the Fig. 9/10 analogues
    (:func:`plot_acceptance_comparison`).

    Writes ``acceptance_ctau.npz``, ``acceptance_ctau.json`` and
    ``figures/acceptance_ctau.png`` (+ ``figures/acceptance_reldiff.png``) in the run directory.

    Arguments:
        config: the :class:`~gammastar.config.AnalysisConfig`.
        compare: a second flow's directory, or ``None``.
        force: overwrite existing outputs.

    Returns:
        The path of ``acceptance_ctau.npz``.
    """

    out = config.output_dir
    rd = rundir.RunDir(out)
    curves_png, reldiff_png = rundir.stage_figures("acceptance")
    for name in (rundir.ACCEPTANCE_CTAU, rundir.ACCEPTANCE_CTAU_JSON, curves_png):
        check_writable(out / name, force)
    ypath = config.resolve(config.reach.yields)
    yields = load_yields(ypath) if ypath.exists() else None
    source = Source.from_config(config, yields)
    geometry = Geometry.from_config(config.detector)
    lo, hi = source.mass_range or (0.25, 1.0)
    masses = np.linspace(max(lo, 0.22), hi, 16)
    ctaus = np.geomspace(1e-3, 1e3, 61)
    grid = ComparisonGrid(
        masses_curve=tuple(float(x) for x in np.quantile(masses, [0.1, 0.5, 0.9])),
        masses_map=masses,
        ctaus=ctaus,
        n=config.reach.samples,
        seed=config.seed,
    )
    rel = None
    if compare is not None:
        from gammastar.flow.model import load

        res = plot_acceptance_comparison(
            source,
            load(compare),
            geometry,
            grid=grid,
            labels=(source.description, f"{compare}"),
            path_curves=str(out / curves_png),
            path_map=str(out / reldiff_png),
        )
        acc, rel = res["acc_a"], res["rel_diff"]
    else:
        acc = acceptance_grid(source, masses, ctaus, geometry, n=grid.n, seed=grid.seed)
        _plot_curves(acc, masses, ctaus, out / curves_png, force)
    with atomic_path(out / rundir.ACCEPTANCE_CTAU, force=force) as tmp, open(tmp, "wb") as f:
        np.savez(
            f,
            mass=masses,
            ctau=ctaus,
            acceptance=acc,
            rel_diff=rel if rel is not None else np.empty(0),
        )
    meta = make_meta(
        config_sha256=config.section_sha256("detector", "reach", "seed"),
        seed=config.seed,
        stage="acceptance",
        sampler=source.description,
        compare=str(compare) if compare else None,
    )
    rd.write_json(
        rundir.ACCEPTANCE_CTAU_JSON,
        {"mass": masses, "ctau": ctaus, "acceptance": acc, "meta": meta},
        force=force,
    )
    return rd.path(rundir.ACCEPTANCE_CTAU)
