"""Every compiled kernel is compiled by ``python -m gammastar.kernels`` (the install step of
``make demo`` and ``make test``) at the signatures the stages call it with."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gammastar.kernels import KERNEL_MODULES

SRC = Path(__file__).resolve().parents[1] / "src"


def test_every_module_with_a_kernel_is_warmed():
    """A module that compiles with numba (``njit``) is in ``KERNEL_MODULES`` and has a
    ``warm_up``: a new kernel cannot be left to the first run."""
    jitted = set()
    for path in (SRC / "gammastar").rglob("*.py"):
        if re.search(r"from numba import .*\bnjit\b", path.read_text()):
            jitted.add(".".join(path.relative_to(SRC).with_suffix("").parts))
    jitted.discard("gammastar.core.threads")  # launched by the training kernels' warm-up
    assert jitted == set(KERNEL_MODULES)
    for name in KERNEL_MODULES:
        assert callable(importlib.import_module(name).warm_up), name


@pytest.mark.slow
def test_a_run_after_the_warm_up_compiles_nothing(tmp_path):
    """In an empty numba cache, ``python -m gammastar.kernels``, then a small run of every
    stage (the flow's kernels) and the yields of the NA60-like fiducial analysis (the
    fiducial region's and the extrapolation's): numba saves nothing new during them
    (NUMBA_DEBUG_CACHE prints each entry it saves)."""
    import test_e2e

    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba"), "OMP_NUM_THREADS": "1",
           "GAMMASTAR_CACHE": str(tmp_path / "cache")}  # fmt: skip
    subprocess.run([sys.executable, "-m", "gammastar.kernels"], env=env, check=True,
                   capture_output=True)  # fmt: skip
    repo = SRC.parent
    fid = tmp_path / "na60_like.yaml"
    text = (repo / "analysis" / "na60_like.yaml").read_text().replace("../data/", f"{repo}/data/")
    text = re.sub(r"(?m)^output: .*$", f"output: {tmp_path / 'fid'}", text)
    fid.write_text(re.sub(r"(?m)^  events: \d+", "  events: 200000", text, count=1))
    commands = [("run", str(test_e2e.write_config(tmp_path))),
                *((stage, str(fid)) for stage in ("generate", "select", "yields"))]  # fmt: skip
    for args in commands:
        proc = subprocess.run([sys.executable, "-m", "gammastar", *args],
                              env={**env, "NUMBA_DEBUG_CACHE": "1"}, capture_output=True,
                              text=True, check=True)  # fmt: skip
        log = proc.stdout + proc.stderr
        assert "saved" not in log, (args, [ln for ln in log.splitlines() if "saved" in ln])
        if args[0] in ("run", "yields"):
            assert "data loaded" in log, args
