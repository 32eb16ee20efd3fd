"""The selection as a coffea processor, run on the iterative, futures or Dask executor.

:class:`DileptonProcessor` is stateless and picklable (plain strings, numbers and frozen
dataclasses); each chunk returns a cut flow and raw-count histograms (summed across chunks in
any order: integer counts) and its per-chunk payload in a :class:`PairChunks` keyed by
``(file, first entry)``. With chunk-local weights
(:class:`~gammastar.selection.chunk.WeightSpec`) the payload holds the chunk's unfolded
histograms, report sums and per-bin sums and, on the parallel executors, only the name of
the part of the pair dataset that the worker wrote (:mod:`gammastar.selection.writer`; the
bytes where the worker does not see the directory); else (single process) its pair columns.

The driver folds the payloads in key order as they arrive (:class:`ChunkSink`, used by the
executors here), so the pairs, every histogram and every report number are the same bit for
bit on every executor whatever order the chunks finish in. :func:`open_executor` keeps the
executor (its cluster or process pool) for the selection's second pass
(:mod:`gammastar.selection.reweight`), run through :func:`map_tasks`.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import io
import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Self

import awkward
import hist  # noqa: F401
import numpy as np
import pandas  # noqa: F401
import pyarrow.parquet  # noqa: F401
import vector
from coffea import processor

from gammastar.core.parquet import part_bytes
from gammastar.corrections.unfold import EfficiencyMap, lookup_efficiency
from gammastar.errors import ChunkError, InputError
from gammastar.io import LAYOUTS
from gammastar.physics.constants import M_MU
from gammastar.selection.chunk import (
    MIX_WEIGHT_QUANTUM,
    MIXED_COLUMNS,
    Cuts,
    Execution,
    HistAxes,
    WeightSpec,
    mixed_histograms,
    raw_histograms,
    select_chunk,
    unfolded_histograms,
    weight_chunk,
)
from gammastar.selection.plausibility import Plausibility, read_failure
from gammastar.selection.reweight import mass_sums
from gammastar.selection.writer import Packed, chunk_part_name, finish_dataset, write_part

# What every chunk uses is imported with this module (above: pyarrow imports pandas on its
# first array conversion), so a worker that has loaded gammastar is ready for its first chunk
# (about 0.4 s otherwise, on every worker).

log = logging.getLogger(__name__)


def _load_kinematics() -> None:
    """Select one two-muon event in each registered layout, with every cut switched on.

    ``vector`` imports the module of each kinematic function (mass, pt, rapidity, theta, the
    pt/eta/phi conversions...) on its first use: about 0.1 s, which a worker would otherwise
    spend inside its first chunk. Done once, when this module is imported (a few ms more).
    """

    mu = (0.3, -0.2, 5.0, 5.02), (-0.25, 0.3, 4.0, 4.03)
    p4 = vector.zip(
        {k: awkward.Array([[m[i] for m in mu]]) for i, k in enumerate(("px", "py", "pz", "E"))}
    )
    charge = awkward.Array([[1, -1]])
    cuts = Cuts(1.0, 0.01, 3.0, 0.1, 2.0, 5.0, -5.0, 10.0)
    for name, lay in LAYOUTS.items():
        select_chunk(lay.from_vectors(p4, charge), name, cuts)


_load_kinematics()


class PairChunks:
    """Accumulator of per-chunk pair columns: adding concatenates the chunk maps (no copies)."""

    def __init__(self, chunks: Mapping[Any, Mapping[str, Any]] | None = None) -> None:
        self.chunks: dict[Any, Mapping[str, Any]] = dict(chunks or {})

    def __add__(self, other: PairChunks) -> PairChunks:
        out = PairChunks(self.chunks)
        out += other
        return out

    def __iadd__(self, other: PairChunks) -> Self:
        dup = set(self.chunks) & set(other.chunks)
        if dup:
            raise ValueError(f"chunk(s) processed twice: {sorted(dup)[:3]}")
        self.chunks.update(other.chunks)
        return self

    def __len__(self) -> int:
        return sum(int(c["_rows"]) if "_rows" in c else len(c["m"]) for c in self.chunks.values())


class Counts(dict):
    """Cut-flow counter that adds key by key (an Addable accumulator)."""

    def __add__(self, other: Mapping[str, int]) -> Counts:
        out = Counts(self)
        out += other
        return out

    def __iadd__(self, other: Mapping[str, int]) -> Self:  # type: ignore[override]
        for k, v in other.items():
            self[k] = self.get(k, 0) + v
        return self


@dataclasses.dataclass(frozen=True)
class ChunkReader:
    """How the processor reads a chunk: the input layout, package column → branch name
    (checked beforehand), the lepton mass of layouts without one, and the checks of the values
    as read.

    Arguments:
        layout: input layout (:mod:`gammastar.io`).
        columns: package column → branch name.
        lepton_mass: for layouts without a mass.
        plausibility: checks of each chunk's values as read
            (:mod:`gammastar.selection.plausibility`); a chunk that fails is its file's
            :class:`~gammastar.errors.InputError`.
    """

    layout: str
    columns: Mapping[str, str]
    lepton_mass: float = M_MU
    plausibility: Plausibility | None = None

    def read(self, events: Any) -> dict[str, Any]:
        """The chunk's columns (package names), checked; a failure here is the input file's
        (coffea names it: a bad file)."""
        md = events.metadata
        where = (md.get("filename", "?"), md.get("entrystart", 0), md.get("entrystop", 0))
        cols = {}
        for col, branch in self.columns.items():
            try:
                cols[col] = awkward.materialize(events[branch])
            except Exception as err:  # noqa: BLE001 - a basket that does not decompress
                raise read_failure(where, md.get("treename", "events"), branch, err) from None
        if self.plausibility is not None:  # values no detector gives: a damaged file
            self.plausibility.check(cols, self.layout, self.columns, where)
        return cols


class DileptonProcessor(processor.ProcessorABC):
    """Dilepton pair selection of one chunk (see :func:`gammastar.selection.chunk.select_chunk`).

    Per chunk it also looks up each pair's ε (column ``eff``; NaN outside the map unless
    ``nearest``) and fills the raw-count histograms (``os_m``, ``pp_m``, ``mm_m`` and their
    (m, qT, E) versions), which add exactly across chunks. With ``weights`` (chunk-local
    weight modes) it also computes the final columns (``qT``, ``acc``, ``weight_raw``,
    ``weight``), the unfolded histograms and the report counts and sums of the chunk
    (:func:`gammastar.selection.chunk.weight_chunk`).

    Arguments:
        reader: what a chunk's columns are and how they are checked (:class:`ChunkReader`).
        cuts: the selection.
        effmap: the efficiency map (``None``: ε = 1).
        nearest: pairs outside the map take the nearest bin's ε.
        axes: histogram binning (``None``: no histograms).
        weights: chunk-local weighting (``None``: the driver weights the pairs).
        staging: with ``weights``: the pair dataset's directory; each chunk's pairs are
            encoded (:func:`gammastar.core.parquet.part_bytes`) and written there as the part
            :func:`gammastar.selection.writer.chunk_part_name` (atomically), or, on a worker
            that does not see the directory (no shared filesystem), returned as bytes for the
            driver to write. ``""``: always return the bytes. ``None``: return the columns
            (in-memory path).
        part_numbers: input file → its number in the part names
            (:func:`gammastar.selection.writer.file_numbers`); needed with ``staging``.
        with_mass_sums: return the chunk's Σ weight per mass bin of its OS and SS pairs
            (:func:`gammastar.selection.reweight.mass_sums`: the η → μμ ``rate`` removal).
        with_unfolded: return the chunk's unfolded histograms (``False`` where the second
            pass fills them from the final weights: not computed, not sent).
    """

    def __init__(
        self,
        reader: ChunkReader,
        cuts: Cuts,
        *,
        effmap: EfficiencyMap | None = None,
        nearest: bool = False,
        axes: HistAxes | None = None,
        weights: WeightSpec | None = None,
        staging: str | None = None,
        part_numbers: Mapping[str, int] | None = None,
        with_mass_sums: bool = False,
        with_unfolded: bool = True,
    ) -> None:
        self.reader = reader
        self.cuts = cuts
        self.effmap = effmap or EfficiencyMap.unity()
        self.nearest = nearest
        self.axes = axes
        self.weights = weights
        self.staging = staging
        self.part_numbers = dict(part_numbers or {})
        self.with_mass_sums = with_mass_sums
        self.with_unfolded = with_unfolded

    def process(self, events: Any) -> dict[str, Any]:
        md = events.metadata
        cols = self.reader.read(events)  # read first: a failure here is the input file's
        try:
            return self._process(cols, md)
        except Exception as err:
            raise ChunkError(
                f"{md.get('filename', '?')}, entries {md.get('entrystart', '?')}-"
                f"{md.get('entrystop', '?')}: the chunk was read but failed afterwards: "
                f"{type(err).__name__}: {err}"
            ) from err

    def _process(self, cols: Mapping[str, Any], md: Mapping[str, Any]) -> dict[str, Any]:
        pairs, flow = select_chunk(
            cols,
            self.reader.layout,
            self.cuts,
            lepton_mass=self.reader.lepton_mass,
            entry_offset=int(md.get("entrystart", 0)),
        )
        pairs["eff"], flow["pairs_outside_map"] = lookup_efficiency(
            self.effmap, pairs["m"], pairs["pT"], nearest=self.nearest
        )
        key = (str(md.get("filename", "")), int(md.get("entrystart", 0)))
        out: dict[str, Any] = {"cutflow": Counts(flow)}
        mixed = {k: pairs.pop(k) for k in MIXED_COLUMNS if k in pairs}
        if self.axes is not None:
            out["hists"] = raw_histograms(self.axes, pairs)
            if mixed:  # background.r_factor: mixed; weighted with the pairs' ε
                eff, _ = lookup_efficiency(
                    self.effmap, mixed["_mix_m"], mixed["_mix_pT"], nearest=True
                )
                q = MIX_WEIGHT_QUANTUM
                mixed["_mix_w"] = np.round(np.nan_to_num(eff) / q) * q
                out["hists"].update(mixed_histograms(self.axes, mixed))
        if self.weights is None:
            out["pairs"] = PairChunks({key: pairs})
            return out
        final, counts, sums = weight_chunk(pairs, self.weights)
        del pairs
        payload: dict[str, Any] = {"_rows": len(final["m"]), "_sums": sums}
        if self.axes is not None:
            if self.with_unfolded:
                payload["_unfolded"] = unfolded_histograms(self.axes, final)
            if self.with_mass_sums:
                edges = self.axes.mass().edges
                payload["_mass_sums"] = mass_sums(final["m"], final["charge"], final["weight"],
                                                  edges)  # fmt: skip
        out["report"] = Counts(counts)
        if self.staging is None:  # in-memory path (iterative): the driver concatenates;
            # qT (= pT), weight_raw (1) and acc without a map (1) are made there, once
            skip = {"qT", "weight_raw"} | ({"acc"} if self.weights.acceptance is None else set())
            payload.update({k: v for k, v in final.items() if k not in skip})
        elif payload["_rows"]:
            # this chunk's part of the pair dataset, encoded and written here (the driver
            # gets its name); a worker that does not see the directory sends the bytes
            data = part_bytes(final)
            name = chunk_part_name(self.part_numbers, key)
            payload["_name"] = name
            if self.staging and os.path.isdir(self.staging):
                write_part(self.staging, name, data)
                payload["_part"] = name
            else:
                payload["_parquet"] = data
        out["pairs"] = PairChunks({key: payload})
        if self.staging is not None:  # to the driver: histograms, counts, sums, compressed
            return {"packed": Packed(out)}
        return out

    def postprocess(self, accumulator: dict[str, Any]) -> dict[str, Any]:
        return accumulator


# --------------------------------------------------------------------------- the fold
class ChunkSink:
    """Folds the chunks' outputs on the driver in (file, first entry) order as they arrive.

    Cut flows, report counts and raw-count histograms (integers) are added in any order; the
    unfolded histograms, the float report sums and the per-bin sums are added in key order;
    the pairs are either kept in key order (columns; ``dataset`` ``None``) or are parts of the
    pair dataset ``dataset`` (written by the workers: the sink keeps their names; one sent
    as bytes it writes itself). An early chunk's small outputs are held until those before it
    are in.
    """

    def __init__(
        self,
        dataset: str | os.PathLike[str] | None = None,
        part_numbers: Mapping[str, int] | None = None,
    ) -> None:
        self.dataset = dataset
        self.part_numbers = dict(part_numbers or {})
        self.start([])

    def start(self, items: Any) -> None:
        """A fresh fold over these work items (a retry starts over)."""
        self.order = sorted({(str(i.filename), int(i.entrystart)) for i in items})
        self.next = 0
        self.pending: dict[Any, Any] = {}
        self.acc: dict[str, Any] = {}
        self.unfolded: dict[str, Any] | None = None
        self.sums: dict[str, float] = {}
        self.mass_sums: np.ndarray | None = None
        self.chunks: dict[Any, Any] = {}
        self.parts: list[str] = []
        self.driver_written = False
        self.rows = 0

    def add(self, wrapped: Mapping[str, Any]) -> None:
        out = wrapped["out"]
        out = dict(out["packed"].unpack() if "packed" in out else out)
        pairs = out.pop("pairs", PairChunks())
        # cut flows, report counts, raw-count histograms: integers, any order
        self.acc = processor.accumulate([out], self.acc or None)
        self.pending.update(pairs.chunks)
        while self.next < len(self.order) and self.order[self.next] in self.pending:
            key = self.order[self.next]
            self._fold(key, self.pending.pop(key))
            self.next += 1

    def _fold(self, key: Any, chunk: Mapping[str, Any]) -> None:
        unf = chunk.get("_unfolded")
        if unf is not None:
            if self.unfolded is None:
                self.unfolded = {k: h.copy() for k, h in unf.items()}
            else:
                for k, h in unf.items():
                    self.unfolded[k] += h
        for k, v in chunk.get("_sums", {}).items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        if "_mass_sums" in chunk:
            ms = chunk["_mass_sums"]
            self.mass_sums = ms.copy() if self.mass_sums is None else self.mass_sums + ms
        if "_name" not in chunk:  # columns (in-memory path, or an empty chunk)
            cols = {k: v for k, v in chunk.items() if not k.startswith("_")}
            if cols:
                self.chunks[key] = cols
                self.rows += len(cols["m"])
            return
        if self.dataset is None:
            raise RuntimeError("a chunk sent a part to a sink that keeps columns")
        if "_parquet" in chunk:  # a worker without the shared directory: written here
            write_part(self.dataset, chunk["_name"], chunk["_parquet"])
            self.driver_written = True
        self.parts.append(chunk["_name"])
        self.rows += int(chunk["_rows"])

    def finish(self) -> dict[str, Any]:
        """The folded accumulator: ``cutflow``, ``hists``, ``report``, ``unfolded``,
        ``sums``, ``mass_sums``, ``rows`` and ``pairs`` (the in-memory chunks) or
        ``streamed`` (the dataset directory) with ``parts`` (its part names in chunk order)
        and ``driver_written`` (some parts came as bytes: the workers do not see them)."""
        if self.pending or self.next != len(self.order):
            missing = [k for k in self.order[self.next :] if k not in self.pending][:3]
            raise RuntimeError(f"chunk(s) without a result: {missing}")
        out = dict(self.acc)
        out["unfolded"] = self.unfolded
        out["sums"] = self.sums
        out["mass_sums"] = self.mass_sums
        out["rows"] = self.rows
        if self.dataset is not None and self.parts:
            # exactly this run's parts (a retry without a bad file leaves none of its chunks)
            out["streamed"] = finish_dataset(self.dataset, self.parts)
            out["parts"] = list(self.parts)
            out["driver_written"] = self.driver_written
        else:
            out["pairs"] = PairChunks(self.chunks)
        return out

    def abort(self) -> None:
        """Nothing to undo here: the parts are in the run's staging directory, which the
        caller removes."""


def _folding(sink: ChunkSink, items: list[Any], results: Any) -> tuple[dict[str, Any], int]:
    """Feed the results to the sink; on any error, drop what it wrote."""
    sink.start(items)
    try:
        for r in results:
            sink.add(r)
        return {"out": sink.finish()}, 0
    except BaseException:
        sink.abort()
        raise


@dataclasses.dataclass
class SinkIterativeExecutor(processor.IterativeExecutor):
    """coffea's iterative executor, with the chunk outputs folded by a :class:`ChunkSink`."""

    sink: ChunkSink | None = None

    def __call__(self, items: Any, function: Any, accumulator: Any) -> Any:
        if self.sink is None or self.function_name == "get_metadata" or len(items) == 0:
            return super().__call__(items, function, accumulator)
        items = list(items)
        return _folding(self.sink, items, map(function, items))


@dataclasses.dataclass
class SinkFuturesExecutor(processor.FuturesExecutor):
    """Local worker processes; each chunk's output goes to the :class:`ChunkSink` as soon as
    it is done (no merge jobs)."""

    sink: ChunkSink | None = None

    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__, pool=None, sink=None)

    def __call__(self, items: Any, function: Any, accumulator: Any) -> Any:
        if self.sink is None or self.function_name == "get_metadata" or len(items) == 0:
            return super().__call__(items, function, accumulator)
        items = list(items)
        with contextlib.ExitStack() as stack:
            pool = self.pool  # one kept by open_executor (its second pass reuses it)
            if not isinstance(pool, concurrent.futures.Executor):
                pool = stack.enter_context(self.pool(max_workers=self.workers))
            futures = [pool.submit(function, item) for item in items]
            try:
                done = (f.result() for f in concurrent.futures.as_completed(futures))
                return _folding(self.sink, items, done)
            except BaseException as err:
                for f in futures:
                    f.cancel()
                # as coffea's FuturesExecutor: the error itself, not the pool's remote
                # traceback (whose text would hide the message naming the file)
                raise err from None


@dataclasses.dataclass
class SinkDaskExecutor(processor.DaskExecutor):
    """Dask futures; each chunk's output goes to the :class:`ChunkSink` as soon as it is done
    (no reduction tasks: the workers return small outputs or staged parts), and neither
    ``dask.dataframe`` nor anything else is imported per call."""

    sink: ChunkSink | None = None

    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__, client=None, sink=None)

    def __call__(self, items: Any, function: Any, accumulator: Any) -> Any:
        if len(items) == 0:
            return accumulator
        from coffea.processor import accumulate
        from distributed import as_completed

        client = self.client
        items = list(items)
        args: list[Any] = items
        if self.heavy_input is not None:
            heavy = client.submit(_identity, self.heavy_input)
            args = [(item, heavy) for item in items]
        futures = client.map(
            function,
            args,
            pure=self.heavy_input is not None,
            priority=self.priority,
            retries=self.retries,
        )
        try:
            if self.sink is None or self.function_name == "get_metadata":
                return accumulate(client.gather(futures), accumulator), 0

            def done() -> Any:
                for fut in as_completed(futures):
                    yield fut.result()
                    fut.release()

            return _folding(self.sink, items, done())
        except BaseException:
            client.cancel(futures)
            raise


def _identity(x: Any) -> Any:
    return x


QUIET_CLUSTER: dict[str, Any] = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "500ms",
    "distributed.admin.system-monitor.interval": "2s",
}
"""Dask settings of :func:`local_cluster`: no statistical profiler in the workers (it samples
the worker thread's stack every 10 ms, for a dashboard this cluster does not have), and the
event-loop tick and system monitor at 500 ms / 2 s instead of 20 ms / 500 ms. An idle
cluster then uses about a third of the CPU (scheduler, nannies and workers together), CPU
that a busy cluster takes from the chunks."""


def local_cluster(n_workers: int = 2, *, processes: bool = True) -> Any:
    """A ``distributed.LocalCluster`` of single-threaded workers tuned for this selection.

    Dask's nanny starts worker processes with ``MALLOC_TRIM_THRESHOLD_=65536``, which makes
    glibc hand every freed large array back to the OS; the columnar selection allocates and
    frees many such arrays per chunk and runs markedly slower with it, so the
    workers here start without it. (On a facility cluster, remove it from the config key
    ``distributed.nanny.pre-spawn-environ``.) The cluster also runs with
    :data:`QUIET_CLUSTER` and no dashboard.
    """
    import dask
    from distributed import LocalCluster

    env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
    env.pop("MALLOC_TRIM_THRESHOLD_", None)
    with dask.config.set({"distributed.nanny.pre-spawn-environ": env, **QUIET_CLUSTER}):
        return LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=processes,
            dashboard_address=None,
            # no dashboard; the scheduler's small HTTP server (health, metrics) on a free
            # port, not 8787 (taken by any other cluster on the machine: a warning)
            scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
        )


def _make_executor(execution: Execution, sink: ChunkSink | None = None) -> tuple[Any, list[Any]]:
    """The coffea executor (folding into ``sink`` when given) and the objects to close."""
    executor, scheduler, workers = execution.executor, execution.scheduler, execution.workers
    if executor == "iterative":
        return SinkIterativeExecutor(status=False, retries=0, sink=sink), []
    if executor == "futures":
        pool = processor.FuturesExecutor.pool(max_workers=workers or 2)
        return SinkFuturesExecutor(
            pool=pool, workers=workers or 2, status=False, retries=0, compression=None, sink=sink
        ), [_PoolCloser(pool)]
    if executor == "dask":
        from distributed import Client

        if scheduler:
            try:
                client = Client(scheduler, timeout=30)
            except Exception as err:  # noqa: BLE001
                raise InputError(
                    f"--scheduler {scheduler}: cannot connect to the Dask scheduler ({err})"
                ) from None
            return SinkDaskExecutor(
                client=client, status=False, retries=0, compression=None, sink=sink
            ), [client]
        cluster = local_cluster(workers or 2, processes=execution.dask_processes)
        client = Client(cluster)
        return SinkDaskExecutor(
            client=client, status=False, retries=0, compression=None, sink=sink
        ), [client, cluster]
    raise ValueError(f"unknown executor {executor!r}")


@dataclasses.dataclass
class _PoolCloser:
    """Closes a process pool (:func:`open_executor`'s cleanup)."""

    pool: Any

    def close(self) -> None:
        self.pool.shutdown(wait=True)


@contextlib.contextmanager
def open_executor(execution: Execution | None = None) -> Iterator[Any]:
    """The executor of ``execution`` (its Dask client and local cluster, or its process pool)
    for the whole selection: the chunks (:func:`run_processor` with ``executor=``) and the
    second pass (:func:`map_tasks`); closed on exit."""
    exe, to_close = _make_executor(execution or Execution())
    try:
        yield exe
    finally:
        for obj in to_close:
            try:
                obj.close()
            except Exception:  # pragma: no cover - best effort shutdown  # noqa: BLE001
                log.debug("closing %r failed", obj)


def map_tasks(exe: Any, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    """``[fn(x) for x in items]`` on the executor's workers (Dask tasks, the process pool,
    or this process for the iterative executor), results in item order."""
    items = list(items)
    if not items:
        return []
    if isinstance(exe, SinkDaskExecutor):
        futures = exe.client.map(fn, items, pure=False, retries=exe.retries)
        try:
            return exe.client.gather(futures)
        except BaseException:
            exe.client.cancel(futures)
            raise
    if isinstance(exe, SinkFuturesExecutor):
        with contextlib.ExitStack() as stack:
            pool = exe.pool
            if not isinstance(pool, concurrent.futures.Executor):
                pool = stack.enter_context(exe.pool(max_workers=exe.workers))
            return list(pool.map(fn, items))
    return [fn(x) for x in items]


def _bad_file(err: BaseException, files: list[str]) -> str | None:
    """Which input file an executor's exception is about (coffea names it in the message)."""
    text = repr(err)
    cause = err.__cause__
    while cause is not None:
        text += repr(cause)
        cause = cause.__cause__
    hits = [f for f in files if f in text]
    return max(hits, key=len) if hits else None


def _raise_chunk_error(err: BaseException) -> None:
    """Re-raise a :class:`ChunkError` that an executor wrapped (in this process the chain
    holds it; from a worker process only its repr in coffea's message); else return."""
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, ChunkError):
            raise cause
        cause = cause.__cause__
    text = str(err)
    found = re.search(r"ChunkError\((['\"])(.*)\1\)", text, flags=re.DOTALL)
    if found:
        raise ChunkError(found.group(2)) from None


def _read_error(err: BaseException) -> str:
    """``"Type: message"`` of the error under coffea's wrapping, the same on every executor:
    in this process the innermost cause; from a worker process coffea's text, "The error
    was: Type('message')."."""
    cause = err
    while cause.__cause__ is not None and type(cause.__cause__).__name__ != "_RemoteTraceback":
        cause = cause.__cause__
    if cause is not err:
        text = f"{type(cause).__name__}: {cause}"
    else:
        first = str(err).splitlines()[0] if str(err) else ""
        found = re.search(r"The error was: (\w+)\((['\"])(.*)\2\)\.?$", first)
        text = f"{found.group(1)}: {found.group(3)}" if found else first
    return (text.splitlines()[0] if text else type(err).__name__)[:300]


def _metadata_cache(
    fileset: Mapping[str, Mapping[str, Any]], file_metadata: Mapping[str, Mapping[str, Any]]
) -> dict[Any, dict[str, Any]]:
    """coffea's metadata cache for these files: entries and UUID (plus the dataset's own
    ``metadata``, which coffea's preprocessing would add); files not in ``file_metadata``
    are left to coffea."""
    from coffea.processor.executor import FileMeta

    cache: dict[Any, dict[str, Any]] = {}
    for dataset, spec in fileset.items():
        for path, tree in spec["files"].items():
            if path in file_metadata:
                meta = {**(spec.get("metadata") or {}), **file_metadata[path]}
                cache[FileMeta(dataset, path, tree)] = meta
    return cache


def run_processor(
    fileset: Mapping[str, Mapping[str, Any]],
    proc: DileptonProcessor,
    *,
    execution: Execution | None = None,
    skip_bad_files: bool = False,
    sink: ChunkSink | None = None,
    file_metadata: Mapping[str, Mapping[str, Any]] | None = None,
    executor: Any = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Run the processor with ``coffea.processor.Runner`` on the chosen executor
    (``execution``: :class:`~gammastar.selection.chunk.Execution`, default the iterative one;
    its ``chunksize`` default 500 000 entries).

    A file that fails while being read is reported by name: with ``skip_bad_files`` it is
    dropped and the run repeated without it (reported in the returned map), else
    :class:`~gammastar.errors.InputError` stops the run.

    With ``sink`` the chunk outputs are folded as they arrive (:class:`ChunkSink`); the
    accumulator is then the sink's (``pairs`` or ``streamed``, ``unfolded``, ``sums``, ...).

    ``file_metadata`` (path → ``{"numentries": n, "uuid": bytes}``, from
    :func:`gammastar.io.check_inputs`) is handed to coffea as this run's metadata cache, so
    it does not open every file again (on a cluster: one round of tasks before the first
    chunk) and never chunks by a stale entry count from its process-wide cache (a file
    rewritten between two runs in one Python session).

    ``executor``: one made by :func:`open_executor` (kept open for the caller), else one is
    made for this call and closed.

    Returns:
        ``(accumulator, bad_files)``; the accumulator has ``cutflow`` and ``pairs``.
    """
    fileset = {d: {**s, "files": dict(s["files"])} for d, s in fileset.items()}
    bad: dict[str, str] = {}
    execution = execution or Execution()
    with contextlib.ExitStack() as stack:
        exe = executor if executor is not None else stack.enter_context(open_executor(execution))
        exe.sink = sink
        return _run(fileset, proc, exe, execution, skip_bad_files, file_metadata, bad)


def _run(
    fileset: dict[str, Any],
    proc: DileptonProcessor,
    exe: Any,
    execution: Execution,
    skip_bad_files: bool,
    file_metadata: Mapping[str, Mapping[str, Any]] | None,
    bad: dict[str, str],
) -> tuple[dict[str, Any], dict[str, str]]:
    """:func:`run_processor`'s loop on an open executor: a file that fails while read is
    dropped and the run repeated (``skip_bad_files``), else reported."""
    from coffea.nanoevents import BaseSchema

    while True:
        files = [f for s in fileset.values() for f in s["files"]]
        if not files:
            raise InputError("no readable input file left: " + "; ".join(bad))
        runner = processor.Runner(
            executor=exe,
            schema=BaseSchema,
            chunksize=execution.chunksize or 500_000,
            savemetrics=False,
            metadata_cache=_metadata_cache(fileset, file_metadata or {}),
        )
        try:
            # coffea's rich progress bars ignore status=False, and its futures executor
            # prints tracebacks itself: keep both off the user's terminal
            with (
                contextlib.redirect_stdout(io.StringIO()),
                contextlib.redirect_stderr(io.StringIO()),
            ):
                out = runner(fileset, proc)
        except InputError:
            raise
        except ValueError as err:
            if "No chunks survived preprocessing" not in str(err):
                raise
            return {}, bad  # every file is empty: nothing to select
        except Exception as err:
            _raise_chunk_error(err)
            path = _bad_file(err, files)
            msg = _read_error(err)
            if path is None:
                raise
            if msg.startswith("InputError: "):  # our own check of the values read
                msg = msg.removeprefix("InputError: ").removeprefix(f"{path}: ")
            if not skip_bad_files:
                raise InputError(f"{path}: failed while reading: {msg}") from None
            log.warning("skipping bad file %s: %s", path, msg)
            bad[path] = msg
            for s in fileset.values():
                s["files"].pop(path, None)
            fileset = {d: s for d, s in fileset.items() if s["files"]}
            continue
        if isinstance(out, tuple):
            out = out[0]
        return dict(out), bad
