"""The statistical part of N_sig's error against a bootstrap of the data (issue 19).

The coverage run quotes for N_sig = Y_F · N/Y_F the yield's ``data_stat`` and the
extrapolation fit's part of N/Y_F (:func:`gammastar.extrapolation.nsig_error_parts` ``fit``)
and adds them in quadrature. Both come from the same pairs: this script resamples them and
redoes both. For one realisation's run directory (``pairs.parquet`` and ``yields.json`` of
``gammastar select`` and ``yields``), ``--replicas`` times: every event's pairs get one Poisson(1)
multiplier of their weight (an event-level bootstrap: pairs of one event move together), the
fit groups that set the model at ``--mass`` (:meth:`~gammastar.extrapolation.Extrapolation.
group_weights`) are refitted as the yields fitted them (σ_y and ȳ held, each group's own
(T, a) from its own pairs and its reference sample), and

* Y_F at the mass: the log-linear interpolation of the two bins' weighted sums (as
  :meth:`gammastar.reach.Yields.at`);
* N/Y_F = 𝓔_in + E_x(θ)/f_F(θ): the nominal draw's inside-F acceptance, f_F by quadrature at
  the interpolated (T, a), 𝓔_out by reweighting the nominal draw's extrapolated samples to the
  replica's parameters (self-normalised), as ``benchmarks/coverage_propagation.py`` does.

Printed per cτ: the bootstrap's relative standard deviations of Y_F, of N/Y_F and of N against
the quoted ``data_stat``, ``fit`` and N's statistical error √(data_stat² + fit² + yield_cross)
(``yield_cross`` = 2 Cov(ln Y_F, ln(N/Y_F)) from the sandwich, since 2026-11-25; the plain
quadrature sum beside it), and the bootstrap's correlation of Y_F with N/Y_F. Also the fit's part as the nearest bin's group alone
would give it (the rule until 2026-11-25), for comparison.

Usage::

    python benchmarks/extrapolation_bootstrap.py --runs RUN [RUN ...] --flow FLOW_DIR \\
        [--mass 0.3] [--ctaus 1 100] [--replicas 200]

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
# benchmarks/ holds select.py etc.: keep it off sys.path so the stdlib `select` is found
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]


def _nearest_group_fit(ex, fid, mass, kin, ks, ctaus):
    """``nsig_error_parts``' fit part with the nearest bin's group alone (the former rule)."""
    import dataclasses

    from gammastar.extrapolation import nsig_error_parts

    b = int(np.argmin(np.abs(ex.mass - mass)))
    one = dataclasses.replace(ex, bin_group=np.full(ex.bin_group.shape, ex.bin_group[b]))
    return nsig_error_parts(one, fid, mass, kin, ks, ctaus)["fit"]


def bootstrap(run: Path, flow_model, geo, mass: float, ctaus, samples: int, replicas: int,
              seed: int) -> dict:  # fmt: skip
    """The bootstrap of one realisation (module docstring)."""
    import pandas as pd

    from gammastar.acceptance import draw
    from gammastar.extrapolation import (
        NOMINAL,
        ExtrapolatedSampler,
        Extrapolation,
        RecordingSampler,
        _fit_joint,
        _grid_in_f,
        _Reference,
        fiducial_fraction,
        nsig_error_parts,
        per_sample_acceptance,
    )
    from gammastar.pair_acceptance import FiducialRegion
    from gammastar.reach import load_yields

    doc = json.loads((run / "yields.json").read_text())["extrapolation"]
    ex, fid = Extrapolation.from_dict(doc), FiducialRegion.from_dict(doc["fiducial"])
    if not ex.pt_power_fitted:
        raise SystemExit(f"{run}: the extrapolation has no fitted m_T power (pt_power: fitted)")
    ct = np.asarray(ctaus, dtype=np.float64)
    sampler = RecordingSampler(ExtrapolatedSampler(flow_model, ex, fid))
    ks = draw(sampler, mass, samples, geo, seed=seed)
    kin = sampler.last
    parts = nsig_error_parts(ex, fid, mass, kin, ks, ct)
    fit_nearest = _nearest_group_fit(ex, fid, mass, kin, ks, ct)
    data_stat = float(load_yields(run / "yields.json").at([mass])[1][0])

    pairs = pd.read_parquet(run / "pairs.parquet", columns=["event", "m", "pT", "y", "weight"])
    m, pt, y, w, ev = (pairs[c].to_numpy() for c in ("m", "pT", "y", "weight", "event"))
    use = (w != 0) & np.isfinite(y) & (pt > 0)
    edges = np.asarray(ex.edges)
    b_of = np.clip(np.searchsorted(edges, m, side="right") - 1, 0, len(edges) - 2)
    mu, s = float(ex.y_mean[0]), float(ex.y_sigma[0])
    groups = ex.group_weights(mass)
    fits = {}
    for g in groups:  # each group's pairs and reference sample, as fit_extrapolation made them
        k = use & np.isin(b_of, np.flatnonzero(ex.bin_group == g))
        m_c = float(np.sum(w[k] * m[k]) / np.sum(w[k]))
        b0 = int(np.flatnonzero(ex.bin_group == g)[0])
        start = (float(ex.temperature[b0]), mu, s, float(ex.pt_power[b0]))
        fits[g] = (k, _Reference(fid, m_c, g), start)
    bins = ex.bin_weights(mass)
    in_bin = {b: use & (b_of == b) for b, _ in bins}

    # N/Y_F at parameters: the nominal draw's samples, the outside ones reweighted
    acc = per_sample_acceptance(ks, ct)
    out = np.asarray(kin["extrapolated"], dtype=bool)
    qt = np.asarray(kin["qT"])[out]
    e = np.asarray(kin["E"])[out]
    y_out = np.arccosh(np.maximum(e / np.sqrt(qt**2 + mass**2), 1.0))
    f0, t0, _, _ = (float(v) for v in ex.at(mass))
    a0 = float(ex.power_at(mass))
    e_in = acc[~out].sum(axis=0) / acc.shape[0]
    inside = _grid_in_f(fid, mass)
    lp0 = NOMINAL.log_pt(mass, qt, t0, a0) + NOMINAL.log_y(y_out, mu, s)

    def n_over_yf(tt: float, aa: float):
        f = fiducial_fraction(fid, mass, (tt, mu, s, aa), inside)
        r = np.exp(NOMINAL.log_pt(mass, qt, tt, aa) + NOMINAL.log_y(y_out, mu, s) - lp0)
        return e_in / f0 + (1 - f) / f * (r @ acc[out] / r.sum())

    def y_f(weights):  # log-linear in the bins' sums, as Yields.at
        return float(np.exp(sum(wb * np.log(np.sum(weights[in_bin[b]])) for b, wb in bins)))

    nom_ny, nom_yf = n_over_yf(t0, a0), y_f(w)
    rng = np.random.default_rng(seed)
    uev, inv = np.unique(ev, return_inverse=True)
    rows = []
    for _ in range(replicas):
        wr = w * rng.poisson(1.0, uev.size)[inv]
        tt = aa = 0.0
        for g, wg in groups.items():
            k, ref, start = fits[g]
            kk = k & (wr != 0)
            x, _ = _fit_joint([(m[kk], pt[kk], y[kk], wr[kk], ref)], start, sigma=s,
                              mu_fixed=mu, power=None)  # fmt: skip
            tt, aa = tt + wg * x[2], aa + wg * x[3]
        rows.append((y_f(wr) / nom_yf, *(n_over_yf(tt, aa) / nom_ny)))
    r = np.array(rows)  # (replicas, 1 + n_ct): Y_F/Y_F0, then N/Y_F over its nominal per cτ
    res = {"run": str(run), "mass": mass, "groups": {str(g): v for g, v in groups.items()},
           "replicas": replicas, "data_stat": data_stat, "boot_y_f": float(r[:, 0].std(ddof=1)),
           "fit": parts["fit"].tolist(), "fit_nearest_group": fit_nearest.tolist()}  # fmt: skip
    for k, c in enumerate(ct):
        ny, n = r[:, 1 + k], r[:, 0] * r[:, 1 + k]
        res[f"ctau_{c:g}"] = {
            "boot_n_over_yf": float(ny.std(ddof=1)),
            "boot_n": float(n.std(ddof=1)),
            "quoted_n": float(
                np.sqrt(max(data_stat**2 + parts["fit"][k] ** 2 + parts["yield_cross"][k], 0.0))
            ),
            "quoted_n_quadrature": float(np.hypot(data_stat, parts["fit"][k])),
            "corr_y_f_n_over_yf": float(np.corrcoef(r[:, 0], ny)[0, 1]),
        }
    return res


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, nargs="+", required=True, help="realisations' run dirs")
    ap.add_argument("--flow", type=Path, required=True, help="the fiducial flow (coverage --flow)")
    ap.add_argument("--config", type=Path, default=REPO / "analysis" / "na60_like.yaml")
    ap.add_argument("--mass", type=float, default=0.3)
    ap.add_argument("--ctaus", type=float, nargs="+", default=[1.0, 100.0])
    ap.add_argument("--samples", type=int, default=40_000)
    ap.add_argument("--replicas", type=int, default=200)
    ap.add_argument("--seed", type=int, default=12)
    args = ap.parse_args(argv)
    from gammastar import flow
    from gammastar.acceptance import Geometry
    from gammastar.config import load_config

    geo = Geometry.from_config(load_config(args.config).detector)
    model = flow.load(args.flow)
    rows = []
    t0 = time.perf_counter()
    for run in args.runs:
        if not (run / "yields.json").exists() or not (run / "pairs.parquet").exists():
            raise SystemExit(f"{run}: no yields.json or pairs.parquet")
        r = bootstrap(run, model, geo, args.mass, args.ctaus, args.samples, args.replicas,
                      args.seed)  # fmt: skip
        rows.append(r)
        print(f"{run.name}: m {args.mass:g}, groups {r['groups']}; Y_F: boot "
              f"{r['boot_y_f']:.4f} vs data_stat {r['data_stat']:.4f}")  # fmt: skip
        for k, c in enumerate(args.ctaus):
            q = r[f"ctau_{c:g}"]
            print(f"  ctau {c:g} m: N/Y_F boot {q['boot_n_over_yf']:.4f} vs fit {r['fit'][k]:.4f}"
                  f" (nearest group alone {r['fit_nearest_group'][k]:.4f}); N boot "
                  f"{q['boot_n']:.4f} vs quoted {q['quoted_n']:.4f} (without the yield_cross "
                  f"term {q['quoted_n_quadrature']:.4f}); corr(Y_F, N/Y_F) "
                  f"{q['corr_y_f_n_over_yf']:+.2f}", flush=True)  # fmt: skip
    ratios = {f"ctau_{c:g}": {
        "n_over_yf_boot_over_fit": float(np.mean(
            [r[f"ctau_{c:g}"]["boot_n_over_yf"] / r["fit"][k] for r in rows])),
        "n_boot_over_quoted": float(np.mean(
            [r[f"ctau_{c:g}"]["boot_n"] / r[f"ctau_{c:g}"]["quoted_n"] for r in rows])),
    } for k, c in enumerate(args.ctaus)}  # fmt: skip
    out = {"benchmark": "extrapolation_bootstrap", "mass": args.mass, "ctaus": args.ctaus,
           "replicas": args.replicas, "seed": args.seed, "mean_ratios": ratios,
           "seconds": time.perf_counter() - t0, "rows": rows}  # fmt: skip
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
