"""The driver's fold of the selection's chunk outputs, shared by every executor.

:class:`ChunkSink` takes each chunk's output as it arrives and adds it in (file, first entry)
order (:func:`fold` feeds it an executor's results), so that the pairs, every histogram and
every report number are the same bit for bit whatever order the chunks finish in;
:class:`PairChunks` and :class:`Counts` are the chunk outputs' accumulators and
:func:`add_outputs` adds the order-free ones (integer counts) key by key;
:func:`drop_bad_file` is every executor's answer to a file that fails while read.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from typing import Any, Self

import numpy as np

from gammastar.errors import InputError
from gammastar.selection.writer import finish_dataset, write_part

log = logging.getLogger(__name__)


def drop_bad_file(
    fileset: Mapping[str, Any], bad: dict[str, str], path: str, msg: str, skip_bad_files: bool
) -> dict[str, Any]:
    """A file failed while read: without ``skip_bad_files`` an
    :class:`~gammastar.errors.InputError` naming it; else it is reported in ``bad`` and the
    fileset returned without it (the run is then repeated on the rest)."""
    if not skip_bad_files:
        raise InputError(f"{path}: failed while reading: {msg}") from None
    log.warning("skipping bad file %s: %s", path, msg)
    bad[path] = msg
    for s in fileset.values():
        s["files"].pop(path, None)
    return {d: s for d, s in fileset.items() if s["files"]}


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


class ChunkSink:
    """Folds the chunks' outputs on the driver in (file, first entry) order as they arrive.

    Cut flows, report counts and raw-count histograms (integers) are added in any order; the
    unfolded histograms, the float report sums and the per-bin sums are added in key order;
    the pairs are either kept in key order (columns; ``dataset`` ``None``) or are parts of the
    pair dataset ``dataset`` (written by the workers: the sink keeps their names; one sent
    as bytes it writes itself). An early chunk's small outputs are held until those before it
    are in. ``meanwhile``: work for the driver while the chunks run (run once, as the first
    fold starts: after a parallel executor has sent the chunks). ``on_flavours``: called
    with ``(file, counts)`` as soon as the chunks that read a file's first ``probe_entries``
    entries are all in (their summed flavour counts, ``{}`` where none were counted): the
    input's flavour check, which may raise and so stop the run before the file's later chunks
    (the executor cancels the pending ones).
    """

    def __init__(
        self,
        dataset: str | os.PathLike[str] | None = None,
        part_numbers: Mapping[str, int] | None = None,
        meanwhile: Callable[[], object] | None = None,
        on_flavours: Callable[[str, Mapping[str, int]], None] | None = None,
        probe_entries: int = 0,
    ) -> None:
        self.dataset = dataset
        self.part_numbers = dict(part_numbers or {})
        # run once by the first fold's start(): on a parallel executor the chunks are running
        # by then, and the driver would only wait for them
        self.meanwhile = meanwhile
        self.on_flavours = on_flavours
        self.probe_entries = probe_entries
        self._reset([])

    def start(self, items: Any) -> None:
        """A fresh fold over these work items (a retry starts over); the first one runs
        :attr:`meanwhile`."""
        self._reset(items)
        job, self.meanwhile = self.meanwhile, None
        if job is not None:
            job()

    def _reset(self, items: Any) -> None:
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
        # file → the keys of its chunks inside its first probe_entries entries not yet in
        self.probing: dict[str, set[Any]] = {}
        if self.on_flavours is not None:
            for i in items:
                if int(i.entrystart) < self.probe_entries and int(i.entrystop) > int(i.entrystart):
                    self.probing.setdefault(str(i.filename), set()).add(
                        (str(i.filename), int(i.entrystart))
                    )

    def add(self, wrapped: Mapping[str, Any]) -> None:
        sent = wrapped["out"]
        out = dict(sent["packed"].unpack() if "packed" in sent else sent)
        pairs = out.pop("pairs", PairChunks())
        if "parquet" in sent:  # the chunk's part, sent beside its packed outputs
            (chunk,) = pairs.chunks.values()
            chunk["_parquet"] = sent["parquet"]
        # cut flows, report counts, raw-count histograms: integers, any order
        add_outputs(self.acc, out)
        self._probed(pairs.chunks)
        self.pending.update(pairs.chunks)
        while self.next < len(self.order) and self.order[self.next] in self.pending:
            key = self.order[self.next]
            self._fold(key, self.pending.pop(key))
            self.next += 1

    def _probed(self, keys: Any) -> None:
        """:attr:`on_flavours` of each file whose probed chunks are now all in."""
        for key in keys:
            waiting = self.probing.get(key[0])
            if waiting is None:
                continue
            waiting.discard(key)
            if not waiting:
                del self.probing[key[0]]
                assert self.on_flavours is not None  # probing is filled only with it
                self.on_flavours(key[0], dict(self.acc.get("flavours", {}).get(key[0], {})))

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
        if chunk.get("_held"):  # the columns stay on the worker (DaskExecutor hold)
            self.rows += int(chunk["_rows"])
            return
        if "_name" not in chunk:  # columns (in-memory path, or an empty chunk)
            # with the pairs' acceptance moments where the chunks return them (WeightSpec)
            cols = {k: v for k, v in chunk.items() if not k.startswith("_") or k == "_moments"}
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


def add_outputs(acc: dict[str, Any], new: Mapping[str, Any]) -> None:
    """``acc += new`` key by key, in place: :class:`Counts` and histograms added, other
    mappings (the histograms by name) key by key, a key ``acc`` lacks taken over.

    Example:
        >>> acc = {}
        >>> add_outputs(acc, {"cutflow": Counts(os=1), "sums": {"w": 1.0}})
        >>> add_outputs(acc, {"cutflow": Counts(os=2, pp=1), "sums": {"w": 0.5, "n": 2}})
        >>> acc
        {'cutflow': {'os': 3, 'pp': 1}, 'sums': {'w': 1.5, 'n': 2}}
    """
    for key, value in new.items():
        if key not in acc:
            acc[key] = value
        elif isinstance(value, Mapping) and not isinstance(value, Counts):
            add_outputs(acc[key], value)
        else:
            acc[key] += value


def fold_or_cancel(
    sink: ChunkSink, items: list[Any], results: Any, cancel: Callable[[], object]
) -> dict[str, Any]:
    """:func:`fold`'s output of a parallel executor's results; on any error ``cancel()`` the
    tasks still pending and raise the error itself (not a pool's or cluster's remote
    traceback, whose text would hide the message naming the file)."""
    try:
        return fold(sink, items, results)[0]["out"]
    except BaseException as err:
        cancel()
        raise err from None


def fold(sink: ChunkSink, items: list[Any], results: Any) -> tuple[dict[str, Any], int]:
    """Feed the results to the sink; on any error, drop what it wrote."""
    sink.start(items)
    try:
        for r in results:
            sink.add(r)
        return {"out": sink.finish()}, 0
    except BaseException:
        sink.abort()
        raise
