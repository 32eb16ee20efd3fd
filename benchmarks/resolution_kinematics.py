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
    from gammastar.acceptance import draw
    from gammastar.mock.truth import TruthSampler

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


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=REPO / "analysis" / "na60_like.yaml")
    ap.add_argument("--masses", type=float, nargs="+", default=[0.3, 0.6, 0.78, 0.9, 0.95])
    ap.add_argument("--ctaus", type=float, nargs="+", default=[1.0, 100.0])
    ap.add_argument("--y-sigma", type=float, default=None,
                    help="the mock's rapidity width (default: the config's mock)")  # fmt: skip
    ap.add_argument("--far", type=float, default=0.06,
                    help="GeV: a γ* from farther than this has migrated (2σ_m of the mock)")  # fmt: skip
    coverage.add_truth_arguments(ap)
    args = ap.parse_args(argv)

    from gammastar.acceptance import Geometry
    from gammastar.config import load_config
    from gammastar.mock.truth import response_residuals, smearing_from_residuals

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
    out = {"benchmark": "resolution_kinematics", "config": str(args.config),
           "y_sigma": float(cfg.mock.rapidity_sigma), "truth_sources": args.truth_sources,
           "response_sources": args.response_sources, "samples": args.samples,
           "seed": args.seed, "ctaus": args.ctaus, "rows": rows,
           "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
