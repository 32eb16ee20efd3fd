"""The fiducial fraction's errors beside the sandwich: the Kish-scaled profile likelihood, an
external σ_y constraint (refits at ±1σ) and the model variations (other p_T and rapidity forms
refitted to the same pairs).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gammastar.core.threads import single_thread_blas
from gammastar.errors import InputError
from gammastar.yields.extrapolation.layout import Layout
from gammastar.yields.extrapolation.likelihood import (
    PROFILE_STEP,
    JointFit,
    fit_joint,
    free_parameters,
    group_params,
    nll_and_grad,
    split_groups,
)
from gammastar.yields.extrapolation.model import (
    BOUNDS,
    FORMS,
    MODEL_VARIATIONS,
    NOMINAL,
    POWER_BOUNDS,
    TWO_SIDED,
    ModelForm,
    fiducial_fraction,
    grid_in_f,
)
from gammastar.yields.extrapolation.result import none_nan

__all__ = ["external_shift", "external_sides", "external_sigma", "fiducial_grids", "fit_model_variations", "fraction_errors", "kish_profile_error", "pt_power_of", "variation_forms"]


def fraction_errors(fiducial, centre, fitted, x, cov, mu_fixed, inside, power=0.0,
                    form: ModelForm = NOMINAL) -> NDArray:  # fmt: skip
    """1σ of f_F per bin: the gradient of :func:`fiducial_fraction` (central differences in
    ([ȳ], σ_y, T_g[, a_g])) through ``cov`` (linear propagation); ``inside``: F on each
    bin's quadrature grid (:func:`fiducial_grids`); ``power``, ``form``: as :func:`fit_joint`."""
    n_g = len(fitted)
    lay = Layout.of(n_g, mu_fixed, power=power)  # the covariance's: σ_y's row always
    ts, powers = split_groups(x[2:], n_g, power)
    out = np.full(len(centre), np.nan)
    for k, (g, _) in enumerate(fitted):
        base = np.array([ts[k], x[0], x[1], powers[k]])
        # parameter index in (T, ȳ, σ_y, a) ↔ index in the free vector
        pairs = ([(0, lay.index("T", k)), (2, lay.index("y_sigma"))]
                 + ([(1, lay.index("y_mean"))] if lay.y_mean else [])
                 + ([(3, lay.index("a", k))] if lay.power else []))  # fmt: skip
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
                    fiducial_fraction(fiducial, mi, tuple(up), inside[i], form)
                    - fiducial_fraction(fiducial, mi, tuple(dn), inside[i], form)
                ) / (2 * h)
            out[i] = math.sqrt(max(float(grad @ c @ grad), 0.0))
    return out


def fiducial_grids(fiducial, centre, fitted) -> dict[int, NDArray[np.bool_]]:
    """F on the quadrature grid of each fitted bin (:func:`grid_in_f`), computed once per
    fit: every f_F of the fit, its errors and the model's forms reuse it (the acceptance of
    5.8·10⁴ grid points per bin is the expensive part of :func:`fiducial_fraction`)."""
    return {i: grid_in_f(fiducial, float(centre[i])) for g, _ in fitted for i in g}


def kish_profile_error(fit: JointFit, fiducial, centre, mu_fixed, external=None):
    """The ``kish_profile`` error: (f_F 1σ per bin, δσ_y). The profile likelihood in σ_y (the
    weakly constrained parameter) about the joint ``fit``, with the weighted NLL scaled to the
    Kish effective size, (Σw)²/Σw² / Σw per unit weight; f_F at the profile's σ_y ± δσ_y
    (with an external σ_y, ``external`` = (its error, the fits at σ_y ± error of
    :func:`external_sides`): no profile, those fits). Fitted powers are profiled with the
    T_g."""
    data, fitted, x, nll0 = fit.data, fit.fitted, fit.x, fit.nll0
    power, inside, form = fit.power, fit.inside, fit.form
    if external is not None:
        d_sigma, (x_hi, x_lo) = external
        return _profile_fractions(fiducial, centre, fitted, inside, x_lo, x_hi, power, form), d_sigma
    wsum = sum(float(np.sum(d[3])) for d in data)
    w2sum = sum(float(np.sum(d[3] ** 2)) for d in data)
    scale = wsum * wsum / w2sum
    sides = []
    for step in (-PROFILE_STEP, PROFILE_STEP):
        s_p = float(np.clip(x[1] + step, *BOUNDS[2]))
        xp, nllp = _refit_at_sigma(data, x, s_p, mu_fixed, power, form)
        sides.append((xp, max(scale * (nllp - nll0), 1e-12)))
    # parabola through the profile: δσ = step / √(2 ΔNLL_eff), the mean of both sides
    d_sigma = float(np.mean([PROFILE_STEP / math.sqrt(2 * dn) for _, dn in sides]))
    x_lo, _ = _refit_at_sigma(data, x, max(x[1] - d_sigma, 0.1), mu_fixed, power, form)
    x_hi, _ = _refit_at_sigma(data, x, x[1] + d_sigma, mu_fixed, power, form)
    return _profile_fractions(fiducial, centre, fitted, inside, x_lo, x_hi, power, form), d_sigma


def _profile_fractions(fiducial, centre, fitted, inside, x_lo, x_hi, power=0.0,
                       form: ModelForm = NOMINAL) -> NDArray:  # fmt: skip
    """Half the difference of f_F per bin between the fits ``x_lo`` and ``x_hi``."""
    frac_err = np.full(len(centre), np.nan)
    n_g = len(fitted)
    for k, (g, _) in enumerate(fitted):
        for i in g:
            c = float(centre[i])
            f_lo = fiducial_fraction(fiducial, c, group_params(x_lo, k, n_g, power), inside[i], form)
            f_hi = fiducial_fraction(fiducial, c, group_params(x_hi, k, n_g, power), inside[i], form)
            frac_err[i] = 0.5 * abs(f_hi - f_lo)
    return frac_err


def pt_power_of(pt_power: float | str) -> float | None:
    """:func:`fit_extrapolation`'s ``pt_power`` as ``fit_joint`` takes it (``None``: fitted);
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


def external_sigma(y_sigma, source) -> dict[str, Any] | None:
    """The external σ_y record ``{value, error, source}`` of :func:`fit_extrapolation`
    (``None``: σ_y fitted); a clear error for a bad value."""
    if y_sigma is None:
        return None
    value, error = (float(v) for v in y_sigma)
    lo, hi = BOUNDS[2]
    if not (lo <= value <= hi) or not (math.isfinite(error) and error >= 0):
        raise InputError(
            f"extrapolation: the external sigma_y must lie in [{lo}, {hi}] with an error >= 0, "
            f"not {value} +- {error}"
        )
    if not source:
        raise InputError("extrapolation: an external sigma_y needs its source")
    return {"value": value, "error": error, "source": str(source)}


def external_sides(data, x, mu_fixed, error: float, power=0.0,
                   form: ModelForm = NOMINAL) -> tuple[NDArray, NDArray]:  # fmt: skip
    """The fits at an external σ_y + ``error`` and − ``error`` (the T_g — and fitted powers —
    refitted; σ_y within its bounds; ``x`` itself for both at a zero error): the external
    error's effect (:func:`external_shift`, and the ``kish_profile`` comparison at the same
    σ_y ± error)."""
    if error == 0:
        return x, x
    sides = []
    for sign in (1.0, -1.0):
        s_ = float(np.clip(x[1] + sign * error, *BOUNDS[2]))
        sides.append(_refit_at_sigma(data, x, s_, mu_fixed, power, form)[0])
    return sides[0], sides[1]


def _refit_at_sigma(data, x, sigma: float, mu_fixed, power, form: ModelForm = NOMINAL):
    """:func:`fit_joint` at σ_y = ``sigma`` near the fit ``x``: from ``x`` itself with fitted
    powers, else from every T = the first group's."""
    if power is None:
        return fit_joint(data, None, sigma=sigma, mu_fixed=mu_fixed, power=None, x_start=x,
                         form=form)  # fmt: skip
    return fit_joint(data, (x[2], x[0], sigma), sigma=sigma, mu_fixed=mu_fixed, power=power,
                     form=form)  # fmt: skip


def external_shift(mu_fixed, sides) -> NDArray[np.float64]:
    """δ of the free parameters ([ȳ], σ_y, T_g...) when an external σ_y moves by its 1σ:
    half the difference of the two fits of :func:`external_sides` (σ_y's own entry = the
    error; zeros at a zero error)."""
    return (free_parameters(sides[0], mu_fixed) - free_parameters(sides[1], mu_fixed)) / 2


def _fit_form(fit: JointFit, form: ModelForm, mu_fixed: float | None, ts: NDArray) -> NDArray:
    """The joint ``fit``'s pairs fitted with another ``form`` (σ_y fixed where it is external;
    fitted powers start from the nominal fit, a fixed power from the mean T_g). A form of
    another p_T family (:attr:`ModelForm.log_pt_family`) fits its T_g and its own second
    parameter per group at the nominal's ȳ and σ_y: a p_T form's change, and independent
    fits per group (it has no compiled sums, so a joint fit over shared parameters would
    take hundreds of numpy passes over every group). A form with another fall-off towards
    the beam energy than the fit's refits only the rapidity parameters the nominal fit leaves free
    (:func:`_fit_rapidity`); a generator's template both ȳ and σ_y, since its factor is the
    generator's shape about the generator's own centre and width, which the data's may not
    share."""
    sigma = fit.x[1] if fit.external is not None else None
    if form.factor is not None:  # the generator's own centre and width: both free
        return _fit_rapidity(fit, form, None, None)
    fall_off = (form.x_power, form.dalitz_mass)
    if fall_off != (fit.form.x_power, fit.form.dalitz_mass):  # a fall-off the fit does not hold
        return _fit_rapidity(fit, form, mu_fixed, sigma)
    if form.log_pt_family != "mt_power":  # its own second p_T parameter, fitted per group
        mu_fixed, sigma = float(fit.x[0]), float(fit.x[1])
        start = np.concatenate([fit.x[:2], ts, np.full(ts.size, form.power_start)])
        xa, _ = fit_joint(fit.data, None, mu_fixed=mu_fixed, form=form, power=None,
                           x_start=start, sigma=sigma)  # fmt: skip
    elif fit.power is None:
        xa, _ = fit_joint(fit.data, None, mu_fixed=mu_fixed, form=form, power=None,
                           x_start=fit.x, sigma=sigma)  # fmt: skip
    else:
        xa, _ = fit_joint(fit.data, (float(np.mean(ts)), fit.x[0], fit.x[1]), mu_fixed=mu_fixed,
                           form=form, sigma=sigma, power=fit.power)  # fmt: skip
    return xa


def _fit_rapidity(fit: JointFit, form: ModelForm, mu_fixed: float | None,
                  sigma: float | None) -> NDArray:  # fmt: skip
    """``fit``'s pairs fitted with ``form`` in the rapidity parameters only: ȳ where
    ``mu_fixed`` is ``None``, σ_y where ``sigma`` is (the caller's choice), every
    T_g and m_T power at the nominal's; the nominal's parameters where none is free. Why: a
    factor in E = m_T cosh y changes the rapidity shape; refitted in the p_T form as well, the
    fit bends the p_T spectrum inside F to mimic the factor (a power at its bound) and carries
    that far outside. Returns (ȳ, σ_y, T_g..., [a_g...]) as :func:`fit_joint`."""
    from scipy.optimize import minimize

    x = np.asarray(fit.x, dtype=np.float64)
    free = [i for i, fixed in ((0, mu_fixed), (1, sigma)) if fixed is None]
    if not free:
        return x.copy()
    bounds = [(BOUNDS[1], BOUNDS[2])[i] for i in free]

    def nll(q: NDArray) -> tuple[float, NDArray]:
        par = x.copy()
        par[free] = q
        # the free vector nll_and_grad takes: ȳ, σ_y, T_g..., [a_g...] (ȳ, σ_y both free)
        val, grad = nll_and_grad(par, fit.data, None, None, form, fit.power)
        return val, grad[free]

    with single_thread_blas():
        res = minimize(nll, x[free], jac=True, method="L-BFGS-B", bounds=bounds,
                       options={"ftol": 1e-12, "gtol": 1e-8, "maxiter": 200})  # fmt: skip
    out = x.copy()
    out[free] = res.x
    return out


def variation_forms(nominal: ModelForm, beam_energy: float | None,
                     falloff_error: float) -> dict[str, ModelForm]:  # fmt: skip
    """The alternative forms of :data:`MODEL_VARIATIONS` beside the fitted ``nominal``, each
    with the nominal's fall-off (:meth:`ModelForm.with_falloff`). With a fall-off n of 1σ
    ``falloff_error`` the nominal at n ∓ that error (``falloff_harder``, ``falloff_softer``;
    n ≥ 0) stands in for ``xf_suppressed``, the fall-off the fit does not hold; without one,
    ``xf_suppressed`` at ``beam_energy``."""
    n, energy, dalitz = nominal.x_power, nominal.beam_energy, nominal.dalitz_mass
    out = {}
    for name in MODEL_VARIATIONS:
        form = FORMS[name]
        if name == "xf_suppressed":
            if not n:
                out[name] = form.at_beam(beam_energy)
            continue
        out[name] = form.with_falloff(n, energy, dalitz) if n else form
    if n and falloff_error > 0:
        out["falloff_harder"] = FORMS["falloff_harder"].with_falloff(
            max(n - falloff_error, 0.0), energy, dalitz)
        out["falloff_softer"] = FORMS["falloff_softer"].with_falloff(n + falloff_error, energy, dalitz)
    return out


def fit_model_variations(fit: JointFit, fiducial, centre, mu_fixed, y_mean_error: float = 0.0,
                      beam_energy: float | None = None, template: Any = None,
                      falloff_error: float = 0.0):  # fmt: skip
    """The model's form as an error: each alternative of :data:`MODEL_VARIATIONS` fitted to
    the same weighted pairs as the joint ``fit`` (ȳ as it, σ_y fixed where it is external; a
    generator's template with both free, :func:`_fit_form`),
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

    With fitted m_T powers (``power=None``) the p_T forms (``maps_to == "T"``) of the m_T-power
    family are skipped: the fitted family holds them, and the data's error of the power is in
    the sandwich (a form of another family, :attr:`ModelForm.log_pt_family`, is not).

    With ȳ fixed (``mu_fixed``) and ``y_mean_error`` > 0 the nominal form refitted at
    ȳ = ``mu_fixed`` − ``y_mean_error`` is one more variation, ``y_mean_backward`` (its record's
    ``form``: ``nominal``; mapped onto σ_y as the rapidity forms): the stated error of a
    fixed rapidity centre, backward because a nuclear target shifts it so.

    A form with a factor towards the beam energy (:attr:`ModelForm.x_power`,
    ``xf_suppressed``) is fitted at ``beam_energy`` and skipped without it; its record holds
    ``x_power`` and ``beam_energy``. ``generator_template`` is fitted with ``template``'s
    factor (:class:`~gammastar.yields.extrapolation.template.RapidityTemplate`) and skipped
    without it; its record holds the table (``template``).

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

    fitted, x, power, inside = fit.fitted, fit.x, fit.power, fit.inside
    nb = len(centre)
    n_g = len(fitted)
    lay = Layout.of(n_g, mu_fixed, power=power)  # the covariance's: σ_y's row always
    ts, powers = split_groups(x[2:], n_g, power)
    group_of = {i: k for k, (g, _) in enumerate(fitted) for i in g}

    nominal = fit.form

    def f_nom(i, t, s):
        par = (t, x[0], s, powers[group_of[i]])
        return fiducial_fraction(fiducial, float(centre[i]), par, inside[i], nominal)

    forms = variation_forms(nominal, beam_energy, falloff_error)
    if template is not None and "generator_template" in forms:
        forms["generator_template"] = replace(forms["generator_template"], factor=template)
    jobs = [(name, form, mu_fixed) for name, form in forms.items()
            # a p_T power form: inside the fitted family (fit_extrapolation pt_power)
            if not (power is None and form.maps_to == "T" and form.log_pt_family == "mt_power")
            and not (form.x_power and form.beam_energy is None)
            and not (name == "generator_template" and form.factor is None)]  # fmt: skip
    if mu_fixed is not None and y_mean_error > 0:
        jobs.append(("y_mean_backward", nominal, mu_fixed - y_mean_error))
    record, shifts = {}, []
    for name, form, mu_alt in jobs:
        xa = _fit_form(fit, form, mu_alt, ts)
        f_alt = np.full(nb, np.nan)
        t_alt = np.full(nb, np.nan)
        a_alt = np.full(nb, np.nan)
        # a form of another p_T family fits its own second parameter per group (_fit_form)
        p_form = power if form.log_pt_family == "mt_power" else None
        for k, (g, _) in enumerate(fitted):
            par = group_params(xa, k, n_g, p_form)
            for i in g:
                t_alt[i], a_alt[i] = par[0], par[3]
                f_alt[i] = fiducial_fraction(fiducial, float(centre[i]), par, inside[i], form)
        delta = np.zeros(lay.size)
        if form.maps_to == "T":
            lo, hi = BOUNDS[0]
            for k, (g, _) in enumerate(fitted):
                target = float(np.mean(f_alt[g]))

                def resid(t, g=g, target=target, k=k):
                    return float(np.mean([f_nom(i, t, x[1]) for i in g])) - target

                r_lo, r_hi = resid(lo), resid(hi)
                if r_lo * r_hi < 0:
                    t_new = brentq(resid, lo, hi, xtol=1e-7)
                else:  # no root inside the bounds: the nearer bound
                    t_new = lo if abs(r_lo) < abs(r_hi) else hi
                delta[lay.index("T", k)] = t_new - ts[k]
        else:  # y_sigma: one shift for all bins

            def loss(s_, f_alt=f_alt):
                return sum((f_nom(i, ts[k], s_) - f_alt[i]) ** 2
                           for k, (g, _) in enumerate(fitted) for i in g)  # fmt: skip

            res = minimize_scalar(loss, bounds=BOUNDS[2], method="bounded",
                                  options={"xatol": 1e-7})  # fmt: skip
            delta[lay.index("y_sigma")] = float(res.x) - x[1]
        shifts.append((name, delta))
        record[name] = {
            "description": (
                form.description
                if name != "y_mean_backward"
                else f"the nominal form at y_mean = {mu_alt:.4g}: the fixed centre's "
                f"stated error {y_mean_error:g} (backward)"
            ),
            "form": form.name,
            "fiducial_fraction": none_nan(f_alt),
            "temperature": none_nan(t_alt),
            "pt_power": none_nan(a_alt),
            "y_sigma": float(xa[1]),
            "y_mean": float(xa[0]),
            "maps_to": form.maps_to or "y_sigma",
            "parameter_shift": delta.tolist(),
        }
        if form.x_power:
            record[name].update(x_power=form.x_power, beam_energy=form.beam_energy)
            if form.dalitz_mass is not None:
                record[name]["dalitz_mass"] = form.dalitz_mass
        if name.startswith("falloff_"):
            record[name]["description"] = f"{form.description}: n = {form.x_power:.3g}"
        if form.factor is not None:
            record[name]["template"] = form.factor.as_record()
    return record, _paired(shifts)


def _paired(shifts: list[tuple[str, NDArray]]) -> list[NDArray]:
    """The shifts δ, a :data:`TWO_SIDED` pair (one parameter's −1σ and +1σ) as one,
    (δ₊ − δ₋)/2: added to the covariance as δδᵀ, each of the two would count that parameter
    twice (the N_sig error counts it once too)."""
    by_name = dict(shifts)
    paired = {k for pair in TWO_SIDED for k in pair if all(p in by_name for p in pair)}
    out = [d for name, d in shifts if name not in paired]
    out += [(by_name[hi] - by_name[lo]) / 2 for lo, hi in TWO_SIDED if lo in paired]
    return out
