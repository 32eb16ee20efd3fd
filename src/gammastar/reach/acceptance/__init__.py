r"""Long-lived-particle acceptance of A′ samples (paper App. B, Eq. B1;
docs/explanation/physics.md §9).

Offers :class:`KinematicSample` (A′ samples with the detector's verdict per decay cell, the
acceptance for any cτ), :func:`draw` (the A′ of a :class:`~gammastar.source.source.Source` or
of a kinematics model through the event machinery of :mod:`gammastar.source`, in a
:class:`~gammastar.source.geometry.Geometry`: z cells for the window keys, cells along each A′
path through a shaped volume, :func:`path_sample`) and :func:`channel_samples` (one per decay
channel). The dark-sector ψ₂ draws are in :mod:`.dark`, the (m, cτ) / (m, ε) grids and the
Fig. 9/10 comparison in :mod:`.grid`, the ``gammastar acceptance`` stage in :mod:`.stage`.
The method, its approximations, checks and measured comparisons: docs/explanation/reach.md §2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.errors import GammastarError
from gammastar.physics.decay import decay_probability
from gammastar.physics.sampling import SamplerLike
from gammastar.source.aprime import AprimeKinematics
from gammastar.source.decays import DECAYS
from gammastar.source.eventgen import _kinematics
from gammastar.source.geometry import Geometry, Shapes
from gammastar.source.hits import detector_hits

__all__ = ["KinematicSample", "channel_samples", "draw", "path_sample"]


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
    weight: NDArray[np.float64] | None = None
    """Importance weights of the samples (mean 1; the sampler's ``weight``,
    :meth:`~gammastar.yields.extrapolation.samplers.ExtrapolatedSampler.tilted`): the
    acceptance is their weighted mean. ``None``: equal weights."""
    azimuth_fraction: float = 1.0
    """The share (φ1 − φ0)/2π of the azimuths the samples were drawn in (:func:`draw`: the
    decay volume's window; none is seen outside it), a factor of every sample's acceptance."""

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
                                   self.cells[[0, -1]], 1.0, weight=self.weight,
                                   azimuth_fraction=self.azimuth_fraction)  # fmt: skip
        inside = np.ones(self.hits.shape, bool) if self.inside is None else self.inside
        return KinematicSample(self.mass, self.gbc, inside.astype(np.float64), self.cells, 1.0,
                               weight=self.weight,
                               azimuth_fraction=self.azimuth_fraction)  # fmt: skip

    def extrapolated_acceptance(self, ctau: ArrayLike) -> NDArray[np.float64]:
        """The part of :meth:`acceptance` carried by the ``extrapolated`` samples."""
        ctau = np.asarray(ctau, dtype=np.float64)
        if self.extrapolated is None or not np.any(self.extrapolated):
            return np.zeros(ctau.shape)
        k = self.extrapolated
        sub = KinematicSample(self.mass, self.gbc[k], self.hits[k],
                              self.cells[k] if self.per_sample_cells else self.cells,
                              self.efficiency, weight=None if self.weight is None else self.weight[k],
                              azimuth_fraction=self.azimuth_fraction)  # fmt: skip
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
        # the acceptance's terms carry each sample's weight; acceptance_per_sample's do not
        self._hw_r = self._h_r if self.weight is None else self._h_r * self.weight[self._row]

    @property
    def _factor(self) -> float:
        """Every sample's constant factor: efficiency × azimuth fraction (× 1.0 is exact)."""
        return self.efficiency * self.azimuth_fraction

    def _run_probability(self, ctau: NDArray) -> NDArray:
        """P(decay in the run) of every run of hits, shape (n_runs, ctau.size)."""
        ell = self._gbc_r[:, None] * ctau[None, :]
        return decay_probability(self._z_in[:, None], self._z_out[:, None], ell)

    def acceptance(self, ctau: ArrayLike, *, chunk: int = 256) -> NDArray[np.float64]:
        """Acceptance for each proper decay length ``ctau`` (m), vectorised over ``ctau``:
        the mean over the samples (weighted by :attr:`weight`) of the efficiency × the
        :attr:`azimuth_fraction` × Σ_cells hit × P(decay in the cell)
        (:func:`gammastar.physics.decay.decay_probability`; paper Eq. B1)."""
        ctau = np.asarray(ctau, dtype=np.float64)
        flat = ctau.ravel()
        out = np.zeros(flat.size)
        if self._h_r.size:
            step = max(1, int(chunk * 20_000 // max(self._h_r.size, 1)))
            for start in range(0, flat.size, step):
                c = flat[start : start + step]
                out[start : start + step] = self._hw_r @ self._run_probability(c)
        return self._factor * (out / self.n).reshape(ctau.shape)

    def acceptance_per_sample(self, ctau: ArrayLike, *, chunk: int = 4_000_000) -> NDArray:
        """Each sample's own acceptance, shape (n, len(ctau)): the efficiency × the
        :attr:`azimuth_fraction` × Σ over the sample's runs of hits of h × P(decay in the run),
        ``chunk`` run × cτ values at a time;
        :meth:`acceptance` is their mean weighted by :attr:`weight` (not applied here)."""
        ctau = np.atleast_1d(np.asarray(ctau, dtype=np.float64))
        out = np.zeros((self.n, ctau.size))
        if self._h_r.size:
            rows, first = np.unique(self._row, return_index=True)
            step = max(1, chunk // self._h_r.size)
            for start in range(0, ctau.size, step):
                c = ctau[start : start + step]
                terms = self._run_probability(c) * self._h_r[:, None]
                out[rows, start : start + step] = np.add.reduceat(terms, first, axis=0)
        return self._factor * out


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
    azimuth_window: bool = True,
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

    In the second a decay counts only on the A′ ray inside the volume, so for a volume beside
    the beam axis (:meth:`~gammastar.physics.volumes.shapes.Volume.azimuth_window`) the A′
    azimuths are drawn in its window [φ0, φ1] alone and the acceptance is multiplied by
    (φ1 − φ0)/2π (:attr:`KinematicSample.azimuth_fraction`): the same expectation, the samples
    outside adding exactly 0, with no draw wasted there; a volume that reaches the axis keeps
    the full circle (the same draws as without).

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
        azimuth_window: draw the azimuths in the decay volume's window (False: over the full
            circle, a check).

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
    sh = geometry.shapes() if shapes or not geometry.window_geometry else None
    window = sh.volume.azimuth_window() if sh is not None and azimuth_window else None
    k, daughters, _, _ = _kinematics(
        sampler,
        float(mass),
        n,
        s_seed,
        d_seed,
        [DECAYS[channel]],
        np.zeros(n, dtype=np.int64),
        1.0 / 3.0 if rho00 is None else float(rho00),
        phi_range=window,
    )
    if sh is not None:
        fraction = 1.0 if window is None else (window[1] - window[0]) / (2 * np.pi)
        return path_sample(sh, k, daughters, geometry.z_steps, geometry.efficiency,
                           azimuth_fraction=fraction)  # fmt: skip
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
        weight=k.weight,
    )


def path_sample(
    shapes: Shapes,
    k: AprimeKinematics,
    daughters: tuple[NDArray, NDArray] | None,
    z_steps: int,
    efficiency: float,
    *,
    passes: NDArray[np.bool_] | None = None,
    azimuth_fraction: float = 1.0,
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
        azimuth_fraction: the share of the circle the particles' azimuths were drawn in
            (:attr:`KinematicSample.azimuth_fraction`).

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
                pair = (
                    None
                    if daughters is None
                    else (_columns(daughters[0], r, steps), _columns(daughters[1], r, steps))
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
        weight=k.weight,
        inside=np.concatenate(parts_in, axis=1) > 0,
        azimuth_fraction=azimuth_fraction,
    )


def _columns(a: NDArray, rows: NDArray, times: int) -> NDArray:
    """Columns ``rows`` of ``a`` each repeated ``times`` times (one per cell)."""
    return np.repeat(a[:, rows], times, axis=1)


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


def _cell_mid(cells: NDArray, geometry: Geometry) -> NDArray:
    if np.isinf(cells[-1]):
        return np.array([cells[0]])
    return 0.5 * (cells[1:] + cells[:-1])
