"""Inputs read by URL from real servers the tests start (tests/_servers.py): HTTP with range
requests, XRootD (Debian's ``xrootd`` daemon; skipped with the reason where none starts) and S3
(``moto``'s server). The selection over each protocol gives the pairs of the same files read
locally, bit for bit; ``select.json`` records the URLs; a missing file, a refused permission, an
unreachable host and a timeout are each one line naming the URL."""

from __future__ import annotations

import json
import logging
import os

import numpy as np
import pandas as pd
import pytest
from _select_data import write_effmap, write_mock
from _servers import closed_port, http_server, s3_server, silent_server, xrootd_server

from gammastar.config import config_from_dict
from gammastar.core import remote, rundir
from gammastar.errors import InputError
from gammastar.io import open_tree, resolve_files
from gammastar.selection.execution import Execution
from gammastar.selection.stage import select

pytest.importorskip("aiohttp", reason="fsspec's HTTP backend (the test extra) not installed")

NAMES = ("a.root", "b.root")  # as a glob lists them: sorted


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Two small mock files (tests/_select_data.py) and an efficiency map, in a folder."""
    d = tmp_path_factory.mktemp("inputs")
    write_mock(d / "b.root", 30)
    write_mock(d / "a.root", 20, event_offset=10_000)
    write_effmap(d / "eff.root", np.random.default_rng(0).uniform(0.3, 0.9, (20, 10)))
    return d


def _cfg(inputs, out, files):
    return config_from_dict(
        {
            "output": str(out),
            # chunks of 60 entries: each file read in several chunks (ranged reads)
            "input": {"files": list(files), "step_size": 60},
            "unfold": {"efficiency_map": str(inputs / "eff.root")},
        },
        source=str(inputs / "c.yaml"),
    )


@pytest.fixture(scope="module")
def local_pairs(inputs, tmp_path_factory):
    """The selection of the two files read from the local disk: the reference."""
    out = tmp_path_factory.mktemp("local")
    select(_cfg(inputs, out, [str(inputs / n) for n in NAMES]))
    return pd.read_parquet(out / rundir.PAIRS)


def _same_as_local(out, local_pairs, urls):
    """The run at ``out`` read ``urls``: its pairs are the local read's, exactly (the same bytes
    reach the same uproot decoding and the same selection code: no rounding differs), and
    ``select.json`` names the URLs."""
    pd.testing.assert_frame_equal(pd.read_parquet(out / rundir.PAIRS), local_pairs, check_exact=True)
    doc = json.loads((out / rundir.SELECT).read_text())
    assert [i["path"] for i in doc["meta"]["inputs"]] == list(urls)
    assert set(doc["entries"]) == set(urls)


def test_http_range_requests(inputs, local_pairs, tmp_path):
    """HTTP: the server answers ranges (206), uproot reads the chunks by range."""
    with http_server(inputs) as (base, server):
        urls = [base + n for n in NAMES]
        select(_cfg(inputs, tmp_path, urls))
        assert server.ranges > 0  # read by ranges, not whole
        _same_as_local(tmp_path, local_pairs, urls)


def test_xrootd_glob_dask(inputs, local_pairs, tmp_path):
    """XRootD: a glob listed on the server, the chunks read by Dask workers (threads)."""
    pytest.importorskip("fsspec_xrootd", reason="the xrootd extra (fsspec-xrootd) not installed")
    with xrootd_server([inputs / n for n in NAMES]) as base:
        ex = Execution("dask", workers=2, dask_processes=False)
        select(_cfg(inputs, tmp_path, [base + "*.root"]), execution=ex)
        _same_as_local(tmp_path, local_pairs, [base + n for n in NAMES])


def test_s3_glob(inputs, local_pairs, tmp_path):
    """S3 (moto's server): a glob listed in the bucket."""
    pytest.importorskip("s3fs", reason="s3fs (the test extra) not installed")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    with s3_server([inputs / n for n in NAMES]) as base:
        select(_cfg(inputs, tmp_path, [base + "*.root"]))
        _same_as_local(tmp_path, local_pairs, [base + n for n in NAMES])
