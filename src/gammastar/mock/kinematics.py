"""Vectorised relativistic kinematics for the mock generator (numpy, float64).

Four-vectors are arrays of shape ``(4, n)`` ordered ``(px, py, pz, E)``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]


def two_body_momentum(m_parent: Array | float, m1: Array | float, m2: Array | float) -> Array:
    """Momentum of either daughter in the rest frame of a two-body decay (Källén function).

    Example:
        >>> float(two_body_momentum(1.0, 0.0, 0.0))
        0.5
    """
    m_parent = np.asarray(m_parent, dtype=np.float64)
    lam = (m_parent**2 - (m1 + m2) ** 2) * (m_parent**2 - (m1 - m2) ** 2)
    return np.sqrt(np.clip(lam, 0.0, None)) / (2.0 * m_parent)


def limit_rapidity(
    rng: np.random.Generator, y: Array, mass: Array, pt: Array, e_max: float | None,
    mean: float, sigma: float,
) -> Array:  # fmt: skip
    """Gaussian rapidities N(``mean``, ``sigma``) truncated at the kinematic limit
    ``m_T cosh y ≤ e_max`` (a hadron of a beam–nucleon collision cannot carry more than the
    beam energy; the Gaussian has unbounded tails): the few beyond it are redrawn, from a child
    stream of ``rng`` so that the main stream (and every other source of the sample) is the
    one the unbounded Gaussian gives. Clipping instead would pile mesons up at the beam
    energy. ``None``: no limit.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(1)
        >>> y = limit_rapidity(rng, np.array([3.0, 9.0]), np.full(2, 0.14), np.zeros(2), 400.0,
        ...                    3.37, 1.2)
        >>> bool(y[0] == 3.0 and 0.14 * np.cosh(y[1]) <= 400.0)
        True
    """
    if e_max is None:
        return y
    mt = np.sqrt(mass**2 + pt**2)
    y_max = np.arccosh(np.maximum(e_max / mt, 1.0))
    bad = np.flatnonzero(np.abs(y) > y_max)
    if bad.size == 0:
        return y
    seq = getattr(rng.bit_generator, "seed_seq", None)
    tail = np.random.default_rng(seq.spawn(1)[0] if seq is not None else 0)
    y = y.copy()
    while bad.size:
        y[bad] = tail.normal(mean, sigma, bad.size)
        bad = bad[np.abs(y[bad]) > np.broadcast_to(y_max, y.shape)[bad]]
    return y


def meson_four_momentum(mass: Array, pt: Array, y: Array, phi: Array) -> Array:
    """Lab four-momentum from mass, transverse momentum, rapidity and azimuth."""
    mt = np.sqrt(mass**2 + pt**2)
    ey = np.exp(y)
    half_mt_ey, half_mt_iey = 0.5 * mt * ey, 0.5 * mt / ey
    return np.stack(
        [pt * np.cos(phi), pt * np.sin(phi), half_mt_ey - half_mt_iey, half_mt_ey + half_mt_iey]
    )


def boost(p: Array, parent: Array) -> Array:
    """Boost ``p`` from the rest frame of ``parent`` (a lab four-momentum) to the lab.

    Example:
        >>> import numpy as np
        >>> rest = np.array([[0.0], [0.0], [0.0], [1.0]])
        >>> moving = np.array([[0.0], [0.0], [3.0], [5.0]])  # mass 4
        >>> boost(rest * 4.0, moving).ravel().tolist()
        [0.0, 0.0, 3.0, 5.0]
    """
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


def rotate_from_z(p: Array, cos_t: Array, phi: Array) -> Array:
    """Rotate vectors so that the z axis goes to the direction (cos_t, phi): Rz(φ)·Ry(θ)."""
    sin_t = np.sqrt(np.clip(1.0 - cos_t**2, 0.0, None))
    x = p[0] * cos_t + p[2] * sin_t
    z = -p[0] * sin_t + p[2] * cos_t
    c, s = np.cos(phi), np.sin(phi)
    out = np.empty_like(p)
    out[0] = x * c - p[1] * s
    out[1] = x * s + p[1] * c
    out[2] = z
    out[3] = p[3]
    return out


def back_to_back(p: Array, m_daughter: float, cos_t: Array, phi: Array) -> tuple[Array, Array]:
    """Two daughters of equal mass with momentum ``p`` along ±(cos_t, phi), at rest frame."""
    sin_t = np.sqrt(np.clip(1.0 - cos_t**2, 0.0, None))
    d = np.stack([sin_t * np.cos(phi), sin_t * np.sin(phi), cos_t])
    e = np.sqrt(p**2 + m_daughter**2)
    a = np.concatenate([p * d, e[None]])
    b = np.concatenate([-p * d, e[None]])
    return a, b


def invariant_mass(p: Array) -> Array:
    """√(E² − |p|²), 0 where negative by rounding."""
    return np.sqrt(np.clip(p[3] ** 2 - (p[:3] ** 2).sum(axis=0), 0.0, None))


def sample_mt_exponential(rng: np.random.Generator, mass: Array, temperature: float) -> Array:
    r"""Transverse momenta with :math:`\frac{1}{p_T}\frac{dN}{dp_T} \propto e^{-m_T/T}`.

    dN/dm_T ∝ m_T e^{−m_T/T} for m_T ≥ m, i.e. with u = m_T − m, dN/du ∝ (u + m) e^{−u/T}: a
    mixture of Γ(2, T) (weight T) and Exp(T) (weight m), sampled exactly.

    Example:
        >>> import numpy as np
        >>> pt = sample_mt_exponential(np.random.default_rng(1), np.full(200000, 0.78), 0.2)
        >>> 0.59 < float(pt.mean()) < 0.61  # analytic mean for m = 0.78, T = 0.2: 0.603 GeV
        True
    """
    mass = np.broadcast_to(np.asarray(mass, dtype=np.float64), np.shape(mass))
    n = mass.size
    use_gamma = rng.random(n) < temperature / (temperature + mass)
    # Γ(2, T) is the sum of two Exp(T)
    e = rng.standard_exponential((2, n))
    u = temperature * (e[0] + np.where(use_gamma, e[1], 0.0))
    return np.sqrt(u * (u + 2.0 * mass))


def sample_dalitz_cos(rng: np.random.Generator, a: Array) -> Array:
    r"""cos θ with density ∝ 1 + cos²θ + a sin²θ (a = 4m_ℓ²/m² ∈ [0, 1]), by exact inversion.

    The CDF is a cubic in cos θ; it is inverted with the hyperbolic solution of the depressed
    cubic t³ + pt + q = 0 (p > 0): t = −2√(p/3) sinh(⅓ arsinh(3q/(2p) √(3/p))).

    Example:
        >>> import numpy as np
        >>> c = sample_dalitz_cos(np.random.default_rng(2), np.zeros(400000))
        >>> round(float(np.mean(c**2)), 2)  # <c²> = 0.4 for 1 + c²
        0.4
    """
    a = np.clip(np.asarray(a, dtype=np.float64), 0.0, 1.0 - 1e-9)
    u = rng.random(a.shape)
    k = (2.0 * u - 1.0) * ((1.0 + a) + (1.0 - a) / 3.0)
    p = 3.0 * (1.0 + a) / (1.0 - a)
    q = -3.0 * k / (1.0 - a)
    t = -2.0 * np.sqrt(p / 3.0) * np.sinh(np.arcsinh(1.5 * q / p * np.sqrt(3.0 / p)) / 3.0)
    return np.clip(t, -1.0, 1.0)


def sample_polar_cos(rng: np.random.Generator, lam: float, n: int) -> Array:
    r"""cos θ with density ∝ 1 + λ cos²θ (λ ∈ [−1, 1]) by inverting the CDF,
    c + λc³/3 = (2u − 1)(1 + λ/3), by bisection (the CDF is monotonic; 52 halvings reach
    float precision). Draws ``n`` uniforms from ``rng``, as ``rng.uniform(-1, 1, n)`` does.

    Example:
        >>> import numpy as np
        >>> c = sample_polar_cos(np.random.default_rng(2), 1.0, 400000)
        >>> round(float(np.mean(c**2)), 2)  # <c²> = (1/3 + λ/5)/(1 + λ/3) = 0.4
        0.4
    """
    u = rng.random(n)
    k = (2.0 * u - 1.0) * (1.0 + lam / 3.0)
    lo, hi = -np.ones(n), np.ones(n)
    for _ in range(52):
        mid = 0.5 * (lo + hi)
        up = mid + lam * mid**3 / 3.0 < k
        lo = np.where(up, mid, lo)
        hi = np.where(up, hi, mid)
    return 0.5 * (lo + hi)


def decay_in_helicity_frame(
    parent: Array, p: Array, m_daughter: float, cos_t: Array, phi: Array
) -> tuple[Array, Array]:
    """Lab four-momenta of two equal-mass daughters emitted along ±(cos_t, phi) in the
    parent's helicity frame (z* = the parent's lab momentum direction, x* in the plane of z*
    and the beam, :func:`gammastar.polarisation.helicity_angles`' frame)."""
    a, b = back_to_back(p, m_daughter, cos_t, phi)
    pabs = np.sqrt((parent[:3] ** 2).sum(axis=0))
    ct = np.where(pabs > 0, parent[2] / np.where(pabs > 0, pabs, 1.0), 1.0)
    az = np.arctan2(parent[1], parent[0])
    return boost(rotate_from_z(a, ct, az), parent), boost(rotate_from_z(b, ct, az), parent)


class InverseCDF:
    """Sampler of a 1-D density tabulated on a grid (piecewise-linear CDF inversion).

    Example:
        >>> import numpy as np
        >>> s = InverseCDF(np.linspace(0, 1, 1001), lambda x: 2 * x)
        >>> round(float(s.sample(np.random.default_rng(3), 200000).mean()), 2)
        0.67
    """

    def __init__(self, grid: Array, density) -> None:
        grid = np.asarray(grid, dtype=np.float64)
        f = np.clip(np.asarray(density(grid), dtype=np.float64), 0.0, None)
        cdf = np.concatenate([[0.0], np.cumsum(0.5 * (f[1:] + f[:-1]) * np.diff(grid))])
        if not cdf[-1] > 0:
            raise ValueError("density integrates to zero on the grid")
        self.grid = grid
        self.density_values = f
        self.cdf = cdf / cdf[-1]
        self.norm = float(cdf[-1])

    def sample(self, rng: np.random.Generator, n: int) -> Array:
        """Draw ``n`` values."""
        return np.interp(rng.random(n), self.cdf, self.grid)
