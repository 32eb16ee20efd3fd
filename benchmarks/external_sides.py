"""The external σ_y's two sides: N_sig with the extrapolation refitted at σ_y − error and + error.

The reach quotes an external σ_y's error (``yields.extrapolation_y_sigma``) at the N_sig level
as half the change of ln N between the parameter shifts ±δ, δ the half-difference of the two
refits (:func:`gammastar.yields.extrapolation.nsig_error_parts`, ``external``): symmetric by
construction. This script refits each coverage realisation's pairs at σ_y − error and
σ_y + error (``fit_extrapolation`` as the yields stage calls it; the model's forms and the
other error method left out: they do not move the central fit), draws its N/Y_F = 𝓔/f_F with
its flow and the same A′ seed as the nominal, and prints per (mass, cτ) the medians of the
one-sided changes |ln N(−)/N| and |ln N(+)/N| against the quoted symmetric part. Then, as a
what-if, it re-quotes the realisations' ``varied_flow`` σ with the larger side in place of the
symmetric one (the rest of σ as the coverage output holds it) and prints the coverage of
both; the reference is the symmetric quote on the same rows.

Usage: ``python benchmarks/external_sides.py --coverage /tmp/out/c*.json --workdir /tmp/work
--own-flow --arm full --config <the coverage run's config>``. The last line is one JSON object.
"""

from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/ holds select.py etc.: keep it off sys.path so the stdlib `select` is found
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import importlib.util
import json
import math
import time
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


coverage, parts = _load("coverage"), _load("coverage_parts")


def sides(cfg, run: Path, model, masses, ctaus, geo, *, samples: int, seed: int):
    """Per mass: the one-sided changes ln N(σ_y ∓ error)/N per cτ and the quoted symmetric
    ``external`` part (log propagation), all on the same A′ draw's seed. The refits take all
    of ``pairs.parquet``: a one-flavour run's, as the coverage's."""
    import pyarrow.parquet as pq

    from gammastar.corrections.pair_acceptance import FiducialRegion
    from gammastar.reach.acceptance import draw
    from gammastar.source.production import load_yields
    from gammastar.yields.extrapolation import (
        ExtrapolatedSampler,
        Extrapolation,
        RecordingSampler,
        beam_rapidity,
        fit_extrapolation,
        nsig_error_parts,
    )

    ys = cfg.yields.extrapolation_y_sigma
    if ys is None or ys.error <= 0:
        raise SystemExit("external_sides: the config has no external σ_y with an error "
                         "(yields.extrapolation_y_sigma)")  # fmt: skip
    ex = load_yields(run / "yields.json").extrapolation
    fid, nominal = FiducialRegion.from_dict(ex["fiducial"]), Extrapolation.from_dict(ex)
    p = pq.read_table(run / "pairs.parquet", columns=["m", "pT", "y", "weight"])
    col = {k: p.column(k).to_numpy() for k in ("m", "pT", "y", "weight")}
    fits = {"nominal": nominal}
    for side, value in (("down", ys.value - ys.error), ("up", ys.value + ys.error)):
        fits[side] = fit_extrapolation(
            col["m"], col["pT"], col["y"], col["weight"], np.asarray(ex["bin_edges"]), fid,
            y_mean=beam_rapidity(cfg.beam.energy), y_sigma=(value, ys.error),
            y_sigma_source=ys.source, pt_power=cfg.yields.extrapolation_pt_power,
            compare=False, model_variations=False,
        )  # fmt: skip
    out = {}
    for m in masses:
        n_over, quoted = {}, None
        for side, fit in fits.items():
            smp = RecordingSampler(ExtrapolatedSampler(model, fit, fid))
            ks = draw(smp, m, samples, geo, seed=seed)
            n_over[side] = ks.acceptance(ctaus) / float(fit.at(m)[0])
            if side == "nominal":
                quoted = nsig_error_parts(fit, fid, m, smp.last, ks, ctaus, log=True)["external"]
        out[m] = {s: np.log(n_over[s] / n_over["nominal"]).tolist() for s in ("down", "up")}
        out[m]["quoted"] = np.asarray(quoted).tolist()
    return out


def requote(rows, got, drawn_forms=()) -> dict[tuple, dict[str, list[float]]]:
    """Per (mass, cτ) of ``got``: the pulls of ``varied_flow`` as quoted (``symmetric``) and
    with the larger side's |ln N| in place of the symmetric ``external`` part (``larger``).
    A row's external part is √(varied² − fit² − Σ drawn form²) of its
    ``extrapolation_varied``, ``extrapolation_fit`` and ``extrapolation_form_<drawn>``, scaled
    by larger/quoted (the quoted part of :func:`sides`, on its own draw); the rest of σ is
    the row's ``varied_flow`` (``coverage.quoted``) less that part. Rows of a seed or mass
    that ``got`` lacks are skipped."""
    ctaus = sorted({x["ctau"] for x in rows})
    pulls: dict[tuple, dict[str, list[float]]] = {}
    for r in rows:
        sd = got.get(r["seed"], {}).get(r["mass"])
        if sd is None:
            continue
        sg, j = r["sigma"], ctaus.index(r["ctau"])
        forms2 = sum(sg.get(f"extrapolation_form_{k}", 0.0) ** 2 for k in drawn_forms)
        ext2 = max(sg["extrapolation_varied"] ** 2 - sg["extrapolation_fit"] ** 2 - forms2, 0.0)
        larger = max(abs(sd["down"][j]), abs(sd["up"][j]))
        scale = larger / sd["quoted"][j] if sd["quoted"][j] > 0 else 1.0
        rest2 = max(coverage.quoted(sg, "varied_flow") ** 2 - ext2, 0.0)
        for name, e2 in (("symmetric", ext2), ("larger", ext2 * scale**2)):
            width = math.hypot(math.sqrt(rest2 + e2) * r["nsig_dd"],
                               r["rel_sigma_truth"] * r["nsig_truth"])  # fmt: skip
            pulls.setdefault((r["mass"], r["ctau"]), {}).setdefault(name, []).append(
                (r["nsig_dd"] - r["nsig_truth"]) / width)  # fmt: skip
    return pulls


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--coverage", type=Path, nargs="+", required=True)
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--flow", type=Path, help="one fixed flow (not with --own-flow)")
    ap.add_argument("--own-flow", action="store_true", help="each realisation's own flow")
    ap.add_argument("--arm", default="full")
    ap.add_argument("--config", type=Path, default=REPO / "analysis" / "na60_like.yaml")
    ap.add_argument("--masses", type=float, nargs="+", default=[0.3, 0.6, 0.9])
    ap.add_argument("--samples", type=int, default=40_000)
    ap.add_argument("--max-realisations", type=int, default=None,
                    help="the first N seeds only (a quick look)")  # fmt: skip
    args = ap.parse_args(argv)
    if (args.flow is None) == (not args.own_flow):
        ap.error("give --flow (one fixed flow) or --own-flow (each realisation's), not both")

    from gammastar import flow
    from gammastar.config import load_config
    from gammastar.source.geometry import Geometry

    t0 = time.perf_counter()
    rows, _, head = parts.read_outputs(args.coverage, args.arm)
    parts.check_config(head, args.config)
    if args.own_flow and not head.get("own_flow"):
        raise SystemExit("external_sides: --own-flow on outputs run without it")
    if missing := sorted(set(args.masses) - {r["mass"] for r in rows}):
        raise SystemExit(f"external_sides: the outputs have no rows at {missing} GeV")
    ctaus = np.array(sorted({r["ctau"] for r in rows}))
    seeds = sorted({r["seed"] for r in rows})[: args.max_realisations]
    parts.check_runs(args.workdir, args.arm, seeds, args.own_flow)
    cfg = load_config(args.config)
    geo = Geometry.from_config(cfg.detector)
    fixed = None if args.own_flow else flow.load(args.flow)
    got = {}
    for s in seeds:
        run = args.workdir / f"{args.arm}_seed{s}"
        model = flow.load(run / "flow") if args.own_flow else fixed
        got[s] = sides(cfg, run, model, args.masses, ctaus, geo, samples=args.samples, seed=s + 1)
        print(f"seed {s}: {time.perf_counter() - t0:.0f} s", flush=True)
    out: dict[str, Any] = {"benchmark": "external_sides", "arm": args.arm,
                           "realisations": len(got), "points": []}  # fmt: skip
    pulls = requote(rows, got, head.get("drawn_forms", ()))
    print("| m (GeV) | cτ (m) | median |ln N(−)/N| | median |ln N(+)/N| | median quoted | "
          "±1σ symmetric / larger | ±2σ symmetric / larger |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for m in args.masses:
        for j, ct in enumerate(ctaus):
            med = {k: float(np.median([abs(g[m][k][j]) for g in got.values()]))
                   for k in ("down", "up", "quoted")}  # fmt: skip
            p = {k: np.asarray(v) for k, v in pulls[(m, float(ct))].items()}
            cov1 = {k: float(np.mean(np.abs(v) <= 1)) for k, v in p.items()}
            cov2 = {k: float(np.mean(np.abs(v) <= 2)) for k, v in p.items()}
            out["points"].append({"mass": m, "ctau": float(ct), **{f"median_{k}": v
                                  for k, v in med.items()}, "cover_1sigma": cov1,
                                  "cover_2sigma": cov2, "n": int(p["symmetric"].size)})  # fmt: skip
            print(f"| {m:g} | {ct:g} | {med['down']:.4f} | {med['up']:.4f} | "
                  f"{med['quoted']:.4f} | {cov1['symmetric']:.2f} / {cov1['larger']:.2f} | "
                  f"{cov2['symmetric']:.2f} / {cov2['larger']:.2f} |")  # fmt: skip
    out["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
