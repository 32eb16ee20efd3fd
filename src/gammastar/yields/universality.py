"""Lepton universality of the data-driven A′ yield (paper Eq. 6).

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
from scipy.special import chdtrc

from gammastar.errors import InputError

SERIOUS_FLAGS = frozenset({"negative", "empty", "below_threshold"})
"""Bins with these flags (docs/explanation/method.md#10-flags) are left out of the comparison."""


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
    ia: list[int] = []
    ib: list[int] = []
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
    rows_a, rows_b = np.array(ia), np.array(ib)
    ya, ea = pa["y"][rows_a], pa["err"][rows_a]
    yb, eb = pb["y"][rows_b], pb["err"][rows_b]
    lo_m, hi_m = pa["lo"][rows_a], pa["hi"][rows_a]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = ya / yb
        ratio_err = np.abs(ratio) * np.hypot(ea / ya, eb / yb)
    inside = np.ones(rows_a.size, dtype=bool)
    if mass_range is not None:
        inside = (lo_m >= mass_range[0] - tol) & (hi_m <= mass_range[1] + tol)
    chi2_i = (ya - yb) ** 2 / (ea**2 + eb**2)
    chi2 = float(chi2_i[inside].sum())
    ndf = int(inside.sum())
    comb, comb_err, comb_syst, _ = combine(ya, ea, yb, eb)
    return {
        "ratio_of": f"{labels[0]}/{labels[1]}",
        "mass": (0.5 * (lo_m + hi_m)).tolist(),
        "bin_edges": np.stack([lo_m, hi_m], axis=1).tolist(),
        "ratio": ratio.tolist(),
        "ratio_err": ratio_err.tolist(),
        "chi2": chi2,
        "ndf": ndf,
        "p_value": float(chdtrc(ndf, chi2)) if ndf else None,
        "mass_range": list(mass_range) if mass_range is not None else None,
        "combined": {
            "per_pot_per_eps2": comb.tolist(),
            "stat_err": comb_err.tolist(),
            "syst_err": comb_syst.tolist(),
        },
    }


def combine(
    ya: np.ndarray, ea: np.ndarray, yb: np.ndarray, eb: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The inverse-variance weighted mean of two measurements of one quantity (what
    :func:`compare_aprime` returns as ``combined``).

    Returns:
        ``(mean, stat_err, syst_err, weight_a)``: stat_err = (σa⁻² + σb⁻²)^(-1/2),
        syst_err = |a − b|/2 (the disagreement), weight_a = σa⁻²/(σa⁻² + σb⁻²) the share of
        ``a`` in the mean (``1 − weight_a`` that of ``b``).

    References:
        PDG, "Statistics" (weighted mean).

    Example:
        >>> y, s, d, wa = combine(np.array([2.0]), np.array([1.0]), np.array([1.0]),
        ...                       np.array([1.0]))
        >>> float(y[0]), round(float(s[0]), 4), float(d[0]), float(wa[0])
        (1.5, 0.7071, 0.5, 0.5)
    """
    w_a, w_b = 1 / np.asarray(ea, float) ** 2, 1 / np.asarray(eb, float) ** 2
    ya, yb = np.asarray(ya, float), np.asarray(yb, float)
    return (
        (w_a * ya + w_b * yb) / (w_a + w_b),
        1 / np.sqrt(w_a + w_b),
        0.5 * np.abs(ya - yb),
        w_a / (w_a + w_b),
    )


def _parsed_blocks(blocks: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each channel's block as arrays (:func:`_block`), with its ``flags`` (empty lists when
    absent) and ``bkg`` (``bkg_sub_err``; NaN where absent)."""
    parsed = {}
    for n, blk in blocks.items():
        p: dict[str, Any] = dict(_block(blk, n))
        p["flags"] = list(blk.get("flags") or [[] for _ in p["y"]])
        bkg = blk.get("bkg_sub_err")
        p["bkg"] = (
            np.asarray([np.nan if v is None else v for v in bkg], float)
            if bkg is not None
            else np.full(p["y"].size, np.nan)
        )
        parsed[n] = p
    return parsed


def _united_bins(
    parsed: dict[str, dict[str, Any]], tol: float
) -> list[tuple[float, float, dict[str, int]]]:
    """The channels' mass bins united in mass order, ``(lo, hi, {channel: its bin})``, a bin
    both have once, a gap between them an empty bin (``{}``).

    Raises:
        InputError: bins that overlap without coinciding.
    """
    bins: list[tuple[float, float, dict[str, int]]] = []
    for n, p in parsed.items():
        for i, (lo, hi) in enumerate(zip(p["lo"], p["hi"], strict=True)):
            for b in bins:
                if abs(b[0] - lo) < tol and abs(b[1] - hi) < tol:
                    b[2][n] = i
                    break
            else:
                bins.append((float(lo), float(hi), {n: i}))
    bins.sort(key=lambda b: b[0])
    filled: list[tuple[float, float, dict[str, int]]] = []
    for b in bins:
        if filled and b[0] < filled[-1][1] - tol:
            raise InputError(
                f"combining the channels: a {'/'.join(b[2])} mass bin [{b[0]:.6g}, {b[1]:.6g}] "
                f"GeV overlaps [{filled[-1][0]:.6g}, {filled[-1][1]:.6g}] without coinciding; "
                "put both flavours' mass bins on one grid (selection.mass_min, "
                "unfold.mass_bins per flavour, yields.mass_bin_width)"
            )
        if filled and b[0] > filled[-1][1] + tol:
            filled.append((filled[-1][1], b[0], {}))  # a gap between the channels: empty
        filled.append(b)
    return filled


def _united_bin(
    parsed: dict[str, dict[str, Any]], idx: dict[str, int]
) -> tuple[tuple[float, float, float, float], list[str], list[str], dict[str, float]]:
    """One united bin: ``((y, stat_err, syst_err, bkg_sub_err), flags, channels measuring it,
    each channel's share λ)`` (the weighted mean of two measurements, the one measurement, or
    the first channel's flagged entry; NaN and ``empty`` for a gap)."""
    names = list(parsed)
    ok = [n for n in names if n in idx and parsed[n]["ok"][idx[n]]]
    lam = dict.fromkeys(names, 0.0)
    if len(ok) == 2:
        a, b = (parsed[n] for n in ok)
        i, j = idx[ok[0]], idx[ok[1]]
        y, s, d, wa = (float(v[0]) for v in combine(
            a["y"][i:i + 1], a["err"][i:i + 1], b["y"][j:j + 1], b["err"][j:j + 1]))  # fmt: skip
        lam[ok[0]], lam[ok[1]] = wa, 1.0 - wa
        bkg = float(np.hypot(wa * a["bkg"][i], (1 - wa) * b["bkg"][j]))
        flags = sorted(set(a["flags"][i]) | set(b["flags"][j]))
    elif idx:
        n = ok[0] if ok else next(n for n in names if n in idx)
        p, i = parsed[n], idx[n]
        y, s, d, bkg = float(p["y"][i]), float(p["err"][i]), 0.0, float(p["bkg"][i])
        lam[n] = 1.0
        flags = list(p["flags"][i])
    else:
        y = s = d = bkg = float("nan")
        flags = ["empty"]
    return (y, s, d, bkg), flags, ok, lam


def combine_channels(blocks: dict[str, dict[str, Any]], *, tol: float = 1e-9) -> dict[str, Any]:
    """One A′ yield from two channels' ``aprime`` blocks (a run with both flavours).

    The mass bins of the two are united: a bin that both have (the same edges) and both
    measure (no serious flag, a finite, positive error) holds the inverse-variance weighted
    mean (:func:`combine`) with half the difference as ``syst_err``; a bin that one has or
    measures holds that one (``syst_err`` 0); a gap between them is an ``empty`` bin.

    Arguments:
        blocks: ``{channel: aprime block}`` (``bin_edges``, ``per_pot_per_eps2``,
            ``stat_err``, ``flags``, optionally ``bkg_sub_err``), in priority order (where
            neither measures a bin, the first one having it keeps its flagged entry and
            weight 1).

    Returns:
        JSON-ready ``aprime`` block: ``mass``, ``bin_edges`` (n + 1), ``per_pot_per_eps2``,
        ``stat_err``, ``syst_err``, ``bkg_sub_err``, ``flags``, ``channels`` (per bin, the
        channels whose measurement it holds; none for a bin neither measures) and
        ``weights`` {channel: its share λ of each bin's mean: 1 where it alone measures
        the bin, 0 where it does not}.

    Raises:
        InputError: bins of the two overlap without coinciding (the channels' mass grids
            differ; the message names the mass).

    Example:
        >>> a = {"bin_edges": [0.1, 0.2, 0.3], "per_pot_per_eps2": [1.0, 2.0],
        ...      "stat_err": [0.1, 0.2], "flags": [[], []]}
        >>> b = {"bin_edges": [0.2, 0.3, 0.4], "per_pot_per_eps2": [4.0, 3.0],
        ...      "stat_err": [0.2, 0.3], "flags": [[], []]}
        >>> c = combine_channels({"ee": a, "mumu": b})
        >>> c["per_pot_per_eps2"], c["weights"]["ee"]
        ([1.0, 3.0, 3.0], [1.0, 0.5, 0.0])
    """
    names = list(blocks)
    if len(names) != 2:
        raise InputError(f"combine_channels: two channels, got {names}")
    parsed = _parsed_blocks(blocks)
    filled = _united_bins(parsed, tol)
    out: dict[str, Any] = {k: [] for k in ("mass", "per_pot_per_eps2", "stat_err", "syst_err",
                                           "bkg_sub_err", "flags", "channels")}  # fmt: skip
    weights: dict[str, list[float]] = {n: [] for n in names}
    for lo, hi, idx in filled:
        out["mass"].append(0.5 * (lo + hi))
        values, flags, ok, lam = _united_bin(parsed, idx)
        for k, v in zip(("per_pot_per_eps2", "stat_err", "syst_err", "bkg_sub_err"), values,
                        strict=True):  # fmt: skip
            out[k].append(v if np.isfinite(v) else None)
        out["flags"].append(flags)
        out["channels"].append(ok)
        for n in names:
            weights[n].append(lam[n])
    out["bin_edges"] = [filled[0][0]] + [b[1] for b in filled]
    out["weights"] = weights
    return out


def channel_weights(combined: dict[str, Any], channel: str, m: np.ndarray) -> np.ndarray:
    """The share λ of ``channel`` (``combined["weights"]``, :func:`combine_channels`) in the
    combined bin holding each mass ``m``; 1 outside the combined bins (a pair there is in
    no combination).

    Example:
        >>> c = {"bin_edges": [0.1, 0.2, 0.3], "weights": {"ee": [1.0, 0.25]}}
        >>> channel_weights(c, "ee", np.array([0.15, 0.25, 0.5])).tolist()
        [1.0, 0.25, 1.0]
    """
    edges = np.asarray(combined["bin_edges"], float)
    lam = np.asarray(combined["weights"][channel], float)
    m = np.asarray(m, float)
    i = np.searchsorted(edges, m, side="right") - 1
    inside = (i >= 0) & (i < lam.size)
    return np.where(inside, lam[np.clip(i, 0, lam.size - 1)], 1.0)
