"""The selection's chunks on a Dask cluster, through coffea's ``Runner`` (the one place the
selection imports coffea).

:func:`make_dask_executor` connects to a scheduler or starts a :func:`local_cluster`;
:func:`run_dask` runs the :class:`~gammastar.selection.processor.DileptonProcessor` (wrapped as
a coffea processor, :class:`CoffeaProcessor`) over the files' chunks, each chunk's output
folded on the driver by the :class:`~gammastar.selection.sink.ChunkSink` as it arrives;
:func:`map_dask` runs the second pass's tasks on the same cluster. Every task goes to the
scheduler as opaque bytes (:func:`opaque_map`), so that a fresh scheduler imports none of the
selection's libraries to read the graph. Preloaded on a worker, this module loads the chunk
code when the worker starts (:func:`dask_setup`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import pickle
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import cloudpickle
from coffea import processor

from gammastar.errors import ChunkError, InputError
from gammastar.selection.chunk import load_chunk_code
from gammastar.selection.execution import Execution
from gammastar.selection.sink import ChunkSink, drop_bad_file, fold

log = logging.getLogger(__name__)


class CoffeaProcessor(processor.ProcessorABC):
    """A :class:`~gammastar.selection.processor.DileptonProcessor` as coffea's processor."""

    def __init__(self, proc: Any) -> None:
        self.proc = proc

    def process(self, events: Any) -> dict[str, Any]:
        return self.proc.process(events)

    def postprocess(self, accumulator: dict[str, Any]) -> dict[str, Any]:
        return accumulator


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
        from distributed import as_completed

        client = self.client
        items = list(items)
        args: list[Any] = items
        if self.heavy_input is not None:  # the processor, pickled: in every chunk's task
            args = [(item, self.heavy_input) for item in items]
        futures = opaque_map(
            client, function, args, name=self.function_name or "task",
            priority=self.priority, retries=self.retries,
        )  # fmt: skip
        try:
            if self.sink is None or self.function_name == "get_metadata":
                return processor.accumulate(client.gather(futures), accumulator), 0

            def done() -> Any:
                for fut in as_completed(futures):
                    yield fut.result()
                    fut.release()

            return fold(self.sink, items, done())
        except BaseException:
            client.cancel(futures)
            raise


def dask_setup(worker: Any) -> None:
    """Dask's hook of a preloaded module (``dask worker --preload
    gammastar.selection.dask_run``; :func:`local_cluster`'s workers): the chunk code loaded
    when the worker starts (:func:`~gammastar.selection.chunk.load_chunk_code`), not in
    its first chunk."""
    load_chunk_code()


class _Call:
    """``fn(*args)``, called where it is unpickled (:func:`opaque_map`'s tasks)."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        self.fn, self.args = fn, args

    def __reduce__(self) -> tuple[Any, ...]:
        return self.fn, self.args


def opaque_map(
    client: Any, fn: Callable[[Any], Any], items: Sequence[Any], *, name: str, **kwargs: Any
) -> list[Any]:
    """``client.map(fn, items)``, each task sent as bytes that run ``fn(item)`` when the
    worker unpickles them (``pickle.loads`` of a :class:`_Call`).

    The scheduler unpickles every task graph it receives; a task holding the selection's
    function (a coffea closure, the processor, a second-pass function) would make a fresh
    scheduler import coffea, awkward, numba, uproot and gammastar (seconds) before the first
    chunk starts. Bytes need nothing; the worker unpickles them as it would have unpickled
    the task. One key per item (``<name>-<uuid>-<i>``: the tasks are not pure).
    """
    token = uuid.uuid4().hex
    blobs = [cloudpickle.dumps(_Call(fn, item), protocol=pickle.HIGHEST_PROTOCOL)
             for item in items]  # fmt: skip
    keys = [f"{name}-{token}-{i}" for i in range(len(blobs))]
    return client.map(pickle.loads, blobs, key=keys, pure=False, **kwargs)


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
            preload=["gammastar.selection.dask_run"],  # dask_setup: the chunk code loaded
            threads_per_worker=1,
            processes=processes,
            dashboard_address=None,
            # no dashboard; the scheduler's small HTTP server (health, metrics) on a free
            # port, not 8787 (taken by any other cluster on the machine: a warning)
            scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
        )


def make_dask_executor(execution: Execution) -> tuple[SinkDaskExecutor, list[Any]]:
    """The Dask executor of ``execution`` (its scheduler, else a :func:`local_cluster` of
    ``workers`` workers) and the objects to close."""
    from distributed import Client

    if execution.scheduler:
        try:
            client = Client(execution.scheduler, timeout=30)
        except Exception as err:  # noqa: BLE001
            raise InputError(
                f"--scheduler {execution.scheduler}: cannot connect to the Dask scheduler ({err})"
            ) from None
        return SinkDaskExecutor(client=client, status=False, retries=0, compression=None), [client]
    cluster = local_cluster(execution.workers or 2, processes=execution.dask_processes)
    client = Client(cluster)
    return SinkDaskExecutor(client=client, status=False, retries=0, compression=None), [
        client,
        cluster,
    ]


def map_dask(exe: SinkDaskExecutor, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    """``[fn(x) for x in items]`` as Dask tasks, results in item order."""
    name = str(getattr(fn, "__name__", None)
               or getattr(getattr(fn, "func", None), "__name__", "task"))  # fmt: skip
    futures = opaque_map(exe.client, fn, list(items), name=name, retries=exe.retries)
    try:
        return exe.client.gather(futures)
    except BaseException:
        exe.client.cancel(futures)
        raise


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


def run_dask(
    fileset: dict[str, Any],
    proc: Any,
    exe: SinkDaskExecutor,
    execution: Execution,
    skip_bad_files: bool,
    file_metadata: Mapping[str, Mapping[str, Any]] | None,
    bad: dict[str, str],
) -> tuple[dict[str, Any], dict[str, str]]:
    """:func:`gammastar.selection.processor.run_processor` on a Dask executor: coffea's
    ``Runner`` with this run's metadata cache (it does not open every file again, and never
    chunks by a stale entry count from its process-wide cache); a file that fails while read
    is dropped and the run repeated (``skip_bad_files``), else reported."""
    from coffea.nanoevents import BaseSchema

    wrapped = CoffeaProcessor(proc)
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
            # coffea's rich progress bars ignore status=False: keep them off the terminal
            with (
                contextlib.redirect_stdout(io.StringIO()),
                contextlib.redirect_stderr(io.StringIO()),
            ):
                out = runner(fileset, wrapped)
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
            fileset = drop_bad_file(fileset, bad, path, msg, skip_bad_files)
            continue
        if isinstance(out, tuple):
            out = out[0]
        return dict(out), bad
