"""The prediction's own uncertainties: the named nuisances of yields.json, their
modifiers in the pyhf workspaces, their integration in the exact CLs, the impact table and
the bad-input errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _experiment import stated_config
from _phys_pyhf import pyhf_cls
from scipy import integrate, optimize, stats

from gammastar.errors import ConfigError, InputError
from gammastar.reach.stats import cls, upper_limit
from gammastar.reach.stats.model import Channel, Model
from gammastar.reach.stats.workspace import build_spec, quiet_pyhf
from gammastar.yields.lambda_theta import lambda_theta_variation
from gammastar.yields.nuisance import at_masses, read_uncertainties
from gammastar.yields.variations import like_sign_variation


# --------------------------------------------------------------------------- exact CLs
def _limit_zero_background(sigma: float, cl: float = 0.9) -> float:
    """Independent reference: 0 observed, no background, signal scale K log-normal with
    ln K ~ N(0, σ²): CLs(μ) = E[exp(−μK)] (the hybrid CLs of 0 events, stats module
    docstring), integrated with scipy's adaptive quadrature; root CLs = 1 − cl."""

    def cls_mu(mu: float) -> float:
        def f(x: float) -> float:
            return stats.norm.pdf(x) * math.exp(-mu * math.exp(sigma * x))

        return integrate.quad(f, -12, 12, epsabs=1e-13, limit=200)[0]

    return optimize.brentq(lambda mu: cls_mu(mu) - (1 - cl), 0.1, 50, xtol=1e-10)


def test_exact_cls_integrates_named_nuisances_as_one_log_normal():
    # two named signal nuisances and N_POT: independent log-normals multiply into one of
    # width sqrt(sum ln^2(1 + r)); the exact construction must give that limit
    r = {"data_stat": 0.1, "like_sign_r": 0.3}
    m = Model([Channel("mumu", [1.0], [1e-9], observed=[0])], n_pot_unc=0.2, signal_nuisances=r)
    sigma = math.sqrt(sum(math.log1p(v) ** 2 for v in (0.2, *r.values())))
    ref = _limit_zero_background(sigma)
    got = upper_limit(m, cl=0.9, method="exact").observed
    # 20 Gauss-Hermite nodes integrate exp(-mu e^{sigma x}) (sigma ~ 0.35) to ~1e-8 relative;
    # the root search's rtol is 1e-7: 1e-5 is a safe margin
    assert got == pytest.approx(ref, rel=1e-5)
    # and it is wider than without them (the no-systematics limit is ln 10 = 2.303)
    assert (
        got
        > upper_limit(
            Model([Channel("mumu", [1.0], [1e-9], observed=[0])], n_pot_unc=0.2), method="exact"
        ).observed
    )


def test_exact_cls_with_background_matches_equivalent_n_pot():
    # a named rate nuisance r is the same log-normal as an N_POT uncertainty r: identical
    # model, identical CLs (same quadrature nodes, so equal to float precision)
    ch = [Channel("mumu", [1.0], [0.8], observed=[1]), Channel("ee", [0.5], [0.3], observed=[0])]
    a = Model(ch, n_pot_unc=0.0, signal_nuisances={"extrapolation": 0.25})
    b = Model(ch, n_pot_unc=0.25)
    for mu in (1.0, 3.0):
        ca, cb = cls(a, mu, method="exact"), cls(b, mu, method="exact")
        assert ca["CLs_obs"] == pytest.approx(cb["CLs_obs"], rel=1e-12)
        np.testing.assert_allclose(ca["CLs_exp"], cb["CLs_exp"], rtol=1e-12)


def test_model_refuses_reserved_names_and_negative_sizes():
    from gammastar.errors import GammastarError

    ch = [Channel("mumu", [1.0], [0.1])]
    with pytest.raises(GammastarError, match="reserved"):
        Model(ch, signal_nuisances={"n_pot": 0.1})
    with pytest.raises(GammastarError, match=">= 0"):
        Model(ch, signal_nuisances={"a": -0.1})


# --------------------------------------------------------------------------- workspaces
def test_workspace_modifiers_shared_across_channels_and_pyhf_cls(tmp_path):
    m = Model(
        [Channel("mumu", [0.7], [0.5], eff_unc=0.03), Channel("ee", [0.3], [0.2], eff_unc=0.03)],
        n_pot_unc=0.2,
        signal_nuisances={"data_stat": 0.05, "acceptance_lambda_theta": 0.04, "eta_mumu": 0.0},
    ).normalised()
    spec = build_spec(m)
    import pyhf

    with quiet_pyhf():
        pyhf.schema.validate(spec, "workspace.json")
        model = pyhf.Workspace(spec).model()
    names = model.config.par_names
    # one parameter per source, shared by both channels; a zero-size source is left out
    for n in ("data_stat", "acceptance_lambda_theta", "n_pot", "eff_mumu", "eff_ee"):
        assert names.count(n) == 1
    assert "eta_mumu" not in names
    for ch in spec["channels"]:
        mods = {x["name"]: x for x in ch["samples"][0]["modifiers"]}
        assert mods["data_stat"]["type"] == "normsys"
        assert mods["data_stat"]["data"] == {"hi": 1.05, "lo": pytest.approx(1 / 1.05)}
    path = tmp_path / "ws.json"
    path.write_text(json.dumps(spec))
    got = pyhf_cls(path, "--test-poi", "3")
    # `pyhf cls` is pyhf's asymptotic hypotest: stats.cls(spec, asymptotic) is the same call
    ref = cls(spec, 3.0, method="asymptotic")
    assert got["CLs_obs"] == pytest.approx(ref["CLs_obs"], rel=1e-6)


# --------------------------------------------------------------------------- yield sources
def test_like_sign_variation_is_linear_in_r():
    # N_comb = 2R sqrt(N++N--): W = N_OS - C, so R(1 + d) moves W by -d C
    w, c = np.array([200.0, 50.0, 0.0]), np.array([20.0, 25.0, 3.0])
    up, down = like_sign_variation(w, c, 0.05)
    np.testing.assert_allclose(up[:2], [-0.005, -0.025])
    np.testing.assert_allclose(down[:2], [0.005, 0.025])
    assert np.isnan(up[2])


class _Table:
    """A stand-in acceptance table with a constant A per pair."""

    def __init__(self, a):
        self.a = a

    def lookup(self, m, pt, pz):
        return np.full(np.shape(m), self.a)


def test_lambda_theta_variation_reweights_each_pair():
    # weights ∝ 1/A: with A_λ' the weight becomes w A_λ/A_λ' (0.5/0.4 = 1.25, 0.5/0.6 = 5/6);
    # the fiducial region is the nominal one: a nominal A below min_acceptance keeps w = 0
    pairs = {"m": [0.3, 0.31, 0.6], "pT": [1, 1, 1], "pz": [50, 50, 50], "weight": [2, 2, 1]}
    up, down = lambda_theta_variation(
        pairs, [0.2, 0.5, 0.8], _Table(0.5), (_Table(0.4), _Table(0.6)), min_acceptance=0.05
    )
    np.testing.assert_allclose(up, [0.25, 0.25])
    np.testing.assert_allclose(down, [-1 / 6, -1 / 6])
    up, _ = lambda_theta_variation(
        pairs, [0.2, 0.5, 0.8], _Table(0.01), (_Table(0.02), _Table(0.6)), min_acceptance=0.05
    )
    np.testing.assert_allclose(up, [-1.0, -1.0])


def test_lambda_theta_variation_on_real_tables_has_the_sign_of_the_acceptance():
    # a window of small lab angles favours decays along the flight direction (cos θ* ≈ ±1):
    # more weight in cos²θ* (λ > 0) raises A, so the unfolded yield (∝ 1/A) falls: up < 0
    from gammastar.corrections.pair_acceptance.lepton import LeptonAcceptance
    from gammastar.corrections.pair_acceptance.table import PairAcceptance

    la = LeptonAcceptance(3.0, 0.035, 0.12)
    kw = {"lepton_mass": 0.10566, "mass_range": (0.25, 0.8), "p_max": 200.0}
    kw["grid"] = (6, 24, 40)
    kw["quadrature"] = (16, 16)
    tabs = [PairAcceptance.build(la, lambda_theta=v, **kw) for v in (0.0, 0.3, -0.3)]
    rng = np.random.default_rng(3)
    m = rng.uniform(0.3, 0.7, 400)
    pz = rng.uniform(40, 120, 400)
    pt = pz * rng.uniform(0.05, 0.09, 400)
    a0 = tabs[0].lookup(m, pt, pz)
    keep = a0 > 0.05
    pairs = {"m": m[keep], "pT": pt[keep], "pz": pz[keep], "weight": 1 / a0[keep]}
    up, down = lambda_theta_variation(
        pairs, [0.3, 0.5, 0.7], tabs[0], (tabs[1], tabs[2]), min_acceptance=0.0
    )
    a_up = tabs[1].lookup(m, pt, pz)[keep]
    # the exact re-weighting: sum(1/A') / sum(1/A) - 1 per bin
    b = np.digitize(m[keep], [0.3, 0.5, 0.7]) - 1
    ref = [np.sum(1 / a_up[b == i]) / np.sum(1 / a0[keep][b == i]) - 1 for i in (0, 1)]
    np.testing.assert_allclose(up, ref, rtol=1e-12)
    assert np.all(np.sign(up) == -np.sign(down))


def test_read_and_interpolate_uncertainties():
    doc = {
        "uncertainties": {
            "mass": [0.3, 0.5, 0.7],
            "nuisances": {
                "a": {"kind": "normsys", "rel": [0.1, None, 0.3], "origin": "x"},
                "b": {"kind": "normsys", "rel": [0.0, 0.0, 0.0], "origin": "y"},
            },
        }
    }
    u = read_uncertainties(doc)
    got = at_masses(u, [0.4, 0.7])
    np.testing.assert_allclose(got["a"], [0.15, 0.3])  # the null bin skipped
    np.testing.assert_allclose(got["b"], [0.0, 0.0])
    doc["uncertainties"]["nuisances"]["a"]["rel"] = [0.1, -0.2, 0.1]
    with pytest.raises(InputError, match="negative"):
        read_uncertainties(doc)


# --------------------------------------------------------------------------- yields stage
def _yields_run(tmp_path, **unc):
    from test_yields import histograms_like_select, synthetic_pairs, write_run

    run = tmp_path / "run"
    pairs = synthetic_pairs(r=1.0)
    write_run(run, pairs, histograms_like_select(pairs))
    cfg = stated_config(
        {"output": str(run), "beam": {"n_pot": 1e13}, "uncertainties": {"enabled": True, **unc}}
    )
    return run, pairs, cfg


def test_yields_json_records_each_source(tmp_path):
    from gammastar.yields.stage import compute_yields

    run, pairs, cfg = _yields_run(
        tmp_path,
        r_factor_rel_err=0.05,
        extra=[{"name": "target_length", "rel": 0.03, "origin": "survey"}],
    )
    compute_yields(cfg, plots=False, theory=False)
    doc = json.loads((run / "yields.json").read_text())
    unc = doc["uncertainties"]
    nu = unc["nuisances"]
    y = np.array(doc["aprime"]["per_pot_per_eps2"], float)
    err = np.array(doc["aprime"]["stat_err"], float)
    np.testing.assert_allclose(np.array(nu["data_stat"]["rel"], float), err / np.abs(y))
    # like-sign: -dR * C / W with C = -(sum of SS weights) per bin (select's convention)
    edges = np.array(doc["aprime"]["bin_edges"])
    m, w, q = pairs["m"].to_numpy(), pairs["weight"].to_numpy(), pairs["charge"].to_numpy()
    c = -np.histogram(m[q != 0], edges, weights=w[q != 0])[0]
    wt = np.histogram(m, edges, weights=w)[0]
    np.testing.assert_allclose(np.array(nu["like_sign_r"]["up"], float), -0.05 * c / np.abs(wt))
    assert nu["eta_mumu"]["rel"] == [0.0] * len(y)  # truth removal (the default): exact
    assert nu["target_length"]["rel"] == [0.03] * len(y)
    assert {"acceptance_lambda_theta", "extrapolation", "kinematic_model"} <= set(
        unc["not_included"]
    )
    assert all(n["kind"] == "normsys" and n["origin"] for n in nu.values())
    # yields_aprime.csv: after its contract columns the total error and each named part,
    # absolute; the total is the parts in quadrature, each part rel × |y| of yields.json
    csv = pd.read_csv(run / "yields_aprime.csv", comment="#")
    head = ["mass", "m_lo", "m_hi", "per_pot_per_eps2", "stat_err", "bkg_sub_err", "flags"]
    assert list(csv.columns[:8]) == [*head, "total_err"]
    parts = [f"err_{k}" for k in nu]
    assert list(csv.columns[8:]) == parts
    # the CSV prints 8 significant digits: each value within 5e-8 of itself relative, the
    # quadrature sum of rounded parts within the same of the rounded total; twice that
    rounding = 2 * 5e-8
    ok = np.isfinite(y) & (y != 0)
    quad = np.sqrt(np.sum(csv.loc[ok, parts].to_numpy() ** 2, axis=1))
    np.testing.assert_allclose(csv.loc[ok, "total_err"], quad, rtol=rounding)
    for k in nu:
        want = np.array(nu[k]["rel"], float)[ok] * np.abs(y[ok])
        np.testing.assert_allclose(csv.loc[ok, f"err_{k}"], want, rtol=rounding, atol=0)
    # every bin with a nonzero part has a nonzero total, at least that part
    assert np.all(csv.loc[ok, "total_err"] >= csv.loc[ok, parts].max(axis=1) * (1 - rounding))
    assert np.all(csv.loc[ok, "err_target_length"] > 0)


def test_missing_sizes_are_one_line_errors(tmp_path):
    from gammastar.yields.stage import compute_yields

    _, _, cfg = _yields_run(tmp_path)
    with pytest.raises(ConfigError, match=r"uncertainties\.r_factor_rel_err: not given"):
        compute_yields(cfg, plots=False, theory=False)


@pytest.mark.parametrize(
    ("unc", "match"),
    [
        ({"lambda_theta_err": -0.1}, r"uncertainties\.lambda_theta_err.*must be >= 0"),
        (
            {
                "extra": [
                    {"name": "a", "rel": 0.1, "origin": "x"},
                    {"name": "a", "rel": 0.2, "origin": "y"},
                ]
            },
            r"extra\[1\]\.name: nuisance 'a' given twice",
        ),
        (
            {"extra": [{"name": "data_stat", "rel": 0.1, "origin": "x"}]},
            r"extra\[0\]\.name: nuisance 'data_stat' given twice",
        ),
    ],
)
def test_bad_uncertainties_config(tmp_path, unc, match):
    with pytest.raises(ConfigError, match=match):
        stated_config({"uncertainties": unc}, source=str(tmp_path / "c.yaml"))


# --------------------------------------------------------------------------- reach
@pytest.mark.slow
def test_reach_with_nuisances_and_impact(tmp_path):
    from test_reach import make_config

    from gammastar.core.artifacts import make_meta, write_json
    from gammastar.reach.stage import run_reach

    cfg = make_config(tmp_path, mass_points=4, channels=["mumu"])
    ypath = Path(cfg.reach.yields)
    doc = json.loads(ypath.read_text())
    n = len(doc["aprime"]["mass"])
    doc["uncertainties"] = {
        "mass": doc["aprime"]["mass"],
        "nuisances": {
            "data_stat": {"kind": "normsys", "rel": [0.05] * n, "origin": "stat"},
            "like_sign_r": {"kind": "normsys", "rel": [0.3] * n, "origin": "R"},
        },
    }
    doc["meta"] = make_meta(config_sha256=None, seed=None, n_pot=1e13)
    write_json(ypath, doc, force=True)
    on = cfg.model_copy(
        update={"uncertainties": cfg.uncertainties.model_copy(update={"enabled": True})}
    )
    r_on = run_reach(on).document
    # the workspaces carry them
    ws = json.loads((tmp_path / "run" / "workspaces" / "index.json").read_text())
    first = json.loads((tmp_path / "run" / ws["workspaces"][0]["file"]).read_text())
    names = {x["name"] for x in first["channels"][0]["samples"][0]["modifiers"]}
    assert {"data_stat", "like_sign_r", "n_pot"} <= names
    assert not any(x.startswith("mcstat_") for x in names)  # data_stat replaces it
    # the ranking plot (reach stage) and the report's table of the same numbers
    assert (tmp_path / "run" / "figures" / "reach_impact.png").stat().st_size > 1000
    from gammastar.report.reach_sections import _reach_section
    from gammastar.report.reading import Section

    sec = Section("reach", "Reach")
    _reach_section(tmp_path / "run", sec)
    html = "".join(map(str, sec.parts))
    assert "Impact of each nuisance" in html
    assert "like_sign_r" in html
    r_off = run_reach(cfg, force=True).document
    # the added log-normal nuisances widen the limit (exact construction), at every mass
    s_on = np.array(r_on["signal_limit"]["0"], float)
    s_off = np.array(r_off["signal_limit"]["0"], float)
    assert np.all(s_on > s_off)
    assert set(r_on["nuisances"]["nuisances"]) == {"data_stat", "like_sign_r"}
    imp = r_on["impact"]
    assert len(imp["mass"]) == 4
    # like_sign_r fixed at +1σ: s_up(rest)/(1 + 0.3) (uncertainties.impact's definition)
    lsr = imp["nuisances"]["like_sign_r"]
    ratio = np.array(lsr["-1"]["s_up"]) / np.array(lsr["+1"]["s_up"])
    np.testing.assert_allclose(ratio, 1.3**2, rtol=1e-9)
    # a signal up-shift excludes more: a lower eps_low
    lo_up = np.array(lsr["+1"]["eps_low"], float)
    lo_nom = np.array(imp["nominal"]["eps_low"], float)
    ok = np.isfinite(lo_up) & np.isfinite(lo_nom)
    assert ok.any()
    assert np.all(lo_up[ok] <= lo_nom[ok])


def test_reach_refuses_enabled_without_yields_block(tmp_path):
    from test_reach import make_config

    from gammastar.reach.stage import run_reach

    cfg = make_config(tmp_path, mass_points=2, channels=["mumu"])
    on = cfg.model_copy(
        update={"uncertainties": cfg.uncertainties.model_copy(update={"enabled": True})}
    )
    with pytest.raises(InputError, match="no 'uncertainties' block"):
        run_reach(on)


# --------------------------------------------------------------------------- kinematic model
def _scan_kw(tmp_path):
    from test_reach import NA62_LIKE, synthetic_yields

    from gammastar.source.geometry import Geometry
    from gammastar.source.production import load_yields

    return {
        "geometry": Geometry(**NA62_LIKE),
        "yields": load_yields(synthetic_yields(tmp_path / "y.json")),
        "n_pot": 1e20,
        "channels": ("mumu",),
        "background": {"mumu": 0.0},
        "background_kappa": {"mumu": 1.0},
        "n_pot_unc": 0.2,
        "efficiency_uncertainty": 0.0,
        "samples": 3000,
        "seed": 4,
        "method": "exact",
    }


def test_ensemble_spread_enters_as_kinematic_model(tmp_path):
    from gammastar.physics.sampling import ParametricSampler
    from gammastar.reach.scan import scan
    from gammastar.reach.scan.settings import ScanSettings

    kw = _scan_kw(tmp_path)
    masses, eps = np.array([0.3, 0.6]), np.geomspace(1e-7, 1e-3, 30)
    nominal = ParametricSampler()
    base = scan(masses, eps, sampler=nominal, settings=ScanSettings(**kw))
    # identical members, same A′ seeds: no spread, the same limits
    same = scan(
        masses,
        eps,
        sampler=nominal,
        ensemble=[nominal, ParametricSampler()],
        settings=ScanSettings(**kw),
    )
    np.testing.assert_array_equal(same.acceptance_members[0], same.acceptance_members[1])
    assert [k["rel"] for k in same.kinematic] == [0.0, 0.0]
    for a, b in zip(base.limits, same.limits, strict=True):
        assert a.expected["0"] == pytest.approx(b.expected["0"], rel=1e-6)
    # a harder energy spectrum (narrower rapidity): the spread of two members, std (ddof 1)
    # over mean = |A1 − A2|/√2 / mean, taken at the first pass's median ε_high
    other = ParametricSampler(y_sigma=0.8)
    res = scan(masses, eps, sampler=nominal, ensemble=[nominal, other], settings=ScanSettings(**kw))
    a1, a2 = res.acceptance_members
    mean = 0.5 * (a1 + a2)
    rel = np.abs(a1 - a2) / math.sqrt(2) / np.where(mean > 0, mean, 1.0)  # 0 where both are 0
    for i, row in enumerate(res.kinematic):
        hi = base.boundaries["0"][1][i]
        assert row["eps_high"] == pytest.approx(
            np.interp(np.log(hi), np.log(eps), rel[i]), rel=1e-9
        )
        assert row["rel"] == row["eps_high"]
        assert res.limits[i].expected["0"] > base.limits[i].expected["0"]
    np.testing.assert_array_equal(res.acceptance, base.acceptance)  # the central value


def test_kinematic_record_states_its_own_error():
    """reach.json's kinematic_model row records the members its spread is taken over and the
    spread's own relative error 1/√(2(k − 1)) (the standard deviation of k Gaussian draws):
    three replicas 0.5, eleven 0.224; the rows land at their masses."""
    from types import SimpleNamespace

    from gammastar.reach.stage import _record_kinematic

    for k, want in ((3, 0.5), (11, 1 / math.sqrt(20))):
        inp = SimpleNamespace(
            masses=np.array([0.3, 0.9]), ensemble=[object()] * k,
            ensemble_seeds=list(range(k)), nuisance_record={"nuisances": {}},
        )  # fmt: skip
        rows = [{"mass": 0.9, "rel": 0.03, "eps_low": 0.02, "eps_high": 0.03}]
        _record_kinematic(inp, SimpleNamespace(kinematic=rows))
        kin = inp.nuisance_record["nuisances"]["kinematic_model"]
        assert kin["members"] == k  # an integer count, exact
        assert kin["size_rel_err"] == pytest.approx(want, rel=1e-12)
        assert kin["rel"] == [None, 0.03]  # copied values, exact
        assert kin["at_eps_low"] == [None, 0.02]


def test_ensemble_bad_input(tmp_path):
    from gammastar.errors import GammastarError
    from gammastar.physics.sampling import ParametricSampler
    from gammastar.reach.scan import scan
    from gammastar.reach.scan.settings import ScanSettings

    kw = _scan_kw(tmp_path)
    with pytest.raises(GammastarError, match="at least 2 members"):
        scan(
            [0.3],
            [1e-6, 1e-5],
            sampler=ParametricSampler(),
            ensemble=[ParametricSampler()],
            settings=ScanSettings(**kw),
        )
    with pytest.raises(ConfigError, match=r"kinematic_model: needs enabled"):
        stated_config({"uncertainties": {"kinematic_model": True}})
    from test_reach import make_config

    from gammastar.source.source import Source, ensemble_sources

    cfg = make_config(tmp_path, mass_points=2, channels=["mumu"])
    with pytest.raises(ConfigError, match=r"uncertainties\.kinematic_model: needs reach\.flow"):
        ensemble_sources(cfg, None, Source.from_model(ParametricSampler()))


def test_lambda_errors_read_the_measured_polarisation_block():
    """The λ_θ nuisance takes δλ per mass from yields.json ``polarisation`` as the selection
    writes it (gammastar.corrections.polarisation: ``mass_edges`` and one error per bin, ``null`` where a
    bin has no fit): the error of λ_θ interpolated linearly between the bin centres (the
    bins independent: √(Σ T² σ²)), the config's value only where nothing was measured; a
    negative error is refused."""
    from types import SimpleNamespace

    from gammastar.errors import InputError
    from gammastar.yields.sources import _lambda_errors

    cfg = SimpleNamespace(uncertainties=SimpleNamespace(lambda_theta_err=0.2))
    pol = {"mass_edges": [0.2, 0.4, 0.6, 0.8], "lambda_theta_err": [0.1, None, 0.3]}
    got = _lambda_errors({"polarisation": pol}, np.array([0.3, 0.5, 0.7]), cfg)
    # centres 0.3, 0.5, 0.7; the null bin's λ is the mean of its neighbours': √(0.1² + 0.3²)/2
    np.testing.assert_allclose(got, [0.1, np.hypot(0.1, 0.3) / 2, 0.3], rtol=1e-12)
    none = {"mass_edges": [0.2, 0.4], "lambda_theta_err": [None]}
    np.testing.assert_allclose(_lambda_errors({"polarisation": none}, np.array([0.3]), cfg), [0.2])
    bad = {"mass_edges": [0.2, 0.4], "lambda_theta_err": [-0.1]}
    with pytest.raises(InputError, match="negative"):
        _lambda_errors({"polarisation": bad}, np.array([0.3]), cfg)


def test_lambda_error_is_the_scatter_of_the_acceptances_interpolated_lambda():
    """δλ(m) of the λ_θ nuisance is the spread of the λ_θ(m) that the per-pair acceptance
    uses (PairAcceptance.lambda_nodes: linear between the measured bins' centres, the end
    values beyond) when the bins' λ̂ scatter independently by their errors: 20000 drawn sets
    of λ̂, the sample sd within 5 of its standard errors (1/√(2n) relative: 2.5%). Errors
    interpolated linearly are √2 too large midway (also asserted)."""
    from types import SimpleNamespace

    from gammastar.corrections.pair_acceptance.table import PairAcceptance
    from gammastar.yields.lambda_theta import interpolated_error

    edges = np.array([0.2, 0.3, 0.45, 0.7, 1.1])
    err = np.array([0.05, 0.08, 0.12, 0.2])
    m = np.linspace(0.2, 1.1, 37)
    rng = np.random.default_rng(7)
    n = 20000
    draws = rng.normal(0.0, err, size=(n, err.size))
    table = SimpleNamespace(m_grid=m)
    lam = np.array([PairAcceptance.lambda_nodes(table, edges, d) for d in draws])
    sd = lam.std(axis=0, ddof=1)
    centres = 0.5 * (edges[1:] + edges[:-1])
    want = interpolated_error(m, centres, err)
    np.testing.assert_allclose(sd, want, rtol=5 / np.sqrt(2 * n))
    mid = np.isclose(m, 0.45)  # between the centres 0.375 and 0.575, t = 3/8
    assert np.interp(0.45, centres, err) > 1.2 * want[mid][0]


@pytest.mark.slow
def test_bootstrapped_ensemble_spread_uses_the_replicas(tmp_path, caplog):
    """flow.bootstrap: the kinematic_model spread is taken over the Poisson replicas (members
    ≥ 1), not the nominal fit at their centre; fewer than 2 replicas is one clear error."""
    from types import SimpleNamespace

    from test_flow import make_config as flow_config
    from test_flow import synthetic_pairs

    from gammastar.flow.stage import train
    from gammastar.source.source import ensemble_sources

    pairs = synthetic_pairs(2000, seed=3)

    def cfg_of(out):
        return SimpleNamespace(
            source="a.yaml", reach=SimpleNamespace(flow=str(out)), resolve=lambda p: p
        )

    kw = {"epochs": 1, "bootstrap": True}
    out3 = train(flow_config(tmp_path / "e3", ensemble=3, **kw), pairs=pairs).path
    with caplog.at_level("WARNING", logger="gammastar.yields.uncertainties"):
        sources, seeds = ensemble_sources(cfg_of(out3), None, "nominal")
    # two replicas: the spread's own error 1/√(2(2 − 1)) = 71%, a warning naming the advice
    assert "the spread over the 2 members" in caplog.text
    assert "uncertain by ±71%" in caplog.text
    assert "train >= 10 (flow.ensemble) for ±24%" in caplog.text
    assert seeds == [8, 9]  # members 1 and 2 (training seeds 7 + 1, 7 + 2), not member 0
    assert "nominal" not in sources
    assert all(s.description == "flow ensemble member" for s in sources)
    assert all(
        s.kinematics.meta["meta"]["bootstrap"]["member"] == k
        for k, s in zip((1, 2), sources, strict=True)
    )
    out2 = train(flow_config(tmp_path / "e2", ensemble=2, **kw), pairs=pairs).path
    with pytest.raises(ConfigError, match=r"1 bootstrap replica; train >= 3 members"):
        ensemble_sources(cfg_of(out2), None, "nominal")


# --------------------------------------------------------------------------- acceptance map
def _toy_map(tmp_path=None):
    """A 2-D acceptance map (4 mass × 3 p_T bins) with A from 0.2 to 0.8 and 1000–3000
    generated sources per bin; optionally written as ``acceptance``/``acceptance_generated``."""
    from gammastar.corrections.unfold.acceptance import AcceptanceMap
    from gammastar.corrections.unfold.efficiency import EfficiencyMap

    m_edges, pt_edges = np.array([0.2, 0.4, 0.6, 0.8, 1.0]), np.array([0.0, 0.5, 1.0, 2.0])
    a = np.linspace(0.2, 0.8, 12).reshape(4, 3)
    n = np.linspace(1000, 3000, 12).reshape(4, 3).round()
    if tmp_path is not None:
        import hist
        import uproot

        with uproot.recreate(tmp_path / "map.root") as f:
            for name, vals in (("acceptance", a), ("acceptance_generated", n)):
                h = hist.Hist(hist.axis.Variable(m_edges), hist.axis.Variable(pt_edges),
                              storage=hist.storage.Double())  # fmt: skip
                h.view()[...] = vals
                f[name] = h
    return AcceptanceMap(EfficiencyMap(m_edges, pt_edges, a), n, "toy"), a, n


def test_acceptance_map_variation_is_the_scatter_over_binomial_maps():
    """The propagated map statistics equal the scatter of the yield over 2000 replicas of the
    map, each bin's A re-drawn as Binomial(N_b, A_b)/N_b, with the same pairs (OS weight 1/A,
    like-sign −1/A). Tolerance 6%: the replicas' standard deviation has a standard error of
    1/√(2·2000) ≈ 1.6% (3σ: 5%), and the linearisation of 1/A misses the next order,
    Var(1/Â) ≈ Var(Â)/A⁴ (1 + 3 Var(Â)/A² + …), ≤ 1.2% here (δA/A ≤ 6.3% at A = 0.2,
    N = 1000); with A = 0.1 and N = 300 (δA/A = 17%) it reaches ~10%."""
    from gammastar.yields.variations import acceptance_map_variation

    amap, a, n = _toy_map()
    rng = np.random.default_rng(19)
    k = 20_000
    m = rng.uniform(0.2, 1.0, k)
    pt = rng.exponential(0.5, k).clip(0, 1.99)
    ss = rng.random(k) < 0.15
    i = np.searchsorted(amap.map.m_edges, m, side="right") - 1
    j = np.searchsorted(amap.map.pt_edges, pt, side="right") - 1
    sign = np.where(ss, -1.0, 1.0)
    w = sign / a[i, j]
    edges = np.array([0.2, 0.3, 0.5, 0.7, 1.0])
    r = acceptance_map_variation(m, pt, w, edges, amap)
    reps = rng.binomial(n.astype(int), a, size=(2000, *a.shape)) / n
    # each replica's yield per bin, Σ sign/Â over its pairs, summed per map bin first:
    # Σ_ij (Σ sign of the bin's pairs in map bin ij) / Â_ij (the same sum reordered)
    b = np.searchsorted(edges, m, side="right") - 1
    signs = np.zeros((edges.size - 1, *a.shape))
    np.add.at(signs, (b, i, j), sign)
    yb = np.einsum("rij,bij->rb", 1.0 / reps, signs)
    want = yb.std(axis=0, ddof=1) / np.abs(np.histogram(m, edges, weights=w)[0])
    np.testing.assert_allclose(r, want, rtol=0.06)
    # bins of one map bin are fully correlated: two yield bins inside one map mass bin are not
    # independent, so r is not the independent-pairs √Σ(w δA/A)²; check it is larger
    rel_a = np.sqrt(a * (1 - a) / n) / a
    indep = np.sqrt(np.histogram(m, edges, weights=(w * rel_a[i, j]) ** 2)[0])
    assert np.all(r > indep / np.abs(np.histogram(m, edges, weights=w)[0]))


def test_yields_record_the_acceptance_map_statistics(tmp_path):
    """With ``unfold.acceptance_map`` the yields stage writes ``acceptance_map_stat`` (per mass
    bin, independent between bins) with the size :func:`acceptance_map_variation` gives on the
    pairs; without a map it says why it is not included; a config-computed per-lepton
    acceptance gives 0 and says so."""
    from test_yields import histograms_like_select, write_run

    from gammastar.yields.nuisance import PER_BIN
    from gammastar.yields.sources import _map_statistics
    from gammastar.yields.stage import compute_yields
    from gammastar.yields.variations import acceptance_map_variation

    amap, a, _ = _toy_map(tmp_path)
    run = tmp_path / "run"
    rng = np.random.default_rng(3)
    k = 20_000
    m = rng.uniform(0.2113, 0.999, k)
    pt = rng.exponential(0.5, k).clip(0, 1.99)
    q = rng.choice([0, 2, -2], size=k, p=[0.8, 0.1, 0.1]).astype(np.int8)
    i = np.searchsorted(amap.map.m_edges, m, side="right") - 1
    j = np.searchsorted(amap.map.pt_edges, pt, side="right") - 1
    w = np.where(q == 0, 1.0, -1.0) / a[i, j]
    import pandas as pd

    pairs = pd.DataFrame({"m": m, "weight": w, "charge": q, "weight_raw": np.ones(k),
                          "pT": pt, "pz": np.full(k, 20.0)})  # fmt: skip
    write_run(run, pairs, histograms_like_select(pairs))
    cfg = stated_config({
        "output": str(run), "beam": {"n_pot": 1e13},
        "unfold": {"acceptance_map": str(tmp_path / "map.root")},
        "uncertainties": {"enabled": True, "r_factor_rel_err": 0.01},
    })  # fmt: skip
    compute_yields(cfg, plots=False, theory=False)
    doc = json.loads((run / "yields.json").read_text())
    nu = doc["uncertainties"]["nuisances"]["acceptance_map_stat"]
    edges = np.array(doc["aprime"]["bin_edges"])
    want = acceptance_map_variation(m, pt, w, edges, amap)
    got = np.array([np.nan if v is None else v for v in nu["rel"]], float)
    ok = np.isfinite(want)
    np.testing.assert_allclose(got[ok], want[ok], rtol=1e-9)
    assert np.all(got[ok] > 0)
    assert nu["correlation"] == PER_BIN
    assert "binomial" in nu["origin"]
    # no map: not included, with the reason
    run2, _, cfg2 = _yields_run(tmp_path / "b", r_factor_rel_err=0.05)
    compute_yields(cfg2, plots=False, theory=False)
    doc2 = json.loads((run2 / "yields.json").read_text())
    assert "no acceptance map" in doc2["uncertainties"]["not_included"]["acceptance_map_stat"]
    # a per-lepton acceptance from configured cuts: zero, said so (the yield_uncertainties
    # hook alone; the full fiducial chain is tested in test_fiducial.py)
    cfg3 = stated_config({
        "unfold": {"lepton_acceptance": {"min_energy": 3.0, "theta_min": 0.035,
                                         "theta_max": 0.12}},
        "uncertainties": {"enabled": True, "r_factor_rel_err": 0.01, "lambda_theta_err": 0.0},
    })  # fmt: skip
    out, skipped = {}, {}
    _map_statistics(cfg3, None, edges, doc["aprime"]["mass"], out, skipped)
    # set to np.zeros by construction (no map, no statistics): exact zeros, not a computed 0
    assert out["acceptance_map_stat"].up.tolist() == [0.0] * len(doc["aprime"]["mass"])
    assert "no error" in out["acceptance_map_stat"].origin


def test_acceptance_map_variation_3d_with_one_rapidity_bin_is_the_2d():
    """A 3-D map (m, p_T, y) whose one rapidity bin spans every pair is the 2-D map: the same
    propagated size (to rounding: the same sums in the same order)."""
    from gammastar.corrections.unfold.acceptance import AcceptanceMap3D
    from gammastar.yields.variations import acceptance_map_variation

    amap, a, n = _toy_map()
    m3 = AcceptanceMap3D(amap.map.m_edges, amap.map.pt_edges, np.array([-20.0, 20.0]),
                         a[:, :, None], n[:, :, None], "toy3d")  # fmt: skip
    rng = np.random.default_rng(5)
    m, pt = rng.uniform(0.2, 1.0, 3000), rng.exponential(0.5, 3000).clip(0, 1.99)
    w = (
        1.0
        / a[np.searchsorted(amap.map.m_edges, m) - 1, np.searchsorted(amap.map.pt_edges, pt) - 1]
    )
    edges = np.array([0.2, 0.5, 1.0])
    r2 = acceptance_map_variation(m, pt, w, edges, amap)
    r3 = acceptance_map_variation(m, pt, w, edges, m3, pz=rng.uniform(5, 50, 3000))
    np.testing.assert_allclose(r3, r2, rtol=1e-12)


def test_impact_plot_takes_a_log_axis_when_a_nuisance_moves_s_up_by_factors():
    """The ranking plot (:func:`gammastar.reach.impact.plot_impact`): the relative shift on a
    linear axis while every ±1σ moves s_up by less than a factor 1.5 (the demo), the ratio on a
    logarithmic one beyond (the NA62-like extrapolation: 0.01–1.4), its range holding every
    point; the +1σ markers are where the table puts them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gammastar.reach.impact import plot_impact

    def table(up, dn):
        return {"mass": [0.3, 0.6], "nominal": {"s_up": [2.0, 4.0]},
                "nuisances": {"a": {"+1": {"s_up": up}, "-1": {"s_up": dn}},
                              "b": {"+1": {"s_up": [2.0, 4.0]}, "-1": {"s_up": [2.0, 4.0]}}}}  # fmt: skip

    fig = plot_impact(table([1.8, 3.6], [2.2, 4.4]))
    ax = fig.axes[0]
    assert ax.get_xscale() == "linear"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["b", "a"]  # largest last (top)
    np.testing.assert_allclose(ax.collections[0].get_offsets()[:, 0], [0.0, -0.1])
    plt.close(fig)
    fig = plot_impact(table([0.02, 3.6], [2.8, 4.4]))
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    lo, hi = ax.get_xlim()
    assert lo < 0.01  # symmetric in ln around 1, 15% beyond the farthest
    assert hi > 100.0
    np.testing.assert_allclose(ax.collections[0].get_offsets()[:, 0], [1.0, 0.01])
    plt.close(fig)


class _LinearTable:
    """A stand-in per-pair acceptance A = a(p_T) + 0.1·λ_θ(m), λ_θ linear between three mass
    nodes, with the table's λ interface (``with_lambda``, ``lambda_nodes``)."""

    m_grid = np.array([0.2, 0.5, 0.8])

    def __init__(self, lam=0.0):
        self.lambda_theta = np.broadcast_to(np.asarray(lam, dtype=float), (3,))

    def lookup(self, m, pt, pz):
        base = np.where(np.asarray(pt) > 1.5, 0.045, 0.06)
        return base + 0.1 * np.interp(m, self.m_grid, self.lambda_theta)

    def with_lambda(self, lam):
        return _LinearTable(lam)

    def lambda_nodes(self, mass_edges, values):
        from gammastar.corrections.pair_acceptance.table import PairAcceptance

        return PairAcceptance.lambda_nodes(self, mass_edges, values)


def test_lambda_theta_moving_variation_moves_the_region_with_each_bin():
    """Each polarisation bin's λ̂ moved alone; pairs cross A = min_acceptance both ways:
    entering ones weigh 1/ε (OS) or the bin's like-sign factor / ε (SS) over A_λ′; the bins'
    changes add in quadrature (hand-computed from A = a(p_T) + 0.1 λ(m))."""
    from gammastar.yields.lambda_theta import lambda_theta_moving_variation

    a = 0.06
    pairs = {  # p1 in F, p2 (OS) and p4 (SS) outside it, p5 SS in F (factor 0.8), p6, p3
        "m": [0.2, 0.2, 0.2, 0.2, 0.5, 0.8],
        "pT": [1, 2, 2, 1, 1, 1],
        "pz": [50] * 6,
        "charge": [0, 0, 2, -2, 0, 0],
        "eff": [1.0, 0.5, 1.0, 1.0, 1.0, 1.0],
        "acc": [a, 0.045, 0.045, a, a, a],
        "weight": [1 / a, 0.0, 0.0, -0.8 / a, 1 / a, 1 / a],
    }
    pol = {"mass_edges": [0.2, 0.5, 0.8], "lambda_theta": [0.0, 0.0],
           "lambda_theta_err": [0.08, 0.16]}  # fmt: skip
    up, down = lambda_theta_moving_variation(
        pairs, [0.1, 0.45, 0.55, 0.9], _LinearTable(), pol, min_acceptance=0.05
    )
    y0 = 1 / a - 0.8 / a
    # bin 0 up: λ′(0.2) = 0.08, A 0.068 in F and 0.053 for the entering pairs (bin 1 leaves
    # λ(0.2) alone)
    want_up0 = (1 / 0.068 + 2 / 0.053 - 0.8 / 0.053 - 0.8 / 0.068) / y0 - 1
    want_down0 = (1 / 0.052 - 0.8 / 0.052) / y0 - 1  # A 0.052: still inside; 0.037: still out
    # 0.5 GeV, half-way between the bins' centres: λ′ = ±0.04 (bin 0) and ±0.08 (bin 1)
    d_up = [a / (a + 0.004) - 1, a / (a + 0.008) - 1]
    d_down = [a / (a - 0.004) - 1, a / (a - 0.008) - 1]
    np.testing.assert_allclose(up[0], want_up0, rtol=1e-12)
    np.testing.assert_allclose(down[0], want_down0, rtol=1e-12)
    np.testing.assert_allclose(up[1], -np.hypot(*d_up), rtol=1e-12)
    np.testing.assert_allclose(down[1], np.hypot(*d_down), rtol=1e-12)
    # 0.8 GeV: bin 1 moves λ by ±0.16: A 0.076, and 0.044 < min_acceptance (the pair leaves)
    np.testing.assert_allclose([up[2], down[2]], [a / 0.076 - 1, -1.0], rtol=1e-12)
    # no measured error: no change
    zero = dict(pol, lambda_theta_err=[None, 0.0])
    z = lambda_theta_moving_variation(
        pairs, [0.1, 0.45, 0.55, 0.9], _LinearTable(), zero, min_acceptance=0.05
    )
    np.testing.assert_array_equal(np.concatenate(z), 0.0)  # assigned zeros, not computed


def test_lambda_theta_moving_variation_edge_cases():
    """A bin with a λ̂ but no error is a node held in place (the selection's λ_θ(m) passes
    through it): only the other bin moves, and the pairs it does not reach do not change; an
    entering pair with an unusable ε (NaN, 0) weighs 0 instead of blanking the yield's bins;
    an opposite-sign pair entering the region takes its bin's opposite-sign factor (here 0.5:
    a stand-in for a conversion or η-rate scale the selection applies)."""
    from gammastar.yields.lambda_theta import (
        acceptance_free_weights,
        lambda_theta_moving_variation,
    )

    a = 0.06
    pairs = {
        "m": [0.2, 0.2, 0.2, 0.8], "pT": [1, 2, 2, 1], "pz": [50] * 4,
        "charge": [0, 0, 0, 0], "eff": [1.0, np.nan, 0.0, 1.0], "acc": [a, 0.045, 0.045, a],
        "weight": [0.5 / a, 0.0, 0.0, 1 / a],
    }  # fmt: skip
    pol = {"mass_edges": [0.2, 0.5, 0.8], "lambda_theta": [0.0, 0.0],
           "lambda_theta_err": [0.08, None]}  # fmt: skip
    up, down = lambda_theta_moving_variation(
        pairs, [0.1, 0.5, 0.9], _LinearTable(), pol, min_acceptance=0.05
    )
    # bin 0 up: p1 at A 0.068; the entering pairs' ε are unusable: weight 0
    np.testing.assert_allclose([up[0], down[0]], [a / 0.068 - 1, a / 0.052 - 1], rtol=1e-12)
    # λ(0.8) held at λ̂: no change, to the rounding of the bin sums (np.histogram with unequal
    # edges takes them from one cumulative sum over every pair: ~1e-16 of the largest bin's)
    np.testing.assert_allclose([up[1], down[1]], [0.0, 0.0], atol=1e-13)
    # the opposite-sign factor of an entering pair: its bin's in-region median (0.5 here)
    base = acceptance_free_weights([0.5 / a, 0.0], [a, 0.045], [1.0, 0.5], [0, 0], [0, 0])
    np.testing.assert_allclose(base, [0.5, 1.0])


def test_lambda_record_at_nsig_level_keeps_the_yields_size():
    """reach.json's ``acceptance_lambda_theta`` after a scan with the refits: the N-level size
    at each mass the scan reached, the yield's kept as ``rel_yield``, the origin saying so;
    ``extrapolation`` untouched when the scan has no row of its own."""
    from types import SimpleNamespace

    from gammastar.reach.stage import _record_extrapolation

    rec = {"nuisances": {
        "acceptance_lambda_theta": {"rel": [0.01, 0.04], "origin": "yield"},
        "extrapolation": {"rel": [0.1, 0.2], "origin": "yield's δf/f"}}}  # fmt: skip
    inp = SimpleNamespace(masses=np.array([0.3, 0.6]), nuisance_record=rec)
    rows = [{"mass": 0.3, "rel": 0.02, "eps_low": 0.015, "eps_high": 0.02}]
    _record_extrapolation(inp, SimpleNamespace(extrapolation_nsig=None, lambda_theta_nsig=rows))
    lam = rec["nuisances"]["acceptance_lambda_theta"]
    assert lam["rel"] == [0.02, 0.04]  # copied values, exact
    assert lam["rel_yield"] == [0.01, 0.04]
    assert lam["at_eps_low"] == [0.015, None]
    assert "carried to N_sig" in lam["origin"]
    assert rec["nuisances"]["extrapolation"] == {"rel": [0.1, 0.2], "origin": "yield's δf/f"}


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ({"mass": [0.3], "moves": []}, r"lambda_edges: missing"),
        ({"mass": [0.3], "lambda_edges": [0.2, 0.4], "moves": [{"sign": 2}]}, r"moves\[0\]\.sign"),
        (
            {
                "mass": [0.3],
                "lambda_edges": [0.2, 0.4],
                "moves": [{"sign": 1, "fit": {}, "yield_shift": [0.1, 0.2], "lambda_shift": [0.1]}],
            },
            r"moves\[0\]\.yield_shift: needs one value per mass",
        ),
    ],
)
def test_a_bad_lambda_refits_block_is_a_one_line_error(bad, match):
    """A yields.json whose ``uncertainties.lambda_theta_refits`` the reach cannot read (a key
    missing, a sign that is not ±1, a yield_shift of the wrong length): one line naming the
    file and the key."""
    from gammastar.errors import InputError
    from gammastar.yields.nuisance import read_uncertainties

    doc = {"uncertainties": {"mass": [0.3], "nuisances": {}, "lambda_theta_refits": bad}}
    with pytest.raises(InputError, match=rf"y\.json: uncertainties\.lambda_theta_refits\.{match}"):
        read_uncertainties(doc, source="y.json")


def test_lambda_refits_at_marks_the_moves_that_change_nothing_there():
    """A move is ``null`` at a mass when the yield bins around it (the two centres that
    bracket it, NaN bins skipped) did not move at all: λ′ = λ̂ for their pairs. Its interpolated
    shift is then 0; a move with a shift in either bracketing bin is not null."""
    from gammastar.yields.lambda_theta import lambda_refits_at

    blk = {"mass": [0.3, 0.4, 0.5, 0.6], "moves": [
        {"sign": 1, "yield_shift": [0.0, 0.0, 0.02, None], "fit": {}},
        {"sign": -1, "yield_shift": [0.01, 0.0, 0.0, 0.0], "fit": {}}]}  # fmt: skip
    at = {m: lambda_refits_at(blk, m, [None, None]) for m in (0.35, 0.45, 0.55, 0.7)}
    assert [mv["null"] for mv in at[0.35]] == [True, False]
    assert [mv["null"] for mv in at[0.45]] == [False, True]
    assert [mv["null"] for mv in at[0.55]] == [False, True]  # 0.6 is NaN: 0.5 brackets alone
    assert at[0.55][0]["yield_shift"] == pytest.approx(0.02, rel=1e-12)
    assert [mv["null"] for mv in at[0.7]] == [False, True]
