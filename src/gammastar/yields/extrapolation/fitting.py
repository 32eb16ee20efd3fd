"""The fit of the extrapolation model to the acceptance-corrected fiducial pairs, per mass range
(:class:`FitSettings`, :func:`fit_extrapolation`): groups of mass bins, the joint fit, the error
methods and the model variations, assembled into an :class:`Extrapolation`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.config import AnalysisConfig
from gammastar.core.threads import thread_map
from gammastar.errors import InputError
from gammastar.physics.constants import mass
from gammastar.physics.kinematics import cm_rapidity
from gammastar.yields.extrapolation.errors import (
    external_shift,
    external_sides,
    external_sigma,
    fiducial_grids,
    fit_model_variations,
    fraction_errors,
    kish_profile_error,
    pt_power_of,
)
from gammastar.yields.extrapolation.layout import Layout
from gammastar.yields.extrapolation.likelihood import (
    FitGroup,
    FitPairs,
    JointFit,
    fit_joint,
    free_parameters,
    group_params,
    sandwich_and_cross,
)
from gammastar.yields.extrapolation.model import (
    FALLOFF,
    MIN_EFF_PAIRS,
    NOMINAL,
    ModelForm,
    fiducial_fraction,
)
from gammastar.yields.extrapolation.reference import ReferenceSample
from gammastar.yields.extrapolation.result import (
    ERROR_METHODS,
    OTHER_METHOD,
    Extrapolation,
)
from gammastar.yields.extrapolation.template import TemplateSample

__all__ = ["Y_SIGMA_MARGIN", "FitSettings", "fit_extrapolation"]

log = logging.getLogger(__name__)


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
    (:func:`fit_model_variations`: each form of :data:`MODEL_VARIATIONS` fitted to the same
    pairs, its f_F reproduced by a shift δ of the nominal parameters, δδᵀ added to the
    covariance); the sandwich alone stays in ``covariance_stat``."""
    y_sigma: tuple[float, float] | None = None
    """``(value, error)``: σ_y fixed to an external value instead of fitted (the
    configuration's ``yields.extrapolation_y_sigma``), its error propagated as the shift of
    the parameters when σ_y moves by it (the T_g refitted at σ_y ± error,
    :func:`external_shift`, added to the covariance and to ``covariance_stat``). Why: F sees
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

    y_mean_auto: bool = False
    """With ``y_mean`` given: fit ȳ first, and keep the fit where the data constrain it
    better than the stated prior, i.e. its 1σ (the sandwich's, with the external σ_y's shift
    when σ_y is external) is below :attr:`y_mean_error`; else fix it at ``y_mean``
    (:func:`_decide_y_mean`; the decision in :attr:`Extrapolation.y_mean_rule`)."""
    y_mean_error: float = 0.0
    """The 1σ of a fixed ``y_mean`` (0: exact): the model refitted at ȳ = ``y_mean`` − this
    (a nuclear target shifts the rapidity centre backward of the beam–nucleon c.m.) enters
    the error as a model variation (``y_mean_backward`` of :func:`fit_model_variations`); with
    :attr:`y_mean_auto` also the rule's threshold."""
    beam_energy: float | None = None
    """The beam energy (GeV): with it the ``xf_suppressed`` form, the model × (1 −
    E/E_beam)^n, is one more model variation (:data:`MODEL_VARIATIONS`)."""
    falloff: tuple[float, float] | None = None
    """``(n, error)``: the model × (1 − E/E_beam)^n at :attr:`beam_energy`
    (``yields.extrapolation_falloff``; :meth:`ModelForm.with_falloff`), the nominal at n ∓ error
    two model variations; ``None``: no fall-off (``xf_suppressed`` a variation instead)."""
    falloff_source: str | None = None
    """Where the fall-off comes from (recorded)."""
    falloff_dalitz: bool = True
    """With a fall-off: its n is the parent mesons', and below the η mass, where the γ* come
    from the two-body Dalitz decays π⁰, η → γγ*, the γ* fall with n + 1
    (:attr:`ModelForm.dalitz_mass`); ``False``: n at every mass."""
    template: TemplateSample | None = None
    """A generator's γ* (``yields.extrapolation_template``): with it the
    ``generator_template`` form, the model × the generator's rapidity shape on the fit's mass
    bins (:class:`~gammastar.yields.extrapolation.template.RapidityTemplate`), is one more
    model variation."""

    @classmethod
    def from_config(cls, cfg: AnalysisConfig) -> FitSettings:
        """The yields stage's settings: ȳ as ``yields.extrapolation_y_mean`` says (fixed at
        the beam–nucleon c.m. rapidity from ``beam.energy``, fitted, or by the rule of
        :attr:`y_mean_auto`; docs/explanation/method.md "The rapidity centre"),
        ``yields.extrapolation_y_mean_error``, ``yields.extrapolation_y_sigma`` and
        ``yields.extrapolation_pt_power``."""
        ys = cfg.yields.extrapolation_y_sigma  # σ_y from outside, when configured
        mode = cfg.yields.extrapolation_y_mean
        given = cfg.yields.extrapolation_falloff
        fo = FALLOFF if given == "measured" else given
        assert not isinstance(fo, str)
        return cls(
            y_mean=None if mode == "fitted" else cm_rapidity(cfg.beam.energy),
            y_mean_auto=mode == "auto",
            y_mean_error=cfg.yields.extrapolation_y_mean_error,
            y_sigma=None if ys is None else (ys.value, ys.error),
            y_sigma_source=None if ys is None else ys.source,
            pt_power=cfg.yields.extrapolation_pt_power,
            beam_energy=cfg.beam.energy,
            falloff=None if fo is None else (float(fo.value), float(fo.error)),
            falloff_source=None if fo is None else fo.source,
            template=TemplateSample.from_config(cfg),
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
    power = pt_power_of(settings.pt_power)
    form = _nominal_form(settings)
    edges = np.asarray(edges, dtype=np.float64)
    nb = len(edges) - 1
    pairs = _fit_pairs(m, pt, y, weight, edges)
    groups = _mass_groups(pairs, nb)
    rule = None
    if settings.y_mean_auto and settings.y_mean is not None:
        settings, rule, fit = _decide_y_mean(pairs, groups, fiducial, edges, settings, power, form)
    else:
        fit = _joint_fit(pairs, groups, fiducial, edges, (settings, power), form=form)
    centre = 0.5 * (edges[1:] + edges[:-1])
    y_mean, method = settings.y_mean, settings.error_method
    errs, cov, cross = _error_methods(fit, fiducial, centre, settings)
    values = _bin_values(fit, fiducial, centre, errs)
    frac_err, d_sigma = errs[method]
    alt = errs.get(OTHER_METHOD[method])
    cov_stat = err_stat = variations = None
    if settings.model_variations and method == "sandwich" and cov is not None:
        cov_stat, err_stat = cov, frac_err
        template = _template_on(settings.template, edges)
        variations, cov, frac_err, d_sigma = _with_model_variations(
            fit, fiducial, centre, cov, y_mean, settings.y_mean_error, settings.beam_energy,
            template, 0.0 if settings.falloff is None else settings.falloff[1])
    temp, mu, sig, pt_pow, frac, neff = values
    return Extrapolation(centre, edges, frac, temp, mu, sig, np.nan_to_num(neff),
                         fiducial.as_dict(), frac_err, d_sigma, y_mean is not None,
                         method, None if alt is None else alt[0],
                         None if alt is None else alt[1], cov,
                         None if cov is None else _bin_groups(fit.fitted, nb), cov_stat, err_stat,
                         variations, fit.external, pt_pow, fit.power is None,
                         cross, rule, _falloff_record(form, settings))  # fmt: skip


def _nominal_form(settings: FitSettings) -> ModelForm:
    """The fitted form: the nominal, × the fall-off at the beam energy where the settings
    have one.

    Raises:
        InputError: a fall-off without the beam energy, or a negative n.
    """
    if settings.falloff is None:
        return NOMINAL
    n, err = settings.falloff
    if settings.beam_energy is None:
        raise InputError("extrapolation: a fall-off (1 - E/E_beam)^n needs beam.energy")
    if not (n >= 0 and err >= 0):
        raise InputError(f"extrapolation: the fall-off's n and error must be >= 0, not {n} +- {err}")
    dalitz = mass("eta") if settings.falloff_dalitz else None
    return NOMINAL.with_falloff(n, settings.beam_energy, dalitz)


def _falloff_record(form: ModelForm, settings: FitSettings) -> dict[str, Any] | None:
    """``yields.json`` ``extrapolation.falloff``: ``{n, error, beam_energy, source}``, and
    ``dalitz_mass`` where the γ* fall with n + 1 below it."""
    if settings.falloff is None or form.beam_energy is None:
        return None
    out = {"n": float(form.x_power), "error": float(settings.falloff[1]),
           "beam_energy": float(form.beam_energy),
           "source": settings.falloff_source or "not stated"}  # fmt: skip
    if form.dalitz_mass is not None:
        out["dalitz_mass"] = form.dalitz_mass
    return out


def _template_on(sample: TemplateSample | None, edges: NDArray) -> Any:
    """The generator template's table on the fit's mass bins; ``None`` without a template,
    or, with a warning, where the generator has too few γ* in these bins (a template without
    the low masses of the model below the seam: the form is left out of that fit only)."""
    if sample is None:
        return None
    try:
        return sample.on(edges)
    except InputError as err:
        log.warning("%s: the generator_template form is left out of this fit", err)
        return None


def _fit_pairs(m: ArrayLike, pt: ArrayLike, y: ArrayLike, weight: ArrayLike,
               edges: NDArray) -> FitPairs:  # fmt: skip
    """The pairs the fit sees (non-zero weight, finite rapidity, p_T > 0) and their bins.

    Raises:
        InputError: no such pair.
    """
    m_a = np.asarray(m, dtype=np.float64)
    pt_a = np.asarray(pt, dtype=np.float64)
    y_a = np.asarray(y, dtype=np.float64)
    w_a = np.asarray(weight, dtype=np.float64)
    use = (w_a != 0) & np.isfinite(y_a) & (pt_a > 0)
    if not np.any(use):
        raise InputError("extrapolation: no pair inside the fiducial region to fit")
    m_a = m_a[use]
    return FitPairs(m_a, pt_a[use], y_a[use], w_a[use],
                    np.searchsorted(edges, m_a, side="right") - 1)  # fmt: skip


def _mass_groups(pairs: FitPairs, nb: int) -> list[list[int]]:
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


def _decide_y_mean(pairs: FitPairs, groups: list[list[int]], fiducial: Any, edges: NDArray,
                   settings: FitSettings, power: float | None, form: ModelForm = NOMINAL
                   ) -> tuple[FitSettings, dict[str, Any], JointFit]:  # fmt: skip
    """The rule of :attr:`FitSettings.y_mean_auto`: ȳ fitted with the other parameters, its
    1σ from the sandwich covariance (and, with an external σ_y, the shift of the fitted ȳ
    when σ_y moves by its error, added in quadrature: the fiducial data see the slope of
    dN/dy, (ȳ − y)/σ_y², so the centre they give moves with the width assumed); the fit is
    kept where that 1σ is below :attr:`FitSettings.y_mean_error` (the data say more than the
    prior), else ȳ is fixed at :attr:`FitSettings.y_mean` with that error. Where ȳ is
    fitted and σ_y external, σ_y is fitted too where the data constrain it better than its
    source (:func:`_decide_y_sigma`; ``y_sigma`` in the record).

    Returns:
        (the settings to fit with, the record ``{rule, y_mean_fitted, y_mean_fitted_err,
        y_mean_fixed, threshold, decision[, y_sigma]}`` (the fitted ȳ and its error at the
        external σ_y), the fit made with them).
    """
    if settings.y_mean is None:
        raise ValueError("y_mean_auto: the rule needs the fixed centre y_mean")
    free = replace(settings, y_mean=None, y_mean_auto=False)
    fit_free = _joint_fit(pairs, groups, fiducial, edges, (free, power), form=form)
    ext = fit_free.external
    cov, _ = sandwich_and_cross(fit_free.data, fit_free.x, None, sigma_fixed=ext is not None,
                                power=power, form=form)  # fmt: skip
    var = float(cov[0, 0])
    if ext is not None and ext["error"] > 0:
        hi, lo = external_sides(fit_free.data, fit_free.x, None, ext["error"], power, form)
        var += (0.5 * float(hi[0] - lo[0])) ** 2
        fit_free = fit_free._replace(sides=(hi, lo))  # the error's own fits (_error_methods)
    err = math.sqrt(max(var, 0.0))
    ok = bool(np.isfinite(err) and err < settings.y_mean_error)
    y_fit, width = float(fit_free.x[0]), None
    if ok and ext is not None:  # the width too, where the data say more than its source
        width, fit_width = _decide_y_sigma(pairs, groups, fiducial, edges, free, power, fit_free)
        if width["decision"] == "fitted":
            free, fit_free = replace(free, y_sigma=None, y_sigma_source=None), fit_width
    record = {
        "rule": "auto: the fitted rapidity centre is kept where its 1 sigma (sandwich, with the "
        "external sigma_y's shift) is below the prior's error, else it is fixed at the beam's "
        "c.m. rapidity with that error",
        "y_mean_fitted": y_fit,
        "y_mean_fitted_err": err,
        "y_mean_fixed": float(settings.y_mean),
        "threshold": float(settings.y_mean_error),
        "decision": "fitted" if ok else "fixed",
        **({} if width is None else {"y_sigma": width}),
    }
    if ok:
        return free, record, fit_free
    fixed = replace(settings, y_mean_auto=False)
    return fixed, record, _joint_fit(pairs, groups, fiducial, edges, (fixed, power),
                                     data=fit_free.data, form=form)  # fmt: skip


Y_SIGMA_MARGIN = 3.0
"""How much better than its external source the data must fix σ_y for the rule to fit it: the
sandwich holds the pairs' statistics only, while a 1% distortion of the weighted pairs'
rapidity inside F (the acceptance correction's) moves the fitted σ_y by ≈ 0.3
(docs/explanation/method.md "σ_y from outside"); on the NA60-like mock at 0.4 × the demo's
size the fitted σ_y is 1.03 ± 0.18 against the generator's 1.2."""


def _decide_y_sigma(pairs: FitPairs, groups: list[list[int]], fiducial: Any, edges: NDArray,
                    settings: FitSettings, power: float | None, fit_ext: JointFit
                    ) -> tuple[dict[str, Any], JointFit]:  # fmt: skip
    """With ȳ fitted by :func:`_decide_y_mean` and an external σ_y: σ_y fitted too (with ȳ),
    kept where its sandwich 1σ is below the external error / :data:`Y_SIGMA_MARGIN` (the data
    constrain the width clearly better than its source), the external value otherwise.
    Returns the record ``{y_sigma_fitted, y_sigma_fitted_err, threshold, decision}`` and the
    free fit."""
    if fit_ext.external is None:
        raise ValueError("the width's rule needs an external sigma_y")
    threshold = float(fit_ext.external["error"]) / Y_SIGMA_MARGIN
    # σ_y's sandwich 1σ at the external width's fit first: where it is far above the
    # threshold the width's own fit cannot pass, and is not made
    cov0, _ = sandwich_and_cross(fit_ext.data, fit_ext.x, None, sigma_fixed=False, power=power,
                                 form=fit_ext.form)  # fmt: skip
    err0 = math.sqrt(max(float(cov0[1, 1]), 0.0))
    if not err0 < 2.0 * threshold:
        return {"y_sigma_fitted": None, "y_sigma_fitted_err": err0, "threshold": threshold,
                "decision": "external", "note": "error at the external width's fit: no fit "
                "of the width made (more than twice the threshold)"}, fit_ext  # fmt: skip
    both = replace(settings, y_sigma=None, y_sigma_source=None)
    fit = _joint_fit(pairs, groups, fiducial, edges, (both, power), data=fit_ext.data,
                     form=fit_ext.form)  # fmt: skip
    cov, _ = sandwich_and_cross(fit.data, fit.x, None, sigma_fixed=False, power=power, form=fit.form)
    err = math.sqrt(max(float(cov[1, 1]), 0.0))
    ok = bool(np.isfinite(err) and err < threshold)
    return {"y_sigma_fitted": float(fit.x[1]), "y_sigma_fitted_err": err,
            "threshold": threshold, "decision": "fitted" if ok else "external"}, fit  # fmt: skip


def _joint_fit(pairs: FitPairs, groups: list[list[int]], fiducial: Any, edges: NDArray,
               how: tuple[FitSettings, float | None], data: list | None = None,
               form: ModelForm = NOMINAL) -> JointFit:  # fmt: skip
    """Every group with a positive weighted sum fitted jointly (:func:`fit_joint`); ``how``:
    the settings and the p_T form's power (:func:`pt_power_of`); ``data``: the groups of an
    earlier fit of the same pairs (their reference samples reused); ``form``: the fitted form.

    Raises:
        InputError: no group to fit.
    """
    m, pt, y, w, idx = pairs
    settings, power = how
    chosen: list[tuple[NDArray[np.bool_], float, int]] = []
    fitted: list[tuple[list[int], float]] = []
    pair_bins: list[NDArray[np.intp]] = []
    for g in groups:
        k = (idx >= g[0]) & (idx <= g[-1])
        ws, ws2 = float(np.sum(w[k])), float(np.sum(w[k] ** 2))
        if ws <= 0:
            continue
        chosen.append((k, float(np.sum(w[k] * m[k]) / ws), settings.seed + len(chosen)))
        pair_bins.append(idx[k])
        fitted.append((g, ws * ws / ws2))
    if data is None:
        # the groups' reference samples side by side (each of its own seed: the same samples)
        refs = thread_map(lambda job: ReferenceSample(fiducial, job[1], job[2]), chosen)
        data = [FitGroup((m[k], pt[k], y[k], w[k], ref))
                for (k, _, _), ref in zip(chosen, refs, strict=True)]  # fmt: skip
    if not data:
        raise InputError("extrapolation: no mass range with a positive weighted sum to fit")
    start, y_mean = settings.start, settings.y_mean
    if y_mean is not None:
        start = (start[0], float(y_mean), start[2])
    external = external_sigma(settings.y_sigma, settings.y_sigma_source)
    if external is not None:
        start = (start[0], start[1], external["value"])
    x, nll0 = fit_joint(data, (*start[:3], 0.0 if power is None else power), mu_fixed=y_mean,
                         sigma=None if external is None else external["value"],
                         power=power, form=form)  # fmt: skip
    centre = 0.5 * (edges[1:] + edges[:-1])
    inside = fiducial_grids(fiducial, centre, fitted)
    return JointFit(data, fitted, pair_bins, x, nll0, external, power, inside, form=form)


def _error_methods(fit: JointFit, fiducial: Any, centre: NDArray, settings: FitSettings
                   ) -> tuple[dict[str, tuple[NDArray, float]], NDArray | None, Any]:  # fmt: skip
    """f_F's 1σ per bin and δσ_y of the quoted method (and of the other one with
    ``compare``); the sandwich's covariance (with an external σ_y's shift) and its
    cross term, or ``None``. An external σ_y's shifts are recorded in ``fit.external``."""
    data, fitted, x, external, power = fit.data, fit.fitted, fit.x, fit.external, fit.power
    inside = fit.inside
    y_mean, method = settings.y_mean, settings.error_method
    # the fits at an external σ_y ± its error, shared by both error methods (the rule's, if made)
    sides = None if external is None else fit.sides
    if external is not None and sides is None:
        sides = external_sides(data, x, y_mean, external["error"], power, fit.form)
    errs: dict[str, tuple[NDArray, float]] = {}
    cov = cross = None
    for meth in (method, OTHER_METHOD[method]) if settings.compare else (method,):
        if meth == "sandwich":
            cov, cross = sandwich_and_cross(data, x, y_mean, sigma_fixed=external is not None,
                                   power=power, bins=fit.pair_bins,
                                   n_bins=len(centre), form=fit.form)  # fmt: skip
            if external is not None and sides is not None:  # sides: made with the external
                d = external_shift(y_mean, sides)
                external["parameter_shift"] = d.tolist()
                # each side's own shift: N_sig's response evaluated at them, not linearised
                x0 = free_parameters(x, y_mean)
                external["parameter_sides"] = [(free_parameters(sd, y_mean) - x0).tolist() for sd in sides]
                cov = cov + np.outer(d, d)
            s_idx = Layout.of(len(fitted), y_mean, power=power).index("y_sigma")
            errs[meth] = (fraction_errors(fiducial, centre, fitted, x, cov, y_mean, inside,
                                           power, fit.form),
                          math.sqrt(max(float(cov[s_idx, s_idx]), 0.0)))  # fmt: skip
        else:
            ext = None if external is None else (external["error"], sides)  # the same fits
            errs[meth] = kish_profile_error(fit, fiducial, centre, y_mean, ext)
    return errs, cov, cross


def _bin_values(fit: JointFit, fiducial: Any, centre: NDArray,
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
        par = group_params(fit.x, k, len(fit.fitted), fit.power)
        for i in g:
            temp[i], mu[i], sig[i], pt_pow[i] = par
            neff[i] = n_eff
            frac[i] = fiducial_fraction(fiducial, float(centre[i]), par, fit.inside[i], fit.form)
    ok = np.isfinite(frac)
    if not np.any(ok):
        raise InputError("extrapolation: the fit failed in every mass bin")
    for a_ in (temp, mu, sig, pt_pow, frac, *(e for e, _ in errs.values())):
        a_[~ok] = np.interp(centre[~ok], centre[ok], a_[ok])  # a failed group: the nearest
    return temp, mu, sig, pt_pow, frac, neff


def _with_model_variations(fit: JointFit, fiducial: Any, centre: NDArray, cov: NDArray,
                           y_mean: float | None, y_mean_error: float = 0.0,
                           beam_energy: float | None = None, template: Any = None,
                           falloff_error: float = 0.0
                           ) -> tuple[Any, NDArray, NDArray, float]:  # fmt: skip
    """The model's form added to the sandwich (:func:`fit_model_variations`; with a fixed ȳ of
    error ``y_mean_error`` > 0 also the refit at ȳ − that error).

    Returns:
        (the variations' record, the covariance with their shifts, f_F's 1σ per bin from it,
        δσ_y).
    """
    variations, shifts = fit_model_variations(fit, fiducial, centre, y_mean, y_mean_error,
                                           beam_energy, template, falloff_error)
    cov = cov + sum((np.outer(d, d) for d in shifts), np.zeros_like(cov))
    frac_err = fraction_errors(fiducial, centre, fit.fitted, fit.x, cov, y_mean, fit.inside,
                                fit.power, fit.form)  # fmt: skip
    s_idx = Layout.of(len(fit.fitted), y_mean, power=fit.power).index("y_sigma")
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
