"""The (m, ε) scan: per mass the signal's acceptance through the volume shapes, the per-mass
upper limit on the signal count (one per band) and the exclusion boundaries; the named
uncertainties' impact (:class:`ScanSettings`, :func:`scan`, :func:`scan_with`, :class:`ScanResult`).
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

from gammastar.errors import GammastarError, InputError
from gammastar.physics import darkphoton
from gammastar.physics.channels import LEPTON_CHANNELS
from gammastar.physics.sampling import SamplerLike
from gammastar.reach.acceptance import KinematicSample, channel_samples
from gammastar.reach.impact import impact
from gammastar.reach.signal import (
    MassModelSettings,
    _combined,
    eps_boundaries,
    mass_model,
    signal_events,
)
from gammastar.reach.stats import upper_limit
from gammastar.reach.stats.interface import BANDS, LimitResult
from gammastar.reach.stats.model import Model
from gammastar.source.geometry import Geometry
from gammastar.source.production import Yields
from gammastar.source.source import Source
from gammastar.yields.extrapolation.nsig import (
    NsigErrorSettings,
    nsig_lambda_theta,
    nsig_relative_error,
)
from gammastar.yields.extrapolation.samplers import RecordingSampler
from gammastar.yields.lambda_theta import lambda_refits_at, lambda_regions

__all__ = ["ReachInputs", "ScanResult", "ScanSettings", "scan", "scan_with"]


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
    (:func:`gammastar.yields.nuisance.at_masses`)."""
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
        open_ch = tuple(ch for ch in st.channels if m > LEPTON_CHANNELS[ch].threshold)
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
