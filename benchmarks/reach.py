"""Benchmark: a 60 × 60 (m_A′, ε) expected-exclusion scan with ±1σ/±2σ bands.

The efficient method (gammastar.reach.scan: one exact CLs limit per mass, ε boundaries from
N_sig(m, ε) = s_up(m)) against a naive loop that calls ``pyhf.infer.hypotest`` at every grid
point (asymptotic calculator, expected set; N_sig per point precomputed, so the naive loop is
timed for its hypothesis tests only), on a random subset of grid points, extrapolated to the
3600 points. Also the naive loop with pyhf toys on a few points (what low counts require).

Setup: NA62-like geometry and backgrounds (analysis/na62_dump.yaml), μμ + ee combined, a
synthetic yield (or ``--yields`` yields.json) and the analytic A′ sampler (or ``--flow``).

Usage: OMP_NUM_THREADS=1 python benchmarks/reach.py [--subset 40] [--toy-points 2]
The last line of the output is one JSON object.
"""

from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/ holds select.py etc.: keep it off sys.path so the stdlib `select` is found
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import json
import os
import time

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from gammastar.acceptance import Geometry, ParametricSampler
from gammastar.config import load_config
from gammastar.reach import Yields, load_yields, resolve_yield_scale, scan, signal_events
from gammastar.stats import Channel, Model, build_spec, quiet_pyhf, validate_spec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--subset", type=int, default=40, help="grid points for the naive loop")
    ap.add_argument("--toy-points", type=int, default=2, help="points for the naive toy loop")
    ap.add_argument("--ntoys", type=int, default=500)
    ap.add_argument("--samples", type=int, default=10_000)
    ap.add_argument("--yields", type=Path, default=None)
    ap.add_argument("--flow", type=Path, default=None)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    import pyhf

    cfg = load_config(REPO / "analysis" / "na62_dump.yaml")
    rc = cfg.reach
    geo = Geometry.from_config(cfg.detector)
    if args.yields:
        yields = load_yields(args.yields)
    else:
        m = np.linspace(0.215, 1.1, 90)
        y = 3e-3 * np.exp(-(m - 0.2) / 0.4)  # NA60-like magnitude (per POT per ε², 0.01 λ_I)
        yields = Yields(m, y, 0.05 * y, {"target_interaction_lengths": 0.01})
    if args.flow:
        from gammastar import flow

        sampler = flow.load(args.flow)
    else:
        sampler = ParametricSampler()
    lo, hi = yields.mass_range
    masses = np.linspace(max(lo, 0.215), hi, 60)
    eps = np.geomspace(rc.eps_min, rc.eps_max, 60)
    n_pot = float(rc.n_pot) * resolve_yield_scale(cfg, yields)[0]
    channels = tuple(rc.channels)
    common = {
        "channels": channels,
        "background": rc.background,
        "background_kappa": rc.background_kappa,
        "efficiency_uncertainty": rc.efficiency_uncertainty,
        "n_pot_unc": rc.n_pot_rel_uncertainty,
    }

    # ---------------------------------------------------------------- efficient scan
    t0 = time.perf_counter()
    res = scan(
        masses,
        eps,
        sampler=sampler,
        geometry=geo,
        yields=yields,
        n_pot=n_pot,
        cl=rc.cl,
        method="auto",
        samples=args.samples,
        seed=args.seed,
        **common,
    )
    t_fast = time.perf_counter() - t0
    n_excl = int(np.isfinite(res.boundaries["0"][0]).sum())
    print(
        f"efficient scan 60x60 (+/-2 sigma bands, method {res.method}): {t_fast:.2f} s "
        f"{res.seconds}; {n_excl}/60 masses with an excluded region"
    )

    # ---------------------------------------------------------------- naive per-point loop
    rng = np.random.default_rng(args.seed)
    pts = [
        (int(i), int(j))
        for i, j in zip(
            rng.integers(0, 60, args.subset), rng.integers(0, 60, args.subset), strict=True
        )
    ]
    samples = {}

    def point_model(i: int, j: int) -> tuple[float, Model] | None:
        from gammastar.acceptance import draw

        if i not in samples:
            s = int(np.random.SeedSequence(args.seed).spawn(60)[i].generate_state(1)[0])
            samples[i] = draw(sampler, float(masses[i]), args.samples, geo, seed=s)
        y_i, rel = yields.at(masses[i])
        parts = signal_events(
            float(masses[i]),
            eps[j : j + 1],
            yield_per_pot_eps2=float(y_i),
            n_pot=n_pot,
            sample=samples[i],
            channels=channels,
        )
        chans = [
            Channel(
                c,
                [max(parts[c][0], 1e-12)],
                [rc.background[c]],
                bkg_kappa=rc.background_kappa[c],
                eff_unc=rc.efficiency_uncertainty,
                mc_stat=float(rel),
            )
            for c in channels
        ]
        return sum(parts[c][0] for c in channels), Model(chans, n_pot_unc=rc.n_pot_rel_uncertainty)

    prepared = []
    for i, j in pts:
        _, mod = point_model(i, j)
        ws = validate_spec(build_spec(mod, observed=False))
        with quiet_pyhf():
            pm = ws.model()
            prepared.append((pm, ws.data(pm)))
    t0 = time.perf_counter()
    for pm, data in prepared:
        with quiet_pyhf():
            pyhf.infer.hypotest(1.0, data, pm, return_expected_set=True)
    t_naive = (time.perf_counter() - t0) / len(prepared)
    naive_total = t_naive * 3600
    print(
        f"naive pyhf.infer.hypotest (asymptotics) per point: {t_naive * 1e3:.1f} ms "
        f"-> {naive_total:.0f} s for 3600 points"
    )

    t_toy = float("nan")
    if args.toy_points > 0:
        from gammastar.stats import _toy_cls

        t0 = time.perf_counter()
        for pm, data in prepared[: args.toy_points]:
            with quiet_pyhf():
                _toy_cls(pm, data, 1.0, args.ntoys)  # pyhf ToyCalculator, expected set
        t_toy = (time.perf_counter() - t0) / args.toy_points
        print(
            f"naive pyhf toys ({args.ntoys}/hypothesis) per point: {t_toy:.1f} s "
            f"-> {t_toy * 3600 / 3600:.1f} h for 3600 points"
        )

    speedup = naive_total / t_fast
    out = {
        "benchmark": "reach",
        "grid": [60, 60],
        "bands": ["-2", "-1", "0", "+1", "+2"],
        "channels": list(channels),
        "method": res.method,
        "samples_per_mass": args.samples,
        "full_scan_s": round(t_fast, 3),
        "scan_parts_s": {k: round(v, 3) for k, v in res.seconds.items()},
        "naive_points": len(prepared),
        "naive_asymptotic_per_point_s": round(t_naive, 5),
        "naive_asymptotic_extrapolated_s": round(naive_total, 1),
        "speedup_vs_naive_asymptotic": round(speedup, 1),
        "naive_toys_per_point_s": round(t_toy, 2),
        "naive_toys_extrapolated_s": round(t_toy * 3600, 0),
        "speedup_vs_naive_toys": round(t_toy * 3600 / t_fast, 0),
        "target_speedup": 50,
        "target_full_scan_s": 60,
        "pass": bool(speedup >= 50 and t_fast < 60),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "cpu_count": os.cpu_count(),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
