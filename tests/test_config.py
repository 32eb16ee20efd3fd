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
    a = load_config(write(tmp_path, "mock: {}\nflow: {epochs: 10}\n"))
    b = load_config(write(tmp_path, "mock: {}\nflow: {epochs: 11}\n"))
    assert a.sha256 != b.sha256
    assert a.section_sha256("selection") == b.section_sha256("selection")
    assert a.section_sha256("flow") != b.section_sha256("flow")


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("selection:\n  mass_max: .inf\n", r"selection\.mass_max: .*finite"),
        ("selection:\n  qt_max: .nan\n", r"selection\.qt_max"),
        ("selection:\n  rapidity_min: 4.0\n  rapidity_max: 2.0\n", r"rapidity_max \(2\.0\)"),
        ("background:\n  eta_dalitz_window: [0.45, 0.2113]\n", r"eta_dalitz_window: the upper"),
        ("name: a\nname: b\n", r"not valid YAML .*key 'name' given twice"),
        ("selection:\n  mass_min: 0.3\n  mass_min: 0.4\n", r"key 'mass_min' given twice"),
        ("source: /elsewhere.yaml\n", r"cfg\.yaml: source: unknown key"),
        ("seed: true\n", r"cfg\.yaml: seed: "),
    ],
)
def test_values_that_would_mislead_are_refused(tmp_path: Path, text: str, pattern: str) -> None:
    """Infinite or NaN numbers, reversed windows, a key given twice (YAML keeps the last
    silently), a top-level 'source' (set by the loader) and a boolean seed: each a ConfigError
    naming the file and key, not a silent change of the analysis."""
    with pytest.raises(ConfigError, match=pattern):
        load_config(write(tmp_path, text))


def test_config_that_is_not_text(tmp_path: Path) -> None:
    p = tmp_path / "cfg.yaml"
    p.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(ConfigError, match=r"cfg\.yaml: not UTF-8 text"):
        load_config(p)


def test_shipped_data_files_resolve_for_a_config_anywhere(tmp_path: Path) -> None:
    """The default efficiency map ``../data/efficiency_na60_like.root`` is found for a config
    outside ``analysis/`` (the shipped file), by the mock generator and the selection alike;
    a name that is not shipped is an error naming the key."""
    from gammastar.mock.detector import resolve_efficiency_map

    cfg = load_config(write(tmp_path, "mock: {}\n"))
    shipped = cfg.resolve_data(cfg.unfold.efficiency_map, "unfold.efficiency_map")
    assert shipped.name == "efficiency_na60_like.root"
    assert shipped.exists()
    assert resolve_efficiency_map(cfg) == shipped
    with pytest.raises(ConfigError, match=r"cfg\.yaml: unfold\.efficiency_map: .*nope\.root"):
        cfg.resolve_data("../data/nope.root", "unfold.efficiency_map")


@pytest.mark.parametrize(
    "text",
    [
        "validate_:\n  masses: [0.5]\n",  # the Python attribute name is not a config key
        "validate:\n  masses: []\n",
        "yields:\n  mcp_masses: []\n",
        "reach:\n  channels: []\n",
    ],
)
def test_internal_names_and_empty_lists_are_refused(tmp_path: Path, text: str) -> None:
    key = text.split(":")[0]
    with pytest.raises(ConfigError, match=rf"cfg\.yaml: {key}"):
        load_config(write(tmp_path, text))
