"""``unfold.decay_lambda_theta: measured`` and the fiducial polarisation on Dask and on the
process pool (``futures``) with the pairs left on the workers (``gammastar.selection.onworkers``):
the same results as the whole table's path on the driver, which such a run no longer takes;
the polarisation bins from the OS masses' 1 MeV histogram equal those of the masses themselves
(the one rule, ``gammastar.selection.polarisation.BinRule``). Input: a small NA60-like mock
(the shipped config).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import uproot
from _tolerance import EPS64, reorder_tol

from gammastar.config import load_config
from gammastar.corrections.polarisation import MIN_PAIRS
from gammastar.corrections.polarisation.edges import peak_safe_edges, polarisation_edges
from gammastar.selection import onworkers
from gammastar.selection import stage as sel
from gammastar.selection.executors import Execution
from gammastar.selection.weights import apply as weighting

REPO = Path(__file__).resolve().parents[1]
SOURCES = 300_000  # ≈ 1.1e4 selected pairs: every polarisation bin has ≥ MIN_PAIRS OS pairs
CHUNK = 4_000  # entries per chunk: several chunks, so the chunk sums differ in order
# The λ fit (tests/test_select_onepass.py FIT_TOL): two fits of the same pairs whose sums differ
# by their order only end within the roundings of the score's sum over a bin's ~1.4e3 pairs
FIT_TOL = 1e-10
# Per pair the same formulas on the same values (elementwise); the weights move with the
# fitted λ through 1/A: |∂ln A/∂λ| = |⟨c²a⟩/(⟨a⟩ + λ⟨c²a⟩) − ⟨c²⟩/(1 + λ⟨c²⟩)| ≤ 2/(1 + λ)
# (⟨c²a⟩ ≤ ⟨a⟩, ⟨c²⟩ ≤ 1), ≤ 4 for the mock's |λ| < 0.5
WEIGHT_REL = 4 * FIT_TOL + reorder_tol(20, 1.0, EPS64)
# The errors and n_eff: ratios of sums over ~10⁵ pairs added in another order (chunks, then
# workers), evaluated at λ equal to FIT_TOL: ten times the λ tolerance covers both
SUMS_REL = 10 * FIT_TOL
# A polarisation edge from the workers' 1 MeV histogram against np.quantile of the masses:
# the same interpolation of the same order statistics, within a few roundings of the masses
# (≤ 1.2 GeV)
EDGE_ATOL = reorder_tol(4, 1.2, EPS64)
# A chunk's sum in the pool against the same sum here: at most 70 values below 2.2, in
# another order at worst
SUM_RTOL = reorder_tol(70, 1.0, EPS64)


@pytest.fixture(scope="module")
def mock(tmp_path_factory):
    from gammastar.mock.generate import generate_file

    d = tmp_path_factory.mktemp("onworkers")
    cfg = load_config(REPO / "analysis" / "na60_like.yaml")
    generate_file(cfg, d / "mock.root", events=SOURCES, seed=5)
    return d / "mock.root"


def _cfg(tmp_path, **background):
    cfg = load_config(REPO / "analysis" / "na60_like.yaml")  # decay_lambda_theta: measured
    return cfg.model_copy(
        update={
            "output": str(tmp_path),
            "background": cfg.background.model_copy(update=background),
        }
    )


def _close(a, b, tol, what):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, what
    assert np.array_equal(np.isnan(a), np.isnan(b)), what
    ok = ~np.isnan(a)
    assert np.all(np.abs(a[ok] - b[ok]) <= np.broadcast_to(tol, a.shape)[ok]), (
        what, np.max(np.abs(a[ok] - b[ok])))  # fmt: skip


def _parallel(executor):
    """Two workers: Dask's (threads: no process start) or the process pool's."""
    if executor == "dask":
        return Execution("dask", workers=2, dask_processes=False, chunksize=CHUNK)
    return Execution("futures", workers=2, chunksize=CHUNK)


@pytest.mark.parametrize(
    ("executor", "background"),
    [
        ("dask", {}),
        ("futures", {}),
        pytest.param(
            "dask", {"ss_weight": "binwise", "remove_eta_mumu": "rate"}, marks=pytest.mark.slow
        ),
        pytest.param(
            "futures", {"ss_weight": "binwise", "remove_eta_mumu": "rate"}, marks=pytest.mark.slow
        ),
    ],
)
def test_measured_lambda_on_workers_equals_the_table(
    tmp_path, mock, monkeypatch, executor, background
):
    table = sel.select(_cfg(tmp_path / "table", **background), [mock],
                       execution=Execution(chunksize=CHUNK))  # fmt: skip

    def driver_side(*a, **k):
        raise AssertionError(f"the {executor} run fitted lambda_theta on the driver's table")

    monkeypatch.setattr(weighting, "_measured_acceptance", driver_side)
    dask = sel.select(_cfg(tmp_path / executor, **background), [mock],
                      execution=_parallel(executor))  # fmt: skip
    d1 = json.loads((dask.output_dir / "select.json").read_text())
    d0 = json.loads((table.output_dir / "select.json").read_text())
    p1, p0 = d1["polarisation"], d0["polarisation"]
    # the same edges (1 MeV multiples, both from the same masses' quantiles) and counts
    assert p1["mass_edges"] == p0["mass_edges"]
    assert p1["n_pairs"] == p0["n_pairs"]
    assert p1["used_in_acceptance"] is True
    for k in ("lambda_theta", "lambda_phi", "lambda_theta_phi"):
        _close(p1[k], p0[k], FIT_TOL, k)
        # the errors: ratios of the same sums in another order
        _close(p1[f"{k}_err"], p0[f"{k}_err"], SUMS_REL * np.nanmax(p0[f"{k}_err"]), k)
    _close(p1["n_eff"], p0["n_eff"], SUMS_REL * np.max(p0["n_eff"]), "n_eff")
    a = pd.read_parquet(dask.files["pairs.parquet"])
    b = pd.read_parquet(table.files["pairs.parquet"])
    assert list(a.columns) == list(b.columns)
    assert len(a) == len(b) > 5_000
    for c in a.columns:  # the parts in chunk order: the table's rows
        x = b[c].to_numpy()
        if a[c].dtype.kind in "iub":
            assert np.array_equal(a[c].to_numpy(), x), c
        else:
            _close(a[c].to_numpy(), x, WEIGHT_REL * np.abs(x), c)
    assert d1["cutflow"] == d0["cutflow"]
    n, w_abs = len(b), float(np.abs(b["weight"]).sum())
    for k in ("os", "pp", "mm", "events"):
        assert d1["counts"][k] == d0["counts"][k]
    for k in ("unfolded", "signal", "comb_estimate"):
        # Σ over n pairs in another order, each weight within WEIGHT_REL
        tol = reorder_tol(n, w_abs, EPS64) + WEIGHT_REL * w_abs
        _close(d1["counts"][k], d0["counts"][k], tol, k)
    for k, v in d0["unfold"]["acceptance"].items():
        if isinstance(v, int):
            assert d1["unfold"]["acceptance"][k] == v, k
    if "n_eta_mumu_removed" in d0.get("eta_mumu", {}):
        tol = reorder_tol(n, w_abs, EPS64) + WEIGHT_REL * w_abs
        _close(d1["eta_mumu"]["n_eta_mumu_removed"], d0["eta_mumu"]["n_eta_mumu_removed"],
               tol, "eta")  # fmt: skip
    with (
        uproot.open(dask.files["histograms.root"]) as f1,
        uproot.open(table.files["histograms.root"]) as f0,
    ):
        h1, h0 = f1["unfolded_m"].to_hist(), f0["unfolded_m"].to_hist()
        tol = reorder_tol(n, w_abs, EPS64) + WEIGHT_REL * w_abs
        _close(h1.values(), h0.values(), tol, "unfolded_m")


class _Here:
    """A stand-in for the Dask executor's held chunks: the states in this process."""

    def __init__(self, states):
        self.held = dict(enumerate(states))

    def map_held(self, fn, states, *, keep):
        out = [fn(s) for s in states]
        if keep:
            return [o[0] for o in out], [o[1] for o in out]
        return [], out

    def release_held(self, states=()):
        self.held = {}


@pytest.mark.parametrize("seed", range(6))
def test_bins_from_the_histogram_equal_those_of_the_masses(seed):
    """The equal-count edges and the peak-safe edges from the 1 MeV histogram and the few
    masses at the quantiles equal those of the masses (``polarisation_edges``,
    ``peak_safe_edges``): the quantiles are the same interpolation of the same order
    statistics, the counts at every edge tested the same integers."""
    rng = np.random.default_rng(seed)
    lo, hi, window = 0.2113, 1.1, 0.105
    # a continuum and an ω-like peak; a few masses outside [lo, hi) and on the outer edges
    m = np.concatenate([rng.uniform(0.15, 1.15, 3000 + 500 * seed),
                        rng.normal(0.7827, 0.03, 800), [lo, hi, hi]])  # fmt: skip
    chunks = np.array_split(rng.permutation(m), 5)
    states = [{"cols": {"m": c, "charge": np.zeros(c.size, np.int8)}, "weight": np.ones(c.size)}
              for c in chunks]  # fmt: skip
    steps = onworkers.HeldSteps(_Here(states))
    grid = onworkers._grid(lo, hi)
    counts = onworkers._sum(onworkers.os_mass_counts(grid, None, np.array([lo, hi]), s)[1]["counts"]
                            for s in states)  # fmt: skip
    for n_bins in (1, 3, 8, 17):
        want = polarisation_edges(m, n_bins, lo, hi)
        got = onworkers._quantiles(steps, grid, counts, n_bins)
        assert len(got) == len(want)
        np.testing.assert_allclose(got, want, rtol=0, atol=EDGE_ATOL)
        want_safe = peak_safe_edges(want, m, window, min_pairs=200)
        got_safe = onworkers.peak_safe(got, grid, counts, window)
        assert len(got_safe) == len(want_safe)
        np.testing.assert_allclose(got_safe, want_safe, rtol=0, atol=EDGE_ATOL)


@pytest.mark.parametrize(
    ("fixed", "bins", "window", "n"),
    [
        (None, 8, None, 4000),  # equal counts: 8 bins of ≥ MIN_PAIRS
        (None, 8, 0.1, 4000),  # ... kept off the ω and φ
        (None, 8, None, 700),  # a small sample: n // MIN_PAIRS bins
        (None, 8, None, 50),  # fewer than MIN_PAIRS: one bin
        ((0.1, 0.5, 0.8, 1.5), 8, None, 4000),  # configured, clipped to [lo, hi]
        ((0.5, 0.8), 8, 0.1, 4000),  # configured, then kept off the peaks
    ],
)
def test_one_bin_rule_from_the_masses_and_from_the_workers(fixed, bins, window, n):
    """``BinRule`` (``unfold.polarisation_edges``, ``polarisation_bins``,
    ``polarisation_peak_window``) gives the same edges applied to the OS masses
    (``selection.polarisation._polarisation_edges``, the driver's) and to their 1 MeV
    histogram on the workers (``onworkers._bin_edges``): the histogram's quantiles and
    peak-safe counts are exact (test above), so the two agree to the masses' rounding
    (EDGE_ATOL)."""
    from gammastar.selection.polarisation import BinRule

    lo, hi = 0.2113, 1.1
    rule = BinRule(lo, hi, fixed, bins, window)
    rng = np.random.default_rng(n)
    m = np.concatenate([rng.uniform(lo, hi, n), rng.normal(0.7827, 0.01, n // 10)])
    want = rule.edges(
        m.size,
        lambda k: polarisation_edges(m, k, lo, hi),
        lambda e, w: peak_safe_edges(e, m, w),
    )
    states = [{"cols": {"m": c, "charge": np.zeros(c.size, np.int8)}, "weight": np.ones(c.size)}
              for c in np.array_split(m, 3)]  # fmt: skip
    grid = onworkers._grid(lo, hi)
    hists = [onworkers.os_mass_counts(grid, None, np.array([lo, hi]), s)[1] for s in states]
    counts = onworkers._sum(h["counts"] for h in hists)
    got = onworkers._bin_edges(rule, onworkers.HeldSteps(_Here(states)), grid, counts,
                               sum(h["n_os"] for h in hists))  # fmt: skip
    assert len(got) == len(want)
    np.testing.assert_allclose(got, want, rtol=0, atol=EDGE_ATOL)
    if fixed is None and window is None:  # the rule's count: min(bins, n // MIN_PAIRS), ≥ 1
        assert len(got) - 1 == max(1, min(bins, m.size // MIN_PAIRS))


@pytest.mark.slow  # the measured λ_θ on the workers runs by default (the table test above)
@pytest.mark.parametrize("executor", ["dask", "futures"])
def test_fixed_lambda_polarisation_measured_on_the_workers(tmp_path, mock, monkeypatch, executor):
    """A fiducial selection at a fixed λ_θ on Dask or the process pool: the ``polarisation``
    block from the parts the workers wrote, measured there (the driver does not read the
    dataset back), equals the driver's measurement on the same dataset
    (``_measure_polarisation``: the moments looked up per bin in float64 on both sides) to the
    fit's convergence (sums in another order)."""
    from gammastar.selection import polarisation

    c = _cfg(tmp_path / executor)
    cfg = c.model_copy(update={"unfold": c.unfold.model_copy(update={"decay_lambda_theta": 0.0})})
    measure = polarisation._measure_polarisation

    def driver_side(*a, **k):
        raise AssertionError("the Dask run measured the polarisation on the driver")

    monkeypatch.setattr(polarisation, "_measure_polarisation", driver_side)
    dask = sel.select(cfg, [mock], execution=_parallel(executor))
    p1 = json.loads((dask.output_dir / "select.json").read_text())["polarisation"]
    am = sel._unfolding_maps(cfg)[1]
    p0 = measure(cfg, am, None, dask.files["pairs.parquet"], False)
    assert p1["mass_edges"] == p0["mass_edges"]
    assert p1["n_pairs"] == p0["n_pairs"]
    assert p1["used_in_acceptance"] is False
    assert np.isfinite(np.asarray(p0["lambda_theta"], dtype=float)).sum() >= 3
    for k in ("lambda_theta", "lambda_phi", "lambda_theta_phi"):
        _close(p1[k], p0[k], FIT_TOL, k)
        _close(p1[f"{k}_err"], p0[f"{k}_err"], SUMS_REL * np.nanmax(p0[f"{k}_err"]), k)
    _close(p1["n_eff"], p0["n_eff"], SUMS_REL * np.max(p0["n_eff"]), "n_eff")


def test_chunks_balance_the_workers():
    """Without a chunk size given, several workers get at least CHUNKS_PER_WORKER chunks each
    (chunk size ⌈entries / (4 n)⌉, between MIN_CHUNK and input.step_size); one process keeps
    input.step_size (its memory bound)."""
    cfg = load_config(REPO / "analysis" / "na60_like.yaml")  # input.step_size 500 000

    class Pool:
        workers = 14

    entries = {f"f{i}.root": 1_000_000 for i in range(16)}  # 1.6e7 entries
    assert sel._chunk_size(cfg, Execution(), None, entries) == 500_000
    fut = Execution("futures", workers=14)
    assert sel._chunk_size(cfg, fut, Pool(), entries) == -(-16_000_000 // 56)  # 4 × 14 chunks
    assert sel._chunk_size(cfg, fut, Pool(), {"a.root": 10**6}) == sel.MIN_CHUNK
    assert sel._chunk_size(cfg, Execution("futures", workers=2), Pool(), {"a": 10**8}) == 500_000
    given = Execution("futures", workers=14, chunksize=123)
    assert sel._chunk_size(cfg, given, Pool(), entries) == 123


def test_input_check_in_parallel_equals_the_serial_one(tmp_path):
    """The input check with a file per task (on the executor's workers) gives the serial
    check's result: the same files, entries, UUIDs, branches, bad files, and the same error
    (the first bad file's) without ``--skip-bad-files``."""
    from concurrent.futures import ThreadPoolExecutor

    from _select_data import write_mock

    from gammastar.config import config_from_dict
    from gammastar.errors import InputError
    from gammastar.selection.executors.processor import LocalExecutor

    files = [tmp_path / f"{c}.root" for c in "abc"]
    write_mock(files[0], 20)
    (tmp_path / "b.root").write_text("not a ROOT file")
    write_mock(files[2], 30, event_offset=1000)
    cfg = config_from_dict({"output": str(tmp_path / "out"),
                            "input": {"files": [str(f) for f in files]},
                            "beam": {"energy": 400.0, "interaction_lengths": 0.01},
                            "unfold": {"efficiency_map": None}},
                           source=str(tmp_path / "c.yaml"))  # fmt: skip
    with ThreadPoolExecutor(2) as pool:
        exe = LocalExecutor("futures", 2, pool)
        got = sel._checked_inputs(cfg, None, True, exe)
        want = sel._checked_inputs(cfg, None, True)
        for field in ("fileset", "branches", "bad_files", "entries", "uuids", "truth_trees"):
            assert getattr(got, field) == getattr(want, field), field
        assert list(got.bad_files) == [str(files[1])]
        with pytest.raises(InputError) as serial:
            sel._checked_inputs(cfg, None, False)
        with pytest.raises(InputError) as parallel:
            sel._checked_inputs(cfg, None, False, exe)
        assert str(parallel.value) == str(serial.value)


def _as_state(m):
    return {"m": m}


def _doubled(state):
    return {"m": 2 * state["m"]}, float(state["m"].sum())


def _total(state):
    return float(state["m"].sum())


def test_pool_states_are_files_consumed_step_by_step(tmp_path):
    """The process pool's held states (``FileStates``): each step's states are files of the
    directory, the step before's removed once consumed, every one removed on release; the
    results are those of the same functions in this process (the same arrays, to the
    sums' rounding: SUM_RTOL)."""
    from concurrent.futures import ThreadPoolExecutor

    from gammastar.selection.executors.processor import LocalExecutor

    rng = np.random.default_rng(1)
    chunks = [rng.uniform(0.2, 1.1, n) for n in (50, 70, 30)]
    with ThreadPoolExecutor(2) as pool:
        exe = LocalExecutor("futures", 2, pool)
        exe.hold_in(tmp_path / "held")
        assert exe.can_hold
        steps = onworkers.HeldSteps(exe, exe.map_new(_as_state, chunks))
        assert len(list((tmp_path / "held").iterdir())) == 3
        sums = steps.step(_doubled)
        assert sums == pytest.approx([float(c.sum()) for c in chunks], rel=SUM_RTOL)
        assert len(list((tmp_path / "held").iterdir())) == 3  # the first states consumed
        assert steps.ask(_total) == pytest.approx([float((2 * c).sum()) for c in chunks], rel=SUM_RTOL)
        steps.release()
        assert list((tmp_path / "held").iterdir()) == []


class _Client:
    """A stand-in ``distributed.Client`` that runs each task here and records what was
    scattered (``scatter``: sent to every worker) and what went into the task graphs."""

    def __init__(self):
        self.scattered, self.submitted = [], []

    def scatter(self, obj, **kw):
        self.scattered.append(obj)
        return obj

    def submit(self, fn, *args, **kw):
        self.submitted.append(args)
        return fn(*args)

    def map(self, fn, *iterables, **kw):
        return [fn(*a) for a in zip(*iterables, strict=True)]

    def gather(self, futures):
        return list(futures)

    def cancel(self, futures):
        pass


def test_the_shared_acceptance_goes_to_the_workers_once():
    """The steps of the held chunks that name the weighing (its acceptance's tables, tens of
    MB) as SHARED: on Dask the object is scattered once for all of them, not sent with each
    step's function, nor put in a task graph; each step still sees the object itself. The
    process pool's path fills it in the function it writes (with_shared)."""
    from functools import partial

    from gammastar.selection.executors.dask_cluster import DaskExecutor
    from gammastar.selection.executors.held import SHARED, with_shared

    big = np.arange(100_000.0)  # the shared object: 800 kB pickled
    total = float(big.sum())

    def step(obj, k, state):
        return state + k, float(obj.sum()) * k

    client = _Client()
    exe = DaskExecutor(client)
    states = [1.0, 2.0]
    states, smalls = exe.map_held(partial(step, SHARED, 2), states, keep=True, common=big)
    assert states == [3.0, 4.0]
    assert smalls == [2 * total] * 2
    _, out = exe.map_held(partial(step, SHARED, 3), states, keep=False, common=big)
    assert out == [(6.0, 3 * total), (7.0, 3 * total)]
    assert [o is big for o in client.scattered] == [True]  # once, for both steps
    # the steps' functions went with their tasks, without the object
    assert client.submitted
    assert all(len(b) < 10_000 for (b,) in client.submitted)
    exe.forget_shared()
    exe.map_held(partial(step, SHARED, 1), states, keep=False, common=big)
    assert len(client.scattered) == 2  # sent again after the steps let it go
    assert with_shared(partial(step, SHARED, 2), big)(1.0) == (3.0, 2 * total)
