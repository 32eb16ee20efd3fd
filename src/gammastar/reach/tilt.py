"""Draws fitted to a detector's ε_high edge: where the reach's defensive mixture
(:class:`gammastar.physics.sampling.Tilt`) leaves the few fast A′ that decide N_sig at the edge
to a handful of samples (a Kish size below :data:`KISH_TARGET`), one more component of the
mixture is fitted to them (:func:`edge_tilt`, the cross-entropy step) and the mass drawn again.
:func:`edge_ctau` finds the edge on an N_sig curve, :func:`edge_contributions` each sample's
share of the acceptance there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.physics.sampling import ParametricSampler, Tilt
from gammastar.yields.extrapolation.nsig.draw import kish_size

__all__ = ["EDGE_ROUNDS", "KISH_TARGET", "MODEL_SHARE", "edge_contributions", "edge_ctau", "edge_tilt",
           "fitted_tilt", "kish", "refit"]

KISH_TARGET = 100.0
"""The Kish size below which the edge's samples are too few: the relative error of a mean
over n_eff samples with a spread like its own is ~1/√n_eff, 10% at 100."""

MIN_CONTRIBUTING = 3
"""Model samples that must contribute at the edge for a component to be fitted to them."""

EDGE_ROUNDS = 2
"""Fits and draws at most per mass: a first fit rests on the few samples the mixture put at
the edge, a second on the many the first put there."""

MODEL_SHARE = 0.5
"""The share of the edge's contributions that the model's samples must carry for a fit to
help: below it the flow's own samples, which no tilt moves, decide the edge."""


def kish(c: ArrayLike) -> float:
    """Kish's effective sample size (Σc)²/Σc² of the contributions ``c`` (0 when all are 0;
    :func:`~gammastar.yields.extrapolation.nsig.draw.kish_size` of their sums).

    Example:
        >>> kish([1.0, 1.0, 0.0, 2.0])
        2.6666666666666665
    """
    c = np.asarray(c, dtype=np.float64)
    return float(kish_size(np.array([c.sum()]), np.array([np.sum(c * c)]))[0])


def edge_ctau(eps: ArrayLike, nsig: ArrayLike, ctau1: float, level: float) -> float | None:
    """cτ at the ε_high edge of an N_sig(ε) curve on the grid ``eps``: the largest ε where
    N_sig falls through ``level`` (log–log interpolation between the grid points), its cτ
    ctau1/ε² (``ctau1``: cτ at ε = 1); ``None`` where N_sig never reaches ``level`` or the
    grid ends above it.

    Example:
        >>> eps = np.array([1e-5, 1e-4, 1e-3]); n = np.array([10.0, 10.0, 0.1])
        >>> round(edge_ctau(eps, n, 1.0, 1.0))  # ε = 10^-3.5: cτ = 1/ε²
        10000000
    """
    e = np.asarray(eps, dtype=np.float64)
    n = np.asarray(nsig, dtype=np.float64)
    above = np.flatnonzero(n >= level)
    if above.size == 0 or above[-1] == e.size - 1:
        return None
    j = int(above[-1])
    t = np.log(n[j] / level) / np.log(n[j] / max(n[j + 1], 1e-300))
    eps_edge = float(np.exp(np.log(e[j]) + t * np.log(e[j + 1] / e[j])))
    return float(ctau1) / eps_edge**2


def edge_contributions(samples: Mapping[str, Any], brs: Mapping[str, float],
                       ctau: float) -> NDArray[np.float64]:  # fmt: skip
    """Each A′ sample's share of the acceptance at ``ctau``: its importance weight × the
    BR-weighted mean over the channels of its own acceptance
    (:meth:`~gammastar.reach.acceptance.KinematicSample.acceptance_per_sample`), the channels'
    samples made from one draw (same order)."""
    total = sum(brs.values())
    out = sum(brs[ch] / total * x.acceptance_per_sample([ctau])[:, 0] for ch, x in samples.items())
    weight = next(iter(samples.values())).weight
    return out if weight is None else out * weight


def edge_tilt(model: ParametricSampler, mass: float, kinematics: Mapping[str, Any],
              contributions: ArrayLike, tilt: Tilt | None = None) -> Tilt | None:  # fmt: skip
    """``tilt`` (default :class:`Tilt`'s) with one more component: the model's draw
    (``model``, :meth:`ExtrapolatedSampler.model_sampler`) fitted to the model samples of
    ``kinematics`` (a draw's ``qT``, ``E``, ``extrapolated``) weighted by their
    ``contributions`` at the edge (:meth:`ParametricSampler.fit_part`); ``None`` where fewer
    than :data:`MIN_CONTRIBUTING` model samples contribute (nothing to fit) or they carry
    less than :data:`MODEL_SHARE` of the contributions.

    References:
        R. Y. Rubinstein and D. P. Kroese, The Cross-Entropy Method (Springer, 2004), ch. 3;
        the defensive mixture: T. Hesterberg, Technometrics 37 (1995) 185.
    """
    c = np.asarray(contributions, dtype=np.float64)
    ext = kinematics.get("extrapolated")
    own = np.ones(c.size, dtype=bool) if ext is None else np.asarray(ext, dtype=bool)
    use = own & (c > 0)
    if int(use.sum()) < MIN_CONTRIBUTING or c[use].sum() < MODEL_SHARE * c.sum():
        return None
    qt = np.asarray(kinematics["qT"], dtype=np.float64)[use]
    energy = np.asarray(kinematics["E"], dtype=np.float64)[use]
    part = model.fit_part(mass, qt, energy, c[use])
    base = Tilt() if tilt is None else tilt
    return base._replace(extra=(*base.extra, part))


def fitted_tilt(source: Any, mass: float, n: int, geometry: Any, channels: Sequence[str],
                ctau: float, *, seed: int | None) -> Tilt | None:  # fmt: skip
    """The mixture that the reach draws the visible A′ of ``source`` (a
    :class:`~gammastar.source.source.Source`) from at ``mass`` when its ε_high edge lies at
    ``ctau``: :class:`Tilt`'s default, and up to :data:`EDGE_ROUNDS` components fitted
    (:func:`edge_tilt`) while ``n`` draws seeded ``seed`` through ``geometry``'s
    ``channels`` leave a Kish size below :data:`KISH_TARGET` there; ``None`` for the default
    alone."""
    from gammastar.physics import darkphoton
    from gammastar.reach.acceptance import channel_samples
    from gammastar.yields.extrapolation.samplers import RecordingSampler

    split = source.split
    model = None if split is None else split.model_sampler(mass)
    if model is None:
        return None
    brs = {ch: float(darkphoton.branching_ratio(mass, ch)) for ch in channels}
    tilt = None
    for _ in range(EDGE_ROUNDS):
        rec = RecordingSampler(source.tilted(tilt))
        samples = channel_samples(rec, mass, n, geometry, seed=seed, channels=tuple(channels))
        nxt = None if rec.last is None else refit(model, mass, rec.last, samples, brs, ctau, tilt)
        if nxt is None:
            break
        tilt = nxt
    return tilt


def refit(model: ParametricSampler, mass: float, kinematics: Mapping[str, Any],
          samples: Mapping[str, Any], brs: Mapping[str, float], ctau: float,
          tilt: Tilt | None) -> Tilt | None:  # fmt: skip
    """One round: ``tilt`` with a component fitted (:func:`edge_tilt`) where the draw
    ``kinematics`` (its channels' ``samples``) leaves a Kish size below :data:`KISH_TARGET`
    at ``ctau`` (:func:`edge_contributions`); ``None`` where it does not, or nothing can be
    fitted."""
    c = edge_contributions(samples, brs, ctau)
    return None if kish(c) >= KISH_TARGET else edge_tilt(model, mass, kinematics, c, tilt)
