"""Like-sign subtraction: formula, error propagation, per-pair weights, η → μμ rate."""

from __future__ import annotations

import numpy as np
import pytest

from gammastar.corrections.background import (
    combinatorial,
    eta_br_ratio,
    eta_dalitz_spectrum,
    eta_mumu_rate_peak,
    like_sign_estimate,
    pair_factors,
    ss_pair_weights,
)


def test_geometric_mean_formula():
    v, var = combinatorial(np.array([100.0, 0.0, 4.0]), np.array([25.0, 9.0, 4.0]), r=1.2)
    # 2R√(N++N−−); σ² = R²(N−−/N++ σ++² + N++/N−− σ−−²) = R²(N−− + N++) for Poisson inputs
    assert v.tolist() == pytest.approx([2 * 1.2 * 50.0, 0.0, 2 * 1.2 * 4.0])
    assert var.tolist() == pytest.approx([1.44 * 125.0, 1.44 * 9.0, 1.44 * 8.0])


def test_combinatorial_is_unbiased_and_errors_cover_toy_mc():
    """Toy MC: independent μ± (charge-symmetric) give N+− = 2√(N++N−−) in expectation,
    and the propagated error matches the spread of the estimate across toys."""
    rng = np.random.default_rng(1)
    mu_pp, mu_mm = 400.0, 250.0  # expected like-sign counts in one bin
    true_os = 2 * np.sqrt(mu_pp * mu_mm)
    a = rng.poisson(mu_pp, 20000).astype(float)
    b = rng.poisson(mu_mm, 20000).astype(float)
    v, var = combinatorial(a, b)
    assert v.mean() == pytest.approx(true_os, rel=2e-3)
    assert np.sqrt(var.mean()) == pytest.approx(v.std(), rel=0.03)


def test_ss_weights_constant_and_binwise():
    edges = np.array([0.0, 1.0, 2.0])
    m = np.array([0.5, 0.5, 0.5, 1.5, 1.5])
    q = np.array([0, 2, -2, 2, -2])
    n_pp, n_mm = np.array([1.0, 1.0]), np.array([1.0, 1.0])
    w = ss_pair_weights(m, q, edges, n_pp, n_mm, r=1.1)
    assert w.tolist() == pytest.approx([1.0, -1.1, -1.1, -1.1, -1.1])
    n_pp, n_mm = np.array([1.0, 4.0]), np.array([9.0, 1.0])
    w = ss_pair_weights(m, q, edges, n_pp, n_mm, mode="binwise", min_counts=1)
    # bin 0: 2·√9/10 = 0.6; bin 1: 2·√4/5 = 0.8
    assert w.tolist() == pytest.approx([1.0, -0.6, -0.6, -0.8, -0.8])
    with pytest.raises(ValueError, match="mode"):
        ss_pair_weights(m, q, edges, n_pp, n_mm, mode="x")


def test_dense_bins_are_the_textbook_geometric_mean():
    """Every bin with ≥ min_counts of both signs: value 2R√(N++N−−) and variance
    R²(N−−/N++ σ²++ + N++/N−− σ²−−), the same as :func:`combinatorial` (rounding only)."""
    rng = np.random.default_rng(4)
    a = rng.poisson(300.0, 50).astype(float)
    b = rng.poisson(120.0, 50).astype(float)
    e = like_sign_estimate(a, b, r=1.1, min_counts=20)
    v, var = combinatorial(a, b, r=1.1)
    assert np.all(e.half_window == 0)
    assert np.allclose(e.value, v, rtol=1e-12)
    assert np.allclose(e.variance, var, rtol=1e-12)
    assert np.allclose(e.factor * (a + b), v, rtol=1e-12)


def test_estimators_differ_on_charge_asymmetric_toy():
    """Independent muon charges, μ+ fraction f = 0.6: N++ : N−− : N+− = f² : (1−f)² :
    2f(1−f). The geometric estimate reproduces the OS expectation; the arithmetic
    R(N++ + N−−) exceeds it by (f² + (1−f)²)/(2f(1−f)) − 1 = 0.52/0.48 − 1 = 8.33%.
    Toy: 40 bins of 10⁴ like-sign pairs each, tolerance 5σ of the Poisson spread of the sum."""
    f = 0.6
    rng = np.random.default_rng(7)
    n_pairs = 1e4 / (f**2 + (1 - f) ** 2)  # pairs of two muons per bin
    a = rng.poisson(n_pairs * f**2, 40).astype(float)
    b = rng.poisson(n_pairs * (1 - f) ** 2, 40).astype(float)
    os_true = 40 * n_pairs * 2 * f * (1 - f)
    geo = like_sign_estimate(a, b).value.sum()
    ari = like_sign_estimate(a, b, estimator="arithmetic").value.sum()
    sigma = np.sqrt(a.sum() + b.sum())
    assert abs(geo - os_true) < 5 * sigma
    assert ari / os_true - 1 == pytest.approx(0.52 / 0.48 - 1, abs=5 * sigma / os_true)
    assert ari - os_true > 20 * sigma  # the two are told apart (8.3% of 3.7e5 ≫ σ ≈ 630)


def test_sparse_bins_unbiased_where_geometric_mean_is_zero():
    """Bins with μ++ = 0.9 and μ−− = 0.4 expected like-sign pairs (one sign often empty):
    the plain bin-wise 2√(N++N−−) loses most of the background (it is 0 unless both signs
    are present: E = 0.42 of 2√(μ++μ−−) here, computed below from the Poisson sums); the
    windowed estimate is unbiased: mean of 400 toys of 60 bins within 4σ of the toy spread.
    The propagated variance of a bin covers the toys' spread (within 10%)."""
    from scipy import stats

    mu_p, mu_m = 0.9, 0.4
    truth = 2 * np.sqrt(mu_p * mu_m)
    rng = np.random.default_rng(11)
    a = rng.poisson(mu_p, (400, 60)).astype(float)
    b = rng.poisson(mu_m, (400, 60)).astype(float)
    plain = np.array([combinatorial(x, y)[0].sum() for x, y in zip(a, b, strict=True)]) / 60
    ests = [like_sign_estimate(x, y, min_counts=20) for x, y in zip(a, b, strict=True)]
    win = np.array([e.value.sum() for e in ests]) / 60
    k = np.arange(0, 40)
    e_sqrt = lambda mu: np.sum(np.sqrt(k) * stats.poisson.pmf(k, mu))
    assert plain.mean() / truth == pytest.approx(
        e_sqrt(mu_p) * e_sqrt(mu_m) / np.sqrt(mu_p * mu_m), rel=0.02
    )
    assert plain.mean() < 0.7 * truth
    assert abs(win.mean() - truth) < 4 * win.std() / np.sqrt(len(win))
    assert all(np.all(e.half_window != 0) for e in ests)  # each bin took a window
    middle = np.array([e.value[30] for e in ests])
    pred = np.sqrt(np.mean([e.variance[30] for e in ests]))
    assert pred == pytest.approx(middle.std(), rel=0.1)


def test_one_sign_absent_everywhere_and_bad_input():
    """No −− pair at all: 2√(N++N−−) = 0 whatever the window (reported as ratio 0; the
    selection warns); unknown estimator and mismatched shapes are errors."""
    e = like_sign_estimate(np.array([5.0, 3.0]), np.zeros(2), min_counts=1)
    assert e.value.tolist() == [0.0, 0.0]
    assert e.ratio_all == 0.0
    assert np.all(e.half_window == -1)
    assert e.variance.tolist() == [5.0, 3.0]  # the arithmetic estimate's, R²(σ²++ + σ²−−)
    with pytest.raises(ValueError, match="estimator"):
        like_sign_estimate(np.ones(2), np.ones(2), estimator="mean")
    with pytest.raises(ValueError, match="shape"):
        like_sign_estimate(np.ones(2), np.ones(3))


def test_pair_factors_match_histogram_estimate():
    """Σ of the SS pairs' factors per bin = the estimate's value (the per-pair weights and
    ``comb_m`` are one estimator)."""
    rng = np.random.default_rng(2)
    edges = np.linspace(0.2, 1.1, 31)
    m = rng.uniform(0.2, 1.1, 3000)
    q = rng.choice([0, 2, -2], 3000, p=[0.5, 0.3, 0.2])
    a = np.histogram(m[q == 2], bins=edges)[0].astype(float)
    b = np.histogram(m[q == -2], bins=edges)[0].astype(float)
    est = like_sign_estimate(a, b, r=1.05, min_counts=40)
    w = pair_factors(m, q, edges, est.factor)
    assert np.all(w[q == 0] == 1.0)
    per_bin = np.histogram(m[q != 0], bins=edges, weights=-w[q != 0])[0]
    assert np.allclose(per_bin, est.value, rtol=1e-12)
    assert np.any(est.half_window > 0)  # some bins (< 40 of −−) took a window


def test_eta_rate_removal():
    """N(η→μμ) = BR ratio × N(η→γμμ), N(η→γμμ) from the window yield and the Kroll–Wada
    fraction in the window; a pure η Dalitz spectrum recovers its own total."""
    edges = np.linspace(0.2113, 1.1, 90)
    c = 0.5 * (edges[1:] + edges[:-1])
    n_total = 1e6
    dens = eta_dalitz_spectrum(c)
    spectrum = n_total * dens / dens.sum()
    peak, n_dal, n_mumu = eta_mumu_rate_peak(edges, spectrum)
    # the window starts at the first edge: all of the spectrum's content above 0.2113
    assert n_dal == pytest.approx(n_total, rel=0.03)
    assert n_mumu == pytest.approx(n_dal * 5.8e-6 / 3.1e-4, rel=0.1)
    assert eta_br_ratio() == pytest.approx(5.8e-6 / 3.1e-4, rel=0.2)  # PDG 2024
    assert c[np.argmax(peak)] == pytest.approx(0.5479, abs=0.01)
