"""A reach against a published bound: the excluded ε range (ε_low, ε_high) of a closed bound at
each mass, and the ratios ours / published at every mass that both exclude.

A band (DarkCast ``.lmt``) is read at a mass by linear interpolation of its edges in
(log m, log ε); a contour (a polygon) by the crossings of the vertical line m with its edges,
interpolated in (log m, log ε): the lowest crossing is ε_low, the highest ε_high (the polygon's
edges through a gap in the middle are ignored: the range is taken as one interval).

Example:
    >>> import numpy as np
    >>> from pathlib import Path
    >>> from gammastar.formats.bounds.core import Bound
    >>> b = Bound("b", "", np.array([0.1, 1.0]), np.array([1e-7, 1e-7]), np.array([1e-4, 1e-4]),
    ...           "band", Path("b"), "eps")
    >>> t = compare_reach(np.array([0.3, 2.0]), np.array([2e-7, 1e-6]), np.array([5e-5, 1e-5]), b)
    >>> t["ratio_low"].round(6).tolist(), t["ratio_high"].round(6).tolist(), t["both"].tolist()
    ([2.0, nan], [0.5, nan], [True, False])
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.formats.bounds.core import Bound


def excluded_range(
    bound: Bound, masses: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The published (ε_low, ε_high) at each mass (NaN where the bound excludes nothing or
    the mass is outside it).

    Raises:
        ValueError: a bound that is not a closed region (a line or an upper limit).
    """
    m = np.atleast_1d(np.asarray(masses, dtype=float))
    lo, hi = np.full(m.shape, np.nan), np.full(m.shape, np.nan)
    if not bound.closed:
        raise ValueError(f"{bound.source}: a {bound.shape} bound has no excluded ε range")
    lm = np.log(m)
    if bound.eps_high is not None:  # a band: its edges, inside its mass range
        order = np.argsort(bound.mass, kind="stable")
        x = np.log(bound.mass[order])
        inside = (lm >= x[0]) & (lm <= x[-1])
        lo[inside] = np.exp(np.interp(lm[inside], x, np.log(bound.eps[order])))
        hi[inside] = np.exp(np.interp(lm[inside], x, np.log(bound.eps_high[order])))
        return lo, hi
    xs, ys = np.log(bound.mass), np.log(bound.eps)
    x1, y1 = np.roll(xs, -1), np.roll(ys, -1)  # the closing edge included
    for k, x in enumerate(lm):
        # half-open edges, so that a vertex on the line counts once
        hit = ((xs <= x) & (x < x1)) | ((x1 <= x) & (x < xs))
        if not hit.any():
            continue
        t = (x - xs[hit]) / (x1[hit] - xs[hit])
        y = ys[hit] + t * (y1[hit] - ys[hit])
        lo[k], hi[k] = np.exp(y.min()), np.exp(y.max())
    hi[hi <= lo] = np.nan  # a single touching vertex: nothing excluded
    lo[np.isnan(hi)] = np.nan
    return lo, hi


def compare_reach(
    masses: ArrayLike, eps_low: ArrayLike, eps_high: ArrayLike, bound: Bound
) -> dict[str, NDArray[Any]]:
    """Ours against a published bound, mass by mass.

    Arguments:
        masses: our mass points, GeV.
        eps_low, eps_high: our excluded ε range at each (NaN where nothing is excluded).
        bound: the published, closed bound.

    Returns:
        ``mass``, ``ours_low``, ``ours_high``, ``theirs_low``, ``theirs_high``,
        ``ratio_low`` (ours / published ε_low), ``ratio_high`` (ours / published ε_high): NaN
        unless both exclude at that mass; ``both`` (bool), ``ours_only``, ``theirs_only``.
    """
    m = np.asarray(masses, dtype=float)
    ol, oh = np.asarray(eps_low, dtype=float), np.asarray(eps_high, dtype=float)
    tl, th = excluded_range(bound, m)
    ours = np.isfinite(ol) & np.isfinite(oh) & (oh > ol)
    theirs = np.isfinite(tl) & np.isfinite(th)
    both = ours & theirs
    with np.errstate(invalid="ignore", divide="ignore"):
        rl = np.where(both, ol / tl, np.nan)
        rh = np.where(both, oh / th, np.nan)
    return {
        "mass": m, "ours_low": ol, "ours_high": oh, "theirs_low": tl, "theirs_high": th,
        "ratio_low": rl, "ratio_high": rh, "both": both,
        "ours_only": ours & ~theirs, "theirs_only": theirs & ~ours,
    }  # fmt: skip


def ratio_ranges(table: dict[str, NDArray[Any]]) -> dict[str, Any]:
    """The ranges of :func:`compare_reach`'s ratios over the masses both exclude.

    Returns:
        ``{"n": masses both exclude, "low": [min, max] or None, "high": [min, max] or None,
        "mass": [first, last] or None, "ours_only": n, "theirs_only": n}``.
    """
    both = table["both"]

    def span(a: NDArray[Any]) -> list[float] | None:
        return [float(np.min(a[both])), float(np.max(a[both]))] if both.any() else None

    return {
        "n": int(both.sum()),
        "low": span(table["ratio_low"]),
        "high": span(table["ratio_high"]),
        "mass": span(table["mass"]),
        "ours_only": int(table["ours_only"].sum()),
        "theirs_only": int(table["theirs_only"].sum()),
    }


__all__ = ["compare_reach", "excluded_range", "ratio_ranges"]
