"""Lepton universality of the data-driven A′ yield (issue 14; paper Eq. 6).

Eq. 6 divides the dilepton spectrum by K_ℓ(m), so above 2m_μ the A′ yields derived from ee
and from μμ data must agree. :func:`compare_aprime` takes the ``aprime`` blocks of two
``yields.json`` (one per flavour), keeps the mass bins they share (identical edges) and
returns the ratio per bin with its error, the χ² of the hypothesis "equal" (and its p-value)
in a mass range, and the combined yield: the inverse-variance weighted mean, with half the
difference of the two as a systematic (the disagreement).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from gammastar.errors import InputError

SERIOUS_FLAGS = frozenset({"negative", "empty", "below_threshold"})
"""Bins with these flags (docs/yields.md#flags) are left out of the comparison."""


def _block(doc: dict[str, Any], name: str) -> dict[str, np.ndarray]:
    try:
        edges = np.asarray(doc["bin_edges"], dtype=np.float64)
        y = np.asarray(doc["per_pot_per_eps2"], dtype=np.float64)
        err = np.asarray(doc["stat_err"], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as err_:
        raise InputError(f"{name}: no usable aprime block ({err_})") from None
    flags = doc.get("flags") or [[] for _ in y]
    bad = np.array([bool(SERIOUS_FLAGS & set(f)) for f in flags], dtype=bool)
    ok = ~bad & np.isfinite(y) & np.isfinite(err) & (err > 0)
    return {"lo": edges[:-1], "hi": edges[1:], "y": y, "err": err, "ok": ok}


def compare_aprime(
    a: dict[str, Any],
    b: dict[str, Any],
    *,
    labels: tuple[str, str] = ("ee", "mumu"),
    mass_range: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """Ratio, χ² and combination of two A′ yields per POT per ε² (``yields.json`` ``aprime``).

    Arguments:
        a, b: the ``aprime`` blocks (``bin_edges``, ``per_pot_per_eps2``, ``stat_err``,
            ``flags``) of the two flavours' runs.
        labels: their names (the ratio is a/b).
        mass_range: bins inside [lo, hi] enter the χ² (default: all shared bins).

    Returns:
        JSON-ready dict: ``mass``, ``bin_edges`` (lo, hi per shared bin), ``ratio``,
        ``ratio_err`` (the two relative errors in quadrature), ``chi2``, ``ndf``,
        ``p_value`` (of Σ (a − b)²/(σa² + σb²) over the bins in ``mass_range``),
        ``combined`` {``per_pot_per_eps2``, ``stat_err``, ``syst_err`` = |a − b|/2}.

    Raises:
        InputError: the two yields share no mass bin (their edges must coincide: the same
            ``unfold.mass_bins`` width, ``selection.mass_min`` on the same grid and
            ``yields.mass_bin_width``).

    References:
        Allison & Blinov, Eq. 6 (the K_ℓ(m) division); PDG, "Statistics" (weighted mean).

    Example:
        >>> blk = {"bin_edges": [0.3, 0.4], "per_pot_per_eps2": [2.0], "stat_err": [0.1],
        ...        "flags": [[]]}
        >>> out = compare_aprime(blk, {**blk, "per_pot_per_eps2": [1.0]})
        >>> out["ratio"], round(out["combined"]["syst_err"][0], 3)
        ([2.0], 0.5)
    """
    pa, pb = _block(a, labels[0]), _block(b, labels[1])
    tol = 1e-9
    ia, ib = [], []
    for i, (lo, hi) in enumerate(zip(pa["lo"], pa["hi"], strict=True)):
        j = np.flatnonzero((np.abs(pb["lo"] - lo) < tol) & (np.abs(pb["hi"] - hi) < tol))
        if j.size and pa["ok"][i] and pb["ok"][j[0]]:
            ia.append(i)
            ib.append(int(j[0]))
    if not ia:
        raise InputError(
            f"lepton universality: the {labels[0]} and {labels[1]} A′ yields share no usable "
            "mass bin; give both runs mass bins with the same edges (unfold.mass_bins width, "
            "selection.mass_min on the same grid, yields.mass_bin_width)"
        )
    ia, ib = np.array(ia), np.array(ib)
    ya, ea = pa["y"][ia], pa["err"][ia]
    yb, eb = pb["y"][ib], pb["err"][ib]
    lo, hi = pa["lo"][ia], pa["hi"][ia]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = ya / yb
        ratio_err = np.abs(ratio) * np.hypot(ea / ya, eb / yb)
    inside = np.ones(ia.size, dtype=bool)
    if mass_range is not None:
        inside = (lo >= mass_range[0] - tol) & (hi <= mass_range[1] + tol)
    chi2_i = (ya - yb) ** 2 / (ea**2 + eb**2)
    chi2 = float(chi2_i[inside].sum())
    ndf = int(inside.sum())
    w_a, w_b = 1 / ea**2, 1 / eb**2
    comb = (w_a * ya + w_b * yb) / (w_a + w_b)
    return {
        "ratio_of": f"{labels[0]}/{labels[1]}",
        "mass": (0.5 * (lo + hi)).tolist(),
        "bin_edges": np.stack([lo, hi], axis=1).tolist(),
        "ratio": ratio.tolist(),
        "ratio_err": ratio_err.tolist(),
        "chi2": chi2,
        "ndf": ndf,
        "p_value": float(stats.chi2(ndf).sf(chi2)) if ndf else None,
        "mass_range": list(mass_range) if mass_range is not None else None,
        "combined": {
            "per_pot_per_eps2": comb.tolist(),
            "stat_err": (1 / np.sqrt(w_a + w_b)).tolist(),
            "syst_err": (0.5 * np.abs(ya - yb)).tolist(),
        },
    }
