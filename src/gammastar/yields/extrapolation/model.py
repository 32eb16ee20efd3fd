"""The extrapolation model's densities: the m_T-exponential (or m_T^a e^{−m_T/T}, or Tsallis) p_T spectrum and
the Gaussian (or logistic) lab rapidity, optionally suppressed as (1 − E/E_beam)^n towards the
beam energy, their derivatives, the model forms and variations (:data:`FORMS`), and the
fiducial fraction P_F of the model (:func:`fiducial_fraction`).
"""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.physics.sampling import falloff_weight
from gammastar.yields._fiducial_bound import inside_at_mass, inside_at_mass_each

__all__ = ["BOUNDS", "FALLOFF", "FORMS", "HESSIAN_STEP", "MIN_EFF_PAIRS", "MODEL_NAME", "MODEL_VARIATIONS", "NOMINAL", "POWER_BOUNDS", "POWER_STEP", "TSALLIS_BOUNDS", "TSALLIS_START", "TWO_SIDED", "XF_POWER", "Falloff", "ModelForm", "falloff_power", "fiducial_fraction", "grid_in_f", "grids_in_f", "log_pt_of", "log_y_gauss", "pt_terms"]

MODEL_NAME = "mT-exponential x Gaussian rapidity"
_PT = np.linspace(0.0, 6.0, 241)[1:] - 0.0125  # midpoints, 25 MeV
_Y = np.linspace(-3.0, 9.0, 241)[1:] - 0.025  # midpoints, 0.05
BOUNDS = ((0.03, 1.5), (-1.0, 8.0), (0.1, 5.0))
MIN_EFF_PAIRS = 400.0
"""Adjacent mass bins are fitted together until their Kish effective size reaches this."""


def _log_pt(m: NDArray | float, pt: NDArray, t: float) -> NDArray:
    """ln of p_T e^{−(m_T − m)/T} / (T (m + T)) (normalised over p_T ≥ 0)."""
    mt = np.sqrt(pt**2 + m**2)
    with np.errstate(divide="ignore"):
        return log_pt_of(np.log(pt), mt, m, t)


def log_pt_of(log_pt: NDArray, mt: NDArray, m: NDArray | float, t: float) -> NDArray:
    """:func:`_log_pt` from ln p_T and m_T already computed (the same numbers)."""
    return log_pt - (mt - m) / t - math.log(t) - np.log(m + t)


def log_y_gauss(y: NDArray, mu: float, s: float) -> NDArray:
    return -0.5 * ((y - mu) / s) ** 2 - math.log(s) - 0.5 * math.log(2 * math.pi)


def _dlog_pt(m, pt, t):
    """∂ ln p(p_T) / ∂T of :func:`_log_pt`."""
    return (np.sqrt(pt**2 + m**2) - m) / t**2 - 1.0 / t - 1.0 / (m + t)


def _dlog_y(y, mu, s):
    """∂ ln p(y) / ∂(ȳ, σ_y) of :func:`log_y_gauss`, shape (2, n)."""
    d = y - mu
    return np.stack([d / s**2, d**2 / s**3 - 1.0 / s])


def _log_pt_boltzmann(m: NDArray, pt: NDArray, t: float) -> NDArray:
    """ln of p_T m_T e^{−(m_T − m)/T} / (T (m² + 2mT + 2T²)) (normalised over p_T ≥ 0:
    ∫ p_T m_T e^{−(m_T − m)/T} dp_T = ∫_m^∞ x² e^{−(x − m)/T} dx)."""
    mt = np.sqrt(pt**2 + m**2)
    with np.errstate(divide="ignore"):
        return np.log(pt) + np.log(mt) - (mt - m) / t - np.log(t * (m * m + 2 * m * t + 2 * t * t))


def _dlog_pt_boltzmann(m, pt, t):
    mt = np.sqrt(pt**2 + m**2)
    return (mt - m) / t**2 - 1.0 / t - (2 * m + 4 * t) / (m * m + 2 * m * t + 2 * t * t)


POWER_BOUNDS = (-1.9, 5.0)
"""Bounds of a fitted m_T power a (the normalisation needs a > −2; the mock's
``mock.pt_mt_power`` allows (−2, 5])."""
_NORM_NODES = 257


def _log_norm_power(m: ArrayLike, t: float, a: float) -> NDArray:
    """ln ∫_m^∞ x^{a+1} e^{−(x − m)/T} dx = ln[T^{a+2} e^{m/T} Γ(a + 2, m/T)], the p_T
    normalisation of m_T^a e^{−(m_T − m)/T} (x = m_T). For a per-pair array of masses (more
    than :data:`_NORM_NODES`), interpolated linearly between that many nodes over its range
    (smooth in m: ≲ 10⁻⁷ on a 60 MeV fit group, ≲ 10⁻⁶ on 0.2 GeV; 0.2 µs per incomplete
    gamma function otherwise at every pair and every step of the fit)."""
    from scipy.special import gammaincc, gammaln

    m = np.asarray(m, dtype=np.float64)
    if m.ndim and m.size > _NORM_NODES:
        lo, hi = float(m.min()), float(m.max())
        if hi > lo:
            nodes = np.linspace(lo, hi, _NORM_NODES)
            return np.interp(m, nodes, _log_norm_power(nodes, t, a))
    s = a + 2.0
    return s * math.log(t) + m / t + np.log(gammaincc(s, m / t)) + gammaln(s)


def _log_norm_powers(m: ArrayLike, t: float, powers: Sequence[float]) -> list[NDArray]:
    """:func:`_log_norm_power` at several powers a (the same numbers, one call of the
    incomplete gamma function for all: the fit's gradient and Hessian need K at up to 11
    powers per step)."""
    from scipy.special import gammaincc, gammaln

    m = np.asarray(m, dtype=np.float64)
    s = np.asarray(powers, dtype=np.float64) + 2.0
    shape = (-1,) + (1,) * m.ndim
    if m.ndim and m.size > _NORM_NODES:
        cells = _node_cells(m)
        if cells is not None:
            at = np.stack(_log_norm_powers(cells[0], t, powers))
            return list(_interp_rows(at, m, cells))
    sc = s.reshape(shape)
    out = sc * math.log(t) + m / t + np.log(gammaincc(sc, m / t)) + gammaln(sc)
    return list(out)


_CELLS: dict[int, tuple[NDArray[np.float64], tuple[NDArray, ...]]] = {}
_CELLS_KEPT = 64
_CELLS_LOCK = threading.Lock()


def _node_cells(m: NDArray[np.float64]) -> tuple[NDArray, ...] | None:
    """The :data:`_NORM_NODES` nodes over the range of the masses ``m`` and each mass's cell
    on them, ``(nodes, j, m − nodes[j], m == the last node)`` (``None``: a range of one
    mass), kept for the last :data:`_CELLS_KEPT` arrays (by identity, and used where the
    array still holds the same masses): a fit's groups hold their pairs' masses fixed while
    T and a move, and :func:`_log_norm_powers` interpolates at them at every step."""
    got = _CELLS.get(id(m))
    if got is not None and np.array_equal(got[0], m):
        return got[1]
    lo, hi = float(m.min()), float(m.max())
    if not hi > lo:
        return None
    nodes = np.linspace(lo, hi, _NORM_NODES)
    j = np.clip(np.searchsorted(nodes, m, side="right") - 1, 0, _NORM_NODES - 2)
    cells = (nodes, j, m - nodes[j], m == nodes[-1])
    with _CELLS_LOCK:  # fits run groups in threads
        while len(_CELLS) >= _CELLS_KEPT:  # the oldest first: a bounded cache
            del _CELLS[next(iter(_CELLS))]
        _CELLS[id(m)] = (m.copy(), cells)
    return cells


def _interp_rows(rows: NDArray, m: NDArray, cells: tuple[NDArray, ...]) -> NDArray:
    """``np.interp(m, nodes, v)`` for each row ``v`` of ``rows`` at the cells of
    :func:`_node_cells`: numpy's own formula, slope·(m − x_j) + v_j with the slope
    (v_{j+1} − v_j)/(x_{j+1} − x_j), and v at the last node (the same numbers, the cells
    found once rather than by a search per row; ``np.interp`` itself where a value or a
    slope is not finite, whose special cases it has)."""
    nodes, j, dx, last = cells
    slopes = (rows[:, 1:] - rows[:, :-1]) / (nodes[1:] - nodes[:-1])
    if not (np.isfinite(rows).all() and np.isfinite(slopes).all()):
        return np.stack([np.interp(m, nodes, v) for v in rows])
    out = slopes[:, j] * dx + rows[:, j]
    if last.any():
        out[:, last] = rows[:, -1:]
    return out


def _log_pt_power(m: NDArray, pt: NDArray, t: float, a: float = 0.0) -> NDArray:
    """ln of p_T m_T^a e^{−(m_T − m)/T} / N (normalised over p_T ≥ 0, N of
    :func:`_log_norm_power`): the m_T-exponential at a = 0 (:func:`_log_pt`, its closed form
    used there), the Boltzmann form at a = 1 (:func:`_log_pt_boltzmann`, likewise); the family
    the mock draws its mesons from (:func:`gammastar.physics.sampling.sample_mt_power`)."""
    if a == 0.0:
        return _log_pt(m, pt, t)
    if a == 1.0:
        return _log_pt_boltzmann(m, pt, t)
    mt = np.sqrt(pt**2 + m**2)
    with np.errstate(divide="ignore"):
        return np.log(pt) + a * np.log(mt) - (mt - m) / t - _log_norm_power(m, t, a)


def _dlog_pt_power(m, pt, t, a=0.0):
    """∂ ln p(p_T) / ∂T of :func:`_log_pt_power`: (m_T − m)/T² − (⟨m_T⟩ − m)/T², ⟨m_T⟩ =
    N(a + 1)/N(a)."""
    if a == 0.0:
        return _dlog_pt(m, pt, t)
    if a == 1.0:
        return _dlog_pt_boltzmann(m, pt, t)
    mt = np.sqrt(pt**2 + m**2)
    mean_mt = np.exp(_log_norm_power(m, t, a + 1.0) - _log_norm_power(m, t, a))
    return (mt - mean_mt) / t**2


POWER_STEP = 1e-5
"""Step of the central difference of ln N in a (:func:`_dlog_pt_power_da`)."""


def _dlog_pt_power_da(m, pt, t, a=0.0):
    """∂ ln p(p_T) / ∂a of :func:`_log_pt_power`: ln m_T − ∂ ln N/∂a (the latter by a
    central difference, step :data:`POWER_STEP`)."""
    h = POWER_STEP
    mt = np.sqrt(pt**2 + m**2)
    dn = (_log_norm_power(m, t, a + h) - _log_norm_power(m, t, a - h)) / (2 * h)
    return np.log(mt) - dn


def pt_terms(m: ArrayLike, t: float, a: float, with_power: bool = False,
              with_hessian: bool = False):  # fmt: skip
    """The parts of ln p(p_T) of :func:`_log_pt_power` and of its derivatives that do not
    depend on p_T, at the mass(es) ``m``: ``(K, c_T, ∂K/∂a)`` with
    ln p = ln p_T + a ln m_T − (m_T − m)/T − K and ∂ ln p/∂T = (m_T − m)/T² + c_T (the
    closed forms at a = 0 and 1, as :func:`_log_pt_power` uses them; ∂K/∂a by
    :func:`_dlog_pt_power_da`'s central difference, 0 without ``with_power``): what the
    compiled sums (:mod:`gammastar.yields._extrapolation_kernel`) take per evaluation.

    Example:
        >>> k, c_t, _ = pt_terms(0.5, 0.2, 0.0)
        >>> lp = math.log(0.3) - (math.hypot(0.3, 0.5) - 0.5) / 0.2 - k
        >>> bool(abs(lp - _log_pt_power(0.5, 0.3, 0.2)) < 1e-14)
        True
    """
    m = np.asarray(m, dtype=np.float64)
    h, d = POWER_STEP, HESSIAN_STEP
    # the powers whose normalisation K(a') this needs, computed together
    want = [a, a + 1.0]
    if with_power or with_hessian:
        want += [a + h, a - h]
    if with_hessian:
        want += [a + 2.0, a + d, a - d, a + 2 * d, a - 2 * d, a + 1.0 + d, a + 1.0 - d]
    n = dict(zip(want, _log_norm_powers(m, t, want), strict=True))
    if a == 0.0:
        k = math.log(t) + np.log(m + t)
        c_t = -1.0 / t - 1.0 / (m + t)
    elif a == 1.0:
        q = m * m + 2 * m * t + 2 * t * t
        k = np.log(t * q)
        c_t = -1.0 / t - (2 * m + 4 * t) / q
    else:
        k = n[a]
        c_t = (m - np.exp(n[a + 1.0] - k)) / t**2
    dn = 0.0
    if with_power or with_hessian:
        dn = (n[a + h] - n[a - h]) / (2 * h)
    if not with_hessian:
        return k, c_t, dn
    return (k, c_t, dn, *_pt_second(m, t, a, n))


HESSIAN_STEP = 0.01
"""Step in a of the differences behind ∂²K/∂a² and ∂²K/∂T∂a (:func:`_pt_second`)."""


def _pt_second(
    m: NDArray, t: float, a: float, n: Mapping[float, NDArray] | None = None
) -> tuple[NDArray, NDArray, NDArray]:
    """The point-independent parts of ln p(p_T)'s second derivatives (:func:`_log_pt_power`):
    ``(h_TT, h_Ta, h_aa)`` with ∂²_TT ln p = −2(m_T − m)/T³ + h_TT, ∂²_Ta ln p = h_Ta,
    ∂²_aa ln p = h_aa, i.e. −∂²K of the normalisation K = ln ∫_m^∞ x^{a+1} e^{−(x − m)/T} dx
    (x = m_T). In T analytic: ∂²K/∂T² = Var(x)/T⁴ − 2(⟨x⟩ − m)/T³, the moments
    ⟨x^k⟩ = e^{K(a+k) − K(a)} of the density ∝ x^{a+1} e^{−(x−m)/T} (closed forms at a = 0 and
    1, as :func:`_log_pt_power`). In a, K is the cumulant generating function of ln x (K(a + τ)
    − K(a) = ln⟨x^τ⟩), with no closed form: ∂²K/∂a² = Var(ln x) by the five-point difference
    of K, step δ = :data:`HESSIAN_STEP` (truncation δ⁴ K⁽⁶⁾/90 ≲ 10⁻¹⁰, rounding
    ≈ 16 eps |K|/(12 δ²) ≲ 10⁻¹⁰), ∂²K/∂T∂a = ∂⟨x⟩/∂a / T² by the central difference of
    ⟨x⟩, step δ.

    Example:
        >>> h_tt, h_ta, h_aa = _pt_second(np.array([0.5]), 0.2, 0.0)
        >>> bool(abs(h_tt[0] - (1 / 0.2**2 + 1 / 0.7**2)) < 1e-12)  # K = ln T + ln(m + T)
        True
    """
    m = np.asarray(m, dtype=np.float64)
    d = HESSIAN_STEP
    want = [a, a + 1.0, a + 2.0, a + d, a - d, a + 2 * d, a - 2 * d, a + 1.0 + d, a + 1.0 - d]
    if n is None:  # K at these powers (``n``: given by the caller, :func:`pt_terms`)
        n = dict(zip(want, _log_norm_powers(m, t, want), strict=True))
    n0 = n[a]
    if a == 0.0:
        h_tt = 1.0 / t**2 + 1.0 / (m + t) ** 2
    elif a == 1.0:
        q = m * m + 2 * m * t + 2 * t * t
        h_tt = 1.0 / t**2 - (4 * q - (2 * m + 4 * t) ** 2) / q**2
    else:
        mean = np.exp(n[a + 1.0] - n0)
        var = np.exp(n[a + 2.0] - n0) - mean**2
        h_tt = -var / t**4 + 2 * (mean - m) / t**3
    n_p1, n_m1, n_p2, n_m2 = (n[a + k * d] for k in (1, -1, 2, -2))
    k_aa = (-n_p2 + 16 * n_p1 - 30 * n0 + 16 * n_m1 - n_m2) / (12 * d * d)
    mean_p = np.exp(n[a + 1.0 + d] - n_p1)
    mean_m = np.exp(n[a + 1.0 - d] - n_m1)
    k_ta = (mean_p - mean_m) / (2 * d) / t**2
    shape = np.shape(k_aa)
    return (np.broadcast_to(h_tt, shape) + 0.0, -k_ta, -k_aa)


TSALLIS_BOUNDS = (0.0, 0.3)
"""Bounds of the Tsallis form's q = 1/n (:func:`_log_pt_tsallis`): q = 0 the m_T-exponential,
0.3 a power law p_T^{−1/q−1} as steep as n ≈ 3.3 (light-meson spectra in p–A collisions at
SPS energies: n ≈ 7–20, q ≈ 0.05–0.15; the normalisation needs q < 1/2)."""
TSALLIS_START = 0.05
"""The start of q in a fit of the Tsallis form (n = 20)."""
_SMALL_QX = 1e-4
"""Below this q·x the Tsallis terms in q take their series (x = (m_T − m)/T): the closed
forms' cancellation (1/q² ln(1 + qx) − x/(q(1 + qx))) would lose digits."""


def _log_norm_tsallis(m: ArrayLike, t: float, q: float) -> NDArray:
    """ln ∫_0^∞ p_T (1 + q(m_T − m)/T)^{−1/q} dp_T = ln[T/(1 − q) (m + T/(1 − 2q))] (with
    u = m_T − m: ∫(u + m)(1 + qu/T)^{−1/q} du, the Beta integrals nT/(n − 1) and
    (nT)²/((n − 1)(n − 2)) at n = 1/q; the m_T-exponential's T(m + T) at q = 0)."""
    m = np.asarray(m, dtype=np.float64)
    return math.log(t / (1.0 - q)) + np.log(m + t / (1.0 - 2.0 * q))


def _log_pt_tsallis(m: ArrayLike, pt: NDArray, t: float, q: float = 0.0) -> NDArray:
    """ln of p_T (1 + q(m_T − m)/T)^{−1/q} / N: the Tsallis (q-exponential) p_T spectrum
    1/p_T dN/dp_T ∝ (1 + (m_T − m)/(nT))^{−n}, n = 1/q, normalised over p_T ≥ 0
    (:func:`_log_norm_tsallis`); the m_T-exponential at q = 0, a power law at large p_T.

    References:
        C. Tsallis, J. Stat. Phys. 52 (1988) 479; the form of identified-hadron p_T spectra in
        p–p and p–A collisions: PHENIX, Phys. Rev. C 83 (2011) 064903, eq. (4); ALICE,
        Eur. Phys. J. C 71 (2011) 1655.

    Example:
        >>> x = np.linspace(0.0, 40.0, 400001)[1:]
        >>> dens = np.exp(_log_pt_tsallis(0.5, x, 0.2, 0.1))
        >>> bool(abs(np.sum(dens) * (x[1] - x[0]) - 1.0) < 1e-3)
        True
    """
    mt = np.sqrt(np.asarray(pt, dtype=np.float64) ** 2 + np.asarray(m, dtype=np.float64) ** 2)
    x = (mt - m) / t
    tail = -x if q == 0.0 else -np.log1p(q * x) / q
    with np.errstate(divide="ignore"):
        return np.log(pt) + tail - _log_norm_tsallis(m, t, q)


def _dlog_pt_tsallis(m, pt, t, q=0.0):
    """∂ ln p(p_T) / ∂T of :func:`_log_pt_tsallis`: x/(T(1 + qx)) − 1/T − 1/(m(1 − 2q) + T)."""
    mt = np.sqrt(pt**2 + m**2)
    x = (mt - m) / t
    return x / (t * (1.0 + q * x)) - 1.0 / t - 1.0 / (m * (1.0 - 2.0 * q) + t)


def _dlog_pt_tsallis_dq(m, pt, t, q=0.0):
    """∂ ln p(p_T) / ∂q of :func:`_log_pt_tsallis`: ln(1 + qx)/q² − x/(q(1 + qx)) (its series
    x²/2 − 2qx³/3 + 3q²x⁴/4 where qx < :data:`_SMALL_QX`) − ∂ ln N/∂q, ∂ ln N/∂q = 1/(1 − q)
    + 2T/((1 − 2q)(m(1 − 2q) + T))."""
    mt = np.sqrt(pt**2 + m**2)
    x = (mt - m) / t
    qx = q * x
    small = np.abs(qx) < _SMALL_QX
    safe_q = q if q != 0.0 else 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.asarray(np.log1p(qx) / safe_q**2 - x / (safe_q * (1.0 + qx)))
    # the series only where it is taken (its powers would be most of the cost elsewhere)
    xs = x[small]
    out[small] = xs * xs / 2.0 - 2.0 * q * xs**3 / 3.0 + 0.75 * q * q * xs**4
    dn = 1.0 / (1.0 - q) + 2.0 * t / ((1.0 - 2.0 * q) * (m * (1.0 - 2.0 * q) + t))
    return out - dn


_LOGISTIC = math.sqrt(12.0) / math.pi
"""w/σ of sech²((y − ȳ)/w)/(2w), whose variance is π²w²/12: σ_y stays the rms."""


def _log_y_logistic(y: NDArray, mu: float, s: float) -> NDArray:
    """ln of sech²((y − ȳ)/w)/(2w), w = σ_y √12/π (rms σ_y; the logistic distribution of
    scale w/2: heavier tails than the Gaussian)."""
    x = np.abs((y - mu) / (_LOGISTIC * s))
    return -2.0 * (x + np.log1p(np.exp(-2.0 * x)) - math.log(2.0)) - math.log(2.0 * _LOGISTIC * s)


def _dlog_y_logistic(y, mu, s):
    w = _LOGISTIC * s
    d = y - mu
    th = np.tanh(d / w)
    return np.stack([2.0 / w * th, _LOGISTIC * (2.0 * d / w**2 * th - 1.0 / w)])


class Falloff(NamedTuple):
    """The fall-off (1 − E/E_beam)^n of the model towards x_F → 1: n, its 1σ and its source."""

    value: float
    error: float
    source: str


FALLOFF = Falloff(
    3.0,
    0.7,
    "NA49 p+p -> pi+ X at 158 GeV/c (Alt et al., EPJC 45 (2006) 343, Table 6) and the BMPT "
    "p+Be -> pi+- parametrisation (Bonesini et al., EPJC 20 (2001) 13): the model fitted where "
    "the NA60-like arm looks falls as they do towards x_F -> 1, and predicts their share above "
    "E_beam/2, at n = 1.8-3.8 (median 3.0) at 400 and 70 GeV (docs/explanation/physics.md 3.2)",
)
"""The measured fall-off (``yields.extrapolation_falloff: measured``): n of the factor
(1 − E/E_beam)^n on the model's density, and its 1σ. Per forward pion spectrum (NA49's π⁺;
BMPT's π±) and beam energy (400, 70 GeV), the model fitted inside the NA60-like arm at the
spectrum's own rapidity width matches the measurement at two n: where it falls as the
measured (1 − x_F)^ν (ν = 4.4–5.1) over x_F 0.3–0.85, and where it predicts the measured
share of the facilities' E > E_beam/2 regions; the value is the median of these twelve, the
1σ half their 16–84% spread (``validation/scripts/real_data_closure.py``,
docs/validation/real-data-closure.md). References: NA49, C. Alt et al., Eur. Phys. J. C 45
(2006) 343; M. Bonesini et al., Eur. Phys. J. C 20 (2001) 13."""

XF_POWER = 4.0
"""n of the ``xf_suppressed`` form's factor (1 − x)^n, x = E/E_beam: the quark-counting rule
for a meson from the proton's valence quarks, dN/dx ∝ (1 − x)^{2 n_s − 1} with n_s = 2
spectators as x → 1 (J. F. Gunion, Phys. Rev. D 10 (1974) 242; R. Blankenbecler, S. J.
Brodsky, Phys. Rev. D 10 (1974) 2973), plus one for the γ*: a Dalitz γ* carries a share z of
its parent's energy, spread over (0, 1), and ∫ dz/z (1 − x/z)³ ∝ (1 − x)⁴ as x → 1. The lab
energy fraction stands for x_F, the two meeting at x_F → 1, where the forward facilities'
short lifetimes look."""


def falloff_power(n: float, m: ArrayLike, dalitz_mass: float | None) -> NDArray | float:
    """The γ*'s fall-off n at mass ``m`` from the mesons' ``n``: n + 1 below ``dalitz_mass``
    (the two-body Dalitz γ*: :attr:`ModelForm.dalitz_mass`), n elsewhere and without one.

    Example:
        >>> float(falloff_power(3.0, 0.2, 0.548)), float(falloff_power(3.0, 0.2, None))
        (4.0, 3.0)
    """
    if dalitz_mass is None:
        return n
    return n + (np.asarray(m, dtype=np.float64) < dalitz_mass)


def _log_xf(m: ArrayLike, pt: ArrayLike, y: ArrayLike, beam_energy: float,
            n: float | NDArray) -> NDArray:  # fmt: skip
    """n ln(1 − E/E_beam) at E = m_T cosh y; −∞ at and above the beam energy.

    Example:
        >>> abs(float(_log_xf(0.0, 100.0, 0.0, 400.0, 3.0)) - 3.0 * math.log(0.75)) < 1e-15
        True
    """
    mt = np.sqrt(np.asarray(pt, dtype=np.float64) ** 2 + np.asarray(m, dtype=np.float64) ** 2)
    with np.errstate(divide="ignore"):
        return np.log(falloff_weight(mt * np.cosh(np.asarray(y, dtype=np.float64)), beam_energy, n))


class Factor(Protocol):
    """A parameter-free factor on a form's density (:attr:`ModelForm.factor`)."""

    def __call__(self, m: Any, pt: Any, y: Any) -> NDArray[np.float64]:
        """ln h at (m, p_T, y), broadcast."""

    def as_record(self) -> dict[str, Any]:
        """Its ``yields.json`` record."""


@dataclass(frozen=True)
class ModelForm:
    """One form of the model's densities: ln p(p_T | m, T, a) of the m_T-power family
    (:func:`_log_pt_power`, at the power a + :attr:`power_offset`), ln p(y | ȳ, σ_y) and their
    derivatives, with the parameter of the nominal form its change maps onto
    (:func:`fit_extrapolation` ``model_variations``). ``a`` is the fit's m_T power (0 unless
    ``pt_power`` says otherwise)."""

    name: str
    description: str
    log_y: Callable[..., NDArray]
    dlog_y: Callable[..., NDArray]
    maps_to: str
    """``T`` (a p_T form: each fit group's T) or ``y_sigma`` (a rapidity form)."""
    power_offset: float = 0.0
    """The form's m_T power relative to the fit's: 1 for the Boltzmann form m_T e^{−m_T/T}."""
    y_kernel: str | None = None
    """The rapidity density's name in the compiled likelihood sums (``gaussian`` or
    ``logistic``, :mod:`gammastar.yields._extrapolation_kernel`); ``None``: a form they do not hold,
    fitted with the numpy functions ``log_y``, ``dlog_y``."""
    log_pt_family: str = "mt_power"
    """The p_T family: ``mt_power`` (m_T^a e^{−m_T/T}, :func:`_log_pt_power`; the fit's power
    a) or ``tsallis`` (:func:`_log_pt_tsallis`: its second parameter, in the place of a, is
    q = 1/n, always fitted per group; the compiled sums do not hold it: ``y_kernel`` None)."""
    power_bounds: tuple[float, float] = POWER_BOUNDS
    """Bounds of the second p_T parameter where it is fitted."""
    power_start: float = 0.0
    """Its start in a fit of this form (a form of another family than the nominal's)."""
    x_power: float = 0.0
    """n of a factor (1 − E/E_beam)^n on the density, E = m_T cosh y (0: none): the fall of
    the meson spectra towards x_F → 1 (:data:`XF_POWER`), which needs :attr:`beam_energy`.
    The factor holds no parameter of the fit, so its derivatives are the nominal's; with it
    :meth:`log_p` is not normalised (the truncated likelihood, the self-normalised
    reweightings and the accept–reject draws need none; :func:`fiducial_fraction`
    normalises on its grid)."""
    beam_energy: float | None = None
    """E_beam of :attr:`x_power`'s factor (GeV; :meth:`at_beam`)."""
    dalitz_mass: float | None = None
    """Below this mass (GeV) :attr:`x_power`'s n is the parent mesons' and the γ*'s factor
    falls with n + 1 (:meth:`power_at`): a γ* from a two-body Dalitz decay P → γγ* carries a
    share z of its parent's energy spread evenly up to 1, and ∫ dz/z (1 − x/z)^n ∝
    (1 − x)^{n+1} as x → 1 (:data:`XF_POWER`). ``None``: n at every mass."""
    factor: Factor | None = None
    """A parameter-free factor h(m, p_T, y) on the density, as ``factor(m, pt, y)`` → ln h
    (a generator's rapidity shape: :class:`~gammastar.yields.extrapolation.template.RapidityTemplate`);
    treated as :attr:`x_power`'s."""

    @property
    def has_factor(self) -> bool:
        """Whether the density carries a factor without parameters (:meth:`log_factor`)."""
        return bool(self.x_power) or self.factor is not None

    def at_beam(self, energy: float | None) -> ModelForm:
        """This form at the beam energy ``energy`` (itself where it has no factor)."""
        return dataclasses.replace(self, beam_energy=energy) if self.x_power else self

    def with_falloff(self, n: float, energy: float | None,
                     dalitz_mass: float | None = None) -> ModelForm:  # fmt: skip
        """This form × (1 − E/E_beam)^``n`` at the beam energy ``energy`` (:attr:`x_power`;
        itself at n = 0), n + 1 below ``dalitz_mass`` (:attr:`dalitz_mass`): the fitted
        model's fall-off towards x_F → 1 (:data:`FALLOFF`)."""
        if not n:
            return dataclasses.replace(self, x_power=0.0, beam_energy=None, dalitz_mass=None)
        if energy is None:
            raise ValueError(f"model form {self.name!r}: a fall-off needs the beam energy")
        return dataclasses.replace(self, x_power=float(n), beam_energy=float(energy),
                                   dalitz_mass=None if dalitz_mass is None else float(dalitz_mass))  # fmt: skip

    def power_at(self, m: ArrayLike) -> NDArray | float:
        """The fall-off's n at mass ``m`` (:func:`falloff_power` of :attr:`x_power` and
        :attr:`dalitz_mass`).

        Example:
            >>> form = NOMINAL.with_falloff(3.0, 400.0, dalitz_mass=0.548)
            >>> [float(v) for v in form.power_at(np.array([0.2, 0.8]))]
            [4.0, 3.0]
        """
        return falloff_power(self.x_power, m, self.dalitz_mass)

    def log_factor(self, m, pt, y) -> NDArray | float:
        """ln of the factors (1 − E/E_beam)^n (:attr:`x_power`) and :attr:`factor` (0
        without)."""
        out: NDArray | float = 0.0
        if self.factor is not None:
            out = self.factor(m, pt, y)
        if not self.x_power:
            return out
        if self.beam_energy is None:
            raise ValueError(f"model form {self.name!r} needs the beam energy (ModelForm.at_beam)")
        return out + _log_xf(m, pt, y, self.beam_energy, self.power_at(m))

    def log_p(self, m, pt, y, t, mu, s, a: float = 0.0) -> NDArray:
        """ln p(p_T, y) = ln p(p_T) + ln p(y) + :meth:`log_factor` (not normalised with a
        factor)."""
        return self.log_pt(m, pt, t, a) + self.log_y(y, mu, s) + self.log_factor(m, pt, y)

    def log_p_base(self, m, pt, y, t, mu, s, a: float = 0.0) -> NDArray:
        """:meth:`log_p` without :meth:`log_factor` (which has no parameter: a fit adds it
        once per point)."""
        return self.log_pt(m, pt, t, a) + self.log_y(y, mu, s)

    def log_pt(self, m, pt, t, a: float = 0.0) -> NDArray:
        if self.log_pt_family == "tsallis":
            return _log_pt_tsallis(m, pt, t, a)
        return _log_pt_power(m, pt, t, a + self.power_offset)

    def dlog_pt(self, m, pt, t, a: float = 0.0) -> NDArray:
        if self.log_pt_family == "tsallis":
            return _dlog_pt_tsallis(m, pt, t, a)
        return _dlog_pt_power(m, pt, t, a + self.power_offset)

    def dlog_pt_da(self, m, pt, t, a: float = 0.0) -> NDArray:
        if self.log_pt_family == "tsallis":
            return _dlog_pt_tsallis_dq(m, pt, t, a)
        return _dlog_pt_power_da(m, pt, t, a + self.power_offset)

    def dlogp(self, m, pt, y, t, mu, s, a: float = 0.0) -> NDArray:
        """∂ ln p / ∂(T, ȳ, σ_y) per point, shape (3, n)."""
        return np.concatenate([np.atleast_2d(self.dlog_pt(m, pt, t, a) + 0.0 * y),
                               self.dlog_y(y, mu, s)])  # fmt: skip


NOMINAL = ModelForm("nominal", MODEL_NAME, log_y_gauss, _dlog_y, maps_to="", y_kernel="gaussian")
FORMS: dict[str, ModelForm] = {
    "nominal": NOMINAL,
    "mt_boltzmann": ModelForm(
        "mt_boltzmann",
        "1/p_T dN/dp_T ∝ m_T exp(−m_T/T) (the Boltzmann form at fixed y) instead of exp(−m_T/T)",
        log_y_gauss,
        _dlog_y,
        maps_to="T",
        power_offset=1.0,
        y_kernel="gaussian",
    ),
    "tsallis": ModelForm(
        "tsallis",
        "1/p_T dN/dp_T ∝ (1 + (m_T − m)/(nT))^(−n) (Tsallis: a power-law tail, n fitted per "
        "mass range) instead of exp(−m_T/T)",
        log_y_gauss,
        _dlog_y,
        maps_to="T",
        log_pt_family="tsallis",
        power_bounds=TSALLIS_BOUNDS,
        power_start=TSALLIS_START,
    ),
    "logistic_y": ModelForm(
        "logistic_y",
        "dN/dy ∝ sech²((y − ȳ)/w), w = σ_y √12/π (logistic; heavier tails) instead of a Gaussian",
        _log_y_logistic,
        _dlog_y_logistic,
        maps_to="y_sigma",
        y_kernel="logistic",
    ),
    "xf_suppressed": ModelForm(
        "xf_suppressed",
        "the nominal form × (1 − E/E_beam)^4 (the fall of the γ* spectrum as x_F → 1: quark "
        "counting for its parent meson, one more power for its share of the parent's energy) "
        "instead of a Gaussian rapidity cut only at the beam energy",
        log_y_gauss,
        _dlog_y,
        maps_to="y_sigma",
        x_power=XF_POWER,
    ),
    "falloff_harder": ModelForm(
        "falloff_harder",
        "the nominal form at the fall-off (1 − E/E_beam)^n of its 1σ lower n (FALLOFF: measured "
        "forward meson spectra)",
        log_y_gauss,
        _dlog_y,
        maps_to="y_sigma",
        y_kernel="gaussian",
    ),
    "falloff_softer": ModelForm(
        "falloff_softer",
        "the nominal form at the fall-off (1 − E/E_beam)^n of its 1σ higher n (FALLOFF: measured "
        "forward meson spectra)",
        log_y_gauss,
        _dlog_y,
        maps_to="y_sigma",
        y_kernel="gaussian",
    ),
    "generator_template": ModelForm(
        "generator_template",
        "the nominal form × h(m, y), a generator's γ* rapidity density over the Gaussian of its "
        "own mean and width (yields.extrapolation_template), refitted inside F",
        log_y_gauss,
        _dlog_y,
        maps_to="y_sigma",
    ),
}
"""The model forms (a registry: a new form is one entry); ``nominal`` is the model fitted."""
TWO_SIDED = (("falloff_harder", "falloff_softer"),)
"""Forms that are one parameter's −1σ and +1σ (the fall-off's n ∓ its error): one variation,
not two, in the covariance and in the N_sig error."""
MODEL_VARIATIONS = ("mt_boltzmann", "tsallis", "logistic_y", "xf_suppressed", "generator_template")
"""The alternative forms whose f_F enter the extrapolation's error (:func:`fit_extrapolation`;
``xf_suppressed`` where the beam energy is given and the fit has no fall-off of its own,
:attr:`FitSettings.beam_energy`; ``generator_template`` where a generator's rapidity shape
is, :attr:`FitSettings.template`); with a fall-off (:attr:`FitSettings.falloff`) each at
the fit's, and ``falloff_harder``, ``falloff_softer`` besides."""


_PT_GRID = np.meshgrid(_PT, _Y, indexing="ij")[0]
_COSH_Y = np.cosh(_Y)


def grid_in_f(fiducial: Any, m: float) -> NDArray[np.bool_]:
    """F on the (p_T, y) quadrature grid at mass ``m`` (shape (n_pt, n_y)): the grid's (q_T, E),
    E = m_T cosh y from m_T per p_T and cosh y per y (the numbers of the element-wise
    products on the whole grid)."""
    mt = np.sqrt(_PT**2 + m**2)
    return inside_at_mass(fiducial, m, _PT_GRID, mt[:, None] * _COSH_Y[None, :])


def grids_in_f(fiducials: list[Any], m: float) -> list[NDArray[np.bool_]]:
    """:func:`grid_in_f` of each of ``fiducials`` (the same booleans), the grid's candidates
    found once for all (:func:`~gammastar.yields._fiducial_bound.inside_at_mass_each`)."""
    mt = np.sqrt(_PT**2 + m**2)
    return inside_at_mass_each(fiducials, m, _PT_GRID, mt[:, None] * _COSH_Y[None, :])


_FACTOR_SUMS: dict[tuple[Any, ...], tuple[NDArray[np.float64], NDArray[np.float64]]] = {}
_FACTOR_SUMS_KEPT = 4096
_FACTOR_LOCK = threading.Lock()


_FACTOR_GRIDS: dict[tuple[Any, ...], NDArray[np.float64]] = {}
_FACTOR_GRIDS_KEPT = 96
"""Grids kept (0.46 MB each): every bin of a fit of up to 32 bins at the fitted fall-off and
at its two variations. The forms and errors pass over a fit's bins once per form, at the
fitted factor for most; kept for fewer bins, each pass would compute every grid again."""


def _factor_grid(form: ModelForm, m: float) -> NDArray[np.float64]:
    """h = e^{:meth:`ModelForm.log_factor`} on the quadrature grid at mass ``m``, kept for the
    last :data:`_FACTOR_GRIDS_KEPT` (mass, factor)."""
    key = (m, float(form.power_at(m)), form.beam_energy, form.factor)
    got = _FACTOR_GRIDS.get(key)
    if got is None:
        got = np.exp(form.log_factor(m, _PT_GRID, _Y[None, :]))
        with _FACTOR_LOCK:
            while len(_FACTOR_GRIDS) >= _FACTOR_GRIDS_KEPT:
                del _FACTOR_GRIDS[next(iter(_FACTOR_GRIDS))]
            _FACTOR_GRIDS[key] = got
    return got


def _factor_sums(form: ModelForm, m: float, pt_par: tuple[float, float],
                 inside: NDArray[np.bool_]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:  # fmt: skip
    """(Σ_i p(p_Ti) h_ij, Σ_i p(p_Ti) h_ij F_ij) per rapidity cell j of a form with a factor
    h (:meth:`ModelForm.log_factor`) on the quadrature grid at mass ``m`` and p_T parameters
    ``pt_par`` = (T, a): P_F = (v · p(y))/(u · p(y)). Kept for the last
    :data:`_FACTOR_SUMS_KEPT` arguments: a fit maps a form onto σ_y and varies only the
    rapidity at each bin's (T, a), where this is the whole grid's cost."""
    t, a = pt_par
    key = (float(m), t, a, form.log_pt_family, form.power_offset, float(form.power_at(m)),
           form.beam_energy, form.factor, hash(inside.tobytes()))  # fmt: skip
    got = _FACTOR_SUMS.get(key)
    if got is None:
        dens_pt = np.exp(form.log_pt(m, _PT, t, a))
        w = dens_pt[:, None] * _factor_grid(form, float(m))
        got = (w.sum(axis=0), (w * inside).sum(axis=0))
        with _FACTOR_LOCK:  # fits run groups in threads
            while len(_FACTOR_SUMS) >= _FACTOR_SUMS_KEPT:  # the oldest first: a bounded cache
                del _FACTOR_SUMS[next(iter(_FACTOR_SUMS))]
            _FACTOR_SUMS[key] = got
    return got


def fiducial_fraction(
    fiducial: Any,
    m: float,
    params: tuple[float, ...],
    inside: NDArray | None = None,
    form: ModelForm = NOMINAL,
) -> float:
    """P_F: the fraction of the model's γ* at mass ``m`` inside the fiducial region (NaN at
    T ≤ 0 or σ_y ≤ 0, where the model has no density).

    Arguments:
        fiducial: a :class:`~gammastar.corrections.pair_acceptance.FiducialRegion`.
        m: mass (GeV).
        params: (T, ȳ, σ_y) or (T, ȳ, σ_y, a), a the m_T power (0 when not given).
        inside: F on the quadrature grid (:func:`grid_in_f`; computed when not given).
        form: the model's form (:data:`FORMS`).
    """
    t, mu, s = params[:3]
    a = float(params[3]) if len(params) > 3 else 0.0
    if not (t > 0 and s > 0):  # no density there (an error's step beyond the bounds): undefined
        return math.nan
    if inside is None:
        inside = grid_in_f(fiducial, m)
    # the density factorises in p_T and y: Σᵢⱼ p(p_Tᵢ) p(yⱼ) Fᵢⱼ as p_T-density · (F · y-density)
    # (one matrix-vector product instead of the whole grid's densities)
    dens_y = np.exp(form.log_y(_Y, mu, s))
    if form.has_factor:  # not factorised: normalised on the grid
        u, v = _factor_sums(form, m, (t, a), inside)
        return float((v @ dens_y) / (u @ dens_y))
    dens_pt = np.exp(form.log_pt(m, _PT, t, a))
    dpt, dy = _PT[1] - _PT[0], _Y[1] - _Y[0]
    return float(dens_pt @ (inside @ dens_y) * dpt * dy)
