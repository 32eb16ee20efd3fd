"""The pure chunk-level steps of the dilepton selection (arrays in, arrays out).

What the chunk processor (:mod:`gammastar.selection.executors.processor`) runs on each chunk and the driver
(:mod:`gammastar.selection.stage`) runs on the whole table: the lepton four-vectors of any layout
(:func:`make_leptons`) and the cuts and pairing (:func:`select_chunk`). The cuts are
:mod:`gammastar.selection.cuts`, the mixed-event pairs :mod:`gammastar.selection.mixing`, the
histograms :mod:`gammastar.selection.pairhists`, the per-pair weights
:mod:`gammastar.selection.weights.pairs`. It imports neither the processor nor the driver.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from gammastar.cocktail_channels import Channel
from gammastar.core.imports import import_vector
from gammastar.corrections.polarisation.angles import helicity_angles
from gammastar.io import LAYOUTS, get_layout
from gammastar.physics.constants import M_MU
from gammastar.selection.cuts import Cuts
from gammastar.selection.mixing import _mixed_pairs

if TYPE_CHECKING:
    import awkward as ak

PAIR_COLUMNS = (
    "event", "m", "pT", "E", "y", "pz", "charge", "channel", "eff", "cos_theta_hel", "phi_hel",
)  # fmt: skip
"""Columns the processor returns per chunk (``qT`` and the weights are added later)."""

CUTFLOW_KEYS = (
    "events",
    "leptons",
    "leptons_nonfinite",
    "events_nonfinite",
    "leptons_charge",
    "leptons_energy",
    "leptons_theta",
    "events_2leptons",
    "pairs",
    "pairs_mass",
    "pairs_pt",
    "pairs_rapidity",
    "pairs_charge_class",
    "pairs_eta_mumu_removed",
    "pairs_outside_map",
    "os",
    "pp",
    "mm",
)

ETA_PDGID = 221


# --------------------------------------------------------------------------- four-vectors
def make_leptons(
    columns: Mapping[str, Any], layout: str, lepton_mass: float = M_MU
) -> ak.Array:
    """Per-event lepton four-vectors (``vector`` Momentum4D with ``charge``): the one path.

    Arguments:
        columns: package column → (awkward/numpy) array, as mapped by :mod:`gammastar.io`.
        layout: a registered layout (:data:`gammastar.io.LAYOUTS`): its ``leptons`` builds
            the coordinates.
        lepton_mass: used by layouts without a mass or energy column.

    Returns:
        A jagged array (events × leptons) of Momentum4D records with fields of the layout's
        coordinates, ``charge`` and, when available, ``parent``.

    Example:
        >>> import awkward as ak
        >>> lep = make_leptons({"E1": [5.0], "px1": [0.], "py1": [0.], "pz1": [3.], "Q1": [1],
        ...                     "E2": [5.0], "px2": [0.], "py2": [0.], "pz2": [-3.], "Q2": [-1]},
        ...                    "flat_pairs")
        >>> ak.num(lep).tolist(), float(lep.mass[0, 0])
        ([2], 4.0)
    """
    import awkward as ak

    vector = import_vector()
    # The momenta in float64 whatever the file stores: a pair's mass is the difference
    # m² = E² − |p|² of two sums, whose float32 roundings (u ≈ 6e-8) grow by (E/m)²: ~0.1 of
    # m² for a 0.3 GeV pair of two 200 GeV muons, so that the mass, and which side of a cut
    # it falls on, would depend on the CPU's float32 kernels (cos, sinh, the sums).
    fields = {
        k: ak.values_astype(v, np.float64) if k not in ("charge", "parent") else v
        for k, v in _layout_fields(columns, layout, lepton_mass).items()
    }
    return vector.zip(fields)


def _layout_fields(
    columns: Mapping[str, Any], layout: str, lepton_mass: float
) -> dict[str, Any]:
    """The leptons of ``columns`` as the layout gives them (:attr:`gammastar.io.Layout.leptons`:
    its coordinates, as stored), with the ``charge`` and, for a per-lepton layout, the
    ``parent`` columns: what :func:`make_leptons` and :func:`_flat_leptons` build on."""
    import awkward as ak

    lay = get_layout(layout)

    def col(name: str) -> ak.Array | None:
        if name not in columns:
            return None
        return ak.Array(columns[name]) if not isinstance(columns[name], ak.Array) else columns[name]

    fields = dict(lay.leptons(col, lepton_mass))
    if "charge" not in fields:
        fields["charge"] = col("charge")
    if "parent" in columns and not lay.paired:
        fields["parent"] = col("parent")
    return fields


# --------------------------------------------------------------------------- chunk selection
def _records(fields: Mapping[str, np.ndarray]) -> ak.Array:
    """Flat (one row per lepton or pair) ``vector`` Momentum4D records of numpy columns named
    as :func:`make_leptons` names them (``x``, ``y``, ``z``, ``t``; ``rho``, ``phi``, ...)."""
    import awkward as ak

    vector = import_vector()
    return ak.zip(dict(fields), with_name="Momentum4D", behavior=vector.backends.awkward.behavior)


def _flat_leptons(
    columns: Mapping[str, Any], layout: str, lepton_mass: float = M_MU
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """:func:`make_leptons`' leptons as flat numpy columns (its field names and float64
    coordinates) and the leptons per entry: the same values, without building the per-event
    lists of records."""
    import awkward as ak

    vector = import_vector()
    fields = _layout_fields(columns, layout, lepton_mass)
    counts = np.asarray(ak.num(fields["charge"]), dtype=np.int64)
    flat = {}
    for k, v in fields.items():
        a = ak.to_numpy(ak.flatten(v))
        flat[k] = a if k in ("charge", "parent") else a.astype(np.float64)
    # vector's names for the coordinates (px → x, pt → rho, ...), as make_leptons has them
    rec = vector.zip({k: ak.Array(v) for k, v in flat.items()})
    return {k: ak.to_numpy(rec[k]) for k in rec.fields}, counts


def _cut_leptons(
    cols: Mapping[str, np.ndarray], counts: np.ndarray, cuts: Cuts, flow: dict[str, int]
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The lepton cuts in order (finite momenta, |charge| = 1, energy, polar angle) of the
    flat leptons ``cols`` (``counts`` per event), each step's count in ``flow``: ``(the kept
    leptons' columns, flat, in event order; kept per event)``.

    The cuts run on the flat leptons (a numpy array per coordinate, no per-event lists): the
    same values as the cuts on the jagged array, lepton by lepton, at a fraction of its cost;
    each step's energy and angle only of the leptons still kept."""
    flow["leptons"] = int(counts.sum())
    coords = [v for k, v in cols.items() if k not in ("charge", "parent")]
    finite = np.isfinite(coords[0])
    for v in coords[1:]:
        finite = finite & np.isfinite(v)
    bad = ~finite
    flow["leptons_nonfinite"] = int(bad.sum())
    n_leptons = bad.size
    owner = None  # each lepton's event, made only where a count needs it

    def owners() -> np.ndarray:
        nonlocal owner
        if owner is None:
            owner = np.repeat(np.arange(len(counts)), counts)
        return owner

    flow["events_nonfinite"] = (
        int(np.unique(owners()[bad]).size) if flow["leptons_nonfinite"] else 0
    )
    idx = np.flatnonzero(finite & (np.abs(cols["charge"]) == 1))
    flow["leptons_charge"] = int(idx.size)
    if all(k in cols for k in "xyzt"):  # Cartesian: vector's E of these records is t itself
        energy = cols["t"][idx]
    else:
        energy = np.asarray(_records(_take(cols, idx)).E)
    idx = idx[cuts.lepton_min_energy <= energy]
    flow["leptons_energy"] = int(idx.size)
    if cuts.lepton_theta_min > 0.0 or cuts.lepton_theta_max < np.pi:
        theta = np.asarray(_records(_take(cols, idx)).theta)
        idx = idx[(theta >= cuts.lepton_theta_min) & (theta <= cuts.lepton_theta_max)]
    # else every lepton passes: the polar angle of a finite momentum lies in [0, π]
    flow["leptons_theta"] = int(idx.size)
    if idx.size == n_leptons:  # every lepton kept: the columns and counts as they are
        return dict(cols), counts
    return _take(cols, idx), np.bincount(owners()[idx], minlength=len(counts))


def _take(cols: Mapping[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
    # ndarray.take of the rows (integers in range: mode "clip" skips the bounds check): the
    # values of v[idx], in less time
    return {k: np.asarray(v).take(idx, mode="clip") for k, v in cols.items()}


def _event_columns(
    columns: Mapping[str, Any], n_events: int, entry_offset: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per event: its id (the ``event`` branch, else the entry number) and its truth channel
    (``truth_channel``, else −1)."""
    if "event" in columns:
        event_id = np.asarray(columns["event"]).astype(np.int64)
    else:
        event_id = np.arange(entry_offset, entry_offset + n_events, dtype=np.int64)
    channel = (
        np.asarray(columns["truth_channel"]).astype(np.int8)
        if "truth_channel" in columns
        else np.full(n_events, -1, dtype=np.int8)
    )
    return event_id, channel


@dataclass
class _Pairs:
    """Every lepton pair of a chunk's events (``ak.combinations`` order): the two leptons
    (flat, one row per pair) and the pair columns."""

    a: Any
    b: Any
    m: np.ndarray
    pt: np.ndarray
    energy: np.ndarray
    pz: np.ndarray
    y: np.ndarray
    charge: np.ndarray
    event: np.ndarray
    channel: np.ndarray
    qa: np.ndarray
    """The first lepton's charge."""
    leptons: Mapping[str, np.ndarray]
    """The flat lepton columns the pairs index."""
    ia: np.ndarray
    ib: np.ndarray
    """Each pair's leptons (rows of ``leptons``)."""


def _pair_rows(counts: np.ndarray, npairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows (first, second lepton) of every pair i < j of each event's leptons (``counts``
    per event, stored one event after the other), in ``ak.combinations`` order: event by
    event, (0, 1), (0, 2), …, (1, 2), …

    Example:
        >>> c = np.array([3, 1, 2])
        >>> [r.tolist() for r in _pair_rows(c, c * (c - 1) // 2)]
        [[0, 0, 1, 4], [1, 2, 2, 5]]
    """
    first = np.cumsum(counts) - counts
    # the distinct lepton counts ≥ 2 (np.unique would sort every event's count)
    sizes = np.flatnonzero(np.bincount(counts))
    sizes = sizes[sizes >= 2]
    if sizes.size == 1 and sizes[0] == 2:  # one pair per event that has one (dileptons):
        ia = first[counts == 2]  # the pairs are those events' in order
        return ia, ia + 1
    ia = np.empty(int(npairs.sum()), dtype=np.int64)
    ib = np.empty_like(ia)
    pair0 = np.cumsum(npairs) - npairs
    for k in sizes:
        ev = np.flatnonzero(counts == k)
        i, j = np.triu_indices(int(k), 1)  # row-major: the combinations' order
        at = pair0[ev][:, None] + np.arange(i.size)
        ia[at] = first[ev][:, None] + i
        ib[at] = first[ev][:, None] + j
    return ia, ib


def _make_pairs(
    leptons: Mapping[str, np.ndarray],
    counts: np.ndarray,
    event_id: np.ndarray,
    channel: np.ndarray,
    flow: dict[str, int],
) -> _Pairs:
    """The pairs of the events with ≥ 2 leptons (counts in ``flow``) of the flat lepton
    columns ``leptons`` (``counts`` per event): the pairs of :func:`_pair_rows`, the
    four-vectors added pair by pair on flat arrays (the sums of the jagged pairs, without
    their per-event lists)."""
    flow["events_2leptons"] = int(np.count_nonzero(counts >= 2))
    npairs = counts * (counts - 1) // 2
    flow["pairs"] = int(npairs.sum())
    ia, ib = _pair_rows(counts, npairs)
    if counts.size and bool((counts == 2).all()):
        # every event holds two leptons (a dilepton ntuple): the pairs' leptons are the even
        # and the odd rows, views of the columns (the values of the gathers, without them)
        pa = {k: v[0::2] for k, v in leptons.items()}
        pb = {k: v[1::2] for k, v in leptons.items()}
    else:
        pa, pb = _take(leptons, ia), _take(leptons, ib)
    if all(k in leptons for k in "xyzt"):  # Cartesian: vector's sum is the components' sums
        sums = {k: pa[k] + pb[k] for k in "xyzt"}
        pflat = _records(sums)
        # E and pz are coordinates here: the sums themselves (what vector returns for them)
        energy, pz = sums["t"], sums["z"]
    else:
        pflat = _records(pa) + _records(pb)
        energy = np.asarray(pflat.E, dtype=np.float64)
        pz = np.asarray(pflat.pz, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.asarray(pflat.rapidity, dtype=np.float64)
    return _Pairs(
        a=pa,
        b=pb,
        m=np.asarray(pflat.mass, dtype=np.float64),
        pt=np.asarray(pflat.pt, dtype=np.float64),
        energy=energy,
        pz=pz,
        y=y,
        charge=(pa["charge"] + pb["charge"]).astype(np.int8),
        event=np.repeat(event_id, npairs),
        channel=np.repeat(channel, npairs),
        qa=np.ascontiguousarray(pa["charge"]),  # gathered from in blocks: contiguous
        leptons=leptons,
        ia=ia,
        ib=ib,
    )


def _pair_cuts(
    p: _Pairs, cuts: Cuts, columns: Mapping[str, Any], flow: dict[str, int]
) -> np.ndarray:
    """The pairs kept by the mass, pT, rapidity and charge-class cuts and the truth η → μμ
    removal (counts in ``flow``)."""

    keep = (p.m >= cuts.mass_min) & (p.m < cuts.mass_max)
    flow["pairs_mass"] = int(keep.sum())
    if cuts.pair_pt_max is not None:
        keep &= p.pt < cuts.pair_pt_max
    flow["pairs_pt"] = int(keep.sum())
    if cuts.rapidity_min is not None:
        keep &= p.y >= cuts.rapidity_min
    if cuts.rapidity_max is not None:
        keep &= p.y < cuts.rapidity_max
    flow["pairs_rapidity"] = int(keep.sum())
    classes = {"os": p.charge == 0, "pp": p.charge == 2, "mm": p.charge == -2}
    cls_ok = np.zeros(len(p.m), dtype=bool)
    for name in cuts.pair_charges:
        cls_ok |= classes[name]
    keep &= cls_ok
    flow["pairs_charge_class"] = int(keep.sum())
    if cuts.remove_eta_mumu_truth and "truth_channel" in columns:

        eta = (p.channel == int(Channel.ETA_MUMU)) & (p.charge == 0)
        if "parent" in columns:
            both = (p.a["parent"] == ETA_PDGID) & (p.b["parent"] == ETA_PDGID)
            eta &= both
        flow["pairs_eta_mumu_removed"] = int((keep & eta).sum())
        keep &= ~eta
    flow["os"] = int((keep & (p.charge == 0)).sum())
    flow["pp"] = int((keep & (p.charge == 2)).sum())
    flow["mm"] = int((keep & (p.charge == -2)).sum())
    return keep


def select_chunk(
    columns: Mapping[str, Any],
    layout: str,
    cuts: Cuts,
    *,
    lepton_mass: float = M_MU,
    entry_offset: int = 0,
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Select lepton pairs in one chunk.

    Lepton cuts (finite momenta, |charge| = 1, energy, polar angle) come before pairing;
    pairs (``ak.combinations``) are then cut on mass, pT and rapidity and split by charge.

    Arguments:
        columns: package column → array for this chunk (optional ``event``,
            ``truth_channel``, ``parent``).
        layout: the input layout.
        cuts: the selection.
        lepton_mass: for layouts without a mass.
        entry_offset: first entry of the chunk (event ids when there is no ``event`` branch).

    Returns:
        ``(pairs, cutflow)``: ``pairs`` maps :data:`PAIR_COLUMNS` to numpy arrays;
        ``cutflow`` counts events, leptons and pairs after each step.
    """
    import awkward as ak

    cols, counts = _flat_leptons(columns, layout, lepton_mass)
    n_events = len(counts)
    flow = dict.fromkeys(CUTFLOW_KEYS, 0)
    flow["events"] = n_events
    flat, counts = _cut_leptons(cols, counts, cuts, flow)
    event_id, channel = _event_columns(columns, n_events, entry_offset)
    mixed = _mixed_pairs(ak.unflatten(_records(flat), counts), cuts) if cuts.mix_depth else None
    p = _make_pairs(flat, counts, event_id, channel, flow)
    keep = _pair_cuts(p, cuts, columns, flow)
    rows = np.flatnonzero(keep)  # the kept pairs' rows, found once for every column
    cos_hel, phi_hel = _helicity_columns(p, rows)
    if rows.size == keep.size:  # every pair kept: the columns themselves, not copies

        def sel(a: np.ndarray) -> np.ndarray:
            return a

    else:  # the rows by take (in range: mode "clip"), half the time of a boolean mask

        def sel(a: np.ndarray) -> np.ndarray:
            return a.take(rows, mode="clip")

    out = {
        "event": sel(p.event),
        "m": sel(p.m),
        "pT": sel(p.pt),
        "E": sel(p.energy),
        "y": sel(p.y),
        "pz": sel(p.pz),
        "charge": sel(p.charge),
        "channel": sel(p.channel),
        "cos_theta_hel": cos_hel,
        "phi_hel": phi_hel,
    }
    if mixed is not None:
        out.update(mixed)
    return out, flow


def _helicity_columns(p: _Pairs, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cos θ*, φ* (helicity frame,
    :func:`gammastar.corrections.polarisation.angles.helicity_angles`) of the pairs ``rows``
    (ascending): of the positive lepton for OS pairs, of the first for SS pairs.

    In blocks of :data:`_HELICITY_BLOCK` pairs (the gathers and the angles' temporaries of a
    block stay in the CPU cache, without the page faults of fresh whole-chunk arrays): every
    step is element by element, so the numbers are those of one call on all the pairs."""
    cos_t = np.empty(rows.size, dtype=np.float64)
    phi = np.empty(rows.size, dtype=np.float64)
    lep = p.leptons
    cartesian = all(k in lep for k in "xyzt")

    def p4(idx: np.ndarray) -> np.ndarray:
        if cartesian:  # vector's (px, py, pz, E) are the columns
            return np.stack([lep[k].take(idx, mode="clip") for k in "xyzt"])
        v = _records(_take(lep, idx))
        return np.stack([np.asarray(getattr(v, k), dtype=np.float64)
                         for k in ("px", "py", "pz", "E")])  # fmt: skip

    # other coordinates: vector's conversion costs a dispatch per call, one block
    block = _HELICITY_BLOCK if cartesian else max(rows.size, 1)
    for b0 in range(0, rows.size, block):
        r = rows[b0 : b0 + block]
        ia, ib = p.ia.take(r, mode="clip"), p.ib.take(r, mode="clip")  # rows of the pairs
        # OS pairs: the positive lepton (an SS pair has no distinguished one)
        swap = p.qa.take(r, mode="clip") < 0
        first, second = np.where(swap, ib, ia), np.where(swap, ia, ib)
        c, ph = helicity_angles(p4(first), p4(second))
        cos_t[b0 : b0 + r.size] = c
        phi[b0 : b0 + r.size] = ph
    return cos_t, phi


_HELICITY_BLOCK = 16384
"""Pairs per block of :func:`_helicity_columns`."""


_LOADED: list[bool] = []


def load_chunk_code() -> None:
    """Load what every chunk uses, once per process: pandas, pyarrow's Parquet writer and
    ``vector`` (with what it imports), and one two-muon event selected in each registered
    layout with every cut switched on (``vector`` imports the module of each kinematic
    function on its first use).

    A process that runs chunks calls it before its first one (the Dask workers that preload
    :mod:`gammastar.selection.executors.dask_cluster`, the futures executor's workers,
    :func:`~gammastar.selection.stage.select` with the iterative executor), which then starts
    ready: about 0.4 s later otherwise, in every
    worker. It is not done when this module is imported: a driver that only sends the
    chunks to workers never loads these libraries (over a second of its start-up).
    """
    if _LOADED:
        return
    import awkward
    import pandas  # noqa: F401  (pyarrow imports it on its first array conversion)
    import pyarrow.parquet  # noqa: F401

    vector = import_vector()

    mu = (0.3, -0.2, 5.0, 5.02), (-0.25, 0.3, 4.0, 4.03)
    p4 = vector.zip(
        {k: awkward.Array([[m[i] for m in mu]]) for i, k in enumerate(("px", "py", "pz", "E"))}
    )
    charge = awkward.Array([[1, -1]])
    cuts = Cuts(1.0, 0.01, 3.0, 0.1, 2.0, 5.0, -5.0, 10.0)
    for name, lay in LAYOUTS.items():
        select_chunk(lay.from_vectors(p4, charge), name, cuts)
    _LOADED.append(True)
