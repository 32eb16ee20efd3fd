r"""Fully differential pair acceptance from a per-lepton acceptance description.

:class:`LeptonAcceptance` says whether one lepton passes the spectrometer (an energy threshold
and a polar-angle window, optionally times a single-lepton acceptance map in (p, θ));
the mock detector and the analysis use the same class. :class:`PairAcceptance` is the
probability that both leptons of a γ* of mass m, lab momentum p and polar angle θ pass,

.. math:: A(m, p, \theta) = \frac{\int d\Omega^*\,(1 + \lambda_\theta\cos^2\theta^*)\,
          a(\ell^+)\,a(\ell^-)}{\int d\Omega^*\,(1 + \lambda_\theta\cos^2\theta^*)},

averaged over the lepton decay angles (θ*, φ*) in the γ* rest frame (helicity frame: polar
axis along the γ* lab momentum; the detector is azimuthally symmetric, so A does not depend on
the γ* azimuth). It is tabulated once on a (m, log p, θ) grid (mass nodes uniform in the
decay momentum p*; a numba kernel, midpoint quadrature in cos θ* and φ*; cached on disk,
:func:`gammastar.core.cachedir.cache_dir`) and looked up per pair by trilinear interpolation. Pairs with
A below ``min_acceptance`` are outside the *fiducial region*, which :class:`FiducialRegion`
states (and reproduces for any sample of kinematics).

References:
    P. Faccioli et al., Eur. Phys. J. C 69 (2010) 657 (λ_θ and the helicity frame);
    NA60, Eur. Phys. J. C 59 (2009) 607 (per-muon acceptance of the dimuon spectrometer).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.core.cachedir import cache_path, store
from gammastar.corrections.unfold import read_root_histogram, split_map_spec
from gammastar.errors import ConfigError, InputError

__all__ = [
    "FiducialRegion",
    "LeptonAcceptance",
    "PairAcceptance",
    "PairMoments",
    "load_lepton_map",
]


@dataclass(frozen=True)
class LeptonAcceptance:
    """Single-lepton acceptance: E ≥ ``min_energy``, ``theta_min`` ≤ θ ≤ ``theta_max``, and
    optionally a probability from a map in (p, θ) (nearest bin; 0 outside the map).

    Example:
        >>> la = LeptonAcceptance(3.0, 0.035, 0.120)
        >>> la.probability(np.array([10.0, 2.0]), np.array([0.05, 0.05])).tolist()
        [1.0, 0.0]
    """

    min_energy: float
    theta_min: float
    theta_max: float
    map_p_edges: NDArray[np.float64] | None = field(default=None, compare=False)
    map_theta_edges: NDArray[np.float64] | None = field(default=None, compare=False)
    map_values: NDArray[np.float64] | None = field(default=None, compare=False)
    source: str = "cuts"

    def __post_init__(self) -> None:
        if not self.theta_max > self.theta_min:
            raise ConfigError(
                f"lepton acceptance: theta_max ({self.theta_max}) must exceed theta_min "
                f"({self.theta_min})"
            )

    @classmethod
    def from_config(cls, section: Any, *, resolve: Any = None) -> LeptonAcceptance:
        """From ``unfold.lepton_acceptance`` (or ``mock.detector``: ``muon_min_energy``).

        Arguments:
            section: an object with ``min_energy`` (or ``muon_min_energy``), ``theta_min``,
                ``theta_max`` and optionally ``map`` (``"file.root:name"``).
            resolve: callable turning the map's path into a file path (the config's).
        """
        e_min = getattr(section, "min_energy", None)
        if e_min is None:
            e_min = section.muon_min_energy
        spec = getattr(section, "map", None)
        if spec is None:
            return cls(float(e_min), float(section.theta_min), float(section.theta_max))
        p_edges, t_edges, values, label = load_lepton_map(spec, resolve)
        return cls(
            float(e_min),
            float(section.theta_min),
            float(section.theta_max),
            p_edges,
            t_edges,
            values,
            label,
        )

    def intersect(self, min_energy: float, theta_min: float, theta_max: float) -> LeptonAcceptance:
        """The same acceptance with a selection's lepton cuts applied on top."""
        return LeptonAcceptance(
            max(self.min_energy, min_energy),
            max(self.theta_min, theta_min),
            min(self.theta_max, theta_max),
            self.map_p_edges,
            self.map_theta_edges,
            self.map_values,
            self.source,
        )

    def probability(self, energy: ArrayLike, theta: ArrayLike, p: ArrayLike | None = None):
        """Pass probability per lepton (0/1 for the cuts, times the map's value).

        Arguments:
            energy: lab energy (GeV). theta: lab polar angle (rad).
            p: lab momentum (GeV; only with a map; default ``energy``).
        """
        e = np.asarray(energy, dtype=np.float64)
        th = np.asarray(theta, dtype=np.float64)
        ok = (e >= self.min_energy) & (th >= self.theta_min) & (th <= self.theta_max)
        prob = ok.astype(np.float64)
        if self.map_values is not None:
            pp = e if p is None else np.asarray(p, dtype=np.float64)
            i = np.searchsorted(self.map_p_edges, pp, side="right") - 1
            j = np.searchsorted(self.map_theta_edges, th, side="right") - 1
            inside = (i >= 0) & (i < self.map_values.shape[0])
            inside &= (j >= 0) & (j < self.map_values.shape[1])
            val = np.zeros(e.shape)
            val[inside] = self.map_values[i[inside], j[inside]]
            prob *= val
        return prob

    def passes(self, p4: NDArray[np.float64]) -> NDArray[np.bool_]:
        """Deterministic pass (cuts only, or map value > 0) for four-momenta (px, py, pz, E)."""
        theta = np.arctan2(np.hypot(p4[0], p4[1]), p4[2])
        p = np.sqrt(p4[0] ** 2 + p4[1] ** 2 + p4[2] ** 2)
        return self.probability(p4[3], theta, p) > 0

    def as_dict(self) -> dict[str, Any]:
        """JSON description (recorded in the outputs' ``meta``)."""
        return {
            "min_energy": self.min_energy,
            "theta_min": self.theta_min,
            "theta_max": self.theta_max,
            "map": None if self.map_values is None else self.source,
        }


def load_lepton_map(spec: str, resolve: Any = None) -> tuple[NDArray, NDArray, NDArray, str]:
    """Read a single-lepton acceptance map (ROOT TH2: x = p in GeV, y = θ in rad,
    contents in [0, 1]) given as ``"file.root:name"``.

    Raises:
        ConfigError: the file or histogram does not exist; InputError: bad contents (NaN,
            negative or > 1 bins, an all-zero map) or not a TH2.
    """
    import os


    path, key = split_map_spec(spec, "acceptance")
    path = os.fspath(resolve(path) if resolve is not None else path)
    label = f"{path}:{key}"
    h = read_root_histogram(path, key, kind="TH2", key="unfold.lepton_acceptance.map",
                            what="x = p, y = theta")  # fmt: skip
    v = np.asarray(h.values(), dtype=np.float64)
    p_edges = np.asarray(h.axes[0].edges, dtype=np.float64)
    t_edges = np.asarray(h.axes[1].edges, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        raise InputError(f"{label}: the lepton acceptance map has NaN or infinite bins")
    if np.any(v < 0) or np.any(v > 1):
        raise InputError(
            f"{label}: lepton acceptance map contents must lie in [0, 1] "
            f"(found {v.min():g}..{v.max():g})"
        )
    if not np.any(v > 0):
        raise InputError(f"{label}: the lepton acceptance map is zero everywhere")
    return p_edges, t_edges, v, label


# --------------------------------------------------------------------------- the kernel
N_MOMENTS = 4
"""Decay-angle moments tabulated per (m, p, θ) cell: ⟨a⟩, ⟨cos²θ* a⟩, ⟨sin²θ* cos2φ* a⟩,
⟨sin2θ* cosφ* a⟩ (averages over the uniform decay sphere of the pair's pass probability a)."""


_MARGIN = 1e-9
"""Radians: a lepton angle this far inside or outside the window passes or fails the per-φ*
test whatever its rounding (a few 1e-16 relative)."""


def _kernel():
    from numba import njit

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
            pstar = math.sqrt(0.25 * m * m - m_lep * m_lep)
            estar = 0.5 * m
            p = p_grid[j]
            e = math.sqrt(p * p + m * m)
            gam = e / m
            bg = p / m
            # the leptons' lab momenta along the γ* and energies depend on cos θ* alone: a node
            # where either lepton is below the energy threshold adds nothing at any θ or φ*
            for a in range(n_c):
                c = cs[a]
                ok = True
                for h in range(2):
                    sign = 1.0 - 2.0 * h
                    ppar[a, h] = gam * sign * pstar * c + bg * estar
                    el = gam * estar + bg * sign * pstar * c
                    ok = ok and el >= e_min
                    alpha[a, h] = math.atan2(pstar * math.sqrt(1.0 - c * c), ppar[a, h])
                live[a] = ok
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
                    # over φ* a lepton's lab polar angle sweeps [|θ − α|, min(θ + α, 2π − θ − α)]:
                    # a node whose sweep lies wholly outside the window (by far more than the
                    # rounding of the per-φ* test) adds nothing; wholly inside, every φ* passes
                    state = 2  # 0: every φ* fails, 1: test each φ*, 2: every φ* passes
                    for h in range(2):
                        lo = abs(th - alpha[a, h])
                        hi = min(th + alpha[a, h], 2.0 * math.pi - th - alpha[a, h])
                        if hi < th_min - _MARGIN or (not th_hi_open and lo > th_max + _MARGIN):
                            state = 0
                            break
                        if not (lo > th_min + _MARGIN and (th_hi_open or hi < th_max - _MARGIN)):
                            state = 1
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
                    pperp = pstar * s
                    tot = 0.0
                    tot2 = 0.0
                    tot1 = 0.0
                    for b in range(n_phi):
                        w = 1.0
                        for h in range(2):
                            sign = 1.0 - 2.0 * h
                            px = ppar[a, h] * st + sign * pperp * cph[b] * ct
                            py = sign * pperp * sph[b]
                            pz = ppar[a, h] * ct - sign * pperp * cph[b] * st
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
    if _TABULATE is None:        _TABULATE = _kernel()
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


def _pstar(m: ArrayLike, m_lep: float) -> NDArray[np.float64]:
    """Daughter momentum in the γ* rest frame, √(m²/4 − m_ℓ²) (0 below threshold)."""
    m = np.asarray(m, dtype=np.float64)
    return np.sqrt(np.clip(0.25 * m * m - m_lep * m_lep, 0.0, None))


class _Grid(NamedTuple):
    """The ranges of a table's (p*(m), log p, θ) grid (:attr:`PairAcceptance._grid`): p* at
    the first and last mass node, log p at the first and last momentum node, the last θ node
    (the first is 0), and the lepton mass of p*."""

    ps0: float
    ps1: float
    lp0: float
    lp1: float
    t1: float
    m_lep: float


def _cells(shape, m, p, th, grid):
    """The trilinear cell of each point on a (p*(m), log p, θ) grid of ``shape`` and ranges
    ``grid`` (:class:`_Grid`): ``(base, x, y, z, dead)``, the flat index of the cell's lowest
    corner, the fractional offsets in the cell along the three axes and the points outside
    the kinematic range (A = 0 there). Computed once per point and contracted with any table
    of that grid (:func:`_contract`); in place where it can (``fmax``/``fmin`` clip and send
    NaN, dead points, to 0 in one go, the numbers ``clip`` and ``nan_to_num`` give)."""
    ps0, ps1, lp0, lp1, t1, m_lep = grid
    nm, np_, nt = shape
    with np.errstate(divide="ignore", invalid="ignore"):
        lp = np.log(p)
        dead = ~((m > 2.0 * m_lep) & (th >= 0) & (th <= t1) & (lp >= lp0))
    x = _pstar(m, m_lep)
    x -= ps0
    x *= (nm - 1) / (ps1 - ps0)
    y = lp
    y -= lp0
    y *= (np_ - 1) / (lp1 - lp0)
    z = th * ((nt - 1) / t1)
    out = []
    for v, top in ((x, nm - 1.0), (y, np_ - 1.0), (z, nt - 1.0)):
        np.fmax(v, 0.0, out=v)  # NaN (dead anyway) → 0, a valid index
        np.fmin(v, top, out=v)
        i = v.astype(np.intp)
        np.minimum(i, int(top) - 1, out=i)
        v -= i
        out.append(i)
    base, j, k = out
    base *= np_
    base += j
    base *= nt
    base += k
    return base, x, y, z, dead


_BLOCK = 8192
"""Points per block of :func:`_trilinear`: its temporaries stay in the CPU cache (half the
time of whole-sample arrays at 2·10⁶ pairs, the same numbers)."""


def _contract(flat, shape, cells, out, upper=None):
    """Trilinear interpolation of the tables ``flat`` ((n_nodes,) or (n_tables, n_nodes):
    tables of ``shape``, flattened) at the points of ``cells`` (:func:`_cells`), written to
    ``out`` ((n,) or (n_tables, n)). Several tables share one cell computation and are
    gathered and weighted together (the same arithmetic, in the same order, for every
    table). Tables in single precision are interpolated in it (the cells' offsets rounded
    to it).

    With ``upper`` ((2, n)), also the first two tables' terms from the four corners of each
    point's cell at its upper mass node (which ``out`` adds; 0 where ``out`` is), for
    :meth:`PairAcceptance.acceptance_at`."""
    _, np_, nt = shape
    base, x, y, z, dead = cells
    if flat.dtype != x.dtype:
        x, y, z = (v.astype(flat.dtype) for v in (x, y, z))
    axis = flat.ndim - 1
    out[...] = 0.0
    if upper is not None:
        upper[...] = 0.0
    for a in (0, 1):
        wa = x if a else 1.0 - x
        for b in (0, 1):
            wab = wa * (y if b else 1.0 - y)
            idx = base + (a * np_ + b) * nt
            lo = flat.take(idx, axis=axis)
            hi = flat.take(idx + 1, axis=axis)
            hi -= lo
            hi *= z
            hi += lo
            hi *= wab
            out += hi
            if a and upper is not None:
                upper += hi[:2]
    out[..., dead] = 0.0
    if upper is not None:
        upper[:, dead] = 0.0
    return out


def _trilinear(flat, shape, m, p, th, grid):
    """Trilinear interpolation of the tables ``flat`` (see :func:`_contract`) at the points
    (m, p, θ) on the grid of ranges ``grid`` (:class:`_Grid`), in
    blocks of :data:`_BLOCK` points: each block's cells are computed and contracted while
    they are in the CPU cache (the same numbers as all cells first, then the contraction,
    faster for a one-table lookup). The result has the tables' dtype."""
    n = m.size
    out = np.empty((*flat.shape[:-1], n), dtype=flat.dtype)
    for b0 in range(0, n, _BLOCK):
        sl = slice(b0, min(n, b0 + _BLOCK))
        _contract(flat, shape, _cells(shape, m[sl], p[sl], th[sl], grid), out[..., sl])
    return out


def _interpolate(table, m, p, th, grid, clip=True):
    """Trilinear interpolation on the (p*(m), log p, θ) table (numpy: a jitted kernel's first
    call costs a second of LLVM start-up, more than the lookup of a whole selection).

    The mass axis is uniform in p* = √(m²/4 − m_ℓ²), not in m: near the 2m_ℓ threshold A
    follows p*, which grows like √(m − 2m_ℓ), and linear interpolation in m there was up to 5%
    high in A (0.953 for 1.000 at m = 0.227 GeV, 22.8 MeV nodes; docs/explanation/reach.md §2.1)."""
    out = _trilinear(table.ravel(), table.shape, m, p, th, grid)
    return np.clip(out, 0.0, 1.0, out=out) if clip else out


# --------------------------------------------------------------------------- the table
@dataclass(frozen=True)
class PairMoments:
    """The decay-angle moments of a :class:`PairAcceptance` interpolated at n points
    (:meth:`PairAcceptance.pair_moments`), with the share of the first two from each point's
    upper mass node: what A of a λ_θ that varies over the mass nodes needs
    (:meth:`PairAcceptance.acceptance_at`)."""

    values: NDArray[np.float64]
    """(4, n): :meth:`PairAcceptance.moments_at` of the points (the same numbers in float64)."""
    upper: NDArray[np.float64]
    """(2, n): the terms of ⟨a⟩ and ⟨cos²θ* a⟩ from the four corners of each point's cell at
    its upper mass node (0 where the moments are)."""
    node: NDArray[np.integer]
    """(n,): the lower mass node of each point's cell (the upper is the next one)."""


@dataclass(frozen=True)
class PairAcceptance:
    """A(m, p, θ) on a grid (picklable: plain numpy arrays); see the module docstring.

    Build with :meth:`build`; evaluate with :meth:`__call__` (m, p, θ) or :meth:`lookup`
    (m, pT, pz, the columns of the pairs table). ``moments`` holds the four decay-angle
    moments of the pass probability (:data:`N_MOMENTS`), from which ``table`` follows for any
    λ_θ (:meth:`with_lambda`) and which the polarisation measurement uses
    (:mod:`gammastar.corrections.polarisation`).
    """

    lepton: LeptonAcceptance
    lepton_mass: float
    lambda_theta: float | tuple[float, ...]
    """One λ_θ, or one per mass node of ``m_grid`` (a measured λ_θ(m))."""
    m_grid: NDArray[np.float64]
    logp_grid: NDArray[np.float64]
    theta_grid: NDArray[np.float64]
    table: NDArray[np.float64]
    quadrature: tuple[int, int] = (32, 32)
    generated: None = None
    """No generated counts (the interface of :class:`gammastar.corrections.unfold.AcceptanceMap`)."""
    moments: NDArray[np.float64] | None = field(default=None, compare=False, repr=False)
    """(4, n_m, n_p, n_θ): ⟨a⟩, ⟨cos²θ* a⟩, ⟨sin²θ* cos2φ* a⟩, ⟨sin2θ* cosφ* a⟩."""

    @classmethod
    def build(
        cls,
        lepton: LeptonAcceptance,
        *,
        lepton_mass: float,
        mass_range: tuple[float, float],
        p_max: float,
        lambda_theta: float | ArrayLike = 0.0,
        grid: tuple[int, int, int] = (40, 96, 160),
        quadrature: tuple[int, int] = (32, 32),
    ) -> PairAcceptance:
        """Tabulate A on ``grid`` = (n_m, n_p, n_θ) points.

        Arguments:
            lepton: the per-lepton acceptance.
            lepton_mass: GeV.
            mass_range: (lowest, highest) pair mass to cover (GeV); the lower end is raised
                to just above 2 m_ℓ.
            p_max: highest pair momentum (GeV; the beam energy).
            lambda_theta: polar anisotropy of the decay, 1 + λ_θ cos²θ* (helicity frame):
                one number, or one per mass node (n_m values, e.g. :meth:`lambda_nodes`).
            grid: table points in m, log p and θ (θ from 0 to the lepton window's upper
                edge + 0.25 rad, at most π/2).
            quadrature: midpoint nodes in cos θ* and φ* (per half range).

        Example:
            >>> la = LeptonAcceptance(0.0, 0.0, 3.1)
            >>> pa = PairAcceptance.build(la, lepton_mass=0.1057, mass_range=(0.3, 0.5),
            ...     p_max=10.0, grid=(3, 4, 5), quadrature=(4, 4))
            >>> float(pa(0.4, 5.0, 0.0))  # no cut but θ < 3.1 rad: every lepton passes
            1.0
        """
        lam = _check_lambda(lambda_theta, grid[0])
        lo = max(float(mass_range[0]), 2.0 * lepton_mass * (1 + 1e-6))
        hi = max(float(mass_range[1]), lo * 1.001)
        # mass nodes uniform in p* (denser near the threshold, where A varies like p*)
        ps = np.linspace(_pstar(lo, lepton_mass), _pstar(hi, lepton_mass), grid[0])
        m_grid = 2.0 * np.sqrt(ps * ps + lepton_mass * lepton_mass)
        m_grid[0], m_grid[-1] = lo, hi
        p_lo = max(0.05, 0.5 * lepton.min_energy)
        logp = np.linspace(math.log(p_lo), math.log(max(p_max, 2 * p_lo)), grid[1])
        t_top = min(0.5 * math.pi, lepton.theta_max + 0.25)
        theta = np.linspace(0.0, t_top, grid[2])
        open_hi = lepton.theta_max >= 0.5 * math.pi
        use_map = lepton.map_values is not None
        empty = np.zeros(1)
        key = _cache_key(lepton, lepton_mass, m_grid, logp, theta, quadrature)
        moments = _cache_load(key)
        if moments is None or moments.shape != (N_MOMENTS, *grid):
            moments = _tabulate(
                m_grid,
                np.exp(logp),
                theta,
                float(lepton_mass),
                float(lepton.min_energy),
                math.tan(lepton.theta_min) if lepton.theta_min < 0.5 * math.pi else np.inf,
                math.tan(lepton.theta_max) if not open_hi else np.inf,
                open_hi,
                int(quadrature[0]),
                int(quadrature[1]),
                lepton.map_p_edges if use_map else empty,
                lepton.map_theta_edges if use_map else empty,
                lepton.map_values if use_map else np.zeros((1, 1)),
                use_map,
            )
            _cache_store(key, moments)
        table = np.ascontiguousarray(combine(moments, lam, int(quadrature[0])))
        return cls(lepton, float(lepton_mass), lam, m_grid, logp, theta, table,
                   tuple(quadrature), None, moments)  # fmt: skip

    def with_lambda(self, lambda_theta: float | ArrayLike) -> PairAcceptance:
        """The same acceptance for another λ_θ (one, or one per mass node): no new
        tabulation, A(λ) = (⟨a⟩ + λ⟨cos²θ* a⟩)/(1 + λ⟨cos²θ*⟩)."""
        if self.moments is None:
            raise ValueError("this PairAcceptance has no moment table")
        lam = _check_lambda(lambda_theta, self.m_grid.size)
        table = np.ascontiguousarray(combine(self.moments, lam, int(self.quadrature[0])))
        return PairAcceptance(self.lepton, self.lepton_mass, lam, self.m_grid, self.logp_grid,
                              self.theta_grid, table, self.quadrature, None, self.moments)  # fmt: skip

    def lambda_nodes(self, mass_edges: ArrayLike, values: ArrayLike) -> NDArray[np.float64]:
        """λ_θ at the table's mass nodes from values per mass bin: linear between the bins'
        centres, the end bins' values beyond them; bins without a value (NaN) skipped.

        Raises:
            InputError: no bin has a value.
        """
        edges = np.asarray(mass_edges, dtype=np.float64)
        v = np.asarray(values, dtype=np.float64)
        ok = np.isfinite(v)
        if not ok.any():
            raise InputError("the measured lambda_theta has no valid mass bin")
        centres = 0.5 * (edges[1:] + edges[:-1])
        return np.clip(np.interp(self.m_grid, centres[ok], v[ok]), -1.0, 1.0)

    def moments_at(self, m: ArrayLike, p: ArrayLike, theta: ArrayLike) -> NDArray[np.float64]:
        """The four decay-angle moments (4, n) at (m, p, θ) (trilinear, 0 where A is).

        The interpolation cell and weights of each point are computed once for the four
        tables (one gather of each corner's four values, not four times the arithmetic for the same
        numbers)."""
        return self._moments(m, p, theta, split=False)

    def pair_moments(
        self, m: ArrayLike, p: ArrayLike, theta: ArrayLike, *, dtype: Any = np.float64
    ) -> PairMoments:
        """The four decay-angle moments at (m, p, θ), as :meth:`moments_at` (in float64 the
        same numbers), with what :meth:`acceptance_at` needs for A of any λ_θ per mass node at
        the same points without a second interpolation.

        Arguments:
            m: pair masses (GeV).
            p: pair lab momenta (GeV).
            theta: pair lab polar angles (rad).
            dtype: ``np.float64``, or ``np.float32``: the interpolation in single precision
                from a float32 copy of the moment tables (the cells in float64, their offsets
                rounded to float32): each value within ≲ 20 float32 roundings of one ≤ 1,
                ≈ 2·10⁻⁶, of the float64 numbers (``tests/test_pair_acceptance.py``; the
                tables' own quadrature and interpolation errors are ~10⁻³), in less time and half
                the memory.

        Returns:
            :class:`PairMoments`.
        """
        return self._moments(m, p, theta, split=True, dtype=dtype)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without the single-precision copy of the moments (:attr:`_moments32`:
        made again where it is needed)."""
        return {k: v for k, v in self.__dict__.items() if k != "_moments32"}

    @functools.cached_property
    def _moments32(self) -> NDArray[np.float32]:
        """The moment tables in single precision, (4, n_nodes), made once."""
        return self.moments.reshape(N_MOMENTS, -1).astype(np.float32)

    def _moments(
        self, m: ArrayLike, p: ArrayLike, theta: ArrayLike, split: bool, dtype: Any = np.float64
    ) -> Any:
        if self.moments is None:
            raise ValueError("this PairAcceptance has no moment table")
        m = np.ascontiguousarray(np.asarray(m, dtype=np.float64).ravel())
        p = np.ascontiguousarray(np.asarray(p, dtype=np.float64).ravel())
        th = np.ascontiguousarray(np.asarray(theta, dtype=np.float64).ravel())
        shape = self.moments.shape[1:]
        grid = self._grid
        if not split:
            return _trilinear(self.moments.reshape(N_MOMENTS, -1), shape, m, p, th, grid)
        if np.dtype(dtype) == np.float32:
            flat = self._moments32
        elif np.dtype(dtype) == np.float64:
            flat = self.moments.reshape(N_MOMENTS, -1)
        else:
            raise ValueError(f"moments in float64 or float32, not {dtype}")
        n = m.size
        out = np.empty((N_MOMENTS, n), dtype=flat.dtype)
        upper = np.empty((2, n), dtype=flat.dtype)
        node = np.empty(n, dtype=np.int16 if shape[0] < 2**15 else np.intp)
        for b0 in range(0, n, _BLOCK):
            sl = slice(b0, min(n, b0 + _BLOCK))
            cells = _cells(shape, m[sl], p[sl], th[sl], grid)
            _contract(flat, shape, cells, out[:, sl], upper[:, sl])
            np.floor_divide(cells[0], shape[1] * shape[2], out=node[sl], casting="same_kind")
        return PairMoments(out, upper, node)

    def acceptance_at(
        self, moments: PairMoments, lambda_theta: float | ArrayLike | None = None
    ) -> NDArray[np.float64]:
        r"""A at the points of ``moments`` for λ_θ (one, or one per mass node; default this
        table's), from their interpolated moments: the lookup of :meth:`with_lambda`'s table
        at the same (m, p, θ) without its second interpolation.

        The table of λ_θ holds (⟨a⟩ + λ_θ⟨cos²θ* a⟩)/(1 + λ_θ⟨cos²θ*⟩) at each node, λ_θ that
        of the node's mass, and is interpolated linearly; so a point's A is that combination
        of the moments' interpolation terms from its cell's lower mass node (their sum less
        the upper node's share, :attr:`PairMoments.upper`) with the lower node's λ_θ plus
        that of the upper node's share with the upper node's λ_θ, clipped to [0, 1] as the
        lookup clips it. Equal to the lookup to the roundings of one trilinear interpolation
        (a term regrouped: ``tests/test_pair_acceptance.py``) for moments in float64; computed
        in float64 also from moments in float32.

        Arguments:
            moments: :meth:`pair_moments` of the points (of this table's grid).
            lambda_theta: polar anisotropy, 1 + λ_θ cos²θ* (helicity frame): one number in
                [−1, 1], or one per mass node (e.g. :meth:`lambda_nodes`).

        Returns:
            A at each point, (n,).
        """
        lam = self.lambda_theta if lambda_theta is None else lambda_theta
        lam = np.broadcast_to(np.asarray(_check_lambda(lam, self.m_grid.size)), self.m_grid.shape)
        inv = 1.0 / (1.0 + lam * quadrature_c2(int(self.quadrature[0])))  # per mass node
        slope = lam * inv
        a0, c2 = moments.values[0], moments.values[1]
        n = a0.size
        out = np.empty(n)
        for b0 in range(0, n, _BLOCK):  # the temporaries of a block stay in the cache
            sl = slice(b0, min(n, b0 + _BLOCK))
            lo = moments.node[sl]
            hi = lo + 1
            up0, up1 = moments.upper[0, sl], moments.upper[1, sl]
            t = a0[sl].astype(np.float64)  # the lower mass node's terms
            t -= up0
            t *= inv.take(lo)
            u = c2[sl].astype(np.float64)
            u -= up1
            u *= slope.take(lo)
            t += u
            np.multiply(up0, inv.take(hi), out=u)  # the upper node's
            t += u
            np.multiply(up1, slope.take(hi), out=u)
            t += u
            out[sl] = t
        return np.clip(out, 0.0, 1.0, out=out)

    @property
    def source(self) -> str:
        """A one-line description (``select.json``, warnings)."""
        la = self.lepton
        return (
            f"per-pair acceptance: leptons E >= {la.min_energy:g} GeV, "
            f"{la.theta_min:g} <= theta <= {la.theta_max:g} rad"
            + ("" if la.map_values is None else f", map {la.source}")
            + f", lambda_theta = {_lambda_label(self.lambda_theta)}"
        )

    def __call__(self, m: ArrayLike, p: ArrayLike, theta: ArrayLike) -> NDArray[np.float64]:
        """A for each (m, p, θ) (trilinear in m, log p, θ; 0 beyond the θ range, below the
        p range or below 2 m_ℓ; the nearest edge beyond the m and upper p ranges)."""
        m = np.asarray(m, dtype=np.float64)
        p = np.asarray(p, dtype=np.float64)
        th = np.asarray(theta, dtype=np.float64)
        shape = np.broadcast_shapes(m.shape, p.shape, th.shape)
        m, p, th = (np.ascontiguousarray(np.broadcast_to(x, shape).ravel()) for x in (m, p, th))
        return _interpolate(self.table, m, p, th, self._grid).reshape(shape)

    @property
    def _ps_range(self) -> tuple[float, float]:
        """p* at the first and last mass node (the interpolation's mass coordinate)."""
        return (float(_pstar(self.m_grid[0], self.lepton_mass)),
                float(_pstar(self.m_grid[-1], self.lepton_mass)))  # fmt: skip

    @property
    def _grid(self) -> _Grid:
        """The ranges of the interpolation grid (:func:`_cells`)."""
        return _Grid(*self._ps_range, self.logp_grid[0], self.logp_grid[-1],
                     self.theta_grid[-1], self.lepton_mass)  # fmt: skip

    def lookup(self, m: ArrayLike, pt: ArrayLike, pz: ArrayLike) -> NDArray[np.float64]:
        """A for pairs given as (m, pT, pz)."""
        pt = np.asarray(pt, dtype=np.float64)
        pz = np.asarray(pz, dtype=np.float64)
        return self(m, np.hypot(pt, pz), np.arctan2(pt, pz))

    def of_kinematics(self, m: ArrayLike, qt: ArrayLike, energy: ArrayLike) -> NDArray[np.float64]:
        """A for γ* given as (m, q_T, E) (the flow's variables)."""
        m = np.asarray(m, dtype=np.float64)
        qt = np.asarray(qt, dtype=np.float64)
        e = np.asarray(energy, dtype=np.float64)
        p = np.sqrt(np.clip(e**2 - m**2, 0.0, None))
        pz = np.sqrt(np.clip(p**2 - qt**2, 0.0, None))
        return self(m, p, np.arctan2(qt, pz))

    def as_dict(self) -> dict[str, Any]:
        """JSON description: enough to rebuild the table (:meth:`from_dict`)."""
        return {
            "lepton_acceptance": self.lepton.as_dict(),
            "lepton_mass": self.lepton_mass,
            "lambda_theta": (
                self.lambda_theta
                if isinstance(self.lambda_theta, float)
                else list(self.lambda_theta)
            ),
            "mass_range": [float(self.m_grid[0]), float(self.m_grid[-1])],
            "p_max": float(math.exp(self.logp_grid[-1])),
            "grid": [int(self.m_grid.size), int(self.logp_grid.size), int(self.theta_grid.size)],
            "quadrature": list(self.quadrature),
            "frame": "helicity",
        }


TABLE_VERSION = 3
"""Bumped whenever the kernel's arithmetic changes (invalidates cached tables). 2: the
decay-angle moments instead of one λ_θ's table; 3: mass nodes uniform in p*."""


def _check_lambda(lambda_theta: float | ArrayLike, n_m: int) -> float | tuple[float, ...]:
    """One λ_θ in [−1, 1] (a float), or n_m of them (a tuple)."""
    lam = np.asarray(lambda_theta, dtype=np.float64)
    if lam.ndim and lam.size != n_m:
        raise ConfigError(f"lambda_theta: {lam.size} values for {n_m} mass nodes")
    if not (np.all(np.isfinite(lam)) and np.all(lam >= -1.0) and np.all(lam <= 1.0)):
        raise ConfigError(f"unfold.decay_lambda_theta: {lambda_theta} outside [-1, 1]")
    return float(lam) if lam.ndim == 0 else tuple(float(x) for x in lam)


def _lambda_label(lam: float | tuple[float, ...]) -> str:
    if isinstance(lam, float):
        return f"{lam:g}"
    return f"measured ({min(lam):.2f}..{max(lam):.2f} over mass)"


def _cache_key(lepton, lepton_mass, m_grid, logp, theta, quadrature) -> str:
    import hashlib

    h = hashlib.sha256()
    h.update(repr((TABLE_VERSION, lepton.min_energy, lepton.theta_min, lepton.theta_max,
                   float(lepton_mass), tuple(quadrature))).encode())  # fmt: skip
    for a in (m_grid, logp, theta, lepton.map_p_edges, lepton.map_theta_edges, lepton.map_values):
        if a is not None:
            h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
    return h.hexdigest()[:32]


def _cache_load(key: str) -> NDArray[np.float64] | None:
    """A cached table (``None`` when absent or unreadable: it is then recomputed), mapped
    read-only from the file (a plain ndarray on the mapping): its pages come from the page
    cache as the interpolation touches them, instead of a copy into fresh memory
    (whose first touch costs system time in every process). The cache file is
    replaced atomically (:func:`_cache_store`), so a mapped one never changes."""
    path = cache_path("pair_acceptance", f"{key}.npy")
    if path is None:
        return None
    try:
        return np.asarray(np.load(path, allow_pickle=False, mmap_mode="r"))
    except (OSError, ValueError):
        return None


def _cache_store(key: str, table: NDArray[np.float64]) -> None:
    """Cache a table (:func:`gammastar.core.cachedir.store`: atomic; skipped when unwritable)."""
    path = cache_path("pair_acceptance", f"{key}.npy")
    if path is not None:
        store(path, lambda f: np.save(f, table, allow_pickle=False))


@dataclass(frozen=True)
class FiducialRegion:
    """The part of (m, q) space the data see: A(m, q) ≥ ``min_acceptance``.

    Example:
        >>> la = LeptonAcceptance(0.0, 0.0, 3.1)
        >>> pa = PairAcceptance.build(la, lepton_mass=0.1057, mass_range=(0.3, 0.5),
        ...     p_max=10.0, grid=(3, 4, 5), quadrature=(4, 4))
        >>> FiducialRegion(pa, 0.01).contains(np.array([0.4]), np.array([0.1]),
        ...     np.array([5.0])).tolist()
        [True]
    """

    acceptance: PairAcceptance
    min_acceptance: float

    def contains(self, m: ArrayLike, qt: ArrayLike, energy: ArrayLike) -> NDArray[np.bool_]:
        """Whether γ* of (m, q_T, E) lie inside the region."""
        return self.acceptance.of_kinematics(m, qt, energy) >= self.min_acceptance

    def as_dict(self) -> dict[str, Any]:
        return {"min_acceptance": self.min_acceptance, **self.acceptance.as_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FiducialRegion:
        """Rebuild from :meth:`as_dict` (maps are not stored: a mapped acceptance must be
        rebuilt from its config)."""
        la = d["lepton_acceptance"]
        if la.get("map"):
            raise InputError(
                "the fiducial region uses a lepton acceptance map; rebuild it from the config"
            )
        lepton = LeptonAcceptance(la["min_energy"], la["theta_min"], la["theta_max"])
        pa = PairAcceptance.build(
            lepton,
            lepton_mass=d["lepton_mass"],
            mass_range=tuple(d["mass_range"]),
            p_max=d["p_max"],
            lambda_theta=d["lambda_theta"],
            grid=tuple(d["grid"]),
            quadrature=tuple(d["quadrature"]),
        )
        return cls(pa, float(d["min_acceptance"]))


def fiducial_from_config(cfg: Any, lambda_theta: Any = None) -> FiducialRegion | None:
    """The fiducial region of an analysis config (``unfold.lepton_acceptance`` with the
    selection's lepton cuts on top, ``unfold.decay_lambda_theta``, ``unfold.min_acceptance``;
    mass range of the selection, momenta up to the beam energy); ``None`` without
    ``unfold.lepton_acceptance``.

    Arguments:
        cfg: the analysis config.
        lambda_theta: λ_θ to use instead of the config's (one, or one per mass node). With
            ``decay_lambda_theta: measured`` and none given, the measured λ_θ(m) that the
            selection used is read from ``<output>/select.json`` (``unfold.fiducial``).

    Raises:
        InputError: ``measured`` and the run directory has no selection that measured it.
    """
    u = cfg.unfold
    if u.lepton_acceptance is None:
        return None
    sel = cfg.selection
    lepton = LeptonAcceptance.from_config(u.lepton_acceptance, resolve=cfg.resolve).intersect(
        sel.lepton_min_energy, sel.lepton_theta_min, sel.lepton_theta_max
    )
    lam = u.decay_lambda_theta if lambda_theta is None else lambda_theta
    if isinstance(lam, str):  # "measured": the selection's
        lam = _selected_lambda(cfg.output_dir / "select.json")
    pa = PairAcceptance.build(
        lepton,
        lepton_mass=cfg.input.lepton_mass,
        mass_range=(sel.mass_min, sel.mass_max),
        p_max=cfg.beam.energy,
        lambda_theta=lam,
    )
    return FiducialRegion(pa, float(u.min_acceptance))


def _selected_lambda(path: Any) -> Any:
    """The λ_θ per mass node the selection of ``path`` (``select.json``) used."""
    import json

    try:
        fid = json.loads(path.read_text())["unfold"]["fiducial"]
        lam = fid["lambda_theta"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(
            f"{path}: unfold.decay_lambda_theta is 'measured' but this run directory has no "
            "selection with a fiducial region that measured it; run 'gammastar select' first"
        ) from exc
    return lam


def warm_up() -> None:
    """Compile (or load from numba's cache) the tabulation kernel at the signature
    :meth:`PairAcceptance.build` calls it with, on a tiny grid and not through the table
    cache (:mod:`gammastar.kernels`)."""
    one = np.ones(1)
    # with or without a lepton map: one signature (the map's use is a run-time flag)
    _tabulate(np.array([0.4]), np.array([5.0]), np.array([0.1]), 0.1057, 1.0, 0.02, np.inf,
              True, 2, 2, one, one, np.ones((1, 1)), True)  # fmt: skip
