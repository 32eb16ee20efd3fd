r"""The detector's verdict on a decay, the one definition of a detected event (acceptance
stage, reach, events): :func:`detector_hits` for an A′ (or its two daughters) decaying at a
distance along the beam, :func:`dark_hits` for ψ₂ → ψ₁ℓ⁻ℓ⁺ with the pair's opening-angle cut
(:func:`opening_angle_passes`). Shaped detectors give theirs through
:meth:`gammastar.source.geometry.Shapes.seen`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from gammastar.source.aprime import AprimeKinematics


def _theta(px: NDArray, py: NDArray, pz: NDArray) -> NDArray:
    return np.arctan2(np.hypot(px, py), pz)


def detector_hits(
    geometry: Any,
    k: AprimeKinematics,
    daughters: tuple[NDArray, NDArray] | None,
    z: NDArray,
) -> NDArray[np.float64]:
    """The detector's verdict (1/0) for A′ decays at distance ``z`` (m, along the beam from the
    production point): broadcast shape of ``(n, 1)`` and ``z``.

    The A′ direction (or, with ``geometry.both_daughters``, both daughters' directions and
    energies ≥ ``min_daughter_energy``) in [θ_min, θ_max); with ``plane_z`` each line from the
    decay vertex must cross the plane at r_min ≤ r ≤ r_max. The one definition of a detected
    event (acceptance stage, reach, events).
    """
    z = np.asarray(z, dtype=np.float64)
    ok = k.ok.copy()
    if daughters is None:
        th = _theta(k.px, k.py, k.pz)
        ok &= (th >= geometry.theta_min) & (th < geometry.theta_max)
        lines = [(k.px, k.py, k.pz)]
    else:
        lines = []
        for d in daughters:
            th = _theta(d[0], d[1], d[2])
            ok &= (th >= geometry.theta_min) & (th < geometry.theta_max)
            ok &= d[3] >= geometry.min_daughter_energy
            lines.append((d[0], d[1], d[2]))
    hits = np.broadcast_to(ok[:, None], np.broadcast_shapes((ok.size, 1), z.shape)).astype(
        np.float64
    )
    if geometry.plane_z is None:
        return hits
    zp = float(geometry.plane_z)
    pz_safe = np.where(k.pz > 0, k.pz, 1.0)
    xv = z * (k.px / pz_safe)[:, None]
    yv = z * (k.py / pz_safe)[:, None]
    sel = np.nonzero(ok)[0]  # only where still accepted (cheaper)
    if sel.size == 0:
        return hits
    zs = z if z.shape[0] != ok.size else z[sel]
    for ux, uy, uz in lines:
        uzs = uz[sel][:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (zp - zs) / uzs
        fwd = (uzs > 0) & np.isfinite(t)
        t = np.where(fwd, t, 0.0)
        x = xv[sel] + t * ux[sel][:, None]
        y = yv[sel] + t * uy[sel][:, None]
        r = np.hypot(x, y)
        good = fwd & (r >= geometry.r_min)
        if geometry.r_max is not None:
            good &= r <= geometry.r_max
        hits[sel] *= good
    return hits


def dark_hits(
    geometry: Any,
    psi2: AprimeKinematics,
    lminus: NDArray,
    lplus: NDArray,
    z: NDArray,
    min_opening_angle: float = 0.0,
) -> NDArray[np.float64]:
    """The detector's verdict (1/0) for ψ₂ → ψ₁ℓ⁻ℓ⁺ decays at distance ``z`` (m, along the
    beam from the production point): :func:`detector_hits` with the ψ₂ as the decaying particle
    and both leptons as its daughters (angles, energies ≥ ``min_daughter_energy``, the downstream
    plane), and the lab opening angle of the pair ≥ ``min_opening_angle``. The one definition of
    a detected semi-visible event (``gammastar events --dark``, ``gammastar reach-idm``).

    Arguments:
        geometry: the :class:`gammastar.source.geometry.Geometry`.
        psi2: ψ₂ lab kinematics (``ok`` false: not detected).
        lminus, lplus: (4, n) lepton lab four-momenta.
        z: decay distances, broadcast against (n, 1).
        min_opening_angle: rad.

    Returns:
        Hit indicator, the broadcast shape of (n, 1) and ``z``.
    """
    hits = detector_hits(geometry, psi2, (lminus, lplus), z)
    if min_opening_angle > 0:
        hits = hits * opening_angle_passes(lminus, lplus, min_opening_angle)[:, None]
    return hits


def opening_angle_passes(
    lminus: NDArray, lplus: NDArray, min_opening_angle: float
) -> NDArray[np.bool_]:
    """Whether the lab opening angle of each lepton pair (4, n) is at least
    ``min_opening_angle`` (rad); all true for 0.

    Example:
        >>> a, b = np.array([[1.0], [0], [10], [10.05]]), np.array([[-1.0], [0], [10], [10.05]])
        >>> opening_angle_passes(a, b, 0.1).tolist(), opening_angle_passes(a, b, 0.3).tolist()
        ([True], [False])
    """
    if not min_opening_angle > 0:
        return np.ones(np.shape(lminus)[1], dtype=bool)
    a, b = lminus[:3], lplus[:3]
    na, nb = np.linalg.norm(a, axis=0), np.linalg.norm(b, axis=0)
    cos = np.sum(a * b, axis=0) / np.where(na * nb > 0, na * nb, 1.0)
    return np.arccos(np.clip(cos, -1.0, 1.0)) >= min_opening_angle
