"""Where a coverage arm's N_dd/N_truth comes from: the yield's part and the acceptance's.

``benchmarks/coverage.py`` compares N = Y(m)·𝓔(m, cτ) with the generator's truth per
realisation. This script splits each realisation's ratio (read from the coverage JSON's
``arms.<arm>.rows``) into

* the **acceptance part** (𝓔_dd/f_dd)/(𝓔_t/f_t): the chain's N/Y_F against the truth's, with
  𝓔 = f·𝓔_in + (1 − f)·𝓔_out (f the fiducial fraction f_F, 𝓔_in the A′ acceptance of the
  kinematics inside the fiducial region F, 𝓔_out outside); on the chain's side 𝓔_in is the
  fixed flow's (its samples inside F) and 𝓔_out the realisation's fitted model's (its samples
  outside F), on the truth's the generator's γ* inside and outside F at the same mass;
* the **yield part**, the rest (N ratio / acceptance part): Y_F of the chain against the
  truth's Y·f_t (Y at the data's mass resolution, as the coverage defines it).

It also gives each factor of the acceptance part on its own (f_dd/f_t, 𝓔_in and 𝓔_out of the
chain against the truth's) and, to tell the flow's error from what the weighted pairs
themselves carry (the mass resolution moves the pairs of the ω and φ tails into the
valley between them with their own kinematics), the acceptance of the realisations' weighted
pairs inside F within ±``--window`` of each mass (pooled; like-sign pairs at their negative
weights; each pair's energy moved to the mass at its own p_T and rapidity).

The truth is :func:`coverage.truth_side`'s (``--truth-sources`` generator sources), the same
as the coverage run's when given the same ``--seed`` and sources. The reference each figure is
printed against is that truth.

Usage::

    python benchmarks/coverage_parts.py --coverage /tmp/cov.json --workdir /tmp/cov \\
        --flow /tmp/covens/flow [--arm stat] [--masses 0.3 0.6 0.9]

The last line of the output is one JSON object with all figures.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("coverage", REPO / "benchmarks" / "coverage.py")
coverage = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(coverage)


class _Fixed:
    """A sampler returning given (q_T, E), for :func:`gammastar.acceptance.draw`."""

    mass_range = (0.0, 100.0)

    def __init__(self, q, e):
        self.q, self.e = np.asarray(q, float), np.asarray(e, float)

    def sample(self, mass, n, seed=None):
        return {"qT": self.q[:n], "E": self.e[:n]}


def _sem(x) -> float:
    """The standard error of the mean of ``x``."""
    return float(np.std(x, ddof=1) / math.sqrt(x.size))


def _inside(fiducial, m, q, e):
    return fiducial.contains(np.full(q.size, m), q, e)


def model_outside(
    extrap, fiducial, m: float, n: int, seed: int, y_sigma: float | None = None, t_scale=1.0
) -> _Fixed:
    """``n`` samples of the fitted model at mass ``m`` that lie outside F (with σ_y replaced
    by ``y_sigma`` and T scaled by ``t_scale`` when given: what-ifs)."""
    from gammastar.acceptance import ParametricSampler

    _, t, mu, s = (float(x) for x in extrap.at(m))
    t, s = t * t_scale, s if y_sigma is None else y_sigma
    model = ParametricSampler(t, mu, s, power=float(extrap.power_at(m)))  # the fitted p_T form
    rng = np.random.default_rng(seed)
    qs, es, have = [], [], 0
    while have < n:
        got = model.sample(m, 4 * n, seed=int(rng.integers(2**62)))
        out = ~_inside(fiducial, m, got["qT"], got["E"])
        qs.append(got["qT"][out])
        es.append(got["E"][out])
        have += int(out.sum())
    return _Fixed(np.concatenate(qs)[:n], np.concatenate(es)[:n])


def flow_inside(model, fiducial, m: float, n: int, seed: int) -> _Fixed:
    """``n`` samples of the flow at mass ``m`` that lie inside F."""
    from gammastar.extrapolation import sample_accepted

    q, e = sample_accepted(lambda k, seed: model.sample(m, k, seed=seed), n,
                           np.random.default_rng(seed), lambda q, e: _inside(fiducial, m, q, e),
                           f"flow at {m} GeV")  # fmt: skip
    return _Fixed(q, e)


def read_pairs(runs) -> dict[str, np.ndarray]:
    """The weighted pairs (m, q_T, E, weight) of every run, concatenated (read once)."""
    import pyarrow.parquet as pq

    cols = ("m", "qT", "E", "weight")
    got = {k: [] for k in cols}
    for run in runs:
        t = pq.read_table(run / "pairs.parquet", columns=list(cols))
        for k in cols:
            got[k].append(t.column(k).to_numpy())
    return {k: np.concatenate(v) for k, v in got.items()}


def pooled_pairs(pairs, m: float, window: float):
    """The pairs of :func:`read_pairs` within ±``window`` of ``m`` with a weight, their energy
    moved to mass m at their own p_T and rapidity: (q_T, E, weight)."""
    keep = (np.abs(pairs["m"] - m) < window) & (pairs["weight"] != 0)
    q, e, w, mm = (pairs[k][keep] for k in ("qT", "E", "weight", "m"))
    return q, e * np.sqrt(q**2 + m**2) / np.sqrt(q**2 + mm**2), w


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--coverage", type=Path, required=True, help="coverage.py's output JSON")
    ap.add_argument("--workdir", type=Path, required=True, help="its run directories")
    ap.add_argument("--flow", type=Path, required=True, help="its fixed flow")
    ap.add_argument("--arm", default="stat")
    ap.add_argument("--config", type=Path, default=REPO / "analysis" / "na60_like.yaml")
    ap.add_argument("--masses", type=float, nargs="+", default=[0.3, 0.6, 0.9])
    ap.add_argument("--window", type=float, default=0.015, help="pooled pairs: ± GeV")
    ap.add_argument(
        "--model-y-sigma", type=float, default=None,
        help="what-if for the 𝓔_out column: the model outside F at this σ_y (f_F and the "
        "acceptance part keep the fit's)",
    )  # fmt: skip
    ap.add_argument(
        "--model-t-scale", type=float, default=1.0,
        help="what-if for the 𝓔_out column: each realisation's T times this",
    )  # fmt: skip
    coverage.add_truth_arguments(ap)
    args = ap.parse_args(argv)

    from gammastar import flow
    from gammastar.acceptance import Geometry, draw
    from gammastar.config import load_config
    from gammastar.extrapolation import Extrapolation, per_sample_acceptance
    from gammastar.mock.truth import GstarTruth, TruthSampler
    from gammastar.pair_acceptance import FiducialRegion
    from gammastar.reach import load_yields

    if args.arm == "full":
        raise SystemExit("coverage_parts: the full arm draws the truth per realisation; use stat")
    t0 = time.perf_counter()
    rows = json.loads(args.coverage.read_text())["arms"][args.arm]["rows"]
    ctaus = np.array(sorted({r["ctau"] for r in rows}))
    seeds = sorted({r["seed"] for r in rows})
    runs = [args.workdir / f"{args.arm}_seed{s}" for s in seeds]
    cfg = load_config(args.config)
    geo = Geometry.from_config(cfg.detector)
    model = flow.load(args.flow)
    extraps = [load_yields(r / "yields.json").extrapolation for r in runs]
    fid = FiducialRegion.from_dict(extraps[0]["fiducial"])
    extraps = [Extrapolation.from_dict(x) for x in extraps]
    truth = coverage.truth_side(cfg, args.masses, ctaus, geo, sources=args.truth_sources,
                                samples=args.samples, seed=args.seed)  # fmt: skip
    g, n = truth["gstar"], args.samples
    half = TruthSampler(g).half_width
    pairs = read_pairs(runs)
    out: dict[str, Any] = {"benchmark": "coverage_parts", "coverage": str(args.coverage),
                           "arm": args.arm, "realisations": len(runs),
                           "model_y_sigma": args.model_y_sigma,
                           "model_t_scale": args.model_t_scale, "points": []}  # fmt: skip
    print(
        "| m (GeV) | cτ (m) | N_dd/N_t | yield part | acceptance part | f_dd/f_t | 𝓔_in flow/t "
        "| 𝓔_in pairs/t | 𝓔_out model/t | share of 𝓔_t outside F |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for m in args.masses:
        win = g.in_window(m, half)
        ins = _inside(fid, m, win.qT, win.E)
        f_t = float(ins.mean())

        et_in, et_out = (
            draw(TruthSampler(GstarTruth(win.m[k], win.qT[k], win.E[k], win.pz[k],
                                         win.channel[k], g.n_pot)),
                 m, n, geo, seed=args.seed + 20 + i).acceptance(ctaus)
            for i, k in enumerate((ins, ~ins))
        )  # fmt: skip
        et = f_t * et_in + (1 - f_t) * et_out
        e_flow = draw(flow_inside(model, fid, m, n, args.seed + 22), m, n, geo,
                      seed=args.seed + 23).acceptance(ctaus)  # fmt: skip
        q, e, w = pooled_pairs(pairs, m, args.window)
        a = np.asarray(per_sample_acceptance(
            draw(_Fixed(q, e), m, q.size, geo, seed=args.seed + 24), ctaus))  # fmt: skip
        a = a if a.shape[0] == q.size else a.T
        k = _inside(fid, m, q, e)
        e_pairs = (w[k, None] * a[k]).sum(0) / w[k].sum()
        # its statistical error: the weighted mean's, sqrt(sum w^2 (a - mean)^2) / sum w
        e_pairs_err = np.sqrt((w[k, None] ** 2 * (a[k] - e_pairs) ** 2).sum(0)) / w[k].sum()
        f_dd, e_out, acc_part = [], [], []
        for i, ex in enumerate(extraps):
            f = float(ex.at(m)[0])
            outside = model_outside(ex, fid, m, n, args.seed + 30 + i, args.model_y_sigma,
                                    args.model_t_scale)  # fmt: skip
            eo = draw(outside, m, n, geo, seed=args.seed + 25).acceptance(ctaus)
            f_dd.append(f / f_t)
            e_out.append(eo / et_out)
            acc_part.append(((f * e_flow + (1 - f) * eo) / f) / (et / f_t))
        for j, ct in enumerate(ctaus):
            ratio = {r["seed"]: r["nsig_dd"] / r["nsig_truth"] for r in rows
                     if r["mass"] == m and r["ctau"] == ct}  # fmt: skip
            nr = np.array([ratio[s] for s in seeds])
            ap_ = np.array([x[j] for x in acc_part])
            yp = nr / ap_
            pt = {
                "mass": m, "ctau": float(ct), "n": int(nr.size),
                "nsig_ratio": float(nr.mean()), "nsig_ratio_sem": _sem(nr),
                "yield_part": float(yp.mean()), "yield_part_sem": _sem(yp),
                "acceptance_part": float(ap_.mean()), "acceptance_part_sem": _sem(ap_),
                "f_ratio": float(np.mean(f_dd)), "e_in_flow_ratio": float(e_flow[j] / et_in[j]),
                "e_in_pairs_ratio": float(e_pairs[j] / et_in[j]),
                "e_in_pairs_ratio_err": float(e_pairs_err[j] / et_in[j]), "pairs": int(q.size),
                "e_out_model_ratio": float(np.mean([x[j] for x in e_out])),
                "share_outside": float((1 - f_t) * et_out[j] / et[j]), "f_truth": f_t,
            }  # fmt: skip
            out["points"].append(pt)
            print(
                f"| {m:.2f} | {ct:g} | {pt['nsig_ratio']:.3f} ± {pt['nsig_ratio_sem']:.3f} | "
                f"{pt['yield_part']:.3f} ± {pt['yield_part_sem']:.3f} | "
                f"{pt['acceptance_part']:.3f} | {pt['f_ratio']:.3f} | "
                f"{pt['e_in_flow_ratio']:.3f} | {pt['e_in_pairs_ratio']:.3f} ± "
                f"{pt['e_in_pairs_ratio_err']:.3f} ({q.size}) | "
                f"{pt['e_out_model_ratio']:.3f} | {pt['share_outside']:.2f} |",
                flush=True,
            )
    out["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
