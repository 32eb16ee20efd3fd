"""Compile gammastar's numba kernels into numba's on-disk cache before the first run.

numba compiles a kernel at its first call and caches it beside the module (``__pycache__``,
or ``NUMBA_CACHE_DIR``); every later process loads it. :func:`compile_all` calls each kernel
module's ``warm_up`` (the signatures the package calls them with), the modules side by side
in processes of their own, so that the first analysis after an installation (or on a batch
farm's shared installation, before the jobs start) does not pay for the compilation::

    python -m gammastar.kernels
"""

from __future__ import annotations

import importlib
import sys
import time
from concurrent.futures import ProcessPoolExecutor

__all__ = ["KERNEL_MODULES", "compile_all"]

KERNEL_MODULES = (
    "gammastar.flow._training_kernels",
    "gammastar.flow._sampling_kernels",
    "gammastar.yields._extrapolation_kernel",
    "gammastar.yields._fiducial_bound",
    "gammastar.corrections.pair_acceptance.tabulation",
    "gammastar.events._hepmc_ascii",
)
"""The modules with compiled kernels, each with a ``warm_up()`` (the thread-pool launcher
:func:`gammastar.core.threads.ensure_pool` is part of the training kernels')."""


def _warm(module: str) -> float:
    t0 = time.perf_counter()
    importlib.import_module(module).warm_up()
    return time.perf_counter() - t0


def compile_all(workers: int | None = None) -> dict[str, float]:
    """Compile every kernel module's kernels (or load them from the cache): seconds per module.

    Arguments:
        workers: processes side by side (default: the CPUs this process may use).
    """
    from gammastar.core.threads import allowed_cpus

    n = workers or allowed_cpus()
    with ProcessPoolExecutor(max(1, min(n, len(KERNEL_MODULES)))) as pool:
        return dict(zip(KERNEL_MODULES, pool.map(_warm, KERNEL_MODULES), strict=True))


def main() -> int:
    t0 = time.perf_counter()
    times = compile_all()
    for module, s in times.items():
        print(f"{module}: {s:.1f} s")
    print(f"gammastar: numba kernels compiled in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
