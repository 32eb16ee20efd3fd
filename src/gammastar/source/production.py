"""What the data predict is produced, at any mass: the A′ yield per proton on target read from
``yields.json`` (:class:`Yields`, :func:`load_yields`) and its scale to a facility's target
(:func:`resolve_yield_scale`: the target thickness through P_int and, with ``reach.target``,
the nucleus through an A-dependence whose error is the reach's nuisance ``target_a_dependence``,
:func:`with_target_nuisance`) and, for yields of a mock run, the cocktail normalisation's
uncertainty, the nuisance ``mock_normalisation`` (:func:`with_mock_nuisance`). The yields and the kinematics together are a
:class:`gammastar.source.source.Source`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.config import AnalysisConfig
from gammastar.config.reach import FacilityTarget
from gammastar.core import rundir
from gammastar.errors import ConfigError, InputError
from gammastar.physics.target import nucleus_scale, nucleus_scale_rel_err, yield_scale
from gammastar.yields.nuisance import CORRELATED, NUISANCE_KIND, read_uncertainties

__all__ = [
    "MOCK_NUISANCE",
    "TARGET_NUISANCE",
    "Yields",
    "check_refuse",
    "load_yields",
    "resolve_yield_scale",
    "with_mock_nuisance",
    "with_target_nuisance",
]

TARGET_NUISANCE = "target_a_dependence"
"""Name of the reach's nuisance for the error of the A-dependence exponent (``reach.target``)."""

MOCK_NUISANCE = "mock_normalisation"
"""Name of the reach's nuisance for the mock cocktail's normalisation (yields of a mock run)."""


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
    """``yields.json`` ``uncertainties`` (:func:`gammastar.yields.nuisance.read_uncertainties`),
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
        too large between bins, docs/explanation/reach.md).

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
            arrays[0],
            arrays[1],
            arrays[2],
            meta=dict(data.get("meta", {})),
            extrapolation=data.get("extrapolation"),
            uncertainties=read_uncertainties(data, source=str(path)) or None,
        )
    except InputError as err:
        raise InputError(f"{path}: {err}") from None


def check_refuse(config: AnalysisConfig, yields: Yields) -> None:
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


def resolve_yield_scale(config: AnalysisConfig, yields: Yields) -> tuple[float, dict[str, Any]]:
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
    if facility is None:
        raise ConfigError(
            f"{src}: reach.target_interaction_lengths: not given (nor reach.yield_scale); state "
            "the facility's target thickness in interaction lengths, dump or data"
        )
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
    scale = yield_scale(facility, data_l)
    info: dict[str, Any] = {
        "yield_scale_source": (
            f"P_int(reach.target_interaction_lengths = {facility}) / P_int({data_l:g} λ_I, "
            f"{data_src}), P_int(L) = 1 - exp(-L)"
        ),
        "target_interaction_lengths": facility,
        "data_target_interaction_lengths": data_l,
    }
    if rc.target is not None:
        a_scale, a_info = _nucleus_part(config, rc.target)
        scale *= a_scale
        info["yield_scale_source"] += f" x {a_info['formula']}"
        info["target_nucleus"] = a_info
    return scale, info


def _nucleus_part(config: AnalysisConfig, tgt: FacilityTarget) -> tuple[float, dict[str, Any]]:
    """The A-dependence factor of ``reach.target`` (``tgt``) and its record (``reach.json``
    meta ``target_nucleus``).

    Raises:
        ConfigError: the data's ``beam.target_mass_number`` or ``beam.sigma_inel_mb`` is not
            stated in the config.
    """
    beam = config.beam
    src = config.source or "<config>"

    def stated(key: str) -> float:
        value = getattr(beam, key) if key in beam.model_fields_set else None
        if value is None:
            raise ConfigError(
                f"{src}: beam.{key}: not given; reach.target carries the yield from the data's "
                "nucleus to the facility's, so state the data's target (mass number A and "
                "inelastic cross section in mb)"
            )
        return float(value)

    a_d, s_d = stated("target_mass_number"), stated("sigma_inel_mb")
    factor = nucleus_scale(tgt.mass_number, tgt.sigma_inel_mb, a_d, s_d, tgt.a_exponent)
    rel = nucleus_scale_rel_err(tgt.mass_number, a_d, tgt.a_exponent_err)
    return factor, {
        "formula": (
            f"(A_f/A_d)^alpha sigma_inel(A_d)/sigma_inel(A_f) = ({tgt.mass_number:g}/{a_d:g})"
            f"^{tgt.a_exponent:g} x {s_d:g}/{tgt.sigma_inel_mb:g} mb = {factor:.6g}"
        ),
        "factor": factor,
        "material": tgt.material,
        "mass_number": tgt.mass_number,
        "sigma_inel_mb": tgt.sigma_inel_mb,
        "data_target": beam.target,
        "data_mass_number": a_d,
        "data_sigma_inel_mb": s_d,
        "a_exponent": tgt.a_exponent,
        "a_exponent_err": tgt.a_exponent_err,
        "a_exponent_origin": tgt.a_exponent_origin,
        "rel_err": rel,
        "not_modelled": (
            "cascade (secondary) production in a thick dump; absorption of the produced "
            "parents in the dump beyond P_int; the spread of production points along the "
            "dump; the A-dependence of the kinematics (one alpha for the integrated yield)"
        ),
    }


def with_target_nuisance(
    nuisances: dict[str, NDArray[np.float64]] | None,
    record: dict[str, Any] | None,
    scale_info: dict[str, Any],
    masses: ArrayLike,
) -> tuple[dict[str, NDArray[np.float64]] | None, dict[str, Any] | None]:
    """The reach's named signal nuisances with :data:`TARGET_NUISANCE` added where the yield
    scale has an A-dependence (``scale_info["target_nucleus"]`` from
    :func:`resolve_yield_scale`): a log-normal normsys of relative size
    exp(|ln(A_f/A_d)| σ_α) − 1, the same at every mass, one parameter shared by the channels.

    Arguments:
        nuisances, record: :func:`gammastar.yields.nuisance.reach_nuisances`'s output
            (``None, None`` with ``uncertainties.enabled: false``: the A-dependence is then
            the only named nuisance).
        scale_info: the second value of :func:`resolve_yield_scale`.
        masses: the scan's masses (GeV).

    Returns:
        ``(nuisances, record)``, unchanged without an A-dependence.
    """
    nucleus = scale_info.get("target_nucleus")
    if nucleus is None:
        return nuisances, record
    origin = (
        f"reach.target: A-dependence exponent alpha = {nucleus['a_exponent']:g} +- "
        f"{nucleus['a_exponent_err']:g} ({nucleus['a_exponent_origin']}), "
        f"{nucleus['data_target']} (A = {nucleus['data_mass_number']:g}) -> "
        f"{nucleus['material']} (A = {nucleus['mass_number']:g}): "
        "exp(|ln(A_f/A_d)| sigma_alpha) - 1"
    )
    return _with_signal_normsys(
        nuisances, record, masses, TARGET_NUISANCE, float(nucleus["rel_err"]), origin
    )


def _with_signal_normsys(
    nuisances: dict[str, NDArray[np.float64]] | None,
    record: dict[str, Any] | None,
    masses: ArrayLike,
    name: str,
    rel: float,
    origin: str,
) -> tuple[dict[str, NDArray[np.float64]], dict[str, Any]]:
    """``nuisances`` and their ``reach.json`` ``record`` with the nuisance ``name``: a
    log-normal normsys of relative size ``rel`` on the signal, the same at every mass, one
    parameter shared by the channels (``origin``: where ``rel`` comes from)."""
    m = np.atleast_1d(np.asarray(masses, dtype=float))
    out = dict(nuisances or {})
    out[name] = np.full(m.shape, rel)
    rec = dict(record) if record is not None else {"mass": m.tolist(), "nuisances": {}}
    rec["nuisances"] = {
        **rec.get("nuisances", {}),
        name: {
            "kind": NUISANCE_KIND,
            "rel": [rel] * m.size,
            "origin": origin,
            "correlation": CORRELATED,
            "modifier": "normsys on the signal of every channel, hi = 1 + rel, lo = 1/(1 + rel)",
        },
    }
    return out, rec


def with_mock_nuisance(
    nuisances: dict[str, NDArray[np.float64]] | None,
    record: dict[str, Any] | None,
    yields_meta: dict[str, Any],
    masses: ArrayLike,
) -> tuple[dict[str, NDArray[np.float64]] | None, dict[str, Any] | None]:
    """The reach's named signal nuisances with :data:`MOCK_NUISANCE` added where the yields
    are a mock run's, normalised by its N_POT (``yields.json`` ``meta.mock_normalisation``
    with a ``rel_uncertainty``): the yield per POT is ∝ ⟨n_ω⟩ per collision, whose relative
    uncertainty (⟨n_ω⟩_pp, σ_inel(pp), α_ω: :func:`gammastar.cocktail_inputs.n_omega_rel_uncertainty`)
    becomes a log-normal normsys hi = 1 + r, lo = 1/(1 + r), the same at every mass, one
    parameter shared by the channels. Absent for real data (no record), an explicit
    ``mock.n_omega_per_collision`` (``rel_uncertainty`` null) or r = 0.

    Arguments:
        nuisances, record: the nuisances so far and their ``reach.json`` record (``None``:
            none yet).
        yields_meta: ``yields.json`` ``meta``.
        masses: the scan's masses (GeV).

    Returns:
        ``(nuisances, record)``, unchanged without a mock normalisation uncertainty.
    """
    norm = yields_meta.get("mock_normalisation")
    if not isinstance(norm, dict):
        return nuisances, record
    rel = norm.get("rel_uncertainty")
    if rel is None or not float(rel) > 0:
        return nuisances, record
    origin = (
        f"mock cocktail normalisation: <n_omega> = {norm['n_omega_per_collision']:.4g} "
        f"per p + {norm.get('target', '?')} collision ({norm.get('origin', '')}); the "
        "relative uncertainty of <n_omega>_pp, sigma_inel(pp) and alpha_omega "
        "(gammastar.cocktail_inputs)"
    )
    return _with_signal_normsys(nuisances, record, masses, MOCK_NUISANCE, float(rel), origin)
