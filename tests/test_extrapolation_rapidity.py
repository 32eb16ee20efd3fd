"""The extrapolation's rapidity centre fitted where the data constrain it, and the Tsallis
p_T form: closure of the fit on samples drawn from the model itself with a known (T, ȳ, σ_y),
the rule that decides between the fitted ȳ and the fixed c.m. rapidity, and the Tsallis
form's analytic normalisation and derivatives."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_extrapolation import _toy as toy

from gammastar.yields.extrapolation.fitting import FitSettings, fit_extrapolation
from gammastar.yields.extrapolation.model import FORMS, TSALLIS_BOUNDS
from gammastar.yields.extrapolation.result import Extrapolation

# the toy: the model at one mass with a p+Pb-like rapidity centre 0.42 units backward of the
# 400 GeV beam's c.m. rapidity 3.374 (docs/explanation/physics.md §2; PYTHIA Angantyr's p + Pb
# mesons sit about so far back, docs/validation/closure.md), σ_y = 1.25 (the default job's
# external width), T = 0.2 GeV (physics.md §3.2), seen through a rapidity acceptance as narrow
# as the spectrometer's, A(y) = 0.9 exp(−(y − 3.6)²/(2 · 0.35²)), F = {A ≥ 0.05}
# (|y − 3.6| < 0.84: the data see 2.76–4.44, the peak's slope but little of its curvature)
MASS, TRUE, Y_CM = 0.5, (0.2, 2.95, 1.25), 3.374
A_CENTRE, A_MIN = 3.6, 0.05


class _Window:
    """A fiducial region in the duck type of
    :class:`~gammastar.corrections.pair_acceptance.FiducialRegion`: a Gaussian acceptance in
    lab rapidity of rms ``width``, F where it is ≥ :data:`A_MIN`."""

    def __init__(self, width: float) -> None:
        self.width = width

    def acceptance(self, m, qt, e):
        y = np.arccosh(np.maximum(e / np.sqrt(qt**2 + m**2), 1.0))
        return 0.9 * np.exp(-0.5 * ((y - A_CENTRE) / self.width) ** 2)

    def contains(self, m, qt, e):
        return self.acceptance(m, qt, e) >= A_MIN

    def as_dict(self):
        return {"toy": f"A(y) = 0.9 exp(-(y - {A_CENTRE})^2 / (2 {self.width}^2)) >= {A_MIN}"}


def _toy(region, n_sources, seed, true=TRUE):
    """The accepted pairs inside F of ``n_sources`` γ* of the model at ``true`` (m, p_T, y,
    w = 1/A): :func:`test_extrapolation._toy` at this file's truth."""
    return toy(region, n_sources, seed, true=true)


def _fit(region, pairs, **kw):
    kw.setdefault("model_variations", False)
    kw.setdefault("compare", False)
    return fit_extrapolation(*pairs, [0.45, 0.55], region, settings=FitSettings(seed=7, **kw))


@pytest.fixture(autouse=True)
def small_reference(monkeypatch):
    """Reference samples of 10⁵ draws (P_F's Monte Carlo offset ≈ 0.3%, below the
    tolerances here, which are the fits' statistical errors)."""
    import gammastar.yields.extrapolation.reference as ex_mod

    monkeypatch.setattr(ex_mod, "REFERENCE_SAMPLES", 100_000)


@pytest.fixture(scope="module")
def narrow():
    region = _Window(0.35)
    return region, _toy(region, 400_000, seed=5)


def test_the_fitted_centre_closes_on_the_model_with_an_external_width(narrow):
    """ȳ free, σ_y fixed at its true value: the fitted ȳ and T are the model's within 3σ of
    the sandwich errors (a 3σ band: a false failure in 0.3% of seeds), and the narrow window
    constrains ȳ to better than 0.1 units (the slope of dN/dy, (ȳ − y)/σ_y², is what it
    sees), far better than the prior the rule compares with (0.5)."""
    region, pairs = narrow
    ex = _fit(region, pairs, y_mean=None, y_sigma=(TRUE[2], 0.0), y_sigma_source="the toy's")
    i_mu, i_t = ex.parameter_index("y_mean"), ex.parameter_index("T")
    err_mu, err_t = np.sqrt(ex.covariance[i_mu, i_mu]), np.sqrt(ex.covariance[i_t, i_t])
    assert 0 < err_mu < 0.1
    assert abs(ex.y_mean[0] - TRUE[1]) < 3 * err_mu
    assert abs(ex.temperature[0] - TRUE[0]) < 3 * err_t
    # the fixed centre is far off: the fit at y_cm misses the true f_F by many σ
    truth = _true_fraction(region)
    fixed = _fit(region, pairs, y_mean=Y_CM, y_sigma=(TRUE[2], 0.0), y_sigma_source="the toy's")
    assert abs(ex.fiducial_fraction[0] - truth) < 3 * ex.fiducial_fraction_err[0] + 0.003
    assert abs(fixed.fiducial_fraction[0] - truth) > 5 * fixed.fiducial_fraction_err[0]


def _true_fraction(region) -> float:
    """The model's fraction inside F at MASS by Monte Carlo (2·10⁶ γ*: ±0.0003)."""
    from gammastar.physics.sampling import ParametricSampler

    out = ParametricSampler(*TRUE).sample(MASS, 2_000_000, seed=99)
    return float(np.mean(region.contains(MASS, out["qT"], out["E"])))


def test_centre_and_width_close_together_where_the_window_is_wide():
    """Both ȳ and σ_y free on a window of rms 1.0 (F: |y − 3.6| < 2.4), which sees the
    peak's curvature: both are the model's within 3σ of the sandwich errors."""
    region = _Window(1.0)
    ex = _fit(region, _toy(region, 200_000, seed=8), y_mean=None)
    for name, true in (("y_mean", TRUE[1]), ("y_sigma", TRUE[2])):
        i = ex.parameter_index(name)
        err = np.sqrt(ex.covariance[i, i])
        value = ex.y_mean[0] if name == "y_mean" else ex.y_sigma[0]
        assert 0 < err < 0.2
        assert abs(value - true) < 3 * err


def test_the_rule_keeps_a_constrained_centre_and_records_its_decision(narrow):
    """``y_mean_auto``: with a prior of 0.5 units the narrow window's ȳ (1σ < 0.1, above) is
    kept, the decision and the fitted value recorded and read back from ``yields.json``."""
    region, pairs = narrow
    ex = _fit(region, pairs, y_mean=Y_CM, y_mean_auto=True, y_mean_error=0.5,
              y_sigma=(TRUE[2], 0.0), y_sigma_source="the toy's")  # fmt: skip
    rule = ex.y_mean_rule
    assert rule["decision"] == "fitted"
    assert not ex.y_mean_fixed
    assert rule["y_mean_fitted"] == pytest.approx(ex.y_mean[0], abs=1e-6)
    assert rule["threshold"] == pytest.approx(0.5, abs=1e-15)  # the y_mean_error given above
    assert 0 < rule["y_mean_fitted_err"] < rule["threshold"]
    # σ_y's source is exact here (error 0): the data cannot beat it, the width stays external
    assert rule["y_sigma"]["decision"] == "external"
    assert ex.y_sigma_external is not None
    back = Extrapolation.from_dict(json.loads(json.dumps(ex.as_dict())))
    assert back.y_mean_rule == rule
    assert not back.y_mean_fixed


@pytest.mark.slow  # the fitted width's closures above run by default
def test_the_rule_frees_the_width_where_the_window_sees_its_curvature():
    """On the wide window (rms 1.0) the data fix σ_y to better than a third of a source's 0.3
    (:data:`Y_SIGMA_MARGIN`): with ``y_mean_auto`` both ȳ and σ_y are fitted (the record says
    so) and are the model's within 3σ of their sandwich errors."""
    region = _Window(1.0)
    ex = _fit(region, _toy(region, 200_000, seed=8), y_mean=Y_CM, y_mean_auto=True,
              y_mean_error=0.5, y_sigma=(1.0, 0.3), y_sigma_source="a source")  # fmt: skip
    width = ex.y_mean_rule["y_sigma"]
    assert width["decision"] == "fitted"
    assert ex.y_sigma_external is None
    assert width["threshold"] == pytest.approx(0.1, abs=1e-12)
    assert width["y_sigma_fitted_err"] < width["threshold"]
    for name, true, value in (("y_mean", TRUE[1], ex.y_mean[0]), ("y_sigma", TRUE[2], ex.y_sigma[0])):
        i = ex.parameter_index(name)
        assert abs(value - true) < 3 * np.sqrt(ex.covariance[i, i])


def test_the_rule_falls_back_to_the_cm_rapidity_with_the_priors_error():
    """Few pairs (2000 sources: ȳ's 1σ well above 0.05) and a prior of 0.05: ȳ is fixed at
    y_cm, and the model refitted at y_cm − 0.05 is a model variation (``y_mean_backward``,
    the nominal form) whose shift joins the covariance: the quoted f_F error grows."""
    region = _Window(0.35)
    pairs = _toy(region, 2_000, seed=3)
    kw = {"y_mean": Y_CM, "y_sigma": (TRUE[2], 0.0), "y_sigma_source": "the toy's",
          "model_variations": True}  # fmt: skip
    ex = _fit(region, pairs, y_mean_auto=True, y_mean_error=0.05, **kw)
    assert ex.y_mean_rule["decision"] == "fixed"
    assert ex.y_mean_fixed
    assert ex.y_mean_rule["y_mean_fitted_err"] > 0.05
    assert ex.y_mean[0] == pytest.approx(Y_CM, abs=1e-12)
    var = ex.model_variations["y_mean_backward"]
    assert var["form"] == "nominal"
    assert var["y_mean"] == pytest.approx(Y_CM - 0.05, abs=1e-12)
    plain = _fit(region, pairs, **kw)  # the same fit without the prior's variation
    assert "y_mean_backward" not in plain.model_variations
    assert ex.fiducial_fraction_err[0] > plain.fiducial_fraction_err[0]


@pytest.mark.parametrize(("m", "t", "q"), [(0.3, 0.17, 0.08), (0.78, 0.25, 0.2), (0.02, 0.15, 0.29)])
def test_the_tsallis_form_is_normalised_analytically(m, t, q):
    """The Tsallis density p_T (1 + q(m_T − m)/T)^{−1/q} / N integrates to 1 with the closed
    form N = T/(1 − q) (m + T/(1 − 2q)) (quadrature to 1e-7; up to q = 0.29, the fit's bound
    0.3), and tends to the m_T-exponential as q → 0."""
    from scipy.integrate import quad

    form = FORMS["tsallis"]
    assert q <= TSALLIS_BOUNDS[1]
    dens = lambda p: float(np.exp(form.log_pt(m, np.array([p]), t, q))[0])
    assert quad(dens, 0.0, np.inf, limit=400)[0] == pytest.approx(1.0, abs=1e-7)
    pt = np.array([0.01, 0.3, 1.5, 4.0])
    # the difference is q x²/2 to first order, x = (m_T − m)/T ≤ 24 here: 3·10⁻¹⁰ at q = 10⁻¹²
    np.testing.assert_allclose(form.log_pt(m, pt, t, 1e-12), FORMS["nominal"].log_pt(m, pt, t),
                               rtol=0, atol=1e-9)  # fmt: skip


@pytest.mark.parametrize("q", [0.0, 1e-6, 1e-5, 0.12])
def test_the_tsallis_derivatives_are_the_central_differences(q):
    """∂ ln p/∂T and ∂ ln p/∂q of the Tsallis form against central differences (step 1e-6:
    truncation ~1e-12, rounding ~1e-10 relative), at q = 0 and next to it (the series branch),
    at 1e-5 (both branches: the series at the softest p_T, qx < 1e-4, the closed form at the
    hardest) and inside (the closed form); at q = 0 a one-sided difference (q ≥ 0), step
    1e-7."""
    form = FORMS["tsallis"]
    m, t = 0.45, 0.18
    pt = np.array([0.02, 0.4, 1.1, 2.5])
    h = 1e-6
    d_t = (form.log_pt(m, pt, t + h, q) - form.log_pt(m, pt, t - h, q)) / (2 * h)
    np.testing.assert_allclose(form.dlog_pt(m, pt, t, q), d_t, rtol=1e-6, atol=1e-8)
    if q == 0.0:
        hq = 1e-7
        d_q = (form.log_pt(m, pt, t, hq) - form.log_pt(m, pt, t, 0.0)) / hq
        d_q2 = (form.log_pt(m, pt, t, 2 * hq) - form.log_pt(m, pt, t, 0.0)) / (2 * hq)
        d_q = 2 * d_q - d_q2  # Richardson: O(h²)
        np.testing.assert_allclose(form.dlog_pt_da(m, pt, t, q), d_q, rtol=1e-5, atol=1e-6)
    else:
        d_q = (form.log_pt(m, pt, t, q + h) - form.log_pt(m, pt, t, q - h)) / (2 * h)
        np.testing.assert_allclose(form.dlog_pt_da(m, pt, t, q), d_q, rtol=1e-5, atol=1e-6)


def _tsallis_pairs(region, n_sources, seed, t, q):
    """Pairs of a Tsallis p_T spectrum (parameters ``t``, ``q``) × the toy's Gaussian rapidity
    through ``region`` (m, p_T, y, w = 1/A), p_T by the inverse of the density's cumulative
    sum on a 0.5 MeV grid to 12 GeV (the tail beyond: < 10⁻⁶ at q ≤ 0.15), and the truth's
    fraction inside F of all of them."""
    rng = np.random.default_rng(seed)
    grid = np.linspace(0.0, 12.0, 24001)
    dens = np.exp(FORMS["tsallis"].log_pt(MASS, grid[1:], t, q))
    cdf = np.concatenate([[0.0], np.cumsum(dens)])
    pt = np.interp(rng.random(n_sources) * cdf[-1], cdf, grid)
    y = rng.normal(TRUE[1], TRUE[2], n_sources)
    mt = np.sqrt(pt**2 + MASS**2)
    e = mt * np.cosh(y)
    a = np.where(y > 0, region.acceptance(MASS, pt, e), 0.0)
    inside = a >= A_MIN
    keep = inside & (rng.random(n_sources) < a)
    return (np.full(int(keep.sum()), MASS), pt[keep], y[keep], 1.0 / a[keep]), float(inside.mean())


def _tail(name: str, t: float, a: float, cut: float) -> float:
    """The fraction of the form's γ* at MASS with p_T above ``cut`` (quadrature)."""
    from scipy.integrate import quad

    dens = lambda p: float(np.exp(FORMS[name].log_pt(MASS, np.array([p]), t, a))[0])
    return quad(dens, cut, np.inf, limit=400)[0]


@pytest.mark.slow  # 4 s of fits; the Tsallis form's own tests run by default
def test_the_tsallis_variation_closes_on_a_power_law_truth():
    """On pairs of a Tsallis spectrum (T = 0.13 GeV, q = 0.12: n ≈ 8, inside the range p–A
    meson spectra take) the Tsallis variation's refit finds the power law: q within 0.03 and
    T within 0.01 GeV of the truth (a few of their statistical σ at this size: the refits of
    two reference seeds differ by 0.006 in q), and the share of γ* above p_T = 1.5 GeV, where
    the data thin out, within 20% of the truth's (1.8%), while the m_T-exponential's is less
    than half of it: the variation carries the power-law tail the exponential cannot."""
    region = _Window(0.35)
    t_true, q_true = 0.13, 0.12
    pairs, _ = _tsallis_pairs(region, 600_000, 12, t_true, q_true)
    ex = _fit(region, pairs, y_mean=TRUE[1], y_sigma=(TRUE[2], 0.0), y_sigma_source="the toy's",
              model_variations=True)  # fmt: skip
    rec = ex.model_variations["tsallis"]
    t_fit, q_fit = rec["temperature"][0], rec["pt_power"][0]
    assert q_fit == pytest.approx(q_true, abs=0.03)
    assert t_fit == pytest.approx(t_true, abs=0.01)
    truth = _tail("tsallis", t_true, q_true, 1.5)
    assert _tail("tsallis", t_fit, q_fit, 1.5) == pytest.approx(truth, rel=0.2)
    assert _tail("nominal", ex.temperature[0], 0.0, 1.5) < 0.5 * truth


def _seeing(kin, hit):
    """A KinematicSample whose detector sees the samples ``hit`` with probability 1 whatever
    their lifetime (one cell from 0 to ∞)."""
    from gammastar.reach.acceptance import KinematicSample

    n = len(kin["qT"])
    return KinematicSample(
        MASS, np.ones(n), np.asarray(hit, float)[:, None], np.array([0.0, np.inf]), 1.0
    )


@pytest.fixture(scope="module")
def varied():
    """A fit with its model variations to pairs whose p_T is a power law (the Tsallis truth
    above), and a draw of the data-driven kinematics (the model itself inside F: what a flow
    would give) with their rapidities."""
    from gammastar.physics.sampling import ParametricSampler
    from gammastar.yields.extrapolation.samplers import ExtrapolatedSampler

    region = _Window(0.35)
    pairs, _ = _tsallis_pairs(region, 300_000, 21, 0.13, 0.12)
    ex = _fit(region, pairs, y_mean=TRUE[1], y_sigma=(TRUE[2], 0.1), y_sigma_source="the toy's",
              model_variations=True)  # fmt: skip
    kin = ExtrapolatedSampler(ParametricSampler(*TRUE), ex, region).sample(MASS, 40_000, seed=6)
    y = np.arccosh(kin["E"] / np.sqrt(kin["qT"] ** 2 + MASS**2))
    return region, ex, kin, y


def test_the_variants_spread_is_the_extrapolation_nuisance_where_the_detector_looks(varied):
    """The reach's ``extrapolation`` nuisance holds the spread of the model variants' own N_sig
    at the detector (``forms``, :func:`nsig_error_parts`): zero for a detector that sees only
    the fiducial region (no extrapolated sample is hit: every variant's N_sig is the data's),
    and larger for one that looks forward of F (y > 4.6, where only the model speaks) than
    for one that sees everything (where it is nearly the yield's δf_F/f_F alone)."""
    from gammastar.yields.extrapolation.nsig.parts import nsig_error_parts

    region, ex, kin, y = varied
    out = np.asarray(kin["extrapolated"], bool)
    parts = {
        name: nsig_error_parts(ex, region, MASS, kin, _seeing(kin, hit), [1.0])
        for name, hit in (("inside", ~out), ("all", np.ones(out.size)), ("forward", y > 4.6))
    }
    # no extrapolated sample hit: every variant's shift is a sum over no sample, zero up to
    # the rounding of the (1 - f)/f factors times 0; 1e-12 of N/Y_F ~ 1 is far below any shift
    assert np.all(np.abs(parts["inside"]["forms"]) <= 1e-12)
    assert parts["all"]["forms"][0] > 0
    # 0.093 against 0.046 on this draw (the logistic rapidity's heavier tail), and the
    # Tsallis form's part, nearly nothing where f_F decides (F is a rapidity window here),
    # 40 times larger forward, where the model's p_T tail decides
    assert parts["forward"]["forms"][0] > 1.5 * parts["all"]["forms"][0]
    assert parts["forward"]["form_tsallis"][0] > 10 * parts["all"]["form_tsallis"][0]


def test_the_spread_vanishes_when_the_variants_agree(varied):
    """Variants whose records are the nominal fit itself (the same f_F, T, power, ȳ, σ_y)
    give a zero spread at any detector: each one's N_sig is the nominal's, up to the
    rounding of the reweighting (weights e^0 = 1 exactly: the self-normalised mean of the
    same numbers, a few ulp of N/Y_F)."""
    import dataclasses

    from gammastar.yields.extrapolation.nsig.parts import nsig_error_parts

    region, ex, kin, y = varied
    same = {
        "fiducial_fraction": ex.fiducial_fraction.tolist(),
        "temperature": ex.temperature.tolist(),
        "pt_power": ex.power_at(ex.mass).tolist(),
        "y_mean": float(ex.y_mean[0]),
        "y_sigma": float(ex.y_sigma[0]),
        "form": "nominal",
    }
    agree = dataclasses.replace(ex, model_variations={k: dict(same) for k in ex.model_variations})
    for hit in (np.ones(y.size), y > 4.6):
        parts = nsig_error_parts(agree, region, MASS, kin, _seeing(kin, hit), [1.0])
        assert parts["forms"][0] < 1e-12
