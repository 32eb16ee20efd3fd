"""The acceptance with shaped detectors (gammastar.reach.acceptance.draw and .dark.draw_dark on
:mod:`gammastar.physics.volumes`): against a brute-force Monte Carlo of decay points for every
volume shape with a plane and daughter requirements, the window keys' own shapes giving
today's acceptance, and the path cells' bookkeeping."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from _phys_params import diagonal_grid
from test_volumes import family_pull

from gammastar.physics.darksector import I2DM, IDM
from gammastar.physics.sampling import ParametricSampler
from gammastar.physics.volumes.shapes import decay_in_volume
from gammastar.reach.acceptance import channel_samples, draw
from gammastar.reach.acceptance.dark import draw_dark, draw_dark_pair
from gammastar.source.dark_decays import _psi2_kin, dark_chains
from gammastar.source.decays import DECAYS
from gammastar.source.eventgen import _kinematics
from gammastar.source.geometry import Geometry

SAMPLER = ParametricSampler()

# Beam-dump sized detectors, tens of m downstream of the target, each shape with a plane and
# requirements that make the verdict depend on the decay vertex (beam holes, offsets, energy
# and separation cuts, both / either / the A′ line, a polar window on the daughters).
CASES: dict[str, dict] = {
    "cylinder": {
        "volume": {"shape": "cylinder", "radius": 1.5, "z1": 30, "z2": 80, "offset": [0.5, 0]},
        "plane": {"shape": "circle", "radius": 2.5, "z": 100,
                  "hole": {"shape": "circle", "radius": 0.1}},
        "daughters": {"require": "aprime"},
    },
    "cone shell": {
        # off axis: rays from the target cross the inner cone and re-enter the shell
        "volume": {"shape": "cone", "theta_min": 0.01, "theta_max": 0.05, "z1": 30, "z2": 80,
                   "offset": [0.4, 0]},
        "plane": {"shape": "annulus", "r_min": 0.3, "r_max": 3.0, "z": 85, "offset": [0.4, 0]},
        "daughters": {"require": "both", "min_energy": 1.0, "min_separation": 0.02},
    },
    "box off axis": {
        "volume": {"shape": "box", "half_x": 1.0, "half_y": 1.5, "z1": 30, "z2": 80,
                   "offset": [1.5, 0]},
        "plane": {"shape": "rectangle", "half_x": 2, "half_y": 2, "z": 100, "offset": [1.5, 0],
                  "hole": {"shape": "circle", "radius": 0.1}},
        "daughters": {"require": "both", "min_energy": 2.0, "min_separation": 0.05},
    },
    "frustum": {
        "volume": {"shape": "frustum", "half_x1": 0.5, "half_y1": 1, "half_x2": 2, "half_y2": 3,
                   "z1": 30, "z2": 80, "offset": [0, 0.3]},
        "plane": {"shape": "circle", "radius": 2.5, "z": 90,
                  "hole": {"shape": "rectangle", "half_x": 0.1, "half_y": 0.1}},
        "daughters": {"require": "either", "min_energy": 1.0},
    },
    "slab": {
        "volume": {"shape": "slab", "z1": 30, "z2": 80},
        "plane": {"shape": "rectangle", "half_x": 1.5, "half_y": 1.0, "z": 100,
                  "hole": {"shape": "circle", "radius": 0.1}},
        "daughters": {"require": "both", "min_energy": 1.0, "theta_window": [0.0, 0.1]},
        "efficiency": 0.8,
    },
}  # fmt: skip
POINTS = [(0.3, 0.3), (0.3, 3.0), (0.6, 0.6), (0.6, 10.0), (1.0, 1.0)]
"""(m in GeV, cτ in m): decay lengths (p/m) cτ of ~10 m to ~1 km against volumes at 30–80 m
(short-lived, matched and long-lived A′); above the μμ threshold."""
N = 60_000
SEED = 11


def geometry(case: str) -> Geometry:
    g = Geometry(**CASES[case])
    assert not g.window_geometry  # the shapes' path
    return g


@functools.cache
def drawn(case: str, mass: float):
    """``draw``'s sample and the same A′ and daughters, rebuilt from its seed (as ``draw``
    spawns it, the azimuths in the volume's window) for the brute force; the rebuilt A′ are
    checked to be ``draw``'s: the same p/m and, in the volume's cells, the same ray."""
    g = geometry(case)
    smp = draw(SAMPLER, mass, N, g, seed=SEED, channel="mumu")
    s_kin, s_dec = np.random.SeedSequence(SEED).spawn(2)
    k, daughters, _, _ = _kinematics(SAMPLER, mass, N, s_kin, s_dec, [DECAYS["mumu"]],
                                     np.zeros(N, dtype=np.int64), 1.0 / 3.0,
                                     phi_range=g.shapes().volume.azimuth_window())  # fmt: skip
    # one division each side: equal within a few ulp (another CPU may fuse or vectorise it)
    np.testing.assert_allclose(smp.gbc, np.where(k.ok, k.p / mass, 1.0), rtol=4e-16, atol=0)
    # the rebuilt rays cross the volume where draw's do, at its first edge (the same
    # divisions and intersections: a few ulp)
    s_in, _ = g.shapes().volume.entry_exit(np.zeros(3), np.stack([k.px, k.py, k.pz]) / k.p)
    crosses = k.ok & ~np.isnan(s_in[0])
    np.testing.assert_array_equal(crosses, smp.inside[:, 0])  # booleans
    np.testing.assert_allclose(s_in[0, crosses], smp.cells[crosses, 0], rtol=1e-15, atol=0)
    return smp, k, daughters


def brute_force(case: str, mass: float, ctau: float) -> tuple[float, float, float]:
    """(acceptance, MC, σ_MC) at one (m, cτ).

    acceptance: ``draw(...).acceptance(cτ)``. MC: on the same A′ and daughters, one decay
    length per A′ from the exponential law of mean ℓ = (p/m) cτ along its line from the
    target, the vertex counted when inside the volume (``contains``) and the daughters (or the
    A′ line) propagated to the plane pass the requirements
    (:meth:`gammastar.physics.volumes.Requirements.accept`), times the efficiency. Given the
    A′ the count is a sum of independent Bernoulli(P_i) of mean N·P̄ (P̄ the exact acceptance
    / efficiency) and variance Σ P_i(1 − P_i) ≤ N P̄(1 − P̄): σ = eff · √(P̄(1 − P̄)/N) bounds
    the MC's error (P̄ from the acceptance under test)."""
    smp, k, daughters = drawn(case, mass)
    g = geometry(case)
    sh = g.shapes()
    acc = float(smp.acceptance(ctau))
    f = smp.azimuth_fraction  # the share of the circle the A′ azimuths were drawn in
    parent = np.stack([k.px, k.py, k.pz, k.e])
    u = parent[:3] / k.p
    key = (list(CASES).index(case), POINTS.index((mass, ctau)))
    rng = np.random.default_rng(np.random.SeedSequence(12, spawn_key=key))
    vertex = rng.exponential(k.p / mass * ctau) * u
    seen = sh.requirements.accept(daughters, vertex, sh.plane, parent=parent)
    mc = f * g.efficiency * float(np.mean(k.ok & sh.volume.contains(vertex) & seen))
    p = acc / (f * g.efficiency)
    return acc, mc, f * g.efficiency * math.sqrt(p * (1 - p) / N)


# one value per case by default, the rest of the grid slow (_phys_params.diagonal_grid)
@pytest.mark.parametrize(("case", "mass", "ctau"), diagonal_grid(list(CASES), POINTS))
def test_acceptance_matches_brute_force(case: str, mass: float, ctau: float) -> None:
    """Path cells with the verdict at their mid-points against decay points drawn from the
    exponential law: within σ_MC (:func:`brute_force`) times 3σ's bound for the family of the
    25 cases (``family_pull``; Šidák's inequality keeps it a bound for the cases that share
    their A′, whose errors are positively correlated); enough detected decays to test."""
    acc, mc, err = brute_force(case, mass, ctau)
    assert acc * N / geometry(case).efficiency > 100
    tol = family_pull(len(CASES) * len(POINTS)) * err
    assert abs(acc - mc) < tol, f"{case} m={mass} cτ={ctau}: {acc} vs {mc} ± {err}"


def test_cone_shell_rays_cross_twice() -> None:
    """The off-axis shell is crossed twice by some A′ from the target: their cells in the
    volume lie on both sides of the gap cell; the decay-in-volume probability of the sample
    (:meth:`KinematicSample.in_volume`) is that of the exact intervals
    (:func:`gammastar.physics.volumes.shapes.decay_in_volume`) to rounding."""
    smp, k, _ = drawn("cone shell", 0.6)
    steps = geometry("cone shell").z_steps
    inside = smp.inside
    twice = inside[:, :steps].any(axis=1) & inside[:, steps + 1 :].any(axis=1)
    assert not inside[:, steps].any()  # the gap
    assert twice.sum() > 20  # 43 with this seed: the rays that cross the inner cone
    sh = geometry("cone shell").shapes()
    u = np.stack([k.px, k.py, k.pz]) / k.p
    for ctau in (0.6, 10.0):
        exact = decay_in_volume(sh.volume, np.zeros((3, 1)), u, k.p / 0.6 * ctau)
        # a sum of N terms of at most 1 in two orders: N eps (Higham §4.2)
        assert float(smp.in_volume().acceptance(ctau)) == pytest.approx(
            float(np.mean(np.where(k.ok, exact, 0.0))), abs=N * 2.3e-16
        )


WINDOWS = {
    "cone": {"l1": 20.0, "l2": 60.0, "theta_min": 0.01, "theta_max": 0.05},
    "open cone": {"l1": 20.0, "l2": None, "theta_min": 0.0, "theta_max": 0.05},
    "cone+annulus": {"l1": 20.0, "l2": 60.0, "theta_min": 0.005, "theta_max": 0.08,
                     "plane_z": 90.0, "r_min": 0.3, "r_max": 2.5},
    "slab+both+annulus": {"l1": 82.0, "l2": 157.0, "theta_min": 0.0, "theta_max": 0.1,
                          "both_daughters": True, "min_daughter_energy": 10.0,
                          "plane_z": 196.5, "r_min": 0.1, "r_max": 1.05, "efficiency": 0.7},
}  # fmt: skip


@pytest.mark.parametrize("name", list(WINDOWS))
def test_window_keys_through_the_shapes_path_give_todays_acceptance(name: str) -> None:
    """A window geometry keeps its z cells; its own shapes (cone or slab, annulus) through the
    path cells give the same acceptance at every cτ: the same runs of hits (the cells' mid z
    coincide) and P from s/ℓ = z/ℓ_z up to a few roundings of the ratio x. A relative error
    δ of x moves e^{−x} by x·δ: with x ≤ 745 (beyond, both underflow) and δ ≤ 4 eps that is
    below 1e-12."""
    g = Geometry(**WINDOWS[name])
    assert g.window_geometry
    ctau = np.geomspace(1e-3, 1e4, 29)
    for mass in (0.3, 0.8):
        today = draw(SAMPLER, mass, 20_000, g, seed=3)
        shaped = draw(SAMPLER, mass, 20_000, g, seed=3, shapes=True)
        assert today.cells.ndim == 1
        assert shaped.cells.ndim == 2
        assert today.hits.sum() == shaped.hits.sum()
        a, b = today.acceptance(ctau), shaped.acceptance(ctau)
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-300)
        assert a.max() > 1e-3


def test_channels_share_a_sample_only_for_the_aprime_line() -> None:
    """The daughters' requirements (both or either) give each channel its own daughters; the A′
    line one sample for all."""
    either = channel_samples(SAMPLER, 0.6, 2000, geometry("frustum"), seed=1,
                             channels=("mumu", "ee"))  # fmt: skip
    assert either["mumu"] is not either["ee"]
    line = channel_samples(SAMPLER, 0.6, 2000, geometry("cylinder"), seed=1,
                           channels=("mumu", "ee"))  # fmt: skip
    assert line["mumu"] is line["ee"]


# --------------------------------------------------------------------------- dark chains
IDM_MODEL = IDM(m_aprime=0.6, m1=0.2, delta=0.4, alpha_d=0.1)  # m2 = 0.28 GeV: ψ₂ → ψ₁ee


@pytest.mark.parametrize("ctau", [3.0, 30.0])
def test_dark_acceptance_matches_brute_force(ctau: float) -> None:
    """ψ₂ → ψ₁ee in the frustum: ``draw_dark`` against decay points drawn along the ψ₂
    lines of the same chains (:func:`gammastar.source.dark_decays.dark_chains`, ``draw_dark``'s
    seed), the leptons to the plane with the frustum's requirements and the opening-angle cut;
    the binomial bound of :func:`brute_force`, 3σ's bound for the 2 cases."""
    g, n, seed, angle = geometry("frustum"), 40_000, 5, 0.002
    smp = draw_dark(SAMPLER, IDM_MODEL, g, n, final_state="ee", min_opening_angle=angle,
                    seed=seed)  # fmt: skip
    acc = float(smp.acceptance(ctau))
    d = dark_chains(SAMPLER, IDM_MODEL, n, chains={"psi1 psi2": 1.0}, channels={"ee": 1.0},
                    seed=seed)  # fmt: skip
    kin, fwd = _psi2_kin(d["k"], d["psi2"], float(IDM_MODEL.m2))
    p = kin.p
    u = np.stack([kin.px, kin.py, kin.pz]) / p
    rng = np.random.default_rng(int(ctau))
    vertex = rng.exponential(p / float(IDM_MODEL.m2) * ctau) * u
    lm, lp = d["lminus"], d["lplus"]
    sh = g.shapes(semivisible=True)
    cos = np.sum(lm[:3] * lp[:3], axis=0) / (np.linalg.norm(lm[:3], axis=0)
                                             * np.linalg.norm(lp[:3], axis=0))  # fmt: skip
    ok = fwd & sh.volume.contains(vertex) & (np.arccos(np.clip(cos, -1, 1)) >= angle)
    ok &= sh.requirements.accept((lm, lp), vertex, sh.plane)
    mc = float(ok.mean())
    err = math.sqrt(acc * (1 - acc) / n)
    assert acc * n > 100
    assert abs(acc - mc) < family_pull(2) * err, (acc, mc, err)


def test_dark_pair_per_chain_on_path_cells() -> None:
    """i2DM's two ψ₂ on path cells: each side's per-chain probabilities average to its
    acceptance (the same cells, in another order of summation: N eps), and P(≥ 1) lies
    between the larger single one and their sum."""
    model = I2DM(m_aprime=0.9, m1=0.2, delta=0.4, alpha_d=0.1, theta=0.3)
    n = 8000
    pair = draw_dark_pair(SAMPLER, model, geometry("frustum"), n, channels={"ee": 1.0},
                          seed=4)  # fmt: skip
    assert pair.a.cells.ndim == 2
    ct = np.array([1.0, 20.0])
    idx = np.arange(n)
    for side in (pair.a, pair.b):
        mean = pair.per_chain(side, idx, ct).mean(axis=1)
        np.testing.assert_allclose(mean, side.acceptance(ct), rtol=0, atol=n * 2.3e-16)
    both = pair.acceptance(ct)
    single = pair.br * np.stack([pair.a.acceptance(ct), pair.b.acceptance(ct)])
    assert np.all(both >= single.max(axis=0) - 1e-15)
    assert np.all(both <= single.sum(axis=0) + 1e-15)
    assert both.min() > 0


def test_path_cells_by_hand() -> None:
    """Per-sample edges with a gap: sample 0 is hit on [1, 3] and [5, 7] m (two runs around
    the gap cell [3, 5]), sample 1 on [2, 4] only; the acceptance is the mean of
    e^{−a/ℓ} − e^{−b/ℓ} over the runs, ℓ = gbc · cτ; the per-sample terms and the
    extrapolated part split it."""
    from gammastar.physics.decay import decay_probability
    from gammastar.reach.acceptance import KinematicSample

    cells = np.array([[1.0, 2.0, 3.0, 5.0, 6.0, 7.0], [2.0, 3.0, 4.0, 4.0, 4.0, 4.0]])
    hits = np.array([[1.0, 1.0, 0.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0, 0.0]])
    gbc = np.array([2.0, 5.0])
    smp = KinematicSample(0.5, gbc, hits, cells, 0.5, extrapolated=np.array([False, True]))
    ct = np.array([0.3, 3.0])
    p0 = decay_probability(1.0, 3.0, 2.0 * ct) + decay_probability(5.0, 7.0, 2.0 * ct)
    p1 = decay_probability(2.0, 4.0, 5.0 * ct)
    np.testing.assert_allclose(smp.acceptance(ct), 0.5 * (p0 + p1) / 2, rtol=1e-14)
    np.testing.assert_allclose(smp.acceptance_per_sample(ct), 0.5 * np.stack([p0, p1]),
                               rtol=1e-14)  # fmt: skip
    np.testing.assert_allclose(smp.extrapolated_acceptance(ct), 0.5 * p1 / 2, rtol=1e-14)
    # the decay in the volume: every cell inside (the gap is not)
    inside = np.array([[True, True, False, True, True], [True, True, False, False, False]])
    smp.inside = inside
    vol = smp.in_volume().acceptance(ct)
    np.testing.assert_allclose(vol, (p0 + p1) / 2, rtol=1e-14)
