"""Forward closure at the shipped facilities: a facility config's data-driven 𝓔(m, cτ) and
N_sig per POT per ε² against the mock generator's full-phase-space γ* carried through the same
geometry.

:func:`facility_config` loads a facility config as it ships with ``reach.yields`` pointed at a
run; :func:`facility_ctaus` picks per mass the cτ of the facility's ε_low regime and of its
ε_high edge from its own data-driven reach curve; :func:`acceptance_mean` is the
BR-weighted acceptance of the facility's open channels over a large sample, in chunks, with
the error of its mean (the per-sample acceptances are exact decay probabilities, so a tiny
𝓔 is resolved by the number of samples, not by counts); :class:`WindowSampler` serves the
true γ* of one mass window once each; :func:`quoted_errors` is the reach's own relative 1σ of
N_sig (the named nuisances, the extrapolation at N_sig's level); :func:`forward_closure` puts
them together per facility, mass and cτ; :func:`coverage_counts` scores the rows against the
N_sig-level targets; :func:`contour_point` scores an edge on the contour (the truth's ε
where N_truth = s_up inside the data-driven band N_dd e^{±kw} = s_up) and
:func:`contour_counts` the rows against the contour's targets. It checks; it never feeds a
correction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.yields.extrapolation.nsig.draw import kish_size

__all__ = [
    "FACILITIES",
    "MASSES",
    "WindowSampler",
    "acceptance_mean",
    "contour_counts",
    "contour_grid",
    "contour_point",
    "contour_resolved",
    "coverage_counts",
    "excluded_range_match",
    "facility_config",
    "facility_ctaus",
    "forward_closure",
    "level_crossings",
    "log_pull",
    "open_channels",
    "quoted_errors",
    "resolved",
    "truth_samplers",
    "truth_yield",
    "window_half_width",
    "yield_width",
]

FACILITIES = ("charm", "na62_dump", "nucal", "ship_ecn3", "hike_dump", "shadows")
"""The shipped facility configs (analysis/facilities/<name>.yaml)."""

MASSES = (0.02, 0.05, 0.1, 0.2, 0.3, 0.45, 0.6, 0.8, 1.0)
"""A′ masses (GeV): the dielectrons below 2m_μ, both channels above."""

TILT = 2.5
"""The truth's rapidity tilt κ (:class:`gammastar_validation.truth.TiltedMesons`): a third of
the parents from e^{κy} p(y), for a Gaussian of σ ≈ 1.2 a shift of the mean by κσ² ≈ 3.6 units
(3σ) forward, where a forward detector at short cτ looks (another third from a 3× harder p_T,
where an off-axis one looks)."""
DECAY_TILT = 3.0
"""The truth's tilt κ_d of the Dalitz γ*'s polar angle in the parent frame
(:meth:`gammastar_validation.truth.TiltedMesons.gstar_cos`): half the γ* from e^{κ_d cos θ},
so that P(cos θ > 0.8), where the γ* take over 90% of their parent's energy, is about 0.28
instead of 0.1 (the lightest masses' ε_high edges, their γ* the fastest of fast parents)."""
LIGHT_SOURCES = 4
"""The truth's sources below the π⁰ mass, as a multiple of :func:`truth_samplers`'
``sources``: only Dalitz γ* fill those windows, each with a share of its parent's energy, so
an ε_high edge there rests on the fastest few of the fastest parents, and the same Kish
size takes more draws than at the heavier masses."""


def window_half_width(m: float) -> float:
    """Half-width (GeV) of the true-mass window whose γ* stand for mass ``m``: 15 MeV, at
    most 10% of m (the steep Dalitz spectra at tens of MeV).

    Example:
        >>> window_half_width(0.02), window_half_width(0.6)
        (0.002, 0.015)
    """
    return float(min(0.015, 0.1 * m))


def facility_config(path: str | Path, yields: str | Path) -> Any:
    """The facility config at ``path`` as shipped, its ``reach.yields`` replaced by ``yields``
    (a run's yields.json): its detector, channels, statistics and ``reach.flow`` untouched."""
    from gammastar.config import load_config

    cfg = load_config(Path(path))
    rc = cfg.reach.model_copy(update={"yields": str(Path(yields).resolve())})
    return cfg.model_copy(update={"reach": rc})


def open_channels(cfg: Any, m: float) -> tuple[str, ...]:
    """The facility's ``reach.channels`` open at mass ``m`` (above their 2m_ℓ threshold)."""
    from gammastar.physics.channels import LEPTON_CHANNELS

    return tuple(c for c in cfg.reach.channels if m > LEPTON_CHANNELS[c].threshold)


@dataclass
class AcceptanceMean:
    """The BR-weighted acceptance over the open channels per cτ, with the error of the mean
    (the spread of the per-sample acceptances / √n) and the part from samples outside the
    data's fiducial region."""

    value: NDArray[np.float64]
    error: NDArray[np.float64]
    outside: NDArray[np.float64]
    n: int
    n_eff: NDArray[np.float64]
    """(Σa)²/Σa² per cτ: how many samples carry the mean (a tail probability rests on few)."""


def acceptance_mean(
    sampler: Any,
    m: float,
    n: int,
    geometry: Any,
    channels: Sequence[str],
    ctaus: ArrayLike,
    *,
    seed: int,
    chunk: int = 50_000,
    fiducial: Any = None,
) -> AcceptanceMean:
    """Σ_c BR_c 𝓔_c / Σ_c BR_c at ``ctaus`` over ``n`` samples of ``sampler`` in chunks
    (:func:`gammastar.reach.acceptance.channel_samples`: the reach's draw), with the error of
    the mean from the per-sample acceptances (exact decay probabilities per sample, summed
    over the channels with their BR) and, with ``fiducial``, the part of the mean from
    samples outside it. Samples that come with a ``weight`` (importance weights) enter the
    self-normalised mean Σwa/Σw (:class:`_MeanSums`).

    Arguments:
        sampler: ``sample(mass, n, seed)`` → ``qT``, ``E``.
        m: mass (GeV). n: samples. geometry: the facility's
            :class:`~gammastar.source.geometry.Geometry`. channels: open decay channels.
        ctaus: proper decay lengths (m). seed: seed of the first chunk (chunk k: seed + k).
        chunk: samples per draw (memory: n × cells floats).
        fiducial: :class:`~gammastar.corrections.pair_acceptance.FiducialRegion` or ``None``.
    """
    from gammastar.physics import darkphoton
    from gammastar.reach.acceptance import channel_samples
    from gammastar.yields.extrapolation.samplers import RecordingSampler

    ct = np.atleast_1d(np.asarray(ctaus, dtype=np.float64))
    br = np.array([float(darkphoton.branching_ratio(m, c)) for c in channels])
    w = br / br.sum()
    rec = RecordingSampler(sampler) if hasattr(sampler, "mass_range") else None
    acc = _MeanSums(ct.size)
    done, k = 0, 0
    while done < n:
        size = min(chunk, n - done)
        smp = channel_samples(rec or sampler, m, size, geometry, seed=seed + k,
                              channels=tuple(channels))  # fmt: skip
        a = sum(wi * smp[c].acceptance_per_sample(ct) for wi, c in zip(w, channels, strict=True))
        last = rec.last if rec is not None else None
        wt = np.asarray(last["weight"], float) if last and "weight" in last else np.ones(size)
        out = None
        if fiducial is not None and last is not None:
            q, e = np.asarray(last["qT"], float), np.asarray(last["E"], float)
            out = ~np.asarray(fiducial.contains(np.full(q.size, m), q, e), bool)
        acc.add(a, wt, out)
        done += size
        k += 1
    return acc.result()


class _MeanSums:
    """The sums behind :func:`acceptance_mean`, chunk by chunk (a chunk's (n, k) per-sample
    acceptances are dropped once added: a grid of cτ over millions of samples stays small):
    the self-normalised mean Σwa/Σw, its error √(n/(n − 1) Σw²(a − mean)²)/Σw (the plain
    standard error of the mean for w ≡ 1) from sums about the first chunk's mean K,
    Σw²(a − mean)² = Σw²(a − K)² − 2(mean − K)Σw²(a − K) + (mean − K)²Σw² (exact; K near the
    mean keeps it free of cancellation, and one chunk is the two-pass sum), n_eff =
    (Σwa)²/Σ(wa)² and the part of the mean from the samples outside the fiducial region."""

    def __init__(self, k: int) -> None:
        self.n, self.sw, self.sw2 = 0, 0.0, 0.0
        self.swa, self.swa2, self.out = np.zeros(k), np.zeros(k), np.zeros(k)
        self.d1, self.d2 = np.zeros(k), np.zeros(k)
        self.shift: NDArray | None = None

    def add(self, a: NDArray, wt: NDArray, outside: NDArray | None) -> None:
        wa = wt[:, None] * a
        if self.shift is None:
            self.shift = wa.sum(axis=0) / float(wt.sum()) if wt.sum() > 0 else np.zeros(a.shape[1])
        w2 = wt[:, None] ** 2
        dev = a - self.shift
        self.n += a.shape[0]
        self.sw += float(wt.sum())
        self.sw2 += float((wt**2).sum())
        self.swa += wa.sum(axis=0)
        self.swa2 += (wa**2).sum(axis=0)
        self.d1 += (w2 * dev).sum(axis=0)
        self.d2 += (w2 * dev**2).sum(axis=0)
        if outside is not None:
            self.out += wa[outside].sum(axis=0)

    def result(self) -> AcceptanceMean:
        mean = self.swa / self.sw
        c = mean - (self.shift if self.shift is not None else 0.0)
        ss = np.maximum(self.d2 - 2 * c * self.d1 + c**2 * self.sw2, 0.0)
        err = np.sqrt(ss * self.n / max(self.n - 1, 1)) / self.sw
        return AcceptanceMean(mean, err, self.out / self.sw, self.n, kish_size(self.swa, self.swa2))


class WindowSampler:
    """The true γ* of one mass window as an A′ sampler, each served once in a random order:
    successive ``sample(mass, n, seed)`` calls return the next ``n`` (q_T, E rescaled to the
    exact mass at fixed momentum), so that a draw of all :attr:`size` averages the truth with
    no resampling noise; a call repeating the last call's seed serves the same γ* again (the
    reach decays one A′ draw into each channel's daughters with one seed). ``mass_range`` is
    the window's; ``weight`` (importance weights, :class:`gammastar_validation.truth.TiltedMesons`)
    comes with each draw as ``weight``.

    Example:
        >>> w = WindowSampler([1.0, 2.0, 3.0], [10.0, 20.0, 30.0], [0.3, 0.3, 0.3])
        >>> a, b = w.sample(0.3, 2, seed=1), w.sample(0.3, 2, seed=1)
        >>> bool(np.all(a["qT"] == b["qT"])), w.sample(0.3, 1, seed=2)["qT"].size
        (True, 1)
    """

    def __init__(self, qT: ArrayLike, E: ArrayLike, m: ArrayLike, seed: int = 0,
                 weight: ArrayLike | None = None) -> None:  # fmt: skip
        order = np.random.default_rng(seed).permutation(np.size(qT))
        self.weight = None if weight is None else np.asarray(weight, np.float64)[order]
        self.qT = np.asarray(qT, np.float64)[order]
        self.p2 = (np.asarray(E, np.float64) ** 2 - np.asarray(m, np.float64) ** 2)[order]
        self.size = int(self.qT.size)
        self.mass_range = (float(np.min(m)), float(np.max(m))) if self.size else (0.0, 0.0)
        self.rewind()

    def rewind(self) -> None:
        """Serve from the first γ* again."""
        self._next = 0
        self._last: tuple[Any, slice] | None = None

    def sample(self, mass: float, n: int, seed: int | None = None) -> dict[str, NDArray]:
        if self._last is not None and seed is not None and self._last[0] == seed:
            k = self._last[1]
        else:
            if self._next + n > self.size:
                raise ValueError(f"WindowSampler: {n} asked, {self.size - self._next} left")
            k = slice(self._next, self._next + n)
            self._next += n
            self._last = (seed, k)
        out = {"qT": self.qT[k], "E": np.sqrt(np.maximum(self.p2[k], 0.0) + mass**2)}
        if self.weight is not None:
            out["weight"] = self.weight[k]
        return out


def facility_ctaus(
    cfg: Any, m: float, y: float, eps: ArrayLike, acc_sum: ArrayLike, *, yield_scale: float
) -> dict[str, Any]:
    """The cτ of the facility's ε_low regime and of its ε_high edge at mass ``m``, from its
    own data-driven reach curve N(ε) = N_POT × yield_scale × Y(m) × ε² × Σ_c BR_c 𝓔_c(cτ(m, ε))
    (``acc_sum``: Σ_c BR_c 𝓔_c on the grid ``eps``): ε_low and ε_high are where N crosses
    the zero-background Poisson limit −ln(1 − cl) (2.30 at 90% CL; the facilities' expected
    backgrounds are ≤ 0.02 events); where N stays below it (nothing excluded at this mass),
    the level N_max/10 stands in (the edges of a ten times smaller limit).

    Returns:
        ``{eps_low, eps_high, ctau_low, ctau_high, level, excluded}``.

    Example:
        >>> from types import SimpleNamespace as NS
        >>> cfg = NS(reach=NS(n_pot=1e18, cl=0.9))
        >>> e = np.geomspace(1e-9, 1e-3, 61)
        >>> out = facility_ctaus(cfg, 0.3, 1e-3, e, np.exp(-(e / 1e-5) ** 2), yield_scale=1.0)
        >>> round(float(np.log10(out["eps_low"])), 2), out["excluded"]
        (-7.32, True)
    """
    from gammastar.physics import darkphoton

    eps = np.asarray(eps, dtype=np.float64)
    n_pot = float(cfg.reach.n_pot)
    nsig = n_pot * yield_scale * y * eps**2 * np.asarray(acc_sum, dtype=np.float64)
    limit = -np.log(1.0 - float(cfg.reach.cl))
    excluded = bool(np.nanmax(nsig) >= limit)
    level = limit if excluded else float(np.nanmax(nsig)) / 10.0
    above = np.flatnonzero(nsig >= level)
    if above.size == 0:
        raise ValueError(f"facility_ctaus: no signal at m = {m:g} GeV")
    lo, hi = _crossing(eps, nsig, level, above[0], -1), _crossing(eps, nsig, level, above[-1], 1)
    return {"eps_low": lo, "eps_high": hi, "ctau_low": float(darkphoton.ctau(m, lo)),
            "ctau_high": float(darkphoton.ctau(m, hi)), "level": level, "excluded": excluded}  # fmt: skip


def _crossing(eps: NDArray, n: NDArray, level: float, i: int, step: int) -> float:
    """ε where N crosses ``level`` between grid points i and i + step (log-log interpolation;
    the grid's end where it does not)."""
    j = i + step
    if j < 0 or j >= eps.size or n[j] <= 0:
        return float(eps[i])
    x0, x1, y0, y1 = np.log(eps[i]), np.log(eps[j]), np.log(n[i]), np.log(n[j])
    t = (np.log(level) - y0) / (y1 - y0) if y1 != y0 else 0.0
    return float(np.exp(x0 + t * (x1 - x0)))


CONTOUR_SPAN = 1.2
"""Half-width in ln ε of the grid window around each data-driven edge (×3.3 either way):
near ε_high Δln ε ≈ ln R/(2x − 2), x ≈ 10–17 for an NA62-like volume, so N_sig moved by
e^{±16} stays inside; near ε_low N ∝ ε⁴, e^{±4.8}."""

CONTOUR_STEP = 0.1
"""Grid step in ln ε inside the windows (10%: a third of the ε_high ratio target's ln 1.3)."""


def contour_grid(eps_low: float, eps_high: float, *, span: float = CONTOUR_SPAN,
                 step: float = CONTOUR_STEP) -> NDArray[np.float64]:  # fmt: skip
    """The ε grid of one mass's contour scoring: windows of ±``span`` in ln ε at ``step``
    around the data-driven ε_low and ε_high (each edge a grid point), joined by steps of at
    most 5 × ``step`` (where N_sig peaks: whether the truth excludes the mass).

    Example:
        >>> g = contour_grid(1e-7, 1e-5)
        >>> bool(np.isclose(g, 1e-7, rtol=1e-12).any() and np.isclose(g, 1e-5, rtol=1e-12).any())
        True
        >>> round(float(np.log(g[-1] / 1e-5)), 6), bool(np.all(np.diff(np.log(g)) <= 0.5 + 1e-9))
        (1.2, True)
    """
    k = round(span / step)
    lo = eps_low * np.exp(step * np.arange(-k, k + 1))
    hi = eps_high * np.exp(step * np.arange(-k, k + 1))
    gap = np.log(hi[0] / lo[-1])
    mid = (np.geomspace(lo[-1], hi[0], int(np.ceil(gap / (5 * step))) + 1)[1:-1]
           if gap > 0 else np.zeros(0))  # fmt: skip
    return np.unique(np.concatenate([lo, mid, hi]))


def level_crossings(eps: ArrayLike, n: ArrayLike, level: float) -> tuple[float, float]:
    """ε_low and ε_high where N (on the grid ``eps``) crosses ``level``: the outermost grid
    points at or above it, log-log interpolated towards their outer neighbours (as
    :func:`facility_ctaus`); NaN on a side where N is still at or above the level at the grid's
    end (the crossing lies beyond the grid), both NaN where N never reaches it.

    Example:
        >>> e = np.geomspace(1e-8, 1e-4, 41)
        >>> lo, hi = level_crossings(e, (e / 1e-6) ** 4 * np.exp(-((e / 1e-5) ** 2)), 1.0)
        >>> round(float(lo / 1e-6), 2), level_crossings(e, np.ones(41), 2.0)
        (1.0, (nan, nan))
    """
    eps, n = np.asarray(eps, np.float64), np.asarray(n, np.float64)
    above = np.flatnonzero(n >= level)
    if above.size == 0:
        return float("nan"), float("nan")
    lo = float("nan") if above[0] == 0 else _crossing(eps, n, level, int(above[0]), -1)
    last = eps.size - 1
    hi = float("nan") if above[-1] == last else _crossing(eps, n, level, int(above[-1]), 1)
    return lo, hi


def contour_point(eps: ArrayLike, n_dd: ArrayLike, n_truth: ArrayLike, level: float,
                  regime: str, width: float, stat: float = 0.0,
                  width_down: float | None = None) -> dict[str, Any]:  # fmt: skip
    """One edge (``regime`` ``eps_low`` or ``eps_high``) of one mass scored on the contour:
    the truth's ε where N_truth(ε) = ``level`` (s_up), the data-driven one where N_dd(ε) =
    s_up, and the kσ band's edges where N_dd e^{+k w₊} = s_up and N_dd e^{−k w₋} = s_up
    (k = 1, 2; w± = √(width±² + ``stat``²): ``width`` and ``width_down`` the likelihood's up and
    down sides at the edge (``width_down`` ``None``: the same as ``width``), ``stat`` the
    closure's own sampling error of ln N). A side of the band whose crossing is not on the grid
    is open: the outer one lies beyond the grid, the inner one where N_dd e^{−kw₋} never
    reaches s_up (the contour closes at this mass). ``within_k``: the truth's ε inside the kσ
    band; ``log_ratio`` ln(ε_dd/ε_truth); ``factor`` e^{(width + width_down)/2}, the band's
    factor in N_sig (the geometric mean of its two sides).

    Example (N = (ε/ε₀)⁴: ε where N = s is ε₀ s^{1/4}; a truth 1.5× below the data-driven
    N at a width ln 2):
        >>> e = np.geomspace(1e-8, 1e-5, 301)
        >>> p = contour_point(e, (e / 1e-7) ** 4, (e / 1e-7) ** 4 / 1.5, 2.3, "eps_low", np.log(2))
        >>> round(p["eps_truth"] / (1e-7 * (2.3 * 1.5) ** 0.25), 4), p["within_1"]
        (1.0, True)
        >>> round(float(p["log_ratio"] / np.log(1.5)), 4)  # ln(ε_dd/ε_truth) = −ln(1.5)/4
        -0.25
    """
    eps = np.asarray(eps, np.float64)
    n_dd, n_truth = np.asarray(n_dd, np.float64), np.asarray(n_truth, np.float64)
    side = 0 if regime == "eps_low" else 1
    e_tr = level_crossings(eps, n_truth, level)[side]
    e_dd = level_crossings(eps, n_dd, level)[side]
    down = float(width) if width_down is None else float(width_down)
    w, w_dn = float(np.hypot(width, stat)), float(np.hypot(down, stat))
    out: dict[str, Any] = {"eps_truth": e_tr, "eps_dd": e_dd, "level": float(level),
                           "width": float(width), "width_down": down, "stat": float(stat),
                           "factor": float(np.exp(0.5 * (width + down))),
                           "log_ratio": float(np.log(e_dd / e_tr))}  # fmt: skip
    for k in (1, 2):
        if not (np.isfinite(w) and np.isfinite(w_dn)):
            out[f"band_{k}"], out[f"within_{k}"] = [float("nan")] * 2, False
            continue
        outer = level_crossings(eps, n_dd * np.exp(k * w), level)[side]
        inner = level_crossings(eps, n_dd * np.exp(-k * w_dn), level)[side]
        if side == 0:  # ε_low: more signal reaches smaller ε
            band = (outer if np.isfinite(outer) else 0.0, inner if np.isfinite(inner) else np.inf)
        else:
            band = (inner if np.isfinite(inner) else 0.0, outer if np.isfinite(outer) else np.inf)
        out[f"band_{k}"] = [float(band[0]), float(band[1])]
        out[f"within_{k}"] = bool(np.isfinite(e_tr) and band[0] <= e_tr <= band[1])
    return out


def quoted_errors(
    cfg: Any, yields: Any, source: Any, m: float, geometry: Any, channels: Sequence[str],
    ctaus: ArrayLike, *, seed: int,
) -> dict[str, NDArray[np.float64]]:  # fmt: skip
    """The reach's relative 1σ of N_sig at mass ``m`` and ``ctaus``, by name: the named
    nuisances of ``yields.json`` as the reach takes them
    (:func:`gammastar.yields.nuisance.reach_nuisances`: ``data_stat`` the yield's own
    statistics), ``extrapolation`` at N_sig's level as the scan computes it
    (:func:`gammastar.yields.extrapolation.nsig.nsig_reach_error`: log propagation, the model
    fitted below the seam there; on a draw of ``reach.samples``, channels by their shares, a
    form whose reweighting has too small an effective size drawn directly through the
    facility's geometry, NaN where that does not resolve N either; its two sides
    ``extrapolation_up`` and ``extrapolation_down``, as the likelihood takes them). Left out: the target's
    A-dependence, the mock's normalisation, N_POT and the detector efficiency, which the
    truth shares."""
    from gammastar.physics import darkphoton
    from gammastar.reach.acceptance import channel_samples, draw
    from gammastar.yields.extrapolation.nsig import nsig_reach_sides
    from gammastar.yields.extrapolation.samplers import RecordingSampler
    from gammastar.yields.nuisance import reach_nuisances

    ct = np.atleast_1d(np.asarray(ctaus, dtype=np.float64))
    sizes, _ = reach_nuisances(cfg, yields, [m])
    out = {k: np.full(ct.size, float(np.nan_to_num(v[0]))) for k, v in (sizes or {}).items()}
    split = getattr(source, "split", None)
    ex = None if split is None else split.extrapolation
    if ex is not None and getattr(ex, "covariance", None) is not None:
        rec = RecordingSampler(source)
        shares = []
        for c in channels:  # one draw per channel (each its own daughters), same A′ seed
            smp = channel_samples(rec, m, cfg.reach.samples, geometry, seed=seed, channels=(c,))[c]
            a = float(darkphoton.branching_ratio(m, c)) * smp.acceptance(ct)

            def redraw(sampler: Any, n: int, seed: int, c: str = c) -> Any:
                return draw(sampler, m, n, geometry, seed=seed, channel=c)

            # as the scan (mass_signal._extrapolation_rel), below the seam too
            r = nsig_reach_sides(split, m, rec.last, smp, ct, redraw=redraw, seed=seed)
            shares.append((a, r))
        tot = sum(a for a, _ in shares)
        for key, name in (("rel", "extrapolation"), *((k, f"extrapolation_{k}") for k in SIDES)):
            out[name] = sum(np.where(tot > 0, a / np.where(tot > 0, tot, 1), 0) * r[key]
                            for a, r in shares)  # fmt: skip
    return out


SIDES = ("up", "down")
"""The two sides of the reach's ``extrapolation`` normsys (hi = 1 + up, lo = 1/(1 + down)):
:func:`quoted_errors`' ``extrapolation_up`` and ``extrapolation_down`` beside the symmetrised
``extrapolation``."""


def _named(q: dict[str, NDArray]) -> dict[str, NDArray]:
    """The named nuisances of :func:`quoted_errors`, without the extrapolation's two sides."""
    return {k: v for k, v in q.items() if k not in {f"extrapolation_{s}" for s in SIDES}}


def log_pull(n_dd: float, n_tr: float, width: float, truth_err: float) -> float:
    """ln(N_dd/N_tr) in units of √(w² + (δN_tr/N_tr)²), w the quoted width of ln N_dd (the
    reach's log-normal nuisances); +∞ where the data-driven side is 0 and the truth is not,
    NaN where the truth is 0 (not resolved).

    Example:
        >>> round(log_pull(np.e, 1.0, 0.6, 0.8), 6), log_pull(0.0, 1.0, 0.1, 0.0)
        (1.0, inf)
    """
    if not n_tr > 0:
        return float("nan")
    if not n_dd > 0:
        return float("inf")
    return float(np.log(n_dd / n_tr) / np.hypot(width, truth_err / n_tr))


def yield_width(cfg: Any, yields: Any, m: float) -> float:
    """The quoted 1σ width of ln Y at mass ``m``: the named nuisances of ``yields.json`` as
    the reach takes them (:func:`gammastar.yields.nuisance.reach_nuisances`, log-normal, in
    quadrature), the extrapolation at the yield's level (its f_F error)."""
    from gammastar.yields.nuisance import reach_nuisances

    sizes, _ = reach_nuisances(cfg, yields, [m])
    return float(np.sqrt(sum(np.log1p(float(np.nan_to_num(v[0]))) ** 2
                             for v in (sizes or {}).values())))  # fmt: skip


def forward_closure(
    cfg: Any,
    truth: dict[float, Any],
    truth_yield: Any,
    masses: Sequence[float],
    *,
    samples: int = 200_000,
    eps_points: int = 160,
    seed: int = 11,
) -> list[dict[str, Any]]:
    """Rows ``{facility, mass, regime, ctau, eps, acc_dd, acc_dd_err, acc_truth, acc_err,
    y_dd, y_dd_err, y_truth, y_truth_err, y_quoted_width, y_pull, nsig_dd, nsig_truth,
    nsig_truth_err, quoted_rel, quoted, pull, outside_share, n_truth, excluded, truth_excluded,
    contour, contour_before}`` for one facility config (``cfg``, its
    ``reach.yields`` the run's): per mass the ε_low-regime and ε_high-edge cτ
    (:func:`facility_ctaus`), the data-driven side as ``gammastar reach`` builds it
    (:meth:`gammastar.source.source.Source.from_config`, ``reach.flow`` as configured, the
    facility's :class:`~gammastar.source.geometry.Geometry`), the truth from ``truth[m]`` (a
    :class:`WindowSampler` of the generator's γ* at m) and ``truth_yield`` (``at(m)`` → the
    generator's A′ yield per POT per ε² at the data's resolution and its relative error).

    N is Y × 𝓔 per POT per ε² of the data's target (Y the reach's, ``Source.yields``), 𝓔 the
    BR-weighted mean acceptance of the open channels (per unit visible BR). Errors (1σ): the data-driven 𝓔's is the error of the
    mean over ``samples`` draws; the truth's 𝓔 the error of the mean over its window's γ*
    (each once), its N's with the truth yield's statistics; ``quoted_rel`` the reach's own
    (:func:`quoted_errors`, log-normal: ``quoted_width`` w of ln N, ``quoted_rel`` e^w − 1)
    with the data-driven 𝓔's error; pull = :func:`log_pull`; ``y_pull`` the yield's, with
    its own quoted width (:func:`yield_width`).

    On the contour: both sides' 𝓔 on :func:`contour_grid` around the two edges, N(ε) =
    N_POT × yield scale × Σ BR × ε² × Y × 𝓔 each, scored by :func:`contour_point` at the
    edge's level (``contour``), its width the likelihood's at the edge (:func:`_edge_widths`:
    an unresolved extrapolation size takes the reach's fallback; ``contour_before`` the other
    edge's size, as before that fallback) and its stat the closure's own sampling errors of
    ln N at the two ε; ``truth_excluded`` whether N_truth reaches the zero-background limit
    on the grid.
    """
    from gammastar.corrections.pair_acceptance import FiducialRegion
    from gammastar.physics import darkphoton
    from gammastar.reach.tilt import fitted_tilt
    from gammastar.source.geometry import Geometry
    from gammastar.source.production import load_yields, resolve_yield_scale
    from gammastar.source.source import Source

    yields = load_yields(cfg.resolve(cfg.reach.yields))
    scale, _ = resolve_yield_scale(cfg, yields)
    plain = Source.from_config(cfg, yields)
    source = plain.tilted()  # as the reach draws the visible A′
    geometry = Geometry.from_config(cfg.detector)
    ex = yields.extrapolation or {}
    fid = FiducialRegion.from_dict(ex["fiducial"]) if "fiducial" in ex else None
    eps = np.geomspace(cfg.reach.eps_min / 10, cfg.reach.eps_max * 10, eps_points)
    reach_eps = np.geomspace(cfg.reach.eps_min, cfg.reach.eps_max, cfg.reach.eps_points)
    limit = -np.log(1.0 - float(cfg.reach.cl))
    rows = []
    for i, m in enumerate(masses):
        chans = open_channels(cfg, m)
        if not chans:
            continue
        y, y_rel = (float(v) for v in yields.at(m))
        # the reach's yield: the product's, or carried by the arm's model above the seam
        y_n = float(source.yields.at(m)[0]) if source.yields is not None else y
        brsum = sum(float(darkphoton.branching_ratio(m, c)) for c in chans)
        seed_m = seed + 1000 * i
        pilot = acceptance_mean(source, m, cfg.reach.samples, geometry, chans,
                                darkphoton.ctau(m, eps), seed=seed_m)  # fmt: skip
        edges = facility_ctaus(cfg, m, y_n, eps, brsum * pilot.value, yield_scale=scale)
        grid = contour_grid(edges["eps_low"], edges["eps_high"])
        at = [int(np.argmin(np.abs(np.log(grid / edges[k])))) for k in ("eps_low", "eps_high")]
        cts = darkphoton.ctau(m, grid)
        # as the reach draws this mass: components fitted where its ε_high edge leaves few A′
        tilt = fitted_tilt(plain, m, cfg.reach.samples, geometry, chans,
                           float(darkphoton.ctau(m, edges["eps_high"])), seed=seed_m + 4)  # fmt: skip
        src_m = plain.tilted(tilt)
        dd = acceptance_mean(src_m, m, samples, geometry, chans, cts, seed=seed_m + 1,
                             fiducial=fid)  # fmt: skip
        ts = truth[m]
        ts.rewind()
        tr = acceptance_mean(ts, m, ts.size, geometry, chans, cts, seed=seed_m + 2)
        yt, yt_rel = (float(v) for v in truth_yield.at(m))
        y_width = yield_width(cfg, yields, m)
        # the reach's own sizes at the two edges, then on its ε grid (an unresolved edge's
        # fallback: the largest resolved size there, edge_size)
        q = quoted_errors(cfg, yields, src_m, m, geometry, chans,
                          np.concatenate([cts[at], darkphoton.ctau(m, reach_eps)]), seed=seed_m + 3)  # fmt: skip
        widths = _edge_widths(q, grid[at], reach_eps)
        # N(ε) per facility as facility_ctaus: N_POT × yield scale × Σ BR × ε² × Y × 𝓔
        norm = float(cfg.reach.n_pot) * scale * brsum * grid**2
        n_dd_grid, n_tr_grid = norm * y_n * dd.value, norm * yt * tr.value
        truth_excluded = bool(np.nanmax(n_tr_grid) >= limit)
        with np.errstate(divide="ignore", invalid="ignore"):
            rel_dd = np.where(dd.value > 0, dd.error / dd.value, np.nan)
            rel_tr = np.hypot(yt_rel, np.where(tr.value > 0, tr.error / tr.value, np.nan))
        for k, regime in enumerate(("eps_low", "eps_high")):
            j = at[k]
            a, at_ = float(dd.value[j]), float(tr.value[j])
            rel_a = dd.error[j] / a if a > 0 else 0.0
            # the reach's normsys are log-normal (hi = 1 + r, lo = 1/(1 + r)): their widths
            # in ln N add in quadrature
            w = float(np.sqrt(sum(np.log1p(v[k]) ** 2 for v in _named(q).values()) + rel_a**2))
            n_dd, n_tr = y_n * a, yt * at_
            e_tr = float(np.hypot(n_tr * yt_rel, yt * tr.error[j]))
            pull = log_pull(n_dd, n_tr, w, e_tr)
            # the closure's own sampling errors of ln N at the two ε where N = s_up (those ε do
            # not depend on the width), in quadrature
            eps_tr = level_crossings(grid, n_tr_grid, edges["level"])[k]
            eps_dd = level_crossings(grid, n_dd_grid, edges["level"])[k]
            stat = float(np.hypot(_at_log(grid, rel_dd, eps_dd), _at_log(grid, rel_tr, eps_tr)))
            contour = {}
            for key, (wk, fallback, wk_dn) in widths[k].items():
                pt = contour_point(grid, n_dd_grid, n_tr_grid, edges["level"], regime, wk,
                                   stat=0.0 if np.isnan(stat) else stat, width_down=wk_dn)  # fmt: skip
                pt["fallback"] = fallback
                pt["n_eff_truth"] = _at_log(grid, tr.n_eff, pt["eps_truth"])
                pt["n_eff_dd"] = _at_log(grid, dd.n_eff, pt["eps_dd"])
                contour[key] = pt
            rows.append({
                "facility": cfg.name, "mass": float(m), "regime": regime,
                "ctau": float(cts[j]), "eps": float(edges[regime]),
                "excluded": edges["excluded"], "truth_excluded": truth_excluded,
                "channels": list(chans),
                "acc_dd": a, "acc_dd_err": float(dd.error[j]),
                "acc_truth": at_, "acc_err": float(tr.error[j]),
                "y_dd": y, "y_dd_err": y * y_rel, "y_truth": yt, "y_truth_err": yt * yt_rel,
                "y_quoted_width": y_width, "y_pull": log_pull(y, yt, y_width, yt * yt_rel),
                "nsig_dd": n_dd, "nsig_truth": n_tr, "nsig_truth_err": e_tr,
                "quoted_width": w, "quoted_rel": float(np.expm1(w)),
                "quoted": {k2: float(v[k]) for k2, v in _named(q).items()}, "pull": pull,
                "outside_share": float(dd.outside[j] / a) if a > 0 and fid is not None else None,
                "n_truth": ts.size, "n_eff_truth": float(tr.n_eff[j]),
                "n_eff_dd": float(dd.n_eff[j]), "contour": contour["after"],
                "contour_before": contour["before"],
            })  # fmt: skip
    return rows


def _at_log(eps: NDArray, values: NDArray, at: float) -> float:
    """``values`` on the grid ``eps`` at ε = ``at``, linear in ln ε; NaN for a NaN ``at``."""
    if not np.isfinite(at):
        return float("nan")
    return float(np.interp(np.log(at), np.log(eps), values))


def _edge_widths(q: dict[str, NDArray], edges: NDArray, reach_eps: NDArray
                 ) -> list[dict[str, tuple[float, bool, float]]]:  # fmt: skip
    """Per edge (``q``'s first two entries; the rest on the reach's ε grid ``reach_eps``) the
    widths of ln N_sig the likelihood uses there, up and down, ``after`` and ``before`` the
    fallback of an unresolved edge, as (up, whether the edge is unresolved, down): the named
    nuisances' log-normal widths ln(1 + r) in quadrature, ``extrapolation`` at the edge (its
    sides ``extrapolation_up``/``_down`` where :func:`quoted_errors` gives them, else its
    symmetrised size on both); where N_sig is not resolved there (NaN) ``after`` takes the
    reach's fallback per side (:func:`gammastar.reach.scan.mass_limit.edge_size`: the largest
    resolved size at the mass, never below the other edge's), ``before`` the other edge's
    alone (NaN where that is unresolved too)."""
    from gammastar.reach.scan.mass_limit import edge_size

    named = _named(q)
    other = sum(np.log1p(v[0]) ** 2 for k, v in named.items() if k != "extrapolation")
    ex = named.get("extrapolation")
    if ex is None:
        w = float(np.sqrt(other))
        return [{"after": (w, False, w), "before": (w, False, w)} for _ in range(2)]
    order = np.argsort(np.concatenate([edges, reach_eps]))
    all_eps = np.concatenate([edges, reach_eps])[order]

    def side(rel: NDArray, k: int) -> tuple[float, float, bool]:
        at, grid = np.asarray(rel[:2], float), np.asarray(rel[2:], float)
        floor = max((float(v) for v in at if np.isfinite(v)), default=0.0)
        lost = not np.isfinite(at[k])
        all_rel = np.concatenate([at, grid])[order]
        r = edge_size(all_eps, all_rel, float(edges[k]), floor)[0] if lost else float(at[k])
        old = at[1 - k] if lost else at[k]
        return (float(np.sqrt(other + np.log1p(r) ** 2)), float(np.sqrt(other + np.log1p(old) ** 2)),
                lost)  # fmt: skip

    up_rel = q.get("extrapolation_up", named["extrapolation"])
    dn_rel = q.get("extrapolation_down", named["extrapolation"])
    out = []
    for k in range(2):
        (up, up_old, lost), (dn, dn_old, lost_dn) = side(up_rel, k), side(dn_rel, k)
        out.append({"after": (up, lost or lost_dn, dn), "before": (up_old, lost or lost_dn, dn_old)})
    return out


def _flavour(data_cfg: Any, m: float, seam: float) -> Any:
    """The single-flavour config whose γ* stand for mass ``m``: the dielectrons below the
    seam (below 2m_μ only they exist), the muons from it up."""
    from gammastar.config import flavour_config

    flavours = data_cfg.input.flavours
    f = "e" if ("e" in flavours and (m < seam or "mu" not in flavours)) else "mu"
    return flavour_config(data_cfg, f) if len(flavours) > 1 else data_cfg


def truth_samplers(
    data_cfg: Any, masses: Sequence[float], sources: int, *, seed: int, mesons: Any = None,
    seam: float = 0.22, tilt: float = TILT,
) -> dict[float, WindowSampler]:  # fmt: skip
    """Per mass a :class:`WindowSampler` of the generator's γ* within
    :func:`window_half_width` of it: ``sources`` sources (:data:`LIGHT_SOURCES` × as many below
    the π⁰ mass) of only the channels that reach the window
    (:func:`gammastar_validation.truth.truth_gstar` ``window``: importance sampling by
    channel), the dielectron cocktail below ``seam``, the muon one from it up, their parents
    drawn with the rapidity tilt ``tilt`` and their Dalitz γ* with :data:`DECAY_TILT`
    (:class:`gammastar_validation.truth.TiltedMesons`, weights carried; 0: the plain
    generator) from ``mesons`` (a PYTHIA pool) or the config's parametric spectra."""
    from gammastar.mock.cocktail import ParametricMesons
    from gammastar.physics.constants import mass
    from gammastar_validation.truth import TiltedMesons, truth_gstar

    out = {}
    for i, m in enumerate(masses):
        hw = window_half_width(m)
        n = sources * (LIGHT_SOURCES if m < mass("pi0") else 1)
        fc = _flavour(data_cfg, m, seam)
        src = mesons
        if tilt:
            e_max = fc.beam.energy if fc.mock.kinematic_limit else None
            src = TiltedMesons(mesons or ParametricMesons(fc.mock, e_max), tilt,
                               decay_tilt=DECAY_TILT)  # fmt: skip
        tr = truth_gstar(fc, n, seed=seed + 7 * i, mesons=src, window=(m - hw, m + hw))
        out[m] = WindowSampler(tr.qT, tr.E, tr.m, seed=seed + 7 * i, weight=tr.weight)
    return out


def truth_yield(
    data_cfg: Any, run: Path, yields_doc: dict[str, Any], sources: int, *, seed: int,
    mesons: Any = None,
) -> Any:  # fmt: skip
    """The generator's full-phase-space A′ yield per POT per ε² on the run's combined mass
    bins (:class:`gammastar.source.production.Yields`): per flavour Eq. 6 on ``sources`` true
    γ* smeared by the run's own mass response (the file's ``truth`` / ``truth_ee`` trees:
    the resolution the data-driven yield carries), the flavours weighted per bin as the
    data's combination weighs them (``yields.json`` ``aprime.weights``)."""
    from gammastar.config import flavour_config
    from gammastar.core import rundir
    from gammastar.physics.channels import LEPTON_CHANNELS
    from gammastar.source.production import Yields
    from gammastar_validation.closure import truth_aprime_yield
    from gammastar_validation.truth import empirical_smearing, truth_gstar

    ap = yields_doc["aprime"]
    edges = np.asarray(ap["bin_edges"], dtype=np.float64)
    weights = ap.get("weights") or {}
    flavours = data_cfg.input.flavours
    y = np.zeros(edges.size - 1)
    var = np.zeros(edges.size - 1)
    for k, f in enumerate(flavours):
        fc = flavour_config(data_cfg, f) if len(flavours) > 1 else data_cfg
        ch = next(c for c, lc in LEPTON_CHANNELS.items() if lc.flavour == f)
        w = np.asarray(weights.get(ch, np.ones(edges.size - 1)), dtype=np.float64)
        if not np.any(w > 0):
            continue
        tr = truth_gstar(fc, sources, seed=seed + 101 * k, mesons=mesons)
        smear = empirical_smearing(run / rundir.MOCK, tree="truth_ee" if f == "e" else "truth")
        ty = truth_aprime_yield(tr, edges, m_lepton=fc.input.lepton_mass, seed=seed + k,
                                smear=smear)  # fmt: skip
        yy = np.nan_to_num(np.asarray(ty.per_pot_per_eps2, float))
        ee = np.nan_to_num(np.asarray(ty.stat_err, float))
        y += w * yy
        var += (w * ee) ** 2
    return Yields(0.5 * (edges[1:] + edges[:-1]), y, np.sqrt(var), {})


TARGETS = {
    "within_1sigma": 0.68,
    "within_2sigma": 0.95,
    "long_lifetime_mumu_within_20pct": 1.0,
    "yield_within_5pct": 1.0,
}
"""The targets: the share of all facility points whose N_sig lies within its quoted 1σ
(≥ 68%) and 2σ (≥ 95%); every ε_low point at 0.25–1.0 GeV with the μμ channel open within
±20%; the full-phase-space yield within ±5% at every mass (counted once per mass)."""


MIN_TRUTH_SAMPLES = 20.0
"""A point is resolved when at least this many samples carry its 𝓔 ((Σwa)²/Σ(wa)²), on the
truth's side and on the data-driven one: below it the error of the mean is itself
unreliable (a tail probability resting on a few A′ of the highest momenta)."""


def resolved(row: dict[str, Any]) -> bool:
    """Whether both sides resolve a :func:`forward_closure` row (:data:`MIN_TRUTH_SAMPLES`)."""
    return bool(not np.isnan(row["pull"]) and row["n_eff_truth"] >= MIN_TRUTH_SAMPLES
                and row.get("n_eff_dd", np.inf) >= MIN_TRUTH_SAMPLES)  # fmt: skip


def coverage_counts(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Score ``rows`` (:func:`forward_closure`, one or several facilities) against
    :data:`TARGETS`: counts ``[passed, points]``, whether each target is met and how many
    points the truth does not resolve (:func:`resolved`: left out). ``within_quoted`` scores
    the two central-value targets by the quoted error instead: the long-lifetime μμ points
    and the yields (one per mass, ``y_pull``) within 1σ and 2σ.

    Example:
        >>> r = {"pull": 0.5, "nsig_dd": 1.1, "n_eff_truth": 100.0, "nsig_truth": 1.0, "mass": 0.3,
        ...      "regime": "eps_low", "channels": ["mumu", "ee"], "y_dd": 1.0, "y_truth": 1.0,
        ...      "facility": "f"}
        >>> c = coverage_counts([r, {**r, "pull": 2.5, "nsig_dd": 1.3}])
        >>> c["within_1sigma"], c["within_2sigma"], c["long_lifetime_mumu_within_20pct"]
        ([1, 2], [1, 2], [1, 2])
        >>> c["within_quoted"]["long_lifetime_mumu_within_1sigma"]
        [1, 2]
        >>> y = coverage_counts([{**r, "y_pull": 1.5}, {**r, "mass": 0.6, "y_pull": -0.5}])
        >>> y["within_quoted"]["yield_within_1sigma"], y["within_quoted"]["yield_within_2sigma"]
        ([1, 2], [2, 2])
    """
    ok = [r for r in rows if resolved(r)]
    pulls = np.array([abs(r["pull"]) for r in ok])
    long = [r for r in ok if r["regime"] == "eps_low" and 0.25 <= r["mass"] <= 1.0
            and "mumu" in r["channels"]]  # fmt: skip
    # the yield is the run's, one per mass whatever the facility
    ys = {r["mass"]: r["y_dd"] / r["y_truth"] for r in rows if r["y_truth"] > 0}
    counts = {
        "within_1sigma": [int(np.sum(pulls <= 1)), int(pulls.size)],
        "within_2sigma": [int(np.sum(pulls <= 2)), int(pulls.size)],
        "long_lifetime_mumu_within_20pct": [
            sum(abs(r["nsig_dd"] / r["nsig_truth"] - 1) <= 0.2 for r in long), len(long)],
        "yield_within_5pct": [sum(abs(v - 1) <= 0.05 for v in ys.values()), len(ys)],
    }  # fmt: skip
    met = {k: bool(n and p / n >= TARGETS[k]) for k, (p, n) in counts.items()}
    y_pulls = np.abs([r["y_pull"] for r in {r["mass"]: r for r in rows
                                            if "y_pull" in r and r["y_truth"] > 0}.values()])
    l_pulls = np.abs([r["pull"] for r in long])
    quoted = {f"{name}_within_{k}sigma": [int(np.sum(v <= k)), int(v.size)]
              for name, v in (("long_lifetime_mumu", l_pulls), ("yield", y_pulls)) for k in (1, 2)}
    return {**counts, "met": met, "targets": dict(TARGETS), "within_quoted": quoted,
            "unresolved": len(rows) - len(ok)}  # fmt: skip


CONTOUR_TARGETS = {
    "contour_within_1sigma": 0.68,
    "contour_within_2sigma": 0.95,
    "eps_high_within_30pct": 0.90,
    "excluded_range_within_one_mass": 1.0,
}
"""The contour's targets, every point scored (one not resolved fails): the truth's ε inside
the data-driven 1σ band at ≥ 68% and 2σ at ≥ 95% of the facility × mass × edge points;
|ln(ε_dd/ε_truth)| ≤ ln 1.3 at ≥ 90% of the ε_high points; per facility the excluded mass
range's ends within one mass point of the truth's."""

BAND_FACTOR_TARGET = 3.0
"""The band informative: its median factor e^w in N_sig at the ε_high edges at most ×3."""


def contour_resolved(point: dict[str, Any], *, fallback_fails: bool = True) -> bool:
    """Whether a :func:`contour_point` (with ``n_eff_truth``, ``n_eff_dd`` and ``fallback``
    as :func:`forward_closure` adds them) is resolved: both ε found on the grid, each resting
    on at least :data:`MIN_TRUTH_SAMPLES` samples, a finite width and (``fallback_fails``)
    the reach's extrapolation size resolved at the edge rather than its fallback."""
    return bool(np.isfinite(point["eps_truth"]) and np.isfinite(point["eps_dd"])
                and np.isfinite(point["width"])
                and point.get("n_eff_truth", np.inf) >= MIN_TRUTH_SAMPLES
                and point.get("n_eff_dd", np.inf) >= MIN_TRUTH_SAMPLES
                and not (fallback_fails and point.get("fallback", False)))  # fmt: skip


def excluded_range_match(rows: Sequence[dict[str, Any]]) -> bool:
    """Whether one facility's excluded mass range (``excluded``: the data-driven N_sig reaches
    the limit somewhere in ε) has both ends within one mass point of the truth's
    (``truth_excluded``), on the facility's scored masses in order; both excluding nothing
    agree, one excluding nothing does not.

    Example:
        >>> r = [{"mass": m, "excluded": d, "truth_excluded": t}
        ...      for m, d, t in ((0.1, 0, 0), (0.2, 1, 0), (0.3, 1, 1), (0.45, 1, 1))]
        >>> excluded_range_match(r), excluded_range_match([{**x, "truth_excluded": 0} for x in r])
        (True, False)
    """
    per = {r["mass"]: (bool(r["excluded"]), bool(r["truth_excluded"])) for r in rows}
    masses = sorted(per)
    dd = [i for i, m in enumerate(masses) if per[m][0]]
    tr = [i for i, m in enumerate(masses) if per[m][1]]
    if not dd or not tr:
        return not dd and not tr
    return abs(dd[0] - tr[0]) <= 1 and abs(dd[-1] - tr[-1]) <= 1


def contour_counts(rows: Sequence[dict[str, Any]], key: str = "contour") -> dict[str, Any]:
    """Score ``rows`` (:func:`forward_closure`) on the contour (each row's ``key``:
    ``contour``, or ``contour_before`` for the widths before an unresolved edge took the
    reach's fallback, whose points then need no resolved size) against
    :data:`CONTOUR_TARGETS`: counts ``[passed, points]`` over all points (one not resolved
    fails), whether each is met, how many are not resolved, the ε ratios ε_dd/ε_truth at the
    resolved ε_low and ε_high points (median, min, max) and the band's median factor e^w at
    ε_high (:data:`BAND_FACTOR_TARGET`; over the ε_high points with a width).

    Example (the truth's ε 10% beyond the data-driven one at both edges, band ×2):
        >>> p = {"eps_truth": 1.1, "eps_dd": 1.0, "width": np.log(2), "within_1": True,
        ...      "within_2": True, "log_ratio": -np.log(1.1), "factor": 2.0}
        >>> r = [{"facility": "f", "mass": 0.3, "regime": g, "excluded": True,
        ...       "truth_excluded": True, "contour": p} for g in ("eps_low", "eps_high")]
        >>> c = contour_counts(r + [{**r[1], "contour": {**p, "eps_truth": float("nan")}}])
        >>> c["contour_within_1sigma"], c["eps_high_within_30pct"], c["unresolved"]
        ([2, 3], [1, 2], 1)
    """
    pts = [(r, r[key]) for r in rows]
    ok = [contour_resolved(p, fallback_fails=key == "contour") for _, p in pts]
    high = [(p, o) for (r, p), o in zip(pts, ok, strict=True) if r["regime"] == "eps_high"]
    facilities = sorted({r["facility"] for r in rows})
    match = [excluded_range_match([r for r in rows if r["facility"] == f]) for f in facilities]
    counts = {
        "contour_within_1sigma": [sum(o and p["within_1"] for (_, p), o in zip(pts, ok, strict=True)), len(pts)],
        "contour_within_2sigma": [sum(o and p["within_2"] for (_, p), o in zip(pts, ok, strict=True)), len(pts)],
        "eps_high_within_30pct": [sum(o and abs(p["log_ratio"]) <= np.log(1.3) for p, o in high), len(high)],
        "excluded_range_within_one_mass": [sum(match), len(match)],
    }  # fmt: skip
    counts = {k: [int(p), int(n)] for k, (p, n) in counts.items()}
    met = {k: bool(n and p / n >= CONTOUR_TARGETS[k]) for k, (p, n) in counts.items()}

    def ratios(regime: str) -> list[float | None]:
        v = np.exp([p["log_ratio"] for (r, p), o in zip(pts, ok, strict=True)
                    if o and r["regime"] == regime])  # fmt: skip
        return [float(f(v)) for f in (np.median, np.min, np.max)] if v.size else [None] * 3

    factors = [p["factor"] for p, _ in high if np.isfinite(p["factor"])]
    band = float(np.median(factors)) if factors else None
    met["band_factor_eps_high"] = band is not None and band <= BAND_FACTOR_TARGET
    return {**counts, "met": met, "targets": dict(CONTOUR_TARGETS),
            "band_factor_eps_high_median": band, "band_factor_target": BAND_FACTOR_TARGET,
            "eps_ratio_eps_high": ratios("eps_high"), "eps_ratio_eps_low": ratios("eps_low"),
            "resolved": int(sum(ok)), "points": len(pts), "unresolved": len(pts) - int(sum(ok)),
            "fallback_edges": sum(bool(p.get("fallback")) for _, p in pts)}  # fmt: skip
