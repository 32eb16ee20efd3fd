"""The scan's mass points on worker processes: :class:`MassWorks` gives each mass point's
signal work (:func:`~.mass_signal._mass_work`: the A′ samples, acceptance, N_sig, the
ensemble's spread and the N_sig-level errors), with its limit where asked, in mass order,
computed in this process or on a pool of fresh interpreters (``reach.workers``,
:func:`worker_count`).

A mass point's work depends on no other (its draws are seeded by the scan's seed and its
index), so where it runs does not change it. A limit whose root search starts at the previous
mass's limit (a method with ``warm_start``: ``exact``, and ``auto`` which may pick it) stays
in the scan's process, in mass order (:func:`gammastar.reach.scan.scan`); the others'
(``toys``, ``asymptotic``) go with the signal.
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import sys
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from types import TracebackType
from typing import Literal, Self

from gammastar.core.threads import allowed_cpus
from gammastar.errors import ConfigError, EnvironmentFailure
from gammastar.reach.scan.mass_limit import _mass_limit, _MassLimit, _point
from gammastar.reach.scan.mass_signal import (
    _mass_work,
    _MassJob,
    _MassWork,
    _SignalContext,
    _SignalInputs,
)

__all__ = ["AUTO_MIN_SECONDS", "MassWorks", "Workers", "worker_count"]

log = logging.getLogger(__name__)

Workers = int | Literal["auto"]
"""``reach.workers``: a number of processes (1: this one), or ``auto``."""

AUTO_MIN_SECONDS = 10.0
"""``auto`` starts worker processes for the remaining masses once they would take longer than
this in this process, estimated from the last mass point's time (from the second on: the
first carries one-time costs). A worker is a fresh interpreter that imports numpy, scipy,
pyhf and the package and unpickles the samplers before its first mass: seconds, which a pool
of n workers repays once the serial time exceeds about n/(n − 1) times it; below, a short
scan stays in this process and is never slower."""


def worker_count(setting: Workers, masses: int) -> int:
    """The processes for ``masses`` mass points: ``setting`` (``auto``: the CPUs this process
    may use, :func:`gammastar.core.threads.allowed_cpus`), at most one per mass point.

    Example:
        >>> worker_count(4, 3), worker_count(1, 60), worker_count("auto", 0)
        (3, 1, 1)
    """
    n = allowed_cpus() if setting == "auto" else int(setting)
    return max(1, min(n, masses))


Done = tuple[_MassJob, _MassWork, _MassLimit | None]
"""A mass point, its signal work and its limit (``None``: left to the scan's process)."""


class MassWorks:
    """The signal work of ``jobs`` in their order, with the limit when ``limits`` (else
    ``None``): ``for job, work, limit in works`` inside ``with MassWorks(...) as works``; the pool (if any) is closed on leaving the block, its queued
    masses cancelled when the block ends early (an error, an interrupt).

    ``workers`` (after the iteration): the processes that computed the masses, 1 when they
    ran here. With ``auto`` the masses run here until the rest would take longer than
    :data:`AUTO_MIN_SECONDS`, then on a pool. A worker's error is raised here as it was raised there (the
    same class and one-line message as in a serial scan); a worker that dies (killed, out of
    memory) is an :class:`~gammastar.errors.EnvironmentFailure`.
    """

    def __init__(
        self,
        inputs: _SignalInputs,
        jobs: Sequence[_MassJob],
        setting: Workers,
        *,
        limits: bool = False,
    ) -> None:
        self.inputs, self.jobs, self.setting, self.limits = inputs, list(jobs), setting, limits
        self.workers = 1
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._pool is not None:
            # the workers ignore SIGINT: each finishes its current mass, the queued ones go
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __iter__(self) -> Iterator[Done]:
        ctx, rest, n = None, list(self.jobs), worker_count(self.setting, len(self.jobs))
        if self.setting == "auto":
            ctx = _SignalContext.of(self.inputs)
            rest, n = [], 1
            for k, job in enumerate(self.jobs):
                t0 = time.perf_counter()
                yield job, *_compute(ctx, job, self.limits)
                left = len(self.jobs) - k - 1
                # the last mass's time estimates the next ones' (the masses' costs vary along
                # the grid; the first carries one-time costs: lazy imports, kernels' loading)
                if k > 0 and (time.perf_counter() - t0) * left > AUTO_MIN_SECONDS:
                    rest, n = self.jobs[k + 1 :], worker_count("auto", left)
                    break
        payload = self._payload() if n > 1 else None
        if payload is None:
            ctx = ctx or _SignalContext.of(self.inputs)
            for job in rest:
                yield job, *_compute(ctx, job, self.limits)
            return
        self.workers = n
        yield from self._on_pool(payload, rest, n)

    def _payload(self) -> bytes | None:
        """The pickled inputs for the workers; ``None`` (``auto``: this process) when they do
        not pickle (a sampler defined in a function, holding a lambda, ...)."""
        try:
            return pickle.dumps(self.inputs, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            if self.setting != "auto":
                raise ConfigError(
                    f"reach.workers: {self.setting} processes need the A′ kinematics and the "
                    f"scan's settings sent to them, which do not pickle ({exc}); use "
                    "reach.workers: 1"
                ) from exc
            log.info("reach: the masses stay in this process (the inputs do not pickle: %s)", exc)
            return None

    def _on_pool(self, payload: bytes, jobs: list[_MassJob], n: int) -> Iterator[Done]:
        """The works of ``jobs`` on ``n`` spawned processes, at most 2n in flight (the
        finished ones wait here for the earlier masses, each with its samples)."""
        import multiprocessing

        threads = max(1, allowed_cpus() // n)
        # spawn: a fresh interpreter per worker (torch and numba's threads are not fork-safe)
        self._pool = pool = ProcessPoolExecutor(
            n, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker,
            initargs=(payload, threads, self.limits),
        )  # fmt: skip
        todo = iter(jobs)
        queued: deque[tuple[_MassJob, Future[tuple[_MassWork, _MassLimit | None]]]] = deque()
        for job in todo:
            queued.append((job, pool.submit(_work, job)))
            if len(queued) < 2 * n:
                continue
            yield _result(*queued.popleft())
        while queued:
            yield _result(*queued.popleft())


def _compute(
    ctx: _SignalContext, job: _MassJob, limits: bool
) -> tuple[_MassWork, _MassLimit | None]:
    """``job``'s signal work, and with ``limits`` its limit (no warm start: ``hint`` None)."""
    work = _mass_work(ctx, job)
    if not limits:
        return work, None
    point = _point(job, work, None)
    inp = ctx.inputs
    return work, _mass_limit(work.signal, point, inp.masses, inp.eps, inp.settings)


def _result(job: _MassJob, future: Future[tuple[_MassWork, _MassLimit | None]]) -> Done:
    try:
        return job, *future.result()
    except BrokenProcessPool as exc:
        raise EnvironmentFailure(
            f"reach: a worker process died computing the mass points around m = {job.mass:g} "
            "GeV (killed, or out of memory); rerun with fewer reach.workers"
        ) from exc


# --------------------------------------------------------------------------- in a worker
_CONTEXT: _SignalContext | None = None
_LIMITS = False
_START_ERROR: BaseException | None = None


def _start_worker(payload: bytes, threads: int, limits: bool) -> None:
    """A worker's start: ``threads`` threads for its libraries (n workers share the CPUs),
    SIGINT left to the parent (which stops the pool), the inputs unpickled once. An error
    here is kept and raised by the first mass (a pool's initializer error would only break
    the pool)."""
    global _CONTEXT, _LIMITS, _START_ERROR
    _LIMITS = limits
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # read by gammastar.core.threads.usable_cores (the flow's sampling threads) and by torch
    # when the flow's unpickling imports it
    os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)  # the BLAS numpy and scipy loaded already
        _CONTEXT = _SignalContext.of(pickle.loads(payload))
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(threads)
    except BaseException as exc:  # noqa: BLE001 - raised again by _work, in the parent
        _START_ERROR = exc


def _work(job: _MassJob) -> tuple[_MassWork, _MassLimit | None]:
    """One mass point's work in a worker (:func:`_compute`)."""
    if _START_ERROR is not None:
        raise _START_ERROR
    assert _CONTEXT is not None
    return _compute(_CONTEXT, job, _LIMITS)
