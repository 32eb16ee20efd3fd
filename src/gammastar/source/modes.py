"""Where the reach's A′ come from (``reach.production``): the registry :data:`PRODUCTIONS`.

Each :class:`Production` builds the reach's :class:`~gammastar.source.source.Source` from the
config and the data's yields, and names the run directory's subfolder its reach is written to
(``None``: the run directory itself), so that the modes' reaches stand side by side.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gammastar.core import rundir
from gammastar.source.production import Yields
from gammastar.source.recipe import recipe_source
from gammastar.source.source import Source

__all__ = ["PRODUCTIONS", "Production"]


@dataclass(frozen=True)
class Production:
    """One ``reach.production`` mode."""

    name: str
    doc: str
    build: Callable[[Any, Yields, Path], Source]
    """``(config, the data's yields, the yields.json path) → Source``."""
    subdir: str | None
    """The reach's folder inside the run directory (``None``: the run directory)."""


def _data_driven(config: Any, data: Yields, path: Path) -> Source:
    return Source.from_config(config, data)


PRODUCTIONS: dict[str, Production] = {
    p.name: p
    for p in (
        Production("data_driven", "the data's yield and kinematics (the flow, the fitted "
                   "extrapolation model outside the fiducial region)", _data_driven, None),
        Production("standard_recipe", "the generator-level recipe: meson decays, A'-V mixing, "
                   "proton bremsstrahlung with a mock file's meson spectra",
                   recipe_source, rundir.RECIPE_DIR),
    )
}  # fmt: skip
"""The ``reach.production`` modes (``config.reach.Production`` names them)."""
