"""`gammastar run`: every stage in order, skipping those whose outputs are up to date."""

from __future__ import annotations

from typing import Annotated

import typer

from gammastar.cli import ConfigArg, OutputOpt, WaitOpt, app, load


@app.command("run")
def run_command(
    config: ConfigArg,
    output: OutputOpt = None,
    force: Annotated[
        list[str] | None,
        typer.Option("--force", help="Redo this stage even if up to date (repeatable; 'all')."),
    ] = None,
    wait: WaitOpt = False,
) -> None:
    """Run the whole analysis chain; only stale stages are recomputed."""
    from rich.console import Console

    from gammastar import pipeline

    console = Console(stderr=True)
    cfg = load(config, output, lock=True, wait=wait)
    reports = pipeline.run(
        cfg, force=force or (), echo=lambda s: console.print(s, markup=False, highlight=False)
    )
    summary = pipeline.summarize(cfg, reports)
    typer.echo(summary)
