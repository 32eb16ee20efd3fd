"""The Python API mirrors the CLI: stage modules are callable like their commands."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import gammastar
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
        ("train", "gammastar.flow", "train"),
    ],
)
def test_stage_function_calls_its_stage(
    name: str, module: str, function: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Each API function loads a YAML path into a config and calls its stage's function."""
    seen = {}

    def fake(config, *args, **kwargs):
        seen["config"], seen["kwargs"] = config, kwargs
        return "ran"

    monkeypatch.setattr(importlib.import_module(module), function, fake)
    cfg_file = tmp_path / "a.yaml"
    cfg_file.write_text("name: api\n")
    assert getattr(gammastar, name)(cfg_file, force=True) == "ran"
    assert seen["config"].name == "api"
    assert seen["kwargs"] == {"force": True}


def test_top_level_functions_validate_their_config(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("flow: {epochz: 3}\n")
    for func in (gammastar.run, gammastar.generate, gammastar.train, gammastar.select):
        with pytest.raises(ConfigError, match=r"flow\.epochz: unknown key"):
            func(bad)


def test_unknown_attribute() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = gammastar.nope
