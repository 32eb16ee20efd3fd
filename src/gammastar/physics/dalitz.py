"""Dalitz-decay mass shapes, transition form factors and the ρ line shape.

Pure numpy functions of the dilepton mass ``m`` (GeV), the parent and lepton masses, and
form-factor parameters, so that the mock generator (:mod:`gammastar.mock`) and the yields
stage share one implementation.

* P → γℓℓ (Kroll–Wada): :func:`pseudoscalar_dalitz_dgamma_dm`
* V → Pℓℓ: :func:`vector_dalitz_dgamma_dm`
* form factors: :func:`form_factor_pole`, :func:`form_factor_eta_prime`
* ρ → ℓℓ line shape: :func:`rho_line_shape`
* lepton polar angle in the γ* rest frame: :func:`lepton_angle_pdf`
* integrals (ratios to the photon mode): :func:`pseudoscalar_dalitz_ratio`,
  :func:`vector_dalitz_ratio`

All formulas are hand-written from docs/explanation/physics.md §3.3, which follows N. M. Kroll and W. Wada,
Phys. Rev. 98 (1955) 1355; L. G. Landsberg, Phys. Rep. 128 (1985) 301; and the NA60 p–A
analysis (R. Arnaldi et al., PLB 757 (2016) 437) for the form-factor parameters.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.physics.constants import ALPHA_EM
from gammastar.physics.kinematics import kinematic_factor

FormFactor = ArrayLike | Callable[[NDArray[np.float64]], ArrayLike]
"""|F(m²)|²: a number/array, or a callable of the dilepton mass ``m`` (GeV)."""

# docs/explanation/physics.md §3.3 [lit]: NA60 p–A (PLB 757 (2016) 437) and the η′ parametrisation.
ETA_LAMBDA_INV2: float = 1.934
"""Λ⁻² of the η pole form factor, GeV⁻² (NA60 p–A: 1.934 ± 0.067 ± 0.050)."""
OMEGA_LAMBDA_INV2: float = 2.223
"""Λ⁻² of the ω → π0 pole form factor, GeV⁻² (NA60 p–A: 2.223 ± 0.026 ± 0.037)."""
ETA_PRIME_LAMBDA: float = 0.764
"""Λ of the η′ Breit–Wigner-like form factor, GeV."""
ETA_PRIME_GAMMA: float = 0.102
"""γ of the η′ form factor, GeV."""


def _ff2(form_factor2: FormFactor, m: NDArray[np.float64]) -> NDArray[np.float64]:
    value = form_factor2(m) if callable(form_factor2) else form_factor2
    return np.asarray(value, dtype=np.float64)


def form_factor_pole(m: ArrayLike, lambda_inv2: ArrayLike) -> NDArray[np.float64]:
    r"""Single-pole transition form factor squared, :math:`|F|^2 = (1 - m^2 \Lambda^{-2})^{-2}`.

    Arguments:
        m: dilepton mass, GeV.
        lambda_inv2: pole parameter Λ⁻², GeV⁻² (η: 1.934, ω → π0: 2.223 from NA60 p–A).

    Returns:
        |F(m²)|² (inf at the pole m = Λ).

    References:
        docs/explanation/physics.md §3.3; NA60, PLB 757 (2016) 437; Landsberg, Phys. Rep. 128 (1985) 301.

    Example:
        >>> float(form_factor_pole(0.0, 1.934))
        1.0
        >>> round(float(form_factor_pole(0.5, 2.0)), 6)  # (1 - 0.5)^-2
        4.0
    """
    m = np.asarray(m, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return 1.0 / (1.0 - m**2 * np.asarray(lambda_inv2, dtype=np.float64)) ** 2


def form_factor_eta_prime(
    m: ArrayLike, lam: float = ETA_PRIME_LAMBDA, gamma: float = ETA_PRIME_GAMMA
) -> NDArray[np.float64]:
    r"""η′ transition form factor squared, :math:`|F|^2 = \Lambda^4 / [(\Lambda^2 - m^2)^2 + \Lambda^2\gamma^2]`.

    Arguments:
        m: dilepton mass, GeV.
        lam: Λ, GeV (default 0.764).
        gamma: γ, GeV (default 0.102).

    Returns:
        |F(m²)|².

    References:
        docs/explanation/physics.md §3.3 (Lepton-G / NA60 parametrisation of the η′ form factor).

    Example:
        >>> round(float(form_factor_eta_prime(0.0)), 4)  # Λ²/(Λ² + γ²), as in docs/explanation/physics.md
        0.9825
        >>> round(float(form_factor_eta_prime(0.764)), 1)  # Λ²/γ² at the peak
        56.1
    """
    m = np.asarray(m, dtype=np.float64)
    lam2 = lam * lam
    return lam2 * lam2 / ((lam2 - m**2) ** 2 + lam2 * gamma * gamma)


def pseudoscalar_dalitz_dgamma_dm(
    m: ArrayLike,
    m_parent: float,
    m_lepton: float | NDArray[np.float64],
    form_factor2: FormFactor = 1.0,
) -> NDArray[np.float64]:
    r"""Kroll–Wada P → γℓℓ mass spectrum per unit mass, relative to Γ(P → γγ).

    .. math::
        \frac{1}{\Gamma_{\gamma\gamma}}\frac{d\Gamma}{dm} = \frac{4\alpha}{3\pi m}
        \left(1 - \frac{m^2}{M^2}\right)^3 K_\ell(m)\, |F(m^2)|^2

    (docs/explanation/physics.md §3.3 gives dΓ/dm²; dΓ/dm = 2m dΓ/dm²).

    Arguments:
        m: dilepton mass, GeV.
        m_parent: pseudoscalar mass M, GeV.
        m_lepton: lepton mass, GeV (a number, or one per ``m``).
        form_factor2: |F(m²)|², a number/array or a callable of ``m``.

    Returns:
        (1/Γ(P → γγ)) dΓ/dm in GeV⁻¹; 0 outside 2m_ℓ < m < M.

    References:
        N. M. Kroll, W. Wada, Phys. Rev. 98 (1955) 1355; Landsberg, Phys. Rep. 128 (1985) 301;
        docs/explanation/physics.md §3.3.

    Example:
        >>> from scipy.integrate import quad
        >>> f = lambda m: float(pseudoscalar_dalitz_dgamma_dm(m, 0.1349768, 0.51099895e-3))
        >>> round(quad(f, 2 * 0.51099895e-3, 0.1349768, limit=200)[0], 5)  # π0 → γee / γγ
        0.01185
    """
    m = np.asarray(m, dtype=np.float64)

    def value(ms):
        shape = 4.0 * ALPHA_EM / (3.0 * np.pi * ms) * (1.0 - ms**2 / m_parent**2) ** 3
        return shape * kinematic_factor(ms, m_lepton) * _ff2(form_factor2, ms)

    return on_support(m, (m > 2.0 * m_lepton) & (m < m_parent), 0.5 * m_parent, value)


def on_support(
    m: ArrayLike, inside: NDArray[np.bool_], placeholder: float, f: Callable
) -> NDArray[np.float64]:
    """``f(m)`` where ``inside``, 0 elsewhere; outside, ``f`` sees ``placeholder`` instead of
    ``m`` (a mass where it is finite, so that no warning is raised).

    Example:
        >>> m = np.array([0.1, 0.5])
        >>> on_support(m, m > 0.2, 1.0, lambda x: 1 / (x - 0.1)).tolist()
        [0.0, 2.5]
    """
    ms = np.where(inside, np.asarray(m, dtype=np.float64), placeholder)
    return np.where(inside, f(ms), 0.0)


def vector_to_pseudoscalar_phase_space(
    m: ArrayLike, m_parent: float, m_daughter: float
) -> NDArray[np.float64]:
    r"""Phase-space factor of V → P + (massive vector of mass m) relative to V → Pγ:

    .. math:: \Big[\Big(1 + \frac{m^2}{\Delta}\Big)^2 - \frac{4 M_V^2 m^2}{\Delta^2}\Big]^{3/2},
       \qquad \Delta = M_V^2 - M_P^2

    (clipped at 0 above the end point m = M_V − M_P).

    References:
        Landsberg, Phys. Rep. 128 (1985) 301, Eq. (3.8); docs/explanation/physics.md §1, §3.3.

    Example:
        >>> float(vector_to_pseudoscalar_phase_space(0.0, 0.78, 0.135))
        1.0
    """
    m = np.asarray(m, dtype=np.float64)
    d = m_parent**2 - m_daughter**2
    bracket = (1.0 + m**2 / d) ** 2 - 4.0 * m_parent**2 * m**2 / d**2
    return np.clip(bracket, 0.0, None) ** 1.5


def vector_dalitz_dgamma_dm(
    m: ArrayLike,
    m_parent: float,
    m_daughter: float,
    m_lepton: float | NDArray[np.float64],
    form_factor2: FormFactor = 1.0,
) -> NDArray[np.float64]:
    r"""V → Pℓℓ mass spectrum per unit mass, relative to Γ(V → Pγ).

    .. math::
        \frac{1}{\Gamma_{P\gamma}}\frac{d\Gamma}{dm} = \frac{2\alpha}{3\pi m} K_\ell(m)
        \left[\left(1 + \frac{m^2}{M_V^2 - M_P^2}\right)^2
        - \frac{4 M_V^2 m^2}{(M_V^2 - M_P^2)^2}\right]^{3/2} |F(m^2)|^2

    Arguments:
        m: dilepton mass, GeV.
        m_parent: vector-meson mass M_V, GeV.
        m_daughter: pseudoscalar mass M_P, GeV.
        m_lepton: lepton mass, GeV (a number, or one per ``m``).
        form_factor2: |F(m²)|², a number/array or a callable of ``m``.

    Returns:
        (1/Γ(V → Pγ)) dΓ/dm in GeV⁻¹; 0 outside 2m_ℓ < m < M_V − M_P.

    References:
        Landsberg, Phys. Rep. 128 (1985) 301, Eq. (3.8); docs/explanation/physics.md §3.3.

    Example:
        >>> import numpy as np
        >>> m = np.array([0.1, 0.3, 0.6])
        >>> v = vector_dalitz_dgamma_dm(m, 0.78266, 0.1349768, 0.1056583755)
        >>> bool(v[0] == 0 and v[1] > v[2] > 0)
        True
    """
    m = np.asarray(m, dtype=np.float64)
    end = m_parent - m_daughter

    def value(ms):
        shape = 2.0 * ALPHA_EM / (3.0 * np.pi * ms)
        phase_space = vector_to_pseudoscalar_phase_space(ms, m_parent, m_daughter)
        return shape * phase_space * kinematic_factor(ms, m_lepton) * _ff2(form_factor2, ms)

    return on_support(m, (m > 2.0 * m_lepton) & (m < end), 0.5 * end, value)


def rho_line_shape(
    m: ArrayLike,
    m_rho: float,
    gamma_rho: float,
    m_pion: float,
    m_lepton: float,
    temperature: float = 0.17,
) -> NDArray[np.float64]:
    r"""ρ → ℓℓ line shape (unnormalised dN/dM) with a mass-dependent width and a thermal factor.

    .. math::
        \frac{dN}{dM} \propto \frac{M^{1.5} (1 - 4m_\pi^2/M^2)^{1.5} K_\ell(M)}
        {(M^2 - m_\rho^2)^2 + M^2 \Gamma(M)^2}\, e^{-M/T_\rho},\qquad
        \Gamma(M) = \Gamma_0 \left(\frac{k}{k_0}\right)^3 \frac{m_\rho^2}{M^2}

    with k = sqrt(M²/4 − m_π²) and k0 = k(m_ρ).

    Arguments:
        m: dilepton mass M, GeV.
        m_rho, gamma_rho: ρ pole mass and width Γ0, GeV.
        m_pion: charged-pion mass, GeV.
        m_lepton: lepton mass, GeV.
        temperature: T_ρ of the phase-space factor, GeV (default 0.17).

    Returns:
        dN/dM (arbitrary normalisation); 0 below max(2m_π, 2m_ℓ).

    References:
        docs/explanation/physics.md §3.3 (NA60 cocktail ρ shape: Arnaldi et al., EPJC 61 (2009) 711;
        G. E. Brown, M. Rho / Knoll-type thermal factor); [default] T_ρ = 0.17 GeV.

    Example:
        >>> import numpy as np
        >>> m = np.array([0.2, 0.5, 0.775, 1.0])
        >>> s = rho_line_shape(m, 0.77526, 0.1474, 0.13957, 0.1056583755)
        >>> bool(s[0] == 0 and np.argmax(s) == 2)
        True
    """
    m = np.asarray(m, dtype=np.float64)
    threshold = max(2.0 * m_pion, 2.0 * m_lepton)
    inside = m > threshold
    ms = np.where(inside, m, 2.0 * threshold)
    k = np.sqrt(ms**2 / 4.0 - m_pion**2)
    k0 = np.sqrt(m_rho**2 / 4.0 - m_pion**2)
    width = gamma_rho * (k / k0) ** 3 * (m_rho / ms) ** 2
    num = ms**1.5 * (1.0 - 4.0 * m_pion**2 / ms**2) ** 1.5 * kinematic_factor(ms, m_lepton)
    den = (ms**2 - m_rho**2) ** 2 + ms**2 * width**2
    return np.where(inside, num / den * np.exp(-ms / temperature), 0.0)


def lepton_angle_pdf(cos_theta: ArrayLike, m: ArrayLike, m_lepton: float) -> NDArray[np.float64]:
    r"""Normalised density of the lepton polar angle in the γ* rest frame (Dalitz decays).

    .. math::
        \frac{dN}{d\cos\theta} = \frac{1 + \cos^2\theta + a \sin^2\theta}{(8 + 4a)/3},
        \qquad a = 4 m_\ell^2 / m^2

    θ is measured from the γ* direction of flight in the parent frame (helicity frame);
    the γ* of P → γγ* and V → Pγ* is transversely polarised.

    Arguments:
        cos_theta: cos θ in [−1, 1].
        m: γ* (dilepton) mass, GeV.
        m_lepton: lepton mass, GeV.

    Returns:
        The density in cos θ (integrates to 1 over [−1, 1]).

    References:
        docs/explanation/physics.md §3.3; Landsberg, Phys. Rep. 128 (1985) 301.

    Example:
        >>> from scipy.integrate import quad
        >>> round(quad(lambda c: float(lepton_angle_pdf(c, 0.3, 0.1056583755)), -1, 1)[0], 12)
        1.0
    """
    c = np.asarray(cos_theta, dtype=np.float64)
    a = 4.0 * m_lepton**2 / np.asarray(m, dtype=np.float64) ** 2
    return (1.0 + c**2 + a * (1.0 - c**2)) / ((8.0 + 4.0 * a) / 3.0)


def _integrate(f: Callable[[NDArray[np.float64]], NDArray[np.float64]], lo: float, hi: float):
    from scipy.integrate import quad

    # Substitute m = lo * exp(t): the 1/m behaviour near threshold becomes smooth.
    t_hi = np.log(hi / lo)

    def g(t: float) -> float:
        m = lo * np.exp(t)
        return float(f(np.asarray(m)) * m)

    value, _ = quad(g, 0.0, t_hi, limit=500, epsabs=0.0, epsrel=1e-10)
    return value


def pseudoscalar_dalitz_ratio(
    m_parent: float, m_lepton: float, form_factor2: FormFactor = 1.0
) -> float:
    r"""Γ(P → γℓℓ)/Γ(P → γγ): the integral of :func:`pseudoscalar_dalitz_dgamma_dm`.

    Arguments:
        m_parent: pseudoscalar mass, GeV.
        m_lepton: lepton mass, GeV.
        form_factor2: |F(m²)|² (number or callable of m).

    Returns:
        The ratio to the two-photon mode.

    References:
        docs/explanation/physics.md §3.3 "Unit-test integrals": η → γμμ/γγ with the pole form 8.24e-4,
        η′ → γμμ/γγ 4.90e-3, π0 → γee/γγ (F = 1) 1.185e-2.

    Example:
        >>> round(pseudoscalar_dalitz_ratio(0.1349768, 0.51099895e-3), 5)
        0.01185
    """
    return _integrate(
        lambda m: pseudoscalar_dalitz_dgamma_dm(m, m_parent, m_lepton, form_factor2),
        2.0 * m_lepton,
        m_parent,
    )


def vector_dalitz_ratio(
    m_parent: float, m_daughter: float, m_lepton: float, form_factor2: FormFactor = 1.0
) -> float:
    r"""Γ(V → Pℓℓ)/Γ(V → Pγ): the integral of :func:`vector_dalitz_dgamma_dm`.

    Arguments:
        m_parent: vector mass, GeV.
        m_daughter: pseudoscalar mass, GeV.
        m_lepton: lepton mass, GeV.
        form_factor2: |F(m²)|² (number or callable of m).

    Returns:
        The ratio to the radiative mode V → Pγ.

    References:
        docs/explanation/physics.md §3.1: ω → π0μμ with the NA60 pole form factor gives
        1.23e-3 × BR(ω → π0γ) ≈ 1.03e-4 (with BR(ω → π0γ) = 8.4%; PDG measures 1.34e-4
        for ω → π0μμ, the known excess over vector-meson dominance).

    Example:
        >>> r = vector_dalitz_ratio(0.78266, 0.1349768, 0.1056583755,
        ...                         lambda m: form_factor_pole(m, OMEGA_LAMBDA_INV2))
        >>> round(r, 5)
        0.00123
    """
    return _integrate(
        lambda m: vector_dalitz_dgamma_dm(m, m_parent, m_daughter, m_lepton, form_factor2),
        2.0 * m_lepton,
        m_parent - m_daughter,
    )
