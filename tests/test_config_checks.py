"""Mistakes refused before any stage runs, and errors that say what broke.

The config's cross-key rules (:mod:`gammastar.config_checks`, the input branches against the
mock's tree) refuse a config in one line per mistake when it is loaded; ``gammastar run``
refuses it before importing the pipeline. The read errors name the file and the cause that
was met (a directory, a permission, integer momenta, a run directory that cannot be made);
the reach publishes its outputs only once its figures are drawn.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot
from _experiment import stated_config, stated_yaml

import gammastar
from gammastar.config import config_from_dict, load_config
from gammastar.errors import ConfigError, GammastarError, InputError

SRC = str(Path(gammastar.__file__).resolve().parents[1])

# the three mistakes that used to surface only when a stage ran (each in a mock config)
LATE = {
    "validate.window": "validate: {window: 5.0}",
    "validate.masses": "validate: {masses: [5.0]}",
    "input.branches": "input: {branches: {foo: bar}}",
}

REFUSE = """
import json, sys, time
from gammastar.cli import main
status = [main(["run", p]) for p in sys.argv[1:]]
heavy = [m for m in ("torch", "coffea", "dask", "gammastar.pipeline") if m in sys.modules]
print(json.dumps({"status": status, "heavy": heavy, "cpu": time.process_time()}))
"""


def _mock_config(tmp_path: Path, name: str, extra: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: t\noutput: {tmp_path / name}\nmock: {{events: 2000}}\n{extra}\n")
    return path


def test_late_mistakes_refused_before_the_pipeline(tmp_path):
    """`gammastar run` on each late mistake: exit 2, one line naming the key, no run
    directory, and neither the pipeline nor torch, coffea or dask imported."""
    paths = [_mock_config(tmp_path, f"c{i}", text) for i, text in enumerate(LATE.values())]
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("GAMMASTAR_DEBUG", None)
    out = subprocess.run(
        [sys.executable, "-c", REFUSE, *map(str, paths)],
        capture_output=True, text=True, env=env, timeout=120, check=True,
    )  # fmt: skip
    res = json.loads(out.stdout.splitlines()[-1])
    assert res["status"] == [2, 2, 2]
    assert res["heavy"] == []
    lines = out.stderr.splitlines()
    assert len(lines) == 3, out.stderr
    for line, key, path in zip(lines, LATE, paths, strict=True):
        assert line.startswith(f"gammastar: error: {path}: {key}"), line
    assert not any((tmp_path / f"c{i}").exists() for i in range(3))
    # the interpreter, the command line and the config, three refusals: about 0.9 s of CPU
    # on a loaded 2-core machine; importing the pipeline alone took 2.8-6.6 s there
    assert res["cpu"] < 2.5


def test_reach_masses_inside_this_runs_yields(tmp_path):
    base = {"name": "t", "output": str(tmp_path / "r")}
    with pytest.raises(ConfigError, match=r"reach\.mass_max: 2 GeV lies outside .*0\.2113-1\.1"):
        stated_config({**base, "reach": {"mass_max": 2.0}})
    # another run's yields (reach.yields given): their masses are not this config's
    other = {"yields": str(tmp_path / "y.json"), "mass_max": 2.0}
    assert stated_config({**base, "reach": other}).reach.mass_max == 2.0


def test_mass_ranges_of_both_flavours():
    """validate.masses are checked against the union of the flavours' selections; the default
    masses (a NA60-like grid) are not checked: another range skips them."""
    both = {
        "input": {"lepton": ["mu", "e"]},
        "selection": {"per_flavour": {"e": {"mass_min": 0.01}}},
    }
    cfg = stated_config({**both, "validate": {"masses": [0.015, 0.5]}})
    assert cfg.validate_.masses == [0.015, 0.5]
    with pytest.raises(ConfigError, match=r"validate\.masses: 0\.015 GeV lies outside"):
        stated_config({"validate": {"masses": [0.015, 0.5]}})
    z = stated_config({"selection": {"mass_min": 60.0, "mass_max": 120.0}})
    assert z.validate_.masses[0] == pytest.approx(0.3)


def test_every_mistake_one_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        stated_yaml(
            "validate: {window: 2.0, masses: [3.0], figure_masses: [0.5, 4.0]}\n"
            "reach: {mass_min: 0.05}\n"
        )
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    lines = str(err.value).splitlines()
    assert [ln.split(": ")[1] for ln in lines] == [
        "validate.window",
        "validate.masses",
        "validate.figure_masses",
        "reach.mass_min",
    ]
    assert all(ln.startswith(f"{path.resolve()}: ") for ln in lines)


def test_branches_against_the_mock(tmp_path):
    """With the mock as input, a mapped branch the mock does not write and a flavour it does
    not generate are refused; a real file's branches are left to the file."""
    mock = {"output": str(tmp_path / "r"), "mock": {"events": 1000}}
    with pytest.raises(ConfigError, match=r"input\.branches\.px: .* no branch 'muon_pxx' "):
        config_from_dict({**mock, "input": {"branches": {"px": "muon_pxx"}}})
    with pytest.raises(ConfigError, match=r"input\.lepton: .*mock\.leptons is \[mu\]"):
        config_from_dict({**mock, "input": {"lepton": "e"}})
    ok = {"files": [str(tmp_path / "data.root")], "branches": {"px": "muon_pxx"}}
    assert config_from_dict({**mock, "input": ok}).input.branches == {"px": "muon_pxx"}
    # a config that only generates electrons (input.lepton left at its default) loads; the
    # pipeline, which would select the mock, refuses it before any stage
    from gammastar import pipeline

    ee = config_from_dict({**mock, "mock": {"events": 1000, "leptons": ["e"]}})
    with pytest.raises(ConfigError, match=r"input\.lepton: .*no 'mu' branches"):
        pipeline.run(ee, report=False)


# --------------------------------------------------------------------------- error texts
def test_directory_and_permission_are_named(tmp_path, monkeypatch):
    from gammastar.io import open_tree

    with pytest.raises(InputError, match=r": a directory, not a ROOT file"):
        open_tree(str(tmp_path), "events")
    path = tmp_path / "f.root"
    path.write_bytes(b"root")

    def denied(p, *a, **k):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(p))

    monkeypatch.setattr(uproot, "open", denied)
    with pytest.raises(InputError) as err:
        open_tree(str(path), "events")
    assert "cannot read the input file (permission denied" in str(err.value).lower()
    assert "not ROOT" not in str(err.value)


def test_integer_momenta_are_named(tmp_path):
    """Integer px, py, pz, E (E² − |p|² = 0 on the nose) used to read as electrons."""
    from gammastar.io import branch_map, check_inputs, resolve_files

    px = ak.Array([[3, -3], [1, 2]])
    cols = {f"muon_{c}": px for c in ("px", "py", "pz", "E")}
    cols["muon_charge"] = ak.values_astype(ak.Array([[1, -1], [1, -1]]), np.int32)
    for kind in ("ttree", "rntuple"):  # the branch's type from its metadata, or an entry read
        path = tmp_path / f"{kind}.root"
        with uproot.recreate(path) as f:
            if kind == "ttree":
                f.mktree("events", {k: v.type for k, v in cols.items()})
                f["events"].extend(cols)
            else:
                f["events"] = cols  # uproot writes an RNTuple
        with pytest.raises(InputError, match=r"branch 'muon_px' \(px\) holds integers"):
            check_inputs(resolve_files([str(path)], "events"), branch_map("jagged_cartesian"))


def test_run_directory_that_cannot_be_made(tmp_path):
    from gammastar.core import runlock

    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(GammastarError) as err:
        runlock.acquire(blocker / "run")
    assert "cannot create the run directory" in str(err.value)
    assert "can be read" not in str(err.value)


def test_nonfinite_momenta_raise_no_numpy_warning():
    """NaN/inf leptons are the selection's cut: the flavour count says nothing of them
    (warnings are errors in the test suite)."""
    from gammastar.selection.flavour_check import lepton_flavours

    e = np.array([np.inf, np.nan, 10.0])
    counts = lepton_flavours(e, np.array([np.inf, 1.0, 100.0 - 0.1056583755**2]), eps=2.0**-52)
    assert counts == {"mu": 1, "e": 0, "unresolved": 0, "neither": 2}


def test_library_warning_is_one_line(capsys):
    from gammastar.cli import _warning_line

    where = "/x/lib/python3.12/site-packages/numpy/_core/fromnumeric.py"
    _warning_line(RuntimeWarning("invalid value\nencountered"), RuntimeWarning, where, 61)
    assert (
        capsys.readouterr().err == "gammastar: warning: invalid value (RuntimeWarning in numpy)\n"
    )


def test_reach_publishes_nothing_when_its_figure_fails(tmp_path, monkeypatch):
    """A figure that fails (no space) stops the stage before reach.json, the workspaces and
    acceptance.npz are published (the pipeline then records nothing either)."""
    from test_reach import make_config

    from gammastar.reach import stage

    def no_space(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(stage, "plot_reach_figures", no_space)
    cfg = make_config(tmp_path, channels=["mumu"], mass_points=2, eps_points=8, samples=300)
    with pytest.raises(OSError, match="No space"):
        stage.run_reach(cfg)
    run = tmp_path / "run"
    assert not (run / "reach.json").exists()
    assert not (run / "acceptance.npz").exists()
    assert not list(run.glob("workspaces/*"))


def test_branches_against_the_first_input_file(tmp_path):
    """`gammastar run` on real files: a branch the first file lacks is refused before any
    stage runs (nothing written)."""
    from _select_data import write_mock

    from gammastar import pipeline

    data = tmp_path / "data.root"
    write_mock(data, 1)
    inp = {"files": [str(data)], "branches": {"px": "muon_pxx"}}
    cfg = stated_config({"output": str(tmp_path / "r"), "input": inp})
    with pytest.raises(
        InputError, match=r"data\.root: tree 'events' lacks branch\(es\) px → 'muon_pxx'"
    ):
        pipeline.run(cfg, report=False)
    assert not (tmp_path / "r").exists()


# --------------------------------------------------------------------------- experiment keys
def _cli_refusal(capsys, args):
    from gammastar.cli import main

    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("gammastar: error: ")
    return err


def test_user_config_without_the_mock_is_refused_once_with_every_missing_key(tmp_path, capsys):
    """A user's config (own ntuples, no `mock:`) that leaves the beam energy, the target
    thickness and the pair efficiency to the mock's NA60-like values, and misspells a cut:
    one refusal, exit 2, one line per key, each saying what to write; nothing written."""
    path = tmp_path / "mine.yaml"
    path.write_text(
        f"output: {tmp_path / 'run'}\n"
        "input: {files: [mydata/*.root]}\n"
        "selection: {lepton_min_energyy: 3.0}\n"
    )
    err = _cli_refusal(capsys, ["select", str(path)])
    keys = [ln.removeprefix("gammastar: error: ").split(": ")[1] for ln in err]
    assert keys == [
        "selection.lepton_min_energyy",
        "beam.energy",
        "beam.interaction_lengths",
        "unfold.efficiency_map",
    ]
    assert "`unfold: {efficiency_map: null}` on purpose" in err[3]
    assert all("not given (no default outside the mock)" in ln for ln in err[1:])
    assert not (tmp_path / "run").exists()
    # the three written out (ε = 1 on purpose), the typo fixed: it loads with those values
    path.write_text(
        f"output: {tmp_path / 'run'}\ninput: {{files: [mydata/*.root]}}\n"
        "beam: {energy: 158.0, interaction_lengths: 0.05}\nunfold: {efficiency_map: null}\n"
    )
    cfg = load_config(path)
    assert (cfg.beam.energy, cfg.beam.interaction_lengths) == (158.0, 0.05)
    assert cfg.unfold.efficiency_map is None


def test_the_reach_of_a_minimal_config_is_refused_once_with_all_its_keys(tmp_path, capsys):
    """`gammastar reach` on a facility config that names only the yields it reads: one
    refusal listing the detector's and every statistics input, before anything is written;
    `gammastar run` lists the data's keys and the reach's in the same message."""
    path = tmp_path / "facility.yaml"
    path.write_text(f"output: {tmp_path / 'run'}\nreach: {{yields: other/yields.json}}\n")
    err = _cli_refusal(capsys, ["reach", str(path)])
    keys = [ln.removeprefix("gammastar: error: ").split(": ")[1] for ln in err]
    assert keys == [
        "detector.l1",
        "detector.theta_min",
        "detector.theta_max",
        "reach.background",
        "reach.background_kappa",
        "reach.efficiency_uncertainty",
        "reach.n_pot_rel_uncertainty",
        "reach.target_interaction_lengths",
    ]
    assert not (tmp_path / "run").exists()
    # a config of its own data with a reach section: one message, the data's keys included
    path.write_text(
        f"output: {tmp_path / 'run'}\ndetector: {{l1: 80.0, theta_min: 0.0, theta_max: 0.05}}\n"
        "reach: {background: {mumu: 0.0}, background_kappa: {mumu: 1.0}}\n"
    )
    err = _cli_refusal(capsys, ["run", str(path)])
    keys = [ln.removeprefix("gammastar: error: ").split(": ")[1] for ln in err]
    assert keys == [
        "beam.energy",
        "beam.interaction_lengths",
        "unfold.efficiency_map",
        "reach.efficiency_uncertainty",
        "reach.n_pot_rel_uncertainty",
        "reach.target_interaction_lengths",
    ]
    assert not (tmp_path / "run").exists()


def test_the_mock_keeps_its_experiment_and_shapes_state_the_detector():
    """With `mock:` the experiment's keys take the mock's NA60-like values (the generator's
    beam and target, its pair efficiency, the paper's detector); without it a detector
    volume implies l1 and the polar window, and `daughters: {require: both}` the window."""
    cfg = config_from_dict({"mock": {}, "reach": {}})
    assert (cfg.beam.energy, cfg.beam.interaction_lengths) == (400.0, 0.01)
    assert cfg.unfold.efficiency_map == "../data/efficiency_na60_like.root"
    assert (cfg.detector.l1, cfg.detector.theta_min, cfg.detector.theta_max) == (5.0, 0.035, 0.12)
    other = {"reach": {"yields": "y.json"}}
    box = {"volume": {"shape": "box", "z1": 10.0, "z2": 20.0, "half_x": 1.0, "half_y": 1.0}}
    assert config_from_dict({**other, "detector": box}).detector.l1 == 10.0
    both = {"l1": 10.0, "daughters": {"require": "both"}}
    assert config_from_dict({**other, "detector": both}).detector.theta_max == pytest.approx(
        np.pi, rel=1e-15
    )
    with pytest.raises(ConfigError, match=r"detector\.l1: not given") as err:
        config_from_dict({**other, "detector": {"daughters": {"require": "both"}}})
    assert "theta" not in str(err.value)


def test_every_shipped_config_states_its_experiment(repo_dir):
    """Each config in analysis/ loads as `gammastar run` loads it (the reach's inputs checked
    where it has a reach), keeping the values it was written with."""
    paths = sorted(Path(repo_dir, "analysis").rglob("*.yaml"))
    assert len(paths) >= 20
    for path in paths:
        cfg = load_config(path, reach=None)
        if cfg.mock is None and "input" in cfg.model_fields_set:  # it selects its own data
            assert {"energy", "interaction_lengths"} <= cfg.beam.model_fields_set, path
            assert "efficiency_map" in cfg.unfold.model_fields_set, path
