"""benchmarks/resolution_kinematics.py: the γ* reconstructed at m against those of true mass m.

Fast: a small generator sample and analytic responses (none, a constant shift), whose folded
sample is known exactly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _benchmarks import load_benchmark

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def setup():
    from gammastar.config import load_config
    from gammastar.source.geometry import Geometry

    bench = load_benchmark("resolution_kinematics")
    cfg = load_config(REPO / "analysis" / "na60_like.yaml")
    g = bench.coverage.generator_gstar(cfg, sources=300_000, seed=5)
    return bench, g, Geometry.from_config(cfg.detector)


def test_no_resolution_folds_onto_the_truth(setup):
    """With a response of zero width the folded γ* are the truth's own window, moved by
    ≤ 15 MeV at fixed (p_T, y) where the truth's sampler keeps |p|: E differs by
    ≈ m·Δm/E ≲ 10⁻³ of E, so the same A′ draws give the same acceptance to well within the
    samples' binomial error (±1% at 20 000)."""
    bench, g, geo = setup
    rows = bench.compare(g, g.m, [0.3, 0.6], np.array([1.0, 100.0]), geo, samples=20_000,
                         seed=3, far=0.06)  # fmt: skip
    for r in rows:
        assert r["gstar_folded"] == r["gstar_true"]
        assert r["far_share"] == pytest.approx(0.0, abs=1e-12)  # a share of counts: none
        np.testing.assert_allclose(r["ratio"], 1.0, atol=3e-3)


def test_a_shifted_response_folds_the_lower_masses_in(setup):
    """A response that adds 0.1 GeV to every mass folds the γ* of true mass m − 0.1 onto m:
    all of them migrated (> 60 MeV), as many as the truth's window at m − 0.1 holds."""
    bench, g, geo = setup
    rows = bench.compare(g, g.m + 0.1, [0.6], np.array([1.0]), geo, samples=5_000, seed=3,
                         far=0.06)  # fmt: skip
    (r,) = rows
    assert r["far_share"] == pytest.approx(1.0, abs=1e-12)  # a share of counts: all
    assert r["gstar_folded"] == int(np.sum(np.abs(g.m - 0.5) < 0.015))
    moved, m_true = bench.folded(g, g.m + 0.1, 0.6, 0.015)
    assert np.all(np.abs(m_true - 0.5) < 0.015)
    # moved to 0.6 GeV at fixed p_T and rapidity: E² − p_z² = q_T² + m²
    np.testing.assert_allclose(moved.E**2 - moved.pz**2, moved.qT**2 + 0.36, rtol=1e-9)


def _run(tmp_path, events, m_true, m, weight, charge, channel, n_pot):
    import pyarrow as pa
    import pyarrow.parquet as pq
    import uproot

    tmp_path.mkdir()
    pq.write_table(pa.table({"event": np.asarray(events, np.int64), "m": np.asarray(m, float),
                             "weight": np.asarray(weight, float),
                             "charge": np.asarray(charge, np.int8),
                             "channel": np.asarray(channel, np.int8)}),
                   tmp_path / "pairs.parquet")  # fmt: skip
    with uproot.recreate(tmp_path / "mock.root") as f:
        f["events"] = {"event": np.asarray(events, np.int64),
                       "truth_gstar_m": np.asarray(m_true, float)}  # fmt: skip
    (tmp_path / "yields.json").write_text(json.dumps({"meta": {"n_pot": n_pot}}))
    return tmp_path


def test_slices_split_the_pairs_by_their_true_mass(setup, tmp_path):
    """Two signal pairs in the bin around 0.9 GeV, one from the ω (true 0.78) and one local,
    and a combinatorial one that the split leaves out: each slice's Σw per POT against the
    truth's smeared γ* of that slice per POT, and the slice's share of the truth."""
    from gammastar.mock.truth import GstarTruth

    bench = setup[0]
    run = _run(tmp_path / "r", events=[5, 3, 9], m_true=[0.78, 0.90, 0.0], m=[0.89, 0.895, 0.89],
               weight=[2.0, 3.0, 7.0], charge=[0, 0, 0], channel=[4, 6, 0], n_pot=10.0)  # fmt: skip
    # the truth: 4 γ* of true mass 0.78 and 2 of 0.90 smeared into 0.87–0.90; n_pot 100
    g = GstarTruth(np.array([0.78] * 4 + [0.90] * 2), *(np.ones(6),) * 3, np.zeros(6, int),
                   100.0)  # fmt: skip
    m_smeared = np.full(6, 0.885)
    edges = [0.84, 0.87, 0.90, 0.93]
    rows = bench.slices_at([run], g, m_smeared, edges, 0.88, [(0.7, 0.84), (0.84, 0.96)])
    lower = [r for r in rows if r["bin"] == [0.87, 0.90]]
    assert [r["share"] for r in lower] == pytest.approx([4 / 6, 2 / 6])
    # pairs / truth per POT: (2/10)/(4/100) = 5 for the ω slice, (3/10)/(2/100) = 15 local
    assert [r["ratio"] for r in lower] == pytest.approx([5.0, 15.0])
    with pytest.raises(SystemExit, match="outside the yield bins"):
        bench.slices_at([run], g, m_smeared, edges, 1.2, [(0.7, 0.84)])
    other = _run(tmp_path / "o", events=[5, 4], m_true=[0.78, 0.9], m=[0.89, 0.89],
                 weight=[1.0, 1.0], charge=[0, 0], channel=[4, 6], n_pot=1.0)  # fmt: skip
    (other / "mock.root").unlink()
    import uproot

    with uproot.recreate(other / "mock.root") as f:  # event 4 missing from the tree
        f["events"] = {"event": np.array([5, 6]), "truth_gstar_m": np.array([0.78, 0.9])}
    with pytest.raises(SystemExit, match="events tree does not hold"):
        bench.slices_at([other], g, m_smeared, edges, 0.88, [(0.7, 0.84)])
