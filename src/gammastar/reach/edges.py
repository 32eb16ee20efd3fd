"""The scan's ε edges: an exclusion boundary at ``reach.eps_min`` or ``reach.eps_max`` is where
the scan stopped, not where N_sig(ε) = s_up was found. :func:`edge_flags` marks such boundaries
(``reach.json``'s ``eps_low_at_scan_edge`` / ``eps_high_at_scan_edge`` per band),
:func:`eps_text` writes them as "≤ 1.00e-09 (scan edge)", :func:`edge_warnings` says where.

Plain Python on the JSON lists: the summary and the report read it without numpy.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)

EDGE_RTOL = 1e-9
"""A boundary within this relative distance of the grid's end is that end: ``eps_boundaries``
returns the grid's first or last value itself there (the refined crossings lie strictly
inside a grid cell, more than the root finder's tolerance from its ends)."""


EDGE_KEYS = ("eps_low_at_scan_edge", "eps_high_at_scan_edge")
"""The per-mass flags of a ``reach.json`` band (lower, upper boundary at the scan's edge)."""


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def edge_flags(
    eps_low: Sequence[Any], eps_high: Sequence[Any], eps_min: float, eps_max: float
) -> dict[str, list[bool]]:
    """Per mass: is the excluded range's lower (upper) boundary the scan's ``eps_min``
    (``eps_max``)? False where nothing is excluded.

    Example:
        >>> edge_flags([1e-9, 2e-8, None], [1e-3, 1e-2, None], 1e-9, 1e-2)
        {'eps_low_at_scan_edge': [True, False, False], 'eps_high_at_scan_edge': [False, True, False]}
    """
    return {
        "eps_low_at_scan_edge": [
            _finite(v) and v <= eps_min * (1 + EDGE_RTOL) for v in eps_low
        ],
        "eps_high_at_scan_edge": [
            _finite(v) and v >= eps_max * (1 - EDGE_RTOL) for v in eps_high
        ],
    }


def eps_text(value: float, at_edge: bool, side: str, spec: str = ".2e") -> str:
    """``value`` formatted; at the scan's edge "≤ value (scan edge)" for the lower boundary
    (``side`` "low"), "≥ value (scan edge)" for the upper one.

    Example:
        >>> eps_text(1e-9, True, "low"), eps_text(2.3e-4, False, "high")
        ('≤ 1.00e-09 (scan edge)', '2.30e-04')
    """
    if not at_edge:
        return format(value, spec)
    return f"{'≤' if side == 'low' else '≥'} {format(value, spec)} (scan edge)"


def eps_range(band: dict[str, Any], spec: str = ".2e") -> tuple[str, str] | None:
    """The lowest ε_low and the highest ε_high of a ``reach.json`` band over its excluded
    masses, each as :func:`eps_text` (marked when it is the scan's edge); ``None`` when nothing
    is excluded. A band without the edge flags (an older file) is shown unmarked."""
    lo, hi = list(band.get("eps_low") or []), list(band.get("eps_high") or [])
    low_edge = list(band.get("eps_low_at_scan_edge") or [])
    high_edge = list(band.get("eps_high_at_scan_edge") or [])
    idx = [i for i in range(min(len(lo), len(hi))) if _finite(lo[i]) and _finite(hi[i])]
    if not idx:
        return None
    i_lo = min(idx, key=lambda i: lo[i])
    i_hi = max(idx, key=lambda i: hi[i])
    return (
        eps_text(lo[i_lo], i_lo < len(low_edge) and bool(low_edge[i_lo]), "low", spec),
        eps_text(hi[i_hi], i_hi < len(high_edge) and bool(high_edge[i_hi]), "high", spec),
    )


def edge_warnings(band: dict[str, Any], what: str = "expected exclusion") -> list[str]:
    """One line per scan edge the band's boundaries reach, naming the masses (GeV) and the
    config key that would move the edge; none when the band closes inside the scan."""
    mass = list(band.get("mass") or [])
    out = []
    for key, name, where in (
        ("eps_low_at_scan_edge", "eps_min", "below"),
        ("eps_high_at_scan_edge", "eps_max", "above"),
    ):
        at = [m for m, flag in zip(mass, band.get(key) or [], strict=False) if flag]
        if at:
            masses = ", ".join(f"{m:.3g}" for m in at)
            out.append(
                f"the {what} reaches the scan's edge reach.{name} at m = {masses} GeV: "
                f"it extends {where} the scan there (widen reach.{name} to find its boundary)"
            )
    return out


def warn(band: dict[str, Any], what: str = "expected exclusion") -> None:
    """Log :func:`edge_warnings` (the reach stage, when it writes ``reach.json``)."""
    for text in edge_warnings(band, what):
        log.warning("reach: %s", text)
