"""The detector geometry signal samples are propagated through: the decay volume, the
acceptance window and the downstream plane (:class:`Geometry`, the config's ``detector:``
section with its cells)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import ValidationError

from gammastar.config.detector import DetectorConfig
from gammastar.errors import GammastarError
from gammastar.physics import volumes
from gammastar.physics.volumes.planes import Annulus, Circle, Plane
from gammastar.physics.volumes.shapes import Cone, Slab, Volume

__all__ = ["Geometry", "Shapes"]


class Geometry(DetectorConfig):
    """Decay volume and detector acceptance (lengths in m, angles in rad).

    The fields, their defaults and their rules are those of the config's ``detector:`` section,
    :class:`gammastar.config.detector.DetectorConfig` (one definition); a bad value is a
    :class:`~gammastar.errors.GammastarError` naming the ``detector.`` key.

    Example:
        >>> Geometry(l1=5.0, l2=10.0, plane_z=20.0, z_steps=2).cells.tolist()
        [5.0, 7.5, 10.0]
    """

    def __init__(self, **fields: Any) -> None:
        try:
            super().__init__(**fields)
        except ValidationError as err:
            first = err.errors()[0]
            key = ".".join(str(p) for p in first["loc"])
            where = f"detector.{key}" if key else "detector"
            msg = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
            raise GammastarError(f"{where}: {msg}") from None

    @classmethod
    def from_config(cls, det: Any) -> Geometry:
        """Build from a :class:`gammastar.config.detector.DetectorConfig` (or any object with
        its fields)."""
        kw = {f: getattr(det, f) for f in DetectorConfig.model_fields if hasattr(det, f)}
        return cls(**kw)

    @property
    def cells(self) -> NDArray[np.float64]:
        """z edges of the decay-volume cells (last edge inf when open)."""
        if self.plane_z is None or self.l2 is None:  # a plane needs l2 (DetectorConfig)
            return np.array([self.l1, np.inf if self.l2 is None else self.l2])
        return np.linspace(self.l1, self.l2, self.z_steps + 1)

    # ------------------------------------------------------------------ shapes
    def volume_shape(self) -> Volume:
        """The decay volume as a shape of :data:`gammastar.physics.volumes.VOLUMES`:
        ``volume`` when given, else the window keys' (a ``cone`` θ_min ≤ θ < θ_max from
        ``l1`` to ``l2``, or with ``both_daughters`` or no window (θ from 0 to π/2 or more) a
        ``slab``; ``l2: null``: open).

        Example:
            >>> Geometry(l1=5.0, l2=10.0).volume_shape()
            Cone(theta_max=0.12, z1=5.0, z2=10.0, theta_min=0.035, offset=(0.0, 0.0))
        """
        if self.volume is not None:
            return volumes.build(volumes.VOLUMES, self.volume)
        z2 = np.inf if self.l2 is None else float(self.l2)
        if self.both_daughters or (self.theta_min == 0 and self.theta_max >= np.pi / 2):
            return Slab(z1=self.l1, z2=z2)
        return Cone(theta_min=self.theta_min, theta_max=self.theta_max, z1=self.l1, z2=z2)

    def plane_shape(self) -> Plane | None:
        """The detection plane as a shape of :data:`gammastar.physics.volumes.PLANES`: ``plane``
        when given, else the window keys' ``annulus`` (``r_min``, ``r_max``, z = ``plane_z``;
        no ``r_max``: no outer edge), or ``None`` without ``plane_z``.

        Example:
            >>> Geometry(l1=5.0, l2=10.0, plane_z=20.0, r_max=2.0).plane_shape()
            Annulus(r_min=0.0, r_max=2.0, z=20.0, offset=(0.0, 0.0), hole=None)
        """
        if self.plane is not None:
            return volumes.build(volumes.PLANES, self.plane)
        if self.plane_z is None:
            return None
        r_max = np.inf if self.r_max is None else float(self.r_max)
        return Annulus(r_min=self.r_min, r_max=r_max, z=self.plane_z)

    def requirements(self) -> volumes.Requirements:
        """What the detector asks of the daughters, with the ``efficiency``:
        ``daughters`` when given, else the window keys' (with ``both_daughters``: both,
        ``min_daughter_energy``, the polar window on their directions, none for θ from 0 to
        π; without: the A′ line).

        Example:
            >>> Geometry(both_daughters=True, min_daughter_energy=2.0).requirements().require
            'both'
        """
        if self.daughters is not None:
            return volumes.build(
                volumes.Requirements, {**self.daughters, "efficiency": self.efficiency}
            )
        if self.both_daughters:
            everywhere = self.theta_min == 0 and self.theta_max >= np.pi
            return volumes.Requirements(
                require="both",
                min_energy=self.min_daughter_energy,
                theta_window=None if everywhere else (self.theta_min, self.theta_max),
                efficiency=self.efficiency,
            )
        return volumes.Requirements(require="aprime", efficiency=self.efficiency)

    def shapes(self, *, semivisible: bool = False) -> Shapes:
        """The decay volume, the detection plane and the requirements together
        (:class:`Shapes`), what the acceptance and the events read for a geometry that is not
        a :attr:`window_geometry`.

        Arguments:
            semivisible: for ψ₂ → ψ₁ℓ⁻ℓ⁺ (the dark chains): the leptons are what the detector
                sees, so ``require: aprime`` (the A′ line) counts as both leptons seen.

        Example:
            >>> g = Geometry(volume={"shape": "box", "half_x": 1, "half_y": 1, "z1": 5, "z2": 10})
            >>> g.shapes().requirements.require, g.shapes(semivisible=True).requirements.require
            ('aprime', 'both')
        """
        req = self.requirements()
        if semivisible and req.require == "aprime":
            req = dataclasses.replace(req, require="both")
        return Shapes(self.volume_shape(), self.plane_shape(), req)

    @property
    def daughters_seen(self) -> bool:
        """Whether the detector looks at the daughters (``require`` both or either; with the
        window keys: ``both_daughters``), so that each decay channel needs its own daughters;
        otherwise the A′ line alone decides.

        Example:
            >>> Geometry().daughters_seen, Geometry(both_daughters=True).daughters_seen
            (False, True)
        """
        return self.requirements().require != "aprime"

    @property
    def window_geometry(self) -> bool:
        """Whether the window keys alone (``l1`` … ``r_max``) describe this geometry exactly:
        the shapes equal those the window keys make (an axially symmetric cone or slab, an
        on-axis annulus or disc without a beam hole, the window keys' daughters). The
        acceptance's hit terms read the window keys (:func:`gammastar.source.hits.
        detector_hits`), so a geometry for which this is False needs the shapes.

        Example:
            >>> Geometry(l1=5.0, l2=10.0).window_geometry
            True
            >>> Geometry(volume={"shape": "box", "half_x": 1, "half_y": 1, "z1": 5, "z2": 10}
            ...          ).window_geometry
            False
        """
        plain = Geometry(**{f: getattr(self, f) for f in _WINDOW_FIELDS})
        mine = self.plane_shape()
        theirs = plain.plane_shape()
        if isinstance(mine, Circle) and not isinstance(theirs, Circle):
            # a disc is the annulus with r_min = 0
            mine = Annulus(r_min=0.0, r_max=mine.radius, z=mine.z, offset=mine.offset,
                           hole=mine.hole)  # fmt: skip
        return (
            self.volume_shape() == plain.volume_shape()
            and mine == theirs
            and self.requirements() == plain.requirements()
        )


_WINDOW_FIELDS = tuple(
    f for f in DetectorConfig.model_fields if f not in ("volume", "plane", "daughters")
)


@dataclass(frozen=True)
class Shapes:
    """A geometry's shapes (:meth:`Geometry.shapes`): the decay volume, the detection plane
    (or ``None``) and what is asked of the daughters (:mod:`gammastar.physics.volumes`), with
    the verdict on decays at given vertices: one definition for the acceptance and the events.

    Example:
        >>> g = Geometry(volume={"shape": "box", "half_x": 1, "half_y": 1, "z1": 5, "z2": 10},
        ...              plane={"shape": "circle", "radius": 1, "z": 20})
        >>> a = np.array([[0.1], [0.0], [10.0], [10.01]])  # along x = 0.01 z
        >>> g.shapes().seen(a, None, np.array([[0.05], [0.0], [5.0]])).tolist()
        [True]
    """

    volume: Volume
    plane: Plane | None
    requirements: volumes.Requirements

    def seen(
        self,
        parent: ArrayLike,
        daughters: tuple[ArrayLike, ArrayLike] | None,
        vertex: ArrayLike | None = None,
    ) -> NDArray[np.bool_]:
        """Whether decays at ``vertex`` are detected: the daughters (or with ``require:
        aprime`` the parent's line) propagated to the plane and the requirements applied
        (:meth:`gammastar.physics.volumes.Requirements.accept`); without a plane the vertex
        does not matter (``None`` allowed). Whether the vertex is inside the volume is the
        caller's: this is the detector's verdict only, the efficiency not applied.

        Arguments:
            parent: the decaying particle's four-momenta (4, n), GeV.
            daughters: the two daughters' (4, n) each (``None`` with ``require: aprime``).
            vertex: decay vertices (3, n), m.

        Returns:
            Boolean (n,).
        """
        if self.plane is None:
            return self.requirements.accept(daughters, None, None, parent=parent)
        return self.requirements.accept(daughters, vertex, self.plane, parent=parent)

    def loose(
        self, parent: ArrayLike, daughters: tuple[ArrayLike, ArrayLike] | None
    ) -> NDArray[np.bool_]:
        """The part of :meth:`seen` that does not depend on the vertex (energies, polar
        window, both or either of them; no plane, no separation): a necessary condition for
        :meth:`seen` at any vertex, and equal to it without a plane."""
        req = dataclasses.replace(self.requirements, min_separation=0.0)
        return req.accept(daughters, None, None, parent=parent)
