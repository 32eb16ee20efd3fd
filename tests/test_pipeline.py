"""The pipeline's up-to-date logic on toy stages (the real chain is tested end to end elsewhere)."""

from __future__ import annotations

from pathlib import Path

import pytest
from _experiment import stated_config, stated_yaml

from gammastar import pipeline
from gammastar.config import AnalysisConfig
from gammastar.core import rundir
from gammastar.errors import GammastarError

CALLS: list[str] = []
REAL_STAGES = pipeline.STAGES  # the chain's stages (the toy fixture replaces pipeline.STAGES)


def _writer(name: str, out: str, src: str | None = None):
    def run(config: AnalysisConfig) -> None:
        CALLS.append(name)
        text = config.flow.model_dump_json() if name == "b" else name
        if src:
            text += (config.output_dir / src).read_text()
        (config.output_dir / out).write_text(text)

    return run


def _toy(name: str):
    """The stage function ``toy_stages.<name>`` looked up when called (tests replace it)."""
    import sys

    return lambda config: getattr(sys.modules["toy_stages"], name)(config)


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AnalysisConfig:
    import sys
    import types

    mod = types.ModuleType("toy_stages")
    mod.a = _writer("a", "a.txt")
    mod.b = _writer("b", "b.txt", "a.txt")
    mod.c = _writer("c", "c.txt")
    monkeypatch.setitem(sys.modules, "toy_stages", mod)
    stages = (
        pipeline.Stage("a", _toy("a"), sections=("selection",), outputs=("a.txt",)),
        pipeline.Stage("b", _toy("b"), sections=("flow",), outputs=("b.txt",), needs=("a",)),
        pipeline.Stage("c", _toy("c"), sections=("reach",), outputs=("c.txt",)),
    )
    monkeypatch.setattr(pipeline, "STAGES", stages)
    CALLS.clear()
    return stated_config({"output": str(tmp_path / "run")}, source=str(tmp_path / "cfg.yaml"))


def statuses(reports: list[pipeline.StageReport]) -> dict[str, str]:
    return {r.name: r.status for r in reports}


def test_second_run_skips_everything(toy: AnalysisConfig) -> None:
    first = pipeline.run(toy, echo=lambda s: None, report=False)
    assert statuses(first) == {"a": "ran", "b": "ran", "c": "ran"}
    second = pipeline.run(toy, echo=lambda s: None, report=False)
    assert statuses(second) == {"a": "skipped", "b": "skipped", "c": "skipped"}
    assert CALLS == ["a", "b", "c"]


def test_changed_section_reruns_only_affected(toy: AnalysisConfig) -> None:
    pipeline.run(toy, echo=lambda s: None, report=False)
    changed = toy.model_copy(update={"flow": toy.flow.model_copy(update={"epochs": 3})})
    reports = pipeline.run(changed, echo=lambda s: None, report=False)
    assert statuses(reports) == {"a": "skipped", "b": "ran", "c": "skipped"}


def test_upstream_rerun_propagates_through_identities(toy: AnalysisConfig) -> None:
    """A rerun stage rewrites its output, which the next stage read: that one reruns too,
    whatever the clocks say (a future timestamp on an input does not rerun forever)."""
    import os
    import time

    pipeline.run(toy, echo=lambda s: None, report=False)
    reports = pipeline.run(toy, force=["a"], echo=lambda s: None, report=False)
    assert statuses(reports)["b"] == "ran"
    assert reports[1].reason == "a.txt changed"
    # an input stamped in the future (a copied timestamp, a skewed clock): one rerun, then
    # up to date
    future = time.time() + 3600
    os.utime(toy.output_dir / "a.txt", (future, future))
    assert statuses(pipeline.run(toy, echo=lambda s: None, report=False))["b"] == "ran"
    assert statuses(pipeline.run(toy, echo=lambda s: None, report=False))["b"] == "skipped"


def test_missing_output_and_interrupted_stage(
    toy: AnalysisConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline.run(toy, echo=lambda s: None, report=False)
    (toy.output_dir / "c.txt").unlink()
    assert pipeline.is_up_to_date(toy, pipeline.STAGES[2]) == (False, "missing c.txt")

    # a stage that dies leaves no state: the finished stages stay, it reruns next time
    import sys

    def boom(config: AnalysisConfig, force: bool = True) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(sys.modules["toy_stages"], "c", boom)
    with pytest.raises(KeyboardInterrupt):
        pipeline.run(toy, echo=lambda s: None, report=False)
    monkeypatch.setattr(sys.modules["toy_stages"], "c", _writer("c", "c.txt"))
    CALLS.clear()
    reports = pipeline.run(toy, echo=lambda s: None, report=False)
    assert statuses(reports) == {"a": "skipped", "b": "skipped", "c": "ran"}


def test_failed_stage_withdraws_what_it_wrote(
    toy: AnalysisConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stage that fails after writing an output (a figure that does not fit on the disk
    after its JSON) leaves neither that output nor a record; another stage's outputs and an
    output it did not touch stay."""
    import sys

    pipeline.run(toy, echo=lambda s: None, report=False)
    a_before = (toy.output_dir / "a.txt").stat().st_mtime_ns

    def half(config: AnalysisConfig, force: bool = True) -> None:
        (config.output_dir / "b.txt").write_text("half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(sys.modules["toy_stages"], "b", half)
    with pytest.raises(OSError, match="No space"):
        pipeline.run(toy, force=["b"], echo=lambda s: None, report=False)
    assert not (toy.output_dir / "b.txt").exists()
    assert (toy.output_dir / "a.txt").stat().st_mtime_ns == a_before
    assert pipeline.is_up_to_date(toy, pipeline.STAGES[1]) == (False, "missing b.txt")

    def untouched(config: AnalysisConfig, force: bool = True) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(sys.modules["toy_stages"], "b", _writer("b", "b.txt", "a.txt"))
    pipeline.run(toy, echo=lambda s: None, report=False)
    monkeypatch.setattr(sys.modules["toy_stages"], "b", untouched)
    with pytest.raises(KeyboardInterrupt):
        pipeline.run(toy, force=["b"], echo=lambda s: None, report=False)
    assert (toy.output_dir / "b.txt").exists()  # not written by the failed call: kept


def test_unknown_stage_is_an_error(toy: AnalysisConfig) -> None:
    with pytest.raises(GammastarError, match="unknown stage 'x'; stages are: a, b, c"):
        pipeline.run(toy, force=["x"], echo=lambda s: None, report=False)


def test_output_overwritten_outside_the_run_reruns(toy: AnalysisConfig) -> None:
    import os

    pipeline.run(toy, echo=lambda s: None, report=False)
    # a standalone command rewrites a.txt (same size, an older mtime than b.txt's)
    a = toy.output_dir / "a.txt"
    old = os.stat(toy.output_dir / "b.txt").st_mtime_ns - 10**9
    a.write_text("x")
    os.utime(a, ns=(old, old))
    fresh, why = pipeline.is_up_to_date(toy, pipeline.STAGES[0])
    assert not fresh
    assert "a.txt" in why
    assert "outside" in why
    lines: list[str] = []
    reports = pipeline.run(toy, echo=lines.append, report=False)
    assert statuses(reports) == {"a": "ran", "b": "ran", "c": "skipped"}
    assert (toy.output_dir / "a.txt").read_text() == "a"
    assert (toy.output_dir / "b.txt").read_text().endswith("a")
    assert any(line.startswith("[a] running:") and "a.txt" in line for line in lines)


def test_state_without_output_identities_reruns(toy: AnalysisConfig) -> None:
    import json

    pipeline.run(toy, echo=lambda s: None, report=False)
    state = toy.output_dir / ".gammastar" / "c.json"
    old = json.loads(state.read_text())
    del old["outputs"]
    state.write_text(json.dumps(old))
    fresh, why = pipeline.is_up_to_date(toy, pipeline.STAGES[2])
    assert not fresh
    assert "older gammastar" in why


def _select_stage() -> pipeline.Stage:
    return next(s for s in pipeline.STAGES if s.name == "select")


def test_glob_inputs_are_tracked(
    toy: AnalysisConfig, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import os

    data = tmp_path / "data"
    data.mkdir()
    (data / "x1.root").write_text("1")
    cfg = toy.model_copy(
        update={"input": toy.input.model_copy(update={"files": [str(data / "x*.root")]})}
    )
    stage = pipeline.Stage(
        "s", _toy("c"), sections=("input",), outputs=("c.txt",), external=pipeline._input_files
    )
    monkeypatch.setattr(pipeline, "STAGES", (stage,))
    assert statuses(pipeline.run(cfg, echo=lambda s: None, report=False)) == {"s": "ran"}
    assert statuses(pipeline.run(cfg, echo=lambda s: None, report=False)) == {"s": "skipped"}
    (data / "x2.root").write_text("2")
    # a new file matching the glob, older than the output: still a new input
    old = (cfg.output_dir / "c.txt").stat().st_mtime_ns - 10**9
    os.utime(data / "x2.root", ns=(old, old))
    assert pipeline.is_up_to_date(cfg, stage) == (False, "new input x2.root")
    assert statuses(pipeline.run(cfg, echo=lambda s: None, report=False)) == {"s": "ran"}
    (data / "x1.root").unlink()
    assert pipeline.is_up_to_date(cfg, stage) == (False, "no longer an input: x1.root")


def test_run_directory_inputs_tracked_unless_a_stage_makes_them(tmp_path: Path) -> None:
    base = {"output": str(tmp_path / "run"), "input": {"files": ["${output}/mock.root"]}}
    with_mock = stated_config(base, source=str(tmp_path / "cfg.yaml"))
    mock = with_mock.output_dir / "mock.root"
    assert _select_stage().inputs(with_mock).count(mock) == 1  # as generate's output
    without = stated_config({**base, "mock": None}, source=str(tmp_path / "cfg.yaml"))
    assert _select_stage().inputs(without).count(mock) == 1  # made by a standalone generate


def test_maps_and_reach_inputs_are_tracked(
    toy: AnalysisConfig, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import dataclasses
    import os
    import sys

    ext = tmp_path / "ext"
    (ext / "flowrun" / "flow").mkdir(parents=True)
    files = {
        "mock_eff": ext / "mock_eff.root",
        "unfold_eff": ext / "unfold_eff.root",
        "acc": ext / "acc.root",
        "yields": ext / "yields.json",
        "model": ext / "flowrun" / "flow" / "model.pt",
        "meta": ext / "flowrun" / "flow" / "meta.json",
    }
    for f in files.values():
        f.write_text("v1")
    cfg = stated_config(
        {
            "output": str(tmp_path / "run"),
            "mock": {"efficiency_map": str(files["mock_eff"])},
            "unfold": {
                "efficiency_map": str(files["unfold_eff"]),
                "acceptance_map": f"{files['acc']}:acc",
            },
            "reach": {
                "yields": str(files["yields"]),
                "flow": str(ext / "flowrun"),
                # the statistics inputs a reach must state (checked before any stage runs)
                "target_interaction_lengths": "data",
                "background": {"mumu": 0.0},
                "background_kappa": {"mumu": 1.0},
                "efficiency_uncertainty": 0.0,
                "n_pot_rel_uncertainty": 0.0,
            },
        },
        source=str(tmp_path / "cfg.yaml"),
    )

    def writes(*outs: str):
        def run(config: AnalysisConfig) -> None:
            CALLS.append(outs[0])
            for o in outs:
                (config.output_dir / o).parent.mkdir(parents=True, exist_ok=True)
                (config.output_dir / o).write_text(o)

        return run

    real = {s.name: s for s in REAL_STAGES}
    stages = []
    for name in ("generate", "select", "yields", "train", "reach"):
        setattr(sys.modules["toy_stages"], name, writes(*real[name].outputs))
        stages.append(dataclasses.replace(real[name], func=_toy(name)))
    monkeypatch.setattr(pipeline, "STAGES", tuple(stages))
    quiet = {"echo": lambda s: None, "report": False}
    assert set(statuses(pipeline.run(cfg, **quiet)).values()) == {"ran"}
    assert set(statuses(pipeline.run(cfg, **quiet)).values()) == {"skipped"}

    def replace(f: Path) -> None:  # new content, mtime kept older than every output
        st = f.stat()
        f.write_text("v2!")
        os.utime(f, ns=(st.st_mtime_ns, st.st_mtime_ns))

    expect = {
        "mock_eff": {"generate", "select", "yields", "train", "reach"},
        "unfold_eff": {"select", "yields", "train", "reach"},
        "acc": {"select", "yields", "train", "reach"},
        "yields": {"reach"},
        "model": {"reach"},
    }
    for key, rerun in expect.items():
        replace(files[key])
        lines: list[str] = []
        reports = pipeline.run(cfg, echo=lines.append, report=False)
        assert {n for n, s in statuses(reports).items() if s == "ran"} == rerun, key
        assert f"{files[key].name} changed" in "\n".join(lines)


def test_unusable_run_directory_is_one_error_line(tmp_path, capsys):
    """A run directory that cannot be created (its parent is a file) names it, exit 2."""
    from gammastar.cli import main

    (tmp_path / "afile").write_text("x")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(stated_yaml(f"output: {tmp_path / 'afile' / 'run'}\n"))
    assert main(["run", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "cannot create the run directory" in err
    assert "afile" in err


def test_stages_follow_the_run_directory_order() -> None:
    """The pipeline's stages are those of rundir.STAGE_ORDER, in that order (the report orders
    its stage table by it without importing the pipeline), and each one's outputs are the run
    directory's table's."""
    assert tuple(s.name for s in REAL_STAGES) == rundir.STAGE_ORDER
    for s in REAL_STAGES:
        assert s.outputs == rundir.stage_outputs(s.name)


def test_summary_names_a_corrupt_artifact_in_one_line(tmp_path: Path) -> None:
    """The run's summary reads the run directory through its quiet reader: an absent artifact
    adds nothing, a corrupt one is one line naming the file (the summary itself never fails)."""
    cfg = stated_config({"output": str(tmp_path / "run")})
    cfg.output_dir.mkdir()
    (cfg.output_dir / rundir.SELECT).write_text("{not json")
    text = pipeline.summarize(cfg, [])
    bad = [line for line in text.splitlines() if "select.json" in line]
    assert len(bad) == 1
    assert bad[0].startswith(f"{cfg.output_dir / rundir.SELECT}: not a readable JSON")
    assert "yields" not in text  # not run: nothing said
    assert "A′ yield" not in text


def test_summary_gives_the_yield_with_its_total_error_and_parts(tmp_path: Path) -> None:
    """The run's summary prints the A′ yield at 4 masses ± its total error, the named parts
    (yields.json uncertainties, meta.mock_normalisation) in quadrature, and the parts there
    in per cent; a part 0 at a mass reads "-" there, one 0 everywhere is left out."""
    import math

    import numpy as np

    from gammastar.core.artifacts import make_meta, write_json
    from gammastar.yields.nuisance import Nuisance

    cfg = stated_config({"output": str(tmp_path / "run")})
    cfg.output_dir.mkdir()
    n = 8
    mass = [0.1 + 0.1 * i for i in range(n)]
    y = [1e-3 / (i + 1) for i in range(n)]
    rel = {"data_stat": [0.01 * (i + 1) for i in range(n)], "universality": [0.0] * 4 + [0.2] * 4,
           "eta_mumu": [0.0] * n}  # fmt: skip
    nuisances = {k: Nuisance(k, np.array(v), -np.array(v), "test").as_dict() for k, v in rel.items()}
    doc = {
        "aprime": {"mass": mass, "per_pot_per_eps2": y, "stat_err": [0.0] * n},
        "uncertainties": {"mass": mass, "nuisances": nuisances},
        "meta": make_meta(config_sha256=None, seed=None, n_pot=1e11,
                          mock_normalisation={"rel_uncertainty": 0.3}),
    }  # fmt: skip
    write_json(cfg.output_dir / rundir.YIELDS, doc)
    lines = pipeline.summarize(cfg, []).splitlines()
    at = next(i for i, ln in enumerate(lines) if ln.startswith("A′ yield per POT per ε²"))
    shown = lines[at].split(": ", 1)[1].split(", ")
    picks = [0, 2, 4, 6]  # every (n // 4)-th mass bin, 4 of them
    assert len(shown) == 4
    for text, i in zip(shown, picks, strict=True):
        value, rest = text.split(" ± ")
        total = float(rest.split(" at ")[0])
        quad = math.sqrt(rel["data_stat"][i] ** 2 + rel["universality"][i] ** 2 + 0.3**2)
        assert float(value) == pytest.approx(y[i], rel=5e-3)  # 3 digits
        assert total == pytest.approx(quad * y[i], rel=5e-2)  # 2 digits
        assert float(text.split(" at ")[1].removesuffix(" GeV")) == pytest.approx(mass[i])
    parts = lines[at + 1]
    assert parts.strip().startswith("its parts there, % of the yield (in quadrature):")
    assert "stat 1/3/5/7" in parts
    assert "channel disagreement -/-/20/20" in parts
    assert "normalisation (mock) 30/30/30/30" in parts
    assert "η → μμ" not in parts


def test_summary_masses_tell_neighbouring_bins_apart() -> None:
    """10 MeV bins centred on 5 MeV (the demo's: 0.015, 0.025, ...) print with three
    decimals, so that 0.285 and 0.295 GeV do not both read "0.29"; 0.1 GeV bins keep two."""
    texts = pipeline._mass_texts([0.015 + 0.01 * i for i in range(40)])
    assert texts[27:29] == ["0.285", "0.295"]
    assert len(set(texts)) == 40
    assert pipeline._mass_texts([0.1 + 0.1 * i for i in range(8)])[:2] == ["0.10", "0.20"]
