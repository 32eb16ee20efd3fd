"""The A′ (or γ*) production at a mass, one object for every consumer: :class:`Source`.

A source is the yield per proton on target per ε² at a mass (:class:`Yields`, with its
relative statistical error) and the kinematics (q_T, E) drawn there, each sample labelled
``extrapolated`` where it comes from a model rather than from the data: outside the data's
fiducial region (the fitted extrapolation model, ``reach.extrapolation: label``) or outside
the flow's mass range (the analytic model, ``--extrapolate``). The reach, ``gammastar
acceptance``, ``gammastar events`` and ``reach-idm`` build theirs with
:meth:`Source.from_config`; the other constructors say where else the kinematics come from
(a model, the weighted pairs, given arrays, every sample labelled, a fallback model outside
the mass range, the flow at any mass).

A kinematics model is anything with ``sample(mass, n, seed)`` (or a callable ``(mass, n,
seed)``) that returns a mapping with ``qT`` and ``E`` arrays, and optionally
``extrapolated``: the flow (:class:`gammastar.flow.model.FlowModel`), the analytic
:class:`~gammastar.physics.sampling.ParametricSampler`, the pairs themselves
(:class:`WeightedPairSampler`), the flow inside the fiducial region with the fitted model
outside (:class:`~gammastar.yields.extrapolation.samplers.ExtrapolatedSampler`).

References:
    E. Allison, N. Blinov, "Data-Driven Predictions for Dark Photon and Millicharged Particle
    Production" (2025), Sec. III C 1 (the flow and the pairs as the A′ kinematics).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.config import AnalysisConfig
from gammastar.corrections.pair_acceptance import FiducialRegion
from gammastar.errors import ConfigError, GammastarError, InputError
from gammastar.physics.sampling import ParametricSampler, Tilt
from gammastar.source.production import Yields
from gammastar.yields.extrapolation.nsig.arm import arm_in_fiducial
from gammastar.yields.extrapolation.result import Extrapolation
from gammastar.yields.extrapolation.samplers import ExtrapolatedSampler

__all__ = ["KINEMATIC_MEMBERS_ADVISED", "Source", "WeightedPairSampler", "ensemble_sources"]

log = logging.getLogger(__name__)

PARAMETRIC = "parametric (docs/explanation/physics.md §3.2 defaults)"
"""The description of the analytic sampler of the docs/explanation/physics.md defaults."""

KINEMATIC_MEMBERS_ADVISED = 10
"""Members (replicas with ``flow.bootstrap``) below which the reach warns that the
``kinematic_model`` size is poorly measured: the standard deviation of k draws is uncertain by
1/√(2(k − 1)), ±24% at 10, and a few replicas can quote a far smaller spread than flows of
independent mock realisations show (docs/validation/uncertainties-and-coverage.md)."""


@dataclass(frozen=True, eq=False)
class Source:
    """The A′ (γ*) production: the yield per POT per ε² and the kinematics at a mass.

    ``sample(mass, n, seed)`` draws from ``kinematics`` where it holds (inside its mass range)
    and from ``beyond`` elsewhere, every such sample labelled extrapolated; the kinematics'
    own labels (the fitted model outside the fiducial region) are kept. Build one with a
    constructor: :meth:`from_config` (what a config asks for), :meth:`from_model`,
    :meth:`from_pairs`, :meth:`given`, :meth:`labelled`, :meth:`at_any_mass`,
    :meth:`extended`. Sources are compared by identity (they hold models).

    Example:
        >>> src = Source.from_model(ParametricSampler(mass_range=(0.2, 1.0)))
        >>> out = src.extended(ParametricSampler()).sample(1.5, 4, seed=1)
        >>> sorted(out), out["extrapolated"].tolist()
        (['E', 'extrapolated', 'qT'], [True, True, True, True])
    """

    kinematics: Any
    """The data-driven kinematics model (``None``: none, every sample from ``beyond``)."""
    yields: Yields | None = None
    """The A′ yield per POT per ε² (``None``: a source of kinematics only)."""
    description: str = "given"
    """What the kinematics are, as the outputs' metadata records it (``meta.sampler``)."""
    beyond: Any = None
    """The model sampled outside the kinematics' mass range, every sample labelled
    extrapolated (``None``: such a mass is outside the source)."""

    def __post_init__(self) -> None:
        if self.kinematics is None and self.beyond is None:
            raise GammastarError("Source: give the kinematics or a model beyond them")

    # ----------------------------------------------------------------------- constructors
    @classmethod
    def from_config(
        cls, config: AnalysisConfig, yields: Yields | None = None, *, member: Any = None
    ) -> Source:
        """The A′ production of the reach: the flow (``reach.flow``), inside the yields'
        fiducial region when they have one, with the fitted model outside it
        (``reach.extrapolation: label``, labelled); ``refuse``: the flow alone (the fiducial
        yields: the caller loads them); without a flow the analytic sampler (the fitted
        model when there is one, every sample labelled). A both-channels run's
        ``extrapolation.seam``: the flow alone below it (full phase space, nothing
        labelled), flow inside / model outside the fiducial region from it up. Without a flow
        and with the arm's model above the seam (``extrapolation.arm_above_seam``), the
        source's ``yields`` there are Y_F/f_F of that model normalised in F, not those given.

        Arguments:
            config: the analysis config (its ``reach`` section and ``resolve``).
            yields: the yields (:func:`~gammastar.source.production.load_yields`), or
                ``None``: kinematics only, no fiducial split.
            member: a flow ensemble member in place of ``reach.flow``
                (:func:`ensemble_sources`).

        Raises:
            ConfigError: ``reach.extrapolation: refuse`` without a flow.
        """
        rc = config.reach
        ex = None if yields is None else yields.extrapolation
        base, desc = None, PARAMETRIC
        if member is not None:
            base, desc = member, "flow ensemble member"
        elif rc.flow is not None:
            from gammastar.flow.model import load

            path = config.resolve(rc.flow)
            base, desc = load(path), str(path)
        if ex is None:
            return cls(base if base is not None else ParametricSampler(), yields, desc)
        if rc.extrapolation == "refuse":
            if base is None:
                raise ConfigError(
                    f"{config.source or 'config'}: reach.extrapolation: 'refuse' needs "
                    "reach.flow (without a flow every sample would come from the "
                    "extrapolation model)"
                )
            return cls(base, yields, f"{desc} (fiducial region only: reach.extrapolation refuse)")
        extrap = Extrapolation.from_dict(ex)
        region = FiducialRegion.from_dict(ex["fiducial"])
        label = f"{ex.get('model', 'model')} fitted to the fiducial data"
        seam = ex.get("seam")  # a both-channels run: full phase space below (docs/explanation/method.md)
        fit_below = ex.get("below_seam")  # the model fitted below the seam, where one was
        below_ex = None if fit_below is None or seam is None else Extrapolation.from_dict(fit_below)
        fit_arm = ex.get("arm_above_seam")  # the arm's model above the seam, where one was
        arm_ex = None
        if fit_arm is not None and seam is not None and base is None:
            arm_ex = arm_in_fiducial(Extrapolation.from_dict(fit_arm), region)
            if yields is not None:
                yields = _arm_yields(yields, extrap, arm_ex, float(seam))
        split = ExtrapolatedSampler(base, extrap, region, seam=seam, below=below_ex,
                                    e_max=config.beam.energy, arm=arm_ex)  # fmt: skip
        if base is None:
            below = ""
            if seam is not None:
                below = (f" from the seam m = {float(seam):g} GeV up, "
                         + ("the model fitted to the full-phase-space channel below"
                            if below_ex is not None else "docs/explanation/physics.md defaults below"))  # fmt: skip
            if arm_ex is not None:
                label = (f"{ex.get('model', 'model')} fitted to the full-phase-space channel's "
                         "arm, normalised in the fiducial region")  # fmt: skip
            return cls(split, yields, f"{label} (everywhere: no flow){below}")
        where = "" if seam is None else f" from the seam m = {float(seam):g} GeV up, alone below"
        return cls(split, yields, f"{desc} inside the fiducial region{where}; {label} outside")

    @classmethod
    def from_model(
        cls, model: Any, yields: Yields | None = None, *, description: str = "given"
    ) -> Source:
        """The kinematics ``model`` (a sampler or a callable ``(mass, n, seed)``) with
        ``yields``; a :class:`Source` given as ``model`` comes back as it is, with ``yields``
        in place of its own when given."""
        if isinstance(model, Source):
            return model if yields is None else dataclasses.replace(model, yields=yields)
        return cls(model, yields, description)

    @classmethod
    def from_pairs(
        cls,
        m: ArrayLike,
        qt: ArrayLike,
        energy: ArrayLike,
        weight: ArrayLike,
        *,
        half_width: float = 0.03,
        yields: Yields | None = None,
    ) -> Source:
        """The unfolded pairs themselves as the kinematics (:class:`WeightedPairSampler`,
        the paper's non-parametric alternative to the flow)."""
        model = WeightedPairSampler(m, qt, energy, weight, half_width=half_width)
        return cls(model, yields, f"the weighted pairs within {half_width:g} GeV of the mass")

    @classmethod
    def given(cls, qt: ArrayLike, energy: ArrayLike) -> Source:
        """Given (q_T, E) at any mass: ``sample(mass, n)`` returns the first ``n`` of them,
        in order (the pairs of a mass window through the acceptance's machinery).

        Example:
            >>> Source.given([0.1, 0.2], [30.0, 40.0]).sample(0.5, 1)["E"].tolist()
            [30.0]
        """
        q = np.asarray(qt, dtype=np.float64)
        e = np.asarray(energy, dtype=np.float64)
        if q.shape != e.shape:
            raise GammastarError(f"Source.given: {q.size} qT but {e.size} E values")
        return cls(functools.partial(_given, q, e), None, "given (q_T, E)")

    @classmethod
    def labelled(
        cls, model: Any, yields: Yields | None = None, *, description: str = PARAMETRIC
    ) -> Source:
        """``model`` at every mass, every sample labelled extrapolated (a model, not the
        data: e.g. the analytic sampler outside the flow's mass range)."""
        return cls(None, yields, description, beyond=model)

    @classmethod
    def at_any_mass(
        cls, flow: Any, yields: Yields | None = None, *, description: str = "given"
    ) -> Source:
        """The flow at any mass: inside its trained mass range as trained, outside it
        extrapolated by the flow itself (``sample(..., extrapolate=True)``), labelled."""
        beyond = functools.partial(flow.sample, extrapolate=True)
        return cls(flow, yields, description, beyond=beyond)

    def extended(self, beyond: Any, *, description: str | None = None) -> Source:
        """This source inside its mass range, ``beyond`` (labelled extrapolated) at every
        other mass; ``description`` in place of this one's."""
        desc = self.description if description is None else description
        return dataclasses.replace(self, beyond=beyond, description=desc)

    # ----------------------------------------------------------------------- what it offers
    @property
    def mass_range(self) -> tuple[float, float] | None:
        """The masses (GeV) the source can be sampled at; ``None``: any (a model beyond the
        kinematics, given arrays, an analytic sampler without a range)."""
        return None if self.beyond is not None else _range_of(self.kinematics)

    @property
    def split(self) -> ExtrapolatedSampler | None:
        """The kinematics' split between the data (the flow inside the fiducial region) and
        the fitted extrapolation model outside it, when they are so split."""
        k = self.kinematics
        return k if isinstance(k, ExtrapolatedSampler) else None

    def tilted(self, tilt: Tilt | None = None) -> Source:
        """This source with its fitted model's samples drawn towards high energy (``tilt``,
        default :class:`~gammastar.physics.sampling.Tilt`'s), each with its importance
        ``weight`` (:meth:`ExtrapolatedSampler.tilted`); itself where the kinematics have no
        fiducial split."""
        split = self.split
        return self if split is None else dataclasses.replace(self, kinematics=split.tilted(tilt))

    @property
    def extrapolates(self) -> bool:
        """Whether a sample can come from an extrapolation model (its ``extrapolated`` flag
        True): a model beyond the mass range, or a fitted model outside the fiducial
        region."""
        return self.beyond is not None or self.split is not None

    def yield_at(self, mass: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """The A′ yield per POT per ε² at ``mass`` and its relative statistical error
        (:meth:`Yields.at`: log-linear between the bins, NaN outside them).

        Raises:
            GammastarError: a source of kinematics only (no yields).
        """
        if self.yields is None:
            raise GammastarError(f"Source {self.description!r}: no yields (kinematics only)")
        return self.yields.at(mass)

    def sample(self, mass: float, n: int, seed: int | None = None) -> dict[str, NDArray]:
        """Draw ``n`` (q_T, E) at ``mass`` (``seed``: an int, or None for fresh entropy;
        equal seeds give equal samples).

        Returns:
            dict of float64 ``qT``, ``E`` (GeV) and the bool ``extrapolated``: True where the
            sample comes from an extrapolation model (outside the fiducial region or the
            mass range); the model's importance ``weight`` where it gives them
            (:meth:`ExtrapolatedSampler.tilted`).

        Raises:
            InputError: the model's output lacks ``qT`` or ``E``.
        """
        rng = _range_of(self.kinematics)
        inside = self.kinematics is not None and (
            self.beyond is None or rng is None or rng[0] <= mass <= rng[1]
        )
        model = self.kinematics if inside else self.beyond
        out = model.sample(mass, n, seed=seed) if hasattr(model, "sample") else model(mass, n, seed)
        try:
            q = np.asarray(_numpy(out["qT"]), dtype=np.float64).ravel()
            e = np.asarray(_numpy(out["E"]), dtype=np.float64).ravel()
        except (KeyError, IndexError, ValueError, TypeError):
            raise InputError("A' sampler must return a mapping with 'qT' and 'E' arrays") from None
        flags = out.get("extrapolated") if inside and isinstance(out, Mapping) else None
        if not inside:
            labels = np.ones(q.size, dtype=bool)
        elif flags is None:
            labels = np.zeros(q.size, dtype=bool)
        else:
            labels = np.asarray(_numpy(flags), dtype=bool).ravel()
        out_w = out.get("weight") if isinstance(out, Mapping) else None
        if out_w is None:
            return {"qT": q, "E": e, "extrapolated": labels}
        w = np.asarray(_numpy(out_w), dtype=np.float64).ravel()
        return {"qT": q, "E": e, "extrapolated": labels, "weight": w}


class WeightedPairSampler:
    """The unfolded pairs themselves as an A′ kinematics model (the paper's non-parametric
    alternative to the flow, Sec. III C 1): ``sample(mass, n, seed)`` resamples (q_T, E) of the
    pairs with |m − mass| < ``half_width`` with probability ∝ their weight, E rescaled to the
    exact mass at fixed |q| and direction. Only positive weights are drawn (the OS pairs, like-sign
    background included); the like-sign subtraction does not reach the kinematics.

    Arguments:
        m, qt, energy, weight: the pairs (``pairs.parquet`` ``m``, ``qT``, ``E``, ``weight``).
        half_width: mass window (GeV).
    """

    def __init__(self, m: ArrayLike, qt: ArrayLike, energy: ArrayLike, weight: ArrayLike,
                 half_width: float = 0.03) -> None:  # fmt: skip
        w = np.asarray(weight, dtype=np.float64)
        keep = w > 0
        self.m = np.asarray(m, dtype=np.float64)[keep]
        self.qt = np.asarray(qt, dtype=np.float64)[keep]
        self.e = np.asarray(energy, dtype=np.float64)[keep]
        self.w = w[keep]
        self.half_width = half_width
        self.mass_range = (float(self.m.min()), float(self.m.max()))

    def sample(self, mass: float, n: int, seed: int | None = None) -> dict[str, NDArray]:
        k = np.flatnonzero(np.abs(self.m - mass) < self.half_width)
        if k.size == 0:
            raise InputError(f"no pair within {self.half_width:g} GeV of m = {mass:g} GeV")
        p = self.w[k] / self.w[k].sum()
        i = k[np.random.default_rng(seed).choice(k.size, size=n, p=p)]
        p2 = np.clip(self.e[i] ** 2 - self.m[i] ** 2, 0.0, None)
        return {"qT": self.qt[i], "E": np.sqrt(p2 + mass**2)}


def ensemble_sources(
    config: AnalysisConfig, yields: Yields | None, nominal: Source
) -> tuple[list[Source], list[Any]]:
    """The A′ sources of the flow ensemble of ``reach.flow`` (``flow/`` and
    ``flow/ensemble/<i>/``), each built like the nominal one (:meth:`Source.from_config` with
    the member: the fitted extrapolation outside the fiducial region), and the members' seeds.
    With a bootstrapped ensemble (``flow.bootstrap``) only the replicas (members ≥ 1), whose
    spread is the nominal fit's error; else ``nominal`` stands for member 0.

    Raises:
        ConfigError: ``reach.flow`` is not a flow, or its ensemble has fewer than 2 members.
    """
    from gammastar.flow.ensemble import load_ensemble

    src = config.source or "<config>"
    if config.reach.flow is None:
        raise ConfigError(
            f"{src}: uncertainties.kinematic_model: needs reach.flow (a flow ensemble), "
            "not the analytic sampler"
        )
    path = config.resolve(config.reach.flow)
    ens = load_ensemble(path)
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
        out = [Source.from_config(config, yields, member=m) for m in replicas]
        _warn_few_members(path, len(out))
        return out, [m.meta.get("meta", {}).get("seed") for m in replicas]
    out, seeds = [nominal], []
    for k, model in enumerate(ens.models):
        seeds.append(model.meta.get("meta", {}).get("seed"))
        if k > 0:
            out.append(Source.from_config(config, yields, member=model))
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


def _given(q: NDArray, e: NDArray, mass: float, n: int, seed: int | None = None) -> dict[str, Any]:
    """The first ``n`` of the given (q_T, E), in order (:meth:`Source.given`)."""
    return {"qT": q[:n], "E": e[:n]}


def _range_of(model: Any) -> tuple[float, float] | None:
    """A model's mass range (its ``mass_range``, or a flow's ``meta["mass_range"]``), if any."""
    rng = getattr(model, "mass_range", None)
    if rng is None:
        meta = getattr(model, "meta", None)
        rng = meta.get("mass_range") if isinstance(meta, Mapping) else None
    return None if rng is None else (float(rng[0]), float(rng[1]))


def _numpy(x: Any) -> Any:
    """A torch tensor as a numpy array; anything else as it is."""
    return x.detach().cpu().numpy() if hasattr(x, "detach") else x


def _arm_yields(yields: Any, extrap: Extrapolation, arm: Extrapolation, seam: float) -> Any:
    """``yields`` with each bin from ``seam`` up carried to full phase space by the arm's
    model instead of the fiducial fit's, Y·f_F/f_F,arm (:func:`arm_in_fiducial`: both
    fractions in F), the yield a reach with the arm's kinematics is normalised to; its
    relative errors kept."""
    m = np.asarray(yields.mass, dtype=np.float64)
    f_arm = np.asarray(arm.at(m)[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.asarray(extrap.at(m)[0]) / f_arm
    covered = (m >= seam) & (m <= float(arm.edges[-1])) & (f_arm > 0)
    if np.any(covered & ~(np.isfinite(r) & (r > 0))):
        raise InputError("extrapolation.arm_above_seam: the fiducial fit's f_F is not positive "
                         "where the arm's model is normalised in F; rerun gammastar yields")  # fmt: skip
    r = np.where(covered, r, 1.0)
    return dataclasses.replace(yields, per_pot_per_eps2=yields.per_pot_per_eps2 * r,
                               stat_err=yields.stat_err * r)  # fmt: skip
