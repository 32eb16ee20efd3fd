"""iDM reach (gammastar.darksector.idm): the chain acceptance against the exponential law integrated
by hand for A′ at rest, the long-lived scaling of the reach, the soft-lepton cut, bad input."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy import integrate

from gammastar.darksector.idm import (
    IdmReachSettings,
    SoftLeptonSelection,
    idm_reach,
    idm_signal_table,
)
from gammastar.errors import GammastarError
from gammastar.physics.darksector import IDM, psi2_ctau
from gammastar.physics.sampling import ParametricSampler


def _at_rest(mass, n, seed):
    return {"qT": np.zeros(n), "E": np.full(n, mass)}


def test_acceptance_at_rest_against_exponential_law():
    # A′ at rest → ψ₂ with fixed p* = λ^{1/2}(M², m₁², m₂²)/2M, isotropic; no lepton cuts:
    # A(ε) = ½ ∫₀¹ dc [e^{−z₁/(c βγ cτ)} − e^{−z₂/(c βγ cτ)}] (hand, exponential law), BR = 1
    # (only ee open at Δm = 40 MeV). Tolerance: 5 standard errors of the chain average.
    model = IDM(m1=0.1, delta=0.4, m_aprime=0.3)
    sel = SoftLeptonSelection(z_range=(0.05, 0.3), theta_max=np.pi)
    n = 20_000
    tab = idm_signal_table(_at_rest, model, sel, n=n, seed=3)
    m, m1, m2 = 0.3, 0.1, 0.14
    pstar = np.sqrt((m**2 - (m1 + m2) ** 2) * (m**2 - (m2 - m1) ** 2)) / (2 * m)
    bg = pstar / m2
    for eps in (3e-4, 1e-3, 3e-3):
        ct = float(psi2_ctau(model, eps))

        def f(c, ct=ct):
            return 0.5 * (np.exp(-0.05 / (c * bg * ct)) - np.exp(-0.3 / (c * bg * ct)))

        hand = integrate.quad(f, 0, 1)[0]
        w = np.exp(-tab.l1 / ct) - np.exp(-tab.l2 / ct)
        sem = w.std() / np.sqrt(len(w))
        assert abs(float(tab.acceptance(eps)[0]) - hand) < 5 * sem


def test_long_lived_scaling_and_cuts():
    # Long-lived regime (cτ ≫ volume): s ∝ ε²·ε² ∝ y², so y_low ∝ N_POT^{-1/2}: ×4 N_POT
    # halves y_low (the same chains: seeds fixed, so only the scaling is tested; 2% for the
    # residual e^{-L/λ} curvature at y_low and the log-grid interpolation).
    kw = {
        "aprime_yield": lambda m: 1e-6,
        "sampler": ParametricSampler(),
        "selection": SoftLeptonSelection(z_range=(10.0, 50.0), theta_max=0.2),
    }
    st = IdmReachSettings(n_pot=1e17, background=0.0, n_pot_rel_uncertainty=0.0, n=4000, seed=1,
                          y_points=481)  # fmt: skip
    r1 = idm_reach([0.1], settings=st, **kw)
    r4 = idm_reach([0.1], settings=replace(st, n_pot=4e17), **kw)
    y1, y4 = r1["y_low"]["0"][0], r4["y_low"]["0"][0]
    assert y1 is not None
    assert y4 / y1 == pytest.approx(0.5, rel=0.02)
    # the (m_A′, ε) plane: ε² = y (m_A′/m₁)⁴/α_D
    assert r1["eps_low"]["0"][0] == pytest.approx(np.sqrt(y1 * 3**4 / 0.1), rel=1e-12)
    assert r1["m_aprime"] == [pytest.approx(0.3)]
    # ε at y_low is long-lived indeed: cτ(ψ₂) > 50 m × 10 (βγ ≥ 1 only helps)
    eps = np.sqrt(y1 / (0.1 / 3**4))
    assert float(psi2_ctau(IDM(m1=0.1, delta=0.1, m_aprime=0.3), eps)) > 500.0
    # leptons can never pass 1 TeV: nothing excluded
    r0 = idm_reach(
        [0.1],
        settings=replace(st, n_pot=1e15),
        **{**kw, "selection": SoftLeptonSelection((10.0, 50.0), min_energy=1e3)},
    )
    assert r0["y_low"]["0"] == [None]


def test_bad_input():
    with pytest.raises(GammastarError, match="z1 < z2"):
        SoftLeptonSelection(z_range=(5.0, 1.0))
    with pytest.raises(GammastarError, match="theta"):
        SoftLeptonSelection(z_range=(1.0, 5.0), theta_min=0.3, theta_max=0.1)
    # Δm = 1 MeV < 2m_e: no channel open
    with pytest.raises(GammastarError, match="no psi2 channel"):
        idm_signal_table(
            _at_rest,
            IDM(m1=0.01, delta=0.1, m_aprime=0.03),
            SoftLeptonSelection((1.0, 2.0)),
            n=10,
            seed=1,
        )


# --------------------------------------------------------------------------- i2DM: two ψ₂
def _beam(energy):
    """A′ along the beam with a fixed lab energy (GeV): every chain has the same A′."""

    def draw(mass, n, seed):
        return {"qT": np.zeros(n), "E": np.full(n, energy)}

    return draw


def test_i2dm_two_psi2_at_least_one_detected():
    # θ → 0: A′ → ψ₂ψ̄₂ dominates (BR ψ₁ψ₂/ψ₂ψ₂ = 2 tan²θ × phase space). A′ of 100 GeV along
    # the beam, isotropic ψ₂ψ̄₂ at cos θ* = c in its frame: the two lab p_z are
    # γ(βE* ± p*c); the decay z of each is exponential with mean p_z cτ/m₂, the leptons all
    # pass (θ_max > π: every direction; no energy cut, no plane), so per ψ₂
    # s(p_z) = e^{−l₁m₂/(p_z cτ)} − e^{−l₂m₂/(p_z cτ)} and, the two decays being independent,
    # P(≥ 1) = ½∫dc [1 − (1 − BR s_a)(1 − BR s_b)] — 1 − (1 − p)² per c (hand, scipy quad).
    # Tolerance: 5 standard errors of the chain mean (the only randomness is c).
    from gammastar.darksector.idm import chain_acceptances
    from gammastar.physics.darksector import I2DM, aprime_branching_ratios, psi2_width
    from gammastar.source.geometry import Geometry

    model = I2DM(m1=0.5, delta=0.4, m_aprime=1.5, alpha_d=0.5, theta=0.05)
    # (θ_max = 0.3 would lose the ~0.5 % of pairs with a lepton emitted backwards in the ψ₂
    # frame: a 10 σ failure of this test)
    geo = Geometry(l1=5.0, l2=30.0, theta_min=0.0, theta_max=3.2)
    e0, ma, m2 = 100.0, 1.5, 0.7
    accs = chain_acceptances(_beam(e0), model, geo, channels=("ee", "mumu"), n=20_000, seed=5)
    assert set(accs) == {"psi1 psi2", "psi2 psi2"}
    pair = accs["psi2 psi2"].sample
    br = float(psi2_width(model, 1e-3, "ee") / psi2_width(model, 1e-3, "total"))
    assert pair.br == pytest.approx(br, rel=1e-12)  # μμ closed: m₂ − m₁ = 0.2 GeV < 2m_μ
    gam, beta = e0 / ma, np.sqrt(1 - (ma / e0) ** 2)
    estar, pstar = ma / 2, np.sqrt(ma**2 / 4 - m2**2)
    ct_ref = float(psi2_ctau(model, 1e-3))
    for ct in (0.1, 0.3, 1.0):  # one ψ₂: p ≈ 0.3-0.55: the X_a X_b term matters
        eps = 1e-3 * np.sqrt(ct_ref / ct)

        def s(c, ct=ct):
            pz = gam * (beta * estar + pstar * c)
            return br * (np.exp(-5.0 * m2 / (pz * ct)) - np.exp(-30.0 * m2 / (pz * ct)))

        hand = 0.5 * integrate.quad(lambda c, s=s: 1 - (1 - s(c)) * (1 - s(-c)), -1, 1)[0]
        double = integrate.quad(s, -1, 1)[0]  # 2p̄: both counted when both are detected
        idx = np.arange(pair.n)
        xa = pair.per_chain(pair.a, idx, np.array([ct]))[0] * br
        xb = pair.per_chain(pair.b, idx, np.array([ct]))[0] * br
        x = xa + xb - xa * xb
        sem = x.std() / np.sqrt(x.size)
        got = float(accs["psi2 psi2"](eps))
        assert abs(got - float(np.mean(x))) < 1e-12  # the subset product = the full one
        assert abs(got - hand) < 5 * sem
        assert double - hand > 10 * sem  # the test sees double counting (≫ 10 σ here)
        # θ → 0: the ψ₁ψ₂ chain is a < 1 % correction to the signal
        brs = aprime_branching_ratios(model, eps)
        r = brs["psi1 psi2"] * accs["psi1 psi2"](eps) / (brs["psi2 psi2"] * got)
        assert 0 <= float(r) < 0.01


def test_i2dm_pair_closed_and_bad_theta():
    from gammastar.darksector.idm import chain_acceptances
    from gammastar.physics.darksector import I2DM
    from gammastar.reach.acceptance.dark import draw_dark_pair
    from gammastar.source.geometry import Geometry

    geo = Geometry(l1=5.0, l2=30.0, theta_min=0.0, theta_max=0.3)
    # m_A′ = 2.5 m₁ < 2 m₂ = 2.8 m₁: ψ₂ψ̄₂ closed, only ψ₁ψ₂ counted (no error)
    closed = I2DM(m1=0.4, delta=0.4, m_aprime=1.0, alpha_d=0.5, theta=0.1)
    accs = chain_acceptances(_beam(50.0), closed, geo, channels=("ee",), n=200, seed=1)
    assert set(accs) == {"psi1 psi2"}
    with pytest.raises(GammastarError, match="psi2 psi2 is closed"):
        draw_dark_pair(_beam(50.0), closed, geo, 10, channels={"ee": 1.0}, seed=1)
    for theta in (0.0, -0.1, np.pi / 2, 2.0, np.nan):
        with pytest.raises(GammastarError, match="theta must be in"):
            I2DM(m1=0.4, delta=0.4, m_aprime=1.5, theta=theta)
