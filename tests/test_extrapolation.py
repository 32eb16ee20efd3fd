"""The extrapolation fit's error: the sandwich covariance of the weighted fit against
the scatter of the fitted f_F over toy realisations drawn from the model itself."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from gammastar.yields.extrapolation.fitting import FitSettings, fit_extrapolation
from gammastar.yields.extrapolation.likelihood import sandwich_covariance
from gammastar.yields.extrapolation.model import fiducial_fraction
from gammastar.yields.extrapolation.result import Extrapolation

# the toy: the model at one mass with the mock's parameters (docs/explanation/physics.md §3.2: T = 0.2 GeV,
# ȳ = 3.37 fixed as the analysis fixes it, σ_y = 1.2), seen through an acceptance that varies
# strongly with rapidity, A(y) = 0.9 exp(−(y − 3.6)²/(2 · 0.7²)); F = {A ≥ 0.05}
# (|y − 3.6| < 1.68); the accepted pairs weighted 1/A as the selection weights them
MASS, TRUE = 0.5, (0.2, 3.37, 1.2)
A_WIDTH, A_MIN = 0.7, 0.05


class _ToyRegion:
    """A fiducial region in the duck type of :class:`~gammastar.corrections.pair_acceptance.FiducialRegion`
    (``contains``, ``as_dict``), with its acceptance."""

    def acceptance(self, m, qt, e):
        mt = np.sqrt(qt**2 + m**2)
        y = np.arccosh(np.maximum(e / mt, 1.0))
        return 0.9 * np.exp(-0.5 * ((y - 3.6) / A_WIDTH) ** 2)

    def contains(self, m, qt, e):
        return self.acceptance(m, qt, e) >= A_MIN

    def as_dict(self):
        return {"toy": "A(y) = 0.9 exp(-(y - 3.6)^2 / (2 0.7^2)) >= 0.05"}


def _toy(region, n_sources, seed, scale=1.0, true=TRUE):
    """One realisation: the accepted pairs inside F of ``n_sources`` γ* of the model at
    ``true`` (T, ȳ, σ_y) at MASS, weighted ``scale``/A (m, p_T, y, w)."""
    from gammastar.physics.sampling import ParametricSampler

    rng = np.random.default_rng(seed)
    out = ParametricSampler(*true).sample(MASS, n_sources, seed=int(rng.integers(2**31)))
    a = region.acceptance(MASS, out["qT"], out["E"])
    keep = (a >= A_MIN) & (rng.random(n_sources) < a)
    qt, e = out["qT"][keep], out["E"][keep]
    y = np.arccosh(e / np.sqrt(qt**2 + MASS**2))
    return np.full(qt.size, MASS), qt, y, scale / a[keep]


def _fit(region, pairs, **kw):
    """The fit of the toy pairs; the sandwich alone (the statistical error these tests check)
    unless ``model_variations=True``."""
    kw.setdefault("model_variations", False)
    return fit_extrapolation(*pairs, [0.45, 0.55], region,
                             settings=FitSettings(y_mean=TRUE[1], seed=7, **kw))  # fmt: skip


@pytest.fixture
def small_reference(monkeypatch):
    """The fits' reference samples (:data:`REFERENCE_SAMPLES`) of 10⁵ draws in this test: for
    the tests that compare two computations on the same reference (a refit with the fit, one
    error method with the other, a common weight scale, the JSON round trip, the N_sig parts'
    presence, the covariance's shape), whose tolerances are the fits' own or J's sampling
    error, not the reference's Monte Carlo precision (≈ 0.3% on P_F at 10⁵)."""
    import gammastar.yields.extrapolation.reference as ex_mod

    monkeypatch.setattr(ex_mod, "REFERENCE_SAMPLES", 100_000)


@pytest.mark.slow  # 50 toy fits; the power's toys (test_extrapolation_power) run by default
def test_sandwich_error_matches_the_scatter_of_toy_fits(monkeypatch):
    """Over 50 realisations of ~9·10³ weighted pairs each (2·10⁴ sources), the mean sandwich
    error of f_F equals the standard deviation of the fitted f_F within 3 standard errors of
    that standard deviation; the standard error comes from the toys' own kurtosis κ,
    SE(s)/s ≈ ½ √((κ − (n − 3)/(n − 1))/n) (the variance of the sample variance; ≈ 10% for
    Gaussian f_F and n = 50), since the fitted f_F of a weakly constrained σ_y has heavier tails
    than a Gaussian. Also: f_F is unbiased within 3 standard errors of the mean, and the pulls'
    rms is 1 within the same relative tolerance.
    The Kish-scaled profile error (``error_method="kish_profile"``) need not match and
    does not here: ≈ 0.010 against a scatter of ≈ 0.015 (measured with toys of this set-up; the
    sandwich gives 0.0160 against 0.0155 on these 50, SE 10%; on the mock it was larger than the
    scatter: whether it under- or overstates depends on where in F the
    large weights sit)."""
    import gammastar.yields.extrapolation.reference as ex_mod

    # P_F's reference sample: 10⁵ instead of 4·10⁵ (speed; the same fixed sample in every toy,
    # so it cannot add scatter; its P_F is exact to ~0.3% and f_F's truth is the grid's)
    monkeypatch.setattr(ex_mod, "REFERENCE_SAMPLES", 100_000)
    region = _ToyRegion()
    n = 50
    f, err = np.empty(n), np.empty(n)
    for k in range(n):
        ex = _fit(region, _toy(region, 20_000, seed=1000 + k), compare=False)
        assert ex.error_method == "sandwich"
        f[k], err[k] = ex.fiducial_fraction[0], ex.fiducial_fraction_err[0]
    f_true = fiducial_fraction(region, MASS, TRUE)
    s = float(np.std(f, ddof=1))
    kurt = float(np.mean((f - f.mean()) ** 4) / np.mean((f - f.mean()) ** 2) ** 2)
    se_rel = 0.5 * np.sqrt((kurt - (n - 3) / (n - 1)) / n)
    assert float(np.mean(err)) == pytest.approx(s, rel=3 * se_rel)
    assert abs(f.mean() - f_true) < 3 * s / np.sqrt(n)
    pull_rms = float(np.sqrt(np.mean(((f - f_true) / err) ** 2)))
    assert pull_rms == pytest.approx(1.0, abs=3 * se_rel)


def test_sandwich_is_invariant_under_a_common_weight_scale(small_reference):
    """H and J scale as c and c² under w → c·w, so H⁻¹JH⁻¹ does not change: the same pairs
    weighted 1/A and 250/A (a luminosity factor) give the same f_F and error. Tolerance: the
    fit's own convergence (L-BFGS-B, gtol 1e-10 per unit weight) and the Hessian's central
    differences (step 1e-5 relative: truncation ~1e-10, rounding ~eps/1e-5 ≈ 2e-11), ≪ 1e-6."""
    region = _ToyRegion()
    a = _fit(region, _toy(region, 20_000, seed=5), compare=False)
    b = _fit(region, _toy(region, 20_000, seed=5, scale=250.0), compare=False)
    assert b.fiducial_fraction[0] == pytest.approx(a.fiducial_fraction[0], rel=1e-6)
    assert b.fiducial_fraction_err[0] == pytest.approx(a.fiducial_fraction_err[0], rel=1e-6)


def test_sandwich_covariance_with_unit_weights_is_the_inverse_hessian_on_average(
    small_reference,
):
    """With unit weights J is the score's outer product, whose expectation is H (the
    information identity), so H⁻¹JH⁻¹ → H⁻¹: on pairs drawn from the model truncated to F
    (acceptance 1 inside F) the sandwich σ_y and the Kish profile (Kish size = n here, so the
    plain profile likelihood) agree within the sampling error of J, ~1/√n_pairs per entry
    (≈ 1% for ~10⁴ pairs; 5% allowed)."""
    region = _ToyRegion()
    m, qt, y, _ = _toy(region, 20_000, seed=9)
    rng = np.random.default_rng(9)
    keep = rng.random(qt.size) < 1.0  # all: the pairs of the weighted toy, now unit weights
    ex = _fit(region, (m[keep], qt[keep], y[keep], np.ones(int(keep.sum()))))
    assert ex.error_method == "sandwich"
    assert ex.y_sigma_err == pytest.approx(ex.y_sigma_err_alt, rel=0.05)
    assert ex.fiducial_fraction_err[0] == pytest.approx(ex.fiducial_fraction_err_alt[0], rel=0.05)


def test_error_method_is_recorded_and_read_back(small_reference):
    """``yields.json`` ``extrapolation`` records which error it quotes and the other one for
    comparison; a file written before the field existed was made with the Kish profile."""
    region = _ToyRegion()
    ex = _fit(region, _toy(region, 20_000, seed=3))
    d = ex.as_dict()
    assert d["error_method"] == "sandwich"
    assert "Langenbruch" in d["error_method_reference"]
    assert len(d["fiducial_fraction_err_kish_profile"]) == 1
    back = Extrapolation.from_dict(d)
    assert back.error_method == "sandwich"
    np.testing.assert_allclose(back.fiducial_fraction_err_alt, ex.fiducial_fraction_err_alt)
    cov = d["parameter_covariance"]  # ȳ fixed: σ_y and the one group's T
    assert cov["parameters"] == ["y_sigma", "T_0"]
    assert cov["bin_group"] == [0]
    np.testing.assert_allclose(back.covariance, ex.covariance)
    assert np.sqrt(ex.covariance[0, 0]) == pytest.approx(ex.y_sigma_err, rel=1e-12)
    old = {k: v for k, v in d.items() if k not in (
        "error_method", "error_method_reference", "fiducial_fraction_err_kish_profile",
        "y_sigma_err_kish_profile")}  # fmt: skip
    old.pop("parameter_covariance")
    assert Extrapolation.from_dict(old).error_method == "kish_profile"
    assert Extrapolation.from_dict(old).covariance is None
    k = _fit(region, _toy(region, 20_000, seed=3), error_method="kish_profile")
    assert k.as_dict()["error_method"] == "kish_profile"
    np.testing.assert_allclose(k.fiducial_fraction_err, ex.fiducial_fraction_err_alt, rtol=1e-9)
    with pytest.raises(ValueError, match="error_method"):
        _fit(region, _toy(region, 1000, seed=3), error_method="bootstrap")


def test_sandwich_covariance_shape_with_free_mean(small_reference):
    """ȳ free adds one parameter: the covariance is (ȳ, σ_y, T) and positive definite."""
    from gammastar.yields.extrapolation.likelihood import fit_joint
    from gammastar.yields.extrapolation.reference import ReferenceSample

    region = _ToyRegion()
    m, qt, y, w = _toy(region, 20_000, seed=11)
    data = [(m, qt, y, w, ReferenceSample(region, MASS, 7))]
    x, _ = fit_joint(data, (0.2, 3.37, 1.2))
    cov = sandwich_covariance(data, x)
    assert cov.shape == (3, 3)
    assert np.all(np.linalg.eigvalsh(cov) > 0)


def _all_seeing(kin, hit):
    """A KinematicSample whose detector sees the samples ``hit`` with probability 1 whatever
    their lifetime (one cell from 0 to ∞: survival 1 at its start, 0 at its end)."""
    from gammastar.reach.acceptance import KinematicSample

    n = len(kin["qT"])
    return KinematicSample(
        MASS, np.ones(n), np.asarray(hit, float)[:, None], np.array([0.0, np.inf]), 1.0
    )


@pytest.mark.slow
def test_nsig_error_is_the_yields_when_the_detector_sees_everything():
    """With an acceptance of 1 everywhere, 𝓔_in = 𝓔_out = 1 and N = Y_F/f_F, so the fit's
    relative error of N_sig is δf_F/f_F, the yield's: the reweighted gradient of E_x on the
    drawn samples must reproduce the quadrature's ∂f_F/∂θ. Tolerance 5%: the Monte Carlo mean
    of ∂ln p/∂θ over the ~10⁵ extrapolated samples (≈ 1%) and the |y| of the few samples at
    y < 0 (0.3% of the model there). A detector that sees only the fiducial part gets 0."""
    from gammastar.physics.sampling import ParametricSampler
    from gammastar.yields.extrapolation.nsig import NsigErrorSettings, nsig_relative_error
    from gammastar.yields.extrapolation.nsig.draw import per_sample_acceptance
    from gammastar.yields.extrapolation.samplers import ExtrapolatedSampler

    region = _ToyRegion()
    ex = _fit(region, _toy(region, 20_000, seed=21))
    sampler = ExtrapolatedSampler(ParametricSampler(*TRUE), ex, region)
    kin = sampler.sample(MASS, 200_000, seed=4)
    ks = _all_seeing(kin, np.ones(len(kin["qT"])))
    assert per_sample_acceptance(ks, [1.0, 50.0]) == pytest.approx(1.0, abs=1e-15)
    rel = nsig_relative_error(ex, region, MASS, kin, ks, [1.0, 50.0], settings=NsigErrorSettings(yield_cross=False))
    want = ex.fiducial_fraction_err[0] / ex.fiducial_fraction[0]
    assert rel == pytest.approx(np.full(2, want), rel=0.05)
    inside_only = _all_seeing(kin, ~kin["extrapolated"])
    assert nsig_relative_error(
        ex, region, MASS, kin, inside_only, [1.0], settings=NsigErrorSettings(yield_cross=False)
    ) == pytest.approx(0.0)
    # with the model's forms: each alternative's own N changes as the yield does, f/f_alt − 1,
    # when the detector sees everything (E_x,alt/f_alt − E_x/f = 1/f_alt − 1/f, N/Y_F = 1/f);
    # the statistical part is that of the sandwich alone. Tolerance: the reweighted E_x,alt's
    # Monte Carlo mean (~1% of each form's change) on top of the 5% above.
    exv = _fit(region, _toy(region, 20_000, seed=21), model_variations=True)
    rel_v = nsig_relative_error(exv, region, MASS, kin, ks, [1.0, 50.0], settings=NsigErrorSettings(yield_cross=False))
    f = exv.fiducial_fraction[0]
    forms = [f / r["fiducial_fraction"][0] - 1 for r in exv.model_variations.values()]
    stat = exv.fiducial_fraction_err_stat[0] / f
    assert stat == pytest.approx(want, rel=1e-6)  # the same fit: the same sandwich
    want_v = np.sqrt(stat**2 + sum(d**2 for d in forms))
    assert rel_v == pytest.approx(np.full(2, want_v), rel=0.05)
    assert max(abs(d) for d in forms) > 0.2 * stat  # the forms' part is not negligible here
    # each form's own part (``form_<name>``): that form's f/f_alt − 1, the same tolerance;
    # their quadrature sum is ``forms`` (float64 rounding of a sum of two squares)
    from gammastar.yields.extrapolation.nsig.parts import nsig_error_parts

    parts = nsig_error_parts(exv, region, MASS, kin, ks, [1.0, 50.0])
    for name, d in zip(exv.model_variations, forms, strict=True):
        assert parts[f"form_{name}"] == pytest.approx(np.full(2, abs(d)), rel=0.05)
    each = sum(parts[f"form_{k}"] ** 2 for k in exv.model_variations)
    assert np.sqrt(each) == pytest.approx(parts["forms"], rel=1e-12)
    # in logarithms (``log=True``, the reach's): |ln(N_alt/N)| = |ln(f/f_alt)|, the same 5%
    logs = nsig_error_parts(exv, region, MASS, kin, ks, [1.0, 50.0], log=True)
    for name, d in zip(exv.model_variations, forms, strict=True):
        assert logs[f"form_{name}"] == pytest.approx(np.full(2, abs(np.log1p(d))), rel=0.05)
    # an external σ_y: with everything seen its error is the yield's, δf_F/f_F from the
    # covariance with its shift (the same 5%); without it (``external=False``), the T's
    # sandwich alone, far smaller here (f_F hardly depends on T on this toy)
    exe = _fit(region, _toy(region, 20_000, seed=21), y_sigma=(1.3, 0.1), y_sigma_source="t")
    kin_e = ExtrapolatedSampler(ParametricSampler(*TRUE), exe, region).sample(MASS, 200_000, seed=4)
    ks_e = _all_seeing(kin_e, np.ones(len(kin_e["qT"])))
    rel_e = nsig_relative_error(exe, region, MASS, kin_e, ks_e, [1.0], settings=NsigErrorSettings(yield_cross=False))
    want_e = exe.fiducial_fraction_err[0] / exe.fiducial_fraction[0]
    assert rel_e == pytest.approx(np.full(1, want_e), rel=0.05)
    rel_fit = nsig_relative_error(
        exe, region, MASS, kin_e, ks_e, [1.0], settings=NsigErrorSettings(external=False, yield_cross=False)
    )
    assert rel_fit[0] < 0.2 * rel_e[0]


def test_nsig_error_parts_carry_every_form_even_when_not_computed(small_reference):
    """``form_<name>`` is there for every alternative form of the fit, 0 where its part is not
    computed: without ``covariance_stat`` (an extrapolation whose covariance holds the forms)
    and for a form with no finite fit (its f_F and T all ``None``); the other form keeps its
    own, nonzero part. The generator template's form (a generator whose rapidity is a logistic:
    another shape than the model's) reaches N_sig through its record's table."""
    import dataclasses

    from gammastar.physics.sampling import ParametricSampler
    from gammastar.yields.extrapolation.model import MODEL_VARIATIONS
    from gammastar.yields.extrapolation.nsig.parts import nsig_error_parts
    from gammastar.yields.extrapolation.samplers import ExtrapolatedSampler
    from gammastar.yields.extrapolation.template import TemplateSample

    region = _ToyRegion()
    gen_y = np.random.default_rng(5).logistic(TRUE[1], 0.7, 200_000)
    template = TemplateSample(np.full(gen_y.size, MASS), gen_y, None, "logistic generator")
    exv = _fit(region, _toy(region, 5_000, seed=21), model_variations=True, beam_energy=400.0,
               template=template)  # fmt: skip
    kin = ExtrapolatedSampler(ParametricSampler(*TRUE), exv, region).sample(MASS, 20_000, seed=4)
    ks = _all_seeing(kin, np.ones(len(kin["qT"])))
    keys = {f"form_{k}" for k in MODEL_VARIATIONS}
    full = nsig_error_parts(exv, region, MASS, kin, ks, [1.0, 50.0])
    assert keys <= set(full)
    assert all(np.all(full[k] > 0) for k in keys)
    # the template's table is what N_sig takes at a detector that sees the forward samples
    # only (y > 4.5, beyond F): without its shape (ln h = 0) the part moves
    y_kin = np.arccosh(kin["E"] / np.sqrt(kin["qT"] ** 2 + MASS**2))
    fwd = _all_seeing(kin, y_kin > 4.5)
    rec = exv.model_variations["generator_template"]
    flat = {**rec, "template": {**rec["template"], "log_h": np.zeros_like(rec["template"]["log_h"]).tolist()}}
    no_shape = dataclasses.replace(exv, model_variations={**exv.model_variations, "generator_template": flat})
    with_shape = nsig_error_parts(exv, region, MASS, kin, fwd, [1.0])["form_generator_template"]
    moved = nsig_error_parts(no_shape, region, MASS, kin, fwd, [1.0])["form_generator_template"]
    assert abs(moved[0] / with_shape[0] - 1) > 0.1
    no_stat = dataclasses.replace(exv, covariance_stat=None)
    parts = nsig_error_parts(no_stat, region, MASS, kin, ks, [1.0, 50.0])
    assert keys <= set(parts)
    for k in (*keys, "forms"):  # exactly 0: zeros put there, nothing computed
        np.testing.assert_array_equal(parts[k], np.zeros(2))
    lost, *kept = MODEL_VARIATIONS
    rec = dict(exv.model_variations[lost])
    rec["fiducial_fraction"] = [None] * len(rec["fiducial_fraction"])
    rec["temperature"] = [None] * len(rec["temperature"])
    unfit = dataclasses.replace(exv, model_variations={**exv.model_variations, lost: rec})
    parts = nsig_error_parts(unfit, region, MASS, kin, ks, [1.0, 50.0])
    np.testing.assert_array_equal(parts[f"form_{lost}"], np.zeros(2))  # put there, not computed
    for k in kept:
        np.testing.assert_allclose(parts[f"form_{k}"], full[f"form_{k}"], rtol=1e-12)
    # the forms' part: the quadrature sum of the kept ones' (a few roundings of a sum of squares)
    want = np.sqrt(sum(full[f"form_{k}"] ** 2 for k in kept))
    np.testing.assert_allclose(parts["forms"], want, rtol=1e-12)


def test_per_sample_acceptance_averages_to_the_samples_acceptance():
    """:func:`per_sample_acceptance` is the per-sample term of
    :meth:`KinematicSample.acceptance`: their mean agrees to rounding (≈ n_cells · eps per
    sample, summed in another order)."""
    from gammastar.physics.sampling import ParametricSampler
    from gammastar.reach.acceptance import draw
    from gammastar.source.geometry import Geometry
    from gammastar.yields.extrapolation.nsig.draw import per_sample_acceptance

    geo = Geometry(l1=5.0, l2=None, theta_min=0.035, theta_max=0.120)
    ks = draw(ParametricSampler(), 0.4, 5000, geo, seed=3)
    ct = np.array([0.1, 1.0, 100.0])
    np.testing.assert_allclose(per_sample_acceptance(ks, ct).mean(axis=0), ks.acceptance(ct),
                               rtol=1e-10, atol=1e-15)  # fmt: skip
    # each sample's term is the definition's Σ_k h_k [S(z_k) − S(z_{k+1})] (computed here
    # over every cell; the function sums over the few edges where the hits change): a few
    # roundings of terms ≤ 1, on a geometry of several cells with gaps, cτ → 0 and ∞ included
    from gammastar.reach.acceptance import KinematicSample

    rng = np.random.default_rng(8)
    cells = np.array([0.0, 1.0, 2.0, 5.0, 9.0, np.inf])
    hits = (rng.random((400, cells.size - 1)) < 0.4).astype(float)
    gbc = rng.exponential(3.0, 400)
    ks2 = KinematicSample(0.4, gbc, hits, cells, 0.8)
    ct2 = np.array([0.0, 0.01, 1.0, 30.0, np.inf])
    with np.errstate(divide="ignore", invalid="ignore"):
        x = cells[None, :, None] / (gbc[:, None, None] * ct2[None, None, :])
        s = np.exp(-np.where(np.isnan(x), 0.0, x))
    want = 0.8 * np.einsum("nk,nkc->nc", hits, s[:, :-1] - s[:, 1:])
    np.testing.assert_allclose(per_sample_acceptance(ks2, ct2), want, rtol=0, atol=1e-14)
    np.testing.assert_allclose(ks2.acceptance_per_sample(ct2, chunk=7), want, rtol=0, atol=1e-14)


@pytest.mark.parametrize("name", ["nominal", "mt_boltzmann", "tsallis", "logistic_y"])
def test_model_forms_are_normalised_densities_with_their_derivatives(name):
    """Each form of :data:`gammastar.yields.extrapolation.model.FORMS` is a normalised density in p_T and
    in y (quadrature to 1e-6), the rapidity forms have rms σ_y (the logistic's w = σ_y √12/π),
    and the analytic ∂ln p/∂(T, ȳ, σ_y) equals the central difference (step 1e-6: truncation
    ~1e-12, rounding ~1e-10 relative)."""
    from scipy.integrate import quad

    from gammastar.yields.extrapolation.model import FORMS

    form = FORMS[name]
    m, t, mu, s = 0.3, 0.17, 3.37, 1.2
    norm_pt = quad(lambda p: np.exp(form.log_pt(m, np.array([p]), t))[0], 0, 20, limit=200)[0]
    assert norm_pt == pytest.approx(1.0, abs=1e-6)
    dens_y = lambda y: np.exp(form.log_y(np.array([y]), mu, s))[0]
    assert quad(dens_y, mu - 40, mu + 40, limit=400)[0] == pytest.approx(1.0, abs=1e-6)
    var = quad(lambda y: (y - mu) ** 2 * dens_y(y), mu - 40, mu + 40, limit=400)[0]
    assert np.sqrt(var) == pytest.approx(s, rel=1e-6)
    pt, y = np.array([0.05, 0.4, 1.3]), np.array([2.1, 3.5, 4.9])
    ana = form.dlogp(m, pt, y, t, mu, s)
    base = np.array([t, mu, s])
    for j in range(3):
        h = 1e-6
        up, dn = base.copy(), base.copy()
        up[j] += h
        dn[j] -= h
        lp = lambda b: form.log_pt(m, pt, b[0]) + form.log_y(y, b[1], b[2])
        np.testing.assert_allclose(ana[j], (lp(up) - lp(dn)) / (2 * h), rtol=1e-6, atol=1e-8)


def test_model_variations_join_the_covariance():
    """The model's form as an error: each alternative form is fitted to the same pairs, and
    the nominal form at the recorded parameter shift reproduces its f_F (the Boltzmann p_T
    form through the group's T, to brentq's 1e-7 in T; the logistic rapidity through σ_y, by
    least squares: 1 bin here, so exactly up to the bounded search's 1e-7); the covariance is
    the sandwich plus Σ δδᵀ (kept apart as ``covariance_stat``), so the total error is at least
    the statistical one, and both survive the round trip through ``yields.json``."""
    from gammastar.yields.extrapolation.model import FORMS, MODEL_VARIATIONS

    region = _ToyRegion()
    ex = _fit(region, _toy(region, 20_000, seed=31), model_variations=True, compare=False,
              beam_energy=400.0)
    # every form but the generator template's, which needs a generator (test_extrapolation_template)
    assert set(ex.model_variations) == set(MODEL_VARIATIONS) - {"generator_template"}
    deltas = []
    for name, rec in ex.model_variations.items():
        d = np.asarray(rec["parameter_shift"])
        deltas.append(d)
        shifted = (ex.temperature[0] + d[1], ex.y_mean[0], ex.y_sigma[0] + d[0])
        assert rec["maps_to"] == FORMS[name].maps_to
        f_alt = rec["fiducial_fraction"][0]
        assert fiducial_fraction(region, MASS, shifted) == pytest.approx(f_alt, abs=1e-6)
    np.testing.assert_allclose(
        ex.covariance, ex.covariance_stat + sum(np.outer(d, d) for d in deltas), rtol=1e-12
    )
    assert ex.fiducial_fraction_err[0] >= ex.fiducial_fraction_err_stat[0]
    # through the JSON text yields.json holds (a dict passed on as it is could not fail)
    back = Extrapolation.from_dict(json.loads(json.dumps(ex.as_dict())))
    np.testing.assert_allclose(back.covariance_stat, ex.covariance_stat)
    np.testing.assert_allclose(back.fiducial_fraction_err_stat, ex.fiducial_fraction_err_stat)
    assert back.model_variations == ex.model_variations
    assert "model-form" in ex.as_dict()["parameter_covariance"]["method"]


def test_an_external_sigma_y_is_fixed_and_its_error_reaches_f_f():
    """``y_sigma=(value, error)``: σ_y is not fitted but fixed; the covariance holds the T's
    sandwich at that σ_y plus the shift δ of the fits at σ_y ± error (σ_y's entry = error
    exactly), so the quoted f_F error is √(T's² + Δf²) with Δf the half-difference of f_F at
    the two refits (linear propagation: within 2% of it on this toy, where f_F is nearly
    linear over ±0.1 in σ_y). With the truth's σ_y the fitted f_F equals the truth's within 3σ
    of its (T-only) error; with σ_y 0.1 off at an error of 0.1 the pull is about 1."""
    region = _ToyRegion()
    pairs = _toy(region, 20_000, seed=31)
    f_true = fiducial_fraction(region, MASS, TRUE)
    at_truth = _fit(region, pairs, y_sigma=(TRUE[2], 0.0), y_sigma_source="toy truth")
    assert at_truth.y_sigma[0] == TRUE[2]  # copied, not computed
    # σ_y's row: zeros placed, and a zero error's shift (x − x)/2: 0 to the precision of σ_y²
    assert abs(at_truth.covariance[0, 0]) <= np.finfo(float).eps * TRUE[2] ** 2
    err0 = at_truth.fiducial_fraction_err[0]
    assert err0 > 0
    assert abs(at_truth.fiducial_fraction[0] - f_true) < 3 * err0 + 1e-9

    ex = _fit(region, pairs, y_sigma=(1.3, 0.1), y_sigma_source="toy")
    assert ex.y_sigma[0] == 1.3  # copied
    assert ex.y_sigma_err == pytest.approx(0.1, rel=1e-12)
    f_up = fiducial_fraction(region, MASS, (ex.temperature[0], TRUE[1], 1.4))
    f_dn = fiducial_fraction(region, MASS, (ex.temperature[0], TRUE[1], 1.2))
    expect = np.hypot(0.5 * (f_up - f_dn), err0)
    assert ex.fiducial_fraction_err[0] == pytest.approx(expect, rel=0.02)
    pull = (ex.fiducial_fraction[0] - f_true) / ex.fiducial_fraction_err[0]
    assert 0.5 < abs(pull) < 1.5
    d = ex.as_dict()
    assert d["y_sigma_source"] == "external (fixed): toy"
    back = Extrapolation.from_dict(json.loads(json.dumps(d)))
    rec = back.y_sigma_external
    assert {k: rec[k] for k in ("value", "error", "source")} == {"value": 1.3, "error": 0.1,
                                                                 "source": "toy"}  # fmt: skip
    assert rec["parameter_shift"][0] == pytest.approx(0.1, rel=1e-12)  # σ_y's own entry
    # each fit's own shift survives the JSON text; its half-difference is δ
    assert rec["parameter_sides"][0][0] == pytest.approx(0.1, rel=1e-12)
    assert rec["parameter_sides"][1][0] == pytest.approx(-0.1, rel=1e-12)
    np.testing.assert_allclose(
        (np.asarray(rec["parameter_sides"][0]) - rec["parameter_sides"][1]) / 2,
        rec["parameter_shift"], rtol=1e-12, atol=1e-15,
    )  # fmt: skip
    # less δδᵀ, the covariance is the T's sandwich at the fixed σ_y (σ_y's row and column 0)
    sandwich = back.covariance - np.outer(rec["parameter_shift"], rec["parameter_shift"])
    np.testing.assert_allclose(sandwich[0], 0.0, atol=1e-15)
    assert sandwich[1, 1] > 0


@pytest.mark.parametrize(
    ("y_sigma", "source", "match"),
    [((1.2, -0.1), "x", "error >= 0"), ((0.0, 0.1), "x", "must lie in"),
     ((1.2, 0.1), "", "needs its source")],
)  # fmt: skip
def test_a_bad_external_sigma_y_is_a_clear_error(y_sigma, source, match):
    from gammastar.errors import InputError

    region = _ToyRegion()
    with pytest.raises(InputError, match=match):
        _fit(region, _toy(region, 2_000, seed=3), y_sigma=y_sigma, y_sigma_source=source)


def test_the_config_states_an_external_sigma_y_with_its_error_and_source():
    from gammastar.config.yields import YieldsConfig
    from gammastar.errors import ConfigError

    ok = YieldsConfig.model_validate(
        {"extrapolation_y_sigma": {"value": 1.25, "error": 0.2, "source": "PYTHIA"}}
    )
    assert ok.extrapolation_y_sigma.error == 0.2
    assert YieldsConfig().extrapolation_y_sigma is None  # no silent default: fitted
    for bad in ({"value": 1.25, "error": -0.1, "source": "x"}, {"value": 1.25, "error": 0.1}):
        with pytest.raises((ConfigError, ValueError), match="extrapolation_y_sigma"):
            YieldsConfig.model_validate({"extrapolation_y_sigma": bad})


@pytest.fixture(scope="module")
def external_fit():
    """The toy's fit with σ_y fixed from outside (1.3 ± 0.3): one fit for the tests of the
    external part (each takes a deep copy, so that an edited record stays in its test)."""
    region = _ToyRegion()
    return _fit(region, _toy(region, 20_000, seed=21), y_sigma=(1.3, 0.3), y_sigma_source="t")


class _TailRegion:
    """The forward tail y > ``cut`` (outside the toy's F, which ends at y = 5.28): a detector
    that sees only there, and the same set as a region for :func:`fiducial_fraction`."""

    def __init__(self, cut):
        self.cut = cut

    def contains(self, m, qt, e):
        mt = np.sqrt(np.asarray(qt) ** 2 + np.asarray(m) ** 2)
        return np.arccosh(np.maximum(np.asarray(e) / mt, 1.0)) > self.cut


def test_log_propagation_follows_a_tail_that_moves_exponentially(external_fit):
    """A detector that sees only the model's forward tail (y > 5.6, beyond F) behind data that
    fix σ_y only from outside (1.3 ± 0.3): N/Y_F = P_θ(tail)/f_F(θ), which σ_y moves by factors,
    not percent. ``nsig_error_parts(log=True)``'s external part is the 1σ of ln N: half of
    |ln N(θ + δ) − ln N(θ − δ)|, δ the external shift, here computed exactly by quadrature
    (:func:`fiducial_fraction` of the tail and of F at θ ± δ). Tolerance 3%: the reweighting
    of the nominal draw's ~10⁴ tail samples to θ ± δ (self-normalised; its Monte Carlo error
    measured ≈ 1% at 2·10⁵ samples). The linear part (δN/N from the gradient, 0.96 here)
    feeds a log-normal hi = 1 + r whose width ln(1 + r) = 0.68 is a third below the ln N's
    1.04 (the reach then draws the tail's N too narrowly), and
    ``nsig_relative_error(propagation="log")`` returns e^w − 1 of the log parts. For a
    detector that sees everything (N/Y_F = 1/f_F, nearly linear) the two agree within 5%."""
    from gammastar.physics.sampling import ParametricSampler
    from gammastar.yields.extrapolation.nsig import NsigErrorSettings, nsig_relative_error
    from gammastar.yields.extrapolation.nsig.parts import nsig_error_parts
    from gammastar.yields.extrapolation.samplers import ExtrapolatedSampler

    region, tail = _ToyRegion(), _TailRegion(5.6)
    ex = copy.deepcopy(external_fit)  # a copy: this test edits its record
    del ex.y_sigma_external["parameter_sides"]  # a record without the sides: δ, linear
    kin = ExtrapolatedSampler(ParametricSampler(*TRUE), ex, region).sample(MASS, 200_000, seed=5)
    # the model's samples in the tail (the inner sampler's, here the truth, are not the model's)
    hit = tail.contains(MASS, kin["qT"], kin["E"]) & kin["extrapolated"]
    assert 5_000 < hit.sum() < 50_000
    ks = _all_seeing(kin, hit)
    log = nsig_error_parts(ex, region, MASS, kin, ks, [1.0], log=True)
    lin = nsig_error_parts(ex, region, MASS, kin, ks, [1.0])

    t, mu, s = (float(v) for v in ex.at(MASS)[1:])
    d = np.asarray(ex.y_sigma_external["parameter_shift"])
    dt, ds = d[ex.parameter_index("T")], d[ex.parameter_index("y_sigma")]

    def ln_n(sign):
        p = (t + sign * dt, mu, s + sign * ds)
        return np.log(fiducial_fraction(tail, MASS, p) / fiducial_fraction(region, MASS, p))

    want = 0.5 * abs(ln_n(+1) - ln_n(-1))
    assert want > 0.5  # the tail moves by a factor e^{±w}, w > 0.5
    assert log["external"][0] == pytest.approx(want, rel=0.03)
    assert np.log1p(lin["external"][0]) < 0.7 * want
    total = nsig_relative_error(ex, region, MASS, kin, ks, [1.0], settings=NsigErrorSettings(propagation="log"))
    w = np.sqrt(log["fit"] ** 2 + log["external"] ** 2 + log["yield_cross"])
    assert total == pytest.approx(np.expm1(w), rel=1e-12)
    # where N moves by percent the two propagations are the same to first order
    ks_all = _all_seeing(kin, np.ones(hit.size))
    log_a = nsig_error_parts(ex, region, MASS, kin, ks_all, [1.0], log=True)
    lin_a = nsig_error_parts(ex, region, MASS, kin, ks_all, [1.0])
    assert log_a["external"][0] == pytest.approx(lin_a["external"][0], rel=0.05)
    assert lin_a["external"][0] > 0.05  # (the fit's T hardly moves f_F on this toy: ~10⁻⁶)
    with pytest.raises(ValueError, match="propagation"):
        nsig_relative_error(ex, region, MASS, kin, ks, [1.0], settings=NsigErrorSettings(propagation="quadratic"))


def test_the_external_part_is_the_response_at_both_sides(external_fit):
    """With the two fits' own shifts (``parameter_sides``, [+error, −error] in σ_y) the
    external part is N's response itself: ln N(z) = a z + b z² through the fits at z = ±1, its
    sd over z ~ N(0, 1) √(a² + 2b²) (Var(a z + b z²) = a² + 2b² for a standard normal z).
    Checked against ln N = ln(P_tail/f_F) computed by quadrature at each side, for the
    tail-seeing detector of the test above (where the response is far from linear: b/a ≈ 0.2)
    and one that sees everything; 3% as there (the reweighting of the nominal draw's tail
    samples). The same with ``log=True``; the sides' σ_y entries are ±error exactly."""
    from gammastar.physics.sampling import ParametricSampler
    from gammastar.yields.extrapolation.nsig.parts import nsig_error_parts
    from gammastar.yields.extrapolation.samplers import ExtrapolatedSampler

    region, tail = _ToyRegion(), _TailRegion(5.6)
    ex = copy.deepcopy(external_fit)
    sides = [np.asarray(v) for v in ex.y_sigma_external["parameter_sides"]]
    i_t, i_s = ex.parameter_index("T"), ex.parameter_index("y_sigma")
    assert sides[0][i_s] == pytest.approx(0.3, rel=1e-12)
    assert sides[1][i_s] == pytest.approx(-0.3, rel=1e-12)
    # the half-difference is the linear record's δ
    np.testing.assert_allclose((sides[0] - sides[1]) / 2,
                               ex.y_sigma_external["parameter_shift"], rtol=1e-12)  # fmt: skip
    kin = ExtrapolatedSampler(ParametricSampler(*TRUE), ex, region).sample(MASS, 200_000, seed=5)
    t, mu, s = (float(v) for v in ex.at(MASS)[1:])

    def ln_n(d, seen):
        p = (t + d[i_t], mu, s + d[i_s])
        return np.log(fiducial_fraction(seen, MASS, p) / fiducial_fraction(region, MASS, p))

    zero = np.zeros_like(sides[0])
    for seen, hit in (
        (tail, tail.contains(MASS, kin["qT"], kin["E"]) & kin["extrapolated"]),
        (None, np.ones(kin["qT"].size)),
    ):
        ks = _all_seeing(kin, hit)
        if seen is None:  # everything: N/Y_F = 1/f_F
            up, dn = (-np.log(fiducial_fraction(region, MASS, (t + d[i_t], mu, s + d[i_s])))
                      + np.log(fiducial_fraction(region, MASS, (t, mu, s))) for d in sides)  # fmt: skip
        else:
            up, dn = (ln_n(d, seen) - ln_n(zero, seen) for d in sides)
        a, b = (up - dn) / 2, (up + dn) / 2
        want = np.sqrt(a**2 + 2 * b**2)
        for log in (False, True):
            got = nsig_error_parts(ex, region, MASS, kin, ks, [1.0], log=log)["external"][0]
            assert got == pytest.approx(want, rel=0.03)
        if seen is not None:
            assert abs(b) > 0.1 * abs(a)  # the curvature counts here


def test_the_external_response_follows_a_side_clipped_by_a_bound():
    """A side that σ_y's bound clipped sits at z ≠ ±1 (here +1 and −0.5, error 0.2): the
    parabola a z + b z² is taken through the sides where they are, so a response that is
    exactly quadratic (a = 0.04, b = −0.01) gives √(a² + 2b²) exactly; at a zero error, 0."""
    from types import SimpleNamespace

    from gammastar.yields.extrapolation.nsig.steps import external_response

    a, b = 0.04, -0.01
    ex = SimpleNamespace(y_sigma_external={"error": 0.2}, parameter_index=lambda name: 0)

    class Steps:  # ln N at a step: the quadratic in z = the step's σ_y entry / error
        def at(self, d):
            z = d[0] / 0.2
            return np.array([a * z + b * z * z])

    sides = [[0.2, 0.01], [-0.1, -0.02]]  # σ_y first (index 0), then a T
    got = external_response(ex, Steps(), sides, [0, 1])
    assert got[0] == pytest.approx(np.sqrt(a**2 + 2 * b**2), rel=1e-12)
    ex0 = SimpleNamespace(y_sigma_external={"error": 0.0}, parameter_index=lambda name: 0)
    zero = external_response(ex0, Steps(), [[0.0, 0.0], [0.0, 0.0]], [0, 1])[0]
    assert zero == pytest.approx(0.0, abs=1e-15)


class _EmptyRegion(_ToyRegion):
    """A region with no area at all: f_F by quadrature is 0 there."""

    def contains(self, m, qt, e):
        return np.zeros(np.broadcast(np.asarray(m), np.asarray(qt), np.asarray(e)).shape, bool)


def test_a_mass_where_f_has_no_area_keeps_the_linear_parts(external_fit):
    """Where F has no area at the mass on the quadrature grid (the NA62-like reach on the
    two-flavour demo's yields meets one, which must not divide by zero), N/Y_F cannot be
    re-evaluated: ``log=True`` and the external part's sides fall back to the linear parts,
    the same numbers as ``log=False`` on a record without the sides (to rounding)."""
    from gammastar.physics.sampling import ParametricSampler
    from gammastar.yields.extrapolation.nsig.parts import nsig_error_parts
    from gammastar.yields.extrapolation.samplers import ExtrapolatedSampler

    region = _ToyRegion()
    ex = copy.deepcopy(external_fit)
    kin = ExtrapolatedSampler(ParametricSampler(*TRUE), ex, region).sample(MASS, 50_000, seed=5)
    ks = _all_seeing(kin, np.ones(kin["qT"].size))
    linear = copy.deepcopy(ex)
    del linear.y_sigma_external["parameter_sides"]
    want = nsig_error_parts(linear, _EmptyRegion(), MASS, kin, ks, [1.0])
    for log in (False, True):
        got = nsig_error_parts(ex, _EmptyRegion(), MASS, kin, ks, [1.0], log=log)
        for k in ("fit", "external", "forms"):
            np.testing.assert_allclose(got[k], want[k], rtol=1e-12, atol=1e-15)
    assert want["external"][0] > 0


class _NarrowRegion(_ToyRegion):
    """The toy's region at a higher ``min_acceptance`` (0.1): a region that moved."""

    def contains(self, m, qt, e):
        return self.acceptance(m, qt, e) >= 0.1


@pytest.mark.parametrize("y_sigma", [pytest.param((1.3, 0.1), marks=pytest.mark.slow), None])
def test_refit_fractions_is_the_fit_redone_in_another_region(small_reference, y_sigma):
    """:func:`refit_fractions` redoes ``ex``'s fit (its groups, fixed ȳ, external or fitted σ_y,
    the reference seeds) on other weights in another region: on the same pairs and region it
    returns ``ex``'s f_F, in a narrower region with the pairs below it dropped it returns what
    a new :func:`fit_extrapolation` there gives (both to the fits' tolerance, 1e-6 of f_F);
    with no group to refit (σ_y fixed) ``ex``'s f_F is returned unchanged."""
    from gammastar.yields.extrapolation.refits import refit, refit_fractions

    region, narrow = _ToyRegion(), _NarrowRegion()
    m, pt, y, w = _toy(region, 20_000, seed=41)
    kw = {} if y_sigma is None else {"y_sigma": y_sigma, "y_sigma_source": "toy"}
    ex = _fit(region, (m, pt, y, w), **kw)
    same = refit_fractions(ex, m, pt, y, w, region, seed=7)
    np.testing.assert_allclose(same, ex.fiducial_fraction, rtol=1e-6)
    rec = refit(ex, m, pt, y, w, region, seed=7)  # the whole record: the same fit's T and σ_y
    np.testing.assert_allclose(rec["fiducial_fraction"], same, rtol=1e-12)
    np.testing.assert_allclose(rec["temperature"], ex.temperature, rtol=1e-6)
    assert rec["y_sigma"] == pytest.approx(float(ex.y_sigma[0]), rel=1e-6)
    a = region.acceptance(MASS, pt, np.sqrt(pt**2 + MASS**2) * np.cosh(y))
    w2 = np.where(a >= 0.1, w, 0.0)
    new = _fit(narrow, (m, pt, y, w2), **kw)
    got = refit_fractions(ex, m, pt, y, w2, narrow, seed=7)
    assert got[0] < 0.95 * ex.fiducial_fraction[0]  # the region is smaller (0.77 vs 0.84)
    np.testing.assert_allclose(got, new.fiducial_fraction, rtol=1e-6)
    if y_sigma is not None:
        kept = refit_fractions(ex, m, pt, y, w2, narrow, groups=[], seed=7)
        # nothing refitted: ex's f_F copied, not computed (exact)
        np.testing.assert_array_equal(kept, ex.fiducial_fraction)


# fitted: the groups' independent fits (side by side on threads); 0.0: one joint fit
@pytest.mark.parametrize("pt_power", ["fitted", pytest.param(0.0, marks=pytest.mark.slow)])
def test_refit_moves_are_the_refits_one_by_one(small_reference, pt_power):
    """:func:`refit_moves` refits several moves at once: each record is :func:`refit`'s of that
    move alone, number for number (the same fits: with ȳ and σ_y fixed and the powers fitted,
    each group's reference sample made at every move's mass from one draw,
    :func:`reference_draws`, which :meth:`ParametricSampler.draws` makes the same sample; with
    a fixed power, the joint fit of every group per move). Two fit groups (pairs at 0.4 and 0.5
    GeV) and three moves: the harder pairs of one group weighted up, the region narrowed,
    nothing refitted."""
    from gammastar.yields.extrapolation.refits import refit, refit_moves

    region, narrow = _ToyRegion(), _NarrowRegion()
    parts = [_toy(region, 20_000, seed=s) for s in (51, 52)]
    m, pt, y, w = (np.concatenate(v) for v in zip(*parts, strict=True))
    m[: parts[0][0].size] = 0.4  # the first realisation's pairs in the lower group
    ex = fit_extrapolation(m, pt, y, w, [0.35, 0.45, 0.55], region,
                           settings=FitSettings(y_mean=TRUE[1], seed=7, y_sigma=(1.3, 0.1),
                                                y_sigma_source="toy", pt_power=pt_power,
                                                model_variations=False))  # fmt: skip
    assert list(ex.bin_group) == [0, 1]
    w_moved = np.where((m < 0.45) & (pt > 0.4), 1.5 * w, w)  # the harder pairs of group 0
    moves = [(w_moved, region, [0]), (w, narrow, [0, 1]), (w, region, [])]
    got = refit_moves(ex, m, pt, y, moves, seed=7)
    for rec, (wk, reg, groups) in zip(got, moves, strict=True):
        assert rec == refit(ex, m, pt, y, wk, reg, groups=groups, seed=7)
    assert got[0]["temperature"][1] == ex.temperature[1]  # group 1 not refitted
    assert got[0]["temperature"][0] != ex.temperature[0]
    assert got[2]["fiducial_fraction"] == list(ex.fiducial_fraction)


class _Table:
    """A per-pair acceptance table's kinematic lookup (``of_kinematics``): the toy's A(y)
    divided by ``scale`` (a λ move that reweights every pair by the same factor)."""

    def __init__(self, scale=1.0):
        self.scale = scale

    def of_kinematics(self, m, qt, e):
        return _ToyRegion().acceptance(m, qt, e) / self.scale


class _MovedRegion:
    """A fiducial region as a λ move gives it (``contains``, ``acceptance``): A(y) ≥ ``a_min``
    with the table ``acceptance``."""

    def __init__(self, a_min=A_MIN, scale=1.0):
        self.a_min, self.acceptance = a_min, _Table(scale)

    def contains(self, m, qt, e):
        return _ToyRegion().acceptance(m, qt, e) >= self.a_min


class _InRegion:
    """The fitted model's samples inside the region only (as a flow trained on F's pairs
    samples), by accept–reject."""

    def __init__(self, params, region):
        from gammastar.physics.sampling import ParametricSampler

        self.inner, self.region = ParametricSampler(*params), region

    def sample(self, mass, n, seed=None):
        rng = np.random.default_rng(seed)
        qt, e = [], []
        while sum(x.size for x in qt) < n:
            d = self.inner.sample(mass, 2 * n, seed=int(rng.integers(2**31)))
            keep = self.region.contains(mass, d["qT"], d["E"])
            qt.append(d["qT"][keep])
            e.append(d["E"][keep])
        return {"qT": np.concatenate(qt)[:n], "E": np.concatenate(e)[:n]}


def _record(ex, region, t, s=None):
    """The fit record of :func:`gammastar.yields.extrapolation.refits.refit` with T = ``t`` (and σ_y = ``s``,
    default ``ex``'s) in ``region``."""
    mu, s = float(ex.y_mean[0]), float(ex.y_sigma[0]) if s is None else s
    f = fiducial_fraction(region, MASS, (t, mu, s))
    return {"fiducial_fraction": [f], "temperature": [t], "y_mean": mu, "y_sigma": s}


@pytest.mark.slow
def test_lambda_theta_at_n_level_follows_the_moved_world():
    """:func:`nsig_lambda_theta` (the measured λ_θ's moves carried to N_sig) on the toy, whose
    in-region samples are drawn from the fitted model itself inside F (it describes the
    data, as a flow trained on F's pairs would):

    - a move that reweights every pair by 1 + δ (the same region and fit) moves N by 1 + δ,
      exactly;
    - with a detector that sees everything, N = Y_F/f_F: a refit (σ_y × 1.1) that moves f_F
      moves N by f/f′ (tolerance 0.5%: the in-region share of the 200 000 samples is binomial about
      f_F, ±0.1%);
    - a region that moves alone (the pairs' weights unchanged, the fit's f′/f the data's share
      of F in F′) leaves N unchanged, to 0.5% (the binomial shares of the samples in F and in
      F∖F′, 0.1% each), while the fiducial yield moves by −7%: what the yield-level nuisance
      quoted.
    The part is (|up| + |down|)/2 of the moves' N′/N − 1 (logarithms by default)."""
    from gammastar.yields.extrapolation.nsig import nsig_lambda_theta
    from gammastar.yields.extrapolation.samplers import ExtrapolatedSampler

    region = _ToyRegion()
    ex = _fit(region, _toy(region, 20_000, seed=21))
    fitted = tuple(float(v) for v in ex.at(MASS)[1:])  # the data drawn from the fitted model
    data = _InRegion(fitted, region)
    kin = ExtrapolatedSampler(data, ex, region).sample(MASS, 200_000, seed=4)
    y = np.arccosh(kin["E"] / np.sqrt(kin["qT"] ** 2 + MASS**2))
    part_seen = _all_seeing(kin, y > 3.0)  # a detector across F's lower edge (y > 1.92)
    everything = _all_seeing(kin, np.ones(y.size))
    t0 = float(ex.temperature[0])
    nominal = _record(ex, region, t0)
    fid = _MovedRegion()
    fid_ex = type("F", (), {"acceptance": _Table(), "contains": _ToyRegion().contains})()

    def move(sign, ys, fit, moved):
        return {"sign": sign, "yield_shift": ys, "fit": fit, "region": moved}

    def part(moves, sample, log=True):
        return nsig_lambda_theta(ex, fid_ex, MASS, kin, sample, [1.0], moves, log=log)[0]

    d_up, d_dn = 0.03, -0.05
    uniform = [move(1, d_up, nominal, _MovedRegion(scale=1 + d_up)),
               move(-1, d_dn, nominal, _MovedRegion(scale=1 + d_dn))]  # fmt: skip
    assert part(uniform, part_seen, log=False) == pytest.approx(0.04, rel=1e-9)
    assert part(uniform, part_seen) == pytest.approx(
        0.5 * (np.log1p(d_up) - np.log1p(d_dn)), rel=1e-9
    )
    refit = _record(ex, region, t0, 1.1 * float(ex.y_sigma[0]))
    f0, f1 = ex.fiducial_fraction[0], refit["fiducial_fraction"][0]
    assert f1 / f0 - 1 < -0.03  # (a wider rapidity: less of it in F)
    one = [move(1, 0.0, refit, fid)]
    assert part(one, everything, log=False) == pytest.approx(0.5 * abs(f0 / f1 - 1), rel=0.02)
    narrow = _MovedRegion(a_min=0.1)
    big = data.sample(MASS, 1_000_000, seed=9)  # the data's share of F in F′ (±0.03%)
    share = float(np.mean(narrow.contains(MASS, big["qT"], big["E"])))
    assert share < 0.95  # the fiducial yield's change: what the yield-level size quoted
    same_fit = dict(nominal, fiducial_fraction=[f0 * share])  # the fit that matches the data
    alone = [move(1, share - 1, same_fit, narrow)]
    assert 2 * part(alone, part_seen, log=False) < 0.005
    assert 2 * part(alone, everything, log=False) < 0.005


def test_a_refit_record_reads_missing_values_as_the_nominals_and_refuses_other_bins():
    """A refit record read back from yields.json: a ȳ or σ_y written as null (a NaN of the
    fit) takes the nominal's value; fractions for another number of bins than the
    extrapolation's are a one-line error, not an index error deep inside."""
    from gammastar.errors import InputError
    from gammastar.yields.extrapolation.nsig.forms import record_params

    ex_mass = np.array([0.3, 0.5])
    rec = {"fiducial_fraction": [0.2, 0.4], "temperature": [0.2, 0.3], "y_mean": None,
           "y_sigma": float("nan")}  # fmt: skip
    got = record_params(rec, ex_mass, 0.4, (0.5, 0.25, 3.37, 1.2), 0.0)
    assert got == pytest.approx((0.3, 0.25, 3.37, 1.2, 0.0), rel=1e-12)
    with pytest.raises(InputError, match="3 / 2 fiducial_fraction / temperature bins, the "
                                         "extrapolation 2"):  # fmt: skip
        record_params(dict(rec, fiducial_fraction=[0.1, 0.2, 0.3]), ex_mass, 0.4,
                       (0.5, 0.25, 3.37, 1.2), 0.0)  # fmt: skip


def test_reference_density_is_the_folded_one_of_its_kept_sample():
    """The reference sample's (q_T, E) hold |y|: a backward draw comes back at −y. Its
    importance weights then use the folded density g(y) + g(−y), so that the reference model's
    own P_F is the share of the draws that are forward and inside F (a backward A′ never reaches
    a forward spectrometer), counted here from the signed draws. The difference is the Monte
    Carlo noise of the folded draws in F only: 4 binomial errors of their count."""
    from gammastar.physics.sampling import ParametricSampler
    from gammastar.yields.extrapolation.reference import (
        REFERENCE,
        REFERENCE_SAMPLES,
        ReferenceSample,
        reference_draws,
    )

    class _LowRapidity:  # F reaches down to |y| = 0, where the folded draws land
        def contains(self, m, qt, e):
            y = np.arccosh(np.maximum(e / np.sqrt(qt**2 + m**2), 1.0))
            return (y < 1.5) & (qt < 1.0)

    region, seed = _LowRapidity(), 5
    ref = ReferenceSample(region, MASS, seed)
    draws = reference_draws(seed)
    s = ParametricSampler(*REFERENCE).sample_at(draws, MASS)
    inside = region.contains(MASS, s["qT"], s["E"])
    forward = draws["y"] > 0
    expected = np.count_nonzero(inside & forward) / REFERENCE_SAMPLES
    n_back = np.count_nonzero(inside & ~forward)
    assert n_back > 100  # the check has folded draws to see
    got = ref.fraction(*REFERENCE)
    assert got == pytest.approx(expected, abs=4 * np.sqrt(n_back) / REFERENCE_SAMPLES)
    # without the fold, P_F would count the backward draws as forward ones
    assert abs(np.count_nonzero(inside) / REFERENCE_SAMPLES - expected) > 8 * np.sqrt(
        n_back
    ) / REFERENCE_SAMPLES


def _forward_toy(n_draw):
    """The toy's fit with its model forms, a nominal draw of ``n_draw`` and a detector that
    sees (whatever the lifetime) only rapidities beyond c = ȳ + 3σ_y, far outside F
    (|y − 3.6| < 1.68): the forward tail where the nominal draw has few samples."""
    from gammastar.physics.sampling import ParametricSampler
    from gammastar.yields.extrapolation.samplers import ExtrapolatedSampler

    region = _ToyRegion()
    exv = _fit(region, _toy(region, 5_000, seed=21), model_variations=True)
    _, _, mu, s = (float(v) for v in exv.at(MASS))
    cut = mu + 3.0 * s

    def seen(kin):
        y = np.arccosh(np.maximum(np.asarray(kin["E"]) / np.sqrt(np.asarray(kin["qT"]) ** 2 + MASS**2), 1.0))
        return _all_seeing(kin, y > cut)

    kin = ExtrapolatedSampler(ParametricSampler(*TRUE), exv, region).sample(MASS, n_draw, seed=4)
    return region, exv, kin, seen, cut


def test_nsig_form_drawn_directly_where_reweighting_has_no_effective_size():
    """A detector that sees only y > ȳ + 3σ_y: the nominal draw of 5·10³ has ~6 samples
    there, so reweighting them to the logistic rapidity (heavier tails) has a Kish effective
    size below KISH_MIN and is replaced by the form's own draw outside F. With the
    acceptance 1 beyond the cut, N/Y_F = 𝓔_in + P(y > c)/f, 𝓔_in the nominal draw's
    unextrapolated samples beyond the cut over n f (no form moves them), so ln(N_alt/N) =
    ln[(𝓔_in + P_L(y > c)/f_alt) / (𝓔_in + P_G(y > c)/f)], the tails by quadrature
    (scipy.integrate.quad) of the Gaussian and of the logistic sech²((y − ȳ)/w)/(2w),
    w = σ_y√12/π, at each fit's own ȳ, σ_y. Tolerance:
    3σ of the direct draws' Poisson counts beyond the cut, √(1/k_G + 1/k_L) (4·10⁵ samples
    each: k ≈ 3·10³, 2·10⁴; the reweighting of the ~10 nominal samples is off by ≈ 5σ of it),
    plus the inverse-CDF grid cells (< 0.1%)."""
    from scipy.integrate import quad

    from gammastar.yields.extrapolation.model import FORMS
    from gammastar.yields.extrapolation.nsig.draw import KISH_MIN
    from gammastar.yields.extrapolation.nsig.parts import nsig_error_parts

    region, exv, kin, seen, cut = _forward_toy(5_000)
    ks = seen(kin)
    calls = []

    def redraw(sampler, n, seed):
        calls.append(seed)
        return seen(sampler(MASS, 400_000, seed))

    parts = nsig_error_parts(exv, region, MASS, kin, ks, [1.0], log=True, redraw=redraw, seed=3)
    assert parts["kish_logistic_y"][0] < KISH_MIN
    assert calls  # drawn directly
    assert len(set(calls)) == 1  # every direct draw with the one seed
    f0, _, mu, s = (float(v) for v in exv.at(MASS))
    rec = exv.model_variations["logistic_y"]
    f_l = float(rec["fiducial_fraction"][0])
    mu_l = mu if rec.get("y_mean") is None else float(rec["y_mean"])
    s_l = s if rec.get("y_sigma") is None else float(rec["y_sigma"])
    gauss = lambda y: np.exp(FORMS["nominal"].log_y(np.array([y]), mu, s))[0]
    logi = lambda y: np.exp(FORMS["logistic_y"].log_y(np.array([y]), mu_l, s_l))[0]
    p_g = quad(gauss, cut, mu + 40 * s)[0]
    p_l = quad(logi, cut, mu_l + 60 * s_l)[0]
    inside = ~np.asarray(kin["extrapolated"], dtype=bool)
    e_in = float(np.sum(ks.acceptance_per_sample(np.array([1.0]))[inside, 0])) / (inside.size * f0)
    want = abs(np.log((e_in + p_l / f_l) / (e_in + p_g / f0)))
    k_g, k_l = 400_000 * p_g / (1 - f0), 400_000 * p_l / (1 - f_l)
    tol = 3.0 * np.sqrt(1 / k_g + 1 / k_l) + 1e-3 * want
    assert parts["form_logistic_y"][0] == pytest.approx(want, abs=tol)
    assert not parts["forms_unresolved"][0]  # a 0/1 flag
    # a detector that sees nothing beyond the cut of the direct draw either: not resolved,
    # flagged (NaN), not a number
    def blind(sampler, n, seed):
        return _all_seeing(sampler(MASS, 2_000, seed), np.zeros(2_000))

    lost = nsig_error_parts(exv, region, MASS, kin, ks, [1.0], log=True, redraw=blind, seed=3)
    assert np.isnan(lost["form_logistic_y"][0])
    assert np.isnan(lost["forms"][0])
    assert lost["forms_unresolved"][0] == pytest.approx(1.0, abs=1e-12)  # a 0/1 flag


def test_nsig_reweighting_kept_where_its_effective_size_is_large(small_reference):
    """Where every sample is seen the reweighting's Kish size is the draw's (~10⁴ ≫ KISH_MIN):
    the direct draw is never made and every part equals the reweighting's without ``redraw``
    (the same arithmetic: equal to float rounding)."""
    from gammastar.physics.sampling import ParametricSampler
    from gammastar.yields.extrapolation.nsig.draw import KISH_MIN
    from gammastar.yields.extrapolation.nsig.parts import nsig_error_parts
    from gammastar.yields.extrapolation.samplers import ExtrapolatedSampler

    region = _ToyRegion()
    exv = _fit(region, _toy(region, 5_000, seed=21), model_variations=True, beam_energy=400.0)
    kin = ExtrapolatedSampler(ParametricSampler(*TRUE), exv, region).sample(MASS, 20_000, seed=4)
    ks = _all_seeing(kin, np.ones(len(kin["qT"])))
    calls = []

    def redraw(sampler, n, seed):
        calls.append(seed)
        raise AssertionError("no direct draw where the reweighting is trusted")

    for log in (False, True):
        old = nsig_error_parts(exv, region, MASS, kin, ks, [1.0, 50.0], log=log)
        new = nsig_error_parts(exv, region, MASS, kin, ks, [1.0, 50.0], log=log, redraw=redraw, seed=3)
        assert np.all(new["kish_logistic_y"] > KISH_MIN)
        for k, v in old.items():
            np.testing.assert_allclose(new[k], v, rtol=1e-12, atol=0)
    assert not calls


def test_nsig_forms_where_the_model_covers_the_whole_phase_space():
    """Without a flow every sample is the model's, inside F too (a beam dump's reach):
    N/Y_F = 𝓔/f, so a form moves ln N by ln[(P_L(y > c)/f_alt) / (P_G(y > c)/f)] for a
    detector that sees only y > c = ȳ + 3σ_y, the tails by quadrature as in
    :func:`test_nsig_form_drawn_directly_where_reweighting_has_no_effective_size`, not by the
    split draw's (1 − f)/f 𝓔_out, which would put N_alt/N near f + (1 − f) P_L/P_G.
    Tolerance: 3σ of the weighted draws' counts beyond the cut (2·10⁵ nominal samples,
    k ≈ 270 there; the logistic reweighted or drawn directly) plus the grid (< 0.1%)."""
    from scipy.integrate import quad

    from gammastar.yields.extrapolation.model import FORMS
    from gammastar.yields.extrapolation.nsig.parts import nsig_error_parts
    from gammastar.yields.extrapolation.samplers import ExtrapolatedSampler

    region, exv, _, seen, cut = _forward_toy(10)
    kin = ExtrapolatedSampler(None, exv, region).sample(MASS, 200_000, seed=4)
    assert np.all(kin["extrapolated"])
    ks = seen(kin)

    def redraw(sampler, n, seed):
        return seen(sampler(MASS, n, seed))

    parts = nsig_error_parts(exv, region, MASS, kin, ks, [1.0], log=True, redraw=redraw, seed=3)
    f0, _, mu, s = (float(v) for v in exv.at(MASS))
    rec = exv.model_variations["logistic_y"]
    f_l, mu_l, s_l = (float(rec[k] if k != "fiducial_fraction" else rec[k][0])
                      for k in ("fiducial_fraction", "y_mean", "y_sigma"))  # fmt: skip
    gauss = lambda y: np.exp(FORMS["nominal"].log_y(np.array([y]), mu, s))[0]
    logi = lambda y: np.exp(FORMS["logistic_y"].log_y(np.array([y]), mu_l, s_l))[0]
    p_g = quad(gauss, cut, mu + 40 * s)[0]
    p_l = quad(logi, cut, mu_l + 60 * s_l)[0]
    want = abs(np.log((p_l / f_l) / (p_g / f0)))
    tol = 3.0 / np.sqrt(200_000 * p_g) + 1e-3 * want
    assert parts["form_logistic_y"][0] == pytest.approx(want, abs=tol)
