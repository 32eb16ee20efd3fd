"""The hadronic cocktail of the NA60-like mock data (docs/explanation/physics.md §3.1–3.3).

Channels (``gammastar.cocktail_channels.Channel``): η → γμμ, η → μμ, η′ → γμμ, ω → μμ, ω → π0μμ,
ρ → μμ, φ → μμ. Meson kinematics: 1/pT dN/dpT ∝ exp(−m_T/T) (m_T scaling, same T for all
mesons), Gaussian lab rapidity, uniform azimuth. Decays:

* two-body V → μμ, η → μμ: parent at its PDG mass (ω, φ and η widths are below the 30 MeV
  resolution); η → μμ isotropic, V → μμ 1 + λ_θ cos²θ* in the meson's helicity frame with
  λ_θ = ``mock.decay_lambda_theta`` (default 0: isotropic);
* ρ → μμ: mass from :func:`gammastar.physics.dalitz.rho_line_shape`, then as V → μμ;
* P → γμμ, V → Pμμ: dimuon mass from the Kroll–Wada / V → Pℓℓ shapes with the form factors
  of the config; γ* isotropic in the parent frame; muons in the γ* rest frame with
  dN/dcosθ ∝ 1 + cos²θ + (4m_μ²/m²) sin²θ about the γ* flight direction.

Channel weights ∝ BR (PDG, :mod:`gammastar.physics.pdgdata`) × σ/σ_ω in the target
(:meth:`gammastar.config.mock.MockConfig.sigma_rel`); mesons per collision ⟨n_ω⟩ × σ/σ_ω,
⟨n_ω⟩ from the p + p multiplicity and the target's A-dependence
(:mod:`gammastar.cocktail_inputs`).

The meson kinematics and multiplicities come from a meson source: :class:`ParametricMesons`
(the spectra above, the config's σ/σ_ω and ⟨n_ω⟩) or the PYTHIA 8 pool of
:mod:`gammastar.mock.pythia` (``mock.backend: pythia``); the decays are the same for both.

Dielectrons (:data:`EE_CHANNELS`, ``mock.leptons`` holding ``e``): the same decays with
m_ℓ = m_e, plus π0 → γee (π0 multiplicity σ_π0/σ_ω, its own T and rapidity width, and the
transition form factor |F|² = (1 − a_π m²/m_π²)⁻² of ``mock.electrons.pi0``). The ee mass of
the Dalitz decays is sampled on a logarithmic grid from 2m_e (the Kroll–Wada spectrum ∝ 1/m).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal, Protocol

import numpy as np
from numpy.typing import NDArray

from gammastar.cocktail_channels import Channel
from gammastar.config.mock import MockConfig
from gammastar.errors import ConfigError
from gammastar.physics import dalitz
from gammastar.physics import sampling as kin
from gammastar.physics.constants import M_E, M_MU, PDGID, mass, width
from gammastar.physics.kinematics import (
    back_to_back,
    boost,
    decay_in_helicity_frame,
    four_momentum,
    rotate_from_z,
    two_body_momentum,
)
from gammastar.physics.pdgdata import BranchingRatio, branching_ratio

Kind = Literal["two_body", "p_dalitz", "v_dalitz", "rho"]


@dataclass(frozen=True)
class ChannelSpec:
    """One cocktail channel."""

    channel: Channel
    parent: str
    kind: Kind
    br_key: str
    third: str | None = None
    """The non-leptonic daughter of a Dalitz decay (``"gamma"`` or ``"pi0"``)."""
    lepton: Literal["mu", "e"] = "mu"

    @property
    def lepton_mass(self) -> float:
        """m_μ or m_e, GeV."""
        return M_MU if self.lepton == "mu" else M_E


CHANNELS: tuple[ChannelSpec, ...] = (
    ChannelSpec(Channel.ETA_DALITZ, "eta", "p_dalitz", "eta->gamma mumu", "gamma"),
    ChannelSpec(Channel.ETA_MUMU, "eta", "two_body", "eta->mumu"),
    ChannelSpec(Channel.ETAPRIME_DALITZ, "eta_prime", "p_dalitz", "eta_prime->gamma mumu", "gamma"),
    ChannelSpec(Channel.OMEGA_MUMU, "omega", "two_body", "omega->mumu"),
    ChannelSpec(Channel.OMEGA_DALITZ, "omega", "v_dalitz", "omega->pi0 mumu", "pi0"),
    ChannelSpec(Channel.RHO_MUMU, "rho", "rho", "rho->mumu"),
    ChannelSpec(Channel.PHI_MUMU, "phi", "two_body", "phi->mumu"),
)
"""The cocktail, in the order of the channel codes."""

EE_CHANNELS: tuple[ChannelSpec, ...] = (
    ChannelSpec(Channel.PI0_DALITZ_EE, "pi0", "p_dalitz", "pi0->gamma ee", "gamma", "e"),
    ChannelSpec(Channel.ETA_DALITZ_EE, "eta", "p_dalitz", "eta->gamma ee", "gamma", "e"),
    ChannelSpec(
        Channel.ETAPRIME_DALITZ_EE, "eta_prime", "p_dalitz", "eta_prime->gamma ee", "gamma", "e"
    ),
    ChannelSpec(Channel.OMEGA_EE, "omega", "two_body", "omega->ee", None, "e"),
    ChannelSpec(Channel.OMEGA_DALITZ_EE, "omega", "v_dalitz", "omega->pi0 ee", "pi0", "e"),
    ChannelSpec(Channel.RHO_EE, "rho", "rho", "rho->ee", None, "e"),
    ChannelSpec(Channel.PHI_EE, "phi", "two_body", "phi->ee", None, "e"),
)
"""The dielectron cocktail (π0 → γee first: the dominant source)."""

RHO_MASS_MAX = 2.0
"""Upper end of the sampled ρ line shape, GeV (the exp(−M/T_ρ) factor makes the rest negligible)."""


@dataclass
class Sources:
    """A batch of generated dimuon sources (structure of arrays, float64 four-vectors (4, n))."""

    channel: NDArray[np.int32]
    """:class:`~gammastar.cocktail_channels.Channel` code per source."""
    parent_pdgid: NDArray[np.int32]
    """PDG id of the decaying meson (0 for combinatorial)."""
    mu1: NDArray[np.float64]
    mu2: NDArray[np.float64]
    """True lab four-momenta (px, py, pz, E) of the two muons, (4, n), GeV."""
    charge1: NDArray[np.int32]
    charge2: NDArray[np.int32]
    """Muon charges, ±1."""
    parent1: NDArray[np.int32]
    parent2: NDArray[np.int32]
    """PDG id of each muon's parent."""
    gstar: NDArray[np.float64]
    """True γ* four-momentum and mass (5, n); NaN for combinatorial and η → μμ."""

    def __len__(self) -> int:
        return int(self.channel.size)

    @classmethod
    def concatenate(cls, parts: list[Sources]) -> Sources:
        """Join batches."""
        kw = {}
        for f in fields(cls):
            arrays = [getattr(p, f.name) for p in parts]
            kw[f.name] = np.concatenate(arrays, axis=-1)
        return cls(**kw)

    def take(self, index: NDArray) -> Sources:
        """Subset (boolean mask or indices)."""
        return Sources(**{f.name: getattr(self, f.name)[..., index] for f in fields(self)})


def form_factor2(spec: ChannelSpec, cfg: MockConfig):
    """|F(m²)|² of a Dalitz channel as a callable of m (config parameters)."""
    ff = cfg.form_factors
    if spec.parent == "pi0":
        inv2 = cfg.electrons.pi0.tff_slope / mass("pi0") ** 2
        return lambda m: dalitz.form_factor_pole(m, inv2)
    if spec.parent == "eta":
        return lambda m: dalitz.form_factor_pole(m, ff.eta_lambda_inv2)
    if spec.parent == "eta_prime":
        return lambda m: dalitz.form_factor_eta_prime(m, ff.eta_prime_lambda, ff.eta_prime_gamma)
    if spec.parent == "omega":
        return lambda m: dalitz.form_factor_pole(m, ff.omega_lambda_inv2)
    raise ValueError(f"no form factor for {spec.parent}")


class Cocktail:
    """The cocktail generator for a :class:`~gammastar.config.mock.MockConfig`.

    Attributes:
        specs: the channels.
        branching_ratios: BR of each channel (with PDG provenance).
        weights: BR × σ/σ_ω per channel (un-normalised multinomial weights).
        mass_samplers: tabulated dimuon-mass samplers of the Dalitz and ρ channels.
    """

    def __init__(
        self,
        cfg: MockConfig,
        beam_energy: float | None = None,
        specs: tuple[ChannelSpec, ...] = CHANNELS,
        *,
        check: bool = True,
        mesons: MesonSource | None = None,
    ) -> None:
        self.cfg = cfg
        self.beam_energy = beam_energy
        """Kinematic limit of the mesons' lab energy (``beam.energy``; ``None``: none)."""
        self.mesons: MesonSource = mesons or ParametricMesons(cfg, beam_energy)
        """Where the parents' kinematics and multiplicities come from."""
        self.specs = specs
        self.branching_ratios: dict[Channel, BranchingRatio] = {
            s.channel: branching_ratio(s.br_key) for s in self.specs
        }
        self.sigma_rel = {s.channel: self.mesons.sigma_rel(s.parent) for s in self.specs}
        self.weights = np.array(
            [self.branching_ratios[s.channel].value * self.sigma_rel[s.channel] for s in self.specs]
        )
        if check and not self.weights.sum() > 0:
            raise ConfigError("mock.cross_sections: all cocktail cross-sections are zero")
        self.parent_mass = {s.channel: mass(s.parent) for s in self.specs}
        self.mass_samplers: dict[Channel, kin.InverseCDF] = {}
        for s in self.specs:
            if s.kind == "two_body":
                continue
            self.mass_samplers[s.channel] = self._sampler(s)
        if cfg.dalitz_br == "kroll_wada":
            for s in self.specs:
                if s.kind in ("p_dalitz", "v_dalitz"):
                    self.branching_ratios[s.channel] = self._kroll_wada_br(s)
            self.weights = np.array(
                [self.branching_ratios[s.channel].value * self.sigma_rel[s.channel]
                 for s in self.specs]
            )  # fmt: skip

    def _sampler(self, s: ChannelSpec) -> kin.InverseCDF:
        big_m = self.parent_mass[s.channel]
        m_l = s.lepton_mass
        lo = 2.0 * m_l
        if s.kind == "rho":
            m_pi = mass("pi+")
            lo = 2.0 * m_pi
            grid = lo + (RHO_MASS_MAX - lo) * np.linspace(0.0, 1.0, 8001) ** 2
            return kin.InverseCDF(
                grid,
                lambda m: dalitz.rho_line_shape(
                    m, big_m, width("rho"), m_pi, m_l, self.cfg.form_factors.rho_temperature
                ),
            )
        ff2 = form_factor2(s, self.cfg)
        if s.kind == "p_dalitz":
            hi = big_m
            return kin.InverseCDF(
                _mass_grid(lo, hi, s.lepton),
                lambda m: dalitz.pseudoscalar_dalitz_dgamma_dm(m, big_m, m_l, ff2),
            )
        m_p = mass(s.third or "pi0")
        hi = big_m - m_p
        return kin.InverseCDF(
            _mass_grid(lo, hi, s.lepton),
            lambda m: dalitz.vector_dalitz_dgamma_dm(m, big_m, m_p, m_l, ff2),
        )

    def _kroll_wada_br(self, s: ChannelSpec) -> BranchingRatio:
        """BR of a Dalitz channel from its photon mode: BR(P → γγ) ∫ (1/Γ_γγ) dΓ/dm dm, or
        BR(V → Pγ) ∫ (1/Γ_Pγ) dΓ/dm dm (the sampler's integral; Landsberg, Phys. Rep. 128
        (1985) 301)."""
        key = f"{s.parent}->gammagamma" if s.kind == "p_dalitz" else f"{s.parent}->pi0 gamma"
        photon = branching_ratio(key)
        value = photon.value * self.mass_samplers[s.channel].norm
        return BranchingRatio(
            value, s.br_key, f"Kroll-Wada integral x BR({key})", photon.pdg_identifier,
            photon.edition, "kroll_wada",
        )  # fmt: skip

    @property
    def probabilities(self) -> NDArray[np.float64]:
        """Normalised channel probabilities (order of :data:`CHANNELS`)."""
        return self.weights / self.weights.sum()

    def mesons_per_collision(self) -> float:
        """Σ_channels ⟨n_m⟩ BR_m: dimuon sources per inelastic collision (normalisation)."""
        return float(self.mesons.n_omega_per_collision * self.weights.sum())

    # ------------------------------------------------------------------ generation
    def _parents(self, rng: np.random.Generator, masses: NDArray[np.float64], parent: str = ""):
        """Lab four-momenta (4, n) of parents ``parent`` at ``masses`` (the meson source's)."""
        return self.mesons.sample(rng, masses, parent)

    def lambda_theta(self, spec: ChannelSpec) -> float:
        """λ_θ of a two-body decay in the parent's helicity frame (``mock.decay_lambda_theta``
        for ρ, ω, φ → μμ; 0 for η → μμ, a spin-0 parent)."""
        if spec.channel == Channel.ETA_MUMU:
            return 0.0
        return float(getattr(self.cfg.decay_lambda_theta, spec.parent))

    def generate(self, rng: np.random.Generator, spec: ChannelSpec, n: int) -> Sources:
        """Generate ``n`` decays of one channel (true lab four-momenta)."""
        big_m = self.parent_mass[spec.channel]
        if spec.kind == "rho":
            masses = self.mass_samplers[spec.channel].sample(rng, n)
        else:
            masses = np.full(n, big_m)
        parent = self._parents(rng, masses, spec.parent)
        m_l = spec.lepton_mass

        if spec.kind in ("two_body", "rho"):
            p = two_body_momentum(masses, m_l, m_l)
            lam = self.lambda_theta(spec)
            if lam == 0.0:  # isotropic: the decay frame's orientation does not matter
                cos_t = rng.uniform(-1.0, 1.0, n)
                phi = rng.uniform(0.0, 2.0 * np.pi, n)
                a, b = back_to_back(p, m_l, cos_t, phi)
                mu1, mu2 = boost(a, parent), boost(b, parent)
            else:  # 1 + λ cos²θ* in the helicity frame
                cos_t = kin.sample_cos_theta(rng, 1.0, lam, n)
                phi = rng.uniform(0.0, 2.0 * np.pi, n)
                mu1, mu2 = decay_in_helicity_frame(parent, m_l, cos_t, phi, mass=masses)
            m_gstar = masses
        else:
            m_gstar = self.mass_samplers[spec.channel].sample(rng, n)
            m3 = 0.0 if spec.third == "gamma" else mass(spec.third or "pi0")
            q = two_body_momentum(big_m, m_gstar, m3)
            e_gstar = np.sqrt(q**2 + m_gstar**2)
            # muons in the γ* rest frame, polar angle about the γ* flight direction (z)
            p = two_body_momentum(m_gstar, m_l, m_l)
            cos_t = kin.sample_dalitz_cos(rng, 4.0 * m_l**2 / m_gstar**2)
            phi = rng.uniform(0.0, 2.0 * np.pi, n)
            a, b = back_to_back(p, m_l, cos_t, phi)
            # boost along z into the parent frame, then turn z onto an isotropic direction
            gam = e_gstar / m_gstar
            bg = q / m_gstar
            for v in (a, b):
                pz, e = v[2].copy(), v[3].copy()
                v[2] = gam * pz + bg * e
                v[3] = gam * e + bg * pz
            # the γ*'s polar angle in the parent frame: isotropic, or drawn by the meson source
            # where it offers ``gstar_cos`` (a closure's truth tilted towards the beam, which
            # carries the draw's importance weights itself)
            draw = getattr(self.mesons, "gstar_cos", None)
            cos_g = rng.uniform(-1.0, 1.0, n) if draw is None else draw(rng, n)
            phi_g = rng.uniform(0.0, 2.0 * np.pi, n)
            a = rotate_from_z(a, cos_g, phi_g)
            b = rotate_from_z(b, cos_g, phi_g)
            mu1, mu2 = boost(a, parent), boost(b, parent)

        if spec.channel == Channel.ETA_MUMU:
            gstar = np.full((5, n), np.nan)
        else:
            g4 = mu1 + mu2
            gstar = np.concatenate([g4, m_gstar[None]])
        pdg = PDGID[spec.parent]
        return Sources(
            channel=np.full(n, int(spec.channel), dtype=np.int32),
            parent_pdgid=np.full(n, pdg, dtype=np.int32),
            mu1=mu1,
            mu2=mu2,
            charge1=np.ones(n, dtype=np.int32),
            charge2=-np.ones(n, dtype=np.int32),
            parent1=np.full(n, pdg, dtype=np.int32),
            parent2=np.full(n, pdg, dtype=np.int32),
            gstar=gstar,
        )


class MesonSource(Protocol):
    """Where the cocktail's mesons come from: their multiplicities per inelastic collision and
    their lab kinematics (:class:`ParametricMesons`, :class:`gammastar.mock.pythia.PythiaMesons`)."""

    name: str
    """``parametric`` or ``pythia`` (``mock.backend``)."""

    @property
    def n_omega_per_collision(self) -> float:
        """⟨n_ω⟩ per inelastic collision."""

    def sigma_rel(self, parent: str) -> float:
        """⟨n_parent⟩/⟨n_ω⟩."""

    def sample(self, rng: np.random.Generator, masses: NDArray[np.float64], parent: str = ""):
        """Lab four-momenta (4, n) of ``masses.size`` parents ``parent`` (``""``: the ω's
        spectra) at the given masses.

        A source may also offer ``gstar_cos(rng, n)``: the cosines of the Dalitz γ*'s polar
        angles in the parent frame (about the beam axis) for the last ``n`` parents it drew,
        in place of the isotropic draw."""


class ParametricMesons:
    """The parametrised spectra (module docstring) and the config's multiplicities
    (``mock.n_omega_per_collision``, ``mock.cross_sections``; the π0: ``mock.electrons.pi0``).

    Arguments:
        cfg: the mock config.
        beam_energy: kinematic limit of the mesons' lab energy (``None``: none).
    """

    name = "parametric"

    def __init__(self, cfg: MockConfig, beam_energy: float | None = None) -> None:
        self.cfg = cfg
        self.beam_energy = beam_energy

    @property
    def n_omega_per_collision(self) -> float:
        return self.cfg.omega_per_collision()

    def sigma_rel(self, parent: str) -> float:
        return sigma_rel(self.cfg, parent)

    def spectra_key(self) -> str:
        """What :meth:`sample` draws a parent without spectra of its own from (the p_T and
        rapidity parameters and the kinematic limit): the detector's absorber, calibrated on
        these spectra, is kept per process by it (:class:`gammastar.mock.detector.Detector`)."""
        c = self.cfg
        return repr((c.pt_temperature, c.pt_mt_power, c.rapidity_mean, c.rapidity_sigma,
                     self.beam_energy) + ((c.falloff,) if c.falloff else ()))  # fmt: skip

    def sample(self, rng: np.random.Generator, masses: NDArray[np.float64], parent: str = ""):
        n = masses.size
        temp, sig = self.cfg.pt_temperature, self.cfg.rapidity_sigma
        if parent == "pi0":  # the π0's own spectra
            temp, sig = self.cfg.electrons.pi0.pt_temperature, self.cfg.electrons.pi0.rapidity_sigma
        pt, y = kin.sample_pt_y(rng, masses, temp, self.cfg.pt_mt_power, self.cfg.rapidity_mean,
                                sig, self.beam_energy, self.cfg.falloff)  # fmt: skip
        phi = rng.uniform(0.0, 2.0 * np.pi, n)
        return four_momentum(masses, pt, y, phi)


def sigma_rel(cfg: MockConfig, parent: str) -> float:
    """σ_parent/σ_ω in the target (``mock.cross_sections``, the π0: ``mock.electrons.pi0``;
    :meth:`gammastar.config.mock.MockConfig.sigma_rel`)."""
    return cfg.sigma_rel(parent)


def _mass_grid(lo: float, hi: float, lepton: str) -> NDArray[np.float64]:
    """Dilepton-mass grid of a Dalitz sampler: quadratic for muons, logarithmic
    for electrons (the Kroll–Wada spectrum ∝ 1/m over two decades above 2m_e)."""
    u = np.linspace(0.0, 1.0, 8001)
    if lepton == "e":
        return lo * (hi / lo) ** u
    return lo + (hi - lo) * u**2
