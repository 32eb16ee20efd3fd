"""The forward closure's helpers (:mod:`gammastar_validation.forward`) and the truth's
importance sampling by channel (:func:`gammastar_validation.truth.truth_gstar` ``window``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gammastar.config import config_from_dict
from gammastar.mock.cocktail import EE_CHANNELS
from gammastar.physics.constants import mass

REPO = Path(__file__).resolve().parents[2]
EPS64 = np.finfo(np.float64).eps


def _ee_config():
    return config_from_dict(
        {"input": {"lepton": "e"}, "mock": {"leptons": ["e"], "efficiency_map": None}}
    )


def test_window_truth_is_the_whole_cocktails_in_the_window():
    """Importance sampling by channel loses nothing and keeps the normalisation: every true
    γ* of a full dielectron cocktail inside a window comes from a channel that
    ``channels_in_window`` keeps, and the window's γ* per POT of the restricted sample equals
    the full sample's within 4σ of their Poisson errors (the two are independent samples);
    at 0.2 GeV (no π0 Dalitz) the restricted sample holds many times more γ* per source."""
    from gammastar_validation.truth import channels_in_window, truth_gstar

    cfg = _ee_config()
    full = truth_gstar(cfg, 200_000, seed=3)
    for lo, hi in ((0.018, 0.022), (0.185, 0.215), (0.28, 0.32)):
        inside = (full.m > lo) & (full.m < hi)
        allowed = set(channels_in_window(EE_CHANNELS, lo, hi))
        assert set(np.unique(full.channel[inside]).tolist()) <= allowed
        win = truth_gstar(cfg, 200_000, seed=4, window=(lo, hi))
        assert np.all((win.m > lo) & (win.m < hi))
        n_full, n_win = int(inside.sum()), win.m.size
        assert n_full > 50
        rate_full, rate_win = n_full / full.n_pot, n_win / win.n_pot
        err = np.hypot(rate_full / np.sqrt(n_full), rate_win / np.sqrt(n_win))
        assert abs(rate_win - rate_full) < 4 * err
        if lo > 0.14:  # the π0 → γee (most of the cocktail) cannot reach it
            assert n_win > 5 * n_full


def test_truth_samplers_draw_more_sources_below_the_pi0_mass():
    """``truth_samplers``: a window below the π⁰ mass (PDG, from ``particle``), fed only by
    Dalitz γ*, is drawn from :data:`LIGHT_SOURCES` times the sources: its sample is that many
    times the same window's from ``sources`` (within 5σ of the Poisson counts), and one above
    the π⁰ mass the same size."""
    from gammastar_validation.forward import LIGHT_SOURCES, truth_samplers, window_half_width
    from gammastar_validation.truth import truth_gstar

    cfg = _ee_config()
    below, above = 0.05, 0.2
    assert below < mass("pi0") < above
    got = truth_samplers(cfg, [below, above], 20_000, seed=5, tilt=0)
    for m, k in ((below, LIGHT_SOURCES), (above, 1)):
        hw = window_half_width(m)
        plain = truth_gstar(cfg, 20_000, seed=9, window=(m - hw, m + hw)).m.size
        assert plain > 100
        n = got[m].size
        assert abs(n - k * plain) < 5 * np.sqrt(n + k * k * plain)


def test_window_sampler_serves_each_true_gstar_once_at_the_exact_mass():
    """``WindowSampler``: successive draws are disjoint and together the whole window; a
    repeated seed serves the same γ*; E is rescaled to the asked mass at fixed momentum
    (|p|² = E² − m² unchanged to float precision: two roundings of E² ~ (10 GeV)²)."""
    from gammastar_validation.forward import WindowSampler

    rng = np.random.default_rng(1)
    qt, m = rng.uniform(0, 1, 10), rng.uniform(0.29, 0.31, 10)
    e = np.sqrt(rng.uniform(1, 100, 10) + m**2)
    w = WindowSampler(qt, e, m, seed=2)
    a = w.sample(0.3, 6, seed=1)
    assert np.array_equal(w.sample(0.3, 6, seed=1)["qT"], a["qT"])  # the same stored γ*: copies
    b = w.sample(0.3, 4, seed=2)
    assert sorted(np.concatenate([a["qT"], b["qT"]]).tolist()) == sorted(qt.tolist())
    order = np.argsort(qt)
    got_q = np.concatenate([a["qT"], b["qT"]])
    got_e = np.concatenate([a["E"], b["E"]])
    back = np.argsort(got_q)
    p2_got = got_e[back] ** 2 - 0.3**2
    p2_want = e[order] ** 2 - m[order] ** 2
    assert np.allclose(p2_got, p2_want, rtol=0, atol=4 * EPS64 * 100.0)
    with pytest.raises(ValueError, match="asked"):
        w.sample(0.3, 1, seed=3)


def test_acceptance_mean_of_one_momentum_is_the_decay_probability():
    """``acceptance_mean`` on identical A′ (one q_T, E: every sample the same decay-length
    distribution) in a window geometry whose polar window holds them: the mean is
    e^{−l1/ℓ} − e^{−l2/ℓ}, ℓ = (p_z/m) cτ (paper Eq. B1), to float precision over the chunks
    (≈ 10 roundings per sample, the chunk sums of 10⁴ samples: tolerance 10⁵ ε); the error
    of the mean is 0 and every sample carries it (n_eff = n)."""
    from gammastar.source.geometry import Geometry
    from gammastar_validation.forward import acceptance_mean

    class Fixed:
        mass_range = (0.01, 2.0)

        def sample(self, mass, n, seed=None):
            return {"qT": np.full(n, 0.5), "E": np.full(n, np.sqrt(50.0**2 + mass**2))}

    geo = Geometry(l1=10.0, l2=40.0, theta_min=0.0, theta_max=0.1)
    ct = np.array([0.1, 1.0, 10.0])
    m = 0.3
    got = acceptance_mean(Fixed(), m, 10_000, geo, ("mumu",), ct, seed=5, chunk=3_000)
    pz = np.sqrt(50.0**2 - 0.5**2)
    ell = pz / m * ct
    want = np.exp(-10.0 / ell) - np.exp(-40.0 / ell)
    assert np.allclose(got.value, want, rtol=1e5 * EPS64, atol=0)
    assert np.all(got.error <= 1e3 * EPS64 * want)
    assert np.allclose(got.n_eff, 10_000, rtol=1e5 * EPS64)


def test_facility_ctaus_find_the_analytic_edges():
    """On N(ε) = N_POT Y ε² exp(−(ε/ε0)²) (a long-lifetime rise and an exponential fall) the
    ε_low and ε_high of ``facility_ctaus`` are the roots of N = −ln(1 − cl) (solved by
    bisection here) to the log-log interpolation's accuracy on a 400-point grid (the curve's
    second derivative in ln ε over a step of ln(10⁶)/400: 10⁻³ relative); a facility that
    excludes nothing gets the N_max/10 level and ``excluded`` false."""
    from types import SimpleNamespace as NS

    from scipy.optimize import brentq

    from gammastar_validation.forward import facility_ctaus

    cfg = NS(reach=NS(n_pot=1e18, cl=0.9))
    eps = np.geomspace(1e-9, 1e-3, 400)
    e0 = 1e-5
    acc = np.exp(-((eps / e0) ** 2))
    out = facility_ctaus(cfg, 0.3, 1e-3, eps, acc, yield_scale=2.0)

    def n(e):
        return 1e18 * 2.0 * 1e-3 * e**2 * np.exp(-((e / e0) ** 2)) - np.log(10.0)

    assert out["excluded"]
    assert out["eps_low"] == pytest.approx(brentq(n, 1e-9, e0), rel=1e-3)
    assert out["eps_high"] == pytest.approx(brentq(n, e0, 1e-3), rel=1e-3)
    assert out["ctau_low"] > out["ctau_high"]
    weak = facility_ctaus(NS(reach=NS(n_pot=1.0, cl=0.9)), 0.3, 1e-3, eps, acc, yield_scale=1.0)
    assert not weak["excluded"]
    assert weak["level"] == pytest.approx(float(np.max(1e-3 * eps**2 * acc)) / 10, rel=1e-12)


def test_every_shipped_facility_loads_with_a_runs_yields(tmp_path):
    """``facility_config`` keeps each shipped config as it is (its detector and statistics)
    and points ``reach.yields`` at the run: the facility's Geometry builds, and its channels
    open at 2m_ℓ (ee only below 2m_μ)."""
    from gammastar.config import load_config
    from gammastar.source.geometry import Geometry
    from gammastar_validation.forward import FACILITIES, facility_config, open_channels

    for name in FACILITIES:
        path = REPO / "analysis" / "facilities" / f"{name}.yaml"
        cfg = facility_config(path, tmp_path / "yields.json")
        ship = load_config(path)
        assert cfg.reach.yields == str((tmp_path / "yields.json").resolve())
        assert cfg.detector == ship.detector
        assert cfg.reach.flow == ship.reach.flow
        Geometry.from_config(cfg.detector)
        assert open_channels(cfg, 0.1) == ("ee",)
        assert set(open_channels(cfg, 0.3)) == set(ship.reach.channels)


def test_coverage_counts_leave_out_what_the_truth_does_not_resolve():
    """A row whose 𝓔_truth rests on fewer than MIN_TRUTH_SAMPLES γ* is not scored; the
    1σ/2σ counts follow |pull|, the yield target counts each mass once."""
    from gammastar_validation.forward import MIN_TRUTH_SAMPLES, coverage_counts

    base = {"pull": 0.5, "nsig_dd": 1.0, "nsig_truth": 1.0, "mass": 0.6, "regime": "eps_low",
            "channels": ["ee", "mumu"], "y_dd": 1.03, "y_truth": 1.0, "facility": "f",
            "n_eff_truth": 100.0}  # fmt: skip
    rows = [base, {**base, "regime": "eps_high", "pull": 1.5},
            {**base, "regime": "eps_high", "pull": 9.0, "n_eff_truth": MIN_TRUTH_SAMPLES / 2}]
    c = coverage_counts(rows)
    assert c["within_1sigma"] == [1, 2]
    assert c["within_2sigma"] == [2, 2]
    assert c["yield_within_5pct"] == [1, 1]
    assert c["unresolved"] == 1
    assert not c["met"]["within_1sigma"]
    assert c["met"]["within_2sigma"]


def test_yield_width_adds_the_named_nuisances_in_log(monkeypatch):
    """The yield's quoted width is the reach's named nuisances at the yield's level, each a
    log-normal of width ln(1 + r), in quadrature; none configured: 0. Its pull is then
    ln(Y_dd/Y_tr) over that width and the truth's error, as the N_sig pull."""
    from gammastar.yields import nuisance
    from gammastar_validation.forward import coverage_counts, log_pull, yield_width

    sizes = {"data_stat": np.array([0.01]), "extrapolation": np.array([0.19])}
    monkeypatch.setattr(nuisance, "reach_nuisances", lambda cfg, y, m: (sizes, {}))
    w = yield_width(None, None, 1.0)
    assert abs(w - np.hypot(np.log(1.01), np.log(1.19))) < 1e-12
    # a yield 29% high with 19% quoted lies within 2σ but not 1σ
    pull = log_pull(1.29, 1.0, w, 0.008)
    assert 1.0 < pull < 2.0
    row = {"pull": 0.5, "nsig_dd": 1.0, "nsig_truth": 1.0, "mass": 1.0, "regime": "eps_low",
           "channels": ["ee", "mumu"], "y_dd": 1.29, "y_truth": 1.0, "facility": "f",
           "n_eff_truth": 100.0, "y_pull": pull}  # fmt: skip
    q = coverage_counts([row, {**row, "facility": "g"}])["within_quoted"]
    assert q["yield_within_1sigma"] == [0, 1]
    assert q["yield_within_2sigma"] == [1, 1]
    monkeypatch.setattr(nuisance, "reach_nuisances", lambda cfg, y, m: (None, None))
    assert yield_width(None, None, 1.0) == pytest.approx(0.0, abs=1e-15)


@pytest.mark.parametrize("falloff", [0.0, 3.5])
def test_tilted_mesons_reweight_to_the_generators_rapidity(falloff):
    """``TiltedMesons`` on the parametric spectra truncated at a 400 GeV beam's kinematic
    limit, without and with the mesons' fall-off (1 − E/E_beam)^n: the weighted fraction of
    parents with y > μ + 2σ equals the plain generator's (an independent sample) within 4σ
    of their errors, while the tilted sample holds several times more of them; the mean
    weight is 1 within 4 standard errors (E_q[p/q] = 1: with the fall-off only where the
    weights hold its mean under each rapidity), and every weight is at most 3 (the defensive
    mixture of three)."""
    from gammastar.config.mock import MockConfig
    from gammastar.mock.cocktail import ParametricMesons
    from gammastar_validation.truth import TiltedMesons

    cfg = MockConfig(efficiency_map=None, falloff=falloff, kinematic_limit=bool(falloff))
    base = ParametricMesons(cfg, 400.0)
    tilted = TiltedMesons(base, 1.0)
    masses = np.full(400_000, mass("omega"))
    cut = cfg.rapidity_mean + 2 * cfg.rapidity_sigma

    def rapidity(p4):
        return 0.5 * np.log((p4[3] + p4[2]) / (p4[3] - p4[2]))

    y0 = rapidity(base.sample(np.random.default_rng(1), masses, "omega"))
    y1 = rapidity(tilted.sample(np.random.default_rng(2), masses, "omega"))
    w = tilted.weights[-1]
    f0 = np.mean(y0 > cut)
    f1 = np.sum(w * (y1 > cut)) / w.sum()
    e0 = np.sqrt(f0 * (1 - f0) / y0.size)
    e1 = np.sqrt(np.sum((w * ((y1 > cut) - f1)) ** 2)) / w.sum()
    assert abs(f1 - f0) < 4 * np.hypot(e0, e1)
    assert np.sum(y1 > cut) > 3 * np.sum(y0 > cut)
    assert abs(w.mean() - 1) < 4 * w.std() / np.sqrt(w.size)
    assert w.max() <= 3.0


def test_tilted_mesons_reach_the_high_pt_tail():
    """The parametric source's third component (T × 3): P(p_T > 3 GeV) of the ω (about 3 in
    10⁵ of the parents, the wide-angle tail an off-axis detector sees at short cτ) from the
    weighted tilted draws equals the plain draws' within 4 standard errors, and the tilted
    draws hold over 20 times more such parents."""
    from gammastar.config.mock import MockConfig
    from gammastar.mock.cocktail import ParametricMesons
    from gammastar_validation.truth import TiltedMesons

    cfg = MockConfig(efficiency_map=None, falloff=3.5, kinematic_limit=True)
    base = ParametricMesons(cfg, 400.0)
    tilted = TiltedMesons(base, 1.0)
    masses = np.full(400_000, mass("omega"))
    p0 = base.sample(np.random.default_rng(5), masses, "omega")
    p1 = tilted.sample(np.random.default_rng(6), masses, "omega")
    w = tilted.weights[-1]
    h0, h1 = np.hypot(p0[0], p0[1]) > 3.0, np.hypot(p1[0], p1[1]) > 3.0
    f0, f1 = h0.mean(), np.sum(w * h1) / w.sum()
    e0 = np.sqrt(f0 * (1 - f0) / h0.size)
    e1 = np.sqrt(np.sum((w * (h1 - f1)) ** 2)) / w.sum()
    assert abs(f1 - f0) < 4 * np.hypot(e0, e1)
    assert h1.sum() > 20 * h0.sum()  # measured 5707 against 10 (570×)


def test_tilted_mesons_carry_the_falloff_to_the_beam_energy():
    """With the spectra's fall-off (1 − E/400)^3.5 riding on the weights: P(E > 250 GeV) of
    the ω (about 1 in 10⁴ of the parents) from the weighted tilted draws equals the plain
    generator's within 4 standard errors, and its contributions have a Kish size over 100
    times the plain draws' count there (measured 5292 against 34)."""
    from gammastar.config.mock import MockConfig
    from gammastar.mock.cocktail import ParametricMesons
    from gammastar_validation.truth import TiltedMesons

    cfg = MockConfig(efficiency_map=None, falloff=3.5, kinematic_limit=True)
    base = ParametricMesons(cfg, 400.0)
    tilted = TiltedMesons(base, 1.0)
    masses = np.full(400_000, mass("omega"))
    h0 = base.sample(np.random.default_rng(7), masses, "omega")[3] > 250.0
    h1 = tilted.sample(np.random.default_rng(8), masses, "omega")[3] > 250.0
    w = tilted.weights[-1]
    c = w * h1
    f0, f1 = h0.mean(), c.sum() / w.sum()
    e0 = np.sqrt(f0 * (1 - f0) / h0.size)
    e1 = np.sqrt(np.sum((w * (h1 - f1)) ** 2)) / w.sum()
    assert abs(f1 - f0) < 4 * np.hypot(e0, e1)
    assert c.sum() ** 2 / (c**2).sum() > 100 * h0.sum()


def test_tilted_dalitz_decays_reweight_to_the_isotropic_decay():
    """The closure truth's η → γμμ (parents tilted by κ = 2.5 and T × 3, the fall-off
    (1 − E/400)^3.5 on the weights) with the Dalitz γ*'s polar angle tilted too
    (``decay_tilt=3``): P(E_γ* > the plain draws' 99.99% quantile) from the weighted draws
    equals an independent plain sample's within 4σ of their errors, and the contributions
    above it have a Kish size 1.5 times those of the same draws without the decay tilt
    (measured 12484 against 6473; the plain draws hold 40)."""
    from gammastar.cocktail_channels import Channel
    from gammastar.config.mock import MockConfig
    from gammastar.mock.cocktail import CHANNELS, Cocktail, ParametricMesons
    from gammastar.yields.extrapolation.nsig.draw import kish_size
    from gammastar_validation.truth import TiltedMesons

    cfg = MockConfig(efficiency_map=None, falloff=3.5, kinematic_limit=True)
    spec = next(c for c in CHANNELS if c.channel == Channel.ETA_DALITZ)
    base = ParametricMesons(cfg, 400.0)
    n = 400_000
    e0 = Cocktail(cfg, 400.0, mesons=base).generate(np.random.default_rng(11), spec, n).gstar[3]
    cut = np.quantile(e0, 0.9999)
    h0 = e0 > cut
    kish = {}
    for k in (0.0, 3.0):
        tilted = TiltedMesons(base, 2.5, decay_tilt=k)
        e1 = Cocktail(cfg, 400.0, mesons=tilted).generate(np.random.default_rng(12), spec, n)
        w, h1 = tilted.weights[-1], e1.gstar[3] > cut
        c = w * h1
        kish[k] = float(kish_size(c.sum(), (c**2).sum()))
        f0, f1 = h0.mean(), c.sum() / w.sum()
        s0 = np.sqrt(f0 * (1 - f0) / n)
        s1 = np.sqrt(np.sum((w * (h1 - f1)) ** 2)) / w.sum()
        assert abs(f1 - f0) < 4 * np.hypot(s0, s1)
    assert kish[3.0] > 1.5 * kish[0.0]


def test_tilted_mesons_reweight_a_pool_to_its_uniform_draw():
    """``TiltedMesons`` on a pool (PYTHIA's: each source takes a member uniformly): the
    weighted mean of a forward indicator over the tilted draws equals its exact pool mean
    within 4 standard errors."""
    from types import SimpleNamespace as NS

    from gammastar_validation.truth import TiltedMesons

    rng = np.random.default_rng(3)
    pool = NS(pool=NS(pt={"eta": rng.exponential(0.3, 5000)}, y={"eta": rng.normal(3, 1, 5000)}))
    tilted = TiltedMesons(pool, 1.0)
    p4 = tilted.sample(np.random.default_rng(4), np.full(200_000, mass("eta")), "eta")
    y = 0.5 * np.log((p4[3] + p4[2]) / (p4[3] - p4[2]))
    w = tilted.weights[-1]
    want = np.mean(pool.pool.y["eta"] > 5.0)
    got = np.sum(w * (y > 5.0 - 1e-9)) / w.sum()
    err = np.sqrt(np.sum((w * ((y > 5.0 - 1e-9) - got)) ** 2)) / w.sum()
    assert abs(got - want) < 4 * err


def _power_law_contour(r, w, p=20.0):
    """N_dd(ε) = min(A ε⁴, B ε^{−p}) (the long-lifetime rise ∝ ε⁴ and a steep power-law fall
    standing in for the short-lifetime cut-off) on a grid, and N_truth = N_dd / ``r``: on a
    power law the log-log interpolation is exact, so every crossing is analytic, ε where
    A ε⁴ = s is (s/A)^{1/4}, where B ε^{−p} = s is (B/s)^{1/p}."""
    from gammastar_validation.forward import contour_grid

    a, b, s = 1e28, 1e-100, 2.3
    lo_dd, hi_dd = (s / a) ** 0.25, (b / s) ** (1 / p)
    eps = contour_grid(lo_dd, hi_dd)

    def n(e):
        return np.minimum(a * e**4, b * e ** (-p))

    return eps, n(eps), n(eps) / r, s, (a, b, p, lo_dd, hi_dd)


def test_contour_point_finds_the_analytic_edges_on_power_laws():
    """``contour_point`` on N_dd = min(A ε⁴, B ε^{−20}) and N_truth = N_dd / R: the truth's ε
    is (R s/A)^{1/4} at ε_low and (B/(R s))^{1/20} at ε_high, the data-driven one at R = 1, the
    kσ band's edges at s e^{∓kw} (to rounding: the log-log interpolation is exact on a power
    law); the truth lies inside the 1σ band exactly when |ln R| ≤ w (R = e^{±0.9w} in,
    e^{1.1w} out of 1σ and in 2σ, e^{2.1w} out of both), and ln(ε_dd/ε_truth) = −ln R/4 at
    ε_low, ln R/20 at ε_high: the issue's Δln ε ≈ ln R/(2x − 2) for a steep fall."""
    from gammastar_validation.forward import contour_point

    w = 0.7
    for f, in1, in2 in ((0.9, True, True), (-0.9, True, True), (1.1, False, True),
                        (2.1, False, False), (-2.1, False, False)):  # fmt: skip
        r = np.exp(f * w)
        eps, n_dd, n_tr, s, (a, b, p, lo_dd, hi_dd) = _power_law_contour(r, w)
        low = contour_point(eps, n_dd, n_tr, s, "eps_low", w)
        high = contour_point(eps, n_dd, n_tr, s, "eps_high", w)
        assert low["eps_truth"] == pytest.approx((r * s / a) ** 0.25, rel=1e-9)
        assert high["eps_truth"] == pytest.approx((b / (r * s)) ** (1 / p), rel=1e-9)
        assert low["eps_dd"] == pytest.approx(lo_dd, rel=1e-9)
        assert high["eps_dd"] == pytest.approx(hi_dd, rel=1e-9)
        assert low["log_ratio"] == pytest.approx(-np.log(r) / 4, rel=1e-7)
        assert high["log_ratio"] == pytest.approx(np.log(r) / p, rel=1e-7)
        for k in (1, 2):
            want_lo = [(s * np.exp(-k * w) / a) ** 0.25, (s * np.exp(k * w) / a) ** 0.25]
            want_hi = [(b / (s * np.exp(k * w))) ** (1 / p), (b / (s * np.exp(-k * w))) ** (1 / p)]
            assert low[f"band_{k}"] == pytest.approx(want_lo, rel=1e-9)
            assert high[f"band_{k}"] == pytest.approx(want_hi, rel=1e-9)
        for pt in (low, high):
            assert pt["within_1"] is in1
            assert pt["within_2"] is in2
            assert pt["factor"] == pytest.approx(np.exp(w), rel=1e-12)
    # the closure's own sampling error widens the band in quadrature: R = e^{1.1w} is inside
    # the 1σ band once stat = w·√(1.1² − 1) + a little
    eps, n_dd, n_tr, s, _ = _power_law_contour(np.exp(1.1 * w), w)
    assert contour_point(eps, n_dd, n_tr, s, "eps_low", w, stat=0.5 * w)["within_1"]


def test_contour_point_leaves_unresolved_what_the_grid_does_not_hold():
    """A truth that never reaches s_up has no ε (NaN, scored as a failure); a data-driven
    N_dd e^{−kw} that never reaches s_up leaves the band's inner side open (0 at ε_high: the
    contour closes at the mass), one still above s_up at the grid's end its outer side."""
    from gammastar_validation.forward import contour_point

    eps, n_dd, _, s, _ = _power_law_contour(1.0, 0.7)
    gone = contour_point(eps, n_dd, n_dd * 1e-30, s, "eps_high", 0.7)
    assert np.isnan(gone["eps_truth"])
    assert not gone["within_1"]
    assert not gone["within_2"]
    peak = float(np.max(n_dd))
    wide = contour_point(eps, n_dd, n_dd, s, "eps_high", np.log(peak / s) + 1.0)
    assert wide["band_1"][0] == pytest.approx(0.0, abs=0.0)  # N_dd/e^w < s_up everywhere
    assert wide["within_1"]
    huge = contour_point(eps, n_dd, n_dd, s, "eps_high", 30.0)  # e^{30} s_up: beyond the grid
    assert huge["band_1"][1] == np.inf


def test_contour_counts_score_every_point():
    """``contour_counts`` on the power-law points: a point whose truth is not resolved, or
    whose edge took the reach's fallback, counts as a failure (in ``contour``; in
    ``contour_before``, today's widths, a fallback edge is scored); the ε_high ratio target
    counts |ln(ε_dd/ε_truth)| ≤ ln 1.3; the band factor is the median e^w at ε_high; a facility
    whose data-driven exclusion reaches two masses beyond the truth's misses the range target."""
    from gammastar_validation.forward import contour_counts, contour_point

    w = 0.7
    rows = []
    for i, (f, fac) in enumerate(((0.5, "f"), (1.5, "f"), (0.2, "g"), (0.0, "g"))):
        eps, n_dd, n_tr, s, _ = _power_law_contour(np.exp(f * w), w)
        for regime in ("eps_low", "eps_high"):
            pt = contour_point(eps, n_dd, n_tr, s, regime, w + 0.1 * i)
            pt |= {"fallback": i == 3 and regime == "eps_high",
                   "n_eff_truth": 100.0, "n_eff_dd": 100.0}  # fmt: skip
            rows.append({"facility": fac, "mass": 0.1 * (i + 1), "regime": regime,
                         "excluded": True, "truth_excluded": fac == "f" or i == 2,
                         "contour": pt, "contour_before": pt})  # fmt: skip
    for key in ("contour", "contour_before"):  # the truth not resolved (inside 1σ otherwise)
        rows[0][key] = {**rows[0][key], "n_eff_truth": 5.0}
    c, b = contour_counts(rows), contour_counts(rows, "contour_before")
    # in 1σ: f = 0.5, 0.2, 0.0 at both edges (1.5w is beyond w + 0.1), less the unresolved
    # point and the fallback edge
    assert c["contour_within_1sigma"] == [4, 8]
    assert b["contour_within_1sigma"] == [5, 8]
    assert c["contour_within_2sigma"] == [6, 8]
    assert c["unresolved"] == 2
    assert c["fallback_edges"] == 1
    # ε_high ratio e^{f w/20} ≤ 1.3 at every f here; the fallback edge fails
    assert c["eps_high_within_30pct"] == [3, 4]
    band = np.median(np.exp(w + 0.1 * np.arange(4)))
    assert c["band_factor_eps_high_median"] == pytest.approx(band, rel=1e-12)
    # g: data-driven excludes masses 3 and 4, the truth only mass 3: one point off, in
    assert c["excluded_range_within_one_mass"] == [2, 2]
    rows[7]["truth_excluded"] = rows[6]["truth_excluded"] = False
    rows[5]["truth_excluded"] = rows[4]["truth_excluded"] = False
    assert contour_counts(rows)["excluded_range_within_one_mass"] == [1, 2]


def test_edge_widths_take_the_reachs_fallback():
    """``_edge_widths``: the named nuisances in quadrature with the extrapolation's log width
    at each edge; an edge where N_sig is not resolved takes, after, the largest resolved size
    on the reach's grid (edge_size), before, the other edge's."""
    from gammastar_validation.forward import _edge_widths

    grid = np.geomspace(1e-7, 1e-4, 7)
    ex = np.array([0.2, np.nan, 0.2, 0.3, 0.5, 4.0, 9.0, np.nan, np.nan])
    q = {"data_stat": np.full(9, 0.1), "extrapolation": ex}
    low, high = _edge_widths(q, np.array([2e-7, 5e-5]), grid)
    w_low = np.hypot(np.log(1.1), np.log(1.2))
    assert low["after"] == pytest.approx((w_low, False, w_low), rel=1e-12)
    assert high["after"][0] == pytest.approx(np.hypot(np.log(1.1), np.log(10.0)), rel=1e-12)
    assert high["after"][1]
    assert high["before"][0] == pytest.approx(low["after"][0], rel=1e-12)
    # the two sides of the normsys, each with its own fallback
    q2 = {**q, "extrapolation_up": ex, "extrapolation_down": 0.5 * ex}
    low2, high2 = _edge_widths(q2, np.array([2e-7, 5e-5]), grid)
    assert low2["after"][2] == pytest.approx(np.hypot(np.log(1.1), np.log(1.1)), rel=1e-12)
    assert high2["after"][2] == pytest.approx(np.hypot(np.log(1.1), np.log(5.5)), rel=1e-12)
    assert high2["after"][0] == pytest.approx(high["after"][0], rel=1e-12)


def test_contour_band_takes_each_side():
    """A two-sided width: the band's outer edge (more signal) from the up side, its inner edge
    from the down side; on N = (ε/ε₀)⁴ at ε_low the edges are analytic,
    ε₀ (s e^{∓kw})^{1/4}, and the factor is the sides' geometric mean."""
    from gammastar_validation.forward import contour_point

    e = np.geomspace(1e-8, 1e-5, 3001)
    n = (e / 1e-7) ** 4
    p = contour_point(e, n, n, 2.3, "eps_low", np.log(3.0), width_down=np.log(1.5))
    lo, hi = p["band_1"]
    assert lo == pytest.approx(1e-7 * (2.3 / 3.0) ** 0.25, rel=1e-9)  # log-log: exact on a power law
    assert hi == pytest.approx(1e-7 * (2.3 * 1.5) ** 0.25, rel=1e-9)
    assert p["factor"] == pytest.approx(np.sqrt(4.5), rel=1e-12)


def test_streamed_mean_sums_equal_the_two_pass_mean():
    """``_MeanSums`` over chunks (sums about the first chunk's mean) gives the two-pass
    self-normalised mean, its error √(n/(n−1) Σw²(a − mean)²)/Σw and the Kish size of one
    concatenated array, to rounding (10⁵ ε: sums of 10⁴ terms)."""
    from gammastar_validation.forward import _MeanSums

    rng = np.random.default_rng(7)
    a = rng.exponential(1e-4, (10_000, 3)) * rng.uniform(0, 1, (10_000, 1))
    w = rng.uniform(0.1, 2.0, 10_000)
    acc = _MeanSums(3)
    for k in range(0, 10_000, 3_000):
        acc.add(a[k : k + 3_000], w[k : k + 3_000], None)
    got = acc.result()
    mean = (w[:, None] * a).sum(axis=0) / w.sum()
    err = np.sqrt(((w[:, None] * (a - mean)) ** 2).sum(axis=0) * 10_000 / 9_999) / w.sum()
    neff = (w[:, None] * a).sum(axis=0) ** 2 / ((w[:, None] * a) ** 2).sum(axis=0)
    assert np.allclose(got.value, mean, rtol=1e5 * EPS64, atol=0)
    assert np.allclose(got.error, err, rtol=1e5 * EPS64, atol=0)
    assert np.allclose(got.n_eff, neff, rtol=1e5 * EPS64, atol=0)
