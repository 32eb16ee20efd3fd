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
targets. It checks; it never feeds a correction.
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
    "coverage_counts",
    "facility_config",
    "facility_ctaus",
    "forward_closure",
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
"""The truth's rapidity tilt κ (:class:`gammastar_validation.truth.TiltedMesons`): half the
parents from e^{κy} p(y), for a Gaussian of σ ≈ 1.2 a shift of the mean by κσ² ≈ 1.4 units
forward, where a forward detector at short cτ looks."""


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
    self-normalised mean Σwa/Σw (:func:`_weighted_mean`).

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
    parts_a, parts_w, parts_out = [], [], []
    done, k = 0, 0
    while done < n:
        size = min(chunk, n - done)
        smp = channel_samples(rec or sampler, m, size, geometry, seed=seed + k,
                              channels=tuple(channels))  # fmt: skip
        parts_a.append(sum(wi * smp[c].acceptance_per_sample(ct)
                           for wi, c in zip(w, channels, strict=True)))  # fmt: skip
        last = rec.last if rec is not None else None
        parts_w.append(np.asarray(last["weight"], float) if last and "weight" in last
                       else np.ones(size))  # fmt: skip
        if fiducial is not None and last is not None:
            q, e = np.asarray(last["qT"], float), np.asarray(last["E"], float)
            parts_out.append(~np.asarray(fiducial.contains(np.full(q.size, m), q, e), bool))
        done += size
        k += 1
    return _weighted_mean(np.concatenate(parts_a), np.concatenate(parts_w),
                          np.concatenate(parts_out) if parts_out else None)  # fmt: skip


def _weighted_mean(a: NDArray, wt: NDArray, outside: NDArray | None) -> AcceptanceMean:
    """The self-normalised mean Σwa/Σw of per-sample acceptances ``a`` (n, k) with weights
    ``wt`` (n,), its error √(n/(n − 1) Σw²(a − mean)²)/Σw (two passes: no cancellation; the
    plain standard error of the mean for w ≡ 1), n_eff = (Σwa)²/Σ(wa)² and the part of the
    mean from the samples ``outside``."""
    n, sw = a.shape[0], float(wt.sum())
    wa = wt[:, None] * a
    mean = wa.sum(axis=0) / sw
    dev = (wt[:, None] * (a - mean)) ** 2
    err = np.sqrt(dev.sum(axis=0) * n / max(n - 1, 1)) / sw
    n_eff = kish_size(wa.sum(axis=0), (wa**2).sum(axis=0))
    out = np.zeros(a.shape[1]) if outside is None else wa[outside].sum(axis=0) / sw
    return AcceptanceMean(mean, err, out, n, n_eff)


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
    facility's geometry, NaN where that does not resolve N either). Left out: the target's
    A-dependence, the mock's normalisation, N_POT and the detector efficiency, which the
    truth shares."""
    from gammastar.physics import darkphoton
    from gammastar.reach.acceptance import channel_samples, draw
    from gammastar.yields.extrapolation.nsig import nsig_reach_error
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
            r = nsig_reach_error(split, m, rec.last, smp, ct, redraw=redraw, seed=seed)
            shares.append((a, r))
        tot = sum(a for a, _ in shares)
        out["extrapolation"] = sum(np.where(tot > 0, a / np.where(tot > 0, tot, 1), 0) * r
                                   for a, r in shares)  # fmt: skip
    return out


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
    nsig_truth_err, quoted_rel, quoted, pull, outside_share, n_truth, excluded}`` for one facility config (``cfg``, its
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
    """
    from gammastar.corrections.pair_acceptance import FiducialRegion
    from gammastar.physics import darkphoton
    from gammastar.source.geometry import Geometry
    from gammastar.source.production import load_yields, resolve_yield_scale
    from gammastar.source.source import Source

    yields = load_yields(cfg.resolve(cfg.reach.yields))
    scale, _ = resolve_yield_scale(cfg, yields)
    source = Source.from_config(cfg, yields)
    geometry = Geometry.from_config(cfg.detector)
    ex = yields.extrapolation or {}
    fid = FiducialRegion.from_dict(ex["fiducial"]) if "fiducial" in ex else None
    eps = np.geomspace(cfg.reach.eps_min / 10, cfg.reach.eps_max * 10, eps_points)
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
        cts = np.array([edges["ctau_low"], edges["ctau_high"]])
        dd = acceptance_mean(source, m, samples, geometry, chans, cts, seed=seed_m + 1,
                             fiducial=fid)  # fmt: skip
        ts = truth[m]
        ts.rewind()
        tr = acceptance_mean(ts, m, ts.size, geometry, chans, cts, seed=seed_m + 2)
        yt, yt_rel = (float(v) for v in truth_yield.at(m))
        y_width = yield_width(cfg, yields, m)
        q = quoted_errors(cfg, yields, source, m, geometry, chans, cts, seed=seed_m + 3)
        for k, regime in enumerate(("eps_low", "eps_high")):
            a, at = float(dd.value[k]), float(tr.value[k])
            rel_a = dd.error[k] / a if a > 0 else 0.0
            # the reach's normsys are log-normal (hi = 1 + r, lo = 1/(1 + r)): their widths
            # in ln N add in quadrature
            w = float(np.sqrt(sum(np.log1p(v[k]) ** 2 for v in q.values()) + rel_a**2))
            n_dd, n_tr = y_n * a, yt * at
            e_tr = float(np.hypot(n_tr * yt_rel, yt * tr.error[k]))
            pull = log_pull(n_dd, n_tr, w, e_tr)
            rows.append({
                "facility": cfg.name, "mass": float(m), "regime": regime,
                "ctau": float(cts[k]), "eps": float(edges[regime]),
                "excluded": edges["excluded"], "channels": list(chans),
                "acc_dd": a, "acc_dd_err": float(dd.error[k]),
                "acc_truth": at, "acc_err": float(tr.error[k]),
                "y_dd": y, "y_dd_err": y * y_rel, "y_truth": yt, "y_truth_err": yt * yt_rel,
                "y_quoted_width": y_width, "y_pull": log_pull(y, yt, y_width, yt * yt_rel),
                "nsig_dd": n_dd, "nsig_truth": n_tr, "nsig_truth_err": e_tr,
                "quoted_width": w, "quoted_rel": float(np.expm1(w)),
                "quoted": {k2: float(v[k]) for k2, v in q.items()}, "pull": pull,
                "outside_share": float(dd.outside[k] / a) if a > 0 and fid is not None else None,
                "n_truth": ts.size, "n_eff_truth": float(tr.n_eff[k]),
                "n_eff_dd": float(dd.n_eff[k]),
            })  # fmt: skip
    return rows


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
    :func:`window_half_width` of it: ``sources`` sources of only the channels that reach the
    window (:func:`gammastar_validation.truth.truth_gstar` ``window``: importance sampling by
    channel), the dielectron cocktail below ``seam``, the muon one from it up, their parents
    drawn with the rapidity tilt ``tilt`` (:class:`gammastar_validation.truth.TiltedMesons`,
    weights carried; 0: the plain generator) from ``mesons`` (a PYTHIA pool) or the config's
    parametric spectra."""
    from gammastar.mock.cocktail import ParametricMesons
    from gammastar_validation.truth import TiltedMesons, truth_gstar

    out = {}
    for i, m in enumerate(masses):
        hw = window_half_width(m)
        fc = _flavour(data_cfg, m, seam)
        src = mesons
        if tilt:
            e_max = fc.beam.energy if fc.mock.kinematic_limit else None
            src = TiltedMesons(mesons or ParametricMesons(fc.mock, e_max), tilt)
        tr = truth_gstar(fc, sources, seed=seed + 7 * i, mesons=src, window=(m - hw, m + hw))
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
