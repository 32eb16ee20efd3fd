r"""The pair acceptance's table: :class:`PairAcceptance`, the probability A(m, p, θ) that both
leptons of a γ* of mass m, lab momentum p and polar angle θ pass, for a polar anisotropy λ_θ
of the decay, and :class:`PairMoments` (its decay-angle moments at n points).

The table is tabulated once on a (m, log p, θ) grid (mass nodes uniform in the decay momentum
p*; :mod:`~gammastar.corrections.pair_acceptance.tabulation`), cached on disk
(:func:`gammastar.core.cachedir.cache_dir`) and looked up per pair by trilinear
interpolation (:mod:`~gammastar.corrections.pair_acceptance.interpolation`).

Reference:
    P. Faccioli et al., Eur. Phys. J. C 69 (2010) 657 (λ_θ and the helicity frame).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.core.cachedir import cache_path, store
from gammastar.corrections.pair_acceptance.interpolation import (
    _BLOCK,
    _cells,
    _contract,
    _Grid,
    _interpolate,
    _pstar,
    _trilinear,
)
from gammastar.corrections.pair_acceptance.lepton import LeptonAcceptance
from gammastar.corrections.pair_acceptance.tabulation import (
    N_MOMENTS,
    TABLE_VERSION,
    _tabulate,
    combine,
    quadrature_c2,
)
from gammastar.errors import ConfigError, InputError

__all__ = ["PairAcceptance", "PairMoments"]


@dataclass(frozen=True)
class PairMoments:
    """The decay-angle moments of a :class:`PairAcceptance` interpolated at n points
    (:meth:`PairAcceptance.pair_moments`), with the share of the first two from each point's
    upper mass node: what A of a λ_θ that varies over the mass nodes needs
    (:meth:`PairAcceptance.acceptance_at`)."""

    values: NDArray[np.floating]
    """(4, n): :meth:`PairAcceptance.moments_at` of the points (the same numbers in float64;
    float32 when asked)."""
    upper: NDArray[np.floating]
    """(2, n): the terms of ⟨a⟩ and ⟨cos²θ* a⟩ from the four corners of each point's cell at
    its upper mass node (0 where the moments are)."""
    node: NDArray[np.integer]
    """(n,): the lower mass node of each point's cell (the upper is the next one)."""


@dataclass(frozen=True)
class PairAcceptance:
    """A(m, p, θ) on a grid (picklable: plain numpy arrays); see the module docstring (and
    :mod:`~gammastar.corrections.pair_acceptance.tabulation`'s for the formula).

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
    """No generated counts (the interface of
    :class:`gammastar.corrections.unfold.acceptance.AcceptanceMap`)."""
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
                   (quadrature[0], quadrature[1]), None, moments)  # fmt: skip

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
        """Pickled without the copies of the tables made from the others
        (:attr:`_moments32`, :attr:`_lookup_tables`: made again where they are needed)."""
        return {k: v for k, v in self.__dict__.items()
                if k not in ("_moments32", "_lookup_tables")}  # fmt: skip

    @functools.cached_property
    def _moments32(self) -> NDArray[np.float32]:
        """The moment tables in single precision, (4, n_nodes), made once."""
        if self.moments is None:
            raise ValueError("this PairAcceptance has no moment table")
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
        flat: NDArray[np.floating]
        if np.dtype(dtype) == np.float32:
            flat = self._moments32
        elif np.dtype(dtype) == np.float64:
            flat = self.moments.reshape(N_MOMENTS, -1)
        else:
            raise ValueError(f"moments in float64 or float32, not {dtype}")
        n = m.size
        out = np.empty((N_MOMENTS, n), dtype=flat.dtype)
        upper = np.empty((2, n), dtype=flat.dtype)
        node = np.empty(n, dtype=np.int16) if shape[0] < 2**15 else np.empty(n, dtype=np.intp)
        for sl, cells in self._cell_blocks(m, p, th):
            _contract(flat, shape, cells, out[:, sl], upper[:, sl])
            np.floor_divide(cells[0], shape[1] * shape[2], out=node[sl], casting="same_kind")
        return PairMoments(out, upper, node)

    def _cell_blocks(
        self, m: NDArray[np.float64], p: NDArray[np.float64], theta: NDArray[np.float64]
    ) -> Iterator[tuple[slice, Any]]:
        """``(slice, cells)`` per block of :data:`_BLOCK` points (:func:`_cells`: their
        interpolation cells and weights; a block's temporaries stay in the CPU cache)."""
        shape, grid = self.table.shape, self._grid
        for b0 in range(0, m.size, _BLOCK):
            sl = slice(b0, min(m.size, b0 + _BLOCK))
            yield sl, _cells(shape, m[sl], p[sl], theta[sl], grid)

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

    def lookup_moments(
        self, m: ArrayLike, pt: ArrayLike, pz: ArrayLike, *, dtype: Any = np.float64
    ) -> tuple[NDArray[np.float64], NDArray[Any]]:
        """``(A, moments)`` for pairs given as (m, pT, pz): :meth:`lookup`'s A and
        :meth:`moments_at`'s (4, n) moments at their (m, p, θ), the same numbers, from one
        interpolation cell per pair (the tables are contracted together, in blocks of
        :data:`~gammastar.corrections.pair_acceptance.interpolation._BLOCK` pairs: the same
        arithmetic for each). At λ_θ = 0 the table is the first moment itself
        (:attr:`_lookup_tables`), so A is that moment, clipped. ``dtype``: the moments'
        (``np.float32``: those numbers rounded to it, block by block, without a float64 copy
        of the whole; A is always float64)."""
        m = np.ascontiguousarray(np.asarray(m, dtype=np.float64).ravel())
        pt = np.asarray(pt, dtype=np.float64).ravel()
        pz = np.asarray(pz, dtype=np.float64).ravel()
        p, theta = np.hypot(pt, pz), np.arctan2(pt, pz)
        flat = self._lookup_tables
        first = flat.shape[0] - N_MOMENTS  # the moments' first row (1: after the table)
        n = m.size
        acc = np.empty(n)
        moments = np.empty((N_MOMENTS, n), dtype=dtype)
        buf = np.empty((flat.shape[0], min(n, _BLOCK)))
        for sl, cells in self._cell_blocks(m, p, theta):
            out = buf[:, : sl.stop - sl.start]
            _contract(flat, self.table.shape, cells, out)
            np.clip(out[0], 0.0, 1.0, out=acc[sl])
            moments[:, sl] = out[first:]
        return acc, moments

    @functools.cached_property
    def _lookup_tables(self) -> NDArray[np.float64]:
        """The tables :meth:`lookup_moments` contracts, flattened: the four moments where the
        table equals the first (λ_θ = 0: (⟨a⟩ + 0)/1, bit for bit), else the table before
        them."""
        if self.moments is None:
            raise ValueError("this PairAcceptance has no moment table")
        mom = self.moments.reshape(N_MOMENTS, -1)
        if np.array_equal(self.table.ravel(), mom[0]):
            return mom
        return np.concatenate([self.table.reshape(1, -1), mom])

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


def _check_lambda(lambda_theta: float | ArrayLike, n_m: int) -> float | tuple[float, ...]:
    """One λ_θ in [−1, 1] (a float), or n_m of them (a tuple)."""
    lam = np.asarray(lambda_theta, dtype=np.float64)
    if lam.ndim and lam.size != n_m:
        raise ConfigError(f"lambda_theta: {lam.size} values for {n_m} mass nodes")
    if not (np.all(np.isfinite(lam)) and np.all(lam >= -1.0) and np.all(lam <= 1.0)):
        raise ConfigError(f"unfold.decay_lambda_theta: {lambda_theta!s} outside [-1, 1]")
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
