"""The coverage study's draws of the mock's p_T form (:mod:`gammastar_validation.coverage`).

The ``full`` arm draws the mock mesons' p_T form ``mock.pt_mt_power`` a of m_T^a e^{−m_T/T}
from :data:`FORM_POINTS` (mean 0, variance 1), a = 1 being the extrapolation model's
``mt_boltzmann`` alternative, its quoted 1σ. Tested here: the mock at a = 1 samples exactly the
model's Boltzmann form, and the draws are the stated prior without moving the other draws.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from gammastar_validation import coverage

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cov():
    return coverage


def test_form_points_have_the_priors_moments(cov):
    z = np.asarray(cov.FORM_POINTS)
    assert abs(z.mean()) < 1e-12  # symmetric points
    assert z.var() == pytest.approx(1.0, abs=1e-4)  # ±1.2247 rounds √(3/2) to 4 decimals


@pytest.mark.parametrize("mass", [0.55, 0.78])
def test_mock_at_power_one_is_the_models_boltzmann_form(mass):
    """⟨p_T⟩ of the mock's sampler at a = 1 equals that of the extrapolation's ``mt_boltzmann``
    density (quadrature on a fine grid), within 4 standard errors of 4·10⁵ samples; the
    nominal form (a = 0) is more than 20 standard errors away, so the test tells the forms
    apart."""
    from gammastar.physics.sampling import sample_mt_power
    from gammastar.yields.extrapolation.model import FORMS

    t = 0.2
    grid = np.linspace(1e-6, 8.0, 400_001)
    means = {}
    for name in ("mt_boltzmann", "nominal"):
        p = np.exp(FORMS[name].log_pt(mass, grid, t))
        assert np.trapezoid(p, grid) == pytest.approx(1.0, abs=1e-6)  # normalised densities
        means[name] = float(np.trapezoid(grid * p, grid))
    pt = sample_mt_power(np.random.default_rng(3), np.full(400_000, mass), t, 1.0)
    err = pt.std() / math.sqrt(pt.size)
    assert abs(pt.mean() - means["mt_boltzmann"]) < 4 * err
    assert abs(pt.mean() - means["nominal"]) > 20 * err


def test_full_arm_draws_the_form_from_the_prior(cov):
    """Each drawn a is one of the points (equally likely: each count within 4σ of n/3, binomial)
    and the mock gets it; λ_θ, R and σ_y are the draws without the form, value for value (the
    form is drawn last from the same generator)."""
    from gammastar.config import load_config

    base = load_config(REPO / "analysis" / "na60_like.yaml")
    n = 300
    counts = dict.fromkeys(cov.FORM_POINTS, 0)
    for seed in range(n):
        cfg, drawn = cov.varied_config(base, np.random.default_rng([2026, seed]), pt_form=True)
        _, plain = cov.varied_config(base, np.random.default_rng([2026, seed]))
        assert {k: v for k, v in drawn.items() if k != "pt_form"} == plain  # the same draws
        assert cfg.mock.pt_mt_power == drawn["pt_form"]  # assigned, not computed
        assert cfg.mock.rapidity_sigma == drawn["y_sigma"]
        counts[drawn["pt_form"]] += 1
    sd = math.sqrt(n * (1 / 3) * (2 / 3))
    assert all(abs(c - n / 3) < 4 * sd for c in counts.values()), counts


def test_mass_response_is_sampled_anew_for_each_drawn_truth(cov, monkeypatch):
    """The cached mass response serves a realisation only when its λ_θ shift, rapidity width
    and p_T form are those it was sampled with (each moves the sources' kinematics)."""
    from gammastar.config import load_config

    calls = []

    def residuals(cfg, sources, seed):
        calls.append((cfg.mock.rapidity_sigma, cfg.mock.pt_mt_power))
        return np.zeros(4), np.zeros(4)

    monkeypatch.setattr("gammastar_validation.truth.response_residuals", residuals)
    monkeypatch.setattr("gammastar_validation.truth.smearing_from_residuals", lambda mt, d: mt.size)
    monkeypatch.setattr(cov, "_RESPONSES", {})
    base = load_config(REPO / "analysis" / "na60_like.yaml")

    def mock(**upd):
        return base.model_copy(update={"mock": base.mock.model_copy(update=upd)})

    assert cov.mass_response(base, {}, 100, seed=1) == (4, 2, 2)
    cov.mass_response(base, {"lambda_theta_shift": 0.0}, 100, seed=1)
    assert len(calls) == 1  # the same truth: cached
    cov.mass_response(mock(rapidity_sigma=0.95696), {}, 100, seed=1)
    cov.mass_response(mock(pt_mt_power=1.2247), {}, 100, seed=1)
    cov.mass_response(base, {"lambda_theta_shift": 0.1}, 100, seed=1)
    assert calls[1:] == [(0.95696, 0.0), (base.mock.rapidity_sigma, 1.2247), calls[0]]


def test_extrapolation_errors_count_each_form_once(cov):
    """``varied`` holds the fit, the external σ_y and the drawn form's part; ``extrapolation``
    (the ``all`` σ) the fit, the external σ_y and every form once, the drawn one not added a
    second time; a drawn form the extrapolation has no part for is a one-line error naming it."""
    one = np.ones(2)
    ep = {"fit": 0.01 * one, "external": 0.02 * one, "forms": 0.05 * one,
          "form_mt_boltzmann": 0.03 * one, "form_logistic_y": 0.04 * one}  # fmt: skip
    fit, varied, whole = cov.extrapolation_errors(ep, ("mt_boltzmann",), Path("y.json"))
    np.testing.assert_allclose(fit, 0.01 * one)
    np.testing.assert_allclose(varied, math.sqrt(1 + 4 + 9) / 100 * one)
    np.testing.assert_allclose(whole, math.sqrt(1 + 4 + 9 + 16) / 100 * one)
    _, varied, whole_none = cov.extrapolation_errors(ep, (), Path("y.json"))
    np.testing.assert_allclose(varied, math.sqrt(1 + 4) / 100 * one)
    np.testing.assert_allclose(whole_none, whole)  # the whole does not depend on the draws
    del ep["form_mt_boltzmann"]
    with pytest.raises(SystemExit, match=r"^--form-flow: the yields' extrapolation has no "
                       r"mt_boltzmann variation \(y.json\)$"):  # fmt: skip
        cov.extrapolation_errors(ep, ("mt_boltzmann",), Path("y.json"))
