"""benchmarks/lambda_selection.py (issue 19): the pair kinematics it feeds the moment tables
and the acceptance-aware fit at the truth, which must return the generator's own λ_θ. Fast: a
10⁶-source mock (10 s)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from _benchmarks import load_benchmark

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ls():
    return load_benchmark("lambda_selection")


def test_pair_kinematics_of_a_pair_at_rest_and_one_along_x(ls):
    # two leptons back to back along y, each E = 0.3 GeV, |p| = 0.28: a pair at rest of mass 0.6
    e, p = 0.3, 0.28
    l1 = np.array([[0.0], [p], [0.0], [e]])
    l2 = np.array([[0.0], [-p], [0.0], [e]])
    m, mom, _ = ls.pair_kinematics(l1, l2)
    assert math.isclose(m[0], 0.6, rel_tol=1e-12)
    assert math.isclose(mom[0], 0.0, abs_tol=1e-15)
    # the same pair with 1 GeV of momentum along x each: p = 2 GeV at θ = π/2
    e_lep = math.sqrt(1 + e * e)  # 1 + p² + m_ℓ², with m_ℓ² = e² − p²
    l1 = np.array([[1.0], [p], [0.0], [e_lep]])
    l2 = np.array([[1.0], [-p], [0.0], [e_lep]])
    m, mom, th = ls.pair_kinematics(l1, l2)
    e_pair = 2 * e_lep
    assert math.isclose(m[0], math.sqrt(e_pair**2 - 4.0), rel_tol=1e-12)
    assert math.isclose(mom[0], 2.0, rel_tol=1e-12)
    assert math.isclose(th[0], math.pi / 2, rel_tol=1e-12)


def test_the_fit_at_the_truth_returns_the_generators_lambda(ls):
    """The acceptance-aware fit of the true angles of the γ* that pass the lepton cuts (the
    ``truth`` way) against the moments of every generated γ* inside F (no acceptance, the
    generator's λ_θ: :func:`gammastar.corrections.polarisation.truth_lambdas`): equal within 3σ of the
    two errors combined (the passing γ* are a subset, so the errors overlap: conservative)."""
    from gammastar.config import load_config
    from gammastar.corrections.pair_acceptance import fiducial_from_config

    cfg = load_config(REPO / "analysis" / "na60_like.yaml")
    fid = fiducial_from_config(cfg, lambda_theta=0.0)
    got = ls.collect(cfg, fid.acceptance, sources=1_000_000, seed=3, lo=0.25, hi=0.45)
    m, c, phi, mom = got["truth"]
    fit = ls.fit_bins(m, c, phi, mom, np.array([0.25, 0.45]), fid.min_acceptance)[0]
    # the same γ*' truth: all of them inside F, from their moments (no fit, no acceptance)
    from gammastar.corrections.polarisation import helicity_angles, truth_lambdas
    from gammastar.mock.generate import MUON_GSTAR, MockGenerator

    ms, cs, ps = [], [], []
    for ch in MockGenerator(cfg, seed=3).chunks(1_000_000):
        s = ch.sources
        keep = np.isin(s.channel, list(MUON_GSTAR))
        plus = s.charge1[keep] > 0
        t1, t2 = s.mu1[:, keep], s.mu2[:, keep]
        mm, pp, th = ls.pair_kinematics(t1, t2)
        inside = fid.acceptance(mm, pp, th) >= fid.min_acceptance
        cc, ph = helicity_angles(np.where(plus, t1, t2), np.where(plus, t2, t1))
        ms.append(mm[inside]), cs.append(cc[inside]), ps.append(ph[inside])
    t = truth_lambdas(np.concatenate(ms), np.concatenate(cs), np.concatenate(ps), [0.25, 0.45])
    diff = fit["lambda_theta"] - t["lambda_theta"][0]
    assert abs(diff) < 3 * math.hypot(fit["lambda_theta_err"], t["lambda_theta_err"][0])
    assert fit["n"] > 1000  # enough γ* for the statement to mean something
