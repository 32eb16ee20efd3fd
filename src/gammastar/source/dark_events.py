r"""Semi-visible signal events (``gammastar events --dark``): :class:`DarkEventSettings` and
chunks of weighted A′ → ψψ, ψ₂ → ψ₁ℓ⁻ℓ⁺ events as columns (:func:`generate_dark`,
:func:`generate_dark_chunks`): the forced ψ₂'s vertex in the decay volume, the second ψ₂ of
i2DM where its exponential law puts it, the detector's verdict and the weights.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from gammastar.source.aprime import AprimeKinematics
from gammastar.source.dark_decays import PSI1_PDGID, PSI2_PDGID, _psi2_kin, dark_chains
from gammastar.source.eventgen import APRIME_PDGID, numbered_chunks
from gammastar.source.hits import dark_hits, opening_angle_passes
from gammastar.source.vertices import _decay_z, production_vertex, shaped_decay

if TYPE_CHECKING:
    from gammastar.source.geometry import Shapes


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
    """A′ spin density of A′ → ψψ (None: isotropic;
    :func:`~gammastar.source.dark_decays.dark_decay_coefficients`)."""

    @property
    def channels(self) -> tuple[str, ...]:
        return ()  # per-channel sums of write_events are the visible A′'s


def generate_dark(
    sampler: Any, st: DarkEventSettings, n: int, *, seed: int | None, n_norm: int | None = None
) -> dict[str, NDArray]:
    """One chunk of ``n`` weighted semi-visible events as columns (docs/howto/signal-events.md).

    The forced ψ₂ ("a") decays in [l₁, l₂] (distances along the beam from the production
    point, as the visible A′), or for a geometry that is not a window geometry inside its
    shaped volume along the ψ₂ line from the production vertex
    (:func:`~gammastar.source.vertices.shaped_decay`; the verdict of
    :meth:`gammastar.source.geometry.Shapes.seen` on both leptons), weight
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
    """The forced ψ₂ ("a") of :func:`~gammastar.source.dark_decays.dark_chains`' events ``d``,
    produced at ``prod``: in [l₁, l₂] along z for a window geometry (``sh`` None), else into
    the shaped volume ``sh`` along its line (:func:`~gammastar.source.vertices.shaped_decay`).

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
        hits = dark_hits(geo, kin, d["lminus"], d["lplus"], zrel[:, None], st.min_opening_angle)
        hit = hits[:, 0] > 0
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
    """The second ψ₂ ("b", the ``partner`` of i2DM's ψ₂ψ̄₂ chain) of
    :func:`~gammastar.source.dark_decays.dark_chains`' events ``d``, produced at ``prod``: a
    free exponential decay along its direction, seen by the window keys (``sh`` None) or the
    shapes ``sh``.

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
    """The four-momenta of :func:`~gammastar.source.dark_decays.dark_chains`' particles as
    ``<particle>_<px|py|pz|E>``, GeV."""
    cols: dict[str, NDArray] = {}
    for name in ("psi2", "partner", "psi1", "lminus", "lplus", "b_psi1", "b_lminus", "b_lplus"):
        for j, comp in enumerate(("px", "py", "pz", "E")):
            cols[f"{name}_{comp}"] = d[name][j]
    return cols


def generate_dark_chunks(
    sampler: Any, st: DarkEventSettings, n: int, *, seed: int | None, chunk: int = 100_000
) -> Iterator[dict[str, NDArray]]:
    """:func:`generate_dark` over chunks (as :func:`~gammastar.source.eventgen.generate_chunks`)."""
    return numbered_chunks(
        lambda size, s: generate_dark(sampler, st, size, seed=s, n_norm=n), n, seed=seed,
        chunk=chunk,
    )  # fmt: skip
