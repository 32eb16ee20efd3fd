"""Polarisation closure on the mock: the measured λ_θ, λ_φ, λ_θφ per mass bin
against the generator's truth, and the fiducial yield with the acceptance of λ_θ = 0 against
that of the measured λ_θ(m), both against the generator's γ* inside the fiducial region.

Claim: with polarised vector mesons the measured λ_θ at the narrow peaks agrees with the
generator's truth within its errors, and the acceptance of the measured λ_θ(m) removes the
fiducial yield's error that the isotropic acceptance (λ_θ = 0) makes there.

Generates a mock of analysis/na60_like.yaml (``--events`` sources, seed ``--seed``; the vector
mesons' λ_θ from ``--rho/--omega/--phi``, default the config's), selects it twice
(``unfold.decay_lambda_theta`` 0 and ``measured``) and prints, per mass bin, the measurement
and the truth (``truth_hel_*`` moments of every generated γ*), then per mass window Σ weight /
N_POT of each selection over the truth (4·10⁶ generator sources, true mass; the windows are
wide against the 30 MeV resolution). The last line is one JSON object.

Usage: python validation/scripts/polarisation_closure.py [--events 1000000] [--seed 12345] [--omega 0.6 ...]
       [--mass-resolution 0.005]   (a mock with less momentum smearing: docs/validation/closure.md)
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]

from gammastar.config import load_config
from gammastar.config.mock import MockPolarisation

WINDOWS = [(0.2113, 0.26), (0.26, 0.31), (0.31, 0.36), (0.36, 0.45), (0.45, 0.6), (0.6, 0.7),
           (0.7, 0.85), (0.95, 1.1)]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=12345)
    ap.add_argument("--truth-sources", type=int, default=4_000_000)
    ap.add_argument("--mass-resolution", type=float, default=None,
                    help="mock.detector.mass_resolution, GeV (threshold-region diagnosis)")  # fmt: skip
    for v in ("rho", "omega", "phi"):
        ap.add_argument(f"--{v}", type=float, default=None)
    args = ap.parse_args()

    from gammastar.corrections.pair_acceptance import fiducial_from_config
    from gammastar.mock.generate import generate_file
    from gammastar.selection.stage import select
    from gammastar_validation.truth import truth_gstar, truth_polarisation

    base = load_config(REPO / "analysis" / "na60_like.yaml")
    lam = {k: getattr(args, k) for k in ("rho", "omega", "phi") if getattr(args, k) is not None}
    mock = base.mock.model_copy(
        update={
            "decay_lambda_theta": MockPolarisation(
                **{**base.mock.decay_lambda_theta.model_dump(), **lam}
            )
        }
    )
    if args.mass_resolution is not None:
        det = mock.detector.model_copy(update={"mass_resolution": args.mass_resolution})
        mock = mock.model_copy(update={"detector": det})
    root = Path(tempfile.mkdtemp(prefix="gammastar-pol-"))
    t0 = time.perf_counter()
    generate_file(base.model_copy(update={"output": str(root), "mock": mock}), root / "mock.root",
                  events=args.events, seed=args.seed)  # fmt: skip
    t_gen = time.perf_counter() - t0
    out: dict = {
        "mass_resolution": mock.detector.mass_resolution,
        "events": args.events,
        "seed": args.seed,
        "mock_lambda": mock.decay_lambda_theta.model_dump(),
    }
    truth_cfg = base.model_copy(update={"mock": mock})
    tr = truth_gstar(truth_cfg, args.truth_sources, seed=args.seed + 7)
    for mode in (0.0, "measured"):
        run = root / f"sel_{mode}"
        run.mkdir()
        (run / "mock.root").symlink_to(root / "mock.root")
        unf = base.unfold.model_copy(update={"decay_lambda_theta": mode})
        cfg = base.model_copy(update={"output": str(run), "mock": mock, "unfold": unf})
        t0 = time.perf_counter()
        res = select(cfg)
        t_sel = time.perf_counter() - t0
        doc = json.loads((run / "select.json").read_text())
        pol = doc["polarisation"]
        n_pot = json.loads(__import__("uproot").open(root / "mock.root")["meta"])["n_pot"]
        fid = fiducial_from_config(cfg)
        inside = fid.contains(tr.m, tr.qT, tr.E)
        pairs = res.pairs
        rows = []
        for lo, hi in WINDOWS:
            k = (pairs.m >= lo) & (pairs.m < hi)
            data = pairs.weight[k].sum() / n_pot
            err = np.sqrt((pairs.weight[k] ** 2).sum()) / n_pot
            kt = (tr.m >= lo) & (tr.m < hi) & inside
            expect = kt.sum() / tr.n_pot
            err_t = np.sqrt(kt.sum()) / tr.n_pot
            rows.append({"window": [lo, hi], "ratio": data / expect,
                         "ratio_err": float(np.hypot(err / expect, err_t * data / expect**2))})  # fmt: skip
        out[f"select_{mode}"] = {"seconds": t_sel, "fiducial_yield_over_truth": rows}
        print(f"\nunfold.decay_lambda_theta = {mode}: select {t_sel:.1f} s")
        for r in rows:
            print(f"  {r['window'][0]:.3f}-{r['window'][1]:.3f} GeV: fiducial yield / truth = "
                  f"{r['ratio']:.3f} ± {r['ratio_err']:.3f}")  # fmt: skip
        if mode == "measured":
            truth = truth_polarisation(root / "mock.root", pol["mass_edges"])
            print("  mass bin (GeV)   OS pairs  lambda_theta        truth     lambda_phi"
                  "         lambda_theta_phi")  # fmt: skip
            e = pol["mass_edges"]
            for i, v in enumerate(pol["lambda_theta"]):
                print(f"  {e[i]:.3f}-{e[i + 1]:.3f}  {pol['n_pairs'][i]:8d}  {v:+.3f} ± "
                      f"{pol['lambda_theta_err'][i]:.3f}  {truth['lambda_theta'][i]:+.3f}  "
                      f"{pol['lambda_phi'][i]:+.3f} ± {pol['lambda_phi_err'][i]:.3f} "
                      f"({truth['lambda_phi'][i]:+.3f})  {pol['lambda_theta_phi'][i]:+.3f} ± "
                      f"{pol['lambda_theta_phi_err'][i]:.3f} ({truth['lambda_theta_phi'][i]:+.3f})")  # fmt: skip
            out["polarisation"] = pol
            out["truth_lambda_theta"] = [float(x) for x in truth["lambda_theta"]]
    out["generate_seconds"] = t_gen
    print(json.dumps(out))


if __name__ == "__main__":
    main()
