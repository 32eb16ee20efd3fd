"""The reaches: ``reach`` (the A′ exclusion in (m_A′, ε), its observed events, published
bounds and the facility's target), ``mcp`` (the millicharged-particle reach) and ``idm``
(the semi-visible dark photon).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from gammastar.config.base import NonNegFloat, PositiveFloat, Section, _registered, omit_unset
from gammastar.config_checks import reach_missing
from gammastar.core import rundir

# --------------------------------------------------------------------------- reach
StatsMethod = Literal["auto", "exact", "asymptotic", "toys"]
"""``reach.method``: ``auto`` or a key of ``gammastar.reach.stats.METHODS`` (named here, not
imported: the config sits below the reach; ``tests/test_stats.py`` keeps the two equal)."""

Production = Literal["data_driven", "standard_recipe"]
"""``reach.production``: a key of ``gammastar.source.modes.PRODUCTIONS`` (named here, not
imported: the config sits below the source; ``tests/test_recipe_source.py`` keeps the two
equal)."""

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
    """A published bound drawn on the reach plot (``gammastar.formats.bounds``), read as its
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
    a κ) on purpose where they do not apply; a config without ``mock:`` that has a ``reach:``
    section is refused on load naming every one missing, and ``gammastar reach`` names every
    one missing before it writes anything (``gammastar.reach.stage.check_config``).
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
    production: Production = "data_driven"
    """Where the A′ yield and kinematics come from (a key of
    ``gammastar.source.modes.PRODUCTIONS``): ``data_driven`` (the yields and the flow or the
    fitted model above) or ``standard_recipe`` (the generator-level recipe of
    docs/explanation/standard-recipe.md: meson decays P → γA′, V → PA′, A′–V mixing and
    proton bremsstrahlung, with the meson spectra of a mock file, never the data's); the
    recipe's reach is written beside the data-driven one, in the run directory's
    ``standard_recipe/``."""
    recipe_mock: list[str] | None = None
    """With ``production: standard_recipe``: the mock ROOT files (``gammastar generate``) whose
    ``meta`` gives the mesons per POT and their spectra; default the files the yields'
    ``standard_recipe`` block names."""
    samples: Annotated[int, Field(gt=0)] = 20_000
    """A′ kinematic samples per mass for the acceptance."""
    workers: Annotated[int, Field(gt=0)] | Literal["auto"] = "auto"
    """Processes computing the mass points' signals (samples, acceptance, N_sig and their
    errors), the reach's own among them, each mass seeded by ``seed`` and its index, so that
    the results do not depend on it; the ``exact`` limits stay in the reach's process
    (``toys`` and ``asymptotic`` go with their masses). 1: one process; ``auto``: the masses in
    this process until the last one's time shows that a worker would repay its start (a few
    seconds of imports), then as many processes as repay it, within the CPUs it may use (its
    CPU affinity) (``gammastar reach --workers``)."""
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
    (``gammastar.formats.bounds``: HEPData tables (files or ``hepdata:`` references), CSV, DarkCast
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

    @field_validator("workers", mode="before")
    @classmethod
    def _workers_form(cls, v: Any) -> Any:
        # one line instead of pydantic's one per union member
        if v != "auto" and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
            raise ValueError(f"a number of processes (integer >= 1) or 'auto'; got {v!r}")
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
        return omit_unset(handler(self), "target")

    def missing(self) -> list[tuple[str, str]]:
        """The statistics inputs a reach needs that are not given: ``(key, what it is and
        what to write)`` (:func:`gammastar.config_checks.reach_missing`)."""
        return reach_missing(self.model_dump())


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
    """A meson source of χχ̄ outside the data (``gammastar.darksector.mcp``)."""

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
    single-flavour run (:func:`gammastar.darksector.mcp.data_driven_yields`)."""


McpMeson = Literal["pi0", "eta", "eta_prime", "rho", "omega", "phi", "jpsi"]


class McpConfig(Section):
    """Millicharged-particle detection reach in (m_χ, Q) (``gammastar.darksector.mcp``)."""

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
    (:func:`gammastar.darksector.mcp.mcp_reach`); required (0 on purpose for an exact N_POT)."""
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
    channels: list[Literal["ee", "mumu"]] = Field(
        default_factory=lambda: list[Literal["ee", "mumu"]](["ee", "mumu"])
    )
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
            assert self.theta is not None  # required with model: i2dm (checked on load)
            return darksector.I2DM(**kw, theta=self.theta)
        return darksector.IDM(**kw)
