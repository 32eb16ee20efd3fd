"""Closure of the reach inputs on the mock: data-driven 𝓔(m, cτ) and N_sig against the
generator's full-phase-space truth, for the paper's mock LLP detector and a second
geometry (both daughters through an annulus at a downstream plane).

Claim: the data-driven N_sig (= Y·𝓔 per POT per ε²) and 𝓔 of a demo-sized run agree with the
generator's truth within 10% or 2σ of their errors at every (m, cτ) where 𝓔_truth > 10⁻³.

The data-driven side is the run's own yields.json and flow (fiducial region from the data,
the fitted model outside it), the reference the generator's γ* (gammastar_validation.closure). The
figure is the ratio data-driven / truth of N_sig (= Y·𝓔 per POT per ε²) and of 𝓔 wherever
𝓔_truth > 1e-3, with their 1σ errors (the yields' statistics, the extrapolation fit's f_F error
through the extrapolated share, the samples' binomial error; the truth's statistics), the pull
of N_sig, the share of N_sig that is extrapolated and the fitted / true fiducial fraction; the
last line counts the points "within 10% or 2σ" (the target). The f_F error is the
sandwich error of the fit (``yields.json`` ``extrapolation.error_method``). A second pull
(``pull*``, ``*_nsig_error`` in the JSON) replaces the f_F-only term x δf_F/(f_F(1 − f_F)) by
the fit's error carried to N_sig itself (:func:`gammastar.yields.extrapolation.nsig.nsig_relative_error`:
the model's acceptance outside F moves with f_F), the size the coverage study uses.

Usage: python validation/scripts/reach_closure.py [--run DIR] [--events 1000000] [--seed S]
[--truth-sources 4000000] [--samples 40000] [--masses ...] [--ctaus ...] [--geometry NAME]
Without --run it generates (``--events`` sources, ``--seed``: default the config's), selects,
computes the yields and trains the flow of analysis/na60_like.yaml into ``--workdir`` (default
a fresh temporary directory).
With ``--events`` far above the demo's (e.g. 4·10⁷, 40×, 5 min) the data's statistics
vanish and what stays is the method's own bias at the mock's nominal parameters; the
``Y dd/tr`` column (N_sig's ratio over 𝓔's) then separates the yield's part from the
acceptance's. The last line is one JSON object.

``--backend pythia``: the same on a mock whose mesons come from PYTHIA 8 (the ``mock.pythia``
section of analysis/na60_like_pythia.yaml: p + Pb with Angantyr; ``--pythia-collisions`` sets
the pool): the truth is the generator's γ* from the same PYTHIA meson pool (its multiplicities
per collision, hence the true meson yields per POT, and its kinematics), while the data-driven
extrapolation still assumes its m_T-exponential p_T and Gaussian rapidity shapes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]

from gammastar.config import load_config
from gammastar.source.geometry import Geometry
from gammastar_validation.closure import make_run, reach_closure

MASSES = [0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.9, 1.0]
CTAUS = np.geomspace(0.1, 100.0, 7)
GEOMETRIES = {
    # the paper's mock detector (App. B): 5 m shield, A′ at 35–120 mrad, open decay volume
    "paper_mock_detector": Geometry(l1=5.0, l2=None, theta_min=0.035, theta_max=0.120),
    # a second geometry: decays in 5–15 m, both muons through 0.6 < r < 2.5 m at z = 25 m
    "annulus_z25": Geometry(l1=5.0, l2=15.0, theta_min=0.0, theta_max=0.3,
                            both_daughters=True, plane_z=25.0, r_min=0.6, r_max=2.5),
}  # fmt: skip


def closure_config(backend: str = "parametric", collisions: int | None = None):
    """analysis/na60_like.yaml; with ``backend`` ``pythia`` its mock's mesons from PYTHIA 8
    (the ``mock.pythia`` section of analysis/na60_like_pythia.yaml, ``collisions`` if given)."""
    cfg = load_config(REPO / "analysis" / "na60_like.yaml")
    if backend == "pythia":
        py = load_config(REPO / "analysis" / "na60_like_pythia.yaml").mock.pythia
        if collisions:
            py = py.model_copy(update={"collisions": collisions})
        mock = cfg.mock.model_copy(update={"backend": "pythia", "pythia": py})
        cfg = cfg.model_copy(update={"mock": mock})
    return cfg


def nsig_pulls(cfg, rows, *, samples: int = 40_000, seed: int = 11) -> None:
    """Add ``nsig_pull_nsig_error`` to each row: the pull with the fit's error carried to N_sig
    (module docstring), the data-driven samples redrawn as ``reach_closure`` draws them (the
    same sampler and seed, hence the same samples)."""
    from gammastar.core import rundir
    from gammastar.corrections.pair_acceptance import FiducialRegion
    from gammastar.reach.acceptance import draw
    from gammastar.source.production import load_yields
    from gammastar.source.source import Source
    from gammastar.yields.extrapolation.nsig import nsig_relative_error
    from gammastar.yields.extrapolation.result import Extrapolation
    from gammastar.yields.extrapolation.samplers import RecordingSampler

    y_dd = load_yields(cfg.output_dir / rundir.YIELDS)
    ex = Extrapolation.from_dict(y_dd.extrapolation)
    fid = FiducialRegion.from_dict(y_dd.extrapolation["fiducial"])
    sampler = Source.from_config(cfg.model_copy(update={"reach": cfg.reach.model_copy(
        update={"flow": str(cfg.output_dir / rundir.FLOW_DIR), "extrapolation": "label"})}), y_dd)  # fmt: skip
    cap = RecordingSampler(sampler)
    by_point: dict = {}
    for r in rows:
        by_point.setdefault((r["geometry"], r["mass"]), []).append(r)
    for (g, m), rs in by_point.items():
        ks = draw(cap, m, samples, GEOMETRIES[g], seed=seed + 1)
        rel_new = nsig_relative_error(ex, fid, m, cap.last, ks, [r["ctau"] for r in rs])
        for r, rel in zip(rs, rel_new, strict=True):
            f, df, x = (r["fiducial_fraction_dd"], r["fiducial_fraction_dd_err"],
                        r["extrapolated_fraction"] or 0.0)  # fmt: skip
            rel_old = x * df / (f * (1 - f)) if 0 < f < 1 else 0.0
            n_dd = abs(r["nsig_dd"])
            rest = max((r["nsig_dd_err"] / n_dd) ** 2 - rel_old**2, 0.0) if n_dd > 0 else 0.0
            e_dd = n_dd * np.sqrt(rest + rel**2)
            err = float(np.hypot(e_dd, r["nsig_truth_err"]))
            r["nsig_dd_err_nsig_error"] = float(e_dd)
            r["nsig_pull_nsig_error"] = (
                (r["nsig_dd"] - r["nsig_truth"]) / err if err > 0 else np.nan
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, help="a finished na60_like run directory")
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=None, help="mock seed (default: the config's)")
    ap.add_argument("--workdir", type=Path, help="without --run: the new run's directory "
                    "(default: a fresh temporary one)")  # fmt: skip
    ap.add_argument("--truth-sources", type=int, default=4_000_000)
    ap.add_argument("--samples", type=int, default=40_000, help="A′ draws per mass")
    ap.add_argument("--masses", type=float, nargs="+", default=MASSES)
    ap.add_argument("--ctaus", type=float, nargs="+", default=list(CTAUS))
    ap.add_argument("--geometry", choices=sorted(GEOMETRIES), nargs="+", default=sorted(GEOMETRIES))
    ap.add_argument("--backend", choices=["parametric", "pythia"], default="parametric",
                    help="the mock's mesons: parametric spectra or PYTHIA 8 (module docstring)")
    ap.add_argument("--pythia-collisions", type=int, default=None,
                    help="with --backend pythia: PYTHIA collisions of the meson pool")
    args = ap.parse_args()
    t0 = time.perf_counter()
    base = closure_config(args.backend, args.pythia_collisions)
    mesons = None
    if args.backend == "pythia" and args.run is None:  # one PYTHIA pool for the data and the truth
        from gammastar.mock.pythia import PythiaMesons

        mesons = PythiaMesons(base, base.seed if args.seed is None else args.seed)
    run = args.run or make_run(args.events, args.seed, args.workdir, base=base, mesons=mesons)
    cfg = base.model_copy(update={"output": str(run.resolve())})
    geometries = {g: GEOMETRIES[g] for g in args.geometry}
    rows = reach_closure(cfg, geometries, args.masses, np.asarray(args.ctaus),
                         truth_sources=args.truth_sources, samples=args.samples,
                         mesons=mesons)  # fmt: skip
    nsig_pulls(cfg, rows, samples=args.samples)
    # errors (1σ): gammastar_validation.closure.reach_closure; pull = (dd − truth)/σ of the difference
    print(f"{'geometry':22s} {'m':>5s} {'ctau':>7s} {'acc_truth':>9s} {'acc dd/tr':>15s} "
          f"{'N dd/tr':>15s} {'Y dd/tr':>7s} {'pull':>6s} {'pull*':>6s} {'extrap':>6s} {'f_F dd/tr':>9s}")  # fmt: skip
    summary = {}
    for r in rows:
        if r["acc_truth"] <= 1e-3:
            continue
        ra, rn = r["acc_dd"] / r["acc_truth"], r["nsig_dd"] / r["nsig_truth"]
        era = ra * np.hypot(r["acc_dd_err"] / r["acc_dd"], r["acc_err"] / r["acc_truth"])
        ern = rn * np.hypot(r["nsig_dd_err"] / r["nsig_dd"], r["nsig_truth_err"] / r["nsig_truth"])
        ff = r["fiducial_fraction_dd"] / r["fiducial_fraction_truth"]
        print(f"{r['geometry']:22s} {r['mass']:5.2f} {r['ctau']:7.3g} {r['acc_truth']:9.2e} "
              f"{ra:7.3f} ± {era:5.3f} {rn:7.3f} ± {ern:5.3f} {rn / ra:7.3f} {r['nsig_pull']:6.2f} "
              f"{r['nsig_pull_nsig_error']:6.2f} {r['extrapolated_fraction']:6.2f} {ff:9.3f}")  # fmt: skip
        s = summary.setdefault(r["geometry"], {"nsig": [], "acc": [], "pull": [], "ok": [],
                                               "pull2": [], "ok2": []})  # fmt: skip
        s["nsig"].append(rn)
        s.setdefault("yield", []).append(rn / ra)
        s.setdefault("points_m_ctau", []).append([r["mass"], r["ctau"]])
        s["acc"].append(ra)
        s["pull"].append(r["nsig_pull"])
        # the target: within 10% or 2σ of the statistics
        s["ok"].append(abs(rn - 1) <= 0.1 or abs(r["nsig_pull"]) <= 2)
        s["pull2"].append(r["nsig_pull_nsig_error"])
        s["ok2"].append(abs(rn - 1) <= 0.1 or abs(r["nsig_pull_nsig_error"]) <= 2)
    out = {"benchmark": "closure_reach", "run": str(run), "seconds": time.perf_counter() - t0,
           "backend": args.backend}  # fmt: skip
    if mesons is not None:
        out["pythia"] = {k: mesons.meta()[k] for k in ("mode", "collisions",
                                                        "multiplicity_per_collision")}  # fmt: skip
    for g, s in summary.items():
        n, a, pl = np.array(s["nsig"]), np.array(s["acc"]), np.array(s["pull"])
        out[g] = {
            "points": int(n.size),
            "nsig_ratio_min": float(n.min()), "nsig_ratio_max": float(n.max()),
            "points_m_ctau": s["points_m_ctau"],
            "yield_ratio": [float(x) for x in s["yield"]],
            "nsig_ratio": [float(x) for x in n], "acc_ratio": [float(x) for x in a],
            "nsig_within_10pct": float(np.mean(np.abs(n - 1) <= 0.1)),
            "nsig_within_10pct_or_2sigma": float(np.mean(s["ok"])),
            "nsig_pull_min": float(pl.min()), "nsig_pull_max": float(pl.max()),
            "acc_ratio_min": float(a.min()), "acc_ratio_max": float(a.max()),
            "acc_within_10pct": float(np.mean(np.abs(a - 1) <= 0.1)),
            "nsig_pull_min_nsig_error": float(np.min(s["pull2"])),
            "nsig_pull_max_nsig_error": float(np.max(s["pull2"])),
            "nsig_within_10pct_or_2sigma_nsig_error": float(np.mean(s["ok2"])),
        }  # fmt: skip
    print(json.dumps(out))


if __name__ == "__main__":
    main()
