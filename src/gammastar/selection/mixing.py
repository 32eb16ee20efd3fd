"""Mixed-event pairs (``background.r_factor: mixed``): the leptons of a chunk's pool events
paired with those of the next events, through the pair cuts, and their mass histograms; they
measure the like-sign factor R (:func:`gammastar.corrections.background.r_factor_mixed`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import hist

    from gammastar.selection.cuts import Cuts
    from gammastar.selection.pairhists import HistAxes


MIXED_COLUMNS = ("_mix_m", "_mix_pT", "_mix_charge")
"""Extra :func:`~gammastar.selection.chunk.select_chunk` outputs with ``Cuts.mix_depth``: mass, pT and summed charge of
the mixed-event pairs that pass the pair cuts (not rows of ``pairs.parquet``)."""

MIX_WEIGHT_QUANTUM = 2.0**-12
"""Mixed pairs are weighted with ε(m, pT) rounded to this quantum (2.4e-4), so that the sums
of the weights and of their squares (multiples of 2^-24) are exact below 2^29 pairs, hence the
same in any order, on every executor."""


def _mixed_pairs(leptons: Any, cuts: Cuts) -> dict[str, np.ndarray]:
    """Mixed-event pairs: the selected leptons of each pool event with those of the next
    1 … ``cuts.mix_depth`` pool events of the chunk, through the pair cuts (mass, pT,
    rapidity). Uncorrelated by construction: they measure R (:func:`~gammastar.corrections.background.
    r_factor_mixed`). Pool ``like_sign``: events with a like-sign lepton pair, whose leptons
    are (nearly) all combinatorial, so that the mixed pairs have the single-lepton kinematics
    of the background, not of the signal; ``all``: every event with a selected lepton."""
    import awkward as ak

    if cuts.mix_pool == "like_sign":
        n_plus = ak.sum(leptons.charge > 0, axis=1)
        n_minus = ak.sum(leptons.charge < 0, axis=1)
        lep = leptons[(n_plus >= 2) | (n_minus >= 2)]
    else:
        lep = leptons[ak.num(leptons) > 0]
    ms, pts, qs = [], [], []
    for d in range(1, cuts.mix_depth + 1):
        if len(lep) <= d:
            break
        pairs = ak.cartesian({"a": lep[:-d], "b": lep[d:]}, axis=1)
        p = ak.flatten(pairs.a + pairs.b)
        m = np.asarray(p.mass, dtype=np.float64)
        pt = np.asarray(p.pt, dtype=np.float64)
        keep = (m >= cuts.mass_min) & (m < cuts.mass_max)
        if cuts.pair_pt_max is not None:
            keep &= pt < cuts.pair_pt_max
        if cuts.rapidity_min is not None or cuts.rapidity_max is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                y = np.asarray(p.rapidity, dtype=np.float64)
            if cuts.rapidity_min is not None:
                keep &= y >= cuts.rapidity_min
            if cuts.rapidity_max is not None:
                keep &= y < cuts.rapidity_max
        q = np.asarray(ak.flatten(pairs.a.charge + pairs.b.charge)).astype(np.int8)
        ms.append(m[keep])
        pts.append(pt[keep])
        qs.append(q[keep])
    return {
        "_mix_m": np.concatenate(ms) if ms else np.array([], dtype=np.float64),
        "_mix_pT": np.concatenate(pts) if pts else np.array([], dtype=np.float64),
        "_mix_charge": np.concatenate(qs) if qs else np.array([], dtype=np.int8),
    }


def mixed_histograms(axes: HistAxes, mixed: Mapping[str, np.ndarray]) -> dict[str, hist.Hist]:
    """``mix_os_m``, ``mix_pp_m``, ``mix_mm_m``: mixed-event pairs on the mass axis, weighted
    with ``_mix_w`` (ε(m, pT) in multiples of :data:`MIX_WEIGHT_QUANTUM`: the pair efficiency
    real pairs had; exact sums in any order) or counted."""
    import hist

    m, q = np.asarray(mixed["_mix_m"]), np.asarray(mixed["_mix_charge"])
    w = np.asarray(mixed["_mix_w"]) if "_mix_w" in mixed else np.ones(len(m))
    out = {}
    for name, sel in (("os", q == 0), ("pp", q == 2), ("mm", q == -2)):
        h = hist.Hist(axes.mass(), storage=hist.storage.Weight())
        h.fill(m=m[sel], weight=w[sel])
        out[f"mix_{name}_m"] = h
    return out
