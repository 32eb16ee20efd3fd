"""How far a coverage arm's quoted σ of N_sig matches its realisations' scatter, part by part.

``benchmarks/coverage.py`` quotes per realisation σ = √(Σ parts²) of N = Y_F · (N/Y_F), Y_F
the chain's fiducial yield at the mass (Y(m)·f_F(m)) and N/Y_F = 𝓔_in + E_x/f_F the
acceptance per fiducial yield. Realisations that share their drawn truth (the mock's rapidity
width and p_T form: ``coverage_parts.truth_config``) scatter around one mean, so the pooled
standard deviation within those groups (each group's mean removed; dof = n − groups) is the
realised statistical scatter, without the systematic parts that move the truth itself. This
script sets it against the rms over the realisations of the parts that quote it:

* ln Y_F against ``data_stat`` and ``data_stat`` ⊕ ``acceptance_lambda_theta`` (the measured
  λ_θ moves the per-pair acceptance);
* ln(N/Y_F) against the extrapolation fit's part (``extrapolation_fit`` less its covariance
  with the yield) ⊕ ``kinematic_model`` ⊕ ``mc_acceptance``;
* 2 Cov(ln Y_F, ln(N/Y_F)) against the quoted ``extrapolation_yield_cross``;
* ln N against all of these together (with the rest of the statistical parts:
  ``like_sign_r``, ``resolution_migration``, ``eta_mumu``, ``acceptance_map_stat``, :data:`OTHER`).

N_dd carries the resolution-migration factor c(m) and Y_F does not, so ln c (its scatter is
``resolution_migration``'s, in :data:`OTHER`) sits in ln(N/Y_F). The fit's part is
``extrapolation_fit``² less the cross term; where coverage.py clipped their sum at 0 it is
unknown, and the rows so clipped are counted in the output. Each realised sd carries the
relative error 1/√(2 dof) (a Gaussian's). Reads coverage outputs (each file's last line: the
realisations' own runs, or merged outputs with their ``drawn_seeds``); Y_F is each row's
``yield_fiducial`` (recorded since 2026-11-26), or for older rows read from the realisation's
``yields.json`` in the ``--workdir`` directories. Seconds; no flow, no truth.

With ``--per-bin``, every fiducial-yield bin's scatter against its ``stat_err_fiducial``,
before and after a regression on the measured λ̂ and the drawn λ_θ shift and R
(:func:`per_bin`; reads the runs' ``yields.json`` and ``select.json``). With
``--lambda-response``, the slopes of ln N, ln Y_F and ln f_F on the measured λ̂ at each mass
and N's over Y_F's, against the quoted ratio of the N-level and yield-level λ_θ sizes
(:func:`lambda_response`).

Usage::

    python benchmarks/coverage_scatter.py --coverage /tmp/out/cov_*.json \\
        --workdir /tmp/workA /tmp/workB --config /tmp/cfg.yaml --arm full

The last line of the output is one JSON object with all figures.
"""

from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/ holds select.py: keep it off sys.path so the stdlib `select` is found
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import importlib.util
import json
import math
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]

_spec = importlib.util.spec_from_file_location(
    "coverage_parts", REPO / "benchmarks" / "coverage_parts.py"
)
coverage_parts = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(coverage_parts)


def within_groups(x, groups) -> tuple[np.ndarray, int]:
    """The columns of ``x`` (n, k) less their group means, and the degrees of freedom left
    (n − the number of groups).

    >>> r, dof = within_groups(np.array([[1.0], [3.0], [10.0], [12.0]]), [0, 0, 1, 1])
    >>> r.ravel().tolist(), dof
    ([-1.0, 1.0, -1.0, 1.0], 2)
    """
    x = np.asarray(x, dtype=np.float64)
    x = x[:, None] if x.ndim == 1 else x
    index: dict[Any, int] = {}
    g = np.array([index.setdefault(k, len(index)) for k in groups])
    means = np.zeros((g.max() + 1, x.shape[1]))
    np.add.at(means, g, x)
    means /= np.bincount(g)[:, None]
    return x - means[g], x.shape[0] - means.shape[0]


def scatter(ln_yf, ln_ny, quoted: dict[str, np.ndarray], groups) -> dict[str, Any]:
    """The within-group scatter of ln Y_F, ln(N/Y_F) and ln N = their sum (:func:`within_groups`)
    against the rms of the ``quoted`` parts per realisation (``data_stat``,
    ``acceptance_lambda_theta`` (Y_F's), ``lambda_n`` (N's, optional: else Y_F's), ``fit``
    without the cross term, ``cross`` = the quoted 2 Cov,
    ``kinematic_model``, ``mc_acceptance``, ``other``: the rest of the statistical parts).

    Returns:
        ``sd_*`` (realised), ``q_*`` (quoted), ``sd_err_rel`` = 1/√(2 dof), ``rho`` the
        realised correlation of ln Y_F and ln(N/Y_F), ``cov2`` = 2 Cov realised, ``n``,
        ``dof``.
    """
    r, dof = within_groups(np.column_stack([ln_yf, ln_ny]), groups)
    if dof < 2:
        raise ValueError(f"{dof} degrees of freedom within the groups: too few realisations")
    v = r.T @ r / dof
    q = {k: float(np.sqrt(np.mean(np.square(a)))) for k, a in quoted.items() if k != "cross"}
    cross = float(np.mean(quoted["cross"]))
    q_yf = math.hypot(q["data_stat"], q["acceptance_lambda_theta"])
    q_ny = math.sqrt(q["fit"] ** 2 + q["kinematic_model"] ** 2 + q["mc_acceptance"] ** 2)
    return {
        "n": int(r.shape[0]), "dof": int(dof), "sd_err_rel": 1 / math.sqrt(2 * dof),
        "sd_ln_yf": math.sqrt(v[0, 0]), "q_data_stat": q["data_stat"], "q_yf": q_yf,
        "sd_ln_n_over_yf": math.sqrt(v[1, 1]), "q_fit": q["fit"], "q_n_over_yf": q_ny,
        "rho": float(v[0, 1] / math.sqrt(v[0, 0] * v[1, 1])), "cov2": float(2 * v[0, 1]),
        "q_cross": cross, "sd_ln_n": math.sqrt(v.sum()),
        "q_n": math.sqrt(max(q["data_stat"] ** 2 + q.get("lambda_n", q["acceptance_lambda_theta"])
                             ** 2 + q_ny**2 + cross + q["other"] ** 2, 0.0)),
    }  # fmt: skip


def bin_scatter(ln_y, rel_err, covariates, groups) -> dict[str, Any]:
    """One yield bin's within-group scatter against its quoted relative error, before and after
    a least-squares regression on ``covariates`` (n, k), each taken within the groups as well:
    what is left once the measured λ̂ and the drawn parameters are taken out is the pairs'
    own statistics, which ``stat_err`` quotes.

    Returns:
        ``sd`` and ``sd_less`` (after the regression; dof less its rank), ``quoted`` (the rms of
        ``rel_err``), ``ratio`` and ``ratio_less`` (sd over quoted), ``slopes``, ``dof``.

    >>> rng = np.random.default_rng(3)
    >>> g, x = np.repeat(np.arange(20), 10), rng.normal(size=200)
    >>> y = 0.3 * g + 0.1 * x + rng.normal(0, 0.05, 200)
    >>> out = bin_scatter(y, np.full(200, 0.05), x[:, None], list(g))
    >>> round(out["ratio_less"], 1), round(out["slopes"][0], 2)
    (1.0, 0.1)
    """
    r, dof = within_groups(ln_y, groups)
    x, _ = within_groups(covariates, groups)
    coef, _, rank, _ = np.linalg.lstsq(x, r[:, 0], rcond=None)  # a constant draw: rank < k
    rest = r[:, 0] - x @ coef
    quoted = float(np.sqrt(np.mean(np.square(rel_err))))
    sd, less = math.sqrt(r[:, 0] @ r[:, 0] / dof), math.sqrt(rest @ rest / (dof - rank))
    return {"sd": sd, "sd_less": less, "quoted": quoted, "ratio": sd / quoted,
            "ratio_less": less / quoted, "slopes": coef.tolist(), "dof": int(dof)}  # fmt: skip


def per_bin(seeds, workdirs, arm: str, drawn: dict, key) -> list[dict[str, Any]]:
    """:func:`bin_scatter` of every fiducial-yield bin (``aprime.per_pot_per_eps2_fiducial``
    against ``stat_err_fiducial``) over the realisations ``seeds``, read from their run
    directories (``yields.json``, ``select.json``), less the measured λ̂ of the polarisation
    bin holding the yield bin's centre and the drawn λ_θ shift and R (``--per-bin``)."""
    ys, qs, lam, rows, mass = [], [], [], [], None
    for s in seeds:
        run = find_run(workdirs, arm, s)
        ap = json.loads((run / "yields.json").read_text())["aprime"]
        if mass is not None and ap["mass"] != mass:
            raise SystemExit(f"coverage_scatter: {run}: other yield bins than the first run's")
        mass = ap["mass"]
        pol = json.loads((run / "select.json").read_text()).get("polarisation") or {}
        y = np.asarray(ap["per_pot_per_eps2_fiducial"], float)
        ys.append(np.log(np.where(y > 0, y, np.nan)))
        qs.append(np.asarray(ap["stat_err_fiducial"], float) / y)
        edges = np.asarray(pol.get("mass_edges", [0.0, np.inf]), float)
        k = np.clip(np.searchsorted(edges, ap["mass"]) - 1, 0, edges.size - 2)
        lt = [np.nan if v is None else v for v in pol.get("lambda_theta", [0.0] * (edges.size - 1))]
        lam.append(np.asarray(lt, float)[k])
        d = drawn.get(s, {})
        rows.append((d.get("lambda_theta_shift", 0.0), d.get("r_factor", 1.0)))
    ys, qs, lam, rows = map(np.asarray, (ys, qs, lam, rows))
    groups = [key(s) for s in seeds]
    out = []
    for j, m in enumerate(mass):
        cov = np.column_stack([lam[:, j], rows])
        if not (np.all(np.isfinite(ys[:, j])) and np.all(np.isfinite(cov))):
            continue  # a realisation without a yield or a λ̂ there
        out.append({"mass": float(m), **bin_scatter(ys[:, j], qs[:, j], cov, groups)})
    return out


def lambda_response(rows, workdirs, arm: str, drawn: dict, key, yf) -> list[dict[str, Any]]:
    """Per (mass, cτ): how ln N_dd, ln Y_F and ln f_F move with the measured λ̂ at the mass
    (``select.json`` ``polarisation.lambda_theta`` interpolated at m between the bins' centres)
    within the truth groups, the drawn λ_θ shift and R regressed out beside it (least squares
    with a mean per group; slope ± its standard error); ``ratio`` = N's slope / Y_F's (what
    ``acceptance_lambda_theta`` at N's level quotes beside the yield's: ``quoted_ratio``, the
    mean over the rows carrying both sizes, else ``None``). ``--lambda-response``."""
    runs: dict[int, tuple[Any, Any]] = {}
    for s in {r["seed"] for r in rows}:
        run = find_run(workdirs, arm, s)
        runs[s] = (json.loads((run / "select.json").read_text()).get("polarisation") or {},
                   json.loads((run / "yields.json").read_text())["extrapolation"])  # fmt: skip
    out = []
    for m, ct in sorted({(r["mass"], r["ctau"]) for r in rows}):
        pts = sorted((r for r in rows if (r["mass"], r["ctau"]) == (m, ct)),
                     key=lambda r: r["seed"])  # fmt: skip
        lam, f_f = [], []
        for r in pts:
            pol, ex = runs[r["seed"]]
            e = np.asarray(pol["mass_edges"], float)
            lt = np.array([np.nan if v is None else v for v in pol["lambda_theta"]], float)
            ok = np.isfinite(lt)
            lam.append(np.interp(m, (0.5 * (e[1:] + e[:-1]))[ok], lt[ok]))
            f_f.append(np.interp(m, ex["mass"], ex["fiducial_fraction"]))
        d = [drawn.get(r["seed"], {}) for r in pts]
        cov = np.column_stack([lam, [x.get("lambda_theta_shift", 0.0) for x in d],
                               [x.get("r_factor", 1.0) for x in d]])  # fmt: skip
        groups = [key(r["seed"]) for r in pts]
        xr, dof = within_groups(cov, groups)
        dof -= np.linalg.matrix_rank(xr)
        fit = {}
        for name, v in (("ln_n", np.log([r["nsig_dd"] for r in pts])),
                        ("ln_yf", np.log([yf[r["seed"], m] for r in pts])),
                        ("ln_f", np.log(f_f))):  # fmt: skip
            yr, _ = within_groups(v[:, None], groups)
            b, *_ = np.linalg.lstsq(xr, yr[:, 0], rcond=None)
            res = yr[:, 0] - xr @ b
            c = np.linalg.pinv(xr.T @ xr) * (res @ res / dof)
            fit[name] = (float(b[0]), float(np.sqrt(c[0, 0])))
        both = [r["sigma"] for r in pts if "acceptance_lambda_theta_yield" in r["sigma"]]
        q = [p["acceptance_lambda_theta"] / p["acceptance_lambda_theta_yield"] for p in both
             if p["acceptance_lambda_theta_yield"] > 0]  # fmt: skip
        out.append({"mass": m, "ctau": ct, "n": len(pts), "dof": int(dof),
                    **{f"slope_{k}": v[0] for k, v in fit.items()},
                    **{f"slope_{k}_err": v[1] for k, v in fit.items()},
                    "ratio": fit["ln_n"][0] / fit["ln_yf"][0],
                    "quoted_ratio": float(np.mean(q)) if q else None})  # fmt: skip
    return out


def find_run(workdirs: list[Path], arm: str, seed: int) -> Path:
    """The realisation's run directory among ``workdirs`` (its ``yields.json``): else a
    one-line SystemExit naming the directories searched."""
    for w in workdirs:
        if (w / f"{arm}_seed{seed}" / "yields.json").is_file():
            return w / f"{arm}_seed{seed}"
    raise SystemExit(f"coverage_scatter: no {arm}_seed{seed}/yields.json in "
                     f"{', '.join(map(str, workdirs))} (--workdir: the coverage run's)")  # fmt: skip


def fiducial_yields(rows, workdirs: list[Path], arm: str) -> dict[tuple[int, float], float]:
    """Y_F per (seed, mass): the rows' ``yield_fiducial``, or for rows without it the
    realisation's ``yields.json`` (:func:`find_run`, ``coverage.fiducial_yield_at``). A row
    without either, or a yield file without a fiducial yield, is a one-line SystemExit."""
    out, need = {}, {}
    for r in rows:
        if r.get("yield_fiducial") is not None:
            out[r["seed"], r["mass"]] = float(r["yield_fiducial"])
        else:
            need.setdefault(r["seed"], set()).add(r["mass"])
    if need and not workdirs:
        raise SystemExit(f"coverage_scatter: seed {min(need)}: its rows have no yield_fiducial "
                         "(an output from before 2026-11-26): give --workdir")  # fmt: skip
    for s, masses in need.items():
        path = find_run(workdirs, arm, s) / "yields.json"
        try:
            got = coverage_parts.coverage.fiducial_yield_at(path, sorted(masses))
        except (OSError, ValueError, TypeError, AttributeError) as err:
            raise SystemExit(f"coverage_scatter: {path}: unreadable ({err})") from None
        if any(v is None for v in got.values()):
            raise SystemExit(f"coverage_scatter: {path}: no fiducial yield; the yields must be "
                             "extrapolated beyond a fiducial region")  # fmt: skip
        out.update({(s, m): v for m, v in got.items()})
    return out


OTHER = ("like_sign_r", "resolution_migration", "eta_mumu", "acceptance_map_stat")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--coverage", type=Path, nargs="+", required=True,
                    help="coverage.py outputs: the runs' own, or merged with drawn_seeds")  # fmt: skip
    ap.add_argument("--workdir", type=Path, nargs="*", default=[],
                    help="the directories holding their run directories (for rows without "
                         "yield_fiducial)")  # fmt: skip
    ap.add_argument("--arm", default="full")
    ap.add_argument("--per-bin", action="store_true",
                    help="also every fiducial-yield bin against its stat_err (needs --workdir)")  # fmt: skip
    ap.add_argument("--lambda-response", action="store_true",
                    help="also the slopes of ln N, ln Y_F, ln f_F on the measured λ̂ (needs "
                         "--workdir)")  # fmt: skip
    ap.add_argument("--config", type=Path, default=REPO / "analysis" / "na60_like.yaml")
    args = ap.parse_args(argv)

    from gammastar.config import load_config

    rows, drawn, head = coverage_parts.read_outputs(args.coverage, args.arm)
    coverage_parts.check_config(head, args.config)
    base = load_config(args.config)
    seeds = sorted({r["seed"] for r in rows})
    yf = fiducial_yields(rows, args.workdir, args.arm)

    def key(s):  # the realisation's truth
        mock = coverage_parts.truth_config(base, drawn.get(s, {})).mock
        return (float(mock.rapidity_sigma), float(mock.pt_mt_power))

    table = []
    for m, ct in sorted({(r["mass"], r["ctau"]) for r in rows}):
        pts = sorted((r for r in rows if (r["mass"], r["ctau"]) == (m, ct)),
                     key=lambda r: r["seed"])  # fmt: skip
        sig = [r["sigma"] for r in pts]
        cross = np.array([p.get("extrapolation_yield_cross", 0.0) for p in sig])
        quoted = {
            "data_stat": np.array([p["data_stat"] for p in sig]),
            # Y_F's λ_θ part; with the N-level one beside it (rows since 2026-11-26) ln N's
            "acceptance_lambda_theta": np.array([p.get("acceptance_lambda_theta_yield", p.get(
                "acceptance_lambda_theta", 0.0)) for p in sig]),
            "lambda_n": np.array([p.get("acceptance_lambda_theta", 0.0) for p in sig]),
            "fit": np.sqrt(np.maximum([p.get("extrapolation_fit", 0.0) ** 2 for p in sig] - cross, 0)),
            "cross": cross,
            "kinematic_model": np.array([p.get("kinematic_model", 0.0) for p in sig]),
            "mc_acceptance": np.array([p.get("mc_acceptance", 0.0) for p in sig]),
            "other": np.sqrt([sum(p.get(k, 0.0) ** 2 for k in OTHER) for p in sig]),
        }  # fmt: skip
        ln_yf = np.log([yf[r["seed"], m] for r in pts])
        ln_ny = np.log([r["nsig_dd"] for r in pts]) - ln_yf
        clipped = int(
            sum(
                p.get("extrapolation_fit", 0.0) == 0 and c < 0
                for p, c in zip(sig, cross, strict=True)
            )
        )
        table.append({"mass": m, "ctau": ct, "groups": len({key(r["seed"]) for r in pts}),
                      "fit_clipped": clipped,
                      **scatter(ln_yf, ln_ny, quoted, [key(r["seed"]) for r in pts])})  # fmt: skip

    print(
        f"{len(seeds)} realisations of {args.arm!r}; within-group sd (± relative "
        f"{table[0]['sd_err_rel']:.0%}) against the quoted rms\n"
    )
    print(
        "| m (GeV) | cτ (m) | ln Y_F: sd / data_stat / ⊕λ_θ | ln(N/Y_F): sd / fit / ⊕kin⊕MC "
        "| 2Cov: realised / quoted (ρ) | ln N: sd / quoted | ratio |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for t in table:
        print(
            f"| {t['mass']:.2f} | {t['ctau']:g} | {t['sd_ln_yf']:.4f} / {t['q_data_stat']:.4f}"
            f" / {t['q_yf']:.4f} | {t['sd_ln_n_over_yf']:.4f} / {t['q_fit']:.4f} / "
            f"{t['q_n_over_yf']:.4f} | {t['cov2']:+.5f} / {t['q_cross']:+.5f} ({t['rho']:+.2f})"
            f" | {t['sd_ln_n']:.4f} / {t['q_n']:.4f} | {t['q_n'] / t['sd_ln_n']:.2f} |"
        )
    if clipped := {(t["mass"], t["ctau"]): t["fit_clipped"] for t in table if t["fit_clipped"]}:
        print(f"rows whose fit part coverage.py clipped at 0 (unknown here): {clipped}")
    bins = None
    if args.per_bin:
        if not args.workdir:
            raise SystemExit(
                "coverage_scatter: --per-bin reads the runs' directories: give --workdir"
            )
        bins = per_bin(seeds, args.workdir, args.arm, drawn, key)
        print("\n| bin centre (GeV) | ln Y_F: sd / stat_err | less λ̂, drawn λ_θ, R | λ̂ slope |")
        print("| --- | --- | --- | --- |")
        for b in bins:
            print(
                f"| {b['mass']:.3f} | {b['sd']:.4f} / {b['quoted']:.4f} ({b['ratio']:.2f}) | "
                f"{b['sd_less']:.4f} ({b['ratio_less']:.2f}) | {b['slopes'][0]:+.3f} |"
            )
    lam = None
    if args.lambda_response:
        if not args.workdir:
            raise SystemExit(
                "coverage_scatter: --lambda-response reads the runs' directories: give --workdir"
            )
        lam = lambda_response(rows, args.workdir, args.arm, drawn, key, yf)
        print("\n| m (GeV) | cτ (m) | per unit λ̂: ln N | ln Y_F | ln f_F | N / Y_F | quoted |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for t in lam:
            q = "–" if t["quoted_ratio"] is None else f"{t['quoted_ratio']:.2f}"
            print(
                f"| {t['mass']:.2f} | {t['ctau']:g} | {t['slope_ln_n']:+.3f} ± "
                f"{t['slope_ln_n_err']:.3f} | {t['slope_ln_yf']:+.3f} ± {t['slope_ln_yf_err']:.3f}"
                f" | {t['slope_ln_f']:+.4f} ± {t['slope_ln_f_err']:.4f} | {t['ratio']:.2f} | {q} |"
            )
    out = {"benchmark": "coverage_scatter", "arm": args.arm, "config": str(args.config),
           "coverage": [str(p) for p in args.coverage], "realisations": len(seeds),
           "table": table, **({"per_bin": bins} if bins is not None else {}),
           **({"lambda_response": lam} if lam is not None else {})}  # fmt: skip
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
