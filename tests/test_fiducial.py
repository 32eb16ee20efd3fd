"""One phase space: fiducial-region yields on the NA60-like mock, the stated
extrapolation, and the reach's labelling of the signal outside the fiducial region.

The closure against the generator's own γ*: validation/tests/test_fiducial_closure.py. The
tolerances are the pairs' statistical error (Σw²) and the acceptance's known
systematic of the decay angular distribution: the default job measures λ_θ(m) from the data
(its statistical error ±0.1–0.2 per mass bin and the mock's smearing move A by up to 4% at
0.4–0.7 GeV; isotropic decays assumed instead: the Dalitz γ* A 3% high; docs/explanation/method.md "λ_θ").
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gammastar.config import load_config
from gammastar.config.yields import ResolutionMigrationConfig
from gammastar.errors import InputError
from gammastar.selection.stage import select
from gammastar.yields import compute
from gammastar.yields.extrapolation import fitting
from gammastar.yields.extrapolation.model import FALLOFF
from gammastar.yields.stage import compute_yields

REPO = Path(__file__).resolve().parents[1]
EVENTS, SEED = 400_000, 21
LAMBDA_SYST = 0.04


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from gammastar.mock.generate import generate_file

    out = tmp_path_factory.mktemp("fid")
    cfg = load_config(REPO / "analysis" / "na60_like.yaml")
    cfg = cfg.model_copy(update={"output": str(out)})
    generate_file(cfg, out / "mock.root", events=EVENTS, seed=SEED)
    res = select(cfg)
    with pytest.MonkeyPatch.context() as mp:  # the extrapolation's fit and its inputs, kept
        mp.setattr(compute, "fit_extrapolation", _recording(fitting.fit_extrapolation))
        doc = compute_yields(cfg, plots=False, theory=False).document
    return cfg, res, doc


FITS: list = []  # (arguments, result) of each fit_extrapolation call of the module's run


def _recording(fit):
    def recorded(*args, **kwargs):
        FITS.append((args, kwargs, fit(*args, **kwargs)))
        return FITS[-1][2]

    return recorded


def _replaying(*args, **kwargs):
    """The run's fit, handed back for the same pairs (each array equal to rounding) and the
    same settings: a stage rerun on the same pairs.parquet, whose other parts are under test."""
    (want, want_kw, result), = FITS
    assert len(args) == len(want)
    for a, b in zip(args[:4], want[:4], strict=True):  # m, p_T, y, w
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=0)
    np.testing.assert_allclose(args[4], want[4], rtol=1e-12, atol=0)  # the bin edges
    assert len(args) == 6
    assert args[5].as_dict() == want[5].as_dict()  # the fiducial region: the config's numbers
    assert kwargs == want_kw  # FitSettings.from_config of the same config
    return result


def test_select_records_the_fiducial_region(run):
    cfg, res, _ = run
    assert res.meta["phase_space"] == "fiducial"
    fid = res.unfold["fiducial"]
    assert fid["min_acceptance"] == cfg.unfold.min_acceptance
    assert fid["lepton_acceptance"] == {"min_energy": 3.0, "theta_min": 0.035,
                                        "theta_max": 0.12, "map": None}  # fmt: skip
    pairs = res.pairs
    # weight 1/(A ε) inside, 0 outside the region: never a pair of A < min with a weight
    assert np.all(pairs.loc[pairs.acc < cfg.unfold.min_acceptance, "weight"] == 0)
    assert np.all(pairs.loc[pairs.acc >= cfg.unfold.min_acceptance, "acc"] <= 1)


def test_yields_carry_fiducial_and_full_phase_space(run):
    _, _, doc = run
    ap, ex = doc["aprime"], doc["extrapolation"]
    assert doc["meta"]["phase_space"] == "fiducial"
    full = np.array(ap["per_pot_per_eps2"], dtype=float)
    fid = np.array(ap["per_pot_per_eps2_fiducial"], dtype=float)
    f = np.array(ap["fiducial_fraction"], dtype=float)
    assert np.all((f > 0) & (f < 1))
    np.testing.assert_allclose(np.array(ap["extrapolated_fraction"]), 1 - f, rtol=1e-12)
    # full = Σ w_i / f_F(m_i): per bin, fiducial / f_F(bin centre) up to the variation of f_F
    # across one 30 MeV bin: f_F is linear between the bin centres, so within a bin it moves
    # by at most the change to its neighbours' centres (a step between two fit groups)
    good = fid > 0
    step = np.abs(np.diff(f)) / f[:-1]
    # + 1e-3: slack where f_F has no step to a neighbour (the pairs spread over the bin)
    bound = np.maximum(np.r_[step, 0.0], np.r_[0.0, step]) + 1e-3
    ratio = full[good] / (fid[good] / f[good])
    assert np.all(np.abs(ratio - 1) <= bound[good])
    # the model is stated; the mock's true fraction is the validation's, not the product's
    assert ex["model"]
    assert "fiducial_fraction_mock_truth" not in ex
    for key in ("temperature", "y_mean", "y_sigma", "fiducial"):
        assert key in ex
    mcp = doc["mcp"]
    assert np.all(np.array(mcp["per_pot_per_q2"]) >= np.array(mcp["per_pot_per_q2_fiducial"]))


def test_extrapolation_states_its_rapidity_inputs_and_errors(run):
    """The fit's stated inputs: ȳ by the rule (``yields.extrapolation_y_mean: auto``): fitted,
    and kept where its 1σ is below the prior 0.5 — then the mock's centre, the beam's c.m.
    rapidity, within 3σ —, else fixed there; σ_y the configuration's external value with its
    error (``yields.extrapolation_y_sigma``: PYTHIA's 1.25 ± 0.20: at this size the data do
    not fix the width better), recorded with its source and named by the yield's nuisance;
    the p_T form's m_T power fitted per mass range (``yields.extrapolation_pt_power: fitted``;
    its error in the sandwich, ``model_variations`` the rapidity form and the Tsallis p_T
    form, another family, and the fall towards the beam energy). The statistical error alone is the smaller, and the forms' part is
    measurable (≥ 5% of it in quadrature). The fit against the generator's true f_F:
    validation/tests/test_fiducial_closure.py."""
    from gammastar.physics.kinematics import cm_rapidity

    _, _, doc = run
    ex = doc["extrapolation"]
    rule = ex["y_mean_rule"]
    y_cm = cm_rapidity(400.0)
    assert rule["y_mean_fixed"] == pytest.approx(y_cm, abs=1e-12)
    assert rule["threshold"] == pytest.approx(0.5, abs=1e-15)  # na60_like.yaml's extrapolation_y_mean_error
    if rule["decision"] == "fitted":
        assert ex["y_mean_source"] == "fitted"
        assert rule["y_mean_fitted_err"] < 0.5
        assert abs(ex["y_mean"][0] - y_cm) < 3 * rule["y_mean_fitted_err"]
        assert rule["y_sigma"]["decision"] == "external"
    else:
        assert ex["y_mean_source"] == "beam c.m. rapidity (fixed)"
        assert ex["y_mean"][0] == pytest.approx(y_cm, abs=1e-12)
    # y_cm of 400 GeV protons on nucleons: artanh(p/(E + m_N)) ≈ ln(√s/m_N) = ½ ln(2E/m_N)
    assert cm_rapidity(400.0) == pytest.approx(0.5 * np.log(2 * 400.0 / 0.9389), abs=2e-3)
    # σ_y from outside, recorded with its source and error, and named by the yield's nuisance
    ys = load_config(REPO / "analysis" / "na60_like.yaml").yields.extrapolation_y_sigma
    assert ex["y_sigma_source"] == f"external (fixed): {ys.source}"
    rec = ex["y_sigma_external"]
    assert (rec["value"], rec["error"], rec["source"]) == (ys.value, ys.error, ys.source)
    np.testing.assert_allclose(ex["y_sigma"], ys.value, rtol=1e-12)
    assert ex["y_sigma_err"] >= ys.error  # plus the logistic form's shift of σ_y
    origin = doc["uncertainties"]["nuisances"]["extrapolation"]["origin"]
    assert "sigma_y external" in origin
    f_err = np.asarray(ex["fiducial_fraction_err"], dtype=float)
    f_stat = np.asarray(ex["fiducial_fraction_err_stat"], dtype=float)
    ok = np.asarray(ex["mass"], dtype=float) < 0.9
    assert np.all(f_err[ok] > 0)
    assert np.all(f_stat[ok] <= f_err[ok])
    assert np.all(np.sqrt(f_err[ok] ** 2 - f_stat[ok] ** 2) >= 0.05 * f_stat[ok])
    assert ex["pt_power_source"].startswith("fitted")
    assert ex["parameter_covariance"]["parameters"][-1].startswith("a_")
    # the Boltzmann p_T form lies in the fitted family; the Tsallis one does not; the fall
    # towards the beam energy is one at the config's; a fixed centre's prior is a variation too
    # the fall-off's n ∓ 1σ in place of xf_suppressed (na60_like.yaml: the measured fall-off)
    want = {"logistic_y", "tsallis", "falloff_harder", "falloff_softer"} | (
        {"y_mean_backward"} if ex["y_mean_source"] != "fitted" else set())  # fmt: skip
    assert set(ex["model_variations"]) == want
    fo = ex["falloff"]
    assert fo["beam_energy"] == pytest.approx(400.0, rel=1e-15)  # na60_like.yaml's beam
    assert (fo["n"], fo["error"]) == pytest.approx((FALLOFF.value, FALLOFF.error), rel=1e-15)
    for name, sign in (("falloff_harder", -1), ("falloff_softer", 1)):
        rec = ex["model_variations"][name]
        assert rec["x_power"] == pytest.approx(fo["n"] + sign * fo["error"], rel=1e-12)


def _reach_cfg(cfg, **detector):
    """The reach at two masses, the ends of the range (the labelling is the same at each)."""
    from gammastar.config.detector import DetectorConfig
    from gammastar.config.reach import ReachConfig

    rc = ReachConfig(
        n_pot=1e18, target_interaction_lengths="dump", channels=["mumu"],
        background={"mumu": 0.0}, background_kappa={"mumu": 1.0}, efficiency_uncertainty=0.0,
        n_pot_rel_uncertainty=0.0, mass_points=2, eps_points=30, samples=4000, flow=None,
        mass_min=0.3, mass_max=0.9,
    )  # fmt: skip
    return cfg.model_copy(update={"reach": rc, "detector": DetectorConfig(**detector)})


def test_reach_labels_the_extrapolated_signal(run, monkeypatch):
    """With no flow every A′ sample comes from the fitted model outside... and inside the
    fiducial region: all of it is labelled extrapolated (fraction 1 at every boundary)."""
    from _phys_figures import skip_reach_figures

    from gammastar.reach.stage import run_reach

    skip_reach_figures(monkeypatch)  # the document (the figures: test_reach.py)
    cfg = _reach_cfg(run[0], l1=5.0, l2=None, theta_min=0.035, theta_max=0.12)
    doc = run_reach(cfg, force=True).document
    ext = doc["extrapolation"]
    assert ext["mode"] == "label"
    assert "Gaussian rapidity" in ext["model"]
    fr = [x for x in ext["fraction_at_eps_low"] + ext["fraction_at_eps_high"] if x is not None]
    assert fr
    assert np.allclose(fr, 1.0)


def test_detector_wholly_outside_the_data_is_refused(run):
    """An A′ sampler inside the fiducial region (the weighted pairs there) cannot reach a
    detector that needs both daughters at θ < 5 mrad with E > 15 GeV (a γ* of E > 30 GeV
    opens by ≲ 2m/E ≈ 27 mrad at 0.4 GeV, so with its direction inside 5 mrad neither muon
    reaches the spectrometer's 35 mrad): every accepted A′ would come from the model → one
    error."""
    from gammastar.corrections.pair_acceptance import FiducialRegion
    from gammastar.reach.scan import scan
    from gammastar.reach.scan.settings import ScanSettings
    from gammastar.source.geometry import Geometry
    from gammastar.source.production import load_yields
    from gammastar.source.source import Source
    from gammastar.yields.extrapolation.result import Extrapolation
    from gammastar.yields.extrapolation.samplers import ExtrapolatedSampler

    cfg, res, _ = run
    y = load_yields(cfg.output_dir / "yields.json")
    region = FiducialRegion.from_dict(y.extrapolation["fiducial"])
    p = res.pairs  # weight 1/(A ε) inside the region, 0 outside: only those inside are drawn
    inside = Source.from_pairs(p.m, p.qT, p.E, p.weight, half_width=0.015)
    sampler = ExtrapolatedSampler(inside, Extrapolation.from_dict(y.extrapolation), region)
    out = sampler.sample(0.5, 5000, seed=1)
    assert not np.any(region.contains(np.full(5000, 0.5), out["qT"], out["E"])
                      & out["extrapolated"])  # fmt: skip
    with pytest.raises(InputError, match="wholly outside the data's fiducial region"):
        scan(
            [0.3, 0.4], np.geomspace(1e-9, 1e-3, 20), sampler=sampler,
            settings=ScanSettings(
                geometry=Geometry(l1=5.0, l2=50.0, theta_min=0.0, theta_max=0.005,
                                  both_daughters=True, min_daughter_energy=15.0),
                yields=y, n_pot=1e18, background={"mumu": 0.0}, background_kappa={"mumu": 1.0},
                n_pot_unc=0.0, efficiency_uncertainty=0.0, samples=20000,
            ),
        )  # fmt: skip


def _scan_draws(sampler, masses, eps, geo, *, seed):
    """Per mass, the A′ draw a :func:`gammastar.reach.scan.scan` with ``seed`` makes (its seeds,
    20000 samples, the μμ channel), redone: ``(kinematics, sample, cτ on the sorted ε)``."""
    from gammastar.physics import darkphoton
    from gammastar.reach.acceptance import draw
    from gammastar.yields.extrapolation.samplers import RecordingSampler

    seeds = np.random.SeedSequence(seed).spawn(len(masses))
    for m, sq in zip(masses, seeds, strict=True):
        rec = RecordingSampler(sampler)
        sample = draw(rec, m, 20000, geo, seed=int(sq.generate_state(1)[0]), channel="mumu")
        yield rec.last, sample, darkphoton.ctau(m, np.sort(eps)), int(sq.generate_state(1)[0])


def _redraw_at(m, geo, smp, n, seed):
    """The scan's ``redraw`` at mass ``m`` (:func:`gammastar.reach.acceptance.draw`, μμ)."""
    from gammastar.reach.acceptance import draw

    return draw(smp, m, n, geo, seed=seed, channel="mumu")


def test_reach_extrapolation_nuisance_is_the_fits_error_on_nsig(run):
    """The reach's ``extrapolation`` nuisance: its size is the fit's error carried
    to N_sig (:func:`gammastar.yields.extrapolation.nsig.nsig_relative_error`, ``propagation="log"``, the
    log-normal's r from the width of ln N_sig) on the scan's own draw, at
    the first pass's median expected ε_low/ε_high (the larger), not the yield's δf_F/f_F.
    Reference: a scan whose extrapolation has no covariance keeps the yield-level size and
    gives the first pass (the same seeds, the same draws); the expected values are recomputed
    here from that pass's boundaries. For the demo's detector, which shares the spectrometer's
    window, the model's acceptance outside F moves with f_F, so the N_sig-level size is the
    smaller (coverage study, docs/explanation/reach.md) on both sides of the two-sided normsys
    (the limit itself need not tighten: a skewed size lowers the signal's mean)."""
    import dataclasses

    from _tolerance import EPS64, reorder_tol

    from gammastar.corrections.pair_acceptance import FiducialRegion
    from gammastar.reach.scan import scan
    from gammastar.reach.scan.settings import ScanSettings
    from gammastar.reach.signal import BOUNDARY_XTOL
    from gammastar.source.geometry import Geometry
    from gammastar.source.production import load_yields
    from gammastar.source.source import Source
    from gammastar.yields.extrapolation.nsig import NsigErrorSettings, nsig_relative_error
    from gammastar.yields.extrapolation.result import Extrapolation
    from gammastar.yields.extrapolation.samplers import ExtrapolatedSampler

    cfg, res, _ = run
    y = load_yields(cfg.output_dir / "yields.json")
    ex = Extrapolation.from_dict(y.extrapolation)
    assert ex.covariance is not None
    assert ex.error_method == "sandwich"
    region = FiducialRegion.from_dict(y.extrapolation["fiducial"])
    p = res.pairs
    inside = Source.from_pairs(p.m, p.qT, p.E, p.weight, half_width=0.015)
    geo = Geometry.from_config(cfg.detector)
    masses, eps = np.array([0.45, 0.6]), np.geomspace(1e-9, 1e-4, 40)
    rel_yield = 0.14  # the demo's δf_F/f_F (docs/explanation/reach.md), one value for both masses
    kw = {"geometry": geo, "yields": y, "n_pot": 1e18, "background": {"mumu": 0.0},
          "background_kappa": {"mumu": 1.0}, "n_pot_unc": 0.0, "efficiency_uncertainty": 0.0,
          "samples": 20000, "seed": 5, "method": "exact",
          "signal_nuisances": {"extrapolation": np.full(2, rel_yield)}}  # fmt: skip
    no_cov = ExtrapolatedSampler(inside, dataclasses.replace(ex, covariance=None), region)
    first = scan(masses, eps, sampler=no_cov, settings=ScanSettings(**kw))
    assert first.extrapolation_nsig is None
    out = scan(
        masses, eps, sampler=ExtrapolatedSampler(inside, ex, region), settings=ScanSettings(**kw)
    )
    # the same seeded draws; each acceptance a mean over the 20000 samples
    np.testing.assert_allclose(out.acceptance, first.acceptance, rtol=0,
                               atol=reorder_tol(20000, 1.0, EPS64))  # fmt: skip
    # the scan draws the visible A′'s model tail tilted (Source.tilted)
    draws = _scan_draws(ExtrapolatedSampler(inside, ex, region).tilted(), masses, eps, geo, seed=5)
    for i, (row, (kin, sample, ctau, s_m)) in enumerate(zip(out.extrapolation_nsig, draws, strict=True)):
        # the scan's direct draws where a form's reweighting has too small an effective size
        # (the same detector, channel and the mass's seed)
        redraw = partial(_redraw_at, masses[i], geo)
        rel = nsig_relative_error(ex, region, masses[i], kin, sample, ctau,
                                  settings=NsigErrorSettings(propagation="log"),
                                  redraw=redraw, seed=s_m)  # fmt: skip
        lo, hi = first.boundaries["0"][0][i], first.boundaries["0"][1][i]
        want = [np.interp(np.log(b), np.log(eps), rel) for b in (lo, hi)]
        # the same computation on the same arrays, interpolated in log ε at the boundaries of
        # this test's first pass; the scan's own first pass finds them by Brent's method to
        # BOUNDARY_XTOL in ln ε, which moves the interpolated value by up to that times the
        # steepest slope of rel in ln ε on the grid
        fin = np.isfinite(rel)  # NaN: N_sig not resolved (a short cτ), flagged
        slope = np.max(np.abs(np.diff(rel[fin]) / np.diff(np.log(eps[fin]))))
        tol = BOUNDARY_XTOL * slope
        # an edge where N_sig is not resolved takes the largest resolved size at the mass
        # (edge_size); no edge (a NaN boundary), no size
        lost = [bool(np.isfinite(b) and np.isnan(w)) for b, w in zip((lo, hi), want, strict=True)]
        want = [float(np.max(rel[fin])) if x else w for x, w in zip(lost, want, strict=True)]
        got = [row["eps_low"], row["eps_high"]]
        for g, w in zip(got, want, strict=True):
            assert g is None if np.isnan(w) else g == pytest.approx(w, rel=1e-12, abs=tol)
        assert row["unresolved"] == any(lost)
        took = [e for e, x in zip(("eps_low", "eps_high"), lost, strict=True) if x]
        assert row["fallback"] == took
        assert row["rel"] == pytest.approx(np.nanmax(want), rel=1e-12, abs=tol)
        assert 0 < row["rel"] < rel_yield
        # both sides of the two-sided size lie below the yield-level one too
        assert 0 <= row["up"]["rel"] < rel_yield
        assert 0 <= row["down"]["rel"] < rel_yield


def test_measured_lambda_nuisance_moves_the_region(run):
    """With ``decay_lambda_theta: measured`` the ``acceptance_lambda_theta`` nuisance is the
    moving-region one (each polarisation bin alone, the region following λ′): its origin says
    so, and its size at every filled mass bin is finite, positive and below a loose ceiling:
    A(λ) = (⟨a⟩ + λ⟨c²a⟩)/(1 + λ⟨c²⟩) changes by less than |δλ| relative (⟨c²a⟩ ≤ ⟨a⟩,
    ⟨c²⟩ ≤ 1), so r stays below max σ_k plus the share of the pairs crossing the edge; the
    ceiling is that bound with the largest σ_k of the run's own measurement (a wrong weighting,
    e.g. entering pairs at 1/ε without their 1/A′, breaks it)."""
    _, _, doc = run
    nu = doc["uncertainties"]["nuisances"]["acceptance_lambda_theta"]
    assert "fiducial region following it" in nu["origin"]
    y = np.array([np.nan if v is None else v for v in doc["aprime"]["per_pot_per_eps2"]])
    rel = np.array([np.nan if v is None else v for v in nu["rel"]], dtype=float)
    filled = np.isfinite(y) & (y > 0)
    assert np.all(np.isfinite(rel[filled]))
    err = np.array([np.nan if v is None else v for v in doc["polarisation"]["lambda_theta_err"]])
    # the edge's pairs: ~0.1% of all of them cross between λ = 0 and λ̂ (select.py), with the
    # largest weights; 0.1 of a bin's yield is a generous allowance for them
    crossing = 0.1
    assert np.all((rel[filled] > 0) & (rel[filled] < np.nanmax(err) + crossing))


def test_a_resolution_unfolding_does_not_reach_the_fiducial_yields(run, tmp_path, caplog,
                                                                  monkeypatch):  # fmt: skip
    """The fiducial-region yields come from the pairs' weights: an ``unfolded_m`` that no
    longer matches them (a resolution unfolding, ``unfold.bayesian_iterations``) leaves the
    A′ yield as it was, at the data's mass resolution, and the stage says so. The rerun leaves
    out the named uncertainties (``uncertainties.enabled: false``; their λ_θ refits are most of
    the stage's time): the yields compared here do not depend on them."""
    import logging
    import shutil

    from gammastar.yields import inputs

    cfg, _, doc = run
    out = tmp_path / "run"
    shutil.copytree(cfg.output_dir, out)
    read = inputs._read_histograms

    def unfolded(path, suffix=""):  # unfolded_m as an unfolding would move it
        hists = read(path, suffix)
        h = hists["unfolded_m"]
        h.view()["value"] *= np.linspace(0.5, 1.5, h.values().size)
        return hists

    monkeypatch.setattr(inputs, "_read_histograms", unfolded)
    # the fit of the same pairs is the run's (the rerun's own fit: the module's run)
    monkeypatch.setattr(compute, "fit_extrapolation", _replaying)
    plain = cfg.uncertainties.model_copy(update={"enabled": False})
    moved = cfg.model_copy(update={"output": str(out), "uncertainties": plain})
    with caplog.at_level(logging.WARNING, logger="gammastar"):
        again = compute_yields(moved, plots=False, theory=False, force=True).document
    assert "unfold.bayesian_iterations does not change them" in caplog.text
    assert "'auto' sources use the histogram" not in caplog.text
    assert doc["meta"]["pairs_match_unfolded_m"] is True
    assert again["meta"]["pairs_match_unfolded_m"] is False
    assert again["aprime"]["source"] == "pairs"
    np.testing.assert_allclose(again["aprime"]["per_pot_per_eps2"],
                               doc["aprime"]["per_pot_per_eps2"], rtol=1e-9)  # fmt: skip
    np.testing.assert_allclose(again["mcp"]["per_pot_per_q2"], doc["mcp"]["per_pot_per_q2"],
                               rtol=1e-9)  # fmt: skip


@pytest.mark.slow  # the correction itself: tests/test_migration.py (applied as written there)
def test_resolution_migration_corrects_the_full_phase_space_yield(run, tmp_path):
    """With a detector simulation (another mock sample, its own seed) each A′ bin's yield is
    the uncorrected one times the simulation's c of that bin (the pairs' full-phase-space
    weights are scaled per bin, so exactly, to rounding), the fiducial yields stay, the
    nuisance is c's relative 1σ per bin, and a missing file is one error naming it. The
    simulation: 2.5·10⁵ sources, ≈ 1.6·10⁴ recorded γ*, at least 19 in each of the 30 yield
    bins (the fewest near 0.95 and 1.1 GeV), so that c is measured in ≥ 20 of them."""
    import shutil

    from gammastar.mock.generate import generate_file

    cfg, _, doc = run
    out = tmp_path / "run"
    shutil.copytree(cfg.output_dir, out)
    sim = tmp_path / "simulation.root"
    generate_file(cfg, sim, events=250_000, seed=SEED + 1000)
    ycfg = cfg.yields.model_copy(update={"resolution_migration": ResolutionMigrationConfig(
        simulation=[str(sim)], bootstrap=5, seed=3)})  # fmt: skip
    moved = cfg.model_copy(update={"output": str(out), "yields": ycfg})
    again = compute_yields(moved, plots=False, theory=False, force=True).document
    mig = again["extrapolation"]["resolution_migration"]
    assert mig["applied"] is True
    assert (mig["seed"], mig["bootstrap"]) == (3, 5)
    assert doc["extrapolation"]["resolution_migration"]["applied"] is False
    np.testing.assert_allclose(mig["bin_edges"], again["aprime"]["bin_edges"], rtol=0, atol=1e-12)
    c = np.array([np.nan if v is None else v for v in mig["correction"]])
    ok = np.isfinite(c) & (c > 0)
    assert ok.sum() >= 20
    assert np.any(np.abs(c[ok] - 1) > 1e-3)  # a correction, not 1
    y0 = np.array(doc["aprime"]["per_pot_per_eps2"], dtype=float)
    y1 = np.array(again["aprime"]["per_pot_per_eps2"], dtype=float)
    np.testing.assert_allclose(y1[ok], y0[ok] * c[ok], rtol=1e-9)
    np.testing.assert_allclose(again["aprime"]["per_pot_per_eps2_fiducial"],
                               doc["aprime"]["per_pot_per_eps2_fiducial"], rtol=1e-12)  # fmt: skip
    nu = again["uncertainties"]["nuisances"]["resolution_migration"]
    dc = np.array([np.nan if v is None else v for v in mig["correction_err"]])
    np.testing.assert_allclose(np.array(nu["up"])[ok], (dc / c)[ok], rtol=1e-9)
    assert "independent" in nu["correlation"]
    assert "resolution_migration" in doc["uncertainties"]["not_included"]

    missing = tmp_path / "nope.root"
    ycfg = cfg.yields.model_copy(update={"resolution_migration": ResolutionMigrationConfig(
        simulation=[str(missing)])})  # fmt: skip
    with pytest.raises(InputError, match=r"nope\.root"):
        compute_yields(moved.model_copy(update={"yields": ycfg}), plots=False, theory=False,
                       force=True)  # fmt: skip


def test_lambda_theta_refits_and_the_reach_at_nsig_level(run):
    """The measured λ_θ's moves (``uncertainties.lambda_theta_refits``): per mass bin the
    quadrature of their fiducial-yield shifts of each sign is the yield-level nuisance's
    up / down (the same moves, summed as :func:`lambda_theta_moving_variation` sums them: to
    rounding); the reach carries them to N_sig: its ``acceptance_lambda_theta`` row per mass is
    :func:`gammastar.yields.extrapolation.nsig.nsig_lambda_theta` on the scan's own draw (e^w − 1) at the
    first pass's median expected ε_low / ε_high (the larger), and the yield's size is kept as
    ``rel_yield``. Reference: the scan whose extrapolation has no covariance, which keeps the
    yield-level sizes (its one pass is the other's first)."""
    import dataclasses

    from _tolerance import EPS64, reorder_tol

    from gammastar.corrections.pair_acceptance import FiducialRegion
    from gammastar.reach.scan import scan
    from gammastar.reach.scan.settings import ScanSettings
    from gammastar.source.geometry import Geometry
    from gammastar.source.production import load_yields
    from gammastar.source.source import Source
    from gammastar.yields.extrapolation.nsig import nsig_lambda_theta
    from gammastar.yields.extrapolation.result import Extrapolation
    from gammastar.yields.extrapolation.samplers import ExtrapolatedSampler
    from gammastar.yields.lambda_theta import lambda_refits_at, lambda_regions

    cfg, res, doc = run
    block = doc["uncertainties"]["lambda_theta_refits"]
    nu = doc["uncertainties"]["nuisances"]["acceptance_lambda_theta"]
    assert "N_sig's level" in nu["origin"]
    ys = {s: np.array([[np.nan if v is None else v for v in mv["yield_shift"]]
                       for mv in block["moves"] if mv["sign"] == s]) for s in (1, -1)}  # fmt: skip
    # the same moves summed by lambda_theta_moving_variation on the run's pairs (its own
    # pass over them; the yield-level nuisance is made from the refits' shifts)
    from gammastar.corrections.pair_acceptance import fiducial_from_config
    from gammastar.yields.lambda_theta import lambda_theta_moving_variation

    cols = ["m", "pT", "pz", "weight", "acc", "eff", "charge"]
    pairs = pd.read_parquet(cfg.output_dir / "pairs.parquet", columns=cols)
    edges = np.asarray(doc["aprime"]["bin_edges"], dtype=float)
    up, down = lambda_theta_moving_variation(
        pairs, edges, fiducial_from_config(cfg).acceptance, doc["polarisation"],
        min_acceptance=cfg.unfold.min_acceptance,
    )  # fmt: skip
    for s, key, ref in ((1, "up", up), (-1, "down", down)):
        want = np.array([np.nan if v is None else v for v in nu[key]], dtype=float)
        got = np.sqrt(np.nansum(ys[s] ** 2, axis=0))
        ok = np.isfinite(want)
        assert ok.sum() > 5
        np.testing.assert_allclose(got[ok], np.abs(want[ok]), rtol=1e-9, atol=1e-15)
        # two sums over the same pairs in another order: rounding (1e-9 of the shift)
        np.testing.assert_allclose(want[ok], ref[ok], rtol=1e-9, atol=1e-15)
    y = load_yields(cfg.output_dir / "yields.json")
    assert y.uncertainties["lambda_theta_refits"]["moves"]
    ex = Extrapolation.from_dict(y.extrapolation)
    region = FiducialRegion.from_dict(y.extrapolation["fiducial"])
    p = res.pairs
    inside = Source.from_pairs(p.m, p.qT, p.E, p.weight, half_width=0.015)
    geo = Geometry.from_config(cfg.detector)
    masses, eps = np.array([0.45, 0.6]), np.geomspace(1e-9, 1e-4, 40)
    r_yield = 0.05
    kw = {"geometry": geo, "yields": y, "n_pot": 1e18, "background": {"mumu": 0.0},
          "background_kappa": {"mumu": 1.0}, "n_pot_unc": 0.0, "efficiency_uncertainty": 0.0,
          "samples": 20000, "seed": 5, "method": "exact",
          "signal_nuisances": {"acceptance_lambda_theta": np.full(2, r_yield),
                               "extrapolation": np.full(2, 0.1)}}  # fmt: skip
    # the first pass: a scan that keeps every yield-level size (no covariance, no refits)
    no_cov = ExtrapolatedSampler(inside, dataclasses.replace(ex, covariance=None), region)
    first = scan(masses, eps, sampler=no_cov, settings=ScanSettings(**kw))
    assert first.lambda_theta_nsig is None
    # the refits without the fit's covariance: λ_θ at N's level all the same
    alone = scan(masses, eps, sampler=no_cov, settings=ScanSettings(**kw, lambda_refits=block))
    assert alone.extrapolation_nsig is None
    assert len(alone.lambda_theta_nsig) == masses.size
    out = scan(masses, eps, sampler=ExtrapolatedSampler(inside, ex, region),
               settings=ScanSettings(**kw, lambda_refits=block))  # fmt: skip
    np.testing.assert_allclose(out.acceptance, first.acceptance, rtol=0,
                               atol=reorder_tol(20000, 1.0, EPS64))  # fmt: skip
    regions = lambda_regions(block, region)
    # the scan draws the visible A′'s model tail tilted (Source.tilted)
    draws = _scan_draws(ExtrapolatedSampler(inside, ex, region).tilted(), masses, eps, geo, seed=5)
    for i, (row, (kin, sample, ctau, _)) in enumerate(zip(out.lambda_theta_nsig, draws, strict=True)):
        moves = lambda_refits_at(block, masses[i], regions)
        rel = np.expm1(nsig_lambda_theta(ex, region, masses[i], kin, sample, ctau, moves))
        lo, hi = first.boundaries["0"][0][i], first.boundaries["0"][1][i]
        want = [np.interp(np.log(b), np.log(eps), rel) for b in (lo, hi)]
        assert [row["eps_low"], row["eps_high"]] == pytest.approx(want, rel=1e-9)
        assert row["rel"] == pytest.approx(max(want), rel=1e-9)
        assert row["rel_yield"] == pytest.approx(r_yield, rel=1e-12)  # the input size, copied
        assert 0 < row["rel"] < 1
