"""Signal events (gammastar.events.stage): round trips, weights, polarisation, bad input."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pyhepmc
import pytest
from _tolerance import EPS64

from gammastar.cli import main
from gammastar.config import config_from_dict
from gammastar.core.artifacts import make_meta, write_json
from gammastar.errors import EnvironmentFailure, GammastarError, InputError, OutputExistsError
from gammastar.events.stage import EventRequest, run_events
from gammastar.physics import darkphoton
from gammastar.physics.constants import M_MU
from gammastar.physics.sampling import ParametricSampler
from gammastar.physics.vector_decay import rho00_from_lambda
from gammastar.reach.acceptance import draw
from gammastar.source.decays import DECAYS, branching_ratios, decay_coefficients
from gammastar.source.eventgen import APRIME_PDGID, chunk_seeds
from gammastar.source.geometry import Geometry

# NA62-like dump geometry (NA62, arXiv:2312.12055, App. B)
NA62_LIKE = {"l1": 82.0, "l2": 157.0, "theta_min": 0.0, "theta_max": 0.05, "efficiency": 0.9}
BOTH_PLANE = {
    "l1": 5.0,
    "l2": 30.0,
    "theta_min": 0.0,
    "theta_max": 0.2,
    "both_daughters": True,
    "min_daughter_energy": 2.0,
    "plane_z": 40.0,
    "r_min": 0.1,
    "r_max": 2.0,
}


def yields_file(path, polarisation=None):
    m = np.linspace(0.215, 1.1, 60)
    y = 3e-3 * np.exp(-(m - 0.2) / 0.4)
    doc = {
        "aprime": {"mass": m, "per_pot_per_eps2": y, "stat_err": 0.05 * y},
        "meta": make_meta(config_sha256=None, seed=None, n_pot=1e13),
    }
    if polarisation is not None:
        doc["polarisation"] = polarisation
    write_json(path, doc, force=True)
    return path


def make_config(tmp_path, detector=NA62_LIKE, polarisation=None, **events):
    ev = {"beam_spot_sigma": [0.001, 0.002], "target_interaction_length": 0.1759, **events}
    return config_from_dict(
        {
            "name": "t",
            "output": str(tmp_path / "run"),
            "beam": {"interaction_lengths": 0.01},
            "detector": detector,
            "reach": {
                "channels": ["mumu", "ee"],
                "yields": str(yields_file(tmp_path / "yields.json", polarisation)),
                "flow": None,
                "n_pot": 1.4e17,
                "target_interaction_lengths": "dump",
                "samples": 2000,
            },
            "events": ev,
        },
        source=str(tmp_path / "cfg.yaml"),
    )


def read_table(path):
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pandas()


def test_hepmc_round_trip(tmp_path):
    cfg = make_config(tmp_path)
    out, tab = tmp_path / "ev.hepmc", tmp_path / "ev.parquet"
    res = run_events(
        cfg,
        EventRequest(n=600, output=out, table=tab, chunk=250),
        mass=0.5,
        eps=3e-7,
        channels=("mumu", "ee", "pipi"),
    ).document
    t = read_table(tab)
    assert len(t) == res["events"] == 600
    weights, n_read = [], 0
    with pyhepmc.open(out) as f:
        for ev in f:
            row = t.iloc[n_read]
            n_read += 1
            assert ev.momentum_unit == pyhepmc.Units.GEV
            assert ev.length_unit == pyhepmc.Units.MM
            assert ev.event_number == row.event
            weights.append(list(ev.weights))
            assert len(ev.vertices) == 2
            assert len(ev.particles) == 6
            # four-momentum conserved at every vertex; each component went through ≤ 4
            # roundings (p_X = p_beam + p_target − p_A′; p_2 = p_A′ − p_1), so the balance holds
            # to 8 eps × Σ|E| of the vertex
            for v in ev.vertices:
                pin = sum(np.array(list(p.momentum)) for p in v.particles_in)
                pout = sum(np.array(list(p.momentum)) for p in v.particles_out)
                scale = sum(p.momentum.e for p in [*v.particles_in, *v.particles_out])
                assert np.all(np.abs(pin - pout) <= 8 * EPS64 * scale)
            prod, dec = ev.vertices
            # statuses and PDG ids as documented (docs/howto/signal-events.md)
            assert [(p.pid, p.status) for p in prod.particles_in] == [(2212, 4), (2212, 4)]
            assert [(p.pid, p.status) for p in prod.particles_out] == [
                (APRIME_PDGID, 2),
                (90, 3),
            ]
            ch = list(DECAYS)[int(row.channel)]
            assert ev.attributes["channel"].astype(str) == ch
            assert ev.attributes["detected"].astype(int) == int(row.detected)
            assert [(p.pid, p.status) for p in dec.particles_out] == [
                (DECAYS[ch].pdg1, 1),
                (DECAYS[ch].pdg2, 1),
            ]
            # decay vertex inside the decay volume (z from the production point, m → mm)
            dz = (dec.position.z - prod.position.z) / 1000.0
            assert NA62_LIKE["l1"] * (1 - 1e-12) <= dz <= NA62_LIKE["l2"] * (1 + 1e-12)
            # the vertex lies on the A′ line: displacement ∥ A′ momentum
            a = prod.particles_out[0].momentum
            d = np.array([dec.position.x - prod.position.x, dec.position.y - prod.position.y])
            assert np.allclose(d, np.array([a.px, a.py]) / a.pz * (dz * 1000), rtol=1e-9, atol=1e-9)
    assert n_read == 600
    w = np.array(weights)
    # the file's weights are the table's: shortest round-trip decimal text, exact
    np.testing.assert_array_equal(w[:, 0], t.weight.to_numpy())
    np.testing.assert_array_equal(w[:, 1], t.weight_decay.to_numpy())
    assert math.isclose(w[:, 0].sum(), res["sum_weight"], rel_tol=1e-12)
    with pyhepmc.open(out) as f:
        ev = f.read()
        meta = json.loads(str(ev.run_info.attributes["gammastar_meta"]))
        assert ev.run_info.weight_names == ["weight", "weight_decay"]
    assert meta["aprime_pdgid"] == APRIME_PDGID
    assert meta["stage"] == "events"
    assert set(meta["unwritten_decays_in_volume"]) == {"hadrons_other"}


def test_one_code_path_sum_of_weights_is_the_acceptance(tmp_path):
    """With the same seed the events and acceptance.draw draw the same A′; for a detector whose
    verdict does not depend on the decay z, Σ weight = scale · ΣBR · acceptance exactly."""
    cfg = make_config(tmp_path)
    n, seed = 4000, 7
    res = run_events(
        cfg,
        EventRequest(n=n, output=tmp_path / "e.parquet", seed=seed, chunk=n),
        mass=0.4,
        eps=1e-6,
    ).document
    meta = res["meta"]
    ((_, child),) = chunk_seeds(seed, n, n)
    s = draw(ParametricSampler(), 0.4, n, Geometry.from_config(cfg.detector), seed=child)
    br = meta["branching_ratios"]["mumu"] + meta["branching_ratios"]["ee"]
    expect = meta["aprime_produced"] * br * float(s.acceptance(meta["ctau_m"]))
    # a sum of n terms in two orders: n eps relative (_tolerance.py, Higham §4.2)
    assert math.isclose(res["sum_weight"], expect, rel_tol=n * EPS64)


def assert_sum_of_weights_is_the_reachs(res, mass, eps, n, geometry, big=200_000):
    """Σ weight of ``n`` μμ events (``res``, the events' document) against the reach's N_sig
    (``reach.signal_events``) on an independent sample of ``big`` A′ through ``geometry``:
    within 4σ, σ² = Σ w² plus the reference sample's share n/big of it; returns σ/N_sig."""
    from gammastar.reach.signal import signal_events

    s = draw(ParametricSampler(), mass, big, geometry, seed=11)
    meta = res["meta"]
    ref = float(signal_events(
        mass, eps, yield_per_pot_eps2=meta["aprime_per_pot_per_eps2"],
        n_pot=meta["n_pot"] * meta["yield_scale"], sample=s,
    )["mumu"])  # fmt: skip
    sigma = math.sqrt(res["sum_weight2"] * (1 + n / big))
    assert abs(res["sum_weight"] - ref) < 4 * sigma, (res["sum_weight"], ref, sigma)
    return sigma / ref


@pytest.mark.parametrize("detector", [NA62_LIKE, BOTH_PLANE], ids=["window", "both_plane"])
def test_sum_of_weights_is_reach_nsig(tmp_path, detector):
    """Σ weight against reach.signal_events with an independent large sample: within 4σ
    (σ² = Σ w² of the events, plus the reference sample's share n/N of it)."""
    cfg = make_config(tmp_path, detector=detector)
    # ε such that the mean decay length (≈ 10-100 m) is comparable with the decay volume:
    # the forced-decay weights then sample the volume well
    mass, eps, n = 0.45, 3e-7 if detector is NA62_LIKE else 1e-6, 20_000
    res = run_events(
        cfg,
        EventRequest(n=n, output=tmp_path / "e.parquet"),
        mass=mass,
        eps=eps,
        channels=("mumu",),
        decay="isotropic",
    ).document
    assert res["sum_weight"] > 0
    assert_sum_of_weights_is_the_reachs(res, mass, eps, n, Geometry.from_config(cfg.detector))
    t = read_table(tmp_path / "e.parquet")
    dz = t.decay_z - t.prod_z
    l2 = detector["l2"]
    assert dz.min() >= detector["l1"]
    assert dz.max() <= l2


def helicity_cos(t):
    """cos θ of daughter 1 in the A′ helicity frame, recomputed from the lab four-momenta."""
    pa = t[["aprime_px", "aprime_py", "aprime_pz"]].to_numpy()
    ea = t.aprime_E.to_numpy()
    p1 = t[["d1_px", "d1_py", "d1_pz"]].to_numpy()
    e1 = t.d1_E.to_numpy()
    pabs = np.linalg.norm(pa, axis=1)
    u = pa / pabs[:, None]
    m = np.sqrt(ea**2 - pabs**2)
    gamma, gb = ea / m, pabs / m
    par = np.sum(p1 * u, axis=1)
    par_rest = gamma * par - gb * e1
    perp = np.linalg.norm(p1 - par[:, None] * u, axis=1)
    return par_rest / np.hypot(par_rest, perp)


@pytest.mark.parametrize(
    ("decay", "channel", "c2"),
    [
        # <cos²θ> of W ∝ a + b cos²θ: (a/3 + b/5)/(a + b/3)
        ("isotropic", "mumu", 1 / 3),
        ("transverse", "ee", (1 / 3 + 1 / 5) / (4 / 3)),  # 1 + cos²θ (β ≈ 1): 0.4
        ("transverse", "pipi", (1 / 3 - 1 / 5) / (2 / 3)),  # sin²θ: 0.2
    ],
)
def test_decay_angles(tmp_path, decay, channel, c2):
    cfg = make_config(tmp_path, detector={**NA62_LIKE, "theta_max": 1.0})
    run_events(
        cfg,
        EventRequest(n=20_000, output=tmp_path / "e.parquet"),
        mass=0.8,
        eps=1e-6,
        channels=(channel,),
        decay=decay,
    )
    t = read_table(tmp_path / "e.parquet")
    c = helicity_cos(t)
    # the stored angle is the one of the daughters' four-momenta (frame and boost consistent)
    assert np.allclose(c, t.cos_theta, atol=1e-9)
    # Var(cos²θ) ≤ 1/4: 4σ = 4 · 0.5/√n
    assert abs(np.mean(c**2) - c2) < 2 / math.sqrt(len(t))


def test_data_polarisation_from_yields(tmp_path):
    pol = {
        "frame": "helicity",
        "mass_edges": [0.2, 0.5, 0.8, 1.1],
        "lambda_theta": [0.2, 0.6, 1.0],
        "lambda_theta_err": [0.1, 0.1, 0.2],
        "lambda_phi": None,
    }
    cfg = make_config(tmp_path, polarisation=pol)
    res = run_events(
        cfg, EventRequest(n=100, output=tmp_path / "e.parquet"), mass=0.5, eps=1e-6
    ).document
    info = res["meta"]["polarisation"]
    # linear between the bin centres 0.35 (0.2) and 0.65 (0.6): 0.2 + 0.4 · 0.15/0.3 = 0.4
    assert info["lambda_theta"] == pytest.approx(0.4, rel=1e-12)
    # the error of that mean of two independent bins: √(0.1² + 0.1²)/2
    assert info["lambda_theta_err"] == pytest.approx(0.1 / math.sqrt(2), rel=1e-12)
    assert info["source"].startswith("yields.json")
    # no measurement: the config's unfold.decay_lambda_theta
    cfg2 = make_config(tmp_path / "b")
    res2 = run_events(
        cfg2, EventRequest(n=100, output=tmp_path / "f.parquet"), mass=0.5, eps=1e-6
    ).document
    assert res2["meta"]["polarisation"]["source"] == "config unfold.decay_lambda_theta"


@pytest.mark.parametrize("lam", [-0.5, 0.0, 0.5, 0.75])
def test_rho00_reproduces_the_measured_lambda(lam):
    # the inversion is exact for the measured dimuons (Faccioli et al. 2010, λ = b/a); at
    # m = 0.6 GeV muons reach at most λ = β²/(2 − β²) = 0.78 (ρ₀₀ = 0)
    m = 0.6
    b2 = 1 - 4 * M_MU**2 / m**2
    assert decay_coefficients(rho00_from_lambda(1.0, m, M_MU), m, DECAYS["mumu"])[1] == (
        pytest.approx(b2 / 2, rel=1e-12)
    )
    a, b = decay_coefficients(rho00_from_lambda(lam, m, M_MU), m, DECAYS["mumu"])
    assert b / a == pytest.approx(lam, abs=1e-12)


def test_branching_ratios():
    for m in (0.3, 0.775, 1.02, 1.5):
        br = branching_ratios(m)
        assert sum(br.values()) == pytest.approx(1.0, abs=1e-12)
        assert br["ee"] == pytest.approx(float(darkphoton.branching_ratio(m, "ee")), rel=1e-12)
    # below the ω ππ is (nearly) all of the hadrons (R_ππ of the GS form factor); at the φ
    # K⁺K⁻ + K_S K_L carry ≈ 83% of the φ's hadronic width (PDG: 49.1% + 33.9%)
    had = float(darkphoton.branching_ratio(0.7, "hadrons"))
    assert branching_ratios(0.7)["pipi"] > 0.99 * had
    br = branching_ratios(1.019461)
    had = float(darkphoton.branching_ratio(1.019461, "hadrons"))
    assert 0.6 < (br["KK"] + br["KSKL"]) / had < 0.9
    assert br["KK"] / br["KSKL"] == pytest.approx(0.491 / 0.339, rel=0.05)


def test_unweighted_and_root_table(tmp_path):
    cfg = make_config(tmp_path)
    res = run_events(
        cfg,
        EventRequest(n=300, output=tmp_path / "u.root", chunk=5000),
        mass=0.5,
        eps=3e-7,
        unweighted=True,
    ).document
    import uproot

    with uproot.open(tmp_path / "u.root") as f:
        t = f["events"].arrays(library="np")
        meta = json.loads(str(f["meta"]))
    assert t["weight"].size == 300
    assert np.allclose(t["weight"], res["meta"]["n_sig_expected"] / 300, rtol=1e-15)
    assert np.all(t["detected"])
    assert meta["unweighted"] is True


class Narrow:
    """ParametricSampler restricted to a mass range, like a flow."""

    mass_range = (0.3, 0.6)

    def sample(self, mass, n, seed=None):
        return ParametricSampler().sample(mass, n, seed=seed)


def test_bad_input(tmp_path, capsys):
    cfg = make_config(tmp_path)
    out = tmp_path / "o" / "e.hepmc"
    with pytest.raises(InputError, match=r"outside the flow's mass range.*--extrapolate"):
        run_events(cfg, EventRequest(n=10, output=out), mass=0.8, eps=1e-6, source=Narrow())
    res = run_events(
        cfg, EventRequest(n=10, output=out, extrapolate=True), mass=0.8, eps=1e-6, source=Narrow()
    ).document
    assert "extrapolated" in res["meta"]["sampler"]
    out.unlink()
    with pytest.raises(GammastarError, match="-n"):
        run_events(cfg, EventRequest(n=0, output=out), mass=0.5, eps=1e-6)
    with pytest.raises(GammastarError, match="--eps"):
        run_events(cfg, EventRequest(n=10, output=out), mass=0.5, eps=0.0)
    with pytest.raises(GammastarError, match="unknown output format"):
        run_events(cfg, EventRequest(n=10, output=tmp_path / "e.txt"), mass=0.5, eps=1e-6)
    with pytest.raises(GammastarError, match=r"events\.beam_spot_sigma"):
        run_events(
            make_config(tmp_path / "x", beam_spot_sigma=None),
            EventRequest(n=10, output=out),
            mass=0.5,
            eps=1e-6,
        )
    out.write_text("keep")
    with pytest.raises(OutputExistsError):
        run_events(cfg, EventRequest(n=10, output=out), mass=0.5, eps=1e-6)
    assert out.read_text() == "keep"
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            with pytest.raises(EnvironmentFailure):
                run_events(cfg, EventRequest(n=10, output=ro / "e.hepmc"), mass=0.5, eps=1e-6)
        finally:
            ro.chmod(0o700)
    assert sorted(p.name for p in out.parent.iterdir()) == ["e.hepmc"]  # nothing half-written
    # CLI: one line, exit status 2
    (tmp_path / "c.yaml").write_text(
        "beam: {interaction_lengths: 0.01}\n"
        "detector: {l1: 5.0, theta_min: 0.035, theta_max: 0.12}\n"  # the paper's mock detector
        "reach: {yields: yields.json, flow: null, n_pot: 1.0e17, target_interaction_lengths: "
        "dump}\nevents: {beam_spot_sigma: [0, 0], target_interaction_length: 0.17}\n"
    )
    for args in (["-n", "0"], ["-n", "5", "--eps", "-1"]):
        argv = ["events", str(tmp_path / "c.yaml"), "--mass", "0.5", "--eps", "1e-6", "-o",
                str(tmp_path / "cli.hepmc"), *args]  # fmt: skip
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("gammastar: error:")
        assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "cli.hepmc").exists()
    argv = ["events", str(tmp_path / "c.yaml"), "--mass", "0.5", "--eps", "1e-6", "-n", "50",
            "-o", str(tmp_path / "cli.hepmc")]  # fmt: skip
    assert main(argv) == 0
    assert "events: 50 events" in capsys.readouterr().out


def test_float_text_round_trips():
    """17 correctly rounded significant digits read back as the same double (Matula 1968);
    random doubles over 540 decades, tiny and subnormal ones, and the fallback for what the
    compiled writer refuses."""
    from gammastar.events._hepmc_ascii import format_floats

    rng = np.random.default_rng(3)
    x = rng.normal(size=20_000) * 10.0 ** rng.uniform(-270, 270, 20_000)
    tiny = rng.uniform(1, 10, 2000) * 10.0 ** rng.integers(-323, -270, 2000)
    x = np.concatenate([x, tiny, [0.0, 1.0, -1.0, 0.1, 1 / 3, 2.0**53 + 2, 5e-324, 1e-310]])
    text = format_floats(x)
    assert [float(t) for t in text] == x.tolist()
    assert format_floats(np.array([np.inf])) is None
    assert format_floats(np.array([1e300])) is None


def test_hepmc_backends_agree(tmp_path):
    """The compiled and the pyarrow writer give the same numbers, token by token."""
    from gammastar.events.hepmc import hepmc_text
    from gammastar.source.eventgen import EventSettings, generate_chunks

    geo = Geometry(l1=82.0, l2=157.0, theta_min=0.0, theta_max=0.05)
    st = EventSettings(0.5, 3e-7, geo, 1e6, channels=("mumu", "pipi"), beam_spot=(1e-3, 1e-3),
                       target_lambda=0.1759)  # fmt: skip
    cols = next(generate_chunks(ParametricSampler(), st, 300, seed=2))
    a = hepmc_text(cols, st, 300).decode().split()
    b = hepmc_text(cols, st, 300, backend="pyarrow").decode().split()
    assert len(a) == len(b)
    for u, v in zip(a, b, strict=True):
        if u != v:
            assert float(u) == float(v)


# --------------------------------------------------------------------------- millicharged
def mcp_spectrum():
    """A falling γ* mass spectrum (unfolded counts per 20 MeV bin, the data's exposure)."""
    edges = np.linspace(0.21, 1.09, 45)
    centres = 0.5 * (edges[1:] + edges[:-1])
    return edges, 1e4 * np.exp(-(centres - 0.2) / 0.3), "synthetic"


def test_sample_mcp_is_the_events_recipe_with_a_transverse_gstar():
    """sample_mcp (``gammastar sample --mcp-mass``) is generate_mcp with ρ₀₀ = 0: χ + χ̄ = γ*
    (a sum of two numbers per component: p2 = p_γ* − p1, 4 eps of E), the χ masses, weights
    summing to Σ content × <Eq. 8 factor> (rel 1e-12: the same mcp_bins), and in the γ* rest
    frame ⟨cos²θ⟩ about its flight direction that of 1 + cos²θ + r sin²θ, r = 4m_χ²/m²
    (⟨c²⟩ = (a/3 + b/5)/(a + b/3), a = 1 + r, b = 1 − r, averaged over the events; within 4
    standard errors of the mean; 5 MeV bins, so the bin-centre r differs by < 0.3% from the
    event's)."""
    from gammastar.physics.kinematics import boost
    from gammastar.source.mcp import mcp_bins, sample_mcp

    m_chi, n = 0.1, 200_000
    edges = np.linspace(0.2, 1.0, 161)
    contents = np.exp(-edges[:-1] / 0.3)
    s = sample_mcp(ParametricSampler(), m_chi, n, spectrum=(edges, contents), m_lepton=M_MU,
                   q=0.1, seed=5)  # fmt: skip
    assert s["weight"].sum() == pytest.approx(
        mcp_bins(edges, contents, m_chi, M_MU, 0.1, (0.0, 10.0))[2].sum(), rel=1e-12
    )
    assert np.all(s["m_gstar"] >= 2 * m_chi)
    g = np.stack([s["px"], s["py"], s["pz"], s["E"]])
    c1 = np.stack([s[f"chi1_{c}"] for c in ("px", "py", "pz", "E")])
    c2 = np.stack([s[f"chi2_{c}"] for c in ("px", "py", "pz", "E")])
    assert np.all(np.abs(c1 + c2 - g) <= 4 * EPS64 * g[3])
    np.testing.assert_allclose(np.sqrt(c1[3] ** 2 - (c1[:3] ** 2).sum(0)), m_chi, rtol=1e-6)
    back = np.concatenate([-g[:3], g[3:]])  # the boost from the lab to the γ* frame
    rest = boost(c1, back, s["m_gstar"])
    cos = (
        (rest[:3] * g[:3]).sum(0) / np.linalg.norm(rest[:3], axis=0) / np.linalg.norm(g[:3], axis=0)
    )
    r = 4 * m_chi**2 / s["m_gstar"] ** 2
    a, b = 1 + r, 1 - r
    want = np.mean((a / 3 + b / 5) / (a + b / 3))
    assert abs(np.mean(cos**2) - want) < 4 * np.std(cos**2) / np.sqrt(n)


def test_mcp_events(tmp_path):
    from gammastar.events.stage import run_mcp_events
    from gammastar.physics.kinematics import mcp_factor

    cfg = make_config(tmp_path, mcp_pdgid=9900001)
    out, tab = tmp_path / "chi.hepmc", tmp_path / "chi.parquet"
    m_chi, q = 0.15, 0.01
    edges, contents, _ = mcp_spectrum()
    res = run_mcp_events(
        cfg,
        EventRequest(n=2000, output=out, table=tab, chunk=700),
        m_chi=m_chi,
        charge=q,
        spectrum=mcp_spectrum(),
        decay="transverse",
    ).document
    # Σ weights = Σ_bins content × <Q² K_χ/K_μ> (a fine 20000-point midpoint average over the
    # part of each bin above 2 m_χ = 0.3 GeV; its error near the √ threshold is ~ 1e-7)
    # × N_POT(facility) · yield scale / N_POT(data) (1.4e17 · 100.5 / 1e13)
    t = (np.arange(20000) + 0.5) / 20000
    lo = np.maximum(edges[:-1], 2 * m_chi)
    ok = edges[1:] > lo
    fac = np.array([np.mean(mcp_factor(a + t * (b - a), m_chi, M_MU, q)) if o else 0.0
                    for a, b, o in zip(lo, edges[1:], ok, strict=True)])  # fmt: skip
    frac = np.where(ok, (edges[1:] - lo) / np.diff(edges), 0.0)
    meta = res["meta"]
    expect = np.sum(contents * fac * frac) * meta["n_pot"] * meta["yield_scale"] / 1e13
    assert res["sum_weight"] == pytest.approx(expect, rel=1e-6)
    tb = read_table(tab)
    assert len(tb) == 2000
    assert tb.m_gstar.min() >= 2 * m_chi
    # χ masses and χ + χ̄ = γ*: a sum of two numbers per component (p2 = p_γ* − p1)
    for c in ("px", "py", "pz", "E"):
        s = tb[f"chi1_{c}"] + tb[f"chi2_{c}"]
        assert np.all(np.abs(s - tb[f"gstar_{c}"]) <= 4 * EPS64 * tb.gstar_E)
    m2 = tb.chi1_E**2 - tb.chi1_px**2 - tb.chi1_py**2 - tb.chi1_pz**2
    assert np.allclose(np.sqrt(m2), m_chi, rtol=1e-6)
    n_read = 0
    with pyhepmc.open(out) as f:
        for ev in f:
            ids = [(p.pid, p.status) for p in ev.particles]
            assert ids == [(2212, 4), (2212, 4), (22, 2), (90, 3), (9900001, 1), (-9900001, 1)]
            prod, dec = ev.vertices
            assert dec.position.z == prod.position.z  # prompt γ* decay
            # the shared production vertex (hepmc._production): p_beam + p_target = p_γ* + p_X,
            # ≤ 4 roundings per component as in test_hepmc_round_trip → 8 eps × Σ|E|
            pin = sum(np.array(list(p.momentum)) for p in prod.particles_in)
            pout = sum(np.array(list(p.momentum)) for p in prod.particles_out)
            scale = sum(p.momentum.e for p in [*prod.particles_in, *prod.particles_out])
            assert np.all(np.abs(pin - pout) <= 8 * EPS64 * scale)
            n_read += 1
    assert n_read == 2000
    with pytest.raises(GammastarError, match=r"events\.mcp_pdgid"):
        run_mcp_events(
            make_config(tmp_path / "b"),
            EventRequest(n=10, output=tmp_path / "x.hepmc"),
            m_chi=m_chi,
            spectrum=mcp_spectrum(),
        )
    with pytest.raises(InputError, match=r"--mchi .*: no γ\* mass above 2 m_χ"):
        run_mcp_events(
            cfg, EventRequest(n=10, output=tmp_path / "y.hepmc"), m_chi=0.6, spectrum=mcp_spectrum()
        )
    # the request checks shared with the A' modes (eventsetup.check_request, eventio.event_outputs)
    with pytest.raises(GammastarError, match="--chunk"):
        run_mcp_events(
            cfg,
            EventRequest(n=10, output=tmp_path / "y.hepmc", chunk=0),
            m_chi=m_chi,
            spectrum=mcp_spectrum(),
        )
    with pytest.raises(GammastarError, match="--table"):
        run_mcp_events(
            cfg,
            EventRequest(n=10, output=tmp_path / "y.parquet", table=tmp_path / "y.parquet"),
            m_chi=m_chi,
            spectrum=mcp_spectrum(),
        )
    assert not (tmp_path / "y.hepmc").exists()
    assert not (tmp_path / "y.parquet").exists()


def test_events_names_have_one_home():
    """gammastar.events.stage offers only what it defines (docs/howto/signal-events.md "Code
    layout"); the machinery it uses is imported from its own modules, and
    ``gammastar.write_events(config, ...)`` is callable (it runs run_events)."""
    import importlib

    import gammastar
    import gammastar.events.stage as ev

    for name in ev.__all__:
        assert getattr(ev, name).__module__ == "gammastar.events.stage", name
    homes = {"hepmc_text": "events.hepmc", "write_events": "events.io",
             "output_kind": "events.io", "polarisation": "source.setup",
             "McpSettings": "source.mcp", "generate_mcp": "source.mcp", "mcp_bins": "source.mcp",
             "dark_settings": "source.setup"}  # fmt: skip
    for name, home in homes.items():
        assert getattr(importlib.import_module(f"gammastar.{home}"), name).__module__ == (
            f"gammastar.{home}"
        ), name
    assert "run_dark_events" in ev.__all__
    assert callable(gammastar.write_events)


def test_cli_mode_errors(tmp_path, capsys):
    """--mchi with A′ options, or neither mode: one line, exit status 2, nothing written."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("events: {beam_spot_sigma: [0, 0], target_interaction_length: 0.17}\n")
    out = str(tmp_path / "e.hepmc")
    for args in (["--mchi", "0.1", "--mass", "0.5"], ["--eps", "1e-6"], ["--mchi", "0.1"]):
        extra = ["-n", "10", "-o", out] if args != ["--mchi", "0.1"] else ["-o", out]
        assert main(["events", str(cfg), *args, *extra]) == 2
        err = capsys.readouterr().err
        assert err.startswith("gammastar: error:")
        assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "e.hepmc").exists()


def test_default_channels_are_the_open_ones(tmp_path):
    """Below 2 m_μ the reach's (μμ, ee) leave ee; an explicit closed channel is an error."""
    cfg = make_config(tmp_path)
    m = np.linspace(0.05, 1.1, 80)  # yields below the dimuon threshold too
    y = 3e-3 * np.exp(-(m - 0.2) / 0.4)
    write_json(tmp_path / "yields.json", {
        "aprime": {"mass": m, "per_pot_per_eps2": y, "stat_err": 0.05 * y},
        "meta": make_meta(config_sha256=None, seed=None, n_pot=1e13),
    }, force=True)  # fmt: skip
    res = run_events(
        cfg, EventRequest(n=50, output=tmp_path / "e.parquet"), mass=0.2, eps=1e-5
    ).document
    assert res["meta"]["channels"] == ["ee"]
    with pytest.raises(InputError, match="closed"):
        run_events(
            cfg,
            EventRequest(n=50, output=tmp_path / "f.parquet"),
            mass=0.2,
            eps=1e-5,
            channels=("mumu",),
        )


def test_mcp_full_phase_space_from_fiducial_spectrum(tmp_path):
    """With fiducial-region yields (an ``extrapolation`` block), the spectrum is carried to
    the full phase space bin by bin with f_F(m): a constant f_F = 0.25 gives 4× the pairs."""
    from gammastar.events.stage import run_mcp_events

    cfg = make_config(tmp_path, mcp_pdgid=9900001)
    kw = {"m_chi": 0.12, "spectrum": mcp_spectrum(), "source": ParametricSampler()}
    plain = run_mcp_events(cfg, EventRequest(n=200, output=tmp_path / "a.parquet"), **kw).document
    doc = json.loads((tmp_path / "yields.json").read_text())
    m = np.linspace(0.2, 1.1, 10)
    doc["extrapolation"] = {
        "mass": m.tolist(), "bin_edges": np.linspace(0.15, 1.15, 11).tolist(),
        "fiducial_fraction": [0.25] * 10, "temperature": [0.2] * 10, "y_mean": [3.4] * 10,
        "y_sigma": [1.2] * 10, "n_eff": [1e3] * 10, "fiducial": {},
    }  # fmt: skip
    (tmp_path / "yields.json").write_text(json.dumps(doc))
    full = run_mcp_events(cfg, EventRequest(n=200, output=tmp_path / "b.parquet"), **kw).document
    assert full["sum_weight"] == pytest.approx(4 * plain["sum_weight"], rel=1e-12)
    assert full["meta"]["phase_space"].startswith("full")
