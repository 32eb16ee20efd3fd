r"""The A′ lab kinematics: :class:`AprimeKinematics` drawn from a sampler (a
:class:`~gammastar.source.source.Source` or a kinematics model) by :func:`aprime_kinematics`
(its mass range: :func:`mass_range`), and the lab four-momenta of its two daughters from the
decay angles in the A′ helicity frame (:func:`decay_daughters`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.errors import GammastarError, InputError
from gammastar.physics.kinematics import decay_in_helicity_frame


@dataclass
class AprimeKinematics:
    """A′ lab four-momenta at one mass (GeV); ``ok`` marks physical sampler output."""

    mass: float
    px: NDArray
    py: NDArray
    pz: NDArray
    e: NDArray
    ok: NDArray[np.bool_]
    extrapolated: NDArray[np.bool_] | None = None
    weight: NDArray[np.float64] | None = None
    """The sampler's importance weights, scaled to a mean of 1 (``None``: unweighted draws)."""

    @property
    def p(self) -> NDArray:
        return np.sqrt(self.px**2 + self.py**2 + self.pz**2)

    @property
    def n(self) -> int:
        return int(self.px.size)


def _to_numpy(x: Any) -> Any:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else x


def mass_range(sampler: Any) -> tuple[float, float] | None:
    """The sampler's mass range (``mass_range`` attribute or ``meta["mass_range"]``), if any."""
    rng = getattr(sampler, "mass_range", None)
    if rng is not None:
        return float(rng[0]), float(rng[1])
    meta = getattr(sampler, "meta", None)
    if isinstance(meta, Mapping) and "mass_range" in meta:
        lo, hi = meta["mass_range"]
        return float(lo), float(hi)
    return None


def aprime_kinematics(
    sampler: Any,
    mass: float,
    n: int,
    *,
    seed: int | None,
    rng: np.random.Generator,
    phi_range: tuple[float, float] | None = None,
) -> AprimeKinematics:
    """Draw ``n`` A′ (q_T, E) at ``mass`` from ``sampler`` (a
    :class:`~gammastar.source.source.Source` or a kinematics model, seeded with ``seed``) and
    give them a uniform azimuth (from ``rng``: over [0, 2π), or over ``phi_range`` = (φ0, φ1)
    with as many draws, so that the later draws of ``rng`` stay the same). ``extrapolated`` is
    the sampler's labels, or ``None`` where it labels nothing (a model without labels, a Source
    that cannot extrapolate); ``weight`` its importance weights scaled to a mean of 1 (``None``
    where it gives none).

    Raises:
        InputError: mass outside the sampler's range, failing sampler, no physical sample.
    """
    rng_range = mass_range(sampler)
    if rng_range is not None and not (rng_range[0] <= mass <= rng_range[1]):
        raise InputError(
            f"A' mass {mass:g} GeV is outside the kinematic model's mass range "
            f"[{rng_range[0]:g}, {rng_range[1]:g}] GeV"
        )
    try:
        if hasattr(sampler, "sample"):
            out = sampler.sample(mass, n, seed=seed)
        else:
            out = sampler(mass, n, seed)
    except GammastarError:
        raise
    except (ValueError, RuntimeError) as err:
        raise InputError(f"A' sampler failed at mass {mass:g} GeV: {err}") from None
    try:
        qt = np.asarray(_to_numpy(out["qT"]), dtype=np.float64).ravel()
        e = np.asarray(_to_numpy(out["E"]), dtype=np.float64).ravel()
    except (KeyError, IndexError, ValueError, TypeError):
        raise InputError("A' sampler must return a mapping with 'qT' and 'E' arrays") from None
    if qt.size != e.size or qt.size == 0:
        raise InputError(f"A' sampler returned {qt.size} qT and {e.size} E values")
    p2 = e**2 - mass**2
    ok = np.isfinite(qt) & np.isfinite(e) & (p2 > 0) & (qt >= 0) & (qt**2 < p2)
    if not np.any(ok):
        raise InputError(f"A' sampler returned no physical (qT, E) sample at mass {mass:g} GeV")
    qt = np.where(ok, qt, 0.0)
    p = np.sqrt(np.where(ok, p2, 1.0))
    e = np.where(ok, e, np.sqrt(1.0 + mass**2))
    pz = np.sqrt(np.clip(p**2 - qt**2, 0.0, None))
    phi = rng.uniform(*(phi_range or (0.0, 2 * np.pi)), qt.size)
    extrap = out.get("extrapolated") if isinstance(out, Mapping) else None
    if not getattr(sampler, "extrapolates", True):  # a Source that labels nothing: None
        extrap = None
    weight = out.get("weight") if isinstance(out, Mapping) else None
    return AprimeKinematics(
        mass=float(mass),
        px=qt * np.cos(phi),
        py=qt * np.sin(phi),
        pz=pz,
        e=e,
        ok=ok,
        extrapolated=None if extrap is None else np.asarray(extrap, dtype=bool).ravel(),
        weight=None
        if weight is None
        else _unit_mean(np.asarray(_to_numpy(weight), np.float64).ravel()),
    )


def _unit_mean(w: NDArray) -> NDArray:
    """Importance weights scaled to a mean of 1 (they are known up to a constant), so that a
    mean of weighted terms is the self-normalised estimate."""
    if w.size == 0 or not np.all(np.isfinite(w)) or np.any(w < 0) or not w.sum() > 0:
        raise InputError("A' sampler returned weights that are not finite, non-negative numbers")
    return w / w.mean()


def decay_daughters(
    k: AprimeKinematics,
    m1: ArrayLike,
    m2: ArrayLike,
    cos_theta: NDArray,
    phi: NDArray,
) -> tuple[NDArray, NDArray]:
    """Lab four-momenta (px, py, pz, E), shape (4, n), of the two daughters of A′ → 1 2.

    Daughter 1 has polar angle θ and azimuth φ in the A′ helicity frame (z′ along the A′ lab
    momentum, x′ in the beam–A′ plane away from the beam, y′ = z′ × x′); daughter 2 is
    p_A′ − p_1, so four-momentum is conserved to rounding.

    References:
        :func:`gammastar.physics.kinematics.decay_in_helicity_frame` (the one implementation;
        its x′ = y′ × z′ with y′ ∝ ẑ × z′ is the axis above).
    """

    pa = np.stack([k.px, k.py, k.pz, k.e])
    p1, _ = decay_in_helicity_frame(
        pa, np.asarray(m1, dtype=np.float64), cos_theta, phi, mass=k.mass, m_other=m2
    )
    return p1, pa - p1
