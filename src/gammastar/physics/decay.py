r"""The decay of a long-lived particle along its flight path: the one decay-in-volume kernel.

A particle of decay length ℓ = βγcτ (lab frame) that is produced at L = 0 decays between the
path lengths L_in < L_out with probability

.. math:: P = e^{-L_\mathrm{in}/\ell} - e^{-L_\mathrm{out}/\ell}
            = e^{-L_\mathrm{in}/\ell}\,\bigl(-\mathrm{expm1}(-(L_\mathrm{out} - L_\mathrm{in})/\ell)\bigr),

the second form exact to rounding for ℓ ≫ L (a small difference of two numbers near 1) and for
L_in ≫ ℓ (a small product). Offers :func:`decay_probability` (P) and
:func:`sample_decay_length` (L drawn from the exponential law truncated to [L_in, L_out], by
inverting its CDF). The LLP acceptance, the events' decay vertices, the iDM chain and reach use
them with L along the beam (L/cos θ and ℓ cos θ give the same ratios) or along the flight.

References:
    PDG Review of Particle Physics, "Kinematics" §49.2 (the exponential decay law in the lab,
    mean decay length βγcτ).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["decay_probability", "sample_decay_length"]

Array = NDArray[np.float64]


def _ratio(x: Array, ell: Array) -> Array:
    """x/ℓ with 0/0 (decay at L = 0 of a particle with ℓ = 0) and ∞/∞ (a particle that never
    decays seen at L = ∞) taken as 0: survival 1 there, the conventions of the limits ℓ → 0 at
    fixed L = 0 and L → ∞ at fixed ℓ = ∞."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r = x / ell
    return np.where(np.isnan(r), 0.0, r)


def decay_probability(l_in: ArrayLike, l_out: ArrayLike, ell: ArrayLike) -> Array:
    r"""P(L_in < L < L_out) = e^{−L_in/ℓ} − e^{−L_out/ℓ} for decay length ℓ (module docstring).

    Arguments:
        l_in, l_out: path lengths to the entry and exit of the volume (l_in ≤ l_out; l_out may
            be ∞), any unit.
        ell: decay length βγcτ, the same unit (0: decays at once; ∞: never decays).

    Returns:
        P, the broadcast shape of the inputs; 0 where l_out ≤ l_in.

    References:
        PDG Review "Kinematics" §49.2.

    Example:
        >>> p = decay_probability(1.0, 2.0, np.array([1.0, 1e12]))
        >>> bool(np.isclose(p[0], np.exp(-1) - np.exp(-2))), bool(np.isclose(p[1], 1e-12))
        (True, True)
        >>> decay_probability(0.0, 5.0, 0.0).item(), decay_probability(5.0, np.inf, np.inf).item()
        (1.0, 0.0)
    """
    l_in, l_out, ell = (np.asarray(a, dtype=np.float64) for a in (l_in, l_out, ell))
    with np.errstate(invalid="ignore"):
        span = np.where(l_out > l_in, l_out - l_in, 0.0)
    return np.exp(-_ratio(l_in, ell)) * -np.expm1(-_ratio(span, ell))


def sample_decay_length(l_in: ArrayLike, l_out: ArrayLike, ell: ArrayLike, u: ArrayLike) -> Array:
    r"""Decay path lengths L ∈ [L_in, L_out] from the exponential law of mean ℓ truncated to
    that interval, by inverting its CDF at the uniforms ``u``:
    L = L_in − ℓ ln(1 − u (1 − e^{−(L_out − L_in)/ℓ})) (log1p and expm1: exact for ℓ ≫ L).

    Arguments:
        l_in, l_out: the interval (l_out may be ∞: the untruncated law from l_in).
        ell: decay length βγcτ (> 0).
        u: uniforms in [0, 1).

    Returns:
        L, the broadcast shape of the inputs; L_in where it is not finite (ℓ = 0 or ∞ and the
        like), clipped to [L_in, L_out].

    Example:
        >>> l = sample_decay_length(1.0, 2.0, 1e9, np.array([0.0, 0.5, 1.0 - 1e-16]))
        >>> np.round(l, 9).tolist()  # ℓ ≫ L: uniform in [1, 2]
        [1.0, 1.5, 2.0]
    """
    l_in, l_out, ell, u = (np.asarray(a, dtype=np.float64) for a in (l_in, l_out, ell, u))
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        frac = -np.expm1(-_ratio(np.where(l_out > l_in, l_out - l_in, 0.0), ell))
        length = l_in - ell * np.log1p(-u * frac)
    length = np.where(np.isfinite(length), length, l_in)
    return np.clip(length, l_in, l_out)
