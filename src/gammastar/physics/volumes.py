r"""Decay volumes and detection planes as registries of shapes, with exact ray entry and exit.

A long-lived particle produced at ``origin`` and flying along the unit vector ``direction``
crosses a decay volume on the path-length interval(s) [s_in, s_out]; with decay length
ℓ = (p/m) cτ it decays inside with probability

.. math:: P = \sum_k e^{-s_{\mathrm{in},k}/\ell} - e^{-s_{\mathrm{out},k}/\ell}

(:func:`decay_in_volume`, each term by :func:`gammastar.physics.decay.decay_probability`).
Its daughters fly in straight lines from the decay vertex to a detection plane
(:meth:`Plane.propagate`), where :class:`Requirements` decides whether the event is seen.

Coordinates: z along the beam from the production point (the target), x and y transverse, in
m; positions and directions are ``(3, n)`` arrays, four-momenta ``(4, n)`` ordered
``(px, py, pz, E)`` (the package's one layout, :mod:`gammastar.physics.kinematics`).

Registries (one entry per shape, built from a mapping ``{shape: name, field: value}`` by
:func:`build`, the config's ``detector.volume`` / ``detector.plane``):

* :data:`VOLUMES`: ``slab`` (an open z range: no transverse bound), ``cone`` (a polar window
  θ_min ≤ θ < θ_max about the target between two z planes: a full cone for θ_min = 0, a
  conical shell otherwise), ``cylinder``, ``box``, ``frustum`` (a rectangular cross-section
  whose half-widths grow linearly along z: SHiP's decay vessel). Every shape but the slab
  takes a transverse ``offset`` (x0, y0) of its axis (the cone's apex stays at z = 0).
* :data:`PLANES`: ``rectangle``, ``circle`` and ``annulus`` at a z position, each with an
  ``offset`` and an optional beam hole from :data:`HOLES` (``circle`` or ``rectangle``,
  centred on the beam line x = y = 0 unless given a ``center``: the beam pipe goes through
  the detector there, not necessarily at the plane's own centre).

Non-convex volumes: the conical shell (θ_min > 0) is computed as cone(θ_max) minus
cone(θ_min): a ray that crosses the inner cone leaves and re-enters the shell, so its
:meth:`Volume.entry_exit` has two intervals. Every volume returns ``(k, n)`` arrays,
k = :attr:`Volume.intervals` (2 for the shell, 1 for the convex shapes); an interval the ray
misses is NaN in both rows. Only the forward part of a ray counts (s ≥ 0): a ray that starts
inside has s_in = 0. The annulus is a plane (a point test), so it needs no intervals.

References:
    A. S. Glassner (ed.), *An Introduction to Ray Tracing* (Academic Press, 1989), ch. 2
    (ray–plane, ray–box slab method, ray–quadric intersections).
    SHiP Collaboration, "BDF/SHiP at the ECN3 high-intensity beam facility", CERN-SPSC-2023-033
    (the pyramidal-frustum decay vessel).
    PDG Review of Particle Physics, "Kinematics" §49.2 (the exponential decay law in the lab).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.errors import GammastarError
from gammastar.physics.decay import decay_probability, sample_decay_length

__all__ = [
    "HOLES",
    "PLANES",
    "REQUIRE",
    "VOLUMES",
    "Annulus",
    "Box",
    "Circle",
    "CircleHole",
    "Cone",
    "Cylinder",
    "Frustum",
    "Plane",
    "Rectangle",
    "RectangleHole",
    "Requirements",
    "ShapeError",
    "Slab",
    "Volume",
    "build",
    "decay_in_volume",
    "sample_decay_points",
    "spec",
]

Array = NDArray[np.float64]
Interval = tuple[Array, Array]
"""(lo, hi) of a set of path lengths per ray; NaN in both where the set is empty."""

REQUIRE = ("both", "either", "aprime")
"""What :class:`Requirements` asks of an event: both daughters seen, either, or the A′ line
itself at the plane (the daughters taken collinear with the A′)."""


class ShapeError(GammastarError, ValueError):
    """A bad shape field: ``key`` is the path of the field inside the shape's mapping
    (``("half_x",)``, ``("hole", "radius")``); the message is one line."""

    def __init__(self, key: tuple[str, ...], message: str) -> None:
        self.key = key
        self.message = message
        super().__init__(f"{'.'.join(key)}: {message}" if key else message)


# --------------------------------------------------------------------------- field checks
def _number(obj: Any, name: str, *, lower: str = "", allow_inf: bool = False) -> float:
    """The field ``name`` of ``obj`` as a float (stored back); ``lower``: "size" (positive, in
    m), "positive" or "nonneg"; ``allow_inf``: +∞ allowed (an open end)."""
    v = getattr(obj, name)
    if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating):
        raise ShapeError((name,), f"must be a number, not {v!r}")
    v = float(v)
    if math.isnan(v) or v == -math.inf or (v == math.inf and not allow_inf):
        raise ShapeError((name,), f"must be a finite number, not {v}")
    if lower in ("size", "positive") and not v > 0:
        what = " (a size in m)" if lower == "size" else ""
        raise ShapeError((name,), f"must be positive{what}, not {v:g}")
    if lower == "nonneg" and v < 0:
        raise ShapeError((name,), f"must not be negative, not {v:g}")
    object.__setattr__(obj, name, v)
    return v


def _pair(obj: Any, name: str) -> tuple[float, float]:
    """The field ``name`` of ``obj`` as a pair of finite floats (stored back as a tuple)."""
    v = getattr(obj, name)
    try:
        x, y = (float(c) for c in v)
    except (TypeError, ValueError):
        raise ShapeError((name,), f"must be a pair [x, y] of numbers (m), not {v!r}") from None
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ShapeError((name,), f"must be finite, not {v!r}")
    object.__setattr__(obj, name, (x, y))
    return x, y


def _z_range(obj: Any, *, open_end: bool) -> None:
    """Check ``z1`` ≥ 0 (downstream of the production point) and ``z2`` > ``z1``."""
    z1 = _number(obj, "z1", lower="nonneg")
    z2 = _number(obj, "z2", allow_inf=open_end)
    if not z2 > z1:
        raise ShapeError(("z2",), f"must be larger than z1 ({z1:g} m), not {z2:g}")


# --------------------------------------------------------------------------- intervals
_EMPTY = np.nan


def _rays(origin: ArrayLike, direction: ArrayLike) -> tuple[Array, Array]:
    o = np.asarray(origin, dtype=np.float64)
    d = np.asarray(direction, dtype=np.float64)
    o = o[:, None] if o.ndim == 1 else o
    d = d[:, None] if d.ndim == 1 else d
    if o.shape[0] != 3 or d.shape[0] != 3:
        raise ValueError(f"origin and direction must be (3, n) arrays, not {o.shape}, {d.shape}")
    o, d = np.broadcast_arrays(o, d)
    return o, d


def _points(points: ArrayLike) -> Array:
    p = np.asarray(points, dtype=np.float64)
    p = p[:, None] if p.ndim == 1 else p
    if p.shape[0] not in (2, 3):
        raise ValueError(f"points must be a (3, n) or (2, n) array, not {p.shape}")
    return p


def _linear(c0: Array, c1: Array) -> Interval:
    """{s : c0 + c1 s ≤ 0}: a half-line, the whole line or nothing."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r = -c0 / c1
    lo = np.where(c1 < 0, r, -np.inf)
    hi = np.where(c1 > 0, r, np.inf)
    flat = c1 == 0
    lo = np.where(flat, np.where(c0 <= 0, -np.inf, _EMPTY), lo)
    hi = np.where(flat, np.where(c0 <= 0, np.inf, _EMPTY), hi)
    return lo, hi


def _quadratic(a: Array, b: Array, c: Array) -> tuple[Interval, Interval]:
    """{s : a s² + b s + c ≤ 0} as two intervals: [r1, r2] (a > 0); (−∞, r1] and [r2, ∞)
    (a < 0, two real roots) or the whole line (a < 0, none); a half-line (a = 0). The roots by
    the cancellation-free form q = −(b + sgn(b)√D)/2, r = q/a and c/q."""
    disc = b * b - 4.0 * a * c
    sq = np.sqrt(np.clip(disc, 0.0, None))
    q = -0.5 * (b + np.copysign(sq, b))
    with np.errstate(divide="ignore", invalid="ignore"):
        r1 = np.where(q != 0, q / a, 0.0)
        r2 = np.where(q != 0, c / q, 0.0)
    rlo, rhi = np.minimum(r1, r2), np.maximum(r1, r2)
    lin_lo, lin_hi = _linear(c, b)
    up, down = a > 0, a < 0
    real = disc >= 0
    lo1 = np.where(up, np.where(real, rlo, _EMPTY), np.where(down, -np.inf, lin_lo))
    hi1 = np.where(up, np.where(real, rhi, _EMPTY), np.where(down, np.inf, lin_hi))
    split = down & (disc > 0)
    hi1 = np.where(split, rlo, hi1)
    lo2 = np.where(split, rhi, _EMPTY)
    hi2 = np.where(split, np.inf, _EMPTY)
    return (lo1, hi1), (lo2, hi2)


def _meet(*parts: Interval) -> Interval:
    """Intersection of intervals (NaN, the empty set, propagates)."""
    lo, hi = parts[0]
    for a, b in parts[1:]:
        lo, hi = np.maximum(lo, a), np.minimum(hi, b)
    return _clean(lo, hi)


def _clean(lo: Array, hi: Array) -> Interval:
    keep = lo <= hi
    return np.where(keep, lo, _EMPTY), np.where(keep, hi, _EMPTY)


def _hull(*parts: Interval) -> Interval:
    """Smallest interval holding the non-empty ones (their union where it is convex)."""
    lo = parts[0][0]
    hi = parts[0][1]
    for a, b in parts[1:]:
        lo, hi = np.fmin(lo, a), np.fmax(hi, b)
    return lo, hi


# --------------------------------------------------------------------------- volumes
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


VOLUMES: dict[str, type[Volume]] = {c.name: c for c in (Slab, Cone, Cylinder, Box, Frustum)}
"""The decay-volume shapes by name (``detector.volume.shape``)."""


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


# --------------------------------------------------------------------------- planes
@dataclass(frozen=True, kw_only=True)
class CircleHole:
    """A circular beam hole of ``radius`` about ``center`` (default the beam line x = y = 0).

    Example:
        >>> CircleHole(radius=0.1).covers(np.array([0.05, 0.2]), np.array([0.0, 0.0])).tolist()
        [True, False]
    """

    name: ClassVar[str] = "circle"
    radius: float
    center: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        _number(self, "radius", lower="size")
        _pair(self, "center")

    def covers(self, x: Array, y: Array) -> NDArray[np.bool_]:
        """Whether the hole covers the points (x, y) (a hit there is lost)."""
        return np.hypot(x - self.center[0], y - self.center[1]) < self.radius


@dataclass(frozen=True, kw_only=True)
class RectangleHole:
    """A rectangular beam hole |x − cx| < half_x, |y − cy| < half_y (default centre: the beam
    line).

    Example:
        >>> h = RectangleHole(half_x=0.1, half_y=0.05)
        >>> h.covers(np.array([0.05, 0.05]), np.array([0.0, 0.1])).tolist()
        [True, False]
    """

    name: ClassVar[str] = "rectangle"
    half_x: float
    half_y: float
    center: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        _number(self, "half_x", lower="size")
        _number(self, "half_y", lower="size")
        _pair(self, "center")

    def covers(self, x: Array, y: Array) -> NDArray[np.bool_]:
        """Whether the hole covers the points (x, y)."""
        return (np.abs(x - self.center[0]) < self.half_x) & (
            np.abs(y - self.center[1]) < self.half_y
        )


HOLES: dict[str, type[CircleHole | RectangleHole]] = {
    "circle": CircleHole,
    "rectangle": RectangleHole,
}
"""The beam-hole shapes by name (``detector.plane.hole.shape``)."""


class Plane:
    """A detection plane at ``z`` (m): :meth:`hits` (points on it inside the sensitive area,
    outside the beam hole) and :meth:`propagate` (straight lines to it). Subclasses are frozen
    dataclasses (fields ``z``, ``offset``, ``hole`` and their size)."""

    name: ClassVar[str]
    z: float
    offset: tuple[float, float]
    hole: CircleHole | RectangleHole | None

    def _check_common(self) -> None:
        _number(self, "z", lower="positive")
        _pair(self, "offset")
        if self.hole is not None and not isinstance(self.hole, CircleHole | RectangleHole):
            raise ShapeError(
                ("hole",), f"must be a beam hole ({', '.join(HOLES)}), not {self.hole!r}"
            )

    def _area(self, x: Array, y: Array) -> NDArray[np.bool_]:
        raise NotImplementedError

    def hits(self, points: ArrayLike) -> NDArray[np.bool_]:
        """Whether points on the plane (rows x, y of a (2, n) or (3, n) array, m) are in its
        sensitive area: inside the shape about ``offset`` and outside the hole (NaN: no).

        Example:
            >>> plane = Annulus(r_min=0.1, r_max=1.0, z=50)
            >>> plane.hits(np.array([[0.05, 0.5, 2.0], [0.0, 0.0, 0.0]])).tolist()
            [False, True, False]
        """
        p = _points(points)
        x, y = p[0], p[1]
        ok = self._area(x - self.offset[0], y - self.offset[1])
        if self.hole is not None:
            ok &= ~self.hole.covers(x, y)
        return ok

    def propagate(self, vertex: ArrayLike, p: ArrayLike) -> Array:
        """Where straight lines from ``vertex`` along the momenta ``p`` cross the plane.

        Arguments:
            vertex: start points (3, n), m.
            p: four-momenta (4, n) (or three-momenta (3, n)), GeV.

        Returns:
            (x, y) at the plane, (2, n), m; NaN for a particle going backwards or parallel
            to the plane (p_z ≤ 0) or starting downstream of it.

        Example:
            >>> Circle(radius=1, z=20).propagate(np.array([0.0, 0.0, 10.0]),
            ...                                  np.array([1.0, 0.0, 10.0, 11.0])).tolist()
            [[1.0], [0.0]]
        """
        v = _points(vertex)
        q = np.asarray(p, dtype=np.float64)
        q = q[:, None] if q.ndim == 1 else q
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (self.z - v[2]) / q[2]
        ok = (q[2] > 0) & (t >= 0)
        t = np.where(ok, t, np.nan)
        return np.stack([v[0] + t * q[0], v[1] + t * q[1]])


@dataclass(frozen=True, kw_only=True)
class Rectangle(Plane):
    """A rectangle |x − x0| ≤ half_x, |y − y0| ≤ half_y at ``z``.

    Example:
        >>> Rectangle(half_x=1, half_y=0.5, z=30, offset=(2, 0)).hits(
        ...     np.array([[2.5, 0.5], [0.4, 0.0]])).tolist()
        [True, False]
    """

    name: ClassVar[str] = "rectangle"
    half_x: float
    half_y: float
    z: float
    offset: tuple[float, float] = (0.0, 0.0)
    hole: CircleHole | RectangleHole | None = None

    def __post_init__(self) -> None:
        _number(self, "half_x", lower="size")
        _number(self, "half_y", lower="size")
        self._check_common()

    def _area(self, x: Array, y: Array) -> NDArray[np.bool_]:
        return (np.abs(x) <= self.half_x) & (np.abs(y) <= self.half_y)


@dataclass(frozen=True, kw_only=True)
class Circle(Plane):
    """A disc of ``radius`` about (x0, y0) at ``z``.

    Example:
        >>> Circle(radius=1, z=30, hole=CircleHole(radius=0.1)).hits(
        ...     np.array([[0.0, 0.5], [0.0, 0.0]])).tolist()
        [False, True]
    """

    name: ClassVar[str] = "circle"
    radius: float
    z: float
    offset: tuple[float, float] = (0.0, 0.0)
    hole: CircleHole | RectangleHole | None = None

    def __post_init__(self) -> None:
        _number(self, "radius", lower="size")
        self._check_common()

    def _area(self, x: Array, y: Array) -> NDArray[np.bool_]:
        return np.hypot(x, y) <= self.radius


@dataclass(frozen=True, kw_only=True)
class Annulus(Plane):
    """An annulus r_min ≤ r ≤ r_max about (x0, y0) at ``z`` (r_max = ∞: no outer edge).
    Today's plane: ``detector.plane_z``, ``r_min``, ``r_max``.

    Example:
        >>> Annulus(r_min=0.1, r_max=1, z=30).hits(np.array([[0.05, 0.5], [0.0, 0.0]])).tolist()
        [False, True]
    """

    name: ClassVar[str] = "annulus"
    r_min: float
    r_max: float = math.inf
    z: float
    offset: tuple[float, float] = (0.0, 0.0)
    hole: CircleHole | RectangleHole | None = None

    def __post_init__(self) -> None:
        lo = _number(self, "r_min", lower="nonneg")
        hi = _number(self, "r_max", lower="size", allow_inf=True)
        if not hi > lo:
            raise ShapeError(("r_max",), f"must be larger than r_min ({lo:g} m), not {hi:g}")
        self._check_common()

    def _area(self, x: Array, y: Array) -> NDArray[np.bool_]:
        r = np.hypot(x, y)
        return (r >= self.r_min) & (r <= self.r_max)


PLANES: dict[str, type[Plane]] = {c.name: c for c in (Rectangle, Circle, Annulus)}
"""The detection-plane shapes by name (``detector.plane.shape``)."""


# --------------------------------------------------------------------------- requirements
@dataclass(frozen=True, kw_only=True)
class Requirements:
    """What the detector asks of an event, and its constant efficiency.

    A daughter is seen when its energy is at least ``min_energy``, its direction is in the
    polar window ``theta_window`` (when given) and its line from the vertex hits the plane
    (when there is one); ``require`` = ``both`` or ``either`` daughter seen, and with
    ``min_separation`` > 0 the two daughters' crossings of the plane's z must be at least
    that far apart (a daughter that never reaches the plane's z fails it). ``aprime``: the A′
    line itself must hit the plane (daughters collinear with a boosted A′; the cuts on
    daughters do not apply). ``efficiency`` multiplies the acceptance (trigger,
    reconstruction, identification).

    Example:
        >>> r = Requirements(require="both", min_energy=1.0)
        >>> plane = Circle(radius=1, z=20)
        >>> vertex = np.array([[0.0], [0.0], [10.0]])
        >>> d1 = np.array([[0.5], [0.0], [10.0], [10.02]])
        >>> d2 = np.array([[-0.5], [0.0], [10.0], [10.02]])
        >>> r.accept((d1, d2), vertex, plane).tolist()
        [True]
        >>> r.accept((d1, d2 / 20), vertex, plane).tolist()  # a 0.5 GeV daughter: too soft
        [False]
    """

    require: str = "both"
    min_energy: float = 0.0
    min_separation: float = 0.0
    theta_window: tuple[float, float] | None = None
    efficiency: float = 1.0

    def __post_init__(self) -> None:
        if self.require not in REQUIRE:
            raise ShapeError(("require",), f"must be one of {list(REQUIRE)}, not {self.require!r}")
        _number(self, "min_energy", lower="nonneg")
        _number(self, "min_separation", lower="nonneg")
        eff = _number(self, "efficiency", lower="nonneg")
        if eff > 1:
            raise ShapeError(("efficiency",), f"must be in [0, 1], not {eff:g}")
        if self.theta_window is not None:
            lo, hi = _pair(self, "theta_window")
            if not 0 <= lo < hi:
                raise ShapeError(
                    ("theta_window",),
                    f"must be [θ_min, θ_max] with 0 ≤ θ_min < θ_max, not [{lo:g}, {hi:g}]",
                )
        if self.require == "aprime":
            for f in ("min_energy", "min_separation"):
                if getattr(self, f) > 0:
                    raise ShapeError((f,), "is a cut on the daughters; require both or either")
            if self.theta_window is not None:
                raise ShapeError(
                    ("theta_window",),
                    "is a cut on the daughters; the A′'s window is the cone volume",
                )

    def _seen(self, d: Array, vertex: Array | None, plane: Plane | None) -> NDArray[np.bool_]:
        ok = d[3] >= self.min_energy
        if self.theta_window is not None:
            th = np.arctan2(np.hypot(d[0], d[1]), d[2])
            ok &= (th >= self.theta_window[0]) & (th < self.theta_window[1])
        if plane is not None:
            ok &= plane.hits(plane.propagate(vertex, d))
        return ok

    def accept(
        self,
        daughters: tuple[ArrayLike, ArrayLike] | None,
        vertex: ArrayLike | None = None,
        plane: Plane | None = None,
        parent: ArrayLike | None = None,
    ) -> NDArray[np.bool_]:
        """Whether each event passes (the efficiency is not applied: it is a weight).

        Arguments:
            daughters: the two daughters' four-momenta, (4, n) each (``None`` with ``aprime``).
            vertex: decay vertices (3, n), m (needed with a plane).
            plane: the detection :class:`Plane`, or ``None``.
            parent: the A′ four-momenta (4, n) (needed with ``aprime``).

        Returns:
            Boolean (n,).
        """
        if plane is not None and vertex is None:
            raise ValueError("a plane needs the decay vertices")
        v = None if vertex is None else _points(vertex)
        if self.require == "aprime":
            if parent is None:
                raise ValueError("require='aprime' needs the parent four-momenta")
            par = np.asarray(parent, dtype=np.float64)
            par = par[:, None] if par.ndim == 1 else par
            if plane is None:
                return np.ones(par.shape[1], dtype=bool)
            return plane.hits(plane.propagate(v, par))
        if daughters is None:
            raise ValueError(f"require={self.require!r} needs the daughters' four-momenta")
        d1, d2 = (np.asarray(d, dtype=np.float64) for d in daughters)
        d1 = d1[:, None] if d1.ndim == 1 else d1
        d2 = d2[:, None] if d2.ndim == 1 else d2
        s1, s2 = self._seen(d1, v, plane), self._seen(d2, v, plane)
        ok = (s1 & s2) if self.require == "both" else (s1 | s2)
        if self.min_separation > 0:
            if plane is None:
                raise ValueError("min_separation needs a plane")
            a, b = plane.propagate(v, d1), plane.propagate(v, d2)
            ok &= np.hypot(a[0] - b[0], a[1] - b[1]) >= self.min_separation
        return ok


# --------------------------------------------------------------------------- building
def build(registry: Mapping[str, type] | type, mapping: Any) -> Any:
    """The shape a mapping ``{shape: name, field: value, ...}`` describes (a nested ``hole``
    mapping is built from :data:`HOLES`), checked.

    Arguments:
        registry: :data:`VOLUMES`, :data:`PLANES` or :data:`HOLES`; or one class (such as
            :class:`Requirements`), whose mapping has no ``shape``.
        mapping: the shape's name under ``shape`` and its fields.

    Returns:
        The frozen dataclass instance.

    Raises:
        ShapeError: not a mapping, unknown or missing shape, unknown or missing field, bad
            value; ``key`` names the field (``("hole", "radius")`` inside a hole).

    Example:
        >>> build(VOLUMES, {"shape": "box", "half_x": 1, "half_y": 2, "z1": 0, "z2": 5})
        Box(half_x=1.0, half_y=2.0, z1=0.0, z2=5.0, offset=(0.0, 0.0))
        >>> build(VOLUMES, {"shape": "box", "half_x": 0, "half_y": 2, "z1": 0, "z2": 5})
        Traceback (most recent call last):
        ...
        gammastar.physics.volumes.ShapeError: half_x: must be positive (a size in m), not 0
    """
    if isinstance(registry, type):
        cls, name = registry, registry.__name__
        if not isinstance(mapping, Mapping):
            raise ShapeError((), f"must be a mapping of the fields of {name}")
        data = dict(mapping)
    else:
        if not isinstance(mapping, Mapping):
            raise ShapeError((), f"must be a mapping with shape: one of {list(registry)}")
        data = dict(mapping)
        if "shape" not in data:
            raise ShapeError(("shape",), f"missing; one of {list(registry)}")
        name = data.pop("shape")
        if name not in registry:
            raise ShapeError(("shape",), f"unknown shape {name!r}; one of {list(registry)}")
        cls = registry[name]
    known = [f.name for f in fields(cls) if f.init]
    for key in data:
        if key not in known:
            raise ShapeError((str(key),), f"unknown key for {name} (its keys: {', '.join(known)})")
    for f in fields(cls):
        if f.init and f.default is MISSING and f.default_factory is MISSING and f.name not in data:
            raise ShapeError((f.name,), f"missing ({name} needs it)")
    if data.get("hole") is not None and not isinstance(data["hole"], CircleHole | RectangleHole):
        try:
            data["hole"] = build(HOLES, data["hole"])
        except ShapeError as err:
            raise ShapeError(("hole", *err.key), err.message) from None
    return cls(**data)


def spec(shape: Any) -> dict[str, Any]:
    """The mapping :func:`build` makes ``shape`` from (floats, pairs as lists, a hole nested;
    an open end, +∞ where that is the default, left out: the mapping is finite JSON).

    Example:
        >>> spec(Slab(z1=5))
        {'shape': 'slab', 'z1': 5.0}
        >>> build(VOLUMES, spec(Cone(theta_max=0.1, z1=5))) == Cone(theta_max=0.1, z1=5)
        True
    """
    out: dict[str, Any] = {"shape": shape.name} if hasattr(shape, "name") else {}
    for f in fields(shape):
        v = getattr(shape, f.name)
        if v == math.inf and f.default == math.inf:
            continue
        if isinstance(v, CircleHole | RectangleHole):
            v = spec(v)
        elif isinstance(v, tuple):
            v = list(v)
        out[f.name] = v
    return out
