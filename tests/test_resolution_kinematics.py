"""benchmarks/resolution_kinematics.py: the γ* reconstructed at m against those of true mass m.

Fast: a small generator sample and analytic responses (none, a constant shift), whose folded
sample is known exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _benchmarks import load_benchmark

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def setup():
    from gammastar.acceptance import Geometry
    from gammastar.config import load_config

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
        assert r["far_share"] == 0.0
        np.testing.assert_allclose(r["ratio"], 1.0, atol=3e-3)


def test_a_shifted_response_folds_the_lower_masses_in(setup):
    """A response that adds 0.1 GeV to every mass folds the γ* of true mass m − 0.1 onto m:
    all of them migrated (> 60 MeV), as many as the truth's window at m − 0.1 holds."""
    bench, g, geo = setup
    rows = bench.compare(g, g.m + 0.1, [0.6], np.array([1.0]), geo, samples=5_000, seed=3,
                         far=0.06)  # fmt: skip
    (r,) = rows
    assert r["far_share"] == 1.0
    assert r["gstar_folded"] == int(np.sum(np.abs(g.m - 0.5) < 0.015))
    moved, m_true = bench.folded(g, g.m + 0.1, 0.6, 0.015)
    assert np.all(np.abs(m_true - 0.5) < 0.015)
    # moved to 0.6 GeV at fixed p_T and rapidity: E² − p_z² = q_T² + m²
    np.testing.assert_allclose(moved.E**2 - moved.pz**2, moved.qT**2 + 0.36, rtol=1e-9)
