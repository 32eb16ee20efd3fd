"""What the (m, ε) scan takes and gives: :class:`ReachInputs` (what the ``reach`` stage reads
and resolves), :class:`ScanSettings` (the signal inputs and the per-mass statistics, from the
config) and :class:`ScanResult` (everything :func:`gammastar.reach.scan.scan` computes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.config import AnalysisConfig
from gammastar.errors import GammastarError
from gammastar.physics import darkphoton
from gammastar.reach.signal import MassModelSettings
from gammastar.reach.stats.interface import BANDS, LimitResult
from gammastar.reach.stats.model import Model
from gammastar.source.geometry import Geometry
from gammastar.source.production import Yields
from gammastar.source.source import Source

__all__ = ["ReachInputs", "ScanResult", "ScanSettings"]


@dataclass
class ScanResult:
    """Everything :func:`~gammastar.reach.scan.scan` computes."""

    masses: NDArray[np.float64]
    eps: NDArray[np.float64]
    limits: list[LimitResult | None]
    boundaries: dict[str, tuple[NDArray, NDArray]]
    """band ("-2" … "+2", "obs", "events_2.3", …) → (eps_low, eps_high) arrays."""
    nsig: NDArray[np.float64]
    """Total expected signal on the (mass, ε) grid."""
    acceptance: NDArray[np.float64]
    models: list[Model | None]
    method: str
    seconds: dict[str, float]
    acceptance_extrapolated: NDArray[np.float64] | None = None
    """The part of ``acceptance`` from samples outside the data's fiducial region (a model);
    ``None`` when the sampler labels none."""
    impact: dict[str, Any] | None = None
    """Each nuisance fixed at ±1σ at a few masses (:func:`gammastar.reach.impact.impact`)."""
    acceptance_members: NDArray[np.float64] | None = None
    """The ensemble members' acceptance, shape (members, mass, ε); ``None`` without one."""
    kinematic: list[dict[str, Any]] | None = None
    """Per mass: the ``kinematic_model`` size used and the spread at ε_low / ε_high."""
    extrapolation_nsig: list[dict[str, Any]] | None = None
    """Per mass: the ``extrapolation`` size used, the fit's error carried to N_sig
    (:func:`~gammastar.reach.scan.mass_signal._extrapolation_rel`) at ε_low / ε_high, with
    its two sides ``up`` and ``down``."""
    lambda_theta_nsig: list[dict[str, Any]] | None = None
    """Per mass, ``acceptance_lambda_theta`` at N's level as the scan used it
    (:func:`~gammastar.reach.scan.mass_signal._lambda_rel`; ``rel_yield`` the yield's size)."""
    workers: int = 1
    """The processes that computed the masses' signals (1: the scan's own;
    :class:`~gammastar.reach.scan.workers.MassWorks`)."""
    limits_high: list[LimitResult | None] | None = None
    """Per mass, the ε_high edge's limit where its per-ε nuisances' sizes differ from the
    ε_low edge's (``None`` there otherwise; :func:`~gammastar.reach.scan.mass_limit._sizes_at`):
    ``limits`` then solves ε_low only."""


@dataclass(frozen=True)
class ScanSettings:
    """What :func:`~gammastar.reach.scan.scan` needs besides the grids and the samplers: the
    signal inputs and the per-mass statistics (:meth:`from_config` builds it for the ``reach``
    stage).

    The statistics inputs (``background``, ``background_kappa``, ``n_pot_unc``,
    ``efficiency_uncertainty``) have no defaults; they, ``channels``, the signal window and
    ``dark`` are :class:`MassModelSettings`'s (:meth:`model_settings`).
    """

    geometry: Geometry
    """The detector (:mod:`gammastar.source.geometry`)."""
    yields: Yields
    """The A′ yield per POT per ε² (``yields.json``)."""
    n_pot: float
    """Protons on target of the search (with the yield scale applied)."""
    background: Mapping[str, float]
    background_kappa: Mapping[str, float]
    n_pot_unc: float
    efficiency_uncertainty: float
    channels: tuple[str, ...] = ("mumu",)
    observed: Mapping[str, ArrayLike] | None = None
    """Per channel one count for every mass point, or an array with one entry (a count, or the
    counts per mass bin) per mass point (:func:`observed_counts` makes it from the config);
    ``None``: expected limits only."""
    cl: float = 0.9
    method: str = "auto"
    """The statistical method (:data:`gammastar.reach.stats.METHODS`)."""
    ntoys: int = 500
    samples: int = 20_000
    """A′ samples drawn per mass (and per channel whose daughters the detector cuts on)."""
    seed: int | None = 0
    template: str = "counting"
    mass_resolution: float | None = None
    window_sigmas: float = 3.0
    mass_bins: int = 6
    event_lines: tuple[float, ...] = (2.3, 3.0)
    """Signal counts whose N_sig contours are drawn as well (``events_<n>``)."""
    dark: darkphoton.DarkSector | None = None
    signal_nuisances: Mapping[str, ArrayLike] | None = None
    """Per name the relative signal-rate uncertainty at each mass
    (:func:`gammastar.yields.nuisance.at_masses`)."""
    impact_points: int = 0
    """At that many evenly spaced masses, each nuisance fixed at ±1σ
    (:func:`gammastar.reach.impact.impact`)."""
    lambda_refits: Mapping[str, Any] | None = None
    """``yields.json`` ``uncertainties.lambda_theta_refits``: the measured λ_θ's moves, which
    the scan carries to N_sig (``acceptance_lambda_theta`` at N's level, as ``extrapolation``)
    where the sampler extrapolates; ``None``: the yield's size."""
    workers: int | Literal["auto"] = 1
    """Processes computing the mass points' signals, this one among them (``reach.workers``;
    1: this one; ``auto``: as many as repay their start, within the usable CPUs,
    :class:`~gammastar.reach.scan.workers.MassWorks`). The results do not depend on it."""

    @classmethod
    def from_config(cls, config: AnalysisConfig, inputs: ReachInputs) -> ScanSettings:
        """The ``reach`` section (and ``seed``, ``uncertainties.impact_masses``) as scan settings.

        Arguments:
            config: the :class:`~gammastar.config.AnalysisConfig`.
            inputs: what :func:`reach_inputs` read and resolved for it.
        """
        rc = config.reach
        stated = (rc.background, rc.background_kappa, rc.n_pot_rel_uncertainty,
                  rc.efficiency_uncertainty)  # fmt: skip
        if stated[0] is None or stated[1] is None or stated[2] is None or stated[3] is None:
            raise GammastarError(  # reach.stage.check_config refuses such a config first
                "reach: background, background_kappa, n_pot_rel_uncertainty and "
                "efficiency_uncertainty must be stated (docs/reference/config.md)"
            )
        return cls(
            geometry=inputs.geometry,
            yields=inputs.yields,
            n_pot=inputs.n_pot * inputs.yield_scale,
            channels=tuple(rc.channels),
            background=stated[0],
            background_kappa=stated[1],
            observed=inputs.observed,
            n_pot_unc=stated[2],
            efficiency_uncertainty=stated[3],
            cl=rc.cl,
            method=rc.method,
            ntoys=rc.ntoys,
            samples=rc.samples,
            seed=config.seed,
            template=rc.template,
            mass_resolution=rc.mass_resolution,
            window_sigmas=rc.mass_window_sigmas,
            mass_bins=rc.mass_bins,
            event_lines=tuple(rc.event_lines),
            dark=inputs.dark,
            signal_nuisances=inputs.nuisances,
            impact_points=config.uncertainties.impact_masses if inputs.nuisances is not None else 0,
            lambda_refits=(inputs.yields.uncertainties or {}).get("lambda_theta_refits")
            if "acceptance_lambda_theta" in (inputs.nuisances or {})
            else None,
            workers=rc.workers,
        )

    def check(self, masses: NDArray) -> None:
        """Refuse a channel without background inputs, or observed counts of the wrong length.

        Raises:
            GammastarError: naming the ``reach`` key.
        """
        for key, given in (
            ("background", self.background),
            ("background_kappa", self.background_kappa),
        ):
            lost = [ch for ch in self.channels if ch not in given]
            if lost:
                raise GammastarError(f"reach.{key}: nothing given for channel {lost[0]!r}")
        for ch, v in (self.observed or {}).items():
            if np.ndim(v) >= 1 and np.shape(v)[0] != masses.size:
                raise GammastarError(
                    f"reach.observed.{ch}: {np.shape(v)[0]} entries for {masses.size} masses"
                )

    def model_settings(self, channels: tuple[str, ...]) -> MassModelSettings:
        """The per-mass likelihood's settings (:func:`~gammastar.reach.signal.mass_model`) for
        the open ``channels``."""
        return MassModelSettings(
            channels=channels,
            background={ch: self.background[ch] for ch in channels},
            background_kappa=self.background_kappa,
            n_pot_unc=self.n_pot_unc,
            efficiency_uncertainty=self.efficiency_uncertainty,
            template=self.template,
            mass_resolution=self.mass_resolution,
            window_sigmas=self.window_sigmas,
            mass_bins=self.mass_bins,
            dark=self.dark,
        )

    def band_keys(self) -> list[str]:
        """The boundaries a scan draws: the expected bands, ``obs``, ``events_<n>``."""
        obs = ["obs"] if self.observed else []
        return [*BANDS, *obs, *(f"events_{v:g}" for v in self.event_lines)]



@dataclass
class ReachInputs:
    """What the ``reach`` stage reads and resolves before the scan (:func:`reach_inputs`)."""

    output: Path
    yields_path: Path
    yields: Yields
    yield_scale: float
    yield_scale_info: dict[str, Any]
    n_pot: float
    """The facility's protons on target (before the yield scale)."""
    source: Source
    """The A′ production (the yields above and the kinematics, :class:`Source`)."""
    geometry: Geometry
    masses: NDArray[np.float64]
    eps: NDArray[np.float64]
    observed: dict[str, NDArray] | None
    dark: darkphoton.DarkSector | None
    nuisances: dict[str, NDArray] | None
    nuisance_record: dict[str, Any] | None
    ensemble: list[Source] | None
    ensemble_seeds: list[int] | None
