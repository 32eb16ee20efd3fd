"""The comparison curves of ``yields.json``: ``theory`` and ``standard_recipe``.

:func:`theory_curves` (the bremsstrahlung A′ and χχ̄ bands, the π0 → γχχ̄ and J/ψ → χχ̄ lines;
docs/explanation/physics.md §8) and :func:`standard_recipe` (the generator-level recipe on the
yield's mass bins, from the mock files' ``meta``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gammastar.config import AnalysisConfig
from gammastar.errors import InputError
from gammastar.physics import bremsstrahlung as br
from gammastar.physics.millicharge import meson_branching_ratio
from gammastar.yields.npot import _input_paths, meta_from_root
from gammastar.yields.standard_recipe import (
    brems_interpolated,
    meson_yields_from_meta,
    standard_recipe_section,
)

log = logging.getLogger(__name__)


def brems_settings(cfg: AnalysisConfig) -> br.BremsSettings:
    """The bremsstrahlung curve's settings (``beam``, ``yields.brems_*``): the
    ``theory.brems_aprime`` curve's and the standard recipe's."""
    y = cfg.yields
    return br.BremsSettings(
        beam_energy=cfg.beam.energy,
        interaction_lengths=cfg.beam.interaction_lengths,
        z_min=y.brems_z_min,
        z_max=y.brems_z_max,
        pt_max=y.brems_pt_max,
        cutoff=y.brems_cutoff,
        band_factor=y.brems_band_factor,
        normalisation=y.brems_normalisation,
    )


def standard_recipe(cfg: AnalysisConfig, aprime: Mapping[str, Any]) -> dict[str, Any] | None:
    """``yields.json`` ``standard_recipe``: the generator-level recipe on ``aprime``'s mass bins
    (:func:`gammastar.yields.standard_recipe.standard_recipe_section`) with the mesons per POT
    of the input files' mock ``meta`` and the bremsstrahlung curve's settings; None (logged)
    when no input file carries them (real data: no generator behind it)."""
    metas = []
    for path in _input_paths(cfg):
        meta = meta_from_root(path) if path.exists() else None
        if meta is not None:
            metas.append((str(path), meta))
    if not metas:
        log.info("yields: no standard-recipe comparison (no input file carries a mock 'meta')")
        return None
    try:
        mesons = meson_yields_from_meta(metas)
    except InputError as err:
        log.warning("yields: no standard-recipe comparison (%s)", err)
        return None
    st = brems_settings(cfg)
    edges = np.asarray(aprime["bin_edges"], dtype=np.float64)
    return standard_recipe_section(
        aprime, mesons, brems=brems_interpolated(st, float(edges[0]), float(edges[-1])),
        brems_settings={**dataclasses.asdict(st), "curve": "theory.brems_aprime (central)"},
    )  # fmt: skip


def theory_curves(cfg: AnalysisConfig, aprime_mass: NDArray, mcp_mass: NDArray) -> dict[str, Any]:
    """Bremsstrahlung A′ and χχ̄ bands and the π0 → γχχ̄ / J/ψ → χχ̄ lines (docs/explanation/physics.md §8)."""

    y = cfg.yields
    st = brems_settings(cfg)
    lo = min(float(aprime_mass.min(initial=1.0)), 0.2)
    hi = max(float(aprime_mass.max(initial=0.2)), 1.2)
    grid = np.linspace(lo, hi, 300)
    a_c, a_lo, a_hi = br.aprime_yield_band(grid, st)
    # theory lines on a dense log grid spanning the requested χ masses (smooth curves)
    req = np.asarray(mcp_mass, dtype=np.float64)
    mc = np.unique(
        np.concatenate(
            [
                np.geomspace(min(req.min(initial=0.01), 0.005), max(req.max(initial=0.5), 1.6), 80),
                req,
            ]
        )
    )
    c_c, c_lo, c_hi = br.mcp_yield_band(mc, st, m_max=y.brems_mcp_mass_max)
    return {
        "brems_aprime": {
            "mass": grid,
            "per_pot_per_eps2": a_c,
            "low": a_lo,
            "high": a_hi,
            "cutoff_gev": [st.cutoff / st.band_factor, st.cutoff, st.cutoff * st.band_factor],
        },
        "brems_mcp": {"mass": mc, "per_pot_per_q2": c_c, "low": c_lo, "high": c_hi},
        "pi0_mcp": {
            "mass": mc,
            "per_pot_per_q2": y.pi0_per_pot * meson_branching_ratio("pi0", mc),
            "pi0_per_pot": y.pi0_per_pot,
        },
        "jpsi_mcp": {
            "mass": mc,
            "per_pot_per_q2": y.jpsi_per_pot * meson_branching_ratio("jpsi", mc),
            "jpsi_per_pot": y.jpsi_per_pot,
        },
        "settings": {
            "beam_energy": st.beam_energy,
            "interaction_lengths": st.interaction_lengths,
            "z_range": [st.z_min, st.z_max],
            "pt_max": st.pt_max,
            "normalisation": st.normalisation,
            "mcp_mass_max": y.brems_mcp_mass_max,
            "method": "FWW splitting function (arXiv:1311.3870 eq. 3) x sigma_pp(s')/sigma_pp(s) "
            "x |F1(m^2)|^2 x off-shell cut-off (arXiv:2108.05900)",
        },
    }
