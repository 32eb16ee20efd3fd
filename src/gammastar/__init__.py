"""gammastar: data-driven dark-photon and millicharged-particle predictions from dilepton data."""

from __future__ import annotations

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
    "load_config",
]
