"""The reach stage (gammastar.reach.stage, gammastar reach CLI)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _experiment import stated, stated_config, stated_yaml
from _phys_figures import skip_reach_figures

from gammastar.cli import main
from gammastar.core.artifacts import make_meta, write_json
from gammastar.errors import GammastarError, InputError, OutputExistsError
from gammastar.physics.constants import M_MU
from gammastar.physics.sampling import ParametricSampler
from gammastar.reach.acceptance import draw
from gammastar.reach.scan import scan
from gammastar.reach.scan.settings import ScanSettings
from gammastar.reach.signal import MassModelSettings, eps_boundaries, mass_model
from gammastar.reach.stage import run_reach
from gammastar.reach.stats import cls, upper_limit
from gammastar.reach.stats.model import Channel, Model
from gammastar.reach.stats.workspace import load_workspace, quiet_pyhf
from gammastar.source.geometry import Geometry
from gammastar.source.production import load_yields


def synthetic_yields(path, lo=0.215, hi=1.1, n=60, scale=3e-3):
    m = np.linspace(lo, hi, n)
    y = scale * np.exp(-(m - 0.2) / 0.4)
    meta = make_meta(config_sha256=None, seed=None, n_pot=1e13)
    write_json(
        path,
        {"aprime": {"mass": m, "per_pot_per_eps2": y, "stat_err": 0.05 * y}, "meta": meta},
        force=True,
    )
    return path


NA62_LIKE = {
    "l1": 82.0,
    "l2": 157.0,
    "theta_min": 0.0,
    "theta_max": 0.05,
    "efficiency": 0.9,
}


# NA62's statistics inputs (NA62, arXiv:2312.12055, App. B, Table I)
NA62_STATS = {
    "background": {"mumu": 0.016, "ee": 0.0094},
    "background_kappa": {"mumu": 1.125, "ee": 4.0},
    "efficiency_uncertainty": 0.029,
    "n_pot_rel_uncertainty": 0.2,
}


OMIT = object()  # make_config(key=OMIT): leave the key out of the reach section


def make_config(tmp_path, beam=None, **reach):
    rc = {
        "channels": ["mumu", "ee"],
        "yields": str(synthetic_yields(tmp_path / "yields.json")),
        "flow": None,
        "n_pot": 1.4e17,
        "target_interaction_lengths": "dump",
        "mass_points": 8,
        "eps_points": 25,
        "samples": 2000,
        **NA62_STATS,
        **reach,
    }
    return stated_config(
        {
            "name": "t",
            "output": str(tmp_path / "run"),
            "beam": {"interaction_lengths": 0.01} if beam is None else beam,
            "detector": NA62_LIKE,
            "reach": {k: v for k, v in rc.items() if v is not OMIT},
        },
        source=str(tmp_path / "cfg.yaml"),
    )


def test_yields_contract(tmp_path):
    y = load_yields(synthetic_yields(tmp_path / "y.json"))
    assert y.mass_range == pytest.approx((0.215, 1.1))
    v, rel = y.at([0.5, 2.0])
    assert v[0] == pytest.approx(3e-3 * np.exp(-0.3 / 0.4), rel=1e-3)
    assert np.isnan(v[1])
    assert rel[0] == pytest.approx(0.05)
    bad = tmp_path / "bad.json"
    write_json(bad, {"aprime": {"mass": [0.3]}, "meta": make_meta(config_sha256=None, seed=None)})
    with pytest.raises(InputError, match="per_pot_per_eps2"):
        load_yields(bad)
    (tmp_path / "old.json").write_text(json.dumps({"aprime": {}, "meta": {"schema_version": 99}}))
    with pytest.raises(GammastarError, match="schema_version"):
        load_yields(tmp_path / "old.json")


def per_point_models(m, eps, y, sample, *, background, kappa, channels=("mumu", "ee")):
    """Full per-point likelihood: channel signals from the per-channel N_sig at (m, ε)."""
    from gammastar.reach.signal import signal_events

    parts = signal_events(
        m, eps, yield_per_pot_eps2=y, n_pot=1.4e19, sample=sample, channels=channels
    )
    out = []
    for k in range(len(eps)):
        if sum(parts[c][k] for c in channels) < 1e-6:  # no signal: trivially not excluded
            out.append((0.0, None))
            continue
        chans = [
            Channel(c, [parts[c][k]], [background[c]], bkg_kappa=kappa.get(c, 1.0), eff_unc=0.029)
            for c in channels
        ]
        out.append((sum(parts[c][k] for c in channels), Model(chans, n_pot_unc=0.2)))
    return out


@pytest.mark.parametrize("mass", [0.25, 0.45])
def test_eps_scan_agrees_with_a_full_per_point_test_exact(mass):
    # efficient method: per-mass s_up and N_sig(ε) = s_up crossings; full method: the
    # likelihood of every (m, ε) point built from its own per-channel signal, CLs < 0.1?
    bkg, kappa = {"mumu": 0.016, "ee": 0.0094}, {"mumu": 1.125, "ee": 4.0}
    geo = Geometry(**NA62_LIKE)
    sample = draw(ParametricSampler(), mass, 3000, geo, seed=11)
    y = 3e-3
    model = mass_model(
        mass,
        MassModelSettings(
            channels=("mumu", "ee"),
            background=bkg,
            background_kappa=kappa,
            efficiency_uncertainty=0.029,
            n_pot_unc=0.2,
        ),
    )
    s_up = upper_limit(model, cl=0.9, method="exact").expected["0"]

    def nsig(e):
        from gammastar.reach.signal import signal_events

        p = signal_events(
            mass, e, yield_per_pot_eps2=y, n_pot=1.4e19, sample=sample, channels=("mumu", "ee")
        )
        return p["mumu"] + p["ee"]

    eps = np.geomspace(1e-8, 1e-4, 40)
    lo, hi = eps_boundaries(nsig, eps, s_up)
    assert lo < hi  # something is excluded
    n_checked = 0
    for (ntot, mod), e in zip(
        per_point_models(mass, eps, y, sample, background=bkg, kappa=kappa), eps, strict=False
    ):
        if mod is None:
            assert not (lo <= e <= hi)
            continue
        if abs(ntot / s_up - 1) < 0.01:
            continue  # on the boundary
        excluded_full = cls(mod, ntot, method="exact")["CLs_exp"][2] < 0.1
        assert excluded_full == (lo <= e <= hi), (e, ntot, s_up)
        n_checked += 1
    assert n_checked >= 20


@pytest.mark.slow
def test_eps_scan_agrees_with_per_point_pyhf_hypotest_asymptotic():
    # same check with pyhf's own asymptotic hypotest at every point (large background, where
    # asymptotics hold) against the per-mass pyhf asymptotic upper limit
    import pyhf

    from gammastar.reach.signal import signal_events
    from gammastar.reach.stats.workspace import build_spec, validate_spec

    mass, y = 0.35, 3e-3
    bkg, kappa = {"mumu": 60.0}, {"mumu": 1.1}
    sample = draw(ParametricSampler(), mass, 3000, Geometry(**NA62_LIKE), seed=3)
    model = mass_model(
        mass,
        MassModelSettings(
            channels=("mumu",),
            background=bkg,
            background_kappa=kappa,
            n_pot_unc=0.2,
            efficiency_uncertainty=0.0,
        ),
    )
    s_up = upper_limit(model, cl=0.9, method="asymptotic").expected["0"]

    def nsig(e):
        return signal_events(mass, e, yield_per_pot_eps2=y, n_pot=1.4e19, sample=sample)["mumu"]

    eps = np.geomspace(1e-7, 1e-4, 24)
    lo, hi = eps_boundaries(nsig, eps, s_up)
    assert lo < hi
    for e, n in zip(eps, nsig(eps), strict=False):
        if n < 1e-6:
            assert not (lo <= e <= hi)
            continue
        if abs(n / s_up - 1) < 0.02:
            continue
        spec = build_spec(Model([Channel("mumu", [n], [60.0], bkg_kappa=1.1)], n_pot_unc=0.2))
        ws = validate_spec(spec)
        with quiet_pyhf():
            pm = ws.model()
            res = pyhf.infer.hypotest(1.0, ws.data(pm), pm, return_expected=True)
        assert (float(res[1]) < 0.1) == (lo <= e <= hi), (e, n, s_up)


def test_run_reach_writes_the_contract(tmp_path):
    cfg = make_config(tmp_path, observed={"mumu": 0, "ee": 0})
    res = run_reach(cfg).document
    out = tmp_path / "run"
    data = json.loads((out / "reach.json").read_text())
    assert data["cl"] == 0.9
    assert set(data["expected"]) == {
        "mass", "eps_low", "eps_high", "eps_low_at_scan_edge", "eps_high_at_scan_edge"
    }
    # the exclusion closes inside the scan (1e-8 … 1e-3): no boundary at its edges
    assert not any(data["expected"]["eps_low_at_scan_edge"])
    assert not any(data["expected"]["eps_high_at_scan_edge"])
    assert set(data["bands"]) == {"-2", "-1", "+1", "+2"}
    assert "observed" in data
    assert {"gammastar_version", "config_sha256", "seed", "schema_version"} <= set(data["meta"])
    assert data["meta"]["method"] == "exact"
    lo, hi = (
        np.array(data["expected"]["eps_low"], dtype=float),
        np.array(data["expected"]["eps_high"], dtype=float),
    )
    ok = np.isfinite(lo)
    assert ok.any()
    assert np.all(lo[ok] < hi[ok])
    # null where nothing is excluded (json null), consistent between low and high
    assert all(
        (a is None) == (b is None)
        for a, b in zip(data["expected"]["eps_low"], data["expected"]["eps_high"], strict=False)
    )
    # bands nest: −2σ excludes at least what +2σ does
    lo_m2 = np.array(data["bands"]["-2"]["eps_low"], dtype=float)
    assert np.all(lo_m2[ok] <= lo[ok] * (1 + 1e-9))
    # 2.3-event line is wider than the 3-event line
    l23 = np.array(data["event_lines"]["2.3"]["eps_low"], dtype=float)
    l3 = np.array(data["event_lines"]["3"]["eps_low"], dtype=float)
    both = np.isfinite(l23) & np.isfinite(l3)
    assert np.all(l23[both] <= l3[both])
    assert (out / "figures" / "reach.png").stat().st_size > 1000
    idx = json.loads((out / "workspaces" / "index.json").read_text())
    first = out / idx["workspaces"][0]["file"]
    load_workspace(str(first))
    # `pyhf cls` runs directly on a written workspace (asymptotic CLs; the reach used the
    # exact construction, recorded in meta.method): pyhf's own command, called in-process
    # (the same click command the `pyhf` script runs, without a second interpreter's start)
    from click.testing import CliRunner
    from pyhf.cli import cli as pyhf_cli

    with quiet_pyhf():
        r = CliRunner().invoke(pyhf_cli, ["cls", str(first), "--test-poi", "2.3"])
    assert r.exit_code == 0, r.output
    assert 0 <= json.loads(r.stdout)["CLs_obs"] <= 1
    # refuses to overwrite
    with pytest.raises(OutputExistsError):
        run_reach(cfg)
    assert res["meta"]["n_pot"] == 1.4e17


def test_an_exclusion_at_the_scan_edge_is_marked(tmp_path, caplog, monkeypatch):
    """A scan whose ε range (8e-8 … 1e-6) cuts the exclusion at 0.215 GeV (7.2e-8 … 6.2e-6 on
    1e-8 … 1e-3) but not at 1.1 GeV (9.1e-8 … 3.2e-7): reach.json flags the boundaries that are
    the scan's ends, the stage warns, and the run's summary writes "≤ 8.00e-08 (scan edge)"."""
    from gammastar.pipeline import _summary_lines

    skip_reach_figures(monkeypatch)  # the numbers and the summary (figures: the test above)
    cfg = make_config(tmp_path, mass_points=2, eps_points=8, eps_min=8e-8, eps_max=1e-6,
                      samples=500)  # fmt: skip
    with caplog.at_level("WARNING", logger="gammastar.reach.edges"):
        exp = run_reach(cfg).document["expected"]
    assert exp["eps_low"][0] == 8e-8
    assert exp["eps_high"][0] == 1e-6
    assert 8e-8 < exp["eps_low"][1] < exp["eps_high"][1] < 1e-6
    assert exp["eps_low_at_scan_edge"] == [True, False]
    assert exp["eps_high_at_scan_edge"] == [True, False]
    assert "reach.eps_min at m = 0.215 GeV" in caplog.text
    assert "reach.eps_max at m = 0.215 GeV" in caplog.text
    summary = "\n".join(_summary_lines(tmp_path / "run"))
    assert "ε from ≤ 8.00e-08 (scan edge) to ≥ 1.00e-06 (scan edge)" in summary
    assert "widen reach.eps_min" in summary


def test_mumu_reach_starts_near_two_muon_masses(tmp_path, monkeypatch):
    skip_reach_figures(monkeypatch)  # the numbers (figures: test_run_reach_writes_the_contract)
    cfg = make_config(tmp_path, channels=["mumu"], mass_min=0.2, mass_max=0.3, mass_points=6)
    data = run_reach(cfg).document
    m = np.array(data["expected"]["mass"])
    lo = np.array(data["expected"]["eps_low"], dtype=float)
    assert np.all(np.isnan(lo[m < 2 * M_MU]))
    assert np.all(np.isfinite(lo[m > 2 * M_MU + 0.01]))


def test_bad_inputs(tmp_path, capsys):
    with pytest.raises(InputError, match="outside the flow's mass range"):
        run_reach(
            make_config(tmp_path, mass_min=0.1, mass_max=2.0),
            source=ParametricSampler(mass_range=(0.2, 1.1)),
        )
    cfg = make_config(tmp_path, yields=str(tmp_path / "missing.json"))
    with pytest.raises(GammastarError, match="not found"):
        run_reach(cfg)
    # CLI: one line, exit status 2
    (tmp_path / "c.yaml").write_text(
        stated_yaml(
            "reach: {yields: nowhere.json, flow: null, n_pot: 1.0e17, target_interaction_lengths: "
            "dump, background: {mumu: 0}, background_kappa: {mumu: 1}, efficiency_uncertainty: 0, "
            "n_pot_rel_uncertainty: 0}\n"
        )
    )  # the detector stated: the one mistake is the missing yields file
    assert main(["reach", str(tmp_path / "c.yaml"), "--output", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gammastar: error:")
    assert len(err.strip().splitlines()) == 1
    (tmp_path / "d.yaml").write_text("detector: {l1: 10.0, l2: 5.0}\n")
    assert main(["reach", str(tmp_path / "d.yaml")]) == 2


def cli_reach_config(tmp_path, **reach):
    """Writes ``tmp_path/a.yaml``: a flow-less NA62-like reach on synthetic yields (written
    beside it), ``reach`` the keys that differ from 4 masses, 15 ε points and 1000 samples.
    Returns the config's mapping before :func:`stated` fills the experiment's keys."""
    import yaml

    synthetic_yields(tmp_path / "yields.json")
    cfgd = {
        "name": "cli",
        "output": "run",
        "beam": {"interaction_lengths": 0.01},
        "detector": NA62_LIKE,
        "reach": {
            "channels": ["mumu"],
            "yields": "yields.json",
            "flow": None,
            "mass_points": 4,
            "eps_points": 15,
            "samples": 1000,
            "n_pot": 1.4e17,
            "target_interaction_lengths": 19.6,
            **NA62_STATS,
            **reach,
        },
    }
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(stated(cfgd)))
    return cfgd


def test_cli_reach(tmp_path, capsys, monkeypatch):
    # the command's exit codes and files; the stage's figures: test_run_reach_writes_the_contract
    figures = skip_reach_figures(monkeypatch)
    cli_reach_config(tmp_path)
    assert main(["reach", str(tmp_path / "a.yaml")]) == 0
    assert "masses excluded" in capsys.readouterr().out
    assert (tmp_path / "run" / "reach.json").exists()
    assert main(["reach", str(tmp_path / "a.yaml")]) == 2  # exists, no --force
    assert main(["reach", str(tmp_path / "a.yaml"), "--force", "--method", "exact"]) == 0
    assert len(figures) == 2  # the two runs reached the figures


@pytest.mark.parametrize("name", ["paper_mock_detector", "na62_dump", "ship"])
def test_analysis_configs_load(repo_dir, name):
    from gammastar.config import load_config

    cfg = load_config(Path(repo_dir) / "analysis" / f"{name}.yaml")
    Geometry.from_config(cfg.detector)  # a valid geometry
    assert cfg.reach.cl == 0.9
    if name == "na62_dump":
        assert cfg.reach.n_pot == 1.4e17
        assert cfg.reach.background == {"mumu": 0.016, "ee": 0.0094}
        assert cfg.reach.observed == {"mumu": 0, "ee": 0}
    if name == "paper_mock_detector":
        d = cfg.detector
        assert (d.l1, d.l2, d.theta_min, d.theta_max) == (5.0, None, 0.035, 0.120)


def test_cli_acceptance(tmp_path, capsys):
    import yaml

    cfgd = {"name": "acc", "output": "run", "reach": {"flow": None, "samples": 500}}
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(stated(cfgd)))
    assert main(["acceptance", str(tmp_path / "a.yaml")]) == 0
    data = json.loads((tmp_path / "run" / "acceptance_ctau.json").read_text())
    acc = np.array(data["acceptance"], dtype=float)
    assert acc.shape == (16, 61)
    assert np.all(np.diff(acc, axis=1) >= -1e-12)  # open decay volume: rises with cτ
    assert main(["acceptance", str(tmp_path / "a.yaml")]) == 2  # no --force


def test_semi_visible_dark_sector_suppresses_the_signal():
    from gammastar.physics.darkphoton import DarkSector
    from gammastar.reach.signal import signal_events

    sample = draw(ParametricSampler(), 0.4, 2000, Geometry(**NA62_LIKE), seed=2)
    eps = np.geomspace(1e-7, 1e-4, 7)
    kw = {"yield_per_pot_eps2": 3e-3, "n_pot": 1.4e19, "sample": sample, "channels": ("mumu",)}
    vis = signal_events(0.4, eps, **kw)["mumu"]
    semi = signal_events(0.4, eps, dark=DarkSector(alpha_d=0.1, m_chi=0.05), **kw)["mumu"]
    # BR(μμ) ≈ ε²α K/(α_D K_χ) ≪ 1 and the A′ is prompt: (almost) nothing left
    assert np.all(semi < 1e-6 * np.maximum(vis, 1e-300) + 1e-12)


def test_scan_with_mass_templates(tmp_path):
    y = load_yields(synthetic_yields(tmp_path / "y.json"))
    settings = ScanSettings(
        geometry=Geometry(**NA62_LIKE),
        yields=y,
        n_pot=1.4e19,
        channels=("mumu", "ee"),
        background={"mumu": 0.016, "ee": 0.0094},
        background_kappa={"mumu": 1.125, "ee": 4.0},
        n_pot_unc=0.2,
        efficiency_uncertainty=0.029,
        template="mass",
        mass_resolution=0.005,
        samples=2000,
    )
    res = scan([0.3, 0.5], np.geomspace(1e-8, 1e-4, 20), sampler=ParametricSampler(),
               settings=settings)  # fmt: skip
    assert res.method == "exact"
    assert res.models[0].channels[0].signal.size == 6
    assert np.all(np.isfinite(res.boundaries["0"][0]))


@pytest.mark.slow
def test_toy_limit_matches_exact():
    # pyhf pseudo-experiments (12-point scan, 300 toys) vs the exact construction:
    # single bin, b = 0.5, n = 0, no systematics: CLs = e^{-s} → s_up = ln 10
    m = Model([Channel("mumu", [1.0], [0.5], observed=[0])], n_pot_unc=0.0)
    toys = upper_limit(m, cl=0.9, method="toys", ntoys=300, seed=3)
    assert toys.method == "toys"
    assert toys.observed == pytest.approx(np.log(10), rel=0.15)


def test_empty_acceptance_is_a_clear_error(tmp_path):
    class OnAxis:
        mass_range = (0.2, 1.1)

        def sample(self, mass, n, seed=None):
            return {"qT": np.zeros(n), "E": np.full(n, 50.0)}

    cfg = make_config(tmp_path)
    cfg = cfg.model_copy(
        update={"detector": cfg.detector.model_copy(update={"theta_min": 0.035, "theta_max": 0.12})}
    )
    with pytest.raises(GammastarError, match="acceptance is zero"):
        run_reach(cfg, source=OnAxis())


def test_scan_gives_each_channel_its_own_acceptance(tmp_path):
    """With both daughters in the detector, A′ → ee and A′ → μμ are accepted differently (the
    lepton mass sets the daughters' opening angles and energies): N_sig(m, ε) is
    Σ_c N_POT y(m) ε² BR_c A_c(cτ) with each channel's own acceptance A_c (docs/explanation/physics.md §9-10).
    Drawing the first open channel's acceptance (``channel=open_ch[0]``) for all would fail.
    The reference draws each channel with the scan's own per-mass seed (the same samples), so
    the only difference left is the float rounding of a few products: rtol 1e-12."""
    from gammastar.physics import darkphoton

    geo = Geometry(**NA62_LIKE, both_daughters=True)
    y = load_yields(synthetic_yields(tmp_path / "y.json"))
    masses, eps, n_pot, seed = np.array([0.3, 0.5]), np.geomspace(1e-7, 1e-4, 12), 1.4e17, 5
    settings = ScanSettings(
        geometry=geo,
        yields=y,
        n_pot=n_pot,
        channels=("ee", "mumu"),
        background=NA62_STATS["background"],
        background_kappa=NA62_STATS["background_kappa"],
        n_pot_unc=0.2,
        efficiency_uncertainty=0.029,
        samples=3000,
        seed=seed,
    )
    res = scan(masses, eps, sampler=ParametricSampler(), settings=settings)
    y_m = y.at(masses)[0]
    for i, (m, ss) in enumerate(zip(masses, np.random.SeedSequence(seed).spawn(2), strict=True)):
        s = int(ss.generate_state(1)[0])
        ct = darkphoton.ctau(m, eps)
        acc = {
            ch: draw(ParametricSampler(), m, 3000, geo, seed=s, channel=ch).acceptance(ct)
            for ch in ("ee", "mumu")
        }
        br = {ch: float(darkphoton.branching_ratio(m, ch)) for ch in acc}
        want = n_pot * y_m[i] * eps**2 * sum(br[ch] * acc[ch] for ch in acc)
        old = n_pot * y_m[i] * eps**2 * sum(br.values()) * acc["ee"]  # one acceptance for all
        # the channels differ by far more than the samples' noise (3000 samples: ~2-3%) where
        # the A′ lives long (at short lifetimes only the most boosted, collimated ones count) ...
        assert np.abs(old[0] / want[0] - 1) > 0.1
        # ... and the scan gives each its own
        # (atol: subnormal event counts at the largest ε have lost their relative precision)
        np.testing.assert_allclose(res.nsig[i], want, rtol=1e-12, atol=1e-12 * want.max())
        # the likelihood splits the signal as the channels' expected events (BR × acceptance)
        fr = {c.name: float(c.signal.sum()) for c in res.models[i].channels}
        share = br["ee"] * acc["ee"].sum() / sum(br[ch] * acc[ch].sum() for ch in acc)
        assert fr["ee"] == pytest.approx(share, rel=1e-12)


def test_reach_inputs_and_settings_are_pure_steps(tmp_path):
    """The stage's first steps read and resolve without writing (a thin stage)."""
    from gammastar.reach.stage import reach_inputs

    cfg = make_config(tmp_path)
    inp = reach_inputs(cfg)
    assert not (tmp_path / "run").exists()  # nothing written before the scan
    # yield scale from the data's 0.01 λ_I target to a dump: 1/(1 − e^{−0.01}) (docs/explanation/reach.md §5)
    assert inp.yield_scale == pytest.approx(1 / (1 - np.exp(-0.01)), rel=1e-12)
    assert inp.n_pot == 1.4e17  # reach.n_pot as given
    # the mass grid spans the synthetic yields' range (0.215–1.1 GeV), reach.mass_points points
    np.testing.assert_allclose(inp.masses, np.linspace(0.215, 1.1, 8), rtol=1e-12)
    assert inp.eps.size == 25
    assert inp.observed is None
    assert inp.ensemble is None
    st = ScanSettings.from_config(cfg, inp)
    assert st.n_pot == pytest.approx(1.4e17 * inp.yield_scale, rel=1e-12)
    assert st.channels == ("mumu", "ee")
    assert st.impact_points == 0  # no nuisances: no impact
    with pytest.raises(GammastarError, match=r"reach\.background: nothing given for channel 'ee'"):
        ScanSettings(**{**st.__dict__, "background": {"mumu": 0.016}}).check(inp.masses)


def test_yield_between_bins_has_the_error_of_independent_bins():
    """Yields.at between two bins: the log-linear interpolation of two independent Poisson
    counts scatters by √((1 − t)² r₁² + t² r₂²) (toys), which it quotes; the interpolated
    (1 − t) r₁ + t r₂ is √2 too large at the midpoint. 20000 toys: the
    scatter's own relative error is 1/√(2·20000) = 0.5%; 3% allowed."""
    from gammastar.source.production import Yields

    rng = np.random.default_rng(7)
    n1, n2 = 400.0, 900.0
    for t in (0.0, 0.37, 0.5):
        c1, c2 = rng.poisson(n1, 20_000), rng.poisson(n2, 20_000)
        interp = np.exp((1 - t) * np.log(c1) + t * np.log(c2))
        toy = np.std(interp) / np.mean(interp)
        y = Yields(np.array([1.0, 2.0]), np.array([n1, n2]), np.sqrt([n1, n2]), {})
        quoted = float(y.at([1.0 + t])[1][0])
        assert abs(quoted / toy - 1) < 0.03, (t, quoted, toy)


def _edge_toy():
    """One mass point's signal for the per-edge tests: N_sig(ε) = 10²⁴ ε⁴ e^{−(ε/10⁻⁴)²} (a
    long-lifetime rise ∝ ε⁴ and a short-lifetime cut-off; peak 5·10⁷ events) on 200 ε from
    10⁻⁸ to 10⁻³, no background, the exact 90% CL limit. Returns (ε grid, the signal, the
    settings)."""
    from types import SimpleNamespace

    from gammastar.reach.scan.mass_signal import _MassSignal
    from gammastar.reach.signal import MassModelSettings

    eps = np.geomspace(1e-8, 1e-3, 200)

    def nsig(e):
        e = np.asarray(e, dtype=np.float64)
        return 1e24 * e**4 * np.exp(-((e / 1e-4) ** 2))

    sig = _MassSignal(0.3, 5, ("mumu",), {}, {"mumu": 1.0}, np.ones(eps.size), nsig, nsig(eps),
                      np.ones(eps.size), None, None)  # fmt: skip
    st = SimpleNamespace(
        model_settings=lambda ch: MassModelSettings(ch, {"mumu": 0.0}, {"mumu": 1.0}, 0.0, 0.0),
        observed=None, cl=0.9, method="exact", ntoys=0, event_lines=(),
    )  # fmt: skip
    return eps, sig, st


def test_each_edge_takes_its_own_extrapolation_size():
    """A per-ε N_sig error (here the extrapolation's: 10% at long lifetimes, ×6 at short
    ones, as the model's tail towards the beam energy gives a far-forward detector) sizes
    each boundary's limit at that boundary: ε_low is the one a constant 10% gives, ε_high the
    one a constant r = 5 gives (the same computations: equal to rounding), and the larger
    size would have moved ε_low (what one size for both edges did)."""
    from gammastar.reach.scan.mass_limit import _mass_limit, _MassInputs

    eps, sig, st = _edge_toy()
    masses = np.array([0.3])

    def run(ex_rel):
        point = _MassInputs(0, {"extrapolation": 0.1}, 0.0, None, ex_rel=ex_rel)
        return _mass_limit(sig, point, masses, eps, st)

    both = run(np.where(eps < 1e-5, 0.1, 5.0))
    low, high = run(np.full(eps.size, 0.1)), run(np.full(eps.size, 5.0))
    lo, hi = both.boundaries["0"]
    assert lo == pytest.approx(low.boundaries["0"][0], rel=1e-12)
    assert hi == pytest.approx(high.boundaries["0"][1], rel=1e-12)
    assert high.boundaries["0"][0] > 1.2 * lo  # r = 5 at ε_low would have cost this much
    assert both.high is not None
    assert low.high is None
    assert both.extrapolation["eps_low"] == pytest.approx(0.1, rel=1e-12)
    assert both.extrapolation["eps_high"] == pytest.approx(5.0, rel=1e-12)
    # an ε_high limit above N_sig's peak (5·10⁷ events; r = 10⁸ there: s_up ≈ 4·10⁸) leaves no
    # boundary at all, not an ε_low without its ε_high
    none = run(np.where(eps < 1e-5, 0.1, 1e8))
    assert np.all(np.isnan(none.boundaries["0"]))


def test_an_unresolved_edge_takes_the_largest_resolved_size():
    """Where N_sig is not resolved at an edge (the extrapolation error NaN there), the edge
    takes at least the largest resolved size at the mass, never the other edge's smaller one:
    on synthetic arrays (0.1 at long lifetimes, rising to 4 towards short ones, NaN beyond)
    the row's ε_high size is 4, flagged, and ``_sizes_at`` gives it; a floor above the grid's
    largest (the other edge's) wins; a resolved edge keeps its interpolated size."""
    from gammastar.reach.scan.mass_limit import (
        _extrapolation_row,
        _MassInputs,
        _sizes_at,
        edge_size,
    )

    eps = np.geomspace(1e-7, 1e-3, 41)
    rel = np.where(eps < 1e-5, 0.1, 0.1 * (eps / 1e-5) ** 0.8)
    rel = np.where(eps > 1e-4, np.nan, rel)  # 0.1·10^0.8 = 0.63 at 1e-4 ... NaN above
    top = float(np.nanmax(rel))
    row = _extrapolation_row(eps, rel, 1e-6, 3e-4, np.ones(eps.size), 0.3)
    assert row["eps_low"] == pytest.approx(0.1, rel=1e-12)
    assert row["eps_high"] == pytest.approx(top, rel=1e-12)  # not 0.1, the other edge's
    assert row["unresolved"]
    assert row["fallback"] == ["eps_high"]
    assert row["rel"] == pytest.approx(top, rel=1e-12)
    point = _MassInputs(0, {"extrapolation": 0.05}, 0.0, None, ex_rel=rel)
    base = {"extrapolation": 0.1}
    assert _sizes_at(point, eps, 3e-4, base)["extrapolation"] == pytest.approx(top, rel=1e-12)
    assert _sizes_at(point, eps, 1e-6, base)["extrapolation"] == pytest.approx(0.1, rel=1e-12)
    # the floor (the other edge's size) when it exceeds every resolved size
    high = _sizes_at(point, eps, 3e-4, {"extrapolation": 9.0})["extrapolation"]
    assert high == pytest.approx(9.0, rel=1e-12)
    assert edge_size(eps, np.full(eps.size, np.nan), 3e-4, 0.7) == (0.7, True)
    assert edge_size(eps, rel, float("nan")) == (None, False)  # no edge: nothing to size
    resolved = _extrapolation_row(eps, rel, 1e-6, 5e-5, np.ones(eps.size), 0.3)
    assert not resolved["unresolved"]
    assert resolved["fallback"] == []
    want = float(np.interp(np.log(5e-5), np.log(eps), rel))
    assert resolved["eps_high"] == pytest.approx(want, rel=1e-12)


def test_an_unresolved_high_edge_is_limited_with_the_largest_size():
    """The per-edge limit on the toy signal with r = 0.1 at long lifetimes, 5 up to 1.5·10⁻⁴
    and NaN (not resolved) beyond, where ε_high lies: ε_high is the one a constant r = 5
    gives (the largest resolved size; the same computations: equal to rounding), ε_low the
    one a constant 10% gives; the other edge's 10% would have claimed a larger ε_high."""
    from gammastar.reach.scan.mass_limit import _mass_limit, _MassInputs

    eps, sig, st = _edge_toy()
    masses = np.array([0.3])

    def run(ex_rel):
        point = _MassInputs(0, {"extrapolation": 0.1}, 0.0, None, ex_rel=ex_rel)
        return _mass_limit(sig, point, masses, eps, st)

    rel = np.where(eps < 1e-5, 0.1, np.where(eps < 1.5e-4, 5.0, np.nan))
    got = run(rel)
    low, high = run(np.full(eps.size, 0.1)), run(np.full(eps.size, 5.0))
    lo, hi = got.boundaries["0"]
    assert hi > 1.5e-4  # the edge lies where N_sig is not resolved
    assert hi == pytest.approx(high.boundaries["0"][1], rel=1e-12)
    assert lo == pytest.approx(low.boundaries["0"][0], rel=1e-12)
    # what the other edge's size would have claimed (3% further: N falls as e^{-(ε/10⁻⁴)²} there)
    assert low.boundaries["0"][1] > 1.02 * hi
    assert got.extrapolation["fallback"] == ["eps_high"]
    assert got.extrapolation["eps_high"] == pytest.approx(5.0, rel=1e-12)


def test_the_high_edge_takes_the_size_at_its_own_boundary():
    """An extrapolation error growing steeply towards short lifetimes (r ∝ ε³ above 10⁻⁵):
    the ε_high boundary solved with the size at the first pass's boundary (the largest) is
    improved towards the self-consistent one, never beyond it: it lies at or above that
    first solve's, and the limit with the size at the boundary found reaches at least as far
    (to the boundaries' root-finding tolerance)."""
    from gammastar.reach.scan.mass_limit import _high_edge, _mass_limit, _MassInputs, _sizes_at
    from gammastar.reach.signal import BOUNDARY_XTOL

    eps, sig, st = _edge_toy()
    ex_rel = np.where(eps > 1e-5, 0.1 * (eps / 1e-5) ** 3, 0.1)
    point = _MassInputs(0, {"extrapolation": 0.1}, 0.0, None, ex_rel=ex_rel)
    got = _mass_limit(sig, point, np.array([0.3]), eps, st)
    hi = got.boundaries["0"][1]
    first = got.extrapolation["eps_high"]  # the size at the first pass's boundary

    def solve(sizes):
        from gammastar.reach.scan.mass_limit import _boundaries, _mass_model_for
        from gammastar.reach.stats import upper_limit

        model = _mass_model_for(sig, 0, np.array([0.3]), st, 0.0, sizes)
        lim = upper_limit(model, cl=0.9, method="exact", ntoys=0, seed=5)
        return model, lim, _boundaries(lim, sig, eps, st)

    tol = 3 * BOUNDARY_XTOL
    e1 = solve({"extrapolation": first})[2]["0"][1]
    assert hi >= e1 * (1 - tol)
    own = solve(_sizes_at(point, eps, hi, {"extrapolation": first}))[2]["0"][1]
    assert own >= hi * (1 - tol)
    assert hi > 1.02 * e1  # the improvement is there to see
    assert _high_edge(solve, point, sig, eps, {"extrapolation": first})[2]["0"][1] == pytest.approx(hi, rel=1e-12)


def test_reach_json_names_the_edges_that_took_the_fallback():
    """``reach.json``'s N_sig-level record of a nuisance: per mass the sizes at the two edges,
    ``unresolved`` where N_sig is not resolved at one, and ``fallback`` naming the edges that
    took the largest resolved size (edge_size); a mass with both edges resolved has neither."""
    from types import SimpleNamespace

    from gammastar.reach.scan.mass_limit import _extrapolation_row
    from gammastar.reach.stage import _record_nsig_level

    eps = np.geomspace(1e-7, 1e-3, 41)
    rel = np.where(eps > 1e-4, np.nan, np.where(eps < 1e-5, 0.1, 0.5))
    rows = [_extrapolation_row(eps, rel, 1e-6, 5e-6, np.ones(eps.size), 0.1),
            _extrapolation_row(eps, rel, 1e-6, 3e-4, np.ones(eps.size), 0.2)]  # fmt: skip
    rec = {"rel": [0.3, 0.3], "kind": "normsys", "origin": "yield"}
    inp = SimpleNamespace(masses=np.array([0.1, 0.2]),
                          nuisance_record={"nuisances": {"extrapolation": rec}})  # fmt: skip
    _record_nsig_level(inp, rows, "extrapolation", "test")
    assert rec["rel_yield"] == pytest.approx([0.3, 0.3], rel=1e-15)  # the yield-level sizes, copied
    assert rec["at_eps_high"][0] == pytest.approx(0.1, rel=1e-12)
    assert rec["at_eps_high"][1] == pytest.approx(0.5, rel=1e-12)  # the largest resolved
    assert rec["unresolved"] == [False, True]
    assert rec["fallback"] == [[], ["eps_high"]]
