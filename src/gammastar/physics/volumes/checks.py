"""The shapes' field checks: :class:`ShapeError` (a bad field, named by its path in the shape's
mapping) and the checks each shape's ``__post_init__`` runs on its fields (numbers, pairs, the
z range), storing the checked value back.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gammastar.errors import GammastarError

__all__ = ["ShapeError"]


class ShapeError(GammastarError, ValueError):
    """A bad shape field: ``key`` is the path of the field inside the shape's mapping
    (``("half_x",)``, ``("hole", "radius")``); the message is one line."""

    def __init__(self, key: tuple[str, ...], message: str) -> None:
        self.key = key
        self.message = message
        super().__init__(f"{'.'.join(key)}: {message}" if key else message)


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
