"""Millicharged-particle detection (gammastar.physics.scintillator, gammastar.darksector.mcp): the
detection probability and background against hand calculations, the χ yield in an on-axis
detector against BR × a hand-computed geometric acceptance, the reach, config errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from gammastar.config import load_config
from gammastar.darksector.mcp import (
    MesonSettings,
    gstar_chi_yield,
    mcp_reach,
    meson_chi_acceptance,
    meson_chi_yields,
    run_mcp_reach,
)
from gammastar.errors import ConfigError, GammastarError
from gammastar.physics.constants import mass
from gammastar.physics.kinematics import cm_rapidity
from gammastar.physics.millicharge import channel_branching_ratios
from gammastar.physics.scintillator import ScintillatorDetector, square_solid_angle

DET = {"distance": 10.0, "n_layers": 3, "layer_length": 1.0, "area": 0.04, "npe_per_q2": 1e6}


def test_detection_probability_hand():
    det = ScintillatorDetector(**DET)
    # Q = 1e-3: N_PE = 1 per layer; all 3 layers: (1 − e^{−1})³ = 0.25258 (hand)
    assert float(det.detection_probability(1e-3)) == pytest.approx((1 - np.exp(-1)) ** 3)
    # 2 of 3 at Q = 2e-3 (N_PE = 4, p = 1 − e^{−4}): 3p²(1 − p) + p³ (hand)
    det2 = ScintillatorDetector(**{**DET, "n_coincidence": 2})
    p = 1 - np.exp(-4.0)
    assert float(det2.detection_probability(2e-3)) == pytest.approx(3 * p**2 * (1 - p) + p**3)
    # small Q: P → (Q² N₁)³ (the Q⁶ scaling of a triple coincidence)
    q = 1e-6
    assert float(det.detection_probability(q)) == pytest.approx((q**2 * 1e6) ** 3, rel=1e-5)
    # efficiency multiplies
    det3 = ScintillatorDetector(**{**DET, "efficiency": 0.5})
    assert float(det3.detection_probability(1.0)) == pytest.approx(0.5)


def test_background_hand():
    # 3-fold accidentals among 3 layers: 3 r³ τ² per stack (milliQan); r = 1 kHz, τ = 10 ns,
    # 100 stacks, 1e7 s: 3e9 · 1e-16 · 100 · 1e7 = 3e2 (hand)
    det = ScintillatorDetector(
        **DET, dark_count_rate_hz=1e3, coincidence_window_s=1e-8, live_time_s=1e7, n_channels=100
    )
    assert det.background_events() == pytest.approx(3 * 1e9 * 1e-16 * 100 * 1e7)


def test_geometry_solid_angle():
    # Isotropic rays from the origin: fraction crossing the stack = Ω(back face)/4π (every ray
    # through the back square crosses the smaller-angle front one). Binomial error √(f/N).
    det = ScintillatorDetector(**{**DET, "distance": 0.5, "area": 1.0})
    rng = np.random.default_rng(1)
    n = 400_000
    d = rng.normal(size=(3, n))
    f = det.hits(d).mean()
    expect = square_solid_angle(det.half_side, det.back) / (4 * np.pi)
    assert abs(f - expect) < 5 * np.sqrt(expect / n)


# Fig. 3's J/ψ curve at three m_χ; 0.3 slow: the same path as 0.1 and 1.0 (the default ones,
# the lightest χ and the one near the J/ψ's two-body threshold)
@pytest.mark.parametrize("m_chi", [0.1, pytest.param(0.3, marks=pytest.mark.slow), 1.0])
def test_jpsi_yield_against_hand_acceptance(m_chi):
    # The χ yield of an on-axis detector: BR(J/ψ → χχ̄) (millicharge.py, Eq. 8 with the PDG
    # Γ_ee) × a hand-computed acceptance. Hand acceptance for a J/ψ of fixed momentum along
    # the axis and a small detector: dN/dΩ_lab(θ = 0) per χ = γ²[(1 + β/β*)² + (β/β* − 1)²]/4π
    # (forward and, since β > β*, backward emission; Jacobian of the boost at θ = 0), times
    # the solid angle area/d² of the back face, times 2 for χ and χ̄.
    det = ScintillatorDetector(**{**DET, "distance": 400.0, "area": 1.0, "layer_length": 0.5})
    mj, pz = mass("jpsi"), 60.0
    n = 2_000  # identical parents: no sampling noise
    parents = np.tile([[0.0], [0.0], [pz], [np.hypot(pz, mj)]], (1, n))
    acc, _ = meson_chi_acceptance(
        "jpsi",
        m_chi,
        det,
        MesonSettings(beam_energy=400.0, n=n),
        temperature=0.2,
        rapidity_sigma=1.0,
        seed=4,
        parents=parents,
    )
    beta, gamma = pz / np.hypot(pz, mj), np.hypot(pz, mj) / mj
    pstar = np.sqrt(mj**2 / 4 - m_chi**2)
    bstar = pstar / (mj / 2)
    dndo = gamma**2 * ((1 + beta / bstar) ** 2 + (beta / bstar - 1) ** 2) / (4 * np.pi)
    hand = 2 * dndo * det.area / det.back**2
    # fixed parents: no sampling noise; 1% for the variation of dN/dΩ over the 1.2 mrad face
    assert acc == pytest.approx(hand, rel=0.01)
    # the yield per POT per Q²: P_int · multiplicity · BR · acceptance
    ys = meson_chi_yields(
        {"jpsi": {"per_collision": 2e-6, "temperature": 0.2, "rapidity_sigma": 0.5}},
        [m_chi],
        det,
        MesonSettings(beam_energy=400.0, n=20_000, p_int=0.5),
        seed=3,
    )["jpsi"]
    br = channel_branching_ratios("jpsi", [m_chi], 1.0)["chichi"]
    # BR(J/ψ → ee) = 5.97% (PDG) × (M² + 2m²)√(M² − 4m²)/M³ (m_e neglected; Eq. 8 two-body)
    hand_br = 5.97e-2 * (mj**2 + 2 * m_chi**2) * np.sqrt(mj**2 - 4 * m_chi**2) / mj**3
    assert br[0] == pytest.approx(hand_br, rel=0.01)  # 1%: the PDG edition of the package
    acc2, _ = meson_chi_acceptance(
        "jpsi",
        m_chi,
        det,
        MesonSettings(beam_energy=400.0, n=20_000),
        temperature=0.2,
        rapidity_sigma=0.5,
        seed=np.random.default_rng(np.random.SeedSequence(3).spawn(1)[0]),
    )
    assert ys[0] == pytest.approx(0.5 * 2e-6 * br[0] * acc2, rel=1e-12)


@pytest.mark.parametrize("m_chi", [0.005, 0.02, 0.05])  # Fig. 3's π⁰ curve at three m_χ
def test_pi0_dalitz_branching_ratio_by_hand(m_chi):
    # BR(π⁰ → γχχ̄)/Q² = BR(π⁰ → γγ) ∫_{4m_χ²}^{m_π²} dm² (2α/3π) m⁻² (1 − m²/m_π²)³ K_χ(m)
    # |F(m²)|² (Kroll–Wada, docs/explanation/physics.md §3.3 with the χ in place of the lepton: Eq. 8),
    # K_χ = (1 + 2m_χ²/m²)√(1 − 4m_χ²/m²), |F|² = (1 − a_π m²/m_π²)⁻², a_π = 0.0332 (PDG
    # slope); scipy quad in log m² (hand). The BR(π⁰ → γγ) is the package's PDG value.
    from scipy import integrate

    from gammastar.physics.aprime_meson import pdg_branching_ratio
    from gammastar.physics.constants import ALPHA_EM

    mp = mass("pi0")

    def f(lm2):
        m2 = np.exp(lm2)
        k = (1 + 2 * m_chi**2 / m2) * np.sqrt(max(1 - 4 * m_chi**2 / m2, 0.0))
        ff = (1 - 0.0332 * m2 / mp**2) ** -2
        return 2 * ALPHA_EM / (3 * np.pi) * (1 - m2 / mp**2) ** 3 * k * ff

    hand = integrate.quad(f, np.log(4 * m_chi**2), np.log(mp**2), epsabs=0, epsrel=1e-10)[0]
    hand *= pdg_branching_ratio("pi0->gammagamma")
    br = channel_branching_ratios("pi0", [m_chi], 1.0)["gamma chichi"][0]
    assert br == pytest.approx(hand, rel=1e-6)  # both are quadratures of the same integral


def test_pi0_dalitz_acceptance_at_rest():
    # π⁰ at rest: the χ are isotropic in the lab after averaging over the γ* directions, so
    # the acceptance is 2 Ω/4π per decay, within 5 standard errors of the γ* sampling.
    det = ScintillatorDetector(**{**DET, "distance": 0.3, "area": 0.25})
    n = 50_000
    parents = np.tile([[0.0], [0.0], [0.0], [mass("pi0")]], (1, n))
    acc, err = meson_chi_acceptance(
        "pi0",
        0.01,
        det,
        MesonSettings(beam_energy=400.0, n=n),
        temperature=0.2,
        rapidity_sigma=1.0,
        seed=8,
        parents=parents,
    )
    expect = 2 * square_solid_angle(det.half_side, det.back) / (4 * np.pi)
    assert abs(acc - expect) < 5 * err
    assert err < 0.05 * expect  # and the error is small enough for this to mean something


def test_flux_at_rest_exact():
    # A parent at rest: dN/dΩ = 1/4π, the face integral is Ω (Gauss–Legendre in the angles;
    # a face of half-side 1 m at 1.25 m: 39° wide seen from the target).
    from gammastar.darksector.mcp import chi_flux_into_detector

    det = ScintillatorDetector(**{**DET, "distance": 0.5, "layer_length": 0.25, "area": 4.0})
    f = chi_flux_into_detector([[0.0], [0.0], [0.0], [1.0]], 0.3, det)
    assert f[0] == pytest.approx(2 * square_solid_angle(1.0, det.back) / (4 * np.pi), rel=1e-6)


def test_flux_integral_against_sampled_decays():
    # chi_flux_into_detector (lab density integrated over the face) against the independent
    # count of single sampled decays (two_body_decay + hits) for J/ψ from the thermal model
    # at 400 GeV into a 1 m² face at 30 m: agreement within 5σ of the binomial count. 4·10⁴
    # parents: ≈ 7000 hits, so 5σ is ≈ 6% of the flux (a 7% bias of either method fails)
    from gammastar.darksector.mcp import chi_flux_into_detector, meson_kinematics
    from gammastar.physics.darkchain import two_body_decay

    det = ScintillatorDetector(**{**DET, "distance": 30.0, "area": 1.0})
    rng = np.random.default_rng(12)
    n = 40_000
    par = meson_kinematics(n, mass("jpsi"), temperature=0.25, rapidity_mean=cm_rapidity(400.0),
                           rapidity_sigma=0.6, rng=rng)  # fmt: skip
    a, b = two_body_decay(par, 0.2, 0.2, rng)
    counted = det.hits(a[:3]).sum() + det.hits(b[:3]).sum()
    flux = chi_flux_into_detector(par, 0.2, det).sum()
    assert abs(counted - flux) < 5 * np.sqrt(flux)


def test_gstar_yield_eq8():
    # Eq. 8: each γ* pair above 2m_χ counts weight × K_χ(m)/K_μ(m) × (χ and χ̄ in the
    # detector). γ* at rest: 2 Ω/4π each (hand); the pair below 2m_χ is dropped.
    from gammastar.physics.constants import M_MU
    from gammastar.physics.kinematics import kinematic_factor

    det = ScintillatorDetector(**{**DET, "distance": 1.0, "area": 1.0})
    y = gstar_chi_yield([1.0, 0.3], [0.0, 0.0], [0.0, 0.0], [2.0, 5.0], 0.2, det, seed=1)
    acc = 2 * square_solid_angle(0.5, det.back) / (4 * np.pi)
    hand = 2.0 * kinematic_factor(1.0, 0.2) / kinematic_factor(1.0, M_MU) * acc
    assert y == pytest.approx(hand, rel=1e-6)


def test_reach_closed_form():
    # Background-free, no N_POT uncertainty: s_up = 2.303 (exact CLs, docs/explanation/physics.md §10); with
    # Y₁ per POT per Q² and one layer of N₁ = 1: s(Q) = N Q² Y₁ (1 − e^{−Q²}); at small Q
    # s ≈ N Y₁ Q⁴ ⇒ Q_low = (2.303/(N Y₁))^{1/4} (hand).
    det = ScintillatorDetector(distance=1.0, n_layers=1, layer_length=1.0, area=1.0, npe_per_q2=1.0)
    res = mcp_reach([0.1], [1e-6], det, n_pot=1e18, n_pot_rel_uncertainty=0.0)
    assert res.s_up["0"] == pytest.approx(2.303, abs=2e-3)
    q = res.q_low["0"][0]
    assert q == pytest.approx((res.s_up["0"] / 1e12) ** 0.25, rel=1e-4)
    # no signal: nothing excluded
    assert mcp_reach([0.1], [0.0], det, n_pot=1e18, n_pot_rel_uncertainty=0.0).q_low["0"] == [None]


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"n_layers": 0}, "n_layers"),
        ({"area": 0.0}, "area"),
        ({"n_coincidence": 4}, "n_coincidence"),
    ],
)
def test_bad_detector(kwargs, word):
    with pytest.raises(GammastarError, match=word):
        ScintillatorDetector(**{**DET, **kwargs})


def test_bad_charge():
    det = ScintillatorDetector(**DET)
    with pytest.raises(GammastarError, match="Q must be positive"):
        det.detection_probability([1e-3, 0.0])
    with pytest.raises(GammastarError, match="Q must be positive"):
        det.detection_probability(-1e-3)


def _write(tmp_path: Path, mcp: dict) -> Path:
    p = tmp_path / "a.yaml"
    p.write_text(yaml.safe_dump({"name": "t", "output": str(tmp_path / "run"), "mcp": mcp}))
    return p


MCP = {
    "detector": {**DET, "distance": 30.0},
    "beam_energy": 400.0,
    "n_pot": 1e18,
    "target_interaction_lengths": "dump",
    "n_pot_rel_uncertainty": 0.0,
    "sources": {"pi0": {"per_collision": 3.0, "temperature": 0.15, "rapidity_sigma": 1.2}},
    "mass_min": 0.01,
    "mass_max": 0.06,
    "mass_points": 2,
    "n_samples": 5000,
}


def test_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="n_layers"):
        load_config(_write(tmp_path, {**MCP, "detector": {**DET, "n_layers": 0}}))
    with pytest.raises(ConfigError, match="bogus"):
        load_config(_write(tmp_path, {**MCP, "detector": {**DET, "bogus": 1}}))
    det = {k: v for k, v in DET.items() if k != "npe_per_q2"}
    with pytest.raises(ConfigError, match="npe_per_q2"):
        load_config(_write(tmp_path, {**MCP, "detector": det}))
    with pytest.raises(ConfigError, match="source"):
        load_config(_write(tmp_path, {**MCP, "sources": {}}))


def test_run_mcp_reach(tmp_path):
    cfg = load_config(_write(tmp_path, MCP))
    path = run_mcp_reach(cfg)
    doc = json.loads(path.read_text())
    assert doc["meta"]["seed"] == cfg.seed
    assert (path.parent / "figures" / "reach_mcp.png").stat().st_size > 0
    assert len(doc["q_low"]["0"]) == 2
    # the lighter χ has the larger π⁰ yield and so the lower Q reach
    q = doc["q_low"]["0"]
    assert q[0] is not None
    assert q[1] is None or q[0] < q[1]
    with pytest.raises(GammastarError):
        run_mcp_reach(cfg)  # exists, no force


def test_data_driven_yields(tmp_path):
    # A fake finished run: two pairs (one SS with a negative weight, one below 2m_χ) and the
    # yields.json meta; γ* at rest, so each χ crosses the detector with probability Ω/4π:
    # Y₁ = 2 Ω/4π Σ w K_χ/K_μ / N_POT × P_int(dump)/P_int(0.01) (hand).
    import pandas as pd

    from gammastar.darksector.mcp import data_driven_yields
    from gammastar.errors import InputError
    from gammastar.physics.constants import M_MU
    from gammastar.physics.kinematics import kinematic_factor
    from gammastar.physics.target import yield_scale

    pd.DataFrame(
        {
            "m": [0.5, 0.7, 0.25],
            "qT": [0.0, 0.0, 0.0],
            "pz": [0.0, 0.0, 0.0],
            "weight": [3.0, -1.0, 7.0],
        }
    ).to_parquet(tmp_path / "pairs.parquet")
    from gammastar.core.artifacts import make_meta

    meta = make_meta(
        config_sha256=None, seed=None, n_pot=1e11, target_interaction_lengths=0.01, lepton_mass=M_MU
    )
    aprime = {"mass": [0.5], "per_pot_per_eps2": [1.0], "stat_err": [0.1]}  # schema minimum
    (tmp_path / "yields.json").write_text(json.dumps({"aprime": aprime, "meta": meta}))
    det = ScintillatorDetector(**{**DET, "distance": 1.0, "area": 1.0})
    acc = square_solid_angle(0.5, det.back) / (4 * np.pi)
    y = data_driven_yields(tmp_path, [0.15], det, "dump", seed=1)
    k = kinematic_factor(np.array([0.5, 0.7]), 0.15) / kinematic_factor(np.array([0.5, 0.7]), M_MU)
    hand = 2 * acc * float(np.sum(np.array([3.0, -1.0]) * k)) / 1e11 * yield_scale("dump", 0.01)
    assert float(y[0]) == pytest.approx(hand, rel=1e-6)
    with pytest.raises(InputError, match=r"mcp\.data_driven\.run"):
        data_driven_yields(tmp_path / "nope", [0.15], det, "dump", seed=1)


def test_cli_reach_mcp(tmp_path, capsys, monkeypatch):
    # `gammastar reach-mcp`: 0 and the output; a config without `mcp`: one line, exit 2.
    from _phys_figures import skip_plot

    from gammastar.cli import main

    # the command's exit codes and output; the figure: test_run_mcp_reach
    drawn = skip_plot(monkeypatch, "gammastar.darksector.mcp.plot_mcp_reach")
    cfg = _write(tmp_path, {**MCP, "mass_points": 1, "n_samples": 200})
    assert main(["reach-mcp", str(cfg)]) == 0
    assert (tmp_path / "run" / "reach_mcp.json").exists()
    assert len(drawn) == 1
    bare = tmp_path / "b.yaml"
    bare.write_text(yaml.safe_dump({"name": "b", "output": str(tmp_path / "run2"),
                                    "beam": {"energy": 400.0, "interaction_lengths": 0.01},
                                    "unfold": {"efficiency_map": None}}))  # fmt: skip
    assert main(["reach-mcp", str(bare)]) == 2
    assert "no 'mcp' section" in capsys.readouterr().err


@pytest.mark.parametrize("n", [40_000, pytest.param(1_000_000, marks=pytest.mark.slow)])
def test_flux_with_caustic_against_sampled_decays(n):
    # Strongly boosted parents (m = 0.25 GeV, E = 40 GeV, m_χ = 0.1 GeV: β > β*, the χ fill a
    # 6 mrad cone whose edge is a 1/√ singularity of the lab density) within 30 mrad of the axis,
    # 1 m² at 32 m (±16 mrad): many cone edges cross the face. The pure 12×12 quadrature is
    # 1.3% low here (pull 2.7 at n = 40 000, so only the slow n = 1e6 case, σ = 0.15%, would
    # catch it); with the edge-crossing parents counted it must agree with the count of single
    # sampled decays within 5σ.
    from gammastar.darksector.mcp import chi_flux_into_detector
    from gammastar.physics.darkchain import two_body_decay

    det = ScintillatorDetector(**{**DET, "distance": 30.0, "area": 1.0, "layer_length": 2 / 3})
    rng = np.random.default_rng(5)
    m, e = 0.25, 40.0
    th, ph = rng.uniform(0, 0.03, n), rng.uniform(0, 2 * np.pi, n)
    p = np.sqrt(e**2 - m**2)
    par = np.stack(
        [p * np.sin(th) * np.cos(ph), p * np.sin(th) * np.sin(ph), p * np.cos(th), np.full(n, e)]
    )
    a, b = two_body_decay(par, 0.1, 0.1, rng)
    counted = det.hits(a[:3]).sum() + det.hits(b[:3]).sum()
    flux = chi_flux_into_detector(par, 0.1, det, seed=6).sum()
    assert abs(counted - flux) < 5 * np.sqrt(flux)
