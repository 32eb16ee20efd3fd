"""The both-channels run's combined keys of ``yields.json`` (``input.lepton: [mu, e]``).

``_combined_mcp`` (per χ mass the channels whose data reach 2m_χ), ``_combined_uncertainties``
(each channel's nuisances through the inverse-variance mean, plus ``universality``) and
``_seam_extrapolation`` (the fiducial channel's extrapolation at the seam).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _seam_extrapolation(per: dict[str, Any]) -> dict[str, Any] | None:
    """The top-level ``extrapolation`` of a both-channels run: the fiducial channel's
    (``flavours.<channel>.extrapolation``, kept there too) with ``channel`` and ``seam`` (its
    lowest mass bin edge, GeV: where its yields start), when one channel is fiducial and
    another full phase space; else ``None`` (docs/howto/both-channels.md).

    Below the seam the run's flow and yields are the full-phase-space channel's alone;
    at and above it the reach samples the flow inside the fiducial region and the fitted
    model outside (:class:`gammastar.yields.extrapolation.samplers.ExtrapolatedSampler` ``seam``).
    """
    fid = [c for c in per if per[c]["inp"].phase_space == "fiducial"]
    full = [c for c in per if per[c]["inp"].phase_space == "full"]
    ex = per[fid[0]]["doc"].get("extrapolation") if len(fid) == 1 and full else None
    if ex is None:
        return None
    return {**ex, "channel": fid[0], "seam": float(ex["bin_edges"][0])}


def _combined_mcp(per: dict[str, Any], combine: Any) -> dict[str, Any]:
    """``mcp`` of a both-channels run: per χ mass the channels whose data start at or below
    2m_χ (their Eq. 8 sums cover the same γ* masses), inverse-variance combined where two
    do (``syst_err`` half their difference), one alone elsewhere (ee for light χ)."""
    chans = list(per)
    docs = {c: per[c]["doc"]["mcp"] for c in chans}
    lows = {c: float(per[c]["doc"]["aprime"]["bin_edges"][0]) for c in chans}
    out: dict[str, Any] = {k: [] for k in ("per_pot_per_q2", "stat_err", "syst_err", "flags",
                                           "channels")}  # fmt: skip
    mass = [float(v) for v in docs[chans[0]]["mass"]]
    for i, mc in enumerate(mass):
        ok = [
            c for c in chans
            if lows[c] <= 2 * mc + 1e-9 and docs[c]["per_pot_per_q2"][i] is not None
            and docs[c]["stat_err"][i] not in (None, 0.0)
        ]  # fmt: skip
        if not ok:  # no channel reaches 2m_χ: the lowest-reaching one's (flagged) value
            ok = [min(chans, key=lambda c: lows[c])]
        if len(ok) == 2:
            y, s, d, _ = (float(v[0]) for v in combine(
                *(np.array([docs[c][k][i]], float) for c in ok for k in ("per_pot_per_q2",
                                                                         "stat_err"))))  # fmt: skip
        else:
            y, s, d = docs[ok[0]]["per_pot_per_q2"][i], docs[ok[0]]["stat_err"][i], 0.0
        out["per_pot_per_q2"].append(y)
        out["stat_err"].append(s)
        out["syst_err"].append(d)
        out["flags"].append(sorted({f for c in ok for f in docs[c]["flags"][i]}))
        out["channels"].append(ok)
    return {"mass": mass, **out, "source": "combined"}


def _combined_uncertainties(per: dict[str, Any], comb: dict[str, Any]) -> dict[str, Any]:
    """``uncertainties`` of the combined A′ yield: each named nuisance's relative size per
    combined bin propagated linearly through the mean (Σ_ℓ λ_ℓ y_ℓ r_ℓ / y; a source of one
    channel only scales its share), ``data_stat`` the combination's own, plus
    ``universality``: the channels' disagreement ``syst_err``/y. The per-channel blocks stay
    in ``flavours.<channel>.uncertainties``."""
    chans = list(per)
    mass = np.asarray(comb["mass"], float)
    y = np.asarray([np.nan if v is None else v for v in comb["per_pot_per_eps2"]], float)
    lo, hi = np.asarray(comb["bin_edges"][:-1]), np.asarray(comb["bin_edges"][1:])
    names: dict[str, dict[str, Any]] = {}
    for c in chans:
        for n, blk in (per[c]["doc"].get("uncertainties") or {}).get("nuisances", {}).items():
            names.setdefault(n, blk)
    rel_sum = {n: np.zeros(mass.size) for n in names}
    for c in chans:
        blk = per[c]["doc"]["aprime"]
        ce = np.asarray(blk["bin_edges"], float)
        yc = np.asarray([np.nan if v is None else v for v in blk["per_pot_per_eps2"]], float)
        lam = np.asarray(comb["weights"][c], float)
        unc = (per[c]["doc"].get("uncertainties") or {}).get("nuisances", {})
        for k in range(mass.size):
            j = np.flatnonzero((np.abs(ce[:-1] - lo[k]) < 1e-9) & (np.abs(ce[1:] - hi[k]) < 1e-9))
            if not j.size or lam[k] == 0:
                continue
            for n in names:
                r = (unc.get(n) or {}).get("rel")
                rv = r[j[0]] if r is not None and r[j[0]] is not None else 0.0
                rel_sum[n][k] += lam[k] * yc[j[0]] * rv
    out: dict[str, Any] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for n, blk in names.items():
            rel = np.abs(rel_sum[n] / y)
            if n == "data_stat":
                rel = np.asarray([np.nan if v is None else v for v in comb["stat_err"]]) / np.abs(y)
            out[n] = {**{k: v for k, v in blk.items() if k not in ("up", "down", "rel")},
                      "up": _nan_list(rel), "down": _nan_list(-rel), "rel": _nan_list(rel)}  # fmt: skip
        syst = np.asarray([np.nan if v is None else v for v in comb["syst_err"]], float)
        rel = syst / np.abs(y)
    out["universality"] = {
        "kind": "normsys", "up": _nan_list(rel), "down": _nan_list(-rel), "rel": _nan_list(rel),
        "origin": "half the ee - mumu difference of the A′ yield where both channels measure "
        "a bin (yields.json aprime.syst_err)",
        "correlation": "one parameter shared by all channels and mass points",
    }  # fmt: skip
    not_included = {
        k: v for c in chans
        for k, v in ((per[c]["doc"].get("uncertainties") or {}).get("not_included") or {}).items()
    }  # fmt: skip
    return {"mass": mass.tolist(), "nuisances": out, "not_included": not_included,
            "combination": "each channel's nuisances propagated through the mean (linear)"}  # fmt: skip


def _nan_list(a: np.ndarray) -> list[float | None]:
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(a, float)]
