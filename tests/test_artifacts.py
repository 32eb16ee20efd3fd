"""Atomic outputs and metadata."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gammastar.artifacts import SCHEMA_VERSION, atomic_path, make_meta, read_json, write_json
from gammastar.cli import main
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
