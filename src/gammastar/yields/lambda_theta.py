r"""The ``acceptance_lambda_theta`` source: the per-pair acceptance at another λ_θ.

A configured λ_θ moved with the fiducial region held (:func:`lambda_theta_variation`); a
measured λ_θ moved per polarisation bin with the region following it
(:func:`lambda_theta_moving_variation`) and the extrapolation refitted in the moved region
(:func:`lambda_theta_refits`; at a reach's mass :func:`lambda_regions`, :func:`lambda_refits_at`);
the varied tables (:func:`lambda_tables`), the acceptance-free weights and the error of an
interpolated λ_θ (:func:`interpolated_error`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.corrections.pair_acceptance import FiducialRegion
from gammastar.yields.extrapolation.refits import refit_fractions, refit_moves
from gammastar.yields.nuisance import _list
from gammastar.yields.variations import _bin_sums

__all__ = [
    "acceptance_free_weights",
    "interpolated_error",
    "lambda_bin_errors",
    "lambda_refits_at",
    "lambda_regions",
    "lambda_tables",
    "lambda_theta_moving_variation",
    "lambda_theta_refits",
    "lambda_theta_variation",
]


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
    positive, as :func:`gammastar.corrections.unfold.efficiency.inverse_weights` treats it).
    What a pair weighs in a fiducial region that follows another λ_θ (over its A_λ′).

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
    shifts: dict[int, list[NDArray]] = {1: [], -1: []}
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
    :func:`gammastar.yields.extrapolation.nsig.parts.nsig_error_parts` ``lambda_theta``.

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
    :func:`gammastar.yields.extrapolation.nsig.parts.nsig_error_parts` ``lambda_theta``: each ``yield_shift``
    interpolated linearly between the bins (NaN bins skipped, 0 where none is finite), as
    :func:`~gammastar.yields.nuisance.at_masses` interpolates a nuisance, with its moved region
    (``regions``, :func:`lambda_regions`) and ``null``: no pair of the bins around the mass
    moved (their shifts exactly 0: λ′ = λ̂ there), which with the nominal fit at the mass leaves
    N as it is (:func:`gammastar.yields.extrapolation.nsig.nsig_lambda_theta` skips it).

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


def lambda_tables(nominal: Any, edges: ArrayLike, dl: ArrayLike) -> tuple[Any, Any]:
    """The per-pair acceptance at λ_θ(m) + δλ(m) and at λ_θ(m) − δλ(m) (clipped to [−1, 1])
    around ``nominal``'s, δλ given per mass bin of ``edges`` and taken to the table's mass
    nodes as :meth:`~gammastar.corrections.pair_acceptance.table.PairAcceptance.lambda_nodes` takes values:
    from the decay-angle moments, without a new tabulation. The tables of the
    ``acceptance_lambda_theta`` nuisance."""
    lam = np.broadcast_to(np.asarray(nominal.lambda_theta, dtype=float), nominal.m_grid.shape)
    dnode = nominal.lambda_nodes(edges, dl)
    return tuple(nominal.with_lambda(np.clip(lam + s * dnode, -1.0, 1.0)) for s in (1, -1))
