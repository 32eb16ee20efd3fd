"""The (m, ε) scan: per mass the signal's acceptance through the volume shapes, the per-mass
upper limit on the signal count (one per band) and the exclusion boundaries; the named
uncertainties' impact (:func:`scan`, :func:`scan_with`).

The scan's inputs and result are in :mod:`.settings` (:class:`~.settings.ScanSettings`,
:class:`~.settings.ScanResult`), one mass point's signal in :mod:`.mass_signal`, its limit,
ε boundaries and impact row in :mod:`.mass_limit`, the mass points on worker processes in
:mod:`.workers`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.errors import GammastarError, InputError
from gammastar.physics.channels import LEPTON_CHANNELS
from gammastar.physics.sampling import SamplerLike
from gammastar.reach.scan.mass_limit import (
    _impact_row,
    _impact_table,
    _mass_limit,
    _MassLimit,
    _point,
)
from gammastar.reach.scan.mass_signal import _MassJob, _MassSignal, _SignalInputs
from gammastar.reach.scan.settings import ScanResult, ScanSettings
from gammastar.reach.scan.workers import MassWorks
from gammastar.reach.stats import METHODS
from gammastar.reach.stats.interface import LimitResult
from gammastar.reach.stats.model import Model
from gammastar.source.production import Yields
from gammastar.source.source import Source

__all__ = ["scan", "scan_with"]


# --------------------------------------------------------------------------- scan
def _check_scan(
    limits: list[LimitResult | None],
    masses: NDArray,
    yields: Yields,
    acc_grid: NDArray,
    extrap_grid: NDArray | None,
    source: Source,
) -> None:
    """Refuse a scan with no mass point, no acceptance, or acceptance wholly extrapolated."""
    if not any(lim is not None for lim in limits):
        raise GammastarError(
            "reach: no mass point has both a yield and an open decay channel "
            f"(masses {masses[0]:g}–{masses[-1]:g} GeV, yields {yields.mass_range})"
        )
    if not np.any(acc_grid > 0):
        raise GammastarError(
            "reach: the acceptance is zero on the whole (m, eps) grid: no sampled A' reaches the "
            "detector (check the geometry, and whether the kinematic model covers the angles "
            "and energies it needs: a flow only knows the phase space of its training data)"
        )
    if (
        extrap_grid is not None
        and source.split is not None
        and source.split.inside is not None
        and not np.any(acc_grid - extrap_grid > 1e-12 * acc_grid.max())
    ):
        raise InputError(
            "detector: the acceptance lies wholly outside the data's fiducial region (every "
            "accepted A' comes from the extrapolation model, none from the data); set "
            "reach.flow: null to use the model on purpose, or change the detector"
        )


@dataclass
class _ScanTable:
    """What :func:`scan` collects mass by mass for its :class:`ScanResult`."""

    bounds: dict[str, tuple[NDArray, NDArray]]
    nsig: NDArray[np.float64]
    acceptance: NDArray[np.float64]
    extrapolated: NDArray[np.float64]
    members: NDArray[np.float64]
    """The ensemble members' acceptance, shape (members, mass, ε)."""
    labelled: bool = False
    """Whether the sampler labels extrapolated samples."""
    limits: list[LimitResult | None] = field(default_factory=list)
    limits_high: list[LimitResult | None] = field(default_factory=list)
    models: list[Model | None] = field(default_factory=list)
    seconds: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(("acceptance", "limits", "boundaries", "impact"), 0.0)
    )
    methods: set[str] = field(default_factory=set)
    kinematic: list[dict[str, Any]] = field(default_factory=list)
    extrapolation: list[dict[str, Any]] = field(default_factory=list)
    lambda_theta: list[dict[str, Any]] = field(default_factory=list)
    impact: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def empty(cls, masses: NDArray, eps: NDArray, keys: list[str], members: int) -> _ScanTable:
        """NaN boundaries for the bands ``keys``, zero grids, ``members`` ensemble rows."""
        grid = (masses.size, eps.size)
        return cls(
            bounds={k: (np.full(masses.size, np.nan), np.full(masses.size, np.nan)) for k in keys},
            nsig=np.zeros(grid),
            acceptance=np.zeros(grid),
            extrapolated=np.zeros(grid),
            members=np.zeros((members, *grid)),
        )

    def skip(self) -> None:
        """A mass point without a yield or an open channel."""
        self.limits.append(None)
        self.limits_high.append(None)
        self.models.append(None)

    def hint(self) -> float | None:
        """The last limit's −2σ expected value (``None`` before the first)."""
        return next((x.expected["-2"] for x in reversed(self.limits) if x is not None), None)

    def add_signal(self, i: int, sig: _MassSignal) -> None:
        """Mass point ``i``'s acceptance and N_sig on the ε grid."""
        self.acceptance[i], self.nsig[i] = sig.acceptance, sig.nsig_grid
        if sig.extrapolated is not None:
            self.labelled = True
            self.extrapolated[i] = sig.extrapolated

    def add_limit(self, i: int, ml: _MassLimit) -> None:
        """Mass point ``i``'s limit, boundaries, second-pass rows, methods and timings."""
        for k, (lo, hi) in ml.boundaries.items():
            self.bounds[k][0][i], self.bounds[k][1][i] = lo, hi
        for rows, row in (
            (self.kinematic, ml.kinematic),
            (self.extrapolation, ml.extrapolation),
            (self.lambda_theta, ml.lambda_theta),
        ):
            if row is not None:
                rows.append(row)
        self.methods |= ml.methods
        for k, v in ml.seconds.items():
            self.seconds[k] += v
        self.limits.append(ml.limit)
        self.limits_high.append(None if ml.high is None else ml.high[1])
        self.models.append(ml.model)

    def add_impact(self, i: int, ml: _MassLimit, sig: _MassSignal, eps: NDArray, cl: float) -> None:
        """Mass point ``i``'s impact row (:func:`_impact_row`) when its limit is finite."""
        t = time.perf_counter()
        if np.isfinite(ml.limit.expected["0"]):
            lo, hi = self.bounds["0"][0][i], self.bounds["0"][1][i]
            row = _impact_row(ml.model, ml.limit, sig, eps, lo, hi, cl)
            if ml.high is not None:  # the ε_high edge's own likelihood moves ε_high
                shifts = _impact_row(*ml.high, sig, eps, lo, hi, cl)["shifts"]
                for name, sides in row["shifts"].items():
                    for side, d in sides.items():
                        d["eps_high"] = shifts.get(name, {}).get(side, {}).get("eps_high")
            self.impact.append(row)
        self.seconds["impact"] += time.perf_counter() - t

    def result(self, masses: NDArray, eps: NDArray, ensemble: bool, workers: int) -> ScanResult:
        """The :class:`ScanResult` (``impact`` timed only where computed; ``workers``: the
        processes that computed the masses' signals)."""
        if not self.impact:
            del self.seconds["impact"]
        return ScanResult(
            masses=masses,
            eps=eps,
            limits=self.limits,
            boundaries=self.bounds,
            nsig=self.nsig,
            acceptance=self.acceptance,
            models=self.models,
            acceptance_extrapolated=self.extrapolated if self.labelled else None,
            method="+".join(sorted(self.methods)),
            seconds=self.seconds,
            impact=_impact_table(self.impact) if self.impact else None,
            acceptance_members=self.members if ensemble else None,
            kinematic=self.kinematic or None,
            extrapolation_nsig=self.extrapolation or None,
            lambda_theta_nsig=self.lambda_theta or None,
            workers=workers,
            limits_high=self.limits_high if any(x is not None for x in self.limits_high) else None,
        )


def scan(
    masses: ArrayLike,
    eps: ArrayLike,
    *,
    sampler: SamplerLike,
    settings: ScanSettings,
    ensemble: Sequence[SamplerLike] | None = None,
) -> ScanResult:
    """Expected (and observed) exclusion on a (mass, ε) grid with the efficient ε method.

    Per mass: the signal (:func:`~.mass_signal._mass_signal`), the ensemble spread, the limit and the ε
    boundaries (:func:`_mass_limit`: one pass, two with an ensemble or N_sig-level errors), the
    impact at ``settings.impact_points`` evenly spaced masses
    (:func:`gammastar.reach.impact.impact`: each nuisance fixed at ±1σ). The signals (and the
    limits of a method without a warm start) on ``settings.workers`` processes
    (:class:`~gammastar.reach.scan.workers.MassWorks`), the rest here in mass order: the
    result does not depend on the workers but through the rounding of their libraries.

    Arguments:
        masses, eps: the grid (ε sorted here).
        sampler: the nominal A′ kinematics (a :class:`~gammastar.source.source.Source` or a
            kinematics model).
        settings: the signal and statistics inputs (:class:`ScanSettings`;
            :meth:`ScanSettings.from_config` for the ``reach`` stage).
        ensemble: ≥ 2 samplers (flow ensemble members, the nominal ``sampler`` among them or
            not) whose acceptance spread (standard deviation over the members / their mean, per
            (m, ε)) enters each mass's likelihood as the signal nuisance ``kinematic_model``,
            taken at the median expected ε_high of a first pass (else ε_low) and the limit and
            boundaries recomputed with it; or ``None``.

    Returns:
        The :class:`ScanResult`.
    """
    st = settings
    masses = np.atleast_1d(np.asarray(masses, dtype=np.float64))
    eps = np.sort(np.atleast_1d(np.asarray(eps, dtype=np.float64)))
    st.check(masses)
    ensemble = list(ensemble or [])
    if len(ensemble) == 1:
        raise GammastarError("reach: a kinematic-model ensemble needs at least 2 members")
    seeds = np.random.SeedSequence(st.seed).spawn(masses.size)
    inputs = _SignalInputs(sampler, tuple(ensemble), st, eps, masses)
    source = Source.from_model(sampler)
    impact_at = set(np.linspace(0, masses.size - 1, st.impact_points).round().astype(int).tolist())
    y, rel = st.yields.at(masses)
    table = _ScanTable.empty(masses, eps, st.band_keys(), len(ensemble))
    jobs = {}
    for i, m in enumerate(masses):
        open_ch = tuple(ch for ch in st.channels if m > LEPTON_CHANNELS[ch].threshold)
        if open_ch and np.isfinite(y[i]):
            s = int(seeds[i].generate_state(1)[0])
            nuis = {k: float(np.asarray(v)[i]) for k, v in (st.signal_nuisances or {}).items()}
            mc_stat = float(rel[i]) if np.isfinite(rel[i]) else 0.0
            jobs[i] = _MassJob(i, float(m), float(y[i]), s, open_ch, nuis, mc_stat)
    # each mass's signal here or on worker processes, in mass order; its limit with it where
    # the method takes no warm start, else here, the search starting at the previous limit
    warm = st.method not in METHODS or METHODS[st.method].warm_start  # auto: may pick exact
    with MassWorks(inputs, list(jobs.values()), st.workers, limits=not warm) as works:
        done = iter(works)
        for i in range(masses.size):
            if i not in jobs:
                table.skip()
                continue
            job, work, ml = next(done)
            sig = work.signal
            table.add_signal(i, sig)
            if work.members is not None:
                table.members[:, i] = work.members
            table.seconds["acceptance"] += work.seconds
            if ml is None:
                ml = _mass_limit(sig, _point(job, work, table.hint()), masses, eps, st)
            table.add_limit(i, ml)
            if i in impact_at:
                table.add_impact(i, ml, sig, eps, st.cl)
    extrap = table.extrapolated if table.labelled else None
    _check_scan(table.limits, masses, st.yields, table.acceptance, extrap, source)
    return table.result(masses, eps, bool(ensemble), works.workers)


scan_with = scan
"""The same function as :func:`scan` (the name :func:`run_reach` and the docs use)."""
