"""A facility's Dask cluster for the selection: one asked of a Dask Gateway
(:func:`gateway_cluster`, coffea-casa and other analysis facilities) or submitted to a batch
system with ``dask-jobqueue`` (:func:`jobqueue_cluster`, HTCondor on lxplus, SLURM, ...), scaled
to the run's workers and shut down after it.

The jobqueue cluster is described by a short mapping, the config's ``execution.jobqueue``
section or a ``--jobqueue FILE`` (:func:`read_jobqueue`), which replaces it: ``kind``
(:data:`~gammastar.config.selection.JOBQUEUE_KINDS`) and the keyword arguments of its
``dask_jobqueue`` class (``cores``, ``memory``, ``disk``, ``job_extra_directives``, ...);
:func:`job_script` gives the script a job would run without submitting one. Both libraries are
optional (the extras ``gateway`` and ``jobqueue``), imported only here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from gammastar.config.selection import JOBQUEUE_KINDS
from gammastar.errors import ConfigError, EnvironmentFailure, InputError

log = logging.getLogger(__name__)

__all__ = [
    "SECTION",
    "Jobqueue",
    "LoadChunkCode",
    "gateway_cluster",
    "job_script",
    "jobqueue_cluster",
    "jobqueue_options",
    "read_jobqueue",
]

Jobqueue = str | os.PathLike[str] | Mapping[str, Any]
"""A jobqueue cluster's description: a ``--jobqueue`` file, or the config's section as a
mapping (:meth:`gammastar.config.selection.JobqueueConfig.options`)."""
SECTION = "execution.jobqueue"
"""The config key of the section (how the errors of a mapping name it)."""


def _missing(extra: str, package: str) -> ConfigError:
    return ConfigError(
        f"--{extra}: needs the '{package}' package: pip install 'gammastar[{extra}]'"
    )


def _line(err: BaseException) -> str:
    """An exception's message on one line."""
    text = " ".join(str(err).split())
    return text or type(err).__name__


class LoadChunkCode(WorkerPlugin):
    """A Dask worker plugin that loads the selection's chunk code on every worker, those that
    join later included (a Gateway's workers cannot be given ``--preload``)."""

    name = "gammastar-chunk-code"
    idempotent = True

    def setup(self, worker: Any) -> None:
        from gammastar.selection.chunk import load_chunk_code

        load_chunk_code()


def _option_value(current: Any, text: Any) -> Any:
    """A ``--gateway-option`` value in the type of the server's default (numbers, booleans)."""
    if not isinstance(text, str) or isinstance(current, str) or current is None:
        return text
    if isinstance(current, bool):
        return text.lower() in ("1", "true", "yes", "on")
    return type(current)(text)


def gateway_cluster(
    address: str, workers: int, options: Mapping[str, Any], *, timeout: float
) -> tuple[Any, list[Any]]:
    """A Dask Gateway cluster at ``address`` with the ``options`` the user names (the
    software image or environment, worker cores and memory: the keys the Gateway offers),
    scaled to ``workers``; returns the connected client and the objects to close (the
    client, then the cluster, shut down, then the gateway).

    Raises:
        ConfigError: ``dask-gateway`` is not installed, or an option the Gateway does not
            offer (the message lists those it does).
        InputError: the Gateway cannot be reached or refuses the cluster.
    """
    try:
        from dask_gateway import Gateway
    except ImportError:
        raise _missing("gateway", "dask-gateway") from None
    gateway = Gateway(address)
    try:
        try:
            opts = gateway.cluster_options()
        except Exception as err:  # noqa: BLE001 - unreachable, refused: one line
            raise InputError(
                f"--gateway {address}: cannot reach the Dask Gateway ({_line(err)})"
            ) from None
        offered = dict(opts)
        for key, value in options.items():
            if key not in offered:
                raise ConfigError(
                    f"--gateway-option {key}: the Gateway at {address} offers no such option "
                    f"(it offers: {', '.join(sorted(offered)) or 'none'})"
                )
            try:
                opts[key] = _option_value(offered[key], value)
            except (ValueError, TypeError) as err:
                raise ConfigError(f"--gateway-option {key}={value}: {err}") from None
        try:
            cluster = gateway.new_cluster(opts, shutdown_on_close=True)
        except Exception as err:  # noqa: BLE001
            raise InputError(
                f"--gateway {address}: the Gateway refused the cluster ({_line(err)})"
            ) from None
    except BaseException:
        _GatewayCloser(gateway).close()
        raise
    to_close: list[Any] = [_Shutdown(cluster), _GatewayCloser(gateway)]
    try:
        cluster.scale(workers)
        client = cluster.get_client()  # the default: as_completed finds it
        to_close.insert(0, client)
        _first_worker(client, f"--gateway {address}", timeout)
    except BaseException:
        _close_all(to_close)
        raise
    log.info("select: Dask Gateway cluster %s, %d worker(s) asked for", cluster.name, workers)
    return client, to_close


class _Shutdown:
    """Closes a Gateway cluster by shutting it down (its scheduler and workers stop)."""

    def __init__(self, cluster: Any) -> None:
        self.cluster = cluster

    def close(self) -> None:
        self.cluster.shutdown()
        _forget_loop(self.cluster.gateway)


class _GatewayCloser:
    """Closes a ``dask_gateway.Gateway`` client."""

    def __init__(self, gateway: Any) -> None:
        self.gateway = gateway

    def close(self) -> None:
        self.gateway.close()
        _forget_loop(self.gateway)


def _forget_loop(gateway: Any) -> None:
    """A closed ``Gateway``'s ``__del__`` closes it again and fails on its stopped event loop
    (an "Exception ignored" traceback at exit); it skips a Gateway without a loop runner."""
    gateway.__dict__.pop("_loop_runner", None)


def _close_all(objs: list[Any]) -> None:
    for obj in objs:
        try:
            obj.close()
        except Exception:  # noqa: BLE001 - best-effort cleanup after a failure
            log.debug("closing %r failed", obj)


def _first_worker(client: Any, what: str, timeout: float) -> None:
    """Register :class:`LoadChunkCode` and wait for the first worker (the others join as the
    facility starts them: the scheduler hands the queued chunks to each as it arrives)."""
    client.register_plugin(LoadChunkCode())
    try:
        client.wait_for_workers(1, timeout=timeout)
    except TimeoutError:
        raise EnvironmentFailure(
            f"{what}: no worker joined the cluster within {timeout:.0f} s"
        ) from None


def read_jobqueue(path: str | os.PathLike[str]) -> tuple[str, dict[str, Any]]:
    """``(kind, keyword arguments)`` of a ``--jobqueue`` file, a YAML mapping
    (:func:`jobqueue_options`).

    Raises:
        InputError: the file cannot be read or is not YAML.
        ConfigError: not a mapping, no ``kind`` or an unknown one.
    """
    import yaml

    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text())
    except OSError as err:
        raise InputError(f"{p}: cannot read the jobqueue file ({err.strerror})") from None
    except yaml.YAMLError as err:
        raise InputError(f"{p}: not YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{p}: the jobqueue file must be a mapping with 'kind' and options")
    return jobqueue_options(doc, str(p))


def jobqueue_options(doc: Mapping[str, Any], where: str) -> tuple[str, dict[str, Any]]:
    """``(kind, keyword arguments)`` of a jobqueue mapping (a file's, or the config's section;
    ``where`` names it in errors): ``kind`` (:data:`JOBQUEUE_KINDS`) and the cluster class's
    keyword arguments; ``processes`` defaults to ``cores`` (single-threaded workers, as the
    selection's chunks want), the scheduler's dashboard to a free port; each worker loads
    the chunk code when it joins (:class:`LoadChunkCode`).

    Raises:
        ConfigError: no ``kind`` or an unknown one.
    """
    kwargs = dict(doc)
    kind = kwargs.pop("kind", None)
    if kind not in JOBQUEUE_KINDS:
        raise ConfigError(f"{where}: kind: {kind!r} is not one of {', '.join(JOBQUEUE_KINDS)}")
    if "cores" in kwargs:
        kwargs.setdefault("processes", kwargs["cores"])
    # the scheduler runs here: its dashboard on a free port (8787 is often taken on a shared
    # login node, and the cluster would then fail to start)
    options = dict(kwargs.get("scheduler_options") or {})
    options.setdefault("dashboard_address", ":0")
    kwargs["scheduler_options"] = options
    return str(kind), kwargs


def _where(source: Jobqueue) -> str:
    """How errors name the description: the file, or the config's section."""
    return SECTION if isinstance(source, Mapping) else os.fspath(source)


def _jobqueue_object(source: Jobqueue) -> Any:
    """The ``dask_jobqueue`` cluster of the description (its scheduler started here; no job
    yet)."""
    where = _where(source)
    if isinstance(source, Mapping):
        kind, kwargs = jobqueue_options(source, where)
    else:
        kind, kwargs = read_jobqueue(source)
    try:
        import dask_jobqueue
    except ImportError:
        raise _missing("jobqueue", "dask-jobqueue") from None
    cls = getattr(dask_jobqueue, JOBQUEUE_KINDS[kind])
    known = _jobqueue_keys(cls)
    for key in kwargs:
        if key not in known:
            raise ConfigError(
                f"{where}: {key}: not an option of {kind} ({cls.__name__}); "
                "see the dask-jobqueue documentation of its options"
            )
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where}: {kind}: {err}") from None


def _jobqueue_keys(cls: Any) -> set[str]:
    """The keyword arguments a ``dask_jobqueue`` cluster class takes: its own, its job
    class's and every job's (the constructor takes them as ``**kwargs``; a wrong one would
    fail with the cluster half made)."""
    import inspect

    from dask_jobqueue.core import Job

    keys: set[str] = set()
    for fn in (cls.__init__, cls.job_cls.__init__, Job.__init__):
        keys |= {
            name for name, p in inspect.signature(fn).parameters.items()
            if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
        }  # fmt: skip
    return keys - {"self", "scheduler", "job_cls", "loop", "asynchronous", "base_class_kwargs",
                   "job_kwargs"}  # fmt: skip


def job_script(source: Jobqueue) -> str:
    """The batch script that :func:`jobqueue_cluster` would submit for each job of the file
    or section (nothing is submitted: a dry run)."""
    cluster = _jobqueue_object(source)
    try:
        return str(cluster.job_script())
    finally:
        cluster.close()


def jobqueue_cluster(source: Jobqueue, workers: int, *, timeout: float) -> tuple[Any, list[Any]]:
    """A ``dask-jobqueue`` cluster from the ``--jobqueue`` file or the config's section,
    scaled to ``workers`` workers (jobs of ``processes`` workers each); returns the client
    and the objects to close (the client, then the cluster: its jobs are cancelled)."""
    from distributed import Client

    cluster = _jobqueue_object(source)
    to_close: list[Any] = [cluster]
    try:
        cluster.scale(n=workers)
        client = Client(cluster)
        to_close.insert(0, client)
        what = SECTION if isinstance(source, Mapping) else f"--jobqueue {os.fspath(source)}"
        _first_worker(client, what, timeout)
    except BaseException:
        _close_all(to_close)
        raise
    log.info("select: %s, %d worker(s) asked for", type(cluster).__name__, workers)
    return client, to_close
