"""The cores shared between processes and threads (gammastar.core.threads.share_cores,
limit_threads) and the reach's sizing of its worker processes on them
(gammastar.reach.scan.workers.worker_share)."""

from __future__ import annotations

import numpy as np
import pytest

from gammastar.core.threads import CoreShare, limit_threads, share_cores
from gammastar.reach.scan import workers


@pytest.mark.parametrize("cores", [1, 2, 3, 16, 64])
@pytest.mark.parametrize("pieces", [1, 2, 5, 59, 600])
@pytest.mark.parametrize("per", [1, 2, 7, 40])
def test_automatic_share_never_oversubscribes(cores, pieces, per):
    """Automatic: processes × threads ≤ cores, every process with at least ``per`` pieces
    (it repays its start), and no core left idle by the threads beyond the rounding of
    cores / processes."""
    s = share_cores(pieces, cores, per_process=per)
    assert 1 <= s.processes <= cores
    assert s.processes * s.threads <= cores
    assert s.processes == 1 or pieces // s.processes >= per
    assert s.threads == cores // s.processes


def test_two_cores_against_sixteen():
    """60 masses (the shipped grid): one process each where each repays its start on a
    single mass; the start worth 20 masses: 3 processes on 16 cores of 5 threads each (the
    flow's sampling threads), 2 on 2 cores; a scan shorter than two starts stays in this
    process with all the cores."""
    assert share_cores(60, 16) == CoreShare(16, 1)
    assert share_cores(60, 2) == CoreShare(2, 1)
    assert share_cores(60, 16, per_process=20) == CoreShare(3, 5)
    assert share_cores(60, 2, per_process=20) == CoreShare(2, 1)
    assert share_cores(39, 16, per_process=20) == CoreShare(1, 16)
    assert share_cores(3, 16) == CoreShare(3, 5)


def test_asked_processes():
    """A number of processes asked: that many, at most one per piece, even past the cores
    (the user's choice), each with at least one thread."""
    assert share_cores(60, 16, processes=4) == CoreShare(4, 4)
    assert share_cores(3, 16, processes=8) == CoreShare(3, 5)
    assert share_cores(60, 2, processes=4) == CoreShare(4, 1)
    assert share_cores(60, 16, processes=1) == CoreShare(1, 16)


@pytest.mark.parametrize("cores", [2, 16])
def test_reach_workers_repay_their_start(cores, monkeypatch):
    """``auto``: no worker before a mass was timed; one process per WORKER_START_SECONDS of the
    remaining work (masses of 0.3 s: one per 10 masses), within the CPUs of the process's
    affinity; a number asked: that many processes."""
    monkeypatch.setattr(workers, "allowed_cpus", lambda: cores)
    start = workers.WORKER_START_SECONDS
    assert workers.worker_share("auto", 58, None).processes == 1
    per = int(np.ceil(start / 0.3))
    assert workers.worker_share("auto", 58, 0.3).processes == min(cores, 58 // per)
    assert workers.worker_share("auto", 58, 10 * start).processes == min(cores, 58)
    # less work left than two starts: this process alone
    assert workers.worker_share("auto", 3, start / 2).processes == 1
    assert workers.worker_share(4, 58) == share_cores(58, cores, processes=4)


def test_limit_threads_holds_blas_and_torch_and_restores():
    """Inside the block BLAS runs one thread and torch at most the given count; after it both
    are as before."""
    torch = pytest.importorskip("torch")
    from threadpoolctl import threadpool_info

    def blas():
        return {
            d["filepath"]: d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"
        }

    before_blas, before_torch = blas(), torch.get_num_threads()
    with limit_threads(1):
        assert set(blas().values()) <= {1}
        assert torch.get_num_threads() == 1
    with limit_threads(None):  # torch untouched
        assert torch.get_num_threads() == before_torch
    assert blas() == before_blas
    assert torch.get_num_threads() == before_torch
