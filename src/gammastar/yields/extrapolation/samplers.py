"""Kinematics from the model outside the fiducial region, every sample labelled extrapolated
(:class:`ExtrapolatedSampler`, :class:`RecordingSampler`, :func:`sample_accepted`).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gammastar.errors import InputError
from gammastar.physics.sampling import ParametricSampler, Tilt
from gammastar.yields.extrapolation.model import MODEL_NAME, falloff_power
from gammastar.yields.extrapolation.result import Extrapolation

__all__ = ["ExtrapolatedSampler", "RecordingSampler", "sample_accepted"]


class RecordingSampler:
    """A sampler that keeps its last output (``last``: the draw's kinematics, in the samples'
    order), the ``kinematics`` that :func:`nsig_relative_error` needs beside the drawn
    :class:`~gammastar.reach.acceptance.KinematicSample`."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.last: dict[str, Any] | None = None
        self.mass_range = inner.mass_range

    def sample(self, mass: float, n: int, seed: int | None = None) -> dict[str, Any]:
        out: dict[str, Any] = self.inner.sample(mass, n, seed=seed)
        self.last = out
        return out


class ExtrapolatedSampler:
    """A′ kinematics over the full phase space: a fiducial sampler (the flow) inside the
    fiducial region, the fitted model outside it.

    ``sample(mass, n, seed)`` returns ``{"qT", "E", "extrapolated"}``: a fraction f_F(m) of
    the samples from ``inside`` (``extrapolated`` False), the rest drawn from the model and
    kept only outside the region (``extrapolated`` True). ``inside=None``: the model
    everywhere (every sample labelled extrapolated).

    ``seam`` (GeV; a both-channels run, ``yields.json`` ``extrapolation.seam``): below it
    ``inside`` is the full phase space (the flow of the full-phase-space channel) and samples
    it alone, nothing labelled extrapolated; at and above it as above, the ``inside``
    samples kept inside F only (accept–reject: the stitched flow leaks out of F near the
    seam). The mass range then starts at ``inside``'s lower end rather than at the
    extrapolation's first bin edge. ``inside=None`` with a seam (no flow): below the seam the
    analytic sampler (:class:`gammastar.physics.sampling.ParametricSampler`) with ``below``'s
    parameters at the mass (the model fitted below the seam, ``yields.json``
    ``extrapolation.below_seam``), or without it the fitted model's rapidity at the seam and
    the docs/explanation/physics.md default T; every sample labelled extrapolated (kinematics
    from a model, not the data), as the fitted model's are above it. ``e_max`` (GeV; the data's
    beam energy): the model's samples above it are rejected (the model truncated at the
    energy a γ* of the beam's collisions can carry; the unbounded Gaussian rapidity would
    otherwise put the fastest A′ there, which decide a beam dump's short lifetimes).
    ``arm`` (no flow, from the seam up within its bins; ``yields.json``
    ``extrapolation.arm_above_seam``): the analytic sampler with the arm's model there instead
    of the fiducial fit's, every sample labelled extrapolated (:meth:`arm_covers`).
    ``tilt`` (:meth:`tilted`): the model's samples importance-weighted draws of a proposal
    tilted towards high energy (:meth:`ParametricSampler.sample_tilted`), their ``weight``
    normalised to a mean of 1 over the model's samples of the call (1 for the flow's; no
    ``weight`` where the flow gives every sample): the acceptance is then the weighted mean,
    its far tail resolved by many more samples.
    """

    def __init__(
        self, inside: Any, extrapolation: Extrapolation, fiducial: Any, seam: float | None = None,
        below: Extrapolation | None = None, e_max: float | None = None,
        arm: Extrapolation | None = None, tilt: Tilt | None = None,
    ) -> None:  # fmt: skip
        self.inside = inside
        self.tilt = tilt
        self.extrapolation = extrapolation
        self.fiducial = fiducial
        self.seam = None if seam is None else float(seam)
        self.below = below
        self.arm = arm
        self.e_max = None if e_max is None else float(e_max)
        lo, hi = float(extrapolation.edges[0]), float(extrapolation.edges[-1])
        rng = getattr(inside, "mass_range", None)
        meta = getattr(inside, "meta", None)
        if rng is None and isinstance(meta, dict) and "mass_range" in meta:
            rng = meta["mass_range"]
        if rng is None and inside is None and self.seam is not None:

            rng = ParametricSampler().mass_range  # below the seam: the analytic sampler's
        if rng is not None:
            lo = float(rng[0]) if self.seam is not None else max(lo, float(rng[0]))
            hi = min(hi, float(rng[1]))
        self.mass_range = (lo, hi)
        self.model = MODEL_NAME

    def tilted(self, tilt: Tilt | None = None) -> ExtrapolatedSampler:
        """This sampler with its model's samples drawn tilted (``tilt``, default
        :class:`Tilt`'s), each with its ``weight``."""
        out = copy.copy(self)
        out.tilt = Tilt() if tilt is None else tilt
        return out

    def _model(self, model: ParametricSampler, mass: float, n: int, seed: int) -> dict[str, NDArray]:
        """``n`` draws of ``model``: plain, or tilted with their weights (:attr:`tilt`)."""
        if self.tilt is None:
            return model.sample(mass, n, seed=seed)
        return model.sample_tilted(mass, n, seed=seed, tilt=self.tilt)

    def _labelled(self, out: dict[str, NDArray]) -> dict[str, NDArray]:
        """A model's draws, every sample labelled extrapolated, weights of mean 1."""
        flag = {"extrapolated": np.ones(len(out["qT"]), dtype=bool)}
        if "weight" in out:
            flag["weight"] = out["weight"] / out["weight"].mean()
        return {**out, **flag}

    def sample(self, mass: float, n: int, seed: int | None = None) -> dict[str, NDArray]:

        ss = np.random.SeedSequence(seed)
        s_split, s_in, s_out = ss.spawn(3)
        model = self.model_sampler(mass)
        if model is None:  # full phase space below the seam: the flow alone
            got = self.inside.sample(mass, n, seed=int(s_in.generate_state(1)[0]))
            q = np.asarray(_np(got["qT"]), dtype=np.float64).ravel()
            e = np.asarray(_np(got["E"]), dtype=np.float64).ravel()
            return {"qT": q, "E": e, "extrapolated": np.zeros(q.size, dtype=bool)}
        below = self.seam is not None and mass < self.seam
        if below or self.arm_covers(mass) or self.inside is None:  # no flow: the model, labelled
            return self._labelled(self._model(model, mass, n, int(s_out.generate_state(1)[0])))
        f = float(self.extrapolation.at(mass)[0])
        n_in = int(np.random.default_rng(s_split).binomial(n, min(max(f, 0.0), 1.0)))
        parts_q: list[NDArray[np.float64]] = []
        parts_e: list[NDArray[np.float64]] = []
        if n_in and self.seam is not None:  # a stitched flow: its samples inside F only
            parts_q, parts_e = self._inside_f(mass, n_in, np.random.default_rng(s_in))
        elif n_in:
            got = self.inside.sample(mass, n_in, seed=int(s_in.generate_state(1)[0]))
            parts_q.append(np.asarray(_np(got["qT"]), dtype=np.float64).ravel())
            parts_e.append(np.asarray(_np(got["E"]), dtype=np.float64).ravel())
        need = n - n_in
        rng_out = np.random.default_rng(s_out)
        q_out, e_out, w_out, have = [], [], [], 0
        for _ in range(1000):
            if have >= need:
                break
            k = max(2 * (need - have), 1000)
            got = self._model(model, mass, k, int(rng_out.integers(2**63)))
            keep = ~self.fiducial.contains(np.full(k, mass), got["qT"], got["E"])
            q_out.append(got["qT"][keep])
            e_out.append(got["E"][keep])
            w_out.append(got.get("weight", np.ones(k))[keep])
            have += int(keep.sum())
        if have < need:
            raise InputError(
                f"extrapolation: the model has (almost) nothing outside the fiducial region at "
                f"m = {mass:g} GeV"
            )
        q = np.concatenate([*parts_q, np.concatenate(q_out)[:need]]) if need else parts_q[0]
        e = np.concatenate([*parts_e, np.concatenate(e_out)[:need]]) if need else parts_e[0]
        flag = np.concatenate([np.zeros(n_in, dtype=bool), np.ones(need, dtype=bool)])
        if self.tilt is None:
            return {"qT": q, "E": e, "extrapolated": flag}
        w = np.concatenate(w_out)[:need]
        return {"qT": q, "E": e, "extrapolated": flag,
                "weight": np.concatenate([np.ones(n_in), w / w.mean() if need else w])}  # fmt: skip

    def model_sampler(self, mass: float) -> ParametricSampler | None:
        """The analytic sampler of the model samples at ``mass`` (below the seam without a
        flow :meth:`below_sampler`, the arm's model where :meth:`arm_covers`, else the fitted
        model); ``None`` where the flow gives every sample (below the seam with one)."""
        if self.seam is not None and mass < self.seam:
            return self.below_sampler(mass) if self.inside is None else None
        return _model_sampler(self.model_at(mass), mass, self.e_max)

    def arm_covers(self, mass: float) -> bool:
        """Whether :meth:`sample` takes ``mass`` from the arm's model: no flow, an ``arm``,
        from the seam up to the arm's last bin edge, where its fraction f_F is positive (the
        normalisation in F, :func:`~gammastar.yields.extrapolation.nsig.arm.arm_in_fiducial`)."""
        if self.arm is None or self.inside is not None or self.seam is None:
            return False
        if not self.seam <= mass <= float(self.arm.edges[-1]):
            return False
        return bool(float(self.arm.at(mass)[0]) > 0)

    def model_at(self, mass: float) -> Extrapolation:
        """The fitted model whose kinematics, and whose fraction in F normalises them, this
        sampler takes at ``mass``: the arm's where :meth:`arm_covers`, else the fiducial fit."""
        return self.arm if self.arm is not None and self.arm_covers(mass) else self.extrapolation

    def below_sampler(self, mass: float) -> ParametricSampler:
        """The analytic sampler below the seam at ``mass``: ``below``'s fitted (T, ȳ, σ_y, a),
        else the fitted model's rapidity at the seam (ȳ the beam's y_cm: a 70 GeV beam's is
        2.50, not the 400 GeV default 3.37) and the docs/explanation/physics.md default T."""
        if self.below is not None:
            return _model_sampler(self.below, mass, self.e_max)
        _, _, y_mean, y_sigma = self.extrapolation.at(np.array([self.seam]))
        return ParametricSampler(y_mean=float(y_mean[0]), y_sigma=float(y_sigma[0]), e_max=self.e_max)

    def _inside_f(self, mass: float, n: int, rng: Any) -> tuple[list, list]:
        """``n`` samples of ``inside`` that lie inside F (:func:`sample_accepted`): a flow
        stitched at the seam learned F above it, but one ln m context cannot follow the step at
        m_s, so part of its samples above the seam leak out of F (up to about
        half on the demo); they would count the outside twice, beside the model's."""
        q, e = sample_accepted(
            lambda k, seed: self.inside.sample(mass, k, seed=seed),
            n,
            rng,
            lambda q, e: self.fiducial.contains(np.full(q.size, mass), q, e),
            f"extrapolation: at m = {mass:g} GeV",
        )
        return [q], [e]


def _model_sampler(ex: Extrapolation, mass: float, e_max: float | None) -> ParametricSampler:
    """The analytic sampler of a fitted model's (T, ȳ, σ_y, a) at ``mass``."""
    _, t, mu, s = (float(v) for v in ex.at(mass))
    power_at = getattr(ex, "power_at", None)  # a duck-typed model: a = 0
    a_pow = 0.0 if power_at is None else float(power_at(mass))
    return ParametricSampler(t, mu, s, power=a_pow, e_max=e_max, falloff=_falloff_of(ex, mass))


def _falloff_of(ex: Any, mass: float) -> tuple[float, float] | None:
    """``(n, E_beam)`` of a fitted model's fall-off at ``mass`` (:attr:`Extrapolation.falloff`;
    n + 1 below its ``dalitz_mass``), or ``None`` (none, or a duck-typed model without one)."""
    fo = getattr(ex, "falloff", None)
    if not fo:
        return None
    n = falloff_power(float(fo["n"]), mass, fo.get("dalitz_mass"))
    return float(n), float(fo["beam_energy"])


def sample_accepted(
    sample: Any, n: int, rng: np.random.Generator, keep: Any, where: str
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``n`` samples (q_T, E) of ``sample(k, seed)`` for which ``keep(qT, E)`` holds:
    accept–reject in batches of max(2(n − kept), 1000), each seeded from ``rng``.

    Raises:
        InputError: fewer than ``n`` kept after 100 batches (``where`` opens the message).

    Example:
        >>> draw = lambda k, seed: {"qT": np.random.default_rng(seed).random(k), "E": np.ones(k)}
        >>> q, e = sample_accepted(draw, 50, np.random.default_rng(1), lambda q, e: q < 0.5, "")
        >>> q.size, bool(np.all(q < 0.5))
        (50, True)
    """
    qs, es, have = [], [], 0
    for _ in range(100):
        if have >= n:
            break
        got = sample(max(2 * (n - have), 1000), int(rng.integers(2**63)))
        q = np.asarray(_np(got["qT"]), dtype=np.float64).ravel()
        e = np.asarray(_np(got["E"]), dtype=np.float64).ravel()
        k = np.asarray(keep(q, e), dtype=bool)
        qs.append(q[k])
        es.append(e[k])
        have += int(k.sum())
    if have < n:
        raise InputError(f"{where}: the flow has (almost) no samples inside the fiducial region")
    return np.concatenate(qs)[:n], np.concatenate(es)[:n]


def _np(x: Any) -> Any:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else x
