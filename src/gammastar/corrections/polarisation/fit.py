r"""The acceptance-aware weighted likelihood fit of the decay-angle coefficients λ of one
sample (:mod:`gammastar.corrections.polarisation`): :func:`fit_lambdas`, Newton with
analytic derivatives and the sandwich covariance of the weighted likelihood, and its damped
fallback. :data:`STEP_TOL` is its stopping rule.

References:
    C. Langenbruch, Eur. Phys. J. C 82 (2022) 393 (uncertainties of weighted unbinned
    maximum-likelihood fits: the sandwich estimator).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "STEP_TOL",
    "drive",
    "equal_weight_scale",
    "equal_weight_scale_of_sums",
    "fit_lambdas",
    "newton_steps",
]

STEP_TOL = 0.01
"""The fit stops when every λ's Newton step is below this fraction of its error."""


def fit_lambdas(
    u: NDArray[np.float64],
    a0: NDArray[np.float64],
    v: NDArray[np.float64],
    w: NDArray[np.float64],
    *,
    n_params: int = 3,
    max_iter: int = 50,
    tol: float = STEP_TOL,
    start: ArrayLike | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r"""Maximise Σ wᵢ [ln(1 + λ·uᵢ) − ln(a0ᵢ + λ·vᵢ)] (Newton with analytic derivatives)
    and return λ with its sandwich covariance.

    Newton from ``start`` (λ = 0: the first step is the one-step estimate), each iteration
    one vectorised pass over the pairs that gives the score and the Hessian (one matrix
    product of the stacked per-pair derivatives) and, on a pass that can be the last, the
    sandwich's Σw²ggᵀ in the same product. Stopping rule (the step sizes r in units of the
    errors, r = maxᵢ |stepᵢ|/σᵢ, σ of the sandwich covariance of that pass): it stops after
    a pass whose step r is below ``tol`` and whose Newton residual after the step, predicted
    from the quadratic convergence with the constant of the last two steps (r³/r_prev²,
    r_prev the step that led to this pass, taken whole, in the same σ), or the step itself,
    is below ``tol``²; that last step is added without a further pass (its score and Hessian
    are that pass's). So the λ returned is within ~tol²·σ = 10⁻⁴σ of the maximum (typically 3
    passes per bin from λ = 0, 2 from a start near the maximum). The meat is computed on a
    pass whose step the last two predict below 10·``tol`` (or that follows a step below it);
    elsewhere the step sizes are measured in √diag(H⁻¹)·√(Σw²/|Σw|), the sandwich error of
    equal weights. Stopping after two consecutive steps below ``tol``·σ would give the λ to
    float precision at one pass per bin more. The covariance is the last pass's, at a λ that
    differs from the one returned by that last, small step. Pairs with w = 0 are dropped
    first. A Hessian that is not positive definite, or no convergence in ``max_iter`` steps,
    falls back to the damped Newton with a line search on the likelihood
    (:func:`_fit_lambdas_damped`).

    Arguments:
        u: (3, n) angular functions of the pairs
            (:func:`~gammastar.corrections.polarisation.angles.angular_functions`).
        a0: (n,) ⟨a⟩ of each pair (:meth:`PairAcceptance.moments_at`, row 0).
        v: (3, n) the pairs' moments ⟨c² a⟩, ⟨s² cos2φ a⟩, ⟨sin2θ cosφ a⟩ (rows 1–3).
        w: (n,) weights (may be negative: like-sign subtraction).
        n_params: fit λ_θ only (1), λ_θ and λ_φ (2), or all three (3); the others are 0.
        max_iter: most Newton steps.
        tol: convergence: every |step| ≤ tol · σ (:data:`STEP_TOL`).
        start: the λ to start from (n_params values; default 0).

    Returns:
        ``(lam, cov)``: the λ (n_params) and their covariance (n_params × n_params).

    Raises:
        ValueError: the fit does not converge (e.g. too few pairs, a singular Hessian).

    References:
        C. Langenbruch, Eur. Phys. J. C 82 (2022) 393 (the sandwich covariance);
        J. Nocedal, S. J. Wright, Numerical Optimization, 2nd ed. (Springer 2006), ch. 3.3
        (Newton's method, its quadratic convergence).

    Example:
        >>> import numpy as np
        >>> from gammastar.corrections.polarisation.angles import angular_functions
        >>> rng = np.random.default_rng(1)   # 1 + 0.5 c², full acceptance: a0 = 1, v = (1/3, 0, 0)
        >>> c = rng.uniform(-1, 1, 400000)
        >>> c = c[rng.uniform(0, 1.5, c.size) < 1 + 0.5 * c**2]
        >>> u = angular_functions(c, rng.uniform(-np.pi, np.pi, c.size))
        >>> v = np.zeros((3, c.size)); v[0] = 1 / 3
        >>> lam, cov = fit_lambdas(u, np.ones(c.size), v, np.ones(c.size), n_params=1)
        >>> bool(abs(lam[0] - 0.5) < 4 * np.sqrt(cov[0, 0]))
        True
    """
    u, a0, v, w = _counted_pairs(u, a0, v, w, n_params)
    fit = newton_steps(equal_weight_scale(w), n_params=n_params, max_iter=max_iter, tol=tol,
                       start=start)  # fmt: skip
    result = drive(fit, _NewtonPass(u, a0, v, w))
    return result if result is not None else _fit_lambdas_damped(u, a0, v, w, n_params=n_params)


def equal_weight_scale(w: NDArray[np.float64]) -> float:
    """√(Σw²/|Σw|): the sandwich error's factor for equal weights, which scales √diag(H⁻¹)
    into the step sizes' unit before the meat is computed (:func:`newton_steps`)."""
    return equal_weight_scale_of_sums(int(w.size), float(w.sum()), float(np.dot(w, w)))


def equal_weight_scale_of_sums(n: int, sw: float, sw2: float) -> float:
    """:func:`equal_weight_scale` of ``n`` weights from their sums Σw, Σw² (1 without weights
    or where Σw = 0); the sums may be added over parts of the sample."""
    return float(np.sqrt(sw2 / abs(sw))) if n and sw != 0 else 1.0


Pass = tuple[NDArray[np.float64], NDArray[np.float64], "NDArray[np.float64] | None"]
"""One pass's (score, Hessian, meat or ``None``) of :class:`_NewtonPass`."""


def drive(fit: Any, one_pass: Any) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
    """Run the :func:`newton_steps` generator ``fit`` with ``one_pass(lam, meat=...)`` (a
    :class:`_NewtonPass` or the sum of such passes over parts of the sample): its ``(lam,
    cov)``, or ``None`` where the damped fit must take over."""
    try:
        lam, meat = next(fit)
        while True:
            lam, meat = fit.send(one_pass(lam, meat=meat))
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


def newton_steps(
    w_scale: float,
    *,
    n_params: int = 3,
    max_iter: int = 50,
    tol: float = STEP_TOL,
    start: ArrayLike | None = None,
) -> Any:
    """The Newton iteration of :func:`fit_lambdas` as a generator that asks for its passes:
    it yields ``(lam, meat)`` and is sent that pass's (score, Hessian, meat) sums, or
    ``None`` where a pair leaves the region where W and the moments are positive; it
    returns ``(lam, cov)``, or ``None`` for the damped fallback. The passes' sums add over
    parts of the sample, so a fit whose pairs are split over several processes is this
    generator fed with the sums of their passes (:func:`drive` feeds one process's).
    ``w_scale``: :func:`equal_weight_scale` of the counted pairs' weights.

    Raises:
        ValueError: the moments vanish for some pairs at λ = 0.
    """
    lam = np.zeros(n_params) if start is None else np.asarray(start, dtype=np.float64).copy()
    parts = yield lam, False
    if parts is None and start is not None:
        lam = np.zeros(n_params)
        parts = yield lam, False
    if parts is None:
        raise ValueError("the acceptance moments vanish for some pairs")
    prev = None  # the step that led to this pass, taken whole (None: none, or cut back)
    for _ in range(max_iter):
        hinv = _inverse_if_positive(parts[1])
        if hinv is None:
            break  # not a minimum's neighbourhood: the damped fit
        step = hinv @ parts[0]  # H⁻¹ · score: the Newton step
        measured = _measured_step(step, prev, hinv, parts[2], w_scale)
        if measured is None:
            break
        cov, r, residual = measured
        if cov is not None and r <= tol and (r <= tol**2 or residual <= tol**2):
            return lam + step, cov  # taken without another pass
        t = 1.0
        # the next pass can be the last: its step, predicted, is below 10·tol
        meat = r <= 10 * tol or (prev is not None and residual <= 10 * tol)
        while (new := (yield lam + t * step, meat)) is None and t > 1e-6:
            t *= 0.5  # a step out of the region where W and the moments are positive
        if new is None:
            break
        lam, parts = lam + t * step, new
        prev = step if t == 1.0 else None
    return None


def _measured_step(
    step: NDArray[np.float64],
    prev: NDArray[np.float64] | None,
    hinv: NDArray[np.float64],
    meat: NDArray[np.float64] | None,
    w_scale: float,
) -> tuple[NDArray[np.float64] | None, float, float] | None:
    """A Newton step in units of the errors (:func:`fit_lambdas`' stopping rule): ``(cov,
    r, residual)``, cov the sandwich covariance where the pass computed the ``meat`` (else
    None, σ then √diag(H⁻¹)·``w_scale``), r = maxᵢ |stepᵢ|/σᵢ and Newton's residual after
    the step, ~r³/r_prev² (quadratic convergence; r without a whole previous step ``prev``);
    None where the sandwich is not positive."""
    if meat is not None:
        cov = _sandwich_of(hinv, meat)
        if cov is None:
            return None
        sig = np.sqrt(np.diag(cov))
    else:
        cov, sig = None, np.sqrt(np.diag(hinv)) * w_scale
    r = float(np.max(np.abs(step) / sig))
    r_prev = None if prev is None else float(np.max(np.abs(prev) / sig))
    residual = r if r_prev is None else min(r, r**3 / max(r_prev, 1e-300) ** 2)
    return cov, r, residual


def _counted_pairs(u: ArrayLike, a0: ArrayLike, v: ArrayLike, w: ArrayLike,
                   n_params: int) -> tuple[NDArray[np.float64], ...]:  # fmt: skip
    """(u, a0, v, w) of :func:`fit_lambdas` as C-contiguous float64, the rows of the fitted
    λ only, the pairs with w = 0 dropped (a transposed or float32 input, e.g. rows of
    PairMoments, would otherwise keep its strides through every pass's slices)."""
    ww = np.ascontiguousarray(w, dtype=np.float64)
    aa = np.ascontiguousarray(a0, dtype=np.float64)
    uu = np.ascontiguousarray(np.asarray(u)[:n_params], dtype=np.float64)
    vv = np.ascontiguousarray(np.asarray(v)[:n_params], dtype=np.float64)
    if not np.all(ww != 0):  # only the pairs that count
        nz = ww != 0
        uu, vv, aa, ww = uu[:, nz], vv[:, nz], aa[nz], ww[nz]
    return uu, aa, vv, ww


def _first_pass(one_pass: _NewtonPass, start: ArrayLike | None,
                n_params: int) -> tuple[NDArray[np.float64], Any]:  # fmt: skip
    """The starting λ and its pass (score, Hessian); from λ = 0 where ``start`` leaves the
    region where the acceptance moments are positive.

    Raises:
        ValueError: the moments vanish for some pairs at λ = 0 too.
    """
    lam = np.zeros(n_params) if start is None else np.asarray(start, dtype=np.float64).copy()
    parts = one_pass(lam, meat=False)
    if parts is None and start is not None:
        lam = np.zeros(n_params)
        parts = one_pass(lam, meat=False)
    if parts is None:
        raise ValueError("the acceptance moments vanish for some pairs")
    return lam, parts


def _inverse_if_positive(hess: NDArray[np.float64]) -> NDArray[np.float64] | None:
    """H⁻¹, or ``None`` unless H is finite and positive definite."""
    if not np.all(np.isfinite(hess)):
        return None
    try:
        np.linalg.cholesky(hess)
        return np.asarray(np.linalg.inv(hess), dtype=np.float64)
    except np.linalg.LinAlgError:
        return None


def _sandwich_of(
    hinv: NDArray[np.float64], meat: NDArray[np.float64]
) -> NDArray[np.float64] | None:
    """H⁻¹ meat H⁻¹, or ``None`` unless it is finite with a positive diagonal."""
    if not np.all(np.isfinite(meat)):
        return None
    cov = hinv @ meat @ hinv
    return cov if np.all(np.isfinite(cov)) and np.all(np.diag(cov) > 0) else None


class _NewtonPass:
    """One pass over the pairs at λ: ``(score, hess, meat)`` of ℓ = Σ wᵢ [ln(1 + λ·uᵢ) −
    ln(a0ᵢ + λ·vᵢ)] (the score Σ w g, the NLL's Hessian Σ w (gu guᵀ − gv gvᵀ) and the
    sandwich's Σ w² g gᵀ, with gu = u/(1 + λ·u), gv = v/(a0 + λ·v), g = gu − gv; the meat
    ``None`` unless asked for), or ``None`` where 1 + λ·u or a0 + λ·v is not positive for
    some pair. All the sums are one matrix product per block of pairs: (w s; w² s) (s; 1)ᵀ,
    s = (gu, gv) stacked (without the meat: w s (s; 1)ᵀ, half the rows); the blocks
    (:attr:`BLOCK` pairs) keep the per-pair arrays in the CPU cache (2–3× faster than
    arrays of the whole sample)."""

    BLOCK = 8192

    def __init__(self, u, a0, v, w):
        self.u, self.a0, self.v, self.w = u, a0, v, w
        self.k = k = u.shape[0]
        blk = min(self.BLOCK, max(1, w.size))
        self.s = np.empty((2 * k + 1, blk))  # gu (rows :k), gv (rows k:2k), 1 (row 2k)
        self.s[2 * k] = 1.0
        self.sw = np.empty((4 * k, blk))  # w·s (rows :2k), w²·s (rows 2k:)

    def __call__(self, lam, meat=True):
        k, u, v, a0, w = self.k, self.u, self.v, self.a0, self.w
        rows = 4 * k if meat else 2 * k
        mm = np.zeros((rows, 2 * k + 1))
        n, blk = w.size, self.s.shape[1]
        for b0 in range(0, n, blk):
            b1 = min(n, b0 + blk)
            s, sw = self.s[:, : b1 - b0], self.sw[:rows, : b1 - b0]
            num = lam @ u[:, b0:b1]
            num += 1.0
            den = lam @ v[:, b0:b1]
            den += a0[b0:b1]
            if not (num.min() > 0 and den.min() > 0):
                return None
            np.divide(u[:, b0:b1], num, out=s[:k])
            np.divide(v[:, b0:b1], den, out=s[k : 2 * k])
            np.multiply(s[: 2 * k], w[b0:b1], out=sw[: 2 * k])
            if meat:
                np.multiply(sw[: 2 * k], w[b0:b1], out=sw[2 * k :])
            mm += sw @ s.T
        a = mm[: 2 * k]  # Σ w s (s; 1)ᵀ
        score = a[:k, 2 * k] - a[k:, 2 * k]
        hess = a[:k, :k] - a[k:, k : 2 * k]
        if not meat:
            return score, hess, None
        b = mm[2 * k :]  # Σ w² s (s; 1)ᵀ
        return score, hess, b[:k, :k] - b[:k, k : 2 * k] - b[k:, :k] + b[k:, k : 2 * k]


def _fit_lambdas_damped(
    u: NDArray[np.float64],
    a0: NDArray[np.float64],
    v: NDArray[np.float64],
    w: NDArray[np.float64],
    *,
    n_params: int = 3,
    max_iter: int = 50,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r"""The fit of :func:`fit_lambdas` by damped Newton with a line search on the likelihood
    from λ = 0, converged to 10⁻⁸ in λ and 10⁻¹⁰ in the likelihood (5–6 steps of three
    passes over the pairs each): the fallback of :func:`fit_lambdas` and its reference in the
    tests. Its arguments, result and errors are those of :func:`fit_lambdas`.

    References:
        C. Langenbruch, Eur. Phys. J. C 82 (2022) 393 (the sandwich covariance).

    (The example of :func:`fit_lambdas` holds for it too; tests/test_polarisation.py checks
    that both fits agree.)
    """
    u = np.asarray(u, dtype=np.float64)[:n_params]
    v = np.asarray(v, dtype=np.float64)[:n_params]
    a0 = np.asarray(a0, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)

    def parts(lam):
        num = 1.0 + lam @ u
        den = a0 + lam @ v
        return num, den

    nz = w != 0

    def nll(lam):
        num, den = parts(lam)
        if np.any((num <= 0) & nz) or np.any((den <= 0) & nz):
            return np.inf
        return -float(np.sum(w * (np.log(num) - np.log(den))))

    lam = np.zeros(n_params)
    f = nll(lam)
    if not np.isfinite(f):
        raise ValueError("the acceptance moments vanish for some pairs")
    for _ in range(max_iter):
        num, den = parts(lam)
        gu, gv = u / num, v / den
        grad = -(gu - gv) @ w  # of the NLL
        hess = (gu * w) @ gu.T - (gv * w) @ gv.T
        try:
            step = -np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError as exc:
            raise ValueError("singular Hessian") from exc
        if grad @ step > 0:  # not a descent direction: gradient step instead
            step = -grad / max(np.abs(np.diag(hess)).max(), 1e-300)
        t = 1.0
        while t > 1e-6:
            f_new = nll(lam + t * step)
            if f_new <= f:
                break
            t *= 0.5
        else:
            break
        lam = lam + t * step
        converged = abs(f - f_new) < 1e-10 * max(1.0, abs(f)) and np.max(np.abs(t * step)) < 1e-8
        f = f_new
        if converged:
            break
    num, den = parts(lam)
    gu, gv = u / num, v / den
    hess = (gu * w) @ gu.T - (gv * w) @ gv.T
    g = gu - gv  # per-pair score of ℓ
    meat = (g * w**2) @ g.T
    try:
        hinv = np.linalg.inv(hess)
    except np.linalg.LinAlgError as exc:
        raise ValueError("singular Hessian at the minimum") from exc
    cov = hinv @ meat @ hinv
    if not np.all(np.isfinite(cov)) or np.any(np.diag(cov) <= 0):
        raise ValueError("no finite covariance at the minimum")
    return lam, cov
