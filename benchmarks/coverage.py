"""Coverage of the quoted N_sig uncertainty on the mock (issue 19, item 4).

Independent mock realisations of one config (generator seeds ``--first-seed`` …, the config's
data size) are each taken through ``generate`` → ``select`` → ``yields`` (with the config's
``uncertainties``); at each mass and cτ the data-driven N_sig = Y(m)·𝓔(m, cτ) per POT per ε²
per unit BR (as :func:`gammastar.mock.closure.reach_closure` defines it) gets the quoted
relative error σ = √(Σ_named r² + σ_MC²): every named nuisance of ``yields.json`` at that mass
(``data_stat``, ``like_sign_r``, ``acceptance_lambda_theta``, ``eta_mumu``, ``extrapolation``)
and the binomial error of the A′ samples' acceptance. The truth (the generator's γ*, at the
data's mass resolution; computed once, ``--truth-sources``) is inside the ±1σ (±2σ) interval
when |N_dd − N_truth| ≤ 1 (2) × √(σ² N_dd² + σ_truth² N_truth²), σ_truth the truth's own
statistical error. The fractions should be 68% (95%) within their binomial errors.

Reduced on purpose: the A′ kinematics inside the fiducial region come from one fixed flow
(``--flow``, trained on one realisation; retraining per realisation is not affordable here),
so the kinematic model's fluctuation is not sampled and ``kinematic_model`` is not in σ; each
realisation's own extrapolation fit is used outside the fiducial region.

Usage: python benchmarks/coverage.py --flow runs/na60_like/flow [--realisations 30]
The last line of the output is one JSON object.
"""

from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/ holds select.py etc.: keep it off sys.path so the stdlib `select` is found
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import json
import math
import os
import time
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def realisation(cfg: Any) -> None:
    """generate → select → yields for one config (its own seed and run directory)."""
    import gammastar

    gammastar.generate(cfg, force=True)
    gammastar.select(cfg, force=True)
    gammastar.yields(cfg, force=True, plots=False, theory=False)


def truth_side(cfg: Any, run: Path, masses, ctaus, geo, *, sources: int, samples: int, seed: int):
    """Truth Y(m)·𝓔(m, cτ) and its relative statistical error, per (mass, cτ)."""
    from gammastar import rundir
    from gammastar.acceptance import draw
    from gammastar.mock.detector import Detector
    from gammastar.mock.truth import (
        TruthSampler,
        empirical_smearing,
        truth_aprime_yield,
        truth_gstar,
    )
    from gammastar.reach import Yields, load_yields
    from gammastar.unfold import EfficiencyMap

    y_dd = load_yields(run / rundir.YIELDS)
    edges = np.asarray(y_dd.extrapolation["bin_edges"]) if y_dd.extrapolation else None
    truth = truth_gstar(cfg, sources, seed=seed)
    det = Detector(cfg.mock.detector, EfficiencyMap.unity())
    smear = empirical_smearing(run / rundir.MOCK)
    ty = truth_aprime_yield(
        truth, edges, m_lepton=cfg.input.lepton_mass, sigma_m=det.sigma_m, seed=seed, smear=smear
    )
    y_tr = Yields(ty.mass, ty.per_pot_per_eps2, ty.stat_err, {})
    ts = TruthSampler(truth)
    out = {}
    for m in masses:
        a = draw(ts, m, samples, geo, seed=seed + 2).acceptance(ctaus)
        y, rel = (float(v[0]) for v in y_tr.at([m]))
        for k, ct in enumerate(ctaus):
            rel_a = math.sqrt(max(a[k] * (1 - a[k]), 0.0) / samples) / a[k] if a[k] > 0 else 0
            out[(m, float(ct))] = (y * float(a[k]), math.hypot(rel, rel_a))
    return out


def data_side(cfg: Any, run: Path, flow_model: Any, masses, ctaus, geo, *, samples: int, seed: int):
    """Data-driven N_sig per (mass, cτ) and its quoted relative error (module docstring)."""
    from gammastar import rundir
    from gammastar.acceptance import draw
    from gammastar.extrapolation import ExtrapolatedSampler, Extrapolation
    from gammastar.pair_acceptance import FiducialRegion
    from gammastar.reach import load_yields
    from gammastar.uncertainties import at_masses

    y = load_yields(run / rundir.YIELDS)
    ex = y.extrapolation
    sampler = ExtrapolatedSampler(
        flow_model, Extrapolation.from_dict(ex), FiducialRegion.from_dict(ex["fiducial"])
    )
    sizes = at_masses(y.uncertainties or {}, masses)
    out = {}
    for i, m in enumerate(masses):
        a = draw(sampler, m, samples, geo, seed=seed + 1).acceptance(ctaus)
        yv, rel_stat = (float(v[0]) for v in y.at([m]))
        named = {k: float(v[i]) for k, v in sizes.items()}
        named["data_stat"] = rel_stat
        for k, ct in enumerate(ctaus):
            rel_a = math.sqrt(max(a[k] * (1 - a[k]), 0.0) / samples) / a[k] if a[k] > 0 else 0
            sigma = math.sqrt(sum(r**2 for r in named.values()) + rel_a**2)
            out[(m, float(ct))] = (yv * float(a[k]), sigma, named)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=REPO / "analysis" / "na60_like.yaml")
    ap.add_argument("--flow", type=Path, required=True, help="fixed flow (fiducial kinematics)")
    ap.add_argument("--realisations", type=int, default=30)
    ap.add_argument("--first-seed", type=int, default=1000)
    ap.add_argument("--masses", type=float, nargs="+", default=[0.3, 0.6, 0.9])
    ap.add_argument("--ctaus", type=float, nargs="+", default=[1.0, 100.0])
    ap.add_argument("--truth-sources", type=int, default=4_000_000)
    ap.add_argument("--samples", type=int, default=40_000)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/gammastar_coverage"))
    ap.add_argument("--seed", type=int, default=11, help="truth and A′ samples")
    args = ap.parse_args(argv)

    from gammastar import flow
    from gammastar.acceptance import Geometry
    from gammastar.config import load_config

    base = load_config(args.config)
    geo = Geometry.from_config(base.detector)
    model = flow.load(args.flow)
    masses, ctaus = list(args.masses), np.asarray(args.ctaus, dtype=float)
    rows: list[dict[str, Any]] = []
    truth = None
    t0 = time.perf_counter()
    for r in range(args.realisations):
        seed = args.first_seed + r
        run = args.workdir / f"seed{seed}"
        run.mkdir(parents=True, exist_ok=True)
        cfg = base.model_copy(update={"seed": seed, "output": str(run)})
        realisation(cfg)
        if truth is None:
            truth = truth_side(
                cfg, run, masses, ctaus, geo,
                sources=args.truth_sources, samples=args.samples, seed=args.seed,
            )  # fmt: skip
        dd = data_side(cfg, run, model, masses, ctaus, geo, samples=args.samples, seed=args.seed)
        for key, (n_dd, sig, named) in dd.items():
            n_tr, sig_tr = truth[key]
            width = math.hypot(sig * n_dd, sig_tr * n_tr)
            rows.append({
                "seed": seed, "mass": key[0], "ctau": key[1], "nsig_dd": n_dd,
                "nsig_truth": n_tr, "rel_sigma": sig, "rel_sigma_truth": sig_tr,
                "pull": (n_dd - n_tr) / width if width > 0 else float("nan"),
                "named": named,
            })  # fmt: skip
        print(f"realisation {r + 1}/{args.realisations} (seed {seed}): "
              f"{time.perf_counter() - t0:.0f} s", flush=True)  # fmt: skip
    table = []
    for m in masses:
        for ct in ctaus:
            p = np.array([x["pull"] for x in rows if x["mass"] == m and x["ctau"] == ct])
            n = p.size
            f1, f2 = float(np.mean(np.abs(p) <= 1)), float(np.mean(np.abs(p) <= 2))
            sel = [x for x in rows if x["mass"] == m and x["ctau"] == ct]
            table.append({
                "mass": m, "ctau": float(ct), "n": n,
                "cover_1sigma": f1, "cover_1sigma_err": math.sqrt(f1 * (1 - f1) / n),
                "cover_2sigma": f2, "cover_2sigma_err": math.sqrt(f2 * (1 - f2) / n),
                "mean_pull": float(np.mean(p)), "rms_pull": float(np.std(p)),
                "mean_ratio_dd_truth": float(np.mean([x["nsig_dd"] / x["nsig_truth"] for x in sel])),
                "mean_rel_sigma": float(np.mean([x["rel_sigma"] for x in sel])),
                "pulls": [round(float(v), 4) for v in p],
            })  # fmt: skip
            t = table[-1]
            print(f"m = {m:.2f} GeV, ctau = {ct:g} m: ±1σ {f1:.2f} ± {t['cover_1sigma_err']:.2f}, "
                  f"±2σ {f2:.2f} ± {t['cover_2sigma_err']:.2f}; mean pull {t['mean_pull']:+.2f}, "
                  f"rms {t['rms_pull']:.2f}; dd/truth {t['mean_ratio_dd_truth']:.3f}; "
                  f"quoted σ {t['mean_rel_sigma']:.3f}", flush=True)  # fmt: skip
    out = {
        "benchmark": "coverage",
        "config": str(args.config),
        "flow": str(args.flow),
        "realisations": args.realisations,
        "seeds": [args.first_seed, args.first_seed + args.realisations - 1],
        "truth_sources": args.truth_sources,
        "samples": args.samples,
        "table": table,
        "seconds": round(time.perf_counter() - t0, 1),
        "load_average_end": os.getloadavg(),
    }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
