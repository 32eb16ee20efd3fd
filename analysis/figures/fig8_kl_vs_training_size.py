"""Paper Fig. 8: KL divergence of the flow vs the data as a function of the number of
training points, at three masses, with the seed (initialisation) spread.

For each training size N a fixed random subset of N training rows (the ``flow.data`` rows of
the run's pairs table) is drawn once; for each seed a flow is trained on it with
:func:`gammastar.flow.stage.train` (cached in ``<run>/fig8/<budget>/n<N>_s<seed>/flow/``) and compared
with the full data in 30 MeV windows by :func:`gammastar.flow.validate.kl_window` (model vs data,
averaged over draws). Black line: mean over seeds; dotted: ±1σ over seeds (initialisation
variance, as in the paper); green/yellow: the data-vs-data 68% / 95% bands.

``--budget small`` (default, about a minute on 2 cores): 3 sizes up to the available rows,
3 seeds, 15 epochs of 2 × 10⁴ points (or the config's recipe where that is smaller), 10 KL
draws. ``--budget paper``: 6 sizes from 500 to
all rows, 10 seeds, the config's ``flow:`` recipe, the config's ``validate.repeats``
(roughly 60 trainings: tens of minutes). The paper used up to 10⁶ points; the default mock
has about 10⁴ OS pairs, so raise ``mock.events`` for larger sizes.

Usage: ``python analysis/figures/fig8_kl_vs_training_size.py [CONFIG] [--output RUN] [--force]
[--budget small|paper]``
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import _common as c
import numpy as np

MASSES = (0.3, 0.7, 1.05)
"""The paper's masses 0.3, 0.7, 1.1 GeV; 1.05 instead of 1.1 (the data end at 1.1 GeV)."""

BUDGETS: dict[str, dict[str, Any]] = {
    "small": {
        "sizes": (1000, 3000, 10_000),
        "seeds": 3,
        "flow": {"epochs": 15, "points_per_epoch": 20_000},
        "repeats": 10,
    },
    "paper": {"sizes": None, "seeds": 10, "flow": {}, "repeats": None},
}


def sizes_for(budget: dict[str, Any], n_rows: int) -> list[int]:
    """Training sizes of a budget, capped at (and always including) the available rows."""
    if budget["sizes"] is None:
        raw = np.geomspace(500, max(n_rows, 501), 6)
    else:
        raw = np.asarray(budget["sizes"], dtype=float)
    sizes = sorted({int(min(round(s), n_rows)) for s in raw})
    if n_rows not in sizes and n_rows < max(raw):
        sizes.append(n_rows)
    return [s for s in sizes if s >= 50]


def plot(result: dict[str, Any]) -> Any:
    """One panel per mass: KL vs N (mean and ±1σ over seeds) with the data-vs-data bands."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    n = np.asarray(result["sizes"], dtype=float)
    masses = result["mass"]
    fig, axes = plt.subplots(1, len(masses), figsize=(4.2 * len(masses), 3.6), squeeze=False)
    for j, m0 in enumerate(masses):
        ax = axes[0, j]
        kl = np.asarray(result["kl_model"][j], dtype=float)  # (sizes, seeds)
        mean, std = np.nanmean(kl, axis=1), np.nanstd(kl, axis=1, ddof=1)
        b68, b95 = result["kl_data_68"][j], result["kl_data_95"][j]
        ax.axhspan(*b95, color="gold", alpha=0.6, label="data vs data 95%")
        ax.axhspan(*b68, color="limegreen", alpha=0.7, label="data vs data 68%")
        ax.plot(n, mean, "k-o", ms=3, label=f"model vs data (mean of {kl.shape[1]} seeds)")
        ax.plot(n, mean + std, "k:", lw=1.2, label=r"$\pm1\sigma$ initialisation")
        ax.plot(n, mean - std, "k:", lw=1.2)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xticks(n, [f"{int(v)}" for v in n])
        ax.set_xlabel("number of training points")
        ax.set_title(
            rf"$m_{{\gamma^*}}$ = {m0:g} GeV ({result['n_data'][j]} data points)", fontsize=10
        )
        if j == 0:
            ax.set_ylabel("KL divergence")
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def main(argv: list[str] | None = None) -> Path:
    """Write ``<run>/figures/paper_fig8.png`` (and ``.pdf``); return the PNG path."""
    t0 = time.perf_counter()
    p = c.parser(__doc__)
    p.add_argument(
        "--budget",
        choices=sorted(BUDGETS),
        default="small",
        help="small (default): 3 sizes x 3 seeds, short trainings; paper: 6 sizes x 10 seeds, "
        "the config's recipe",
    )
    args = p.parse_args(argv)
    cfg = c.load(args)
    paths = c.figure_paths(cfg, 8, force=args.force)
    c.ensure(cfg, ("generate", "select"))
    from gammastar.core.artifacts import make_meta, write_json
    from gammastar.flow.data import training_data
    from gammastar.flow.model import load
    from gammastar.flow.validate import KLSettings, kl_window, window_data

    budget = BUDGETS[args.budget]
    pairs = c.read_pairs(cfg)
    rows = pairs if cfg.flow.data == "subtracted" else pairs[pairs["charge"] == 0]
    sizes = sizes_for(budget, len(rows))
    seeds = [cfg.seed + i for i in range(budget["seeds"])]
    repeats = budget["repeats"] or cfg.validate_.repeats
    recipe = {  # a budget never trains longer than the config's own recipe
        k: min(v, getattr(cfg.flow, k) or v) for k, v in budget["flow"].items()
    }
    vcfg = cfg.validate_
    rng = np.random.default_rng(cfg.seed)
    data = training_data(pairs, cfg.flow, source="pairs", seed=cfg.seed)
    lo, hi = float(data.m.min()), float(data.m.max())
    masses = [m for m in MASSES if lo <= m <= hi]
    windows = [window_data(data, m0, vcfg.window) for m0 in masses]  # (qT, E, weight)
    base = cfg.output_dir / "fig8" / args.budget
    kl = np.full((len(masses), len(sizes), len(seeds)), np.nan)
    kl_data: list[list[float]] = [[] for _ in masses]
    print(f"fig8 ({args.budget}): sizes {sizes}, seeds {seeds}, masses {masses}", flush=True)
    for i, n in enumerate(sizes):
        pick = np.sort(np.random.default_rng(cfg.seed).choice(len(rows), n, replace=False))
        subset = rows.iloc[pick]
        for k, s in enumerate(seeds):
            fcfg = cfg.flow.model_copy(update={**recipe, "seed": s})
            sub = cfg.model_copy(update={"flow": fcfg})
            d = c.train_cached(sub, base / f"n{n}_s{s}", subset, force=args.retrain, label=f"N={n}")
            model = load(d)
            for j, m0 in enumerate(masses):
                res = kl_window(
                    model,
                    windows[j],
                    m0,
                    settings=KLSettings(k=vcfg.k, repeats=repeats, max_points=vcfg.max_points),
                    rng=rng,
                )
                kl[j, i, k] = res["kl_model"]
                kl_data[j] += res["kl_data"]

    def q(v: list[float], a: float, b: float) -> list[float]:
        return [float(x) for x in np.quantile(v, [a, b])] if v else [np.nan, np.nan]

    result = {
        "mass": masses,
        "sizes": sizes,
        "seeds": seeds,
        "kl_model": kl.tolist(),
        "kl_data_68": [q(v, 0.16, 0.84) for v in kl_data],
        "kl_data_95": [q(v, 0.025, 0.975) for v in kl_data],
        "n_data": [len(w[0]) for w in windows],
        "meta": make_meta(
            config_sha256=cfg.section_sha256("flow", "validate"),
            seed=cfg.seed,
            budget=args.budget,
            budget_settings={**budget, "flow": recipe},
            repeats=repeats,
            window=vcfg.window,
            k=vcfg.k,
        ),
    }
    write_json(base / "kl_vs_size.json", result, force=True)
    for j, m0 in enumerate(masses):
        mean = np.nanmean(kl[j], axis=1)
        std = np.nanstd(kl[j], axis=1, ddof=1) if len(seeds) > 1 else np.zeros(len(sizes))
        row = ", ".join(f"N={n}: {a:.3f}±{b:.3f}" for n, a, b in zip(sizes, mean, std, strict=True))
        b68 = result["kl_data_68"][j]
        print(f"m = {m0:g} GeV: KL {row}; data-vs-data 68% [{b68[0]:.3f}, {b68[1]:.3f}]")
    return c.done(c.save(plot(result), paths, note=c.provenance(cfg)), t0)


if __name__ == "__main__":
    sys.exit(c.run_main(main))
