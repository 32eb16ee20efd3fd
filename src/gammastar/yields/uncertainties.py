r"""The prediction's own uncertainties as named nuisance parameters.

The yields stage writes, per A′ mass bin, the relative effect of every source on the yield
per POT per ε² (``yields.json`` ``uncertainties``, :func:`yield_uncertainties`); the reach
interpolates them to its masses (:func:`at_masses`) and puts each one into every workspace as
one ``normsys`` modifier of the signal, **one parameter shared by all channels** (the A′ yield
is the same dimuon measurement for every decay channel) and named the same at every mass, so
that a combination of mass points correlates it (docs/explanation/reach.md "Named uncertainties").

Sources (:data:`gammastar.config.yields.BUILTIN_NUISANCES`):

* ``data_stat`` – the yield's statistical error √Σw² (``mcstat_<channel>`` without the named
  nuisances), incl. the like-sign subtraction's statistics; independent between mass bins.
* ``like_sign_r`` – R of N_comb = 2R√(N⁺⁺N⁻⁻) varied by ``uncertainties.r_factor_rel_err``:
  the subtracted combinatorial yield C scales with R, so δY/Y = ∓δR·C/W per bin (W the
  unfolded, subtracted sum of weights).
* ``acceptance_lambda_theta`` – the per-pair acceptance A(m, q) recomputed at λ_θ ± δλ
  (:class:`gammastar.corrections.pair_acceptance.table.PairAcceptance`), each pair re-weighted by
  A_λ/A_{λ±δλ}. A configured λ_θ (``uncertainties.lambda_theta_err``) holds the fiducial
  region (:func:`lambda_theta_variation`); a measured λ_θ (``yields.json``
  ``polarisation.lambda_theta_err``) moves it as the selection's own region moves with λ̂,
  each polarisation bin alone, in quadrature (:func:`lambda_theta_moving_variation`).
* ``acceptance_map_stat`` – the statistics of an ``unfold.acceptance_map`` (2-D or 3-D): each
  map bin's binomial error √(A(1 − A)/N) (N its ``<key>_generated`` count) propagated to the
  yield per mass bin (:func:`acceptance_map_variation`; the pairs of one map bin share its
  error); 0 with a per-lepton acceptance computed from configured cuts (no map statistics).
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
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.corrections.background import eta_mumu_rate_peak
from gammastar.corrections.migration import applied_correction
from gammastar.corrections.pair_acceptance import FiducialRegion, fiducial_from_config
from gammastar.corrections.pair_acceptance.table import PairAcceptance
from gammastar.corrections.unfold import load_acceptance_map, split_map_spec
from gammastar.errors import ConfigError, GammastarError, InputError
from gammastar.physics.kinematics import rapidity_pz
from gammastar.yields.extrapolation.refits import refit_fractions, refit_moves
from gammastar.yields.extrapolation.result import Extrapolation

log = logging.getLogger(__name__)

__all__ = [
    "NUISANCE_KIND",
    "Nuisance",
    "acceptance_free_weights",
    "acceptance_map_variation",
    "at_masses",
    "interpolated_error",
    "lambda_bin_errors",
    "lambda_refits_at",
    "lambda_regions",
    "lambda_tables",
    "lambda_theta_moving_variation",
    "lambda_theta_refits",
    "lambda_theta_variation",
    "like_sign_variation",
    "read_uncertainties",
    "symmetrised",
    "yield_uncertainties",
]

NUISANCE_KIND = "normsys"
CORRELATED = "one parameter shared by all channels and mass points"
PER_BIN = "one parameter per mass point (independent between the yield's mass bins)"


@dataclass
class Nuisance:
    """One source: its relative effect on the yield per mass bin (up = +1σ, down = −1σ)."""

    name: str
    up: NDArray[np.float64]
    down: NDArray[np.float64]
    origin: str
    correlation: str = CORRELATED
    kind: str = NUISANCE_KIND

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "up": _list(self.up),
            "down": _list(self.down),
            "rel": _list(symmetrised(self.up, self.down)),
            "origin": self.origin,
            "correlation": self.correlation,
        }


def _list(a: ArrayLike) -> list[float | None]:
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(a, dtype=float)]


def symmetrised(up: ArrayLike, down: ArrayLike) -> NDArray[np.float64]:
    """The symmetric relative size r = (|up| + |down|)/2 (NaN → 0).

    Example:
        >>> symmetrised([0.1, np.nan], [-0.3, 0.0]).tolist()
        [0.2, 0.0]
    """
    u = np.nan_to_num(np.abs(np.asarray(up, dtype=float)))
    d = np.nan_to_num(np.abs(np.asarray(down, dtype=float)))
    return 0.5 * (u + d)


def _bin_sums(m: NDArray, w: NDArray, edges: NDArray) -> NDArray[np.float64]:
    return np.histogram(m, bins=edges, weights=w)[0]


def _rebin(native_edges: NDArray, values: NDArray, edges: NDArray) -> NDArray[np.float64]:
    """Sum native bins into ``edges`` (a subset of the native edges: the merged bins)."""
    idx = np.searchsorted(native_edges, edges, side="left")
    idx = np.clip(idx, 0, values.size)
    cum = np.concatenate([[0.0], np.cumsum(values)])
    return np.diff(cum[idx])


def acceptance_map_variation(
    m: ArrayLike,
    pt: ArrayLike,
    weight: ArrayLike,
    edges: ArrayLike,
    amap: Any,
    *,
    pz: ArrayLike | None = None,
) -> NDArray[np.float64]:
    r"""Relative 1σ of the yield per mass bin from the acceptance map's own statistics.

    A pair in map bin b carries w ∝ 1/A_b, so a change δA_b moves the weights of all the pairs
    in that bin together by −w δA_b/A_b. The map's bins are independent binomial estimates,
    δA_b² = A_b(1 − A_b)/N_b (N_b the generated sources of the bin), hence per yield bin j

    .. math:: \delta Y_j^2 = \sum_b \Big(\sum_{i \in b,\, j} w_i\Big)^2
              \frac{A_b (1 - A_b)}{N_b\,A_b^2}, \qquad r_j = \delta Y_j / |W_j|,

    W_j = Σ_{i∈j} w_i (the subtracted yield; like-sign pairs carry their negative weights, so
    a map bin's error acts on its net weight). Linear in δA_b/A_b (valid while N_b A_b ≫ 1).

    Arguments:
        m, pt, weight: the pairs (mass, pair p_T, the ``weight`` column).
        edges: the yield's mass bin edges.
        amap: the :class:`gammastar.corrections.unfold.AcceptanceMap` (its ``map`` has ``m_edges``,
            ``pt_edges``, ``values``) or :class:`gammastar.corrections.unfold.AcceptanceMap3D` (also
            ``y_edges``; then ``pz`` is needed), with ``generated`` counts.
        pz: the pairs' p_z (3-D map: the lab rapidity of the lookup).

    Returns:
        r_j per mass bin (NaN where W_j = 0).

    Raises:
        ValueError: the map has no generated counts.

    References:
        Binomial error of an efficiency, e.g. T. Ullrich, Z. Xu, arXiv:physics/0701199 (the
        normal approximation A(1 − A)/N); linear error propagation of w ∝ 1/A.
    """
    if amap.generated is None:
        raise ValueError("the acceptance map has no generated counts")
    m = np.asarray(m, dtype=float)
    pt = np.asarray(pt, dtype=float)
    w = np.asarray(weight, dtype=float)
    edges = np.asarray(edges, dtype=float)
    grid = getattr(amap, "map", amap)
    axes = [(grid.m_edges, m), (grid.pt_edges, pt)]
    if hasattr(amap, "y_edges"):

        pz = np.asarray(pz, dtype=float)
        y = rapidity_pz(pz, np.sqrt(m * m + pt * pt + pz * pz))
        axes.append((amap.y_edges, y))
    values = np.asarray(grid.values, dtype=float)
    gen = np.asarray(amap.generated, dtype=float)
    # the map bin of each pair (the nearest bin outside the map: the selection's `nearest`)
    idx = [np.clip(np.searchsorted(ed, x, side="right") - 1, 0, len(ed) - 2) for ed, x in axes]
    flat = np.ravel_multi_index(tuple(idx), values.shape)
    a = values.ravel()[flat]
    n = gen.ravel()[flat]
    with np.errstate(divide="ignore", invalid="ignore"):
        rel_a = np.where((a > 0) & (n > 0), np.sqrt(np.clip(a * (1 - a), 0, None) / n) / a, 0.0)
    j = np.searchsorted(edges, m, side="right") - 1
    ok = (j >= 0) & (j < edges.size - 1) & (w != 0)
    # Σ w per (yield bin, map bin), then Σ_b (W_jb δA_b/A_b)² per yield bin
    key = j[ok] * values.size + flat[ok]
    uniq, inv = np.unique(key, return_inverse=True)
    w_jb = np.bincount(inv, weights=w[ok], minlength=uniq.size)
    r_b = np.zeros(uniq.size)
    r_b[inv] = rel_a[ok]
    var = np.bincount(uniq // values.size, weights=(w_jb * r_b) ** 2, minlength=edges.size - 1)
    w_tot = _bin_sums(m, w, edges)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(w_tot != 0, np.sqrt(var) / np.abs(w_tot), np.nan)


def like_sign_variation(
    w_total: ArrayLike, comb: ArrayLike, rel_err: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r"""Relative yield change per mass bin when R → R(1 ± δR).

    N_comb = 2R√(N⁺⁺N⁻⁻) (and the per-pair like-sign weights) scale linearly with R, so the
    subtracted yield W = N_OS − C changes by ∓δR·C.

    Arguments:
        w_total: the subtracted, unfolded yield W per bin (Σ of all pair weights).
        comb: the subtracted combinatorial part C per bin (unfolded, > 0).
        rel_err: δR/R.

    Returns:
        ``(up, down)`` relative changes (NaN where W = 0).

    References:
        docs/explanation/physics.md §4 (like-sign estimate); :mod:`gammastar.corrections.background`.

    Example:
        >>> up, down = like_sign_variation([100.0], [50.0], 0.02)
        >>> up.tolist(), down.tolist()
        ([-0.01], [0.01])
    """
    w = np.asarray(w_total, dtype=float)
    c = np.asarray(comb, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(w != 0, rel_err * c / np.abs(w), np.nan)
    return -rel, rel


def lambda_theta_variation(
    pairs: Mapping[str, ArrayLike],
    edges: ArrayLike,
    nominal: Any,
    varied: tuple[Any, Any],
    *,
    min_acceptance: float,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Relative yield change per mass bin with the per-pair acceptance of another λ_θ.

    Each pair's weight w (∝ 1/A_λ) becomes w·A_λ/A_λ′, both looked up in the tables (so that
    their interpolation errors cancel). The fiducial region stays the nominal one (A_λ ≥
    ``min_acceptance``, where the weights are non-zero): the variation is that of the
    acceptance correction, not of the region's definition (moving pairs across its edge would
    add the extrapolation's change, a separate nuisance, and the noise of the largest weights).

    Arguments:
        pairs: ``m``, ``pT``, ``pz``, ``weight`` (the pairs table).
        edges: the yield's mass-bin edges.
        nominal: the :class:`~gammastar.corrections.pair_acceptance.table.PairAcceptance` the weights used.
        varied: the tables at λ_θ + δλ and λ_θ − δλ.
        min_acceptance: ``unfold.min_acceptance``.

    Returns:
        ``(up, down)`` relative changes of the bins' Σw (NaN where Σw = 0).

    References:
        Faccioli et al., Eur. Phys. J. C 69 (2010) 657 (the 1 + λ_θ cos²θ* decay
        distribution); :mod:`gammastar.corrections.pair_acceptance`.
    """
    m = np.asarray(pairs["m"], dtype=float)
    pt = np.asarray(pairs["pT"], dtype=float)
    pz = np.asarray(pairs["pz"], dtype=float)
    w = np.asarray(pairs["weight"], dtype=float)
    edges = np.asarray(edges, dtype=float)
    a0 = nominal.lookup(m, pt, pz)
    w0 = _bin_sums(m, w, edges)
    out = []
    for table in varied:
        a1 = table.lookup(m, pt, pz)
        ok = (a0 >= min_acceptance) & (a1 > 0)
        ratio = np.where(ok, a0 / np.where(ok, a1, 1.0), 0.0)
        w1 = _bin_sums(m, w * ratio, edges)
        with np.errstate(divide="ignore", invalid="ignore"):
            out.append(np.where(w0 != 0, (w1 - w0) / np.abs(w0), np.nan))
    return out[0], out[1]


def acceptance_free_weights(
    weight: ArrayLike,
    acc: ArrayLike,
    eff: ArrayLike,
    charge: ArrayLike,
    bins: ArrayLike,
    inside: ArrayLike | None = None,
) -> NDArray[np.float64]:
    """Each pair's weight with its acceptance divided out: its factor (1 for opposite-sign
    pairs, the like-sign −k_b, times what else the selection applies per pair: a conversion
    template's 1/(1 + R), an η → μμ rate scale) over ε.

    Inside the selection's region that is ``weight·acc``. Outside it the pair has no weight to
    read: its factor is the median ``weight·acc·ε`` of the pairs of the same charge class
    (opposite- or like-sign) inside the region in its ``bins`` entry (1 for opposite-sign,
    0 for like-sign pairs where the bin has none), over ε (0 where ε is not finite and
    positive, as :func:`gammastar.corrections.unfold.inverse_weights` treats it). What a pair weighs in a
    fiducial region that follows another λ_θ (over its A_λ′).

    Arguments:
        weight, acc, eff, charge: the pairs table's columns (``charge`` 0 for OS).
        bins: each pair's mass-bin index (the factors' bins).
        inside: whether each pair lies in the selection's region (default: ``weight`` ≠ 0).

    Returns:
        The weights times the acceptance, per pair.

    Example:
        >>> acceptance_free_weights([2.0, 0.0, -4.0, 0.0], [0.5, 0.01, 0.5, 0.02],
        ...     [1.0, 0.5, 1.0, 1.0], [0, 0, 2, -2], [0, 0, 0, 0]).tolist()
        [1.0, 2.0, -2.0, -2.0]
    """
    w = np.asarray(weight, dtype=float)
    eff = np.asarray(eff, dtype=float)
    charge, bins = np.asarray(charge), np.asarray(bins)
    inside = w != 0 if inside is None else np.asarray(inside, dtype=bool)
    base = w * np.asarray(acc, dtype=float)
    ok_eff = np.isfinite(eff) & (eff > 0)
    for k in np.unique(bins[~inside]):
        fill = (bins == k) & ~inside
        for like_sign, fallback in ((False, 1.0), (True, 0.0)):
            cls = (charge != 0) == like_sign
            ref = (bins == k) & cls & inside & ok_eff
            factor = float(np.median(base[ref] * eff[ref])) if ref.any() else fallback
            f = fill & cls
            base[f] = np.where(ok_eff[f], factor / np.where(ok_eff[f], eff[f], 1.0), 0.0)
    return base


def lambda_bin_errors(values: Any, errors: Any) -> dict[int, NDArray[np.float64]]:
    """Each measured polarisation bin moved alone: ``{k: shifts}`` with σ_k in bin k, 0 in the
    other bins with a λ̂ (held nodes of the selection's λ_θ(m), error or not) and NaN where
    there is no λ̂ (skipped, as :meth:`~gammastar.corrections.pair_acceptance.table.PairAcceptance.lambda_nodes`
    skips it); only bins with a λ̂ and a positive error are moved (``None`` reads as missing).

    Example:
        >>> {k: v.tolist() for k, v in lambda_bin_errors([0.1, None, 0.2, 0.0],
        ...                                            [0.05, 0.1, None, 0.07]).items()}
        {0: [0.05, nan, 0.0, 0.0], 3: [0.0, nan, 0.0, 0.07]}
    """
    val = np.array([np.nan if v is None else v for v in values], dtype=float)
    err = np.array([np.nan if v is None else v for v in errors], dtype=float)
    out = {}
    for k in np.flatnonzero(np.isfinite(val) & np.isfinite(err) & (err > 0)):
        e = np.where(np.isfinite(val), 0.0, np.nan)
        e[k] = err[k]
        out[int(k)] = e
    return out


def lambda_theta_moving_variation(
    pairs: Mapping[str, ArrayLike],
    edges: ArrayLike,
    nominal: Any,
    polarisation: Mapping[str, Any],
    *,
    min_acceptance: float,
    extrapolation: Any = None,
    seed: int = 0,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r"""Relative yield change per mass bin when the *measured* λ_θ moves within its error and
    the fiducial region follows it, as the selection's own region does.

    With ``unfold.decay_lambda_theta: measured`` the region F is A_λ̂ ≥ ``min_acceptance`` at
    the measured λ̂: a statistical fluctuation of λ̂ moves F's edge, where pairs carry the
    largest weights (up to 1/(``min_acceptance``·ε)). Holding F fixed
    (:func:`lambda_theta_variation`) over-states N_sig's response on the NA60-like mock
    (docs/validation/uncertainties-and-coverage.md "The λ_θ nuisance with the region following λ̂"). The extrapolation
    refitted in the moved F moves the full-phase-space yield more than the fiducial one, but
    not N_sig, where f_F also weighs the extrapolated part: hence the fiducial yield's
    change, by default.

    Each polarisation bin k is moved alone by ±σ_k (the bins' fits use disjoint pairs;
    λ_θ(m) moves by T_k(m)σ_k, :func:`lambda_tables`; bins with a λ̂ and no error stay where
    they are); every pair then weighs w·A_λ/A_λ′ inside the selection's region, or
    :func:`acceptance_free_weights` / A_λ′ outside it, where A_λ′ ≥ ``min_acceptance`` (0
    elsewhere),
    the fiducial yield is summed per mass bin, and with an ``extrapolation`` its model is
    refitted inside the moved F (:func:`gammastar.yields.extrapolation.refits.refit_fractions`, the fit
    groups the move reaches) and the full-phase-space yield Σ w/f_F(m) compared. The bins'
    changes add in quadrature (signed as the largest).

    Arguments:
        pairs: ``m``, ``pT``, ``pz``, ``weight``, ``acc``, ``eff``, ``charge`` (and ``y`` with
            an ``extrapolation``).
        edges: the yield's mass-bin edges.
        nominal: the selection's :class:`~gammastar.corrections.pair_acceptance.table.PairAcceptance` (at λ̂).
        polarisation: ``yields.json`` ``polarisation`` (``mass_edges``, ``lambda_theta``,
            ``lambda_theta_err``).
        min_acceptance: ``unfold.min_acceptance``.
        extrapolation: the nominal :class:`~gammastar.yields.extrapolation.result.Extrapolation` (``None``:
            the fiducial yields alone).
        seed: the nominal extrapolation fit's seed.

    Returns:
        ``(up, down)`` relative changes per mass bin (NaN where the yield is 0).

    References:
        Faccioli et al., Eur. Phys. J. C 69 (2010) 657; :mod:`gammastar.corrections.pair_acceptance`.
    """

    m = np.asarray(pairs["m"], dtype=float)
    w = np.asarray(pairs["weight"], dtype=float)
    edges = np.asarray(edges, dtype=float)
    nb = edges.size - 1
    if extrapolation is not None:
        pt, y = (np.asarray(pairs[k], dtype=float) for k in ("pT", "y"))
        mass = np.asarray(extrapolation.mass, dtype=float)
        f0 = np.asarray(extrapolation.fiducial_fraction, dtype=float)

    def full(weights: NDArray, frac: NDArray | None) -> NDArray:
        return _bin_sums(m, weights if frac is None else weights / np.interp(m, mass, frac), edges)

    y0 = full(w, None if extrapolation is None else f0)
    shifts = {1: [], -1: []}
    for _, sign, _, table, w1 in _lambda_moves(pairs, edges, nominal, polarisation, min_acceptance):
        frac = None
        if extrapolation is not None:
            touched = _touched_groups(extrapolation, m, w1 != w)
            region = FiducialRegion(table, min_acceptance)
            frac = refit_fractions(extrapolation, m, pt, y, w1, region, groups=touched, seed=seed)
        with np.errstate(divide="ignore", invalid="ignore"):
            shifts[sign].append(np.where(y0 != 0, (full(w1, frac) - y0) / np.abs(y0), np.nan))
    return _signed_quadrature(shifts, nb)


def _signed_quadrature(shifts: Mapping[int, list], nb: int) -> tuple[NDArray, NDArray]:
    """``(up, down)``: per sign the moves' relative shifts per mass bin (``shifts[±1]``) in
    quadrature, signed as the largest (zeros without a move)."""
    if not shifts[1]:
        z = np.zeros(nb)
        return z, z
    out = []
    for sign in (1, -1):
        d = np.stack(shifts[sign])  # (bins of λ, mass bins)
        big = np.take_along_axis(d, np.nanargmax(np.abs(np.nan_to_num(d)), axis=0)[None], 0)[0]
        out.append(np.copysign(np.sqrt(np.sum(d**2, axis=0)), big))
    return out[0], out[1]


def lambda_theta_refits(
    pairs: Mapping[str, ArrayLike],
    edges: ArrayLike,
    nominal: Any,
    polarisation: Mapping[str, Any],
    *,
    min_acceptance: float,
    extrapolation: Any,
    seed: int = 0,
) -> dict[str, Any]:
    r"""The measured λ_θ's moves carried to N_sig's level: per polarisation bin k and sign,
    the fiducial yield's relative change per mass bin and the extrapolation refitted in the
    moved region (:func:`gammastar.yields.extrapolation.refits.refit`), for
    :func:`gammastar.yields.extrapolation.nsig.nsig_error_parts` ``lambda_theta``.

    The moves are :func:`lambda_theta_moving_variation`'s (each bin alone by ±σ_k, the fiducial
    region following λ′). Its fiducial yield's change is what ``acceptance_lambda_theta``
    quotes for the yield; N_sig = Y_F · N/Y_F also moves with the refitted f_F and model,
    against or with the yield (docs/validation/uncertainties-and-coverage.md). Only the fit groups a
    move reaches are refitted.

    Arguments:
        as :func:`lambda_theta_moving_variation` (``pairs`` with ``y``); ``extrapolation``
        required.

    Returns:
        ``{"mass": yield bin centres, "lambda_edges": the polarisation bins, "moves":
        [{"lambda_bin", "sign", "lambda_shift" (σ_k in bin k, 0 or None elsewhere),
        "yield_shift" (per mass bin, NaN where the yield is 0), "fit" (a refit record)}]}``.
    """

    m, pt, y, w = (np.asarray(pairs[k], dtype=float) for k in ("m", "pT", "y", "weight"))
    edges = np.asarray(edges, dtype=float)
    y0 = _bin_sums(m, w, edges)
    moves, fits = [], []
    for k, sign, e, table, w1 in _lambda_moves(pairs, edges, nominal, polarisation, min_acceptance):
        with np.errstate(divide="ignore", invalid="ignore"):
            ys = np.where(y0 != 0, (_bin_sums(m, w1, edges) - y0) / np.abs(y0), np.nan)
        moves.append({"lambda_bin": int(k), "sign": int(sign), "lambda_shift": _list(e),
                      "yield_shift": ys})  # fmt: skip
        fits.append((w1, FiducialRegion(table, min_acceptance),
                     _touched_groups(extrapolation, m, w1 != w)))  # fmt: skip
    # every move refitted at once: a fit group's reference sample is drawn once for all the
    # moves that reach it
    for mv, rec in zip(moves, refit_moves(extrapolation, m, pt, y, fits, seed=seed), strict=True):
        mv["fit"] = rec
    return {
        "mass": 0.5 * (edges[1:] + edges[:-1]),
        "lambda_edges": _list(polarisation["mass_edges"]),
        "moves": moves,
    }


def lambda_regions(block: Mapping[str, Any], fiducial: Any) -> list[Any]:
    """Per move of :func:`lambda_theta_refits`' ``block``, the moved fiducial region
    (``fiducial``'s table at λ̂ ± σ_k, :func:`lambda_tables`; its ``min_acceptance``)."""

    out = []
    for mv in block["moves"]:
        dl = [np.nan if v is None else v for v in mv["lambda_shift"]]
        table = lambda_tables(fiducial.acceptance, block["lambda_edges"], dl)[mv["sign"] < 0]
        out.append(FiducialRegion(table, fiducial.min_acceptance))
    return out


def lambda_refits_at(
    block: Mapping[str, Any], mass: float, regions: list[Any]
) -> list[dict[str, Any]]:
    """:func:`lambda_theta_refits`' moves at one ``mass`` for
    :func:`gammastar.yields.extrapolation.nsig.nsig_error_parts` ``lambda_theta``: each ``yield_shift``
    interpolated linearly between the bins (NaN bins skipped, 0 where none is finite), as
    :func:`at_masses` interpolates a nuisance, with its moved region (``regions``,
    :func:`lambda_regions`) and ``null``: no pair of the bins around the mass moved (their
    shifts exactly 0: λ′ = λ̂ there), which with the nominal fit at the mass leaves N as it
    is (:func:`gammastar.yields.extrapolation.nsig.nsig_lambda_theta` skips it).

    Example:
        >>> blk = {"mass": [0.3, 0.5], "moves": [{"sign": 1, "yield_shift": [0.1, None],
        ...        "fit": {}}]}
        >>> lambda_refits_at(blk, 0.4, [None])[0]["yield_shift"]
        0.1
    """
    centres = np.asarray(block["mass"], dtype=float)
    out = []
    for mv, region in zip(block["moves"], regions, strict=True):
        ys = np.array([np.nan if v is None else v for v in mv["yield_shift"]], dtype=float)
        good = np.isfinite(ys)
        at, null = 0.0, True
        if np.any(good):
            c, v = centres[good], ys[good]
            at = float(np.interp(mass, c, v))
            j = int(np.searchsorted(c, mass))
            null = bool(np.all(v[max(j - 1, 0) : j + 1] == 0.0))
        out.append({**mv, "yield_shift": at, "region": region, "null": null})
    return out


def _lambda_moves(pairs: Mapping[str, ArrayLike], edges: NDArray, nominal: Any,
                  polarisation: Mapping[str, Any], min_acceptance: float):  # fmt: skip
    """Per polarisation bin k and sign: ``(k, sign, shift, table, w1)``, the pairs' weights
    when bin k's λ̂ moves by ±σ_k (``shift``: :func:`lambda_bin_errors`' σ_k per bin) and the fiducial region follows it
    (:func:`lambda_theta_moving_variation`'s docstring; ``edges``: the yield's mass bins)."""
    m, pt, pz, w = (np.asarray(pairs[k], dtype=float) for k in ("m", "pT", "pz", "weight"))
    b = np.clip(np.searchsorted(edges, m, side="right") - 1, 0, edges.size - 2)
    a0 = nominal.lookup(m, pt, pz)
    inside0 = a0 >= min_acceptance  # the selection's region (weight ≠ 0 there, or a zero k_b)
    base = acceptance_free_weights(w, pairs["acc"], pairs["eff"], pairs["charge"], b, inside0)
    moves = lambda_bin_errors(polarisation["lambda_theta"], polarisation["lambda_theta_err"])
    for k, e in moves.items():
        tables = lambda_tables(nominal, polarisation["mass_edges"], e)
        for sign, table in zip((1, -1), tables, strict=True):
            a1 = table.lookup(m, pt, pz)
            inside = a1 >= min_acceptance
            # inside F: w·A_λ/A_λ′ (as lambda_theta_variation; the tables' errors cancel)
            w1 = np.where(inside, np.where(inside0, w * a0, base) / np.where(inside, a1, 1.0), 0)
            w1 = np.where(a1 == a0, w, w1)  # where λ′ = λ̂: the same table values, exactly
            yield k, sign, e, table, w1


def _touched_groups(extrapolation: Any, m: NDArray, moved: NDArray) -> NDArray:
    """The extrapolation's fit groups holding the ``moved`` pairs (masses where λ′ ≠ λ̂)."""
    if not moved.any():
        return np.array([], dtype=int)
    f0 = np.asarray(extrapolation.fiducial_fraction)
    ex_bin = np.clip(np.searchsorted(extrapolation.edges, m, side="right") - 1, 0, f0.size - 1)
    return np.unique(np.asarray(extrapolation.bin_group)[np.unique(ex_bin[moved])])


def interpolated_error(m: ArrayLike, centres: ArrayLike, err: ArrayLike) -> NDArray[np.float64]:
    r"""The 1σ of a quantity interpolated linearly between independent measurements.

    λ_θ(m) is linear between the measurement's bin centres (the end bins' values beyond them:
    :meth:`gammastar.corrections.pair_acceptance.table.PairAcceptance.lambda_nodes`), λ(m) = Σ_k T_k(m) λ̂_k, and
    the bins' fits use disjoint pairs, so σ(m) = √(Σ_k T_k² σ_k²), not the interpolated
    Σ_k T_k σ_k (up to √2 too large between two centres, as for the yield's interpolated
    error, :meth:`gammastar.source.production.Yields.at`; the scatter over mock realisations agrees with
    this one, docs/explanation/reach.md).

    Arguments:
        m: where (any shape).
        centres: the measurements' positions, increasing.
        err: their 1σ errors.

    Returns:
        σ at ``m``.

    Example:
        >>> interpolated_error([1.0, 1.5, 3.0], [1.0, 2.0], [0.1, 0.1]).round(4).tolist()
        [0.1, 0.0707, 0.1]
    """
    m = np.asarray(m, dtype=float)
    x = np.asarray(centres, dtype=float)
    e = np.asarray(err, dtype=float)
    if x.size == 1:
        return np.full(m.shape, float(e[0]))
    j = np.clip(np.searchsorted(x, m, side="right"), 1, x.size - 1)
    t = np.clip((m - x[j - 1]) / (x[j] - x[j - 1]), 0.0, 1.0)
    return np.hypot((1.0 - t) * e[j - 1], t * e[j])


def _lambda_errors(doc: Mapping[str, Any], masses: NDArray, cfg: Any) -> NDArray | None:
    """δλ_θ per mass bin: measured (``polarisation.lambda_theta_err``) or the config's."""
    pol = doc.get("polarisation")
    if isinstance(pol, Mapping) and pol.get("lambda_theta_err") is not None:
        err = np.asarray(
            [np.nan if v is None else v for v in np.atleast_1d(pol["lambda_theta_err"])],
            dtype=float,
        )
        if np.any(err[np.isfinite(err)] < 0):
            raise InputError("yields.json polarisation.lambda_theta_err: a negative λ_θ error")
        if err.size == 1 and np.isfinite(err[0]):
            return np.full(masses.size, float(err[0]))
        if "mass" in pol:
            pm = np.asarray(pol["mass"], dtype=float)
        else:  # the measurement's bins (gammastar.corrections.polarisation): their centres
            edges = np.asarray(pol.get("mass_edges", []), dtype=float)
            pm = 0.5 * (edges[1:] + edges[:-1]) if edges.size > 1 else np.zeros(0)
        if pm.size != err.size:
            raise InputError(
                "yields.json polarisation: lambda_theta_err needs one mass bin per entry "
                "(polarisation.mass_edges or polarisation.mass)"
            )
        good = np.isfinite(err)
        fallback = cfg.uncertainties.lambda_theta_err
        if good.any():
            return interpolated_error(masses, pm[good], err[good])
        if fallback is None:
            return None
        return np.full(masses.size, float(fallback))
    val = cfg.uncertainties.lambda_theta_err
    return None if val is None else np.full(masses.size, float(val))


def yield_uncertainties(
    cfg: Any,
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


def _floats(values: Any) -> NDArray[np.float64]:
    """A JSON list of numbers as floats, ``None`` as NaN."""
    return np.asarray([np.nan if v is None else v for v in values], dtype=float)


def _data_stat_nuisance(y: NDArray, err: NDArray) -> Nuisance:
    """``data_stat``: the yield's statistical error relative to the yield, per mass bin."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(y != 0, err / np.abs(y), np.nan)
    return Nuisance(
        "data_stat",
        rel,
        -rel,
        "yields.json aprime.stat_err / per_pot_per_eps2: sqrt(sum w^2) of the unfolded pairs, "
        "incl. the like-sign subtraction's statistics",
        PER_BIN,
    )


def _like_sign_nuisance(
    cfg: Any, hists: Mapping[str, Any], pairs: Any, edges: NDArray
) -> tuple[Nuisance, NDArray[np.float64]]:
    """``like_sign_r``: the like-sign normalisation R varied (:func:`like_sign_variation`).

    Returns:
        The nuisance and W, the unfolded, subtracted sum of weights per mass bin (the η → μμ
        step's denominator).

    Raises:
        ConfigError: ``uncertainties.r_factor_rel_err`` is not given.
    """
    uc = cfg.uncertainties
    if uc.r_factor_rel_err is None:
        raise ConfigError(
            f"{cfg.source or '<config>'}: uncertainties.r_factor_rel_err: not given (relative "
            "1σ error of the like-sign normalisation R; 0 on purpose for an exactly known R, "
            "or set uncertainties.enabled: false)"
        )
    unf = hists["unfolded_m"]
    native = np.asarray(unf.axes[0].edges, dtype=float)
    if pairs is not None:
        m_p = np.asarray(pairs["m"], dtype=float)
        w_p = np.asarray(pairs["weight"], dtype=float)
        ss = np.asarray(pairs["charge"]) != 0
        w_tot = _bin_sums(m_p, w_p, edges)
        comb = -_bin_sums(m_p[ss], w_p[ss], edges)
        how = "the like-sign pairs' weights"
    else:
        w_tot = _rebin(native, np.asarray(unf.values(), dtype=float), edges)
        c = np.asarray(hists["comb_m"].values(), dtype=float)
        s = np.asarray(hists["signal_m"].values(), dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            f = np.where(s > 0, np.asarray(unf.values(), dtype=float) / s, 0.0)
        comb = _rebin(native, c * f, edges)
        how = "comb_m times the bin's unfolding factor"
    up, down = like_sign_variation(w_tot, comb, float(uc.r_factor_rel_err))
    nuisance = Nuisance(
        "like_sign_r",
        up,
        down,
        f"background.r_factor varied by ±uncertainties.r_factor_rel_err = "
        f"{uc.r_factor_rel_err:g}; subtracted combinatorial yield from {how}",
    )
    return nuisance, w_tot


def _lambda_theta_step(
    cfg: Any,
    doc: Mapping[str, Any],
    pairs: Any,
    edges: NDArray,
    grid: tuple[int, int, int] | None,
    out: dict[str, Nuisance],
    skipped: dict[str, str],
) -> dict[str, Any] | None:
    """``acceptance_lambda_theta`` into ``out``, or its reason into ``skipped``.

    Returns:
        The measured λ_θ's moves at N_sig's level (:func:`lambda_theta_refits`), or ``None``.

    Raises:
        ConfigError: neither ``uncertainties.lambda_theta_err`` nor a measured error is given.
    """
    if cfg.unfold.lepton_acceptance is None:
        skipped["acceptance_lambda_theta"] = (
            "no unfold.lepton_acceptance: the acceptance map comes from the generator, "
            "not from an assumed decay distribution"
        )
        return None
    columns = set(getattr(pairs, "columns", pairs)) if pairs is not None else set()
    if pairs is None or not {"pT", "pz"} <= columns:
        skipped["acceptance_lambda_theta"] = "the pairs table (pT, pz) is not available"
        return None
    dl = _lambda_errors(doc, np.asarray(doc["aprime"]["mass"], dtype=float), cfg)
    if dl is None:
        raise ConfigError(
            f"{cfg.source or '<config>'}: uncertainties.lambda_theta_err: not given and "
            "yields.json has no measured polarisation.lambda_theta_err (the per-pair "
            "acceptance assumes unfold.decay_lambda_theta; state its 1σ error)"
        )
    pol = doc.get("polarisation")
    measured = isinstance(pol, Mapping) and pol.get("lambda_theta_err") is not None
    moving = (
        measured and isinstance(cfg.unfold.decay_lambda_theta, str) and {"acc", "eff"} <= columns
    )
    refit_ex = _refittable_extrapolation(doc) if moving and "y" in columns else None
    up, down, origin, refits = _lambda_nuisance(
        cfg, pairs, edges, dl, grid, measured, pol if moving else None, refit_ex
    )
    out["acceptance_lambda_theta"] = Nuisance("acceptance_lambda_theta", up, down, origin)
    return refits


def _refittable_extrapolation(doc: Mapping[str, Any]) -> Any:
    """The document's extrapolation, whose λ_θ moves are carried to N_sig's level, or ``None``.

    A model written before the fit groups (no ``bin_group``) cannot be refitted.
    """
    ext = doc.get("extrapolation")
    if not isinstance(ext, Mapping):
        return None

    refit_ex = Extrapolation.from_dict(dict(ext))
    return None if refit_ex.bin_group is None else refit_ex


def _eta_mumu_step(
    cfg: Any,
    unf: Any,
    bins: tuple[NDArray, NDArray],
    w_tot: NDArray,
    out: dict[str, Nuisance],
    skipped: dict[str, str],
) -> None:
    """``eta_mumu`` into ``out`` (truth tag: 0; rate method: the subtracted peak's error).

    ``bins`` holds the yield's mass bins (centres, edges), ``w_tot`` the unfolded, subtracted
    sum of weights per bin.

    Raises:
        ConfigError: the rate method without ``uncertainties.eta_mumu_rel_err``.
    """
    uc, bg = cfg.uncertainties, cfg.background
    mass, edges = bins
    if bg.remove_eta_mumu == "truth":
        z = np.zeros(mass.size)
        out["eta_mumu"] = Nuisance(
            "eta_mumu", z, z, "background.remove_eta_mumu: truth (exact truth tag): no error"
        )
        return
    if bg.remove_eta_mumu != "rate":
        skipped["eta_mumu"] = "background.remove_eta_mumu: none (the peak is kept, not removed)"
        return
    if uc.eta_mumu_rel_err is None:
        raise ConfigError(
            f"{cfg.source or '<config>'}: uncertainties.eta_mumu_rel_err: not given (relative "
            "1σ error of the η → μμ peak that background.remove_eta_mumu: rate subtracts)"
        )

    native = np.asarray(unf.axes[0].edges, dtype=float)
    peak, _, _ = eta_mumu_rate_peak(
        native,
        np.asarray(unf.values(), dtype=float),
        dalitz_window=tuple(bg.eta_dalitz_window),
        sigma=bg.eta_peak_sigma,
    )
    pk = _rebin(native, peak, edges)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(w_tot != 0, float(uc.eta_mumu_rel_err) * pk / np.abs(w_tot), np.nan)
    out["eta_mumu"] = Nuisance(
        "eta_mumu",
        r,
        -r,
        f"the subtracted η → μμ peak (rate method) × uncertainties.eta_mumu_rel_err = "
        f"{uc.eta_mumu_rel_err:g}",
    )


def _extrapolation_step(
    doc: Mapping[str, Any], y: NDArray, out: dict[str, Nuisance], skipped: dict[str, str]
) -> None:
    """``extrapolation`` into ``out``: the fitted fiducial fraction's error, where extrapolated."""
    ap = doc["aprime"]
    if ap.get("extrapolation_err") is None:
        skipped["extrapolation"] = "the yields are not extrapolated beyond a fiducial region"
        return
    e = _floats(ap["extrapolation_err"])
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(y != 0, e / np.abs(y), np.nan)
    ext = doc.get("extrapolation")
    ys = ext.get("y_sigma_external") if isinstance(ext, Mapping) else None
    fitted = isinstance(ext, Mapping) and str(ext.get("pt_power_source", "")).startswith("fitted")
    forms = (
        "the p_T form's m_T power fitted per mass range (its error in the covariance), "
        "alternative rapidity forms fitted to the same pairs"
        if fitted
        else "alternative p_T and rapidity forms fitted to the same pairs"
    )
    external = (
        f"; sigma_y external, {ys.get('value')} +- {ys.get('error')} "
        f"({ys.get('source')}), its error included"
        if isinstance(ys, Mapping)
        else ""
    )
    out["extrapolation"] = Nuisance(
        "extrapolation",
        r,
        -r,
        "yields.json aprime.extrapolation_err: the fitted fiducial fraction's 1σ error, "
        f"the fit's sandwich covariance plus the model's form ({forms}; "
        "reach.extrapolation: label)" + external,
    )


def _refits_block(refits: Mapping[str, Any]) -> dict[str, Any]:
    """The ``lambda_theta_refits`` entry of the block (JSON lists)."""
    return {
        "mass": _list(refits["mass"]),
        "lambda_edges": refits["lambda_edges"],
        "moves": [{**mv, "yield_shift": _list(mv["yield_shift"])} for mv in refits["moves"]],
        "note": "per polarisation bin and sign: the fiducial yield's relative change and "
        "the extrapolation refitted in the moved region; the reach carries them to "
        "N_sig (acceptance_lambda_theta at N's level, docs/explanation/reach.md)",
    }


def _migration_nuisance(
    doc: Mapping[str, Any], edges: NDArray, out: dict[str, Nuisance], skipped: dict[str, str]
) -> None:
    """``resolution_migration``: the migration correction's statistical 1σ per bin
    (``extrapolation.resolution_migration``, :mod:`gammastar.corrections.migration`), when applied."""
    ext = doc.get("extrapolation")
    mig = ext.get("resolution_migration") if isinstance(ext, Mapping) else None
    if not isinstance(mig, Mapping) or not mig.get("applied"):
        skipped["resolution_migration"] = (
            "yields.resolution_migration not given: the fiducial yields are not corrected for "
            "the mass resolution's migration"
        )
        return
    c, corrected = applied_correction(mig)
    dc = np.asarray([np.nan if v is None else v for v in mig["correction_err"]], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        r_mig = np.where(corrected & np.isfinite(dc), dc / c, 0.0)
    e_mig = np.asarray(mig["bin_edges"], dtype=float)
    # the correction is made on the yield bins
    if e_mig.shape != edges.shape or not np.allclose(e_mig, edges, rtol=0, atol=1e-9):
        raise InputError(
            "yields.json: extrapolation.resolution_migration has other mass bins than aprime"
        )
    out["resolution_migration"] = Nuisance(
        "resolution_migration",
        r_mig,
        -r_mig,
        f"extrapolation.resolution_migration.correction_err / correction: the statistics of "
        f"the detector simulation ({mig.get('sources')} recorded γ*, Poisson bootstrap of "
        f"{mig.get('bootstrap')}, seed {mig.get('seed')}) behind the migration correction "
        "c = f_true/f_reco (gammastar.corrections.migration); the simulation's cocktail is assumed",
        PER_BIN,
    )


def _map_statistics(
    cfg: Any, pairs: Any, edges: NDArray, mass: ArrayLike, out: dict, skipped: dict
) -> None:
    """The ``acceptance_map_stat`` source (module docstring) into ``out`` or ``skipped``."""
    name = "acceptance_map_stat"
    mass = np.asarray(mass, dtype=float)
    u = cfg.unfold
    if u.lepton_acceptance is not None:
        if u.lepton_acceptance.map is not None:
            skipped[name] = (
                "unfold.lepton_acceptance.map: the (p, θ) map's statistics are not propagated"
            )
            return
        z = np.zeros(mass.size)
        out[name] = Nuisance(
            name, z, z,
            "unfold.lepton_acceptance: computed from the configured per-lepton cuts (no map "
            "statistics): no error",
            PER_BIN,
        )  # fmt: skip
        return
    if u.acceptance_map is None:
        skipped[name] = "no acceptance map (unfold.acceptance_map) and no lepton acceptance"
        return
    cols = set() if pairs is None else set(getattr(pairs, "columns", pairs))
    if "pT" not in cols:
        skipped[name] = "the pairs table (pT) is not available"
        return

    path, key = split_map_spec(u.acceptance_map)
    amap = load_acceptance_map(cfg.resolve(path), key,
                               mass_range=(cfg.selection.mass_min, cfg.selection.mass_max))  # fmt: skip
    three_d = hasattr(amap, "y_edges")
    if amap.generated is None:
        skipped[name] = (
            f"unfold.acceptance_map: {amap.source} has no {key}_generated counts: the map's "
            "binomial errors are unknown"
        )
        return
    if three_d and "pz" not in cols:
        skipped[name] = "the pairs table (pz) is not available for the 3-D map"
        return
    r = acceptance_map_variation(
        pairs["m"], pairs["pT"], pairs["weight"], edges, amap,
        pz=pairs["pz"] if three_d else None,
    )  # fmt: skip
    out[name] = Nuisance(
        name, r, -r,
        f"unfold.acceptance_map {amap.source} ({'3' if three_d else '2'}-D): binomial error "
        f"sqrt(A(1-A)/N) per map bin (N from {key}_generated), propagated to the pairs' "
        "weights 1/A; the pairs of one map bin share it",
        PER_BIN,
    )  # fmt: skip


def lambda_tables(nominal: Any, edges: ArrayLike, dl: ArrayLike) -> tuple[Any, Any]:
    """The per-pair acceptance at λ_θ(m) + δλ(m) and at λ_θ(m) − δλ(m) (clipped to [−1, 1])
    around ``nominal``'s, δλ given per mass bin of ``edges`` and taken to the table's mass
    nodes as :meth:`~gammastar.corrections.pair_acceptance.table.PairAcceptance.lambda_nodes` takes values:
    from the decay-angle moments, without a new tabulation. The tables of the
    ``acceptance_lambda_theta`` nuisance."""
    lam = np.broadcast_to(np.asarray(nominal.lambda_theta, dtype=float), nominal.m_grid.shape)
    dnode = nominal.lambda_nodes(edges, dl)
    return tuple(nominal.with_lambda(np.clip(lam + s * dnode, -1.0, 1.0)) for s in (1, -1))


def _lambda_nuisance(
    cfg: Any,
    pairs: Any,
    edges: NDArray,
    dl: NDArray,
    grid: tuple[int, int, int] | None,
    measured: bool,
    polarisation: Mapping[str, Any] | None = None,
    extrapolation: Any = None,
) -> tuple[NDArray, NDArray, str, dict[str, Any] | None]:
    """The yield's relative shifts when the per-pair acceptance's λ_θ(m) moves by ±δλ(m).

    The nominal table is the selection's (:func:`gammastar.corrections.pair_acceptance.fiducial_from_config`:
    the configured λ_θ, or with ``unfold.decay_lambda_theta: measured`` the λ_θ(m) the selection
    measured and used); the varied ones follow from its decay-angle moments without a new
    tabulation (:meth:`~gammastar.corrections.pair_acceptance.table.PairAcceptance.with_lambda`), λ_θ ± δλ per
    mass node, clipped to [−1, 1]. A configured λ_θ holds the fiducial region (it does not move
    with the data: :func:`lambda_theta_variation`); a measured λ_θ (``polarisation``, the pairs
    with ``acc`` and ``eff``) moves it, each polarisation bin alone
    (:func:`lambda_theta_moving_variation`), and with an ``extrapolation`` the moves' refits
    (:func:`lambda_theta_refits`; else ``None``)."""

    fid = fiducial_from_config(cfg)
    nominal = fid.acceptance
    if grid is not None:  # a coarser table (tests): the same λ_θ at its own nodes
        lam0 = np.broadcast_to(nominal.lambda_theta, nominal.m_grid.shape)
        sel = cfg.selection
        coarse = PairAcceptance.build(
            nominal.lepton,
            lepton_mass=nominal.lepton_mass,
            mass_range=(sel.mass_min, sel.mass_max),
            p_max=cfg.beam.energy,
            grid=grid,
        )
        nominal = coarse.with_lambda(np.interp(coarse.m_grid, nominal.m_grid, lam0))
    if not np.any(np.isfinite(dl) & (dl > 0)):
        z = np.zeros(edges.size - 1)
        return z, z, "λ_θ with a zero error", None
    amin = float(cfg.unfold.min_acceptance)
    if polarisation is not None:
        refits = None
        if extrapolation is None:
            up, down = lambda_theta_moving_variation(
                pairs, edges, nominal, polarisation, min_acceptance=amin
            )
        else:  # the same moves, refitted too: their yield shifts are the nuisance
            refits = lambda_theta_refits(
                pairs, edges, nominal, polarisation, min_acceptance=amin,
                extrapolation=extrapolation,
            )  # fmt: skip
            shifts = {s: [mv["yield_shift"] for mv in refits["moves"] if mv["sign"] == s]
                      for s in (1, -1)}  # fmt: skip
            up, down = _signed_quadrature(shifts, edges.size - 1)
        origin = (
            "per-pair acceptance with each polarisation bin's measured λ_θ moved alone by "
            "±σ (yields.json polarisation.lambda_theta_err), the fiducial region following it "
            "as the selection's does (A_λ′ ≥ unfold.min_acceptance; pairs entering it weighted "
            "their bin's in-region factor over ε A_λ′); the fiducial yield's change, the bins in "
            "quadrature (docs/validation/uncertainties-and-coverage.md)"
        )
        if refits is not None:
            origin += "; in the reach at N_sig's level with the extrapolation refitted"
        return up, down, origin, refits
    tables = lambda_tables(nominal, edges, dl)
    up, down = lambda_theta_variation(pairs, edges, nominal, tables, min_acceptance=amin)
    origin = (
        "per-pair acceptance at λ_θ(m) ± δλ(m) around the selection's λ_θ ("
        + ("measured" if isinstance(cfg.unfold.decay_lambda_theta, str) else "configured")
        + "), from the table's decay-angle moments; δλ from "
        + (
            "yields.json polarisation.lambda_theta_err (measured)"
            if measured
            else "uncertainties.lambda_theta_err (stated)"
        )
    )
    return up, down, origin, None


# --------------------------------------------------------------------------- reading
def read_uncertainties(doc: Mapping[str, Any], *, source: str = "yields.json") -> dict[str, Any]:
    """The ``uncertainties`` block of a ``yields.json`` document, checked ({} if absent).

    Raises:
        InputError: a nuisance without ``rel`` per mass, or a negative size.
    """
    unc = doc.get("uncertainties")
    if unc is None:
        return {}
    try:
        mass = np.asarray(unc["mass"], dtype=float)
        out = {}
        for name, n in unc["nuisances"].items():
            rel = np.asarray([np.nan if v is None else v for v in n["rel"]], dtype=float)
            if rel.size != mass.size:
                raise InputError(f"{source}: uncertainties.nuisances.{name}.rel: wrong length")
            if np.any(rel[np.isfinite(rel)] < 0):
                raise InputError(f"{source}: uncertainties.nuisances.{name}.rel: negative size")
            out[name] = {**n, "rel": rel}
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(f"{source}: invalid uncertainties block ({err})") from None
    block = {"mass": mass, "nuisances": out}
    refits = unc.get("lambda_theta_refits")
    if refits is not None:
        _check_refits(refits, f"{source}: uncertainties.lambda_theta_refits")
        block["lambda_theta_refits"] = refits
    return block


def _check_refits(refits: Any, where: str) -> None:
    """Refuse a ``lambda_theta_refits`` block that :func:`lambda_refits_at` cannot read
    (one-line :class:`InputError` naming ``where`` and the key)."""
    if not isinstance(refits, Mapping):
        raise InputError(f"{where}: not a mapping")
    for key in ("mass", "lambda_edges", "moves"):
        if not isinstance(refits.get(key), list):
            raise InputError(f"{where}.{key}: missing or not a list")
    for i, mv in enumerate(refits["moves"]):
        if not isinstance(mv, Mapping):
            raise InputError(f"{where}.moves[{i}]: not a mapping")
        fit = mv.get("fit")
        checks = (
            ("sign", mv.get("sign") in (1, -1), "±1"),
            ("yield_shift", isinstance(mv.get("yield_shift"), list)
             and len(mv["yield_shift"]) == len(refits["mass"]), "one value per mass"),
            ("lambda_shift", isinstance(mv.get("lambda_shift"), list)
             and len(mv["lambda_shift"]) == len(refits["lambda_edges"]) - 1,
             "one value per polarisation bin"),
            ("fit", isinstance(fit, Mapping)
             and {"fiducial_fraction", "temperature", "y_sigma"} <= set(fit),
             "fiducial_fraction, temperature, y_sigma"),
        )  # fmt: skip
        for key, ok, want in checks:
            if not ok:
                raise InputError(f"{where}.moves[{i}].{key}: needs {want}")


def at_masses(unc: Mapping[str, Any], masses: ArrayLike) -> dict[str, NDArray[np.float64]]:
    """Each nuisance's symmetric relative size at ``masses`` (linear interpolation between
    the yield's mass bins, NaN bins skipped, 0 where none is finite).

    Example:
        >>> u = {"mass": np.array([0.3, 0.5]),
        ...      "nuisances": {"a": {"rel": np.array([0.1, 0.3])}}}
        >>> at_masses(u, [0.4])["a"].round(6).tolist()
        [0.2]
    """
    masses = np.atleast_1d(np.asarray(masses, dtype=float))
    out = {}
    for name, n in unc.get("nuisances", {}).items():
        rel = np.asarray(n["rel"], dtype=float)
        good = np.isfinite(rel)
        if not np.any(good):
            out[name] = np.zeros(masses.size)
            continue
        out[name] = np.interp(masses, unc["mass"][good], rel[good])
    return out


def check_unique(names: list[str], *, key: str) -> None:
    """Refuse a nuisance name given twice (``key``: the config key named in the error)."""
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise GammastarError(f"{key}: nuisance {n!r} given twice")
        seen.add(n)


def reach_nuisances(
    config: Any, yields: Any, masses: ArrayLike
) -> tuple[dict[str, NDArray[np.float64]] | None, dict[str, Any] | None]:
    """The named signal nuisances of a reach at ``masses`` and their ``reach.json`` record.

    ``data_stat`` is the loaded yield's own relative error (the fiducial one with
    ``reach.extrapolation: refuse``), ``extrapolation`` and ``resolution_migration`` only where
    the reach uses the extrapolated yield (``label``); the others are the ``yields.json``
    sizes, interpolated.

    Returns:
        ``(None, None)`` with ``uncertainties.enabled: false``; else ``({name: r(m)}, record)``.

    Raises:
        InputError: ``uncertainties.enabled`` but the yields file has no ``uncertainties``.
    """
    if not config.uncertainties.enabled:
        return None, None
    unc = yields.uncertainties
    if not unc:
        raise InputError(
            f"{config.reach.yields}: no 'uncertainties' block, but uncertainties.enabled is "
            "true; rerun `gammastar yields` with the uncertainties section"
        )
    masses = np.atleast_1d(np.asarray(masses, dtype=float))
    sizes = at_masses(unc, masses)
    refuse = config.reach.extrapolation == "refuse"
    full_ps_only = ("extrapolation", "resolution_migration")  # corrections of Y_F → Y only
    if refuse:
        for name in full_ps_only:
            sizes.pop(name, None)
    if "data_stat" in sizes:
        sizes["data_stat"] = np.nan_to_num(yields.at(masses)[1])
    record: dict[str, Any] = {"mass": masses.tolist(), "nuisances": {}}
    for name, r in sizes.items():
        n = unc["nuisances"][name]
        record["nuisances"][name] = {
            "kind": n.get("kind", NUISANCE_KIND),
            "rel": [float(v) for v in r],
            "origin": n.get("origin", ""),
            "correlation": n.get("correlation", CORRELATED),
            "modifier": "normsys on the signal of every channel, hi = 1 + rel, lo = 1/(1 + rel)",
        }
    dropped = [n for n in full_ps_only if refuse and n in unc["nuisances"]]
    if dropped:
        record["not_included"] = {n: "reach.extrapolation: refuse (fiducial only)" for n in dropped}
    return sizes, record


# --------------------------------------------------------------------------- impact
