r"""Rays and the path-length intervals every shape is built from.

A ray is ``origin + s · direction`` (``(3, n)`` arrays, m); a shape is a set of path lengths s
per ray, here an interval ``(lo, hi)`` (NaN in both where it is empty): the half-line of a
linear inequality, the one or two intervals of a quadratic one, their intersection and hull.

References:
    A. S. Glassner (ed.), *An Introduction to Ray Tracing* (Academic Press, 1989), ch. 2
    (ray–plane, ray–box slab method, ray–quadric intersections).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["Array", "Interval"]

Array = NDArray[np.float64]
Interval = tuple[Array, Array]
"""(lo, hi) of a set of path lengths per ray; NaN in both where the set is empty."""


_EMPTY = np.nan


def _rays(origin: ArrayLike, direction: ArrayLike) -> tuple[Array, Array]:
    o = np.asarray(origin, dtype=np.float64)
    d = np.asarray(direction, dtype=np.float64)
    o = o[:, None] if o.ndim == 1 else o
    d = d[:, None] if d.ndim == 1 else d
    if o.shape[0] != 3 or d.shape[0] != 3:
        raise ValueError(f"origin and direction must be (3, n) arrays, not {o.shape}, {d.shape}")
    o, d = np.broadcast_arrays(o, d)
    return o, d


def _points(points: ArrayLike) -> Array:
    p = np.asarray(points, dtype=np.float64)
    p = p[:, None] if p.ndim == 1 else p
    if p.shape[0] not in (2, 3):
        raise ValueError(f"points must be a (3, n) or (2, n) array, not {p.shape}")
    return p


def _linear(c0: Array, c1: Array) -> Interval:
    """{s : c0 + c1 s ≤ 0}: a half-line, the whole line or nothing."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r = -c0 / c1
    lo = np.where(c1 < 0, r, -np.inf)
    hi = np.where(c1 > 0, r, np.inf)
    flat = c1 == 0
    lo = np.where(flat, np.where(c0 <= 0, -np.inf, _EMPTY), lo)
    hi = np.where(flat, np.where(c0 <= 0, np.inf, _EMPTY), hi)
    return lo, hi


def _quadratic(a: Array, b: Array, c: Array) -> tuple[Interval, Interval]:
    """{s : a s² + b s + c ≤ 0} as two intervals: [r1, r2] (a > 0); (−∞, r1] and [r2, ∞)
    (a < 0, two real roots) or the whole line (a < 0, none); a half-line (a = 0). The roots by
    the cancellation-free form q = −(b + sgn(b)√D)/2, r = q/a and c/q."""
    disc = b * b - 4.0 * a * c
    sq = np.sqrt(np.clip(disc, 0.0, None))
    q = -0.5 * (b + np.copysign(sq, b))
    with np.errstate(divide="ignore", invalid="ignore"):
        r1 = np.where(q != 0, q / a, 0.0)
        r2 = np.where(q != 0, c / q, 0.0)
    rlo, rhi = np.minimum(r1, r2), np.maximum(r1, r2)
    lin_lo, lin_hi = _linear(c, b)
    up, down = a > 0, a < 0
    real = disc >= 0
    lo1 = np.where(up, np.where(real, rlo, _EMPTY), np.where(down, -np.inf, lin_lo))
    hi1 = np.where(up, np.where(real, rhi, _EMPTY), np.where(down, np.inf, lin_hi))
    split = down & (disc > 0)
    hi1 = np.where(split, rlo, hi1)
    lo2 = np.where(split, rhi, _EMPTY)
    hi2 = np.where(split, np.inf, _EMPTY)
    return (lo1, hi1), (lo2, hi2)


def _meet(*parts: Interval) -> Interval:
    """Intersection of intervals (NaN, the empty set, propagates)."""
    lo, hi = parts[0]
    for a, b in parts[1:]:
        lo, hi = np.maximum(lo, a), np.minimum(hi, b)
    return _clean(lo, hi)


def _clean(lo: Array, hi: Array) -> Interval:
    keep = lo <= hi
    return np.where(keep, lo, _EMPTY), np.where(keep, hi, _EMPTY)


def _hull(*parts: Interval) -> Interval:
    """Smallest interval holding the non-empty ones (their union where it is convex)."""
    lo = parts[0][0]
    hi = parts[0][1]
    for a, b in parts[1:]:
        lo, hi = np.fmin(lo, a), np.fmax(hi, b)
    return lo, hi
