r"""The decay-volume shapes and the decay law through them.

:class:`Volume` and its shapes (``slab``, ``cone``, ``cylinder``, ``box``, ``frustum``: the
registry :data:`gammastar.physics.volumes.VOLUMES`) give the exact path-length intervals of
rays through them (:meth:`Volume.entry_exit`), which points they contain and the azimuths
they span about the beam axis (:meth:`Volume.azimuth_window`); :func:`decay_in_volume` is the
probability of decaying inside,

.. math:: P = \sum_k e^{-s_{\mathrm{in},k}/\ell} - e^{-s_{\mathrm{out},k}/\ell},

and :func:`sample_decay_points` draws decay vertices inside with that weight.

Non-convex volumes: the conical shell (θ_min > 0) is computed as cone(θ_max) minus
cone(θ_min): a ray that crosses the inner cone leaves and re-enters the shell, so its
:meth:`Volume.entry_exit` has two intervals. Every volume returns ``(k, n)`` arrays,
k = :attr:`Volume.intervals` (2 for the shell, 1 for the convex shapes); an interval the ray
misses is NaN in both rows. Only the forward part of a ray counts (s ≥ 0): a ray that starts
inside has s_in = 0.

References:
    A. S. Glassner (ed.), *An Introduction to Ray Tracing* (Academic Press, 1989), ch. 2
    (ray–plane, ray–box slab method, ray–quadric intersections).
    SHiP Collaboration, "BDF/SHiP at the ECN3 high-intensity beam facility", CERN-SPSC-2023-033
    (the pyramidal-frustum decay vessel).
    PDG Review of Particle Physics, "Kinematics" §49.2 (the exponential decay law in the lab).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.physics.decay import decay_probability, sample_decay_length
from gammastar.physics.volumes.checks import ShapeError, _number, _pair, _z_range
from gammastar.physics.volumes.rays import (
    Array,
    Interval,
    _clean,
    _hull,
    _linear,
    _meet,
    _points,
    _quadratic,
    _rays,
)

__all__ = [
    "Box",
    "Cone",
    "Cylinder",
    "Frustum",
    "Slab",
    "Volume",
    "decay_in_volume",
    "sample_decay_points",
]


class Volume:
    """A decay volume: :meth:`entry_exit` (exact path lengths of rays through it) and
    :meth:`contains` (points inside). Subclasses are frozen dataclasses with the fields of
    their config mapping, checked when built (:class:`ShapeError` names the field)."""

    name: ClassVar[str]
    z1: float
    z2: float

    @property
    def intervals(self) -> int:
        """How many disjoint intervals a ray can have in the volume (1: convex)."""
        return 1

    @property
    def z_range(self) -> tuple[float, float]:
        """(z1, z2) in m: the volume lies between these planes (z2 may be ∞)."""
        return self.z1, self.z2

    def _z_interval(self, o: Array, d: Array) -> Interval:
        return _meet(_linear(self.z1 - o[2], -d[2]), _linear(o[2] - self.z2, d[2]))

    def _pieces(self, o: Array, d: Array) -> list[Interval]:
        raise NotImplementedError

    def entry_exit(self, origin: ArrayLike, direction: ArrayLike) -> tuple[Array, Array]:
        """Path lengths at which rays enter and leave the volume (exact intersections).

        Arguments:
            origin: start points, (3, n) (or (3,)), m.
            direction: unit directions, (3, n) (or (3,)); a non-unit vector scales the
                returned lengths by 1/|direction|.

        Returns:
            (s_in, s_out), each of shape (:attr:`intervals`, n), s_in < s_out, the intervals
            in order along the ray; NaN in both where the ray misses (that interval of) the
            volume, after those it crosses. Only s ≥ 0 counts: a ray that starts inside has
            s_in = 0.

        Example:
            >>> s_in, s_out = Box(half_x=1, half_y=1, z1=10, z2=20).entry_exit(
            ...     np.zeros(3), np.array([0.0, 0.0, 1.0]))
            >>> s_in.tolist(), s_out.tolist()
            ([[10.0]], [[20.0]])
        """
        o, d = _rays(origin, direction)
        out = []
        for lo, hi in self._pieces(o, d):
            lo = np.maximum(lo, 0.0)
            hit = lo < hi
            out.append((np.where(hit, lo, np.nan), np.where(hit, hi, np.nan)))
        s_in, s_out = np.stack([a for a, _ in out]), np.stack([b for _, b in out])
        if len(out) > 1:  # in order along the ray, the missed intervals (NaN) last
            order = np.argsort(s_in, axis=0)
            s_in = np.take_along_axis(s_in, order, axis=0)
            s_out = np.take_along_axis(s_out, order, axis=0)
        return s_in, s_out

    def contains(self, points: ArrayLike) -> NDArray[np.bool_]:
        """Whether the points (3, n), m, are inside the volume (n,) (NaN: outside).

        Example:
            >>> Cylinder(radius=1, z1=0, z2=5, offset=(2, 0)).contains(
            ...     np.array([[2.5, 0.0], [0.0, 0.0], [1.0, 1.0]])).tolist()
            [True, False]
        """
        p = _points(points)
        return (p[2] >= self.z1) & (p[2] <= self.z2) & self._across(p)

    def _across(self, p: Array) -> NDArray[np.bool_]:
        raise NotImplementedError

    def azimuth_window(self) -> tuple[float, float] | None:
        """The azimuths (φ0, φ1), φ0 < φ1 < φ0 + π (rad, φ = atan2(y, x)), that every point of
        the volume has as seen from the beam axis (x = y = 0), so that a ray from a point of the
        axis at an azimuth outside them misses the volume; ``None`` where the volume reaches
        the axis or its extent is not bounded (every azimuth). Exact for the box, the cylinder
        and the cone (its disc at z2 holds every cross-section); for the frustum those of the
        rectangle of its largest half-widths (a superset).

        Example:
            >>> lo, hi = Box(half_x=1, half_y=1, z1=10, z2=20, offset=(2, 0)).azimuth_window()
            >>> bool(np.isclose(hi, math.atan(1))), bool(np.isclose(lo, -hi))
            (True, True)
            >>> Box(half_x=1, half_y=1, z1=10, z2=20, offset=(0.5, 0)).azimuth_window() is None
            True
        """
        return None


def _rectangle_window(
    offset: tuple[float, float], half_x: float, half_y: float
) -> tuple[float, float] | None:
    """The azimuths spanned by the rectangle |x − x0| ≤ half_x, |y − y0| ≤ half_y about the
    origin: its corners' (convex, so they bound it), or ``None`` where it holds the origin."""
    x0, y0 = offset
    if abs(x0) <= half_x and abs(y0) <= half_y:
        return None
    centre = math.atan2(y0, x0)
    # the corners' azimuths about the centre's: a rectangle that misses the origin lies in a
    # half-plane through it (x, or y, of one sign), so they differ by less than π: no wrap
    rel = [
        math.remainder(math.atan2(y0 + sy * half_y, x0 + sx * half_x) - centre, 2 * math.pi)
        for sx in (-1, 1)
        for sy in (-1, 1)
    ]
    return centre + min(rel), centre + max(rel)


def _disc_window(offset: tuple[float, float], radius: float) -> tuple[float, float] | None:
    """The azimuths spanned by the disc of ``radius`` about ``offset`` (its tangents from the
    origin, ± asin(r/d)), or ``None`` where it holds the origin."""
    d = math.hypot(*offset)
    if not d > radius:
        return None
    centre, half = math.atan2(offset[1], offset[0]), math.asin(radius / d)
    return centre - half, centre + half


@dataclass(frozen=True, kw_only=True)
class Slab(Volume):
    """An open z range z1 ≤ z ≤ z2 with no transverse bound (z2 = ∞: no end); the decay volume
    of the old ``detector:`` keys with ``both_daughters`` (the polar window is then a cut on
    the daughters' directions, :class:`Requirements`).

    Example:
        >>> Slab(z1=5).entry_exit(np.zeros(3), np.array([0.6, 0.0, 0.8]))[0].tolist()
        [[6.25]]
    """

    name: ClassVar[str] = "slab"
    z1: float
    z2: float = math.inf

    def __post_init__(self) -> None:
        _z_range(self, open_end=True)

    def _pieces(self, o: Array, d: Array) -> list[Interval]:
        return [self._z_interval(o, d)]

    def _across(self, p: Array) -> NDArray[np.bool_]:
        return np.ones(p.shape[1], dtype=bool)


@dataclass(frozen=True, kw_only=True)
class Cone(Volume):
    """The polar window θ_min ≤ θ < θ_max about an apex at the target, (x0, y0, 0), between
    the planes z1 and z2: a full cone for θ_min = 0, a conical shell otherwise (two intervals
    per ray: cone(θ_max) minus cone(θ_min)). Today's decay volume: ``detector.l1``, ``l2``,
    ``theta_min``, ``theta_max``.

    Each cone is the quadric ρ² − z² tan²θ ≤ 0 (ρ the distance to the axis) cut to z ≥ z1 ≥ 0
    (its forward nappe); θ_max ≥ π/2 is no outer bound (every point downstream of the apex
    has θ < π/2).

    Example:
        >>> c = Cone(theta_min=0.02, theta_max=0.1, z1=10, z2=20)
        >>> d = np.array([np.sin(0.05), 0.0, np.cos(0.05)])
        >>> s_in, s_out = c.entry_exit(np.zeros(3), d)
        >>> bool(np.isclose(s_in[0, 0], 10 / np.cos(0.05))), bool(np.isnan(s_in[1, 0]))
        (True, True)
    """

    name: ClassVar[str] = "cone"
    theta_max: float
    z1: float
    z2: float = math.inf
    theta_min: float = 0.0
    offset: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        _z_range(self, open_end=True)
        tmin = _number(self, "theta_min", lower="nonneg")
        tmax = _number(self, "theta_max", lower="positive")
        if not tmin < math.pi / 2:
            raise ShapeError(("theta_min",), f"must be below π/2 (a forward cone), not {tmin:g}")
        if tmax > math.pi:
            raise ShapeError(("theta_max",), f"must be at most π, not {tmax:g}")
        if not tmax > tmin:
            raise ShapeError(
                ("theta_max",), f"must be larger than theta_min ({tmin:g} rad), not {tmax:g}"
            )
        _pair(self, "offset")

    @property
    def intervals(self) -> int:
        return 2 if self.theta_min > 0 else 1

    def _cone(self, o: Array, d: Array, theta: float, zr: Interval) -> Interval:
        t2 = math.tan(theta) ** 2
        x, y = o[0] - self.offset[0], o[1] - self.offset[1]
        a = d[0] ** 2 + d[1] ** 2 - t2 * d[2] ** 2
        b = 2.0 * (x * d[0] + y * d[1] - t2 * o[2] * d[2])
        c = x * x + y * y - t2 * o[2] ** 2
        one, two = _quadratic(a, b, c)
        # z ≥ z1 ≥ 0 keeps the forward nappe; what is left of the two pieces is convex
        return _hull(_meet(one, zr), _meet(two, zr))

    def _pieces(self, o: Array, d: Array) -> list[Interval]:
        zr = self._z_interval(o, d)
        lo, hi = zr if self.theta_max >= math.pi / 2 else self._cone(o, d, self.theta_max, zr)
        if self.theta_min == 0:
            return [(lo, hi)]
        ilo, ihi = self._cone(o, d, self.theta_min, zr)
        missed = ~(ilo < ihi)  # a point of the inner cone (its apex) takes nothing away
        first = _clean(lo, np.where(missed, hi, np.minimum(hi, ilo)))
        second = _clean(np.where(missed, np.nan, np.maximum(lo, ihi)), hi)
        return [first, second]

    def azimuth_window(self) -> tuple[float, float] | None:
        # the cone's cross-sections are discs about the offset growing with z: the last one
        # holds every other
        if self.theta_max >= math.pi / 2 or not math.isfinite(self.z2):
            return None
        return _disc_window(self.offset, self.z2 * math.tan(self.theta_max))

    def _across(self, p: Array) -> NDArray[np.bool_]:
        rho = np.hypot(p[0] - self.offset[0], p[1] - self.offset[1])
        inside = np.ones(p.shape[1], dtype=bool)
        if self.theta_max < math.pi / 2:
            inside &= rho < p[2] * math.tan(self.theta_max)
        if self.theta_min > 0:
            inside &= rho >= p[2] * math.tan(self.theta_min)
        return inside


@dataclass(frozen=True, kw_only=True)
class Cylinder(Volume):
    """A cylinder of ``radius`` about the axis (x0, y0) along z, between z1 and z2.

    Example:
        >>> s_in, s_out = Cylinder(radius=1, z1=0, z2=100).entry_exit(
        ...     np.array([-5.0, 0.0, 1.0]), np.array([1.0, 0.0, 0.0]))
        >>> s_in.tolist(), s_out.tolist()
        ([[4.0]], [[6.0]])
    """

    name: ClassVar[str] = "cylinder"
    radius: float
    z1: float
    z2: float
    offset: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        _number(self, "radius", lower="size")
        _z_range(self, open_end=True)
        _pair(self, "offset")

    def _pieces(self, o: Array, d: Array) -> list[Interval]:
        x, y = o[0] - self.offset[0], o[1] - self.offset[1]
        a = d[0] ** 2 + d[1] ** 2
        b = 2.0 * (x * d[0] + y * d[1])
        c = x * x + y * y - self.radius**2
        one, _ = _quadratic(a, b, c)  # a ≥ 0: one interval (or the line, a = 0)
        return [_meet(one, self._z_interval(o, d))]

    def _across(self, p: Array) -> NDArray[np.bool_]:
        return np.hypot(p[0] - self.offset[0], p[1] - self.offset[1]) <= self.radius

    def azimuth_window(self) -> tuple[float, float] | None:
        return _disc_window(self.offset, self.radius)


@dataclass(frozen=True, kw_only=True)
class Box(Volume):
    """A box |x − x0| ≤ half_x, |y − y0| ≤ half_y, z1 ≤ z ≤ z2 (the slab method).

    Example:
        >>> b = Box(half_x=1, half_y=2, z1=10, z2=20, offset=(3, 0))
        >>> s_in, s_out = b.entry_exit(np.array([3.0, 0.0, 15.0]), np.array([1.0, 0.0, 0.0]))
        >>> s_in.tolist(), s_out.tolist()  # starts inside, leaves through x = 4
        ([[0.0]], [[1.0]])
    """

    name: ClassVar[str] = "box"
    half_x: float
    half_y: float
    z1: float
    z2: float
    offset: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        _number(self, "half_x", lower="size")
        _number(self, "half_y", lower="size")
        _z_range(self, open_end=True)
        _pair(self, "offset")

    def _pieces(self, o: Array, d: Array) -> list[Interval]:
        x, y = o[0] - self.offset[0], o[1] - self.offset[1]
        return [
            _meet(
                self._z_interval(o, d),
                _linear(x - self.half_x, d[0]),
                _linear(-x - self.half_x, -d[0]),
                _linear(y - self.half_y, d[1]),
                _linear(-y - self.half_y, -d[1]),
            )
        ]

    def _across(self, p: Array) -> NDArray[np.bool_]:
        return (np.abs(p[0] - self.offset[0]) <= self.half_x) & (
            np.abs(p[1] - self.offset[1]) <= self.half_y
        )

    def azimuth_window(self) -> tuple[float, float] | None:
        return _rectangle_window(self.offset, self.half_x, self.half_y)


@dataclass(frozen=True, kw_only=True)
class Frustum(Volume):
    """A rectangular cross-section whose half-widths grow linearly from (half_x1, half_y1)
    at z1 to (half_x2, half_y2) at z2 about the axis (x0, y0): SHiP's decay vessel. Each side
    is a plane, |x − x0| ≤ h_x(z) = half_x1 + k_x (z − z1), linear in the path length, so the
    ray's interval is the intersection of six half-lines.

    Example:
        >>> f = Frustum(half_x1=1, half_y1=1, half_x2=3, half_y2=3, z1=0, z2=10)
        >>> s_in, s_out = f.entry_exit(np.array([0.0, 0.0, 0.0]), np.array([1.0, 0.0, 0.0]))
        >>> s_out.tolist()  # along x at z = 0, out through the side x = 1
        [[1.0]]
    """

    name: ClassVar[str] = "frustum"
    half_x1: float
    half_y1: float
    half_x2: float
    half_y2: float
    z1: float
    z2: float
    offset: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        for f in ("half_x1", "half_y1", "half_x2", "half_y2"):
            _number(self, f, lower="size")
        _z_range(self, open_end=False)
        _pair(self, "offset")

    def half_widths(self, z: ArrayLike) -> tuple[Array, Array]:
        """(h_x, h_y) at ``z`` (linear in z; m)."""
        f = (np.asarray(z, dtype=np.float64) - self.z1) / (self.z2 - self.z1)
        return (
            self.half_x1 + f * (self.half_x2 - self.half_x1),
            self.half_y1 + f * (self.half_y2 - self.half_y1),
        )

    def _pieces(self, o: Array, d: Array) -> list[Interval]:
        kx = (self.half_x2 - self.half_x1) / (self.z2 - self.z1)
        ky = (self.half_y2 - self.half_y1) / (self.z2 - self.z1)
        x, y = o[0] - self.offset[0], o[1] - self.offset[1]
        hx0 = self.half_x1 + kx * (o[2] - self.z1)  # h_x at the origin's z
        hy0 = self.half_y1 + ky * (o[2] - self.z1)
        return [
            _meet(
                self._z_interval(o, d),
                _linear(x - hx0, d[0] - kx * d[2]),
                _linear(-x - hx0, -d[0] - kx * d[2]),
                _linear(y - hy0, d[1] - ky * d[2]),
                _linear(-y - hy0, -d[1] - ky * d[2]),
            )
        ]

    def _across(self, p: Array) -> NDArray[np.bool_]:
        hx, hy = self.half_widths(p[2])
        return (np.abs(p[0] - self.offset[0]) <= hx) & (np.abs(p[1] - self.offset[1]) <= hy)

    def azimuth_window(self) -> tuple[float, float] | None:
        # the half-widths are linear in z: every cross-section lies in the rectangle of their
        # maxima (at the ends); conservative, as that rectangle may hold the axis
        return _rectangle_window(
            self.offset, max(self.half_x1, self.half_x2), max(self.half_y1, self.half_y2)
        )


def decay_in_volume(
    volume: Volume, origin: ArrayLike, direction: ArrayLike, ell: ArrayLike
) -> Array:
    r"""Probability that particles decay inside ``volume``: Σ over the ray's intervals of
    e^{−s_in/ℓ} − e^{−s_out/ℓ} (:func:`gammastar.physics.decay.decay_probability`).

    Arguments:
        volume: a :class:`Volume`.
        origin, direction: production points and unit flight directions, (3, n).
        ell: decay length (p/m) cτ along the flight, m: shape (n,), or (n, c) for c values
            of cτ at once.

    Returns:
        P, the shape of ``ell`` (0 where the ray misses).

    References:
        PDG Review "Kinematics" §49.2.

    Example:
        >>> p = decay_in_volume(Slab(z1=1, z2=2), np.zeros(3), np.array([0, 0, 1.0]), [1.0])
        >>> bool(np.isclose(p[0], np.exp(-1) - np.exp(-2)))
        True
    """
    s_in, s_out = volume.entry_exit(origin, direction)
    ell = np.asarray(ell, dtype=np.float64)
    extra = (1,) * (ell.ndim - 1)
    total = np.zeros(np.broadcast_shapes(s_in.shape[1:] + extra, ell.shape))
    for a, b in zip(s_in, s_out, strict=True):
        a, b = np.where(np.isnan(a), np.inf, a), np.where(np.isnan(b), np.inf, b)
        total += decay_probability(a.reshape(a.shape + extra), b.reshape(b.shape + extra), ell)
    return total


def sample_decay_points(
    volume: Volume,
    origin: ArrayLike,
    direction: ArrayLike,
    ell: ArrayLike,
    rng: np.random.Generator,
) -> tuple[Array, Array]:
    """Decay vertices drawn inside ``volume`` from the exponential law along each ray, with
    the probability of decaying there as the weight.

    An interval is chosen with probability ∝ its P, then the path length from the law
    truncated to it (:func:`gammastar.physics.decay.sample_decay_length`): the vertex has the
    distribution of a decay point given a decay in the volume, so the mean of
    weight × f(vertex) is E[f(vertex); decay in the volume].

    Arguments:
        volume: a :class:`Volume`.
        origin, direction: production points and unit flight directions, (3, n).
        ell: decay lengths (p/m) cτ, (n,), m.
        rng: the random generator.

    Returns:
        (vertices (3, n), weights P (n,)); vertices NaN where the ray misses.

    Example:
        >>> v, w = sample_decay_points(Slab(z1=1, z2=2), np.zeros(3), np.array([0, 0, 1.0]),
        ...                            np.array([1.0]), np.random.default_rng(1))
        >>> bool(1 <= v[2, 0] <= 2), bool(np.isclose(w[0], np.exp(-1) - np.exp(-2)))
        (True, True)
    """
    o, d = _rays(origin, direction)
    ell = np.broadcast_to(np.asarray(ell, dtype=np.float64), o.shape[1:])
    s_in, s_out = volume.entry_exit(o, d)
    lo = np.where(np.isnan(s_in), np.inf, s_in)
    hi = np.where(np.isnan(s_out), np.inf, s_out)
    p = decay_probability(lo, hi, ell[None, :])  # (k, n)
    weight = p.sum(axis=0)
    u = rng.random((2, weight.size))
    # interval k: the first whose cumulative share exceeds u
    share = np.cumsum(p, axis=0) / np.where(weight > 0, weight, 1.0)
    k = np.minimum(np.sum(share <= u[0], axis=0), p.shape[0] - 1)
    cols = np.arange(weight.size)
    a, b = lo[k, cols], hi[k, cols]
    length = sample_decay_length(np.where(np.isfinite(a), a, 0.0), b, ell, u[1])
    vertex = o + length * d
    vertex[:, ~(weight > 0)] = np.nan
    return vertex, weight
