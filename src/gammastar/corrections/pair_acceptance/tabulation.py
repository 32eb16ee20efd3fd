r"""The numba kernel that tabulates the pair acceptance's decay-angle moments.

For each (m, p, θ) node of a grid, :func:`_tabulate` averages the probability a that both
leptons of a γ* pass the per-lepton acceptance, and a times cos²θ*, sin²θ* cos2φ*,
sin2θ* cosφ* (:data:`N_MOMENTS`), over the lepton decay angles (θ*, φ*) in the γ* rest frame
(helicity frame; midpoint quadrature in cos θ* and φ*). A for a polar anisotropy λ_θ follows
from the first two (:func:`combine`, normalised by :func:`quadrature_c2`):

.. math:: A(m, p, \theta) = \frac{\int d\Omega^*\,(1 + \lambda_\theta\cos^2\theta^*)\,
          a(\ell^+)\,a(\ell^-)}{\int d\Omega^*\,(1 + \lambda_\theta\cos^2\theta^*)}.

:data:`TABLE_VERSION` names the kernel's arithmetic in the table cache's key; :func:`warm_up`
compiles the kernel (:mod:`gammastar.kernels`).

Reference:
    P. Faccioli et al., Eur. Phys. J. C 69 (2010) 657 (λ_θ and the helicity frame).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["N_MOMENTS", "TABLE_VERSION", "combine", "quadrature_c2", "warm_up"]

N_MOMENTS = 4
"""Decay-angle moments tabulated per (m, p, θ) cell: ⟨a⟩, ⟨cos²θ* a⟩, ⟨sin²θ* cos2φ* a⟩,
⟨sin2θ* cosφ* a⟩ (averages over the uniform decay sphere of the pair's pass probability a)."""


_MARGIN = 1e-9
"""Radians: a lepton angle this far inside or outside the window passes or fails the per-φ*
test whatever its rounding (a few 1e-16 relative)."""


def _lepton_nodes(m, p, m_lep, e_min, cs, ppar, alpha, live):  # fmt: skip
    """Per cos θ* node of a γ* of mass ``m`` and momentum ``p``: each lepton's lab momentum
    along the γ* (``ppar``) and angle to it (``alpha``), and whether both pass the energy
    threshold (``live``); they depend on cos θ* alone. Returns p* (numba: :func:`_kernel`)."""
    pstar = math.sqrt(0.25 * m * m - m_lep * m_lep)
    estar = 0.5 * m
    e = math.sqrt(p * p + m * m)
    gam = e / m
    bg = p / m
    for a in range(cs.size):
        c = cs[a]
        ok = True
        for h in range(2):
            sign = 1.0 - 2.0 * h
            ppar[a, h] = gam * sign * pstar * c + bg * estar
            el = gam * estar + bg * sign * pstar * c
            ok = ok and el >= e_min
            alpha[a, h] = math.atan2(pstar * math.sqrt(1.0 - c * c), ppar[a, h])
        live[a] = ok
    return pstar


def _node_state(th, alpha_a, th_min, th_max, th_hi_open):  # fmt: skip
    """Over φ* a lepton's lab polar angle sweeps [|θ − α|, min(θ + α, 2π − θ − α)]: 0 where
    a lepton's sweep lies wholly outside the window (by far more than the rounding of the
    per-φ* test: every φ* fails), 2 where both lie wholly inside (every φ* passes), else 1
    (test each φ*)."""
    state = 2
    for h in range(2):
        lo = abs(th - alpha_a[h])
        hi = min(th + alpha_a[h], 2.0 * math.pi - th - alpha_a[h])
        if hi < th_min - _MARGIN or (not th_hi_open and lo > th_max + _MARGIN):
            return 0
        if not (lo > th_min + _MARGIN and (th_hi_open or hi < th_max - _MARGIN)):
            state = 1
    return state


def _phi_sums(ppar_a, pperp, st, ct, cph, sph, c2ph, tan_lo, tan_hi, th_hi_open,
              map_p, map_t, map_v, use_map):  # fmt: skip
    """The φ* sums of the pair's pass probability at one (cos θ*, θ) node: Σ a, Σ a cos2φ*,
    Σ a cosφ* (a: both leptons in the angular window, times their map values)."""
    tot = 0.0
    tot2 = 0.0
    tot1 = 0.0
    for b in range(cph.size):
        w = 1.0
        for h in range(2):
            sign = 1.0 - 2.0 * h
            px = ppar_a[h] * st + sign * pperp * cph[b] * ct
            py = sign * pperp * sph[b]
            pz = ppar_a[h] * ct - sign * pperp * cph[b] * st
            pt = math.sqrt(px * px + py * py)
            ok = pt >= tan_lo * pz
            if not th_hi_open:
                ok = ok and pz > 0.0 and pt <= tan_hi * pz
            if not ok:
                w = 0.0
                break
            if use_map:
                pl = math.sqrt(pt * pt + pz * pz)
                tl = math.atan2(pt, pz)
                ii = np.searchsorted(map_p, pl, side="right") - 1
                jj = np.searchsorted(map_t, tl, side="right") - 1
                if ii < 0 or jj < 0 or ii >= map_v.shape[0] or jj >= map_v.shape[1]:
                    w = 0.0
                    break
                w *= map_v[ii, jj]
        tot += w
        tot2 += w * c2ph[b]
        tot1 += w * cph[b]
    return tot, tot2, tot1


# the helpers compiled by _kernel (module globals: numba caches a kernel that calls them)
_LEPTON_NODES = _NODE_STATE = _PHI_SUMS = None


def _kernel():
    global _LEPTON_NODES, _NODE_STATE, _PHI_SUMS
    from numba import njit

    from gammastar.core.imports import import_vector

    import_vector()  # before numba's first dispatch loads vector's extension (core.imports)
    _LEPTON_NODES = njit(cache=True)(_lepton_nodes)
    _NODE_STATE = njit(cache=True)(_node_state)
    _PHI_SUMS = njit(cache=True)(_phi_sums)

    # serial: numba's parallel compilation of this kernel costs more CPU than the whole
    # tabulation, which the early exits below keep to a few seconds (and the table is cached)
    @njit(cache=True)
    def tabulate(m_grid, p_grid, t_grid, m_lep, e_min, tan_lo, tan_hi, th_hi_open,
                 n_c, n_phi, map_p, map_t, map_v, use_map):  # fmt: skip
        nm, np_, nt = m_grid.size, p_grid.size, t_grid.size
        out = np.zeros((4, nm, np_, nt))  # the moments' layout: (N_MOMENTS, m, p, θ)
        # midpoint nodes in cos θ* ∈ (0, 1) and φ* ∈ (0, π): the swap of the two leptons
        # (c → −c, φ → φ + π) and the reflection φ → −φ leave the pair's acceptance and the
        # four angular functions (1, c², s² cos2φ, 2cs cosφ) unchanged
        cs = (np.arange(n_c) + 0.5) / n_c
        ph = (np.arange(n_phi) + 0.5) * np.pi / n_phi
        norm = float(n_c * n_phi)
        cph, sph = np.cos(ph), np.sin(ph)
        c2ph = np.cos(2.0 * ph)
        # the φ* sums of a node where both leptons pass at every φ*, in the loop's order
        sum_c2 = 0.0
        sum_c1 = 0.0
        for b in range(n_phi):
            sum_c2 += c2ph[b]
            sum_c1 += cph[b]
        th_min = math.atan(tan_lo)
        th_max = math.atan(tan_hi)
        ppar = np.empty((n_c, 2))
        alpha = np.empty((n_c, 2))  # each lepton's angle to the γ* direction
        live = np.zeros(n_c, np.bool_)
        for cell in range(nm * np_):
            i = cell // np_
            j = cell % np_
            m = m_grid[i]
            if m <= 2.0 * m_lep:
                continue
            # a node where either lepton is below the energy threshold adds nothing at any
            # θ or φ*
            pstar = _LEPTON_NODES(m, p_grid[j], m_lep, e_min, cs, ppar, alpha, live)
            for k in range(nt):
                th = t_grid[k]
                st, ct = math.sin(th), math.cos(th)
                m0 = 0.0
                m2 = 0.0
                mphi = 0.0
                mthphi = 0.0
                for a in range(n_c):
                    if not live[a]:
                        continue
                    state = _NODE_STATE(th, alpha[a], th_min, th_max, th_hi_open)
                    if state == 0:
                        continue
                    c = cs[a]
                    s = math.sqrt(1.0 - c * c)
                    if state == 2 and not use_map:
                        m0 += float(n_phi)
                        m2 += c * c * float(n_phi)
                        mphi += s * s * sum_c2
                        mthphi += 2.0 * c * s * sum_c1
                        continue
                    tot, tot2, tot1 = _PHI_SUMS(ppar[a], pstar * s, st, ct, cph, sph, c2ph,
                                                tan_lo, tan_hi, th_hi_open, map_p, map_t,
                                                map_v, use_map)  # fmt: skip
                    m0 += tot
                    m2 += c * c * tot
                    mphi += s * s * tot2
                    mthphi += 2.0 * c * s * tot1
                out[0, i, j, k] = m0 / norm
                out[1, i, j, k] = m2 / norm
                out[2, i, j, k] = mphi / norm
                out[3, i, j, k] = mthphi / norm
        return out

    return tabulate


_TABULATE = None


def _tabulate(*args):
    global _TABULATE
    if _TABULATE is None:
        _TABULATE = _kernel()
    return _TABULATE(*args)


def quadrature_c2(n_c: int) -> float:
    """⟨cos²θ*⟩ of the isotropic decay on the kernel's midpoint nodes (1/3 − 1/(12 n_c²)):
    the normalisation of A(λ_θ), so that λ_θ ≠ 0 leaves a detector that accepts everything
    at A = 1 exactly."""
    cs = (np.arange(n_c) + 0.5) / n_c
    return float(np.mean(cs * cs))


def combine(moments: NDArray[np.float64], lambda_theta: ArrayLike, n_c: int) -> NDArray[np.float64]:
    r"""A(λ_θ) = (⟨a⟩ + λ_θ ⟨cos²θ* a⟩) / (1 + λ_θ ⟨cos²θ*⟩) from the moment table.

    Arguments:
        moments: (4, n_m, ...) moments (:data:`N_MOMENTS`, first axis).
        lambda_theta: one λ_θ, or one per mass node (the second axis).
        n_c: the quadrature's cos θ* nodes (normalisation, :func:`quadrature_c2`).

    Example:
        >>> combine(np.array([[0.5], [0.2], [0.0], [0.0]]), 1.0, 10**6).round(4).tolist()
        [0.525]
    """
    lam = np.asarray(lambda_theta, dtype=np.float64)
    if lam.ndim:
        lam = lam.reshape((-1,) + (1,) * (moments.ndim - 2))
    return (moments[0] + lam * moments[1]) / (1.0 + lam * quadrature_c2(n_c))


TABLE_VERSION = 3
"""Bumped whenever the kernel's arithmetic changes (invalidates cached tables). 2: the
decay-angle moments instead of one λ_θ's table; 3: mass nodes uniform in p*."""


def warm_up() -> None:
    """Compile (or load from numba's cache) the tabulation kernel at the signature
    :meth:`~gammastar.corrections.pair_acceptance.table.PairAcceptance.build` calls it with,
    on a tiny grid and not through the table cache (:mod:`gammastar.kernels`)."""
    one = np.ones(1)
    # with or without a lepton map: one signature (the map's use is a run-time flag)
    _tabulate(np.array([0.4]), np.array([5.0]), np.array([0.1]), 0.1057, 1.0, 0.02, np.inf,
              True, 2, 2, one, one, np.ones((1, 1)), True)  # fmt: skip
