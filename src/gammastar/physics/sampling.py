"""Samplers of spectra and decay angles (numpy, float64): the one home of the thermal model.

Offers :func:`sample_mt_exponential` (m_T-exponential p_T), :func:`sample_mt_power` (its
m_T^a-weighted family, the Boltzmann form at a = 1), :func:`limit_rapidity` (Gaussian
rapidity truncated at the kinematic limit), :func:`sample_pt_y` (the two together: a meson's
lab p_T and rapidity), :func:`sample_cos_theta` (the one decay-angle
sampler, W ∝ a + b cos²θ, exact inversion) and its case :func:`sample_dalitz_cos`,
:class:`InverseCDF`, the :class:`Sampler` protocol of every kinematics sampler (flows included)
and :class:`ParametricSampler` (m_T spectrum × Gaussian rapidity at a mass).
The four-vector operations (boost, rotation, two-body decay; arrays ``(4, n)`` ordered
``(px, py, pz, E)``) are :mod:`gammastar.physics.kinematics`'.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Protocol

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.errors import InputError

__all__ = [
    "InverseCDF",
    "ParametricSampler",
    "Sampler",
    "SamplerLike",
    "Tilt",
    "limit_rapidity",
    "log_mt_density",
    "sample_cos_theta",
    "sample_dalitz_cos",
    "sample_mt_exponential",
    "sample_mt_power",
    "sample_pt_y",
]

Array = NDArray[np.float64]


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


def falloff_weight(energy: Array, beam_energy: float, n: float | Array) -> Array:
    """(1 − E/E_beam)^n (n one number or one per energy), 0 at and above the beam energy: the
    fall-off of meson production towards x_F → 1 (the lab energy fraction standing for x_F;
    docs/explanation/physics.md §3.4).

    Example:
        >>> float(falloff_weight(np.array([100.0]), 400.0, 2.0)[0])
        0.5625
    """
    x = np.minimum(np.asarray(energy, dtype=np.float64) / beam_energy, 1.0)
    return np.where(x < 1.0, (1.0 - x) ** n, 0.0)


class Tilt(NamedTuple):
    """A proposal tilted towards the tails a beam dump's short lifetimes see, for
    importance-weighted draws (:meth:`ParametricSampler.sample_tilted`): a third of the draws
    from the density itself, a third from its copy with the rapidity's mean shifted forward by
    ``y_shift`` σ_y (the fast A′ of an on-axis detector), a third from its copy with the m_T
    slope T scaled by ``t_scale`` (the fast, wide-angle A′ of an off-axis one). A defensive
    mixture: each weight p/q ≤ 3, so no part of the phase space is sampled worse than by a
    third as many plain draws."""

    y_shift: float = 2.5
    t_scale: float = 3.0
    extra: tuple[tuple[float, float, float], ...] = ()
    """Further components, each (rapidity shift in σ_y, rapidity width in σ_y, T scale): one
    fitted to where a detector's ε_high edge takes its A′ (:meth:`ParametricSampler.fit_part`).
    With k of them each weight is ≤ 3 + k."""

    def parts(self) -> tuple[tuple[float, float, float], ...]:
        """The mixture's (rapidity shift in σ_y, rapidity width in σ_y, T scale) per
        component, equal shares."""
        own = ((0.0, 1.0, 1.0), (self.y_shift, 1.0, 1.0), (0.0, 1.0, self.t_scale))
        return own + tuple((float(a), float(b), float(c)) for a, b, c in self.extra)


def log_mt_density(pt: Array, mass: ArrayLike, temperature: float, power: float = 0.0) -> Array:
    """ln of the normalised p_T density of :func:`sample_mt_power`,
    dN/dp_T = p_T m_T^a e^{−m_T/T} / (T^{a+2} Γ(a + 2, m/T)) (Γ(s, x) the upper incomplete
    gamma function: ∫ from m_T = m of m_T^{a+1} e^{−m_T/T} dm_T).

    Example:
        >>> from scipy.integrate import quad
        >>> f = lambda p: float(np.exp(log_mt_density(np.array([p]), 0.5, 0.2, 1.0))[0])
        >>> round(quad(f, 0.0, 20.0)[0], 9)
        1.0
    """
    from scipy.special import gammaincc, gammaln

    s = 2.0 + power
    m = np.asarray(mass, dtype=np.float64)
    mt = np.sqrt(np.asarray(pt, dtype=np.float64) ** 2 + m**2)
    with np.errstate(divide="ignore"):
        log_norm = s * math.log(temperature) + gammaln(s) + np.log(gammaincc(s, m / temperature))
        return np.log(pt) + power * np.log(mt) - mt / temperature - log_norm


def sample_pt_y(
    rng: np.random.Generator, mass: Array, temperature: float, power: float,
    y_mean: float, y_sigma: float, e_max: float | None, falloff: float = 0.0,
) -> tuple[Array, Array]:  # fmt: skip
    """A meson's lab (p_T, y): p_T from :func:`sample_mt_power`, then a Gaussian rapidity
    N(``y_mean``, ``y_sigma``) truncated at the kinematic limit ``e_max``
    (:func:`limit_rapidity`), in that order on ``rng`` (the mock cocktail's parametric spectra,
    docs/explanation/physics.md §3.1); with ``falloff`` n > 0 (and ``e_max``) the density
    × (1 − E/e_max)^n by accept–reject (:func:`falloff_weight`), the rejected (p_T, y) drawn
    again from a child stream of ``rng`` (the main stream stays the one without it).

    Example:
        >>> import numpy as np
        >>> pt, y = sample_pt_y(np.random.default_rng(1), np.full(3, 0.78), 0.2, 0.0, 3.0, 1.0,
        ...                     400.0)
        >>> pt.shape, y.shape
        ((3,), (3,))
    """
    mass = np.asarray(mass, dtype=np.float64)
    pt = sample_mt_power(rng, mass, temperature, power)
    y = rng.normal(y_mean, y_sigma, mass.size)
    y = limit_rapidity(rng, y, mass, pt, e_max, y_mean, y_sigma)
    if not falloff or e_max is None:
        return pt, y
    seq = getattr(rng.bit_generator, "seed_seq", None)
    tail = np.random.default_rng(seq.spawn(1)[0] if seq is not None else 1)
    pt, y = pt.copy(), y.copy()
    todo = np.arange(mass.size)
    for _ in range(10_000):
        e = np.sqrt(mass[todo] ** 2 + pt[todo] ** 2) * np.cosh(y[todo])
        todo = todo[tail.random(todo.size) >= falloff_weight(e, e_max, falloff)]
        if todo.size == 0:
            return pt, y
        pt[todo] = sample_mt_power(tail, mass[todo], temperature, power)
        y[todo] = limit_rapidity(tail, tail.normal(y_mean, y_sigma, todo.size), mass[todo],
                                 pt[todo], e_max, y_mean, y_sigma)  # fmt: skip
    raise InputError(f"the meson spectra have (almost) nothing below E = {e_max:g} GeV "
                     f"with the fall-off n = {falloff:g}")  # fmt: skip


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
    r = rng.random(n)
    return _mt_exponential_pt(r, rng.standard_exponential((2, n)), mass, temperature)


def _mt_exponential_pt(r: Array, e: Array, mass: float | Array, temperature: float) -> Array:
    """:func:`sample_mt_exponential`'s p_T from its random numbers, which do not depend on the
    mass: uniforms ``r`` choosing Γ(2, T) over Exp(T) (probability T/(T + m)) and standard
    exponentials ``e`` (2, n) (Γ(2, T) is the sum of two Exp(T))."""
    use_gamma = r < temperature / (temperature + mass)
    u = temperature * (e[0] + np.where(use_gamma, e[1], 0.0))
    return np.sqrt(u * (u + 2.0 * mass))


def sample_mt_power(
    rng: np.random.Generator, mass: Array, temperature: float, power: float = 0.0
) -> Array:
    r"""Transverse momenta with :math:`\frac{1}{p_T}\frac{dN}{dp_T} \propto m_T^a e^{-m_T/T}`.

    The family around the m_T-exponential (a = 0, :func:`sample_mt_exponential`, whose random
    stream it keeps there) that holds the Boltzmann form at fixed rapidity (a = 1; Schnedermann,
    Sollfrank, Heinz, Phys. Rev. C 48 (1993) 2462) and softer (a < 0) or harder (a > 0) shapes.
    dN/dm_T ∝ m_T^{1+a} e^{−m_T/T} for m_T ≥ m is a Gamma(2 + a, T) truncated below at m,
    sampled exactly by inverting its regularised upper incomplete gamma function.

    Arguments:
        rng: random generator.
        mass: the particles' masses (GeV).
        temperature: T (GeV).
        power: a (> −2).

    Returns:
        p_T (GeV), the shape of ``mass``.

    Example:
        >>> import numpy as np
        >>> pt = sample_mt_power(np.random.default_rng(1), np.full(200000, 0.78), 0.2, 1.0)
        >>> 0.675 < float(pt.mean()) < 0.690  # m_T e^(-m_T/T), m = 0.78, T = 0.2: 0.6825 GeV
        True
    """
    if power == 0.0:
        return sample_mt_exponential(rng, mass, temperature)
    _check_power(power)
    mass = np.broadcast_to(np.asarray(mass, dtype=np.float64), np.shape(mass))
    return _mt_power_pt(rng.random(mass.shape), mass, temperature, power)


def _check_power(power: float) -> None:
    if not power > -2.0:
        raise ValueError(f"sample_mt_power: power must be > -2, got {power}")


def _mt_power_pt(r: Array, mass: float | Array, temperature: float, power: float) -> Array:
    """:func:`sample_mt_power`'s p_T (a ≠ 0) from its uniforms ``r``, which do not depend on
    the mass."""
    from scipy.special import gammaincc, gammainccinv

    shape = 2.0 + power
    q_min = gammaincc(shape, mass / temperature)  # P(m_T > m) of the untruncated Gamma
    mt = temperature * gammainccinv(shape, q_min * (1.0 - r))
    mt = np.maximum(mt, mass)
    return np.sqrt((mt - mass) * (mt + mass))


def sample_cos_theta(
    rng: np.random.Generator, a: ArrayLike, b: ArrayLike, n: int | None = None
) -> Array:
    r"""cos θ with density ∝ a + b cos²θ on [−1, 1] (a ≥ 0, a + b ≥ 0), by exact inversion.

    The one sampler of the decay-angle family 1 + λ cos²θ (a = 1, b = λ), of
    1 + cos²θ + r sin²θ (a = 1 + r, b = 1 − r; :func:`sample_dalitz_cos`) and of a vector's
    decay W ∝ a + b cos²θ for any spin density. One uniform u per value (``rng.random``), mapped
    by the inverse CDF: a c + b c³/3 = (2u − 1)(a + b/3), a cubic in c that is monotonic on
    [−1, 1]. With t³ + pt + q = 0, p = 3a/b, q = −3(2u − 1)(a + b/3)/b, its root in [−1, 1] is

    * b > 0 (p ≥ 0, one real root): t = −2√(p/3) sinh(⅓ arsinh(y)), y = 3q/(2p) √(3/p);
      for |y| > 4 (a ≪ b, a = 0 included) Cardano's t = w − p/(3w),
      w³ = −q/2 − sgn(q) √(q²/4 + p³/27);
    * b < 0 (p ≤ −3, three real roots; the middle one): t = −2√(−p/3) sin(⅓ arcsin(y)),
      y = 3q/(2p) √(−3/p);
    * b = 0: c = 2u − 1.

    Each form is used where it is free of cancellation (no π/3 offsets, no differences of
    nearly equal terms), so c solves its cubic to a few ulp for any a, b, |b| ≪ a included.

    Arguments:
        rng: random generator.
        a, b: the coefficients (scalars or arrays broadcast to ``n``).
        n: number of values (default: the broadcast shape of ``a`` and ``b``).

    Returns:
        cos θ, shape (n,) or the broadcast shape of ``a`` and ``b``.

    References:
        The trigonometric and hyperbolic solutions of the depressed cubic: W. H. Press et al.,
        Numerical Recipes, 3rd ed., §5.6; R. W. D. Nickalls, Math. Gazette 77 (1993) 354.

    Example:
        >>> import numpy as np
        >>> c = sample_cos_theta(np.random.default_rng(2), 1.0, 1.0, 400000)
        >>> round(float(np.mean(c**2)), 2)  # <c²> = (1/3 + λ/5)/(1 + λ/3) = 0.4 at λ = 1
        0.4
        >>> c = sample_cos_theta(np.random.default_rng(2), 1.0, -1.0, 400000)  # sin²θ
        >>> round(float(np.mean(c**2)), 2)  # (1/3 − 1/5)/(1 − 1/3) = 0.2
        0.2
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    shape = np.broadcast_shapes(a.shape, b.shape) if n is None else (int(n),)
    a, b = np.broadcast_to(a, shape), np.broadcast_to(b, shape)
    u = rng.random(shape)
    k = (2.0 * u - 1.0) * (a + b / 3.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        p = 3.0 * a / b
        q = -3.0 * k / b
        y = 1.5 * q / p * np.sqrt(np.abs(3.0 / p))
        # b > 0, |y| ≤ 4: the hyperbolic form; a ≪ b (|y| > 4, p → 0, a = 0 included): the
        # Cardano root w − p/(3w), w³ = −q/2 − sgn(q) √(q²/4 + p³/27), cancellation-free there
        t_pos = -2.0 * np.sqrt(p / 3.0) * np.sinh(np.arcsinh(y) / 3.0)
        w = np.cbrt(-0.5 * q - np.copysign(np.sqrt(0.25 * q * q + p**3 / 27.0), q))
        t_small = np.where(w != 0.0, w - p / (3.0 * w), 0.0)
        t_pos = np.where(np.abs(y) <= 4.0, t_pos, t_small)
        t_neg = -2.0 * np.sqrt(-p / 3.0) * np.sin(np.arcsin(np.clip(y, -1.0, 1.0)) / 3.0)
    flat = k / np.where(a > 0.0, a, 1.0)
    t = np.where(b > 0.0, t_pos, np.where(b < 0.0, t_neg, flat))
    return np.clip(t, -1.0, 1.0)


def sample_dalitz_cos(rng: np.random.Generator, a: Array) -> Array:
    r"""cos θ with density ∝ 1 + cos²θ + a sin²θ (a = 4m_ℓ²/m² ∈ [0, 1]): the decay angle of
    a transversely polarised vector to a fermion pair, :func:`sample_cos_theta` with
    coefficients (1 + a, 1 − a).

    References:
        Landsberg, Phys. Rep. 128 (1985) 301 (the lepton-pair decay of a virtual photon).

    Example:
        >>> import numpy as np
        >>> c = sample_dalitz_cos(np.random.default_rng(2), np.zeros(400000))
        >>> round(float(np.mean(c**2)), 2)  # <c²> = 0.4 for 1 + c²
        0.4
    """
    a = np.clip(np.asarray(a, dtype=np.float64), 0.0, 1.0 - 1e-9)
    return sample_cos_theta(rng, 1.0 + a, 1.0 - a)


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


class Sampler(Protocol):
    """Anything with ``sample(mass, n, seed=None)`` returning a mapping with ``qT`` and ``E``."""

    def sample(self, mass: float, n: int, seed: int | None = None) -> Mapping[str, Any]: ...


SamplerLike = Sampler | Callable[[float, int, int | None], Mapping[str, Any]]


class ParametricSampler:
    """A simple analytic A′ kinematics sampler, for tests, benchmarks and flow-less configs.

    m_T-exponential transverse momentum, 1/p_T dN/dp_T ∝ exp(−m_T/T), and a Gaussian lab
    rapidity (docs/explanation/physics.md §3.2 defaults: T = 0.2 GeV, y = 3.37 ± 1.2 for 400 GeV protons);
    with ``power`` a, 1/p_T dN/dp_T ∝ m_T^a exp(−m_T/T).
    p_T is drawn by :func:`gammastar.physics.sampling.sample_mt_power`, the mock
    generator's meson spectrum (exact for every mass; at a = 0
    :func:`~gammastar.physics.sampling.sample_mt_exponential`'s stream). ``sample(mass, n, seed)`` returns
    ``{"qT", "E"}``; ``seed`` (an int, or None for fresh entropy) seeds a
    ``numpy.random.default_rng`` used for this call only, so equal seeds give equal samples.

    Example:
        >>> s = ParametricSampler().sample(0.5, 1000, seed=1)
        >>> bool(np.all(s["E"] > 0.5))
        True
    """

    def __init__(
        self,
        temperature: float = 0.2,
        y_mean: float = 3.37,
        y_sigma: float = 1.2,
        mass_range: tuple[float, float] = (0.0, 10.0),
        power: float = 0.0,
        e_max: float | None = None,
        falloff: tuple[float, float] | None = None,
    ) -> None:
        self.temperature = temperature
        self.y_mean = y_mean
        self.y_sigma = y_sigma
        self.mass_range = mass_range
        self.power = float(power)
        self.e_max = None if e_max is None else float(e_max)
        """Largest lab energy (GeV), e.g. the beam's: a γ* of a proton–nucleon collision
        carries at most the beam energy (energy conservation), which the unbounded model
        does not know; draws above it are rejected (the model truncated there). ``None``: no
        bound."""
        self.falloff = None if falloff is None or not falloff[0] else (float(falloff[0]), float(falloff[1]))
        """``(n, E_beam)``: the density × (1 − E/E_beam)^n (:func:`falloff_weight`), by
        accept–reject on uniforms of their own (the fitted model's fall-off,
        :attr:`~gammastar.yields.extrapolation.result.Extrapolation.falloff`); ``None``: none."""

    def sample(self, mass: float, n: int, seed: int | None = None) -> dict[str, NDArray]:
        # 1/p_T dN/dp_T ∝ exp(−m_T/T) means dN/dm_T ∝ m_T exp(−m_T/T) for m_T ≥ m: with
        # u = m_T − m, dN/du ∝ (u + m) e^{−u/T}, a mixture of Γ(2, T) (weight T) and Exp(T)
        # (weight m), not Γ(2, T) alone (that holds only for m = 0).
        out = self.sample_at(self.draws(n, seed), mass)
        if self.falloff is None and (self.e_max is None or np.all(out["E"] <= self.e_max)):
            return out
        return self._below_e_max(out, mass, n, seed)

    def _below_e_max(self, out: dict[str, NDArray], mass: float, n: int,
                     seed: int | None) -> dict[str, NDArray]:  # fmt: skip
        """``n`` draws with E ≤ :attr:`e_max` (and kept by :attr:`falloff`'s accept–reject,
        its uniforms from a stream of their own): those of ``out`` kept, then more from seeds
        spawned from ``seed``, in batches of max(2 × missing, 1000)."""
        ss = np.random.SeedSequence(seed)
        children = ss.spawn(1000)
        accept = np.random.default_rng(ss.spawn(1)[0])

        def kept(got: dict[str, NDArray]) -> NDArray[np.bool_]:
            return self._kept(got["E"], accept)

        keep = kept(out)
        parts, have = [{k: v[keep] for k, v in out.items()}], int(keep.sum())
        for child in children:
            if have >= n:
                break
            k = max(2 * (n - have), 1000)
            more = self.sample_at(self.draws(k, int(child.generate_state(1)[0])), mass)
            keep = kept(more)
            parts.append({k: v[keep] for k, v in more.items()})
            have += int(keep.sum())
        if have < n:
            bound = self.e_max if self.e_max is not None else float("nan")
            raise InputError(f"the model has (almost) no γ* below E = {bound:g} GeV at "
                             f"m = {mass:g} GeV")  # fmt: skip
        return {k: np.concatenate([p[k] for p in parts])[:n] for k in out}

    def sample_tilted(self, mass: float, n: int, seed: int | None = None,
                      tilt: Tilt | None = None) -> dict[str, NDArray]:  # fmt: skip
        """``n`` importance-weighted draws ``{"qT", "E", "weight"}`` of the same density as
        :meth:`sample` (its :attr:`e_max` and :attr:`falloff` included) from the mixture q of
        :class:`Tilt`'s components (its defaults without ``tilt``); ``weight`` = f p/q, p/q of
        the untruncated densities (:func:`log_mt_density`, the Gaussian) and f the fall-off
        factor (:func:`falloff_weight`; 1 without one), at most the number of components. The
        bound acts on every component alike (accept–reject on the mixture); the fall-off rides
        on the weight rather than rejecting, so that the draws towards E_max, which it would
        thin by (1 − E/E_max)^n, are all kept. The weights are right up to one constant, to be
        used self-normalised (Σ w a / Σ w).

        References:
            Defensive mixture importance sampling: T. Hesterberg, Technometrics 37 (1995) 185.

        Example:
            >>> s = ParametricSampler(e_max=400.0)
            >>> d = s.sample_tilted(0.3, 200_000, seed=1)
            >>> m = float(np.sum(d["weight"] * d["E"]) / np.sum(d["weight"]))
            >>> p = s.sample(0.3, 200_000, seed=2)["E"]
            >>> bool(abs(m / p.mean() - 1) < 0.03 and d["weight"].max() <= 3)
            True
        """
        from scipy.stats import norm

        _check_power(self.power)
        parts = (Tilt() if tilt is None else tilt).parts()
        t0, mu0, sig = self.temperature, self.y_mean, self.y_sigma
        rng = np.random.default_rng(seed)
        got: list[tuple[Array, Array, Array]] = []
        have = 0
        for _ in range(1000):
            if have >= n:
                break
            k = max(2 * (n - have), 1000)
            part = rng.integers(0, len(parts), k)
            pt, y = np.empty(k), np.empty(k)
            for j, (dy, sy, ts) in enumerate(parts):
                sel = part == j
                pt[sel] = sample_mt_power(rng, np.full(int(sel.sum()), float(mass)), t0 * ts, self.power)
                y[sel] = rng.normal(mu0 + dy * sig, sy * sig, int(sel.sum()))
            e = np.sqrt(pt**2 + mass**2) * np.cosh(y)
            f = np.ones(e.size) if self.falloff is None else falloff_weight(e, self.falloff[1], self.falloff[0])
            keep = f > 0  # the fall-off's support: below its beam energy
            if self.e_max is not None:
                keep &= e <= self.e_max
            pt, y, e, f = pt[keep], y[keep], e[keep], f[keep]
            lp = norm.logpdf(y, mu0, sig) + log_mt_density(pt, mass, t0, self.power)
            ratio = sum(np.exp(norm.logpdf(y, mu0 + dy * sig, sy * sig)
                               + log_mt_density(pt, mass, t0 * ts, self.power) - lp)
                        for dy, sy, ts in parts) / len(parts)  # fmt: skip
            got.append((pt, e, f / ratio))
            have += int(pt.size)
        if have < n:
            bound = self.e_max if self.e_max is not None else float("nan")
            raise InputError(f"the model has (almost) no γ* below E = {bound:g} GeV at "
                             f"m = {mass:g} GeV")  # fmt: skip
        pt, e, w = (np.concatenate(c)[:n] for c in zip(*got, strict=True))
        return {"qT": pt, "E": e, "weight": w}

    def fit_part(self, mass: float, qt: ArrayLike, energy: ArrayLike,
                 weight: ArrayLike) -> tuple[float, float, float]:  # fmt: skip
        """A :class:`Tilt` component (rapidity shift and width in σ_y, T scale) fitted to the
        draws ``(qt, energy)`` weighted by ``weight`` (their share of what is to be sampled,
        e.g. importance weight × acceptance at a detector's ε_high edge): the cross-entropy
        step, the Gaussian's weighted mean and width (at least 0.3 σ_y) and the m_T slope's
        weighted maximum likelihood (:func:`log_mt_density`), T from T/2 to 50 T. The
        rapidity is the forward one, arccosh(E/m_T).

        References:
            R. Y. Rubinstein and D. P. Kroese, The Cross-Entropy Method (Springer, 2004), ch. 3.

        Example:
            >>> s = ParametricSampler(e_max=400.0)
            >>> d = s.sample(0.3, 100_000, seed=1)
            >>> dy, sy, ts = s.fit_part(0.3, d["qT"], d["E"], np.ones(100_000))
            >>> abs(dy) < 0.05 and abs(sy - 1) < 0.05 and abs(ts - 1) < 0.05
            True
        """
        from scipy.optimize import minimize_scalar

        qt, e = np.asarray(qt, dtype=np.float64), np.asarray(energy, dtype=np.float64)
        w = np.asarray(weight, dtype=np.float64)
        keep = w > 0
        qt, e, w = qt[keep], e[keep], w[keep] / w[keep].sum()
        y = np.arccosh(np.maximum(e / np.sqrt(qt**2 + mass**2), 1.0))
        mean = float(np.sum(w * y))
        width = max(float(np.sqrt(np.sum(w * (y - mean) ** 2))), 0.3 * self.y_sigma)
        t0 = self.temperature

        def nll(log_t: float) -> float:
            return -float(np.sum(w * log_mt_density(qt, mass, t0 * math.exp(log_t), self.power)))

        ts = math.exp(minimize_scalar(nll, bounds=(math.log(0.5), math.log(50.0)), method="bounded").x)
        return (mean - self.y_mean) / self.y_sigma, width / self.y_sigma, ts

    def _kept(self, energy: NDArray, accept: np.random.Generator) -> NDArray[np.bool_]:
        """Which draws of energy ``energy`` the density keeps: E ≤ :attr:`e_max`, and
        :attr:`falloff`'s accept–reject on uniforms of ``accept`` (drawn only with a fall-off)."""
        keep = np.ones(energy.size, dtype=bool) if self.e_max is None else energy <= self.e_max
        if self.falloff is not None:
            keep &= accept.random(energy.size) < falloff_weight(energy, self.falloff[1], self.falloff[0])
        return keep

    def draws(self, n: int, seed: int | None = None) -> dict[str, NDArray]:
        """The random numbers of ``sample(mass, n, seed)``, none of which depends on the mass:
        :func:`sample_mt_power`'s (its uniforms ``r``, and at a = 0 the standard exponentials
        ``e`` of :func:`sample_mt_exponential`) and the rapidities ``y``, drawn in that order
        from ``default_rng(seed)``. :meth:`sample_at` makes the sample at any mass from them:
        samples at several masses with common random numbers, drawn once.

        Example:
            >>> s = ParametricSampler()
            >>> a, b = s.sample_at(s.draws(5, seed=1), 0.5), s.sample(0.5, 5, seed=1)
            >>> bool(np.array_equal(a["E"], b["E"]))
            True
        """
        rng = np.random.default_rng(seed)
        out = {"r": rng.random(n)}
        if self.power == 0.0:
            out["e"] = rng.standard_exponential((2, n))
        out["y"] = rng.normal(self.y_mean, self.y_sigma, n)
        return out

    def sample_at(self, draws: Mapping[str, NDArray], mass: float,
                  index: NDArray | None = None) -> dict[str, NDArray]:  # fmt: skip
        """``{"qT", "E"}`` at ``mass`` from :meth:`draws`' numbers: ``sample(mass, n, seed)``
        number for number (the same arithmetic on each draw), of the draws at ``index`` only
        when given."""
        if index is None:
            r, y = draws["r"], draws["y"]
        else:
            r, y = draws["r"][index], draws["y"][index]
        mass = float(mass)
        if self.power == 0.0:
            e = draws["e"] if index is None else draws["e"][:, index]
            pt = _mt_exponential_pt(r, e, mass, self.temperature)
        else:
            _check_power(self.power)
            pt = _mt_power_pt(r, mass, self.temperature, self.power)
        mt = np.sqrt(pt**2 + mass**2)
        return {"qT": pt, "E": mt * np.cosh(y)}
