"""The pure chunk-level steps of the dilepton selection (arrays in, arrays out).

What the chunk processor (:mod:`gammastar.selection.processor`) runs on each chunk and the driver
(:mod:`gammastar.selection.stage`) runs on the whole table: the lepton four-vectors of any layout
(:func:`make_leptons`), the cuts and pairing (:func:`select_chunk`), mixed-event pairs, the
raw and unfolded histograms, and the one per-pair weight function (:func:`pair_weights`,
wrapped per chunk by :func:`weight_chunk`). It imports neither the processor nor the driver.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from gammastar.channels import Channel
from gammastar.corrections.background import conversion_template_from_config, ss_pair_weights
from gammastar.corrections.polarisation import helicity_angles
from gammastar.corrections.unfold import acceptance_weights, inverse_weights
from gammastar.io import get_layout
from gammastar.physics.constants import M_MU

if TYPE_CHECKING:
    import awkward as ak
    import hist

    from gammastar.config import AnalysisConfig

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


@dataclass(frozen=True)
class Cuts:
    """The selection cuts in plain numbers (picklable; built from ``SelectionConfig``)."""

    lepton_min_energy: float = 0.0
    lepton_theta_min: float = 0.0
    lepton_theta_max: float = np.pi
    mass_min: float = 0.0
    mass_max: float = np.inf
    pair_pt_max: float | None = None
    rapidity_min: float | None = None
    rapidity_max: float | None = None
    pair_charges: tuple[str, ...] = ("os", "pp", "mm")
    remove_eta_mumu_truth: bool = False
    mix_depth: int = 0
    """Mixed-event pairs (``background.r_factor: mixed``): each event's leptons with those of
    the next ``mix_depth`` events of the chunk; 0: none."""
    mix_pool: str = "like_sign"
    """Events whose leptons are mixed: ``like_sign`` (events with a like-sign lepton pair) or
    ``all`` (events with ≥ 1 selected lepton)."""

    @classmethod
    def from_config(cls, cfg: AnalysisConfig) -> Cuts:
        s = cfg.selection
        return cls(
            lepton_min_energy=s.lepton_min_energy,
            lepton_theta_min=s.lepton_theta_min,
            lepton_theta_max=s.lepton_theta_max,
            mass_min=s.mass_min,
            mass_max=s.mass_max,
            pair_pt_max=s.pair_pt_max,
            rapidity_min=s.rapidity_min,
            rapidity_max=s.rapidity_max,
            pair_charges=tuple(s.pair_charges),
            remove_eta_mumu_truth=cfg.background.remove_eta_mumu == "truth",
            mix_depth=cfg.background.mixing_depth if cfg.background.r_factor == "mixed" else 0,
            mix_pool=cfg.background.mixing_pool,
        )


EXECUTORS = ("iterative", "futures", "dask")
"""The executors the selection runs on (:mod:`gammastar.selection.processor`)."""


@dataclass(frozen=True)
class Execution:
    """How the selection processes its chunks (:func:`gammastar.selection.stage.select`,
    :func:`gammastar.selection.processor.run_processor`; ``gammastar select`` options of the
    same names)."""

    executor: str = "iterative"
    """``iterative`` (this process), ``futures`` (a process pool) or ``dask``."""
    scheduler: str | None = None
    """Dask scheduler address (``tcp://host:8786``); ``None`` starts a local
    ``distributed.LocalCluster`` with ``workers`` workers."""
    workers: int | None = None
    """Worker processes for ``futures`` / local ``dask`` (default 2)."""
    chunksize: int | None = None
    """Entries per chunk (``None``: ``input.step_size``; :func:`run_processor`: 500 000)."""
    dask_processes: bool = True
    """Local Dask cluster with worker processes (``False``: threads)."""
    shared_staging: bool = True
    """On the ``futures`` and ``dask`` executors each worker writes its chunks' parts of the
    pair dataset into a staging directory next to the outputs (``<output>/.gammastar-parts-*``,
    renamed into place as ``pairs.parquet/``), which needs a filesystem the workers share with
    the driver; a worker that does not see the directory sends the part's bytes through the
    scheduler for the driver to write. ``False``: always through the scheduler."""


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
    import vector


    lay = get_layout(layout)

    def col(name: str) -> ak.Array | None:
        if name not in columns:
            return None
        return ak.Array(columns[name]) if not isinstance(columns[name], ak.Array) else columns[name]

    # The momenta in float64 whatever the file stores: a pair's mass is the difference
    # m² = E² − |p|² of two sums, whose float32 roundings (u ≈ 6e-8) grow by (E/m)²: ~0.1 of
    # m² for a 0.3 GeV pair of two 200 GeV muons, so that the mass, and which side of a cut
    # it falls on, would depend on the CPU's float32 kernels (cos, sinh, the sums).
    fields = {
        k: ak.values_astype(v, np.float64) if k not in ("charge", "parent") else v
        for k, v in lay.leptons(col, lepton_mass).items()
    }
    if "charge" not in fields:
        fields["charge"] = col("charge")
    if "parent" in columns and not lay.paired:
        fields["parent"] = col("parent")
    return vector.zip(fields)


# --------------------------------------------------------------------------- chunk selection
def _records(fields: Mapping[str, np.ndarray]) -> ak.Array:
    """Flat (one row per lepton or pair) ``vector`` Momentum4D records of numpy columns named
    as :func:`make_leptons` names them (``x``, ``y``, ``z``, ``t``; ``rho``, ``phi``, ...)."""
    import awkward as ak
    import vector

    return ak.zip(dict(fields), with_name="Momentum4D", behavior=vector.backends.awkward.behavior)


def _flat_leptons(
    columns: Mapping[str, Any], layout: str, lepton_mass: float = M_MU
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """:func:`make_leptons`' leptons as flat numpy columns (its field names and float64
    coordinates) and the leptons per entry: the same values, without building the per-event
    lists of records."""
    import awkward as ak
    import vector

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
    finite = None
    for k, v in cols.items():
        if k not in ("charge", "parent"):
            ok = np.isfinite(v)
            finite = ok if finite is None else finite & ok
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
    return {k: v[idx] for k, v in cols.items()}


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
    pa, pb = _take(leptons, ia), _take(leptons, ib)
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
        qa=pa["charge"],
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
    cos_hel, phi_hel = _helicity_columns(p, keep)
    # every pair kept: the columns themselves (a mask would copy each of them)
    sel = slice(None) if keep.all() else keep
    out = {
        "event": p.event[sel],
        "m": p.m[sel],
        "pT": p.pt[sel],
        "E": p.energy[sel],
        "y": p.y[sel],
        "pz": p.pz[sel],
        "charge": p.charge[sel],
        "channel": p.channel[sel],
        "cos_theta_hel": cos_hel,
        "phi_hel": phi_hel,
    }
    if mixed is not None:
        out.update(mixed)
    return out, flow


def _helicity_columns(p: _Pairs, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """cos θ*, φ* (helicity frame, :func:`gammastar.corrections.polarisation.helicity_angles`) of the
    pairs in ``keep``: of the positive lepton for OS pairs, of the first for SS pairs.

    In blocks of :data:`_HELICITY_BLOCK` pairs (the gathers and the angles' temporaries of a
    block stay in the CPU cache, without the page faults of fresh whole-chunk arrays): every
    step is element by element, so the numbers are those of one call on all the pairs."""
    rows = np.flatnonzero(keep)
    cos_t = np.empty(rows.size, dtype=np.float64)
    phi = np.empty(rows.size, dtype=np.float64)
    lep = p.leptons
    cartesian = all(k in lep for k in "xyzt")

    def p4(idx: np.ndarray) -> np.ndarray:
        if cartesian:  # vector's (px, py, pz, E) are the columns
            return np.stack([lep[k][idx] for k in "xyzt"])
        v = _records(_take(lep, idx))
        return np.stack([np.asarray(getattr(v, k), dtype=np.float64)
                         for k in ("px", "py", "pz", "E")])  # fmt: skip

    # other coordinates: vector's conversion costs a dispatch per call, one block
    block = _HELICITY_BLOCK if cartesian else max(rows.size, 1)
    for b0 in range(0, rows.size, block):
        r = rows[b0 : b0 + block]
        ia, ib = p.ia[r], p.ib[r]
        swap = p.qa[r] < 0  # OS pairs: the positive lepton (an SS pair has no distinguished one)
        first, second = np.where(swap, ib, ia), np.where(swap, ia, ib)
        c, ph = helicity_angles(p4(first), p4(second))
        cos_t[b0 : b0 + r.size] = c
        phi[b0 : b0 + r.size] = ph
    return cos_t, phi


_HELICITY_BLOCK = 16384
"""Pairs per block of :func:`_helicity_columns`."""


MIXED_COLUMNS = ("_mix_m", "_mix_pT", "_mix_charge")
"""Extra :func:`select_chunk` outputs with ``Cuts.mix_depth``: mass, pT and summed charge of
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


# --------------------------------------------------------------------------- histograms
@dataclass(frozen=True)
class HistAxes:
    """The binning of every output histogram (picklable; from the config)."""

    mass_bins: int
    mass_min: float
    mass_max: float
    qt_bins: int
    qt_max: float
    energy_bins: int
    energy_min: float
    energy_max: float

    @classmethod
    def from_config(cls, cfg: AnalysisConfig) -> HistAxes:
        s = cfg.selection
        return cls(
            cfg.unfold.mass_bins,
            s.mass_min,
            s.mass_max,
            s.qt_bins,
            s.qt_max,
            s.energy_bins,
            s.energy_min,
            s.energy_max,
        )

    def mass(self) -> hist.axis.Regular:
        """The one mass axis shared by every output histogram."""
        import hist

        return hist.axis.Regular(
            self.mass_bins, self.mass_min, self.mass_max, name="m", label="m [GeV]"
        )

    def axes3(self) -> list[Any]:
        """(m, qT, E) axes of the 3-D histograms."""
        import hist

        return [
            self.mass(),
            hist.axis.Regular(self.qt_bins, 0.0, self.qt_max, name="qT", label="qT [GeV]"),
            hist.axis.Regular(
                self.energy_bins, self.energy_min, self.energy_max, name="E", label="E [GeV]"
            ),
        ]


def raw_histograms(axes: HistAxes, pairs: Mapping[str, np.ndarray]) -> dict[str, hist.Hist]:
    """Raw pair counts: ``os_m``, ``pp_m``, ``mm_m`` and their ``_m_qT_E`` versions.

    Arguments:
        axes: the binning.
        pairs: columns ``m``, ``pT`` (= qT), ``E``, ``charge`` (one chunk or the whole table).

    Returns:
        Weight-storage histograms filled with weight 1 (integer counts: they add exactly,
        in any order, across chunks).
    """
    import hist

    q = np.asarray(pairs["charge"])
    m, qt, e = (np.asarray(pairs[c], dtype=np.float64) for c in ("m", "pT", "E"))
    out = {}
    for name, sel in (("os", q == 0), ("pp", q == 2), ("mm", q == -2)):
        h1 = hist.Hist(axes.mass(), storage=hist.storage.Weight())
        h1.fill(m=m[sel])
        h3 = hist.Hist(*axes.axes3(), storage=hist.storage.Weight())
        h3.fill(m=m[sel], qT=qt[sel], E=e[sel])
        out[f"{name}_m"] = h1
        out[f"{name}_m_qT_E"] = h3
    return out


# --------------------------------------------------------------------------- chunk weights
@dataclass(frozen=True)
class WeightSpec:
    """What a chunk needs to compute its pairs' final weights itself (picklable).

    Every factor of ``weight`` is chunk-local (1/ε and 1/A are per-pair map lookups) except
    the like-sign factor of ``ss_weight: binwise``, which needs the whole sample's N++, N−−
    per mass bin, and the η → μμ ``rate`` scale, which needs its unfolded yield per mass bin:
    there the chunks weigh SS pairs with −1 (``r_factor`` 1) and the second pass multiplies
    the weights by the mass bin's factors (:mod:`gammastar.selection.reweight`).
    """

    r_factor: float = 1.0
    """The SS factor the chunks apply: R (``constant``) or 1 (``binwise``, provisional)."""
    outside_map: str = "error"
    acceptance: Any = None
    """The :class:`~gammastar.corrections.unfold.AcceptanceMap` (``None``: A = 1)."""
    min_acceptance: float = 0.01
    conversion: Any = None
    """The :class:`~gammastar.corrections.background.ConversionTemplate` (``None``: no subtraction)."""

    @classmethod
    def from_config(cls, cfg: AnalysisConfig, am: Any = None) -> WeightSpec | None:

        b = cfg.background
        chunk_local = b.ss_weight == "constant" and b.r_factor != "mixed"
        r = float(b.r_factor) if chunk_local else 1.0
        return cls(r, cfg.unfold.outside_map, am, cfg.unfold.min_acceptance,
                   conversion_template_from_config(cfg))  # fmt: skip


WEIGHT_COUNTS = (
    "n_zero_efficiency",
    "acc_n_pairs",
    "acc_n_outside",
    "acc_n_below_min",
    "acc_n_below_min_os",
    "acc_n_below_min_ss",
    "acc_n_zero",
)
"""Report counts :func:`weight_chunk` returns (they add over chunks)."""

WEIGHT_SUMS = ("lost_kept", "lost_kept2", "lost_lost", "lost_lost2")
"""Report sums :func:`weight_chunk` returns (Σw, Σw² of the kept and of the lost pairs)."""


def pair_weights(
    pairs: Mapping[str, np.ndarray],
    inv_eff: np.ndarray,
    ss_factor: np.ndarray,
    *,
    acceptance: Any = None,
    min_acceptance: float = 0.01,
    outside_map: str = "error",
    conversion: Any = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, int], dict[str, float]]:
    """The per-pair weights: the one implementation, used by the chunks
    (:func:`weight_chunk`) and by the driver (:func:`gammastar.selection.stage.select` when the weights
    need the whole sample).

    ``weight = weight_raw · 1/ε · 1/A · s`` (DEVELOPERS.md "Pairs table"; weight_raw = 1 for
    data), with 1/A = 0 below ``min_acceptance`` and outside the map (unless ``nearest``);
    the counts and the sums Σw, Σw² of the kept pairs and of the lost ones at their nominal
    weight 1/(A ε) (:func:`gammastar.corrections.unfold.lost_fraction_from_sums`) add over chunks. Pairs
    outside the map are counted, never raised on here: the caller raises on the total
    (:func:`gammastar.corrections.unfold.check_acceptance_outside`) for ``outside_map: error``.

    Arguments:
        pairs: columns ``m``, ``pT``, ``pz``, ``charge``.
        inv_eff: 1/ε per pair (0 where ε cannot be used).
        ss_factor: s per pair: 1 (OS) or the like-sign factor −k (SS).
        acceptance: an :class:`~gammastar.corrections.unfold.AcceptanceMap` or per-pair acceptance
            (``None``: A = 1).
        min_acceptance: ``unfold.min_acceptance``.
        outside_map: ``unfold.outside_map`` (``error`` and ``drop``: weight 0 outside).
        conversion: a :class:`~gammastar.corrections.background.ConversionTemplate`: s times its
            1/(1 + R(m, pT)) (``None``: no conversion subtraction).

    Returns:
        ``(acc, weight, counts, sums)``: A and the weight per pair, the acceptance counts of
        :data:`WEIGHT_COUNTS` (``acc_*``; 0 without an acceptance) and the
        :data:`WEIGHT_SUMS`.

    Example:
        >>> acc, w, counts, sums = pair_weights(
        ...     {"m": np.array([0.5, 0.6]), "pT": np.zeros(2), "pz": np.ones(2),
        ...      "charge": np.array([0, 2])}, np.array([2.0, 4.0]), np.array([1.0, -0.5]))
        >>> w.tolist(), acc.tolist(), counts["acc_n_pairs"]
        ([2.0, -2.0], [1.0, 1.0], 0)
    """

    n = len(pairs["m"])
    if conversion is not None:
        ss_factor = ss_factor * conversion.factor(pairs["m"], pairs["pT"])
    counts = {k: 0 for k in WEIGHT_COUNTS if k.startswith("acc_")}
    sums = dict.fromkeys(WEIGHT_SUMS, 0.0)
    if acceptance is not None:
        q = np.asarray(pairs["charge"])
        acc, inv_acc, arep = acceptance_weights(
            acceptance,
            np.asarray(pairs["m"], dtype=np.float64),
            np.asarray(pairs["pT"], dtype=np.float64),
            min_acceptance=min_acceptance,
            on_missing="drop" if outside_map == "error" else outside_map,
            pz=np.asarray(pairs["pz"], dtype=np.float64),
        )
        below = np.isfinite(acc) & (acc < min_acceptance)
        kept_w = inv_eff * inv_acc * ss_factor
        naive = below & (acc > 0)
        kept = kept_w[inv_acc > 0]
        lost = (inv_eff * ss_factor)[naive] / acc[naive]
        counts.update(
            acc_n_pairs=arep.n_pairs,
            acc_n_outside=arep.n_outside,
            acc_n_below_min=arep.n_below_min,
            acc_n_below_min_os=int((below & (q == 0)).sum()),
            acc_n_below_min_ss=int((below & (q != 0)).sum()),
            acc_n_zero=arep.n_zero_acceptance,
        )
        sums.update(
            lost_kept=float(np.sum(kept)),
            lost_kept2=float(np.sum(kept**2)),
            lost_lost=float(np.sum(lost)),
            lost_lost2=float(np.sum(lost**2)),
        )
    else:
        acc, inv_acc = np.ones(n), np.ones(n)
    weight_raw = np.ones(n)
    return acc, weight_raw * inv_eff * inv_acc * ss_factor, counts, sums


def weight_chunk(
    pairs: Mapping[str, np.ndarray], spec: WeightSpec
) -> tuple[dict[str, np.ndarray], dict[str, int], dict[str, float]]:
    """The final columns of one chunk's pairs, with its report counts and sums.

    1/ε from the chunk's ``eff`` (weight 0 at ε = 0, counted), s = 1 (OS) or −R (SS; −1 for
    ``ss_weight: binwise``, which the driver multiplies by k_b), then :func:`pair_weights`,
    the same function the driver uses on the whole table; the driver raises on the summed
    counts as ``unfold.outside_map`` says.

    Arguments:
        pairs: :data:`PAIR_COLUMNS` of the chunk (``eff`` looked up).
        spec: the weighting.

    Returns:
        ``(columns, counts, sums)``: the columns of ``pairs.parquet`` in its order, the
        :data:`WEIGHT_COUNTS` and the :data:`WEIGHT_SUMS`.
    """

    inv, rep = inverse_weights(pairs["eff"], n_outside=0, on_missing="drop")
    ss_factor = ss_pair_weights(
        np.asarray(pairs["m"], dtype=np.float64),
        np.asarray(pairs["charge"]),
        np.array([0.0, 1.0]),
        np.zeros(1),
        np.zeros(1),
        r=spec.r_factor,
        mode="constant",
    )
    acc, weight, acc_counts, sums = pair_weights(
        pairs,
        inv,
        ss_factor,
        acceptance=spec.acceptance,
        min_acceptance=spec.min_acceptance,
        outside_map=spec.outside_map,
        conversion=spec.conversion,
    )
    counts = {"n_zero_efficiency": rep.n_zero, **acc_counts}
    out = {c: np.asarray(pairs["pT" if c == "qT" else c], dtype=t) for c, t in _DTYPES.items()}
    out["acc"] = acc
    out["weight_raw"] = np.ones(len(weight))
    out["weight"] = weight
    return out, counts, sums


def unfolded_histograms(axes: HistAxes, pairs: Mapping[str, np.ndarray]) -> dict[str, hist.Hist]:
    """``unfolded_m`` and ``unfolded_m_qT_E``: Σ ``weight`` of the pairs (columns ``m``,
    ``qT``, ``E``, ``weight``), as in :func:`fill_histograms`."""
    import hist

    w = np.asarray(pairs["weight"])
    cols = {c: np.asarray(pairs[c]) for c in ("m", "qT", "E")}
    out = {}
    for suffix, ax in (("m", [axes.mass()]), ("m_qT_E", axes.axes3())):
        h = hist.Hist(*ax, storage=hist.storage.Weight())
        h.fill(**{a.name: cols[a.name] for a in ax}, weight=w)
        out[f"unfolded_{suffix}"] = h
    return out


_DTYPES = {
    "event": np.int64,
    "m": np.float64,
    "qT": np.float64,
    "E": np.float64,
    "y": np.float64,
    "pT": np.float64,
    "charge": np.int8,
    "channel": np.int8,
    "pz": np.float64,
    "eff": np.float64,
    "cos_theta_hel": np.float64,
    "phi_hel": np.float64,
}
_FINAL_EXTRA = ("acc", "weight_raw", "weight")
"""Columns of ``pairs.parquet`` after :data:`_DTYPES`."""
