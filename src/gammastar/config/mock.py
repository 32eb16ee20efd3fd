"""The ``mock`` section: the NA60-like mock-data generator (:class:`MockConfig`) and its
nested sections (cross-sections, form factors, polarisation, combinatorial background,
detector, dielectrons, PYTHIA backend).
"""

from __future__ import annotations

import itertools
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from gammastar import cocktail_inputs
from gammastar.config.base import NonNegFloat, PositiveFloat, Section
from gammastar.physics.constants import M_OMEGA


# --------------------------------------------------------------------------- mock
class MockCrossSections(Section):
    """Meson production cross-sections relative to the ω in p + p at the beam energy (each
    default's value, uncertainty and source: ``gammastar.cocktail_inputs``, the table of
    docs/reference/mock.md). With ``mock.n_omega_per_collision`` unset the target's ratio is
    this one × A^(α_m − α_ω); with it set, these are the target's ratios as given."""

    eta: NonNegFloat = cocktail_inputs.value("ratio_eta")
    """σ_η/σ_ω (PYTHIA 8.317 p + p at 400 GeV: 0.805)."""
    eta_prime: NonNegFloat = cocktail_inputs.value("ratio_eta_prime")
    """σ_η′/σ_ω (unsourced, 0.12 ± 0.04; PYTHIA: 0.090)."""
    rho: NonNegFloat = cocktail_inputs.value("ratio_rho")
    """σ_ρ/σ_ω (NA27 400 GeV p + p: 0.99 ± 0.08)."""
    omega: NonNegFloat = cocktail_inputs.value("ratio_omega")
    """σ_ω/σ_ω (1 by definition; set 0 to switch the ω channels off)."""
    phi: NonNegFloat = cocktail_inputs.value("ratio_phi")
    """σ_φ/σ_ω (unsourced, 0.06 ± 0.025; PYTHIA p + p: 0.036)."""


class MockFormFactors(Section):
    """Transition form factors and the ρ line shape (docs/explanation/physics.md §3.3 [lit])."""

    eta_lambda_inv2: PositiveFloat = cocktail_inputs.value("eta_lambda_inv2")
    """η pole Λ⁻² in GeV⁻² (NA60 p–A, PLB 757 (2016) 437)."""
    omega_lambda_inv2: PositiveFloat = cocktail_inputs.value("omega_lambda_inv2")
    """ω → π0 pole Λ⁻² in GeV⁻² (NA60 p–A)."""
    eta_prime_lambda: PositiveFloat = 0.764
    """η′ form-factor Λ in GeV."""
    eta_prime_gamma: PositiveFloat = 0.102
    """η′ form-factor γ in GeV."""
    rho_temperature: PositiveFloat = 0.17
    """T_ρ of the ρ line shape's exp(−M/T) factor, GeV [default]."""


class MockPolarisation(Section):
    """Polar anisotropy λ_θ of the vector mesons' two-body decays V → μμ, 1 + λ_θ cos²θ* in
    the meson's helicity frame (z* along its lab momentum). Default 0 (isotropic): NA60
    found the low-mass dimuons of In–In unpolarised (λ, μ, ν ≈ 0, PRL 102 (2009) 222301)
    and its cocktails decay ω, φ isotropically. η → μμ (spin 0) is always isotropic; the
    Dalitz decays are 1 + cos²θ + (4m_μ²/m²) sin²θ about the γ* direction in the parent
    frame (a transverse virtual photon: Kroll–Wada), not configurable."""

    rho: Annotated[float, Field(ge=-1, le=1)] = 0.0
    """λ_θ of ρ → ℓℓ (μμ and ee) in the ρ's helicity frame, in [−1, 1]; 0: isotropic
    (:meth:`gammastar.mock.cocktail.Cocktail.lambda_theta`)."""
    omega: Annotated[float, Field(ge=-1, le=1)] = 0.0
    """λ_θ of ω → ℓℓ (μμ and ee) in the ω's helicity frame, in [−1, 1]; 0: isotropic. The
    Dalitz decay ω → π0ℓℓ keeps its Kroll–Wada angular form."""
    phi: Annotated[float, Field(ge=-1, le=1)] = 0.0
    """λ_θ of φ → ℓℓ (μμ and ee) in the φ's helicity frame, in [−1, 1]; 0: isotropic."""


class MockCombinatorial(Section):
    """Combinatorial background: random muons from π±/K± decays
    (docs/explanation/physics.md §3.2)."""

    os_fraction: Annotated[float, Field(ge=0, lt=1)] = 0.10
    """Target fraction of combinatorial pairs among all recorded OS pairs (after all cuts)."""
    mu_plus_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.56
    """Probability that a combinatorial muon is μ+ (0.5: charge-symmetric). Default 0.56: a
    stand-in for p–A at SPS energies, the μ+/μ− ratio 1.277 of atmospheric muons (π/K decay
    muons from high-energy proton–nucleus collisions; CMS, Phys. Lett. B 692 (2010) 83)."""
    kaon_to_pion: NonNegFloat = 0.12
    """K±/π± multiplicity ratio of the muon parents (SPS energies: about 0.1–0.15)."""
    z_absorber: PositiveFloat = 1.0
    """Free decay length before the hadron absorber in m [default]."""
    pion_ctau: PositiveFloat = 7.8045
    """cτ of π± in m (PDG)."""
    kaon_ctau: PositiveFloat = 3.711
    """cτ of K± in m (PDG)."""
    pilot_events: Annotated[int, Field(gt=0)] = 100_000
    """Events per class of the pilot run that fixes the combinatorial generation rate."""


class MockDetector(Section):
    """NA60-like detector model of the mock generator (docs/explanation/physics.md §3.5;
    docs/reference/mock.md "Detector"; :mod:`gammastar.mock.detector`)."""

    muon_min_energy: NonNegFloat = 3.0
    """Muon lab energy needed to cross the hadron absorber, GeV [paper]."""
    theta_min: NonNegFloat = 0.035
    """Smallest muon polar angle in the lab, rad (NA50/NA60 muon spectrometer)."""
    theta_max: PositiveFloat = 0.120
    """Largest muon polar angle in the lab, rad."""
    resolution_model: Literal["scattering", "momentum"] = "scattering"
    """How the muons are smeared. ``scattering`` (default): a spectrometer behind a hadron
    absorber: each muon's momentum is measured to ``momentum_resolution`` (⊕
    ``momentum_resolution_slope`` · p) and its direction is deflected by multiple scattering,
    θ₀ = K/(βp) per plane (PDG), with the one absorber constant K computed from
    ``mass_resolution`` at ``mass_resolution_ref``: σ_m at other masses follows from the
    kinematics. ``momentum``: the alternative model, each muon's momentum scaled by 1 + δ with the
    width set per pair so that σ_m(m) follows ``mass_resolution``·(m/ref)^exponent at every
    mass (capped at ``max_momentum_smearing``), directions kept."""
    mass_resolution: NonNegFloat = 0.030
    """Dimuon mass resolution σ_m in GeV at ``mass_resolution_ref`` (the RMS of m_reco − m_true
    of isotropic two-body decays there, in acceptance) [paper: about 30 MeV]."""
    mass_resolution_ref: PositiveFloat = M_OMEGA
    """Reference mass of ``mass_resolution`` (the ω), GeV."""
    mass_resolution_exponent: float = 0.0
    """σ_m(m) = mass_resolution · (m / mass_resolution_ref)^exponent (0: constant);
    ``resolution_model: momentum`` only (with ``scattering`` σ_m(m) follows from the model)."""
    momentum_resolution: Annotated[float, Field(ge=0, le=0.2)] = 0.015
    """a of the muon momentum resolution σ_p/p = a ⊕ b·p (``scattering``) [assumed: a muon
    spectrometer measures momenta to 1–2%]."""
    momentum_resolution_slope: NonNegFloat = 0.0
    """b of σ_p/p = a ⊕ b·p, GeV⁻¹ (``scattering``; 0: a constant σ_p/p)."""
    toroid_pt_kick: NonNegFloat = 0.0
    """Charge-dependent acceptance (a stand-in for a toroidal spectrometer magnet): the
    radial transverse-momentum kick in GeV that bends μ+ outwards and μ− inwards before the
    angular window, which then applies to tan θ' = (p_T + q · kick)/p_z. 0: charge-blind."""
    max_momentum_smearing: Annotated[float, Field(gt=0, le=0.5)] = 0.25
    """``resolution_model: momentum`` only: cap on the relative momentum smearing of a muon;
    near the 2m_μ threshold, where the pair mass hardly depends on the momenta, the mass
    resolution then falls below the target."""

    @model_validator(mode="after")
    def _check_window(self) -> MockDetector:
        if self.theta_max <= self.theta_min:
            raise ValueError(
                f"theta_max ({self.theta_max}) must be larger than theta_min ({self.theta_min})"
            )
        # a key of the other resolution model is an error, not silently ignored
        foreign = {
            "momentum": ("momentum_resolution", "momentum_resolution_slope"),
            "scattering": ("max_momentum_smearing",),
        }[self.resolution_model]
        for key in foreign:
            if key in self.model_fields_set:
                raise ValueError(
                    f"{key} does not apply to resolution_model: {self.resolution_model}"
                )
        if self.resolution_model == "scattering" and self.mass_resolution_exponent != 0:
            raise ValueError(
                "mass_resolution_exponent applies to resolution_model: momentum; with "
                "scattering sigma_m(m) follows from the model (docs/reference/mock.md 'Detector')"
            )
        return self


class MockPi0(Section):
    """The π0 source of the dielectron mock (docs/reference/mock.md, "Dielectrons"): its own
    multiplicity and spectra (pions are softer and spread wider in rapidity than the heavier
    mesons)."""

    sigma_rel: NonNegFloat = cocktail_inputs.value("ratio_pi0")
    """σ_π0/σ_ω (unsourced, 9 ± 1.5: NA27 p + p about 10, PYTHIA 8.317 7.6;
    ``gammastar.cocktail_inputs``)."""
    pt_temperature: PositiveFloat = cocktail_inputs.value("pi0_pt_temperature")
    """T of 1/pT dN/dpT ∝ exp(−m_T/T) for the π0, GeV (PYTHIA 8.317 p + p: 0.159)."""
    rapidity_sigma: PositiveFloat = cocktail_inputs.value("pi0_rapidity_sigma")
    """Width of the π0's Gaussian lab rapidity (mean: ``mock.rapidity_mean``; PYTHIA 8.317
    p + p: 1.47)."""
    tff_slope: float = 0.0332
    """π0 transition form-factor slope a_π: |F(m²)|² = (1 − a_π m²/m_π²)⁻² (PDG 2024 average
    0.0332 ± 0.0029; NA62, Phys. Lett. B 768 (2017) 38: 0.0368 ± 0.0057)."""


class MockElectronDetector(Section):
    """The electron arm of the mock detector (docs/reference/mock.md, "Dielectrons") [default
    values: a stand-in for a fixed-target electron spectrometer, not a specific experiment]."""

    min_energy: NonNegFloat = 1.0
    """Smallest reconstructed electron energy, GeV."""
    theta_min: NonNegFloat = 0.005
    """Smallest electron polar angle in the lab, rad."""
    theta_max: PositiveFloat = 0.10
    """Largest electron polar angle in the lab, rad."""
    energy_stochastic: NonNegFloat = 0.10
    """a of the energy resolution σ_E/E = a/√(E/GeV) ⊕ b."""
    energy_constant: NonNegFloat = 0.01
    """b of the energy resolution σ_E/E = a/√(E/GeV) ⊕ b."""
    material_x0: Annotated[float, Field(ge=0, le=1)] = 0.01
    """Material in front of the measurement, in radiation lengths: bremsstrahlung of the
    electrons (the radiative tail of the reconstructed mass) and photon conversions."""
    efficiency: Annotated[float, Field(gt=0, le=1)] = 1.0
    """Flat pair efficiency, applied by accept/reject."""

    @model_validator(mode="after")
    def _check_window(self) -> MockElectronDetector:
        if self.theta_max <= self.theta_min:
            raise ValueError(
                f"theta_max ({self.theta_max}) must be larger than theta_min ({self.theta_min})"
            )
        return self


class MockElectrons(Section):
    """The dielectron part of the mock (``mock.leptons`` holding ``e``; docs/reference/mock.md)."""

    pi0: MockPi0 = Field(default_factory=MockPi0)
    detector: MockElectronDetector = Field(default_factory=MockElectronDetector)
    combinatorial_fraction: Annotated[float, Field(ge=0, lt=1)] = 0.05
    """Fraction of the generated dielectron sources that are combinatorial events (two
    unrelated π0 Dalitz electrons, charges independent and symmetric)."""
    conversions: bool = True
    """Generate photon conversions γ → ee in ``detector.material_x0`` (photons of π0 → γγ)."""
    prescale: Annotated[float, Field(ge=1)] = 1.0
    """The dielectron trigger's prescale k relative to the dimuon one (``leptons: [mu, e]``):
    the dielectron sources are generated for 1/k of the collisions, so that the file's
    ``meta.n_pot_by_flavour`` holds N_POT / k for ``e`` (``meta.n_pot`` and ``mu``: N_POT);
    1: both flavours of every collision, in proportion (docs/reference/mock.md "Prescale")."""
    conversion_template_sources: Annotated[int, Field(ge=0)] = 2_000_000
    """Sources of the separate simulation (its own random stream, not the data's events) of
    the dielectron cocktail and the conversions through the electron detector that fills
    ``conversion_ratio_ee``, the conversion template R(m) = conversion pairs / γ* pairs per
    reconstructed-mass bin (``background.conversion_template``); 0: not written."""


class MockPythia(Section):
    """PYTHIA 8 settings of ``mock.backend: pythia`` (docs/reference/mock.md "PYTHIA backend";
    :mod:`gammastar.mock.pythia`): ``SoftQCD:inelastic`` collisions of ``beam.energy`` protons
    on a fixed target, the cocktail mesons' decays off, their lab momenta a pool that the
    package's decays and detector resample."""

    mode: Literal["pp", "angantyr", "pp_scaled"] | None = None
    """The target: ``pp`` (a proton target; multiplicities per inelastic pp collision),
    ``angantyr`` (p+A with PYTHIA's Angantyr model, nucleus ``target_pdgid``) or ``pp_scaled``
    (pp collisions, each meson's multiplicity per inelastic p+A collision from
    σ_pA = σ_pp A^α: ``a_exponent``, ``beam.target_mass_number``, ``beam.sigma_inel_mb``).
    Required with ``backend: pythia``."""
    collisions: Annotated[int, Field(gt=0)] = 20_000
    """Inelastic collisions PYTHIA generates: the meson pool whose (p_T, y) each source resamples."""
    target_pdgid: int | None = None
    """PDG id of the target nucleus for ``angantyr`` (e.g. 1000822080, ²⁰⁸Pb)."""
    a_exponent: dict[Literal["pi0", "eta", "eta_prime", "rho", "omega", "phi"], float] = Field(
        default_factory=dict
    )
    """α per meson of σ_pA = σ_pp A^α for ``pp_scaled`` (every cocktail meson needs one)."""
    settings: list[str] = Field(default_factory=list)
    """Further PYTHIA settings (``readString`` lines, e.g. a tune), applied after the package's."""


_ACC_PT_EDGES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0)


class MockConfig(Section):
    """The NA60-like mock-data generator (docs/explanation/physics.md §3). Owned by
    ``gammastar.mock``.

    See ``docs/reference/mock.md`` for what the generated file contains.
    """

    events: Annotated[int, Field(gt=0)] = 200_000
    """Number of generated dimuon sources (cocktail decays and combinatorial pairs)."""
    chunk_size: Annotated[int, Field(gt=0)] = 500_000
    """Sources generated and written per chunk (bounds the memory)."""
    efficiency_map: str | None = "../data/efficiency_na60_like.root"
    """ε(m, pT) map (ROOT file with a TH2 ``efficiency``, or ``None`` for ε = 1)."""
    backend: Literal["parametric", "pythia"] = "parametric"
    """Meson kinematics and multiplicities: parametrised spectra, or PYTHIA 8 (extra
    ``pythia``; settings in ``pythia``)."""
    pythia: MockPythia = Field(default_factory=MockPythia)
    """PYTHIA 8 settings of ``backend: pythia`` (mode, pool size, target)."""

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # not given: left out, so a config without it hashes as before the key existed
        out = handler(self)
        if "pythia" not in self.model_fields_set:
            out.pop("pythia", None)
        return out

    target: Literal[tuple(cocktail_inputs.NUCLEI)] = "Pb"  # type: ignore[valid-type]
    """Nucleus the mock's protons interact with (``p``, ``Be``, ``C``, ``Al``, ``Fe``, ``Cu``,
    ``Mo``, ``W``, ``Pb``, ``U``): its A and σ_inel (PDG λ_I) set the mesons per collision,
    ⟨n_m⟩_pp A^α_m σ_inel(pp)/σ_inel(pA) (:func:`gammastar.cocktail_inputs.per_collision`).
    The thickness stays ``beam.interaction_lengths``."""
    n_omega_per_collision: PositiveFloat | None = None
    """⟨n_ω⟩ per inelastic p + target collision. ``None`` (default): from the p + p
    multiplicity (NA27: 0.39) scaled to ``target`` (0.73 for Pb), with its uncertainty (the
    reach's nuisance ``mock_normalisation``); a number: that value, with
    ``cross_sections`` the target's own ratios and no A-scaling or uncertainty."""
    cross_sections: MockCrossSections = Field(default_factory=MockCrossSections)
    pt_temperature: PositiveFloat = cocktail_inputs.value("pt_temperature")
    """T of 1/pT dN/dpT ∝ exp(−m_T/T), GeV, for all mesons and the π/K parents (m_T scaling;
    unsourced, 0.20 ± 0.05: PYTHIA 8.317 p + p gives 0.14–0.17)."""
    pt_mt_power: Annotated[float, Field(gt=-2, le=5)] = cocktail_inputs.value("pt_mt_power")
    """a of the cocktail mesons' 1/pT dN/dpT ∝ m_T^a exp(−m_T/T): 0 the m_T-exponential
    (default), 1 the Boltzmann form at fixed rapidity, the extrapolation model's alternative
    ``mt_boltzmann`` (:mod:`gammastar.yields.extrapolation`); a knob that lets a mock study
    draw the spectral form (``validation/scripts/nsig_coverage.py``). The combinatorial π/K
    parents keep a = 0.
    Bounds: a > −2, where dN/dm_T ∝ m_T^(1+a) e^(−m_T/T) is the Gamma(2 + a, T) the sampler
    inverts (:func:`gammastar.physics.sampling.sample_mt_power`); a ≤ 5 is a plausibility
    bound, not the sampler's (exact beyond it): at a = 5 the ω's ⟨p_T⟩ is 1.22 GeV at
    T = 0.2 GeV, twice the a = 0 spectrum's 0.60 GeV; a larger a is far outside the shapes a
    study varies around the nominal (the coverage draws a0 ± 1.22) and more likely a typo."""
    rapidity_mean: float = cocktail_inputs.value("rapidity_mean")
    """Mean of the Gaussian lab rapidity (y_cm of 400 GeV p on a fixed target)."""
    rapidity_sigma: PositiveFloat = cocktail_inputs.value("rapidity_sigma")
    """Width σ_y of the Gaussian lab rapidity (unsourced, 1.2 ± 0.25: PYTHIA 8.317 p + p gives
    0.97 (φ) to 1.33 (η))."""
    kinematic_limit: bool = False
    """Truncate the Gaussian rapidity at the kinematic limit m_T cosh y ≤ ``beam.energy``
    (its tails otherwise give ~10⁻³ of the mesons more than the beam energy, which a
    full-acceptance detector records and the input plausibility check rejects). Off by
    default: any change to the sources changes the whole random realization of a seed, and
    the mock's closure tests are calibrated on the unbounded one."""
    falloff: Annotated[float, Field(ge=0, le=20)] = cocktail_inputs.value("falloff")
    """n of a fall-off (1 − E/E_beam)^n of the cocktail mesons' spectra towards x_F → 1 (the
    measured forward spectra fall so; docs/explanation/physics.md §3.2), by accept–reject
    (:func:`gammastar.physics.sampling.sample_pt_y`); needs ``kinematic_limit``. 0: none, a
    Gaussian rapidity cut only at the beam energy. The combinatorial π/K parents keep none."""
    form_factors: MockFormFactors = Field(default_factory=MockFormFactors)
    decay_lambda_theta: MockPolarisation = Field(default_factory=MockPolarisation)
    """λ_θ of ρ, ω, φ → μμ in their helicity frame (the truth of the polarisation closure)."""
    combinatorial: MockCombinatorial = Field(default_factory=MockCombinatorial)
    detector: MockDetector = Field(default_factory=MockDetector)
    dalitz_br: Literal["pdg", "kroll_wada"] = "pdg"
    """Normalisation of the Dalitz channels: ``pdg`` (the measured BR(P → γℓℓ), BR(ω → π0ℓℓ))
    or ``kroll_wada`` (BR(P → γγ) resp. BR(ω → π0γ) times the integral of the spectrum with
    the config's form factors: lepton universality exact; the PDG η values differ from it by
    +5.5% (ee) and −7.9% (μμ), docs/reference/mock.md)."""
    leptons: list[Literal["mu", "e"]] = Field(
        default_factory=lambda: list[Literal["mu", "e"]](["mu"]), min_length=1
    )
    """Dilepton flavours generated: ``[mu]`` (default), ``[e]`` or ``[mu, e]`` (one sample, one
    N_POT; each event holds the two leptons of one source)."""
    electrons: MockElectrons = Field(default_factory=MockElectrons)
    """The dielectron sources and detector (used when ``leptons`` holds ``e``)."""
    acceptance_mass_edges: list[NonNegFloat] = Field(
        default_factory=lambda: (
            [round(0.05 * i, 2) for i in range(15)] + [0.85, 0.95, 1.1, 1.4, 2.0]
        )
    )
    """Mass edges (GeV, true γ* mass) of the ``acceptance`` map written into the mock file:
    50 MeV up to 0.7 GeV; above, rows that hold the ω (0.70–0.85) and φ (0.95–1.10) peaks with
    their ±2σ resolution tails, so that pairs smeared out of a peak (the map is applied at the
    reconstructed mass) still find the peak's acceptance, not that of a sparse continuum row."""
    acceptance_pt_edges: list[NonNegFloat] = Field(default_factory=lambda: list(_ACC_PT_EDGES))
    """Pair-pT edges (GeV, true γ* pT) of the ``acceptance`` map: fine at low pT, where the
    angular window makes the acceptance change fast, coarse in the sparse high-pT tail."""

    @model_validator(mode="after")
    def _check_falloff(self) -> MockConfig:
        if self.falloff and not self.kinematic_limit:
            raise ValueError("falloff: the fall-off (1 - E/E_beam)^n needs kinematic_limit: true")
        return self

    @field_validator("leptons")
    @classmethod
    def _check_leptons(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"each flavour at most once, got {v}")
        return v

    def omega_per_collision(self) -> float:
        """⟨n_ω⟩ per inelastic p + target collision that the σ/σ_ω multiply:
        ``n_omega_per_collision``, else ⟨n_ω⟩_pp A^α_ω σ_inel(pp)/σ_inel(pA)
        (:func:`gammastar.cocktail_inputs.per_collision`)."""
        if self.n_omega_per_collision is not None:
            return float(self.n_omega_per_collision)
        return cocktail_inputs.per_collision("omega", self.target, cocktail_inputs.value("n_omega_pp"))

    def sigma_rel(self, parent: str) -> float:
        """σ_parent/σ_ω in the target: ``cross_sections`` (the π0: ``electrons.pi0.sigma_rel``)
        × A^(α_m − α_ω) when ``n_omega_per_collision`` is unset, as given when it is set."""
        ratio = float(
            self.electrons.pi0.sigma_rel if parent == "pi0" else getattr(self.cross_sections, parent)
        )
        if self.n_omega_per_collision is not None:
            return ratio
        a = cocktail_inputs.NUCLEI[self.target].mass_number
        d_alpha = cocktail_inputs.alpha(parent)[0] - cocktail_inputs.alpha("omega")[0]
        return ratio * a**d_alpha

    def normalisation(self) -> dict[str, Any]:
        """The mock file's ``meta.mock_normalisation``: ⟨n_ω⟩ per collision, the target and
        ``rel_uncertainty`` (the reach's nuisance ``mock_normalisation``; ``None`` with an
        explicit ``n_omega_per_collision``)."""
        derived = self.n_omega_per_collision is None
        return {
            "n_omega_per_collision": self.omega_per_collision(),
            "target": self.target,
            "mass_number": cocktail_inputs.NUCLEI[self.target].mass_number,
            "sigma_inel_mb": cocktail_inputs.sigma_inel_mb(self.target),
            "rel_uncertainty": (
                cocktail_inputs.n_omega_rel_uncertainty(self.target) if derived else None
            ),
            "origin": (
                "<n_omega>_pp A^alpha_omega sigma_inel(pp)/sigma_inel(pA) "
                "(gammastar.cocktail_inputs; docs/reference/mock.md)"
                if derived
                else "mock.n_omega_per_collision as given"
            ),
        }

    acceptance_y_edges: list[float] | None = None
    """Pair lab-rapidity edges (true γ* y) of a 3-D map ``acceptance_3d`` (TH3: x = mass,
    y = pT on the 2-D map's edges, z = y) and ``acceptance_3d_generated`` written beside the
    2-D map (muons only); ``None`` (default): no 3-D map."""

    @field_validator("acceptance_mass_edges", "acceptance_pt_edges", "acceptance_y_edges")
    @classmethod
    def _check_edges(cls, v: list[float] | None) -> list[float] | None:
        if v is None:
            return v
        if len(v) < 2 or any(b <= a for a, b in itertools.pairwise(v)):
            raise ValueError("must hold at least two strictly increasing edges")
        return v
