"""Semi-visible dark photons through the event machinery: `gammastar events --dark`
(iDM, i2DM chains, HepMC3 round trip), the soft-lepton verdict and `gammastar reach-idm`."""

from __future__ import annotations

import json
import math

import numpy as np
import pyhepmc
import pytest
from _experiment import stated_config, stated_yaml
from _phys_figures import skip_plot
from _tolerance import EPS64
from test_events import make_config, read_table

from gammastar.cli import main
from gammastar.errors import ConfigError, GammastarError
from gammastar.events.stage import EventRequest, run_dark_events
from gammastar.physics.darksector import aprime_branching_ratios
from gammastar.source.aprime import AprimeKinematics
from gammastar.source.geometry import Geometry
from gammastar.source.hits import dark_hits

# a decay volume with the soft-lepton cuts of both tracks (energy threshold, angles, plane)
IDM_PLOT = "gammastar.darksector.idm.plot_idm_reach"  # the iDM reach's figure

SOFT = {
    "l1": 5.0,
    "l2": 30.0,
    "theta_min": 0.0,
    "theta_max": 0.2,
    "min_daughter_energy": 0.5,
    "plane_z": 40.0,
    "r_min": 0.0,
    "r_max": 3.0,
    "z_steps": 8,
}


def dark_config(tmp_path, detector=SOFT, **idm):
    base = make_config(tmp_path, detector=detector)
    d = base.model_dump(exclude={"source"}, by_alias=True)
    d["idm"] = {"background": 0.5, "n_pot_rel_uncertainty": 0.1, "delta": 0.4, **idm}
    return stated_config(d, source=base.source)


def balance(v):
    pin = sum(np.array(list(p.momentum)) for p in v.particles_in)
    pout = sum(np.array(list(p.momentum)) for p in v.particles_out)
    scale = sum(p.momentum.e for p in [*v.particles_in, *v.particles_out])
    return np.abs(pin - pout), scale


def test_idm_hepmc_round_trip(tmp_path):
    cfg = dark_config(tmp_path, min_opening_angle=0.002)
    out, tab = tmp_path / "d.hepmc", tmp_path / "d.parquet"
    res = run_dark_events(
        cfg, EventRequest(n=400, output=out, table=tab, chunk=150), mass=0.6, eps=1e-4
    ).document
    t = read_table(tab)
    assert len(t) == res["events"] == 400
    meta = res["meta"]
    m1, m2 = meta["m1"], meta["m2"]
    assert m1 == pytest.approx(0.2)
    assert m2 == pytest.approx(0.28)
    n_read, weights = 0, []
    with pyhepmc.open(out) as f:
        for ev in f:
            row = t.iloc[n_read]
            n_read += 1
            assert ev.event_number == row.event
            weights.append(ev.weights[0])
            ids = [(p.pid, p.status) for p in ev.particles]
            lep = 11 if row.channel == 0 else 13
            assert ids == [(2212, 4), (2212, 4), (4900022, 2), (90, 3), (1000022, 1),
                           (1000023, 2), (1000022, 1), (lep, 1), (-lep, 1)]  # fmt: skip
            # four-momentum at every vertex: ψ₁ = A′ − ψ₂ (1 rounding), ψ₁′ = ψ₂ − ℓ⁻ − ℓ⁺
            # (2), X = beams − A′ (≤ 4 as in test_events): within 8 eps Σ|E| of the vertex
            for v in ev.vertices:
                diff, scale = balance(v)
                assert np.all(diff <= 8 * EPS64 * scale)
            prod, adec, pdec = ev.vertices
            assert adec.position.z == prod.position.z  # prompt A′ → ψ₁ψ₂
            # the ψ₂ decay vertex in the decay volume, on the ψ₂ line
            # (a ψ₂ flying backwards cannot get there: weight 0, its free vertex)
            dz = (pdec.position.z - prod.position.z) / 1000.0
            if row.p_decay > 0:
                assert SOFT["l1"] * (1 - 1e-12) <= dz <= SOFT["l2"] * (1 + 1e-12)
            else:
                assert row.weight == 0
            psi2 = adec.particles_out[1].momentum
            d = np.array([pdec.position.x - prod.position.x, pdec.position.y - prod.position.y])
            assert np.allclose(d, np.array([psi2.px, psi2.py]) / psi2.pz * dz * 1000, rtol=1e-9,
                               atol=1e-9)  # fmt: skip
            # masses written are the model's
            masses = [p.generated_mass for p in pdec.particles_out]
            assert masses[0] == pytest.approx(m1)
    assert n_read == 400
    np.testing.assert_array_equal(np.array(weights), t.weight.to_numpy())
    # the verdict: detected rows pass every soft-lepton cut (recomputed here from the table)
    det = t[t.detected]
    assert len(det) > 20
    for s in ("lminus", "lplus"):
        assert np.all(det[f"{s}_E"] >= SOFT["min_daughter_energy"])
        th = np.arctan2(np.hypot(det[f"{s}_px"], det[f"{s}_py"]), det[f"{s}_pz"])
        assert np.all(th < SOFT["theta_max"])
        zp = SOFT["plane_z"] - (det.decay_z - det.prod_z)
        x = det.decay_x - det.prod_x + zp * det[f"{s}_px"] / det[f"{s}_pz"]
        y = det.decay_y - det.prod_y + zp * det[f"{s}_py"] / det[f"{s}_pz"]
        assert np.all(np.hypot(x, y) <= SOFT["r_max"] * (1 + 1e-9))
    a = det[["lminus_px", "lminus_py", "lminus_pz"]].to_numpy()
    b = det[["lplus_px", "lplus_py", "lplus_pz"]].to_numpy()
    cos = np.sum(a * b, 1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert np.all(np.arccos(np.clip(cos, -1, 1)) >= 0.002)
    assert np.all(t.weight[~t.detected] == 0)
    with pyhepmc.open(out) as f:
        ev = f.read()
        hdr = json.loads(str(ev.run_info.attributes["gammastar_meta"]))
        assert ev.run_info.weight_names == ["weight", "weight_decay"]
    assert hdr["psi1_pdgid"] == 1000022
    assert hdr["model"] == "idm"


def test_idm_sum_of_weights_is_the_acceptance(tmp_path):
    """Σ weights of the events (vertex drawn) = the reach's expectation (decay integrated
    exactly per cell, :func:`gammastar.reach.acceptance.dark.draw_dark`), within the events'
    statistical error (5 σ from Σw²) plus the expectation's (its sample is 5× larger)."""
    cfg = dark_config(tmp_path)
    res = run_dark_events(
        cfg, EventRequest(n=6000, output=tmp_path / "d.parquet", seed=7), mass=0.6, eps=3e-4
    ).document
    exp = res["meta"]["n_sig_expected_psi1_psi2"]
    sw, sw2 = res["sum_weight"], res["sum_weight2"]
    err = math.sqrt(sw2) * math.sqrt(1 + 1 / 5)
    assert exp > 0
    assert abs(sw - exp) < 5 * err
    assert err / sw < 0.1  # the test has power


def test_i2dm_chains(tmp_path):
    theta = 0.3
    cfg = dark_config(tmp_path, model="i2dm", theta=theta)
    out, tab = tmp_path / "i2.hepmc", tmp_path / "i2.parquet"
    res = run_dark_events(
        cfg, EventRequest(n=1500, output=out, table=tab, chunk=600), mass=0.6, eps=1e-4
    ).document
    t = read_table(tab)
    br = res["meta"]["branching_ratios_aprime"]
    model = cfg.idm.dark_model(0.6)
    ref = aprime_branching_ratios(model, 1e-4)
    assert br["psi2 psi2"] == pytest.approx(float(ref["psi2 psi2"]), rel=1e-12)
    # chains drawn ∝ BR: binomial, 5 σ
    p = br["psi2 psi2"] / (br["psi2 psi2"] + br["psi1 psi2"])
    n2 = int(np.sum(t.chain == 1))
    assert abs(n2 - p * len(t)) < 5 * math.sqrt(len(t) * p * (1 - p))
    # ψ₂ψ̄₂ records: ψ̄₂ (partner) decays to ψ̄₁ℓℓ; ψ₁ψ₂ records carry one Dirac pair
    seen = set()
    with pyhepmc.open(out) as f:
        for ev in f:
            ids = [p.pid for p in ev.particles]
            for v in ev.vertices:
                diff, scale = balance(v)
                assert np.all(diff <= 8 * EPS64 * scale)
            if len(ids) == 12:
                seen.add(2)
                assert ids[4:7] == [-1000023, 1000023, 1000022]
                assert ids[9] == -1000022
            else:
                seen.add(1)
                assert len(ids) == 9
                psi2, partner = ids[5], ids[4]
                assert abs(psi2) == 1000023
                assert partner == -np.sign(psi2) * 1000022
                assert ids[6] == np.sign(psi2) * 1000022  # ψ₂ → ψ₁, ψ̄₂ → ψ̄₁
    assert seen == {1, 2}
    two = t[t.chain == 1]
    # the weight of a ψ₂ψ̄₂ event counts either ψ₂: w = w₀ H_a (2 − BR X_b) (generate_dark)
    assert np.all(two.weight[two.detected] > 0)
    assert np.all(np.isnan(t[t.chain == 0].b_decay_z))


def test_opening_angle_cut():
    """dark_hits: a hand-made pair with opening angle 0.02 rad passes a 0.01 cut, fails 0.03."""
    geo = Geometry(l1=1.0, l2=2.0, theta_min=0.0, theta_max=0.5)
    k = AprimeKinematics(0.3, np.array([0.0]), np.array([0.0]), np.array([10.0]),
                         np.array([np.hypot(10.0, 0.3)]), np.array([True]))  # fmt: skip
    a = 0.01  # each lepton 0.01 rad off the axis, opposite sides: opening 0.02
    lm = np.array([[5 * np.sin(a)], [0.0], [5 * np.cos(a)], [5.0]])
    lp = np.array([[-5 * np.sin(a)], [0.0], [5 * np.cos(a)], [5.0]])
    z = np.array([[1.5]])
    assert dark_hits(geo, k, lm, lp, z, 0.01)[0, 0] == 1
    assert dark_hits(geo, k, lm, lp, z, 0.03)[0, 0] == 0


def test_reach_idm(tmp_path, monkeypatch):
    from gammastar.core import rundir
    from gammastar.darksector.idm import run_idm_reach

    kw = {"samples": 1000, "m1_points": 3, "m1_range": [0.1, 0.3]}
    cfg = dark_config(tmp_path, **kw)
    doc = json.loads(run_idm_reach(cfg).read_text())
    rundir.validate(doc, rundir.REACH_IDM, where="test")
    assert (cfg.output_dir / "figures" / "reach_idm.png").stat().st_size > 0
    lo = np.array(doc["y_low"]["0"], dtype=float)
    assert np.all(np.isfinite(lo))
    # ε ↔ y: ε² = y (m_A′/m₁)⁴/α_D = y · 3⁴/0.1
    assert np.allclose(np.array(doc["eps_low"]["0"]) ** 2, lo * 81 / 0.1, rtol=1e-12)
    # lower edge in the long-lived limit (cτ(ψ₂) ≫ the volume, here > 1e5 m): decays in the
    # volume ∝ L/(βγcτ) ∝ ε², so N ∝ ε⁴ ∝ y² and 4× the N_POT moves y_low by 1/2 (the edge is
    # log-log interpolated: exact for a power law; BR(A′ → ψ₁ψ₂) = 1 − O(ε²α/α_D))
    d = cfg.model_dump(exclude={"source"}, by_alias=True)
    d["reach"]["n_pot"] *= 4
    d["output"] = str(tmp_path / "run4")
    drawn = skip_plot(monkeypatch, IDM_PLOT)  # the second run's numbers (its figure: above)
    doc4 = json.loads(run_idm_reach(stated_config(d, source=cfg.source)).read_text())
    assert drawn == [tmp_path / "run4" / "figures" / "reach_idm.png"]
    assert np.allclose(np.array(doc4["y_low"]["0"]) / lo, 0.5, rtol=1e-3)
    # the report shows the iDM reach (numbers and figure) in its dark-sector section
    from gammastar.report import build_report

    page = build_report(cfg).path.read_text()
    sec = page.split('<section id="darksector">')[1].split("</section>")[0]
    assert "iDM reach" in sec
    assert "figures/reach_idm.png" in sec
    assert f"{min(lo):.3e}" in sec
    # and the millicharged reach when reach_mcp.json exists (numbers as written)
    mcp = {"cl": 0.9, "mass": [0.1, 0.2], "q_low": {"0": [2.5e-4, None]}}
    (cfg.output_dir / "reach_mcp.json").write_text(json.dumps(mcp))
    sec = build_report(cfg).path.read_text().split('<section id="darksector">')[1]
    assert "millicharged reach" in sec.split("</section>")[0]
    assert "2.500e-04" in sec.split("</section>")[0]


def test_reach_i2dm(tmp_path, monkeypatch):
    """reach-idm with model: i2dm: schema-valid, θ and the ψ₂ψ̄₂ share recorded, and the
    long-lived scaling (each ψ₂ decays in the volume ∝ ε², the X_aX_b term ∝ ε⁴ is negligible
    there: N ∝ y², so 4× N_POT halves y_low, log-log edges: exact for a power law)."""
    from gammastar.core import rundir
    from gammastar.darksector.idm import run_idm_reach

    kw = {"samples": 1000, "m1_points": 2, "m1_range": [0.15, 0.3], "model": "i2dm",
          "theta": 0.1, "alpha_d": 0.5}  # fmt: skip
    cfg = dark_config(tmp_path, **kw)
    doc = json.loads(run_idm_reach(cfg).read_text())
    rundir.validate(doc, rundir.REACH_IDM, where="test")
    assert doc["model"] == "i2dm"
    assert doc["theta"] == 0.1
    lo = np.array(doc["y_low"]["0"], dtype=float)
    assert np.all(np.isfinite(lo))
    # θ = 0.1: BR(ψ₁ψ₂)/BR(ψ₂ψ₂) ≈ 2 tan²θ × phase space ≈ 2 %: ψ₂ψ̄₂ carries the signal
    share = np.array(doc["psi2psi2_share"], dtype=float)
    assert np.all((share > 0.9) & (share <= 1.0))
    assert np.all(np.array(doc["both_detected_share"], dtype=float) < 0.01)
    # the report's dark-sector section names the model and embeds the plot
    from gammastar.report import build_report

    sec = (
        build_report(cfg)
        .path.read_text()
        .split('<section id="darksector">')[1]
        .split("</section>")[0]
    )
    assert "i2DM reach" in sec
    assert "figures/reach_idm.png" in sec
    d = cfg.model_dump(exclude={"source"}, by_alias=True)
    d["reach"]["n_pot"] *= 4
    d["output"] = str(tmp_path / "run4")
    drawn = skip_plot(monkeypatch, IDM_PLOT)  # the second run's numbers (its figure: above)
    doc4 = json.loads(run_idm_reach(stated_config(d, source=cfg.source)).read_text())
    assert drawn == [tmp_path / "run4" / "figures" / "reach_idm.png"]
    assert np.allclose(np.array(doc4["y_low"]["0"]) / lo, 0.5, rtol=1e-3)


@pytest.mark.parametrize(
    ("idm", "key"),
    [
        ({"delta": 0.0}, "idm.delta"),
        ({"delta": -0.1}, "idm.delta"),
        ({"alpha_d": 0.0}, "idm.alpha_d"),
        ({"mass_ratio": 2.05}, "mass_ratio"),  # m_A′ < m₁ + m₂ = (2 + Δ) m₁
        ({"model": "i2dm"}, "theta"),
        ({"theta": 0.1}, "theta"),
        ({"channels": []}, "channels"),
        ({"background": 0.1}, "n_pot_rel_uncertainty"),
    ],
)
def test_bad_idm_config(tmp_path, idm, key):
    base = {"background": 0.5, "n_pot_rel_uncertainty": 0.1}
    body = {**base, **idm}
    if "background" in idm:
        body.pop("n_pot_rel_uncertainty")
    with pytest.raises(ConfigError, match=key):
        stated_config({"idm": body})


def test_bad_dark_cli(tmp_path, capsys):
    """Missing idm section, reach-idm with i2DM, --dark with visible-A′ options: one line,
    exit status 2, nothing written."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        stated_yaml("events: {beam_spot_sigma: [0, 0], target_interaction_length: 0.17}\n")
    )
    out = str(tmp_path / "e.hepmc")
    cases = [
        ["events", str(cfg), "--dark", "--mass", "0.5", "--eps", "1e-4", "-n", "5", "-o", out],
        ["events", str(cfg), "--dark", "--mass", "0.5", "-n", "5", "-o", out],
        ["events", str(cfg), "--dark", "--channels", "ee", "--mass", "0.5", "--eps", "1e-4",
         "-n", "5", "-o", out],
        ["reach-idm", str(cfg)],
    ]  # fmt: skip
    for args in cases:
        assert main(args) == 2
        err = capsys.readouterr().err
        assert err.startswith("gammastar: error:")
        assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "e.hepmc").exists()
    c2 = dark_config(tmp_path, model="i2dm", theta=0.2)
    # θ outside (0, π/2) in an i2DM config: one line naming idm.theta, exit status 2
    for theta in ("0.0", "1.6", "-0.1"):
        bad = tmp_path / f"i2dm_{theta}.yaml"
        bad.write_text(stated_yaml(f"idm: {{model: i2dm, theta: {theta}, background: 0.1, "
                                   "n_pot_rel_uncertainty: 0.1}\n"))  # fmt: skip
        assert main(["reach-idm", str(bad)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("gammastar: error:")
        assert "idm.theta" in err
        assert len(err.strip().splitlines()) == 1
    with pytest.raises(GammastarError, match="--eps"):
        run_dark_events(c2, EventRequest(n=5, output=tmp_path / "x.hepmc"), mass=0.6, eps=0.0)


@pytest.mark.parametrize("rho00", [0.0, 0.8])
def test_aprime_spin_density_in_dark_decay(rho00):
    """A′ → ψ₁ψ₂ with the A′ spin density ρ₀₀: cos θ* of ψ₂ in the A′ helicity frame follows
    W ∝ 1 + λ′cos²θ*, λ′ = κ(1 − 3ρ₀₀)/(1 − κ(1 − ρ₀₀)), κ = (1 − (m₁ + m₂)²/m_A′²)/2
    (dark_decays.dark_decay_coefficients: the fermion trace contracted with the polarisation
    vectors). χ² over 20 bins of the 50 000 decays against the bin integrals of W: p > 1e-3;
    the same sample against isotropy: p < 1e-6 (the test has power)."""
    from scipy import stats as sps

    from gammastar.corrections.polarisation.angles import helicity_angles
    from gammastar.physics.darksector import IDM
    from gammastar.physics.sampling import ParametricSampler
    from gammastar.source.dark_decays import dark_chains, dark_decay_coefficients

    model = IDM(m1=0.2, delta=0.4, m_aprime=0.6)
    n = 50_000
    d = dark_chains(ParametricSampler(), model, n, chains={"psi1 psi2": 1.0},
                    channels={"ee": 1.0}, seed=11, rho00=rho00)  # fmt: skip
    ok = d["k"].ok
    c, _ = helicity_angles(d["psi2"][:, ok], d["partner"][:, ok])
    a, b = dark_decay_coefficients(rho00, 0.6, 0.2, 0.28)
    lam = b / a
    kappa = (1 - 0.48**2 / 0.36) / 2  # by hand: 0.18
    assert lam == pytest.approx(kappa * (1 - 3 * rho00) / (1 - kappa * (1 - rho00)), rel=1e-12)
    edges = np.linspace(-1, 1, 21)
    obs = np.histogram(c, edges)[0]

    def expected(lam):
        cdf = edges + lam * edges**3 / 3
        return c.size * np.diff(cdf) / (cdf[-1] - cdf[0])

    p_model = sps.chi2.sf(np.sum((obs - expected(lam)) ** 2 / expected(lam)), 19)
    p_iso = sps.chi2.sf(np.sum((obs - expected(0.0)) ** 2 / expected(0.0)), 19)
    assert p_model > 1e-3
    assert p_iso < 1e-6
