"""Entry points of the Python API that mirror the CLI: ``gammastar.run``, ``generate``, ``train``.

Every function accepts a config object or a YAML path (:func:`gammastar._api.as_config`) and
imports its stage on first use, so that ``import gammastar`` stays light.
"""

from __future__ import annotations

from typing import Any

from gammastar._api import as_config


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
    from gammastar import rundir
    from gammastar.mock import generate_file

    cfg = as_config(config)
    return generate_file(cfg, path if path is not None else cfg.output_dir / rundir.MOCK, **kwargs)


def train(config: Any, **kwargs: Any) -> Any:
    """``gammastar train``: fit the conditional flow on the run directory's pairs table."""
    from gammastar.flow import train as _train

    return _train(as_config(config), **kwargs)
