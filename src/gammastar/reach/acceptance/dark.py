r"""The dark-sector acceptance: ψ₂ samples of inelastic dark matter with the detector's verdict
per decay-volume cell (the events' chains of :func:`gammastar.source.dark_decays.dark_chains`
and :func:`gammastar.source.hits.dark_hits`, the decay integrated exactly as for the visible
A′ of :func:`gammastar.reach.acceptance.draw`).

Offers :func:`draw_dark` (A′ → ψ₁ψ₂, one ψ₂ per chain) and :func:`draw_dark_pair` with
:class:`DarkPairSample` (i2DM's A′ → ψ₂ψ̄₂: P(≥ 1 of the two detected)).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.errors import GammastarError
from gammastar.physics.decay import decay_probability
from gammastar.reach.acceptance import KinematicSample, _cell_mid, path_sample
from gammastar.source.dark_decays import _psi2_kin, dark_chains
from gammastar.source.geometry import Geometry
from gammastar.source.hits import dark_hits, opening_angle_passes

__all__ = ["DarkPairSample", "draw_dark", "draw_dark_pair"]


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
    detector's verdict per decay-volume cell: the :class:`KinematicSample` of that ψ₂ (the
    shapes' path cells of :func:`path_sample` for a geometry that is not a window geometry: the
    ψ₂ from the production point, both leptons seen, their opening angle cut)."""

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
