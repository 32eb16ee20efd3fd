"""The distributed selection writes its pairs on the workers: ``pairs.parquet/`` is a dataset of
one part per chunk, the driver receives only histograms, counts and per-bin sums, and the
factors of the whole sample (binwise k_b, η → μμ ``rate``) come from a second pass."""

from __future__ import annotations

import json
import pickle

import awkward as ak
import numpy as np
import pandas as pd
import pyarrow.dataset as pads
import pytest
from _experiment import stated_config
from _select_data import write_effmap, write_mock
from _tolerance import EPS64, reorder_tol

from gammastar.core import rundir
from gammastar.core.runlock import TEMP_PATTERNS
from gammastar.errors import ArtifactError
from gammastar.selection.executors import Execution, sink
from gammastar.selection.stage import select
from gammastar.selection.weights.pairs import WeightSpec
from gammastar.selection.writer import file_numbers, part_name

# binwise like-sign factors and the η → μμ rate scale: both factors of the second pass. The
# test ntuple (tests/_select_data.py) has no pair below 0.45 GeV: the window around its
# m = 0.5 pairs stands for the η Dalitz continuum, so that a peak is predicted at m_η
# (where its η → μμ pairs are) and the scale is below 1 there
GLOBAL = {"ss_weight": "binwise", "remove_eta_mumu": "rate", "r_factor": 1.3,
          "eta_dalitz_window": [0.45, 0.52]}  # fmt: skip


def _cfg(tmp_path, files, out, step=60, background=GLOBAL, unfold=None):
    write_effmap(tmp_path / "eff.root", np.random.default_rng(0).uniform(0.3, 0.9, (20, 10)))
    return stated_config(
        {
            "output": str(tmp_path / out),
            "input": {"files": [str(f) for f in files], "step_size": step},
            "unfold": {"efficiency_map": str(tmp_path / "eff.root"), **(unfold or {})},
            "background": dict(background),
        },
        source=str(tmp_path / "c.yaml"),
    )


def _write_files(directory):
    out = [directory / "b.root", directory / "a.root"]  # listed out of order on purpose
    write_mock(out[0], 30)
    write_mock(out[1], 20, event_offset=10_000)
    return out


@pytest.fixture
def files(tmp_path):
    return _write_files(tmp_path)


def _run(tmp_path, files, tag, executor, **kw):
    cfg = _cfg(tmp_path, files, f"{tag}_{executor}", **kw)
    res = select(cfg, execution=Execution(executor, workers=2, dask_processes=False))
    return res, json.loads((cfg.output_dir / "select.json").read_text())


@pytest.fixture(scope="module")
def global_runs(tmp_path_factory):
    """The GLOBAL settings' iterative and Dask runs on files of their own, made once and only
    read by the tests that share them (a test's further runs: their own output names in the
    same directory)."""
    directory = tmp_path_factory.mktemp("global")
    files = _write_files(directory)
    return directory, files, {ex: _run(directory, files, "all", ex) for ex in ("iterative", "dask")}


@pytest.mark.parametrize(
    "executor",
    ["dask", pytest.param("futures", marks=pytest.mark.slow)],  # futures: ~5 s more
)
def test_pair_dataset_same_on_every_executor(global_runs, executor):
    """iterative (one file) and futures or Dask (a dataset directory, one part per chunk named by
    file and first entry) with both second-pass factors: the same rows in the same order, the
    same histograms and report numbers, bit for bit. Exact on purpose (tests/_tolerance.py's
    exception): every executor runs the same chunks through the same code, and the driver adds
    the chunks' results in (file, entry) order; only which process runs a chunk differs."""
    directory, files, shared = global_runs
    runs = {ex: shared[ex] if ex in shared else _run(directory, files, "all", ex)
            for ex in ("iterative", executor)}  # fmt: skip
    ref, ref_doc = runs["iterative"]
    assert ref.files[rundir.PAIRS].is_file()
    table = pd.read_parquet(ref.files[rundir.PAIRS])
    numbers = file_numbers(str(f) for f in files)
    for ex in (executor,):
        res, doc = runs[ex]
        path = res.files[rundir.PAIRS]
        assert path.is_dir(), ex
        names = sorted(p.name for p in path.iterdir())
        # one part per chunk, named by its file's number (sorted paths) and first entry
        starts: dict[int, list[int]] = {}
        for name in names:
            fno, start = (int(x) for x in name.removeprefix("part-").split(".")[0].split("-"))
            assert name == part_name(fno, start), ex
            starts.setdefault(fno, []).append(start)
        assert set(starts) == set(numbers.values()), ex
        assert all(len(v) >= 2 and v[0] == 0 for v in starts.values()), ex  # 60-entry chunks
        got = pd.read_parquet(path)
        assert got.equals(table), ex
        assert res.pairs.equals(ref.pairs), ex
        for key in ("counts", "cutflow", "unfold", "eta_mumu", "background"):
            assert doc[key] == ref_doc[key], (ex, key)
        for name, h in ref.histograms.items():
            assert np.array_equal(res.histograms[name].view(flow=True),
                                  h.view(flow=True)), (ex, name)  # fmt: skip
    # the rate removal took something out, and the weights carry it: Σ weight = unfolded_m
    eta = ref_doc["eta_mumu"]
    assert eta["mode"] == "rate"
    assert eta["n_eta_mumu_removed"] > 0
    w = table["weight"].to_numpy()
    # Σ of n weights in two orders (table vs histogram fills per chunk): n · eps · Σ|w|
    assert w.sum() == pytest.approx(
        ref.histograms["unfolded_m"].values(flow=True).sum(),
        abs=reorder_tol(len(w), np.abs(w).sum(), EPS64),
    )


def test_second_pass_matches_the_whole_table_path(global_runs, monkeypatch):
    """The second pass (chunk weights × the bin's k_b × the rate scale, per chunk, on the
    workers) against the driver's whole-table weighting (forced by WeightSpec.from_config
    returning None: the path of a measured λ_θ): the same pairs, weights equal to the float
    precision. Each side's weight before the scale, w_k, is 1/ε · 1/A · s, ≤ 3 roundings, with
    k_b applied as (x·(−1))·k against x·(−k) (exact); the scale s_b = 1 − peak/unf_b differs
    through unf_b, a Σ of the bin's n_b weights in two orders (per chunk, then added, against
    np.histogram on the table): |Δunf_b| ≤ n_b · eps · Σ_b|w_k| (tests/_tolerance.py), so
    |Δs_b| ≤ (peak/unf_b)·|Δunf_b|/unf_b ≤ |Δunf_b|/|unf_b| where s_b > 0. Per pair:
    |Δw| ≤ |w_k| · (|Δunf_b|/|unf_b| + 8 eps)."""

    directory, files, shared = global_runs
    chunks, _ = shared["dask"]
    unscaled, _ = _run(directory, files, "unscaled", "iterative",
                       background={**GLOBAL, "remove_eta_mumu": "none"})  # fmt: skip
    monkeypatch.setattr(WeightSpec, "from_config", classmethod(lambda cls, cfg, am=None: None))
    table, _ = _run(directory, files, "table", "iterative")
    a, b = chunks.pairs, table.pairs
    assert a.drop(columns=["weight"]).equals(b.drop(columns=["weight"]))
    wa, wb = a["weight"].to_numpy(), b["weight"].to_numpy()
    wk, m = unscaled.pairs["weight"].to_numpy(), unscaled.pairs["m"].to_numpy()
    edges = table.histograms["unfolded_m"].axes[0].edges
    unf = np.histogram(m, bins=edges, weights=wk)[0]
    n_b = np.histogram(m, bins=edges)[0]
    d_unf = reorder_tol(n_b, np.histogram(m, bins=edges, weights=np.abs(wk))[0], EPS64)
    idx = np.clip(np.searchsorted(edges, m, side="right") - 1, 0, len(edges) - 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(unf != 0, d_unf / np.abs(unf), 0.0)[idx]
    assert np.all(np.abs(wa - wb) <= np.abs(wk) * (rel + 8 * EPS64))
    assert not np.array_equal(wa, wk)  # the rate scale took something out
    assert np.all(wa[a["charge"].to_numpy() != 0] <= 0)  # SS weights: −k_b/(A ε)


def test_driver_receives_no_pair_arrays(tmp_path, files, monkeypatch):
    """What each chunk sends the driver (pickled, before its compression) does not grow with
    the chunk's pairs on the parallel executors: histograms, counts and sums only (the part's
    name, not its rows); in one process the in-memory chunks hold the columns and do grow
    (the measure's check)."""
    sizes: dict[str, list[tuple[int, int]]] = {}
    add = sink.ChunkSink.add

    def spy(self, wrapped):
        out = wrapped["out"]
        if "packed" in out:  # compressed on the way (writer.Packed): measured unpacked
            sent = len(pickle.dumps(out))
            out = out["packed"].unpack()
            assert sent < len(pickle.dumps(out)) / 5  # mostly empty histogram bins
        pairs = out.get("pairs")
        rows = len(pairs) if pairs is not None else 0
        sizes.setdefault(tag, []).append((rows, len(pickle.dumps(out))))
        return add(self, wrapped)

    monkeypatch.setattr(sink.ChunkSink, "add", spy)
    runs = {"small": ("dask", 30), "large": ("dask", 210),
            "memory": ("iterative", 30), "memory_large": ("iterative", 210)}  # fmt: skip
    for tag, (ex, step) in runs.items():
        _run(tmp_path, files, tag, ex, step=step, background={"ss_weight": "binwise"})
    rows = {k: max(r for r, _ in v) for k, v in sizes.items()}
    size = {k: max(s for _, s in v) for k, v in sizes.items()}
    assert rows["large"] >= 4 * rows["small"]  # chunks of 7x the entries
    # the same histograms and counters whatever the rows (a few bytes of integers more)
    assert size["large"] <= size["small"] + 256, size
    # in memory: ≥ 8 bytes per pair and column (float64, int64) more
    assert size["memory_large"] - size["memory"] > 8 * (rows["memory_large"] - rows["memory"])


def test_every_reader_reads_the_dataset_directory(global_runs):
    """pairs.parquet/ from a parallel run reads as the one table through RunDir.read_pairs (the
    package's readers: yields, flow, mcp), pandas, pyarrow.dataset and awkward; the contract
    check names a missing column on a directory; a rerun with another executor replaces the
    directory by a file and back, leaving nothing hidden behind."""
    directory, files, shared = global_runs
    par, _ = shared["dask"]
    ref, _ = shared["iterative"]
    path = par.files[rundir.PAIRS]
    rd = rundir.RunDir(path.parent)
    assert rd.read_pairs().equals(ref.pairs)
    assert rd.read_pairs(["m", "weight"]).equals(ref.pairs[["m", "weight"]])
    with pytest.raises(ArtifactError, match="'nonesuch': column missing"):
        rd.read_pairs(require=["nonesuch"])
    assert pads.dataset(path, format="parquet").to_table().to_pandas().equals(ref.pairs)
    arr = ak.from_parquet(path)
    assert np.array_equal(ak.to_numpy(arr["weight"]), ref.pairs["weight"].to_numpy())
    # the other way round: a single-process rerun into the same directory, then a parallel one
    cfg = _cfg(directory, files, "rd_dask")
    again = select(cfg, force=True)
    assert again.files[rundir.PAIRS].is_file()
    assert pd.read_parquet(again.files[rundir.PAIRS]).equals(ref.pairs)
    back = select(cfg, execution=Execution("dask", workers=2, dask_processes=False), force=True)
    assert back.files[rundir.PAIRS].is_dir()
    left = [p.name for p in cfg.output_dir.iterdir()
            if any(pat.match(p.name) for pat in TEMP_PATTERNS)]  # fmt: skip
    assert left == []


@pytest.mark.slow  # the per-pair acceptance's tables: minutes on a loaded machine
def test_fiducial_selection_reads_its_angles_from_the_dataset(tmp_path, files):
    """A fiducial selection (per-lepton acceptance, fixed λ_θ) on Dask: the polarisation block,
    measured by the workers from their pairs.parquet/ parts, is the single-process one: counts
    and edges equal, n_eff = (Σw)²/Σw² to the roundings of its sums over the ≤ 150 pairs in
    another order (this small sample has no bin with enough pairs for a fit: λ null)."""
    over = {"lepton_acceptance": {"min_energy": 3.0, "theta_min": 0.0, "theta_max": 0.3},
            "decay_lambda_theta": 0.0, "min_acceptance": 0.01}  # fmt: skip
    docs = {}
    for ex in ("iterative", "dask"):
        cfg = _cfg(tmp_path, files, f"fid_{ex}", background={"ss_weight": "binwise"}, unfold=over)
        res = select(cfg, execution=Execution(ex, workers=2, dask_processes=False))
        docs[ex] = json.loads((cfg.output_dir / "select.json").read_text())
        assert res.meta["phase_space"] == "fiducial"
    assert docs["dask"]["polarisation"] is not None
    p1, p0 = docs["dask"]["polarisation"], docs["iterative"]["polarisation"]
    assert {k: v for k, v in p1.items() if k != "n_eff"} == {
        k: v for k, v in p0.items() if k != "n_eff"
    }
    assert np.allclose(p1["n_eff"], p0["n_eff"], rtol=reorder_tol(4 * 150, 1.0, EPS64), atol=0)
    assert docs["dask"]["unfold"] == docs["iterative"]["unfold"]
