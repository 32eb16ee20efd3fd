"""gammastar.corrections.lambda_correction: the measured λ_θ's selection shift from a detector simulation,
and the selection that applies it (``unfold.polarisation_correction``).

The synthetic detector below has no acceptance cuts (a = 1) and a mass resolution that depends
on the decay angle, as the mock's scattering does: decays with |cos θ*| > 0.8 are
reconstructed 40 MeV low. A tenth of the γ* sit in a narrow peak at 0.53 GeV, so the bin below
it, 0.4–0.5 GeV, collects the peak's asymmetric decays and its fit returns a λ_θ above the truth
(+0.31 at an isotropic truth, the response's slope 1.26), while the peak's own bin, 0.5–0.6 GeV,
returns one below it (−0.24, slope 0.80). The numbers asserted are the generated λ_θ (the truth) and the
fits' own errors.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from gammastar.config import load_config
from gammastar.config.yields import PolarisationCorrectionConfig
from gammastar.corrections.lambda_correction import (
    MAX_SIMULATION_SHARE,
    RECO,
    TRUE,
    LambdaCorrection,
    corrected,
    read_simulation,
    selection_correction,
)
from gammastar.corrections.pair_acceptance.lepton import LeptonAcceptance
from gammastar.corrections.pair_acceptance.table import PairAcceptance
from gammastar.corrections.polarisation import measure
from gammastar.corrections.polarisation.angles import angular_functions
from gammastar.corrections.polarisation.fit import fit_lambdas
from gammastar.errors import InputError

REPO = Path(__file__).resolve().parents[1]
EDGES = np.array([0.4, 0.5, 0.6])


@pytest.fixture(scope="module")
def open_detector():
    """A per-pair acceptance without cuts: a = 1 for every decay (its moments ⟨c²⟩ = 1/3 etc.
    to the default quadrature's ~10⁻⁴; a coarse one biases the fit's λ_θ)."""
    return PairAcceptance.build(LeptonAcceptance(0.0, 0.0, 3.1), lepton_mass=0.1057,
                                mass_range=(0.3, 0.7), p_max=100.0, grid=(3, 4, 5))  # fmt: skip


def _decays(lam: float, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """cos θ*, φ* of n decays of W ∝ 1 + λ cos²θ* (accept-reject)."""
    c = rng.uniform(-1, 1, 3 * n)
    c = c[rng.uniform(0, 1 + max(lam, 0), c.size) < 1 + lam * c**2][:n]
    assert c.size == n  # 3n tries hold n accepted ones for |λ| ≤ 1
    return c, rng.uniform(-np.pi, np.pi, c.size)


def _sample(
    lam: float, n: int, seed: int, shift: float = 0.04, lam_peak: float | None = None
) -> dict[str, np.ndarray]:
    """Simulation rows (:data:`RECO` and :data:`TRUE` columns) of n γ*: 9/10 uniform in
    0.4–0.65 GeV, 1/10 in a peak at 0.525–0.535 GeV, of λ_θ = ``lam`` (the peak's
    ``lam_peak`` when given); |cos θ*| > 0.8 reconstructed ``shift`` low, everything else
    exact."""
    rng = np.random.default_rng(seed)
    peak = rng.uniform(size=n) < 0.1
    c, phi = _decays(lam, n, rng)
    if lam_peak is not None:
        c_p, phi_p = _decays(lam_peak, n, rng)
        c, phi = np.where(peak, c_p, c), np.where(peak, phi_p, phi)
    m = np.where(peak, rng.uniform(0.525, 0.535, n), rng.uniform(0.4, 0.65, n))
    pt, pz = rng.uniform(0.2, 1.5, n), rng.uniform(15.0, 40.0, n)
    true = dict(zip(TRUE, (m, pt, pz, c, phi), strict=True))
    reco = dict(zip(RECO, (m - shift * (np.abs(c) > 0.8), pt, pz, c, phi), strict=True))
    return reco | true


def _fit(rows, pa) -> tuple[np.ndarray, np.ndarray]:
    """The data's fit: reconstructed bins, weight 1."""
    n = rows["m"].size
    pol = measure({**{k: rows[k] for k in RECO}, "charge": np.zeros(n, np.int8),
                   "weight": np.ones(n), "acc": np.ones(n)}, pa, EDGES)  # fmt: skip
    return pol.lambda_theta, pol.lambda_theta_err


@pytest.fixture(scope="module")
def correction(open_detector):
    """The response of the synthetic detector, from an isotropic simulation of 5·10⁵ γ*: its
    shift is ≈ 25σ per bin (35σ at 10⁶: ∝ √N; the tests ask for 10σ), and data of λ_θ = ∓0.3
    corrected by the shift alone stay ≥ 5σ off (≈ 7.5σ at 10⁶; the data's error is part of
    that σ and does not shrink with N; the tests ask for 3σ)."""
    return selection_correction(_sample(0.0, 500_000, seed=1), open_detector, EDGES, 0.01)


def test_the_simulation_sees_the_shift_and_the_truth(correction):
    """At the simulation's own truth (isotropic) the fit at the truth returns 0 within 3σ, the
    fit as the data's is shifted up in the bin below the peak and down in the peak's, by many σ."""
    c = correction
    assert np.all(np.abs(c.truth) < 3 * c.truth_err)
    err = np.hypot(c.reco_err, c.truth_err)
    assert c.delta[0] > 10 * err[0]
    assert c.delta[1] < -10 * err[1]


@pytest.mark.parametrize("lam_data", [-0.3, 0.3])
def test_the_correction_returns_the_truth_of_data_with_another_lambda(
    open_detector, correction, lam_data
):
    """Data with λ_θ = ∓0.3 through the same detector: its fit is off by many σ, and so is the
    fit minus the simulation's shift at its own truth (the response's slope is not 1: 0.08 off);
    the corrected λ_θ lies within 3σ of the truth in both bins (measured: within 0.005), its
    error the three in quadrature."""
    corr = correction
    lam, err = _fit(_sample(lam_data, 1_000_000, seed=2), open_detector)
    assert np.all(np.abs(lam - lam_data) > 5 * err)  # uncorrected: far off
    shift_err = np.hypot(corr.reco_err, corr.truth_err)
    assert np.all(np.abs(lam - corr.delta - lam_data) > 3 * np.hypot(err, shift_err))
    block = {"mass_edges": EDGES.tolist(), "lambda_theta": lam.tolist(),
             "lambda_theta_err": err.tolist()}  # fmt: skip
    out = corrected(block, corr)
    got, got_err = np.array(out["lambda_theta"]), np.array(out["lambda_theta_err"])
    want_err = np.sqrt((err / corr.slope) ** 2 + (corr.reco_err / corr.slope) ** 2
                       + corr.truth_err**2)  # fmt: skip
    np.testing.assert_allclose(got_err, want_err, rtol=1e-12)
    assert np.all(np.abs(got - lam_data) < 3 * got_err), (got, got_err)


def test_a_peak_polarised_otherwise_than_the_simulation_still_helps_below_it(
    open_detector, correction
):
    """Data whose peak has λ_θ = +0.6 and continuum 0 (the simulation: all isotropic): the bin
    below the peak collects the peak's tail, so its fit moves with the peak's λ_θ, which one
    slope per bin books partly as the bin's own truth (the module docstring's assumption of
    neighbours that move together). The correction still takes the bin more than half of the
    way from the fit (+0.39) to the truth (0; measured: +0.07), and the peak's own bin within
    0.1 of its truth (the mixture's, from the data's true angles by moments)."""
    from gammastar.corrections.polarisation.angles import truth_lambdas

    data = _sample(0.0, 1_000_000, seed=5, lam_peak=0.6)
    truth = truth_lambdas(data["m_true"], data["cos_theta_hel_true"], data["phi_hel_true"],
                          EDGES)["lambda_theta"]  # fmt: skip
    assert abs(truth[0]) < 0.02  # the continuum alone (±0.006 at 3.6·10⁵ decays)
    lam, err = _fit(data, open_detector)
    out = corrected({"mass_edges": EDGES.tolist(), "lambda_theta": lam.tolist(),
                     "lambda_theta_err": err.tolist()}, correction)  # fmt: skip
    got = np.array(out["lambda_theta"])
    assert abs(got[0] - truth[0]) < 0.5 * abs(lam[0] - truth[0]), (got, lam, truth)
    assert abs(got[1] - truth[1]) < 0.1, (got, truth)


@pytest.mark.slow
def test_a_resolution_blind_to_the_angle_needs_no_correction(open_detector):
    """A mass resolution that does not depend on the decay angle (15 MeV Gaussian for every γ*,
    the peak included) selects no angles: at λ_θ = +0.5 the shift is 0 within 3σ of the fits
    (their errors: the γ* the two sides share make the true scatter smaller) and the slope 1,
    though the two sides' γ* differ at every bin edge; and the reweighting moves the truth fit
    by ±STEP within 3σ (the 1 + λ cos²θ* family is closed under it)."""
    from gammastar.corrections.lambda_correction import STEP, ResponseFits

    rows = _sample(0.5, 1_000_000, seed=3, shift=0.0)
    rows["m"] = rows["m"] + np.random.default_rng(6).normal(0.0, 0.015, rows["m"].size)
    corr = selection_correction(rows, open_detector, EDGES, 0.01)
    err = np.hypot(corr.reco_err, corr.truth_err)
    assert np.all(np.abs(corr.delta) < 3 * err), corr.delta
    # measured 1.002 / 1.000; the angle-selecting detector above gives 1.26 / 0.80
    assert np.all(np.abs(corr.slope - 1.0) < 0.05), corr.slope
    assert np.all(np.abs(corr.truth - 0.5) < 3 * corr.truth_err)
    f = ResponseFits.build(rows, open_detector, EDGES, 0.01)
    for delta in (STEP, -STEP):
        moved = (
            f.fit_truth(f.weight(delta, side="truth")).lambda_theta - f.nominal_truth.lambda_theta
        )
        assert np.all(np.abs(moved - delta) < 3 * corr.truth_err), moved


@pytest.fixture(scope="module")
def energy_cut():
    """A per-pair acceptance with one lepton cut, E ≥ 4 GeV (no angular window): a pair of
    10–30 GeV keeps only its symmetric decays, |cos θ*| below 0.2–0.8 (a quadrature fine in
    cos θ*, since φ* does not matter here)."""
    return PairAcceptance.build(LeptonAcceptance(4.0, 0.0, 3.1), lepton_mass=ML, mass_range=(0.35, 0.65),
                                p_max=40.0, grid=(13, 64, 3), quadrature=(256, 4))  # fmt: skip


ML = 0.1057


def _smeared_cut(lam: float, n: int, seed: int, res: float = 0.2):
    """n γ* of 0.4–0.6 GeV and 10–30 GeV with λ_θ = ``lam``, each lepton's energy E± =
    γ(E* ± β p* cos θ*) measured with a ``res`` relative resolution and cut at 4 GeV on the
    measured value (a reconstruction that migrates decays across the cut's edge in cos θ*); the
    kinematics and angles are measured exactly. Returns the simulation's reconstructed rows
    (:data:`RECO` and :data:`TRUE`) and its generator-level rows (:data:`GENERATED`: every γ*,
    the cut left to the analysis)."""
    from gammastar.corrections.lambda_correction import GENERATED

    rng = np.random.default_rng(seed)
    m, p = rng.uniform(0.4, 0.6, n), rng.uniform(10.0, 30.0, n)
    th = rng.uniform(0.04, 0.1, n)
    c, phi = _decays(lam, n, rng)
    e = np.hypot(p, m)
    gamma, beta, e_star = e / m, p / e, m / 2
    p_star = np.sqrt(e_star**2 - ML**2)
    e_plus, e_minus = gamma * (e_star + beta * p_star * c), gamma * (e_star - beta * p_star * c)
    true = dict(zip(TRUE, (m, p * np.sin(th), p * np.cos(th), c, phi), strict=True))
    gen = dict(zip(GENERATED, (*true.values(), e_plus, np.full(n, 0.05), e_minus,
                               np.full(n, 0.05)), strict=True))  # fmt: skip
    seen = np.ones(n, bool)
    for energy in (e_plus, e_minus):
        seen &= energy * (1.0 + res * rng.standard_normal(n)) >= 4.0
    rows = {r: true[t][seen] for r, t in zip(RECO, TRUE, strict=True)}
    return rows | {t: v[seen] for t, v in true.items()}, gen


def test_the_generated_tree_removes_the_reconstructed_selection_at_the_cut(energy_cut):
    """A reconstruction that smears the lepton energies across the analysis's cut selects the
    recorded γ* by decay angle at the cut's edge, so their true angles fitted with the cut's
    acceptance (the truth side without a generator-level tree) return λ_θ ≈ +0.42 for a truth of
    +0.3 (measured +0.41–0.44, 5σ); the generator-level rows at the analysis's cut return the
    truth within 3σ (measured 0.29–0.31). Data of λ_θ = −0.2 through the same detector, fitted
    at −0.10/−0.12 (±0.02): the correction with the generated truth side gives the data's truth
    within 3σ; the reconstructed one cannot see the selection (its two sides are the same rows,
    slope 1) and returns the fit unchanged."""
    rows, gen = _smeared_cut(0.3, 400_000, seed=3)
    tree = selection_correction(rows, energy_cut, EDGES, 0.01)
    fixed = selection_correction(rows, energy_cut, EDGES, 0.01, gen)
    assert np.all(np.abs(fixed.truth - 0.3) < 3 * fixed.truth_err), fixed.truth
    assert np.all(tree.truth - 0.3 > 3 * tree.truth_err), tree.truth
    np.testing.assert_allclose(tree.slope, 1.0, rtol=1e-9)  # the same rows on both sides
    data, _ = _smeared_cut(-0.2, 400_000, seed=4)
    lam, err = _fit(data, energy_cut)
    block = {"mass_edges": EDGES.tolist(), "lambda_theta": lam.tolist(),
             "lambda_theta_err": err.tolist()}  # fmt: skip
    good = np.array(corrected(block, fixed)["lambda_theta"])
    good_err = np.array(corrected(block, fixed)["lambda_theta_err"])
    bad = np.array(corrected(block, tree)["lambda_theta"])
    assert np.all(np.abs(good + 0.2) < 3 * good_err), (good, good_err)
    # the reconstructed truth side returns the fit itself (λ_t = λ_r, s = 1), which is off
    np.testing.assert_allclose(bad, lam, rtol=0, atol=1e-9)
    assert np.all(np.abs(lam + 0.2) > 3 * err), (lam, err)


def test_generated_weight_is_the_lepton_cuts_at_the_truth(energy_cut):
    """Each generated row weighs 1 when both its leptons pass the analysis's cut at their true
    energies and 0 otherwise (the cut's own numbers: 4 GeV)."""
    from gammastar.corrections.lambda_correction import generated_weight

    rows = {"E_plus_true": np.array([5.0, 3.0, 4.0, 10.0]),
            "E_minus_true": np.array([5.0, 9.0, 4.0, 3.99]),
            "theta_plus_true": np.full(4, 0.05), "theta_minus_true": np.full(4, 0.05)}  # fmt: skip
    np.testing.assert_allclose(generated_weight(rows, energy_cut), [1, 0, 1, 0], rtol=0, atol=1e-12)
    # with a window each lepton's angle goes with its own energy: the minus lepton outside
    # the window fails its pair, a soft plus lepton fails its pair whatever the angles
    from types import SimpleNamespace

    window = SimpleNamespace(lepton=LeptonAcceptance(4.0, 0.035, 0.12), lepton_mass=ML)
    rows = {"E_plus_true": np.array([5.0, 5.0, 3.0]), "theta_plus_true": np.array([0.05, 0.2, 0.05]),
            "E_minus_true": np.array([10.0, 10.0, 10.0]),
            "theta_minus_true": np.array([0.2, 0.05, 0.05])}  # fmt: skip
    np.testing.assert_allclose(generated_weight(rows, window), [0, 0, 0], rtol=0, atol=1e-12)
    rows["theta_minus_true"][0] = 0.1
    np.testing.assert_allclose(generated_weight(rows, window), [1, 0, 0], rtol=0, atol=1e-12)


def test_fit_lambdas_agrees_with_measure_on_the_simulation(open_detector):
    """selection_correction's fit is the selection's (measure): the same λ_θ as fit_lambdas
    on the bin's rows directly (to the fit's convergence, 10⁻⁶)."""
    r = _sample(0.2, 200_000, seed=4)
    corr = selection_correction(r, open_detector, EDGES, 0.01)
    k = (r["m"] >= 0.4) & (r["m"] < 0.5)
    mom = open_detector.moments_at(r["m"][k], np.hypot(r["pT"][k], r["pz"][k]),
                                   np.arctan2(r["pT"][k], r["pz"][k]))  # fmt: skip
    lam, _ = fit_lambdas(angular_functions(r["cos_theta_hel"][k], r["phi_hel"][k]), mom[0],
                         mom[1:], np.ones(int(k.sum())), n_params=3)  # fmt: skip
    assert corr.reco[0] == pytest.approx(lam[0], abs=1e-6)


def test_corrected_refuses_other_bins_and_keeps_unfitted_bins():
    c = LambdaCorrection(EDGES, np.array([0.2, np.nan]), np.array([0.03, np.nan]),
                         np.array([0.05, 0.0]), np.array([0.04, 0.04]),
                         np.array([1.25, np.nan]), np.array([900, 10]))  # fmt: skip
    with pytest.raises(ValueError, match="other mass bins"):
        corrected({"mass_edges": [0.4, 0.55, 0.6], "lambda_theta": [0, 0],
                   "lambda_theta_err": [0.1, 0.1]}, c)  # fmt: skip
    block = {"mass_edges": EDGES.tolist(), "lambda_theta": [0.3, None],
             "lambda_theta_err": [0.12, None], "lambda_phi": [0.01, 0.02]}  # fmt: skip
    out = corrected(block, c)
    assert out["lambda_theta"][0] == pytest.approx(0.05 + 0.1 / 1.25, abs=1e-12)
    assert np.isnan(out["lambda_theta"][1])  # no fit in the data either: stays without one
    assert out["lambda_phi"] == [0.01, 0.02]  # not the acceptance's: as measured (copied)
    sc = out["selection_correction"]
    assert sc["uncorrected_bins"] == [1]
    assert sc["lambda_theta_measured"][0] == pytest.approx(0.3, abs=1e-12)
    assert block["lambda_theta"] == [0.3, None]  # the input block is not changed (copied)


@pytest.fixture(scope="module")
def simulation_file(tmp_path_factory):
    """A small mock file of the NA60-like config: the simulation's layout."""
    from gammastar.mock.generate import generate_file

    cfg = load_config(REPO / "analysis" / "na60_like.yaml")
    path = tmp_path_factory.mktemp("lamsim") / "sim.root"
    generate_file(cfg, path, events=300_000, seed=801)
    return path


def test_read_simulation_names_the_missing_branch(simulation_file, tmp_path):
    rows = read_simulation([simulation_file])
    assert set(rows) == set(RECO + TRUE)
    # the truth tree's cos θ* of the μ+ lie in [-1, 1] (float32) and the reconstructed ones
    # follow the true ones, as the masses and momenta do (the mock's resolution: correlation
    # near 1)
    for c in ("cos_theta_hel", "cos_theta_hel_true"):
        assert np.all(np.abs(rows[c]) <= 1 + 1e-6)
    for r, t in zip(RECO, TRUE, strict=True):
        f = np.cos if r == "phi_hel" else np.asarray  # φ* wraps at ±π
        assert np.corrcoef(f(rows[r]), f(rows[t]))[0, 1] > 0.9, r
    with pytest.raises(InputError, match=r"no 'nope'.*unfold\.polarisation_correction"):
        read_simulation([simulation_file], tree="nope")
    import uproot

    bad = tmp_path / "old.root"  # a truth tree of before the angles
    with uproot.open(simulation_file) as f:
        t = f["truth"].arrays(["m", "pT", "pz", "m_true"], library="np")
    with uproot.recreate(bad) as out:
        out["truth"] = t
    with pytest.raises(InputError, match=r"old\.root.*no branch 'cos_theta_hel'"):
        read_simulation([bad])


def test_the_mock_writes_every_gstar_whose_true_muons_pass(simulation_file):
    """The mock's ``truth_generated`` tree holds exactly the muon γ* sources whose two true
    muons pass the analysis's lepton cuts (E ≥ 3 GeV, 35–120 mrad; NA60-like), reconstructed or
    not: the same event numbers as the generator's sources (same seed) selected here with
    :class:`LeptonAcceptance` at their true momenta; its energies and angles are those muons'."""
    from gammastar.corrections.lambda_correction import read_generated
    from gammastar.mock.acceptance import MUON_GSTAR
    from gammastar.mock.generator import MockGenerator
    from gammastar.mock.ntuple import GENERATED_TREE

    cfg = load_config(REPO / "analysis" / "na60_like.yaml")
    lep = LeptonAcceptance.from_config(cfg.unfold.lepton_acceptance)
    want = []
    for ch in MockGenerator(cfg, seed=801).chunks(300_000):
        s = ch.sources
        ok = np.isin(s.channel, list(MUON_GSTAR)) & lep.passes(s.mu1) & lep.passes(s.mu2)
        want.append(ch.event[ok])
    import uproot

    with uproot.open(simulation_file) as f:
        got = f[GENERATED_TREE].arrays(library="np")
    # η → μμ rows are in the tree too (the truth tree's channels); the sets agree without them
    from gammastar.cocktail_channels import Channel

    mine = got["event"][got["channel"] != int(Channel.ETA_MUMU)]
    assert np.array_equal(np.sort(mine), np.sort(np.concatenate(want)))  # integers
    # the rows also in the truth tree (reconstructed too) carry its true γ* and μ+ angles (the
    # same float32 numbers from the same muons; compared to their rounding)
    with uproot.open(simulation_file) as f:
        tr = f["truth"].arrays(library="np")
    common, i, j = np.intersect1d(got["event"], tr["event"], return_indices=True)
    assert common.size > 0.8 * got["event"].size  # most are reconstructed too
    for c in ("m_true", "pT_true", "pz_true", "cos_theta_hel_true", "phi_hel_true"):
        np.testing.assert_allclose(got[c][i], tr[c][j], rtol=1e-6, atol=1e-6, err_msg=c)
    rows = read_generated([simulation_file], tree=GENERATED_TREE)
    for e in ("E_plus_true", "E_minus_true"):  # the cuts, to the tree's float32 rounding
        assert rows[e].min() >= 3.0 * (1 - 1e-6)
    for t in ("theta_plus_true", "theta_minus_true"):
        assert rows[t].min() >= 0.035 * (1 - 1e-6)
        assert rows[t].max() <= 0.120 * (1 + 1e-6)
    with pytest.raises(InputError, match=r"no 'nope'.*generated_tree"):
        read_generated([simulation_file], tree="nope")


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    """The data of test_select_applies_the_correction: 2·10⁵ sources of the NA60-like config
    (seed 21), generated once for both of its variants (the mock does not read the unfold
    section they differ in)."""
    from gammastar.mock.generate import generate_file

    cfg = load_config(REPO / "analysis" / "na60_like.yaml")
    path = tmp_path_factory.mktemp("lamdata") / "mock.root"
    generate_file(cfg, path, events=200_000, seed=21)
    return path


@pytest.mark.parametrize("generated_tree", [None, "truth_generated"])
def test_select_applies_the_correction(simulation_file, data_file, tmp_path, generated_tree,
                                       caplog):  # fmt: skip
    """The selection with ``unfold.polarisation_correction``: select.json's λ_θ is the
    measured λ_θ through the simulation's response, its error the three in quadrature, and the
    acceptance's nodes follow the corrected values; the simulation is an input of the select
    stage; the truth side's rows are recorded (the generator-level tree when configured); the
    simulation's share of the variance is recorded, and a simulation hardly larger than the
    data (3·10⁵ against 2·10⁵ sources) is warned about in the bins where it dominates."""
    import shutil

    from gammastar.pipeline import _select_inputs
    from gammastar.selection.stage import select

    cfg = load_config(REPO / "analysis" / "na60_like.yaml")
    pc = PolarisationCorrectionConfig(simulation=[str(simulation_file)],
                                      generated_tree=generated_tree)  # fmt: skip
    cfg = cfg.model_copy(update={"output": str(tmp_path), "unfold": cfg.unfold.model_copy(
        update={"polarisation_correction": pc})})  # fmt: skip
    shutil.copy(data_file, tmp_path / "mock.root")
    assert simulation_file in _select_inputs(cfg)
    with caplog.at_level(logging.WARNING, logger="gammastar"):
        select(cfg)
    pol = json.loads((tmp_path / "select.json").read_text())["polarisation"]
    sc = pol["selection_correction"]
    ok = [i for i in range(len(pol["lambda_theta"])) if i not in sc["uncorrected_bins"]]
    assert ok, "the simulation corrects at least one bin"
    shares = []
    for i in ok:
        s = sc["simulation_slope"][i]
        want = sc["simulation_truth"][i] + (sc["lambda_theta_measured"][i]
                                            - sc["simulation_reco"][i]) / s  # fmt: skip
        assert pol["lambda_theta"][i] == pytest.approx(want, abs=1e-12)
        sim_var = (sc["simulation_reco_err"][i] / s) ** 2 + sc["simulation_truth_err"][i] ** 2
        want_err = np.sqrt((sc["lambda_theta_measured_err"][i] / s) ** 2 + sim_var)
        assert pol["lambda_theta_err"][i] == pytest.approx(want_err, rel=1e-12)
        assert sc["simulation_share"][i] == pytest.approx(sim_var / want_err**2, rel=1e-12)
        shares.append(sc["simulation_share"][i])
    assert all(sc["simulation_share"][i] is None for i in sc["uncorrected_bins"])
    # 1.5× the data's sources: the simulation's part is a large share of the variance
    # (0.3–0.5 in these bins), warned about bin by bin
    big = [i for i, x in zip(ok, shares, strict=True) if x > MAX_SIMULATION_SHARE]
    assert big, shares
    warned = [r.getMessage() for r in caplog.records if "own statistics" in r.getMessage()]
    assert len(warned) == 1
    e = pol["mass_edges"]
    assert all(f"{e[i]:.3f}-{e[i + 1]:.3f}" in warned[0] for i in big)
    assert sc["simulation"] == [str(simulation_file)]
    if generated_tree is not None:  # the truth side is the generator level's fit
        from gammastar.corrections.lambda_correction import read_generated
        from gammastar.corrections.pair_acceptance import fiducial_from_config as fid_of

        want = selection_correction(
            read_simulation([simulation_file]), fid_of(cfg, lambda_theta=0.0).acceptance,
            pol["mass_edges"], cfg.unfold.min_acceptance,
            read_generated([simulation_file], tree=generated_tree),
        )  # fmt: skip
        got_t = np.array([np.nan if x is None else x for x in sc["simulation_truth"]], float)
        np.testing.assert_allclose(got_t, want.truth, rtol=1e-9, equal_nan=True)
    assert sc["truth_tree"] == (generated_tree or "truth")  # the config's name, copied
    assert sc["truth_side"].startswith(f"'{generated_tree or 'truth'}': the "
                                       + ("generator-level" if generated_tree else "reconstructed"))  # fmt: skip
    fid = json.loads((tmp_path / "select.json").read_text())["unfold"]["fiducial"]
    # the acceptance's λ_θ nodes are the corrected values' (not the fit's own)
    from gammastar.corrections.pair_acceptance import fiducial_from_config

    table = fiducial_from_config(cfg, lambda_theta=0.0).acceptance

    def nodes_of(values):
        return table.lambda_nodes(pol["mass_edges"],
                                  [np.nan if x is None else x for x in values])  # fmt: skip

    nodes = np.asarray(fid["lambda_theta"], float)
    np.testing.assert_allclose(nodes, nodes_of(pol["lambda_theta"]), rtol=0, atol=1e-9)
    assert np.max(np.abs(nodes - nodes_of(sc["lambda_theta_measured"]))) > 0.01


def test_config_refuses_a_correction_without_a_measured_lambda():
    from pydantic import ValidationError

    cfg = load_config(REPO / "analysis" / "na60_like.yaml")
    raw = cfg.unfold.model_dump()
    raw.update(decay_lambda_theta=0.0, polarisation_correction={"simulation": ["s.root"]})
    with pytest.raises(ValidationError, match="needs decay_lambda_theta: 'measured'"):
        type(cfg.unfold).model_validate(raw)


def test_from_block_gives_back_the_correction_a_block_records(correction):
    """A written block's ``selection_correction`` rebuilds the correction (what a bootstrap
    replica's refit applies): the same numbers (copies through floats, compared exactly), and
    applied to the same fit the same corrected λ_θ."""
    from dataclasses import replace

    from gammastar.core.artifacts import json_text

    lam, err = np.array([0.35, -0.2]), np.array([0.05, 0.04])
    block = corrected({"mass_edges": EDGES.tolist(), "lambda_theta": lam.tolist(),
                       "lambda_theta_err": err.tolist()}, correction)  # fmt: skip
    back = LambdaCorrection.from_block(json.loads(json_text(block)))  # select.json's writer
    for field in ("mass_edges", "reco", "reco_err", "truth", "truth_err", "slope", "n_reco"):
        np.testing.assert_array_equal(getattr(back, field), getattr(correction, field))
    # a bin without a simulation fit is written as null and read back as NaN
    nan_bin = replace(correction, slope=np.array([correction.slope[0], np.nan]))
    again = LambdaCorrection.from_block(json.loads(json_text(corrected(
        {"mass_edges": EDGES.tolist(), "lambda_theta": lam.tolist(),
         "lambda_theta_err": err.tolist()}, nan_bin))))  # fmt: skip
    assert np.isnan(again.slope[1])
    assert not again.usable()[1]
    # recomputed from those copies by the same arithmetic: equal to its rounding
    np.testing.assert_allclose(back.apply(lam, err)[0], block["lambda_theta"], rtol=1e-14)


def test_config_refuses_a_correction_for_both_flavours(tmp_path):
    """One simulation serves one flavour: ``input.lepton: [mu, e]`` with the key is refused,
    naming it (here by the ee flavour's own rule first: its λ_θ is a number, not measured)."""
    import yaml

    from gammastar.errors import ConfigError

    raw = yaml.safe_load((REPO / "analysis" / "na60_like_both.yaml").read_text())
    raw["unfold"]["polarisation_correction"] = {"simulation": ["s.root"]}
    path = tmp_path / "both.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=r"both\.yaml: unfold\..*polarisation_correction"):
        load_config(path)
