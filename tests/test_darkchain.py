"""Dark-sector decay kinematics (gammastar.physics.darkchain): the sampled ψ₂ → ψ₁ℓℓ
distributions against the matrix element (χ²), four-momentum bookkeeping, the decay-in-volume
weights against the exponential law, bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import integrate, stats

from gammastar.errors import GammastarError
from gammastar.physics.constants import M_E, M_MU
from gammastar.physics.darkchain import (
    idm_chain,
    sample_psi2_decay,
    two_body_decay,
)
from gammastar.physics.darksector import (
    IDM,
    Psi2Decay,
    dalitz_limits,
    psi2_ctau,
    psi2_dgamma_ds,
    psi2_matrix_element2,
    psi2_width,
)
from gammastar.physics.kinematics import boost
from gammastar.physics.volumes.shapes import Slab, sample_decay_points

N = 100_000


def _mass(p):
    return np.sqrt(np.clip(p[3] ** 2 - np.sum(p[:3] ** 2, axis=0), 0, None))


def _chi2_pvalue(counts, probs):
    exp = probs / probs.sum() * counts.sum()
    chi2 = float(np.sum((counts - exp) ** 2 / exp))
    return stats.chi2.sf(chi2, len(counts) - 1)


@pytest.fixture(scope="module")
def sample_mumu():
    # Δ = 1 at m_A′ = 2.5 m₂: propagator and muon mass both shape the spectra.
    model = IDM(m1=0.4, delta=1.0, m_aprime=2.0, alpha_d=0.1)
    return model, sample_psi2_decay(model, N, final_state="mumu", seed=2024)


def test_psi2_sample_kinematics(sample_mumu):
    model, d = sample_mumu
    tot = d["psi1"] + d["lminus"] + d["lplus"]
    # ψ₂ at rest: Σp = 0, ΣE = m₂ (float64 rounding of sums of O(1) numbers: 1e-12)
    np.testing.assert_allclose(tot[:3], 0.0, atol=1e-12)
    np.testing.assert_allclose(tot[3], model.m2, rtol=1e-12)
    np.testing.assert_allclose(_mass(d["psi1"]), 0.4, rtol=1e-9)
    np.testing.assert_allclose(_mass(d["lminus"]), M_MU, rtol=1e-6)
    pair = d["lminus"] + d["lplus"]
    np.testing.assert_allclose(_mass(pair) ** 2, d["s"], rtol=1e-9, atol=1e-12)
    # unpolarised ψ₂: the ψ₁ direction is isotropic, ⟨cos θ⟩ = 0 within 4/√(3N)
    cos = d["psi1"][2] / np.linalg.norm(d["psi1"][:3], axis=0)
    assert abs(cos.mean()) < 4 / np.sqrt(3 * N)


def test_mll_distribution_chi2(sample_mumu):
    # Expected bin contents: adaptive integrals of dΓ/ds (exact t integral) over each bin.
    model, d = sample_mumu
    edges = np.linspace(2 * M_MU, 0.4, 31) ** 2  # in s = m_ℓℓ², up to (m₂ − m₁)²
    counts, _ = np.histogram(d["s"], edges)

    def dens(s):
        return float(psi2_dgamma_ds(s, model, 1.0, "mumu"))

    probs = np.array(
        [integrate.quad(dens, a, b, epsrel=1e-8)[0] for a, b in itertools.pairwise(edges)]
    )
    assert _chi2_pvalue(counts, probs) > 1e-3
    # Power: the same sample is rejected against pure phase space (|M|² = const).
    flat = np.array(
        [
            integrate.quad(
                lambda s: float(np.subtract(*dalitz_limits(s, 0.8, 0.4, M_MU, M_MU)[::-1])), a, b
            )[0]
            for a, b in itertools.pairwise(edges)
        ]
    )
    assert _chi2_pvalue(counts, flat) < 1e-10


def test_lepton_energy_distribution_chi2(sample_mumu):
    # E(ℓ⁺) = (m₂² + m_ℓ² − t)/(2m₂) in the ψ₂ frame: bins in t, expected from the double
    # integral of |M|² over s at fixed t (dalitz_limits with the roles of the particles swapped).
    model, d = sample_mumu
    m1, m2, ma, ml = 0.4, 0.8, 2.0, M_MU
    e_plus = d["lplus"][3]
    t = m2**2 + ml**2 - 2 * m2 * e_plus
    edges = np.linspace((m1 + ml) ** 2, (m2 - ml) ** 2, 31)
    counts, _ = np.histogram(t, edges)

    def s_range(tt):
        lo, hi = dalitz_limits(tt, m2, ml, ml, m1)  # m²(ℓ⁺ℓ⁻) at fixed m²(ℓ⁻ψ₁) = t
        return [float(lo), float(hi)]

    decay = Psi2Decay(m1, m2, ma, ml)

    def f(s, tt):
        return float(psi2_matrix_element2(s, tt, decay))

    probs = np.array(
        [
            integrate.nquad(f, [s_range, [a, b]], opts={"epsrel": 1e-7})[0]
            for a, b in itertools.pairwise(edges)
        ]
    )
    assert _chi2_pvalue(counts, probs) > 1e-3
    # and the normalisation of the same integral is the width (a check of the roles' swap)
    assert probs.sum() / (256 * np.pi**3 * m2**3) * 1e-6 * 0.1 == pytest.approx(
        float(psi2_width(model, 1e-3, "mumu")), rel=1e-5
    )


def test_two_body_and_boost():
    rng = np.random.default_rng(5)
    pz = rng.uniform(1, 50, 1000)
    parent = np.stack([np.zeros(1000), np.zeros(1000), pz, np.hypot(pz, 0.9)])
    a, b = two_body_decay(parent, 0.2, 0.5, seed=7)
    np.testing.assert_allclose(a + b, parent, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(_mass(a), 0.2, rtol=1e-6)
    np.testing.assert_allclose(_mass(b), 0.5, rtol=1e-6)
    # back to the rest frame: |p*| = λ^{1/2}(M², m_a², m_b²)/(2M) = 0.3544... (hand: M = 0.9)
    inv = parent * np.array([[-1], [-1], [-1], [1]])
    a_rest = boost(a, inv)
    q = np.sqrt((0.81 - 0.49) * (0.81 - 0.09)) / 1.8
    np.testing.assert_allclose(np.linalg.norm(a_rest[:3], axis=0), q, rtol=1e-8)
    with pytest.raises(GammastarError, match="below"):
        two_body_decay(parent, 0.5, 0.5, seed=1)


def test_slab_decay_law():
    # The slab of the iDM chain (gammastar.physics.volumes.shapes.sample_decay_points): along z,
    # βγ = 2, cτ = 1 m ⇒ λ = 2 m; volume 1–5 m from z = 0: w = e^{−1/2} − e^{−5/2}; the
    # vertex z follows the truncated exponential, mean
    # z₁ + λ − (z₂ − z₁) e^{−(z₂−z₁)/λ}/(1 − e^{−(z₂−z₁)/λ}) (hand), stat error σ/√n.
    n = 200_000
    slab = Slab(z1=1.0, z2=5.0)
    d = np.tile([[0.0], [0.0], [1.0]], (1, n))
    v, w = sample_decay_points(slab, np.zeros((3, n)), d, np.full(n, 2.0), np.random.default_rng(3))
    np.testing.assert_allclose(w, np.exp(-0.5) - np.exp(-2.5), rtol=1e-12)
    lam, dz = 2.0, 4.0
    mean = 1.0 + lam - dz * np.exp(-dz / lam) / (1 - np.exp(-dz / lam))
    assert abs(v[2].mean() - mean) < 5 * v[2].std() / np.sqrt(n)
    # tilted: the path to the plane is longer by 1/cos θ; backward: weight 0
    tilt = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, -1.0]]).T / np.array([np.sqrt(2.0), 1.0])
    v2, w2 = sample_decay_points(
        slab, np.zeros((3, 2)), tilt, np.full(2, np.sqrt(2.0)), np.random.default_rng(3)
    )
    assert w2[0] == pytest.approx(np.exp(-1.0) - np.exp(-5.0))
    assert w2[1] == 0.0
    assert np.all(np.isnan(v2[:, 1]))


def test_idm_chain():
    model = IDM(m1=0.1, delta=0.4, m_aprime=0.3)
    rng = np.random.default_rng(1)
    n = 2000
    pz = rng.uniform(10, 40, n)
    a = np.stack([rng.normal(0, 0.3, n), rng.normal(0, 0.3, n), pz, np.zeros(n)])
    a[3] = np.sqrt(np.sum(a[:3] ** 2, 0) + 0.09)
    vtx = np.concatenate([np.zeros((2, n)), rng.uniform(-0.01, 0.01, (1, n))])
    out = idm_chain(a, vtx, model, 1e-3, z_range=(5.0, 20.0), seed=11)
    tot = out["psi1"] + out["psi1_decay"] + out["lminus"] + out["lplus"]
    np.testing.assert_allclose(tot, a, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(out["psi1"] + out["psi2"], a, rtol=1e-9, atol=1e-9)
    ct = float(psi2_ctau(model, 1e-3))
    assert float(out["ctau_psi2"]) == pytest.approx(ct)
    assert float(out["br_psi2"]) == 1.0  # Δm = 40 MeV: only ee open
    ok = out["weight"] > 0
    z = out["psi2_vertex"][2, ok]
    assert np.all((z >= 5.0 - 1e-9) & (z <= 20.0 + 1e-9))
    # the weight of each ψ₂ from the exponential law by hand
    p = out["psi2"]
    pabs = np.linalg.norm(p[:3], axis=0)
    lam = pabs / model.m2 * ct
    cz = p[2] / pabs
    hand = np.exp(-(5.0 - vtx[2]) / cz / lam) - np.exp(-(20.0 - vtx[2]) / cz / lam)
    np.testing.assert_allclose(out["weight"], hand, rtol=1e-9)
    with pytest.raises(GammastarError, match="m_aprime"):
        idm_chain(a * 1.1, vtx, model, 1e-3, z_range=(5.0, 20.0), seed=1)


def test_bad_input():
    model = IDM(m1=0.1, delta=0.4, m_aprime=0.3)
    with pytest.raises(GammastarError, match="hadrons"):
        sample_psi2_decay(model, 10, final_state="hadrons", seed=1)
    with pytest.raises(GammastarError, match="closed"):
        sample_psi2_decay(model, 10, final_state="mumu", seed=1)
    with pytest.raises(GammastarError, match="scalar"):
        sample_psi2_decay(IDM(m1=[0.1, 0.2], delta=0.4, m_aprime=0.9), 10, seed=1)
    a = np.array([[0.0], [0.0], [20.0], [np.hypot(20.0, 0.3)]])
    with pytest.raises(GammastarError, match="larger than z1"):
        idm_chain(a, np.zeros((3, 1)), model, 1e-3, z_range=(5.0, 1.0), seed=1)
    assert M_E < 0.02  # (ee is open for the model above: Δm = 40 MeV)
