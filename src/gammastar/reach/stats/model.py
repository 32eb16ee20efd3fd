"""The reach's statistical model: per decay channel (:class:`Channel`) a count or mass bins, a
signal template and the background, with the NA62 nuisance parameters (background shape,
signal efficiency, template statistics); :class:`Model` holds the channels with the shared
N_POT uncertainty and the yield's named signal nuisances of
:mod:`gammastar.yields.uncertainties`. :func:`gaussian_template` and :func:`make_model` build
them; :data:`POI` is the parameter of interest's name.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from gammastar.errors import GammastarError

__all__ = ["POI", "Channel", "Model", "gaussian_template", "make_model"]

POI = "n_signal"


@dataclass(init=False)
class Channel:
    """One decay channel: signal and background per bin, optional observed counts.

    Attributes:
        name: ``"ee"`` or ``"mumu"`` (any identifier).
        signal: expected signal per bin at n_signal = 1 (the template).
        background: expected background per bin.
        observed: observed counts per bin, or None.
        bkg_kappa: log-normal shape of the background yield (1 = exact).
        eff_unc: relative signal-efficiency uncertainty.
        mc_stat: relative MC-statistics uncertainty r of the signal template (scalar or per bin);
            the exact method integrates it as a log-normal of shape 1 + r (σ = ln(1 + r)).

    The arrays are given as anything numpy reads (a number: one bin) and kept as float64
    arrays of one shape (``mc_stat`` broadcast to it).
    """

    name: str
    signal: NDArray[np.float64]
    background: NDArray[np.float64]
    observed: NDArray[np.float64] | None
    bkg_kappa: float
    eff_unc: float
    mc_stat: NDArray[np.float64]

    def __init__(
        self,
        name: str,
        signal: ArrayLike,
        background: ArrayLike,
        observed: ArrayLike | None = None,
        bkg_kappa: float = 1.0,
        eff_unc: float = 0.0,
        mc_stat: float | ArrayLike = 0.0,
    ) -> None:
        self.name = name
        self.signal = np.atleast_1d(np.asarray(signal, dtype=np.float64))
        self.background = np.atleast_1d(np.asarray(background, dtype=np.float64))
        self.bkg_kappa, self.eff_unc = bkg_kappa, eff_unc
        if self.signal.shape != self.background.shape:
            raise GammastarError(
                f"channel {self.name}: signal has {self.signal.size} bins, "
                f"background {self.background.size}"
            )
        if np.any(~np.isfinite(self.signal)) or np.any(self.signal < 0):
            raise GammastarError(f"channel {self.name}: signal must be finite and >= 0")
        if np.any(~np.isfinite(self.background)) or np.any(self.background < 0):
            raise GammastarError(f"channel {self.name}: background must be finite and >= 0")
        self.observed = None
        if observed is not None:
            obs = np.atleast_1d(np.asarray(observed, dtype=np.float64))
            if obs.shape != self.signal.shape or np.any(obs < 0):
                raise GammastarError(f"channel {self.name}: observed counts must match the bins")
            self.observed = obs
        if self.bkg_kappa < 1.0 or self.eff_unc < 0:
            raise GammastarError(
                f"channel {self.name}: need bkg_kappa >= 1 and eff_unc >= 0 "
                f"(got {self.bkg_kappa}, {self.eff_unc})"
            )
        self.mc_stat = np.broadcast_to(
            np.asarray(mc_stat, dtype=np.float64), self.signal.shape
        ).copy()
        if np.any(~np.isfinite(self.mc_stat)) or np.any(self.mc_stat < 0):
            raise GammastarError(f"channel {self.name}: mc_stat must be finite and >= 0")


@dataclass
class Model:
    """A (multi-channel) reach likelihood. ``n_pot_unc`` is the relative N_POT uncertainty."""

    channels: list[Channel]
    n_pot_unc: float = 0.2
    poi_max: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    signal_nuisances: dict[str, float] = field(default_factory=dict)
    """Named relative signal-rate uncertainties r (log-normal, ``normsys`` hi = 1 + r,
    lo = 1/(1 + r)), each one parameter shared by every channel, like ``n_pot``
    (:mod:`gammastar.yields.uncertainties`: the yield's own sources)."""
    signal_down: dict[str, float] = field(default_factory=dict)
    """The down side r₋ of a two-sided named nuisance (``normsys`` hi = 1 + r, lo = 1/(1 + r₋):
    the signal scale e^{αw₊} for α > 0, e^{αw₋} for α < 0, w± = ln(1 + r±), as the exact
    method integrates it; pyhf's default interpolation ``code4`` is the same for |α| ≥ 1 and
    smooths the kink inside); a name not here is symmetric."""

    def __post_init__(self) -> None:
        if not self.channels:
            raise GammastarError("statistical model needs at least one channel")
        names = [c.name for c in self.channels]
        if len(set(names)) != len(names):
            raise GammastarError(f"duplicate channel names {names}")
        total = sum(float(c.signal.sum()) for c in self.channels)
        if total <= 0:
            raise GammastarError("signal template is empty (zero expected signal in all channels)")
        if self.n_pot_unc < 0:
            raise GammastarError(f"n_pot_unc must be >= 0, not {self.n_pot_unc}")
        for name, r in self.signal_nuisances.items():
            if name == POI or name == "n_pot" or name.startswith(("eff_", "bkg_", "mcstat_")):
                raise GammastarError(f"signal nuisance {name!r}: the name is reserved")
            if not (np.isfinite(r) and r >= 0):
                raise GammastarError(f"signal nuisance {name!r}: size must be >= 0, not {r}")
        for name, r in self.signal_down.items():
            if name not in self.signal_nuisances:
                raise GammastarError(f"signal nuisance {name!r}: a down side without its up side")
            if not (np.isfinite(r) and r >= 0):
                raise GammastarError(f"signal nuisance {name!r}: down size must be >= 0, not {r}")

    def down(self, name: str) -> float:
        """The down side r₋ of named nuisance ``name`` (its r where symmetric)."""
        return self.signal_down.get(name, self.signal_nuisances[name])

    @property
    def signal_log_width(self) -> float:
        """Width of ln(signal scale) from the shared symmetric nuisances: √(Σ ln²(1 + r)) over
        ``n_pot`` and the symmetric :attr:`signal_nuisances` (independent log-normals multiply
        into one); the two-sided ones are :attr:`signal_log_sides`."""
        sym = [r for k, r in self.signal_nuisances.items() if self.down(k) == r]
        return math.sqrt(sum(math.log1p(r) ** 2 for r in [self.n_pot_unc, *sym]))

    @property
    def signal_log_sides(self) -> list[tuple[float, float]]:
        """(w₊, w₋) = (ln(1 + r), ln(1 + r₋)) of each two-sided named nuisance (r₋ ≠ r)."""
        return [(math.log1p(r), math.log1p(self.down(k))) for k, r in self.signal_nuisances.items()
                if self.down(k) != r]  # fmt: skip

    @property
    def has_observed(self) -> bool:
        return all(c.observed is not None for c in self.channels)

    def normalised(self) -> Model:
        """A copy whose signal template sums to one event over all channels."""
        total = sum(float(c.signal.sum()) for c in self.channels)
        new = copy.deepcopy(self)
        for c in new.channels:
            c.signal = c.signal / total
        return new


def gaussian_template(mass: float, sigma: float, edges: ArrayLike) -> NDArray[np.float64]:
    """Fractions of a Gaussian (mean ``mass``, width ``sigma``) in the bins ``edges``.

    Example:
        >>> f = gaussian_template(0.5, 0.01, [0.47, 0.49, 0.51, 0.53])
        >>> round(float(f[1]), 4)
        0.6827
    """
    edges = np.asarray(edges, dtype=np.float64)
    cdf = stats.norm.cdf((edges - mass) / sigma)
    return np.diff(cdf)


def make_model(channels: Sequence[Channel], n_pot_unc: float = 0.2, **meta: Any) -> Model:
    """Convenience constructor."""
    return Model(list(channels), n_pot_unc=n_pot_unc, meta=dict(meta))
