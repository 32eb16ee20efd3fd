"""How the selection processes its chunks: the executors (:data:`EXECUTORS`) and the
:class:`Execution` settings (picklable) of ``gammastar select``.
"""

from __future__ import annotations

from dataclasses import dataclass

EXECUTORS = ("iterative", "futures", "dask")
"""The executors the selection runs on (:mod:`gammastar.selection.processor`)."""


@dataclass(frozen=True)
class Execution:
    """How the selection processes its chunks (:func:`gammastar.selection.stage.select`,
    :func:`gammastar.selection.processor.run_processor`; ``gammastar select`` options of the
    same names)."""

    executor: str = "iterative"
    """``iterative`` (this process), ``futures`` (a process pool) or ``dask``."""
    scheduler: str | None = None
    """Dask scheduler address (``tcp://host:8786``); ``None`` starts a local
    ``distributed.LocalCluster`` with ``workers`` workers."""
    workers: int | None = None
    """Worker processes for ``futures`` / local ``dask`` (default 2)."""
    chunksize: int | None = None
    """Entries per chunk (``None``: ``input.step_size``; :func:`run_processor`: 500 000)."""
    dask_processes: bool = True
    """Local Dask cluster with worker processes (``False``: threads)."""
    shared_staging: bool = True
    """On the ``futures`` and ``dask`` executors each worker writes its chunks' parts of the
    pair dataset into a staging directory next to the outputs (``<output>/.gammastar-parts-*``,
    renamed into place as ``pairs.parquet/``), which needs a filesystem the workers share with
    the driver; a worker that does not see the directory sends the part's bytes through the
    scheduler for the driver to write. ``False``: always through the scheduler."""
