"""A flow recipe against each realisation's own pairs, paired with the recipe it replaces.

``benchmarks/coverage_parts.py`` found the own flows (the config's recipe, trained by
``coverage.py --own-flow``) 1.4–1.5% above their own weighted pairs inside F at 0.6 GeV, where
the pairs close on the truth. This script retrains each realisation's flow with a changed
recipe (``--variant``, a JSON object of ``flow`` keys, e.g. ``'{"hidden_features": [64, 64]}'``;
the realisation's seed, one member, as the own flow) in ``--out``/<arm>_seed<S>/, next to links
to the realisation's pairs, and draws both flows inside F with the same seeds: per mass and cτ,
the A′ acceptance inside F of each flow against the realisation's own weighted pairs within
±``--window`` (ratio of means over realisations, :func:`coverage_parts.pairs_inside`), and the
new against the old flow (the mean of the paired ratios, ± its standard error). The reference
is the old recipe on the same pairs and draws. The JSON keeps each realisation's figures
(``realisations``), so that runs over parts of the seeds combine (:func:`summary` of their
rows).

Usage: ``python benchmarks/flow_recipe_closure.py --workdir /tmp/s19/work --arm full --seeds
1060 1119 --config /tmp/cov18/na60.yaml --variant '{"hidden_features": [64, 64]}' --out
/tmp/wide``. The last line is one JSON object.
"""

from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/ holds select.py etc.: keep it off sys.path so the stdlib `select` is found
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import importlib.util
import json
import os
import time
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("coverage_parts",
                                               REPO / "benchmarks" / "coverage_parts.py")  # fmt: skip
parts = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(parts)
LINKED = ("pairs.parquet", "select.json", "yields.json")
"""What the retraining reads from the realisation's directory (linked, not copied)."""


def retrain(base, run: Path, out: Path, seed: int, variant: dict[str, Any]) -> Path:
    """The realisation's flow with ``variant`` in ``out`` (trained once; reused when there):
    its directory."""
    from gammastar import flow

    out.mkdir(parents=True, exist_ok=True)
    for f in LINKED:
        if not (out / f).exists():
            os.symlink(run / f, out / f)
    if not (out / "flow" / "model.pt").exists():
        upd = {"ensemble": 1, "bootstrap": False, "workers": 1, **variant}
        cfg = base.model_copy(update={"output": str(out), "seed": seed,
                                      "flow": base.flow.model_copy(update=upd)})  # fmt: skip
        flow.train(cfg, force=True)
    return out / "flow"


def summary(rows, masses, ctaus) -> list[dict[str, Any]]:
    """Per (mass, cτ): old and new flow against the pairs (ratio of means over the
    realisations with pairs in the window) and new/old (mean of the paired ratios ± its
    standard error)."""
    out = []
    for m in masses:
        for j, ct in enumerate(ctaus):
            old, new, pairs = (np.array([r[f"{k}_{m}"][j] for r in rows])
                               for k in ("old", "new", "pairs"))  # fmt: skip
            ok = np.isfinite(pairs)
            ratio = new / old
            out.append({
                "mass": m, "ctau": float(ct), "n": int(ratio.size),
                "old_over_pairs": float(old[ok].mean() / pairs[ok].mean()),
                "new_over_pairs": float(new[ok].mean() / pairs[ok].mean()),
                "new_over_old": float(ratio.mean()),
                "new_over_old_sem": float(ratio.std(ddof=1) / np.sqrt(ratio.size))
                if ratio.size > 1 else float("nan"),
            })  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, required=True, help="the coverage run's directories")
    ap.add_argument("--arm", default="full")
    ap.add_argument("--seeds", type=int, nargs=2, required=True, metavar=("FIRST", "LAST"))
    ap.add_argument("--config", type=Path, default=REPO / "analysis" / "na60_like.yaml")
    ap.add_argument("--variant", type=json.loads, required=True, help="flow keys, as JSON")
    ap.add_argument("--out", type=Path, required=True, help="where the new flows go")
    ap.add_argument("--masses", type=float, nargs="+", default=[0.3, 0.6, 0.9])
    ap.add_argument("--ctaus", type=float, nargs="+", default=[1.0, 100.0])
    ap.add_argument("--window", type=float, default=0.03)
    ap.add_argument("--samples", type=int, default=20_000)
    args = ap.parse_args(argv)

    from gammastar import flow
    from gammastar.config import load_config
    from gammastar.corrections.pair_acceptance import FiducialRegion
    from gammastar.reach.acceptance import draw
    from gammastar.source.geometry import Geometry
    from gammastar.source.production import load_yields

    t0 = time.perf_counter()
    base = load_config(args.config)
    if bad := sorted(set(args.variant) - set(type(base.flow).model_fields)):
        ap.error(f"--variant: {', '.join(bad)}: not flow keys")
    seeds = range(args.seeds[0], args.seeds[1] + 1)
    parts.check_runs(args.workdir, args.arm, seeds, own_flow=True)
    geo = Geometry.from_config(base.detector)
    ctaus, n = np.asarray(args.ctaus), args.samples
    rows = []
    for s in seeds:
        run = args.workdir / f"{args.arm}_seed{s}"
        new_dir = retrain(base, run, args.out / f"{args.arm}_seed{s}", s, args.variant)
        fid = FiducialRegion.from_dict(load_yields(run / "yields.json").extrapolation["fiducial"])
        pairs = parts.read_pairs([run])
        row: dict[str, Any] = {"seed": s}
        for name, model in (("old", flow.load(run / "flow")), ("new", flow.load(new_dir))):
            for m in args.masses:
                sample = parts.flow_inside(model, fid, m, n, s + 22)
                row[f"{name}_{m}"] = draw(sample, m, n, geo, seed=s + 23).acceptance(ctaus).tolist()
        for m in args.masses:
            row[f"pairs_{m}"] = parts.pairs_inside(pairs, fid, m, args.window, geo, ctaus,
                                                   s + 24)[0].tolist()  # fmt: skip
        rows.append(row)
        print(f"seed {s}: {time.perf_counter() - t0:.0f} s", flush=True)
    table = summary(rows, args.masses, ctaus)
    print(f"\n{args.variant} against the config's recipe, {len(rows)} realisations:")
    print("| m (GeV) | cτ (m) | old flow / pairs | new flow / pairs | new / old |")
    print("| --- | --- | --- | --- | --- |")
    for t in table:
        print(f"| {t['mass']:g} | {t['ctau']:g} | {t['old_over_pairs']:.4f} | "
              f"{t['new_over_pairs']:.4f} | {t['new_over_old']:.4f} ± "
              f"{t['new_over_old_sem']:.4f} |")  # fmt: skip
    out = {"benchmark": "flow_recipe_closure", "variant": args.variant, "config": str(args.config),
           "seeds": list(args.seeds), "window": args.window, "samples": n, "rows": table,
           "realisations": rows,
           "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
