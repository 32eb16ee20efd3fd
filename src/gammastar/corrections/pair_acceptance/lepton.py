"""The single-lepton acceptance: :class:`LeptonAcceptance` says whether one lepton passes the
spectrometer (an energy threshold and a polar-angle window, optionally times a single-lepton
acceptance map in (p, θ), read by :func:`load_lepton_map`); the mock detector and the
analysis use the same class.

Reference:
    NA60, Eur. Phys. J. C 59 (2009) 607 (per-muon acceptance of the dimuon spectrometer).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.corrections.unfold import read_root_histogram, split_map_spec
from gammastar.errors import ConfigError, InputError

__all__ = ["LeptonAcceptance", "load_lepton_map"]


@dataclass(frozen=True)
class LeptonAcceptance:
    """Single-lepton acceptance: E ≥ ``min_energy``, ``theta_min`` ≤ θ ≤ ``theta_max``, and
    optionally a probability from a map in (p, θ) (nearest bin; 0 outside the map).

    Example:
        >>> la = LeptonAcceptance(3.0, 0.035, 0.120)
        >>> la.probability(np.array([10.0, 2.0]), np.array([0.05, 0.05])).tolist()
        [1.0, 0.0]
    """

    min_energy: float
    theta_min: float
    theta_max: float
    map_p_edges: NDArray[np.float64] | None = field(default=None, compare=False)
    map_theta_edges: NDArray[np.float64] | None = field(default=None, compare=False)
    map_values: NDArray[np.float64] | None = field(default=None, compare=False)
    source: str = "cuts"

    def __post_init__(self) -> None:
        if not self.theta_max > self.theta_min:
            raise ConfigError(
                f"lepton acceptance: theta_max ({self.theta_max}) must exceed theta_min "
                f"({self.theta_min})"
            )

    @classmethod
    def from_config(cls, section: Any, *, resolve: Any = None) -> LeptonAcceptance:
        """From ``unfold.lepton_acceptance`` (or ``mock.detector``: ``muon_min_energy``).

        Arguments:
            section: an object with ``min_energy`` (or ``muon_min_energy``), ``theta_min``,
                ``theta_max`` and optionally ``map`` (``"file.root:name"``).
            resolve: callable turning the map's path into a file path (the config's).
        """
        e_min = getattr(section, "min_energy", None)
        if e_min is None:
            e_min = section.muon_min_energy
        spec = getattr(section, "map", None)
        if spec is None:
            return cls(float(e_min), float(section.theta_min), float(section.theta_max))
        p_edges, t_edges, values, label = load_lepton_map(spec, resolve)
        return cls(
            float(e_min),
            float(section.theta_min),
            float(section.theta_max),
            p_edges,
            t_edges,
            values,
            label,
        )

    def intersect(self, min_energy: float, theta_min: float, theta_max: float) -> LeptonAcceptance:
        """The same acceptance with a selection's lepton cuts applied on top."""
        return LeptonAcceptance(
            max(self.min_energy, min_energy),
            max(self.theta_min, theta_min),
            min(self.theta_max, theta_max),
            self.map_p_edges,
            self.map_theta_edges,
            self.map_values,
            self.source,
        )

    def probability(self, energy: ArrayLike, theta: ArrayLike, p: ArrayLike | None = None):
        """Pass probability per lepton (0/1 for the cuts, times the map's value).

        Arguments:
            energy: lab energy (GeV). theta: lab polar angle (rad).
            p: lab momentum (GeV; only with a map; default ``energy``).
        """
        e = np.asarray(energy, dtype=np.float64)
        th = np.asarray(theta, dtype=np.float64)
        ok = (e >= self.min_energy) & (th >= self.theta_min) & (th <= self.theta_max)
        prob = ok.astype(np.float64)
        p_edges, theta_edges = self.map_p_edges, self.map_theta_edges
        if self.map_values is not None and p_edges is not None and theta_edges is not None:
            pp = e if p is None else np.asarray(p, dtype=np.float64)
            i = np.searchsorted(p_edges, pp, side="right") - 1
            j = np.searchsorted(theta_edges, th, side="right") - 1
            inside = (i >= 0) & (i < self.map_values.shape[0])
            inside &= (j >= 0) & (j < self.map_values.shape[1])
            val = np.zeros(e.shape)
            val[inside] = self.map_values[i[inside], j[inside]]
            prob *= val
        return prob

    def passes(self, p4: NDArray[np.float64]) -> NDArray[np.bool_]:
        """Deterministic pass (cuts only, or map value > 0) for four-momenta (px, py, pz, E)."""
        theta = np.arctan2(np.hypot(p4[0], p4[1]), p4[2])
        p = np.sqrt(p4[0] ** 2 + p4[1] ** 2 + p4[2] ** 2)
        return self.probability(p4[3], theta, p) > 0

    def as_dict(self) -> dict[str, Any]:
        """JSON description (recorded in the outputs' ``meta``)."""
        return {
            "min_energy": self.min_energy,
            "theta_min": self.theta_min,
            "theta_max": self.theta_max,
            "map": None if self.map_values is None else self.source,
        }


def load_lepton_map(spec: str, resolve: Any = None) -> tuple[NDArray, NDArray, NDArray, str]:
    """Read a single-lepton acceptance map (ROOT TH2: x = p in GeV, y = θ in rad,
    contents in [0, 1]) given as ``"file.root:name"``.

    Raises:
        ConfigError: the file or histogram does not exist; InputError: bad contents (NaN,
            negative or > 1 bins, an all-zero map) or not a TH2.
    """
    import os

    path, key = split_map_spec(spec, "acceptance")
    path = os.fspath(resolve(path) if resolve is not None else path)
    label = f"{path}:{key}"
    h = read_root_histogram(path, key, kind="TH2", key="unfold.lepton_acceptance.map",
                            what="x = p, y = theta")  # fmt: skip
    v = np.asarray(h.values(), dtype=np.float64)
    p_edges = np.asarray(h.axes[0].edges, dtype=np.float64)
    t_edges = np.asarray(h.axes[1].edges, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        raise InputError(f"{label}: the lepton acceptance map has NaN or infinite bins")
    if np.any(v < 0) or np.any(v > 1):
        raise InputError(
            f"{label}: lepton acceptance map contents must lie in [0, 1] "
            f"(found {v.min():g}..{v.max():g})"
        )
    if not np.any(v > 0):
        raise InputError(f"{label}: the lepton acceptance map is zero everywhere")
    return p_edges, t_edges, v, label
