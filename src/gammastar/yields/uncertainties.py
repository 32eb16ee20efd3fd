r"""The prediction's own uncertainties as named nuisance parameters.

The yields stage writes, per A′ mass bin, the relative effect of every source on the yield
per POT per ε² (``yields.json`` ``uncertainties``, :func:`yield_uncertainties`); the reach
interpolates them to its masses (:func:`~gammastar.yields.nuisance.at_masses`) and puts each
one into every workspace as one ``normsys`` modifier of the signal, **one parameter shared by
all channels** (the A′ yield is the same dimuon measurement for every decay channel) and named
the same at every mass, so that a combination of mass points correlates it
(docs/explanation/reach.md "Named uncertainties").

Sources (:data:`gammastar.config.yields.BUILTIN_NUISANCES`):

* ``data_stat`` – the yield's statistical error √Σw² (``mcstat_<channel>`` without the named
  nuisances), incl. the like-sign subtraction's statistics; independent between mass bins.
* ``like_sign_r`` – R of N_comb = 2R√(N⁺⁺N⁻⁻) varied by ``uncertainties.r_factor_rel_err``:
  the subtracted combinatorial yield C scales with R, so δY/Y = ∓δR·C/W per bin (W the
  unfolded, subtracted sum of weights).
* ``acceptance_lambda_theta`` – the per-pair acceptance A(m, q) recomputed at λ_θ ± δλ
  (:class:`gammastar.corrections.pair_acceptance.table.PairAcceptance`), each pair re-weighted by
  A_λ/A_{λ±δλ}. A configured λ_θ (``uncertainties.lambda_theta_err``) holds the fiducial
  region (:func:`~gammastar.yields.lambda_theta.lambda_theta_variation`); a measured λ_θ
  (``yields.json`` ``polarisation.lambda_theta_err``) moves it as the selection's own region
  moves with λ̂, each polarisation bin alone, in quadrature
  (:func:`~gammastar.yields.lambda_theta.lambda_theta_moving_variation`).
* ``acceptance_map_stat`` – the statistics of an ``unfold.acceptance_map`` (2-D or 3-D): each
  map bin's binomial error √(A(1 − A)/N) (N its ``<key>_generated`` count) propagated to the
  yield per mass bin (:func:`~gammastar.yields.variations.acceptance_map_variation`; the pairs
  of one map bin share its error); 0 with a per-lepton acceptance computed from configured
  cuts (no map statistics).
* ``eta_mumu`` – η → μμ removal: 0 for the truth tag (exact), the subtracted peak ×
  ``uncertainties.eta_mumu_rel_err`` for the rate method.
* ``extrapolation`` – ``aprime.extrapolation_err`` (the fiducial fraction's fit error), only
  where the yields extrapolate beyond the fiducial region.
* ``resolution_migration`` – the statistics of the detector simulation behind the fiducial
  yields' migration correction (``yields.resolution_migration``, :mod:`gammastar.corrections.migration`);
  independent between mass bins; only where the correction is applied.
* ``kinematic_model`` – not a yield source: the reach's acceptance spread over the flow
  ensemble (``uncertainties.kinematic_model``; :func:`gammastar.source.source.ensemble_sources`,
  :func:`gammastar.reach.scan.scan`).
* ``extra`` – stated normalisation uncertainties (``uncertainties.extra``).

Every modifier is a ``normsys``: none of these sources moves the reconstructed-mass template of
the signal (a Gaussian at m_A′ of the detector's resolution); each changes only the rate at
that mass. Asymmetric up/down effects are recorded and symmetrised for the likelihood
(log-normal width ln(1 + r), r the mean of |up| and |down|), which the exact CLs construction
integrates exactly (:mod:`gammastar.reach.stats`).

This module offers the block, :func:`yield_uncertainties`; the sources' steps are in
:mod:`gammastar.yields.sources` (over :mod:`gammastar.yields.variations` and
:mod:`gammastar.yields.lambda_theta`), the record and its reading back (the reach's
:func:`~gammastar.yields.nuisance.reach_nuisances`) in :mod:`gammastar.yields.nuisance`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np

from gammastar.config import AnalysisConfig
from gammastar.yields.nuisance import Nuisance, _list
from gammastar.yields.sources import (
    _data_stat_nuisance,
    _eta_mumu_step,
    _extrapolation_step,
    _floats,
    _lambda_theta_step,
    _like_sign_nuisance,
    _map_statistics,
    _migration_nuisance,
    _refits_block,
)

log = logging.getLogger(__name__)

__all__ = [
    "yield_uncertainties",
]


def yield_uncertainties(
    cfg: AnalysisConfig,
    doc: Mapping[str, Any],
    *,
    hists: Mapping[str, Any],
    pairs: Any = None,
    grid: tuple[int, int, int] | None = None,
) -> dict[str, Any]:
    """The ``yields.json`` ``uncertainties`` block (module docstring).

    Each source is one step below, in the block's order: the data's statistics, the like-sign
    normalisation, the λ_θ of the acceptance model, the acceptance map's statistics, the η → μμ
    removal, the fiducial extrapolation, the resolution migration and the stated extras.

    Arguments:
        cfg: the analysis config (``uncertainties``, ``background``, ``unfold``).
        doc: the ``yields.json`` document so far (``aprime`` with ``mass``, ``bin_edges``,
            ``per_pot_per_eps2``, ``stat_err``, optionally ``extrapolation_err``;
            ``polarisation`` when measured).
        hists: ``unfolded_m``, ``comb_m``, ``signal_m`` of ``histograms.root``.
        pairs: the pairs table (``m``, ``weight``, ``charge``; ``pT``, ``pz`` for the λ_θ
            variation), or ``None`` (the histograms then give the like-sign part).
        grid: the λ_θ tables' grid (default: that of the selection's table).

    Returns:
        ``{"mass": [...], "nuisances": {name: {kind, up, down, rel, origin, correlation}},
        "not_included": {name: why}}``.

    Raises:
        ConfigError: a source that applies has no stated size (names the key).
    """
    ap = doc["aprime"]
    mass = np.asarray(ap["mass"], dtype=float)
    edges = np.asarray(ap["bin_edges"], dtype=float)
    y = _floats(ap["per_pot_per_eps2"])
    out: dict[str, Nuisance] = {"data_stat": _data_stat_nuisance(y, _floats(ap["stat_err"]))}
    skipped: dict[str, str] = {}
    out["like_sign_r"], w_tot = _like_sign_nuisance(cfg, hists, pairs, edges)
    refits = _lambda_theta_step(cfg, doc, pairs, edges, grid, out, skipped)
    _map_statistics(cfg, pairs, edges, mass, out, skipped)
    _eta_mumu_step(cfg, hists["unfolded_m"], (mass, edges), w_tot, out, skipped)
    _extrapolation_step(doc, y, out, skipped)
    _migration_nuisance(doc, edges, out, skipped)
    skipped["kinematic_model"] = "a reach-stage source (the acceptance's flow ensemble)"
    for x in cfg.uncertainties.extra:
        r = np.full(mass.size, float(x.rel))
        out[x.name] = Nuisance(x.name, r, -r, f"uncertainties.extra: {x.origin}")
    block = {
        "mass": _list(mass),
        "nuisances": {k: v.as_dict() for k, v in out.items()},
        "not_included": skipped,
        "note": "relative effect on aprime.per_pot_per_eps2 per mass bin at ±1σ; every "
        "modifier is a normsys of the signal (docs/explanation/reach.md, Nuisance parameters)",
    }
    if refits is not None:
        block["lambda_theta_refits"] = _refits_block(refits)
    return block
