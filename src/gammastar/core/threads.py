"""numba's thread pool launched without overriding torch's thread count; BLAS held to one
thread around small optimisations; the cores shared between processes and their threads.

Offers :func:`ensure_pool`, called before every parallel numba kernel,
:func:`single_thread_blas`, :func:`thread_map` (independent pieces of work on Python
threads), :func:`share_cores` (processes × threads for pieces of work, within the cores) and
:func:`limit_threads` (a process's libraries held to its share). numba's OpenMP threading layer sets the process's OpenMP thread
count, which torch shares, to its own pool's size (every core) on its first parallel call:
``OMP_NUM_THREADS=1`` (one batch slot, or processes side by side) would become every core for
torch too, and the kernels would split each step into parallel regions whose threads other
processes hold, many times slower (docs/explanation/flow.md "Ensemble").
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from numba import njit, prange

from gammastar.core.imports import import_vector

import_vector()  # before numba's first dispatch loads vector's extension (core.imports)

T = TypeVar("T")
R = TypeVar("R")

_LAUNCHED = False
_BLAS: Any = None


@njit(parallel=True, cache=True)
def _touch(a):
    for i in prange(a.size):
        a[i] += 1.0


def ensure_pool() -> None:
    """Launch numba's thread pool once, with torch's thread count (``OMP_NUM_THREADS``,
    ``torch.set_num_threads``, or torch's default) as it was before the launch.

    Example:
        >>> import torch
        >>> n = torch.get_num_threads()
        >>> ensure_pool()
        >>> torch.get_num_threads() == n
        True
    """
    global _LAUNCHED
    if _LAUNCHED:
        return
    import torch

    n = torch.get_num_threads()
    _touch(np.zeros(2))
    _LAUNCHED = True
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


@contextmanager
def single_thread_blas() -> Iterator[None]:
    """Hold the loaded BLAS libraries (numpy's, scipy's) to one thread inside the block.

    scipy's L-BFGS-B (C since scipy 1.15) calls LAPACK on matrices of a few rows at every
    step; a multi-threaded OpenBLAS wakes its threads for each call, which then spin: on two
    cores a fit of two parameters took ~10× the CPU time of the single-threaded library
    (GitHub scipy/scipy#22438, OpenMathLib/OpenBLAS#5383). The libraries are found once, at
    the first call (after the caller imported what loads them).

    Example:
        >>> with single_thread_blas():
        ...     float(np.ones(3) @ np.ones(3))
        3.0
    """
    global _BLAS
    if _BLAS is None:
        from threadpoolctl import ThreadpoolController

        _BLAS = ThreadpoolController()
    with _BLAS.limit(limits=1, user_api="blas"):
        yield


def allowed_cpus() -> int:
    """The CPUs this process is allowed to run on (its affinity; else the machine's)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def usable_cores() -> int:
    """The cores this process may use for threads: ``OMP_NUM_THREADS`` where set (a batch
    slot's convention), else :func:`allowed_cpus`."""
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return allowed_cpus()


def thread_map(fn: Callable[[T], R], items: Iterable[T], *, threads: int | None = None) -> list[R]:
    """``[fn(x) for x in items]``, in order, on up to ``threads`` Python threads (default
    :func:`usable_cores`). For independent pieces whose time is spent where the GIL is
    released (numba kernels compiled ``nogil``, numpy on large arrays); ``fn`` must not
    depend on the order the pieces run in, and the results then do not depend on the number
    of threads. An exception in a piece is raised here.

    Example:
        >>> thread_map(lambda x: x * x, range(5), threads=2)
        [0, 1, 4, 9, 16]
    """
    items = list(items)
    n = min(len(items), usable_cores() if threads is None else max(1, int(threads)))
    if n <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(fn, items))


@dataclass(frozen=True)
class CoreShare:
    """``processes`` processes (1: the caller's alone), each with ``threads`` threads for its
    libraries (:func:`share_cores`)."""

    processes: int
    threads: int


def share_cores(
    pieces: int, cores: int, *, processes: int | None = None, per_process: int = 1
) -> CoreShare:
    """How ``pieces`` independent pieces of work share ``cores`` cores.

    ``processes`` given: that many, at most one per piece. ``None`` (automatic): one process
    per ``per_process`` pieces, at most ``cores``; a process that would get fewer pieces
    than that does not repay its start (a fresh interpreter's imports), so the caller's
    process works alone below ``2 * per_process`` pieces. Each process gets ``cores //
    processes`` threads (at least 1): processes × threads ≤ cores unless more processes than
    cores were asked for.

    Example:
        >>> share_cores(60, 16)
        CoreShare(processes=16, threads=1)
        >>> share_cores(60, 16, per_process=20)
        CoreShare(processes=3, threads=5)
        >>> share_cores(60, 16, per_process=40)
        CoreShare(processes=1, threads=16)
        >>> share_cores(60, 2, processes=4)
        CoreShare(processes=4, threads=1)
    """
    cores, pieces = max(1, int(cores)), max(1, int(pieces))
    if processes is None:
        n = min(cores, pieces // max(1, int(per_process)))
    else:
        n = min(int(processes), pieces)
    n = max(1, n)
    return CoreShare(n, max(1, cores // n))


@contextmanager
def limit_threads(threads: int | None, *, blas: int = 1) -> Iterator[None]:
    """Inside the block: the loaded BLAS libraries at ``blas`` threads, torch (if imported)
    at most at ``threads`` (``None``: as it is; the flow's sampling and numba's kernels follow
    torch's count); both restored after.

    A BLAS pool larger than its products wakes its threads for each call, which then spin
    (:func:`single_thread_blas`): a product of a few rows by ~10⁴ columns gains nothing from
    a second thread.

    Example:
        >>> with limit_threads(1):
        ...     float(np.ones(3) @ np.ones(3))
        3.0
    """
    import sys

    from threadpoolctl import threadpool_limits

    torch = sys.modules.get("torch") if threads is not None else None
    before = torch.get_num_threads() if torch is not None else None
    try:
        if torch is not None and before is not None and threads is not None:
            torch.set_num_threads(max(1, min(int(threads), before)))
        # the libraries loaded now (a fresh look: scipy's own OpenBLAS may have come since)
        with threadpool_limits(limits=max(1, int(blas)), user_api="blas"):
            yield
    finally:
        if torch is not None and before is not None:
            torch.set_num_threads(before)
