"""Benchmark of the kinematics flow: training speed and sampling throughput.

Reference, run in this same script: a plain zuko training loop with the paper's recipe
(App. A: Adam, lr 1e-3, weight decay 1e-5, batch 1024, 5e4 random points per epoch) on the
same model (the paper's architecture: 8 autoregressive RQ-spline steps, 6 bins, MADE 2 × 32,
LU linear transforms between steps, built by ``gammastar.flow.build_flow``), the same
preprocessing and the same train/validation split, for ``--ref-epochs`` epochs (default 20,
i.e. 1e6 points, not the paper's 500, to keep the benchmark at a few minutes). Then
gammastar's training (the default ``flow:`` config: batch 4096, peak learning rate 5e-3 with
cosine decay, compiled spline kernels) runs until its validation loss reaches the reference's
final one. Times exclude the validation passes of both.

Sampling: zuko's ``flow(c).sample((n,))`` (under ``torch.inference_mode``) vs gammastar's
compiled exact sampler (``FlowModel.sample_standardised``: raw flow output, float32) and the
full ``FlowModel.sample`` (+ latent draws, inverse preprocessing to float64 and the
physical-region check), at a fixed mass and with one mass per event; best of 3 calls of
``--sample-n`` points after a warm-up call. The first-call cost of the numba kernel is measured
in fresh subprocesses: with an empty cache (compilation) and with the cache just written.
``--only-sampling`` skips the training comparison: the model is then gammastar's recipe trained
for ``--sampling-epochs`` epochs (sampling speed does not depend on the training).

Data: synthetic pairs (q_T, E log-normal with mass-dependent medians, the same law as
tests/test_flow.py), ``--pairs`` events.

Usage:  OMP_NUM_THREADS=2 python benchmarks/flow.py [--threads 2] [--ref-epochs 8] [--seed S]
        [--interleave GS_EPOCHS]   reference and gammastar epochs alternating (same machine load)
        [--ref-cache FILE] [--no-sampling]   for iterating: reuse a reference run, skip sampling
        OMP_NUM_THREADS=2 python benchmarks/flow.py --only-sampling
The last line printed is one JSON object (``gammastar.fit_wall_s``: the whole ``fit`` call,
including the one-time loading of the compiled kernels and the validation passes).
"""

from __future__ import annotations

import os
import sys

# benchmarks/ holds scripts named like stdlib modules (select.py): keep it off sys.path
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]

import argparse
import json
import math
import platform
import subprocess
import tempfile
import time

import numpy as np
import pandas as pd
import torch

from gammastar import flow as F
from gammastar.config import FlowConfig


def synthetic_pairs(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    m = 0.22 + rng.exponential(0.3, 3 * n)
    m = m[m < 1.1][:n]
    return pd.DataFrame(
        {
            "m": m,
            "qT": rng.lognormal(np.log(0.3 + 0.4 * m), 0.5),
            "E": rng.lognormal(np.log(20 + 10 * m), 0.4),
            "charge": np.zeros(len(m), dtype=np.int8),
            "weight": 1.0,
            "weight_raw": 1.0,
        }
    )


def reference_epochs(data, cfg: FlowConfig, seed: int):
    """Plain zuko loop, paper hyper-parameters: a generator that trains one epoch per ``next``
    and yields the record (per-epoch val loss and cumulative train time, the flow)."""
    tr, va = F.split_indices(data.n, cfg.validation_fraction, seed)
    pre = F.Preprocessing.fit(data.qT[tr], data.E[tr], data.m[tr], data.weight[tr])

    def tens(idx):
        return (
            torch.as_tensor(pre.features(data.qT[idx], data.E[idx]), dtype=torch.float32),
            torch.as_tensor(pre.context(data.m[idx]), dtype=torch.float32),
        )

    x_tr, c_tr = tens(tr)
    x_va, c_va = tens(va)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    flow = F.build_flow(F.architecture_from_config(cfg))
    opt = torch.optim.Adam(flow.parameters(), lr=1e-3, weight_decay=1e-5)
    rec = {"val": [], "train_s": [], "flow": flow, "pre": pre}
    t_train = 0.0
    while True:
        # the global torch RNG is shared with gammastar's fit when interleaved: the reference
        # draws its batches from its own generator only
        t0 = time.perf_counter()
        idx = torch.randint(len(tr), (50_000,), generator=gen)
        flow.train()
        for s in range(0, len(idx), 1024):
            b = idx[s : s + 1024]
            loss = -flow(c_tr[b]).log_prob(x_tr[b]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        t_train += time.perf_counter() - t0
        flow.eval()
        with torch.no_grad():
            v = sum(
                float(-flow(c_va[s : s + 8192]).log_prob(x_va[s : s + 8192]).sum())
                for s in range(0, len(va), 8192)
            ) / len(va)
        rec["val"].append(v)
        rec["train_s"].append(t_train)
        print(f"reference epoch {len(rec['val'])}: val {v:.4f}  train time {t_train:.1f} s")
        yield rec


def reference_training(data, cfg: FlowConfig, seed: int, epochs: int) -> dict:
    """The reference for ``epochs`` epochs."""
    it = reference_epochs(data, cfg, seed)
    for _ in range(epochs):
        rec = next(it)
    return rec


def interleaved_training(data, cfg: FlowConfig, seed: int, ref_epochs: int, gs_epochs: int):
    """Reference and gammastar epochs alternating in one process (both see the same machine
    load): gammastar's ``gs_epochs`` epochs with ceil(ref_epochs/gs_epochs) reference epochs
    after each; the target is known only at the end, so gammastar's time to it is read from its
    history."""
    it = reference_epochs(data, cfg, seed)
    per = math.ceil(ref_epochs / gs_epochs)
    box = {}

    def cb(epoch, tl, vl):
        print(f"gammastar epoch {epoch + 1}: val {vl:.4f}", flush=True)
        for _ in range(per):
            if len(box.get("ref", {"val": []})["val"]) < ref_epochs:
                box["ref"] = next(it)
        return epoch + 1 >= gs_epochs

    res = F.fit(data, cfg, seed=seed, callback=cb)
    while len(box["ref"]["val"]) < ref_epochs:
        box["ref"] = next(it)
    ref = box["ref"]
    target = ref["val"][-1]
    h = res.history
    hit = next((i for i, v in enumerate(h["val"]) if v <= target), None)
    gs = {
        "val": h["val"][: hit + 1] if hit is not None else h["val"],
        "train_s": h["train_s"],
        "reached_epoch": hit + 1 if hit is not None else None,
        "time_to_target_s": h["train_s"][hit] if hit is not None else None,
        "fit_wall_s": None,
        "result": res,
    }
    return ref, gs


def gammastar_training(data, cfg: FlowConfig, seed: int, target: float) -> dict:
    reached = {}

    def cb(epoch, tl, vl):
        print(f"gammastar epoch {epoch + 1}: val {vl:.4f}", flush=True)
        if vl <= target:
            reached["epoch"] = epoch + 1
            return True
        return False

    res = F.fit(data, cfg, seed=seed, callback=cb)
    h = res.history
    return {
        "val": h["val"],
        "train_s": h["train_s"],
        "reached_epoch": reached.get("epoch"),
        "time_to_target_s": h["train_s"][reached["epoch"] - 1] if reached else None,
        "fit_wall_s": res.wall_s,
        "result": res,
    }


def rate(fn, n: int, repeats: int = 3) -> float:
    fn(min(n, 10_000))  # warm-up
    best = math.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(n)
        best = min(best, time.perf_counter() - t0)
    return n / best


_FIRST_CALL = """
import sys, time
t0 = time.perf_counter()
import numpy as np, torch
from gammastar import flow as F
from gammastar.config import FlowConfig
torch.set_num_threads(int(sys.argv[1]))
cfg = FlowConfig()
fl = F.build_flow(F.architecture_from_config(cfg))
pre = F.Preprocessing((0.0, 3.0), (1.0, 0.5), 0.5, 0.2)
model = F.FlowModel(fl, pre, F.architecture_from_config(cfg), (0.2, 1.1))
t1 = time.perf_counter()
model.sample(0.5, 1000, seed=1)
t2 = time.perf_counter()
model.sample(np.full(1000, 0.5), seed=1)
t3 = time.perf_counter()
print(t1 - t0, t2 - t1, t3 - t2)
"""


def first_call_seconds(threads: int) -> dict:
    """First FlowModel.sample call in fresh processes: numba cache empty, then just written."""
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for label in ("empty_cache", "warm_cache"):
            res = subprocess.run(
                [sys.executable, "-c", _FIRST_CALL, str(threads)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            imp, first, event = (float(v) for v in res.stdout.split()[-3:])
            out[label] = {"import_s": imp, "first_sample_s": first, "first_per_event_s": event}
    return out


def sampling_rates(model, zflow, n: int) -> dict:
    c = torch.full((1, 1), float(model.pre.context(np.array([0.5]))[0, 0]))

    def zuko_sample(k):
        with torch.inference_mode():
            return zflow(c).sample((k,))

    masses = np.random.default_rng(2).uniform(0.25, 1.0, n)
    return {
        "zuko_sample": rate(zuko_sample, min(n, 100_000), repeats=2),
        "gammastar_raw_fixed_mass": rate(lambda k: model.sample_standardised(0.5, k, seed=1), n),
        "gammastar_sample_fixed_mass": rate(lambda k: model.sample(0.5, k, seed=1), n),
        "gammastar_raw_per_event_mass": rate(
            lambda k: model.sample_standardised(masses[:k], k, seed=1), n
        ),
        "gammastar_sample_per_event_mass": rate(lambda k: model.sample(masses[:k], seed=1), n),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pairs", type=int, default=200_000)
    ap.add_argument("--ref-epochs", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--sample-n", type=int, default=1_000_000)
    ap.add_argument("--only-sampling", action="store_true", help="skip the training comparison")
    ap.add_argument("--sampling-epochs", type=int, default=2)
    ap.add_argument(
        "--ref-cache",
        help="JSON file: reuse the reference's per-epoch validation losses and times from an "
        "earlier run with the same seed, pairs, epochs and threads (for iterating; the default "
        "run measures the reference)",
    )
    ap.add_argument("--no-sampling", action="store_true", help="skip the sampling benchmark")
    ap.add_argument(
        "--interleave",
        type=int,
        metavar="GS_EPOCHS",
        help="alternate reference and gammastar epochs in one process (gammastar runs "
        "GS_EPOCHS epochs): a fairer ratio on a machine loaded by other jobs",
    )
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    # gammastar defaults, without the hold-out (the reference and gammastar see all pairs, as in
    # the figures recorded in docs/flow.md)
    cfg = FlowConfig(holdout_fraction=0.0)
    data = F.training_data(synthetic_pairs(args.pairs, args.seed), cfg)
    print(f"{data.n} pairs; torch threads {torch.get_num_threads()}", flush=True)
    first_call = None
    if not args.no_sampling:
        first_call = first_call_seconds(args.threads)
        print(f"first call: {first_call}", flush=True)

    if args.only_sampling:
        res = F.fit(data, cfg.model_copy(update={"epochs": args.sampling_epochs}), seed=args.seed)
        model = F.FlowModel(
            res.flow,
            res.preprocessing,
            F.architecture_from_config(cfg),
            (float(data.m.min()), float(data.m.max())),
        )
        rates = sampling_rates(model, res.flow, args.sample_n)
        summary = {
            "benchmark": "flow-sampling",
            "device": "cpu",
            "torch_threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(),
            "machine": platform.machine(),
            "sample_n": args.sample_n,
            "sampling_per_s": rates,
            "sampling_speedup": rates["gammastar_raw_fixed_mass"] / rates["zuko_sample"],
            "sampler_first_call": first_call,
            "gpu": None,
        }
        print(json.dumps(summary))
        return

    key = f"seed={args.seed} pairs={args.pairs} epochs={args.ref_epochs} threads={args.threads}"
    cache = {}
    if args.ref_cache and os.path.exists(args.ref_cache):
        with open(args.ref_cache) as fh:
            cache = json.load(fh)
    if args.interleave:
        ref, gs = interleaved_training(data, cfg, args.seed, args.ref_epochs, args.interleave)
        target = ref["val"][-1]
    elif key in cache:
        ref = dict(cache[key], flow=None)
        print(
            f"reference from {args.ref_cache}: val {ref['val'][-1]:.4f} in {ref['train_s'][-1]:.1f} s"
        )
    else:
        ref = reference_training(data, cfg, args.seed, args.ref_epochs)
        if args.ref_cache:
            cache[key] = {"val": ref["val"], "train_s": ref["train_s"]}
            with open(args.ref_cache, "w") as fh:
                json.dump(cache, fh)
    if not args.interleave:
        target = ref["val"][-1]
        gs = gammastar_training(data, cfg, args.seed, target)
    speedup = (
        ref["train_s"][-1] / gs["time_to_target_s"] if gs["time_to_target_s"] else float("nan")
    )

    summary = {
        "benchmark": "flow",
        "device": "cpu",
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "n_pairs": int(data.n),
        "reference": {
            "recipe": "zuko loop, Adam lr 1e-3 wd 1e-5, batch 1024, 5e4 points/epoch",
            "epochs": args.ref_epochs,
            "final_val_loss": target,
            "train_s": ref["train_s"][-1],
            "cached": key in cache and ref["flow"] is None,
            "interleaved": bool(args.interleave),
        },
        "gammastar": {
            "recipe": {
                k: getattr(cfg, k)
                for k in ("batch_size", "learning_rate", "schedule", "points_per_epoch", "epochs")
            },
            "epochs_to_target": gs["reached_epoch"],
            "time_to_target_s": gs["time_to_target_s"],
            "fit_wall_s": gs["fit_wall_s"],
            "val_at_stop": gs["val"][-1],
        },
        "train_speedup": speedup,
        "train_points_ratio": (args.ref_epochs * 50_000)
        / (gs["reached_epoch"] * (cfg.points_per_epoch or data.n))
        if gs["reached_epoch"]
        else None,
    }
    if args.no_sampling or ref["flow"] is None:
        print(json.dumps(summary))
        return

    # ---- sampling
    model = F.FlowModel(
        gs["result"].flow,
        gs["result"].preprocessing,
        F.architecture_from_config(cfg),
        (float(data.m.min()), float(data.m.max())),
    )
    rates = sampling_rates(model, ref["flow"], args.sample_n)

    summary["sample_n"] = args.sample_n
    summary["sampling_per_s"] = rates
    summary["sampling_speedup"] = rates["gammastar_raw_fixed_mass"] / rates["zuko_sample"]
    summary["sampler_first_call"] = first_call
    summary["gpu"] = None
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
