"""The coffea processor: picklable, and the same histograms on every executor (issue 3)."""

from __future__ import annotations

import pickle

import awkward as ak
import numpy as np
import pytest
import uproot
from _select_data import write_effmap, write_mock

from gammastar.config import config_from_dict
from gammastar.errors import InputError
from gammastar.processor import Counts, DileptonProcessor, PairChunks
from gammastar.select import Cuts, select


def _cfg(tmp_path, files, out):
    write_effmap(tmp_path / "eff.root", np.random.default_rng(0).uniform(0.3, 0.9, (20, 10)))
    return config_from_dict(
        {
            "output": str(tmp_path / out),
            "input": {"files": [str(f) for f in files], "step_size": 60},
            "unfold": {"efficiency_map": str(tmp_path / "eff.root")},
        },
        source=str(tmp_path / "c.yaml"),
    )


def test_processor_is_picklable_and_stateless():
    proc = DileptonProcessor("jagged_cartesian", {"px": "muon_px"}, Cuts(), 0.105)
    clone = pickle.loads(pickle.dumps(proc))
    assert clone.columns == proc.columns
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
    """iterative, futures (2 processes) and Dask (LocalCluster, 2 workers) over 2 files in
    60-entry chunks: the same pairs table and histograms, bin for bin."""
    files = [tmp_path / "a.root", tmp_path / "b.root"]
    write_mock(files[0], 30)
    write_mock(files[1], 20, event_offset=10_000)
    runs = {}
    for ex in ("iterative", "futures", "dask"):
        cfg = _cfg(tmp_path, files, ex)
        runs[ex] = select(cfg, executor=ex, workers=2, dask_processes=False)
    ref = runs["iterative"]
    assert ref.cutflow["events"] == 7 * 50
    assert ref.counts["os"] == 3 * 50
    for ex in ("futures", "dask"):
        res = runs[ex]
        assert res.cutflow == ref.cutflow
        assert res.pairs.equals(ref.pairs)
        assert set(res.histograms) == set(ref.histograms)
        for name, h in ref.histograms.items():
            assert np.array_equal(res.histograms[name].values(flow=True), h.values(flow=True)), name
            assert np.array_equal(
                res.histograms[name].variances(flow=True), h.variances(flow=True)
            ), name


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
    cfg = config_from_dict(
        {
            "output": str(tmp_path / "r"),
            "input": {"files": [str(good), str(bad)], "step_size": 70},
            "unfold": {"efficiency_map": None},
            "background": {"remove_eta_mumu": "none"},
        },
        source=str(tmp_path / "c.yaml"),
    )
    for executor in ("iterative", "futures"):
        with pytest.raises(InputError, match=r"bad\.root: failed while reading"):
            select(cfg, executor=executor, force=True)
    assert not (tmp_path / "r" / "pairs.parquet").exists()
    res = select(cfg, skip_bad_files=True)
    assert str(bad) in res.bad_files
    assert res.cutflow["events"] == 7 * 5


def test_dask_scheduler_address(tmp_path):
    """``--scheduler ADDRESS`` points the same run at a running cluster (here a local one)."""
    from distributed import LocalCluster

    write_mock(tmp_path / "a.root", 10)
    cfg = _cfg(tmp_path, [tmp_path / "a.root"], "sched")
    with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        res = select(cfg, executor="dask", scheduler=cluster.scheduler_address)
    assert res.counts["os"] == 3 * 10
    assert res.meta["scheduler"] == cluster.scheduler_address
