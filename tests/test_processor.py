"""The selection's chunk processor: picklable, one chunk loop, the same histograms on every
executor, and dask imported only for the Dask executor."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import awkward as ak
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import uproot
from _experiment import stated_config, stated_yaml
from _select_data import write_effmap, write_mock
from _tolerance import EPS64, reorder_tol

from gammastar.errors import ChunkError, InputError
from gammastar.selection.cuts import Cuts
from gammastar.selection.executors import Execution
from gammastar.selection.executors.processor import ChunkReader, DileptonProcessor
from gammastar.selection.executors.sink import Counts, PairChunks
from gammastar.selection.stage import select
from gammastar.selection.weights.pairs import WeightSpec


def _cfg(tmp_path, files, out):
    write_effmap(tmp_path / "eff.root", np.random.default_rng(0).uniform(0.3, 0.9, (20, 10)))
    return stated_config(
        {
            "output": str(tmp_path / out),
            "input": {"files": [str(f) for f in files], "step_size": 60},
            "unfold": {"efficiency_map": str(tmp_path / "eff.root")},
        },
        source=str(tmp_path / "c.yaml"),
    )


def test_processor_is_picklable_and_stateless():
    proc = DileptonProcessor(ChunkReader("jagged_cartesian", {"px": "muon_px"}, 0.105), Cuts())
    clone = pickle.loads(pickle.dumps(proc))
    assert clone.reader == proc.reader
    assert clone.cuts == proc.cuts


def test_accumulators_merge():
    a = PairChunks({("f", 0): {"m": np.array([1.0])}})
    b = PairChunks({("f", 10): {"m": np.array([2.0, 3.0])}})
    assert len(a + b) == 3
    with pytest.raises(ValueError, match="twice"):
        a += a
    c = Counts(os=1, pp=2) + Counts(os=3)
    assert c == {"os": 4, "pp": 2}


def test_executors_give_identical_histograms(tmp_path):
    """iterative, futures (1 process) and Dask (LocalCluster, 2 workers) over 2 files in
    60-entry chunks, chunk-local weights (η→μμ truth; the default ss_weight binwise: SS
    weights multiplied by the mass bin's like-sign factor on the driver): the
    parallel executors' workers write pairs.parquet/ as one part per chunk; the same rows
    (dataset and table), histograms bin for bin and report numbers; Σ weight = the unfolded histogram."""
    # futures: one worker process, each a fresh interpreter that takes seconds to start; the
    # chunks crossing the process boundary as with several, and Dask's two workers finishing
    # chunks out of order (the fold in key order)
    runs = _run_all(tmp_path, _two_files(tmp_path), "local", ("iterative", "futures", "dask"))
    ref = runs["iterative"][0]
    assert ref.cutflow["events"] == 7 * 50
    assert ref.counts["os"] == 3 * 50
    _assert_same(runs)
    res = runs["futures"][0]
    df = pd.read_parquet(res.files["pairs.parquet"])
    # the workers' dataset: one part per chunk with pairs (2 files in 60-entry chunks)
    parts = sorted(p.name for p in res.files["pairs.parquet"].iterdir())
    assert len(parts) > 1
    assert all(p.startswith("part-") for p in parts)
    assert sum(pq.ParquetFile(res.files["pairs.parquet"] / p).metadata.num_rows
               for p in parts) == len(df)  # fmt: skip
    assert df["weight"].sum() == pytest.approx(res.histograms["unfolded_m"].values(flow=True).sum())
    assert res.counts["os"] == (df["charge"] == 0).sum()


def _corrupt_middle_basket(path):
    """Overwrite the compressed bytes of a middle basket of ``muon_px`` (first and last
    entries stay readable, so only reading that chunk fails)."""
    with uproot.open(path) as f:
        br = f["events"]["muon_px"]
        seeks = br.member("fBasketSeek")[: br.num_baskets]
        i = br.num_baskets // 2
        key_len = br.basket_key(i).fKeylen
        pos = int(seeks[i]) + key_len + 9  # past the key and the compression header
    with open(path, "r+b") as fh:
        fh.seek(pos)
        fh.write(b"\xff" * 64)


@pytest.mark.slow  # ~9 s; the damaged-basket tests of test_reliability stay in the default suite
def test_bad_file_during_processing(tmp_path):
    """A file damaged in the middle passes the up-front probe but fails while its chunk is
    read: named in the error; with skip_bad_files skipped and reported."""
    good = tmp_path / "good.root"
    write_mock(good, 5)
    bad = tmp_path / "bad.root"
    with uproot.recreate(bad) as f:  # 6 baskets of 7·10 events
        for k in range(6):
            tmp = tmp_path / f"part{k}.root"
            write_mock(tmp, 10, event_offset=100 * k, with_truth=False)
            with uproot.open(tmp) as g:
                data = g["events"].arrays(
                    [
                        "event",
                        "muon_px",
                        "muon_py",
                        "muon_pz",
                        "muon_E",
                        "muon_charge",
                        "truth_channel",
                    ]
                )
            cols = {
                "event": data["event"],
                "muon": ak.zip({c: data[f"muon_{c}"] for c in ("px", "py", "pz", "E", "charge")}),
                "truth_channel": data["truth_channel"],
            }
            if k == 0:
                f.mktree("events", {c: v.type for c, v in cols.items()})
            f["events"].extend(cols)
    _corrupt_middle_basket(bad)
    cfg = stated_config(
        {
            "output": str(tmp_path / "r"),
            "input": {"files": [str(good), str(bad)], "step_size": 70},
            "unfold": {"efficiency_map": None},
            "background": {"remove_eta_mumu": "none"},
        },
        source=str(tmp_path / "c.yaml"),
    )
    # one futures worker: the error crosses the process boundary as with several, and each
    # worker is a fresh interpreter (loky) that takes seconds to start
    for executor in ("iterative", "futures"):
        with pytest.raises(InputError, match=r"bad\.root: failed while reading"):
            select(cfg, execution=Execution(executor, workers=1), force=True)
    assert not (tmp_path / "r" / "pairs.parquet").exists()
    res = select(cfg, skip_bad_files=True)
    assert str(bad) in res.bad_files
    assert res.cutflow["events"] == 7 * 5
    # the parallel path starts its pairs.parquet over without the bad file
    par = select(
        cfg, execution=Execution("dask", dask_processes=False), skip_bad_files=True, force=True
    )
    assert set(par.bad_files) == {str(bad)}
    # the damaged zlib header, in the words of the inflater (python-isal: gammastar.core.inflate)
    assert "zlib wrapper specifies unsupported compress method" in par.bad_files[str(bad)]
    assert pd.read_parquet(par.files["pairs.parquet"]).equals(res.pairs)
    assert _staging_dirs(tmp_path / "r") == []
    # the reason reads the same whichever executor met the error (a worker process: the
    # pool's exception; Dask: the task's)
    fut = select(cfg, execution=Execution("futures", workers=1), skip_bad_files=True, force=True)
    assert fut.bad_files == res.bad_files == par.bad_files
    # selection.plausibility.read_failure's words: codec, branch, the damaged basket's entries
    # (the middle one of six 70-entry baskets) and the reader's error
    assert res.bad_files[str(bad)].startswith(
        "unreadable ZLIB basket in branch 'muon_px', entries 210-280 (IsalError: Error -5 "
    )


def test_dask_scheduler_address(tmp_path):
    """``--scheduler ADDRESS`` points the same run at a running cluster (here a local one)."""
    from distributed import LocalCluster

    write_mock(tmp_path / "a.root", 10)
    cfg = _cfg(tmp_path, [tmp_path / "a.root"], "sched")
    # the scheduler's HTTP server on a free port: a dashboard running on this machine (8787)
    # must not fail the test
    with LocalCluster(n_workers=1, processes=False, dashboard_address=None,
                      scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"}
                      ) as cluster:  # fmt: skip
        res = select(cfg, execution=Execution("dask", scheduler=cluster.scheduler_address))
    assert res.counts["os"] == 3 * 10
    assert res.meta["scheduler"] == cluster.scheduler_address


def _write_accmap(path, values, m_edges, pt_edges):
    """An acceptance map TH2D ``acceptance`` with its ``acceptance_generated`` counts."""
    import hist

    with uproot.recreate(path) as f:
        for name, vals in (
            ("acceptance", values),
            ("acceptance_generated", np.full_like(values, 100.0)),
        ):
            h = hist.Hist(
                hist.axis.Variable(m_edges),
                hist.axis.Variable(pt_edges),
                storage=hist.storage.Double(),
            )
            h.view()[...] = vals
            f[name] = h


def _staging_dirs(outdir):
    return sorted(p.name for p in outdir.glob(".gammastar-parts-*")) if outdir.exists() else []


def _run_all(tmp_path, files, tag, executors=("iterative", "dask"), **over):
    """select() on each executor (Dask: threads; futures, a process pool, only where asked:
    it takes seconds to start) with the same config; the results and the parsed select.json
    of each."""
    runs = {}
    for ex in executors:
        cfg = _cfg(tmp_path, files, f"{tag}_{ex}")
        if over:
            cfg = cfg.model_copy(
                update={k: getattr(cfg, k).model_copy(update=v) for k, v in over.items()}
            )
        workers = 1 if ex == "futures" else 2
        res = select(cfg, execution=Execution(ex, workers=workers, dask_processes=False))
        assert _staging_dirs(cfg.output_dir) == [], ex  # the staging directory is removed
        runs[ex] = (res, json.loads((cfg.output_dir / "select.json").read_text()))
    return runs


def _assert_same(runs):
    """The same pairs.parquet rows, histograms bin for bin, and report numbers.

    Bit for bit on purpose (an exception to the tolerance rule, tests/_tolerance.py): every
    executor processes the same chunks (same boundaries, each chunk's arithmetic on one thread)
    and the driver folds them in key order (gammastar.selection.executors.sink.ChunkSink), so the same IEEE
    operations run in the same order; only which thread runs a chunk differs. A difference
    here is a fold-order or chunking bug, not rounding."""
    ref, ref_doc = runs["iterative"]
    ref_file = pd.read_parquet(ref.files["pairs.parquet"])
    assert ref_file.equals(ref.pairs)
    for ex, (res, doc) in runs.items():
        got = pd.read_parquet(res.files["pairs.parquet"])
        assert list(got.columns) == list(ref_file.columns), ex
        assert got.equals(ref_file), ex
        assert res.pairs.equals(ref.pairs), ex
        assert res.cutflow == ref.cutflow, ex
        for key in ("counts", "cutflow", "unfold", "eta_mumu"):
            assert doc[key] == ref_doc[key], (ex, key)
        for name, h in ref.histograms.items():
            assert np.array_equal(res.histograms[name].values(flow=True), h.values(flow=True)), name
            assert np.array_equal(
                res.histograms[name].variances(flow=True), h.variances(flow=True)
            ), name


def _two_files(tmp_path):
    files = [tmp_path / "a.root", tmp_path / "b.root"]
    write_mock(files[0], 30)
    write_mock(files[1], 20, event_offset=10_000)
    return files


def test_executors_same_with_acceptance_map(tmp_path):
    """1/(A ε) per chunk, with pairs below min_acceptance and outside the map (nearest): the
    acceptance report (counts, lost fractions) is the same on every executor, and the lost
    fraction equals the one computed on the whole pairs table."""
    from gammastar.corrections.unfold.acceptance import lost_fraction_from_pairs

    files = _two_files(tmp_path)
    # OS pairs at (0.5, 0) in a bin with A = 0.005 < min_acceptance; (0.85, 0.43) outside
    m_edges, pt_edges = np.array([0.3, 0.55, 0.8]), np.array([0.0, 0.5, 1.0])
    _write_accmap(tmp_path / "acc.root", np.array([[0.005, 0.5], [0.3, 0.6]]), m_edges, pt_edges)
    runs = _run_all(
        tmp_path,
        files,
        "acc",
        unfold={
            "acceptance_map": f"{tmp_path / 'acc.root'}:acceptance",
            "outside_map": "nearest",
            "min_acceptance": 0.01,
        },
    )
    _assert_same(runs)
    acc = runs["iterative"][1]["unfold"]["acceptance"]
    assert acc["n_below_min_acceptance"] > 0
    assert acc["n_outside_map"] > 0
    assert acc["lost_fraction_estimate_map"] is not None
    df = runs["dask"][0].pairs
    below = df["acc"] < 0.01
    kept = df.loc[~below, "weight"].to_numpy()
    lost = (df["weight_raw"] / df["eff"] * np.where(df["charge"] == 0, 1.0, -1.0) / df["acc"])[
        below
    ].to_numpy()
    f, err = lost_fraction_from_pairs(kept, lost)
    assert acc["lost_fraction_estimate_pairs"] == pytest.approx(f, rel=1e-12)
    assert acc["lost_fraction_estimate_pairs_err"] == pytest.approx(err, rel=1e-12)
    assert 0 < f < 1


@pytest.mark.parametrize(
    "over",
    [
        # binwise, the default: on every executor in test_executors_give_identical_histograms,
        # its SS weights against comb_m in the mixed case (binwise weights, R from mixing)
        pytest.param({"background": {"ss_weight": "binwise"}}, marks=pytest.mark.slow),
        # rate (with binwise SS weights) on iterative and Dask, bit for bit:
        # tests/test_scaleout.py::test_pair_dataset_same_on_every_executor
        pytest.param({"background": {"remove_eta_mumu": "rate"}}, marks=pytest.mark.slow),
        {"background": {"r_factor": "mixed", "mixing_pool": "all"}},
    ],
    ids=["binwise", "rate", "mixed"],
)
def test_global_weight_modes_on_every_executor(tmp_path, over):
    """ss_weight binwise (the default), R from mixed events and η→μμ rate need the whole
    sample: the second pass multiplies binwise/mixed SS weights by the mass bin's factor and
    every rate weight by its bin's scale (each part of the workers' dataset rewritten on the
    workers, the chunks in memory in one process); the same result
    on every executor (mixed pairs: ε weights quantised, exact sums); the SS weights
    reproduce comb_m."""
    runs = _run_all(tmp_path, _two_files(tmp_path), "glob", **over)
    _assert_same(runs)
    res = runs["dask"][0]
    if "r_factor" in over["background"]:
        assert all(res.histograms[f"mix_{c}_m"].values().sum() > 0 for c in ("os", "pp", "mm"))
    if "remove_eta_mumu" not in over.get("background", {}):
        df = res.pairs
        ss = df[df.charge != 0]
        edges = res.histograms["comb_m"].axes[0].edges
        w = np.histogram(ss["m"], bins=edges, weights=-ss["weight"] * ss["eff"])[0]
        assert np.allclose(w, res.histograms["comb_m"].values())


@pytest.mark.parametrize("ss_weight", ["binwise", "constant"])
def test_driver_and_chunk_weights_agree(tmp_path, monkeypatch, ss_weight):
    """The two weighting paths of select: per chunk (WeightSpec, gammastar.selection.weights.pairs.weight_chunk;
    binwise SS weights rescaled by k_b in the second pass) and on the whole table in the driver
    (the path of a measured λ_θ, forced here by WeightSpec.from_config returning None) go through
    the one per-pair function gammastar.selection.weights.pairs.pair_weights: the same acc and weight per pair,
    and the same acceptance report (below-min and outside-map pairs included), with
    ``remove_eta_mumu: none`` so that the rate reweighting does not enter."""
    files = _two_files(tmp_path)
    m_edges, pt_edges = np.array([0.3, 0.55, 0.8]), np.array([0.0, 0.5, 1.0])
    _write_accmap(tmp_path / "acc.root", np.array([[0.005, 0.5], [0.3, 0.6]]), m_edges, pt_edges)
    over = {
        "unfold": {
            "acceptance_map": f"{tmp_path / 'acc.root'}:acceptance",
            "outside_map": "nearest",
            "min_acceptance": 0.01,
        },
        # R = 1.3: the SS factor (−R, or k_b = 2R√(N++N−−)/(N++ + N−−)) is not −1
        "background": {"ss_weight": ss_weight, "remove_eta_mumu": "none", "r_factor": 1.3},
    }
    chunks = _run_all(tmp_path, files, "chunks", ("iterative",), **over)["iterative"]
    monkeypatch.setattr(WeightSpec, "from_config", classmethod(lambda cls, cfg, am=None: None))
    driver = _run_all(tmp_path, files, "driver", ("iterative",), **over)["iterative"]
    a, b = chunks[0].pairs, driver[0].pairs
    assert list(a.columns) == list(b.columns)
    assert a.drop(columns=["acc", "weight"]).equals(b.drop(columns=["acc", "weight"]))
    assert np.array_equal(a["acc"].to_numpy(), b["acc"].to_numpy())  # the same map lookup
    # weight = 1 · 1/ε · 1/A · s: 3 products, each rounded (≤ u = eps/2), and the binwise k_b
    # applied as (x · −1) · k vs x · (−k): ≤ 4 roundings per weight, so ≤ 4 eps relative
    wa, wb = a["weight"].to_numpy(), b["weight"].to_numpy()
    assert np.all(np.abs(wa - wb) <= 4 * EPS64 * np.abs(wa))
    ss = a["charge"].to_numpy() != 0
    assert np.all(wa[ss] <= 0)
    nominal = 1.0 / (a["eff"].to_numpy() * a["acc"].to_numpy())
    assert not np.allclose(-wa[ss & (wa < 0)], nominal[ss & (wa < 0)])  # a factor ≠ 1 applied
    assert (wa == 0).any()  # pairs below min_acceptance
    ra, rb = chunks[1]["unfold"]["acceptance"], driver[1]["unfold"]["acceptance"]
    assert ra["n_below_min_acceptance"] > 0
    assert ra["n_outside_map"] > 0
    # the lost fraction: ratios of sums of the same n terms, summed per chunk then added vs
    # over the table: each sum within n · eps · Σ|w| of the other (tests/_tolerance.py), a
    # ratio of two within twice that relative to |Σw|
    # ratio of two within twice that relative to |Σw|. binwise: the chunks' sums take SS
    # pairs at −1, not −k_b (docs/explanation/method.md "Where the weights are computed"): counts only
    rel = 2 * reorder_tol(len(wa), np.abs(wa).sum(), EPS64) / abs(wa.sum())
    for key, val in ra.items():
        if isinstance(val, float) and key.startswith("lost_fraction_estimate_pairs"):
            if ss_weight == "constant":
                assert rb[key] == pytest.approx(val, rel=rel), key
        else:
            assert rb[key] == val, key


# the same fallback on Dask (the parts back as bytes, written by the driver; the same parts, no
# staging left): tests/test_pairs_url.py::test_dataset_at_a_file_url_is_the_run_directory_one
@pytest.mark.slow
def test_no_shared_filesystem_fallback(tmp_path):
    """shared_staging=False (workers that cannot see the staging directory): the parts come
    back through the executor as bytes; the same pairs.parquet."""
    files = _two_files(tmp_path)
    ref = select(_cfg(tmp_path, files, "ref"))
    cfg = _cfg(tmp_path, files, "noshare")
    res = select(
        cfg, execution=Execution("dask", workers=2, dask_processes=False, shared_staging=False)
    )
    assert _staging_dirs(cfg.output_dir) == []
    assert pd.read_parquet(res.files["pairs.parquet"]).equals(ref.pairs)


def test_staging_removed_and_nothing_written_on_error(tmp_path):
    """An error after the parts were streamed (pairs outside the efficiency map, default
    outside_map: error) leaves no pairs.parquet and no staging directory."""
    files = _two_files(tmp_path)
    cfg = _cfg(tmp_path, files, "err")
    write_effmap(
        tmp_path / "small.root",
        np.full((2, 2), 0.5),
        np.array([0.0, 0.4, 0.5]),
        np.array([0.0, 5.0, 10.0]),
    )
    cfg = cfg.model_copy(
        update={
            "unfold": cfg.unfold.model_copy(update={"efficiency_map": str(tmp_path / "small.root")})
        }
    )
    for ex in ("dask",):  # (futures: the same streaming path, in processes)
        with pytest.raises(InputError, match="outside the efficiency map"):
            select(cfg, execution=Execution(ex, workers=2, dask_processes=False))
        assert not (cfg.output_dir / "pairs.parquet").exists()
        assert _staging_dirs(cfg.output_dir) == []
        assert [p.name for p in cfg.output_dir.iterdir()] == []


def test_chunking_uses_this_run_s_entry_counts(tmp_path, monkeypatch):
    """The chunks are made from the entries that the input check read: no file is opened
    again for its count (in this process: one open per file, its chunks read in order from
    one iteration), and a file rewritten with more entries between two runs in one Python
    session is read in full on every executor (no process-wide cache of entry counts)."""

    path = tmp_path / "m.root"
    write_mock(path, 10)
    cfg = _cfg(tmp_path, [path], "r")
    assert select(cfg).cutflow["events"] == 7 * 10
    write_mock(path, 30)  # same name, three times the events
    opened = []
    import gammastar.io

    open_tree = gammastar.io.open_tree
    monkeypatch.setattr(gammastar.io, "open_tree", lambda p, t: opened.append(p) or open_tree(p, t))
    res = select(cfg, force=True)
    assert res.cutflow["events"] == 7 * 30
    assert res.counts["os"] == 3 * 30
    # 210 entries in chunks of 60: round(3.5) = 4 chunks (chunk_items' rule), all four from
    # the one open of the file that reads them (processor._SequentialReads), and the input
    # check's one (gammastar.io.check_inputs: the entry counts the chunks come from)
    assert len(opened) == 1 + 1
    dask = select(cfg, execution=Execution("dask", workers=1, dask_processes=False), force=True)
    assert dask.cutflow["events"] == 7 * 30


@pytest.mark.parametrize("chunksize", [1, 7, 60, 500_000])
def test_chunks_cover_every_entry_once(chunksize):
    """chunk_items: a file of n entries in chunks of ⌈n / k⌉ entries, k = max(round(n /
    chunksize), 1) (the last one shorter), consecutive and covering [0, n) once; an empty
    file one empty chunk. Every executor runs these chunks, which the bit-for-bit
    comparisons above rest on."""
    from gammastar.selection.executors.processor import chunk_items

    sizes = [0, 1, 6, 7, 59, 60, 89, 90, 91, 150, 210, 1_249_999, 1_250_000, 2_060_000]
    sizes = [n for n in sizes if n <= 1000 * chunksize]  # up to a thousand chunks a file
    fileset = {"d": {"files": {f"f{n}.root": "events" for n in sizes}}}
    items = chunk_items(fileset, {f"f{n}.root": n for n in sizes}, chunksize)
    for n in sizes:
        mine = [(i.entrystart, i.entrystop) for i in items if i.filename == f"f{n}.root"]
        if n == 0:
            assert mine == [(0, 0)]
            continue
        k = max(round(n / chunksize), 1)
        size = -(-n // k)
        assert mine == [(a, min(n, a + size)) for a in range(0, n, size)]
        assert sum(b - a for a, b in mine) == n  # every entry once


def test_selection_imports_no_dask():
    """Importing the selection (its stage and processor) loads no dask: it is imported only
    when the Dask executor is asked for; nor the libraries only the chunks
    use (vector, pandas), which a driver whose chunks run on workers never needs: they come
    with load_chunk_code, in the processes that run chunks. vector comes without SymPy (its
    symbolic backend, which the chunks never use), and no stand-in for SymPy is left behind
    (``sys.modules`` holds no ``sympy`` entry: a later ``import sympy`` loads it as usual)."""
    code = (
        "import sys\n"
        "import gammastar.selection.stage, gammastar.selection.executors.processor\n"
        "from gammastar.selection.chunk import load_chunk_code\n"
        "chunk = ('vector', 'pandas', 'pyarrow.parquet')\n"
        "print(sorted(m for m in ('dask', 'distributed') + chunk if m in sys.modules))\n"
        "load_chunk_code()\n"
        "print(all(m in sys.modules for m in chunk), 'sympy' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert res.stdout.strip().splitlines()[-2:] == ["[]", "True False"]


def test_dask_tasks_are_opaque_bytes():
    """A Dask task of the selection is a builtin applied to the function (scattered once, to
    every worker: short tasks are not drawn to one worker holding it) and the item's bytes (the scheduler reads the graph without importing the selection's
    libraries); an error in the function reaches the caller as itself (the file and
    ChunkError handling read it)."""
    import operator

    from gammastar.selection.executors import dask_cluster as dask_run

    class Client:  # what opaque_map asks of a distributed.Client
        scattered = 0

        def scatter(self, data, hash, broadcast=False):
            assert broadcast
            self.scattered += 1
            return data

        def map(self, fn, shared, blobs, key, pure, **kwargs):
            assert fn is operator.call
            assert not pure
            assert len(set(key)) == len(key)
            assert all(isinstance(b, bytes) for b in blobs)
            return [fn(s, b) for s, b in zip(shared, blobs, strict=True)]

    client = Client()
    assert dask_run.opaque_map(client, sum, [(7, 2), (9, 4)], name="t") == [9, 13]
    assert client.scattered == 1
    with pytest.raises(ChunkError, match=r"f\.root, entries 0-5"):
        dask_run.opaque_map(Client(), _raise_chunk_error, ["f.root, entries 0-5"], name="t")


def _raise_chunk_error(msg):
    raise ChunkError(msg)


def test_failure_after_reading_is_not_a_bad_file(tmp_path, monkeypatch):
    """A chunk that was read but fails afterwards (here a full disk while writing its part)
    stops the run, naming file and entries, even with skip_bad_files: it is not the input's
    fault, and skipping the file would silently drop good data."""
    import gammastar.selection.executors.processor as gp

    path = tmp_path / "m.root"
    write_mock(path, 10)
    cfg = _cfg(tmp_path, [path], "r")

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(gp, "weight_chunk", full_disk)
    with pytest.raises(ChunkError, match=r"m\.root, entries 0-\d+: .*No space left") as exc:
        select(cfg, skip_bad_files=True)
    assert "OSError" in str(exc.value)
    assert not (tmp_path / "r" / "pairs.parquet").exists()


def test_chunk_errors_travel_from_a_worker_process():
    """A chunk's errors reach the driver from a worker process (the pool's, a Dask worker's)
    pickled: a file's BadChunk and a ChunkError come back as themselves, with their words, so
    that a bad file is dropped or reported by name and a failure after reading stops the
    run."""
    import pickle

    from gammastar.selection.executors.processor import BadChunk

    bad = pickle.loads(pickle.dumps(BadChunk("/d/a.root", "unreadable ZLIB basket")))
    assert type(bad) is BadChunk
    assert (bad.path, bad.reason) == ("/d/a.root", "unreadable ZLIB basket")
    inner = ChunkError("/d/a.root, entries 0-70: the chunk was read but failed afterwards")
    back = pickle.loads(pickle.dumps(inner))
    assert type(back) is ChunkError
    assert str(back) == str(inner)


def test_chunk_error_on_the_command_line(tmp_path, monkeypatch, capsys):
    """The command line prints a chunk failure on one line (exit 1), no traceback."""
    import gammastar.selection.executors.processor as gp
    from gammastar.cli import main

    path = tmp_path / "m.root"
    write_mock(path, 10)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        stated_yaml(
            f"output: {tmp_path / 'r'}\ninput: {{files: [{path}]}}\nunfold: {{efficiency_map: null}}\n"
        )
    )

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(gp, "weight_chunk", full_disk)
    monkeypatch.delenv("GAMMASTAR_DEBUG", raising=False)
    assert main(["select", str(cfg)]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    err = [ln for ln in lines if not ln.startswith("assumed: ")]  # the choices left out first
    assert len(err) == 1
    assert "m.root, entries 0-" in err[0]
    assert "No space left on device" in err[0]


def test_pair_rows_are_ak_combinations():
    """The pairing's lepton rows (selection.chunk._pair_rows, numpy) are those of
    ak.combinations over the events' leptons, in its order, for events of 0 to 6 leptons."""
    from gammastar.selection.chunk import _pair_rows

    counts = np.random.default_rng(3).integers(0, 7, 500)
    rows = ak.unflatten(np.arange(counts.sum()), counts)
    ref = ak.combinations(rows, 2)
    ia, ib = _pair_rows(counts, counts * (counts - 1) // 2)
    assert ia.tolist() == ak.flatten(ref["0"]).tolist()
    assert ib.tolist() == ak.flatten(ref["1"]).tolist()


@pytest.mark.parametrize("counts", [[2] * 50, [3, 1, 1, 1] * 10, [2, 0, 2, 1, 2] * 10])
def test_pairs_of_two_lepton_events_are_the_gathered_pairs(counts):
    """_make_pairs takes the leptons of events that all hold two as the even and odd rows (no
    gather): the pairs' leptons and columns are those of the rows of _pair_rows (the same
    values, compared exactly), also where the lepton and pair counts alone would allow it
    (3 + 1 + 1 + 1 leptons: 3 pairs of 6 leptons) but the events do not hold two each."""
    from gammastar.selection.chunk import _make_pairs, _pair_rows, _take

    counts = np.array(counts)
    rng = np.random.default_rng(5)
    n = int(counts.sum())
    lep = {k: rng.normal(size=n) for k in "xyz"}
    lep["t"] = np.sqrt(lep["x"] ** 2 + lep["y"] ** 2 + lep["z"] ** 2 + 0.1057**2)
    lep["charge"] = rng.choice([-1, 1], n).astype(np.int32)
    npairs = counts * (counts - 1) // 2
    p = _make_pairs(lep, counts, np.arange(counts.size), np.zeros(counts.size, np.int8), {})
    ia, ib = _pair_rows(counts, npairs)
    for got, rows in ((p.a, ia), (p.b, ib)):
        ref = _take(lep, rows)
        for k in lep:  # the leptons' values, copied: exactly the gathered ones
            np.testing.assert_array_equal(got[k], ref[k])
    a, b = _take(lep, ia), _take(lep, ib)
    # E and pz: one addition of the same two doubles each, one rounding (tests/_tolerance.py)
    for got, x, y in ((p.energy, a["t"], b["t"]), (p.pz, a["z"], b["z"])):
        assert np.all(np.abs(got - (x + y)) <= reorder_tol(1, 1.0, EPS64) * (abs(x) + abs(y)))
    np.testing.assert_array_equal(p.qa, a["charge"])  # integers
    np.testing.assert_array_equal(p.charge, (a["charge"] + b["charge"]).astype(np.int8))
    assert p.qa.flags.c_contiguous


def test_sequential_reads_are_the_chunk_reads(tmp_path, monkeypatch):
    """Inside ``sequential_reads`` each file's chunks, read in order, come from one uproot
    iteration: the same arrays as each chunk's own read (also for the shorter last chunk,
    and for a chunk out of order, read by an iteration from it), and a basket that straddles
    two chunks is decompressed once instead of once per chunk."""
    import gammastar.selection.executors.processor as gp
    from gammastar.core.inflate import zlib_decompressor

    path = tmp_path / "b.root"
    rng = np.random.default_rng(1)
    with uproot.recreate(path, compression=uproot.ZLIB(1)) as f:
        f.mktree("events", {"event": np.int64, "muon_px": "var * float32",
                            "muon_charge": "var * int32"})  # fmt: skip
        for b in range(5):  # five baskets of 50 entries
            n = rng.integers(0, 4, 50)
            px = ak.unflatten(rng.normal(size=int(n.sum())).astype(np.float32), n)
            q = ak.unflatten(rng.choice([-1, 1], int(n.sum())).astype(np.int32), n)
            f["events"].extend({"event": np.arange(50 * b, 50 * b + 50), "muon_px": px,
                                "muon_charge": q})  # fmt: skip
    reader = ChunkReader("jagged_cartesian", {"event": "event", "px": "muon_px",
                                              "charge": "muon_charge"}, 0.105)  # fmt: skip
    # 250 entries in chunks of 70: 4 chunks of 63 (the last 61), most straddling a basket
    items = gp.chunk_items({"d": {"files": {str(path): "events"}}}, {str(path): 250}, 70)
    assert [i.entrystop - i.entrystart for i in items] == [63, 63, 63, 61]
    calls = []
    # uproot's ZLIB baskets: one call of its decompressor per basket read (whichever library
    # inflates them)
    dec = zlib_decompressor()
    decompress = dec.decompress
    monkeypatch.setattr(dec, "decompress", lambda *a, **k: calls.append(1) or decompress(*a, **k))
    plain = [reader.read_item(i) for i in items]
    n_plain = len(calls)
    calls.clear()
    with gp.sequential_reads():
        seq = [reader.read_item(i) for i in items]
        again = reader.read_item(items[1])  # out of order: an iteration from it
    # 3 branches × 5 baskets, each once; the plain reads decompress the 3 baskets that
    # straddle the chunk boundaries (entries 63, 126, 189) twice for every branch
    assert len(calls) == 15 + 3 * 2  # + items[1] again: its 2 baskets of each branch
    assert n_plain == 15 + 3 * 3
    for a, b in zip(plain, seq, strict=True):
        assert a.keys() == b.keys()
        for k in a:
            assert ak.to_list(a[k]) == ak.to_list(b[k])
    assert all(ak.to_list(again[k]) == ak.to_list(plain[1][k]) for k in again)
    assert gp._SEQUENTIAL[0] is None  # closed with the block


def test_a_preloaded_dask_worker_has_what_the_tasks_need():
    """A worker that preloads gammastar.selection.executors.dask_cluster (dask_setup) imports
    nothing more when it receives the selection's tasks than the processor's own module (it
    uses dask_cluster: naming it there would be an import cycle; everything it imports is
    preloaded): the chunk task, the input check's probe, the steps on the held chunks and the
    per-pair acceptance they carry (pickled by reference here, as the tasks are), so that no
    worker pays the heavy imports in its first task."""
    from gammastar.corrections.pair_acceptance.table import PairAcceptance
    from gammastar.selection import onworkers
    from gammastar.selection.executors.processor import run_item
    from gammastar.selection.flavour_check import precision_probe

    refs = [run_item, precision_probe, onworkers.prepare_counted, onworkers.final_written,
            onworkers.newton_pass, onworkers.part_state, PairAcceptance]  # fmt: skip
    code = (
        "import pickle, sys\n"
        "from gammastar.selection.executors.dask_cluster import dask_setup\n"
        "dask_setup(None)\n"
        "before = set(sys.modules)\n"
        "pickle.loads(sys.stdin.buffer.read())\n"
        "print(sorted(set(sys.modules) - before))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], input=pickle.dumps(refs),
                         capture_output=True, check=True)  # fmt: skip
    assert out.stdout.decode().strip() == "['gammastar.selection.executors.processor']"


def test_the_sinks_meanwhile_runs_once_while_the_chunks_run():
    """ChunkSink(meanwhile=job) runs the job once, as the first fold starts: on a parallel
    executor the chunks are submitted by then (the driver's own work overlaps them: the job
    sees a chunk running); a retry's fold does not run it again."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from gammastar.selection.executors.processor import LocalExecutor, WorkItem
    from gammastar.selection.executors.sink import ChunkSink, Counts, PairChunks

    started, release, ran = threading.Event(), threading.Event(), []

    def task(item):
        started.set()
        assert release.wait(10)  # until the job ran
        return {"out": {"cutflow": Counts(events=1),
                        "pairs": PairChunks({(item.filename, item.entrystart): {}})}}  # fmt: skip

    def job():
        ran.append(started.wait(10))  # a chunk has started (else: False after 10 s)
        release.set()

    items = [WorkItem("d", "f.root", "events", a, a + 5) for a in (0, 5, 10)]
    with ThreadPoolExecutor(2) as pool:
        exe = LocalExecutor("futures", 2, pool)
        exe.sink = ChunkSink(meanwhile=job)
        assert exe(items, task)["cutflow"] == {"events": 3}
        assert exe(items, task)["cutflow"] == {"events": 3}  # a second fold: no second job
    assert ran == [True]


def test_the_driver_loads_uproot_beside_the_workers_checks():
    """The selection's modules import no ROOT reader (uproot, awkward: about 0.4 s of a
    command's start-up); on a parallel executor select() imports uproot in a thread while the
    workers check the files (_load_readers) where it reads a ROOT map next (here an
    acceptance map), not where it reads none (no map, or the efficiency map cached: uproot
    is loaded while the chunks run); on the iterative one the first file opened does."""
    code = (
        "import sys, threading\n"
        "from types import SimpleNamespace as NS\n"
        "from concurrent.futures import ThreadPoolExecutor\n"
        "import gammastar.selection.stage as st\n"
        "from gammastar.selection.executors.processor import LocalExecutor\n"
        "print('uproot' in sys.modules, 'awkward' in sys.modules)\n"
        "maps = NS(unfold=NS(acceptance_map='acc.root:acceptance', efficiency_map=None))\n"
        "none = NS(unfold=NS(acceptance_map=None, efficiency_map=None))\n"
        "st._load_readers(LocalExecutor(), maps)\n"
        "names = lambda: [t.name for t in threading.enumerate() if t.name.startswith('gammastar')]\n"
        "print(names())\n"
        "with ThreadPoolExecutor(1) as pool:\n"
        "    st._load_readers(LocalExecutor('futures', 1, pool), none)\n"
        "    print(names(), 'uproot' in sys.modules)\n"
        "    st._load_readers(LocalExecutor('futures', 1, pool), maps)\n"
        "    for t in threading.enumerate():\n"
        "        if t.name == 'gammastar-load-readers':\n"
        "            t.join(120)\n"
        "print('uproot' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)
    assert out.stdout.decode().split("\n")[:4] == ["False False", "[]", "[] False", "True"]
