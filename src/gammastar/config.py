"""The analysis configuration: a YAML file validated by typed models.

One model per section, one section per workflow stage. Unknown keys are errors;
every error names the key and the file. Relative paths in a config are resolved
against the directory of the config file; ``${output}`` in an input path stands
for the run directory.

Each stage's section class belongs to that stage's owner: extend it there.
"""

from __future__ import annotations

import importlib
import itertools
import math
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic_core import PydanticCustomError

from gammastar import cocktail_inputs
from gammastar.config_checks import mass_range_problems
from gammastar.core import rundir
from gammastar.core.artifacts import sha256_json
from gammastar.core.urls import known_protocols, url_problem
from gammastar.errors import ConfigError
from gammastar.io import LAYOUTS, branch_map, mock_branch_problem
from gammastar.physics.constants import M_MU, M_OMEGA


def _registered(registry: str, what: str, *, always: tuple[str, ...] = ()) -> AfterValidator:
    """A validator of a name against a registry ``"module:NAME"`` (a mapping or tuple of names),
    imported when a config is validated, not with this module (the CLI starts without numpy
    and scipy); ``always``: names valid without looking (``auto``: a rule over the registry).
    """

    def check(v: str) -> str:
        if v in always:
            return v
        module, name = registry.split(":")
        known = (*always, *getattr(importlib.import_module(module), name))
        if v not in known:
            raise ValueError(f"unknown {what} {v!r}; one of {list(known)} ({module}.{name})")
        return v

    return AfterValidator(check)


StatsMethod = Literal["auto", "exact", "asymptotic", "toys"]
"""``reach.method``: ``auto`` or a key of ``gammastar.reach.stats.METHODS`` (named here, not
imported: the config sits below the reach; ``tests/test_stats.py`` keeps the two equal)."""

PositiveFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
Probability = Annotated[float, Field(ge=0, le=1)]


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_default=True, allow_inf_nan=False
    )


# --------------------------------------------------------------------------- beam
class BeamConfig(Section):
    """Beam and target of the data (docs/explanation/physics.md §2): the yields per POT are
    normalised to them.

    The facility of a reach (its N_POT, target thickness and N_POT uncertainty) is described
    in ``reach``.
    """

    energy: PositiveFloat = 400.0
    """Beam proton energy in GeV."""
    n_pot: PositiveFloat | Literal["from_input"] = "from_input"
    """Protons on target; ``from_input`` takes it from the mock file's metadata."""
    prescale: dict[Literal["mu", "e"], Annotated[float, Field(ge=1)]] = Field(default_factory=dict)
    """Trigger prescale k ≥ 1 per flavour (e.g. ``{e: 200}``: the dielectron trigger records
    1/200 of the collisions): that flavour's yields are normalised to N_POT / k (default 1: no
    prescale). With ``n_pot: from_input`` the mock file's ``meta.n_pot_by_flavour`` already
    holds it (``mock.electrons.prescale``); a value here must then equal the file's."""
    target: str = "Pb"
    """Name of the target material (e.g. ``Pb``): a label that enters the config's hash but no
    computation; the normalisation reads ``interaction_lengths`` and ``sigma_inel_mb``, so set
    those for another material."""
    interaction_lengths: PositiveFloat = 0.01
    """Target thickness L in nuclear interaction lengths: a fraction P_int = 1 − e^{−L} of the
    protons interacts (``gammastar.physics.target``)."""
    sigma_inel_mb: PositiveFloat = 1720.0
    """Inelastic p–target cross-section in mb (Pb: 1.72 b from λ_I = 199.6 g/cm²)."""
    target_mass_number: PositiveFloat | None = None
    """Mass number A of the data's target material (Pb: 207.2), for the A-dependence of the
    yield carried to a facility's nucleus (``reach.target``, which needs it and an explicit
    ``sigma_inel_mb``); ``None``: not stated."""

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # not given: left out, so a config without it hashes as before the key existed
        out = handler(self)
        if out.get("target_mass_number") is None:
            out.pop("target_mass_number", None)
        return out

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and "n_pot_rel_uncertainty" in data:
            raise ValueError(
                "n_pot_rel_uncertainty moved to reach.n_pot_rel_uncertainty (the N_POT "
                "uncertainty of the reach's likelihood)"
            )
        return data


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
    (docs/explanation/physics.md §3.4)."""

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
    leptons: list[Literal["mu", "e"]] = Field(default_factory=lambda: ["mu"], min_length=1)
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


# --------------------------------------------------------------------------- input
class InputConfig(Section):
    """Which ntuples to read and how their branches map onto leptons."""

    files: list[str] | dict[str, Any] = Field(
        default_factory=lambda: [f"${{output}}/{rundir.MOCK}"]
    )
    """Paths or globs, or a coffea-style fileset ``{dataset: {files: {path: tree}}}``."""
    tree: str = "events"
    """Name of the TTree (or RNTuple) read from each file of ``files`` (and of ``--input``);
    a fileset's ``{path: tree}`` entries name their own (:func:`gammastar.io.resolve_files`).
    Default: ``events``, the mock's tree."""
    layout: Literal[tuple(LAYOUTS)] = "jagged_cartesian"  # type: ignore[valid-type]
    """The input layout, one of the registry :data:`gammastar.io.LAYOUTS`."""
    branches: dict[str, str] = Field(default_factory=dict)
    """Map of the package's column names to the file's branch names (defaults per layout)."""
    step_size: Annotated[int, Field(gt=0)] = 500_000
    """Entries per chunk (the coffea chunk size): memory is bounded by it."""
    lepton: Literal["mu", "e"] = "mu"
    """The lepton flavour of the pairs: the default branch names (``muon_*`` /
    ``electron_*``, ``Muon_*`` / ``Electron_*``), ``lepton_mass`` and with it K_ℓ and the 2m_ℓ
    thresholds of the yields (``gammastar.physics.channels.LEPTON_CHANNELS``)."""
    lepton_mass: PositiveFloat = M_MU
    """Lepton mass in GeV (default: that of ``lepton``), used where the layout has no energy
    (pt/eta/phi without mass) and in K_ℓ of the yields; with ``lepton`` given, it must be
    that lepton's mass (0.1% tolerance)."""
    nonfinite: Literal["cut", "bad_file"] = "cut"
    """A NaN/inf lepton momentum: ``cut`` drops the lepton and counts it (cut flow
    ``leptons_nonfinite``); ``bad_file`` treats the file as damaged (docs/howto/runs-and-failures.md)."""
    leptons: list[Literal["mu", "e"]] | None = None
    """Both channels in one run: set by ``lepton: [mu, e]`` (a list; the first is
    the primary flavour: ``lepton`` and ``lepton_mass`` are its, and the contract
    histograms of ``histograms.root`` are its pairs'). Each flavour is selected as a
    single-flavour run with its ``per_flavour`` overrides (:func:`flavour_config`);
    ``None``: one flavour, ``lepton``."""
    per_flavour: dict[Literal["mu", "e"], dict[str, Any]] = Field(default_factory=dict)
    """Keys of this section that differ for one flavour of ``lepton: [mu, e]`` (e.g.
    ``{e: {branches: {...}}}``); validated as this section with them."""

    @property
    def flavours(self) -> list[str]:
        """The flavours of the run: ``leptons``, else ``[lepton]``."""
        return list(self.leptons) if self.leptons else [self.lepton]

    @model_validator(mode="before")
    @classmethod
    def _lepton_mass_of_flavour(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        from gammastar.physics.channels import LEPTON_CHANNELS

        if isinstance(data.get("lepton"), list):  # lepton: [mu, e]: both channels, one run
            given = data["lepton"]
            if not given or len(set(map(str, given))) != len(given):
                raise ValueError(f"lepton: give each flavour once (mu, e), got {given}")
            if data.get("leptons") not in (None, given):
                raise ValueError("give the flavours once: lepton: [mu, e] or leptons")
            if "lepton_mass" in data:
                raise ValueError(
                    "lepton_mass: not with several flavours (each flavour has its lepton's mass)"
                )
            data = {**data, "lepton": given[0], "leptons": list(given) if len(given) > 1 else None}
        lepton = data.get("lepton", "mu")
        ch = next((c for c in LEPTON_CHANNELS.values() if c.flavour == lepton), None)
        if ch is None:
            return data  # the field's own validation names the bad flavour
        m = ch.lepton_mass
        if "lepton_mass" not in data:
            return {**data, "lepton_mass": m}
        if "lepton" not in data:
            return data  # no flavour named: lepton_mass stands alone
        given = data["lepton_mass"]
        if isinstance(given, int | float) and abs(given - m) > 1e-3 * m:
            raise ValueError(
                f"lepton_mass ({given} GeV) is not the mass of lepton {lepton!r} ({m} GeV); "
                "drop lepton_mass or set lepton"
            )
        return data


# --------------------------------------------------------------------------- selection
class SelectionConfig(Section):
    """Lepton and pair cuts (docs/explanation/physics.md §2, §4)."""

    lepton_min_energy: NonNegFloat = 3.0
    """Smallest lab energy of a selected lepton in GeV (E ≥ this; default 3: the NA60-like
    absorber's range-out, as ``mock.detector.muon_min_energy``). With
    ``unfold.lepton_acceptance`` it also cuts the per-pair acceptance
    (:func:`gammastar.corrections.pair_acceptance.fiducial_from_config`)."""
    lepton_theta_min: NonNegFloat = 0.0
    """Lower edge of a selected lepton's lab polar angle (rad), θ ≥ this; 0: no cut. Enters
    the per-pair acceptance as ``lepton_min_energy`` does."""
    lepton_theta_max: PositiveFloat = 3.1416
    """Upper edge of a selected lepton's lab polar angle (rad), θ ≤ this; the default ≈ π: no
    cut."""
    mass_min: NonNegFloat = 0.2113
    """Lower edge of the pair mass window in GeV (m ≥ this; default 2m_μ) and of the mass axis
    of every histogram (``unfold.mass_bins`` bins up to ``mass_max``); the fiducial region and
    the yields start here."""
    mass_max: PositiveFloat = 1.1
    """Upper edge of the pair mass window in GeV (m < this; default above the φ) and of every
    histogram's mass axis."""
    pair_pt_max: PositiveFloat | None = None
    """Upper cut on the pair's transverse momentum q_T in GeV (q_T < this); ``None``: no cut.
    Applied to the mixed-event pairs of ``background.r_factor: mixed`` as well."""
    rapidity_min: float | None = None
    """Lower cut on the pair's lab rapidity (y ≥ this); ``None``: no cut. Applied to the
    mixed-event pairs as well."""
    rapidity_max: float | None = None
    """Upper cut on the pair's lab rapidity (y < this); ``None``: no cut."""
    pair_charges: list[Literal["os", "pp", "mm"]] = Field(
        default_factory=lambda: ["os", "pp", "mm"]
    )
    """Charge classes kept; subtraction needs all three."""
    qt_bins: Annotated[int, Field(gt=0)] = 20
    """Bins of the qT axis of the 3-D (m, qT, E) histograms, from 0 to ``qt_max``."""
    qt_max: PositiveFloat = 3.0
    """Upper edge of the q_T axis of the 3-D histograms in GeV (``qt_bins`` bins from 0): a
    binning, not a cut (pairs above it stay selected, in the axis's overflow; the cut is
    ``pair_pt_max``)."""
    energy_bins: Annotated[int, Field(gt=0)] = 20
    """Bins of the E axis of the 3-D histograms, from ``energy_min`` to ``energy_max``."""
    energy_min: NonNegFloat = 0.0
    """Lower edge of the E axis (the pair's lab energy) of the 3-D histograms in GeV: a
    binning, not a cut."""
    energy_max: PositiveFloat = 200.0
    """Upper edge of the E axis of the 3-D histograms in GeV: a binning, not a cut (pairs above
    it stay selected, in the axis's overflow)."""
    pairs_url: str | None = None
    """Where the pair dataset of a parallel selection (``--executor futures`` or ``dask``) is
    written: an fsspec URL (``s3://bucket/run/pairs.parquet/``, ``root://host//path/``,
    ``file:///data/run/pairs.parquet/``) that the workers write their parts to, instead of
    ``pairs.parquet/`` in the run directory; ``select.json`` ``pairs_url`` records it and
    every stage reads the pairs from there (docs/howto/cluster.md). ``None``: the run
    directory."""
    per_flavour: dict[Literal["mu", "e"], dict[str, Any]] = Field(default_factory=dict)
    """With ``input.lepton: [mu, e]``: keys of this section that differ for one flavour,
    e.g. ``{e: {mass_min: 0.01}}`` (a shallow merge over this section; validated as it,
    unknown keys are errors; see :func:`flavour_config`)."""

    @model_validator(mode="after")
    def _check_windows(self) -> SelectionConfig:
        if self.mass_max <= self.mass_min:
            raise ValueError(f"mass_max ({self.mass_max}) must exceed mass_min ({self.mass_min})")
        if self.lepton_theta_max <= self.lepton_theta_min:
            raise ValueError("lepton_theta_max must exceed lepton_theta_min")
        if self.energy_max <= self.energy_min:
            raise ValueError("energy_max must exceed energy_min")
        if not self.pair_charges:
            raise ValueError("pair_charges must name at least one of os, pp, mm")
        lo, hi = self.rapidity_min, self.rapidity_max
        if lo is not None and hi is not None and hi <= lo:
            raise ValueError(f"rapidity_max ({hi}) must exceed rapidity_min ({lo})")
        return self


class BackgroundConfig(Section):
    """Same-sign subtraction (docs/explanation/physics.md §4)."""

    r_factor: PositiveFloat | Literal["mixed"] = 1.0
    """R of N_comb = 2R√(N++N−−): a number (1: charge-symmetric acceptance, or a charge
    dependence that factorises), or ``mixed``: measured per mass bin from mixed events,
    R = N+−/(2√(N++N−−)) of pairs of leptons from different events (``mixing_depth``)."""
    mixing_depth: Annotated[int, Field(gt=0, le=100)] = 5
    """``r_factor: mixed``: each event's leptons are paired with those of the next
    ``mixing_depth`` events of the mixing pool in its chunk."""
    mixing_pool: Literal["like_sign", "all"] = "like_sign"
    """``r_factor: mixed``: the events whose leptons are mixed: ``like_sign`` (events with a
    like-sign lepton pair: their leptons are combinatorial, so the mixed pairs have the
    background's single-lepton kinematics) or ``all`` (every event with a selected lepton;
    signal leptons then shape R too)."""
    remove_eta_mumu: Literal["none", "truth", "rate"] = "truth"
    """η → μμ removal: ``truth`` drops truth-tagged pairs (mock data), ``rate`` subtracts the
    peak predicted from the η → γμμ yield, ``none`` keeps it."""
    ss_weight: Literal["constant", "binwise"] = "binwise"
    """The like-sign estimator, in the per-pair SS weights and in ``comb_m`` alike:
    ``binwise`` (default) the geometric mean 2R√(N++N−−) per mass bin (per-pair SS weight
    −2R√(N++N−−)/(N++ + N−−) of the pair's bin; sparse bins: see ``min_like_sign``);
    ``constant`` the arithmetic mean R(N++ + N−−) (SS weight −R; equal to the geometric
    mean only for charge-symmetric background)."""
    min_like_sign: PositiveFloat = 20.0
    """``binwise``: like-sign pairs of each sign a mass bin needs for its own
    2√(N++N−−)/(N++ + N−−); a sparser bin takes it from the narrowest symmetric window of
    neighbouring bins that holds this many of both signs (the plain geometric mean is 0, biased,
    where one sign is empty; its bias at this many counts is ≈ −1/(8N) per sign, < 1.3%)."""
    eta_dalitz_window: tuple[NonNegFloat, PositiveFloat] = (0.2113, 0.45)
    """``rate`` mode: mass window (GeV) whose unfolded yield is taken as η → γμμ."""
    eta_peak_sigma: PositiveFloat = 0.012
    """``rate`` mode: mass resolution (GeV) at m_η, the width of the removed peak."""
    conversion_template: str | None = None
    """Photon-conversion subtraction (dielectrons): a ROOT TH1 R(m) = conversion pairs /
    γ* pairs per reconstructed-mass bin, from the experiment's simulation of its material
    (the mock writes ``conversion_ratio_ee``), ``"path"`` (histogram
    ``conversion_ratio_ee``) or ``"path:key"``; ``${output}`` allowed. Every pair (OS and
    SS) is weighted by 1/(1 + R(m)), which removes the conversions from the like-sign
    subtracted yield (docs/explanation/method.md "Conversions"); R = 0 above the histogram.
    ``None``: no subtraction (the conversions must be cut away by ``selection.mass_min``)."""
    per_flavour: dict[Literal["mu", "e"], dict[str, Any]] = Field(default_factory=dict)
    """With ``input.lepton: [mu, e]``: keys of this section that differ for one flavour,
    e.g. ``{e: {mass_min: 0.01}}`` (a shallow merge over this section; validated as it,
    unknown keys are errors; see :func:`flavour_config`)."""

    @model_validator(mode="after")
    def _check_window(self) -> BackgroundConfig:
        lo, hi = self.eta_dalitz_window
        if hi <= lo:
            raise ValueError(
                f"eta_dalitz_window: the upper edge ({hi}) must exceed the lower ({lo})"
            )
        return self


class LeptonAcceptanceConfig(Section):
    """The spectrometer's single-lepton acceptance (experiment-specific: every number must be
    given). The per-pair acceptance A(m, q) is computed from it
    (:mod:`gammastar.corrections.pair_acceptance`); the selection's own lepton cuts are applied on top."""

    min_energy: NonNegFloat
    """Lepton energy threshold (GeV), e.g. the hadron absorber's range-out energy."""
    theta_min: NonNegFloat
    """Lower edge of the lab polar-angle window (rad)."""
    theta_max: PositiveFloat
    """Upper edge of the lab polar-angle window (rad)."""
    map: str | None = None
    """Optional single-lepton acceptance (ROOT TH2 ``"file.root:name"``: x = p in GeV,
    y = θ in rad, contents in [0, 1]) multiplying the cuts."""

    @model_validator(mode="after")
    def _window(self) -> LeptonAcceptanceConfig:
        if self.theta_max <= self.theta_min:
            raise ValueError(
                f"theta_max ({self.theta_max}) must exceed theta_min ({self.theta_min})"
            )
        return self


class PolarisationCorrectionConfig(Section):
    """The detector simulation behind the measured λ_θ's selection correction
    (:mod:`gammastar.corrections.lambda_correction`): per polarisation bin the simulation's λ_θ fitted as
    the data are and at its true mass, kinematics and angles, and the response's slope; the
    data's λ_θ is mapped through that response onto the truth."""

    simulation: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)
    """ROOT files (relative to the config; ``${output}`` allowed) in the mock's ntuple layout:
    the γ* inside the spectrometer, reconstructed (``m``, ``pT``, ``pz``, ``cos_theta_hel``,
    ``phi_hel``) and true (``m_true``, ``pT_true``, ``pz_true``, ``cos_theta_hel_true``,
    ``phi_hel_true``). Independent of the data (another sample)."""
    tree: Annotated[str, Field(min_length=1)] = "truth"
    """The tree of ``simulation`` holding the reconstructed γ* with their true columns (the
    mock's ``truth``; :func:`gammastar.corrections.lambda_correction.read_simulation`)."""
    generated_tree: Annotated[str, Field(min_length=1)] | None = None
    """A generator-level tree of the same files (the mock's ``truth_generated``): the γ* whose
    true leptons pass the detector's cuts, reconstructed or not, with the
    ``{m,pT,pz,cos_theta_hel,phi_hel}_true`` columns and each lepton's true energy and polar
    angle (``E_plus_true``, ``theta_plus_true``, ``E_minus_true``, ``theta_minus_true``). The
    fit at the truth then takes these, at the analysis's lepton cuts, instead of ``tree``'s
    reconstructed γ*, whose true λ_θ carries the reconstruction's selection at the cuts' edges
    (low on the NA60-like mock). Its preselection must be at least as loose as the
    analysis's lepton cuts. Not given: ``tree``'s rows (docs/explanation/method.md)."""


class UnfoldConfig(Section):
    """Acceptance × efficiency unfolding (docs/explanation/physics.md §4)."""

    efficiency_map: str | None = "../data/efficiency_na60_like.root"
    """Pair efficiency ε(m, pT): a ROOT file with a TH2 ``efficiency`` (or its only TH2; x =
    mass, y = pair pT, both in GeV; contents in [0, 1]); each pair is weighted by 1/ε, pairs
    outside the map as ``outside_map`` says
    (:func:`gammastar.corrections.unfold.load_efficiency_map`). Default: the shipped NA60-like
    map, the one the mock generator applies (``mock.efficiency_map``); ``None``: ε = 1."""
    bayesian_iterations: Annotated[int, Field(ge=0)] = 0
    """Iterative Bayesian resolution unfolding; 0 switches it off (the paper's default).
    Needs a response (``m_true`` vs ``m``) from the input's ``truth`` tree."""
    outside_map: Literal["error", "drop", "nearest"] = "error"
    """Pairs outside the map (efficiency or acceptance) or at ε = 0 are never dropped
    silently: ``error`` (default) stops naming the count; ``nearest`` takes the nearest bin's
    value for pairs outside the map (as the mock generator does), counted and reported in
    ``select.json`` and a warning; ``drop`` gives them weight 0, counts and reports them.
    Pairs at ε = 0 stop the run unless ``drop``."""
    acceptance_map: str | None = None
    """Geometric acceptance A(m, pT) (ROOT TH2, x = mass, y = pair pT, contents in [0, 1]) or
    A(m, pT, y) (ROOT TH3, z = the pair's lab rapidity; the dimension is read from the file,
    e.g. ``"${output}/mock.root:acceptance_3d"`` with ``mock.acceptance_y_edges``):
    ``"path"`` (histogram ``acceptance``) or ``"path:key"``; ``${output}`` allowed, e.g.
    ``"${output}/mock.root:acceptance"`` (the map the mock generator writes). Set: each pair
    is weighted by 1/(A ε) and the unfolded spectrum stands for the full phase space
    (``phase_space: full``); ``None``: 1/ε only, the spectrum inside the detector acceptance
    (``phase_space: detector_acceptance``)."""
    lepton_acceptance: LeptonAcceptanceConfig | None = None
    """The spectrometer's per-lepton acceptance: each pair is weighted by 1/(A ε) with the fully
    differential A(m, q) of :mod:`gammastar.corrections.pair_acceptance`, inside the fiducial region
    A ≥ ``min_acceptance`` (``phase_space: fiducial``); the yields extrapolate to the full
    phase space with a stated model (docs/explanation/method.md). Exclusive with ``acceptance_map``."""
    decay_lambda_theta: Annotated[float, Field(ge=-1, le=1)] | Literal["measured"] = 0.0
    """Polar anisotropy λ_θ of the lepton decay angles in the γ* helicity frame,
    1 + λ_θ cos²θ*, assumed by the per-pair acceptance: a number (0: isotropic) or
    ``measured``: λ_θ(m) measured from the data (:mod:`gammastar.corrections.polarisation`, per mass bin,
    linear between the bins' centres), fitted on the selected pairs in the one pass over the
    input (docs/explanation/method.md)."""
    polarisation_bins: Annotated[int, Field(ge=1, le=100)] = 8
    """Mass bins of the polarisation measurement (equal numbers of opposite-sign pairs inside
    the fiducial region, at least 200 per bin: fewer bins for a small sample; written to
    ``select.json`` and ``yields.json`` → ``polarisation``)."""
    polarisation_edges: list[float] | None = None
    """Explicit mass bin edges (GeV, increasing) of the polarisation measurement instead of
    ``polarisation_bins``' equal counts; edges outside the selection's mass range are ignored
    (its limits are the outer edges)."""
    polarisation_peak_window: PositiveFloat | None = None
    """Half-width (GeV) around each narrow vector meson (ω, φ, J/ψ, ψ(2S), Υ; PDG masses) in
    which no polarisation bin edge may sit: such an edge moves to the window's side, so each
    peak is measured whole (:func:`gammastar.corrections.polarisation.peak_safe_edges`). An edge through a
    peak narrower than the bins selects the pairs' decay angles through the mass resolution
    and biases λ_θ there (docs/explanation/method.md); about 3.5 σ_m of the experiment at the peak.
    ``None``: edges as given or equal-count (a warning with a measured λ_θ when a peak lies in
    the mass range)."""
    polarisation_correction: PolarisationCorrectionConfig | None = None
    """With ``decay_lambda_theta: measured``: the detector simulation that corrects the
    measured λ_θ for the reconstructed-mass bins' selection of decay angles
    (:mod:`gammastar.corrections.lambda_correction`; ``select.json`` → ``polarisation`` →
    ``selection_correction``). ``None``: the fit's λ_θ as measured."""
    min_acceptance: Annotated[float, Field(gt=0, lt=1)] = 0.01
    """Pairs with A below this get weight 0 (outside the fiducial region); they are counted,
    reported in ``select.json`` (``unfold.acceptance``) with an estimate of the lost fraction,
    and warned about."""

    @model_validator(mode="after")
    def _one_acceptance(self) -> UnfoldConfig:
        if self.lepton_acceptance is not None and self.acceptance_map is not None:
            raise ValueError(
                "lepton_acceptance and acceptance_map are exclusive: give one acceptance"
            )
        e = self.polarisation_edges
        if e is not None and (len(e) < 2 or any(b <= a for a, b in itertools.pairwise(e))):
            raise ValueError(f"polarisation_edges must be >= 2 increasing masses, not {e}")
        if self.decay_lambda_theta == "measured" and self.lepton_acceptance is None:
            raise ValueError(
                "decay_lambda_theta: 'measured' needs lepton_acceptance (the fit uses the "
                "per-pair acceptance's decay-angle moments); give a number"
            )
        if self.polarisation_correction is not None and self.decay_lambda_theta != "measured":
            raise ValueError(
                "polarisation_correction corrects a measured λ_θ: it needs "
                "decay_lambda_theta: 'measured'"
            )
        return self

    mass_bins: Annotated[int, Field(gt=0)] = 89
    """Number of mass bins between ``selection.mass_min`` and ``selection.mass_max``."""
    per_flavour: dict[Literal["mu", "e"], dict[str, Any]] = Field(default_factory=dict)
    """With ``input.lepton: [mu, e]``: keys of this section that differ for one flavour,
    e.g. ``{e: {mass_min: 0.01}}`` (a shallow merge over this section; validated as it,
    unknown keys are errors; see :func:`flavour_config`)."""


# --------------------------------------------------------------------------- yields
class ExternalValue(Section):
    """A model parameter taken from outside the data, with its 1σ error and where it comes
    from (recorded in the outputs)."""

    value: PositiveFloat
    """The parameter's value, in its own unit (σ_y of ``yields.extrapolation_y_sigma``: units of
    rapidity, within the fit's bounds 0.1–5)."""
    error: Annotated[float, Field(ge=0)]
    """Its 1σ error, in the same unit (0: exact), propagated to the outputs (σ_y: the fit
    repeated at value ± error, :func:`gammastar.yields.extrapolation.fitting.fit_extrapolation`)."""
    source: Annotated[str, Field(min_length=1)]
    """Where the value comes from (a measurement, a reference), recorded in the outputs (σ_y:
    ``yields.json`` ``extrapolation`` → ``y_sigma_source``)."""


class ResolutionMigrationConfig(Section):
    """The detector simulation behind the fiducial yields' migration correction
    (:mod:`gammastar.corrections.migration`): per mass bin c = f_true/f_reco, applied as Y = Y_F c / f_F,
    its statistics the ``resolution_migration`` nuisance."""

    simulation: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)
    """ROOT files (relative to the config; ``${output}`` allowed) in the mock's ntuple layout:
    the γ* inside the spectrometer (reconstructed ``m``, ``qT``, ``E``; ``m_true``) and a
    histogram of all generated γ* by true mass. Independent of the data (another sample)."""
    tree: Annotated[str, Field(min_length=1)] = "truth"
    """The tree of ``simulation`` holding the γ* inside the spectrometer (reconstructed ``m``,
    ``qT``, ``E`` and the true ``m_true``; the mock's ``truth``)."""
    histogram: Annotated[str, Field(min_length=1)] = "truth_all_m"
    """The histogram of ``simulation`` counting every generated γ* by true mass (the mock's
    ``truth_all_m``: 1 MeV bins up to 2 GeV), summed over the files, which must share its mass
    axis (:func:`gammastar.corrections.migration.read_simulation`)."""
    bootstrap: Annotated[int, Field(ge=2)] = 30
    """Poisson replicas of the simulated sources for the correction's 1σ."""
    seed: Annotated[int, Field(ge=0)] | None = None
    """The replicas' seed (default: the analysis ``seed``); recorded in ``yields.json``."""


class YieldsConfig(Section):
    """A′ and χχ̄ yields per POT (paper Eqs. 6, 8) and the theory comparisons
    (docs/explanation/physics.md §8).

    Owned by ``gammastar.yields.stage``; see docs/explanation/method.md.
    """

    mass_bin_width: PositiveFloat = 0.03
    """A′ yield binning (GeV): the unfolded mass bins are merged to about this width
    (the mass resolution, docs/explanation/physics.md §2)."""
    mcp_masses: list[PositiveFloat] = Field(
        default_factory=lambda: [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5], min_length=1
    )
    """χ masses (GeV) of the χχ̄ yield."""
    mcp_source: Literal["auto", "pairs", "histogram"] = "auto"
    """χχ̄ yield from ``pairs.parquet`` (exact per pair), ``unfolded_m`` (per bin), or
    ``auto`` (pairs when the file exists and its weights sum to ``unfolded_m``)."""
    aprime_source: Literal["auto", "pairs", "histogram"] = "auto"
    """A′ yield per bin from the pairs (bin average of Eq. 6 applied pair by pair) or from
    ``unfolded_m`` (Eq. 6 at the bin centre); ``auto`` as for ``mcp_source``."""
    brems_cutoff: PositiveFloat = 1.0
    """Off-shell proton cut-off Λ (GeV) of the bremsstrahlung curve [default, check]."""
    brems_band_factor: Annotated[float, Field(gt=1)] = 2.0
    """The bremsstrahlung band varies Λ by this factor up and down (paper Fig. 2)."""
    brems_z_min: Annotated[float, Field(gt=0, lt=1)] = 0.1
    """Lower edge of the A′ energy fraction z = E_A′/E_beam integrated in the bremsstrahlung
    curve: the validity window of the FWW approximation (arXiv:1311.3870;
    :class:`gammastar.physics.bremsstrahlung.BremsSettings`). The comparison curve only."""
    brems_z_max: Annotated[float, Field(gt=0, lt=1)] = 0.9
    """Upper edge of the A′ energy fraction z of the bremsstrahlung curve (FWW validity
    window, arXiv:1311.3870); above ``brems_z_min``."""
    brems_pt_max: PositiveFloat = 1.0
    """Largest A′ p_T in GeV integrated in the bremsstrahlung curve (FWW validity window,
    arXiv:1311.3870)."""
    brems_normalisation: PositiveFloat = 1.0
    """Extra factor on the bremsstrahlung rate per interaction (e.g. σ_NSD/σ_inel)."""
    brems_mcp_mass_max: PositiveFloat = 2.0
    """Largest γ* mass (GeV) integrated for the bremsstrahlung χχ̄ yield."""
    pi0_per_pot: PositiveFloat = 0.08
    """π0 per POT for the π0 → γχχ̄ line: ≈ 8 π0 per p–Pb interaction × (1 − e^{−0.01})
    [default, check: scale with the target]."""
    jpsi_per_pot: PositiveFloat = 6.7e-8
    """J/ψ per POT for the J/ψ → χχ̄ line: σ(p–Pb → J/ψ) ≈ 11.5 µb (≈ 85 nb/nucleon × A^0.92)
    / σ_inel 1.72 b × 0.01 [default, check]."""
    extrapolation_y_sigma: ExternalValue | None = None
    """σ_y of the extrapolation model (:mod:`gammastar.yields.extrapolation`) taken from outside the
    data, ``{value, error, source}``: fixed in the fit, its error propagated to f_F and N_sig.
    ``None``: fitted to the fiducial pairs. The fiducial region sees about ±0.5 units of
    rapidity, where the fit's σ_y moves by ≈ 0.3 for a 1% distortion of the weighted pairs'
    rapidity (docs/explanation/method.md "σ_y from outside"). Experiment-specific: no default."""
    extrapolation_pt_power: float | Literal["fitted"] = 0.0
    """The m_T power a of the extrapolation model's p_T form m_T^a exp(−m_T/T)
    (:func:`gammastar.yields.extrapolation.fitting.fit_extrapolation` ``pt_power``): a number fixes it (0: the
    m_T-exponential; then the Boltzmann form a = 1 enters the error as a model variation);
    ``fitted``: one a per fit group, fitted with its T, its error from the data (the sandwich
    covariance; docs/explanation/method.md "The p_T form fitted")."""
    resolution_migration: ResolutionMigrationConfig | None = None
    """A detector simulation whose mass response corrects the fiducial extrapolation for the
    γ* that the resolution brings in from other masses (between ω and φ on the NA60-like
    mock; docs/validation/uncertainties-and-coverage.md). ``None``: not corrected (the yield is
    Y_F/f_F), said in ``yields.json``."""
    compare_with: str | None = None
    """``yields.json`` of the same data's other lepton flavour: this run's
    ``yields.json`` then gains ``lepton_universality`` (A′ yield ratio per shared mass bin,
    χ²) and ``aprime_combined`` (:mod:`gammastar.yields.universality`)."""
    universality_mass_range: tuple[float, float] | None = None
    """Mass range (GeV) of the universality χ² (default: every shared bin)."""

    @model_validator(mode="after")
    def _check_z(self) -> YieldsConfig:
        if self.brems_z_max <= self.brems_z_min:
            raise ValueError(
                f"brems_z_max ({self.brems_z_max}) must be larger than brems_z_min "
                f"({self.brems_z_min})"
            )
        a = self.extrapolation_pt_power
        if a != "fitted" and not (-2.0 < float(a) <= 5.0):
            raise ValueError(
                f"extrapolation_pt_power must be 'fitted' or a number in (-2, 5] (m_T^a "
                f"exp(-m_T/T) is normalisable for a > -2; 5 the fit's bound), not {a}"
            )
        return self


# --------------------------------------------------------------------------- flow
class FlowConfig(Section):
    """Conditional normalizing flow p(qT, E | m) (paper App. A, docs/explanation/physics.md §5).

    The architecture defaults are the paper's (autoregressive RQ-spline flow, 8 transforms,
    6 bins, MADE 2 × 32, a linear transform between steps). The training defaults are a
    faster recipe than the paper's (batch 1024, lr 1e-3 constant, 500 epochs of 5e4 points)
    that reaches the same validation loss; set those values to reproduce the paper exactly
    (see docs/explanation/flow.md).
    """

    transforms: Annotated[int, Field(gt=0)] = 8
    """Autoregressive rational-quadratic-spline transforms (MAF steps) of the flow (paper: 8;
    :func:`gammastar.flow.architecture.build_flow`)."""
    bins: Annotated[int, Field(gt=1)] = 6
    """Spline bins of each transform on zuko's domain [−5, 5] (identity outside; paper: 6)."""
    hidden_features: list[Annotated[int, Field(gt=0)]] = Field(default_factory=lambda: [32, 32])
    """Hidden-layer widths of each transform's MADE network (paper: ``[32, 32]``)."""
    linear: bool = True
    """A learnable LU linear transform between the autoregressive steps (paper App. A)."""
    data: Literal["os", "subtracted", "os_signal"] = "os"
    """Training rows: OS pairs (the paper); OS and SS with negative SS weights (background-
    subtracted); or OS pairs without truth-combinatorial ones (mock only, ``channel != 0``)."""
    use_weights: bool = True
    """Weighted likelihood with the pairs' ``weight`` (unfolding); else ``weight_raw``."""
    weighting: Literal["stratified", "sampler", "likelihood"] = "stratified"
    """How the weighted likelihood −Σ w ln p / Σ w is estimated per batch: ``stratified``
    draws the points of an epoch ∝ |weight| by systematic resampling (each pair ⌊λ⌋ or ⌈λ⌉
    times, λ its expected count) and carries sign(w)·Σ|w|/Σw in the loss; ``sampler`` draws
    ∝ |weight| with replacement (multinomial); ``likelihood`` draws uniformly and puts the
    weights in the loss (high gradient variance for strongly varying weights; docs/explanation/flow.md)."""
    mass_context: Literal["linear", "log"] = "linear"
    """The flow's context: the standardised mass or the standardised ln m (``log``: for a
    range over decades, e.g. dielectrons from 20 MeV; docs/explanation/flow.md "Mass context")."""
    mass_flatten: Annotated[float, Field(ge=0, le=1)] = 0.0
    """Up-weight sparse masses: weights × ρ(m)^(−mass_flatten), ρ the mass density (0: off)."""
    epochs: Annotated[int, Field(gt=0)] = 30
    """Most training epochs of ``points_per_epoch`` points each; early stopping (``patience``)
    may end training sooner (paper: 500 epochs of 5·10⁴ points)."""
    points_per_epoch: Annotated[int, Field(gt=0)] | None = 100_000
    """Training points drawn at random per epoch (``null``: one pass over the training set)."""
    batch_size: Annotated[int, Field(gt=0)] = 4096
    """Points per optimizer step, at most the points of an epoch (paper: 1024;
    :class:`gammastar.flow.training.EpochPlan`)."""
    learning_rate: PositiveFloat = 5e-3
    """AdamW learning rate at its peak: reached after ``warmup_epochs``, then following
    ``schedule`` (paper: 10⁻³, constant)."""
    weight_decay: NonNegFloat = 1e-5
    """AdamW's decoupled weight decay on the flow's parameters (0: none)."""
    schedule: Literal["constant", "cosine"] = "cosine"
    """Learning-rate schedule per optimizer step (cosine decay to 1% after warm-up)."""
    warmup_epochs: Annotated[int, Field(ge=0)] = 0
    """Epochs of a linear learning-rate warm-up to ``learning_rate`` before ``schedule`` takes
    over (0: none)."""
    validation_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.2
    """Fraction of the training pairs (after the hold-out) used for early stopping."""
    holdout_fraction: Annotated[float, Field(ge=0, lt=1)] = 0.2
    """Fraction of the events whose pairs are held out of training (never seen by ``train``;
    ``validate`` compares the model with them). Split by a seeded hash of ``event``, so that
    all pairs of an event go to the same side; 0: no hold-out (validation on training rows)."""
    holdout_seed: Annotated[int, Field(ge=0)] | None = None
    """Seed of the hold-out split (default: the top-level ``seed``; not ``flow.seed``, so that
    every ensemble member and ``--seed`` share one split)."""
    patience: Annotated[int, Field(gt=0)] = 50
    """Early stopping: epochs without a validation-loss improvement."""
    checkpoint_every: Annotated[int, Field(gt=0)] = 5
    """Epochs between checkpoints (``flow/checkpoint.pt``, used by ``--resume``)."""
    ensemble: Annotated[int, Field(gt=0)] = 1
    """Number of models trained with seeds seed, seed+1, ... (``flow/ensemble/<i>/``)."""
    bootstrap: bool = False
    """Members i ≥ 1 of the ensemble fit a Poisson-bootstrap replica of the training pairs:
    each pair's weight × k, k ~ Poisson(1) (seeded by ``bootstrap_seed`` and i), so that their
    spread covers the data's finite statistics as well as the training's variance; member 0
    (``flow/``) stays the nominal fit to the data (docs/explanation/flow.md "Ensemble")."""
    bootstrap_seed: Annotated[int, Field(ge=0)] | None = None
    """Seed of the bootstrap replicas (default: the training seed of member 0)."""
    workers: Annotated[int, Field(gt=0)] | None = None
    """Processes training the ensemble's members in parallel (torch with one thread each);
    default: min(ensemble, the usable CPU cores); 1: one after the other in this process."""
    seed: Annotated[int, Field(ge=0)] | None = None
    """Training seed (default: the top-level ``seed``)."""
    max_pairs: Annotated[int, Field(gt=0)] | None = None
    """Use at most this many rows (a random subset) for training."""
    threads: Annotated[int, Field(gt=0)] | None = None
    """torch intra-op threads (default: torch's choice)."""


class ValidateConfig(Section):
    """k-NN KL validation of the flow (docs/explanation/physics.md §6)."""

    k: Annotated[int, Field(gt=0)] = 2
    """k of the k-nearest-neighbour KL estimate: each point's distances to its k-th neighbour
    in the two samples (:func:`gammastar.flow.kl.knn_kl`; paper: 2)."""
    masses: list[PositiveFloat] = Field(
        default_factory=lambda: [0.3, 0.5, 0.7, 0.9, 1.05], min_length=1
    )
    """Masses in GeV at which the flow is compared with the data, each in a window of full width
    ``window``; given, each must lie inside the selection's mass range (checked on load); those
    outside the flow's mass range (the data's extent) are skipped. The reach's flow closure
    (``reach.flow_closure``) uses the same masses."""
    window: PositiveFloat = 0.03
    """Full width of the data mass window around each mass (GeV; about the resolution), narrower
    than the selection's mass range."""
    repeats: Annotated[int, Field(gt=1)] = 50
    """Independent draws for the data-vs-data bands and the model mean."""
    max_points: Annotated[int, Field(gt=1)] = 20_000
    """At most this many data points per window half (speed)."""
    figure_masses: list[PositiveFloat] = Field(default_factory=lambda: [0.3, 0.6, 0.9])
    """Masses of the q_T / E comparison figure (Fig. 5 analogue)."""


# --------------------------------------------------------------------------- detector
def _shape_error(key: tuple[str, ...], message: str, data: Any) -> ValidationError:
    """A validation error at ``detector.<key>`` with a one-line message."""
    return ValidationError.from_exception_data(
        "DetectorConfig",
        [
            {
                "type": PydanticCustomError("detector_shape", "{message}", {"message": message}),
                "loc": key,
                "input": data,
            }
        ],
    )


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a == b
    try:
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=0.0)
    except (TypeError, ValueError):
        return False


def _detector_shapes(data: dict[str, Any]) -> dict[str, Any]:
    """``detector:`` with ``volume``/``plane``/``daughters`` checked through their registries
    (:mod:`gammastar.physics.volumes`, imported here, not with this module), the window keys
    they imply filled in (a given one must agree) and the shapes stored as their finite
    mappings; raises ``ShapeError`` whose key starts with the detector key."""
    vol_mod = importlib.import_module("gammastar.physics.volumes")
    shape_error = vol_mod.ShapeError

    def build(key: str, registry: Any) -> Any:
        if data.get(key) is None:
            return None
        try:
            return vol_mod.build(registry, data[key])
        except shape_error as err:
            raise shape_error((key, *err.key), err.message) from None

    if isinstance(data.get("daughters"), dict) and "efficiency" in data["daughters"]:
        raise shape_error(("daughters", "efficiency"), "give it once, as detector.efficiency")
    vol = build("volume", vol_mod.VOLUMES)
    plane = build("plane", vol_mod.PLANES)
    req = build("daughters", vol_mod.Requirements)

    # window key -> (the value the shapes imply, where it comes from)
    implied: dict[str, tuple[Any, str]] = {}
    if vol is not None:
        implied["l1"] = (vol.z1, "detector.volume.z1")
        implied["l2"] = (None if math.isinf(vol.z2) else vol.z2, "detector.volume.z2")
    if req is not None:
        implied["both_daughters"] = (req.require == "both", "detector.daughters.require")
        implied["min_daughter_energy"] = (req.min_energy, "detector.daughters.min_energy")
    both = req.require == "both" if req is not None else data.get("both_daughters") is True
    # no polar window: every direction, θ from 0 to π
    if req is not None and both:
        where = "detector.daughters.theta_window"
        window = req.theta_window or (0.0, math.pi)
    elif vol is not None and not both:
        where = f"detector.volume (shape {vol.name})"
        window = (vol.theta_min, vol.theta_max) if vol.name == "cone" else (0.0, math.pi)
    else:
        window = None
    if window is not None:
        implied["theta_min"] = (window[0], where)
        implied["theta_max"] = (window[1], where)
    if plane is not None:
        implied["plane_z"] = (plane.z, "detector.plane.z")
        if plane.name == "annulus":
            r_min, r_max = plane.r_min, plane.r_max
        elif plane.name == "circle":
            r_min, r_max = 0.0, plane.radius
        else:  # no radial edges: the annulus keys are open
            r_min, r_max = 0.0, math.inf
        implied["r_min"] = (r_min, f"detector.plane (shape {plane.name})")
        implied["r_max"] = (
            None if math.isinf(r_max) else r_max,
            f"detector.plane (shape {plane.name})",
        )
    for key, (value, where) in implied.items():
        if key in data and not _same(data[key], value):
            shown = f"{value:g}" if isinstance(value, float) else repr(value)
            raise shape_error(
                (key,),
                f"{data[key]!r} disagrees with {where}, which means {key} = {shown}; give it once",
            )

    if plane is not None:
        z1, z2 = (vol.z1, vol.z2) if vol is not None else (data.get("l1", 5.0), data.get("l2"))
        try:
            z2 = math.inf if z2 is None else float(z2)
        except (TypeError, ValueError):
            z2 = None  # a bad l2 is reported by its own field
        if z2 is not None and not plane.z > z2:
            raise shape_error(
                ("plane", "z"),
                f"the plane at z = {plane.z:g} m lies inside the decay volume (z from {z1:g} to "
                f"{z2:g} m); it must be downstream of it",
            )
    if req is not None and req.min_separation > 0 and plane is None and data.get("plane_z") is None:
        raise shape_error(("daughters", "min_separation"), "needs a detection plane (plane:)")

    out = dict(data)
    for key, (value, _) in implied.items():
        out.setdefault(key, value)
    for key, shape in (("volume", vol), ("plane", plane), ("daughters", req)):
        if shape is not None:
            out[key] = vol_mod.spec(shape)
    if req is not None:
        del out["daughters"]["efficiency"]  # detector.efficiency holds it
    return out


class DetectorConfig(Section):
    r"""Long-lived-particle detector geometry (paper App. B, docs/explanation/physics.md §9;
    gammastar.reach.acceptance).

    Distances are along the beam (z) from the A′ production point.

    Two ways to describe it. The window keys (``l1``, ``l2``, ``theta_min``, ``theta_max``,
    ``both_daughters``, ``min_daughter_energy``, ``plane_z``, ``r_min``, ``r_max``) are the
    axially symmetric detector; as shapes of :mod:`gammastar.physics.volumes` they are

    * without ``both_daughters``: the volume ``cone`` (θ_min ≤ θ < θ_max about the target,
      z1 = ``l1``, z2 = ``l2``, open for ``l2: null``), the A′ line itself at the plane
      (``daughters: {require: aprime}``);
    * with ``both_daughters``: the volume ``slab`` (z from ``l1`` to ``l2``), both daughters
      required (``daughters: {require: both, min_energy: <min_daughter_energy>,
      theta_window: [theta_min, theta_max]}``, the window on their directions);
    * ``plane_z``: the plane ``annulus`` (``r_min``, ``r_max``, z = ``plane_z``; no
      ``r_max``: no outer edge).

    ``volume``, ``plane`` and ``daughters`` give the shapes themselves (any registered shape,
    off axis, a beam hole, either daughter, a minimum separation). The window keys they imply
    are filled in (the z range always; the polar window, the daughters' cuts and the annulus
    where the shapes have them), and a window key given as well must agree with them. Sizes
    are positive, z2 > z1 ≥ 0, and the plane lies downstream of the volume (z > z2); each
    broken rule is one line naming its ``detector.`` key.
    """

    l1: NonNegFloat = 5.0
    """Start of the decay volume (or the shield length) in m."""
    l2: PositiveFloat | None = None
    """End of the decay volume in m; ``None`` means no end (paper's mock detector)."""
    theta_min: NonNegFloat = 0.035
    """Lower edge of the polar-angle window (rad) on the A′ direction, or on both leptons'
    with ``both_daughters``: θ ≥ θ_min (:func:`gammastar.source.hits.detector_hits`)."""
    theta_max: PositiveFloat = 0.120
    """Upper edge of the polar-angle window (rad): θ < θ_max; without ``both_daughters`` the
    opening of the decay volume's ``cone``."""
    efficiency: Probability = 1.0
    """Constant selection (trigger, reconstruction, PID) efficiency."""
    both_daughters: bool = False
    """Decay A′ → ℓℓ isotropically and require both leptons inside the acceptance."""
    min_daughter_energy: NonNegFloat = 0.0
    """Minimum lepton energy in GeV (with ``both_daughters``)."""
    plane_z: PositiveFloat | None = None
    """Downstream detector plane (m) for a transverse acceptance r_min < r < r_max."""
    r_min: NonNegFloat = 0.0
    """Inner radius in m of the annulus at ``plane_z`` about the beam line: each line from
    the decay vertex (the A′'s, or each lepton's with ``both_daughters``) must cross the plane
    at r ≥ r_min (0: no hole)."""
    r_max: PositiveFloat | None = None
    """Outer radius in m of the annulus at ``plane_z`` (r ≤ r_max); ``None``: no outer edge."""
    z_steps: Annotated[int, Field(gt=0, le=1000)] = 24
    """Cells of the decay volume when the hit depends on the vertex (``plane_z``, or a
    ``plane`` with the shapes: cells along each A′ path inside the volume)."""
    volume: dict[str, Any] | None = None
    """The decay volume as a shape: ``shape:`` a key of
    :data:`gammastar.physics.volumes.VOLUMES` (``slab``, ``cone``, ``cylinder``, ``box``,
    ``frustum``) and its fields (m, rad; ``offset: [x0, y0]``); ``None``: the window keys'."""
    plane: dict[str, Any] | None = None
    """The detection plane as a shape: ``shape:`` a key of
    :data:`gammastar.physics.volumes.PLANES` (``rectangle``, ``circle``, ``annulus``), its
    fields, ``z`` downstream of the volume and an optional ``hole: {shape: circle|rectangle,
    ...}`` (centred on the beam line unless given a ``center``)."""
    daughters: dict[str, Any] | None = None
    """What the detector asks of the daughters (:class:`gammastar.physics.volumes.Requirements`):
    ``require`` (``both``, ``either`` or ``aprime``), ``min_energy`` (GeV), ``min_separation``
    at the plane (m), ``theta_window`` ([θ_min, θ_max] on their directions); the efficiency
    is ``efficiency``."""

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # shapes not given are left out: a config without them hashes as it did before they
        # existed, so its runs stay up to date
        out = handler(self)
        for key in ("volume", "plane", "daughters"):
            if out.get(key) is None:
                out.pop(key, None)
        return out

    @model_validator(mode="before")
    @classmethod
    def _shapes(cls, data: Any) -> Any:
        if not isinstance(data, dict) or all(
            data.get(k) is None for k in ("volume", "plane", "daughters")
        ):
            return data
        shape_error = importlib.import_module("gammastar.physics.volumes").ShapeError
        try:
            return _detector_shapes(data)
        except shape_error as err:
            raise _shape_error(err.key, err.message, data) from None

    @model_validator(mode="after")
    def _check_order(self) -> DetectorConfig:
        if self.l2 is not None and self.l2 <= self.l1:
            raise ValueError(f"l2 ({self.l2}) must be larger than l1 ({self.l1})")
        if self.theta_max <= self.theta_min:
            raise ValueError(
                f"theta_max ({self.theta_max}) must be larger than theta_min ({self.theta_min})"
            )
        if self.plane_z is not None and (self.l2 is None or self.plane_z <= self.l2):
            raise ValueError(f"plane_z ({self.plane_z}) needs l2 set and smaller than plane_z")
        if self.r_max is not None and self.r_max <= self.r_min:
            raise ValueError(f"r_max ({self.r_max}) must be larger than r_min ({self.r_min})")
        return self


# --------------------------------------------------------------------------- events
class EventsConfig(Section):
    """Signal events for detector simulation (``gammastar events``, docs/howto/signal-events.md).

    The beam spot and the target's interaction length are the facility's: no defaults.
    """

    aprime_pdgid: int = 4900022
    """PDG id written for the A′ (default: Pythia 8 Hidden Valley ``gammav``)."""
    beam_spot_sigma: tuple[NonNegFloat, NonNegFloat] | None = None
    """Gaussian beam spot (σ_x, σ_y) at the target in m ([0, 0]: a point beam)."""
    mcp_pdgid: int | None = None
    """PDG id written for the millicharged χ (χ̄: its negative). No default: the PDG numbering
    has no code for a fractional charge ≪ e; choose one your Geant4 setup defines."""
    target_interaction_length: PositiveFloat | None = None
    """Nuclear interaction length λ_I of the target (dump) material in m: production depth
    ∝ e^{−z/λ_I} over the thickness ``reach.target_interaction_lengths`` (or the data's)."""


# --------------------------------------------------------------------------- reach
LeptonChannel = Annotated[
    str, _registered("gammastar.physics.channels:LEPTON_CHANNELS", "lepton channel")
]
"""A leptonic A′ decay channel: a key of :data:`gammastar.physics.channels.LEPTON_CHANNELS`."""
ObservedCount = Annotated[int, Field(ge=0)]


class ObservedMasses(Section):
    """Observed events of one channel as reconstructed masses: a list, or a ROOT TH1.

    Converted to counts in each mass point's signal window (``gammastar.reach.observed.observed_counts``,
    the windows of ``gammastar.reach.signal.window_edges``).
    """

    masses: list[PositiveFloat] | None = None
    """Reconstructed masses (GeV) of the observed candidate events."""
    histogram: str | None = None
    """ROOT TH1 of the observed reconstructed masses, ``"file.root:name"`` (``${output}``
    allowed); integer contents, bins no wider than the signal windows' bins."""

    @model_validator(mode="after")
    def _one_source(self) -> ObservedMasses:
        if (self.masses is None) == (self.histogram is None):
            raise ValueError("give exactly one of masses (a list) or histogram (file.root:name)")
        return self


class BoundFile(Section):
    """A published bound drawn on the reach plot (``gammastar.reach.bounds``), read as its
    publisher ships it: a HEPData table (YAML, or a ``hepdata:`` reference downloaded on first
    use), a CSV table, a DarkCast ``.lmt`` table or a FORESEE-style polygon."""

    file: str
    """The bound file (relative to the config file; ``path:`` is the same key), a HEPData table
    reference ``hepdata:RECORD/TABLE`` (e.g. ``hepdata:ins1313628/Figure 5``, downloaded on
    first use into the gammastar cache), or a known reference's name (``phenix_2015``)."""
    label: str | None = None
    """Legend entry (default: the file's ``# label:``, else its name)."""
    style: Literal["filled", "line", "dashed"] = "filled"
    """A grey region with its outline (the field's convention for existing limits), or only
    the outline, solid or dashed."""
    format: Literal["hepdata", "csv", "lmt", "polygon"] | None = None
    """The file's format (default: by its suffix: ``.yaml``/``.yml`` hepdata, ``.csv``,
    ``.lmt``); ``polygon``: one ``m coupling`` vertex a line (FORESEE's bounds)."""
    units: Literal["eps", "eps2"] | None = None
    """Whether the file's coupling is ε or ε²: needed for ``lmt`` and ``polygon`` files without
    a ``# units:`` line; a table's column names say it (this must then agree)."""
    shape: Literal["contour", "curve", "above", "band"] | None = None
    """Overrides the file's shape: ``above`` for an upper limit (everything above excluded)."""
    column: str | None = None
    """A HEPData table's coupling column when it has several: its header name or a qualifier
    value (``"90%"``)."""

    @model_validator(mode="before")
    @classmethod
    def _path_alias(cls, v: Any) -> Any:
        if isinstance(v, dict) and "path" in v and "file" not in v:
            v = {("file" if k == "path" else k): x for k, x in v.items()}
        return v


class FacilityTarget(Section):
    """The facility's target nucleus and the A-dependence that carries the data's yield to it
    (:func:`gammastar.physics.target.nucleus_scale`): the yield per interacting proton is
    multiplied by (A_f/A_d)^α σ_inel(A_d)/σ_inel(A_f), the data's A_d and σ_inel(A_d) being
    ``beam.target_mass_number`` and ``beam.sigma_inel_mb``. The error of α is the reach's
    nuisance ``target_a_dependence``. Every field is the facility's or the physics' own: no
    defaults. The thickness stays ``reach.target_interaction_lengths``."""

    material: Annotated[str, Field(min_length=1)]
    """Name of the material the primary protons interact in (e.g. ``Cu``): a label for the
    records; for a dump of several materials, the one where most protons interact."""
    mass_number: PositiveFloat
    """Its mass number A_f (standard atomic weight, e.g. 63.546 for Cu)."""
    sigma_inel_mb: PositiveFloat
    """Its inelastic p–A cross section in mb, A/(N_A λ_I) with λ_I in g/cm² (PDG), as
    ``beam.sigma_inel_mb`` for the data's target
    (:func:`gammastar.physics.target.inelastic_cross_section_mb`)."""
    a_exponent: Annotated[float, Field(gt=0, le=1.5)]
    """α of σ_X(pA) ∝ A^α for the A′ parents (light mesons in p–A at the data's energy)."""
    a_exponent_err: NonNegFloat
    """1σ error of α: the nuisance ``target_a_dependence`` of relative size
    exp(|ln(A_f/A_d)| σ_α) − 1 (:func:`gammastar.physics.target.nucleus_scale_rel_err`)."""
    a_exponent_origin: Annotated[str, Field(min_length=1)]
    """Where α and its error come from (written to ``reach.json`` and the workspaces' nuisance
    record)."""


class ReachConfig(Section):
    """Expected/observed CLs exclusion in the (m_A′, ε) plane (docs/explanation/physics.md §10;
    gammastar.reach.stage).

    The statistics inputs have no defaults: ``background``, ``background_kappa``,
    ``efficiency_uncertainty``, ``n_pot_rel_uncertainty`` and the facility's target
    (``target_interaction_lengths``, or an explicit ``yield_scale``) must be given, 0 (or 1 for
    a κ) on purpose where they do not apply; ``gammastar reach`` names the first one missing
    before it writes anything (``gammastar.reach.stage.check_config``).
    """

    cl: Annotated[float, Field(gt=0, lt=1)] = 0.9
    """Confidence level of the CLs exclusion: excluded where CLs < 1 − cl (0.9: 90% CL)."""
    channels: list[LeptonChannel] = Field(default_factory=lambda: ["mumu"], min_length=1)
    """The A′ → ℓℓ channels searched, keys of :data:`gammastar.physics.channels.LEPTON_CHANNELS`
    (``ee``, ``mumu``): each a channel of the likelihood at the masses where it is open
    (m > 2m_ℓ); also the decays of ``gammastar events`` unless ``--channels`` says otherwise."""
    mass_points: Annotated[int, Field(gt=0)] = 60
    """Masses of the scan, evenly spaced from ``mass_min`` to ``mass_max``."""
    eps_points: Annotated[int, Field(gt=0)] = 60
    """Values of the kinetic mixing ε of the scan, log-spaced from ``eps_min`` to ``eps_max``."""
    eps_min: PositiveFloat = 1e-8
    """Lower end of the grid of the kinetic mixing ε (dimensionless): the exclusion's
    boundaries are found on the grid, so it should reach below the expected lower boundary
    ε_low (where too few A′ decay inside the volume)."""
    eps_max: PositiveFloat = 1e-3
    """Upper end of the ε grid: it should reach above the expected upper boundary ε_high
    (where the A′ decay before the volume)."""
    mass_min: PositiveFloat | None = None
    """Lower end of the scan's mass range in GeV; default: the lowest mass where the yields
    and the flow both exist (:func:`gammastar.reach.stage.reach_inputs`). With this run's
    yields, inside the selection's mass range (checked on load)."""
    mass_max: PositiveFloat | None = None
    """Upper end of the scan's mass range in GeV; default: the highest mass where the yields
    and the flow both exist."""
    background: dict[LeptonChannel, NonNegFloat] | None = None
    """Expected background events per channel in each mass point's signal window (``template:
    counting``; NA62's whole-signal-region numbers used so are conservative) or in the whole
    scanned mass range, spread flat (``template: mass``). Required (0 on purpose for a
    background-free search)."""
    background_kappa: dict[LeptonChannel, Annotated[float, Field(ge=1)]] | None = None
    """Log-normal shape κ of each channel's background yield (NA62 App. B: 1.125 μμ, 4.0 ee);
    required, 1 for an exactly known background."""
    observed: dict[LeptonChannel, ObservedCount | list[ObservedCount] | ObservedMasses] | None = (
        None
    )
    """Observed events per channel (every channel of ``channels``), for the observed limit:
    a count (the same in every mass point's window, e.g. 0 for an empty signal region), a list
    of counts per mass point (``mass_points`` entries), or ``{masses: [...]}`` /
    ``{histogram: "file.root:name"}``: the reconstructed masses of the observed events,
    counted in each mass point's window. ``None``: expected limits only."""
    efficiency_uncertainty: NonNegFloat | None = None
    """Relative signal-efficiency uncertainty per channel (NA62 Table I: 2.9%); required."""
    n_pot_rel_uncertainty: NonNegFloat | None = None
    """Relative (log-normal) uncertainty of the signal normalisation N_POT, one parameter
    shared by the channels (NA62: 0.2, "log-normal with shape 1.2"); required."""
    method: StatsMethod = "auto"
    """CLs calculation: ``auto`` or a key of :data:`gammastar.reach.stats.METHODS` (exact hybrid
    construction, pyhf toys or asymptotics)."""
    ntoys: Annotated[int, Field(gt=0)] = 500
    """Pseudo-experiments per tested signal for the ``toys`` method (pyhf's toy calculator;
    ``auto`` takes it where neither the exact nor the asymptotic method fits); unused by the
    others."""
    template: Literal["counting", "mass"] = "counting"
    """One counting bin per channel, or reconstructed-mass bins with a Gaussian signal."""
    mass_resolution: PositiveFloat | None = None
    """Dilepton mass resolution σ_m in GeV; required with ``template: mass`` or observed
    masses (the signal window is m ± ``mass_window_sigmas`` σ_m)."""
    mass_window_sigmas: PositiveFloat = 3.0
    """Half width of each mass point's signal window in units of ``mass_resolution``:
    m ± mass_window_sigmas σ_m (``template: mass`` and observed masses;
    :func:`gammastar.reach.signal.window_edges`)."""
    mass_bins: Annotated[int, Field(gt=0, le=50)] = 6
    """Equal reconstructed-mass bins of the signal window with ``template: mass``
    (``counting``: one bin)."""
    n_pot: PositiveFloat | None = None
    """Protons on target of the facility; default ``beam.n_pot`` (the data's own exposure)."""
    target_interaction_lengths: PositiveFloat | Literal["dump", "data"] | None = None
    """The facility's target thickness in λ_I (e.g. 19.6 for NA62's TAX), ``dump`` (every
    proton interacts) or ``data`` (the data's own target). The yield per POT of the data's
    target (``beam.interaction_lengths``, as recorded in ``yields.json``) is scaled by
    P_int(facility)/P_int(data), P_int(L) = 1 − e^{−L} (``gammastar.physics.target``)."""
    yield_scale: PositiveFloat | None = None
    """Explicit factor on the yield per POT, instead of ``target_interaction_lengths`` (for
    yields whose target is not described by a thickness); not both."""
    target: FacilityTarget | None = None
    """The facility's target nucleus and the A-dependence of the yield (:class:`FacilityTarget`):
    the yield scale P_int(facility)/P_int(data) is multiplied by (A_f/A_d)^α
    σ_inel(A_d)/σ_inel(A_f), with the nuisance ``target_a_dependence``; ``None``: the yield
    per interacting proton is taken to be the data's (same nucleus)."""
    yields: str = f"${{output}}/{rundir.YIELDS}"
    """The ``yields.json`` whose A′ yield per POT the reach scans (``${output}`` allowed; default
    this run's); the events and the reach's nuisances read it too."""
    flow: str | None = f"${{output}}/{rundir.FLOW_DIR}"
    """The flow (run dir, ``flow/`` or ``model.pt``); ``None``: the analytic sampler (the
    yields' fitted extrapolation model when they have one, every sample labelled
    extrapolated)."""
    extrapolation: Literal["label", "refuse"] = "label"
    """Signal outside the data's fiducial region (yields with an ``extrapolation``):
    ``label`` adds it from the fitted model and reports its share of N_sig in ``reach.json``;
    ``refuse`` keeps the fiducial region only (fiducial yield × flow: a conservative reach).
    Either way a detector that sees nothing of the fiducial region is an error."""
    samples: Annotated[int, Field(gt=0)] = 20_000
    """A′ kinematic samples per mass for the acceptance."""
    flow_closure: bool = True
    """With a flow: its detector acceptance against that of the pairs it learnt, at the
    ``validate.masses`` and the median expected ε_low / ε_high (``reach.json``
    ``flow_closure``, ``figures/reach_flow_closure.png``; :mod:`gammastar.reach.flow_closure`)."""
    dark_alpha: NonNegFloat = 0.0
    """Dark coupling α_D of an optional dark state (semi-visible A′); 0 = minimal A′."""
    dark_mass: NonNegFloat = 0.0
    """Dark-state mass in GeV (decays open above 2 × dark_mass)."""
    event_lines: list[PositiveFloat] = Field(default_factory=lambda: [2.3, 3.0])
    """Fixed event-count contours drawn for comparison with other studies."""
    compare_with: list[BoundFile] = Field(default_factory=list)
    """Published bounds drawn on the reach plot and listed in the report
    (``gammastar.reach.bounds``: HEPData tables (files or ``hepdata:`` references), CSV, DarkCast
    ``.lmt`` and polygon files of (m, ε) points)."""

    @field_validator("observed", mode="before")
    @classmethod
    def _observed_forms(cls, v: Any) -> Any:
        # one clear message per bad entry instead of pydantic's one line per union member
        if not isinstance(v, dict):
            return v
        for ch, obs in v.items():
            counts = obs if isinstance(obs, list) else [obs]
            if isinstance(obs, dict):
                try:
                    ObservedMasses.model_validate(obs)
                except ValidationError as err:
                    e = err.errors()[0]
                    where = ".".join(str(p) for p in e["loc"])
                    msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
                    msg = msg.removeprefix("Value error, ")
                    raise ValueError(f"{ch}{'.' + where if where else ''}: {msg}") from None
            elif not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts):
                raise ValueError(
                    f"{ch}: an observed count (integer >= 0), a list of counts per mass point, "
                    f"or {{masses: [...]}} / {{histogram: file.root:name}}; got {obs!r}"
                )
        return v

    @field_validator("compare_with", mode="before")
    @classmethod
    def _bound_paths(cls, v: Any) -> Any:
        # a bare path stands for {file: path}
        if isinstance(v, list):
            return [{"file": x} if isinstance(x, str) else x for x in v]
        return v

    @field_validator("target_interaction_lengths", mode="before")
    @classmethod
    def _target_form(cls, v: Any) -> Any:
        bad = isinstance(v, str) and v not in ("dump", "data")
        bad |= isinstance(v, int | float) and not isinstance(v, bool) and not v > 0
        if bad or isinstance(v, bool):
            raise ValueError(
                f"a thickness (> 0) in interaction lengths, 'dump' or 'data'; got {v!r}"
            )
        return v

    @model_validator(mode="after")
    def _check_ranges(self) -> ReachConfig:
        if self.eps_max <= self.eps_min:
            raise ValueError(f"eps_max ({self.eps_max}) must be larger than eps_min")
        lo, hi = self.mass_min, self.mass_max
        if lo is not None and hi is not None and hi <= lo:
            raise ValueError(f"mass_max ({hi}) must be larger than mass_min ({lo})")
        for key in ("background", "background_kappa", "observed"):
            given = getattr(self, key)
            for ch in self.channels if given is not None else ():
                if ch not in given:
                    raise ValueError(f"{key}: nothing given for channel {ch!r}")
        for ch, obs in (self.observed or {}).items():
            if isinstance(obs, list) and len(obs) != self.mass_points:
                raise ValueError(
                    f"observed.{ch}: {len(obs)} counts, but mass_points is {self.mass_points} "
                    "(one count per mass point)"
                )
        if self.yield_scale is not None and self.target_interaction_lengths is not None:
            raise ValueError(
                "give target_interaction_lengths (the yield scale is derived from it) or an "
                "explicit yield_scale, not both"
            )
        if self.target is not None and (
            self.yield_scale is not None or self.target_interaction_lengths == "data"
        ):
            raise ValueError(
                "target: the facility's nucleus goes with a facility target thickness "
                "(target_interaction_lengths > 0 or 'dump'), not with an explicit yield_scale "
                "or the data's own target"
            )
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # not given: left out, so a config without it hashes as before the key existed
        out = handler(self)
        if out.get("target") is None:
            out.pop("target", None)
        return out

    def missing(self) -> list[tuple[str, str]]:
        """The statistics inputs a reach needs that are not given: ``(key, what it is)``."""
        out = []
        if self.background is None:
            out.append(("background", "expected background events per channel"))
        if self.background_kappa is None:
            out.append(("background_kappa", "log-normal shape of each background (1: exact)"))
        if self.efficiency_uncertainty is None:
            out.append(("efficiency_uncertainty", "relative signal-efficiency uncertainty"))
        if self.n_pot_rel_uncertainty is None:
            out.append(("n_pot_rel_uncertainty", "relative N_POT uncertainty"))
        if self.target_interaction_lengths is None and self.yield_scale is None:
            out.append(
                (
                    "target_interaction_lengths",
                    (
                        "the facility target's thickness in interaction lengths, 'dump' or "
                        "'data' (or an explicit yield_scale)"
                    ),
                )
            )
        uses_masses = any(isinstance(o, ObservedMasses) for o in (self.observed or {}).values())
        if self.mass_resolution is None and (self.template == "mass" or uses_masses):
            why = "template: mass" if self.template == "mass" else "observed masses"
            out.append(("mass_resolution", f"the dilepton mass resolution in GeV ({why})"))
        return out


# --------------------------------------------------------------------------- mcp
class McpDetectorConfig(Section):
    """Scintillator-bar millicharge detector (``gammastar.physics.scintillator``): all
    experiment-specific, no defaults except the optional background and efficiency terms."""

    distance: PositiveFloat
    """Target to the front face of the first layer, m."""
    n_layers: Annotated[int, Field(ge=1)]
    """Layers of bars (a detector with no layers is an error)."""
    layer_length: PositiveFloat
    """Depth of a layer along the beam (bar length), m."""
    area: PositiveFloat
    """Transverse active area of a layer (square, on the beam axis), m²."""
    npe_per_q2: PositiveFloat
    """Mean photoelectrons of a unit charge crossing one layer (N_PE = Q² × this)."""
    n_coincidence: Annotated[int, Field(ge=1)] | None = None
    """Layers required in coincidence (None: all)."""
    dark_count_rate_hz: NonNegFloat = 0.0
    """Dark-count rate r per bar stack and layer in Hz: the accidental background is
    n_channels · C(n, k) · k · r^k · τ^{k−1} · live time for k of n layers in coincidence
    (:meth:`gammastar.physics.scintillator.ScintillatorDetector.background_events`); 0: none."""
    coincidence_window_s: NonNegFloat = 0.0
    """Coincidence window τ of the layers in s (the accidental background only)."""
    live_time_s: NonNegFloat = 0.0
    """Live time of the run in s, over which the accidental background accumulates."""
    n_channels: Annotated[int, Field(ge=1)] = 1
    """Independent bar stacks, each with its own accidental coincidences (the background
    scales with it)."""
    efficiency: Annotated[float, Field(gt=0, le=1)] = 1.0
    """Further constant efficiency (timing, reconstruction) multiplying the detection
    probability; 1: none."""

    @model_validator(mode="after")
    def _check_coincidence(self) -> McpDetectorConfig:
        if self.n_coincidence is not None and self.n_coincidence > self.n_layers:
            raise ValueError(
                f"n_coincidence ({self.n_coincidence}) exceeds n_layers ({self.n_layers})"
            )
        return self


class McpSource(Section):
    """A meson source of χχ̄ outside the data (``gammastar.reach.mcp``)."""

    per_collision: PositiveFloat
    """Mesons per inelastic proton–target collision."""
    temperature: PositiveFloat
    """Inverse slope T of dN/dm_T ∝ m_T e^{−m_T/T}, GeV."""
    rapidity_sigma: PositiveFloat
    """Width of the Gaussian lab rapidity around y_cm."""


class McpDataDriven(Section):
    """The χ flux from the data (paper Eq. 8): a finished run directory of the dilepton
    analysis; its ``pairs.parquet`` (unfolded weights) and ``yields.json`` (meta: ``n_pot``,
    ``target_interaction_lengths``, ``lepton_mass``) are read, nothing typed twice."""

    run: str
    """The run directory (relative to the config file; ``${output}`` allowed) of a finished
    single-flavour run (:func:`gammastar.reach.mcp.data_driven_yields`)."""


McpMeson = Literal["pi0", "eta", "eta_prime", "rho", "omega", "phi", "jpsi"]


class McpConfig(Section):
    """Millicharged-particle detection reach in (m_χ, Q) (``gammastar.reach.mcp``)."""

    detector: McpDetectorConfig
    beam_energy: PositiveFloat
    """Proton beam energy of the facility, GeV."""
    n_pot: PositiveFloat
    """Protons on target of the facility."""
    target_interaction_lengths: PositiveFloat | Literal["dump"]
    """The facility's target thickness in nuclear interaction lengths λ_I, or ``dump`` (every
    proton interacts): P_int = 1 − e^{−L} normalises the meson sources, and the data-driven
    flux is scaled by P_int(facility)/P_int(data) (``gammastar.physics.target``). Required."""
    n_pot_rel_uncertainty: NonNegFloat
    """Relative (log-normal) uncertainty of ``n_pot`` in the likelihood
    (:func:`gammastar.reach.mcp.mcp_reach`); required (0 on purpose for an exact N_POT)."""
    sources: dict[McpMeson, McpSource] = Field(default_factory=dict)
    data_driven: McpDataDriven | None = None
    mass_min: PositiveFloat = 0.01
    """Smallest χ mass of the scan in GeV."""
    mass_max: PositiveFloat = 1.5
    """Largest χ mass of the scan in GeV."""
    mass_points: Annotated[int, Field(ge=1, le=500)] = 30
    """χ masses of the scan, log-spaced from ``mass_min`` to ``mass_max``."""
    n_samples: Annotated[int, Field(ge=100)] = 100_000
    """Mesons sampled per source and m_χ for the geometric acceptance."""
    cl: Annotated[float, Field(gt=0, lt=1)] = 0.9
    """Confidence level of the expected exclusion in Q (exact CLs, one counting bin)."""

    @model_validator(mode="after")
    def _check(self) -> McpConfig:
        if not self.sources and self.data_driven is None:
            raise ValueError("needs at least one χ source: 'sources' or 'data_driven'")
        if self.mass_max <= self.mass_min:
            raise ValueError(f"mass_max ({self.mass_max}) must exceed mass_min ({self.mass_min})")
        return self


# --------------------------------------------------------------------------- idm
class IdmConfig(Section):
    """Semi-visible dark photon: A′ → ψ₁ψ₂ (iDM) or ψ₂ψ̄₂, ψ₁ψ̄₂ + ψ₂ψ̄₁ (i2DM), ψ₂ → ψ₁ℓ⁺ℓ⁻
    (``gammastar events --dark``, ``gammastar reach-idm``; docs/howto/dark-sectors.md).

    α_D, Δ and m_A′/m₁ default to the literature's benchmark (Izaguirre, Krnjaic, Schuster,
    Toro PRD 96 (2017) 055007; Berlin, Gori, Schuster, Toro PRD 98 (2018) 035011): model
    conventions of the y plane, not experiment numbers. The experiment's numbers (background,
    N_POT uncertainty) have no defaults; N_POT, the target and the decay volume are the
    config's ``reach``/``beam``/``detector`` ones (one definition of a detected event).
    """

    model: Literal["idm", "i2dm"] = "idm"
    """The dark sector: ``idm`` (a pseudo-Dirac pair: A′ → ψ₁ψ₂ only) or ``i2dm`` (two Dirac
    fermions mixed by ``theta``: A′ → ψ₂ψ̄₂, ψ₁ψ̄₂ + ψ₂ψ̄₁; :mod:`gammastar.physics.darksector`)."""
    alpha_d: PositiveFloat = 0.1
    """Dark coupling α_D = g_D²/4π."""
    delta: PositiveFloat = 0.1
    """Δ = (m₂ − m₁)/m₁."""
    mass_ratio: PositiveFloat = 3.0
    """m_A′/m₁ (A′ → ψ₁ψ₂ needs ≥ 2 + Δ)."""
    theta: Annotated[float, Field(gt=0, lt=1.5707963267948966)] | None = None
    """i2DM mixing angle θ in rad (required with ``model: i2dm``)."""
    channels: list[Literal["ee", "mumu"]] = Field(default_factory=lambda: ["ee", "mumu"])
    """ψ₂ → ψ₁ℓ⁺ℓ⁻ final states written and counted (each with its branching fraction)."""
    min_opening_angle: NonNegFloat = 0.0
    """Lab opening angle of the ℓ⁺ℓ⁻ pair, rad (the lepton energy and angle cuts, the decay
    volume and the downstream plane are ``detector``'s, applied to both leptons)."""
    psi1_pdgid: int = 1000022
    """PDG id written for ψ₁ (default: the PDG Monte Carlo numbering's χ̃⁰₁ slot, as the
    dark-fermion UFO models use it; i2DM's Dirac antiparticle: the negative)."""
    psi2_pdgid: int = 1000023
    """PDG id written for ψ₂ (default: the χ̃⁰₂ slot)."""
    background: NonNegFloat
    """Expected background events of the iDM selection (the experiment's; no default)."""
    n_pot_rel_uncertainty: NonNegFloat
    """Relative N_POT uncertainty of the likelihood (the experiment's; no default)."""
    m1_range: tuple[PositiveFloat, PositiveFloat] | None = None
    """(m₁ min, m₁ max) of the scan, GeV; None: the A′ yields' mass range / ``mass_ratio``."""
    m1_points: Annotated[int, Field(ge=1, le=500)] = 20
    """ψ₁ masses of the scan, log-spaced over ``m1_range`` (or its default)."""
    samples: Annotated[int, Field(ge=100)] = 20_000
    """Chains per m₁ and ψ₂ channel for the acceptance."""
    y_range: tuple[PositiveFloat, PositiveFloat] = (1e-16, 1e-2)
    """Ends of the grid of y = ε²α_D(m₁/m_A′)⁴ (dimensionless, log-spaced) on which each m₁'s
    excluded interval [y_low, y_high] is sought."""
    y_points: Annotated[int, Field(ge=10, le=2000)] = 241
    """Points of the y grid."""
    cl: Annotated[float, Field(gt=0, lt=1)] = 0.9
    """Confidence level of the expected exclusion (exact CLs, one counting bin)."""

    @model_validator(mode="after")
    def _check(self) -> IdmConfig:
        if self.mass_ratio < 2 + self.delta:
            raise ValueError(
                f"mass_ratio ({self.mass_ratio}) must be >= 2 + delta ({2 + self.delta}): "
                "m_A' < m1 + m2 closes A' -> psi1 psi2"
            )
        if self.model == "i2dm" and self.theta is None:
            raise ValueError("theta (the i2DM mixing angle, rad) is required with model: i2dm")
        if self.model == "idm" and self.theta is not None:
            raise ValueError("theta is an i2DM parameter (model: i2dm)")
        if not self.channels:
            raise ValueError("channels: at least one of ee, mumu")
        if self.m1_range is not None and self.m1_range[1] <= self.m1_range[0]:
            raise ValueError(f"m1_range {self.m1_range}: max must exceed min")
        if self.y_range[1] <= self.y_range[0]:
            raise ValueError(f"y_range {self.y_range}: max must exceed min")
        return self

    def dark_model(self, m_aprime: float) -> Any:
        """The :class:`~gammastar.physics.darksector.IDM` / ``I2DM`` at this A′ mass."""
        from gammastar.physics import darksector

        m1 = m_aprime / self.mass_ratio
        kw = {"m1": m1, "delta": self.delta, "m_aprime": m_aprime, "alpha_d": self.alpha_d}
        if self.model == "i2dm":
            return darksector.I2DM(**kw, theta=self.theta)
        return darksector.IDM(**kw)


# --------------------------------------------------------------------------- uncertainties
BUILTIN_NUISANCES = (
    "data_stat",
    "like_sign_r",
    "acceptance_lambda_theta",
    "acceptance_map_stat",
    "eta_mumu",
    "extrapolation",
    "resolution_migration",
    "kinematic_model",
)
"""Names of the prediction's own nuisance parameters (``gammastar.yields.uncertainties``); together
with the reach's ``n_pot``, ``eff_<channel>`` and ``bkg_<channel>`` they are reserved."""


class ExtraNuisance(Section):
    """A further normalisation uncertainty of the A′ yield, the same at every mass."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$")]
    """The nuisance's name in ``yields.json`` ``uncertainties`` and the reach's workspaces: a
    letter, then letters, digits or ``_``; not a built-in name (:data:`BUILTIN_NUISANCES`),
    ``n_pot``, nor one starting ``eff_``, ``bkg_`` or ``mcstat_``."""
    rel: NonNegFloat
    """Relative size (log-normal width ln(1 + rel), as the reach's other normsys)."""
    origin: Annotated[str, Field(min_length=1)]
    """Where the number comes from (written to yields.json and the workspaces' docs)."""


class UncertaintiesConfig(Section):
    """The prediction's own uncertainties (docs/explanation/reach.md "Named uncertainties"):
    named nuisances in ``yields.json`` ``uncertainties`` and in the reach's workspaces."""

    enabled: bool = False
    """Write ``yields.json`` ``uncertainties`` and use them as named nuisances in the reach.
    Off by default: the sizes below are experiment-specific and must be stated (``false``:
    the yield's statistical error alone, as ``mcstat_<channel>``)."""
    r_factor_rel_err: NonNegFloat | None = None
    """Relative 1σ error of the like-sign normalisation R (``background.r_factor``); required
    with ``enabled`` (0 on purpose for an exactly known R)."""
    lambda_theta_err: float | None = None
    """1σ error of the decay anisotropy λ_θ (``unfold.decay_lambda_theta``) when ``yields.json``
    has no measured ``polarisation.lambda_theta_err``; used with ``unfold.lepton_acceptance``."""
    eta_mumu_rel_err: NonNegFloat | None = None
    """``background.remove_eta_mumu: rate``: relative 1σ error of the subtracted η → μμ peak
    (the PDG errors of BR(η → μμ)/BR(η → γμμ)); required there."""
    extra: list[ExtraNuisance] = Field(default_factory=list)
    kinematic_model: bool = False
    """The reach's ``kinematic_model`` nuisance: the acceptance's spread over the flow ensemble
    of ``reach.flow`` (``flow.ensemble`` ≥ 2 members, trained with seeds seed, seed+1, ...;
    with ``flow.bootstrap`` the spread of the ≥ 2 Poisson replicas, members ≥ 1);
    each member costs one more acceptance sampling per mass. The spread of k members is itself
    uncertain by 1/√(2(k − 1)): train ≥ 10 (±24%; the reach warns below,
    docs/validation/uncertainties-and-coverage.md). Off by default (the demo's ensemble costs a training
    per member)."""
    impact_masses: Annotated[int, Field(ge=0, le=100)] = 4
    """The reach's impact table (``reach.json`` ``impact``): at this many evenly spaced
    masses, s_up and ε_low/ε_high with each nuisance fixed at ±1σ (0: none)."""

    @field_validator("lambda_theta_err")
    @classmethod
    def _lambda_err(cls, v: float | None) -> float | None:
        if v is not None and not v >= 0:
            raise ValueError(f"the λ_θ error must be >= 0 (a 1σ width), not {v}")
        return v

    @model_validator(mode="after")
    def _unique(self) -> UncertaintiesConfig:
        if self.kinematic_model and not self.enabled:
            raise ValueError("kinematic_model: needs enabled: true (a nuisance of the reach)")
        seen: set[str] = set(BUILTIN_NUISANCES) | {"n_pot"}
        for i, x in enumerate(self.extra):
            if x.name in seen or x.name.startswith(("eff_", "bkg_", "mcstat_")):
                raise ValueError(
                    f"extra[{i}].name: nuisance {x.name!r} given twice (built-in names "
                    f"{list(BUILTIN_NUISANCES)}, n_pot, eff_*, bkg_*, mcstat_* are reserved)"
                )
            seen.add(x.name)
        return self


# --------------------------------------------------------------------------- top level
class AnalysisConfig(Section):
    """A whole analysis: one YAML file."""

    schema_version: Literal[1] = 1
    """Version of the config format: 1, the only one this gammastar reads (another value is
    an error, not a guess). Not the artifacts' ``meta.schema_version``."""
    name: str = "analysis"
    """The analysis's name, without ``/``: the title of the reach figures, the summary of
    ``gammastar run`` and the ``analysis`` row of ``report.html``."""
    output: str = "runs/analysis"
    """Run directory (relative paths resolve against the config file's directory)."""
    seed: Annotated[int, Field(ge=0, strict=True)] = 12345
    """Random seed of the run (an integer ≥ 0): the mock, the flow's training and hold-out
    split, the validation draws, the reach's and the events' samples derive their streams
    from it. A section's own seed (``flow.seed``, ``flow.holdout_seed``, …) or a command's
    ``--seed`` takes precedence."""
    beam: BeamConfig = Field(default_factory=BeamConfig)
    mock: MockConfig | None = None
    input: InputConfig = Field(default_factory=InputConfig)
    selection: SelectionConfig = Field(default_factory=SelectionConfig)
    background: BackgroundConfig = Field(default_factory=BackgroundConfig)
    unfold: UnfoldConfig = Field(default_factory=UnfoldConfig)
    yields: YieldsConfig = Field(default_factory=YieldsConfig)
    flow: FlowConfig = Field(default_factory=FlowConfig)
    validate_: ValidateConfig = Field(default_factory=ValidateConfig, alias="validate")
    detector: DetectorConfig = Field(default_factory=DetectorConfig)
    reach: ReachConfig = Field(default_factory=ReachConfig)
    events: EventsConfig = Field(default_factory=EventsConfig)
    mcp: McpConfig | None = None
    idm: IdmConfig | None = None

    uncertainties: UncertaintiesConfig = Field(default_factory=UncertaintiesConfig)

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    # Set by load_config: where the file was, for resolving relative paths.
    source: str | None = Field(default=None, exclude=True)

    @model_validator(mode="after")
    def _flavour_overrides(self) -> AnalysisConfig:
        """``per_flavour`` overrides name flavours of ``input.lepton`` and are valid sections."""
        flavours = self.input.flavours
        for name in FLAVOUR_SECTIONS:
            sec = getattr(self, name)
            for f in sec.per_flavour:
                if f not in flavours:
                    raise ValueError(
                        f"{name}.per_flavour.{f}: flavour {f!r} is not in input.lepton "
                        f"({', '.join(flavours)})"
                    )
                try:
                    _flavour_section(sec, f)
                except ValidationError as err:
                    e = err.errors()[0]
                    loc = ".".join(str(p) for p in e["loc"])
                    msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
                    raise ValueError(
                        f"{name}.per_flavour.{f}{'.' + loc if loc else ''}: "
                        + msg.removeprefix("Value error, ")
                    ) from None
        for f in self.beam.prescale:
            if f not in flavours:
                raise ValueError(
                    f"beam.prescale.{f}: flavour {f!r} is not in input.lepton "
                    f"({', '.join(flavours)})"
                )
        if len(flavours) > 1 and self.yields.compare_with is not None:
            raise ValueError(
                "yields.compare_with: this run holds both flavours (the universality check "
                "is built in); drop compare_with"
            )
        if self.unfold.polarisation_correction is not None and len(flavours) > 1:
            raise ValueError(
                "unfold.polarisation_correction: one simulation serves one flavour; not "
                "available for input.lepton: [mu, e] (run the flavours apart)"
            )
        if self.yields.resolution_migration is not None:
            if len(flavours) > 1:
                raise ValueError(
                    "yields.resolution_migration: one simulation serves one flavour; not "
                    "available for input.lepton: [mu, e] (run the flavours apart)"
                )
            if self.unfold.lepton_acceptance is None:
                raise ValueError(
                    "yields.resolution_migration: corrects the fiducial extrapolation, which "
                    "needs unfold.lepton_acceptance (the fiducial region)"
                )
        return self

    @model_validator(mode="after")
    def _cross_keys(self) -> AnalysisConfig:
        """Keys that depend on other sections' (:mod:`gammastar.config_checks`) and the input
        branches (against the mock's tree when the input is the mock): every mistake, one
        line each, before any stage runs."""
        flavours = self.input.flavours
        sels = (
            [_flavour_section(self.selection, f) for f in flavours]
            if len(flavours) > 1
            else [self.selection]
        )
        own = self.reach.yields == ReachConfig.model_fields["yields"].default
        problems = mass_range_problems(
            [(s.mass_min, s.mass_max) for s in sels], self.validate_, self.reach, own_yields=own
        )
        problems += [w for w in self.input_problems(stated_only=True) if w not in problems]
        if self.selection.pairs_url is not None:
            why = url_problem(self.selection.pairs_url, "selection.pairs_url", known_protocols())
            problems += [why] if why else []
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def input_problems(self, *, stated_only: bool = False) -> list[str]:
        """Why ``input.layout``/``input.branches`` of each flavour cannot be read: columns the
        layout lacks, and when the input is this run's mock, branches its ``events`` tree lacks
        (:func:`gammastar.io.mock_branch_problem`). ``stated_only``: not a default flavour
        missing from ``mock.leptons`` (a config that only generates); the pipeline checks it
        when it will select the mock."""
        files = self.input.files
        mock_input = self.mock is not None and f"${{output}}/{rundir.MOCK}" in (
            [files] if isinstance(files, str) else files
        )
        out = []
        flavours = self.input.flavours
        for f in flavours:
            inp = _flavour_section(self.input, f) if len(flavours) > 1 else self.input
            try:
                branch_map(inp.layout, inp.branches, f)
                why = None
                if mock_input and self.mock is not None:
                    why = mock_branch_problem(inp.layout, inp.branches, f, self.mock.leptons)
            except ConfigError as err:
                why = str(err)
            implicit = why is not None and why.startswith("input.lepton")
            if implicit and stated_only and "lepton" not in self.input.model_fields_set:
                continue
            if why and why not in out:
                out.append(why)
        return out

    @field_validator("name")
    @classmethod
    def _name_ok(cls, v: str) -> str:
        if not v or "/" in v:
            raise ValueError("must be a non-empty name without '/'")
        return v

    @property
    def base_dir(self) -> Path:
        """Directory that relative paths resolve against."""
        return Path(self.source).parent if self.source else Path.cwd()

    @property
    def output_dir(self) -> Path:
        """The run directory."""
        return self.resolve(self.output, substitute=False).resolve()

    def resolve_data(self, path: str | os.PathLike[str], key: str) -> Path:
        """Resolve a data file named in the config (:meth:`resolve`); a path of the
        defaults' form ``../data/NAME`` that does not exist there but names a file shipped
        with gammastar (``data/`` of the repository, or ``gammastar/_data`` of an installed
        wheel) resolves to that file, so the defaults work for a config anywhere; any other
        missing path is an error.

        Raises:
            ConfigError: the file is not found (naming ``key``).
        """
        given = Path(os.fspath(path))
        path = self.resolve(path)
        if path.exists():
            return path
        if given.parent == Path("../data"):  # the shipped default's form, nothing else
            here = Path(__file__).resolve()
            for cand in (here.parents[2] / "data" / given.name, here.parent / "_data" / given.name):
                if cand.exists():
                    return cand
        raise ConfigError(f"{self.source or '<config>'}: {key}: {path} not found")

    def resolve(self, path: str | os.PathLike[str], *, substitute: bool = True) -> Path:
        """Resolve a path from the config: ``${output}`` substituted, relative to the config file."""
        text = os.fspath(path)
        if substitute and "${output}" in text:
            text = text.replace("${output}", os.fspath(self.output_dir))
        p = Path(text).expanduser()
        return p if p.is_absolute() else (self.base_dir / p).resolve()

    def section_sha256(self, *sections: str) -> str:
        """Hash of the named sections (all when none named), for up-to-date checks."""
        data = self.model_dump(mode="json", by_alias=True)
        if sections:
            data = {s: data[s] for s in sections}
        return sha256_json(data)

    @property
    def sha256(self) -> str:
        """Hash of the whole config."""
        return self.section_sha256()


def _format_errors(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "<top level>"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        if not e["loc"] and e["type"] == "value_error":  # a whole-config rule names its keys
            lines += [f"{source}: {m}" for m in msg.removeprefix("Value error, ").splitlines()]
            continue
        lines.append(f"{source}: {key}: {msg}")
    return "\n".join(lines)


FLAVOUR_SECTIONS = ("input", "selection", "background", "unfold")
"""The sections with ``per_flavour`` overrides (``input.lepton: [mu, e]``)."""


def _flavour_section(sec: Section, flavour: str) -> Section:
    """``sec`` for one flavour: its values (without ``per_flavour``; for ``input`` the
    flavour as ``lepton`` and that lepton's mass) with ``sec.per_flavour[flavour]`` over them,
    validated."""
    data = sec.model_dump(mode="python", by_alias=True, exclude={"per_flavour"})
    if isinstance(sec, InputConfig):
        for k in ("leptons", "lepton_mass"):
            data.pop(k, None)
        data["lepton"] = flavour
    data.update(getattr(sec, "per_flavour", {}).get(flavour, {}))
    return type(sec).model_validate(data)


def flavour_config(cfg: AnalysisConfig, flavour: str) -> AnalysisConfig:
    """The single-flavour config of one flavour of a both-channels run (``input.lepton:
    [mu, e]``): ``input.lepton`` = ``flavour`` and every section of
    :data:`FLAVOUR_SECTIONS` with its ``per_flavour`` overrides. The selection and the
    per-flavour yields of a both-channels run are those of this config's single-flavour run.

    Raises:
        ConfigError: ``flavour`` is not one of the run's.

    Example:
        >>> c = config_from_dict({"input": {"lepton": ["mu", "e"]},
        ...                       "selection": {"per_flavour": {"e": {"mass_min": 0.01}}}})
        >>> e = flavour_config(c, "e")
        >>> e.input.lepton, e.input.leptons, e.selection.mass_min, c.selection.mass_min
        ('e', None, 0.01, 0.2113)
    """
    if flavour not in cfg.input.flavours:
        raise ConfigError(
            f"{cfg.source or '<config>'}: input.lepton: no flavour {flavour!r} in this run "
            f"({', '.join(cfg.input.flavours)})"
        )
    update = {name: _flavour_section(getattr(cfg, name), flavour) for name in FLAVOUR_SECTIONS}
    return cfg.model_copy(update=update)


def config_from_dict(data: dict[str, Any], source: str | None = None) -> AnalysisConfig:
    """Validate a config given as a dict (``source`` names it in errors and anchors paths)."""
    label = source or "<config>"
    if not isinstance(data, dict):
        raise ConfigError(f"{label}: the top level must be a mapping of sections")
    if "source" in data:
        raise ConfigError(f"{label}: source: unknown key")
    try:
        cfg = AnalysisConfig.model_validate({**data, "source": source})
    except ValidationError as err:
        raise ConfigError(_format_errors(err, label)) from None
    return cfg


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (plain
    ``safe_load`` keeps the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_config(path: str | os.PathLike[str]) -> AnalysisConfig:
    """Read and validate an analysis YAML file.

    Arguments:
        path: the YAML file.

    Returns:
        The validated :class:`AnalysisConfig`.

    Raises:
        ConfigError: the file is missing, not YAML, or has an unknown key or bad value;
            the message names the file and the key.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.yaml"
        >>> _ = p.write_text("name: demo\\nbeam: {n_pot: 1.0e13}\\n")
        >>> load_config(p).beam.n_pot
        10000000000000.0
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config ({err.strerror})") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text (byte {err.start}); a config is YAML") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a yaml.SafeLoader (safe_load + one check)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    if data is None:
        data = {}
    return config_from_dict(data, source=str(path.resolve()))
