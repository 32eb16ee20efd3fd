r"""The dark-fermion decay chains of a semi-visible A′ (iDM, i2DM), shared by the dark events
and the iDM acceptance: the PDG ids and chain/channel codes (:data:`DARK_CHAINS`,
:data:`PSI2_CHANNELS`), the A′ → ψ_a ψ̄_b angular distribution
(:func:`dark_decay_coefficients`) and the random steps A′ → ψψ, ψ₂ → ψ₁ℓ⁻ℓ⁺ without vertices
(:func:`dark_chains`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gammastar.errors import GammastarError
from gammastar.physics.darkchain import sample_psi2_decay, two_body_decay
from gammastar.physics.kinematics import boost
from gammastar.physics.sampling import sample_cos_theta
from gammastar.source.aprime import AprimeKinematics, aprime_kinematics, decay_daughters

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

    For m_a = m_b = m_ℓ it is :func:`~gammastar.source.decays.decay_coefficients` of a lepton
    pair (κ = β²/2); for massless fermions λ′ = (1 − 3ρ₀₀)/(1 + ρ₀₀) (Faccioli, Lourenço,
    Seixas, Wöhri, EPJC 69 (2010) 657). ρ₀₀ comes from the λ_θ of the data's dileptons
    (:func:`~gammastar.physics.vector_decay.rho00_from_lambda`).

    Example:
        >>> a, b = dark_decay_coefficients(0.0, 1.0, 0.0, 0.0)     # transverse, massless
        >>> round(b / a, 12)
        1.0
        >>> from gammastar.source.decays import Decay, decay_coefficients
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

    The A′ from ``sampler`` (:func:`~gammastar.source.aprime.aprime_kinematics`), its chain
    drawn ∝ ``chains`` (BR of :data:`DARK_CHAINS`), the two-body decay A′ → ψψ: isotropic
    (:func:`gammastar.physics.darkchain.two_body_decay`) with ``rho00`` None, else with the A′
    spin density ρ₀₀ (the γ* polarisation measured in the data,
    :func:`~gammastar.physics.vector_decay.rho00_from_lambda`) in the A′ helicity frame,
    W(cos θ*) ∝ a + b cos²θ* of :func:`dark_decay_coefficients`; the forced ψ₂ ("a") with its
    final state drawn ∝ ``channels`` and its three-body decay from the matrix element
    (:func:`gammastar.physics.darkchain.sample_psi2_decay`), and for ``psi2 psi2`` the second
    ψ₂ ("b") decayed the same way. The partner is p_A′ − p_a and each ψ₁ from a ψ₂ decay is
    p_ψ₂ − p_ℓ⁻ − p_ℓ⁺: four-momentum is conserved to rounding at every vertex.

    Returns:
        Dict: ``k`` (A′ :class:`~gammastar.source.aprime.AprimeKinematics`), ``chain``,
        ``channel``, ``b_channel`` (−1 without a second ψ₂) code arrays, ``sign`` (+1 ψ₂, −1 ψ̄₂
        for i2DM's Dirac fermions, +1 for iDM), (4, n) four-momenta ``psi2``, ``partner``,
        ``psi1``, ``lminus``, ``lplus`` and ``b_psi1``, ``b_lminus``, ``b_lplus`` (NaN without
        a second ψ₂).
    """

    ma, m1, m2 = float(model.m_aprime), float(model.m1), float(model.m2)
    ss = np.random.SeedSequence(seed)
    s_kin, s_dec = ss.spawn(2)
    rng = np.random.default_rng(s_dec)
    k = aprime_kinematics(sampler, ma, n, seed=int(s_kin.generate_state(1)[0]), rng=rng)
    if k.weight is not None:
        raise GammastarError("dark chains: importance-weighted A' draws are not supported")
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
