"""N_sig's response to the extrapolation's external σ_y, evaluated by rerunning the chain, against
the part that quotes it (issue 19, the coverage's σ_y draws).

With ``yields.extrapolation_y_sigma`` the extrapolation takes the rapidity width outside the
fiducial region from outside the data, and ``benchmarks/coverage.py`` quotes its error at
N_sig's level as ``extrapolation_external``: the fits at σ_y ± its error carried to N/Y_F
(:func:`gammastar.yields.extrapolation.nsig_error_parts`: through the gradient, linear in the
parameters' shift, until session 31; since then N/Y_F at the two fits themselves, by
reweighting the nominal draw). This script measures the response itself: for each realisation (a run
directory of a coverage output, its drawn config rebuilt from the output's ``vary_seed`` and
the seed), the ``yields`` stage is rerun in a copy with σ_y set to value + z · error for each
``--z`` (0 included: the reference, the same recipe), and N_sig drawn from the realisation's
own flow with its own seed, as coverage.py's ``data_side`` does. Per (mass, cτ) it prints the
mean of ln(N_z/N_0) over the realisations at each z, the quoted part × z, their ratio, and the
chord slope (ln N₊ − ln N₋)/(z₊ − z₋) and curvature (ln N₊ + ln N₋)/2 of each symmetric pair
of z against the quoted part (a response linear in z has curvature 0 and a chord equal to
the quoted part).

About 70 s per (realisation, z) on one core (the yields stage with its λ_θ refits).

Usage::

    python benchmarks/external_sigma.py --coverage docs/coverage/session30_fresh_64.json \\
        --workdir /tmp/s30/workA /tmp/s30/workB --config /tmp/s28/cfg20.yaml \\
        --seeds 1550 1551 --z -1 1

The last line of the output is one JSON object with all figures.
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
import os
import shutil
import tempfile
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location(
    "coverage_bench", REPO / "benchmarks" / "coverage.py"
)
coverage = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(coverage)


def copy_run(src: Path, dst: Path) -> None:
    """``src``'s run directory in ``dst`` for a rerun of ``yields``: the mock file linked, the
    rest copied (the selection, its histograms and the own flow)."""
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    for f in src.iterdir():
        if f.name == "mock.root":
            os.symlink(f.resolve(), dst / f.name)
        elif f.is_dir():
            shutil.copytree(f, dst / f.name)
        else:
            shutil.copy2(f, dst / f.name)


def nsig_at(cfg: Any, run: Path, masses, ctaus, geo, samples: int, seed: int):
    """N_sig and its parts per (mass, cτ) after ``yields`` in ``run`` (coverage.py's data
    side, the realisation's own flow and seed)."""
    import gammastar

    gammastar.compute_yields(cfg, force=True, plots=False, theory=False)
    model = coverage.own_flow(cfg, run, reuse=True)
    return coverage.data_side(cfg, run, model, masses, ctaus, geo, samples=samples, seed=seed,
                              drawn_forms=("mt_boltzmann",))  # fmt: skip


def _ratio(a: float, b: float) -> float | None:
    """a/b, ``None`` where b is 0 (nothing extrapolated at the point: no quoted part)."""
    return a / b if b != 0 else None


def _f(v: float | None, spec: str) -> str:
    return "n/a" if v is None else format(v, spec)


def summary(rec: dict[tuple[float, float], dict[float, list[float]]], quoted, zs):
    """Per (mass, cτ): mean ± error of ln(N_z/N_0) per z, against the quoted part × z; chord
    and curvature of each symmetric pair of z."""
    out = []
    for (m, ct), by_z in rec.items():
        q = float(np.mean(quoted[(m, ct)]))
        row: dict[str, Any] = {"mass": m, "ctau": ct, "quoted": q, "n": len(by_z[0.0]),
                               "response": {}}  # fmt: skip
        for z in zs:
            if z == 0.0:
                continue
            v = np.asarray(by_z[z])
            err = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else None
            row["response"][f"{z:+g}"] = {"mean": float(v.mean()), "err": err, "quoted": q * z,
                                          "ratio": _ratio(float(v.mean()), q * z)}  # fmt: skip
        pairs = sorted({abs(z) for z in zs if z > 0 and -z in zs})
        row["pairs"] = []
        for z in pairs:
            up, dn = np.asarray(by_z[z]), np.asarray(by_z[-z])
            chord = float(np.mean(up - dn) / (2 * z))
            row["pairs"].append({"z": z, "chord": chord, "chord_over_quoted": _ratio(chord, q),
                                 "curvature": float(np.mean(up + dn) / 2)})  # fmt: skip
        out.append(row)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--coverage", type=Path, required=True,
                    help="a coverage.py output (its last line) with drawn_seeds")  # fmt: skip
    ap.add_argument("--workdir", type=Path, nargs="+", required=True,
                    help="directories holding the realisations' run directories")  # fmt: skip
    ap.add_argument("--config", type=Path, required=True)
    ap.add_argument("--seeds", type=int, nargs="+", required=True)
    ap.add_argument("--z", type=float, nargs="+", default=[-1.0, 1.0],
                    help="σ_y = value + z · error (0 is always added)")  # fmt: skip
    ap.add_argument("--masses", type=float, nargs="+", default=[0.3, 0.6, 0.9])
    ap.add_argument("--ctaus", type=float, nargs="+", default=[1.0, 100.0])
    ap.add_argument("--samples", type=int, default=40000)
    ap.add_argument("--tmp", type=Path, default=None, help="where the copies go (default: a "
                    "temporary directory, removed)")  # fmt: skip
    args = ap.parse_args(argv)

    from gammastar.config import load_config
    from gammastar.errors import GammastarError
    from gammastar.source.geometry import Geometry

    try:
        out = json.loads(args.coverage.read_text().strip().splitlines()[-1])
        arm = out["arms"]["full"]
        drawn = dict(zip(arm["drawn_seeds"], arm["drawn"], strict=True))
    except (OSError, ValueError, KeyError) as e:
        ap.error(f"--coverage: {args.coverage} is not a coverage output with the full arm's "
                 f"drawn_seeds ({type(e).__name__}: {e})")  # fmt: skip
    try:
        base = load_config(args.config)
    except GammastarError as e:
        ap.error(f"--config: {e}")
    ys = base.yields.extrapolation_y_sigma
    if ys is None or not ys.error > 0:
        ap.error("--config: yields.extrapolation_y_sigma with an error > 0 is needed")
    zs = sorted({0.0, *args.z})
    lo = float(ys.value + zs[0] * ys.error)
    if not lo > 0:
        ap.error(f"--z: σ_y = {ys.value:g} + z · {ys.error:g} must stay > 0 (z = {zs[0]:g} "
                 f"gives {lo:g})")  # fmt: skip
    geo = Geometry.from_config(base.detector)
    ctaus = np.asarray(args.ctaus, dtype=float)
    rec: dict[tuple[float, float], dict[float, list[float]]] = {}
    quoted: dict[tuple[float, float], list[float]] = {}
    tmp = args.tmp or Path(tempfile.mkdtemp(prefix="external_sigma_"))
    try:
        run_all(args, ap, base, drawn, out["vary_seed"], ys, zs, geo, ctaus, tmp, rec, quoted)
    finally:
        if args.tmp is None:
            shutil.rmtree(tmp, ignore_errors=True)
    rows = summary(rec, quoted, zs)
    report(rows)
    res = {"benchmark": "external_sigma", "coverage": str(args.coverage),
           "config": str(args.config), "seeds": args.seeds, "z": zs,
           "y_sigma": {"value": ys.value, "error": ys.error}, "samples": args.samples,
           "points": rows}  # fmt: skip
    print(json.dumps(res))
    return res


def run_all(args, ap, base, drawn, vary_seed, ys, zs, geo, ctaus, tmp, rec, quoted) -> None:
    """Every seed at every z: N_sig per (mass, cτ) into ``rec`` (ln N_z/N_0) and the quoted
    part at z = 0 into ``quoted``."""
    for seed in args.seeds:
        src = next((d / f"full_seed{seed}" for d in args.workdir
                    if (d / f"full_seed{seed}" / "yields.json").exists()), None)  # fmt: skip
        if src is None or seed not in drawn:
            ap.error(f"--seeds: no run directory full_seed{seed} with yields.json under "
                     f"--workdir, or no draw of it in --coverage")  # fmt: skip
        cfg, d = coverage.varied_config(base, np.random.default_rng([vary_seed, seed]),
                                        pt_form="pt_form" in drawn[seed])  # fmt: skip
        if d != drawn[seed]:
            ap.error(f"--coverage: seed {seed} drew {drawn[seed]} there, {d} here")
        n = {}
        for z in zs:
            dst = tmp / f"seed{seed}_z{z:+g}"
            copy_run(src, dst)
            y_new = ys.model_copy(update={"value": float(ys.value + z * ys.error)})
            c = cfg.model_copy(update={
                "seed": seed, "output": str(dst),
                "yields": cfg.yields.model_copy(update={"extrapolation_y_sigma": y_new})})  # fmt: skip
            n[z] = nsig_at(c, dst, args.masses, ctaus, geo, args.samples, seed)
            shutil.rmtree(dst)
            print(
                f"seed {seed} (drawn σ_y {d.get('y_sigma')}) z {z:+g}: "
                + ", ".join(f"{k}: {v[0]:.4g}" for k, v in n[z].items()),
                flush=True,
            )
        for key, (n0, parts) in n[0.0].items():
            if not all(n[z][key][0] > 0 for z in zs):
                print(f"seed {seed} {key}: N_sig 0 at some z, left out", flush=True)
                continue
            quoted.setdefault(key, []).append(parts["extrapolation_external"])
            for z in zs:
                rec.setdefault(key, {}).setdefault(z, []).append(math.log(n[z][key][0] / n0))


def report(rows) -> None:
    """One printed line per (mass, cτ) of :func:`summary`."""
    for r in rows:
        print(f"m {r['mass']:g} ctau {r['ctau']:g} (n {r['n']}): quoted {r['quoted']:.4f}; "
              + "; ".join(f"z {z}: {v['mean']:+.4f} ± {_f(v['err'], '.4f')} (quoted "
                          f"{v['quoted']:+.4f}, ratio {_f(v['ratio'], '.2f')})"
                          for z, v in r["response"].items())
              + "".join(f"; |z| {p['z']:g}: chord {p['chord']:.4f} "
                        f"({_f(p['chord_over_quoted'], '.2f')}× "
                        f"quoted), curvature {p['curvature']:+.4f}" for p in r["pairs"]),
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
