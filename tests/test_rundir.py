"""The run-directory object (gammastar.core.rundir): one table of artifact names,
every JSON artifact checked against its versioned schema on write and on read, a clear error
naming the file and the failing key for an invalid or unknown-version artifact, and typed
readers that give back what was written."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import uproot

from gammastar import pipeline
from gammastar.config import config_from_dict
from gammastar.core import rundir
from gammastar.core.artifacts import SCHEMA_VERSION
from gammastar.core.rundir import ARTIFACTS, RunDir
from gammastar.errors import ArtifactError, GammastarError

REPO = Path(__file__).resolve().parents[1]

# a small mock run (test_e2e's TINY without flow and reach): generate → select → yields in a
# few seconds; 30000 generated sources give ~1000 selected pairs (the combinatorial rate from a
# pilot of 2·10⁴ events per class: the tests read the artifacts' form, not their numbers)
SMALL = {
    "name": "small",
    "seed": 5,
    "mock": {"events": 30000, "combinatorial": {"pilot_events": 20_000}},
    "input": {"files": ["${output}/mock.root"]},
    "unfold": {
        "efficiency_map": str(REPO / "data" / "efficiency_na60_like.root"),
        "outside_map": "nearest",
    },
}


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("rundir") / "run"
    cfg = config_from_dict({**SMALL, "output": str(out)}, source=str(out.parent / "c.yaml"))
    # the stages without their figures and the yields without their comparison curves (most
    # of their time): these tests read the artifacts' form; a whole run's figures and its
    # yields.json with the curves: tests/test_e2e.py::test_run_and_rerun
    from gammastar.yields.stage import compute_yields

    def yields_numbers(config):
        return compute_yields(config, force=True, plots=False, theory=False)

    stages = tuple(
        dataclasses.replace(s, func=yields_numbers) if s.name == "yields" else s
        for s in pipeline.STAGES
    )

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("gammastar.mock.plots.plot_file", lambda *a, **k: None)
        mp.setattr(pipeline, "STAGES", stages)
        pipeline.run(cfg, only=["generate", "select", "yields"], echo=lambda s: None, report=False)
    return cfg


def _copy_run(cfg, tmp_path: Path):
    """A copy of the small run that a test may damage (the config pointed at it)."""
    dst = tmp_path / "run"
    shutil.copytree(cfg.output_dir, dst)
    return cfg.model_copy(update={"output": str(dst)}), RunDir(dst)


# --------------------------------------------------------------------------- the table
def test_pipeline_and_stages_take_their_outputs_from_the_table() -> None:
    """pipeline.STAGES, reach.OUTPUTS, select/yields OUTPUT_FILES: all from ARTIFACTS (so that
    every stage's outputs, acceptance.npz included, are tracked by the pipeline)."""
    from gammastar.reach import stage as reach
    from gammastar.selection import outputs as select
    from gammastar.yields import stage as yields

    for stage in pipeline.STAGES:
        assert stage.outputs == rundir.stage_outputs(stage.name), stage.name
    assert rundir.stage_outputs("select") == select.OUTPUT_FILES
    assert select.OUTPUT_FILES[-1] == rundir.SELECT  # the mark of a finished set, renamed last
    assert rundir.stage_outputs("yields") == yields.OUTPUT_FILES
    assert set(rundir.stage_outputs("reach")) <= set(reach.OUTPUTS)
    assert rundir.ACCEPTANCE in rundir.stage_outputs("reach")
    assert rundir.stage_outputs("reach")[-1] == rundir.REACH
    # the public contract names (docs/reference/outputs.md)
    for name in ("pairs.parquet", "histograms.root", "yields.json", "flow/model.pt",
                 "flow/meta.json", "validation.json", "reach.json"):  # fmt: skip
        assert name in ARTIFACTS, name


def test_every_schema_is_a_valid_draft7_schema_with_its_file() -> None:
    folder = rundir.SCHEMA_DIR / str(SCHEMA_VERSION)
    named = {a.schema for a in ARTIFACTS.values() if a.schema} | set(
        rundir.SCHEMA_OF_PATTERN.values()
    )
    for name in named | {"defs.json"}:
        schema = json.loads((folder / name).read_text())
        jsonschema.Draft7Validator.check_schema(schema)
        assert schema["$id"].endswith(f"/schemas/{SCHEMA_VERSION}/{name}")
    assert {p.name for p in folder.glob("*.json")} == named | {"defs.json"}  # none unused


# --------------------------------------------------------------------------- a run validates
def test_every_artifact_of_a_small_run_validates(small_run) -> None:
    rd = RunDir.of(small_run)
    checked = rd.check()
    for name in (rundir.SELECT, rundir.HISTOGRAMS, rundir.YIELDS, rundir.state_name("yields")):
        assert name in checked, name
    desc = rd.check_histograms()
    assert desc["meta"]["schema_version"] == SCHEMA_VERSION  # select writes it now
    assert len(desc["mass_axes"]) == 1  # the six contract histograms share one mass axis
    assert desc["phase_space"] == "detector_acceptance"  # no acceptance map in SMALL


# --------------------------------------------------------------------------- round trips
def test_json_round_trip(small_run, tmp_path: Path) -> None:
    src = RunDir.of(small_run)
    dst = RunDir(tmp_path / "copy")
    for name in (rundir.SELECT, rundir.YIELDS, rundir.state_name("select")):
        doc = src.read_json(name)
        dst.write_json(name, doc)
        assert dst.read_json(name) == doc, name


def test_histograms_and_pairs_readers(small_run) -> None:
    """read_histograms gives select's histograms; their sums are select.json's counts
    (os_m holds one entry per OS pair, integers: exact); read_pairs gives the table."""
    rd = RunDir.of(small_run)
    counts = rd.read_json(rundir.SELECT)["counts"]
    # a mock run assumes nothing (meta.assumed: outside the mock only, tests/test_own_data.py)
    assert "assumed" not in rd.read_json(rundir.SELECT)["meta"]
    hists = rd.read_histograms(["os_m", "pp_m", "mm_m", "unfolded_m"])
    for key in ("os", "pp", "mm"):
        assert hists[f"{key}_m"].values(flow=True).sum() == counts[key], key
    pairs = rd.read_pairs()
    assert (pairs["charge"] == 0).sum() == counts["os"]
    assert set(rundir.PAIRS_COLUMNS) <= set(pairs.columns)
    # Σ weight = the unfolded yield (DEVELOPERS.md weight convention); both sums run over
    # ~1e3 float64 terms of O(10): relative tolerance 1e-12 ≫ 1e3 · 2.2e-16
    np.testing.assert_allclose(
        pairs["weight"].sum(), hists["unfolded_m"].values(flow=True).sum(), rtol=1e-12
    )


def test_acceptance_reader(tmp_path: Path) -> None:
    rd = RunDir(tmp_path)
    mass, eps = np.linspace(0.3, 1.0, 4), np.geomspace(1e-6, 1e-3, 5)
    acc = np.outer(mass, eps)
    np.savez(rd.path(rundir.ACCEPTANCE), mass=mass, eps=eps, acceptance=acc, nsig=2 * acc)
    got = rd.read_acceptance()
    np.testing.assert_array_equal(got["acceptance"], acc)  # npz stores the bytes: exact
    np.savez(rd.path(rundir.ACCEPTANCE), mass=mass, eps=eps, acceptance=acc.T, nsig=acc)
    with pytest.raises(ArtifactError, match=r"acceptance.npz: .* at 'acceptance': shape"):
        rd.read_acceptance()


# --------------------------------------------------------------------------- refusals
def test_unknown_schema_version_is_refused_by_the_next_stage(small_run, tmp_path: Path) -> None:
    from gammastar.yields.stage import compute_yields

    cfg, rd = _copy_run(small_run, tmp_path)
    doc = json.loads(rd.path(rundir.SELECT).read_text())
    doc["meta"]["schema_version"] = 2
    rd.path(rundir.SELECT).write_text(json.dumps(doc))
    with pytest.raises(ArtifactError) as err:
        compute_yields(cfg, force=True, plots=False, theory=False)
    msg = str(err.value)
    assert msg.startswith(f"{rd.path(rundir.SELECT)}: unknown schema version 2")
    assert "'meta.schema_version'" in msg
    assert "\n" not in msg


def test_invalid_select_json_names_the_key(small_run, tmp_path: Path) -> None:
    from gammastar.cli import main

    _cfg, rd = _copy_run(small_run, tmp_path)
    doc = json.loads(rd.path(rundir.SELECT).read_text())
    doc["counts"]["os"] = "many"
    rd.path(rundir.SELECT).write_text(json.dumps(doc))
    with pytest.raises(ArtifactError, match=r"select.json: invalid select.json .* at 'counts.os'"):
        rd.read_json(rundir.SELECT)
    # through the command line: one line, exit status 2 (a bad input)
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text(json.dumps({**SMALL, "output": str(rd.root)}))
    assert main(["yields", str(cfg_file), "--no-plots", "--force"]) == 2


def test_broken_histograms_root_names_the_object(small_run, tmp_path: Path) -> None:
    from gammastar.yields.stage import compute_yields

    cfg, rd = _copy_run(small_run, tmp_path)
    with uproot.open(rd.path(rundir.HISTOGRAMS)) as f:
        hists = {k: f[k].to_hist() for k in ("os_m", "pp_m", "mm_m", "signal_m", "unfolded_m")}
        meta = json.loads(str(f["meta"]))
    with uproot.recreate(rd.path(rundir.HISTOGRAMS)) as f:  # comb_m dropped
        for k, h in hists.items():
            f[k] = h
    with pytest.raises(ArtifactError, match=r"histograms.root: .* at 'objects.comb_m'"):
        compute_yields(cfg, force=True, plots=False, theory=False)
    with uproot.recreate(rd.path(rundir.HISTOGRAMS)) as f:  # a rebinned comb_m
        for k, h in hists.items():
            f[k] = h
        f["comb_m"] = hists["os_m"][::2j]
    with pytest.raises(ArtifactError, match=r"histograms.root: .* at 'mass_axes'"):
        rd.check_histograms()
    with uproot.recreate(rd.path(rundir.HISTOGRAMS)) as f:  # a future schema version
        for k, h in hists.items():
            f[k] = h
        f["comb_m"] = hists["os_m"]
        f["meta"] = json.dumps({**meta, "schema_version": 7})
    with pytest.raises(ArtifactError, match="unknown schema version 7"):
        rd.read_histograms()


def test_invalid_yields_json_is_refused_by_the_reach(small_run, tmp_path: Path) -> None:
    from gammastar.source.production import load_yields

    _, rd = _copy_run(small_run, tmp_path)
    doc = json.loads(rd.path(rundir.YIELDS).read_text())
    doc["aprime"]["stat_err"] = "0.1"
    rd.path(rundir.YIELDS).write_text(json.dumps(doc))
    with pytest.raises(ArtifactError, match=r"yields.json: .* at 'aprime.stat_err'"):
        load_yields(rd.path(rundir.YIELDS))
    del doc["meta"]["n_pot"]
    doc["aprime"]["stat_err"] = doc["aprime"]["per_pot_per_eps2"]
    rd.path(rundir.YIELDS).write_text(json.dumps(doc))
    with pytest.raises(ArtifactError, match=r"at 'meta.n_pot': 'n_pot' is a required"):
        load_yields(rd.path(rundir.YIELDS))


def test_an_invalid_document_is_never_written(tmp_path: Path) -> None:
    rd = RunDir(tmp_path)
    meta = {"gammastar_version": "x", "config_sha256": None, "seed": None, "schema_version": 1}
    band = {"mass": [0.5], "eps_low": [None], "eps_high": [None]}
    bands = dict.fromkeys(("-2", "-1", "+1", "+2"), band)
    bad = {"cl": 1.5, "expected": band, "bands": bands, "meta": meta}  # a CL above 1
    with pytest.raises(ArtifactError, match=r"reach.json: invalid reach.json .* at 'cl'"):
        rd.write_json(rundir.REACH, bad)
    assert not rd.path(rundir.REACH).exists()
    assert list(tmp_path.iterdir()) == []  # no temporary either


def test_state_file_of_unknown_version_reruns_the_stage(small_run, tmp_path: Path) -> None:
    cfg, rd = _copy_run(small_run, tmp_path)
    stage = next(s for s in pipeline.STAGES if s.name == "yields")
    state = json.loads(rd.path(rundir.state_name("yields")).read_text())
    rd.path(rundir.state_name("yields")).write_text(json.dumps({**state, "schema_version": 9}))
    fresh, why = pipeline.is_up_to_date(cfg, stage)
    assert not fresh
    assert "unknown schema version 9" in why


def test_flow_meta_of_unknown_version_is_refused(tmp_path: Path) -> None:
    """flow.load checks flow/meta.json against its schema after format and checksum."""
    from gammastar.core.artifacts import make_meta, sha256_file
    from gammastar.flow.model import MODEL_FORMAT, MODEL_FORMAT_VERSION, load

    d = tmp_path / "flow"
    d.mkdir()
    (d / rundir.MODEL_FILE).write_bytes(b"weights")
    info = {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "architecture": {},
        "preprocessing": {},
        "mass_range": [0.2, 1.0],
        "model_sha256": sha256_file(d / rundir.MODEL_FILE),
        "meta": {**make_meta(config_sha256=None, seed=1), "schema_version": 3},
    }
    (d / rundir.MODEL_META_FILE).write_text(json.dumps(info))
    with pytest.raises(GammastarError, match=r"meta.json: unknown schema version 3"):
        load(d)


def test_report_warns_about_an_invalid_artifact(small_run, tmp_path: Path) -> None:
    """The report shows what it can and names the schema failure (it never fails)."""
    from gammastar.report import build_report

    cfg, rd = _copy_run(small_run, tmp_path)
    page = build_report(cfg, force=True).path.read_text()
    assert "invalid select.json" not in page
    doc = json.loads(rd.path(rundir.SELECT).read_text())
    doc["counts"]["pp"] = -3
    rd.path(rundir.SELECT).write_text(json.dumps(doc))
    page = build_report(cfg, force=True).path.read_text()
    assert "select.json: invalid select.json (schema version 1) at &#x27;counts.pp&#x27;" in page


# --------------------------------------------------------------------------- quiet reads
def test_read_optional_absent_corrupt_and_invalid(small_run, tmp_path: Path) -> None:
    """The readers of whatever a run holds (report, run summary): an absent artifact is
    ``None``, a corrupt one one error line naming the file, an invalid one (or one of an
    unknown schema version) an error unless the reader asks to see it as far as it goes."""
    _cfg, rd = _copy_run(small_run, tmp_path)
    assert rd.read_optional(rundir.REACH) is None  # not run
    assert rd.read_optional(rundir.SELECT) == rd.read_json(rundir.SELECT)

    doc = rd.read_json(rundir.SELECT)
    doc["counts"]["pp"] = -3  # a count below 0: breaks select.json's schema
    rd.path(rundir.SELECT).write_text(json.dumps(doc))
    with pytest.raises(ArtifactError, match=r"select.json \(schema version 1\) at 'counts.pp'"):
        rd.read_optional(rundir.SELECT)
    seen: list[ArtifactError] = []
    assert rd.read_optional(rundir.SELECT, invalid=seen.append)["counts"]["pp"] == -3
    assert len(seen) == 1
    assert "counts.pp" in str(seen[0])

    doc["meta"]["schema_version"] = 99  # a version this gammastar does not read
    rd.path(rundir.SELECT).write_text(json.dumps(doc))
    with pytest.raises(ArtifactError, match="unknown schema version 99"):
        rd.read_optional(rundir.SELECT)
    assert rd.read_optional(rundir.SELECT, invalid=seen.append)["meta"]["schema_version"] == 99
    assert "unknown schema version 99" in str(seen[-1])

    rd.path(rundir.SELECT).write_text("[1, 2]")  # JSON, but not an object: nothing to show
    with pytest.raises(ArtifactError, match="a JSON object expected"):
        rd.read_optional(rundir.SELECT, invalid=seen.append)

    rd.path(rundir.YIELDS).write_text('{"aprime": [1, 2')  # cut short
    with pytest.raises(GammastarError) as err:
        rd.read_optional(rundir.YIELDS, invalid=seen.append)
    message = str(err.value)
    assert message.startswith(f"{rd.path(rundir.YIELDS)}: not a readable JSON")
    assert "\n" not in message


def test_read_root_meta(small_run, tmp_path: Path) -> None:
    """mock.root's meta as the generator wrote it; a file without one is one line naming it."""
    from gammastar.mock.generate import read_meta

    rd = RunDir.of(small_run)
    assert rd.read_root_meta(rundir.MOCK) == read_meta(rd.path(rundir.MOCK))
    empty = RunDir(tmp_path)
    with pytest.raises(GammastarError, match=r"mock.root: mock.root not found"):
        empty.read_root_meta(rundir.MOCK)
    with uproot.recreate(empty.path(rundir.MOCK)) as f:
        f["other"] = "no meta here"
    with pytest.raises(GammastarError) as err:
        empty.read_root_meta(rundir.MOCK)
    assert str(err.value).startswith(f"{empty.path(rundir.MOCK)}: cannot read its meta JSON")
    assert "\n" not in str(err.value)
