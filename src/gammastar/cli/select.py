"""`gammastar select`: dilepton pairs, like-sign subtraction and unfolding of ntuples."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gammastar.cli.options import ConfigArg, ForceOpt, OutputOpt, WaitOpt, choices, load

if TYPE_CHECKING:  # a class made at run time: mypy reads it as any StrEnum
    Executor = StrEnum
else:
    Executor = choices("Executor", ("iterative", "futures", "dask"))
"""The values of ``--executor``: those of :data:`gammastar.selection.executors.EXECUTORS`
(tests/test_documented_commands.py keeps the two equal; the selection is not imported here, so
that the command line starts fast)."""


def select_command(
    config: ConfigArg,
    input: Annotated[
        list[str] | None,  # str, not Path: a URL (root://host//f.root) kept as given
        typer.Option(
            "--input",
            help="Input ntuple, a path or a URL (root://, https://, s3://; repeatable; globs "
            "allowed); replaces input.files.",
        ),
    ] = None,
    executor: Annotated[
        Executor | None,
        typer.Option(
            "--executor",
            help="iterative: one process; futures: --workers local processes; dask: a local Dask "
            "cluster or the one at --scheduler (docs/howto/cluster.md). Default: dask with "
            "--gateway, --jobqueue or the config's execution.jobqueue, else iterative.",
            show_default=False,
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option("--scheduler", help="Dask scheduler address; none: a local Dask cluster."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers", min=1, help="Workers for futures, a local Dask, --gateway or --jobqueue."
        ),
    ] = None,
    gateway: Annotated[
        str | None,
        typer.Option(
            "--gateway",
            help="Ask this Dask Gateway for a cluster of --workers workers (shut down after); "
            "implies --executor dask (docs/howto/cluster.md).",
        ),
    ] = None,
    gateway_option: Annotated[
        list[str] | None,
        typer.Option(
            "--gateway-option",
            help="KEY=VALUE: a cluster option of the Gateway, e.g. its software image=... or "
            "environment=... (repeatable).",
        ),
    ] = None,
    jobqueue: Annotated[
        Path | None,
        typer.Option(
            "--jobqueue",
            help="YAML file: a dask-jobqueue cluster (kind: htcondor, slurm, ...; its options) "
            "of --workers workers, closed after; implies --executor dask; replaces the "
            "config's execution.jobqueue.",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Print the job script of --jobqueue (else of the config's execution.jobqueue) "
            "and stop.",
        ),
    ] = False,
    skip_bad_files: Annotated[
        bool, typer.Option("--skip-bad-files", help="Skip unreadable files with a report.")
    ] = False,
    shared_staging: Annotated[
        bool,
        typer.Option(
            "--shared-staging/--no-shared-staging",
            help="futures/dask: workers write their parts of the pairs.parquet/ dataset "
            "themselves, through <output>/.gammastar-parts-* (needs a filesystem shared with "
            "the driver; a worker that does not see it sends the bytes through the scheduler "
            "for the driver to write); off: always send.",
        ),
    ] = True,
    pairs_url: Annotated[
        str | None,
        typer.Option(
            "--pairs-url",
            help="futures/dask: write the pair dataset at this fsspec URL (s3://..., root://..., "
            "file:///...) instead of the run directory; replaces selection.pairs_url.",
        ),
    ] = None,
    output: OutputOpt = None,
    force: ForceOpt = False,
    wait: WaitOpt = False,
) -> None:
    """Select OS/SS lepton pairs, subtract the combinatorial background, unfold ε(m, pT).

    Writes pairs.parquet, histograms.root and select.json in the run directory.
    """
    import logging

    from gammastar.errors import ConfigError

    if scheduler and executor != "dask":
        raise ConfigError("--scheduler needs --executor dask")
    if dry_run:
        _print_job_script(config, jobqueue)
        return
    options = dict(_key_value(o) for o in gateway_option or [])
    cfg = load(config, output, lock=True, wait=wait)  # a bad config: refused before the selection
    if executor is None:  # a facility's cluster named: Dask; else this process
        section = cfg.execution is not None and cfg.execution.jobqueue is not None
        executor = Executor("dask" if gateway or jobqueue or section else "iterative")
    if pairs_url is not None:
        from gammastar.core.urls import known_protocols, url_problem

        why = url_problem(pairs_url, "--pairs-url", known_protocols())
        if why is not None:
            raise ConfigError(why)
        sel = cfg.selection.model_copy(update={"pairs_url": pairs_url})
        cfg = cfg.model_copy(update={"selection": sel})
    from gammastar.selection.executors import Execution
    from gammastar.selection.stage import select

    logging.basicConfig(level=logging.WARNING, format="gammastar: %(levelname)s: %(message)s")
    for handler in logging.getLogger().handlers:  # distributed logs at INFO on its own loggers
        handler.setLevel(logging.WARNING)
    for line in cfg.assumed_lines():  # outside the mock: the choices left to the mock's values
        typer.echo(line, err=True)
    res = select(
        cfg,
        [str(p) for p in input] if input else None,
        execution=Execution(
            executor.value,
            scheduler=scheduler,
            workers=workers,
            shared_staging=shared_staging,
            gateway=gateway,
            gateway_options=options,
            jobqueue=None if jobqueue is None else str(jobqueue),
        ),
        skip_bad_files=skip_bad_files,
        force=force,
    )
    c = res.counts
    typer.echo(
        f"{c['events']} events: {c['os']} OS, {c['pp']} ++, {c['mm']} -- pairs; "
        f"combinatorial {c['comb_estimate']:.1f} ± {c['comb_estimate_err']:.1f}; "
        f"signal {c['signal']:.1f} ± {c['signal_err']:.1f}; unfolded {c['unfolded']:.1f}"
    )
    for path, why in res.bad_files.items():
        typer.echo(f"skipped bad file {path}: {why}", err=True)
    typer.echo(f"wrote {', '.join(str(p) for p in res.files.values())}")


def _print_job_script(config: Path, jobqueue: Path | None) -> None:
    """``--dry-run``: the job script of the ``--jobqueue`` file (the config is not read), else
    of the config's ``execution.jobqueue``."""
    from gammastar.errors import ConfigError
    from gammastar.selection.executors.facility import job_script

    if jobqueue is not None:
        typer.echo(job_script(jobqueue))
        return
    cfg = load(config)  # nothing is written: no lock
    if cfg.execution is None or cfg.execution.jobqueue is None:
        raise ConfigError(f"--dry-run needs --jobqueue or execution.jobqueue in {config}")
    typer.echo(job_script(cfg.execution.jobqueue.options()))


def _key_value(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` of ``--gateway-option``."""
    from gammastar.errors import ConfigError

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--gateway-option {text!r}: expected KEY=VALUE")
    return key.strip(), value
