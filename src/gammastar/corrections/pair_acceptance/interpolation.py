"""Trilinear interpolation of the pair-acceptance tables on their (p*(m), log p, θ) grid.

:func:`_interpolate` looks a table up at points (m, p, θ); :func:`_trilinear` does it for
several tables of one grid at once, in blocks of :data:`_BLOCK` points; :func:`_cells` (each
point's cell, computed once) and :func:`_contract` (its corners weighted) are its two halves,
which :meth:`gammastar.corrections.pair_acceptance.table.PairAcceptance.pair_moments` also
uses. The mass axis is uniform in p* = √(m²/4 − m_ℓ²) (:func:`_pstar`); :class:`_Grid` holds
a table's ranges.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray


def _pstar(m: ArrayLike, m_lep: float) -> NDArray[np.float64]:
    """Daughter momentum in the γ* rest frame, √(m²/4 − m_ℓ²) (0 below threshold)."""
    m = np.asarray(m, dtype=np.float64)
    return np.sqrt(np.clip(0.25 * m * m - m_lep * m_lep, 0.0, None))


class _Grid(NamedTuple):
    """The ranges of a table's (p*(m), log p, θ) grid (``PairAcceptance._grid``): p* at
    the first and last mass node, log p at the first and last momentum node, the last θ node
    (the first is 0), and the lepton mass of p*."""

    ps0: float
    ps1: float
    lp0: float
    lp1: float
    t1: float
    m_lep: float


def _cells(shape, m, p, th, grid):
    """The trilinear cell of each point on a (p*(m), log p, θ) grid of ``shape`` and ranges
    ``grid`` (:class:`_Grid`): ``(base, x, y, z, dead)``, the flat index of the cell's lowest
    corner, the fractional offsets in the cell along the three axes and the points outside
    the kinematic range (A = 0 there). Computed once per point and contracted with any table
    of that grid (:func:`_contract`); in place where it can (``fmax``/``fmin`` clip and send
    NaN, dead points, to 0 in one go, the numbers ``clip`` and ``nan_to_num`` give)."""
    ps0, ps1, lp0, lp1, t1, m_lep = grid
    nm, np_, nt = shape
    with np.errstate(divide="ignore", invalid="ignore"):
        lp = np.log(p)
        dead = ~((m > 2.0 * m_lep) & (th >= 0) & (th <= t1) & (lp >= lp0))
    x = _pstar(m, m_lep)
    x -= ps0
    x *= (nm - 1) / (ps1 - ps0)
    y = lp
    y -= lp0
    y *= (np_ - 1) / (lp1 - lp0)
    z = th * ((nt - 1) / t1)
    out = []
    for v, top in ((x, nm - 1.0), (y, np_ - 1.0), (z, nt - 1.0)):
        np.fmax(v, 0.0, out=v)  # NaN (dead anyway) → 0, a valid index
        np.fmin(v, top, out=v)
        i = v.astype(np.intp)
        np.minimum(i, int(top) - 1, out=i)
        v -= i
        out.append(i)
    base, j, k = out
    base *= np_
    base += j
    base *= nt
    base += k
    return base, x, y, z, dead


_BLOCK = 8192
"""Points per block of :func:`_trilinear`: its temporaries stay in the CPU cache (half the
time of whole-sample arrays at 2·10⁶ pairs, the same numbers)."""


def _contract(flat, shape, cells, out, upper=None):
    """Trilinear interpolation of the tables ``flat`` ((n_nodes,) or (n_tables, n_nodes):
    tables of ``shape``, flattened) at the points of ``cells`` (:func:`_cells`), written to
    ``out`` ((n,) or (n_tables, n)). Several tables share one cell computation and are
    gathered and weighted together (the same arithmetic, in the same order, for every
    table). Tables in single precision are interpolated in it (the cells' offsets rounded
    to it).

    With ``upper`` ((2, n)), also the first two tables' terms from the four corners of each
    point's cell at its upper mass node (which ``out`` adds; 0 where ``out`` is), for
    :meth:`~gammastar.corrections.pair_acceptance.table.PairAcceptance.acceptance_at`."""
    _, np_, nt = shape
    base, x, y, z, dead = cells
    if flat.dtype != x.dtype:
        x, y, z = (v.astype(flat.dtype) for v in (x, y, z))
    axis = flat.ndim - 1
    out[...] = 0.0
    if upper is not None:
        upper[...] = 0.0
    for a in (0, 1):
        wa = x if a else 1.0 - x
        for b in (0, 1):
            wab = wa * (y if b else 1.0 - y)
            idx = base + (a * np_ + b) * nt
            # the cells' corners are nodes (_cells clips them): mode "clip" takes the same
            # values without the bounds check
            lo = flat.take(idx, axis=axis, mode="clip")
            hi = flat.take(idx + 1, axis=axis, mode="clip")
            hi -= lo
            hi *= z
            hi += lo
            hi *= wab
            out += hi
            if a and upper is not None:
                upper += hi[:2]
    out[..., dead] = 0.0
    if upper is not None:
        upper[:, dead] = 0.0
    return out


def _trilinear(flat, shape, m, p, th, grid):
    """Trilinear interpolation of the tables ``flat`` (see :func:`_contract`) at the points
    (m, p, θ) on the grid of ranges ``grid`` (:class:`_Grid`), in
    blocks of :data:`_BLOCK` points: each block's cells are computed and contracted while
    they are in the CPU cache (the same numbers as all cells first, then the contraction,
    faster for a one-table lookup). The result has the tables' dtype."""
    n = m.size
    out = np.empty((*flat.shape[:-1], n), dtype=flat.dtype)
    for b0 in range(0, n, _BLOCK):
        sl = slice(b0, min(n, b0 + _BLOCK))
        _contract(flat, shape, _cells(shape, m[sl], p[sl], th[sl], grid), out[..., sl])
    return out


def _interpolate(table, m, p, th, grid, clip=True):
    """Trilinear interpolation on the (p*(m), log p, θ) table (numpy: a jitted kernel's first
    call costs a second of LLVM start-up, more than the lookup of a whole selection).

    The mass axis is uniform in p* = √(m²/4 − m_ℓ²), not in m: near the 2m_ℓ threshold A
    follows p*, which grows like √(m − 2m_ℓ), and linear interpolation in m there was up to 5%
    high in A (0.953 for 1.000 at m = 0.227 GeV, 22.8 MeV nodes; docs/validation/closure.md)."""
    out = _trilinear(table.ravel(), table.shape, m, p, th, grid)
    return np.clip(out, 0.0, 1.0, out=out) if clip else out
