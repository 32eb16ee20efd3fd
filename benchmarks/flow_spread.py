"""The acceptance spread of independently trained flows against that of bootstrap replicas.

Every flow is wrapped in one realisation's extrapolation and fiducial region (``--run``: its
``yields.json``) and sampled with one A′ seed, so that only the flows differ. ``--flows``: flows
trained on independent realisations of one config (e.g. ``benchmarks/coverage.py --own-flow``'s
``<workdir>/full_seed<S>/flow`` of realisations with the same draws); ``--ensembles``: flow
directories whose Poisson-bootstrap replicas (``flow.bootstrap``) give the quoted
``kinematic_model``, pooled. Per (mass, cτ): each set's relative standard deviation of 𝓔
(ddof 1) with its own statistical error, 1/√(2(k − 1)) for k flows (Gaussian), and their ratio.
The replicas' spread is meant to estimate the independent flows' (docs/coverage.md, "Coverage on
the mock, session 19"). Last line: one JSON object.

Usage: python benchmarks/flow_spread.py --run RUN --flows F1 F2 ... --ensembles E1 [E2 ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/ holds select.py: keep it off sys.path so the stdlib `select` is found
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import importlib.util
import json
import math
import time
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("coverage", REPO / "benchmarks" / "coverage.py")
coverage = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(coverage)


def spread(acc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Relative standard deviation (ddof 1) over the first axis of ``acc`` (flows × points; the
    reach's own ``kinematic_model`` size, :func:`gammastar.reach.stage._relative_spread`) and its
    statistical error r/√(2(k − 1)) for k flows (the standard deviation of a Gaussian sample's
    standard deviation).

    Example:
        >>> r, e = spread(np.array([[0.9], [1.0], [1.1]]))
        >>> round(float(r[0]), 4), round(float(e[0]), 4)
        (0.1, 0.05)
    """
    from gammastar.reach.stage import _relative_spread

    acc = np.asarray(acc, dtype=np.float64)
    k = acc.shape[0]
    if k < 2:
        raise ValueError("a spread needs at least two flows")
    rel = _relative_spread(acc)
    return rel, rel / math.sqrt(2 * (k - 1))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=REPO / "analysis" / "na60_like.yaml")
    ap.add_argument("--run", type=Path, required=True, help="run directory: its extrapolation")
    ap.add_argument("--flows", type=Path, nargs="+", required=True, help="independent flows")
    ap.add_argument("--ensembles", type=Path, nargs="+", required=True,
                    help="flow directories with >= 2 bootstrap replicas each (pooled)")  # fmt: skip
    ap.add_argument("--masses", type=float, nargs="+", default=[0.3, 0.6, 0.9])
    ap.add_argument("--ctaus", type=float, nargs="+", default=[1.0, 100.0])
    ap.add_argument("--samples", type=int, default=40_000)
    ap.add_argument("--seed", type=int, default=12, help="the A′ draws (one for every flow)")
    args = ap.parse_args(argv)
    if len(args.flows) < 2:
        ap.error("--flows: give at least two flows")

    from gammastar import flow
    from gammastar.config import load_config
    from gammastar.corrections.pair_acceptance import FiducialRegion
    from gammastar.errors import GammastarError
    from gammastar.reach.acceptance import draw
    from gammastar.source.geometry import Geometry
    from gammastar.source.production import load_yields
    from gammastar.yields.extrapolation import ExtrapolatedSampler, Extrapolation

    try:
        cfg = load_config(args.config)
        ex = load_yields(args.run / "yields.json").extrapolation
    except GammastarError as e:
        ap.error(str(e))
    if not ex:
        ap.error(f"--run: {args.run / 'yields.json'} has no extrapolation")
    extrap, fid = Extrapolation.from_dict(ex), FiducialRegion.from_dict(ex["fiducial"])
    geo = Geometry.from_config(cfg.detector)
    try:
        flows = [flow.load(d) for d in args.flows]
        replicas = [m for d in args.ensembles for m in coverage.bootstrap_replicas(d) or []]
    except GammastarError as e:
        ap.error(str(e))
    if len(replicas) < 2:
        ap.error("--ensembles: fewer than two bootstrap replicas (train with flow.bootstrap)")
    ctaus = np.asarray(args.ctaus, dtype=float)
    t0 = time.perf_counter()

    def acc(models):  # (flows, masses, ctaus): each flow as coverage.kinematic_spread draws it
        return np.array([[draw(ExtrapolatedSampler(f, extrap, fid), m, args.samples, geo,
                               seed=args.seed).acceptance(ctaus) for m in args.masses]
                         for f in models])  # fmt: skip

    a_f, a_r = acc(flows), acc(replicas)  # (k, masses, ctaus)
    (r_f, e_f), (r_r, e_r) = spread(a_f), spread(a_r)
    rows = []
    print("| m (GeV) | cτ (m) | independent flows | bootstrap replicas | ratio |")
    print("| --- | --- | --- | --- | --- |")
    for i, m in enumerate(args.masses):
        for j, ct in enumerate(args.ctaus):
            ratio = float(r_f[i, j] / r_r[i, j]) if r_r[i, j] > 0 else float("nan")
            rows.append({"mass": m, "ctau": ct, "flows": [float(r_f[i, j]), float(e_f[i, j])],
                         "replicas": [float(r_r[i, j]), float(e_r[i, j])], "ratio": ratio})  # fmt: skip
            print(f"| {m:g} | {ct:g} | {r_f[i, j]:.4f} ± {e_f[i, j]:.4f} | "
                  f"{r_r[i, j]:.4f} ± {e_r[i, j]:.4f} | {ratio:.2f} |")  # fmt: skip
    out = {"benchmark": "flow_spread", "run": str(args.run), "flows": len(flows),
           "replicas": len(replicas), "seed": args.seed, "samples": args.samples, "rows": rows,
           "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
