"""The reach's flow closure (``reach.json`` ``flow_closure``) over independent mock realisations.

Each realisation (generator seeds ``--first-seed`` …, the config's data size) is taken through
``generate`` → ``select`` → ``yields`` → ``train`` (its own flow, one member) → ``reach``
(without the named nuisances, ``--mass-points`` masses); the reach compares the flow's A′
acceptance inside F with that of its own weighted pairs at ``validate.masses``, at the median
expected ε_low and ε_high (:func:`gammastar.reach.flow_closure.detector_closure`). Over the
realisations, per mass and boundary: the ratio of the mean 𝓔_flow to the mean 𝓔_pairs (± its
delta-method error over the realisations: the recipe's bias, which one realisation cannot see),
the sd of the per-realisation ratios against their quoted error, and the pulls' mean and rms
against the reference N(0, 1) that the pairs' statistics alone would give for a flow without
a training variance or bias (rms 1 ± 1/√(2n)).

With ``--variant`` (a JSON object of ``flow`` keys) each realisation's pairs train that recipe
instead and its reach compares it with them, so that recipes are judged on the data alone; the
reference is the config's recipe on the same realisations (a run without ``--variant``).

With ``--run DIR`` no mock is generated: the pairs of that run directory train the config's
recipe (the reference) and ``--variant`` with each of ``--seeds``; each is validated and taken
through the reach, and the table gives per validation mass the closure at ε_low and ε_high and
the KL with its data-vs-data band, side by side (how the demo's ``mass_flatten`` was chosen,
docs/explanation/reach.md).

Usage: ``python validation/scripts/flow_closure.py --realisations 15 --first-seed 3100
--workdir WORK [--reuse] [--variant '{"mass_flatten": 0.5}']``; ``--merge OUT …`` pools
outputs (their last lines); ``--run runs/na60_like_both --config analysis/na60_like_both.yaml
--variant '{"mass_flatten": 0.0}' --workdir WORK``. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[2]
KEYS = ("eps_low", "eps_high", "eps_peak")


LINKED = ("pairs.parquet", "select.json", "yields.json")
"""What a variant's flow and reach read from the realisation's directory (linked, not copied)."""


def linked_dir(src: Path, dst: Path, extra: tuple[str, ...] = ()) -> Path:
    """``dst`` created with links to ``src``'s :data:`LINKED` files (and ``extra`` ones that
    exist): a run directory for another recipe on the same pairs."""
    import os

    dst.mkdir(parents=True, exist_ok=True)
    for f in (*LINKED, *extra):
        if (src / f).exists() and not (dst / f).exists():
            os.symlink(src.resolve() / f, dst / f)
    return dst


def realisation_config(base: Any, seed: int, out: Path, mass_points: int = 20) -> Any:
    """The config of one realisation: its seed and directory, one flow member, the named
    nuisances off, ``mass_points`` reach masses, the closure on (its flow section is the one
    :func:`gammastar.reach.flow_closure.flow_rows` needs to rebuild the flow's rows)."""
    return base.model_copy(update={
        "seed": seed, "output": str(out),
        "flow": base.flow.model_copy(update={"ensemble": 1, "bootstrap": False, "workers": 1}),
        "uncertainties": base.uncertainties.model_copy(update={"enabled": False,
                                                               "kinematic_model": False}),
        "reach": base.reach.model_copy(update={"mass_points": mass_points, "flow_closure": True}),
    })  # fmt: skip


def run_one(base: Any, seed: int, workdir: Path, mass_points: int, reuse: bool,
            variant: dict[str, Any] | None = None) -> dict[str, Any]:
    """One realisation through the chain; its ``flow_closure`` block. With ``variant`` (``flow``
    keys) the realisation's pairs (run first when missing) train that recipe in
    ``<workdir>/variant_<sha>/seed<S>/`` and its own reach compares it with them."""
    import hashlib

    import gammastar
    from gammastar.flow.stage import train
    from gammastar.reach.stage import run_reach

    out = workdir / f"seed{seed}"
    cfg = realisation_config(base, seed, out, mass_points)
    if not (reuse and (out / "yields.json").exists()):
        gammastar.generate(cfg, force=True)
        gammastar.select(cfg, force=True)
        gammastar.compute_yields(cfg, force=True, plots=False, theory=False)
    if variant:
        tag = hashlib.sha256(json.dumps(variant, sort_keys=True).encode()).hexdigest()[:8]
        vout = linked_dir(out, workdir / f"variant_{tag}" / f"seed{seed}")
        cfg = cfg.model_copy(update={"output": str(vout),
                                     "flow": cfg.flow.model_copy(update=variant)})  # fmt: skip
        out = vout
    if not (reuse and (out / "reach.json").exists()):
        train(cfg, force=True)
        run_reach(cfg, force=True)
    doc = json.loads((out / "reach.json").read_text())
    return doc["flow_closure"]


def recipe_on_run(base: Any, run: Path, workdir: Path, seed: int,
                  variant: dict[str, Any] | None) -> dict[str, Any]:
    """The config's recipe (``variant`` None) or ``variant`` trained with ``seed`` on the pairs
    of the run directory ``run`` (linked into ``<workdir>/<tag>_s<seed>/``), validated and taken
    through the reach: per validation mass the closure at ε_low and ε_high and the KL with its
    band."""
    import hashlib

    from gammastar.flow import validate
    from gammastar.flow.stage import train
    from gammastar.reach.stage import run_reach

    tag = "config" if not variant else "variant_" + hashlib.sha256(
        json.dumps(variant, sort_keys=True).encode()).hexdigest()[:8]
    out = linked_dir(run, workdir / f"{tag}_s{seed}", extra=("histograms.root",))
    cfg = base.model_copy(update={
        "output": str(out),
        "flow": base.flow.model_copy(update={**(variant or {}), "seed": seed, "ensemble": 1,
                                             "bootstrap": False, "workers": 1}),
        "uncertainties": base.uncertainties.model_copy(update={"enabled": False,
                                                               "kinematic_model": False}),
    })  # fmt: skip
    train(cfg, force=True)
    validate(cfg, force=True)
    doc = run_reach(cfg, force=True).document
    val = json.loads((out / "validation.json").read_text())
    kl = {float(m): (float(k), float(b[1]))
          for m, k, b in zip(val["mass"], val["kl_model"], val["kl_data_95"], strict=True)}
    rows = []
    for p in doc["flow_closure"].get("points", []):
        row = {"recipe": tag, "seed": seed, "mass": p["mass"],
               "kl": kl.get(p["mass"], (None, None))[0],
               "kl_band95": kl.get(p["mass"], (None, None))[1]}  # fmt: skip
        for key in KEYS:
            if key in p:
                row[key] = (p[key]["ratio"], p[key]["ratio_err"])
        rows.append(row)
    return {"recipe": tag, "variant": variant, "seed": seed, "rows": rows}


def summary(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per mass and boundary over the realisations: n, the mean ratio ± its standard error,
    the pulls' mean and rms."""
    rows = []
    masses = sorted({p["mass"] for r in records for p in r.get("points", [])})
    for m in masses:
        for key in KEYS:
            got = [p[key] for r in records for p in r.get("points", [])
                   if p["mass"] == m and key in p and p[key]["ratio"] is not None]  # fmt: skip
            if len(got) < 2:
                continue
            ratio = np.array([g["ratio"] for g in got])
            pull = np.array([g["pull"] for g in got])
            f = np.array([g["flow"] for g in got])
            d = np.array([g["pairs"] for g in got])
            r = f.mean() / d.mean()  # the ratio of the means: a mean of ratios carries the
            # pairs' noise into a bias (+σ² of the denominator: +10-15% at ε_high)
            r_err = math.sqrt(np.var(f - r * d, ddof=1) / f.size) / d.mean()
            rows.append({
                "mass": m, "at": key, "n": len(got),
                "ratio_of_means": float(r), "ratio_of_means_err": float(r_err),
                "ratio_mean": float(ratio.mean()),
                "ratio_sem": float(ratio.std(ddof=1) / math.sqrt(ratio.size)),
                "ratio_err_median": float(np.median([g["ratio_err"] for g in got])),
                "ratio_sd": float(ratio.std(ddof=1)),
                "pull_mean": float(pull.mean()),
                "pull_rms": float(np.sqrt(np.mean(pull**2))),
                "pull_rms_ref": f"1 +- {1 / math.sqrt(2 * pull.size):.2f}",
                "ctau_median": float(np.median([g["ctau"] for g in got])),
            })  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", type=Path, default=REPO / "analysis" / "na60_like.yaml")
    ap.add_argument("--events", type=int, default=None,
                    help="mock.events of every realisation (default: the config's): a quick run")
    ap.add_argument("--realisations", type=int, default=10)
    ap.add_argument("--first-seed", type=int, default=3100)
    ap.add_argument("--workdir", type=Path,
                    default=Path(tempfile.gettempdir()) / "gammastar_flow_closure")
    ap.add_argument("--mass-points", type=int, default=20)
    ap.add_argument("--reuse", action="store_true",
                    help="keep a realisation's finished yields and reach")  # fmt: skip
    ap.add_argument("--variant", type=json.loads, default=None,
                    help='flow keys of another recipe, e.g. \'{"mass_flatten": 0.5}\': '
                    "trained on each realisation's pairs (run first where missing)")  # fmt: skip
    ap.add_argument("--merge", type=Path, nargs="+", help="pool these outputs (last lines)")
    ap.add_argument("--run", type=Path, help="one run's pairs: the config's recipe and "
                    "--variant, each trained with every --seeds, side by side")  # fmt: skip
    ap.add_argument("--seeds", type=int, nargs="+", default=[12345, 777, 778])
    ap.add_argument("--tails", type=float, nargs="+", metavar="MASS",
                    help="in realisations already run (--first-seed, --realisations): the "
                    "pairs' and the flow's fraction above 20/30/40/60 GeV at these masses")  # fmt: skip
    args = ap.parse_args(argv)
    # a config resolves a relative output against its own folder: hand it absolute paths
    args.workdir = args.workdir.resolve()
    if args.run:
        args.run = args.run.resolve()
    t0 = time.perf_counter()
    if args.run:
        return recipes_main(args, t0)
    if args.tails:
        from gammastar.config import load_config

        seeds = range(args.first_seed, args.first_seed + args.realisations)
        rows = energy_tails(load_config(args.config), args.workdir, seeds, args.tails)
        print("| m (GeV) | E > (GeV) | pairs | flow | flow / pairs |")
        print("| --- | --- | --- | --- | --- |")
        for r in rows:
            rr = "—" if r["ratio"] is None else f"{r['ratio']:.3f} ± {r['ratio_err']:.3f}"
            print(f"| {r['mass']:g} | {r['e_cut']:g} | {r['pairs']:.4f} | {r['flow']:.4f} | {rr} |")
        result = {"benchmark": "flow_closure", "mode": "tails", "realisations": len(seeds),
                  "seconds": time.perf_counter() - t0, "tails": rows}  # fmt: skip
        print(json.dumps(result))
        return result
    if args.merge:
        records = []
        for p in args.merge:
            records += json.loads(p.read_text().strip().splitlines()[-1])["records"]
    else:
        from gammastar.config import load_config
        from gammastar_validation.coverage import with_events

        base = with_events(load_config(args.config), args.events)
        records = []
        for s in range(args.first_seed, args.first_seed + args.realisations):
            t = time.perf_counter()
            rec = run_one(base, s, args.workdir, args.mass_points, args.reuse, args.variant)
            records.append(rec)
            pts = {p["mass"]: p.get("eps_low", {}).get("pull") for p in rec.get("points", [])}
            print(f"seed {s}: {time.perf_counter() - t:.0f} s, pulls at eps_low {pts}", flush=True)
    rows = summary(records)
    print("| m (GeV) | at | n | cτ (m), median | mean 𝓔_flow / mean 𝓔_pairs | sd of the ratio "
          "| quoted error (median) | pull mean / rms (reference 0 / 1) |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['mass']:g} | {r['at']} | {r['n']} | {r['ctau_median']:.3g} | "
              f"{r['ratio_of_means']:.3f} ± {r['ratio_of_means_err']:.3f} | "
              f"{r['ratio_sd']:.3f} | {r['ratio_err_median']:.3f} | "
              f"{r['pull_mean']:+.2f} / {r['pull_rms']:.2f} |")
    result = {"benchmark": "flow_closure", "seconds": time.perf_counter() - t0,
              "events": args.events,
              "variant": getattr(args, "variant", None), "summary": rows,
              "records": records}  # fmt: skip
    print(json.dumps(result))
    return result


def energy_tails(base: Any, workdir: Path, seeds: range, masses: list[float],
                 cuts: tuple[float, ...] = (20.0, 30.0, 40.0, 60.0)) -> list[dict[str, Any]]:
    """``--tails``: in realisations already run, the weighted fraction of pairs inside F within
    ±``yields.mass_bin_width`` of each mass above each energy (moved to the mass at their own
    p_T and rapidity), of the pairs and of 4 flow samples at each pair's mass: the high-energy
    tail that carries 𝓔 at short lifetimes."""
    from gammastar.corrections.pair_acceptance import FiducialRegion
    from gammastar.flow.model import load
    from gammastar.reach.flow_closure import ClosureSettings, flow_rows, paired_kinematics

    window = float(base.yields.mass_bin_width)
    acc = {m0: ([], []) for m0 in masses}
    for s in seeds:
        run = workdir / f"seed{s}"
        rows, _ = flow_rows(realisation_config(base, s, run), run / "flow")
        fid = FiducialRegion.from_dict(
            json.loads((run / "yields.json").read_text())["extrapolation"]["fiducial"])
        model = load(run / "flow")
        for m0 in masses:
            p = paired_kinematics(model, rows, m0, settings=ClosureSettings(window, fid), seed=s)
            if isinstance(p, str):
                continue
            w_f = p.w[p.idx]
            acc[m0][0].append([np.sum(p.w * (p.e > c)) / p.w.sum() for c in cuts])
            acc[m0][1].append([np.sum(w_f * (p.fe > c)) / w_f.sum() for c in cuts])
    out = []
    for m0, (p, f) in acc.items():
        p, f = np.asarray(p), np.asarray(f)
        for j, c in enumerate(cuts):
            d = f[:, j] - p[:, j]
            out.append({"mass": m0, "e_cut": c, "pairs": float(p[:, j].mean()),
                        "flow": float(f[:, j].mean()),
                        "ratio": float(f[:, j].mean() / p[:, j].mean()) if p[:, j].mean() > 0
                        else None,
                        "ratio_err": float(d.std(ddof=1) / math.sqrt(d.size) / p[:, j].mean())
                        if p[:, j].mean() > 0 and d.size > 1 else None})  # fmt: skip
    return out


def recipes_main(args: Any, t0: float) -> dict[str, Any]:
    """``--run``: the config's recipe (the reference) and ``--variant`` on one run's pairs."""
    from gammastar.config import load_config

    base = load_config(args.config)
    recipes = (None, args.variant) if args.variant else (None,)  # the config's alone: once
    out = [recipe_on_run(base, args.run, args.workdir, s, v)
           for v in recipes for s in args.seeds]  # fmt: skip
    print("| recipe | seed | m (GeV) | 𝓔_flow/𝓔_pairs at ε_low | at ε_high | KL (95% band edge) |")
    print("| --- | --- | --- | --- | --- | --- |")

    def cell(v: Any) -> str:
        return "—" if not v or v[0] is None else f"{v[0]:.3f} ± {v[1]:.3f}"

    for o in out:
        for r in o["rows"]:
            kl = "—" if r["kl"] is None else f"{r['kl']:.3f} ({r['kl_band95']:.3f})"
            print(f"| {r['recipe']} | {r['seed']} | {r['mass']:g} | {cell(r.get('eps_low'))} "
                  f"| {cell(r.get('eps_high'))} | {kl} |")
    result = {"benchmark": "flow_closure", "mode": "run", "run": str(args.run),
              "variant": args.variant, "seconds": time.perf_counter() - t0,
              "reference": "the config's recipe, the same pairs and seeds",
              "recipes": out}  # fmt: skip
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
