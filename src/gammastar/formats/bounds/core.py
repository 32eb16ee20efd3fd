"""The published bound in the (m_A′, ε) plane that every format's reader returns
(:class:`Bound`), its shapes, and the shared steps: the leading ``# key: value`` comments
(``label``, ``reference``, ``shape``, ``units``) and the ε² → ε conversion."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from gammastar.errors import InputError

Shape = Literal["contour", "curve", "above", "band"]
SHAPES: tuple[str, ...] = ("contour", "curve", "above", "band")
Units = Literal["eps", "eps2"]
UNITS: tuple[str, ...] = ("eps", "eps2")
"""The coupling a file holds: ε, or its square ε² (read as ε: the square root)."""

META_KEYS = ("label", "reference", "shape", "units")


@dataclass(frozen=True)
class Bound:
    """One published bound in the (m_A′, ε) plane.

    Arguments:
        label: the legend entry.
        reference: the publication or HEPData record it comes from ("" when the file gives none).
        mass: the masses in GeV, in drawing order.
        eps: the ε values (``shape`` contour or curve), or the lower ε edge (band).
        eps_high: the upper ε edge of a band (``None`` otherwise).
        shape: ``contour`` (a closed island), ``curve`` (an open line), ``above`` (an upper
            limit: the region above the curve is excluded) or ``band``.
        source: the file.
        eps_from: the column ε was read from, and how it was converted.
        mass_from: the mass column, and how it was read (bins at their centres).
    """

    label: str
    reference: str
    mass: NDArray[np.float64]
    eps: NDArray[np.float64]
    eps_high: NDArray[np.float64] | None
    shape: Shape
    source: Path
    eps_from: str
    mass_from: str = ""

    def polygon(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """The (m, ε) vertices to draw: a band's lower edge then its upper edge reversed."""
        if self.eps_high is None:
            return self.mass, self.eps
        return (
            np.concatenate([self.mass, self.mass[::-1]]),
            np.concatenate([self.eps, self.eps_high[::-1]]),
        )

    @property
    def closed(self) -> bool:
        """Whether the polygon is a closed region (contour or band), not a line."""
        return self.shape not in ("curve", "above")


def comments(text: str, path: Path) -> dict[str, str]:
    """The ``# key: value`` lines before the first non-comment line (keys: ``label``,
    ``reference``, ``shape``, ``units``); an indented comment line (``#   more``) continues the
    value of the key above it. Other comment lines (a column header) are skipped."""
    meta: dict[str, str] = {}
    last = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("#"):
            break
        body = stripped[1:]
        if last is not None and body.startswith("  ") and body.strip():
            meta[last] += " " + body.strip()
            continue
        key, sep, value = body.partition(":")
        key = key.strip().lower()
        last = None
        if sep and key in META_KEYS:
            meta[key] = (meta[key] + " " if key in meta else "") + value.strip()
            last = key
    shape = meta.get("shape")
    if shape is not None and shape not in SHAPES:
        raise InputError(f"{path}: '# shape: {shape}': one of {', '.join(SHAPES)}")
    units = meta.get("units")
    if units is not None and units not in UNITS:
        raise InputError(f"{path}: '# units: {units}': eps or eps2")
    return meta


def to_eps(values: NDArray[np.float64], units: str) -> NDArray[np.float64]:
    """ε from a column in ``units`` (``eps``: as it is; ``eps2``: the square root).

    Example:
        >>> to_eps(np.array([1e-10, 4e-12]), "eps2").tolist()
        [1e-05, 2e-06]
    """
    return np.sqrt(values) if units == "eps2" else np.asarray(values, dtype=float)


def checked(values: NDArray[np.float64], path: Path, what: str) -> NDArray[np.float64]:
    """``values`` when every one is a positive finite number, else one line naming the point."""
    bad = np.flatnonzero(~(np.isfinite(values) & (values > 0)))
    if bad.size:
        k = int(bad[0])
        raise InputError(
            f"{path}: {what}, point {k + 1}: {values[k]!r} is not a positive finite number"
        )
    return values


__all__ = [
    "META_KEYS",
    "SHAPES",
    "UNITS",
    "Bound",
    "Shape",
    "Units",
    "checked",
    "comments",
    "to_eps",
]
