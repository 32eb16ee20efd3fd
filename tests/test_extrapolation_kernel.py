"""The extrapolation fit's compiled likelihood sums
(:mod:`gammastar.yields._extrapolation_kernel`) against the numpy formulas of
:mod:`gammastar.yields.extrapolation`, its analytic gradient and Hessian against finite
differences, and the groups' Newton fits against L-BFGS-B."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from _tolerance import EPS64

from gammastar.yields.extrapolation.likelihood import (
    NEWTON_DECREMENT,
    FitGroup,
    _group_hess,
    _group_terms,
    _hessian,
    _lbfgs,
    _newton_group,
    fit_joint,
    nll_and_grad,
)
from gammastar.yields.extrapolation.model import FORMS, NOMINAL, POWER_BOUNDS
from gammastar.yields.extrapolation.reference import ReferenceSample

MASS, T_TRUE, Y_MEAN, Y_SIGMA = 0.3, 0.17, 3.37, 1.2


class _Region:
    """A fiducial region in the duck type of
    :class:`~gammastar.corrections.pair_acceptance.FiducialRegion`: p_T > 0.3 GeV and a
    rapidity window (the shape of the NA60-like spectrometer's at 0.3 GeV)."""

    def acceptance(self, m, qt, e):
        mt = np.sqrt(qt**2 + m**2)
        y = np.arccosh(np.maximum(e / mt, 1.0))
        return np.where(qt > 0.3, 0.9 * np.exp(-0.5 * ((y - 3.6) / 0.7) ** 2), 0.0)

    def contains(self, m, qt, e):
        return self.acceptance(m, qt, e) >= 0.05


def _pairs(n, seed, mass=MASS, spread=0.0):
    """Weighted pairs inside the region (weights 1/A, a few negative as like-sign pairs),
    masses spread uniformly by ±``spread`` around ``mass``."""
    from gammastar.physics.sampling import ParametricSampler

    rng = np.random.default_rng(seed)
    out = ParametricSampler(T_TRUE, Y_MEAN, Y_SIGMA, power=0.5).sample(mass, n, seed=seed)
    m = mass + spread * (2 * rng.random(n) - 1)
    a = _Region().acceptance(mass, out["qT"], out["E"])
    keep = a >= 0.05
    qt, e = out["qT"][keep], out["E"][keep]
    y = np.arccosh(e / np.sqrt(qt**2 + mass**2))
    w = 1.0 / a[keep] * np.where(rng.random(qt.size) < 0.05, -0.3, 1.0)
    return m[keep], qt, y, w


@pytest.fixture(scope="module")
def ref():
    """The reference sample at MASS from 10⁵ draws of the reference model (the fit's own is
    :data:`REFERENCE_SAMPLES`): the same construction and kernels on fewer points. The
    tolerances below that depend on the sample take its size n from it; the others are set by
    the finite-difference steps and the fits' stopping rules."""
    from gammastar.physics.sampling import ParametricSampler
    from gammastar.yields.extrapolation.reference import REFERENCE, _mass_free_parts

    draws = _mass_free_parts(ParametricSampler(*REFERENCE).draws(100_000, 7))
    return ReferenceSample(_Region(), MASS, 7, draws=draws)


def _ref_scale(ref, f, t, a, mu=3.4, s=1.1):
    """Σ|e_i ∂ ln p_i| / Σe_i over the reference sample per gradient component (T, ȳ, σ_y, a):
    the scale of the rounding of ∂ ln P_F (numpy formulas' own terms)."""
    lp = f.log_pt(MASS, ref.pt, t, a) + f.log_y(ref.y, mu, s)
    e = np.exp(lp - ref.log_ref)
    d = np.vstack([f.dlogp(MASS, ref.pt, ref.y, t, mu, s, a), f.dlog_pt_da(MASS, ref.pt, t, a)])
    return np.abs(d) @ e / e.sum()


# (T, a): the closed forms at a = 0 and 1 and the general power (normalisation by the
# incomplete gamma function)
POINTS = [(0.2, 0.0), (0.15, 1.0), (0.23, 0.37), (0.18, -0.8)]


@pytest.mark.parametrize("form", ["nominal", "mt_boltzmann", "logistic_y"])
@pytest.mark.parametrize(("t", "a"), POINTS)
def test_reference_sums_equal_the_numpy_formulas(ref, form, t, a):
    """ln P_F and its gradient: one compiled pass against the numpy formulas. Both sum the
    same terms in another order: they differ by at most n·eps·Σ|terms| (Higham §4.2), n the
    reference sample's size, here relative to the sum of the terms' moduli."""
    f = FORMS[form]
    lp, g = ref.log_fraction_and_grad(t, 3.4, 1.1, f, a, with_power=True)
    lp0, g0 = ref._log_fraction_and_grad_numpy(t, 3.4, 1.1, f, a, with_power=True)
    n = ref.pt.size
    assert abs(lp - lp0) <= 4 * n * EPS64
    np.testing.assert_array_less(np.abs(g - g0), 4 * n * EPS64 * _ref_scale(ref, f, t, a))


@pytest.mark.parametrize("form", ["nominal", "mt_boltzmann", "logistic_y"])
@pytest.mark.parametrize(("t", "a"), POINTS)
def test_group_sums_equal_the_numpy_formulas(ref, form, t, a):
    """A fit group's weighted log-likelihood and gradient (pairs over a 60 MeV mass range: the
    p_T normalisation interpolated between nodes, as the numpy formulas interpolate it): the
    compiled sums against the form without them (``y_kernel=None``: the numpy path)."""
    grp = FitGroup((*_pairs(4000, 3, spread=0.03), ref))
    f = FORMS[form]
    f_np = dataclasses.replace(f, y_kernel=None)
    v, g = _group_terms(grp, t, 3.4, 1.1, a, f, True)
    v0, g0 = _group_terms(grp, t, 3.4, 1.1, a, f_np, True)
    m, pt, y, w, _ = grp
    n = w.size
    lp = f.log_pt(m, pt, t, a) + f.log_y(y, 3.4, 1.1)
    d = np.vstack([f.dlogp(m, pt, y, t, 3.4, 1.1, a), f.dlog_pt_da(m, pt, t, a)])
    # each: a sum over the n pairs, less Σw times the reference's mean over n_ref samples
    n_ref = ref.pt.size
    tol_v = 4 * EPS64 * (n * np.abs(w) @ np.abs(lp) + n_ref * abs(grp.wsum))
    tol_g = 4 * EPS64 * (n * np.abs(d) @ np.abs(w)
                         + n_ref * abs(grp.wsum) * _ref_scale(ref, f, t, a))  # fmt: skip
    assert abs(v - v0) <= tol_v
    np.testing.assert_array_less(np.abs(g - g0), tol_g)


@pytest.mark.parametrize("form", ["nominal", "logistic_y"])
def test_gradient_equals_finite_differences(ref, form):
    """∂NLL/∂(ȳ, σ_y, T_g, a_g) of two groups: the analytic gradient against central
    differences of the NLL, step h = 1e-5: truncation h² f'''/6 ≲ 1e-10 and rounding
    eps |f| / h ≲ 1e-10 per unit weight, and the gradient's own central difference of the p_T
    normalisation in a (step 1e-5: ≲ 1e-9), so 1e-6 leaves a wide margin."""
    data = [FitGroup((*_pairs(3000, 11), ref)), FitGroup((*_pairs(3000, 12), ref))]
    par = np.array([3.35, 1.15, 0.18, 0.21, 0.4, 0.9])  # ȳ, σ_y, T_0, T_1, a_0, a_1
    f = FORMS[form]
    _, g = nll_and_grad(par, data, None, None, f, None)
    h = 1e-5
    for j in range(par.size):
        e = np.zeros(par.size)
        e[j] = h
        fd = (nll_and_grad(par + e, data, None, None, f, None)[0]
              - nll_and_grad(par - e, data, None, None, f, None)[0]) / (2 * h)  # fmt: skip
        assert g[j] == pytest.approx(fd, rel=1e-6, abs=1e-7), j


def _hessian_cases():
    """(power, shared, form): every combination; in the default suite every fitted-power case
    and every nominal one (the sandwich's assembly), and for the other forms each fixed power
    with one of the shared settings (the other: `make test-all`)."""
    for power in (None, 0.0, 0.3):
        for i, shared in enumerate([(None, None), (3.37, 1.2)]):
            for form in ("nominal", "mt_boltzmann", "logistic_y"):
                default = power is None or form == "nominal" or i == (power == 0.3)
                # slow: the form's fixed-power rows covered by its case at the other `shared`
                # (same function, the same fixed-power path; nominal covers both shared ones)
                marks = () if default else (pytest.mark.slow,)
                yield pytest.param(power, shared, form, marks=marks,
                                   id=f"{power}-shared{i}-{form}")  # fmt: skip


@pytest.mark.parametrize(("power", "shared", "form"), list(_hessian_cases()))
def test_analytic_hessian_equals_the_difference_of_the_gradient(ref, form, shared, power):
    """The analytic Hessian of −ln L_w (:func:`_group_hess` per group, summed into the shared
    rows) against central differences of the analytic gradient, step h = 10⁻⁴ max(|q|, 0.1):
    truncation h² ∂³/6 ≲ 10⁻⁸ relative; the gradient's own ∂K/∂a, a difference of step 10⁻⁵
    (rounding ≈ 10⁻¹¹ |K| per pair), divided by 2h ≳ 2·10⁻⁵, moves an a column by ≲ 10⁻⁵ of
    its diagonal entry: 10⁻⁶ of the largest entry and 10⁻⁴ of each diagonal one."""
    mu_fixed, sigma = shared
    f = FORMS[form]
    data = [FitGroup((*_pairs(3000, 20 + k, mass=MASS + 0.01 * k), ref)) for k in range(3)]
    head = ([] if mu_fixed is not None else [3.35]) + ([] if sigma is not None else [1.15])
    q = np.array([*head, 0.18, 0.21, 0.16, *([0.4, 0.9, -0.3] if power is None else [])])
    n_sh, n_g = len(head), 3
    mu = q[0] if mu_fixed is None else mu_fixed
    s = q[n_sh - 1] if sigma is None else sigma
    local = [0] + ([1, 2] if mu_fixed is None else []) + ([3] if power is None else [])
    hmat = np.zeros((q.size, q.size))
    for g, d in enumerate(data):
        rows = [n_sh + g, *range(n_sh)] + ([n_sh + n_g + g] if power is None else [])
        a = q[n_sh + n_g + g] if power is None else power
        hmat[np.ix_(rows, rows)] -= _group_hess(d, q[n_sh + g], mu, s, a, f)[2][
            np.ix_(local, local)]  # fmt: skip
    if form == "nominal":  # the sandwich's own assembly
        np.testing.assert_allclose(_hessian(data, q, sigma, mu_fixed, power), hmat, rtol=1e-12)
    wtot = sum(d.wsum for d in data)
    full = np.empty((q.size, q.size))
    for j in range(q.size):
        h = 1e-4 * max(abs(q[j]), 0.1)
        e = np.zeros(q.size)
        e[j] = h
        full[:, j] = (nll_and_grad(q + e, data, sigma, mu_fixed, f, power)[1]
                      - nll_and_grad(q - e, data, sigma, mu_fixed, f, power)[1]) * wtot / (2 * h)  # fmt: skip
    full = 0.5 * (full + full.T)
    assert np.abs(hmat - full).max() <= 1e-6 * np.abs(full).max()
    np.testing.assert_allclose(np.diag(hmat), np.diag(full), rtol=1e-4)


def test_group_hess_value_and_gradient_equal_the_group_terms(ref):
    """:func:`_group_hess`'s value and gradient are :func:`_group_terms`' (two compiled passes
    summing the same terms: n·eps of the terms' moduli, Higham §4.2)."""
    grp = FitGroup((*_pairs(4000, 5, spread=0.03), ref))
    v, g, _ = _group_hess(grp, 0.19, 3.4, 1.1, 0.6)
    v0, g0 = _group_terms(grp, 0.19, 3.4, 1.1, 0.6, NOMINAL, True)
    n = grp[3].size + ref.pt.size
    assert v == pytest.approx(v0, rel=4 * n * EPS64)
    np.testing.assert_allclose(g, g0, rtol=0, atol=4 * n * EPS64 * np.abs(g0).max() * 10)


@pytest.mark.parametrize("start", [(0.2, 0.0), (0.12, 2.0)])
def test_newton_finds_the_minimum_lbfgs_finds(ref, start):
    """One group's (T, a) at fixed ȳ, σ_y: Newton's method on the analytic Hessian
    (:func:`_newton_group`) lands where L-BFGS-B does (ftol 10⁻¹⁴: its stop leaves ≈ √(2·10⁻¹⁴
    |f| / λ_min) ≈ 10⁻⁵ along the weak direction), with the gradient at the Newton point
    zero to its rounding, from a cold start (a = 0: an indefinite Hessian there) and another."""
    grp = FitGroup((*_pairs(6000, 9), ref))
    got = _newton_group(grp, *start, 3.37, 1.2, NOMINAL)
    assert got is not None
    x_n, f_n = got
    x_l, f_l = _lbfgs([grp], list(start), [(0.03, 1.5), (-1.9, 5.0)], 1.2, 3.37, NOMINAL, None)
    assert f_n <= f_l + 1e-14
    np.testing.assert_allclose(x_n, x_l, atol=3e-5)
    _, g = nll_and_grad(x_n, [grp], 1.2, 3.37, NOMINAL, None)
    assert np.abs(g).max() < 1e-9


@pytest.mark.parametrize("seed", [9, 11, 21])
def test_newton_last_step_ends_at_the_minimum(ref, seed):
    """The last Newton step, taken without evaluating its end (decrement below
    :data:`NEWTON_LAST`), ends where the decrement gᵀH⁻¹g evaluated there is below
    :data:`NEWTON_DECREMENT` (quadratic convergence: ≈ C·dec² ≲ 10⁻²¹), and the NLL it returns,
    the quadratic model's f − dec/2, is the NLL evaluated there up to the rounding of the sums
    over ~10⁴ pairs and reference points (√n·eps ≈ 100 eps of |f|, 200 allowed)."""
    grp = FitGroup((*_pairs(6000, seed), ref))
    x, f = _newton_group(grp, 0.2, 0.0, 3.37, 1.2, NOMINAL)
    v, g, h = _group_hess(grp, x[0], 3.37, 1.2, x[1])
    w, idx = grp.wsum, [0, 3]
    gg, hh = -g[idx] / w, -h[np.ix_(idx, idx)] / w
    assert float(gg @ np.linalg.solve(hh, gg)) < NEWTON_DECREMENT
    assert abs(f - (-v / w)) <= 200 * EPS64 * abs(f)


def test_newton_hands_a_minimum_on_a_bound_to_lbfgs(ref):
    """Pairs whose p_T spectrum ends abruptly (cut at 0.45 GeV): the family's best shape has
    a on a bound of :data:`POWER_BOUNDS` (here the upper, 5, with a small T); Newton returns
    ``None`` and :func:`fit_joint` takes L-BFGS-B's bounded minimum there."""
    m, pt, y, w = _pairs(6000, 13)
    keep = pt < 0.45  # a p_T spectrum cut off above: far softer than any power allows
    grp = FitGroup((m[keep], pt[keep], y[keep], w[keep], ref))
    assert _newton_group(grp, 0.2, 0.0, 3.37, 1.2, NOMINAL) is None
    x, _ = fit_joint([grp], (0.2, 3.37, 1.2, 0.0), sigma=1.2, mu_fixed=3.37, power=None)
    assert x[3] == pytest.approx(POWER_BOUNDS[1]) or x[3] == pytest.approx(POWER_BOUNDS[0])


def test_blas_held_to_one_thread_inside_the_fit_and_restored_after():
    """:func:`gammastar.core.threads.single_thread_blas` (around L-BFGS-B): every loaded BLAS at
    one thread inside, each back at its own count after."""
    import scipy.optimize  # noqa: F401  (loads scipy's BLAS, as the fit does)
    from threadpoolctl import threadpool_info

    from gammastar.core.threads import single_thread_blas

    def blas():
        return {i["filepath"]: i["num_threads"] for i in threadpool_info()
                if i["user_api"] == "blas"}  # fmt: skip

    before = blas()
    assert before
    with single_thread_blas():
        assert set(blas().values()) == {1}
    assert blas() == before
