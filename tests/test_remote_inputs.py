"""Inputs read by URL from real servers the tests start (tests/_servers.py): HTTP with range
requests, XRootD (Debian's ``xrootd`` daemon; skipped with the reason where none starts) and S3
(``moto``'s server). The selection over each protocol gives the pairs of the same files read
locally, bit for bit; ``select.json`` records the URLs; a missing file, a refused permission, an
unreachable host, a timeout and a server that ignores byte ranges are each one line naming the
URL; a URL's credentials are written nowhere."""

from __future__ import annotations

import json
import logging
import os
import re

import awkward as ak
import numpy as np
import pandas as pd
import pytest
from _cli import main_in_process
from _select_data import write_effmap, write_mock
from _servers import (
    closed_port,
    http_server,
    plain_http_server,
    s3_server,
    silent_server,
    xrootd_server,
)

from gammastar.config import config_from_dict
from gammastar.core import remote, rundir
from gammastar.errors import InputError
from gammastar.io import branch_map, check_inputs, open_tree, resolve_files
from gammastar.selection.executors import Execution
from gammastar.selection.executors.processor import ChunkReader, WorkItem
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
            "input": {"files": files if isinstance(files, dict) else list(files), "step_size": 60},
            "beam": {"energy": 400.0, "interaction_lengths": 0.01},  # the mock's (no defaults)
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
    pd.testing.assert_frame_equal(
        pd.read_parquet(out / rundir.PAIRS), local_pairs, check_exact=True
    )
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
    """S3 (moto's server): a coffea-style fileset whose glob is listed in the bucket."""
    pytest.importorskip("s3fs", reason="s3fs (the test extra) not installed")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    with s3_server([inputs / n for n in NAMES]) as base:
        fileset = {"run": {"files": {base + "*.root": "events"}}}  # a coffea-style fileset
        select(_cfg(inputs, tmp_path, fileset))
        _same_as_local(tmp_path, local_pairs, [base + n for n in NAMES])


def test_transient_read_failure_retried(inputs, quick):
    """A chunk's branch read dropped by the server (the connection closed, no answer; twice:
    aiohttp itself sends a request again once on a closed connection): the chunk is read again
    and its columns are those read from the local file (the same bytes, decoded the same)."""
    columns = {c: f"muon_{c}" for c in ("px", "py", "pz", "E", "charge")}
    reader = ChunkReader("jagged_cartesian", columns)
    local = reader.read_item(WorkItem("data", str(inputs / "a.root"), "events", 30, 100))
    with http_server(inputs) as (base, server):
        f, _ = open_tree(base + "a.root", "events")
        f.close()
        opening = server.ranges  # the requests of an open; the branches' reads follow them
        server.drop = {2 * opening + 1, 2 * opening + 2}
        cols = reader.read_item(WorkItem("data", base + "a.root", "events", 30, 100))
        assert server.ranges > 2 * opening + 2  # the dropped ones were reached
    assert cols.keys() == local.keys()
    for c in cols:
        # the same bytes decoded: exact (pattern F of tests/_select_data.py holds a NaN px)
        assert ak.array_equal(cols[c], local[c], equal_nan=True), c


def test_skip_bad_files_url(inputs, tmp_path):
    """``--skip-bad-files``: a missing URL is skipped and reported by name, the other read."""
    with http_server(inputs) as (base, _):
        good, gone = base + "a.root", base + "gone.root"
        select(_cfg(inputs, tmp_path, [good, gone]), skip_bad_files=True)
    doc = json.loads((tmp_path / rundir.SELECT).read_text())
    assert list(doc["bad_files"]) == [gone]
    assert doc["bad_files"][gone] == f"{gone}: input file not found on the server"
    assert list(doc["entries"]) == [good]


def test_http_glob_is_an_error(inputs):
    with pytest.raises(InputError, match=r"http:// cannot list a directory.*name the files"):
        resolve_files(["http://127.0.0.1:1/data/*.root"], "events")


@pytest.fixture
def quick(monkeypatch):
    """Requests bounded by 1 s, two tries, no wait between: the failures within seconds."""
    monkeypatch.setattr(remote, "TIMEOUT", 1.0)
    monkeypatch.setattr(remote, "ATTEMPTS", 2)
    monkeypatch.setattr(remote, "BACKOFF", 0.0)
    _xrootd_client_settings()  # process-wide: set at 1 s here, back to the default after
    yield
    monkeypatch.undo()
    _xrootd_client_settings()


def _xrootd_client_settings() -> None:
    """The XRootD client's timeouts from ``remote.TIMEOUT`` now (``_xrootd_timeouts`` applies
    them once per process, at the first root:// URL, whatever ``TIMEOUT`` was then)."""
    remote._xrootd_timeouts.cache_clear()
    remote._xrootd_timeouts()


# the one line of each failure (after the URL): what it says
EXPECTED = {
    "missing": r"input file not found on the server$",
    "permission": r"permission refused by the server \(its answer: .*\)$",
    "unreachable": r"cannot reach 127\.0\.0\.1:\d+ \(.*; tried 2 times\)$",
    "timeout": r"timed out \(no answer within 1 s; tried 2 times\)$",
}


def _failure(url):
    with pytest.raises(InputError) as info:
        open_tree(url, "events")
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(url + ": ")
    return text.removeprefix(url + ": ")


def _locked(inputs):
    locked = inputs / "locked.root"
    if not locked.exists():
        locked.write_bytes((inputs / "a.root").read_bytes())
        os.chmod(locked, 0)
    return locked


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_http_failures_one_line(inputs, quick, kind):
    _locked(inputs)
    with http_server(inputs) as (base, _), silent_server() as silent:
        url = {
            "missing": base + "nope.root",
            "permission": base + "locked.root",
            "unreachable": f"http://127.0.0.1:{closed_port()}/a.root",
            "timeout": f"http://127.0.0.1:{silent}/a.root",
        }[kind]
        assert re.search(EXPECTED[kind], _failure(url))


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_xrootd_failures_one_line(inputs, quick, kind):
    pytest.importorskip("fsspec_xrootd", reason="the xrootd extra (fsspec-xrootd) not installed")
    with xrootd_server([inputs / "a.root", _locked(inputs)], ("locked.root",)) as base, \
            silent_server() as silent:  # fmt: skip
        path = base.partition("//127.0.0.1:")[2].partition("/")[2]  # /<exported dir>/
        url = {
            "missing": base + "nope.root",
            "permission": base + "locked.root",
            "unreachable": f"root://127.0.0.1:{closed_port()}/{path}a.root",
            "timeout": f"root://127.0.0.1:{silent}/{path}a.root",
        }[kind]
        assert re.search(EXPECTED[kind], _failure(url))


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_s3_failures_one_line(inputs, quick, kind, monkeypatch):
    """S3: the permission refused to an IAM user without a policy (moto checks the requests'
    keys once told to); the endpoint and keys changed through the environment, which
    ``s3_server`` restores on leaving."""
    s3fs = pytest.importorskip("s3fs", reason="s3fs (the test extra) not installed")
    settings = pytest.importorskip("moto.settings")
    boto3 = pytest.importorskip("boto3")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with s3_server([inputs / "a.root"]) as base, silent_server() as silent:
        port = {"unreachable": closed_port(), "timeout": silent}.get(kind)
        if port is not None:
            os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
        if kind == "permission":
            iam = boto3.client("iam")
            user = f"reader-{os.getpid()}-{id(iam)}"  # moto's accounts outlive its servers
            iam.create_user(UserName=user)
            key = iam.create_access_key(UserName=user)["AccessKey"]
            os.environ["AWS_ACCESS_KEY_ID"] = key["AccessKeyId"]
            os.environ["AWS_SECRET_ACCESS_KEY"] = key["SecretAccessKey"]
            monkeypatch.setattr(settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
        s3fs.S3FileSystem.clear_instance_cache()  # neither endpoint nor keys in its cache key
        url = base + ("nope.root" if kind == "missing" else "a.root")
        said = _failure(url)
    s3fs.S3FileSystem.clear_instance_cache()
    assert re.search(EXPECTED[kind].replace("127", "http://127"), said)


def test_cli_input_url(inputs, local_pairs, tmp_path):
    """``gammastar select CONFIG --input URL``: the URL kept as given (not made a local path),
    the pairs the local read's; a missing URL is one line on stderr, exit status 2."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"output: {tmp_path / 'run'}\n"
        "input: {step_size: 60}\n"
        "beam: {energy: 400.0, interaction_lengths: 0.01}\n"
        f"unfold: {{efficiency_map: {inputs / 'eff.root'}}}\n"
    )
    with http_server(inputs) as (base, _):
        args = ["select", str(cfg), "--input", base + NAMES[0], "--input", base + NAMES[1]]
        assert main_in_process(*args).status == 0
        gone = main_in_process("select", str(cfg), "--input", base + "gone.root", "--force")
    _same_as_local(tmp_path / "run", local_pairs, [base + n for n in NAMES])
    assert gone.status == 2
    *assumed, error = gone.stderr.splitlines()  # the choices left to the mock's, then why
    assert all(ln.startswith("assumed: ") for ln in assumed)
    assert error == f"gammastar: error: {base}gone.root: input file not found on the server"


def test_lost_connection_while_opening_retried(inputs, quick):
    """Each ranged request of an open (the header, the directory, the tree's metadata), dropped
    in turn (twice: aiohttp itself sends a request again once on a closed connection): the open is tried again and finds the tree's entries (a.root: the 7 events of
    tests/_select_data.py's pattern() written 20 times)."""
    with http_server(inputs) as (base, server):
        f, t = open_tree(base + "a.root", "events")
        f.close()
        n = server.ranges  # the requests of one open
        assert n >= 2
        for k in range(1, n + 1):
            server.drop = {server.ranges + k, server.ranges + k + 1}  # aiohttp's own retry too
            f, t = open_tree(base + "a.root", "events")
            assert t.num_entries == 20 * 7
            f.close()


def test_run_watches_local_inputs_only(inputs, tmp_path):
    """``gammastar run``'s up-to-date check watches local input files (size, mtime), not URLs,
    which are kept out of its list rather than made into local paths."""
    from gammastar.pipeline import _input_files

    cfg = _cfg(inputs, tmp_path, [str(inputs / "a.root"), "http://127.0.0.1:1/b.root"])
    assert _input_files(cfg) == [inputs / "a.root"]


def test_damaged_file_same_error_as_local(inputs, tmp_path):
    """A truncated file (its first 60% of bytes) fails the input check by URL with the words it
    fails with on the local disk, the URL in place of the path."""
    data = (inputs / "a.root").read_bytes()
    (tmp_path / "cut.root").write_bytes(data[: int(0.6 * len(data))])
    bmap = branch_map("jagged_cartesian")
    local = str(tmp_path / "cut.root")
    with pytest.raises(InputError) as here:
        check_inputs({"d": {"files": {local: "events"}}}, bmap)
    with http_server(tmp_path) as (base, _), pytest.raises(InputError) as there:
        check_inputs({"d": {"files": {base + "cut.root": "events"}}}, bmap)
    assert str(there.value) == str(here.value).replace(local, base + "cut.root")


def test_server_ignoring_ranges_named(inputs, tmp_path):
    """``python -m http.server`` answers a ``Range`` request with the whole file: the open is
    refused with one line that says so and what to do, before uproot reads a byte of the file
    (not the "truncated or not ROOT" of a damaged file); the selection stops with it."""
    with plain_http_server(inputs) as base:
        url = base + "a.root"
        with pytest.raises(InputError) as info:
            open_tree(url, "events")
        with pytest.raises(InputError) as run:
            select(_cfg(inputs, tmp_path, [url]))
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(f"{url}: the HTTP server ignores byte ranges")
    for remedy in ("range-capable", "XRootD", "local disk"):
        assert remedy in text
    assert "truncated" not in text
    assert str(run.value) == text


TOKENS = ("SECRETUSER", "SECRETTOKEN", "SECRETSIG")


def test_credentials_written_nowhere(inputs, tmp_path, caplog):
    """``gammastar select --input`` of URLs with a user:password and credential parameters
    (authz, an S3 signature), one of them missing (--skip-bad-files: a warning, a bad file),
    then ``gammastar report``: no file of the run directory, no line of stdout or stderr and
    no log record holds a token; select.json records the URL with them redacted."""
    cfg = tmp_path / "c.yaml"
    run = tmp_path / "run"
    cfg.write_text(
        f"output: {run}\n"
        "input: {step_size: 60}\n"
        "beam: {energy: 400.0, interaction_lengths: 0.01, n_pot: 1.0e11}\n"
        f"unfold: {{efficiency_map: {inputs / 'eff.root'}}}\n"
    )
    caplog.set_level(logging.DEBUG)
    with http_server(inputs) as (base, server):
        auth = base.replace("http://", "http://SECRETUSER:SECRETTOKEN@")
        good = auth + "a.root?authz=SECRETTOKEN&X-Amz-Signature=SECRETSIG&part=1"
        gone = auth + "gone.root?access_token=SECRETTOKEN"
        sel = main_in_process("select", str(cfg), "--input", good, "--input", gone,
                              "--skip-bad-files")  # fmt: skip
        assert server.ranges > 0  # read through the credentialed URL
        bad = main_in_process("select", str(cfg), "--input", gone, "--force")
    rep = main_in_process("report", str(cfg))
    assert (sel.status, bad.status, rep.status) == (0, 2, 0), (sel, bad, rep)
    doc = json.loads((run / rundir.SELECT).read_text())
    shown = base.replace("http://", "http://<redacted>@")
    assert doc["meta"]["inputs"][0]["path"] == (
        shown + "a.root?authz=<redacted>&X-Amz-Signature=<redacted>&part=1"
    )
    assert list(doc["bad_files"]) == [shown + "gone.root?access_token=<redacted>"]
    written = [p for p in run.rglob("*") if p.is_file()]
    assert any(p.name == "report.html" for p in written)
    said = [sel.stdout, sel.stderr, bad.stdout, bad.stderr, rep.stdout, rep.stderr]
    said += [r.getMessage() for r in caplog.records]
    assert "gone.root" in bad.stderr  # the failure is said, the URL redacted
    for token in TOKENS:
        assert [p for p in written if token.encode() in p.read_bytes()] == [], token
        assert not [s for s in said if token in s], token
