"""Tiny synthetic ntuples with known content for the selection tests.

They follow the mock-ntuple schema of DEVELOPERS.md ("Mock ntuple"): TTree ``events`` with
``event``, ``nmuon``, jagged ``muon_px/py/pz/E/charge/parent`` and ``truth_channel``.
The expected counts below are worked out by hand from the event list.
"""

from __future__ import annotations

import awkward as ak
import numpy as np
import uproot

M_MU = 0.1056583755


def muon(p: float, theta: float, phi: float, q: int, parent: int = 211) -> dict:
    """A muon of momentum ``p`` (GeV) at polar angle ``theta`` and azimuth ``phi``."""
    px = p * np.sin(theta) * np.cos(phi)
    py = p * np.sin(theta) * np.sin(phi)
    pz = p * np.cos(theta)
    return {
        "px": px,
        "py": py,
        "pz": pz,
        "E": float(np.hypot(p, M_MU)),
        "charge": q,
        "parent": parent,
    }


def pair_with_mass(m: float, p: float, q1: int, q2: int, parent: int = 113) -> list[dict]:
    """Two muons of total momentum ``p`` along z, back to back in the rest frame (mass ``m``)."""
    e_star = m / 2
    k = np.sqrt(e_star**2 - M_MU**2)
    gamma = np.hypot(p, m) / m
    beta = p / np.hypot(p, m)
    out = []
    for sign, q in ((1, q1), (-1, q2)):
        # decay axis along x in the rest frame: boost along z
        px, pz_star = sign * k, 0.0
        E = gamma * (e_star + beta * pz_star)
        pz = gamma * (pz_star + beta * e_star)
        out.append({"px": px, "py": 0.0, "pz": pz, "E": E, "charge": q, "parent": parent})
    return out


# (muons, truth_channel): a pattern repeated `repeat` times
def pattern() -> list[tuple[list[dict], int]]:
    return [
        # A: one OS pair, m = 0.5 → OS
        (pair_with_mass(0.5, 20.0, 1, -1), 6),
        # B: OS pair m = 0.78 plus a soft-ish extra + muon (E = 10 GeV, passes): pairs
        #    (+,-) from the ρ-like pair, (+extra, +), (+extra, -) → masses checked in tests
        ([*pair_with_mass(0.78, 30.0, 1, -1), muon(10.0, 0.05, 1.0, 1)], 4),
        # C: one −− pair m = 0.6
        (pair_with_mass(0.6, 25.0, -1, -1, parent=211), 0),
        # D: second muon below the 3 GeV energy cut → no pair
        ([muon(20.0, 0.05, 0.0, 1), muon(2.0, 0.05, 2.0, -1)], 0),
        # E: η → μμ, truth tagged, m = m_η
        (pair_with_mass(0.547862, 20.0, 1, -1, parent=221), 2),
        # F: a NaN momentum: the NaN muon is dropped and counted, no pair left
        ([muon(20.0, 0.05, 0.0, 1), {**muon(20.0, 0.05, 1.0, -1), "px": np.nan}], 0),
        # G: a ++ pair at m = 1.5 (outside the 0.2113..1.1 window)
        (pair_with_mass(1.5, 30.0, 1, 1, parent=211), 0),
    ]


def write_mock(
    path, repeat: int = 10, *, event_offset: int = 0, with_truth: bool = True, tagged: bool = True
) -> dict:
    """Write a synthetic mock ntuple (``tagged=False``: without the ``truth_channel`` branch,
    as data); returns the events as python lists."""
    evs = pattern() * repeat
    cols = {k: [] for k in ("px", "py", "pz", "E", "charge", "parent")}
    for muons, _ in evs:
        for k in cols:  # noqa: PLC0206
            cols[k].append([mu[k] for mu in muons])
    muons = ak.zip(
        {
            "px": ak.values_astype(ak.Array(cols["px"]), np.float32),
            "py": ak.values_astype(ak.Array(cols["py"]), np.float32),
            "pz": ak.values_astype(ak.Array(cols["pz"]), np.float32),
            "E": ak.values_astype(ak.Array(cols["E"]), np.float32),
            "charge": ak.values_astype(ak.Array(cols["charge"]), np.int32),
            "parent": ak.values_astype(ak.Array(cols["parent"]), np.int32),
        }
    )
    n = len(evs)
    data = {
        "event": np.arange(event_offset, event_offset + n, dtype=np.int64),
        "muon": muons,
        "truth_channel": np.array([c for _, c in evs], dtype=np.int32),
    }
    if not tagged:
        del data["truth_channel"]
    with uproot.recreate(path) as f:
        # mktree: a TTree (assigning a dict would write an RNTuple in uproot ≥ 5.7)
        f.mktree(
            "events", {k: v.type if isinstance(v, ak.Array) else v.dtype for k, v in data.items()}
        )
        f["events"].extend(data)
        if with_truth:
            truth = {
                "channel": np.array([6, 4], dtype=np.int32),
                "m": np.array([0.5, 0.78]),
                "m_true": np.array([0.5, 0.78]),
            }
            f.mktree("truth", {k: v.dtype for k, v in truth.items()})
            f["truth"].extend(truth)
    return {"n_events": n}


# Expected counts for write_mock(repeat) with the default selection
# (E ≥ 3 GeV, 0.2113 ≤ m < 1.1, truth η→μμ removal): per pattern
#   A: 1 OS;  B: 1 OS (ρ-like) + 1 OS and 1 ++ with the extra muon if in the window;
#   C: 1 −−;  E: removed (OS);  G: outside.
def write_effmap(path, values=None, m_edges=None, pt_edges=None) -> None:
    """An efficiency map TH2D ``efficiency`` (x = mass, y = pT)."""
    import hist

    m_edges = np.linspace(0.0, 2.0, 21) if m_edges is None else m_edges
    pt_edges = np.linspace(0.0, 5.0, 11) if pt_edges is None else pt_edges
    h = hist.Hist(
        hist.axis.Variable(m_edges), hist.axis.Variable(pt_edges), storage=hist.storage.Double()
    )
    vals = np.full((len(m_edges) - 1, len(pt_edges) - 1), 0.5) if values is None else values
    h.view()[...] = vals
    with uproot.recreate(path) as f:
        f["efficiency"] = h
