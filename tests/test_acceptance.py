"""Long-lived-particle acceptance (gammastar.reach.acceptance and its grids, paper Eq. B1)."""

from __future__ import annotations

import numpy as np
import pytest

from gammastar.config import config_from_dict
from gammastar.errors import ConfigError, GammastarError, InputError
from gammastar.physics import darkphoton
from gammastar.physics.sampling import ParametricSampler
from gammastar.reach.acceptance import draw
from gammastar.reach.acceptance.grid import (
    ComparisonGrid,
    acceptance,
    acceptance_eps_grid,
    acceptance_grid,
    plot_acceptance_comparison,
)
from gammastar.source.geometry import Geometry


class Mono:
    """Every A′ with the same (qT, E)."""

    def __init__(self, qt: float, e: float, mass_range=(0.0, 5.0)) -> None:
        self.qt, self.e, self.mass_range = qt, e, mass_range

    def sample(self, mass, n, seed=None):
        return {"qT": np.full(n, self.qt), "E": np.full(n, self.e)}


@pytest.mark.parametrize("l2", [None, 30.0])
def test_monochromatic_on_axis_is_exact(l2):
    # A′ along the beam: P(decay in [L1, L2]) = e^{-L1/ℓ} − e^{-L2/ℓ}, ℓ = (p/m) cτ
    m, e, l1 = 0.4, 50.0, 10.0
    geo = Geometry(l1=l1, l2=l2, theta_min=0.0, theta_max=0.1, efficiency=0.8)
    ctau = np.geomspace(1e-3, 1e4, 50)
    got = acceptance(Mono(0.0, e), m, ctau, geo, n=10)
    ell = np.sqrt(e**2 - m**2) / m * ctau
    expected = np.exp(-l1 / ell) - (0.0 if l2 is None else np.exp(-l2 / ell))
    # exact up to float rounding of the difference of two exponentials
    np.testing.assert_allclose(got, 0.8 * expected, rtol=1e-12, atol=1e-15)


def test_monochromatic_on_axis_with_a_downstream_plane_is_exact():
    # on axis every A′ line hits the plane at r = 0: the z cells telescope back to the formula
    m, e = 0.3, 80.0
    geo = Geometry(l1=80.0, l2=160.0, theta_min=0.0, theta_max=0.1, plane_z=200.0, r_max=1.0)
    ctau = np.geomspace(0.1, 1e4, 30)
    ell = np.sqrt(e**2 - m**2) / m * ctau
    np.testing.assert_allclose(
        acceptance(Mono(0.0, e), m, ctau, geo, n=5),
        np.exp(-80 / ell) - np.exp(-160 / ell),
        rtol=1e-9,  # the cell sum telescopes up to float rounding
    )


def test_off_axis_uses_the_z_decay_length_and_the_angular_window():
    m, e, qt = 0.5, 20.0, 1.0  # θ ≈ 0.05 rad: inside 35–120 mrad
    p = np.sqrt(e**2 - m**2)
    cos_t = np.sqrt(p**2 - qt**2) / p
    ctau = np.array([0.1, 1.0, 10.0])
    got = acceptance(Mono(qt, e), m, ctau, Geometry(l1=5.0), n=4)
    np.testing.assert_allclose(got, np.exp(-5.0 / (p / m * ctau * cos_t)), rtol=1e-12)
    # outside the window: nothing
    assert np.all(acceptance(Mono(0.2, e), m, ctau, Geometry(l1=5.0), n=4) == 0)


def test_both_daughters_against_an_independent_integral():
    # A′ (m = 0.2, E = 10) along z decaying to e+e-: fraction of decays with both leptons
    # below θ_max, from the two-body kinematics integrated over cos θ* (uniform)
    m, e, thmax = 0.2, 10.0, 0.03
    p = np.sqrt(e**2 - m**2)
    gamma, gb = e / m, p / m
    c = np.linspace(-1, 1, 200_001)
    ps = m / 2  # m_e negligible at this precision

    def theta(cs):
        pt = ps * np.sqrt(1 - cs**2)
        pz = gamma * ps * cs + gb * m / 2
        return np.arctan2(pt, pz)

    both = (theta(c) < thmax) & (theta(-c) < thmax)
    expected = both.mean()
    geo = Geometry(l1=0.0, theta_min=0.0, theta_max=thmax, both_daughters=True)
    got = acceptance(Mono(0.0, e), m, [1e-9], geo, n=200_000, seed=3, channel="ee")[0]
    assert got == pytest.approx(expected, abs=4 * np.sqrt(expected * (1 - expected) / 2e5))
    assert 0.05 < expected < 0.95  # a non-trivial check
    # with a full window and no energy cut it is the A′ decay probability again
    geo_all = Geometry(l1=0.0, theta_min=0.0, theta_max=np.pi, both_daughters=True)
    assert acceptance(Mono(0.0, e), m, [1e-9], geo_all, n=100, seed=1)[0] == pytest.approx(1.0)


@pytest.mark.parametrize(("mass", "temperature"), [(0.0, 0.2), (0.9, 0.2), (2.5, 0.17)])
def test_parametric_sampler_mt_moments(mass, temperature):
    r"""Sampled m_T moments against the analytic ones of 1/p_T dN/dp_T ∝ e^{−m_T/T}.

    p_T dp_T = m_T dm_T, so dN/dm_T ∝ m_T e^{−m_T/T} on m_T ≥ m. With u = m_T − m,
    f(u) ∝ (u + m) e^{−u/T}, and ∫_0^∞ u^k e^{−u/T} du = k! T^{k+1} gives
    Z = ∫ f = T² + mT = T(T + m),
    ∫ u f = 2T³ + mT² → ⟨u⟩ = T(2T + m)/(T + m),
    ∫ u² f = 6T⁴ + 2mT³ → ⟨u²⟩ = 2T²(3T + m)/(T + m),
    and p_T² = m_T² − m² = u² + 2mu → ⟨p_T²⟩ = ⟨u²⟩ + 2m⟨u⟩ = 2T(3T² + 3mT + m²)/(T + m).
    At m = 0, ⟨u⟩ = 2T (Γ(2, T)); for m ≫ T, ⟨u⟩ → T (Exp(T)). Γ(2, T) for every mass (a
    sampler that ignores m) gives ⟨u⟩ = 0.400 instead of 0.236 at m = 0.9, T = 0.2: about
    450 standard errors off with this sample, so the test tells the two apart.
    Tolerance: 5 standard errors of the sample mean (analytic variance of u; sample variance
    of p_T²).
    """
    n = 400_000
    t, m = temperature, mass
    s = ParametricSampler(temperature=t).sample(m, n, seed=20261122)
    pt = s["qT"]
    u = np.sqrt(pt**2 + m**2) - m
    mean_u = t * (2 * t + m) / (t + m)
    var_u = 2 * t**2 * (3 * t + m) / (t + m) - mean_u**2
    assert u.mean() == pytest.approx(mean_u, abs=5 * np.sqrt(var_u / n))
    mean_pt2 = 2 * t * (3 * t**2 + 3 * m * t + m**2) / (t + m)
    assert np.mean(pt**2) == pytest.approx(mean_pt2, abs=5 * np.std(pt**2) / np.sqrt(n))
    # E = m_T cosh y ≥ m_T ≥ m
    assert np.all(s["E"] >= np.sqrt(pt**2 + m**2) * (1 - 1e-12))


def test_grids_vectorised_and_consistent():
    s = ParametricSampler()
    geo = Geometry()
    masses = np.array([0.3, 0.6])
    eps = np.geomspace(1e-7, 1e-4, 7)
    a_eps = acceptance_eps_grid(s, masses, eps, geo, n=3000, seed=5)
    for i, m in enumerate(masses):
        seed_i = int(np.random.SeedSequence(5).spawn(2)[i].generate_state(1)[0])
        direct = draw(s, m, 3000, geo, seed=seed_i).acceptance(darkphoton.ctau(m, eps))
        np.testing.assert_allclose(a_eps[i], direct, rtol=1e-12)
    a_ct = acceptance_grid(s, masses, [1e-2, 1.0, 1e2], geo, n=3000, seed=5)
    assert a_ct.shape == (2, 3)
    assert np.all(np.diff(a_ct, axis=1) > 0)
    # same seed, same numbers
    np.testing.assert_array_equal(
        a_ct, acceptance_grid(s, masses, [1e-2, 1.0, 1e2], geo, n=3000, seed=5)
    )


def test_callable_sampler_and_torch_like_outputs():
    def fn(mass, n, seed):
        return ParametricSampler().sample(mass, n, seed)

    a = acceptance(fn, 0.5, [1.0], Geometry(), n=2000, seed=1)
    b = acceptance(ParametricSampler(), 0.5, [1.0], Geometry(), n=2000, seed=1)
    np.testing.assert_allclose(a, b)


class Boosted:
    """``base``'s A′ with every momentum multiplied by ``k`` at the same direction (q_T → k q_T,
    p → k p, E = √(k²p² + m²)): the same angles, decay lengths (p/m) cτ longer by k."""

    def __init__(self, base, k: float) -> None:
        self.base, self.k, self.mass_range = base, k, base.mass_range

    def sample(self, mass, n, seed=None):
        s = self.base.sample(mass, n, seed=seed)
        p2 = s["E"] ** 2 - mass**2
        return {"qT": self.k * s["qT"], "E": np.sqrt(self.k**2 * p2 + mass**2)}


@pytest.mark.slow
def test_fig9_fig10_analogues(tmp_path):
    """Fig. 9/10 analogues (paper App. B) for two kinematic models that differ by a factor
    k = 1.5 in momentum at the same angles (a much larger change than the paper's with/without
    background flows). Eq. B1 then says: (1) the acceptance depends on cτ only through the decay
    length (p/m) cτ, so A_b(cτ) = A_a(k cτ) (the same samples with the same seed: equal to
    float rounding); (2) long-lived (cτ ≫ L1 p/m; here ⟨p/m⟩ ≈ 15–40) both tend to the angular
    acceptance, the fraction of A′ in 35–120 mrad, insensitive to E (paper: < 10%);
    (3) short-lived (cτ ≪ L1 m/p) the boosted model's acceptance is far larger, A_b/A_a ≈
    exp(L1 m/(p cτ) (1 − 1/k)) ≫ 1. A code that used E or m wrongly in the decay length, ignored
    the boost or mixed the samplers fails (1) or (3)."""
    import matplotlib.pyplot as plt

    k = 1.5
    a = ParametricSampler(temperature=0.20, y_sigma=1.2)
    b = Boosted(a, k)
    ctaus = 1e-2 * k ** np.arange(30)  # 0.01 m … 1.3 km in steps of k: column j + 1 of a is column j of b
    masses = np.linspace(0.3, 0.9, 4)
    n = 4000
    res = plot_acceptance_comparison(
        a,
        b,
        Geometry(),
        grid=ComparisonGrid(masses_map=masses, ctaus=ctaus, n=n),
        path_curves=str(tmp_path / "fig9.png"),
        path_map=str(tmp_path / "fig10.png"),
    )
    acc_a, acc_b, rel = res["acc_a"], res["acc_b"], res["rel_diff"]
    # (1) decay-length scaling; the exponent z/((p/m) cos θ cτ) rounds differently (a few eps64)
    np.testing.assert_allclose(acc_b[:, :-1], acc_a[:, 1:], rtol=1e-10, atol=1e-300)
    # (2) the cτ → ∞ limit: the angular acceptance counted on the samples (the seeds that
    # acceptance_grid and draw derive from seed 0)
    seeds = np.random.SeedSequence(0).spawn(masses.size)
    for i, m in enumerate(masses):
        s_seed = int(np.random.SeedSequence(int(seeds[i].generate_state(1)[0])).spawn(2)[0]
                     .generate_state(1)[0])  # fmt: skip
        smp = a.sample(float(m), n, seed=s_seed)
        pz = np.sqrt(smp["E"] ** 2 - m**2 - smp["qT"] ** 2)
        th = np.arctan2(smp["qT"], pz)
        ang = np.mean((th >= 0.035) & (th < 0.120))
        # at cτ_max = 1.3 km the survival to L1 = 5 m is 1 − L1 m/(p cτ) > 0.99 for p/m > 0.4;
        # A_a(cτ_max) below the angular fraction by at most a few %, never above it
        assert ang * 0.97 < acc_a[i, -1] <= ang * (1 + 1e-12)
    long_lived = ctaus > 50.0
    assert long_lived.sum() >= 3
    assert np.all(np.abs(rel[:, long_lived]) < 0.1)  # paper App. B: < 10% in this regime
    # (3) short-lived: where A_a < 1e-3 the boosted model's acceptance is ≥ 3× larger
    # (exp((1 − 1/k) L1 m/(p cτ)) with L1 m/(p cτ) ≥ ln(1/1e-3) ≈ 7: e^{2.3} ≈ 10)
    short = (acc_a > 0) & (acc_a < 1e-3) & (acc_b > 0)
    assert short.sum() >= 4
    assert np.all(acc_b[short] > 3 * acc_a[short])
    assert np.all(rel[short] < -1.0)
    assert (tmp_path / "fig9.png").exists()
    assert (tmp_path / "fig10.png").exists()
    for f in res["figures"]:
        plt.close(f)


def test_bad_input():
    s = ParametricSampler(mass_range=(0.2, 1.1))
    with pytest.raises(InputError, match="outside the kinematic model's mass range"):
        acceptance(s, 1.5, [1.0], Geometry())
    with pytest.raises(GammastarError, match="l2"):
        Geometry(l1=10.0, l2=5.0)
    with pytest.raises(ConfigError, match="l2"):
        config_from_dict({"detector": {"l1": 10.0, "l2": 5.0}})
    with pytest.raises(ConfigError, match="plane_z"):
        config_from_dict({"detector": {"l1": 10.0, "l2": 50.0, "plane_z": 20.0}})
    with pytest.raises(GammastarError, match="acceptance is zero"):
        # all A′ along the axis, window 35–120 mrad
        acceptance_grid(Mono(0.0, 50.0), [0.5], [1.0, 10.0], Geometry(), n=50, seed=1)
    with pytest.raises(InputError, match="qT"):
        acceptance(lambda m, n, seed: {"pt": np.ones(n)}, 0.5, [1.0], Geometry(), n=10)
    with pytest.raises(InputError, match="no physical"):
        acceptance(Mono(0.0, 0.1), 0.5, [1.0], Geometry(), n=10)
    with pytest.raises(GammastarError, match="channel"):
        draw(s, 0.5, 10, Geometry(), channel="tautau")


@pytest.mark.parametrize(
    ("kw", "key"),
    [
        ({"l1": -1.0}, r"detector\.l1"),
        ({"efficiency": 1.5}, r"detector\.efficiency"),
        ({"theta_min": 0.2, "theta_max": 0.1}, "theta_max"),
        ({"l1": 80.0, "l2": 160.0, "plane_z": 100.0}, "plane_z"),
        ({"l1": 80.0, "l2": 160.0, "plane_z": 200.0, "r_min": 1.0, "r_max": 0.5}, "r_max"),
    ],
)
def test_geometry_follows_the_detector_config_rules(kw, key):
    """Geometry and the `detector:` config section reject the same geometries."""
    with pytest.raises(GammastarError, match=key):
        Geometry(**kw)
    with pytest.raises(ConfigError, match=key):
        config_from_dict({"detector": kw})
