r"""Sensitivity reach in the (m_A′, ε) plane (paper Sec. IV/App. B; docs/explanation/physics.md §9–10).

Expected signal (NA62 Eq. A1 with the data-driven yield):

.. math:: N_{\rm sig}(m, \varepsilon) = N_{\rm POT}\, Y(m)\, \varepsilon^2 \sum_{\ell}
          {\rm BR}(A' \to \ell\ell)\, \mathcal{E}(m, c\tau(m, \varepsilon))\, \epsilon_{\rm sel},

with Y(m) the A′ yield per POT per ε² from ``yields.json`` (log-linear interpolation in m), the
acceptance 𝓔 from :mod:`gammastar.reach.acceptance` and cτ from :mod:`gammastar.physics.darkphoton`.

**The ε scan (the efficient method).** For a given mass the channel fractions
BR_ℓℓ/ΣBR_ℓℓ do not depend on ε (both widths scale as ε²/Γ_tot; the acceptance is common to the
channels), so the whole likelihood at (m, ε) is the per-mass likelihood with the signal strength
n_signal = N_sig(m, ε). CLs decreases monotonically with n_signal, hence

    (m, ε) excluded  ⇔  N_sig(m, ε) ≥ s_up(m),

with s_up(m) the per-mass upper limit on the signal event count (one limit per band). The
exclusion boundaries ε_low(m), ε_high(m) are the two crossings of N_sig(m, ε) = s_up(m)
(N_sig rises as ε⁴…ε² at small ε and falls exponentially once the A′ decays before L1), found on
the ε grid and refined with Brent's method on the exact N_sig(ε). ``tests/test_reach.py`` shows
that this reproduces a full per-grid-point hypothesis test.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize

from gammastar.config import AnalysisConfig
from gammastar.core import rundir
from gammastar.core.artifacts import atomic_path, atomic_paths, check_writable, make_meta
from gammastar.core.figures import figure_style
from gammastar.core.results import StageResult
from gammastar.corrections.unfold import read_root_histogram, split_map_spec
from gammastar.errors import ConfigError, GammastarError, InputError
from gammastar.physics import darkphoton
from gammastar.physics.sampling import SamplerLike
from gammastar.reach.acceptance import KinematicSample, channel_samples
from gammastar.reach.flow_closure import closure_record, plot_closure
from gammastar.reach.flow_closure import log as closure_log
from gammastar.reach.impact import impact, plot_impact
from gammastar.reach.stats import (
    BANDS,
    Channel,
    LimitResult,
    Model,
    build_spec,
    gaussian_template,
    upper_limit,
)
from gammastar.source.geometry import Geometry
from gammastar.source.production import (
    Yields,
    check_refuse,
    load_yields,
    resolve_yield_scale,
    with_target_nuisance,
)
from gammastar.source.source import Source, ensemble_sources
from gammastar.yields.extrapolation.nsig import (
    NsigErrorSettings,
    nsig_lambda_theta,
    nsig_relative_error,
)
from gammastar.yields.extrapolation.samplers import RecordingSampler
from gammastar.yields.uncertainties import lambda_refits_at, lambda_regions, reach_nuisances

__all__ = [
    "MassModelSettings",
    "ReachInputs",
    "ScanResult",
    "ScanSettings",
    "check_config",
    "eps_boundaries",
    "mass_model",
    "observed_counts",
    "plot_reach",
    "reach_document",
    "reach_inputs",
    "read_mass_histogram",
    "run_reach",
    "scan",
    "scan_with",
    "signal_events",
    "window_edges",
]

OUTPUTS = rundir.stage_outputs("reach", tracked=False)
"""What the reach writes (:data:`gammastar.core.rundir.ARTIFACTS`, with the pipeline's
``STAGES``), besides one pyhf workspace per mass point."""


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


def eps_boundaries(
    nsig: Callable[[NDArray], NDArray],
    eps_grid: ArrayLike,
    s_up: float,
    *,
    values: NDArray | None = None,
) -> tuple[float, float]:
    """ε_low and ε_high where N_sig(ε) = s_up (NaN, NaN if N_sig < s_up on the whole grid).

    Crossings are bracketed on ``eps_grid`` and refined with Brent's method in log ε; a
    boundary at the edge of the grid is returned as that edge. ``values``: N_sig on the grid,
    if already known.
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
        lo = math.exp(
            optimize.brentq(f, math.log(eps_grid[i - 1]), math.log(eps_grid[i]), xtol=1e-7)
        )
    if j == eps_grid.size - 1:
        hi = float(eps_grid[-1])
    else:
        hi = math.exp(
            optimize.brentq(f, math.log(eps_grid[j]), math.log(eps_grid[j + 1]), xtol=1e-7)
        )
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
    )


# --------------------------------------------------------------------------- observed
def read_mass_histogram(
    spec: str, *, key: str = "reach.observed", resolve: Callable[[str], Path] | None = None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The observed events of a ROOT TH1 of reconstructed masses.

    Arguments:
        spec: ``"file.root:name"`` (or ``"file.root"`` for a histogram named ``observed``).
        key: the config key named in errors.
        resolve: turns the config's path into a file path (default: as given).

    Returns:
        ``(masses, edges)``: one mass per event (the bin centre, repeated by the bin's count)
        and the histogram's bin edges.

    Raises:
        ConfigError: the file or the histogram does not exist; InputError: not a TH1, or
            contents that are not event counts (negative, non-integer, NaN), or events in the
            under/overflow.
    """

    path, name = split_map_spec(spec, default_key="observed")
    if resolve is not None:
        path = str(resolve(path))
    label = f"{key}: {path}:{name}"
    h = read_root_histogram(path, name, kind="TH1", key=key, what="of masses")
    counts = np.asarray(h.values(flow=True), dtype=np.float64)
    edges = np.asarray(h.axes[0].edges, dtype=np.float64)
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise InputError(f"{label}: contents must be finite event counts >= 0")
    if np.any(np.abs(counts - np.round(counts)) > 1e-6):
        raise InputError(f"{label}: contents must be integer event counts (unweighted events)")
    counts = np.round(counts).astype(np.int64)
    if counts[0] or counts[-1]:
        raise InputError(
            f"{label}: {counts[0]} events in the underflow and {counts[-1]} in the overflow; "
            "extend the axis so that every observed event has a mass"
        )
    centres = 0.5 * (edges[1:] + edges[:-1])
    return np.repeat(centres, counts[1:-1]), edges


def observed_counts(
    observed: Mapping[str, Any],
    masses: ArrayLike,
    *,
    template: str,
    mass_resolution: float | None,
    window_sigmas: float = 3.0,
    mass_bins: int = 6,
    resolve: Callable[[str], Path] | None = None,
) -> dict[str, NDArray[np.float64]]:
    """Observed counts per channel and mass point, in each point's signal window.

    Arguments:
        observed: per channel (``reach.observed``): a count (the same at every mass point), a
            list of counts per mass point, or the observed events' reconstructed masses
            (``{"masses": [...]}``, ``{"histogram": "file.root:name"}`` or an
            :class:`~gammastar.config.ObservedMasses`), counted in the windows of
            :func:`window_edges` (the edges of the likelihood's mass template).
        masses: the mass points of the scan.
        resolve: turns a histogram path of the config into a file path.

    Returns:
        ``{channel: counts}``, counts of shape (masses,) for one count per window or
        (masses, mass_bins) for observed masses with ``template="mass"``.

    Raises:
        GammastarError: a list of the wrong length, a missing mass resolution, a histogram
            coarser than the window's bins (see :func:`read_mass_histogram`).

    Example:
        >>> observed_counts({"mumu": {"masses": [0.305, 0.5]}}, [0.3, 0.4, 0.5],
        ...                 template="counting", mass_resolution=0.01)["mumu"].tolist()
        [1.0, 0.0, 1.0]
    """
    masses = np.atleast_1d(np.asarray(masses, dtype=np.float64))
    out: dict[str, NDArray[np.float64]] = {}
    for ch, spec in observed.items():
        key = f"reach.observed.{ch}"
        if hasattr(spec, "model_dump"):
            spec = spec.model_dump()
        if isinstance(spec, Mapping):
            bin_width = None
            if spec.get("histogram") is not None:
                events, h_edges = read_mass_histogram(
                    str(spec["histogram"]), key=f"{key}.histogram", resolve=resolve
                )
                bin_width = float(np.max(np.diff(h_edges)))
            else:
                events = np.sort(np.asarray(spec.get("masses") or [], dtype=np.float64))
            rows = []
            for m in masses:
                edges = window_edges(
                    float(m),
                    template=template,
                    mass_resolution=mass_resolution,
                    window_sigmas=window_sigmas,
                    mass_bins=mass_bins,
                )
                if bin_width is not None and bin_width > np.min(np.diff(edges)) * (1 + 1e-9):
                    raise InputError(
                        f"{key}.histogram: bins of {bin_width:g} GeV are wider than the signal "
                        f"window's bins ({np.min(np.diff(edges)):g} GeV); use a finer histogram "
                        "or the event masses"
                    )
                rows.append(np.histogram(events, bins=edges)[0])
            counts = np.asarray(rows, dtype=np.float64)
            out[ch] = counts[:, 0] if counts.shape[1] == 1 else counts
        else:
            counts = np.asarray(spec, dtype=np.float64)
            if counts.ndim == 0:
                counts = np.full(masses.size, float(counts))
            if counts.shape != (masses.size,):
                raise ConfigError(
                    f"{key}: {counts.size} counts for {masses.size} mass points "
                    "(one count per mass point: reach.mass_points)"
                )
            if np.any(~np.isfinite(counts)) or np.any(counts < 0):
                raise ConfigError(f"{key}: observed counts must be finite and >= 0")
            out[ch] = counts
    return out


# --------------------------------------------------------------------------- scan
@dataclass
class ScanResult:
    """Everything :func:`scan` computes."""

    masses: NDArray[np.float64]
    eps: NDArray[np.float64]
    limits: list[LimitResult | None]
    boundaries: dict[str, tuple[NDArray, NDArray]]
    """band ("-2" … "+2", "obs", "events_2.3", …) → (eps_low, eps_high) arrays."""
    nsig: NDArray[np.float64]
    """Total expected signal on the (mass, ε) grid."""
    acceptance: NDArray[np.float64]
    models: list[Model | None]
    method: str
    seconds: dict[str, float]
    acceptance_extrapolated: NDArray[np.float64] | None = None
    """The part of ``acceptance`` from samples outside the data's fiducial region (a model);
    ``None`` when the sampler labels none."""
    impact: dict[str, Any] | None = None
    """Each nuisance fixed at ±1σ at a few masses (:func:`gammastar.reach.impact.impact`)."""
    acceptance_members: NDArray[np.float64] | None = None
    """The ensemble members' acceptance, shape (members, mass, ε); ``None`` without one."""
    kinematic: list[dict[str, Any]] | None = None
    """Per mass: the ``kinematic_model`` size used and the spread at ε_low / ε_high."""
    extrapolation_nsig: list[dict[str, Any]] | None = None
    """Per mass: the ``extrapolation`` size used, the fit's error carried to N_sig
    (:func:`_extrapolation_rel`) at ε_low / ε_high."""
    lambda_theta_nsig: list[dict[str, Any]] | None = None
    """Per mass, ``acceptance_lambda_theta`` at N's level as the scan used it
    (:func:`_lambda_rel`; ``rel_yield`` the yield's size)."""


@dataclass(frozen=True)
class ScanSettings:
    """What :func:`scan` needs besides the grids and the samplers: the signal inputs and the
    per-mass statistics (:meth:`from_config` builds it for the ``reach`` stage).

    The statistics inputs (``background``, ``background_kappa``, ``n_pot_unc``,
    ``efficiency_uncertainty``) have no defaults; they, ``channels``, the signal window and
    ``dark`` are :class:`MassModelSettings`'s (:meth:`model_settings`).
    """

    geometry: Geometry
    """The detector (:mod:`gammastar.source.geometry`)."""
    yields: Yields
    """The A′ yield per POT per ε² (``yields.json``)."""
    n_pot: float
    """Protons on target of the search (with the yield scale applied)."""
    background: Mapping[str, float]
    background_kappa: Mapping[str, float]
    n_pot_unc: float
    efficiency_uncertainty: float
    channels: tuple[str, ...] = ("mumu",)
    observed: Mapping[str, ArrayLike] | None = None
    """Per channel one count for every mass point, or an array with one entry (a count, or the
    counts per mass bin) per mass point (:func:`observed_counts` makes it from the config);
    ``None``: expected limits only."""
    cl: float = 0.9
    method: str = "auto"
    """The statistical method (:data:`gammastar.reach.stats.METHODS`)."""
    ntoys: int = 500
    samples: int = 20_000
    """A′ samples drawn per mass (and per channel whose daughters the detector cuts on)."""
    seed: int | None = 0
    template: str = "counting"
    mass_resolution: float | None = None
    window_sigmas: float = 3.0
    mass_bins: int = 6
    event_lines: tuple[float, ...] = (2.3, 3.0)
    """Signal counts whose N_sig contours are drawn as well (``events_<n>``)."""
    dark: darkphoton.DarkSector | None = None
    signal_nuisances: Mapping[str, ArrayLike] | None = None
    """Per name the relative signal-rate uncertainty at each mass
    (:func:`gammastar.yields.uncertainties.at_masses`)."""
    impact_points: int = 0
    """At that many evenly spaced masses, each nuisance fixed at ±1σ
    (:func:`gammastar.reach.impact.impact`)."""
    lambda_refits: Mapping[str, Any] | None = None
    """``yields.json`` ``uncertainties.lambda_theta_refits``: the measured λ_θ's moves, which
    the scan carries to N_sig (``acceptance_lambda_theta`` at N's level, as ``extrapolation``)
    where the sampler extrapolates; ``None``: the yield's size."""

    @classmethod
    def from_config(cls, config: Any, inputs: ReachInputs) -> ScanSettings:
        """The ``reach`` section (and ``seed``, ``uncertainties.impact_masses``) as scan settings.

        Arguments:
            config: the :class:`~gammastar.config.AnalysisConfig`.
            inputs: what :func:`reach_inputs` read and resolved for it.
        """
        rc = config.reach
        return cls(
            geometry=inputs.geometry,
            yields=inputs.yields,
            n_pot=inputs.n_pot * inputs.yield_scale,
            channels=tuple(rc.channels),
            background=rc.background,
            background_kappa=rc.background_kappa,
            observed=inputs.observed,
            n_pot_unc=rc.n_pot_rel_uncertainty,
            efficiency_uncertainty=rc.efficiency_uncertainty,
            cl=rc.cl,
            method=rc.method,
            ntoys=rc.ntoys,
            samples=rc.samples,
            seed=config.seed,
            template=rc.template,
            mass_resolution=rc.mass_resolution,
            window_sigmas=rc.mass_window_sigmas,
            mass_bins=rc.mass_bins,
            event_lines=tuple(rc.event_lines),
            dark=inputs.dark,
            signal_nuisances=inputs.nuisances,
            impact_points=config.uncertainties.impact_masses if inputs.nuisances is not None else 0,
            lambda_refits=(inputs.yields.uncertainties or {}).get("lambda_theta_refits")
            if "acceptance_lambda_theta" in (inputs.nuisances or {})
            else None,
        )

    def check(self, masses: NDArray) -> None:
        """Refuse a channel without background inputs, or observed counts of the wrong length.

        Raises:
            GammastarError: naming the ``reach`` key.
        """
        for key, given in (
            ("background", self.background),
            ("background_kappa", self.background_kappa),
        ):
            lost = [ch for ch in self.channels if ch not in given]
            if lost:
                raise GammastarError(f"reach.{key}: nothing given for channel {lost[0]!r}")
        for ch, v in (self.observed or {}).items():
            if np.ndim(v) >= 1 and np.shape(v)[0] != masses.size:
                raise GammastarError(
                    f"reach.observed.{ch}: {np.shape(v)[0]} entries for {masses.size} masses"
                )

    def model_settings(self, channels: tuple[str, ...]) -> MassModelSettings:
        """The per-mass likelihood's settings (:func:`mass_model`) for the open ``channels``."""
        return MassModelSettings(
            channels=channels,
            background={ch: self.background[ch] for ch in channels},
            background_kappa=self.background_kappa,
            n_pot_unc=self.n_pot_unc,
            efficiency_uncertainty=self.efficiency_uncertainty,
            template=self.template,
            mass_resolution=self.mass_resolution,
            window_sigmas=self.window_sigmas,
            mass_bins=self.mass_bins,
            dark=self.dark,
        )

    def band_keys(self) -> list[str]:
        """The boundaries a scan draws: the expected bands, ``obs``, ``events_<n>``."""
        obs = ["obs"] if self.observed else []
        return [*BANDS, *obs, *(f"events_{v:g}" for v in self.event_lines)]


@dataclass
class _MassSignal:
    """One mass point's signal: the A′ samples per open channel and N_sig on the ε grid."""

    mass: float
    seed: int
    channels: tuple[str, ...]
    samples: dict[str, KinematicSample]
    brs: dict[str, float]
    ctau: NDArray[np.float64]
    nsig: Callable[[NDArray], NDArray]
    """N_sig(ε) exactly (for the boundaries' root finding)."""
    nsig_grid: NDArray[np.float64]
    acceptance: NDArray[np.float64]
    extrapolated: NDArray[np.float64] | None
    shares: dict[str, float] | None
    """Each channel's BR-free acceptance sum over the ε grid when the channels' samples differ."""


def _mass_signal(
    sampler: SamplerLike,
    m: float,
    y: float,
    seed: int,
    eps: NDArray,
    st: ScanSettings,
    open_ch: tuple[str, ...],
) -> _MassSignal:
    """Draw the A′ samples at mass ``m`` and evaluate the acceptance and N_sig on the ε grid
    (NA62 Eq. A1 with the data-driven yield ``y`` per POT per ε²; see the module docstring)."""
    samples_ch = channel_samples(sampler, m, st.samples, st.geometry, seed=seed, channels=open_ch)
    brs = {ch: float(darkphoton.branching_ratio(m, ch)) for ch in open_ch}
    ctau = darkphoton.ctau(m, eps, dark=st.dark)
    acc = _combined(samples_ch, brs, ctau, "acceptance")
    sample = next(iter(samples_ch.values()))
    extrap = None
    if sample.extrapolated is not None:
        extrap = _combined(samples_ch, brs, ctau, "extrapolated_acceptance")
    if st.dark is None:
        # no dark sector: BRs do not depend on ε and cτ(m, ε) = cτ(m, 1)/ε²
        scale = st.n_pot * y * sum(brs[ch] for ch in open_ch)
        ct1 = float(darkphoton.ctau(m, 1.0))

        def nsig(e: NDArray) -> NDArray:
            e = np.asarray(e, dtype=np.float64)
            return scale * e**2 * _combined(samples_ch, brs, ct1 / e**2, "acceptance")

        nsig_grid = scale * eps**2 * acc
    else:
        dark, n_pot = st.dark, st.n_pot

        def nsig(e: NDArray) -> NDArray:
            parts = signal_events(
                m,
                e,
                yield_per_pot_eps2=y,
                n_pot=n_pot,
                sample=samples_ch,
                channels=open_ch,
                dark=dark,
            )
            return sum(parts.values())

        nsig_grid = nsig(eps)
    # each channel's share of the signal: BR × its acceptance over the ε grid (the per-mass
    # likelihood's split; exact when the channels' acceptances differ by a factor)
    shares = None
    if len({id(x) for x in samples_ch.values()}) > 1:
        shares = {ch: float(samples_ch[ch].acceptance(ctau).sum()) for ch in open_ch}
    return _MassSignal(
        m, seed, open_ch, samples_ch, brs, ctau, nsig, nsig_grid, acc, extrap, shares
    )


def _extrapolation_rel(record: RecordingSampler, sig: _MassSignal) -> NDArray[np.float64] | None:
    """The extrapolation fit's 1σ relative error of N_sig on the ε grid of one mass
    (:func:`gammastar.yields.extrapolation.nsig.nsig_relative_error` on the nominal draw that
    ``record``, a :class:`~gammastar.yields.extrapolation.samplers.RecordingSampler` around a
    :class:`~gammastar.source.source.Source` with a fiducial split, recorded; ``propagation="log"``:
    the r of the log-normal ``normsys`` from the width of ln N_sig, which a
    detector seeing only the model's tail needs, docs/explanation/reach.md), or ``None`` when the
    source has no fitted extrapolation with a covariance. Decay channels with their own
    samples (``both_daughters``) are combined with their shares of N_sig, Σ_c s_c δ_c: the
    linear errors of one set of fit parameters add at most so (an upper bound, exact when
    the channels' gradients are parallel)."""
    split = record.inner.split
    ex = None if split is None else split.extrapolation
    if ex is None or getattr(ex, "covariance", None) is None or record.last is None:
        return None
    settings = NsigErrorSettings(propagation="log")

    def rel(x: Any) -> NDArray[np.float64]:
        return nsig_relative_error(
            ex, split.fiducial, sig.mass, record.last, x, sig.ctau, settings=settings
        )

    return _by_channel_shares(sig, rel)


def _lambda_rel(
    record: RecordingSampler, sig: _MassSignal, refits: Mapping[str, Any], regions: list[Any]
) -> NDArray[np.float64] | None:
    """The measured λ_θ's 1σ relative error of N_sig on the ε grid of one mass: its moves
    (``yields.json`` ``uncertainties.lambda_theta_refits``, each with its moved fiducial
    ``regions``) carried to N_sig on the nominal draw
    (:func:`gammastar.yields.extrapolation.nsig.nsig_lambda_theta`, the width w of ln N_sig, rel =
    e^w − 1), channels combined as :func:`_extrapolation_rel`; ``None`` without a fiducial
    split's draw."""
    split = record.inner.split
    ex = None if split is None else split.extrapolation
    if ex is None or record.last is None:
        return None

    moves = lambda_refits_at(refits, sig.mass, regions)

    def rel(x: Any) -> NDArray[np.float64]:
        w = nsig_lambda_theta(ex, split.fiducial, sig.mass, record.last, x, sig.ctau, moves)
        return np.expm1(w)

    return _by_channel_shares(sig, rel)


def _by_channel_shares(sig: _MassSignal, rel: Callable[[Any], NDArray]) -> NDArray[np.float64]:
    """``rel(sample)`` of the one sample, or with a sample per channel Σ_c s_c rel_c, s_c the
    channel's share of N_sig per ε."""
    unique = {id(x): (ch, x) for ch, x in sig.samples.items()}
    if len(unique) == 1:
        return rel(next(iter(sig.samples.values())))
    parts = {ch: sig.brs[ch] * x.acceptance(sig.ctau) for ch, x in unique.values()}
    total = sum(parts.values())
    out = np.zeros(sig.ctau.size)
    for ch, x in unique.values():
        share = np.where(total > 0, parts[ch] / np.where(total > 0, total, 1.0), 0.0)
        out += share * rel(x)
    return out


def _ensemble_acceptance(
    ensemble: Sequence[SamplerLike], sampler: SamplerLike, sig: _MassSignal, st: ScanSettings
) -> NDArray[np.float64]:
    """Each ensemble member's acceptance on the ε grid, shape (members, ε), with the A′ seeds
    of the nominal sampler (the nominal's own row reused)."""
    rows = []
    for smp in ensemble:
        if smp is sampler:
            rows.append(sig.acceptance)
            continue
        sc = channel_samples(
            smp, sig.mass, st.samples, st.geometry, seed=sig.seed, channels=sig.channels
        )
        rows.append(_combined(sc, sig.brs, sig.ctau, "acceptance"))
    return np.asarray(rows)


def _relative_spread(members: NDArray) -> NDArray[np.float64]:
    """Standard deviation over the members / their mean per ε (0 where the mean is 0)."""
    mean_k = members.mean(axis=0)
    sd_k = members.std(axis=0, ddof=1)
    return np.where(mean_k > 0, sd_k / np.where(mean_k > 0, mean_k, 1.0), 0.0)


def _kinematic_row(
    eps: NDArray, kin_rel: NDArray, lo: float, hi: float, nsig_grid: NDArray, m: float
) -> dict[str, Any]:
    """The ``kinematic_model`` size for a mass: r at the median expected ε_high of the first
    pass (the exponentially sensitive edge), else at ε_low, else where N_sig peaks."""
    at = {"eps_low": _interp_log(eps, kin_rel, lo), "eps_high": _interp_log(eps, kin_rel, hi)}
    r_used = next(
        (v for v in (at["eps_high"], at["eps_low"]) if v is not None),
        float(kin_rel[int(np.argmax(nsig_grid))]),
    )
    return {"mass": m, "rel": r_used, **at}


def _extrapolation_row(
    eps: NDArray, ex_rel: NDArray, lo: float, hi: float, nsig_grid: NDArray, m: float
) -> dict[str, Any]:
    """The ``extrapolation`` size for a mass: the larger of the fit's N_sig error at the first
    pass's median expected ε_low and ε_high (the extrapolated share is largest at ε_low, the
    long lifetimes; the sensitivity to the energy spectrum at ε_high), else where N_sig
    peaks."""
    at = {"eps_low": _interp_log(eps, ex_rel, lo), "eps_high": _interp_log(eps, ex_rel, hi)}
    vals = [v for v in at.values() if v is not None]
    r_used = max(vals) if vals else float(ex_rel[int(np.argmax(nsig_grid))])
    return {"mass": m, "rel": r_used, **at}


def _mass_model_for(
    sig: _MassSignal,
    i: int,
    masses: NDArray,
    st: ScanSettings,
    mc_stat: float,
    nuisances: dict[str, float],
) -> Model:
    """The per-mass likelihood (:func:`mass_model`) of mass point ``i`` from the settings."""
    return mass_model(
        sig.mass,
        st.model_settings(sig.channels),
        observed=None
        if not st.observed
        else {ch: (v if np.ndim(v) == 0 else np.asarray(v)[i]) for ch, v in st.observed.items()},
        mc_stat=mc_stat,
        mass_range=(float(masses[0]), float(masses[-1])),
        acceptance=sig.shares,
        signal_nuisances=nuisances or None,
    )


def _boundaries(
    lim: LimitResult, sig: _MassSignal, eps: NDArray, st: ScanSettings
) -> dict[str, tuple[float, float]]:
    """ε_low, ε_high of every band where N_sig(ε) = the band's signal count
    (:func:`eps_boundaries`); bands sharing a count share the boundaries."""
    targets = {b: lim.expected[b] for b in BANDS}
    if st.observed:
        targets["obs"] = lim.observed if lim.observed is not None else float("nan")
    targets.update({f"events_{v:g}": v for v in st.event_lines})
    done: dict[float, tuple[float, float]] = {}
    for s_up in targets.values():
        if s_up not in done:
            done[s_up] = eps_boundaries(sig.nsig, eps, s_up, values=sig.nsig_grid)
    return {k: done[s_up] for k, s_up in targets.items()}


@dataclass(frozen=True)
class _MassInputs:
    """One mass point's statistics inputs besides its signal: its index on the mass grid, the
    named nuisances' sizes there, the yield's statistical error, the limit hint, and the
    per-ε relative N_sig errors that the second pass takes at the first pass's boundaries."""

    index: int
    nuisances: dict[str, float]
    mc_stat: float
    hint: float | None
    """The previous mass point's −2σ expected limit (a start for the limit's search)."""
    kin_rel: NDArray | None = None
    """The ensemble's acceptance spread (``kinematic_model``), or ``None``."""
    ex_rel: NDArray | None = None
    """The extrapolation fit's N_sig error (``extrapolation``), or ``None``."""
    lam_rel: NDArray | None = None
    """The measured λ_θ's N_sig error (``acceptance_lambda_theta``), or ``None``."""


@dataclass
class _MassLimit:
    """One mass point's statistics: the likelihood, the limit and the ε boundaries per band
    (of the second pass with an ensemble), the ``kinematic_model`` row, the methods used."""

    model: Model
    limit: LimitResult
    boundaries: dict[str, tuple[float, float]]
    kinematic: dict[str, Any] | None
    methods: set[str]
    seconds: dict[str, float]
    extrapolation: dict[str, Any] | None = None
    lambda_theta: dict[str, Any] | None = None


def _second_pass_rows(
    point: _MassInputs,
    sig: _MassSignal,
    eps: NDArray,
    first: tuple[float, float],
    nuis: dict[str, float],
) -> tuple[dict[str, Any] | None, dict[str, Any] | None, dict[str, Any] | None]:
    """The ``kinematic_model``, ``extrapolation`` and ``acceptance_lambda_theta`` rows at the
    first pass's median expected boundaries ``first``; their sizes replace those in ``nuis``."""
    lo, hi = first
    kin_row = ex_row = lam_row = None
    if point.kin_rel is not None:
        kin_row = _kinematic_row(eps, point.kin_rel, lo, hi, sig.nsig_grid, sig.mass)
        nuis["kinematic_model"] = kin_row["rel"]
    if point.ex_rel is not None and "extrapolation" in nuis:
        ex_row = _extrapolation_row(eps, point.ex_rel, lo, hi, sig.nsig_grid, sig.mass)
        ex_row["rel_yield"] = nuis["extrapolation"]
        nuis["extrapolation"] = ex_row["rel"]
    if point.lam_rel is not None and "acceptance_lambda_theta" in nuis:
        lam_row = _extrapolation_row(eps, point.lam_rel, lo, hi, sig.nsig_grid, sig.mass)
        lam_row["rel_yield"] = nuis["acceptance_lambda_theta"]
        nuis["acceptance_lambda_theta"] = lam_row["rel"]
    return kin_row, ex_row, lam_row


def _mass_limit(
    sig: _MassSignal, point: _MassInputs, masses: NDArray, eps: NDArray, st: ScanSettings
) -> _MassLimit:
    """The limit (:func:`gammastar.reach.stats.upper_limit`) and ε boundaries of one mass point;
    with an ensemble spread ``kin_rel`` or the extrapolation fit's N_sig error ``ex_rel``
    (per ε) a second pass with ``kinematic_model`` (:func:`_kinematic_row`) and
    ``extrapolation`` (:func:`_extrapolation_row`) taken at the first pass's median expected
    boundaries; likewise ``acceptance_lambda_theta`` at N's level from ``lam_rel``."""
    nuis, methods = dict(point.nuisances), set()
    rows: tuple[dict[str, Any] | None, ...] = (None, None, None)
    secs = {"limits": 0.0, "boundaries": 0.0}
    bnd: dict[str, tuple[float, float]] = {}
    two = (
        point.kin_rel is not None
        or (point.ex_rel is not None and "extrapolation" in nuis)
        or (point.lam_rel is not None and "acceptance_lambda_theta" in nuis)
    )
    for kin_pass in (0, 1) if two else (0,):
        if kin_pass == 1:
            rows = _second_pass_rows(point, sig, eps, bnd["0"], nuis)
        t1 = time.perf_counter()
        model = _mass_model_for(sig, point.index, masses, st, point.mc_stat, nuis)
        lim = upper_limit(
            model, cl=st.cl, method=st.method, ntoys=st.ntoys, seed=sig.seed, hint=point.hint
        )
        methods.add(lim.method)
        t2 = time.perf_counter()
        bnd = _boundaries(lim, sig, eps, st)
        secs["limits"] += t2 - t1
        secs["boundaries"] += time.perf_counter() - t2
    return _MassLimit(model, lim, bnd, rows[0], methods, secs, rows[1], rows[2])


def _check_scan(
    limits: list[LimitResult | None],
    masses: NDArray,
    yields: Yields,
    acc_grid: NDArray,
    extrap_grid: NDArray | None,
    source: Source,
) -> None:
    """Refuse a scan with no mass point, no acceptance, or acceptance wholly extrapolated."""
    if not any(lim is not None for lim in limits):
        raise GammastarError(
            "reach: no mass point has both a yield and an open decay channel "
            f"(masses {masses[0]:g}–{masses[-1]:g} GeV, yields {yields.mass_range})"
        )
    if not np.any(acc_grid > 0):
        raise GammastarError(
            "reach: the acceptance is zero on the whole (m, eps) grid: no sampled A' reaches the "
            "detector (check the geometry, and whether the kinematic model covers the angles "
            "and energies it needs: a flow only knows the phase space of its training data)"
        )
    if (
        extrap_grid is not None
        and source.split is not None
        and source.split.inside is not None
        and not np.any(acc_grid - extrap_grid > 1e-12 * acc_grid.max())
    ):
        raise InputError(
            "detector: the acceptance lies wholly outside the data's fiducial region (every "
            "accepted A' comes from the extrapolation model, none from the data); set "
            "reach.flow: null to use the model on purpose, or change the detector"
        )


def _nsig_recorder(
    source: Source, st: ScanSettings
) -> tuple[RecordingSampler | None, list[Any] | None]:
    """The source that records each nominal draw, for the extrapolation fit's error and the
    measured λ_θ's moves carried to N_sig (``None`` when neither is wanted or possible), and
    the moves' fiducial regions (``None`` without λ_θ refits)."""
    nus = st.signal_nuisances or {}
    split = source.split
    ex_model = None if split is None else split.extrapolation
    want_lam = bool(st.lambda_refits) and "acceptance_lambda_theta" in nus
    if ex_model is None or not (
        ("extrapolation" in nus and getattr(ex_model, "covariance", None) is not None) or want_lam
    ):
        return None, None

    record = RecordingSampler(source)
    if not want_lam:
        return record, None

    return record, lambda_regions(st.lambda_refits, split.fiducial)


@dataclass
class _ScanTable:
    """What :func:`scan` collects mass by mass for its :class:`ScanResult`."""

    bounds: dict[str, tuple[NDArray, NDArray]]
    nsig: NDArray[np.float64]
    acceptance: NDArray[np.float64]
    extrapolated: NDArray[np.float64]
    members: NDArray[np.float64]
    """The ensemble members' acceptance, shape (members, mass, ε)."""
    labelled: bool = False
    """Whether the sampler labels extrapolated samples."""
    limits: list[LimitResult | None] = field(default_factory=list)
    models: list[Model | None] = field(default_factory=list)
    seconds: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(("acceptance", "limits", "boundaries", "impact"), 0.0)
    )
    methods: set[str] = field(default_factory=set)
    kinematic: list[dict[str, Any]] = field(default_factory=list)
    extrapolation: list[dict[str, Any]] = field(default_factory=list)
    lambda_theta: list[dict[str, Any]] = field(default_factory=list)
    impact: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def empty(cls, masses: NDArray, eps: NDArray, keys: list[str], members: int) -> _ScanTable:
        """NaN boundaries for the bands ``keys``, zero grids, ``members`` ensemble rows."""
        grid = (masses.size, eps.size)
        return cls(
            bounds={k: (np.full(masses.size, np.nan), np.full(masses.size, np.nan)) for k in keys},
            nsig=np.zeros(grid),
            acceptance=np.zeros(grid),
            extrapolated=np.zeros(grid),
            members=np.zeros((members, *grid)),
        )

    def skip(self) -> None:
        """A mass point without a yield or an open channel."""
        self.limits.append(None)
        self.models.append(None)

    def hint(self) -> float | None:
        """The last limit's −2σ expected value (``None`` before the first)."""
        return next((x.expected["-2"] for x in reversed(self.limits) if x is not None), None)

    def add_signal(self, i: int, sig: _MassSignal) -> None:
        """Mass point ``i``'s acceptance and N_sig on the ε grid."""
        self.acceptance[i], self.nsig[i] = sig.acceptance, sig.nsig_grid
        if sig.extrapolated is not None:
            self.labelled = True
            self.extrapolated[i] = sig.extrapolated

    def add_limit(self, i: int, ml: _MassLimit) -> None:
        """Mass point ``i``'s limit, boundaries, second-pass rows, methods and timings."""
        for k, (lo, hi) in ml.boundaries.items():
            self.bounds[k][0][i], self.bounds[k][1][i] = lo, hi
        for rows, row in (
            (self.kinematic, ml.kinematic),
            (self.extrapolation, ml.extrapolation),
            (self.lambda_theta, ml.lambda_theta),
        ):
            if row is not None:
                rows.append(row)
        self.methods |= ml.methods
        for k, v in ml.seconds.items():
            self.seconds[k] += v
        self.limits.append(ml.limit)
        self.models.append(ml.model)

    def add_impact(self, i: int, ml: _MassLimit, sig: _MassSignal, eps: NDArray, cl: float) -> None:
        """Mass point ``i``'s impact row (:func:`_impact_row`) when its limit is finite."""
        t = time.perf_counter()
        if np.isfinite(ml.limit.expected["0"]):
            lo, hi = self.bounds["0"][0][i], self.bounds["0"][1][i]
            self.impact.append(_impact_row(ml.model, ml.limit, sig, eps, lo, hi, cl))
        self.seconds["impact"] += time.perf_counter() - t

    def result(self, masses: NDArray, eps: NDArray, ensemble: bool) -> ScanResult:
        """The :class:`ScanResult` (``impact`` timed only where computed)."""
        if not self.impact:
            del self.seconds["impact"]
        return ScanResult(
            masses=masses,
            eps=eps,
            limits=self.limits,
            boundaries=self.bounds,
            nsig=self.nsig,
            acceptance=self.acceptance,
            models=self.models,
            acceptance_extrapolated=self.extrapolated if self.labelled else None,
            method="+".join(sorted(self.methods)),
            seconds=self.seconds,
            impact=_impact_table(self.impact) if self.impact else None,
            acceptance_members=self.members if ensemble else None,
            kinematic=self.kinematic or None,
            extrapolation_nsig=self.extrapolation or None,
            lambda_theta_nsig=self.lambda_theta or None,
        )


def scan(
    masses: ArrayLike,
    eps: ArrayLike,
    *,
    sampler: SamplerLike,
    settings: ScanSettings,
    ensemble: Sequence[SamplerLike] | None = None,
) -> ScanResult:
    """Expected (and observed) exclusion on a (mass, ε) grid with the efficient ε method.

    Per mass: the signal (:func:`_mass_signal`), the ensemble spread, the limit and the ε
    boundaries (:func:`_mass_limit`: one pass, two with an ensemble or N_sig-level errors), the
    impact at ``settings.impact_points`` evenly spaced masses
    (:func:`gammastar.reach.impact.impact`: each nuisance fixed at ±1σ).

    Arguments:
        masses, eps: the grid (ε sorted here).
        sampler: the nominal A′ kinematics (a :class:`~gammastar.source.source.Source` or a
            kinematics model).
        settings: the signal and statistics inputs (:class:`ScanSettings`;
            :meth:`ScanSettings.from_config` for the ``reach`` stage).
        ensemble: ≥ 2 samplers (flow ensemble members, the nominal ``sampler`` among them or
            not) whose acceptance spread (standard deviation over the members / their mean, per
            (m, ε)) enters each mass's likelihood as the signal nuisance ``kinematic_model``,
            taken at the median expected ε_high of a first pass (else ε_low) and the limit and
            boundaries recomputed with it; or ``None``.

    Returns:
        The :class:`ScanResult`.
    """
    st = settings
    masses = np.atleast_1d(np.asarray(masses, dtype=np.float64))
    eps = np.sort(np.atleast_1d(np.asarray(eps, dtype=np.float64)))
    st.check(masses)
    ensemble = list(ensemble or [])
    if len(ensemble) == 1:
        raise GammastarError("reach: a kinematic-model ensemble needs at least 2 members")
    seeds = np.random.SeedSequence(st.seed).spawn(masses.size)
    source = Source.from_model(sampler)
    record, lam_regions = _nsig_recorder(source, st)
    impact_at = set(np.linspace(0, masses.size - 1, st.impact_points).round().astype(int).tolist())
    y, rel = st.yields.at(masses)
    table = _ScanTable.empty(masses, eps, st.band_keys(), len(ensemble))
    for i, m in enumerate(masses):
        open_ch = tuple(ch for ch in st.channels if m > darkphoton.LEPTON_CHANNELS[ch].threshold)
        if not open_ch or not np.isfinite(y[i]):
            table.skip()
            continue
        t0 = time.perf_counter()
        s = int(seeds[i].generate_state(1)[0])
        sig = _mass_signal(record or source, float(m), float(y[i]), s, eps, st, open_ch)
        table.add_signal(i, sig)
        kin_rel = None
        if ensemble:
            table.members[:, i] = _ensemble_acceptance(ensemble, sampler, sig, st)
            kin_rel = _relative_spread(table.members[:, i])
        table.seconds["acceptance"] += time.perf_counter() - t0
        point = _MassInputs(
            index=i,
            nuisances={k: float(np.asarray(v)[i]) for k, v in (st.signal_nuisances or {}).items()},
            mc_stat=float(rel[i]) if np.isfinite(rel[i]) else 0.0,
            hint=table.hint(),
            kin_rel=kin_rel,
            ex_rel=_extrapolation_rel(record, sig) if record is not None else None,
            lam_rel=None
            if lam_regions is None
            else _lambda_rel(record, sig, st.lambda_refits, lam_regions),  # type: ignore[arg-type]
        )
        ml = _mass_limit(sig, point, masses, eps, st)
        table.add_limit(i, ml)
        if i in impact_at:
            table.add_impact(i, ml, sig, eps, st.cl)
    extrap = table.extrapolated if table.labelled else None
    _check_scan(table.limits, masses, st.yields, table.acceptance, extrap, source)
    return table.result(masses, eps, bool(ensemble))


scan_with = scan
"""The same function as :func:`scan` (the name :func:`run_reach` and the docs use)."""


def _impact_row(
    model: Model, lim: LimitResult, sig: _MassSignal, eps: NDArray, lo: float, hi: float, cl: float
) -> dict[str, Any]:
    """One mass's row of the impact table: each nuisance fixed at ±1σ
    (:func:`gammastar.reach.impact.impact`)."""

    return {
        "mass": sig.mass,
        "s_up": lim.expected["0"],
        "eps_low": lo,
        "eps_high": hi,
        "shifts": impact(
            model,
            lambda s: eps_boundaries(sig.nsig, eps, s, values=sig.nsig_grid),
            cl=cl,
            method=lim.method,
            seed=sig.seed,
            s_up=lim.expected["0"],
        ),
    }


def _interp_log(eps: NDArray, values: NDArray, at: float) -> float | None:
    """``values`` (on the ε grid) at ε = ``at``, linear in log ε; ``None`` for a NaN ``at``."""
    if not np.isfinite(at):
        return None
    return float(np.interp(math.log(at), np.log(eps), values))


def _impact_table(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """``reach.json`` ``impact``: per nuisance and ±1σ, s_up and ε_low/ε_high at each mass."""

    def num(v: float | None) -> float | None:
        return None if v is None or not np.isfinite(v) else float(v)

    names = list(dict.fromkeys(n for r in rows for n in r["shifts"]))
    table: dict[str, Any] = {
        "mass": [r["mass"] for r in rows],
        "nominal": {k: [num(r[k]) for r in rows] for k in ("s_up", "eps_low", "eps_high")},
        "nuisances": {},
        "note": "median expected limit with one nuisance fixed at +1/-1 sigma and the others "
        "integrated (gammastar.reach.impact.impact); s_up in events of the nominal N_sig",
    }
    for n in names:
        table["nuisances"][n] = {
            side: {
                k: [num(r["shifts"].get(n, {}).get(side, {}).get(k)) for r in rows]
                for k in ("s_up", "eps_low", "eps_high")
            }
            for side in ("+1", "-1")
        }
    return table


# --------------------------------------------------------------------------- plots
def _polygon(m: NDArray, lo: NDArray, hi: NDArray) -> list[tuple[NDArray, NDArray]]:
    ok = np.isfinite(lo) & np.isfinite(hi)
    out, start = [], None
    for k in range(m.size + 1):
        if k < m.size and ok[k]:
            if start is None:
                start = k
        elif start is not None:
            sl = slice(start, k)
            xs = np.concatenate([m[sl], m[sl][::-1]])
            ys = np.concatenate([lo[sl], hi[sl][::-1]])
            out.append((xs, ys))
            start = None
    return out


def plot_reach(
    result: ScanResult,
    path: str | Path | None = None,
    *,
    title: str = "",
    bounds: Sequence[tuple[Any, str]] = (),
):
    """Brazil-band exclusion contour in (m_A′, ε) with the fixed-event-count lines, and the
    published ``bounds`` (``(Bound, style)`` pairs of
    :func:`gammastar.reach.bounds.read_config_bounds`) over the bands, in the package's
    figure style (:func:`gammastar.core.figures.figure_style`).

    Where the ±1σ, ±2σ bands coincide with the median (:func:`bands_coincide`: no expected
    background, so that no observation but zero events is expected and every quantile of the
    limit is the same) they are neither drawn nor in the legend; the legend says so instead.
    """
    with figure_style():
        return _plot_reach(result, path, title, bounds)


BANDS_RTOL = 1e-6
"""Relative difference of the ε boundaries below which a ±1σ/±2σ band is the median's own
line: orders of magnitude below what a log axis spanning decades can show."""

BANDS_COINCIDE_NOTE = "expected ±1σ, ±2σ coincide\nwith the median: no background"
"""The legend's line in place of the band entries when :func:`bands_coincide`."""


def bands_coincide(result: ScanResult, rtol: float = BANDS_RTOL) -> bool:
    """Whether the ±1σ and ±2σ expected boundaries equal the median's at every mass (within
    ``rtol``; masses not excluded agree when both are): true at zero background, where the
    only expected observation is n = 0 and all quantiles of the limit are one number (Cowan
    et al., Eur. Phys. J. C 71 (2011) 1554, the expected-limit bands as quantiles of the
    limit's distribution under the background-only hypothesis). False when the median
    excludes nothing (nothing to coincide with)."""
    lo0, hi0 = (np.asarray(a, dtype=float) for a in result.boundaries["0"])
    if not np.any(np.isfinite(lo0)):
        return False
    for band in ("-2", "-1", "+1", "+2"):
        if band not in result.boundaries:
            continue
        for edge, ref in zip(result.boundaries[band], (lo0, hi0), strict=True):
            if not np.allclose(np.asarray(edge, float), ref, rtol=rtol, atol=0.0, equal_nan=True):
                return False
    return True


def _eps_view(result: ScanResult, bounds: Sequence[tuple[Any, str]]) -> tuple[float, float]:
    """The ε range of the reach figure: the scan's, widened to show the published bounds in
    its mass range (a factor 2 beyond their extreme ε, at most up to ε = 1)."""
    lo, hi = float(result.eps[0]), float(result.eps[-1])
    m = result.masses
    for bound, _ in bounds:
        inside = (bound.mass >= m[0]) & (bound.mass <= m[-1])
        if not inside.any():
            continue
        top = bound.eps if bound.eps_high is None else bound.eps_high
        lo = min(lo, 0.5 * float(bound.eps[inside].min()))
        hi = min(1.0, max(hi, 2.0 * float(top[inside].max())))
    return lo, hi


def _plot_reach(
    result: ScanResult, path: str | Path | None, title: str, bounds: Sequence[tuple[Any, str]] = ()
):
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogLocator, ScalarFormatter

    from gammastar.reach.bounds import draw_bounds

    fig, ax = plt.subplots(figsize=(8, 6))
    m = result.masses
    collapsed = bands_coincide(result)
    colors = {"-2": "#FFDF00", "-1": "#00CC00", "+1": "#FFDF00", "+2": "white"}
    for band in () if collapsed else ("-2", "-1", "+1", "+2"):
        for xs, ys in _polygon(m, *result.boundaries[band]):
            ax.fill(xs, ys, color=colors[band], lw=0, label=None)
    bound_handles = draw_bounds(ax, bounds)  # over the bands, under the contours
    for xs, ys in _polygon(m, *result.boundaries["0"]):
        ax.plot(np.append(xs, xs[0]), np.append(ys, ys[0]), "k--", lw=1.2)
    if "obs" in result.boundaries:
        for xs, ys in _polygon(m, *result.boundaries["obs"]):
            ax.plot(np.append(xs, xs[0]), np.append(ys, ys[0]), "k-", lw=1.5)
    styles = [":", "-."]
    for k, key in enumerate(sorted(x for x in result.boundaries if x.startswith("events_"))):
        for xs, ys in _polygon(m, *result.boundaries[key]):
            ax.plot(
                np.append(xs, xs[0]),
                np.append(ys, ys[0]),
                color="C0" if k == 0 else "C3",
                ls=styles[k % 2],
                lw=1,
            )
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles: list[Any] = [Line2D([], [], color="k", ls="--", label="expected (median)")]
    if collapsed:  # nothing to see: a line of text (no marker) says why
        handles.append(Patch(visible=False, label=BANDS_COINCIDE_NOTE))
    else:
        handles += [
            Patch(color="#00CC00", label=r"expected $\pm1\sigma$"),
            Patch(color="#FFDF00", label=r"expected $\pm2\sigma$"),
        ]
    if "obs" in result.boundaries:
        handles.append(Line2D([], [], color="k", label="observed"))
    for k, key in enumerate(sorted(x for x in result.boundaries if x.startswith("events_"))):
        handles.append(
            Line2D(
                [],
                [],
                color="C0" if k == 0 else "C3",
                ls=styles[k % 2],
                label=f"{key.split('_', 1)[1]} events",
            )
        )
    handles += bound_handles
    # with published bounds the upper right is rarely empty: let matplotlib place it
    ax.legend(
        handles=handles,
        fontsize=11 if bound_handles else 14,
        loc="best" if bound_handles else "upper right",
    )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(plt.NullFormatter())
    ax.set_xlim(m[0], m[-1])
    ax.set_ylim(*_eps_view(result, bounds))
    ax.set_xlabel(r"$m_{A'}$ [GeV]")
    ax.set_ylabel("kinetic mixing ε")
    if title:
        ax.set_title(title, fontsize=16)
    if path is not None:

        with atomic_path(path, force=True) as tmp:
            fig.savefig(tmp, format=str(path).rsplit(".", 1)[-1], bbox_inches="tight", dpi=110)
    return fig


# --------------------------------------------------------------------------- stage
def _bands_json(result: ScanResult, key: str) -> dict[str, Any]:
    lo, hi = result.boundaries[key]
    return {
        "mass": result.masses.tolist(),
        "eps_low": [None if not np.isfinite(v) else float(v) for v in lo],
        "eps_high": [None if not np.isfinite(v) else float(v) for v in hi],
    }


def _extrapolation_json(res: ScanResult, mode: str, yields: Yields) -> dict[str, Any] | None:
    """Share of N_sig from outside the data's fiducial region: per mass at the expected
    exclusion's ε boundaries and its largest value inside the excluded region."""
    if yields.extrapolation is None and res.acceptance_extrapolated is None:
        return None
    out: dict[str, Any] = {
        "mode": mode,
        "model": None if yields.extrapolation is None else yields.extrapolation.get("model"),
    }
    if res.acceptance_extrapolated is None:
        out["note"] = "fiducial region only: no extrapolated signal"
        return out
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(res.acceptance > 0, res.acceptance_extrapolated / res.acceptance, np.nan)
    lo, hi = res.boundaries["0"]
    le = np.log(res.eps)

    def at(i: int, e: float) -> float | None:
        if not np.isfinite(e):
            return None
        v = float(np.interp(np.log(e), le, frac[i]))
        return v if np.isfinite(v) else None

    in_excl = []
    for i in range(res.masses.size):
        k = (res.eps >= lo[i]) & (res.eps <= hi[i]) if np.isfinite(lo[i]) else np.zeros(0, bool)
        f = frac[i][k] if k.size else np.array([])
        in_excl.append(float(np.nanmax(f)) if f.size and np.any(np.isfinite(f)) else None)
    out.update(
        mass=res.masses.tolist(),
        fraction_at_eps_low=[at(i, lo[i]) for i in range(res.masses.size)],
        fraction_at_eps_high=[at(i, hi[i]) for i in range(res.masses.size)],
        max_fraction_in_excluded_region=in_excl,
        note="share of the expected signal from A' kinematics outside the data's fiducial "
        "region (the yields' fitted model): extrapolated, not measured",
    )
    return out


def check_config(config: Any) -> None:
    """Refuse a reach whose statistics inputs are not all given (before anything is written).

    Raises:
        ConfigError: one line naming the first missing ``reach`` key
            (:meth:`gammastar.config.ReachConfig.missing`).
    """
    missing = config.reach.missing()
    if missing:
        key, what = missing[0]
        raise ConfigError(
            f"{config.source or '<config>'}: reach.{key}: not given ({what}); the reach has no "
            "experiment-specific defaults: state it, 0 on purpose where it does not apply"
        )
    from gammastar.reach.bounds import read_config_bounds

    read_config_bounds(config)  # a bad bound file stops the reach before the scan


@dataclass
class ReachInputs:
    """What the ``reach`` stage reads and resolves before the scan (:func:`reach_inputs`)."""

    output: Path
    yields_path: Path
    yields: Yields
    yield_scale: float
    yield_scale_info: dict[str, Any]
    n_pot: float
    """The facility's protons on target (before the yield scale)."""
    source: Source
    """The A′ production (the yields above and the kinematics, :class:`Source`)."""
    geometry: Geometry
    masses: NDArray[np.float64]
    eps: NDArray[np.float64]
    observed: dict[str, NDArray] | None
    dark: darkphoton.DarkSector | None
    nuisances: dict[str, NDArray] | None
    nuisance_record: dict[str, Any] | None
    ensemble: list[Source] | None
    ensemble_seeds: list[int] | None


def _reach_yields(config: Any) -> tuple[Path, Yields]:
    """``reach.yields`` (its fiducial part only with ``reach.extrapolation: refuse``)."""
    path = config.resolve(config.reach.yields)
    yields = load_yields(path)
    if yields.extrapolation is not None and config.reach.extrapolation == "refuse":
        check_refuse(config, yields)
        yields = load_yields(path, fiducial=True)
    return path, yields


def _reach_n_pot(config: Any, yields: Yields) -> float:
    """``reach.n_pot``, else ``beam.n_pot``, else (``from_input``) the yields' ``meta.n_pot``.

    Raises:
        GammastarError: none of them is a positive number.
    """
    n_pot = config.reach.n_pot if config.reach.n_pot is not None else config.beam.n_pot
    if not isinstance(n_pot, int | float):  # beam.n_pot: from_input → the data's own exposure
        n_pot = yields.meta.get("n_pot")
    if not isinstance(n_pot, int | float) or not n_pot > 0:
        raise GammastarError(
            f"{config.source or 'config'}: reach.n_pot or beam.n_pot must be a number for the "
            "reach (the facility's protons on target)"
        )
    return float(n_pot)


def _reach_masses(config: Any, yields: Yields, source: Source) -> NDArray[np.float64]:
    """The mass grid: ``reach.mass_min``/``mass_max`` (default: the yields' range within the
    flow's), ``reach.mass_points`` points.

    Raises:
        InputError: the range leaves the flow's mass range.
        GammastarError: the range is empty.
    """
    rc = config.reach
    lo, hi = yields.mass_range
    frange = source.mass_range
    if frange is not None:
        lo, hi = max(lo, frange[0]), min(hi, frange[1])
    m_lo = rc.mass_min if rc.mass_min is not None else lo
    m_hi = rc.mass_max if rc.mass_max is not None else hi
    if frange is not None and (m_lo < frange[0] - 1e-12 or m_hi > frange[1] + 1e-12):
        raise InputError(
            f"reach mass range [{m_lo:g}, {m_hi:g}] GeV lies outside the flow's mass range "
            f"[{frange[0]:g}, {frange[1]:g}] GeV"
        )
    if m_hi <= m_lo:
        raise GammastarError(f"reach: empty mass range [{m_lo:g}, {m_hi:g}] GeV")
    return np.linspace(m_lo, m_hi, rc.mass_points)


def reach_inputs(
    config: Any, *, source: Any = None, output: str | Path | None = None
) -> ReachInputs:
    """Read and resolve everything the reach scan needs from the config (nothing written).

    Arguments:
        config: the :class:`~gammastar.config.AnalysisConfig`.
        source: the A′ kinematics (a :class:`Source` or a kinematics model, with the config's
            yields; default: the config's, :meth:`Source.from_config`).
        output: run directory (default: the config's).

    Returns:
        The :class:`ReachInputs`.
    """
    rc = config.reach
    yields_path, yields = _reach_yields(config)
    scale, scale_info = resolve_yield_scale(config, yields)
    n_pot = _reach_n_pot(config, yields)
    if source is None:
        source = Source.from_config(config, yields)
    else:
        source = Source.from_model(source, yields)
    masses = _reach_masses(config, yields, source)
    observed = None
    if rc.observed is not None:
        observed = observed_counts(
            rc.observed,
            masses,
            template=rc.template,
            mass_resolution=rc.mass_resolution,
            window_sigmas=rc.mass_window_sigmas,
            mass_bins=rc.mass_bins,
            resolve=config.resolve,
        )

    nuis, nuis_record = with_target_nuisance(
        *reach_nuisances(config, yields, masses), scale_info, masses
    )
    ensemble, ensemble_seeds = None, None
    if config.uncertainties.kinematic_model:

        ensemble, ensemble_seeds = ensemble_sources(config, yields, source)
    return ReachInputs(
        output=Path(output) if output is not None else config.output_dir,
        yields_path=yields_path,
        yields=yields,
        yield_scale=scale,
        yield_scale_info=scale_info,
        n_pot=n_pot,
        source=source,
        geometry=Geometry.from_config(config.detector),
        masses=masses,
        eps=np.geomspace(rc.eps_min, rc.eps_max, rc.eps_points),
        observed=observed,
        dark=darkphoton.DarkSector(rc.dark_alpha, rc.dark_mass) if rc.dark_alpha > 0 else None,
        nuisances=nuis,
        nuisance_record=nuis_record,
        ensemble=ensemble,
        ensemble_seeds=ensemble_seeds,
    )


def _record_kinematic(inp: ReachInputs, res: ScanResult) -> None:
    """Add the ``kinematic_model`` nuisance the scan measured to ``inp.nuisance_record``."""
    if not res.kinematic or inp.nuisance_record is None:
        return
    n, k = inp.masses.size, len(inp.ensemble or [])
    kin = inp.nuisance_record["nuisances"]["kinematic_model"] = {
        "kind": "normsys",
        "rel": [None] * n,
        "origin": f"acceptance spread (std/mean) over the {k} members of "
        f"the flow ensemble (training seeds {inp.ensemble_seeds}), at the median expected "
        "eps_high of a first pass (else eps_low)",
        "correlation": "one parameter shared by all channels and mass points",
        "at_eps_low": [None] * n,
        "at_eps_high": [None] * n,
        # the standard deviation of k draws is itself uncertain (Gaussian: 1/sqrt(2(k-1)));
        # train >= 10 replicas for a size known to ±24% (docs/validation/uncertainties-and-coverage.md)
        "members": k,
        "size_rel_err": 1.0 / math.sqrt(2 * (k - 1)) if k > 1 else None,
    }
    for row in res.kinematic:
        j = int(np.argmin(np.abs(inp.masses - row["mass"])))
        kin["rel"][j], kin["at_eps_low"][j] = row["rel"], row["eps_low"]
        kin["at_eps_high"][j] = row["eps_high"]


def _record_extrapolation(inp: ReachInputs, res: ScanResult) -> None:
    """Replace the yield-level ``extrapolation`` and ``acceptance_lambda_theta`` sizes in
    ``inp.nuisance_record`` by the N_sig-level ones the scan used (:func:`_extrapolation_row`),
    keeping the former as ``rel_yield``."""
    _record_nsig_level(inp, res.extrapolation_nsig, "extrapolation", (
        "the extrapolation fit's sandwich covariance carried to N_sig "
        "(gammastar.yields.extrapolation.nsig.nsig_relative_error: the model's acceptance outside the "
        "fiducial region moves with f_F; propagation 'log': the 1 sigma w of ln N_sig from "
        "N_sig recomputed at +-1 sigma along the covariance's principal axes, rel = e^w - 1), "
        "the larger of its values at the median expected eps_low and eps_high of a first "
        "pass; rel_yield: the yield's delta f_F / f_F"
    ))  # fmt: skip
    _record_nsig_level(inp, res.lambda_theta_nsig, "acceptance_lambda_theta", (
        "the measured lambda_theta moved per polarisation bin by +-1 sigma, the fiducial "
        "region following it, carried to N_sig (gammastar.yields.extrapolation.nsig.nsig_lambda_theta: "
        "the fiducial yield's change, the extrapolation refitted in the moved region, the "
        "A' samples reweighted; the width w of ln N_sig, rel = e^w - 1), the larger of its "
        "values at the median expected eps_low and eps_high of a first pass; rel_yield: the "
        "fiducial yield's change (yields.json)"
    ))  # fmt: skip


def _record_nsig_level(
    inp: ReachInputs, rows: list[dict[str, Any]] | None, name: str, origin: str
) -> None:
    """Nuisance ``name``'s record at N_sig's level from the scan's ``rows``."""
    if not rows or inp.nuisance_record is None:
        return
    rec = inp.nuisance_record["nuisances"].get(name)
    if rec is None:
        return
    n = inp.masses.size
    rec["rel_yield"] = list(rec["rel"])
    rec["at_eps_low"], rec["at_eps_high"] = [None] * n, [None] * n
    rec["origin"] = origin
    for row in rows:
        j = int(np.argmin(np.abs(inp.masses - row["mass"])))
        rec["rel"][j], rec["at_eps_low"][j] = row["rel"], row["eps_low"]
        rec["at_eps_high"][j] = row["eps_high"]


def _observed_source(v: Any) -> str:
    """How one channel's observed counts were given (``reach.observed.<channel>``)."""
    if getattr(v, "histogram", None):
        return "histogram " + v.histogram
    if getattr(v, "masses", None) is not None:
        return "event masses"
    return "per mass point" if isinstance(v, list) else "one count for every mass point"


def _statistics_meta(config: Any, inp: ReachInputs) -> dict[str, Any]:
    """``reach.json`` ``meta.statistics``: the statistics inputs as used."""
    rc = config.reach
    observed = None
    if inp.observed is not None:
        n = inp.masses.size
        observed = {
            ch: np.asarray(v).reshape(n, -1).sum(axis=1).round().astype(int).tolist()
            for ch, v in inp.observed.items()
        }
    return {
        "background": dict(rc.background),
        "background_kappa": dict(rc.background_kappa),
        "efficiency_uncertainty": rc.efficiency_uncertainty,
        "n_pot_rel_uncertainty": rc.n_pot_rel_uncertainty,
        "template": rc.template,
        "mass_resolution": rc.mass_resolution,
        "window_sigmas": rc.mass_window_sigmas,
        "observed_counts": observed,
        "observed_source": None
        if rc.observed is None
        else {ch: _observed_source(v) for ch, v in rc.observed.items()},
    }


def reach_meta(config: Any, inp: ReachInputs, res: ScanResult, wall: float) -> dict[str, Any]:
    """``reach.json`` ``meta`` (also the workspaces index's): provenance, method, inputs."""
    rc = config.reach
    return make_meta(
        config_sha256=config.section_sha256("beam", "detector", "reach", "seed"),
        seed=config.seed,
        inputs=[inp.yields_path],
        stage="reach",
        method=res.method,
        method_note=(
            "exact: hybrid CLs (Poisson sums exact, log-normal nuisances by quadrature); "
            "toys: pyhf pseudo-experiments; asymptotic: pyhf asymptotic formulae"
        ),
        eps_method="per-mass upper limit on the signal count, eps boundaries where "
        "N_sig(m, eps) = s_up(m) (see gammastar.reach.stage)",
        n_pot=inp.n_pot,
        yield_scale=inp.yield_scale,
        **inp.yield_scale_info,
        n_pot_rel_uncertainty=rc.n_pot_rel_uncertainty,
        statistics=_statistics_meta(config, inp),
        channels=list(rc.channels),
        sampler=inp.source.description,
        geometry=inp.geometry.model_dump(),
        yields_n_pot=inp.yields.meta.get("n_pot"),
        seconds=dict(res.seconds, total=wall),
        workspaces_poi="n_signal = expected signal events (template normalised to 1 event)",
        **(
            {"kinematic_ensemble": {"members": len(inp.ensemble), "seeds": inp.ensemble_seeds}}
            if inp.ensemble
            else {}
        ),
    )


def reach_document(
    config: Any, inp: ReachInputs, res: ScanResult, meta: dict[str, Any]
) -> dict[str, Any]:
    """The ``reach.json`` content (public contract, docs/reference/outputs.md) of a scan."""
    rc = config.reach
    limits_json = {
        "mass": res.masses.tolist(),
        **{b: [None if lim is None else lim.expected[b] for lim in res.limits] for b in BANDS},
        "observed": [None if lim is None else lim.observed for lim in res.limits],
        "method": [None if lim is None else lim.method for lim in res.limits],
    }
    nuis_record, impact = inp.nuisance_record, res.impact
    return {
        "cl": rc.cl,
        "expected": _bands_json(res, "0"),
        "bands": {b: _bands_json(res, b) for b in ("-2", "-1", "+1", "+2")},
        **({"observed": _bands_json(res, "obs")} if "obs" in res.boundaries else {}),
        "event_lines": {
            k.split("_", 1)[1]: _bands_json(res, k)
            for k in res.boundaries
            if k.startswith("events_")
        },
        "signal_limit": limits_json,
        "extrapolation": _extrapolation_json(res, rc.extrapolation, inp.yields),
        **({"nuisances": nuis_record} if nuis_record is not None else {}),
        **({"impact": impact} if impact is not None else {}),
        "meta": meta,
    }


def _acceptance_arrays(res: ScanResult, dark: darkphoton.DarkSector | None) -> dict[str, NDArray]:
    """``acceptance.npz``'s arrays."""
    members = {}
    if res.acceptance_members is not None:
        members = {
            "acceptance_members": res.acceptance_members,
            "acceptance_spread": res.acceptance_members.std(axis=0, ddof=1),
        }
    return {
        "mass": res.masses,
        "eps": res.eps,
        "acceptance": res.acceptance,
        "nsig": res.nsig,
        "ctau": darkphoton.ctau(res.masses[:, None], res.eps[None, :], dark=dark),
        "acceptance_extrapolated": (
            res.acceptance_extrapolated
            if res.acceptance_extrapolated is not None
            else np.zeros_like(res.acceptance)
        ),
        **members,
    }


def write_reach(
    out: Path,
    res: ScanResult,
    reach: dict[str, Any],
    dark: darkphoton.DarkSector | None,
    *,
    force: bool,
) -> None:
    """Write the workspaces, their index, ``acceptance.npz`` and ``reach.json`` as one set,
    ``reach.json`` (the mark of a finished run) renamed into place last."""

    docs: dict[str, Any] = {}
    index = []
    for m, model in zip(res.masses, res.models, strict=True):
        if model is None:
            continue
        name = rundir.workspace_name(m)
        docs[name] = build_spec(model)
        index.append({"mass": float(m), "file": name})
    rd = rundir.RunDir(out)
    docs[rundir.WORKSPACES_INDEX] = {"workspaces": index, "meta": reach["meta"]}
    names = [*docs, rundir.ACCEPTANCE, rundir.REACH]
    with atomic_paths([out / n for n in names], force=force) as tmps:
        for tmp, (name, doc) in zip(tmps[: len(docs)], docs.items(), strict=True):
            tmp.write_text(rd.json_text(name, doc))  # the index schema-checked
        with open(tmps[-2], "wb") as f:
            np.savez(f, **_acceptance_arrays(res, dark))
        tmps[-1].write_text(rd.json_text(rundir.REACH, reach))  # schema-checked


def plot_reach_figures(
    config: Any,
    out: Path,
    res: ScanResult,
    *,
    closure: dict[str, Any] | None = None,
    nuisances: dict[str, Any] | None = None,
) -> None:
    """``figures/reach.png``, ``figures/reach_impact.png`` (with an impact table),
    ``figures/aprime_decays.png`` and ``figures/reach_flow_closure.png`` (with a
    ``flow_closure`` record that compared something)."""
    import matplotlib.pyplot as plt

    rd = rundir.RunDir(out)
    reach_png, decays_png, impact_png, closure_png = map(rd.path, rundir.stage_figures("reach"))
    title = f"{config.name}: {config.reach.cl:.0%} CL, {res.method}"
    from gammastar.reach.bounds import read_config_bounds

    plt.close(plot_reach(res, reach_png, title=title, bounds=read_config_bounds(config)))
    if res.impact is not None:

        plt.close(plot_impact(res.impact, impact_png, title=f"{config.name}: impact on s_up"))
    plt.close(darkphoton.plot_decays(str(decays_png)))
    if closure is not None and closure.get("n_compared"):

        kin = None
        if nuisances is not None and "kinematic_model" in nuisances.get("nuisances", {}):
            kin = {"mass": nuisances["mass"], **nuisances["nuisances"]["kinematic_model"]}
        title = f"{config.name}: the flow against its pairs where the detector looks"
        plt.close(plot_closure(closure, closure_png, kinematic=kin, title=title))


@dataclass(frozen=True)
class ReachResult(StageResult):
    """What :func:`run_reach` wrote: ``reach.json`` (``path``), its ``document``, and the
    ``scan`` (:class:`ScanResult`) it was made from."""

    scan: ScanResult | None = None


def run_reach(
    config: AnalysisConfig,
    *,
    force: bool = False,
    source: Source | SamplerLike | None = None,
    output: str | Path | None = None,
) -> ReachResult:
    """The ``reach`` stage: read yields and the flow, write ``reach.json``, ``workspaces/``,
    ``acceptance.npz``, ``figures/reach.png`` and ``figures/aprime_decays.png`` in the run directory.

    A thin orchestration: :func:`reach_inputs`, :meth:`ScanSettings.from_config`,
    :func:`scan_with`, :func:`reach_meta`, :func:`reach_document`, :func:`write_reach`,
    :func:`plot_reach_figures`.

    Arguments:
        config: the :class:`~gammastar.config.AnalysisConfig`.
        force: overwrite existing outputs.
        source: the A′ kinematics (a :class:`Source` or a kinematics model, with the config's
            yields; default: the config's, :meth:`Source.from_config`).
        output: run directory (default: the config's).

    Returns:
        A :class:`ReachResult`: ``reach.json``, its document and the scan.
    """
    check_config(config)
    out = Path(output) if output is not None else config.output_dir
    for name in OUTPUTS:
        check_writable(out / name, force)
    inp = reach_inputs(config, source=source, output=out)
    t0 = time.perf_counter()
    res = scan_with(
        inp.masses,
        inp.eps,
        sampler=inp.source,
        settings=ScanSettings.from_config(config, inp),
        ensemble=inp.ensemble,
    )
    _record_kinematic(inp, res)
    _record_extrapolation(inp, res)
    closure = None
    if config.reach.flow_closure and source is None:  # the config's flow, not a given source

        t1 = time.perf_counter()
        try:
            closure = closure_record(config, inp, res)
        except GammastarError as exc:  # a check: it never stops the reach
            closure_log.warning("reach: the flow's closure was not computed: %s", exc)
            closure = {"skipped": str(exc)}
        res.seconds["flow_closure"] = time.perf_counter() - t1
    meta = reach_meta(config, inp, res, time.perf_counter() - t0)
    reach = reach_document(config, inp, res, meta)
    if closure is not None:
        reach["flow_closure"] = closure
    write_reach(out, res, reach, inp.dark, force=force)
    plot_reach_figures(config, out, res, closure=closure, nuisances=inp.nuisance_record)
    return ReachResult(out / rundir.REACH, reach, res)
