"""The options every command spells the same way (``CONFIG``, ``--output``, ``--force``,
``--seed``, ``--wait``), fixed-value options (:func:`choices`), and loading a command's config
with its run directory's lock (:func:`load`, :func:`lock_run`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

if TYPE_CHECKING:
    from gammastar.config import AnalysisConfig
    from gammastar.core.results import StageResult

# Shared option types, so that every command spells them the same way.
ConfigArg = Annotated[
    Path,
    typer.Argument(
        metavar="CONFIG", help="Analysis YAML file (docs/reference/config.md).", show_default=False
    ),
]
OutputOpt = Annotated[
    Path | None, typer.Option("--output", help="Run directory (default: the config's `output`).")
]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite existing outputs.")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Random seed (default: the config's).")]
WaitOpt = Annotated[
    bool,
    typer.Option(
        "--wait", help="Wait for another command writing the run directory instead of refusing."
    ),
]


def choices(name: str, values: Iterable[str]) -> type[StrEnum]:
    """An enumeration of the string ``values`` for an option with a fixed set of values: typer
    lists them in ``--help`` (and in docs/reference/cli.md) and refuses any other value with a
    usage error naming them. Its members are ``str``, equal to their value."""
    # the functional API makes a class; mypy reads a call of the class as an instance
    return cast(type[StrEnum], StrEnum(name, [(v, v) for v in values]))


def load(
    config: Path,
    output: Path | None = None,
    *,
    lock: bool = False,
    wait: bool = False,
    reach: bool | None = False,
) -> AnalysisConfig:
    """Load a config for a command, applying ``--output`` if given; with ``lock`` take the
    run directory's writer lock (:func:`lock_run`) before anything is checked or written;
    ``reach``: the command runs the reach, whose missing inputs are refused with the config's
    other mistakes (:func:`gammastar.config.load_config`)."""
    from gammastar.config import load_config

    cfg = load_config(config, reach=reach)
    if output is not None:
        cfg = cfg.model_copy(update={"output": str(output.resolve())})
    if lock:
        lock_run(cfg.output_dir, wait=wait)
    return cfg


def lock_run(run_dir: Path, *, wait: bool = False) -> None:
    """Hold ``run_dir``'s writer lock until the command ends (:func:`gammastar.cli.main` releases it):
    refused with one line naming the holder, or waiting for it with ``--wait``."""
    from gammastar.core import runlock

    runlock.acquire(run_dir, wait=wait)


def document(result: StageResult) -> Mapping[str, Any]:
    """The JSON document a stage wrote (the stages a command summarises write one)."""
    if result.document is None:
        raise TypeError(f"{result.path}: the stage returned no document")
    return result.document


def given(value: float | None, option: str) -> float:
    """An option the command's checks made required here (``--mass`` of an A′ request, ...)."""
    if value is None:
        from gammastar.errors import GammastarError

        raise GammastarError(f"{option} is required")
    return value
