"""A facility's cluster: the selection asks a real ``dask-gateway-server`` (its local backend,
started here on 127.0.0.1) for a cluster with a named software environment, scales it, gets the
same results as in one process and shuts it down; a ``dask-jobqueue`` file gives the job
script (a dry run: no batch system here) and its errors are one line."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from _cli import main_in_process
from _select_data import write_effmap, write_mock

from gammastar.config import config_from_dict
from gammastar.errors import ConfigError, InputError
from gammastar.selection.executors import Execution
from gammastar.selection.executors.facility import gateway_cluster, job_script, read_jobqueue
from gammastar.selection.stage import select

SERVER_CONFIG = """
import sys
from dask_gateway_server.options import Options, String
c.DaskGateway.backend_class = "dask_gateway_server.backends.local.UnsafeLocalBackend"
c.DaskGateway.address = "127.0.0.1:{api}"
c.Proxy.address = "127.0.0.1:{proxy}"
c.DaskGateway.authenticator_class = "dask_gateway_server.auth.SimpleAuthenticator"
c.LocalClusterConfig.scheduler_cmd = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
c.LocalClusterConfig.worker_cmd = [sys.executable, "-m", "distributed.cli.dask_worker"]
c.LocalClusterConfig.worker_memory = "1 G"
c.LocalClusterConfig.idle_timeout = 120
c.UnsafeLocalBackend.clusters_directory = {clusters!r}
# a facility's "software environment" option: here it reaches the workers as a variable
c.Backend.cluster_options = Options(
    String("environment", default="base", label="Software environment"),
    handler=lambda options: {{"environment": {{"GAMMASTAR_ENV": options.environment}}}},
)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(port: int) -> bool:
    """The Gateway's health check answers through its proxy (the proxy has its routes)."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    """A ``dask-gateway-server`` on its local backend (worker processes of this Python), its
    proxy's address; stopped (with any cluster left) at the end."""
    pytest.importorskip("dask_gateway", reason="the 'gateway' extra is not installed")
    pytest.importorskip("dask_gateway_server", reason="dask-gateway-server is not installed")
    d = tmp_path_factory.mktemp("gateway")
    api, proxy = _free_port(), _free_port()
    (d / "clusters").mkdir()
    conf = d / "config.py"
    conf.write_text(SERVER_CONFIG.format(api=api, proxy=proxy, clusters=str(d / "clusters")))
    log = open(d / "server.log", "w")  # noqa: SIM115 - closed below
    cmd = [sys.executable, "-m", "dask_gateway_server", "-f", str(conf)]
    proc = subprocess.Popen(cmd, cwd=d, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 30
    while not _healthy(proxy):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            log.close()
            tail = (d / "server.log").read_text()[-400:]
            pytest.skip(f"dask-gateway-server did not start: {tail}")
        time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{proxy}"
    finally:
        proc.terminate()  # the server stops its clusters' processes as it exits
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()
        log.close()


def _clusters(address: str) -> list:
    from dask_gateway import Gateway

    gw = Gateway(address)  # basic auth as this user: the test server's
    try:
        return gw.list_clusters()
    finally:
        gw.close()
        # its __del__ would close it again and fail on the stopped loop (as facility's closer)
        gw.__dict__.pop("_loop_runner", None)


@pytest.mark.slow  # a Gateway cluster (~7 s); the options refused and the unreachable gateway run by default
def test_gateway_cluster_gets_the_named_environment(gateway):
    client, to_close = gateway_cluster(gateway, 2, {"environment": "coffea-2025"}, timeout=60)
    try:
        client.wait_for_workers(2, timeout=60)
        # (a lambda: os.environ.get itself would pickle this process's environment)
        seen = client.run(lambda: os.environ.get("GAMMASTAR_ENV"))
        assert sorted(seen.values()) == ["coffea-2025", "coffea-2025"]  # both workers
    finally:
        for obj in to_close:
            obj.close()
    assert _clusters(gateway) == []  # shut down, not left running


def test_gateway_option_it_does_not_offer(gateway):
    with pytest.raises(ConfigError, match=r"--gateway-option image: .* offers: environment"):
        gateway_cluster(gateway, 1, {"image": "coffeateam/coffea-dask"}, timeout=10)
    assert _clusters(gateway) == []


def test_unreachable_gateway_is_one_line():
    with pytest.raises(InputError, match=r"--gateway http://127.0.0.1:\d+: cannot reach"):
        gateway_cluster(f"http://127.0.0.1:{_free_port()}", 1, {}, timeout=5)


def _cfg(tmp_path, out):
    write_effmap(tmp_path / "eff.root", np.random.default_rng(0).uniform(0.3, 0.9, (20, 10)))
    files = [tmp_path / "a.root", tmp_path / "b.root"]
    if not files[0].exists():
        write_mock(files[0], 30)
        write_mock(files[1], 20, event_offset=10_000)
    return config_from_dict(
        {
            "output": str(tmp_path / out),
            "input": {"files": [str(f) for f in files], "step_size": 60},
            "beam": {"energy": 400.0, "interaction_lengths": 0.01},  # the mock's (no defaults)
            "unfold": {"efficiency_map": str(tmp_path / "eff.root")},
            "background": {"ss_weight": "binwise"},
        },
        source=str(tmp_path / "c.yaml"),
    )


@pytest.mark.slow  # a second Gateway cluster: ~15 s
def test_select_on_a_gateway_cluster(gateway, tmp_path):
    one = select(_cfg(tmp_path, "iterative"))
    ex = Execution("dask", gateway=gateway, workers=2, gateway_options={"environment": "x"})
    res = select(_cfg(tmp_path, "gateway"), execution=ex)
    # the same chunks folded in the same order: integer counts equal, every weighted sum the
    # same float64 operations in the same order (processor docstring), so equal to the bit
    assert res.counts == one.counts
    a = json.loads((tmp_path / "iterative" / "select.json").read_text())
    b = json.loads((tmp_path / "gateway" / "select.json").read_text())
    assert a["counts"] == b["counts"]
    assert a["cutflow"] == b["cutflow"]
    assert _clusters(gateway) == []


JOBQUEUE = """
kind: htcondor
cores: 1
memory: 2GB
disk: 1GB
job_extra_directives: {"+JobFlavour": '"espresso"'}
"""


def test_jobqueue_job_script(tmp_path):
    pytest.importorskip("dask_jobqueue", reason="the 'jobqueue' extra is not installed")
    f = tmp_path / "condor.yaml"
    f.write_text(JOBQUEUE)
    kind, kwargs = read_jobqueue(f)
    assert kind == "htcondor"
    assert kwargs["processes"] == 1
    script = job_script(f)
    # what HTCondor would run: one single-threaded worker, the facility's requests and
    # directives
    assert "--nthreads 1" in script
    assert "distributed.cli.dask_worker" in script
    assert "RequestCpus = MY.DaskWorkerCores" in script
    assert "espresso" in script
    # the command line's dry run prints it (the config argument is not read)
    res = main_in_process("select", str(f), "--jobqueue", str(f), "--dry-run")
    assert res.status == 0, res.stderr
    assert "distributed.cli.dask_worker" in res.stdout
    assert "espresso" in res.stdout


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: pbz\ncores: 1\n", r"kind: 'pbz' is not one of htcondor, slurm"),
        ("- 1\n", r"must be a mapping"),
        ("kind: slurm\ncores: 1\nnot_an_option: 3\n", r"not_an_option: not an option of slurm"),
    ],
)
def test_jobqueue_file_errors(tmp_path, text, message):
    pytest.importorskip("dask_jobqueue", reason="the 'jobqueue' extra is not installed")
    f = tmp_path / "q.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError, match=message):
        job_script(f)


def test_one_cluster_at_a_time():
    with pytest.raises(ConfigError, match=r"--scheduler and --gateway: give one cluster"):
        Execution("dask", scheduler="tcp://x:8786", gateway="http://y")
    with pytest.raises(ConfigError, match=r"--jobqueue needs --executor dask"):
        Execution("futures", jobqueue="q.yaml")


SECTION = """
output: out
input: {files: [a.root]}
beam: {energy: 400.0, interaction_lengths: 0.01}
unfold: {efficiency_map: null}
execution:
  jobqueue:
    kind: htcondor
    cores: 1
    memory: 3GB
    disk: 1GB
    job_extra_directives: {"+JobFlavour": '"microcentury"'}
"""


def test_jobqueue_config_section_and_the_file_that_replaces_it(tmp_path):
    """The config's ``execution.jobqueue`` (the ``--jobqueue`` file's form) gives the job
    script of the dry run; a ``--jobqueue FILE`` replaces it."""
    pytest.importorskip("dask_jobqueue", reason="the 'jobqueue' extra is not installed")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(SECTION)
    res = main_in_process("select", str(cfg), "--dry-run")
    assert res.status == 0, res.stderr
    assert "distributed.cli.dask_worker" in res.stdout
    assert "--nthreads 1" in res.stdout  # processes defaults to cores, as for a file
    assert "microcentury" in res.stdout
    assert "MY.DaskWorkerMemory = 3000000000" in res.stdout  # the section's memory: 3 GB
    f = tmp_path / "condor.yaml"
    f.write_text(JOBQUEUE)
    res = main_in_process("select", str(cfg), "--jobqueue", str(f), "--dry-run")
    assert res.status == 0, res.stderr
    assert "espresso" in res.stdout
    assert "microcentury" not in res.stdout


def test_dry_run_without_a_jobqueue(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(SECTION.split("execution:")[0])
    res = main_in_process("select", str(cfg), "--dry-run")
    assert res.status == 2
    assert "--dry-run needs --jobqueue or execution.jobqueue" in res.stderr


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("kind: pbz\n    cores: 1", r"c\.yaml: execution\.jobqueue\.kind: Input should be 'htcondor'"),
        ("cores: 1", r"c\.yaml: execution\.jobqueue\.kind: Field required"),
    ],
)
def test_jobqueue_section_errors_name_the_key(tmp_path, section, message):
    from gammastar.config import load_config

    cfg = tmp_path / "c.yaml"
    cfg.write_text(SECTION.split("execution:")[0] + f"execution:\n  jobqueue:\n    {section}\n")
    with pytest.raises(ConfigError, match=message):
        load_config(cfg)
    res = main_in_process("select", str(cfg), "--dry-run")
    assert res.status == 2
    assert len(res.stderr.strip().splitlines()) == 1  # one line


def test_jobqueue_section_option_error_names_the_section():
    pytest.importorskip("dask_jobqueue", reason="the 'jobqueue' extra is not installed")
    with pytest.raises(ConfigError, match=r"^execution\.jobqueue: not_an_option: not an option"):
        job_script({"kind": "slurm", "cores": 1, "not_an_option": 3})


def test_the_section_is_the_cluster_of_a_dask_run_that_names_none(tmp_path, monkeypatch):
    """``execution.jobqueue`` is the cluster of a Dask selection without ``--scheduler``,
    ``--gateway`` or ``--jobqueue`` (and the command's default executor then); a file, another
    cluster or another executor given wins."""
    from gammastar.config import load_config
    from gammastar.selection import stage
    from gammastar.selection.executors import with_config

    cfg = tmp_path / "c.yaml"
    cfg.write_text(SECTION)
    section = load_config(cfg).execution
    want = {"kind": "htcondor", "cores": 1, "memory": "3GB", "disk": "1GB",
            "job_extra_directives": {"+JobFlavour": '"microcentury"'}}  # fmt: skip
    assert with_config(Execution("dask"), section).jobqueue == want
    for ex in (Execution("dask", jobqueue="q.yaml"), Execution("dask", scheduler="tcp://x:1"),
               Execution("dask", gateway="http://g"), Execution("futures"), Execution()):  # fmt: skip
        assert with_config(ex, section) == ex
    assert with_config(Execution("dask"), None) == Execution("dask")

    seen = []

    def fake_select(config, inputs, *, execution, **kwargs):
        seen.append(execution)
        raise ConfigError("stop here")

    monkeypatch.setattr(stage, "select", fake_select)
    main_in_process("select", str(cfg), "--output", str(tmp_path / "o1"))
    main_in_process("select", str(cfg), "--output", str(tmp_path / "o2"), "--executor", "futures")
    assert [e.executor for e in seen] == ["dask", "futures"]
