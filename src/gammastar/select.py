"""Columnar dilepton selection: four-vectors, cuts, OS/SS pairs, histograms, outputs.

The chunk-level functions are pure (arrays in, arrays out) and run inside the coffea
processor (:mod:`gammastar.processor`); :func:`select` is the Python twin of
``gammastar select CONFIG``: it checks the inputs, runs the processor on the chosen executor,
applies the like-sign subtraction (:mod:`gammastar.background`) and the efficiency
unfolding (:mod:`gammastar.unfold`), and writes ``pairs.parquet``, ``histograms.root`` and
``select.json`` atomically in the run directory.

Every layout goes through one construction path, :func:`make_leptons`, which builds
``vector`` Momentum4D records (with a ``charge`` field) per event from the layout's registry
entry (:data:`gammastar.io.LAYOUTS`); flat pre-paired inputs become events of exactly two
leptons, so pairing is the same ``ak.combinations`` for all.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gammastar import rundir
from gammastar._api import make_callable as _make_callable
from gammastar.errors import ConfigError, InputError

if TYPE_CHECKING:
    import awkward as ak
    import hist
    import pandas as pd

    from gammastar.config import AnalysisConfig

log = logging.getLogger(__name__)

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


# --------------------------------------------------------------------------- four-vectors
def make_leptons(
    columns: Mapping[str, Any], layout: str, lepton_mass: float = 0.1056583755
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

    from gammastar.io import get_layout

    lay = get_layout(layout)

    def col(name: str) -> ak.Array | None:
        if name not in columns:
            return None
        return ak.Array(columns[name]) if not isinstance(columns[name], ak.Array) else columns[name]

    fields = lay.leptons(col, lepton_mass)
    if "charge" not in fields:
        fields["charge"] = col("charge")
    if "parent" in columns and not lay.paired:
        fields["parent"] = col("parent")
    return vector.zip(fields)


def finite_leptons(leptons: ak.Array) -> ak.Array:
    """Mask of leptons whose momentum components are all finite."""
    import awkward as ak

    ok = None
    for name in leptons.fields:
        if name in ("charge", "parent"):
            continue
        f = ak.values_astype(leptons[name], np.float64)
        m = np.isfinite(f)
        ok = m if ok is None else ok & m
    return ok


# --------------------------------------------------------------------------- chunk selection
def select_chunk(
    columns: Mapping[str, Any],
    layout: str,
    cuts: Cuts,
    *,
    lepton_mass: float = 0.1056583755,
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

    leptons = make_leptons(columns, layout, lepton_mass)
    n_events = len(leptons)
    flow = dict.fromkeys(CUTFLOW_KEYS, 0)
    flow["events"] = n_events
    flow["leptons"] = int(ak.sum(ak.num(leptons)))

    finite = finite_leptons(leptons)
    bad = ~finite
    flow["leptons_nonfinite"] = int(ak.sum(bad))
    flow["events_nonfinite"] = int(ak.sum(ak.any(bad, axis=1)))
    leptons = leptons[finite]
    leptons = leptons[abs(leptons.charge) == 1]
    flow["leptons_charge"] = int(ak.sum(ak.num(leptons)))
    leptons = leptons[cuts.lepton_min_energy <= leptons.E]
    flow["leptons_energy"] = int(ak.sum(ak.num(leptons)))
    theta = leptons.theta
    leptons = leptons[(theta >= cuts.lepton_theta_min) & (theta <= cuts.lepton_theta_max)]
    flow["leptons_theta"] = int(ak.sum(ak.num(leptons)))

    if "event" in columns:
        event_id = np.asarray(columns["event"]).astype(np.int64)
    else:
        event_id = np.arange(entry_offset, entry_offset + n_events, dtype=np.int64)
    channel = (
        np.asarray(columns["truth_channel"]).astype(np.int8)
        if "truth_channel" in columns
        else np.full(n_events, -1, dtype=np.int8)
    )

    mixed = _mixed_pairs(leptons, cuts) if cuts.mix_depth else None

    has2 = ak.num(leptons) >= 2
    flow["events_2leptons"] = int(ak.sum(has2))
    leptons = leptons[has2]
    event_id = event_id[np.asarray(has2)]
    channel = channel[np.asarray(has2)]

    pairs = ak.combinations(leptons, 2, fields=["a", "b"])
    npairs = ak.num(pairs)
    flow["pairs"] = int(ak.sum(npairs))
    pa, pb = pairs.a, pairs.b
    p = pa + pb
    pflat = ak.flatten(p)
    m = np.asarray(pflat.mass, dtype=np.float64)
    pt = np.asarray(pflat.pt, dtype=np.float64)
    energy = np.asarray(pflat.E, dtype=np.float64)
    pz = np.asarray(pflat.pz, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = 0.5 * np.log((energy + pz) / (energy - pz))
    charge = np.asarray(ak.flatten(pa.charge + pb.charge)).astype(np.int8)
    ev = np.repeat(event_id, np.asarray(npairs))
    ch = np.repeat(channel, np.asarray(npairs))
    qa = np.asarray(ak.flatten(pa.charge))

    keep = (m >= cuts.mass_min) & (m < cuts.mass_max)
    flow["pairs_mass"] = int(keep.sum())
    if cuts.pair_pt_max is not None:
        keep &= pt < cuts.pair_pt_max
    flow["pairs_pt"] = int(keep.sum())
    if cuts.rapidity_min is not None:
        keep &= y >= cuts.rapidity_min
    if cuts.rapidity_max is not None:
        keep &= y < cuts.rapidity_max
    flow["pairs_rapidity"] = int(keep.sum())
    classes = {"os": charge == 0, "pp": charge == 2, "mm": charge == -2}
    cls_ok = np.zeros(len(m), dtype=bool)
    for name in cuts.pair_charges:
        cls_ok |= classes[name]
    keep &= cls_ok
    flow["pairs_charge_class"] = int(keep.sum())
    if cuts.remove_eta_mumu_truth and "truth_channel" in columns:
        from gammastar.channels import Channel

        eta = (ch == int(Channel.ETA_MUMU)) & (charge == 0)
        if "parent" in columns:
            both = np.asarray(ak.flatten((pa.parent == ETA_PDGID) & (pb.parent == ETA_PDGID)))
            eta &= both
        flow["pairs_eta_mumu_removed"] = int((keep & eta).sum())
        keep &= ~eta
    flow["os"] = int((keep & (charge == 0)).sum())
    flow["pp"] = int((keep & (charge == 2)).sum())
    flow["mm"] = int((keep & (charge == -2)).sum())
    cos_hel, phi_hel = _helicity_columns(pa, pb, keep, qa)
    out = {
        "event": ev[keep],
        "m": m[keep],
        "pT": pt[keep],
        "E": energy[keep],
        "y": y[keep],
        "pz": pz[keep],
        "charge": charge[keep],
        "channel": ch[keep],
        "cos_theta_hel": cos_hel,
        "phi_hel": phi_hel,
    }
    if mixed is not None:
        out.update(mixed)
    return out, flow


def _helicity_columns(pa: Any, pb: Any, keep: np.ndarray, qa: np.ndarray):
    """cos θ*, φ* (helicity frame, :func:`gammastar.polarisation.helicity_angles`) of the
    pairs in ``keep``: of the positive lepton for OS pairs, of the first for SS pairs."""
    import awkward as ak

    from gammastar.polarisation import helicity_angles

    def p4(v: Any) -> np.ndarray:
        return np.stack([np.asarray(ak.flatten(getattr(v, k)), dtype=np.float64)[keep]
                         for k in ("px", "py", "pz", "E")])  # fmt: skip

    a, b = p4(pa), p4(pb)
    swap = qa[keep] < 0  # OS pairs: the positive lepton (an SS pair has no distinguished one)
    a[:, swap], b[:, swap] = b[:, swap], a[:, swap].copy()
    return helicity_angles(a, b)


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
    rapidity). Uncorrelated by construction: they measure R (:func:`~gammastar.background.
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
            e, pz = np.asarray(p.E), np.asarray(p.pz)
            with np.errstate(divide="ignore", invalid="ignore"):
                y = 0.5 * np.log((e + pz) / (e - pz))
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


def mass_axis(cfg: AnalysisConfig) -> hist.axis.Regular:
    """The one mass axis shared by every output histogram."""
    return HistAxes.from_config(cfg).mass()


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


def like_sign(cfg: AnalysisConfig, raw: Mapping[str, hist.Hist]) -> Any:
    """The like-sign estimate (:func:`gammastar.background.like_sign_estimate`) of the
    config's estimator (``background.ss_weight``) from the raw ``pp_m``/``mm_m`` counts:
    one estimate for ``comb_m``, ``signal_m`` and the per-pair SS weights."""
    from gammastar.background import ESTIMATORS, like_sign_estimate

    b = cfg.background
    vp, vm = raw["pp_m"].view(), raw["mm_m"].view()
    r: Any = b.r_factor
    if r == "mixed":
        r = mixed_r(raw)[0]
    return like_sign_estimate(
        vp["value"],
        vm["value"],
        vp["variance"],
        vm["variance"],
        r=r,
        estimator=ESTIMATORS[b.ss_weight],
        min_counts=b.min_like_sign,
    )


MIN_MIXED = 100.0
"""Mixed pairs of each charge class a mass bin needs for its own R (else a window)."""


def mixed_r(raw: Mapping[str, hist.Hist]) -> tuple[np.ndarray, np.ndarray]:
    """R per mass bin from the mixed-event histograms ``mix_{os,pp,mm}_m`` in ``raw``
    (:func:`gammastar.background.r_factor_mixed`)."""
    from gammastar.background import r_factor_mixed

    if "mix_os_m" not in raw:
        raise ConfigError(
            "background.r_factor: 'mixed' needs the mixed-event histograms, which this run "
            "did not fill"
        )
    return r_factor_mixed(
        *(raw[f"mix_{c}_m"].values() for c in ("os", "pp", "mm")), min_counts=MIN_MIXED
    )


def fill_histograms(
    cfg: AnalysisConfig,
    pairs: pd.DataFrame | None,
    raw: Mapping[str, hist.Hist] | None = None,
    unfolded: Mapping[str, hist.Hist] | None = None,
    estimate: Any = None,
) -> dict[str, hist.Hist]:
    """All output histograms from the (weighted) pairs table.

    ``os_m``, ``pp_m``, ``mm_m``: raw counts (``raw`` from the processor, or filled from the
    table); ``comb_m`` the like-sign estimate k_b (N++ + N−−) of :func:`like_sign`
    (``estimate``, default computed from ``raw``): 2R√(N++N−−) per populated mass bin for
    ``ss_weight: binwise``, R(N++ + N−−) for ``constant``, with propagated variance; the
    same per-mass-bin k_b on the (m, qT, E) cells of ``comb_m_qT_E`` (variance
    k_b²(σ²++ + σ²−−) per cell, k_b's own uncertainty neglected there); ``signal_m = os_m −
    comb_m``; ``unfolded_m``: Σ ``weight`` over all pairs (OS 1/ε, SS −k_b/ε: the same
    estimator; ``unfolded`` from the processor, or filled from the table); the same with
    ``_m_qT_E`` on (m, qT, E). ``pairs`` may be ``None`` when both are given.
    """
    import hist

    axes = HistAxes.from_config(cfg)
    if raw is None:
        raw = raw_histograms(axes, {c: pairs[c].to_numpy() for c in ("m", "pT", "E", "charge")})
    if unfolded is None:
        unfolded = unfolded_histograms(
            axes, {c: pairs[c].to_numpy() for c in ("m", "qT", "E", "weight")}
        )
    est = like_sign(cfg, raw) if estimate is None else estimate
    # k_b on the flow bins too: the nearest bin's (as the per-pair weights take it)
    k_flow = np.concatenate([est.factor[:1], est.factor, est.factor[-1:]])
    out: dict[str, hist.Hist] = {}
    for suffix, ax in (("m", [axes.mass()]), ("m_qT_E", axes.axes3())):
        os_h, pp_h, mm_h = (raw[f"{c}_{suffix}"] for c in ("os", "pp", "mm"))
        comb_h = hist.Hist(*ax, storage=hist.storage.Weight())
        vp, vm = pp_h.view(flow=True), mm_h.view(flow=True)
        k = k_flow.reshape((-1,) + (1,) * (vp.ndim - 1))
        val = k * (vp["value"] + vm["value"])
        var = k**2 * (vp["variance"] + vm["variance"])
        if suffix == "m":  # the in-range bins: the estimate itself, with k_b's uncertainty
            val[1:-1], var[1:-1] = est.value, est.variance
        comb_h.view(flow=True)["value"] = val
        comb_h.view(flow=True)["variance"] = var
        sig_h = hist.Hist(*ax, storage=hist.storage.Weight())
        vo = os_h.view(flow=True)
        sig_h.view(flow=True)["value"] = vo["value"] - val
        sig_h.view(flow=True)["variance"] = vo["variance"] + var
        unf_h = unfolded[f"unfolded_{suffix}"]
        for name in ("mix_os", "mix_pp", "mix_mm"):  # r_factor: mixed
            if f"{name}_{suffix}" in raw:
                out[f"{name}_{suffix}"] = raw[f"{name}_{suffix}"]
        for name, h in (
            ("os", os_h),
            ("pp", pp_h),
            ("mm", mm_h),
            ("comb", comb_h),
            ("signal", sig_h),
            ("unfolded", unf_h),
        ):
            out[f"{name}_{suffix}"] = h
    return out


# --------------------------------------------------------------------------- chunk weights
@dataclass(frozen=True)
class WeightSpec:
    """What a chunk needs to compute its pairs' final weights itself (picklable).

    Every factor of ``weight`` is chunk-local when ``remove_eta_mumu`` is ``none`` or
    ``truth`` (1/ε and 1/A are per-pair map lookups) except the like-sign factor of
    ``ss_weight: binwise``, which needs the whole sample's N++, N−− per mass bin: there the
    chunks weigh SS pairs with −1 (``r_factor`` 1) and the driver multiplies them by the
    mass bin's k_b (:func:`rescale_like_sign`). :meth:`from_config` returns ``None`` for
    ``rate`` (the weights need the whole sample, and the driver computes them).
    """

    r_factor: float = 1.0
    """The SS factor the chunks apply: R (``constant``) or 1 (``binwise``, provisional)."""
    outside_map: str = "error"
    acceptance: Any = None
    """The :class:`~gammastar.unfold.AcceptanceMap` (``None``: A = 1)."""
    min_acceptance: float = 0.01

    @classmethod
    def from_config(cls, cfg: AnalysisConfig, am: Any = None) -> WeightSpec | None:
        b = cfg.background
        if b.remove_eta_mumu == "rate":
            return None
        chunk_local = b.ss_weight == "constant" and b.r_factor != "mixed"
        r = float(b.r_factor) if chunk_local else 1.0
        return cls(r, cfg.unfold.outside_map, am, cfg.unfold.min_acceptance)


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


def weight_chunk(
    pairs: Mapping[str, np.ndarray], spec: WeightSpec
) -> tuple[dict[str, np.ndarray], dict[str, int], dict[str, float]]:
    """The final columns of one chunk's pairs, with its report counts and sums.

    The per-pair arithmetic is that of :func:`select` on the whole table (same operations in
    the same order, so the same numbers bit for bit): ``weight = weight_raw · 1/ε · 1/A ·
    s`` with s = 1 (OS) or −R (SS); pairs that cannot be unfolded get weight 0 and are
    counted; the driver raises on the summed counts as ``unfold.outside_map`` says.

    Arguments:
        pairs: :data:`PAIR_COLUMNS` of the chunk (``eff`` looked up).
        spec: the weighting.

    Returns:
        ``(columns, counts, sums)``: the columns of ``pairs.parquet`` in its order, the
        :data:`WEIGHT_COUNTS` and the :data:`WEIGHT_SUMS`.
    """
    from gammastar.background import ss_pair_weights
    from gammastar.unfold import acceptance_weights, inverse_weights

    n = len(pairs["m"])
    inv, rep = inverse_weights(pairs["eff"], n_outside=0, on_missing="drop")
    q = np.asarray(pairs["charge"])
    m = np.asarray(pairs["m"], dtype=np.float64)
    pt = np.asarray(pairs["pT"], dtype=np.float64)
    ss_factor = ss_pair_weights(
        m, q, np.array([0.0, 1.0]), np.zeros(1), np.zeros(1), r=spec.r_factor, mode="constant"
    )
    counts = dict.fromkeys(WEIGHT_COUNTS, 0)
    counts["n_zero_efficiency"] = rep.n_zero
    sums = dict.fromkeys(WEIGHT_SUMS, 0.0)
    if spec.acceptance is not None:
        on_missing = "drop" if spec.outside_map == "error" else spec.outside_map
        acc, inv_acc, arep = acceptance_weights(
            spec.acceptance,
            m,
            pt,
            min_acceptance=spec.min_acceptance,
            on_missing=on_missing,
            pz=np.asarray(pairs["pz"], dtype=np.float64),
        )
        below = np.isfinite(acc) & (acc < spec.min_acceptance)
        kept_w = inv * inv_acc * ss_factor
        naive = below & (acc > 0)
        kept = kept_w[inv_acc > 0]
        lost = (inv * ss_factor)[naive] / acc[naive]
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
    out = {c: np.asarray(pairs["pT" if c == "qT" else c], dtype=t) for c, t in _DTYPES.items()}
    out["acc"] = acc
    out["weight_raw"] = weight_raw
    out["weight"] = weight_raw * inv * inv_acc * ss_factor
    return out, counts, sums


def rescale_like_sign(
    m: np.ndarray, charge: np.ndarray, weight: np.ndarray, edges: np.ndarray, factor: np.ndarray
) -> np.ndarray:
    """SS pairs' chunk weights (like-sign factor −1, ``ss_weight: binwise``) times the
    like-sign factor k_b of their mass bin; OS weights unchanged. The same numbers bit for
    bit as weighting with −k_b directly ((x·(−1))·k = x·(−k) in IEEE arithmetic).

    Example:
        >>> rescale_like_sign(np.array([0.5, 1.5, 0.5]), np.array([2, -2, 0]),
        ...                   np.array([-2.0, -1.0, 3.0]), np.array([0.0, 1.0, 2.0]),
        ...                   np.array([0.5, 0.9])).tolist()
        [-1.0, -0.9, 3.0]
    """
    ss = np.flatnonzero(np.asarray(charge) != 0)
    factor = np.asarray(factor, dtype=np.float64)
    idx = np.searchsorted(edges, np.asarray(m)[ss], side="right") - 1
    np.clip(idx, 0, factor.size - 1, out=idx)
    out = np.array(weight, dtype=np.float64, copy=True)
    out[ss] *= factor[idx]
    return out


def _rescale_streamed(
    path: Path, edges: np.ndarray, factor: np.ndarray, axes: HistAxes
) -> tuple[Path, dict[str, hist.Hist]]:
    """:func:`rescale_like_sign` on a streamed ``pairs.parquet``: row group by row group the
    new weights are computed (reading only the columns they need) and the unfolded histograms
    filled in row order (the same sums as one fill of the whole table); then the ``weight``
    column is replaced in the file (:func:`gammastar.pqconcat.replace_column`: the other
    columns are not re-encoded)."""
    import hist
    import pyarrow.parquet as pq

    from gammastar.pqconcat import replace_column

    pf = pq.ParquetFile(path)
    hs = {
        f"unfolded_{sfx}": hist.Hist(*ax, storage=hist.storage.Weight())
        for sfx, ax in (("m", [axes.mass()]), ("m_qT_E", axes.axes3()))
    }
    new = []
    for i in range(pf.num_row_groups):
        t = pf.read_row_group(i, columns=["m", "qT", "E", "charge", "weight"])
        cols = {c: t.column(c).to_numpy() for c in t.column_names}
        wt = rescale_like_sign(cols["m"], cols["charge"], cols["weight"], edges, factor)
        for h in hs.values():
            h.fill(**{a.name: cols[a.name] for a in h.axes}, weight=wt)
        new.append(wt)
    pf.close()
    replace_column(path, "weight", new)
    return path, hs


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


# --------------------------------------------------------------------------- result
@dataclass
class SelectResult:
    """What :func:`select` produced (the files are in ``output_dir``).

    ``pairs`` is the pairs table; when the run streamed it to ``pairs.parquet`` without
    holding it (parallel executors), it is read from that file on first access.
    """

    output_dir: Path
    _pairs: pd.DataFrame | None = field(repr=False)
    histograms: dict[str, Any] = field(repr=False)
    cutflow: dict[str, int] = field(repr=False)
    counts: dict[str, Any]
    unfold: dict[str, Any]
    bad_files: dict[str, str]
    meta: dict[str, Any] = field(repr=False)
    files: dict[str, Path] = field(default_factory=dict, repr=False)

    @property
    def pairs(self) -> pd.DataFrame:
        """The pairs table (= ``pairs.parquet``)."""
        if self._pairs is None:
            import pandas as pd

            self._pairs = pd.read_parquet(self.files[rundir.PAIRS])
        return self._pairs


OUTPUT_FILES = rundir.stage_outputs("select")  # pairs.parquet, histograms.root, select.json


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


def _pairs_table(chunks: dict[Any, dict[str, np.ndarray]]) -> pd.DataFrame:
    """Concatenate the chunks in (file, first entry) order, column by column.

    Each chunk column is released once copied, so the peak stays near one table's size.
    """
    import pandas as pd

    keys = sorted(chunks)
    final = bool(keys) and "weight" in chunks[keys[0]]  # weighted by the processor
    dtypes = {**_DTYPES, **dict.fromkeys(_FINAL_EXTRA, np.float64)} if final else _DTYPES
    n = sum(len(chunks[k]["m"]) for k in keys)
    data = {}
    for col, dtype in dtypes.items():
        if col == "weight_raw" or (col == "acc" and "acc" not in chunks[keys[0]]):
            data[col] = np.ones(n)  # not kept per chunk (see DileptonProcessor.process)
            continue
        src = "pT" if col == "qT" else col
        parts = [np.asarray(chunks[k][src], dtype=dtype) for k in keys]
        data[col] = np.concatenate(parts) if parts else np.array([], dtype=dtype)
        if col != "qT" and src != "pT":
            for k in keys:
                chunks[k].pop(src, None)
    chunks.clear()
    return pd.DataFrame(data, copy=False)


def _write_parquet(path: Path, df: pd.DataFrame, rows_per_group: int = 1_000_000) -> None:
    """Write the pairs table in row groups (LZ4, dictionaries only for the small-cardinality
    columns): about twice as fast as pandas' default (snappy, dictionaries everywhere) at the
    same size, and only one row group at a time is converted to Arrow."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = {c: df[c].to_numpy() for c in df.columns}
    schema = pa.schema([(c, pa.from_numpy_dtype(v.dtype)) for c, v in cols.items()])
    with pq.ParquetWriter(
        path, schema, compression="lz4", use_dictionary=["charge", "channel"]
    ) as w:
        for start in range(0, max(len(df), 1), rows_per_group):
            sl = slice(start, start + rows_per_group)
            w.write_table(
                pa.Table.from_arrays([pa.array(v[sl]) for v in cols.values()], schema=schema)
            )


def select(
    config: AnalysisConfig | str | os.PathLike[str],
    inputs: Iterable[str | os.PathLike[str]] | None = None,
    *,
    executor: str = "iterative",
    scheduler: str | None = None,
    workers: int | None = None,
    skip_bad_files: bool = False,
    output: str | os.PathLike[str] | None = None,
    force: bool = False,
    chunksize: int | None = None,
    dask_processes: bool = True,
    shared_staging: bool = True,
) -> SelectResult:
    """Select dilepton pairs, subtract the like-sign background, unfold; write the outputs.

    The Python twin of ``gammastar select CONFIG [--input FILE ...] [--executor ...]``.

    Arguments:
        config: an :class:`~gammastar.config.AnalysisConfig` or the path of a YAML file.
        inputs: input files or globs replacing ``input.files``.
        executor: ``iterative``, ``futures`` or ``dask``.
        scheduler: Dask scheduler address (``tcp://host:8786``); ``None`` starts a local
            ``distributed.LocalCluster`` with ``workers`` workers.
        workers: worker processes for ``futures`` / local ``dask`` (default 2).
        skip_bad_files: skip unreadable files (reported in ``select.json``) instead of stopping.
        output: run directory (default: the config's ``output``).
        force: overwrite existing outputs.
        chunksize: entries per chunk (default ``input.step_size``).
        dask_processes: local Dask cluster with worker processes (``False``: threads).
        shared_staging: on the ``futures`` and ``dask`` executors with chunk-local weights,
            each chunk's pairs go to the driver as a file in a staging directory next to the
            outputs (``<output>/.gammastar-parts-*``, removed at the end), which needs a
            filesystem the workers share with the driver; a worker that does not see the
            directory sends the columns through the scheduler instead. ``False``: always
            through the scheduler.

    Returns:
        A :class:`SelectResult`; ``pairs.parquet``, ``histograms.root`` and ``select.json``
        are written in the run directory.

    Raises:
        ConfigError, InputError: bad config, missing file/tree/branch, no selected pair,
            unusable efficiency map; OutputExistsError: outputs exist and not ``force``.
    """
    import time

    import uproot  # noqa: F401  (imported before the timer, as always)

    from gammastar import io
    from gammastar.artifacts import check_writable
    from gammastar.config import AnalysisConfig, load_config
    from gammastar.pair_acceptance import fiducial_from_config
    from gammastar.processor import run_processor  # noqa: F401
    from gammastar.unfold import (
        PHASE_SPACE_DETECTOR,
        PHASE_SPACE_FIDUCIAL,
        PHASE_SPACE_FULL,
        load_acceptance_map,
        load_efficiency_map,
        split_map_spec,
    )

    t0 = time.perf_counter()
    cfg = config if isinstance(config, AnalysisConfig) else load_config(config)
    if output is not None:
        cfg = cfg.model_copy(update={"output": str(Path(output).resolve())})
    if executor not in ("iterative", "futures", "dask"):
        raise ConfigError(f"--executor: unknown executor {executor!r} (iterative, futures, dask)")
    outdir = cfg.output_dir
    for name in OUTPUT_FILES:
        check_writable(outdir / name, force)

    bmap = io.branch_map(cfg.input.layout, cfg.input.branches, cfg.input.lepton)
    fileset = io.fileset_from_config(cfg, inputs)
    checked = io.check_inputs(fileset, bmap, skip_bad_files=skip_bad_files)
    from gammastar.flavour import check_flavour  # issue 14: the leptons' masses vs the flavour

    check_flavour(checked, cfg.input.lepton)
    for path, why in checked.bad_files.items():
        log.warning("skipping bad file %s: %s", path, why)
    if cfg.background.remove_eta_mumu == "truth" and "truth_channel" not in checked.branches.all:
        raise ConfigError(
            "background.remove_eta_mumu: 'truth' needs the truth_channel branch, which the "
            "input lacks; use 'rate' (data) or 'none'"
        )
    if (
        cfg.background.remove_eta_mumu == "truth"
        and not io.get_layout(cfg.input.layout).paired
        and "parent" not in checked.branches.all
    ):
        # the event tag alone would drop every OS pair of a tagged event, also those of an
        # η muon with an unrelated one, while its like-sign pairs stay
        raise ConfigError(
            "background.remove_eta_mumu: 'truth' needs the per-lepton parent branch "
            f"(input.branches.parent; default {io.get_layout(cfg.input.layout).optional['parent']!r}) to "
            "drop only pairs of two η muons; the input lacks it: use 'rate' or 'none'"
        )
    eff_path = cfg.unfold.efficiency_map
    em = load_efficiency_map(
        cfg.resolve_data(eff_path, "unfold.efficiency_map") if eff_path is not None else None
    )
    am = None
    phase_space = PHASE_SPACE_DETECTOR
    if cfg.unfold.acceptance_map is not None:
        acc_path, acc_key = split_map_spec(cfg.unfold.acceptance_map)
        am = load_acceptance_map(cfg.resolve(acc_path), acc_key)
        phase_space = PHASE_SPACE_FULL
    measured = cfg.unfold.decay_lambda_theta == "measured"
    fiducial = fiducial_from_config(cfg, lambda_theta=0.0 if measured else None)
    if fiducial is not None:
        am = fiducial.acceptance
        phase_space = PHASE_SPACE_FIDUCIAL

    t_checked = time.perf_counter()
    run_args: dict[str, Any] = {
        "cfg": cfg,
        "executor": executor,
        "scheduler": scheduler,
        "workers": workers,
        "skip_bad_files": skip_bad_files,
        "chunksize": chunksize,
        "dask_processes": dask_processes,
        "shared_staging": shared_staging,
        "t0": t0,
        "t_checked": t_checked,
        "checked": checked,
        "em": em,
        "phase_space": phase_space,
    }
    if measured and fiducial is not None:
        # unfold.decay_lambda_theta: measured: a first pass with isotropic decays measures
        # λ_θ(m) (the fit has the acceptance in it, so the first pass's weights do not bias
        # it); the selection is then run with the acceptance of that λ_θ(m)
        from gammastar.polarisation import lambda_for_acceptance

        first = _select_pass(run_args, Path(tempfile.mkdtemp(prefix=".gammastar-parts-",
                                                              dir=outdir)), am)  # fmt: skip
        pol_edges, lam = lambda_for_acceptance(first, "select (first pass)")
        am = am.with_lambda(am.lambda_nodes(pol_edges, lam))
        run_args["t_checked"] = time.perf_counter()
    spec = WeightSpec.from_config(cfg, am)
    # chunk-local weights on a parallel executor: stream the pairs into pairs.parquet as the
    # chunks come in, through a staging directory next to the outputs (always removed)
    staging = (
        Path(tempfile.mkdtemp(prefix=".gammastar-parts-", dir=outdir))
        if spec is not None and executor != "iterative"
        else None
    )
    try:
        return _select_run(
            **run_args,
            force=force,
            outdir=outdir,
            am=am,
            spec=spec,
            staging=staging,
            polarisation_used=measured,
        )
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)


def _select_pass(run_args: dict[str, Any], tmpdir: Path, am: Any) -> dict[str, Any]:
    """A selection into the temporary directory ``tmpdir`` (removed afterwards): its
    ``polarisation`` block (the first pass of ``unfold.decay_lambda_theta: measured``)."""
    import json

    try:
        spec = WeightSpec.from_config(run_args["cfg"], am)
        staging = (
            Path(tempfile.mkdtemp(prefix=".gammastar-parts-", dir=tmpdir))
            if spec is not None and run_args["executor"] != "iterative"
            else None
        )
        res = _select_run(**run_args, force=True, outdir=tmpdir, am=am, spec=spec,
                          staging=staging, polarisation_used=False)  # fmt: skip
        return json.loads((res.output_dir / "select.json").read_text())["polarisation"]
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _measure_polarisation(
    cfg: AnalysisConfig, am: Any, pairs: Any, streamed: Any, used: bool
) -> dict[str, Any]:
    """The ``polarisation`` block of ``select.json`` (:func:`gammastar.polarisation.measure`
    on the weighted pairs, ``unfold.polarisation_bins`` mass bins of equal OS counts, fewer
    where the sample has less than :data:`~gammastar.polarisation.MIN_PAIRS` OS pairs per
    bin)."""
    from gammastar.polarisation import MIN_PAIRS, measure, polarisation_edges

    cols = ("m", "pT", "pz", "charge", "cos_theta_hel", "phi_hel", "weight", "acc")
    if pairs is None:
        import pyarrow.parquet as pq

        table = pq.read_table(streamed, columns=list(cols))
        data = {c: table.column(c).to_numpy() for c in cols}
    else:
        data = {c: pairs[c].to_numpy() for c in cols}
    os_in = (data["charge"] == 0) & (data["weight"] != 0)
    sel = cfg.selection
    # at most polarisation_bins, each with MIN_PAIRS OS pairs (a small sample: fewer bins)
    n_bins = max(1, min(cfg.unfold.polarisation_bins, int(os_in.sum()) // MIN_PAIRS))
    edges = polarisation_edges(data["m"][os_in], n_bins, sel.mass_min, sel.mass_max)
    pol = measure(data, am, edges, used_in_acceptance=used)
    log.info(
        "select: lambda_theta (helicity frame) per mass bin %s",
        ", ".join(
            f"{0.5 * (a + b):.2f} GeV: {v:.2f} ± {e:.2f}"
            for a, b, v, e in zip(
                edges[:-1], edges[1:], pol.lambda_theta, pol.lambda_theta_err, strict=True
            )
        ),
    )
    return pol.as_dict()


def _select_run(
    *,
    cfg: AnalysisConfig,
    executor: str,
    scheduler: str | None,
    workers: int | None,
    skip_bad_files: bool,
    force: bool,
    chunksize: int | None,
    dask_processes: bool,
    shared_staging: bool,
    t0: float,
    t_checked: float,
    outdir: Path,
    checked: Any,
    em: Any,
    am: Any,
    phase_space: str,
    spec: WeightSpec | None,
    staging: Path | None,
    polarisation_used: bool = False,
) -> SelectResult:
    """The part of :func:`select` after the input checks: process, weight, write."""
    import time

    import uproot

    from gammastar import io
    from gammastar.artifacts import atomic_paths, json_text, make_meta
    from gammastar.background import eta_mumu_rate_peak, pair_factors
    from gammastar.plausibility import Plausibility
    from gammastar.processor import ChunkSink, DileptonProcessor, run_processor
    from gammastar.unfold import (
        PHASE_SPACE_FIDUCIAL,
        AcceptanceReport,
        UnfoldReport,
        acceptance_weights,
        bayesian_unfold,
        bayesian_unfold_variance,
        check_acceptance_outside,
        check_unfoldable,
        inverse_weights,
        lost_fraction_from_map,
        lost_fraction_from_pairs,
        lost_fraction_from_sums,
        response_matrix,
    )

    cuts = Cuts.from_config(cfg)
    proc = DileptonProcessor(
        layout=cfg.input.layout,
        # the per-lepton parent is read only where it is used (truth η→μμ removal): it is
        # a jagged branch to decompress and carry through the pairing in every chunk
        columns={
            col: br
            for col, br in checked.branches.all.items()
            if col != "parent" or cuts.remove_eta_mumu_truth
        },
        cuts=cuts,
        lepton_mass=cfg.input.lepton_mass,
        effmap=em,
        nearest=cfg.unfold.outside_map == "nearest",
        axes=HistAxes.from_config(cfg),
        weights=spec,
        staging=(str(staging) if shared_staging else "") if staging is not None else None,
        plausibility=Plausibility.from_config(cfg),
    )
    sink = ChunkSink(staging / rundir.PAIRS if staging is not None else None)
    result, run_bad = run_processor(
        checked.fileset,
        proc,
        executor=executor,
        scheduler=scheduler,
        workers=workers,
        chunksize=chunksize or cfg.input.step_size,
        skip_bad_files=skip_bad_files,
        dask_processes=dask_processes,
        sink=sink,
        file_metadata={
            path: {"numentries": n, "uuid": checked.uuids[path]}
            for path, n in checked.entries.items()
            if path in checked.uuids
        },
    )
    t_processed = time.perf_counter()
    bad_files = {**checked.bad_files, **run_bad}
    cutflow = {k: int(result.get("cutflow", {}).get(k, 0)) for k in CUTFLOW_KEYS}
    if cutflow["leptons_nonfinite"]:
        log.warning(
            "dropped %d lepton(s) with NaN or infinite momenta in %d event(s)",
            cutflow["leptons_nonfinite"],
            cutflow["events_nonfinite"],
        )
    streamed = result.get("streamed")
    pairs = None
    if streamed is None:
        pairs = _pairs_table(result.pop("pairs").chunks if "pairs" in result else {})
    n_pairs = int(result.get("rows", 0)) if pairs is None else len(pairs)
    files_used = [p for p in checked.files if p not in run_bad]
    if n_pairs == 0:
        raise InputError(
            f"no pair passes the selection in {len(files_used)} file(s) "
            f"({', '.join(files_used)[:300]}); cut flow: "
            + ", ".join(
                f"{k}={v}"
                for k, v in cutflow.items()
                if k in ("events", "leptons_energy", "leptons_theta", "pairs", "pairs_mass")
            )
        )

    # unfolding weights (1/ε) and the like-sign subtraction weights: computed per chunk by
    # the processor (spec), whose report counts and sums are checked here; else here
    wcounts = {k: int(v) for k, v in result.get("report", {}).items()}
    wsums = result.get("sums", {})
    if spec is not None:
        rep = UnfoldReport(
            n_pairs, cutflow["pairs_outside_map"], wcounts.get("n_zero_efficiency", 0), em.source
        )
        check_unfoldable(rep, cfg.unfold.outside_map, em)
    else:
        inv, rep = inverse_weights(
            pairs["eff"].to_numpy(),
            n_outside=cutflow["pairs_outside_map"],
            on_missing=cfg.unfold.outside_map,
            em=em,
        )
    if rep.n_outside or rep.n_zero:
        log.warning(
            "%d pair(s) outside the efficiency map (%s) and %d at ε = 0 (weight 0) (%s)",
            rep.n_outside,
            "nearest bin's ε" if cfg.unfold.outside_map == "nearest" else "weight 0",
            rep.n_zero,
            rep.source,
        )
    axis = mass_axis(cfg)
    edges = np.asarray(axis.edges)
    # the like-sign estimate, from the whole sample's raw N++, N−− per mass bin: the same
    # k_b in comb_m and in the SS pairs' weights (chunk-local binwise weights carry −1 and
    # are multiplied by k_b here)
    raw_hists = result.get("hists")
    if raw_hists is None:
        raw_hists = raw_histograms(
            HistAxes.from_config(cfg), {c: pairs[c].to_numpy() for c in ("m", "pT", "E", "charge")}
        )
    ls_est = like_sign(cfg, raw_hists)
    if cfg.background.r_factor == "mixed":
        r_mix, r_half = mixed_r(raw_hists)
    if (
        ls_est.ratio_all == 0.0
        and ls_est.factor.size
        and (raw_hists["pp_m"].sum().value + raw_hists["mm_m"].sum().value > 0)
    ):
        log.warning(
            "like-sign subtraction: only one like-sign charge class is present; the geometric "
            "mean 2R*sqrt(N++ N--) is 0 and nothing is subtracted"
        )
    rescaled = None
    bkg = cfg.background
    if spec is not None and (bkg.ss_weight == "binwise" or bkg.r_factor == "mixed"):
        # the chunks weighed SS pairs with −1 (WeightSpec): multiply by k_b
        if streamed is None:
            pairs["weight"] = rescale_like_sign(
                pairs["m"].to_numpy(),
                pairs["charge"].to_numpy(),
                pairs["weight"].to_numpy(),
                edges,
                ls_est.factor,
            )
            rescaled = unfolded_histograms(
                HistAxes.from_config(cfg),
                {c: pairs[c].to_numpy() for c in ("m", "qT", "E", "weight")},
            )
        else:
            streamed, rescaled = _rescale_streamed(
                Path(streamed), edges, ls_est.factor, HistAxes.from_config(cfg)
            )
    if spec is None:
        q = pairs["charge"].to_numpy()
        mvals = pairs["m"].to_numpy()
        ss_factor = pair_factors(mvals, q, edges, ls_est.factor)
    # geometric acceptance (full phase space): 1/A, 0 below unfold.min_acceptance (reported)
    acc_report: dict[str, Any] | None = None
    if am is not None and spec is not None:
        if cfg.unfold.outside_map == "error":
            check_acceptance_outside(am, wcounts.get("acc_n_outside", 0))
        arep = AcceptanceReport(
            source=am.source,
            min_acceptance=float(cfg.unfold.min_acceptance),
            n_pairs=wcounts.get("acc_n_pairs", 0),
            n_outside=wcounts.get("acc_n_outside", 0),
            n_below_min=wcounts.get("acc_n_below_min", 0),
            n_below_min_os=wcounts.get("acc_n_below_min_os", 0),
            n_below_min_ss=wcounts.get("acc_n_below_min_ss", 0),
            n_zero_acceptance=wcounts.get("acc_n_zero", 0),
        )
        arep.lost_fraction_pairs, arep.lost_fraction_pairs_err = lost_fraction_from_sums(
            *(float(wsums.get(k, 0.0)) for k in WEIGHT_SUMS)
        )
    elif am is not None:
        acc, inv_acc, arep = acceptance_weights(
            am,
            mvals,
            pairs["pT"].to_numpy(),
            min_acceptance=cfg.unfold.min_acceptance,
            on_missing=cfg.unfold.outside_map,
            pz=pairs["pz"].to_numpy(),
        )
        below = np.isfinite(acc) & (acc < cfg.unfold.min_acceptance)
        arep.n_below_min_os = int((below & (q == 0)).sum())
        arep.n_below_min_ss = int((below & (q != 0)).sum())
        kept_w = inv * inv_acc * ss_factor
        naive = below & (acc > 0)
        arep.lost_fraction_pairs, arep.lost_fraction_pairs_err = lost_fraction_from_pairs(
            kept_w[inv_acc > 0], (inv * ss_factor)[naive] / acc[naive]
        )
    if am is not None:
        overall, per_bin = lost_fraction_from_map(am, cfg.unfold.min_acceptance, edges)
        arep.lost_fraction_map = overall
        if per_bin is not None:
            arep.lost_fraction_map_per_mass_bin = {
                "edges": edges.tolist(),
                "values": [None if not np.isfinite(v) else v for v in per_bin],
            }
        if arep.n_below_min or arep.n_outside:
            log.warning(
                "%d of %d pair(s) (%d OS, %d SS) in (m, pT) bins with acceptance A < %g get "
                "weight 0 (%s); estimated lost fraction of the full-phase-space yield: %s "
                "(pairs), %s (map); %d pair(s) outside the map (%s)",
                arep.n_below_min,
                arep.n_pairs,
                arep.n_below_min_os,
                arep.n_below_min_ss,
                cfg.unfold.min_acceptance,
                am.source,
                "n/a"
                if arep.lost_fraction_pairs is None
                else f"{100 * arep.lost_fraction_pairs:.1f}%",
                "n/a" if arep.lost_fraction_map is None else f"{100 * arep.lost_fraction_map:.1f}%",
                arep.n_outside,
                "nearest bin's A" if cfg.unfold.outside_map == "nearest" else "weight 0",
            )
        acc_report = arep.as_dict()
    elif spec is None:
        acc, inv_acc = np.ones(len(pairs)), np.ones(len(pairs))
    if spec is None:
        pairs["acc"] = acc
        pairs["weight_raw"] = np.ones(len(pairs))
        pairs["weight"] = pairs["weight_raw"].to_numpy() * inv * inv_acc * ss_factor

    eta_report: dict[str, Any] = {"mode": cfg.background.remove_eta_mumu}
    if cfg.background.remove_eta_mumu == "truth":
        eta_report["pairs_removed"] = cutflow["pairs_eta_mumu_removed"]
    elif cfg.background.remove_eta_mumu == "rate":
        unf = np.histogram(mvals, bins=edges, weights=pairs["weight"].to_numpy())[0]
        peak, n_dal, n_mumu = eta_mumu_rate_peak(
            edges,
            unf,
            dalitz_window=tuple(cfg.background.eta_dalitz_window),
            sigma=cfg.background.eta_peak_sigma,
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(unf > 0, np.clip(1.0 - peak / unf, 0.0, None), 1.0)
        idx = np.clip(np.searchsorted(edges, mvals, side="right") - 1, 0, len(scale) - 1)
        old_w = pairs["weight"].to_numpy()
        pairs["weight"] = old_w * scale[idx]
        # predicted vs what the reweighting took out (less where a bin holds fewer than the
        # predicted peak, the scale clipped at 0, or a bin is empty)
        eta_report.update(
            n_eta_dalitz=n_dal,
            n_eta_mumu_predicted=n_mumu,
            n_eta_mumu_removed=float(np.sum(old_w - pairs["weight"].to_numpy())),
        )

    if rescaled is None and spec is not None:
        rescaled = result.get("unfolded")
    hists = fill_histograms(cfg, pairs, raw=raw_hists, unfolded=rescaled, estimate=ls_est)
    for name in ("unfolded_m", "unfolded_m_qT_E"):
        hists[name].name = f"unfolded, phase_space={phase_space}"
    bayes: dict[str, Any] = {"iterations": cfg.unfold.bayesian_iterations}
    if cfg.unfold.bayesian_iterations > 0:
        if not checked.truth_trees:
            raise ConfigError(
                "unfold.bayesian_iterations > 0 needs a response from a 'truth' tree "
                "(m_true vs m) in the input files; none has one"
            )
        truth = io.read_truth(checked.truth_trees, ("m", "m_true"))
        resp = response_matrix(np.asarray(truth["m_true"]), np.asarray(truth["m"]), edges)
        h = hists["unfolded_m"]
        eff_only = h.copy()
        n_it = cfg.unfold.bayesian_iterations
        values, variances = h.view()["value"].copy(), h.view()["variance"].copy()
        h.view()["value"] = bayesian_unfold(values, resp, n_it)
        h.view()["variance"] = bayesian_unfold_variance(values, variances, resp, n_it)
        hists["effcorr_m"] = eff_only
        bayes["note"] = "unfolded_m is resolution unfolded; effcorr_m is before it"

    counts = {
        "events": cutflow["events"],
        "os": cutflow["os"] if spec is not None else int((q == 0).sum()),
        "pp": cutflow["pp"] if spec is not None else int((q == 2).sum()),
        "mm": cutflow["mm"] if spec is not None else int((q == -2).sum()),
        "comb_estimate": float(hists["comb_m"].values().sum()),
        "comb_estimate_err": float(np.sqrt(hists["comb_m"].variances().sum())),
        "signal": float(hists["signal_m"].values().sum()),
        "signal_err": float(np.sqrt(hists["signal_m"].variances().sum())),
        "unfolded": float(hists["unfolded_m"].values().sum()),
        "unfolded_err": float(np.sqrt(hists["unfolded_m"].variances().sum())),
    }
    meta = make_meta(
        config_sha256=cfg.section_sha256("input", "selection", "background", "unfold"),
        seed=None,
        inputs=files_used,
        stage="select",
        config_sha256_full=cfg.sha256,
        executor=executor,
        scheduler=scheduler,
        layout=cfg.input.layout,
        branches=checked.branches.all,
        weight_convention=(
            "OS: weight = weight_raw/(acc*eff); SS: weight = -R*weight_raw/(acc*eff) "
            "(ss_weight=constant) or -2R*sqrt(N++N--)/(N++ + N--) of the mass bin, N++ and "
            "N-- summed over neighbouring bins where a bin has fewer than "
            "background.min_like_sign of a sign, * weight_raw/(acc*eff) (binwise); the same "
            "factor in comb_m; acc = 1 without an acceptance (unfold.acceptance_map or the "
            "per-pair A(m, q) of unfold.lepton_acceptance); weight 0 "
            "below unfold.min_acceptance; sum(weight) = background-subtracted, unfolded yield "
            "(phase_space)"
        ),
        r_factor=cfg.background.r_factor,
        ss_weight=cfg.background.ss_weight,
        min_like_sign=cfg.background.min_like_sign,
        phase_space=phase_space,
    )
    polarisation = (
        _measure_polarisation(cfg, am, pairs, streamed, polarisation_used)
        if phase_space == PHASE_SPACE_FIDUCIAL
        else None
    )
    doc = {
        "meta": meta,
        "counts": counts,
        "cutflow": cutflow,
        "unfold": {
            **rep.as_dict(),
            "phase_space": phase_space,
            "acceptance": acc_report,
            "fiducial": (
                {"min_acceptance": float(cfg.unfold.min_acceptance), **am.as_dict()}
                if phase_space == "fiducial"
                else None
            ),
            "bayesian": bayes,
        },
        "eta_mumu": eta_report,
        "background": {
            **ls_est.report(),
            "ss_weight": cfg.background.ss_weight,
            "r_factor": cfg.background.r_factor,
            "r_factor_source": "mixed events" if bkg.r_factor == "mixed" else "configured",
            **(
                {
                    "mixing_depth": bkg.mixing_depth,
                    "r_per_mass_bin": {"edges": edges.tolist(), "values": r_mix.tolist()},
                    "r_half_window": r_half.tolist(),
                    "mixed_pairs": {
                        c: int(raw_hists[f"mix_{c}_m"].values().sum()) for c in ("os", "pp", "mm")
                    },
                }
                if bkg.r_factor == "mixed"
                else {}
            ),
            "min_like_sign": cfg.background.min_like_sign,
            "comb_estimate": counts["comb_estimate"],
        },
        "polarisation": polarisation,
        "bad_files": bad_files,
        "entries": {p: n for p, n in checked.entries.items() if p in files_used},
        "elapsed_s": time.perf_counter() - t0,
    }

    # write: everything computed above, so nothing half-written on a user error; the three
    # files as one set, select.json (the mark of a finished run) renamed into place last
    t_post = time.perf_counter()
    with atomic_paths([outdir / n for n in OUTPUT_FILES], force) as (pq_tmp, h_tmp, js_tmp):
        if streamed is not None:  # written while the chunks were processed
            os.chmod(streamed, os.stat(pq_tmp).st_mode & 0o7777)  # same mode as any output
            os.unlink(pq_tmp)  # our empty placeholder: rename onto a free name
            os.replace(streamed, pq_tmp)
        else:
            _write_parquet(pq_tmp, pairs)
        with uproot.recreate(h_tmp) as f:
            for name, h in hists.items():
                f[name] = h
            f["phase_space"] = phase_space
            f[rundir.HISTOGRAMS_META] = json_text(meta)  # its schema version
        doc["timings_s"] = {
            "check_inputs": t_checked - t0,
            "process": t_processed - t_checked,
            "postprocess": t_post - t_processed,
            "write_data": time.perf_counter() - t_post,
        }
        js_tmp.write_text(rundir.RunDir(outdir).json_text(rundir.SELECT, doc))  # schema-checked
    log.info(
        "select: %d OS, %d ++, %d -- pairs → %s", counts["os"], counts["pp"], counts["mm"], outdir
    )
    return SelectResult(
        output_dir=outdir,
        _pairs=pairs,
        histograms=hists,
        cutflow=cutflow,
        counts=counts,
        unfold=doc["unfold"],
        bad_files=bad_files,
        meta=meta,
        files={n: outdir / n for n in OUTPUT_FILES},
    )


__all__ = [
    "Cuts",
    "HistAxes",
    "SelectResult",
    "WeightSpec",
    "fill_histograms",
    "like_sign",
    "make_leptons",
    "mass_axis",
    "raw_histograms",
    "rescale_like_sign",
    "select",
    "select_chunk",
    "unfolded_histograms",
    "weight_chunk",
]


# ``gammastar.select(config, ...)`` runs the stage (gammastar._api).
_make_callable(__name__, "select")
