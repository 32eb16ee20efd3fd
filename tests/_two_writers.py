"""Test helper: the child process of tests/test_reliability.py's two-writer tests, one
`gammastar select` through the CLI's entry point with the selection's work replaced by a
stand-in. A module of its own, importing only the CLI: a spawned child imports the module of
its target, and the test module's libraries (and the real selection's) took seconds each."""

from __future__ import annotations

import contextlib
import io
import os
import sys
import time
import types


def writer(barrier, done, cfg: str, base: str, rounds: int, queue, wait: bool) -> None:
    """One of two processes that run `gammastar select` (its work replaced by a stand-in
    that decides the refusal to overwrite, then waits until the other process has tried)
    on the same fresh run directory per round, started together by a barrier."""
    from gammastar.cli import main
    from gammastar.core.artifacts import check_writable, write_json

    entered = {"x": False}

    def stand_in(config, inputs=None, *, force=False, **kw):
        entered["x"] = True
        out = config.output_dir / "select.json"
        check_writable(out, force)  # the refusal to overwrite, under the lock
        if wait:
            time.sleep(0.5)  # the other one starts waiting meanwhile
        else:
            done.wait(timeout=30)  # hold the directory until the other one has tried
        write_json(out, {"pid": os.getpid()}, force=force)
        counts = dict.fromkeys(
            ("events", "os", "pp", "mm", "comb_estimate", "comb_estimate_err", "signal"), 0
        )
        counts |= {"signal_err": 0, "unfolded": 0}
        return types.SimpleNamespace(counts=counts, bad_files={}, files={"j": out})

    # the command imports select from its stage module when it runs: the stand-in's module in
    # its place (the stage's own imports, numpy to dask, play no part in the lock)
    stage = types.ModuleType("gammastar.selection.stage")
    stage.select = stand_in
    sys.modules["gammastar.selection.stage"] = stage
    for i in range(rounds):
        entered["x"] = False
        barrier.wait(timeout=30)
        err = io.StringIO()
        args = ["select", cfg, "--output", f"{base}/r{i}"] + (["--wait"] if wait else [])
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            rc = main(args)
        if not entered["x"] and not wait:
            done.wait(timeout=30)
        queue.put((i, os.getpid(), rc, err.getvalue()))
