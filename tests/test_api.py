"""The Python API mirrors the CLI: stage modules are callable like their commands."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import sys
from pathlib import Path

import pytest
from _experiment import stated_yaml

import gammastar
from gammastar.core.results import StageResult
from gammastar.errors import ConfigError

PUBLIC = [
    "AnalysisConfig",
    "ConfigError",
    "GammastarError",
    "InputError",
    "OutputExistsError",
    "__version__",
    "build_report",
    "compute_yields",
    "generate",
    "load_config",
    "run",
    "run_reach",
    "select",
    "train",
    "validate",
    "write_events",
]


def test_public_api_is_pinned() -> None:
    """``gammastar.__all__`` is the list above: a name added or removed is a decision."""
    assert sorted(gammastar.__all__) == PUBLIC
    for name in PUBLIC:
        assert hasattr(gammastar, name), name


@pytest.mark.parametrize(
    ("name", "module", "function"),
    [
        ("select", "gammastar.selection.stage", "select"),
        ("compute_yields", "gammastar.yields.stage", "compute_yields"),
        ("validate", "gammastar.flow.validate", "validate"),
        ("run_reach", "gammastar.reach.stage", "run_reach"),
        ("write_events", "gammastar.events.stage", "run_events"),
        ("build_report", "gammastar.report", "build_report"),
        ("train", "gammastar.flow.stage", "train"),
    ],
)
def test_stage_function_calls_its_stage(
    name: str, module: str, function: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Each API function loads a YAML path into a config and calls its stage's function with
    the caller's arguments (the others at the stage's defaults)."""
    seen = {}

    def fake(config, *args, **kwargs):
        seen["config"], seen["args"], seen["kwargs"] = config, args, kwargs
        return "ran"

    stage = inspect.signature(getattr(importlib.import_module(module), function))
    monkeypatch.setattr(importlib.import_module(module), function, fake)
    cfg_file = tmp_path / "a.yaml"
    cfg_file.write_text(stated_yaml("name: api\n"))
    # write_events: its request (any object here) and (m, ε); every other stage takes force
    args, kwargs = (("request",), {"mass": 0.5, "eps": 1e-3}) if name == "write_events" else (
        (), {"force": True}
    )
    assert getattr(gammastar, name)(cfg_file, *args, **kwargs) == "ran"
    assert seen["config"].name == "api"
    assert seen["args"][: len(args)] == args
    assert seen["kwargs"].items() >= kwargs.items()
    for key, value in seen["kwargs"].items():  # the rest: the stage's own defaults
        if key not in kwargs:
            assert value == stage.parameters[key].default, key


STAGE_FUNCTIONS = {
    "select": ("gammastar.selection.stage", "select"),
    "compute_yields": ("gammastar.yields.stage", "compute_yields"),
    "train": ("gammastar.flow.stage", "train"),
    "validate": ("gammastar.flow.validate", "validate"),
    "run_reach": ("gammastar.reach.stage", "run_reach"),
    "write_events": ("gammastar.events.stage", "run_events"),
    "build_report": ("gammastar.report", "build_report"),
    "generate": ("gammastar.mock.generate", "generate_file"),
}
"""The stage behind each API function of one stage (``run`` is all of them in order: it
returns one ``StageReport`` per stage, each holding that stage's result)."""


def test_every_stage_function_is_covered() -> None:
    """Every function of ``gammastar.__all__`` is a stage here, or the pipeline (``run``)."""
    functions = {n for n in gammastar.__all__ if inspect.isfunction(getattr(gammastar, n))}
    functions -= {"load_config"}
    assert functions == {*STAGE_FUNCTIONS, "run"}


@pytest.mark.parametrize("name", sorted(STAGE_FUNCTIONS))
def test_stage_returns_a_frozen_stage_result(name: str) -> None:
    """Each stage returns a typed result: a frozen dataclass derived from ``StageResult``
    (``path``, ``document``; path-like), as its signature says."""
    module, function = STAGE_FUNCTIONS[name]
    func = getattr(importlib.import_module(module), function)
    annotation = inspect.signature(func).return_annotation
    # the modules use postponed annotations: the name is resolved in the defining module
    if isinstance(annotation, str):
        annotation = getattr(sys.modules[func.__module__], annotation)
    cls = annotation
    assert inspect.isclass(cls), (name, cls)
    assert issubclass(cls, StageResult), (name, cls)
    assert dataclasses.is_dataclass(cls), cls
    assert cls.__dataclass_params__.frozen, cls
    names = [f.name for f in dataclasses.fields(cls)]
    assert names[:2] == ["path", "document"], names
    result = _instance(cls, Path("run") / "x.json")
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.path = Path("elsewhere")  # type: ignore[misc]
    assert Path(result) == Path("run") / "x.json"  # path-like: goes where the file would


@pytest.mark.parametrize("name", sorted(STAGE_FUNCTIONS))
def test_stage_function_has_its_stages_signature(name: str) -> None:
    """Each API function takes the stage function's own arguments (names, kinds, defaults and
    annotations as written), the config also as a YAML path, and returns the stage's result
    type: its signature is the stage's, typed (``generate``'s output path is optional: the
    run directory's ``mock.root`` by default)."""
    module, function = STAGE_FUNCTIONS[name]
    stage = inspect.signature(getattr(importlib.import_module(module), function))
    api = inspect.signature(getattr(gammastar, name))
    assert api.return_annotation == stage.return_annotation
    first, *rest = api.parameters.values()
    assert first.name == "config"
    assert first.annotation == "AnalysisConfig | str | os.PathLike[str]"
    skip = 2 if name == "generate" else 1
    assert rest[skip - 1 :] == list(stage.parameters.values())[skip:]


def _instance(cls: type, path: Path) -> StageResult:
    """An instance of ``cls`` with ``path``, ``None`` for the other required fields (enough to
    check that the result cannot be changed and is path-like)."""
    required = {
        f.name: None
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    return cls(**{**required, "path": path})


def test_top_level_functions_validate_their_config(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("flow: {epochz: 3}\n")
    for func in (gammastar.run, gammastar.generate, gammastar.train, gammastar.select):
        with pytest.raises(ConfigError, match=r"flow\.epochz: unknown key"):
            func(bad)


def test_unknown_attribute() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = gammastar.nope
