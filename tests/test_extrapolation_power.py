"""The extrapolation's p_T form with a fitted m_T power: 1/p_T dN/dp_T ∝
m_T^a e^{−m_T/T}, a fitted per group with T (``fit_extrapolation(pt_power="fitted")``,
``yields.extrapolation_pt_power``), checked against toys drawn from the family itself."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gammastar.errors import InputError
from gammastar.yields.extrapolation.fitting import FitSettings, fit_extrapolation
from gammastar.yields.extrapolation.model import fiducial_fraction
from gammastar.yields.extrapolation.result import Extrapolation
from gammastar.yields.extrapolation.samplers import ExtrapolatedSampler

# the toy: γ* at 0.3 GeV from the family at a = 1.2, T = 0.17 GeV (ȳ = 3.37 fixed, σ_y = 1.2
# fixed as the analysis fixes it from outside), seen through an acceptance that is blind below
# p_T = 0.3 GeV (as the NA60-like spectrometer is below ≈ 0.2 GeV at this mass) and varies
# with rapidity, A = 0.9 exp(−(y − 3.6)²/(2 · 0.7²)) for p_T > 0.3 GeV; F = {A ≥ 0.05}
MASS, T_TRUE, A_TRUE, Y_MEAN, Y_SIGMA = 0.3, 0.17, 1.2, 3.37, 1.2


class _PtRegion:
    """A fiducial region in the duck type of :class:`~gammastar.corrections.pair_acceptance.FiducialRegion`
    that cuts p_T, with its acceptance."""

    def acceptance(self, m, qt, e):
        mt = np.sqrt(qt**2 + m**2)
        y = np.arccosh(np.maximum(e / mt, 1.0))
        return np.where(qt > 0.3, 0.9 * np.exp(-0.5 * ((y - 3.6) / 0.7) ** 2), 0.0)

    def contains(self, m, qt, e):
        return self.acceptance(m, qt, e) >= 0.05

    def as_dict(self):
        return {"toy": "pT > 0.3 GeV and 0.9 exp(-(y - 3.6)^2 / (2 0.7^2)) >= 0.05"}


def _toy(region, n_sources, seed, power=A_TRUE):
    from gammastar.physics.sampling import ParametricSampler

    rng = np.random.default_rng(seed)
    out = ParametricSampler(T_TRUE, Y_MEAN, Y_SIGMA, power=power).sample(
        MASS, n_sources, seed=int(rng.integers(2**31))
    )
    a = region.acceptance(MASS, out["qT"], out["E"])
    keep = (a >= 0.05) & (rng.random(n_sources) < a)
    qt, e = out["qT"][keep], out["E"][keep]
    y = np.arccosh(e / np.sqrt(qt**2 + MASS**2))
    return np.full(qt.size, MASS), qt, y, 1.0 / a[keep]


def _fit(region, pairs, pt_power, **kw):
    kw.setdefault("model_variations", False)
    kw.setdefault("compare", False)
    settings = FitSettings(y_mean=Y_MEAN, seed=7, y_sigma=(Y_SIGMA, 0.0), y_sigma_source="toy",
                           pt_power=pt_power, **kw)  # fmt: skip
    return fit_extrapolation(*pairs, [0.28, 0.32], region, settings=settings)


def _f_true(region):
    return fiducial_fraction(region, MASS, (T_TRUE, Y_MEAN, Y_SIGMA, A_TRUE))


@pytest.mark.parametrize("a", [-1.2, 0.4, 2.5])
def test_power_form_is_a_normalised_density_with_its_derivatives(a):
    """m_T^a e^{−m_T/T} in p_T: normalised (quadrature to 1e-8), ∂ln p/∂T (analytic,
    ⟨m_T⟩ = N(a+1)/N(a)) and ∂ln p/∂a (ln m_T minus the central difference of ln N) equal the
    central differences of ln p itself (step 1e-6: truncation ~1e-12, rounding ~1e-10); near
    a = 0 and 1 the incomplete-gamma normalisation meets the closed forms (1e-6 away: their
    difference is O(1e-6) × ∂/∂a, bounded by 1e-5 here); a per-pair array of masses
    (interpolated normalisation) agrees with the exact one to 1e-7."""
    from scipy.integrate import quad

    from gammastar.yields.extrapolation.model import (
        NOMINAL,
        _log_norm_power,
        _log_pt,
        _log_pt_boltzmann,
        _log_pt_power,
    )

    m, t = 0.3, 0.17
    dens = lambda p: np.exp(_log_pt_power(m, np.array([p]), t, a))[0]
    assert quad(dens, 0, 30, limit=400)[0] == pytest.approx(1.0, abs=1e-8)
    pt = np.array([0.05, 0.4, 1.3])
    h = 1e-6
    d_t = (_log_pt_power(m, pt, t + h, a) - _log_pt_power(m, pt, t - h, a)) / (2 * h)
    np.testing.assert_allclose(NOMINAL.dlog_pt(m, pt, t, a), d_t, rtol=1e-6, atol=1e-8)
    d_a = (_log_pt_power(m, pt, t, a + h) - _log_pt_power(m, pt, t, a - h)) / (2 * h)
    np.testing.assert_allclose(NOMINAL.dlog_pt_da(m, pt, t, a), d_a, rtol=1e-5, atol=1e-7)
    for a0, closed in ((0.0, _log_pt), (1.0, _log_pt_boltzmann)):
        np.testing.assert_allclose(_log_pt_power(m, pt, t, a0 + 1e-6), closed(m, pt, t),
                                   atol=1e-5)  # fmt: skip
    masses = np.linspace(0.27, 0.33, 1000)
    exact = np.array([float(_log_norm_power(x, t, a)) for x in masses[::37]])
    np.testing.assert_allclose(_log_norm_power(masses, t, a)[::37], exact, atol=1e-7)


def test_fitted_power_recovers_the_truth_where_a_fixed_form_is_biased():
    """On pairs of the family at a = 1.2 seen through a detector blind below p_T = 0.3 GeV
    (≈ 3.2·10⁴ sources, ≈ 9·10³ pairs): the fitted power lies within 3σ (its sandwich error)
    of the truth, f_F within 3σ of the model's true f_F; the fixed m_T-exponential (a = 0)
    misses f_F by more than 3 of its own statistical errors (a closure that the fixed form
    cannot pass: its error has no term for the form). The records say which."""
    region = _PtRegion()
    pairs = _toy(region, 32_000, seed=11)
    fit = _fit(region, pairs, "fitted")
    g = fit.covariance.shape[0]  # σ_y, T_0, a_0
    assert g == 3
    assert fit.pt_power_fitted
    sigma_a = float(np.sqrt(fit.covariance[2, 2]))
    assert 0 < sigma_a < 1.0
    assert abs(fit.pt_power[0] - A_TRUE) < 3 * sigma_a
    f_true = _f_true(region)
    assert abs(fit.fiducial_fraction[0] - f_true) < 3 * fit.fiducial_fraction_err[0]
    fixed = _fit(region, pairs, 0.0)
    assert not fixed.pt_power_fitted
    assert fixed.pt_power[0] == 0.0  # the fixed value copied, not fitted
    assert abs(fixed.fiducial_fraction[0] - f_true) > 3 * fixed.fiducial_fraction_err[0]
    assert fit.as_dict()["pt_power_source"].startswith("fitted")
    assert fixed.as_dict()["pt_power_source"] == "fixed"


@pytest.mark.slow
def test_sandwich_error_of_the_power_matches_the_scatter_of_toy_fits(monkeypatch):
    """Over 24 toys (1.6·10⁴ sources each), the mean sandwich σ of a and of f_F equal the
    standard deviations of the fitted a and f_F within 3 standard errors of a standard
    deviation (≈ 15% each for 24 Gaussian toys: 1/√(2(n − 1))), and both are unbiased within
    3 standard errors of their means."""
    import gammastar.yields.extrapolation.reference as ex_mod

    monkeypatch.setattr(ex_mod, "REFERENCE_SAMPLES", 100_000)  # the same in every toy
    region = _PtRegion()
    n = 24
    a, sa, f, sf = (np.empty(n) for _ in range(4))
    for k in range(n):
        fit = _fit(region, _toy(region, 16_000, seed=100 + k), "fitted")
        a[k], sa[k] = fit.pt_power[0], np.sqrt(fit.covariance[2, 2])
        f[k], sf[k] = fit.fiducial_fraction[0], fit.fiducial_fraction_err[0]
    se = 1.0 / np.sqrt(2 * (n - 1))
    for val, err, truth in ((a, sa, A_TRUE), (f, sf, _f_true(region))):
        s = float(np.std(val, ddof=1))
        assert float(np.mean(err)) == pytest.approx(s, rel=3 * se)
        assert abs(val.mean() - truth) < 3 * s / np.sqrt(n)


def test_fitted_power_round_trip_and_the_samplers_form():
    """``yields.json`` keeps the powers, the flag and the covariance's names (T_g then a_g);
    a file written before the power reads as a = 0, fixed. The extrapolated samples are drawn
    from the fitted form: with the model everywhere, their mean p_T equals the family's
    (quadrature; Monte Carlo error ≈ 0.3% for 10⁵ samples, 1% allowed)."""
    from scipy.integrate import quad

    from gammastar.yields.extrapolation.model import _log_pt_power

    region = _PtRegion()
    fit = _fit(region, _toy(region, 16_000, seed=5), "fitted")
    d = json.loads(json.dumps(fit.as_dict()))
    names = d["parameter_covariance"]["parameters"]
    assert names == ["y_sigma", "T_0", "a_0"]
    back = Extrapolation.from_dict(d)
    for name, key in (("y_sigma", "y_sigma"), ("T", "T_0"), ("a", "a_0")):
        assert back.parameter_index(name, 0) == names.index(key)
    assert back.pt_power_fitted
    np.testing.assert_allclose(back.pt_power, fit.pt_power)
    old = {k: v for k, v in d.items() if k not in ("pt_power", "pt_power_source")}
    assert Extrapolation.from_dict(old).power_at(MASS) == 0.0  # np.zeros: no power recorded
    assert not Extrapolation.from_dict(old).pt_power_fitted
    kin = ExtrapolatedSampler(None, fit, region).sample(MASS, 100_000, seed=3)
    t, a = float(fit.temperature[0]), float(fit.pt_power[0])
    dens = lambda p: np.exp(_log_pt_power(MASS, np.array([p]), t, a))[0]
    mean = quad(lambda p: p * dens(p), 0, 30, limit=400)[0]
    assert float(np.mean(kin["qT"])) == pytest.approx(mean, rel=0.01)


def test_nsig_error_with_a_fitted_power_is_the_yields_when_the_detector_sees_everything():
    """As for the fixed form (tests/test_extrapolation.py): with an acceptance of 1
    everywhere N = Y_F/f_F, so the fit's relative error of N_sig — now with the power's row
    in the gradient — is δf_F/f_F (5%: the Monte Carlo mean of the scores); and it is larger
    than the fixed form's on the same pairs (a free parameter more, strongly correlated with
    T where F cuts p_T)."""
    from gammastar.physics.sampling import ParametricSampler
    from gammastar.reach.acceptance import KinematicSample
    from gammastar.yields.extrapolation.nsig import NsigErrorSettings, nsig_relative_error

    def _all_seeing(kin, hit):  # one cell from 0 to ∞: survival 1 at its start, 0 at its end
        n = len(kin["qT"])
        return KinematicSample(MASS, np.ones(n), np.asarray(hit, float)[:, None],
                               np.array([0.0, np.inf]), 1.0)  # fmt: skip

    region = _PtRegion()
    pairs = _toy(region, 32_000, seed=21)
    rels = []
    for power in ("fitted", 0.0):
        ex = _fit(region, pairs, power)
        inside = ParametricSampler(T_TRUE, Y_MEAN, Y_SIGMA, power=A_TRUE)
        kin = ExtrapolatedSampler(inside, ex, region).sample(MASS, 200_000, seed=4)
        ks = _all_seeing(kin, np.ones(len(kin["qT"])))
        rel = nsig_relative_error(ex, region, MASS, kin, ks, [1.0, 50.0],
                                  settings=NsigErrorSettings(yield_cross=False))  # fmt: skip
        want = ex.fiducial_fraction_err[0] / ex.fiducial_fraction[0]
        assert rel == pytest.approx(np.full(2, want), rel=0.05)
        rels.append(rel[0])
    assert rels[0] > 1.5 * rels[1]


@pytest.mark.parametrize(
    ("value", "match"),
    [("fit", "number or 'fitted'"), (-2.0, r"\(-2, 5\]"), (5.5, r"\(-2, 5\]")],
)
def test_a_bad_power_is_a_clear_error(value, match):
    """``pt_power`` outside the family (a ≤ −2 is not normalisable) or a wrong word: one line
    naming it, in the fit and in the configuration (``yields.extrapolation_pt_power``)."""
    from pydantic import ValidationError

    from gammastar.config.yields import YieldsConfig

    region = _PtRegion()
    with pytest.raises(InputError, match=match):
        _fit(region, _toy(region, 2_000, seed=1), value)
    with pytest.raises(ValidationError, match="extrapolation_pt_power"):
        YieldsConfig(extrapolation_pt_power=value)
    assert YieldsConfig(extrapolation_pt_power="fitted").extrapolation_pt_power == "fitted"


def test_nsig_error_between_two_fit_groups_takes_each_groups_share():
    """Two mass bins fitted as two groups (each its own (T, a), independent toys of ≈ 9·10³
    pairs): the model at a mass between their centres interpolates T and a with weights 1 − t
    and t (:meth:`Extrapolation.group_weights`), so with an acceptance of 1 everywhere
    (N = Y_F/f_F) the fit's relative error of N_sig is √((1 − t)² r₀² + t² r₁²), r_b the bins'
    δf_F/f_F (linear propagation: the bins' f_F gradients equal the mass's to ≈ 1%; 10%
    allowed for the Monte Carlo means of the scores), not the nearest group's r₀ (√2 too
    large at t = ½); at a bin centre it is that bin's r_b."""
    from gammastar.physics.sampling import ParametricSampler
    from gammastar.reach.acceptance import KinematicSample
    from gammastar.yields.extrapolation.nsig import NsigErrorSettings, nsig_relative_error

    region = _PtRegion()
    parts = [_toy(region, 32_000, seed=s) for s in (31, 32)]
    m = np.concatenate([np.full(p[0].size, c) for p, c in zip(parts, (0.29, 0.31), strict=True)])
    pairs = (m, *(np.concatenate([p[k] for p in parts]) for k in (1, 2, 3)))
    settings = FitSettings(y_mean=Y_MEAN, seed=7, y_sigma=(Y_SIGMA, 0.0), y_sigma_source="toy",
                           pt_power="fitted", model_variations=False, compare=False)  # fmt: skip
    ex = fit_extrapolation(*pairs, [0.28, 0.30, 0.32], region, settings=settings)
    assert ex.bin_group.tolist() == [0, 1]
    r = ex.fiducial_fraction_err / ex.fiducial_fraction
    inside = ParametricSampler(T_TRUE, Y_MEAN, Y_SIGMA, power=A_TRUE)
    got = {}
    for mass, want in ((0.29, r[0]), (0.30, np.hypot(0.5 * r[0], 0.5 * r[1])), (0.31, r[1])):
        kin = ExtrapolatedSampler(inside, ex, region).sample(mass, 200_000, seed=4)
        n = len(kin["qT"])
        ks = KinematicSample(mass, np.ones(n), np.ones((n, 1)), np.array([0.0, np.inf]), 1.0)
        st = NsigErrorSettings(yield_cross=False)
        got[mass] = float(nsig_relative_error(ex, region, mass, kin, ks, [1.0], settings=st)[0])
        assert got[mass] == pytest.approx(want, rel=0.10), mass
    assert ex.group_weights(0.30) == pytest.approx({0: 0.5, 1: 0.5})
    assert got[0.30] < 0.8 * min(r)  # the nearest group's whole error would be ≈ r₀ or r₁


class _RampRegion(_PtRegion):
    """A detector whose acceptance rises from 0 at p_T = 0.2 GeV (A = 0.9 (1 − e^{−(p_T −
    0.2)/0.15}) × the rapidity window of :class:`_PtRegion`): the weights 1/A are largest at
    F's low-p_T edge, where the fit decides T, as the NA60-like spectrometer's are."""

    def acceptance(self, m, qt, e):
        mt = np.sqrt(qt**2 + m**2)
        y = np.arccosh(np.maximum(e / mt, 1.0))
        ramp = 0.9 * (1.0 - np.exp(-np.clip(qt - 0.2, 0.0, None) / 0.15))
        return ramp * np.exp(-0.5 * ((y - 3.6) / 0.7) ** 2)


@pytest.mark.slow
def test_the_fit_and_the_fiducial_yield_covary_as_the_sandwich_says(monkeypatch):
    """The fit and the fiducial yield S = Σw use the same pairs. Over 40 toys (1.6·10⁴ sources
    each, the m_T-exponential fitted with T free, σ_y external) the sample covariance of
    (ln S, ln f_F) equals the mean predicted one, ∇ln f_F · Cov(θ, ln S)
    (:attr:`Extrapolation.yield_covariance`, first order in the sandwich's H and scores),
    within 3 standard errors of a sample covariance of 40 (√((σ_S² σ_f² + c²)/(n − 1)),
    bivariate normal), and the correlation is large enough here for the test to fail on a
    wrong sign (|ρ| > 0.15; 0.23 predicted, 0.42 observed, 1.1 standard errors apart). With
    an all-seeing detector N/Y_F = 1/f_F, so ``yield_cross`` of
    :func:`nsig_error_parts` is −2 Cov(ln S, ln f_F) of the prediction (5%: the Monte Carlo
    mean of the reweighted scores) and :func:`nsig_relative_error` adds it."""
    import gammastar.yields.extrapolation.reference as ex_mod
    from gammastar.physics.sampling import ParametricSampler
    from gammastar.reach.acceptance import KinematicSample
    from gammastar.yields.extrapolation.nsig import nsig_relative_error
    from gammastar.yields.extrapolation.nsig.parts import nsig_error_parts

    monkeypatch.setattr(ex_mod, "REFERENCE_SAMPLES", 100_000)  # the same in every toy
    region = _RampRegion()
    n = 40
    ln_s, ln_f, pred = (np.empty(n) for _ in range(3))
    for k in range(n):
        pairs = _toy(region, 16_000, seed=300 + k, power=0.0)
        fit = _fit(region, pairs, 0.0)
        par = (float(fit.temperature[0]), Y_MEAN, Y_SIGMA, 0.0)
        h = 1e-4
        up = fiducial_fraction(region, MASS, (par[0] + h, *par[1:]))
        dn = fiducial_fraction(region, MASS, (par[0] - h, *par[1:]))
        grad_t = (up - dn) / (2 * h) / fit.fiducial_fraction[0]  # ∂ln f/∂T
        pred[k] = grad_t * fit.yield_covariance[0, fit.parameter_index("T")]
        ln_s[k], ln_f[k] = np.log(pairs[3].sum()), np.log(fit.fiducial_fraction[0])
    c = np.cov(ln_s, ln_f)
    se = np.sqrt((c[0, 0] * c[1, 1] + c[0, 1] ** 2) / (n - 1))
    assert c[0, 1] == pytest.approx(pred.mean(), abs=3 * se)
    assert abs(pred.mean()) / np.sqrt(c[0, 0] * c[1, 1]) > 0.15
    # carried to N_sig: N/Y_F = 1/f with everything seen
    kin = ExtrapolatedSampler(ParametricSampler(T_TRUE, Y_MEAN, Y_SIGMA), fit, region).sample(
        MASS, 200_000, seed=4
    )
    nk = len(kin["qT"])
    ks = KinematicSample(MASS, np.ones(nk), np.ones((nk, 1)), np.array([0.0, np.inf]), 1.0)
    parts = nsig_error_parts(fit, region, MASS, kin, ks, [1.0])
    assert parts["yield_cross"][0] == pytest.approx(-2 * pred[-1], rel=0.05)
    total = nsig_relative_error(fit, region, MASS, kin, ks, [1.0])[0]
    assert total**2 == pytest.approx(parts["fit"][0] ** 2 + parts["yield_cross"][0], rel=1e-9)


def test_the_normalisation_at_many_masses_is_numpys_interpolation():
    """K(a) of a group's pairs (more masses than nodes): interpolated between the nodes with
    each mass's cell found once and kept, the same numbers as ``np.interp`` per power (its
    formula; allowed 2 ulp, the rounding of one product and one sum should a library contract
    them), at the first call, at a repeat from the kept cells and after the masses changed in
    place (new cells)."""
    import math

    from scipy.special import gammaincc, gammaln

    from gammastar.yields.extrapolation.model import _log_norm_powers

    rng = np.random.default_rng(4)
    m = rng.uniform(0.45, 0.6, 3000)
    m[7] = m.max()  # a mass on the last node: np.interp's own case
    t, a = 0.18, 0.7
    powers = [a, a + 1.0, a + 2.0, a + 0.01, a - 0.01]

    def expected():
        nodes = np.linspace(m.min(), m.max(), 257)
        s = np.asarray(powers)[:, None] + 2.0
        at = s * math.log(t) + nodes / t + np.log(gammaincc(s, nodes / t)) + gammaln(s)
        return [np.interp(m, nodes, v) for v in at]

    eps = np.finfo(float).eps
    for _ in range(2):  # the second from the kept cells
        for got, want in zip(_log_norm_powers(m, t, powers), expected(), strict=True):
            np.testing.assert_allclose(got, want, rtol=2 * eps, atol=0.0)
    m[:] = rng.uniform(0.7, 0.8, m.size)  # the same array, other masses
    for got, want in zip(_log_norm_powers(m, t, powers), expected(), strict=True):
        np.testing.assert_allclose(got, want, rtol=2 * eps, atol=0.0)
