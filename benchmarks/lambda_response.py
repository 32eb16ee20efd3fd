"""Response of the data-driven prediction to the mock's decay λ_θ (issue 19, the 0.9 GeV bias
of ``benchmarks/coverage.py``'s ``full`` arm).

For each generator seed (``--first-seed`` …) and each common shift of λ_θ of ρ, ω, φ → μμ
(``--shifts``; ``mock.decay_lambda_theta``, nominal 0) one realisation of the config goes
through ``generate`` → ``select`` → ``yields`` (:func:`coverage.realisation`). Per mass bin of
the yield: the fiducial yield ``aprime.per_pot_per_eps2_fiducial`` and the total one; per
polarisation bin (``select.json`` ``polarisation``): the measured λ_θ and its error against
the generator's truth in the same bin (:func:`gammastar.mock.truth.truth_polarisation`, the
γ* lab helicity frame, all sources of the bin at their true mass); with ``--flow``, N_sig =
Y(m)·𝓔(m, cτ) at ``--masses`` as ``coverage.data_side`` computes it, against the truth of
``coverage.truth_side`` (the γ* and their acceptance, computed once: λ_θ moves the muons, not
the γ*) smeared with the mass response of each realisation's config and λ_θ shift
(``coverage.mass_response``, ``coverage.truth_nsig``).

The seeds are the same for every shift, and the decays are drawn by inverting the CDF of
1 + λ cos²θ* from the same uniforms (:func:`gammastar.physics.sampling.sample_polar_cos`), so
the realisations of one seed differ only by the decay angles of ρ, ω, φ: the ratios between
shifts are nearly free of the data's statistical error. A shift of exactly 0 takes the
generator's isotropic branch (another orientation of the decay frame, so another random
stream); it is replaced by ``--zero`` (default 1e-9: the same distribution, the helicity-frame
branch, the same stream as the other shifts).

Usage: python benchmarks/lambda_response.py [--flow DIR] [--seeds 10] [--shifts -0.3 0 0.3]
[--workdir /tmp/lam09]. Output: one JSON line per realisation (``"row"``), the summary as
markdown, and as the last line one JSON object (``"benchmark": "lambda_response"``).
"""

from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/ holds select.py etc.: keep it off sys.path so the stdlib `select` is found
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse
import importlib.util
import json
import math
import os
import time
from typing import Any

import numpy as np

REPO = _HERE.parents[0]


def _coverage():
    """``benchmarks/coverage.py`` as a module (benchmarks/ is not on sys.path)."""
    spec = importlib.util.spec_from_file_location("coverage_bench", _HERE / "coverage.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def shifted_config(
    base: Any, shift: float, seed: int, out: Path, *, analysis: str = "config"
) -> Any:
    """``base`` with λ_θ of ρ, ω, φ → μμ moved by ``shift`` (as ``coverage.varied_config``),
    the generator seed and the run directory; ``analysis="truth"``: the analysis's
    ``unfold.decay_lambda_theta`` set to the shifted value instead of measured (the
    acceptance of the generator's λ_θ of ρ, ω, φ, for comparison; the Dalitz pairs keep
    theirs)."""
    pol = base.mock.decay_lambda_theta
    lam = {k: float(np.clip(getattr(pol, k) + shift, -1.0, 1.0)) for k in ("rho", "omega", "phi")}
    mock = base.mock.model_copy(update={"decay_lambda_theta": pol.model_copy(update=lam)})
    upd: dict[str, Any] = {"mock": mock, "seed": seed, "output": str(out)}
    if analysis == "truth":
        upd["unfold"] = base.unfold.model_copy(update={"decay_lambda_theta": lam["omega"]})
    return base.model_copy(update=upd)


def one_run(cfg: Any, run: Path) -> dict[str, Any]:
    """The numbers of one finished realisation (yields, measured and true λ_θ, nuisance)."""
    from gammastar.mock.truth import truth_polarisation

    y = json.loads((run / "yields.json").read_text())
    a = y["aprime"]
    pol = json.loads((run / "select.json").read_text())["polarisation"]
    edges = np.asarray(pol["mass_edges"], dtype=float)
    tru = truth_polarisation(run / "mock.root", edges)
    unc = y.get("uncertainties") or {}
    nus = unc.get("nuisances", {})
    lam_nu = nus.get("acceptance_lambda_theta", {}).get("rel")
    return {
        "mass": a["mass"],
        "fid": a["per_pot_per_eps2_fiducial"],
        "fid_err": a["stat_err_fiducial"],
        "total": a["per_pot_per_eps2"],
        "total_err": a["stat_err"],
        "f_F": a["fiducial_fraction"],
        "pol_edges": pol["mass_edges"],
        "lam_meas": pol["lambda_theta"],
        "lam_meas_err": pol["lambda_theta_err"],
        "lam_phi_meas": pol["lambda_phi"],
        "n_pairs": pol["n_pairs"],
        "lam_true": [float(v) for v in tru["lambda_theta"]],
        "lam_true_err": [float(v) for v in tru["lambda_theta_err"]],
        "nuisance_lambda": lam_nu,
    }


def summarise(rows: list[dict[str, Any]], shifts: list[float], lo: float, hi: float):
    """Per yield bin in [lo, hi]: per-seed ratios Y(shift)/Y(0) (mean ± error of the mean
    over seeds), the slope d ln Y/dλ from the outer shifts and the curvature
    [Y(+s) + Y(−s)]/(2 Y(0)) − 1; per polarisation bin: the measured − true λ_θ."""
    seeds = sorted({r["seed"] for r in rows})
    by = {(r["seed"], r["shift"]): r for r in rows}
    s0 = min(shifts, key=abs)
    sm, sp = min(shifts), max(shifts)
    full = [s for s in seeds if all((s, x) in by for x in shifts)]
    out: dict[str, Any] = {"seeds": full, "yield": [], "polarisation": [], "nsig": []}
    if not full:
        return out
    mass = np.asarray(by[(full[0], s0)]["mass"])
    for j in np.flatnonzero((mass >= lo) & (mass <= hi)):
        rec: dict[str, Any] = {"mass": float(mass[j])}
        for key in ("fid", "total"):
            y = {x: np.array([by[(s, x)][key][j] for s in full], dtype=float) for x in shifts}
            rat = {x: y[x] / y[s0] for x in shifts}
            slope = np.log(y[sp] / y[sm]) / (sp - sm)
            curv = 0.5 * (rat[sp] + rat[sm]) - 1.0
            n = len(full)
            rec[key] = {
                "ratio": {f"{x:+.2f}": [float(rat[x].mean()), float(rat[x].std(ddof=1) / math.sqrt(n))]
                          for x in shifts if x != s0},
                "dlnY_dlambda": [float(slope.mean()), float(slope.std(ddof=1) / math.sqrt(n))],
                "curvature": [float(curv.mean()), float(curv.std(ddof=1) / math.sqrt(n))],
                "rel_stat_err": float(np.mean([by[(s, s0)][key + "_err"][j] / y[s0][i]
                                               for i, s in enumerate(full)])),
            }  # fmt: skip
        nu = [by[(s, s0)]["nuisance_lambda"] for s in full if by[(s, s0)]["nuisance_lambda"]]
        rec["nuisance_lambda_theta"] = float(np.mean([v[j] for v in nu])) if nu else None
        out["yield"].append(rec)
    # polarisation bins differ per realisation (equal OS counts): report per realisation the
    # bins overlapping [lo, hi], then the mean residual per shift by bin index
    nb = len(by[(full[0], s0)]["pol_edges"]) - 1
    for b in range(nb):
        rec = {"bin": b}
        for x in shifts:
            e = np.array([by[(s, x)]["pol_edges"][b : b + 2] for s in full], dtype=float)
            meas = np.array([by[(s, x)]["lam_meas"][b] for s in full], dtype=float)
            err = np.array([by[(s, x)]["lam_meas_err"][b] for s in full], dtype=float)
            tru = np.array([by[(s, x)]["lam_true"][b] for s in full], dtype=float)
            d = meas - tru
            rec[f"{x:+.2f}"] = {
                "edges_mean": e.mean(axis=0).round(4).tolist(),
                "lam_meas": float(np.nanmean(meas)),
                "lam_true": float(np.nanmean(tru)),
                "meas_minus_true": [float(np.nanmean(d)), float(np.nanstd(d, ddof=1) / math.sqrt(d.size))],
                "pull_rms": float(np.sqrt(np.nanmean((d / err) ** 2))),
                "mean_quoted_err": float(np.nanmean(err)),
            }  # fmt: skip
        out["polarisation"].append(rec)
    # N_sig against the truth
    if "nsig" in by[(full[0], s0)]:
        for key in by[(full[0], s0)]["nsig"]:
            rec = {"key": key}
            for x in shifts:
                r = np.array([by[(s, x)]["nsig"][key]["ratio"] for s in full])
                rec[f"{x:+.2f}"] = [float(r.mean()), float(r.std(ddof=1) / math.sqrt(r.size))]
            rs = {x: np.array([by[(s, x)]["nsig"][key]["ratio"] for s in full]) for x in shifts}
            sl = np.log(rs[sp] / rs[sm]) / (sp - sm)
            rec["dlnN_dlambda"] = [float(sl.mean()), float(sl.std(ddof=1) / math.sqrt(sl.size))]
            rec["quoted_lambda_nuisance"] = float(
                np.mean([by[(s, s0)]["nsig"][key]["acceptance_lambda_theta"] for s in full])
            )
            out["nsig"].append(rec)
    return out


def markdown(summary: dict[str, Any], shifts: list[float]) -> list[str]:
    """The summary as markdown tables."""
    s0 = min(shifts, key=abs)
    outer = [x for x in shifts if x != s0]
    lines = ["| m (GeV) | " + " | ".join(f"Y_F({x:+.1f})/Y_F(0)" for x in outer)
             + " | d ln Y_F/dλ | curvature | " + " | ".join(f"Y({x:+.1f})/Y(0)" for x in outer)
             + " | d ln Y/dλ | stat err Y_F | acceptance_lambda_theta |",
             "| --- " * (5 + 2 * len(outer)) + "|"]  # fmt: skip
    for r in summary["yield"]:
        f, t = r["fid"], r["total"]
        row = f"| {r['mass']:.3f} | "
        row += " | ".join(
            f"{f['ratio'][f'{x:+.2f}'][0]:.3f} ± {f['ratio'][f'{x:+.2f}'][1]:.3f}" for x in outer
        )
        row += f" | {f['dlnY_dlambda'][0]:+.3f} ± {f['dlnY_dlambda'][1]:.3f}"
        row += f" | {f['curvature'][0]:+.4f} ± {f['curvature'][1]:.4f} | "
        row += " | ".join(
            f"{t['ratio'][f'{x:+.2f}'][0]:.3f} ± {t['ratio'][f'{x:+.2f}'][1]:.3f}" for x in outer
        )
        row += f" | {t['dlnY_dlambda'][0]:+.3f} ± {t['dlnY_dlambda'][1]:.3f}"
        nu = r["nuisance_lambda_theta"]
        row += f" | {100 * f['rel_stat_err']:.1f}% | {'-' if nu is None else f'{100 * nu:.1f}%'} |"
        lines.append(row)  # fmt: skip
    lines += ["", "| pol. bin | edges (GeV, mean) | " + " | ".join(
        f"λ({x:+.1f}): meas / true / meas−true / pull rms" for x in shifts) + " |",
        "| --- " * (2 + len(shifts)) + "|"]  # fmt: skip
    for r in summary["polarisation"]:
        e = r[f"{s0:+.2f}"]["edges_mean"]
        row = f"| {r['bin']} | {e[0]:.3f}–{e[1]:.3f} | "
        row += " | ".join(
            f"{r[f'{x:+.2f}']['lam_meas']:+.3f} / {r[f'{x:+.2f}']['lam_true']:+.3f} / "
            f"{r[f'{x:+.2f}']['meas_minus_true'][0]:+.3f} ± {r[f'{x:+.2f}']['meas_minus_true'][1]:.3f}"
            f" / {r[f'{x:+.2f}']['pull_rms']:.2f}"
            for x in shifts
        )
        lines.append(row + " |")
    if summary["nsig"]:
        lines += ["", "| m, cτ | " + " | ".join(f"N_dd/N_truth ({x:+.1f})" for x in shifts)
                  + " | d ln N/dλ | acceptance_lambda_theta |", "| --- " * (3 + len(shifts)) + "|"]  # fmt: skip
        for r in summary["nsig"]:
            row = f"| {r['key']} | " + " | ".join(
                f"{r[f'{x:+.2f}'][0]:.3f} ± {r[f'{x:+.2f}'][1]:.3f}" for x in shifts
            )
            row += f" | {r['dlnN_dlambda'][0]:+.3f} ± {r['dlnN_dlambda'][1]:.3f}"
            row += f" | {100 * r['quoted_lambda_nuisance']:.1f}% |"
            lines.append(row)
    return lines


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=REPO / "analysis" / "na60_like.yaml")
    ap.add_argument("--flow", type=Path, default=None, help="fixed flow: also N_sig vs truth")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--first-seed", type=int, default=1000)
    ap.add_argument("--shifts", type=float, nargs="+", default=[-0.3, 0.0, 0.3])
    ap.add_argument("--zero", type=float, default=1e-9, help="the shift run in place of 0")
    ap.add_argument("--masses", type=float, nargs="+", default=[0.8, 0.9, 1.0])
    ap.add_argument("--ctaus", type=float, nargs="+", default=[1.0])
    ap.add_argument("--range", type=float, nargs=2, default=[0.65, 1.1], help="yield bins shown")
    cov = _coverage()
    cov.add_truth_arguments(ap)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/lam09"))
    ap.add_argument(
        "--analysis-lambda",
        choices=["config", "truth"],
        default="config",
        help="config: the config's unfold.decay_lambda_theta (measured); truth: the shift",
    )
    ap.add_argument(
        "--mock-from",
        type=Path,
        default=None,
        help="workdir of an earlier run: its mock files, select and yields only (another code)",
    )
    ap.add_argument("--rows", type=Path, default=None, help="rows from an earlier run (jsonl)")
    args = ap.parse_args(argv)

    from gammastar.config import load_config

    base = load_config(args.config)
    shifts = sorted(args.shifts)
    rows: list[dict[str, Any]] = []
    done: set[tuple[int, float]] = set()
    if args.rows is not None and args.rows.exists():
        for line in args.rows.read_text().splitlines():
            r = json.loads(line)
            rows.append(r)
            done.add((r["seed"], r["shift"]))
    geo = model = truth = None
    masses, ctaus = list(args.masses), np.asarray(args.ctaus, dtype=float)
    if args.flow is not None:
        from gammastar import flow
        from gammastar.source.geometry import Geometry

        geo = Geometry.from_config(base.detector)
        model = flow.load(args.flow)
    t0 = time.perf_counter()
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for x in shifts:
            if (seed, x) in done:
                continue
            run = args.workdir / f"seed{seed}_shift{x:+.2f}"
            run.mkdir(parents=True, exist_ok=True)
            cfg = shifted_config(
                base, x if x != 0.0 else args.zero, seed, run, analysis=args.analysis_lambda
            )
            if args.mock_from is not None:  # the same mock file: select → yields only
                import shutil

                import gammastar

                shutil.copyfile(args.mock_from / run.name / "mock.root", run / "mock.root")
                gammastar.select(cfg, force=True)
                gammastar.compute_yields(cfg, force=True, plots=False, theory=False)
            else:
                cov.realisation(cfg)
            row = {"seed": seed, "shift": x, **one_run(cfg, run)}
            if model is not None:
                if truth is None:
                    truth = cov.truth_side(
                        cfg, masses, ctaus, geo,
                        sources=args.truth_sources, samples=args.samples, seed=args.seed,
                    )  # fmt: skip
                response = cov.mass_response(
                    cfg, {"lambda_theta_shift": x}, args.response_sources, seed=args.seed + 5
                )
                n_truth = cov.truth_nsig(cfg, run, truth, masses, seed=args.seed, response=response)
                dd = cov.data_side(
                    cfg, run, model, masses, ctaus, geo, samples=args.samples, seed=args.seed
                )
                row["nsig"] = {
                    f"{m:.2f} GeV, {ct:g} m": {
                        "ratio": n / n_truth[(m, ct)][0], "nsig_dd": n,
                        "nsig_truth": n_truth[(m, ct)][0],
                        "acceptance_lambda_theta": parts.get("acceptance_lambda_theta", 0.0),
                        "data_stat": parts["data_stat"],
                    }
                    for (m, ct), (n, parts) in dd.items()
                }  # fmt: skip
            rows.append(row)
            if args.rows is not None:
                with args.rows.open("a") as fh:
                    fh.write(json.dumps(row) + "\n")
            print(f"seed {seed} shift {x:+.2f}: {time.perf_counter() - t0:.0f} s", flush=True)
    summary = summarise(rows, shifts, *args.range)
    print("\n" + "\n".join(markdown(summary, shifts)) + "\n", flush=True)
    out = {
        "benchmark": "lambda_response",
        "config": str(args.config),
        "flow": None if args.flow is None else str(args.flow),
        "shifts": shifts,
        "zero_run_as": args.zero,
        "analysis_lambda": args.analysis_lambda,
        "mock_from": None if args.mock_from is None else str(args.mock_from),
        "seeds": summary["seeds"],
        "truth": {
            k: getattr(args, k) for k in ("truth_sources", "response_sources", "samples", "seed")
        },
        "summary": summary,
        "seconds": round(time.perf_counter() - t0, 1),
        "load_average_end": os.getloadavg(),
    }
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
