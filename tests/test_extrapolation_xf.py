"""The ``xf_suppressed`` model form: the nominal densities × (1 − E/E_beam)^n, its fiducial
fraction, its draws, its fit and its record (:mod:`gammastar.yields.extrapolation.model`)."""

from __future__ import annotations

import numpy as np
import pytest
from test_extrapolation import MASS, TRUE, _toy, _ToyRegion

from gammastar.physics.sampling import ParametricSampler
from gammastar.yields.extrapolation.fitting import FitSettings, fit_extrapolation
from gammastar.yields.extrapolation.model import FORMS, XF_POWER, _log_xf, fiducial_fraction
from gammastar.yields.extrapolation.nsig.direct import Nowhere, form_sampler
from gammastar.yields.extrapolation.nsig.forms import variation_form

E_BEAM = 50.0
"""A beam energy at which the factor reaches into the toy region F (E ≲ 60 GeV there)."""


def _xf_draws(n: int, seed: int) -> dict[str, np.ndarray]:
    """``n`` γ* of the nominal model at TRUE, kept with probability (1 − E/E_BEAM)^XF_POWER: a
    sample of the xf form by accept–reject, independent of the package's own sampler."""
    rng = np.random.default_rng(seed)
    out = ParametricSampler(*TRUE).sample(MASS, n, seed=int(rng.integers(2**31)))
    qt, e = out["qT"], out["E"]
    y = np.arccosh(e / np.sqrt(qt**2 + MASS**2))
    keep = rng.random(n) < np.exp(_log_xf(MASS, qt, y, E_BEAM, XF_POWER))
    return {"qT": qt[keep], "E": e[keep], "y": y[keep]}


def _xf_pairs(region) -> tuple[np.ndarray, ...]:
    """The accepted pairs (m, p_T, y, 1/A) of 4·10⁵ sources of the xf form (:func:`_xf_draws`)
    through the toy's acceptance."""
    d = _xf_draws(400_000, seed=12)
    a = region.acceptance(MASS, d["qT"], d["E"])
    rng = np.random.default_rng(13)
    keep = (a >= 0.05) & (rng.random(a.size) < a)
    return np.full(keep.sum(), MASS), d["qT"][keep], d["y"][keep], 1.0 / a[keep]


def test_the_factor_vanishes_at_the_beam_energy_and_needs_it():
    """(1 − x)^n at x = E/E_beam: 0 at and above the beam energy, 1 at E = 0; the form
    without its beam energy refuses to evaluate, and a record without one is not a form."""
    lf = _log_xf(0.0, np.array([0.0, 25.0, 50.0, 80.0]), 0.0, E_BEAM, 3.0)
    np.testing.assert_allclose(np.exp(lf), [1.0, 0.125, 0.0, 0.0], rtol=1e-15, atol=0.0)
    with pytest.raises(ValueError, match=r"xf_suppressed.*beam energy"):
        FORMS["xf_suppressed"].log_factor(MASS, np.array([0.3]), np.array([3.0]))
    assert variation_form("xf_suppressed", {"form": "xf_suppressed"}) is None
    form = variation_form("xf_suppressed", {"form": "xf_suppressed", "beam_energy": 70.0})
    assert form.beam_energy == pytest.approx(70.0, rel=1e-15)
    assert FORMS["logistic_y"].at_beam(70.0) is FORMS["logistic_y"]  # no factor: itself


def test_fiducial_fraction_of_the_form_matches_its_draws():
    """The form's P_F on the quadrature grid, normalised there, equals the fraction inside F
    of 2·10⁶ accept–reject draws within twice the nominal form's own grid-against-draws
    difference on this region (the grid's error, ≈ 0.004) plus 4 binomial σ of each."""
    region = _ToyRegion()
    xf = FORMS["xf_suppressed"].at_beam(E_BEAM)
    d = _xf_draws(2_000_000, seed=3)
    mc = float(np.mean(region.contains(MASS, d["qT"], d["E"])))
    nom = ParametricSampler(*TRUE).sample(MASS, 2_000_000, seed=5)
    mc_nom = float(np.mean(region.contains(MASS, nom["qT"], nom["E"])))
    grid_err = abs(fiducial_fraction(region, MASS, TRUE) - mc_nom)
    sd = np.sqrt(mc * (1 - mc) / d["E"].size) + np.sqrt(mc_nom * (1 - mc_nom) / 2e6)
    assert 0.001 < grid_err < 0.01
    assert fiducial_fraction(region, MASS, TRUE, form=xf) == pytest.approx(mc, abs=2 * grid_err + 4 * sd)
    # far above every γ* energy the factor is 1: the nominal's fraction, normalised on the
    # grid rather than analytically (the midpoint rule's total on 25 MeV × 0.05 cells
    # departs from 1 by ≈ 2·10⁻⁴ here)
    far = FORMS["xf_suppressed"].at_beam(1e12)
    assert fiducial_fraction(region, MASS, TRUE, form=far) == pytest.approx(
        fiducial_fraction(region, MASS, TRUE), abs=5e-4)  # fmt: skip


def _weighted_fraction(w: np.ndarray, hit: np.ndarray) -> tuple[float, float]:
    """Σ w·hit / Σ w and its 1σ (the self-normalised estimator's delta-method variance)."""
    p = float(w @ hit / w.sum())
    return p, float(np.sqrt(np.sum((w * (hit - p)) ** 2)) / w.sum())


def test_the_form_sampler_draws_the_factor():
    """The direct draws of the form (:func:`form_sampler`, over the whole phase space,
    importance-weighted) stay below the beam energy and put the fraction of the independent
    accept–reject sample above E_beam/4 there, within 4σ of the two estimates."""
    xf = FORMS["xf_suppressed"].at_beam(E_BEAM)
    draws = form_sampler(xf, (0.5, *TRUE, 0.0), Nowhere())
    got = draws(MASS, 400_000, seed=9)
    assert np.max(got["E"]) < E_BEAM
    p1, s1 = _weighted_fraction(draws.weight, got["E"] > E_BEAM / 4)
    ref = _xf_draws(800_000, seed=10)
    p2 = float(np.mean(ref["E"] > E_BEAM / 4))
    s2 = np.sqrt(p2 * (1 - p2) / ref["E"].size)
    assert p1 > 0.01
    assert abs(p1 - p2) < 4 * np.hypot(s1, s2)


def test_the_direct_draws_reach_the_forward_tail():
    """The nominal form's weighted draws give the Gaussian's tail beyond ȳ + 3σ_y,
    1 − Φ(3) = 1.35·10⁻³, within 4σ of their own error, from about 30 times the draws there
    that plain sampling would put (the proposal's forward half: 1 − Φ(1) = 0.16 of it)."""
    from scipy.stats import norm

    draws = form_sampler(FORMS["nominal"], (0.5, *TRUE, 0.0), Nowhere())
    n = 200_000
    got = draws(MASS, n, seed=4)
    y = np.arccosh(got["E"] / np.sqrt(got["qT"] ** 2 + MASS**2))
    tail = y > TRUE[1] + 3 * TRUE[2]
    p, sd = _weighted_fraction(draws.weight, tail)
    want = norm.sf(3.0)
    assert abs(p - want) < 4 * sd
    assert np.sum(tail) > 30 * n * want


def test_the_form_fitted_to_its_own_draws_closes():
    """Pairs drawn from the xf form at E_beam = 50 GeV (4·10⁵ sources through the toy's
    acceptance): the form's fit, made as a model variation (σ_y refitted, the nominal's T),
    gives the truth's P_F within 0.04 (over eight seeds at this size: mean −0.005, scatter
    0.008), while the nominal form, blind to the factor, misses it by more than 0.1 (0.17);
    the record states its factor."""
    region = _ToyRegion()
    pairs = _xf_pairs(region)
    ex = fit_extrapolation(*pairs, [0.45, 0.55], region,
                           settings=FitSettings(y_mean=TRUE[1], seed=7, beam_energy=E_BEAM,
                                                compare=False))  # fmt: skip
    truth = fiducial_fraction(region, MASS, TRUE, form=FORMS["xf_suppressed"].at_beam(E_BEAM))
    rec = ex.model_variations["xf_suppressed"]
    assert rec["fiducial_fraction"][0] == pytest.approx(truth, abs=0.04)
    assert abs(ex.fiducial_fraction[0] - truth) > 0.1
    assert rec["x_power"] == pytest.approx(XF_POWER, rel=1e-15)
    assert rec["beam_energy"] == pytest.approx(E_BEAM, rel=1e-15)


def test_without_the_beam_energy_the_form_is_not_a_variation():
    """A fit that is not told the beam energy has no ``xf_suppressed`` record."""
    region = _ToyRegion()
    ex = fit_extrapolation(*_toy(region, 5_000, seed=21), [0.45, 0.55], region,
                           settings=FitSettings(y_mean=TRUE[1], seed=7, compare=False))  # fmt: skip
    assert "xf_suppressed" not in ex.model_variations
    assert "logistic_y" in ex.model_variations
