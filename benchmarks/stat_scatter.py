"""The quoted statistical errors of N_sig against their scatter over realisations (issue 19).

``benchmarks/coverage.py`` draws the truth and asks whether it falls inside the quoted band;
this script holds the truth fixed and asks, part by part, whether each quoted 1σ is the
scatter it claims. Independent mock realisations of one config (generator seeds
``--first-seed`` …) go through ``generate`` → ``select`` → ``yields``; at each mass and cτ, with
one fixed flow inside the fiducial region and the realisation's own extrapolation outside
(:class:`gammastar.yields.extrapolation.ExtrapolatedSampler`, the reach's sampler), it records

* ln Y_F (the fiducial yield at m, :meth:`gammastar.source.production.Yields.at` times the fitted f_F) with
  the quoted ``data_stat``, and ``acceptance_lambda_theta`` (:func:`gammastar.yields.uncertainties.
  at_masses`): the realisations measure λ_θ, so its error is in their scatter;
* ln(N/Y_F) (the acceptance per fiducial yield, which the extrapolation fit sets) with the
  quoted fit part (:func:`gammastar.yields.extrapolation.nsig_error_parts`, ``fit``);
* their correlation against the quoted ``yield_cross`` (2 Cov, a relative variance);
* ln N less its regression on the λ_θ(m) that the acceptance used (the measured bins
  interpolated as :meth:`gammastar.corrections.pair_acceptance.PairAcceptance.lambda_nodes` does), against
  √(stat² + fit² + cross), and that slope against the λ_θ nuisance's yield-level one;
* the scatter of λ_θ(m) against its quoted error (:func:`gammastar.yields.uncertainties.
  interpolated_error`).

Each figure is printed against its quoted value (ratio realised/quoted; the standard error of a
scatter is 1/√(2(n − 1))). Measured results: docs/coverage.md "Coverage on the mock, session 15".

Usage::

    OMP_NUM_THREADS=1 python benchmarks/stat_scatter.py --config analysis/na60_like.yaml \\
        --flow runs/na60_like/flow --workdir /tmp/scatter --realisations 140 [--reuse]

The last line of the output is one JSON object with all figures.
"""

from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/ holds select.py etc.: keep it off sys.path so the stdlib `select` is found
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import json
import math
import time
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def realisation(cfg: Any, run: Path, seed: int, reuse: bool) -> None:
    """``generate`` → ``select`` → ``yields`` of one seed into ``run`` (with ``reuse`` kept
    when it has a ``yields.json`` and its mock file records this seed)."""
    import gammastar
    from gammastar.mock.generate import read_meta

    if reuse and (run / "yields.json").exists():
        try:
            if read_meta(run / "mock.root").get("seed") == seed:
                return
        except (OSError, KeyError, ValueError):
            pass  # regenerate rather than trust it
    run.mkdir(parents=True, exist_ok=True)
    cfg = cfg.model_copy(update={"seed": seed, "output": str(run)})
    gammastar.generate(cfg, force=True)
    gammastar.select(cfg, force=True)
    gammastar.compute_yields(cfg, force=True, plots=False, theory=False)


def lambda_at(pol: dict[str, Any], masses: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """λ_θ(m) as the acceptance uses it (linear between the fitted bins' centres) and its
    quoted error."""
    from gammastar.yields.uncertainties import interpolated_error

    e = np.asarray(pol["mass_edges"], dtype=float)
    lam = np.array([np.nan if v is None else v for v in pol["lambda_theta"]], dtype=float)
    err = np.array([np.nan if v is None else v for v in pol["lambda_theta_err"]], dtype=float)
    c = 0.5 * (e[1:] + e[:-1])
    ok = np.isfinite(lam) & np.isfinite(err)
    return np.interp(masses, c[ok], lam[ok]), interpolated_error(masses, c[ok], err[ok])


def measure(run: Path, flow_model: Any, geo: Any, masses, ctaus, samples: int, seed: int):
    """Per mass: ln N (per cτ), ln Y_F, ln(N/Y_F), the quoted parts and λ_θ(m)."""
    from gammastar.corrections.pair_acceptance import FiducialRegion
    from gammastar.reach.acceptance import draw
    from gammastar.source.production import load_yields
    from gammastar.yields.extrapolation import (
        ExtrapolatedSampler,
        Extrapolation,
        RecordingSampler,
        nsig_error_parts,
    )
    from gammastar.yields.uncertainties import at_masses

    y = load_yields(run / "yields.json")
    doc = json.loads((run / "yields.json").read_text())
    ex = Extrapolation.from_dict(y.extrapolation)
    fid = FiducialRegion.from_dict(y.extrapolation["fiducial"])
    sampler = RecordingSampler(ExtrapolatedSampler(flow_model, ex, fid))
    sizes = at_masses(y.uncertainties or {}, masses)
    lam, lam_err = lambda_at(doc["polarisation"], masses)
    rows = []
    for i, m in enumerate(masses):
        ks = draw(sampler, m, samples, geo, seed=seed)
        val, stat = (float(v[0]) for v in y.at([m]))
        ep = nsig_error_parts(ex, fid, m, sampler.last, ks, ctaus)
        f0 = float(ex.at(m)[0])
        acc = ks.acceptance(np.asarray(ctaus, dtype=float))
        rows.append({
            "ln_n": np.log(val * acc).tolist(),
            "ln_yf": math.log(val * f0),
            "ln_n_over_yf": np.log(acc / f0).tolist(),
            "stat": stat,
            "fit": np.asarray(ep["fit"]).tolist(),
            "cross": np.asarray(ep["yield_cross"]).tolist(),
            "lambda_part": float(sizes.get("acceptance_lambda_theta", np.zeros(len(masses)))[i]),
            "lambda": float(lam[i]),
            "lambda_err": float(lam_err[i]),
        })  # fmt: skip
    return rows


def summary(per_run: list[list[dict[str, Any]]], masses, ctaus) -> list[dict[str, Any]]:
    """Realised scatters against the quoted means, per (mass, cτ)."""
    n = len(per_run)
    out = []
    for i, m in enumerate(masses):
        r = [x[i] for x in per_run]
        ln_yf = np.array([x["ln_yf"] for x in r])
        lam = np.array([x["lambda"] for x in r])
        stat = float(np.mean([x["stat"] for x in r]))
        lam_part = float(np.mean([x["lambda_part"] for x in r]))
        for k, ct in enumerate(ctaus):
            ln_n = np.array([x["ln_n"][k] for x in r])
            ln_a = np.array([x["ln_n_over_yf"][k] for x in r])
            fit = float(np.mean([x["fit"][k] for x in r]))
            cross = float(np.mean([x["cross"][k] for x in r]))
            x = np.c_[np.ones(n), lam]
            b = np.linalg.lstsq(x, ln_n, rcond=None)[0]
            resid = float(np.std(ln_n - x @ b, ddof=2))
            cov = float(np.cov(ln_yf, ln_a)[0, 1])
            quoted_n = math.sqrt(max(stat**2 + fit**2 + cross, 0.0))
            out.append({
                "mass": m, "ctau": ct, "n": n,
                "sd_ln_yf": float(ln_yf.std(ddof=1)), "quoted_stat_lambda": math.hypot(stat, lam_part),
                "sd_ln_n_over_yf": float(ln_a.std(ddof=1)), "quoted_fit": fit,
                "two_cov": 2 * cov, "quoted_cross": cross,
                "sd_ln_n_less_lambda": resid, "quoted_stat_fit_cross": quoted_n,
                "slope_ln_n_on_lambda": float(b[1]),
                "slope_lambda_nuisance": lam_part / float(np.mean([x["lambda_err"] for x in r])),
                "sd_lambda": float(lam.std(ddof=1)),
                "quoted_lambda_err": float(np.mean([x["lambda_err"] for x in r])),
                "scatter_rel_se": 1 / math.sqrt(2 * (n - 1)),
            })  # fmt: skip
    return out


def bin_row(run: Path) -> dict[str, Any]:
    """One realisation's fiducial yield per mass bin (``aprime.per_pot_per_eps2_fiducial``)
    with its quoted relative ``data_stat``, and its measured λ̂_θ per polarisation bin (with
    the bins' centres): what :func:`bin_summary` regresses."""
    doc = json.loads((run / "yields.json").read_text())
    ap, pol = doc["aprime"], doc["polarisation"]

    def arr(v: list) -> np.ndarray:
        return np.array([np.nan if x is None else x for x in v], dtype=float)

    y, err = arr(ap["per_pot_per_eps2_fiducial"]), arr(ap["stat_err_fiducial"])
    e = np.asarray(pol["mass_edges"], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "mass": arr(ap["mass"]).tolist(),
            "ln_yf": np.log(y).tolist(),
            "rel_stat": (err / y).tolist(),
            "lambda": arr(pol["lambda_theta"]).tolist(),
            "lambda_centres": (0.5 * (e[1:] + e[:-1])).tolist(),
        }


def bin_summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per yield bin: the realised scatter of ln Y_F and its residual after a linear
    regression on every polarisation bin's λ̂_θ (the acceptance follows the measured λ_θ, and
    the bins' λ̂ are independent fits: the residual is the yield's own statistical scatter),
    against the mean quoted ``data_stat``. The λ̂ of each realisation are taken at the first
    realisation's bin centres (linear between its own centres: the equal-count edges move a
    little between realisations). Standard error of a scatter ratio: 1/√(2(n − k − 1)), k
    the regressors."""
    ref = np.asarray(rows[0]["lambda_centres"], dtype=float)
    def at_ref(r: dict[str, Any]) -> np.ndarray:
        c, v = np.asarray(r["lambda_centres"], float), np.asarray(r["lambda"], float)
        ok = np.isfinite(v)  # a bin without a fit: skipped, as the acceptance skips it
        return np.interp(ref, c[ok], v[ok])

    lam = np.array([at_ref(r) for r in rows])
    n, k = lam.shape
    x = np.c_[np.ones(n), lam]
    out = []
    for j, m in enumerate(rows[0]["mass"]):
        ln_y = np.array([r["ln_yf"][j] for r in rows])
        q = np.array([r["rel_stat"][j] for r in rows])
        if not (np.all(np.isfinite(ln_y)) and np.all(np.isfinite(q))) or n <= k + 2:
            continue
        b = np.linalg.lstsq(x, ln_y, rcond=None)[0]
        resid = float(np.sqrt(np.sum((ln_y - x @ b) ** 2) / (n - k - 1)))
        quoted = float(np.mean(q))
        out.append({
            "mass": float(m), "n": n, "sd_ln_yf": float(ln_y.std(ddof=1)),
            "sd_less_lambda": resid, "quoted_data_stat": quoted, "ratio": resid / quoted,
            "ratio_se": 1 / math.sqrt(2 * (n - k - 1)),
        })  # fmt: skip
    return out


def markdown(table: list[dict[str, Any]]) -> list[str]:
    def pair(a: float, q: float) -> str:
        return f"{a:.4f} / {q:.4f} ({a / q:.2f})" if q > 0 else f"{a:.4f} / 0"

    lines = [
        (
            "| m | cτ | ln Y_F: sd / stat⊕λ | ln(N/Y_F): sd / fit | 2Cov / cross | "
            "ln N less λ: sd / quoted | slope on λ: N / nuisance | λ(m): sd / quoted |"
        ),
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for t in table:
        lines.append(
            f"| {t['mass']:g} | {t['ctau']:g} | {pair(t['sd_ln_yf'], t['quoted_stat_lambda'])} | "
            f"{pair(t['sd_ln_n_over_yf'], t['quoted_fit'])} | "
            f"{t['two_cov']:.2e} / {t['quoted_cross']:.2e} | "
            f"{pair(t['sd_ln_n_less_lambda'], t['quoted_stat_fit_cross'])} | "
            f"{t['slope_ln_n_on_lambda']:+.3f} / {t['slope_lambda_nuisance']:+.3f} | "
            f"{pair(t['sd_lambda'], t['quoted_lambda_err'])} |"
        )
    return lines


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=REPO / "analysis" / "na60_like.yaml")
    ap.add_argument("--flow", type=Path, required=True, help="the fixed flow (gammastar train)")
    ap.add_argument("--workdir", type=Path, required=True, help="one run directory per seed")
    ap.add_argument("--realisations", type=int, default=20)
    ap.add_argument("--first-seed", type=int, default=3000)
    ap.add_argument("--masses", type=float, nargs="+", default=[0.3, 0.6, 0.9])
    ap.add_argument("--ctaus", type=float, nargs="+", default=[1.0, 100.0], help="metres")
    ap.add_argument("--samples", type=int, default=40000, help="A′ draws per mass")
    ap.add_argument("--seed", type=int, default=12, help="the A′ draws' seed")
    ap.add_argument("--reuse", action="store_true", help="keep a seed's finished run")
    args = ap.parse_args(argv)
    if args.realisations < 3:
        ap.error("--realisations: at least 3 (a scatter and a regression on λ_θ)")
    for opt, p in (("--config", args.config), ("--flow", args.flow)):
        if not p.exists():
            ap.error(f"{opt}: {p} does not exist")

    from gammastar import flow
    from gammastar.config import load_config
    from gammastar.source.geometry import Geometry

    cfg = load_config(args.config)
    if cfg.unfold.decay_lambda_theta != "measured":
        ap.error(f"{args.config}: unfold.decay_lambda_theta must be 'measured'")
    geo = Geometry.from_config(cfg.detector)
    model = flow.load(args.flow)
    t0 = time.time()
    per_run, bins = [], []
    seeds = list(range(args.first_seed, args.first_seed + args.realisations))
    for s in seeds:
        run = args.workdir / f"seed{s}"
        realisation(cfg, run, s, args.reuse)
        per_run.append(measure(run, model, geo, args.masses, args.ctaus, args.samples, args.seed))
        bins.append(bin_row(run))
        print(f"realisation {s}: {time.time() - t0:.0f} s", flush=True)
    table = summary(per_run, args.masses, args.ctaus)
    print("\n".join(markdown(table)))
    per_bin = bin_summary(bins)
    print("| yield bin (GeV) | ln Y_F: sd | less λ̂ (all bins): sd | quoted data_stat | ratio |")
    print("| --- | --- | --- | --- | --- |")
    for b in per_bin:
        print(
            f"| {b['mass']:.3f} | {b['sd_ln_yf']:.4f} | {b['sd_less_lambda']:.4f} | "
            f"{b['quoted_data_stat']:.4f} | {b['ratio']:.2f} ± {b['ratio'] * b['ratio_se']:.2f} |"
        )
    out = {
        "benchmark": "stat_scatter",
        "config": str(args.config),
        "flow": str(args.flow),
        "seeds": [seeds[0], seeds[-1]],
        "draw_seed": args.seed,
        "samples": args.samples,
        "seconds": round(time.time() - t0, 1),
        "table": table,
        "per_bin": per_bin,
    }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
