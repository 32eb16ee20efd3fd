"""pyhf workspaces and CLs limits (gammastar.reach.stats)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from _phys_pyhf import pyhf_cls
from scipy import integrate, optimize, stats

from gammastar.core.artifacts import write_json
from gammastar.errors import GammastarError
from gammastar.reach.stats import cls, upper_limit
from gammastar.reach.stats.interface import BANDS
from gammastar.reach.stats.model import Channel, Model
from gammastar.reach.stats.workspace import build_spec, load_workspace, quiet_pyhf, validate_spec


def zero_obs(b=1e-9, n_pot_unc=0.0, **kw):
    return Model([Channel("mumu", [1.0], [b], observed=[0], **kw)], n_pot_unc=n_pot_unc)


def test_zero_observed_no_background_no_systematics_is_2_30():
    # textbook: CLs = e^{-s} for n = 0, b → 0: s_up = ln 10 = 2.303 (90%), ln 20 = 2.996 (95%)
    r90 = upper_limit(zero_obs(), cl=0.9, method="exact")
    assert r90.observed == pytest.approx(math.log(10), rel=1e-6)
    assert all(r90.expected[b] == pytest.approx(math.log(10), rel=1e-6) for b in BANDS)
    assert upper_limit(zero_obs(), cl=0.95).observed == pytest.approx(math.log(20), rel=1e-6)
    assert r90.method == "exact"


def test_twenty_percent_n_pot_uncertainty():
    # hybrid CLs with the log-normal N_POT (median 1, shape 1.2 as NA62 App. B):
    # ∫ φ(x) exp(−s 1.2^x) dx = 0.1, solved independently with adaptive quadrature
    def clsb(s):
        f = lambda x: stats.norm.pdf(x) * math.exp(-s * 1.2**x)
        return integrate.quad(f, -12, 12)[0]

    ref = optimize.brentq(lambda s: clsb(s) - 0.1, 2.0, 3.0)
    got = upper_limit(zero_obs(n_pot_unc=0.2), cl=0.9, method="exact").observed
    assert got == pytest.approx(ref, rel=1e-4)
    # the number docs/explanation/physics.md §10 and explanation/reach.md §4 quote (tests/test_docs.py
    # checks that they quote this one): 2.353 to their three digits
    assert got == pytest.approx(2.353, abs=5e-4)


def test_poisson_closed_form_with_background():
    # one bin, no systematics: the LR ordering is n itself, CLs = P(n≤k|s+b)/P(n≤k|b)
    b, k = 3.0, 3
    m = Model([Channel("mumu", [1.0], [b], observed=[k])], n_pot_unc=0.0)
    for s in (1.0, 4.0, 8.0):
        expected = stats.poisson.cdf(k, s + b) / stats.poisson.cdf(k, b)
        assert cls(m, s, method="exact")["CLs_obs"] == pytest.approx(expected, rel=1e-9)
    r = upper_limit(m, cl=0.9, method="exact")
    assert stats.poisson.cdf(k, r.observed + b) / stats.poisson.cdf(k, b) == pytest.approx(0.1)
    exp = [r.expected[x] for x in BANDS]
    assert exp == sorted(exp)
    assert exp[0] < exp[-1]


def test_asymptotics_fail_at_low_counts():
    # pyhf asymptotic limit for 0 observed over 0.0094 background: ≈ 1.4 events, not 2.30
    m = Model([Channel("ee", [1.0], [0.0094], observed=[0])], n_pot_unc=0.0)
    r = upper_limit(m, cl=0.9, method="asymptotic")
    assert 1.2 < r.observed < 1.6
    assert upper_limit(m, cl=0.9, method="auto").method == "exact"


@pytest.mark.slow
def test_exact_agrees_with_pyhf_toys():
    # single bin, no systematics: q̃_μ and the LR order outcomes alike; 300 toys
    m = Model([Channel("mumu", [1.0], [0.5], observed=[1])], n_pot_unc=0.0)
    mu = 3.0
    ex = cls(m, mu, method="exact")["CLs_obs"]
    toy = cls(m, mu, method="toys", ntoys=300, seed=7)
    clsb = stats.poisson.cdf(1, mu + 0.5)
    err = math.sqrt(clsb * (1 - clsb) / 300) / stats.poisson.cdf(1, 0.5)
    assert toy["CLs_obs"] == pytest.approx(ex, abs=4 * err)
    assert toy["method"] == "toys"


def test_cls_equals_pyhf_cls_on_the_written_workspace(tmp_path):
    # gammastar's asymptotic CLs equals `pyhf cls` run on the written file
    model = Model(
        [
            Channel("mumu", [0.6], [40.0], observed=[45], bkg_kappa=1.125, eff_unc=0.029),
            Channel("ee", [0.4], [25.0], observed=[22], bkg_kappa=1.3, eff_unc=0.029),
        ],
        n_pot_unc=0.2,
    )
    path = write_json(tmp_path / "ws.json", build_spec(model.normalised()))
    ours = cls(model, 12.0, method="asymptotic")
    theirs = pyhf_cls(path, "--test-poi", "12.0")
    assert ours["CLs_obs"] == pytest.approx(theirs["CLs_obs"], rel=1e-6)
    np.testing.assert_allclose(ours["CLs_exp"], theirs["CLs_exp"], rtol=1e-6)
    # and the same through the python API on the file
    ws = load_workspace(str(path))
    assert cls(ws, 12.0)["CLs_obs"] == pytest.approx(theirs["CLs_obs"], rel=1e-6)


def test_channels_share_one_n_pot_parameter():
    one = zero_obs(n_pot_unc=0.2)
    two = Model(
        [
            Channel("mumu", [0.5], [1e-9], observed=[0]),
            Channel("ee", [0.5], [1e-9], observed=[0]),
        ],
        n_pot_unc=0.2,
    )
    ws = validate_spec(build_spec(two))
    with quiet_pyhf():  # pyhf 0.7.6 touches a deprecated jsonschema API
        pars = ws.model().config.par_names
    assert pars.count("n_pot") == 1
    # fully correlated N_POT: splitting the signal over two empty channels changes nothing
    assert upper_limit(two, method="exact").observed == pytest.approx(
        upper_limit(one, method="exact").observed, rel=1e-6
    )


def test_spec_is_schema_valid_and_bad_specs_are_clear_errors(tmp_path):
    spec = build_spec(zero_obs(b=0.016, n_pot_unc=0.2, bkg_kappa=1.125, eff_unc=0.029))
    ws = validate_spec(spec)
    with quiet_pyhf():
        assert ws.model().config.poi_name == "n_signal"
    bad = json.loads(json.dumps(spec))
    bad["channels"][0]["samples"][0]["modifiers"][1]["type"] = "bogus"
    with pytest.raises(GammastarError, match="invalid pyhf workspace"):
        validate_spec(bad)
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(GammastarError, match="not a readable JSON"):
        load_workspace(str(tmp_path / "x.json"))
    with pytest.raises(GammastarError, match="signal template is empty"):
        Model([Channel("mumu", [0.0], [1.0])])
    with pytest.raises(GammastarError, match="unknown statistics method"):
        upper_limit(zero_obs(), method="bayes")
    with pytest.raises(GammastarError, match="bins"):
        Channel("mumu", [1.0, 2.0], [1.0])


def test_expected_only_model_uses_asimov_background():
    m = Model([Channel("mumu", [1.0], [0.016], bkg_kappa=1.125)], n_pot_unc=0.2)
    spec = build_spec(m)
    assert spec["observations"][0]["data"] == [0.016]
    r = upper_limit(m, cl=0.9)
    assert r.observed is None
    # NA62: P(0 | 0.016) = 98.4%: every band up to +2σ (97.7%) is the n = 0 limit
    assert r.expected["+2"] == pytest.approx(r.expected["0"])


def test_mass_template_workspace():
    from gammastar.reach.signal import MassModelSettings, mass_model

    settings = MassModelSettings(
        channels=("mumu", "ee"),
        background={"mumu": 0.016, "ee": 0.0094},
        background_kappa={"mumu": 1.0, "ee": 1.0},
        efficiency_uncertainty=0.0,
        template="mass",
        mass_resolution=0.005,
        mass_bins=6,
        n_pot_unc=0.0,
    )
    m = mass_model(0.4, settings, observed={"mumu": 0, "ee": 0}, mass_range=(0.2, 1.1))
    assert m.channels[0].signal.size == 6
    total = sum(c.signal.sum() for c in m.channels)
    assert total == pytest.approx(1.0)
    # the signal peaks in the central bins; the background is flat over the window
    assert m.channels[0].signal[2] > m.channels[0].signal[0]
    assert np.allclose(m.channels[0].background, m.channels[0].background[0])
    validate_spec(build_spec(m))
    r = upper_limit(m, cl=0.9)
    assert r.method == "exact"
    assert r.observed == pytest.approx(math.log(10), rel=2e-3)  # b ≈ 0: the counting limit


def test_auto_is_one_rule_over_the_method_registry():
    """ "auto" (module docstring): exact where the counts can be enumerated, else asymptotic
    where every background bin has >= 10 events (pyhf's asymptotics hold), else toys; one rule,
    used by choose_method, upper_limit and cls alike."""
    from gammastar.reach.stats import choose_method

    low = zero_obs(b=0.5)
    assert choose_method(low) == "exact"
    assert upper_limit(low, method="auto").method == "exact"
    assert cls(low, 2.0, method="auto")["method"] == "exact"
    # 12 bins of 1000 events each: far too many count configurations to enumerate
    big = Model([Channel("mumu", np.full(12, 1 / 12), np.full(12, 1000.0))], n_pot_unc=0.0)
    assert choose_method(big) == "asymptotic"
    assert choose_method(big, "toys") == "toys"
    with pytest.raises(GammastarError, match="unknown statistics method 'bayes'"):
        choose_method(low, "bayes")


def test_a_method_is_one_registry_entry(monkeypatch):
    """Adding a statistical method is one entry of gammastar.reach.stats.METHODS (upper_limit,
    cls and the "auto" rule, in registry order, take it from there) and its name in
    ``gammastar.config.reach.StatsMethod`` (the config sits below the reach and names them)."""
    import typing

    from gammastar.config import config_from_dict
    from gammastar.config.reach import StatsMethod
    from gammastar.errors import ConfigError
    from gammastar.reach import stats
    from gammastar.reach.stats.interface import LimitResult, Method

    assert set(typing.get_args(StatsMethod)) == {"auto", *stats.METHODS}
    with pytest.raises(ConfigError, match=r"reach\.method"):
        config_from_dict({"name": "t", "reach": {"method": "fixed"}})
    fixed = Method(
        "fixed",
        "a fixed limit of 7 events (a test)",
        limit=lambda req: LimitResult(req.cl, "fixed", dict.fromkeys(BANDS, 7.0)),
        cls=lambda req, n: (None, [float(n < 7)] * 5),
        auto=lambda req: True,
    )
    monkeypatch.setattr(stats, "METHODS", {"fixed": fixed, **stats.METHODS})
    low = zero_obs(b=0.5)
    assert upper_limit(low, method="fixed").expected["0"] == 7.0
    assert upper_limit(low).method == "fixed"  # first in the registry: auto takes it
    assert cls(low, 3.0, method="fixed")["CLs_exp"] == [1.0] * 5


def _lognormal_zero_b_limit(sigma_sig, n_pot_unc=0.2, alpha=0.1):
    # b = 0, 0 observed: CLs(s) = E[exp(-s K0 Kc)] over the log-normal N_POT (shape 1 + u) and
    # signal (shape 1 + r) nuisances, with the quadrature the exact method documents
    # (Gauss-Hermite, 20 nodes for N_POT, 5 for the signal), solved independently here
    x0, w0 = np.polynomial.hermite_e.hermegauss(20)
    xs, ws = np.polynomial.hermite_e.hermegauss(5)
    k = np.exp(math.log1p(n_pot_unc) * x0)[:, None] * np.exp(sigma_sig * xs)[None, :]
    w = (w0 / w0.sum())[:, None] * (ws / ws.sum())[None, :]
    f = lambda ls: float((w * np.exp(-math.exp(ls) * k)).sum()) - alpha
    return math.exp(optimize.brentq(f, 0.0, math.log(1e7), xtol=1e-10))


@pytest.mark.parametrize("r", [0.3, 500.0])
def test_huge_relative_yield_error_with_zero_background(r):
    # regression: `gammastar run analysis/na60_like_ee.yaml` died in the reach with
    # "cannot convert float NaN to integer": a mass bin whose A' yield is consistent with zero
    # has a relative error r ~ 500 (reach passes it as mc_stat); exp(r x) at the quadrature
    # nodes overflowed, 0 x inf gave NaN probabilities, CLs stuck at 1 and the limit search
    # ran to n_signal ~ 1e25. r enters as a log-normal of shape 1 + r, like eff_unc.
    sigma = math.sqrt(math.log1p(0.029) ** 2 + math.log1p(r) ** 2)
    ref = _lognormal_zero_b_limit(sigma)
    one = Model([Channel("ee", [1.0], [0.0], eff_unc=0.029, mc_stat=r)])
    # a second bin without signal or background changes nothing, but it takes the
    # enumerated path (t, CLs+b over count configurations) where the crash was
    two = Model([Channel("ee", [0.0, 1.0], [0.0, 0.0], eff_unc=0.029, mc_stat=r)])
    for model in (one, two):
        res = upper_limit(model, cl=0.9, method="exact")
        for b in BANDS:  # brentq xtol 1e-6 on ln s in the method
            assert res.expected[b] == pytest.approx(ref, rel=1e-5)
    # ee + mumu, both b = 0: two independent signal nuisances average out, so the limit lies
    # between the one without signal uncertainty and the one-channel limit
    both = Model(
        [
            Channel("ee", [0.7], [0.0], eff_unc=0.029, mc_stat=r),
            Channel("mumu", [0.3], [0.0], eff_unc=0.029, mc_stat=r),
        ]
    )
    lim = upper_limit(both, cl=0.9, method="exact").expected["0"]
    assert _lognormal_zero_b_limit(math.log1p(0.029)) < lim < ref


def test_exact_cls_finite_at_overflowing_signal_over_background():
    # mu s / b overflows (b = 0 floored at 1e-300, mu = 1e12): t must stay finite; every
    # count configuration with t <= t_ref is "no event", whose probability under s + b is
    # E[exp(-1e12 K0)] = 0 to double precision (K0 >= 1.2^-7.7 at the outermost node)
    two = Model([Channel("ee", [0.0, 1.0], [0.0, 0.0])])
    out = cls(two, 1e12, method="exact")
    assert all(0.0 <= v < 1e-12 for v in out["CLs_exp"])


def test_mc_stat_must_be_finite_and_non_negative():
    for bad in (-0.1, float("nan")):
        with pytest.raises(GammastarError, match="mc_stat"):
            Channel("ee", [1.0], [0.0], mc_stat=bad)
