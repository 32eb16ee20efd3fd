"""``unfold.decay_lambda_theta: measured`` in one pass over the input.

The chunks return the pairs once and the driver fits and weights them
(``gammastar.selection.weights.apply._measured_acceptance``). The reference is two passes over the input
rebuilt from the public steps: a first pass at λ_θ = 0 that measures λ_θ(m) (its
``polarisation`` block) → :func:`gammastar.corrections.polarisation.lambda_for_acceptance` →
``PairAcceptance.with_lambda(lambda_nodes(...))``, a second selection with that acceptance.
The ``polarisation`` block written is the fit of the
first pass (the pairs of the isotropic fiducial region with their isotropic weights): the
one-pass selection does not refit on the final weights' pairs. Input: a small NA60-like mock
(the default job's config).
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import uproot
from _tolerance import EPS32, EPS64, reorder_tol

from gammastar.config import load_config
from gammastar.corrections.polarisation import lambda_for_acceptance
from gammastar.selection import stage as sel
from gammastar.selection.executors import Execution
from gammastar.selection.weights import apply as weighting

REPO = Path(__file__).resolve().parents[1]
SOURCES = 300_000  # ≈ 1.1e4 selected pairs: every polarisation bin has ≥ MIN_PAIRS OS pairs
CHUNK = 4_000  # entries per chunk: several chunks, so the chunk sums differ in order
BY_CHUNK = Execution(chunksize=CHUNK)

# Per-pair columns: the same formula pair by pair on both sides (the acceptance lookup and
# pair_weights are elementwise); ≲ 20 roundings per weight (ε lookup, 1/ε, the trilinear
# interpolation of A: 8 corners × 2 products, 1/A, the product of the factors)
PAIR_OPS = 20
# The λ fit (polarisation.fit.fit_lambdas): both sides end with Newton's step after one below
# 0.01σ, within ~(that step)² of the maximum, so the λ of two fits of the same pairs (whose
# weights differ by rounding) agree to the roundings of the score's sum over a bin's
# n ≈ 1.4e3 pairs, whatever their start: n·eps·Σ|w g|/H ≈ n·eps·O(1–10) ≲ 1e-11 (1e-12
# measured; a fit that returned the λ before that last step would differ between two starts
# by Newton's residual, up to (0.01σ)² ≈ 4e-6 at σ ≈ 0.2)
FIT_TOL = 1e-10
# The one-pass side interpolates the moments at its pairs in single precision
# (PairAcceptance.pair_moments(dtype=float32)), the two passes look A
# up in float64: each moment, so the isotropic A, differs by ≲ 20 float32 roundings of a value
# ≤ 1 (the tables rounded to float32, the cell's offsets, 8 corners × 2 products and the sum)
ACC32 = reorder_tol(20, 1.0, EPS32)
# ... and the λ fit moves: a relative change δ ≤ ACC32/A_min of each pair's moments
# (A ≥ min_acceptance in the fit) changes the score Σ w g by ≤ δ·Σ|w g| ≲ δ·√n·σ_score (n the
# bin's pairs, |w g| ~ σ_score/√n each), so λ by ≤ δ·√n·σ and the errors (ratios of sums of
# such terms) by ≤ 2δ relative. (On the 2·10⁶-pair benchmark: 10⁻⁶σ and 10⁻⁸ measured.)


@pytest.fixture(scope="module")
def mock(tmp_path_factory):
    from gammastar.mock.generate import generate_file

    d = tmp_path_factory.mktemp("onepass")
    cfg = load_config(REPO / "analysis" / "na60_like.yaml")
    generate_file(cfg, d / "mock.root", events=SOURCES, seed=5)
    return d / "mock.root"


def _cfg(tmp_path, lam, **background):
    cfg = load_config(REPO / "analysis" / "na60_like.yaml")
    return cfg.model_copy(
        update={
            "output": str(tmp_path),
            "unfold": cfg.unfold.model_copy(update={"decay_lambda_theta": lam}),
            "background": cfg.background.model_copy(update=background),
        }
    )


def _two_passes(tmp_path, mock, monkeypatch, **background):
    """The two-pass selection, rebuilt: λ_θ = 0, the fit, the selection again.
    Returns ``(first, second)``."""
    first = sel.select(
        _cfg(tmp_path / "first", 0.0, **background), [mock], execution=BY_CHUNK, force=True
    )
    block = json.loads((first.output_dir / "select.json").read_text())["polarisation"]
    edges, lam = lambda_for_acceptance(block, "first pass")
    maps = sel._unfolding_maps

    def measured_maps(cfg, lambda_theta=None):
        em, am, phase_space = maps(cfg, lambda_theta=0.0)
        return em, am.with_lambda(am.lambda_nodes(edges, lam)), phase_space

    with monkeypatch.context() as m:
        m.setattr(sel, "_unfolding_maps", measured_maps)
        return first, sel.select(
            _cfg(tmp_path / "second", 0.0, **background), [mock], execution=BY_CHUNK, force=True
        )


def _close(a, b, tol, what):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, what
    assert np.array_equal(np.isnan(a), np.isnan(b)), what
    ok = ~np.isnan(a)
    assert np.all(np.abs(a[ok] - b[ok]) <= tol), (what, np.max(np.abs(a[ok] - b[ok])), tol)


@pytest.mark.parametrize("ss_weight", ["binwise", "constant"])
def test_one_pass_equals_the_two_passes(tmp_path, mock, monkeypatch, ss_weight):
    """Pairs table, histograms and select.json of the one-pass measured-λ selection equal
    those of the two passes it replaces: pair by pair to the roundings of one weight, sums
    over pairs (the two passes summed chunk by chunk) to the roundings of a sum over all pairs
    (tests/_tolerance.py), λ to the fit's convergence. The ``polarisation`` block is the first
    pass's (the fit on the isotropic fiducial region's pairs and weights), with
    ``used_in_acceptance``; the second pass's (a fit on the final weights' pairs) is a
    different fit: other pairs cross ``min_acceptance``."""
    first, two = _two_passes(tmp_path, mock, monkeypatch, ss_weight=ss_weight)
    one = sel.select(
        _cfg(tmp_path / "one", "measured", ss_weight=ss_weight), [mock], execution=BY_CHUNK
    )
    d1 = json.loads((one.output_dir / "select.json").read_text())
    d2 = json.loads((two.output_dir / "select.json").read_text())
    p1 = d1["polarisation"]
    p0 = json.loads((first.output_dir / "select.json").read_text())["polarisation"]
    # the same pairs' equal-count edges, rounded to 1 MeV (polarisation_edges): another
    # rounding would move one by 1e-3; 1e-9 leaves room only for float representation
    assert p1["mass_edges"] == pytest.approx(p0["mass_edges"], abs=1e-9)
    assert p1["n_pairs"] == p0["n_pairs"]
    delta = ACC32 / d1["unfold"]["acceptance"]["min_acceptance"]
    n_bin = np.asarray(p0["n_pairs"], dtype=np.float64)
    for k in ("lambda_theta", "lambda_phi", "lambda_theta_phi"):
        err0 = np.asarray(p0[f"{k}_err"], dtype=np.float64)
        _close(p1[k], p0[k], FIT_TOL + delta * np.sqrt(n_bin) * err0, k)
        _close(p1[f"{k}_err"], err0, (1e-9 + 2 * delta) * np.nanmax(err0), k)
    fid1, fid2 = d1["unfold"]["fiducial"], d2["unfold"]["fiducial"]
    d_lam = float(np.max(np.abs(np.subtract(fid1["lambda_theta"], fid2["lambda_theta"]))))
    assert d_lam <= FIT_TOL + delta * float(np.nanmax(np.sqrt(n_bin) * p0["lambda_theta_err"]))
    a, b = one.pairs, pd.read_parquet(two.files["pairs.parquet"])
    assert list(a.columns) == list(b.columns)
    assert len(a) == len(b) > 5_000
    acc = b["acc"].to_numpy()
    # the final A: ACC32, and |dA/dλ| ≲ 10 A (the mock) times the nodes' λ difference
    acc_tol = ACC32 + 10 * acc * d_lam
    rel = np.divide(acc_tol, acc, out=np.zeros_like(acc), where=acc > 0)  # of 1/A: weight
    for c in a.columns:
        if a[c].dtype.kind in "iub":
            assert np.array_equal(a[c].to_numpy(), b[c].to_numpy()), c
        else:
            x = b[c].to_numpy()
            tol = reorder_tol(PAIR_OPS, 1.0, EPS64) * np.abs(x)
            if c == "acc":
                tol += acc_tol
            elif c == "weight":
                tol += rel * np.abs(x)
            _close(a[c].to_numpy(), x, tol, c)
    n = len(a)
    w_abs = float(np.abs(b["weight"]).sum())
    w_rel = float(np.sum(rel * np.abs(b["weight"].to_numpy())))  # Σ|w|·(1/A's relative tol)
    with (
        uproot.open(one.files["histograms.root"]) as f1,
        uproot.open(two.files["histograms.root"]) as f2,
    ):
        for name in ("os_m", "pp_m", "mm_m", "comb_m", "signal_m", "unfolded_m"):
            h1, h2 = f1[name].to_hist(), f2[name].to_hist()
            # Σ over ≤ n pairs in another order (chunks, then the chunk sums)
            scale = max(w_abs, float(np.abs(h2.values()).sum()))
            tol = reorder_tol(n, scale, EPS64) + (w_rel if name == "unfolded_m" else 0.0)
            _close(h1.values(), h2.values(), tol, name)
    assert d1["cutflow"] == d2["cutflow"]
    for k in ("os", "pp", "mm", "events"):
        assert d1["counts"][k] == d2["counts"][k]
    for k in ("unfolded", "unfolded_err", "signal", "comb_estimate"):
        tol = reorder_tol(n, w_abs, EPS64) + (w_rel if k.startswith("unfolded") else 0.0)
        _close(d1["counts"][k], d2["counts"][k], tol, k)
    acc1, acc2 = d1["unfold"]["acceptance"], d2["unfold"]["acceptance"]
    # ratios of sums of nominal weights 1/(A ε): twice their mean relative tolerance
    nominal = np.divide(1.0, acc * b["eff"].to_numpy(), out=np.zeros_like(acc), where=acc > 0)
    ratio_tol = 2 * float(np.sum(nominal * rel) / np.sum(nominal)) + 1e-12
    for k, v in acc2.items():
        if k.startswith("lost_fraction_estimate_pairs"):
            if ss_weight == "binwise":
                # the chunks sum the lost weights with the SS pairs' provisional factor −1,
                # before the driver's k_b (the two passes' numbers); the one-pass table has
                # −k_b: the estimate as documented, a different number
                continue
            # ratios of sums over pairs: n·eps relative ≪ 1e-12, and the float32 A
            _close(acc1[k], v, ratio_tol * abs(v), k)
        elif isinstance(v, float):
            _close(acc1[k], v, ratio_tol * abs(v), k)
        elif k != "source":
            assert acc1[k] == v, k
    assert len(set(np.round(fid1["lambda_theta"], 6))) > 1  # a λ_θ(m), not one number
    assert p1["used_in_acceptance"] is True
    assert p0["used_in_acceptance"] is False
    _close(p1["n_eff"], p0["n_eff"], 1e-9 * np.max(p0["n_eff"]), "n_eff")
    # the acceptance of the written λ_θ(m): its nodes are those of the block itself
    nodes = sel._unfolding_maps(_cfg(tmp_path / "nodes", 0.0), lambda_theta=0.0)[1]
    pe, lam = lambda_for_acceptance(p1, "test")
    _close(fid1["lambda_theta"], nodes.lambda_nodes(pe, lam), 1e-15, "lambda nodes")
    assert "fit_lambda" in d1["timings_s"]
    assert "polarisation" in d1["timings_s"]


def test_measured_lambda_reads_each_chunk_once(tmp_path, mock, monkeypatch):
    """The measured-λ selection reads the input once: one processor run, each chunk
    (file, first entry) processed exactly once (not twice, as two passes would)."""
    from gammastar.selection.executors import processor

    seen: Counter = Counter()
    runs = []
    process, run_processor = processor.DileptonProcessor._process, processor.run_processor

    def counting_process(self, cols, md):
        seen[(md["filename"], md["entrystart"], md["entrystop"])] += 1
        return process(self, cols, md)

    def counting_run(*args, **kwargs):
        runs.append(1)
        return run_processor(*args, **kwargs)

    monkeypatch.setattr(processor.DileptonProcessor, "_process", counting_process)
    monkeypatch.setattr(sel, "run_processor", counting_run)
    res = sel.select(_cfg(tmp_path, "measured"), [mock], execution=BY_CHUNK)
    with uproot.open(mock) as f:
        entries = f["events"].num_entries
    assert len(runs) == 1
    assert set(seen.values()) == {1}  # no chunk twice
    # the file in ⌈entries/CHUNK⌉ equal chunks (coffea's chunking): every entry, once
    spans = sorted((a, b) for _, a, b in seen)
    assert len(spans) == -(-entries // CHUNK) > 1
    assert spans[0][0] == 0
    assert spans[-1][1] == entries
    assert all(b == a2 for (_, b), (a2, _) in itertools.pairwise(spans))
    doc = json.loads((res.output_dir / "select.json").read_text())
    assert doc["polarisation"]["used_in_acceptance"] is True
    assert doc["cutflow"]["events"] == entries


def test_weights_in_row_blocks_equal_one_block(tmp_path, mock, monkeypatch):
    """The driver weights the table in blocks of rows (selection.weights.apply._WEIGH_ROWS, 2^17: this sample
    is one block) so that pair_weights' temporaries stay small. In blocks of 1000 rows: every
    pair's columns are the same numbers (elementwise formulas), the report counts the same
    integers, its sums (Σw, Σw² of the kept and lost pairs, added block by block) equal to the
    roundings of a sum over the n pairs (tests/_tolerance.py)."""
    one = sel.select(_cfg(tmp_path / "one", "measured"), [mock], execution=BY_CHUNK)
    monkeypatch.setattr(weighting, "_WEIGH_ROWS", 1000)
    blk = sel.select(_cfg(tmp_path / "blk", "measured"), [mock], execution=BY_CHUNK)
    a, b = one.pairs, blk.pairs
    assert len(a) > 5 * 1000
    # elementwise formulas, but through libm calls whose SIMD and scalar paths (the blocks
    # move pairs between them) may differ by an ulp, which reaches the λ fit and the final
    # A: the fit's tolerance FIT_TOL, × |dA/dλ|/A ≲ 10 on the mock (integers stay exact)
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=10 * FIT_TOL, atol=0.0)
    d1 = json.loads((one.output_dir / "select.json").read_text())["unfold"]["acceptance"]
    d2 = json.loads((blk.output_dir / "select.json").read_text())["unfold"]["acceptance"]
    w_abs = float(np.abs(a["weight"]).sum())
    for k, v in d1.items():
        if isinstance(v, float):
            _close(d2[k], v, reorder_tol(len(a), w_abs, EPS64) / w_abs + 1e-15, k)
        else:
            assert d2[k] == v, k


def test_fixed_lambda_polarisation_from_the_chunks_moments(tmp_path, mock, monkeypatch):
    """A fixed-λ_θ fiducial selection in this process: the chunks look the acceptance's four
    decay-angle moments up with A (PairAcceptance.lookup_moments, kept in float32) and the
    ``polarisation`` block is fitted from them. Against the measurement on its pairs table
    without them (each bin's moments interpolated in float64 from the pairs' m, pT, pz): the
    same edges and counts, λ and errors within the float32 moments' bound (ACC32, δ√n σ
    above; one rounding to float32 per moment, well inside it); the pairs the same."""
    from gammastar.corrections.pair_acceptance.table import PairAcceptance
    from gammastar.selection.polarisation import _measure_polarisation

    calls = []
    lookup_moments = PairAcceptance.lookup_moments

    def counting(self, *args, **kwargs):
        calls.append(1)
        return lookup_moments(self, *args, **kwargs)

    monkeypatch.setattr(PairAcceptance, "lookup_moments", counting)
    cfg = _cfg(tmp_path, 0.0)
    res = sel.select(cfg, [mock], execution=BY_CHUNK)
    assert len(calls) > 1  # every chunk: A and the moments in one lookup
    got = json.loads((res.output_dir / "select.json").read_text())["polarisation"]
    am = sel._unfolding_maps(cfg)[1]
    ref = _measure_polarisation(cfg, am, res.pairs, None, False)
    assert got["mass_edges"] == ref["mass_edges"]
    assert got["n_pairs"] == ref["n_pairs"]
    delta = ACC32 / cfg.unfold.min_acceptance
    n_bin = np.asarray(ref["n_pairs"], dtype=np.float64)
    for k in ("lambda_theta", "lambda_phi", "lambda_theta_phi"):
        err = np.asarray(ref[f"{k}_err"], dtype=np.float64)
        assert np.isfinite(err).sum() >= 3  # bins with a fit are compared
        _close(got[k], ref[k], FIT_TOL + delta * np.sqrt(n_bin) * err, k)
        _close(got[f"{k}_err"], err, (1e-9 + 2 * delta) * np.nanmax(err), k)
