r"""Beam–target normalisation: how many protons interact in a target of given thickness.

One formula, used wherever a yield per proton on target (POT) depends on the target:
the mock generator's equivalent N_POT (:meth:`gammastar.mock.generate.Generator.n_pot`), the
reach's factor that carries a yield measured with a thin target to a facility's thick target or
dump (:func:`yield_scale`, ``reach.target_interaction_lengths``), and the bremsstrahlung
estimate (:class:`gammastar.physics.bremsstrahlung.BremsSettings`).

A proton beam traversing a target of thickness L (in nuclear interaction lengths λ_I)
interacts with probability

.. math:: P_{\rm int}(L) = 1 - e^{-L/\lambda_I},

which is L for a thin target and 1 for a beam dump (L → ∞). Yields per POT scale with it
(docs/explanation/physics.md §2); secondary (cascade) production in a thick dump and the A-dependence of
meson production per interaction are not included.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["DUMP", "interaction_probability", "yield_scale"]

DUMP = "dump"
"""Target description meaning "every proton interacts" (L = ∞, P_int = 1)."""


def interaction_probability(interaction_lengths: ArrayLike | str) -> NDArray[np.float64] | float:
    """Probability that a beam proton interacts in a target of ``interaction_lengths`` λ_I.

    Arguments:
        interaction_lengths: thickness L/λ_I (> 0; ``inf`` or ``"dump"``: every proton
            interacts).

    Returns:
        P_int = 1 − e^{−L/λ_I} (a float for scalar input).

    Raises:
        ValueError: a thickness that is not positive, or a string other than ``"dump"``.

    References:
        Exponential attenuation of the beam in the target, λ_I = nuclear interaction length
        (PDG Review "Passage of particles through matter", §34.4.1; docs/explanation/physics.md §2).

    Example:
        >>> round(interaction_probability(0.01), 8)   # NA60 Pb sub-target: ~ L for a thin target
        0.00995017
        >>> interaction_probability("dump"), interaction_probability(float("inf"))
        (1.0, 1.0)
    """
    if isinstance(interaction_lengths, str):
        if interaction_lengths != DUMP:
            raise ValueError(f"target thickness {interaction_lengths!r}: a number or 'dump'")
        return 1.0
    lengths = np.asarray(interaction_lengths, dtype=np.float64)
    if np.any(~(lengths > 0)):
        raise ValueError(f"target thickness must be > 0 interaction lengths, not {lengths}")
    p = -np.expm1(-lengths)
    return float(p) if p.ndim == 0 else p


def yield_scale(facility: float | str, data: float | str) -> float:
    """Factor that carries a yield per POT measured with the data's target to a facility's target.

    Arguments:
        facility: the facility target's thickness in λ_I (or ``"dump"``).
        data: the thickness of the target the yield was measured with, in λ_I.

    Returns:
        P_int(facility) / P_int(data).

    References:
        :func:`interaction_probability`; the yield per interacting proton is taken to be the
        same on both targets (docs/explanation/reach.md).

    Example:
        >>> round(yield_scale("dump", 0.01), 4)   # a dump behind the NA60 0.01 λ_I sub-target
        100.5008
        >>> yield_scale(0.01, 0.01)
        1.0
    """
    return float(interaction_probability(facility)) / float(interaction_probability(data))
