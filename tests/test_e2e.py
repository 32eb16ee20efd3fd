"""End to end through the CLI: every stage, nothing recomputed on a rerun, only the
affected stages after a config change, and an interrupted training that resumes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _cli import CliRun, main_in_process
from _experiment import stated_yaml

REPO = Path(__file__).resolve().parents[1]

TINY = """\
name: tiny
output: {out}
seed: 11
mock:
  events: 60000
  combinatorial: {{pilot_events: 20000}}   # the combinatorial rate: a small pilot
input:
  files: ["${{output}}/mock.root"]
unfold:
  efficiency_map: {repo}/data/efficiency_na60_like.root
  outside_map: nearest
flow:
  transforms: 2
  hidden_features: [16, 16]
  epochs: {epochs}
  points_per_epoch: {points}
  checkpoint_every: 1
validate:
  masses: [0.4, 0.75]
  repeats: 4
  max_points: 1500
  figure_masses: [0.4, 0.75]
reach:
  target_interaction_lengths: data   # the mock's own exposure and target: yield scale 1
  background: {{mumu: 0.0}}
  background_kappa: {{mumu: 1.0}}
  efficiency_uncertainty: 0.0
  n_pot_rel_uncertainty: 0.2
  mass_points: 5
  eps_points: 6
  samples: 2000
"""


def write_config(
    tmp_path: Path, name: str = "tiny.yaml", epochs: int = 2, points: int = 4000
) -> Path:
    cfg = tmp_path / name
    cfg.write_text(TINY.format(out=tmp_path / "run", repo=REPO, epochs=epochs, points=points))
    return cfg


def gammastar(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "gammastar", *args],
        check=False,
        capture_output=True,
        text=True,
        env=env,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"gammastar {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def statuses(proc: subprocess.CompletedProcess[str] | CliRun) -> dict[str, str]:
    """Stage → 'ran'/'skipped' from the printed summary (`  <stage>  <status>...`)."""
    out = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in {
            "generate",
            "select",
            "yields",
            "train",
            "validate",
            "reach",
        }:
            out[parts[0]] = parts[1].rstrip(":")
    return out


STAGES = ("generate", "select", "yields", "train", "validate", "reach")


def run_ok(*args: str) -> CliRun:
    """``gammastar ARGS`` in this process (:func:`_cli.main_in_process`: the command line, its
    parsing and its printed summary; the process boundary itself, exit statuses and signals:
    tests/test_reliability.py, test_killed_during_training_resumes), asserted to succeed."""
    run = main_in_process(*args)
    assert run.status == 0, (
        f"gammastar {' '.join(args)} failed ({run.status}):\n{run.stdout}\n{run.stderr}"
    )
    return run


def test_run_and_rerun(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One whole run writes every artifact (each schema-checked one valid) and the report; a
    second run of the same config recomputes nothing and rewrites nothing. Which stages a
    config change reruns: test_config_change_reruns_only_the_affected_stages (slow) on this
    chain, tests/test_pipeline.py on toy stages.

    The mock's, the yields' and the validation's figures are recorded where the stages would
    draw them, not drawn (most of those stages' time here): drawn by tests/test_mock_cli.py::
    test_generate_writes_file_and_plots, tests/test_yields.py::
    test_compute_yields_with_theory_and_plots and tests/test_validate.py's closure test; the
    reach's, with the flow closure only a run with a flow has, are drawn."""
    from _phys_figures import skip_plot

    mock_figures = skip_plot(monkeypatch, "gammastar.mock.plots.plot_file")
    yields_figures = [skip_plot(monkeypatch, f"gammastar.yields.stage.{f}")
                      for f in ("plot_aprime", "plot_mcp", "plot_standard_recipe")]  # fmt: skip
    kl_figure = skip_plot(monkeypatch, "gammastar.flow.validate.plot_kl")
    kinematics_figure = skip_plot(monkeypatch, "gammastar.flow.validate.plot_kinematics")
    cfg = write_config(tmp_path)
    first = run_ok("run", str(cfg))
    assert statuses(first) == dict.fromkeys(STAGES, "ran")
    run = tmp_path / "run"
    assert mock_figures == [run / "figures"]
    assert yields_figures == [[run / "figures" / "yields_aprime.png"],
                              [run / "figures" / "yields_mcp.png"],
                              [run / "figures" / "yields_standard_recipe.png"]]  # fmt: skip
    assert kl_figure == [run / "figures" / "flow_kl.png"]
    assert len(kinematics_figure) == 1  # (its second argument: the data it compares)
    for artifact in (
        "mock.root",
        "pairs.parquet",
        "histograms.root",
        "yields.json",
        "flow/model.pt",
        "validation.json",
        "reach.json",
        "report.html",
    ):
        assert (run / artifact).exists(), artifact
    # every schema-checked artifact of a whole run validates (gammastar.core.rundir, schemas/1/)
    from gammastar.core.rundir import RunDir

    checked = set(RunDir(run).check())
    for name in ("select.json", "histograms.root", "yields.json", "flow/meta.json",
                 "flow/history.json", "validation.json", "workspaces/index.json",
                 "reach.json", ".gammastar/reach.json"):  # fmt: skip
        assert name in checked, name
    # the summary's last line: the report and its size (1024-based, as the report's file list)
    last = first.stdout.rstrip().splitlines()[-1]
    assert re.fullmatch(rf"report: {re.escape(str(run / 'report.html'))} \(\d+\.\d [kM]B\)", last)
    assert_flow_closure(run)
    stamp = {
        p: (run / p).stat().st_mtime_ns for p in ("mock.root", "pairs.parquet", "flow/model.pt")
    }

    second = run_ok("run", str(cfg))
    assert statuses(second) == dict.fromkeys(STAGES, "skipped")
    assert {p: (run / p).stat().st_mtime_ns for p in stamp} == stamp  # nothing rewritten


def assert_flow_closure(run: Path) -> None:
    """reach.json's flow closure and its figure and report section, as a tiny run makes them."""
    reach = json.loads((run / "reach.json").read_text())
    assert reach["meta"]["schema_version"] == 1
    # the flow against its own pairs where the detector looks (gammastar.reach.flow_closure), at
    # validate.masses: the tiny run's flow is full phase space (an acceptance map, no F)
    fc = reach["flow_closure"]
    assert fc["masses"] == [0.4, 0.75]
    assert fc["pairs"] == str(run / "pairs.parquet")
    # (the tiny run excludes nothing: compared where the expected signal peaks)
    compared = [p for p in fc["points"] if p.get("eps_peak", {}).get("ratio") is not None]
    assert compared
    assert all(not p["inside_fiducial"] and p["n_pairs"] > 0 for p in compared)
    assert fc["n_compared"] >= len(compared)
    assert (run / "figures" / "reach_flow_closure.png").stat().st_size > 1000
    assert "The flow against its own pairs where the detector looks" in (
        run / "report.html"
    ).read_text(encoding="utf-8")


@pytest.mark.slow
def test_config_change_reruns_only_the_affected_stages(tmp_path: Path) -> None:
    """On the real chain (a whole run first): a reach-only change reruns the reach alone; a
    flow change reruns the training and what reads the flow, not the data stages."""
    cfg = write_config(tmp_path)
    assert statuses(gammastar("run", str(cfg))) == dict.fromkeys(STAGES, "ran")
    run = tmp_path / "run"

    # a reach-only change reruns reach alone
    cfg.write_text(cfg.read_text().replace("eps_points: 6", "eps_points: 7"))
    third = gammastar("run", str(cfg))
    assert statuses(third) == {**dict.fromkeys(STAGES, "skipped"), "reach": "ran"}

    # a flow change reruns train and what reads the flow, not the data stages
    cfg.write_text(cfg.read_text().replace("hidden_features: [16, 16]", "hidden_features: [16, 8]"))
    fourth = gammastar("run", str(cfg))
    assert statuses(fourth) == {
        "generate": "skipped",
        "select": "skipped",
        "yields": "skipped",
        "train": "ran",
        "validate": "ran",
        "reach": "ran",
    }
    assert_flow_closure(run)


def test_bad_config_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`gammastar run` on a misspelt key: exit status 2 and one line naming the file and the
    key (the CLI's entry point in this process; a real process's exit statuses:
    tests/test_reliability.py)."""
    from gammastar.cli import main

    cfg = tmp_path / "bad.yaml"
    cfg.write_text(stated_yaml("flow:\n  epoch: 3\n"))  # the experiment stated: one mistake
    assert main(["run", str(cfg)]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == [
        f"gammastar: error: {cfg.resolve()}: flow.epoch: unknown key"
    ]
    assert captured.out == ""


@pytest.mark.slow
def test_killed_during_training_resumes(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, epochs=40, points=20000)
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "gammastar", "run", str(cfg)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    checkpoint = run / "flow" / "checkpoint.pt"
    deadline = time.time() + 240
    while not checkpoint.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert checkpoint.exists(), "training never wrote a checkpoint"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run / "flow" / "model.pt").exists()  # killed before the model was written
    done = {s: (run / ".gammastar" / f"{s}.json").exists() for s in STAGES}
    assert done == {
        "generate": True,
        "select": True,
        "yields": True,
        "train": False,
        "validate": False,
        "reach": False,
    }

    again = gammastar("run", str(cfg))
    assert statuses(again) == {
        "generate": "skipped",
        "select": "skipped",
        "yields": "skipped",
        "train": "ran",
        "validate": "ran",
        "reach": "ran",
    }
    note = json.loads((run / ".gammastar" / "train.json").read_text())["note"]
    assert note == "resumed from checkpoint.pt"
