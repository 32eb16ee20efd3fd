"""Generate an NA60-like mock ntuple: cocktail + combinatorial, detector, ROOT output.

The file layout is the "Mock ntuple" contract of DEVELOPERS.md (TTree ``events``, TTree
``truth``, TObjString ``meta``). Generation is vectorised and chunked: ``chunk_size`` sources
are generated, passed through the detector and appended to the trees with uproot's
``mktree``/``extend``, so memory stays bounded whatever the number of events.

Random numbers: ``numpy.random.SeedSequence(seed)`` spawns one stream for the pilot run
and one per chunk, so a given (seed, chunk_size) always gives the same file contents.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from gammastar.channels import ELECTRON_CHANNELS, Channel
from gammastar.config import AnalysisConfig
from gammastar.config.mock import MockConfig
from gammastar.core.artifacts import atomic_path, make_meta, sha256_file
from gammastar.core.results import StageResult
from gammastar.corrections.polarisation import angular_functions, helicity_angles
from gammastar.corrections.unfold import load_efficiency_map
from gammastar.errors import GammastarError
from gammastar.mock.cocktail import EE_CHANNELS, Cocktail, MesonSource, ParametricMesons, Sources
from gammastar.mock.combinatorial import Combinatorial
from gammastar.mock.detector import Detector, Reconstructed, resolve_efficiency_map
from gammastar.mock.electrons import ElectronBackgrounds, ElectronDetector
from gammastar.physics import pdgdata
from gammastar.physics.kinematics import rapidity
from gammastar.physics.target import interaction_probability

GENERATOR_NAME = "gammastar.mock/parametric"
PYTHIA_GENERATOR = "gammastar.mock/pythia"
"""``meta.generator`` of a file whose mesons come from PYTHIA 8 (``mock.backend: pythia``)."""


@dataclass(frozen=True, kw_only=True)
class GenerateResult(StageResult):
    """What :func:`generate_file` wrote: the mock ntuple (``path``; not JSON, so no
    ``document``) and its counts."""

    n_events_written: int
    """Entries of the ``events`` tree (recorded events with two muons)."""
    n_generated: dict[str, int]
    """Generated sources per channel (``Channel`` names, e.g. ``"ETA_DALITZ"``)."""
    n_pot: float
    """Equivalent protons on target of the generated cocktail."""
    meta: dict[str, Any]
    n_truth: int = 0
    """Entries of the ``truth`` tree."""
    seconds: float = 0.0
    """Wall time of the generation and writing."""


@dataclass
class Chunk:
    """One generated chunk: sources, their detector view and event numbers."""

    event: np.ndarray
    sources: Sources
    reco: Reconstructed
    counts: dict[Channel, int] = field(default_factory=dict)


class MockGenerator:
    """The whole generator (cocktail, combinatorial, detector) for one analysis config.

    Arguments:
        config: the analysis config (its ``mock`` section; ``beam`` for the normalisation).
        seed: the random seed (default: ``config.seed``).
        progress: show a progress bar while PYTHIA runs (``mock.backend: pythia``).
        mesons: a meson source already built (a PYTHIA pool shared with a truth study);
            default: that of ``mock.backend``.
    """

    def __init__(
        self,
        config: AnalysisConfig,
        seed: int | None = None,
        progress: bool = False,
        mesons: MesonSource | None = None,
    ) -> None:
        self.config = config
        self.cfg: MockConfig = config.mock or MockConfig()
        self.seed = int(config.seed if seed is None else seed)
        if self.seed < 0:
            raise GammastarError(f"--seed must be a non-negative integer, got {self.seed}")
        self.efficiency_path = resolve_efficiency_map(config)
        eff = load_efficiency_map(self.efficiency_path, key="mock.efficiency_map")  # None: ε = 1
        # the Gaussian rapidity truncated at the kinematic limit E ≤ beam.energy, on request
        e_max = config.beam.energy if self.cfg.kinematic_limit else None
        self.mesons: MesonSource = ParametricMesons(self.cfg, e_max)
        """The mesons' multiplicities and kinematics (``mock.backend``)."""
        if mesons is not None:
            self.mesons = mesons
        elif self.cfg.backend == "pythia":
            self.mesons = _pythia_mesons(config, self.seed, progress)
        self.cocktail = Cocktail(self.cfg, beam_energy=e_max, mesons=self.mesons)
        self.combinatorial = Combinatorial(self.cfg, beam_energy=e_max)
        # the scattering model calibrates its absorber on the cocktail's meson spectra
        # the parametric spectra made here follow from the mock config and the kinematic
        # limit alone
        own = mesons is None and self.cfg.backend != "pythia"
        key = f"{self.cfg.model_dump_json()}|{e_max}" if own else None
        self.detector = Detector(self.cfg.detector, eff, parents=self.cocktail._parents,
                                 spectra_key=key)  # fmt: skip
        self.muons = "mu" in self.cfg.leptons
        self.electrons = "e" in self.cfg.leptons
        self.prescale = {"mu": 1.0, "e": float(self.cfg.electrons.prescale)}
        """Trigger prescale per flavour (``mock.electrons.prescale``; the muons' is 1)."""
        self.classes: list[Channel] = []
        if self.muons:
            self.classes += [s.channel for s in self.cocktail.specs] + [Channel.COMBINATORIAL]
        pilot_ss, self._chunk_ss = np.random.SeedSequence(self.seed).spawn(2)
        self.pilot = self._pilot(np.random.default_rng(pilot_ss)) if self.muons else {}
        parts, block = [], []
        if self.muons:
            p_comb = self.pilot["combinatorial_generation_fraction"]
            parts.append(np.concatenate([(1.0 - p_comb) * self.cocktail.probabilities, [p_comb]]))
            block.append(self.cocktail.weights.sum() / (1.0 - p_comb))
        self.ee_cocktail = self.ee_backgrounds = self.ee_detector = None
        if self.electrons:
            # the dielectron block: cocktail, conversions, combinatorial (docs/explanation/physics.md: same N_POT)
            self.ee_cocktail = Cocktail(
                self.cfg, beam_energy=e_max, specs=EE_CHANNELS, mesons=self.mesons
            )
            self.ee_backgrounds = ElectronBackgrounds(self.cfg, e_max, self.mesons)
            self.ee_detector = ElectronDetector(self.cfg.electrons.detector)
            self.classes += [s.channel for s in EE_CHANNELS]
            self.classes += [Channel.CONVERSION, Channel.COMBINATORIAL_EE]
            w = np.append(self.ee_cocktail.weights, self.ee_backgrounds.conversion_weight)
            q = self.cfg.electrons.combinatorial_fraction
            parts.append(np.append((1.0 - q) * w / w.sum(), q))
            # the dielectron trigger's prescale: its sources of 1/k of the collisions
            block.append(w.sum() / (1.0 - q) / self.prescale["e"])
        if len(parts) == 1:
            self.probabilities = parts[0]
        else:  # each flavour's block in proportion to its sources per collision
            frac = np.asarray(block) / np.sum(block)
            probs = np.concatenate([f * p for f, p in zip(frac, parts, strict=True)])
            self.probabilities = probs / probs.sum()

    # ------------------------------------------------------------------ sources
    def sources(self, rng: np.random.Generator, counts: np.ndarray) -> Sources:
        """Generate ``counts[i]`` sources of class ``self.classes[i]``."""
        parts = []
        for spec, n in zip(self.cocktail.specs, counts[:-1], strict=True):
            if n:
                parts.append(self.cocktail.generate(rng, spec, int(n)))
        if counts[-1]:
            parts.append(self.combinatorial.generate(rng, int(counts[-1])))
        if not parts:
            parts.append(self.combinatorial.generate(rng, 0))
        return Sources.concatenate(parts)

    def ee_sources(self, rng: np.random.Generator, counts: np.ndarray) -> Sources:
        """Dielectron sources: ``counts`` per :data:`EE_CHANNELS`, conversion, combinatorial."""
        parts = []
        for spec, n in zip(EE_CHANNELS, counts[:-2], strict=True):
            if n:
                parts.append(self.ee_cocktail.generate(rng, spec, int(n)))
        parts.append(self.ee_backgrounds.conversions(rng, int(counts[-2])))
        parts.append(self.ee_backgrounds.combinatorial(rng, int(counts[-1])))
        return Sources.concatenate(parts)

    def reconstruct(self, rng: np.random.Generator, counts: np.ndarray):
        """Sources of ``counts`` (order of ``classes``) and their detector view: the muon block
        through :class:`Detector`, then the dielectron block through :class:`ElectronDetector`."""
        k = len(self.cocktail.specs) + 1 if self.muons else 0
        src, reco = [], []
        if self.muons:
            src.append(self.sources(rng, counts[:k]))
            reco.append(self.detector.apply(rng, src[-1]))
        if self.electrons:
            src.append(self.ee_sources(rng, counts[k:]))
            reco.append(self.ee_detector.apply(rng, src[-1]))
        if len(src) == 1:
            return src[0], reco[0]
        return Sources.concatenate(src), _concat_reco(reco)

    def _pilot(self, rng: np.random.Generator) -> dict[str, Any]:
        """Acceptances that fix the combinatorial rate (docs/explanation/physics.md §3.4; deterministic)."""
        c = self.cfg.combinatorial
        n = c.pilot_events
        probs = self.cocktail.probabilities
        counts = np.concatenate([rng.multinomial(n, probs), [0]])
        reco = self.detector.apply(rng, self.sources(rng, counts))
        acc_cocktail = float(reco.accepted.mean())
        out = {
            "pilot_events": n,
            "cocktail_acceptance": acc_cocktail,
            "combinatorial_os_acceptance": None,
            "combinatorial_to_cocktail": 0.0,
            "combinatorial_generation_fraction": 0.0,
        }
        if c.os_fraction == 0:
            return out
        src = self.combinatorial.generate(rng, n)
        reco = self.detector.apply(rng, src)
        os_ = src.charge1 != src.charge2
        acc_comb_os = float((reco.accepted & os_).mean())
        if acc_comb_os == 0 or acc_cocktail == 0:
            raise GammastarError(
                "mock.combinatorial: the pilot run recorded no "
                f"{'cocktail' if acc_cocktail == 0 else 'combinatorial OS'} pairs; "
                "increase mock.combinatorial.pilot_events or widen the detector window"
            )
        ratio = c.os_fraction / (1.0 - c.os_fraction) * acc_cocktail / acc_comb_os
        out.update(
            combinatorial_os_acceptance=acc_comb_os,
            combinatorial_to_cocktail=ratio,
            combinatorial_generation_fraction=ratio / (1.0 + ratio),
        )
        return out

    def chunks(self, events: int, chunk_size: int | None = None) -> Iterator[Chunk]:
        """Generate ``events`` sources in chunks."""
        size = int(chunk_size or self.cfg.chunk_size)
        n_chunks = max(1, -(-events // size))
        for i, ss in enumerate(self._chunk_ss.spawn(n_chunks)):
            rng = np.random.default_rng(ss)
            start = i * size
            n = min(size, events - start)
            counts = rng.multinomial(n, self.probabilities)
            src, reco = self.reconstruct(rng, counts)
            event = np.arange(start, start + n, dtype=np.int64)
            yield Chunk(event, src, reco, dict(zip(self.classes, counts.tolist(), strict=True)))

    def conversion_template(self, n: int | None = None) -> Any:
        """The conversion template ``conversion_ratio_ee``: R(m, pT) = recorded conversion
        pairs / recorded γ* pairs per cell of reconstructed mass (:data:`CONVERSION_TEMPLATE_AXIS`)
        and pair pT (``mock.acceptance_pt_edges``, the acceptance map's: inside a cell the
        conversion and γ* pairs then share their 1/A), from a separate simulation of ``n``
        dielectron sources (cocktail and conversions at their rates per collision, no
        combinatorial; default ``mock.electrons.conversion_template_sources``) through the
        electron detector, on its own random stream (the data's events are not used: the
        experiment's simulation of its material). Variances R²(1/N_conv + 1/N_γ*); R = 0
        where no γ* pair was simulated.

        Returns:
            A 2-D ``hist.Hist`` (Weight storage), or ``None`` without electrons, conversions
            or with ``n`` = 0.
        """
        import hist

        n = self.cfg.electrons.conversion_template_sources if n is None else int(n)
        if not self.electrons or self.ee_backgrounds.conversion_weight == 0.0 or n <= 0:
            return None
        w = np.append(self.ee_cocktail.weights, self.ee_backgrounds.conversion_weight)
        nb, lo, hi = CONVERSION_TEMPLATE_AXIS
        m_edges = np.linspace(lo, hi, nb + 1)
        pt_edges = np.asarray(self.cfg.acceptance_pt_edges, dtype=np.float64)
        conv = np.zeros((nb, len(pt_edges) - 1))
        gstar = np.zeros_like(conv)
        size = int(self.cfg.chunk_size)
        ss = np.random.SeedSequence([self.seed, CONVERSION_TEMPLATE_STREAM])
        for i, child in enumerate(ss.spawn(max(1, -(-n // size)))):
            rng = np.random.default_rng(child)
            counts = np.append(rng.multinomial(min(size, n - i * size), w / w.sum()), 0)
            src = self.ee_sources(rng, counts)
            reco = self.ee_detector.apply(rng, src)
            ok = reco.accepted
            for out, sel in (
                (conv, ok & (src.channel == int(Channel.CONVERSION))),
                (gstar, ok & np.isin(src.channel, list(EE_GSTAR))),
            ):
                out += np.histogram2d(reco.m[sel], reco.pt[sel], (m_edges, pt_edges))[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(gstar > 0, conv / gstar, 0.0)
            var = np.where((gstar > 0) & (conv > 0), r**2 * (1.0 / conv + 1.0 / gstar), 0.0)
        h = hist.Hist(
            hist.axis.Regular(nb, lo, hi, name="m", label="m [GeV]"),
            hist.axis.Variable(pt_edges, name="pT", label="p_T [GeV]"),
            storage=hist.storage.Weight(),
            name="conversion template: recorded conversion / gamma* ee pairs per (m, pT) cell",
        )
        h.view()["value"] = r
        h.view()["variance"] = var
        return h

    def lepton_acceptance_ee(self, n_per_bin: int = 5_000) -> Any:
        """``lepton_acceptance_ee``: the electron arm's single-electron acceptance in (true p,
        true θ) (:meth:`~gammastar.mock.electrons.ElectronDetector.lepton_acceptance`;
        :data:`LEPTON_MAP_P_EDGES`, θ edges 0, θ_min, θ_max, π), on its own random stream.

        Returns:
            A 2-D ``hist.Hist`` (Weight storage), or ``None`` without electrons.
        """
        import hist

        if not self.electrons:
            return None
        c = self.cfg.electrons.detector
        p_edges = np.geomspace(*LEPTON_MAP_P_EDGES)
        t_edges = np.array([0.0, c.theta_min, c.theta_max, np.pi])
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, LEPTON_MAP_STREAM]))
        prob, var = self.ee_detector.lepton_acceptance(rng, p_edges, t_edges, n_per_bin)
        h = hist.Hist(
            hist.axis.Variable(p_edges, name="p", label="p [GeV]"),
            hist.axis.Variable(t_edges, name="theta", label="theta [rad]"),
            storage=hist.storage.Weight(),
            name="single-electron acceptance (radiation, resolution, E and angle cuts)",
        )
        h.view()["value"] = prob
        h.view()["variance"] = var
        return h

    # ------------------------------------------------------------------ normalisation
    def sources_per_collision(self) -> float:
        """Σ_m ⟨n_m⟩ BR_m over the generated flavours' cocktails (dielectrons: with the
        conversions, divided by their prescale ``mock.electrons.prescale``: the recorded
        sources per inelastic collision)."""
        out = self.cocktail.mesons_per_collision() if self.muons else 0.0
        if self.electrons:
            ee = self.ee_cocktail.mesons_per_collision()
            ee += self.mesons.n_omega_per_collision * self.ee_backgrounds.conversion_weight
            out += ee / self.prescale["e"]
        return out

    def n_pot(self, n_cocktail: int) -> float:
        """Equivalent POT of the run: N_cocktail / (P_int(L) × Σ_m ⟨n_m⟩ BR_m), with
        P_int(L) = 1 − e^{−L} (:func:`gammastar.physics.target.interaction_probability`, the
        formula the reach's ``yield_scale`` uses) and L = ``beam.interaction_lengths``;
        N_cocktail: every generated source but the combinatorial ones; the sum
        :meth:`sources_per_collision` (a prescaled flavour's sources count 1/k)."""
        p_int = interaction_probability(self.config.beam.interaction_lengths)
        return n_cocktail / (p_int * self.sources_per_collision())

    def n_pot_by_flavour(self, n_cocktail: int) -> dict[str, float]:
        """Each generated flavour's effective N_POT: the run's :meth:`n_pot` divided by the
        flavour's prescale (N_POT / k for ``e`` with ``mock.electrons.prescale`` k)."""
        n = self.n_pot(n_cocktail)
        return {f: n / self.prescale[f] for f in self.cfg.leptons}

    def meta(self, n_generated: dict[Channel, int], **extra: Any) -> dict[str, Any]:
        """The ``meta`` JSON of the file."""
        n_cocktail = sum(v for k, v in n_generated.items() if k not in _COMBINATORIAL)
        cfg = self.cfg
        if self.electrons:
            ee = self.ee_cocktail
            extra.setdefault(
                "electrons",
                {
                    "ee_sources_per_collision": ee.mesons_per_collision()
                    + self.mesons.n_omega_per_collision * self.ee_backgrounds.conversion_weight,
                    "conversion_probability": self.ee_backgrounds.p_conversion,
                    "branching_ratios": {
                        k.name: v.as_dict() for k, v in ee.branching_ratios.items()
                    }
                    | {"pi0->gammagamma": self.ee_backgrounds.br_gg.as_dict()},
                    "sigma_rel": {k.name: v for k, v in ee.sigma_rel.items()},
                    "n_generated_combinatorial": int(n_generated.get(Channel.COMBINATORIAL_EE, 0)),
                },
            )
        eff = None
        if self.efficiency_path is not None:
            eff = {"path": str(self.efficiency_path), "sha256": sha256_file(self.efficiency_path)}
        return make_meta(
            config_sha256=self.config.section_sha256("mock", "beam"),
            seed=self.seed,
            inputs=[self.efficiency_path] if self.efficiency_path else [],
            generator=GENERATOR_NAME if self.mesons.name == "parametric" else PYTHIA_GENERATOR,
            n_pot=self.n_pot(n_cocktail),
            n_pot_by_flavour=self.n_pot_by_flavour(n_cocktail),
            prescale={f: self.prescale[f] for f in cfg.leptons},
            target_interaction_lengths=self.config.beam.interaction_lengths,
            sigma_inel_mb=self.config.beam.sigma_inel_mb,
            beam_energy=self.config.beam.energy,
            n_generated={k.name: int(v) for k, v in n_generated.items()},
            n_generated_cocktail=int(n_cocktail),
            n_generated_combinatorial=int(n_generated.get(Channel.COMBINATORIAL, 0)),
            n_omega_per_collision=self.mesons.n_omega_per_collision,
            mock_normalisation=cfg.normalisation() if cfg.backend == "parametric" else None,
            sigma_rel={k.name: v for k, v in self.cocktail.sigma_rel.items()},
            mumu_sources_per_collision=self.cocktail.mesons_per_collision(),
            pdg_edition=pdgdata.edition(),
            branching_ratios={
                k.name: v.as_dict() for k, v in self.cocktail.branching_ratios.items()
            },
            channel_probabilities={
                k.name: float(p) for k, p in zip(self.classes, self.probabilities, strict=True)
            },
            channel_codes={c.name: int(c) for c in Channel},
            pilot=self.pilot,
            detector=cfg.detector.model_dump(mode="json"),
            detector_calibration=self.detector.calibration(),
            efficiency_map=eff,
            mock_config=cfg.model_dump(mode="json"),
            **({"pythia": self.mesons.meta()} if self.mesons.name == "pythia" else {}),
            **extra,
        )


_COMBINATORIAL = (Channel.COMBINATORIAL, Channel.COMBINATORIAL_EE)


def _concat_reco(parts: list[Reconstructed]) -> Reconstructed:
    """Join detector views of consecutive source blocks."""
    return Reconstructed(
        *(
            np.concatenate([getattr(p, f.name) for p in parts], axis=-1)
            for f in fields(Reconstructed)
        )
    )


def _pythia_mesons(config: AnalysisConfig, seed: int, progress: bool) -> MesonSource:
    """The PYTHIA 8 meson pool of ``mock.backend: pythia`` (:mod:`gammastar.mock.pythia`)."""
    from gammastar.mock import pythia  # optional dependency pythia8mc: imported on use

    return pythia.PythiaMesons(config, seed, progress=progress)


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


MUON_GSTAR = frozenset(range(int(Channel.ETA_DALITZ), int(Channel.PHI_MUMU) + 1)) - {
    int(Channel.ETA_MUMU)
}
"""Channel codes of the muon γ* sources (the ``truth`` tree and the ``acceptance`` map)."""
EE_GSTAR = frozenset(int(c) for c in ELECTRON_CHANNELS) - {
    int(Channel.CONVERSION),
    int(Channel.COMBINATORIAL_EE),
}
"""Channel codes of the dielectron γ* sources (``truth_ee``, ``acceptance_ee``)."""


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

EE_ACCEPTANCE_MASS_EDGES = (
    *(0.0, 0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1, 0.12, 0.135, 0.16, 0.2),
    *(round(0.05 * i, 2) for i in range(5, 15)),
    *(0.85, 0.95, 1.1, 1.4, 2.0),
)
"""Mass edges (GeV) of ``acceptance_ee``: 5–20 MeV steps below the π0 mass (the π0 Dalitz
region, where the acceptance changes fast with m), then the muon map's rows."""

CONVERSION_TEMPLATE_AXIS = (60, 0.0, 0.06)
"""``conversion_ratio_ee``: 1 MeV bins of the reconstructed ee mass, 0–60 MeV (conversions
above 40 MeV: < 10⁻⁵ of them, docs/reference/mock.md)."""

CONVERSION_TEMPLATE_STREAM = 0x636F6E76
"""Entropy word of the conversion template's seed sequence ([seed, this]): a stream apart
from the events' (``SeedSequence(seed).spawn``)."""

LEPTON_MAP_P_EDGES = (0.5, 500.0, 181)
"""``lepton_acceptance_ee`` momentum edges: ``np.geomspace(0.5, 500, 181)`` GeV (4% steps;
the 1 GeV threshold's radiative and resolution smearing spans several)."""

LEPTON_MAP_STREAM = 0x6C6D6170
"""Entropy word of ``lepton_acceptance_ee``'s seed sequence ([seed, this])."""

TRUTH_MASS_AXIS = (2000, 0.0, 2.0)
"""``truth_all_m``: 1 MeV bins from 0 to 2 GeV (true γ* mass)."""


TRUTH_HELICITY = {
    "truth_hel_cos2_m": "cos^2 theta*",
    "truth_hel_sin2cos2phi_m": "sin^2 theta* cos 2phi*",
    "truth_hel_sin2thetacosphi_m": "sin 2theta* cos phi*",
}
"""Histograms (on :data:`TRUTH_MASS_AXIS`) of the sums of the angular functions of every
generated γ* source's decay (μ+ in the γ* lab helicity frame): with ``truth_all_m`` the
generator's true λ_θ, λ_φ, λ_θφ per mass bin (``gammastar_validation.truth.truth_polarisation``,
in validation/)."""


def _bin_index(edges: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Bin of ``x`` on ``edges`` (−1 below, len(edges) − 1 at or above the last edge)."""
    return np.searchsorted(edges, x, side="right") - 1


class AcceptanceAccumulator:
    """Counts, over the chunks, of the generated γ* sources for the ``acceptance`` map.

    γ* sources: every cocktail channel except η → μμ (no virtual photon); combinatorial
    pairs excluded. Per (true mass, true pair pT) bin: all generated sources (``generated``)
    and those whose two (smeared) muons pass the energy and angle cuts (``accepted``); the
    efficiency accept/reject is not applied. ``truth`` histograms the true mass of all γ*
    sources on the fine axis :data:`TRUTH_MASS_AXIS` (under/overflow kept). With ``y_edges``
    (``mock.acceptance_y_edges``) the same counts per (true mass, true pT, true lab rapidity y)
    cell too (``generated3``, ``accepted3``: the 3-D map ``acceptance_3d``).
    """

    def __init__(
        self,
        cfg: MockConfig,
        codes: frozenset[int] = MUON_GSTAR,
        m_edges: list[float] | None = None,
        y_edges: list[float] | None = None,
    ) -> None:
        self.codes = np.array(sorted(codes), dtype=np.int32)
        """The channel codes of the γ* sources counted (default: the muon ones)."""
        if m_edges is None:
            m_edges = cfg.acceptance_mass_edges
        self.m_edges = np.asarray(m_edges, dtype=np.float64)
        self.pt_edges = np.asarray(cfg.acceptance_pt_edges, dtype=np.float64)
        shape = (len(self.m_edges) - 1, len(self.pt_edges) - 1)
        self.generated = np.zeros(shape)
        self.accepted = np.zeros(shape)
        self.y_edges = None if y_edges is None else np.asarray(y_edges, dtype=np.float64)
        shape3 = (*shape, 0 if self.y_edges is None else len(self.y_edges) - 1)
        self.generated3 = np.zeros(shape3)
        self.accepted3 = np.zeros(shape3)
        n, lo, hi = TRUTH_MASS_AXIS
        self._truth_scale = n / (hi - lo)
        self.truth = np.zeros(n + 2)
        """``truth_all_m`` counts, underflow first and overflow last."""
        self.hel = np.zeros((len(TRUTH_HELICITY), n + 2))
        """Σ of the helicity-frame angular functions per truth bin (:data:`TRUTH_HELICITY`)."""
        step = (hi - lo) / n
        k = (self.m_edges - lo) / step
        self._m_table = None
        if np.allclose(k, np.round(k), atol=1e-6) and k[0] >= 0 and k[-1] <= n:
            centres = lo + (np.arange(-1, n + 1) + 0.5) * step  # under, bins, over
            self._m_table = _bin_index(self.m_edges, centres)

    def add(self, chunk: Chunk) -> None:
        s = chunk.sources
        sig = np.isin(s.channel, self.codes)
        m = np.where(sig, s.gstar[4], -1.0)  # not γ*: below every axis
        pt = np.hypot(s.gstar[0], s.gstar[1])
        n, lo, _ = TRUTH_MASS_AXIS
        fine = np.clip(np.floor((m - lo) * self._truth_scale), -1, n).astype(np.int64) + 1
        nx, ny = self.generated.shape
        ix = self._m_index(m, fine)
        iy = _bin_index(self.pt_edges, pt)
        inside = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
        cell = ix * ny + iy
        self.generated += np.bincount(cell[inside], minlength=nx * ny).reshape(nx, ny)
        acc = inside & chunk.reco.in_acceptance
        self.accepted += np.bincount(cell[acc], minlength=nx * ny).reshape(nx, ny)
        if self.y_edges is not None:

            nz = len(self.y_edges) - 1
            iz = _bin_index(self.y_edges, rapidity(s.gstar[:4]))
            in3 = inside & (iz >= 0) & (iz < nz)
            cell3 = cell * nz + iz
            size = nx * ny * nz
            self.generated3 += np.bincount(cell3[in3], minlength=size).reshape(nx, ny, nz)
            acc3 = in3 & chunk.reco.in_acceptance
            self.accepted3 += np.bincount(cell3[acc3], minlength=size).reshape(nx, ny, nz)
        self.truth += np.bincount(fine[sig], minlength=n + 2)
        # the true decay angles of the μ+ in the γ*'s lab helicity frame (polarisation truth)

        cos_t, phi = helicity_angles(s.mu1[:, sig], s.mu2[:, sig])
        for i, f in enumerate(angular_functions(cos_t, phi)):
            self.hel[i] += np.bincount(fine[sig], weights=f, minlength=n + 2)

    def _m_index(self, m: np.ndarray, fine: np.ndarray) -> np.ndarray:
        """Row of the acceptance map: a table lookup on the 1 MeV truth bins when every edge
        is a multiple of 1 MeV inside the truth axis (the defaults), else a binary search."""
        if self._m_table is None:
            return _bin_index(self.m_edges, m)
        return self._m_table[fine]

    def histograms(self) -> dict[str, Any]:
        """``acceptance`` (A with binomial variances A(1 − A)/N; 0 where nothing was
        generated), ``acceptance_generated`` (N per bin) and ``truth_all_m``."""
        import hist

        n, k = self.generated, self.accepted
        axes = (
            hist.axis.Variable(self.m_edges, name="m", label="m [GeV]"),
            hist.axis.Variable(self.pt_edges, name="pT", label="p_T [GeV]"),
        )
        acc, gen = _acceptance_hists(
            n, k, axes, "(m_true, pT_true)",
            "geometric acceptance A(m_true, pT_true) of gamma* sources (E and angle cuts)",
        )  # fmt: skip
        truth = hist.Hist(
            hist.axis.Regular(*TRUTH_MASS_AXIS, name="m", label="m [GeV]"),
            storage=hist.storage.Weight(),
            name="all generated gamma* sources (no cuts, no efficiency): true mass",
        )
        truth.view(flow=True)["value"] = self.truth
        truth.view(flow=True)["variance"] = self.truth
        out = {"acceptance": acc, "acceptance_generated": gen, "truth_all_m": truth}
        if self.y_edges is not None:
            out.update(self._histograms_3d(axes))
        for name, values in zip(TRUTH_HELICITY, self.hel, strict=True):
            h = hist.Hist(
                hist.axis.Regular(*TRUTH_MASS_AXIS, name="m", label="m [GeV]"),
                storage=hist.storage.Double(),
                name=f"all generated gamma* sources: sum of {TRUTH_HELICITY[name]} (helicity "
                "frame, mu+) per true-mass bin",
            )
            h.view(flow=True)[...] = values
            out[name] = h
        return out

    def _histograms_3d(self, axes: tuple[Any, Any]) -> dict[str, Any]:
        """``acceptance_3d`` (TH3: A per (m, pT, y) cell, binomial variances) and
        ``acceptance_3d_generated`` (N per cell)."""
        import hist

        assert self.y_edges is not None
        axes3 = (*axes, hist.axis.Variable(self.y_edges, name="y", label="y (lab)"))
        acc, gen = _acceptance_hists(
            self.generated3, self.accepted3, axes3, "(m_true, pT_true, y_true)",
            "geometric acceptance A(m_true, pT_true, y_true) of gamma* sources",
        )  # fmt: skip
        return {"acceptance_3d": acc, "acceptance_3d_generated": gen}

    def summary(self) -> dict[str, Any]:
        n = float(self.generated.sum())
        three_d = [] if self.y_edges is None else ["acceptance_3d", "acceptance_3d_generated"]
        return {
            "histograms": [
                "acceptance",
                "acceptance_generated",
                *three_d,
                "truth_all_m",
                *TRUTH_HELICITY,
            ],
            "sources": "all cocktail channels except ETA_MUMU (combinatorial excluded)",
            "axes": "x = true gamma* mass (GeV), y = true pair pT (GeV)",
            "n_gamma_star_generated": int(self.truth.sum()),
            "mean_acceptance": float(self.accepted.sum() / n) if n else None,
        }


def _as_analysis_config(config: AnalysisConfig | MockConfig) -> AnalysisConfig:
    if isinstance(config, MockConfig):
        return AnalysisConfig(mock=config)
    if not isinstance(config, AnalysisConfig):
        raise TypeError(f"expected AnalysisConfig or MockConfig, got {type(config).__name__}")
    return config


def _event_count(cfg: MockConfig, events: int | None, chunk_size: int | None) -> int:
    """The number of sources to generate (``events``, else ``mock.events``), checked with
    ``chunk_size``.

    Raises:
        GammastarError: a count or chunk size that is not a positive integer.
    """
    n_events = cfg.events if events is None else events
    if isinstance(n_events, bool) or not isinstance(n_events, int | np.integer) or n_events <= 0:
        raise GammastarError(f"--events must be a positive integer, got {n_events!r}")
    if chunk_size is not None and chunk_size <= 0:
        raise GammastarError(f"chunk_size must be a positive integer, got {chunk_size!r}")
    return int(n_events)


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


class _NtupleWriter:
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
        if gen.ee_backgrounds.conversion_weight > 0.0:
            out["conversion_template"] = {
                "histogram": "conversion_ratio_ee",
                "sources": int(gen.cfg.electrons.conversion_template_sources),
                "seed_sequence": [gen.seed, CONVERSION_TEMPLATE_STREAM],
            }
        return out

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
        )
        for fl in self.flavours:
            for name, h in fl.acceptance.histograms().items():
                self.f[name + fl.suffix] = h
        lepton_map = gen.lepton_acceptance_ee()
        if lepton_map is not None:
            self.f["lepton_acceptance_ee"] = lepton_map
        template = gen.conversion_template()
        if template is not None:
            self.f["conversion_ratio_ee"] = template
        self.f["meta"] = json.dumps(meta, sort_keys=True, allow_nan=False, default=str)
        return meta


def generate_file(
    config: AnalysisConfig | MockConfig,
    path: str | Path,
    *,
    events: int | None = None,
    seed: int | None = None,
    force: bool = False,
    chunk_size: int | None = None,
    compression: Any = "default",
    progress: bool | None = None,
    mesons: MesonSource | None = None,
) -> GenerateResult:
    """Generate mock data and write the ROOT ntuple of DEVELOPERS.md ("Mock ntuple").

    The generator's chunks (:meth:`MockGenerator.chunks`) go to the trees one by one
    (:class:`_NtupleWriter`), then the histograms and ``meta``.

    Arguments:
        config: the analysis config (or just its ``mock`` section).
        path: output ROOT file; written to a temporary file and renamed at the end.
        events: generated sources (cocktail + combinatorial); default ``mock.events``.
        seed: random seed; default the config's ``seed``.
        force: overwrite an existing file.
        chunk_size: sources per chunk; default ``mock.chunk_size``.
        compression: uproot compression (``"default"``: uproot's default, ZLIB level 1).
        progress: a progress bar while PYTHIA runs (``mock.backend: pythia``; default: when
            stderr is a terminal).
        mesons: a meson source already built (:class:`MockGenerator`).

    Returns:
        A :class:`GenerateResult`.

    Raises:
        GammastarError: bad event count or seed, output exists without ``force``, output
            not writable, missing efficiency map, unavailable backend. Nothing is left at
            ``path`` on error.
    """
    import uproot

    t0 = time.perf_counter()
    config = _as_analysis_config(config)
    cfg = config.mock or MockConfig()
    n_events = _event_count(cfg, events, chunk_size)
    path = Path(path)
    if path.is_dir():
        raise GammastarError(f"{path}: is a directory; give the output file name")
    if progress is None:
        progress = sys.stderr.isatty()
    gen = MockGenerator(config, seed, progress=progress, mesons=mesons)
    options = {} if compression == "default" else {"compression": compression}
    with atomic_path(path, force) as tmp:
        try:
            f = uproot.recreate(tmp, **options)
        except OSError as err:
            raise GammastarError(f"{path}: cannot write ({err.strerror or err})") from None
        with f:
            out = _NtupleWriter(f, gen)
            for chunk in gen.chunks(n_events, chunk_size):
                out.add(chunk)
                del chunk  # one chunk in memory at a time
            meta = out.finish(n_events, int(chunk_size or cfg.chunk_size))
    n_cocktail = sum(v for k, v in out.n_generated.items() if k not in _COMBINATORIAL)
    return GenerateResult(
        path=path,
        n_events_written=out.n_written,
        n_generated={k.name: int(v) for k, v in out.n_generated.items()},
        n_pot=gen.n_pot(n_cocktail),
        meta=meta,
        n_truth=out.n_truth,
        seconds=time.perf_counter() - t0,
    )


def read_meta(path: str | Path) -> dict[str, Any]:
    """The ``meta`` JSON of a mock file."""
    import uproot

    with uproot.open(path) as f:
        return json.loads(str(f["meta"]))


def _acceptance_hists(n, k, axes, cell: str, title: str) -> tuple[Any, Any]:
    """A = k/n per cell (binomial variances A(1 − A)/n; 0 where nothing was generated) and
    the generated counts n, as ``hist`` histograms on ``axes``."""
    import hist

    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(n > 0, k / n, 0.0)
        var = np.where(n > 0, a * (1.0 - a) / n, 0.0)
    acc = hist.Hist(*axes, storage=hist.storage.Weight(), name=title)
    acc.view()["value"] = a
    acc.view()["variance"] = var
    gen = hist.Hist(
        *axes, storage=hist.storage.Double(), name=f"generated gamma* sources per {cell} bin"
    )
    gen.view()[...] = n
    return acc, gen
