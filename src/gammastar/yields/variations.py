r"""The yield's relative change per mass bin under two sources, in closed form.

:func:`like_sign_variation` (the like-sign normalisation R varied) and
:func:`acceptance_map_variation` (an acceptance map's binomial statistics), with the binning
helpers the other sources share.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.physics.kinematics import rapidity_pz

__all__ = [
    "acceptance_map_variation",
    "like_sign_variation",
]


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
        amap: the :class:`gammastar.corrections.unfold.acceptance.AcceptanceMap` (its ``map``
            has ``m_edges``, ``pt_edges``, ``values``) or
            :class:`gammastar.corrections.unfold.acceptance.AcceptanceMap3D` (also ``y_edges``;
            then ``pz`` is needed), with ``generated`` counts.
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
