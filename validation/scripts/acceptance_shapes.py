"""Shaped detectors: the acceptance of ``gammastar.reach.acceptance.draw`` against a brute-force
Monte Carlo of decay points, per volume shape.

Claim: for every decay-volume shape (cylinder, conical shell, off-axis box, frustum, slab),
each with a detection plane and daughter requirements that make the verdict depend on the
decay vertex, the acceptance ``draw(...).acceptance(cτ)`` (exact entry and exit of each A′ ray,
``z_steps`` path cells per crossing with the verdict at their mid-points, P per run of hit cells
e^{−s_in/ℓ} − e^{−s_out/ℓ}, ℓ = (p/m) cτ) agrees with decay points drawn from the exponential
law, counted when ``contains`` holds and the daughters (or the A′ line) propagated to the plane
pass the requirements, within the MC's error at every (m, cτ) point; the largest pull within
3σ's Šidák bound for the family of all points.

Both sides use the same A′ and daughters (``draw``'s, rebuilt from its seed); the MC's error
is the binomial bound √(P̄(1 − P̄)/N) (given the A′ the count is a sum of independent
Bernoulli(P_i)), P̄ the acceptance under test / efficiency. The detectors and the first five
points are those of ``tests/test_acceptance_shapes.py``, here with more A′ and more points
(short-lived to long-lived), and the ψ₂ → ψ₁ee chain of ``draw_dark`` in the frustum.

Usage::

    python validation/scripts/acceptance_shapes.py [--samples 400000] [--z-steps 24]

Prints the agreement table (shape, m, cτ, acceptance, MC ± err, pull) as Markdown; the last
line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from statistics import NormalDist

import numpy as np

from gammastar.physics.darksector import IDM
from gammastar.physics.sampling import ParametricSampler
from gammastar.reach.acceptance import draw
from gammastar.reach.acceptance.dark import draw_dark
from gammastar.source.dark_decays import _psi2_kin, dark_chains
from gammastar.source.decays import DECAYS
from gammastar.source.eventgen import _kinematics
from gammastar.source.geometry import Geometry

CASES: dict[str, dict] = {
    "cylinder": {
        "volume": {"shape": "cylinder", "radius": 1.5, "z1": 30, "z2": 80, "offset": [0.5, 0]},
        "plane": {"shape": "circle", "radius": 2.5, "z": 100,
                  "hole": {"shape": "circle", "radius": 0.1}},
        "daughters": {"require": "aprime"},
    },
    "cone shell": {
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
POINTS = [(0.3, 0.3), (0.3, 3.0), (0.6, 0.6), (0.6, 10.0), (1.0, 1.0),
          (0.3, 0.05), (0.6, 100.0), (1.0, 0.1)]  # fmt: skip
"""(m in GeV, cτ in m); the last three add a short-lived point (decays crowd the volume's
entrance: where mid-point cells would show a bias) and a very long-lived one."""
DARK_POINTS = (3.0, 30.0)
"""cτ(ψ₂) in m of the ψ₂ → ψ₁ee chain (m_A′ 0.6, m₁ 0.2, m₂ 0.28 GeV) in the frustum."""


def family_pull(m: int, alpha: float = 0.0027) -> float:
    """3σ's two-sided bound for a family of m comparisons (Šidák; tests/test_volumes.py)."""
    return NormalDist().inv_cdf(1 - (1 - (1 - alpha) ** (1 / m)) / 2)


def aprime_rows(args: argparse.Namespace) -> list[dict]:
    sampler, n, rows = ParametricSampler(), args.samples, []
    for name, spec in CASES.items():
        g = Geometry(**spec, z_steps=args.z_steps)
        assert not g.window_geometry
        sh = g.shapes()
        for mass in sorted({m for m, _ in POINTS}):
            smp = draw(sampler, mass, n, g, seed=args.seed, channel="mumu")
            s_kin, s_dec = np.random.SeedSequence(args.seed).spawn(2)
            # as draw: the azimuths in an off-axis volume's window, the acceptance × its share
            k, daughters, _, _ = _kinematics(sampler, mass, n, s_kin, s_dec, [DECAYS["mumu"]],
                                             np.zeros(n, dtype=np.int64), 1.0 / 3.0,
                                             phi_range=sh.volume.azimuth_window())  # fmt: skip
            if not np.array_equal(smp.gbc, np.where(k.ok, k.p / mass, 1.0)):
                raise SystemExit("the rebuilt A' are not draw's: its seeding changed")
            parent = np.stack([k.px, k.py, k.pz, k.e])
            u = parent[:3] / k.p
            for ctau in [c for m, c in POINTS if m == mass]:
                key = (list(CASES).index(name), POINTS.index((mass, ctau)))
                rng = np.random.default_rng(np.random.SeedSequence(args.seed + 1, spawn_key=key))
                vertex = rng.exponential(k.p / mass * ctau) * u
                seen = sh.requirements.accept(daughters, vertex, sh.plane, parent=parent)
                hit = k.ok & sh.volume.contains(vertex) & seen
                rows.append(row(name, mass, ctau, float(smp.acceptance(ctau)), hit, n,
                                g.efficiency * smp.azimuth_fraction))  # fmt: skip
    return rows


def dark_rows(args: argparse.Namespace) -> list[dict]:
    sampler, n, rows = ParametricSampler(), args.samples, []
    model = IDM(m_aprime=0.6, m1=0.2, delta=0.4, alpha_d=0.1)
    g = Geometry(**CASES["frustum"], z_steps=args.z_steps)
    sh, angle = g.shapes(semivisible=True), 0.002
    smp = draw_dark(sampler, model, g, n, final_state="ee", min_opening_angle=angle,
                    seed=args.seed)  # fmt: skip
    d = dark_chains(sampler, model, n, chains={"psi1 psi2": 1.0}, channels={"ee": 1.0},
                    seed=args.seed)  # fmt: skip
    m2 = float(model.m2)
    kin, fwd = _psi2_kin(d["k"], d["psi2"], m2)
    u = np.stack([kin.px, kin.py, kin.pz]) / kin.p
    lm, lp = d["lminus"], d["lplus"]
    na, nb = np.linalg.norm(lm[:3], axis=0), np.linalg.norm(lp[:3], axis=0)
    opening = np.arccos(np.clip(np.sum(lm[:3] * lp[:3], axis=0) / (na * nb), -1, 1))
    for i, ctau in enumerate(DARK_POINTS):
        rng = np.random.default_rng(np.random.SeedSequence(args.seed + 2, spawn_key=(i,)))
        vertex = rng.exponential(kin.p / m2 * ctau) * u
        hit = fwd & sh.volume.contains(vertex) & (opening >= angle)
        hit &= sh.requirements.accept((lm, lp), vertex, sh.plane)
        rows.append(row("frustum, ψ₂ → ψ₁ee", model.m2, ctau, float(smp.acceptance(ctau)), hit,
                        n, 1.0))  # fmt: skip
    return rows


def row(name: str, mass: float, ctau: float, acc: float, hit: np.ndarray, n: int,
        eff: float) -> dict:  # fmt: skip
    mc = eff * float(hit.mean())
    p = acc / eff
    err = eff * math.sqrt(max(p * (1 - p), 0.0) / n)
    pull = (acc - mc) / err if err > 0 else 0.0
    return {"shape": name, "mass": float(mass), "ctau": ctau, "acceptance": acc, "mc": mc,
            "err": err, "pull": pull, "detected": int(hit.sum())}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=400_000, help="A′ per (shape, mass)")
    ap.add_argument("--z-steps", type=int, default=24, help="path cells per crossing")
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows = aprime_rows(args) + dark_rows(args)
    tested = [r for r in rows if r["detected"] >= 100]
    bound = family_pull(len(tested))
    print("| shape | m (GeV) | cτ (m) | acceptance | MC ± err | pull |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        note = "" if r["detected"] >= 100 else " (too few decays to test)"
        print(f"| {r['shape']} | {r['mass']:.2f} | {r['ctau']:g} | {r['acceptance']:.4e} | "
              f"{r['mc']:.4e} ± {r['err']:.1e} | {r['pull']:+.2f}{note} |")  # fmt: skip
    worst = max(abs(r["pull"]) for r in tested)
    met = worst < bound
    print(f"\n{len(tested)} points tested, max |pull| {worst:.2f} against the family bound "
          f"{bound:.2f}: {'met' if met else 'NOT met'} ({time.perf_counter() - t0:.0f} s)")  # fmt: skip
    print(json.dumps({"study": "acceptance_shapes", "samples": args.samples,
                      "z_steps": args.z_steps, "points": len(tested), "max_abs_pull": worst,
                      "family_bound": bound, "met": met,
                      "mean_pull": float(np.mean([r["pull"] for r in tested])),
                      "rows": rows}))  # fmt: skip


if __name__ == "__main__":
    main()
