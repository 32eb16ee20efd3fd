r"""Long-lived-particle acceptance of A′ samples (paper App. B, Eq. B1; docs/explanation/physics.md §9).

Offers :class:`Geometry` (angular window on the A′ or on both daughters, a transverse annulus
at a downstream plane, decay-volume cells; or any decay volume, plane and daughter requirements
of :mod:`gammastar.physics.volumes`), :func:`draw` (the A′ of a
:class:`~gammastar.source.source.Source` or of a kinematics model through the event machinery
of :mod:`gammastar.source`; z cells for the window keys, cells along each A′ path
through a shaped volume, :func:`path_sample`), :func:`acceptance` and its (m, cτ) / (m, ε) grids
(:func:`acceptance_grid`, :func:`acceptance_eps_grid`), and the Fig. 9/10 comparison plot.
The method, its approximations, checks and measured comparisons: docs/explanation/reach.md §2.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.core import rundir
from gammastar.core.artifacts import atomic_path, check_writable, make_meta
from gammastar.core.figures import figure_style, save_figure
from gammastar.errors import GammastarError
from gammastar.physics.darkphoton import ctau as ctau_fn
from gammastar.physics.decay import decay_probability
from gammastar.physics.sampling import SamplerLike
from gammastar.source.aprime import AprimeKinematics
from gammastar.source.dark_decays import _psi2_kin, dark_chains
from gammastar.source.decays import DECAYS
from gammastar.source.eventgen import _kinematics
from gammastar.source.geometry import Geometry, Shapes
from gammastar.source.hits import dark_hits, detector_hits, opening_angle_passes
from gammastar.source.production import load_yields
from gammastar.source.source import Source

__all__ = [
    "ComparisonGrid",
    "DarkPairSample",
    "KinematicSample",
    "acceptance",
    "acceptance_eps_grid",
    "acceptance_grid",
    "channel_samples",
    "draw",
    "draw_dark",
    "draw_dark_pair",
    "path_sample",
    "plot_acceptance_comparison",
    "run_acceptance",
]


# --------------------------------------------------------------------------- geometry
# --------------------------------------------------------------------------- samples
@dataclass
class KinematicSample:
    """A′ samples at one mass with the decay-independent geometry precomputed.

    The decay coordinate is cut into cells, each with the detector's verdict for a decay in
    it: either z along the beam, the same edges for every sample (the window keys), or the
    path length s along each sample's own flight through the decay volume (the shapes:
    per-sample edges from the exact entry and exit, :func:`draw`).

    Attributes:
        mass: A′ mass, GeV.
        gbc: decay length per unit cτ along the cells' coordinate: (p/m) cos θ for z cells,
            p/m for path cells.
        hits: hit indicator per sample and cell, shape (n, n_cells) (float 0/1).
        cells: the cells' edges: z edges (n_cells + 1,) shared by all samples, or path-length
            edges (n, n_cells + 1) per sample (non-decreasing in a row; a cell between two
            crossings of a non-convex volume has no hit).
        efficiency: selection efficiency.
    """

    mass: float
    gbc: NDArray[np.float64]
    hits: NDArray[np.float64]
    cells: NDArray[np.float64]
    efficiency: float
    extrapolated: NDArray[np.bool_] | None = None
    """Samples drawn from a model outside the data's fiducial region (``None``: none)."""
    inside: NDArray[np.bool_] | None = None
    """Which cells lie inside the decay volume, shape of ``hits`` (``None``: all of them)."""

    @property
    def n(self) -> int:
        return int(self.gbc.size)

    @property
    def per_sample_cells(self) -> bool:
        """Whether ``cells`` holds each sample's own edges (path cells)."""
        return np.ndim(self.cells) == 2

    def in_volume(self) -> KinematicSample:
        """The same samples with every cell inside the decay volume counted as a hit and
        efficiency 1: its :meth:`acceptance` is the probability of a decay in the volume,
        before the detector."""
        if not self.per_sample_cells:
            return KinematicSample(self.mass, self.gbc, np.ones((self.n, 1)),
                                   self.cells[[0, -1]], 1.0)  # fmt: skip
        inside = np.ones(self.hits.shape, bool) if self.inside is None else self.inside
        return KinematicSample(self.mass, self.gbc, inside.astype(np.float64), self.cells, 1.0)

    def extrapolated_acceptance(self, ctau: ArrayLike) -> NDArray[np.float64]:
        """The part of :meth:`acceptance` carried by the ``extrapolated`` samples."""
        ctau = np.asarray(ctau, dtype=np.float64)
        if self.extrapolated is None or not np.any(self.extrapolated):
            return np.zeros(ctau.shape)
        k = self.extrapolated
        sub = KinematicSample(self.mass, self.gbc[k], self.hits[k],
                              self.cells[k] if self.per_sample_cells else self.cells,
                              self.efficiency)  # fmt: skip
        return sub.acceptance(ctau) * (sub.n / self.n)

    def __post_init__(self) -> None:
        # Σ_k h_k P(z_k, z_{k+1}) over the cells: on the run of cells between two consecutive
        # edges where a sample's hit pattern changes h is constant and the P of adjacent cells
        # add up (P(a, b) + P(b, c) = P(a, c)), so keep one term per run of hits
        h = np.asarray(self.hits, dtype=np.float64)
        pad = np.zeros((h.shape[0], 1))
        coef = np.diff(np.concatenate([pad, h, pad], axis=1), axis=1)  # (n, n_edges)
        idx, edge = np.nonzero(coef)  # row-major: idx ascending, edges ascending in a row
        same = idx[:-1] == idx[1:]
        row, lo, hi = idx[:-1][same], edge[:-1][same], edge[1:][same]
        value = h[row, lo]  # lo < n_cells: another edge of the row follows
        run = value != 0
        self._row = row[run]
        self._gbc_r = self.gbc[self._row]
        if self.per_sample_cells:
            self._z_in = self.cells[self._row, lo[run]]
            self._z_out = self.cells[self._row, hi[run]]
        else:
            self._z_in = self.cells[lo[run]]
            self._z_out = self.cells[hi[run]]
        self._h_r = value[run]

    def _run_probability(self, ctau: NDArray) -> NDArray:
        """P(decay in the run) of every run of hits, shape (n_runs, ctau.size)."""
        ell = self._gbc_r[:, None] * ctau[None, :]
        return decay_probability(self._z_in[:, None], self._z_out[:, None], ell)

    def acceptance(self, ctau: ArrayLike, *, chunk: int = 256) -> NDArray[np.float64]:
        """Acceptance for each proper decay length ``ctau`` (m), vectorised over ``ctau``:
        the mean over the samples of the efficiency × Σ_cells hit × P(decay in the cell)
        (:func:`gammastar.physics.decay.decay_probability`; paper Eq. B1)."""
        ctau = np.asarray(ctau, dtype=np.float64)
        flat = ctau.ravel()
        out = np.zeros(flat.size)
        if self._h_r.size:
            step = max(1, int(chunk * 20_000 // max(self._h_r.size, 1)))
            for start in range(0, flat.size, step):
                c = flat[start : start + step]
                out[start : start + step] = self._h_r @ self._run_probability(c)
        return self.efficiency * (out / self.n).reshape(ctau.shape)

    def acceptance_per_sample(self, ctau: ArrayLike, *, chunk: int = 4_000_000) -> NDArray:
        """Each sample's own term of :meth:`acceptance` (their mean), shape (n, len(ctau)):
        the efficiency × Σ over the sample's runs of hits of h × P(decay in the run),
        ``chunk`` run × cτ values at a time."""
        ctau = np.atleast_1d(np.asarray(ctau, dtype=np.float64))
        out = np.zeros((self.n, ctau.size))
        if self._h_r.size:
            rows, first = np.unique(self._row, return_index=True)
            step = max(1, chunk // self._h_r.size)
            for start in range(0, ctau.size, step):
                c = ctau[start : start + step]
                terms = self._run_probability(c) * self._h_r[:, None]
                out[rows, start : start + step] = np.add.reduceat(terms, first, axis=0)
        return self.efficiency * out


def draw(
    sampler: SamplerLike,
    mass: float,
    n: int,
    geometry: Geometry,
    *,
    seed: int | None = None,
    channel: str = "mumu",
    rho00: float | None = None,
    shapes: bool = False,
) -> KinematicSample:
    """Draw ``n`` A′ samples at ``mass`` and precompute their geometric acceptance.

    The A′ and its decay come from the event machinery of :mod:`gammastar.source`
    (:func:`~gammastar.source.aprime.aprime_kinematics`,
    :func:`~gammastar.source.aprime.decay_daughters`,
    :func:`~gammastar.source.hits.detector_hits`): the acceptance is the weighted fraction of
    events that pass the detector, with the decay position integrated exactly per cell.

    Two descriptions of the detector, one result where both apply:

    * a :attr:`~gammastar.source.geometry.Geometry.window_geometry` (the window keys): z cells
      from ``l1`` to ``l2`` shared by all samples, the hit per cell from
      :func:`~gammastar.source.hits.detector_hits` at the cell's mid z, decay length
      along z (p/m) cos θ cτ;
    * any other geometry (its shapes, :meth:`~gammastar.source.geometry.Geometry.shapes`):
      each A′ ray from the production point (the origin) crosses the decay volume on the
      exact path-length interval(s) [s_in, s_out]
      (:meth:`gammastar.physics.volumes.shapes.Volume.entry_exit`); each interval is cut into
      ``z_steps`` cells along the path when there is a detection plane (one cell without:
      the verdict does not depend on the vertex), the hit per cell from the daughters (or
      the A′ line) propagated from the cell's mid-point to the plane and the requirements
      (:meth:`~gammastar.source.geometry.Shapes.seen`), decay length along the path
      (p/m) cτ, so that a cell's P is e^{−s_k/ℓ} − e^{−s_{k+1}/ℓ} (paper Eq. B1 along the
      flight).

    For the window keys' own shapes (a cone or slab, an annulus) the second gives the first's
    acceptance to float precision: the ray's s = z/cos θ and ℓ = (p_z/m) cτ / cos θ.

    Arguments:
        sampler: object with ``sample(mass, n, seed)`` or a callable ``(mass, n, seed)``,
            returning a mapping with ``qT`` and ``E`` arrays (GeV).
        mass: A′ mass in GeV.
        n: number of samples.
        geometry: the detector :class:`Geometry`.
        seed: random seed (samples and A′ decay angles).
        channel: a decay of :data:`gammastar.source.decays.DECAYS` (``"mumu"``, ``"ee"``,
            ``"pipi"``, ``"KK"``, ``"KSKL"``): the daughters for ``both_daughters``.
        rho00: spin-density element ρ₀₀ of the decay angular distribution (None: isotropic,
            ρ₀₀ = 1/3; :func:`gammastar.source.decays.decay_coefficients`).
        shapes: take the shapes' path also for a window geometry (a check of the two).

    Returns:
        A :class:`KinematicSample`.

    Raises:
        GammastarError: mass outside the sampler's range, bad samples, unknown channel.
    """

    if channel not in DECAYS:
        raise GammastarError(
            f"acceptance: unknown channel {channel!r}; use one of {', '.join(DECAYS)}"
        )
    if n <= 0:
        raise GammastarError(f"acceptance: number of samples must be positive, not {n}")
    ss = np.random.SeedSequence(seed)
    s_seed, d_seed = ss.spawn(2)
    k, daughters, _, _ = _kinematics(
        sampler,
        float(mass),
        n,
        s_seed,
        d_seed,
        [DECAYS[channel]],
        np.zeros(n, dtype=np.int64),
        1.0 / 3.0 if rho00 is None else float(rho00),
    )
    if shapes or not geometry.window_geometry:
        return path_sample(
            geometry.shapes(), k, daughters, geometry.z_steps, geometry.efficiency
        )
    gbc = np.where(k.ok, k.pz / mass, 1.0)  # (p/m) cos θ
    cells = geometry.cells
    ncell = cells.size - 1
    zmid = _cell_mid(cells, geometry)
    hits = detector_hits(geometry, k, daughters if geometry.both_daughters else None, zmid[None, :])
    if hits.shape[1] != ncell:
        hits = np.repeat(hits[:, :1], ncell, axis=1)
    return KinematicSample(
        mass=float(mass),
        gbc=gbc,
        hits=np.ascontiguousarray(hits),
        cells=cells,
        efficiency=geometry.efficiency,
        extrapolated=k.extrapolated,
    )


def path_sample(
    shapes: Shapes,
    k: AprimeKinematics,
    daughters: tuple[NDArray, NDArray] | None,
    z_steps: int,
    efficiency: float,
    *,
    passes: NDArray[np.bool_] | None = None,
) -> KinematicSample:
    """The :class:`KinematicSample` of decaying particles ``k`` produced at the origin in the
    detector ``shapes``: path cells from the exact entry and exit of each ray (:func:`draw`).

    Arguments:
        shapes: the decay volume, plane and requirements
            (:meth:`gammastar.source.geometry.Geometry.shapes`).
        k: the decaying particles' lab kinematics (``ok`` false: never detected).
        daughters: their daughters' four-momenta (4, n) each, or ``None`` (``require:
            aprime``).
        z_steps: cells per crossing of the volume when there is a plane (the verdict depends on
            the vertex); one without.
        efficiency: the detector's constant efficiency.
        passes: a further vertex-independent cut per particle (``None``: none).

    Returns:
        The sample: ``gbc`` = p/m, per-sample ``cells`` (n, c + 1) of path length (m) and
        ``inside`` marking the cells in the volume. For a volume that a ray crosses twice (a
        conical shell) the cell between the two crossings is a gap (no hit, not inside).
    """
    n, mass = k.n, float(k.mass)
    p = k.p
    parent = np.stack([k.px, k.py, k.pz, k.e])
    ok = k.ok & (p > 0) & np.isfinite(p)
    if passes is not None:
        ok &= passes
    safe = np.where(ok, p, 1.0)
    u = np.where(ok, parent[:3] / safe, np.array([[0.0], [0.0], [1.0]]))
    s_in, s_out = shapes.volume.entry_exit(np.zeros((3, 1)), u)  # (crossings, n)
    inside = ok & ~np.isnan(s_in)
    candidate = inside & shapes.loose(parent, daughters)
    # a missed crossing (NaN, after the ones made) becomes an empty cell at the last exit
    last = np.zeros(n)
    s_in, s_out = s_in.copy(), s_out.copy()
    for j in range(s_in.shape[0]):
        miss = ~inside[j]
        s_in[j] = np.where(miss, last, s_in[j])
        s_out[j] = np.where(miss, last, s_out[j])
        last = s_out[j]
    steps = z_steps if shapes.plane is not None else 1
    frac = np.arange(steps + 1) / steps
    with np.errstate(invalid="ignore"):  # ∞ − s of an open volume: only its two ends are kept
        edges = s_in[..., None] + (s_out - s_in)[..., None] * frac  # (crossings, n, steps + 1)
    edges[..., 0], edges[..., -1] = s_in, s_out
    hits = np.zeros((s_in.shape[0], n, steps))
    if shapes.plane is None:
        hits[...] = candidate[..., None]
    else:
        for j in range(s_in.shape[0]):
            rows = np.nonzero(candidate[j])[0]
            block = max(1, 2**18 // steps)
            for b in range(0, rows.size, block):
                r = rows[b : b + block]
                mid = 0.5 * (edges[j, r, :-1] + edges[j, r, 1:])  # (m, steps)
                vertex = (mid[None] * u[:, r, None]).reshape(3, -1)
                pair = None if daughters is None else tuple(
                    _columns(d, r, steps) for d in daughters
                )
                seen = shapes.seen(_columns(parent, r, steps), pair, vertex)
                hits[j, r] = seen.reshape(r.size, steps)
    # the crossings side by side, a gap cell between two (no hit, outside)
    gap = np.zeros((n, 1))
    parts_h, parts_in = [], []
    for j in range(s_in.shape[0]):
        if j:
            parts_h.append(gap)
            parts_in.append(gap)
        parts_h.append(hits[j])
        parts_in.append(np.repeat(inside[j][:, None], steps, axis=1))
    return KinematicSample(
        mass=mass,
        gbc=np.where(ok, p / mass, 1.0),
        hits=np.ascontiguousarray(np.concatenate(parts_h, axis=1)),
        cells=np.ascontiguousarray(np.concatenate(list(edges), axis=1)),
        efficiency=efficiency,
        extrapolated=k.extrapolated,
        inside=np.concatenate(parts_in, axis=1) > 0,
    )


def _columns(a: NDArray, rows: NDArray, times: int) -> NDArray:
    """Columns ``rows`` of ``a`` each repeated ``times`` times (one per cell)."""
    return np.repeat(a[:, rows], times, axis=1)


def _dark_side(
    d: Mapping[str, Any],
    psi2: NDArray,
    lminus: NDArray,
    lplus: NDArray,
    m2: float,
    geometry: Geometry,
    min_opening_angle: float,
    efficiency: float,
) -> KinematicSample:
    """One ψ₂ of the chains ``d`` (:func:`gammastar.source.dark_decays.dark_chains`) with the
    detector's verdict per decay-volume cell: the :class:`KinematicSample` of that ψ₂ (the shapes' path
    cells of :func:`path_sample` for a geometry that is not a window geometry: the ψ₂ from
    the production point, both leptons seen, their opening angle cut)."""

    kin, fwd = _psi2_kin(d["k"], psi2, m2)
    if not geometry.window_geometry:
        lm, lp = np.where(fwd, lminus, 0.0), np.where(fwd, lplus, 0.0)
        return path_sample(
            geometry.shapes(semivisible=True),
            dataclasses.replace(kin, extrapolated=d["k"].extrapolated),
            (lm, lp),
            geometry.z_steps,
            efficiency,
            passes=opening_angle_passes(lm, lp, min_opening_angle),
        )
    cells = geometry.cells
    zmid = _cell_mid(cells, geometry)
    lm = np.where(fwd, lminus, 0.0)
    lp = np.where(fwd, lplus, 0.0)
    hits = dark_hits(geometry, kin, lm, lp, zmid[None, :], min_opening_angle)
    if hits.shape[1] != cells.size - 1:
        hits = np.repeat(hits[:, :1], cells.size - 1, axis=1)
    return KinematicSample(
        mass=m2,
        gbc=np.where(fwd, kin.pz / m2, 1.0),
        hits=np.ascontiguousarray(hits),
        cells=cells,
        efficiency=efficiency,
        extrapolated=d["k"].extrapolated,
    )


def channel_samples(
    sampler: SamplerLike,
    mass: float,
    n: int,
    geometry: Geometry,
    *,
    seed: int | None,
    channels: tuple[str, ...],
) -> dict[str, KinematicSample]:
    """The acceptance samples of each decay channel at one mass.

    Every channel gets the same A′ samples (the same ``seed``); with daughters in the detector
    (:attr:`~gammastar.source.geometry.Geometry.daughters_seen`: ``both_daughters``, or
    ``daughters.require`` both or either) each channel decays them into its own leptons
    (:data:`gammastar.physics.channels.LEPTON_CHANNELS`: the lepton mass sets the opening
    angles and energies that the detector's cuts see), otherwise one sample serves them all
    (the A′ direction alone decides).

    Returns:
        ``{channel: KinematicSample}`` (the same object for every channel when shared).
    """
    if not geometry.daughters_seen:
        one = draw(sampler, mass, n, geometry, seed=seed, channel=channels[0])
        return dict.fromkeys(channels, one)
    return {ch: draw(sampler, mass, n, geometry, seed=seed, channel=ch) for ch in channels}


def draw_dark(
    sampler: Any,
    model: Any,
    geometry: Any,
    n: int,
    *,
    final_state: str,
    min_opening_angle: float = 0.0,
    seed: int | None,
    rho00: float | None = None,
) -> Any:
    """ψ₂ samples of A′ → ψ₁ψ₂, ψ₂ → ψ₁ℓ⁻ℓ⁺ with the detector's verdict per decay-volume cell:
    a :class:`gammastar.reach.acceptance.KinematicSample` whose ``acceptance(cτ(ψ₂))`` is the
    probability that the ψ₂ decays in the volume and is detected
    (:func:`gammastar.source.hits.dark_hits`, on the chains of :func:`gammastar.source.dark_decays
    .dark_chains`: the events' machinery), the decay position integrated exactly per cell as
    for the visible A′ (:func:`draw`).

    Arguments:
        sampler: A′ kinematics; model: scalar ``IDM`` or ``I2DM`` (its ψ₁ψ₂ chain).
        geometry: :class:`gammastar.source.geometry.Geometry`.
        n: chains; final_state: ``ee`` or ``mumu``; min_opening_angle: rad; seed: seed.
        rho00: the A′ spin density ρ₀₀ (None: isotropic A′ → ψψ; see
            :func:`gammastar.source.dark_decays.dark_chains`).
    """

    d = dark_chains(sampler, model, n, chains={"psi1 psi2": 1.0},
                    channels={final_state: 1.0}, seed=seed, rho00=rho00)  # fmt: skip
    return _dark_side(d, d["psi2"], d["lminus"], d["lplus"], float(model.m2), geometry,
                      min_opening_angle, geometry.efficiency)  # fmt: skip


@dataclass
class DarkPairSample:
    r"""i2DM's A′ → ψ₂ψ̄₂ with both ψ₂ → ψ₁ℓ⁻ℓ⁺: the probability that at least one of the two
    decays in the volume into a counted channel and is detected, for any cτ(ψ₂).

    Per chain i the two ψ₂ decay independently (given their momenta), so with
    X_i = BR_f · P_i(decay in the volume, detected), BR_f = Σ BR(ψ₂ → ψ₁ℓℓ) of the counted
    channels (each ψ₂'s channel drawn ∝ BR),

    .. math:: P(\geq 1) = \overline{X_a + X_b - X_a X_b},

    the mean over chains (unbiased: a's and b's channel and decay are independent draws);
    times the constant ``efficiency`` of the event. The product term is evaluated on the chains
    where both ψ₂ can be detected somewhere in the volume (the others contribute 0).
    ``gammastar.source.dark_events.generate_dark`` weights its ψ₂ψ̄₂ events by the same
    2X_a − X_aX_b.

    Attributes:
        a, b: the two ψ₂ (:class:`KinematicSample`, efficiency 1), same chain order.
        br: BR_f.
        efficiency: the geometry's constant efficiency.
    """

    a: KinematicSample
    b: KinematicSample
    br: float
    efficiency: float

    def __post_init__(self) -> None:
        self._both = np.flatnonzero(
            np.any(self.a.hits > 0, axis=1) & np.any(self.b.hits > 0, axis=1)
        )

    @property
    def n(self) -> int:
        return self.a.n

    def per_chain(self, side: KinematicSample, idx: NDArray, ctau: NDArray) -> NDArray:
        """P(decay in the volume and detected) of chains ``idx`` of ``side``, shape
        (ctau.size, idx.size): Σ_k h_k [e^{−z_k/(g cτ)} − e^{−z_{k+1}/(g cτ)}]
        (:func:`gammastar.physics.decay.decay_probability`)."""
        g, h = side.gbc[idx], side.hits[idx]
        z = side.cells[idx] if side.per_sample_cells else side.cells[None, :]  # (m or 1, edges)
        out = np.empty((ctau.size, idx.size))
        step = max(1, 4_000_000 // max(idx.size * z.shape[1], 1))
        for s in range(0, ctau.size, step):
            ell = g[None, :, None] * ctau[s : s + step, None, None]
            p = decay_probability(z[None, :, :-1], z[None, :, 1:], ell)
            out[s : s + step] = np.einsum("cmk,mk->cm", p, h)
        return out

    def acceptance(self, ctau: ArrayLike) -> NDArray[np.float64]:
        """P(≥ 1 of the two ψ₂ detected) × efficiency for each cτ(ψ₂) (m), vectorised."""
        ctau = np.asarray(ctau, dtype=np.float64)
        flat = ctau.ravel()
        single = self.br * (self.a.acceptance(flat) + self.b.acceptance(flat))
        both = np.zeros(flat.size)
        if self._both.size:
            pa = self.per_chain(self.a, self._both, flat)
            pb = self.per_chain(self.b, self._both, flat)
            both = self.br**2 * np.sum(pa * pb, axis=1) / self.n
        return (self.efficiency * (single - both)).reshape(ctau.shape)

    def double_share(self, ctau: ArrayLike) -> NDArray[np.float64]:
        """E[X_a X_b] / P(≥ 1): the share of the events that has both ψ₂ detected."""
        ctau = np.atleast_1d(np.asarray(ctau, dtype=np.float64))
        tot = self.acceptance(ctau) / self.efficiency
        both = np.zeros(ctau.size)
        if self._both.size:
            pa = self.per_chain(self.a, self._both, ctau)
            pb = self.per_chain(self.b, self._both, ctau)
            both = self.br**2 * np.sum(pa * pb, axis=1) / self.n
        return np.where(tot > 0, both / np.where(tot > 0, tot, 1.0), 0.0)


def draw_dark_pair(
    sampler: Any,
    model: Any,
    geometry: Any,
    n: int,
    *,
    channels: Mapping[str, float],
    min_opening_angle: float = 0.0,
    seed: int | None,
    rho00: float | None = None,
) -> DarkPairSample:
    """i2DM's A′ → ψ₂ψ̄₂ chains (:func:`gammastar.source.dark_decays.dark_chains`, the events'
    machinery) with the verdict of :func:`gammastar.source.hits.dark_hits` for each ψ₂: a
    :class:`DarkPairSample` (P(≥ 1 detected), no double counting).

    Arguments:
        sampler: A′ kinematics; model: scalar ``I2DM`` with A′ → ψ₂ψ̄₂ open.
        geometry: :class:`gammastar.source.geometry.Geometry`.
        n: chains.
        channels: BR(ψ₂ → ψ₁ℓℓ) of the counted channels (each ψ₂'s channel is drawn ∝ BR).
        min_opening_angle: rad. seed: seed. rho00: the A′ spin density (None: isotropic).

    Raises:
        GammastarError: A′ → ψ₂ψ̄₂ closed (m_A′ < 2m₂) or no channel with a positive BR.
    """

    ma, m2 = float(model.m_aprime), float(model.m2)
    if ma <= 2 * m2:
        raise GammastarError(
            f"A' -> psi2 psi2 is closed at m_A' = {ma:.4g} GeV (2 m2 = {2 * m2:.4g})"
        )
    chans = {c: float(v) for c, v in channels.items() if float(v) > 0}
    if not chans:
        raise GammastarError(f"no psi2 -> psi1 ll channel of {list(channels)} is open")
    d = dark_chains(sampler, model, n, chains={"psi2 psi2": 1.0}, channels=chans, seed=seed,
                    rho00=rho00)  # fmt: skip
    a = _dark_side(d, d["psi2"], d["lminus"], d["lplus"], m2, geometry, min_opening_angle, 1.0)
    b = _dark_side(d, d["partner"], d["b_lminus"], d["b_lplus"], m2, geometry,
                   min_opening_angle, 1.0)  # fmt: skip
    return DarkPairSample(a, b, float(sum(chans.values())), float(geometry.efficiency))


def _cell_mid(cells: NDArray, geometry: Geometry) -> NDArray:
    if np.isinf(cells[-1]):
        return np.array([cells[0]])
    return 0.5 * (cells[1:] + cells[:-1])


# --------------------------------------------------------------------------- grids
def acceptance(
    sampler: SamplerLike,
    mass: float,
    ctau: ArrayLike,
    geometry: Geometry,
    *,
    n: int = 20_000,
    seed: int | None = None,
    channel: str = "mumu",
) -> NDArray[np.float64]:
    """Eq. B1 acceptance at one mass for each cτ (m).

    Example:
        >>> from gammastar.physics.sampling import ParametricSampler
        >>> g = Geometry(l1=5.0, l2=10.0, theta_min=0.0, theta_max=1.0)
        >>> a = acceptance(ParametricSampler(), 0.3, [1e-3, 1.0, 1e6], g, n=2000, seed=1)
        >>> bool(a[0] < a[1] and a[2] < 1e-3)
        True
    """
    return draw(sampler, mass, n, geometry, seed=seed, channel=channel).acceptance(ctau)


def acceptance_grid(
    sampler: SamplerLike,
    masses: ArrayLike,
    ctaus: ArrayLike,
    geometry: Geometry,
    *,
    n: int = 20_000,
    seed: int | None = None,
    channel: str = "mumu",
) -> NDArray[np.float64]:
    """Acceptance on a (mass, cτ) grid, shape (len(masses), len(ctaus)).

    Each mass gets its own child seed of ``seed`` (reproducible, independent).
    """
    masses = np.atleast_1d(np.asarray(masses, dtype=np.float64))
    seeds = np.random.SeedSequence(seed).spawn(masses.size)
    out = np.empty((masses.size, np.size(ctaus)))
    for i, m in enumerate(masses):
        s = int(seeds[i].generate_state(1)[0])
        out[i] = draw(sampler, float(m), n, geometry, seed=s, channel=channel).acceptance(ctaus)
    _check_nonempty(out, geometry)
    return out


def acceptance_eps_grid(
    sampler: SamplerLike,
    masses: ArrayLike,
    eps: ArrayLike,
    geometry: Geometry,
    *,
    n: int = 20_000,
    seed: int | None = None,
    channel: str = "mumu",
    dark: Any = None,
) -> NDArray[np.float64]:
    """Acceptance on a (mass, ε) grid, cτ from :func:`gammastar.physics.darkphoton.ctau`."""

    masses = np.atleast_1d(np.asarray(masses, dtype=np.float64))
    eps = np.atleast_1d(np.asarray(eps, dtype=np.float64))
    seeds = np.random.SeedSequence(seed).spawn(masses.size)
    out = np.empty((masses.size, eps.size))
    for i, m in enumerate(masses):
        s = int(seeds[i].generate_state(1)[0])
        sample = draw(sampler, float(m), n, geometry, seed=s, channel=channel)
        out[i] = sample.acceptance(ctau_fn(m, eps, dark=dark))
    _check_nonempty(out, geometry)
    return out


def _check_nonempty(acc: NDArray, geometry: Geometry) -> None:
    if not np.any(acc > 0):
        if geometry.window_geometry:
            where = (
                f"l1={geometry.l1}, l2={geometry.l2}, theta {geometry.theta_min}–"
                f"{geometry.theta_max}, plane_z={geometry.plane_z}, r {geometry.r_min}–"
                f"{geometry.r_max}"
            )
        else:
            sh = geometry.shapes()
            where = f"volume {sh.volume}, plane {sh.plane}, daughters {sh.requirements}"
        raise GammastarError(
            f"acceptance is zero everywhere on the grid: check the detector geometry ({where}) "
            "and the mass range"
        )


# --------------------------------------------------------------------------- figures
@dataclass(frozen=True)
class ComparisonGrid:
    """Where :func:`plot_acceptance_comparison` compares two samplers: the curves' masses, the
    map's masses and cτ values, the A′ samples per mass and the seed."""

    masses_curve: tuple[float, ...] = (0.3, 0.6, 0.9)
    """Masses (GeV) of the acceptance-vs-cτ curves (Fig. 9)."""
    masses_map: ArrayLike | None = None
    """Masses (GeV) of the relative-difference map (Fig. 10); ``None``: 16 from 0.25 to 1 GeV."""
    ctaus: ArrayLike | None = None
    """Proper decay lengths (m); ``None``: 61 from 10⁻³ to 10³ m."""
    n: int = 20_000
    """A′ samples per mass."""
    seed: int | None = 0


@figure_style()
def plot_acceptance_comparison(
    sampler_a: SamplerLike,
    sampler_b: SamplerLike,
    geometry: Geometry,
    *,
    grid: ComparisonGrid | None = None,
    labels: tuple[str, str] = ("with background", "without background"),
    path_curves: str | None = None,
    path_map: str | None = None,
) -> dict[str, Any]:
    """Fig. 9 and Fig. 10 analogues: acceptance vs cτ at three masses for two samplers, and the
    relative difference 2(A_a − A_b)/(A_a + A_b) in the (m, cτ) plane.

    Arguments:
        sampler_a, sampler_b: the two A′ kinematics (``labels`` in the legend).
        geometry: the detector.
        grid: masses, cτ values, samples and seed (:class:`ComparisonGrid`; default its
            defaults).
        path_curves, path_map: where to save the two figures (``None``: not saved).

    Returns:
        Dict with ``masses``, ``ctau``, ``acc_a``, ``acc_b``, ``rel_diff`` and the figures.
    """
    import matplotlib.pyplot as plt

    g = grid or ComparisonGrid()
    masses_curve, n, seed = g.masses_curve, g.n, g.seed
    ctaus = np.geomspace(1e-3, 1e3, 61) if g.ctaus is None else np.asarray(g.ctaus, dtype=float)
    masses_map = np.linspace(0.25, 1.0, 16) if g.masses_map is None else np.asarray(g.masses_map)
    a_c = acceptance_grid(sampler_a, masses_curve, ctaus, geometry, n=n, seed=seed)
    b_c = acceptance_grid(sampler_b, masses_curve, ctaus, geometry, n=n, seed=seed)
    fig1, ax = plt.subplots(figsize=(8, 6))
    for i, m in enumerate(masses_curve):
        (line,) = ax.plot(ctaus, a_c[i], label=f"$m_{{A'}}$ = {m:g} GeV, {labels[0]}")
        ax.plot(ctaus, b_c[i], ls="--", color=line.get_color(), label=f"{labels[1]}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(1e-6, 2.0)
    ax.set_xlabel(r"$c\tau_{A'}$ [m]")
    ax.set_ylabel(r"acceptance $\mathcal{E}$")
    ax.legend(fontsize="xx-small")
    fig1.tight_layout()
    a_m = acceptance_grid(sampler_a, masses_map, ctaus, geometry, n=n, seed=seed)
    b_m = acceptance_grid(sampler_b, masses_map, ctaus, geometry, n=n, seed=seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = 2 * (a_m - b_m) / (a_m + b_m)
    fig2, ax2 = plt.subplots(figsize=(8, 6))
    pcm = ax2.pcolormesh(masses_map, ctaus, rel.T, cmap="RdBu_r", vmin=-0.5, vmax=0.5)
    fig2.colorbar(
        pcm, ax=ax2, label=r"$2(\mathcal{E}_a-\mathcal{E}_b)/(\mathcal{E}_a+\mathcal{E}_b)$"
    )
    ax2.set_yscale("log")
    ax2.set_xlabel(r"$m_{A'}$ [GeV]")
    ax2.set_ylabel(r"$c\tau_{A'}$ [m]")
    fig2.tight_layout()

    for fig, path in ((fig1, path_curves), (fig2, path_map)):
        if path is not None:
            save_figure(fig, path)
    return {
        "masses_curve": np.asarray(masses_curve),
        "masses": masses_map,
        "ctau": ctaus,
        "acc_a": a_m,
        "acc_b": b_m,
        "curves_a": a_c,
        "curves_b": b_c,
        "rel_diff": rel,
        "figures": (fig1, fig2),
    }


# --------------------------------------------------------------------------- the stage
@figure_style()
def _plot_curves(acc: NDArray, masses: NDArray, ctaus: NDArray, path: Any, force: bool) -> None:
    """``figures/acceptance_ctau.png`` of one sampler: acceptance vs cτ at three of the map's
    masses."""
    import matplotlib.pyplot as plt


    fig, ax = plt.subplots()
    for k in (1, 7, 14):
        ax.loglog(ctaus, acc[k], label=f"m = {masses[k]:.3g} GeV")
    ax.set_xlabel(r"$c\tau$ [m]")
    ax.set_ylabel("acceptance")
    ax.legend()
    with atomic_path(path, force=force) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)


def run_acceptance(config: Any, *, compare: Any = None, force: bool = False) -> Any:
    """The ``gammastar acceptance`` stage: the reach's A′ kinematics (with fiducial-region
    yields, the flow inside the region and the yields' fitted model outside it, as
    ``gammastar reach`` uses them) decayed in the config's detector, on 16 masses × 61 cτ
    values; with ``compare`` (a second flow) the Fig. 9/10 analogues
    (:func:`plot_acceptance_comparison`).

    Writes ``acceptance_ctau.npz``, ``acceptance_ctau.json`` and
    ``figures/acceptance_ctau.png`` (+ ``figures/acceptance_reldiff.png``) in the run directory.

    Arguments:
        config: the :class:`~gammastar.config.AnalysisConfig`.
        compare: a second flow's directory, or ``None``.
        force: overwrite existing outputs.

    Returns:
        The path of ``acceptance_ctau.npz``.
    """

    out = config.output_dir
    rd = rundir.RunDir(out)
    curves_png, reldiff_png = rundir.stage_figures("acceptance")
    for name in (rundir.ACCEPTANCE_CTAU, rundir.ACCEPTANCE_CTAU_JSON, curves_png):
        check_writable(out / name, force)
    ypath = config.resolve(config.reach.yields)
    yields = load_yields(ypath) if ypath.exists() else None
    source = Source.from_config(config, yields)
    geometry = Geometry.from_config(config.detector)
    lo, hi = source.mass_range or (0.25, 1.0)
    masses = np.linspace(max(lo, 0.22), hi, 16)
    ctaus = np.geomspace(1e-3, 1e3, 61)
    grid = ComparisonGrid(
        masses_curve=tuple(float(x) for x in np.quantile(masses, [0.1, 0.5, 0.9])),
        masses_map=masses,
        ctaus=ctaus,
        n=config.reach.samples,
        seed=config.seed,
    )
    rel = None
    if compare is not None:
        from gammastar.flow.model import load

        res = plot_acceptance_comparison(
            source,
            load(compare),
            geometry,
            grid=grid,
            labels=(source.description, f"{compare}"),
            path_curves=str(out / curves_png),
            path_map=str(out / reldiff_png),
        )
        acc, rel = res["acc_a"], res["rel_diff"]
    else:
        acc = acceptance_grid(source, masses, ctaus, geometry, n=grid.n, seed=grid.seed)
        _plot_curves(acc, masses, ctaus, out / curves_png, force)
    with atomic_path(out / rundir.ACCEPTANCE_CTAU, force=force) as tmp, open(tmp, "wb") as f:
        np.savez(
            f,
            mass=masses,
            ctau=ctaus,
            acceptance=acc,
            rel_diff=rel if rel is not None else np.empty(0),
        )
    meta = make_meta(
        config_sha256=config.section_sha256("detector", "reach", "seed"),
        seed=config.seed,
        stage="acceptance",
        sampler=source.description,
        compare=str(compare) if compare else None,
    )
    rd.write_json(
        rundir.ACCEPTANCE_CTAU_JSON,
        {"mass": masses, "ctau": ctaus, "acceptance": acc, "meta": meta},
        force=force,
    )
    return rd.path(rundir.ACCEPTANCE_CTAU)
