"""Compiled (numba) sums of the extrapolation fit's likelihood
(:mod:`gammastar.yields.extrapolation`).

One pass over a fit group's pairs, or over its reference sample, gives every weighted sum the
truncated likelihood and its analytic gradient need: per point the model's
ln p = ln p_T + a ln m_T − (m_T − m)/T − K + ln p(y), with the p_T normalisation K and the
scalar parts of the derivatives computed once per evaluation by the caller
(:func:`gammastar.yields.extrapolation.model.pt_terms`), and the rapidity density Gaussian or
logistic (``logistic``). The pairs' and the reference sample's logarithms of p_T and m_T do
not depend on the parameters and are computed once per fit group
(``FitGroup`` and ``ReferenceSample`` of :mod:`gammastar.yields.extrapolation`).
The numpy functions of :mod:`gammastar.yields.extrapolation` (``_log_pt_power``,
``_dlog_pt_power``, ``log_y_gauss``, ...) are the reference formulas the tests compare these sums
with.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from gammastar.core.imports import import_vector

import_vector()  # before numba's first dispatch loads vector's extension (core.imports)

__all__ = ["group_sums", "hess_sums"]

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_LN2 = math.log(2.0)
_LOGISTIC = math.sqrt(12.0) / math.pi  # as extrapolation._LOGISTIC


def _jit(fn):
    # nogil: the fit groups run on threads side by side (core.threads.thread_map)
    try:
        return njit(cache=True, error_model="numpy", nogil=True)(fn)
    except RuntimeError:  # no writable cache location
        return njit(cache=False, error_model="numpy", nogil=True)(fn)


def group_sums(lpt, lmt, mt, y, c, off, use_exp, m, k_norm, c_t, dn_da, t, a, mu, s, logistic):
    """The sums Σ c_i (1, ln p_i, ∂_T, ∂_ȳ, ∂_σ, ∂_a ln p_i) of :func:`_hess_sums` (the
    likelihood and its gradient): with ``use_exp`` the point's weight is
    c_i = e^{ln p_i − off_i} (an importance weight over the reference sample) and the second
    sum is 0, else c_i = ``c[i]`` (the pairs' weights). ``m``, ``k_norm``, ``c_t``, ``dn_da``
    hold one value per point or one for all: the mass, the p_T normalisation K, the scalar
    part of ∂_T ln p = (m_T − m)/T² + c_T, and ∂K/∂a.

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
    zero = np.zeros(1)
    return _call(lpt, lmt, mt, y, c, off, use_exp, m, (k_norm, c_t, dn_da, zero, zero, zero),
                 t, a, mu, s, logistic)[:6]  # fmt: skip


@_jit
def _hess_sums(lpt, lmt, mt, y, c, off, use_exp, m, k_norm, c_t, dn_da, h_tt, h_ta, h_aa, t, a,
               mu, s, logistic):  # fmt: skip
    """One pass over the points: Σc, Σc ln p, Σc ∂ ln p (the order T, ȳ, σ, a), Σc ∂² ln p
    and Σc ∂ ln p ∂ ln pᵀ (arguments as :func:`group_sums`'), with the point-independent parts
    of ∂² ln p ``h_tt`` (∂²_TT ln p = −2(m_T − m)/T³ + h_tt), ``h_ta`` (∂²_Ta) and ``h_aa``
    (∂²_aa) one or one per point; the rapidity block (ȳ, σ) of the Gaussian or logistic
    density, the T, a – ȳ, σ block 0.

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
    s0 = s_lp = 0.0
    g_t = g_m = g_s = g_a = 0.0  # Σc ∂ ln p
    o_tt = o_tm = o_ts = o_ta = o_mm = o_ms = o_ma = o_ss = o_sa = o_aa = 0.0  # Σc ∂∂ᵀ
    s_dm = s_htt = s_hta = s_haa = s_hmm = s_hms = s_hss = 0.0  # Σc of ∂²'s parts
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
            d_m = 2.0 * inv_w * th
            d_s = _LOGISTIC * (2.0 * d * inv_w * inv_w * th - inv_w)
            h_mm = -2.0 * sech2 * inv_w * inv_w
            h_ms = -2.0 * (u * sech2 + th) * inv_w * inv_s
            h_ss = (1.0 - 4.0 * u * th - 2.0 * u * u * sech2) * inv_s * inv_s
        else:
            z = d * inv_s
            ly = -0.5 * z * z + y_const
            d_m = d * inv_s * inv_s
            d_s = d * d * inv_s * inv_s * inv_s - inv_s
            h_mm = -inv_s * inv_s
            h_ms = -2.0 * z * inv_s * inv_s
            h_ss = (1.0 - 3.0 * z * z) * inv_s * inv_s
        dm = mt[i] - m[jm]
        lp = lpt[i] + a * lmt[i] - dm * inv_t - k_norm[jk] + ly
        if use_exp:
            ci = math.exp(lp - off[i])
        else:
            ci = c[i]
            s_lp += ci * lp
        d_t = dm * inv_t2 + c_t[jc]
        d_a = lmt[i] - dn_da[ja]
        s0 += ci
        g_t += ci * d_t
        g_m += ci * d_m
        g_s += ci * d_s
        g_a += ci * d_a
        ct, cm, cs, ca = ci * d_t, ci * d_m, ci * d_s, ci * d_a
        o_tt += ct * d_t
        o_tm += ct * d_m
        o_ts += ct * d_s
        o_ta += ct * d_a
        o_mm += cm * d_m
        o_ms += cm * d_s
        o_ma += cm * d_a
        o_ss += cs * d_s
        o_sa += cs * d_a
        o_aa += ca * d_a
        s_dm += ci * dm
        s_htt += ci * h_tt[jh]
        s_hta += ci * h_ta[jh]
        s_haa += ci * h_aa[jh]
        s_hmm += ci * h_mm
        s_hms += ci * h_ms
        s_hss += ci * h_ss
    out = np.zeros(38)
    out[0] = s0
    out[1] = s_lp
    out[2] = g_t
    out[3] = g_m
    out[4] = g_s
    out[5] = g_a
    # Σc ∂² ln p, row major over (T, ȳ, σ, a): the T, a – ȳ, σ block 0
    out[6] = -2.0 * inv_t3 * s_dm + s_htt
    out[9] = out[18] = s_hta
    out[21] = s_haa
    out[11] = s_hmm
    out[12] = out[15] = s_hms
    out[16] = s_hss
    # Σc ∂ ln p ∂ ln pᵀ
    o = ((o_tt, o_tm, o_ts, o_ta), (o_tm, o_mm, o_ms, o_ma), (o_ts, o_ms, o_ss, o_sa),
         (o_ta, o_ma, o_sa, o_aa))  # fmt: skip
    for j in range(4):
        for k in range(4):
            out[22 + 4 * j + k] = o[j][k]
    return out


def hess_sums(lpt, lmt, mt, y, c, off, use_exp, m, terms, t, a, mu, s, logistic):
    """:func:`_hess_sums` with ``terms`` = (K, c_T, ∂K/∂a, h_TT, h_Ta, h_aa) of
    :func:`gammastar.yields.extrapolation.model.pt_terms` (``with_hessian``).

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
    out = _call(lpt, lmt, mt, y, c, off, use_exp, m, terms, t, a, mu, s, logistic)
    return out[0], out[1], out[2:6], out[6:22].reshape(4, 4), out[22:38].reshape(4, 4)


def _call(lpt, lmt, mt, y, c, off, use_exp, m, terms, t, a, mu, s, logistic):
    """:func:`_hess_sums` with its scalar arguments as floats and its one-or-many arguments
    as float64 arrays (one compiled signature)."""
    f = np.float64
    arr = lambda v: np.ascontiguousarray(np.atleast_1d(np.asarray(v, dtype=f)))
    k, c_t, dn, h_tt, h_ta, h_aa = (arr(v) for v in terms)
    return _hess_sums(lpt, lmt, mt, y, c, off, bool(use_exp), arr(m), k, c_t, dn, h_tt, h_ta,
                      h_aa, float(t), float(a), float(mu), float(s), bool(logistic))  # fmt: skip


def warm_up() -> None:
    """Compile (or load from numba's cache) both sums at the signature their callers use
    (float64 arrays, the flags as booleans: :mod:`gammastar.kernels`)."""
    one = np.ones(1)
    terms = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    hess_sums(one, one, one, one, one, one, False, one, terms, 0.2, 0.0, 3.0, 1.0, False)
    group_sums(one, one, one, one, one, one, True, one, 0.0, 0.0, 0.0, 0.2, 0.0, 3.0, 1.0, True)
