"""The detection planes and their beam holes.

:class:`Plane` and its shapes (``rectangle``, ``circle``, ``annulus``: the registry
:data:`gammastar.physics.volumes.PLANES`) take straight lines from the decay vertex to the
plane (:meth:`Plane.propagate`) and tell which crossings are in the sensitive area
(:meth:`Plane.hits`); a plane may have a beam hole from :data:`HOLES` (``circle`` or
``rectangle``, centred on the beam line x = y = 0 unless given a ``center``: the beam pipe goes
through the detector there, not necessarily at the plane's own centre). A plane is a point
test, so it needs no path-length intervals.

Reference:
    A. S. Glassner (ed.), *An Introduction to Ray Tracing* (Academic Press, 1989), ch. 2
    (ray–plane intersection).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.physics.volumes.checks import ShapeError, _number, _pair
from gammastar.physics.volumes.rays import Array, _points

__all__ = [
    "HOLES",
    "Annulus",
    "Circle",
    "CircleHole",
    "Plane",
    "Rectangle",
    "RectangleHole",
]


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
