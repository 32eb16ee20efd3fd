"""The mass resolution's effect on the A′ kinematics: the γ* reconstructed at m against those at m.

The data-driven chain learns the kinematics at each *reconstructed* mass (the flow is trained
on the pairs' measured masses, the paper's convention: no resolution unfolding), and
``benchmarks/coverage.py`` compares its N_sig = Y·𝓔 with a truth whose yield Y is taken at
the data's mass resolution but whose acceptance 𝓔 is that of the γ* of *true* mass m. Where
the resolution carries γ* of other masses to m with their own kinematics (the ω and φ tails in
the valley between them), the two differ. This script measures by how much, on the mock's
generator:

* 𝓔_true: the A′ acceptance (the config's detector, per cτ) of the generator's γ* of true
  mass within ±15 MeV of m (the truth's own window, ``TruthSampler.half_width``);
* 𝓔_folded: the same for the γ* whose mass, smeared by the mock detector's response
  (:func:`gammastar.mock.truth.response_residuals`, as ``coverage.mass_response``), falls
  within ±15 MeV of m, each moved to mass m at its own p_T and rapidity (as the pairs are);
  the same A′ draws (seed) on both sides;
* the share of those γ* whose true mass lies more than ``--far`` from m, and the yield's own
  ratio (smeared/true counts in the window).

With ``--runs`` (realisation directories of the same mock: ``pairs.parquet`` and
``mock.root``, whose ``events`` tree tags each pair with its γ*'s true mass), the data's side
too: per true-mass slice (``--slices``), the realisations' weighted pairs (opposite-sign,
signal-tagged, at their acceptance-correction weights) in each yield bin around ``--at``
against the truth's smeared γ* of that slice in the same bin, per POT: the fiducial fraction
that the pairs of each slice carry at the reconstructed mass (the truth counts the full phase
space), and the slice's share of the smeared truth.

The reference of each ratio is 𝓔_true, computed in the same run. The response draws a
residual per true-mass bin regardless of the γ*'s kinematics, so what the folding misses is the
resolution's dependence on them (it moves the scattering's large residuals to soft pairs).

Usage: ``python benchmarks/resolution_kinematics.py [--config analysis/na60_like.yaml]
[--masses 0.3 0.6 0.78 0.9 0.95] [--y-sigma 1.25]``. The last line is one JSON object.
"""

from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/ holds select.py etc.: keep it off sys.path so the stdlib `select` is found
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import importlib.util
import json
import time
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("coverage", REPO / "benchmarks" / "coverage.py")
coverage = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(coverage)


def folded(g, m_smeared, m: float, half: float):
    """The γ* of ``g`` whose smeared mass lies within ±``half`` of ``m``, moved to mass ``m``
    at their own p_T and rapidity (E and p_z scaled by m_T(m)/m_T(m_true)): a
    :class:`~gammastar.mock.truth.GstarTruth` at mass m, and their true masses."""
    from gammastar.mock.truth import GstarTruth

    k = np.abs(m_smeared - m) < half
    scale = np.sqrt(g.qT[k] ** 2 + m**2) / np.sqrt(g.qT[k] ** 2 + g.m[k] ** 2)
    moved = GstarTruth(np.full(int(k.sum()), m), g.qT[k], g.E[k] * scale, g.pz[k] * scale,
                       g.channel[k], g.n_pot)  # fmt: skip
    return moved, g.m[k]


def compare(g, m_smeared, masses, ctaus, geo, *, samples: int, seed: int, far: float):
    """Per mass: 𝓔_true and 𝓔_folded per cτ (the same A′ draws), their ratio, the share of
    the folded γ* from farther than ``far``, and the smeared/true yield in the window."""
    from gammastar.mock.truth import TruthSampler
    from gammastar.reach.acceptance import draw

    half = TruthSampler(g).half_width
    rows = []
    for m in masses:
        e_true = draw(TruthSampler(g), m, samples, geo, seed=seed).acceptance(ctaus)
        moved, m_true = folded(g, m_smeared, m, half)
        e_fold = draw(TruthSampler(moved), m, samples, geo, seed=seed).acceptance(ctaus)
        n_true = int(np.sum(np.abs(g.m - m) < half))
        rows.append({
            "mass": m, "e_true": e_true.tolist(), "e_folded": e_fold.tolist(),
            "ratio": (e_fold / e_true).tolist(),
            "far_share": float(np.mean(np.abs(m_true - m) > far)) if m_true.size else 0.0,
            "yield_smeared_over_true": m_true.size / n_true if n_true else float("nan"),
            "gstar_true": n_true, "gstar_folded": int(m_true.size),
        })  # fmt: skip
    return rows


def slices_at(runs, g, m_smeared, edges, at: float, slices):
    """Per yield bin next to ``at`` (the one holding it and the nearer neighbour) and per
    true-mass slice: the realisations' signal pairs' Σw per POT, the truth's smeared γ* per
    POT, their ratio (the slice's fiducial fraction at the reconstructed mass) and the slice's
    share of the smeared truth."""
    import pyarrow.parquet as pq
    import uproot

    from gammastar.channels import Channel

    edges = np.asarray(edges)
    b = int(np.searchsorted(edges, at, side="right") - 1)
    if not 0 <= b < edges.size - 1:
        raise SystemExit(f"resolution_kinematics: --at {at:g} GeV lies outside the yield bins "
                         f"[{edges[0]:g}, {edges[-1]:g}]")  # fmt: skip
    near = b + 1 if at > 0.5 * (edges[b] + edges[b + 1]) else b - 1
    bins = sorted({b} | ({near} if 0 <= near < edges.size - 1 else set()))
    data = np.zeros((len(bins), len(slices)))
    n_pot = 0.0
    not_signal = (int(Channel.COMBINATORIAL), int(Channel.ETA_MUMU))
    for run in runs:
        n_pot += float(json.loads((run / "yields.json").read_text())["meta"]["n_pot"])
        t = pq.read_table(
            run / "pairs.parquet", columns=["event", "m", "weight", "charge", "channel"]
        )
        p = {k: t.column(k).to_numpy() for k in t.column_names}
        ev = uproot.open(run / "mock.root")["events"].arrays(["event", "truth_gstar_m"],
                                                              library="np")  # fmt: skip
        order = np.argsort(ev["event"])
        sig = (p["charge"] == 0) & ~np.isin(p["channel"], not_signal)
        ids = ev["event"][order]
        pos = np.minimum(np.searchsorted(ids, p["event"][sig]), ids.size - 1)
        if not np.array_equal(ids[pos], p["event"][sig]):
            raise SystemExit(f"resolution_kinematics: {run}: pairs of events that mock.root's "
                             "events tree does not hold (another file's pairs?)")  # fmt: skip
        m_true = ev["truth_gstar_m"][order][pos]
        for i, k in enumerate(bins):
            inb = (p["m"][sig] >= edges[k]) & (p["m"][sig] < edges[k + 1])
            for j, (lo, hi) in enumerate(slices):
                data[i, j] += p["weight"][sig][inb & (m_true >= lo) & (m_true < hi)].sum()
    truth = np.array([[np.sum((m_smeared >= edges[k]) & (m_smeared < edges[k + 1])
                               & (g.m >= lo) & (g.m < hi)) for lo, hi in slices]
                      for k in bins], dtype=float)  # fmt: skip
    rows = []
    for i, k in enumerate(bins):
        for j, (lo, hi) in enumerate(slices):
            t_pot = truth[i, j] / g.n_pot
            rows.append({"bin": [float(edges[k]), float(edges[k + 1])], "slice": [lo, hi],
                         "data_per_pot": data[i, j] / n_pot, "truth_per_pot": t_pot,
                         "ratio": data[i, j] / n_pot / t_pot if t_pot > 0 else float("nan"),
                         "share": truth[i, j] / truth[i].sum() if truth[i].sum() else 0.0})  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=REPO / "analysis" / "na60_like.yaml")
    ap.add_argument("--masses", type=float, nargs="+", default=[0.3, 0.6, 0.78, 0.9, 0.95])
    ap.add_argument("--ctaus", type=float, nargs="+", default=[1.0, 100.0])
    ap.add_argument("--y-sigma", type=float, default=None,
                    help="the mock's rapidity width (default: the config's mock)")  # fmt: skip
    ap.add_argument("--far", type=float, default=0.06,
                    help="GeV: a γ* from farther than this has migrated (2σ_m of the mock)")  # fmt: skip
    ap.add_argument("--runs", type=Path, nargs="*", default=[],
                    help="realisation directories of this mock (pairs.parquet, mock.root)")  # fmt: skip
    ap.add_argument("--at", type=float, default=0.9, help="--runs: the mass (GeV)")
    ap.add_argument("--slices", type=float, nargs="+", default=[0.0, 0.70, 0.84, 0.96, 1.10, 9.0],
                    help="--runs: true-mass slice edges (GeV)")  # fmt: skip
    coverage.add_truth_arguments(ap)
    args = ap.parse_args(argv)

    from gammastar.config import load_config
    from gammastar.mock.truth import response_residuals, smearing_from_residuals
    from gammastar.source.geometry import Geometry

    t0 = time.perf_counter()
    cfg = load_config(args.config)
    if args.y_sigma is not None:
        cfg = cfg.model_copy(
            update={"mock": cfg.mock.model_copy(update={"rapidity_sigma": args.y_sigma})}
        )
    geo = Geometry.from_config(cfg.detector)
    g = coverage.generator_gstar(cfg, sources=args.truth_sources, seed=args.seed)
    mt, d = response_residuals(cfg, args.response_sources, seed=args.seed)
    m_smeared = smearing_from_residuals(mt, d)(g.m, np.random.default_rng(args.seed + 1))
    rows = compare(g, m_smeared, args.masses, np.asarray(args.ctaus), geo,
                   samples=args.samples, seed=args.seed + 2, far=args.far)  # fmt: skip
    print(f"| m (GeV) | 𝓔_folded / 𝓔_true at cτ = {', '.join(f'{c:g}' for c in args.ctaus)} m "
          f"| γ* from > {args.far * 1e3:.0f} MeV away | yield smeared / true |")  # fmt: skip
    print("| --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['mass']:g} | {' / '.join(f'{v:.3f}' for v in r['ratio'])} | "
              f"{r['far_share']:.3f} | {r['yield_smeared_over_true']:.2f} |")  # fmt: skip
    by_slice = []
    if args.runs:
        edges = json.loads((args.runs[0] / "yields.json").read_text())["extrapolation"]["bin_edges"]
        slices = list(zip(args.slices[:-1], args.slices[1:], strict=True))
        by_slice = slices_at(args.runs, g, m_smeared, edges, args.at, slices)
        print(
            f"\nThe {len(args.runs)} realisations' signal pairs per true-mass slice in the "
            f"yield bins next to {args.at:g} GeV, against the smeared truth (full phase space):"
        )
        print("| bin (GeV) | true mass (GeV) | share of the smeared truth | pairs / truth |")
        print("| --- | --- | --- | --- |")
        for r in by_slice:
            print(f"| {r['bin'][0]:.3f}–{r['bin'][1]:.3f} | {r['slice'][0]:.2f}–"
                  f"{r['slice'][1]:.2f} | {r['share']:.3f} | {r['ratio']:.3f} |")  # fmt: skip
    out = {"benchmark": "resolution_kinematics", "config": str(args.config),
           "y_sigma": float(cfg.mock.rapidity_sigma), "truth_sources": args.truth_sources,
           "response_sources": args.response_sources, "samples": args.samples,
           "seed": args.seed, "ctaus": args.ctaus, "rows": rows,
           "runs": [str(r) for r in args.runs], "by_slice": by_slice,
           "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
