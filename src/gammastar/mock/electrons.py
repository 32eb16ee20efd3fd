"""Dielectron backgrounds and the electron detector of the mock (docs/reference/mock.md, "Dielectrons").

Offers :class:`ElectronBackgrounds` (photon conversions γ → ee in material and combinatorial
ee events) and :class:`ElectronDetector` (bremsstrahlung in material, energy resolution,
angular window and energy cut, flat efficiency). The dielectron cocktail itself (π0 → γee,
η → γee, ...) is :data:`gammastar.mock.cocktail.EE_CHANNELS`.

* Conversions: the photons of π0 → γγ (π0 spectra of ``mock.electrons.pi0``) convert with
  probability P = 1 − exp(−7/9 · X/X0) (Tsai, Rev. Mod. Phys. 46 (1974) 815; PDG "Passage of
  particles through matter", Eq. 34.32). Energy sharing x = E_e/k from the complete-screening
  Bethe–Heitler spectrum dσ/dx ∝ 1 − 4/3 x(1 − x) (PDG Eq. 34.31); polar angle of each
  lepton about the photon θ = u m_e/E with u from the density ∝ u e^{−a u}, a = 0.625, the
  leading term of the Tsai/Geant4 approximation (Geant4 Physics Reference Manual, "Gamma
  conversion"); the two leptons opposite in azimuth. The pairs have m of a few m_e: like-sign
  subtraction does not remove them; the analysis removes them with a pair-mass cut
  (:func:`conversion_like`, as CERES did with an opening-angle cut).
* Combinatorial ee: each event holds two electrons from two different π0 → γee decays (the
  unpaired partners of Dalitz pairs whose other leg was lost), with independent, symmetric
  charges, so N+− = 2√(N++ N−−) in expectation (R = 1).
* Detector: each electron first radiates in ``material_x0`` radiation lengths: it keeps the
  fraction z of its energy with −ln z ~ Γ(t/ln 2) (Bethe & Heitler 1934; the form used by the
  Gaussian-sum filter, Frühwirth, Comput. Phys. Commun. 154 (2003) 131): a radiative tail below
  the mass peaks. Then its energy is smeared with σ_E/E = a/√E ⊕ b (direction kept), and the
  pair is recorded if both pass E ≥ ``min_energy`` and θ_min ≤ θ ≤ θ_max (true direction).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from gammastar.cocktail_channels import Channel
from gammastar.config.mock import MockConfig, MockElectronDetector
from gammastar.mock.cocktail import EE_CHANNELS, Cocktail, MesonSource, Sources
from gammastar.mock.combinatorial import Combinatorial
from gammastar.mock.detector import Reconstructed
from gammastar.physics.constants import M_E, PDGID, mass
from gammastar.physics.kinematics import (
    back_to_back,
    boost,
    invariant_mass,
    rapidity,
    rotate_from_z,
)
from gammastar.physics.pdgdata import BranchingRatio, branching_ratio

TSAI_A = 0.625
"""a of the conversion-lepton angle density ∝ u e^{−a u}, θ = u m_e/E (Geant4 PRM)."""

PHOTON_PDGID = 22


def conversion_probability(x0: float) -> float:
    """Probability that a high-energy photon converts in ``x0`` radiation lengths.

    Arguments:
        x0: material thickness in radiation lengths.

    Returns:
        1 − exp(−7/9 x0).

    References:
        Y.-S. Tsai, Rev. Mod. Phys. 46 (1974) 815; PDG, "Passage of particles through matter".

    Example:
        >>> round(conversion_probability(0.05), 5)
        0.03814
    """
    return float(-np.expm1(-7.0 / 9.0 * x0))


def conversion_like(m: NDArray[np.float64], m_cut: float) -> NDArray[np.bool_]:
    """Pairs the conversion cut removes: m < ``m_cut`` (GeV).

    Conversion pairs have m ≈ m_e(u₁√(E₂/E₁) + u₂√(E₁/E₂)), a few m_e (see the module
    docstring), before resolution; a cut a few times above that removes them and the π0 → γee
    pairs below it (the A′ search then starts at the cut).

    Example:
        >>> conversion_like(np.array([0.002, 0.05]), 0.01).tolist()
        [True, False]
    """
    return np.asarray(m) < m_cut


class ElectronBackgrounds:
    """Conversions and combinatorial ee events for a :class:`~gammastar.config.mock.MockConfig`.

    Arguments:
        cfg: the mock config.
        beam_energy: kinematic limit of the π0 lab energy (``None``: none).
        mesons: the π0 source (default: the parametric spectra of ``mock.electrons.pi0``).
    """

    def __init__(
        self, cfg: MockConfig, beam_energy: float | None = None, mesons: MesonSource | None = None
    ) -> None:
        self.cfg = cfg
        ecfg = cfg.electrons
        # π0 kinematics (also with σ_π0 = 0: the combinatorial electrons' spectra)
        self.pi0_dalitz = Cocktail(
            cfg, beam_energy, specs=EE_CHANNELS[:1], check=False, mesons=mesons
        )
        self.br_gg: BranchingRatio = branching_ratio("pi0->gammagamma")
        self.p_conversion = conversion_probability(ecfg.detector.material_x0)
        self.conversion_weight = (
            self.pi0_dalitz.mesons.sigma_rel("pi0") * self.br_gg.value * 2.0 * self.p_conversion
            if ecfg.conversions
            else 0.0
        )
        """Conversion pairs per ω (σ_π0/σ_ω × BR(π0 → γγ) × 2 photons × P_conv)."""

    def conversions(self, rng: np.random.Generator, n: int) -> Sources:
        """``n`` conversion pairs (true lab four-momenta; no γ*: ``gstar`` NaN)."""
        m_pi = mass("pi0")
        masses = np.full(n, m_pi)
        parent = self.pi0_dalitz._parents(rng, masses, "pi0")
        # one photon of π0 → γγ, isotropic in the π0 frame
        cos_g = rng.uniform(-1.0, 1.0, n)
        phi_g = rng.uniform(0.0, 2.0 * np.pi, n)
        half = np.full(n, 0.5 * m_pi)
        gamma_rest, _ = back_to_back(half, 0.0, cos_g, phi_g)
        photon = boost(gamma_rest, parent)
        k = photon[3]
        x = _bethe_heitler_x(rng, n)
        e1 = np.maximum(x * k, 1.0001 * M_E)
        e2 = np.maximum((1.0 - x) * k, 1.0001 * M_E)
        u = rng.gamma(2.0, 1.0 / TSAI_A, (2, n))
        th1 = np.minimum(u[0] * M_E / e1, np.pi)
        th2 = np.minimum(u[1] * M_E / e2, np.pi)
        phi = rng.uniform(0.0, 2.0 * np.pi, n)
        leptons = []
        for e, th, ph in ((e1, th1, phi), (e2, th2, phi + np.pi)):
            p = np.sqrt(e**2 - M_E**2)
            st = np.sin(th)
            v = np.stack([p * st * np.cos(ph), p * st * np.sin(ph), p * np.cos(th), e])
            leptons.append(v)
        # photon direction in the lab
        pabs = np.sqrt((photon[:3] ** 2).sum(axis=0))
        cos_l = photon[2] / pabs
        phi_l = np.arctan2(photon[1], photon[0])
        a = rotate_from_z(leptons[0], cos_l, phi_l)
        b = rotate_from_z(leptons[1], cos_l, phi_l)
        return Sources(
            channel=np.full(n, int(Channel.CONVERSION), dtype=np.int32),
            parent_pdgid=np.full(n, PDGID["pi0"], dtype=np.int32),
            mu1=a,
            mu2=b,
            charge1=-np.ones(n, dtype=np.int32),
            charge2=np.ones(n, dtype=np.int32),
            parent1=np.full(n, PHOTON_PDGID, dtype=np.int32),
            parent2=np.full(n, PHOTON_PDGID, dtype=np.int32),
            gstar=np.full((5, n), np.nan),
        )

    def combinatorial(self, rng: np.random.Generator, n: int) -> Sources:
        """``n`` combinatorial events: electron i of π0 Dalitz decay i paired with that of
        decay n + i, each a random leg with a random (symmetric) charge."""
        src = self.pi0_dalitz.generate(rng, self.pi0_dalitz.specs[0], 2 * n)
        leg = rng.random(2 * n) < 0.5
        e = np.where(leg, src.mu1, src.mu2)
        q = np.where(rng.random(2 * n) < 0.5, 1, -1).astype(np.int32)
        pdg = np.full(2 * n, PDGID["pi0"], dtype=np.int32)
        return Combinatorial.pair(e, q, pdg, Channel.COMBINATORIAL_EE)


def _bethe_heitler_x(rng: np.random.Generator, n: int) -> NDArray[np.float64]:
    """Energy fraction x of the electron, density ∝ 1 − 4/3 x(1 − x) on [0, 1] (rejection:
    the density lies between 2/3 and 1)."""
    out = np.empty(n)
    todo = np.arange(n)
    while todo.size:
        x = rng.random(todo.size)
        ok = rng.random(todo.size) < 1.0 - 4.0 / 3.0 * x * (1.0 - x)
        out[todo[ok]] = x[ok]
        todo = todo[~ok]
    return out


class ElectronDetector:
    """Bremsstrahlung, energy resolution, acceptance and efficiency for electrons.

    Arguments:
        cfg: ``mock.electrons.detector``.
    """

    def __init__(self, cfg: MockElectronDetector) -> None:
        self.cfg = cfg

    def sigma_e(self, e: NDArray[np.float64]) -> NDArray[np.float64]:
        """Relative energy resolution σ_E/E = a/√E ⊕ b.

        Example:
            >>> from gammastar.config.mock import MockElectronDetector
            >>> d = ElectronDetector(MockElectronDetector(energy_stochastic=0.1,
            ...                                           energy_constant=0.0))
            >>> float(d.sigma_e(np.array([4.0]))[0])
            0.05
        """
        c = self.cfg
        return np.hypot(c.energy_stochastic / np.sqrt(np.maximum(e, 1e-12)), c.energy_constant)

    def radiate(self, rng: np.random.Generator, n: int) -> NDArray[np.float64]:
        """Fraction z of the energy kept after ``material_x0``: −ln z ~ Γ(t/ln 2) (Bethe–Heitler).

        Returns:
            z in (0, 1], shape (n,); 1 without material.
        """
        t = self.cfg.material_x0
        if t <= 0:
            return np.ones(n)
        return np.exp(-rng.gamma(t / np.log(2.0), 1.0, n))

    def in_window(self, e: NDArray[np.float64]) -> NDArray[np.bool_]:
        """θ_min ≤ θ ≤ θ_max of the lab direction."""
        theta = np.arctan2(np.hypot(e[0], e[1]), e[2])
        return (theta >= self.cfg.theta_min) & (theta <= self.cfg.theta_max)

    def lepton_acceptance(
        self,
        rng: np.random.Generator,
        p_edges: NDArray[np.float64],
        theta_edges: NDArray[np.float64],
        n_per_bin: int,
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Single-electron acceptance in (true p, true θ): what an experiment's detector
        simulation of single electrons gives (``unfold.lepton_acceptance.map``).

        Per momentum bin ``n_per_bin`` electrons (p log-uniform inside the bin) radiate and
        are smeared as in :meth:`apply`; the probability is the fraction with reconstructed
        E ≥ ``min_energy``, times 1 for θ bins inside [θ_min, θ_max] (the window is on the
        true direction) and 0 outside; the θ edges should hold θ_min and θ_max. The pair
        efficiency is not in it (ε, a separate factor).

        Returns:
            ``(probability, variance)``, shape (len(p_edges) − 1, len(theta_edges) − 1).
        """
        c = self.cfg
        lo, hi = np.log(p_edges[:-1]), np.log(p_edges[1:])
        n_p = len(lo)
        p = np.exp(lo[:, None] + (hi - lo)[:, None] * rng.random((n_p, n_per_bin)))
        e_true = np.sqrt(p**2 + M_E**2)
        e_rad = np.maximum(e_true * self.radiate(rng, p.size).reshape(p.shape), M_E)
        g = rng.standard_normal(p.shape)
        e_reco = np.maximum(e_rad * (1.0 + self.sigma_e(e_rad) * g), 1.0001 * M_E)
        frac = (e_reco >= c.min_energy).mean(axis=1)
        centres = 0.5 * (theta_edges[:-1] + theta_edges[1:])
        window = ((centres >= c.theta_min) & (centres <= c.theta_max)).astype(float)
        prob = frac[:, None] * window[None, :]
        return prob, prob * (1.0 - prob) / n_per_bin

    def apply(self, rng: np.random.Generator, src: Sources) -> Reconstructed:
        """Radiate, smear, cut and apply the efficiency to a batch of dielectron sources."""
        n = len(src)
        c = self.cfg
        a, b = src.mu1, src.mu2
        pair_true = a + b
        m_true = invariant_mass(pair_true)
        z = self.radiate(rng, 2 * n).reshape(2, n)
        g = rng.standard_normal((2, n))
        reco = []
        for i, v in enumerate((a, b)):
            e_rad = np.maximum(v[3] * z[i], M_E)
            e_reco = np.maximum(e_rad * (1.0 + self.sigma_e(e_rad) * g[i]), 1.0001 * M_E)
            p_true = np.sqrt((v[:3] ** 2).sum(axis=0))
            f = np.sqrt(e_reco**2 - M_E**2) / np.where(p_true > 0, p_true, 1.0)
            reco.append(np.concatenate([v[:3] * f, e_reco[None]]))
        mu1, mu2 = reco
        pair = mu1 + mu2
        m = invariant_mass(pair)
        pt = np.hypot(pair[0], pair[1])
        y = rapidity(pair)
        ok = (
            (mu1[3] >= c.min_energy)
            & (mu2[3] >= c.min_energy)
            & self.in_window(a)
            & self.in_window(b)
        )
        eff = np.where(ok, c.efficiency, np.nan)
        accepted = ok & (rng.random(n) < c.efficiency)
        return Reconstructed(mu1, mu2, pair, m, pt, y, m_true, ok, eff, accepted)
