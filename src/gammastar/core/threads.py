"""numba's thread pool launched without overriding torch's thread count.

Offers :func:`ensure_pool`, called before every parallel numba kernel. numba's OpenMP
threading layer sets the process's OpenMP thread count, which torch shares, to its own pool's
size (every core) on its first parallel call: ``OMP_NUM_THREADS=1`` (one batch slot, or
processes side by side) would become every core for torch too, and the kernels would split
each step into parallel regions whose threads other processes hold, many times slower
(docs/flow.md "Ensemble").
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_LAUNCHED = False


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
