"""Meson → χχ̄ branching ratios (docs/explanation/physics.md §1, Eq. 8) and the Eq. 8 closure on analytic spectra."""

from __future__ import annotations

import hist
import numpy as np
import pytest
from scipy.integrate import quad

from gammastar.errors import ConfigError
from gammastar.physics import dalitz
from gammastar.physics.aprime_meson import pdg_branching_ratio
from gammastar.physics.constants import ALPHA_EM, M_E, M_MU, mass
from gammastar.physics.kinematics import kinematic_factor
from gammastar.physics.millicharge import (
    MESONS,
    channel_branching_ratios,
    meson_branching_ratio,
    pseudoscalar_ratio,
    vector_dalitz_ratio,
    vector_direct_ratio,
)
from gammastar.yields.formulas import mcp_yield_from_hist, mcp_yield_from_pairs

M_PI0 = mass("pi0")
M_ETA = mass("eta")

# docs/explanation/physics.md §1 (the values per Q² with F = 1), quoted to 3 significant digits.
PHYSICS_MD = [
    ("pi0", 0.01, 2.79e-3),
    ("pi0", 0.05, 1.16e-5),
    ("eta", 0.01, 6.99e-3),
    ("eta", 0.05, 2.22e-3),
    ("eta", 0.1, 6.42e-4),
    ("eta", 0.2, 1.39e-5),
]


@pytest.mark.parametrize(("meson", "m_chi", "expected"), PHYSICS_MD)
def test_pseudoscalar_ratio_physics_md_values(meson, m_chi, expected):
    got = float(pseudoscalar_ratio(mass(meson), m_chi))
    assert got == pytest.approx(expected, rel=4e-3)


def test_pseudoscalar_ratio_independent_integral_in_s():
    # The same integral written directly in s = m² (docs/explanation/physics.md §1), by plain quad.
    for m_parent, m_chi in [(M_PI0, 0.02), (M_ETA, 0.15)]:
        f = lambda s, mp=m_parent, mc=m_chi: (
            (1 - s / mp**2) ** 3 * float(kinematic_factor(np.sqrt(s), mc)) / s
        )
        ref = 2 * ALPHA_EM / (3 * np.pi) * quad(f, 4 * m_chi**2, m_parent**2, limit=400)[0]
        assert float(pseudoscalar_ratio(m_parent, m_chi)) == pytest.approx(ref, rel=1e-8)
    # with the η′ form factor's narrow ρ/ω peak (split there, as the integral is), several
    # m_χ at once: each m_χ's own integral
    m_etap, ff = mass("eta_prime"), dalitz.form_factor_eta_prime
    m_chis = np.array([0.01, 0.12, 0.3, 0.45])
    got = pseudoscalar_ratio(m_etap, m_chis, 1.0, ff)
    for mc, g in zip(m_chis, got, strict=True):
        f = lambda s, mc=mc: (
            (1 - s / m_etap**2) ** 3 * float(kinematic_factor(np.sqrt(s), mc) * ff(np.sqrt(s))) / s
        )
        ref = 2 * ALPHA_EM / (3 * np.pi) * quad(f, 4 * mc**2, m_etap**2, limit=400,
                                                 points=[0.764**2], epsrel=1e-11)[0]  # fmt: skip
        # both quadratures are asked for ≤ 1e-10 relative; 1e-8 leaves room for their estimates
        assert g == pytest.approx(ref, rel=1e-8)


def test_eq8_at_lepton_mass_reproduces_dalitz_integrals():
    # Eq. 8 with m_χ = m_ℓ and Q = 1 is the Kroll–Wada integral itself: docs/explanation/physics.md §3.3
    # unit-test integrals η → γμμ/γγ (pole) 8.24e-4, η′ → γμμ/γγ 4.90e-3, π0 → γee/γγ 1.185e-2.
    eta = pseudoscalar_ratio(M_ETA, M_MU, 1.0, lambda m: dalitz.form_factor_pole(m, 1.934))
    etap = pseudoscalar_ratio(mass("eta_prime"), M_MU, 1.0, dalitz.form_factor_eta_prime)
    pi0 = pseudoscalar_ratio(M_PI0, M_E)
    assert float(eta) == pytest.approx(8.24e-4, rel=2e-3)
    assert float(etap) == pytest.approx(4.90e-3, rel=2e-3)
    assert float(pi0) == pytest.approx(1.185e-2, rel=1e-3)
    # ω → π0μμ/π0γ with the NA60 pole: 1.23e-3 (dalitz.vector_dalitz_ratio docstring,
    # docs/explanation/physics.md §3.1: 1.03e-4 = 1.23e-3 × 8.4%)
    om = vector_dalitz_ratio(
        mass("omega"), M_PI0, M_MU, 1.0, lambda m: dalitz.form_factor_pole(m, 2.223)
    )
    assert float(om) == pytest.approx(1.23e-3, rel=5e-3)


def test_charge_scaling_and_threshold():
    r1 = pseudoscalar_ratio(M_ETA, [0.05, 0.1])
    r2 = pseudoscalar_ratio(M_ETA, [0.05, 0.1], q=0.01)
    np.testing.assert_allclose(r2, 1e-4 * r1, rtol=1e-12)
    assert float(pseudoscalar_ratio(M_PI0, 0.07)) == 0.0  # 2 m_χ > m_π0


def test_vector_direct_limits():
    mj = mass("jpsi")
    # m_χ = m_e: exactly Q² BR(ee)/BR(ee) = Q²
    assert float(vector_direct_ratio(mj, M_E, q=0.1)) == pytest.approx(0.01, rel=1e-12)
    # m_χ → 0: (M² · M)/((M² + 2m_e²)√(M² − 4m_e²)) = 1 up to O(m_e²/M²)
    assert float(vector_direct_ratio(mj, 1e-9)) == pytest.approx(1.0, abs=1e-6)
    # threshold: 0 at 2 m_χ = M and above
    assert float(vector_direct_ratio(mj, mj / 2)) == 0.0
    assert float(vector_direct_ratio(mj, mj)) == 0.0
    # m_χ = m_μ: lepton universality, BR(J/ψ → μμ)/BR(J/ψ → ee) from PDG = 0.998 (±0.5%)
    ratio_pdg = pdg_branching_ratio("jpsi->mumu") / pdg_branching_ratio("jpsi->ee")
    assert float(vector_direct_ratio(mj, M_MU)) == pytest.approx(ratio_pdg, rel=5e-3)
    # near threshold: ∝ β (2-body phase space) times (1 + 2 m²/M²) → 3/2 β
    beta = 1e-3
    mc = 0.5 * mj * np.sqrt(1 - beta**2)
    assert float(vector_direct_ratio(mj, mc)) == pytest.approx(1.5 * beta, rel=1e-3)


def test_meson_branching_ratio_contract():
    m_chi = np.array([0.01, 0.1, 0.3, 0.6, 2.0])
    for meson in MESONS:
        br = meson_branching_ratio(meson, m_chi)
        assert br.shape == m_chi.shape
        assert np.all(br >= 0)
        assert np.all(np.diff(br) <= 1e-15)  # decreasing with m_χ
        np.testing.assert_allclose(meson_branching_ratio(meson, m_chi, q=0.1), 0.01 * br)
        chans = channel_branching_ratios(meson, m_chi)
        np.testing.assert_allclose(sum(chans.values()), br)
    # J/ψ at small m_χ is Q² BR(J/ψ → ee)
    assert float(meson_branching_ratio("jpsi", 0.001)) == pytest.approx(
        pdg_branching_ratio("jpsi->ee"), rel=1e-5
    )
    # π0 at m_χ = 0.01 with the form factor is within 1% of F = 1 (small slope) and ≈ 2.76e-3
    f1 = meson_branching_ratio("pi0", 0.01, form_factors=False)
    assert float(f1) == pytest.approx(2.79e-3 * pdg_branching_ratio("pi0->gammagamma"), rel=4e-3)
    assert abs(float(meson_branching_ratio("pi0", 0.01)) / float(f1) - 1) < 0.01
    with pytest.raises(KeyError):
        meson_branching_ratio("kaon", 0.1)
    with pytest.raises(ValueError, match="positive"):
        meson_branching_ratio("eta", [0.0, 0.1])


def _kw_hist(m_parent, m_lepton, edges, ff=1.0, scale=1.0):
    """A histogram holding the per-bin integrals of the Kroll–Wada spectrum (8-point GL)."""
    xg, wg = np.polynomial.legendre.leggauss(8)
    lo, hi = edges[:-1, None], edges[1:, None]
    m = 0.5 * (hi - lo) * xg + 0.5 * (hi + lo)
    dens = dalitz.pseudoscalar_dalitz_dgamma_dm(m, m_parent, m_lepton, ff)
    contents = scale * np.sum(dens * 0.5 * (hi - lo) * wg, axis=1)
    h = hist.Hist(hist.axis.Variable(edges, name="m"), storage=hist.storage.Weight())
    h.view()["value"] = contents
    h.view()["variance"] = contents * 1e-6
    return h


@pytest.mark.parametrize(
    ("meson", "m_lepton", "m_chis"),
    [("pi0", M_E, (0.01, 0.05)), ("eta", M_E, (0.01, 0.05, 0.1)), ("eta", M_MU, (0.12, 0.2))],
)
def test_eq8_closure_on_kroll_wada_histogram(meson, m_lepton, m_chis):
    """Eq. 8 summed over a fine-binned P → γℓℓ spectrum returns BR(P → γχχ̄)/BR(γγ)."""
    m_parent = mass(meson)
    edges = np.linspace(2 * m_lepton, m_parent, 20001)
    h = _kw_hist(m_parent, m_lepton, edges)
    y = mcp_yield_from_hist(h, 1.0, list(m_chis), m_lepton=m_lepton)
    expected = pseudoscalar_ratio(m_parent, list(m_chis))
    # bin-centre evaluation: the bin holding 2 m_χ is the limit (≈ Δm/m)
    np.testing.assert_allclose(y.per_pot_per_q2, expected, rtol=2e-4)


def test_eq8_closure_exact_per_pair():
    """Per-pair Eq. 8 on 'pairs' at Gauss–Legendre nodes with density weights: exact to 1e-9.

    η → γμμ (NA60 pole form factor), χ masses above m_μ, pairs restricted to m > 2 m_χ so that
    the quadrature is a smooth-integrand rule; the result must equal the direct integral
    BR(η → γχχ̄)/BR(γγ) with the same form factor.
    """
    ff = lambda m: dalitz.form_factor_pole(m, dalitz.ETA_LAMBDA_INV2)
    for m_chi in (0.11, 0.2):
        lo, hi = 2 * m_chi, M_ETA
        u, wu = np.polynomial.legendre.leggauss(200)
        # m = lo + (hi - lo) t², t in [0, 1]: smooth at the χ threshold
        t = 0.5 * (u + 1)
        m = lo + (hi - lo) * t**2
        jac = 2 * (hi - lo) * t * 0.5 * wu
        w = dalitz.pseudoscalar_dalitz_dgamma_dm(m, M_ETA, M_MU, ff) * jac
        y = mcp_yield_from_pairs(m, w, 1.0, [m_chi], m_lepton=M_MU)
        assert float(y.per_pot_per_q2[0]) == pytest.approx(
            float(pseudoscalar_ratio(M_ETA, m_chi, 1.0, ff)), rel=1e-9
        )


def test_mcp_flags_and_bad_n_pot():
    h = _kw_hist(M_ETA, M_MU, np.linspace(0.2113, M_ETA, 200))
    y = mcp_yield_from_hist(h, 1.0, [0.05, 0.2, 0.3], m_lepton=M_MU)
    assert y.flags[0] == ["below_data_range"]  # 2 m_χ = 0.1 < 0.2113: a lower bound
    assert y.flags[1] == []
    assert y.flags[2] == ["above_data_range"]
    assert y.per_pot_per_q2[2] == 0.0
    with pytest.raises(ConfigError, match="positive"):
        mcp_yield_from_hist(h, -1.0, [0.1], m_lepton=M_MU)
    with pytest.raises(ConfigError, match="positive"):
        mcp_yield_from_pairs([0.5], [1.0], 0.0, [0.1], m_lepton=M_MU)
