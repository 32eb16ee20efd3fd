"""The analysis configuration: a YAML file validated by typed models.

One model per section, one section per workflow stage. Unknown keys are errors;
every error names the key and the file. Relative paths in a config are resolved
against the directory of the config file; ``${output}`` in an input path stands
for the run directory.

This module offers the whole config (:class:`AnalysisConfig`), its loaders
(:func:`load_config`, :func:`config_from_dict`) and :func:`flavour_config`; the section
classes live in the submodules by stage (``base``, ``selection``, ``mock``, ``yields``,
``flow``, ``detector``, ``reach``). Each stage's section class belongs to that stage's
owner: extend it there.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import (
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from gammastar.config.base import Section, omit_unset
from gammastar.config.detector import DetectorConfig, EventsConfig
from gammastar.config.flow import FlowConfig, ValidateConfig
from gammastar.config.mock import MockConfig
from gammastar.config.reach import IdmConfig, McpConfig, ReachConfig
from gammastar.config.selection import (
    BackgroundConfig,
    BeamConfig,
    ExecutionConfig,
    InputConfig,
    SelectionConfig,
)
from gammastar.config.yields import UncertaintiesConfig, UnfoldConfig, YieldsConfig
from gammastar.config_checks import (
    ASSUMED_KEYS,
    assumed_line,
    experiment_problems,
    mass_range_problems,
    mock_only_problems,
)
from gammastar.core import rundir
from gammastar.core.artifacts import sha256_json
from gammastar.core.urls import known_protocols, url_problem
from gammastar.errors import ConfigError
from gammastar.io import branch_map, mock_branch_problem


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
    execution: ExecutionConfig | None = None
    """Where the selection runs (``None``: where the command's options say)."""
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

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return omit_unset(handler(self), "execution")

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
            for cand in (d / given.name for d in shipped_data_dirs()):
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

    def assumed(self) -> dict[str, Any]:
        """The experiment's selection choices this config leaves to the mock's values
        (:data:`gammastar.config_checks.ASSUMED_KEYS` not stated, for every flavour where
        ``per_flavour`` overrides exist): ``{"section.key": value}``; empty with ``mock:``,
        whose values they are. Printed at the top of a run (:meth:`assumed_lines`) and
        recorded in ``select.json`` ``meta.assumed``.

        Example:
            >>> config_from_dict({"mock": {}}).assumed()
            {}
        """
        if self.mock is not None:
            return {}
        out = {}
        for sec, name in ASSUMED_KEYS:
            section = getattr(self, sec)
            per = getattr(section, "per_flavour", {})
            flavours = self.input.flavours
            stated = name in section.model_fields_set or (
                len(flavours) > 1 and all(name in per.get(f, {}) for f in flavours)
            )
            if not stated:
                out[f"{sec}.{name}"] = getattr(section, name)
        return out

    def assumed_lines(self) -> list[str]:
        """``assumed: key = value (the mock's: ...)``, one line per :meth:`assumed` key."""
        return [assumed_line(k, v) for k, v in self.assumed().items()]


def shipped_data_dirs() -> tuple[Path, Path]:
    """Where the files shipped with gammastar for the mock are: ``data/`` of the repository
    and ``gammastar/_data`` of an installed wheel."""
    package = Path(__file__).resolve().parents[1]  # gammastar/ (this is config/__init__)
    return package.parents[1] / "data", package / "_data"


def _shipped(base: Path) -> Callable[[str], str | None]:
    """``value → name`` of the shipped file (:func:`shipped_data_dirs`) a config value names,
    resolved against ``base`` as the config resolves paths (the ``../data/NAME`` form too,
    which :meth:`AnalysisConfig.resolve_data` finds there), else ``None``."""
    dirs = [d.resolve() for d in shipped_data_dirs() if d.is_dir()]
    names = {p.name for d in dirs for p in d.iterdir() if p.is_file()}

    def shipped(value: str) -> str | None:
        if "://" in value or "${" in value or not value.strip():
            return None
        for text in dict.fromkeys((value, value.rsplit(":", 1)[0])):  # "path:key" map specs
            given = Path(text).expanduser()
            if given.parent == Path("../data") and given.name in names:
                return f"data/{given.name}"
            try:
                path = (given if given.is_absolute() else base / given).resolve()
            except (OSError, RuntimeError):
                continue
            if path.parent in dirs and path.is_file():
                return f"data/{path.name}"
        return None

    return shipped


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

_S = TypeVar("_S", bound=Section)


def _flavour_section(sec: _S, flavour: str) -> _S:
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
        >>> c = config_from_dict({"mock": {"leptons": ["mu", "e"]},
        ...                       "input": {"lepton": ["mu", "e"]},
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


def config_from_dict(
    data: dict[str, Any], source: str | None = None, *, reach: bool | None = False
) -> AnalysisConfig:
    """Validate a config given as a dict (``source`` names it in errors and anchors paths;
    ``reach``: the reach will run, its statistics inputs are checked too, ``None``: when the
    config has a ``reach:`` section).

    Raises:
        ConfigError: every wrong key and, outside the mock, every experiment key left
            unstated (:func:`gammastar.config_checks.experiment_problems`), one line each.
    """
    label = source or "<config>"
    if not isinstance(data, dict):
        raise ConfigError(f"{label}: the top level must be a mapping of sections")
    if "source" in data:
        raise ConfigError(f"{label}: source: unknown key")
    # the experiment's keys without a default (outside the mock) and the reach's missing
    # inputs, read from the mapping as written: listed with every wrong key, in one message
    # and, outside the mock, every key that points at the mock's own files or settings
    base = Path(source).parent if source else Path.cwd()
    problems = experiment_problems(data, reach=reach) + mock_only_problems(data, _shipped(base))
    missing = [f"{label}: {line}" for line in problems]
    try:
        cfg = AnalysisConfig.model_validate({**data, "source": source})
    except ValidationError as err:
        wrong = _format_errors(err, label).splitlines()
        raise ConfigError("\n".join(wrong + [m for m in missing if m not in wrong])) from None
    if missing:
        raise ConfigError("\n".join(missing))
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


def load_config(path: str | os.PathLike[str], *, reach: bool | None = False) -> AnalysisConfig:
    """Read and validate an analysis YAML file.

    Arguments:
        path: the YAML file.
        reach: the reach will run: its statistics inputs are checked too (``None``: when the
            config has a ``reach:`` section), in the same message as every other mistake.

    Returns:
        The validated :class:`AnalysisConfig`.

    Raises:
        ConfigError: the file is missing, not YAML, or has unknown keys, bad values or
            (outside the mock) experiment keys left unstated; one line per key, naming the
            file and the key.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "a.yaml"
        >>> _ = p.write_text("name: demo\\nmock: {}\\nbeam: {n_pot: 1.0e13}\\n")
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
    return config_from_dict(data, source=str(path.resolve()), reach=reach)
