"""What the data predict is produced, at any mass: the A′ yield per proton on target read from
``yields.json`` (:class:`Yields`, :func:`load_yields`), its scale to a facility's target
(:func:`resolve_yield_scale`) and the A′ kinematics sampler of a config
(:func:`sampler_from_config`: the flow inside the fiducial region, the labelled extrapolation
model outside it). The reach, ``gammastar acceptance`` and ``gammastar events`` build their
source here.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.core import rundir
from gammastar.corrections.pair_acceptance import FiducialRegion
from gammastar.errors import ConfigError, InputError
from gammastar.physics.sampling import ParametricSampler, SamplerLike
from gammastar.physics.target import yield_scale
from gammastar.yields.extrapolation import ExtrapolatedSampler, Extrapolation
from gammastar.yields.uncertainties import read_uncertainties

__all__ = [
    "Yields",
    "check_refuse",
    "ensemble_samplers",
    "load_yields",
    "resolve_yield_scale",
    "sampler_from_config",
]

log = logging.getLogger(__name__)

KINEMATIC_MEMBERS_ADVISED = 10
"""Members (replicas with ``flow.bootstrap``) below which the reach warns that the
``kinematic_model`` size is poorly measured: the standard deviation of k draws is uncertain by
1/√(2(k − 1)), ±24% at 10, and a few replicas can quote a far smaller spread than flows of
independent mock realisations show (docs/coverage.md)."""
@dataclass
class Yields:
    """A′ yield per POT per ε² (``yields.json`` contract)."""

    mass: NDArray[np.float64]
    per_pot_per_eps2: NDArray[np.float64]
    stat_err: NDArray[np.float64]
    meta: dict[str, Any]
    extrapolation: dict[str, Any] | None = None
    """``yields.json`` ``extrapolation`` (fiducial-region yields), else ``None``."""
    uncertainties: dict[str, Any] | None = None
    """``yields.json`` ``uncertainties`` (:func:`gammastar.yields.uncertainties.read_uncertainties`),
    else ``None``."""

    def __post_init__(self) -> None:
        good = np.isfinite(self.per_pot_per_eps2) & (self.per_pot_per_eps2 > 0)
        good &= np.isfinite(self.mass)
        if not np.any(good):
            raise InputError("yields: no positive finite A' yield per POT per eps^2")
        order = np.argsort(self.mass[good])
        self._m = self.mass[good][order]
        self._y = self.per_pot_per_eps2[good][order]
        err = np.where(np.isfinite(self.stat_err[good]), self.stat_err[good], 0.0)[order]
        self._rel = err / self._y

    @property
    def mass_range(self) -> tuple[float, float]:
        return float(self._m[0]), float(self._m[-1])

    def at(self, m: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Yield and relative statistical error at ``m`` (log-linear interpolation between the
        two nearest bins, ln y = (1 − t) ln y₁ + t ln y₂; NaN outside).

        The bins' counts are independent, so the interpolated value's relative error is
        √((1 − t)² r₁² + t² r₂²), not the interpolated (1 − t) r₁ + t r₂ (up to √2
        too large between bins, docs/reach.md).

        Example:
            >>> y = Yields(np.array([1.0, 2.0]), np.array([4.0, 4.0]), np.array([0.4, 0.4]), {})
            >>> [round(float(v), 4) for v in y.at([1.0, 1.5])[1]]
            [0.1, 0.0707]
        """
        m = np.asarray(m, dtype=np.float64)
        inside = (m >= self._m[0]) & (m <= self._m[-1])
        y = np.exp(np.interp(m, self._m, np.log(self._y)))
        if self._m.size == 1:
            rel = np.full(m.shape, self._rel[0])
        else:
            j = np.clip(np.searchsorted(self._m, m, side="right"), 1, self._m.size - 1)
            m0, m1 = self._m[j - 1], self._m[j]
            t = np.clip((m - m0) / (m1 - m0), 0.0, 1.0)
            rel = np.hypot((1.0 - t) * self._rel[j - 1], t * self._rel[j])
        return np.where(inside, y, np.nan), np.where(inside, rel, np.nan)


def load_yields(path: str | Path, *, fiducial: bool = False) -> Yields:
    """Read ``yields.json`` (contract: ``aprime.mass``, ``aprime.per_pot_per_eps2``,
    ``aprime.stat_err``, ``meta.n_pot``; with ``fiducial``, the fiducial-region yield
    ``per_pot_per_eps2_fiducial``, ``stat_err_fiducial``).

    Raises:
        GammastarError: missing file, unknown schema, missing key or inconsistent lengths.
    """
    # the schema version and the yields.json schema checked (gammastar.core.rundir)
    data = rundir.read_artifact(path, rundir.schema_of(rundir.YIELDS), what="yields file")
    sfx = "_fiducial" if fiducial else ""
    try:
        ap = data["aprime"]
        arrays = [
            np.asarray([np.nan if v is None else v for v in ap[k]], dtype=np.float64)
            for k in ("mass", f"per_pot_per_eps2{sfx}", f"stat_err{sfx}")
        ]
    except (KeyError, TypeError) as err:
        raise InputError(f"{path}: yields file lacks aprime.{err}") from None
    except ValueError as err:
        raise InputError(f"{path}: non-numeric yields ({err})") from None
    if not (arrays[0].size == arrays[1].size == arrays[2].size) or arrays[0].size == 0:
        raise InputError(f"{path}: aprime.mass, per_pot_per_eps2 and stat_err differ in length")
    try:

        return Yields(
            *arrays,
            meta=dict(data.get("meta", {})),
            extrapolation=data.get("extrapolation"),
            uncertainties=read_uncertainties(data, source=str(path)) or None,
        )
    except InputError as err:
        raise InputError(f"{path}: {err}") from None


def sampler_from_config(
    cfg: Any, yields: Yields | None = None, *, base: Any = None
) -> tuple[SamplerLike, str]:
    """The A′ kinematics of the reach: the flow (``reach.flow``), inside the yields' fiducial
    region when they have one, with the fitted model outside it (``reach.extrapolation:
    label``); without a flow the analytic sampler (the fitted model when there is one).

    The one place that builds the reach's sampler from the yields (the reach, ``gammastar
    acceptance`` and ``gammastar events`` via :mod:`gammastar.source.setup`). A both-channels
    run's ``extrapolation.seam``: the flow alone below it (full phase space, nothing
    labelled), flow inside / model outside the fiducial region from it up."""
    rc = cfg.reach
    ex = None if yields is None else yields.extrapolation
    given, base, desc = base, None, "parametric (physics.md §3.2 defaults)"
    if given is not None:  # a flow ensemble member (gammastar.yields.uncertainties)
        base, desc = given, "flow ensemble member"
    elif rc.flow is not None:
        from gammastar import flow  # torch: only when a flow is used

        path = cfg.resolve(rc.flow)
        base, desc = flow.load(path), str(path)
    if ex is None:
        return (base if base is not None else ParametricSampler()), desc

    if rc.extrapolation == "refuse":
        if base is None:
            raise ConfigError(
                f"{cfg.source or 'config'}: reach.extrapolation: 'refuse' needs reach.flow "
                "(without a flow every sample would come from the extrapolation model)"
            )
        return base, f"{desc} (fiducial region only: reach.extrapolation refuse)"
    extrap = Extrapolation.from_dict(ex)
    region = FiducialRegion.from_dict(ex["fiducial"])
    label = f"{ex.get('model', 'model')} fitted to the fiducial data"
    seam = ex.get("seam")  # a both-channels run: full phase space below (docs/yields.md)
    if base is None:
        below = (
            ""
            if seam is None
            else (f" from the seam m = {float(seam):g} GeV up, physics.md defaults below")
        )
        return ExtrapolatedSampler(None, extrap, region, seam=seam), (
            f"{label} (everywhere: no flow){below}"
        )
    where = "" if seam is None else f" from the seam m = {float(seam):g} GeV up, alone below"
    return ExtrapolatedSampler(
        base, extrap, region, seam=seam
    ), f"{desc} inside the fiducial region{where}; {label} outside"


def check_refuse(config: Any, yields: Yields) -> None:
    """Refuse ``reach.extrapolation: refuse`` on a both-channels run's yields (stitched at
    ``extrapolation.seam``: the combined yield has no fiducial-region-only part).

    Raises:
        ConfigError: one line naming ``reach.extrapolation``.
    """
    ex = yields.extrapolation or {}
    if ex.get("seam") is not None:
        raise ConfigError(
            f"{config.source or '<config>'}: reach.extrapolation: 'refuse' does not apply to a "
            f"both-channels run's yields (full phase space below the seam m = "
            f"{float(ex['seam']):g} GeV, extrapolated from the {ex.get('channel')} fiducial "
            "region above); use 'label'"
        )


def resolve_yield_scale(config: Any, yields: Yields) -> tuple[float, dict[str, Any]]:
    """The factor on the data's yield per POT for the reach's facility, and how it was made.

    ``reach.target_interaction_lengths`` (the facility's target) against the data's target:
    ``yields.json`` ``meta.target_interaction_lengths`` (what the yields stage used) or, for a
    yields file without it, the config's ``beam.interaction_lengths`` when given explicitly.
    Scale = P_int(facility)/P_int(data) (:func:`gammastar.physics.target.yield_scale`);
    ``reach.yield_scale`` given instead is taken as is.

    Raises:
        ConfigError: the data's target thickness is unknown, or the config's
            ``beam.interaction_lengths`` contradicts the one recorded with the yields.
    """

    rc, beam = config.reach, config.beam
    src = config.source or "<config>"
    if rc.yield_scale is not None:
        return float(rc.yield_scale), {"yield_scale_source": "config: reach.yield_scale"}
    facility = rc.target_interaction_lengths
    if facility == "data":
        return 1.0, {
            "yield_scale_source": "reach.target_interaction_lengths: data (the data's target)",
            "target_interaction_lengths": "data",
        }
    recorded = yields.meta.get("target_interaction_lengths")
    given = "interaction_lengths" in beam.model_fields_set
    if recorded is not None:
        if not (isinstance(recorded, int | float) and recorded > 0):
            raise InputError(
                f"{rc.yields}: meta.target_interaction_lengths {recorded!r} is not > 0"
            )
        if given and not math.isclose(beam.interaction_lengths, recorded, rel_tol=1e-9):
            raise ConfigError(
                f"{src}: beam.interaction_lengths ({beam.interaction_lengths:g}) differs from the "
                f"target of the yields ({recorded:g} λ_I in {rc.yields}); `beam` describes the "
                "data, the facility's target is reach.target_interaction_lengths"
            )
        data_l, data_src = float(recorded), "yields.json meta.target_interaction_lengths"
    elif given:
        data_l, data_src = float(beam.interaction_lengths), "config: beam.interaction_lengths"
    else:
        raise ConfigError(
            f"{src}: beam.interaction_lengths: not given, and {rc.yields} does not record the "
            "target of its yields; state the data's target thickness (interaction lengths)"
        )
    return yield_scale(facility, data_l), {
        "yield_scale_source": (
            f"P_int(reach.target_interaction_lengths = {facility}) / P_int({data_l:g} λ_I, "
            f"{data_src}), P_int(L) = 1 - exp(-L)"
        ),
        "target_interaction_lengths": facility,
        "data_target_interaction_lengths": data_l,
    }


def ensemble_samplers(
    config: Any, yields: Any, nominal: Any, wrap: Any = None
) -> tuple[list[Any], list[Any]]:
    """The A′ samplers of the flow ensemble of ``reach.flow`` (``flow/`` and
    ``flow/ensemble/<i>/``), each wrapped like the nominal one by ``wrap(config, yields,
    base=model)`` (the reach's ``sampler_from_config``: the fitted extrapolation outside the
    fiducial region; passed in, the reach imports this module), and the members' seeds. With
    a bootstrapped ensemble (``flow.bootstrap``) only the replicas (members ≥ 1), whose spread
    is the nominal fit's error.

    Raises:
        ConfigError: ``reach.flow`` is not a flow, or its ensemble has fewer than 2 members.
    """
    from gammastar import flow  # torch: only when a flow is used

    src = config.source or "<config>"
    if config.reach.flow is None:
        raise ConfigError(
            f"{src}: uncertainties.kinematic_model: needs reach.flow (a flow ensemble), "
            "not the analytic sampler"
        )
    path = config.resolve(config.reach.flow)
    ens = flow.load_ensemble(path)
    if len(ens) < 2:
        raise ConfigError(
            f"{src}: uncertainties.kinematic_model: the flow ensemble of {path} has "
            f"{len(ens)} member; train >= 2 (flow.ensemble) for its spread"
        )
    boot = [bool(m.meta.get("meta", {}).get("bootstrap")) for m in ens.models]
    if any(boot):
        # Poisson-bootstrap replicas (flow.bootstrap): their spread estimates the nominal fit's
        # error; the nominal (member 0, no resample) sits at their centre and would shrink it
        replicas = [m for m, b in zip(ens.models, boot, strict=True) if b]
        if len(replicas) < 2:
            raise ConfigError(
                f"{src}: uncertainties.kinematic_model: the flow ensemble of {path} has "
                f"{len(replicas)} bootstrap replica; train >= 3 members (flow.ensemble) with "
                "flow.bootstrap for its spread"
            )
        out = [wrap(config, yields, base=m)[0] for m in replicas]
        _warn_few_members(path, len(out))
        return out, [m.meta.get("meta", {}).get("seed") for m in replicas]
    out, seeds = [nominal], []
    for k, model in enumerate(ens.models):
        seeds.append(model.meta.get("meta", {}).get("seed"))
        if k > 0:
            out.append(wrap(config, yields, base=model)[0])
    _warn_few_members(path, len(out))
    return out, seeds


def _warn_few_members(path: Any, k: int) -> None:
    """Log a warning when the ``kinematic_model`` spread is taken over fewer than
    :data:`KINEMATIC_MEMBERS_ADVISED` members (its own relative error 1/√(2(k − 1)))."""
    if k < KINEMATIC_MEMBERS_ADVISED:
        log.warning(
            "uncertainties.kinematic_model: the spread over the %d members of %s is itself "
            "uncertain by ±%.0f%% (1/sqrt(2(k-1))); train >= %d (flow.ensemble) for ±%.0f%%",
            k, path, 100 / math.sqrt(2 * (k - 1)), KINEMATIC_MEMBERS_ADVISED,
            100 / math.sqrt(2 * (KINEMATIC_MEMBERS_ADVISED - 1)),
        )  # fmt: skip
