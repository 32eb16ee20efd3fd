"""The detector geometry signal samples are propagated through: the decay volume, the
acceptance window and the downstream plane (:class:`Geometry`, the config's ``detector:``
section with its cells)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import ValidationError

from gammastar.config import DetectorConfig
from gammastar.errors import GammastarError

__all__ = ["Geometry"]



class Geometry(DetectorConfig):
    """Decay volume and detector acceptance (lengths in m, angles in rad).

    The fields, their defaults and their rules are those of the config's ``detector:`` section,
    :class:`gammastar.config.DetectorConfig` (one definition); a bad value is a
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
        """Build from a :class:`gammastar.config.DetectorConfig` (or any object with its fields)."""
        kw = {f: getattr(det, f) for f in DetectorConfig.model_fields if hasattr(det, f)}
        return cls(**kw)

    @property
    def cells(self) -> NDArray[np.float64]:
        """z edges of the decay-volume cells (last edge inf when open)."""
        if self.plane_z is None:
            return np.array([self.l1, np.inf if self.l2 is None else self.l2])
        return np.linspace(self.l1, float(self.l2), self.z_steps + 1)
