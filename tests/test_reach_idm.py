"""iDM reach (gammastar.reach_idm): the chain acceptance against the exponential law integrated
by hand for A′ at rest, the long-lived scaling of the reach, the soft-lepton cut, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate

from gammastar.acceptance import ParametricSampler
from gammastar.errors import GammastarError
from gammastar.physics.darksector import IDM, psi2_ctau
from gammastar.reach_idm import SoftLeptonSelection, idm_reach, idm_signal_table


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
        "background": 0.0,
        "n_pot_rel_uncertainty": 0.0,
        "n": 4000,
        "seed": 1,
        "y_points": 481,
    }
    r1 = idm_reach([0.1], n_pot=1e17, **kw)
    r4 = idm_reach([0.1], n_pot=4e17, **kw)
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
        [0.1], n_pot=1e15, **{**kw, "selection": SoftLeptonSelection((10.0, 50.0), min_energy=1e3)}
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
