"""Compiled (numba) sums of the extrapolation fit's likelihood
(:mod:`gammastar.yields.extrapolation`).

One pass over a fit group's pairs, or over its reference sample, gives every weighted sum the
truncated likelihood and its analytic gradient need: per point the model's
ln p = ln p_T + a ln m_T − (m_T − m)/T − K + ln p(y), with the p_T normalisation K and the
scalar parts of the derivatives computed once per evaluation by the caller
(:func:`gammastar.yields.extrapolation._pt_terms`), and the rapidity density Gaussian or
logistic (``logistic``). The pairs' and the reference sample's logarithms of p_T and m_T do
not depend on the parameters and are computed once per fit group
(``_Group`` and ``_Reference`` of :mod:`gammastar.yields.extrapolation`).
The numpy functions of :mod:`gammastar.yields.extrapolation` (``_log_pt_power``,
``_dlog_pt_power``, ``_log_y``, ...) are the reference formulas the tests compare these sums
with.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["group_sums", "hess_sums"]

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_LN2 = math.log(2.0)
_LOGISTIC = math.sqrt(12.0) / math.pi  # as extrapolation._LOGISTIC


def _jit(fn):
    try:
        return njit(cache=True, error_model="numpy")(fn)
    except RuntimeError:  # no writable cache location
        return njit(cache=False, error_model="numpy")(fn)


@_jit
def _sums(lpt, lmt, mt, y, c, off, use_exp, m, k_norm, c_t, dn_da, t, a, mu, s, logistic):
    """The sums Σ c_i (1, ln p_i, ∂_T, ∂_ȳ, ∂_σ, ∂_a ln p_i): with ``use_exp`` the point's
    weight is c_i = e^{ln p_i − off_i} (an importance weight over the reference sample) and the
    second sum is 0, else c_i = ``c[i]`` (the pairs' weights). ``m``, ``k_norm``, ``c_t``,
    ``dn_da`` hold one value per point or one for all (length 1): the mass, the p_T
    normalisation K, the scalar part of ∂_T ln p = (m_T − m)/T² + c_T, and ∂K/∂a."""
    n = lpt.size
    per_m = m.size > 1
    per_k = k_norm.size > 1
    per_c = c_t.size > 1
    per_a = dn_da.size > 1
    inv_t = 1.0 / t
    inv_t2 = inv_t * inv_t
    if logistic:
        w_ = _LOGISTIC * s
        inv_w = 1.0 / w_
        y_const = 2.0 * _LN2 - math.log(2.0 * w_)
    else:
        inv_s = 1.0 / s
        y_const = -math.log(s) - _LOG_SQRT_2PI
    s0 = 0.0
    s_lp = 0.0
    s_t = 0.0
    s_mu = 0.0
    s_s = 0.0
    s_a = 0.0
    for i in range(n):
        jm = i if per_m else 0
        jk = i if per_k else 0
        jc = i if per_c else 0
        ja = i if per_a else 0
        d = y[i] - mu
        if logistic:
            u = d * inv_w
            x = abs(u)
            ly = -2.0 * (x + math.log1p(math.exp(-2.0 * x))) + y_const
            th = math.tanh(u)
            g_mu = 2.0 * inv_w * th
            g_s = _LOGISTIC * (2.0 * d * inv_w * inv_w * th - inv_w)
        else:
            z = d * inv_s
            ly = -0.5 * z * z + y_const
            g_mu = d * inv_s * inv_s
            g_s = d * d * inv_s * inv_s * inv_s - inv_s
        dm = mt[i] - m[jm]
        lp = lpt[i] + a * lmt[i] - dm * inv_t - k_norm[jk] + ly
        if use_exp:
            ci = math.exp(lp - off[i])
        else:
            ci = c[i]
            s_lp += ci * lp
        s0 += ci
        s_t += ci * (dm * inv_t2 + c_t[jc])
        s_mu += ci * g_mu
        s_s += ci * g_s
        s_a += ci * (lmt[i] - dn_da[ja])
    out = np.empty(6)
    out[0] = s0
    out[1] = s_lp
    out[2] = s_t
    out[3] = s_mu
    out[4] = s_s
    out[5] = s_a
    return out


def group_sums(lpt, lmt, mt, y, c, off, use_exp, m, k_norm, c_t, dn_da, t, a, mu, s, logistic):
    """:func:`_sums` with its scalar arguments as floats and its one-or-many arguments as
    float64 arrays (one compiled signature).

    Returns:
        float64 array (6,): Σc, Σc ln p (0 with ``use_exp``), Σc ∂_T ln p, Σc ∂_ȳ ln p,
        Σc ∂_σ ln p, Σc ∂_a ln p.

    Example:
        >>> one = np.ones(1)
        >>> out = group_sums(np.log([0.5]), np.log([1.0]), np.array([1.0]), np.array([3.0]),
        ...     one, one, False, np.array([0.9]), np.zeros(1), np.zeros(1), np.zeros(1),
        ...     0.2, 0.0, 3.0, 1.0, False)
        >>> round(float(out[1]), 6)  # ln 0.5 − (1 − 0.9)/0.2 − ln √(2π)
        -2.112086
    """
    f = np.float64
    arr = lambda v: np.ascontiguousarray(np.atleast_1d(np.asarray(v, dtype=f)))
    return _sums(lpt, lmt, mt, y, c, off, bool(use_exp), arr(m), arr(k_norm), arr(c_t),
                 arr(dn_da), float(t), float(a), float(mu), float(s), bool(logistic))  # fmt: skip


@_jit
def _hess_sums(lpt, lmt, mt, y, c, off, use_exp, m, k_norm, c_t, dn_da, h_tt, h_ta, h_aa, t, a,
               mu, s, logistic):  # fmt: skip
    """:func:`_sums` with the second derivatives: per point ∂ ln p (the order T, ȳ, σ, a) and
    ∂² ln p, whose point-independent parts ``h_tt`` (∂²_TT ln p = −2(m_T − m)/T³ + h_tt),
    ``h_ta`` (∂²_Ta) and ``h_aa`` (∂²_aa) are given like ``c_t`` (one or one per point);
    the rapidity block (ȳ, σ) of the Gaussian or logistic density, the T, a – ȳ, σ block 0.

    Returns:
        float64 (38,): Σc, Σc ln p (0 with ``use_exp``), Σc ∂ ln p (4), Σc ∂² ln p (4 × 4, row
        major), Σc ∂ ln p ∂ ln pᵀ (4 × 4).
    """
    n = lpt.size
    per_m = m.size > 1
    per_k = k_norm.size > 1
    per_c = c_t.size > 1
    per_a = dn_da.size > 1
    per_h = h_tt.size > 1
    inv_t = 1.0 / t
    inv_t2 = inv_t * inv_t
    inv_t3 = inv_t2 * inv_t
    inv_s = 1.0 / s
    if logistic:
        w_ = _LOGISTIC * s
        inv_w = 1.0 / w_
        y_const = 2.0 * _LN2 - math.log(2.0 * w_)
    else:
        y_const = -math.log(s) - _LOG_SQRT_2PI
    out = np.zeros(38)
    d1 = np.empty(4)
    for i in range(n):
        jm = i if per_m else 0
        jk = i if per_k else 0
        jc = i if per_c else 0
        ja = i if per_a else 0
        jh = i if per_h else 0
        d = y[i] - mu
        if logistic:
            u = d * inv_w
            x = abs(u)
            ly = -2.0 * (x + math.log1p(math.exp(-2.0 * x))) + y_const
            th = math.tanh(u)
            sech2 = 1.0 - th * th
            g_mu = 2.0 * inv_w * th
            g_s = _LOGISTIC * (2.0 * d * inv_w * inv_w * th - inv_w)
            h_mm = -2.0 * sech2 * inv_w * inv_w
            h_ms = -2.0 * (u * sech2 + th) * inv_w * inv_s
            h_ss = (1.0 - 4.0 * u * th - 2.0 * u * u * sech2) * inv_s * inv_s
        else:
            z = d * inv_s
            ly = -0.5 * z * z + y_const
            g_mu = d * inv_s * inv_s
            g_s = d * d * inv_s * inv_s * inv_s - inv_s
            h_mm = -inv_s * inv_s
            h_ms = -2.0 * z * inv_s * inv_s
            h_ss = (1.0 - 3.0 * z * z) * inv_s * inv_s
        dm = mt[i] - m[jm]
        lp = lpt[i] + a * lmt[i] - dm * inv_t - k_norm[jk] + ly
        if use_exp:
            ci = math.exp(lp - off[i])
        else:
            ci = c[i]
            out[1] += ci * lp
        out[0] += ci
        d1[0] = dm * inv_t2 + c_t[jc]
        d1[1] = g_mu
        d1[2] = g_s
        d1[3] = lmt[i] - dn_da[ja]
        for j in range(4):
            out[2 + j] += ci * d1[j]
            for k in range(4):
                out[22 + 4 * j + k] += ci * d1[j] * d1[k]
        out[6] += ci * (-2.0 * dm * inv_t3 + h_tt[jh])  # TT
        out[9] += ci * h_ta[jh]  # Ta
        out[18] += ci * h_ta[jh]  # aT
        out[21] += ci * h_aa[jh]  # aa
        out[11] += ci * h_mm  # ȳȳ
        out[12] += ci * h_ms  # ȳσ
        out[15] += ci * h_ms  # σȳ
        out[16] += ci * h_ss  # σσ
    return out


def hess_sums(lpt, lmt, mt, y, c, off, use_exp, m, terms, t, a, mu, s, logistic):
    """:func:`_hess_sums` with ``terms`` = (K, c_T, ∂K/∂a, h_TT, h_Ta, h_aa) of
    :func:`gammastar.yields.extrapolation._pt_terms` (``with_hessian``).

    Returns:
        ``(Σc, Σc ln p, Σc ∂ ln p (4,), Σc ∂² ln p (4, 4), Σc ∂ ln p ∂ ln pᵀ (4, 4))``, the
        parameters in the order (T, ȳ, σ_y, a).

    Example:
        >>> one = np.ones(1)
        >>> out = hess_sums(np.log([0.5]), np.log([1.0]), np.array([1.0]), np.array([3.0]),
        ...     one, one, False, np.array([0.9]), (0.0, 0.0, 0.0, 0.0, 0.0, 0.0), 0.2, 0.0, 3.0,
        ...     1.0, False)
        >>> round(float(out[3][0, 0]), 6)  # ∂²_TT ln p = −2 (m_T − m)/T³
        -25.0
    """
    f = np.float64
    arr = lambda v: np.ascontiguousarray(np.atleast_1d(np.asarray(v, dtype=f)))
    k, c_t, dn, h_tt, h_ta, h_aa = (arr(v) for v in terms)
    out = _hess_sums(lpt, lmt, mt, y, c, off, bool(use_exp), arr(m), k, c_t, dn, h_tt, h_ta,
                     h_aa, float(t), float(a), float(mu), float(s), bool(logistic))  # fmt: skip
    return out[0], out[1], out[2:6], out[6:22].reshape(4, 4), out[22:38].reshape(4, 4)
