"""The decay angular distribution measured from the data (gammastar.corrections.polarisation).

Truths: the mock generator's configured λ_θ of ρ, ω, φ → μμ (1 + λ_θ cos²θ* in the meson's
helicity frame, mock.decay_lambda_theta); the closure against the angular moments of every
generated γ*: validation/tests/test_polarisation_closure.py. Tolerances: the fit's sandwich
error (3σ), plus, where said, the table's interpolation error.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from _experiment import stated_config

from gammastar.cocktail_channels import Channel
from gammastar.config import AnalysisConfig
from gammastar.config.mock import MockConfig, MockPolarisation
from gammastar.corrections.pair_acceptance.lepton import LeptonAcceptance
from gammastar.corrections.pair_acceptance.table import PairAcceptance
from gammastar.corrections.polarisation.angles import (
    angular_functions,
    helicity_angles,
    truth_lambdas,
)
from gammastar.corrections.polarisation.fit import fit_lambdas
from gammastar.physics.constants import M_MU

NA60 = LeptonAcceptance(3.0, 0.035, 0.120)
# the vector mesons' configured truth: different signs and sizes per meson, so that a fit
# that returned a constant, or the isotropic value, fails
TRUE = {"rho": 0.8, "omega": -0.5, "phi": 0.5}


@pytest.fixture(scope="module")
def table():
    return PairAcceptance.build(NA60, lepton_mass=M_MU, mass_range=(0.2113, 1.1), p_max=400.0)


def _sources(lam: dict[str, float], n: int, seed: int, channels):
    from gammastar.mock.generator import MockGenerator

    mock = MockConfig(efficiency_map=None, decay_lambda_theta=MockPolarisation(**lam))
    gen = MockGenerator(AnalysisConfig(mock=mock), seed=seed)
    counts = np.zeros(len(gen.cocktail.specs) + 1, dtype=np.int64)
    for i, s in enumerate(gen.cocktail.specs):
        if s.channel in channels:
            counts[i] = n
    return gen, gen.sources(np.random.default_rng(seed), counts)


def test_helicity_angles_recover_the_generated_decay_frame():
    """The mock decays V → μμ along (cos θ*, φ*) in the helicity frame it builds itself
    (rotation onto the meson's direction, then a boost); helicity_angles, computed from the
    lab muons alone, must give those angles back to rounding (~1e-9 after the boosts)."""
    from gammastar.physics.kinematics import decay_in_helicity_frame, four_momentum

    rng = np.random.default_rng(3)
    n = 2000
    m = np.full(n, 0.78)
    parent = four_momentum(m, rng.exponential(0.5, n), rng.normal(3.4, 1.2, n),
                                     rng.uniform(0, 2 * np.pi, n))  # fmt: skip
    c0, ph0 = rng.uniform(-1, 1, n), rng.uniform(-np.pi, np.pi, n)
    a, b = decay_in_helicity_frame(parent, M_MU, c0, ph0, mass=m)
    c, ph = helicity_angles(a, b)
    assert np.abs(c - c0).max() < 1e-8
    assert np.abs(np.angle(np.exp(1j * (ph - ph0)))).max() < 1e-7
    c2, ph2 = helicity_angles(b, a)  # the other lepton: (−c, φ + π)
    assert np.abs(c2 + c0).max() < 1e-8
    assert np.abs(np.angle(np.exp(1j * (ph2 - ph0 - np.pi)))).max() < 1e-7


def test_helicity_angles_of_a_pair_along_the_beam_and_inputs_untouched():
    """A pair along the beam has no production plane: y* is the lab y axis, x* = y* × z*
    the lab x axis (module docstring), so a decay lepton along lab +x has φ* = 0 and one
    along lab +y φ* = π/2, both at cos θ* = 0; the lab momenta passed in are not changed (the
    function works in place on its own temporaries only)."""
    m_pair, pz, pstar = 0.78, 20.0, 0.3
    e_star = np.hypot(pstar, M_MU)
    gamma, bg = np.hypot(pz, m_pair) / m_pair, pz / m_pair
    # rest-frame leptons along ±x and ±y, boosted along +z
    rest = np.array([[pstar, -pstar, 0.0, 0.0], [0.0, 0.0, pstar, -pstar],
                     [0.0, 0.0, 0.0, 0.0], [e_star] * 4])  # fmt: skip
    lab = rest.copy()
    lab[2] = bg * rest[3]
    lab[3] = gamma * rest[3]
    a, b = lab[:, [0, 2]], lab[:, [1, 3]]
    a_in, b_in = a.copy(), b.copy()
    c, ph = helicity_angles(a, b)
    assert np.abs(c).max() < 1e-12
    assert np.allclose(ph, [0.0, np.pi / 2], atol=1e-12)
    # untouched: the very same numbers (nothing computed, so exact equality is the check)
    assert np.array_equal(a, a_in)
    assert np.array_equal(b, b_in)


def test_mock_vector_meson_truth_follows_the_config():
    """Full phase space (no detector): the moments of the generated decay angles give back
    the configured λ_θ (and λ_φ = λ_θφ = 0) within the moment's statistical error."""
    _, src = _sources(TRUE, 200_000, 4, {Channel.OMEGA_MUMU, Channel.PHI_MUMU})
    c, ph = helicity_angles(src.mu1, src.mu2)
    t = truth_lambdas(src.gstar[4], c, ph, [0.7, 0.9, 1.1])
    for i, name in enumerate(("omega", "phi")):
        assert abs(t["lambda_theta"][i] - TRUE[name]) < 4 * t["lambda_theta_err"][i]
        # <s² cos2φ> has variance ≤ 8/15 per decay → λ_φ error ≤ 15/4 √(8/15/n)
        tol = 4 * 3.75 * np.sqrt(8 / 15 / t["n"][i])
        assert abs(t["lambda_phi"][i]) < tol
        assert abs(t["lambda_theta_phi"][i]) < tol


def test_fit_recovers_the_vector_mesons_lambda_through_the_spectrometer(table):
    """ρ, ω, φ → μμ with three different λ_θ, through the NA60-like per-muon acceptance
    (35–120 mrad, E > 3 GeV, which keeps a narrow band of cos θ*): the acceptance-aware fit
    of the accepted pairs (true kinematics) returns each configured λ_θ within 3σ of its
    sandwich error plus 0.05 (the moment tables' interpolation error: the fits of 4·10⁵
    brute-force decays per point scattered by ≤ 0.04 about the truth, docs/explanation/method.md)."""
    chans = {Channel.RHO_MUMU: "rho", Channel.OMEGA_MUMU: "omega", Channel.PHI_MUMU: "phi"}
    gen, src = _sources(TRUE, 400_000, 5, set(chans))
    det = gen.detector
    ok = det.passes(src.mu1) & det.passes(src.mu2)
    g = src.gstar[:, ok]
    c, ph = helicity_angles(src.mu1[:, ok], src.mu2[:, ok])
    mom = table.moments_at(g[4], np.sqrt((g[:3] ** 2).sum(0)), np.arctan2(np.hypot(g[0], g[1]),
                                                                          g[2]))  # fmt: skip
    u = angular_functions(c, ph)
    for ch, name in chans.items():
        k = (src.channel[ok] == ch) & (mom[0] > 0) & (g[4] > 0.4)
        assert k.sum() > 5000
        lam, cov = fit_lambdas(u[:, k], mom[0, k], mom[1:, k], np.ones(k.sum()))
        err = np.sqrt(np.diag(cov))
        assert abs(lam[0] - TRUE[name]) < 3 * err[0] + 0.05, (name, lam, err)
        assert np.all(np.abs(lam[1:]) < 3 * err[1:] + 0.05), (name, lam, err)
        assert err[0] < 0.1  # the test has the power to tell the three apart


def test_acceptance_follows_lambda_without_a_new_table(table):
    """A(λ) = (⟨a⟩ + λ⟨c²a⟩)/(1 + λ⟨c²⟩): the λ = 1 table built directly equals the λ = 0
    table's with_lambda(1) (same moments, same arithmetic up to rounding), and a per-mass
    λ_θ(m) gives each mass row its own λ."""
    direct = PairAcceptance.build(NA60, lepton_mass=M_MU, mass_range=(0.2113, 1.1),
                                  p_max=400.0, lambda_theta=1.0)  # fmt: skip
    assert np.allclose(table.with_lambda(1.0).table, direct.table, rtol=0, atol=1e-12)
    nodes = np.linspace(-1, 1, table.m_grid.size)
    per_m = table.with_lambda(nodes)
    for i in (0, 17, 39):
        row = table.with_lambda(float(nodes[i])).table[i]
        assert np.allclose(per_m.table[i], row, rtol=0, atol=1e-12)
    assert per_m.as_dict()["lambda_theta"] == pytest.approx(list(nodes))


def test_measured_lambda_with_too_few_pairs_is_a_clear_error():
    from gammastar.corrections.polarisation import lambda_for_acceptance
    from gammastar.errors import InputError

    block = {"mass_edges": [0.2, 0.5, 1.0], "lambda_theta": [None, None]}
    with pytest.raises(InputError, match="decay_lambda_theta"):
        lambda_for_acceptance(block, "select.json")


def test_config_accepts_a_number_or_measured():
    from gammastar.errors import ConfigError

    la = {"min_energy": 3.0, "theta_min": 0.035, "theta_max": 0.12}
    cfg = stated_config(
        {"unfold": {"decay_lambda_theta": "measured", "lepton_acceptance": la}}, source="c.yaml"
    )
    assert cfg.unfold.decay_lambda_theta == "measured"
    with pytest.raises(ConfigError, match="lepton_acceptance"):  # nothing to measure with
        stated_config({"unfold": {"decay_lambda_theta": "measured"}}, source="c.yaml")
    for bad in ("measure", 1.5):
        with pytest.raises(ConfigError, match="decay_lambda_theta"):
            stated_config({"unfold": {"decay_lambda_theta": bad}}, source="c.yaml")
    with pytest.raises(ConfigError, match="decay_lambda_theta"):
        stated_config({"mock": {"decay_lambda_theta": {"omega": 2.0}}}, source="c.yaml")


@pytest.mark.slow
def test_measured_lambda_reduces_the_dalitz_acceptance_bias(table):
    """η, η′ → γμμ and ω → π0μμ (1 + cos²θ + a sin²θ about the γ* in the parent frame, which
    the lab helicity frame sees diluted): at 0.26–0.41 GeV the isotropic per-pair acceptance
    is high, Σ A(λ=0) over the generated sources exceeds the number whose muons pass by more
    than 3σ (measured 2.9–3.2%, docs/explanation/method.md); with λ_θ fitted per 50 MeV bin to the
    accepted pairs' true angles the excess must shrink (measured to 1.2–1.7%)."""
    chans = {Channel.ETA_DALITZ, Channel.ETAPRIME_DALITZ, Channel.OMEGA_DALITZ}
    gen, src = _sources({}, 1_000_000, 8, chans)
    det = gen.detector
    g = src.gstar
    k = (g[4] >= 0.26) & (g[4] < 0.41)
    mu1, mu2, g = src.mu1[:, k], src.mu2[:, k], g[:, k]
    passed = det.passes(mu1) & det.passes(mu2)
    p = np.sqrt((g[:3] ** 2).sum(0))
    mom = table.moments_at(g[4], p, np.arctan2(np.hypot(g[0], g[1]), g[2]))
    u = angular_functions(*helicity_angles(mu1, mu2))
    n2 = 1 / 3 - 1 / (12 * table.quadrature[0] ** 2)  # ⟨c²⟩ of the midpoint nodes
    n_pass = passed.sum()
    sum0 = mom[0].sum()
    sum_fit = 0.0
    for lo in (0.26, 0.31, 0.36):
        b = (g[4] >= lo) & (g[4] < lo + 0.05)
        f = b & passed & (mom[0] > 0)
        lam, _ = fit_lambdas(u[:, f], mom[0, f], mom[1:, f], np.ones(f.sum()), n_params=3)
        sum_fit += ((mom[0, b] + lam[0] * mom[1, b]) / (1 + lam[0] * n2)).sum()
    sigma = 1 / np.sqrt(n_pass)  # Poisson error of the passing count, relative
    assert sum0 / n_pass - 1 > 3 * sigma
    assert abs(sum_fit / n_pass - 1) < sum0 / n_pass - 1


def test_report_shows_the_polarisation(tmp_path):
    """The report's yields section tabulates yields.json → polarisation per mass bin with
    errors (a bin without a fit, null, shows n/a)."""
    from gammastar.report.data_sections import _yields_section
    from gammastar.report.reading import Section

    pol = {"frame": "helicity", "mass_edges": [0.2, 0.5, 1.0], "lambda_theta": [0.25, None],
           "lambda_theta_err": [0.05, None], "lambda_phi": [0.01, None],
           "lambda_phi_err": [0.02, None], "lambda_theta_phi": [-0.03, None],
           "lambda_theta_phi_err": [0.04, None], "n_pairs": [900, 12], "method": "m",
           "used_in_acceptance": True}  # fmt: skip
    (tmp_path / "yields.json").write_text(json.dumps({"meta": {}, "polarisation": pol}))
    s = Section("yields", "Yields")
    _yields_section(tmp_path, s)
    html = "\n".join(map(str, s.parts))
    assert "helicity frame" in html
    assert "+0.250 ± 0.050" in html
    assert "0.500–1.000</td><td>12</td><td>n/a" in html


def _toy_sample(seed: int, angles: bool = False):
    """Pairs with W of λ = (0.4, 0.15, −0.2) seen through a per-pair window |cos θ*| < c_i
    (c_i uniform in 0.3–1; its moments: ⟨a⟩ = c_i, ⟨c² a⟩ = c_i³/3, φ-symmetric: the other
    two 0), weights 1/ε with ε uniform in 0.5–1, and a like-sign-like pair of isotropic
    samples with weights +1.5 and −1.5 (negative weights, statistically cancelling); with
    ``angles`` also cos θ* and φ* themselves."""
    rng = np.random.default_rng(seed)
    lam = np.array([0.4, 0.15, -0.2])
    n = 400_000
    c, ph = rng.uniform(-1, 1, n), rng.uniform(-np.pi, np.pi, n)
    wmax = 1 + np.abs(lam).sum()
    hit = rng.uniform(0, wmax, n) < 1 + lam @ angular_functions(c, ph)  # accept–reject
    c, ph = c[hit], ph[hit]
    cut = rng.uniform(0.3, 1.0, c.size)
    keep = np.abs(c) < cut
    c, ph, cut = c[keep][:60_000], ph[keep][:60_000], cut[keep][:60_000]
    w = 1.0 / rng.uniform(0.5, 1.0, c.size)
    for sign in (1.0, -1.0):
        k = 10_000
        cb = rng.uniform(0.3, 1.0, k)
        c = np.concatenate([c, rng.uniform(-1, 1, k) * cb])
        ph = np.concatenate([ph, rng.uniform(-np.pi, np.pi, k)])
        cut = np.concatenate([cut, cb])
        w = np.concatenate([w, np.full(k, 1.5 * sign)])
    v = np.zeros((3, c.size))
    v[0] = cut**3 / 3
    return angular_functions(c, ph), cut, v, w, lam, *((c, ph) if angles else ())


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_newton_fit_equals_the_damped_fit(seed, monkeypatch):
    """fit_lambdas (Newton from λ = 0, one pass per step, stops after a step ≤ STEP_TOL·σ
    whose predicted Newton residual is ≤ STEP_TOL²·σ) against the reference fit
    (_fit_lambdas_damped: line search on the likelihood, converged to 1e-8 in λ and 1e-10 in
    the likelihood), on samples with negative weights. Tolerances: λ within STEP_TOL²·σ (the
    stopping rule's residual) + 1e-8 (the damped fit's own convergence), σ within 1e-3
    relative (the sandwich at two λ at most STEP_TOL·σ ≈ 2e-4 apart; σ varies by O(σ) per
    unit λ here, i.e. ~1e-6 relative: 1e-3 is a loose bound, far below the statistical
    uncertainty of σ itself, 1/√(2n) ≈ 2.5e-3). The Newton path must converge by itself (no
    fallback) in at most 5 passes over the pairs (3–4 here), the meat Σw²ggᵀ on at most 2."""
    from gammastar.corrections.polarisation import fit as pol

    u, a0, v, w, truth = _toy_sample(seed)
    ref, ref_cov = pol._fit_lambdas_damped(u, a0, v, w)
    passes = []
    call = pol._NewtonPass.__call__
    monkeypatch.setattr(pol._NewtonPass, "__call__",
                        lambda self, lam, meat=True: passes.append(meat) or call(self, lam, meat))  # fmt: skip
    monkeypatch.setattr(pol, "_fit_lambdas_damped", None)  # a fallback would raise TypeError
    lam, cov = pol.fit_lambdas(u, a0, v, w)
    err, ref_err = np.sqrt(np.diag(cov)), np.sqrt(np.diag(ref_cov))
    assert np.all(np.abs(lam - ref) <= pol.STEP_TOL**2 * ref_err + 1e-8), (lam - ref) / ref_err
    np.testing.assert_allclose(err, ref_err, rtol=1e-3)
    assert len(passes) <= 5
    assert 1 <= sum(passes) <= 2
    assert passes[-1]  # the covariance is a pass's sandwich
    # and the fit measures: the configured λ within 4σ (the sample's own fluctuation)
    assert np.all(np.abs(lam - truth) < 4 * err), (lam, truth, err)


def test_newton_fit_starts_anywhere_feasible_and_reports_bad_input():
    """A start outside the region where 1 + λ·u > 0 for every pair falls back to λ = 0 and
    gives the same λ; moments that vanish for a pair are a ValueError (as before)."""
    u, a0, v, w, _ = _toy_sample(4)
    lam, cov = fit_lambdas(u, a0, v, w)
    err = np.sqrt(np.diag(cov))
    lam2, _ = fit_lambdas(u, a0, v, w, start=[5.0, 5.0, 5.0])  # 1 + 5c² + … < 0 somewhere
    from gammastar.corrections.polarisation.fit import STEP_TOL

    assert np.all(np.abs(lam2 - lam) <= 2 * STEP_TOL * err)
    a0[0] = 0.0
    v[:, 0] = 0.0
    with pytest.raises(ValueError, match="vanish"):
        fit_lambdas(u, a0, v, w)


def test_fit_started_near_the_maximum_takes_two_passes_and_gives_the_same_lambda(monkeypatch):
    """A start near the maximum: here the fit of the sample without 2% of its pairs (λ ≈
    0.07σ away). Started there, the fit takes at most 3 passes over the pairs (from 0: 3–4)
    and gives the λ of the fit from 0 within the stopping rule's residual, STEP_TOL²·σ for
    each; σ to the change of the sandwich between the λ of the two last passes, at most
    STEP_TOL·σ apart (σ varies by O(1) relative per unit λ here: 2·STEP_TOL·σ relative,
    6e-4; 1.8e-4 measured). From the maximum itself: 2 passes."""
    from gammastar.corrections.polarisation import fit as pol

    u, a0, v, w, _ = _toy_sample(5)
    lam, cov = fit_lambdas(u, a0, v, w)
    keep = np.random.default_rng(6).uniform(size=w.size) > 0.02
    near, _ = fit_lambdas(u[:, keep], a0[keep], v[:, keep], w[keep])
    err = np.sqrt(np.diag(cov))
    assert np.any(np.abs(near - lam) > 0.05 * err)  # a start that is not the answer
    passes = []
    call = pol._NewtonPass.__call__
    monkeypatch.setattr(pol._NewtonPass, "__call__",
                        lambda self, x, meat=True: passes.append(meat) or call(self, x, meat))  # fmt: skip
    monkeypatch.setattr(pol, "_fit_lambdas_damped", None)  # a fallback would raise TypeError
    warm, warm_cov = fit_lambdas(u, a0, v, w, start=near)
    assert len(passes) <= 3
    tol = 2 * pol.STEP_TOL**2 * err
    assert np.all(np.abs(warm - lam) <= tol), (warm - lam, tol)
    np.testing.assert_allclose(np.sqrt(np.diag(warm_cov)), err, rtol=2 * pol.STEP_TOL * err.max())
    passes.clear()
    again, _ = fit_lambdas(u, a0, v, w, start=lam)
    assert len(passes) == 2
    assert np.all(np.abs(again - lam) <= tol)


def test_measure_fits_each_bins_pairs():
    """``measure`` with the moments at every pair (as a measured λ_θ calls it): each bin's
    λ and errors are those of fit_lambdas on that bin's pairs (the same numbers: 1e-12).
    Toy pairs in 4 mass bins (each bin another λ), moments of a per-pair window as in
    ``_toy_sample``, negative weights among them. And the angular functions, computed in
    blocks of polarisation.angles._BLOCK pairs (this sample: 5 blocks), are the numbers of one
    block (2-d input) pair by pair."""
    from _tolerance import EPS64, reorder_tol

    from gammastar.corrections.polarisation import PARAMS, angles, measure

    rng = np.random.default_rng(8)
    parts = []
    for i, m0 in enumerate((0.3, 0.5, 0.7, 0.9)):
        _, a0, v, w, _, c, phi = _toy_sample(20 + i, angles=True)
        parts.append((m0 + rng.uniform(-0.05, 0.05, w.size), c, phi, a0, v, w))
    m, c, phi, a0, v, w = (np.concatenate(x, axis=-1) for x in zip(*parts, strict=True))
    pairs = {"m": m, "pT": np.ones(m.size), "pz": np.ones(m.size), "charge": np.zeros(m.size),
             "cos_theta_hel": c, "phi_hel": phi, "weight": w, "acc": np.ones(m.size)}  # fmt: skip
    ang = angular_functions(c, phi)
    assert c.size > 4 * angles._BLOCK
    # elementwise; the blocks move pairs between libm's SIMD and scalar paths (≤ a few ulp)
    np.testing.assert_allclose(ang, angular_functions(c[None], phi[None])[:, 0], rtol=0,
                               atol=reorder_tol(4, 1.0, EPS64))  # fmt: skip
    mom = np.vstack([a0, v])
    edges = [0.2, 0.4, 0.6, 0.8, 1.0]
    got = measure(pairs, None, edges, moments=mom).as_dict()
    for b in range(4):
        k = np.flatnonzero((m >= edges[b]) & (m < edges[b + 1]))
        lam, cov = fit_lambdas(angular_functions(c[k], phi[k]), a0[k], v[:, k], w[k])
        for i, name in enumerate(PARAMS):
            assert got[name][b] == pytest.approx(lam[i], rel=0, abs=1e-12)
            assert got[f"{name}_err"][b] == pytest.approx(np.sqrt(cov[i, i]), rel=1e-12)


# --------------------------------------------------------------------------- bins at the peaks
def test_counts_in_equals_numpys_histogram():
    """peak_safe_edges counts the masses per bin by comparisons with the edges
    (polarisation.edges._counts_in): np.histogram's integers, masses on the edges (the last bin
    closed), outside them and NaN included."""
    from gammastar.corrections.polarisation.edges import _counts_in

    rng = np.random.default_rng(3)
    for _ in range(100):
        edges = np.unique(np.round(rng.uniform(0.1, 1.1, rng.integers(2, 10)), 2))
        if edges.size < 2:
            continue
        m = np.concatenate([rng.uniform(0.0, 1.2, rng.integers(0, 3000)), edges, [np.nan]])
        ref = np.histogram(m[np.isfinite(m)], bins=edges)[0]
        assert np.array_equal(_counts_in(m, edges), ref)


def test_peak_safe_edges_keep_each_narrow_peak_whole():
    """Inner edges inside a peak's window move to its nearer side; a bin left with fewer than
    ``min_pairs`` masses merges into its smaller neighbour; peaks outside the range and the
    outer edges stay untouched; the default peaks are the PDG ω and φ (and heavier)."""
    from gammastar.corrections.polarisation.edges import narrow_peaks, peak_safe_edges
    from gammastar.physics.constants import mass

    # the moved edges are p ± window rounded to 1 MeV: compared to 1e-9, far below that step
    m = np.linspace(0.2, 1.1, 9001)  # 1e4 per GeV: 100 per 10 MeV
    # 0.77 and 0.80 lie within 0.1 of the ω (0.78): to 0.68 and 0.88
    got = peak_safe_edges([0.2, 0.5, 0.77, 0.8, 1.1], m, 0.1, peaks=[0.78, 5.0])
    np.testing.assert_allclose(got, [0.2, 0.5, 0.68, 0.88, 1.1], rtol=0, atol=1e-9)
    # an edge that lands next to another leaves a bin of 20 masses: merged away
    got = peak_safe_edges([0.2, 0.5, 0.678, 0.75, 1.1], m, 0.1, peaks=[0.78], min_pairs=200)
    np.testing.assert_allclose(got, [0.2, 0.5, 0.68, 1.1], rtol=0, atol=1e-9)
    # two overlapping windows (0.63–0.93, 0.87–1.17): the edge goes to the union's side
    got = peak_safe_edges([0.2, 0.9, 1.1], m, 0.15, peaks=[0.78, 1.02])
    np.testing.assert_allclose(got, [0.2, 0.63, 1.1], rtol=0, atol=1e-9)
    # no side inside the outer edges: the edge is dropped
    got = peak_safe_edges([0.4, 0.9, 1.1], m, 0.5, peaks=[0.78])
    np.testing.assert_allclose(got, [0.4, 1.1], rtol=0, atol=1e-9)
    pk = narrow_peaks()
    assert pk[:2] == (mass("omega"), mass("phi"))
    assert abs(pk[0] - 0.78266) < 1e-4  # PDG 2024
    assert abs(pk[1] - 1.019461) < 1e-4


def test_polarisation_edges_config_and_warning(tmp_path, caplog):
    """``unfold.polarisation_edges`` (explicit, clipped to the selection's range) and
    ``polarisation_peak_window`` reach the selection's bins; bad values are one-line config
    errors naming the key; a measured λ_θ with equal-count bins and a peak in the range warns."""
    import logging

    from gammastar.errors import ConfigError
    from gammastar.selection.outputs import _warn_peak_window
    from gammastar.selection.polarisation import _polarisation_edges

    la = {"min_energy": 3.0, "theta_min": 0.035, "theta_max": 0.12}
    base = {"decay_lambda_theta": "measured", "lepton_acceptance": la}
    sel = {"mass_min": 0.2113, "mass_max": 1.1}
    for bad in ([0.5], [0.3, 0.3], [0.6, 0.4]):
        with pytest.raises(ConfigError, match="polarisation_edges"):
            stated_config({"unfold": {**base, "polarisation_edges": bad}}, source="c.yaml")
    with pytest.raises(ConfigError, match="polarisation_peak_window"):
        stated_config({"unfold": {**base, "polarisation_peak_window": 0}}, source="c.yaml")
    m = np.random.default_rng(3).uniform(0.2113, 1.1, 20_000)
    cfg = stated_config(
        {"selection": sel, "unfold": {**base, "polarisation_edges": [0.1, 0.5, 0.8, 1.5]}},
        source="c.yaml",
    )
    np.testing.assert_allclose(_polarisation_edges(cfg, m), [0.2113, 0.5, 0.8, 1.1], rtol=0, atol=1e-9)
    cfg = stated_config(
        {"selection": sel, "unfold": {**base, "polarisation_edges": [0.5, 0.8],
                                      "polarisation_peak_window": 0.1}},
        source="c.yaml",
    )  # fmt: skip
    got = _polarisation_edges(cfg, m)  # ω at 0.783: 0.883
    np.testing.assert_allclose(got, [0.2113, 0.5, 0.883, 1.1], rtol=0, atol=1e-9)
    caplog.set_level(logging.WARNING, logger="gammastar")
    _warn_peak_window(cfg)  # the window is set: silent
    assert "polarisation_peak_window" not in caplog.text
    cfg = stated_config({"selection": sel, "unfold": base}, source="c.yaml")
    assert len(_polarisation_edges(cfg, m)) == 9  # 8 equal-count bins
    _warn_peak_window(cfg)
    assert "polarisation_peak_window" in caplog.text


def test_bins_through_a_peak_select_the_decay_angles_and_peak_safe_bins_do_not(table):
    """The mechanism behind ``polarisation_peak_window``: unpolarised ω → μμ (λ_θ = 0) through
    the mock's multiple-scattering spectrometer (its default; σ_m = 30 MeV at the ω). The soft
    muon of an asymmetric decay (large |cos θ*|) scatters most, so the reconstructed mass of
    such decays is wider: the ω's core bin 0.772–0.812 GeV (the edges the demo's equal-count
    bins had) measures λ_θ < 0 by far more than its error (docs/explanation/method.md: −0.52 ± 0.02 over
    10 demo realisations, whole cocktail), while the bin that holds the peak whole (edges moved
    3.5 σ_m away, as analysis/na60_like.yaml does) gives back 0 within 3σ + 0.05 (the moment
    tables' interpolation allowance of the tests above)."""
    from gammastar.corrections.polarisation.edges import peak_safe_edges

    gen, src = _sources({"rho": 0.0, "omega": 0.0, "phi": 0.0}, 600_000, 8,
                        {Channel.OMEGA_MUMU})  # fmt: skip
    rec = gen.detector.apply(np.random.default_rng(9), src)
    ok = rec.in_acceptance
    a, b, g = rec.mu1[:, ok], rec.mu2[:, ok], rec.pair[:, ok]
    m = rec.m[ok]
    c, ph = helicity_angles(a, b)
    mom = table.moments_at(m, np.sqrt((g[:3] ** 2).sum(0)), np.arctan2(np.hypot(g[0], g[1]), g[2]))
    u = angular_functions(c, ph)

    def fit(lo, hi):
        k = (m >= lo) & (m < hi) & (mom[0] > 0)
        lam, cov = fit_lambdas(u[:, k], mom[0, k], mom[1:, k], np.ones(k.sum()), n_params=1)
        return float(lam[0]), float(np.sqrt(cov[0, 0]))

    core, err = fit(0.772, 0.812)
    assert core < -5 * err, (core, err)
    assert core < -0.15, (core, err)
    edges = peak_safe_edges([0.2113, 0.692, 0.772, 0.812, 1.1], m, 0.105)
    b = int(np.searchsorted(edges, 0.7827) - 1)
    assert edges[b] <= 0.678
    assert edges[b + 1] >= 0.887
    whole, err = fit(edges[b], edges[b + 1])
    assert abs(whole) < 3 * err + 0.05, (whole, err)


def test_measure_counts_each_pair_in_searchsorteds_bin():
    """measure's bin of a pair (the edges at or below its mass, by comparisons) is
    searchsorted(edges, m, "right") − 1: pairs exactly on an edge go up, below the first and
    from the last edge on (and NaN masses, weights or angles) nowhere; n_pairs counts the
    OS pairs with a fit weight per bin, n_eff follows the same pairs."""
    from gammastar.corrections.polarisation import measure

    rng = np.random.default_rng(3)
    edges = np.array([0.2113, 0.3, 0.45, 0.7, 1.1])
    m = np.concatenate([rng.uniform(0.1, 1.2, 5000), edges, np.nextafter(edges, 0), [np.nan]])
    n = m.size
    pairs = {"m": m, "pT": np.ones(n), "pz": np.ones(n), "charge": rng.choice([0, 2], n),
             "cos_theta_hel": rng.uniform(-1, 1, n), "phi_hel": rng.uniform(-3, 3, n),
             "weight": rng.uniform(0.5, 2.0, n), "acc": np.ones(n)}  # fmt: skip
    pairs["weight"][:100] = 0.0  # no fit weight
    pairs["phi_hel"][100:150] = np.nan  # no angles
    res = measure(pairs, None, edges, min_pairs=n + 1)  # counts only: no bin is fitted
    b = np.searchsorted(edges, m, side="right") - 1
    use = (pairs["weight"] != 0) & np.isfinite(pairs["phi_hel"])
    expect = [int(np.sum(use & (b == i) & (pairs["charge"] == 0))) for i in range(4)]
    assert res.n_pairs.tolist() == expect
    assert sum(expect) < np.sum(pairs["charge"] == 0)  # some pairs are in no bin
    w = pairs["weight"]
    n_eff = [w[use & (b == i)].sum() ** 2 / np.sum(w[use & (b == i)] ** 2) for i in range(4)]
    np.testing.assert_allclose(res.n_eff, n_eff, rtol=1e-12)
    assert np.all(np.isnan(res.lambda_theta))
