r"""Millicharged-particle (χ) yields in a scintillator detector and the reach in (m_χ, Q).

Offers the χ flux into a :class:`~gammastar.physics.scintillator.ScintillatorDetector` from

* meson decays outside the dilepton data (paper Fig. 3: π⁰ → γχχ̄, J/ψ → χχ̄; also η, η′ →
  γχχ̄ and ρ, ω, φ → χχ̄): :func:`meson_chi_acceptance` samples the mesons (thermal
  m_T spectrum, Gaussian rapidity around y_cm), decays them (P → γγ*, γ* → χχ̄ with the
  Kroll–Wada mass spectrum of m_χ; V → χχ̄ two-body; both isotropic in the parent frame) and
  counts χ and χ̄ crossing the detector; the branching ratios are
  :func:`gammastar.physics.millicharge.channel_branching_ratios` (paper Eq. 8 integrated);
* the data (paper Eq. 8): every unfolded γ* pair of ``pairs.parquet`` with m > 2m_χ, weight
  × K_χ(m)/K_ℓ(m), decayed isotropically to χχ̄ (:func:`gstar_chi_yield`);

and the reach (:func:`mcp_reach`): s(Q) = N_POT · Q² · Y₁(m_χ) · P_det(Q), Y₁ the χ crossing
the detector per POT per unit Q², P_det of the detector; the expected 90% CL limit s_up on the
signal events with the background of dark-count coincidences comes from
:func:`gammastar.reach.stats.upper_limit` (the same exact CLs as the A′ reach), and the lower edge
Q_low(m_χ) solves s(Q) = s_up. The upper edge (χ that range out or lose the trigger at large Q)
is not modelled. :func:`run_mcp_reach` writes ``reach_mcp.json`` and
``figures/reach_mcp.png`` (the report embeds ``reach_*`` figures). Numbers: docs/howto/dark-sectors.md.

References: Allison & Blinov (seed paper) Eq. 8 and Fig. 3; Magill, Plestid, Pospelov, Tsai
PRL 122 (2019) 071801 (arXiv:1806.03310); milliQan PLB 746 (2015) 117; SUBMET arXiv:2007.03364.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.config import AnalysisConfig, load_config
from gammastar.core import rundir
from gammastar.core.artifacts import make_meta, write_json
from gammastar.core.figures import figure_style, save_figure
from gammastar.errors import ConfigError, GammastarError, InputError
from gammastar.physics.aprime_meson import default_form_factor
from gammastar.physics.constants import M_MU, mass
from gammastar.physics.dalitz import pseudoscalar_dalitz_dgamma_dm
from gammastar.physics.darkchain import two_body_decay
from gammastar.physics.kinematics import boost, cm_rapidity, four_momentum, kinematic_factor
from gammastar.physics.millicharge import channel_branching_ratios
from gammastar.physics.sampling import sample_mt_power
from gammastar.physics.scintillator import ScintillatorDetector
from gammastar.physics.target import interaction_probability, yield_scale
from gammastar.reach import stats
from gammastar.reach.stats.model import Channel, Model
from gammastar.yields.extrapolation.result import Extrapolation

__all__ = [
    "PSEUDOSCALARS",
    "VECTORS",
    "McpReach",
    "MesonSettings",
    "chi_flux_into_detector",
    "data_driven_yields",
    "detector_from_config",
    "gstar_chi_yield",
    "mcp_reach",
    "meson_chi_acceptance",
    "meson_chi_yields",
    "meson_kinematics",
    "plot_mcp_reach",
    "run_mcp_reach",
]

_CHUNK = 20_000
PSEUDOSCALARS = ("pi0", "eta", "eta_prime")
"""Mesons whose χ channel is P → γχχ̄."""
VECTORS = ("rho", "omega", "phi", "jpsi")
"""Mesons whose χ channel here is V → χχ̄ (ω → π⁰χχ̄, φ → ηχχ̄ are left out)."""


# --------------------------------------------------------------------------- kinematics
def meson_kinematics(
    n: int,
    m: float,
    *,
    temperature: float,
    rapidity_mean: float,
    rapidity_sigma: float,
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    r"""Lab four-momenta of mesons: dN/dm_T ∝ m_T e^{−m_T/T}, y ~ N(ȳ, σ_y), φ uniform.

    dN/dm_T ∝ m_T e^{−m_T/T} on m_T > m (Hagedorn, Riv. Nuovo Cim. 6 (1983) 1; the form
    the fixed-target dilepton cocktails use) is the package's thermal model,
    :func:`gammastar.physics.sampling.sample_mt_exponential` (the mock generator's meson
    spectrum, sampled exactly); the four-vectors are
    :func:`gammastar.physics.kinematics.four_momentum`'s.

    Arguments:
        n: number of mesons; m: mass, GeV.
        temperature: inverse slope T, GeV.
        rapidity_mean, rapidity_sigma: lab rapidity distribution.
        rng: numpy Generator.

    Returns:
        (4, n) px, py, pz, E in GeV.

    Example:
        >>> p = meson_kinematics(100_000, 3.097, temperature=0.25, rapidity_mean=3.37,
        ...                      rapidity_sigma=0.6, rng=np.random.default_rng(1))
        >>> m = np.sqrt(p[3] ** 2 - (p[:3] ** 2).sum(axis=0))
        >>> mean_pt = float(np.mean(np.hypot(p[0], p[1])))  # analytic: 1.180 GeV
        >>> bool(np.allclose(m, 3.097)), abs(mean_pt - 1.180) < 0.01
        (True, True)
    """
    pt = sample_mt_power(rng, np.full(n, float(m)), temperature)
    y = rng.normal(rapidity_mean, rapidity_sigma, n)
    phi = rng.uniform(0, 2 * np.pi, n)
    return four_momentum(m, pt, y, phi)


def chi_flux_into_detector(
    parent: ArrayLike,
    m_chi: float,
    detector: ScintillatorDetector,
    *,
    n_gl: int = 12,
    n_count: int = 64,
    seed: int | np.random.Generator | None = 0,
) -> NDArray[np.float64]:
    r"""Expected number of χ plus χ̄ from the isotropic decay parent → χχ̄ that cross the detector.

    Instead of drawing one decay per parent, the lab angular density of a daughter of an
    isotropic two-body decay is integrated over the detector's back face (a track from the
    target crossing it crosses every layer): with β, γ of the parent, E₀, p₀ the daughter's
    energy and momentum in the parent frame and α the angle to the parent direction,

    .. math:: \frac{dN}{d\Omega} = \sum_{p} \frac{p^2}{4\pi\,p_0\,\gamma\,|p - \beta E\cos\alpha|},
              \qquad \gamma(E - \beta p\cos\alpha) = E_0

    (the roots p ≥ 0; from d³p/E invariance), dΩ = Z dx dy/R³ on the face at Z, Gauss–Legendre
    n_gl × n_gl in the angles atan(x/Z), atan(y/Z) over the square. Where β > β* the daughters
    fill a cone of half-angle tan θ_max = β*/(γ√(β² − β*²)) whose edge is an integrable
    1/√ singularity of the density: a parent whose cone lies inside the face gives exactly 2; a
    parent whose cone edge crosses the face (24 points of the edge and the four corners tested)
    is decayed ``n_count`` times and its hits counted (unbiased); every other parent takes the
    quadrature. A low-variance replacement for counting single decays
    (:meth:`ScintillatorDetector.hits`); measured against such counts in docs/howto/dark-sectors.md.

    Arguments:
        parent: (4, N) parent four-momenta (γ*, J/ψ, …) from the target, GeV.
        m_chi: χ mass, GeV.
        detector: the detector.
        n_gl: quadrature points per side.
        n_count: decays per parent whose cone edge crosses the face.
        seed: seed or Generator for those decays.

    Returns:
        (N,) expected hits, 2 × ∫ dN/dΩ dΩ (χ and χ̄ alike).

    Example:
        >>> det = ScintillatorDetector(distance=1.0, n_layers=1, layer_length=1.0, area=4.0,
        ...                            npe_per_q2=1.0)
        >>> from gammastar.physics.scintillator import square_solid_angle
        >>> f = chi_flux_into_detector([[0.0], [0.0], [0.0], [1.0]], 0.1, det)  # at rest: 2 Ω/4π
        >>> bool(np.isclose(f[0], 2 * square_solid_angle(1.0, 2.0) / (4 * np.pi), rtol=1e-6))
        True
    """

    rng = np.random.default_rng(seed)
    p4 = np.asarray(parent, dtype=np.float64)
    if p4.ndim != 2 or p4.shape[0] != 4:
        raise GammastarError("chi_flux_into_detector: parents must have shape (4, N)")
    out = np.empty(p4.shape[1])
    for i in range(0, p4.shape[1], _CHUNK):
        blk = p4[:, i : i + _CHUNK]
        inside, cross = _cone_classes(blk, m_chi, detector)
        quad = ~inside & ~cross
        res = np.zeros(blk.shape[1])
        res[inside] = 2.0
        if np.any(quad):
            res[quad] = _flux_quadrature(blk[:, quad], m_chi, detector, n_gl)
        if np.any(cross):
            rep = np.repeat(blk[:, cross], n_count, axis=1)
            a, bb = two_body_decay(rep, m_chi, m_chi, rng)
            hits = detector.hits(a[:3]).astype(float) + detector.hits(bb[:3])
            res[cross] = hits.reshape(-1, n_count).mean(axis=1)
        out[i : i + blk.shape[1]] = res
    return out


def _cone_classes(
    p4: NDArray[np.float64], m_chi: float, detector: ScintillatorDetector
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Which parents (4, N) confine their daughters to a cone (β > β*) that lies wholly
    inside the detector's face (``inside``: exactly 2 hits) and which cone's edge crosses the
    face (``cross``: decayed and counted), from 24 points of the edge and the face's four
    corners (:func:`chi_flux_into_detector`)."""
    size = p4.shape[1]
    pabs = np.linalg.norm(p4[:3], axis=0)
    big = np.sqrt(np.clip(p4[3] ** 2 - pabs**2, 0, None))
    beta = pabs / p4[3]
    gamma = p4[3] / big
    e0 = big / 2
    bstar = np.sqrt(np.clip(1 - (m_chi / np.where(e0 > 0, e0, 1.0)) ** 2, 0, None))
    cone = beta > bstar
    inside = np.zeros(size, dtype=bool)
    cross = np.zeros(size, dtype=bool)
    if not np.any(cone):
        return inside, cross
    idx = np.flatnonzero(cone)
    b, g, bs = beta[idx], gamma[idx], bstar[idx]
    th = np.arctan(bs / (g * np.sqrt(b**2 - bs**2)))
    n = p4[:3, idx] / pabs[idx]  # (3, m) cone axes
    # orthonormal u, v ⊥ n
    ref = np.where(np.abs(n[2]) < 0.9, [[0.0], [0.0], [1.0]], [[1.0], [0.0], [0.0]])
    u = np.cross(n, ref, axis=0)
    u /= np.linalg.norm(u, axis=0)
    v = np.cross(n, u, axis=0)
    phis = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    ring = np.cos(th)[None, :, None] * n[:, :, None] + np.sin(th)[None, :, None] * (
        np.cos(phis)[None, None, :] * u[:, :, None] + np.sin(phis)[None, None, :] * v[:, :, None]
    )  # (3, m, 24)
    hit = detector.hits(ring.reshape(3, -1)).reshape(idx.size, 24)
    h, z = detector.half_side, detector.back
    corners = np.array([[sx * h, sy * h, z] for sx in (-1, 1) for sy in (-1, 1)]).T
    corners /= np.linalg.norm(corners, axis=0)
    cin = np.einsum("im,ic->mc", n, corners) > np.cos(th)[:, None]
    all_ring = hit.all(axis=1)
    some = hit.any(axis=1) | (cin.any(axis=1) & ~cin.all(axis=1))
    inside[idx] = all_ring & ~cin.any(axis=1)
    cross[idx] = ~inside[idx] & some
    return inside, cross


def _flux_quadrature(
    p4: NDArray[np.float64], m_chi: float, detector: ScintillatorDetector, n_gl: int
) -> NDArray[np.float64]:
    """The face integral of the lab density (:func:`chi_flux_into_detector`) by quadrature,
    parents (4, N)."""
    pvec = p4[:3]
    pabs = np.linalg.norm(pvec, axis=0)
    big = np.sqrt(np.clip(p4[3] ** 2 - pabs**2, 0, None))
    beta = (pabs / p4[3])[:, None]
    gamma = (p4[3] / big)[:, None]
    nhat = pvec / np.where(pabs > 0, pabs, 1.0)
    e0 = (big / 2)[:, None]
    p0 = np.sqrt(np.clip(e0**2 - m_chi**2, 0, None))
    h, z = detector.half_side, detector.back
    # nodes in u = atan(x/Z), v = atan(y/Z): dΩ = Z³ sec²u sec²v du dv / R³, smooth also for
    # a face that is wide seen from the target
    x, w = np.polynomial.legendre.leggauss(n_gl)
    umax = np.arctan(h / z)
    uu, vv = np.meshgrid(umax * x, umax * x)
    tx, ty = np.tan(uu.ravel()), np.tan(vv.ravel())
    wuv = np.outer(w, w).ravel() * umax**2
    rr = np.sqrt(1 + tx**2 + ty**2)  # R/Z
    dirs = np.stack([tx / rr, ty / rr, 1 / rr])  # (3, K)
    domega = wuv * (1 + tx**2) * (1 + ty**2) / rr**3
    c = np.einsum("in,ik->nk", nhat, dirs)  # (N, K) cos α
    a0 = e0 / gamma
    qa = 1 - beta**2 * c**2
    qb = a0 * beta * c
    disc = qb**2 - qa * (m_chi**2 - a0**2)
    ok = (disc >= 0) & (p0 > 0)
    sq = np.sqrt(np.where(ok, disc, 0.0))
    dens = np.zeros_like(c)
    for sign in (1.0, -1.0):
        p = (qb + sign * sq) / np.where(qa > 0, qa, 1.0)
        e = np.sqrt(p**2 + m_chi**2)
        den = np.abs(p - beta * e * c)
        good = ok & (p >= 0) & (den > 0) & (qa > 0)
        if sign < 0:
            good &= sq > 0  # a double root counts once
        with np.errstate(divide="ignore", invalid="ignore"):
            dens += np.where(
                good, p**2 / (4 * np.pi * np.where(p0 > 0, p0, 1.0) * gamma * den), 0.0
            )
    return 2 * dens @ domega


def _dalitz_mass(meson: str, m_chi: float, n: int, rng: np.random.Generator) -> NDArray:
    """γ* masses of P → γχχ̄ from the Kroll–Wada spectrum with m_ℓ → m_χ (inverse CDF)."""

    big = mass(meson)
    # grid in u = ln(m): the spectrum ∝ 1/m near threshold
    u = np.linspace(np.log(2 * m_chi), np.log(big), 4001)
    mm = np.exp(u)
    dens = pseudoscalar_dalitz_dgamma_dm(mm, big, m_chi, default_form_factor(meson)) * mm
    cdf = np.concatenate([[0.0], np.cumsum((dens[1:] + dens[:-1]) / 2 * np.diff(u))])
    return np.exp(np.interp(rng.uniform(size=n), cdf / cdf[-1], u))


@dataclass(frozen=True)
class MesonSettings:
    """How the χ of meson decays are counted (:func:`meson_chi_acceptance`,
    :func:`meson_chi_yields`)."""

    beam_energy: float
    """Proton beam energy, GeV: sets y_cm, the centre of the mesons' rapidity
    (:func:`gammastar.physics.kinematics.cm_rapidity`)."""
    n: int
    """Parent mesons sampled per (meson, m_χ)."""
    p_int: float = 1.0
    """Interaction probability of the facility's target (the yields per POT)."""
    form_factors: bool = True
    """Transition form factors in the branching ratios (:mod:`gammastar.physics.millicharge`)."""


def meson_chi_acceptance(
    meson: str,
    m_chi: float,
    detector: ScintillatorDetector,
    settings: MesonSettings,
    *,
    temperature: float,
    rapidity_sigma: float,
    seed: int | np.random.Generator | None,
    parents: ArrayLike | None = None,
) -> tuple[float, float]:
    """Mean number of χ (χ or χ̄) per meson decay into the χ channel that cross the detector.

    Arguments:
        meson: one of :data:`PSEUDOSCALARS` or :data:`VECTORS`.
        m_chi: χ mass, GeV (the channel must be open).
        detector: the detector.
        settings: the beam energy and the parent mesons sampled (:class:`MesonSettings`).
        temperature, rapidity_sigma: meson kinematics (:func:`meson_kinematics`).
        seed: seed or Generator.
        parents: optional (4, n) parent four-momenta replacing the sampled ones.

    Returns:
        (⟨hits(χ) + hits(χ̄)⟩ ∈ [0, 2], its Monte Carlo standard error); (0, 0) when the
        channel is closed. Each sampled decay contributes its expected hits
        (:func:`chi_flux_into_detector`), not a 0/1 count.
    """

    rng = np.random.default_rng(seed)
    big = mass(meson)
    if 2 * m_chi >= big:
        return 0.0, 0.0
    if parents is None:
        n = settings.n
        p = meson_kinematics(
            n,
            big,
            temperature=temperature,
            rapidity_mean=cm_rapidity(settings.beam_energy),
            rapidity_sigma=rapidity_sigma,
            rng=rng,
        )
    else:
        p = np.asarray(parents, dtype=np.float64)
        n = p.shape[1]
    if meson in VECTORS:
        g = p
    elif meson in PSEUDOSCALARS:
        mg = _dalitz_mass(meson, m_chi, n, rng)
        k = (big**2 - mg**2) / (2 * big)  # |p_γ*| in the P frame
        d = rng.normal(size=(3, n))  # isotropic γ* directions in the P frame
        d /= np.linalg.norm(d, axis=0)
        g_rest = np.concatenate([d * k, np.sqrt(k**2 + mg**2)[None]])
        g = boost(g_rest, p)
    else:
        raise GammastarError(f"no chi channel for meson {meson!r}")
    hits = chi_flux_into_detector(g, m_chi, detector, seed=rng)
    return float(hits.mean()), float(hits.std(ddof=1) / np.sqrt(len(hits)))


def meson_chi_yields(
    sources: dict[str, dict[str, float]],
    m_chi: ArrayLike,
    detector: ScintillatorDetector,
    settings: MesonSettings,
    *,
    seed: int,
    errors: dict[str, NDArray[np.float64]] | None = None,
) -> dict[str, NDArray[np.float64]]:
    """χ crossing the detector per POT per unit Q², by meson.

    Y₁ = P_int · (mesons per collision) · BR(meson → χ channel; Q = 1) · ⟨χ hits per decay⟩.

    Arguments:
        sources: {meson: {"per_collision", "temperature", "rapidity_sigma"}}.
        m_chi: χ masses, GeV.
        detector: the detector.
        settings: the beam energy, the mesons sampled per (meson, m_χ), P_int of the
            facility's target and the form factors (:class:`MesonSettings`).
        seed: base seed (each point gets its own stream).
        errors: if given, filled with the Monte Carlo standard errors, by meson.

    Returns:
        {meson: array over m_χ}.
    """

    m_chi = np.atleast_1d(np.asarray(m_chi, dtype=np.float64))
    out: dict[str, NDArray[np.float64]] = {}
    ss = np.random.SeedSequence(seed)
    children = ss.spawn(len(sources) * len(m_chi))
    for i, (meson, src) in enumerate(sorted(sources.items())):
        chan = "gamma chichi" if meson in PSEUDOSCALARS else "chichi"
        br = channel_branching_ratios(meson, m_chi, 1.0, form_factors=settings.form_factors)[chan]
        res = np.array(
            [
                meson_chi_acceptance(
                    meson,
                    float(mc),
                    detector,
                    settings,
                    temperature=src["temperature"],
                    rapidity_sigma=src["rapidity_sigma"],
                    seed=np.random.default_rng(children[i * len(m_chi) + j]),
                )
                for j, mc in enumerate(m_chi)
            ]
        )
        p_int = settings.p_int
        out[meson] = p_int * src["per_collision"] * br * res[:, 0]
        if errors is not None:
            errors[meson] = p_int * src["per_collision"] * br * res[:, 1]
    return out


def gstar_chi_yield(
    m: ArrayLike,
    qt: ArrayLike,
    pz: ArrayLike,
    weight: ArrayLike,
    m_chi: float,
    detector: ScintillatorDetector,
    *,
    m_lepton: float = M_MU,
    seed: int | np.random.Generator | None,
) -> float:
    r"""Σ over γ* pairs of weight · K_χ(m)/K_ℓ(m) · (χ and χ̄ crossing the detector) (Eq. 8).

    The unfolded pairs of the data (``pairs.parquet``: m, qT, pz, weight) with m > 2m_χ, each
    given a uniform azimuth and decayed isotropically to χχ̄.

    Arguments:
        m, qt, pz, weight: γ* mass, transverse and longitudinal momentum (GeV), unfolded weight.
        m_chi: χ mass, GeV.
        detector: the detector.
        m_lepton: lepton mass of the data (K_ℓ).
        seed: seed or Generator.

    Returns:
        The weighted count per unit Q² (divide by the data's N_POT for a yield per POT).

    References:
        Paper Eq. 8; docs/explanation/physics.md §1.
    """
    rng = np.random.default_rng(seed)
    m, qt, pz, w = (np.asarray(a, dtype=np.float64) for a in (m, qt, pz, weight))
    keep = m > 2 * m_chi
    m, qt, pz, w = m[keep], qt[keep], pz[keep], w[keep]
    if not len(m):
        return 0.0
    phi = rng.uniform(0, 2 * np.pi, len(m))
    e = np.sqrt(m**2 + qt**2 + pz**2)
    g = np.stack([qt * np.cos(phi), qt * np.sin(phi), pz, e])
    hits = chi_flux_into_detector(g, m_chi, detector, seed=rng)
    ratio = kinematic_factor(m, m_chi) / kinematic_factor(m, m_lepton)
    return float(np.sum(w * ratio * hits))


# --------------------------------------------------------------------------- reach
@dataclass
class McpReach:
    """The expected reach: per m_χ, the lowest excluded charge (None: nothing excluded)."""

    mass: NDArray[np.float64]
    yield_per_pot_per_q2: NDArray[np.float64]
    background: float
    s_up: dict[str, float]
    q_low: dict[str, list[float | None]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "mass": self.mass.tolist(),
            "yield_per_pot_per_q2": self.yield_per_pot_per_q2.tolist(),
            "background": self.background,
            "s_up": dict(self.s_up),
            "q_low": {k: list(v) for k, v in self.q_low.items()},
        }


def _solve_q(y1: float, n_pot: float, s_up: float, det: ScintillatorDetector) -> float | None:
    """Smallest Q with N_POT Q² Y₁ P_det(Q) = s_up (monotonic in Q), or None."""
    from scipy.optimize import brentq

    def f(lq: float) -> float:
        q = 10.0**lq
        return float(
            np.log(n_pot * q**2 * y1 * det.detection_probability(q) + 1e-300) - np.log(s_up)
        )

    if y1 <= 0 or f(0.0) < 0:
        return None
    lo = -12.0
    if f(lo) > 0:
        return 10.0**lo
    return 10.0 ** brentq(f, lo, 0.0, xtol=1e-6)


def mcp_reach(
    mass_chi: ArrayLike,
    yield_per_pot_per_q2: ArrayLike,
    detector: ScintillatorDetector,
    *,
    n_pot: float,
    n_pot_rel_uncertainty: float,
    cl: float = 0.9,
) -> McpReach:
    """Expected reach in (m_χ, Q): Q_low where N_POT Q² Y₁ P_det(Q) equals the CLs limit.

    Arguments:
        mass_chi: χ masses, GeV.
        yield_per_pot_per_q2: Y₁(m_χ), χ crossing the detector per POT per unit Q².
        detector: the detector (P_det, background).
        n_pot: the facility's protons on target.
        n_pot_rel_uncertainty: log-normal N_POT uncertainty of the likelihood.
        cl: confidence level.

    Returns:
        :class:`McpReach` (bands "-2" … "+2" of the background-only expectation).

    References:
        :func:`gammastar.reach.stats.upper_limit` (exact CLs, one counting bin).
    """

    b = detector.background_events()
    model = Model(
        [Channel("mcp", [1.0], [max(b, 1e-9)])], n_pot_unc=n_pot_rel_uncertainty
    )
    lim = stats.upper_limit(model, cl=cl, method="exact")
    m = np.atleast_1d(np.asarray(mass_chi, dtype=np.float64))
    y = np.atleast_1d(np.asarray(yield_per_pot_per_q2, dtype=np.float64))
    q_low = {
        band: [_solve_q(float(yy), n_pot, s, detector) for yy in y]
        for band, s in lim.expected.items()
    }
    return McpReach(m, y, b, dict(lim.expected), q_low)


def data_driven_yields(
    run: str | Path,
    m_chi: ArrayLike,
    detector: ScintillatorDetector,
    target_interaction_lengths: float | str,
    *,
    seed: Any,
    full_phase_space: bool = True,
    extrapolated: list[float] | None = None,
) -> NDArray[np.float64]:
    """χ crossing the detector per POT per unit Q² from a finished dilepton run (Eq. 8).

    ``pairs.parquet`` covers the data's fiducial region only. When ``yields.json``
    states an ``extrapolation`` and ``full_phase_space``, each pair is carried to the full
    phase space with the yields' fiducial fraction at its mass, weight w/f_F(m) (the very
    weight of ``yields.json`` ``mcp``: :func:`gammastar.yields.extrapolation.result.Extrapolation.at`, as
    :func:`gammastar.yields.stage` and ``gammastar events --mchi``). The extrapolated part takes the
    kinematics of the fiducial pairs of its mass (a model; labelled by ``extrapolated``).

    Arguments:
        run: run directory with ``pairs.parquet`` and ``yields.json``.
        m_chi: χ masses, GeV.
        detector: the detector.
        target_interaction_lengths: the facility's target (the data's comes from
            ``yields.json`` meta; :func:`gammastar.physics.target.yield_scale`).
        seed: seed, SeedSequence or Generator (one stream for all masses).
        full_phase_space: carry the fiducial pairs to the full phase space (above); False:
            the fiducial region only (a lower bound).
        extrapolated: if a list, filled with the share of each mass's yield from outside the
            fiducial region (1 − fiducial/full with the same χ draws; 0 without an
            extrapolation or with ``full_phase_space`` False).

    Returns:
        Array over m_χ: Σ w K_χ/K_ℓ hits / N_POT(data) × P_int(facility)/P_int(data).

    Raises:
        InputError: a missing or unreadable ``pairs.parquet``/``yields.json``; a
            both-channels run (its pairs mix two lepton masses and exposures: not supported).
    """

    rd = rundir.RunDir(run)
    if not rd.path(rundir.YIELDS).exists():
        raise InputError(
            f"mcp.data_driven.run: {rd.path(rundir.YIELDS)} not found (a finished run?)"
        )
    if not rd.has_pairs():  # pairs.parquet, or the dataset at select.json pairs_url
        raise InputError(
            f"mcp.data_driven.run: {rd.pairs_location()} not found (a finished run?)"
        )
    ydoc = rd.read_json(rundir.YIELDS)  # schema-checked (n_pot required)
    if ydoc.get("flavours"):
        raise InputError(
            f"mcp.data_driven.run: {rd.path(rundir.YIELDS)} is a both-channels run "
            f"({', '.join(ydoc['flavours'])}: its pairs hold two lepton masses and exposures); "
            "point it at a single-flavour run (input.lepton: mu or e)"
        )
    meta = ydoc["meta"]
    try:
        n_pot = float(meta["n_pot"])
        thick = meta["target_interaction_lengths"]
        m_l = float(meta["lepton_mass"])
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(
            f"mcp.data_driven.run: {rd.path(rundir.YIELDS)}: meta lacks {err}"
        ) from None
    df = rd.read_pairs(["m", "qT", "pz", "weight"], require=["m", "qT", "pz", "weight"])
    scale = yield_scale(target_interaction_lengths, thick) / n_pot
    rng = np.random.default_rng(seed)
    m_chi = np.atleast_1d(np.asarray(m_chi, dtype=np.float64))
    w_fid = df["weight"].to_numpy(dtype=np.float64)
    w = w_fid
    if full_phase_space and ydoc.get("extrapolation") is not None:

        # a single-flavour run (both-channels runs, with a seam, are refused above)
        f_f = Extrapolation.from_dict(ydoc["extrapolation"]).at(df["m"].to_numpy())[0]
        w = np.where(f_f > 0, w_fid / np.where(f_f > 0, f_f, 1.0), 0.0)
    full, fid = np.empty(m_chi.size), np.empty(m_chi.size)
    for i, mc in enumerate(m_chi):
        s = int(rng.integers(2**63))  # one draw per mass: the full and fiducial sums share it
        args = (df["m"], df["qT"], df["pz"])
        full[i] = gstar_chi_yield(*args, w, float(mc), detector, m_lepton=m_l, seed=s)
        fid[i] = (
            gstar_chi_yield(*args, w_fid, float(mc), detector, m_lepton=m_l, seed=s)
            if w is not w_fid
            else full[i]
        )
    if extrapolated is not None:
        extrapolated[:] = np.where(full != 0, 1.0 - fid / np.where(full != 0, full, 1.0), 0.0)
    return scale * full


def detector_from_config(section: Any) -> ScintillatorDetector:
    """The :class:`ScintillatorDetector` of a ``mcp.detector`` config section."""
    return ScintillatorDetector(**section.model_dump())


def plot_mcp_reach(doc: dict[str, Any], path: str | Path | None = None, *, title: str = ""):
    """Plot Q_low(m_χ) of a ``reach_mcp.json`` document (median, ±1σ, ±2σ; excluded above).

    Arguments:
        doc: the document (``mass``, ``q_low`` per band).
        path: PNG path (written atomically) or None.
        title: axes title.

    Returns:
        The matplotlib figure.
    """
    import matplotlib.pyplot as plt

    m = np.asarray(doc["mass"], dtype=np.float64)

    def band(key: str) -> NDArray[np.float64]:
        return np.array([np.nan if q is None else q for q in doc["q_low"][key]], dtype=float)

    with figure_style():
        fig, ax = plt.subplots(figsize=(8, 6))
        ax.fill_between(m, band("-2"), band("+2"), color="#FFDF00", lw=0, label=r"$\pm2\sigma$")
        ax.fill_between(m, band("-1"), band("+1"), color="#00CC00", lw=0, label=r"$\pm1\sigma$")
        ax.plot(m, band("0"), "k--", label="expected (median)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(r"$m_\chi$ [GeV]")
        ax.set_ylabel(r"$Q_\chi / e$ (excluded above the line)")
        ax.legend(fontsize=14, loc="upper left")
        if title:
            ax.set_title(title, fontsize=16)
        if path is not None:

            save_figure(fig, path, bbox_inches="tight", dpi=110)
    plt.close(fig)
    return fig


def run_mcp_reach(config: AnalysisConfig | str | os.PathLike[str], *, force: bool = False, output: str | Path | None = None) -> Path:
    """Compute the χ yields and the (m_χ, Q) reach of ``config.mcp``; write ``reach_mcp.json``.

    Arguments:
        config: an :class:`~gammastar.config.AnalysisConfig` (or YAML path) with a ``mcp``
            section.
        force: overwrite an existing output.
        output: output path (default ``<run>/reach_mcp.json``).

    Returns:
        The path written.

    Raises:
        ConfigError: no ``mcp`` section; the data-driven flux without its inputs.
    """

    cfg = config if isinstance(config, AnalysisConfig) else load_config(config)
    mc = cfg.mcp
    if mc is None:
        raise ConfigError("mcp: the config has no 'mcp' section")
    det = detector_from_config(mc.detector)
    masses = np.geomspace(mc.mass_min, mc.mass_max, mc.mass_points)
    p_int = float(interaction_probability(mc.target_interaction_lengths))
    mc_err: dict[str, NDArray[np.float64]] = {}
    parts = meson_chi_yields(
        {k: v.model_dump() for k, v in mc.sources.items()},
        masses,
        det,
        MesonSettings(beam_energy=mc.beam_energy, n=mc.n_samples, p_int=p_int),
        seed=cfg.seed,
        errors=mc_err,
    )
    share: list[float] = []
    if mc.data_driven is not None:
        parts["data"] = data_driven_yields(
            cfg.resolve(mc.data_driven.run),
            masses,
            det,
            mc.target_interaction_lengths,
            seed=np.random.SeedSequence([cfg.seed, 1]),
            extrapolated=share,
        )
    total = np.sum(list(parts.values()), axis=0) if parts else np.zeros_like(masses)
    res = mcp_reach(
        masses,
        total,
        det,
        n_pot=mc.n_pot,
        n_pot_rel_uncertainty=mc.n_pot_rel_uncertainty,
        cl=mc.cl,
    )

    out = Path(output) if output is not None else cfg.output_dir / rundir.REACH_MCP
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {
        "cl": mc.cl,
        **res.to_dict(),
        "yield_by_source": {k: v.tolist() for k, v in parts.items()},
        "yield_mc_error_by_source": {k: v.tolist() for k, v in mc_err.items()},
        **(
            {"data_extrapolated_share": [float(x) for x in share]}
            if mc.data_driven is not None
            else {}
        ),
        "meta": make_meta(
            config_sha256=cfg.section_sha256("mcp"),
            seed=cfg.seed,
            n_pot=mc.n_pot,
            p_int=p_int,
            detection="P = sum_{j>=k} C(n,j) p^j (1-p)^(n-j), p = 1 - exp(-Q^2 N1)",
        ),
    }
    rundir.validate(doc, "reach_mcp.json", where=str(out))
    written = write_json(out, doc, force=force)
    plot_mcp_reach(doc, out.parent / "figures" / "reach_mcp.png", title=cfg.name)
    return written
