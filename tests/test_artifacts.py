"""Atomic outputs and metadata."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

import gammastar.core.artifacts
from gammastar.cli import main
from gammastar.core.artifacts import (
    SCHEMA_VERSION,
    atomic_path,
    make_meta,
    read_json,
    replace,
    write_json,
)
from gammastar.errors import GammastarError, OutputExistsError


def test_atomic_path_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"

    def fail() -> None:
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fail()
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_no_silent_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    write_json(target, {"x": 1, "meta": make_meta(config_sha256="abc", seed=1)})
    with pytest.raises(OutputExistsError, match="use --force"):
        write_json(target, {"x": 2})
    write_json(target, {"x": 3, "meta": make_meta(config_sha256="abc", seed=1)}, force=True)
    assert read_json(target)["x"] == 3


def test_forced_overwrite_leaves_no_stray_file(tmp_path: Path) -> None:
    target = tmp_path / "pairs.parquet"
    target.write_bytes(b"old")
    with atomic_path(target, force=True) as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["pairs.parquet"]


def test_replace_puts_the_old_file_back_when_the_rename_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old file is moved aside before the new one is renamed in; a failing rename must
    leave the old one where it was, untouched."""
    old, new = tmp_path / "out", tmp_path / "new"
    old.write_bytes(b"old")
    new.write_bytes(b"new")
    monkeypatch.setattr(gammastar.core.artifacts, "MOVE_ASIDE_BYTES", 0)  # a "large" file
    real = gammastar.core.artifacts.os.replace
    calls = []

    def flaky(src, dst):  # the second rename (new -> out) fails
        calls.append((Path(src).name, Path(dst).name))
        if len(calls) == 2:
            raise OSError("disk full")
        real(src, dst)

    monkeypatch.setattr(gammastar.core.artifacts.os, "replace", flaky)
    with pytest.raises(OSError, match="disk full"):
        replace(new, old)
    assert old.read_bytes() == b"old"
    assert new.read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new", "out"]
    assert calls[1] == ("new", "out")


def test_json_nan_and_numpy(tmp_path: Path) -> None:
    target = tmp_path / "b.json"
    write_json(target, {"a": np.array([1.0, np.nan]), "b": np.float32(2.5), "meta": {}})
    data = json.loads(target.read_text())
    assert data["a"] == [1.0, None]
    assert data["b"] == 2.5
    with pytest.raises(GammastarError, match="schema_version None"):
        read_json(target)


def test_meta_fields(tmp_path: Path) -> None:
    f = tmp_path / "in.bin"
    f.write_bytes(b"1234")
    meta = make_meta(config_sha256="h", seed=7, inputs=[f], n_pot=1e13)
    assert meta["schema_version"] == SCHEMA_VERSION
    assert meta["seed"] == 7
    assert meta["inputs"] == [{"path": str(f), "size": 4}]
    assert meta["n_pot"] == 1e13
    assert "gammastar_version" in meta


def test_cli_version_and_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip()
    assert main(["no-such-command"]) == 2


def test_large_replace_removes_leftovers_small_replace_is_direct(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large output goes in by the move-aside route and sweeps a hidden leftover of an
    interrupted earlier replace; a small one is one rename (the old never moved)."""
    (tmp_path / "out").write_bytes(b"old")
    (tmp_path / ".out.abc123.old").write_bytes(b"interrupted")
    monkeypatch.setattr(gammastar.core.artifacts, "MOVE_ASIDE_BYTES", 3)
    (tmp_path / "new").write_bytes(b"new!")
    replace(tmp_path / "new", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert (tmp_path / "out").read_bytes() == b"new!"
    calls = []
    real = gammastar.core.artifacts.os.replace
    monkeypatch.setattr(
        gammastar.core.artifacts.os, "replace", lambda a, b: (calls.append(b), real(a, b))
    )
    (tmp_path / "new").write_bytes(b"n")
    replace(tmp_path / "new", tmp_path / "out")
    assert [Path(c).name for c in calls] == ["out"]


def test_a_signal_during_the_temporary_files_creation_still_cleans_it_up(tmp_path, monkeypatch):
    """A raising signal handler (SIGTERM → exception, as the command line installs it) that
    fires right after the temporary file's open — the moment a run is most often stopped,
    as the file has just appeared — leaves nothing: the name was recorded before the open
    (with ``tempfile.mkstemp`` the name came back only after it, and the ``.part`` file stayed,
    seen under load in tests/test_reliability.py)."""
    import signal

    from gammastar.core import artifacts

    class Stop(Exception):
        pass

    def handler(signum, frame):
        raise Stop

    real = os.open

    def open_then_signal(*a, **k):
        fd = real(*a, **k)
        os.kill(os.getpid(), signal.SIGTERM)  # its handler runs at the next bytecode
        return fd

    old = signal.signal(signal.SIGTERM, handler)
    try:
        monkeypatch.setattr(artifacts.os, "open", open_then_signal)
        with pytest.raises(Stop), artifacts.atomic_paths([tmp_path / "out.txt"]) as (tmp,):
            tmp.write_text("never")
    finally:
        monkeypatch.undo()
        signal.signal(signal.SIGTERM, old)
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    # the names keep the pattern the run-directory sweep knows
    with artifacts.atomic_paths([tmp_path / "x.txt"]) as (tmp,):
        from gammastar.core import runlock

        assert runlock.is_temporary(tmp.name)
        assert tmp.name.startswith(f".x.txt.{os.getpid()}.")
        tmp.write_text("ok")
    assert (tmp_path / "x.txt").read_text() == "ok"
