"""The selection cuts in plain numbers (:class:`Cuts`: picklable, built from the config), what
:func:`gammastar.selection.chunk.select_chunk` and the mixed-event pairs apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from gammastar.config import AnalysisConfig


@dataclass(frozen=True)
class Cuts:
    """The selection cuts in plain numbers (picklable; built from ``SelectionConfig``)."""

    lepton_min_energy: float = 0.0
    lepton_theta_min: float = 0.0
    lepton_theta_max: float = np.pi
    mass_min: float = 0.0
    mass_max: float = np.inf
    pair_pt_max: float | None = None
    rapidity_min: float | None = None
    rapidity_max: float | None = None
    pair_charges: tuple[str, ...] = ("os", "pp", "mm")
    remove_eta_mumu_truth: bool = False
    mix_depth: int = 0
    """Mixed-event pairs (``background.r_factor: mixed``): each event's leptons with those of
    the next ``mix_depth`` events of the chunk; 0: none."""
    mix_pool: str = "like_sign"
    """Events whose leptons are mixed: ``like_sign`` (events with a like-sign lepton pair) or
    ``all`` (events with ≥ 1 selected lepton)."""

    @classmethod
    def from_config(cls, cfg: AnalysisConfig) -> Cuts:
        s = cfg.selection
        return cls(
            lepton_min_energy=s.lepton_min_energy,
            lepton_theta_min=s.lepton_theta_min,
            lepton_theta_max=s.lepton_theta_max,
            mass_min=s.mass_min,
            mass_max=s.mass_max,
            pair_pt_max=s.pair_pt_max,
            rapidity_min=s.rapidity_min,
            rapidity_max=s.rapidity_max,
            pair_charges=tuple(s.pair_charges),
            remove_eta_mumu_truth=cfg.background.remove_eta_mumu == "truth",
            mix_depth=cfg.background.mixing_depth if cfg.background.r_factor == "mixed" else 0,
            mix_pool=cfg.background.mixing_pool,
        )
