r"""Production and decay vertices: the production point in the target
(:func:`production_vertex`: beam spot and interaction depth), the decay distance forced into
[l₁, l₂] along the beam with its probability (:func:`_decay_z`), and decay vertices forced into
a shaped decay volume along each particle's line (:func:`shaped_decay`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from gammastar.physics.decay import decay_probability, sample_decay_length
from gammastar.physics.volumes.shapes import Volume, sample_decay_points


def _decay_z(l1: float, l2: float | None, ell: NDArray, u: NDArray) -> tuple[NDArray, NDArray]:
    """Decay distance z in [l1, l2] (``None``: no end) from the truncated exponential of mean
    ``ell`` and the probability P(l1 < z < l2): :mod:`gammastar.physics.decay`."""
    end = np.inf if l2 is None else l2
    prob = decay_probability(l1, end, ell)
    return sample_decay_length(l1, end, ell, u), np.where(np.isfinite(prob), prob, 0.0)


def production_vertex(
    st: Any, n: int, rng: np.random.Generator
) -> tuple[NDArray, NDArray, NDArray]:
    """Production vertices (x, y, z), m: the beam spot (Gaussian σ ``st.beam_spot``) and the
    depth e^{−z/λ_I} (``st.target_lambda``) over ``st.target_lengths`` interaction lengths."""
    x0 = rng.normal(0.0, st.beam_spot[0], n) if st.beam_spot[0] > 0 else np.zeros(n)
    y0 = rng.normal(0.0, st.beam_spot[1], n) if st.beam_spot[1] > 0 else np.zeros(n)
    u = rng.uniform(0.0, 1.0, n)
    if st.target_lambda > 0:
        z0 = -st.target_lambda * np.log1p(u * np.expm1(-st.target_lengths))
    else:
        z0 = np.zeros(n)
    return x0, y0, z0


def shaped_decay(
    volume: Volume,
    origin: NDArray,
    p: NDArray,
    ok: NDArray[np.bool_],
    mass: float,
    ctau: float,
    rng: np.random.Generator,
) -> tuple[NDArray, NDArray, NDArray]:
    """Decay vertices of particles produced at ``origin`` forced into a shaped decay volume.

    Each particle flies from ``origin`` along its momentum; its vertex is drawn from the
    exponential law of decay length ℓ = (|p|/m) cτ truncated to its crossing(s) of the
    volume, with P(decay in the volume) as the weight
    (:func:`gammastar.physics.volumes.shapes.sample_decay_points`, the exact entry and exit). One that
    cannot reach the volume (or is not ``ok``) decays where its free exponential law puts it,
    with weight 0.

    Arguments:
        volume: the decay volume (:mod:`gammastar.physics.volumes`).
        origin: production points (3, n), m.
        p: four-momenta (4, n), GeV.
        ok: physical particles (n,).
        mass: their mass, GeV. ctau: proper decay length, m.
        rng: the vertices' random generator.

    Returns:
        (vertex (3, n), P (n,), path length from the origin (n,)), m.

    Example:
        >>> from gammastar.physics.volumes.shapes import Box
        >>> v, w, s = shaped_decay(Box(half_x=1, half_y=1, z1=10, z2=20), np.zeros((3, 1)),
        ...                        np.array([[0.0], [0.0], [10.0], [10.05]]), np.array([True]),
        ...                        1.0, 5.0, np.random.default_rng(1))
        >>> bool(10 <= v[2, 0] <= 20), bool(np.isclose(w[0], np.exp(-0.2) - np.exp(-0.4)))
        (True, True)
    """
    pabs = np.linalg.norm(p[:3], axis=0)
    line = (pabs > 0) & np.isfinite(pabs)
    u = np.where(line, p[:3] / np.where(line, pabs, 1.0), np.array([[0.0], [0.0], [1.0]]))
    ell = np.where(line, pabs, 1.0) / mass * ctau
    vertex, prob = sample_decay_points(volume, origin, u, ell, rng)
    free = -ell * np.log1p(-rng.uniform(0.0, 1.0, ell.size))
    miss = ~(ok & line & (prob > 0))
    vertex = np.where(miss, origin + free * u, vertex)
    prob = np.where(miss, 0.0, prob)
    return vertex, prob, np.linalg.norm(vertex - origin, axis=0)
