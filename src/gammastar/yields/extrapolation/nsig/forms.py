"""The model's alternative forms in the N_sig error: each form's record read at a mass
(:func:`record_params`, :func:`variation_form`) and its change of N/Y_F on the nominal draw
(:func:`form_shifts`), drawn directly where the reweighting is not trusted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gammastar.errors import InputError
from gammastar.yields.extrapolation.model import FORMS, TWO_SIDED
from gammastar.yields.extrapolation.nsig.direct import DirectDraw
from gammastar.yields.extrapolation.nsig.draw import KISH_MIN, OutSamples, reweight
from gammastar.yields.extrapolation.result import Extrapolation

__all__ = [
    "combine_form_variances",
    "form_shifts",
    "log_form_variances",
    "record_params",
    "signed_form_variances",
    "variation_form",
]


def combine_form_variances(var_each: Mapping[str, NDArray], size: int) -> NDArray[np.float64]:
    """The forms' part's variance per cτ: each form's variance summed, but a pair of
    :data:`TWO_SIDED` forms counted once, as the square of the mean of their two sizes
    ((|δ₋| + |δ₊|)/2)², the symmetrised 1σ of their one parameter (counting both as
    independent 1σ would add them in quadrature, √2 too wide where they are equal); NaN
    where any is (not resolved)."""
    out = np.zeros(size)
    paired = {k for pair in TWO_SIDED for k in pair}
    for k, v in var_each.items():
        if k not in paired:
            out = out + v
    for lo, hi in TWO_SIDED:
        got = [var_each[k] for k in (lo, hi) if k in var_each]
        if got:
            out = out + (sum(np.sqrt(np.maximum(v, 0.0)) for v in got) / len(got)) ** 2
    return out


def signed_form_variances(var_each: Mapping[str, NDArray], sign: Mapping[str, NDArray],
                          size: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:  # fmt: skip
    """The forms' part per side, (variance up, variance down) per cτ: each form's variance on
    the side its shift of N points to (``sign``, per form and cτ: > 0 up, < 0 down), summed;
    a pair of :data:`TWO_SIDED` forms, one parameter's −1σ and +1σ, gives each side the
    larger of its members' shifts there (their two signs differ: one to each side; they
    agree: that side only, as a parameter whose N rises both ways). NaN where any variance is
    (not resolved). Where every form's shift is down or up alike the two sides' sum is
    :func:`combine_form_variances`' but for the pair."""
    up, down = np.zeros(size), np.zeros(size)
    lost = np.zeros(size, dtype=bool)
    paired = {k for pair in TWO_SIDED for k in pair}

    def side(k: str, positive: bool) -> NDArray:
        s = np.broadcast_to(sign[k], (size,))
        return np.where(s > 0 if positive else s < 0, np.maximum(var_each[k], 0.0), 0.0)

    for k, v in var_each.items():
        lost |= np.isnan(np.broadcast_to(v, (size,)))
        if k not in paired:
            up, down = up + side(k, True), down + side(k, False)
    for pair in TWO_SIDED:
        got = [k for k in pair if k in var_each]
        if got:
            up = up + np.max([side(k, True) for k in got], axis=0)
            down = down + np.max([side(k, False) for k in got], axis=0)
    return np.where(lost, np.nan, up), np.where(lost, np.nan, down)


def form_shifts(ex: Extrapolation, draw: OutSamples, direct: DirectDraw | None = None
               ) -> tuple[dict[str, NDArray], dict[str, NDArray], dict[str, NDArray]]:  # fmt: skip
    """Per alternative form of the model, Δ(N/Y_F) per cτ, signed (the sum of their squares is
    the forms' part): each form's own
    E_x,alt/f_alt − E_x/f_F, E_x = (1 − f) 𝓔_out, with f_alt its fit's f_F
    (:attr:`Extrapolation.model_variations`) and 𝓔_out,alt the acceptance of the nominal
    draw's extrapolated samples reweighted by p_alt/p_nom, self-normalised (the alternative's
    normalisation outside F is 1 − f_alt, exactly; a plain reweighted mean would miss the
    heavier-tailed form's tails, where the nominal draw has few samples: −4% of E_x on the
    toy). Records whose form (:func:`variation_form`) :data:`FORMS` lacks are skipped.

    Also per form the Kish effective size of the reweighted contributing samples per cτ,
    n_eff = (Σ wᵢaᵢ)²/Σ (wᵢaᵢ)² (0 where none contributes), and, with ``direct``
    (:class:`DirectDraw`), N_alt/N from the form's and the nominal's own samples outside F
    where n_eff < :data:`KISH_MIN` (NaN elsewhere; there Δ = (N_alt/N − 1) N/Y_F, and NaN
    where the direct draw does not resolve N either, :class:`DirectDraw`). Returns (Δ, n_eff,
    N_alt/N)."""
    out: dict[str, NDArray[np.float64]] = {}
    kish: dict[str, NDArray[np.float64]] = {}
    ratio: dict[str, NDArray[np.float64]] = {}
    for name, rec in (ex.model_variations or {}).items():
        form = variation_form(name, rec)
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


def _record_shift(form, rec, ex_mass, draw: OutSamples) -> tuple | None:
    """Δ(N/Y_F) per cτ of one fit record (``fiducial_fraction``, ``temperature`` per mass bin
    ``ex_mass``, ``y_mean``, ``y_sigma``, optionally ``pt_power``) of the model's ``form``
    against the nominal on the ``draw``'s extrapolated samples (:func:`form_shifts`), with
    the Kish effective size of the reweighted contributions per cτ and the record's
    (f_F, T, ȳ, σ_y, a) at the mass; ``None`` where the record has no finite fit."""
    t, mu, s, a_pow = draw.nominal
    mass, qt, y, a_out, f0 = draw.mass, draw.qt, draw.y, draw.a, draw.f0
    par = record_params(rec, ex_mass, mass, (f0, t, mu, s), a_pow)
    if par is None:
        return None
    f_alt, t_alt, mu_alt, s_alt, a_alt = par
    lp_nom = draw.form.log_p(mass, qt, y, t, mu, s, a_pow)
    lp = form.log_p(mass, qt, y, t_alt, mu_alt, s_alt, a_alt)
    acc_alt, kish = reweight(lp - lp_nom, a_out, draw.w)  # self-normalised: 𝓔_out,alt
    acc_nom = a_out.mean(axis=0)
    if draw.full:  # the samples cover F too: N/Y_F = 𝓔/f
        return acc_alt / f_alt - acc_nom / f0, kish, par
    return (1 - f_alt) / f_alt * acc_alt - (1 - f0) / f0 * acc_nom, kish, par


def log_form_variances(shifts: Mapping[str, NDArray], n_over_yf: NDArray,
                        direct: Mapping[str, NDArray] | None = None) -> dict[str, NDArray]:  # fmt: skip
    """Per alternative form, ln(N_alt/N)² per cτ (0 where N or N_alt is not positive); where
    ``direct`` (per form, N_alt/N of the direct draws, NaN where not drawn) holds a ratio, its
    logarithm's square; NaN where the direct draw did not resolve N (:func:`form_shifts`)."""
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


def variation_form(name: str, rec: Mapping[str, Any]) -> Any:
    """The :data:`FORMS` entry of a model variation's record: its ``form`` (the nominal for
    ``y_mean_backward``, a refit at another ȳ), else its name, at the record's
    ``beam_energy`` where the form has a factor towards it, with the record's ``template``
    table for ``generator_template``; ``None``: not a known form, or such a form without its
    beam energy or table."""
    form = FORMS.get(str(rec.get("form", name)))
    if form is None:
        return None
    if form.name == "generator_template":
        if "template" not in rec:
            return None
        form = dataclasses.replace(form, factor=_template_of(rec["template"]))
    n = rec.get("x_power", form.x_power)  # the record's fall-off (the fit's, or its own)
    if not n:
        return form
    energy = rec.get("beam_energy")
    if energy is None:
        return None
    return form.with_falloff(float(n), float(energy), rec.get("dalitz_mass"))


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


def record_params(rec, ex_mass, mass, at, power) -> tuple[float, ...] | None:
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
