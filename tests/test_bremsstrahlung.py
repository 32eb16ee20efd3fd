"""Proton-bremsstrahlung comparison curve (docs/explanation/physics.md §8): ingredients and independent integration."""

from __future__ import annotations

import numpy as np
import pytest
from _phys_params import diagonal_grid
from scipy.integrate import dblquad, quad

from gammastar.physics import bremsstrahlung as br
from gammastar.physics.constants import ALPHA_EM, M_PROTON
from gammastar.physics.kinematics import kinematic_factor

E_BEAM = 400.0
S = 2 * M_PROTON * E_BEAM


def test_sigma_pp_against_measurements():
    # The fit is the total pp cross-section. TOTEM: 98.3 ± 2.8 mb at 7 TeV (EPL 101 (2013)
    # 21002), 101.7 ± 2.9 mb at 8 TeV (PRL 111 (2013) 012001), 110.6 ± 3.4 mb at 13 TeV
    # (EPJC 79 (2019) 103): agreement within the quoted errors.
    for sqrt_s, meas, err in [(7000, 98.3, 2.8), (8000, 101.7, 2.9), (13000, 110.6, 3.4)]:
        assert abs(float(br.sigma_pp(sqrt_s**2)) - meas) < err
    # At the NA60 energy (√s = 27.4 GeV) σ_tot(pp) ≈ 39 mb; the fit gives 39.9 mb.
    assert float(br.sigma_pp(27.43**2)) == pytest.approx(39.86, abs=0.01)
    # the parameters of docs/explanation/physics.md §8, evaluated by hand at s = 100 GeV²
    s = 100.0
    by_hand = 35.45 + 0.308 * np.log(s / 5.38**2) ** 2 + 42.53 * s**-0.458 - 33.34 * s**-0.545
    assert float(br.sigma_pp(s)) == pytest.approx(by_hand, rel=1e-14)


def test_timelike_form_factor_normalisation():
    # F_1(0) is the proton charge, 1: isovector (ρ) and isoscalar (ω) halves 1/2 each.
    assert sum(f for f, _, _ in br.RHO_FAMILY) == pytest.approx(0.5, abs=1e-12)
    assert sum(f for f, _, _ in br.OMEGA_FAMILY) == pytest.approx(0.499, abs=1e-12)
    f0 = complex(br.timelike_form_factor(0.0))
    # constant widths leave Im F_1(0) = 0.026 and |F_1(0)| = 0.992: 1 within 1%
    assert abs(f0) == pytest.approx(1.0, abs=0.01)
    assert abs(f0.imag) < 0.03
    # the ρ family alone: 0.486 (the broad ρ′, ρ″ widths pull it below Σf = 0.5)
    assert abs(complex(br.timelike_form_factor(0.0, "rho"))) == pytest.approx(0.5, abs=0.02)
    # resonance: at m_ω the narrow ω dominates, |F_1| ≈ f_ω m_ω/Γ_ω ≈ 91
    f_omega = abs(complex(br.timelike_form_factor(0.78266, "omega")))
    assert f_omega == pytest.approx(1.011 * 0.78266 / 0.00868, rel=0.05)
    with pytest.raises(ValueError, match="family"):
        br.timelike_form_factor(0.5, "phi")


def test_splitting_function_terms_and_limits():
    # eq. (3) of arXiv:1311.3870 written out independently term by term
    z, pt2, m, mp = 0.37, 0.21, 0.6, M_PROTON
    h = pt2 + (1 - z) * m**2 + z**2 * mp**2
    t1 = (1 + (1 - z) ** 2) / z
    t2 = -2 * z * (1 - z) * ((2 * mp**2 + m**2) / h - 2 * z**2 * mp**4 / h**2)
    t3 = 2 * z * (1 - z) * (1 + (1 - z) ** 2) * mp**2 * m**2 / h**2
    t4 = 2 * z * (1 - z) ** 2 * m**4 / h**2
    ref = ALPHA_EM / (2 * np.pi * h) * (t1 + t2 + t3 + t4)
    assert float(br.splitting_function(z, pt2, m)) == pytest.approx(ref, rel=1e-14)
    # Weizsäcker–Williams limit: p_T² ≫ M², m² → w p_T² = (α/2π)(1 + (1 − z)²)/z
    for zz in (0.2, 0.5, 0.8):
        w = float(br.splitting_function(zz, 1e8, 0.3)) * 1e8
        assert w == pytest.approx(ALPHA_EM / (2 * np.pi) * (1 + (1 - zz) ** 2) / zz, rel=1e-6)
    assert np.all(br.splitting_function(np.linspace(0.1, 0.9, 9), 0.3, 0.9) > 0)


def test_pt2_integral_closed_form_vs_quad():
    for z, m in [(0.1, 0.01), (0.5, 0.5), (0.9, 1.2)]:
        num = quad(lambda x, z=z, m=m: float(br.splitting_function(z, x, m)), 0, 1, epsrel=1e-12)[0]
        assert float(br.splitting_function_pt2_integral(z, 1.0, m)) == pytest.approx(num, rel=1e-9)


# every mass by default, each with one cut-off (all three among them); the rest of the grid
# slow (_phys_params.diagonal_grid)
@pytest.mark.parametrize(
    ("m", "cutoff"), diagonal_grid([0.01, 0.3, 0.78, 1.0], [(0.5,), (1.0,), (2.0,)])
)
def test_emission_probability_vs_adaptive_dblquad(m, cutoff):
    """Gauss–Legendre (z, ln(p_T² + A)) against scipy's adaptive dblquad in (z, p_T²)."""

    def f(pt2, z):
        return float(
            br.splitting_function(z, pt2, m)
            * br.sigma_pp(S * (1 - z))
            / br.sigma_pp(S)
            * br.offshell_form_factor(z, pt2, m, cutoff) ** 2
        )

    ref = dblquad(f, 0.1, 0.9, 0.0, 1.0, epsabs=0, epsrel=1e-10)[0]
    ref *= abs(complex(br.timelike_form_factor(m))) ** 2
    assert float(br.emission_probability(m, cutoff=cutoff)) == pytest.approx(ref, rel=1e-8)


def test_emission_probability_without_cutoff_vs_closed_form():
    # analytic p_T² integral, then adaptive quad over z: an independent route
    m = 0.45
    ref = quad(
        lambda z: float(
            br.splitting_function_pt2_integral(z, 1.0, m)
            * br.sigma_pp(S * (1 - z))
            / br.sigma_pp(S)
        ),
        0.1,
        0.9,
        epsrel=1e-12,
    )[0]
    got = br.emission_probability(m, cutoff=np.inf, form_factor=False)
    assert float(got) == pytest.approx(ref, rel=1e-9)


def test_band_and_per_pot_normalisation():
    m = np.array([0.3, 0.5, 0.7, 1.0])
    st = br.BremsSettings(interaction_lengths=0.01, cutoff=1.0, band_factor=2.0)
    c, lo, hi = br.aprime_yield_band(m, st)
    assert np.all(lo < c)
    assert np.all(c < hi)  # the cut-off only suppresses: larger Λ, larger yield
    np.testing.assert_allclose(lo, br.aprime_yield_per_pot(m, st, cutoff=0.5))
    np.testing.assert_allclose(hi, br.aprime_yield_per_pot(m, st, cutoff=2.0))
    # per POT = (1 − e^{−L}) × emission probability per interaction
    p = br.emission_probability(m, cutoff=1.0)
    np.testing.assert_allclose(c, -np.expm1(-0.01) * p, rtol=1e-14)
    st2 = br.BremsSettings(normalisation=0.5)
    np.testing.assert_allclose(br.aprime_yield_per_pot(m, st2), 0.5 * c, rtol=1e-14)


def test_mcp_yield_vs_brute_force_quad():
    """Fine-grid Simpson with interpolated smooth part vs adaptive quad of the definition."""
    st = br.BremsSettings()
    m_chi, m_max = 0.1, 1.2

    def integrand(m):
        y = float(br.aprime_yield_per_pot([m], st)[0])
        return 2 * ALPHA_EM / (3 * np.pi * m) * float(kinematic_factor(m, m_chi)) * y

    # substitution m = 2m_χ + u² removes the threshold root; break at the ρ/ω peaks
    umax = np.sqrt(m_max - 2 * m_chi)
    pts = [np.sqrt(x - 2 * m_chi) for x in (0.77526, 0.78266)]
    ref = quad(
        lambda u: integrand(2 * m_chi + u * u) * 2 * u,
        0,
        umax,
        points=pts,
        limit=400,
        epsrel=1e-8,
    )[0]
    got = float(br.mcp_yield_per_pot([m_chi], st, m_max=m_max)[0])
    assert got == pytest.approx(ref, rel=2e-4)
    # above m_max/2 nothing is produced; Q² scaling
    assert float(br.mcp_yield_per_pot([0.7], st, m_max=m_max)[0]) == 0.0
    assert float(br.mcp_yield_per_pot([m_chi], st, q=0.1, m_max=m_max)[0]) == pytest.approx(
        0.01 * got, rel=1e-12
    )
