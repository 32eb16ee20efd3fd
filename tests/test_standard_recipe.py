"""The standard generator-level A′ recipe (gammastar.yields.standard_recipe): each channel against
its analytic formula, the mixing term against Eq. 6 on a V → ee peak, the yields.json block
(total = Σ channels, the ratio to the data-driven yield, the schema) and the meson yields read
from a mock file's meta."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from gammastar.core import rundir
from gammastar.core.artifacts import make_meta
from gammastar.errors import InputError
from gammastar.physics.aprime_meson import pdg_branching_ratio
from gammastar.physics.constants import ALPHA_EM, M_E, mass, width
from gammastar.physics.kinematics import aprime_factor
from gammastar.yields.standard_recipe import (
    CHANNELS,
    MesonYields,
    channel_yield,
    meson_yields_from_meta,
    mixing_coupling2,
    mixing_fraction,
    recipe,
    standard_recipe_section,
)

BY_NAME = {c.name: c for c in CHANNELS}
MESONS = MesonYields(
    {"pi0": 0.07, "eta": 0.0064, "eta_prime": 0.00096, "rho": 0.008, "omega": 0.008, "phi": 5e-4},
    {"kind": "given", "detail": "test numbers"},
)


def _cube_integral(a, b, big_m):
    """∫_a^b (1 − x²/M²)³ dx, the polynomial expanded by hand (x ≤ M)."""

    def prim(x):
        return x - x**3 / big_m**2 + 3 * x**5 / (5 * big_m**4) - x**7 / (7 * big_m**6)

    b = min(b, big_m)
    return prim(b) - prim(a) if b > a else 0.0


def test_pi0_channel_is_foresees_formula_bin_averaged():
    # FORESEE DarkPhoton: BR(π0 → γA′) = 2 × 0.99 ε² (1 − m²/m_π²)³ (0.99: BR(π0 → γγ), PDG
    # 0.988); the recipe's bin value is its average over the bin, here against the exact
    # integral of the polynomial (8-point Gauss–Legendre is exact for degree 6: rounding only)
    edges = np.array([0.01, 0.03, 0.06, 0.1, 0.13, 0.14, 0.2])
    got = recipe(edges, MESONS, channels=[BY_NAME["pi0"]])["pi0"]
    m_pi = mass("pi0")
    br = pdg_branching_ratio("pi0->gammagamma")
    assert abs(br - 0.99) < 0.005
    exp = np.array(
        [0.07 * 2 * br * _cube_integral(a, b, m_pi) / (b - a) for a, b in itertools.pairwise(edges)]
    )
    np.testing.assert_allclose(got[:4], exp[:4], rtol=1e-12)
    # the bin holding the end point m_π: the kink at m_π sits inside one sub-interval
    assert got[4] == pytest.approx(exp[4], rel=1e-3)
    assert got[5] == 0.0  # above m_π the decay is closed: exactly no A′


def test_eta_channel_with_and_without_form_factor():
    # |F|² = (1 − m² Λ⁻²)⁻² with the NA60 η pole Λ⁻² = 1.934 GeV⁻² (PLB 757 (2016) 437), the
    # transition form factor FORESEE leaves out (|F| = 1)
    m = np.array([0.05, 0.3, 0.5])
    m_eta, br = mass("eta"), pdg_branching_ratio("eta->gammagamma")
    plain = 0.0064 * 2 * br * (1 - m**2 / m_eta**2) ** 3
    np.testing.assert_allclose(channel_yield(BY_NAME["eta"], m, MESONS), plain, rtol=1e-12)
    tff = plain / (1 - m**2 * 1.934) ** 2
    got = channel_yield(BY_NAME["eta"], m, MESONS, form_factors=True)
    np.testing.assert_allclose(got, tff, rtol=1e-12)
    assert got[2] / plain[2] > 3.5  # near the end point the form factor is a factor ~3.7


def test_vector_to_pseudoscalar_channels():
    # BR(V → PA′) = ε² BR(V → Pγ) [(1 + m²/Δ)² − 4M_V²m²/Δ²]^{3/2}, Δ = M_V² − M_P²
    # (Landsberg, Phys. Rep. 128 (1985) 301), written out here; 0 above M_V − M_P
    for name, parent, daughter, key in [
        ("omega", "omega", "pi0", "omega->pi0 gamma"),
        ("phi", "phi", "eta", "phi->eta gamma"),
    ]:
        big_m, small_m = mass(parent), mass(daughter)
        m = np.array([0.02, 0.2, 0.4, big_m - small_m + 0.01])
        d = big_m**2 - small_m**2
        lam = np.clip((1 + m**2 / d) ** 2 - 4 * big_m**2 * m**2 / d**2, 0, None)
        exp = MESONS.get(parent) * pdg_branching_ratio(key) * lam**1.5
        exp[-1] = 0.0
        np.testing.assert_allclose(channel_yield(BY_NAME[name], m, MESONS), exp, rtol=1e-12)


def test_rho_mixing_is_foresees_term():
    # FORESEE DarkPhoton's ρ mixing: ε (0.3/5) M_ρ²/|m² − M_ρ² + i M_ρ Γ_ρ| (squared per ρ);
    # here e/g_ρ from Γ(ρ → ee) = 7.04 keV (PDG): (e/g)² = 3Γ_ee/(αM) = 0.0037 vs 0.0036
    assert mixing_coupling2("rho") == pytest.approx((0.3 / 5) ** 2, rel=0.05)
    m = np.array([0.3, 0.7, 0.77526, 0.9])
    mr, gr = mass("rho"), width("rho")
    foresee = (0.3 / 5) ** 2 * mr**4 / np.abs(m**2 - mr**2 + 1j * mr * gr) ** 2
    ratio = channel_yield(BY_NAME["rho_mixing"], m, MESONS) / (0.008 * foresee)
    np.testing.assert_allclose(ratio, mixing_coupling2("rho") / (0.3 / 5) ** 2, rtol=1e-12)


@pytest.mark.parametrize("meson", ["omega", "phi"])
def test_mixing_peak_is_eq6_of_the_dilepton_peak(meson):
    """∫ N_V |mixing|² dm over a narrow peak is what Eq. 6 returns from the N_V BR(V → ee)
    dielectrons of the peak, aprime_factor(M_V, m_e) N_V BR(V → ee) = N_V (3πM/2α) BR(V → ee)
    (K_e = 1 to 1e-12): the data's V → ℓℓ peak is the recipe's mixing term. Window ±0.1 GeV:
    a Lorentzian of HWHM Γ/2 puts (2/π) arctan(2D/Γ) of itself inside; the relativistic form's
    difference from it is O(Γ/M) of the tails, < 1e-3 (ω: Γ/M = 0.011, φ: 0.004)."""
    big_m, gam, half = mass(meson), width(meson), 0.1
    edges = np.linspace(big_m - half, big_m + half, 201)
    y = recipe(edges, MESONS, channels=[BY_NAME[f"{meson}_mixing"]])[f"{meson}_mixing"]
    integral = float(np.sum(y * np.diff(edges)))
    eq6 = aprime_factor(big_m, M_E) * MESONS.get(meson) * pdg_branching_ratio(f"{meson}->ee")
    inside = 2 / math.pi * math.atan(2 * half / gam)
    assert integral == pytest.approx(eq6 * inside, rel=1e-3)
    assert eq6 == pytest.approx(
        MESONS.get(meson)
        * 3
        * math.pi
        * big_m
        / (2 * ALPHA_EM)
        * pdg_branching_ratio(f"{meson}->ee"),
        rel=1e-9,
    )
    # the peak value: (e/g)² (M/Γ)² per meson
    assert mixing_fraction([big_m], meson)[0] == pytest.approx(
        mixing_coupling2(meson) * big_m**2 / gam**2, rel=1e-12
    )


def _aprime_table():
    edges = np.round(np.arange(0.01, 1.1001, 0.01), 10)
    mass_c = 0.5 * (edges[1:] + edges[:-1])
    data = list(3e-4 * np.exp(-mass_c / 0.3))
    data[3], data[4] = None, float("nan")
    err = [None if v is None else 0.05 * v for v in data]
    return {"mass": mass_c.tolist(), "bin_edges": edges.tolist(), "per_pot_per_eps2": data,
            "stat_err": err}  # fmt: skip


def test_section_total_is_the_sum_and_the_ratio_is_consistent():
    ap = _aprime_table()
    sr = standard_recipe_section(ap, MESONS, brems=lambda m: np.full_like(m, 1e-5))
    chans = {k: np.asarray(v) for k, v in sr["channels"].items()}
    assert set(chans) == {c.name for c in CHANNELS}
    total = np.asarray(sr["per_pot_per_eps2"])
    # a sum of 9 non-negative terms: float64 rounding only
    np.testing.assert_allclose(total, np.sum(list(chans.values()), axis=0), rtol=1e-14)
    foresee = chans["pi0"] + chans["eta"] + chans["rho_mixing"] + chans["brems"]
    np.testing.assert_allclose(sr["per_pot_per_eps2_foresee"], foresee, rtol=1e-14)
    np.testing.assert_allclose(chans["brems"], 1e-5, rtol=1e-12)  # a constant's bin average
    ratio, rerr = sr["ratio_data_driven"], sr["ratio_data_driven_err"]
    assert len(ratio) == len(ap["mass"]) == len(total)
    assert ratio[3] is None  # no data-driven value
    assert ratio[4] is None  # NaN
    assert rerr[3] is None
    for i in (0, 20, 50, 100):
        assert ratio[i] == pytest.approx(ap["per_pot_per_eps2"][i] / total[i], rel=1e-14)
        assert rerr[i] == pytest.approx(ap["stat_err"][i] / total[i], rel=1e-14)
        assert sr["ratio_data_driven_foresee"][i] == pytest.approx(
            ap["per_pot_per_eps2"][i] / foresee[i], rel=1e-14
        )
    ff = sr["with_form_factors"]
    diff = sum(np.asarray(ff["channels"][k]) - chans[k] for k in ff["channels"])
    np.testing.assert_allclose(ff["per_pot_per_eps2"], total + diff, rtol=1e-14)
    assert sr["meson_yields_per_pot"]["pi0"] == 0.07
    assert sr["meson_yields_source"]["kind"] == "given"
    # the block is valid yields.json content (schema version 1)
    json_ap = {**ap, "per_pot_per_eps2": [None if i == 4 else v for i, v in enumerate(
        ap["per_pot_per_eps2"])]}  # fmt: skip
    meta = make_meta(config_sha256=None, seed=None, n_pot=1.0)
    doc = {"aprime": json_ap, "meta": meta, "standard_recipe": sr}
    rundir.validate(doc, rundir.YIELDS, where="test", version=1)
    doc["standard_recipe"] = None  # no generator behind the input: null
    rundir.validate(doc, rundir.YIELDS, where="test", version=1)


def test_a_missing_meson_drops_its_channels():
    sr = recipe([0.1, 0.2, 0.8], MesonYields({"pi0": 1.0}))
    assert all(np.all(v == 0) for k, v in sr.items() if k != "pi0")
    with pytest.raises(InputError, match="eta per POT"):
        MesonYields({"eta": -1.0})


def _parametric_meta(n_pot=1e11, n_omega=0.8, length=0.01):
    return {
        "n_pot": n_pot,
        "target_interaction_lengths": length,
        "mock_config": {
            "backend": "parametric",
            "n_omega_per_collision": n_omega,
            "cross_sections": {
                "eta": 0.8,
                "eta_prime": 0.12,
                "rho": 1.0,
                "omega": 1.0,
                "phi": 0.06,
            },
            "electrons": {"pi0": {"sigma_rel": 9.0}},
        },
    }


def test_meson_yields_from_parametric_and_pythia_meta():
    # the mock's normalisation: mesons per POT = P_int(L) ⟨n_ω⟩ σ_m/σ_ω, P_int = 1 − e^{−L}
    p_int = 1 - math.exp(-0.01)
    y = meson_yields_from_meta([("a.root", _parametric_meta())])
    assert y.get("pi0") == pytest.approx(p_int * 0.8 * 9.0, rel=1e-12)
    assert y.get("phi") == pytest.approx(p_int * 0.8 * 0.06, rel=1e-12)
    assert y.source["kind"] == "mock_parametric"
    assert y.source["files"] == ["a.root"]
    # PYTHIA: the counted multiplicities per collision (names or PDG ids) × P_int
    pythia = {
        "n_pot": 3e11,
        "target_interaction_lengths": 0.01,
        "mock_config": {"backend": "pythia"},
        "pythia": {"multiplicity_per_collision": {"pi0": 3.2, "331": 0.05, "9999": 1.0}},
    }
    y = meson_yields_from_meta([("p.root", pythia)])
    assert y.get("pi0") == pytest.approx(p_int * 3.2, rel=1e-12)
    assert y.get("eta_prime") == pytest.approx(p_int * 0.05, rel=1e-12)
    assert y.source["kind"] == "mock_pythia"
    # two files: the N_POT-weighted mean
    y = meson_yields_from_meta([("a.root", _parametric_meta()), ("p.root", pythia)])
    assert y.get("pi0") == pytest.approx(p_int * (1e11 * 7.2 + 3e11 * 3.2) / 4e11, rel=1e-12)
    with pytest.raises(InputError, match=r"p\.root: a PYTHIA mock"):
        meson_yields_from_meta([("p.root", {**pythia, "pythia": {}})])
    with pytest.raises(InputError, match=r"d\.root: no meta\.mock_config"):
        meson_yields_from_meta([("d.root", {"n_pot": 1.0, "target_interaction_lengths": 0.1})])


def test_fast_bremsstrahlung_is_the_direct_quadrature():
    # the interpolated smooth part × |F_1|² against aprime_yield_per_pot (32 × 32 quadrature)
    # at masses between the grid points, on the ρ/ω peak and at the ends: a log–log
    # interpolation of a smooth curve on 160 points over two decades: ≤ 2e-4 on a dense scan
    from gammastar.physics.bremsstrahlung import BremsSettings, aprime_yield_per_pot
    from gammastar.yields.standard_recipe import brems_interpolated

    st = BremsSettings(beam_energy=400.0, interaction_lengths=0.01)
    m = np.array([0.0101, 0.0537, 0.21, 0.5003, 0.7735, 0.78266, 0.8123, 1.0999])
    fast = brems_interpolated(st, 0.01, 1.1)(m)
    np.testing.assert_allclose(fast, aprime_yield_per_pot(m, st), rtol=5e-4)
