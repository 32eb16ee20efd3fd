"""The decay-in-volume kernel (gammastar.physics.decay) against the exponential decay law
evaluated in 50-digit arithmetic (mpmath), its limits, and the truncated-exponential sampler
against its own CDF."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
from _tolerance import EPS64

from gammastar.physics.decay import decay_probability, sample_decay_length


def _exact(a: float, b: float, ell: float) -> float:
    """e^{−a/ℓ} − e^{−b/ℓ} with 50 significant digits."""
    with mpmath.workdps(50):
        a, b, ell = mpmath.mpf(a), mpmath.mpf(b), mpmath.mpf(ell)
        tail = 0 if mpmath.isinf(b) else mpmath.exp(-b / ell)
        return float(mpmath.exp(-a / ell) - tail)


@pytest.mark.parametrize("ell", [1e-3, 0.3, 1.0, 7.0, 1e3, 1e8, 1e14, 1e30])
@pytest.mark.parametrize(("a", "b"), [(0.0, 1.0), (5.0, 10.0), (5.0, 5.0 + 1e-6), (2.0, np.inf)])
def test_probability_equals_the_decay_law(a, b, ell):
    """P = e^{−a/ℓ} − e^{−b/ℓ} to 20 ulp relative (a few roundings of exp, expm1 and two
    divisions), for ℓ ≪ L (P down to e^{−5000}, a subnormal or 0 in both) up to ℓ ≫ L, where the
    plain difference of two exponentials would keep no digit (P ≈ (b − a)/ℓ ~ 1e−30)."""
    want = _exact(a, b, ell)
    got = float(decay_probability(a, b, ell))
    assert got == pytest.approx(want, rel=20 * EPS64, abs=1e-300)


def test_probability_where_the_plain_difference_fails():
    """ℓ = 1e14 m, a 5 m volume: P = 5e−14 (1 − 2.5e−14 ...); e^{−a/ℓ} − e^{−b/ℓ} in float64 is
    wrong by ~1% there, the kernel by less than 1e−14 relative."""
    a, b, ell = 5.0, 10.0, 1e14
    want = _exact(a, b, ell)
    plain = np.exp(-a / ell) - np.exp(-b / ell)
    assert abs(plain / want - 1) > 1e-3
    assert float(decay_probability(a, b, ell)) == pytest.approx(want, rel=1e-14)


def test_probability_limits_and_broadcasting():
    """ℓ = 0: a decay at L = 0, counted by a volume that starts there; ℓ = ∞: no decay (also
    with b = ∞); b ≤ a: 0; arrays broadcast."""
    # exact limits by construction (e^(−∞) = 0, an empty range), not rounded results
    assert float(decay_probability(0.0, 3.0, 0.0)) == 1.0
    assert float(decay_probability(1.0, 3.0, 0.0)) == 0.0
    assert float(decay_probability(1.0, 3.0, np.inf)) == 0.0
    assert float(decay_probability(1.0, np.inf, np.inf)) == 0.0
    assert float(decay_probability(3.0, 1.0, 2.0)) == 0.0
    p = decay_probability(np.array([[0.0], [1.0]]), np.array([[1.0], [2.0]]), np.array([1.0, 2.0]))
    assert p.shape == (2, 2)
    np.testing.assert_allclose(p[1, 1], np.exp(-0.5) - np.exp(-1.0), rtol=4 * EPS64)


@pytest.mark.parametrize(("a", "b", "ell"), [(5.0, 10.0, 0.5), (5.0, 10.0, 3.0), (1.0, 2.0, 1e12),
                                             (2.0, np.inf, 4.0)])  # fmt: skip
def test_sampled_lengths_invert_the_truncated_cdf(a, b, ell):
    """Each L lies in [a, b] and solves F(L) = u for its own uniform, F the exponential law of
    mean ℓ truncated to [a, b]: F(L) = (1 − e^{−(L−a)/ℓ}) / (1 − e^{−(b−a)/ℓ}), evaluated with
    expm1. Tolerance 1e−12 absolute: L is exact to ~10 ulp of itself, which moves F by
    ≲ 10 eps · L · max F′, F′ ≤ 1/(ℓ (1 − e^{−(b−a)/ℓ})) ≤ 2 /m and L ≤ 10 m on finite
    intervals here (≲ 5e−14); on [2, ∞) with ℓ = 4, L F′ ≤ e^{−1/2} (at L = 4)."""
    u = np.random.default_rng(3).random(100_000)
    length = sample_decay_length(a, b, ell, u)
    assert np.all((length >= a) & (length <= b))
    f = -np.expm1(-(length - a) / ell) / (-np.expm1(-(b - a) / ell))
    np.testing.assert_allclose(f, u, rtol=0, atol=1e-12)
