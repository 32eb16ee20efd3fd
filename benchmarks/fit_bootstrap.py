"""The extrapolation fit's N_sig error: the sandwich against a bootstrap of the pairs (issue 19).

:func:`gammastar.yields.extrapolation.nsig_error_parts` carries the weighted fit's sandwich covariance
to N/Y_F (its ``fit`` part, the reference here). This script refits the fit groups that set
the model at the mass (:meth:`~gammastar.yields.extrapolation.Extrapolation.group_weights`) to
``--replicas`` Poisson(1) resamples of the realisation's pairs
(:func:`gammastar.yields.extrapolation.refit`, σ_y and ȳ held as the nominal fit holds them, the
same region) and recomputes N/Y_F for each on the nominal draw (the moved world of
:func:`gammastar.yields.extrapolation.nsig_lambda_theta` with the region and the fiducial yield
unchanged: f_F by quadrature, the model's samples reweighted). Printed per realisation, mass
and cτ: the replicas' standard deviation of ln(N/Y_F), the sandwich's part and their ratio
(± 1/√(2(B − 1)), the standard deviation's own error); the same resampling assumption as the
sandwich (independent pairs), so a ratio away from 1 is the fit's non-linearity or the
sandwich's finite-sample error, not the pairs' correlations.

Usage::

    python benchmarks/fit_bootstrap.py --runs /tmp/s28/workA/full_seed139{0,1,2} \\
        --flow /tmp/s28/fix/flow_a+0.0000/flow --config /tmp/s28/cfg20.yaml \\
        [--replicas 40] [--masses 0.3 0.9]

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
# benchmarks/ holds select.py etc.: keep it off sys.path so the stdlib `select` is found
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]


def bootstrap(run: Path, flow_model, geo, mass: float, ctaus, *, samples: int, replicas: int,
              seed: int) -> dict:  # fmt: skip
    """The replicas' sd of ln(N/Y_F) and the sandwich's ``fit`` part at ``mass``, per cτ."""
    import pandas as pd

    from gammastar.corrections.pair_acceptance import FiducialRegion
    from gammastar.reach.acceptance import draw
    from gammastar.yields.extrapolation import (
        ExtrapolatedSampler,
        Extrapolation,
        RecordingSampler,
        _LambdaDraw,
        nsig_error_parts,
        per_sample_acceptance,
        refit,
    )

    doc = json.loads((run / "yields.json").read_text())["extrapolation"]
    ex, fid = Extrapolation.from_dict(doc), FiducialRegion.from_dict(doc["fiducial"])
    if ex.bin_group is None or ex.covariance is None:
        raise SystemExit(f"{run}: the extrapolation has no fit groups and covariance")
    pairs = pd.read_parquet(run / "pairs.parquet", columns=["m", "pT", "y", "weight"])
    m, pt, y, w = (pairs[k].to_numpy(np.float64) for k in ("m", "pT", "y", "weight"))
    ct = np.asarray(ctaus, dtype=np.float64)
    sampler = RecordingSampler(ExtrapolatedSampler(flow_model, ex, fid))
    ks = draw(sampler, mass, samples, geo, seed=seed)
    kin = sampler.last
    sandwich = nsig_error_parts(ex, fid, mass, kin, ks, ct)["fit"]
    groups = sorted(ex.group_weights(mass))
    on_draw = _LambdaDraw(ex, fid, mass, np.asarray(kin["qT"]), np.asarray(kin["E"]),
                          np.asarray(kin["extrapolated"], bool), per_sample_acceptance(ks, ct))  # fmt: skip
    rng = np.random.default_rng(seed)
    ln = []
    for _ in range(replicas):
        rec = refit(ex, m, pt, y, w * rng.poisson(1.0, w.size), fid, groups=groups)
        # N′/N of the refitted model, the region and the fiducial yield unchanged
        ln.append(np.log(on_draw.ratio({"yield_shift": 0.0, "fit": rec, "region": fid})))
    sd = np.std(np.asarray(ln), axis=0, ddof=1)
    return {"run": str(run), "mass": mass, "groups": groups, "ctau": ct.tolist(),
            "bootstrap_sd": sd.tolist(), "sandwich": sandwich.tolist(),
            "ratio": (sd / sandwich).tolist(), "ratio_err": 1 / np.sqrt(2 * (replicas - 1))}  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=Path, nargs="+", required=True, help="coverage run dirs")
    ap.add_argument("--flow", type=Path, required=True, help="the flow inside F")
    ap.add_argument("--config", type=Path, default=REPO / "analysis" / "na60_like.yaml")
    ap.add_argument("--masses", type=float, nargs="+", default=[0.3, 0.9])
    ap.add_argument("--ctaus", type=float, nargs="+", default=[1.0, 100.0])
    ap.add_argument("--replicas", type=int, default=40)
    ap.add_argument("--samples", type=int, default=40_000)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args(argv)
    if args.replicas < 2:
        ap.error("--replicas: at least 2 for a standard deviation")

    from gammastar import flow
    from gammastar.config import load_config
    from gammastar.source.geometry import Geometry

    geo = Geometry.from_config(load_config(args.config).detector)
    model = flow.load(args.flow)
    rows, t0 = [], time.perf_counter()
    for run in args.runs:
        for mass in args.masses:
            r = bootstrap(run, model, geo, mass, args.ctaus, samples=args.samples,
                          replicas=args.replicas, seed=args.seed)  # fmt: skip
            rows.append(r)
            print(f"{run.name} m={mass:g}: bootstrap sd {np.round(r['bootstrap_sd'], 4)} "
                  f"sandwich {np.round(r['sandwich'], 4)} ratio {np.round(r['ratio'], 2)} "
                  f"(± {r['ratio_err']:.2f})", flush=True)  # fmt: skip
    summary = {}
    for mass in args.masses:
        ratios = np.array([r["ratio"] for r in rows if r["mass"] == mass])
        summary[f"{mass:g}"] = {"mean_ratio": ratios.mean(axis=0).tolist(),
                                "sem": (ratios.std(axis=0, ddof=1) / np.sqrt(len(ratios))).tolist()
                                if len(ratios) > 1 else None}  # fmt: skip
        print(f"m={mass:g}: mean bootstrap/sandwich {np.round(summary[f'{mass:g}']['mean_ratio'], 3)}"
              f" over {len(ratios)} runs", flush=True)  # fmt: skip
    out = {"benchmark": "fit_bootstrap", "replicas": args.replicas, "samples": args.samples,
           "seed": args.seed, "rows": rows, "summary": summary,
           "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
