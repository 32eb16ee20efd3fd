"""The measured λ_θ against the fiducial yield over realisations, and within one (issue 19).

Reads the realisations that ``benchmarks/stat_scatter.py`` leaves in ``--workdir`` (``seed<N>/``
with ``pairs.parquet``, ``select.json``, ``yields.json``, ``mock.root``) and, at ``--mass``:

* over realisations, the slope of ln Y_F(m) (the fiducial yield, log-linear between its two
  bins) on the measured λ̂_θ(m) (linear between the polarisation bins' centres, as the
  acceptance takes it), and the same for Y₀, the yield with every pair's A at one fixed
  λ_θ = ``--fixed-lambda`` inside each realisation's own region (the pairs with weight), the
  data's fluctuation without the correction's; Y₀'s slope again with the polarisation edges'
  positions as covariates;
* within realisations (``--within`` seeds), the covariance of ln Y_F(m) with λ̂_θ(m) from the
  λ fit's influence functions IFᵢ = H⁻¹wᵢgᵢ (:func:`gammastar.corrections.polarisation.fit_lambdas`' H and
  scores, the fit refitted here on the isotropic region's weights) summed with the yield's
  weights: what an event bootstrap of one realisation would give;
* with the region held or following λ′: d ln Y_F(m)/dλ for a common shift ``--shift`` of
  λ_θ(m) at every node, per ``--within`` seed (pairs outside the nominal region weighted 1/ε
  times their like-sign factor: 1 for OS, the median of their yield bin's SS pairs for SS).

docs/coverage.md "The measured λ̂_θ and the yield are anti-correlated statistics (session 17)".
Usage: python benchmarks/lambda_yield_scatter.py --workdir /tmp/scatter [--first-seed 3000
--realisations 140]. The last line is one JSON object.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import json
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _script(name: str) -> Any:
    """``benchmarks/<name>.py`` as a module (a script, not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        f"{name}_bench", REPO / "benchmarks" / f"{name}.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_scatter = _script("stat_scatter")  # lambda_at


def _arr(v: list) -> np.ndarray:
    return np.array([np.nan if x is None else x for x in v], dtype=float)


def interp_weights(centres: np.ndarray, m: float) -> tuple[int, float]:
    """(j, t): m lies between centres j − 1 and j, at the fraction t (clipped to [0, 1])."""
    j = int(np.clip(np.searchsorted(centres, m), 1, centres.size - 1))
    return j, float(np.clip((m - centres[j - 1]) / (centres[j] - centres[j - 1]), 0.0, 1.0))


def slope(y: np.ndarray, x: np.ndarray, extra: np.ndarray | None = None) -> tuple[float, float]:
    """The least-squares slope of y on x (with ``extra`` columns as covariates) and its error."""
    cols = [np.ones(x.size), x] + ([] if extra is None else list(extra.T))
    a = np.column_stack(cols)
    b, *_ = np.linalg.lstsq(a, y, rcond=None)
    r = y - a @ b
    s2 = r @ r / (y.size - a.shape[1])
    return float(b[1]), float(np.sqrt(s2 * np.linalg.inv(a.T @ a)[1, 1]))


class Realisation:
    """One realisation's pairs in the two yield bins around ``mass`` and its documents."""

    def __init__(self, run: Path, mass: float) -> None:
        import pandas as pd

        self.run = run
        self.sel = json.loads((run / "select.json").read_text())
        ap = json.loads((run / "yields.json").read_text())["aprime"]
        e, mc = np.asarray(ap["bin_edges"], float), np.asarray(ap["mass"], float)
        self.j, self.t = interp_weights(mc, mass)
        self.lo, self.mid, self.hi = e[self.j - 1], e[self.j], e[self.j + 1]
        df = pd.read_parquet(run / "pairs.parquet")
        self.all = df
        self.df = df[(df.m >= self.lo) & (df.m < self.hi)]

    def ln_y(self, w: np.ndarray) -> float:
        m = self.df.m.to_numpy()
        y1, y2 = w[m < self.mid].sum(), w[m >= self.mid].sum()
        return (1 - self.t) * np.log(y1) + self.t * np.log(y2)

    def base(self) -> np.ndarray:
        """1/ε × the like-sign factor of every pair (``uncertainties.acceptance_free_weights``, per yield
        bin)."""
        d = self.df
        w, acc, eff, q, m = (d[c].to_numpy() for c in ("weight", "acc", "eff", "charge", "m"))
        from gammastar.yields.uncertainties import acceptance_free_weights

        return acceptance_free_weights(w, acc, eff, q, (m >= self.mid).astype(int))


def acceptance(cfg: Any, run: Path) -> Any:
    from gammastar.corrections.pair_acceptance import fiducial_from_config

    return fiducial_from_config(cfg.model_copy(update={"output": str(run)})).acceptance


def within(cfg: Any, r: Realisation, am: Any, mass: float) -> float:
    """Corr(ln Y_F(m), λ̂(m)) from influence functions within one realisation."""
    from gammastar.corrections.polarisation import _NewtonPass, angular_functions, fit_lambdas

    d = r.all
    m, pt, pz = (d[c].to_numpy() for c in ("m", "pT", "pz"))
    p, th = np.hypot(pt, pz), np.arctan2(pt, pz)
    w_y = d["weight"].to_numpy()
    a_iso = am.with_lambda(0.0)(m, p, th)
    w_fit = np.where(a_iso >= cfg.unfold.min_acceptance, w_y * d["acc"].to_numpy(), 0.0)
    pol = r.sel["polarisation"]
    pe = np.asarray(pol["mass_edges"], dtype=float)
    centres = 0.5 * (pe[1:] + pe[:-1])
    inf = np.zeros(m.size)
    for k in range(pe.size - 1):
        i = np.flatnonzero((m >= pe[k]) & (m < pe[k + 1]) & (w_fit != 0))
        mom = am.moments_at(m[i], p[i], th[i])
        ok = mom[0] > 0
        i, mom = i[ok], mom[:, ok]
        u = angular_functions(d["cos_theta_hel"].to_numpy()[i], d["phi_hel"].to_numpy()[i])
        try:
            lam, _ = fit_lambdas(u, mom[0], mom[1:], w_fit[i], n_params=3)
        except ValueError:
            continue
        g = u / (1.0 + lam @ u) - mom[1:] / (mom[0] + lam @ mom[1:])
        _, hess, _ = _NewtonPass(u, mom[0], mom[1:], w_fit[i])(lam, meat=False)
        inf[i] = (np.linalg.inv(hess) @ (g * w_fit[i]))[0]
    j, t = interp_weights(centres, mass)
    tk = np.zeros(centres.size)
    tk[j - 1], tk[j] = 1 - t, t
    kbin = np.clip(np.searchsorted(pe, m, side="right") - 1, 0, centres.size - 1)
    inf_l = tk[kbin] * inf
    coef = np.zeros(m.size)
    for lo, hi, f in ((r.lo, r.mid, 1 - r.t), (r.mid, r.hi, r.t)):
        b = (m >= lo) & (m < hi)
        coef[b] = f * w_y[b] / w_y[b].sum()
    return float(np.sum(coef * inf_l) / np.sqrt(np.sum(coef**2) * np.sum(inf_l**2)))


def region_slopes(cfg: Any, r: Realisation, am: Any, shift: float) -> tuple[float, float]:
    """d ln Y_F(m)/dλ for a common shift of λ_θ at every node: region held, following."""
    d = r.df
    m, pt, pz = (d[c].to_numpy() for c in ("m", "pT", "pz"))
    a0 = am.lookup(m, pt, pz)
    base = r.base()
    amin = float(cfg.unfold.min_acceptance)
    lam = np.broadcast_to(np.asarray(am.lambda_theta, float), am.m_grid.shape)
    out = {}
    for s in (1, -1):
        a = am.with_lambda(np.clip(lam + s * shift, -1.0, 1.0)).lookup(m, pt, pz)
        safe = np.where(a > 0, a, 1.0)
        out[s] = (r.ln_y(np.where(a0 >= amin, base / safe, 0.0)),
                  r.ln_y(np.where(a >= amin, base / safe, 0.0)))  # fmt: skip
    return tuple((out[1][k] - out[-1][k]) / (2 * shift) for k in (0, 1))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=REPO / "analysis" / "na60_like.yaml")
    ap.add_argument("--workdir", type=Path, required=True, help="stat_scatter.py's workdir")
    ap.add_argument("--first-seed", type=int, default=3000)
    ap.add_argument("--realisations", type=int, default=140)
    ap.add_argument("--mass", type=float, default=0.3)
    ap.add_argument("--fixed-lambda", type=float, default=0.1)
    ap.add_argument("--within", type=int, nargs="+", default=[3000, 3001, 3002])
    ap.add_argument("--shift", type=float, default=0.06)
    args = ap.parse_args(argv)
    from gammastar.config import load_config

    seeds = range(args.first_seed, args.first_seed + args.realisations)
    for s in [*seeds, *args.within]:
        if not (args.workdir / f"seed{s}" / "yields.json").exists():
            ap.error(f"--workdir: {args.workdir}/seed{s}/yields.json does not exist")
    cfg = load_config(args.config)
    am0 = None
    y, y0, lam, edges = [], [], [], []
    for s in seeds:
        r = Realisation(args.workdir / f"seed{s}", args.mass)
        if am0 is None:
            am0 = acceptance(cfg, r.run).with_lambda(args.fixed_lambda)
        d = r.df
        w, acc = d["weight"].to_numpy(), d["acc"].to_numpy()
        a0 = am0.lookup(*(d[c].to_numpy() for c in ("m", "pT", "pz")))
        y.append(r.ln_y(w))
        y0.append(r.ln_y(np.where(a0 > 0, w * acc / np.where(a0 > 0, a0, 1.0), 0.0)))
        lam.append(float(_scatter.lambda_at(r.sel["polarisation"], [args.mass])[0][0]))
        edges.append(r.sel["polarisation"]["mass_edges"][1:4])
    y, y0, lam, edges = map(np.asarray, (y, y0, lam, edges))
    res = {
        "benchmark": "lambda_yield_scatter", "mass": args.mass, "n": len(y),
        "sd_ln_yf": float(y.std(ddof=1)), "sd_lambda": float(lam.std(ddof=1)),
        "slope_ln_yf": slope(y, lam), "slope_ln_y0": slope(y0, lam),
        "slope_ln_y0_edges": slope(y0, lam, edges),
        "corr_y0_lambda": float(np.corrcoef(y0, lam)[0, 1]),
        "within_corr": {}, "region_slopes": {},
    }  # fmt: skip
    for s in args.within:
        r = Realisation(args.workdir / f"seed{s}", args.mass)
        am = acceptance(cfg, r.run)
        res["within_corr"][s] = within(cfg, r, am, args.mass)
        res["region_slopes"][s] = region_slopes(cfg, r, am, args.shift)
    print(f"over {len(y)} realisations at m = {args.mass:g} GeV: ln Y_F on λ̂ "
          f"{res['slope_ln_yf'][0]:+.3f} ± {res['slope_ln_yf'][1]:.3f}; Y0 (A at λ = "
          f"{args.fixed_lambda:g}) {res['slope_ln_y0'][0]:+.3f} ± {res['slope_ln_y0'][1]:.3f} "
          f"(edges as covariates {res['slope_ln_y0_edges'][0]:+.3f}); corr(Y0, λ̂) "
          f"{res['corr_y0_lambda']:+.3f}")  # fmt: skip
    for s in args.within:
        held, moving = res["region_slopes"][s]
        print(f"seed {s}: within-realisation corr {res['within_corr'][s]:+.3f}; d ln Y_F/dλ "
              f"region held {held:+.3f}, following {moving:+.3f}")  # fmt: skip
    print(json.dumps(res))
    return res


if __name__ == "__main__":
    main()
