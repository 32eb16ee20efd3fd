"""The selection's chunks: read, selected and folded, on the iterative, futures or Dask executor.

:class:`DileptonProcessor` is stateless and picklable (plain strings, numbers and frozen
dataclasses); each chunk returns a cut flow and raw-count histograms (summed across chunks in
any order: integer counts) and its per-chunk payload in a :class:`PairChunks` keyed by
``(file, first entry)``. With chunk-local weights
(:class:`~gammastar.selection.weights.pairs.WeightSpec`) the payload holds the chunk's unfolded
histograms, report sums and per-bin sums and, on the parallel executors, only the name of
the part of the pair dataset that the worker wrote (:mod:`gammastar.selection.writer`; the
bytes where the worker does not see the directory); else (single process) its pair columns.

Every executor runs one chunk loop (:func:`chunk_items`: the entry ranges coffea's ``Runner``
makes for the same chunk size; each chunk read with uproot by the task :func:`run_item`): in
this process, in a process pool (futures), or as ``distributed`` futures on a Dask cluster
(:mod:`gammastar.selection.executors.dask_cluster`, imported only there). The driver folds the payloads in key order as they arrive
(:class:`~gammastar.selection.executors.sink.ChunkSink`), so the pairs, every histogram and every report
number are the same bit for bit on every executor whatever order the chunks finish in.
:func:`open_executor` keeps the executor (its cluster or process pool) for the selection's
second pass (:mod:`gammastar.selection.weights.second_pass`), run through :func:`map_tasks`,
and for the steps that reduce held chunks where they are (:mod:`gammastar.selection.onworkers`;
the pool's held states are files, :mod:`gammastar.selection.executors.held`).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import functools
import logging
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gammastar import io as gio
from gammastar.core import remote
from gammastar.core.inflate import isal_inflate
from gammastar.core.parquet import part_bytes
from gammastar.core.urls import is_url
from gammastar.corrections.unfold.efficiency import EfficiencyMap, lookup_efficiency
from gammastar.errors import ChunkError, InputError
from gammastar.physics.constants import M_MU
from gammastar.selection.chunk import load_chunk_code, select_chunk
from gammastar.selection.cuts import Cuts
from gammastar.selection.executors import Execution
from gammastar.selection.executors.held import FileStates, with_shared
from gammastar.selection.executors.sink import (
    ChunkSink,
    Counts,
    PairChunks,
    drop_bad_file,
    fold,
    fold_or_cancel,
)
from gammastar.selection.flavour_check import chunk_flavours
from gammastar.selection.mixing import MIX_WEIGHT_QUANTUM, MIXED_COLUMNS, mixed_histograms
from gammastar.selection.pairhists import HistAxes, raw_histograms, unfolded_histograms
from gammastar.selection.plausibility import Plausibility, read_failure
from gammastar.selection.weights.pairs import WeightSpec, weight_chunk
from gammastar.selection.weights.second_pass import mass_sums
from gammastar.selection.writer import Packed, chunk_part_name, write_part

log = logging.getLogger(__name__)


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

    def read_item(self, item: WorkItem) -> dict[str, Any]:
        """The columns of the chunk ``item`` (package names), read with uproot and checked;
        a failure here is the input file's (:class:`BadChunk`). Inside
        :func:`sequential_reads`, the chunk that follows the previous one in its file comes
        from the same ``uproot`` iteration (the same arrays). ZLIB baskets are inflated
        with ISA-L where it is installed (:func:`~gammastar.core.inflate.isal_inflate`)."""
        with isal_inflate():
            return self._read(item)

    def _read(self, item: WorkItem) -> dict[str, Any]:
        where = (item.filename, item.entrystart, item.entrystop)
        seq = _SEQUENTIAL[0]
        cols = seq.read(self, item) if seq is not None else None
        if cols is not None:
            try:
                return self._checked(cols, where)
            except InputError as err:
                raise BadChunk.of(item.filename, err) from None
        try:
            if is_url(item.filename):  # a read the network failed is tried again
                return remote.retrying(item.filename, lambda: self._read_plain(item, where))
            return self._read_plain(item, where)
        except InputError as err:
            raise BadChunk.of(item.filename, err) from None

    def _read_plain(self, item: WorkItem, where: tuple[str, int, int]) -> dict[str, Any]:
        """The chunk ``item`` read on its own: its file opened, each branch's entry range."""
        f, tree = gio.open_tree(item.filename, item.treename)
        try:
            cols = {}
            for col, branch in self.columns.items():
                try:
                    cols[col] = tree[branch].array(
                        entry_start=item.entrystart, entry_stop=item.entrystop, library="ak"
                    )
                except Exception as err:  # a basket that does not decompress, or the network
                    if is_url(item.filename) and remote.failure(item.filename, err):
                        raise  # the network's, not the basket's: retried or one line
                    raise read_failure(where, item.treename, branch, err) from None
            return self._checked(cols, where)
        finally:
            f.close()

    def _checked(self, cols: dict[str, Any], where: tuple[str, int, int]) -> dict[str, Any]:
        if self.plausibility is not None:  # values no detector gives: a damaged file
            self.plausibility.check(cols, self.layout, self.columns, where)
        return cols


class _SequentialReads:
    """The chunks of one file in order, from one ``uproot`` iteration over its branches
    (``HasBranches.iterate``, steps of the chunk size): a basket that straddles two chunks
    is decompressed once, where reading each chunk's entry range on its own decompresses it
    for both. The arrays are those of :meth:`ChunkReader.read_item`'s reads; any chunk that
    is not the next one of the open iteration, and any failure in it, is read the plain way
    (whose errors name the branch)."""

    def __init__(self) -> None:
        self.file: Any = None
        self.it: Iterator[dict[str, Any]] | None = None
        self.next: tuple[Any, ...] | None = None  # (file, tree, columns, start, step, entries)
        self.plain: set[str] = set()  # files whose iteration failed once: read the plain way

    def read(self, reader: ChunkReader, item: WorkItem) -> dict[str, Any] | None:
        size = item.entrystop - item.entrystart
        names = tuple(reader.columns.items())
        nxt = self.next
        # the next step of the open iteration: the same step, or the file's shorter last one
        follows = nxt is not None and nxt[:4] == (item.filename, item.treename, names,
                                                  item.entrystart) and (
            size == nxt[4] or (0 < size < nxt[4] and item.entrystop == nxt[5]))  # fmt: skip
        try:
            if not follows:
                self.close()
                if size <= 0 or item.filename in self.plain:
                    return None
                self.file, tree = gio.open_tree(item.filename, item.treename)
                wanted = set(reader.columns.values())
                entries = int(tree.num_entries)
                self.it = tree.iterate(
                    filter_name=lambda name: name in wanted, step_size=size,
                    entry_start=item.entrystart, entry_stop=entries, how=dict, library="ak",
                )  # fmt: skip
                nxt = (item.filename, item.treename, names, item.entrystart, size, entries)
            # an open iteration follows (for the type checker)
            assert self.it is not None
            assert nxt is not None
            arrays = next(self.it)
            cols = {col: arrays[branch] for col, branch in reader.columns.items()}
        except Exception:  # noqa: BLE001 - read again the plain way: its error, its message
            self.close()
            self.plain.add(item.filename)
            return None
        if any(len(a) != size for a in cols.values()):
            self.close()
            self.plain.add(item.filename)
            return None
        self.next = (*nxt[:3], item.entrystop, *nxt[4:])
        return cols

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        self.file = self.it = self.next = None


_SEQUENTIAL: list[_SequentialReads | None] = [None]
"""The open :func:`sequential_reads` of this process (none: every chunk read on its own)."""


@contextlib.contextmanager
def sequential_reads() -> Iterator[None]:
    """Within it, :meth:`ChunkReader.read_item` reads each file's consecutive chunks from one
    iteration (:class:`_SequentialReads`); for an executor that reads the chunks in order in
    this process (the iterative one)."""
    seq = _SEQUENTIAL[0] = _SequentialReads()
    try:
        yield
    finally:
        _SEQUENTIAL[0] = None
        seq.close()


@dataclasses.dataclass(frozen=True)
class WorkItem:
    """One chunk: entries ``[entrystart, entrystop)`` of the tree ``treename`` of ``filename``."""

    dataset: str
    filename: str
    treename: str
    entrystart: int
    entrystop: int


def chunk_items(
    fileset: Mapping[str, Mapping[str, Any]], entries: Mapping[str, int], chunksize: int
) -> list[WorkItem]:
    """The chunks of the files, in fileset order, the same on every executor: a file of n
    entries is split into chunks of ⌈n / k⌉ entries, k = max(round(n / chunksize), 1) (the
    last one shorter; coffea's rule, not aligned to clusters); an empty file is one empty
    chunk.

    Example:
        >>> [(i.entrystart, i.entrystop) for i in chunk_items(
        ...     {"d": {"files": {"a.root": "events"}}}, {"a.root": 1300}, 500)]
        [(0, 434), (434, 868), (868, 1300)]
    """
    items = []
    for dataset, spec in fileset.items():
        for path, tree in spec["files"].items():
            n = int(entries[path])
            if n == 0:
                items.append(WorkItem(dataset, path, tree, 0, 0))
                continue
            size = math.ceil(n / max(round(n / chunksize), 1))
            items += [WorkItem(dataset, path, tree, a, min(n, a + size)) for a in range(0, n, size)]
    return items


class BadChunk(Exception):
    """A chunk that could not be read (or whose values are implausible): the input file's
    fault, ``(path, reason)`` (the reason without the path); picklable for the way back
    from a worker process."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(path, reason)
        self.path, self.reason = path, reason

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"

    @classmethod
    def of(cls, path: str, err: InputError) -> BadChunk:
        return cls(path, str(err).removeprefix(f"{path}: "))


class DileptonProcessor:
    """Dilepton pair selection of one chunk (see :func:`gammastar.selection.chunk.select_chunk`).

    Per chunk it also looks up each pair's ε (column ``eff``; NaN outside the map unless
    ``nearest``) and fills the raw-count histograms (``os_m``, ``pp_m``, ``mm_m`` and their
    (m, qT, E) versions), which add exactly across chunks. With ``weights`` (chunk-local
    weight modes) it also computes the final columns (``qT``, ``acc``, ``weight_raw``,
    ``weight``), the unfolded histograms and the report counts and sums of the chunk
    (:func:`gammastar.selection.weights.pairs.weight_chunk`).

    :meth:`process_item` reads and selects one chunk (every executor's task, :func:`run_item`).

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
            driver to write; an fsspec URL (``selection.pairs_url``) is written to from the
            worker. ``""``: always return the bytes. ``None``: return the columns (in-memory
            path).
        part_numbers: input file → its number in the part names
            (:func:`gammastar.selection.writer.file_numbers`); needed with ``staging``.
        with_mass_sums: return the chunk's Σ weight per mass bin of its OS and SS pairs
            (:func:`gammastar.selection.weights.second_pass.mass_sums`: the η → μμ ``rate`` removal).
        with_unfolded: return the chunk's unfolded histograms (``False`` where the second
            pass fills them from the final weights: not computed, not sent).
        flavours: input file → the precision of its energy branches
            (:func:`~gammastar.selection.flavour_check.precision_probe`): a chunk of the
            file's first entries returns their flavour counts (``flavours``: file → counts,
            :func:`~gammastar.selection.flavour_check.chunk_flavours`; the input's flavour
            check, from the baskets the chunk reads anyway). ``None``: not counted.
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
        flavours: Mapping[str, Mapping[str, float]] | None = None,
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
        self.flavours = None if flavours is None else dict(flavours)

    def process_item(self, item: WorkItem) -> dict[str, Any]:
        """One chunk, read with uproot (:meth:`ChunkReader.read_item`)."""
        cols = self.reader.read_item(item)  # read first: a failure here is the input file's
        md = {"filename": item.filename, "entrystart": item.entrystart,
              "entrystop": item.entrystop}  # fmt: skip
        return self._guarded(cols, md)

    def _guarded(self, cols: Mapping[str, Any], md: Mapping[str, Any]) -> dict[str, Any]:
        """:meth:`_process`; a failure after the chunk was read is a :class:`ChunkError`
        naming file and entries (not the input's fault)."""
        try:
            return self._process(cols, md)
        except Exception as err:
            raise ChunkError(
                f"{md.get('filename', '?')}, entries {md.get('entrystart', '?')}-"
                f"{md.get('entrystop', '?')}: the chunk was read but failed afterwards: "
                f"{type(err).__name__}: {err}"
            ) from err

    def _process(self, cols: Mapping[str, Any], md: Mapping[str, Any]) -> dict[str, Any]:
        flavours = self._flavours(cols, md)  # of the columns as read, before the selection
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
        if flavours is not None:
            out["flavours"] = {key[0]: Counts(flavours)}
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
            if self.staging and (is_url(self.staging) or os.path.isdir(self.staging)):
                write_part(self.staging, name, data)
                payload["_part"] = name
            else:
                payload["_parquet"] = data
        out["pairs"] = PairChunks({key: payload})
        if self.staging is not None:  # to the driver: histograms, counts, sums, compressed
            # a part's Parquet bytes are compressed already: sent beside, not through zlib
            raw = payload.pop("_parquet", None)
            packed: dict[str, Any] = {"packed": Packed(out)}
            if raw is not None:
                packed["parquet"] = raw
            return packed
        return out

    def _flavours(self, cols: Mapping[str, Any], md: Mapping[str, Any]) -> dict | None:
        """The flavour counts of the chunk's share of its file's first entries (``None``:
        not asked for this file, or none of them here)."""
        eps = None if self.flavours is None else self.flavours.get(str(md.get("filename", "")))
        if eps is None:
            return None
        start = int(md.get("entrystart", 0))
        return chunk_flavours(cols, self.reader.layout, eps, start,
                              int(md.get("entrystop", start)))  # fmt: skip


def run_item(proc: DileptonProcessor, item: WorkItem) -> dict[str, Any]:
    """One chunk's task: the processor's output, as the sink takes it."""
    return {"out": proc.process_item(item)}


@dataclasses.dataclass
class LocalExecutor:
    """The iterative (this process) or futures (a process pool of ``workers``) executor;
    each chunk's output goes to the :class:`ChunkSink` as soon as it is done.

    With a pool and :meth:`hold_in` a directory, it holds chunk outputs and steps through
    them where the pool runs (:class:`~gammastar.selection.executors.held.FileStates`; the
    steps of :mod:`gammastar.selection.onworkers`, as on Dask)."""

    kind: str = "iterative"
    workers: int = 1
    pool: concurrent.futures.Executor | None = None
    sink: ChunkSink | None = None
    hold: bool = False
    """Keep each chunk's output in the pool's files (:attr:`held`); the driver receives its
    histograms and counts only."""
    held: dict[Any, str] = dataclasses.field(default_factory=dict)
    """(file, first entry) → the file of that chunk's output."""
    states: FileStates | None = None

    @property
    def can_hold(self) -> bool:
        """Whether the steps on the workers can run here (a pool with a directory)."""
        return self.states is not None

    def hold_in(self, directory: Path) -> None:
        """Hold the states of the steps on the workers in ``directory`` (a pool's only)."""
        if self.pool is not None:
            self.states = FileStates(self.pool, directory)

    def __call__(
        self, items: list[WorkItem], task: Callable[[WorkItem], dict[str, Any]]
    ) -> dict[str, Any]:
        sink = self.sink if self.sink is not None else ChunkSink()
        if self.pool is None:
            with sequential_reads():  # the chunks in order, here: one iteration per file
                return fold(sink, items, map(task, items))[0]["out"]
        if self.hold and self.states is not None:  # a retry replaces the chunks held before
            self.release_held()
            paths, futures = self.states.hold(task, items)
            self.held = {(str(i.filename), int(i.entrystart)): p
                         for i, p in zip(items, paths, strict=True)}  # fmt: skip
        else:
            futures = [self.pool.submit(task, item) for item in items]
        done = (f.result() for f in concurrent.futures.as_completed(futures))
        return fold_or_cancel(sink, items, done, lambda: [f.cancel() for f in futures])

    def map_held(
        self, fn: Callable[[Any], Any], states: Sequence[Any], *, keep: bool, common: Any = None
    ) -> tuple[list[Any], list[Any]]:
        """:meth:`FileStates.map_held <gammastar.selection.executors.held.FileStates.map_held>`
        (``common``: the object ``fn``'s :data:`~gammastar.selection.executors.held.SHARED`
        arguments stand for, written with ``fn``)."""
        if common is not None:
            fn = with_shared(fn, common)
        return self._states().map_held(fn, states, keep=keep)

    def map_new(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        """:meth:`FileStates.map_new <gammastar.selection.executors.held.FileStates.map_new>`."""
        return self._states().map_new(fn, items)

    def release_held(self, states: Sequence[Any] = ()) -> None:
        """Remove the held chunks' files (and those of ``states``)."""
        if self.states is not None:
            self.states.drop([*self.held.values(), *states])
        self.held = {}

    def _states(self) -> FileStates:
        if self.states is None:
            raise RuntimeError("this executor holds no states (a process pool with hold_in)")
        return self.states


def _make_executor(execution: Execution) -> tuple[Any, list[Any]]:
    """The executor and the objects to close."""
    executor, workers = execution.executor, execution.workers
    if executor == "iterative":
        return LocalExecutor(), []
    if executor == "futures":
        import loky  # fresh worker interpreters: no state inherited from the driver

        pool = loky.ProcessPoolExecutor(max_workers=workers or 2, initializer=load_chunk_code)
        return LocalExecutor("futures", workers or 2, pool), [_PoolCloser(pool)]
    if executor == "dask":
        from gammastar.selection.executors.dask_cluster import make_dask_executor

        return make_dask_executor(execution)
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
    if not isinstance(exe, LocalExecutor):
        from gammastar.selection.executors.dask_cluster import map_dask

        return map_dask(exe, fn, items)
    if exe.pool is not None:
        return list(exe.pool.map(fn, items))
    return [fn(x) for x in items]


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
    """Run the processor over the files' chunks on the chosen executor (``execution``:
    :class:`~gammastar.selection.executors.Execution`, default the iterative one; its
    ``chunksize`` default 500 000 entries; chunks as :func:`chunk_items` makes them).

    A file that fails while being read is reported by name: with ``skip_bad_files`` it is
    dropped and the run repeated without it (reported in the returned map), else
    :class:`~gammastar.errors.InputError` stops the run. A chunk that was read but failed
    afterwards stops the run (:class:`~gammastar.errors.ChunkError`).

    With ``sink`` the chunk outputs are folded as they arrive (:class:`ChunkSink`); the
    accumulator is then the sink's (``pairs`` or ``streamed``, ``unfolded``, ``sums``, ...).

    ``file_metadata`` (path → ``{"numentries": n, "uuid": bytes}``, from
    :func:`gammastar.io.check_inputs`) gives the entry counts the chunks are made from, so
    no file is opened again for them (on a cluster: one round of tasks before the first
    chunk); a file it lacks is opened for its count.

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


def _entries(fileset: Mapping[str, Any], known: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """Each file's entry count: from ``known`` (the input check's), else read from the file
    (an unreadable one an :class:`~gammastar.errors.InputError`)."""
    out = {}
    for spec in fileset.values():
        for path, tree in spec["files"].items():
            if path in known:
                out[path] = int(known[path]["numentries"])
                continue
            f, t = gio.open_tree(path, tree)
            try:
                out[path] = int(t.num_entries)
            finally:
                f.close()
    return out


def _run(
    fileset: dict[str, Any],
    proc: DileptonProcessor,
    exe: Any,
    execution: Execution,
    skip_bad_files: bool,
    file_metadata: Mapping[str, Mapping[str, Any]] | None,
    bad: dict[str, str],
) -> tuple[dict[str, Any], dict[str, str]]:
    """:func:`run_processor`'s loop on any executor (:class:`LocalExecutor`, the Dask one):
    a file that fails while read is dropped and the run repeated (``skip_bad_files``), else
    reported."""
    entries = _entries(fileset, file_metadata or {})
    while True:
        if not any(s["files"] for s in fileset.values()):
            raise InputError("no readable input file left: " + "; ".join(bad))
        items = chunk_items(fileset, entries, execution.chunksize or 500_000)
        try:
            return exe(items, functools.partial(run_item, proc)), bad
        except BadChunk as err:
            fileset = drop_bad_file(fileset, bad, err.path, err.reason, skip_bad_files)
