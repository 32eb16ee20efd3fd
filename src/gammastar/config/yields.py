"""The corrections and the yields: ``unfold`` (efficiency, acceptance and polarisation
corrections), ``yields`` (the A′ and χχ̄ yields, the extrapolation and the migration
correction) and ``uncertainties`` (the prediction's named nuisances).
"""

from __future__ import annotations

import itertools
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from gammastar.config.base import NonNegFloat, PositiveFloat, Section


# --------------------------------------------------------------------------- unfold
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
    (:func:`gammastar.corrections.unfold.efficiency.load_efficiency_map`); ``None``: ε = 1.
    With ``mock:`` the default is the shipped NA60-like map the generator applies
    (``mock.efficiency_map``); a config without ``mock:`` that makes its own yields states it
    (``null`` on purpose for ε = 1)."""
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
    peak is measured whole (:func:`gammastar.corrections.polarisation.edges.peak_safe_edges`).
    An edge through a peak narrower than the bins selects the pairs' decay angles through the
    mass resolution and biases λ_θ there (docs/explanation/method.md); about 3.5 σ_m of the
    experiment at the peak. ``None``: edges as given or equal-count (a warning with a measured
    λ_θ when a peak lies in the mass range)."""
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


class BelowSeamFit(Section):
    """The extrapolation model below a both-channels run's seam, fitted to the
    full-phase-space channel's pairs inside that channel's own lepton acceptance
    (:func:`gammastar.yields.below_seam.fit_below_seam`): its T, ȳ and σ_y carry the A′
    kinematics of a reach without a flow there (every sample from the model), its error the
    reach's ``extrapolation`` nuisance there. A dielectron arm at small angles sees the
    forward rapidities a beam dump looks at, which the dimuon spectrometer's fit does not."""

    lepton_acceptance: LeptonAcceptanceConfig
    """The full-phase-space channel's single-lepton acceptance (as ``unfold.lepton_acceptance``;
    experiment-specific: every number given, e.g. the arm's angular window and a map of its
    energy threshold). Each pair's map weight 1/A(m, p_T) is replaced by 1/A(m, q) of this
    acceptance inside A ≥ ``min_acceptance``."""
    min_acceptance: Annotated[float, Field(gt=0, lt=1)] = 0.01
    """The fit's region: pairs whose per-pair acceptance is at least this."""
    decay_lambda_theta: Annotated[float, Field(ge=-1, le=1)]
    """λ_θ of the lepton decay angles (1 + λ_θ cos²θ*) in the per-pair acceptance: below 2m_μ
    the γ* come from P → γ l⁺l⁻ Dalitz decays, whose virtual photon is transverse, λ_θ = 1
    (Kroll and Wada, Phys. Rev. 98 (1955) 1355); the number is stated, not assumed."""
    above_seam: bool = False
    """Fit the arm's pairs above the seam too (``yields.json`` ``extrapolation.arm_above_seam``;
    the per-pair acceptance with the fiducial channel's λ_θ(m), measured there and carried to
    the arm's leptons, not ``decay_lambda_theta``). A reach without a flow then draws the A′ kinematics there from
    the arm's model, which sees the forward rapidities, normalised in the fiducial region F:
    N = Y_F 𝓔/f_F with the arm's 𝓔 and f_F, so the γ* backward of both windows, which
    neither sees, cancel (docs/explanation/method.md §9). The yields themselves stay Y_F/f_F
    of the fiducial fit."""


class GeneratorTemplate(Section):
    """A generator's γ* whose rapidity shape is one more form of the extrapolation model
    (``generator_template``, :mod:`gammastar.yields.extrapolation.template`): its dN/dy per
    mass bin over the Gaussian of its own mean and width, a factor on the model refitted to
    the data inside F; its f_F and N_sig join the ``extrapolation`` error beside the other
    forms. Generated at the data's beam energy and target, every γ* of the cocktail (no
    detector)."""

    files: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1)
    """ROOT files of the generator's γ* (relative to the config; ``${output}`` allowed)."""
    tree: Annotated[str, Field(min_length=1)]
    """The TTree or RNTuple holding them."""
    mass: Annotated[str, Field(min_length=1)]
    """Branch of the γ* mass (GeV)."""
    rapidity: Annotated[str, Field(min_length=1)]
    """Branch of the γ* lab rapidity."""
    weight: Annotated[str, Field(min_length=1)] | None = None
    """Branch of a per-γ* weight (``None``: all 1)."""
    label: Annotated[str, Field(min_length=1)]
    """The generator and its settings (recorded in ``yields.json``)."""


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
    extrapolation_falloff: ExternalValue | Literal["measured"] | None = None
    """The fall-off of the extrapolation model towards x_F → 1: its density × (1 − E/E_beam)^n
    (E = m_T cosh y, E_beam the beam's), ``{value, error, source}`` for n, or ``measured``: the
    n that measured forward meson spectra give
    (:data:`gammastar.yields.extrapolation.model.FALLOFF`). n is the mesons': below the η mass
    the γ*, from two-body Dalitz decays, fall with n + 1. The error enters the
    extrapolation's error as two model variations, n ∓ error. ``None``: no fall-off, a
    Gaussian rapidity cut only at the beam energy (the hardest tail: docs/explanation/physics.md)."""
    extrapolation_y_mean: Literal["beam_cm", "fitted", "auto"] = "beam_cm"
    """The rapidity centre ȳ of the extrapolation model: ``beam_cm`` fixes it at the
    beam–nucleon c.m. rapidity (from ``beam.energy``); ``fitted`` fits it to the fiducial pairs
    with the other parameters, its error in the sandwich covariance; ``auto`` fits it and keeps
    the fit where the data constrain ȳ better than the stated prior, i.e. its 1σ (the fit's
    with the external σ_y's) is below ``extrapolation_y_mean_error``, else fixes it at the c.m.
    rapidity with that error (:func:`gammastar.yields.extrapolation.fitting.fit_extrapolation`;
    the decision is recorded in ``yields.json`` ``extrapolation.y_mean_rule``;
    docs/explanation/method.md "The rapidity centre")."""
    extrapolation_y_mean_error: NonNegFloat = 0.0
    """The 1σ (units of rapidity) of ȳ when it is fixed at the c.m. rapidity
    (``extrapolation_y_mean``: ``beam_cm``, or ``auto`` where the data do not constrain it): the
    model refitted at ȳ = y_cm − this value (a nuclear target shifts the centre backward) enters
    the extrapolation's error as a model variation; with ``auto`` also the threshold of the
    rule. 0: ȳ exact. Target-specific: no default but 0 (e.g. 0.5 spans p + p at y_cm to
    PYTHIA Angantyr's p + Pb mesons, about 0.45 backward at 400 GeV)."""
    extrapolation_pt_power: float | Literal["fitted"] = 0.0
    """The m_T power a of the extrapolation model's p_T form m_T^a exp(−m_T/T)
    (:func:`gammastar.yields.extrapolation.fitting.fit_extrapolation` ``pt_power``): a number fixes it (0: the
    m_T-exponential; then the Boltzmann form a = 1 enters the error as a model variation);
    ``fitted``: one a per fit group, fitted with its T, its error from the data (the sandwich
    covariance; docs/explanation/method.md "The p_T form fitted")."""
    extrapolation_template: GeneratorTemplate | None = None
    """A generator's γ* whose rapidity shape enters the extrapolation's error as one more model
    form (:class:`GeneratorTemplate`). ``None``: none."""
    extrapolation_below_seam: BelowSeamFit | None = None
    """A both-channels run's model below the seam (:class:`BelowSeamFit`), fitted to the
    full-phase-space channel's pairs inside its lepton acceptance and written to ``yields.json``
    ``extrapolation.below_seam``. ``None``: a reach without a flow takes the analytic sampler's
    defaults below the seam (docs/explanation/physics.md §3.2), with no error for them."""
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
        if self.extrapolation_y_mean == "auto" and not self.extrapolation_y_mean_error > 0:
            raise ValueError(
                "extrapolation_y_mean: auto needs extrapolation_y_mean_error > 0 (the prior the "
                "fitted centre's error is compared with)"
            )
        a = self.extrapolation_pt_power
        if a != "fitted" and not (-2.0 < float(a) <= 5.0):
            raise ValueError(
                f"extrapolation_pt_power must be 'fitted' or a number in (-2, 5] (m_T^a "
                f"exp(-m_T/T) is normalisable for a > -2; 5 the fit's bound), not {a}"
            )
        return self


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
