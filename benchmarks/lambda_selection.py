"""Where the measured λ_θ's bias comes from: the decay angles of the mock's γ*, fitted per mass
bin at the truth, at the detector, and with the detector's selection but the true angles.

``benchmarks/fiducial_yield.py`` found the λ_θ the selection measures at 0.6 GeV to be +0.09–0.10
against a truth of +0.01–0.02 (docs/coverage.md, session 25). This script fits λ_θ, λ_φ, λ_θφ
(:func:`gammastar.corrections.polarisation.fit_lambdas`, the selection's acceptance-aware likelihood with
the moment tables of the config's per-pair acceptance at λ_θ = 0) to the muon γ* of
``--sources`` mock sources (no combinatorial pairs, no efficiency: every pair weight 1, inside
the isotropic fiducial region) in each bin of ``--edges``, three ways:

* ``truth``: the true muons pass the lepton cuts; true mass bins, true kinematics and angles
  (what an unbiased measurement returns);
* ``detector``: the reconstructed muons pass (the mock's ``in_acceptance``); reconstructed
  mass bins, kinematics and angles (what the selection measures, without its efficiency and
  background);
* ``selection``: the detector's pairs and mass bins, but each with its true kinematics and
  angles: a difference from ``truth`` here is the bin selecting the decay angles through the
  angle-dependent resolution (docs/selection.md, "Narrow peaks"), one from ``detector`` the
  angles' own smearing;
* ``tree``: the detector's pairs (the mock's ``truth`` tree) in true mass bins with their true
  kinematics and angles: the truth side of ``unfold.polarisation_correction``
  (:mod:`gammastar.corrections.lambda_correction`); a difference from ``truth`` is the reconstructed
  selection's edges.

With ``--simulation FILES [--generated-tree truth_generated]`` it prints instead what
:mod:`gammastar.corrections.lambda_correction` measures on those simulation files in the bins of ``--edges``
(λ_r, λ_t, the slope; λ_t from the generator-level tree when given, beside the reconstructed γ*'s)
and the response matrix
R(b, b′) = Δλ_r(b)/Δλ_t(b′) of the γ* of one true-mass bin b′ reweighted at a time (its row sums
are the slopes the correction uses).

Usage: ``python benchmarks/lambda_selection.py [--config analysis/na60_like.yaml]
[--sources 10000000] [--pt-form 0] [--edges 0.25 0.3 0.443 0.613 0.678]`` (about 1 min per 10⁷
sources), or ``python benchmarks/lambda_selection.py --simulation FILES [--edges …]`` (about
30 s per 10⁶ simulated γ*). The default edges are the peak-safe polarisation bins of the
demo-sized NA60-like runs around 0.6 GeV and a reference bin at 0.25–0.3 GeV. The last line is
one JSON object.
"""

from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/ holds select.py: keep it off sys.path so the stdlib `select` is found
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import itertools
import json
import time
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]

WAYS = ("truth", "detector", "selection", "tree")


def pair_kinematics(l1: np.ndarray, l2: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(m, p, θ) of the pair of lab four-momenta ``l1``, ``l2`` ((4, n), (px, py, pz, E)): the
    arguments of :meth:`gammastar.corrections.pair_acceptance.PairAcceptance.moments_at`."""
    import vector

    pair = vector.array({"px": l1[0], "py": l1[1], "pz": l1[2], "E": l1[3]}) + vector.array(
        {"px": l2[0], "py": l2[1], "pz": l2[2], "E": l2[3]}
    )
    return np.asarray(pair.mass), np.asarray(pair.mag), np.asarray(pair.theta)


def _passes(mu: np.ndarray, lepton: Any) -> np.ndarray:
    """The lepton cuts (energy, polar-angle window) on lab four-momenta (4, n)."""
    theta = np.arctan2(np.hypot(mu[0], mu[1]), mu[2])
    return (mu[3] >= lepton.min_energy) & (theta >= lepton.theta_min) & (theta <= lepton.theta_max)


def collect(cfg: Any, acceptance: Any, *, sources: int, seed: int, lo: float, hi: float):
    """Per way of :data:`WAYS`: the γ* with a (reconstructed or true) mass in [lo, hi) as
    ``(m, cos θ*, φ*, moments)``, the μ⁺ as lepton 1 (the selection's convention)."""
    from gammastar.corrections.polarisation import helicity_angles
    from gammastar.mock.generate import MUON_GSTAR, MockGenerator

    got: dict[str, list] = {w: [] for w in WAYS}
    for ch in MockGenerator(cfg, seed=seed).chunks(sources):
        s, r = ch.sources, ch.reco
        keep = np.isin(s.channel, list(MUON_GSTAR))
        plus = s.charge1[keep] > 0
        t1, t2, r1, r2 = (x[:, keep] for x in (s.mu1, s.mu2, r.mu1, r.mu2))
        true_l = (np.where(plus, t1, t2), np.where(plus, t2, t1))
        reco_l = (np.where(plus, r1, r2), np.where(plus, r2, r1))
        true_k, reco_k = pair_kinematics(*true_l), pair_kinematics(*reco_l)
        with np.errstate(invalid="ignore"):
            true_a = helicity_angles(*true_l)
            reco_a = helicity_angles(*reco_l)
        lepton = acceptance.lepton
        sel = {"truth": _passes(t1, lepton) & _passes(t2, lepton),
               "detector": r.in_acceptance[keep], "selection": r.in_acceptance[keep],
               "tree": r.in_acceptance[keep]}  # fmt: skip
        for way in WAYS:
            m_bin = true_k[0] if way in ("truth", "tree") else reco_k[0]
            kin, ang = (reco_k, reco_a) if way == "detector" else (true_k, true_a)
            k = sel[way] & (m_bin >= lo) & (m_bin < hi)
            mom = acceptance.moments_at(kin[0][k], kin[1][k], kin[2][k])
            got[way].append((m_bin[k], ang[0][k], ang[1][k], mom))
    return {w: tuple(np.concatenate([p[i] for p in got[w]], axis=-1) for i in range(4))
            for w in WAYS}  # fmt: skip


def fit_bins(m, c, phi, mom, edges, min_acceptance: float) -> list[dict[str, float]]:
    """Per bin of ``edges``: λ_θ, λ_φ, λ_θφ and λ_θ's error of the γ* inside the isotropic
    fiducial region (⟨a⟩ ≥ ``min_acceptance``), weight 1; NaN where the fit fails."""
    from gammastar.corrections.polarisation import angular_functions, fit_lambdas

    out = []
    for lo, hi in itertools.pairwise(edges):
        k = (m >= lo) & (m < hi) & (mom[0] >= min_acceptance)
        row = {"n": int(k.sum())}
        try:
            lam, cov = fit_lambdas(angular_functions(c[k], phi[k]), mom[0][k], mom[1:][:, k],
                                   np.ones(int(k.sum())), n_params=3)  # fmt: skip
            row |= {"lambda_theta": float(lam[0]), "lambda_theta_err": float(np.sqrt(cov[0, 0])),
                    "lambda_phi": float(lam[1]), "lambda_theta_phi": float(lam[2])}  # fmt: skip
        except ValueError:
            row |= {k: float("nan") for k in ("lambda_theta", "lambda_theta_err", "lambda_phi",
                                              "lambda_theta_phi")}  # fmt: skip
        out.append(row)
    return out


def response_matrix(rows, acceptance, edges, min_acceptance: float, generated=None):
    """R(b, b′) of the module docstring: the simulation's fit as the data's in bin b against its
    fit at the truth in bin b′, the γ* of true-mass bin b′ (those outside the bins with the
    nearest) reweighted to λ_t(b′) + ``STEP`` (:class:`gammastar.corrections.lambda_correction.ResponseFits`)."""
    from gammastar.corrections.lambda_correction import STEP, ResponseFits

    f = ResponseFits.build(rows, acceptance, edges, min_acceptance, generated)
    nb = f.edges.size - 1
    out = np.full((nb, nb), np.nan)
    for j in range(nb):
        w, wt = f.weight(STEP, j), f.weight(STEP, j, side="truth")
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, j] = (f.fit_reco(w).lambda_theta - f.nominal_reco.lambda_theta) / (
                f.fit_truth(wt).lambda_theta[j] - f.nominal_truth.lambda_theta[j])  # fmt: skip
    return out


def main_simulation(args, cfg, fid, edges) -> dict[str, Any]:
    """``--simulation``: the correction's numbers and the response matrix, one JSON line."""
    from gammastar.corrections.lambda_correction import (
        read_generated,
        read_simulation,
        selection_correction,
    )

    t0 = time.perf_counter()
    rows = read_simulation(args.simulation)
    gen = None if args.generated_tree is None else read_generated(args.simulation,
                                                                  tree=args.generated_tree)  # fmt: skip
    corr = selection_correction(rows, fid.acceptance, edges, fid.min_acceptance, gen)
    resp = response_matrix(rows, fid.acceptance, edges, fid.min_acceptance, gen)
    # the reconstructed γ* at their truth beside it (the truth side without the generated tree)
    tree = corr if gen is None else selection_correction(rows, fid.acceptance, edges,
                                                         fid.min_acceptance)  # fmt: skip
    side = "reconstructed γ*" if gen is None else f"'{args.generated_tree}'"
    print(f"simulation: {len(args.simulation)} file(s), {rows['m'].size} γ*; the truth side: "
          f"{side}\n")  # fmt: skip
    print("| bin (GeV) | λ_r (as the data) | λ_t (truth in F) | slope | λ_t, reconstructed γ* "
          "(slope) | R row (b′ = each bin) |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- |")
    for i, (lo, hi) in enumerate(itertools.pairwise(edges)):
        print(f"| {lo:.3f}–{hi:.3f} | {corr.reco[i]:+.3f} ± {corr.reco_err[i]:.3f} | "
              f"{corr.truth[i]:+.3f} ± {corr.truth_err[i]:.3f} | {corr.slope[i]:.3f} | "
              f"{tree.truth[i]:+.3f} ({tree.slope[i]:.3f}) | "
              + " ".join(f"{x:.3f}" for x in resp[i]) + " |")  # fmt: skip
    out = {"benchmark": "lambda_selection", "mode": "simulation",
           "simulation": [str(p) for p in args.simulation], "edges": edges.tolist(),
           "generated_tree": args.generated_tree,
           "reco": corr.reco.tolist(), "reco_err": corr.reco_err.tolist(),
           "truth": corr.truth.tolist(), "truth_err": corr.truth_err.tolist(),
           "slope": corr.slope.tolist(), "response": resp.tolist(),
           "truth_reconstructed": tree.truth.tolist(), "slope_reconstructed": tree.slope.tolist(),
           "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
    print(json.dumps(out))
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=REPO / "analysis" / "na60_like.yaml")
    ap.add_argument("--sources", type=int, default=10_000_000)
    ap.add_argument("--seed", type=int, default=21)
    ap.add_argument("--pt-form", type=float, default=None,
                    help="the mock mesons' m_T power a (default: the config's)")  # fmt: skip
    ap.add_argument("--edges", type=float, nargs="+", default=[0.25, 0.3, 0.443, 0.613, 0.678])
    ap.add_argument("--simulation", type=Path, nargs="+", default=[],
                    help="simulation files: the λ_θ correction's numbers on them (no generation)")  # fmt: skip
    ap.add_argument("--generated-tree", default=None,
                    help="with --simulation: the generator-level tree for the truth side "
                    "(the mock's truth_generated)")  # fmt: skip
    args = ap.parse_args(argv)
    if args.generated_tree is not None and not args.simulation:
        ap.error("--generated-tree needs --simulation (the files that hold the tree)")
    edges = np.asarray(args.edges, dtype=np.float64)
    if edges.size < 2 or np.any(np.diff(edges) <= 0):
        ap.error("--edges: at least two, increasing")

    from gammastar.config import load_config
    from gammastar.corrections.pair_acceptance import fiducial_from_config

    t0 = time.perf_counter()
    cfg = load_config(args.config)
    if args.pt_form is not None:
        cfg = cfg.model_copy(update={"mock": cfg.mock.model_copy(
            update={"pt_mt_power": float(args.pt_form)})})  # fmt: skip
    fid = fiducial_from_config(cfg, lambda_theta=0.0)
    if fid is None:
        raise SystemExit(f"{args.config}: unfold.lepton_acceptance is not set: no acceptance")
    if args.simulation:
        return main_simulation(args, cfg, fid, edges)
    got = collect(cfg, fid.acceptance, sources=args.sources, seed=args.seed,
                  lo=float(edges[0]), hi=float(edges[-1]))  # fmt: skip
    fits = {w: fit_bins(*got[w], edges, fid.min_acceptance) for w in WAYS}
    print(f"{args.sources:.2g} sources (seed {args.seed}), mock p_T form a = "
          f"{cfg.mock.pt_mt_power:g}; λ_θ (± its error) [λ_φ, λ_θφ]\n")  # fmt: skip
    print("| bin (GeV) | truth | detector | selection, true angles | tree (true bins) |")
    print("| --- | --- | --- | --- | --- |")
    for i, (lo, hi) in enumerate(itertools.pairwise(edges)):
        cells = [f"{f[i]['lambda_theta']:+.3f} ± {f[i]['lambda_theta_err']:.3f} "
                 f"[{f[i]['lambda_phi']:+.3f}, {f[i]['lambda_theta_phi']:+.3f}]"
                 for f in (fits[w] for w in WAYS)]  # fmt: skip
        print(f"| {lo:.3f}–{hi:.3f} | " + " | ".join(cells) + " |")
    out = {"benchmark": "lambda_selection", "config": str(args.config), "sources": args.sources,
           "seed": args.seed, "pt_form": float(cfg.mock.pt_mt_power), "edges": edges.tolist(),
           "fits": fits, "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
