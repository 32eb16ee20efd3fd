"""The N_sig error where the model gives every A′ (below a both-channels run's seam:
:func:`nsig_full_space_error`), and the arm's model normalised in F (:func:`arm_in_fiducial`);
:func:`gammastar.yields.extrapolation.nsig.nsig_reach_error` chooses between them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.errors import InputError
from gammastar.yields.extrapolation.model import fiducial_fraction, grid_in_f
from gammastar.yields.extrapolation.nsig.direct import FullSpaceDraw
from gammastar.yields.extrapolation.nsig.draw import (
    KISH_MIN,
    Redraw,
    per_sample_acceptance,
    reweight,
    sample_weight,
)
from gammastar.yields.extrapolation.nsig.forms import (
    combine_form_variances,
    record_params,
    signed_form_variances,
    variation_form,
)
from gammastar.yields.extrapolation.nsig.steps import gradient_rows
from gammastar.yields.extrapolation.result import Extrapolation

__all__ = ["arm_in_fiducial", "nsig_full_space_error"]


def nsig_full_space_error(
    extrapolation: Extrapolation, mass: float, kinematics: dict[str, ArrayLike], sample: Any,
    ctau: ArrayLike, *, redraw: Redraw | None = None, seed: int | None = None,
    e_max: float | None = None,
) -> dict[str, NDArray[np.float64]]:  # fmt: skip
    r"""The model's 1σ of ln N_sig per cτ where every A′ comes from it and the yield does not
    depend on it: below a both-channels run's seam (the full-phase-space channel's yield, the
    model fitted below the seam, ``yields.json`` ``extrapolation.below_seam``), N = Y·𝓔(θ),
    so δ ln N = δ ln 𝓔 (no f_F term, unlike :func:`nsig_error_parts`).

    𝓔(θ)/𝓔(θ₀) by self-normalised reweighting of the draw, Σ wᵢaᵢ/Σ wᵢ ÷ mean a, wᵢ =
    p_θ/p_θ₀: ``fit`` from ±1σ steps along the principal axes of the statistical covariance
    (:attr:`Extrapolation.covariance_stat`, else :attr:`Extrapolation.covariance`) at the
    mass's rows (:func:`gradient_rows`), half the difference of ln 𝓔 per axis in quadrature;
    ``forms``, each alternative form's |ln 𝓔_alt/𝓔| at its own fit
    (:attr:`Extrapolation.model_variations`) in quadrature, ``forms_up``/``forms_down`` by
    its sign (:func:`signed_form_variances`). Where a form's reweighted
    contributions have a Kish effective size below :data:`KISH_MIN`, its ratio comes from a
    direct draw of the form and of the nominal over the full phase space through ``redraw``
    (same seed: common random numbers), NaN where that does not resolve N either (and without
    ``redraw``); ``forms_unresolved`` 1 there. ``e_max``: the sampler's energy bound
    (the direct draws truncated as the nominal's).

    Returns:
        ``{"fit", "forms", "forms_up", "forms_down", "forms_unresolved"}``, each per cτ (1σ of ln N; the flag 0/1).

    References:
        The reweighting identity ∫ p_θ a = E_{p_θ₀}[a p_θ/p_θ₀] (importance sampling).
    """
    ex = extrapolation
    if ex.covariance is None or ex.bin_group is None:
        raise InputError("extrapolation below the seam: no parameter covariance")
    ctau = np.atleast_1d(np.asarray(ctau, dtype=np.float64))
    qt = np.asarray(kinematics["qT"], dtype=np.float64)
    mt = np.sqrt(qt**2 + mass**2)
    y = np.arccosh(np.maximum(np.asarray(kinematics["E"], dtype=np.float64) / mt, 1.0))
    a, w = per_sample_acceptance(sample, ctau), sample_weight(sample)
    _, t, mu, s = (float(v) for v in ex.at(mass))
    nominal = np.array([t, mu, s, float(ex.power_at(mass))])
    lp0 = ex.form.log_p(mass, qt, y, nominal[0], mu, s, nominal[3])
    a_mean = a.mean(axis=0)

    def ln_ratio(form: Any, par: NDArray) -> tuple[NDArray, NDArray]:
        lp = form.log_p(mass, qt, y, par[0], par[1], par[2], par[3])
        mean, kish = reweight(lp - lp0, a, w)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = mean / a_mean
            return np.where(r > 0, np.log(np.where(r > 0, r, 1.0)), np.nan), kish

    rows = gradient_rows(ex, mass)
    q = [j for _, j, _ in rows]
    cov = (ex.covariance if ex.covariance_stat is None else ex.covariance_stat)[np.ix_(q, q)]
    lam, vec = np.linalg.eigh(cov)
    var_fit = np.zeros(ctau.size)
    for j, lv in enumerate(lam):
        if lv <= 0:
            continue
        step = np.zeros(4)
        for (kind, _, wg), d in zip(rows, np.sqrt(lv) * vec[:, j], strict=True):
            step[kind] += wg * d
        up, dn = ln_ratio(ex.form, nominal + step)[0], ln_ratio(ex.form, nominal - step)[0]
        var_fit += np.nan_to_num(0.5 * (up - dn)) ** 2
    var_each, sign, lost = {}, {}, np.zeros(ctau.size, bool)
    direct = FullSpaceDraw(redraw, seed, ctau, sample.n if hasattr(sample, "n") else qt.size, nominal,
                            e_max, ex.form)  # fmt: skip
    for name, rec in (ex.model_variations or {}).items():
        form = variation_form(name, rec)
        par = None if form is None else record_params(rec, ex.mass, mass, (0.0, t, mu, s), nominal[3])
        if par is None:
            continue
        alt = np.array(par[1:], dtype=np.float64)
        lr, kish = ln_ratio(form, alt)
        low = (kish < KISH_MIN) | ~np.isfinite(lr)
        if np.any(low):
            lr = np.where(low, direct.ln_ratio(form, alt), lr)
        lost |= ~np.isfinite(lr)
        var_each[name], sign[name] = np.nan_to_num(lr) ** 2, np.sign(np.nan_to_num(lr))
    forms = np.where(lost, np.nan, np.sqrt(combine_form_variances(var_each, ctau.size)))
    up, down = (
        np.where(lost, np.nan, np.sqrt(v)) for v in signed_form_variances(var_each, sign, ctau.size)
    )
    return {"fit": np.sqrt(var_fit), "forms": forms, "forms_up": up, "forms_down": down,
            "forms_unresolved": lost.astype(np.float64)}  # fmt: skip


def arm_in_fiducial(arm: Extrapolation, fiducial: Any) -> Extrapolation:
    """The arm's model above the seam normalised in the fiducial channel's region F: per bin
    its own fraction in F, and each form's (``model_variations``) at that form's fit, in place
    of their fractions in the arm's region; no covariance with the fiducial yield (other
    pairs). A reach then takes N = Y_F 𝓔/f_F with the arm's f_F and 𝓔: the forward arm's
    ratio of the detector's acceptance to F's, measured where both windows overlap, while the
    γ* backward of both, which neither sees, cancel."""
    centres = np.asarray(arm.mass, dtype=np.float64)
    grids = [grid_in_f(fiducial, float(m)) for m in centres]

    def fractions(form: Any, params: Callable[[float], tuple[float, ...] | None]) -> list[float | None]:
        out: list[float | None] = []
        for m, g in zip(centres, grids, strict=True):
            par = params(float(m))
            out.append(None if par is None else fiducial_fraction(fiducial, float(m), par, g, form))
        return out

    def nominal(m: float) -> tuple[float, ...]:
        _, t, mu, s = (float(v) for v in arm.at(m))
        return (t, mu, s, float(arm.power_at(m)))

    f = np.array(fractions(arm.form, nominal), dtype=np.float64)
    forms = {}
    for name, rec in (arm.model_variations or {}).items():
        form = variation_form(name, rec)
        if form is None:
            continue

        def alt(m: float, rec: Mapping[str, Any] = rec) -> tuple[float, ...] | None:
            par = record_params(rec, arm.mass, m, arm.at(m), float(arm.power_at(m)))
            return None if par is None else par[1:]

        forms[name] = {**rec, "fiducial_fraction": fractions(form, alt)}
    return dataclasses.replace(arm, fiducial_fraction=f, model_variations=forms,
                               fiducial=fiducial.as_dict(), yield_covariance=None,
                               fiducial_fraction_err=None, fiducial_fraction_err_stat=None,
                               fiducial_fraction_err_alt=None)  # fmt: skip


