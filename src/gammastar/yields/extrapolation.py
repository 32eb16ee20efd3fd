r"""Beyond the fiducial region: a stated kinematic model fitted to the fiducial data.

The data determine d σ/dm dq only where the spectrometer sees the γ* (the fiducial region F
of :mod:`gammastar.corrections.pair_acceptance`). The part outside F is estimated with a model of the γ*
kinematics, fitted per mass range to the acceptance-corrected pairs inside F:

.. math:: \frac{1}{p_T}\frac{dN}{dp_T\,dy} \propto e^{-m_T/T}\;
          \exp\!\Big[-\frac{(y - \bar y)^2}{2\sigma_y^2}\Big],

the m_T-scaling thermal spectrum with a Gaussian lab rapidity used for hadron production in
fixed-target collisions (NA60, Eur. Phys. J. C 59 (2009) 607; docs/explanation/physics.md §3.2) — or, with
``pt_power``, its family m_T^a e^{−m_T/T} with the power a fixed or fitted per mass range
(:func:`_log_pt_power`; a = 1 the Boltzmann form) —, with ȳ fixed
at the beam–nucleon c.m. rapidity when the caller gives it (``yields`` does: the fiducial data
see ±0.5 units around the peak, where ȳ and σ_y cannot be told apart). The fit
maximises the weighted likelihood of the model truncated to F,
Σ_i w_i [ln p(x_i) − ln P_F], with P_F = ∫_F p by importance sampling on a fixed broad reference
sample (smooth in the parameters). It gives the fiducial fraction f_F(m) = P_F, so that the full-phase-space
yield is Y_F / f_F, and the model samples outside F for the extrapolated part of a reach
(:class:`ExtrapolatedSampler`, every such sample labelled).

The 1σ error of f_F is that of the weighted fit, from the sandwich (robust) covariance
H⁻¹ J H⁻¹ of the weighted likelihood (:func:`sandwich_covariance`; Langenbruch, Eur. Phys. J. C
82 (2022) 393), propagated linearly to f_F. The alternative error, the profile likelihood in
σ_y with the weighted NLL scaled to the Kish effective size, is available for comparison
(``error_method="kish_profile"``): it assumes every pair carries the average information, which
is wrong where the large weights 1/A sit where the pairs constrain σ_y most or least (it comes
out low on the toys of ``tests/test_extrapolation.py``). The fit's error reaches the reach's
signal through :func:`nsig_relative_error`: the model's acceptance outside F moves with f_F, so
N_sig moves far less than the yield Y_F/f_F (docs/validation/uncertainties-and-coverage.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, NamedTuple, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.core.threads import single_thread_blas
from gammastar.errors import InputError
from gammastar.physics.decay import decay_probability
from gammastar.physics.kinematics import cm_rapidity, rapidity_pz
from gammastar.physics.sampling import ParametricSampler
from gammastar.yields._extrapolation_kernel import group_sums, hess_sums
from gammastar.yields._fiducial_bound import inside_at_mass

__all__ = [
    "MODEL_NAME",
    "ExtrapolatedSampler",
    "Extrapolation",
    "FitSettings",
    "NsigErrorSettings",
    "RecordingSampler",
    "fiducial_fraction",
    "fit_extrapolation",
    "nsig_error_parts",
    "nsig_lambda_theta",
    "nsig_relative_error",
    "per_sample_acceptance",
    "refit",
    "refit_fractions",
    "refit_moves",
    "sandwich_covariance",
]

MODEL_NAME = "mT-exponential x Gaussian rapidity"
_PT = np.linspace(0.0, 6.0, 241)[1:] - 0.0125  # midpoints, 25 MeV
_Y = np.linspace(-3.0, 9.0, 241)[1:] - 0.025  # midpoints, 0.05
_BOUNDS = ((0.03, 1.5), (-1.0, 8.0), (0.1, 5.0))
MIN_EFF_PAIRS = 400.0
"""Adjacent mass bins are fitted together until their Kish effective size reaches this."""


def _log_pt(m: NDArray, pt: NDArray, t: float) -> NDArray:
    """ln of p_T e^{−(m_T − m)/T} / (T (m + T)) (normalised over p_T ≥ 0)."""
    mt = np.sqrt(pt**2 + m**2)
    with np.errstate(divide="ignore"):
        return np.log(pt) - (mt - m) / t - math.log(t) - np.log(m + t)


def _log_y(y: NDArray, mu: float, s: float) -> NDArray:
    return -0.5 * ((y - mu) / s) ** 2 - math.log(s) - 0.5 * math.log(2 * math.pi)


def _dlog_pt(m, pt, t):
    """∂ ln p(p_T) / ∂T of :func:`_log_pt`."""
    return (np.sqrt(pt**2 + m**2) - m) / t**2 - 1.0 / t - 1.0 / (m + t)


def _dlog_y(y, mu, s):
    """∂ ln p(y) / ∂(ȳ, σ_y) of :func:`_log_y`, shape (2, n)."""
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
        lo, hi = float(m.min()), float(m.max())
        if hi > lo:
            nodes = np.linspace(lo, hi, _NORM_NODES)
            at = _log_norm_powers(nodes, t, powers)
            return [np.interp(m, nodes, v) for v in at]
    sc = s.reshape(shape)
    out = sc * math.log(t) + m / t + np.log(gammaincc(sc, m / t)) + gammaln(sc)
    return list(out)


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


def _pt_terms(m: ArrayLike, t: float, a: float, with_power: bool = False,
              with_hessian: bool = False):  # fmt: skip
    """The parts of ln p(p_T) of :func:`_log_pt_power` and of its derivatives that do not
    depend on p_T, at the mass(es) ``m``: ``(K, c_T, ∂K/∂a)`` with
    ln p = ln p_T + a ln m_T − (m_T − m)/T − K and ∂ ln p/∂T = (m_T − m)/T² + c_T (the
    closed forms at a = 0 and 1, as :func:`_log_pt_power` uses them; ∂K/∂a by
    :func:`_dlog_pt_power_da`'s central difference, 0 without ``with_power``): what the
    compiled sums (:mod:`gammastar.yields._extrapolation_kernel`) take per evaluation.

    Example:
        >>> k, c_t, _ = _pt_terms(0.5, 0.2, 0.0)
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
    if n is None:  # K at these powers (``n``: given by the caller, :func:`_pt_terms`)
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

    def log_pt(self, m, pt, t, a: float = 0.0) -> NDArray:
        return _log_pt_power(m, pt, t, a + self.power_offset)

    def dlog_pt(self, m, pt, t, a: float = 0.0) -> NDArray:
        return _dlog_pt_power(m, pt, t, a + self.power_offset)

    def dlog_pt_da(self, m, pt, t, a: float = 0.0) -> NDArray:
        return _dlog_pt_power_da(m, pt, t, a + self.power_offset)

    def dlogp(self, m, pt, y, t, mu, s, a: float = 0.0) -> NDArray:
        """∂ ln p / ∂(T, ȳ, σ_y) per point, shape (3, n)."""
        return np.concatenate([np.atleast_2d(self.dlog_pt(m, pt, t, a) + 0.0 * y),
                               self.dlog_y(y, mu, s)])  # fmt: skip


NOMINAL = ModelForm("nominal", MODEL_NAME, _log_y, _dlog_y, maps_to="", y_kernel="gaussian")
FORMS: dict[str, ModelForm] = {
    "nominal": NOMINAL,
    "mt_boltzmann": ModelForm(
        "mt_boltzmann",
        "1/p_T dN/dp_T ∝ m_T exp(−m_T/T) (the Boltzmann form at fixed y) instead of exp(−m_T/T)",
        _log_y,
        _dlog_y,
        maps_to="T",
        power_offset=1.0,
        y_kernel="gaussian",
    ),
    "logistic_y": ModelForm(
        "logistic_y",
        "dN/dy ∝ sech²((y − ȳ)/w), w = σ_y √12/π (logistic; heavier tails) instead of a Gaussian",
        _log_y_logistic,
        _dlog_y_logistic,
        maps_to="y_sigma",
        y_kernel="logistic",
    ),
}
"""The model forms (a registry: a new form is one entry); ``nominal`` is the model fitted."""
MODEL_VARIATIONS = ("mt_boltzmann", "logistic_y")
"""The alternative forms whose f_F enter the extrapolation's error (:func:`fit_extrapolation`)."""


def _grid_in_f(fiducial: Any, m: float) -> NDArray[np.bool_]:
    """F on the (p_T, y) quadrature grid at mass ``m`` (shape (n_pt, n_y))."""
    pt, y = np.meshgrid(_PT, _Y, indexing="ij")
    mt = np.sqrt(pt**2 + m**2)
    return inside_at_mass(fiducial, m, pt, mt * np.cosh(y))


def fiducial_fraction(
    fiducial: Any,
    m: float,
    params: tuple[float, ...],
    inside: NDArray | None = None,
    form: ModelForm = NOMINAL,
) -> float:
    """P_F: the fraction of the model's γ* at mass ``m`` inside the fiducial region.

    Arguments:
        fiducial: a :class:`~gammastar.corrections.pair_acceptance.FiducialRegion`.
        m: mass (GeV).
        params: (T, ȳ, σ_y) or (T, ȳ, σ_y, a), a the m_T power (0 when not given).
        inside: F on the quadrature grid (:func:`_grid_in_f`; computed when not given).
        form: the model's form (:data:`FORMS`).
    """
    t, mu, s = params[:3]
    a = float(params[3]) if len(params) > 3 else 0.0
    if inside is None:
        inside = _grid_in_f(fiducial, m)
    dens = np.exp(form.log_pt(m, _PT, t, a))[:, None] * np.exp(form.log_y(_Y, mu, s))[None, :]
    dpt, dy = _PT[1] - _PT[0], _Y[1] - _Y[0]
    return float(np.sum(dens * inside) * dpt * dy)


@dataclass(frozen=True)
class Extrapolation:
    """Per mass bin: the fitted model and the fiducial fraction (``yields.json``
    ``extrapolation``)."""

    mass: NDArray[np.float64]
    edges: NDArray[np.float64]
    fiducial_fraction: NDArray[np.float64]
    temperature: NDArray[np.float64]
    y_mean: NDArray[np.float64]
    y_sigma: NDArray[np.float64]
    n_eff: NDArray[np.float64]
    """Kish effective pairs of the fit group that fixed each bin's parameters."""
    fiducial: dict[str, Any]
    fiducial_fraction_err: NDArray[np.float64] | None = None
    """1σ of f_F (statistical, of the fit), by :attr:`error_method`."""
    y_sigma_err: float | None = None
    y_mean_fixed: bool = False
    """ȳ fixed (to the beam's c.m. rapidity, :func:`gammastar.physics.kinematics.cm_rapidity`)
    rather than fitted."""
    error_method: str = "kish_profile"
    """How :attr:`fiducial_fraction_err` was made: ``sandwich`` (the robust covariance of the
    weighted fit) or ``kish_profile`` (the profile in σ_y, Kish-scaled; files written before
    the sandwich have no field and were made so)."""
    fiducial_fraction_err_alt: NDArray[np.float64] | None = None
    """The other method's 1σ of f_F, for comparison (``None``: not computed)."""
    y_sigma_err_alt: float | None = None
    covariance: NDArray[np.float64] | None = None
    """Sandwich covariance of the free fit parameters ([ȳ], σ_y, T_0, T_1, ...; ȳ only when
    fitted), ``None`` when not computed (:func:`nsig_relative_error` propagates it)."""
    bin_group: NDArray[np.int64] | None = None
    """Per mass bin, the fit group whose T_g it took (index into the T's of
    :attr:`covariance`)."""
    covariance_stat: NDArray[np.float64] | None = None
    """The sandwich covariance alone (the fit's statistical part of :attr:`covariance`, with an
    external σ_y's error when σ_y is not fitted; ``None``: no model-form variations were
    added, :attr:`covariance` is that part)."""
    fiducial_fraction_err_stat: NDArray[np.float64] | None = None
    """1σ of f_F from :attr:`covariance_stat` (``None``: as :attr:`fiducial_fraction_err`)."""
    model_variations: dict[str, Any] | None = None
    """Per alternative form (:data:`MODEL_VARIATIONS`): its fit's f_F per bin and the shift of
    the nominal parameters that reproduces it (added to :attr:`covariance` as δδᵀ)."""
    y_sigma_external: dict[str, Any] | None = None
    """``{value, error, source, parameter_shift, parameter_sides}`` when σ_y was fixed to an
    external value rather than fitted (:func:`fit_extrapolation` ``y_sigma``): its error is in
    :attr:`covariance` and :attr:`covariance_stat` as δδᵀ, δ = ``parameter_shift`` (the free
    parameters' shift at σ_y ± error, the T_g's response included, half the difference of the
    two fits); ``parameter_sides`` each fit's own shift from the nominal ([+error, −error]; absent
    from older records), at which :func:`nsig_error_parts` evaluates N_sig's response itself."""
    pt_power: NDArray[np.float64] | None = None
    """Per mass bin, the m_T power a of the model's p_T form m_T^a e^{−m_T/T} (``None``: 0, files
    written before the power)."""
    pt_power_fitted: bool = False
    """The powers were fitted (one per fit group, after the T_g in :attr:`covariance`) rather
    than fixed (``yields.extrapolation_pt_power``)."""
    yield_covariance: NDArray[np.float64] | None = None
    """(n_bins, k): per mass bin b, the covariance of the free parameters (the order of
    :attr:`covariance`) with ln S_b, S_b the bin's weighted pair sum inside F (the fiducial
    yield's statistics): the fit and the yield use the same pairs, so their errors are
    correlated (:func:`_sandwich`); ``None``: not computed (older files,
    or without the sandwich). :func:`nsig_error_parts` carries it to N_sig."""

    def parameter_index(self, name: str, group: int = 0) -> int:
        """The index of a free parameter in :attr:`covariance`: ``y_mean`` (when fitted),
        ``y_sigma``, or fit group ``group``'s ``T`` or ``a`` (the fitted powers follow the T_g)."""
        n_head = 1 if self.y_mean_fixed else 2
        if name == "y_mean" and not self.y_mean_fixed:
            return 0
        if name == "y_sigma":
            return n_head - 1
        n_t = self.covariance.shape[0] - n_head
        if name == "T":
            return n_head + group
        if name == "a" and self.pt_power_fitted:
            return n_head + n_t // 2 + group
        raise KeyError(f"no free parameter {name!r} in this extrapolation's covariance")

    def bin_weights(self, m: float) -> list[tuple[int, float]]:
        """The mass bins whose values :meth:`at` interpolates at ``m``, with their weights:
        ``[(bin, 1 − t), (bin + 1, t)]`` between two bin centres, ``[(bin, 1.0)]`` at or
        beyond an end (np.interp's rule)."""
        xp = np.asarray(self.mass, dtype=np.float64)
        if m <= xp[0] or xp.size == 1:
            return [(0, 1.0)]
        if m >= xp[-1]:
            return [(xp.size - 1, 1.0)]
        j = int(np.searchsorted(xp, m, side="right"))
        t = float((m - xp[j - 1]) / (xp[j] - xp[j - 1]))
        return [(j - 1, 1.0 - t), (j, t)]

    def group_weights(self, m: float) -> dict[int, float]:
        """The fit groups whose parameters set the model at mass ``m``, with their weights:
        :meth:`at` and :meth:`power_at` interpolate T and a linearly between the two bin
        centres around ``m`` (constant beyond the ends), so a parameter of the model at ``m``
        is Σ_g w_g θ_g over these groups (the weights sum to 1; one group with weight 1 where
        both bins share it). What carries a group's covariance to a quantity at ``m``
        (:func:`nsig_error_parts`); giving the nearest bin's group the whole gradient instead
        would overstate the error between two independently fitted groups by up to √2.

        Example:
            >>> ex = Extrapolation(np.array([0.25, 0.35]), np.array([0.2, 0.3, 0.4]),
            ...     np.full(2, 0.2), np.full(2, 0.2), np.zeros(2), np.ones(2), np.ones(2), {},
            ...     bin_group=np.array([0, 1]))
            >>> {g: round(w, 3) for g, w in ex.group_weights(0.32).items()}
            {0: 0.3, 1: 0.7}
        """
        if self.bin_group is None:
            raise ValueError("this extrapolation has no fit groups (no covariance)")
        out: dict[int, float] = {}
        for b, w in self.bin_weights(m):
            g = int(self.bin_group[b])
            out[g] = out.get(g, 0.0) + w
        return {g: w for g, w in out.items() if w > 0}

    def power_at(self, m: ArrayLike) -> NDArray[np.float64]:
        """The m_T power a at masses ``m`` (as :meth:`at`; 0 without :attr:`pt_power`)."""
        m = np.asarray(m, dtype=np.float64)
        if self.pt_power is None:
            return np.zeros(m.shape)
        return np.interp(m, self.mass, self.pt_power)

    def full_fraction(self, m: ArrayLike, seam: float | None = None) -> NDArray[np.float64]:
        """f_F at masses ``m`` (:meth:`at`), and 1 below ``seam`` (a both-channels run's
        ``extrapolation.seam``: there the yields are full phase space already)."""
        m = np.asarray(m, dtype=np.float64)
        f = self.at(m)[0]
        return f if seam is None else np.where(m < float(seam), 1.0, f)

    def at(self, m: ArrayLike) -> tuple[NDArray, NDArray, NDArray, NDArray]:
        """(f_F, T, ȳ, σ_y) at masses ``m`` (linear between bin centres, constant beyond)."""
        m = np.asarray(m, dtype=np.float64)
        return tuple(
            np.interp(m, self.mass, a)
            for a in (self.fiducial_fraction, self.temperature, self.y_mean, self.y_sigma)
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": MODEL_NAME,
            "mass": self.mass.tolist(),
            "bin_edges": self.edges.tolist(),
            "fiducial_fraction": self.fiducial_fraction.tolist(),
            "temperature": self.temperature.tolist(),
            "y_mean": self.y_mean.tolist(),
            "y_sigma": self.y_sigma.tolist(),
            "n_eff": self.n_eff.tolist(),
            "fiducial_fraction_err": (
                None if self.fiducial_fraction_err is None else self.fiducial_fraction_err.tolist()
            ),
            "y_sigma_err": self.y_sigma_err,
            **(
                {}
                if self.fiducial_fraction_err_stat is None
                else {"fiducial_fraction_err_stat": _none_nan(self.fiducial_fraction_err_stat)}
            ),
            **(
                {} if self.model_variations is None else {"model_variations": self.model_variations}
            ),
            "error_method": self.error_method,
            "error_method_reference": ERROR_REFERENCES[self.error_method],
            **self._alt_dict(),
            **self._cov_dict(),
            "y_mean_source": "beam c.m. rapidity (fixed)" if self.y_mean_fixed else "fitted",
            "y_sigma_source": (
                "fitted"
                if self.y_sigma_external is None
                else f"external (fixed): {self.y_sigma_external['source']}"
            ),
            **(
                {}
                if self.y_sigma_external is None
                else {"y_sigma_external": dict(self.y_sigma_external)}
            ),
            "pt_power": (
                [0.0] * len(self.mass) if self.pt_power is None else self.pt_power.tolist()
            ),
            "pt_power_source": (
                "fitted: one m_T power per fit group" if self.pt_power_fitted else "fixed"
            ),
            "fiducial": self.fiducial,
            "reference": "docs/explanation/method.md#the-fiducial-region-and-the-extrapolation",
        }

    def _cov_dict(self) -> dict[str, Any]:
        if self.covariance is None or self.bin_group is None:
            return {}
        n_t = self.covariance.shape[0] - (1 if self.y_mean_fixed else 2)
        names = ([] if self.y_mean_fixed else ["y_mean"]) + ["y_sigma"]
        if self.pt_power_fitted:  # T_0 ... T_{G-1}, a_0 ... a_{G-1}
            n_t //= 2
            names_t = [f"T_{g}" for g in range(n_t)] + [f"a_{g}" for g in range(n_t)]
        else:
            names_t = [f"T_{g}" for g in range(n_t)]
        out = {
            "parameters": names + names_t,
            "matrix": self.covariance.tolist(),
            "bin_group": self.bin_group.tolist(),
            "method": "sandwich",
        }
        if self.covariance_stat is not None:
            out["matrix_stat"] = self.covariance_stat.tolist()
            out["method"] = "sandwich + model-form variations (sum of their shifts' outer products)"
        if self.yield_covariance is not None:
            out["yield_covariance"] = self.yield_covariance.tolist()
            out["yield_covariance_meaning"] = (
                "per mass bin b: Cov(parameters, ln S_b), S_b the bin's weighted pair sum "
                "inside the fiducial region (the fit and the fiducial yield share the pairs)"
            )
        return {"parameter_covariance": out}

    def _alt_dict(self) -> dict[str, Any]:
        if self.fiducial_fraction_err_alt is None:
            return {}
        alt = _OTHER[self.error_method]
        return {
            f"fiducial_fraction_err_{alt}": self.fiducial_fraction_err_alt.tolist(),
            f"y_sigma_err_{alt}": self.y_sigma_err_alt,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Extrapolation:
        arr = {k: np.asarray(d[k], dtype=np.float64) for k in (
            "mass", "bin_edges", "fiducial_fraction", "temperature", "y_mean", "y_sigma",
            "n_eff")}  # fmt: skip
        err = d.get("fiducial_fraction_err")
        method = d.get("error_method", "kish_profile")
        alt = d.get(f"fiducial_fraction_err_{_OTHER.get(method, '')}")
        cov = d.get("parameter_covariance")
        return cls(arr["mass"], arr["bin_edges"], arr["fiducial_fraction"], arr["temperature"],
                   arr["y_mean"], arr["y_sigma"], arr["n_eff"], d["fiducial"],
                   None if err is None else np.asarray(err, dtype=np.float64),
                   d.get("y_sigma_err"),
                   d.get("y_mean_source", "fitted") != "fitted", method,
                   None if alt is None else np.asarray(alt, dtype=np.float64),
                   d.get(f"y_sigma_err_{_OTHER.get(method, '')}"),
                   None if cov is None else np.asarray(cov["matrix"], dtype=np.float64),
                   None if cov is None else np.asarray(cov["bin_group"], dtype=np.int64),
                   None if cov is None or "matrix_stat" not in cov
                   else np.asarray(cov["matrix_stat"], dtype=np.float64),
                   None if d.get("fiducial_fraction_err_stat") is None
                   else np.array([np.nan if v is None else v
                                  for v in d["fiducial_fraction_err_stat"]], dtype=np.float64),
                   d.get("model_variations"), d.get("y_sigma_external"),
                   None if d.get("pt_power") is None
                   else np.asarray(d["pt_power"], dtype=np.float64),
                   str(d.get("pt_power_source", "fixed")).startswith("fitted"),
                   None if cov is None or "yield_covariance" not in cov
                   else np.asarray(cov["yield_covariance"], dtype=np.float64))  # fmt: skip


ERROR_METHODS = ("sandwich", "kish_profile")
"""The f_F error's methods (:func:`fit_extrapolation` ``error_method``)."""
_OTHER = {"sandwich": "kish_profile", "kish_profile": "sandwich"}
ERROR_REFERENCES = {
    "sandwich": "sandwich covariance H^-1 J H^-1 of the weighted likelihood fit, propagated "
    "linearly to f_F (C. Langenbruch, Eur. Phys. J. C 82 (2022) 393)",
    "kish_profile": "profile likelihood in sigma_y, the weighted NLL scaled to the Kish "
    "effective size (sum w)^2 / sum w^2",
}


def _none_nan(a: ArrayLike) -> list:
    """A JSON list: NaN as ``None``."""
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(a, dtype=np.float64)]


REFERENCE = (0.3, 3.4, 2.0)
"""(T, ȳ, σ_y) of the broad reference sample behind P_F in the fit."""
REFERENCE_SAMPLES = 400_000


def reference_draws(seed: int) -> dict[str, NDArray]:
    """The random numbers of the reference sample of ``seed`` (:class:`_Reference`), which do
    not depend on its mass (:meth:`~gammastar.physics.sampling.ParametricSampler.draws`)."""
    return ParametricSampler(*REFERENCE).draws(REFERENCE_SAMPLES, seed)


class _Reference:
    """P_F(θ) = ⟨1_F p_θ / p_ref⟩ over a fixed sample of the broad reference model at one mass:
    smooth in θ and evaluated with the same F as the data (importance sampling; the grid
    quadrature's O(step) error in ∂P_F/∂θ biased the weakly constrained σ_y)."""

    def __init__(self, fiducial: Any, m: float, seed: int,
                 draws: Mapping[str, NDArray] | None = None) -> None:  # fmt: skip
        """The sample of :data:`REFERENCE_SAMPLES` at mass ``m`` drawn with ``seed``, or made
        from ``draws`` (:func:`reference_draws` of that seed: the same sample, the random
        numbers drawn once for several masses), and its part inside ``fiducial``."""
        sampler = ParametricSampler(*REFERENCE)
        if draws is None:
            draws = reference_draws(seed)
        out = sampler.sample_at(draws, m)
        qt, e = out["qT"], out["E"]
        keep = inside_at_mass(fiducial, m, qt, e)
        qt, e = qt[keep], e[keep]
        pz = np.sqrt(np.clip(e**2 - m**2 - qt**2, 0.0, None))
        t0, mu0, s0 = REFERENCE
        self.m, self.n = m, keep.size
        self.pt = qt
        self.y = rapidity_pz(pz, e)
        # the sample's (q_T, E) hold |y| (p_z ≥ 0): a backward draw (y < 0) comes back at −y,
        # so the density of the kept |y| is the folded Gaussian g(y) + g(−y), with
        # g(−y)/g(y) = e^{−2 y ȳ / σ_y²}; the model's own density stays the forward one (a
        # backward A′ is never in F)
        fold = np.log1p(np.exp(-2.0 * self.y * mu0 / s0**2))
        self.log_ref = _log_pt(m, self.pt, t0) + _log_y(self.y, mu0, s0) + fold
        # what the compiled sums take (_extrapolation_kernel): fixed with the sample
        with np.errstate(divide="ignore"):
            self._lpt = np.log(self.pt)
        self._mt = np.sqrt(self.pt**2 + m**2)
        self._lmt = np.log(self._mt)
        self._m = np.array([m], dtype=np.float64)
        self._y = np.ascontiguousarray(self.y, dtype=np.float64)
        self._log_ref = np.ascontiguousarray(self.log_ref, dtype=np.float64)

    def fraction(
        self, t: float, mu: float, s: float, form: ModelForm = NOMINAL, a: float = 0.0
    ) -> float:
        lp = form.log_pt(self.m, self.pt, t, a) + form.log_y(self.y, mu, s)
        return float(np.sum(np.exp(lp - self.log_ref)) / self.n)

    def log_fraction_and_grad(
        self, t: float, mu: float, s: float, form: ModelForm = NOMINAL, a: float = 0.0,
        with_power: bool = False,
    ):  # fmt: skip
        """ln P_F and its gradient in (T, ȳ, σ_y) — and the m_T power a with ``with_power`` —
        (the sample is the nominal form's: any form's P_F is its importance-weighted mean).
        One compiled pass over the sample (:mod:`gammastar.yields._extrapolation_kernel`) where the
        form's rapidity density has one (:attr:`ModelForm.y_kernel`), else
        :meth:`_log_fraction_and_grad_numpy`."""
        if form.y_kernel is None:
            return self._log_fraction_and_grad_numpy(t, mu, s, form, a, with_power)

        a_eff = a + form.power_offset
        k, c_t, dn = _pt_terms(self.m, t, a_eff, with_power)
        out = group_sums(self._lpt, self._lmt, self._mt, self._y, self._m, self._log_ref, True,
                         self._m, k, c_t, dn, t, a_eff, mu, s,
                         form.y_kernel == "logistic")  # fmt: skip
        tot = float(out[0])
        if tot <= 0:
            return -700.0, np.zeros(4 if with_power else 3)
        g = out[2 : 6 if with_power else 5] / tot
        return math.log(tot / self.n), g

    def _log_fraction_and_grad_numpy(
        self, t: float, mu: float, s: float, form: ModelForm = NOMINAL, a: float = 0.0,
        with_power: bool = False,
    ):  # fmt: skip
        """:meth:`log_fraction_and_grad` by the numpy functions of the form (the reference
        formulas)."""
        lp = form.log_pt(self.m, self.pt, t, a) + form.log_y(self.y, mu, s)
        e = np.exp(lp - self.log_ref)
        tot = float(np.sum(e))
        if tot <= 0:
            return -700.0, np.zeros(4 if with_power else 3)
        g = form.dlogp(self.m, self.pt, self.y, t, mu, s, a) @ e / tot
        if with_power:
            g = np.append(g, form.dlog_pt_da(self.m, self.pt, t, a) @ e / tot)
        return math.log(tot / self.n), g


def _dlogp(m, pt, y, t, mu, s, a=0.0):
    """∂ ln p / ∂(T, ȳ, σ_y) per point of the nominal form, shape (3, n)."""
    return NOMINAL.dlogp(m, pt, y, t, mu, s, a)


def _split(par, n_groups: int, power: float | None) -> tuple[NDArray, NDArray]:
    """The T_g and the m_T powers a_g of the tail ``par`` (T_g..., [a_g...]): the a_g from
    ``par`` when fitted (``power=None``), else ``power`` for every group."""
    par = np.asarray(par, dtype=np.float64)
    if power is None:
        return par[:n_groups], par[n_groups : 2 * n_groups]
    return par[:n_groups], np.full(n_groups, float(power))


class _Group(tuple):
    """One fit group ``(m, p_T, y, w, reference)`` (a tuple, as the fit's ``data`` holds it)
    with what the compiled likelihood sums need precomputed: ln p_T, m_T, ln m_T of its pairs
    (fixed while the parameters move) and Σw. ``_Group(group)`` of a group is the group."""

    def __new__(cls, item: Any) -> Self:
        if isinstance(item, _Group):
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


def _groups(data) -> list[_Group]:
    """``data`` (per fit group (m, p_T, y, w, :class:`_Reference`)) as :class:`_Group` objects."""
    return [_Group(d) for d in data]


def _group_terms(grp: _Group, t: float, mu: float, s: float, a: float, form: ModelForm,
                 fit_a: bool) -> tuple[float, NDArray]:  # fmt: skip
    """One fit group's weighted truncated log-likelihood Σ_i w_i [ln p(x_i) − ln P_F] and its
    gradient in (T, ȳ, σ_y[, a]) (not per unit weight): the pairs' sums in one compiled pass
    (:mod:`gammastar.yields._extrapolation_kernel`) where the form has one, else the numpy functions
    of the form."""
    m, pt, y, w, ref = grp
    wsum = grp.wsum
    lpf, gpf = ref.log_fraction_and_grad(t, mu, s, form, a, with_power=fit_a)
    if form.y_kernel is None:
        lp = form.log_pt(m, pt, t, a) + form.log_y(y, mu, s)
        gd = form.dlogp(m, pt, y, t, mu, s, a) @ w
        if fit_a:
            gd = np.append(gd, float(form.dlog_pt_da(m, pt, t, a) @ w))
        return float(np.sum(w * lp)) - wsum * lpf, gd - wsum * gpf

    a_eff = a + form.power_offset
    k, c_t, dn = _pt_terms(grp.m_, t, a_eff, fit_a)
    out = group_sums(grp.lpt, grp.lmt, grp.mt, grp.y_, grp.w_, grp.w_, False, grp.m_, k, c_t,
                     dn, t, a_eff, mu, s, form.y_kernel == "logistic")  # fmt: skip
    return float(out[1]) - wsum * lpf, out[2 : 6 if fit_a else 5] - wsum * gpf


def _nll_and_grad(par, data, sigma, mu_fixed=None, form=NOMINAL, power=0.0):
    """Weighted truncated NLL per unit weight and its gradient; ``par`` = ([ȳ], [σ_y], T_g...,
    [a_g...]) with σ_y fixed to ``sigma`` and ȳ to ``mu_fixed`` when given, the m_T powers
    a_g fitted when ``power`` is ``None`` (else all equal to it). Each group's sums by
    :func:`_group_terms`."""
    data = _groups(data)
    i = 0
    mu = par[i] if mu_fixed is None else mu_fixed
    i += mu_fixed is None
    s = par[i] if sigma is None else sigma
    i += sigma is None
    ts, powers = _split(par[i:], len(data), power)
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
    grad = (([g_mu] if mu_fixed is None else []) + ([g_s] if sigma is None else []) + list(g_t)
            + (list(g_a) if fit_a else []))  # fmt: skip
    return -tot / wtot, -np.asarray(grad) / wtot


def _fit_joint(data, start, sigma=None, mu_fixed=None, form=NOMINAL, power=0.0, x_start=None):
    """Joint weighted fit: one (ȳ, σ_y) for all groups, one T per group (σ_y fixed to
    ``sigma`` when given: the profile; ȳ fixed to ``mu_fixed`` when given), and with
    ``power=None`` one m_T power a per group (else every a = ``power``).

    ``data``: per group (m, pT, y, w, :class:`_Reference`). ``start``: (T, ȳ, σ_y[, a]) for
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
        xs, tot, wtot = [], 0.0, 0.0
        for k in range(g):
            got = _newton_group(data[k], t0[k], a0[k], mu_fixed, sigma, form)
            if got is None:
                got = _lbfgs(data[k : k + 1], [t0[k], a0[k]], [_BOUNDS[0], POWER_BOUNDS],
                             sigma, mu_fixed, form, None)  # fmt: skip
            wk = data[k].wsum
            xs.append(got[0])
            tot, wtot = tot + wk * got[1], wtot + wk
        ts_, as_ = np.array([v[0] for v in xs]), np.array([v[1] for v in xs])
        return np.concatenate([[mu_fixed, sigma], ts_, as_]), tot / wtot
    x0 = (([mu0] if free_mu else []) + ([s0] if free_s else []) + list(t0)
          + (list(a0) if fit_a else []))  # fmt: skip
    bounds = (([_BOUNDS[1]] if free_mu else []) + ([_BOUNDS[2]] if free_s else [])
              + [_BOUNDS[0]] * g + ([POWER_BOUNDS] * g if fit_a else []))  # fmt: skip
    x_fit, nll = _lbfgs(data, x0, bounds, sigma, mu_fixed, form, power)
    x = list(x_fit)
    head = [x.pop(0) if free_mu else mu_fixed, x.pop(0) if free_s else sigma]
    return np.asarray(head + x, dtype=np.float64), nll


def _lbfgs(data, x0, bounds, sigma, mu_fixed, form, power) -> tuple[NDArray, float]:
    """:func:`_nll_and_grad` minimised by L-BFGS-B from ``x0`` within ``bounds``: ``(x, nll)``."""
    from scipy.optimize import minimize


    with single_thread_blas():  # L-BFGS-B's tiny LAPACK calls: threads only cost
        res = minimize(_nll_and_grad, x0, args=(data, sigma, mu_fixed, form, power), jac=True,
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
    lo = np.array([_BOUNDS[0][0], POWER_BOUNDS[0]])
    hi = np.array([_BOUNDS[0][1], POWER_BOUNDS[1]])
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


def _free(x: NDArray, mu_fixed: float | None) -> NDArray:
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
        data: per fit group (m, p_T, y, w, :class:`_Reference`), as :func:`_fit_joint` takes.
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
    return _sandwich(data, x, mu_fixed, sigma_fixed, power)[0]


def _sandwich(data, x, mu_fixed=None, sigma_fixed=False, power=0.0, bins=None, n_bins=0):
    """:func:`sandwich_covariance`, and with ``bins`` (per group, each pair's mass bin) also
    the covariance of the parameters with the logarithm of each bin's weighted sum S_b =
    Σ_{i∈b} w_i (the fiducial yield's bin): to first order θ̂ − θ = H⁻¹ Σ_i w_i ∇l_i, and for
    Poisson-distributed pairs Cov(Σ w_i a_i, Σ w_i b_i) = Σ w_i² a_i b_i, so
    Cov(θ̂, ln S_b) = H⁻¹ Σ_{i∈b} w_i² ∇l_i / S_b (the same H and scores as the sandwich;
    zeros where σ_y is external, its row). Returns ``(cov, cross)``, ``cross`` of shape
    (n_bins, k) or ``None`` without ``bins``."""
    data = _groups(data)
    x = np.asarray(x, dtype=np.float64)
    p = _free(x, mu_fixed)
    k = p.size
    free_mu = mu_fixed is None
    mu = x[0]
    s = x[1]
    n_head = 2 if free_mu else 1
    n_g = len(data)
    ts, powers = _split(x[2:], n_g, power)
    fit_a = power is None
    jmat = np.zeros((k, k))
    score_w2 = np.zeros((n_bins, k)) if bins is not None else None  # Σ_{i∈b} w_i² ∇l_i
    sums = np.zeros(n_bins)
    for g, (m, pt, y, w, ref) in enumerate(data):
        t, a = ts[g], powers[g]
        _, gpf = ref.log_fraction_and_grad(t, mu, s, NOMINAL, a, with_power=fit_a)
        d = _dlogp(m, pt, y, t, mu, s, a) - gpf[:3, None]  # (3, n): ∂l_i/∂(T, ȳ, σ_y)
        rows = ([1] if free_mu else []) + [2]
        sc = np.zeros((n_head + 1 + fit_a, d.shape[1]))
        sc[:n_head] = d[rows]
        sc[n_head] = d[0]
        idx = [*range(n_head), n_head + g]
        if fit_a:
            sc[n_head + 1] = NOMINAL.dlog_pt_da(m, pt, t, a) - gpf[3]
            idx.append(n_head + n_g + g)
        blk = (sc * w**2) @ sc.T
        jmat[np.ix_(idx, idx)] += blk
        if bins is not None:
            b = np.asarray(bins[g], dtype=np.intp)
            for j, row in zip(idx, sc * w**2, strict=True):
                score_w2[:, j] += np.bincount(b, weights=row, minlength=n_bins)
            sums += np.bincount(b, weights=w, minlength=n_bins)
    # the fitted parameters: all but σ_y when it is external
    fit = np.array([j for j in range(k) if not (sigma_fixed and j == n_head - 1)])
    q = p[fit]
    hmat = _hessian(data, q, s if sigma_fixed else None, mu_fixed, power)
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


def _group_hess(grp: _Group, t: float, mu: float, s: float, a: float,
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
    terms = _pt_terms(grp.m_, t, a_eff, with_hessian=True)
    _, s_lp, g, h2, _ = hess_sums(grp.lpt, grp.lmt, grp.mt, grp.y_, grp.w_, grp.w_, False,
                                  grp.m_, terms, t, a_eff, mu, s, logistic)  # fmt: skip
    terms = _pt_terms(ref.m, t, a_eff, with_hessian=True)
    e0, _, eg, eh2, eouter = hess_sums(ref._lpt, ref._lmt, ref._mt, ref._y, ref._m, ref._log_ref,
                                       True, ref._m, terms, t, a_eff, mu, s, logistic)  # fmt: skip
    if not e0 > 0:
        nan = np.full((4, 4), np.nan)
        return math.nan, nan[0], nan
    mean = eg / e0
    h_pf = (eh2 + eouter) / e0 - np.outer(mean, mean)
    w = grp.wsum
    return float(s_lp) - w * math.log(e0 / ref.n), g - w * mean, h2 - w * h_pf


def _hessian(data, q, sigma, mu_fixed, power) -> NDArray:
    """The Hessian of −ln L_w (not per unit weight) at the free parameters ``q`` (as
    :func:`_nll_and_grad` takes them), analytic: the sum of the groups' (:func:`_group_hess`),
    each in the rows of its T_g, a_g and the shared ȳ, σ_y (when free). A central difference
    of the gradient instead (its p_T normalisation's ∂/∂a itself a difference, rounding
    ≈ 10⁻⁹) scattered the weakly constrained (T_g, a_g) directions' variances by ~10–30%
    under a 10⁻⁶ move of a."""
    data = _groups(data)
    n_g = len(data)
    fit_a = power is None
    free_mu, free_s = mu_fixed is None, sigma is None
    n_sh = int(free_mu) + int(free_s)
    mu = q[0] if free_mu else mu_fixed
    s = q[int(free_mu)] if free_s else sigma
    ts, powers = _split(q[n_sh:], n_g, power)
    # local (T, ȳ, σ_y, a) → rows of q
    local = [0] + ([1] if free_mu else []) + ([2] if free_s else []) + ([3] if fit_a else [])
    hmat = np.zeros((q.size, q.size))
    for g, grp in enumerate(data):
        rows = ([n_sh + g] + ([0] if free_mu else []) + ([int(free_mu)] if free_s else [])
                + ([n_sh + n_g + g] if fit_a else []))  # fmt: skip
        hg = _group_hess(grp, ts[g], mu, s, powers[g])[2]
        hmat[np.ix_(rows, rows)] -= hg[np.ix_(local, local)]
    return 0.5 * (hmat + hmat.T)


def _fraction_errors(fiducial, centre, fitted, x, cov, mu_fixed, inside, power=0.0) -> NDArray:
    """1σ of f_F per bin: the gradient of :func:`fiducial_fraction` (central differences in
    ([ȳ], σ_y, T_g[, a_g])) through ``cov`` (linear propagation); ``inside``: F on each
    bin's quadrature grid (:func:`_fiducial_grids`); ``power``: as :func:`_fit_joint`."""
    free_mu = mu_fixed is None
    n_head = 2 if free_mu else 1
    n_g = len(fitted)
    ts, powers = _split(x[2:], n_g, power)
    out = np.full(len(centre), np.nan)
    for k, (g, _) in enumerate(fitted):
        base = np.array([ts[k], x[0], x[1], powers[k]])
        # parameter index in (T, ȳ, σ_y, a) ↔ index in the free vector
        pairs = ([(0, n_head + k), (2, n_head - 1)] + ([(1, 0)] if free_mu else [])
                 + ([(3, n_head + n_g + k)] if power is None else []))  # fmt: skip
        idx = [q for _, q in pairs]
        c = cov[np.ix_(idx, idx)]
        for i in g:
            mi = float(centre[i])
            grad = np.empty(len(pairs))
            for a, (j, _) in enumerate(pairs):
                h = 1e-4 * max(abs(base[j]), 0.1)
                up, dn = base.copy(), base.copy()
                up[j] += h
                dn[j] -= h
                grad[a] = (
                    fiducial_fraction(fiducial, mi, tuple(up), inside[i])
                    - fiducial_fraction(fiducial, mi, tuple(dn), inside[i])
                ) / (2 * h)
            out[i] = math.sqrt(max(float(grad @ c @ grad), 0.0))
    return out


def _fiducial_grids(fiducial, centre, fitted) -> dict[int, NDArray[np.bool_]]:
    """F on the quadrature grid of each fitted bin (:func:`_grid_in_f`), computed once per
    fit: every f_F of the fit, its errors and the model's forms reuse it (the acceptance of
    5.8·10⁴ grid points per bin is the expensive part of :func:`fiducial_fraction`)."""
    return {i: _grid_in_f(fiducial, float(centre[i])) for g, _ in fitted for i in g}


def _group_params(x, k: int, n_groups: int, power: float | None) -> tuple[float, ...]:
    """(T, ȳ, σ_y, a) of fit group ``k`` of a full vector (ȳ, σ_y, T_g..., [a_g...])."""
    ts, powers = _split(np.asarray(x)[2:], n_groups, power)
    return float(ts[k]), float(x[0]), float(x[1]), float(powers[k])


def _kish_profile(fit: _Fit, fiducial, centre, mu_fixed, external=None):
    """The ``kish_profile`` error: (f_F 1σ per bin, δσ_y). The profile likelihood in σ_y (the
    weakly constrained parameter) about the joint ``fit``, with the weighted NLL scaled to the
    Kish effective size, (Σw)²/Σw² / Σw per unit weight; f_F at the profile's σ_y ± δσ_y
    (with an external σ_y, ``external`` = (its error, the fits at σ_y ± error of
    :func:`_external_sides`): no profile, those fits). Fitted powers are profiled with the
    T_g."""
    data, fitted, _, x, nll0, _, power, inside = fit
    if external is not None:
        d_sigma, (x_hi, x_lo) = external
        return _profile_fractions(fiducial, centre, fitted, inside, x_lo, x_hi, power), d_sigma
    wsum = sum(float(np.sum(d[3])) for d in data)
    w2sum = sum(float(np.sum(d[3] ** 2)) for d in data)
    scale = wsum * wsum / w2sum
    sides = []
    for step in (-PROFILE_STEP, PROFILE_STEP):
        s_p = float(np.clip(x[1] + step, *_BOUNDS[2]))
        xp, nllp = _refit_at_sigma(data, x, s_p, mu_fixed, power)
        sides.append((xp, max(scale * (nllp - nll0), 1e-12)))
    # parabola through the profile: δσ = step / √(2 ΔNLL_eff), the mean of both sides
    d_sigma = float(np.mean([PROFILE_STEP / math.sqrt(2 * dn) for _, dn in sides]))
    x_lo, _ = _refit_at_sigma(data, x, max(x[1] - d_sigma, 0.1), mu_fixed, power)
    x_hi, _ = _refit_at_sigma(data, x, x[1] + d_sigma, mu_fixed, power)
    return _profile_fractions(fiducial, centre, fitted, inside, x_lo, x_hi, power), d_sigma


def _profile_fractions(fiducial, centre, fitted, inside, x_lo, x_hi, power=0.0) -> NDArray:
    """Half the difference of f_F per bin between the fits ``x_lo`` and ``x_hi``."""
    frac_err = np.full(len(centre), np.nan)
    n_g = len(fitted)
    for k, (g, _) in enumerate(fitted):
        for i in g:
            c = float(centre[i])
            f_lo = fiducial_fraction(fiducial, c, _group_params(x_lo, k, n_g, power), inside[i])
            f_hi = fiducial_fraction(fiducial, c, _group_params(x_hi, k, n_g, power), inside[i])
            frac_err[i] = 0.5 * abs(f_hi - f_lo)
    return frac_err


@dataclass(frozen=True)
class FitSettings:
    """How :func:`fit_extrapolation` fits the model and quotes its error."""

    start: tuple[float, float, float] = (0.2, 3.0, 1.0)
    """Initial (T, ȳ, σ_y)."""
    seed: int = 0
    """Seed of the reference samples behind P_F (recorded by the caller)."""
    y_mean: float | None = None
    """ȳ fixed to this value (the beam's c.m. rapidity,
    :func:`gammastar.physics.kinematics.cm_rapidity`); ``None``:
    fitted. The fiducial data see about ±0.5 units of rapidity around the peak, where ȳ and
    σ_y are strongly correlated: fitted together they drift along that valley
    (docs/explanation/method.md)."""
    error_method: Literal["sandwich", "kish_profile"] = "sandwich"
    """The quoted 1σ of f_F: ``sandwich`` (:func:`sandwich_covariance`, the default) or
    ``kish_profile`` (the profile in σ_y, Kish-scaled)."""
    compare: bool = True
    """Compute the other method's error too (``fiducial_fraction_err_alt``; the
    ``kish_profile`` one costs four more fits)."""
    model_variations: bool = True
    """With ``error_method="sandwich"``, add the model's form to the error
    (:func:`_model_variations`: each form of :data:`MODEL_VARIATIONS` fitted to the same
    pairs, its f_F reproduced by a shift δ of the nominal parameters, δδᵀ added to the
    covariance); the sandwich alone stays in ``covariance_stat``."""
    y_sigma: tuple[float, float] | None = None
    """``(value, error)``: σ_y fixed to an external value instead of fitted (the
    configuration's ``yields.extrapolation_y_sigma``), its error propagated as the shift of
    the parameters when σ_y moves by it (the T_g refitted at σ_y ± error,
    :func:`_external_shift`, added to the covariance and to ``covariance_stat``). Why: F sees
    about ±0.5 units of rapidity, where the Gaussian's curvature is a few-% effect; a 1%
    distortion of the weighted pairs' rapidity inside F (the acceptance correction's, at the
    detector's resolution) moves the fitted σ_y by ≈ 0.3 (docs/explanation/method.md "σ_y from
    outside")."""
    y_sigma_source: str | None = None
    """Where the external σ_y comes from (recorded; required with it)."""
    pt_power: float | Literal["fitted"] = 0.0
    """The m_T power a of the p_T form m_T^a e^{−m_T/T} (:func:`_log_pt_power`): a number
    fixes it (0: the m_T-exponential, the default); ``"fitted"``: one a per fit group, fitted
    with its T (within :data:`POWER_BOUNDS`), its error in the sandwich covariance beside the
    others'. Then the p_T form is the data's, not an assumption: the Boltzmann alternative
    (a + 1) lies inside the fitted family and is not added as a model variation (the rapidity
    forms still are)."""

    @classmethod
    def from_config(cls, cfg: Any) -> FitSettings:
        """The yields stage's settings: ȳ fixed at the beam–nucleon c.m. rapidity (from
        ``beam.energy``; the fiducial data cannot separate ȳ from σ_y, docs/explanation/method.md "the
        fiducial region and the extrapolation"), ``yields.extrapolation_y_sigma`` and
        ``yields.extrapolation_pt_power``."""
        ys = cfg.yields.extrapolation_y_sigma  # σ_y from outside, when configured
        return cls(
            y_mean=cm_rapidity(cfg.beam.energy),
            y_sigma=None if ys is None else (ys.value, ys.error),
            y_sigma_source=None if ys is None else ys.source,
            pt_power=cfg.yields.extrapolation_pt_power,
        )


class _Pairs(NamedTuple):
    """The fitted pairs (non-zero weight, finite rapidity, p_T > 0) and their mass bin."""

    m: NDArray
    pt: NDArray
    y: NDArray
    w: NDArray
    idx: NDArray


class _Fit(NamedTuple):
    """The joint fit: its groups' data, ``fitted`` ((bins, Kish size) per group), the pairs'
    bins per group, the parameters ``x`` and their NLL, the external σ_y (or ``None``), the
    fitted power's flag (``power``: as :func:`_fit_joint`) and F on each bin's grid."""

    data: list
    fitted: list
    pair_bins: list
    x: NDArray
    nll0: float
    external: dict[str, Any] | None
    power: float | None
    inside: dict[int, NDArray[np.bool_]]


def fit_extrapolation(
    m: ArrayLike,
    pt: ArrayLike,
    y: ArrayLike,
    weight: ArrayLike,
    edges: ArrayLike,
    fiducial: Any,
    *,
    settings: FitSettings | None = None,
) -> Extrapolation:
    """Fit the model to the weighted pairs inside the fiducial region, per mass bin.

    Adjacent bins are grouped until a group holds :data:`MIN_EFF_PAIRS` effective pairs
    (Kish, (Σw)²/Σw²); each bin takes its group's parameters and its own f_F. The steps: the
    pairs, their groups, the joint fit, the error methods, the per-bin values, the model's
    form.

    Arguments:
        m, pt, y, weight: the pairs (mass, p_T, lab rapidity, the ``weight`` column: pairs
            outside the region have weight 0 and are ignored).
        edges: mass bin edges (the A′ yield bins).
        fiducial: the :class:`~gammastar.corrections.pair_acceptance.FiducialRegion`.
        settings: the fit's options (:class:`FitSettings`; default: its defaults).

    Returns:
        :class:`Extrapolation`.

    Raises:
        InputError: no pair with non-zero weight.
    """
    settings = FitSettings() if settings is None else settings
    if settings.error_method not in ERROR_METHODS:
        raise ValueError(
            f"error_method must be one of {ERROR_METHODS}, not {settings.error_method!r}"
        )
    power = _pt_power(settings.pt_power)
    edges = np.asarray(edges, dtype=np.float64)
    nb = len(edges) - 1
    pairs = _fit_pairs(m, pt, y, weight, edges)
    fit = _joint_fit(pairs, _mass_groups(pairs, nb), fiducial, edges, (settings, power))
    centre = 0.5 * (edges[1:] + edges[:-1])
    y_mean, method = settings.y_mean, settings.error_method
    errs, cov, cross = _error_methods(fit, fiducial, centre, settings)
    values = _bin_values(fit, fiducial, centre, errs)
    frac_err, d_sigma = errs[method]
    alt = errs.get(_OTHER[method])
    cov_stat = err_stat = variations = None
    if settings.model_variations and method == "sandwich" and cov is not None:
        cov_stat, err_stat = cov, frac_err
        variations, cov, frac_err, d_sigma = _with_model_variations(fit, fiducial, centre, cov,
                                                                    y_mean)  # fmt: skip
    temp, mu, sig, pt_pow, frac, neff = values
    return Extrapolation(centre, edges, frac, temp, mu, sig, np.nan_to_num(neff),
                         fiducial.as_dict(), frac_err, d_sigma, y_mean is not None,
                         method, None if alt is None else alt[0],
                         None if alt is None else alt[1], cov,
                         None if cov is None else _bin_groups(fit.fitted, nb), cov_stat, err_stat,
                         variations, fit.external, pt_pow, fit.power is None,
                         cross)  # fmt: skip


def _fit_pairs(m: ArrayLike, pt: ArrayLike, y: ArrayLike, weight: ArrayLike,
               edges: NDArray) -> _Pairs:  # fmt: skip
    """The pairs the fit sees (non-zero weight, finite rapidity, p_T > 0) and their bins.

    Raises:
        InputError: no such pair.
    """
    m = np.asarray(m, dtype=np.float64)
    pt = np.asarray(pt, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)
    use = (w != 0) & np.isfinite(y) & (pt > 0)
    if not np.any(use):
        raise InputError("extrapolation: no pair inside the fiducial region to fit")
    m, pt, y, w = m[use], pt[use], y[use], w[use]
    return _Pairs(m, pt, y, w, np.searchsorted(edges, m, side="right") - 1)


def _mass_groups(pairs: _Pairs, nb: int) -> list[list[int]]:
    """Adjacent bins grouped until each group's Kish size reaches :data:`MIN_EFF_PAIRS`
    (a short remainder joins the last group)."""
    idx, w = pairs.idx, pairs.w
    sw = np.bincount(idx.clip(0, nb - 1), weights=w, minlength=nb)
    sw2 = np.bincount(idx.clip(0, nb - 1), weights=w**2, minlength=nb)
    groups: list[list[int]] = []
    cur: list[int] = []
    a = b = 0.0
    for i in range(nb):
        cur.append(i)
        a += sw[i]
        b += sw2[i]
        if b > 0 and a > 0 and a * a / b >= MIN_EFF_PAIRS:
            groups.append(cur)
            cur, a, b = [], 0.0, 0.0
    if cur:
        if groups:
            groups[-1].extend(cur)
        else:
            groups.append(cur)
    return groups


def _joint_fit(pairs: _Pairs, groups: list[list[int]], fiducial: Any, edges: NDArray,
               how: tuple[FitSettings, float | None]) -> _Fit:  # fmt: skip
    """Every group with a positive weighted sum fitted jointly (:func:`_fit_joint`); ``how``:
    the settings and the p_T form's power (:func:`_pt_power`).

    Raises:
        InputError: no group to fit.
    """
    m, pt, y, w, idx = pairs
    settings, power = how
    data, fitted, pair_bins = [], [], []
    for g in groups:
        k = (idx >= g[0]) & (idx <= g[-1])
        ws, ws2 = float(np.sum(w[k])), float(np.sum(w[k] ** 2))
        if ws <= 0:
            continue
        m_c = float(np.sum(w[k] * m[k]) / ws)
        data.append(_Group((m[k], pt[k], y[k], w[k],
                            _Reference(fiducial, m_c, settings.seed + len(data)))))  # fmt: skip
        pair_bins.append(idx[k])
        fitted.append((g, ws * ws / ws2))
    if not data:
        raise InputError("extrapolation: no mass range with a positive weighted sum to fit")
    start, y_mean = settings.start, settings.y_mean
    if y_mean is not None:
        start = (start[0], float(y_mean), start[2])
    external = _external_sigma(settings.y_sigma, settings.y_sigma_source)
    if external is not None:
        start = (start[0], start[1], external["value"])
    x, nll0 = _fit_joint(data, (*start[:3], 0.0 if power is None else power), mu_fixed=y_mean,
                         sigma=None if external is None else external["value"],
                         power=power)  # fmt: skip
    centre = 0.5 * (edges[1:] + edges[:-1])
    inside = _fiducial_grids(fiducial, centre, fitted)
    return _Fit(data, fitted, pair_bins, x, nll0, external, power, inside)


def _error_methods(fit: _Fit, fiducial: Any, centre: NDArray, settings: FitSettings
                   ) -> tuple[dict[str, tuple[NDArray, float]], NDArray | None, Any]:  # fmt: skip
    """f_F's 1σ per bin and δσ_y of the quoted method (and of the other one with
    ``compare``); the sandwich's covariance (with an external σ_y's shift) and its
    cross term, or ``None``. An external σ_y's shifts are recorded in ``fit.external``."""
    data, fitted, _, x, _, external, power, inside = fit
    y_mean, method = settings.y_mean, settings.error_method
    # the fits at an external σ_y ± its error, shared by both error methods
    sides = (None if external is None
             else _external_sides(data, x, y_mean, external["error"], power))  # fmt: skip
    errs: dict[str, tuple[NDArray, float]] = {}
    cov = cross = None
    for meth in (method, _OTHER[method]) if settings.compare else (method,):
        if meth == "sandwich":
            cov, cross = _sandwich(data, x, y_mean, sigma_fixed=external is not None,
                                   power=power, bins=fit.pair_bins,
                                   n_bins=len(centre))  # fmt: skip
            if external is not None:
                d = _external_shift(y_mean, sides)
                external["parameter_shift"] = d.tolist()
                # each side's own shift: N_sig's response evaluated at them, not linearised
                x0 = _free(x, y_mean)
                external["parameter_sides"] = [(_free(sd, y_mean) - x0).tolist() for sd in sides]
                cov = cov + np.outer(d, d)
            s_idx = 0 if y_mean is not None else 1
            errs[meth] = (_fraction_errors(fiducial, centre, fitted, x, cov, y_mean, inside,
                                           power),
                          math.sqrt(max(float(cov[s_idx, s_idx]), 0.0)))  # fmt: skip
        else:
            ext = None if external is None else (external["error"], sides)  # the same fits
            errs[meth] = _kish_profile(fit, fiducial, centre, y_mean, ext)
    return errs, cov, cross


def _bin_values(fit: _Fit, fiducial: Any, centre: NDArray,
                errs: dict[str, tuple[NDArray, float]]) -> tuple[NDArray, ...]:  # fmt: skip
    """Per bin: (T, ȳ, σ_y, a, f_F, Kish size) of its group; a failed group's bins take the
    nearest fitted bin's values, as do the error arrays of ``errs`` (in place).

    Raises:
        InputError: the fit failed in every mass bin.
    """
    nb = len(centre)
    temp, mu, sig, neff, frac = (np.full(nb, np.nan) for _ in range(5))
    pt_pow = np.full(nb, np.nan)
    for k, (g, n_eff) in enumerate(fit.fitted):
        par = _group_params(fit.x, k, len(fit.fitted), fit.power)
        for i in g:
            temp[i], mu[i], sig[i], pt_pow[i] = par
            neff[i] = n_eff
            frac[i] = fiducial_fraction(fiducial, float(centre[i]), par, fit.inside[i])
    ok = np.isfinite(frac)
    if not np.any(ok):
        raise InputError("extrapolation: the fit failed in every mass bin")
    for a_ in (temp, mu, sig, pt_pow, frac, *(e for e, _ in errs.values())):
        a_[~ok] = np.interp(centre[~ok], centre[ok], a_[ok])  # a failed group: the nearest
    return temp, mu, sig, pt_pow, frac, neff


def _with_model_variations(fit: _Fit, fiducial: Any, centre: NDArray, cov: NDArray,
                           y_mean: float | None) -> tuple[Any, NDArray, NDArray, float]:  # fmt: skip
    """The model's form added to the sandwich (:func:`_model_variations`).

    Returns:
        (the variations' record, the covariance with their shifts, f_F's 1σ per bin from it,
        δσ_y).
    """
    variations, shifts = _model_variations(fit, fiducial, centre, y_mean)
    cov = cov + sum((np.outer(d, d) for d in shifts), np.zeros_like(cov))
    frac_err = _fraction_errors(fiducial, centre, fit.fitted, fit.x, cov, y_mean, fit.inside,
                                fit.power)  # fmt: skip
    s_idx = 0 if y_mean is not None else 1
    d_sigma = math.sqrt(max(float(cov[s_idx, s_idx]), 0.0))
    ok_e = np.isfinite(frac_err)
    if np.any(ok_e) and not np.all(ok_e):
        frac_err[~ok_e] = np.interp(centre[~ok_e], centre[ok_e], frac_err[ok_e])
    return variations, cov, frac_err, d_sigma


def _bin_groups(fitted: list, nb: int) -> NDArray[np.int64]:
    """Each bin's fit group; bins of a failed group: the nearest fitted bin's group."""
    bin_group = np.full(nb, -1, dtype=np.int64)
    for k, (g, _) in enumerate(fitted):
        bin_group[g] = k
    have = np.flatnonzero(bin_group >= 0)
    if have.size:
        near = have[np.abs(np.arange(nb)[:, None] - have[None, :]).argmin(axis=1)]
        bin_group = bin_group[near]
    return bin_group


def refit_fractions(
    ex: Extrapolation,
    m: ArrayLike,
    pt: ArrayLike,
    y: ArrayLike,
    weight: ArrayLike,
    fiducial: Any,
    *,
    groups: ArrayLike | None = None,
    seed: int = 0,
) -> NDArray[np.float64]:
    """f_F per mass bin of ``ex``'s model fitted again to other weights inside another region.

    The fit of :func:`fit_extrapolation` redone as ``ex`` was made (its fit groups, its fixed
    ȳ, external σ_y and m_T-power settings, the same reference samples' seeds ``seed + g``),
    started at ``ex``'s parameters, without errors. Where σ_y and ȳ are fixed the groups' fits
    are independent and only ``groups`` are refitted (the other bins keep ``ex``'s f_F); with
    a fitted σ_y or ȳ every group is. What the extrapolation does when the fiducial region
    follows a varied λ_θ (:func:`gammastar.yields.uncertainties.lambda_theta_moving_variation`).
    The fraction of :func:`refit`'s record.

    Arguments:
        ex: the nominal :class:`Extrapolation` (with its fit groups, ``bin_group``).
        m, pt, y, weight: the pairs with their new weights (0 outside ``fiducial``).
        fiducial: the new :class:`~gammastar.corrections.pair_acceptance.FiducialRegion`.
        groups: the fit groups to refit (default: all).
        seed: :func:`fit_extrapolation`'s ``seed`` of the nominal fit.

    Returns:
        f_F per mass bin of ``ex``.

    Raises:
        ValueError: ``ex`` has no fit groups (written before they were recorded).
    """
    rec = refit(ex, m, pt, y, weight, fiducial, groups=groups, seed=seed)
    return np.asarray(rec["fiducial_fraction"], dtype=np.float64)


def refit(
    ex: Extrapolation,
    m: ArrayLike,
    pt: ArrayLike,
    y: ArrayLike,
    weight: ArrayLike,
    fiducial: Any,
    *,
    groups: ArrayLike | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """``ex``'s model fitted again to other weights inside another region (as
    :func:`refit_fractions`), the whole fit per mass bin of ``ex``.

    Arguments:
        as :func:`refit_fractions`.

    Returns:
        ``{fiducial_fraction, temperature, pt_power}`` (lists per mass bin of ``ex``; bins of
        groups not refitted keep ``ex``'s values) and ``y_mean``, ``y_sigma`` (floats): a
        record as :attr:`Extrapolation.model_variations` holds one per form, which
        :func:`nsig_error_parts` evaluates N/Y_F at (``lambda_theta``).

    Raises:
        ValueError: ``ex`` has no fit groups (written before they were recorded).
    """
    return refit_moves(ex, m, pt, y, [(weight, fiducial, groups)], seed=seed)[0]


def refit_moves(
    ex: Extrapolation,
    m: ArrayLike,
    pt: ArrayLike,
    y: ArrayLike,
    moves: Sequence[tuple[ArrayLike, Any, ArrayLike | None]],
    *,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """:func:`refit` for several moves of the same pairs at once, one record per move:
    ``moves`` holds each move's ``(weight, fiducial, groups)``. Where the groups' fits are
    independent (ȳ and σ_y fixed, the m_T powers fitted: one Newton fit per group,
    :func:`_fit_joint`), a group's reference sample is drawn once (:func:`reference_draws`)
    for every move that refits it, and made at each move's mass and region from those draws:
    the records of one :func:`refit` per move, number for number.

    Raises:
        ValueError: ``ex`` has no fit groups (written before they were recorded).
    """
    if ex.bin_group is None:
        raise ValueError("this extrapolation has no fit groups (no covariance): refit it")
    m, pt, y = (np.asarray(a, dtype=np.float64) for a in (m, pt, y))
    bg = np.asarray(ex.bin_group)
    n_g = int(bg.max()) + 1
    external = ex.y_sigma_external
    fixed = _Fixed(float(ex.y_mean[0]) if ex.y_mean_fixed else None,
                   float(external["value"]) if external else None,
                   None if ex.pt_power_fitted else float(ex.power_at(ex.mass[:1])[0]))  # fmt: skip
    idx = np.searchsorted(np.asarray(ex.edges, dtype=np.float64), m, side="right") - 1
    plans = []
    for weight, fiducial, groups in moves:
        w = np.asarray(weight, dtype=np.float64)
        every = groups is None or fixed.mu is None or fixed.sigma is None
        todo = {int(g) for g in (range(n_g) if every else groups)}
        plans.append((w, (w != 0) & np.isfinite(y) & (pt > 0), fiducial, todo))
    records = [_RefitRecord(ex) for _ in plans]
    if fixed.mu is None or fixed.sigma is None or fixed.power is not None:
        # one joint fit of every refitted group per move
        for rec, (w, use, fiducial, todo) in zip(records, plans, strict=True):
            data, bins = [], []
            for g in sorted(todo):
                b = _group_bins(bg, g)
                got = _refit_group(ex, (m, pt, y, w), use & np.isin(idx, b), fiducial, seed + g)
                if got is not None:
                    data.append(got)
                    bins.append(b)
            _fit_record(ex, rec, data, bins, fiducial, fixed)
        return [r.as_dict() for r in records]
    # the groups' fits are independent: group by group, each one's reference draws made once
    for g in sorted(set().union(*(todo for *_, todo in plans))):
        b = _group_bins(bg, g)
        in_g = np.isin(idx, b)
        draws = None
        for rec, (w, use, fiducial, todo) in zip(records, plans, strict=True):
            if g not in todo:
                continue
            if draws is None:
                draws = reference_draws(seed + g)
            got = _refit_group(ex, (m, pt, y, w), use & in_g, fiducial, seed + g, draws)
            if got is not None:
                _fit_record(ex, rec, [got], [b], fiducial, fixed)
    return [r.as_dict() for r in records]


class _Fixed(NamedTuple):
    """What a refit keeps of the nominal fit: a fixed ȳ, an external σ_y, a fixed m_T power
    (``None``: fitted)."""

    mu: float | None
    sigma: float | None
    power: float | None


def _group_bins(bin_group: NDArray, g: int) -> NDArray[np.intp]:
    """The mass bins of fit group ``g``."""
    return np.flatnonzero(bin_group == g)


def _refit_group(ex: Extrapolation, pairs: tuple[NDArray, ...], k: NDArray[np.bool_],
                 fiducial: Any, seed: int, draws: Mapping[str, NDArray] | None = None
                 ) -> _Group | None:  # fmt: skip
    """One fit group of a refit: the pairs ``k`` of ``pairs`` (m, p_T, y, w) with the
    reference sample at their weighted mean mass (``None`` without a positive weighted
    sum)."""
    m, pt, y, w = pairs
    ws = float(np.sum(w[k]))
    if ws <= 0:
        return None
    m_c = float(np.sum(w[k] * m[k]) / ws)
    return _Group((m[k], pt[k], y[k], w[k], _Reference(fiducial, m_c, seed, draws)))


class _RefitRecord:
    """A refit's record (:func:`refit`'s return) as its groups are fitted: ``ex``'s values
    until a group's bins take the refit's."""

    def __init__(self, ex: Extrapolation) -> None:
        self.frac = np.array(ex.fiducial_fraction, dtype=np.float64)
        self.temp = np.array(ex.temperature, dtype=np.float64)
        self.a_pow = ex.power_at(ex.mass)
        self.shared = {"y_mean": float(ex.y_mean[0]), "y_sigma": float(ex.y_sigma[0])}

    def as_dict(self) -> dict[str, Any]:
        return {"fiducial_fraction": self.frac.tolist(), "temperature": self.temp.tolist(),
                "pt_power": self.a_pow.tolist(), **self.shared}  # fmt: skip


def _fit_record(ex: Extrapolation, rec: _RefitRecord, data: list, bins: list, fiducial: Any,
                fixed: _Fixed) -> None:  # fmt: skip
    """Fit the refit's groups ``data`` (``bins``: each one's mass bins) jointly, started at
    ``ex``'s parameters, into ``rec``."""
    if not data:
        return
    first = np.asarray([b[0] for b in bins])
    a0 = ex.power_at(ex.mass[first])
    x0 = np.concatenate([[ex.y_mean[first[0]], ex.y_sigma[first[0]]], ex.temperature[first], a0])
    x, _ = _fit_joint(data, (), sigma=fixed.sigma, mu_fixed=fixed.mu, power=fixed.power,
                      x_start=x0)  # fmt: skip
    for j, b in enumerate(bins):
        par = _group_params(x, j, len(data), fixed.power)
        for i in b:
            c = float(ex.mass[i])
            rec.frac[i] = fiducial_fraction(fiducial, c, par, _grid_in_f(fiducial, c))
            rec.temp[i] = par[0]
            if len(par) > 3:
                rec.a_pow[i] = par[3]
        rec.shared = {"y_mean": float(par[1]), "y_sigma": float(par[2])}


def _pt_power(pt_power: float | str) -> float | None:
    """:func:`fit_extrapolation`'s ``pt_power`` as ``_fit_joint`` takes it (``None``: fitted);
    a clear error for a bad value."""
    if isinstance(pt_power, str):
        if pt_power == "fitted":
            return None
        raise InputError(f"extrapolation: pt_power must be a number or 'fitted', not {pt_power!r}")
    a = float(pt_power)
    if not (-2.0 < a <= POWER_BOUNDS[1]):
        raise InputError(
            f"extrapolation: pt_power must lie in (-2, {POWER_BOUNDS[1]:g}] (the p_T form "
            f"m_T^a exp(-m_T/T) is normalisable for a > -2), not {a}"
        )
    return a


def _external_sigma(y_sigma, source) -> dict[str, Any] | None:
    """The external σ_y record ``{value, error, source}`` of :func:`fit_extrapolation`
    (``None``: σ_y fitted); a clear error for a bad value."""
    if y_sigma is None:
        return None
    value, error = (float(v) for v in y_sigma)
    lo, hi = _BOUNDS[2]
    if not (lo <= value <= hi) or not (math.isfinite(error) and error >= 0):
        raise InputError(
            f"extrapolation: the external sigma_y must lie in [{lo}, {hi}] with an error >= 0, "
            f"not {value} +- {error}"
        )
    if not source:
        raise InputError("extrapolation: an external sigma_y needs its source")
    return {"value": value, "error": error, "source": str(source)}


def _external_sides(data, x, mu_fixed, error: float, power=0.0) -> tuple[NDArray, NDArray]:
    """The fits at an external σ_y + ``error`` and − ``error`` (the T_g — and fitted powers —
    refitted; σ_y within its bounds; ``x`` itself for both at a zero error): the external
    error's effect (:func:`_external_shift`, and the ``kish_profile`` comparison at the same
    σ_y ± error)."""
    if error == 0:
        return x, x
    sides = []
    for sign in (1.0, -1.0):
        s_ = float(np.clip(x[1] + sign * error, *_BOUNDS[2]))
        sides.append(_refit_at_sigma(data, x, s_, mu_fixed, power)[0])
    return sides[0], sides[1]


def _refit_at_sigma(data, x, sigma: float, mu_fixed, power):
    """:func:`_fit_joint` at σ_y = ``sigma`` near the fit ``x``: from ``x`` itself with fitted
    powers, else from every T = the first group's."""
    if power is None:
        return _fit_joint(data, None, sigma=sigma, mu_fixed=mu_fixed, power=None, x_start=x)
    return _fit_joint(data, (x[2], x[0], sigma), sigma=sigma, mu_fixed=mu_fixed, power=power)


def _external_shift(mu_fixed, sides) -> NDArray[np.float64]:
    """δ of the free parameters ([ȳ], σ_y, T_g...) when an external σ_y moves by its 1σ:
    half the difference of the two fits of :func:`_external_sides` (σ_y's own entry = the
    error; zeros at a zero error)."""
    return (_free(sides[0], mu_fixed) - _free(sides[1], mu_fixed)) / 2


def _fit_form(fit: _Fit, form: ModelForm, mu_fixed: float | None, ts: NDArray) -> NDArray:
    """The joint ``fit``'s pairs fitted with another ``form`` (σ_y fixed where it is external;
    fitted powers start from the nominal fit, a fixed power from the mean T_g)."""
    sigma = fit.x[1] if fit.external is not None else None
    if fit.power is None:
        xa, _ = _fit_joint(fit.data, None, mu_fixed=mu_fixed, form=form, power=None,
                           x_start=fit.x, sigma=sigma)  # fmt: skip
    else:
        xa, _ = _fit_joint(fit.data, (float(np.mean(ts)), fit.x[0], fit.x[1]), mu_fixed=mu_fixed,
                           form=form, sigma=sigma, power=fit.power)  # fmt: skip
    return xa


def _model_variations(fit: _Fit, fiducial, centre, mu_fixed):
    """The model's form as an error: each alternative of :data:`MODEL_VARIATIONS` fitted to
    the same weighted pairs as the joint ``fit`` (ȳ as it, σ_y fixed where it is external),
    its f_F per bin, and the shift δ of the
    nominal parameters that reproduces those f_F — a p_T form moves each fit group's T
    (root of the group's mean f_F), a rapidity form σ_y (least squares over the bins) —, so
    that δδᵀ can join the covariance and reach N_sig through :func:`nsig_relative_error`
    like the fit's own error (the model's kinematics outside F follow the nominal form at the
    shifted parameters: an approximation of the alternative's, exact for f_F).

    Why: the fiducial data fix the spectrum where they see it; outside F only the form carries
    it. On the mock's own γ* (no detector) at 0.3 GeV, where F sees no p_T < 0.2 GeV (24% of
    the γ*), the nominal form's f_F is 10–17% above the truth with a statistical error of
    ~2%: the Dalitz γ* are not of the factorised m_T-exponential × Gaussian form
    (docs/explanation/method.md).

    With fitted m_T powers (``power=None``) the p_T forms (``maps_to == "T"``) are skipped:
    the fitted family holds them, and the data's error of the power is in the sandwich.

    Returns:
        ``(record, shifts)``: per form ``{description, fiducial_fraction, temperature,
        pt_power, y_sigma, y_mean, maps_to, parameter_shift}`` and the list of δ
        (free-parameter vectors).

    References:
        Alternative functional forms as a model uncertainty of an extrapolation: e.g. NA60,
        Eur. Phys. J. C 59 (2009) 607 (m_T spectra fitted with exp(−m_T/T)); the Boltzmann
        form m_T exp(−m_T/T): E. Schnedermann, J. Sollfrank, U. Heinz, Phys. Rev. C 48 (1993)
        2462.
    """
    from scipy.optimize import brentq, minimize_scalar

    _, fitted, _, x, _, _, power, inside = fit
    n_head = 1 if mu_fixed is not None else 2
    nb = len(centre)

    n_g = len(fitted)
    ts, powers = _split(x[2:], n_g, power)
    group_of = {i: k for k, (g, _) in enumerate(fitted) for i in g}

    def f_nom(i, t, s):
        par = (t, x[0], s, powers[group_of[i]])
        return fiducial_fraction(fiducial, float(centre[i]), par, inside[i])

    record, shifts = {}, []
    for name in MODEL_VARIATIONS:
        form = FORMS[name]
        if power is None and form.maps_to == "T":
            continue  # a p_T power form: inside the fitted family (fit_extrapolation pt_power)
        xa = _fit_form(fit, form, mu_fixed, ts)
        f_alt = np.full(nb, np.nan)
        t_alt = np.full(nb, np.nan)
        a_alt = np.full(nb, np.nan)
        for k, (g, _) in enumerate(fitted):
            par = _group_params(xa, k, n_g, power)
            for i in g:
                t_alt[i], a_alt[i] = par[0], par[3]
                f_alt[i] = fiducial_fraction(fiducial, float(centre[i]), par, inside[i], form)
        delta = np.zeros(_free(x, mu_fixed).size)
        if form.maps_to == "T":
            lo, hi = _BOUNDS[0]
            for k, (g, _) in enumerate(fitted):
                target = float(np.mean(f_alt[g]))

                def resid(t, g=g, target=target, k=k):
                    return float(np.mean([f_nom(i, t, x[1]) for i in g])) - target

                r_lo, r_hi = resid(lo), resid(hi)
                if r_lo * r_hi < 0:
                    t_new = brentq(resid, lo, hi, xtol=1e-7)
                else:  # no root inside the bounds: the nearer bound
                    t_new = lo if abs(r_lo) < abs(r_hi) else hi
                delta[n_head + k] = t_new - ts[k]
        else:  # y_sigma: one shift for all bins

            def loss(s_, f_alt=f_alt):
                return sum((f_nom(i, ts[k], s_) - f_alt[i]) ** 2
                           for k, (g, _) in enumerate(fitted) for i in g)  # fmt: skip

            res = minimize_scalar(loss, bounds=_BOUNDS[2], method="bounded",
                                  options={"xatol": 1e-7})  # fmt: skip
            delta[n_head - 1] = float(res.x) - x[1]
        shifts.append(delta)
        record[name] = {
            "description": form.description,
            "fiducial_fraction": _none_nan(f_alt),
            "temperature": _none_nan(t_alt),
            "pt_power": _none_nan(a_alt),
            "y_sigma": float(xa[1]),
            "y_mean": float(xa[0]),
            "maps_to": form.maps_to,
            "parameter_shift": delta.tolist(),
        }
    return record, shifts


def per_sample_acceptance(sample: Any, ctau: ArrayLike) -> NDArray[np.float64]:
    """Each sample's own acceptance at the proper decay lengths ``ctau``: the detector
    efficiency × Σ_cells hit × (survival to the cell's start − to its end), the per-sample
    term of :meth:`gammastar.reach.acceptance.KinematicSample.acceptance` (whose mean it is).

    Returns:
        shape (n, len(ctau)).
    """
    ctau = np.atleast_1d(np.asarray(ctau, dtype=np.float64))
    if hasattr(sample, "acceptance_per_sample"):  # a KinematicSample: over its edges only
        return sample.acceptance_per_sample(ctau)

    z = np.asarray(sample.cells, dtype=np.float64)
    out = np.empty((sample.n, ctau.size))
    for j, c in enumerate(ctau):
        p = decay_probability(z[None, :-1], z[None, 1:], sample.gbc[:, None] * c)
        out[:, j] = np.sum(sample.hits * p, axis=1)
    return sample.efficiency * out


@dataclass(frozen=True)
class NsigErrorSettings:
    """Which parts of the extrapolation's error :func:`nsig_relative_error` includes, and how
    it propagates them to N_sig."""

    external: bool = True
    """Include an external σ_y's error (:attr:`Extrapolation.y_sigma_external`; ``False``: the
    fit's statistical part and the forms only, e.g. for a coverage test at a fixed truth,
    which cannot test a systematic)."""
    forms: bool = True
    """Include the model's forms (:attr:`Extrapolation.model_variations`; ``False``: the fit's
    statistical part and an external σ_y's only, e.g. for a coverage test on a mock whose
    spectra keep one form)."""
    yield_cross: bool = True
    """Add the fit's covariance with the fiducial yield's statistics, 2 Cov(ln Y_F, ln(N/Y_F))
    (:func:`nsig_error_parts` ``yield_cross``), to the variance, so that the result added in
    quadrature to the yield's statistical error is N_sig's whole statistical variance (the
    reach's ``extrapolation`` normsys beside ``mcstat``); the sum is clipped at 0. ``False``:
    the extrapolation's own error."""
    propagation: Literal["linear", "log"] = "linear"
    """``"linear"``: δN/N from the gradient of N (exact for N linear in the parameters);
    ``"log"``: the width w of ln N from ±1σ steps along the covariance's principal axes
    (:func:`nsig_error_parts` ``log=True``), returned as e^w − 1, the r of a log-normal
    ``normsys`` hi = 1 + r (exact for ln N linear in the parameters: a detector that sees only
    a tail of the model, where N moves exponentially, e.g. the NA62-like one behind the
    NA60-like data, docs/explanation/reach.md). The two agree to second order in the parameters'
    errors."""


def nsig_relative_error(
    extrapolation: Extrapolation,
    fiducial: Any,
    mass: float,
    kinematics: dict[str, ArrayLike],
    sample: Any,
    ctau: ArrayLike,
    *,
    settings: NsigErrorSettings | None = None,
) -> NDArray[np.float64]:
    r"""The fit's 1σ relative error of N_sig = Y·𝓔 at one mass, per cτ: what the reach's
    signal inherits from the extrapolation, rather than the yield's δf_F/f_F.

    With the full-phase-space yield Y = Y_F / f_F and the acceptance
    𝓔 = f_F 𝓔_in + (1 − f_F) 𝓔_out (:class:`ExtrapolatedSampler`),
    N/Y_F = 𝓔_in + E_x(θ)/f_F(θ), E_x = (1 − f_F) 𝓔_out = ∫_{∉F} p_θ a: only the model's part
    depends on the fit parameters θ = (T, [ȳ], σ_y), and a change of σ_y that moves f_F moves
    E_x nearly in proportion where the detector sees kinematics next to F (the paper's mock
    detector shares the spectrometer's angular window), so N_sig is much less sensitive than Y.
    The gradient of E_x is taken on the drawn samples themselves by reweighting,
    ∂E_x/∂θ = (1/n) Σ_{extrapolated i} a_i ∂ln p_θ(x_i)/∂θ (no resampling noise), that of f_F
    by :func:`fiducial_fraction`'s central differences; the two are propagated linearly through
    the sandwich covariance (:attr:`Extrapolation.covariance_stat`, else
    :attr:`Extrapolation.covariance`: σ_y, [ȳ], and the T_g [and a_g] of the fit groups
    that :meth:`Extrapolation.group_weights` gives at the mass, each with its weight). An
    extrapolation with model-form variations (:func:`_model_variations`) adds, in quadrature,
    each alternative form's own change of N/Y_F, E_x,alt/f_alt − E_x/f_F, its E_x by
    reweighting the same extrapolated samples with p_alt/p_nom (its parameters from
    ``model_variations``): exact up to the draw's noise, where the covariance's mapping onto
    the nominal parameters is exact for f_F only (on the mock it overstates N_sig's change,
    docs/explanation/reach.md).

    Arguments:
        extrapolation: the fitted :class:`Extrapolation` with its ``covariance``.
        fiducial: the :class:`~gammastar.corrections.pair_acceptance.FiducialRegion`.
        mass: the A′ mass (GeV).
        kinematics: the sampler's output of the draw (``qT``, ``E``, ``extrapolated``), in
            the order of ``sample``.
        sample: the :class:`~gammastar.reach.acceptance.KinematicSample` drawn from them.
        ctau: proper decay lengths (m).
        settings: which parts are included and how they are propagated
            (:class:`NsigErrorSettings`; default: all of them, linear).

    Returns:
        δN/N per cτ (0 where N = 0).

    Raises:
        InputError: the extrapolation has no covariance (written with ``kish_profile`` alone,
            or before the sandwich).

    References:
        Linear error propagation of the sandwich covariance (:func:`sandwich_covariance`);
        the reweighting identity ∫ p_θ a = E_{p_θ0}[a p_θ/p_θ0] (importance sampling).
    """
    st = NsigErrorSettings() if settings is None else settings
    if st.propagation not in ("linear", "log"):
        raise ValueError(f"propagation must be 'linear' or 'log', not {st.propagation!r}")
    log = st.propagation == "log"
    parts = nsig_error_parts(extrapolation, fiducial, mass, kinematics, sample, ctau, log=log)
    keep = ("fit",) + (("external",) if st.external else ()) + (("forms",) if st.forms else ())
    var = sum(parts[k] ** 2 for k in keep) + (parts["yield_cross"] if st.yield_cross else 0.0)
    width = np.sqrt(np.maximum(var, 0.0))
    return np.expm1(width) if log else width


def nsig_error_parts(
    extrapolation: Extrapolation,
    fiducial: Any,
    mass: float,
    kinematics: dict[str, ArrayLike],
    sample: Any,
    ctau: ArrayLike,
    *,
    log: bool = False,
    lambda_theta: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, NDArray[np.float64]]:
    """The parts of :func:`nsig_relative_error`, each a relative 1σ of N_sig per cτ whose
    quadrature sum is the whole: ``fit`` (the sandwich's statistical part), ``external`` (an
    external σ_y's error: N's response itself at the two fits σ_y ± error
    (``parameter_sides``), ln N = a z + b z² through them and its sd over a Gaussian prior
    √(a² + 2b²); for a record without the sides, its ``parameter_shift`` δ through the same
    gradient, (g·δ)², linear, which misses the response's curvature; 0 without
    one), ``forms`` (the model's alternative forms; 0 without them); and
    ``yield_cross``, not a σ but a signed relative variance: 2 Cov(ln Y_F, ln(N/Y_F)) at the
    mass, the fit's covariance with the fiducial yield's statistics
    (:attr:`Extrapolation.yield_covariance`; 0 without it), which N_sig = Y_F · N/Y_F's
    variance holds beside the yield's and the fit's own (the two correlate positively on the
    NA60-like mock: docs/validation/uncertainties-and-coverage.md). Computed once,
    any subset combined by the caller (arguments as :func:`nsig_relative_error`). Beside
    them, ``form_<name>`` per alternative form (:data:`MODEL_VARIATIONS`): the parts of
    ``forms`` (their quadrature sum), for a study that draws one form's truth and not the
    other's (``validation/scripts/nsig_coverage.py``); not to be added to ``forms``. Every form of
    ``model_variations`` that :data:`FORMS` holds has its key, 0 where its part is not
    computed: without ``covariance_stat`` (the covariance then holds the forms, in ``fit``)
    or for a form with no finite fit.

    With ``log=True`` every part is a 1σ of ln N instead, each found without the gradient:
    N/Y_F recomputed (the extrapolated samples reweighted, f_F by quadrature) at ±1σ along
    each principal axis of the fit's covariance (without the external shift δ), half the
    difference of ln N per axis, added in quadrature (exact when ln N is linear in the
    parameters, whatever their errors); ``external`` the same along ±δ for a record without
    ``parameter_sides`` (with them it is the response at the two fits in both modes, a 1σ of
    ln N); ``forms`` |ln(N_alt/N)|.
    ``yield_cross`` stays the linear 2 Cov(ln Y_F, ln(N/Y_F)), a covariance of logarithms
    already. Costs 2k + 2 more evaluations of N/Y_F (k ≤ 5 parameters).

    With ``lambda_theta`` (:func:`gammastar.yields.uncertainties.lambda_refits_at`: per polarisation
    bin and sign, the fiducial yield's relative change at the mass, ``yield_shift``, and the
    extrapolation refitted in the moved region, ``fit``, a :func:`refit` record) also
    ``lambda_theta``: the decay anisotropy's 1σ at N's level, each move's
    (1 + δY_F/Y_F)(1 + Δ(N/Y_F)/(N/Y_F)) − 1 (logarithms with ``log=True``), Δ(N/Y_F) its
    refit's as :func:`_form_shifts` evaluates a form's (𝓔_out reweighted, f_F the refit's in
    the moved region), the bins in quadrature signed as the largest, (|up| + |down|)/2. The
    measured λ̂ moves f_F against Y_F (docs/validation/uncertainties-and-coverage.md),
    which the fiducial yield's change alone misses."""
    ex = extrapolation
    if ex.covariance is None or ex.bin_group is None:
        raise InputError("extrapolation: no parameter covariance (refit with the sandwich)")
    ctau = np.atleast_1d(np.asarray(ctau, dtype=np.float64))
    f0 = float(ex.at(mass)[0])
    qt = np.asarray(kinematics["qT"], dtype=np.float64)
    e = np.asarray(kinematics["E"], dtype=np.float64)
    out_mask = np.asarray(kinematics["extrapolated"], dtype=bool)
    a = per_sample_acceptance(sample, ctau)  # (n, n_ct)
    lam = None if lambda_theta is None else (lambda_theta, (qt, e, out_mask, a), ctau.size)
    if not np.any(out_mask):
        names = [f"form_{k}" for k in (ex.model_variations or {}) if k in FORMS]
        zero = {k: np.zeros(ctau.size)
                for k in ("fit", "external", "forms", "yield_cross", *names)}  # fmt: skip
        return _with_lambda_part(zero, ex, fiducial, mass, lam, log)
    draw = _out_samples(ex, fiducial, mass, (qt, e, out_mask), a)
    rows = _gradient_rows(ex, mass)
    # the fit's statistical part; the model's forms below, each by its own N_sig (the
    # total covariance holds them mapped onto the nominal parameters, exact for f_F only)
    cov = ex.covariance if ex.covariance_stat is None else ex.covariance_stat
    q = [q for _, q, _ in rows]
    gr = _nsig_gradient(fiducial, draw, ex.pt_power_fitted, rows, n=a.shape[0])  # (k, n_ct)
    var_stat = np.einsum("ic,ij,jc->c", gr, cov[np.ix_(q, q)], gr)
    shift = (ex.y_sigma_external or {}).get("parameter_shift")
    # the external σ_y's δδᵀ is in the covariance: its part (g·δ)², the rest the fit's
    var_ext = (np.asarray(shift, dtype=np.float64)[q] @ gr) ** 2 if shift is not None else 0.0
    sides = (ex.y_sigma_external or {}).get("parameter_sides")
    steps = _LogSteps(fiducial, draw, rows) if log or sides is not None else None
    # with the two fits' own shifts, the external part is N's response itself at σ_y ± error
    sd_ext = None if sides is None else _external_response(ex, steps, sides, q)
    shifts = _form_shifts(ex, draw) if ex.covariance_stat is not None else {}
    var_each = {k: d**2 for k, d in shifts.items()}
    n_over_yf = draw.tot / f0  # N / Y_F = 𝓔_in + E_x/f = 𝓔/f
    cross = _yield_cross(ex, mass, np.asarray(q), gr, n_over_yf)
    # where F has no area at the mass on the quadrature grid N/Y_F is undefined: linear parts
    use_log = log and bool(np.all(np.isfinite(steps.n0)))
    if use_log:  # every part a 1σ of ln N, from N/Y_F at ±1σ (docstring)
        d_ext = np.zeros(len(q)) if shift is None else np.asarray(shift, np.float64)[q]
        var_stat, var_ext = _log_fit_variances(steps, cov[np.ix_(q, q)], d_ext)
        var_each = _log_form_variances(shifts, n_over_yf)
    var_forms = sum(var_each.values(), np.zeros(ctau.size))
    rel = partial(_relative_sd, n_over_yf=n_over_yf, use_log=use_log)
    ext_part = rel(var_ext)
    if sd_ext is not None:  # the response itself where it is defined, else the linear part
        ext_part = np.where(np.isfinite(sd_ext), np.where(n_over_yf > 0, sd_ext, 0.0), ext_part)
    parts = {"fit": rel(var_stat - var_ext), "external": ext_part, "forms": rel(var_forms),
             "yield_cross": cross}  # fmt: skip
    names = [k for k in (ex.model_variations or {}) if k in FORMS]  # 0 where not computed
    parts |= {f"form_{k}": rel(var_each.get(k, 0.0)) for k in names}
    return _with_lambda_part(parts, ex, fiducial, mass, lam, log)


def _relative_sd(var: Any, n_over_yf: NDArray, use_log: bool) -> NDArray[np.float64]:
    """A variance of N/Y_F as a relative 1σ of N (of ln N with ``use_log``: the variance is
    one of ln N already); 0 where N = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.broadcast_to(np.maximum(var, 0.0), n_over_yf.shape)
        if use_log:
            return np.where(n_over_yf > 0, np.sqrt(v), 0.0)
        return np.where(n_over_yf > 0, np.sqrt(v) / n_over_yf, 0.0)


def _with_lambda_part(parts: dict[str, NDArray], ex: Extrapolation, fiducial: Any, mass: float,
                      lam: tuple | None, log: bool) -> dict[str, NDArray]:  # fmt: skip
    """``parts`` with :func:`nsig_error_parts`' ``lambda_theta`` where ``lam`` = (the moves,
    (q_T, E, extrapolated, acceptance) of the draw, the number of cτ) is given
    (:func:`_lambda_part`)."""
    if lam is not None:
        moves, (qt, e, out_mask, a), n_ct = lam
        ratio = _LambdaDraw(ex, fiducial, mass, qt, e, out_mask, a).ratio
        parts["lambda_theta"] = _lambda_part(moves, ratio, n_ct, log)
    return parts


def _out_samples(ex: Extrapolation, fiducial: Any, mass: float, kin: tuple,
                 a: NDArray) -> _OutSamples:  # fmt: skip
    """The draw's extrapolated samples (``kin`` = the draw's q_T, E and extrapolated flag,
    ``a`` its acceptance per cτ) with the model's parameters at the mass."""
    qt, e, out_mask = kin
    f0, t, mu, s = (float(v) for v in ex.at(mass))
    mt = np.sqrt(qt[out_mask] ** 2 + mass**2)
    return _OutSamples(mass, qt[out_mask], np.arccosh(np.maximum(e[out_mask] / mt, 1.0)),
                       a[out_mask], a.mean(axis=0), out_mask, (t, mu, s, float(ex.power_at(mass))),
                       f0, _grid_in_f(fiducial, mass))  # fmt: skip


class _OutSamples(NamedTuple):
    """The extrapolated samples of a draw at one mass (:func:`nsig_error_parts`): their q_T,
    rapidity and acceptance per cτ (n_out, n_ct); the whole draw's mean acceptance per cτ and
    which of its samples are extrapolated; the model's (T, ȳ, σ_y, a) at the mass, f_F there
    and F on the mass's quadrature grid (:func:`_grid_in_f`)."""

    mass: float
    qt: NDArray
    y: NDArray
    a: NDArray
    tot: NDArray
    out_mask: NDArray
    nominal: tuple[float, float, float, float]
    f0: float
    inside: NDArray


def _gradient_rows(ex: Extrapolation, mass: float) -> list[tuple[int, int, float]]:
    """The covariance's rows at the mass: (kind, index, weight), kind 0–3 = T, ȳ, σ_y, a.

    (T, a) at the mass are interpolated between the groups of the two bins around it
    (:meth:`Extrapolation.group_weights`): each group's parameters carry their share of the
    gradient; ȳ and σ_y are shared by all groups.
    """
    rows = [(2, ex.parameter_index("y_sigma"), 1.0)]
    if not ex.y_mean_fixed:
        rows.append((1, ex.parameter_index("y_mean"), 1.0))
    for g, wg in ex.group_weights(mass).items():
        rows.append((0, ex.parameter_index("T", g), wg))
        if ex.pt_power_fitted:  # the a_g follow the T_g in the covariance
            rows.append((3, ex.parameter_index("a", g), wg))
    return rows


def _nsig_gradient(fiducial: Any, draw: _OutSamples, pt_power_fitted: bool, rows: list,
                   n: int) -> NDArray[np.float64]:  # fmt: skip
    """∂(E_x/f_F)/∂θ per cτ in the covariance's ``rows`` (:func:`_gradient_rows`, each with
    its weight), θ = (T, ȳ, σ_y[, a]): E_x's by reweighting the extrapolated samples (``n``
    the draw's size), f_F's by central differences."""
    mass, (t, mu, s, a_pow), f0 = draw.mass, draw.nominal, draw.f0
    dlp = _dlogp(mass, draw.qt, draw.y, t, mu, s, a_pow)  # (3, n_out): (T, ȳ, σ_y)
    if pt_power_fitted:  # and the m_T power: (4, n_out)
        dlp = np.vstack([dlp, NOMINAL.dlog_pt_da(mass, draw.qt, t, a_pow)])
    e_x = draw.a.sum(axis=0) / n  # (n_ct,)
    de_x = dlp @ draw.a / n  # (3 or 4, n_ct)
    base = np.array([t, mu, s, a_pow])
    df = np.empty(dlp.shape[0])
    for j in range(df.size):
        h = 1e-4 * max(abs(base[j]), 0.1)
        up, dn = base.copy(), base.copy()
        up[j] += h
        dn[j] -= h
        df[j] = (fiducial_fraction(fiducial, mass, tuple(up), draw.inside)
                 - fiducial_fraction(fiducial, mass, tuple(dn), draw.inside)) / (2 * h)  # fmt: skip
    grad = (de_x - np.outer(df, e_x) / f0) / f0  # (3 or 4, n_ct)
    return grad[[j for j, _, _ in rows]] * np.array([wg for _, _, wg in rows])[:, None]


def _yield_cross(ex: Extrapolation, mass: float, q: NDArray, gr: NDArray,
                 n_over_yf: NDArray) -> NDArray[np.float64]:  # fmt: skip
    """2 Cov(ln Y_F(m), ln(N/Y_F)) per cτ: the fit and the fiducial yield share the pairs;
    Y_F(m) log-linear between the bins around m (as
    :meth:`gammastar.source.production.Yields.at` interpolates it); 0 without
    :attr:`Extrapolation.yield_covariance`."""
    cross = np.zeros(n_over_yf.size)
    if ex.yield_covariance is not None:
        c_m = sum(wb * ex.yield_covariance[b] for b, wb in ex.bin_weights(mass))
        with np.errstate(divide="ignore", invalid="ignore"):
            cross = np.where(n_over_yf > 0, 2.0 * (np.asarray(c_m)[q] @ gr) / n_over_yf, 0.0)
    return cross


def _log_fit_variances(steps: _LogSteps, sub: NDArray, d_ext: NDArray) -> tuple[NDArray, NDArray]:
    """(the fit's with the external part, the external σ_y's) variances of ln N: N/Y_F at ±1σ
    along each principal axis of the covariance ``sub`` less δδᵀ, and along ±δ."""
    var_ext = steps.along(d_ext) ** 2
    lam, vec = np.linalg.eigh(sub - np.outer(d_ext, d_ext))
    var_stat = var_ext + sum(
        (steps.along(np.sqrt(lv) * vec[:, j]) ** 2 for j, lv in enumerate(lam) if lv > 0),
        np.zeros(steps.n0.size),
    )
    return var_stat, var_ext


def _log_form_variances(shifts: Mapping[str, NDArray],
                        n_over_yf: NDArray) -> dict[str, NDArray]:  # fmt: skip
    """Per alternative form, ln(N_alt/N)² per cτ (0 where N or N_alt is not positive)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = {k: 1.0 + d / n_over_yf for k, d in shifts.items()}
        return {
            k: np.where((n_over_yf > 0) & (r > 0), np.log(np.where(r > 0, r, 1.0)), 0.0) ** 2
            for k, r in ratio.items()
        }


def nsig_lambda_theta(
    extrapolation: Extrapolation,
    fiducial: Any,
    mass: float,
    kinematics: dict[str, ArrayLike],
    sample: Any,
    ctau: ArrayLike,
    moves: Sequence[Mapping[str, Any]],
    *,
    log: bool = True,
) -> NDArray[np.float64]:
    """The measured λ_θ's 1σ carried to N_sig at one mass, per cτ: :func:`nsig_error_parts`'
    ``lambda_theta`` part alone (arguments as there; ``moves`` from
    :func:`gammastar.yields.uncertainties.lambda_refits_at`), without the fit's other parts.

    Returns:
        The relative 1σ (of ln N_sig with ``log``) per cτ.
    """
    ctau = np.atleast_1d(np.asarray(ctau, dtype=np.float64))
    qt = np.asarray(kinematics["qT"], dtype=np.float64)
    e = np.asarray(kinematics["E"], dtype=np.float64)
    out_mask = np.asarray(kinematics["extrapolated"], dtype=bool)
    a = per_sample_acceptance(sample, ctau)
    ratio = _LambdaDraw(extrapolation, fiducial, mass, qt, e, out_mask, a).ratio
    return _lambda_part(moves, ratio, ctau.size, log)


class _LambdaDraw:
    r"""N′/N per cτ of the λ_θ moves on one draw (:func:`nsig_error_parts` ``lambda_theta``):
    the nominal draw (flow samples in F, the model's outside) reweighted to each moved world,
    its region F′ (``mv["region"]``), its refitted model θ′ (``mv["fit"]``, f′ its fraction in
    F′) and the fiducial yield Y_F′ = Y_F (1 + ``yield_shift``):

    N′/N = [Σ_{F∩F′} r a + (Y_F′ f_F)/(Y_F f′) (Σ_{F′∖F} u a + n (1 − f′) ⟨a⟩_{u, ∉F′})] / T,

    r = A_λ̂/A_λ′ the pairs' own reweighting (flow samples that stay in the region),
    u = p_θ′/p_θ (the model's samples, and the flow's that leave F′, where the model stands
    for the data), ⟨a⟩_{u, ∉F′} the u-weighted mean outside F′ (normalised to the model's
    1 − f′ there exactly), T the same sum at the nominal (1 at no move, exactly). A sample
    changes its role only where F′ differs from F (a flow sample beyond F, where the flow
    leaks, stays the flow's). What the moves share (the nominal region's lookups, the model's
    density) is computed once; a move that changes nothing at the mass (``null`` from
    :func:`gammastar.yields.uncertainties.lambda_refits_at`, and the nominal fit there) gives 1."""

    def __init__(self, ex, fiducial, mass, qt, e, out_mask, a) -> None:
        self.ex, self.mass, self.qt, self.e, self.a = ex, mass, qt, e, a
        self.at = ex.at(mass)
        self.f0, t, mu, s = (float(v) for v in self.at)
        self.nominal = (t, mu, s, float(ex.power_at(mass)))
        self.y = np.arccosh(np.maximum(e / np.sqrt(qt**2 + mass**2), 1.0))
        self.lp = NOMINAL.log_pt(mass, qt, t, self.nominal[3]) + NOMINAL.log_y(self.y, mu, s)
        self.in0 = ~out_mask  # the samples' roles: the flow's (the data's) or the model's
        self.m_s = np.full(qt.shape, mass)
        self.g0 = np.asarray(fiducial.contains(self.m_s, qt, e), dtype=bool)
        self.a0 = fiducial.acceptance.of_kinematics(self.m_s, qt, e)
        one, none = np.ones(qt.size), np.zeros(qt.size, dtype=bool)
        self.t0 = self._total(self.in0, none, ~self.in0, one, one, self.f0, 1.0)

    def _total(self, stay, enter, outside, r, w, f, scale):
        a, n = self.a, self.a.shape[0]
        sw = float(w[outside].sum())
        out = (w[outside] @ a[outside]) / sw * n * (1.0 - f) if sw > 0 else 0.0
        return r[stay] @ a[stay] + scale * (w[enter] @ a[enter] + out)

    def ratio(self, mv: Mapping[str, Any]) -> NDArray[np.float64]:
        ex, mass, qt, e = self.ex, self.mass, self.qt, self.e
        par = _record_params(mv["fit"], ex.mass, mass, self.at, self.nominal[3])
        if par is None:  # no finite refit: the move's yield change alone
            return np.full(self.a.shape[1], 1.0 + float(mv["yield_shift"]))
        f1, t1, mu1, s1, a1 = par
        if not f1 > 0:  # no fraction in the moved region: the move's yield change alone
            return np.full(self.a.shape[1], 1.0 + float(mv["yield_shift"]))
        if mv.get("null") and (f1, t1, mu1, s1, a1) == (self.f0, *self.nominal):
            return np.ones(self.a.shape[1])
        u = np.exp(NOMINAL.log_pt(mass, qt, t1, a1) + NOMINAL.log_y(self.y, mu1, s1) - self.lp)
        region, in0, g0 = mv["region"], self.in0, self.g0
        a1k = region.acceptance.of_kinematics(self.m_s, qt, e)
        if hasattr(region, "min_acceptance"):  # a FiducialRegion: contains() is this lookup
            g1 = a1k >= region.min_acceptance
        else:
            g1 = np.asarray(region.contains(self.m_s, qt, e), dtype=bool)
        leave, enter = in0 & g0 & ~g1, ~in0 & ~g0 & g1
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = self.a0 / a1k
        stay = in0 & ~leave
        r = np.where(stay & np.isfinite(ratio), ratio, 1.0)
        scale = (1.0 + float(mv["yield_shift"])) * self.f0 / f1
        moved = self._total(stay, enter, (~in0 & ~enter) | leave, r, u, f1, scale)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.t0 > 0, moved / np.where(self.t0 > 0, self.t0, 1.0), 1.0)


def _record_params(rec, ex_mass, mass, at, power) -> tuple[float, ...] | None:
    """(f_F, T, ȳ, σ_y, a) of a fit record (:func:`refit`) at ``mass`` (``None``: no finite
    fit); ``at``, ``power``: the nominal's (:meth:`Extrapolation.at`,
    :meth:`Extrapolation.power_at`) for what it lacks."""
    f_a = np.array([np.nan if v is None else v for v in rec["fiducial_fraction"]], float)
    t_a = np.array([np.nan if v is None else v for v in rec["temperature"]], float)
    if f_a.size != ex_mass.size or t_a.size != ex_mass.size:
        raise InputError(f"a refit record has {f_a.size} / {t_a.size} fiducial_fraction / "
                         f"temperature bins, the extrapolation {ex_mass.size}")  # fmt: skip
    ok = np.isfinite(f_a) & np.isfinite(t_a)
    if not np.any(ok):
        return None
    a_alt = float(power)
    p_a = np.array([np.nan if v is None else v for v in rec.get("pt_power") or []], float)
    if p_a.size == ex_mass.size and np.any(np.isfinite(p_a)):
        ok_a = np.isfinite(p_a)
        a_alt = float(np.interp(mass, ex_mass[ok_a], p_a[ok_a]))
    return (float(np.interp(mass, ex_mass[ok], f_a[ok])), float(np.interp(mass, ex_mass[ok], t_a[ok])),
            _finite_or(rec.get("y_mean"), at[2]), _finite_or(rec.get("y_sigma"), at[3]), a_alt)  # fmt: skip


def _finite_or(v: Any, default: float) -> float:
    """``v`` as a float, or ``default`` where it is missing (None) or not finite."""
    return float(v) if v is not None and np.isfinite(float(v)) else float(default)


def _lambda_part(moves, ratio, n_ct: int, log: bool) -> NDArray[np.float64]:
    """:func:`nsig_error_parts`' ``lambda_theta``: per move N′/N (``ratio(move)``, per cτ),
    the moves of one sign in quadrature (relative changes, or logarithms with ``log``),
    (|up| + |down|)/2."""
    side: dict[int, list[NDArray]] = {1: [], -1: []}
    for mv in moves:
        r = np.broadcast_to(np.asarray(ratio(mv), dtype=np.float64), (n_ct,))
        d = np.log(np.maximum(r, 1e-300)) if log else r - 1.0
        side[1 if mv["sign"] > 0 else -1].append(d)
    out = []
    for sgn in (1, -1):
        if not side[sgn]:
            out.append(np.zeros(n_ct))
            continue
        d = np.stack(side[sgn])
        big = np.take_along_axis(d, np.argmax(np.abs(d), axis=0)[None], 0)[0]
        out.append(np.copysign(np.sqrt(np.sum(d**2, axis=0)), big))
    return 0.5 * (np.abs(out[0]) + np.abs(out[1]))


def _form_shifts(ex: Extrapolation, draw: _OutSamples) -> dict[str, NDArray[np.float64]]:
    """Per alternative form of the model, Δ(N/Y_F) per cτ, signed (the sum of their squares is
    the forms' part): each form's own
    E_x,alt/f_alt − E_x/f_F, E_x = (1 − f) 𝓔_out, with f_alt its fit's f_F
    (:attr:`Extrapolation.model_variations`) and 𝓔_out,alt the acceptance of the nominal
    draw's extrapolated samples reweighted by p_alt/p_nom, self-normalised (the alternative's
    normalisation outside F is 1 − f_alt, exactly; a plain reweighted mean would miss the
    heavier-tailed form's tails, where the nominal draw has few samples: −4% of E_x on the
    toy). Forms not in :data:`FORMS` are skipped."""
    out: dict[str, NDArray[np.float64]] = {}
    for name, rec in (ex.model_variations or {}).items():
        form = FORMS.get(name)
        if form is None:
            continue
        d = _record_shift(form, rec, ex.mass, draw)
        if d is not None:
            out[name] = d
    return out


def _record_shift(form, rec, ex_mass, draw: _OutSamples) -> NDArray | None:
    """Δ(N/Y_F) per cτ of one fit record (``fiducial_fraction``, ``temperature`` per mass bin
    ``ex_mass``, ``y_mean``, ``y_sigma``, optionally ``pt_power``) of the model's ``form``
    against the nominal on the ``draw``'s extrapolated samples (:func:`_form_shifts`);
    ``None`` where the record has no finite fit."""
    t, mu, s, a_pow = draw.nominal
    mass, qt, y, a_out, f0 = draw.mass, draw.qt, draw.y, draw.a, draw.f0
    par = _record_params(rec, ex_mass, mass, (f0, t, mu, s), a_pow)
    if par is None:
        return None
    f_alt, t_alt, mu_alt, s_alt, a_alt = par
    lp_nom = NOMINAL.log_pt(mass, qt, t, a_pow) + NOMINAL.log_y(y, mu, s)
    lp = form.log_pt(mass, qt, t_alt, a_alt) + form.log_y(y, mu_alt, s_alt)
    w = np.exp(lp - lp_nom)
    acc_alt = w @ a_out / max(float(w.sum()), 1e-300)  # self-normalised: 𝓔_out,alt
    acc_nom = a_out.mean(axis=0)
    return (1 - f_alt) / f_alt * acc_alt - (1 - f0) / f0 * acc_nom


def _external_response(ex: Extrapolation, steps: Any, sides, q) -> NDArray[np.float64]:
    """The external σ_y's 1σ of ln N from N/Y_F at its two fits (``parameter_sides``, free
    parameters' shifts; ``q`` the covariance rows at the mass): ln N = a z + b z² through
    (z₊, ln N₊), (z₋, ln N₋) and (0, 0), z = the side's σ_y shift / error (±1 unless a bound
    clipped it), and √(a² + 2b²), the sd of a z + b z² over z ~ N(0, 1) (not linearised: ln N
    is markedly concave in σ_y on the mock, docs/validation/uncertainties-and-coverage.md); 0 at a zero error, NaN where
    N/Y_F is undefined at a side (the caller then keeps the linear part)."""
    err = float(ex.y_sigma_external["error"])
    i_s = ex.parameter_index("y_sigma")
    z = [float(sd[i_s]) / err if err > 0 else 0.0 for sd in sides]
    up, dn = (steps.at(np.asarray(sd, dtype=np.float64)[q]) for sd in sides)
    det = z[0] * z[1] * (z[1] - z[0])
    if not (err > 0) or abs(det) < 1e-12:
        return np.zeros_like(up)
    # a z + b z² = ln N at z₊ and z₋ (Cramer's rule)
    a = (up * z[1] ** 2 - dn * z[0] ** 2) / det
    b = (dn * z[0] - up * z[1]) / det
    return np.sqrt(a**2 + 2 * b**2)


class _LogSteps:
    """ln N at parameter steps for :func:`nsig_error_parts` (``log=True``, and an external
    σ_y's two fits in both modes): N/Y_F = 𝓔_in +
    (1 − f_F(θ))/f_F(θ) 𝓔_out(θ), 𝓔_out(θ) the extrapolated samples' acceptance reweighted
    by p_θ/p_θ0 (self-normalised, as :func:`_form_shifts`), f_F by quadrature. A step is
    given in the covariance's rows (``rows``: (kind, index, weight), kind 0–3 = T, ȳ, σ_y,
    a; a group's T and a enter the mass's with its interpolation weight)."""

    def __init__(self, fiducial: Any, draw: _OutSamples, rows: list[tuple[int, int, float]]):
        self.fid, self.mass, self.qt, self.y = fiducial, draw.mass, draw.qt, draw.y
        self.a_out = draw.a
        self.base = np.asarray(draw.nominal, dtype=np.float64)
        self.rows, self.inside = rows, draw.inside  # F on the quadrature grid (_grid_in_f)
        n = draw.out_mask.size
        in_sum = draw.tot * n - draw.a.sum(axis=0)  # the samples inside F: not moved by θ
        self.e_in = in_sum / n / draw.f0  # 𝓔_in (the inside share of the draw is f_F)
        self.lp0 = self._logp(self.base)
        self.n0 = self._n_over_yf(self.base)  # the reweighting's own nominal

    def _logp(self, p):
        t, mu, s, a = p
        return NOMINAL.log_pt(self.mass, self.qt, t, a) + NOMINAL.log_y(self.y, mu, s)

    def _n_over_yf(self, p):
        f = fiducial_fraction(self.fid, self.mass, tuple(p), self.inside)
        if not f > 0:  # F has no area at this mass on the quadrature grid: N/Y_F undefined
            return np.full(np.shape(self.e_in), np.nan)
        lw = self._logp(p) - self.lp0
        w = np.exp(lw - lw.max()) if lw.size else lw
        acc = w @ self.a_out / max(float(w.sum()), 1e-300)
        return self.e_in + (1 - f) / f * acc

    def _step(self, d):
        """The step d of the rows' parameters in (T, ȳ, σ_y, a)."""
        dp = np.zeros(4)
        for (kind, _, wg), dv in zip(self.rows, d, strict=True):
            dp[kind] += wg * dv
        return dp

    def _ln_ratio(self, dp):
        """ln(N/N₀) at base + dp (NaN where N or N₀ is not positive or undefined)."""
        n = self._n_over_yf(self.base + dp)
        ok = (n > 0) & (self.n0 > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(ok, np.log(np.where(ok, n / np.where(ok, self.n0, 1), 1.0)), np.nan)

    def at(self, d):
        """ln(N/N₀) at the step d of the rows' parameters (NaN where N or N₀ is not positive
        or undefined)."""
        return self._ln_ratio(self._step(d))

    def along(self, d):
        """Half the change of ln N between the steps +d and −d of the rows' parameters (0
        where N is not positive or undefined at either)."""
        dp = self._step(d)
        if not np.any(dp):
            return np.zeros(self.n0.shape)
        up, dn = self._ln_ratio(dp), self._ln_ratio(-dp)
        ok = np.isfinite(up) & np.isfinite(dn)
        return np.where(ok, 0.5 * (np.where(ok, up, 0.0) - np.where(ok, dn, 0.0)), 0.0)


class RecordingSampler:
    """A sampler that keeps its last output (``last``: the draw's kinematics, in the samples'
    order), the ``kinematics`` that :func:`nsig_relative_error` needs beside the drawn
    :class:`~gammastar.reach.acceptance.KinematicSample`."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.last = inner, None
        self.mass_range = inner.mass_range

    def sample(self, mass: float, n: int, seed: int | None = None) -> dict[str, Any]:
        self.last = self.inner.sample(mass, n, seed=seed)
        return self.last


class ExtrapolatedSampler:
    """A′ kinematics over the full phase space: a fiducial sampler (the flow) inside the
    fiducial region, the fitted model outside it.

    ``sample(mass, n, seed)`` returns ``{"qT", "E", "extrapolated"}``: a fraction f_F(m) of
    the samples from ``inside`` (``extrapolated`` False), the rest drawn from the model and
    kept only outside the region (``extrapolated`` True). ``inside=None``: the model
    everywhere (every sample labelled extrapolated).

    ``seam`` (GeV; a both-channels run, ``yields.json`` ``extrapolation.seam``): below it
    ``inside`` is the full phase space (the flow of the full-phase-space channel) and samples
    it alone, nothing labelled extrapolated; at and above it as above, the ``inside``
    samples kept inside F only (accept–reject: the stitched flow leaks out of F near the
    seam). The mass range then starts at ``inside``'s lower end rather than at the
    extrapolation's first bin edge. ``inside=None`` with a seam (no flow): below the seam the
    analytic sampler (:class:`gammastar.physics.sampling.ParametricSampler`) with the fitted
    model's rapidity at the seam (ȳ, the beam's c.m. rapidity, and σ_y) and the
    docs/explanation/physics.md default T, every sample labelled extrapolated (kinematics from a
    model, not the data), as the fitted model's are above it.
    """

    def __init__(
        self, inside: Any, extrapolation: Extrapolation, fiducial: Any, seam: float | None = None
    ) -> None:
        self.inside = inside
        self.extrapolation = extrapolation
        self.fiducial = fiducial
        self.seam = None if seam is None else float(seam)
        lo, hi = float(extrapolation.edges[0]), float(extrapolation.edges[-1])
        rng = getattr(inside, "mass_range", None)
        meta = getattr(inside, "meta", None)
        if rng is None and isinstance(meta, dict) and "mass_range" in meta:
            rng = meta["mass_range"]
        if rng is None and inside is None and self.seam is not None:

            rng = ParametricSampler().mass_range  # below the seam: the analytic sampler's
        if rng is not None:
            lo = float(rng[0]) if self.seam is not None else max(lo, float(rng[0]))
            hi = min(hi, float(rng[1]))
        self.mass_range = (lo, hi)
        self.model = MODEL_NAME

    def sample(self, mass: float, n: int, seed: int | None = None) -> dict[str, NDArray]:

        ss = np.random.SeedSequence(seed)
        s_split, s_in, s_out = ss.spawn(3)
        if self.seam is not None and mass < self.seam and self.inside is None:
            # no flow: the analytic sampler below the seam, a model: labelled; its rapidity the
            # fitted model's at the seam (ȳ the beam's y_cm: a 70 GeV beam's is 2.50, not the
            # 400 GeV default 3.37), its T the docs/explanation/physics.md default
            _, _, y_mean, y_sigma = self.extrapolation.at(np.array([self.seam]))
            below = ParametricSampler(y_mean=float(y_mean[0]), y_sigma=float(y_sigma[0]))
            out = below.sample(mass, n, seed=int(s_out.generate_state(1)[0]))
            return {**out, "extrapolated": np.ones(len(out["qT"]), dtype=bool)}
        if self.seam is not None and mass < self.seam:  # full phase space: the flow alone
            got = self.inside.sample(mass, n, seed=int(s_in.generate_state(1)[0]))
            q = np.asarray(_np(got["qT"]), dtype=np.float64).ravel()
            e = np.asarray(_np(got["E"]), dtype=np.float64).ravel()
            return {"qT": q, "E": e, "extrapolated": np.zeros(q.size, dtype=bool)}
        f, t, mu, s = (float(x) for x in self.extrapolation.at(mass))
        power_at = getattr(self.extrapolation, "power_at", None)  # a duck-typed model: a = 0
        a_pow = 0.0 if power_at is None else float(power_at(mass))
        if self.inside is None:
            out = ParametricSampler(t, mu, s, power=a_pow).sample(
                mass, n, seed=int(s_out.generate_state(1)[0])
            )
            return {**out, "extrapolated": np.ones(n, dtype=bool)}
        n_in = int(np.random.default_rng(s_split).binomial(n, min(max(f, 0.0), 1.0)))
        parts_q, parts_e = [], []
        if n_in and self.seam is not None:  # a stitched flow: its samples inside F only
            parts_q, parts_e = self._inside_f(mass, n_in, np.random.default_rng(s_in))
        elif n_in:
            got = self.inside.sample(mass, n_in, seed=int(s_in.generate_state(1)[0]))
            parts_q.append(np.asarray(_np(got["qT"]), dtype=np.float64).ravel())
            parts_e.append(np.asarray(_np(got["E"]), dtype=np.float64).ravel())
        need = n - n_in
        model = ParametricSampler(t, mu, s, power=a_pow)
        rng_out = np.random.default_rng(s_out)
        q_out, e_out, have = [], [], 0
        for _ in range(1000):
            if have >= need:
                break
            k = max(2 * (need - have), 1000)
            got = model.sample(mass, k, seed=int(rng_out.integers(2**63)))
            keep = ~self.fiducial.contains(np.full(k, mass), got["qT"], got["E"])
            q_out.append(got["qT"][keep])
            e_out.append(got["E"][keep])
            have += int(keep.sum())
        if have < need:
            raise InputError(
                f"extrapolation: the model has (almost) nothing outside the fiducial region at "
                f"m = {mass:g} GeV"
            )
        q = np.concatenate([*parts_q, np.concatenate(q_out)[:need]]) if need else parts_q[0]
        e = np.concatenate([*parts_e, np.concatenate(e_out)[:need]]) if need else parts_e[0]
        flag = np.concatenate([np.zeros(n_in, dtype=bool), np.ones(need, dtype=bool)])
        return {"qT": q, "E": e, "extrapolated": flag}

    def _inside_f(self, mass: float, n: int, rng: Any) -> tuple[list, list]:
        """``n`` samples of ``inside`` that lie inside F (:func:`sample_accepted`): a flow
        stitched at the seam learned F above it, but one ln m context cannot follow the step at
        m_s, so part of its samples above the seam leak out of F (up to about
        half on the demo); they would count the outside twice, beside the model's."""
        q, e = sample_accepted(
            lambda k, seed: self.inside.sample(mass, k, seed=seed),
            n,
            rng,
            lambda q, e: self.fiducial.contains(np.full(q.size, mass), q, e),
            f"extrapolation: at m = {mass:g} GeV",
        )
        return [q], [e]


def sample_accepted(
    sample: Any, n: int, rng: np.random.Generator, keep: Any, where: str
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``n`` samples (q_T, E) of ``sample(k, seed)`` for which ``keep(qT, E)`` holds:
    accept–reject in batches of max(2(n − kept), 1000), each seeded from ``rng``.

    Raises:
        InputError: fewer than ``n`` kept after 100 batches (``where`` opens the message).

    Example:
        >>> draw = lambda k, seed: {"qT": np.random.default_rng(seed).random(k), "E": np.ones(k)}
        >>> q, e = sample_accepted(draw, 50, np.random.default_rng(1), lambda q, e: q < 0.5, "")
        >>> q.size, bool(np.all(q < 0.5))
        (50, True)
    """
    qs, es, have = [], [], 0
    for _ in range(100):
        if have >= n:
            break
        got = sample(max(2 * (n - have), 1000), int(rng.integers(2**63)))
        q = np.asarray(_np(got["qT"]), dtype=np.float64).ravel()
        e = np.asarray(_np(got["E"]), dtype=np.float64).ravel()
        k = np.asarray(keep(q, e), dtype=bool)
        qs.append(q[k])
        es.append(e[k])
        have += int(k.sum())
    if have < n:
        raise InputError(f"{where}: the flow has (almost) no samples inside the fiducial region")
    return np.concatenate(qs)[:n], np.concatenate(es)[:n]


def _np(x: Any) -> Any:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else x
