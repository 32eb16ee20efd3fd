"""`gammastar events` with a shaped detector (gammastar.source.eventgen.generate and
gammastar.source.dark_events.generate_dark on :mod:`gammastar.physics.volumes`): decay vertices inside the shaped volume,
the verdict of its requirements, and the sum of weights against the acceptance."""

from __future__ import annotations

import math

import numpy as np
from _tolerance import assert_same_decisions
from test_dark_events import dark_config
from test_events import assert_sum_of_weights_is_the_reachs, make_config, read_table

from gammastar.events.stage import EventRequest, run_dark_events, run_events
from gammastar.source.geometry import Geometry

# SHiP-like: a frustum beside the beam line, a rectangular plane with a beam hole behind it,
# both muons with an energy cut and a separation at the plane
FRUSTUM = {
    "volume": {"shape": "frustum", "half_x1": 0.5, "half_y1": 1.0, "half_x2": 1.5, "half_y2": 2.5,
               "z1": 30.0, "z2": 80.0, "offset": [0.3, 0.0]},
    "plane": {"shape": "rectangle", "half_x": 2.0, "half_y": 3.0, "z": 90.0, "offset": [0.3, 0.0],
              "hole": {"shape": "circle", "radius": 0.1}},
    "daughters": {"require": "both", "min_energy": 1.0, "min_separation": 0.02},
    "efficiency": 0.9,
    "z_steps": 32,
}  # fmt: skip


def columns(t, name: str) -> np.ndarray:
    return np.stack([t[f"{name}_{c}"].to_numpy() for c in ("px", "py", "pz", "E")])


def test_shaped_events_decay_inside_and_sum_to_the_acceptance(tmp_path):
    """Every event with a decay weight has its vertex inside the frustum (drawn along the A′
    line from the production vertex: beam spot and depth), its path and time on that line; the
    ``detected`` flag is the shapes' verdict on the written muons at the written vertex; Σ weight
    is the reach's N_sig from ``draw`` (A′ from the target's origin) within 4σ of the events'
    statistics (σ² = Σw², plus the reference's share n/N): the beam spot (1–2 mm) and depth
    (λ_I = 0.18 m) against a volume 30 m away move it by far less."""

    cfg = make_config(tmp_path, detector=FRUSTUM)
    geo = Geometry.from_config(cfg.detector)
    assert not geo.window_geometry
    mass, eps, n = 0.45, 1e-6, 20_000
    res = run_events(cfg, EventRequest(n=n, output=tmp_path / "e.parquet"), mass=mass, eps=eps,
                     channels=("mumu",), decay="isotropic").document  # fmt: skip
    t = read_table(tmp_path / "e.parquet")
    sh = geo.shapes()
    vertex = np.stack([t.decay_x, t.decay_y, t.decay_z])
    prod = np.stack([t.prod_x, t.prod_y, t.prod_z])
    inv = t.weight_decay.to_numpy() > 0
    assert inv.sum() > 0.2 * len(t)
    assert sh.volume.contains(vertex[:, inv]).all()
    assert t.prod_z.max() > 0.05
    assert np.ptp(t.prod_x) > 1e-3
    a = columns(t, "aprime")
    path = np.linalg.norm(vertex - prod, axis=0)
    p = np.linalg.norm(a[:3], axis=0)
    # on the A′ line: the vertex − production point is path × p/|p| (rounding of m-sized sums)
    np.testing.assert_allclose(vertex - prod, path * a[:3] / p, rtol=0, atol=1e-9)
    np.testing.assert_allclose(t.decay_t, path * a[3] / p, rtol=1e-12)
    # the detector's verdict again on the written columns: the same cuts, so equal but where
    # a rounding of the columns tips one (tests/_tolerance.py)
    d1, d2 = columns(t, "d1"), columns(t, "d2")
    assert_same_decisions(
        t.detected.to_numpy(),
        inv & sh.seen(a, (d1, d2), vertex),
        lambda a, d1, d2, v: inv & sh.seen(a, (d1, d2), v),
        (a, d1, d2, vertex),
    )
    assert 100 < t.detected.sum() < inv.sum()
    rel_sigma = assert_sum_of_weights_is_the_reachs(res, mass, eps, n, geo)
    assert rel_sigma < 0.1  # the test has power


def test_shaped_dark_events_decay_inside(tmp_path):
    """Semi-visible events in the frustum: the forced ψ₂'s vertex lies inside wherever it has a
    decay weight, on the ψ₂ line from the production vertex; Σ weight is the reach's
    expectation (``draw_dark`` on the same shapes) within 5σ, as for the window keys."""
    cfg = dark_config(tmp_path, detector={**FRUSTUM, "daughters": {"require": "both",
                                                                    "min_energy": 0.3}})  # fmt: skip
    res = run_dark_events(cfg, EventRequest(n=6000, output=tmp_path / "d.parquet", seed=7),
                          mass=0.6, eps=3e-4).document  # fmt: skip
    t = read_table(tmp_path / "d.parquet")
    sh = Geometry.from_config(cfg.detector).shapes(semivisible=True)
    vertex = np.stack([t.decay_x, t.decay_y, t.decay_z])
    inv = t.p_decay.to_numpy() > 0
    assert inv.sum() > 0.2 * len(t)
    assert sh.volume.contains(vertex[:, inv]).all()
    psi2 = columns(t, "psi2")
    prod = np.stack([t.prod_x, t.prod_y, t.prod_z])
    path = np.linalg.norm(vertex - prod, axis=0)
    np.testing.assert_allclose(vertex - prod, path * psi2[:3] / np.linalg.norm(psi2[:3], axis=0),
                               rtol=0, atol=1e-9)  # fmt: skip
    seen = sh.seen(psi2, (columns(t, "lminus"), columns(t, "lplus")), vertex)
    assert not np.any(t.detected.to_numpy() & ~(inv & seen))
    exp = res["meta"]["n_sig_expected_psi1_psi2"]
    sw, sw2 = res["sum_weight"], res["sum_weight2"]
    err = math.sqrt(sw2) * math.sqrt(1 + 1 / 5)
    assert exp > 0
    assert abs(sw - exp) < 5 * err, (sw, exp, err)
    assert err / sw < 0.15
