"""The NA60-like mock generator in memory: :class:`MockGenerator` draws the sources of one
analysis config (the meson cocktail and the combinatorial pairs, each flavour's block; the
pilot run that fixes the combinatorial rate) in chunks and passes them through the detector
(:class:`Chunk`: sources, detector view, event numbers); it gives the run's equivalent N_POT
and the file's ``meta``.

Random numbers: ``numpy.random.SeedSequence(seed)`` spawns one stream for the pilot run
and one per chunk, so a given (seed, chunk_size) always gives the same sources.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from gammastar.cocktail_channels import Channel
from gammastar.config import AnalysisConfig
from gammastar.config.mock import MockConfig
from gammastar.core.artifacts import make_meta, sha256_file
from gammastar.corrections.unfold.efficiency import load_efficiency_map
from gammastar.errors import GammastarError
from gammastar.mock.cocktail import EE_CHANNELS, Cocktail, MesonSource, ParametricMesons, Sources
from gammastar.mock.combinatorial import Combinatorial
from gammastar.mock.detector import Detector, Reconstructed, resolve_efficiency_map
from gammastar.mock.electrons import ElectronBackgrounds, ElectronDetector
from gammastar.mock.pythia import PythiaMesons
from gammastar.physics import pdgdata
from gammastar.physics.target import interaction_probability

GENERATOR_NAME = "gammastar.mock/parametric"
PYTHIA_GENERATOR = "gammastar.mock/pythia"
"""``meta.generator`` of a file whose mesons come from PYTHIA 8 (``mock.backend: pythia``)."""


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
        parametric = ParametricMesons(self.cfg, e_max)
        self.mesons: MesonSource = parametric
        """The mesons' multiplicities and kinematics (``mock.backend``)."""
        if mesons is not None:
            self.mesons = mesons
        elif self.cfg.backend == "pythia":
            self.mesons = _pythia_mesons(config, self.seed, progress)
        self.cocktail = Cocktail(self.cfg, beam_energy=e_max, mesons=self.mesons)
        self.combinatorial = Combinatorial(self.cfg, beam_energy=e_max)
        # the scattering model calibrates its absorber on the cocktail's meson spectra
        # the parametric spectra made here follow from a few mock parameters and the
        # kinematic limit alone (ParametricMesons.spectra_key)
        own = mesons is None and self.cfg.backend != "pythia"
        key = parametric.spectra_key() if own else None
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
        self.ee_cocktail: Cocktail | None = None
        self.ee_backgrounds: ElectronBackgrounds | None = None
        self.ee_detector: ElectronDetector | None = None
        if self.electrons:
            # the dielectron block: cocktail, conversions, combinatorial (docs/explanation/physics.md: same N_POT)
            self.ee_cocktail = ee_cocktail = Cocktail(
                self.cfg, beam_energy=e_max, specs=EE_CHANNELS, mesons=self.mesons
            )
            self.ee_backgrounds = ee_backgrounds = ElectronBackgrounds(self.cfg, e_max, self.mesons)
            self.ee_detector = ElectronDetector(self.cfg.electrons.detector)
            self.classes += [s.channel for s in EE_CHANNELS]
            self.classes += [Channel.CONVERSION, Channel.COMBINATORIAL_EE]
            w = np.append(ee_cocktail.weights, ee_backgrounds.conversion_weight)
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

    def electron_arm(self) -> tuple[Cocktail, ElectronBackgrounds, ElectronDetector]:
        """The dielectron cocktail, backgrounds and detector (``mock.leptons`` with ``e``)."""
        if self.ee_cocktail is None or self.ee_backgrounds is None or self.ee_detector is None:
            raise RuntimeError("the generator has no electrons (mock.leptons without 'e')")
        return self.ee_cocktail, self.ee_backgrounds, self.ee_detector

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
        cocktail, backgrounds, _ = self.electron_arm()
        parts = []
        for spec, n in zip(EE_CHANNELS, counts[:-2], strict=True):
            if n:
                parts.append(cocktail.generate(rng, spec, int(n)))
        parts.append(backgrounds.conversions(rng, int(counts[-2])))
        parts.append(backgrounds.combinatorial(rng, int(counts[-1])))
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
            reco.append(self.electron_arm()[2].apply(rng, src[-1]))
        if len(src) == 1:
            return src[0], reco[0]
        return Sources.concatenate(src), _concat_reco(reco)

    def _pilot(self, rng: np.random.Generator) -> dict[str, Any]:
        """Acceptances that fix the combinatorial rate (docs/explanation/physics.md §3.2; deterministic)."""
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

    # ------------------------------------------------------------------ normalisation
    def sources_per_collision(self) -> float:
        """Σ_m ⟨n_m⟩ BR_m over the generated flavours' cocktails (dielectrons: with the
        conversions, divided by their prescale ``mock.electrons.prescale``: the recorded
        sources per inelastic collision)."""
        out = self.cocktail.mesons_per_collision() if self.muons else 0.0
        if self.electrons:
            cocktail, backgrounds, _ = self.electron_arm()
            ee = cocktail.mesons_per_collision()
            ee += self.mesons.n_omega_per_collision * backgrounds.conversion_weight
            out += ee / self.prescale["e"]
        return out

    def n_pot(self, n_cocktail: int) -> float:
        """Equivalent POT of the run: N_cocktail / (P_int(L) × Σ_m ⟨n_m⟩ BR_m), with
        P_int(L) = 1 − e^{−L} (:func:`gammastar.physics.target.interaction_probability`, the
        formula the reach's ``yield_scale`` uses) and L = ``beam.interaction_lengths``;
        N_cocktail: every generated source but the combinatorial ones; the sum
        :meth:`sources_per_collision` (a prescaled flavour's sources count 1/k)."""
        p_int = float(interaction_probability(self.config.beam.interaction_lengths))
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
            ee, backgrounds, _ = self.electron_arm()
            extra.setdefault(
                "electrons",
                {
                    "ee_sources_per_collision": ee.mesons_per_collision()
                    + self.mesons.n_omega_per_collision * backgrounds.conversion_weight,
                    "conversion_probability": backgrounds.p_conversion,
                    "branching_ratios": {
                        k.name: v.as_dict() for k, v in ee.branching_ratios.items()
                    }
                    | {"pi0->gammagamma": backgrounds.br_gg.as_dict()},
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
            **({"pythia": self.mesons.meta()} if isinstance(self.mesons, PythiaMesons) else {}),
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
    """The PYTHIA 8 meson pool of ``mock.backend: pythia`` (:mod:`gammastar.mock.pythia`,
    which imports its optional dependency pythia8mc on use)."""
    return PythiaMesons(config, seed, progress=progress)
