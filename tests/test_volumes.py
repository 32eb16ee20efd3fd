"""Decay volumes, detection planes and daughter requirements (gammastar.physics.volumes): exact
entry and exit checked by hand, against a dense scan and a loop, and against a brute-force
Monte Carlo of decay points; the window keys give today's decay probability and hits; the
config's shapes and their one-line errors."""

from __future__ import annotations

import functools
import math
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pytest
from _experiment import stated_yaml
from _phys_params import diagonal_grid
from _tolerance import assert_same_decisions

from gammastar.config import load_config
from gammastar.errors import ConfigError, GammastarError
from gammastar.physics.decay import decay_probability
from gammastar.physics.kinematics import decay_in_helicity_frame
from gammastar.physics.sampling import ParametricSampler
from gammastar.physics.volumes import PLANES, VOLUMES, Requirements, build, spec
from gammastar.physics.volumes.checks import ShapeError
from gammastar.physics.volumes.planes import Annulus, Circle, CircleHole, Rectangle, RectangleHole
from gammastar.physics.volumes.shapes import (
    Box,
    Cone,
    Cylinder,
    Frustum,
    Slab,
    decay_in_volume,
    sample_decay_points,
)
from gammastar.source.aprime import AprimeKinematics
from gammastar.source.geometry import Geometry
from gammastar.source.hits import detector_hits

Z = np.array([0.0, 0.0, 1.0])
O = np.zeros(3)
M_MU = 0.1056583755  # PDG 2024, GeV


def unit(x: float, y: float, z: float) -> np.ndarray:
    v = np.array([x, y, z], dtype=np.float64)
    return v / np.linalg.norm(v)


def one(shape, origin, direction) -> tuple[list[float], list[float]]:
    """(s_in, s_out) of one ray, a list per interval."""
    s_in, s_out = shape.entry_exit(origin, direction)
    return s_in[:, 0].tolist(), s_out[:, 0].tolist()


# --------------------------------------------------------------------------- by hand
@pytest.mark.parametrize(
    "shape",
    [
        Cylinder(radius=1.0, z1=10.0, z2=30.0),
        Box(half_x=1.0, half_y=2.0, z1=10.0, z2=30.0),
        Frustum(half_x1=1.0, half_y1=1.0, half_x2=2.0, half_y2=3.0, z1=10.0, z2=30.0),
        Cone(theta_max=0.1, z1=10.0, z2=30.0),
        Slab(z1=10.0, z2=30.0),
    ],
)
def test_axis_ray_enters_at_z1_leaves_at_z2(shape) -> None:
    """A ray along the axis from the production point: s_in = z1, s_out = z2 (to rounding)."""
    s_in, s_out = one(shape, O, Z)
    assert s_in == pytest.approx([10.0], rel=1e-14)
    assert s_out == pytest.approx([30.0], rel=1e-14)


@pytest.mark.parametrize(
    "shape",
    [
        Cylinder(radius=1.0, z1=10.0, z2=30.0, offset=(3.0, -2.0)),
        Box(half_x=1.0, half_y=2.0, z1=10.0, z2=30.0, offset=(3.0, -2.0)),
        Frustum(half_x1=1, half_y1=1, half_x2=2, half_y2=3, z1=10, z2=30, offset=(3.0, -2.0)),
    ],
)
def test_off_axis_shapes_follow_their_axis(shape) -> None:
    """An off-axis shape: the ray along its own axis crosses z1 to z2, the beam axis misses."""
    s_in, s_out = one(shape, np.array([3.0, -2.0, 0.0]), Z)
    assert (s_in, s_out) == ([pytest.approx(10.0)], [pytest.approx(30.0)])
    assert np.isnan(one(shape, O, Z)[0][0])


def test_box_side_exit_at_known_angle() -> None:
    """x = z tan α from the origin, tan α = 0.05, leaves the box |x| ≤ 1 through its side at
    z = 1/0.05 = 20 m: s_in = 10/cos α, s_out = 20/cos α = √(20² + 1²)."""
    box = Box(half_x=1.0, half_y=5.0, z1=10.0, z2=30.0)
    s_in, s_out = one(box, O, unit(0.05, 0.0, 1.0))
    assert s_in == pytest.approx([math.hypot(10.0, 0.5)], rel=1e-14)
    assert s_out == pytest.approx([math.hypot(20.0, 1.0)], rel=1e-14)


def test_off_axis_box_entered_through_its_side() -> None:
    """Box |x − 3| ≤ 1 from z 10 to 50; the ray x = 0.1 z enters through x = 2 (z = 20) and
    leaves through x = 4 (z = 40): s = z √1.01."""
    box = Box(half_x=1.0, half_y=1.0, z1=10.0, z2=50.0, offset=(3.0, 0.0))
    s_in, s_out = one(box, O, unit(0.1, 0.0, 1.0))
    assert s_in == pytest.approx([20 * math.sqrt(1.01)], rel=1e-14)
    assert s_out == pytest.approx([40 * math.sqrt(1.01)], rel=1e-14)


def test_frustum_exit_through_growing_side() -> None:
    """Half-width h(z) = 2 + (4 − 2)(z − 10)/20 = 1 + z/10 from z 10 to 30; the ray
    x = 0.15 z meets the side where 0.15 z = 1 + 0.1 z, z = 20: s_out = 20 √(1 + 0.15²), and
    s_in = 10 √(1 + 0.15²) at the entrance face (x = 1.5 < h(10) = 2)."""
    f = Frustum(half_x1=2.0, half_y1=5.0, half_x2=4.0, half_y2=5.0, z1=10.0, z2=30.0)
    s_in, s_out = one(f, O, unit(0.15, 0.0, 1.0))
    assert s_in == pytest.approx([10 * math.hypot(1, 0.15)], rel=1e-14)
    assert s_out == pytest.approx([20 * math.hypot(1, 0.15)], rel=1e-14)
    hx, _ = f.half_widths(20.0)
    assert float(hx) == pytest.approx(3.0)


def test_conical_shell_two_crossings() -> None:
    """Shell 0.05 ≤ θ < 0.1 between z 0 and 100; a ray along x at z = 50 from x = −10 is in it
    for 50 tan 0.05 ≤ |x| < 50 tan 0.1: two intervals, s = x + 10. From the apex inside the
    window: one interval, the second NaN."""
    shell = Cone(theta_min=0.05, theta_max=0.1, z1=0.0, z2=100.0)
    assert shell.intervals == 2
    s_in, s_out = one(shell, np.array([-10.0, 0.0, 50.0]), np.array([1.0, 0.0, 0.0]))
    a, b = 50 * math.tan(0.05), 50 * math.tan(0.1)
    assert s_in == pytest.approx([10 - b, 10 + a], rel=1e-12)
    assert s_out == pytest.approx([10 - a, 10 + b], rel=1e-12)
    s_in, s_out = one(shell, O, unit(math.tan(0.07), 0.0, 1.0))
    assert s_out[0] == pytest.approx(100 * math.hypot(1, math.tan(0.07)), rel=1e-14)
    assert np.isnan([s_in[1], s_out[1]]).all()
    # the full cone (θ_min = 0) has one interval
    assert Cone(theta_max=0.1, z1=0.0, z2=100.0).intervals == 1


def test_inside_start_backward_and_parallel_rays() -> None:
    """A ray starting inside enters at s = 0; a backward ray misses; a ray parallel to the
    faces outside misses, inside runs to the end."""
    box = Box(half_x=1.0, half_y=1.0, z1=10.0, z2=30.0)
    assert one(box, np.array([0.0, 0.0, 20.0]), Z) == ([0.0], [10.0])
    assert np.isnan(one(box, O, -Z)[0][0])
    assert np.isnan(one(box, np.array([2.0, 0.0, 0.0]), Z)[0][0])
    assert one(Slab(z1=5.0), O, Z) == ([5.0], [math.inf])
    assert np.isnan(one(Slab(z1=5.0), O, np.array([1.0, 0.0, 0.0]))[0][0])


# --------------------------------------------------------------------------- vectorised
SHAPES = {
    "cylinder": Cylinder(radius=1.5, z1=20.0, z2=60.0, offset=(0.5, 0.0)),
    "cone": Cone(theta_min=0.01, theta_max=0.05, z1=20.0, z2=60.0),
    "box": Box(half_x=1.0, half_y=1.5, z1=20.0, z2=60.0, offset=(1.5, 0.0)),
    "frustum": Frustum(
        half_x1=0.5, half_y1=1.0, half_x2=1.5, half_y2=2.5, z1=20.0, z2=60.0, offset=(0.0, 0.3)
    ),
    "slab": Slab(z1=20.0, z2=60.0),
}


def random_rays(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Origins in a 5 cm beam spot from z −1 to 1 m, directions within ~0.1 rad of the beam
    (some backward-free grazing rays included by the spread)."""
    rng = np.random.default_rng(seed)
    o = np.stack([rng.normal(0, 0.05, n), rng.normal(0, 0.05, n), rng.uniform(-1, 1, n)])
    d = np.stack([rng.normal(0, 0.04, n), rng.normal(0, 0.04, n), np.ones(n)])
    return o, d / np.linalg.norm(d, axis=0)


@pytest.mark.parametrize("name", list(SHAPES))
def test_vectorised_equals_loop_and_dense_scan(name: str) -> None:
    """The vectorised intervals equal one-ray-at-a-time calls exactly, and agree with a dense
    scan of ``contains`` along each ray (step h = 2 cm: each edge within h, the length inside
    within 2h per interval)."""
    shape = SHAPES[name]
    o, d = random_rays(300, seed=11)
    s_in, s_out = shape.entry_exit(o, d)
    for i in range(o.shape[1]):
        a, b = shape.entry_exit(o[:, i], d[:, i])
        # one ray alone or in a batch: the same arithmetic, equal to the float precision
        np.testing.assert_allclose(a[:, 0], s_in[:, i], rtol=1e-13, atol=1e-12)
        np.testing.assert_allclose(b[:, 0], s_out[:, i], rtol=1e-13, atol=1e-12)
    h = 0.02
    s = np.arange(0.0, 80.0, h) + h / 2
    inside = np.stack([shape.contains(o[:, i : i + 1] + s * d[:, i : i + 1]) for i in range(300)])
    length = np.nansum(s_out - s_in, axis=0)
    k = shape.intervals
    np.testing.assert_allclose(inside.sum(axis=1) * h, length, atol=2 * h * k)
    hit = inside.any(axis=1) & (length > 4 * h)
    first = s[np.argmax(inside, axis=1)]
    last = s[inside.shape[1] - 1 - np.argmax(inside[:, ::-1], axis=1)]
    np.testing.assert_allclose(first[hit], s_in[0, hit], atol=h)  # intervals in order
    np.testing.assert_allclose(last[hit], np.fmax.reduce(s_out, axis=0)[hit], atol=h)
    assert hit.sum() > 50  # the rays do test the shape


# --------------------------------------------------------------------------- brute force
MC_SHAPES = {
    # sizes of a beam-dump decay volume tens of m downstream of the target
    "cylinder": Cylinder(radius=1.5, z1=30.0, z2=80.0, offset=(0.5, 0.0)),
    "cone": Cone(theta_min=0.01, theta_max=0.05, z1=30.0, z2=80.0),
    "box": Box(half_x=1.0, half_y=1.5, z1=30.0, z2=80.0, offset=(1.5, 0.0)),
    "frustum": Frustum(
        half_x1=0.5, half_y1=1.0, half_x2=2.0, half_y2=3.0, z1=30.0, z2=80.0, offset=(0.0, 0.3)
    ),
    "slab": Slab(z1=30.0, z2=80.0),
}
MC_POINTS = [(0.2, 0.2), (0.2, 2.0), (0.5, 0.5), (0.5, 10.0), (1.0, 1.0)]
"""(m in GeV, cτ in m): decay lengths (p/m) cτ from ~10 m to ~10 km against a volume at
30–80 m, so P spans short-lived (exponential tail), matched and long-lived (P ∝ L/ℓ)."""
N_MC = 200_000


@functools.cache
def aprime_rays(mass: float, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A′ from :class:`ParametricSampler` (q_T, E), azimuth uniform, from a 2 cm beam spot at
    z = 0: origins (3, n), unit directions (3, n), momenta |p| (n,)."""
    rng = np.random.default_rng(seed)
    s = ParametricSampler().sample(mass, n, seed=seed)
    p = np.sqrt(s["E"] ** 2 - mass**2)
    pt = np.minimum(s["qT"], p)
    phi = rng.uniform(0, 2 * np.pi, n)
    d = np.stack([pt * np.cos(phi), pt * np.sin(phi), np.sqrt(p**2 - pt**2)]) / p
    o = np.stack([rng.normal(0, 0.02, n), rng.normal(0, 0.02, n), np.zeros(n)])
    return o, d, p


def brute_force(name: str, mass: float, ctau: float) -> tuple[float, float, float]:
    """(exact, MC, σ_MC) of P(decay in the volume) over the same A′ rays.

    exact: the mean over rays of Σ e^{−s_in/ℓ} − e^{−s_out/ℓ}. MC: one decay length per ray
    from the exponential law of mean ℓ = (p/m) cτ, counted when ``contains`` holds. Given the
    rays the count is a sum of independent Bernoulli(P_i), mean N·P̄ (the exact value), variance
    Σ P_i(1 − P_i) ≤ N P̄(1 − P̄): the binomial σ = √(P̄(1 − P̄)/N) bounds the MC's error."""
    shape = MC_SHAPES[name]
    o, d, p = aprime_rays(mass, N_MC, seed=7)
    ell = p / mass * ctau
    exact = float(decay_in_volume(shape, o, d, ell).mean())
    # a decay stream of its own for each case: the cases' MC errors are independent
    key = (list(MC_SHAPES).index(name), MC_POINTS.index((mass, ctau)))
    s = np.random.default_rng(np.random.SeedSequence(8, spawn_key=key)).exponential(ell)
    mc = float(shape.contains(o + s * d).mean())
    return exact, mc, math.sqrt(exact * (1 - exact) / N_MC)


def family_pull(m: int, alpha: float = 0.0027) -> float:
    """The pull bound that m independent comparisons all meet by chance with probability
    1 − α, α = 0.27% the false-alarm rate of one 3σ comparison (Šidák: each two-sided at
    p = 1 − (1 − α)^{1/m}). A flat 3σ on each of the 34 brute-force cases would fail a
    correct code about 1 − (1 − α)^34 ≈ 9% of the time for a fresh random stream.

    Example: ``family_pull(1)`` is 3.0; ``family_pull(25)`` ≈ 3.87, ``family_pull(9)`` ≈ 3.61.
    """
    p = 1 - (1 - alpha) ** (1 / m)
    return NormalDist().inv_cdf(1 - p / 2)


def test_family_pull_is_three_sigma_for_one_comparison() -> None:
    assert family_pull(1) == pytest.approx(3.0, abs=1e-3)
    assert family_pull(25) == pytest.approx(3.87, abs=0.01)


# one value per case by default, the rest of the grid slow (_phys_params.diagonal_grid)
@pytest.mark.parametrize(("name", "mass", "ctau"), diagonal_grid(list(MC_SHAPES), MC_POINTS))
def test_decay_probability_matches_brute_force(name: str, mass: float, ctau: float) -> None:
    """Exact entry/exit against decay points drawn from the exponential law: within the MC's
    binomial standard error (derived in :func:`brute_force`) times 3σ's bound for the family
    of the 25 cases (:func:`family_pull`); P̄ large enough to test."""
    exact, mc, err = brute_force(name, mass, ctau)
    assert exact * N_MC > 100
    tol = family_pull(len(MC_SHAPES) * len(MC_POINTS)) * err
    assert abs(mc - exact) < tol, f"{name} m={mass} cτ={ctau}: {exact} vs {mc} ± {err}"


PLANE_CASES = {
    "box+rectangle": (
        MC_SHAPES["box"],
        Rectangle(half_x=2.0, half_y=2.0, z=100.0, offset=(1.5, 0.0), hole=CircleHole(radius=0.1)),
        Requirements(require="both", min_energy=2.0, min_separation=0.05),
    ),
    "frustum+circle": (
        MC_SHAPES["frustum"],
        Circle(radius=2.5, z=90.0, hole=RectangleHole(half_x=0.1, half_y=0.1)),
        Requirements(require="either", min_energy=1.0),
    ),
    "cone+annulus": (
        MC_SHAPES["cone"],
        Annulus(r_min=0.3, r_max=3.0, z=85.0),
        Requirements(require="both", min_energy=1.0, min_separation=0.02),
    ),
}


def plane_brute_force(case: str, mass: float, ctau: float) -> tuple[float, float, float]:
    """(weighted, brute, σ) of P(decay in the volume and the daughters pass at the plane).

    weighted: vertices drawn in the volume given a decay there (:func:`sample_decay_points`)
    with weight P_i, the daughters (A′ → μμ, isotropic) propagated to the plane: the mean of
    P_i × pass_i. brute: one decay length per ray from the full exponential law, counted when
    inside and passing. Both estimate the same mean from independent draws; σ of their
    difference is √(var(P_i pass_i)/N + p(1 − p)/N), the second the binomial error."""
    shape, plane, req = PLANE_CASES[case]
    o, d, p = aprime_rays(mass, N_MC, seed=21)
    ell = p / mass * ctau
    energy = np.sqrt(p**2 + mass**2)
    parent = np.concatenate([p * d, energy[None]])

    def daughters(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        cos_t = rng.uniform(-1, 1, N_MC)
        phi = rng.uniform(0, 2 * np.pi, N_MC)
        return decay_in_helicity_frame(parent, M_MU, cos_t, phi, mass=np.full(N_MC, mass))

    key = (list(PLANE_CASES).index(case), PLANE_POINTS.index((mass, ctau)))
    rng = np.random.default_rng(np.random.SeedSequence(22, spawn_key=key))
    vertex, w = sample_decay_points(shape, o, d, ell, rng)
    term = w * req.accept(daughters(rng), vertex, plane)
    rng = np.random.default_rng(np.random.SeedSequence(23, spawn_key=key))
    point = o + rng.exponential(ell) * d
    brute = shape.contains(point) & req.accept(daughters(rng), point, plane)
    b = float(brute.mean())
    sigma = math.sqrt(term.var() / N_MC + b * (1 - b) / N_MC)
    return float(term.mean()), b, sigma


PLANE_POINTS = [(0.3, 0.3), (0.5, 5.0), (1.0, 1.0)]


# one value per case by default, the rest of the grid slow (_phys_params.diagonal_grid)
@pytest.mark.parametrize(("case", "mass", "ctau"), diagonal_grid(list(PLANE_CASES), PLANE_POINTS))
def test_plane_hits_match_brute_force(case: str, mass: float, ctau: float) -> None:
    """Daughters propagated from sampled decay points against the brute force: within σ of
    the difference (:func:`plane_brute_force`) times 3σ's bound for the 9 cases."""
    weighted, brute, sigma = plane_brute_force(case, mass, ctau)
    assert brute * N_MC > 100
    tol = family_pull(len(PLANE_CASES) * len(PLANE_POINTS)) * sigma
    assert abs(weighted - brute) < tol, f"{case}: {weighted} vs {brute} ± {sigma}"


def test_sampled_vertices_lie_inside_with_the_decay_probability() -> None:
    """Every sampled vertex of a hitting ray is inside the volume (the shell's two intervals
    included) and its weight is the ray's P."""
    o, d = random_rays(2000, seed=5)
    ell = np.full(2000, 40.0)
    for shape in SHAPES.values():
        v, w = sample_decay_points(shape, o, d, ell, np.random.default_rng(6))
        hit = w > 0
        assert hit.sum() > 100
        assert shape.contains(v[:, hit]).all()
        assert np.isnan(v[:, ~hit]).all()
        np.testing.assert_allclose(w, decay_in_volume(shape, o, d, ell), rtol=1e-15)


# --------------------------------------------------------------------------- today's geometry
def aprime_kinematics(mass: float, n: int, seed: int) -> AprimeKinematics:
    _, d, p = aprime_rays(mass, n, seed)
    q = p * d
    return AprimeKinematics(mass, q[0], q[1], q[2], np.sqrt(p**2 + mass**2), np.ones(n, bool))


@pytest.mark.parametrize("l2", [60.0, None])
def test_window_keys_give_todays_decay_probability(l2: float | None) -> None:
    """The cone of the window keys (polar window from the target, z from l1 to l2) gives, for
    A′ from the production point, today's P = e^{−l1/ℓ_z} − e^{−l2/ℓ_z} with ℓ_z = (p_z/m) cτ
    where θ is in the window and 0 elsewhere; with ``both_daughters`` the slab gives it for
    every A′. Equal to float precision (s/ℓ = z/ℓ_z up to rounding of p_z/p)."""
    mass = 0.4
    k = aprime_kinematics(mass, 20_000, seed=3)
    pvec = np.stack([k.px, k.py, k.pz])
    d = pvec / k.p
    theta = np.arctan2(np.hypot(k.px, k.py), k.pz)
    for both in (False, True):
        g = Geometry(l1=20.0, l2=l2, theta_min=0.01, theta_max=0.05, both_daughters=both)
        shape = g.volume_shape()
        assert isinstance(shape, Slab if both else Cone)
        window = np.ones(k.n, bool) if both else (theta >= 0.01) & (theta < 0.05)
        for ctau in (0.1, 3.0, 1e3):
            new = decay_in_volume(shape, np.zeros((3, 1)), d, k.p / mass * ctau)
            today = window * decay_probability(
                20.0, np.inf if l2 is None else l2, k.pz / mass * ctau
            )
            np.testing.assert_allclose(new, today, rtol=1e-12, atol=1e-300)
        assert window.sum() > 1000


def _shapes_verdict(shape, plane, req, parent, d1, d2, vertex):
    """The shapes' verdict at ``vertex``: the A′ line through the volume (its window) and the
    requirements on the daughters at the plane."""
    in_window = ~np.isnan(shape.entry_exit(np.zeros((3, 1)), parent[:3] / np.linalg.norm(
        parent[:3], axis=0))[0][0])  # fmt: skip
    return in_window & req.accept((d1, d2), vertex, plane, parent=parent)


def test_window_keys_give_todays_hits() -> None:
    """At vertices on the A′ line at the cells' mid z, the window keys' plane (annulus) and
    requirements pass exactly the events that ``detector_hits`` passes today: the A′ line
    (without ``both_daughters``; its window is the cone's) and both muons with the energy cut
    and the window on their directions."""
    mass = 0.5
    k = aprime_kinematics(mass, 5000, seed=4)
    rng = np.random.default_rng(5)
    parent = np.stack([k.px, k.py, k.pz, k.e])
    d1, d2 = decay_in_helicity_frame(parent, M_MU, rng.uniform(-1, 1, k.n),
                                     rng.uniform(0, 2 * np.pi, k.n), mass=np.full(k.n, mass))  # fmt: skip
    for both in (False, True):
        g = Geometry(l1=20.0, l2=60.0, theta_min=0.005, theta_max=0.08, both_daughters=both,
                     min_daughter_energy=3.0, plane_z=90.0, r_min=0.3, r_max=2.5, z_steps=6)  # fmt: skip
        zmid = 0.5 * (g.cells[1:] + g.cells[:-1])
        today = detector_hits(g, k, (d1, d2) if both else None, zmid[None, :])
        verdict = functools.partial(_shapes_verdict, g.volume_shape(), g.plane_shape(),
                                    g.requirements())  # fmt: skip
        for j, z in enumerate(zmid):
            vertex = parent[:3] * (z / k.pz)
            # two implementations of the same cuts: equal but where a rounding tips one
            assert_same_decisions(verdict(parent, d1, d2, vertex), today[:, j] > 0, verdict,
                                  (parent, d1, d2, vertex))  # fmt: skip
        assert 100 < today.sum() < today.size - 100


def test_geometry_shapes_and_window_geometry() -> None:
    """The window keys map to cone/slab + annulus; a shape they cannot express is flagged."""
    g = Geometry(l1=5.0, l2=10.0, plane_z=20.0, r_min=0.1, r_max=2.0)
    assert g.volume_shape() == Cone(theta_min=0.035, theta_max=0.12, z1=5.0, z2=10.0)
    assert g.plane_shape() == Annulus(r_min=0.1, r_max=2.0, z=20.0)
    assert g.requirements() == Requirements(require="aprime")
    assert g.window_geometry
    same = Geometry(volume={"shape": "cone", "theta_min": 0.035, "theta_max": 0.12, "z1": 5,
                            "z2": 10}, plane={"shape": "circle", "radius": 2.0, "z": 20})  # fmt: skip
    assert (same.l1, same.l2, same.theta_min, same.plane_z, same.r_min, same.r_max) == (
        5.0, 10.0, 0.035, 20.0, 0.0, 2.0)  # fmt: skip
    assert same.window_geometry
    off = Geometry(volume={"shape": "cone", "theta_max": 0.1, "z1": 5, "z2": 10,
                           "offset": [0.5, 0]})  # fmt: skip
    assert not off.window_geometry
    slab = Geometry(volume={"shape": "slab", "z1": 5}, daughters={"require": "both"})
    assert (slab.both_daughters, slab.l2, slab.window_geometry) == (True, None, True)
    assert slab.requirements() == Requirements(require="both")


# --------------------------------------------------------------------------- requirements
def test_requirements_both_either_separation_and_aprime() -> None:
    """Two daughters from (0, 0, 10) to a disc of radius 1 at z = 20: one at x = 0.5, one at
    x = 1.5 (outside): either passes, both fails; a separation cut of 0.2 m passes two
    daughters 0.3 m apart and fails them 0.1 m apart; a backward daughter misses."""
    plane = Circle(radius=1.0, z=20.0)
    v = np.array([[0.0], [0.0], [10.0]])

    def mom(x: float, pz: float = 10.0) -> np.ndarray:
        return np.array([[x], [0.0], [pz], [math.hypot(x, pz)]])

    pair = (mom(0.5), mom(1.5))
    assert Requirements(require="either").accept(pair, v, plane).tolist() == [True]
    assert Requirements(require="both").accept(pair, v, plane).tolist() == [False]
    sep = Requirements(require="both", min_separation=0.2)
    assert sep.accept((mom(0.1), mom(-0.2)), v, plane).tolist() == [True]
    assert sep.accept((mom(0.1), mom(0.0)), v, plane).tolist() == [False]
    assert Requirements(require="either").accept((mom(0.1, -10.0), mom(1.5)), v, plane).tolist() == [False]  # fmt: skip
    aprime = Requirements(require="aprime")
    assert aprime.accept(None, v, plane, parent=mom(0.5)).tolist() == [True]
    with pytest.raises(ShapeError, match="min_energy: is a cut on the daughters"):
        Requirements(require="aprime", min_energy=1.0)


def test_propagate_backward_parallel_and_downstream_vertex() -> None:
    """Lines crossing the plane z = 20: forward from z = 10 lands at x = vx + 10 px/pz; going
    backwards, parallel or starting beyond the plane gives NaN."""
    plane = Rectangle(half_x=1.0, half_y=1.0, z=20.0)
    v = np.array([[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [10.0, 10.0, 10.0, 30.0]])
    p = np.array([[1.0, 1.0, 1.0, 1.0], [0.5, 0.0, 0.0, 0.0], [10.0, -10.0, 0.0, 10.0]])
    xy = plane.propagate(v, p)
    np.testing.assert_allclose(xy[:, 0], [1.0, 0.5])
    assert np.isnan(xy[:, 1:]).all()
    assert plane.hits(xy).tolist() == [True, False, False, False]


# --------------------------------------------------------------------------- building and config
def test_build_and_spec_round_trip_every_shape() -> None:
    """Every registered shape rebuilds from its mapping (a hole nested)."""
    shapes = [*SHAPES.values(), *MC_SHAPES.values(), *(c[1] for c in PLANE_CASES.values())]
    for s in shapes:
        reg = VOLUMES if s.name in VOLUMES and not hasattr(s, "hits") else PLANES
        assert build(reg, spec(s)) == s
    assert set(VOLUMES) == {"slab", "cone", "cylinder", "box", "frustum"}
    assert set(PLANES) == {"rectangle", "circle", "annulus"}


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"shape": "box", "half_x": 0, "half_y": 1, "z1": 1, "z2": 2}, "half_x: must be positive"),
        ({"shape": "cylinder", "radius": 1, "z1": 5, "z2": 5}, "z2: must be larger than z1"),
        (
            {
                "shape": "frustum",
                "half_x1": 1,
                "half_y1": 1,
                "half_x2": 1,
                "half_y2": 1,
                "z1": 1,
                "z2": math.inf,
            },
            "z2: must be a finite number",
        ),
        (
            {"shape": "cone", "theta_min": 0.1, "theta_max": 0.05, "z1": 1},
            "theta_max: must be larger",
        ),
        (
            {"shape": "box", "half_x": "a", "half_y": 1, "z1": 1, "z2": 2},
            "half_x: must be a number",
        ),
        (
            {"shape": "box", "half_x": 1, "half_y": 1, "z1": 1, "z2": 2, "offset": [1]},
            "offset: must be a pair",
        ),
        ({"shape": "sphere"}, "shape: unknown shape 'sphere'"),
    ],
)
def test_bad_shapes_name_the_field(mapping: dict, message: str) -> None:
    with pytest.raises(ShapeError, match=message):
        build(VOLUMES, mapping)


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "cfg.yaml"
    p.write_text(stated_yaml(text))
    return p


@pytest.mark.parametrize(
    ("detector", "message"),
    [
        ("volume: {shape: box, half_x: 0, half_y: 1, z1: 10, z2: 20}",
         r"detector\.volume\.half_x: must be positive \(a size in m\), not 0"),
        ("volume: {shape: cylinder, radius: 1, z1: 20, z2: 20}",
         r"detector\.volume\.z2: must be larger than z1 \(20 m\), not 20"),
        ("volume: {shape: boxx, half_x: 1}", r"detector\.volume\.shape: unknown shape 'boxx'"),
        ("volume: {shape: box, halfx: 1, half_y: 1, z1: 10, z2: 20}",
         r"detector\.volume\.halfx: unknown key for box"),
        ("volume: {shape: box, half_x: 1, half_y: 1, z1: 10, z2: 20}\n"
         + "  plane: {shape: circle, radius: 2, z: 15}",
         r"detector\.plane\.z: the plane at z = 15 m lies inside the decay volume"),
        ("plane: {shape: circle, radius: 2, z: 15}\n  l1: 10\n  l2: 20",
         r"detector\.plane\.z: the plane at z = 15 m lies inside"),
        ("plane: {shape: annulus, r_min: 0.5, r_max: 0.5, z: 30}\n  l2: 20",
         r"detector\.plane\.r_max: must be larger than r_min"),
        ("plane: {shape: circle, radius: 1, z: 30, hole: {shape: circle, radius: 0}}\n  l2: 20",
         r"detector\.plane\.hole\.radius: must be positive"),
        ("volume: {shape: cone, theta_max: 0.1, z1: 10, z2: 20}\n  l1: 5",
         r"detector\.l1: 5 disagrees with detector\.volume\.z1, which means l1 = 10"),
        ("volume: {shape: box, half_x: 1, half_y: 1, z1: 10, z2: 20}\n  theta_max: 0.12",
         r"detector\.theta_max: 0\.12 disagrees with detector\.volume \(shape box\)"),
        ("daughters: {require: both, min_energy: 1}\n  both_daughters: false",
         r"detector\.both_daughters: False disagrees with detector\.daughters\.require"),
        ("daughters: {require: both, min_separation: 0.01}",
         r"detector\.daughters\.min_separation: needs a detection plane"),
        ("daughters: {require: both, efficiency: 0.5}",
         r"detector\.daughters\.efficiency: give it once, as detector\.efficiency"),
    ],
)  # fmt: skip
def test_config_errors_are_one_line_naming_the_key(
    tmp_path: Path, detector: str, message: str
) -> None:
    """A bad shape, a plane inside the volume, window keys that disagree with the shapes: one
    line naming the file and the ``detector.`` key (the command line exits 2)."""
    with pytest.raises(ConfigError, match=r"cfg\.yaml: " + message) as err:
        load_config(write(tmp_path, f"detector:\n  {detector}\n"))
    assert "\n" not in str(err.value)
    assert err.value.exit_status == 2


def test_config_shapes_load_and_agree_with_window_keys(tmp_path: Path) -> None:
    """A shapes config loads; the window keys it implies are filled in (and may be repeated
    when they agree); the Geometry builds the same shapes from it."""
    cfg = load_config(
        write(
            tmp_path,
            """detector:
  volume: {shape: frustum, half_x1: 1.0, half_y1: 2.7, half_x2: 2.0, half_y2: 5.0,
           z1: 45, z2: 95, offset: [0, 0.2]}
  plane: {shape: rectangle, half_x: 2.0, half_y: 5.0, z: 100,
          hole: {shape: rectangle, half_x: 0.1, half_y: 0.1}}
  daughters: {require: both, min_energy: 1.0, min_separation: 0.01}
  l1: 45
  efficiency: 0.8
""",
        )
    )
    det = cfg.detector
    assert (det.l1, det.l2, det.plane_z, det.both_daughters, det.min_daughter_energy) == (
        45.0, 95.0, 100.0, True, 1.0)  # fmt: skip
    g = Geometry.from_config(det)
    assert g.volume_shape() == Frustum(half_x1=1.0, half_y1=2.7, half_x2=2.0, half_y2=5.0,
                                       z1=45.0, z2=95.0, offset=(0.0, 0.2))  # fmt: skip
    assert g.plane_shape().hole == RectangleHole(half_x=0.1, half_y=0.1)
    assert g.requirements() == Requirements(require="both", min_energy=1.0, min_separation=0.01,
                                            efficiency=0.8)  # fmt: skip
    assert not g.window_geometry
    # the stored mapping validates back to the same section (a run's config read again)
    assert type(det).model_validate(det.model_dump(mode="json")) == det
    # the window keys alone still mean what they meant
    old = load_config(write(tmp_path, "detector: {l1: 5, l2: 10, plane_z: 20, r_max: 2}\n"))
    assert (old.detector.volume, old.detector.l1) == (None, 5.0)


def test_geometry_error_names_the_key() -> None:
    with pytest.raises(
        GammastarError, match=r"^detector\.volume\.half_y: missing \(box needs it\)$"
    ):
        Geometry(volume={"shape": "box", "half_x": 1.0, "z1": 1, "z2": 2})
