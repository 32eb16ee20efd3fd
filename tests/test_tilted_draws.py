"""Importance-weighted A′ draws tilted towards the tails a beam dump's short lifetimes see:
:meth:`ParametricSampler.sample_tilted`, :meth:`ExtrapolatedSampler.tilted`, the weights through
:class:`KinematicSample`, the N_sig error's reweighting and the signal events."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
from _tolerance import EPS64, reorder_tol

from gammastar.errors import GammastarError
from gammastar.physics.sampling import ParametricSampler, Tilt, log_mt_density
from gammastar.reach.acceptance import draw
from gammastar.source.geometry import Geometry
from gammastar.yields.extrapolation.nsig.draw import kish_size, per_sample_acceptance, reweight

N = 200_000


def test_mt_density_is_normalised_for_every_power_and_mass():
    """∫ dN/dp_T dp_T = 1 (the upper incomplete gamma's normalisation), by quadrature to
    1e-7 (scipy's adaptive quadrature on a smooth integrand)."""
    from scipy.integrate import quad

    for m, t, a in ((0.0005, 0.2, 0.0), (0.3, 0.2, 0.0), (1.0, 0.17, -0.8), (0.78, 0.6, 1.5)):
        f = lambda p, m=m, t=t, a=a: float(np.exp(log_mt_density(np.array([p]), m, t, a))[0])
        assert quad(f, 0.0, 60.0 * t, limit=200)[0] == pytest.approx(1.0, abs=1e-7)


@pytest.mark.parametrize("falloff", [None, (3.0, 400.0)])
def test_tilted_draws_estimate_the_plain_density(falloff):
    """The self-normalised weighted means of the tilted draws equal the plain draws' within
    4σ (σ from both samples' spreads, the weighted one with its Kish size): the same density,
    bound and fall-off included; every weight ≤ 3 (a third of the draws from the density)."""
    s = ParametricSampler(0.2, 3.37, 1.1, e_max=400.0, falloff=falloff)
    tw = s.sample_tilted(0.3, N, seed=1)
    plain = s.sample(0.3, N, seed=2)
    w = tw["weight"]
    assert w.max() <= 3.0 + 1e-12
    assert w.min() > 0
    n_eff = float(kish_size(np.array([w.sum()]), np.array([(w**2).sum()]))[0])
    for key in ("E", "qT"):
        mean = float(np.sum(w * tw[key]) / w.sum())
        err = np.hypot(plain[key].std() / np.sqrt(N), tw[key].std() / np.sqrt(n_eff))
        assert abs(mean - plain[key].mean()) < 4 * err
    assert np.all(tw["E"] <= 400.0)


def test_tilted_draws_resolve_the_tail_better():
    """P(E > 250 GeV) of the model: the tilted draws' estimate agrees with a 25× larger
    plain draw within 4σ and rests on many times more samples (Kish size of the tail's
    contributions), which is what the reach's ε_high edge needs."""
    s = ParametricSampler(0.2, 3.37, 1.1, e_max=400.0, falloff=(3.0, 400.0))
    tw = s.sample_tilted(0.3, 40_000, seed=3)
    big = s.sample(0.3, 1_000_000, seed=4)["E"] > 250.0
    w, tail = tw["weight"], tw["E"] > 250.0
    p_hat = float(np.sum(w * tail) / w.sum())
    err = np.hypot(np.sqrt(big.mean() / big.size), np.sqrt(np.sum((w * tail) ** 2)) / w.sum())
    assert abs(p_hat - big.mean()) < 4 * err
    plain_hits = int((s.sample(0.3, 40_000, seed=5)["E"] > 250.0).sum())
    # measured: 42 tail samples of the tilted draws against none of the plain ones; 10 leaves
    # room for other seeds
    assert int(tail.sum()) > 10 * max(plain_hits, 1)


def test_tilted_draws_carry_the_falloff_to_the_beam_energy():
    """P(E > 320 GeV) of a model with the fall-off (1 − E/400)^3 (≈ 1e-6): the tilted
    draws' estimate agrees with the density's quadrature within 4σ and rests on a Kish size
    of ≥ 50 (measured 190 of 40,000 draws), because the fall-off rides on the weights: an
    accept–reject by it would keep Σf ≈ 2 of those draws."""
    m, temp, mu, sig = 0.3, 0.2, 3.37, 1.1
    s = ParametricSampler(temp, mu, sig, e_max=400.0, falloff=(3.0, 400.0))
    tw = s.sample_tilted(m, 40_000, seed=3)
    w, tail = tw["weight"], tw["E"] > 320.0
    c = w * tail
    p_hat = float(c.sum() / w.sum())
    n_eff = float(c.sum() ** 2 / (c**2).sum())
    assert n_eff >= 50
    # the density p_T e^{−m_T/T} N(y; μ, σ) × (1 − E/400)^3 on E ≤ 400, by quadrature
    pt = np.linspace(1e-4, 6.0, 1500)[:, None]
    y = np.linspace(mu - 9 * sig, mu + 9 * sig, 6000)[None, :]
    e = np.sqrt(pt**2 + m * m) * np.cosh(y)
    dens = pt * np.exp(-np.sqrt(pt**2 + m * m) / temp - 0.5 * ((y - mu) / sig) ** 2)
    dens = dens * np.where(e < 400.0, (1.0 - np.minimum(e, 400.0) / 400.0) ** 3, 0.0)
    p_true = float(dens[e > 320.0].sum() / dens.sum())
    assert abs(p_hat - p_true) < 4 * p_hat / np.sqrt(n_eff)


class _Model:
    """A duck-typed fitted model for :class:`ExtrapolatedSampler`: f_F, T, ȳ, σ_y at any mass."""

    edges = np.array([0.1, 2.0])
    falloff: ClassVar[dict[str, float]] = {"n": 3.0, "beam_energy": 400.0}

    @staticmethod
    def at(mass):
        return np.array([0.3, 0.2, 3.37, 1.1])

    @staticmethod
    def power_at(mass):
        return 0.0


class _Region:
    """A fiducial region: E < 60 GeV (the model's samples lie above it)."""

    @staticmethod
    def contains(m, qt, e):
        return np.asarray(e) < 60.0


class _Inside:
    mass_range = (0.1, 2.0)

    @staticmethod
    def sample(mass, n, seed=None):
        rng = np.random.default_rng(seed)
        return {"qT": rng.exponential(0.3, n), "E": rng.uniform(10.0, 59.0, n)}


def test_extrapolated_sampler_weights_only_the_models_part():
    """The tilted sampler keeps the split of the plain one (the same seeds: the same flow
    samples and the same count outside F), the flow's samples weight 1, the model's a mean of
    exactly 1 (to a few ulp of the sum)."""
    from gammastar.yields.extrapolation.samplers import ExtrapolatedSampler

    plain = ExtrapolatedSampler(_Inside(), _Model(), _Region(), e_max=400.0)
    tilted = plain.tilted()
    assert plain.tilt is None
    assert tilted.tilt == Tilt()
    a, b = plain.sample(0.3, 50_000, seed=7), tilted.sample(0.3, 50_000, seed=7)
    np.testing.assert_array_equal(a["extrapolated"], b["extrapolated"])  # booleans
    out = b["extrapolated"]
    # the flow's samples: the same draws of the same sampler (a few ulp for other CPUs)
    np.testing.assert_allclose(a["E"][~out], b["E"][~out], rtol=4 * EPS64, atol=0)
    assert "weight" not in a
    np.testing.assert_allclose(b["weight"][~out], 1.0, rtol=4 * EPS64, atol=0)
    assert b["weight"][out].mean() == pytest.approx(1.0, abs=reorder_tol(int(out.sum()), 3.0, EPS64))
    assert np.all(b["E"][out] >= 60.0)


def test_kinematic_sample_acceptance_is_the_weighted_mean():
    """:meth:`KinematicSample.acceptance` with weights is the mean of weight × each sample's
    own acceptance (:func:`per_sample_acceptance`'s terms), to the precision of a sum of n
    terms; the weights do not enter the per-sample acceptances themselves."""
    geo = Geometry(l1=80.0, l2=160.0, theta_min=0.0, theta_max=0.05, efficiency=0.8)
    s = ParametricSampler(e_max=400.0)

    def sampler(mass, n, seed):
        return s.sample_tilted(mass, n, seed=seed)

    smp = draw(sampler, 0.3, 20_000, geo, seed=3)
    assert smp.weight is not None
    ctau = np.array([0.05, 1.0, 30.0])
    raw = smp.acceptance_per_sample(ctau)
    terms = per_sample_acceptance(smp, ctau)
    np.testing.assert_allclose(terms, raw * smp.weight[:, None], rtol=4 * EPS64, atol=0)
    tol = reorder_tol(smp.n, float(terms.max()), EPS64)
    np.testing.assert_allclose(smp.acceptance(ctau), terms.mean(axis=0), rtol=0, atol=tol)
    assert not np.any(smp.extrapolated_acceptance(ctau))  # no labels from a bare sampler


def test_tilted_acceptance_agrees_with_plain_and_resolves_short_lifetimes():
    """A forward detector at a short cτ (the ε_high edge): the tilted draw's acceptance
    agrees with a 10× larger plain draw within 4σ, and its Kish size there is many times the
    plain draw's of the same size."""
    geo = Geometry(l1=80.0, l2=160.0, theta_min=0.0, theta_max=0.01)
    s = ParametricSampler(0.2, 3.37, 1.1, e_max=400.0, falloff=(3.0, 400.0))
    ctau = np.array([0.03])  # survival e^{-80 m / (γβ cτ)}: only the fastest A′ reach it

    def tilted(mass, n, seed):
        return s.sample_tilted(mass, n, seed=seed)

    t = draw(tilted, 0.3, 20_000, geo, seed=1)
    p = draw(s, 0.3, 200_000, geo, seed=2)
    small = draw(s, 0.3, 20_000, geo, seed=3)
    at, ap = per_sample_acceptance(t, ctau)[:, 0], per_sample_acceptance(p, ctau)[:, 0]
    err = np.hypot(at.std() / np.sqrt(at.size), ap.std() / np.sqrt(ap.size))
    assert abs(at.mean() - ap.mean()) < 4 * err
    a0 = per_sample_acceptance(small, ctau)
    k_plain = float(kish_size(a0.sum(0), (a0**2).sum(0))[0])
    k_tilt = float(kish_size(np.array([at.sum()]), np.array([(at**2).sum()]))[0])
    # measured: 257 against 17 (15×); 5× leaves room for other seeds
    assert k_tilt > 5 * max(k_plain, 1.0)


def test_reweight_divides_by_the_importance_weights():
    """With importance weights v in the terms a = v a₀, the reweighted mean is
    Σ w v a₀ / Σ w v; v ≡ 1 gives the unweighted result exactly."""
    rng = np.random.default_rng(2)
    a0 = rng.random((500, 2))
    v = rng.uniform(0.2, 3.0, 500)
    log_w = rng.normal(0.0, 0.5, 500)
    w = np.exp(log_w - log_w.max())
    got, _ = reweight(log_w, a0 * v[:, None], v)
    want = (w * v) @ a0 / float(w @ v)
    np.testing.assert_allclose(got, want, rtol=reorder_tol(500, 3.0, EPS64), atol=0)
    np.testing.assert_allclose(reweight(log_w, a0, np.ones(500))[0], reweight(log_w, a0)[0],
                               rtol=reorder_tol(500, 1.0, EPS64), atol=0)  # Σw·1 against Σw


def test_signal_events_carry_the_importance_weights():
    """Signal events of a weighted sampler: each event's weight is the unweighted one × its
    draw's importance weight, scaled to a mean of 1 (the same seeds give the same events
    otherwise)."""
    from gammastar.source.eventgen import EventSettings, generate

    s = ParametricSampler(e_max=400.0)
    tw = s.sample_tilted(0.3, 2000, seed=9)

    def weighted(mass, n, seed):
        return tw

    def unweighted(mass, n, seed):
        return {"qT": tw["qT"], "E": tw["E"]}

    st = EventSettings(mass=0.3, eps=1e-5, geometry=Geometry(l1=10.0, l2=60.0, theta_max=0.1),
                       scale=1.0, channels=("mumu",), br={"mumu": 1.0})  # fmt: skip
    a, b = generate(weighted, st, 2000, seed=1), generate(unweighted, st, 2000, seed=1)
    w = tw["weight"] / tw["weight"].mean()  # scaled to a mean of 1 (aprime_kinematics)
    np.testing.assert_allclose(a["weight"], b["weight"] * w, rtol=4 * EPS64, atol=0)


def test_dark_chains_refuse_weighted_draws():
    """The ψ₂ chains cannot carry importance weights: refused with one line, not ignored."""
    from gammastar.source.dark_decays import dark_chains

    s = ParametricSampler(e_max=400.0)

    def weighted(mass, n, seed):
        return s.sample_tilted(mass, n, seed=seed)

    from gammastar.physics.darksector import I2DM

    model = I2DM(m_aprime=0.9, m1=0.2, delta=0.4, alpha_d=0.1, theta=0.3)
    with pytest.raises(GammastarError, match="importance-weighted"):
        dark_chains(weighted, model, 100, chains={"psi1 psi2": 1.0}, channels={"ee": 1.0},
                    seed=1)  # fmt: skip
