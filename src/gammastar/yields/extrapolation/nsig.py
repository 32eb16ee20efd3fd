"""The extrapolation's error on a reach's signal N_sig (:func:`nsig_relative_error`,
:func:`nsig_error_parts`, :func:`nsig_lambda_theta`): the model's acceptance outside F moves with
f_F, so N_sig moves far less than Y_F/f_F (docs/validation/uncertainties-and-coverage.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.errors import InputError
from gammastar.physics.decay import decay_probability
from gammastar.yields.extrapolation.likelihood import _dlogp
from gammastar.yields.extrapolation.model import (
    FORMS,
    NOMINAL,
    fiducial_fraction,
    grid_in_f,
)
from gammastar.yields.extrapolation.result import Extrapolation

__all__ = ["KISH_MIN", "TILT_SIGMAS", "NsigErrorSettings", "arm_in_fiducial", "nsig_error_parts", "nsig_full_space_error", "nsig_lambda_theta", "nsig_reach_error", "nsig_relative_error", "per_sample_acceptance"]


KISH_MIN = 30.0
"""The Kish effective size, (Σ wᵢaᵢ)²/Σ (wᵢaᵢ)², of a model form's reweighted contributing
samples (weight p_alt/p_nom × acceptance, per cτ) below which :func:`_form_shifts` does not
trust the reweighting and draws the form's own samples outside F instead (``redraw``): at
n_eff ≈ 1 a single sample's weight is the whole 𝓔_out,alt, and ln(N_alt/N) is that sample's
weight, not the forms' difference (a forward detector that sees only the model's far tail)."""

Redraw = Callable[[Callable[..., dict[str, Any]], int, int], Any]
"""``redraw(sampler, n, seed)``: the :class:`~gammastar.reach.acceptance.KinematicSample` of ``n``
A′ samples of ``sampler`` (a callable ``(mass, n, seed) → {"qT", "E", "extrapolated"}``) at the
draw's mass, through the same detector and decay channel as the nominal draw's
(:func:`gammastar.reach.acceptance.draw`)."""


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
    redraw: Redraw | None = None,
    seed: int | None = None,
    e_max: float | None = None,
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
    extrapolation with model-form variations (:func:`fit_model_variations`) adds, in quadrature,
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
        redraw: builds a sample through the draw's detector (:data:`Redraw`): where a form's
            reweighting has a Kish effective size below :data:`KISH_MIN` its 𝓔_out comes from
            its own samples outside F instead (:func:`_form_shifts`); ``None``: reweighting
            everywhere.
        seed: the direct draws' seed (with ``redraw``; each form's drawn from
            ``SeedSequence([seed, 1])``, the nominal's and the forms' with the same seed: common
            random numbers).
        e_max: the sampler's energy bound (:class:`ExtrapolatedSampler` ``e_max``): the
            direct draws truncated there as the nominal's are.

    Returns:
        δN/N per cτ (0 where N = 0; NaN where a form's N is not resolved even by its direct
        draw: no accepted sample, ``forms_unresolved`` of :func:`nsig_error_parts`).

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
    parts = nsig_error_parts(extrapolation, fiducial, mass, kinematics, sample, ctau, log=log,
                             redraw=redraw, seed=seed, e_max=e_max)  # fmt: skip
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
        names = [f"form_{k}" for k, r in (ex.model_variations or {}).items()
                 if _variation_form(k, r) is not None]  # fmt: skip
        zero = {k: np.zeros(ctau.size)
                for k in ("fit", "external", "forms", "yield_cross", "forms_unresolved", *names)}  # fmt: skip
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
    n_over_yf = draw.tot / f0  # N / Y_F = 𝓔_in + E_x/f = 𝓔/f
    direct = None
    if redraw is not None:  # the inside samples' acceptance squared: N's effective size
        sq_in = (a[~out_mask] ** 2).sum(axis=0)
        direct = _DirectDraw(fiducial, draw, redraw, seed, ctau, sq_in, e_max)
    shifts, kish, ratio = _form_shifts(ex, draw, direct) if ex.covariance_stat is not None else ({}, {}, {})
    with np.errstate(over="ignore"):  # a shift beyond 1e154 is +inf, its ratio's log finite
        var_each = {k: d**2 for k, d in shifts.items()}
    cross = _yield_cross(ex, mass, np.asarray(q), gr, n_over_yf)
    # where F has no area at the mass on the quadrature grid N/Y_F is undefined: linear parts
    use_log = log and bool(np.all(np.isfinite(steps.n0)))
    if use_log:  # every part a 1σ of ln N, from N/Y_F at ±1σ (docstring)
        d_ext = np.zeros(len(q)) if shift is None else np.asarray(shift, np.float64)[q]
        var_stat, var_ext = _log_fit_variances(steps, cov[np.ix_(q, q)], d_ext)
        var_each = _log_form_variances(shifts, n_over_yf, ratio)
    var_forms = sum(var_each.values(), np.zeros(ctau.size))
    rel = partial(_relative_sd, n_over_yf=n_over_yf, use_log=use_log)
    ext_part = rel(var_ext)
    if sd_ext is not None:  # the response itself where it is defined, else the linear part
        ext_part = np.where(np.isfinite(sd_ext), np.where(n_over_yf > 0, sd_ext, 0.0), ext_part)
    parts = {"fit": rel(var_stat - var_ext), "external": ext_part, "forms": rel(var_forms),
             "yield_cross": cross}  # fmt: skip
    names = [k for k, r in (ex.model_variations or {}).items()
             if _variation_form(k, r) is not None]  # 0 where not computed
    parts |= {f"form_{k}": rel(var_each.get(k, 0.0)) for k in names}
    parts |= {f"kish_{k}": v for k, v in kish.items()}
    lost = [np.isnan(v) for v in var_each.values()]
    parts["forms_unresolved"] = np.any(lost, axis=0).astype(np.float64) if lost else np.zeros(ctau.size)
    return _with_lambda_part(parts, ex, fiducial, mass, lam, log)


def _relative_sd(var: Any, n_over_yf: NDArray, use_log: bool) -> NDArray[np.float64]:
    """A variance of N/Y_F as a relative 1σ of N (of ln N with ``use_log``: the variance is
    one of ln N already); 0 where N = 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        v = np.broadcast_to(np.maximum(var, 0.0), n_over_yf.shape)
        v = np.where(np.isnan(var), np.nan, v)  # a form not resolved stays NaN (a flag)
        if use_log:
            return np.where((n_over_yf > 0) | np.isnan(v), np.sqrt(v), 0.0)
        return np.where(n_over_yf > 0, np.sqrt(v) / n_over_yf, np.where(np.isnan(v), np.nan, 0.0))


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
    # without a flow the model stands for the data inside F too: its samples there are
    # labelled extrapolated, and they cover the whole phase space
    full = bool(np.any(fiducial.contains(np.full(int(out_mask.sum()), mass), qt[out_mask],
                                         e[out_mask])))  # fmt: skip
    return _OutSamples(mass, qt[out_mask], np.arccosh(np.maximum(e[out_mask] / mt, 1.0)),
                       a[out_mask], a.mean(axis=0), out_mask, (t, mu, s, float(ex.power_at(mass))),
                       f0, grid_in_f(fiducial, mass), full)  # fmt: skip


class _OutSamples(NamedTuple):
    """The extrapolated samples of a draw at one mass (:func:`nsig_error_parts`): their q_T,
    rapidity and acceptance per cτ (n_out, n_ct); the whole draw's mean acceptance per cτ and
    which of its samples are extrapolated; the model's (T, ȳ, σ_y, a) at the mass, f_F there
    and F on the mass's quadrature grid (:func:`grid_in_f`)."""

    mass: float
    qt: NDArray
    y: NDArray
    a: NDArray
    tot: NDArray
    out_mask: NDArray
    nominal: tuple[float, float, float, float]
    f0: float
    inside: NDArray
    full: bool = False
    """Whether the extrapolated samples cover the whole phase space (no flow: the model inside
    F too), so that N/Y_F = 𝓔/f_F; else they lie outside F and N/Y_F = 𝓔_in + (1 − f_F)/f_F
    𝓔_out."""


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


def _log_form_variances(shifts: Mapping[str, NDArray], n_over_yf: NDArray,
                        direct: Mapping[str, NDArray] | None = None) -> dict[str, NDArray]:  # fmt: skip
    """Per alternative form, ln(N_alt/N)² per cτ (0 where N or N_alt is not positive); where
    ``direct`` (per form, N_alt/N of the direct draws, NaN where not drawn) holds a ratio, its
    logarithm's square; NaN where the direct draw did not resolve N (:func:`_form_shifts`)."""
    out = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for k, d in shifts.items():
            r = 1.0 + d / n_over_yf
            v = np.where((n_over_yf > 0) & (r > 0), np.log(np.where(r > 0, r, 1.0)), 0.0) ** 2
            rd = (direct or {}).get(k)
            if rd is not None:  # drawn directly: its own ratio; NaN (unresolved) kept
                v = np.where(np.isfinite(rd), np.log(np.where(rd > 0, rd, 1.0)) ** 2, v)
                v = np.where(np.isnan(d), np.nan, v)
            out[k] = v
        return out


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
    yield_only: bool = False,
) -> NDArray[np.float64]:
    """The measured λ_θ's 1σ carried to N_sig at one mass, per cτ: :func:`nsig_error_parts`'
    ``lambda_theta`` part alone (arguments as there; ``moves`` from
    :func:`gammastar.yields.lambda_theta.lambda_refits_at`), without the fit's other parts.
    ``yield_only``: the kinematics come from a model fitted to other pairs (the arm's above
    the seam, ``extrapolation`` then that model normalised in F), so a move changes N through
    Y_F and F alone, N′/N = (1 + δY_F/Y_F) f_F/f_F′, f_F′ the model's fraction in the moved
    region.

    Returns:
        The relative 1σ (of ln N_sig with ``log``) per cτ.
    """
    ctau = np.atleast_1d(np.asarray(ctau, dtype=np.float64))
    if yield_only:
        return _lambda_part(moves, partial(_yield_ratio, extrapolation, fiducial, mass), ctau.size, log)
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
    :func:`gammastar.yields.lambda_theta.lambda_refits_at`, and the nominal fit there) gives 1."""

    def __init__(self, ex, fiducial, mass, qt, e, out_mask, a) -> None:
        self.ex, self.mass, self.qt, self.e, self.a = ex, mass, qt, e, a
        self.at = ex.at(mass)
        self.f0, t, mu, s = (float(v) for v in self.at)
        self.nominal = (t, mu, s, float(ex.power_at(mass)))
        self.y = np.arccosh(np.maximum(e / np.sqrt(qt**2 + mass**2), 1.0))
        self.lp = NOMINAL.log_p(mass, qt, self.y, t, mu, s, self.nominal[3])
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
        u = np.exp(NOMINAL.log_p(mass, qt, self.y, t1, mu1, s1, a1) - self.lp)
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


def _yield_ratio(ex: Extrapolation, fiducial: Any, mass: float, mv: Mapping[str, Any]) -> float:
    """N′/N of a λ_θ move with the model's kinematics fixed: (1 + δY_F/Y_F) f_F/f_F′, both
    fractions of the model at ``mass`` by the same quadrature, in ``fiducial`` and in the move's
    region (its yield change alone without one; 1 for a move that changes nothing there). The
    model itself is not refitted: where its fit's weights took the same λ_θ (the arm's above
    the seam), that part of the move is left out."""
    scale = 1.0 + float(mv["yield_shift"])
    region = mv.get("region")
    if mv.get("null") or region is None:
        return scale
    _, t, mu, s = (float(v) for v in ex.at(mass))
    par = (t, mu, s, float(ex.power_at(mass)))
    f0, f1 = fiducial_fraction(fiducial, mass, par), fiducial_fraction(region, mass, par)
    return scale * f0 / f1 if f0 > 0 and f1 > 0 else scale


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


def _form_shifts(ex: Extrapolation, draw: _OutSamples, direct: _DirectDraw | None = None
                 ) -> tuple[dict[str, NDArray], dict[str, NDArray], dict[str, NDArray]]:  # fmt: skip
    """Per alternative form of the model, Δ(N/Y_F) per cτ, signed (the sum of their squares is
    the forms' part): each form's own
    E_x,alt/f_alt − E_x/f_F, E_x = (1 − f) 𝓔_out, with f_alt its fit's f_F
    (:attr:`Extrapolation.model_variations`) and 𝓔_out,alt the acceptance of the nominal
    draw's extrapolated samples reweighted by p_alt/p_nom, self-normalised (the alternative's
    normalisation outside F is 1 − f_alt, exactly; a plain reweighted mean would miss the
    heavier-tailed form's tails, where the nominal draw has few samples: −4% of E_x on the
    toy). Records whose form (:func:`_variation_form`) :data:`FORMS` lacks are skipped.

    Also per form the Kish effective size of the reweighted contributing samples per cτ,
    n_eff = (Σ wᵢaᵢ)²/Σ (wᵢaᵢ)² (0 where none contributes), and, with ``direct``
    (:class:`_DirectDraw`), N_alt/N from the form's and the nominal's own samples outside F
    where n_eff < :data:`KISH_MIN` (NaN elsewhere; there Δ = (N_alt/N − 1) N/Y_F, and NaN
    where the direct draw does not resolve N either, :class:`_DirectDraw`). Returns (Δ, n_eff,
    N_alt/N)."""
    out: dict[str, NDArray[np.float64]] = {}
    kish: dict[str, NDArray[np.float64]] = {}
    ratio: dict[str, NDArray[np.float64]] = {}
    for name, rec in (ex.model_variations or {}).items():
        form = _variation_form(name, rec)
        if form is None:
            continue
        got = _record_shift(form, rec, ex.mass, draw)
        if got is None:
            continue
        d, kish[name], par = got
        low = kish[name] < KISH_MIN
        if direct is not None and np.any(low):
            r = np.where(low, direct.ratio(form, par), np.nan)
            lost = low & ~np.isfinite(r)
            d = np.where(low, draw.tot / draw.f0 * (r - 1.0), d)
            d = np.where(lost, np.nan, d)
            ratio[name] = r
        out[name] = d
    return out, kish, ratio


def _variation_form(name: str, rec: Mapping[str, Any]) -> Any:
    """The :data:`FORMS` entry of a model variation's record: its ``form`` (the nominal for
    ``y_mean_backward``, a refit at another ȳ), else its name, at the record's
    ``beam_energy`` where the form has a factor towards it, with the record's ``template``
    table for ``generator_template``; ``None``: not a known form, or such a form without its
    beam energy or table."""
    form = FORMS.get(str(rec.get("form", name)))
    if form is not None and form.name == "generator_template":
        if "template" not in rec:
            return None
        return dataclasses.replace(form, factor=_template_of(rec["template"]))
    if form is None or not form.x_power:
        return form
    energy = rec.get("beam_energy")
    return None if energy is None else form.at_beam(float(energy))


_TEMPLATES: dict[int, tuple[Any, Any]] = {}
_TEMPLATES_KEPT = 8


def _template_of(rec: Mapping[str, Any]) -> Any:
    """The :class:`~gammastar.yields.extrapolation.template.RapidityTemplate` of a record's
    table, made once per record (each N_sig error asks for it at every mass)."""
    from gammastar.yields.extrapolation.template import RapidityTemplate

    got = _TEMPLATES.get(id(rec))
    if got is None or got[0] is not rec:
        while len(_TEMPLATES) >= _TEMPLATES_KEPT:  # the oldest first: a bounded cache
            del _TEMPLATES[next(iter(_TEMPLATES))]
        got = _TEMPLATES[id(rec)] = (rec, RapidityTemplate.from_record(rec))
    return got[1]


def _record_shift(form, rec, ex_mass, draw: _OutSamples) -> tuple | None:
    """Δ(N/Y_F) per cτ of one fit record (``fiducial_fraction``, ``temperature`` per mass bin
    ``ex_mass``, ``y_mean``, ``y_sigma``, optionally ``pt_power``) of the model's ``form``
    against the nominal on the ``draw``'s extrapolated samples (:func:`_form_shifts`), with
    the Kish effective size of the reweighted contributions per cτ and the record's
    (f_F, T, ȳ, σ_y, a) at the mass; ``None`` where the record has no finite fit."""
    t, mu, s, a_pow = draw.nominal
    mass, qt, y, a_out, f0 = draw.mass, draw.qt, draw.y, draw.a, draw.f0
    par = _record_params(rec, ex_mass, mass, (f0, t, mu, s), a_pow)
    if par is None:
        return None
    f_alt, t_alt, mu_alt, s_alt, a_alt = par
    lp_nom = NOMINAL.log_p(mass, qt, y, t, mu, s, a_pow)
    lp = form.log_p(mass, qt, y, t_alt, mu_alt, s_alt, a_alt)
    w = np.exp(lp - lp_nom)
    acc_alt = w @ a_out / max(float(w.sum()), 1e-300)  # self-normalised: 𝓔_out,alt
    acc_nom = a_out.mean(axis=0)
    c = w[:, None] * a_out  # the contributions to 𝓔_out,alt
    kish = kish_size(c.sum(axis=0), (c**2).sum(axis=0))
    if draw.full:  # the samples cover F too: N/Y_F = 𝓔/f
        return acc_alt / f_alt - acc_nom / f0, kish, par
    return (1 - f_alt) / f_alt * acc_alt - (1 - f0) / f0 * acc_nom, kish, par


def kish_size(s1: NDArray[np.float64], s2: NDArray[np.float64]) -> NDArray[np.float64]:
    """The Kish effective size (Σc)²/Σc² from the sums ``s1`` = Σc and ``s2`` = Σc² (0 where
    nothing contributes).

    >>> kish_size(np.array([4.0, 0.0]), np.array([4.0, 0.0])).tolist()
    [4.0, 0.0]
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.where(s2 > 0, s1**2 / np.where(s2 > 0, s2, 1.0), 0.0)


_DIRECT_BINS = 4000
"""Cells of the direct draw's inverse-CDF grids per variable (:func:`_form_sampler`)."""
TILT_SIGMAS = 2.0
"""The direct draws' proposal in rapidity: half from the form's own density, half from it
shifted forward by this many σ_y (:func:`_form_sampler`): a beam dump's shortest lifetimes
take the A′ near the beam energy, 3–4 σ_y forward of ȳ, which the form's own density reaches
with a few in 10⁴ of its draws and the shifted one with a tenth; the weights
g/(½g + ½g_shifted) stay below 2, so the long lifetimes lose at most half their draws."""


class _FormDraws:
    """The callable ``(mass, n, seed)`` of :func:`_form_sampler`; after each call
    :attr:`weight` holds its samples' importance weights (p_form/proposal up to one constant:
    self-normalised by the caller)."""

    def __init__(self, form: Any, par: tuple[float, ...], fiducial: Any,
                 e_max: float | None) -> None:  # fmt: skip
        self.form, self.par, self.fid, self.e_max = form, par, fiducial, e_max
        self.weight = np.empty(0)

    @staticmethod
    def _grid(lo: float, hi: float, logp: Callable[[NDArray], NDArray]) -> tuple:
        edges = np.linspace(lo, hi, _DIRECT_BINS + 1)
        lp = logp(0.5 * (edges[1:] + edges[:-1]))
        cdf = np.cumsum(np.exp(lp - lp.max()))
        return edges, cdf / cdf[-1]

    @staticmethod
    def _inverse(g: tuple, u: NDArray, v: NDArray) -> NDArray:
        edges, cdf = g
        i = np.minimum(np.searchsorted(cdf, u, side="right"), cdf.size - 1)
        return edges[i] + v * (edges[i + 1] - edges[i])

    def __call__(self, mass: float, n: int, seed: int | None = None) -> dict[str, Any]:
        form, fid, e_max = self.form, self.fid, self.e_max
        _, t, mu, s, a = self.par
        shift = TILT_SIGMAS * s
        g_pt = self._grid(0.0, max(6.0, 60.0 * t), lambda x: form.log_pt(mass, x, t, a))
        g_y = self._grid(mu - 12.0 * s, mu + 12.0 * s, lambda x: form.log_y(x, mu, s))
        g_up = self._grid(mu + shift - 12.0 * s, mu + shift + 12.0 * s,
                          lambda x: form.log_y(x, mu + shift, s))  # fmt: skip
        rng = np.random.default_rng(seed)
        qs, es, ws, have = [], [], [], 0
        for _ in range(1000):
            if have >= n:
                break
            k = max(2 * (n - have), 1000)
            u = rng.random((5, k))
            pt = self._inverse(g_pt, u[0], u[1])
            up = u[4] < 0.5
            y = np.where(up, self._inverse(g_up, u[2], u[3]), self._inverse(g_y, u[2], u[3]))
            with np.errstate(over="ignore"):
                w = 2.0 / (1.0 + np.exp(form.log_y(y, mu + shift, s) - form.log_y(y, mu, s)))
            w = w * np.exp(form.log_factor(mass, pt, y))  # a factor towards the beam energy
            e = np.sqrt(pt**2 + mass**2) * np.cosh(y)
            keep = ~np.asarray(fid.contains(np.full(k, mass), pt, e), dtype=bool) & (w > 0)
            if e_max is not None:
                keep &= e <= e_max
            qs.append(pt[keep])
            es.append(e[keep])
            ws.append(w[keep])
            have += int(keep.sum())
        if have < n:
            raise InputError(f"extrapolation: the {form.name} form has (almost) nothing outside "
                             f"the fiducial region at m = {mass:g} GeV")  # fmt: skip
        self.weight = np.concatenate(ws)[:n]
        return {"qT": np.concatenate(qs)[:n], "E": np.concatenate(es)[:n],
                "extrapolated": np.ones(n, dtype=bool)}  # fmt: skip


def _form_sampler(form: Any, par: tuple[float, ...], fiducial: Any,
                  e_max: float | None = None) -> _FormDraws:  # fmt: skip
    """A sampler ``(mass, n, seed)`` of ``n`` (q_T, E) of the model's ``form`` at the
    parameters ``par`` = (f_F, T, ȳ, σ_y, a) outside F (accept–reject on
    ``fiducial.contains``), importance-weighted (:class:`_FormDraws` ``weight``): p_T by
    inverse CDF of the form's density on a grid of :data:`_DIRECT_BINS` cells (the density
    at each cell's centre, uniform within the cell; p_T ≤ max(6 GeV, 60 T)), y from the
    mixture of the form's rapidity density and its copy shifted forward by
    :data:`TILT_SIGMAS` σ_y (each within its centre ± 12 σ_y, wider than the fit's quadrature
    grid, whose edge at y = 9 would cut the logistic form's tail), weight g/(½g + ½g_shifted)
    × a form's parameter-free factor (:meth:`ModelForm.log_factor`), E = m_T cosh y;
    with ``e_max`` only E ≤ e_max (the sampler's truncation, :class:`ExtrapolatedSampler`
    ``e_max``).

    References:
        Importance sampling with a defensive mixture proposal: T. Hesterberg, Technometrics 37
        (1995) 185.
    """
    return _FormDraws(form, par, fiducial, e_max)


def _direct_seed(seed: int | None) -> int:
    """The direct draws' seed from the mass's: ``SeedSequence([seed, 1])`` (the nominal's
    and every form's the same: common random numbers)."""
    return int(np.random.SeedSequence([0 if seed is None else int(seed), 1]).generate_state(1)[0])


def _resolved_ratio(nominal: tuple[NDArray, NDArray], alt: tuple[NDArray, NDArray]) -> NDArray[np.float64]:
    """N_alt/N per cτ from (N, its Kish effective size) of each draw; NaN where either is
    not positive or not resolved (an effective size below :data:`KISH_MIN`)."""
    (n0, k0), (n1, k1) = nominal, alt
    ok = (n0 > 0) & (n1 > 0) & (k0 >= KISH_MIN) & (k1 >= KISH_MIN)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ok, n1 / np.where(ok, n0, 1.0), np.nan)


class _DirectDraw:
    """N_alt/N of a form against the nominal from their own samples outside F
    (:func:`_form_shifts`, where the reweighting's effective size is too small): N/Y_F =
    𝓔_in + (1 − f)/f 𝓔_out, 𝓔_in the nominal draw's (its samples inside F: no form moves
    them), 𝓔_out the mean acceptance of ``n`` samples of the form outside F
    (:func:`_form_sampler`, importance-weighted, self-normalised) through ``redraw``, the same
    size as the nominal draw; every form and the nominal drawn with the same seed (common
    random numbers: their ratio's noise partly cancels). N is resolved where the Kish
    effective size of its contributions (the nominal draw's inside F, 1/(n f) each ×
    acceptance, and the direct draw's outside, (1 − f)/f × its normalised weight ×
    acceptance; 1/f × it, drawn over the whole phase space, where the nominal draw's model
    samples cover it, :attr:`_OutSamples.full`) reaches :data:`KISH_MIN`: at a cτ where one
    sample's
    survival of e^{−40} is the whole of N, N_alt/N is not measured but one sample's luck."""

    def __init__(self, fiducial: Any, draw: _OutSamples, redraw: Redraw, seed: int | None,
                 ctau: NDArray, sq_in: NDArray, e_max: float | None = None) -> None:  # fmt: skip
        self.fid, self.draw, self.redraw, self.ctau = fiducial, draw, redraw, ctau
        self.e_max = e_max
        self.seed = _direct_seed(seed)
        n = draw.out_mask.size
        self.n = n
        self.e_in = (draw.tot * n - draw.a.sum(axis=0)) / n / draw.f0
        self.sq_in = sq_in / (n * draw.f0) ** 2  # Σ (contribution)² of the inside samples
        self._n0: tuple[NDArray, NDArray] | None = None

    def _n_over_yf(self, form: Any, par: tuple[float, ...]) -> tuple[NDArray, NDArray]:
        """(N/Y_F, its Kish effective size) per cτ of ``form`` at ``par``."""
        draws = _form_sampler(form, par, _Nowhere() if self.draw.full else self.fid, self.e_max)
        sample = self.redraw(draws, self.n, self.seed)
        a = per_sample_acceptance(sample, self.ctau)
        f = par[0]
        share = 1.0 if self.draw.full else 1.0 - f  # the draw's part of the model: all, or outside F
        c = share / f * draws.weight / draws.weight.sum()  # each sample's share
        tot = self.e_in + c @ a
        sq = self.sq_in + (c**2) @ (a**2)
        return tot, kish_size(tot, sq)

    def ratio(self, form: Any, par: tuple[float, ...]) -> NDArray[np.float64]:
        """N_alt/N per cτ (NaN where N or N_alt is not resolved: an effective size below
        :data:`KISH_MIN`)."""
        if self._n0 is None:
            t, mu, s, a = self.draw.nominal
            self._n0 = self._n_over_yf(NOMINAL, (self.draw.f0, t, mu, s, a))
        return _resolved_ratio(self._n0, self._n_over_yf(form, par))


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
    (1 − f_F(θ))/f_F(θ) 𝓔_out(θ) (𝓔(θ)/f_F(θ) where the draw's model samples cover the whole
    phase space, :attr:`_OutSamples.full`), the extrapolated samples' acceptance reweighted
    by p_θ/p_θ0 (self-normalised, as :func:`_form_shifts`), f_F by quadrature. A step is
    given in the covariance's rows (``rows``: (kind, index, weight), kind 0–3 = T, ȳ, σ_y,
    a; a group's T and a enter the mass's with its interpolation weight)."""

    def __init__(self, fiducial: Any, draw: _OutSamples, rows: list[tuple[int, int, float]]):
        self.fid, self.mass, self.qt, self.y = fiducial, draw.mass, draw.qt, draw.y
        self.a_out = draw.a
        self.base = np.asarray(draw.nominal, dtype=np.float64)
        self.rows, self.inside = rows, draw.inside  # F on the quadrature grid (grid_in_f)
        self.full = draw.full
        n = draw.out_mask.size
        in_sum = draw.tot * n - draw.a.sum(axis=0)  # the samples inside F: not moved by θ
        self.e_in = in_sum / n / draw.f0  # 𝓔_in (the inside share of the draw is f_F)
        self.lp0 = self._logp(self.base)
        self.n0 = self._n_over_yf(self.base)  # the reweighting's own nominal

    def _logp(self, p):
        t, mu, s, a = p
        return NOMINAL.log_p(self.mass, self.qt, self.y, t, mu, s, a)

    def _n_over_yf(self, p):
        f = fiducial_fraction(self.fid, self.mass, tuple(p), self.inside)
        if not f > 0:  # F has no area at this mass on the quadrature grid: N/Y_F undefined
            return np.full(np.shape(self.e_in), np.nan)
        lw = self._logp(p) - self.lp0
        w = np.exp(lw - lw.max()) if lw.size else lw
        acc = w @ self.a_out / max(float(w.sum()), 1e-300)
        return self.e_in + (1.0 if self.full else 1 - f) / f * acc

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


class _Nowhere:
    """A region holding nothing: :func:`_form_sampler` then draws a form over the full phase
    space (its samples are those outside the region)."""

    @staticmethod
    def contains(m: ArrayLike, qt: ArrayLike, energy: ArrayLike) -> NDArray[np.bool_]:
        return np.zeros(np.shape(m), dtype=bool)


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
    mass's rows (:func:`_gradient_rows`), half the difference of ln 𝓔 per axis in quadrature;
    ``forms``, each alternative form's |ln 𝓔_alt/𝓔| at its own fit
    (:attr:`Extrapolation.model_variations`) in quadrature. Where a form's reweighted
    contributions have a Kish effective size below :data:`KISH_MIN`, its ratio comes from a
    direct draw of the form and of the nominal over the full phase space through ``redraw``
    (same seed: common random numbers), NaN where that does not resolve N either (and without
    ``redraw``); ``forms_unresolved`` 1 there. ``e_max``: the sampler's energy bound
    (the direct draws truncated as the nominal's).

    Returns:
        ``{"fit", "forms", "forms_unresolved"}``, each per cτ (1σ of ln N; the flag 0/1).

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
    a = per_sample_acceptance(sample, ctau)
    _, t, mu, s = (float(v) for v in ex.at(mass))
    nominal = np.array([t, mu, s, float(ex.power_at(mass))])
    lp0 = NOMINAL.log_p(mass, qt, y, nominal[0], mu, s, nominal[3])
    a_mean = a.mean(axis=0)

    def ln_ratio(form: Any, par: NDArray) -> tuple[NDArray, NDArray]:
        lp = form.log_p(mass, qt, y, par[0], par[1], par[2], par[3])
        w = np.exp(np.clip(lp - lp0, -700.0, 700.0))
        c = w[:, None] * a
        with np.errstate(divide="ignore", invalid="ignore"):
            r = (c.sum(axis=0) / w.sum()) / a_mean
            return np.where(r > 0, np.log(np.where(r > 0, r, 1.0)), np.nan), kish_size(c.sum(axis=0), (c**2).sum(axis=0))

    rows = _gradient_rows(ex, mass)
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
        up, dn = ln_ratio(NOMINAL, nominal + step)[0], ln_ratio(NOMINAL, nominal - step)[0]
        var_fit += np.nan_to_num(0.5 * (up - dn)) ** 2
    var_forms, lost = np.zeros(ctau.size), np.zeros(ctau.size, bool)
    direct = _FullSpaceDraw(redraw, seed, ctau, sample.n if hasattr(sample, "n") else qt.size, nominal,
                            e_max)  # fmt: skip
    for name, rec in (ex.model_variations or {}).items():
        form = _variation_form(name, rec)
        par = None if form is None else _record_params(rec, ex.mass, mass, (0.0, t, mu, s), nominal[3])
        if par is None:
            continue
        alt = np.array(par[1:], dtype=np.float64)
        lr, kish = ln_ratio(form, alt)
        low = (kish < KISH_MIN) | ~np.isfinite(lr)
        if np.any(low):
            lr = np.where(low, direct.ln_ratio(form, alt), lr)
        lost |= ~np.isfinite(lr)
        var_forms += np.nan_to_num(lr) ** 2
    forms = np.where(lost, np.nan, np.sqrt(var_forms))
    return {"fit": np.sqrt(var_fit), "forms": forms, "forms_unresolved": lost.astype(np.float64)}


class _FullSpaceDraw:
    """ln(𝓔_alt/𝓔) of a form against the nominal from their own draws over the full phase
    space (:func:`nsig_full_space_error`, where reweighting does not resolve it), NaN where
    either draw's Kish effective size is below :data:`KISH_MIN` or without ``redraw``."""

    def __init__(self, redraw: Redraw | None, seed: int | None, ctau: NDArray, n: int,
                 nominal: NDArray, e_max: float | None = None) -> None:  # fmt: skip
        self.redraw, self.ctau, self.n, self.nominal = redraw, ctau, n, nominal
        self.e_max = e_max
        self.seed = _direct_seed(seed)
        self._n0: tuple[NDArray, NDArray] | None = None

    def _mean(self, form: Any, par: NDArray) -> tuple[NDArray, NDArray]:
        assert self.redraw is not None
        t, mu, s, a_pow = (float(v) for v in par)
        draws = _form_sampler(form, (0.0, t, mu, s, a_pow), _Nowhere(), self.e_max)
        smp = self.redraw(draws, self.n, self.seed)
        a = per_sample_acceptance(smp, self.ctau)
        w = draws.weight / draws.weight.sum()  # self-normalised importance weights
        return w @ a, kish_size(w @ a, (w**2) @ (a**2))

    def ln_ratio(self, form: Any, par: NDArray) -> NDArray[np.float64]:
        if self.redraw is None:
            return np.full(self.ctau.size, np.nan)
        if self._n0 is None:
            self._n0 = self._mean(NOMINAL, self.nominal)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(_resolved_ratio(self._n0, self._mean(form, par)))


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

    f = np.array(fractions(NOMINAL, nominal), dtype=np.float64)
    forms = {}
    for name, rec in (arm.model_variations or {}).items():
        form = _variation_form(name, rec)
        if form is None:
            continue

        def alt(m: float, rec: Mapping[str, Any] = rec) -> tuple[float, ...] | None:
            par = _record_params(rec, arm.mass, m, arm.at(m), float(arm.power_at(m)))
            return None if par is None else par[1:]

        forms[name] = {**rec, "fiducial_fraction": fractions(form, alt)}
    return dataclasses.replace(arm, fiducial_fraction=f, model_variations=forms,
                               fiducial=fiducial.as_dict(), yield_covariance=None,
                               fiducial_fraction_err=None, fiducial_fraction_err_stat=None,
                               fiducial_fraction_err_alt=None)  # fmt: skip


def nsig_reach_error(
    split: Any, mass: float, kinematics: dict[str, ArrayLike], sample: Any, ctau: ArrayLike,
    *, redraw: Redraw | None = None, seed: int | None = None,
) -> NDArray[np.float64]:  # fmt: skip
    """The reach's extrapolation error of N_sig at one mass: the r of its log-normal normsys
    per cτ, e^w − 1 (NaN where a form does not resolve N). ``split``: the source's
    :class:`~gammastar.yields.extrapolation.samplers.ExtrapolatedSampler`. Below a
    both-channels run's seam, with no flow and the model fitted there (``split.below``),
    :func:`nsig_full_space_error` (the yield does not depend on the model); elsewhere
    :func:`nsig_relative_error` with ``propagation="log"`` (arguments as there), of the arm's
    model normalised in F (:func:`arm_in_fiducial`) where it gives the kinematics
    (``split.model_at``): N = Y_F 𝓔/f_F as for the fiducial fit."""
    below = getattr(split, "below", None)
    seam = getattr(split, "seam", None)
    e_max = getattr(split, "e_max", None)  # the sampler's energy bound: the direct draws' too
    if below is not None and seam is not None and mass < seam and split.inside is None:
        p = nsig_full_space_error(below, mass, kinematics, sample, ctau, redraw=redraw, seed=seed,
                                  e_max=e_max)  # fmt: skip
        return np.expm1(np.sqrt(p["fit"] ** 2 + p["forms"] ** 2))
    return nsig_relative_error(split.model_at(mass), split.fiducial, mass, kinematics, sample, ctau,
                               settings=NsigErrorSettings(propagation="log"), redraw=redraw,
                               seed=seed, e_max=e_max)  # fmt: skip
