"""How the selection processes its chunks: the executors (:data:`EXECUTORS`) and the
:class:`Execution` settings (picklable) of ``gammastar select``, completed by the config's
``execution`` section (:func:`with_config`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from gammastar.config.selection import ExecutionConfig
from gammastar.errors import ConfigError

EXECUTORS = ("iterative", "futures", "dask")
"""The executors the selection runs on (:mod:`gammastar.selection.executors.processor`)."""


@dataclass(frozen=True)
class Execution:
    """How the selection processes its chunks (:func:`gammastar.selection.stage.select`,
    :func:`gammastar.selection.executors.processor.run_processor`; ``gammastar select`` options of the
    same names)."""

    executor: str = "iterative"
    """``iterative`` (this process), ``futures`` (a process pool) or ``dask``."""
    scheduler: str | None = None
    """Dask scheduler address (``tcp://host:8786``); ``None`` (and no ``gateway`` nor
    ``jobqueue``) starts a local ``distributed.LocalCluster`` with ``workers`` workers."""
    workers: int | None = None
    """Worker processes for ``futures`` / local ``dask``, workers asked of a ``gateway`` or
    ``jobqueue`` cluster (default 2)."""
    gateway: str | None = None
    """A Dask Gateway's address (``https://gateway.example.org``): the selection asks it for
    a cluster with ``gateway_options``, scales it to ``workers`` and shuts it down after
    (:func:`gammastar.selection.executors.facility.gateway_cluster`)."""
    gateway_options: Mapping[str, Any] = field(default_factory=dict)
    """The Gateway's cluster options (its software ``image`` or ``environment``,
    ``worker_cores``, ...: the keys that Gateway offers)."""
    jobqueue: str | Mapping[str, Any] | None = None
    """A ``dask-jobqueue`` cluster (HTCondor, SLURM, ...) scaled to ``workers`` and closed after
    (:func:`gammastar.selection.executors.facility.jobqueue_cluster`): a ``--jobqueue`` YAML
    file, or the config's ``execution.jobqueue`` section as a mapping (:func:`with_config`)."""
    worker_timeout: float = 600.0
    """Seconds to wait for the first worker of a ``gateway`` or ``jobqueue`` cluster."""
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

    def __post_init__(self) -> None:
        clusters = [f"--{k}" for k in ("scheduler", "gateway", "jobqueue") if getattr(self, k)]
        if len(clusters) > 1:
            raise ConfigError(f"{' and '.join(clusters)}: give one cluster, not {len(clusters)}")
        if clusters and self.executor != "dask":
            raise ConfigError(f"{clusters[0]} needs --executor dask")
        if self.gateway_options and not self.gateway:
            raise ConfigError("--gateway-option needs --gateway")


def with_config(execution: Execution, section: ExecutionConfig | None) -> Execution:
    """``execution`` with the config's ``execution.jobqueue`` as its cluster where it runs on
    Dask and names none (no ``--scheduler``, ``--gateway`` or ``--jobqueue``: a file given
    replaces the section)."""
    jobqueue = None if section is None else section.jobqueue
    named = execution.scheduler or execution.gateway or execution.jobqueue
    if jobqueue is None or execution.executor != "dask" or named:
        return execution
    return replace(execution, jobqueue=jobqueue.options())
