"""The model below a both-channels run's seam: fitted to the full-phase-space channel's pairs
inside its lepton acceptance (``yields.extrapolation_below_seam``), sampled by the reach where
no flow is, and its error on N_sig where every A′ comes from it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from test_extrapolation import MASS, _fit, _toy, _ToyRegion

from gammastar.physics.sampling import ParametricSampler
from gammastar.reach.acceptance import KinematicSample
from gammastar.yields.extrapolation.nsig.arm import nsig_full_space_error

SEAM = 0.22
TRUTH = (0.15, 3.37, 1.45)
"""The toy's γ* below the seam (T GeV, ȳ, σ_y): the mock's π0 width (PYTHIA 8.317 p + p σ_y
1.47, docs/explanation/physics.md §3.2) at the beam's c.m. rapidity."""


@pytest.fixture(scope="module")
def electron_config():
    """The demo's electron flavour with the fit's block stated without the mock's map: the arm's
    cuts alone (E > 1 GeV, 5-100 mrad), the Dalitz decays' λ_θ = 1."""
    from pathlib import Path

    from gammastar.config import flavour_config, load_config
    from gammastar.config.yields import BelowSeamFit, LeptonAcceptanceConfig

    cfg = load_config(Path(__file__).parents[1] / "analysis" / "na60_like_both.yaml")
    block = BelowSeamFit(
        lepton_acceptance=LeptonAcceptanceConfig(min_energy=1.0, theta_min=0.005, theta_max=0.1),
        decay_lambda_theta=1.0,
    )
    cfg = cfg.model_copy(
        update={"yields": cfg.yields.model_copy(update={"extrapolation_below_seam": block})}
    )
    return flavour_config(cfg, "e")


def _pairs(region, n, seed, centres=None):
    """Toy dielectrons: ``n`` γ* of :data:`TRUTH` at the centres of 10 MeV slices over
    0.03-0.21 GeV (or at ``centres``), kept with the region's per-pair acceptance A (the
    detector), weighted as a map route weights them, 1/acc with a stand-in map value acc = 0.5
    (the fit replaces it by 1/A)."""
    rng = np.random.default_rng(seed)
    centres = np.arange(0.035, 0.21, 0.01) if centres is None else np.asarray(centres)
    parts = [ParametricSampler(*TRUTH).sample(c, n // centres.size, seed=seed + i) | {"m": c}
             for i, c in enumerate(centres)]  # fmt: skip
    qt = np.concatenate([p["qT"] for p in parts])
    e = np.concatenate([p["E"] for p in parts])
    m = np.concatenate([np.full(p["qT"].size, p["m"]) for p in parts])
    keep = rng.random(m.size) < region.acceptance.of_kinematics(m, qt, e)
    y = np.arccosh(e / np.sqrt(qt**2 + m**2))
    return pd.DataFrame({"m": m, "qT": qt, "E": e, "pT": qt, "y": y, "acc": 0.5,
                         "weight": 2.0})[keep]  # fmt: skip


def test_the_fit_below_the_seam_finds_the_rapidity_the_arm_sees(electron_config):
    """ȳ and σ_y of the toy's γ* come back within 3σ of the fit's sandwich error: the arm's
    5-100 mrad see y ≈ 3-6, the forward side of the distribution, enough to fit both (the
    dimuon spectrometer's ±0.5 units are not)."""
    from gammastar.yields.below_seam import below_seam_region, fit_below_seam

    region = below_seam_region(electron_config, SEAM)
    pairs = _pairs(region, 60_000, seed=5)
    edges = np.array([0.03, 0.09, 0.15, 0.21, 0.3])  # the last bin lies above the seam: dropped
    ex = fit_below_seam(electron_config, pairs, edges, SEAM)
    assert ex.edges == pytest.approx(edges[:4], abs=1e-12)
    cov = ex.covariance_stat if ex.covariance_stat is not None else ex.covariance
    i_s, i_m = ex.parameter_index("y_sigma"), ex.parameter_index("y_mean")
    assert abs(ex.y_sigma[0] - TRUTH[2]) < 3 * np.sqrt(cov[i_s, i_s])
    assert abs(ex.y_mean[0] - TRUTH[1]) < 3 * np.sqrt(cov[i_m, i_m])
    assert ex.y_sigma_external is None  # σ_y measured, not taken from outside as the dimuons take it


def test_the_arms_fit_above_the_seam_finds_the_rapidity_it_sees(electron_config):
    """``above_seam``: the arm's pairs from the seam up fitted alone (the bins below it
    dropped, the pairs below the seam ignored), ȳ and σ_y of the toy within 3σ of the fit's
    sandwich error; the record names the channel and is the fit's, and without the switch
    there is none."""
    from types import SimpleNamespace

    from gammastar.config.yields import BelowSeamFit
    from gammastar.yields.below_seam import above_seam_record, arm_region, fit_above_seam

    edges = np.array([0.03, 0.12, 0.22, 0.32, 0.42, 0.52])
    region = arm_region(electron_config, (0.03, 0.52))
    above = _pairs(region, 60_000, seed=8, centres=np.arange(0.225, 0.52, 0.01))
    below = _pairs(region, 20_000, seed=9)
    below["y"] = below["y"] + 2.0  # a different rapidity below the seam: must not enter
    ex = fit_above_seam(electron_config, pd.concat([below, above]), edges, SEAM)
    assert ex.edges == pytest.approx(edges[2:], abs=1e-12)
    cov = ex.covariance_stat if ex.covariance_stat is not None else ex.covariance
    i_s, i_m = ex.parameter_index("y_sigma"), ex.parameter_index("y_mean")
    assert abs(ex.y_sigma[0] - TRUTH[2]) < 3 * np.sqrt(cov[i_s, i_s])
    assert abs(ex.y_mean[0] - TRUTH[1]) < 3 * np.sqrt(cov[i_m, i_m])

    block = electron_config.yields.extrapolation_below_seam
    per = {"ee": {"cfg": electron_config, "inp": SimpleNamespace(phase_space="full", pairs=above),
                  "ap": SimpleNamespace(edges=edges)}}  # fmt: skip
    assert above_seam_record(electron_config, per, SEAM) is None  # the switch is off
    on = BelowSeamFit(**{**block.model_dump(), "above_seam": True})
    cfg = electron_config.model_copy(
        update={"yields": electron_config.yields.model_copy(update={"extrapolation_below_seam": on})})
    rec = above_seam_record(cfg, {"ee": {**per["ee"], "cfg": cfg}}, SEAM)
    assert rec["channel"] == "ee"
    assert rec["bin_edges"] == pytest.approx(edges[2:], abs=1e-12)


def test_the_arms_region_takes_lambda_theta_from_the_fiducial_channels_table(electron_config):
    """``lambda_from``: the arm's table takes that table's λ_θ(m), linear between its mass
    nodes, in place of the block's one number (its own nodes differ)."""
    from gammastar.yields.below_seam import arm_region

    src = arm_region(electron_config, (0.22, 1.1)).acceptance
    src = src.with_lambda(np.linspace(-0.5, 0.5, src.m_grid.size))
    got = arm_region(electron_config, (0.3, 0.7), lambda_from=src).acceptance
    assert not np.allclose(got.m_grid, src.m_grid[: got.m_grid.size])
    want = np.interp(got.m_grid, src.m_grid, np.asarray(src.lambda_theta))
    assert np.asarray(got.lambda_theta) == pytest.approx(want, abs=1e-12)
    assert np.ptp(np.asarray(got.lambda_theta)) > 0.1  # not the block's constant 1

    # a dimuon table: converted to electrons from β_μ² ≥ LAMBDA_MIN_BETA2, the block's below
    import dataclasses

    from gammastar.physics.constants import M_MU
    from gammastar.physics.vector_decay import lambda_for_lepton
    from gammastar.yields.below_seam import LAMBDA_MIN_BETA2

    mu_src = dataclasses.replace(src, lepton_mass=M_MU)
    got = arm_region(electron_config, (0.22, 0.7), lambda_from=mu_src).acceptance
    m_e = electron_config.input.lepton_mass
    lam = np.interp(got.m_grid, src.m_grid, np.asarray(src.lambda_theta))
    far = 1 - 4 * M_MU**2 / got.m_grid**2 >= LAMBDA_MIN_BETA2
    assert far.any()
    assert (~far).any()
    want = [lambda_for_lepton(v, m, M_MU, m_e) for v, m in zip(lam[far], got.m_grid[far], strict=True)]
    assert np.asarray(got.lambda_theta)[far] == pytest.approx(want, abs=1e-12)
    block = electron_config.yields.extrapolation_below_seam
    assert np.asarray(got.lambda_theta)[~far] == pytest.approx(block.decay_lambda_theta, abs=1e-12)


def test_lambda_theta_goes_from_the_muons_to_the_electrons_by_the_spin_density():
    """A transverse γ* shows λ_θ = (1 − δ)/(1 + δ), δ = 4m_μ²/m², in its muons and 1 in its
    electrons (1 + cos²θ + δ sin²θ); an unpolarised one 0 in both; a longitudinal one
    −(1 − δ) in muons (sin²θ + δ cos²θ) and −1 in electrons. Tolerance: the electron's own
    δ_e = 4m_e²/m² ≈ 10⁻⁵ at 0.3 GeV."""
    from gammastar.physics.vector_decay import lambda_for_lepton

    m_mu, m_e, m = 0.1056583755, 0.51099895e-3, 0.3
    d = 4 * m_mu**2 / m**2
    assert lambda_for_lepton((1 - d) / (1 + d), m, m_mu, m_e) == pytest.approx(1.0, abs=1e-4)
    assert lambda_for_lepton(0.0, m, m_mu, m_e) == pytest.approx(0.0, abs=1e-12)
    assert lambda_for_lepton(-(1 - d), m, m_mu, m_e) == pytest.approx(-1.0, abs=1e-4)
    assert lambda_for_lepton(0.1, m, m_e, m_e) == pytest.approx(0.1, abs=1e-12)  # same leptons


def test_below_seam_weights_replace_the_map_by_the_per_pair_acceptance(electron_config):
    """weight × acc / A inside the region (the sign and efficiency kept), 0 outside."""
    from gammastar.yields.below_seam import below_seam_region, below_seam_weights

    region = below_seam_region(electron_config, SEAM)
    pairs = pd.DataFrame({"m": [0.05, 0.05], "qT": [0.3, 0.3], "E": [20.0, 900.0],
                          "weight": [-4.0, 4.0], "acc": [0.25, 0.25]})  # fmt: skip
    a = region.acceptance.of_kinematics(pairs["m"].to_numpy(), pairs["qT"].to_numpy(), pairs["E"].to_numpy())
    assert a[0] >= region.min_acceptance
    assert a[1] == pytest.approx(0.0, abs=1e-12)  # 900 GeV > p_max: outside
    w = below_seam_weights(pairs, region)
    assert w[0] == pytest.approx(-1.0 / a[0], rel=1e-12)
    assert w[1] == pytest.approx(0.0, abs=1e-12)


def _forward(kin, y0):
    """A detector that sees, whatever the lifetime, the A′ with lab rapidity above ``y0``."""
    mt = np.sqrt(kin["qT"] ** 2 + MASS**2)
    hit = np.arccosh(np.maximum(kin["E"] / mt, 1.0)) > y0
    return KinematicSample(MASS, np.ones(hit.size), hit.astype(float)[:, None],
                           np.array([0.0, np.inf]), 1.0)  # fmt: skip


@pytest.fixture(scope="module")
def toy_fit():
    region = _ToyRegion()
    return _fit(region, _toy(region, 20_000, seed=21), model_variations=True)


def test_the_full_space_error_follows_the_tail_probability(toy_fit):
    """Every A′ from the model and a detector seeing y > y₀: 𝓔 = Φ((ȳ − y₀)/σ_y) (the p_T form
    drops out), so the fit's 1σ of ln N is |∂ ln Φ/∂σ_y| √C_σσ (ȳ fixed in the toy's fit) and
    each form's |ln 𝓔_alt/𝓔| its own tail by quadrature. Tolerance of the fit's part 3%: the ±1σ
    steps' curvature (≲ 1%) and the reweighted tail's Monte Carlo mean (2.6·10⁴ samples seen)."""
    ex = toy_fit
    _, t, mu, s = (float(v) for v in ex.at(MASS))
    kin = ParametricSampler(t, mu, s).sample(MASS, 400_000, seed=3)
    y0 = mu + 1.5 * s
    got = nsig_full_space_error(ex, MASS, kin, _forward(kin, y0), [1.0])
    cov = ex.covariance_stat
    i = ex.parameter_index("y_sigma")
    z = (mu - y0) / s
    dlog = norm.pdf(z) / norm.cdf(z) * (-z / s)  # ∂ ln Φ((ȳ − y₀)/σ)/∂σ
    assert got["fit"][0] == pytest.approx(abs(dlog) * np.sqrt(cov[i, i]), rel=0.03)
    from gammastar.yields.extrapolation.model import _Y, FORMS, NOMINAL

    def tail(form, centre, width):  # P(y > y₀) by the quadrature grid's midpoint sum
        return float(np.exp(form.log_y(_Y, centre, width))[y0 < _Y].sum() * (_Y[1] - _Y[0]))

    want = 0.0
    for name, rec in ex.model_variations.items():
        alt = tail(FORMS[rec.get("form", name)], rec.get("y_mean") or mu, rec["y_sigma"])
        want += np.log(alt / tail(NOMINAL, mu, s)) ** 2
    # the heavier-tailed logistic form's tail reweighted from the Gaussian draw: its mean's
    # Monte Carlo error ≈ 1.5% of the ratio (weights up to ~3 on ~2.6·10⁴ contributing samples)
    assert got["forms"][0] == pytest.approx(np.sqrt(want), abs=0.03)
    assert want > 0.05  # the forms differ in this tail
    assert got["forms_unresolved"][0] == pytest.approx(0.0, abs=1e-12)


def test_the_full_space_error_vanishes_for_a_detector_that_sees_everything(toy_fit):
    """𝓔 = 1 for every parameter and form: no error (rounding of Σw/Σw only)."""
    kin = ParametricSampler(*(float(v) for v in toy_fit.at(MASS)[1:])).sample(MASS, 50_000, seed=4)
    got = nsig_full_space_error(toy_fit, MASS, kin, _forward(kin, -np.inf), [1.0, 10.0])
    assert got["fit"] == pytest.approx(0.0, abs=1e-12)
    assert got["forms"] == pytest.approx(0.0, abs=1e-12)


def test_an_unresolved_tail_is_flagged_not_a_number(toy_fit):
    """A detector beyond every drawn sample (y₀ = ȳ + 8σ_y; P ≈ 10⁻¹⁵, none of 5·10⁴ drawn)
    and no direct draw: the forms' ratio is not measured, NaN and flagged."""
    _, t, mu, s = (float(v) for v in toy_fit.at(MASS))
    kin = ParametricSampler(t, mu, s).sample(MASS, 50_000, seed=5)
    got = nsig_full_space_error(toy_fit, MASS, kin, _forward(kin, mu + 8 * s), [1.0])
    assert np.isnan(got["forms"][0])
    assert got["forms_unresolved"][0] == pytest.approx(1.0, abs=1e-12)
    # with direct draws of each form over the full phase space (their own 5·10⁴ samples,
    # the same detector): tried, and at P ≈ 10⁻¹⁵ no more resolved than the reweighting
    calls = []

    def redraw(sampler, n, seed):
        calls.append(n)
        return _forward(sampler(MASS, n, seed), mu + 8 * s)

    got = nsig_full_space_error(toy_fit, MASS, kin, _forward(kin, mu + 8 * s), [1.0], redraw=redraw, seed=1)
    assert calls
    assert all(n == 50_000 for n in calls)
    assert got["forms_unresolved"][0] == pytest.approx(1.0, abs=1e-12)


def test_the_reach_samples_the_fitted_model_below_the_seam(toy_fit):
    """Below the seam without a flow the sampler takes the model fitted there (its T, ȳ, σ_y
    at the mass), every sample labelled extrapolated; above the seam the dimuon fit's."""
    from gammastar.yields.extrapolation.samplers import ExtrapolatedSampler

    below = toy_fit
    sp = ExtrapolatedSampler(None, toy_fit, _ToyRegion(), seam=0.6, below=below)
    got = sp.below_sampler(MASS)
    _, t, mu, s = (float(v) for v in below.at(MASS))
    assert (got.temperature, got.y_mean, got.y_sigma) == pytest.approx((t, mu, s), rel=1e-12)
    out = sp.sample(MASS, 1000, seed=1)
    assert out["extrapolated"].all()


def test_the_reach_error_takes_the_model_below_the_seam_and_the_fit_above(toy_fit):
    """One function for the scan and the studies: below the seam (no flow) the full-space
    error's e^w − 1, above it the fiducial fit's log-normal r (:func:`nsig_relative_error`).
    Equal computations on the same draw: the same numbers up to rounding."""
    from gammastar.yields.extrapolation.nsig import (
        NsigErrorSettings,
        nsig_reach_error,
        nsig_relative_error,
    )
    from gammastar.yields.extrapolation.samplers import ExtrapolatedSampler

    region = _ToyRegion()
    _, t, mu, s = (float(v) for v in toy_fit.at(MASS))
    kin = ParametricSampler(t, mu, s).sample(MASS, 50_000, seed=6)
    kin["extrapolated"] = np.ones(kin["qT"].size, bool)
    smp = _forward(kin, mu + s)
    below = ExtrapolatedSampler(None, toy_fit, region, seam=MASS + 0.1, below=toy_fit)
    p = nsig_full_space_error(toy_fit, MASS, kin, smp, [1.0])
    assert nsig_reach_error(below, MASS, kin, smp, [1.0]) == pytest.approx(
        np.expm1(np.hypot(p["fit"], p["forms"])), rel=1e-12)  # fmt: skip
    above = ExtrapolatedSampler(None, toy_fit, region, seam=MASS - 0.1, below=toy_fit)
    want = nsig_relative_error(toy_fit, region, MASS, kin, smp, [1.0],
                               settings=NsigErrorSettings(propagation="log"))  # fmt: skip
    assert nsig_reach_error(above, MASS, kin, smp, [1.0]) == pytest.approx(want, rel=1e-12)


def test_the_reach_takes_the_arms_model_above_the_seam_only_without_a_flow(toy_fit):
    """With the arm's fit (``arm``): no flow, from the seam up to the arm's last edge, the
    samples are the arm model's (their rapidity centre its ȳ within 5 standard errors, one
    unit away from the fiducial fit's), labelled; below the seam, beyond the arm's bins or
    with a flow, the sampler is as without it."""
    import dataclasses

    from gammastar.yields.extrapolation.samplers import ExtrapolatedSampler

    arm = dataclasses.replace(toy_fit, y_mean=toy_fit.y_mean + 1.0)
    sp = ExtrapolatedSampler(None, toy_fit, _ToyRegion(), seam=MASS - 0.1, arm=arm)
    assert sp.arm_covers(MASS)
    assert not sp.arm_covers(MASS - 0.2)  # below the seam
    assert not sp.arm_covers(float(arm.edges[-1]) + 0.1)
    flow = ExtrapolatedSampler(object(), toy_fit, _ToyRegion(), seam=MASS - 0.1, arm=arm)
    assert not flow.arm_covers(MASS)
    out = sp.sample(MASS, 20_000, seed=4)
    assert out["extrapolated"].all()
    mt = np.sqrt(out["qT"] ** 2 + MASS**2)
    y = np.arccosh(np.maximum(out["E"] / mt, 1.0))
    _, _, mu, s = (float(v) for v in arm.at(MASS))
    assert abs(y.mean() - mu) < 5 * s / np.sqrt(y.size)


def test_the_arm_normalised_in_its_own_region_gives_back_its_fits_fractions(toy_fit):
    """:func:`arm_in_fiducial` recomputes the model's and each form's fraction in a region: in
    the fit's own region they are the fit's f_F and the forms' recorded f_F (the same
    quadrature, 10⁻⁹), with no yield covariance left; the reach's error of the arm above the
    seam is then the fiducial fit's computation on that record."""
    from gammastar.yields.extrapolation.nsig import (
        NsigErrorSettings,
        nsig_reach_error,
        nsig_relative_error,
    )
    from gammastar.yields.extrapolation.nsig.arm import arm_in_fiducial
    from gammastar.yields.extrapolation.samplers import ExtrapolatedSampler

    region = _ToyRegion()
    arm = arm_in_fiducial(toy_fit, region)
    assert np.asarray(arm.fiducial_fraction) == pytest.approx(np.asarray(toy_fit.fiducial_fraction), rel=1e-9)
    assert toy_fit.model_variations
    for name, rec in toy_fit.model_variations.items():
        got = np.asarray(arm.model_variations[name]["fiducial_fraction"], dtype=float)
        assert got == pytest.approx(np.asarray(rec["fiducial_fraction"], dtype=float), rel=1e-9), name
    assert arm.yield_covariance is None

    _, t, mu, s = (float(v) for v in arm.at(MASS))
    kin = ParametricSampler(t, mu, s).sample(MASS, 50_000, seed=6)
    kin["extrapolated"] = np.ones(kin["qT"].size, bool)
    smp = _forward(kin, mu + s)
    sp = ExtrapolatedSampler(None, toy_fit, region, seam=MASS - 0.1, arm=arm)
    want = nsig_relative_error(arm, region, MASS, kin, smp, [1.0],
                               settings=NsigErrorSettings(propagation="log"))  # fmt: skip
    assert nsig_reach_error(sp, MASS, kin, smp, [1.0]) == pytest.approx(want, rel=1e-12)


def test_lambda_theta_moves_reach_the_arms_n_through_the_yield_and_the_region(toy_fit):
    """``yield_only`` (the arm's kinematics above the seam): each λ_θ move's N′/N is
    (1 + δY_F/Y_F) f_F/f_F′, both fractions of the model at the mass by one quadrature, the
    same at every cτ; a move that changes nothing there gives 1; the two signs' |ln| averaged
    as the full computation averages them."""
    from gammastar.yields.extrapolation.model import fiducial_fraction
    from gammastar.yields.extrapolation.nsig import nsig_lambda_theta

    class Narrow(_ToyRegion):
        def contains(self, m, qt, e):
            return self.acceptance(m, qt, e) >= 0.3

    _, t, mu, s = (float(v) for v in toy_fit.at(MASS))
    par = (t, mu, s, float(toy_fit.power_at(MASS)))
    f0, f1 = fiducial_fraction(_ToyRegion(), MASS, par), fiducial_fraction(Narrow(), MASS, par)
    assert 0 < f1 < 0.9 * f0
    up = {"sign": 1, "yield_shift": 0.1, "fit": {}, "region": Narrow()}
    down = {"sign": -1, "yield_shift": -0.05, "fit": {}, "region": _ToyRegion()}
    ct = [0.1, 1.0, 10.0]
    got = nsig_lambda_theta(toy_fit, _ToyRegion(), MASS, {}, None, ct, [up, down], yield_only=True)
    want = 0.5 * (abs(np.log(1.1 * f0 / f1)) + abs(np.log(0.95)))
    assert got == pytest.approx(np.full(3, want), rel=1e-9)
    null = {"sign": 1, "yield_shift": 0.0, "fit": {}, "region": Narrow(), "null": True}
    assert nsig_lambda_theta(toy_fit, _ToyRegion(), MASS, {}, None, ct, [null], yield_only=True) == (
        pytest.approx(np.zeros(3), abs=1e-15))  # fmt: skip


def test_the_reach_yields_follow_the_arms_normalisation_where_it_gives_the_kinematics(toy_fit):
    """``Source`` with the arm's model: from the seam up to the arm's last edge the yield is
    Y·f_F/f_F,arm (the fiducial yield carried by the arm's model), its statistical error
    with it; below the seam and beyond the arm's bins as given."""
    import dataclasses

    from gammastar.source.production import Yields
    from gammastar.source.source import _arm_yields

    arm = dataclasses.replace(toy_fit, fiducial_fraction=0.5 * np.asarray(toy_fit.fiducial_fraction))
    m = np.array([0.3, 0.5, 0.6])  # below the seam 0.4, inside the arm's bin, beyond its edge 0.55
    y = Yields(m, np.array([1.0, 2.0, 3.0]), np.array([0.1, 0.2, 0.3]), {})
    got = _arm_yields(y, toy_fit, arm, seam=0.4)
    assert got.per_pot_per_eps2 == pytest.approx([1.0, 4.0, 3.0], rel=1e-12)
    assert got.stat_err == pytest.approx([0.1, 0.4, 0.3], rel=1e-12)


def test_the_model_stops_at_the_beam_energy():
    """A γ* of the beam's collisions carries at most the beam energy: the sampler rejects the
    unbounded model's draws above ``e_max`` and still returns ``n`` (the same for a seed); the
    kept draws are the untruncated sampler's below the bound, in order (rejection keeps the
    shape below it)."""
    full = ParametricSampler(0.2, 2.5, 1.2).sample(0.3, 20_000, seed=3)
    cut = ParametricSampler(0.2, 2.5, 1.2, e_max=20.0)
    got = cut.sample(0.3, 20_000, seed=3)
    assert got["E"].size == 20_000
    assert np.all(got["E"] <= 20.0)
    below = full["E"] <= 20.0
    assert 0 < np.count_nonzero(~below) < 20_000  # the bound bites on this model
    assert got["E"][: np.count_nonzero(below)] == pytest.approx(full["E"][below], rel=1e-15)
    again = cut.sample(0.3, 20_000, seed=3)
    assert again["E"] == pytest.approx(got["E"], rel=1e-15)


def test_the_extrapolated_samples_and_the_direct_draws_stop_at_the_beam_energy(toy_fit):
    """``ExtrapolatedSampler(e_max=...)``: the model's samples outside F and below the seam
    obey the bound, and the forms' direct draws of the N_sig error too."""
    from gammastar.yields.extrapolation.model import NOMINAL
    from gammastar.yields.extrapolation.nsig.direct import form_sampler
    from gammastar.yields.extrapolation.samplers import ExtrapolatedSampler

    region = _ToyRegion()
    _, t, mu, s = (float(v) for v in toy_fit.at(MASS))
    for seam in (None, MASS + 0.1):  # the fitted model outside F; the model below the seam
        sp = ExtrapolatedSampler(None, toy_fit, region, seam=seam, below=toy_fit, e_max=30.0)
        assert np.all(sp.sample(MASS, 5000, seed=2)["E"] <= 30.0)
    drawn = form_sampler(NOMINAL, (0.5, t, mu, s, 0.0), region, 30.0)(MASS, 5000, seed=1)
    assert np.all(drawn["E"] <= 30.0)
