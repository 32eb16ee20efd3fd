"""The fit's parameters in the N_sig error: the covariance's rows at a mass
(:func:`gradient_rows`), N/Y_F's gradient in them (:func:`nsig_gradient`), ln N at steps of
them (:class:`LogSteps`), and the external σ_y's response (:func:`external_response`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from gammastar.errors import InputError
from gammastar.yields.extrapolation.model import NOMINAL, fiducial_fraction
from gammastar.yields.extrapolation.nsig.draw import OutSamples, reweight
from gammastar.yields.extrapolation.result import Extrapolation

__all__ = ["LogSteps", "external_response", "gradient_rows", "log_fit_variances", "nsig_gradient"]


def gradient_rows(ex: Extrapolation, mass: float) -> list[tuple[int, int, float]]:
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


def nsig_gradient(fiducial: Any, draw: OutSamples, pt_power_fitted: bool, rows: list,
                   n: int) -> NDArray[np.float64]:  # fmt: skip
    """∂(E_x/f_F)/∂θ per cτ in the covariance's ``rows`` (:func:`gradient_rows`, each with
    its weight), θ = (T, ȳ, σ_y[, a]): E_x's by reweighting the extrapolated samples (``n``
    the draw's size), f_F's by central differences."""
    mass, (t, mu, s, a_pow), f0 = draw.mass, draw.nominal, draw.f0
    dlp = NOMINAL.dlogp(mass, draw.qt, draw.y, t, mu, s, a_pow)  # (3, n_out): (T, ȳ, σ_y)
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
        df[j] = (fiducial_fraction(fiducial, mass, tuple(up), draw.inside, draw.form)
                 - fiducial_fraction(fiducial, mass, tuple(dn), draw.inside, draw.form)) / (2 * h)  # fmt: skip
    grad = (de_x - np.outer(df, e_x) / f0) / f0  # (3 or 4, n_ct)
    return grad[[j for j, _, _ in rows]] * np.array([wg for _, _, wg in rows])[:, None]


def log_fit_variances(steps: LogSteps, sub: NDArray, d_ext: NDArray) -> tuple[NDArray, NDArray]:
    """(the fit's with the external part, the external σ_y's) variances of ln N: N/Y_F at ±1σ
    along each principal axis of the covariance ``sub`` less δδᵀ, and along ±δ."""
    var_ext = steps.along(d_ext) ** 2
    lam, vec = np.linalg.eigh(sub - np.outer(d_ext, d_ext))
    var_stat = var_ext + sum(
        (steps.along(np.sqrt(lv) * vec[:, j]) ** 2 for j, lv in enumerate(lam) if lv > 0),
        np.zeros(steps.n0.size),
    )
    return var_stat, var_ext


def external_response(ex: Extrapolation, steps: Any, sides, q) -> NDArray[np.float64]:
    """The external σ_y's 1σ of ln N from N/Y_F at its two fits (``parameter_sides``, free
    parameters' shifts; ``q`` the covariance rows at the mass): ln N = a z + b z² through
    (z₊, ln N₊), (z₋, ln N₋) and (0, 0), z = the side's σ_y shift / error (±1 unless a bound
    clipped it), and √(a² + 2b²), the sd of a z + b z² over z ~ N(0, 1) (not linearised: ln N
    is markedly concave in σ_y on the mock, docs/validation/uncertainties-and-coverage.md); 0 at a zero error, NaN where
    N/Y_F is undefined at a side (the caller then keeps the linear part)."""
    if ex.y_sigma_external is None:
        raise InputError("extrapolation: no external sigma_y, no response to it")
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


class LogSteps:
    """ln N at parameter steps for :func:`nsig_error_parts` (``log=True``, and an external
    σ_y's two fits in both modes): N/Y_F = 𝓔_in +
    (1 − f_F(θ))/f_F(θ) 𝓔_out(θ) (𝓔(θ)/f_F(θ) where the draw's model samples cover the whole
    phase space, :attr:`OutSamples.full`), the extrapolated samples' acceptance reweighted
    by p_θ/p_θ0 (self-normalised, as :func:`form_shifts`), f_F by quadrature. A step is
    given in the covariance's rows (``rows``: (kind, index, weight), kind 0–3 = T, ȳ, σ_y,
    a; a group's T and a enter the mass's with its interpolation weight)."""

    def __init__(self, fiducial: Any, draw: OutSamples, rows: list[tuple[int, int, float]]):
        self.fid, self.mass, self.qt, self.y = fiducial, draw.mass, draw.qt, draw.y
        self.a_out, self.w_out = draw.a, draw.w
        self.base = np.asarray(draw.nominal, dtype=np.float64)
        self.rows, self.inside = rows, draw.inside  # F on the quadrature grid (grid_in_f)
        self.full, self.form = draw.full, draw.form
        n = draw.out_mask.size
        in_sum = draw.tot * n - draw.a.sum(axis=0)  # the samples inside F: not moved by θ
        self.e_in = in_sum / n / draw.f0  # 𝓔_in (the inside share of the draw is f_F)
        self.lp0 = self._logp(self.base)
        self.n0 = self._n_over_yf(self.base)  # the reweighting's own nominal

    def _logp(self, p):
        t, mu, s, a = p
        return self.form.log_p(self.mass, self.qt, self.y, t, mu, s, a)

    def _n_over_yf(self, p):
        f = fiducial_fraction(self.fid, self.mass, tuple(p), self.inside, self.form)
        if not f > 0:  # F has no area at this mass on the quadrature grid: N/Y_F undefined
            return np.full(np.shape(self.e_in), np.nan)
        acc = reweight(self._logp(p) - self.lp0, self.a_out, self.w_out)[0]
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
