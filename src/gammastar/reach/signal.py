"""The expected signal of a reach at one mass: N_sig(m, ε) = N_POT Y(m) ε² Σ_ℓ BR(A′ → ℓℓ)
𝓔(m, cτ) ε_sel (NA62 Eq. A1 with the data-driven yield), its ε crossings, the likelihood's
mass windows and the signal's mass template (:func:`signal_events`, :func:`eps_boundaries`,
:func:`window_edges`, :func:`mass_model`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize

from gammastar.errors import GammastarError
from gammastar.physics import darkphoton
from gammastar.reach.acceptance import KinematicSample
from gammastar.reach.stats.model import Channel, Model, gaussian_template

__all__ = [
    "BOUNDARY_XTOL",
    "MassModelSettings",
    "eps_boundaries",
    "mass_model",
    "signal_events",
    "window_edges",
]


# --------------------------------------------------------------------------- yields
# --------------------------------------------------------------------------- signal
def signal_events(
    mass: float,
    eps: ArrayLike,
    *,
    yield_per_pot_eps2: float,
    n_pot: float,
    sample: KinematicSample | Mapping[str, KinematicSample],
    channels: tuple[str, ...] = ("mumu",),
    dark: darkphoton.DarkSector | None = None,
) -> dict[str, NDArray[np.float64]]:
    """Expected signal events per channel at one mass for each ε.

    Arguments:
        sample: the A′ samples of the acceptance: one for every channel, or one per channel
            (:func:`channel_samples`: the daughters, and so the detector's cuts on them, differ).

    Returns:
        ``{channel: N_sig(ε)}``; the acceptance includes the selection efficiency.

    Example:
        >>> from gammastar.physics.sampling import ParametricSampler
        >>> from gammastar.reach.acceptance import draw
        >>> from gammastar.source.geometry import Geometry
        >>> g = Geometry(l1=5.0, theta_min=0.0, theta_max=1.0)
        >>> s = draw(ParametricSampler(), 0.4, 1000, g, seed=1)
        >>> n = signal_events(0.4, [1e-7, 1e-3], yield_per_pot_eps2=1e-5, n_pot=1e18, sample=s)
        >>> bool(n["mumu"][0] > 0 and n["mumu"][1] < 1e-6)
        True
    """
    eps = np.asarray(eps, dtype=np.float64)
    ctau = darkphoton.ctau(mass, eps, dark=dark)
    per_ch = sample if isinstance(sample, Mapping) else dict.fromkeys(channels, sample)
    acc: dict[int, NDArray] = {}  # a sample shared by channels: its acceptance once
    for ch in channels:
        if id(per_ch[ch]) not in acc:
            acc[id(per_ch[ch])] = per_ch[ch].acceptance(ctau)
    return {
        ch: n_pot
        * yield_per_pot_eps2
        * eps**2
        * acc[id(per_ch[ch])]
        * darkphoton.branching_ratio(mass, ch, eps=eps if dark else None, dark=dark)
        for ch in channels
    }


def _combined(
    samples: Mapping[str, KinematicSample], brs: Mapping[str, float], ctau: NDArray, what: str
) -> NDArray[np.float64]:
    """The BR-weighted acceptance Σ BR_c A_c(cτ) / Σ BR_c (``what``: ``acceptance`` or
    ``extrapolated_acceptance``); the shared sample's own when all channels share one."""
    unique = {id(x): x for x in samples.values()}
    if len(unique) == 1:
        return getattr(next(iter(unique.values())), what)(ctau)
    total = sum(brs[ch] for ch in samples)
    return sum(brs[ch] * getattr(samples[ch], what)(ctau) for ch in samples) / total


BOUNDARY_XTOL = 1e-7
"""The absolute tolerance in ln ε to which :func:`eps_boundaries` refines a crossing."""


def eps_boundaries(
    nsig: Callable[[NDArray], NDArray],
    eps_grid: ArrayLike,
    s_up: float,
    *,
    values: NDArray | None = None,
) -> tuple[float, float]:
    """ε_low and ε_high where N_sig(ε) = s_up (NaN, NaN if N_sig < s_up on the whole grid).

    Crossings are bracketed on ``eps_grid`` and refined with Brent's method in log ε (to
    :data:`BOUNDARY_XTOL`); a boundary at the edge of the grid is returned as that edge.
    ``values``: N_sig on the grid, if already known.
    """
    eps_grid = np.asarray(eps_grid, dtype=np.float64)
    if not (np.isfinite(s_up) and s_up > 0):
        return float("nan"), float("nan")
    vals = nsig(eps_grid) if values is None else np.asarray(values)
    above = np.nonzero(vals >= s_up)[0]
    if above.size == 0:
        return float("nan"), float("nan")

    def f(le: float) -> float:
        v = float(nsig(np.array([math.exp(le)]))[0])
        return math.log(max(v, 1e-300)) - math.log(s_up)

    i, j = int(above[0]), int(above[-1])
    if i == 0:
        lo = float(eps_grid[0])
    else:
        lo = math.exp(optimize.brentq(f, math.log(eps_grid[i - 1]), math.log(eps_grid[i]),
                                      xtol=BOUNDARY_XTOL))  # fmt: skip
    if j == eps_grid.size - 1:
        hi = float(eps_grid[-1])
    else:
        hi = math.exp(optimize.brentq(f, math.log(eps_grid[j]), math.log(eps_grid[j + 1]),
                                      xtol=BOUNDARY_XTOL))  # fmt: skip
    return lo, hi


def window_edges(
    mass: float,
    *,
    template: str,
    mass_resolution: float | None,
    window_sigmas: float = 3.0,
    mass_bins: int = 6,
) -> NDArray[np.float64]:
    """Reconstructed-mass bin edges of the signal window at ``mass``: m ± ``window_sigmas`` σ_m,
    one bin (``template="counting"``) or ``mass_bins`` equal bins (``"mass"``).

    The likelihood's mass template (:func:`mass_model`) and the conversion of observed masses
    into counts (:func:`observed_counts`) use these same edges.

    Example:
        >>> window_edges(0.5, template="counting", mass_resolution=0.01).round(4).tolist()
        [0.47, 0.53]
        >>> window_edges(0.5, template="mass", mass_resolution=0.01, mass_bins=3).round(4).tolist()
        [0.47, 0.49, 0.51, 0.53]
    """
    if mass_resolution is None or not mass_resolution > 0:
        raise GammastarError(
            f"reach.mass_resolution: the signal window at m = {mass:g} GeV needs the mass "
            f"resolution (got {mass_resolution!r})"
        )
    half = window_sigmas * mass_resolution
    return np.linspace(mass - half, mass + half, (mass_bins if template == "mass" else 1) + 1)


@dataclass(frozen=True)
class MassModelSettings:
    """The per-mass likelihood's fixed inputs (:func:`mass_model`): the channels, their
    backgrounds, the systematic sizes and the signal window (``reach`` keys of the same names;
    :meth:`ScanSettings.model_settings` makes them for a scan's mass point)."""

    channels: tuple[str, ...]
    """The A′ → ℓℓ channels searched (open at the mass)."""
    background: Mapping[str, float]
    """Expected background events per channel in the scan's mass range (no default)."""
    background_kappa: Mapping[str, float]
    """The background's log-normal uncertainty factor per channel (no default)."""
    n_pot_unc: float
    """Relative N_POT uncertainty."""
    efficiency_uncertainty: float
    """Relative signal-efficiency uncertainty."""
    template: str = "counting"
    """``"counting"``: one bin per channel; ``"mass"``: ``mass_bins`` bins around m."""
    mass_resolution: float | None = None
    """σ_m in GeV (the window's half width is ``window_sigmas`` σ_m; needed for ``"mass"``)."""
    window_sigmas: float = 3.0
    mass_bins: int = 6
    dark: darkphoton.DarkSector | None = None
    """A dark sector (its decays enter the branching ratios), or ``None``."""


def _branching_ratios(mass: float, st: MassModelSettings) -> dict[str, float]:
    """BR(A′ → ℓℓ) per channel at ``mass`` (0 for a closed one; ε-independent without a
    dark sector, taken at ε = 10⁻⁶ with one)."""
    brs = {
        ch: float(darkphoton.branching_ratio(mass, ch, eps=1e-6 if st.dark else None, dark=st.dark))
        for ch in st.channels
    }
    brs = {ch: (0.0 if not np.isfinite(v) else v) for ch, v in brs.items()}
    if sum(brs.values()) <= 0:
        raise GammastarError(f"m = {mass:g} GeV: no open decay channel among {list(st.channels)}")
    return brs


def _channel_bins(
    mass: float,
    frac: float,
    background: float,
    observed: ArrayLike | None,
    st: MassModelSettings,
    mass_range: tuple[float, float] | None,
) -> tuple[NDArray, NDArray, NDArray | None]:
    """One channel's (signal, background, observed) bins: one bin (counting), or the Gaussian
    signal template and a flat background density over ``mass_range`` in the window's bins."""
    if st.template == "counting":
        ob = None if observed is None else np.atleast_1d(np.asarray(observed, dtype=np.float64))
        return np.array([frac]), np.array([background]), ob
    lo_m, hi_m = mass_range or (0.0, 1.0)
    edges = window_edges(
        mass,
        template=st.template,
        mass_resolution=st.mass_resolution,
        window_sigmas=st.window_sigmas,
        mass_bins=st.mass_bins,
    )
    shape = gaussian_template(mass, float(st.mass_resolution), edges)  # type: ignore[arg-type]
    sig = frac * shape / shape.sum()
    density = background / max(hi_m - lo_m, 1e-12)
    bkg = np.full(st.mass_bins, density * np.diff(edges))
    ob = None
    if observed is not None:
        ob = np.asarray(observed, dtype=np.float64)
        if ob.ndim == 0:  # one count for the window: at the peak (conservative)
            ob = np.zeros(st.mass_bins)
            ob[st.mass_bins // 2] = float(observed)  # type: ignore[arg-type]
    return sig, bkg, ob


def mass_model(
    mass: float,
    settings: MassModelSettings,
    *,
    observed: Mapping[str, ArrayLike] | None = None,
    mc_stat: float = 0.0,
    mass_range: tuple[float, float] | None = None,
    acceptance: Mapping[str, float] | None = None,
    signal_nuisances: Mapping[str, float] | None = None,
    signal_down: Mapping[str, float] | None = None,
) -> Model:
    """The per-mass likelihood: signal template (one event in total) split over the channels by
    BR(A′ → ℓℓ) (× ``acceptance``, when the channels' acceptances differ), background counts
    (counting) or flat background in mass bins around m.

    Arguments:
        mass: the A′ mass in GeV.
        settings: the channels, backgrounds, systematic sizes and signal window
            (:class:`MassModelSettings`).
        observed: per channel, the observed count(s) in the window of :func:`window_edges`:
            one number per bin, or one number for the whole window (with ``template="mass"``
            placed in the central bin, the conservative choice).
        mc_stat: the yield's relative statistical error at the mass.
        mass_range: the scan's mass range, over which ``background`` is spread (``"mass"``).
        acceptance: per channel, a number proportional to its acceptance (``None``: the same
            for every channel).
        signal_nuisances: named relative signal-rate uncertainties, each one parameter shared
            by the channels (:mod:`gammastar.yields.uncertainties`); ``data_stat`` among them replaces
            ``mc_stat``.
        signal_down: the down sides of two-sided ones (:attr:`Model.signal_down`).

    Example:
        >>> st = MassModelSettings(("mumu",), {"mumu": 0.016}, {"mumu": 1.125}, 0.2, 0.029)
        >>> [c.background.tolist() for c in mass_model(0.4, st).channels]
        [[0.016]]
    """
    st = settings
    for key, given in (("background", st.background), ("background_kappa", st.background_kappa)):
        lost = [ch for ch in st.channels if ch not in given]
        if lost:
            raise GammastarError(f"reach.{key}: nothing given for channel {lost[0]!r}")
    brs = _branching_ratios(mass, st)
    weight = dict(brs)
    if acceptance is not None:
        weight = {ch: brs[ch] * float(acceptance[ch]) for ch in st.channels}
        if not sum(weight.values()) > 0:  # no channel seen: the split does not matter
            weight = dict(brs)
    wsum = sum(weight.values())
    chans = []
    for ch in st.channels:
        obs = None if observed is None else observed.get(ch)
        sig, bkg, ob = _channel_bins(
            mass, weight[ch] / wsum, float(st.background[ch]), obs, st, mass_range
        )
        chans.append(
            Channel(
                ch,
                sig,
                bkg,
                observed=ob,
                bkg_kappa=float(st.background_kappa[ch]),
                eff_unc=st.efficiency_uncertainty,
                mc_stat=0.0 if "data_stat" in (signal_nuisances or {}) else mc_stat,
            )
        )
    return Model(
        chans,
        n_pot_unc=st.n_pot_unc,
        meta={"mass": mass, "br": brs},
        signal_nuisances=dict(signal_nuisances or {}),
        signal_down=dict(signal_down or {}),
    )
