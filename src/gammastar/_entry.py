"""The Python API's stage functions: one per CLI command, with the command's name.

Each takes an analysis config (or the path of its YAML file), imports its stage on first use,
so that ``import gammastar`` stays light, and returns the stage's typed result. The keyword
arguments are the stage function's own (``tests/test_api.py`` keeps them equal).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gammastar.config import AnalysisConfig, load_config

if TYPE_CHECKING:  # the stages import on call (import gammastar stays light)
    import pandas as pd

    from gammastar.events.stage import EventRequest, EventsResult
    from gammastar.flow.model import FlowModel
    from gammastar.flow.stage import TrainResult
    from gammastar.flow.validate import ValidationResult
    from gammastar.mock.cocktail import MesonSource
    from gammastar.mock.generate import GenerateResult
    from gammastar.physics.sampling import SamplerLike
    from gammastar.pipeline import StageReport
    from gammastar.reach.stage import ReachResult
    from gammastar.report import ReportResult
    from gammastar.selection.executors import Execution
    from gammastar.selection.outputs import SelectResult
    from gammastar.source.source import Source
    from gammastar.yields.stage import YieldsResult


def as_config(
    config: AnalysisConfig | str | os.PathLike[str], *, reach: bool | None = False
) -> AnalysisConfig:
    """Load ``config`` when it is a path (``reach``: the reach runs, its missing inputs are
    refused with the config's other mistakes, :func:`gammastar.config.load_config`); pass an
    :class:`~gammastar.config.AnalysisConfig` on."""
    if isinstance(config, str | os.PathLike):
        return load_config(config, reach=reach)
    return config


def run(
    config: AnalysisConfig | str | os.PathLike[str],
    *,
    force: Sequence[str] = (),
    report: bool = True,
) -> list[StageReport]:
    """``gammastar run``: every stage in order, skipping those that are up to date.

    Arguments:
        config: an analysis config or the path of its YAML file.
        force: stage names to redo (``"all"`` for every stage).
        report: (re)build ``report.html``.

    Returns:
        One :class:`gammastar.pipeline.StageReport` per stage.
    """
    from gammastar import pipeline

    return pipeline.run(as_config(config, reach=None), force=force, report=report)


def generate(
    config: AnalysisConfig | str | os.PathLike[str],
    path: str | Path | None = None,
    *,
    events: int | None = None,
    seed: int | None = None,
    force: bool = False,
    chunk_size: int | None = None,
    compression: Any = "default",
    progress: bool | None = None,
    mesons: MesonSource | None = None,
) -> GenerateResult:
    """``gammastar generate``: write NA60-like mock data (default ``<run>/mock.root``);
    :func:`gammastar.mock.generate.generate_file`."""
    from gammastar.core import rundir
    from gammastar.mock.generate import generate_file

    cfg = as_config(config)
    return generate_file(
        cfg,
        path if path is not None else cfg.output_dir / rundir.MOCK,
        events=events,
        seed=seed,
        force=force,
        chunk_size=chunk_size,
        compression=compression,
        progress=progress,
        mesons=mesons,
    )


def select(
    config: AnalysisConfig | str | os.PathLike[str],
    inputs: Iterable[str | os.PathLike[str]] | None = None,
    *,
    execution: Execution | None = None,
    skip_bad_files: bool = False,
    output: str | os.PathLike[str] | None = None,
    force: bool = False,
) -> SelectResult:
    """``gammastar select``: :func:`gammastar.selection.stage.select`."""
    from gammastar.selection.stage import select as _select

    return _select(
        as_config(config),
        inputs,
        execution=execution,
        skip_bad_files=skip_bad_files,
        output=output,
        force=force,
    )


def compute_yields(
    config: AnalysisConfig | str | os.PathLike[str],
    *,
    output: str | os.PathLike[str] | None = None,
    force: bool = False,
    plots: bool = True,
    theory: bool = True,
) -> YieldsResult:
    """``gammastar yields``: :func:`gammastar.yields.stage.compute_yields`."""
    from gammastar.yields.stage import compute_yields as _compute

    return _compute(as_config(config), output=output, force=force, plots=plots, theory=theory)


def train(
    config: AnalysisConfig | str | os.PathLike[str],
    *,
    output: str | os.PathLike[str] | None = None,
    resume: bool = False,
    force: bool = False,
    seed: int | None = None,
    progress: bool = False,
    pairs: pd.DataFrame | None = None,
    stop_after: int | None = None,
) -> TrainResult:
    """``gammastar train``: fit the conditional flow on the run directory's pairs table;
    :func:`gammastar.flow.stage.train`."""
    from gammastar.flow.stage import train as _train

    return _train(
        as_config(config),
        output=output,
        resume=resume,
        force=force,
        seed=seed,
        progress=progress,
        pairs=pairs,
        stop_after=stop_after,
    )


def validate(
    config: AnalysisConfig | str | os.PathLike[str],
    *,
    output: str | os.PathLike[str] | None = None,
    force: bool = False,
    seed: int | None = None,
    model: FlowModel | None = None,
    pairs: pd.DataFrame | None = None,
    figures: bool = True,
) -> ValidationResult:
    """``gammastar validate``: :func:`gammastar.flow.validate.validate`."""
    from gammastar.flow.validate import validate as _validate

    return _validate(
        as_config(config),
        output=output,
        force=force,
        seed=seed,
        model=model,
        pairs=pairs,
        figures=figures,
    )


def run_reach(
    config: AnalysisConfig | str | os.PathLike[str],
    *,
    force: bool = False,
    source: Source | SamplerLike | None = None,
    output: str | Path | None = None,
) -> ReachResult:
    """``gammastar reach``: :func:`gammastar.reach.stage.run_reach`."""
    from gammastar.reach.stage import run_reach as _run_reach

    return _run_reach(as_config(config), force=force, source=source, output=output)


def write_events(
    config: AnalysisConfig | str | os.PathLike[str],
    request: EventRequest,
    *,
    mass: float,
    eps: float,
    channels: tuple[str, ...] | None = None,
    decay: str = "data",
    unweighted: bool = False,
    source: Source | SamplerLike | None = None,
) -> EventsResult:
    """``gammastar events``: :func:`gammastar.events.stage.run_events` (its second argument
    an :class:`gammastar.events.stage.EventRequest`)."""
    from gammastar.events.stage import run_events

    return run_events(
        as_config(config),
        request,
        mass=mass,
        eps=eps,
        channels=channels,
        decay=decay,
        unweighted=unweighted,
        source=source,
    )


def build_report(
    config: AnalysisConfig | str | os.PathLike[str],
    *,
    output: str | os.PathLike[str] | None = None,
    force: bool = True,
) -> ReportResult:
    """``gammastar report``: :func:`gammastar.report.build_report`."""
    from gammastar.report import build_report as _build

    return _build(as_config(config), output=output, force=force)
