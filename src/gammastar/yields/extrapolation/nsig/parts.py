"""The extrapolation's error on a reach's N_sig at one mass, per cτ, in its parts
(:func:`nsig_error_parts`: the fit's, an external σ_y's, the model's forms', the covariance with
the fiducial yield, λ_θ's), each a relative 1σ per cτ;
:func:`gammastar.yields.extrapolation.nsig.nsig_relative_error` combines them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.errors import InputError
from gammastar.yields.extrapolation.nsig.direct import DirectDraw
from gammastar.yields.extrapolation.nsig.draw import (
    Redraw,
    draw_arrays,
    out_samples,
    sample_weight,
)
from gammastar.yields.extrapolation.nsig.forms import (
    combine_form_variances,
    form_shifts,
    log_form_variances,
    signed_form_variances,
    variation_form,
)
from gammastar.yields.extrapolation.nsig.lambda_theta import with_lambda_part
from gammastar.yields.extrapolation.nsig.steps import (
    LogSteps,
    external_response,
    gradient_rows,
    log_fit_variances,
    nsig_gradient,
)
from gammastar.yields.extrapolation.result import Extrapolation

__all__ = ["nsig_error_parts"]


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
    redraw: Redraw | None = None,
    seed: int | None = None,
    e_max: float | None = None,
) -> dict[str, NDArray[np.float64]]:
    """The parts of :func:`nsig_relative_error`, each a relative 1σ of N_sig per cτ whose
    quadrature sum is the whole: ``fit`` (the sandwich's statistical part), ``external`` (an
    external σ_y's error: N's response itself at the two fits σ_y ± error
    (``parameter_sides``), ln N = a z + b z² through them and its sd over a Gaussian prior
    √(a² + 2b²); for a record without the sides, its ``parameter_shift`` δ through the same
    gradient, (g·δ)², linear, which misses the response's curvature; 0 without
    one), ``forms`` (the model's alternative forms; 0 without them), ``forms_up`` and
    ``forms_down`` (the same by the sign of each form's shift of N,
    :func:`signed_form_variances`: the sides of a two-sided nuisance); and
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
    or for a form with no finite fit. Beside them, per computed form, ``kish_<name>``: the Kish
    effective size of its reweighted contributing samples per cτ (:data:`KISH_MIN`); with
    ``redraw`` (and ``seed``, as :func:`nsig_relative_error`), where it is below
    :data:`KISH_MIN` the form's change comes from its own direct draw outside F, and where that
    draw does not resolve N either (an effective size below :data:`KISH_MIN`: no accepted
    sample, or one whose survival is all of N) the form's part (and ``forms``) is NaN and
    ``forms_unresolved`` 1 (else 0): N is not resolved there, rather than a number that is one
    sample's weight.

    With ``log=True`` every part is a 1σ of ln N instead, each found without the gradient:
    N/Y_F recomputed (the extrapolated samples reweighted, f_F by quadrature) at ±1σ along
    each principal axis of the fit's covariance (without the external shift δ), half the
    difference of ln N per axis, added in quadrature (exact when ln N is linear in the
    parameters, whatever their errors); ``external`` the same along ±δ for a record without
    ``parameter_sides`` (with them it is the response at the two fits in both modes, a 1σ of
    ln N); ``forms`` |ln(N_alt/N)|.
    ``yield_cross`` stays the linear 2 Cov(ln Y_F, ln(N/Y_F)), a covariance of logarithms
    already. Costs 2k + 2 more evaluations of N/Y_F (k ≤ 5 parameters).

    With ``lambda_theta`` (:func:`gammastar.yields.lambda_theta.lambda_refits_at`: per polarisation
    bin and sign, the fiducial yield's relative change at the mass, ``yield_shift``, and the
    extrapolation refitted in the moved region, ``fit``, a :func:`refit` record) also
    ``lambda_theta``: the decay anisotropy's 1σ at N's level, each move's
    (1 + δY_F/Y_F)(1 + Δ(N/Y_F)/(N/Y_F)) − 1 (logarithms with ``log=True``), Δ(N/Y_F) its
    refit's as :func:`form_shifts` evaluates a form's (𝓔_out reweighted, f_F the refit's in
    the moved region), the bins in quadrature signed as the largest, (|up| + |down|)/2. The
    measured λ̂ moves f_F against Y_F (docs/validation/uncertainties-and-coverage.md),
    which the fiducial yield's change alone misses."""
    ex = extrapolation
    if ex.covariance is None or ex.bin_group is None:
        raise InputError("extrapolation: no parameter covariance (refit with the sandwich)")
    ctau = np.atleast_1d(np.asarray(ctau, dtype=np.float64))
    f0 = float(ex.at(mass)[0])
    qt, e, out_mask, a = draw_arrays(kinematics, sample, ctau)  # a: (n, n_ct)
    w = sample_weight(sample)
    lam = None if lambda_theta is None else (lambda_theta, (qt, e, out_mask, a, w), ctau.size)
    if not np.any(out_mask):
        names = [f"form_{k}" for k, r in (ex.model_variations or {}).items()
                 if variation_form(k, r) is not None]  # fmt: skip
        zero = {k: np.zeros(ctau.size) for k in ("fit", "external", "forms", "forms_up", "forms_down",
                                                 "yield_cross", "forms_unresolved", *names)}  # fmt: skip
        return with_lambda_part(zero, ex, fiducial, mass, lam, log)
    draw = out_samples(ex, fiducial, mass, (qt, e, out_mask), a, w)
    rows = gradient_rows(ex, mass)
    # the fit's statistical part; the model's forms below, each by its own N_sig (the
    # total covariance holds them mapped onto the nominal parameters, exact for f_F only)
    cov = ex.covariance if ex.covariance_stat is None else ex.covariance_stat
    q = [q for _, q, _ in rows]
    gr = nsig_gradient(fiducial, draw, ex.pt_power_fitted, rows, n=a.shape[0])  # (k, n_ct)
    var_stat = np.einsum("ic,ij,jc->c", gr, cov[np.ix_(q, q)], gr)
    shift = (ex.y_sigma_external or {}).get("parameter_shift")
    # the external σ_y's δδᵀ is in the covariance: its part (g·δ)², the rest the fit's
    var_ext = (np.asarray(shift, dtype=np.float64)[q] @ gr) ** 2 if shift is not None else 0.0
    sides = (ex.y_sigma_external or {}).get("parameter_sides")
    steps = LogSteps(fiducial, draw, rows) if log or sides is not None else None
    # with the two fits' own shifts, the external part is N's response itself at σ_y ± error
    sd_ext = None if sides is None else external_response(ex, steps, sides, q)
    n_over_yf = draw.tot / f0  # N / Y_F = 𝓔_in + E_x/f = 𝓔/f
    direct = None
    if redraw is not None:  # the inside samples' acceptance squared: N's effective size
        sq_in = (a[~out_mask] ** 2).sum(axis=0)
        direct = DirectDraw(fiducial, draw, redraw, seed, ctau, sq_in, e_max)
    shifts, kish, ratio = form_shifts(ex, draw, direct) if ex.covariance_stat is not None else ({}, {}, {})
    with np.errstate(over="ignore"):  # a shift beyond 1e154 is +inf, its ratio's log finite
        var_each = {k: d**2 for k, d in shifts.items()}
    cross = _yield_cross(ex, mass, np.asarray(q), gr, n_over_yf)
    # where F has no area at the mass on the quadrature grid N/Y_F is undefined: linear parts
    use_log = log and steps is not None and bool(np.all(np.isfinite(steps.n0)))
    if use_log and steps is not None:  # every part a 1σ of ln N, from N/Y_F at ±1σ (docstring)
        d_ext = np.zeros(len(q)) if shift is None else np.asarray(shift, np.float64)[q]
        var_stat, var_ext = log_fit_variances(steps, cov[np.ix_(q, q)], d_ext)
        var_each = log_form_variances(shifts, n_over_yf, ratio)
    var_forms = combine_form_variances(var_each, ctau.size)
    # each form's shift of N on its side: ln(N_alt/N) and Δ(N/Y_F) share the sign
    signs = {k: np.sign(d) for k, d in shifts.items()}
    var_up, var_down = signed_form_variances(var_each, signs, ctau.size)
    rel = partial(_relative_sd, n_over_yf=n_over_yf, use_log=use_log)
    ext_part = rel(var_ext)
    if sd_ext is not None:  # the response itself where it is defined, else the linear part
        ext_part = np.where(np.isfinite(sd_ext), np.where(n_over_yf > 0, sd_ext, 0.0), ext_part)
    parts = {"fit": rel(var_stat - var_ext), "external": ext_part, "forms": rel(var_forms),
             "forms_up": rel(var_up), "forms_down": rel(var_down), "yield_cross": cross}  # fmt: skip
    names = [k for k, r in (ex.model_variations or {}).items()
             if variation_form(k, r) is not None]  # 0 where not computed
    parts |= {f"form_{k}": rel(var_each.get(k, 0.0)) for k in names}
    parts |= {f"kish_{k}": v for k, v in kish.items()}
    lost = [np.isnan(v) for v in var_each.values()]
    parts["forms_unresolved"] = np.any(lost, axis=0).astype(np.float64) if lost else np.zeros(ctau.size)
    return with_lambda_part(parts, ex, fiducial, mass, lam, log)


def _relative_sd(var: Any, n_over_yf: NDArray, use_log: bool) -> NDArray[np.float64]:
    """A variance of N/Y_F as a relative 1σ of N (of ln N with ``use_log``: the variance is
    one of ln N already); 0 where N = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.broadcast_to(np.maximum(var, 0.0), n_over_yf.shape)
        v = np.where(np.isnan(var), np.nan, v)  # a form not resolved stays NaN (a flag)
        if use_log:
            return np.where((n_over_yf > 0) | np.isnan(v), np.sqrt(v), 0.0)
        return np.where(n_over_yf > 0, np.sqrt(v) / n_over_yf, np.where(np.isnan(v), np.nan, 0.0))


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
