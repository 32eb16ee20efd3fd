"""The A′ azimuth of the acceptance's draw (gammastar.reach.acceptance.draw) stratified to the
decay volume's azimuthal window (:meth:`gammastar.physics.volumes.shapes.Volume.azimuth_window`):
the window of each shape against its geometry, the stratified acceptance against the full
circle's within their statistical errors, and no change where the volume reaches the axis."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from _tolerance import EPS64
from test_volumes import family_pull

from gammastar.physics.sampling import ParametricSampler
from gammastar.physics.volumes.shapes import Box, Cone, Cylinder, Frustum, Slab, decay_in_volume
from gammastar.reach.acceptance import draw
from gammastar.source.decays import DECAYS
from gammastar.source.eventgen import _kinematics
from gammastar.source.geometry import Geometry
from gammastar.yields.extrapolation.nsig.draw import per_sample_acceptance

ROOT = Path(__file__).resolve().parents[1]
SAMPLER = ParametricSampler()


def shadows() -> Geometry:
    """The detector of analysis/facilities/shadows.yaml: a box beside the beam line,
    x ∈ [−4.05, −1.55] m, |y| ≤ 1.25 m, both electrons to a rectangle behind it."""
    cfg = yaml.safe_load((ROOT / "analysis/facilities/shadows.yaml").read_text())
    return Geometry(**cfg["detector"])


# --------------------------------------------------------------------------- the windows
def test_box_window_from_its_corners() -> None:
    """SHADOWS's box, centred on φ = π (across the branch cut of atan2): its near corners
    (−1.55, ±1.25) m bound it, φ = π ∓ atan(1.25/1.55); a box in the first quadrant: the
    corners (4, 1.5) and (2, 2.5); a long one: (0.5, −50) and (0.5, 250); a box touching or
    holding the axis: every azimuth."""
    lo, hi = shadows().shapes().volume.azimuth_window()
    half = math.atan(1.25 / 1.55)
    assert (lo, hi) == pytest.approx((math.pi - half, math.pi + half), abs=1e-15)
    box = Box(half_x=1.0, half_y=0.5, z1=10.0, z2=20.0, offset=(3.0, 2.0))
    assert box.azimuth_window() == pytest.approx(
        (math.atan2(1.5, 4.0), math.atan2(2.5, 2.0)), abs=1e-15
    )
    # long in y beside the axis: the window nearly π wide, its corners far from the centre's φ
    long = Box(half_x=0.5, half_y=150.0, z1=10.0, z2=20.0, offset=(1.0, 100.0))
    assert long.azimuth_window() == pytest.approx(
        (math.atan2(-50.0, 0.5), math.atan2(250.0, 0.5)), abs=1e-15
    )
    assert Box(half_x=1.0, half_y=1.0, z1=1, z2=2, offset=(1.0, 0.0)).azimuth_window() is None
    assert Box(half_x=1.0, half_y=1.0, z1=1, z2=2, offset=(0.5, -0.5)).azimuth_window() is None


def test_round_windows_are_the_tangents() -> None:
    """A cylinder of radius r at distance d: φ_c ± asin(r/d); an off-axis cone: the disc of
    radius z2 tan θ_max at z2 (every cross-section inside it); a frustum: the rectangle of its
    largest half-widths; a slab, an on-axis cone, an open cone: every azimuth."""
    cyl = Cylinder(radius=1.0, z1=5.0, z2=10.0, offset=(0.0, -2.0))
    assert cyl.azimuth_window() == pytest.approx(
        (-math.pi / 2 - math.asin(0.5), -math.pi / 2 + math.asin(0.5)), abs=1e-15
    )
    cone = Cone(theta_max=0.01, theta_min=0.005, z1=50.0, z2=100.0, offset=(2.0, 2.0))
    half = math.asin(100 * math.tan(0.01) / math.hypot(2.0, 2.0))
    assert cone.azimuth_window() == pytest.approx((math.pi / 4 - half, math.pi / 4 + half))
    fr = Frustum(half_x1=0.5, half_y1=1.0, half_x2=1.0, half_y2=0.5, z1=1, z2=2, offset=(3, 0))
    assert fr.azimuth_window() == pytest.approx((-math.atan(1 / 2), math.atan(1 / 2)))
    assert Slab(z1=1.0).azimuth_window() is None
    assert Cone(theta_max=0.1, theta_min=0.05, z1=1.0, z2=5.0).azimuth_window() is None
    assert Cone(theta_max=0.01, z1=1.0, offset=(2.0, 0.0)).azimuth_window() is None


@pytest.mark.parametrize(
    ("volume", "reach"),
    [
        (Box(half_x=1.25, half_y=1.25, z1=14.25, z2=33.25, offset=(-2.8, 0.0)), 1.25),
        (Cylinder(radius=1.0, z1=5.0, z2=10.0, offset=(-1.0, -2.0)), 1.0),
        (Cone(theta_max=0.01, theta_min=0.005, z1=50.0, z2=100.0, offset=(-2.0, 0.5)), 1.0),
        (
            Frustum(
                half_x1=0.5, half_y1=1.0, half_x2=1.5, half_y2=2.0, z1=10, z2=30, offset=(0, 4)
            ),
            2.0,
        ),
    ],
    ids=["box", "cylinder", "cone", "frustum"],
)
def test_window_holds_the_volume_and_is_tight(volume, reach: float) -> None:
    """Points drawn in the volume's bounding box (half-width ``reach`` about its axis; a third
    on each end plane, where the cone's and the frustum's widest cross-sections are) and kept
    where it ``contains`` them: every azimuth inside the window (up to the rounding of atan2,
    ~1e-15), and the window's edges reached to 1% of its width (≳ 10⁵ points: the gap to an
    edge of a 2-D region shrinks as ~1/√(points near it), ≪ 1%)."""
    rng = np.random.default_rng(4)
    lo, hi = volume.azimuth_window()
    n = 300_000
    x0, y0 = volume.offset
    z = rng.choice([volume.z1, volume.z2, np.nan], n)
    z = np.where(np.isnan(z), rng.uniform(volume.z1, volume.z2, n), z)
    p = np.stack(
        [rng.uniform(x0 - reach, x0 + reach, n), rng.uniform(y0 - reach, y0 + reach, n), z]
    )
    p = p[:, volume.contains(p)]
    assert p.shape[1] > 50_000
    centre = 0.5 * (lo + hi)
    phi = centre + np.remainder(np.arctan2(p[1], p[0]) - centre + np.pi, 2 * np.pi) - np.pi
    assert phi.min() >= lo - 1e-12
    assert phi.max() <= hi + 1e-12
    assert phi.min() < lo + 0.01 * (hi - lo)
    assert phi.max() > hi - 0.01 * (hi - lo)


# --------------------------------------------------------------------------- the draw
class Labelled:
    """The parametric sampler with the A′ of q_T > 0.3 GeV labelled extrapolated."""

    def sample(self, mass: float, n: int, seed: int | None) -> dict:
        out = SAMPLER.sample(mass, n, seed=seed)
        return {**out, "extrapolated": np.asarray(out["qT"]) > 0.3}


CTAUS = np.array([1.0, 10.0])
"""cτ (m) for (p/m) cτ of ~0.1–1 km at m = 0.2 GeV: decays across SHADOWS's 19 m, the
acceptance spread over many samples (at short cτ a few fast A′ carry it)."""


def test_window_draw_agrees_with_the_full_circle_and_has_more_samples() -> None:
    """SHADOWS's geometry at m = 0.2 GeV: the acceptance, its ``in_volume`` and
    ``extrapolated_acceptance`` parts from 40,000 A′ drawn in the window (× its fraction
    f = 0.216) against 400,000 over the full circle: each pair within the family-wise 3σ
    (:func:`test_volumes.family_pull` over the 6 comparisons) of σ² = σ_w² + σ_u², σ the
    standard error of the mean of the per-sample values (the acceptance is their mean: an
    exact check that they carry f). The Kish size (Σa)²/Σa² per sample is 1/f = 4.63 times
    the full circle's in expectation (the window's a are those of the circle's A′ that cross,
    1/f as many per draw); over seeds it scatters by ~±5%: at least 4 asserted, and the
    share of samples with any acceptance likewise (binomial, ±2%)."""
    g = shadows()
    n_w, n_u = 40_000, 400_000
    win = draw(Labelled(), 0.2, n_w, g, seed=1, channel="ee")
    full = draw(Labelled(), 0.2, n_u, g, seed=2, channel="ee", azimuth_window=False)
    lo, hi = g.shapes().volume.azimuth_window()
    assert win.azimuth_fraction == pytest.approx((hi - lo) / (2 * math.pi), rel=1e-15)
    assert full.azimuth_fraction == pytest.approx(1.0, rel=EPS64)  # no window: no factor
    pull = family_pull(3 * len(CTAUS))
    for part in ("all", "in volume", "extrapolated"):
        values = []
        for s in (win, full):
            src = s.in_volume() if part == "in volume" else s
            a = per_sample_acceptance(src, CTAUS)
            if part == "extrapolated":
                a = a * s.extrapolated[:, None]
                total = s.extrapolated_acceptance(CTAUS)
            else:
                total = src.acceptance(CTAUS)
            # the mean of the per-sample values is the acceptance (n terms summed: rounding)
            np.testing.assert_allclose(a.mean(axis=0), total, rtol=1e-12)
            values.append((total, a.std(axis=0) / math.sqrt(s.n)))
        (a_w, e_w), (a_u, e_u) = values
        assert np.all(a_u > 10 * e_u), part  # resolved: a test of the factor, not of noise
        assert np.all(np.abs(a_w - a_u) < pull * np.hypot(e_w, e_u)), (part, a_w, a_u)

    a_w, a_u = win.acceptance_per_sample(CTAUS), full.acceptance_per_sample(CTAUS)
    kish_w = a_w.sum(axis=0) ** 2 / (a_w**2).sum(axis=0) / n_w
    kish_u = a_u.sum(axis=0) ** 2 / (a_u**2).sum(axis=0) / n_u
    assert np.all(kish_w > 4 * kish_u), (kish_w, kish_u)
    assert np.mean(a_w[:, 0] > 0) > 4 * np.mean(a_u[:, 0] > 0)


def test_window_keeps_every_other_random_step() -> None:
    """The window replaces the A′ azimuth's uniform U's map 2πU by φ0 + (φ1 − φ0)U and
    nothing else: the same q_T, E and decay angles, the azimuths on that map (rounding of
    atan2 and of two products: 1e-12 rad)."""
    g = shadows()
    lo, hi = g.shapes().volume.azimuth_window()
    n = 5_000
    args = (SAMPLER, 0.2, n, *np.random.SeedSequence(7).spawn(2), [DECAYS["ee"]],
            np.zeros(n, dtype=np.int64), 1.0 / 3.0)  # fmt: skip
    k_u, _, cos_u, phi_u = _kinematics(*args)
    k_w, _, cos_w, phi_w = _kinematics(*args, phi_range=(lo, hi))
    # the same draws through the same operations: equal to a few ulp (another CPU may fuse
    # or vectorise them differently)
    for w, u in ((cos_w, cos_u), (phi_w, phi_u), (k_w.pz, k_u.pz)):
        np.testing.assert_allclose(w, u, rtol=4 * EPS64, atol=4 * EPS64)
    # q_T from q_T cos φ, q_T sin φ: a few roundings apart
    np.testing.assert_allclose(np.hypot(k_w.px, k_w.py), np.hypot(k_u.px, k_u.py), rtol=1e-15)
    u = np.remainder(np.arctan2(k_u.py, k_u.px), 2 * np.pi) / (2 * np.pi)
    aw = lo + np.remainder(np.arctan2(k_w.py, k_w.px) - lo, 2 * np.pi)
    np.testing.assert_allclose(aw, lo + (hi - lo) * u, rtol=0, atol=1e-12)


AXIAL = {
    "window keys": {"l1": 30.0, "l2": 80.0, "theta_min": 0.0, "theta_max": 0.05},
    "cone shell": {"volume": {"shape": "cone", "theta_min": 0.01, "theta_max": 0.05, "z1": 30,
                              "z2": 80, "offset": [0.4, 0]},
                   "plane": {"shape": "circle", "radius": 3.0, "z": 85},
                   "daughters": {"require": "both", "min_energy": 1.0}},
    "box holding the axis": {"volume": {"shape": "box", "half_x": 1.0, "half_y": 1.5, "z1": 30,
                                        "z2": 80, "offset": [0.5, 0]},
                             "plane": {"shape": "rectangle", "half_x": 2, "half_y": 2, "z": 100}},
    "slab": {"volume": {"shape": "slab", "z1": 30, "z2": 80},
             "daughters": {"require": "both", "min_energy": 1.0, "theta_window": [0.0, 0.1]}},
}  # fmt: skip


@pytest.mark.parametrize("case", list(AXIAL))
def test_volume_reaching_the_axis_draws_as_before(case: str) -> None:
    """Where the volume reaches the beam axis (or is the window keys' cone) the draw is the
    full circle's: the same arrays as with the window turned off (the same random draws and
    operations: a few ulp at most) and no factor."""
    g = Geometry(**AXIAL[case])
    sh = g.shapes()
    assert sh.volume.azimuth_window() is None
    for path in (False, True):
        a = draw(SAMPLER, 0.3, 4_000, g, seed=5, channel="mumu", shapes=path)
        b = draw(SAMPLER, 0.3, 4_000, g, seed=5, channel="mumu", shapes=path, azimuth_window=False)
        assert a.azimuth_fraction == pytest.approx(1.0, rel=EPS64)
        for name in ("gbc", "hits", "cells"):
            np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=4 * EPS64, atol=0)
        np.testing.assert_allclose(a.acceptance(CTAUS), b.acceptance(CTAUS), rtol=4 * EPS64, atol=0)


def test_in_volume_is_the_windowed_decay_probability() -> None:
    """``in_volume`` of a windowed draw is f × the mean over its A′ of the exact probability
    of a decay in the box (:func:`gammastar.physics.volumes.shapes.decay_in_volume` along each
    ray from the origin), to the rounding of n-term sums."""
    g = shadows()
    n, mass = 20_000, 0.2
    smp = draw(SAMPLER, mass, n, g, seed=3, channel="ee")
    s_kin, s_dec = np.random.SeedSequence(3).spawn(2)
    k, _, _, _ = _kinematics(SAMPLER, mass, n, s_kin, s_dec, [DECAYS["ee"]],
                             np.zeros(n, dtype=np.int64), 1.0 / 3.0,
                             phi_range=g.shapes().volume.azimuth_window())  # fmt: skip
    u = np.stack([k.px, k.py, k.pz]) / k.p
    ell = (k.p / mass)[:, None] * CTAUS[None, :]
    p = np.where(k.ok[:, None], decay_in_volume(g.shapes().volume, np.zeros(3), u, ell), 0.0)
    expect = smp.azimuth_fraction * p.mean(axis=0)
    np.testing.assert_allclose(smp.in_volume().acceptance(CTAUS), expect, rtol=1e-12)
    assert np.all(expect > 0)
