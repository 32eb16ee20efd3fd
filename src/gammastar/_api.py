"""The Python API mirrors the CLI: ``gammastar.run(config)``, ``gammastar.select(config)``, …

``gammastar.select``, ``gammastar.yields``, ``gammastar.validate``, ``gammastar.reach`` and
``gammastar.report`` are modules (their functions stay reachable as attributes) that can also be
called like the command of the same name: :func:`make_callable` gives such a module a
``__call__`` that runs the stage function. Every stage accepts a config object or a YAML path.
"""

from __future__ import annotations

import os
import sys
import types
from typing import Any


def as_config(config: Any) -> Any:
    """Load ``config`` when it is a path; pass an :class:`~gammastar.config.AnalysisConfig` on."""
    if isinstance(config, str | os.PathLike):
        from gammastar.config import load_config

        return load_config(config)
    return config


class _StageModule(types.ModuleType):
    """A module that, called, runs its stage function (``__stage_function__``)."""

    __stage_function__: str

    def __call__(self, config: Any, *args: Any, **kwargs: Any) -> Any:
        return getattr(self, self.__stage_function__)(as_config(config), *args, **kwargs)


def make_callable(module_name: str, function: str) -> None:
    """Make the module ``module_name`` callable as its stage function ``function``."""
    module = sys.modules[module_name]
    module.__class__ = _StageModule
    module.__stage_function__ = function  # type: ignore[attr-defined]


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
