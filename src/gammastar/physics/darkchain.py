r"""Decay kinematics of inelastic dark sectors: A′ → ψ₁ψ₂, ψ₂ → ψ₁ℓ⁺ℓ⁻ and the whole chain.

Offers vectorised, seeded samplers (numpy ``default_rng``): :func:`two_body_decay` (isotropic
two-body decay of moving parents), :func:`sample_psi2_decay` (ψ₂ → ψ₁ℓ⁻ℓ⁺ in the ψ₂ rest
frame from the full matrix element of :mod:`gammastar.physics.darksector`),
and :func:`idm_chain`, the pure function the events machinery calls: A′ four-momenta and
production vertices in, the chain's particles and decay-in-volume weights out (the decay volume
a :class:`gammastar.physics.volumes.shapes.Slab`, the weight and vertex from
:func:`gammastar.physics.volumes.shapes.sample_decay_points`). Four-momenta are ``(4, n)`` arrays (px, py, pz, E) and vertices ``(3, n)`` (x, y, z), the
layout of :mod:`gammastar.physics.kinematics`, whose boost (rest frame → lab) and two-body
kinematics these use.

Sampling ψ₂ → ψ₁ℓℓ: s = m_ℓℓ² from the inverse of the tabulated cumulative dΓ/ds (4096 points
in φ, s = s_min + (s_max − s_min) sin²φ, linear interpolation), then t = m²(ψ₁ℓ⁻) given s by
accept–reject against the exact maximum of |M|², which is quadratic in t; the decay plane gets a
uniform random orientation (unpolarised ψ₂). Assumed: the A′ decays promptly (Γ ∝ α_D) and
isotropically in its rest frame (its polarisation is not in the data-driven kinematics).

References: PDG Kinematics review (Dalitz variables, Eq. 49.22–49.23; decay probability in a
volume, the exponential law); Izaguirre, Krnjaic, Schuster, Toro PRD 96 (2017) 055007.
"""

from __future__ import annotations

import functools
from typing import TypedDict

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.errors import GammastarError
from gammastar.physics.darksector import (
    FINAL_STATES,
    IDM,
    Psi2Decay,
    dalitz_limits,
    psi2_ctau,
    psi2_dgamma_ds,
    psi2_matrix_element2,
    psi2_width,
)
from gammastar.physics.kinematics import back_to_back, boost, invariant_mass, two_body_momentum
from gammastar.physics.volumes.shapes import Slab, sample_decay_points

__all__ = ["idm_chain", "sample_psi2_decay", "two_body_decay"]

_N_TABLE = 4096


def _p4(a: ArrayLike, what: str) -> NDArray[np.float64]:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != 4:
        raise GammastarError(f"{what}: four-momenta must have shape (4, N) (px, py, pz, E)")
    return a


def two_body_decay(
    parent: ArrayLike, m_a: float, m_b: float, seed: int | np.random.Generator | None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Isotropic two-body decay (in the parent rest frame) of moving parents.

    Arguments:
        parent: (4, N) parent four-momenta (lab), GeV.
        m_a, m_b: daughter masses, GeV.
        seed: seed or numpy Generator (draws cos θ*, then φ*).

    Returns:
        (p_a, p_b), each (4, N) in the lab.

    Raises:
        GammastarError: a parent lighter than m_a + m_b.

    Example:
        >>> par = np.array([[0.0], [0.0], [10.0], [np.sqrt(101.0)]])
        >>> a, b = two_body_decay(par, 0.3, 0.4, seed=1)
        >>> bool(np.allclose(a + b, par))
        True
    """
    p = _p4(parent, "two_body_decay")
    m = invariant_mass(p)
    if np.any(m < m_a + m_b):
        raise GammastarError(
            f"two_body_decay: parent mass {m.min():.6g} GeV below m_a + m_b = {m_a + m_b:.6g}"
        )
    rng = np.random.default_rng(seed)
    cos = rng.uniform(-1, 1, m.size)
    phi = rng.uniform(0, 2 * np.pi, m.size)
    a, b = back_to_back(two_body_momentum(m, m_a, m_b), m_a, cos, phi, m_b)
    return boost(a, p), boost(b, p)


def _scalar_model(model: IDM) -> tuple[float, float, float]:
    """``(m1, m2, m_aprime)`` of a model of scalar parameters (else a GammastarError)."""
    for k in ("m1", "delta", "m_aprime", "alpha_d"):
        if np.ndim(getattr(model, k)):
            raise GammastarError(
                f"{model.name}: sampling needs scalar parameters ({k} is an array)"
            )
    m1, m_aprime = (float(np.asarray(v, dtype=np.float64)) for v in (model.m1, model.m_aprime))
    return m1, float(model.m2), m_aprime


def sample_psi2_decay(
    model: IDM,
    n: int,
    *,
    final_state: str = "ee",
    seed: int | np.random.Generator | None,
) -> dict[str, NDArray[np.float64]]:
    """Sample ψ₂ → ψ₁ℓ⁻ℓ⁺ in the ψ₂ rest frame from the full matrix element.

    Arguments:
        model: :class:`~gammastar.physics.darksector.IDM` or ``I2DM`` with scalar parameters.
        n: number of decays.
        final_state: ``"ee"`` or ``"mumu"`` (hadrons need a hadronisation model: refused).
        seed: seed or numpy Generator.

    Returns:
        Dict of (4, n) arrays ``"psi1"``, ``"lminus"``, ``"lplus"`` (px, py, pz, E in GeV) and
        (n,) arrays ``"s"`` = m_ℓℓ², ``"t"`` = m²(ψ₁ℓ⁻).

    Raises:
        GammastarError: the channel is closed or not ``ee``/``mumu``.

    References:
        Module docstring; PDG Kinematics review Eq. 49.22.

    Example:
        >>> from gammastar.physics.darksector import IDM
        >>> d = sample_psi2_decay(IDM(m1=0.1, delta=0.5, m_aprime=0.3), 1000, seed=1)
        >>> bool(np.allclose((d["psi1"] + d["lminus"] + d["lplus"])[3], 0.15))
        True
    """
    from scipy.spatial.transform import Rotation

    if final_state not in ("ee", "mumu"):
        raise GammastarError(
            f"sample_psi2_decay: final state {final_state!r} not sampled (use 'ee' or 'mumu')"
        )
    m1, m2, ma = _scalar_model(model)
    rng = np.random.default_rng(seed)
    ml = FINAL_STATES[final_state]
    s_min, s_max = 4 * ml**2, (m2 - m1) ** 2
    if s_max <= s_min:
        raise GammastarError(
            f"{model.name}: psi2 -> psi1 {final_state} is closed (m2 - m1 = {m2 - m1:.4g} GeV)"
        )
    # s: inverse cumulative of dΓ/dφ on a grid (s = s_min + span sin²φ)
    phi = np.linspace(0, np.pi / 2, _N_TABLE)
    span = s_max - s_min
    s_grid = s_min + span * np.sin(phi) ** 2
    dens = psi2_dgamma_ds(s_grid, model, 1.0, final_state) * span * np.sin(2 * phi)
    cdf = np.concatenate([[0.0], np.cumsum((dens[1:] + dens[:-1]) / 2 * np.diff(phi))])
    cdf /= cdf[-1]
    s = s_min + span * np.sin(np.interp(rng.uniform(size=n), cdf, phi)) ** 2
    # t given s: accept–reject against the exact maximum of the quadratic |M|²(t)
    lo, hi = dalitz_limits(s, m2, m1, ml, ml)
    t = np.empty(n)
    todo = np.arange(n)
    decay = Psi2Decay(m1, m2, ma, ml)  # couplings 1: only the shape in t matters here
    while todo.size:
        a, b = lo[todo], hi[todo]
        me = functools.partial(psi2_matrix_element2, s[todo], decay=decay)  # |M|² at t = x
        f0, f1, fm = me(a), me(b), me((a + b) / 2)
        # quadratic through the three points: vertex where its derivative vanishes
        c2 = 2 * (f0 + f1 - 2 * fm) / np.where(b > a, (b - a) ** 2, 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            xv = (a + b) / 2 - (f1 - f0) / np.where(b > a, b - a, 1.0) / (2 * c2)
        inside = (c2 < 0) & (xv > a) & (xv < b)
        fmax = np.maximum(np.maximum(f0, f1), np.where(inside, me(np.clip(xv, a, b)), 0.0))
        cand = a + (b - a) * rng.uniform(size=todo.size)
        ok = rng.uniform(size=todo.size) * fmax <= me(cand)
        t[todo[ok]] = cand[ok]
        todo = todo[~ok]
    u = m1**2 + m2**2 + 2 * ml**2 - s - t
    e1 = (m2**2 + m1**2 - s) / (2 * m2)
    e_minus = (m2**2 + ml**2 - u) / (2 * m2)
    e_plus = (m2**2 + ml**2 - t) / (2 * m2)
    p1 = np.sqrt(np.clip(e1**2 - m1**2, 0, None))
    pm = np.sqrt(np.clip(e_minus**2 - ml**2, 0, None))
    pp = np.sqrt(np.clip(e_plus**2 - ml**2, 0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = np.clip((pp**2 - p1**2 - pm**2) / (2 * p1 * pm), -1, 1)
    cos = np.where((p1 > 0) & (pm > 0), cos, 1.0)
    sin = np.sqrt(1 - cos**2)
    zero = np.zeros(n)
    v1 = np.stack([zero, zero, p1])
    vm = np.stack([pm * sin, zero, pm * cos])
    vp = -(v1 + vm)
    rot = Rotation.random(n, random_state=rng).as_matrix()  # (n, 3, 3)
    v1, vm, vp = (np.einsum("nij,jn->in", rot, v) for v in (v1, vm, vp))
    return {
        "psi1": np.concatenate([v1, e1[None]]),
        "lminus": np.concatenate([vm, e_minus[None]]),
        "lplus": np.concatenate([vp, e_plus[None]]),
        "s": s,
        "t": t,
    }


class IdmChain(TypedDict):
    """What :func:`idm_chain` returns: four-momenta (4, N), the ψ₂ vertices (3, N), the
    weights (N,) and two scalars."""

    psi1: NDArray[np.float64]
    psi2: NDArray[np.float64]
    psi2_vertex: NDArray[np.float64]
    psi1_decay: NDArray[np.float64]
    lminus: NDArray[np.float64]
    lplus: NDArray[np.float64]
    weight: NDArray[np.float64]
    ctau_psi2: np.float64
    br_psi2: np.float64


def idm_chain(
    aprime: ArrayLike,
    vertices: ArrayLike,
    model: IDM,
    eps: float,
    *,
    z_range: tuple[float, float],
    final_state: str = "ee",
    seed: int | np.random.Generator | None,
) -> IdmChain:
    """The chain A′ → ψ₁ψ₂, ψ₂ → ψ₁ℓ⁻ℓ⁺ for given A′ (what the events machinery calls).

    Arguments:
        aprime: (4, N) A′ lab four-momenta (mass m_A′ of ``model``), GeV.
        vertices: (3, N) A′ production vertices (the A′ decays promptly there), m.
        model: :class:`~gammastar.physics.darksector.IDM` (or ``I2DM``: its ψ₁ψ₂ channel) with
            scalar parameters.
        eps: kinetic mixing ε (sets cτ(ψ₂); the ψ₂ branching fraction into ``final_state`` is
            ``br_psi2`` in the result).
        z_range: (z₁, z₂) of the decay volume along the beam, m.
        final_state: ``"ee"`` or ``"mumu"``.
        seed: seed or numpy Generator (one stream for the whole chain).

    Returns:
        Dict: ``"psi1"``, ``"psi2"`` (from the A′), ``"psi1_decay"``, ``"lminus"``, ``"lplus"``
        (4, N) lab four-momenta; ``"psi2_vertex"`` (3, N) (NaN where the ψ₂ cannot decay in
        the volume); ``"weight"`` (N,) the probability that the ψ₂ decays in the volume; and
        the scalars ``"ctau_psi2"`` (m) and ``"br_psi2"`` (Γ(ψ₂ → ψ₁ℓℓ)/Γ_tot).

    References:
        Module docstring; Izaguirre et al. PRD 96 (2017) 055007.

    Example:
        >>> from gammastar.physics.darksector import IDM
        >>> a = np.array([[0.0, 0.0, 20.0, np.hypot(20.0, 0.3)]] * 4).T
        >>> out = idm_chain(a, np.zeros((3, 4)), IDM(m1=0.1, delta=0.4, m_aprime=0.3), 1e-3,
        ...                 z_range=(1.0, 10.0), seed=1)
        >>> bool(np.allclose(out["psi1"] + out["psi1_decay"] + out["lminus"] + out["lplus"], a))
        True
    """

    m1, m2, m_aprime = _scalar_model(model)
    a = _p4(aprime, "idm_chain")
    m_a = invariant_mass(a)
    if not np.allclose(m_a, m_aprime, rtol=1e-6, atol=1e-9):
        raise GammastarError(
            f"idm_chain: A' four-momenta have masses {m_a.min():.6g}..{m_a.max():.6g} GeV, "
            f"the model's m_aprime is {m_aprime:.6g} GeV"
        )
    rng = np.random.default_rng(seed)
    psi1, psi2 = two_body_decay(a, m1, m2, rng)
    ctau = float(psi2_ctau(model, eps))
    v = np.asarray(vertices, dtype=np.float64)
    if v.shape != (3, psi2.shape[1]):
        raise GammastarError("idm_chain: vertices must have shape (3, N) matching the A′s")
    pabs = np.linalg.norm(psi2[:3], axis=0)
    direction = psi2[:3] / np.where(pabs > 0, pabs, 1.0)
    vtx, w = sample_decay_points(
        Slab(z1=z_range[0], z2=z_range[1]), v, direction, pabs / m2 * ctau, rng
    )
    dec = sample_psi2_decay(model, a.shape[1], final_state=final_state, seed=rng)
    br = float(psi2_width(model, eps, final_state) / psi2_width(model, eps, "total"))
    return {
        "psi1": psi1,
        "psi2": psi2,
        "psi2_vertex": vtx,
        "psi1_decay": boost(dec["psi1"], psi2),
        "lminus": boost(dec["lminus"], psi2),
        "lplus": boost(dec["lplus"], psi2),
        "weight": w,
        "ctau_psi2": np.float64(ctau),
        "br_psi2": np.float64(br),
    }
