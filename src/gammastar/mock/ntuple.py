"""The mock ntuple's contents, written chunk by chunk (the "Mock ntuple" contract of
DEVELOPERS.md): the columns of the ``events`` tree (jagged lepton records and the true γ*),
of the truth trees (``truth``, ``truth_ee``) and of ``truth_generated``, and
:class:`NtupleWriter`, which appends them to the open ROOT file with uproot's
``mktree``/``extend`` and writes the histograms, a PYTHIA mock's meson pool
(:data:`~gammastar.mock.pythia.POOL_TREE`) and ``meta`` at the end.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from gammastar.cocktail_channels import ELECTRON_CHANNELS, Channel
from gammastar.corrections.polarisation.angles import helicity_angles
from gammastar.mock.acceptance import (
    EE_ACCEPTANCE_MASS_EDGES,
    EE_GSTAR,
    MUON_GSTAR,
    AcceptanceAccumulator,
)
from gammastar.mock.ee_maps import (
    CONVERSION_TEMPLATE_STREAM,
    conversion_template,
    lepton_acceptance_ee,
)
from gammastar.mock.generator import Chunk, MockGenerator
from gammastar.mock.pythia import POOL_TREE, PythiaMesons


def _interleave(a: np.ndarray, b: np.ndarray, dtype) -> np.ndarray:
    flat = np.empty(2 * a.size, dtype=dtype)
    flat[0::2] = a
    flat[1::2] = b
    return flat


def _lepton_list(chunk: Chunk, keep: np.ndarray, flavour: np.ndarray, f32=np.float32):
    """Jagged lepton record (px, py, pz, E, charge, parent) of the kept events: the two
    leptons of the events where ``flavour`` is true, none elsewhere; momenta of type ``f32``
    (electrons: float64, since E² − p² of a 10 MeV pair at 40 GeV is 10⁻⁸ of E², below the
    float32 precision)."""
    import awkward as ak

    s, r = chunk.sources, chunk.reco
    sel = keep & flavour
    mu1, mu2 = r.mu1[:, sel], r.mu2[:, sel]
    fields_ = {
        "px": _interleave(mu1[0], mu2[0], f32),
        "py": _interleave(mu1[1], mu2[1], f32),
        "pz": _interleave(mu1[2], mu2[2], f32),
        "E": _interleave(mu1[3], mu2[3], f32),
        "charge": _interleave(s.charge1[sel], s.charge2[sel], np.int32),
        "parent": _interleave(s.parent1[sel], s.parent2[sel], np.int32),
    }
    record = ak.contents.RecordArray(
        [ak.contents.NumpyArray(v) for v in fields_.values()], list(fields_)
    )
    counts = 2 * flavour[keep].astype(np.int64)
    offsets = ak.index.Index64(np.concatenate([[0], np.cumsum(counts)]))
    return ak.Array(ak.contents.ListOffsetArray(offsets, record))


def _event_arrays(chunk: Chunk, leptons: tuple[str, ...] = ("mu",)) -> dict[str, Any]:
    keep = chunk.reco.accepted
    s = chunk.sources
    f32 = np.float32
    is_e = np.isin(s.channel, [int(c) for c in ELECTRON_CHANNELS])
    out: dict[str, Any] = {"event": chunk.event[keep]}
    if "mu" in leptons:
        out["muon"] = _lepton_list(chunk, keep, ~is_e)
    if "e" in leptons:
        out["electron"] = _lepton_list(chunk, keep, is_e, np.float64)
    g = s.gstar[:, keep].astype(f32)
    out.update(
        {
            "truth_channel": s.channel[keep],
            "truth_parent_pdgid": s.parent_pdgid[keep],
            "truth_gstar_px": g[0],
            "truth_gstar_py": g[1],
            "truth_gstar_pz": g[2],
            "truth_gstar_E": g[3],
            "truth_gstar_m": g[4],
        }
    )
    return out


MUON_TRUTH = MUON_GSTAR | {int(Channel.ETA_MUMU)}
"""Channel codes of the ``truth`` and ``truth_generated`` trees: the muon signal sources (every
cocktail channel, η → μμ included)."""


def _plus_minus(a: np.ndarray, b: np.ndarray, plus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The four-momenta (4, n) of the positive and of the negative lepton of pairs (a, b)."""
    return np.where(plus, a, b), np.where(plus, b, a)


def _true_gstar(
    chunk: Chunk, sel: np.ndarray
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """The ``*_true`` columns of the sources ``sel`` (the true γ* and the true μ+'s decay angles
    in its helicity frame, float32) and the true μ+ and μ− four-momenta."""

    s = chunk.sources
    tp, tm = _plus_minus(s.mu1[:, sel], s.mu2[:, sel], s.charge1[sel] > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos_true, phi_true = helicity_angles(tp, tm)
    g = s.gstar[:, sel]
    f32 = np.float32
    cols = {"m_true": g[4].astype(f32), "pT_true": np.hypot(g[0], g[1]).astype(f32),
            "pz_true": g[2].astype(f32), "cos_theta_hel_true": cos_true.astype(f32),
            "phi_hel_true": phi_true.astype(f32)}  # fmt: skip
    return cols, tp, tm


def _truth_arrays(chunk: Chunk, codes: frozenset[int] | None = None) -> dict[str, np.ndarray]:
    s, r = chunk.sources, chunk.reco
    sel = r.in_acceptance & np.isin(s.channel, list(MUON_TRUTH if codes is None else codes))
    f32 = np.float32
    pt = r.pt[sel].astype(f32)
    # the reconstructed μ+'s decay angles in the pair's helicity frame, as the selection
    # computes them (lepton 1 the positive one): the λ_θ selection correction's simulation

    with np.errstate(invalid="ignore", divide="ignore"):
        cos_t, phi = helicity_angles(*_plus_minus(r.mu1[:, sel], r.mu2[:, sel],
                                                  s.charge1[sel] > 0))  # fmt: skip
    true, _, _ = _true_gstar(chunk, sel)
    return {
        "event": chunk.event[sel],
        "channel": s.channel[sel],
        "m": r.m[sel].astype(f32),
        "pT": pt,
        "qT": pt,
        "pz": r.pair[2, sel].astype(f32),
        "E": r.pair[3, sel].astype(f32),
        "cos_theta_hel": cos_t.astype(f32),
        "phi_hel": phi.astype(f32),
        "pT_true": true["pT_true"],
        "pz_true": true["pz_true"],
        "cos_theta_hel_true": true["cos_theta_hel_true"],
        "phi_hel_true": true["phi_hel_true"],
        "y": r.y[sel].astype(f32),
        "m_true": true["m_true"],
        "eff": r.eff[sel].astype(f32),
        "accepted": r.accepted[sel],
    }


def _generated_arrays(chunk: Chunk, detector: Any) -> dict[str, np.ndarray]:
    """The ``truth_generated`` tree's rows: every muon γ* source (the ``truth`` tree's channels)
    whose two true muons pass the spectrometer's cuts at their true momenta
    (:meth:`~gammastar.mock.detector.Detector.passes`), reconstructed or not: the generator-level
    sample in which the λ_θ selection correction fits its truth side
    (:mod:`gammastar.corrections.lambda_correction`). True γ* kinematics and decay angles (as the ``truth``
    tree's ``*_true``) and each muon's true energy and polar angle. With
    ``mock.detector.toroid_pt_kick`` the window applies to the bent angle θ′, which the analysis's
    lepton cuts (at θ) do not model: the tree is then no generator level for them."""
    s = chunk.sources
    sel = np.isin(s.channel, list(MUON_TRUTH))
    sel &= detector.passes(s.mu1, s.charge1) & detector.passes(s.mu2, s.charge2)
    true, tp, tm = _true_gstar(chunk, sel)
    f32 = np.float32
    return {
        "event": chunk.event[sel],
        "channel": s.channel[sel],
        **true,
        "E_plus_true": tp[3].astype(f32),
        "theta_plus_true": np.arctan2(np.hypot(tp[0], tp[1]), tp[2]).astype(f32),
        "E_minus_true": tm[3].astype(f32),
        "theta_minus_true": np.arctan2(np.hypot(tm[0], tm[1]), tm[2]).astype(f32),
    }


GENERATED_TREE = "truth_generated"
"""The generator-level tree of the muon γ* inside the spectrometer at their truth
(:func:`_generated_arrays`)."""


_LISTS = ("muon", "electron")

POOL_BASKET = 1 << 20
"""Mesons per basket of the meson-pool tree (bounded baskets for a large pool)."""


@dataclass
class _Flavour:
    """One signal flavour's truth tree and acceptance map."""

    tree: str
    """The truth tree (``truth``, ``truth_ee``)."""
    codes: Any
    """The signal channels' codes (``None``: the muon cocktail's)."""
    acceptance: AcceptanceAccumulator
    suffix: str
    """The acceptance histograms' name suffix."""
    rows: int = 0
    """Entries written to ``tree``."""


class NtupleWriter:
    """The mock ntuple's trees, filled chunk by chunk: ``events``, a truth tree per flavour
    (with its acceptance map), ``truth_generated`` (muons); then the histograms and ``meta``.

    Arguments:
        f: the open uproot file.
        gen: the generator.
    """

    def __init__(self, f: Any, gen: MockGenerator) -> None:
        self.f, self.gen, cfg = f, gen, gen.cfg
        self.leptons = tuple(cfg.leptons)
        self.flavours: list[_Flavour] = []
        if gen.muons:
            acc_mu = AcceptanceAccumulator(cfg, y_edges=cfg.acceptance_y_edges)
            self.flavours.append(_Flavour("truth", None, acc_mu, ""))
        if gen.electrons:
            acc_ee = AcceptanceAccumulator(cfg, EE_GSTAR, list(EE_ACCEPTANCE_MASS_EDGES))
            self.flavours.append(_Flavour("truth_ee", EE_GSTAR, acc_ee, "_ee"))
        self.trees: dict[str, Any] = {}
        self.n_generated = dict.fromkeys(gen.classes, 0)
        self.n_written = self.n_generated_rows = 0

    def _extend(self, name: str, arrays: dict[str, Any], title: str, types: Any = None) -> int:
        """Append ``arrays`` to the tree ``name`` (made at its first chunk); their length."""
        if name not in self.trees:
            types = types or {k: v.dtype for k, v in arrays.items()}
            self.trees[name] = self.f.mktree(name, types, title=title)
        if len(arrays["event"]):
            self.trees[name].extend(arrays)
        return len(arrays["event"])

    def add(self, chunk: Chunk) -> None:
        """One chunk's counts, events, truth rows and acceptance entries."""
        for k, v in chunk.counts.items():
            self.n_generated[k] += v
        ev = _event_arrays(chunk, self.leptons)
        types = {k: (v.type if k in _LISTS else v.dtype) for k, v in ev.items()}
        self.n_written += self._extend("events", ev, "gammastar NA60-like mock events", types)
        del ev
        for fl in self.flavours:
            fl.acceptance.add(chunk)
            tr = _truth_arrays(chunk, fl.codes)
            fl.rows += self._extend(fl.tree, tr, "signal sources in the kinematic acceptance")
        if self.gen.muons:
            gt = _generated_arrays(chunk, self.gen.detector)
            title = "muon signal sources whose true muons pass the spectrometer"
            self.n_generated_rows += self._extend(GENERATED_TREE, gt, title)

    @property
    def n_truth(self) -> int:
        """Entries of the muon ``truth`` tree (0 without muons)."""
        return next((fl.rows for fl in self.flavours if fl.tree == "truth"), 0)

    def _electron_meta(self) -> dict[str, Any]:
        """``meta``'s electron entries: truth rows, acceptance map, conversion template."""
        gen = self.gen
        if not gen.electrons:
            return {}
        out: dict[str, Any] = {"n_truth_ee": self.flavours[-1].rows}
        out["acceptance_map_ee"] = self.flavours[-1].acceptance.summary()
        bg = gen.ee_backgrounds  # set with the electrons
        if bg is not None and bg.conversion_weight > 0.0:
            out["conversion_template"] = {
                "histogram": "conversion_ratio_ee",
                "sources": int(gen.cfg.electrons.conversion_template_sources),
                "seed_sequence": [gen.seed, CONVERSION_TEMPLATE_STREAM],
            }
        return out

    def _write_pool(self) -> dict[str, Any]:
        """A PYTHIA mock's meson pool as the tree :data:`~gammastar.mock.pythia.POOL_TREE` (in
        baskets of :data:`POOL_BASKET` mesons); its ``meta.meson_pool`` entry ({} without)."""
        mesons = self.gen.mesons
        if not isinstance(mesons, PythiaMesons):
            return {}
        arrays = mesons.pool.arrays()
        tree = self.f.mktree(POOL_TREE, {k: v.dtype for k, v in arrays.items()},
                             title="PYTHIA meson pool: lab pT and rapidity per species")  # fmt: skip
        for start in range(0, arrays["pt"].size, POOL_BASKET):
            tree.extend({k: v[start : start + POOL_BASKET] for k, v in arrays.items()})
        return {"meson_pool": mesons.pool.describe()}

    def finish(self, events: int, chunk_size: int) -> dict[str, Any]:
        """Write the histograms and ``meta`` (the generation's ``events`` and ``chunk_size``);
        returns ``meta``."""
        gen = self.gen
        meta = gen.meta(
            self.n_generated,
            n_events_written=self.n_written,
            n_truth=self.n_truth,
            **({"n_truth_generated": self.n_generated_rows} if gen.muons else {}),
            n_generated_total=int(sum(self.n_generated.values())),
            events=events,
            chunk_size=chunk_size,
            acceptance_map=self.flavours[0].acceptance.summary() if gen.muons else None,
            **self._electron_meta(),
            **self._write_pool(),
        )
        for fl in self.flavours:
            for name, h in fl.acceptance.histograms().items():
                self.f[name + fl.suffix] = h
        lepton_map = lepton_acceptance_ee(gen)
        if lepton_map is not None:
            self.f["lepton_acceptance_ee"] = lepton_map
        template = conversion_template(gen)
        if template is not None:
            self.f["conversion_ratio_ee"] = template
        self.f["meta"] = json.dumps(meta, sort_keys=True, allow_nan=False, default=str)
        return meta
