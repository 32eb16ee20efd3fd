"""Callable stage modules of the Python API (``gammastar.select(config)``, …).

``gammastar.select``, ``gammastar.yields``, ``gammastar.validate``, ``gammastar.reach`` and
``gammastar.report`` are modules (their functions stay reachable as attributes) that can also be
called like the command of the same name: :func:`make_callable` gives such a module a
``__call__`` that runs the stage function; :func:`as_config` loads a YAML path. This module
imports no stage (the stages import it); ``gammastar.run``, ``generate`` and ``train`` are in
:mod:`gammastar._entry`.
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
