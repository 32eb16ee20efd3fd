"""A user's own data outside the mock (a config without ``mock:``): a config that points at the
mock's own files or settings (a copied mock config with its ``mock:`` deleted) is refused
before anything runs, every such key in one message with what to write instead; the
selection's choices the config leaves to the mock's values are printed once at the top of the
run as ``assumed: key = value (...)`` and recorded in ``select.json`` ``meta.assumed``. With
``mock:`` nothing of this applies (tests/test_config_checks.py covers the missing keys)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _cli import main_in_process
from _select_data import write_mock

from gammastar import pipeline
from gammastar.config import config_from_dict, load_config
from gammastar.config_checks import ASSUMED_KEYS, mock_only_problems
from gammastar.core import rundir
from gammastar.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def _without_mock(text: str) -> str:
    """The YAML text without its ``mock:`` section (the line and its indented block), as a
    user deletes it."""
    out, skipping = [], False
    for line in text.splitlines():
        if line.startswith("mock:"):
            skipping = True
            continue
        if skipping and (line.startswith((" ", "#")) or not line.strip()):
            continue
        skipping = False
        out.append(line)
    return "\n".join(out) + "\n"


def test_copied_mock_config_refused_with_every_key(tmp_path):
    """analysis/na60_like.yaml copied next to the user's data with ``mock:`` deleted: `gammastar
    select` and `gammastar run` refuse it (exit 2) with one line for each key that points at
    the mock (its N_POT record, its output file, its truth tag, its shipped pair efficiency,
    which ``../data/`` would find as the shipped file), each saying what to write; nothing is
    written. The original (with ``mock:``) loads and assumes nothing."""
    original = REPO / "analysis" / "na60_like.yaml"
    mine = tmp_path / "mine.yaml"
    mine.write_text(_without_mock(original.read_text(encoding="utf-8")), encoding="utf-8")
    assert "\nmock:" not in mine.read_text(encoding="utf-8")
    for command in ("select", "run"):
        res = main_in_process(command, str(mine))
        assert res.status == 2
        lines = res.stderr.removeprefix("gammastar: error: ").splitlines()
        keys = [ln.removeprefix(f"{mine}: ").split(": ")[0] for ln in lines]
        assert keys == [
            "beam.n_pot",
            "input.files",
            "background.remove_eta_mumu",
            "unfold.efficiency_map",
        ], res.stderr
        assert all(ln.startswith(f"{mine}: ") for ln in lines)
        for what in ("`beam: {n_pot: <POT>}`", "`input: {files: [<your files>]}`",
                     "`remove_eta_mumu: rate`", "`efficiency_map: <file.root>`"):  # fmt: skip
            assert what in res.stderr
    assert not (tmp_path.parent / "runs" / "na60_like").exists()  # its output: ../runs/...
    cfg = load_config(original)
    assert cfg.assumed() == {}
    assert cfg.assumed_lines() == []


def test_every_pointer_at_the_mock_is_named(tmp_path):
    """The mock's truth branches, a shipped file under another key (by absolute path, here as
    a ``path:key`` map) and per-flavour overrides are named too; ``input.mock_files: true``
    (files made by `gammastar generate`) allows them all; a facility's ``from_input`` (the
    N_POT of the yields it reads) is no pointer at the mock."""
    shipped = REPO / "data" / "efficiency_na60_like.root"
    data = {
        "input": {
            "files": ["mine.root"],
            "lepton": ["mu", "e"],
            "branches": {"parent": "muon_parent", "truth_channel": "truth_channel"},
            "per_flavour": {"e": {"branches": {"px": "truth_gstar_px"}}},
        },
        "beam": {"energy": 158.0, "interaction_lengths": 0.05, "n_pot": 1.0e12},
        "background": {"remove_eta_mumu": "none", "per_flavour": {"e": {"remove_eta_mumu": "truth"}}},
        "unfold": {"efficiency_map": None, "acceptance_map": f"{shipped}:acceptance"},
    }  # fmt: skip
    with pytest.raises(ConfigError) as err:
        config_from_dict(data, source=str(tmp_path / "c.yaml"))
    keys = [ln.split(": ")[1] for ln in str(err.value).splitlines()]
    assert keys == [
        "input.branches.parent",
        "input.branches.truth_channel",
        "input.per_flavour.e.branches.px",
        "background.per_flavour.e.remove_eta_mumu",
        "unfold.acceptance_map",
    ]
    assert "shipped with gammastar for the mock" in str(err.value)
    mock_files = {**data, "input": {**data["input"], "mock_files": True}}
    assert config_from_dict(mock_files, source=str(tmp_path / "c.yaml")).input.mock_files
    # a facility's config reading another run's yields: from_input is their N_POT, allowed
    facility = {"reach": {"yields": "y.json"}, "beam": {"n_pot": "from_input"}}
    assert mock_only_problems(facility, lambda value: None) == []


def test_unstated_eta_removal_refused_before_any_pair(tmp_path):
    """One's own ntuple without a truth tag and a config that leaves out the η → μμ removal,
    whose default is the mock's `truth`: `gammastar select` and `gammastar run` refuse it
    (exit 2) once the input's branches are known, before any pair is selected or any stage
    runs, in one line naming the config, the key and both choices; nothing is written."""
    path = _own_config(tmp_path)
    path.write_text(path.read_text().replace("background: {remove_eta_mumu: none}\n", ""))
    write_mock(tmp_path / "mine.root", 10, tagged=False)  # the mock's branches, no truth tag
    line = (
        f"gammastar: error: {path.resolve()}: background.remove_eta_mumu: truth (the mock's, "
        "and the default) drops η → μμ pairs by the mock's truth tag, the truth_channel "
        "branch, which the input lacks: `remove_eta_mumu: rate` (the peak predicted from the "
        "η → γμμ yield) or `none`"
    )
    for command in ("select", "run"):
        res = main_in_process(command, str(path))
        assert res.status == 2, res.stderr
        assert res.stderr.splitlines()[-1] == line
        assert "[select]" not in res.stdout  # `run`: refused before its first stage
        assert not (tmp_path / "run" / rundir.SELECT).exists()
        assert not (tmp_path / "run" / rundir.PAIRS).exists()


def _own_config(tmp_path: Path) -> Path:
    """A minimal config of one's own ntuple that states the beam, the target thickness, the
    N_POT, ε = 1, no η → μμ removal and the mass window, and leaves the other selection
    choices to the mock's values."""
    write_mock(tmp_path / "mine.root", 10)  # tests/_select_data.py: the mock's branch names
    path = tmp_path / "mine.yaml"
    path.write_text(
        f"output: {tmp_path / 'run'}\n"
        "input: {files: [mine.root]}\n"
        "beam: {energy: 158.0, interaction_lengths: 0.05, n_pot: 1.0e12}\n"
        "selection: {mass_min: 0.25, mass_max: 1.0}\n"
        "background: {remove_eta_mumu: none}\n"
        "unfold: {efficiency_map: null}\n"
    )
    return path


# the lines of the keys _own_config leaves out, in ASSUMED_KEYS's order (values: the fields'
# defaults, the NA60-like mock's)
ASSUMED = [
    "assumed: input.tree = events (the mock's: the tree it writes)",
    "assumed: input.layout = jagged_cartesian (the mock's: per-event jagged muon_px, ..., muon_charge)",
    "assumed: selection.lepton_min_energy = 3 GeV (the mock's: the NA60-like absorber's range-out)",
    "assumed: selection.qt_max = 3 GeV (the mock's: the q_T axis of the 3-D histograms)",
    "assumed: selection.energy_max = 200 GeV (the mock's: the E axis of the 3-D histograms)",
    "assumed: beam.target = Pb (the mock's: a label)",
    "assumed: beam.sigma_inel_mb = 1720 mb (the mock's: inelastic p + Pb)",
]


def test_assumed_choices_printed_once_and_recorded(tmp_path):
    """`gammastar select` prints the assumed lines once, before the selection's output, and
    select.json (validated against its schema on reading) records them in meta.assumed; the
    pipeline of `gammastar run` prints them once at its top (the select stage prints none).
    The stated mass window is not among them."""
    path = _own_config(tmp_path)
    res = main_in_process("select", str(path))
    assert res.status == 0, res.stderr
    said = res.stderr.splitlines()
    assert [ln for ln in said if ln.startswith("assumed: ")] == ASSUMED
    assert said[: len(ASSUMED)] == ASSUMED  # at the top
    doc = rundir.RunDir(tmp_path / "run").read_json(rundir.SELECT)
    assumed = doc["meta"]["assumed"]
    assert list(assumed) == [a.split(" = ")[0].removeprefix("assumed: ") for a in ASSUMED]
    assert assumed["input.layout"] == "jagged_cartesian"
    # the fields' defaults: 3 GeV, 3 GeV, 200 GeV, 1720 mb (config/selection.py)
    for key, value in {"selection.lepton_min_energy": 3.0, "selection.qt_max": 3.0,
                       "selection.energy_max": 200.0, "beam.sigma_inel_mb": 1720.0}.items():  # fmt: skip
        assert assumed[key] == pytest.approx(value, rel=1e-15)
    assert {tuple(k.split(".")) for k in assumed} <= set(ASSUMED_KEYS)
    echoed: list[str] = []
    cfg = load_config(path)
    pipeline.run(cfg, only=["select"], force=["select"], echo=echoed.append, report=False)
    assert echoed[: len(ASSUMED)] == ASSUMED
    assert sum(ln.startswith("assumed: ") for ln in echoed) == len(ASSUMED)
    assert json.loads((tmp_path / "run" / rundir.SELECT).read_text())["meta"]["assumed"] == assumed


def test_stated_choices_assume_nothing():
    """Every choice stated (here through both flavours' ``per_flavour`` for the mass window):
    nothing assumed; with ``mock:`` nothing either."""
    data = {
        "input": {"files": ["a.root"], "tree": "t", "layout": "flat_pairs", "lepton": ["mu", "e"]},
        "beam": {"energy": 158.0, "interaction_lengths": 0.05, "target": "Be",
                 "sigma_inel_mb": 268.0},
        "selection": {"lepton_min_energy": 1.0, "qt_max": 2.0, "energy_max": 150.0,
                      "per_flavour": {"mu": {"mass_min": 0.22, "mass_max": 1.0},
                                      "e": {"mass_min": 0.01, "mass_max": 1.0}}},
        "background": {"remove_eta_mumu": "none"},
        "unfold": {"efficiency_map": None},
    }  # fmt: skip
    assert config_from_dict(data).assumed() == {}
    assert config_from_dict({"mock": {}}).assumed() == {}


def test_run_without_n_pot_refused_before_any_stage(tmp_path):
    """`gammastar run` on one's own ntuple without ``beam.n_pot`` (the default ``from_input``
    reads the mock generator's record, which the file has not): refused at the start, naming
    the key and the file, before the selection runs."""
    path = _own_config(tmp_path)
    path.write_text(path.read_text().replace(", n_pot: 1.0e12", ""))
    res = main_in_process("run", str(path))
    assert res.status == 2
    assert res.stderr.splitlines()[-1] == (
        f"gammastar: error: {path.resolve()}: beam.n_pot: from_input (the default) reads the "
        "N_POT the mock generator records in its files (meta.n_pot), which "
        f"{tmp_path / 'mine.root'} lacks: your data's protons on target, `beam: {{n_pot: <POT>}}`"
    )
    assert not (tmp_path / "run" / rundir.SELECT).exists()
