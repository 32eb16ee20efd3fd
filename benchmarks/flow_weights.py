"""Variance of the weighted-likelihood estimators of ``flow.weighting`` on strongly varying weights.

For a fixed flow (randomised parameters, as in tests/_flows.py) and synthetic points with
weights 1/A (A uniform in [A_min, 1], so 1/A up to 1/A_min; optionally a fraction of like-sign
rows with negative weights), it measures for ``likelihood`` (uniform draws, weights in the
loss), ``sampler`` (multinomial ∝ |w|) and ``stratified`` (systematic resampling ∝ |w|):

* the variance of one batch's loss gradient (summed over the parameters);
* the variance of an epoch's mean loss (many batches; where the count noise of multinomial
  draws shows);
* for the validation data side: the fraction of points that accept–reject unweighting
  (probability w/max w, the former ``validate.window_data``) keeps, against Kish's n_eff/N.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/flow_weights.py [--a-min 0.01] [--ss 0.0]

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

# benchmarks/ holds scripts named like stdlib modules (select.py): keep it off sys.path
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]

import numpy as np
import torch

from gammastar import flow as F
from gammastar.config import FlowConfig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50_000, help="points")
    ap.add_argument("--a-min", type=float, default=0.01, help="smallest acceptance")
    ap.add_argument("--ss", type=float, default=0.0, help="like-sign fraction (weight −w/2)")
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--batches", type=int, default=200, help="batches for the gradient variance")
    ap.add_argument("--epochs", type=int, default=40, help="epochs for the epoch-loss variance")
    ap.add_argument("--points", type=int, default=20_000, help="points per epoch")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()

    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)
    cfg = FlowConfig(transforms=3, bins=6, hidden_features=[16, 16])
    flow = F.build_flow(F.architecture_from_config(cfg))
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(0.1 * torch.randn_like(p))
    n = args.n
    x = torch.as_tensor(rng.normal(size=(n, 2)), dtype=torch.float32)
    c = torch.as_tensor(rng.normal(size=(n, 1)), dtype=torch.float32)
    # acceptance falls towards one edge of the feature space (correlated with x)
    acc = args.a_min + (1 - args.a_min) / (1 + np.exp(-2.0 * x[:, 0].numpy()))
    w = 1 / acc
    ss = rng.uniform(size=n) < args.ss
    w[ss] *= -0.5
    w = torch.as_tensor(w / w.mean(), dtype=torch.float32)
    params = [p for p in flow.parameters() if p.requires_grad]
    with torch.no_grad():
        lp_all = flow(c).log_prob(x)
    exact = float(-(w.double() * lp_all.double()).sum() / w.double().sum())

    out: dict[str, dict[str, float]] = {}
    for scheme in ("likelihood", "sampler", "stratified"):
        gen = torch.Generator().manual_seed(args.seed)
        draw = F.PointSampler(w, scheme)
        grads = []
        idx = draw.epoch(args.batches * args.batch, gen)
        for s in range(0, len(idx), args.batch):
            b = idx[s : s + args.batch]
            lp = flow(c[b]).log_prob(x[b])
            loss = -(draw.loss_weight[b] * lp).sum() / len(b)
            g = torch.autograd.grad(loss, params)
            grads.append(torch.cat([gi.reshape(-1) for gi in g]).double())
        gvar = float(torch.stack(grads).var(0).sum())
        ep = []
        for _ in range(args.epochs):
            i = draw.epoch(args.points, gen)
            ep.append(float(-(draw.loss_weight[i].double() * lp_all[i].double()).mean()))
        out[scheme] = {
            "grad_var": gvar,
            "epoch_loss_mean": float(np.mean(ep)),
            "epoch_loss_sd": float(np.std(ep, ddof=1)),
        }
    ref = out["stratified"]
    for v in out.values():
        v["grad_var_rel"] = v["grad_var"] / ref["grad_var"]
        v["epoch_loss_sd_rel"] = v["epoch_loss_sd"] / ref["epoch_loss_sd"]
    wn = w.double().numpy()
    pos = wn[wn > 0]
    summary = {
        "n": n,
        "a_min": args.a_min,
        "ss_fraction": args.ss,
        "w_max_over_mean": float(np.abs(wn).max() / np.abs(wn).mean()),
        "n_eff_over_n": F.effective_sample_size(wn) / n,
        "accept_reject_kept_over_n": float(pos.sum() / pos.max()) / len(pos),
        "n_eff_positive_over_n": F.effective_sample_size(pos) / len(pos),
        "exact_loss": exact,
        "schemes": out,
        "wall_s": time.perf_counter() - t0,
    }
    for s, v in out.items():
        print(
            f"{s:10s} grad var ×{v['grad_var_rel']:.2f}  epoch-loss sd ×{v['epoch_loss_sd_rel']:.2f}"
            f"  (mean {v['epoch_loss_mean']:.4f}, exact {exact:.4f})"
        )
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
