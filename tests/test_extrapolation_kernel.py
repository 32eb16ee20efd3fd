"""The extrapolation fit's compiled likelihood sums
(:mod:`gammastar.yields._extrapolation_kernel`) against the numpy formulas of
:mod:`gammastar.yields.extrapolation`, its analytic gradient against finite differences, and the
sandwich's Hessian by fit group against the difference of the whole gradient."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from _tolerance import EPS64

from gammastar.yields.extrapolation import (
    FORMS,
    NOMINAL,
    _Group,
    _group_terms,
    _hessian,
    _nll_and_grad,
    _Reference,
)

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
    return _Reference(_Region(), MASS, 7)


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
    grp = _Group((*_pairs(4000, 3, spread=0.03), ref))
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
    data = [_Group((*_pairs(3000, 11), ref)), _Group((*_pairs(3000, 12), ref))]
    par = np.array([3.35, 1.15, 0.18, 0.21, 0.4, 0.9])  # ȳ, σ_y, T_0, T_1, a_0, a_1
    f = FORMS[form]
    _, g = _nll_and_grad(par, data, None, None, f, None)
    h = 1e-5
    for j in range(par.size):
        e = np.zeros(par.size)
        e[j] = h
        fd = (_nll_and_grad(par + e, data, None, None, f, None)[0]
              - _nll_and_grad(par - e, data, None, None, f, None)[0]) / (2 * h)  # fmt: skip
        assert g[j] == pytest.approx(fd, rel=1e-6, abs=1e-7), j


@pytest.mark.parametrize("shared", [(None, None), (3.37, None), (3.37, 1.2)])
def test_hessian_by_groups_equals_the_difference_of_the_whole_gradient(ref, shared):
    """The sandwich's Hessian takes a group parameter's column from that group's terms alone
    (the other groups' gradients do not move): against the central difference of the whole
    gradient (the definition), with ȳ and σ_y free or fixed. The two differ only by the
    rounding of the sum over groups: ≤ 4 eps Σ_g|∇_g|/(2h) per entry (Higham §4.2)."""
    mu_fixed, sigma = shared
    data = [_Group((*_pairs(2000, 20 + k, mass=MASS + 0.01 * k), ref)) for k in range(3)]
    head = ([] if mu_fixed is not None else [3.35]) + ([] if sigma is not None else [1.15])
    q = np.array([*head, 0.18, 0.21, 0.16, 0.4, 0.9, -0.3])
    hmat = _hessian(data, q, sigma, mu_fixed, None)
    wtot = sum(d.wsum for d in data)

    def grad(par):
        return _nll_and_grad(par, data, sigma, mu_fixed, NOMINAL, None)[1] * wtot

    n_sh = len(head)
    mu = q[0] if mu_fixed is None else mu_fixed
    s = q[n_sh - 1] if sigma is None else sigma
    # Σ_g |∇_g| (raw sums) near q: the scale of the rounding of the sum over groups
    scale = sum(np.abs(_group_terms(d, q[n_sh + k], mu, s, q[n_sh + 3 + k], NOMINAL, True)[1])
                for k, d in enumerate(data)).max()  # fmt: skip
    full = np.empty((q.size, q.size))
    bound = np.empty((q.size, q.size))
    for j in range(q.size):
        h = 1e-5 * max(abs(q[j]), 0.1)
        e = np.zeros(q.size)
        e[j] = h
        full[:, j] = (grad(q + e) - grad(q - e)) / (2 * h)
        bound[:, j] = 8 * EPS64 * scale / (2 * h)
    full = 0.5 * (full + full.T)
    np.testing.assert_array_less(np.abs(hmat - full), bound + bound.T)


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
