"""Direct draws of a model form outside F (or over the full phase space), for the N_sig
error where the nominal draw's reweighting has too small an effective size: the form's
importance-weighted sampler (:func:`form_sampler`) and N_alt/N from the form's and the nominal's
own samples (:class:`DirectDraw`, :class:`FullSpaceDraw`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.errors import InputError
from gammastar.yields.extrapolation.model import NOMINAL, ModelForm
from gammastar.yields.extrapolation.nsig.draw import (
    OutSamples,
    Redraw,
    kish_size,
    per_sample_acceptance,
    resolved_ratio,
)

__all__ = ["TILT_SIGMAS", "DirectDraw", "FullSpaceDraw", "Nowhere", "direct_seed", "form_sampler"]


_DIRECT_BINS = 4000
"""Cells of the direct draw's inverse-CDF grids per variable (:func:`form_sampler`)."""


TILT_SIGMAS = 2.0
"""The direct draws' proposal in rapidity: half from the form's own density, half from it
shifted forward by this many σ_y (:func:`form_sampler`): a beam dump's shortest lifetimes
take the A′ near the beam energy, 3–4 σ_y forward of ȳ, which the form's own density reaches
with a few in 10⁴ of its draws and the shifted one with a tenth; the weights
g/(½g + ½g_shifted) stay below 2, so the long lifetimes lose at most half their draws."""


class _FormDraws:
    """The callable ``(mass, n, seed)`` of :func:`form_sampler`; after each call
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


def form_sampler(form: Any, par: tuple[float, ...], fiducial: Any,
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


def direct_seed(seed: int | None) -> int:
    """The direct draws' seed from the mass's: ``SeedSequence([seed, 1])`` (the nominal's
    and every form's the same: common random numbers)."""
    return int(np.random.SeedSequence([0 if seed is None else int(seed), 1]).generate_state(1)[0])


class DirectDraw:
    """N_alt/N of a form against the nominal from their own samples outside F
    (:func:`form_shifts`, where the reweighting's effective size is too small): N/Y_F =
    𝓔_in + (1 − f)/f 𝓔_out, 𝓔_in the nominal draw's (its samples inside F: no form moves
    them), 𝓔_out the mean acceptance of ``n`` samples of the form outside F
    (:func:`form_sampler`, importance-weighted, self-normalised) through ``redraw``, the same
    size as the nominal draw; every form and the nominal drawn with the same seed (common
    random numbers: their ratio's noise partly cancels). N is resolved where the Kish
    effective size of its contributions (the nominal draw's inside F, 1/(n f) each ×
    acceptance, and the direct draw's outside, (1 − f)/f × its normalised weight ×
    acceptance; 1/f × it, drawn over the whole phase space, where the nominal draw's model
    samples cover it, :attr:`OutSamples.full`) reaches :data:`KISH_MIN`: at a cτ where one
    sample's
    survival of e^{−40} is the whole of N, N_alt/N is not measured but one sample's luck."""

    def __init__(self, fiducial: Any, draw: OutSamples, redraw: Redraw, seed: int | None,
                 ctau: NDArray, sq_in: NDArray, e_max: float | None = None) -> None:  # fmt: skip
        self.fid, self.draw, self.redraw, self.ctau = fiducial, draw, redraw, ctau
        self.e_max = e_max
        self.seed = direct_seed(seed)
        n = draw.out_mask.size
        self.n = n
        self.e_in = (draw.tot * n - draw.a.sum(axis=0)) / n / draw.f0
        self.sq_in = sq_in / (n * draw.f0) ** 2  # Σ (contribution)² of the inside samples
        self._n0: tuple[NDArray, NDArray] | None = None

    def _n_over_yf(self, form: Any, par: tuple[float, ...]) -> tuple[NDArray, NDArray]:
        """(N/Y_F, its Kish effective size) per cτ of ``form`` at ``par``."""
        draws = form_sampler(form, par, Nowhere() if self.draw.full else self.fid, self.e_max)
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
            self._n0 = self._n_over_yf(self.draw.form, (self.draw.f0, t, mu, s, a))
        return resolved_ratio(self._n0, self._n_over_yf(form, par))


class FullSpaceDraw:
    """ln(𝓔_alt/𝓔) of a form against the nominal from their own draws over the full phase
    space (:func:`nsig_full_space_error`, where reweighting does not resolve it), NaN where
    either draw's Kish effective size is below :data:`KISH_MIN` or without ``redraw``."""

    def __init__(self, redraw: Redraw | None, seed: int | None, ctau: NDArray, n: int,
                 nominal: NDArray, e_max: float | None = None,
                 form: ModelForm = NOMINAL) -> None:  # fmt: skip
        self.redraw, self.ctau, self.n, self.nominal = redraw, ctau, n, nominal
        self.form = form  # the nominal's (with its fall-off)
        self.e_max = e_max
        self.seed = direct_seed(seed)
        self._n0: tuple[NDArray, NDArray] | None = None

    def _mean(self, form: Any, par: NDArray) -> tuple[NDArray, NDArray]:
        assert self.redraw is not None
        t, mu, s, a_pow = (float(v) for v in par)
        draws = form_sampler(form, (0.0, t, mu, s, a_pow), Nowhere(), self.e_max)
        smp = self.redraw(draws, self.n, self.seed)
        a = per_sample_acceptance(smp, self.ctau)
        w = draws.weight / draws.weight.sum()  # self-normalised importance weights
        return w @ a, kish_size(w @ a, (w**2) @ (a**2))

    def ln_ratio(self, form: Any, par: NDArray) -> NDArray[np.float64]:
        if self.redraw is None:
            return np.full(self.ctau.size, np.nan)
        if self._n0 is None:
            self._n0 = self._mean(self.form, self.nominal)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log(resolved_ratio(self._n0, self._mean(form, par)))


class Nowhere:
    """A region holding nothing: :func:`form_sampler` then draws a form over the full phase
    space (its samples are those outside the region)."""

    @staticmethod
    def contains(m: ArrayLike, qt: ArrayLike, energy: ArrayLike) -> NDArray[np.bool_]:
        return np.zeros(np.shape(m), dtype=bool)
