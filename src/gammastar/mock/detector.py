"""The NA60-like detector model of the mock generator (physics.md §3.5).

1. Momentum smearing: each muon's momentum is scaled by (1 + δ), δ ~ N(0, s), direction kept.
   ``s`` is set per pair from the linearised dependence of the pair mass on the two momentum
   scales, ∂m/∂δ_i = (E_j |p_i|²/E_i − p_i·p_j)/m, so that the reconstructed dimuon mass has
   σ_m(m) = ``mass_resolution`` · (m/``mass_resolution_ref``)^``mass_resolution_exponent`` at
   every mass (a tuned stand-in for a spectrometer, not a tracking simulation). ``s`` is capped
   at ``max_momentum_smearing`` (25%): within a few tens of MeV of the 2m_μ threshold the pair
   mass hardly depends on the momentum scales and the resolution there is smaller.
2. Kinematic acceptance on the reconstructed muons: E > ``muon_min_energy`` (the hadron
   absorber) and ``theta_min`` < θ < ``theta_max`` (lab polar angle; defaults 35–120 mrad, the
   window quoted for the NA50 muon spectrometer that NA60 inherited, and the mock LLP detector
   of the paper's App. B, physics.md §9). With ``toroid_pt_kick`` > 0 the window applies to
   the direction after a charge-signed radial kick (a stand-in for a toroid, which bends μ+
   and μ− apart): a charge-dependent acceptance (default 0: charge-blind).
3. Efficiency: ε(m, pT) of the reconstructed pair from the map in ``data/``, applied by
   accept/reject (flat outside the map: nearest bin). The map is read and checked by
   :func:`gammastar.unfold.load_efficiency_map`, the reader the unfolding uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from gammastar.config import AnalysisConfig, MockDetector
from gammastar.mock import kinematics as kin
from gammastar.mock.cocktail import Sources
from gammastar.pair_acceptance import LeptonAcceptance
from gammastar.physics.kinematics import rapidity
from gammastar.unfold import EfficiencyMap, lookup_efficiency

SHIPPED_MAP = "efficiency_na60_like.root"


def resolve_efficiency_map(config: AnalysisConfig) -> Path | None:
    """The file of ``mock.efficiency_map`` (:meth:`AnalysisConfig.resolve_data`: resolved
    against the config's directory, else the file of that name shipped with gammastar).

    Raises:
        ConfigError: the file is not found.
    """
    mock = config.mock
    name = mock.efficiency_map if mock is not None else f"../data/{SHIPPED_MAP}"
    if name is None:
        return None
    return config.resolve_data(name, "mock.efficiency_map")


LOOSE_SIGMAS = 6.0
"""Upward smearing fluctuation (in units of the capped width) beyond which a muon is taken never
to pass the energy cut; see :func:`loose_energy_bound`."""


def loose_energy_bound(cfg: MockDetector) -> float:
    """The smallest true muon energy that can still pass the energy cut after smearing.

    E_min/(1 + 6 s_max): below it a > 6σ upward fluctuation at the smearing cap s_max
    (``max_momentum_smearing``) would be needed (probability < 1e-9 per muon). The detector
    skips muons below it, and the combinatorial generator drops parents below it.
    """
    return cfg.muon_min_energy / (1.0 + LOOSE_SIGMAS * cfg.max_momentum_smearing)


@dataclass
class Reconstructed:
    """Detector-level view of a :class:`~gammastar.mock.cocktail.Sources` batch."""

    mu1: NDArray[np.float64]
    mu2: NDArray[np.float64]
    """Smeared muon four-momenta (px, py, pz, E), (4, n), GeV."""
    pair: NDArray[np.float64]
    """mu1 + mu2, (4, n), GeV."""
    m: NDArray[np.float64]
    pt: NDArray[np.float64]
    y: NDArray[np.float64]
    """Reconstructed pair mass (GeV), transverse momentum (GeV) and lab rapidity."""
    m_true: NDArray[np.float64]
    """True dimuon mass, GeV."""
    in_acceptance: NDArray[np.bool_]
    """Both muons pass the energy and angle cuts."""
    eff: NDArray[np.float64]
    accepted: NDArray[np.bool_]
    """In acceptance and survived the efficiency accept/reject."""


class Detector:
    """Smearing, acceptance and efficiency for a :class:`~gammastar.config.MockDetector`."""

    def __init__(self, cfg: MockDetector, efficiency: EfficiencyMap) -> None:
        self.cfg = cfg
        self.efficiency = efficiency
        self.lepton = LeptonAcceptance.from_config(cfg)
        """The per-muon acceptance, the class the analysis's per-pair acceptance uses."""

    def sigma_m(self, m: NDArray[np.float64]) -> NDArray[np.float64]:
        """Target dimuon-mass resolution σ_m(m) in GeV."""
        c = self.cfg
        return c.mass_resolution * (m / c.mass_resolution_ref) ** c.mass_resolution_exponent

    def in_window(
        self, mu: NDArray[np.float64], charge: NDArray[np.integer] | None = None
    ) -> NDArray[np.bool_]:
        """Single-muon angular window θ_min ≤ θ' ≤ θ_max (no energy cut), tan θ' =
        (pT + q·kick)/pz (``toroid_pt_kick``)."""
        c = self.cfg
        if c.toroid_pt_kick:  # tan θ' = (pT + q·kick)/pz, a stand-in beyond LeptonAcceptance
            if charge is None:
                raise ValueError("Detector.in_window: toroid_pt_kick > 0 needs the charges")
            t = np.sqrt(mu[0] ** 2 + mu[1] ** 2) + np.asarray(charge) * c.toroid_pt_kick
            pz = mu[2]
            return (pz > 0) & (t > np.tan(c.theta_min) * pz) & (t < np.tan(c.theta_max) * pz)
        theta = np.arctan2(np.hypot(mu[0], mu[1]), mu[2])
        return self.lepton.probability(np.full(theta.shape, np.inf), theta) > 0

    def passes(
        self, mu: NDArray[np.float64], charge: NDArray[np.integer] | None = None
    ) -> NDArray[np.bool_]:
        """Single-muon acceptance (:class:`~gammastar.pair_acceptance.LeptonAcceptance`, the
        class the analysis uses): E ≥ E_min and θ_min ≤ θ' ≤ θ_max (:meth:`in_window`)."""
        return (mu[3] >= self.lepton.min_energy) & self.in_window(mu, charge)

    def apply(self, rng: np.random.Generator, src: Sources) -> Reconstructed:
        """Smear, cut and apply the efficiency to a batch of sources.

        Only sources whose true muons lie in the angular window (the smearing keeps
        directions, so this is exact) and have E > :func:`loose_energy_bound` (a > 6σ upward
        fluctuation would be needed otherwise) are smeared; the others keep their true
        momenta in the returned arrays, are never in acceptance and have ``eff`` = NaN.
        """
        n = len(src)
        a_all, b_all = src.mu1, src.mu2
        pair_all = a_all + b_all
        m_true = kin.invariant_mass(pair_all)
        c = self.cfg
        e_loose = loose_energy_bound(c)
        pre = np.flatnonzero(
            (a_all[3] > e_loose)
            & (b_all[3] > e_loose)
            & self.in_window(a_all, src.charge1)
            & self.in_window(b_all, src.charge2)
        )
        a, b, mt = a_all[:, pre], b_all[:, pre], m_true[pre]
        k = pre.size
        pa2 = (a[:3] ** 2).sum(axis=0)
        pb2 = (b[:3] ** 2).sum(axis=0)
        pab = (a[:3] * b[:3]).sum(axis=0)
        safe_m = np.where(mt > 0, mt, 1.0)
        da = (b[3] * pa2 / a[3] - pab) / safe_m
        db = (a[3] * pb2 / b[3] - pab) / safe_m
        grad = np.sqrt(da**2 + db**2)
        s = self.sigma_m(mt) / np.where(grad > 0, grad, np.inf)
        s = np.minimum(s, c.max_momentum_smearing)
        z = rng.standard_normal((2, k)) * s
        # a momentum scale stays positive (|δ| > 0.9 needs > 3.6σ at the cap)
        mu1_k = _scale(a, np.maximum(1.0 + z[0], 0.1))
        mu2_k = _scale(b, np.maximum(1.0 + z[1], 0.1))
        pair_k = mu1_k + mu2_k
        m_k = kin.invariant_mass(pair_k)
        pt_k = np.hypot(pair_k[0], pair_k[1])
        # the window was applied to the true directions (the smearing keeps them; the toroid
        # kick acts on the true momenta); the energy cut decides on the smeared muons
        e_min = self.lepton.min_energy
        ok_k = (mu1_k[3] >= e_min) & (mu2_k[3] >= e_min)
        eff_k = np.full(k, np.nan)
        eff_k[ok_k] = lookup_efficiency(self.efficiency, m_k[ok_k], pt_k[ok_k], nearest=True)[0]
        u = rng.random(k)
        acc_k = ok_k & (u < np.nan_to_num(eff_k))

        mu1, mu2, pair = a_all.copy(), b_all.copy(), pair_all
        mu1[:, pre], mu2[:, pre], pair[:, pre] = mu1_k, mu2_k, pair_k
        m = m_true.copy()
        m[pre] = m_k
        pt = np.hypot(pair[0], pair[1])
        y = rapidity(pair)
        ok = np.zeros(n, dtype=bool)
        ok[pre] = ok_k
        eff = np.full(n, np.nan)
        eff[pre] = eff_k
        accepted = np.zeros(n, dtype=bool)
        accepted[pre] = acc_k
        return Reconstructed(mu1, mu2, pair, m, pt, y, m_true, ok, eff, accepted)


def _scale(p: NDArray[np.float64], f: NDArray[np.float64]) -> NDArray[np.float64]:
    out = np.empty_like(p)
    out[:3] = p[:3] * f
    m2 = np.clip(p[3] ** 2 - (p[:3] ** 2).sum(axis=0), 0.0, None)
    out[3] = np.sqrt((out[:3] ** 2).sum(axis=0) + m2)
    return out
