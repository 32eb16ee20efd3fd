"""The fall-off (1 − E/E_beam)^n as the fitted model's own form: the compiled likelihood sums
with the factor, the fit closing on the form's own draws, the fall-off's two variations, the
samplers that draw it (:mod:`gammastar.yields.extrapolation`, :mod:`gammastar.physics.sampling`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from test_extrapolation import MASS, TRUE, _ToyRegion
from test_extrapolation_xf import E_BEAM, _xf_draws, _xf_pairs

from gammastar.errors import InputError
from gammastar.physics.constants import mass
from gammastar.physics.sampling import ParametricSampler, falloff_weight, sample_pt_y
from gammastar.yields.extrapolation.fitting import FitSettings, fit_extrapolation
from gammastar.yields.extrapolation.likelihood import FitGroup, _group_terms
from gammastar.yields.extrapolation.model import FALLOFF, NOMINAL, XF_POWER, fiducial_fraction
from gammastar.yields.extrapolation.reference import ReferenceSample
from gammastar.yields.extrapolation.result import Extrapolation


def test_the_compiled_sums_hold_the_factor():
    """The truncated log-likelihood of a group and its gradient with the fall-off: the
    compiled sums (the factor folded into the reference sample's weights and added over the
    pairs) equal the numpy functions of the same form to 1e-9 (rounding of sums over ~10⁴
    terms)."""
    region = _ToyRegion()
    d = _xf_draws(40_000, seed=5)
    keep = region.contains(MASS, d["qT"], d["E"])
    m = np.full(int(keep.sum()), MASS)
    ref = ReferenceSample(region, MASS, seed=3)
    grp = FitGroup((m, d["qT"][keep], d["y"][keep], np.ones(m.size), ref))
    form = NOMINAL.with_falloff(XF_POWER, E_BEAM)
    numpy_form = dataclasses.replace(form, y_kernel=None)
    par = (0.22, 3.1, 1.1, 0.0)
    v1, g1 = _group_terms(grp, *par, form, False)
    v2, g2 = _group_terms(grp, *par, numpy_form, False)
    assert v1 == pytest.approx(v2, rel=1e-9)
    np.testing.assert_allclose(g1, g2, rtol=1e-9, atol=1e-9 * np.max(np.abs(g2)))
    # without the factor the value differs by the pairs' Σ ln h and the fraction's change
    v0, _ = _group_terms(grp, *par, NOMINAL, False)
    assert abs(v0 - v1) > 1.0


def test_the_fit_with_the_fall_off_closes_on_its_own_draws():
    """Pairs of the nominal × (1 − E/E_beam)^4 at E_beam = 50 GeV and m = 0.5 GeV through the
    toy's acceptance, fitted with the mesons' fall-off n = 3, which the γ* below the η mass
    take as n + 1 = 4 (two-body Dalitz decays): f_F within 0.04 of the truth's (the tolerance
    of the ``xf_suppressed`` variation's own closure on these pairs, where the nominal blind to
    the factor misses by more than 0.1: test_extrapolation_xf); the fall-off's two variations
    bracket the nominal (a harder tail leaves less in F), the record and the form say n, the
    η mass and E_beam, and ``xf_suppressed`` is not a variation beside it."""
    region = _ToyRegion()
    pairs = _xf_pairs(region)
    n = XF_POWER - 1.0  # the mesons'; the γ* at MASS < m_η fall with n + 1 = XF_POWER
    settings = FitSettings(y_mean=TRUE[1], seed=7, beam_energy=E_BEAM, compare=False,
                           falloff=(n, 1.0), falloff_source="a test")  # fmt: skip
    ex = fit_extrapolation(*pairs, [0.45, 0.55], region, settings=settings)
    truth = fiducial_fraction(region, MASS, TRUE, form=NOMINAL.with_falloff(XF_POWER, E_BEAM))
    assert ex.fiducial_fraction[0] == pytest.approx(truth, abs=0.04)
    var = ex.model_variations
    assert "xf_suppressed" not in var
    assert "logistic_y" in var
    hard, soft = var["falloff_harder"], var["falloff_softer"]
    assert hard["x_power"] == pytest.approx(n - 1.0, rel=1e-15)
    assert soft["x_power"] == pytest.approx(n + 1.0, rel=1e-15)
    assert var["logistic_y"]["x_power"] == pytest.approx(n, rel=1e-15)
    assert hard["dalitz_mass"] == pytest.approx(mass("eta"), rel=1e-15)
    f0 = ex.fiducial_fraction[0]
    assert hard["fiducial_fraction"][0] < f0 < soft["fiducial_fraction"][0]
    again = Extrapolation.from_dict(ex.as_dict())
    # the record through yields.json's dictionary: the settings' numbers, copied
    fo = again.falloff
    assert fo["source"] == "a test"
    assert (fo["n"], fo["error"], fo["beam_energy"], fo["dalitz_mass"]) == pytest.approx(
        (n, 1.0, E_BEAM, mass("eta")), rel=1e-15
    )
    assert again.form.power_at(MASS) == pytest.approx(XF_POWER, rel=1e-15)
    assert again.form.power_at(0.78) == pytest.approx(n, rel=1e-15)
    assert again.form.beam_energy == pytest.approx(E_BEAM, rel=1e-15)


def test_without_the_dalitz_step_the_fit_takes_n_at_every_mass():
    """``falloff_dalitz=False``: the fall-off n itself below the η mass too, so the fit at
    n = 4 closes on the same pairs (within the 0.04 above) and records no ``dalitz_mass``; a
    ``yields.json`` record without the key (as before the step) reads back the same way."""
    region = _ToyRegion()
    settings = FitSettings(y_mean=TRUE[1], seed=7, beam_energy=E_BEAM, compare=False,
                           falloff=(XF_POWER, 1.0), falloff_dalitz=False,
                           model_variations=False)  # fmt: skip
    ex = fit_extrapolation(*_xf_pairs(region), [0.45, 0.55], region, settings=settings)
    truth = fiducial_fraction(region, MASS, TRUE, form=NOMINAL.with_falloff(XF_POWER, E_BEAM))
    assert ex.fiducial_fraction[0] == pytest.approx(truth, abs=0.04)
    assert "dalitz_mass" not in ex.falloff
    assert Extrapolation.from_dict(ex.as_dict()).form.power_at(MASS) == pytest.approx(XF_POWER, rel=1e-15)


def test_the_model_sampler_takes_the_fall_off_of_its_mass():
    """The fitted model's sampler at a mass below the η mass draws with n + 1, above it with n
    (the record's ``dalitz_mass``)."""
    from types import SimpleNamespace

    from gammastar.yields.extrapolation.samplers import _falloff_of

    model = SimpleNamespace(falloff={"n": 3.0, "beam_energy": E_BEAM, "dalitz_mass": mass("eta")})
    assert _falloff_of(model, 0.2) == pytest.approx((4.0, E_BEAM), rel=1e-15)
    assert _falloff_of(model, 0.78) == pytest.approx((3.0, E_BEAM), rel=1e-15)
    model.falloff = {"n": 3.0, "beam_energy": E_BEAM}  # a record from before the step
    assert _falloff_of(model, 0.2) == pytest.approx((3.0, E_BEAM), rel=1e-15)


def test_a_fall_off_needs_the_beam_energy():
    """A fall-off without ``beam_energy`` is refused with a one-line error."""
    region = _ToyRegion()
    pairs = _xf_pairs(region)
    with pytest.raises(InputError, match=r"needs beam\.energy"):
        fit_extrapolation(*pairs, [0.45, 0.55], region,
                          settings=FitSettings(y_mean=TRUE[1], falloff=FALLOFF[:2]))  # fmt: skip


def _share_above(e: np.ndarray, cut: float) -> tuple[float, float]:
    p = float(np.mean(e > cut))
    return p, float(np.sqrt(p * (1 - p) / e.size))


def test_the_model_sampler_draws_the_fall_off():
    """:class:`ParametricSampler` with a fall-off puts the share of an independent
    accept–reject sample of the same density above E_beam/4 (within 4σ of the two) and
    nothing at or above the beam energy; equal seeds give equal samples."""
    smp = ParametricSampler(*TRUE, e_max=E_BEAM, falloff=(XF_POWER, E_BEAM))
    got = smp.sample(MASS, 200_000, seed=4)["E"]
    assert got.size == 200_000
    assert np.max(got) < E_BEAM
    ref = _xf_draws(400_000, seed=8)["E"]
    (p1, s1), (p2, s2) = _share_above(got, E_BEAM / 4), _share_above(ref, E_BEAM / 4)
    assert p1 > 0.01
    assert abs(p1 - p2) < 4 * np.hypot(s1, s2)
    # the same arithmetic twice in one process: equal to the last bits, allowed a few ulp
    a, b = smp.sample(MASS, 1000, seed=2)["E"], smp.sample(MASS, 1000, seed=2)["E"]
    np.testing.assert_allclose(a, b, rtol=4 * np.finfo(float).eps, atol=0.0)


def test_the_mock_mesons_fall_off():
    """:func:`sample_pt_y` with a fall-off n: the share above E_beam/4 is that of the same
    draws without it weighted by (1 − E/E_beam)^n (self-normalised), within 4σ; the main
    stream goes on as it does without the fall-off (the redraws take a child stream)."""
    m = np.full(300_000, 0.78)
    args = (0.2, 0.0, 3.0, 1.0, 50.0)
    pt, y = sample_pt_y(np.random.default_rng(1), m, *args, falloff=3.0)
    e = np.sqrt(m**2 + pt**2) * np.cosh(y)
    pt0, y0 = sample_pt_y(np.random.default_rng(2), m, *args)
    e0 = np.sqrt(m**2 + pt0**2) * np.cosh(y0)
    w = falloff_weight(e0, 50.0, 3.0)
    p_w = float(w @ (e0 > 12.5) / w.sum())
    s_w = float(np.sqrt(np.sum((w * ((e0 > 12.5) - p_w)) ** 2)) / w.sum())
    p, s = _share_above(e, 12.5)
    assert abs(p - p_w) < 4 * np.hypot(s, s_w)
    # the fall-off redraws from a child stream: the main stream goes on as without it
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    sample_pt_y(rng_a, m[:1000], *args, falloff=3.0)
    sample_pt_y(rng_b, m[:1000], *args)
    np.testing.assert_allclose(
        rng_a.random(8), rng_b.random(8), rtol=4 * np.finfo(float).eps, atol=0.0
    )


def test_the_configs_fall_off():
    """``yields.extrapolation_falloff: measured`` is the package's :data:`FALLOFF`; the mock's
    fall-off needs its kinematic limit."""
    from gammastar.config.mock import MockConfig

    with pytest.raises(ValueError, match="kinematic_limit"):
        MockConfig(falloff=3.0)
    assert MockConfig(falloff=3.0, kinematic_limit=True).falloff == pytest.approx(3.0, rel=1e-15)
    from gammastar.config import load_config

    cfg = load_config(Path(__file__).resolve().parents[1] / "analysis" / "na60_like.yaml")
    cfg = cfg.model_copy(
        update={"yields": cfg.yields.model_copy(update={"extrapolation_falloff": "measured"})}
    )
    s = FitSettings.from_config(cfg)
    assert s.falloff == pytest.approx((FALLOFF.value, FALLOFF.error), rel=1e-15)
    assert s.falloff_source == FALLOFF.source


def test_the_fall_off_pair_is_one_variation():
    """The forms' variance: the fall-off's n ∓ 1σ counted once, ((|δ₋| + |δ₊|)/2)², beside
    the other forms' squares (a pair of sizes 0.3 and 0.5 with a form of 0.2:
    0.4² + 0.2² = 0.2); a form not resolved (NaN) stays NaN."""
    from gammastar.yields.extrapolation.nsig.forms import combine_form_variances

    var = {"falloff_harder": np.array([0.09, 0.09]), "falloff_softer": np.array([0.25, np.nan]),
           "logistic_y": np.array([0.04, 0.04])}  # fmt: skip
    got = combine_form_variances(var, 2)
    assert got[0] == pytest.approx(0.2, rel=1e-12)
    assert np.isnan(got[1])
    assert combine_form_variances({"logistic_y": np.array([0.04])}, 1)[0] == pytest.approx(
        0.04, rel=1e-12
    )


def test_no_fraction_without_a_density():
    """f_F at T ≤ 0 or σ_y ≤ 0 (an error's step beyond the parameters' range) is NaN, which
    the N_sig error's steps treat as undefined, with the fall-off and without."""
    region = _ToyRegion()
    for form in (NOMINAL, NOMINAL.with_falloff(3.0, 400.0)):
        assert np.isnan(fiducial_fraction(region, MASS, (-0.01, TRUE[1], TRUE[2]), form=form))
        assert np.isnan(fiducial_fraction(region, MASS, (TRUE[0], TRUE[1], 0.0), form=form))


def test_the_fall_off_pair_is_one_shift_in_the_covariance():
    """The parameter shifts δ of the model's forms: the fall-off's n ∓ 1σ as one, (δ₊ − δ₋)/2,
    beside the others as they are (the covariance adds each δδᵀ: two would count n twice)."""
    from gammastar.yields.extrapolation.errors import _paired

    a, hard, soft = np.array([1.0, 0.0]), np.array([0.0, -0.3]), np.array([0.0, 0.5])
    got = _paired([("logistic_y", a), ("falloff_harder", hard), ("falloff_softer", soft)])
    assert len(got) == 2
    np.testing.assert_allclose(got[0], a, rtol=0.0, atol=0.0)
    np.testing.assert_allclose(got[1], [0.0, 0.4], rtol=1e-15, atol=1e-16)


def test_a_refit_holds_the_fits_fall_off():
    """A refit (:func:`gammastar.yields.extrapolation.refits.refit`, the λ_θ moves') fits the
    fitted form, fall-off included: on the same pairs and region it returns the fit's f_F
    and T (to the fits' tolerance, 1e-6, as the refit test without a fall-off). The form
    without the factor, at the same parameters, gives 0.84 against the fit's 0.76 on these
    pairs: a refit blind to the fall-off would move f_F by that much at no move at all."""
    from gammastar.yields.extrapolation.refits import refit

    region = _ToyRegion()
    m, pt, y, w = _xf_pairs(region)
    settings = FitSettings(y_mean=TRUE[1], seed=7, beam_energy=E_BEAM, compare=False,
                           falloff=(XF_POWER, 1.0), y_sigma=(TRUE[2], 0.1),
                           y_sigma_source="a test", pt_power="fitted",
                           model_variations=False)  # fmt: skip
    ex = fit_extrapolation(m, pt, y, w, [0.45, 0.55], region, settings=settings)
    rec = refit(ex, m, pt, y, w, region, seed=7)
    np.testing.assert_allclose(rec["fiducial_fraction"], ex.fiducial_fraction, rtol=1e-6)
    np.testing.assert_allclose(rec["temperature"], ex.temperature, rtol=1e-6)
    par = (float(ex.temperature[0]), float(ex.y_mean[0]), float(ex.y_sigma[0]),
           float(ex.power_at(ex.mass)[0]))  # fmt: skip
    blind = fiducial_fraction(region, MASS, par, form=NOMINAL)
    assert blind - ex.fiducial_fraction[0] > 0.05
