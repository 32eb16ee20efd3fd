"""The k-NN KL estimator (docs/explanation/physics.md §6) against analytic Gaussian divergences."""

from __future__ import annotations

import numpy as np
import pytest

from gammastar.errors import GammastarError
from gammastar.flow.kl import DuplicatePointsError, knn_kl


def gaussian_kl(mu0, cov0, mu1, cov1) -> float:
    """Analytic D(N0‖N1) = ½[tr(Σ1⁻¹Σ0) + Δμᵀ Σ1⁻¹ Δμ − d + ln(det Σ1 / det Σ0)]."""
    mu0, mu1 = np.atleast_1d(mu0), np.atleast_1d(mu1)
    cov0, cov1 = np.atleast_2d(cov0), np.atleast_2d(cov1)
    inv1 = np.linalg.inv(cov1)
    dmu = mu1 - mu0
    d = len(mu0)
    return 0.5 * (
        np.trace(inv1 @ cov0)
        + dmu @ inv1 @ dmu
        - d
        + np.log(np.linalg.det(cov1) / np.linalg.det(cov0))
    )


CASES = [
    # (d, n, shift, scale): P = N(0, I), Q = N(shift·1, scale²·I) with a mild correlation in Q
    (1, 2000, 1.0, 1.0),
    (1, 8000, 0.3, 1.5),
    (2, 2000, 0.5, 1.0),
    (2, 8000, 0.2, 1.3),
    (3, 4000, 0.5, 1.2),
    (4, 8000, 0.4, 1.1),
]


@pytest.mark.parametrize(("d", "n", "shift", "scale"), CASES)
def test_knn_kl_matches_analytic_gaussians(d, n, shift, scale):
    """Mean over independent repeats within 3 standard errors (+ a small finite-n bias) of the
    analytic KL; the spread is the estimator's own, measured from the repeats."""
    rng = np.random.default_rng(1000 + 10 * d + n)
    cov1 = scale**2 * (np.eye(d) + 0.3 * (np.ones((d, d)) - np.eye(d)))
    mu1 = np.full(d, shift)
    truth = gaussian_kl(np.zeros(d), np.eye(d), mu1, cov1)
    chol = np.linalg.cholesky(cov1)
    est = []
    for _ in range(12):
        x = rng.normal(size=(n, d))
        y = mu1 + rng.normal(size=(n, d)) @ chol.T
        est.append(knn_kl(x, y, k=2))
    est = np.array(est)
    sem = est.std(ddof=1) / np.sqrt(len(est))
    # k-NN bias at these n is O(0.01–0.05) growing with d (Wang et al. 2009, Fig. 2-4)
    bias_allowance = 0.01 * d
    assert abs(est.mean() - truth) < 3 * sem + bias_allowance, (est.mean(), truth, sem)


def test_knn_kl_same_distribution_near_zero_and_k_dependence():
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(5000, 2)), rng.normal(size=(5000, 2))
    for k in (1, 2, 5):
        assert abs(knn_kl(x, y, k=k)) < 0.05


def test_knn_kl_refuses_duplicates():
    """Exact duplicates are refused, naming the sample and the count.

    Before: the k-th *distinct* neighbour was used with the raw-count term ln(m/(n-1)), so
    P = Q = N(0, I2) with every p point doubled gave 0.28-0.37 (5 seeds) instead of ~0.
    """
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2000, 2))
    y = rng.normal(size=(4000, 2))
    with pytest.raises(DuplicatePointsError, match=r"sample p has 2000 exact duplicate"):
        knn_kl(np.concatenate([x, x]), y)
    with pytest.raises(ValueError, match=r"sample q has 50 exact duplicate"):
        knn_kl(x, np.concatenate([y, y[:50]]))
    with pytest.raises(GammastarError, match=r"10 point\(s\) of p also occur in q"):
        knn_kl(x, np.concatenate([y, x[:10]]))
    # the same samples without the duplicates: ~0 (P = Q); 4σ with σ = 0.032, the spread of
    # the estimate over 30 seeds at these sizes (2000 vs 4000 points, k = 2)
    assert abs(knn_kl(x, y)) < 4 * 0.032


def test_knn_kl_bad_input():
    with pytest.raises(GammastarError, match="dimensions"):
        knn_kl(np.zeros((10, 2)), np.zeros((10, 3)))
    with pytest.raises(GammastarError, match="NaN"):
        knn_kl(np.array([[np.nan, 1.0]] * 5), np.zeros((5, 2)))
    with pytest.raises(GammastarError, match="k must"):
        knn_kl(np.zeros((10, 2)), np.zeros((10, 2)), k=0)
    with pytest.raises(DuplicatePointsError, match="9 exact duplicate"):
        knn_kl(np.zeros((10, 2)), np.ones((10, 2)))


# --------------------------------------------------------------------------- weighted samples
def test_weighted_equals_unweighted_for_equal_weights():
    """Equal weights: the weighted estimator is the WKV estimator (same arithmetic up to
    rounding; relative 1e-12 of the O(0.1) value)."""
    rng = np.random.default_rng(4)
    x, y = rng.normal(0, 1, (800, 2)), rng.normal(0.3, 1, (900, 2))
    ref = knn_kl(x, y)
    got = knn_kl(x, y, p_weights=np.full(800, 2.5), q_weights=np.full(900, 0.1))
    assert got == pytest.approx(ref, rel=1e-12)


def test_weighted_samples_estimate_the_reweighted_divergence():
    """P: N(0, I₂) reweighted by w = exp(μx₁ − μ²/2) to N((μ, 0), I₂); Q: N(0, I₂) reweighted
    to N((1, 0), I₂). Analytic D = (μ − 1)²/2 = 0.125 for μ = 0.5; the unweighted estimate of
    the raw samples would be 0. Mean of 8 independent estimates (4000 points each) within 4
    standard errors of their mean (the k-NN bias at these sizes is below 0.01)."""
    mu, vals = 0.5, []
    for s in range(8):
        rng = np.random.default_rng(100 + s)
        x, y = rng.normal(size=(4000, 2)), rng.normal(size=(4000, 2))
        wx = np.exp(mu * x[:, 0] - mu**2 / 2)
        wy = np.exp(y[:, 0] - 0.5)
        vals.append(knn_kl(x, y, p_weights=wx, q_weights=wy))
    se = np.std(vals, ddof=1) / np.sqrt(len(vals))
    assert abs(np.mean(vals) - (mu - 1) ** 2 / 2) < 4 * se + 0.01, (np.mean(vals), se)


def test_bad_weights_are_refused():
    x = np.random.default_rng(0).normal(size=(50, 2))
    y = x + 0.5
    with pytest.raises(GammastarError, match="positive"):
        knn_kl(x, y, p_weights=np.r_[-1.0, np.ones(49)])
    with pytest.raises(GammastarError, match="3 weights for 50"):
        knn_kl(x, y, q_weights=[1.0, 1.0, 1.0])
