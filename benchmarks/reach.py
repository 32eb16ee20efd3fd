"""Benchmark: a 60 × 60 (m_A′, ε) expected-exclusion scan with ±1σ/±2σ bands, against the same
exact calculation done per grid point, and against pyhf toys.

The efficient method (``gammastar.reach.scan.scan``): one exact CLs limit s_up per mass and band,
then the ε boundaries from N_sig(m, ε) = s_up(m). The reference, run in this script, is the
same exact hybrid CLs (``gammastar.reach.stats.cls(model, N_sig, method="exact")``, the public
per-point call) evaluated at every grid point's N_sig with the scan's own per-mass model,
a point excluded in a band where CLs < 1 − CL: the answer the scan must reproduce, computed
the naive way. Timed on a subset of grid points (random, plus the cells on either side of the
median boundary, where the two could disagree) and extrapolated to the 3600 points; the
classification of the subset (5 bands) is compared with the scan's boundaries. The N_sig grid
and the acceptance samples are shared (not timed for the reference): the ratio of the
statistics parts (scan limits + boundaries vs the per-point CLs) is the method's gain; the
whole scan (acceptance included) against acceptance + per-point CLs is also reported.
``--rounds`` rounds interleave the scan and the per-point subset (same machine load); best of
the rounds for each.

pyhf toys (the generic method at these low counts; the asymptotic formulae do not apply, see
gammastar.reach.stats): the toy calculator at ``--toy-points`` grid points with ``--ntoys``
pseudo-experiments per hypothesis (reduced counts), its time per point extrapolated to the grid
and its median expected CLs against the exact one.

Setup: NA62-like geometry and backgrounds (analysis/na62_dump.yaml), μμ + ee combined, a
synthetic yield (or ``--yields`` yields.json) and the analytic A′ sampler (or ``--flow``).
With ``--yields`` of a run whose yields carry the fitted extrapolation, the sampler is the
reach's own (``ExtrapolatedSampler``: the fitted model, as the NA62-like config's
``reach.flow: null`` has it; with ``--flow`` the flow inside the fiducial region), so that ``--nuisances`` includes the ``extrapolation`` nuisance at
the N_sig level (its error propagated on each mass's draw, a second pass of the limits), the
reach's costliest nuisance; both sides use the same sampler and grid.

``--detector box`` or ``frustum`` scans a shaped detector of the same length and plane instead
(the acceptance on the shapes' path cells; the statistics part is the same).

``--workers N`` also times the scan with its mass points on N worker processes
(``reach.workers``, gammastar.reach.scan.workers) in the same rounds, against the scan in one
process: the ratio, and the largest difference of the ε boundaries (ln ε) between the two.

Usage: OMP_NUM_THREADS=1 python benchmarks/reach.py [--subset 30] [--rounds 3] [--toy-points 1]
[--detector window|box|frustum] [--workers 2]
The last line of the output is one JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

from gammastar.config import load_config
from gammastar.physics.sampling import ParametricSampler
from gammastar.reach.scan import scan
from gammastar.reach.scan.settings import ScanSettings
from gammastar.reach.stats import cls
from gammastar.reach.stats.interface import BANDS
from gammastar.source.geometry import Geometry
from gammastar.source.production import Yields, load_yields, resolve_yield_scale

# Shaped detectors of the NA62-like volume's length and plane (z from the target, m): the
# scan through the shapes' path cells (gammastar.reach.acceptance.draw)
_PLANE = {"shape": "rectangle", "half_x": 2.0, "half_y": 2.0, "z": 196.5,
          "hole": {"shape": "circle", "radius": 0.1}}
_BOTH = {"require": "both", "min_energy": 10.0}
DETECTORS: dict[str, dict | None] = {
    "window": None,
    "box": {"volume": {"shape": "box", "half_x": 1.0, "half_y": 1.0, "z1": 82.0, "z2": 157.0,
                       "offset": [0.2, 0.0]},
            "plane": _PLANE, "daughters": _BOTH, "efficiency": 0.7},
    "frustum": {"volume": {"shape": "frustum", "half_x1": 0.5, "half_y1": 0.5, "half_x2": 1.5,
                           "half_y2": 1.5, "z1": 82.0, "z2": 157.0},
                "plane": _PLANE, "daughters": _BOTH, "efficiency": 0.7},
}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subset", type=int, default=30, help="random grid points, per-point CLs")
    ap.add_argument(
        "--boundary-masses", type=int, default=5, help="+4 cells each at the boundaries"
    )
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (best of)")
    ap.add_argument("--toy-points", type=int, default=1, help="points for the pyhf toy loop")
    ap.add_argument("--ntoys", type=int, default=100, help="toys per hypothesis (reduced)")
    ap.add_argument("--samples", type=int, default=10_000)
    ap.add_argument("--yields", type=Path, default=None)
    ap.add_argument("--flow", type=Path, default=None)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--detector",
        choices=sorted(DETECTORS),
        default="window",
        help="the NA62-like window keys, or a shaped volume of the same length (path cells)",
    )
    ap.add_argument(
        "--workers",
        type=int,
        default=1,
        help="also time the scan on this many worker processes (reach.workers)",
    )
    ap.add_argument(
        "--nuisances",
        action="store_true",
        help="also time the scan with the named nuisances (interleaved rounds)",
    )
    args = ap.parse_args()

    cfg = load_config(REPO / "analysis" / "na62_dump.yaml")
    rc = cfg.reach
    geo = Geometry.from_config(cfg.detector)
    if DETECTORS[args.detector] is not None:
        geo = Geometry(**DETECTORS[args.detector])
    if args.yields:
        yields = load_yields(args.yields)
    else:
        m = np.linspace(0.215, 1.1, 90)
        y = 3e-3 * np.exp(-(m - 0.2) / 0.4)  # NA60-like magnitude (per POT per ε², 0.01 λ_I)
        yields = Yields(m, y, 0.05 * y, {"target_interaction_lengths": 0.01})
    base = None
    if args.flow:
        from gammastar.flow.model import load

        base = load(args.flow)
    sampler = base if base is not None else ParametricSampler()
    if args.yields and (yields.extrapolation or {}).get("parameter_covariance"):
        from gammastar.corrections.pair_acceptance import FiducialRegion
        from gammastar.yields.extrapolation.result import Extrapolation
        from gammastar.yields.extrapolation.samplers import ExtrapolatedSampler

        ex = yields.extrapolation
        sampler = ExtrapolatedSampler(
            base, Extrapolation.from_dict(ex), FiducialRegion.from_dict(ex["fiducial"])
        )
        print(f"sampler: the fitted model{' outside the fiducial region' if base else ''}")
    lo, hi = yields.mass_range
    masses = np.linspace(max(lo, 0.215), hi, 60)
    eps = np.geomspace(rc.eps_min, rc.eps_max, 60)
    n_pot = float(rc.n_pot) * resolve_yield_scale(cfg, yields)[0]
    alpha = 1.0 - rc.cl
    settings = ScanSettings(
        geometry=geo,
        yields=yields,
        n_pot=n_pot,
        cl=rc.cl,
        method="exact",
        samples=args.samples,
        seed=args.seed,
        channels=tuple(rc.channels),
        background=rc.background,
        background_kappa=rc.background_kappa,
        efficiency_uncertainty=rc.efficiency_uncertainty,
        n_pot_unc=rc.n_pot_rel_uncertainty,
    )
    # other jobs on the machine inflate the timings: printed with them
    print(f"machine busy: {os.getloadavg()[0]:.1f} runnable processes (1-min mean)", flush=True)
    # warm-up, and the models and N_sig grid for the reference
    res = scan(masses, eps, sampler=sampler, settings=settings)
    rows = [i for i, mod in enumerate(res.models) if mod is not None]

    # the subset: random cells, plus the cells just inside and outside the median boundary
    rng = np.random.default_rng(args.seed)
    pts = [(int(rng.choice(rows)), int(j)) for j in rng.integers(0, eps.size, args.subset)]
    lo0, hi0 = res.boundaries["0"]
    with_region = [i for i in rows if np.isfinite(lo0[i])]
    boundary = []
    for i in rng.choice(with_region, min(args.boundary_masses, len(with_region)), replace=False):
        for edge in (lo0[i], hi0[i]):
            k = int(np.searchsorted(eps, edge))
            boundary += [(int(i), j) for j in (k - 1, k) if 0 <= j < eps.size]
    pts += boundary

    def per_point() -> tuple[float, list[list[bool]]]:
        t0 = time.perf_counter()
        out = []
        for i, j in pts:
            c = cls(res.models[i], float(res.nsig[i, j]), method="exact")
            out.append([v < alpha for v in c["CLs_exp"]])
        return (time.perf_counter() - t0) / len(pts), out

    nuis = None
    if args.nuisances:
        from gammastar.yields.nuisance import at_masses

        if yields.uncertainties:
            nuis = at_masses(yields.uncertainties, masses)
            nuis["data_stat"] = np.nan_to_num(yields.at(masses)[1])
        else:  # the demo's magnitudes (docs/explanation/reach.md, named nuisances)
            nuis = {
                k: np.full(masses.size, v)
                for k, v in {
                    "data_stat": 0.05,
                    "like_sign_r": 0.004,
                    "acceptance_lambda_theta": 0.04,
                    "extrapolation": 0.11,
                }.items()
            }
    with_nuis = dataclasses.replace(settings, signal_nuisances=nuis)
    scans, points, scans_nuis, scans_workers = [], [], [], []
    on_workers = dataclasses.replace(settings, workers=args.workers)
    for r in range(args.rounds):
        if args.workers > 1:
            t0 = time.perf_counter()
            rw = scan(masses, eps, sampler=sampler, settings=on_workers)
            scans_workers.append((time.perf_counter() - t0, rw))
            print(f"round {r + 1}: scan on {rw.workers} workers {scans_workers[-1][0]:.2f} s")
        if nuis is not None:
            t0 = time.perf_counter()
            rn = scan(masses, eps, sampler=sampler, settings=with_nuis)
            scans_nuis.append((time.perf_counter() - t0, rn.seconds))
            print(f"round {r + 1}: scan with nuisances {scans_nuis[-1][0]:.2f} s {rn.seconds}")
        t0 = time.perf_counter()
        rr = scan(masses, eps, sampler=sampler, settings=settings)
        scans.append((time.perf_counter() - t0, rr.seconds))
        t_pt, excluded = per_point()
        points.append(t_pt)
        print(
            f"round {r + 1}: scan {scans[-1][0]:.2f} s {rr.seconds}; per-point exact CLs "
            f"{t_pt * 1e3:.0f} ms/point",
            flush=True,
        )
    best = min(scans, key=lambda x: x[0])
    t_scan, parts = best
    t_stats = min(s[1]["limits"] + s[1]["boundaries"] for s in scans)
    t_acc = min(s[1]["acceptance"] for s in scans)
    t_pt = min(points)
    n_grid = sum(1 for _ in rows) * eps.size
    per_point_total = t_pt * n_grid

    # the same answer: the per-point classification against the scan's boundaries
    disagree = 0
    for (i, j), ex in zip(pts, excluded, strict=True):
        for b, e in zip(BANDS, ex, strict=True):
            lo_b, hi_b = res.boundaries[b][0][i], res.boundaries[b][1][i]
            inside = bool(np.isfinite(lo_b) and lo_b <= eps[j] <= hi_b)
            disagree += inside != e
    print(
        f"scan (best of {args.rounds}): {t_scan:.2f} s (statistics {t_stats:.2f} s, acceptance "
        f"{t_acc:.2f} s); per-point exact CLs {t_pt * 1e3:.0f} ms x {n_grid} points = "
        f"{per_point_total:.0f} s: {per_point_total / t_stats:.0f}x on the statistics, "
        f"{(per_point_total + t_acc) / t_scan:.0f}x whole; classification of {len(pts)} points "
        f"x 5 bands: {disagree} disagreement(s)",
        flush=True,
    )

    toys = []
    for i, j in boundary[: args.toy_points]:
        t0 = time.perf_counter()
        c = cls(res.models[i], float(res.nsig[i, j]), method="toys", ntoys=args.ntoys, seed=1)
        dt = time.perf_counter() - t0
        ex = cls(res.models[i], float(res.nsig[i, j]), method="exact")
        toys.append(
            {"s": dt, "cls_toys_median": c["CLs_exp"][2], "cls_exact_median": ex["CLs_exp"][2]}
        )
        print(
            f"pyhf toys ({args.ntoys}/hypothesis) at m = {masses[i]:.3f}, N_sig = "
            f"{res.nsig[i, j]:.2f}: {dt:.1f} s/point (median expected CLs {c['CLs_exp'][2]:.3f} "
            f"vs exact {ex['CLs_exp'][2]:.3f}) -> {dt * n_grid / 3600:.0f} h for the grid",
            flush=True,
        )
    t_toy = min((t["s"] for t in toys), default=float("nan"))
    out = {
        "benchmark": "reach",
        "grid": [60, 60],
        "grid_points_with_model": n_grid,
        "bands": list(BANDS),
        "channels": list(rc.channels),
        "method": res.method,
        "samples_per_mass": args.samples,
        "detector": args.detector,
        "rounds": args.rounds,
        "full_scan_s": round(t_scan, 3),
        "scan_parts_s": {k: round(v, 3) for k, v in parts.items()},
        "scan_statistics_s": round(t_stats, 3),
        "per_point_points": len(pts),
        "per_point_exact_s": round(t_pt, 5),
        "per_point_exact_extrapolated_s": round(per_point_total, 1),
        "speedup_statistics_vs_per_point_exact": round(per_point_total / t_stats, 1),
        "speedup_whole_vs_per_point_exact": round((per_point_total + t_acc) / t_scan, 1),
        "classification_disagreements": disagree,
        "toys": toys,
        "ntoys": args.ntoys,
        "toys_per_point_s": round(t_toy, 2),
        "toys_extrapolated_s": round(t_toy * n_grid, 0),
        "speedup_vs_toys": round(t_toy * n_grid / t_scan, 0),
        "load_average_end": os.getloadavg(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "cpu_count": os.cpu_count(),
    }
    if scans_workers:
        t_w, rw = min(scans_workers, key=lambda x: x[0])
        diff = max(
            float(np.nanmax(np.abs(np.log(a) - np.log(b)), initial=0.0))
            for k in res.boundaries
            for a, b in zip(rw.boundaries[k], res.boundaries[k], strict=True)
        )
        out["with_workers"] = {
            "workers": rw.workers,
            "full_scan_s": round(t_w, 3),
            "speedup_vs_one_process": round(t_scan / t_w, 2),
            "max_boundary_ln_eps_difference": diff,
        }
        print(f"scan on {rw.workers} workers (best of {args.rounds}): {t_w:.2f} s, "
              f"{t_scan / t_w:.2f}x one process; boundaries differ by {diff:.1e} in ln eps")
    if nuis is not None:
        t_n = min(x[0] for x in scans_nuis)
        t_ns = min(x[1]["limits"] + x[1]["boundaries"] for x in scans_nuis)
        t0 = time.perf_counter()
        ri = scan(
            masses,
            eps,
            sampler=sampler,
            settings=dataclasses.replace(with_nuis, impact_points=4),
        )
        out["with_nuisances"] = {
            "names": sorted(nuis),
            "extrapolation_at_nsig": ri.extrapolation_nsig is not None,
            "full_scan_s": round(t_n, 3),
            "scan_statistics_s": round(t_ns, 3),
            "ratio_full": round(t_n / t_scan, 3),
            "ratio_statistics": round(t_ns / t_stats, 3),
            "with_impact_4_masses_s": round(time.perf_counter() - t0, 3),
            "impact_s": round(ri.seconds.get("impact", 0.0), 3),
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
