r"""A scintillator-bar detector for millicharged particles (milliQan/SUBMET/FerMINI type).

Offers :class:`ScintillatorDetector` (layers of bars on the beam axis at a distance from the
target), its per-particle detection probability for a charge Q (:meth:`detection_probability`),
the accidental background from dark counts (:meth:`background_events`), and the geometric
acceptance of straight χ trajectories (:meth:`hits`, :func:`square_solid_angle`).

Model (hand-written; milliQan: Haas, Hill, Izaguirre, Yavin PLB 746 (2015) 117; FerMINI: Kelly &
Tsai PRD 100 (2019) 015043; SUBMET: Kim, Hwang, Yoo JHEP 05 (2021) 031, arXiv:2007.03364):

* A particle of charge Qe crossing a bar along its length yields a Poisson number of
  photoelectrons with mean N_PE = Q² N₁, N₁ the yield of a unit charge (ionisation ∝ Q²);
  a layer fires with P = 1 − e^{−N_PE} (at least one photoelectron).
* The event needs ``n_coincidence`` of the ``n_layers`` layers: with identical layers
  P_det = Σ_{j ≥ k} C(n, j) P^j (1 − P)^{n−j}, which for k = n is the papers'
  Π_layers (1 − e^{−N_PE}).
* Accidental background: each of the ``n_channels`` bar stacks sees uncorrelated dark counts
  at rate r per layer; the rate of k-fold coincidences in a window τ among n layers is
  C(n, k)·k·r^k·τ^{k−1} per stack (milliQan Eq. for N-fold accidental coincidences,
  N r^N τ^{N−1}); events = rate × live time × n_channels.
* Geometry: layers are squares of side √area centred on the beam axis (+z), the first face
  at ``distance`` from the target, each ``layer_length`` deep, back to back; a straight track
  counts when it crosses the front face of the first and the back face of the last layer.
  Multiple scattering and energy loss of the χ (negligible for Q ≪ 1) are not modelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.errors import GammastarError

__all__ = ["ScintillatorDetector", "square_solid_angle"]


@dataclass(frozen=True)
class ScintillatorDetector:
    """Layers of scintillator bars on the beam axis.

    Attributes:
        distance: target to the front face of the first layer, m.
        n_layers: number of layers (≥ 1).
        layer_length: depth of a layer along the beam (the bar length), m.
        area: transverse active area of a layer (a square), m².
        npe_per_q2: mean photoelectrons of a unit charge crossing one layer (N₁).
        n_coincidence: layers required (default: all).
        dark_count_rate_hz: dark-count rate per bar stack and layer, Hz.
        coincidence_window_s: coincidence window τ, s.
        live_time_s: live time of the run, s.
        n_channels: independent bar stacks (for the accidental rate).
        efficiency: other constant efficiencies (timing, reconstruction).

    Raises:
        GammastarError: no layers, or an unphysical value (named).

    Example:
        >>> det = ScintillatorDetector(distance=10.0, n_layers=3, layer_length=1.0, area=1.0,
        ...                            npe_per_q2=1e6)
        >>> round(float(det.detection_probability(1e-3)), 5)    # (1 − e^{−1})³
        0.25258
    """

    distance: float
    n_layers: int
    layer_length: float
    area: float
    npe_per_q2: float
    n_coincidence: int | None = None
    dark_count_rate_hz: float = 0.0
    coincidence_window_s: float = 0.0
    live_time_s: float = 0.0
    n_channels: int = 1
    efficiency: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.n_layers, int | np.integer) or self.n_layers < 1:
            raise GammastarError(
                f"mcp detector: n_layers must be a positive integer (a detector with no "
                f"layers sees nothing), not {self.n_layers!r}"
            )
        for key in ("distance", "layer_length", "area", "npe_per_q2"):
            v = getattr(self, key)
            if not (np.isfinite(v) and v > 0):
                raise GammastarError(f"mcp detector: {key} must be positive, not {v!r}")
        for key in ("dark_count_rate_hz", "coincidence_window_s", "live_time_s"):
            v = getattr(self, key)
            if not (np.isfinite(v) and v >= 0):
                raise GammastarError(f"mcp detector: {key} must be >= 0, not {v!r}")
        k = self.n_layers if self.n_coincidence is None else self.n_coincidence
        if not 1 <= k <= self.n_layers:
            raise GammastarError(
                f"mcp detector: n_coincidence ({k}) must be between 1 and n_layers "
                f"({self.n_layers})"
            )
        object.__setattr__(self, "n_coincidence", int(k))
        if self.n_channels < 1 or not 0 < self.efficiency <= 1:
            raise GammastarError(
                "mcp detector: n_channels must be >= 1 and efficiency in (0, 1] "
                f"(got {self.n_channels}, {self.efficiency})"
            )

    @property
    def half_side(self) -> float:
        """Half the side of a layer's square face, m."""
        return 0.5 * float(np.sqrt(self.area))

    @property
    def back(self) -> float:
        """Distance from the target to the back face of the last layer, m."""
        return self.distance + self.n_layers * self.layer_length

    def layer_probability(self, q: ArrayLike) -> NDArray[np.float64]:
        """P(a layer fires) = 1 − exp(−Q² N₁) for charges ``q`` (units of e)."""
        q = _check_q(q)
        return -np.expm1(-(q**2) * self.npe_per_q2)

    def detection_probability(self, q: ArrayLike) -> NDArray[np.float64]:
        """P(k of n layers fire) × efficiency for a particle crossing every layer.

        Arguments:
            q: charge in units of e (> 0), array.

        Returns:
            The probability, same shape as ``q``.

        References:
            Module docstring (milliQan PLB 746 (2015) 117; SUBMET arXiv:2007.03364).
        """
        p = self.layer_probability(q)
        n, k = self.n_layers, int(self.n_coincidence)  # type: ignore[arg-type]
        tot = sum(comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(k, n + 1))
        return np.asarray(self.efficiency * tot, dtype=np.float64)

    def background_events(self) -> float:
        """Expected accidental k-fold coincidences from dark counts during the live time.

        Returns:
            n_channels · C(n, k) · k · r^k · τ^{k−1} · live time.

        Example:
            >>> det = ScintillatorDetector(distance=1.0, n_layers=2, layer_length=1.0, area=1.0,
            ...     npe_per_q2=1.0, dark_count_rate_hz=100.0, coincidence_window_s=1e-8,
            ...     live_time_s=1e6)
            >>> round(det.background_events(), 6)     # 2 r² τ T
            200.0
        """
        n, k = self.n_layers, int(self.n_coincidence)  # type: ignore[arg-type]
        r, tau = self.dark_count_rate_hz, self.coincidence_window_s
        rate = comb(n, k) * k * r**k * tau ** (k - 1)
        return float(self.n_channels * rate * self.live_time_s)

    def hits(self, p3: ArrayLike, vertex: ArrayLike | None = None) -> NDArray[np.bool_]:
        """Whether straight tracks cross the front face of the first and the back face of
        the last layer.

        Arguments:
            p3: (3, N) momenta (or directions), any units (the layout of
                :mod:`gammastar.physics.kinematics`: px, py, pz rows).
            vertex: (3, N) origins, m (default: the target centre, 0).

        Returns:
            (N,) booleans.
        """
        p = np.asarray(p3, dtype=np.float64)
        v = np.zeros_like(p) if vertex is None else np.asarray(vertex, dtype=np.float64)
        h = self.half_side
        fwd = p[2] > 0
        pz = np.where(fwd, p[2], 1.0)
        ok = fwd.copy()
        for z in (self.distance, self.back):
            x = v[0] + p[0] / pz * (z - v[2])
            y = v[1] + p[1] / pz * (z - v[2])
            ok &= (np.abs(x) < h) & (np.abs(y) < h)
        return ok


def _check_q(q: ArrayLike) -> NDArray[np.float64]:
    q = np.asarray(q, dtype=np.float64)
    if np.any(~np.isfinite(q)) or np.any(q <= 0):
        raise GammastarError(f"millicharge Q must be positive (units of e), not {q}")
    return q


def square_solid_angle(half_side: float, distance: float) -> float:
    """Solid angle of a square of half-side a at distance d on its axis: 4 arcsin(a²/(a² + d²)).

    References:
        The rectangle formula Ω = 4 arcsin(ab/√((a² + d²)(b² + d²))) (e.g. Gotoh & Yagi,
        NIM 96 (1971) 485) with a = b.

    Example:
        >>> round(square_solid_angle(1.0, 1.0) / (4 * np.pi), 12)  # a cube face from its centre
        0.166666666667
    """
    a2 = half_side**2
    return float(4 * np.arcsin(a2 / (a2 + distance**2)))
