"""The hadronic cocktail of the NA60-like mock data (physics.md §3.1–3.3).

Channels (``gammastar.channels.Channel``): η → γμμ, η → μμ, η′ → γμμ, ω → μμ, ω → π0μμ,
ρ → μμ, φ → μμ. Meson kinematics: 1/pT dN/dpT ∝ exp(−m_T/T) (m_T scaling, same T for all
mesons), Gaussian lab rapidity, uniform azimuth. Decays:

* two-body V → μμ, η → μμ: parent at its PDG mass (ω, φ and η widths are below the 30 MeV
  resolution); η → μμ isotropic, V → μμ 1 + λ_θ cos²θ* in the meson's helicity frame with
  λ_θ = ``mock.decay_lambda_theta`` (default 0: isotropic);
* ρ → μμ: mass from :func:`gammastar.physics.dalitz.rho_line_shape`, then as V → μμ;
* P → γμμ, V → Pμμ: dimuon mass from the Kroll–Wada / V → Pℓℓ shapes with the form factors
  of the config; γ* isotropic in the parent frame; muons in the γ* rest frame with
  dN/dcosθ ∝ 1 + cos²θ + (4m_μ²/m²) sin²θ about the γ* flight direction.

Channel weights ∝ BR (PDG, :mod:`gammastar.physics.pdgdata`) × σ/σ_ω (config).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from gammastar.channels import Channel
from gammastar.config import MockConfig
from gammastar.errors import ConfigError
from gammastar.mock import kinematics as kin
from gammastar.physics import dalitz
from gammastar.physics.constants import M_MU, PDGID, mass, width
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

RHO_MASS_MAX = 2.0
"""Upper end of the sampled ρ line shape, GeV (the exp(−M/T_ρ) factor makes the rest negligible)."""


@dataclass
class Sources:
    """A batch of generated dimuon sources (structure of arrays, float64 four-vectors (4, n))."""

    channel: NDArray[np.int32]
    parent_pdgid: NDArray[np.int32]
    mu1: NDArray[np.float64]
    mu2: NDArray[np.float64]
    charge1: NDArray[np.int32]
    charge2: NDArray[np.int32]
    parent1: NDArray[np.int32]
    parent2: NDArray[np.int32]
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
    if spec.parent == "eta":
        return lambda m: dalitz.form_factor_pole(m, ff.eta_lambda_inv2)
    if spec.parent == "eta_prime":
        return lambda m: dalitz.form_factor_eta_prime(m, ff.eta_prime_lambda, ff.eta_prime_gamma)
    if spec.parent == "omega":
        return lambda m: dalitz.form_factor_pole(m, ff.omega_lambda_inv2)
    raise ValueError(f"no form factor for {spec.parent}")


class Cocktail:
    """The cocktail generator for a :class:`~gammastar.config.MockConfig`.

    Attributes:
        specs: the channels.
        branching_ratios: BR of each channel (with PDG provenance).
        weights: BR × σ/σ_ω per channel (un-normalised multinomial weights).
        mass_samplers: tabulated dimuon-mass samplers of the Dalitz and ρ channels.
    """

    def __init__(self, cfg: MockConfig, beam_energy: float | None = None) -> None:
        self.cfg = cfg
        self.beam_energy = beam_energy
        """Kinematic limit of the mesons' lab energy (``beam.energy``; ``None``: none)."""
        self.specs = CHANNELS
        self.branching_ratios: dict[Channel, BranchingRatio] = {
            s.channel: branching_ratio(s.br_key) for s in self.specs
        }
        xs = cfg.cross_sections
        self.sigma_rel = {s.channel: float(getattr(xs, s.parent)) for s in self.specs}
        self.weights = np.array(
            [self.branching_ratios[s.channel].value * self.sigma_rel[s.channel] for s in self.specs]
        )
        if not self.weights.sum() > 0:
            raise ConfigError("mock.cross_sections: all cocktail cross-sections are zero")
        self.parent_mass = {s.channel: mass(s.parent) for s in self.specs}
        self.mass_samplers: dict[Channel, kin.InverseCDF] = {}
        for s in self.specs:
            if s.kind == "two_body":
                continue
            self.mass_samplers[s.channel] = self._sampler(s)

    def _sampler(self, s: ChannelSpec) -> kin.InverseCDF:
        big_m = self.parent_mass[s.channel]
        lo = 2.0 * M_MU
        if s.kind == "rho":
            m_pi = mass("pi+")
            lo = 2.0 * m_pi
            grid = lo + (RHO_MASS_MAX - lo) * np.linspace(0.0, 1.0, 8001) ** 2
            return kin.InverseCDF(
                grid,
                lambda m: dalitz.rho_line_shape(
                    m, big_m, width("rho"), m_pi, M_MU, self.cfg.form_factors.rho_temperature
                ),
            )
        ff2 = form_factor2(s, self.cfg)
        if s.kind == "p_dalitz":
            hi = big_m
            grid = lo + (hi - lo) * np.linspace(0.0, 1.0, 8001) ** 2
            return kin.InverseCDF(
                grid, lambda m: dalitz.pseudoscalar_dalitz_dgamma_dm(m, big_m, M_MU, ff2)
            )
        m_p = mass(s.third or "pi0")
        hi = big_m - m_p
        grid = lo + (hi - lo) * np.linspace(0.0, 1.0, 8001) ** 2
        return kin.InverseCDF(
            grid, lambda m: dalitz.vector_dalitz_dgamma_dm(m, big_m, m_p, M_MU, ff2)
        )

    @property
    def probabilities(self) -> NDArray[np.float64]:
        """Normalised channel probabilities (order of :data:`CHANNELS`)."""
        return self.weights / self.weights.sum()

    def mesons_per_collision(self) -> float:
        """Σ_channels ⟨n_m⟩ BR_m: dimuon sources per inelastic collision (normalisation)."""
        return float(self.cfg.n_omega_per_collision * self.weights.sum())

    # ------------------------------------------------------------------ generation
    def _parents(self, rng: np.random.Generator, masses: NDArray[np.float64]):
        n = masses.size
        pt = kin.sample_mt_exponential(rng, masses, self.cfg.pt_temperature)
        y = rng.normal(self.cfg.rapidity_mean, self.cfg.rapidity_sigma, n)
        y = kin.limit_rapidity(
            rng, y, masses, pt, self.beam_energy, self.cfg.rapidity_mean, self.cfg.rapidity_sigma
        )
        phi = rng.uniform(0.0, 2.0 * np.pi, n)
        return kin.meson_four_momentum(masses, pt, y, phi)

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
        parent = self._parents(rng, masses)

        if spec.kind in ("two_body", "rho"):
            p = kin.two_body_momentum(masses, M_MU, M_MU)
            lam = self.lambda_theta(spec)
            if lam == 0.0:  # isotropic: the decay frame's orientation does not matter
                cos_t = rng.uniform(-1.0, 1.0, n)
                phi = rng.uniform(0.0, 2.0 * np.pi, n)
                a, b = kin.back_to_back(p, M_MU, cos_t, phi)
                mu1, mu2 = kin.boost(a, parent), kin.boost(b, parent)
            else:  # 1 + λ cos²θ* in the helicity frame
                cos_t = kin.sample_polar_cos(rng, lam, n)
                phi = rng.uniform(0.0, 2.0 * np.pi, n)
                mu1, mu2 = kin.decay_in_helicity_frame(parent, p, M_MU, cos_t, phi)
            m_gstar = masses
        else:
            m_gstar = self.mass_samplers[spec.channel].sample(rng, n)
            m3 = 0.0 if spec.third == "gamma" else mass(spec.third or "pi0")
            q = kin.two_body_momentum(big_m, m_gstar, m3)
            e_gstar = np.sqrt(q**2 + m_gstar**2)
            # muons in the γ* rest frame, polar angle about the γ* flight direction (z)
            p = kin.two_body_momentum(m_gstar, M_MU, M_MU)
            cos_t = kin.sample_dalitz_cos(rng, 4.0 * M_MU**2 / m_gstar**2)
            phi = rng.uniform(0.0, 2.0 * np.pi, n)
            a, b = kin.back_to_back(p, M_MU, cos_t, phi)
            # boost along z into the parent frame, then turn z onto an isotropic direction
            gam = e_gstar / m_gstar
            bg = q / m_gstar
            for v in (a, b):
                pz, e = v[2].copy(), v[3].copy()
                v[2] = gam * pz + bg * e
                v[3] = gam * e + bg * pz
            cos_g = rng.uniform(-1.0, 1.0, n)
            phi_g = rng.uniform(0.0, 2.0 * np.pi, n)
            a = kin.rotate_from_z(a, cos_g, phi_g)
            b = kin.rotate_from_z(b, cos_g, phi_g)
            mu1, mu2 = kin.boost(a, parent), kin.boost(b, parent)

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
