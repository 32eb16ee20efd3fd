"""Chunk outputs held where they were processed, for the steps that reduce them there
(:mod:`gammastar.selection.onworkers`: a measured λ_θ, the fiducial polarisation).

:class:`Summary` is what the driver's sink receives of a held chunk (its pair columns replaced
by their number). A Dask worker keeps a state in its memory (a future); a process pool cannot
send a task to the process that holds a state, so :class:`FileStates` keeps each state as a
pickle file of a directory the pool's processes share with the driver (the run's staging
directory), handed from step to step by its path: the states never pass through the driver.
Both offer the executor methods the steps use (``map_held``, ``map_new``, ``release_held``).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import os
import pickle
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gammastar.selection.writer import Packed

__all__ = ["SHARED", "FileStates", "Summary", "with_shared"]


class _Shared:
    """The placeholder :data:`SHARED` (pickled by name: the same object on every worker)."""

    def __reduce__(self) -> str:
        return "SHARED"

    def __repr__(self) -> str:
        return "SHARED"


SHARED: Any = _Shared()  # Any: it stands for an argument of any type
"""A step function's argument (a ``functools.partial``'s) that the executor fills in with the
object shared by the steps of a run (``map_held(..., shared=obj)``): on Dask that object is
sent to the workers once and kept there for every step that names it (a per-pair acceptance's
tables, tens of MB), instead of once with each step's function."""


def with_shared(fn: Callable[[Any], Any], value: Any) -> Callable[[Any], Any]:
    """``fn`` (a ``functools.partial``) with its :data:`SHARED` arguments replaced by
    ``value``."""
    if not isinstance(fn, functools.partial):
        return fn
    args = tuple(value if a is SHARED else a for a in fn.args)
    return functools.partial(fn.func, *args, **fn.keywords)


class SharedCall:
    """``with_shared(fn, value)(state)``: a step's function on a worker, ``value`` the shared
    object there (a future's data on Dask)."""

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        self.fn = fn

    def __call__(self, value: Any, state: Any) -> Any:
        return with_shared(self.fn, value)(state)


class Summary:
    """A held chunk's output as the driver's sink takes it: its pair columns replaced by
    their number (``_held``), the rest compressed (:class:`~gammastar.selection.writer.
    Packed`: mostly empty 3-D histograms)."""

    def __call__(self, wrapped: Any) -> Any:
        out = dict(wrapped["out"])
        pairs = out.pop("pairs", None)
        if pairs is not None:
            out["pairs"] = type(pairs)(
                {k: {"_held": True, "_rows": len(v["m"])} for k, v in pairs.chunks.items()}
            )
        return {"out": {"packed": Packed(out)}}


def _dump(obj: Any, path: str) -> None:
    with open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)


def _load(path: str) -> Any:
    with open(path, "rb") as fh:  # this run's own files (the pool's processes wrote them)
        return pickle.load(fh)


def _held_chunk(task: Callable[[Any], Any], item: Any, path: str) -> Any:
    """A chunk's task whose output stays in the file ``path``; its :class:`Summary` returned."""
    out = task(item)
    _dump(out, path)
    return Summary()(out)


@functools.lru_cache(maxsize=1)  # one map at a time: its function, read once per process
def _function(path: str) -> Callable[[Any], Any]:
    """The step's function written once by the driver (it may hold the acceptance's tables,
    tens of MB: not sent with every task)."""
    fn: Callable[[Any], Any] = _load(path)
    return fn


def _step(fn_path: str, src: str, dst: str | None) -> Any:
    """The function of ``fn_path`` on the state in ``src``: with ``dst`` it returns ``(new
    state, small)``, the new state is written there and ``small`` returned; else its
    result."""
    out = _function(fn_path)(_load(src))
    if dst is None:
        return out
    new, small = out
    _dump(new, dst)
    return small


def _new(fn_path: str, item: Any, dst: str) -> None:
    _dump(_function(fn_path)(item), dst)


@dataclass
class FileStates:
    """The held states of a process pool, one pickle file each in ``directory`` (made here)."""

    pool: concurrent.futures.Executor
    directory: Path
    made: int = 0
    steps: set[str] = field(default_factory=set)
    """The files of step states (consumed by the next step); the rest are chunk outputs."""

    def _paths(self, n: int) -> list[str]:
        self.directory.mkdir(parents=True, exist_ok=True)
        first, self.made = self.made, self.made + n
        return [os.fspath(self.directory / f"state-{i}.pkl") for i in range(first, first + n)]

    def hold(
        self, task: Callable[[Any], Any], items: Sequence[Any]
    ) -> tuple[list[str], list[concurrent.futures.Future[Any]]]:
        """The chunks' tasks with their outputs kept in files: the files and the futures of
        the summaries."""
        paths = self._paths(len(items))
        futures = [self.pool.submit(_held_chunk, task, it, p)
                   for it, p in zip(items, paths, strict=True)]  # fmt: skip
        return paths, futures

    def map_held(
        self, fn: Callable[[Any], Any], states: Sequence[str], *, keep: bool
    ) -> tuple[list[str], list[Any]]:
        """``fn`` on each state, in the pool: ``keep``: ``fn`` returns ``(new state, small)``,
        the new states are written to new files (the step states given are consumed:
        removed) and the smalls come back; else ``fn``'s results come back."""
        new: list[str | None] = [*self._paths(len(states))] if keep else [None] * len(states)
        with self._shared(fn) as path:
            results = _gather([self.pool.submit(_step, path, s, d)
                               for s, d in zip(states, new, strict=True)])  # fmt: skip
        if not keep:
            return [], results
        self.drop([s for s in states if s in self.steps])
        self.steps.update(p for p in new if p is not None)
        return [p for p in new if p is not None], results

    def map_new(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[str]:
        """``fn(item)`` for each item, written as held states (their files)."""
        paths = self._paths(len(items))
        with self._shared(fn) as path:
            _gather([self.pool.submit(_new, path, it, p)
                     for it, p in zip(items, paths, strict=True)])  # fmt: skip
        self.steps.update(paths)
        return paths

    @contextlib.contextmanager
    def _shared(self, fn: Callable[[Any], Any]) -> Iterator[str]:
        """``fn`` written once for the tasks of one map (as Dask scatters it), its file
        removed after."""
        (path,) = self._paths(1)
        _dump(fn, path)
        try:
            yield path
        finally:
            self.drop([path])

    def drop(self, paths: Sequence[str]) -> None:
        """Remove the states' files."""
        for p in paths:
            self.steps.discard(p)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(p)


def _gather(futures: list[concurrent.futures.Future[Any]]) -> list[Any]:
    """The futures' results in order; on an error the pending ones cancelled and the error
    itself raised."""
    try:
        return [f.result() for f in futures]
    except BaseException:
        for f in futures:
            f.cancel()
        raise
