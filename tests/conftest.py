"""Shared fixtures."""

from __future__ import annotations

import os

# One BLAS thread per test process. `make test` runs two pytest-xdist workers on two cores:
# OpenBLAS's own threads (one per core in each worker) then outnumber the cores and spin while
# they wait, and the fits' many small matrix products ran 2-4 times slower in wall and CPU
# time. Set here, before the workers (and the commands the tests start) load numpy: they
# inherit this process's environment. A value given by the caller is kept.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# The same for OpenMP (torch's intra-op threads, numba's OpenMP layer): two workers of two
# threads each on two cores wait on each other's spinning threads.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import matplotlib
import pytest

matplotlib.use("Agg")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CMS_FILES = ("Run2012BC_DoubleMuParked_Muons_1000evts_rntuple_v1-0-0-0.root", "uproot-Zmumu.root")
"""Tutorial 2's CMS open-data files (docs/tutorial/02-your-data.md, step 1)."""

CMS_DATA_ENV = "GAMMASTAR_CMS_DATA"
"""The environment variable naming a folder that holds :data:`CMS_FILES`."""


def cms_data_candidates() -> list[str]:
    """Where the CMS files are looked for, in order: ``$GAMMASTAR_CMS_DATA``, the ``mydata/``
    folder where Tutorial 2 puts them, and ``../shared/data/cms-open-data`` beside the
    repository."""
    found = [os.environ[CMS_DATA_ENV]] if os.environ.get(CMS_DATA_ENV) else []
    shared = os.path.join(os.path.dirname(REPO), "shared", "data", "cms-open-data")
    return [*found, os.path.join(REPO, "mydata"), shared]


# The files whose tests take longest, scheduled first (pytest-xdist's loadfile hands a worker
# the next file in collection order as it finishes one, with --no-loadscope-reorder in
# pyproject.toml): a long file started last would leave the other worker idle at the end. The
# other files follow in their order, the doctests of src/ last (many short files). Only the
# order changes, never what runs.
LONGEST_FIRST = (
    "test_mock.py",
    "test_processor.py",
    "test_reliability.py",
    "test_fiducial.py",
    "test_flow.py",
    "test_lambda_correction.py",
    "test_validate.py",
    "test_extrapolation.py",
    "test_mock_pythia.py",
    "test_fullps.py",
    "test_yields.py",
    "test_both_flavours.py",
    "test_flow_mock_quick.py",
    "test_mcp_detector.py",
    "test_prescale.py",
    "test_report.py",
    "test_scaleout.py",
    "test_polarisation.py",
    "test_reach.py",
    "test_e2e.py",
    "test_export.py",
    "test_figures.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def pytest_collection_finish(session: pytest.Session) -> None:
    """What collection loaded (the libraries, every test module) moved out of the garbage
    collector's reach: it lives until the session ends, and each full collection during the
    tests would otherwise walk all of it again. The tests allocate many short-lived containers
    (arrays' wrappers, fixtures' objects): the collector runs less often (a worker has memory
    to spare; reference counting frees all but cycles at once)."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 50)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Everything left moved out of the garbage collector's reach once the session is over:
    the interpreter's last collection at exit would walk the whole heap (the libraries, every
    test's leftovers) for seconds, in each xdist worker while the controller waits for it,
    only to free memory that the process's exit frees anyway."""
    import gc

    gc.freeze()


@pytest.fixture(scope="session")
def repo_dir() -> str:
    """The repository root."""
    return REPO


@pytest.fixture(scope="session")
def cms_data_dir() -> str:
    """The first folder of :func:`cms_data_candidates` holding both CMS files; the tests that
    need them skip, saying how to get them, when none does."""
    places = cms_data_candidates()
    for place in places:
        if all(os.path.isfile(os.path.join(place, f)) for f in CMS_FILES):
            return place
    pytest.skip(
        f"the CMS open-data files {', '.join(CMS_FILES)} are in none of {places}: fetch them "
        "into mydata/ as docs/tutorial/02-your-data.md step 1 does (pip install "
        f"scikit-hep-testdata, then copy skhep_testdata.data_path(NAME)), or set {CMS_DATA_ENV} "
        "to a folder holding them"
    )
