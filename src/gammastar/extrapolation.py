r"""Beyond the fiducial region: a stated kinematic model fitted to the fiducial data.

The data determine d σ/dm dq only where the spectrometer sees the γ* (the fiducial region F
of :mod:`gammastar.pair_acceptance`). The part outside F is estimated with a model of the γ*
kinematics, fitted per mass range to the acceptance-corrected pairs inside F:

.. math:: \frac{1}{p_T}\frac{dN}{dp_T\,dy} \propto e^{-m_T/T}\;
          \exp\!\Big[-\frac{(y - \bar y)^2}{2\sigma_y^2}\Big],

the m_T-scaling thermal spectrum with a Gaussian lab rapidity used for hadron production in
fixed-target collisions (NA60, Eur. Phys. J. C 59 (2009) 607; physics.md §3.2). The fit
maximises the weighted likelihood of the model truncated to F,
Σ_i w_i [ln p(x_i) − ln P_F], with P_F = ∫_F p by quadrature on a (p_T, y) grid (smooth in
the parameters). It gives the fiducial fraction f_F(m) = P_F, so that the full-phase-space
yield is Y_F / f_F, and the model samples outside F for the extrapolated part of a reach
(:class:`ExtrapolatedSampler`, every such sample labelled).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.errors import InputError

__all__ = [
    "MODEL_NAME",
    "Extrapolation",
    "ExtrapolatedSampler",
    "fit_extrapolation",
    "fiducial_fraction",
]

MODEL_NAME = "mT-exponential x Gaussian rapidity"
_PT = np.linspace(0.0, 6.0, 241)[1:] - 0.0125  # midpoints, 25 MeV
_Y = np.linspace(-3.0, 9.0, 241)[1:] - 0.025  # midpoints, 0.05
_BOUNDS = ((0.03, 1.5), (-1.0, 8.0), (0.1, 5.0))
MIN_EFF_PAIRS = 400.0
"""Adjacent mass bins are fitted together until their Kish effective size reaches this."""


def _log_pt(m: NDArray, pt: NDArray, t: float) -> NDArray:
    """ln of p_T e^{−(m_T − m)/T} / (T (m + T)) (normalised over p_T ≥ 0)."""
    mt = np.sqrt(pt**2 + m**2)
    with np.errstate(divide="ignore"):
        return np.log(pt) - (mt - m) / t - math.log(t) - np.log(m + t)


def _log_y(y: NDArray, mu: float, s: float) -> NDArray:
    return -0.5 * ((y - mu) / s) ** 2 - math.log(s) - 0.5 * math.log(2 * math.pi)


def _grid_in_f(fiducial: Any, m: float) -> NDArray[np.bool_]:
    """F on the (p_T, y) quadrature grid at mass ``m`` (shape (n_pt, n_y))."""
    pt, y = np.meshgrid(_PT, _Y, indexing="ij")
    mt = np.sqrt(pt**2 + m**2)
    return fiducial.contains(np.full(pt.shape, m), pt, mt * np.cosh(y))


def fiducial_fraction(
    fiducial: Any, m: float, params: tuple[float, float, float], inside: NDArray | None = None
) -> float:
    """P_F: the fraction of the model's γ* at mass ``m`` inside the fiducial region.

    Arguments:
        fiducial: a :class:`~gammastar.pair_acceptance.FiducialRegion`.
        m: mass (GeV).
        params: (T, ȳ, σ_y).
        inside: F on the quadrature grid (:func:`_grid_in_f`; computed when not given).
    """
    t, mu, s = params
    if inside is None:
        inside = _grid_in_f(fiducial, m)
    dens = np.exp(_log_pt(m, _PT, t))[:, None] * np.exp(_log_y(_Y, mu, s))[None, :]
    dpt, dy = _PT[1] - _PT[0], _Y[1] - _Y[0]
    return float(np.sum(dens * inside) * dpt * dy)


@dataclass(frozen=True)
class Extrapolation:
    """Per mass bin: the fitted model and the fiducial fraction (``yields.json``
    ``extrapolation``)."""

    mass: NDArray[np.float64]
    edges: NDArray[np.float64]
    fiducial_fraction: NDArray[np.float64]
    temperature: NDArray[np.float64]
    y_mean: NDArray[np.float64]
    y_sigma: NDArray[np.float64]
    n_eff: NDArray[np.float64]
    """Kish effective pairs of the fit group that fixed each bin's parameters."""
    fiducial: dict[str, Any]

    def at(self, m: ArrayLike) -> tuple[NDArray, NDArray, NDArray, NDArray]:
        """(f_F, T, ȳ, σ_y) at masses ``m`` (linear between bin centres, constant beyond)."""
        m = np.asarray(m, dtype=np.float64)
        return tuple(
            np.interp(m, self.mass, a)
            for a in (self.fiducial_fraction, self.temperature, self.y_mean, self.y_sigma)
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": MODEL_NAME,
            "mass": self.mass.tolist(),
            "bin_edges": self.edges.tolist(),
            "fiducial_fraction": self.fiducial_fraction.tolist(),
            "temperature": self.temperature.tolist(),
            "y_mean": self.y_mean.tolist(),
            "y_sigma": self.y_sigma.tolist(),
            "n_eff": self.n_eff.tolist(),
            "fiducial": self.fiducial,
            "reference": "docs/yields.md#the-fiducial-region-and-the-extrapolation",
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Extrapolation:
        arr = {k: np.asarray(d[k], dtype=np.float64) for k in (
            "mass", "bin_edges", "fiducial_fraction", "temperature", "y_mean", "y_sigma",
            "n_eff")}  # fmt: skip
        return cls(arr["mass"], arr["bin_edges"], arr["fiducial_fraction"], arr["temperature"],
                   arr["y_mean"], arr["y_sigma"], arr["n_eff"], d["fiducial"])  # fmt: skip


def _fit_joint(data, start):
    """Joint weighted fit: one (ȳ, σ_y) for all groups, one T per group.

    ``data``: per group (m, pT, y, w, m_c, F on the grid)."""
    from scipy.optimize import minimize

    wtot = sum(float(np.sum(d[3])) for d in data)

    def nll(par):
        mu, s = par[0], par[1]
        tot = 0.0
        for (m, pt, y, w, m_c, inside), t in zip(data, par[2:], strict=True):
            ll = np.sum(w * (_log_pt(m, pt, t) + _log_y(y, mu, s)))
            pf = max(fiducial_fraction(None, m_c, (t, mu, s), inside), 1e-300)
            tot += ll - float(np.sum(w)) * math.log(pf)
        return -tot / wtot

    x0 = [start[1], start[2]] + [start[0]] * len(data)
    bounds = [_BOUNDS[1], _BOUNDS[2]] + [_BOUNDS[0]] * len(data)
    res = minimize(nll, x0, method="L-BFGS-B", bounds=bounds)
    return res.x


def fit_extrapolation(
    m: ArrayLike,
    pt: ArrayLike,
    y: ArrayLike,
    weight: ArrayLike,
    edges: ArrayLike,
    fiducial: Any,
    *,
    start: tuple[float, float, float] = (0.2, 3.0, 1.0),
) -> Extrapolation:
    """Fit the model to the weighted pairs inside the fiducial region, per mass bin.

    Adjacent bins are grouped until a group holds :data:`MIN_EFF_PAIRS` effective pairs
    (Kish, (Σw)²/Σw²); each bin takes its group's parameters and its own f_F.

    Arguments:
        m, pt, y, weight: the pairs (mass, p_T, lab rapidity, the ``weight`` column: pairs
            outside the region have weight 0 and are ignored).
        edges: mass bin edges (the A′ yield bins).
        fiducial: the :class:`~gammastar.pair_acceptance.FiducialRegion`.
        start: initial (T, ȳ, σ_y).

    Returns:
        :class:`Extrapolation`.

    Raises:
        InputError: no pair with non-zero weight.
    """
    m = np.asarray(m, dtype=np.float64)
    pt = np.asarray(pt, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    use = (w != 0) & np.isfinite(y) & (pt > 0)
    if not np.any(use):
        raise InputError("extrapolation: no pair inside the fiducial region to fit")
    m, pt, y, w = m[use], pt[use], y[use], w[use]
    idx = np.searchsorted(edges, m, side="right") - 1
    nb = len(edges) - 1
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
    centre = 0.5 * (edges[1:] + edges[:-1])
    temp, mu, sig, neff, frac = (np.full(nb, np.nan) for _ in range(5))
    data, fitted = [], []
    for g in groups:
        k = (idx >= g[0]) & (idx <= g[-1])
        ws, ws2 = float(np.sum(w[k])), float(np.sum(w[k] ** 2))
        if ws <= 0:
            continue
        m_c = float(np.sum(w[k] * m[k]) / ws)
        data.append((m[k], pt[k], y[k], w[k], m_c, _grid_in_f(fiducial, m_c)))
        fitted.append((g, ws * ws / ws2))
    if not data:
        raise InputError("extrapolation: no mass range with a positive weighted sum to fit")
    x = _fit_joint(data, start)
    for (g, n_eff), t in zip(fitted, x[2:], strict=True):
        for i in g:
            temp[i], mu[i], sig[i] = t, x[0], x[1]
            neff[i] = n_eff
            frac[i] = fiducial_fraction(fiducial, float(centre[i]), (t, x[0], x[1]))
    ok = np.isfinite(frac)
    if not np.any(ok):
        raise InputError("extrapolation: the fit failed in every mass bin")
    for a_ in (temp, mu, sig, frac):  # bins of a failed group: the nearest fitted bin
        a_[~ok] = np.interp(centre[~ok], centre[ok], a_[ok])
    return Extrapolation(centre, edges, frac, temp, mu, sig, np.nan_to_num(neff),
                         fiducial.as_dict())  # fmt: skip


class ExtrapolatedSampler:
    """A′ kinematics over the full phase space: a fiducial sampler (the flow) inside the
    fiducial region, the fitted model outside it.

    ``sample(mass, n, seed)`` returns ``{"qT", "E", "extrapolated"}``: a fraction f_F(m) of
    the samples from ``inside`` (``extrapolated`` False), the rest drawn from the model and
    kept only outside the region (``extrapolated`` True). ``inside=None``: the model
    everywhere (every sample labelled extrapolated).
    """

    def __init__(self, inside: Any, extrapolation: Extrapolation, fiducial: Any) -> None:
        self.inside = inside
        self.extrapolation = extrapolation
        self.fiducial = fiducial
        lo, hi = float(extrapolation.edges[0]), float(extrapolation.edges[-1])
        rng = getattr(inside, "mass_range", None)
        meta = getattr(inside, "meta", None)
        if rng is None and isinstance(meta, dict) and "mass_range" in meta:
            rng = meta["mass_range"]
        if rng is not None:
            lo, hi = max(lo, float(rng[0])), min(hi, float(rng[1]))
        self.mass_range = (lo, hi)
        self.model = MODEL_NAME

    def sample(self, mass: float, n: int, seed: int | None = None) -> dict[str, NDArray]:
        from gammastar.acceptance import ParametricSampler

        ss = np.random.SeedSequence(seed)
        s_split, s_in, s_out = ss.spawn(3)
        f, t, mu, s = (float(x) for x in self.extrapolation.at(mass))
        if self.inside is None:
            out = ParametricSampler(t, mu, s).sample(mass, n, seed=int(s_out.generate_state(1)[0]))
            return {**out, "extrapolated": np.ones(n, dtype=bool)}
        n_in = int(np.random.default_rng(s_split).binomial(n, min(max(f, 0.0), 1.0)))
        parts_q, parts_e = [], []
        if n_in:
            got = self.inside.sample(mass, n_in, seed=int(s_in.generate_state(1)[0]))
            parts_q.append(np.asarray(_np(got["qT"]), dtype=np.float64).ravel())
            parts_e.append(np.asarray(_np(got["E"]), dtype=np.float64).ravel())
        need = n - n_in
        model = ParametricSampler(t, mu, s)
        rng_out = np.random.default_rng(s_out)
        q_out, e_out, have = [], [], 0
        for _ in range(1000):
            if have >= need:
                break
            k = max(2 * (need - have), 1000)
            got = model.sample(mass, k, seed=int(rng_out.integers(2**63)))
            keep = ~self.fiducial.contains(np.full(k, mass), got["qT"], got["E"])
            q_out.append(got["qT"][keep])
            e_out.append(got["E"][keep])
            have += int(keep.sum())
        if have < need:
            raise InputError(
                f"extrapolation: the model has (almost) nothing outside the fiducial region at "
                f"m = {mass:g} GeV"
            )
        q = np.concatenate([*parts_q, np.concatenate(q_out)[:need]]) if need else parts_q[0]
        e = np.concatenate([*parts_e, np.concatenate(e_out)[:need]]) if need else parts_e[0]
        flag = np.concatenate([np.zeros(n_in, dtype=bool), np.ones(need, dtype=bool)])
        return {"qT": q, "E": e, "extrapolated": flag}


def _np(x: Any) -> Any:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else x
