"""The mass resolution's migration in the fiducial fraction, measured on a detector simulation.

The yields extrapolate the fiducial yield Y_F(m) of each *reconstructed*-mass bin to the full
phase space with f_F(m), the fraction of the γ* of mass m inside F (the extrapolation model,
fitted to the pairs at their reconstructed mass). The yield the chain should reach is the γ*
yield at the data's mass resolution, Y(m) = Σ_t R(m|t) N(t). Where the resolution brings γ*
of other true masses t into the bin (the ω's tail between ω and φ), Y_F(m)/Y(m) is the
fiducial fraction of a mixture, which need not be that of the bin's own γ*. docs/coverage.md
(session 21) estimated from 12 realisations' pairs that this lowers the valley's fiducial
yield by 2.3–3%; this script measures it where an experiment would, on a simulation
independent of the data: ``--files`` mock files of ``--sources`` each (their own seeds), whose
``truth`` tree holds every γ* source inside the spectrometer (reconstructed m, q_T, E and the
true mass) and whose ``truth_all_m`` histogram counts all generated γ* by true mass.

Per yield bin of the config (``yields.mass_bin_width`` from ``selection.mass_min``):

* f_reco = Σ_{in F, reco m in bin} 1/A / Σ_t R(bin|t) N(t): the fiducial fraction at the
  reconstructed mass, what Y_F/Y is (A the per-pair acceptance at the reconstructed kinematics,
  the data's acceptance correction without efficiency; R the response measured on the same
  sources, one residual distribution per 10 MeV of true mass);
* f_true = Σ_{in F, true m in bin} 1/A / N(bin): the same γ* labelled by their true mass (no
  migration between mass bins); the reference, in the same run;
* c = f_true/f_reco, the correction a fiducial yield would need, with the bootstrap's 1σ
  (Poisson weights over the simulated sources);
* at ``--at``: per true-mass slice (``--slices``) its share of the bin's smeared yield and its
  in-F fraction at the reconstructed mass (session 21's table, from the simulation).

With ``--runs DIR …`` (finished run directories of the config, e.g. the 40× realisations of
``benchmarks/closure_reach.py --events 40000000``), each run's own ``mock.root`` is the
simulation and the data side is taken apart per bin against it: the signal-tagged
opposite-sign pairs' 1/(A ε) inside F against the truth tree's 1/A inside F (the fiducial
yield's closure: efficiency and acceptance correction), the subtracted sum of the pairs' weights
inside F against the signal pairs' (the like-sign subtraction), and the extrapolation model's f_F
(``yields.json``) against f_reco and f_true (the yield's full-phase-space step: f_reco/f_F is
its yield part when Y_F closes).

Usage: ``python benchmarks/resolution_migration.py [--config analysis/na60_like.yaml]
[--files 5] [--sources 8000000] [--first-seed 801] [--workdir /tmp/migration] [--reuse]``
(about 10 s of generation per 8·10⁶ sources on one core; the response's own statistics are
not in the bootstrap, which varies the recorded sources' in-F sums only), or ``--runs DIR …``. The config's
fiducial region with ``decay_lambda_theta: measured`` reads the λ_θ of its run directory's
``select.json`` (each run's own with ``--runs``). The last line is one JSON object.
"""

from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/ holds select.py etc.: keep it off sys.path so the stdlib `select` is found
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import itertools
import json
import time
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def yield_edges(cfg, merge_factor) -> np.ndarray:
    """The yields' mass-bin edges: ``unfold.mass_bins`` from ``selection.mass_min`` to
    ``mass_max``, merged by ``yields.mass_bin_width`` as the yields stage merges them."""
    native = np.linspace(cfg.selection.mass_min, cfg.selection.mass_max, cfg.unfold.mass_bins + 1)
    k = merge_factor(native, cfg.yields.mass_bin_width)
    return np.append(native[:-1:k], native[-1])


def migration(rows, gen, fine, fiducial, edges, *, bootstrap: int, seed: int) -> dict[str, Any]:
    """f_reco, f_true, c and c's bootstrap 1σ per bin (:func:`gammastar.corrections.migration.migration_correction`),
    with the recorded γ*' in-F weights and the smeared yield."""
    from gammastar.corrections.migration import Simulation, fiducial_weights, migration_correction

    w = fiducial_weights(rows, fiducial)
    res = migration_correction(Simulation(rows, gen, fine), fiducial, edges, bootstrap=bootstrap,
                               seed=seed, weights=w)  # fmt: skip
    return {"f_reco": res.f_reco, "f_true": res.f_true, "c": res.correction,
            "c_err": res.correction_err, "weights": w, "y_smeared": res.y_smeared}  # fmt: skip


def slices_at(rows, gen, fine, w, y_smeared, edges, at: float, slices) -> list[dict[str, Any]]:
    """At the bin holding ``at``: per true-mass slice, its share of the smeared yield
    ``y_smeared`` and its in-F fraction at the reconstructed mass (± the sources' Poisson
    error)."""
    b = int(np.searchsorted(edges, at, side="right") - 1)
    if not 0 <= b < edges.size - 1:
        raise SystemExit(f"resolution_migration: --at {at:g} GeV lies outside the yield bins "
                         f"[{edges[0]:g}, {edges[-1]:g}]")  # fmt: skip
    from gammastar.corrections.migration import smeared_counts

    centres = 0.5 * (fine[1:] + fine[:-1])
    resid = rows["m"] - rows["m_true"]
    total = y_smeared[b]
    out = []
    for lo, hi in itertools.pairwise(slices):
        part = np.where((centres >= lo) & (centres < hi), gen, 0.0)
        y_sl = smeared_counts(part, fine, rows["m_true"], resid, edges)[b]
        k = (rows["m_true"] >= lo) & (rows["m_true"] < hi) & (rows["m"] >= edges[b])
        k &= rows["m"] < edges[b + 1]
        out.append({"true_mass": [lo, hi], "share": y_sl / total if total else float("nan"),
                    "f_reco": w[k].sum() / y_sl if y_sl else float("nan"),
                    "f_reco_err": float(np.sqrt((w[k] ** 2).sum())) / y_sl if y_sl else float("nan")})  # fmt: skip
    return out


def run_parts(run: Path, edges: np.ndarray, fiducial, simulation=None) -> dict[str, np.ndarray]:
    """The data side of one run directory against its own ``mock.root`` (module docstring):
    per bin of ``edges`` ``fiducial_closure``, ``subtraction``, ``f_model_over_reco``,
    ``f_model_over_true``; ``fiducial`` the run's region (its measured λ_θ); ``simulation``
    that file's :func:`gammastar.corrections.migration.read_simulation`, when the caller has read it."""
    import pyarrow.parquet as pq

    from gammastar.corrections.migration import read_simulation
    from gammastar.mock.generate import MUON_GSTAR

    rows, gen, fine = simulation or read_simulation([run / "mock.root"])
    res = migration(rows, gen, fine, fiducial, edges, bootstrap=0, seed=0)
    t = pq.read_table(
        run / "pairs.parquet", columns=["m", "qT", "E", "weight", "charge", "channel"]
    )
    p = {k: t.column(k).to_numpy() for k in t.column_names}
    sig = (p["charge"] == 0) & np.isin(p["channel"], list(MUON_GSTAR))
    in_f = fiducial.acceptance.of_kinematics(p["m"], p["qT"], p["E"]) >= fiducial.min_acceptance

    def summed(k):
        return np.histogram(p["m"][k], edges, weights=p["weight"][k])[0]

    truth_f = np.histogram(rows["m"], edges, weights=res["weights"])[0]
    ex = json.loads((run / "yields.json").read_text())["extrapolation"]
    if "bin_edges" in ex and not np.allclose(ex["bin_edges"], edges, rtol=0, atol=1e-12):
        raise SystemExit(f"{run}: yields.json's bins are not the config's (another config?)")
    f_model = np.asarray(ex["fiducial_fraction"], float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return {"fiducial_closure": summed(sig & in_f) / truth_f,
                "subtraction": summed(in_f) / summed(sig & in_f),
                "f_model_over_reco": f_model / res["f_reco"],
                "f_model_over_true": f_model / res["f_true"]}  # fmt: skip


def main_runs(args, cfg, merge_factor) -> dict[str, Any]:
    """``--runs``: :func:`run_parts` per run, the table of their means, one JSON line."""
    t0 = time.perf_counter()
    from gammastar.corrections.pair_acceptance import fiducial_from_config

    edges = yield_edges(cfg, merge_factor)
    parts = []
    for r in args.runs:
        fiducial = fiducial_from_config(cfg.model_copy(update={"output": str(r)}))
        if fiducial is None:
            raise SystemExit(
                f"{args.config}: unfold.lepton_acceptance is not set: no fiducial region"
            )
        parts.append(run_parts(r, edges, fiducial))
    centres = 0.5 * (edges[1:] + edges[:-1])
    keys = ("fiducial_closure", "subtraction", "f_model_over_reco", "f_model_over_true")
    mean = {k: np.mean([p[k] for p in parts], axis=0) for k in keys}
    print(f"{len(parts)} run(s), each against its own mock.root; means over the runs\n")
    print(
        "| m (GeV) | pairs in F / truth in F | subtracted / signal | f_F / f_reco | f_F / f_true |"
    )
    print("| --- | --- | --- | --- | --- |")
    for i, m in enumerate(centres):
        print(f"| {m:.3f} | " + " | ".join(f"{mean[k][i]:.4f}" for k in keys) + " |")
    out = {"benchmark": "resolution_migration", "mode": "runs",
           "runs": [str(r) for r in args.runs], "mass": centres.tolist(),
           **{k: mean[k].tolist() for k in keys},
           "per_run": [{k: p[k].tolist() for k in keys} for p in parts],
           "seconds": time.perf_counter() - t0}  # fmt: skip
    print(json.dumps(out))
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=REPO / "analysis" / "na60_like.yaml")
    ap.add_argument("--files", type=int, default=5)
    ap.add_argument("--sources", type=int, default=8_000_000, help="generated sources per file")
    ap.add_argument("--first-seed", type=int, default=801)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/gammastar_migration"))
    ap.add_argument("--reuse", action="store_true", help="keep simulation files already there")
    ap.add_argument("--bootstrap", type=int, default=30)
    ap.add_argument("--at", type=float, default=0.88)
    ap.add_argument("--slices", type=float, nargs="+", default=[0.0, 0.70, 0.84, 0.96, 1.10, 9.0])
    ap.add_argument("--runs", type=Path, nargs="+", default=[],
                    help="run directories of the config: their data side against their mock.root")  # fmt: skip
    args = ap.parse_args(argv)

    from gammastar.config import load_config
    from gammastar.corrections.migration import read_simulation
    from gammastar.corrections.pair_acceptance import fiducial_from_config
    from gammastar.mock.generate import generate_file
    from gammastar.yields.stage import merge_factor

    cfg = load_config(args.config)
    if args.runs:
        return main_runs(args, cfg, merge_factor)
    fiducial = fiducial_from_config(cfg)
    if fiducial is None:
        raise SystemExit(f"{args.config}: unfold.lepton_acceptance is not set: no fiducial region")
    args.workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    paths = []
    for k in range(args.files):
        p = args.workdir / f"simulation_{args.first_seed + k}_{args.sources}.root"
        if not (args.reuse and p.exists()):
            generate_file(cfg, p, events=args.sources, seed=args.first_seed + k, force=True)
        paths.append(p)
    t_gen = time.perf_counter() - t0
    rows, gen, fine = read_simulation(paths)
    edges = yield_edges(cfg, merge_factor)
    res = migration(rows, gen, fine, fiducial, edges, bootstrap=args.bootstrap,
                    seed=args.first_seed)  # fmt: skip
    print(f"{args.files} × {args.sources:.2g} simulated sources (seeds {args.first_seed}…"
          f"{args.first_seed + args.files - 1}; {t_gen:.0f} s of generation), "
          f"{rows['m'].size} γ* in the spectrometer\n")  # fmt: skip
    print("| m (GeV) | f_reco | f_true (reference) | c = f_true/f_reco | ±1σ (bootstrap) |")
    print("| --- | --- | --- | --- | --- |")
    centres = 0.5 * (edges[1:] + edges[:-1])
    for i, m in enumerate(centres):
        print(f"| {m:.3f} | {res['f_reco'][i]:.4f} | {res['f_true'][i]:.4f} | "
              f"{res['c'][i]:.4f} | {res['c_err'][i]:.4f} |")  # fmt: skip
    sl = slices_at(rows, gen, fine, res["weights"], res["y_smeared"], edges, args.at, args.slices)
    b = int(np.searchsorted(edges, args.at, side="right") - 1)
    print(f"\nbin {edges[b]:.3f}–{edges[b + 1]:.3f} GeV by true mass:\n")
    print("| true mass (GeV) | share of the smeared yield | in F at the reco mass |")
    print("| --- | --- | --- |")
    for s in (s for s in sl if s["share"] > 0):
        print(f"| {s['true_mass'][0]:.2f}–{s['true_mass'][1]:.2f} | {s['share']:.3f} | "
              f"{s['f_reco']:.4f} ± {s['f_reco_err']:.4f} |")  # fmt: skip
    out = {"benchmark": "resolution_migration", "config": str(args.config),
           "files": args.files, "sources_per_file": args.sources, "first_seed": args.first_seed,
           "mass": centres.tolist(), "f_reco": res["f_reco"].tolist(),
           "f_true": res["f_true"].tolist(), "c": res["c"].tolist(),
           "c_err": res["c_err"].tolist(), "slices_at": args.at, "slices": sl,
           "seconds": time.perf_counter() - t0}  # fmt: skip
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
