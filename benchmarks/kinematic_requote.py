"""A coverage output re-quoted with another set of bootstrap replicas for ``kinematic_model``.

``benchmarks/coverage.py --own-flow`` quotes the flow's error, ``kinematic_model``, as the
spread of 𝓔(m, cτ) over ``--flow``'s bootstrap replicas (with ``--replicas``), one set for all
realisations. The spread of k replicas is itself uncertain by 1/√(2(k − 1)) (±27% at 8), and
that error is common to every realisation of the sample, so one low draw moves a whole
coverage table. This script recomputes that part alone for every realisation of an output,
with the replicas given here, exactly as ``coverage.py``'s ``data_side`` does (the
realisation's ``yields.json`` extrapolation and fiducial region, ``--samples`` A′ draws seeded
with the realisation's seed + 1), and writes the output with the new part: ``coverage.py
--merge`` reads it like any other (only the ``--arm`` arm is kept). Each row keeps the part it
had as ``kinematic_model_before``. ``--config`` and ``--flow`` must be the outputs' own; a
realisation whose ``yields.json`` no longer gives the row's fiducial yield (its yields rerun
since) is named in a warning and in the output's ``yields_changed``.

Printed: per (mass, cτ) the rms of the part before and after and their ratio, the coverage
table and the joint test of each σ variant before and after (``coverage.py``'s functions on
the same rows). About 6 s per realisation on one core with 27 replicas.

Usage::

    python benchmarks/kinematic_requote.py --coverage docs/coverage/session31_fresh_32.json \\
        --workdir /tmp/s31/workA /tmp/s31/workB --config /tmp/s28/cfg20.yaml \\
        --flow /tmp/s28/fix/flow_a+0.0000/flow --replicas /tmp/s28/boot/flow B2 B3 \\
        --out requoted.json --jobs 2

The last line of the output is one JSON object with all figures.
"""

from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/ holds select.py: keep it off sys.path so the stdlib `select` is found
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import contextlib
import importlib.util
import io
import json
import math
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location(
    "coverage_bench", REPO / "benchmarks" / "coverage.py"
)
coverage = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(coverage)


def run_dirs(workdirs: list[Path], arm: str, seeds) -> dict[int, Path]:
    """Each seed's run directory ``<workdir>/<arm>_seed<S>`` in the first of ``workdirs`` that
    holds it with a ``yields.json``.

    Raises:
        SystemExit: a seed found in none of them (one line naming the seeds).
    """
    found, missing = {}, []
    for s in seeds:
        here = [w / f"{arm}_seed{s}" for w in workdirs]
        hit = next((d for d in here if (d / "yields.json").is_file()), None)
        if hit is None:
            missing.append(s)
        else:
            found[s] = hit
    if missing:
        shown = ", ".join(str(s) for s in missing[:8]) + (" …" if len(missing) > 8 else "")
        raise SystemExit(f"--workdir: no {arm}_seed<S>/yields.json for seeds {shown} in "
                         f"{', '.join(str(w) for w in workdirs)}")  # fmt: skip
    return found


def requote_rows(rows: list[dict[str, Any]], kin: dict[int, dict[tuple[float, float], float]]):
    """``rows`` with each ``sigma.kinematic_model`` replaced by ``kin[seed][(mass, cτ)]`` and the
    old part kept as the row's ``kinematic_model_before`` (``None`` where it had none); new
    dicts, the inputs unchanged.

    Example:
        >>> rows = [{"seed": 1, "mass": 0.9, "ctau": 1.0, "sigma": {"kinematic_model": 0.02}}]
        >>> new = requote_rows(rows, {1: {(0.9, 1.0): 0.03}})
        >>> new[0]["sigma"]["kinematic_model"], new[0]["kinematic_model_before"]
        (0.03, 0.02)
    """
    out = []
    for r in rows:
        before = r.get("kinematic_model_before", r["sigma"].get("kinematic_model"))
        sigma = dict(r["sigma"]) | {"kinematic_model": kin[r["seed"]][(r["mass"], r["ctau"])]}
        out.append({k: v for k, v in r.items() if k != "pulls"} | {
            "sigma": sigma, "kinematic_model_before": before})  # fmt: skip
    return out


def rms_by_point(rows: list[dict[str, Any]], key) -> dict[tuple[float, float], float]:
    """Per (mass, cτ) the root mean square over the rows of ``key(row)``."""
    acc: dict[tuple[float, float], list[float]] = {}
    for r in rows:
        acc.setdefault((r["mass"], r["ctau"]), []).append(float(key(r) or 0.0))
    return {p: math.sqrt(float(np.mean(np.square(v)))) for p, v in sorted(acc.items())}


_WORKER: dict[str, Any] = {}


def _load_geometry(config: str | Path) -> Any:
    """The detector geometry of ``config``."""
    from gammastar.config import load_config
    from gammastar.source.geometry import Geometry

    return Geometry.from_config(load_config(config).detector)


def _init(config: str, flow: str, replicas: list[str]) -> None:
    """Each worker process: one thread, the geometry and the replicas loaded once."""
    import torch

    torch.set_num_threads(1)
    _WORKER["geo"] = _load_geometry(config)
    _WORKER["replicas"] = coverage.bootstrap_replicas(Path(flow), [Path(r) for r in replicas])


def _spread(job: tuple[int, str, list[float], list[float], int]):
    """``coverage.data_side``'s kinematic_model of one realisation: its seed, {(mass, cτ):
    part} and the fiducial yield its ``yields.json`` gives at each mass."""
    from gammastar.corrections.pair_acceptance import FiducialRegion
    from gammastar.source.production import load_yields
    from gammastar.yields.extrapolation import Extrapolation

    seed, run, masses, ctaus, samples = job
    ex = load_yields(Path(run) / "yields.json").extrapolation
    extrap, fiducial = Extrapolation.from_dict(ex), FiducialRegion.from_dict(ex["fiducial"])
    out = {}
    for m in masses:
        kin = coverage.kinematic_spread(_WORKER["replicas"], extrap, fiducial, m,
                                        np.asarray(ctaus), _WORKER["geo"], samples, seed + 1)  # fmt: skip
        out.update({(m, float(c)): float(k) for c, k in zip(ctaus, kin, strict=True)})
    return seed, out, coverage.fiducial_yield_at(Path(run) / "yields.json", masses)


def changed_yields(rows: list[dict[str, Any]], y_fid: dict[int, dict[float, float | None]]):
    """The seeds whose recorded ``yield_fiducial`` differs (relative 1e-9: the JSON round
    trip) from the one their run's ``yields.json`` gives now; rows without one are not
    compared."""
    out = set()
    for r in rows:
        was, now = r.get("yield_fiducial"), y_fid.get(r["seed"], {}).get(r["mass"])
        if was is not None and (now is None or not math.isclose(was, now, rel_tol=1e-9)):
            out.add(r["seed"])
    return sorted(out)


def quiet_merge(paths: list[Path]) -> dict[str, Any]:
    """``coverage.merge`` of ``paths`` with its printing kept back (its checks still apply)."""
    with contextlib.redirect_stdout(io.StringIO()):
        return coverage.merge(paths)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--coverage", type=Path, nargs="+", required=True,
                    help="coverage.py outputs (run or merged) of --own-flow realisations")  # fmt: skip
    ap.add_argument("--workdir", type=Path, nargs="+", required=True,
                    help="where the realisations' run directories are")  # fmt: skip
    ap.add_argument("--config", type=Path, required=True, help="the coverage config (geometry)")
    ap.add_argument("--flow", type=Path, required=True, help="coverage.py's --flow")
    ap.add_argument("--replicas", type=Path, nargs="*", default=[],
                    help="more bootstrap ensembles of --flow's pairs (pooled with its own)")  # fmt: skip
    ap.add_argument("--arm", default="full")
    ap.add_argument("--samples", type=int, default=None,
                    help="A′ draws per mass (default: the outputs' samples)")  # fmt: skip
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--out", type=Path, required=True, help="the re-quoted output (new file)")
    args = ap.parse_args(argv)
    if args.out.exists():
        ap.error(f"--out: {args.out} exists (choose a new file)")
    if not args.out.parent.is_dir():
        ap.error(f"--out: {args.out.parent} is not a directory")
    if args.jobs < 1:
        ap.error("--jobs: at least 1")
    if args.samples is not None and args.samples < 1:
        ap.error("--samples: at least 1")
    try:  # here, not first in a worker
        _load_geometry(args.config)
    except Exception as e:  # noqa: BLE001 (one line naming the option)
        ap.error(f"--config: {e}")
    before = quiet_merge(args.coverage)
    for opt, given in (("config", args.config), ("flow", args.flow)):
        if before.get(opt) and Path(before[opt]).resolve() != given.resolve():
            ap.error(f"--{opt}: {given} is not the outputs' {before[opt]}")
    if args.arm not in before["arms"]:
        ap.error(f"--arm: no arm {args.arm!r} in the outputs ({', '.join(before['arms'])})")
    if not before.get("own_flow"):
        ap.error("--coverage: not --own-flow outputs (their draws share one seed, not the "
                 "realisation's; this script re-quotes own-flow realisations)")  # fmt: skip
    samples = args.samples or before.get("samples")
    if not samples:
        ap.error("--samples: the outputs record none; give it")
    try:
        replicas = coverage.bootstrap_replicas(args.flow, args.replicas)
    except Exception as e:  # noqa: BLE001 (the same one line as coverage.py's --replicas)
        ap.error(f"--replicas: {e}")
    if not replicas:
        ap.error("--replicas: fewer than two bootstrap replicas")
    arm = before["arms"][args.arm]
    rows = arm["rows"]
    masses = sorted({r["mass"] for r in rows})
    ctaus = sorted({r["ctau"] for r in rows})
    dirs = run_dirs(args.workdir, args.arm, sorted({r["seed"] for r in rows}))
    jobs = [(s, str(d), masses, ctaus, int(samples)) for s, d in dirs.items()]
    init = (str(args.config), str(args.flow), [str(r) for r in args.replicas])
    kin: dict[int, dict[tuple[float, float], float]] = {}
    y_fid: dict[int, dict[float, float | None]] = {}
    if args.jobs == 1:
        _init(*init)
        results = map(_spread, jobs)
    else:
        pool = ProcessPoolExecutor(args.jobs, initializer=_init, initargs=init)
        results = pool.map(_spread, jobs)
    try:
        for i, (seed, parts, y) in enumerate(results, 1):
            kin[seed], y_fid[seed] = parts, y
            if i % 8 == 0 or i == len(jobs):
                print(f"{i}/{len(jobs)} realisations re-quoted", flush=True)
    finally:
        if args.jobs > 1:
            pool.shutdown(cancel_futures=True)
    new_rows = requote_rows(rows, kin)
    if changed := changed_yields(rows, y_fid):
        print(f"warning: {len(changed)} realisations' yields.json no longer give their rows' "
              f"fiducial yield (rerun since): seeds {', '.join(map(str, changed))}; their "
              "part is computed on today's extrapolation", flush=True)  # fmt: skip
    out = {k: v for k, v in before.items() if k not in ("arms", "merged")}
    out["kinematic_model"] = {  # coverage.py's record, for the replicas of this quote
        "replicas": len(replicas),
        "seeds": [r.meta.get("meta", {}).get("seed") for r in replicas],
        "ensembles": [str(d) for d in [args.flow, *args.replicas]],
        "common": "each realisation trains its own flow: these replicas give the quoted size only",
    }
    out["kinematic_requote"] = {
        "from": [str(p) for p in args.coverage], "flow": str(args.flow),
        "replicas": [str(r) for r in args.replicas], "members": len(replicas),
        "samples": int(samples), "yields_changed": changed,
    }  # fmt: skip
    out["arms"] = {args.arm: {k: v for k, v in arm.items() if k not in ("table", "joint",
                                                                          "regression")}
                   | {"rows": new_rows}}  # fmt: skip
    from gammastar.core.artifacts import write_json

    write_json(args.out, out)  # atomic, as the user's umask allows
    after = quiet_merge([args.out])
    rb = rms_by_point(new_rows, lambda r: r["kinematic_model_before"])
    ra = rms_by_point(new_rows, lambda r: r["sigma"]["kinematic_model"])
    sigmas = coverage.ARM_SIGMAS[args.arm]
    print(
        f"\n{len(dirs)} realisations; kinematic_model from {len(replicas)} replicas "
        "(rms over the realisations, before → after)\n"
    )
    print("| m (GeV) | cτ (m) | before | after | after / before |\n| --- | --- | --- | --- | --- |")
    for p in rb:
        ratio = ra[p] / rb[p] if rb[p] > 0 else None
        print(
            f"| {p[0]:g} | {p[1]:g} | {rb[p]:.4f} | {ra[p]:.4f} | "
            + (f"{ratio:.2f} |" if ratio is not None else "— |")
        )
    for name, res in (("before", before), ("after", after)):
        a = res["arms"][args.arm]
        print(f"\n### {name}\n" + "\n".join(coverage.markdown(a["table"], sigmas)))
        print("\n".join(coverage.joint_lines(a["joint"])), flush=True)
    summary = {
        "benchmark": "kinematic_requote", "out": str(args.out), "realisations": len(dirs),
        "members": len(replicas), "yields_changed": changed,
        "kinematic_model": [{"mass": p[0], "ctau": p[1], "before": rb[p], "after": ra[p],
                             "ratio": ra[p] / rb[p] if rb[p] > 0 else None} for p in rb],
        "joint": {name: {w: {k: res["arms"][args.arm]["joint"][w].get(k)
                             for k in ("max_abs_z", "critical_5pct", "p_value")}
                         for w in res["arms"][args.arm]["joint"]}
                  for name, res in (("before", before), ("after", after))},
        "table": {name: res["arms"][args.arm]["table"] for name, res in (("before", before),
                                                                          ("after", after))},
    }  # fmt: skip
    print(json.dumps(summary, allow_nan=False))
    return summary


if __name__ == "__main__":
    main()
