r"""The lepton decay angular distribution of the γ*, measured from the data.

In the γ* helicity frame (z along the pair's lab momentum, y along beam × z, x = y × z; the
rest frame reached by a pure boost) the decay of a spin-1 state into two leptons is

.. math:: W(\cos\theta^*, \phi^*) \propto 1 + \lambda_\theta\cos^2\theta^*
          + \lambda_\phi\sin^2\theta^*\cos 2\phi^* + \lambda_{\theta\phi}\sin 2\theta^*\cos\phi^*.

The spectrometer sculpts the angles, so they are fitted with the **acceptance-aware
conditional likelihood** of each pair's angles given its kinematics (m, p, θ):

.. math:: P(\Omega^* \mid m, p, \theta) = \frac{W(\Omega^*)\,a(\Omega^*; m, p, \theta)}
          {\langle a\rangle + \lambda_\theta\langle c^2 a\rangle + \lambda_\phi\langle s^2
          \cos 2\phi\, a\rangle + \lambda_{\theta\phi}\langle \sin 2\theta\cos\phi\, a\rangle},

where a is the pair's pass probability and ⟨·⟩ the averages over the uniform decay sphere,
the moment tables of :class:`gammastar.corrections.pair_acceptance.table.PairAcceptance` (a(Ω*) itself does not
depend on the λ and drops out). The production spectrum cancels, so the fit needs no model
of it. Each pair enters with its efficiency-corrected, like-sign-subtracting weight (OS
1/ε, SS −k_b/ε: ``weight · acc`` of ``pairs.parquet``); the errors are the sandwich
covariance of the weighted likelihood, H⁻¹ (Σ w² g gᵀ) H⁻¹, which is right for weights of
both signs. Fitted per mass bin (equal numbers of OS pairs).

:func:`helicity_angles` gives the pair's angles; :func:`fit_lambdas` the fit of one sample;
:func:`measure` the per-bin measurement (:class:`Polarisation`, written to ``select.json`` and
``yields.json`` → ``polarisation``); :func:`truth_lambdas` the generator's truth from moments.

References:
    P. Faccioli, C. Lourenço, J. Seixas, H. Wöhri, Eur. Phys. J. C 69 (2010) 657 (frames,
    the general form of W and its positivity);
    C. Langenbruch, Eur. Phys. J. C 82 (2022) 393 (uncertainties of weighted unbinned
    maximum-likelihood fits: the sandwich estimator);
    NA60, Phys. Rev. Lett. 102 (2009) 222301 (λ, μ, ν of low-mass dimuons in the
    Collins–Soper frame, the same acceptance-corrected angular analysis).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.errors import InputError
from gammastar.physics.constants import mass

__all__ = [
    "FRAME",
    "Polarisation",
    "angular_functions",
    "fit_lambdas",
    "helicity_angles",
    "lambdas_from_sums",
    "measure",
    "narrow_peaks",
    "peak_safe_edges",
    "polarisation_edges",
    "read_polarisation",
    "truth_lambdas",
]

FRAME = "helicity"
METHOD = (
    "per mass bin, acceptance-aware conditional likelihood of the helicity-frame decay angles "
    "given each pair's (m, p, theta) (moment tables of the per-pair acceptance), pairs weighted "
    "weight*acc (OS 1/eff, SS -k_b/eff), sandwich covariance"
)
MIN_PAIRS = 200
"""Fewer OS pairs than this in a bin: no measurement (NaN)."""
PARAMS = ("lambda_theta", "lambda_phi", "lambda_theta_phi")
STEP_TOL = 0.01
"""The fit stops when every λ's Newton step is below this fraction of its error."""


def helicity_angles(
    l1: ArrayLike, l2: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """cos θ* and φ* of lepton 1 in the pair's helicity frame.

    z* = the pair's lab momentum direction, y* = beam (+z) × z*, x* = y* × z*; lepton 1 is
    boosted into the pair rest frame along the pair momentum (the axes are unchanged by that
    boost). A pair along the beam (no production plane) gets φ* about the lab x axis.

    Arguments:
        l1, l2: lab four-momenta, arrays of shape (4, n) ordered (px, py, pz, E).

    Returns:
        ``(cos_theta, phi)``, φ* in (−π, π].

    Example:
        >>> import numpy as np
        >>> m, pstar = 0.5, np.sqrt(0.25**2 - 0.1057**2)
        >>> e = np.hypot(pstar, 0.1057)   # leptons along ±x* at rest, pair at rest
        >>> c, phi = helicity_angles(np.array([[pstar], [0], [0], [e]]),
        ...                          np.array([[-pstar], [0], [0], [e]]))
        >>> round(float(c[0]), 12), round(float(phi[0]), 12)
        (0.0, 0.0)
    """
    a = np.asarray(l1, dtype=np.float64)
    b = np.asarray(l2, dtype=np.float64)
    # component by component, in place where a temporary can be reused: the numbers of the
    # (3, n) vector form (np.cross, sums over the axis) bit for bit, in a third of its
    # temporaries, whose first-touch page faults are most of the vector form's time
    ax, ay, az, ae = a
    px, py, pz, pe = (a[i] + b[i] for i in range(4))  # the pair
    pabs = px * px
    pabs += py * py
    pabs += pz * pz
    np.sqrt(pabs, out=pabs)
    mass = pe * pe
    mass -= pabs * pabs
    np.clip(mass, 1e-300, None, out=mass)
    np.sqrt(mass, out=mass)
    moving = pabs > 0
    inv = np.where(moving, pabs, 1.0)
    zx, zy, zz = (np.divide(c, inv, out=c) for c in (px, py, pz))  # z*: the pair's direction
    if not moving.all():
        still = ~moving
        zx[still], zy[still], zz[still] = 0.0, 0.0, 1.0
    del inv, moving
    # lepton 1 in the rest frame: the component along z* is boosted, the transverse ones not
    l_par = ax * zx
    l_par += ay * zy
    l_par += az * zz
    lpr = np.divide(pe, mass, out=pe)  # γ l_par − βγ E
    lpr *= l_par
    bg = np.divide(pabs, mass, out=pabs)
    bg *= ae
    lpr -= bg
    lpx = np.subtract(ax, l_par * zx, out=mass)  # l_perp = l − l_par z*
    lpy = ay - l_par * zy
    lpz = np.multiply(l_par, zz, out=l_par)
    np.subtract(az, lpz, out=lpz)
    # y* = beam × z* = (−z_y, z_x, 0)/|·| (the lab y axis for a pair along the beam)
    ny = zy * zy
    ny += zx * zx
    np.sqrt(ny, out=ny)
    along = ny < 1e-12
    np.putmask(ny, along, 1.0)
    yx = np.negative(zy)
    yx /= ny
    yy = np.divide(zx, ny, out=ny)
    if along.any():
        yx[along], yy[along] = 0.0, 1.0
    # x* = y* × z* = (y_y z_z, −y_x z_z, y_x z_y − y_y z_x) (y*_z = 0); lx = l_perp · x*
    lx = yy * zz
    lx *= lpx
    t = np.multiply(yx, zz, out=zz)
    np.negative(t, out=t)
    t *= lpy
    lx += t
    np.multiply(yx, zy, out=t)
    t -= yy * zx
    t *= lpz
    lx += t
    ly = np.multiply(lpx, yx, out=lpx)  # l_perp · y*
    ly += np.multiply(lpy, yy, out=lpy)
    p_rest = lx * lx
    p_rest += ly * ly
    p_rest += lpr * lpr
    np.sqrt(p_rest, out=p_rest)
    with np.errstate(divide="ignore", invalid="ignore"):
        cos_t = np.divide(lpr, p_rest, out=lpr)
    np.clip(cos_t, -1.0, 1.0, out=cos_t)
    return cos_t, np.arctan2(ly, lx)


def angular_functions(cos_theta: ArrayLike, phi: ArrayLike) -> NDArray[np.float64]:
    """(3, n): cos²θ*, sin²θ* cos2φ*, sin2θ* cosφ* (the terms of W after the 1).

    Example:
        >>> angular_functions([0.0], [0.0]).ravel().tolist()
        [0.0, 1.0, 0.0]
    """
    c, ph = np.broadcast_arrays(
        np.asarray(cos_theta, dtype=np.float64), np.asarray(phi, dtype=np.float64)
    )
    out = np.empty((3, *c.shape))
    if c.ndim != 1:
        _angular_block(c, ph, out)
        return out
    for b0 in range(0, c.size, _BLOCK):  # the temporaries of a block stay in the cache
        sl = slice(b0, b0 + _BLOCK)
        _angular_block(c[sl], ph[sl], out[:, sl])
    return out


_BLOCK = 1 << 16
"""Pairs per block of :func:`angular_functions` (the same numbers as one block)."""


def _angular_block(c: NDArray[np.float64], ph: NDArray[np.float64], out: NDArray[np.float64]):
    """:func:`angular_functions` of ``c``, ``ph`` into ``out`` (3, ...)."""
    c2 = c * c
    s2 = 1.0 - c2
    cp = np.cos(ph)
    out[0] = c2
    np.multiply(s2, 2.0 * cp * cp - 1.0, out=out[1])  # cos2φ = 2cos²φ − 1
    np.multiply(2.0 * c * np.sqrt(s2), cp, out=out[2])


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
        u: (3, n) angular functions of the pairs (:func:`angular_functions`).
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
    one_pass = _NewtonPass(u, a0, v, w)
    lam, parts = _first_pass(one_pass, start, n_params)
    # σ without the meat: √diag(H⁻¹) times the sandwich's factor for equal weights
    w_scale = float(np.sqrt(np.dot(w, w) / abs(w.sum()))) if w.size and w.sum() != 0 else 1.0
    prev = None  # the step that led to this pass, taken whole (None: none, or cut back)
    for _ in range(max_iter):
        hinv = _inverse_if_positive(parts[1])
        if hinv is None:
            break  # not a minimum's neighbourhood: the damped fit
        step = hinv @ parts[0]  # H⁻¹ · score: the Newton step
        if parts[2] is not None:
            cov = _sandwich_of(hinv, parts[2])
            if cov is None:
                break
            sig = np.sqrt(np.diag(cov))
        else:
            cov, sig = None, np.sqrt(np.diag(hinv)) * w_scale
        r = float(np.max(np.abs(step) / sig))
        r_prev = None if prev is None else float(np.max(np.abs(prev) / sig))
        # Newton's residual after this step: ~r³/r_prev² (quadratic convergence)
        residual = r if r_prev is None else min(r, r**3 / max(r_prev, 1e-300) ** 2)
        if cov is not None and r <= tol and (r <= tol**2 or residual <= tol**2):
            return lam + step, cov  # taken without another pass
        t = 1.0
        # the next pass can be the last: its step, predicted, is below 10·tol
        meat = r <= 10 * tol or (r_prev is not None and residual <= 10 * tol)
        while (new := one_pass(lam + t * step, meat=meat)) is None and t > 1e-6:
            t *= 0.5  # a step out of the region where W and the moments are positive
        if new is None:
            break
        lam, parts = lam + t * step, new
        prev = step if t == 1.0 else None
    return _fit_lambdas_damped(u, a0, v, w, n_params=n_params)


def _counted_pairs(u: ArrayLike, a0: ArrayLike, v: ArrayLike, w: ArrayLike,
                   n_params: int) -> tuple[NDArray[np.float64], ...]:  # fmt: skip
    """(u, a0, v, w) of :func:`fit_lambdas` as C-contiguous float64, the rows of the fitted
    λ only, the pairs with w = 0 dropped (a transposed or float32 input, e.g. rows of
    PairMoments, would otherwise keep its strides through every pass's slices)."""
    w = np.ascontiguousarray(w, dtype=np.float64)
    a0 = np.ascontiguousarray(a0, dtype=np.float64)
    u = np.ascontiguousarray(np.asarray(u)[:n_params], dtype=np.float64)
    v = np.ascontiguousarray(np.asarray(v)[:n_params], dtype=np.float64)
    if not np.all(w != 0):  # only the pairs that count
        nz = w != 0
        u, v, a0, w = u[:, nz], v[:, nz], a0[nz], w[nz]
    return u, a0, v, w


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
        return np.linalg.inv(hess)
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
    tests.

    Arguments:
        u: (3, n) angular functions of the pairs (:func:`angular_functions`).
        a0: (n,) ⟨a⟩ of each pair (:meth:`PairAcceptance.moments_at`, row 0).
        v: (3, n) the pairs' moments ⟨c² a⟩, ⟨s² cos2φ a⟩, ⟨sin2θ cosφ a⟩ (rows 1–3).
        w: (n,) weights (may be negative: like-sign subtraction).
        n_params: fit λ_θ only (1), λ_θ and λ_φ (2), or all three (3); the others are 0.

    Returns:
        ``(lam, cov)``: the λ (n_params) and their covariance (n_params × n_params).

    Raises:
        ValueError: the fit does not converge (e.g. too few pairs, a singular Hessian).

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


@dataclass(frozen=True)
class Polarisation:
    """λ_θ, λ_φ, λ_θφ per mass bin (helicity frame) with their 1σ errors (NaN: no fit)."""

    mass_edges: NDArray[np.float64]
    lambda_theta: NDArray[np.float64]
    lambda_theta_err: NDArray[np.float64]
    lambda_phi: NDArray[np.float64]
    lambda_phi_err: NDArray[np.float64]
    lambda_theta_phi: NDArray[np.float64]
    lambda_theta_phi_err: NDArray[np.float64]
    n_pairs: NDArray[np.int64]
    n_eff: NDArray[np.float64]
    used_in_acceptance: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The ``polarisation`` block of ``select.json`` / ``yields.json`` (NaN → null by
        :func:`gammastar.core.artifacts.json_text`)."""

        def lst(x):
            return [float(v) for v in np.asarray(x, dtype=np.float64)]

        return {
            "frame": FRAME,
            "mass_edges": lst(self.mass_edges),
            "lambda_theta": lst(self.lambda_theta),
            "lambda_theta_err": lst(self.lambda_theta_err),
            "lambda_phi": lst(self.lambda_phi),
            "lambda_phi_err": lst(self.lambda_phi_err),
            "lambda_theta_phi": lst(self.lambda_theta_phi),
            "lambda_theta_phi_err": lst(self.lambda_theta_phi_err),
            "n_pairs": [int(n) for n in self.n_pairs],
            "n_eff": lst(self.n_eff),
            "method": METHOD,
            "used_in_acceptance": bool(self.used_in_acceptance),
        }


NARROW_PEAKS = ("omega", "phi", "jpsi", "psi2S", "upsilon1S", "upsilon2S", "upsilon3S")
"""The narrow vector mesons whose dilepton peaks :func:`peak_safe_edges` keeps inside one
polarisation bin (names of :data:`gammastar.physics.constants.PDGID`)."""


def narrow_peaks() -> tuple[float, ...]:
    """PDG masses (GeV, :func:`gammastar.physics.constants.mass`) of :data:`NARROW_PEAKS`,
    ascending."""

    return tuple(sorted(mass(n) for n in NARROW_PEAKS))


def peak_safe_edges(
    edges: ArrayLike,
    m: ArrayLike,
    window: float,
    *,
    peaks: ArrayLike | None = None,
    min_pairs: int = MIN_PAIRS,
) -> NDArray[np.float64]:
    r"""Polarisation bin edges with no inner edge within ``window`` of a narrow resonance.

    Why: near a peak narrower than the bins, which pairs are reconstructed on which side of an
    edge depends on their decay angles (the mass resolution differs between symmetric and
    asymmetric decays: the softer muon scatters more), so a reconstructed-mass bin that cuts
    through a peak selects cos θ*: on the default mock (σ_m = 30 MeV at the ω, λ_θ = 0 for
    every vector meson) equal-count bins that cut through the ω measure a λ_θ far from the
    truth on either side of the edge, and the fiducial yield follows (docs/explanation/method.md
    "Narrow peaks"). With the peaks kept whole (window 0.105 GeV = 3.5 σ_m) the same pairs
    give λ_θ consistent with 0.

    Each inner edge inside a window (p − window, p + window) moves to the window's nearer side
    (inside the outer edges and no other window; none: the edge is dropped); then, while a
    bin holds fewer than ``min_pairs`` of the masses ``m`` (the OS pairs), its edge shared
    with the smaller neighbour is dropped.

    Arguments:
        edges: the edges to fix (outer edges kept).
        m: the masses the bins count (the fiducial OS pairs).
        window: half-width (GeV) around each peak: a few σ_m (the experiment's mass
            resolution at that peak).
        peaks: peak masses (GeV; default :func:`narrow_peaks`).
        min_pairs: fewest masses per bin.

    Returns:
        The edges, ascending.

    Example:
        >>> m = np.linspace(0.3, 1.1, 8001)
        >>> peak_safe_edges([0.2, 0.5, 0.77, 0.8, 1.1], m, 0.1, peaks=[0.78]).tolist()
        [0.2, 0.5, 0.68, 0.88, 1.1]
    """
    e = np.asarray(edges, dtype=np.float64)
    lo, hi = float(e[0]), float(e[-1])
    pk = np.asarray(narrow_peaks() if peaks is None else peaks, dtype=np.float64)
    wins = [(p - window, p + window) for p in pk if p + window > lo and p - window < hi]

    def inside(x: float) -> bool:
        return any(a < x < b for a, b in wins)

    inner = []
    for x in e[1:-1]:
        if inside(x):
            sides = [c for a, b in wins if a < x < b for c in (a, b)]
            ok = [c for c in sides if lo < c < hi and not inside(c)]
            if not ok:
                continue
            x = min(ok, key=lambda c: abs(c - x))
        inner.append(round(float(x), 3))
    out = np.unique(np.concatenate([[lo], inner, [hi]]))
    m = np.asarray(m, dtype=np.float64)
    while out.size > 2:
        n = _counts_in(m, out)
        k = int(np.argmin(n))
        if n[k] >= min_pairs:
            break
        # drop the edge towards the smaller neighbour (the only one at either end)
        if k == 0:
            drop = 1
        elif k == n.size - 1:
            drop = out.size - 2
        else:
            drop = k if n[k - 1] <= n[k + 1] else k + 1
        out = np.delete(out, drop)
    return out


def _counts_in(m: NDArray[np.float64], edges: NDArray[np.float64]) -> NDArray[np.int64]:
    """``np.histogram(m, bins=edges)[0]`` (bins [e_i, e_i+1), the last closed; NaN and
    values outside in none) by one comparison per edge: np.histogram sorts the values for
    unequal bins, which costs far more than a few comparisons."""
    at_or_above = [np.count_nonzero(m >= e) for e in edges[:-1]]
    ge = np.array([*at_or_above, np.count_nonzero(m > edges[-1])], dtype=np.int64)
    return ge[:-1] - ge[1:]


def polarisation_edges(m: ArrayLike, n_bins: int, lo: float, hi: float) -> NDArray[np.float64]:
    """Mass edges with equal numbers of the given masses per bin (rounded to 1 MeV; ``lo``
    and ``hi`` the outer edges; duplicate edges merged).

    Example:
        >>> polarisation_edges(np.linspace(0.3, 0.9, 601), 3, 0.2, 1.0).tolist()
        [0.2, 0.5, 0.7, 1.0]
    """
    m = np.asarray(m, dtype=np.float64)
    m = m[(m >= lo) & (m < hi)]
    if m.size == 0 or n_bins == 1:
        return np.array([lo, hi])
    # m is the filtered copy above: np.quantile may partition it in place (the same numbers,
    # without a second copy of ~10⁶ masses)
    q = np.quantile(m, np.linspace(0, 1, n_bins + 1)[1:-1], overwrite_input=True)
    inner = np.round(q, 3)
    inner = inner[(inner > lo) & (inner < hi)]
    return np.unique(np.concatenate([[lo], inner, [hi]]))


def measure(
    pairs: Any,
    acceptance: Any,
    edges: ArrayLike,
    *,
    used_in_acceptance: bool = False,
    min_pairs: int = MIN_PAIRS,
    moments: NDArray[np.float64] | None = None,
) -> Polarisation:
    """λ_θ, λ_φ, λ_θφ per mass bin from the pairs (helicity frame).

    Each pair's bin is the number of edges at or below its mass, less one (``searchsorted``'s
    bin, by comparisons: 2-byte integers, 5× less memory and a third of the time on 2·10⁶
    pairs), −1 for a pair without a fit weight; each bin's pairs are then found in that
    small array.

    Arguments:
        pairs: mapping with the ``pairs.parquet`` columns ``m``, ``pT``, ``pz``, ``charge``,
            ``cos_theta_hel``, ``phi_hel``, ``weight``, ``acc``.
        acceptance: the :class:`~gammastar.corrections.pair_acceptance.table.PairAcceptance` of the selection
            (its moment tables).
        edges: mass bin edges.
        used_in_acceptance: recorded (whether the selection's weights follow this λ_θ).
        min_pairs: fewer OS pairs with weight in a bin: NaN there.
        moments: (4, n) the acceptance's moments at every pair (``acceptance.moments_at``
            of their (m, p, θ)) when already computed (a measured λ_θ computes them for its
            isotropic weights): taken instead of looking them up per bin, the same numbers
            (float64; or float32, :meth:`~gammastar.corrections.pair_acceptance.table.PairAcceptance.
            pair_moments`: gathered in it, the fit in float64 from them).

    Returns:
        :class:`Polarisation`.
    """
    edges = np.asarray(edges, dtype=np.float64)
    col = {k: np.asarray(pairs[k]) for k in ("m", "pT", "pz", "charge", "weight", "acc")}
    c = np.asarray(pairs["cos_theta_hel"], dtype=np.float64)
    ph = np.asarray(pairs["phi_hel"], dtype=np.float64)
    # the efficiency-corrected, like-sign-subtracting weight (the acceptance is in the fit)
    w_all = col["weight"] * col["acc"]
    nb = edges.size - 1
    out = {k: np.full(nb, np.nan) for k in PARAMS}
    err = {k: np.full(nb, np.nan) for k in PARAMS}
    n_pairs = np.zeros(nb, dtype=np.int64)
    n_eff = np.zeros(nb)
    idx = np.full(w_all.shape, -1, dtype=np.int16 if nb < 2**15 - 1 else np.int64)
    for e in edges:  # NaN: in no bin
        idx += col["m"] >= e
    unused = w_all == 0
    unused |= ~np.isfinite(w_all)
    unused |= ~np.isfinite(c)
    unused |= ~np.isfinite(ph)
    idx[unused] = -1
    for b in range(nb):
        k = np.flatnonzero(idx == b)
        n_pairs[b] = int(np.count_nonzero(col["charge"][k] == 0))
        w = w_all[k]
        n_eff[b] = float(w.sum() ** 2 / np.sum(w**2)) if k.size else 0.0
        if n_pairs[b] < min_pairs:
            continue
        if moments is not None:
            mom = _rows(moments, k)
        else:
            pt_k, pz_k = col["pT"][k], col["pz"][k]  # gathered once for both
            mom = acceptance.moments_at(col["m"][k], np.hypot(pt_k, pz_k), np.arctan2(pt_k, pz_k))
        ok = mom[0] > 0
        if not ok.all():
            k, mom, w = k[ok], mom[:, ok], w[ok]
        u = angular_functions(c[k], ph[k])
        try:
            lam, cov = fit_lambdas(u, mom[0], mom[1:], w, n_params=3)
        except ValueError:
            continue
        for i, name in enumerate(PARAMS):
            out[name][b] = lam[i]
            err[name][b] = float(np.sqrt(cov[i, i]))
    return Polarisation(
        edges, out["lambda_theta"], err["lambda_theta"], out["lambda_phi"], err["lambda_phi"],
        out["lambda_theta_phi"], err["lambda_theta_phi"], n_pairs, n_eff, used_in_acceptance,
    )  # fmt: skip


def _rows(table: NDArray[np.float64], k: NDArray[np.intp]) -> NDArray[np.float64]:
    """The columns ``k`` of a (rows, n) table, gathered row by row (1-d gathers: 2–3×
    faster than ``table[:, k]``), in the table's dtype. A transposed view of rows
    (:attr:`~gammastar.corrections.pair_acceptance.table.PairMoments.values`): one gather of the rows (a
    transposed view of them returned)."""
    if table.T.flags.c_contiguous and not table.flags.c_contiguous:
        return table.T.take(k, axis=0).T
    out = np.empty((table.shape[0], k.size), dtype=table.dtype)
    for r in range(table.shape[0]):
        table[r].take(k, out=out[r])
    return out


def truth_lambdas(
    m: ArrayLike, cos_theta: ArrayLike, phi: ArrayLike, edges: ArrayLike
) -> dict[str, NDArray[np.float64]]:
    r"""The λ of a full-phase-space sample per mass bin, from its moments (no fit): for W of
    the module docstring, ⟨cos²θ*⟩ = (1/3 + λ_θ/5)/(1 + λ_θ/3), ⟨sin²θ* cos2φ*⟩ =
    (4/15) λ_φ/(1 + λ_θ/3), ⟨sin2θ* cosφ*⟩ = (4/15) λ_θφ/(1 + λ_θ/3) (integrals over the
    sphere). Used for the mock's truth.

    Returns:
        ``{"lambda_theta", "lambda_theta_err", "lambda_phi", "lambda_theta_phi", "n"}`` per
        bin (errors: the moment's standard error propagated).

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(4)
        >>> c = rng.uniform(-1, 1, 10**6); c = c[rng.uniform(0, 2, c.size) < 1 + c**2]
        >>> t = truth_lambdas(np.full(c.size, 0.5), c, rng.uniform(-3, 3, c.size), [0, 1])
        >>> bool(abs(t["lambda_theta"][0] - 1) < 3 * t["lambda_theta_err"][0])
        True
    """
    m = np.asarray(m, dtype=np.float64)
    u = angular_functions(cos_theta, phi)
    edges = np.asarray(edges, dtype=np.float64)
    n = np.histogram(m, edges)[0].astype(float)
    s = np.stack([np.histogram(m, edges, weights=x)[0] for x in u])
    s2 = np.histogram(m, edges, weights=u[0] ** 2)[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = s / n
        c2 = mean[0]
        lt = (5.0 - 15.0 * c2) / (5.0 * c2 - 3.0)
        dc2 = np.sqrt(np.clip(s2 / n - c2**2, 0, None) / n)
        dlt = 20.0 / (5.0 * c2 - 3.0) ** 2 * dc2  # d lt/d c2 = 20/(5 c2 − 3)²
        norm = 1.0 + lt / 3.0
        lp = mean[1] * norm * 15.0 / 4.0
        ltp = mean[2] * norm * 15.0 / 4.0
    return {"lambda_theta": lt, "lambda_theta_err": dlt, "lambda_phi": lp,
            "lambda_theta_phi": ltp, "n": n}  # fmt: skip


def lambdas_from_sums(n: ArrayLike, sums: ArrayLike) -> dict[str, NDArray[np.float64]]:
    r"""The λ per bin of a full-phase-space sample from its counts ``n`` and its sums (3, bins)
    of the :func:`angular_functions` (a generator's histograms): :func:`truth_lambdas`'
    moment formulas; ``lambda_theta_err`` the bound of cos²θ*'s spread, variance ≤ 4/45,
    propagated, √(4/45/n) · 20/(5⟨c²⟩ − 3)² (the histograms do not hold Σ cos⁴θ*).

    Example:
        >>> t = lambdas_from_sums([3.0], [[1.0], [0.0], [0.0]])   # ⟨cos²θ*⟩ = 1/3: isotropic
        >>> abs(float(t["lambda_theta"][0])) < 1e-12
        True
    """
    n = np.asarray(n, dtype=np.float64)
    s = np.asarray(sums, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        c2 = s[0] / n
        lt = (5.0 - 15.0 * c2) / (5.0 * c2 - 3.0)
        norm = 1.0 + lt / 3.0
        return {"lambda_theta": lt,
                "lambda_theta_err": np.sqrt(4.0 / 45.0 / n) * 20.0 / (5.0 * c2 - 3.0) ** 2,
                "lambda_phi": s[1] / n * norm * 3.75, "lambda_theta_phi": s[2] / n * norm * 3.75,
                "n": n}  # fmt: skip


def read_polarisation(run_dir: str | Path) -> dict[str, Any] | None:
    """The ``polarisation`` block of ``<run_dir>/select.json`` (``None`` when absent)."""
    path = Path(run_dir) / "select.json"
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc.get("polarisation")


def lambda_for_acceptance(block: dict[str, Any], source: str) -> tuple[NDArray, NDArray]:
    """(mass edges, λ_θ per bin) from a ``polarisation`` block, for the acceptance.

    Raises:
        InputError: the block has no usable λ_θ (naming ``source``).
    """
    edges = np.asarray(block.get("mass_edges") or [], dtype=np.float64)
    lam = np.array([np.nan if x is None else x for x in block.get("lambda_theta") or []])
    if edges.size < 2 or lam.size != edges.size - 1 or not np.any(np.isfinite(lam)):
        raise InputError(
            f"{source}: unfold.decay_lambda_theta is 'measured' but the polarisation "
            f"measurement has no valid mass bin (it needs {MIN_PAIRS} opposite-sign pairs "
            "inside the fiducial region); give a number instead"
        )
    return edges, lam
