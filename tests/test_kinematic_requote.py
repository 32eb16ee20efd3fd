"""The coverage re-quote with more bootstrap replicas (benchmarks/kinematic_requote.py, issue 19).

The spread of the replicas is stubbed (a known multiple of each row's part), so that the test
checks what the script does with it: every row's ``kinematic_model`` replaced, the old part
kept, the output mergeable by ``coverage.py --merge``, and a wider quote covering at least as
often as the narrower one on the same rows (a pull's |z| can only fall when its σ grows).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from _benchmarks import REPO, load_benchmark

SAMPLE = REPO / "docs" / "coverage" / "session31_fresh_32.json"  # 32 own-flow realisations


@pytest.fixture(scope="module")
def kr():
    return load_benchmark("kinematic_requote")


def test_requote_rows_keeps_the_first_part(kr):
    """A row re-quoted twice keeps the part it had first as ``kinematic_model_before``; the
    other parts and the input rows are unchanged."""
    rows = [{"seed": 7, "mass": 0.9, "ctau": 100.0, "pulls": {"all": 1.0},
             "sigma": {"kinematic_model": 0.017, "data_stat": 0.12}}]  # fmt: skip
    once = kr.requote_rows(rows, {7: {(0.9, 100.0): 0.03}})
    twice = kr.requote_rows(once, {7: {(0.9, 100.0): 0.04}})
    # copied values, compared with a tolerance all the same
    assert twice[0]["sigma"] == pytest.approx(
        {"kinematic_model": 0.04, "data_stat": 0.12}, rel=1e-15
    )
    assert twice[0]["kinematic_model_before"] == pytest.approx(0.017, rel=1e-15)
    assert "pulls" not in twice[0]  # recomputed by coverage.merge from the new parts
    assert rows[0]["sigma"]["kinematic_model"] == pytest.approx(0.017, rel=1e-15)


def test_run_dirs_name_the_missing_seeds(kr, tmp_path):
    (tmp_path / "a" / "full_seed1").mkdir(parents=True)
    (tmp_path / "b" / "full_seed1").mkdir(parents=True)
    (tmp_path / "b" / "full_seed1" / "yields.json").write_text("{}")
    found = kr.run_dirs([tmp_path / "a", tmp_path / "b"], "full", [1])
    assert found == {1: tmp_path / "b" / "full_seed1"}  # the one with a yields.json
    with pytest.raises(SystemExit, match=r"--workdir: no full_seed<S>/yields.json for seeds 2, 3"):
        kr.run_dirs([tmp_path / "a", tmp_path / "b"], "full", [1, 2, 3])


def _runs(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    for s in {r["seed"] for r in json.loads(SAMPLE.read_text())["arms"]["full"]["rows"]}:
        (work / f"full_seed{s}").mkdir(parents=True)
        (work / f"full_seed{s}" / "yields.json").write_text("{}")
    return work


HEADER = json.loads(SAMPLE.read_text())
PATHS = ["--config", HEADER["config"], "--flow", HEADER["flow"]]  # the outputs' own (not read)


def _stub(kr, monkeypatch, factor: float, moved: int | None = None):
    """``_spread`` returning ``factor`` × each row's recorded part and the rows' fiducial
    yields (seed ``moved``'s 1% off); no config or flow is loaded."""
    rows = HEADER["arms"]["full"]["rows"]
    old = {(r["seed"], r["mass"], r["ctau"]): r["sigma"]["kinematic_model"] for r in rows}
    y_f = {(r["seed"], r["mass"]): r["yield_fiducial"] for r in rows}

    class Replica:
        def __init__(self):
            self.meta = {"meta": {"seed": 1}}

    monkeypatch.setattr(kr, "_init", lambda *a: None)
    monkeypatch.setattr(kr, "_load_geometry", lambda config: None)
    monkeypatch.setattr(
        kr.coverage, "bootstrap_replicas", lambda flow, more: [Replica() for _ in range(27)]
    )
    monkeypatch.setattr(kr, "_spread", lambda job: (job[0], {
        (m, float(c)): factor * old[(job[0], m, float(c))] for m in job[2] for c in job[3]},
        {m: y_f[(job[0], m)] * (1.01 if job[0] == moved else 1.0) for m in job[2]}))  # fmt: skip


def test_wider_part_covers_at_least_as_often(kr, tmp_path, monkeypatch, capsys):
    _stub(kr, monkeypatch, 2.0, moved=1640)
    out = tmp_path / "requoted.json"
    args = ["--coverage", str(SAMPLE), "--workdir", str(_runs(tmp_path)), *PATHS,
            "--out", str(out)]  # fmt: skip
    summary = kr.main(args)
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(last)["benchmark"] == "kinematic_requote"  # the last line: one JSON
    assert summary["realisations"] == 32
    assert summary["members"] == 27
    assert summary["yields_changed"] == [1640]  # its yields.json moved since: named
    for p in summary["kinematic_model"]:
        assert p["ratio"] == pytest.approx(2.0, rel=1e-12)
    before, after = summary["table"]["before"], summary["table"]["after"]
    for b, a in zip(before, after, strict=True):
        for w in ("all", "varied_flow"):
            assert a[w]["cover_1sigma"] >= b[w]["cover_1sigma"]
            assert a[w]["cover_2sigma"] >= b[w]["cover_2sigma"]
            assert a[w]["rms_pull"] <= b[w]["rms_pull"] + 1e-12
    # the written output is a coverage output: it merges again, with its new header
    written = json.loads(out.read_text())
    assert written["kinematic_model"]["replicas"] == 27
    again = kr.quiet_merge([out])
    for t, a in zip(again["arms"]["full"]["table"], after, strict=True):
        assert t["all"]["cover_1sigma"] == pytest.approx(a["all"]["cover_1sigma"], abs=1e-12)
    rows = again["arms"]["full"]["rows"]
    assert all(r["sigma"]["kinematic_model"] == pytest.approx(2 * r["kinematic_model_before"])
               for r in rows)  # fmt: skip
    # a rerun never overwrites it
    with pytest.raises(SystemExit):
        kr.main(args)
    assert "exists" in capsys.readouterr().err


def test_fixed_flow_outputs_are_refused(kr, tmp_path, monkeypatch, capsys):
    """An output without --own-flow drew its A′ with one seed for all realisations: the
    re-quote (the realisation's seed + 1) would not be its recipe, so it is refused."""
    _stub(kr, monkeypatch, 1.0)
    d = json.loads(SAMPLE.read_text())
    d["own_flow"] = False
    path = tmp_path / "fixed.json"
    path.write_text(json.dumps(d))
    with pytest.raises(SystemExit):
        kr.main(["--coverage", str(path), "--workdir", str(_runs(tmp_path)), *PATHS,
                 "--out", str(tmp_path / "o.json")])  # fmt: skip
    assert "not --own-flow outputs" in capsys.readouterr().err


def test_another_config_than_the_outputs_is_refused(kr, tmp_path, monkeypatch, capsys):
    """The geometry and the flow of the re-quote must be the outputs' own: another config is
    a one-line error naming --config, before any work."""
    _stub(kr, monkeypatch, 1.0)
    with pytest.raises(SystemExit):
        kr.main(["--coverage", str(SAMPLE), "--workdir", str(tmp_path), "--config", "other.yaml",
                 "--flow", HEADER["flow"], "--out", str(tmp_path / "o.json")])  # fmt: skip
    assert f"--config: other.yaml is not the outputs' {HEADER['config']}" in capsys.readouterr().err


def test_spread_follows_data_side_recipe(kr, monkeypatch):
    """``_spread`` hands ``coverage.kinematic_spread`` what ``coverage.data_side`` does: the
    worker's replicas and geometry, the run's extrapolation and fiducial region, each mass,
    the cτ as an array, the samples and the realisation's seed + 1."""
    import numpy as np

    import gammastar.corrections.pair_acceptance as pa
    import gammastar.reach.stage as gr
    import gammastar.yields.extrapolation as ge

    calls = []
    monkeypatch.setattr(
        gr, "load_yields", lambda path: SimpleNamespace(extrapolation={"fiducial": "F"})
    )
    monkeypatch.setattr(ge.Extrapolation, "from_dict", staticmethod(lambda d: "EX"))
    monkeypatch.setattr(pa.FiducialRegion, "from_dict", staticmethod(lambda d: f"FR({d})"))
    monkeypatch.setattr(kr.coverage, "fiducial_yield_at", lambda path, masses: {0.9: 1.0})

    def spread(replicas, extrap, fiducial, m, ctaus, geo, samples, seed):
        calls.append((replicas, extrap, fiducial, m, ctaus, geo, samples, seed))
        return np.asarray(ctaus) * m

    monkeypatch.setattr(kr.coverage, "kinematic_spread", spread)
    monkeypatch.setitem(kr._WORKER, "replicas", "R")
    monkeypatch.setitem(kr._WORKER, "geo", "G")
    seed, parts, y = kr._spread((1640, "/runs/full_seed1640", [0.9], [1.0, 100.0], 40000))
    assert seed == 1640
    assert y == pytest.approx({0.9: 1.0}, rel=1e-15)  # the stub's, passed through
    ((replicas, extrap, fiducial, m, ctaus, geo, samples, s),) = calls
    assert (replicas, extrap, fiducial, geo, samples, s) == ("R", "EX", "FR(F)", "G", 40000,
                                                             1641)  # fmt: skip
    assert m == pytest.approx(0.9, rel=1e-15)  # the job's mass, passed through
    assert isinstance(ctaus, np.ndarray)
    assert parts == pytest.approx({(0.9, 1.0): 0.9, (0.9, 100.0): 90.0}, rel=1e-12)
