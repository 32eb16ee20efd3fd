"""Combinatorial background: random muons from π± → μν and K± → μν (docs/explanation/physics.md §3.2).

Each muon comes from an independent parent meson. Parents (π or K, multiplicity ratio
``kaon_to_pion``) have the same spectra as the cocktail mesons (m_T-exponential pT, Gaussian
rapidity) and are accepted with the probability of decaying before the hadron absorber,
P = 1 − exp(−z_abs m/(p cτ)). Sampling: the species is drawn with probability
∝ n_s BR_s P_s,max and the parent accepted with P/P_s,max, which gives exactly a muon density
∝ n_s BR_s f_s(p) P(p); parents with E below the detector's loose bound E_min/(1 + 6 s_max)
(:func:`~gammastar.mock.detector.loose_energy_bound`) are dropped first: a muon never has more
energy than its parent, and below that bound it would need a > 6σ upward smearing fluctuation at
the smearing cap to pass the energy cut. (A tighter bound, 0.8 E_min, loses recorded
pairs, most below m = 0.3 GeV, where the smearing reaches its 25% cap.)

A combinatorial event holds two such muons with independent charges (μ+ with probability
``mu_plus_fraction``), so ++, −− and +− pairs all occur with
N+− = 2 √(N++ N−−) in expectation (charge-symmetric acceptance, R = 1).
"""

from __future__ import annotations

import numpy as np

from gammastar.cocktail_channels import Channel
from gammastar.config.mock import MockConfig
from gammastar.errors import GammastarError
from gammastar.mock.cocktail import Sources
from gammastar.mock.detector import loose_energy_bound
from gammastar.physics import sampling as kin
from gammastar.physics.constants import M_MU, PDGID, mass
from gammastar.physics.kinematics import boost, energy_pt_y, four_momentum, two_body_momentum
from gammastar.physics.pdgdata import branching_ratio


class Combinatorial:
    """Generator of combinatorial events for a :class:`~gammastar.config.mock.MockConfig`.

    Arguments:
        cfg: the mock config.
        e_min: parent-energy pre-cut in GeV (default: the detector's loose bound,
            :func:`~gammastar.mock.detector.loose_energy_bound`); a lower value only costs time.
    """

    def __init__(
        self, cfg: MockConfig, e_min: float | None = None, beam_energy: float | None = None
    ) -> None:
        self.cfg = cfg
        self.beam_energy = beam_energy
        """Kinematic limit of the parents' lab energy (``beam.energy``; ``None``: none)."""
        c = cfg.combinatorial
        if e_min is None:
            e_min = loose_energy_bound(cfg.detector)
        elif not np.isfinite(e_min) or e_min < 0:
            raise GammastarError(f"Combinatorial: e_min must be a finite energy >= 0, not {e_min}")
        self.e_min = float(e_min)
        self.species = ("pi+", "K+")
        self.masses = np.array([mass("pi+"), mass("K+")])
        self.ctau = np.array([c.pion_ctau, c.kaon_ctau])
        self.br = np.array([branching_ratio("pi->munu").value, branching_ratio("K->munu").value])
        mult = np.array([1.0, c.kaon_to_pion])
        # the smallest parent momentum that can give a muon above the energy cut
        e_par = np.maximum(self.e_min, self.masses * 1.000001)
        p_min = np.sqrt(e_par**2 - self.masses**2)
        self.p_bound = -np.expm1(-c.z_absorber * self.masses / (p_min * self.ctau))
        w = mult * self.br * self.p_bound
        self.species_prob = w / w.sum()
        self._oversample = 4.5

    def decay_probability(self, species: np.ndarray, p: np.ndarray) -> np.ndarray:
        """P = 1 − exp(−z_abs m/(p cτ)) for species index 0 (π) / 1 (K)."""
        m, ctau = self.masses[species], self.ctau[species]
        return -np.expm1(-self.cfg.combinatorial.z_absorber * m / (p * ctau))

    def muons(self, rng: np.random.Generator, n: int, *, parent_energy: bool = False):
        """``n`` independent muons: (four-momenta (4, n), charges, parent PDG ids), and with
        ``parent_energy`` also the parents' energies (n,)."""
        out_p, out_s = [], []
        have = 0
        while have < n:
            need = n - have
            k = max(int(need * self._oversample) + 64, 1024)
            species = (rng.random(k) < self.species_prob[1]).astype(np.intp)
            m = self.masses[species]
            pt = kin.sample_mt_exponential(rng, m, self.cfg.pt_temperature)
            y = rng.normal(self.cfg.rapidity_mean, self.cfg.rapidity_sigma, k)
            y = kin.limit_rapidity(
                rng, y, m, pt, self.beam_energy, self.cfg.rapidity_mean, self.cfg.rapidity_sigma
            )
            phi = rng.uniform(0.0, 2.0 * np.pi, k)
            u = rng.random(k)
            # the decision needs only E and |p|; the four-momenta are made for the kept
            # candidates alone (most are not)
            e = energy_pt_y(m, pt, y)
            pabs = np.sqrt(np.clip(e**2 - m**2, 1e-300, None))
            keep = (e > self.e_min) & (
                u * self.p_bound[species] < self.decay_probability(species, pabs)
            )
            kept = np.flatnonzero(keep)
            # candidates per accepted muon, learnt as we go (deterministic for a given seed)
            self._oversample = min(1.1 * k / max(kept.size, 1), 100.0)
            idx = kept[:need]
            out_p.append(four_momentum(m[idx], pt[idx], y[idx], phi[idx]))
            out_s.append(species[idx])
            have += idx.size
        parent = np.concatenate(out_p, axis=1)
        species = np.concatenate(out_s)
        m = self.masses[species]
        p_star = two_body_momentum(m, M_MU, 0.0)
        cos_t = rng.uniform(-1.0, 1.0, n)
        phi = rng.uniform(0.0, 2.0 * np.pi, n)
        sin_t = np.sqrt(1.0 - cos_t**2)
        rest = np.stack(
            [
                p_star * sin_t * np.cos(phi),
                p_star * sin_t * np.sin(phi),
                p_star * cos_t,
                np.sqrt(p_star**2 + M_MU**2),
            ]
        )
        muon = boost(rest, parent)
        charge = np.where(rng.random(n) < self.cfg.combinatorial.mu_plus_fraction, 1, -1).astype(
            np.int32
        )
        pdg = np.array([PDGID["pi+"], PDGID["K+"]], dtype=np.int32)[species] * charge
        if parent_energy:
            return muon, charge, pdg, parent[3].copy()
        return muon, charge, pdg

    def generate(self, rng: np.random.Generator, n: int) -> Sources:
        """``n`` combinatorial events, two random muons each."""
        return self.pair(*self.muons(rng, 2 * n))

    @staticmethod
    def pair(
        muon: np.ndarray,
        charge: np.ndarray,
        pdg: np.ndarray,
        channel: Channel = Channel.COMBINATORIAL,
    ) -> Sources:
        """Combinatorial events of ``2n`` leptons (:meth:`muons`; the electron arm's pairs
        with ``channel`` ``COMBINATORIAL_EE``): lepton ``i`` with ``n + i``, no γ*."""
        n = charge.size // 2
        return Sources(
            channel=np.full(n, int(channel), dtype=np.int32),
            parent_pdgid=np.zeros(n, dtype=np.int32),
            mu1=muon[:, :n],
            mu2=muon[:, n:],
            charge1=charge[:n],
            charge2=charge[n:],
            parent1=pdg[:n],
            parent2=pdg[n:],
            gstar=np.full((5, n), np.nan),
        )
