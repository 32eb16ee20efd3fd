"""The measured λ_θ's moves carried to N_sig: each move's N′/N on the nominal draw reweighted
to the moved world (:class:`LambdaDraw`), or through the fiducial yield and F alone
(:func:`yield_ratio`), the moves combined (:func:`lambda_part`); what
:func:`gammastar.yields.extrapolation.nsig.nsig_lambda_theta` and the ``lambda_theta`` part of
:func:`~gammastar.yields.extrapolation.nsig.parts.nsig_error_parts` give.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gammastar.yields.extrapolation.model import fiducial_fraction
from gammastar.yields.extrapolation.nsig.forms import record_params
from gammastar.yields.extrapolation.result import Extrapolation

__all__ = ["LambdaDraw", "lambda_part", "with_lambda_part", "yield_ratio"]


class LambdaDraw:
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

    def __init__(self, ex, fiducial, mass, qt, e, out_mask, a, weight=None) -> None:
        self.ex, self.mass, self.qt, self.e, self.a = ex, mass, qt, e, a
        self.v = np.ones(qt.size) if weight is None else weight  # importance weights, in a
        self.at = ex.at(mass)
        self.f0, t, mu, s = (float(v) for v in self.at)
        self.nominal = (t, mu, s, float(ex.power_at(mass)))
        self.y = np.arccosh(np.maximum(e / np.sqrt(qt**2 + mass**2), 1.0))
        self.lp = ex.form.log_p(mass, qt, self.y, t, mu, s, self.nominal[3])
        self.in0 = ~out_mask  # the samples' roles: the flow's (the data's) or the model's
        self.m_s = np.full(qt.shape, mass)
        self.g0 = np.asarray(fiducial.contains(self.m_s, qt, e), dtype=bool)
        self.a0 = fiducial.acceptance.of_kinematics(self.m_s, qt, e)
        one, none = np.ones(qt.size), np.zeros(qt.size, dtype=bool)
        self.t0 = self._total(self.in0, none, ~self.in0, one, one, self.f0, 1.0)

    def _total(self, stay, enter, outside, r, w, f, scale):
        a, n = self.a, self.a.shape[0]
        sw = float(w[outside] @ self.v[outside])
        out = (w[outside] @ a[outside]) / sw * n * (1.0 - f) if sw > 0 else 0.0
        return r[stay] @ a[stay] + scale * (w[enter] @ a[enter] + out)

    def ratio(self, mv: Mapping[str, Any]) -> NDArray[np.float64]:
        ex, mass, qt, e = self.ex, self.mass, self.qt, self.e
        par = record_params(mv["fit"], ex.mass, mass, self.at, self.nominal[3])
        if par is None:  # no finite refit: the move's yield change alone
            return np.full(self.a.shape[1], 1.0 + float(mv["yield_shift"]))
        f1, t1, mu1, s1, a1 = par
        if not f1 > 0:  # no fraction in the moved region: the move's yield change alone
            return np.full(self.a.shape[1], 1.0 + float(mv["yield_shift"]))
        if mv.get("null") and (f1, t1, mu1, s1, a1) == (self.f0, *self.nominal):
            return np.ones(self.a.shape[1])
        u = np.exp(ex.form.log_p(mass, qt, self.y, t1, mu1, s1, a1) - self.lp)
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


def yield_ratio(ex: Extrapolation, fiducial: Any, mass: float, mv: Mapping[str, Any]) -> float:
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
    f0 = fiducial_fraction(fiducial, mass, par, form=ex.form)
    f1 = fiducial_fraction(region, mass, par, form=ex.form)
    return scale * f0 / f1 if f0 > 0 and f1 > 0 else scale


def lambda_part(moves, ratio, n_ct: int, log: bool) -> NDArray[np.float64]:
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


def with_lambda_part(parts: dict[str, NDArray], ex: Extrapolation, fiducial: Any, mass: float,
                      lam: tuple | None, log: bool) -> dict[str, NDArray]:  # fmt: skip
    """``parts`` with :func:`nsig_error_parts`' ``lambda_theta`` where ``lam`` = (the moves,
    (q_T, E, extrapolated, acceptance) of the draw, the number of cτ) is given
    (:func:`lambda_part`)."""
    if lam is not None:
        moves, (qt, e, out_mask, a, w), n_ct = lam
        ratio = LambdaDraw(ex, fiducial, mass, qt, e, out_mask, a, w).ratio
        parts["lambda_theta"] = lambda_part(moves, ratio, n_ct, log)
    return parts
