"""Runs a team can trust: signals, one writer per run directory, umask modes,
one-line environment failures, corrupted input never silent (docs/howto/runs-and-failures.md).

Most tests start real ``gammastar`` processes (``python -m gammastar``), each bounded in time.
"""

from __future__ import annotations

import contextlib
import errno
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot
from _cli import main_in_process
from _experiment import stated_config, stated_yaml
from _sel_nospace import KINDS, assert_refused, big_array, patch_full_disk, write_big
from _select_data import write_mock
from _two_writers import writer

import gammastar
from gammastar.core import runlock
from gammastar.core.artifacts import atomic_path, write_json
from gammastar.errors import EnvironmentFailure, InputError
from gammastar.selection.plausibility import Plausibility, max_lepton_energy

REPO = Path(__file__).resolve().parents[1]
EFF_MAP = REPO / "data" / "efficiency_na60_like.root"
SRC = str(Path(gammastar.__file__).resolve().parents[1])
ENV = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
ENV.pop("GAMMASTAR_DEBUG", None)
LIMIT = 120  # seconds: bound of every child process


def gammastar_cmd(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "gammastar", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=kw.pop("env", ENV),
        **kw,
    )


def run_cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gammastar", *args],
        capture_output=True,
        check=False,
        text=True,
        env=kw.pop("env", ENV),
        timeout=LIMIT,
        **kw,
    )


def gs_lines(stderr: str) -> list[str]:
    """The lines gammastar itself printed on standard error."""
    return [ln for ln in stderr.splitlines() if ln.startswith("gammastar:")]


def temporaries(run: Path) -> list[str]:
    """Every file or directory of this package's temporary-name patterns under ``run``."""
    return sorted(str(p) for p in run.rglob("*") if runlock.is_temporary(p.name))


def wait_for(predicate, timeout: float = 60.0, what: str = "") -> None:
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def write_config(path: Path, run: Path, events: int = 60000) -> Path:
    path.write_text(
        "name: reliability\nseed: 7\n"
        f"output: {run}\n"
        f"mock:\n  events: {events}\n  efficiency_map: {EFF_MAP}\n"
        "  combinatorial: {pilot_events: 20000}\n"
        f"unfold: {{efficiency_map: {EFF_MAP}, outside_map: nearest}}\n"
    )
    return path


def mock_events(path: Path) -> dict[str, np.ndarray]:
    with uproot.open(path) as f:
        a = f["events"].arrays(["event", "muon_px", "muon_pz", "muon_E", "muon_charge"])
    return {k: ak.to_numpy(ak.flatten(a[k], axis=None)) for k in a.fields}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted generate + select (the numbers every rerun must reproduce), in this
    process: the signalled commands compared with it are real processes."""
    d = tmp_path_factory.mktemp("reference")
    cfg = write_config(d / "c.yaml", d / "run")
    for cmd in ("generate", "select"):
        status, _, err = main_in_process(cmd, str(cfg))
        assert status == 0, err
    return d / "run"


def assert_same_mock(a: Path, b: Path) -> None:
    ea, eb = mock_events(a), mock_events(b)
    for k in ea:
        # same seed and code: equal up to float rounding (no batch-shape dependence here)
        np.testing.assert_allclose(ea[k], eb[k], rtol=1e-6, atol=0, err_msg=k)


# --------------------------------------------------------------------------- 1. signals
@pytest.mark.parametrize(
    ("sig", "status", "command"),
    [
        # the default suite: SIGTERM during select (below), the same handling and cleanup
        pytest.param(signal.SIGTERM, 143, "generate", marks=pytest.mark.slow),
        pytest.param(signal.SIGINT, 130, "run", marks=pytest.mark.slow),
    ],
)
def test_signal_during_generate(tmp_path, reference, sig, status, command):
    """SIGTERM (batch systems) / SIGINT (Ctrl-C) while the mock file is being written:
    128 + signal, one line naming the stage and saying a rerun redoes it, no temporary file
    left, no output; the rerun equals the uninterrupted run (same seed)."""
    run = tmp_path / "run"
    cfg = write_config(tmp_path / "c.yaml", run, events=400000)  # long enough to hit
    proc = gammastar_cmd(command, str(cfg))
    try:
        wait_for(lambda: run.is_dir() and temporaries(run), what="the mock's temporary file")
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=LIMIT)
    finally:
        proc.kill()
    assert proc.returncode == status, err
    lines = gs_lines(err)
    assert len(lines) == 1, err
    assert f"interrupted by {signal.Signals(sig).name} during stage 'generate'" in lines[0]
    assert "a rerun redoes it" in lines[0]
    assert temporaries(run) == []
    assert not (run / "mock.root").exists()
    # the rerun (the reference's size) equals the uninterrupted run
    write_config(tmp_path / "c.yaml", run)
    out = run_cli("generate", str(cfg))
    assert out.returncode == 0, out.stderr
    assert_same_mock(run / "mock.root", reference / "mock.root")


@pytest.mark.parametrize(
    ("sig", "status"),
    [
        (signal.SIGTERM, 143),
        pytest.param(signal.SIGINT, 130, marks=pytest.mark.slow),
    ],
)
def test_signal_during_select(tmp_path, reference, sig, status):
    """The same during `gammastar select` (signalled once it holds the run directory):
    no select.json, no temporary file or staging directory; the rerun's counts and pairs
    equal the uninterrupted selection's."""
    run = tmp_path / "run"
    run.mkdir()
    os.link(reference / "mock.root", run / "mock.root")
    cfg = write_config(tmp_path / "c.yaml", run)
    lock = run / runlock.LOCK_NAME
    proc = gammastar_cmd("select", str(cfg))
    try:
        # at once: the selection of this small file takes about a second once it holds the
        # lock, and a signal after the command has returned meets the interpreter's exit
        wait_for(lambda: lock.exists() and lock.stat().st_size > 0, what="the lock")
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=LIMIT)
    finally:
        proc.kill()
    assert proc.returncode == status, err
    lines = gs_lines(err)
    assert len(lines) == 1, err
    assert "during stage 'select'" in lines[0], lines
    assert "a rerun redoes it" in lines[0], lines
    assert temporaries(run) == []
    assert not (run / "select.json").exists()
    assert lock.stat().st_size == 0  # released cleanly
    status, _, err = main_in_process("select", str(cfg))  # the rerun: no signal, in this process
    assert status == 0, err
    got = json.loads((run / "select.json").read_text())["counts"]
    want = json.loads((reference / "select.json").read_text())["counts"]
    assert {k: got[k] for k in ("events", "os", "pp", "mm")} == {
        k: want[k] for k in ("events", "os", "pp", "mm")
    }
    # float sums: same inputs, same chunking; tolerance of float64 summation order
    assert got["unfolded"] == pytest.approx(want["unfolded"], rel=1e-12)
    import pandas as pd

    a = pd.read_parquet(run / "pairs.parquet")
    b = pd.read_parquet(reference / "pairs.parquet")
    np.testing.assert_allclose(a[["m", "weight"]].to_numpy(), b[["m", "weight"]].to_numpy())


@pytest.mark.slow  # the sweep itself: test_sweep_only_dead_writers_under_the_lock
def test_sigkill_leftovers_swept_by_next_run(tmp_path):
    """A writer killed with SIGKILL leaves its temporary file; the next writer of the
    directory (holding the lock) removes it, and nothing that is not ours."""
    run = tmp_path / "run"
    cfg = write_config(tmp_path / "c.yaml", run, events=400000)
    proc = gammastar_cmd("generate", str(cfg))
    try:
        wait_for(lambda: run.is_dir() and temporaries(run), what="the temporary file")
        proc.kill()
        proc.communicate(timeout=LIMIT)
    finally:
        proc.kill()
    left = temporaries(run)
    assert left, "SIGKILL cannot clean up"
    (run / "notes.part").write_text("a user's file")  # not our pattern: kept
    write_config(tmp_path / "c.yaml", run, events=5000)
    out = run_cli("generate", str(cfg))
    assert out.returncode == 0, out.stderr
    assert temporaries(run) == []
    assert (run / "notes.part").read_text() == "a user's file"


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait(timeout=LIMIT)
    return p.pid


def test_sweep_only_dead_writers_under_the_lock(tmp_path):
    """sweep(): only our temporary names, only those whose writer PID is not running, only
    while holding the directory's lock."""
    dead = dead_pid()
    (tmp_path / "figures").mkdir()
    stale = [
        tmp_path / f".mock.root.{dead}.abcd_123.part",
        tmp_path / "figures" / f".mock_mass.png.{dead}.zz9y8x7w.part",
        tmp_path / f".pairs.parquet.{dead}.q1w2e3r4.old",
        tmp_path / ".select.json.k3j_x9a2.part",  # an older gammastar's name (no PID)
    ]
    staging = tmp_path / ".gammastar-parts-ab12cd34"
    keep = [
        tmp_path / f".yields.json.{os.getpid()}.abcdefgh.part",  # a live writer's
        tmp_path / "run.part",
        tmp_path / ".hidden",
        tmp_path / "mock.root",
    ]
    for p in stale + keep:
        p.write_text("x")
    staging.mkdir()
    (staging / "part-1.parquet").write_text("x")
    assert runlock.sweep(tmp_path) == []  # not holding the lock: nothing touched
    assert all(p.exists() for p in stale)
    with runlock.locked(tmp_path, echo=lambda s: None):
        pass  # acquiring sweeps
    assert not any(p.exists() for p in stale)
    assert not staging.exists()
    assert all(p.exists() for p in keep)


# --------------------------------------------------------------------------- 2. one writer
def _two_writers(tmp_path, rounds: int, wait: bool) -> dict[int, list]:
    ctx = multiprocessing.get_context("spawn")
    barrier, done, queue = ctx.Barrier(2), ctx.Barrier(2), ctx.Queue()
    cfg = write_config(tmp_path / "c.yaml", tmp_path / "run")
    procs = [
        ctx.Process(
            target=writer, args=(barrier, done, str(cfg), str(tmp_path), rounds, queue, wait)
        )
        for _ in range(2)
    ]
    for p in procs:
        p.start()
    results: dict[int, list] = {}
    try:
        for _ in range(2 * rounds):
            i, pid, rc, err = queue.get(timeout=LIMIT)
            results.setdefault(i, []).append((pid, rc, err))
    finally:
        for p in procs:
            p.join(timeout=LIMIT)
            p.kill()
    return results


@pytest.mark.slow  # one writer per directory: test_second_writer_waits_then_refuses_to_overwrite
def test_two_writers_started_together(tmp_path):
    """20 rounds of two `gammastar select` on one run directory at once: exactly one
    succeeds (and the directory holds its result), the other is refused with one line
    naming the holder's PID, exit 1."""
    results = _two_writers(tmp_path, rounds=20, wait=False)
    assert len(results) == 20
    for i, pair in results.items():
        ok = [r for r in pair if r[1] == 0]
        refused = [r for r in pair if r[1] != 0]
        assert len(ok) == 1, pair
        assert len(refused) == 1, pair
        winner, (_, rc, err) = ok[0][0], refused[0]
        assert rc == 1, err
        assert len(err.strip().splitlines()) == 1, err
        assert f"in use by PID {winner} " in err, err
        assert "--wait" in err, err
        assert json.loads((tmp_path / f"r{i}" / "select.json").read_text())["pid"] == winner


def test_second_writer_waits_then_refuses_to_overwrite(tmp_path):
    """With --wait the second writer waits for the first (and says so); the refusal to
    overwrite is decided under the lock: it then finds the first one's output (exit 2). One
    round (the rounds repeat it on fresh directories: test_two_writers_started_together, slow,
    runs 20 without --wait)."""
    results = _two_writers(tmp_path, rounds=1, wait=True)
    assert len(results) == 1
    for pair in results.values():
        assert sorted(rc for _, rc, _ in pair) == [0, 2], pair
        winner = next(pid for pid, rc, _ in pair if rc == 0)
        err = next(err for _, rc, err in pair if rc == 2)
        lines = err.strip().splitlines()
        assert len(lines) == 2, err
        assert f"waiting for PID {winner} " in lines[0], err
        assert "output exists already" in lines[1], err


@pytest.mark.slow
def test_two_real_selects_started_together(tmp_path, reference):
    """The real command twice at once without --force: one writes, the other is refused
    naming it (not both printing `wrote …`)."""
    run = tmp_path / "run"
    run.mkdir()
    os.link(reference / "mock.root", run / "mock.root")
    cfg = write_config(tmp_path / "c.yaml", run)
    procs = [gammastar_cmd("select", str(cfg)) for _ in range(2)]
    outs = [p.communicate(timeout=LIMIT) for p in procs]
    rcs = sorted(p.returncode for p in procs)
    assert rcs in ([0, 1], [0, 2]), outs
    loser = outs[[p.returncode for p in procs].index(rcs[1])][1]
    winner = procs[[p.returncode for p in procs].index(0)].pid
    if rcs[1] == 1:
        assert f"in use by PID {winner} " in loser
    else:  # it started after the winner had finished: the output exists
        assert "output exists already" in loser


def test_stale_lock_taken_over(tmp_path):
    """A holder killed with SIGKILL leaves its record; the next writer takes the lock over
    and says whose it was."""
    code = (
        "import sys, time; from gammastar.core import runlock; "
        "runlock.acquire(sys.argv[1], command='gammastar select x.yaml'); "
        "print('held', flush=True); time.sleep(60)"
    )
    p = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=ENV
    )
    with p:
        assert p.stdout.readline().strip() == "held"
        with pytest.raises(EnvironmentFailure, match=rf"in use by PID {p.pid} .*select x\.yaml"):
            runlock.acquire(tmp_path)
        p.kill()
        p.wait(timeout=LIMIT)
    said: list[str] = []
    with runlock.locked(tmp_path, echo=said.append):
        assert runlock.holds(tmp_path)
    assert len(said) == 1, said
    assert f"stale lock of PID {p.pid} " in said[0], said
    assert not runlock.holds(tmp_path)


# --------------------------------------------------------------------------- 3. modes
@pytest.mark.parametrize(
    ("umask", "file_mode", "dir_mode"),
    [
        pytest.param(0o022, 0o644, 0o755, marks=pytest.mark.slow),
        (0o002, 0o664, 0o775),  # a shared group area
        pytest.param(0o077, 0o600, 0o700, marks=pytest.mark.slow),
    ],
)
def test_modes_follow_the_umask(tmp_path, umask, file_mode, dir_mode):
    """Files 0666 & ~umask, directories 0777 & ~umask (not 0600 whatever the umask). The
    command runs in this process under the umask (the mode is the process's umask at each
    write, whichever process that is)."""
    run = tmp_path / "run"
    cfg = write_config(tmp_path / "c.yaml", run, events=5000)
    old = os.umask(umask)
    try:
        status, _, err = main_in_process("generate", str(cfg), "--plots", str(run / "figures"))
    finally:
        os.umask(old)
    assert status == 0, err
    files = [run / "mock.root", run / runlock.LOCK_NAME, *(run / "figures").glob("*.png")]
    assert len(files) >= 4
    for f in files:
        assert f.stat().st_mode & 0o777 == file_mode, f
    for d in (run, run / "figures", run / ".gammastar"):
        assert d.stat().st_mode & 0o777 == dir_mode, d
    # JSON and parquet through the same writer, in this process
    old = os.umask(umask)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
        with atomic_path(tmp_path / "b.parquet") as tmp:
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.table({"x": [1]}), tmp)
    finally:
        os.umask(old)
    for f in (tmp_path / "a.json", tmp_path / "b.parquet"):
        assert f.stat().st_mode & 0o777 == file_mode, f


def _nobody_can_run_python() -> bool:
    def drop() -> None:
        os.setgid(65534)
        os.setuid(65534)

    try:
        r = subprocess.run(
            [sys.executable, "-c", "pass"], preexec_fn=drop, check=False, timeout=LIMIT
        )
    except OSError:
        return False
    return r.returncode == 0


@contextlib.contextmanager
def not_ours(run: Path):
    """``run`` as another user's run directory: the subprocess keywords to reach it with.

    Not root: the directory made read-only to us (EACCES). Root: a child that is the user
    nobody where it can run this Python, else the directory bind-mounted read-only (EROFS,
    root is not stopped by modes), else skipped.
    """
    if os.geteuid() != 0:
        run.chmod(0o555)
        try:
            yield {}
        finally:
            run.chmod(0o755)
        return
    if _nobody_can_run_python():

        def drop() -> None:
            os.setgid(65534)
            os.setuid(65534)

        yield {"preexec_fn": drop}
        return
    ok = subprocess.run(["mount", "--bind", str(run), str(run)], check=False).returncode == 0
    if not ok:
        pytest.skip("cannot act as another user here (root, no bind mount)")
    try:
        r = subprocess.run(["mount", "-o", "remount,ro,bind", str(run)], check=False).returncode
        if r != 0:
            pytest.skip("cannot remount read-only here")
        yield {}
    finally:
        subprocess.run(["umount", str(run)], check=False)


READ = (
    "import sys; from gammastar.core.artifacts import read_json; import pandas as pd; "
    "print(read_json(sys.argv[1] + '/select.json')['counts']['os'], "
    "len(pd.read_parquet(sys.argv[1] + '/pairs.parquet')))"
)


def test_other_users_run_directory(tmp_path_factory, reference):
    """Another user's run directory (0755/0644 under umask 022): reading works, writing is
    one line naming it, exit 1."""
    import shutil
    import tempfile

    base = Path(tempfile.mkdtemp(dir="/tmp", prefix="gs-other-"))
    try:
        base.chmod(0o755)
        run = base / "run"
        shutil.copytree(reference, run, ignore=shutil.ignore_patterns(".gammastar"))
        for p in [run, *run.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        cfg = write_config(base / "c.yaml", run)
        cfg.chmod(0o644)
        with not_ours(run) as kw:
            kw = {**kw, "env": {**ENV, "HOME": str(base)}}
            read = subprocess.run(
                [sys.executable, "-c", READ, str(run)],
                capture_output=True,
                check=False,
                text=True,
                timeout=LIMIT,
                **kw,
            )
            assert read.returncode == 0, read.stderr
            want = json.loads((reference / "select.json").read_text())["counts"]["os"]
            assert int(read.stdout.split()[0]) == want
            write = run_cli("select", str(cfg), "--force", **kw)
            assert write.returncode == 1, write.stderr
            lines = write.stderr.strip().splitlines()
            assert len(lines) == 1, write.stderr
            assert str(run) in lines[0], lines
            assert "cannot write into this run directory" in lines[0], lines
    finally:
        shutil.rmtree(base, ignore_errors=True)


# --------------------------------------------------------------------------- 4. no space
PROBE = r"""
import contextlib, io, json, sys
from pathlib import Path
from _two_writers import writer
from _sel_nospace import big_array, patch_full_disk, write_big
from gammastar.cli import app, main

mode, targets = sys.argv[1], json.loads(sys.argv[2])  # kind -> output file
big = big_array()
if mode == "patch":
    patch_full_disk(setattr, targets)
kind = None

@app.command("probe")
def probe() -> None:
    write_big(kind, Path(targets[kind]), big)

out = {}
for kind in targets:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(["probe"])
    out[kind] = [rc, err.getvalue()]
print(json.dumps(out))
"""
PROBE_ENV = {**ENV, "PYTHONPATH": str(Path(__file__).parent) + os.pathsep + ENV["PYTHONPATH"]}
"""The child's environment: PROBE imports the helper beside this file."""


def _no_space(directory: Path, mode: str) -> None:
    """Every kind of artifact written into ``directory`` by the package's atomic writers
    (the real library calls) in one child; each must fail with one line naming the file and
    the cause, exit 1, nothing left behind."""
    targets = {k: str(directory / f"{k}-dir" / name) for k, name in KINDS.items()}
    for t in targets.values():
        Path(t).parent.mkdir()
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode, json.dumps(targets)],
        capture_output=True,
        check=False,
        text=True,
        env=PROBE_ENV,
        timeout=LIMIT,
    )
    assert out.returncode == 0, out.stderr
    assert_refused(targets, json.loads(out.stdout.strip().splitlines()[-1]))


def test_no_space_patched_writers(tmp_path, monkeypatch):
    """JSON, ROOT, parquet, torch and PNG outputs whose writer fails as on a full disk
    (OSError ENOSPC; torch's RuntimeError and PIL's AttributeError without an errno): each a
    command run by the CLI's entry point in this process (the same in a child process on a
    real full tmpfs: test_no_space_real_tmpfs, slow), one line naming the file and the cause,
    exit 1, nothing left behind."""
    from gammastar import cli

    big = big_array()
    targets = {k: tmp_path / f"{k}-dir" / name for k, name in KINDS.items()}
    for t in targets.values():
        t.parent.mkdir()
    kind = ""
    cli._register()

    @cli.app.command("probe")
    def _probe() -> None:
        write_big(kind, targets[kind], big)

    try:
        patch_full_disk(monkeypatch.setattr, KINDS)
        results = {}
        for kind in targets:
            run = main_in_process("probe")
            results[kind] = (run.status, run.stderr)
    finally:
        monkeypatch.undo()
        cli.app.registered_commands.pop()
    assert_refused(targets, results)


@pytest.fixture
def small_tmpfs(tmp_path):
    d = tmp_path / "tmpfs"
    d.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(d)], check=False)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield d
    finally:
        subprocess.run(["umount", str(d)], check=False)


@pytest.mark.slow
def test_no_space_real_tmpfs(small_tmpfs):
    """The same on a real 200 kB tmpfs (where mounting is allowed)."""
    _no_space(small_tmpfs, "real")


def test_debug_shows_the_traceback(tmp_path, monkeypatch):
    """``GAMMASTAR_DEBUG=1``: the command's error leaves the entry point as itself instead of
    its one line (the interpreter then prints its traceback and exits 1): the JSON writer of
    test_no_space_patched_writers on a full disk, in this process."""
    from gammastar import cli

    target = tmp_path / "json-dir" / KINDS["json"]
    target.parent.mkdir()
    big = big_array()
    cli._register()

    @cli.app.command("probe")
    def _probe() -> None:
        write_big("json", target, big)

    monkeypatch.setenv("GAMMASTAR_DEBUG", "1")
    try:
        patch_full_disk(monkeypatch.setattr, ["json"])
        with pytest.raises(EnvironmentFailure, match=r"a\.json"):
            main_in_process("probe")
    finally:
        monkeypatch.undo()
        cli.app.registered_commands.pop()


# --------------------------------------------------------------------------- 5. plausibility
def _basketed(path: Path, compression, baskets: int = 6, repeat: int = 10) -> None:
    """A mock-schema file of ``baskets`` baskets per branch (the middle ones can be damaged
    while the first and last entries stay readable)."""
    with uproot.recreate(path, compression=compression) as f:
        for k in range(baskets):
            tmp = path.with_suffix(f".p{k}")
            write_mock(tmp, repeat, event_offset=100 * k, with_truth=False)
            with uproot.open(tmp) as g:
                d = g["events"].arrays(
                    [
                        "event",
                        *(f"muon_{c}" for c in ("px", "py", "pz", "E", "charge")),
                        "truth_channel",
                    ]
                )
            tmp.unlink()
            cols = {
                "event": d["event"],
                "muon": ak.zip({c: d[f"muon_{c}"] for c in ("px", "py", "pz", "E", "charge")}),
                "truth_channel": d["truth_channel"],
            }
            if k == 0:
                f.mktree("events", {c: v.type for c, v in cols.items()})
            f["events"].extend(cols)


def _flip(path: Path, branch: str, n: int = 16, frac: float = 0.5) -> None:
    """Invert ``n`` bytes in the middle basket's payload of ``branch``."""
    with uproot.open(path) as f:
        br = f["events"][branch]
        i = br.num_baskets // 2
        key = br.basket_key(i)
        seek, nbytes = int(br.member("fBasketSeek")[i]), int(br.member("fBasketBytes")[i])
        compressed = key.fObjlen != nbytes - key.fKeylen
    start = seek + key.fKeylen + (9 if compressed else 0)  # past the compression header
    pos = start + int((seek + nbytes - start - n) * frac)
    data = bytearray(path.read_bytes())
    for j in range(pos, pos + n):
        data[j] ^= 0xFF
    path.write_bytes(bytes(data))


# write_mock(good, 5) without η→μμ removal, per repeat of tests/_select_data.pattern():
# 4 OS (A; B's ρ-like pair and its extra muon with the −; E), 1 ++ (B), 1 −− (C)
GOOD_COUNTS = (20, 5, 5)


def _sel_cfg(tmp_path: Path, files: list[Path]):
    return stated_config(
        {
            "output": str(tmp_path / "r"),
            "input": {"files": [str(f) for f in files], "step_size": 70},
            "unfold": {"efficiency_map": None},
            "background": {"remove_eta_mumu": "none"},
        },
        source=str(tmp_path / "c.yaml"),
    )


# Damage that the checks must catch (docs/howto/runs-and-failures.md lists the measured cases, including
# the one kind that stays plausible: a large momentum component made small).
DAMAGED = [
    # the charge check on a ZSTD basket: the same check as ("none", "muon_charge"), the same
    # codec as ("zstd", "muon_px")
    pytest.param("zstd", "muon_charge", marks=pytest.mark.slow),
    ("zstd", "muon_px"),
    ("none", "muon_charge"),
    # the same uncompressed path as ("none", "muon_charge"); the energy checks themselves:
    # test_implausible_values_name_branch_and_entry
    pytest.param("none", "muon_E", marks=pytest.mark.slow),
    # with a checksum (ROOT's usual ZLIB, and LZ4): the basket does not decompress; the
    # error names the branch and the damaged basket's entries (_basketed: 6 baskets of 70)
    ("zlib", "muon_px"),
    # the same failure path and message as ("zlib", "muon_px") (plausibility.read_failure)
    pytest.param("lz4", "muon_pz", marks=pytest.mark.slow),
]
CODECS = {"zstd": uproot.ZSTD(5), "none": None, "zlib": uproot.ZLIB(1), "lz4": uproot.LZ4(1)}


@pytest.mark.parametrize(("compression", "branch"), DAMAGED)
def test_corrupted_basket_is_a_bad_file(tmp_path, compression, branch):
    """16 inverted bytes in a basket: an InputError naming the file (and for a checksummed
    codec the branch and the middle basket's entries, 210-280); with skip_bad_files exactly
    the good file's counts and the damaged file listed in select.json with the same words."""
    from gammastar.selection.stage import select

    good, bad = tmp_path / "good.root", tmp_path / "bad.root"
    write_mock(good, 5)
    _basketed(bad, CODECS[compression])
    _flip(bad, branch)
    cfg = _sel_cfg(tmp_path, [good, bad])
    why = r"bad\.root: failed while reading"
    if compression in ("zlib", "lz4"):
        why += rf": unreadable {compression.upper()} basket in branch '{branch}', entries 210-280"
    with pytest.raises(InputError, match=why) as err:
        select(cfg)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "r" / "select.json").exists()
    res = select(cfg, skip_bad_files=True)
    alone = select(_sel_cfg(tmp_path / "alone", [good]))
    assert {k: res.counts[k] for k in ("os", "pp", "mm")} == {
        k: alone.counts[k] for k in ("os", "pp", "mm")
    }
    assert res.cutflow == alone.cutflow
    info = json.loads((tmp_path / "r" / "select.json").read_text())
    assert list(info["bad_files"]) == [str(bad)]
    assert str(err.value).endswith(info["bad_files"][str(bad)])  # the same report


@pytest.mark.slow  # the reader's error: test_corrupted_basket_is_a_bad_file; make validate
def test_corrupted_zstd_on_the_command_line(tmp_path):
    """`gammastar select` on a damaged ZSTD file: one line naming it, exit 2; with
    --skip-bad-files exit 0, the file reported and the good file's counts."""
    good, bad = tmp_path / "good.root", tmp_path / "bad.root"
    write_mock(good, 5)
    _basketed(bad, uproot.ZSTD(5))
    _flip(bad, "muon_charge")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        stated_yaml(
            f"output: {tmp_path / 'r'}\ninput: {{files: [{good}, {bad}], step_size: 70}}\n"
            "unfold: {efficiency_map: null}\nbackground: {remove_eta_mumu: none}\n"
        )
    )
    out = run_cli("select", str(cfg))
    assert out.returncode == 2, out.stderr
    lines = gs_lines(out.stderr)
    assert len(lines) == 1, out.stderr
    assert str(bad) in lines[0], out.stderr
    out = run_cli("select", str(cfg), "--skip-bad-files")
    assert out.returncode == 0, out.stderr
    assert f"skipped bad file {bad}" in out.stderr
    counts = json.loads((tmp_path / "r" / "select.json").read_text())["counts"]
    assert (counts["os"], counts["pp"], counts["mm"]) == GOOD_COUNTS


def test_inconsistent_multiplicities_are_a_bad_file(tmp_path):
    """Per-lepton branches of one event with different lengths (what a damaged charge basket
    decodes to; unchecked they end in `ValueError: cannot broadcast nested list`) name the file,
    branches and entries; skipped with skip_bad_files."""
    from gammastar.selection.stage import select

    good, bad = tmp_path / "good.root", tmp_path / "bad.root"
    write_mock(good, 5)
    px = ak.values_astype(ak.Array([[10.0, -10.0], [5.0, 1.0]]), np.float32)
    cols = {
        "muon_px": px,
        "muon_py": ak.zeros_like(px),
        "muon_pz": ak.zeros_like(px) + 20,
        "muon_E": ak.zeros_like(px) + 30,
        "muon_charge": ak.values_astype(ak.Array([[1, -1], [1]]), np.int32),
    }
    with uproot.recreate(bad) as f:
        f.mktree("events", {k: v.type for k, v in cols.items()})
        f["events"].extend(cols)
    cfg = _sel_cfg(tmp_path, [good, bad])
    with pytest.raises(InputError, match=r"muon_px' and 'muon_charge' disagree .* entry 1"):
        select(cfg)
    res = select(cfg, skip_bad_files=True)
    assert (res.counts["os"], res.counts["pp"], res.counts["mm"]) == GOOD_COUNTS


# unit checks of the plausibility rules
BOUND = max_lepton_energy(400.0)


def _check(cols, layout="jagged_cartesian", nonfinite="cut"):
    p = Plausibility(BOUND, nonfinite)
    p.check(cols, layout, {k: f"br_{k}" for k in cols}, ("f.root", 100, 102))


def _muons(**over):
    cols = {
        "px": [[1.0, -1.0], [0.5]],
        "py": [[0.0, 0.0], [0.5]],
        "pz": [[20.0, 30.0], [50.0]],
        "charge": [[1, -1], [1]],
    }
    cols["E"] = [
        [float(np.sqrt(x * x + y * y + z * z + 0.0112)) for x, y, z in zip(*t, strict=True)]
        for t in zip(cols["px"], cols["py"], cols["pz"], strict=True)
    ]
    return {k: ak.Array(v) for k, v in (cols | over).items()}


def test_bound_from_beam_energy():
    # energy conservation: E_lab ≤ E_beam + m_p; factor 2 for mis-measurement
    assert max_lepton_energy(400.0) == pytest.approx(2 * (400.0 + 0.93827208816))
    assert max_lepton_energy(6500.0) > 13000.0


@pytest.mark.parametrize(
    ("over", "match"),
    [
        ({"pz": ak.Array([[20.0, 6e37], [50.0]])}, r"br_pz', entries 100-102: \|p\| = 6e\+37"),
        ({"E": ak.Array([[20.1, 2000.0], [50.1]])}, r"br_E'.*E = 2e\+03 GeV above"),
        ({"E": ak.Array([[20.1, 30.1], [-1.0]])}, r"br_E'.*below \|p\|.*at entry 101"),
        ({"charge": ak.Array([[1, -1], [2]])}, r"br_charge'.*charge 2 \(not ±1\) at entry 101"),
        ({"charge": ak.Array([[1, 0], [1]])}, r"charge 0 \(not ±1\) at entry 100"),
        ({"charge": ak.Array([[1], [1]])}, r"'br_px' and 'br_charge' disagree.*entry 100"),
    ],
)
def test_implausible_values_name_branch_and_entry(over, match):
    with pytest.raises(InputError, match=match):
        _check(_muons(**over))


def test_physical_muons_pass_at_float32_precision():
    """Muons up to the bound stored as float32 (E − |p| ≈ m²/2p is below float32 rounding
    above ~100 GeV) pass: the E ≥ |p| tolerance is 16 float32 epsilons."""
    rng = np.random.default_rng(3)
    n = 200_000
    p = rng.uniform(1.0, 0.99 * BOUND, n)
    cost, phi = rng.uniform(-1, 1, n), rng.uniform(-np.pi, np.pi, n)
    sint = np.sqrt(1 - cost**2)
    comp = [p * sint * np.cos(phi), p * sint * np.sin(phi), p * cost]
    e = np.hypot(p, 0.1056583755)
    counts = np.full(n // 2, 2)
    cols = {
        k: ak.unflatten(v.astype(np.float32), counts)
        for k, v in zip(("px", "py", "pz", "E"), (*comp, e), strict=True)
    }
    cols["charge"] = ak.unflatten(np.where(rng.random(n) < 0.5, 1, -1).astype(np.int32), counts)
    _check(cols)


def test_nonfinite_cut_or_bad_file():
    """NaN momenta: the selection's cut by default (counted), a bad file with
    input.nonfinite: bad_file."""
    cols = _muons(px=ak.Array([[np.nan, -1.0], [0.5]]))
    _check(cols)  # cut: no error here
    with pytest.raises(InputError, match=r"br_px'.*non-finite value nan at entry 100"):
        _check(cols, nonfinite="bad_file")


def test_ptetaphi_and_flat_pairs():
    ok = {
        "pt": ak.Array([[10.0, 5.0]]),
        "eta": ak.Array([[1.0, -1.0]]),
        "phi": ak.Array([[0.1, -3.0]]),
        "charge": ak.Array([[1, -1]]),
    }
    _check(ok, layout="jagged_ptetaphi")
    with pytest.raises(InputError, match=r"br_phi'.*\|phi\| > π"):
        _check(ok | {"phi": ak.Array([[0.1, 7.0]])}, layout="jagged_ptetaphi")
    with pytest.raises(InputError, match=r"br_pt'.*\|p\| above"):
        _check(ok | {"eta": ak.Array([[1.0, 8.0]])}, layout="jagged_ptetaphi")
    flat = {
        "E1": np.array([20.1]),
        "px1": np.array([0.0]),
        "py1": np.array([0.0]),
        "pz1": np.array([20.0]),
        "Q1": np.array([1]),
        "E2": np.array([10.1]),
        "px2": np.array([0.0]),
        "py2": np.array([0.0]),
        "pz2": np.array([10.0]),
        "Q2": np.array([-1]),
    }
    _check(flat, layout="flat_pairs")
    with pytest.raises(InputError, match=r"br_Q2'.*charge 3"):
        _check(flat | {"Q2": np.array([3])}, layout="flat_pairs")


# --------------------------------------------------------------------------- exit status
def test_usage_and_exit_status(tmp_path):
    """The status typer returns is the process's exit status (not discarded)."""
    out = run_cli("select", str(tmp_path / "missing.yaml"))
    assert out.returncode == 2
    assert len(gs_lines(out.stderr)) == 1
    out = run_cli("no-such-command")
    assert out.returncode == 2


def test_environment_errno_in_main(tmp_path, capsys, monkeypatch):
    """An OSError of the environment anywhere in a command: one line, exit 1."""
    from gammastar import cli

    cli._register()

    @cli.app.command("raise-erofs")
    def _raise() -> None:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(tmp_path / "x"))

    try:
        assert cli.main(["raise-erofs"]) == 1
    finally:
        cli.app.registered_commands.pop()
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"gammastar: error: {tmp_path / 'x'}: read-only filesystem (EROFS)"]


def test_filesystem_without_flock(tmp_path, monkeypatch):
    """A filesystem without flock (some NFS/Lustre mounts): one notice, the command goes
    on unguarded, and nothing is swept (no lock held)."""
    import fcntl

    def no_flock(fd, op):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", no_flock)
    dead = dead_pid()
    leftover = tmp_path / f".a.json.{dead}.abcdefgh.part"
    leftover.write_text("x")
    said: list[str] = []
    with runlock.locked(tmp_path, echo=said.append):
        assert not runlock.holds(tmp_path)
        with runlock.locked(tmp_path, echo=said.append):  # nested: no second notice
            pass
    assert len(said) == 1, said
    assert "cannot lock the run directory" in said[0], said
    assert leftover.exists()


def _on_shell(n: int, mass: float, seed: int = 4) -> dict[str, ak.Array]:
    rng = np.random.default_rng(seed)
    p = rng.uniform(3.0, 300.0, n)
    cost, phi = rng.uniform(0.9, 1.0, n), rng.uniform(-np.pi, np.pi, n)
    sint = np.sqrt(1 - cost**2)
    comp = [p * sint * np.cos(phi), p * sint * np.sin(phi), p * cost]
    counts = np.full(n // 2, 2)
    cols = {
        k: ak.unflatten(v.astype(np.float32), counts)
        for k, v in zip(("px", "py", "pz", "E"), (*comp, np.hypot(p, mass)), strict=True)
    }
    cols["charge"] = ak.unflatten(np.tile(np.int32([1, -1]), n // 2), counts)
    return cols


def test_mass_shell_rule():
    """Energies that follow E² = p² + m²: a lepton far off the shell is damage (a pz of
    20 GeV inverted into a small one keeps E ≥ |p|); electrons or taus in a muon config,
    and energies measured independently (many off the shell), pass."""
    cols = _on_shell(2000, 0.1056583755)
    _check(cols)
    pz = ak.to_numpy(ak.flatten(cols["pz"])).copy()
    pz[1001] = 0.05  # entry 100 + 500
    bad = cols | {"pz": ak.unflatten(pz, np.full(1000, 2))}
    with pytest.raises(InputError, match=r"br_E'.*off the lepton mass shell.*entry 600"):
        _check(bad)
    _check(_on_shell(2000, 0.000511))  # electrons: m_e² − m_μ² ≪ 4 GeV²
    _check(_on_shell(2000, 1.77686))  # taus: m_τ² − m_μ² = 3.2 GeV² < 4 GeV²
    # a calorimeter-like energy, 5% resolution: most leptons off the shell, no information
    cal = _on_shell(2000, 0.1056583755)
    e = ak.to_numpy(ak.flatten(cal["E"])).astype(np.float64)
    e *= 1 + np.abs(np.random.default_rng(5).normal(0.0, 0.05, len(e)))  # E ≥ |p| kept
    _check(cal | {"E": ak.unflatten(e.astype(np.float32), np.full(1000, 2))})


@pytest.mark.slow  # a 1.5e5-source mock; the bound itself: test_bound_from_beam_energy
def test_mock_respects_the_kinematic_limit(tmp_path):
    """With ``mock.kinematic_limit`` the mock's Gaussian rapidity is truncated at
    E_meson ≤ beam.energy: without it a full-acceptance mock of 1.5e5 sources (seed 5) held a 911 GeV muon from the 400 GeV beam,
    which the plausibility bound (2 (E_beam + m_p)) rightly rejected."""
    from gammastar.mock.generate import generate_file

    cfg = stated_config(
        {
            "output": str(tmp_path),
            "seed": 5,
            "mock": {
                "kinematic_limit": True,  # full acceptance sees the Gaussian tails
                "efficiency_map": str(EFF_MAP),
                "combinatorial": {"pilot_events": 20_000},
                "detector": {
                    "muon_min_energy": 0.0,
                    "theta_min": 0.0,
                    "theta_max": 1.55,
                    "mass_resolution": 0.0,  # no smearing: the limit itself is seen
                    "resolution_model": "momentum",
                },
            },
        }
    )
    generate_file(cfg, tmp_path / "m.root", events=150_000)
    with uproot.open(tmp_path / "m.root") as f:
        e = ak.to_numpy(ak.flatten(f["events"]["muon_E"].array()))
    # energy conservation: a decay muon carries at most its parent's E ≤ E_beam (float32
    # storage: relative rounding 6e-8). With the default 30 MeV mass resolution the smeared
    # muon energies of this sample reach 535 GeV, inside the bound's factor 2 (801.9 GeV).
    assert e.max() <= cfg.beam.energy * (1 + 1e-6)


def test_signal_turned_into_another_exception_is_still_the_interruption(monkeypatch, capsys):
    """A SIGTERM that arrives while a C extension initialises surfaces as ``ImportError:
    initialization failed`` (seen in CI, test_signal_during_select): the command still
    reports the interruption, one line, exit 143, not an unexpected error."""
    from gammastar import cli
    from gammastar.core import interrupt

    def app(self, *args, **kwargs):  # the command run by main: Typer.__call__
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        except interrupt.Interrupted:
            raise ImportError("initialization failed") from None

    monkeypatch.setattr(type(cli.app), "__call__", app)
    assert cli.main(["select", "c.yaml"]) == 128 + signal.SIGTERM
    err = capsys.readouterr().err
    assert err.count("gammastar:") == 1
    assert "interrupted by SIGTERM" in err
    assert "unexpected" not in err

    # a plain failure without a signal is still reported as unexpected (exit 1)
    def failing(self, *args, **kwargs):
        raise ImportError("x")

    monkeypatch.setattr(type(cli.app), "__call__", failing)
    assert cli.main(["select", "c.yaml"]) == 1
    assert "unexpected ImportError: x" in capsys.readouterr().err


def test_signal_swallowed_by_a_weakref_callback_is_delivered_again():
    """A SIGTERM whose Interrupted is raised inside a weakref callback (the import system's
    module-lock callback in CI, test_signal_during_select, which then ran to its end and
    exited 0) is not lost: Python can only print it as "Exception ignored in", so it is
    raised again in the main code right after the callback."""
    import sys
    import weakref

    from gammastar.core import interrupt

    class Referent:
        pass

    after_callback = []
    hook = sys.unraisablehook

    def callback(_):
        signal.raise_signal(signal.SIGTERM)  # the handler runs at the callback's next bytecode
        sum(range(10))

    def command():
        with interrupt.signals_as_exceptions():
            obj = Referent()
            ref = weakref.ref(obj, callback)  # noqa: F841 (kept alive: the callback fires)
            del obj  # the callback runs here; its Interrupted cannot propagate
            after_callback.append(True)  # raised again at this call, before it runs

    with pytest.raises(interrupt.Interrupted) as info:
        command()
    assert info.value.signum == signal.SIGTERM
    assert after_callback == []
    assert interrupt.received() is info.value
    # the handlers and the hook are restored on the way out, and the one-shot profiler gone
    assert signal.getsignal(signal.SIGTERM) is not interrupt._raise
    assert sys.unraisablehook is hook
    assert sys.getprofile() is None


def test_other_unraisable_exceptions_go_to_the_previous_hook(monkeypatch):
    """Only an Interrupted is re-delivered; another exception ignored in a callback still
    reaches the hook that was installed before (pytest's, here)."""
    import sys
    import weakref

    from gammastar.core import interrupt

    seen = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: seen.append(u.exc_type))

    class Referent:
        pass

    def callback(_):
        raise ValueError("in a callback")

    with interrupt.signals_as_exceptions():
        obj = Referent()
        ref = weakref.ref(obj, callback)  # noqa: F841
        del obj
    assert seen == [ValueError]
    assert interrupt.received() is None


def test_signal_swallowed_as_the_block_ends_is_raised_by_its_exit():
    """A swallowed SIGTERM with no call left in the block is raised as the block ends, after
    the handlers and the unraisable hook are restored (a generator-based context manager left
    them to the garbage collector: a later SIGTERM would then exit at once, os._exit)."""
    import sys
    import weakref

    from gammastar.core import interrupt

    class Referent:
        pass

    def callback(_):
        signal.raise_signal(signal.SIGTERM)
        sum(range(10))

    handler, hook = signal.getsignal(signal.SIGTERM), sys.unraisablehook

    def command():
        with interrupt.signals_as_exceptions():
            obj = Referent()
            ref = weakref.ref(obj, callback)  # noqa: F841 (kept alive: the callback fires)
            del obj  # the last statement: the block ends before any call

    with pytest.raises(interrupt.Interrupted) as info:
        command()
    assert info.value.signum == signal.SIGTERM
    assert interrupt.received() is info.value
    assert signal.getsignal(signal.SIGTERM) is handler
    assert sys.unraisablehook is hook
    assert sys.getprofile() is None


def test_signals_as_exceptions_outside_the_main_thread_is_a_no_op():
    import threading

    from gammastar.core import interrupt

    seen = []

    def worker():
        with interrupt.signals_as_exceptions():
            seen.append(signal.getsignal(signal.SIGTERM) is interrupt._raise)

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen == [False]


def test_swallowed_signal_reaches_the_main_code_through_a_wrapping_hook():
    """Another unraisable hook installed over ours inside the block (a library's, calling
    ours): the interruption is still raised in the main code, not in that hook's return (where
    Python would print it as ignored once more)."""
    import sys
    import weakref

    from gammastar.core import interrupt

    class Referent:
        pass

    def callback(_):
        signal.raise_signal(signal.SIGTERM)
        sum(range(10))

    after = []

    def command():
        with interrupt.signals_as_exceptions():
            ours = sys.unraisablehook
            sys.unraisablehook = lambda unraisable: ours(unraisable)
            try:
                obj = Referent()
                ref = weakref.ref(obj, callback)  # noqa: F841 (kept alive: the callback fires)
                del obj
                after.append(True)
            finally:
                sys.unraisablehook = ours

    with pytest.raises(interrupt.Interrupted):
        command()
    assert after == []
