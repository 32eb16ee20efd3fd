"""Decay volumes and detection planes as registries of shapes, and what the detector asks of
an event: the detector's description the config builds (``detector.volume``, ``plane``,
``daughters``).

This module offers the registries :data:`VOLUMES` and :data:`PLANES` (one entry per shape),
:func:`build` (a shape from its mapping ``{shape: name, field: value}``, checked) and
:func:`spec` (back), and :class:`Requirements` (which events are seen). The pieces, one
concern each:

* :mod:`~gammastar.physics.volumes.shapes`: the volume shapes (``slab``, ``cone``,
  ``cylinder``, ``box``, ``frustum``), their exact ray entry and exit, and the decay law
  through them (:func:`~gammastar.physics.volumes.shapes.decay_in_volume`,
  :func:`~gammastar.physics.volumes.shapes.sample_decay_points`);
* :mod:`~gammastar.physics.volumes.planes`: the detection planes (``rectangle``, ``circle``,
  ``annulus``) and their beam holes (:data:`~gammastar.physics.volumes.planes.HOLES`);
* :mod:`~gammastar.physics.volumes.rays`: rays and path-length intervals;
* :mod:`~gammastar.physics.volumes.checks`: the field checks and
  :class:`~gammastar.physics.volumes.checks.ShapeError`.

A long-lived particle produced at ``origin`` and flying along the unit vector ``direction``
crosses a decay volume on the path-length interval(s) [s_in, s_out] and decays inside with
the probability of the exponential law; its daughters fly in straight lines from the decay
vertex to a detection plane, where :class:`Requirements` decides whether the event is seen.

Coordinates: z along the beam from the production point (the target), x and y transverse, in
m; positions and directions are ``(3, n)`` arrays, four-momenta ``(4, n)`` ordered
``(px, py, pz, E)`` (the package's one layout, :mod:`gammastar.physics.kinematics`).

* :data:`VOLUMES`: ``slab`` (an open z range: no transverse bound), ``cone`` (a polar window
  θ_min ≤ θ < θ_max about the target between two z planes: a full cone for θ_min = 0, a
  conical shell otherwise), ``cylinder``, ``box``, ``frustum`` (a rectangular cross-section
  whose half-widths grow linearly along z: SHiP's decay vessel). Every shape but the slab
  takes a transverse ``offset`` (x0, y0) of its axis (the cone's apex stays at z = 0).
* :data:`PLANES`: ``rectangle``, ``circle`` and ``annulus`` at a z position, each with an
  ``offset`` and an optional beam hole (``circle`` or ``rectangle``, centred on the beam line
  x = y = 0 unless given a ``center``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.physics.volumes.checks import ShapeError, _number, _pair
from gammastar.physics.volumes.planes import (
    HOLES,
    Annulus,
    Circle,
    CircleHole,
    Plane,
    Rectangle,
    RectangleHole,
)
from gammastar.physics.volumes.rays import Array, _points
from gammastar.physics.volumes.shapes import Box, Cone, Cylinder, Frustum, Slab, Volume

__all__ = [
    "PLANES",
    "REQUIRE",
    "VOLUMES",
    "Requirements",
    "build",
    "spec",
]

REQUIRE = ("both", "either", "aprime")
"""What :class:`Requirements` asks of an event: both daughters seen, either, or the A′ line
itself at the plane (the daughters taken collinear with the A′)."""


VOLUMES: dict[str, type[Volume]] = {c.name: c for c in (Slab, Cone, Cylinder, Box, Frustum)}
"""The decay-volume shapes by name (``detector.volume.shape``)."""


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
        if plane is not None and vertex is not None:  # a plane has its vertices (accept)
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
            if plane is None or v is None:  # v: there with a plane (checked above)
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
            if plane is None or v is None:
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
        gammastar.physics.volumes.checks.ShapeError: half_x: must be positive (a size in m), not 0
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
