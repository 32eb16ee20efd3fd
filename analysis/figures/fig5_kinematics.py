"""Paper Fig. 5: q_T and E of A′ samples from two flows vs the mock data, in mass rows.

"NF" is the run's flow (trained on the OS pairs, i.e. signal + combinatorial background);
"NF (no bg)" is the same recipe and seed trained without the truth-combinatorial pairs
(``flow.data: os_signal``, ``<run>/nobkg/flow/``, trained here when missing or stale). The
filled histograms are the (unfolded, weighted) OS training data within 30 MeV of each mass,
stacked as signal (blue) and combinatorial background (orange), normalised to unit area; the
flow samples (gray lines) are normalised likewise. Needs mock input (truth channels).

No package function draws two flows with the data's components, so the plot is drawn here;
the samples come from :meth:`gammastar.flow.model.FlowModel.sample`.

Usage: ``python analysis/figures/fig5_kinematics.py [CONFIG] [--output RUN] [--force]``
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import _common as c
import numpy as np

HALF_WINDOW = 0.03
"""Data rows with |m − m_A′| < 30 MeV (the paper's Fig. 5 caption)."""
N_SAMPLES = 50_000
"""Flow samples per mass and model."""


def plot_two_flows(
    pairs: Any,
    use_weights: bool,
    models: tuple[Any, Any],
    masses: tuple[float, ...],
    seed: int,
) -> Any:
    """Rows = masses, columns = (q_T, E): stacked data components and two flows' samples."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os_ = pairs[pairs["charge"] == 0]
    w_all = os_["weight" if use_weights else "weight_raw"].to_numpy(np.float64)
    m_all = os_["m"].to_numpy(np.float64)
    bkg_all = os_["channel"].to_numpy() == 0
    rng = np.random.default_rng(seed)
    fig, axes = plt.subplots(len(masses), 2, figsize=(9, 2.9 * len(masses)), squeeze=False)
    for i, m0 in enumerate(masses):
        sel = np.abs(m_all - m0) < HALF_WINDOW
        samples = [
            mdl.sample(m0, N_SAMPLES, seed=int(rng.integers(2**63)), extrapolate=True)
            for mdl in models
        ]
        for j, (key, label) in enumerate((("qT", r"$q_T$ [GeV]"), ("E", r"$E_{A'}$ [GeV]"))):
            ax = axes[i, j]
            vals = os_[key].to_numpy(np.float64)[sel]
            pool = np.concatenate([vals, samples[0][key], samples[1][key]])
            lo = 0.0 if key == "qT" else float(np.quantile(pool, 0.002))
            bins = np.linspace(lo, float(np.quantile(pool, 0.995)), 36)
            w, b = w_all[sel], bkg_all[sel]
            norm = w.sum() * np.diff(bins) if w.sum() > 0 else np.diff(bins)
            h_sig = np.histogram(vals[~b], bins, weights=w[~b])[0] / norm
            h_bkg = np.histogram(vals[b], bins, weights=w[b])[0] / norm
            ax.stairs(h_sig, bins, fill=True, color="tab:blue", alpha=0.6, label="data: signal")
            ax.stairs(
                h_sig + h_bkg,
                bins,
                baseline=h_sig,
                fill=True,
                color="tab:orange",
                alpha=0.6,
                label="data: comb. background",
            )
            for s, color, ls, name in (
                (samples[0], "0.65", "-", "NF"),
                (samples[1], "0.15", "--", "NF (no bg)"),
            ):
                h = np.histogram(s[key], bins, density=True)[0]
                ax.stairs(h, bins, color=color, ls=ls, lw=1.8, label=name)
            ax.set_xlabel(label)
            ax.set_ylabel("normalised")
            ax.set_xlim(bins[0], bins[-1])
            ax.text(
                0.97,
                0.93,
                rf"$m_{{A'}}$ = {m0:g} GeV" + f"\n{int(sel.sum())} data pairs",
                transform=ax.transAxes,
                ha="right",
                va="top",
                fontsize=8,
            )
            if i == 0 and j == 0:
                ax.legend(fontsize=7, loc="center right")
    fig.tight_layout()
    return fig


def main(argv: list[str] | None = None) -> Path:
    """Write ``<run>/figures/paper_fig5.png`` (and ``.pdf``); return the PNG path."""
    t0 = time.perf_counter()
    args = c.parser(__doc__).parse_args(argv)
    cfg = c.load(args)
    paths = c.figure_paths(cfg, 5, force=args.force)
    with_bkg, no_bkg = c.flows_with_and_without_background(cfg, retrain=args.retrain)
    lo = max(with_bkg.mass_range[0], no_bkg.mass_range[0])
    hi = min(with_bkg.mass_range[1], no_bkg.mass_range[1])
    masses = tuple(m for m in c.FIG_MASSES if lo <= m <= hi)
    fig = plot_two_flows(
        c.read_pairs(cfg), cfg.flow.use_weights, (with_bkg, no_bkg), masses, cfg.seed
    )
    return c.done(c.save(fig, paths, note=c.provenance(cfg)), t0)


if __name__ == "__main__":
    sys.exit(c.run_main(main))
