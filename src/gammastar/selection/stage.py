"""Columnar dilepton selection: the driver of ``gammastar select``.

:func:`select` (the Python twin of ``gammastar select CONFIG``) is a thin orchestration over
steps: check the inputs and maps, run the chunk processor (:mod:`gammastar.selection.executors.processor`) over
the pure chunk steps (:mod:`gammastar.selection.chunk`: four-vectors, cuts, pairs;
:mod:`gammastar.selection.weights.pairs`: per-pair weights), the like-sign estimate (:mod:`gammastar.corrections.background`), the weights of the
whole table where they need the whole sample (through the same
:func:`gammastar.selection.weights.pairs.pair_weights`), the histograms, and ``pairs.parquet``,
``histograms.root`` and ``select.json`` written atomically (docs/explanation/method.md).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from gammastar import io
from gammastar.config import AnalysisConfig, flavour_config, load_config
from gammastar.core import rundir, urls
from gammastar.core.artifacts import check_writable
from gammastar.corrections.pair_acceptance import fiducial_from_config
from gammastar.corrections.pair_acceptance.table import PairAcceptance
from gammastar.corrections.unfold import (
    PHASE_SPACE_DETECTOR,
    PHASE_SPACE_FIDUCIAL,
    PHASE_SPACE_FULL,
    split_map_spec,
)
from gammastar.corrections.unfold.acceptance import (
    AcceptanceMap,
    AcceptanceMap3D,
    load_acceptance_map,
)
from gammastar.corrections.unfold.efficiency import efficiency_map_cached, load_efficiency_map
from gammastar.errors import ConfigError, OutputExistsError
from gammastar.selection import onworkers
from gammastar.selection.chunk import CUTFLOW_KEYS
from gammastar.selection.cuts import Cuts
from gammastar.selection.executors import EXECUTORS, Execution, with_config
from gammastar.selection.executors.processor import (
    ChunkReader,
    DileptonProcessor,
    LocalExecutor,
    map_tasks,
    open_executor,
    run_processor,
)
from gammastar.selection.executors.sink import ChunkSink
from gammastar.selection.flavour_check import PROBE_ENTRIES, check_file_flavour
from gammastar.selection.flavour_codes import FLAVOUR_CODES, flavour_channel
from gammastar.selection.pairhists import HistAxes
from gammastar.selection.plausibility import Plausibility
from gammastar.selection.polarisation import BinRule
from gammastar.selection.weights.pairs import WeightSpec
from gammastar.selection.writer import file_numbers

log = logging.getLogger(__name__)
from gammastar.selection.histograms import _histograms
from gammastar.selection.outputs import (
    OUTPUT_FILES,
    SelectResult,
    _Processed,
    _select_doc,
    _warn_peak_window,
    _write_outputs,
    load_writers,
)
from gammastar.selection.records import (
    _Options,
    _Run,
    _Selected,
)
from gammastar.selection.weights.apply import (
    _needs_second_pass,
    _weigh,
)

__all__ = ["select"]


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
        execution: how the chunks are processed (:class:`~gammastar.selection.executors.Execution`:
            executor, scheduler, workers, chunk size, ...; default: iterative, chunks of
            ``input.step_size`` entries); on Dask without a cluster named, the config's
            ``execution.jobqueue`` where it has one.
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

    from gammastar.selection.chunk import load_chunk_code

    if (execution or Execution()).executor == "iterative":  # the chunks run in this process
        load_chunk_code()
    t0 = time.perf_counter()
    cfg = config if isinstance(config, AnalysisConfig) else load_config(config)
    if output is not None:
        cfg = cfg.model_copy(update={"output": str(Path(output).resolve())})
    execution = with_config(execution or Execution(), cfg.execution)
    if execution.executor not in EXECUTORS:
        raise ConfigError(
            f"--executor: unknown executor {execution.executor!r} (iterative, futures, dask)"
        )
    opt = _Options(execution, skip_bad_files, force)
    for name in OUTPUT_FILES:
        check_writable(cfg.output_dir / name, force)
    _check_pairs_url(cfg, execution, force)
    if len(cfg.input.flavours) > 1:  # input.lepton: [mu, e]: one selection per flavour
        return _select_flavours(cfg, opt, inputs, t0)
    # one executor (cluster, process pool) for the input checks, the chunks and the steps
    # after them; its start is timed apart (timings_s.cluster)
    t_open = time.perf_counter()
    with open_executor(
        replace(execution, chunksize=execution.chunksize or cfg.input.step_size)
    ) as exe:
        opened = time.perf_counter() - t_open
        _load_readers(exe, cfg)
        run = _prepare_run(cfg, opt, inputs, t0 + opened, exe=exe)
        if execution.executor != "iterative":
            run.times["cluster"] = opened
        try:
            return _select_run(cfg, opt, run, exe)
        finally:
            if run.staging is not None:
                _remove_staging(run.staging)


def _parallel(exe: Any) -> bool:
    """Whether ``exe`` runs its tasks on workers (a Dask cluster, a process pool)."""
    return exe is not None and (not isinstance(exe, LocalExecutor) or exe.pool is not None)


def _load_readers(exe: Any, cfg: AnalysisConfig) -> None:
    """On a parallel executor, uproot (about 0.4 s of imports) imported in a thread while the
    workers check the input files, where the driver reads a map with it next (the acceptance
    map, an efficiency map not cached yet); the driver's own ``import uproot`` waits for it
    (Python's import lock). Elsewhere the first file opened here imports it, and the writer
    of ``histograms.root`` is loaded while the chunks run (:func:`~gammastar.selection.
    outputs.load_writers`): a thread importing during the checks would hold the interpreter
    that the driver's client needs to see them through."""
    import importlib
    import threading

    if _parallel(exe) and _reads_root_maps(cfg):
        threading.Thread(target=importlib.import_module, args=("uproot",), daemon=True,
                         name="gammastar-load-readers").start()  # fmt: skip


def _reads_root_maps(cfg: AnalysisConfig) -> bool:
    """Whether the driver reads a ROOT map before the chunks start: the acceptance map, or an
    efficiency map not in the cache (:func:`~gammastar.corrections.unfold.efficiency.
    efficiency_map_cached`)."""
    eff = cfg.unfold.efficiency_map
    if cfg.unfold.acceptance_map is not None:
        return True
    if eff is None:
        return False
    try:
        return not efficiency_map_cached(cfg.resolve_data(eff, "unfold.efficiency_map"))
    except ConfigError:  # a missing map: the map's loading names it
        return False


_URL_NEEDS = (
    "selection.pairs_url: the pair dataset at a URL is written by the workers of --executor "
    "futures or dask, with weights the chunks compute (not with unfold.decay_lambda_theta: "
    "measured on the fiducial region, nor both lepton flavours); unset it for this run"
)


def _check_pairs_url(cfg: AnalysisConfig, execution: Execution, force: bool) -> None:
    """``selection.pairs_url``: a run that writes it (the parallel executors, one flavour), its
    filesystem opens, and, as for the run directory's files, an existing dataset there is
    refused without ``force``."""
    url = cfg.selection.pairs_url
    if url is None:
        return
    if execution.executor == "iterative" or len(cfg.input.flavours) > 1:
        raise ConfigError(_URL_NEEDS)
    urls.check_url(url, "selection.pairs_url")
    if urls.exists(url) and not force:
        raise OutputExistsError(f"{url}: output exists already; use --force to overwrite it")


def _remove_staging(staging: Path | str) -> None:
    """Remove the parts' staging directory (local, or at the ``selection.pairs_url``)."""
    if urls.is_url(staging):
        try:
            urls.remove(str(staging))
        except Exception as err:  # noqa: BLE001 - the run's own outcome is what to report
            log.warning("could not remove the staged parts %s: %s", staging, err)
    else:
        shutil.rmtree(staging, ignore_errors=True)


def _prepare_run(
    cfg: AnalysisConfig,
    opt: _Options,
    inputs: Any,
    t0: float,
    *,
    stream: bool = True,
    exe: Any = None,
) -> _Run:
    """The input checks (on ``exe``'s workers, a file per task, where it has them) and the
    unfolding maps of one (single-flavour) selection: its :class:`_Run` (``stream``:
    chunk-local weights on a parallel executor go to a staging directory next to the
    outputs, which the caller removes)."""
    checked = _checked_inputs(cfg, inputs, opt.skip_bad_files, exe)
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
    if (
        spec is not None
        and phase_space == PHASE_SPACE_FIDUCIAL
        and opt.execution.executor == "iterative"
        and getattr(am, "moments", None) is not None
    ):
        # the chunks (in this process) look the moments the polarisation measurement needs
        # up with A: one interpolation per pair instead of two
        spec = replace(spec, moments=True)
    # chunk-local weights on a parallel executor: the workers write the pair dataset, one
    # part per chunk, into a staging directory next to the outputs (renamed into place as
    # pairs.parquet/ with the other outputs; the staging directory is always removed)
    parallel = spec is not None and opt.execution.executor != "iterative" and stream
    url = cfg.selection.pairs_url
    if _held(fit_lambda, opt.execution, stream) and url is None:
        # a measured λ_θ on Dask or the pool: the pairs stay on the workers, which write the final
        # parts (gammastar.selection.onworkers)
        parallel = True
    staging: Path | str | None = None
    if url is not None:
        if not parallel:  # the weights need the whole table (a measured λ_θ)
            raise ConfigError(_URL_NEEDS)
        # the parts go to a hidden directory next to the dataset's URL (moved onto its name
        # with the other outputs; always removed)
        staging = _staging_url(url)
        urls.make_dirs(staging)
    elif parallel:
        staging = Path(tempfile.mkdtemp(prefix=".gammastar-parts-", dir=cfg.output_dir))
        (staging / rundir.PAIRS).mkdir()
    run = _Run(cfg.output_dir, checked, em, am, phase_space, spec, staging, t0, measured,
               fit_lambda)  # fmt: skip
    run.shared_staging = opt.execution.shared_staging
    return run


def _held(fit_lambda: bool, execution: Execution, stream: bool) -> bool:
    """Whether the measured λ_θ's steps run where the chunks' pairs are (a Dask cluster or
    the process pool, one flavour: :mod:`gammastar.selection.onworkers`) instead of on the
    whole table here."""
    return fit_lambda and execution.executor in ("dask", "futures") and stream


HELD_DIR = "held"
"""The process pool's held states (:class:`~gammastar.selection.executors.held.FileStates`):
this folder of the staging directory."""


def _hold_on_workers(exe: Any, run: _Run) -> None:
    """The process pool's held states in the local staging directory; a measured λ_θ's
    chunks held where they run (:mod:`gammastar.selection.onworkers`)."""
    if run.staging is None or urls.is_url(run.staging):
        return
    if isinstance(exe, LocalExecutor):
        exe.hold_in(Path(run.staging) / HELD_DIR)
    if getattr(exe, "can_hold", False) and run.spec is None:
        exe.hold = True


def _staging_url(url: str) -> str:
    """A fresh hidden name next to ``url`` for the parts while they are written
    (``.<name>.<pid>.<random>``: dataset readers skip it)."""
    import posixpath
    import secrets

    parent, name = posixpath.split(url.rstrip("/"))
    return urls.join(parent, f".{name}.{os.getpid()}.{secrets.token_hex(4)}")


def eta_truth_problem(cfg: AnalysisConfig, branches: Iterable[str]) -> str | None:
    """The refusal of ``background.remove_eta_mumu: truth`` (the mock's, and the default, also
    outside the mock) on input ``branches`` without the mock's truth tag ``truth_channel``:
    one line naming the config and what to write; ``None`` when the removal can run."""
    if cfg.background.remove_eta_mumu != "truth" or "truth_channel" in set(branches):
        return None
    return (
        f"{cfg.source or '<config>'}: background.remove_eta_mumu: truth (the mock's, and the "
        "default) drops η → μμ pairs by the mock's truth tag, the truth_channel branch, which "
        "the input lacks: `remove_eta_mumu: rate` (the peak predicted from the η → γμμ yield) "
        "or `none`"
    )


def _checked_inputs(cfg: AnalysisConfig, inputs: Any, skip_bad_files: bool, exe: Any = None) -> Any:
    """The input files, checked (:func:`gammastar.io.check_inputs`; on a parallel executor a
    file per task on its workers), with the branches the η → μμ removal needs; ``probes``:
    each file's energy precision, with which the chunks count the leptons' flavours for
    :func:`~gammastar.selection.flavour_check.check_file_flavour` (the first entries' baskets
    read once, by the chunks; each file refused as soon as those chunks are in)."""
    from gammastar.selection.flavour_check import precision_probe

    bmap = io.branch_map(cfg.input.layout, cfg.input.branches, cfg.input.lepton)
    fileset = io.fileset_from_config(cfg, inputs)
    # a file per task on the workers (also on one: the driver then opens no file, and
    # loads uproot for the maps meanwhile, _load_readers): its branch checks and the
    # precision of its energy branches (metadata only: the flavours are counted by the
    # chunks that read its first entries, not by a second read of those baskets here)
    on_workers = _parallel(exe)
    checked = io.check_inputs(
        fileset, bmap, skip_bad_files=skip_bad_files,
        map_files=partial(map_tasks, exe) if on_workers else map,
        probe=partial(precision_probe, cfg.input.layout),
    )  # fmt: skip
    for path, why in checked.bad_files.items():
        log.warning("skipping bad file %s", urls.redact(f"{path}: {why}"))
    problem = eta_truth_problem(cfg, checked.branches.all)
    if problem is not None:
        raise ConfigError(problem)
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
    am: AcceptanceMap | AcceptanceMap3D | PairAcceptance | None = None
    phase_space = PHASE_SPACE_DETECTOR
    if cfg.unfold.acceptance_map is not None:
        acc_path, acc_key = split_map_spec(cfg.unfold.acceptance_map)
        mass_range = (cfg.selection.mass_min, cfg.selection.mass_max)  # a TH3's check
        am = load_acceptance_map(cfg.resolve(acc_path), acc_key, mass_range=mass_range)
        phase_space = PHASE_SPACE_FULL
    fiducial = fiducial_from_config(cfg, lambda_theta=lambda_theta)
    if fiducial is not None:
        am, phase_space = fiducial.acceptance, PHASE_SPACE_FIDUCIAL
    return em, am, phase_space


def _select_compute(cfg: AnalysisConfig, opt: _Options, run: _Run, exe: Any = None) -> _Selected:
    """Process, weight, fill and document one (single-flavour) selection on ``exe`` (else an
    executor opened for it); nothing written."""
    import contextlib
    import time

    run.times["checked"] = time.perf_counter()
    ex = opt.execution
    # one executor (cluster, process pool) for the chunks and the second pass on the parts
    with contextlib.ExitStack() as stack:
        if exe is None:
            exe = stack.enter_context(
                open_executor(replace(ex, chunksize=ex.chunksize or cfg.input.step_size))
            )
        _hold_on_workers(exe, run)
        result, bad_files, cutflow = _process(cfg, opt, run, exe)
        run.times["processed"] = time.perf_counter()
        files_used = [p for p in run.checked.files if p not in bad_files]
        w = _weigh(cfg, run, result, cutflow, files_used, exe)
        _polarisation_on_workers(cfg, run, w, result, exe)
    hists, bayes = _histograms(cfg, run, w)
    done = _Processed(bad_files, cutflow, files_used)
    meta, doc = _select_doc(cfg, opt, run, w, done, hists, bayes)
    return _Selected(run, w, hists, meta, doc, cutflow, bad_files)


def _polarisation_on_workers(
    cfg: AnalysisConfig, run: _Run, w: Any, result: dict[str, Any], exe: Any
) -> None:
    """A fiducial selection's ``polarisation`` block from the parts of the pair dataset the
    workers wrote (Dask's, or the process pool's), measured by them (:func:`gammastar.
    selection.onworkers.polarisation_of_parts`: sums to here) while the executor is open;
    elsewhere (one process, parts the driver wrote, a URL) the driver reads the dataset
    later."""
    import time

    if not (run.phase_space == PHASE_SPACE_FIDUCIAL and w.polarisation is None
            and w.streamed is not None and getattr(exe, "can_hold", False)
            and not result.get("driver_written") and not urls.is_url(w.streamed)):  # fmt: skip
        return
    t = time.perf_counter()
    paths = [str(Path(w.streamed) / name) for name in result["parts"]]
    w.polarisation = onworkers.polarisation_of_parts(
        exe, paths, run.am, BinRule.from_config(cfg), used=run.polarisation_used
    )
    run.times["polarisation"] = time.perf_counter() - t


def _select_run(cfg: AnalysisConfig, opt: _Options, run: _Run, exe: Any = None) -> SelectResult:
    """The part of :func:`select` after the input checks: process, weight, fill, write."""
    sel = _select_compute(cfg, opt, run, exe)
    w, hists, meta, doc, cutflow = sel.w, sel.hists, sel.meta, sel.doc, sel.cutflow
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
        bad_files=doc["bad_files"],  # as select.json records them (URLs redacted)
        meta=meta,
        files={n: run.outdir / n for n in OUTPUT_FILES},
    )


def _process(
    cfg: AnalysisConfig, opt: _Options, run: _Run, exe: Any = None
) -> tuple[dict[str, Any], dict[str, str], dict[str, int]]:
    """Run the chunk processor (on ``exe``, from :func:`open_executor`): ``(accumulated
    result, bad files, cut flow)``."""

    cuts, checked, staging, ex = Cuts.from_config(cfg), run.checked, run.staging, opt.execution
    dataset = (
        None
        if staging is None
        else staging
        if urls.is_url(staging)
        else Path(staging) / rundir.PAIRS
    )
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
        flavours={p: eps for p, eps in checked.probes.items() if eps is not None},
    )
    result, run_bad = run_processor(
        checked.fileset,
        proc,
        execution=replace(ex, chunksize=_chunk_size(cfg, ex, exe, checked.entries)),
        skip_bad_files=opt.skip_bad_files,
        # the outputs' writers loaded while the chunks run (on a parallel executor the
        # driver has read no file: uproot is not loaded yet)
        # each file's flavour refused as soon as the chunks of its first entries are in
        sink=ChunkSink(
            dataset,
            numbers,
            meanwhile=load_writers,
            on_flavours=partial(check_file_flavour, checked, cfg.input.lepton),
            probe_entries=PROBE_ENTRIES,
        ),
        file_metadata={
            path: {"numentries": n, "uuid": checked.uuids[path]}
            for path, n in checked.entries.items()
            if path in checked.uuids
        },
        executor=exe,
    )
    result.pop("flavours", None)  # checked file by file as they came (the sink)
    cutflow = {k: int(result.get("cutflow", {}).get(k, 0)) for k in CUTFLOW_KEYS}
    if cutflow["leptons_nonfinite"]:
        log.warning(
            "dropped %d lepton(s) with NaN or infinite momenta in %d event(s)",
            cutflow["leptons_nonfinite"],
            cutflow["events_nonfinite"],
        )
    return result, {**checked.bad_files, **run_bad}, cutflow


CHUNKS_PER_WORKER = 4
"""Chunks per worker that the chunk size aims at (:func:`_chunk_size`): enough for a worker
that finishes early to take another one while the last ones run."""
MIN_CHUNK = 100_000
"""The smallest chunk :func:`_chunk_size` makes (entries): below it each chunk's fixed costs
(a task, a file opened, histograms sent) outweigh the balance it buys."""


def _chunk_size(cfg: AnalysisConfig, ex: Execution, exe: Any, entries: dict[str, int]) -> int:
    """Entries per chunk: ``Execution.chunksize`` where given; else ``input.step_size``, made
    smaller on several workers so that they get :data:`CHUNKS_PER_WORKER` chunks each (not
    below :data:`MIN_CHUNK`): with fewer chunks than that the last ones keep one worker busy
    while the others wait."""
    if ex.chunksize:
        return ex.chunksize
    step = cfg.input.step_size
    n = 1 if ex.executor == "iterative" else _n_workers(exe, ex)
    if n <= 1:
        return step
    total = sum(int(v) for v in entries.values())
    return min(step, max(MIN_CHUNK, -(-total // (CHUNKS_PER_WORKER * n))))


def _n_workers(exe: Any, ex: Execution | None = None) -> int:
    """The workers the chunks are spread over: the process pool's, the Dask cluster's (those
    connected, or the number asked for where more are coming)."""
    client = getattr(exe, "client", None)
    if client is None:
        return int(getattr(exe, "workers", 1) or 1)
    try:
        connected = len(client.scheduler_info().get("workers", {}))
    except Exception:  # noqa: BLE001 - the count only tunes the chunk size
        connected = 0
    return max(connected, (ex.workers if ex is not None else None) or 0, 1)


# --------------------------------------------------------------------------- both channels
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
        [p.w.table().assign(flavour=np.int8(FLAVOUR_CODES[f])) for f, p in parts.items()],
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
        # the whole config's (each flavour's config states every key of its sections)
        **({"assumed": cfg.assumed()} if cfg.mock is None else {}),
    }
    doc = {**first.doc, "meta": meta}
    doc["flavours"] = {
        flavour_channel(f): {
            **{k: v for k, v in p.doc.items() if k != "meta"},
            "lepton": f,
            "phase_space": p.run.phase_space,
            "n_pairs": len(p.w.table()),
        }
        for f, p in parts.items()
    }
    doc["bad_files"] = {urls.redact(k): urls.redact(v) for p in parts.values()
                        for k, v in p.bad_files.items()}  # fmt: skip
    # the timings of the whole: the flavours' checks and processing summed
    n_check = sum(p.run.times["checked"] - p.run.t0 for p in parts.values())
    n_proc = sum(p.run.times["processed"] - p.run.times["checked"] for p in parts.values())
    run = dataclasses.replace(
        first.run, outdir=cfg.output_dir, t0=t0,
        times={"checked": t0 + n_check, "processed": t0 + n_check + n_proc},
    )  # fmt: skip
    w = dataclasses.replace(first.w, pairs=pairs, streamed=None)
    _write_outputs(cfg, opt.force, run, w, hists, meta, doc)
    log.info("select: %s → %s", ", ".join(f"{len(p.w.table())} {flavour_channel(f)} pairs"
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
