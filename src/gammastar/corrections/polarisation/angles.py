r"""The lepton decay angles of a γ* in its helicity frame and their angular functions.

This module offers :func:`helicity_angles` (cos θ*, φ* of a pair's lepton),
:func:`angular_functions` (the terms of W, :mod:`gammastar.corrections.polarisation`, after
the 1) and the λ of a full-phase-space sample from its moments, without a fit
(:func:`truth_lambdas` from the angles, :func:`lambdas_from_sums` from a generator's sums).

References:
    P. Faccioli, C. Lourenço, J. Seixas, H. Wöhri, Eur. Phys. J. C 69 (2010) 657 (the
    helicity frame, the general form of W).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["angular_functions", "helicity_angles", "lambdas_from_sums", "truth_lambdas"]


def helicity_angles(
    l1: ArrayLike, l2: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """cos θ* and φ* of lepton 1 in the pair's helicity frame.

    z* = the pair's lab momentum direction, y* = beam (+z) × z*, x* = y* × z*; lepton 1 is
    boosted into the pair rest frame along the pair momentum (the axes are unchanged by that
    boost). A pair along the beam (no production plane) gets φ* about the lab x axis.

    Arguments:
        l1, l2: lab four-momenta, arrays of shape (4, n) ordered (px, py, pz, E).

    Returns:
        ``(cos_theta, phi)``, φ* in (−π, π].

    Example:
        >>> import numpy as np
        >>> m, pstar = 0.5, np.sqrt(0.25**2 - 0.1057**2)
        >>> e = np.hypot(pstar, 0.1057)   # leptons along ±x* at rest, pair at rest
        >>> c, phi = helicity_angles(np.array([[pstar], [0], [0], [e]]),
        ...                          np.array([[-pstar], [0], [0], [e]]))
        >>> round(float(c[0]), 12), round(float(phi[0]), 12)
        (0.0, 0.0)
    """
    a = np.asarray(l1, dtype=np.float64)
    b = np.asarray(l2, dtype=np.float64)
    # component by component, in place where a temporary can be reused: the numbers of the
    # (3, n) vector form (np.cross, sums over the axis) bit for bit, in a third of its
    # temporaries, whose first-touch page faults are most of the vector form's time
    ax, ay, az, ae = a
    px, py, pz, pe = (a[i] + b[i] for i in range(4))  # the pair
    pabs = px * px
    pabs += py * py
    pabs += pz * pz
    np.sqrt(pabs, out=pabs)
    mass = pe * pe
    mass -= pabs * pabs
    np.clip(mass, 1e-300, None, out=mass)
    np.sqrt(mass, out=mass)
    moving = pabs > 0
    inv = np.where(moving, pabs, 1.0)
    zx, zy, zz = (np.divide(c, inv, out=c) for c in (px, py, pz))  # z*: the pair's direction
    if not moving.all():
        still = ~moving
        zx[still], zy[still], zz[still] = 0.0, 0.0, 1.0
    del inv, moving
    # lepton 1 in the rest frame: the component along z* is boosted, the transverse ones not
    l_par = ax * zx
    l_par += ay * zy
    l_par += az * zz
    lpr = np.divide(pe, mass, out=pe)  # γ l_par − βγ E
    lpr *= l_par
    bg = np.divide(pabs, mass, out=pabs)
    bg *= ae
    lpr -= bg
    lpx = np.subtract(ax, l_par * zx, out=mass)  # l_perp = l − l_par z*
    lpy = ay - l_par * zy
    lpz = np.multiply(l_par, zz, out=l_par)
    np.subtract(az, lpz, out=lpz)
    # y* = beam × z* = (−z_y, z_x, 0)/|·| (the lab y axis for a pair along the beam)
    ny = zy * zy
    ny += zx * zx
    np.sqrt(ny, out=ny)
    along = ny < 1e-12
    np.putmask(ny, along, 1.0)
    yx = np.negative(zy)
    yx /= ny
    yy = np.divide(zx, ny, out=ny)
    if along.any():
        yx[along], yy[along] = 0.0, 1.0
    # x* = y* × z* = (y_y z_z, −y_x z_z, y_x z_y − y_y z_x) (y*_z = 0); lx = l_perp · x*
    lx = yy * zz
    lx *= lpx
    t = np.multiply(yx, zz, out=zz)
    np.negative(t, out=t)
    t *= lpy
    lx += t
    np.multiply(yx, zy, out=t)
    t -= yy * zx
    t *= lpz
    lx += t
    ly = np.multiply(lpx, yx, out=lpx)  # l_perp · y*
    ly += np.multiply(lpy, yy, out=lpy)
    p_rest = lx * lx
    p_rest += ly * ly
    p_rest += lpr * lpr
    np.sqrt(p_rest, out=p_rest)
    with np.errstate(divide="ignore", invalid="ignore"):
        cos_t = np.divide(lpr, p_rest, out=lpr)
    np.clip(cos_t, -1.0, 1.0, out=cos_t)
    return cos_t, np.arctan2(ly, lx)


def angular_functions(cos_theta: ArrayLike, phi: ArrayLike) -> NDArray[np.float64]:
    """(3, n): cos²θ*, sin²θ* cos2φ*, sin2θ* cosφ* (the terms of W after the 1).

    Example:
        >>> angular_functions([0.0], [0.0]).ravel().tolist()
        [0.0, 1.0, 0.0]
    """
    c, ph = np.broadcast_arrays(
        np.asarray(cos_theta, dtype=np.float64), np.asarray(phi, dtype=np.float64)
    )
    out = np.empty((3, *c.shape))
    if c.ndim != 1:
        _angular_block(c, ph, out)
        return out
    for b0 in range(0, c.size, _BLOCK):  # the temporaries of a block stay in the cache
        sl = slice(b0, b0 + _BLOCK)
        _angular_block(c[sl], ph[sl], out[:, sl])
    return out


_BLOCK = 1 << 16
"""Pairs per block of :func:`angular_functions` (the same numbers as one block)."""


def _angular_block(c: NDArray[np.float64], ph: NDArray[np.float64], out: NDArray[np.float64]):
    """:func:`angular_functions` of ``c``, ``ph`` into ``out`` (3, ...)."""
    c2 = c * c
    s2 = 1.0 - c2
    cp = np.cos(ph)
    out[0] = c2
    np.multiply(s2, 2.0 * cp * cp - 1.0, out=out[1])  # cos2φ = 2cos²φ − 1
    np.multiply(2.0 * c * np.sqrt(s2), cp, out=out[2])


def truth_lambdas(
    m: ArrayLike, cos_theta: ArrayLike, phi: ArrayLike, edges: ArrayLike
) -> dict[str, NDArray[np.float64]]:
    r"""The λ of a full-phase-space sample per mass bin, from its moments (no fit): for W of
    :mod:`gammastar.corrections.polarisation`, ⟨cos²θ*⟩ = (1/3 + λ_θ/5)/(1 + λ_θ/3),
    ⟨sin²θ* cos2φ*⟩ = (4/15) λ_φ/(1 + λ_θ/3), ⟨sin2θ* cosφ*⟩ = (4/15) λ_θφ/(1 + λ_θ/3)
    (integrals over the sphere). Used for the mock's truth.

    Returns:
        ``{"lambda_theta", "lambda_theta_err", "lambda_phi", "lambda_theta_phi", "n"}`` per
        bin (errors: the moment's standard error propagated).

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(4)
        >>> c = rng.uniform(-1, 1, 10**6); c = c[rng.uniform(0, 2, c.size) < 1 + c**2]
        >>> t = truth_lambdas(np.full(c.size, 0.5), c, rng.uniform(-3, 3, c.size), [0, 1])
        >>> bool(abs(t["lambda_theta"][0] - 1) < 3 * t["lambda_theta_err"][0])
        True
    """
    m = np.asarray(m, dtype=np.float64)
    u = angular_functions(cos_theta, phi)
    edges = np.asarray(edges, dtype=np.float64)
    n = np.histogram(m, edges)[0].astype(float)
    s = np.stack([np.histogram(m, edges, weights=x)[0] for x in u])
    s2 = np.histogram(m, edges, weights=u[0] ** 2)[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = s / n
        c2 = mean[0]
        lt = (5.0 - 15.0 * c2) / (5.0 * c2 - 3.0)
        dc2 = np.sqrt(np.clip(s2 / n - c2**2, 0, None) / n)
        dlt = 20.0 / (5.0 * c2 - 3.0) ** 2 * dc2  # d lt/d c2 = 20/(5 c2 − 3)²
        norm = 1.0 + lt / 3.0
        lp = mean[1] * norm * 15.0 / 4.0
        ltp = mean[2] * norm * 15.0 / 4.0
    return {"lambda_theta": lt, "lambda_theta_err": dlt, "lambda_phi": lp,
            "lambda_theta_phi": ltp, "n": n}  # fmt: skip


def lambdas_from_sums(n: ArrayLike, sums: ArrayLike) -> dict[str, NDArray[np.float64]]:
    r"""The λ per bin of a full-phase-space sample from its counts ``n`` and its sums (3, bins)
    of the :func:`angular_functions` (a generator's histograms): :func:`truth_lambdas`'
    moment formulas; ``lambda_theta_err`` the bound of cos²θ*'s spread, variance ≤ 4/45,
    propagated, √(4/45/n) · 20/(5⟨c²⟩ − 3)² (the histograms do not hold Σ cos⁴θ*).

    Example:
        >>> t = lambdas_from_sums([3.0], [[1.0], [0.0], [0.0]])   # ⟨cos²θ*⟩ = 1/3: isotropic
        >>> abs(float(t["lambda_theta"][0])) < 1e-12
        True
    """
    n = np.asarray(n, dtype=np.float64)
    s = np.asarray(sums, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        c2 = s[0] / n
        lt = (5.0 - 15.0 * c2) / (5.0 * c2 - 3.0)
        norm = 1.0 + lt / 3.0
        return {"lambda_theta": lt,
                "lambda_theta_err": np.sqrt(4.0 / 45.0 / n) * 20.0 / (5.0 * c2 - 3.0) ** 2,
                "lambda_phi": s[1] / n * norm * 3.75, "lambda_theta_phi": s[2] / n * norm * 3.75,
                "n": n}  # fmt: skip
