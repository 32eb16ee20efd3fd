r"""The signal-event machinery, shared by ``gammastar events`` and the acceptance
stage (:func:`gammastar.reach.acceptance.draw`): the modelled A′ decays and their branching ratios
and angular distributions, the A′ kinematics from a sampler, the helicity-frame two-body decay,
the decay vertex in the decay volume, the detector's verdict, and chunks of weighted events.
The physics and the references are in :mod:`gammastar.events.stage` and docs/howto/signal-events.md.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.errors import GammastarError, InputError
from gammastar.physics import darkphoton
from gammastar.physics.channels import LEPTON_CHANNELS
from gammastar.physics.constants import M_K, M_K0, M_MU, M_PI
from gammastar.physics.darkchain import sample_psi2_decay, two_body_decay
from gammastar.physics.decay import decay_probability, sample_decay_length
from gammastar.physics.kinematics import boost, decay_in_helicity_frame
from gammastar.physics.sampling import sample_cos_theta
from gammastar.physics.volumes.shapes import Volume, sample_decay_points

if TYPE_CHECKING:
    from gammastar.source.geometry import Shapes

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


@dataclass(frozen=True)
class Decay:
    """A two-body A′ decay: PDG ids and masses of daughter 1 (θ refers to it) and 2."""

    name: str
    pdg1: int
    pdg2: int
    m1: float
    m2: float
    fermion: bool


DECAYS: dict[str, Decay] = {
    **{
        ch.name: Decay(ch.name, ch.pdgid, -ch.pdgid, ch.lepton_mass, ch.lepton_mass, True)
        for ch in LEPTON_CHANNELS.values()
    },
    "pipi": Decay("pipi", -211, 211, M_PI, M_PI, False),
    "KK": Decay("KK", -321, 321, M_K, M_K, False),
    "KSKL": Decay("KSKL", 310, 130, M_K0, M_K0, False),
}
"""The modelled A′ decays (daughter 1 is the negative particle)."""
CHANNEL_CODE = {name: i for i, name in enumerate(DECAYS)}


# --------------------------------------------------------------------------- branching ratios
def branching_ratios(
    m: float, *, eps: float | None = None, dark: darkphoton.DarkSector | None = None
) -> dict[str, float]:
    """A′ branching ratios of the modelled two-body channels and of the rest.

    ``ee``, ``mumu`` and the hadronic total come from :func:`gammastar.physics.darkphoton
    .branching_ratio`; the hadronic BR is split with the package's R-ratio components: ππ
    = BR_had · R_ππ/R, K⁺K⁻ and K_S K_L = BR_had · R_φ→KK/R (the φ's two-kaon channels of
    :mod:`gammastar.physics.darkphoton`). ``hadrons_other`` is the unmodelled rest (3π, ωπ,
    π⁰γ, the continuum …), ``invisible`` the dark-sector width.

    Arguments:
        m: A′ mass (GeV).
        eps: kinetic mixing (only with ``dark``).
        dark: optional dark sector.

    Returns:
        ``{channel: BR}``, summing to 1 where the A′ can decay.

    Example:
        >>> br = branching_ratios(0.775)
        >>> round(sum(br.values()), 12), br["pipi"] > br["mumu"]
        (1.0, True)
    """
    from gammastar.physics.darkphoton import _PHI, _resonance_r  # the φ's channel split

    out = {
        ch: float(darkphoton.branching_ratio(m, ch, eps=eps if dark else None, dark=dark))
        for ch in ("ee", "mumu", "hadrons")
    }
    had = out.pop("hadrons")
    r_tot = float(darkphoton.r_ratio(m))
    s = np.asarray(float(m) ** 2)
    phi = _resonance_r(s, _PHI)
    parts = {
        "pipi": float(darkphoton.r_ratio_components(m)["pipi"]),
        "KK": float(phi["KK"]) if m > 2 * M_K else 0.0,
        "KSKL": float(phi["KSKL"]) if m > 2 * M_K0 else 0.0,
    }
    for ch, r in parts.items():
        out[ch] = had * r / r_tot if r_tot > 0 else 0.0
    out["hadrons_other"] = max(had - sum(out[c] for c in parts), 0.0)
    inv = 1.0 - had - out["ee"] - out["mumu"]
    out["invisible"] = inv if dark is not None else 0.0
    return {k: (0.0 if not math.isfinite(v) else v) for k, v in out.items()}


# --------------------------------------------------------------------------- angular distribution
def rho00_from_lambda(lambda_theta: float, m: float, lepton_mass: float = M_MU) -> float:
    """ρ₀₀ of the A′ (γ*) spin density from the measured λ_θ of its dileptons.

    Inverts λ_θ = b/a of :func:`decay_coefficients` for fermions of mass ``lepton_mass``;
    clipped to the physical range [0, 1].

    Example:
        >>> round(rho00_from_lambda(0.0, 10.0), 6), round(rho00_from_lambda(1.0, 100.0), 4)
        (0.333333, 0.0)
    """
    b2 = max(1.0 - 4 * lepton_mass**2 / m**2, 1e-12)
    lam = float(lambda_theta)
    rho = (b2 - lam * (2 - b2)) / (b2 * (lam + 3))
    return float(min(max(rho, 0.0), 1.0))


def decay_coefficients(rho00: float, m: float, decay: Decay) -> tuple[float, float]:
    """(a, b) of W(cos θ) ∝ a + b cos²θ for ``decay`` of a vector of mass ``m`` (module doc).

    Example:
        >>> a, b = decay_coefficients(0.0, 1.0, DECAYS["pipi"])   # transverse: sin²θ
        >>> round(b / a, 12)
        -1.0
    """
    if decay.fermion:
        b2 = max(1.0 - 4 * decay.m1**2 / m**2, 0.0)
        return (1 - rho00) / 2 * (2 - b2) + rho00, b2 * (1 - 3 * rho00) / 2
    return (1 - rho00) / 2, (3 * rho00 - 1) / 2


# --------------------------------------------------------------------------- kinematics
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
    sampler: Any, mass: float, n: int, *, seed: int | None, rng: np.random.Generator
) -> AprimeKinematics:
    """Draw ``n`` A′ (q_T, E) at ``mass`` from ``sampler`` (a
    :class:`~gammastar.source.source.Source` or a kinematics model, seeded with ``seed``) and
    give them a uniform azimuth (from ``rng``). ``extrapolated`` is the sampler's labels, or
    ``None`` where it labels nothing (a model without labels, a Source that cannot
    extrapolate).

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
    phi = rng.uniform(0.0, 2 * np.pi, qt.size)
    extrap = out.get("extrapolated") if isinstance(out, Mapping) else None
    if not getattr(sampler, "extrapolates", True):  # a Source that labels nothing: None
        extrap = None
    return AprimeKinematics(
        mass=float(mass),
        px=qt * np.cos(phi),
        py=qt * np.sin(phi),
        pz=pz,
        e=e,
        ok=ok,
        extrapolated=None if extrap is None else np.asarray(extrap, dtype=bool).ravel(),
    )


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


# --------------------------------------------------------------------------- event generation
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


def generate(
    sampler: Any, st: EventSettings, n: int, *, seed: int | None, n_norm: int | None = None
) -> dict[str, NDArray]:
    """One chunk of ``n`` weighted events as columns (see docs/howto/signal-events.md for the columns).

    The decay vertex is forced into the decay volume with P(decay in the volume) in the
    weight: for the window keys in [l1, l2] along z from the production point; for a
    geometry that is not a :attr:`~gammastar.source.geometry.Geometry.window_geometry`
    inside its shaped volume along the A′ line from the production vertex (beam spot and
    depth; :func:`shaped_decay`), with the verdict of the shapes' requirements at that vertex
    (:meth:`gammastar.source.geometry.Shapes.seen`).

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
) -> tuple[AprimeKinematics, tuple[NDArray, NDArray], NDArray, NDArray]:
    """A′ and daughters: the random steps shared by :func:`generate` and the acceptance."""
    rng = np.random.default_rng(s_dec)
    k = aprime_kinematics(sampler, mass, n, seed=int(s_kin.generate_state(1)[0]), rng=rng)
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


# --------------------------------------------------------------------------- HepMC3 writer


# --------------------------------------------------------------------------- dark sectors
PSI1_PDGID = 1000022
"""Default PDG id of ψ₁: the PDG Monte Carlo numbering's χ̃⁰₁ slot (a neutral, long-lived
fermion, as dark-fermion UFO models write it; configurable as ``idm.psi1_pdgid``)."""
PSI2_PDGID = 1000023
"""Default PDG id of ψ₂: the χ̃⁰₂ slot (``idm.psi2_pdgid``)."""
DARK_CHAINS = ("psi1 psi2", "psi2 psi2")
"""The A′ → dark-fermion chains written (code = index): iDM has ``psi1 psi2`` only; i2DM
both (``psi1 psi1`` is invisible and not written)."""
PSI2_CHANNELS = ("ee", "mumu")
"""ψ₂ → ψ₁ℓ⁻ℓ⁺ final states (code = index)."""
_LEPTON_PDG = {"ee": 11, "mumu": 13}


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


def dark_decay_coefficients(rho00: float, m: float, m_a: float, m_b: float) -> tuple[float, float]:
    r"""(a, b) of W(cos θ*) ∝ a + b cos²θ* for A′ → ψ_a ψ̄_b (vector current, masses m_a, m_b)
    of an A′ of mass ``m`` with spin density ρ₀₀ (helicity frame, azimuth averaged).

    Hand-derived: the fermion trace 4[p_a^μ p_b^ν + p_a^ν p_b^μ − g^{μν}(p_a·p_b + m_a m_b)]
    (:mod:`gammastar.physics.darksector`, whose ε-summed contraction is the published iDM width)
    contracted with the A′ polarisation vectors in its rest frame, |ε₀·n|² = cos²θ*,
    |ε_±·n|² = sin²θ*/2, gives W ∝ (p_a·p_b + m_a m_b) − 2p*²[ρ₀₀cos²θ* + (1 − ρ₀₀)sin²θ*/2];
    with p_a·p_b + m_a m_b = (m² − δ²)/2 and p*² = (m² − σ²)(m² − δ²)/4m² (δ = m_b − m_a,
    σ = m_a + m_b) and κ = (1 − σ²/m²)/2:

    .. math:: a = 1 - \kappa(1 - \rho_{00}), \quad b = \kappa(1 - 3\rho_{00}),
              \quad \lambda' = b/a .

    For m_a = m_b = m_ℓ it is :func:`decay_coefficients` of a lepton pair (κ = β²/2); for
    massless fermions λ′ = (1 − 3ρ₀₀)/(1 + ρ₀₀) (Faccioli, Lourenço, Seixas, Wöhri, EPJC 69
    (2010) 657). ρ₀₀ comes from the λ_θ of the data's dileptons (:func:`rho00_from_lambda`).

    Example:
        >>> a, b = dark_decay_coefficients(0.0, 1.0, 0.0, 0.0)     # transverse, massless
        >>> round(b / a, 12)
        1.0
        >>> a, b = dark_decay_coefficients(0.0, 1.0, 0.2, 0.2)     # = the lepton formula
        >>> a2, b2 = decay_coefficients(0.0, 1.0, Decay("x", 1, -1, 0.2, 0.2, True))
        >>> bool(abs(b / a - b2 / a2) < 1e-12)
        True
    """
    kappa = max(1.0 - (m_a + m_b) ** 2 / m**2, 0.0) / 2
    return 1.0 - kappa * (1.0 - rho00), kappa * (1.0 - 3.0 * rho00)


def dark_chains(
    sampler: Any,
    model: Any,
    n: int,
    *,
    chains: Mapping[str, float],
    channels: Mapping[str, float],
    seed: int | None,
    rho00: float | None = None,
) -> dict[str, Any]:
    """The random steps of A′ → ψψ, ψ₂ → ψ₁ℓ⁻ℓ⁺ (no vertices): shared by the dark events and
    the iDM acceptance.

    The A′ from ``sampler`` (:func:`aprime_kinematics`), its chain drawn ∝ ``chains`` (BR of
    :data:`DARK_CHAINS`), the two-body decay A′ → ψψ: isotropic (:func:`gammastar.physics
    .darkchain.two_body_decay`) with ``rho00`` None, else with the A′ spin density ρ₀₀ (the
    γ* polarisation measured in the data, :func:`rho00_from_lambda`) in the A′ helicity frame,
    W(cos θ*) ∝ a + b cos²θ* of :func:`dark_decay_coefficients`; the forced ψ₂ ("a") with its final state drawn ∝
    ``channels`` and its three-body decay from the matrix element
    (:func:`gammastar.physics.darkchain.sample_psi2_decay`), and for ``psi2 psi2`` the second
    ψ₂ ("b") decayed the same way. The partner is p_A′ − p_a and each ψ₁ from a ψ₂ decay is
    p_ψ₂ − p_ℓ⁻ − p_ℓ⁺: four-momentum is conserved to rounding at every vertex.

    Returns:
        Dict: ``k`` (A′ :class:`AprimeKinematics`), ``chain``, ``channel``, ``b_channel``
        (−1 without a second ψ₂) code arrays, ``sign`` (+1 ψ₂, −1 ψ̄₂ for i2DM's Dirac
        fermions, +1 for iDM), (4, n) four-momenta ``psi2``, ``partner``, ``psi1``, ``lminus``,
        ``lplus`` and ``b_psi1``, ``b_lminus``, ``b_lplus`` (NaN without a second ψ₂).
    """

    ma, m1, m2 = float(model.m_aprime), float(model.m1), float(model.m2)
    ss = np.random.SeedSequence(seed)
    s_kin, s_dec = ss.spawn(2)
    rng = np.random.default_rng(s_dec)
    k = aprime_kinematics(sampler, ma, n, seed=int(s_kin.generate_state(1)[0]), rng=rng)
    a = np.stack([k.px, k.py, k.pz, k.e])
    cn = list(chains)
    cbr = np.array([chains[c] for c in cn], dtype=np.float64)
    pick = rng.choice(len(cn), size=n, p=cbr / cbr.sum()) if len(cn) > 1 else np.zeros(n, int)
    chain = np.array([DARK_CHAINS.index(c) for c in cn], dtype=np.int8)[pick]
    psi2 = np.empty((4, n))
    for code, mb in ((0, m1), (1, m2)):
        sel = np.nonzero(chain == code)[0]
        if not sel.size:
            continue
        if rho00 is None:
            psi2[:, sel] = two_body_decay(a[:, sel], m2, mb, rng)[0]
            continue
        ca, cb = dark_decay_coefficients(rho00, ma, m2, mb)
        cos_t = sample_cos_theta(rng, ca, cb, sel.size)
        phi = rng.uniform(0.0, 2 * np.pi, sel.size)
        ks = AprimeKinematics(ma, k.px[sel], k.py[sel], k.pz[sel], k.e[sel], k.ok[sel])
        psi2[:, sel] = decay_daughters(ks, m2, mb, cos_t, phi)[0]
    partner = a - psi2
    chn = list(channels)
    fbr = np.array([channels[c] for c in chn], dtype=np.float64)
    codes = np.array([PSI2_CHANNELS.index(c) for c in chn], dtype=np.int8)

    def decay(parent: NDArray, mask: NDArray) -> tuple[NDArray, ...]:
        ch = np.full(n, -1, dtype=np.int8)
        idx = np.nonzero(mask)[0]
        ch[idx] = codes[rng.choice(len(chn), size=idx.size, p=fbr / fbr.sum())]
        out = [np.full((4, n), np.nan) for _ in range(3)]
        for c in chn:
            sel = np.nonzero(ch == PSI2_CHANNELS.index(c))[0]
            if not sel.size:
                continue
            d = sample_psi2_decay(model, sel.size, final_state=c, seed=rng)
            lm, lp = boost(d["lminus"], parent[:, sel]), boost(d["lplus"], parent[:, sel])
            out[0][:, sel] = parent[:, sel] - lm - lp
            out[1][:, sel], out[2][:, sel] = lm, lp
        return ch, *out

    channel, psi1, lminus, lplus = decay(psi2, np.ones(n, dtype=bool))
    b_channel, b_psi1, b_lminus, b_lplus = decay(partner, chain == 1)
    dirac = hasattr(model, "theta")
    sign = np.where(rng.uniform(size=n) < 0.5, 1, -1) if dirac else np.ones(n, dtype=int)
    sign = np.where(chain == 1, 1, sign).astype(np.int8)  # psi2 psi2: a = ψ₂, b = ψ̄₂
    return {
        "k": k, "chain": chain, "channel": channel, "b_channel": b_channel, "sign": sign,
        "dirac": dirac, "psi2": psi2, "partner": partner, "psi1": psi1, "lminus": lminus,
        "lplus": lplus, "b_psi1": b_psi1, "b_lminus": b_lminus, "b_lplus": b_lplus,
    }  # fmt: skip


def _psi2_kin(k: AprimeKinematics, p: NDArray, m2: float) -> tuple[AprimeKinematics, NDArray]:
    fwd = k.ok & (p[2] > 0) & np.all(np.isfinite(p), axis=0)
    q = np.where(fwd, p, np.array([[0.0], [0.0], [1.0], [np.hypot(1.0, m2)]]))
    kin = AprimeKinematics(m2, q[0], q[1], q[2], q[3], fwd)
    return kin, fwd


@dataclass
class DarkEventSettings:
    """Everything one semi-visible (m_A′, ε) event sample needs (built by
    :func:`gammastar.events.stage.run_dark_events`). ``scale`` = the A′ produced (N_POT · yield
    scale · Y_A′(m) · ε²); ``br_chain`` the A′ branching ratios of the chains written,
    ``br_psi2`` Γ(ψ₂ → ψ₁ℓℓ)/Γ_tot of the channels written; ``ctau`` = cτ(ψ₂), m."""

    mass: float
    eps: float
    model: Any
    geometry: Any
    scale: float
    br_chain: dict[str, float]
    br_psi2: dict[str, float]
    ctau: float
    min_opening_angle: float = 0.0
    beam_energy: float = 400.0
    beam_spot: tuple[float, float] = (0.0, 0.0)
    target_lambda: float = 0.0
    target_lengths: float = math.inf
    aprime_pdgid: int = APRIME_PDGID
    psi1_pdgid: int = PSI1_PDGID
    psi2_pdgid: int = PSI2_PDGID
    sigma_pb_per_event: float = 0.0
    rho00: float | None = None
    """A′ spin density of A′ → ψψ (None: isotropic; :func:`dark_decay_coefficients`)."""

    @property
    def channels(self) -> tuple[str, ...]:
        return ()  # per-channel sums of write_events are the visible A′'s


def generate_dark(
    sampler: Any, st: DarkEventSettings, n: int, *, seed: int | None, n_norm: int | None = None
) -> dict[str, NDArray]:
    """One chunk of ``n`` weighted semi-visible events as columns (docs/howto/signal-events.md).

    The forced ψ₂ ("a") decays in [l₁, l₂] (distances along the beam from the production
    point, as the visible A′), or for a geometry that is not a window geometry inside its
    shaped volume along the ψ₂ line from the production vertex (:func:`shaped_decay`; the
    verdict of :meth:`gammastar.source.geometry.Shapes.seen` on both leptons), weight
    P(decay in volume); the second ψ₂ of i2DM's ψ₂ψ̄₂ ("b") decays where its exponential law
    puts it. Weights: with X = decays in the volume into a
    written channel and detected, ``weight`` = scale · BR_chain · p_a · H_a · BR_ψ₂ for ψ₁ψ₂
    and · (2 − BR_ψ₂ X_b) for ψ₂ψ̄₂, whose mean is P(X_a or X_b) = 2E[X_a] − E[X_a X_b]
    (the two ψ₂ are alike; a forced, b free); ``weight_decay`` the same before the detector.
    Rows are ordered by chain (ψ₁ψ₂ first) so that the HepMC3 records are rendered per layout.

    Returns:
        Dict of numpy columns; ``weight`` sums (over all chunks) to the expected detected
        events, ``weight_decay`` to the ψ₂ decays in the volume into the written channels.
    """
    geo = st.geometry
    ss = np.random.SeedSequence(seed)
    s_ch, s_vtx = ss.spawn(2)
    rng_v = np.random.default_rng(s_vtx)
    d = dark_chains(sampler, st.model, n, chains=st.br_chain, channels=st.br_psi2,
                    seed=int(s_ch.generate_state(1)[0]), rho00=st.rho00)  # fmt: skip
    k = d["k"]
    prod = production_vertex(st, n, rng_v)
    sh = None if geo.window_geometry else geo.shapes(semivisible=True)
    # the draws of rng_v in this order: production vertex, a, b
    vertex, t_a, prob, hit = _forced_decay(st, d, k, prod, sh, n, rng_v)
    two = d["chain"] == 1
    vertex_b, t_b, vol_b, hit_b = _free_decay(st, d, k, prod, sh, n, rng_v)
    w, w_decay = _dark_weights(st, prob, hit, two, vol_b, hit_b, float(n_norm or n))
    nan = np.full(n, np.nan)
    x0, y0, z0 = prod
    cols: dict[str, NDArray] = {
        "chain": d["chain"],
        "channel": d["channel"],
        "b_channel": d["b_channel"],
        "weight": w,
        "weight_decay": w_decay,
        "p_decay": prob,
        "detected": hit,
        "b_in_volume": vol_b,
        "b_detected": hit_b,
        "extrapolated": (k.extrapolated if k.extrapolated is not None else np.zeros(n, dtype=bool)),
        "prod_x": x0,
        "prod_y": y0,
        "prod_z": z0,
        "aprime_px": k.px,
        "aprime_py": k.py,
        "aprime_pz": k.pz,
        "aprime_E": k.e,
        **_dark_pdg_columns(st, d, two, n),
        "decay_x": vertex[0],
        "decay_y": vertex[1],
        "decay_z": vertex[2],
        "decay_t": t_a,
        "b_decay_x": np.where(two, vertex_b[0], nan),
        "b_decay_y": np.where(two, vertex_b[1], nan),
        "b_decay_z": np.where(two, vertex_b[2], nan),
        "b_decay_t": np.where(two, t_b, nan),
        **_dark_momentum_columns(d),
    }
    keep = np.nonzero(k.ok)[0]
    keep = keep[np.argsort(cols["chain"][keep], kind="stable")]
    return {name: np.ascontiguousarray(v[keep]) for name, v in cols.items()}


def _forced_decay(
    st: DarkEventSettings,
    d: Mapping[str, Any],
    k: AprimeKinematics,
    prod: tuple[NDArray, NDArray, NDArray],
    sh: Shapes | None,
    n: int,
    rng: np.random.Generator,
) -> tuple[NDArray, NDArray, NDArray, NDArray[np.bool_]]:
    """The forced ψ₂ ("a") of :func:`dark_chains`' events ``d``, produced at ``prod``: in
    [l₁, l₂] along z for a window geometry (``sh`` None), else into the shaped volume ``sh``
    along its line (:func:`shaped_decay`).

    Returns:
        Its decay vertices (3, n), m (a ψ₂ that cannot reach a window volume: where its free
        exponential law puts it); its decay times (c t, m, in the lab); P(decay in the volume),
        0 where it cannot reach it; and the detector's verdict on its leptons.
    """
    geo, m2 = st.geometry, float(st.model.m2)
    x0, y0, z0 = prod
    kin, fwd = _psi2_kin(k, d["psi2"], m2)
    p2 = d["psi2"]
    pabs = np.linalg.norm(p2[:3], axis=0)
    u2 = p2[:3] / np.where(pabs > 0, pabs, 1.0)
    if sh is None:
        zrel, prob = _decay_z(geo.l1, geo.l2, kin.pz / m2 * st.ctau, rng.uniform(0.0, 1.0, n))
        prob = np.where(fwd, prob, 0.0)
        hit = dark_hits(geo, kin, d["lminus"], d["lplus"], zrel[:, None], st.min_opening_angle)
        hit = hit[:, 0] > 0
        # the vertex on the ψ₂ line: forced in [l1, l2] along z, or (a ψ₂ that cannot reach
        # the volume: weight 0) where its free exponential law puts it
        free = -(pabs / m2 * st.ctau) * np.log1p(-rng.uniform(0.0, 1.0, n))
        path = np.where(fwd, zrel * kin.p / kin.pz, free)
        vertex = np.stack([x0 + path * u2[0], y0 + path * u2[1],
                           np.where(fwd, z0 + zrel, z0 + path * u2[2])])  # fmt: skip
    else:
        # along the ψ₂ line from the production vertex (the A′ decays there) into the shape
        origin = np.stack([x0, y0, z0])
        lm, lp = np.where(fwd, d["lminus"], 0.0), np.where(fwd, d["lplus"], 0.0)
        vertex, prob, path = shaped_decay(sh.volume, origin, p2, fwd, m2, st.ctau, rng)
        hit = (prob > 0) & sh.seen(p2, (lm, lp), vertex)
        hit &= opening_angle_passes(lm, lp, st.min_opening_angle)
    return vertex, path * p2[3] / np.where(pabs > 0, pabs, 1.0), prob, hit


def _free_decay(
    st: DarkEventSettings,
    d: Mapping[str, Any],
    k: AprimeKinematics,
    prod: tuple[NDArray, NDArray, NDArray],
    sh: Shapes | None,
    n: int,
    rng: np.random.Generator,
) -> tuple[NDArray, NDArray, NDArray[np.bool_], NDArray[np.bool_]]:
    """The second ψ₂ ("b", the ``partner`` of i2DM's ψ₂ψ̄₂ chain) of :func:`dark_chains`'
    events ``d``, produced at ``prod``: a free exponential decay along its direction, seen by
    the window keys (``sh`` None) or the shapes ``sh``.

    Returns:
        Its decay vertices (3, n), m; its decay times (c t, m, in the lab); whether it decays
        in the volume; and whether it is detected there (both False outside the ψ₂ψ̄₂ chain).
    """
    geo, m2 = st.geometry, float(st.model.m2)
    x0, y0, z0 = prod
    two = d["chain"] == 1
    pb = d["partner"]
    pb_abs = np.linalg.norm(pb[:3], axis=0)
    ell_b = -(pb_abs / m2 * st.ctau) * np.log1p(-rng.uniform(0.0, 1.0, n))
    ub = pb[:3] / np.where(pb_abs > 0, pb_abs, 1.0)
    zb = ell_b * ub[2]
    kin_b, fwd_b = _psi2_kin(k, np.where(two, pb, np.nan), m2)
    blm = np.where(two, d["b_lminus"], 0.0)
    blp = np.where(two, d["b_lplus"], 0.0)
    vertex_b = np.stack([x0 + ell_b * ub[0], y0 + ell_b * ub[1], z0 + zb])
    if sh is None:
        vol_b = two & k.ok & (zb >= geo.l1) & ((zb <= geo.l2) if geo.l2 is not None else True)
        hit_b = vol_b & fwd_b & (
            dark_hits(geo, kin_b, blm, blp, np.where(vol_b, zb, geo.l1)[:, None],
                      st.min_opening_angle)[:, 0] > 0
        )  # fmt: skip
    else:
        vol_b = two & k.ok & sh.volume.contains(vertex_b)
        seen_b = sh.seen(np.where(two, pb, 0.0), (blm, blp), vertex_b)
        hit_b = vol_b & fwd_b & seen_b & opening_angle_passes(blm, blp, st.min_opening_angle)
    return vertex_b, ell_b * pb[3] / np.where(pb_abs > 0, pb_abs, 1.0), vol_b, hit_b


def _dark_weights(
    st: DarkEventSettings,
    prob: NDArray,
    hit: NDArray[np.bool_],
    two: NDArray[np.bool_],
    vol_b: NDArray[np.bool_],
    hit_b: NDArray[np.bool_],
    norm: float,
) -> tuple[NDArray, NDArray]:
    """The events' weights over ``norm`` events drawn: ``weight`` (detected) and
    ``weight_decay`` (decayed in the volume), as :func:`generate_dark` defines them."""
    br_c = float(sum(st.br_chain.values()))
    br_f = float(sum(st.br_psi2.values()))
    w0 = st.scale * br_c * br_f * prob / norm
    w_decay = w0 * np.where(two, 2.0 - br_f * vol_b, 1.0)
    w = w0 * hit * np.where(two, 2.0 - br_f * hit_b, 1.0) * st.geometry.efficiency
    return w, w_decay


def _dark_pdg_columns(
    st: DarkEventSettings, d: Mapping[str, Any], two: NDArray[np.bool_], n: int
) -> dict[str, NDArray]:
    """The PDG ids of the decaying ψ₂ (``psi2_pdg``) and of its partner (``partner_pdg``: ψ̄₂
    in the ψ₂ψ̄₂ chain, else the ψ₁ of the opposite sign; the Majorana ψ₁ when not Dirac)."""
    sign = d["sign"].astype(np.int32)
    return {
        "psi2_pdg": sign * st.psi2_pdgid,
        "partner_pdg": np.where(two, -st.psi2_pdgid, -sign * st.psi1_pdgid)
        if d["dirac"]
        else np.full(n, st.psi1_pdgid, dtype=np.int32),
    }


def _dark_momentum_columns(d: Mapping[str, Any]) -> dict[str, NDArray]:
    """The four-momenta of :func:`dark_chains`' particles as ``<particle>_<px|py|pz|E>``, GeV."""
    cols: dict[str, NDArray] = {}
    for name in ("psi2", "partner", "psi1", "lminus", "lplus", "b_psi1", "b_lminus", "b_lplus"):
        for j, comp in enumerate(("px", "py", "pz", "E")):
            cols[f"{name}_{comp}"] = d[name][j]
    return cols


def generate_dark_chunks(
    sampler: Any, st: DarkEventSettings, n: int, *, seed: int | None, chunk: int = 100_000
) -> Iterator[dict[str, NDArray]]:
    """:func:`generate_dark` over chunks (as :func:`generate_chunks`)."""
    return numbered_chunks(
        lambda size, s: generate_dark(sampler, st, size, seed=s, n_norm=n), n, seed=seed,
        chunk=chunk,
    )  # fmt: skip
