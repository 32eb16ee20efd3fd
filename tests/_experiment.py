"""Test configs without ``mock:`` state the experiment's keys, which have no default outside
the mock (:func:`gammastar.config_checks.experiment_problems`): :func:`stated` writes the ones
a config leaves out with the values the mock's sections take (the NA60-like beam, target,
pair efficiency and the paper's detector), the values these configs were tested with.

The refusal itself is tested on configs that do not go through this helper
(tests/test_config_checks.py, tests/test_own_data.py).
"""

from __future__ import annotations

from typing import Any

import yaml

from gammastar.config import AnalysisConfig, config_from_dict
from gammastar.config_checks import experiment_problems


def mock_value(key: str) -> Any:
    """The value ``section.key`` takes in a config with ``mock:`` (its field's default)."""
    section, name = key.split(".")
    return getattr(getattr(AnalysisConfig(), section), name)


def stated(cfg: dict[str, Any]) -> dict[str, Any]:
    """``cfg`` with every experiment key it leaves to a default written out (the mock's value);
    the keys it states and the reach's statistics inputs are left as they are. The input
    files of a config that selects or makes its own yields are the mock's
    (``input.mock_files``): the mock's map, truth tag and N_POT record are allowed
    (:func:`gammastar.config_checks.mock_only_problems`)."""
    out = dict(cfg)
    lines = experiment_problems(cfg)
    data_keys = any(ln.startswith(("beam.", "unfold.")) for ln in lines)  # own yields
    inp = out.get("input", {})
    if out.get("mock") is None and ("input" in out or data_keys) and isinstance(inp, dict):
        out["input"] = {"mock_files": True, **inp}
    for line in lines:
        key = line.split(":")[0]
        section, name = key.split(".")
        if section == "reach":
            continue
        given = out.get(section)
        out[section] = {**(given if isinstance(given, dict) else {}), name: mock_value(key)}
    return out


def stated_yaml(text: str) -> str:
    """:func:`stated` for a config written as YAML text."""
    data = yaml.safe_load(text)
    return yaml.safe_dump(stated(data if isinstance(data, dict) else {}), sort_keys=False)


def stated_config(data: Any, source: str | None = None, **kw: Any) -> AnalysisConfig:
    """:func:`gammastar.config.config_from_dict` of ``data`` with its experiment keys stated
    (:func:`stated`)."""
    return config_from_dict(stated(data) if isinstance(data, dict) else data, source, **kw)
