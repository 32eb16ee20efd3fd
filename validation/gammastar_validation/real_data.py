"""Measured forward meson spectra against the extrapolation model: the real-data closure.

* :func:`load_csv`, :func:`load_bmpt`: the measured spectra of ``validation/data`` (one file
  per source, its citation in its header);
* :func:`bmpt_density`: the BMPT parametrisation of p + Be → π±, K± (Bonesini et al.,
  Eur. Phys. J. C 20 (2001) 13);
* :class:`Beam`: the centre-of-mass frame of a proton beam on a nucleon at rest, x_F and x_R;
* :class:`Reference`: a measured spectrum as d²N/dp_T dy on a (p_T, y_lab) grid at another
  beam energy, carried there by Feynman scaling (the same x_F and p_T), with the region it
  covers;
* :func:`arm_weight`, :func:`facility_weight`: the NA60-like arm and what a facility sees, as
  weights on that grid;
* :func:`fit_form`: one of the model's forms (:data:`gammastar.yields.extrapolation.model.FORMS`)
  fitted to the reference inside the arm, as the yields fit it (the truncated likelihood with
  the config's priors on the rapidity), and its prediction of another region;
* :func:`falloff`: the power n of (1 − x)^n fitted to a dn/dx spectrum towards x → 1.

It checks; it never feeds a correction.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gammastar.physics.constants import M_PROTON
from gammastar.physics.kinematics import cm_rapidity

__all__ = [
    "DATA",
    "Beam",
    "FitResult",
    "Reference",
    "arm_weight",
    "azimuthal_coverage",
    "bmpt_density",
    "bmpt_reference",
    "facility_weight",
    "falloff",
    "fit_form",
    "forward_rms",
    "grid",
    "load_bmpt",
    "load_csv",
    "matching_width",
    "na49_reference",
]

DATA = Path(__file__).resolve().parents[1] / "data"
"""``validation/data``: the measured spectra, one file per source."""


# --------------------------------------------------------------------------- data files
def load_csv(path: str | Path) -> dict[str, NDArray[np.float64]]:
    """A data file's columns by name (``#`` lines are its header: citation, units, columns).

    Example:
        >>> t = load_csv(DATA / "na49_pp158_piplus_dndxf.csv")
        >>> round(float(t["dndxf"][0]), 3), len(t["xf"])
        (20.959, 17)
    """
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(line for line in f if not line.startswith("#"))]
    head, body = rows[0], rows[1:]
    return {k: np.array([float(r[i]) for r in body]) for i, k in enumerate(head)}


def load_bmpt(path: str | Path = DATA / "bmpt_pbe.yaml") -> dict[str, Any]:
    """The BMPT parameters file (:func:`bmpt_density`)."""
    import yaml

    return yaml.safe_load(Path(path).read_text())


def bmpt_density(species: str, x_r: Any, pt: Any, params: Mapping[str, Any]) -> NDArray[np.float64]:
    """The BMPT parametrisation of the invariant cross section E d³N/dp³ (up to its
    normalisation): A (1 − x_R)^α (1 + B x_R) x_R^−β (1 + a′p_T + b′p_T²) e^{−a′p_T},
    a′ = a/x_R^γ, b′ = a²/(2 x_R^δ); the negative mesons through the ratios
    π+/π− = r₀(1 + x_R)^r₁ and K+/K− = r₀(1 − x_R)^r₁. (As an invariant density its mean p_T
    at x_R = 0.1 is 0.40 GeV/c for π+, beside NA49's 0.38 in p + p at x_F = 0.1; read as
    d²N/dx_R dp_T it would be 0.25.)

    Arguments:
        species: ``pi+``, ``pi-``, ``K+`` or ``K-``.
        x_r: x_R = E*/E*_max.
        pt: p_T (GeV/c).
        params: :func:`load_bmpt`'s mapping.

    References:
        M. Bonesini, A. Marchionni, F. Pietropaolo, T. Tabarelli de Fatis, Eur. Phys. J. C 20
        (2001) 13, arXiv:hep-ph/0101163, Sec. 3.

    Example:
        >>> p = load_bmpt()
        >>> r = bmpt_density("pi+", 0.3, 0.2, p) / bmpt_density("pi-", 0.3, 0.2, p)
        >>> bool(abs(r - 1.05 * 1.3**2.65) < 1e-12)
        True
    """
    kind = species[:-1]
    c = params["pi" if kind == "pi" else "K"]
    x = np.asarray(x_r, dtype=np.float64)
    p = np.asarray(pt, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        a1 = c["a"] / x ** c["gamma"]
        b1 = c["a"] ** 2 / (2.0 * x ** c["delta"])
        d = (c["A"] * (1.0 - x) ** c["alpha"] * (1.0 + c["B"] * x) * x ** (-c["beta"])
             * (1.0 + a1 * p + b1 * p * p) * np.exp(-a1 * p))  # fmt: skip
        if species.endswith("-"):
            ratio = c["r0"] * ((1.0 + x) if kind == "pi" else (1.0 - x)) ** c["r1"]
            d = d / ratio
    return np.where((x > 0) & (x < 1), d, 0.0)


# --------------------------------------------------------------------------- kinematics
@dataclass(frozen=True)
class Beam:
    """A proton beam of momentum ``energy`` (GeV/c) on a nucleon at rest: √s, the c.m.
    rapidity y_cm (:func:`~gammastar.physics.kinematics.cm_rapidity`), x_F = 2p_L*/√s
    and x_R = E*/E*_max (E*_max = (s + m² − 4m_N²)/(2√s): the meson recoiling against two
    nucleons).

    Example:
        >>> b = Beam(400.0)
        >>> round(b.sqrt_s, 2), round(b.y_cm, 3)
        (27.43, 3.374)
    """

    energy: float

    @property
    def sqrt_s(self) -> float:
        e = math.hypot(self.energy, M_PROTON)
        return math.sqrt(2 * M_PROTON * M_PROTON + 2 * M_PROTON * e)

    @property
    def y_cm(self) -> float:
        return cm_rapidity(math.hypot(self.energy, M_PROTON))

    def x_f(self, mt: Any, y: Any) -> NDArray[np.float64]:
        """x_F of (m_T, y_lab)."""
        return 2.0 * np.asarray(mt) * np.sinh(np.asarray(y) - self.y_cm) / self.sqrt_s

    def e_max(self, m: float) -> float:
        """E*_max of a meson of mass ``m`` (GeV)."""
        s = self.sqrt_s**2
        return (s + m * m - 4 * M_PROTON * M_PROTON) / (2 * self.sqrt_s)

    def x_r(self, mt: Any, y: Any, m: float) -> NDArray[np.float64]:
        """x_R = E*/E*_max of (m_T, y_lab)."""
        return np.asarray(mt) * np.cosh(np.asarray(y) - self.y_cm) / self.e_max(m)


@dataclass(frozen=True)
class Grid:
    """The (p_T, y_lab) cells at a beam energy: midpoints ``pt`` (n_pt, 1), ``y`` (1, n_y),
    m_T, E = m_T cosh y and the polar angle θ at a mass, and the kinematic limit E ≤ E_beam."""

    beam: Beam
    m: float
    pt: NDArray[np.float64]
    y: NDArray[np.float64]
    mt: NDArray[np.float64] = field(init=False)
    energy: NDArray[np.float64] = field(init=False)
    theta: NDArray[np.float64] = field(init=False)
    allowed: NDArray[np.bool_] = field(init=False)

    def __post_init__(self) -> None:
        mt = np.sqrt(self.pt**2 + self.m**2)
        object.__setattr__(self, "mt", mt)
        object.__setattr__(self, "energy", mt * np.cosh(self.y))
        object.__setattr__(self, "theta", np.arctan2(self.pt, mt * np.sinh(self.y)))
        object.__setattr__(self, "allowed", self.energy <= self.beam.energy)


def grid(beam: Beam, m: float, pt_max: float = 3.0, dpt: float = 0.02, dy: float = 0.02) -> Grid:
    """The cells of a (p_T, y_lab) grid at ``beam`` for mass ``m``: p_T up to ``pt_max``, y
    from y_cm − 3.5 to the largest rapidity of that mass, arcosh(E_beam/m) (at p_T → 0; a
    meson lighter than the proton goes beyond the beam's rapidity)."""
    pt = (np.arange(0.0, pt_max, dpt) + dpt / 2)[:, None]
    y_max = math.acosh(beam.energy / m)
    y = np.arange(beam.y_cm - 3.5, y_max, dy)[None, :] + dy / 2
    return Grid(beam, m, pt, y)


# --------------------------------------------------------------------------- references
@dataclass(frozen=True)
class Reference:
    """A measured spectrum carried to a grid: d²N/dp_T dy per cell (``density``, 0 outside the
    region it covers) and that region (``domain``)."""

    name: str
    species: str
    m: float
    source: str
    density: NDArray[np.float64]
    domain: NDArray[np.bool_]


def _pt_shape(kind: str, m: float, mean_pt: NDArray, pt: NDArray) -> NDArray:
    """The reference's p_T density where only ⟨p_T⟩ is measured, normalised: ``exponential``
    p_T e^{−2p_T/⟨p_T⟩}·4/⟨p_T⟩² (another family than the model's m_T forms) or
    ``mt_exponential`` p_T e^{−(m_T − m)/T}/(T(m + T)) with T set by ⟨p_T⟩ (the model's
    nominal family: a check of how much the closure owes to the assumed shape)."""
    if kind == "exponential":
        b = np.asarray(mean_pt) / 2.0
        return pt * np.exp(-pt / b) / b**2
    if kind != "mt_exponential":
        raise ValueError(f"unknown p_T shape {kind!r}: exponential or mt_exponential")
    ts = np.linspace(0.03, 0.8, 400)
    q = np.linspace(0.0, 6.0, 6001)[1:, None]
    w = q * np.exp(-(np.sqrt(q * q + m * m) - m) / ts)
    means = np.sum(q * w, axis=0) / np.sum(w, axis=0)
    t = np.interp(mean_pt, means, ts)
    mt = np.sqrt(pt**2 + m * m)
    return pt * np.exp(-(mt - m) / t) / (t * (m + t))


def na49_reference(g: Grid, path: str | Path = DATA / "na49_pp158_piplus_dndxf.csv",
                   pt_shape: str = "exponential") -> Reference:  # fmt: skip
    """NA49's p + p → π+ X at 158 GeV/c (dn/dx_F and ⟨p_T⟩(x_F)) on the grid ``g`` by Feynman
    scaling: d²N/dp_T dy = dn/dx_F(|x_F|) f(p_T | ⟨p_T⟩(x_F)) |dx_F/dy|, dx_F/dy =
    2m_T cosh y*/√s, dn/dx_F log-linear between the bin centres (to the last bin's edge), f the
    shape ``pt_shape`` of that mean (:func:`_pt_shape`); covered: |x_F| ≤ the last bin's
    upper edge (p + p is symmetric in x_F)."""
    t = load_csv(path)
    xf = np.abs(g.beam.x_f(g.mt, g.y))
    x_hi = float(t["xf_hi"][-1])
    dom = (xf <= x_hi) & g.allowed
    ln_d = np.interp(xf, t["xf"], np.log(t["dndxf"]))
    slope = (math.log(t["dndxf"][-1]) - math.log(t["dndxf"][-2])) / (t["xf"][-1] - t["xf"][-2])
    ln_d = np.where(xf > t["xf"][-1], math.log(t["dndxf"][-1]) + slope * (xf - t["xf"][-1]), ln_d)
    mean_pt = np.interp(xf, t["xf"], t["mean_pt"])
    ystar = g.y - g.beam.y_cm
    jac = 2.0 * g.mt * np.cosh(ystar) / g.beam.sqrt_s
    dens = np.exp(ln_d) * _pt_shape(pt_shape, g.m, mean_pt, g.pt) * jac
    from gammastar.physics.constants import mass

    assert abs(g.m - mass("pi+")) < 1e-9, "the NA49 π+ reference needs the π+ mass"
    return Reference("NA49 pp 158", "pi+", g.m, "Alt et al., EPJC 45 (2006) 343, Table 6",
                     np.where(dom, dens, 0.0), dom)  # fmt: skip


def bmpt_reference(g: Grid, species: str, params: Mapping[str, Any] | None = None) -> Reference:
    """The BMPT parametrisation of ``species`` on the grid ``g`` by Feynman scaling in x_R:
    d²N/dp_T dy = 2π p_T E d³N/dp³ (forward hemisphere); covered: its fitted range (the
    parameters file: the same x_R and p_T as a lab momentum of at least ``p_lab_min`` at
    450 GeV/c, x_R up to ``x_r_max``, p_T up to ``pt_max``), nowhere else."""
    p = load_bmpt() if params is None else params
    fr = p["fitted_range"]
    ystar = g.y - g.beam.y_cm
    xr = g.beam.x_r(g.mt, g.y, g.m)
    fit_beam = Beam(float(p["beam_momentum"]))
    # the same (x_R, p_T) at the fit's beam energy: its lab momentum there
    e_star = xr * fit_beam.e_max(g.m)
    y_at = np.arccosh(np.maximum(e_star / g.mt, 1.0)) + fit_beam.y_cm
    p_lab = np.sqrt(np.maximum((g.mt * np.cosh(y_at)) ** 2 - g.m**2, 0.0))
    dom = ((ystar > 0) & (p_lab >= fr["p_lab_min"]) & (xr <= fr["x_r_max"]) & (g.pt <= fr["pt_max"])
           & g.allowed)  # fmt: skip
    dens = 2 * np.pi * g.pt * bmpt_density(species, np.clip(xr, 1e-9, 1 - 1e-9), g.pt, p)
    return Reference(f"BMPT pBe {species}", species, g.m, p["citation"],
                     np.where(dom, dens, 0.0), dom)  # fmt: skip


# --------------------------------------------------------------------------- regions
def arm_weight(
    g: Grid, theta: tuple[float, float], lepton_min_energy: float
) -> NDArray[np.float64]:
    """The NA60-like arm on the grid: the meson's direction inside the spectrometer's polar
    window and its energy above both leptons' threshold (2 × ``lepton_min_energy``)."""
    inside = (g.theta >= theta[0]) & (g.theta <= theta[1]) & (g.energy >= 2 * lepton_min_energy)
    return (inside & g.allowed).astype(np.float64)


def azimuthal_coverage(
    detector: Any, thetas: NDArray[np.float64], n_phi: int = 360
) -> NDArray[np.float64]:
    """The share of azimuths at which a straight line from the target at polar angle θ
    crosses the decay volume and then the detection plane (the daughters taken collinear with
    the meson), per θ of ``thetas``."""
    from gammastar.physics.volumes import PLANES, VOLUMES, build

    vol = build(VOLUMES, detector.volume)
    plane = build(PLANES, detector.plane) if detector.plane is not None else None
    phi = (np.arange(n_phi) + 0.5) * 2 * np.pi / n_phi
    th, ph = np.meshgrid(thetas, phi, indexing="ij")
    d = np.stack([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)]).reshape(3, -1)
    s_in, _ = vol.entry_exit(np.zeros(3), d)
    ok = np.isfinite(s_in).any(axis=0)
    if plane is not None:
        at = plane.propagate(np.zeros((3, d.shape[1])), d)
        ok &= plane.hits(at)
    return ok.reshape(th.shape).mean(axis=1)


def facility_weight(g: Grid, cfg: Any, e_fraction: float = 0.0,
                    cover: tuple[NDArray, NDArray] | None = None) -> NDArray[np.float64]:  # fmt: skip
    """What the facility of config ``cfg`` sees on the grid: the azimuthal share of each
    cell's direction (:func:`azimuthal_coverage`, or ``cover``: its polar angles and shares
    computed before) where its energy passes the daughters' threshold (twice it with
    ``require: both``) and is at least ``e_fraction`` of the beam's."""
    det = cfg.detector
    req = det.daughters or {}
    e_min = float(req.get("min_energy", 0.0)) * (2 if req.get("require", "both") == "both" else 1)
    if cover is None:
        thetas = np.linspace(0.0, 0.4, 1601)
        cover = (thetas, azimuthal_coverage(det, thetas))
    thetas, share = cover
    w = np.interp(g.theta, thetas, share, right=0.0)
    keep = (g.energy >= max(e_min, e_fraction * g.beam.energy)) & g.allowed
    return np.where(keep, w, 0.0)


# --------------------------------------------------------------------------- the fit
@dataclass
class FitResult:
    """A form fitted inside the arm: its parameters (T, ȳ, σ_y, a) and their statistical
    covariance (zero rows for the fixed ones), the refits at σ_y ± its error (``sides``) and,
    where ȳ is fixed at y_cm, the refit at y_cm − its error (``backward``); :meth:`share` (the
    model's yield in a region per unit of the arm's) and :meth:`log_share_width` (its 1σ)."""

    form: Any
    g: Grid
    arm: NDArray[np.float64]
    params: NDArray[np.float64]
    covariance: NDArray[np.float64]
    y_mean_fitted: bool
    sides: tuple[NDArray[np.float64], NDArray[np.float64]] = (np.zeros(4), np.zeros(4))
    backward: NDArray[np.float64] | None = None

    def density(self, params: NDArray | None = None) -> NDArray[np.float64]:
        """The form's density on the grid, normalised over it (0 above the beam energy)."""
        t, mu, s, a = self.params if params is None else params
        lp = self.form.log_p(self.g.m, self.g.pt, self.g.y, t, mu, s, a)
        lp = np.where(self.g.allowed, lp, -np.inf)
        p = np.exp(lp - np.max(lp))
        return p / p.sum()

    def share(self, weight: NDArray, params: NDArray | None = None) -> float:
        """Σ_region p / Σ_arm p of the fitted form (``params``: others)."""
        p = self.density(params)
        return float(np.sum(weight * p) / np.sum(self.arm * p))

    def log_share_width(self, weight: NDArray) -> dict[str, float]:
        """The 1σ of ln :meth:`share` by source: ``stat`` (linear propagation of
        :attr:`covariance`), ``y_sigma`` (half the difference of the σ_y ± error refits),
        ``y_mean`` (the y_cm − error refit's shift, where ȳ is fixed)."""
        ln0 = math.log(self.share(weight))
        grad = np.zeros(4)
        for i in np.flatnonzero(np.diag(self.covariance) > 0):
            h = 1e-4 * max(1.0, abs(self.params[i]))
            up, dn = self.params.copy(), self.params.copy()
            up[i] += h
            dn[i] -= h
            grad[i] = (math.log(self.share(weight, up)) - math.log(self.share(weight, dn))) / (
                2 * h
            )
        out = {"stat": float(math.sqrt(max(grad @ self.covariance @ grad, 0.0)))}
        hi, lo = (math.log(self.share(weight, p)) for p in self.sides)
        out["y_sigma"] = 0.5 * abs(hi - lo)
        out["y_mean"] = (
            0.0 if self.backward is None else abs(math.log(self.share(weight, self.backward)) - ln0)
        )
        return out


def fit_form(form: Any, g: Grid, ref: Reference, arm: NDArray, *, y_sigma: tuple[float, float],
             y_mean_error: float, pairs: float) -> FitResult:  # fmt: skip
    """Fit ``form`` to the reference inside the arm (∩ the reference's region) as the yields'
    fit does it (:mod:`gammastar.yields.extrapolation.fitting`): the truncated likelihood
    −Σ_arm w ln(p_θ/P_arm(θ)) of the measured density as ``pairs`` weighted pairs; σ_y fixed
    at the config's external value (``y_sigma``: value, error), its error the shift of the
    refits at σ_y ± error; ȳ fitted where its 1σ (the Hessian's, the σ_y shift in quadrature)
    is below ``y_mean_error``, else fixed at y_cm with the refit at y_cm − error as its error;
    T and a (the m_T power, or the Tsallis q) fitted. The statistical covariance: the inverse
    Hessian of that negative log-likelihood."""
    from gammastar.yields.extrapolation.model import BOUNDS

    arm_in = arm * ref.domain
    w = arm_in * ref.density
    w = w / w.sum()
    inside = w > 0
    y0 = g.beam.y_cm
    bounds = [BOUNDS[0], (y0 - 3 * y_mean_error, y0 + 3 * y_mean_error), form.power_bounds]

    def nll_at(s: float, mu: float | None) -> Callable[[NDArray], float]:
        def nll(x: NDArray) -> float:
            t, m_, a = (x[0], x[1], x[2]) if mu is None else (x[0], mu, x[1])
            lp = form.log_p(g.m, g.pt, g.y, t, m_, s, a)
            lp = np.where(g.allowed, lp, -np.inf)
            top = np.max(lp)
            ll = float(np.sum(w[inside] * (lp[inside] - top)))
            return -pairs * (ll - math.log(float(np.sum(arm_in * np.exp(lp - top)))))

        return nll

    def fit(s: float, mu: float | None, start: NDArray) -> tuple[NDArray, Callable]:
        from scipy.optimize import minimize

        f = nll_at(s, mu)
        bd = bounds if mu is None else [bounds[0], bounds[2]]
        x0 = start if mu is None else start[[0, 2]]
        x = minimize(f, x0, method="L-BFGS-B", bounds=bd, options={"ftol": 1e-12, "gtol": 1e-8}).x
        full = np.array([x[0], x[1], s, x[2]] if mu is None else [x[0], mu, s, x[1]])
        return full, f

    s0, ds = y_sigma
    start = np.array([0.2, y0, form.power_start])
    free, f_free = fit(s0, None, start)
    cov3 = _inverse_hessian(f_free, free[[0, 1, 3]], bounds)
    hi, _ = fit(s0 + ds, None, free[[0, 1, 3]])
    lo, _ = fit(s0 - ds, None, free[[0, 1, 3]])
    y_err = math.sqrt(max(cov3[1, 1], 0.0) + (0.5 * (hi[1] - lo[1])) ** 2)
    if y_err < y_mean_error:
        cov = np.zeros((4, 4))
        idx = [0, 1, 3]
        cov[np.ix_(idx, idx)] = cov3
        return FitResult(form, g, arm_in, free, cov, True, (hi, lo))
    fixed, f_fixed = fit(s0, y0, free[[0, 1, 3]])
    cov2 = _inverse_hessian(f_fixed, fixed[[0, 3]], [bounds[0], bounds[2]])
    cov = np.zeros((4, 4))
    cov[np.ix_([0, 3], [0, 3])] = cov2
    hi, _ = fit(s0 + ds, y0, fixed[[0, 1, 3]])
    lo, _ = fit(s0 - ds, y0, fixed[[0, 1, 3]])
    back, _ = fit(s0, y0 - y_mean_error, fixed[[0, 1, 3]])
    return FitResult(form, g, arm_in, fixed, cov, False, (hi, lo), back)


def _inverse_hessian(f: Callable[[NDArray], float], x: NDArray, bounds: list) -> NDArray:
    """The inverse of f's Hessian at x by central differences (a parameter at its bound keeps
    a zero row: its error is not propagated)."""
    n = len(x)
    h = np.array([1e-3 * max(1.0, abs(v)) for v in x])
    free = np.array([lo + 2 * h[i] < x[i] < hi - 2 * h[i] for i, (lo, hi) in enumerate(bounds)])
    hess = np.zeros((n, n))
    f0 = f(x)
    for i in range(n):
        for j in range(i, n):
            if not (free[i] and free[j]):
                continue
            ei, ej = np.eye(n)[i] * h[i], np.eye(n)[j] * h[j]
            if i == j:
                v = (f(x + ei) - 2 * f0 + f(x - ei)) / h[i] ** 2
            else:
                v = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (
                    4 * h[i] * h[j]
                )
            hess[i, j] = hess[j, i] = v
    cov = np.zeros((n, n))
    idx = np.flatnonzero(free)
    if idx.size:
        cov[np.ix_(idx, idx)] = np.linalg.pinv(hess[np.ix_(idx, idx)])
    return cov


# --------------------------------------------------------------------------- the width
def forward_rms(g: Grid, density: NDArray, domain: NDArray) -> float:
    """√⟨(y − y_cm)²⟩ of ``density`` over the cells of ``domain`` forward of the c.m. (y > y_cm):
    the forward half's width, which a measurement covering only forward x_F (BMPT) has too."""
    w = np.where(domain & (g.y > g.beam.y_cm), density, 0.0) * np.ones_like(g.pt)
    d2 = (g.y - g.beam.y_cm) ** 2 * np.ones_like(g.pt)
    return float(math.sqrt(np.sum(w * d2) / np.sum(w)))


def matching_width(fit: FitResult, ref: Reference, bounds: tuple[float, float] = (0.5, 4.0)) -> float:
    """The model's σ_y (its Gaussian's width, the other parameters the ``fit``'s) at which its
    forward width (:func:`forward_rms`, over the reference's region) is the measured one: the
    reference's own rapidity width as the external σ_y of a closure (the analysis takes its
    σ_y from outside the arm too; the measured spectrum's is its own, not the γ*'s)."""
    from scipy.optimize import brentq

    want = forward_rms(fit.g, ref.density, ref.domain)

    def resid(s: float) -> float:
        par = fit.params.copy()
        par[2] = s
        return forward_rms(fit.g, fit.density(par), ref.domain) - want

    lo, hi = bounds
    if resid(lo) * resid(hi) > 0:  # the form cannot reach it: the nearer bound
        return lo if abs(resid(lo)) < abs(resid(hi)) else hi
    return float(brentq(resid, lo, hi, xtol=1e-4))


# --------------------------------------------------------------------------- the fall-off
def falloff(x: NDArray, dndx: NDArray, err: NDArray | None, x_min: float) -> dict[str, float]:
    """n of dn/dx = A (1 − x)^n fitted to the points with x ≥ ``x_min`` (weighted least
    squares in ln dn/dx, the relative errors ``err``/``dndx``, or equal weights without
    ``err``); its 1σ scaled by √(χ²/ndf) where that exceeds 1 (PDG's scale factor).

    Example:
        >>> x = np.linspace(0.1, 0.9, 9)
        >>> round(falloff(x, 2.0 * (1 - x) ** 3.5, None, 0.2)["n"], 9)
        3.5
    """
    sel = (x >= x_min) & (dndx > 0) & (x < 1)
    xs, ln = np.log1p(-x[sel]), np.log(dndx[sel])
    sig = np.ones_like(ln) if err is None else err[sel] / dndx[sel]
    a = np.stack([np.ones_like(xs), xs], axis=1) / sig[:, None]
    coef, *_ = np.linalg.lstsq(a, ln / sig, rcond=None)
    cov = np.linalg.inv(a.T @ a)
    ndf = max(len(ln) - 2, 1)
    chi2 = float(np.sum(((ln - coef[0] - coef[1] * xs) / sig) ** 2))
    scale = math.sqrt(max(chi2 / ndf, 1.0)) if err is not None else math.sqrt(chi2 / ndf)
    return {"n": float(coef[1]), "err": float(math.sqrt(cov[1, 1]) * scale),
            "chi2_ndf": chi2 / ndf, "x_min": float(x_min), "x_max": float(x[sel].max()),
            "points": int(sel.sum())}  # fmt: skip
