"""The selection's chunks on a Dask cluster, through ``distributed``'s futures.

:func:`make_dask_executor` connects to a scheduler or starts a :func:`local_cluster`; its
:class:`DaskExecutor` runs the chunk tasks of :mod:`gammastar.selection.executors.processor` (the same
chunks and the same task as the futures executor), each chunk's output folded on the driver
by the :class:`~gammastar.selection.executors.sink.ChunkSink` as it arrives; :func:`map_dask` runs the
second pass's tasks on the same cluster. Every task goes to the scheduler as opaque bytes
(:func:`opaque_map`), so that a fresh scheduler imports none of the selection's libraries to
read the graph, and the driver imports only ``distributed``. Preloaded on a worker, this
module loads the chunk code when the worker starts (:func:`dask_setup`).
"""

from __future__ import annotations

import dataclasses
import importlib
import operator
import pickle
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import cloudpickle

from gammastar.errors import InputError
from gammastar.selection.chunk import load_chunk_code
from gammastar.selection.executors import Execution
from gammastar.selection.executors.facility import gateway_cluster, jobqueue_cluster
from gammastar.selection.executors.held import SharedCall, Summary
from gammastar.selection.executors.sink import ChunkSink, fold_or_cancel


@dataclasses.dataclass
class DaskExecutor:
    """Chunk tasks on a ``distributed.Client``; each chunk's output goes to the
    :class:`ChunkSink` as soon as it is done (no reduction tasks: the workers return small
    outputs or the names of the parts they wrote). An error in a chunk (the file's
    ``BadChunk``, a ``ChunkError``) reaches the caller as itself, as on the other executors."""

    client: Any
    retries: int = 0
    sink: ChunkSink | None = None
    hold: bool = False
    """Keep each chunk's output on its worker (:attr:`held`); the driver receives its
    histograms and counts only (:mod:`gammastar.selection.onworkers` steps through them)."""
    held: dict[Any, Any] = dataclasses.field(default_factory=dict)
    """(file, first entry) → the future of that chunk's output, kept on its worker."""
    can_hold = True
    """The steps on the workers run here (the states stay in the workers' memory)."""
    kept: dict[int, tuple[Any, Any]] = dataclasses.field(default_factory=dict)
    """id → (object, its future on every worker): the objects shared by the maps."""

    def __call__(self, items: list[Any], task: Callable[[Any], Any]) -> dict[str, Any]:
        from distributed import as_completed

        sink = self.sink if self.sink is not None else ChunkSink()
        futures = opaque_map(self.client, task, items, name="chunk", retries=self.retries)
        watched = futures
        if self.hold:  # a retry (a bad file dropped) replaces the chunks held before
            self.held = {(str(i.filename), int(i.entrystart)): f
                         for i, f in zip(items, futures, strict=True)}  # fmt: skip
            watched = self.client.map(
                operator.call, [along(self.client, Summary())] * len(futures),
                futures, pure=False,
            )  # fmt: skip

        def done() -> Iterator[Any]:
            for fut in as_completed(watched):
                yield fut.result()
                fut.release()

        cancel = lambda: self.client.cancel(list(futures) + list(watched))
        return fold_or_cancel(sink, items, done(), cancel)

    def map_held(
        self, fn: Callable[[Any], Any], states: Sequence[Any], *, keep: bool, common: Any = None
    ) -> tuple[list[Any], list[Any]]:
        """``fn`` on each held state, where it is: ``keep``: ``fn`` returns ``(new state,
        small)``; the new states stay on the workers (futures) and the smalls come back;
        else ``fn``'s results come back. ``fn`` is sent with the tasks (:func:`along`);
        ``common``: the object ``fn``'s :data:`~gammastar.selection.executors.held.SHARED`
        arguments stand for, sent to every worker once for all the maps that name it
        (:meth:`forget_shared` lets them drop it)."""
        n = len(states)
        if common is None:
            calls = [along(self.client, fn)] * n
            out = self.client.map(operator.call, calls, states, pure=False)
        else:
            calls = [along(self.client, SharedCall(fn))] * n
            values = [self._kept(common)] * n
            out = self.client.map(operator.call, calls, values, states, pure=False)
        if not keep:
            try:
                return [], self.client.gather(out)
            except BaseException:
                self.client.cancel(out)
                raise
        new = self.client.map(operator.itemgetter(0), out, pure=False)
        small = self.client.map(operator.itemgetter(1), out, pure=False)
        try:
            return new, self.client.gather(small)
        except BaseException:
            self.client.cancel(new + small)
            raise

    def _kept(self, obj: Any) -> Any:
        """``obj``'s future on every worker, sent by the first map that names it."""
        kept = self.kept.get(id(obj))
        if kept is None or kept[0] is not obj:
            kept = self.kept[id(obj)] = (obj, shared(self.client, obj))
        return kept[1]

    def forget_shared(self) -> None:
        """Let the workers drop the objects the maps shared (``map_held``'s ``common``)."""
        self.kept = {}

    def map_new(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        """``fn(item)`` for each item as held states (futures on the workers; ``fn``
        sent once to every worker)."""
        fut = shared(self.client, fn)
        return list(self.client.map(operator.call, [fut] * len(items), items, pure=False))

    def release_held(self, states: Sequence[Any] = ()) -> None:
        """Let the workers drop the held chunks (the ``states``, futures, go when the caller
        drops them)."""
        self.held = {}


TASK_MODULES = (
    "uproot",
    "hist",
    "gammastar.core.inflate",
    "gammastar.selection.flavour_check",
    "gammastar.selection.plausibility",
    "gammastar.selection.weights.second_pass",
    "gammastar.selection.onworkers",
    "gammastar.corrections.pair_acceptance.table",
)
"""The modules the selection's tasks need on a worker beyond the chunk code (what the
processor imports, uproot and hist among them, but not the processor itself, which uses this
module: its own code is the first task's only import; the steps on the held chunks, the
per-pair acceptance they receive):
imported by :func:`dask_setup`, else by each worker's first task of them (about 0.25 s, in
every worker at once: a fixed cost that more workers do not share)."""


def dask_setup(worker: Any) -> None:
    """Dask's hook of a preloaded module (``dask worker --preload
    gammastar.selection.executors.dask_cluster``; :func:`local_cluster`'s workers): the chunk
    code (:func:`~gammastar.selection.chunk.load_chunk_code`) and :data:`TASK_MODULES` loaded
    when the worker starts, not in its first tasks."""
    load_chunk_code()
    for name in TASK_MODULES:
        importlib.import_module(name)


class _OnBytes:
    """``fn(pickle.loads(blob))``: the function of :func:`opaque_map`'s tasks, whose items
    arrive as bytes."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    def __call__(self, blob: bytes) -> Any:
        return self.fn(pickle.loads(blob))


def opaque_map(
    client: Any, fn: Callable[[Any], Any], items: Sequence[Any], *, name: str, **kwargs: Any
) -> list[Any]:
    """``client.map(fn, items)`` with a task graph of builtins and bytes.

    The scheduler unpickles every task graph it receives; a task holding the selection's
    function (the processor, a second-pass function) or its items would make a fresh
    scheduler import awkward, numba, uproot and gammastar (seconds) before the first chunk
    starts. Here ``fn`` goes to every worker once (:func:`shared`; it may hold the efficiency
    and acceptance maps: sent once, not with every task) and each task is ``operator.call(fn,
    item's bytes)``: the scheduler reads a builtin, a future and bytes. One key per item
    (``<name>-<uuid>-<i>``: the tasks are not pure).
    """
    token = uuid.uuid4().hex
    fut = shared(client, _OnBytes(fn))
    blobs = [cloudpickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL) for item in items]
    keys = [f"{name}-{token}-{i}" for i in range(len(blobs))]
    return client.map(operator.call, [fut] * len(blobs), blobs, key=keys, pure=False,
                      **kwargs)  # fmt: skip


def along(client: Any, obj: Any) -> Any:
    """``obj``'s future for the tasks of one map that each also take a held state (a future
    whose worker the task runs on): a task that unpickles ``obj`` (a builtin and bytes: the
    scheduler reads no selection code), sent with the map's tasks, instead of :func:`shared`'s
    scatter, which waits for every worker before the map can be sent. The workers that need
    it fetch it from the one that made it (it is small: a step's function, its bins and
    sums; a large object, as the acceptance's tables, goes to every worker once through
    :meth:`DaskExecutor.map_held`'s ``common``)."""
    blob = cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    if len(blob) > ALONG_BYTES:  # not in the task graph: on every worker
        return shared(client, obj)
    return client.submit(pickle.loads, blob, key=f"step-{uuid.uuid4().hex}", pure=False)


ALONG_BYTES = 1 << 20
"""The largest object :func:`along` sends with the tasks (pickled; a larger one is
scattered to every worker, :func:`shared`)."""


def shared(client: Any, obj: Any) -> Any:
    """``obj`` scattered to every worker at once (its future), for the tasks of one map that
    all take it. Scattered to one worker only, it would draw every short task (a file's input
    check, a held chunk's summary) to that worker, and the others would fetch it from there
    (tens of MB where it holds the acceptance's tables) before their first task of the map."""
    return client.scatter(obj, hash=False, broadcast=True)


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
            # dask_setup: the chunk code loaded when each worker starts
            preload=["gammastar.selection.executors.dask_cluster"],
            threads_per_worker=1,
            processes=processes,
            dashboard_address=None,
            # no dashboard; the scheduler's small HTTP server (health, metrics) on a free
            # port, not 8787 (taken by any other cluster on the machine: a warning)
            scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
        )


def make_dask_executor(execution: Execution) -> tuple[DaskExecutor, list[Any]]:
    """The Dask executor of ``execution`` (a Gateway's or a batch system's cluster,
    :mod:`gammastar.selection.executors.facility`; its scheduler; else a :func:`local_cluster` of
    ``workers`` workers) and the objects to close."""
    from distributed import Client

    n = execution.workers or 2
    if execution.gateway:
        client, to_close = gateway_cluster(
            execution.gateway, n, execution.gateway_options, timeout=execution.worker_timeout
        )
        return DaskExecutor(client), to_close
    if execution.jobqueue:
        client, to_close = jobqueue_cluster(execution.jobqueue, n, timeout=execution.worker_timeout)
        return DaskExecutor(client), to_close
    if execution.scheduler:
        try:
            client = Client(execution.scheduler, timeout=30)
        except Exception as err:  # noqa: BLE001
            raise InputError(
                f"--scheduler {execution.scheduler}: cannot connect to the Dask scheduler ({err})"
            ) from None
        return DaskExecutor(client), [client]
    cluster = local_cluster(n, processes=execution.dask_processes)
    client = Client(cluster)
    return DaskExecutor(client), [client, cluster]


def map_dask(exe: DaskExecutor, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    """``[fn(x) for x in items]`` as Dask tasks, results in item order."""
    name = str(getattr(fn, "__name__", None)
               or getattr(getattr(fn, "func", None), "__name__", "task"))  # fmt: skip
    futures = opaque_map(exe.client, fn, list(items), name=name, retries=exe.retries)
    try:
        return exe.client.gather(futures)
    except BaseException:
        exe.client.cancel(futures)
        raise
