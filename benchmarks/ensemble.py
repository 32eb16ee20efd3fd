"""Benchmark of the flow ensemble's training: its members in parallel worker processes against
the same members one after the other.

The same ensemble (``--members`` members of the config's flow recipe, ``flow.bootstrap``: member
0 the nominal fit, the others Poisson replicas; the same seeds) is trained twice on the same
synthetic pairs (``benchmarks/flow.py``'s law, ``--pairs`` pairs, about the demo's size):
``flow.workers: 1`` (in this process, one member after the other, torch and the compiled kernels
on every core) and ``flow.workers: W`` (``--workers``, default the usable cores: W spawned
processes, one thread each). Reported: both wall times, their ratio (the parallel gain; at best
min(W, members)) and the largest weight difference between the two trainings' members (the
same optimisation: 0 or float rounding from the thread counts). The target, "training the
members runs in parallel where cores allow", is met when the gain is > 1; with numba's default
pool of all cores in every worker (the kernel threads not capped) the parallel training was
6.6× slower than its serial time's ideal (docs/explanation/flow.md "Ensemble").

Usage: python benchmarks/ensemble.py [--members 4] [--pairs 40000] [--epochs E] [--workers W]
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _flow_benchmark():
    """benchmarks/flow.py, beside this script (``python benchmarks/ensemble.py`` puts its
    folder first on ``sys.path``): its synthetic pairs."""
    import flow

    return flow


def train(cfg, pairs, out: Path, workers: int) -> float:
    """Wall time of ``flow.train`` of ``cfg``'s ensemble with ``workers`` processes."""
    from gammastar.flow.stage import train as train_stage

    cfg = cfg.model_copy(update={"flow": cfg.flow.model_copy(update={"workers": workers})})
    t0 = time.perf_counter()
    train_stage(cfg, output=out, pairs=pairs, force=True)
    return time.perf_counter() - t0


def max_weight_difference(a: Path, b: Path, members: int) -> float:
    """Largest |Δw| over every member's float parameters (``flow/``, ``flow/ensemble/<i>/``)."""
    import torch

    worst = 0.0
    for i in range(members):
        sub = "flow" if i == 0 else f"flow/ensemble/{i}"
        sa = torch.load(a / sub / "model.pt", weights_only=True)
        sb = torch.load(b / sub / "model.pt", weights_only=True)
        for k, v in sa.items():
            if torch.is_tensor(v) and v.is_floating_point():
                worst = max(worst, float((v.double() - sb[k].double()).abs().max()))
    return worst


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=REPO / "analysis" / "na60_like.yaml")
    ap.add_argument("--members", type=int, default=4)
    ap.add_argument("--pairs", type=int, default=40_000)
    ap.add_argument("--epochs", type=int, default=None, help="default: the config's")
    ap.add_argument("--workers", type=int, default=None, help="default: the usable cores")
    ap.add_argument("--seed", type=int, default=500)
    args = ap.parse_args(argv)
    if args.members < 2:
        ap.error(f"--members: an ensemble has >= 2 members, not {args.members}")

    from gammastar.config import load_config
    from gammastar.flow.stage import ensemble_workers

    base = load_config(args.config)
    upd = {"ensemble": args.members, "bootstrap": True, "workers": None}
    if args.epochs is not None:
        upd["epochs"] = args.epochs
    cfg = base.model_copy(update={"seed": args.seed, "flow": base.flow.model_copy(update=upd)})
    workers = args.workers or ensemble_workers(cfg.flow)
    pairs = _flow_benchmark().synthetic_pairs(args.pairs, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        serial, parallel = Path(tmp) / "serial", Path(tmp) / "parallel"
        t_par = train(cfg, pairs, parallel, workers)
        t_ser = train(cfg, pairs, serial, 1)
        dw = max_weight_difference(serial, parallel, args.members)
    gain = t_ser / t_par
    print(f"{args.members} members, {len(pairs)} pairs, {cfg.flow.epochs} epochs")
    print(f"one after the other (workers 1): {t_ser:.1f} s")
    print(f"in parallel (workers {workers}): {t_par:.1f} s")
    print(f"parallel gain {gain:.2f}x (at best {min(workers, args.members)}x); "
          f"largest weight difference {dw:.2g}")  # fmt: skip
    out = {
        "benchmark": "ensemble", "members": args.members, "pairs": len(pairs),
        "epochs": cfg.flow.epochs, "workers": workers, "serial_s": round(t_ser, 2),
        "parallel_s": round(t_par, 2), "parallel_gain": round(gain, 3),
        "max_weight_difference": dw, "cpu_count": os.cpu_count(),
        "machine": platform.machine(), "load_average_end": os.getloadavg(),
    }  # fmt: skip
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
