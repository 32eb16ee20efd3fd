"""The fiducial region's test at one mass, made on the points that can pass it.

:meth:`~gammastar.corrections.pair_acceptance.FiducialRegion.contains` interpolates the pair
acceptance A(m, p, θ) of its :class:`~gammastar.corrections.pair_acceptance.table.PairAcceptance`
trilinearly (in p*(m), log p and θ) at every point, about 50 ns a point: the extrapolation fit
tests 2·10⁵ reference points (``ReferenceSample``) and 6·10⁴ quadrature points (``grid_in_f``) per
fit group and fiducial region, of which a fifth pass. A trilinear value is a convex combination
of its cell's 8 table values, then 0 (outside the kinematic range) or clipped to [0, 1]; so a
point whose cell, and the cells around it, hold only values below ``min_acceptance`` cannot
pass. :func:`inside_at_mass` finds each point's (log p, θ) cell (one compiled pass over the
points, :func:`_candidates`), drops the points of such cells and tests the others with
``contains`` itself: the same answer point for point (``contains`` works point by point), at a
fraction of the cost.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Mapping
from typing import Any

import numpy as np
from numba import njit
from numpy.typing import NDArray

from gammastar.core.imports import import_vector
from gammastar.corrections.pair_acceptance import FiducialRegion
from gammastar.corrections.pair_acceptance.lepton import LeptonAcceptance
from gammastar.corrections.pair_acceptance.table import PairAcceptance

import_vector()  # before numba's first dispatch loads vector's extension (core.imports)

__all__ = [
    "acceptance_at_mass",
    "candidates",
    "cell_bound",
    "contains_at_mass",
    "inside_at_mass",
    "inside_at_mass_each",
    "mt_exponential_candidates",
    "mt_exponential_superset",
]

MARGIN = 1e-6
"""Relative margin below ``min_acceptance`` for the bound (the rounding of a trilinear
combination, ~10 ulp; a table in single precision, 10⁻⁷)."""
DILATE = 2
"""Cells on each side whose table values join a cell's bound: one for a point's cell index
rounded across a cell edge (the index here and the interpolation's are computed differently),
one to spare."""


def _jit(fn=None, **options):
    if fn is None:
        return lambda f: _jit(f, **options)
    # nogil: the fit groups' reference samples are made on threads side by side
    # (core.threads.thread_map)
    try:
        return njit(cache=True, error_model="numpy", nogil=True, **options)(fn)
    except RuntimeError:  # no writable cache location
        return njit(cache=False, error_model="numpy", nogil=True, **options)(fn)


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
        if g.size < 2:
            return None
        d = np.diff(g)
        # np.allclose(d, d[0], rtol=1e-9, atol=0) without its broadcasting and NaN handling
        # (asked at every test of a point set)
        if not (d[0] > 0 and np.all(np.abs(d - d[0]) <= 1e-9 * d[0])):
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
    return _top(acc.table, i0, i1) >= fiducial.min_acceptance * (1.0 - MARGIN)


_TOPS: dict[tuple[int, int, int], tuple[weakref.ref, NDArray]] = {}
""":func:`_top` of the tables last asked about (a table is not changed in place)."""
_TOPS_SIZE = 64


def _top(table: NDArray, i0: int, i1: int) -> NDArray:
    """The largest value per (log p, θ) cell and its neighbours (:func:`_dilated_max`) of the
    mass nodes ``i0`` … ``i1`` of ``table``, kept for the next ask (the λ_θ refits ask about
    each region at each fit group's mass and each bin's): a table that is gone (its weak
    reference dead) does not answer for a new one at its address."""
    key = (id(table), i0, i1)
    hit = _TOPS.get(key)
    if hit is not None and hit[0]() is table:
        return hit[1]
    top = np.asarray(table[i0 : i1 + 1], dtype=np.float64).max(axis=0)
    top = _dilated_max(_dilated_max(top, 0), 1)
    top.flags.writeable = False  # shared by every later ask
    if len(_TOPS) >= _TOPS_SIZE:
        del _TOPS[next(iter(_TOPS))]
    _TOPS[key] = (weakref.ref(table), top)
    return top


def cells(fiducial: Any, m: float, qt: NDArray, e: NDArray) -> NDArray[np.intp]:
    """Each point's (log p, θ) cell of ``fiducial``'s table, flat over (n_p − 1, n_θ − 1)
    (:func:`cell_bound`'s layout), for γ* of mass ``m`` given as (q_T, E) (p, θ as
    :meth:`~gammastar.corrections.pair_acceptance.table.PairAcceptance.of_kinematics` finds them);
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


@_jit(inline="always")  # numba's calls pass arrays with reference counting: none per point
def _cell_ok(q, e, m2, lp0, p_scale, n_p, row_ok, lo2, hi2):  # pragma: no cover - compiled
    """Whether the γ* (q_T ``q``, E ``e``) of squared mass ``m2`` lies in an ``ok`` cell of
    its (log p, θ) row, or between two (:func:`_rows`): the row of :func:`cells`, point by
    point (its rounding may differ from numpy's by an ulp: a point on a cell edge in the next
    row, which :data:`DILATE` covers), and θ between the row's first and last ``ok`` cell
    compared as tan²θ = q_T²/p_z² with the tangents of their edges (no arctangent, the most
    expensive step of a point; an edge again within an ulp). Without branches (selects only):
    the points' verdicts come in no order a branch could predict."""
    p2 = e * e - m2
    p2 = p2 if p2 > 0.0 else 0.0  # noqa: FURB136 - NaN → 0, as numba's max may not
    j = (0.5 * math.log(p2) - lp0) * p_scale
    # NaN and −inf (no momentum) → the first row, beyond the grid → the edge rows
    j = j if j > 0.0 else 0.0  # noqa: FURB136 - NaN → 0
    jj = int(j if j < n_p - 1 else n_p - 1)  # noqa: FURB136 - the select, as above
    pz2 = p2 - q * q
    pz2 = pz2 if pz2 > 0.0 else 0.0  # noqa: FURB136 - NaN → 0
    q2 = q * q
    # a NaN product (an infinite tangent at p_z = 0) rejects nothing
    return row_ok[jj] & ~(q2 < lo2[jj] * pz2) & ~(q2 > hi2[jj] * pz2)


@_jit
def _candidates(qt, e, m2, lp0, p_scale, n_p, row_ok, lo2, hi2):  # pragma: no cover
    """The indices of the points that :func:`_cell_ok` keeps, in one pass without the
    whole-sample temporaries of :func:`cells` (written at every point, advanced at a kept
    one: no branch)."""
    n = qt.size
    out = np.empty(n + 1, dtype=np.intp)
    c = 0
    for i in range(n):
        out[c] = i
        c += _cell_ok(qt[i], e[i], m2, lp0, p_scale, n_p, row_ok, lo2, hi2)
    return out[:c]


@_jit
def _mt_exponential_candidates(r, u_exp, u_gamma, cosh_y, threshold, m, m2_sample, m2, lp0,
                               p_scale, n_p, row_ok, lo2, hi2):  # fmt: skip  # pragma: no cover
    """:func:`_candidates` of the m_T-exponential sample made from its mass-independent parts
    (:func:`mt_exponential_candidates`), with the candidates' q_T and E."""
    n = r.size
    idx = np.empty(n + 1, dtype=np.intp)
    qt = np.empty(n + 1, dtype=np.float64)
    e = np.empty(n + 1, dtype=np.float64)
    c = 0
    for i in range(n):
        u = u_gamma[i] if r[i] < threshold else u_exp[i]
        q = math.sqrt(u * (u + 2.0 * m))
        ei = math.sqrt(q * q + m2_sample) * cosh_y[i]
        idx[c] = i
        qt[c] = q
        e[c] = ei
        c += _cell_ok(q, ei, m2, lp0, p_scale, n_p, row_ok, lo2, hi2)
    return idx[:c], qt[:c], e[:c]


def _grid_args(fiducial: Any, ok: NDArray[np.bool_]) -> tuple:
    """The table's log p grid and ``ok``'s rows (:func:`_rows`) as the compiled lookups
    (:func:`_cell_ok`) take them."""
    lg = fiducial.acceptance.logp_grid
    n_p = lg.size - 1
    return (float(lg[0]), float(n_p / (lg[-1] - lg[0])), n_p,
            *_rows(ok, fiducial.acceptance.theta_grid))  # fmt: skip


def _rows(ok: NDArray[np.bool_], theta: NDArray) -> tuple[NDArray, NDArray, NDArray]:
    """Per log p row of ``ok`` ((n_p, n_θ) cells on the θ nodes ``theta``): whether any cell
    is ``ok``, and tan² of the lower edge of its first ``ok`` cell and of the upper edge of its
    last (0 for the first cell, ∞ for the last: the θ beyond the grid are in it; ∞ for an
    edge at or beyond π/2). A point of the row between them may still be in a cell that is not
    ``ok`` (a hole): :func:`inside_at_mass` asks ``contains`` about it."""
    ok = np.asarray(ok, dtype=bool)
    n_t = ok.shape[1]
    edges = np.asarray(theta, dtype=np.float64)
    with np.errstate(over="ignore"):
        tan2 = np.where(edges < 0.5 * math.pi, np.tan(edges) ** 2, np.inf)
    tan2[0], tan2[-1] = 0.0, np.inf
    row_ok = np.asarray(ok.any(axis=1), dtype=bool)
    first = np.argmax(ok, axis=1)
    last = n_t - 1 - np.argmax(ok[:, ::-1], axis=1)
    return row_ok, tan2[first], tan2[last + 1]


def mt_exponential_candidates(fiducial: Any, m: float, ok: NDArray[np.bool_],
                              parts: Mapping[str, NDArray], temperature: float
                              ) -> tuple[NDArray[np.intp], NDArray, NDArray]:  # fmt: skip
    """The points of an m_T-exponential sample at mass ``m`` that may lie in an ``ok`` cell
    (:func:`cell_bound`'s layout; :func:`_cell_ok`: every such point, and those between two
    ``ok`` cells of a row), made only there: ``(index, q_T, E)``, q_T and E number for
    number those of :meth:`~gammastar.physics.sampling.ParametricSampler.sample_at` (the same
    operations on each draw; the sample's p_T chooses Γ(2, T) where ``r`` < T/(T + m)).

    Arguments:
        fiducial: the :class:`FiducialRegion` of ``ok``.
        m: the mass (GeV).
        ok: :func:`cell_bound` at ``m``.
        parts: the sample's mass-independent parts: its uniforms ``r``, ``u_exp`` = T e₀ and
            ``u_gamma`` = T (e₀ + e₁) of its standard exponentials, and ``cosh_y``.
        temperature: T (GeV).
    """
    m = float(m)
    return _mt_exponential_candidates(parts["r"], parts["u_exp"], parts["u_gamma"],
                                      parts["cosh_y"], temperature / (temperature + m), m, m**2,
                                      m * m, *_grid_args(fiducial, ok))  # fmt: skip


def _same_grids(fiducials: list[Any]) -> bool:
    """Whether the regions' tables share the first one's log p and θ grids (their bounds then
    share a layout)."""
    a = fiducials[0].acceptance
    return all(np.array_equal(f.acceptance.logp_grid, a.logp_grid)
               and np.array_equal(f.acceptance.theta_grid, a.theta_grid)
               for f in fiducials[1:])  # fmt: skip


def _grow(ok: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """``ok`` with every cell next to an ``ok`` one (diagonals too) ``ok``."""
    out = ok.copy()
    for axis in (0, 1):
        grown = out.copy()
        lo = [slice(None)] * 2
        hi = [slice(None)] * 2
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        grown[tuple(lo)] |= out[tuple(hi)]
        grown[tuple(hi)] |= out[tuple(lo)]
        out = grown
    return out


def mt_exponential_superset(fiducials: list[Any], masses: list[float],
                            parts: Mapping[str, NDArray], temperature: float
                            ) -> NDArray[np.intp] | None:  # fmt: skip
    """The points of an m_T-exponential sample (``parts`` as
    :func:`mt_exponential_candidates` takes them) among which lie the candidates of every
    (region, mass) pair of ``fiducials`` and ``masses``: one pass at the lowest mass for all of
    them, where the masses are close (the moves of one fit group), or ``None`` (the bound does
    not apply, other grids, masses too far apart: make each one's candidates from the whole
    sample).

    With its draws fixed (u, the p_T's choice of Γ(2, T) or Exp(T), y) a point's
    ln p² = ln((u + m)² cosh² y − m²) moves with ln m by at most 2 and its
    ln tan² θ = ln(u (u + 2m) / ((u + m)² sinh² y)) by at most 1 (θ by a quarter): masses within
    a fraction of a cell of that move leave each point within one cell of where it is at the
    lowest mass. So the candidates there of the regions' bounds together, each cell's
    neighbours added, hold every pair's candidates, with the points whose p_T's choice the
    masses change (``r`` between T/(T + m) at the highest and at the lowest mass).
    """
    oks = [cell_bound(f, m, m) for f, m in zip(fiducials, masses, strict=True)]
    if not oks or any(ok is None for ok in oks) or not _same_grids(fiducials):
        return None
    lo, hi = float(min(masses)), float(max(masses))
    if not lo > 0:
        return None
    acc = fiducials[0].acceptance
    lg, tg = acc.logp_grid, acc.theta_grid
    spread = math.log(hi / lo)
    rows = 2.0 * spread * (lg.size - 1) / (lg[-1] - lg[0])
    cols = 0.25 * spread * (tg.size - 1) / tg[-1]
    if not (rows < 0.5 and cols < 0.5):
        return None
    ok = _grow(np.logical_or.reduce([ok for ok in oks if ok is not None]))
    idx, _, _ = mt_exponential_candidates(fiducials[0], lo, ok, parts, temperature)
    r = parts["r"]
    # and the draws whose p_T's choice (r < T/(T + m)) differs between the masses
    keep = (r >= temperature / (temperature + hi)) & (r < temperature / (temperature + lo))
    keep[idx] = True
    return np.flatnonzero(keep)


def candidates(fiducial: Any, m: float, qt: NDArray, e: NDArray,
               ok: NDArray[np.bool_]) -> NDArray[np.intp]:  # fmt: skip
    """The indices of the points (q_T, E) at mass ``m`` (float64, 1-D) that may lie in an
    ``ok`` (log p, θ) cell of ``fiducial``'s table (:func:`cell_bound`'s layout): every point
    whose :func:`cells` is ``ok`` (and those between two ``ok`` cells of a row,
    :func:`_cell_ok`), in one compiled pass."""
    return _candidates(np.ascontiguousarray(qt, dtype=np.float64),
                       np.ascontiguousarray(e, dtype=np.float64), float(m) * float(m),
                       *_grid_args(fiducial, ok))  # fmt: skip


@_jit
def _trilinear_at(m, lp, th, flat, nm, n_p, n_t, ps0, x_scale, lp0, y_scale, t1, z_scale,
                  m_lep):  # fmt: skip  # pragma: no cover - compiled
    """A at the points (ln p ``lp``, θ ``th``) of mass ``m`` on the float64 (p*(m), log p, θ)
    table ``flat`` (flattened, nodes ``nm``, ``n_p``, ``n_t``), clipped to [0, 1]: the
    arithmetic of :func:`gammastar.corrections.pair_acceptance.interpolation._cells` and ``_contract``
    operation by operation (the same IEEE operations in the same order, no fused ones: the
    same numbers), point by point instead of array by array."""
    n = lp.size
    out = np.empty(n, dtype=np.float64)
    ps = 0.25 * m * m - m_lep * m_lep
    x = math.sqrt(ps if ps > 0.0 else 0.0)  # noqa: FURB136 - NaN-free: the clip's select
    x -= ps0
    x *= x_scale
    x = min(max(x, 0.0), nm - 1.0)
    ix = min(int(x), nm - 2)
    x -= ix
    above = m > 2.0 * m_lep
    for i in range(n):
        y = lp[i]
        t = th[i]
        dead = not (above and t >= 0 and t <= t1 and y >= lp0)
        y -= lp0
        y *= y_scale
        z = t * z_scale
        y = y if y > 0.0 else 0.0  # noqa: FURB136 - fmax: NaN → 0
        y = y if y < n_p - 1.0 else n_p - 1.0  # noqa: FURB136 - fmin
        z = z if z > 0.0 else 0.0  # noqa: FURB136 - fmax: NaN → 0
        z = z if z < n_t - 1.0 else n_t - 1.0  # noqa: FURB136 - fmin
        j = min(int(y), n_p - 2)
        k = min(int(z), n_t - 2)
        y -= j
        z -= k
        base = (ix * n_p + j) * n_t + k
        acc = 0.0
        for a in range(2):
            wa = x if a else 1.0 - x
            for b in range(2):
                wab = wa * (y if b else 1.0 - y)
                idx = base + (a * n_p + b) * n_t
                lo = flat[idx]
                hi = flat[idx + 1]
                hi -= lo
                hi *= z
                hi += lo
                hi *= wab
                acc += hi
        if dead:
            acc = 0.0
        out[i] = min(max(acc, 0.0), 1.0)
    return out


def acceptance_at_mass(fiducial: Any, m: float, qt: NDArray, e: NDArray) -> NDArray | None:
    """``fiducial.acceptance.of_kinematics`` for γ* all of mass ``m`` (q_T, E: float64, 1-D),
    the same numbers (p, θ and ln p by the same numpy expressions, the trilinear
    interpolation compiled, :func:`_trilinear_at`), or ``None`` where the bound does not
    apply (:func:`_table_of`) or the table is not float64."""
    acc = _table_of(fiducial)
    if acc is None or acc.table.dtype != np.float64:
        return None
    # of_kinematics' p = √max(E² − m², 0), p_z = √max(p² − q_T², 0), θ and its
    # interpolation's ln p: the same operations (a square is a product, the clip a maximum),
    # in place
    p = e * e
    p -= m * m
    np.maximum(p, 0.0, out=p)
    np.sqrt(p, out=p)
    pz = p * p
    pz -= qt * qt
    np.maximum(pz, 0.0, out=pz)
    np.sqrt(pz, out=pz)
    th = np.arctan2(qt, pz, out=pz)
    with np.errstate(divide="ignore", invalid="ignore"):
        lp = np.log(p, out=p)
    g = acc._grid
    nm, n_p, n_t = acc.table.shape
    return _trilinear_at(float(m), lp, th, np.ascontiguousarray(acc.table).ravel(), nm, n_p, n_t,
                         g.ps0, (nm - 1) / (g.ps1 - g.ps0), g.lp0, (n_p - 1) / (g.lp1 - g.lp0),
                         g.t1, (n_t - 1) / g.t1, g.m_lep)  # fmt: skip


def contains_at_mass(fiducial: Any, m: float, qt: NDArray, e: NDArray) -> NDArray[np.bool_]:
    """``fiducial.contains`` for γ* all of mass ``m`` (q_T, E: float64, 1-D): A of
    :func:`acceptance_at_mass` against ``min_acceptance`` where it applies, else ``contains``
    itself."""
    a = acceptance_at_mass(fiducial, m, qt, e)
    if a is None:
        return np.asarray(fiducial.contains(np.full(qt.size, m), qt, e), dtype=bool)
    return a >= fiducial.min_acceptance


def inside_at_mass_each(fiducials: list[Any], m: float, qt: NDArray, e: NDArray
                        ) -> list[NDArray[np.bool_]]:  # fmt: skip
    """:func:`inside_at_mass` of the points in each of ``fiducials`` (the same booleans), the
    candidates found once for all of them (those of their bounds together: a point no bound
    allows fails each region's ``contains``), where their tables share grids."""
    qt = np.asarray(qt, dtype=np.float64)
    e = np.asarray(e, dtype=np.float64)
    oks = [cell_bound(f, m, m) for f in fiducials]
    if len(fiducials) < 2 or any(ok is None for ok in oks) or not _same_grids(fiducials):
        return [inside_at_mass(f, m, qt, e) for f in fiducials]
    shape = qt.shape
    qt, e = qt.ravel(), e.ravel()
    union = np.logical_or.reduce([ok for ok in oks if ok is not None])
    cand = candidates(fiducials[0], m, qt, e, union)
    qc, ec = qt[cand], e[cand]
    out = []
    for f in fiducials:
        got = np.zeros(qt.size, dtype=bool)
        got[cand] = contains_at_mass(f, m, qc, ec)
        out.append(got.reshape(shape))
    return out


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
        >>> from gammastar.corrections.pair_acceptance.lepton import LeptonAcceptance
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
    cand = candidates(fiducial, m, qt, e, ok)
    out = np.zeros(qt.size, dtype=bool)
    out[cand] = contains_at_mass(fiducial, m, qt[cand], e[cand])
    return out.reshape(shape)


def warm_up() -> None:
    """Compile (or load from numba's cache) the three kernels at the signatures their
    callers use, on a small region (:mod:`gammastar.kernels`)."""
    pa = PairAcceptance.build(LeptonAcceptance(1.0, 0.02, 0.3), lepton_mass=0.1057,
                              mass_range=(0.3, 0.5), p_max=10.0, grid=(3, 4, 5),
                              quadrature=(2, 2))  # fmt: skip
    fid = FiducialRegion(pa, 0.01)
    ok = cell_bound(fid, 0.4, 0.4)
    assert ok is not None
    qt, e = np.array([0.1, 0.2]), np.array([5.0, 6.0])
    candidates(fid, 0.4, qt, e, ok)
    acceptance_at_mass(fid, 0.4, qt, e)
    parts = {k: np.full(2, 0.5) for k in ("r", "u_exp", "u_gamma", "cosh_y")}
    mt_exponential_candidates(fid, 0.4, ok, parts, 0.2)
