r"""The polar angular distribution of a vector's (A′, γ*) decay to two fermions,
W(cos θ) ∝ a + b cos²θ in the helicity frame, from its spin density ρ₀₀:
:func:`fermion_coefficients` (a, b), :func:`rho00_from_lambda` (ρ₀₀ from a measured λ_θ = b/a)
and :func:`lambda_for_lepton` (λ_θ of one lepton flavour from another's, the same ρ₀₀).

With β² = 1 − 4m_f²/m², a transverse vector decays as 1 + cos²θ + (1 − β²) sin²θ and a
longitudinal one as sin²θ + (1 − β²) cos²θ, so
a = (1 − ρ₀₀)(2 − β²)/2 + ρ₀₀ and b = β²(1 − 3ρ₀₀)/2.

References:
    K. Gottfried and J. D. Jackson, Nuovo Cim. 33 (1964) 309 (the spin-density formalism);
    P. Faccioli, C. Lourenço, J. Seixas, H. K. Wöhri, Eur. Phys. J. C 69 (2010) 657
    (dilepton decay distributions and their frames).
"""

from __future__ import annotations

import numpy as np

from gammastar.physics.constants import M_MU

__all__ = ["fermion_coefficients", "lambda_for_lepton", "rho00_from_lambda"]


def fermion_coefficients(rho00: float, m: float, m_fermion: float) -> tuple[float, float]:
    """(a, b) of W(cos θ) ∝ a + b cos²θ for a vector of mass ``m`` and spin density ``rho00``
    decaying to fermions of mass ``m_fermion`` (module doc).

    Example:
        >>> a, b = fermion_coefficients(0.0, 10.0, 0.0)   # transverse, massless: 1 + cos²θ
        >>> round(b / a, 12)
        1.0
    """
    b2 = max(1.0 - 4 * m_fermion**2 / m**2, 0.0)
    return (1 - rho00) / 2 * (2 - b2) + rho00, b2 * (1 - 3 * rho00) / 2


def rho00_from_lambda(lambda_theta: float, m: float, lepton_mass: float = M_MU) -> float:
    """ρ₀₀ of the A′ (γ*) spin density from the measured λ_θ of its dileptons.

    Inverts λ_θ = b/a of :func:`fermion_coefficients` for fermions of mass ``lepton_mass``;
    clipped to the physical range [0, 1].

    Example:
        >>> round(rho00_from_lambda(0.0, 10.0), 6), round(rho00_from_lambda(1.0, 100.0), 4)
        (0.333333, 0.0)
    """
    b2 = max(1.0 - 4 * lepton_mass**2 / m**2, 1e-12)
    lam = float(lambda_theta)
    rho = (b2 - lam * (2 - b2)) / (b2 * (lam + 3))
    return float(min(max(rho, 0.0), 1.0))


def lambda_for_lepton(lambda_theta: float, m: float, m_from: float, m_to: float) -> float:
    """λ_θ of leptons of mass ``m_to`` from a vector of mass ``m`` whose leptons of mass
    ``m_from`` show ``lambda_theta``: the same ρ₀₀ (:func:`rho00_from_lambda`) decaying to the
    other pair (:func:`fermion_coefficients`). A transverse γ* at 0.3 GeV shows 0.34 in muons
    and 1 in electrons.

    Example:
        >>> d = 4 * M_MU**2 / 0.3**2
        >>> round(lambda_for_lepton((1 - d) / (1 + d), 0.3, M_MU, 0.0), 9)
        1.0
    """
    a, b = fermion_coefficients(rho00_from_lambda(lambda_theta, m, m_from), m, m_to)
    return float(np.clip(b / a, -1.0, 1.0))
