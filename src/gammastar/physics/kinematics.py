"""The kinematic factors that tie A′ and χχ̄ production to γ* → ℓℓ (paper Eqs. 2, 6, 8)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.physics.constants import ALPHA_EM


def kinematic_factor(m: ArrayLike, m_f: ArrayLike) -> NDArray[np.float64]:
    r"""Phase-space factor of a vector of mass ``m`` decaying to a fermion pair of mass ``m_f``.

    .. math:: K_f(m) = \sqrt{1 - 4 m_f^2/m^2}\,(1 + 2 m_f^2/m^2), \qquad 0 \text{ below threshold.}

    Arguments:
        m: invariant mass of the vector (γ*, A′), GeV.
        m_f: fermion mass, GeV.

    Returns:
        K_f(m), broadcast over the inputs.

    References:
        Allison & Blinov, Eqs. (2), (6), (8); physics.md §1.

    Example:
        >>> float(kinematic_factor(1.0, 0.0))
        1.0
        >>> float(kinematic_factor(0.2, 0.1056583755))
        0.0
    """
    m = np.asarray(m, dtype=np.float64)
    r = np.divide(
        np.asarray(m_f, dtype=np.float64) ** 2,
        m**2,
        where=m > 0,
        out=np.full(np.broadcast(m, m_f).shape, np.inf),
    )
    root = np.sqrt(np.clip(1.0 - 4.0 * r, 0.0, None))
    return np.where(r < 0.25, root * (1.0 + 2.0 * r), 0.0)


def aprime_factor(m: ArrayLike, m_lepton: ArrayLike) -> NDArray[np.float64]:
    r"""Eq. 6 conversion from dN_γ/dm (γ* → ℓℓ, per unit mass) to N_A′ / ε² at m_A′ = m.

    With dm² = 2m dm, Eq. 6 binned in mass reads

    .. math:: N_{A'}(m) = \varepsilon^2 \, \frac{3\pi\, m}{2\alpha\, K_\ell(m)} \, \frac{dN_\gamma}{dm}.

    Arguments:
        m: mass, GeV.
        m_lepton: mass of the lepton measured in the γ* → ℓℓ data, GeV.

    Returns:
        The factor 3πm / (2α K_ℓ(m)) in GeV (inf below the dilepton threshold).

    References:
        Allison & Blinov, Eq. (6); physics.md §1.

    Example:
        >>> f = aprime_factor(0.5, 0.0)
        >>> bool(np.isclose(f, 3 * np.pi * 0.5 / (2 * ALPHA_EM)))
        True
    """
    k = kinematic_factor(m, m_lepton)
    with np.errstate(divide="ignore"):
        return np.where(
            k > 0,
            3.0
            * np.pi
            * np.asarray(m, dtype=np.float64)
            / (2.0 * ALPHA_EM * np.where(k > 0, k, 1.0)),
            np.inf,
        )


def mcp_factor(
    m: ArrayLike, m_chi: ArrayLike, m_lepton: ArrayLike, q: ArrayLike = 1.0
) -> NDArray[np.float64]:
    r"""Eq. 8 weight turning a γ* → ℓℓ pair of mass ``m`` into χχ̄ pairs: Q² K_χ(m)/K_ℓ(m).

    Arguments:
        m: γ* mass, GeV.
        m_chi: millicharged-particle mass, GeV.
        m_lepton: lepton mass of the dilepton data, GeV.
        q: millicharge Q_χ in units of e.

    Returns:
        Q² K_χ(m) / K_ℓ(m); 0 below 2m_χ (and where K_ℓ = 0).

    References:
        Allison & Blinov, Eq. (8); physics.md §1.

    Example:
        >>> float(mcp_factor(1.0, 0.0, 0.0, q=0.1))
        0.010000000000000002
    """
    kl = kinematic_factor(m, m_lepton)
    kc = kinematic_factor(m, m_chi)
    safe = np.where(kl > 0, kl, 1.0)
    return np.where(kl > 0, np.asarray(q, dtype=np.float64) ** 2 * kc / safe, 0.0)
