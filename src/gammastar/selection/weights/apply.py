"""The pairs' weights: 1/(A·ε) per pair and the like-sign subtraction, on the chunks as they come
or on the whole table, the factors that need every chunk (a second pass over the pair
dataset on the workers), the measured per-pair acceptance and the η → μμ rate.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gammastar.config import AnalysisConfig
from gammastar.config.yields import PolarisationCorrectionConfig
from gammastar.core import rundir, urls
from gammastar.corrections.background import (
    conversion_template_from_config,
    eta_mumu_rate_peak,
    pair_factors,
)
from gammastar.corrections.lambda_correction import (
    MAX_SIMULATION_SHARE,
    MIN_SLOPE,
    corrected,
    read_generated,
    read_simulation,
    selection_correction,
)
from gammastar.corrections.polarisation import lambda_for_acceptance
from gammastar.corrections.unfold.acceptance import (
    AcceptanceReport,
    check_acceptance_outside,
    lost_fraction_from_map,
    lost_fraction_from_sums,
)
from gammastar.corrections.unfold.efficiency import UnfoldReport, check_unfoldable, inverse_weights
from gammastar.errors import InputError
from gammastar.selection import onworkers
from gammastar.selection.executors.processor import map_tasks
from gammastar.selection.pairhists import HistAxes, raw_histograms
from gammastar.selection.weights import second_pass as reweight
from gammastar.selection.weights.pairs import (
    _DTYPES,
    _FINAL_EXTRA,
    WEIGHT_SUMS,
    _AtPairs,
    pair_weights,
)
from gammastar.selection.writer import file_numbers, finish_dataset, write_part

if TYPE_CHECKING:
    import hist
    import pandas as pd


log = logging.getLogger(__name__)
from gammastar.selection.histograms import (
    _like_sign_estimate,
    mass_axis,
)
from gammastar.selection.polarisation import BinRule, _measure_polarisation
from gammastar.selection.records import (
    _Run,
    _Weighted,
)


def _pairs_table(chunks: dict[Any, dict[str, np.ndarray]]) -> pd.DataFrame:
    """Concatenate the chunks in (file, first entry) order, column by column.

    Each chunk column is released once copied, so the peak stays near one table's size.
    """
    import pandas as pd

    keys = sorted(chunks)
    final = bool(keys) and "weight" in chunks[keys[0]]  # weighted by the processor
    dtypes = {**_DTYPES, **dict.fromkeys(_FINAL_EXTRA, np.float64)} if final else _DTYPES
    n = sum(len(chunks[k]["m"]) for k in keys)
    data = {}
    for col, dtype in dtypes.items():
        if col == "weight_raw" or (col == "acc" and "acc" not in chunks[keys[0]]):
            data[col] = np.ones(n)  # not kept per chunk (see DileptonProcessor.process)
            continue
        src = "pT" if col == "qT" else col
        parts = [np.asarray(chunks[k][src], dtype=dtype) for k in keys]
        data[col] = np.concatenate(parts) if parts else np.array([], dtype=dtype)
        if col != "qT" and src != "pT":
            for k in keys:
                chunks[k].pop(src, None)
    chunks.clear()
    return pd.DataFrame(data, copy=False)


def _chunk_moments(chunks: dict[Any, dict[str, np.ndarray]]) -> list[np.ndarray] | None:
    """The per-pair acceptance's moments that the chunks returned (``_moments``,
    :class:`~gammastar.selection.weights.pairs.WeightSpec` ``moments``), taken out of them: a
    list of (4, n_i) blocks in the rows' order (not joined: the polarisation measurement
    gathers each bin's pairs from them; ``None``: not every chunk has them)."""
    parts = [chunks[k].pop("_moments", None) for k in sorted(chunks)]
    held = [p for p in parts if p is not None]
    if not parts or len(held) < len(parts):
        return None
    return held


def _weigh(
    cfg: AnalysisConfig,
    run: _Run,
    result: dict[str, Any],
    cutflow: dict[str, int],
    files_used: list[str],
    exe: Any = None,
) -> _Weighted:
    """The pairs with their final weights: from the chunks (``run.spec``: checked here; the
    factors that need every chunk, k_b of ``binwise`` and the η → μμ ``rate`` scale, applied
    by the second pass, :func:`_second_pass`) or computed here on the whole table (a measured
    λ_θ, fitted here first), both through :func:`gammastar.selection.weights.pairs.pair_weights`."""
    import time

    streamed = result.get("streamed")
    chunks = result.pop("pairs").chunks if "pairs" in result else {}
    n_pairs = int(result.get("rows", 0))
    if n_pairs == 0:
        raise InputError(
            f"no pair passes the selection in {len(files_used)} file(s) "
            f"({', '.join(files_used)[:300]}); cut flow: "
            + ", ".join(
                f"{k}={v}"
                for k, v in cutflow.items()
                if k in ("events", "leptons_energy", "leptons_theta", "pairs", "pairs_mass")
            )
        )
    raw = result.get("hists")
    moments = _chunk_moments(chunks)
    pairs = None
    if raw is None:  # a processor without histograms: from the table
        pairs = _pairs_table(chunks)
        raw = raw_histograms(
            HistAxes.from_config(cfg), {c: pairs[c].to_numpy() for c in ("m", "pT", "E", "charge")}
        )
    est = _like_sign_estimate(cfg, raw)
    edges = np.asarray(mass_axis(cfg).edges)
    unfolded = result.get("unfolded")
    eta: dict[str, Any] = {"mode": cfg.background.remove_eta_mumu}
    if run.spec is not None:  # the factors of the whole sample, on the chunks or the parts
        t = time.perf_counter()
        second = _second_pass(cfg, result, chunks, est, edges, exe)
        if second is not None:
            unfolded, rate_report = second
            eta.update(rate_report)
        run.times["reweight"] = time.perf_counter() - t
    if run.spec is None and getattr(exe, "held", None):  # a measured λ_θ on the workers
        return _weigh_on_workers(cfg, run, result, cutflow, exe, raw, est, edges, eta)
    if pairs is None and streamed is None:
        pairs = _pairs_table(chunks)
    w = _Weighted(pairs, None if streamed is None else _location(streamed), raw, est, None, None,
                  None, eta, moments=moments)  # fmt: skip
    if run.spec is None:  # weights of the whole sample (a measured λ_θ): here
        if run.fit_lambda:
            t = time.perf_counter()
            run.am = _measured_acceptance(cfg, run, w, cutflow["pairs_outside_map"], edges)
            run.times["fit_lambda"] = time.perf_counter() - t
        counts, sums = _weigh_table(cfg, run, w, cutflow["pairs_outside_map"], edges,
                                    w.acceptance, w.reuse)  # fmt: skip
        w.acceptance, w.reuse = None, {}  # not held while the outputs are written
        if cfg.background.remove_eta_mumu == "rate":
            w.eta.update(_remove_eta_mumu_rate(cfg, pairs, edges))
        elif cfg.background.remove_eta_mumu == "truth":
            w.eta["pairs_removed"] = cutflow["pairs_eta_mumu_removed"]
    else:  # the chunks' weights: their summed report counts checked here
        counts = {k: int(v) for k, v in result.get("report", {}).items()}
        sums = result.get("sums", {})
        w.eff_report = UnfoldReport(
            n_pairs, cutflow["pairs_outside_map"], counts.get("n_zero_efficiency", 0),
            run.em.source,
        )  # fmt: skip
        check_unfoldable(w.eff_report, cfg.unfold.outside_map, run.em)
        w.unfolded = unfolded
        if cfg.background.remove_eta_mumu == "truth":
            w.eta["pairs_removed"] = cutflow["pairs_eta_mumu_removed"]
    _warn_efficiency(cfg, w.eff_report)
    if run.am is not None:
        w.acc_report = _acceptance_report(cfg, run.am, counts, sums, edges)
    return w


def _weigh_on_workers(
    cfg: AnalysisConfig,
    run: _Run,
    result: dict[str, Any],
    cutflow: dict[str, int],
    exe: Any,
    raw: Any,
    est: Any,
    edges: np.ndarray,
    eta: dict[str, Any],
) -> _Weighted:
    """:func:`_weigh` of a measured λ_θ with the pairs held on the workers (Dask's, or the
    process pool's files)
    (:func:`gammastar.selection.onworkers.measured_on_workers`: the steps of
    :func:`_measured_acceptance` and :func:`_weigh_table` per chunk, sums to here); the
    workers write the final parts into the staging dataset."""
    u = cfg.unfold
    if run.staging is None:  # _prepare_run makes one for a measured λ_θ on the workers
        raise RuntimeError("a measured lambda_theta on the workers needs a staging directory")
    dataset = Path(run.staging) / rundir.PAIRS
    numbers = file_numbers(f for spec in run.checked.fileset.values() for f in spec["files"])
    spec = onworkers.Weighing(run.am, edges, est.factor, u.min_acceptance, u.outside_map,
                              conversion_template_from_config(cfg))  # fmt: skip
    # --no-shared-staging: every part comes back as bytes (a directory "" no worker sees)
    where = str(dataset) if run.shared_staging else ""
    writer = onworkers.PartWriter(where, numbers, HistAxes.from_config(cfg), edges)
    eff_report: list[UnfoldReport] = []

    def check(n_pairs: int, n_zero: int) -> None:
        rep = UnfoldReport(n_pairs, cutflow["pairs_outside_map"], n_zero, run.em.source)
        check_unfoldable(rep, u.outside_map, run.em)
        eff_report.append(rep)

    def correct(block: dict[str, Any]) -> dict[str, Any]:
        if u.polarisation_correction is None:
            return block
        return _correct_polarisation(cfg, u.polarisation_correction, run.am, block)

    rate = None
    if cfg.background.remove_eta_mumu == "rate":
        rate = partial(_rate_scale, cfg, edges)
    rule = BinRule.from_config(cfg)
    res = onworkers.measured_on_workers(exe, spec, writer, rate=rate, bins=rule,
                                        correct=correct, check=check)  # fmt: skip
    run.times.update(res.times)
    run.am = res.am
    for name, data in res.parquet.items():  # workers that do not see the staging directory
        write_part(dataset, name, data)
    streamed = finish_dataset(dataset, res.parts)
    eta.update(res.eta)
    if cfg.background.remove_eta_mumu == "truth":
        eta["pairs_removed"] = cutflow["pairs_eta_mumu_removed"]
    w = _Weighted(None, streamed, raw, est, eff_report[0], None, res.unfolded, eta,
                  polarisation=res.polarisation)  # fmt: skip
    _warn_efficiency(cfg, w.eff_report)
    w.acc_report = _acceptance_report(cfg, run.am, res.counts, res.sums, edges)
    return w


def _rate_scale(
    cfg: AnalysisConfig, edges: np.ndarray, unf: np.ndarray
) -> tuple[np.ndarray, dict[str, Any]]:
    """The ``rate`` removal's scale per mass bin from the summed Σ weight per bin ``unf``
    (:func:`_remove_eta_mumu_rate`'s, without the pairs) and its report."""
    peak, n_dal, n_mumu = eta_mumu_rate_peak(
        edges, unf, dalitz_window=cfg.background.eta_dalitz_window,
        sigma=cfg.background.eta_peak_sigma,
    )  # fmt: skip
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(unf > 0, np.clip(1.0 - peak / unf, 0.0, None), 1.0)
    return scale, {"n_eta_dalitz": n_dal, "n_eta_mumu_predicted": n_mumu}


def _needs_second_pass(cfg: AnalysisConfig) -> bool:
    """Whether a weight factor needs every chunk: k_b (``ss_weight: binwise`` or a mixed R) or
    the η → μμ ``rate`` scale (:func:`_second_pass`)."""
    bkg = cfg.background
    return bkg.ss_weight == "binwise" or bkg.r_factor == "mixed" or bkg.remove_eta_mumu == "rate"


def _second_pass(
    cfg: AnalysisConfig,
    result: Mapping[str, Any],
    chunks: dict[Any, dict[str, np.ndarray]],
    est: Any,
    edges: np.ndarray,
    exe: Any,
) -> tuple[dict[str, hist.Hist] | None, dict[str, Any]] | None:
    """The chunk weights times the factors that need every chunk (:mod:`.reweight`): k_b per
    mass bin for the SS pairs (``ss_weight: binwise`` or a mixed R; the chunks used −1) and
    the η → μμ ``rate`` scale (from the chunks' summed Σ weight per bin). On the parts of the
    pair dataset each worker rewrites the ``weight`` of its own parts (``exe``'s tasks; in this
    process where some parts came as bytes: the workers do not see the directory); on chunks
    in memory here. Returns the unfolded histograms and the rate's report (``None``: the
    chunk weights are final)."""
    bkg = cfg.background
    binwise = bkg.ss_weight == "binwise" or bkg.r_factor == "mixed"
    rate = (
        {"dalitz_window": bkg.eta_dalitz_window, "sigma": bkg.eta_peak_sigma}
        if bkg.remove_eta_mumu == "rate"
        else None
    )
    rw, report = reweight.plan(
        edges,
        HistAxes.from_config(cfg),
        ss_factor=est.factor if binwise else None,
        sums=result.get("mass_sums"),
        rate=rate,
    )
    if rw is None:
        return None
    if result.get("streamed") is not None:
        paths = [_join(result["streamed"], n) for n in result["parts"]]
        local = exe is None or result.get("driver_written")
        mapper = (lambda fn, xs: [fn(x) for x in xs]) if local else partial(map_tasks, exe)
        unfolded, removed = reweight.reweight_parts(rw, paths, mapper)
    else:
        unfolded, removed = reweight.reweight_columns(rw, chunks)
    if rate is not None:
        report["n_eta_mumu_removed"] = removed
    return unfolded, report


def _measured_acceptance(
    cfg: AnalysisConfig, run: _Run, w: _Weighted, n_outside: int, edges: np.ndarray
) -> Any:
    """``unfold.decay_lambda_theta: measured``: the acceptance of the λ_θ(m) measured from this
    run's pairs (``w.pairs``, in memory), without a second pass over the input files.

    The acceptance's four decay-angle moments are interpolated at every pair once, in single
    precision (:meth:`~gammastar.corrections.pair_acceptance.table.PairAcceptance.pair_moments`); the pairs
    are weighted as the isotropic selection weighs them (:func:`_weigh_table` with A = ⟨a⟩,
    the first moment, which is ``run.am`` at λ_θ = 0; the η → μμ ``rate`` scaling too), and
    λ_θ(m) is fitted to them (:func:`_measure_polarisation`): **the measured λ_θ(m) is the fit
    on the pairs of the isotropic fiducial region** (A at λ_θ = 0 ≥ ``unfold.min_acceptance``,
    fit weights k_b/ε), and that fit is the ``polarisation`` block the selection writes
    (``w.polarisation``, ``used_in_acceptance`` true). The acceptance follows it at the
    table's mass nodes (:meth:`~gammastar.corrections.pair_acceptance.table.PairAcceptance.with_lambda`: the
    moment tables, no new tabulation), its A at every pair from the same moments
    (:meth:`~gammastar.corrections.pair_acceptance.table.PairAcceptance.acceptance_at`, no second
    interpolation). The caller then weights the same table again with it: pair by pair the
    numbers that a first pass over the files (a selection at λ_θ = 0, whose block this is) and
    a second pass (one with the acceptance of its λ_θ(m)) would give, to the moments' single
    precision (A within
    ~2·10⁻⁶; λ far below its errors), the sums over pairs in another order (one table instead
    of chunks) (``tests/test_select_onepass.py``; docs/explanation/method.md). There is no second fit on the
    final weights' pairs: only the few pairs that cross ``min_acceptance`` differ, which
    moves the λ far below their errors (docs/explanation/method.md).

    Raises:
        InputError: no mass bin has a fit (:func:`gammastar.corrections.polarisation.lambda_for_acceptance`).
    """
    import time

    m, pt, pz = (w.table()[c].to_numpy() for c in ("m", "pT", "pz"))
    p, theta = np.hypot(pt, pz), np.arctan2(pt, pz)  # as the table's lookup computes them
    # the moments at every pair; the isotropic A is their first, ⟨a⟩ (clipped to [0, 1] as
    # the table's lookup clips it)
    # in single precision (≲ 2·10⁻⁶ from the float64 numbers, far below the tables' own
    # ~10⁻³ accuracy and the λ's errors: docs/explanation/method.md): faster, in half the memory
    moments = run.am.pair_moments(m, p, theta, dtype=np.float32)
    del p, theta
    a0 = _AtPairs(np.clip(moments.values[0], 0.0, 1.0, out=np.empty(len(m))), run.am.source)
    # the isotropic weights (reports: final's); w.reuse: what the final weighting shares
    _weigh_table(cfg, run, w, n_outside, edges, a0, w.reuse)
    del a0
    if cfg.background.remove_eta_mumu == "rate":
        _remove_eta_mumu_rate(cfg, w.pairs, edges)
    t = time.perf_counter()
    block = _measure_polarisation(cfg, run.am, w.pairs, None, True, moments.values)
    run.times["polarisation"] = time.perf_counter() - t  # select.json timings_s
    if cfg.unfold.polarisation_correction is not None:
        t = time.perf_counter()
        block = _correct_polarisation(cfg, cfg.unfold.polarisation_correction, run.am, block)
        run.times["polarisation_correction"] = time.perf_counter() - t
    w.polarisation = block
    pol_edges, lam = lambda_for_acceptance(block, "select (lambda_theta fit)")
    nodes = run.am.lambda_nodes(pol_edges, lam)
    am = run.am.with_lambda(nodes)
    # its A at every pair for the final weights: its lookup's numbers to rounding, from the
    # moments interpolated above (no second interpolation); they are released before the
    # final weights are computed
    w.acceptance = _AtPairs(run.am.acceptance_at(moments, nodes), am.source)
    return am


def _correct_polarisation(
    cfg: AnalysisConfig, pc: PolarisationCorrectionConfig, am: Any, block: dict[str, Any]
) -> dict[str, Any]:
    """``unfold.polarisation_correction`` (``pc``): the measured λ_θ corrected for the bins'
    selection of decay angles with the configured simulation
    (:mod:`gammastar.corrections.lambda_correction`)."""

    paths = [cfg.resolve(p) for p in pc.simulation]
    rows = read_simulation(paths, tree=pc.tree)
    gen = None if pc.generated_tree is None else read_generated(paths, tree=pc.generated_tree)
    corr = selection_correction(rows, am, block["mass_edges"], cfg.unfold.min_acceptance, gen)
    out = corrected(block, corr)
    out["selection_correction"]["simulation"] = [str(p) for p in paths]
    out["selection_correction"]["truth_tree"] = pc.generated_tree or pc.tree
    out["selection_correction"]["truth_side"] = (
        f"'{pc.tree}': the reconstructed γ* at their truth" if gen is None else
        f"'{pc.generated_tree}': the generator-level γ* at the analysis's lepton cuts"
    )  # fmt: skip
    bad = out["selection_correction"]["uncorrected_bins"]
    if bad:
        log.warning(
            "select: unfold.polarisation_correction: %d polarisation bin(s) left as measured "
            "(no λ_θ fit in the data or the simulation there, or a response slope below %g): "
            "%s", len(bad), MIN_SLOPE, bad,
        )  # fmt: skip
    share = np.asarray(out["selection_correction"]["simulation_share"], dtype=np.float64)
    big = np.flatnonzero(share > MAX_SIMULATION_SHARE)  # NaN (bins left as measured): False
    if big.size:
        edges = block["mass_edges"]
        log.warning(
            "select: unfold.polarisation_correction: the simulation's own statistics make %s of "
            "the corrected lambda_theta's variance (above %.0f%%) in the polarisation bin(s) %s "
            "GeV: its fluctuation is shared by every analysis that uses it; a simulation "
            "several times the data's size keeps it small (docs/explanation/method.md)",
            "/".join(f"{share[i]:.0%}" for i in big), 100 * MAX_SIMULATION_SHARE,
            ", ".join(f"{edges[i]:.3f}-{edges[i + 1]:.3f}" for i in big),
        )  # fmt: skip
    log.info(
        "select: lambda_theta corrected for the bins' selection (simulation: shift at its truth, "
        "response slope) %s",
        ", ".join(f"{d:+.3f}, {s:.2f}" for d, s in zip(corr.delta, corr.slope, strict=True)),
    )
    return out


def _weigh_table(
    cfg: AnalysisConfig,
    run: _Run,
    w: _Weighted,
    n_outside: int,
    edges: np.ndarray,
    acceptance: Any = None,
    reuse: dict[str, Any] | None = None,
) -> tuple[dict[str, int], dict[str, float]]:
    """The final weights of the whole table (``w.pairs``, columns added in place) with
    :func:`gammastar.selection.weights.pairs.pair_weights`: 1/ε (raising as ``unfold.outside_map`` says), the
    like-sign factor k_b of the pair's mass bin, 1/A of ``acceptance`` (default ``run.am``),
    the conversion template's 1/(1 + R) where configured; returns the report counts and sums.

    ``reuse``: a dict that the first of two weightings of the same table (a measured λ_θ's
    isotropic one) fills and the second takes from: 1/ε with its report, the like-sign
    factors, the template, and the ``acc`` and ``weight`` arrays, which the second call
    overwrites (the same numbers, without computing them twice, and no fresh memory for two
    new 16 MB columns on 2·10⁶ pairs, whose first touch costs system time)."""

    pairs = w.table()
    n = len(pairs)
    reuse = {} if reuse is None else reuse
    if "inv" in reuse:
        inv, w.eff_report = reuse["inv"], reuse["eff_report"]
        cols, ss_factor, conversion = reuse["cols"], reuse["ss_factor"], reuse["conversion"]
        acc, weight = reuse["acc"], reuse["weight"]
    else:
        inv, w.eff_report = inverse_weights(
            pairs["eff"].to_numpy(), n_outside=n_outside, on_missing=cfg.unfold.outside_map,
            em=run.em,
        )  # fmt: skip
        cols = {c: pairs[c].to_numpy() for c in ("m", "pT", "pz", "charge")}
        ss_factor = pair_factors(cols["m"], cols["charge"], edges, w.estimate.factor)
        conversion = conversion_template_from_config(cfg)
        acc, weight = np.empty(n), np.empty(n)
        reuse.update(inv=inv, eff_report=w.eff_report, cols=cols, ss_factor=ss_factor,
                     conversion=conversion, acc=acc, weight=weight)  # fmt: skip
    counts: dict[str, int] = {}
    sums: dict[str, float] = {}
    # in blocks of rows, as the chunks do: pair_weights' temporaries stay small (on the whole
    # table they were ~10 arrays of its length at once: memory the process had to grow into)
    for b0 in range(0, max(n, 1), _WEIGH_ROWS):
        sl = slice(b0, min(n, b0 + _WEIGH_ROWS))
        acc[sl], weight[sl], c_blk, s_blk = pair_weights(
            {c: v[sl] for c, v in cols.items()},
            inv[sl],
            ss_factor[sl],
            acceptance=_rows_of(run.am if acceptance is None else acceptance, sl),
            min_acceptance=cfg.unfold.min_acceptance,
            outside_map=cfg.unfold.outside_map,
            conversion=conversion,
        )
        for k, n_k in c_blk.items():
            counts[k] = counts.get(k, 0) + n_k
        for k, s_k in s_blk.items():
            sums[k] = sums.get(k, 0.0) + s_k
    _set_column(pairs, "acc", acc)
    if "weight_raw" not in pairs:  # 1 (the measured λ_θ's second weighting: already there)
        _set_column(pairs, "weight_raw", np.ones(n))
    _set_column(pairs, "weight", weight)
    return counts, sums


def _set_column(df: pd.DataFrame, name: str, values: np.ndarray) -> None:
    """``df[name] = values`` without a copy: pandas (copy-on-write) copies a plain array it
    is given, a Series built on it without a copy it keeps (a copy's fresh
    pages cost system time on their first touch)."""
    import pandas as pd

    df[name] = pd.Series(values, index=df.index, copy=False)


_WEIGH_ROWS = 1 << 17
"""Rows per :func:`~gammastar.selection.weights.pairs.pair_weights` call of :func:`_weigh_table`."""


def _rows_of(acceptance: Any, sl: slice) -> Any:
    """The acceptance for the rows ``sl`` of the table: an :class:`_AtPairs` (values per
    row) is sliced; a map or table looks the rows up itself."""
    if isinstance(acceptance, _AtPairs):
        return _AtPairs(acceptance.values[sl], acceptance.source)
    return acceptance


def _warn_efficiency(cfg: AnalysisConfig, rep: Any) -> None:
    if rep.n_outside or rep.n_zero:
        log.warning(
            "%d pair(s) outside the efficiency map (%s) and %d at ε = 0 (weight 0) (%s)",
            rep.n_outside,
            "nearest bin's ε" if cfg.unfold.outside_map == "nearest" else "weight 0",
            rep.n_zero,
            rep.source,
        )


def _acceptance_report(
    cfg: AnalysisConfig,
    am: Any,
    counts: Mapping[str, int],
    sums: Mapping[str, float],
    edges: np.ndarray,
) -> dict[str, Any]:
    """``select.json`` ``unfold.acceptance``: the counts and sums of
    :func:`gammastar.selection.weights.pairs.pair_weights` (over chunks or the table) and the map's lost
    fraction per mass bin; a warning when pairs get weight 0."""

    if cfg.unfold.outside_map == "error":
        check_acceptance_outside(am, counts.get("acc_n_outside", 0))
    arep = AcceptanceReport(
        source=am.source,
        min_acceptance=float(cfg.unfold.min_acceptance),
        n_pairs=counts.get("acc_n_pairs", 0),
        n_outside=counts.get("acc_n_outside", 0),
        n_below_min=counts.get("acc_n_below_min", 0),
        n_below_min_os=counts.get("acc_n_below_min_os", 0),
        n_below_min_ss=counts.get("acc_n_below_min_ss", 0),
        n_zero_acceptance=counts.get("acc_n_zero", 0),
    )
    arep.lost_fraction_pairs, arep.lost_fraction_pairs_err = lost_fraction_from_sums(
        *(float(sums.get(k, 0.0)) for k in WEIGHT_SUMS)
    )
    overall, per_bin = lost_fraction_from_map(am, cfg.unfold.min_acceptance, edges)
    arep.lost_fraction_map = overall
    if per_bin is not None:
        arep.lost_fraction_map_per_mass_bin = {
            "edges": edges.tolist(),
            "values": [None if not np.isfinite(v) else v for v in per_bin],
        }
    if arep.n_below_min or arep.n_outside:
        pct = lambda f: "n/a" if f is None else f"{100 * f:.1f}%"
        log.warning(
            "%d of %d pair(s) (%d OS, %d SS) in map bins with acceptance A < %g get "
            "weight 0 (%s); estimated lost fraction of the full-phase-space yield: %s "
            "(pairs), %s (map); %d pair(s) outside the map (%s)",
            arep.n_below_min,
            arep.n_pairs,
            arep.n_below_min_os,
            arep.n_below_min_ss,
            cfg.unfold.min_acceptance,
            am.source,
            pct(arep.lost_fraction_pairs),
            pct(arep.lost_fraction_map),
            arep.n_outside,
            "nearest bin's A" if cfg.unfold.outside_map == "nearest" else "weight 0",
        )
    return arep.as_dict()


def _remove_eta_mumu_rate(
    cfg: AnalysisConfig, pairs: pd.DataFrame, edges: np.ndarray
) -> dict[str, Any]:
    """``background.remove_eta_mumu: rate``: scale the weights of each mass bin by
    1 − (predicted η → μμ peak)/(unfolded yield) (:func:`gammastar.corrections.background.
    eta_mumu_rate_peak`); returns the ``eta_mumu`` report."""

    mvals = pairs["m"].to_numpy()
    unf = np.histogram(mvals, bins=edges, weights=pairs["weight"].to_numpy())[0]
    scale, report = _rate_scale(cfg, edges, unf)
    idx = np.clip(np.searchsorted(edges, mvals, side="right") - 1, 0, len(scale) - 1)
    old_w = pairs["weight"].to_numpy()
    _set_column(pairs, "weight", old_w * scale[idx])
    # predicted vs what the reweighting took out (less where a bin holds fewer than the
    # predicted peak, the scale clipped at 0, or a bin is empty)
    return {**report, "n_eta_mumu_removed": float(np.sum(old_w - pairs["weight"].to_numpy()))}


def _location(streamed: Any) -> Path | str:
    """The streamed dataset's directory: a path, or a URL kept as it is."""
    return streamed if urls.is_url(streamed) else Path(streamed)


def _join(directory: Any, name: str) -> str:
    """A part's path or URL in the dataset ``directory``."""
    return urls.join(directory, name) if urls.is_url(directory) else os.path.join(directory, name)
