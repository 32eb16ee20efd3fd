"""Relativistic kinematics shared by the mock generator, the A′ acceptance and the χ sampling.

Offers the kinematic factors that tie A′ and χχ̄ production to γ* → ℓℓ (paper Eqs. 2, 6, 8:
:func:`kinematic_factor`, :func:`aprime_factor`, :func:`mcp_factor`), the centre-of-mass
rapidity of a fixed-target beam (:func:`cm_rapidity`) and four-vector operations:
:func:`four_momentum` (from m, p_T, y, φ), :func:`rapidity` (:func:`rapidity_pz` from p_z and
E) and :func:`invariant_mass`, :func:`boost` (rest frame → lab), :func:`rotate_from_z`,
:func:`two_body_momentum`, :func:`back_to_back` and :func:`decay_in_helicity_frame` (a two-body
decay with angles in the parent's helicity frame).

One array layout: four-momenta are ``(4, n)`` arrays ordered ``(px, py, pz, E)`` (a row per
component, contiguous in the events), three-vectors and vertices ``(3, n)``; the mock, the
events, the dark-sector chain (:mod:`gammastar.physics.darkchain`) and the millicharge
detector (:mod:`gammastar.darksector.mcp`) pass them in this layout. Written out in numpy and tested
against vector (tests/test_kinematics.py); the selection, which holds vector records, reads
their properties; why not vector's own here: docs/reference/mock.md "Kinematics".
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.physics.constants import ALPHA_EM, M_PROTON

Array = NDArray[np.float64]


def kinematic_factor(m: ArrayLike, m_f: ArrayLike) -> NDArray[np.float64]:
    r"""Phase-space factor of a vector of mass ``m`` decaying to a fermion pair of mass ``m_f``.

    .. math:: K_f(m) = \sqrt{1 - 4 m_f^2/m^2}\,(1 + 2 m_f^2/m^2), \qquad 0 \text{ below threshold.}

    Arguments:
        m: invariant mass of the vector (γ*, A′), GeV.
        m_f: fermion mass, GeV.

    Returns:
        K_f(m), broadcast over the inputs.

    References:
        Allison & Blinov, Eqs. (2), (6), (8); docs/explanation/physics.md §1.

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
        Allison & Blinov, Eq. (6); docs/explanation/physics.md §1.

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
        Allison & Blinov, Eq. (8); docs/explanation/physics.md §1.

    Example:
        >>> float(mcp_factor(1.0, 0.0, 0.0, q=0.1))
        0.010000000000000002
    """
    kl = kinematic_factor(m, m_lepton)
    kc = kinematic_factor(m, m_chi)
    safe = np.where(kl > 0, kl, 1.0)
    return np.where(kl > 0, np.asarray(q, dtype=np.float64) ** 2 * kc / safe, 0.0)


# --------------------------------------------------------------------------- four-vectors
def two_body_momentum(m_parent: ArrayLike, m1: ArrayLike, m2: ArrayLike) -> Array:
    """Momentum of either daughter in the rest frame of a two-body decay (Källén function).

    Arguments:
        m_parent: parent mass (GeV).
        m1, m2: daughter masses (GeV).

    Returns:
        p* = √λ(M², m1², m2²)/(2M), 0 at and below threshold (M ≤ m1 + m2, M = 0 included).

    References:
        PDG Review of Particle Physics, "Kinematics", Eq. 49.17.

    Example:
        >>> float(two_body_momentum(1.0, 0.0, 0.0))
        0.5
        >>> two_body_momentum(np.array([0.0, 0.1, 0.13]), 0.135, 0.0).tolist()  # below threshold
        [0.0, 0.0, 0.0]
    """
    m_parent = np.asarray(m_parent, dtype=np.float64)
    lam = (m_parent**2 - np.add(m1, m2) ** 2) * (m_parent**2 - np.subtract(m1, m2) ** 2)
    # below |m1 − m2| both factors are negative: λ > 0 there is no decay
    lam = np.where(m_parent > np.add(m1, m2), lam, 0.0)
    return np.sqrt(np.clip(lam, 0.0, None)) / (2.0 * np.where(m_parent > 0, m_parent, 1.0))


def four_momentum(mass: ArrayLike, pt: ArrayLike, y: ArrayLike, phi: ArrayLike) -> Array:
    """Lab four-momenta ``(4, n)`` from mass, transverse momentum, rapidity and azimuth:
    p_z = m_T sinh y, E = m_T cosh y (vector has no (p_T, y) constructor).

    References:
        PDG Review of Particle Physics, "Kinematics", Eq. 49.36.

    Example:
        >>> p = four_momentum(0.5, 0.0, 0.0, 0.0)
        >>> p.ravel().tolist()
        [0.0, 0.0, 0.0, 0.5]
    """
    mass, pt, y, phi = (np.asarray(a, dtype=np.float64) for a in (mass, pt, y, phi))
    half_mt_ey, half_mt_iey = _half_mt_exp_y(mass, pt, y)
    return np.stack(
        [pt * np.cos(phi), pt * np.sin(phi), half_mt_ey - half_mt_iey, half_mt_ey + half_mt_iey]
    )


def energy_pt_y(mass: ArrayLike, pt: ArrayLike, y: ArrayLike) -> Array:
    """E = m_T cosh y: :func:`four_momentum`'s energy by its arithmetic, without the other
    components (for decisions on E before the four-momenta are made).

    Example:
        >>> float(energy_pt_y(0.5, 0.0, 0.0))
        0.5
    """
    mass, pt, y = (np.asarray(a, dtype=np.float64) for a in (mass, pt, y))
    half_mt_ey, half_mt_iey = _half_mt_exp_y(mass, pt, y)
    return half_mt_ey + half_mt_iey


def _half_mt_exp_y(mass: Array, pt: Array, y: Array) -> tuple[Array, Array]:
    """(m_T e^y / 2, m_T e^−y / 2): E and p_z are their sum and difference."""
    mt = np.sqrt(mass**2 + pt**2)
    ey = np.exp(y)
    return 0.5 * mt * ey, 0.5 * mt / ey


def rapidity_pz(pz: ArrayLike, energy: ArrayLike) -> Array:
    """Rapidity y = ½ ln((E + p_z)/(E − p_z)) from the longitudinal momentum and the energy
    (vector's ``rapidity``, which the tests compare it with; E − p_z is floored at 1e-300).

    References:
        PDG Review of Particle Physics, "Kinematics", Eq. 49.35.

    Example:
        >>> bool(np.isclose(rapidity_pz(3.0, 5.0), 0.5 * np.log(4.0), rtol=1e-15))
        True
    """
    pz, energy = np.asarray(pz, dtype=np.float64), np.asarray(energy, dtype=np.float64)
    return 0.5 * np.log((energy + pz) / np.clip(energy - pz, 1e-300, None))


def rapidity(p: ArrayLike) -> Array:
    """Rapidity of four-momenta ``(4, n)``: :func:`rapidity_pz` of their p_z and E.

    Example:
        >>> round(float(rapidity(four_momentum(0.1, 0.3, 2.5, 0.0))), 12)
        2.5
    """
    p = np.asarray(p, dtype=np.float64)
    return rapidity_pz(p[2], p[3])


def cm_rapidity(beam_energy: float, target_mass: float = M_PROTON) -> float:
    """Lab rapidity of the centre of mass of a fixed-target collision of a proton beam of
    ``beam_energy`` on a nucleon at rest: y_cm = asinh(p/m_p)/2 (half the beam rapidity, equal
    masses; the centre of the produced hadrons' rapidity distribution).

    References:
        PDG Review "Kinematics" §49.5 (rapidity).

    Example:
        >>> round(cm_rapidity(400.0), 2)    # docs/explanation/physics.md §2: 3.37
        3.37
    """
    p = np.sqrt(beam_energy**2 - M_PROTON**2)
    # tanh y_cm = p/(E + m_t); for m_t = m_p this is asinh(p/m_p)/2
    return float(np.arctanh(p / (np.sqrt(p**2 + M_PROTON**2) + target_mass)))


def invariant_mass(p: Array) -> Array:
    """√(E² − |p|²) of four-momenta ``(4, n)``, 0 where negative by rounding.

    Example:
        >>> float(invariant_mass(np.array([[0.0], [0.0], [3.0], [5.0]]))[0])
        4.0
    """
    return np.sqrt(np.clip(p[3] ** 2 - (p[:3] ** 2).sum(axis=0), 0.0, None))


def boost(p: Array, parent: Array, mass: ArrayLike | None = None) -> Array:
    """Boost ``p`` (4, n) from the rest frame of ``parent`` (lab four-momenta (4, n)) to the lab.

    ``mass``: the parent mass when known (else √(E² − p²), which loses digits for E ≫ m).

    With b = p⃗_parent/E_parent and γ = E_parent/m_parent:
    p⃗′ = p⃗ + ((γ − 1)(b·p⃗)/b² + γE) b, E′ = γ(E + b·p⃗). Equal to vector's ``boost_p4`` to
    float64 rounding (tests/test_kinematics.py).

    References:
        PDG Review of Particle Physics, "Kinematics", Eq. 49.8 (Lorentz transformation).

    Example:
        >>> rest = np.array([[0.0], [0.0], [0.0], [1.0]])
        >>> moving = np.array([[0.0], [0.0], [3.0], [5.0]])  # mass 4
        >>> boost(rest * 4.0, moving).ravel().tolist()
        [0.0, 0.0, 3.0, 5.0]
    """
    if mass is None:
        mass = np.sqrt(np.clip(parent[3] ** 2 - (parent[:3] ** 2).sum(axis=0), 1e-300, None))
    gamma = parent[3] / mass
    b = parent[:3] / parent[3]
    bp = (b * p[:3]).sum(axis=0)
    b2 = (b * b).sum(axis=0)
    g2 = np.where(b2 > 0, (gamma - 1.0) / np.where(b2 > 0, b2, 1.0), 0.0)
    out = np.empty_like(p)
    out[:3] = p[:3] + (g2 * bp + gamma * p[3]) * b
    out[3] = gamma * (p[3] + bp)
    return out


def rotate_from_z(
    p: Array, cos_t: ArrayLike, phi: ArrayLike, sin_t: ArrayLike | None = None
) -> Array:
    """Rotate vectors ``(4, n)`` so that the z axis goes to the direction (cos_t, phi):
    R_z(φ)·R_y(θ) (vector's ``rotateY(θ).rotateZ(φ)``); E is unchanged. ``sin_t``: sin θ when
    known (√(1 − cos²θ) loses digits near the poles).

    Example:
        >>> z = np.array([[0.0], [0.0], [1.0], [1.0]])
        >>> rotate_from_z(z, np.array([0.0]), np.array([0.0])).round(12).ravel().tolist()
        [1.0, 0.0, 0.0, 1.0]
    """
    if sin_t is None:
        sin_t = np.sqrt(np.clip(1.0 - np.square(cos_t), 0.0, None))
    x = p[0] * cos_t + p[2] * sin_t
    z = -p[0] * sin_t + p[2] * cos_t
    c, s = np.cos(phi), np.sin(phi)
    out = np.empty_like(p)
    out[0] = x * c - p[1] * s
    out[1] = x * s + p[1] * c
    out[2] = z
    out[3] = p[3]
    return out


def back_to_back(
    p: ArrayLike,
    m_daughter: ArrayLike,
    cos_t: ArrayLike,
    phi: ArrayLike,
    m_other: ArrayLike | None = None,
) -> tuple[Array, Array]:
    """Two daughters at rest-frame momentum ``p`` along ±(cos_t, phi), (4, n) each: the first
    of mass ``m_daughter``, the second of mass ``m_other`` (default: the same).

    Example:
        >>> a, b = back_to_back(np.array([0.3]), 0.1, np.array([1.0]), np.array([0.0]))
        >>> (a + b).round(12).ravel().tolist() == [0.0, 0.0, 0.0, round(2 * (0.1**2 + 0.09) ** 0.5, 12)]
        True
    """
    p = np.asarray(p, dtype=np.float64)
    sin_t = np.sqrt(np.clip(1.0 - np.square(cos_t), 0.0, None))
    d = np.stack([sin_t * np.cos(phi), sin_t * np.sin(phi), cos_t])
    e = np.broadcast_to(np.sqrt(p**2 + np.asarray(m_daughter) ** 2), p.shape)
    m2 = m_daughter if m_other is None else m_other
    e2 = np.broadcast_to(np.sqrt(p**2 + np.asarray(m2) ** 2), p.shape)
    a = np.concatenate([p * d, e[None]])
    b = np.concatenate([-p * d, e2[None]])
    return a, b


def decay_in_helicity_frame(
    parent: Array,
    m_daughter: float | NDArray[np.float64],
    cos_t: ArrayLike,
    phi: ArrayLike,
    mass: ArrayLike | None = None,
    m_other: ArrayLike | None = None,
) -> tuple[Array, Array]:
    """Decay ``parent`` (lab four-momenta (4, n)) into two daughters of mass ``m_daughter``
    (the second ``m_other`` when given), with the first daughter's rest-frame direction
    (cos_t, phi) in the helicity frame.

    The helicity frame: z′ along the parent's lab momentum, y′ ∝ ẑ × z′ (normal to the
    beam–parent plane), x′ = y′ × z′ (x′ = x̂, y′ = ŷ for a parent along the beam): the
    rest-frame pair is turned by :func:`rotate_from_z` onto the parent direction and boosted
    (:func:`boost`).

    Arguments:
        parent: lab four-momenta (4, n), (px, py, pz, E); the mass is √(E² − p²).
        m_daughter: daughter mass (GeV).
        cos_t, phi: the first daughter's polar and azimuthal angle in the helicity frame.
        mass: the parent mass when known (default √(E² − p²), which loses digits for E ≫ m).
        m_other: the second daughter's mass (default ``m_daughter``).

    Returns:
        The two daughters' lab four-momenta, (4, n) each.

    References:
        PDG Review of Particle Physics, "Kinematics", Sec. 49.4.2 (two-body decays).

    Example:
        >>> par = np.array([[0.3], [0.0], [20.0], [np.sqrt(0.09 + 400 + 0.25)]])
        >>> a, b = decay_in_helicity_frame(par, 0.1, np.array([0.2]), np.array([1.0]))
        >>> bool(np.allclose(a + b, par) and np.isclose(float(invariant_mass(a)[0]), 0.1))
        True
    """
    mass = invariant_mass(parent) if mass is None else np.asarray(mass, dtype=np.float64)
    mass = np.broadcast_to(mass, np.shape(parent[0]))
    m2 = m_daughter if m_other is None else m_other
    p = two_body_momentum(mass, m_daughter, m2)
    a, b = back_to_back(p, m_daughter, np.asarray(cos_t), np.asarray(phi), m2)
    # the parent's direction from its components (cos and sin both exact to rounding)
    pt = np.hypot(parent[0], parent[1])
    pabs = np.hypot(pt, parent[2])
    safe = np.where(pabs > 0, pabs, 1.0)
    cos_p = np.where(pabs > 0, parent[2] / safe, 1.0)
    sin_p = pt / safe
    phi_p = np.arctan2(parent[1], parent[0])
    return (
        boost(rotate_from_z(a, cos_p, phi_p, sin_p), parent, mass),
        boost(rotate_from_z(b, cos_p, phi_p, sin_p), parent, mass),
    )
