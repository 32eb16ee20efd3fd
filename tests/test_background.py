"""Like-sign subtraction: formula, error propagation, per-pair weights, η → μμ rate (issue 3)."""

from __future__ import annotations

import numpy as np
import pytest

from gammastar.background import (
    combinatorial,
    eta_br_ratio,
    eta_dalitz_spectrum,
    eta_mumu_rate_peak,
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
