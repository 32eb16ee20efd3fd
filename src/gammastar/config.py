"""The analysis configuration: a YAML file validated by typed models.

One model per section, one section per workflow stage. Unknown keys are errors;
every error names the key and the file. Relative paths in a config are resolved
against the directory of the config file; ``${output}`` in an input path stands
for the run directory.

Each stage's section class belongs to that stage's owner: extend it there.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gammastar.artifacts import sha256_json
from gammastar.errors import ConfigError

PositiveFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
Probability = Annotated[float, Field(ge=0, le=1)]


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


# --------------------------------------------------------------------------- beam
class BeamConfig(Section):
    """Beam and target (physics.md §2)."""

    energy: PositiveFloat = 400.0
    """Beam proton energy in GeV."""
    n_pot: PositiveFloat | Literal["from_input"] = "from_input"
    """Protons on target; ``from_input`` takes it from the mock file's metadata."""
    n_pot_rel_uncertainty: NonNegFloat = 0.2
    """Relative (log-normal) uncertainty on N_POT, used in the likelihoods."""
    target: str = "Pb"
    interaction_lengths: PositiveFloat = 0.01
    """Target thickness L in nuclear interaction lengths."""
    sigma_inel_mb: PositiveFloat = 1720.0
    """Inelastic p–target cross-section in mb (Pb: 1.72 b from λ_I = 199.6 g/cm²)."""


# --------------------------------------------------------------------------- mock
class MockConfig(Section):
    """The NA60-like mock-data generator (physics.md §3). Owned by ``gammastar.mock``."""

    events: Annotated[int, Field(gt=0)] = 200_000
    """Number of generated dimuon sources (cocktail decays and combinatorial pairs)."""
    chunk_size: Annotated[int, Field(gt=0)] = 1_000_000
    efficiency_map: str | None = "../data/efficiency_na60_like.root"
    """ε(m, pT) map (ROOT file with one TH2, or ``None`` for ε = 1)."""
    backend: Literal["parametric", "pythia"] = "parametric"


# --------------------------------------------------------------------------- input
class InputConfig(Section):
    """Which ntuples to read and how their branches map onto leptons."""

    files: list[str] | dict[str, Any] = Field(default_factory=lambda: ["${output}/mock.root"])
    """Paths or globs, or a coffea-style fileset ``{dataset: {files: {path: tree}}}``."""
    tree: str = "events"
    layout: Literal["jagged_cartesian", "jagged_ptetaphi", "flat_pairs"] = "jagged_cartesian"
    branches: dict[str, str] = Field(default_factory=dict)
    """Map of the package's column names to the file's branch names (defaults per layout)."""
    step_size: Annotated[int, Field(gt=0)] = 500_000
    lepton_mass: PositiveFloat = 0.1056583755


# --------------------------------------------------------------------------- selection
class SelectionConfig(Section):
    """Lepton and pair cuts (physics.md §2, §4)."""

    lepton_min_energy: NonNegFloat = 3.0
    lepton_theta_min: NonNegFloat = 0.0
    lepton_theta_max: PositiveFloat = 3.1416
    mass_min: NonNegFloat = 0.2113
    mass_max: PositiveFloat = 1.1
    pair_pt_max: PositiveFloat | None = None
    rapidity_min: float | None = None
    rapidity_max: float | None = None


class BackgroundConfig(Section):
    """Same-sign subtraction (physics.md §4)."""

    r_factor: PositiveFloat = 1.0
    remove_eta_mumu: Literal["none", "truth", "rate"] = "truth"


class UnfoldConfig(Section):
    """Acceptance × efficiency unfolding (physics.md §4)."""

    efficiency_map: str | None = "../data/efficiency_na60_like.root"
    bayesian_iterations: Annotated[int, Field(ge=0)] = 0
    """Iterative Bayesian resolution unfolding; 0 switches it off (the paper's default)."""
    mass_bins: Annotated[int, Field(gt=0)] = 89
    """Number of mass bins between ``selection.mass_min`` and ``selection.mass_max``."""


# --------------------------------------------------------------------------- yields
class YieldsConfig(Section):
    """A′ and χχ̄ yields per POT (paper Eqs. 6, 8)."""

    mass_bin_width: PositiveFloat = 0.03
    mcp_masses: list[PositiveFloat] = Field(
        default_factory=lambda: [0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5]
    )


# --------------------------------------------------------------------------- flow
class FlowConfig(Section):
    """Conditional normalizing flow p(qT, E | m) (paper App. A, physics.md §5)."""

    transforms: Annotated[int, Field(gt=0)] = 8
    bins: Annotated[int, Field(gt=0)] = 6
    hidden_features: list[Annotated[int, Field(gt=0)]] = Field(default_factory=lambda: [32, 32])
    epochs: Annotated[int, Field(gt=0)] = 500
    points_per_epoch: Annotated[int, Field(gt=0)] = 50_000
    batch_size: Annotated[int, Field(gt=0)] = 1024
    learning_rate: PositiveFloat = 1e-3
    weight_decay: NonNegFloat = 1e-5
    validation_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.2
    patience: Annotated[int, Field(gt=0)] = 50


class ValidateConfig(Section):
    """k-NN KL validation of the flow (physics.md §6)."""

    k: Annotated[int, Field(gt=0)] = 2
    masses: list[PositiveFloat] = Field(default_factory=lambda: [0.3, 0.5, 0.7, 0.9, 1.05])
    window: PositiveFloat = 0.03
    repeats: Annotated[int, Field(gt=1)] = 50


# --------------------------------------------------------------------------- detector
class DetectorConfig(Section):
    """Long-lived-particle detector geometry (paper App. B, physics.md §9)."""

    l1: NonNegFloat = 5.0
    """Start of the decay volume (or the shield length) in m."""
    l2: PositiveFloat | None = None
    """End of the decay volume in m; ``None`` means no end (paper's mock detector)."""
    theta_min: NonNegFloat = 0.035
    theta_max: PositiveFloat = 0.120
    efficiency: Probability = 1.0

    @model_validator(mode="after")
    def _check_order(self) -> DetectorConfig:
        if self.l2 is not None and self.l2 <= self.l1:
            raise ValueError(f"l2 ({self.l2}) must be larger than l1 ({self.l1})")
        if self.theta_max <= self.theta_min:
            raise ValueError(
                f"theta_max ({self.theta_max}) must be larger than theta_min ({self.theta_min})"
            )
        return self


# --------------------------------------------------------------------------- reach
class ReachConfig(Section):
    """Expected/observed CLs exclusion in the (m_A′, ε) plane (physics.md §10)."""

    cl: Annotated[float, Field(gt=0, lt=1)] = 0.9
    channels: list[Literal["ee", "mumu"]] = Field(default_factory=lambda: ["mumu"])
    mass_points: Annotated[int, Field(gt=0)] = 60
    eps_points: Annotated[int, Field(gt=0)] = 60
    eps_min: PositiveFloat = 1e-8
    eps_max: PositiveFloat = 1e-3
    background: dict[str, NonNegFloat] = Field(
        default_factory=lambda: {"mumu": 0.016, "ee": 0.0094}
    )
    observed: dict[str, Annotated[int, Field(ge=0)]] | None = None


# --------------------------------------------------------------------------- top level
class AnalysisConfig(Section):
    """A whole analysis: one YAML file."""

    schema_version: Literal[1] = 1
    name: str = "analysis"
    output: str = "runs/analysis"
    """Run directory (relative paths resolve against the config file's directory)."""
    seed: Annotated[int, Field(ge=0)] = 12345
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

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    # Set by load_config: where the file was, for resolving relative paths.
    source: str | None = Field(default=None, exclude=True)

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
        lines.append(f"{source}: {key}: {msg}")
    return "\n".join(lines)


def config_from_dict(data: dict[str, Any], source: str | None = None) -> AnalysisConfig:
    """Validate a config given as a dict (``source`` names it in errors and anchors paths)."""
    label = source or "<config>"
    if not isinstance(data, dict):
        raise ConfigError(f"{label}: the top level must be a mapping of sections")
    try:
        cfg = AnalysisConfig.model_validate({**data, "source": source})
    except ValidationError as err:
        raise ConfigError(_format_errors(err, label)) from None
    return cfg


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
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    if data is None:
        data = {}
    return config_from_dict(data, source=str(path.resolve()))
