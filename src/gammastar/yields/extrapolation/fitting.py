"""The fit of the extrapolation model to the acceptance-corrected fiducial pairs, per mass range
(:class:`FitSettings`, :func:`fit_extrapolation`): groups of mass bins, the joint fit, the error
methods and the model variations, assembled into an :class:`Extrapolation`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.config import AnalysisConfig
from gammastar.core.threads import thread_map
from gammastar.errors import InputError
from gammastar.physics.kinematics import cm_rapidity
from gammastar.yields.extrapolation.errors import (
    _external_shift,
    _external_sides,
    _external_sigma,
    _fiducial_grids,
    _fraction_errors,
    _kish_profile,
    _model_variations,
    _pt_power,
)
from gammastar.yields.extrapolation.fit import (
    _Fit,
    _fit_joint,
    _free,
    _Group,
    _group_params,
    _Pairs,
    _sandwich,
)
from gammastar.yields.extrapolation.model import (
    MIN_EFF_PAIRS,
    fiducial_fraction,
)
from gammastar.yields.extrapolation.reference import _Reference
from gammastar.yields.extrapolation.result import (
    _OTHER,
    ERROR_METHODS,
    Extrapolation,
)

__all__ = ["FitSettings", "fit_extrapolation"]


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
    def from_config(cls, cfg: AnalysisConfig) -> FitSettings:
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
    chosen, fitted, pair_bins = [], [], []
    for g in groups:
        k = (idx >= g[0]) & (idx <= g[-1])
        ws, ws2 = float(np.sum(w[k])), float(np.sum(w[k] ** 2))
        if ws <= 0:
            continue
        chosen.append((k, float(np.sum(w[k] * m[k]) / ws), settings.seed + len(chosen)))
        pair_bins.append(idx[k])
        fitted.append((g, ws * ws / ws2))
    # the groups' reference samples side by side (each of its own seed: the same samples)
    refs = thread_map(lambda job: _Reference(fiducial, job[1], job[2]), chosen)
    data = [_Group((m[k], pt[k], y[k], w[k], ref))
            for (k, _, _), ref in zip(chosen, refs, strict=True)]  # fmt: skip
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
