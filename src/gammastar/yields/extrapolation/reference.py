"""The fixed broad reference sample of the importance-sampled fiducial fraction: P_F and its
gradient smooth in the parameters (:func:`reference_draws`, :class:`ReferenceSample`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gammastar.physics.kinematics import rapidity_pz
from gammastar.physics.sampling import ParametricSampler
from gammastar.yields._extrapolation_kernel import group_sums
from gammastar.yields._fiducial_bound import (
    cell_bound,
    contains_at_mass,
    inside_at_mass,
    mt_exponential_candidates,
)
from gammastar.yields.extrapolation.model import (
    NOMINAL,
    ModelForm,
    log_pt_of,
    log_y_gauss,
    pt_terms,
)

__all__ = ["REFERENCE", "REFERENCE_SAMPLES", "ReferenceSample", "reference_draws"]


REFERENCE = (0.3, 3.4, 2.0)
"""(T, ȳ, σ_y) of the broad reference sample behind P_F in the fit."""
REFERENCE_SAMPLES = 200_000
"""Points of each fit group's reference sample. The sample is fixed (seeded) in a fit, so
its Monte Carlo error is a small fixed offset of P_F rather than noise in the likelihood; its
spread over seeds is a small fraction of f_F's statistical error
(``validation/scripts/reference_sample.py``)."""


def reference_draws(seed: int) -> dict[str, NDArray]:
    """The random numbers of the reference sample of ``seed`` (:class:`ReferenceSample`), which do
    not depend on its mass (:meth:`~gammastar.physics.sampling.ParametricSampler.draws`), with
    the parts of the sample that do not depend on it either (:func:`_mass_free_parts`)."""
    return _mass_free_parts(ParametricSampler(*REFERENCE).draws(REFERENCE_SAMPLES, seed))


def _mass_free_parts(draws: Mapping[str, NDArray]) -> dict[str, NDArray]:
    """``draws`` with ``cosh_y``, ``u_exp`` = T e₀ and ``u_gamma`` = T (e₀ + e₁): the
    factors of :meth:`~gammastar.physics.sampling.ParametricSampler.sample_at`'s q_T and E
    that do not depend on the mass, the same numbers (E = m_T cosh y; the p_T of Exp(T) or
    Γ(2, T) from u), computed once for the masses and regions of one draw."""
    t = REFERENCE[0]
    e = draws["e"]
    return {**draws, "cosh_y": np.cosh(draws["y"]), "u_exp": t * (e[0] + 0.0),
            "u_gamma": t * (e[0] + e[1])}  # fmt: skip


def _inside_sample(fiducial: Any, m: float, draws: Mapping[str, NDArray]
                   ) -> tuple[NDArray, NDArray]:  # fmt: skip
    """(q_T, E) of the reference sample's points at mass ``m`` inside ``fiducial``: those of
    :meth:`~gammastar.physics.sampling.ParametricSampler.sample_at` where
    :func:`~gammastar.yields._fiducial_bound.inside_at_mass` holds, made and tested only at
    the points whose acceptance cell can pass (the other 3/4 of the sample; the same points,
    number for number)."""
    ok = cell_bound(fiducial, m, m)
    if ok is None:
        out = ParametricSampler(*REFERENCE).sample_at(draws, m)
        keep = inside_at_mass(fiducial, m, out["qT"], out["E"])
        return out["qT"][keep], out["E"][keep]
    parts = draws if "cosh_y" in draws else _mass_free_parts(draws)
    _, qt, e = mt_exponential_candidates(fiducial, m, ok, parts, REFERENCE[0])
    keep = contains_at_mass(fiducial, m, qt, e)
    return qt[keep], e[keep]


class ReferenceSample:
    """P_F(θ) = ⟨1_F p_θ / p_ref⟩ over a fixed sample of the broad reference model at one mass:
    smooth in θ and evaluated with the same F as the data (importance sampling; the grid
    quadrature's O(step) error in ∂P_F/∂θ biased the weakly constrained σ_y)."""

    def __init__(self, fiducial: Any, m: float, seed: int,
                 draws: Mapping[str, NDArray] | None = None, size: int | None = None
                 ) -> None:  # fmt: skip
        """The sample of :data:`REFERENCE_SAMPLES` at mass ``m`` drawn with ``seed``, or made
        from ``draws`` (:func:`reference_draws` of that seed: the same sample, the random
        numbers drawn once for several masses), and its part inside ``fiducial``. With
        ``size``, ``draws`` hold the mass-free parts (:func:`_mass_free_parts`) of only some
        of the sample's ``size`` points, among them every one that may lie inside
        (:func:`~gammastar.yields._fiducial_bound.mt_exponential_superset`): the same
        sample."""
        if draws is None:
            draws = reference_draws(seed)
        qt, e = _inside_sample(fiducial, m, draws)
        pz = np.sqrt(np.clip(e**2 - m**2 - qt**2, 0.0, None))
        t0, mu0, s0 = REFERENCE
        self.m, self.n = m, draws["r"].size if size is None else int(size)
        self.pt = qt
        self.y = rapidity_pz(pz, e)
        # the sample's (q_T, E) hold |y| (p_z ≥ 0): a backward draw (y < 0) comes back at −y,
        # so the density of the kept |y| is the folded Gaussian g(y) + g(−y), with
        # g(−y)/g(y) = e^{−2 y ȳ / σ_y²}; the model's own density stays the forward one (a
        # backward A′ is never in F)
        fold = np.log1p(np.exp(-2.0 * self.y * mu0 / s0**2))
        # what the compiled sums take (_extrapolation_kernel): fixed with the sample; ln p_T
        # and m_T also make the reference density (:func:`log_pt_of`, the same numbers)
        with np.errstate(divide="ignore"):
            self._lpt = np.log(self.pt)
        self._mt = np.sqrt(self.pt**2 + m**2)
        self.log_ref = log_pt_of(self._lpt, self._mt, m, t0) + log_y_gauss(self.y, mu0, s0) + fold
        self._lmt = np.log(self._mt)
        self._m = np.array([m], dtype=np.float64)
        self._y = np.ascontiguousarray(self.y, dtype=np.float64)
        self._log_ref = np.ascontiguousarray(self.log_ref, dtype=np.float64)
        self._with_factor: dict[tuple[Any, ...], NDArray[np.float64]] = {}

    def log_ref_for(self, form: ModelForm) -> NDArray[np.float64]:
        """ln p_ref less ``form``'s parameter-free factor (:meth:`ModelForm.log_factor`) at the
        sample's points: what the compiled sums weigh the sample by, so that they hold the
        factor (it has no parameter: the derivatives stay the form's without it). Kept per
        factor (a fit evaluates it at every step)."""
        if not form.has_factor:
            return self._log_ref
        key = (form.x_power, form.beam_energy, form.dalitz_mass, form.factor)
        got = self._with_factor.get(key)
        if got is None:
            with np.errstate(invalid="ignore"):
                got = np.ascontiguousarray(self._log_ref - form.log_factor(self.m, self.pt, self.y))
            self._with_factor = {key: got}  # one factor at a time: the fit's
        return got

    def fraction(
        self, t: float, mu: float, s: float, form: ModelForm = NOMINAL, a: float = 0.0
    ) -> float:
        lp = form.log_p(self.m, self.pt, self.y, t, mu, s, a)
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
        k, c_t, dn = pt_terms(self.m, t, a_eff, with_power)
        out = group_sums(self._lpt, self._lmt, self._mt, self._y, self._m, self.log_ref_for(form),
                         True, self._m, k, c_t, dn, t, a_eff, mu, s,
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
        formulas; its factor, which has no parameter, in :meth:`log_ref_for`)."""
        lp = form.log_p_base(self.m, self.pt, self.y, t, mu, s, a)
        with np.errstate(invalid="ignore"):
            e = np.exp(lp - self.log_ref_for(form))
        tot = float(np.sum(e))
        if tot <= 0:
            return -700.0, np.zeros(4 if with_power else 3)
        g = form.dlogp(self.m, self.pt, self.y, t, mu, s, a) @ e / tot
        if with_power:
            g = np.append(g, form.dlog_pt_da(self.m, self.pt, t, a) @ e / tot)
        return math.log(tot / self.n), g
