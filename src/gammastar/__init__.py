"""gammastar: data-driven dark-photon and millicharged-particle predictions from dilepton data.

The stage functions carry the names of the CLI commands (``gammastar.select(config)``,
``gammastar.compute_yields(config)``, ...); each takes an analysis config or its YAML path.
"""

from __future__ import annotations

from gammastar._entry import (
    build_report,
    compute_yields,
    generate,
    run,
    run_reach,
    select,
    train,
    validate,
    write_events,
)
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
    "build_report",
    "compute_yields",
    "generate",
    "load_config",
    "run",
    "run_reach",
    "select",
    "train",
    "validate",
    "write_events",
]
