"""One mass point of the (m, ε) scan: its signal (:class:`_MassSignal`, :func:`_mass_signal`:
the A′ samples per open channel, acceptance and N_sig on the ε grid), the N_sig-level errors
of the extrapolation fit and of the measured λ_θ (:func:`_extrapolation_rel`,
:func:`_lambda_rel`, with the draws :func:`_nsig_recorder` records) and the ensemble's
acceptance spread (:func:`_ensemble_acceptance`, :func:`_relative_spread`); all of it, for one
mass, as one piece of work that depends on no other mass (:func:`_mass_work`, what a worker
process computes: :mod:`.workers`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gammastar.physics import darkphoton
from gammastar.physics.sampling import SamplerLike, Tilt
from gammastar.reach.acceptance import KinematicSample, channel_samples, draw
from gammastar.reach.scan.settings import ScanSettings
from gammastar.reach.signal import _combined, signal_events
from gammastar.reach.tilt import EDGE_ROUNDS, edge_ctau, refit
from gammastar.source.source import Source
from gammastar.yields.extrapolation.nsig import nsig_lambda_theta, nsig_reach_sides
from gammastar.yields.extrapolation.samplers import RecordingSampler
from gammastar.yields.lambda_theta import lambda_refits_at, lambda_regions


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


@dataclass(frozen=True)
class _VisibleNsig:
    """N_sig(ε) of a minimal A′: the BRs do not depend on ε and cτ(m, ε) = cτ(m, 1)/ε², so
    N_sig = scale ε² A(cτ₁/ε²) (a class, not a closure: a worker process sends it back)."""

    scale: float
    """N_POT × yield per POT per ε² × Σ BR of the open channels."""
    ctau1: float
    """cτ at ε = 1, m."""
    samples: Mapping[str, KinematicSample]
    brs: Mapping[str, float]

    def __call__(self, e: NDArray) -> NDArray:
        e = np.asarray(e, dtype=np.float64)
        acc = _combined(self.samples, self.brs, self.ctau1 / e**2, "acceptance")
        return self.scale * e**2 * acc


@dataclass(frozen=True)
class _DarkNsig:
    """N_sig(ε) with a dark sector: :func:`signal_events` summed over the open channels."""

    mass: float
    yield_per_pot_eps2: float
    n_pot: float
    samples: Mapping[str, KinematicSample]
    channels: tuple[str, ...]
    dark: darkphoton.DarkSector

    def __call__(self, e: NDArray) -> NDArray:
        parts = signal_events(
            self.mass,
            e,
            yield_per_pot_eps2=self.yield_per_pot_eps2,
            n_pot=self.n_pot,
            sample=self.samples,
            channels=self.channels,
            dark=self.dark,
        )
        total = np.zeros(np.shape(e))
        for part in parts.values():  # Σ over the channels, in their order
            total = total + part
        return total


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
    nsig: _VisibleNsig | _DarkNsig
    if st.dark is None:
        # no dark sector: BRs do not depend on ε and cτ(m, ε) = cτ(m, 1)/ε²
        scale = st.n_pot * y * sum(brs[ch] for ch in open_ch)
        nsig = _VisibleNsig(scale, float(darkphoton.ctau(m, 1.0)), samples_ch, brs)
        nsig_grid = scale * eps**2 * acc
    else:
        nsig = _DarkNsig(m, y, st.n_pot, samples_ch, open_ch, st.dark)
        nsig_grid = nsig(eps)
    # each channel's share of the signal: BR × its acceptance over the ε grid (the per-mass
    # likelihood's split; exact when the channels' acceptances differ by a factor)
    shares = None
    if len({id(x) for x in samples_ch.values()}) > 1:
        shares = {ch: float(samples_ch[ch].acceptance(ctau).sum()) for ch in open_ch}
    return _MassSignal(
        m, seed, open_ch, samples_ch, brs, ctau, nsig, nsig_grid, acc, extrap, shares
    )


def _extrapolation_rel(
    record: RecordingSampler, sig: _MassSignal, geometry: Any = None
) -> NDArray[np.float64] | None:
    """The extrapolation fit's 1σ relative error of N_sig on the ε grid of one mass
    (:func:`gammastar.yields.extrapolation.nsig.nsig_relative_error` on the nominal draw that
    ``record``, a :class:`~gammastar.yields.extrapolation.samplers.RecordingSampler` around a
    :class:`~gammastar.source.source.Source` with a fiducial split, recorded; ``propagation="log"``:
    the r of the log-normal ``normsys`` from the width of ln N_sig, which a
    detector seeing only the model's tail needs, docs/explanation/reach.md), shape (3, ε): the
    symmetrised r and the two sides r₊, r₋ (:func:`~gammastar.yields.extrapolation.nsig.nsig_reach_sides`),
    or ``None`` when the
    source has no fitted extrapolation with a covariance. Decay channels with their own
    samples (``both_daughters``) are combined with their shares of N_sig, Σ_c s_c δ_c: the
    linear errors of one set of fit parameters add at most so (an upper bound, exact when
    the channels' gradients are parallel). With the ``geometry`` a form whose reweighting
    has too small an effective size is drawn directly through it (``redraw``, seeded from the
    mass's seed); NaN where even that does not resolve N_sig."""
    split = record.inner.split
    ex = None if split is None else split.extrapolation
    last = record.last
    if ex is None or getattr(ex, "covariance", None) is None or last is None:
        return None
    channel = {id(x): ch for ch, x in sig.samples.items()}

    def rel(x: Any) -> NDArray[np.float64]:
        redraw = None
        if geometry is not None:

            def redraw(smp: Any, n: int, seed: int) -> KinematicSample:
                return draw(smp, sig.mass, n, geometry, seed=seed, channel=channel[id(x)])

        got = nsig_reach_sides(split, sig.mass, last, x, sig.ctau, redraw=redraw, seed=sig.seed)
        return np.stack([got["rel"], got["up"], got["down"]])

    return _by_channel_shares(sig, rel)


def _lambda_rel(
    record: RecordingSampler, sig: _MassSignal, refits: Mapping[str, Any], regions: list[Any]
) -> NDArray[np.float64] | None:
    """The measured λ_θ's 1σ relative error of N_sig on the ε grid of one mass: its moves
    (``yields.json`` ``uncertainties.lambda_theta_refits``, each with its moved fiducial
    ``regions``) carried to N_sig on the nominal draw
    (:func:`gammastar.yields.extrapolation.nsig.nsig_lambda_theta`, the width w of ln N_sig, rel =
    e^w − 1), channels combined as :func:`_extrapolation_rel` (through the yield alone where
    the arm's model gives the kinematics); ``None`` without a fiducial split's draw."""
    split = record.inner.split
    ex = None if split is None else split.extrapolation
    last = record.last
    if ex is None or last is None:
        return None

    moves = lambda_refits_at(refits, sig.mass, regions)
    arm = split.arm_covers(sig.mass)  # the arm's kinematics: the yield's part
    model = split.model_at(sig.mass)

    def rel(x: Any) -> NDArray[np.float64]:
        w = nsig_lambda_theta(model, split.fiducial, sig.mass, last, x, sig.ctau, moves, yield_only=arm)
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
    out: Any = np.zeros(sig.ctau.size)
    for ch, x in unique.values():
        share = np.where(total > 0, parts[ch] / np.where(total > 0, total, 1.0), 0.0)
        out = out + share * rel(x)  # rel(x): per ε, or rows of them
    return np.asarray(out, dtype=np.float64)


def _ensemble_acceptance(
    ensemble: Sequence[SamplerLike], sampler: SamplerLike, sig: _MassSignal, st: ScanSettings,
    tilt: Tilt | None = None,
) -> NDArray[np.float64]:  # fmt: skip
    """Each ensemble member's acceptance on the ε grid, shape (members, ε), with the A′ seeds
    of the nominal sampler (the nominal's own row reused) and its ``tilt``."""
    rows = []
    for smp in ensemble:
        if smp is sampler:
            rows.append(sig.acceptance)
            continue
        if st.dark is None:  # drawn as the nominal is (_SignalContext.of)
            smp = Source.from_model(smp).tilted(tilt)
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
    refits = st.lambda_refits
    if not want_lam or refits is None or split is None:  # (want_lam: both given)
        return record, None

    return record, lambda_regions(refits, split.fiducial)


# --------------------------------------------------------------------------- one mass's work
@dataclass(frozen=True)
class _SignalInputs:
    """What every mass point's signal work reads: the nominal sampler, the ensemble (its
    members compared with the nominal by identity, so the two travel together), the settings
    and the ε grid. Picklable where the samplers are: a worker process receives it once."""

    sampler: SamplerLike
    ensemble: tuple[SamplerLike, ...]
    settings: ScanSettings
    eps: NDArray[np.float64]
    masses: NDArray[np.float64]
    """The whole mass grid (the likelihood's mass range)."""


@dataclass(frozen=True)
class _SignalContext:
    """:class:`_SignalInputs` with what a process builds from them once: the :class:`Source`
    (for the visible A′ its model's tail drawn tilted, :meth:`Source.tilted`) and the recorder
    of its draws (:func:`_nsig_recorder`, its own in every process)."""

    inputs: _SignalInputs
    source: Source
    record: RecordingSampler | None
    lam_regions: list[Any] | None
    tilt: Tilt | None = None
    """The visible A′'s mixture (``None``: :class:`Tilt`'s default)."""

    @classmethod
    def of(cls, inputs: _SignalInputs, tilt: Tilt | None = None) -> _SignalContext:
        source = Source.from_model(inputs.sampler)
        if inputs.settings.dark is None:  # the visible A′: the model's tail drawn tilted
            source = source.tilted(tilt)
        record, lam_regions = _nsig_recorder(source, inputs.settings)
        return cls(inputs, source, record, lam_regions, tilt)

    @property
    def fits_edges(self) -> bool:
        """Whether a mass whose ε_high edge its draw leaves unresolved is drawn again with a
        component fitted there (:func:`_edge_tilt`): the visible A′ with a fitted model."""
        return self.inputs.settings.dark is None and self.source.split is not None


@dataclass(frozen=True)
class _MassJob:
    """One mass point of the scan: its index on the grid, the mass, the yield per POT per ε²
    there, its seed (from the scan's seed and the index), its open decay channels, and its
    likelihood's inputs besides the signal: the named nuisances' sizes and the yield's
    statistical error there."""

    index: int
    mass: float
    yield_per_pot_eps2: float
    seed: int
    channels: tuple[str, ...]
    nuisances: dict[str, float]
    mc_stat: float


@dataclass
class _MassWork:
    """One mass point's signal work (:func:`_mass_work`)."""

    signal: _MassSignal
    members: NDArray[np.float64] | None
    """The ensemble members' acceptance on the ε grid, shape (members, ε), or ``None``."""
    kin_rel: NDArray[np.float64] | None
    ex_rel: NDArray[np.float64] | None
    lam_rel: NDArray[np.float64] | None
    seconds: float
    """Seconds of the signal and the ensemble's acceptance (``seconds.acceptance``)."""
    ex_sides: NDArray[np.float64] | None = None
    """The two sides (r₊, r₋) of ``ex_rel`` per ε, shape (2, ε), or ``None``."""


def _edge_tilt(ctx: _SignalContext, sig: _MassSignal, sampler: Any) -> Tilt | None:
    """The mixture with a component fitted to the A′ at the mass's ε_high edge
    (:func:`gammastar.reach.tilt.edge_tilt`, from the draw ``sampler`` recorded), where the
    draw's Kish size there is below :data:`~gammastar.reach.tilt.KISH_TARGET`; ``None`` where
    it is not, where nothing is excluded (no edge) or where nothing can be fitted."""
    st = ctx.inputs.settings
    level = -np.log1p(-float(st.cl))  # the zero-background limit (2.30 at 90% CL)
    ctau = edge_ctau(ctx.inputs.eps, sig.nsig_grid, float(darkphoton.ctau(sig.mass, 1.0)), level)
    split, kin = ctx.source.split, getattr(sampler, "last", None)
    model = None if split is None else split.model_sampler(sig.mass)
    if ctau is None or model is None or kin is None:
        return None
    return refit(model, sig.mass, kin, sig.samples, sig.brs, ctau, ctx.tilt)


def _mass_work(ctx: _SignalContext, job: _MassJob) -> _MassWork:
    """Everything of one mass point that depends on no other: the signal (:func:`_mass_signal`),
    the ensemble's acceptance and spread, the N_sig-level errors of the extrapolation fit and
    of the measured λ_θ. Random only through ``job.seed``: the same in any process."""
    st, t0 = ctx.inputs.settings, time.perf_counter()
    sampler = ctx.record or (RecordingSampler(ctx.source) if ctx.fits_edges else ctx.source)
    sig = _mass_signal(sampler, job.mass, job.yield_per_pot_eps2, job.seed, ctx.inputs.eps, st,
                       job.channels)  # fmt: skip
    for _ in range(EDGE_ROUNDS if ctx.fits_edges else 0):
        tilt = _edge_tilt(ctx, sig, sampler)
        if tilt is None:
            break
        # the edge's few A′ sampled where they lie: the mass drawn again
        ctx = _SignalContext.of(ctx.inputs, tilt)
        sampler = ctx.record or RecordingSampler(ctx.source)
        sig = _mass_signal(sampler, job.mass, job.yield_per_pot_eps2, job.seed, ctx.inputs.eps,
                           st, job.channels)  # fmt: skip
    members = kin_rel = None
    if ctx.inputs.ensemble:
        members = _ensemble_acceptance(ctx.inputs.ensemble, ctx.inputs.sampler, sig, st, ctx.tilt)
        kin_rel = _relative_spread(members)
    seconds = time.perf_counter() - t0
    record = ctx.record
    ex_rel = lam_rel = ex_sides = None
    if record is not None:
        ex = _extrapolation_rel(record, sig, st.geometry)
        if ex is not None:
            ex_rel, ex_sides = ex[0], ex[1:]
        if ctx.lam_regions is not None:
            lam_rel = _lambda_rel(record, sig, st.lambda_refits or {}, ctx.lam_regions)
    return _MassWork(sig, members, kin_rel, ex_rel, lam_rel, seconds, ex_sides)
