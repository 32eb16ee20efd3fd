"""The selection as a coffea processor, run on the iterative, futures or Dask executor.

:class:`DileptonProcessor` is stateless and picklable (plain strings, numbers and a frozen
dataclass); each chunk returns a cut flow (summed across chunks) and its pair columns in a
:class:`PairChunks` keyed by ``(file, first entry)``. The driver orders the chunks by that key,
so the merged pairs table, and every histogram filled from it, is the same bit for bit on
every executor whatever order the chunks finish in.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
from collections.abc import Mapping
from typing import Any, Self

from coffea import processor

from gammastar.errors import InputError
from gammastar.select import Cuts, HistAxes, raw_histograms, select_chunk
from gammastar.unfold import EfficiencyMap, lookup_efficiency

log = logging.getLogger(__name__)


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
        return sum(len(c["m"]) for c in self.chunks.values())


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


class DileptonProcessor(processor.ProcessorABC):
    """Dilepton pair selection of one chunk (see :func:`gammastar.select.select_chunk`).

    Per chunk it also looks up each pair's ε (column ``eff``; NaN outside the map unless
    ``nearest``) and fills the raw-count histograms (``os_m``, ``pp_m``, ``mm_m`` and their
    (m, qT, E) versions), which add exactly across chunks.

    Arguments:
        layout: input layout (:mod:`gammastar.io`).
        columns: package column → branch name, checked beforehand.
        cuts: the selection.
        lepton_mass: for layouts without a mass.
        effmap: the efficiency map (``None``: ε = 1).
        nearest: pairs outside the map take the nearest bin's ε.
        axes: histogram binning (``None``: no histograms).
    """

    def __init__(
        self,
        layout: str,
        columns: Mapping[str, str],
        cuts: Cuts,
        lepton_mass: float = 0.1056583755,
        effmap: EfficiencyMap | None = None,
        nearest: bool = False,
        axes: HistAxes | None = None,
    ) -> None:
        self.layout = layout
        self.columns = dict(columns)
        self.cuts = cuts
        self.lepton_mass = lepton_mass
        self.effmap = effmap or EfficiencyMap.unity()
        self.nearest = nearest
        self.axes = axes

    def process(self, events: Any) -> dict[str, Any]:
        md = events.metadata
        cols = {col: events[branch] for col, branch in self.columns.items()}
        pairs, flow = select_chunk(
            cols,
            self.layout,
            self.cuts,
            lepton_mass=self.lepton_mass,
            entry_offset=int(md.get("entrystart", 0)),
        )
        pairs["eff"], flow["pairs_outside_map"] = lookup_efficiency(
            self.effmap, pairs["m"], pairs["pT"], nearest=self.nearest
        )
        key = (str(md.get("filename", "")), int(md.get("entrystart", 0)))
        out = {"cutflow": Counts(flow), "pairs": PairChunks({key: pairs})}
        if self.axes is not None:
            out["hists"] = raw_histograms(self.axes, pairs)
        return out

    def postprocess(self, accumulator: dict[str, Any]) -> dict[str, Any]:
        return accumulator


def local_cluster(n_workers: int = 2, *, processes: bool = True) -> Any:
    """A ``distributed.LocalCluster`` of single-threaded workers tuned for this selection.

    Dask's nanny starts worker processes with ``MALLOC_TRIM_THRESHOLD_=65536``, which makes
    glibc hand every freed large array back to the OS; the columnar selection allocates and
    frees many such arrays per chunk and runs about 1.5× slower with it (measured), so the
    workers here start without it. (On a facility cluster, remove it from the config key
    ``distributed.nanny.pre-spawn-environ``.)
    """
    import dask
    from distributed import LocalCluster

    env = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
    env.pop("MALLOC_TRIM_THRESHOLD_", None)
    with dask.config.set({"distributed.nanny.pre-spawn-environ": env}):
        return LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=processes,
            dashboard_address=None,
        )


def _make_executor(
    executor: str, scheduler: str | None, workers: int | None, dask_processes: bool
) -> tuple[Any, list[Any]]:
    """The coffea executor and the objects to close afterwards."""
    if executor == "iterative":
        return processor.IterativeExecutor(status=False, retries=0), []
    if executor == "futures":
        return processor.FuturesExecutor(
            workers=workers or 2, status=False, retries=0, compression=None
        ), []
    if executor == "dask":
        from distributed import Client

        if scheduler:
            try:
                client = Client(scheduler, timeout=30)
            except Exception as err:  # noqa: BLE001
                raise InputError(
                    f"--scheduler {scheduler}: cannot connect to the Dask scheduler ({err})"
                ) from None
            return processor.DaskExecutor(
                client=client, status=False, retries=0, compression=None
            ), [client]
        cluster = local_cluster(workers or 2, processes=dask_processes)
        client = Client(cluster)
        return processor.DaskExecutor(client=client, status=False, retries=0, compression=None), [
            client,
            cluster,
        ]
    raise ValueError(f"unknown executor {executor!r}")


def _bad_file(err: BaseException, files: list[str]) -> str | None:
    """Which input file an executor's exception is about (coffea names it in the message)."""
    text = repr(err)
    cause = err.__cause__
    while cause is not None:
        text += repr(cause)
        cause = cause.__cause__
    hits = [f for f in files if f in text]
    return max(hits, key=len) if hits else None


def run_processor(
    fileset: Mapping[str, Mapping[str, Any]],
    proc: DileptonProcessor,
    *,
    executor: str = "iterative",
    scheduler: str | None = None,
    workers: int | None = None,
    chunksize: int = 500_000,
    skip_bad_files: bool = False,
    dask_processes: bool = True,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Run the processor with ``coffea.processor.Runner`` on the chosen executor.

    A file that fails while being read is reported by name: with ``skip_bad_files`` it is
    dropped and the run repeated without it (reported in the returned map), else
    :class:`~gammastar.errors.InputError` stops the run.

    Returns:
        ``(accumulator, bad_files)``; the accumulator has ``cutflow`` and ``pairs``.
    """
    from coffea.nanoevents import BaseSchema

    fileset = {d: {**s, "files": dict(s["files"])} for d, s in fileset.items()}
    bad: dict[str, str] = {}
    exe, to_close = _make_executor(executor, scheduler, workers, dask_processes)
    try:
        while True:
            files = [f for s in fileset.values() for f in s["files"]]
            if not files:
                raise InputError("no readable input file left: " + "; ".join(bad))
            runner = processor.Runner(
                executor=exe, schema=BaseSchema, chunksize=chunksize, savemetrics=False
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
                path = _bad_file(err, files)
                text = str(err.__cause__ or err)
                found = re.search(r"The error was: (.*?)\.?$", text.splitlines()[0] if text else "")
                msg = (found.group(1) if found else text.splitlines()[0] if text else "")[:300]
                msg = msg or type(err).__name__
                if path is None:
                    raise
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
    finally:
        for obj in to_close:
            try:
                obj.close()
            except Exception:  # pragma: no cover - best effort shutdown  # noqa: BLE001
                log.debug("closing %r failed", obj)
