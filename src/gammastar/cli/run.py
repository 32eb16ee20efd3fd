"""`gammastar run`: every stage in order, skipping those whose outputs are up to date."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from gammastar.cli.options import ConfigArg, OutputOpt, WaitOpt, choices, load
from gammastar.core.rundir import STAGE_ORDER

if TYPE_CHECKING:  # a class made at run time: mypy reads it as any StrEnum
    Stage = StrEnum
else:
    Stage = choices("Stage", (*STAGE_ORDER, "all"))
"""The values of ``--force``: the pipeline's stages (``rundir.STAGE_ORDER``, which
``gammastar.pipeline.STAGES`` follows) and ``all``."""


def run_command(
    config: ConfigArg,
    output: OutputOpt = None,
    force: Annotated[
        list[Stage] | None,
        typer.Option(
            "--force",
            help="Redo this stage even if it is up to date (repeatable; all: every stage).",
            show_default=False,
        ),
    ] = None,
    wait: WaitOpt = False,
) -> None:
    """Run the whole analysis chain; only stale stages are recomputed."""
    # a bad config (the reach's missing inputs with it): refused before the imports
    cfg = load(config, output, lock=True, wait=wait, reach=None)
    from rich.console import Console

    from gammastar import pipeline

    console = Console(stderr=True)
    reports = pipeline.run(
        cfg,
        force=[s.value for s in force or ()],
        echo=lambda s: console.print(s, markup=False, highlight=False),
    )
    summary = pipeline.summarize(cfg, reports)
    typer.echo(summary)
