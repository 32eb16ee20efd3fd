"""The statistical part of N_sig's error against a bootstrap of the data (issue 19).

The coverage run quotes for N_sig = Y_F · N/Y_F the yield's ``data_stat`` and the
extrapolation fit's part of N/Y_F (:func:`gammastar.yields.extrapolation.nsig_error_parts` ``fit``)
and adds them in quadrature. Both come from the same pairs: this script resamples them and
redoes both. For one realisation's run directory (``pairs.parquet`` and ``yields.json`` of
``gammastar select`` and ``yields``), ``--replicas`` times: every event's pairs get one Poisson(1)
multiplier of their weight (an event-level bootstrap: pairs of one event move together), the
fit groups that set the model at ``--mass`` (:meth:`~gammastar.yields.extrapolation.Extrapolation.
group_weights`) are refitted as the yields fitted them (σ_y and ȳ held, each group's own
(T, a) from its own pairs and its reference sample), and

* Y_F at the mass: the log-linear interpolation of the two bins' weighted sums (as
  :meth:`gammastar.source.production.Yields.at`);
* N/Y_F = 𝓔_in + E_x(θ)/f_F(θ): the nominal draw's inside-F acceptance, f_F by quadrature at
  the interpolated (T, a), 𝓔_out by reweighting the nominal draw's extrapolated samples to the
  replica's parameters (self-normalised), as ``benchmarks/coverage_propagation.py`` does.

Printed per cτ: the bootstrap's relative standard deviations of Y_F, of N/Y_F and of N against
the quoted ``data_stat``, ``fit`` and N's statistical error √(data_stat² + fit² + yield_cross)
(``yield_cross`` = 2 Cov(ln Y_F, ln(N/Y_F)) from the sandwich, since 2026-11-25; the plain
quadrature sum beside it), and the bootstrap's correlation of Y_F with N/Y_F. Also the fit's part as the nearest bin's group alone
would give it (the rule until 2026-11-25), for comparison.

With ``--lambda-region`` (session 18) every replica also does what the selection does with a
measured λ_θ: λ̂_θ(m) refitted on the replica's pairs of the isotropic fiducial region
(:func:`gammastar.corrections.polarisation.measure` on the run's polarisation bins, weights 1/ε × the
like-sign factor × the Poisson multiplier), the per-pair acceptance at that λ̂ deciding the
region F′ (A′ ≥ ``unfold.min_acceptance``) and the weights (1/ε × factor / A′), Y_F summed in
F′, the groups refitted in F′ (their reference samples in F′), and N/Y_F with F′: the nominal
draw's samples inside F′ (flow ones, and model ones where F′ grew) averaged with equal weights,
those outside F′ reweighted to the refitted model (flow samples where F′ shrank taken as the
nominal model's), f_F of F′ by quadrature. So its spread holds the realisation-level
correlations of λ̂, the region and the yield that no error at a fixed λ̂ sees (docs/coverage.md,
"Coverage on the mock, session 18"); ``--config`` gives the fiducial region (its output set
to each run).

Usage::

    python benchmarks/extrapolation_bootstrap.py --runs RUN [RUN ...] --flow FLOW_DIR \\
        [--mass 0.3] [--ctaus 1 100] [--replicas 200] [--lambda-region --config CFG]

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

    from gammastar.yields.extrapolation import nsig_error_parts

    b = int(np.argmin(np.abs(ex.mass - mass)))
    one = dataclasses.replace(ex, bin_group=np.full(ex.bin_group.shape, ex.bin_group[b]))
    return nsig_error_parts(one, fid, mass, kin, ks, ctaus)["fit"]


def bootstrap(run: Path, flow_model, geo, mass: float, ctaus, samples: int, replicas: int,
              seed: int, cfg=None, hold: bool = False) -> dict:  # fmt: skip
    """The bootstrap of one realisation (module docstring); ``cfg``: the analysis config,
    with ``--lambda-region`` (:class:`_LambdaRegion`; ``hold``: its machinery with λ̂ and F
    held, which must give the plain bootstrap's numbers: within 1–2% on seed 3000, the
    groups' reference mass and the samples' share inside F taken from the replica)."""
    import pandas as pd

    from gammastar.corrections.pair_acceptance import FiducialRegion
    from gammastar.reach.acceptance import draw
    from gammastar.source.production import load_yields
    from gammastar.yields.extrapolation import (
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

    cols = ["event", "m", "pT", "y", "weight"]
    if cfg is not None:  # what the λ fit and the per-pair acceptance need
        cols += ["pz", "charge", "eff", "acc", "cos_theta_hel", "phi_hel"]
    pairs = pd.read_parquet(run / "pairs.parquet", columns=cols)
    m, pt, y, w, ev = (pairs[c].to_numpy() for c in ("m", "pT", "y", "weight", "event"))
    kin_ok = np.isfinite(y) & (pt > 0)  # what fit_extrapolation can fit
    use = (w != 0) & kin_ok
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
    moving = None
    if cfg is not None:
        moving = _LambdaRegion(cfg.model_copy(update={"output": str(run)}), run, pairs, mass,
                               kin, acc, (t0, mu, s, a0), bins, b_of, hold)  # fmt: skip
    # each fit group's pairs that fit_extrapolation can fit (the replica's weights decide the rest)
    group_pairs = {g: np.isin(b_of, np.flatnonzero(ex.bin_group == g)) & kin_ok for g in groups}
    rows, lams = [], []
    for _ in range(replicas):
        pois = rng.poisson(1.0, uev.size)[inv]
        if moving is not None:
            wr, fid_r, yf_r, out_r, e_in_r = moving.replica(pois)
            tt = aa = 0.0
            for g, wg in groups.items():
                k = group_pairs[g] & (wr != 0)
                m_c = float(np.sum(wr[k] * m[k]) / np.sum(wr[k]))
                x, _ = _fit_joint([(m[k], pt[k], y[k], wr[k], _Reference(fid_r, m_c, g))],
                                  fits[g][2], sigma=s, mu_fixed=mu, power=None)  # fmt: skip
                tt, aa = tt + wg * x[2], aa + wg * x[3]
            ny = moving.n_over_yf(fid_r, out_r, e_in_r, tt, aa)
            rows.append((yf_r / nom_yf, *(ny / nom_ny)))
            lams.append(getattr(moving, "lam", None))
            continue
        wr = w * pois
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
           "lambda_region": moving is not None,
           "replica_lambda_theta": [None if v is None else np.asarray(v).tolist() for v in lams],
           "replica_ratios": np.asarray(rows).tolist(),
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


class _LambdaRegion:
    """A replica's λ̂_θ, fiducial region, weights, Y_F and N/Y_F ingredients (``--lambda-region``,
    module docstring)."""

    def __init__(self, cfg, run, pairs, mass, kin, acc, params, bins, b_of, hold=False):
        from gammastar.corrections.pair_acceptance import fiducial_from_config
        from gammastar.yields.extrapolation import NOMINAL, Extrapolation
        from gammastar.yields.uncertainties import acceptance_free_weights

        self.amin, self.hold = float(cfg.unfold.min_acceptance), hold
        self.table = fiducial_from_config(cfg).acceptance  # at the run's own λ̂
        doc = json.loads((run / "yields.json").read_text())
        self.pol_edges = np.asarray(doc["polarisation"]["mass_edges"], dtype=float)
        # a run whose λ̂ the simulation corrected: each replica's λ̂ through the same response
        self.lam_correction = None
        if "selection_correction" in doc["polarisation"]:
            from gammastar.corrections.lambda_correction import LambdaCorrection

            self.lam_correction = LambdaCorrection.from_block(doc["polarisation"])
        self.pairs = pairs
        m, pt, pz = (pairs[c].to_numpy() for c in ("m", "pT", "pz"))
        self.m, self.pt, self.pz = m, pt, pz
        edges = np.asarray(Extrapolation.from_dict(doc["extrapolation"]).edges)
        self.base = acceptance_free_weights(pairs["weight"].to_numpy(), pairs["acc"].to_numpy(),
                                            pairs["eff"].to_numpy(), pairs["charge"].to_numpy(),
                                            np.clip(np.searchsorted(edges, m, side="right") - 1,
                                                    0, edges.size - 2))  # fmt: skip
        # the isotropic region and A of the selection's λ fit (A at λ_θ = 0)
        self.iso = self.table.with_lambda(np.zeros(self.table.m_grid.size)).lookup(m, pt, pz)
        ok = self.iso >= self.amin  # the isotropic region: 1/A there, 0 outside
        self.inv_iso = np.where(ok, 1.0 / np.where(ok, self.iso, 1.0), 0.0)
        self.view = {c: pairs[c].to_numpy() for c in ("m", "pT", "pz", "charge",
                                                      "cos_theta_hel", "phi_hel")}  # fmt: skip
        t0, self.mu, self.s, a0 = params
        self.mass, self.acc, self.bins, self.b_of = mass, acc, bins, b_of
        self.qt, self.e = np.asarray(kin["qT"]), np.asarray(kin["E"])
        self.y_s = np.arccosh(np.maximum(self.e / np.sqrt(self.qt**2 + mass**2), 1.0))
        # the nominal model's density at every sample (those where F′ shrank are flow ones,
        # taken as the model's: the two agree at F's edge, where the model is fitted)
        self.lp0_all = (NOMINAL.log_pt(mass, self.qt, t0, a0)
                        + NOMINAL.log_y(self.y_s, self.mu, self.s))  # fmt: skip

    def replica(self, pois):
        """(weights, region F′, Y_F at the mass, samples outside F′, 𝓔 of those inside)."""
        from gammastar.corrections.lambda_correction import corrected
        from gammastar.corrections.pair_acceptance import FiducialRegion
        from gammastar.corrections.polarisation import lambda_for_acceptance, measure

        base = self.base * pois
        view = dict(self.view, weight=base * self.inv_iso, acc=self.iso)
        if self.hold:  # the check: λ̂ and F held, the plain bootstrap's numbers
            table = self.table
        else:
            block = measure(view, self.table, self.pol_edges).as_dict()
            if self.lam_correction is not None:  # the run's unfold.polarisation_correction
                block = corrected(block, self.lam_correction)
            edges, lam = lambda_for_acceptance(block, "bootstrap replica")
            table = self.table.with_lambda(self.table.lambda_nodes(edges, lam))
            self.lam = lam  # the replica's λ̂ per polarisation bin (for the record)
        a1 = table.lookup(self.m, self.pt, self.pz)
        inside = a1 >= self.amin
        wr = np.where(inside, base / np.where(inside, a1, 1.0), 0.0)
        fid = FiducialRegion(table, self.amin)
        yf = float(np.exp(sum(wb * np.log(np.sum(wr[self.b_of == b])) for b, wb in self.bins)))
        in_f = fid.contains(np.full(self.qt.size, self.mass), self.qt, self.e)
        n = self.acc.shape[0]
        e_in = self.acc[in_f].sum(axis=0) / n
        return wr, fid, yf, ~in_f, e_in

    def n_over_yf(self, fid, out, e_in, tt, aa):
        """N/Y_F = 𝓔_in′/f′_samples + (1 − f′)/f′ ⟨a⟩ outside F′ under the refitted model."""
        from gammastar.yields.extrapolation import NOMINAL, _grid_in_f, fiducial_fraction

        f = fiducial_fraction(fid, self.mass, (tt, self.mu, self.s, aa),
                              _grid_in_f(fid, self.mass))  # fmt: skip
        frac_in = 1.0 - out.mean()  # the samples' share inside F′ (the nominal draw's f)
        lp = (NOMINAL.log_pt(self.mass, self.qt[out], tt, aa)
              + NOMINAL.log_y(self.y_s[out], self.mu, self.s))  # fmt: skip
        r = np.exp(lp - self.lp0_all[out])
        return e_in / frac_in + (1 - f) / f * (r @ self.acc[out] / r.sum())


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
    ap.add_argument(
        "--lambda-region", action="store_true",
        help="each replica refits lambda_theta and moves the fiducial region with it",
    )  # fmt: skip
    ap.add_argument(
        "--hold-lambda", action="store_true",
        help="with --lambda-region: its machinery with lambda and the region held (a check: "
        "the plain bootstrap's numbers)",
    )  # fmt: skip
    args = ap.parse_args(argv)
    from gammastar import flow
    from gammastar.config import load_config
    from gammastar.source.geometry import Geometry

    cfg = load_config(args.config)
    geo = Geometry.from_config(cfg.detector)
    model = flow.load(args.flow)
    rows = []
    t0 = time.perf_counter()
    for run in args.runs:
        if not (run / "yields.json").exists() or not (run / "pairs.parquet").exists():
            raise SystemExit(f"{run}: no yields.json or pairs.parquet")
        r = bootstrap(run, model, geo, args.mass, args.ctaus, args.samples, args.replicas,
                      args.seed, cfg if args.lambda_region else None,
                      args.hold_lambda)  # fmt: skip
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
           "lambda_region": args.lambda_region, "hold_lambda": args.hold_lambda,
           "replicas": args.replicas, "seed": args.seed, "mean_ratios": ratios,
           "seconds": time.perf_counter() - t0, "rows": rows}  # fmt: skip
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
