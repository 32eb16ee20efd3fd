"""A′ widths, R ratio, branching ratios and cτ (gammastar.physics.darkphoton)."""

from __future__ import annotations

import numpy as np
import pytest
from _experiment import stated_config
from scipy import integrate

from gammastar.errors import GammastarError
from gammastar.physics import darkphoton as dp
from gammastar.physics.channels import LEPTON_CHANNELS
from gammastar.physics.constants import ALPHA_EM, HBARC_GEV_M, M_E, M_MU
from gammastar.physics.kinematics import kinematic_factor


@pytest.mark.parametrize(("channel", "ml"), [("ee", M_E), ("mumu", M_MU)])
@pytest.mark.parametrize("m", [0.0015, 0.05, 0.2113, 0.25, 0.5, 1.0, 2.0])
def test_leptonic_width_is_the_analytic_formula(channel, ml, m):
    # Γ = ε² α m/3 · sqrt(1 − 4m_ℓ²/m²)(1 + 2m_ℓ²/m²), 0 below threshold (docs/explanation/physics.md §7)
    eps = 3e-5
    r = ml**2 / m**2
    expected = eps**2 * ALPHA_EM * m / 3 * np.sqrt(1 - 4 * r) * (1 + 2 * r) if r < 0.25 else 0.0
    assert dp.width(m, eps, channel) == pytest.approx(expected, rel=1e-12, abs=1e-300)


def test_widths_scale_as_eps_squared_and_broadcast():
    m = np.array([0.3, 0.8, 1.5])
    w1 = dp.width(m[:, None], np.array([1e-6, 1e-4])[None, :], "total")
    assert w1.shape == (3, 2)
    np.testing.assert_allclose(w1[:, 1] / w1[:, 0], 1e4, rtol=1e-12)


def test_hadronic_width_is_eps2_alpha_m_over_3_times_r():
    m = np.array([0.5, 0.78266, 1.019461, 1.5, 2.0])
    np.testing.assert_allclose(
        dp.width(m, 1e-3, "hadrons"), 1e-6 * ALPHA_EM * m / 3 * dp.r_ratio(m), rtol=1e-12
    )


def test_pion_form_factor_normalisation_and_charge_radius():
    # F(0) = 1; <r²> = 6 dF/ds|0 = 0.434 ± 0.005 fm² (PDG 2024, π± charge radius 0.659 fm)
    assert abs(complex(dp.pion_form_factor(0.0))) == pytest.approx(1.0, abs=1e-12)
    h = 1e-4
    f0, f1, f2 = (float(dp.pion_form_factor(x).real) for x in (0.0, h, 2 * h))
    slope = (4 * (f1 - f0) / h - (f2 - f0) / (2 * h)) / 3  # one-sided, Richardson
    r2_fm2 = 6 * slope * (HBARC_GEV_M * 1e15) ** 2
    assert r2_fm2 == pytest.approx(0.434, rel=0.05)


def test_pion_form_factor_rho_peak():
    # |F_π|² peaks at ≈ 45 near 0.775–0.78 GeV (BaBar PRD 86 (2012) 032013, KLOE, CMD-2)
    s = np.linspace(0.6, 0.95, 3501) ** 2
    f2 = np.abs(dp.pion_form_factor(s)) ** 2
    assert 40 < f2.max() < 50
    assert 0.770 < np.sqrt(s[f2.argmax()]) < 0.785


@pytest.mark.parametrize(
    ("part", "mass", "gee", "bf"),
    [
        # narrow-width area ∫σ d√s = 6π² Γ_ee B_f / M² (PDG 2024 Γ_ee, B)
        ("omega", 0.78266, 7.38e-5 * 8.68e-3, 0.892 + 0.0835),
        ("phi", 1.019461, 2.979e-4 * 4.249e-3, 0.491 + 0.339 + 0.1524 + 0.01303),
    ],
)
def test_narrow_resonances_integrate_to_pdg_widths(part, mass, gee, bf):
    # σ = R σ_μμ, σ_μμ = 4πα²/(3s): ∫ σ d√s over the peak vs the Breit–Wigner area
    def sigma(e):
        return float(dp.r_ratio_components(e)[part]) * 4 * np.pi * ALPHA_EM**2 / (3 * e**2)

    area, _ = integrate.quad(sigma, mass - 0.1, mass + 0.1, points=[mass], limit=400)
    assert area == pytest.approx(6 * np.pi**2 * gee * bf / mass**2, rel=0.12)


def test_r_ratio_against_measurements():
    # BESIII, PRL 128 (2022) 062004: R(2.2324 GeV) = 2.286 ± 0.068
    assert float(dp.r_ratio(2.2324)) == pytest.approx(2.286, abs=2 * 0.068)
    # PDG R compilation ("Plots of cross sections"): R ≈ 2 between 1.5 and 2 GeV (4π, 6π,
    # KKπ dominated) and the φ peak: σ(hadrons) ≈ 4.2 μb at 1.0195 GeV → R ≈ 50
    r = dp.r_ratio(np.linspace(1.5, 2.0, 11))
    assert np.all((r > 1.6) & (r < 2.6))
    assert 40 < float(dp.r_ratio(1.0195)) < 60
    # below the π0γ threshold nothing hadronic; below 2mπ only the tiny ω → π0γ tail
    assert float(dp.r_ratio(0.13)) == 0.0
    assert float(dp.r_ratio(0.25)) < 1e-3


def test_r_ratio_is_continuous_and_positive_over_its_range():
    m = np.linspace(0.14, dp.R_VALID_MAX, 20001)
    r = dp.r_ratio(m)
    assert np.all(np.isfinite(r))
    assert np.all(r >= 0)
    # no jump larger than the resonance slopes allow at this spacing (ω/φ are 4–9 MeV wide)
    assert np.max(np.abs(np.diff(r))) < 5.0


def test_branching_ratios():
    m = np.geomspace(0.0011, 2.4, 500)
    tot = sum(dp.branching_ratio(m, ch) for ch in ("ee", "mumu", "hadrons"))
    np.testing.assert_allclose(tot, 1.0, rtol=1e-12)
    # below 2mμ only ee
    assert dp.branching_ratio(0.2, "ee") == pytest.approx(1.0, abs=1e-6)
    # dips at ω and φ in the leptonic BR (peaks in R)
    assert dp.branching_ratio(0.78266, "mumu") < 0.5 * dp.branching_ratio(0.65, "mumu")
    assert dp.branching_ratio(1.019461, "mumu") < 0.1 * dp.branching_ratio(1.1, "mumu")
    # above ~1.5 GeV hadrons dominate with R ≈ 2: BR(μμ) ≈ 1/(2 + R) ≈ 0.24–0.3
    assert 0.2 < dp.branching_ratio(2.0, "mumu") < 0.32
    assert np.isnan(dp.branching_ratio(0.001, "ee"))  # below 2 m_e: cannot decay


def test_ctau_against_bjorken_et_al():
    # Bjorken, Essig, Schuster, Toro PRD 80 (2009) 075018, Eq. (3) (ee only, m < 2mμ):
    # γcτ ≈ 0.8 cm (E/10 GeV)(1e-4/ε)²(100 MeV/m)²
    m, eps, e = 0.1, 1e-4, 10.0
    assert dp.ctau(m, eps) * e / m == pytest.approx(0.008, rel=0.03)
    assert dp.ctau(m, 1e-6) == pytest.approx(dp.ctau(m, 1e-4) * 1e4, rel=1e-12)
    assert dp.ctau(0.3, 1e-5) == pytest.approx(HBARC_GEV_M / dp.width(0.3, 1e-5), rel=1e-12)
    assert np.isinf(dp.ctau(0.0005, 1e-5))


def test_dark_sector_lowers_the_visible_fraction():
    # Γ_inv = α_D m/3 K_χ; BR(ee) = ε²α K_e/(ε²α K_e + α_D K_χ) below 2mμ (docs/explanation/physics.md §7)
    dark = dp.DarkSector(alpha_d=0.1, m_chi=0.01)
    m, eps = 0.1, 1e-3
    ke = kinematic_factor(m, M_E)
    kc = kinematic_factor(m, 0.01)
    expected = eps**2 * ALPHA_EM * ke / (eps**2 * ALPHA_EM * ke + 0.1 * kc)
    assert dp.branching_ratio(m, "ee", eps=eps, dark=dark) == pytest.approx(expected, rel=1e-10)
    assert dp.branching_ratio(m, "invisible", eps=eps, dark=dark) > 0.999
    # closed below 2 m_χ: the minimal A′ again
    assert dp.branching_ratio(0.015, "ee", eps=eps, dark=dark) == pytest.approx(1.0)
    assert dp.ctau(m, eps, dark=dark) < dp.ctau(m, eps) * 1e-4
    scalar = dp.DarkSector(alpha_d=0.1, m_chi=0.0, kind="scalar")
    assert scalar.width(0.3) == pytest.approx(0.1 * 0.3 / 12)


def test_bad_input():
    with pytest.raises(GammastarError, match="unknown A' decay channel"):
        dp.width(0.3, 1e-5, "tautau")
    with pytest.raises(GammastarError, match="eps is needed"):
        dp.branching_ratio(0.3, "ee", dark=dp.DarkSector(0.1, 0.01))
    with pytest.raises(GammastarError):
        dp.DarkSector(-1.0, 0.01)


def test_plot(tmp_path):
    import matplotlib.pyplot as plt

    fig = dp.plot_decays(str(tmp_path / "br.png"))
    assert (tmp_path / "br.png").stat().st_size > 1000
    plt.close(fig)


def test_lepton_channels_are_one_table():
    """The leptonic channels (gammastar.physics.channels.LEPTON_CHANNELS) carry the lepton mass, the threshold
    2 m_ℓ and the width ε²α m/3 K_f(m, m_ℓ) (docs/explanation/physics.md §7); the total visible width is their
    sum plus hadrons, and the config's reach.channels allows exactly them."""
    from gammastar.errors import ConfigError

    assert set(LEPTON_CHANNELS) == {"ee", "mumu"}
    m, eps = np.array([0.15, 0.2, 0.5, 1.0]), 1e-4
    for name, ch in LEPTON_CHANNELS.items():
        assert ch.threshold == 2 * ch.lepton_mass
        assert ch.width(m, eps) == pytest.approx(dp.width(m, eps, name), rel=1e-15)
        assert np.all((ch.width(m, eps) > 0) == (m > ch.threshold))
        cfg = stated_config({"name": "t", "reach": {"channels": [name]}})
        assert cfg.reach.channels == [name]
    total = sum(ch.width(m, eps) for ch in LEPTON_CHANNELS.values()) + dp.width(
        m, eps, "hadrons"
    )
    np.testing.assert_allclose(dp.width(m, eps, "total"), total, rtol=1e-14)
    with pytest.raises(ConfigError, match="unknown lepton channel 'tautau'"):
        stated_config({"name": "t", "reach": {"channels": ["tautau"]}})
