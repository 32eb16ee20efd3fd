"""Benchmark of the whole chain on a node: ``gammastar run`` of an analysis (default the shipped
``analysis/na60_like.yaml``, every stage forced) on all the CPUs this process may use, against
the same run restricted to ``--cores`` of them (default 2, as ``taskset -c 0,1`` would).

Each run is a fresh interpreter (this script with ``--child``) running the command line
``gammastar run CONFIG --output DIR --force all`` in a fresh run directory; the stage lines it
prints mark each stage's wall time and CPU time (user + system of the process and of the
worker processes it waited for: the reach's, the flow ensemble's, the selection's local
ones). numba's one-time compilation is left out: ``python -m gammastar.kernels`` fills its
cache first. ``--repeat`` interleaves the two runs and keeps each one's least total wall time.

Reported per stage and in all: wall and CPU seconds of both runs, the restricted run's wall
over the whole node's (the node's speed-up; 1 where the node has no more CPUs than
``--cores``) and CPU over wall (the cores a stage keeps busy). The issue's targets on a
16-core node: the chain ≤ 30 s, its reach ≤ 1/3 of the restricted reach.

``--quick``: the config at its smallest (10⁵ mock events, 2 epochs, an 8 × 20 reach grid;
that it runs, not its figures).

Usage: python benchmarks/chain.py [--config analysis/na60_like.yaml] [--cores 2] [--repeat 1]
[--workdir DIR] [--quick]
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_select import machine  # this folder is on sys.path when run as a script

REPO = Path(__file__).resolve().parents[1]
_LINE = re.compile(r"^\[(\w+)\] (running|done in)")


def _cpu() -> float:
    """CPU seconds of this process and of the children it waited for."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def child(config: str, out: str) -> None:
    """``gammastar run CONFIG --output OUT --force all`` in this process, its stage lines
    timed; prints one JSON object: per stage (and ``report``, the rest) wall and CPU seconds."""
    from gammastar import pipeline
    from gammastar.cli import main as cli

    marks: dict[str, dict[str, tuple[float, float]]] = {}
    real = pipeline.run

    def run(cfg, *, echo=print, **kw):
        def hook(line: str) -> None:
            m = _LINE.match(line)
            if m:
                marks.setdefault(m.group(1), {})[m.group(2)] = (time.perf_counter(), _cpu())
            echo(line)

        return real(cfg, echo=hook, **kw)

    pipeline.run = run
    t0, c0 = time.perf_counter(), _cpu()
    rc = cli(["run", config, "--output", out, "--force", "all"])
    t1, c1 = time.perf_counter(), _cpu()
    stages, last = {}, (t0, c0)
    for name, m in marks.items():
        if "running" in m and "done in" in m:
            (ta, ca), (tb, cb) = m["running"], m["done in"]
            stages[name] = {"wall_s": round(tb - ta, 2), "cpu_s": round(cb - ca, 2)}
            last = max(last, (tb, cb))
    stages["report"] = {"wall_s": round(t1 - last[0], 2), "cpu_s": round(c1 - last[1], 2)}
    print(json.dumps({"rc": rc, "wall_s": round(t1 - t0, 2), "cpu_s": round(c1 - c0, 2),
                      "stages": stages}))  # fmt: skip


def one_run(config: str, out: Path, cpus: list[int] | None) -> dict:
    """One ``--child`` run in a fresh interpreter, on ``cpus`` (``None``: as this process)."""

    def pin() -> None:
        if cpus is not None:
            os.sched_setaffinity(0, cpus)

    proc = subprocess.run(
        [sys.executable, __file__, "--child", config, str(out)],
        capture_output=True, text=True, preexec_fn=pin, cwd=REPO, check=False,
    )  # fmt: skip
    lines = [x for x in proc.stdout.splitlines() if x.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"chain: the run on {cpus or 'all CPUs'} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


def quick_config(config: str, work: Path) -> str:
    """``config`` at its smallest (``--quick``), written in ``work`` (its relative paths made
    absolute)."""
    import yaml

    src = (REPO / config).resolve()
    cfg = yaml.safe_load(src.read_text())
    cfg["mock"]["events"] = 100_000
    cfg["flow"].update(epochs=2, points_per_epoch=20_000)
    cfg["validate"]["repeats"] = 5
    cfg["reach"].update(mass_points=8, eps_points=20)
    text = yaml.safe_dump(cfg, sort_keys=False).replace("../", f"{src.parent.parent}/")
    out = work / "quick.yaml"
    out.write_text(text)
    return str(out)


def main() -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="analysis/na60_like.yaml")
    ap.add_argument("--cores", type=int, default=2, help="CPUs of the restricted reference run")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--workdir", type=Path, default=None, help="keep the run directories here")
    ap.add_argument("--quick", action="store_true", help="the config at its smallest")
    ap.add_argument("--child", nargs=2, metavar=("CONFIG", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return {}

    allowed = sorted(os.sched_getaffinity(0))
    restricted = allowed[: max(1, args.cores)]
    subprocess.run([sys.executable, "-m", "gammastar.kernels"], check=True, cwd=REPO,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    best: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        config = quick_config(args.config, work) if args.quick else args.config
        for r in range(args.repeat):
            for key, cpus in (("all", None), ("restricted", restricted)):
                res = one_run(config, work / f"{key}{r}", cpus)
                if key not in best or res["wall_s"] < best[key]["wall_s"]:
                    best[key] = res
    node, ref = best["all"], best["restricted"]
    print(f"gammastar run {args.config}{' (quick)' if args.quick else ''}: {len(allowed)} CPUs "
          f"against {len(restricted)} (least of {args.repeat})")  # fmt: skip
    print(f"{'stage':<10} {'wall all':>9} {'cpu all':>8} {'wall ref':>9} {'cpu ref':>8} "
          f"{'ref/all':>8}")  # fmt: skip
    ratios = {}
    for name, s in node["stages"].items():
        t = ref["stages"].get(name, {"wall_s": float("nan"), "cpu_s": float("nan")})
        ratios[name] = round(t["wall_s"] / s["wall_s"], 3) if s["wall_s"] > 0 else None
        print(f"{name:<10} {s['wall_s']:>9.1f} {s['cpu_s']:>8.1f} {t['wall_s']:>9.1f} "
              f"{t['cpu_s']:>8.1f} {ratios[name] or float('nan'):>8.2f}")  # fmt: skip
    speedup = ref["wall_s"] / node["wall_s"]
    print(f"{'total':<10} {node['wall_s']:>9.1f} {node['cpu_s']:>8.1f} {ref['wall_s']:>9.1f} "
          f"{ref['cpu_s']:>8.1f} {speedup:>8.2f}")  # fmt: skip
    out = {
        "benchmark": "chain", "config": args.config, "machine": machine(),
        "cores_all": len(allowed), "cores_restricted": len(restricted),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "repeats": args.repeat,
        "quick": args.quick,
        "all": node, "restricted": ref, "speedup_all_vs_restricted": round(speedup, 3),
        "stage_speedups": ratios,
        "target": "16 cores: wall_s <= 30; reach wall <= 1/3 of the restricted reach",
        "load_average_end": os.getloadavg(),
    }  # fmt: skip
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
