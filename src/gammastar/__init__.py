"""gammastar: data-driven dark-photon and millicharged-particle predictions from dilepton data."""

from __future__ import annotations

from gammastar._entry import generate, run, train
from gammastar._version import __version__
from gammastar.config import AnalysisConfig, load_config
from gammastar.errors import ConfigError, GammastarError, InputError, OutputExistsError

__all__ = [
    "AnalysisConfig",
    "ConfigError",
    "GammastarError",
    "InputError",
    "OutputExistsError",
    "__version__",
    "generate",
    "load_config",
    "run",
    "train",
]

# ``gammastar.select(config)``, ``gammastar.yields(config)``, ``gammastar.validate(config)``,
# ``gammastar.reach(config)``, ``gammastar.report(config)`` and ``gammastar.events(config, ...)`` are the stage modules, callable
# (see gammastar._api); they are imported on first use so that ``import gammastar`` stays light.
_CALLABLE_MODULES = {"select", "yields", "validate", "reach", "report", "events"}


def __getattr__(name: str) -> object:
    if name in _CALLABLE_MODULES:
        import importlib

        return importlib.import_module(f"gammastar.{name}")
    raise AttributeError(f"module 'gammastar' has no attribute {name!r}")
