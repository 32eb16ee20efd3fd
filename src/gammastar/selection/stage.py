"""Columnar dilepton selection: the driver of ``gammastar select``.

:func:`select` (the Python twin of ``gammastar select CONFIG``) is a thin orchestration over
steps: check the inputs and maps, run the coffea processor (:mod:`gammastar.selection.processor`) over
the pure chunk steps of :mod:`gammastar.selection.chunk` (four-vectors, cuts, pairs, per-pair weights), the like-sign estimate (:mod:`gammastar.corrections.background`), the weights of the
whole table where they need the whole sample (through the same
:func:`gammastar.selection.chunk.pair_weights`), the histograms, and ``pairs.parquet``,
``histograms.root`` and ``select.json`` written atomically (docs/explanation/method.md).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from gammastar import io
from gammastar.config import AnalysisConfig, flavour_config, load_config
from gammastar.core import rundir
from gammastar.core.artifacts import atomic_paths, check_writable, json_text, make_meta
from gammastar.core.results import StageResult
from gammastar.corrections.background import (
    ESTIMATORS,
    conversion_template_from_config,
    eta_mumu_rate_peak,
    like_sign_estimate,
    pair_factors,
    r_factor_mixed,
)
from gammastar.corrections.lambda_correction import (
    MAX_SIMULATION_SHARE,
    MIN_SLOPE,
    corrected,
    read_generated,
    read_simulation,
    selection_correction,
)
from gammastar.corrections.pair_acceptance import fiducial_from_config
from gammastar.corrections.polarisation import (
    MIN_PAIRS,
    lambda_for_acceptance,
    measure,
    narrow_peaks,
    peak_safe_edges,
    polarisation_edges,
)
from gammastar.corrections.unfold import (
    PHASE_SPACE_DETECTOR,
    PHASE_SPACE_FIDUCIAL,
    PHASE_SPACE_FULL,
    AcceptanceReport,
    UnfoldReport,
    bayesian_unfold,
    bayesian_unfold_variance,
    check_acceptance_outside,
    check_unfoldable,
    inverse_weights,
    load_acceptance_map,
    load_efficiency_map,
    lost_fraction_from_map,
    lost_fraction_from_sums,
    response_matrix,
    split_map_spec,
)
from gammastar.errors import ConfigError, InputError
from gammastar.physics.darkphoton import LEPTON_CHANNELS
from gammastar.selection import reweight
from gammastar.selection.chunk import (  # the pure chunk steps
    _DTYPES,
    _FINAL_EXTRA,
    CUTFLOW_KEYS,
    EXECUTORS,
    WEIGHT_SUMS,
    Cuts,
    Execution,
    HistAxes,
    WeightSpec,
    pair_weights,
    raw_histograms,
    unfolded_histograms,
)
from gammastar.selection.plausibility import Plausibility
from gammastar.selection.processor import (
    ChunkReader,
    ChunkSink,
    DileptonProcessor,
    map_tasks,
    open_executor,
    run_processor,
)
from gammastar.selection.writer import file_numbers

if TYPE_CHECKING:
    import hist
    import pandas as pd


log = logging.getLogger(__name__)


def mass_axis(cfg: AnalysisConfig) -> hist.axis.Regular:
    """The one mass axis shared by every output histogram."""
    return HistAxes.from_config(cfg).mass()


def like_sign(cfg: AnalysisConfig, raw: Mapping[str, hist.Hist]) -> Any:
    """The like-sign estimate (:func:`gammastar.corrections.background.like_sign_estimate`) of the
    config's estimator (``background.ss_weight``) from the raw ``pp_m``/``mm_m`` counts:
    one estimate for ``comb_m``, ``signal_m`` and the per-pair SS weights."""

    b = cfg.background
    vp, vm = raw["pp_m"].view(), raw["mm_m"].view()
    r: Any = b.r_factor
    if r == "mixed":
        r = mixed_r(raw)[0]
    return like_sign_estimate(
        vp["value"],
        vm["value"],
        vp["variance"],
        vm["variance"],
        r=r,
        estimator=ESTIMATORS[b.ss_weight],
        min_counts=b.min_like_sign,
    )


MIN_MIXED = 100.0
"""Mixed pairs of each charge class a mass bin needs for its own R (else a window)."""


def mixed_r(raw: Mapping[str, hist.Hist]) -> tuple[np.ndarray, np.ndarray]:
    """R per mass bin from the mixed-event histograms ``mix_{os,pp,mm}_m`` in ``raw``
    (:func:`gammastar.corrections.background.r_factor_mixed`)."""

    if "mix_os_m" not in raw:
        raise ConfigError(
            "background.r_factor: 'mixed' needs the mixed-event histograms, which this run "
            "did not fill"
        )
    return r_factor_mixed(
        *(raw[f"mix_{c}_m"].values() for c in ("os", "pp", "mm")), min_counts=MIN_MIXED
    )


def fill_histograms(
    cfg: AnalysisConfig,
    pairs: pd.DataFrame | None,
    raw: Mapping[str, hist.Hist] | None = None,
    unfolded: Mapping[str, hist.Hist] | None = None,
    estimate: Any = None,
) -> dict[str, hist.Hist]:
    """All output histograms from the (weighted) pairs table.

    ``os_m``, ``pp_m``, ``mm_m``: raw counts (``raw`` from the processor, or filled from the
    table); ``comb_m`` the like-sign estimate k_b (N++ + N−−) of :func:`like_sign`
    (``estimate``, default computed from ``raw``): 2R√(N++N−−) per populated mass bin for
    ``ss_weight: binwise``, R(N++ + N−−) for ``constant``, with propagated variance; the
    same per-mass-bin k_b on the (m, qT, E) cells of ``comb_m_qT_E`` (variance
    k_b²(σ²++ + σ²−−) per cell, k_b's own uncertainty neglected there); ``signal_m = os_m −
    comb_m``; ``unfolded_m``: Σ ``weight`` over all pairs (OS 1/ε, SS −k_b/ε: the same
    estimator; ``unfolded`` from the processor, or filled from the table); the same with
    ``_m_qT_E`` on (m, qT, E). ``pairs`` may be ``None`` when both are given.
    """
    import hist

    axes = HistAxes.from_config(cfg)
    if raw is None:
        raw = raw_histograms(axes, {c: pairs[c].to_numpy() for c in ("m", "pT", "E", "charge")})
    if unfolded is None:
        unfolded = unfolded_histograms(
            axes, {c: pairs[c].to_numpy() for c in ("m", "qT", "E", "weight")}
        )
    est = like_sign(cfg, raw) if estimate is None else estimate
    # k_b on the flow bins too: the nearest bin's (as the per-pair weights take it)
    k_flow = np.concatenate([est.factor[:1], est.factor, est.factor[-1:]])
    out: dict[str, hist.Hist] = {}
    for suffix, ax in (("m", [axes.mass()]), ("m_qT_E", axes.axes3())):
        os_h, pp_h, mm_h = (raw[f"{c}_{suffix}"] for c in ("os", "pp", "mm"))
        comb_h = hist.Hist(*ax, storage=hist.storage.Weight())
        vp, vm = pp_h.view(flow=True), mm_h.view(flow=True)
        k = k_flow.reshape((-1,) + (1,) * (vp.ndim - 1))
        val = k * (vp["value"] + vm["value"])
        var = k**2 * (vp["variance"] + vm["variance"])
        if suffix == "m":  # the in-range bins: the estimate itself, with k_b's uncertainty
            val[1:-1], var[1:-1] = est.value, est.variance
        comb_h.view(flow=True)["value"] = val
        comb_h.view(flow=True)["variance"] = var
        sig_h = hist.Hist(*ax, storage=hist.storage.Weight())
        vo = os_h.view(flow=True)
        sig_h.view(flow=True)["value"] = vo["value"] - val
        sig_h.view(flow=True)["variance"] = vo["variance"] + var
        unf_h = unfolded[f"unfolded_{suffix}"]
        for name in ("mix_os", "mix_pp", "mix_mm"):  # r_factor: mixed
            if f"{name}_{suffix}" in raw:
                out[f"{name}_{suffix}"] = raw[f"{name}_{suffix}"]
        for name, h in (
            ("os", os_h),
            ("pp", pp_h),
            ("mm", mm_h),
            ("comb", comb_h),
            ("signal", sig_h),
            ("unfolded", unf_h),
        ):
            out[f"{name}_{suffix}"] = h
    return out


# --------------------------------------------------------------------------- result
@dataclass(frozen=True, kw_only=True)
class SelectResult(StageResult):
    """What :func:`select` wrote: ``select.json`` (``path``, the mark of a finished run) and its
    ``document``; the other files are in ``output_dir``.

    ``pairs`` is the pairs table; when the workers wrote it (parallel executors: the
    ``pairs.parquet/`` dataset of one part per chunk), it is read from there on first
    access.
    """

    output_dir: Path
    _pairs: pd.DataFrame | None = field(repr=False)
    histograms: dict[str, Any] = field(repr=False)
    cutflow: dict[str, int] = field(repr=False)
    counts: dict[str, Any]
    unfold: dict[str, Any]
    bad_files: dict[str, str]
    meta: dict[str, Any] = field(repr=False)
    files: dict[str, Path] = field(default_factory=dict, repr=False)

    @property
    def pairs(self) -> pd.DataFrame:
        """The pairs table (= ``pairs.parquet``)."""
        if self._pairs is None:
            import pandas as pd

            # a cache, not a change of the result: the table is that of pairs.parquet
            object.__setattr__(self, "_pairs", pd.read_parquet(self.files[rundir.PAIRS]))
        return self._pairs


OUTPUT_FILES = rundir.stage_outputs("select")  # pairs.parquet, histograms.root, select.json


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


def _write_parquet(path: Path, df: pd.DataFrame, rows_per_group: int = 1_000_000) -> None:
    """Write the pairs table in row groups (LZ4, dictionaries only for the small-cardinality
    columns): about twice as fast as pandas' default (snappy, dictionaries everywhere) at the
    same size, and only one row group at a time is converted to Arrow."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = {c: df[c].to_numpy() for c in df.columns}
    schema = pa.schema([(c, pa.from_numpy_dtype(v.dtype)) for c, v in cols.items()])
    with pq.ParquetWriter(
        path, schema, compression="lz4", use_dictionary=["charge", "channel"]
    ) as w:
        for start in range(0, max(len(df), 1), rows_per_group):
            sl = slice(start, start + rows_per_group)
            w.write_table(
                pa.Table.from_arrays([pa.array(v[sl]) for v in cols.values()], schema=schema)
            )


def select(
    config: AnalysisConfig | str | os.PathLike[str],
    inputs: Iterable[str | os.PathLike[str]] | None = None,
    *,
    execution: Execution | None = None,
    skip_bad_files: bool = False,
    output: str | os.PathLike[str] | None = None,
    force: bool = False,
) -> SelectResult:
    """Select dilepton pairs, subtract the like-sign background, unfold; write the outputs.

    The Python twin of ``gammastar select CONFIG [--input FILE ...] [--executor ...]``.

    Arguments:
        config: an :class:`~gammastar.config.AnalysisConfig` or the path of a YAML file.
        inputs: input files or globs replacing ``input.files``.
        execution: how the chunks are processed (:class:`~gammastar.selection.chunk.Execution`:
            executor, scheduler, workers, chunk size, ...; default: iterative, chunks of
            ``input.step_size`` entries).
        skip_bad_files: skip unreadable files (reported in ``select.json``) instead of stopping.
        output: run directory (default: the config's ``output``).
        force: overwrite existing outputs.

    Returns:
        A :class:`SelectResult`; ``pairs.parquet``, ``histograms.root`` and ``select.json``
        are written in the run directory.

    Raises:
        ConfigError, InputError: bad config, missing file/tree/branch, no selected pair,
            unusable efficiency map; OutputExistsError: outputs exist and not ``force``.

    Example:
        ``select("analysis/na60_like.yaml", execution=Execution("dask", workers=2))``
    """
    import time

    import uproot  # noqa: F401  (imported before the timer, as always)

    from gammastar.selection.processor import run_processor  # noqa: F401

    t0 = time.perf_counter()
    cfg = config if isinstance(config, AnalysisConfig) else load_config(config)
    if output is not None:
        cfg = cfg.model_copy(update={"output": str(Path(output).resolve())})
    execution = execution or Execution()
    if execution.executor not in EXECUTORS:
        raise ConfigError(
            f"--executor: unknown executor {execution.executor!r} (iterative, futures, dask)"
        )
    opt = _Options(execution, skip_bad_files, force)
    for name in OUTPUT_FILES:
        check_writable(cfg.output_dir / name, force)
    if len(cfg.input.flavours) > 1:  # input.lepton: [mu, e]: one selection per flavour
        return _select_flavours(cfg, opt, inputs, t0)
    run = _prepare_run(cfg, opt, inputs, t0)
    try:
        return _select_run(cfg, opt, run)
    finally:
        if run.staging is not None:
            shutil.rmtree(run.staging, ignore_errors=True)


def _prepare_run(
    cfg: AnalysisConfig, opt: _Options, inputs: Any, t0: float, *, stream: bool = True
) -> _Run:
    """The input checks and the unfolding maps of one (single-flavour) selection: its
    :class:`_Run` (``stream``: chunk-local weights on a parallel executor go to a staging
    directory next to the outputs, which the caller removes)."""
    checked = _checked_inputs(cfg, inputs, opt.skip_bad_files)
    measured = cfg.unfold.decay_lambda_theta == "measured"
    em, am, phase_space = _unfolding_maps(cfg, lambda_theta=0.0 if measured else None)
    # unfold.decay_lambda_theta: measured: ONE pass over the input. The chunks return the
    # pairs with ε and everything the fit and the weights need (m, pT, pz, charge, cos θ*,
    # φ*); the driver weights them with the isotropic acceptance, fits λ_θ(m) (the fit has
    # the acceptance in it, so those weights do not bias it), then weights them with the
    # acceptance of that λ_θ(m) (:func:`_measured_acceptance`), through the same
    # pair_weights as the chunks: the numbers that two passes over the files would give
    fit_lambda = measured and phase_space == "fiducial"
    if fit_lambda:
        _warn_peak_window(cfg)
    spec = None if fit_lambda else WeightSpec.from_config(cfg, am)
    # chunk-local weights on a parallel executor: the workers write the pair dataset, one
    # part per chunk, into a staging directory next to the outputs (renamed into place as
    # pairs.parquet/ with the other outputs; the staging directory is always removed)
    staging = (
        Path(tempfile.mkdtemp(prefix=".gammastar-parts-", dir=cfg.output_dir))
        if spec is not None and opt.execution.executor != "iterative" and stream
        else None
    )
    if staging is not None:
        (staging / rundir.PAIRS).mkdir()
    return _Run(cfg.output_dir, checked, em, am, phase_space, spec, staging, t0, measured,
                fit_lambda)  # fmt: skip


# --------------------------------------------------------------------------- driver steps
@dataclass(frozen=True)
class _Options:
    """How :func:`select` runs (its keyword arguments)."""

    execution: Execution
    skip_bad_files: bool
    force: bool


@dataclass
class _Run:
    """What the checks established before processing, and the step timestamps."""

    outdir: Path
    checked: Any
    """:class:`gammastar.io.CheckedInputs`."""
    em: Any
    am: Any
    phase_space: str
    spec: WeightSpec | None
    staging: Path | None
    t0: float
    polarisation_used: bool = False
    """The acceptance follows the measured λ_θ(m) (``unfold.decay_lambda_theta: measured``)."""
    fit_lambda: bool = False
    """λ_θ(m) is fitted in this run (:func:`_measured_acceptance`): ``am`` is the isotropic
    acceptance until then, the one of the fitted λ_θ(m) after."""
    times: dict[str, float] = field(default_factory=dict)


@dataclass
class _Weighted:
    """The weighted pairs of a run (:func:`_weigh`)."""

    pairs: pd.DataFrame | None
    """The table (``None``: streamed to ``streamed``)."""
    streamed: Path | None
    raw: Mapping[str, hist.Hist]
    estimate: Any
    """The like-sign estimate (:func:`like_sign`)."""
    eff_report: Any
    """:class:`gammastar.corrections.unfold.UnfoldReport`."""
    acc_report: dict[str, Any] | None
    unfolded: Mapping[str, hist.Hist] | None
    eta: dict[str, Any]
    acceptance: _AtPairs | None = None
    """A measured λ_θ's acceptance at every pair (the final weights'; ``None``: ``run.am``
    looks the pairs up itself)."""
    polarisation: dict[str, Any] | None = None
    """A measured λ_θ's fit, on the pairs of the isotropic fiducial region: the
    ``polarisation`` block (:func:`_measured_acceptance`)."""
    reuse: dict[str, Any] = field(default_factory=dict)
    """What a measured λ_θ's isotropic weighting shares with the final one
    (:func:`_weigh_table`'s ``reuse``)."""


def _checked_inputs(cfg: AnalysisConfig, inputs: Any, skip_bad_files: bool) -> Any:
    """The input files, checked (:func:`gammastar.io.check_inputs`), with the flavour and the
    branches the η → μμ removal needs."""
    from gammastar.selection.flavour import check_flavour  # the leptons' masses vs the flavour

    bmap = io.branch_map(cfg.input.layout, cfg.input.branches, cfg.input.lepton)
    fileset = io.fileset_from_config(cfg, inputs)
    checked = io.check_inputs(fileset, bmap, skip_bad_files=skip_bad_files)
    check_flavour(checked, cfg.input.lepton)
    for path, why in checked.bad_files.items():
        log.warning("skipping bad file %s: %s", path, why)
    if cfg.background.remove_eta_mumu == "truth" and "truth_channel" not in checked.branches.all:
        raise ConfigError(
            "background.remove_eta_mumu: 'truth' needs the truth_channel branch, which the "
            "input lacks; use 'rate' (data) or 'none'"
        )
    lay = io.get_layout(cfg.input.layout)
    if (
        cfg.background.remove_eta_mumu == "truth"
        and not lay.paired
        and "parent" not in checked.branches.all
    ):
        # the event tag alone would drop every OS pair of a tagged event, also those of an
        # η muon with an unrelated one, while its like-sign pairs stay
        raise ConfigError(
            "background.remove_eta_mumu: 'truth' needs the per-lepton parent branch "
            f"(input.branches.parent; default {lay.optional['parent']!r}) to "
            "drop only pairs of two η muons; the input lacks it: use 'rate' or 'none'"
        )
    return checked


def _unfolding_maps(cfg: AnalysisConfig, lambda_theta: float | None = None) -> tuple[Any, Any, str]:
    """``(efficiency map, acceptance, phase space)`` of the config's ``unfold`` section
    (``lambda_theta``: the per-pair acceptance's λ_θ instead of the configured one)."""

    eff_path = cfg.unfold.efficiency_map
    em = load_efficiency_map(
        cfg.resolve_data(eff_path, "unfold.efficiency_map") if eff_path is not None else None
    )
    am, phase_space = None, PHASE_SPACE_DETECTOR
    if cfg.unfold.acceptance_map is not None:
        acc_path, acc_key = split_map_spec(cfg.unfold.acceptance_map)
        mass_range = (cfg.selection.mass_min, cfg.selection.mass_max)  # a TH3's check
        am = load_acceptance_map(cfg.resolve(acc_path), acc_key, mass_range=mass_range)
        phase_space = PHASE_SPACE_FULL
    fiducial = fiducial_from_config(cfg, lambda_theta=lambda_theta)
    if fiducial is not None:
        am, phase_space = fiducial.acceptance, PHASE_SPACE_FIDUCIAL
    return em, am, phase_space


def _select_compute(cfg: AnalysisConfig, opt: _Options, run: _Run) -> _Selected:
    """Process, weight, fill and document one (single-flavour) selection; nothing written."""
    import time

    run.times["checked"] = time.perf_counter()
    ex = opt.execution
    # one executor (cluster, process pool) for the chunks and the second pass on the parts
    with open_executor(replace(ex, chunksize=ex.chunksize or cfg.input.step_size)) as exe:
        result, bad_files, cutflow = _process(cfg, opt, run, exe)
        run.times["processed"] = time.perf_counter()
        files_used = [p for p in run.checked.files if p not in bad_files]
        w = _weigh(cfg, run, result, cutflow, files_used, exe)
    hists, bayes = _histograms(cfg, run, w)
    done = _Processed(bad_files, cutflow, files_used)
    meta, doc = _select_doc(cfg, opt, run, w, done, hists, bayes)
    return _Selected(run, w, hists, meta, doc, cutflow, bad_files)


@dataclass
class _Selected:
    """One flavour's selection, computed (:func:`_select_compute`), not yet written."""

    run: _Run
    w: _Weighted
    hists: dict[str, Any]
    meta: dict[str, Any]
    doc: dict[str, Any]
    cutflow: dict[str, int]
    bad_files: dict[str, str]


def _select_run(cfg: AnalysisConfig, opt: _Options, run: _Run) -> SelectResult:
    """The part of :func:`select` after the input checks: process, weight, fill, write."""
    sel = _select_compute(cfg, opt, run)
    w, hists, meta, doc, cutflow, bad_files = (
        sel.w, sel.hists, sel.meta, sel.doc, sel.cutflow, sel.bad_files
    )  # fmt: skip
    _write_outputs(cfg, opt.force, run, w, hists, meta, doc)
    log.info(
        "select: %d OS, %d ++, %d -- pairs → %s",
        *(doc["counts"][c] for c in ("os", "pp", "mm")),
        run.outdir,
    )
    return SelectResult(
        path=run.outdir / rundir.SELECT,
        document=doc,
        output_dir=run.outdir,
        _pairs=w.pairs,
        histograms=hists,
        cutflow=cutflow,
        counts=doc["counts"],
        unfold=doc["unfold"],
        bad_files=bad_files,
        meta=meta,
        files={n: run.outdir / n for n in OUTPUT_FILES},
    )


def _process(
    cfg: AnalysisConfig, opt: _Options, run: _Run, exe: Any = None
) -> tuple[dict[str, Any], dict[str, str], dict[str, int]]:
    """Run the coffea processor (on ``exe``, from :func:`open_executor`): ``(accumulated
    result, bad files, cut flow)``."""

    cuts, checked, staging, ex = Cuts.from_config(cfg), run.checked, run.staging, opt.execution
    dataset = staging / rundir.PAIRS if staging is not None else None
    numbers = file_numbers(f for spec in checked.fileset.values() for f in spec["files"])
    reader = ChunkReader(
        layout=cfg.input.layout,
        # the per-lepton parent is read only where it is used (truth η→μμ removal): it is
        # a jagged branch to decompress and carry through the pairing in every chunk
        columns={
            col: br
            for col, br in checked.branches.all.items()
            if col != "parent" or cuts.remove_eta_mumu_truth
        },
        lepton_mass=cfg.input.lepton_mass,
        plausibility=Plausibility.from_config(cfg),
    )
    proc = DileptonProcessor(
        reader,
        cuts,
        effmap=run.em,
        nearest=cfg.unfold.outside_map == "nearest",
        axes=HistAxes.from_config(cfg),
        weights=run.spec,
        staging=(str(dataset) if ex.shared_staging else "") if dataset is not None else None,
        part_numbers=numbers if dataset is not None else None,
        # η → μμ rate: the chunks' Σ weight per mass bin (the scale of the second pass)
        with_mass_sums=run.spec is not None and cfg.background.remove_eta_mumu == "rate",
        # the second pass fills the unfolded histograms from the final weights
        with_unfolded=run.spec is None or not _needs_second_pass(cfg),
    )
    result, run_bad = run_processor(
        checked.fileset,
        proc,
        execution=replace(ex, chunksize=ex.chunksize or cfg.input.step_size),
        skip_bad_files=opt.skip_bad_files,
        sink=ChunkSink(dataset, numbers),
        file_metadata={
            path: {"numentries": n, "uuid": checked.uuids[path]}
            for path, n in checked.entries.items()
            if path in checked.uuids
        },
        executor=exe,
    )
    cutflow = {k: int(result.get("cutflow", {}).get(k, 0)) for k in CUTFLOW_KEYS}
    if cutflow["leptons_nonfinite"]:
        log.warning(
            "dropped %d lepton(s) with NaN or infinite momenta in %d event(s)",
            cutflow["leptons_nonfinite"],
            cutflow["events_nonfinite"],
        )
    return result, {**checked.bad_files, **run_bad}, cutflow


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
    λ_θ, fitted here first), both through :func:`gammastar.selection.chunk.pair_weights`."""
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
    if pairs is None and streamed is None:
        pairs = _pairs_table(chunks)
    w = _Weighted(pairs, None if streamed is None else Path(streamed), raw, est, None, None,
                  None, eta)  # fmt: skip
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
) -> tuple[dict[str, hist.Hist], dict[str, Any]] | None:
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
        paths = [os.path.join(result["streamed"], n) for n in result["parts"]]
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
    precision (:meth:`~gammastar.corrections.pair_acceptance.PairAcceptance.pair_moments`); the pairs
    are weighted as the isotropic selection weighs them (:func:`_weigh_table` with A = ⟨a⟩,
    the first moment, which is ``run.am`` at λ_θ = 0; the η → μμ ``rate`` scaling too), and
    λ_θ(m) is fitted to them (:func:`_measure_polarisation`): **the measured λ_θ(m) is the fit
    on the pairs of the isotropic fiducial region** (A at λ_θ = 0 ≥ ``unfold.min_acceptance``,
    fit weights k_b/ε), and that fit is the ``polarisation`` block the selection writes
    (``w.polarisation``, ``used_in_acceptance`` true). The acceptance follows it at the
    table's mass nodes (:meth:`~gammastar.corrections.pair_acceptance.PairAcceptance.with_lambda`: the
    moment tables, no new tabulation), its A at every pair from the same moments
    (:meth:`~gammastar.corrections.pair_acceptance.PairAcceptance.acceptance_at`, no second
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


    m, pt, pz = (w.pairs[c].to_numpy() for c in ("m", "pT", "pz"))
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
        block = _correct_polarisation(cfg, run.am, block)
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


def _correct_polarisation(cfg: AnalysisConfig, am: Any, block: dict[str, Any]) -> dict[str, Any]:
    """``unfold.polarisation_correction``: the measured λ_θ corrected for the bins' selection
    of decay angles with the configured simulation (:mod:`gammastar.corrections.lambda_correction`)."""

    pc = cfg.unfold.polarisation_correction
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


@dataclass(frozen=True)
class _AtPairs:
    """A per-pair acceptance already evaluated at the pairs of the table, in its row order
    (the isotropic A of a measured λ_θ, from the moments at every pair): what
    :func:`gammastar.corrections.unfold.acceptance_weights` looks up, without a second lookup."""

    values: np.ndarray
    source: str

    def lookup(self, m: np.ndarray, pt: np.ndarray, pz: np.ndarray) -> np.ndarray:
        if len(m) != len(self.values):
            raise ValueError(f"{len(m)} pairs for {len(self.values)} acceptance values")
        return self.values


def _like_sign_estimate(cfg: AnalysisConfig, raw: Mapping[str, hist.Hist]) -> Any:
    """:func:`like_sign` of the whole sample's raw N++, N−− per mass bin (the same k_b in
    ``comb_m`` and in the SS pairs' weights), with a warning when nothing is subtracted."""
    est = like_sign(cfg, raw)
    if (
        est.ratio_all == 0.0
        and est.factor.size
        and (raw["pp_m"].sum().value + raw["mm_m"].sum().value > 0)
    ):
        log.warning(
            "like-sign subtraction: only one like-sign charge class is present; the geometric "
            "mean 2R*sqrt(N++ N--) is 0 and nothing is subtracted"
        )
    return est


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
    :func:`gammastar.selection.chunk.pair_weights`: 1/ε (raising as ``unfold.outside_map`` says), the
    like-sign factor k_b of the pair's mass bin, 1/A of ``acceptance`` (default ``run.am``),
    the conversion template's 1/(1 + R) where configured; returns the report counts and sums.

    ``reuse``: a dict that the first of two weightings of the same table (a measured λ_θ's
    isotropic one) fills and the second takes from: 1/ε with its report, the like-sign
    factors, the template, and the ``acc`` and ``weight`` arrays, which the second call
    overwrites (the same numbers, without computing them twice, and no fresh memory for two
    new 16 MB columns on 2·10⁶ pairs, whose first touch costs system time)."""

    pairs = w.pairs
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
        for k, v in c_blk.items():
            counts[k] = counts.get(k, 0) + v
        for k, v in s_blk.items():
            sums[k] = sums.get(k, 0.0) + v
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
"""Rows per :func:`~gammastar.selection.chunk.pair_weights` call of :func:`_weigh_table`."""


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
    :func:`gammastar.selection.chunk.pair_weights` (over chunks or the table) and the map's lost
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
    peak, n_dal, n_mumu = eta_mumu_rate_peak(
        edges,
        unf,
        dalitz_window=tuple(cfg.background.eta_dalitz_window),
        sigma=cfg.background.eta_peak_sigma,
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(unf > 0, np.clip(1.0 - peak / unf, 0.0, None), 1.0)
    idx = np.clip(np.searchsorted(edges, mvals, side="right") - 1, 0, len(scale) - 1)
    old_w = pairs["weight"].to_numpy()
    _set_column(pairs, "weight", old_w * scale[idx])
    # predicted vs what the reweighting took out (less where a bin holds fewer than the
    # predicted peak, the scale clipped at 0, or a bin is empty)
    return {
        "n_eta_dalitz": n_dal,
        "n_eta_mumu_predicted": n_mumu,
        "n_eta_mumu_removed": float(np.sum(old_w - pairs["weight"].to_numpy())),
    }


def _histograms(
    cfg: AnalysisConfig, run: _Run, w: _Weighted
) -> tuple[dict[str, hist.Hist], dict[str, Any]]:
    """The output histograms (:func:`fill_histograms`) and, with
    ``unfold.bayesian_iterations``, the resolution unfolding of ``unfolded_m``."""

    hists = fill_histograms(cfg, w.pairs, raw=w.raw, unfolded=w.unfolded, estimate=w.estimate)
    for name in ("unfolded_m", "unfolded_m_qT_E"):
        hists[name].name = f"unfolded, phase_space={run.phase_space}"
    bayes: dict[str, Any] = {"iterations": cfg.unfold.bayesian_iterations}
    if cfg.unfold.bayesian_iterations > 0:
        if not run.checked.truth_trees:
            raise ConfigError(
                "unfold.bayesian_iterations > 0 needs a response from a 'truth' tree "
                "(m_true vs m) in the input files; none has one"
            )
        truth = io.read_truth(run.checked.truth_trees, ("m", "m_true"))
        edges = np.asarray(mass_axis(cfg).edges)
        resp = response_matrix(np.asarray(truth["m_true"]), np.asarray(truth["m"]), edges)
        h = hists["unfolded_m"]
        eff_only = h.copy()
        n_it = cfg.unfold.bayesian_iterations
        values, variances = h.view()["value"].copy(), h.view()["variance"].copy()
        h.view()["value"] = bayesian_unfold(values, resp, n_it)
        h.view()["variance"] = bayesian_unfold_variance(values, variances, resp, n_it)
        hists["effcorr_m"] = eff_only
        bayes["note"] = "unfolded_m is resolution unfolded; effcorr_m is before it"
    return hists, bayes


class _Processed(NamedTuple):
    """What the processor's run left besides its result (:func:`_process`): the bad files, the
    cut flow, and the files whose pairs are used."""

    bad_files: dict[str, str]
    cutflow: dict[str, int]
    files_used: list[str]


def _counts(
    run: _Run, w: _Weighted, cutflow: dict[str, int], hists: Mapping[str, hist.Hist]
) -> dict[str, Any]:
    """``select.json`` ``counts``: events, pairs per charge class, and the combinatorial,
    signal and unfolded totals with their errors."""
    if run.spec is not None:
        n_q = {c: cutflow[c] for c in ("os", "pp", "mm")}
    else:
        q = w.pairs["charge"].to_numpy()
        n_q = {"os": int((q == 0).sum()), "pp": int((q == 2).sum()), "mm": int((q == -2).sum())}
    counts: dict[str, Any] = {"events": cutflow["events"], **n_q}
    for key, name in (("comb_estimate", "comb_m"), ("signal", "signal_m"),
                      ("unfolded", "unfolded_m")):  # fmt: skip
        h = hists[name]
        counts[key] = float(h.values().sum())
        counts[f"{key}_err"] = float(np.sqrt(h.variances().sum()))
    return counts


def _polarisation_block(cfg: AnalysisConfig, run: _Run, w: _Weighted) -> dict[str, Any] | None:
    """``select.json`` ``polarisation``: a measured λ_θ's fit, else in the fiducial phase space
    the decay angles' measurement on the selected pairs (timed: ``timings_s.polarisation``)."""
    import time

    polarisation = w.polarisation  # a measured λ_θ: its fit (timed there)
    if run.phase_space == "fiducial" and polarisation is None:
        t_pol = time.perf_counter()
        polarisation = _measure_polarisation(
            cfg, run.am, w.pairs, w.streamed, run.polarisation_used
        )
        run.times["polarisation"] = time.perf_counter() - t_pol
    return polarisation


def _background_block(cfg: AnalysisConfig, w: _Weighted, comb: float) -> dict[str, Any]:
    """``select.json`` ``background``: the like-sign estimate's report, the R factor (with the
    mixed events' R per mass bin), the conversions' template; ``comb`` the combinatorial
    total."""
    bkg = cfg.background
    mixed: dict[str, Any] = {}
    if bkg.r_factor == "mixed":
        r_mix, r_half = mixed_r(w.raw)
        edges = np.asarray(mass_axis(cfg).edges)
        mixed = {
            "mixing_depth": bkg.mixing_depth,
            "r_per_mass_bin": {"edges": edges.tolist(), "values": r_mix.tolist()},
            "r_half_window": r_half.tolist(),
            "mixed_pairs": {c: int(w.raw[f"mix_{c}_m"].values().sum()) for c in ("os", "pp", "mm")},
        }
    return {
        **w.estimate.report(),
        "ss_weight": bkg.ss_weight,
        "r_factor": bkg.r_factor,
        "r_factor_source": "mixed events" if bkg.r_factor == "mixed" else "configured",
        **mixed,
        "min_like_sign": bkg.min_like_sign,
        "comb_estimate": comb,
        "conversions": _conversions_report(cfg),
    }


def _select_doc(
    cfg: AnalysisConfig,
    opt: _Options,
    run: _Run,
    w: _Weighted,
    done: _Processed,
    hists: Mapping[str, hist.Hist],
    bayes: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(meta, select.json)``: the JSON assembly, in one place (schemas/…/select.json)."""
    import time


    bkg, phase_space = cfg.background, run.phase_space
    counts = _counts(run, w, done.cutflow, hists)
    polarisation = _polarisation_block(cfg, run, w)
    meta = make_meta(
        config_sha256=cfg.section_sha256("input", "selection", "background", "unfold"),
        seed=None,
        inputs=done.files_used,
        stage="select",
        config_sha256_full=cfg.sha256,
        executor=opt.execution.executor,
        scheduler=opt.execution.scheduler,
        layout=cfg.input.layout,
        branches=run.checked.branches.all,
        weight_convention=WEIGHT_CONVENTION,
        r_factor=bkg.r_factor,
        ss_weight=bkg.ss_weight,
        min_like_sign=bkg.min_like_sign,
        phase_space=phase_space,
    )
    doc = {
        "meta": meta,
        "counts": counts,
        "cutflow": done.cutflow,
        "unfold": {
            **w.eff_report.as_dict(),
            "phase_space": phase_space,
            "acceptance": w.acc_report,
            "fiducial": (
                {"min_acceptance": float(cfg.unfold.min_acceptance), **run.am.as_dict()}
                if phase_space == "fiducial"
                else None
            ),
            "bayesian": bayes,
        },
        "eta_mumu": w.eta,
        "background": _background_block(cfg, w, counts["comb_estimate"]),
        "polarisation": polarisation,
        "bad_files": done.bad_files,
        "entries": {p: n for p, n in run.checked.entries.items() if p in done.files_used},
        "elapsed_s": time.perf_counter() - run.t0,
    }
    return meta, doc


def _conversions_report(cfg: AnalysisConfig) -> dict[str, Any] | None:
    """``select.json`` ``background.conversions``: the template and its R per 1/(1 + R)
    weighted mass bin (``None`` without ``background.conversion_template``)."""

    t = conversion_template_from_config(cfg)
    return None if t is None else t.summary(cfg.selection.mass_min)


def _measure_polarisation(
    cfg: AnalysisConfig,
    am: Any,
    pairs: Any,
    streamed: Any,
    used: bool,
    moments: Any = None,
) -> dict[str, Any]:
    """The ``polarisation`` block of ``select.json`` (:func:`gammastar.corrections.polarisation.measure`
    on the weighted pairs in the bins of :func:`_polarisation_edges`; ``moments``: the
    acceptance's moments at every pair, when already computed)."""

    cols = ("m", "pT", "pz", "charge", "cos_theta_hel", "phi_hel", "weight", "acc")
    if pairs is None:
        import pyarrow.parquet as pq

        table = pq.read_table(streamed, columns=list(cols))
        data = {c: table.column(c).to_numpy() for c in cols}
    else:
        data = {c: pairs[c].to_numpy() for c in cols}
    os_in = (data["charge"] == 0) & (data["weight"] != 0)
    edges = _polarisation_edges(cfg, data["m"][os_in])
    pol = measure(data, am, edges, used_in_acceptance=used, moments=moments)
    log.info(
        "select: lambda_theta (helicity frame) per mass bin %s",
        ", ".join(
            f"{0.5 * (a + b):.2f} GeV: {v:.2f} ± {e:.2f}"
            for a, b, v, e in zip(
                edges[:-1], edges[1:], pol.lambda_theta, pol.lambda_theta_err, strict=True
            )
        ),
    )
    return pol.as_dict()


def _polarisation_edges(cfg: AnalysisConfig, m_os: np.ndarray) -> np.ndarray:
    """The polarisation bins' mass edges: ``unfold.polarisation_edges`` or at most
    ``polarisation_bins`` of equal OS counts with :data:`~gammastar.corrections.polarisation.MIN_PAIRS`
    each (a small sample: fewer bins), kept off the narrow peaks by
    ``polarisation_peak_window`` (:func:`gammastar.corrections.polarisation.peak_safe_edges`)."""

    u, lo, hi = cfg.unfold, cfg.selection.mass_min, cfg.selection.mass_max
    if u.polarisation_edges is not None:
        inner = [x for x in u.polarisation_edges if lo < x < hi]
        edges = np.array([lo, *inner, hi], dtype=np.float64)
    else:
        n_bins = max(1, min(u.polarisation_bins, int(m_os.size) // MIN_PAIRS))
        edges = polarisation_edges(m_os, n_bins, lo, hi)
    if u.polarisation_peak_window is not None:
        return peak_safe_edges(edges, m_os, u.polarisation_peak_window)
    return edges


def _warn_peak_window(cfg: AnalysisConfig) -> None:
    """Once per selection: a measured λ_θ in equal-count bins without
    ``unfold.polarisation_peak_window`` while a narrow peak lies in the mass range."""

    u, lo, hi = cfg.unfold, cfg.selection.mass_min, cfg.selection.mass_max
    near = [p for p in narrow_peaks() if lo < p < hi]
    if u.polarisation_peak_window is None and u.polarisation_edges is None and near:
        log.warning(
            "select: unfold.polarisation_peak_window is not set: the equal-count polarisation "
            "bins may cut the peak(s) at %s GeV, which biases the measured lambda_theta there "
            "(docs/explanation/method.md); set it to ~3.5 sigma_m of your mass resolution",
            ", ".join(f"{p:.3f}" for p in near),
        )


WEIGHT_CONVENTION = (
    "OS: weight = weight_raw/(acc*eff); SS: weight = -R*weight_raw/(acc*eff) "
    "(ss_weight=constant) or -2R*sqrt(N++N--)/(N++ + N--) of the mass bin, N++ and "
    "N-- summed over neighbouring bins where a bin has fewer than "
    "background.min_like_sign of a sign, * weight_raw/(acc*eff) (binwise); the same "
    "factor in comb_m; acc = 1 without an acceptance (unfold.acceptance_map or the "
    "per-pair A(m, q) of unfold.lepton_acceptance); weight 0 "
    "below unfold.min_acceptance; sum(weight) = background-subtracted, unfolded yield "
    "(phase_space)"
)
"""``select.json`` ``meta.weight_convention``."""


def _write_outputs(
    cfg: AnalysisConfig,
    force: bool,
    run: _Run,
    w: _Weighted,
    hists: Mapping[str, hist.Hist],
    meta: dict[str, Any],
    doc: dict[str, Any],
) -> None:
    """Write everything computed before, so nothing half-written on a user error: the three
    files as one set, ``select.json`` (the mark of a finished run) renamed into place last."""
    import time

    import uproot


    t_post = time.perf_counter()
    with atomic_paths([run.outdir / n for n in OUTPUT_FILES], force) as (pq_tmp, h_tmp, js_tmp):
        if w.streamed is not None:  # the dataset the workers wrote (pairs.parquet/)
            os.unlink(pq_tmp)  # our empty placeholder: rename onto a free name
            os.replace(w.streamed, pq_tmp)
        else:
            _write_parquet(pq_tmp, w.pairs)
        with uproot.recreate(h_tmp) as f:
            for name, h in hists.items():
                f[name] = h
            f["phase_space"] = run.phase_space
            f[rundir.HISTOGRAMS_META] = json_text(meta)  # its schema version
        t = run.times
        doc["timings_s"] = {
            "check_inputs": t["checked"] - run.t0,
            "process": t["processed"] - t["checked"],
            "postprocess": t_post - t["processed"],
            "write_data": time.perf_counter() - t_post,
        }
        for k in ("fit_lambda", "polarisation", "polarisation_correction", "reweight"):
            # in postprocess: the λ_θ(m) fit (decay_lambda_theta: measured), the
            # polarisation block's measurement (every fiducial selection) and its
            # correction (unfold.polarisation_correction), the second pass (the factors
            # of the whole sample on the chunks' weights)
            if k in t:
                doc["timings_s"][k] = t[k]
        js_tmp.write_text(rundir.RunDir(run.outdir).json_text(rundir.SELECT, doc))  # checked


# --------------------------------------------------------------------------- both channels
FLAVOUR_CODES = {"mu": 13, "e": 11}
"""``pairs.parquet`` ``flavour`` (a run with ``input.lepton: [mu, e]``): the |PDG id| of the
pair's leptons."""


def flavour_channel(flavour: str) -> str:
    """The dilepton channel name of a flavour (``mu`` → ``mumu``, ``e`` → ``ee``;
    :data:`gammastar.physics.darkphoton.LEPTON_CHANNELS`): the suffix of its histograms
    (``os_m_ee``) and its key in ``select.json``/``yields.json`` ``flavours``."""

    return next(c.name for c in LEPTON_CHANNELS.values() if c.flavour == flavour)


def _select_flavours(cfg: AnalysisConfig, opt: _Options, inputs: Any, t0: float) -> SelectResult:
    """``input.lepton: [mu, e]``: each flavour selected as its single-flavour run
    (:func:`gammastar.config.flavour_config`: its branches, cuts, background, unfolding), in
    memory, then written as one set: ``pairs.parquet`` with a ``flavour`` column
    (:data:`FLAVOUR_CODES`), ``histograms.root`` with the primary (first) flavour's
    histograms under the contract names and every flavour's with its channel as suffix
    (``unfolded_m_ee``, ``unfolded_m_mumu``), ``select.json`` the primary's document with
    ``flavours`` {channel: that flavour's document}."""
    import dataclasses
    import time

    import pandas as pd


    parts: dict[str, _Selected] = {}
    for f in cfg.input.flavours:
        fcfg = flavour_config(cfg, f)
        run = _prepare_run(fcfg, opt, inputs, time.perf_counter(), stream=False)
        parts[f] = _select_compute(fcfg, opt, run)
        log.info("select: %s pairs: %s", flavour_channel(f), parts[f].doc["counts"])
    first = parts[cfg.input.flavours[0]]
    pairs = pd.concat(
        [p.w.pairs.assign(flavour=np.int8(FLAVOUR_CODES[f])) for f, p in parts.items()],
        ignore_index=True,
    )
    hists = dict(first.hists)
    for f, p in parts.items():
        hists.update({f"{name}_{flavour_channel(f)}": h for name, h in p.hists.items()})
    meta = {
        **first.meta,
        "config_sha256": cfg.section_sha256("input", "selection", "background", "unfold"),
        "config_sha256_full": cfg.sha256,
        "flavours": [flavour_channel(f) for f in cfg.input.flavours],
    }
    doc = {**first.doc, "meta": meta}
    doc["flavours"] = {
        flavour_channel(f): {
            **{k: v for k, v in p.doc.items() if k != "meta"},
            "lepton": f,
            "phase_space": p.run.phase_space,
            "n_pairs": len(p.w.pairs),
        }
        for f, p in parts.items()
    }
    doc["bad_files"] = {k: v for p in parts.values() for k, v in p.bad_files.items()}
    # the timings of the whole: the flavours' checks and processing summed
    n_check = sum(p.run.times["checked"] - p.run.t0 for p in parts.values())
    n_proc = sum(p.run.times["processed"] - p.run.times["checked"] for p in parts.values())
    run = dataclasses.replace(
        first.run, outdir=cfg.output_dir, t0=t0,
        times={"checked": t0 + n_check, "processed": t0 + n_check + n_proc},
    )  # fmt: skip
    w = dataclasses.replace(first.w, pairs=pairs, streamed=None)
    _write_outputs(cfg, opt.force, run, w, hists, meta, doc)
    log.info("select: %s → %s", ", ".join(f"{len(p.w.pairs)} {flavour_channel(f)} pairs"
                                           for f, p in parts.items()), run.outdir)  # fmt: skip
    return SelectResult(
        path=run.outdir / rundir.SELECT,
        document=doc,
        output_dir=run.outdir,
        _pairs=pairs,
        histograms=hists,
        cutflow=first.cutflow,
        counts=doc["counts"],
        unfold=doc["unfold"],
        bad_files=doc["bad_files"],
        meta=meta,
        files={n: run.outdir / n for n in OUTPUT_FILES},
    )


__all__ = [
    "FLAVOUR_CODES",
    "SelectResult",
    "fill_histograms",
    "flavour_channel",
    "like_sign",
    "mass_axis",
    "mixed_r",
    "select",
]
