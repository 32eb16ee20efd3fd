"""The Python API mirrors the CLI: stage modules are callable like their commands."""

from __future__ import annotations

from pathlib import Path

import pytest

import gammastar
from gammastar.errors import ConfigError


@pytest.mark.parametrize(
    ("name", "function"),
    [
        ("select", "select"),
        ("yields", "compute_yields"),
        ("validate", "validate"),
        ("reach", "run_reach"),
        ("report", "build_report"),
    ],
)
def test_stage_module_calls_its_function(
    name: str, function: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    module = getattr(gammastar, name)
    seen = {}

    def fake(config, *args, **kwargs):
        seen["config"], seen["kwargs"] = config, kwargs
        return "ran"

    monkeypatch.setattr(module, function, fake)
    cfg_file = tmp_path / "a.yaml"
    cfg_file.write_text("name: api\n")
    assert module(cfg_file, force=True) == "ran"  # a path is loaded into a config
    assert seen["config"].name == "api"
    assert seen["kwargs"] == {"force": True}


def test_top_level_functions_validate_their_config(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("flow: {epochz: 3}\n")
    for func in (gammastar.run, gammastar.generate, gammastar.train):
        with pytest.raises(ConfigError, match=r"flow\.epochz: unknown key"):
            func(bad)


def test_unknown_attribute() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = gammastar.nope
