"""The extrapolation fit's N_sig error, linear against Monte Carlo propagation (issue 19).

:func:`gammastar.yields.extrapolation.nsig_error_parts` carries the fit's covariance to N/Y_F =
𝓔_in + (1 − f_F) 𝓔_out / f_F linearly. With a fitted m_T power the group's T and a are
correlated at ≈ −0.99, so this script checks the linear ``fit`` part against a Monte Carlo one
on realisations of a coverage run: (T, a) of the fit groups that set the model at the mass
(:meth:`~gammastar.yields.extrapolation.Extrapolation.group_weights`: the two bins around it) drawn
``--draws`` times from their covariance and interpolated to the mass (``covariance_stat``; σ_y and ȳ held: an external σ_y's error is its own
part), N/Y_F recomputed at each draw (f_F by the quadrature of :func:`fiducial_fraction`, 𝓔_out
by reweighting the nominal draw's extrapolated samples to the drawn parameters, self-normalised,
as :func:`~gammastar.yields.extrapolation.nsig_error_parts` does for the forms). Printed per
realisation and cτ: the linear part (the reference), the draws' standard deviation and
16–84% half-width over the nominal, their ratio, and the draws' mean shift.

Usage::

    python benchmarks/coverage_propagation.py --workdir /tmp/s14/fresh --seeds 1060 1061 \\
        --flow /tmp/s12/flow_a+0.0000/flow [--arm full] [--mass 0.3]

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
# benchmarks/ holds select.py etc.: keep it off sys.path so the stdlib `select` is found
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]


def propagate(run: Path, flow_model, geo, mass: float, ctaus, samples: int, draws: int, seed: int):
    """Linear and Monte Carlo fit errors of N/Y_F at ``mass`` for one realisation's run."""
    from gammastar.corrections.pair_acceptance import FiducialRegion
    from gammastar.reach.acceptance import draw
    from gammastar.yields.extrapolation import (
        NOMINAL,
        ExtrapolatedSampler,
        Extrapolation,
        RecordingSampler,
        _grid_in_f,
        fiducial_fraction,
        nsig_error_parts,
        per_sample_acceptance,
    )

    doc = json.loads((run / "yields.json").read_text())["extrapolation"]
    ex, fid = Extrapolation.from_dict(doc), FiducialRegion.from_dict(doc["fiducial"])
    if not ex.pt_power_fitted or ex.covariance_stat is None:
        raise SystemExit(f"{run}: the extrapolation has no fitted m_T power (pt_power: fitted)")
    ct = np.asarray(ctaus, dtype=np.float64)
    sampler = RecordingSampler(ExtrapolatedSampler(flow_model, ex, fid))
    ks = draw(sampler, mass, samples, geo, seed=seed)
    kin = sampler.last
    linear = nsig_error_parts(ex, fid, mass, kin, ks, ct)["fit"]
    acc = per_sample_acceptance(ks, ct)
    out = np.asarray(kin["extrapolated"], dtype=bool)
    qt = np.asarray(kin["qT"])[out]
    f0, t, mu, s = (float(v) for v in ex.at(mass))
    a0 = float(ex.power_at(mass))
    e_in = acc[~out].sum(axis=0) / acc.shape[0]
    # (T, a) at the mass: the weighted sum over the groups of the two bins around it
    groups = ex.group_weights(mass)
    idx = [ex.parameter_index(p, g) for g in groups for p in ("T", "a")]
    cov_g = ex.covariance_stat[np.ix_(idx, idx)]
    lin = np.zeros((2, len(idx)))  # (T, a) at the mass from the groups' (T_g, a_g)
    for k, wg in enumerate(groups.values()):
        lin[0, 2 * k], lin[1, 2 * k + 1] = wg, wg
    cov = lin @ cov_g @ lin.T
    inside = _grid_in_f(fid, mass)
    lp0 = NOMINAL.log_pt(mass, qt, t, a0)

    def n_over_yf(tt: float, aa: float):
        f = fiducial_fraction(fid, mass, (tt, mu, s, aa), inside)
        w = np.exp(NOMINAL.log_pt(mass, qt, tt, aa) - lp0)
        return e_in / f0 + (1 - f) / f * (w @ acc[out] / w.sum())

    nom = n_over_yf(t, a0)
    first = {g: int(np.flatnonzero(ex.bin_group == g)[0]) for g in groups}
    centre = np.array(
        [v for g in groups for v in (ex.temperature[first[g]], ex.pt_power[first[g]])]
    )
    drawn = np.random.default_rng(seed).multivariate_normal(centre, cov_g, size=draws)
    pars = (drawn - centre) @ lin.T + np.array([t, a0])  # around the interpolated nominal
    ok = (pars[:, 0] > 0.03) & (pars[:, 1] > -1.9)  # inside the fit's bounds
    vals = np.array([n_over_yf(tt, aa) for tt, aa in pars[ok]])
    sd = vals.std(axis=0, ddof=1) / nom
    half = (np.percentile(vals, 84, axis=0) - np.percentile(vals, 16, axis=0)) / 2 / nom
    return {
        "T": t, "a": a0, "sigma_T": float(np.sqrt(cov[0, 0])), "sigma_a": float(np.sqrt(cov[1, 1])),
        "corr": float(cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1])), "draws": int(ok.sum()),
        "linear": linear.tolist(), "mc_sd": sd.tolist(), "mc_half_width": half.tolist(),
        "mc_over_linear": (sd / linear).tolist(), "mc_mean_shift": (vals.mean(axis=0) / nom - 1).tolist(),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, required=True, help="a coverage run's --workdir")
    ap.add_argument("--seeds", type=int, nargs="+", required=True)
    ap.add_argument("--arm", default="full")
    ap.add_argument("--flow", type=Path, required=True, help="the coverage run's --flow")
    ap.add_argument("--config", type=Path, default=REPO / "analysis" / "na60_like.yaml")
    ap.add_argument("--mass", type=float, default=0.3)
    ap.add_argument("--ctaus", type=float, nargs="+", default=[1.0, 100.0])
    ap.add_argument("--samples", type=int, default=40_000)
    ap.add_argument("--draws", type=int, default=300)
    ap.add_argument("--seed", type=int, default=12)
    args = ap.parse_args(argv)
    from gammastar import flow
    from gammastar.config import load_config
    from gammastar.source.geometry import Geometry

    geo = Geometry.from_config(load_config(args.config).detector)
    model = flow.load(args.flow)
    rows = {}
    for sd in args.seeds:
        run = args.workdir / f"{args.arm}_seed{sd}"
        if not (run / "yields.json").exists():
            raise SystemExit(f"{run}: no yields.json")
        r = propagate(run, model, geo, args.mass, args.ctaus, args.samples, args.draws, args.seed)
        rows[sd] = r
        for k, c in enumerate(args.ctaus):
            print(f"seed {sd} m {args.mass:g} ctau {c:g}: linear {r['linear'][k]:.4f}  "
                  f"MC sd {r['mc_sd'][k]:.4f} (ratio {r['mc_over_linear'][k]:.3f})  "
                  f"MC 16-84% half {r['mc_half_width'][k]:.4f}  mean shift "
                  f"{r['mc_mean_shift'][k]:+.4f}  (T {r['T']:.3f}, a {r['a']:+.2f}, "
                  f"corr {r['corr']:+.3f})")  # fmt: skip
    out = {"benchmark": "coverage_propagation", "mass": args.mass, "ctaus": args.ctaus,
           "draws": args.draws, "seed": args.seed, "rows": rows}  # fmt: skip
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
