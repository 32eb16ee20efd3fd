"""Test helper: the package's atomic writers on a full disk, for tests/test_reliability.py, in
the test's process or in a child (its ``PROBE``): :func:`write_big` writes one kind of
artifact through the real library calls, :func:`patch_full_disk` makes each library fail as
it does on a full tmpfs.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import numpy as np

KINDS = {
    "json": "a.json",
    "root": "a.root",
    "parquet": "a.parquet",
    "torch": "a.pt",
    "png": "a.png",
}
"""The artifact kinds and the file name each is written to."""


def big_array() -> np.ndarray:
    """About 1.6 MB of numbers: more than the small tmpfs of the real full-disk test holds."""
    return np.random.default_rng(1).normal(size=200_000)


def write_big(kind: str, target: Path, big: np.ndarray) -> None:
    """``big`` written as ``kind`` to ``target`` through the package's atomic writers and the
    real library calls."""
    from gammastar.core.artifacts import atomic_path, write_json

    if kind == "json":
        write_json(target, {"x": big})
    elif kind == "root":
        import uproot

        with atomic_path(target) as tmp, uproot.recreate(tmp) as f:
            f["t"] = {"x": big}
    elif kind == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        with atomic_path(target) as tmp:
            pq.write_table(pa.table({"x": big}), tmp)
    elif kind == "torch":
        import torch

        with atomic_path(target) as tmp:
            torch.save({"x": torch.tensor(big)}, tmp)
    elif kind == "png":
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots()
        try:
            ax.imshow(np.random.default_rng(1).random((800, 800)))
            with atomic_path(target) as tmp:
                fig.savefig(tmp, format="png", dpi=200)
        finally:
            plt.close(fig)


def patch_full_disk(set_attr: Callable[[Any, str, Any], None], kinds: Collection[str]) -> None:
    """What each library raises on a full disk (as seen on a full tmpfs), set with
    ``set_attr`` (``setattr`` in a child, ``monkeypatch.setattr`` in a test's process); the
    libraries of ``kinds`` only are imported and patched."""

    def full(*a: Any, **k: Any) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    # no errno from torch's C++ stream nor PIL: the filesystem is seen full
    class Full:
        f_bavail, f_frsize = 0, 4096

    set_attr(Path, "write_text", full)
    set_attr(os, "statvfs", lambda p: Full())
    if "root" in kinds:
        import uproot.sink.file

        set_attr(uproot.sink.file.FileSink, "write", full)
    if "parquet" in kinds:
        import pyarrow.parquet as pq

        def pq_full(*a: Any, **k: Any) -> None:
            raise OSError(
                errno.ENOSPC,
                "Error writing bytes to file. Detail: [errno 28] No space left on device",
            )

        set_attr(pq, "write_table", pq_full)
    if "torch" in kinds:
        import torch

        def torch_full(*a: Any, **k: Any) -> None:
            raise RuntimeError(
                "[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598"
            )

        set_attr(torch, "save", torch_full)
    if "png" in kinds:
        import matplotlib.figure

        def png_full(*a: Any, **k: Any) -> None:
            raise AttributeError("'NoneType' object has no attribute 'tell'")

        set_attr(matplotlib.figure.Figure, "savefig", png_full)


def assert_refused(targets: dict[str, Path], results: dict[str, tuple[int, str]]) -> None:
    """Each kind's command (``results``: its exit status and standard error) failed as a full
    disk must fail: exit 1, one line naming the file and the cause, nothing left behind."""
    for kind, (rc, err) in results.items():
        target = Path(targets[kind])
        assert rc == 1, (kind, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1, (kind, err)
        assert lines[0].startswith(f"gammastar: error: {target}: cannot write: no space left"), (
            kind,
            err,
        )
        assert list(target.parent.iterdir()) == [], kind  # no half file, no temporary
