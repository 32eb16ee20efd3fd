"""numba's thread pool launched without overriding torch's thread count; BLAS held to one
thread around small optimisations.

Offers :func:`ensure_pool`, called before every parallel numba kernel, and
:func:`single_thread_blas`. numba's OpenMP threading layer sets the process's OpenMP thread
count, which torch shares, to its own pool's size (every core) on its first parallel call:
``OMP_NUM_THREADS=1`` (one batch slot, or processes side by side) would become every core for
torch too, and the kernels would split each step into parallel regions whose threads other
processes hold, many times slower (docs/explanation/flow.md "Ensemble").
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from numba import njit, prange

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
