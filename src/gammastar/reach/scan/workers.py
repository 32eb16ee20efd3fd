"""The scan's mass points on worker processes: :class:`MassWorks` gives each mass point's
signal work (:func:`~.mass_signal._mass_work`: the A′ samples, acceptance, N_sig, the
ensemble's spread and the N_sig-level errors), with its limit where asked, in mass order,
computed in this process or on a pool of fresh interpreters (``reach.workers``,
:func:`worker_share`).

A mass point's work depends on no other (its draws are seeded by the scan's seed and its
index), so where it runs does not change it. A limit whose root search starts at the previous
mass's limit (a method with ``warm_start``: ``exact``, and ``auto`` which may pick it) stays
in the scan's process, in mass order (:func:`gammastar.reach.scan.scan`); the others'
(``toys``, ``asymptotic``) go with the signal.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
import signal
import sys
import time
from collections import deque
from collections.abc import Generator, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from types import TracebackType
from typing import Literal, Self

from gammastar.core.threads import (
    CoreShare,
    allowed_cpus,
    limit_threads,
    share_cores,
    usable_cores,
)
from gammastar.errors import ConfigError, EnvironmentFailure
from gammastar.reach.scan.mass_limit import _mass_limit, _MassLimit, _point
from gammastar.reach.scan.mass_signal import (
    _mass_work,
    _MassJob,
    _MassWork,
    _SignalContext,
    _SignalInputs,
)

__all__ = ["WORKER_START_SECONDS", "MassWorks", "Workers", "worker_share"]

log = logging.getLogger(__name__)

Workers = int | Literal["auto"]
"""``reach.workers``: a number of processes (1: this one), or ``auto``."""

WORKER_START_SECONDS = 3.0
"""A worker's start, in CPU seconds: a fresh interpreter importing numpy, scipy, torch, pyhf
and the package, then unpickling the samplers. ``auto`` gives each process at least that much
work (the masses' time estimated from the scan's own: :func:`worker_share`), so that a
worker repays its start; a short scan stays in this process."""


def worker_share(setting: Workers, masses: int, seconds: float | None = None) -> CoreShare:
    """The processes (this one among them) for ``masses`` mass points, and the threads of each
    (:func:`gammastar.core.threads.share_cores` on the CPUs this process may use,
    :func:`gammastar.core.threads.allowed_cpus`).

    ``setting`` a number: that many processes, at most one per mass. ``auto``: one per
    :data:`WORKER_START_SECONDS` of work, the masses taking ``seconds`` each (``None``: no
    estimate yet, one process).

    Example:
        >>> worker_share(4, 3).processes, worker_share(1, 60).processes
        (3, 1)
        >>> worker_share("auto", 60).processes, worker_share("auto", 0, 1.0).processes
        (1, 1)
    """
    cores = allowed_cpus()
    if setting != "auto":
        return share_cores(masses, cores, processes=int(setting))
    if seconds is None or not seconds > 0:
        return share_cores(masses, cores, processes=1)
    per = math.ceil(WORKER_START_SECONDS / seconds)
    return share_cores(masses, cores, per_process=per)


Done = tuple[_MassJob, _MassWork, _MassLimit | None]
"""A mass point, its signal work and its limit (``None``: left to the scan's process)."""

Outcome = tuple[_MassWork, _MassLimit | None] | BaseException
"""A mass's work and limit, or the exception its computation raised."""


class MassWorks:
    """The signal work of ``jobs`` in their order, with the limit when ``limits`` (else
    ``None``): ``for job, work, limit in works`` inside ``with MassWorks(...) as works``; the
    pool (if any) is closed on leaving the block, its queued masses cancelled when the block
    ends early (an error, an interrupt).

    n processes (:func:`worker_share`) are this one and a pool of n − 1 workers, each of them
    with its share of the CPUs' threads and BLAS at one thread (its products are a few rows by
    the samples: a second thread only spins). The pool takes the masses in order; this process,
    whenever the next mass in order is not ready, computes the last mass not yet sent instead
    of waiting (a worker's start, a pool slower than this process's limits): it is never idle
    and the order of the results does not change. ``workers`` (after the iteration): the
    processes used. With ``auto`` the masses run here until the time of the last one shows
    that a worker would repay its start (:data:`WORKER_START_SECONDS`). An error is raised
    here, in mass order, as it was raised (the same class and one-line message as in a serial
    scan); a worker that dies (killed, out of memory) is an
    :class:`~gammastar.errors.EnvironmentFailure`.
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
        self._iter: Generator[Done] | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._iter is not None:  # its thread limits lifted now, not when collected
            self._iter.close()
            self._iter = None
        if self._pool is not None:
            # the workers ignore SIGINT: each finishes its current mass, the queued ones go
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __iter__(self) -> Iterator[Done]:
        self._iter = it = self._iterate()
        return it

    def _iterate(self) -> Generator[Done]:
        share, rest = CoreShare(1, allowed_cpus()), list(self.jobs)
        if self.setting != "auto":
            share = worker_share(self.setting, len(self.jobs))
        with limit_threads(None):  # BLAS at one thread; torch as it is, in this process alone
            ctx = _SignalContext.of(self.inputs)
            if self.setting == "auto":
                rest = []
                for k, job in enumerate(self.jobs):
                    t0 = time.perf_counter()
                    out = _compute(ctx, job, self.limits)
                    dt = time.perf_counter() - t0  # the work a worker would take over
                    yield job, *out
                    # the last mass's time estimates the next ones' (the masses' costs vary
                    # along the grid; the first carries one-time costs: lazy imports, kernels)
                    share = worker_share("auto", len(self.jobs) - k - 1, dt if k > 0 else None)
                    if share.processes > 1:
                        rest = self.jobs[k + 1 :]
                        break
            payload = self._payload() if share.processes > 1 and rest else None
            if payload is None:
                for job in rest:
                    yield job, *_compute(ctx, job, self.limits)
                return
            self.workers = share.processes
            threads = min(share.threads, usable_cores())  # OMP_NUM_THREADS: a slot's own cap
            with limit_threads(threads):
                yield from self._on_pool(ctx, payload, rest, share.processes - 1, threads)

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

    def _on_pool(
        self, ctx: _SignalContext, payload: bytes, jobs: list[_MassJob], n: int, threads: int
    ) -> Iterator[Done]:
        """The works of ``jobs`` in order: on ``n`` spawned processes of ``threads`` threads,
        at most twice as many in flight as processes (the finished ones wait here for the
        earlier masses, each with its samples), and here, from the end, whenever the next mass
        is not ready."""
        import multiprocessing

        # spawn: a fresh interpreter per worker (torch and numba's threads are not fork-safe)
        self._pool = pool = ProcessPoolExecutor(
            n, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker,
            initargs=(payload, threads, self.limits),
        )  # fmt: skip
        todo = deque(jobs)  # not yet sent: the pool takes the front, this process the back
        sent: deque[tuple[_MassJob, Future[tuple[_MassWork, _MassLimit | None]]]] = deque()
        here: dict[int, Outcome] = {}  # computed here, by the job's index
        for job in jobs:
            while todo and len(sent) < 2 * (n + 1):
                nxt = todo.popleft()
                sent.append((nxt, pool.submit(_work, nxt)))
            if job.index in here:
                yield _here(job, here.pop(job.index))
                continue
            head, future = sent[0]
            assert head is job
            while todo and not future.done():
                last = todo.pop()
                here[last.index] = _outcome(ctx, last, self.limits)
            sent.popleft()
            yield _result(job, future)


def _outcome(ctx: _SignalContext, job: _MassJob, limits: bool) -> Outcome:
    """``job``'s :func:`_compute`, or the exception it raised (raised in its turn)."""
    try:
        return _compute(ctx, job, limits)
    except Exception as exc:  # noqa: BLE001 - raised again in mass order, by _here
        return exc


def _here(job: _MassJob, out: Outcome) -> Done:
    if isinstance(out, BaseException):
        raise out
    return job, *out


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
    """A worker's start: ``threads`` threads for torch (the flow's sampling; n workers share
    the CPUs), BLAS at one (:class:`MassWorks`), SIGINT left to the parent (which stops the
    pool), the inputs unpickled once. An error here is kept and raised by the first mass (a
    pool's initializer error would only break the pool)."""
    global _CONTEXT, _LIMITS, _START_ERROR
    _LIMITS = limits
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # read by gammastar.core.threads.usable_cores and by torch when the flow's unpickling
    # imports it; OpenBLAS reads its own at its loading
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    try:
        from threadpoolctl import threadpool_limits

        _CONTEXT = _SignalContext.of(pickle.loads(payload))
        threadpool_limits(1, user_api="blas")  # the BLAS numpy and scipy loaded by now
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
