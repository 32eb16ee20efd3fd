"""The Python API's stage functions: one per CLI command, with the command's name.

Each takes an analysis config (or the path of its YAML file) and imports its stage on first
use, so that ``import gammastar`` stays light.
"""

from __future__ import annotations

import os
from typing import Any


def as_config(config: Any) -> Any:
    """Load ``config`` when it is a path; pass an :class:`~gammastar.config.AnalysisConfig` on."""
    if isinstance(config, str | os.PathLike):
        from gammastar.config import load_config

        return load_config(config)
    return config


def run(config: Any, *, force: tuple[str, ...] = (), report: bool = True) -> Any:
    """``gammastar run``: every stage in order, skipping those that are up to date.

    Arguments:
        config: an analysis config or the path of its YAML file.
        force: stage names to redo (``"all"`` for every stage).
        report: (re)build ``report.html``.

    Returns:
        One :class:`gammastar.pipeline.StageReport` per stage.
    """
    from gammastar import pipeline

    return pipeline.run(as_config(config), force=force, report=report)


def generate(config: Any, path: Any = None, **kwargs: Any) -> Any:
    """``gammastar generate``: write NA60-like mock data (default ``<run>/mock.root``)."""
    from gammastar.core import rundir
    from gammastar.mock.generate import generate_file

    cfg = as_config(config)
    return generate_file(cfg, path if path is not None else cfg.output_dir / rundir.MOCK, **kwargs)


def select(config: Any, *args: Any, **kwargs: Any) -> Any:
    """``gammastar select``: :func:`gammastar.selection.stage.select`."""
    from gammastar.selection.stage import select as _select

    return _select(as_config(config), *args, **kwargs)


def compute_yields(config: Any, *args: Any, **kwargs: Any) -> Any:
    """``gammastar yields``: :func:`gammastar.yields.stage.compute_yields`."""
    from gammastar.yields.stage import compute_yields as _compute

    return _compute(as_config(config), *args, **kwargs)


def train(config: Any, **kwargs: Any) -> Any:
    """``gammastar train``: fit the conditional flow on the run directory's pairs table."""
    from gammastar.flow.stage import train as _train

    return _train(as_config(config), **kwargs)


def validate(config: Any, *args: Any, **kwargs: Any) -> Any:
    """``gammastar validate``: :func:`gammastar.flow.validate.validate`."""
    from gammastar.flow.validate import validate as _validate

    return _validate(as_config(config), *args, **kwargs)


def run_reach(config: Any, *args: Any, **kwargs: Any) -> Any:
    """``gammastar reach``: :func:`gammastar.reach.stage.run_reach`."""
    from gammastar.reach.stage import run_reach as _run_reach

    return _run_reach(as_config(config), *args, **kwargs)


def write_events(config: Any, *args: Any, **kwargs: Any) -> Any:
    """``gammastar events``: :func:`gammastar.events.stage.run_events` (its second argument
    an :class:`gammastar.events.stage.EventRequest`)."""
    from gammastar.events.stage import run_events

    return run_events(as_config(config), *args, **kwargs)


def build_report(config: Any, *args: Any, **kwargs: Any) -> Any:
    """``gammastar report``: :func:`gammastar.report.build_report`."""
    from gammastar.report import build_report as _build

    return _build(as_config(config), *args, **kwargs)
