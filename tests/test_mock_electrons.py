"""The dielectron mock: cocktail with m_e, π0 source, conversions, electron detector.

Statistical tests use fixed seeds and 4σ tolerances (or KS p > 1e-3) of the sample size; the
analytic references are named in each test.
"""

from __future__ import annotations

import itertools

import awkward as ak
import numpy as np
import pytest
import uproot
from scipy import stats
from scipy.integrate import cumulative_trapezoid

from gammastar.cocktail_channels import ELECTRON_CHANNELS, Channel
from gammastar.cocktail_inputs import alpha
from gammastar.config import AnalysisConfig, load_config
from gammastar.config.mock import MockConfig, MockElectronDetector
from gammastar.errors import ConfigError
from gammastar.io import mock_branches
from gammastar.mock.cocktail import EE_CHANNELS, Cocktail
from gammastar.mock.electrons import (
    ElectronBackgrounds,
    ElectronDetector,
    conversion_probability,
)
from gammastar.mock.generate import generate_file
from gammastar.mock.generator import MockGenerator
from gammastar.physics import dalitz
from gammastar.physics.constants import M_E, mass
from gammastar.physics.kinematics import invariant_mass
from gammastar.physics.target import interaction_probability


def ee_config(seed: int = 3, **mock) -> AnalysisConfig:
    mock.setdefault("efficiency_map", None)
    mock.setdefault("leptons", ["e"])
    mock.setdefault("combinatorial", {"pilot_events": 20_000})
    return AnalysisConfig(seed=seed, mock=MockConfig(**mock))


def _spec(channel):
    return next(s for s in EE_CHANNELS if s.channel == channel)


@pytest.mark.parametrize("slope", [0.0332, 0.0])
def test_pi0_dalitz_mass_follows_kroll_wada_with_tff(slope):
    """π0 → γee true mass vs the Kroll–Wada spectrum with m_e and |F|² = (1 − a m²/m_π²)⁻²
    (dalitz.pseudoscalar_dalitz_dgamma_dm), CDF on an independent fine log grid: KS p > 1e-3.
    Fails with m_μ in place of m_e (nothing below 0.21 GeV) or a sampler-grid error."""
    cfg = MockConfig(electrons={"pi0": {"tff_slope": slope}})
    cocktail = Cocktail(cfg, specs=EE_CHANNELS)
    src = cocktail.generate(np.random.default_rng(5), _spec(Channel.PI0_DALITZ_EE), 200_000)
    m = src.gstar[4]
    m_pi = mass("pi0")
    grid = 2 * M_E * (m_pi / (2 * M_E)) ** np.linspace(0, 1, 400_001)
    inv2 = slope / m_pi**2
    f = dalitz.pseudoscalar_dalitz_dgamma_dm(
        grid, m_pi, M_E, lambda x: dalitz.form_factor_pole(x, inv2)
    )
    c = cumulative_trapezoid(f, grid, initial=0.0)
    assert stats.kstest(m, lambda x: np.interp(x, grid, c / c[-1])).pvalue > 1e-3
    # the γ* mass equals the ee invariant mass (e masses in the decay kinematics); float64
    # E² − p² at E ≲ 400 GeV, m ≥ 2m_e: relative error on m ≲ ε E²/(2m²) = 2e-5
    assert np.allclose(invariant_mass(src.mu1 + src.mu2), m, rtol=1e-4, atol=0.0)


def test_pi0_has_its_own_spectra():
    """π0 parents: ⟨pT⟩ of 1/pT dN/dpT ∝ exp(−m_T/T_π0) (numerical mean of the density) and
    Gaussian rapidity of width σ_y,π0 (config), not the heavier mesons' T and σ_y."""
    cfg = MockConfig(electrons={"pi0": {"pt_temperature": 0.15, "rapidity_sigma": 1.5}})
    cocktail = Cocktail(cfg, specs=EE_CHANNELS)
    # the sampler of the π0 decays' parents (the photon is not stored in the sources)
    parent = cocktail._parents(np.random.default_rng(9), np.full(200_000, mass("pi0")), "pi0")
    pt = np.hypot(parent[0], parent[1])
    y = 0.5 * np.log((parent[3] + parent[2]) / (parent[3] - parent[2]))
    m, t = mass("pi0"), 0.15
    grid = np.linspace(0, 6, 60_001)
    w = grid * np.exp(-np.sqrt(m**2 + grid**2) / t)
    mean_pt = np.trapezoid(grid * w, grid) / np.trapezoid(w, grid)
    assert pt.mean() == pytest.approx(mean_pt, abs=4 * pt.std() / np.sqrt(pt.size))
    assert y.std() == pytest.approx(1.5, rel=0.01)  # 4σ of a std of 2e5 Gaussians: 0.6%


def test_channel_probabilities_follow_br_times_sigma():
    """Generation probabilities ∝ BR × σ/σ_ω (PDG BRs), conversions ∝ σ_π0 BR(γγ) × 2 × P_conv,
    combinatorial = mock.electrons.combinatorial_fraction (exact, deterministic)."""
    gen = MockGenerator(ee_config())
    p = dict(zip(gen.classes, gen.probabilities, strict=True))
    bg = gen.ee_backgrounds
    br = gen.ee_cocktail.branching_ratios
    pi0, eta = Channel.PI0_DALITZ_EE, Channel.ETA_DALITZ_EE
    # the p + p ratios 9.0 (pi0) and 0.8 (eta) carried to Pb: x A^(alpha_m - alpha_omega)
    s_pi0, s_eta = (r * 207.2 ** (alpha(m)[0] - alpha("omega")[0]) for m, r in (("pi0", 9.0),
                                                                             ("eta", 0.8)))  # fmt: skip
    assert p[pi0] / p[eta] == pytest.approx(s_pi0 * br[pi0].value / (s_eta * br[eta].value), 1e-12)
    p_conv = 1 - np.exp(-7 / 9 * 0.01)  # Tsai: 7/9 X/X0, default material 0.01 X0
    conv = s_pi0 * bg.br_gg.value * 2 * p_conv
    assert p[Channel.CONVERSION] / p[pi0] == pytest.approx(conv / (s_pi0 * br[pi0].value), 1e-12)
    assert p[Channel.COMBINATORIAL_EE] == pytest.approx(0.05, abs=1e-15)
    assert br[pi0].value == pytest.approx(0.0117, rel=0.03)  # PDG: (1.174 ± 0.035)%


def test_conversion_kinematics():
    """Conversion pairs: lepton energies sum to the photon energy of π0 → γγ (massless pair
    direction), energy sharing from the Bethe–Heitler dσ/dx ∝ 1 − 4/3 x(1 − x) (KS against its
    CDF (x − 2x²/3 + 4x³/9)/(7/9)), and pair masses of a few m_e: m = m_e(u₁√(E₂/E₁) +
    u₂√(E₁/E₂)) with ⟨u⟩ = 2/a = 3.2, so the median is below 10 m_e."""
    bg = ElectronBackgrounds(MockConfig())
    src = bg.conversions(np.random.default_rng(4), 100_000)
    pair = src.mu1 + src.mu2
    m = invariant_mass(pair)
    x = src.mu1[3] / pair[3]
    cdf = lambda v: (v - 2 * v**2 / 3 + 4 * v**3 / 9) / (7 / 9)
    assert stats.kstest(x, cdf).pvalue > 1e-3
    assert 2 * M_E < np.median(m) < 10 * M_E
    assert np.all(src.gstar[4] != src.gstar[4])  # no γ*: NaN
    assert set(np.unique(src.charge1 + src.charge2)) == {0}
    # the pair energy spectrum: photons of π0 → γγ carry half the π0 energy on average
    assert pair[3].mean() > 1.0
    assert conversion_probability(0.01) == pytest.approx(1 - np.exp(-0.07 / 9), rel=1e-12)


def test_detector_energy_resolution():
    """No material: (E_reco − E)/(σ_E(E) E) is N(0, 1) (mean within 4/√n, std within 1%)."""
    det = ElectronDetector(MockElectronDetector(material_x0=0.0))
    cocktail = Cocktail(MockConfig(), specs=EE_CHANNELS)
    src = cocktail.generate(np.random.default_rng(2), _spec(Channel.OMEGA_EE), 100_000)
    reco = det.apply(np.random.default_rng(3), src)
    e = src.mu1[3]
    pull = (reco.mu1[3] - e) / (det.sigma_e(e) * e)
    assert abs(pull.mean()) < 4 / np.sqrt(pull.size)
    assert pull.std() == pytest.approx(1.0, rel=0.01)


def test_radiative_tail():
    """Bremsstrahlung only: −ln z ~ Γ(t/ln 2) (KS), and the reconstructed mass of the
    relativistic pair is m √(z₁ z₂) (m² = 2E₁E₂(1 − cos θ) with directions kept; m_e²/m² ~ 1e-6)."""
    t = 0.05
    det = ElectronDetector(
        MockElectronDetector(material_x0=t, energy_stochastic=0.0, energy_constant=0.0)
    )
    cocktail = Cocktail(MockConfig(), specs=EE_CHANNELS)
    src = cocktail.generate(np.random.default_rng(12), _spec(Channel.OMEGA_EE), 50_000)
    reco = det.apply(np.random.default_rng(13), src)
    z1 = reco.mu1[3] / src.mu1[3]
    z2 = reco.mu2[3] / src.mu2[3]
    # P(−ln z > x) at x where z is resolved in float64 (−ln z below ~1e-15 rounds to 0),
    # binomial 4σ; all electrons (z does not depend on E; E_rad ≥ m_e clips none of them)
    x = -np.log(np.concatenate([z1, z2]))
    for x0 in (1e-9, 1e-5, 1e-3, 0.05, 0.5):
        p = stats.gamma(t / np.log(2)).sf(x0)
        assert abs(np.mean(x > x0) - p) < 4 * np.sqrt(p * (1 - p) / x.size), x0
    # m² = 2m_e² + 2E₁E₂ − 2p₁p₂ cos θ = 2E₁E₂(1 − cos θ) + m_e²(2 + E₁/E₂ + E₂/E₁) + O(m_e⁴):
    # m_reco² − z₁z₂ m_true² is bounded by the m_e² terms of both pairs
    r_t, r_r = src.mu1[3] / src.mu2[3], reco.mu1[3] / reco.mu2[3]
    bound = M_E**2 * (4 + r_t + 1 / r_t + r_r + 1 / r_r) * 1.01
    assert np.all(np.abs(reco.m**2 - z1 * z2 * reco.m_true**2) <= bound)
    # the tail: ω → ee below m_ω − 50 MeV only through radiation
    assert np.mean(reco.m < mass("omega") - 0.05) > 0.05


@pytest.mark.parametrize("case", ["resolution", "radiation"])
def test_lepton_acceptance_map(case):
    """The single-electron acceptance in (p, θ) against its closed forms (E_min = 1 GeV):
    resolution only (σ_E/E = b = 0.05): P = Φ((1 − E_min/E)/b); radiation only (t = 0.05 X0):
    P = P(−ln z ≤ ln(E/E_min)), −ln z ~ Γ(t/ln 2). Each averaged over the bin's log-uniform p
    (200-point quadrature); 4σ binomial of n_per_bin = 20000; 0 in the θ rows outside the
    window."""
    if case == "resolution":
        det_cfg = MockElectronDetector(material_x0=0.0, energy_stochastic=0.0, energy_constant=0.05)

        def closed(e):
            return stats.norm.cdf((1.0 - 1.0 / e) / 0.05)
    else:
        det_cfg = MockElectronDetector(material_x0=0.05, energy_stochastic=0.0, energy_constant=0.0)

        def closed(e):
            return stats.gamma(0.05 / np.log(2)).cdf(np.log(np.maximum(e, 1.0)))

    det = ElectronDetector(det_cfg)
    p_edges = np.array([0.9, 0.95, 1.0, 1.05, 1.1, 1.2, 1.5, 3.0, 30.0])
    t_edges = np.array([0.0, 0.005, 0.1, np.pi])
    n = 20_000
    prob, var = det.lepton_acceptance(np.random.default_rng(8), p_edges, t_edges, n)
    assert prob.shape == (8, 3)
    assert np.all(prob[:, [0, 2]] == 0.0)
    for i, (lo, hi) in enumerate(itertools.pairwise(p_edges)):
        e = np.geomspace(lo, hi, 200)  # E = p here (m_e/p < 1e-3: (E − p)/p < 1.3e-7)
        expected = closed(e).mean()
        sigma = np.sqrt(max(expected * (1 - expected), 1e-4) / n)
        assert abs(prob[i, 1] - expected) < 4 * sigma, (i, prob[i, 1], expected)
    np.testing.assert_allclose(var[:, 1], prob[:, 1] * (1 - prob[:, 1]) / n)


def test_combinatorial_like_sign_relation():
    """Independent symmetric charges: N+− = 2√(N++ N−−) within 4σ (multinomial)."""
    bg = ElectronBackgrounds(MockConfig())
    src = bg.combinatorial(np.random.default_rng(6), 200_000)
    q = src.charge1 + src.charge2
    npp, nmm, nos = (q == 2).sum(), (q == -2).sum(), (q == 0).sum()
    assert abs(nos - 2 * np.sqrt(npp * nmm)) < 4 * np.sqrt(q.size * 0.5 * 0.5)
    assert np.all(src.parent_pdgid == 0)


def test_file_layout_electrons_only(tmp_path):
    """leptons [e]: electron_* branches (float64), no muon branches, truth_ee, acceptance_ee;
    every event holds two electrons; N_POT = N_cocktail/(P_int n_ω Σ w) with conversions."""
    path = tmp_path / "ee.root"
    # layout only: a template of 2·10⁴ sources still writes both of its histograms, and
    # 1.2·10⁴ sources in three chunks the events of every kind the layout checks read
    cfg = ee_config(electrons={"conversion_template_sources": 20_000})
    res = generate_file(cfg, path, events=12_000, chunk_size=5_000)
    with uproot.open(path) as f:
        keys = {k.split(";")[0] for k in f}
        assert {"events", "truth_ee", "acceptance_ee", "truth_all_m_ee"} <= keys
        # the conversion template (background.conversion_template) and the single-electron
        # acceptance (unfold.lepton_acceptance.map), from their own simulations
        assert {"conversion_ratio_ee", "lepton_acceptance_ee"} <= keys
        assert "truth" not in keys
        tree = f["events"]
        assert "nmuon" not in tree
        assert "nelectron" in tree
        # the branches the config check reads input.branches against (gammastar.io)
        assert set(tree.keys()) == mock_branches(["e"])
        assert tree["electron_px"].interpretation.content.to_dtype.itemsize == 8
        ev = tree.arrays()
    assert np.all(ak.to_numpy(ev.nelectron) == 2)
    assert set(np.unique(ak.to_numpy(ev.truth_channel))) <= {int(c) for c in ELECTRON_CHANNELS}
    from gammastar.mock.plots import plot_file

    out = plot_file(path, tmp_path / "plots")
    assert [p.name for p in out] == ["mock_mass_ee.png", "mock_pt_ee.png"]
    meta = res.meta
    n_c = sum(v for k, v in res.n_generated.items() if k != "COMBINATORIAL_EE")
    per_coll = meta["electrons"]["ee_sources_per_collision"]
    assert res.n_pot == pytest.approx(n_c / (interaction_probability(0.01) * per_coll), 1e-12)


def test_file_both_flavours(tmp_path):
    """leptons [mu, e]: each event holds the two leptons of one source, of one flavour; the
    flavour blocks are generated in proportion to their sources per collision."""
    path = tmp_path / "both.root"
    # the conversion template's own simulation (its own random stream, not the events'): small
    electrons = {"pi0": {"sigma_rel": 0.0}, "conversion_template_sources": 20_000}
    cfg = ee_config(leptons=["mu", "e"], electrons=electrons)
    gen = MockGenerator(cfg)
    res = generate_file(cfg, path, events=60_000, chunk_size=30_000)
    with uproot.open(path) as f:
        ev = f["events"].arrays()
        assert {"truth;1", "truth_ee;1"} <= set(f.keys())
    nmu, ne = ak.to_numpy(ev.nmuon), ak.to_numpy(ev.nelectron)
    assert np.all(nmu + ne == 2)
    assert np.all(nmu * ne == 0)
    ch = ak.to_numpy(ev.truth_channel)
    is_e = np.isin(ch, [int(c) for c in ELECTRON_CHANNELS])
    assert np.array_equal(is_e, ne == 2)
    p = dict(zip(gen.classes, gen.probabilities, strict=True))
    # η → γee / η → γμμ: the BR ratio (same parents), PDG 6.9e-3 / 3.1e-4
    r = p[Channel.ETA_DALITZ_EE] / p[Channel.ETA_DALITZ]
    br = gen.ee_cocktail.branching_ratios[Channel.ETA_DALITZ_EE].value
    assert r == pytest.approx(br / gen.cocktail.branching_ratios[Channel.ETA_DALITZ].value, 1e-9)
    assert res.n_generated["ETA_DALITZ_EE"] > 10 * res.n_generated["ETA_DALITZ"] > 0


@pytest.mark.parametrize("leptons", [["mu", "mu"], ["tau"], []])
def test_bad_leptons_are_config_errors(tmp_path, leptons):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"mock:\n  leptons: {leptons}\n")
    with pytest.raises(ConfigError, match="leptons"):
        load_config(cfg)
