"""The weighted likelihood of the model truncated to the fiducial region: its value, gradient and
Hessian per fit group, the joint fit (L-BFGS, then Newton per group) and the sandwich covariance
H⁻¹ J H⁻¹ (Langenbruch, Eur. Phys. J. C 82 (2022) 393; :func:`sandwich_covariance`).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.core.threads import single_thread_blas, thread_map
from gammastar.yields._extrapolation_kernel import group_sums, hess_sums
from gammastar.yields.extrapolation.layout import Layout
from gammastar.yields.extrapolation.model import (
    BOUNDS,
    NOMINAL,
    POWER_BOUNDS,
    ModelForm,
    pt_terms,
)

__all__ = ["NEWTON_DECREMENT", "NEWTON_LAST", "PROFILE_STEP", "FitGroup", "FitPairs", "JointFit", "fit_joint", "free_parameters", "group_params", "nll_and_grad", "sandwich_and_cross", "sandwich_covariance", "split_groups"]


def _dlogp(m, pt, y, t, mu, s, a=0.0):
    """∂ ln p / ∂(T, ȳ, σ_y) per point of the nominal form, shape (3, n)."""
    return NOMINAL.dlogp(m, pt, y, t, mu, s, a)


def split_groups(par, n_groups: int, power: float | None) -> tuple[NDArray, NDArray]:
    """The T_g and the m_T powers a_g of the tail ``par`` (T_g..., [a_g...]): the a_g from
    ``par`` when fitted (``power=None``), else ``power`` for every group."""
    par = np.asarray(par, dtype=np.float64)
    if power is None:
        return par[:n_groups], par[n_groups : 2 * n_groups]
    return par[:n_groups], np.full(n_groups, float(power))


def _unpack(q, data, power, mu_fixed, sigma):
    """The groups and the parameters of the free vector ``q`` (shared ȳ, σ_y where free, then
    the T_g and, with ``power`` None, the a_g): ``(groups, ȳ, σ_y, T_g, a_g, its layout)``, for
    the likelihood's value and its derivatives alike."""
    data = _groups(data)
    lay = Layout.of(len(data), mu_fixed, sigma, power)
    mu, s, ts, powers = lay.unpack(q, mu_fixed, sigma, power)
    return data, mu, s, ts, powers, lay


class FitGroup(tuple[Any, ...]):
    """One fit group ``(m, p_T, y, w, reference)`` (a tuple, as the fit's ``data`` holds it)
    with what the compiled likelihood sums need precomputed: ln p_T, m_T, ln m_T of its pairs
    (fixed while the parameters move) and Σw. ``FitGroup(group)`` of a group is the group."""

    m_: NDArray[np.float64]
    y_: NDArray[np.float64]
    w_: NDArray[np.float64]
    lpt: NDArray[np.float64]
    mt: NDArray[np.float64]
    lmt: NDArray[np.float64]
    wsum: float

    def __new__(cls, item: Any) -> Self:
        if isinstance(item, cls):
            return item
        self = super().__new__(cls, tuple(item))
        m, pt, y, w, _ = self
        f64 = lambda v: np.ascontiguousarray(v, dtype=np.float64)
        self.m_, self.y_, self.w_ = f64(m), f64(y), f64(w)
        pt = f64(pt)
        with np.errstate(divide="ignore"):
            self.lpt = np.log(pt)
        self.mt = np.sqrt(pt**2 + self.m_**2)
        self.lmt = np.log(self.mt)
        self.wsum = float(np.sum(w))
        return self


def _log_h(grp: FitGroup, form: ModelForm) -> tuple[NDArray[np.float64], float]:
    """ln h(x_i) of a form's parameter-free factor at a group's pairs and its weighted sum
    Σ_i w_i ln h(x_i) (zeros without one; kept per factor on the group): the sums over the
    pairs hold ln p without it."""
    if not form.has_factor:
        return np.zeros(grp.y_.size), 0.0
    key = (form.x_power, form.beam_energy, form.dalitz_mass, form.factor)
    cache = grp.__dict__.setdefault("_log_h", {})
    if key not in cache:
        lh = np.asarray(form.log_factor(grp.m_, np.asarray(grp[1], dtype=np.float64), grp.y_),
                        dtype=np.float64)  # fmt: skip
        cache.clear()
        cache[key] = (lh, float(np.sum(grp.w_ * lh)))
    return cache[key]


def _groups(data) -> list[FitGroup]:
    """``data`` (per fit group (m, p_T, y, w, :class:`ReferenceSample`)) as :class:`FitGroup` objects."""
    return [FitGroup(d) for d in data]


def _group_terms(grp: FitGroup, t: float, mu: float, s: float, a: float, form: ModelForm,
                 fit_a: bool) -> tuple[float, NDArray]:  # fmt: skip
    """One fit group's weighted truncated log-likelihood Σ_i w_i [ln p(x_i) − ln P_F] and its
    gradient in (T, ȳ, σ_y[, a]) (not per unit weight): the pairs' sums in one compiled pass
    (:mod:`gammastar.yields._extrapolation_kernel`) where the form has one, else the numpy functions
    of the form."""
    m, pt, y, w, ref = grp
    wsum = grp.wsum
    lpf, gpf = ref.log_fraction_and_grad(t, mu, s, form, a, with_power=fit_a)
    if form.y_kernel is None:
        lp = form.log_p_base(m, pt, y, t, mu, s, a) + _log_h(grp, form)[0]
        gd = form.dlogp(m, pt, y, t, mu, s, a) @ w
        if fit_a:
            gd = np.append(gd, float(form.dlog_pt_da(m, pt, t, a) @ w))
        return float(np.sum(w * lp)) - wsum * lpf, gd - wsum * gpf

    a_eff = a + form.power_offset
    k, c_t, dn = pt_terms(grp.m_, t, a_eff, fit_a)
    out = group_sums(grp.lpt, grp.lmt, grp.mt, grp.y_, grp.w_, grp.w_, False, grp.m_, k, c_t,
                     dn, t, a_eff, mu, s, form.y_kernel == "logistic")  # fmt: skip
    val = float(out[1]) + _log_h(grp, form)[1]
    return val - wsum * lpf, out[2 : 6 if fit_a else 5] - wsum * gpf


def nll_and_grad(par, data, sigma, mu_fixed=None, form=NOMINAL, power=0.0):
    """Weighted truncated NLL per unit weight and its gradient; ``par`` = ([ȳ], [σ_y], T_g...,
    [a_g...]) with σ_y fixed to ``sigma`` and ȳ to ``mu_fixed`` when given, the m_T powers
    a_g fitted when ``power`` is ``None`` (else all equal to it). Each group's sums by
    :func:`_group_terms`."""
    data, mu, s, ts, powers, lay = _unpack(par, data, power, mu_fixed, sigma)
    wtot = 0.0
    tot = 0.0
    g_mu = g_s = 0.0
    g_t = np.zeros(len(ts))
    g_a = np.zeros(len(ts))
    fit_a = power is None
    for k, (grp, t, a) in enumerate(zip(data, ts, powers, strict=True)):
        wtot += grp.wsum
        val, gd = _group_terms(grp, t, mu, s, a, form, fit_a)
        tot += val
        g_t[k], g_mu, g_s = gd[0], g_mu + gd[1], g_s + gd[2]
        if fit_a:
            g_a[k] = gd[3]
    return -tot / wtot, -lay.pack(g_mu, g_s, g_t, g_a) / wtot


def fit_joint(data, start, sigma=None, mu_fixed=None, form=NOMINAL, power=0.0, x_start=None):
    """Joint weighted fit: one (ȳ, σ_y) for all groups, one T per group (σ_y fixed to
    ``sigma`` when given: the profile; ȳ fixed to ``mu_fixed`` when given), and with
    ``power=None`` one m_T power a per group (else every a = ``power``).

    ``data``: per group (m, pT, y, w, :class:`ReferenceSample`). ``start``: (T, ȳ, σ_y[, a]) for
    every group; ``x_start``: instead, a previous fit's (ȳ, σ_y, T_g..., [a_g...]).

    Returns:
        ``(x, nll)``: (ȳ, σ_y, T_g..., [a_g...]) and the NLL per unit weight at the minimum.
    """
    data = _groups(data)  # the pairs' fixed logarithms once, not at every step
    free_mu, free_s, fit_a = mu_fixed is None, sigma is None, power is None
    g = len(data)
    if x_start is not None:
        mu0, s0 = x_start[0], x_start[1]
        t0 = np.asarray(x_start[2 : 2 + g], dtype=np.float64)
        a0 = np.asarray(x_start[2 + g : 2 + 2 * g], dtype=np.float64)
        if a0.size != g:
            a0 = np.zeros(g)
    else:
        t0, mu0, s0 = np.full(g, start[0]), start[1], start[2]
        a0 = np.full(g, float(start[3]) if len(start) > 3 else 0.0)
    s0 = s0 if sigma is None else sigma
    if fit_a and not free_mu and not free_s:
        # nothing shared: the groups' (T_g, a_g) fits are independent, and the joint NLL per
        # unit weight their weighted mean (one joint L-BFGS over 2G strongly correlated
        # parameters takes ~500 steps over every group, these ~30 over one); each by Newton's
        # method on the analytic Hessian (~5 steps), L-BFGS-B where that does not converge
        def one(k: int) -> tuple[NDArray, float]:
            got = _newton_group(data[k], t0[k], a0[k], mu_fixed, sigma, form)
            if got is None:
                got = _lbfgs(data[k : k + 1], [t0[k], a0[k]], [BOUNDS[0], form.power_bounds],
                             sigma, mu_fixed, form, None)  # fmt: skip
            return got

        # the groups side by side (their sums are compiled nogil); BLAS held to one thread
        # around all of them, so that the threads' own holds nest inside it
        with single_thread_blas():
            gots = thread_map(one, range(g))
        xs, tot, wtot = [], 0.0, 0.0
        for k, got in enumerate(gots):  # summed in group order: the same on any thread count
            wk = data[k].wsum
            xs.append(got[0])
            tot, wtot = tot + wk * got[1], wtot + wk
        ts_, as_ = np.array([v[0] for v in xs]), np.array([v[1] for v in xs])
        return np.concatenate([[mu_fixed, sigma], ts_, as_]), tot / wtot
    lay = Layout.of(g, mu_fixed, sigma, power)
    x0 = lay.pack(mu0, s0, t0, a0)
    bounds = (([BOUNDS[1]] if free_mu else []) + ([BOUNDS[2]] if free_s else [])
              + [BOUNDS[0]] * g + ([form.power_bounds] * g if fit_a else []))  # fmt: skip
    got = _newton_joint(data, x0, bounds, sigma, mu_fixed, form, power)
    x_fit, nll = got if got is not None else _lbfgs(data, x0, bounds, sigma, mu_fixed, form,
                                                     power)  # fmt: skip
    x = list(x_fit)
    head = [x.pop(0) if free_mu else mu_fixed, x.pop(0) if free_s else sigma]
    return np.asarray(head + x, dtype=np.float64), nll


def _lbfgs(data, x0, bounds, sigma, mu_fixed, form, power) -> tuple[NDArray, float]:
    """:func:`nll_and_grad` minimised by L-BFGS-B from ``x0`` within ``bounds``: ``(x, nll)``."""
    from scipy.optimize import minimize


    with single_thread_blas():  # L-BFGS-B's tiny LAPACK calls: threads only cost
        res = minimize(nll_and_grad, x0, args=(data, sigma, mu_fixed, form, power), jac=True,
                       method="L-BFGS-B", bounds=bounds,
                       options={"ftol": 1e-14, "gtol": 1e-10, "maxiter": 2000})  # fmt: skip
    return np.asarray(res.x, dtype=np.float64), float(res.fun)


NEWTON_DECREMENT = 1e-20
"""Newton's method stops when gᵀH⁻¹g of the NLL per unit weight is below this: a parameter
then lies within √(10⁻²⁰/λ) of the minimum along an eigenvector of H of eigenvalue λ (≳ 10⁻³
on the demo's groups: ≲ 3·10⁻⁹), three orders below where L-BFGS-B's ftol = 10⁻¹⁴ stops."""
NEWTON_LAST = 1e-12
"""Below this decrement Newton's full step is the last one, taken without evaluating its end:
the decrement falls quadratically, to ≈ C·dec² after a step (C ≈ 100–300 on the demo's groups),
so the step ends at ≲ 10⁻²¹, below :data:`NEWTON_DECREMENT` and the decrement's own rounding
floor (10⁻²⁰–10⁻¹⁸, the reference sample's sums), where a further evaluation only confirms it
(one of the 3–5 evaluations of a warm-started refit)."""


def _newton_group(grp, t0: float, a0: float, mu: float, s: float,
                  form: ModelForm) -> tuple[NDArray, float] | None:  # fmt: skip
    """One group's (T, a) at fixed ȳ, σ_y minimising the NLL per unit weight by Newton's method
    on the analytic gradient and Hessian (:func:`_group_hess`), with a backtracking line
    search (Armijo) inside the bounds, the Hessian's eigenvalues replaced by their moduli
    where it is not positive definite: ``((T, a), nll)``, or ``None`` where it cannot be used
    or does not converge (a form without a compiled rapidity density, a start outside the
    bounds, a minimum on a bound): the caller then fits with L-BFGS-B."""
    if form.y_kernel is None:
        return None
    lo = np.array([BOUNDS[0][0], POWER_BOUNDS[0]])
    hi = np.array([BOUNDS[0][1], POWER_BOUNDS[1]])
    x = np.array([t0, a0], dtype=np.float64)
    if not (np.all(np.isfinite(x)) and np.all(x >= lo) and np.all(x <= hi)):
        return None
    w = grp.wsum
    if not w > 0:
        return None
    idx = [0, 3]

    def evaluate(p):
        v, gr, h = _group_hess(grp, p[0], mu, s, p[1], form)
        return -v / w, -gr[idx] / w, -h[np.ix_(idx, idx)] / w

    f, g, h = evaluate(x)
    for _ in range(60):
        if not (np.isfinite(f) and np.all(np.isfinite(g)) and np.all(np.isfinite(h))):
            return None
        # a Hessian that is not positive definite (far from the minimum, e.g. the cold start
        # at a = 0): its eigenvalues' moduli, floored (a descent direction)
        lam, vec = np.linalg.eigh(0.5 * (h + h.T))
        big = float(np.max(np.abs(lam)))
        if not big > 0:
            return None
        lam = np.maximum(np.abs(lam), 1e-8 * big)
        p = -vec @ ((vec.T @ g) / lam)
        dec = float(-g @ p)
        if dec < NEWTON_DECREMENT:
            return x, f
        if dec < NEWTON_LAST:
            # the quadratic region: the full step without a line search (f would fall by
            # dec/2, near its rounding), and the last one (NEWTON_LAST); f at its end from
            # the quadratic model, f − dec/2 (exact to O(dec²))
            xn = x + p
            if np.all(xn >= lo) and np.all(xn <= hi):
                return xn, f - 0.5 * dec
        step = 1.0
        while True:
            xn = x + step * p
            if np.all(xn >= lo) and np.all(xn <= hi):
                fn, gn, hn = evaluate(xn)
                if fn <= f - 1e-4 * step * dec:
                    break
            step *= 0.5
            if step < 1e-6:
                return None
        x, f, g, h = xn, fn, gn, hn
    return None


PROFILE_STEP = 0.1
"""σ_y step of the profile likelihood behind the ``kish_profile`` error."""


def free_parameters(x: NDArray, mu_fixed: float | None) -> NDArray:
    """The free parameters ([ȳ], σ_y, T_g..., [a_g...]) of a full (ȳ, σ_y, T_g..., [a_g...])
    vector."""
    return np.asarray(x[1:] if mu_fixed is not None else x, dtype=np.float64)


def sandwich_covariance(
    data,
    x: ArrayLike,
    mu_fixed: float | None = None,
    sigma_fixed: bool = False,
    power: float | None = 0.0,
) -> NDArray:
    r"""The robust (sandwich) covariance of the weighted truncated-likelihood fit.

    For a fit maximising ln L_w(θ) = Σ_i w_i l_i(θ), l_i = ln p(x_i; θ) − ln P_F(θ), with weights
    that are functions of the observables (here 1/(A·ε), negative for like-sign pairs), the
    asymptotic covariance of θ̂ is

    .. math:: C = H^{-1} J H^{-1},\quad H = -\sum_i w_i \nabla^2 l_i(\hat\theta),\quad
              J = \sum_i w_i^2\, \nabla l_i(\hat\theta)\, \nabla l_i(\hat\theta)^T

    (the weighted score's variance between the inverse weighted Hessians). With unit weights
    J = H and C is the usual inverse Hessian; scaling all weights leaves C unchanged. The
    per-pair scores are analytic (:func:`_dlogp` minus the reference sample's ∂ ln P_F), and so
    is H (:func:`_hessian`).

    Arguments:
        data: per fit group (m, p_T, y, w, :class:`ReferenceSample`), as :func:`fit_joint` takes.
        x: the fitted (ȳ, σ_y, T_g...).
        mu_fixed: ȳ fixed at this value (then not a parameter), or ``None``.
        sigma_fixed: σ_y was not fitted (an external value, :func:`fit_extrapolation`
            ``y_sigma``): the covariance of the others at that σ_y, with zeros in σ_y's row
            and column (its external error is added by the caller).
        power: the m_T power every group's p_T form was fixed at, or ``None``: one power
            per group fitted (``x`` ends with them; their score ∂l_i/∂a is
            :func:`_dlog_pt_power_da` minus ∂ ln P_F/∂a).

    Returns:
        The covariance of the free parameters ([ȳ], σ_y, T_g..., [a_g...]), shape (k, k).

    References:
        C. Langenbruch, "Parameter uncertainties in weighted unbinned maximum likelihood fits",
        Eur. Phys. J. C 82 (2022) 393, eq. (18) (weights that depend on the observables only);
        the sandwich estimator of misspecified/weighted ML: H. White, Econometrica 50 (1982) 1.
    """
    return sandwich_and_cross(data, x, mu_fixed, sigma_fixed, power)[0]


def sandwich_and_cross(data, x, mu_fixed=None, sigma_fixed=False, power=0.0, bins=None, n_bins=0,
                       form: ModelForm = NOMINAL):  # fmt: skip
    """:func:`sandwich_covariance`, and with ``bins`` (per group, each pair's mass bin) also
    the covariance of the parameters with the logarithm of each bin's weighted sum S_b =
    Σ_{i∈b} w_i (the fiducial yield's bin): to first order θ̂ − θ = H⁻¹ Σ_i w_i ∇l_i, and for
    Poisson-distributed pairs Cov(Σ w_i a_i, Σ w_i b_i) = Σ w_i² a_i b_i, so
    Cov(θ̂, ln S_b) = H⁻¹ Σ_{i∈b} w_i² ∇l_i / S_b (the same H and scores as the sandwich;
    zeros where σ_y is external, its row). Returns ``(cov, cross)``, ``cross`` of shape
    (n_bins, k) or ``None`` without ``bins``."""
    data = _groups(data)
    x = np.asarray(x, dtype=np.float64)
    p = free_parameters(x, mu_fixed)
    k = p.size
    free_mu = mu_fixed is None
    mu = x[0]
    s = x[1]
    n_g = len(data)
    lay = Layout.of(n_g, mu_fixed, power=power)  # σ_y's row always (zeros where external)
    n_head = lay.head
    ts, powers = split_groups(x[2:], n_g, power)
    fit_a = power is None
    jmat = np.zeros((k, k))
    score_w2 = np.zeros((n_bins, k))  # Σ_{i∈b} w_i² ∇l_i (with ``bins``)
    sums = np.zeros(n_bins)
    for g, (m, pt, y, w, ref) in enumerate(data):
        t, a = ts[g], powers[g]
        _, gpf = ref.log_fraction_and_grad(t, mu, s, form, a, with_power=fit_a)
        d = _dlogp(m, pt, y, t, mu, s, a) - gpf[:3, None]  # (3, n): ∂l_i/∂(T, ȳ, σ_y)
        rows = ([1] if free_mu else []) + [2]
        sc = np.zeros((n_head + 1 + fit_a, d.shape[1]))
        sc[:n_head] = d[rows]
        sc[n_head] = d[0]
        idx = [*range(n_head), lay.index("T", g)]
        if fit_a:
            sc[n_head + 1] = NOMINAL.dlog_pt_da(m, pt, t, a) - gpf[3]
            idx.append(lay.index("a", g))
        blk = (sc * w**2) @ sc.T
        jmat[np.ix_(idx, idx)] += blk
        if bins is not None:
            b = np.asarray(bins[g], dtype=np.intp)
            for j, row in zip(idx, sc * w**2, strict=True):
                score_w2[:, j] += np.bincount(b, weights=row, minlength=n_bins)
            sums += np.bincount(b, weights=w, minlength=n_bins)
    # the fitted parameters: all but σ_y when it is external
    fit = np.array([j for j in range(k) if not (sigma_fixed and j == lay.index("y_sigma"))])
    q = p[fit]
    hmat = _hessian(data, q, s if sigma_fixed else None, mu_fixed, power, form)
    hinv = np.linalg.pinv(hmat)
    out = np.zeros((k, k))
    out[np.ix_(fit, fit)] = hinv @ jmat[np.ix_(fit, fit)] @ hinv
    if bins is None:
        return out, None
    cross = np.zeros((n_bins, k))
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = score_w2[:, fit] / sums[:, None]
    ok = sums > 0
    cross[np.ix_(ok, fit)] = rel[ok] @ hinv.T
    return out, cross


def _group_hess(grp: FitGroup, t: float, mu: float, s: float, a: float,
                form: ModelForm = NOMINAL) -> tuple[float, NDArray, NDArray]:  # fmt: skip
    """One fit group's weighted truncated log-likelihood Σ_i w_i [ln p(x_i) − ln P_F] (as
    :func:`_group_terms`), its gradient and its Hessian in (T, ȳ, σ_y, a), analytic (not per
    unit weight): the pairs' Σ w ∂² ln p, less Σw ∂² ln P_F with
    ∂² ln P_F = ⟨∂² ln p + ∂ ln p ∂ ln pᵀ⟩ − ⟨∂ ln p⟩⟨∂ ln p⟩ᵀ over the reference sample
    weighted by p/p_ref (the second derivatives of the p_T normalisation: :func:`_pt_second`).
    One compiled pass each (:func:`gammastar.yields._extrapolation_kernel.hess_sums`); the form
    must have a compiled rapidity density (:attr:`ModelForm.y_kernel`)."""

    if form.y_kernel is None:
        raise ValueError(f"model form {form.name!r} has no compiled rapidity density")
    ref = grp[4]
    a_eff = a + form.power_offset
    logistic = form.y_kernel == "logistic"
    terms = pt_terms(grp.m_, t, a_eff, with_hessian=True)
    _, s_lp, g, h2, _ = hess_sums(grp.lpt, grp.lmt, grp.mt, grp.y_, grp.w_, grp.w_, False,
                                  grp.m_, terms, t, a_eff, mu, s, logistic)  # fmt: skip
    terms = pt_terms(ref.m, t, a_eff, with_hessian=True)
    e0, _, eg, eh2, eouter = hess_sums(ref._lpt, ref._lmt, ref._mt, ref._y, ref._m,
                                       ref.log_ref_for(form), True, ref._m, terms, t, a_eff, mu,
                                       s, logistic)  # fmt: skip
    if not e0 > 0:
        nan = np.full((4, 4), np.nan)
        return math.nan, nan[0], nan
    mean = eg / e0
    h_pf = (eh2 + eouter) / e0 - np.outer(mean, mean)
    w = grp.wsum
    val = float(s_lp) + _log_h(grp, form)[1]
    return val - w * math.log(e0 / ref.n), g - w * mean, h2 - w * h_pf


def _joint_terms(data, q, sigma, mu_fixed, power, form: ModelForm = NOMINAL
                 ) -> tuple[float, NDArray, NDArray]:  # fmt: skip
    """−ln L_w, its gradient and its Hessian, all per unit weight, at the free parameters
    ``q`` (as :func:`nll_and_grad` takes them): each group's analytic terms
    (:func:`_group_hess`, the groups side by side) in the rows of its T_g, a_g and the
    shared ȳ, σ_y (when free); what :func:`_newton_joint` steps with."""
    data, mu, s, ts, powers, lay = _unpack(q, data, power, mu_fixed, sigma)
    n_g, local = len(data), lay.local
    with single_thread_blas():
        parts = thread_map(lambda g: _group_hess(data[g], ts[g], mu, s, powers[g], form),
                           range(n_g))  # fmt: skip
    val, grad, hmat = 0.0, np.zeros(q.size), np.zeros((q.size, q.size))
    for g, (vg, gg, hg) in enumerate(parts):  # summed in group order: any thread count
        rows = lay.group_rows(g)
        val -= vg
        np.subtract.at(grad, rows, gg[local])
        hmat[np.ix_(rows, rows)] -= hg[np.ix_(local, local)]
    wtot = sum(grp.wsum for grp in data)
    return val / wtot, grad / wtot, 0.5 * (hmat + hmat.T) / wtot


def _newton_joint(data, x0, bounds, sigma, mu_fixed, form, power) -> tuple[NDArray, float] | None:
    """The joint fit with a shared free ȳ and/or σ_y by projected Newton's method on the
    analytic Hessian of every parameter (:func:`_joint_terms`; the groups couple only through
    the shared ones): at each step the parameters on a bound whose gradient points outward
    are held there, the Newton step of the others (the Hessian's eigenvalues replaced by their
    moduli where it is not positive definite, as :func:`_newton_group`) is projected onto the
    bounds and shortened until the NLL falls by the Armijo amount (D. P. Bertsekas, SIAM J.
    Control Optim. 20 (1982) 221). Returns ``(x, nll)`` in :func:`nll_and_grad`'s layout, or
    ``None`` where it cannot be used or does not converge (a form without compiled sums, a
    start outside ``bounds``): the caller then fits with L-BFGS-B. Why: L-BFGS-B over the
    shared parameters and 2G strongly correlated (T_g, a_g) takes hundreds of steps over every
    group; Newton's method takes about ten, also where fitted m_T powers end on their bound
    (a PYTHIA mock's spectra in several mass ranges)."""
    if form.y_kernel is None:
        return None
    lo = np.array([b[0] for b in bounds], dtype=np.float64)
    hi = np.array([b[1] for b in bounds], dtype=np.float64)
    x = np.asarray(x0, dtype=np.float64)
    if not (np.all(np.isfinite(x)) and np.all(x >= lo) and np.all(x <= hi)):
        return None

    def evaluate(p):
        return _joint_terms(data, p, sigma, mu_fixed, power, form)

    f, g, h = evaluate(x)
    for _ in range(80):
        if not (np.isfinite(f) and np.all(np.isfinite(g)) and np.all(np.isfinite(h))):
            return None
        held = ((x <= lo) & (g > 0)) | ((x >= hi) & (g < 0))
        free = np.flatnonzero(~held)
        if free.size == 0:
            return x, f
        lam, vec = np.linalg.eigh(h[np.ix_(free, free)])
        big = float(np.max(np.abs(lam)))
        if not big > 0:
            return None
        lam = np.maximum(np.abs(lam), 1e-10 * big)
        p = np.zeros_like(x)
        p[free] = -vec @ ((vec.T @ g[free]) / lam)
        dec = float(-g @ p)
        if dec < NEWTON_DECREMENT:
            return x, f
        step = 1.0
        while True:
            xn = np.clip(x + step * p, lo, hi)
            fn, gn, hn = evaluate(xn)
            if fn <= f + 1e-4 * float(g @ (xn - x)):
                break
            if dec < NEWTON_LAST and step == 1.0:  # at the rounding floor: done
                return x, f
            step *= 0.5
            if step < 1e-6:
                return None
        x, f, g, h = xn, fn, gn, hn
    return None


def _hessian(data, q, sigma, mu_fixed, power, form: ModelForm = NOMINAL) -> NDArray:
    """The Hessian of −ln L_w (not per unit weight) at the free parameters ``q`` (as
    :func:`nll_and_grad` takes them), analytic: the sum of the groups' (:func:`_group_hess`),
    each in the rows of its T_g, a_g and the shared ȳ, σ_y (when free). A central difference
    of the gradient instead (its p_T normalisation's ∂/∂a itself a difference, rounding
    ≈ 10⁻⁹) scattered the weakly constrained (T_g, a_g) directions' variances by ~10–30%
    under a 10⁻⁶ move of a."""
    data, mu, s, ts, powers, lay = _unpack(q, data, power, mu_fixed, sigma)
    local = lay.local  # local (T, ȳ, σ_y, a) → rows of q
    hmat = np.zeros((q.size, q.size))
    for g, grp in enumerate(data):
        rows = lay.group_rows(g)
        hg = _group_hess(grp, ts[g], mu, s, powers[g], form)[2]
        hmat[np.ix_(rows, rows)] -= hg[np.ix_(local, local)]
    return 0.5 * (hmat + hmat.T)


def group_params(x, k: int, n_groups: int, power: float | None) -> tuple[float, ...]:
    """(T, ȳ, σ_y, a) of fit group ``k`` of a full vector (ȳ, σ_y, T_g..., [a_g...])."""
    ts, powers = split_groups(np.asarray(x)[2:], n_groups, power)
    return float(ts[k]), float(x[0]), float(x[1]), float(powers[k])


class FitPairs(NamedTuple):
    """The fitted pairs (non-zero weight, finite rapidity, p_T > 0) and their mass bin."""

    m: NDArray
    pt: NDArray
    y: NDArray
    w: NDArray
    idx: NDArray


class JointFit(NamedTuple):
    """The joint fit: its groups' data, ``fitted`` ((bins, Kish size) per group), the pairs'
    bins per group, the parameters ``x`` and their NLL, the external σ_y (or ``None``), the
    fitted power's flag (``power``: as :func:`fit_joint`), F on each bin's grid and, where
    made already, the full parameter vectors of the refits at the external σ_y ± its error
    (:func:`~gammastar.yields.extrapolation.errors.external_sides`)."""

    data: list[Any]
    fitted: list[Any]
    pair_bins: list[Any]
    x: NDArray[np.float64]
    nll0: float
    external: dict[str, Any] | None
    power: float | None
    inside: dict[int, NDArray[np.bool_]]
    sides: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None
    form: ModelForm = NOMINAL
    """The fitted form: the nominal, with the fall-off where the fit has one."""
