r"""Visible signal events (``gammastar events``): :class:`EventSettings` and chunks of weighted
A′ → two-body events as columns (:func:`generate`, :func:`generate_chunks`), numbered over
the chunks (:func:`numbered_chunks`) and unweighted on request (:class:`Unweighter`); the PDG
ids and statuses of the event record. The pieces are the decays (:mod:`.decays`), the A′
kinematics (:mod:`.aprime`), the vertices (:mod:`.vertices`) and the detector's verdict
(:mod:`.hits`); the semi-visible events are :mod:`.dark_events`. The physics and the
references are in :mod:`gammastar.events.stage` and docs/howto/signal-events.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gammastar.errors import GammastarError, InputError
from gammastar.physics import darkphoton
from gammastar.physics.sampling import sample_cos_theta
from gammastar.source.aprime import AprimeKinematics, aprime_kinematics, decay_daughters
from gammastar.source.decays import (
    CHANNEL_CODE,
    DECAYS,
    Decay,
    branching_ratios,
    decay_coefficients,
)
from gammastar.source.hits import detector_hits
from gammastar.source.vertices import _decay_z, production_vertex, shaped_decay

APRIME_PDGID = 4900022
"""Default PDG id of the A′: Pythia 8's Hidden-Valley U(1) photon ``gammav`` (PDG Monte Carlo
numbering reserves 49xxxxx for hidden-valley states; the ``particle`` package does not list it).
Configurable as ``events.aprime_pdgid``."""
PDG_PROTON = 2212
PDG_SYSTEM = 90
"""Pythia's "system" pseudo-id: the rest of the collision (X in p N → A′ X), status 3."""

EXPECTATION_SAMPLES = 100_000
"""A′ samples (at least; ``reach.samples`` if larger) of the expected N_sig in the meta."""

STATUS_FINAL, STATUS_DECAYED, STATUS_DOC, STATUS_BEAM = 1, 2, 3, 4


@dataclass
class EventSettings:
    """Everything one (m, ε) event sample needs (built by :func:`run_events`).

    Lengths in m, energies in GeV. ``scale`` = N_POT · yield-scale · (A′ per POT per ε²)(m) ·
    ε²: the A′ produced; ``channels`` the decays written (each event's channel is drawn with
    probability ∝ BR, its weight carries Σ BR of ``channels``).
    """

    mass: float
    eps: float
    geometry: Any
    scale: float
    channels: tuple[str, ...] = ("mumu",)
    rho00: float = 1.0 / 3.0
    beam_energy: float = 400.0
    beam_spot: tuple[float, float] = (0.0, 0.0)
    target_lambda: float = 0.0
    target_lengths: float = math.inf
    aprime_pdgid: int = APRIME_PDGID
    dark: darkphoton.DarkSector | None = None
    sigma_pb_per_event: float = 0.0
    """The GenCrossSection attribute (pb): σ_inel(p target) · N_sig / (N_POT P_int), set by
    :func:`run_events`."""
    br: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.br:
            self.br = branching_ratios(self.mass, eps=self.eps, dark=self.dark)
        for ch in self.channels:
            if ch not in DECAYS:
                raise GammastarError(f"events: unknown decay channel {ch!r}; use {list(DECAYS)}")
        closed = [ch for ch in self.channels if self.mass <= DECAYS[ch].m1 + DECAYS[ch].m2]
        if closed:
            raise InputError(f"events: A' -> {closed[0]} is closed at m = {self.mass:g} GeV")

    @property
    def ctau(self) -> float:
        return float(darkphoton.ctau(self.mass, self.eps, dark=self.dark))

    @property
    def br_sum(self) -> float:
        return float(sum(self.br[ch] for ch in self.channels))


def chunk_seeds(seed: int | None, n: int, chunk: int) -> list[tuple[int, int]]:
    """(size, seed) of each chunk of ``n`` events: independent child seeds of ``seed``."""
    sizes = [min(chunk, n - i) for i in range(0, n, chunk)]
    kids = np.random.SeedSequence(seed).spawn(len(sizes))
    return [(s, int(k.generate_state(1)[0])) for s, k in zip(sizes, kids, strict=True)]


def generate(
    sampler: Any, st: EventSettings, n: int, *, seed: int | None, n_norm: int | None = None
) -> dict[str, NDArray]:
    """One chunk of ``n`` weighted events as columns (see docs/howto/signal-events.md for the columns).

    The decay vertex is forced into the decay volume with P(decay in the volume) in the
    weight: for the window keys in [l1, l2] along z from the production point; for a
    geometry that is not a :attr:`~gammastar.source.geometry.Geometry.window_geometry`
    inside its shaped volume along the A′ line from the production vertex (beam spot and
    depth; :func:`~gammastar.source.vertices.shaped_decay`), with the verdict of the shapes'
    requirements at that vertex (:meth:`gammastar.source.geometry.Shapes.seen`).

    Arguments:
        sampler: the A′ kinematics (``sample(mass, n, seed)``).
        st: the :class:`EventSettings`.
        n: events to draw (unphysical sampler output is dropped: fewer rows).
        seed: the chunk's seed.
        n_norm: the total number of events the weights are normalised to (default ``n``).

    Returns:
        Dict of numpy columns; ``weight`` sums (over all chunks) to the expected detected
        events N_sig(m, ε), ``weight_decay`` to the A′ decays in the decay volume (channels
        written), before the detector.
    """
    geo = st.geometry
    ss = np.random.SeedSequence(seed)
    s_kin, s_dec, s_vtx = ss.spawn(3)
    rng_v = np.random.default_rng(s_vtx)
    ch_names = list(st.channels)
    brs = np.array([st.br[c] for c in ch_names])
    if len(ch_names) == 1:
        ch_idx = np.zeros(n, dtype=np.int64)
    else:
        ch_idx = rng_v.choice(len(ch_names), size=n, p=brs / brs.sum())
    k, daughters, cos_t, phi = _kinematics(
        sampler, st.mass, n, s_kin, s_dec, [DECAYS[c] for c in ch_names], ch_idx, st.rho00
    )
    x0, y0, z0 = production_vertex(st, n, rng_v)
    p = k.p
    if geo.window_geometry:
        # decay vertex forced into [l1, l2] (distances from the production point, as the reach)
        gbc = np.where(k.ok, k.pz / k.mass, 1.0)  # (p/m) cos θ: decay length along z per cτ
        zrel, prob = _decay_z(geo.l1, geo.l2, gbc * st.ctau, rng_v.uniform(0.0, 1.0, n))
        seen = daughters if geo.both_daughters else None
        hit = detector_hits(geo, k, seen, zrel[:, None])[:, 0] > 0
        pz_safe = np.where(k.pz > 0, k.pz, 1.0)
        path = zrel * p / pz_safe
        vertex = np.stack([x0 + zrel * k.px / pz_safe, y0 + zrel * k.py / pz_safe, z0 + zrel])
    else:
        # forced into the shaped volume along the A′ line from its production vertex
        sh = geo.shapes()
        a = np.stack([k.px, k.py, k.pz, k.e])
        vertex, prob, path = shaped_decay(sh.volume, np.stack([x0, y0, z0]), a, k.ok, k.mass,
                                          st.ctau, rng_v)  # fmt: skip
        hit = k.ok & (prob > 0) & sh.seen(a, daughters, vertex)
    w_decay = st.scale * st.br_sum * prob / float(n_norm or n)
    if k.weight is not None:  # importance-weighted draws (mean 1): the events carry them
        w_decay = w_decay * k.weight
    keep = k.ok
    cols = {
        "channel": np.array([CHANNEL_CODE[c] for c in ch_names], dtype=np.int8)[ch_idx],
        "weight": w_decay * geo.efficiency * hit,
        "weight_decay": w_decay,
        "p_decay": prob,
        "detected": hit,
        "extrapolated": (k.extrapolated if k.extrapolated is not None else np.zeros(n, dtype=bool)),
        "prod_x": x0,
        "prod_y": y0,
        "prod_z": z0,
        "decay_x": vertex[0],
        "decay_y": vertex[1],
        "decay_z": vertex[2],
        "decay_t": path * k.e / p,  # c t (m): path / β
        "aprime_px": k.px,
        "aprime_py": k.py,
        "aprime_pz": k.pz,
        "aprime_E": k.e,
        "cos_theta": cos_t,
        "phi": phi,
        "pdg1": np.array([DECAYS[c].pdg1 for c in ch_names], dtype=np.int32)[ch_idx],
        "pdg2": np.array([DECAYS[c].pdg2 for c in ch_names], dtype=np.int32)[ch_idx],
        "m1": np.array([DECAYS[c].m1 for c in ch_names])[ch_idx],
        "m2": np.array([DECAYS[c].m2 for c in ch_names])[ch_idx],
    }
    for i, d in enumerate(daughters):
        for j, comp in enumerate(("px", "py", "pz", "E")):
            cols[f"d{i + 1}_{comp}"] = d[j]
    return {name: np.ascontiguousarray(v[keep]) for name, v in cols.items()}


def _kinematics(
    sampler: Any,
    mass: float,
    n: int,
    s_kin: Any,
    s_dec: Any,
    decays: list[Decay],
    ch_idx: NDArray,
    rho00: float,
    phi_range: tuple[float, float] | None = None,
) -> tuple[AprimeKinematics, tuple[NDArray, NDArray], NDArray, NDArray]:
    """A′ and daughters: the random steps shared by :func:`generate` and the acceptance (the
    A′ azimuth over ``phi_range``, :func:`~gammastar.source.aprime.aprime_kinematics`)."""
    rng = np.random.default_rng(s_dec)
    seed = int(s_kin.generate_state(1)[0])
    k = aprime_kinematics(sampler, mass, n, seed=seed, rng=rng, phi_range=phi_range)
    coef = np.array([decay_coefficients(rho00, mass, d) for d in decays])
    cos_t = sample_cos_theta(rng, coef[ch_idx, 0], coef[ch_idx, 1], n)
    phi = rng.uniform(0.0, 2 * np.pi, n)
    m1 = np.array([d.m1 for d in decays])[ch_idx]
    m2 = np.array([d.m2 for d in decays])[ch_idx]
    return k, decay_daughters(k, m1, m2, cos_t, phi), cos_t, phi


def generate_chunks(
    sampler: Any, st: EventSettings, n: int, *, seed: int | None, chunk: int = 100_000
) -> Iterator[dict[str, NDArray]]:
    """:func:`generate` over chunks of at most ``chunk`` events (bounded memory), weights
    normalised to ``n``; event numbers run from 0 over all chunks."""
    return numbered_chunks(
        lambda size, s: generate(sampler, st, size, seed=s, n_norm=n), n, seed=seed, chunk=chunk
    )


def numbered_chunks(
    make: Callable[[int, int], dict[str, NDArray]], n: int, *, seed: int | None, chunk: int
) -> Iterator[dict[str, NDArray]]:
    """The chunks ``make(size, seed)`` of :func:`chunk_seeds` (``n`` events in chunks of at
    most ``chunk``), each with a column ``event`` (int64) in front: event numbers from 0 over
    all chunks, counting the drawn events (a chunk's rows may be fewer: events cut away)."""
    first = 0
    for size, s in chunk_seeds(seed, n, chunk):
        cols = make(size, s)
        yield {"event": np.arange(first, first + cols["weight"].size, dtype=np.int64), **cols}
        first += size


class Unweighter:
    """Unweighted events by accept-reject on ``weight`` against the first chunk's maximum
    (events above it are counted in :attr:`over_max`), each of weight ``n_sig``/``n``."""

    def __init__(self, n: int, n_sig: float, seed: int | None) -> None:
        self.n, self.n_sig = n, n_sig
        self.rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
        self.over_max = 0
        self.generated = 0

    def __call__(self, chunks: Iterator[dict[str, NDArray]]) -> Iterator[dict[str, NDArray]]:
        have, wmax = 0, None
        for cols in chunks:
            w = cols["weight"]
            self.generated += int(w.size)
            if wmax is None:
                wmax = float(w.max()) if w.size and w.max() > 0 else None
                if wmax is None:
                    raise InputError("events --unweighted: no detected event in the first chunk")
            self.over_max += int(np.sum(w > wmax))
            keep = self.rng.uniform(0.0, 1.0, w.size) * wmax < w
            idx = np.nonzero(keep)[0][: self.n - have]
            out = {k: v[idx] for k, v in cols.items()}
            out["weight"] = np.full(idx.size, self.n_sig / self.n)
            out["event"] = np.arange(have, have + idx.size, dtype=np.int64)
            have += idx.size
            yield out
            if have >= self.n:
                return
        raise InputError(f"events --unweighted: only {have} of {self.n} events accepted")
