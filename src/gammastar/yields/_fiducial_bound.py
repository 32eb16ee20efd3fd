"""The fiducial region's test at one mass, made on the points that can pass it.

:meth:`~gammastar.corrections.pair_acceptance.FiducialRegion.contains` interpolates the pair
acceptance A(m, p, θ) of its :class:`~gammastar.corrections.pair_acceptance.PairAcceptance`
trilinearly (in p*(m), log p and θ) at every point, about 50 ns a point: the extrapolation fit
tests 4·10⁵ reference points (``_Reference``) and 6·10⁴ quadrature points (``_grid_in_f``) per
fit group and fiducial region, of which a fifth pass. A trilinear value is a convex combination
of its cell's 8 table values, then 0 (outside the kinematic range) or clipped to [0, 1]; so a
point whose cell, and the cells around it, hold only values below ``min_acceptance`` cannot
pass. :func:`inside_at_mass` finds each point's (log p, θ) cell (a few numpy operations a
point), drops the points of such cells and tests the others with ``contains`` itself: the same
answer point for point (``contains`` works point by point), at a third of the cost.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from gammastar.corrections.pair_acceptance import FiducialRegion, PairAcceptance

__all__ = ["inside_at_mass"]

MARGIN = 1e-6
"""Relative margin below ``min_acceptance`` for the bound (the rounding of a trilinear
combination, ~10 ulp; a table in single precision, 10⁻⁷)."""
DILATE = 2
"""Cells on each side whose table values join a cell's bound: one for a point's cell index
rounded across a cell edge (the index here and the interpolation's are computed differently),
one to spare."""


def _table_of(fiducial: Any) -> PairAcceptance | None:
    """The acceptance table whose interpolation ``fiducial.contains`` is (a
    :class:`FiducialRegion` of a :class:`PairAcceptance` as defined there, uniform log p and θ
    grids, a positive ``min_acceptance``), or ``None`` (the bound does not apply)."""
    if type(fiducial) is not FiducialRegion or type(fiducial.acceptance) is not PairAcceptance:
        return None
    acc = fiducial.acceptance
    if not fiducial.min_acceptance > 0 or acc.table.ndim != 3:
        return None
    for g in (acc.logp_grid, acc.theta_grid):
        d = np.diff(g)
        if g.size < 2 or not np.allclose(d, d[0], rtol=1e-9, atol=0.0) or not d[0] > 0:
            return None
    if acc.theta_grid[0] != 0.0:
        return None
    return acc


def _dilated_max(a: NDArray, axis: int) -> NDArray:
    """Per cell c along ``axis`` (nodes c, c + 1), the largest value of the nodes
    c − DILATE … c + 1 + DILATE (clipped to the grid)."""
    a = np.moveaxis(a, axis, 0)
    n = a.shape[0]
    out = a[:-1].copy()
    for s in range(-DILATE, DILATE + 2):
        if s == 0:
            continue
        lo, hi = max(0, -s), min(n - 1, n - s)  # cells c with node c + s on the grid
        np.maximum(out[lo:hi], a[lo + s : hi + s], out=out[lo:hi])
    return np.moveaxis(out, 0, axis)


def cell_bound(fiducial: Any, m_lo: float, m_hi: float) -> NDArray[np.bool_] | None:
    """Per (log p, θ) cell of ``fiducial``'s table, whether a point of a mass in
    [``m_lo``, ``m_hi``] in it or next to it (:data:`DILATE`) can have A ≥ ``min_acceptance``:
    the largest table value of those cells at the mass nodes around the masses (one more on
    each side) against ``min_acceptance`` (less :data:`MARGIN`). Shape (n_p − 1, n_θ − 1);
    ``None`` where the bound does not apply (:func:`_table_of`)."""
    acc = _table_of(fiducial)
    if acc is None:
        return None
    mg = acc.m_grid
    i0 = max(int(np.searchsorted(mg, m_lo, side="right")) - 2, 0)
    i1 = min(int(np.searchsorted(mg, m_hi, side="right")) + 1, mg.size - 1)
    top = np.asarray(acc.table[i0 : i1 + 1], dtype=np.float64).max(axis=0)
    top = _dilated_max(_dilated_max(top, 0), 1)
    return top >= fiducial.min_acceptance * (1.0 - MARGIN)


def cells(fiducial: Any, m: float, qt: NDArray, e: NDArray) -> NDArray[np.intp]:
    """Each point's (log p, θ) cell of ``fiducial``'s table, flat over (n_p − 1, n_θ − 1)
    (:func:`cell_bound`'s layout), for γ* of mass ``m`` given as (q_T, E) (p, θ as
    :meth:`~gammastar.corrections.pair_acceptance.PairAcceptance.of_kinematics` finds them);
    points beyond the grid in the cells at its edges, a point without a momentum in the
    first."""
    acc = fiducial.acceptance
    lg, tg = acc.logp_grid, acc.theta_grid
    n_p, n_t = lg.size - 1, tg.size - 1
    p2 = e * e
    p2 -= m * m
    np.maximum(p2, 0.0, out=p2)
    pz = p2 - qt * qt
    np.maximum(pz, 0.0, out=pz)
    np.sqrt(pz, out=pz)
    k = np.arctan2(qt, pz)
    k *= n_t / tg[-1]
    with np.errstate(divide="ignore"):
        j = np.log(p2)
    j *= 0.5
    j -= lg[0]
    j *= n_p / (lg[-1] - lg[0])
    out = []
    for v, top in ((j, n_p - 1), (k, n_t - 1)):
        np.fmax(v, 0.0, out=v)  # NaN and −inf (no momentum) → the first cell
        np.fmin(v, top, out=v)
        out.append(v.astype(np.intp))
    j, k = out
    j *= n_t
    j += k
    return j


def inside_at_mass(fiducial: Any, m: float, qt: NDArray, e: NDArray) -> NDArray[np.bool_]:
    """``fiducial.contains(m, qt, e)`` for γ* all of mass ``m``, point for point, tested only
    where :func:`cell_bound` allows a pass.

    Arguments:
        fiducial: a fiducial region (any object with ``contains``; the bound applies to a
            :class:`FiducialRegion`, else every point is tested).
        m: the mass (GeV).
        qt, e: the points' q_T and E (GeV), float64 arrays of one shape.

    Returns:
        Whether each point lies inside, the shape of ``qt``.

    Example:
        >>> from gammastar.corrections.pair_acceptance import LeptonAcceptance
        >>> pa = PairAcceptance.build(LeptonAcceptance(3.0, 0.035, 0.12), lepton_mass=0.1057,
        ...     mass_range=(0.3, 0.5), p_max=400.0, grid=(3, 40, 40), quadrature=(8, 8))
        >>> f = FiducialRegion(pa, 0.05)
        >>> qt, e = np.array([0.5, 0.5, 3.0]), np.array([20.0, 2.0, 20.0])
        >>> m = np.full(3, 0.4)
        >>> bool(np.array_equal(inside_at_mass(f, 0.4, qt, e), f.contains(m, qt, e)))
        True
    """
    qt = np.asarray(qt, dtype=np.float64)
    e = np.asarray(e, dtype=np.float64)
    ok = cell_bound(fiducial, m, m)
    if ok is None:
        return np.asarray(fiducial.contains(np.full(qt.shape, m), qt, e), dtype=bool)
    shape = qt.shape
    qt, e = qt.ravel(), e.ravel()
    cand = np.flatnonzero(ok.ravel().take(cells(fiducial, m, qt, e)))
    out = np.zeros(qt.size, dtype=bool)
    out[cand] = fiducial.contains(np.full(cand.size, m), qt[cand], e[cand])
    return out.reshape(shape)
