r"""Proton bremsstrahlung of a dark photon (and of a γ* → χχ̄): the theory curve of Figs. 2, 3.

Hand-written physics; every formula below is from the cited papers (docs/explanation/physics.md §8).

**Splitting function** (Fermi–Weizsäcker–Williams, Blümlein & Brunner, arXiv:1311.3870, eq. 3;
also Gorbunov, Makarov & Tkachev arXiv:1411.4007, Feng et al. arXiv:1708.09389). A proton of
energy :math:`E_p` radiates a vector of mass :math:`m` with energy fraction
:math:`z = E_{A'}/E_p` and transverse momentum :math:`p_T` with probability

.. math::

    w(z, p_T^2) = \frac{\varepsilon^2\alpha}{2\pi H}\Big[\frac{1+(1-z)^2}{z}
      - 2z(1-z)\Big(\frac{2M^2+m^2}{H} - \frac{2z^2M^4}{H^2}\Big)
      + 2z(1-z)\big(1+(1-z)^2\big)\frac{M^2m^2}{H^2}
      + 2z(1-z)^2\frac{m^4}{H^2}\Big],

    H = p_T^2 + (1-z)\,m^2 + z^2 M^2

per unit :math:`dz\,dp_T^2` (M the proton mass). The emission rate per inelastic interaction is

.. math::

    \frac{dN}{dz\,dp_T^2} = w(z, p_T^2)\,\frac{\sigma_{pp}(s')}{\sigma_{pp}(s)}\,|F_1(m^2)|^2\,
      |F_{\rm off}(p'^2)|^2, \qquad s = 2ME_p,\ s' = 2M(E_p - E_{A'})

with the validity cuts :math:`z \in [0.1, 0.9]`, :math:`p_T < 1` GeV of arXiv:1311.3870.

**Off-shell cut-off** (quasi-real approximation, Foroughi-Abari & Ritz arXiv:2108.05900): the
intermediate proton is off shell by :math:`p'^2 - M^2 = -H/z`; a form factor
:math:`F_{\rm off} = \Lambda^4/(\Lambda^4 + (p'^2 - M^2)^2)` suppresses large virtualities.
The paper's band (Fig. 2) varies this hadronic cut-off :math:`\Lambda` by a factor of 2.
Only this cut-off is taken from the QRA; the QRA(v2) splitting functions themselves
(arXiv:2108.05900, arXiv:2409.09123) are *not* implemented here.

**Timelike form factor** (Faessler, Fuchs, Krivoruchenko arXiv:0910.5589 parameters, as used
by arXiv:1708.09389): :math:`F_1(m^2) = \sum_V f_V m_V^2/(m_V^2 - m^2 - i m_V\Gamma_V)`
summed coherently over ρ, ρ′, ρ″, ω, ω′, ω″. The couplings satisfy :math:`\sum f_\rho = 0.5`
and :math:`\sum f_\omega = 0.499`, i.e. :math:`F_1(0) \simeq 1` (the proton charge; isovector and
isoscalar halves 1/2 each); the constant widths make :math:`|F_1(0)| = 0.99`, not exactly 1.

**σ_pp(s)**: :math:`Z + B\ln^2(s/s_0) + Y_1(s_1/s)^{\eta_1} - Y_2(s_1/s)^{\eta_2}` (the PDG/COMPETE
fit of the total pp cross-section used by arXiv:1311.3870); only the ratio σ(s′)/σ(s) enters.

**Per POT**: for a target of L interaction lengths a proton interacts with probability
:math:`1 - e^{-L}`; the A′ yield per POT is that times the emission probability above (times an
optional normalisation, e.g. σ_NSD/σ_inel, default 1). For χχ̄ pairs the same vector emission
with a virtual photon of mass m decaying to χχ̄ gives (Eq. 6 inverted, then Eq. 8):
:math:`dN_{\chi\chi}/dm = (2Q^2\alpha/3\pi m)\,K_\chi(m)\,N_{A'}(m)/\varepsilon^2`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.physics.constants import ALPHA_EM, M_PROTON
from gammastar.physics.kinematics import kinematic_factor
from gammastar.physics.target import interaction_probability

# σ_pp(s) fit parameters (docs/explanation/physics.md §8; arXiv:1311.3870, PDG total-cross-section fit).
SIGMA_PP_PARAMS = {
    "Z": 35.45,
    "B": 0.308,
    "Y1": 42.53,
    "Y2": 33.34,
    "s0": 5.38**2,
    "s1": 1.0,
    "eta1": 0.458,
    "eta2": 0.545,
}

# Vector-meson parameters of F_1 (docs/explanation/physics.md §8): (f_V, m_V [GeV], Γ_V [GeV]).
RHO_FAMILY = ((0.616, 0.77526, 0.1474), (0.223, 1.465, 0.40), (-0.339, 1.72, 0.25))
OMEGA_FAMILY = ((1.011, 0.78266, 0.00868), (-0.881, 1.41, 0.29), (0.369, 1.67, 0.315))


def sigma_pp(s: ArrayLike) -> NDArray[np.float64]:
    r"""Total pp cross-section fit σ_pp(s) in mb.

    .. math:: \sigma_{pp}(s) = Z + B\ln^2(s/s_0) + Y_1 (s_1/s)^{\eta_1} - Y_2 (s_1/s)^{\eta_2}

    Arguments:
        s: squared centre-of-mass energy, GeV².

    Returns:
        σ_pp in mb.

    References:
        docs/explanation/physics.md §8; Blümlein & Brunner arXiv:1311.3870; PDG review "Plots of cross
        sections" (COMPETE-type fit).

    Example:
        >>> round(float(sigma_pp(13000.0**2)), 1)
        110.2
    """
    p = SIGMA_PP_PARAMS
    s = np.asarray(s, dtype=np.float64)
    return (
        p["Z"]
        + p["B"] * np.log(s / p["s0"]) ** 2
        + p["Y1"] * (p["s1"] / s) ** p["eta1"]
        - p["Y2"] * (p["s1"] / s) ** p["eta2"]
    )


def timelike_form_factor(m: ArrayLike, family: str = "both") -> NDArray[np.complex128]:
    r"""Proton Dirac form factor F_1(m²) at timelike m² from vector-meson dominance.

    .. math:: F_1(m^2) = \sum_V \frac{f_V\, m_V^2}{m_V^2 - m^2 - i m_V \Gamma_V}

    Arguments:
        m: invariant mass (GeV).
        family: ``"both"`` (ρ and ω families, coherent), ``"rho"`` or ``"omega"``.

    Returns:
        Complex F_1; |F_1(0)| = 0.99 (the couplings sum to 0.999, widths are constant).

    References:
        docs/explanation/physics.md §8; Faessler et al. arXiv:0910.5589; Feng et al. arXiv:1708.09389.

    Example:
        >>> bool(abs(abs(timelike_form_factor(0.0)) - 1.0) < 0.02)
        True
    """
    m2 = np.asarray(m, dtype=np.float64) ** 2
    fams = {"rho": RHO_FAMILY, "omega": OMEGA_FAMILY, "both": RHO_FAMILY + OMEGA_FAMILY}
    if family not in fams:
        raise ValueError(f"family must be one of {sorted(fams)}, not {family!r}")
    out = np.zeros(m2.shape, dtype=np.complex128)
    for f, mv, gv in fams[family]:
        out = out + f * mv**2 / (mv**2 - m2 - 1j * mv * gv)
    return out


def _h(z: NDArray[np.float64], pt2: NDArray[np.float64], m: NDArray[np.float64]) -> NDArray:
    return pt2 + (1.0 - z) * m**2 + z**2 * M_PROTON**2


def splitting_function(z: ArrayLike, pt2: ArrayLike, m: ArrayLike) -> NDArray[np.float64]:
    r"""FWW splitting function w(z, p_T²) per ε² (arXiv:1311.3870 eq. 3), in GeV⁻².

    Arguments:
        z: A′ energy fraction E_A′/E_p.
        pt2: A′ transverse momentum squared, GeV².
        m: A′ mass, GeV.

    Returns:
        dN/(dz dp_T²) / ε² without σ ratio and form factors.

    References:
        Blümlein & Brunner, arXiv:1311.3870, eq. (3).

    Example:
        >>> w = splitting_function(0.5, 0.1, 0.0)   # m → 0: photon-like, positive
        >>> bool(w > 0)
        True
    """
    z = np.asarray(z, dtype=np.float64)
    pt2 = np.asarray(pt2, dtype=np.float64)
    m = np.asarray(m, dtype=np.float64)
    mp2 = M_PROTON**2
    h = _h(z, pt2, m)
    m2 = m**2
    bracket = (
        (1.0 + (1.0 - z) ** 2) / z
        - 2.0 * z * (1.0 - z) * ((2.0 * mp2 + m2) / h - 2.0 * z**2 * mp2**2 / h**2)
        + 2.0 * z * (1.0 - z) * (1.0 + (1.0 - z) ** 2) * mp2 * m2 / h**2
        + 2.0 * z * (1.0 - z) ** 2 * m2**2 / h**2
    )
    return ALPHA_EM / (2.0 * np.pi * h) * bracket


def splitting_function_pt2_integral(
    z: ArrayLike, pt2_max: ArrayLike, m: ArrayLike
) -> NDArray[np.float64]:
    r"""∫_0^{p_T,max²} w(z, p_T²) dp_T² in closed form (no off-shell cut-off).

    With :math:`A = (1-z)m^2 + z^2M^2`, :math:`P = p_{T,\max}^2` and the three powers of
    1/H integrated exactly. Used to check the numerical integration.

    Example:
        >>> from scipy.integrate import quad
        >>> num = quad(lambda x: float(splitting_function(0.3, x, 0.5)), 0, 1)[0]
        >>> bool(np.isclose(splitting_function_pt2_integral(0.3, 1.0, 0.5), num, rtol=1e-8))
        True
    """
    z = np.asarray(z, dtype=np.float64)
    p = np.asarray(pt2_max, dtype=np.float64)
    m2 = np.asarray(m, dtype=np.float64) ** 2
    mp2 = M_PROTON**2
    a = (1.0 - z) * m2 + z**2 * mp2
    i1 = np.log1p(p / a)  # ∫ dx/(x+A)
    i2 = p / (a * (p + a))  # ∫ dx/(x+A)²
    i3 = p * (p + 2 * a) / (2 * a**2 * (p + a) ** 2)  # ∫ dx/(x+A)³
    c1 = (1.0 + (1.0 - z) ** 2) / z
    c2 = -2.0 * z * (1.0 - z) * (2.0 * mp2 + m2)
    c3 = (
        2.0
        * z
        * (1.0 - z)
        * (2.0 * z**2 * mp2**2 + (1.0 + (1.0 - z) ** 2) * mp2 * m2 + (1.0 - z) * m2**2)
    )
    return ALPHA_EM / (2.0 * np.pi) * (c1 * i1 + c2 * i2 + c3 * i3)


def offshell_form_factor(
    z: ArrayLike, pt2: ArrayLike, m: ArrayLike, cutoff: float
) -> NDArray[np.float64]:
    r"""Off-shell proton form factor F = Λ⁴/(Λ⁴ + (p′² − M²)²), p′² − M² = −H/z.

    ``cutoff=np.inf`` gives 1 (no suppression).

    References:
        Foroughi-Abari & Ritz, arXiv:2108.05900 (QRA); Allison & Blinov Fig. 2 (Λ × 2 band).

    Example:
        >>> float(offshell_form_factor(0.5, 0.0, 0.0, np.inf))
        1.0
    """
    if np.isinf(cutoff):
        return np.ones(np.broadcast(z, pt2, m).shape)
    z = np.asarray(z, dtype=np.float64)
    virt = _h(z, np.asarray(pt2, dtype=np.float64), np.asarray(m, dtype=np.float64)) / z
    lam4 = float(cutoff) ** 4
    return lam4 / (lam4 + virt**2)


@dataclass(frozen=True)
class BremsSettings:
    """Settings of the bremsstrahlung estimate (all config values, docs/explanation/physics.md §8).

    Attributes:
        beam_energy: proton energy in GeV.
        interaction_lengths: target thickness L (probability to interact 1 − e^{−L}).
        z_min, z_max: A′ energy-fraction window (validity of the FWW approximation).
        pt_max: upper p_T cut in GeV.
        cutoff: off-shell cut-off Λ in GeV (central value of the band).
        band_factor: the band varies Λ by this factor up and down.
        normalisation: extra factor (e.g. σ_NSD/σ_inel), default 1.
    """

    beam_energy: float = 400.0
    interaction_lengths: float = 0.01
    z_min: float = 0.1
    z_max: float = 0.9
    pt_max: float = 1.0
    cutoff: float = 1.0
    band_factor: float = 2.0
    normalisation: float = 1.0

    @property
    def interaction_probability(self) -> float:
        """Probability that a beam proton interacts in the target, 1 − e^{−L}
        (:func:`gammastar.physics.target.interaction_probability`)."""
        return float(interaction_probability(self.interaction_lengths))


def emission_probability(
    m: ArrayLike,
    *,
    beam_energy: float = 400.0,
    z_range: tuple[float, float] = (0.1, 0.9),
    pt_max: float = 1.0,
    cutoff: float = np.inf,
    form_factor: bool = True,
    n_z: int = 32,
    n_pt: int = 32,
) -> NDArray[np.float64]:
    r"""A′ emission probability per inelastic pp interaction per ε².

    .. math:: P(m) = \int_{z_{\min}}^{z_{\max}} dz \int_0^{p_{T,\max}^2} dp_T^2\;
        w(z,p_T^2)\,\frac{\sigma_{pp}(s')}{\sigma_{pp}(s)}\,|F_1(m^2)|^2\,F_{\rm off}^2

    Gauss–Legendre in z and in t = ln(p_T² + A) (A = H at p_T = 0), vectorised over m;
    32 × 32 points agree with adaptive scipy ``dblquad`` to 1e-13 (tests).

    Arguments:
        m: A′ masses, GeV.
        beam_energy: proton beam energy, GeV.
        z_range: (z_min, z_max).
        pt_max: p_T cut, GeV.
        cutoff: off-shell cut-off Λ (GeV); ``inf`` switches it off.
        form_factor: multiply by |F_1(m²)|².
        n_z, n_pt: quadrature points.

    Returns:
        P(m) per ε², same shape as ``m``.

    References:
        arXiv:1311.3870 eq. (3); arXiv:2108.05900 (cut-off); docs/explanation/physics.md §8.

    Example:
        >>> p = emission_probability([0.3, 0.78])
        >>> bool(p[1] > p[0])   # ρ/ω enhancement
        True
    """
    m = np.asarray(m, dtype=np.float64)
    shape = m.shape
    mm = m.reshape(-1, 1, 1)
    z0, z1 = z_range
    xz, wz_nodes = np.polynomial.legendre.leggauss(n_z)
    z = (0.5 * (z1 - z0) * xz + 0.5 * (z1 + z0)).reshape(1, -1, 1)
    wz = (0.5 * (z1 - z0) * wz_nodes).reshape(1, -1, 1)
    a = (1.0 - z) * mm**2 + z**2 * M_PROTON**2
    t0, t1 = np.log(a), np.log(a + pt_max**2)
    xt, wt = np.polynomial.legendre.leggauss(n_pt)
    t = 0.5 * (t1 - t0) * xt.reshape(1, 1, -1) + 0.5 * (t1 + t0)
    jac = 0.5 * (t1 - t0) * wt.reshape(1, 1, -1) * np.exp(t)  # dpT² = e^t dt
    pt2 = np.exp(t) - a
    s = 2.0 * M_PROTON * beam_energy
    s_prime = s * (1.0 - z)
    integrand = splitting_function(z, pt2, mm) * sigma_pp(s_prime) / sigma_pp(s)
    integrand = integrand * offshell_form_factor(z, pt2, mm, cutoff) ** 2
    total = np.sum(integrand * jac * wz, axis=(1, 2))
    if form_factor:
        total = total * np.abs(timelike_form_factor(m.reshape(-1))) ** 2
    return total.reshape(shape)


def aprime_yield_per_pot(
    m: ArrayLike, settings: BremsSettings | None = None, *, cutoff: float | None = None
) -> NDArray[np.float64]:
    """A′ yield per POT per ε² from proton bremsstrahlung on a target of L interaction lengths.

    Arguments:
        m: A′ masses, GeV.
        settings: beam/target and integration settings (defaults: NA60-like, 400 GeV, L = 0.01).
        cutoff: override the off-shell cut-off Λ (GeV).

    Returns:
        (1 − e^{−L}) · normalisation · :func:`emission_probability`.

    Example:
        >>> y = aprime_yield_per_pot([0.5])
        >>> bool(1e-6 < y[0] < 1e-4)
        True
    """
    st = settings or BremsSettings()
    lam = st.cutoff if cutoff is None else cutoff
    p = emission_probability(
        m, beam_energy=st.beam_energy, z_range=(st.z_min, st.z_max), pt_max=st.pt_max, cutoff=lam
    )
    return st.interaction_probability * st.normalisation * p


def aprime_yield_band(
    m: ArrayLike, settings: BremsSettings | None = None
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Central, low and high A′ yield per POT per ε²: Λ, Λ/k and Λ·k (k = ``band_factor``).

    Returns:
        (central, lower, upper) with lower/upper the pointwise min/max over the three cut-offs.
    """
    st = settings or BremsSettings()
    curves = np.array(
        [
            aprime_yield_per_pot(m, st, cutoff=st.cutoff * f)
            for f in (1.0, 1.0 / st.band_factor, st.band_factor)
        ]
    )
    return curves[0], curves.min(axis=0), curves.max(axis=0)


def mcp_yield_per_pot(
    m_chi: ArrayLike,
    settings: BremsSettings | None = None,
    *,
    q: float = 1.0,
    m_max: float = 2.0,
    cutoff: float | None = None,
    n_fine: int = 20_000,
    n_smooth: int = 160,
) -> NDArray[np.float64]:
    r"""χχ̄ pairs per POT (per Q² for ``q=1``) from bremsstrahlung of a virtual photon.

    .. math:: N_{\chi\chi}(m_\chi) = \int_{2m_\chi}^{m_{\max}} dm\; \frac{2Q^2\alpha}{3\pi m}
        K_\chi(m)\, N_{A'}(m)/\varepsilon^2

    The smooth part of N_A′ (without |F_1|²) is computed on ``n_smooth`` log-spaced masses and
    interpolated; |F_1(m²)|² (narrow ω) and K_χ are evaluated on a fine grid in u with
    m = 2m_χ + u² (which removes the threshold square root), integrated with Simpson's rule.
    ``m_max`` bounds the γ* mass where the FWW approach is used.

    References:
        Allison & Blinov Eqs. (6), (8); docs/explanation/physics.md §1, §8.
    """
    st = settings or BremsSettings()
    lam = st.cutoff if cutoff is None else cutoff
    return _mcp_yields(m_chi, st, [lam], q=q, m_max=m_max, n_fine=n_fine, n_smooth=n_smooth)[0]


def _mcp_yields(
    m_chi: ArrayLike,
    st: BremsSettings,
    cutoffs: list[float],
    *,
    q: float = 1.0,
    m_max: float = 2.0,
    n_fine: int = 20_000,
    n_smooth: int = 160,
) -> NDArray[np.float64]:
    """:func:`mcp_yield_per_pot` (its arguments, its defaults) for several cut-offs Λ,
    (len(cutoffs), n): the fine grid, |F_1|² and K_χ of each m_χ made once for all of them
    (each Λ's numbers are those of its own call)."""
    from scipy.integrate import simpson

    m_chi = np.asarray(m_chi, dtype=np.float64)
    out = np.zeros((len(cutoffs), *m_chi.shape))
    valid = 2.0 * m_chi < m_max
    if not np.any(valid):
        return out
    lo = max(2.0 * float(m_chi[valid].min()), 1e-4)
    grid = np.geomspace(lo, m_max, n_smooth)
    log_grid = np.log(grid)
    log_smooth = [
        np.log(
            st.interaction_probability
            * st.normalisation
            * emission_probability(
                grid,
                beam_energy=st.beam_energy,
                z_range=(st.z_min, st.z_max),
                pt_max=st.pt_max,
                cutoff=lam,
                form_factor=False,
            )
        )
        for lam in cutoffs
    ]
    for idx, mc in np.ndenumerate(m_chi):
        if not valid[idx]:
            continue
        u = np.linspace(0.0, np.sqrt(m_max - 2.0 * mc), n_fine)
        m = np.maximum(2.0 * mc + u**2, lo)
        log_m = np.log(m)
        ff2 = np.abs(timelike_form_factor(m)) ** 2
        k = kinematic_factor(m, mc)
        for j, ls in enumerate(log_smooth):
            nv = np.exp(np.interp(log_m, log_grid, ls))
            nv = nv * ff2
            integrand = 2.0 * q**2 * ALPHA_EM / (3.0 * np.pi * m) * k * nv
            out[(j, *idx)] = simpson(integrand * 2.0 * u, x=u)
    return out


def mcp_yield_band(
    m_chi: ArrayLike,
    settings: BremsSettings | None = None,
    *,
    q: float = 1.0,
    m_max: float = 2.0,
    n_fine: int = 20_000,
    n_smooth: int = 160,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Central, low and high χχ̄ yield per POT per Q² (Λ varied by ``band_factor``; the
    other arguments :func:`mcp_yield_per_pot`'s)."""
    st = settings or BremsSettings()
    cuts = [st.cutoff * f for f in (1.0, 1.0 / st.band_factor, st.band_factor)]
    curves = _mcp_yields(m_chi, st, cuts, q=q, m_max=m_max, n_fine=n_fine, n_smooth=n_smooth)
    return curves[0], curves.min(axis=0), curves.max(axis=0)


def sample_emission(
    m: float,
    n: int,
    rng: np.random.Generator,
    settings: BremsSettings | None = None,
    *,
    n_z: int = 96,
    n_pt: int = 96,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r"""Draw the (z, p_T) of ``n`` bremsstrahlung A′ of mass ``m``: the integrand of
    :func:`emission_probability` (w(z, p_T²) σ_pp(s′)/σ_pp(s) F_off², |F_1|² being a constant
    at fixed m) on a grid of ``n_z`` × ``n_pt`` cells in z ∈ [z_min, z_max] and
    t = ln(p_T² + A) up to p_T,max, a cell drawn by its weight (density at its centre × its
    area), then a uniform point inside it. Approximation: the density is constant across a
    cell (96 × 96 cells: the mean z agrees with the quadrature to below 1e-3, tests).

    Arguments:
        m: A′ mass, GeV.
        n: number of A′.
        rng: random generator.
        settings: beam energy, z window, p_T cut and off-shell cut-off Λ (default:
            :class:`BremsSettings`).

    Returns:
        (z, p_T): the A′ energy fraction E_A′/E_p and transverse momentum (GeV).

    References:
        arXiv:1311.3870 eq. (3); arXiv:2108.05900 (cut-off); docs/explanation/physics.md §8.

    Example:
        >>> z, pt = sample_emission(0.3, 1000, np.random.default_rng(1))
        >>> bool(0.1 <= z.min() and z.max() <= 0.9 and pt.max() <= 1.0)
        True
    """
    st = settings or BremsSettings()
    ez = np.linspace(st.z_min, st.z_max, n_z + 1)
    z = 0.5 * (ez[:-1] + ez[1:])[:, None]
    a = (1.0 - z) * m**2 + z**2 * M_PROTON**2
    u = (np.arange(n_pt) + 0.5)[None, :] / n_pt  # fraction of the cell's t range
    t0, t1 = np.log(a), np.log(a + st.pt_max**2)
    t = t0 + (t1 - t0) * u
    pt2 = np.exp(t) - a
    s = 2.0 * M_PROTON * st.beam_energy
    dens = splitting_function(z, pt2, m) * sigma_pp(s * (1.0 - z)) / sigma_pp(s)
    dens = dens * offshell_form_factor(z, pt2, m, st.cutoff) ** 2
    weight = dens * np.exp(t) * (t1 - t0) / n_pt * np.diff(ez)[:, None]  # dp_T² = e^t dt
    cell = rng.choice(weight.size, size=n, p=(weight / weight.sum()).ravel())
    iz, it = np.divmod(cell, n_pt)
    zs = ez[iz] + rng.random(n) * (ez[iz + 1] - ez[iz])
    a_s = (1.0 - zs) * m**2 + zs**2 * M_PROTON**2
    lo, hi = np.log(a_s), np.log(a_s + st.pt_max**2)
    ts = lo + (hi - lo) * (it + rng.random(n)) / n_pt
    return zs, np.sqrt(np.clip(np.exp(ts) - a_s, 0.0, None))
