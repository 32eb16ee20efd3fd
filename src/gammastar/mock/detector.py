"""The NA60-like detector model of the mock generator (docs/explanation/physics.md §3.5; docs/reference/mock.md "Detector").

1. Resolution, ``mock.detector.resolution_model``:

   ``scattering`` (default): a muon spectrometer behind a hadron absorber (NA50/NA60). The
   spectrometer measures each muon's momentum to σ_p/p = ``momentum_resolution`` ⊕
   ``momentum_resolution_slope``·p (Gaussian, direction kept), and the muon's direction is
   deflected by multiple scattering in the absorber: two independent Gaussian kicks
   (orthogonal planes containing the muon's direction) of width

       θ₀(p) = K/(βp),  K = 13.6 MeV · √(x/X₀) · (1 + 0.038 ln(x/X₀))

   (PDG RPP, "Passage of particles through matter", eq. 34.16, z = 1; β in the logarithm set
   to 1: muons above the 3 GeV absorber cut). The spectrometer sees and measures the scattered
   direction. Near a real spectrometer's mass resolution the angular term dominates (momenta
   are measured to 1–2%), and it is what makes σ_m nearly independent of the pair momentum
   (θ₀ ∝ 1/p like the opening angle), so the model has **one absorber constant K, computed
   from the config**: K² = (σ_m(m_ref)² − ⟨V_p⟩)/⟨U⟩ over isotropic two-body decays at
   ``mass_resolution_ref`` (the cocktail's meson p_T and rapidity spectra, both true muons in
   acceptance; :func:`calibrate_absorber`), V_p the pair's linearised mass variance from the
   momentum resolution and K²U the one from the kicks (δm = −p_b·δp_a/m per muon:
   U = (|p_a||p_b| sin θ_ab/m)² (1/(β_a p_a)² + 1/(β_b p_b)²)). The reconstructed ω (for the
   default reference) then has RMS(m − m_true) = ``mass_resolution``; at other masses σ_m
   follows from the kinematics (≈ √2 K β* for a symmetric decay, β* = √(1 − 4m_μ²/m²): it
   falls towards threshold instead of being forced to 30 MeV there). A per-pair width tuned
   to a target σ_m at every mass was the alternative: it needs unphysically large kicks near
   threshold (where ∂m/∂θ → 0), the failure of the ``momentum`` model. K is reported
   with its equivalent absorber thickness x/X₀ (:attr:`Detector.absorber`); it is an
   effective number (a vertex telescope such as NA60's measures angles before most of the
   absorber), not a geometry.

   ``momentum``: the alternative model. Each muon's momentum is scaled by (1 + δ), δ ~ N(0, s),
   direction kept, with ``s`` set per pair from ∂m/∂δ_i = (E_j |p_i|²/E_i − p_i·p_j)/m so
   that σ_m(m) = ``mass_resolution`` · (m/``mass_resolution_ref``)^``mass_resolution_exponent``
   at every mass, capped at ``max_momentum_smearing`` (25%) near threshold. It needs 10–25%
   momentum smearing at low mass (docs/validation/closure.md: the threshold-region deficit).
2. Kinematic acceptance on the reconstructed (scattered, measured) muons: E >
   ``muon_min_energy`` (the hadron absorber) and ``theta_min`` < θ < ``theta_max`` (lab polar
   angle; defaults 35–120 mrad, the window quoted for the NA50 muon spectrometer that NA60
   inherited, and the mock LLP detector of the paper's App. B, docs/explanation/physics.md §9). The window is
   geometric, so it acts on the direction the muon has in the spectrometer, i.e. after the
   scattering in the absorber, which is also the direction measured; the momentum model keeps
   directions, so there it is the true direction. With ``toroid_pt_kick`` > 0 the window
   applies to the direction after a charge-signed radial kick (a stand-in for a toroid, which
   bends μ+ and μ− apart): a charge-dependent acceptance (default 0: charge-blind).
3. Efficiency: ε(m, pT) of the reconstructed pair from the map in ``data/``, applied by
   accept/reject (flat outside the map: nearest bin). The map is read and checked by
   :func:`gammastar.corrections.unfold.efficiency.load_efficiency_map`, the reader the unfolding
   uses.

References:
    R. L. Workman et al. (Particle Data Group), PTEP 2022 083C01, "Passage of particles
    through matter", §34.3 (multiple scattering, eq. 34.16); NA60, Eur. Phys. J. C 59 (2009)
    607 (the dimuon spectrometer behind the hadron absorber).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from gammastar.config import AnalysisConfig
from gammastar.config.mock import MockDetector
from gammastar.corrections.pair_acceptance.lepton import LeptonAcceptance
from gammastar.corrections.unfold.efficiency import EfficiencyMap, lookup_efficiency
from gammastar.errors import ConfigError
from gammastar.mock.cocktail import Sources
from gammastar.physics.constants import M_MU
from gammastar.physics.kinematics import (
    back_to_back,
    boost,
    invariant_mass,
    rapidity,
    two_body_momentum,
)

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
"""Upward smearing fluctuation (in units of the largest relative momentum width), and
scattering kick (in units of θ₀), beyond which a muon is taken never to pass the energy cut or
to enter the window; see :func:`loose_energy_bound` and :meth:`Detector.apply`."""

HIGHLAND_MEV = 13.6
"""The 13.6 MeV of the multiple-scattering width, PDG RPP eq. 34.16."""

CALIBRATION_SEED = 20261123
"""Seed of the absorber calibration sample: K is a property of the detector config, the same
for every run seed (recorded in ``meta.detector_calibration``)."""

CALIBRATION_SOURCES = 200_000
"""Isotropic two-body decays generated at ``mass_resolution_ref`` to calibrate K (of which
those with both true muons in acceptance are used: ~7% for the defaults)."""


def momentum_resolution(cfg: MockDetector, p: NDArray[np.float64]) -> NDArray[np.float64]:
    """σ_p/p = ``momentum_resolution`` ⊕ ``momentum_resolution_slope`` · p (scattering model).

    Example:
        >>> from gammastar.config.mock import MockDetector
        >>> cfg = MockDetector(momentum_resolution=0.03, momentum_resolution_slope=0.0004)
        >>> momentum_resolution(cfg, np.array([100.0])).round(6).tolist()
        [0.05]
    """
    return np.hypot(cfg.momentum_resolution, cfg.momentum_resolution_slope * np.asarray(p))


def loose_energy_bound(cfg: MockDetector) -> float:
    """The smallest true muon energy that can still pass the energy cut after smearing.

    E_min/(1 + 6 s_max): below it a > 6σ upward fluctuation at the largest relative width
    s_max a muon below E_min can have (``max_momentum_smearing`` for the momentum model,
    σ_p/p at p = E_min for the scattering model: σ_p/p rises with p) would be needed
    (probability < 1e-9 per muon). The detector skips muons below it, and the combinatorial
    generator drops parents below it.

    Example:
        >>> from gammastar.config.mock import MockDetector
        >>> round(loose_energy_bound(MockDetector(momentum_resolution=0.02)), 6)  # 3/(1 + 6·0.02)
        2.678571
    """
    if cfg.resolution_model == "momentum":
        s_max = cfg.max_momentum_smearing
    else:
        s_max = float(momentum_resolution(cfg, np.asarray(cfg.muon_min_energy, dtype=np.float64)))
    return cfg.muon_min_energy / (1.0 + LOOSE_SIGMAS * s_max)


def highland(x_over_x0: float) -> float:
    """K = 13.6 MeV · √(x/X₀) · (1 + 0.038 ln(x/X₀)) in GeV: θ₀ = K/(βp) for a unit charge
    (β in the logarithm set to 1).

    References:
        PDG RPP, "Passage of particles through matter", eq. 34.16.

    Example:
        >>> round(highland(1.0), 6)
        0.0136
    """
    return float(HIGHLAND_MEV * 1e-3 * np.sqrt(x_over_x0) * (1.0 + 0.038 * np.log(x_over_x0)))


def equivalent_thickness(k: float) -> float:
    """x/X₀ with :func:`highland` (x/X₀) = ``k`` (GeV), on the branch x/X₀ > 1e-3 where
    eq. 34.16 holds (it is monotonic there); 0 for k = 0.

    Example:
        >>> round(equivalent_thickness(highland(2.5)), 9)
        2.5
    """
    if k <= 0:
        return 0.0
    from scipy.optimize import brentq

    return float(brentq(lambda x: highland(x) - k, 1e-3, 1e6, xtol=1e-12, rtol=1e-12))


@dataclass(frozen=True)
class Absorber:
    """The scattering model's absorber constant, calibrated from the config
    (:func:`calibrate_absorber`)."""

    k: float
    """K of θ₀ = K/(βp), GeV."""
    x_over_x0: float
    """The equivalent absorber thickness (:func:`equivalent_thickness`)."""
    k_linearised: float
    """K from the linearised mass variance (the start of the exact calibration), GeV."""
    sigma_m_momentum: float
    """σ_m at the reference mass from the momentum resolution alone (K = 0), GeV."""
    sigma_m_rel_err: float
    """Relative statistical error of the calibration sample's σ_m (the error K inherits)."""
    n_pairs: int
    """Calibration pairs recorded at the calibrated K."""

    def as_dict(self) -> dict:
        return {
            "model": "scattering",
            "absorber_constant_gev": self.k,
            "equivalent_x_over_x0": self.x_over_x0,
            "absorber_constant_linearised_gev": self.k_linearised,
            "sigma_m_momentum_at_ref": self.sigma_m_momentum,
            "sigma_m_rel_err": self.sigma_m_rel_err,
            "calibration_pairs": self.n_pairs,
            "calibration_sources": CALIBRATION_SOURCES,
            "calibration_seed": CALIBRATION_SEED,
        }


def mass_variance_terms(
    a: NDArray[np.float64], b: NDArray[np.float64], cfg: MockDetector
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Linearised variance of the pair mass, per pair, of the scattering model: V_p from the
    momentum resolution and U = V_θ/K² from the kicks (σ_m² = V_p + K² U).

    For muon i of pair (i, j): ∂m/∂ln p_i = (E_j |p_i|²/E_i − p_i·p_j)/m, and a kick α ⊥ p̂_i
    changes m by −|p_i| (p_j · α)/m (only the kick's component along p_j⊥i counts), so
    V_θ = (|p_i||p_j| sin θ_ij/m)² (θ₀i² + θ₀j²) with θ₀ = K/(βp).

    Arguments:
        a, b: true muon four-momenta (4, n), GeV.
        cfg: the detector config (``momentum_resolution``, ``momentum_resolution_slope``).

    Returns:
        (V_p, U), (n,) each: V_p in GeV², U dimensionless (K² U in GeV²).

    Example:
        >>> from gammastar.config.mock import MockDetector
        >>> from gammastar.physics import kinematics as kin
        >>> m, p = 0.78, 10.0  # symmetric decay perpendicular to a boost along z
        >>> ps = float(kin.two_body_momentum(m, M_MU, M_MU))
        >>> a, b = kin.back_to_back(np.array([ps]), M_MU, np.array([0.0]), np.array([0.0]))
        >>> par = kin.four_momentum(np.array([m]), np.array([0.0]),
        ...                         np.array([np.arcsinh(p / m)]), np.array([0.0]))
        >>> vp, u = mass_variance_terms(kin.boost(a, par), kin.boost(b, par),
        ...                             MockDetector(momentum_resolution=0.0))
        >>> beta_star = 2 * ps / m  # U = 2 β*²(1 + O(m²/p_μ²)) for a symmetric decay
        >>> float(vp[0]), round(float(u[0]) / (2 * beta_star**2), 2)  # p_μ ≈ 5 GeV here
        (0.0, 0.99)
    """
    pa2 = (a[:3] ** 2).sum(axis=0)
    pb2 = (b[:3] ** 2).sum(axis=0)
    pab = (a[:3] * b[:3]).sum(axis=0)
    m = invariant_mass(a + b)
    safe_m = np.where(m > 0, m, 1.0)
    sa = momentum_resolution(cfg, np.sqrt(pa2))
    sb = momentum_resolution(cfg, np.sqrt(pb2))
    da = (b[3] * pa2 / a[3] - pab) / safe_m
    db = (a[3] * pb2 / b[3] - pab) / safe_m
    v_p = (da * sa) ** 2 + (db * sb) ** 2
    sin2 = np.clip(1.0 - pab**2 / (pa2 * pb2), 0.0, None)
    # θ₀² (βp)² = K²: 1/(β p)² = E²/p⁴
    u = pa2 * pb2 * sin2 / safe_m**2 * (a[3] ** 2 / pa2**2 + b[3] ** 2 / pb2**2)
    return v_p, u


def calibration_pairs(
    parents: Callable[[np.random.Generator, NDArray[np.float64]], NDArray[np.float64]],
    mass: float,
    n: int = CALIBRATION_SOURCES,
    seed: int = CALIBRATION_SEED,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``n`` isotropic two-body decays X → μ+μ− at ``mass`` (true lab muon four-momenta).

    Arguments:
        parents: ``parents(rng, masses)`` → lab four-momenta (4, n) of the decaying particles
            (the cocktail's meson p_T and rapidity spectra).
        mass: the parent mass, GeV.
        n, seed: sample size and its seed.
    """
    rng = np.random.default_rng(seed)
    masses = np.full(n, float(mass))
    parent = parents(rng, masses)
    p = two_body_momentum(masses, M_MU, M_MU)
    cos_t = rng.uniform(-1.0, 1.0, n)
    phi = rng.uniform(0.0, 2.0 * np.pi, n)
    a, b = back_to_back(p, M_MU, cos_t, phi)
    return boost(a, parent, mass=masses), boost(b, parent, mass=masses)


def calibrate_absorber(det: Detector, parents: Callable[..., NDArray[np.float64]]) -> Absorber:
    """The absorber constant K for which the detector records isotropic two-body decays at
    ``mass_resolution_ref`` with std(m − m_true) = ``mass_resolution``.

    The linearised K² = (σ_m² − ⟨V_p⟩)/⟨U⟩ (:func:`mass_variance_terms`, true muons in
    acceptance; the variance of a zero-mean mixture is the mean of its variances) starts a
    root search (Brent) of the exact condition: the sample smeared with fixed normal deviates
    (common random numbers: σ_m(K) is smooth), the acceptance on the measured muons, the
    second-order terms included. On :func:`calibration_pairs` with a fixed seed: K depends
    on the config only.

    Arguments:
        det: the detector (its config and single-muon acceptance).
        parents: the meson spectra (:func:`calibration_pairs`).

    Raises:
        ConfigError: no calibration pair in acceptance, or the momentum resolution alone
            reaches ``mass_resolution``.
    """
    from scipy.optimize import brentq

    cfg = det.cfg
    a, b = calibration_pairs(parents, cfg.mass_resolution_ref)
    ones = np.ones(a.shape[1], dtype=np.int32)
    ok = det.passes(a, ones) & det.passes(b, -ones)
    if not ok.any():
        raise ConfigError(
            "mock.detector: no muon pair of mass mass_resolution_ref "
            f"({cfg.mass_resolution_ref} GeV) in the acceptance; cannot calibrate the "
            "absorber of resolution_model: scattering"
        )
    v_p, u = mass_variance_terms(a[:, ok], b[:, ok], cfg)
    target = cfg.mass_resolution

    def too_small(sigma_p: float) -> ConfigError:
        return ConfigError(
            f"mock.detector.mass_resolution ({target} GeV) is not above the mass resolution "
            f"from mock.detector.momentum_resolution alone ({sigma_p:.4g} GeV at "
            f"{cfg.mass_resolution_ref} GeV): raise the one or lower the other"
        )

    if target**2 <= v_p.mean():
        if target == 0 and cfg.momentum_resolution == cfg.momentum_resolution_slope == 0:
            return Absorber(0.0, 0.0, 0.0, 0.0, 0.0, int(ok.sum()))  # no smearing at all
        raise too_small(float(np.sqrt(v_p.mean())))
    k_lin = float(np.sqrt((target**2 - v_p.mean()) / u.mean()))
    k_hi = 3.0 * k_lin
    # the pairs that can be recorded for any K ≤ k_hi (Detector.apply's loose pre-cut)
    e_loose = loose_energy_bound(cfg)
    pre = (a[3] > e_loose) & (b[3] > e_loose)
    pre &= det.in_window(a, ones, _kick_margin(cfg, k_hi, a))
    pre &= det.in_window(b, -ones, _kick_margin(cfg, k_hi, b))
    a, b, q = a[:, pre], b[:, pre], ones[pre]
    mt = invariant_mass(a + b)
    z = np.random.default_rng(CALIBRATION_SEED + 1).standard_normal((6, mt.size))

    def residuals(k: float) -> NDArray[np.float64]:
        mu1, mu2 = _scattered(cfg, k, a, b, z)
        rec = det.passes(mu1, q) & det.passes(mu2, -q)
        return (invariant_mass(mu1 + mu2) - mt)[rec]

    def excess(k: float) -> float:
        return float(residuals(k).std()) - target

    sigma_p = excess(0.0) + target
    if sigma_p >= target:
        raise too_small(sigma_p)
    lo, hi = 0.8 * k_lin, 1.25 * k_lin  # the linearisation is good to ~1% at the ω
    if excess(lo) > 0:
        lo = 0.0
    if excess(hi) < 0:
        hi = k_hi
        if excess(hi) < 0:
            raise ConfigError(
                f"mock.detector.mass_resolution ({target} GeV): the scattering model does not "
                f"reach it at {cfg.mass_resolution_ref} GeV with K ≤ 3 × the linearised K"
            )
    # K to 1e-4: far below the sample's statistical error (sigma_m_rel_err, ~0.5%)
    k = float(brentq(excess, lo, hi, xtol=1e-4 * k_lin))
    d = residuals(k)
    # se(σ̂)/σ = √(μ₄ − σ⁴)/(2σ²√n)
    c = d - d.mean()
    rel = float(np.sqrt(np.var(c**2)) / (2 * np.var(c) * np.sqrt(d.size)))
    return Absorber(k, equivalent_thickness(k), k_lin, sigma_p, rel, int(d.size))


def _kick_margin(cfg: MockDetector, k: float, mu: NDArray[np.float64]) -> NDArray[np.float64]:
    """How far (rad) outside the window a true muon can be and still be scattered into it:
    6θ₀ (P(|kick| > 6θ₀) = e⁻¹⁸ ≈ 1.5e-8 for the two-dimensional Gaussian kick), × 1.1 for
    tan θ vs θ up to 0.3 rad, plus the toroid term q·kick/p_z moved by a 6σ momentum
    fluctuation."""
    p = np.sqrt((mu[:3] ** 2).sum(axis=0))
    margin = 1.1 * LOOSE_SIGMAS * k * mu[3] / np.maximum(p, 1e-12) ** 2
    if cfg.toroid_pt_kick:
        s = momentum_resolution(cfg, p)
        margin = margin + LOOSE_SIGMAS * s * cfg.toroid_pt_kick / np.maximum(np.abs(mu[2]), 1e-12)
    return margin


def _scattered(
    cfg: MockDetector, k: float, a: NDArray[np.float64], b: NDArray[np.float64],
    z: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:  # fmt: skip
    """The measured muons of the scattering model: for muon i, |p| × (1 + z[3i] σ_p/p) and
    the direction kicked by θ₀ (z[3i+1], z[3i+2]) in two orthogonal planes, θ₀ = K/(βp);
    ``z``: (6, n) standard normal deviates."""
    out = []
    for i, mu in enumerate((a, b)):
        p = np.sqrt((mu[:3] ** 2).sum(axis=0))
        theta0 = k * mu[3] / p**2  # K/(βp), β = p/E
        # a momentum scale stays positive (|δ| > 0.9 needs > 45σ at 2%)
        f = np.maximum(1.0 + z[3 * i] * momentum_resolution(cfg, p), 0.1)
        out.append(_scatter(mu, theta0 * z[3 * i + 1], theta0 * z[3 * i + 2], f))
    return out[0], out[1]


_CALIBRATED: dict[tuple[str, str], Absorber] = {}
"""The absorbers calibrated in this process, by (detector config, spectra key): the
calibration is deterministic (a fixed seed), and every generator of a config repeats it."""


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
    """Smearing, acceptance and efficiency for a :class:`~gammastar.config.mock.MockDetector`.

    Arguments:
        cfg: the detector config.
        efficiency: the pair efficiency map.
        parents: ``parents(rng, masses)`` → lab four-momenta of decaying mesons (the
            cocktail's spectra): the scattering model calibrates its absorber on them
            (:func:`calibrate_absorber`); without them :meth:`apply` of the scattering model
            raises (:meth:`sigma_m` and the cuts work).
        spectra_key: a text that identifies ``parents``' spectra (the generator's:
            :meth:`gammastar.mock.cocktail.ParametricMesons.spectra_key`): the calibration,
            which depends on them and the detector config only, is then done once per process
            for each (detector, spectra) pair.
    """

    def __init__(
        self,
        cfg: MockDetector,
        efficiency: EfficiencyMap,
        parents: Callable[[np.random.Generator, NDArray[np.float64]], NDArray[np.float64]]
        | None = None,
        spectra_key: str | None = None,
    ) -> None:
        self.cfg = cfg
        self.efficiency = efficiency
        self.lepton = LeptonAcceptance.from_config(cfg)
        """The per-muon acceptance, the class the analysis's per-pair acceptance uses."""
        self.absorber: Absorber | None = None
        """The scattering model's calibrated absorber (None for the momentum model)."""
        if cfg.resolution_model == "scattering" and parents is not None:
            key = None if spectra_key is None else (cfg.model_dump_json(), spectra_key)
            self.absorber = _CALIBRATED.get(key) if key else None
            if self.absorber is None:
                self.absorber = calibrate_absorber(self, parents)
                if key:
                    _CALIBRATED[key] = self.absorber

    def calibration(self) -> dict:
        """What the detector's smearing was set to (``meta.detector_calibration``)."""
        if self.cfg.resolution_model == "momentum":
            return {"model": "momentum"}
        return self._absorber().as_dict()

    def _absorber(self) -> Absorber:
        if self.absorber is None:
            raise ValueError(
                "Detector: resolution_model 'scattering' needs the meson spectra to calibrate "
                "its absorber (Detector(cfg, efficiency, parents=...))"
            )
        return self.absorber

    def sigma_m(self, m: NDArray[np.float64]) -> NDArray[np.float64]:
        """The configured dimuon-mass resolution σ_m(m) in GeV: the momentum model's target at
        every mass; for the scattering model exact at ``mass_resolution_ref`` only (elsewhere
        :meth:`predicted_sigma_m`)."""
        c = self.cfg
        return c.mass_resolution * (m / c.mass_resolution_ref) ** c.mass_resolution_exponent

    def predicted_sigma_m(
        self,
        masses: NDArray[np.float64],
        parents: Callable[[np.random.Generator, NDArray[np.float64]], NDArray[np.float64]],
    ) -> NDArray[np.float64]:
        """The scattering model's linearised RMS(m − m_true) of isotropic two-body decays at
        each mass, both true muons in acceptance (:func:`mass_variance_terms` with the
        calibrated K; NaN where no pair is in acceptance). Linearisation holds where σ_m ≪
        m − 2m_μ; nearer threshold the kicks also shift the mass upwards at second order."""
        k = self._absorber().k
        out = []
        for m in np.atleast_1d(np.asarray(masses, dtype=np.float64)):
            a, b = calibration_pairs(parents, float(m))
            ones = np.ones(a.shape[1], dtype=np.int32)
            ok = self.passes(a, ones) & self.passes(b, -ones)
            v_p, u = mass_variance_terms(a[:, ok], b[:, ok], self.cfg)
            out.append(np.sqrt(np.mean(v_p + k**2 * u)) if ok.any() else np.nan)
        return np.asarray(out)

    def in_window(
        self, mu: NDArray[np.float64], charge: NDArray[np.integer] | None = None,
        margin: NDArray[np.float64] | float = 0.0,
    ) -> NDArray[np.bool_]:  # fmt: skip
        """Single-muon angular window θ_min ≤ θ' ≤ θ_max (no energy cut), tan θ' =
        (pT + q·kick)/pz (``toroid_pt_kick``); ``margin`` (rad) widens it on both sides."""
        c = self.cfg
        if c.toroid_pt_kick:  # tan θ' = (pT + q·kick)/pz, a stand-in beyond LeptonAcceptance
            if charge is None:
                raise ValueError("Detector.in_window: toroid_pt_kick > 0 needs the charges")
            t = np.sqrt(mu[0] ** 2 + mu[1] ** 2) + np.asarray(charge) * c.toroid_pt_kick
            pz = mu[2]
            if np.any(margin):
                theta = np.arctan2(t, pz)
                return (pz > 0) & (theta >= c.theta_min - margin) & (theta <= c.theta_max + margin)
            return (pz > 0) & (t > np.tan(c.theta_min) * pz) & (t < np.tan(c.theta_max) * pz)
        theta = np.arctan2(np.hypot(mu[0], mu[1]), mu[2])
        if np.any(margin):
            return (theta >= c.theta_min - margin) & (theta <= c.theta_max + margin)
        return self.lepton.probability(np.full(theta.shape, np.inf), theta) > 0

    def passes(
        self, mu: NDArray[np.float64], charge: NDArray[np.integer] | None = None
    ) -> NDArray[np.bool_]:
        """Single-muon acceptance (:class:`~gammastar.corrections.pair_acceptance.lepton.LeptonAcceptance`, the
        class the analysis uses): E ≥ E_min and θ_min ≤ θ' ≤ θ_max (:meth:`in_window`)."""
        return (mu[3] >= self.lepton.min_energy) & self.in_window(mu, charge)

    def _loose_margin(self, mu: NDArray[np.float64]) -> NDArray[np.float64] | float:
        """The window's widening for the pre-cut (:func:`_kick_margin`); 0 for the momentum
        model (it keeps directions)."""
        if self.cfg.resolution_model == "momentum":
            return 0.0
        return _kick_margin(self.cfg, self._absorber().k, mu)

    def _smear(
        self, rng: np.random.Generator, a: NDArray[np.float64], b: NDArray[np.float64],
        mt: NDArray[np.float64],
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:  # fmt: skip
        """The measured muons of pairs (a, b) of true mass ``mt`` (the resolution model)."""
        c = self.cfg
        k = a.shape[1]
        if c.resolution_model == "momentum":
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
            return _scale(a, np.maximum(1.0 + z[0], 0.1)), _scale(b, np.maximum(1.0 + z[1], 0.1))
        return _scattered(c, self._absorber().k, a, b, rng.standard_normal((6, k)))

    def apply(self, rng: np.random.Generator, src: Sources) -> Reconstructed:
        """Smear, cut and apply the efficiency to a batch of sources.

        Only sources whose true muons can pass are smeared: E > :func:`loose_energy_bound`
        and, for the window, the true direction within the window widened by 6 θ₀(p)
        (scattering model; a larger kick has probability < 2e-8 per muon) or inside it
        (momentum model, which keeps directions: exact). The others keep their true momenta
        in the returned arrays, are never in acceptance and have ``eff`` = NaN.
        """
        n = len(src)
        a_all, b_all = src.mu1, src.mu2
        pair_all = a_all + b_all
        m_true = invariant_mass(pair_all)
        c = self.cfg
        e_loose = loose_energy_bound(c)
        pre = np.flatnonzero((a_all[3] > e_loose) & (b_all[3] > e_loose))
        a, b = a_all[:, pre], b_all[:, pre]
        ca, cb = src.charge1[pre], src.charge2[pre]
        near = self.in_window(a, ca, self._loose_margin(a)) & self.in_window(
            b, cb, self._loose_margin(b)
        )
        pre, a, b, ca, cb = pre[near], a[:, near], b[:, near], ca[near], cb[near]
        mt = m_true[pre]
        k = pre.size
        mu1_k, mu2_k = self._smear(rng, a, b, mt)
        pair_k = mu1_k + mu2_k
        m_k = invariant_mass(pair_k)
        pt_k = np.hypot(pair_k[0], pair_k[1])
        # the energy cut decides on the measured muons; the window on the direction in the
        # spectrometer: the scattered one (scattering model), the true one (momentum model:
        # directions kept); the toroid kick acts after the absorber
        if c.resolution_model == "momentum":
            ok_k = (mu1_k[3] >= self.lepton.min_energy) & (mu2_k[3] >= self.lepton.min_energy)
        else:
            ok_k = self.passes(mu1_k, ca) & self.passes(mu2_k, cb)
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


def _scatter(
    p: NDArray[np.float64], ax: NDArray[np.float64], ay: NDArray[np.float64],
    f: NDArray[np.float64],
) -> NDArray[np.float64]:  # fmt: skip
    """Four-momenta ``p`` (4, n) turned by the projected angles (ax, ay) in two orthogonal
    planes containing p̂ (exact rotation by |α| = √(ax² + ay²) towards α̂ = ax ê₁ + ay ê₂,
    ê₁ = ẑ × p̂/|ẑ × p̂| (x̂ along z), ê₂ = p̂ × ê₁), |p| scaled by ``f``, E on shell."""
    pmag = np.sqrt((p[:3] ** 2).sum(axis=0))
    n = p[:3] / pmag
    pt = np.hypot(n[0], n[1])
    along_z = pt < 1e-12
    safe = np.where(along_z, 1.0, pt)
    e1 = np.stack([np.where(along_z, 1.0, -n[1] / safe), np.where(along_z, 0.0, n[0] / safe),
                   np.zeros_like(pt)])  # fmt: skip
    e2 = np.cross(n, e1, axis=0)
    r = np.hypot(ax, ay)
    sinc = np.where(r > 0, np.sin(r) / np.where(r > 0, r, 1.0), 1.0)
    d = np.cos(r) * n + sinc * (ax * e1 + ay * e2)
    out = np.empty_like(p)
    out[:3] = d * (pmag * f)
    m2 = np.clip(p[3] ** 2 - pmag**2, 0.0, None)
    out[3] = np.sqrt((pmag * f) ** 2 + m2)
    return out
