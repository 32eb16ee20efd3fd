"""The data and its selection: ``beam`` (the data's beam and target, the yields'
normalisation), ``input`` (the ntuples and their branches), ``selection`` (the lepton and
pair cuts), ``background`` (the like-sign subtraction) and ``execution`` (where the selection
runs: a batch system's Dask cluster, :data:`JOBQUEUE_KINDS`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from gammastar.config.base import NonNegFloat, PositiveFloat, Section, omit_unset
from gammastar.core import rundir
from gammastar.io import LAYOUTS
from gammastar.physics.constants import M_MU


# --------------------------------------------------------------------------- beam
class BeamConfig(Section):
    """Beam and target of the data (docs/explanation/physics.md §2): the yields per POT are
    normalised to them.

    The facility of a reach (its N_POT, target thickness and N_POT uncertainty) is described
    in ``reach``.
    """

    energy: PositiveFloat = 400.0
    """Beam proton energy in GeV. The default is the mock's (with ``mock:`` only): a config
    without ``mock:`` that makes its own yields states it (``gammastar.config_checks``)."""
    n_pot: PositiveFloat | Literal["from_input"] = "from_input"
    """Protons on target; ``from_input`` takes it from the mock file's metadata (stated
    without ``mock:``: refused unless ``input.mock_files``)."""
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
    protons interacts (``gammastar.physics.target``). The default is the mock's (with
    ``mock:`` only): a config without ``mock:`` that makes its own yields states it."""
    sigma_inel_mb: PositiveFloat = 1720.0
    """Inelastic p–target cross-section in mb (Pb: 1.72 b from λ_I = 199.6 g/cm²)."""
    target_mass_number: PositiveFloat | None = None
    """Mass number A of the data's target material (Pb: 207.2), for the A-dependence of the
    yield carried to a facility's nucleus (``reach.target``, which needs it and an explicit
    ``sigma_inel_mb``); ``None``: not stated."""

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return omit_unset(handler(self), "target_mass_number")

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: Any) -> Any:
        if isinstance(data, dict) and "n_pot_rel_uncertainty" in data:
            raise ValueError(
                "n_pot_rel_uncertainty moved to reach.n_pot_rel_uncertainty (the N_POT "
                "uncertainty of the reach's likelihood)"
            )
        return data


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
    """Entries per chunk (every executor reads the same chunks): memory is bounded by it."""
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
    mock_files: bool | None = None
    """``true``: the input files are the mock's (made by ``gammastar generate``) though the
    config has no ``mock:``; the mock's efficiency map, truth tag (``remove_eta_mumu: truth``,
    the ``truth_channel`` and ``*_parent`` branches) and ``beam.n_pot: from_input`` are then
    allowed, which a config without ``mock:`` is otherwise refused
    (:func:`gammastar.config_checks.mock_only_problems`). ``None``: not stated (false)."""

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return omit_unset(handler(self), "mock_files")

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
        # the list's type spelt out: mypy reads a bare literal as list[str] here
        default_factory=lambda: list[Literal["os", "pp", "mm"]](["os", "pp", "mm"])
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
    """η → μμ removal: ``truth`` drops truth-tagged pairs (mock data; stated without
    ``mock:``: refused unless ``input.mock_files``), ``rate`` subtracts the peak predicted
    from the η → γμμ yield, ``none`` keeps it."""
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


# --------------------------------------------------------------------------- execution
JOBQUEUE_KINDS = {
    "htcondor": "HTCondorCluster",
    "slurm": "SLURMCluster",
    "pbs": "PBSCluster",
    "sge": "SGECluster",
    "lsf": "LSFCluster",
}
"""``kind`` of a ``dask-jobqueue`` cluster (``execution.jobqueue``, a ``--jobqueue`` file) → its
``dask_jobqueue`` cluster class."""


class JobqueueConfig(Section):
    """A ``dask-jobqueue`` cluster (HTCondor, SLURM, ...) for ``gammastar select``: ``kind`` and
    the keyword arguments of its ``dask_jobqueue`` class (``cores``, ``memory``, ``disk``,
    ``job_extra_directives``, ...; checked against that class when the cluster is made), the
    form of a ``--jobqueue`` file (docs/howto/cluster.md)."""

    model_config = ConfigDict(
        extra="allow", frozen=True, validate_default=True, allow_inf_nan=False
    )

    kind: Literal[tuple(JOBQUEUE_KINDS)]  # type: ignore[valid-type]
    """The batch system: a key of :data:`JOBQUEUE_KINDS` (``htcondor``, ``slurm``, ``pbs``,
    ``sge``, ``lsf``)."""

    def options(self) -> dict[str, Any]:
        """``kind`` and the cluster class's keyword arguments, as a ``--jobqueue`` file holds
        them."""
        return {"kind": self.kind, **(self.model_extra or {})}


class ExecutionConfig(Section):
    """Where ``gammastar select`` runs its chunks; the command's options win over it
    (``--executor``, ``--scheduler``, ``--gateway``, ``--jobqueue``). Not part of any stage's
    hash: the results do not depend on where they were computed."""

    jobqueue: JobqueueConfig | None = None
    """A ``dask-jobqueue`` cluster of ``--workers`` workers (closed after) for the selection on
    Dask: ``gammastar select`` without ``--executor`` runs on it; a ``--jobqueue FILE``
    replaces it, ``--scheduler`` or ``--gateway`` name another cluster, ``--executor
    iterative`` or ``futures`` runs here. ``None``: a local Dask cluster."""
