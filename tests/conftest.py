"""Shared fixtures."""

from __future__ import annotations

import os

# One BLAS thread per test process. `make test` runs two pytest-xdist workers on two cores:
# OpenBLAS's own threads (one per core in each worker) then outnumber the cores and spin while
# they wait, and the fits' many small matrix products ran 2-4 times slower in wall and CPU
# time. Set here, before the workers (and the commands the tests start) load numpy: they
# inherit this process's environment. A value given by the caller is kept.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import matplotlib
import pytest

matplotlib.use("Agg")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(os.path.dirname(REPO), "shared", "data", "cms-open-data")


@pytest.fixture(scope="session")
def repo_dir() -> str:
    """The repository root."""
    return REPO


@pytest.fixture(scope="session")
def cms_data_dir() -> str:
    """The CMS open-data files beside the repository (skip when absent)."""
    if not os.path.isdir(SHARED_DATA):
        pytest.skip(f"CMS open data not found at {SHARED_DATA}")
    return SHARED_DATA
