"""The analysis config: validation, error messages naming file and key, path resolution."""

from __future__ import annotations

from pathlib import Path

import pytest

from gammastar.config import load_config
from gammastar.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "cfg.yaml"
    p.write_text(text)
    return p


def test_default_analysis_loads(repo_dir: str) -> None:
    cfg = load_config(Path(repo_dir) / "analysis" / "na60_like.yaml")
    assert cfg.name == "na60_like"
    assert cfg.selection.lepton_min_energy == 3.0
    # ${output} substitution and resolution against the config's directory
    assert cfg.resolve(cfg.input.files[0]) == cfg.output_dir / "mock.root"
    assert cfg.output_dir == (Path(repo_dir) / "runs" / "na60_like").resolve()


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    p = write(tmp_path, "selection:\n  lepton_min_energyy: 3\n")
    with pytest.raises(ConfigError, match=r"cfg\.yaml: selection\.lepton_min_energyy: unknown key"):
        load_config(p)


def test_bad_value_names_key(tmp_path: Path) -> None:
    p = write(tmp_path, "beam:\n  n_pot: -5\n")
    with pytest.raises(ConfigError, match=r"beam\.n_pot"):
        load_config(p)


def test_geometry_order_checked(tmp_path: Path) -> None:
    p = write(tmp_path, "detector:\n  l1: 10\n  l2: 5\n")
    with pytest.raises(ConfigError, match=r"detector: Value error, l2 \(5.0\) must be larger"):
        load_config(p)


def test_missing_and_invalid_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "a: [1, 2\n"))
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(write(tmp_path, "- 1\n- 2\n"))


def test_hash_tracks_sections(tmp_path: Path) -> None:
    a = load_config(write(tmp_path, "flow: {epochs: 10}\n"))
    b = load_config(write(tmp_path, "flow: {epochs: 11}\n"))
    assert a.sha256 != b.sha256
    assert a.section_sha256("selection") == b.section_sha256("selection")
    assert a.section_sha256("flow") != b.section_sha256("flow")
