"""Where a coverage arm's N_dd/N_truth comes from: the yield's part and the acceptance's.

``benchmarks/coverage.py`` compares N = Y(m)·𝓔(m, cτ) with the generator's truth per
realisation. This script splits each realisation's ratio (read from the coverage JSONs'
``arms.<arm>.rows``, several outputs pooled) into

* the **acceptance part** (𝓔_dd/f_dd)/(𝓔_t/f_t): the chain's N/Y_F against the truth's, with
  𝓔 = f·𝓔_in + (1 − f)·𝓔_out (f the fiducial fraction f_F, 𝓔_in the A′ acceptance of the
  kinematics inside the fiducial region F, 𝓔_out outside); on the chain's side 𝓔_in is the
  flow's (its samples inside F: one fixed flow, ``--flow``, or with ``--own-flow`` each
  realisation's own, as ``coverage.py --own-flow`` trained it) and 𝓔_out the realisation's
  fitted model's (its samples outside F), on the truth's the generator's γ* inside and outside
  F at the same mass: the realisation's truth, with the ``full`` arm's drawn rapidity width and
  p_T form (one truth per drawn pair);
* the **yield part**, the rest (N ratio / acceptance part): Y_F of the chain against the
  truth's Y·f_t (Y at the data's mass resolution, as the coverage defines it).

It also gives each factor of the acceptance part on its own (f_dd/f_t, 𝓔_in and 𝓔_out of the
chain against the truth's), each realisation against its own truth, and, to tell the flow's
error from what the weighted pairs themselves carry (the mass resolution moves the pairs of
the ω and φ tails into the valley between them with their own kinematics), the acceptance of
each realisation's own weighted pairs inside F within ±``--window`` of each mass (like-sign
pairs at their negative weights; each pair's energy moved to the mass at its own p_T and
rapidity) against the truth and against the flow (the ratio of the two means: a data-driven
test of the flow where the data are). In the ``full`` arm a second table splits N_dd/N_t by
the drawn σ_y.

The truth is :func:`coverage.generator_gstar`'s (``--truth-sources`` generator sources), the
same γ* as the coverage run's when given the same ``--seed`` and sources.

Usage::

    python benchmarks/coverage_parts.py --coverage /tmp/cov.json --workdir /tmp/cov \\
        --flow /tmp/covens/flow [--arm stat] [--masses 0.3 0.6 0.9]
    python benchmarks/coverage_parts.py --coverage /tmp/out/c*.json --workdir /tmp/work \\
        --own-flow --arm full

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
import time
from typing import Any

import numpy as np

from gammastar.reach.flow_closure import GivenSampler, moved_energy

REPO = Path(__file__).resolve().parents[1]

_spec = importlib.util.spec_from_file_location("coverage", REPO / "benchmarks" / "coverage.py")
coverage = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(coverage)


def _sem(x) -> float:
    """The standard error of the mean of ``x``."""
    return float(np.std(x, ddof=1) / math.sqrt(x.size))


def _inside(fiducial, m, q, e):
    return fiducial.contains(np.full(q.size, m), q, e)


def model_outside(
    extrap, fiducial, m: float, n: int, seed: int, y_sigma: float | None = None, t_scale=1.0
) -> GivenSampler:
    """``n`` samples of the fitted model at mass ``m`` that lie outside F (with σ_y replaced
    by ``y_sigma`` and T scaled by ``t_scale`` when given: what-ifs)."""
    from gammastar.physics.sampling import ParametricSampler

    _, t, mu, s = (float(x) for x in extrap.at(m))
    t, s = t * t_scale, s if y_sigma is None else y_sigma
    model = ParametricSampler(t, mu, s, power=float(extrap.power_at(m)))  # the fitted p_T form
    rng = np.random.default_rng(seed)
    qs, es, have = [], [], 0
    while have < n:
        got = model.sample(m, 4 * n, seed=int(rng.integers(2**62)))
        out = ~_inside(fiducial, m, got["qT"], got["E"])
        qs.append(got["qT"][out])
        es.append(got["E"][out])
        have += int(out.sum())
    return GivenSampler(np.concatenate(qs)[:n], np.concatenate(es)[:n])


def flow_inside(model, fiducial, m: float, n: int, seed: int) -> GivenSampler:
    """``n`` samples of the flow at mass ``m`` that lie inside F."""
    from gammastar.yields.extrapolation import sample_accepted

    q, e = sample_accepted(lambda k, seed: model.sample(m, k, seed=seed), n,
                           np.random.default_rng(seed), lambda q, e: _inside(fiducial, m, q, e),
                           f"flow at {m} GeV")  # fmt: skip
    return GivenSampler(q, e)


def read_pairs(runs) -> dict[str, np.ndarray]:
    """The weighted pairs (m, q_T, E, weight) of every run, concatenated (read once)."""
    import pyarrow.parquet as pq

    cols = ("m", "qT", "E", "weight")
    got = {k: [] for k in cols}
    for run in runs:
        t = pq.read_table(run / "pairs.parquet", columns=list(cols))
        for k in cols:
            got[k].append(t.column(k).to_numpy())
    return {k: np.concatenate(v) for k, v in got.items()}


def pooled_pairs(pairs, m: float, window: float):
    """The pairs of :func:`read_pairs` within ±``window`` of ``m`` with a weight, their energy
    moved to mass m at their own p_T and rapidity: (q_T, E, weight)."""
    keep = (np.abs(pairs["m"] - m) < window) & (pairs["weight"] != 0)
    q, e, w, mm = (pairs[k][keep] for k in ("qT", "E", "weight", "m"))
    return q, moved_energy(q, e, mm, m), w


def pairs_inside(pairs, fiducial, m: float, window: float, geo, ctaus, seed: int):
    """The A′ acceptance of the weighted pairs inside F within ±``window`` of ``m``
    (:func:`pooled_pairs`), per cτ: (𝓔_in, its statistical error, the pairs' count). The error
    is the weighted mean's, √(Σ w² (a − 𝓔_in)²) / Σ w (like-sign pairs at their negative
    weights); NaN where no pair, or no net weight, is left."""
    from gammastar.reach.acceptance import draw
    from gammastar.yields.extrapolation import per_sample_acceptance

    q, e, w = pooled_pairs(pairs, m, window)
    k = _inside(fiducial, m, q, e)
    q, e, w = q[k], e[k], w[k]
    if q.size == 0 or w.sum() <= 0:  # none with a net weight: no figure (the summary skips it)
        nan = np.full(np.size(ctaus), np.nan)
        return nan, nan, int(q.size)
    a = np.asarray(
        per_sample_acceptance(draw(GivenSampler(q, e), m, q.size, geo, seed=seed), ctaus)
    )
    a = a if a.shape[0] == q.size else a.T
    e_in = (w[:, None] * a).sum(0) / w.sum()
    err = np.sqrt((w[:, None] ** 2 * (a - e_in) ** 2).sum(0)) / w.sum()
    return e_in, err, int(q.size)


TRUTH_KEYS = ("truth_seed", "truth_sources")
"""What every pooled output must share, and this run's truth with them (``--seed``,
``--truth-sources``): the γ* its N_truth came from."""


def read_outputs(paths, arm: str) -> tuple[list[dict], dict[int, dict], dict[str, Any]]:
    """The rows of ``arm`` of several ``coverage.py`` outputs (each file's last line), the
    drawn values per seed, and the first output's header (:data:`TRUTH_KEYS`, ``own_flow``,
    ``drawn_forms``, ``config``). A merged output counts with its ``drawn_seeds`` (since
    2026-11-26). A seed given twice, a file without the arm, a merged output without them (its
    draws cannot be told apart), other (mass, cτ) points or another truth than the first
    file's is a one-line SystemExit naming the file."""
    rows, drawn, head, points = [], {}, None, None
    for path in paths:
        try:
            doc = json.loads(Path(path).read_text().strip().splitlines()[-1])
            data = doc["arms"][arm]
        except (OSError, ValueError, KeyError, IndexError, TypeError) as e:
            raise SystemExit(f"coverage_parts: {path}: no arm {arm!r} of a coverage.py "
                             f"output ({e})") from None  # fmt: skip
        by_seed = coverage.drawn_by_seed(doc, data, arm, path)
        if not by_seed:
            raise SystemExit(f"coverage_parts: {path}: no seed range (a --merge output from "
                             "before 2026-11-26?); give the outputs of the realisations' own "
                             "runs")  # fmt: skip
        seeds = list(by_seed)
        if twice := sorted(set(seeds) & set(drawn)):
            raise SystemExit(f"coverage_parts: {path}: seed {twice[0]} given twice")
        if {r["seed"] for r in data["rows"]} != set(seeds):
            raise SystemExit(f"coverage_parts: {path}: its rows' seeds are not its seed range")
        here = {(r["mass"], r["ctau"]) for r in data["rows"]}
        this = {k: doc.get(k) for k in TRUTH_KEYS} | {
            "own_flow": bool(doc.get("own_flow")),
            "drawn_forms": data.get("drawn_forms", []),
            "config": doc.get("config"),
        }
        if head is None:
            head, points = this, here
        elif this != head or here != points:
            what = "(mass, cτ) points" if here != points else "truth, config, flow or drawn forms"
            raise SystemExit(f"coverage_parts: {path}: other {what} than {paths[0]}")
        drawn.update(by_seed)
        rows += data["rows"]
    return rows, drawn, head or {}


def check_config(head: dict[str, Any], config: Path) -> None:
    """The outputs were run with ``config`` (their ``config``): else a one-line SystemExit."""
    if head.get("config") and Path(head["config"]).resolve() != Path(config).resolve():
        raise SystemExit(f"coverage_parts: the outputs were run with {head['config']}, not "
                         f"--config {config}")  # fmt: skip


def check_runs(workdir: Path, arm: str, seeds, own_flow: bool) -> None:
    """Each realisation's directory holds what the split reads (``yields.json``,
    ``pairs.parquet`` and, with ``own_flow``, ``flow/model.pt``): else a one-line SystemExit
    naming the first missing file."""
    need = ("yields.json", "pairs.parquet") + (("flow/model.pt",) if own_flow else ())
    for s in seeds:
        for f in need:
            if not (workdir / f"{arm}_seed{s}" / f).is_file():
                raise SystemExit(f"coverage_parts: {workdir / f'{arm}_seed{s}' / f}: missing "
                                 "(--workdir must be the coverage run's)")  # fmt: skip


def truth_config(base, drawn: dict[str, float]):
    """``base`` with the mock's rapidity width and p_T form of a ``full``-arm draw
    (``y_sigma``, ``pt_form``; what the γ* depend on, ``coverage.varied_config``): the
    realisation's truth; ``base`` itself for a ``stat`` realisation (nothing drawn)."""
    upd = {k: float(drawn[d]) for d, k in (("y_sigma", "rapidity_sigma"),
                                           ("pt_form", "pt_mt_power")) if d in drawn}  # fmt: skip
    return base.model_copy(update={"mock": base.mock.model_copy(update=upd)}) if upd else base


def truth_parts(g, fiducial, m: float, ctaus, geo, n: int, seed: int):
    """The truth's fiducial fraction f_t and 𝓔_in, 𝓔_out (the generator's γ* at mass m
    inside and outside F) per cτ."""
    from gammastar.mock.truth import GstarTruth, TruthSampler
    from gammastar.reach.acceptance import draw

    win = g.in_window(m, TruthSampler(g).half_width)
    ins = _inside(fiducial, m, win.qT, win.E)
    e_in, e_out = (
        draw(TruthSampler(GstarTruth(win.m[k], win.qT[k], win.E[k], win.pz[k],
                                     win.channel[k], g.n_pot)),
             m, n, geo, seed=seed + i).acceptance(ctaus)
        for i, k in enumerate((ins, ~ins))
    )  # fmt: skip
    return float(ins.mean()), e_in, e_out


def _mean_sem(x) -> tuple[float, float]:
    x = np.asarray(x, float)
    return float(x.mean()), (_sem(x) if x.size > 1 else float("nan"))


def summarise(per: list[dict], m: float, j: int, ct: float) -> dict[str, Any]:
    """Means (± their standard errors over the realisations) of one (mass, cτ)'s parts from
    the per-realisation records ``per``: each ratio is taken per realisation against its own
    truth, and the flow against the pairs as the ratio of the two means (a mean of per
    realisation flow/pairs would carry the pairs' noise into its bias)."""
    col = {k: np.array([r[k][j] if np.ndim(r[k]) else r[k] for r in per])
           for k in ("nsig", "acc", "f", "e_in_flow", "e_in_pairs", "e_out", "share_out")}  # fmt: skip
    pt: dict[str, Any] = {"mass": m, "ctau": float(ct), "n": len(per)}
    for name, x in (("nsig_ratio", col["nsig"]), ("yield_part", col["nsig"] / col["acc"]),
                    ("acceptance_part", col["acc"]), ("e_in_flow_ratio", col["e_in_flow"]),
                    ("e_out_model_ratio", col["e_out"])):  # fmt: skip
        pt[name], pt[f"{name}_sem"] = _mean_sem(x)
    pt["f_ratio"] = float(col["f"].mean())
    pt["share_outside"] = float(col["share_out"].mean())
    ok = np.isfinite(col["e_in_pairs"])  # a realisation without pairs in the window: skipped
    pt["e_in_pairs_ratio"], pt["e_in_pairs_ratio_sem"] = _mean_sem(col["e_in_pairs"][ok])
    pt["pairs_realisations"] = int(ok.sum())
    fl, pa = col["e_in_flow"][ok], col["e_in_pairs"][ok]
    pt["flow_over_pairs"] = float(fl.mean() / pa.mean())
    if fl.size > 1:  # the ratio of means' error, its numerator and denominator correlated
        c = np.cov(fl, pa) / fl.size
        rf, rp = fl.mean(), pa.mean()
        pt["flow_over_pairs_sem"] = float(pt["flow_over_pairs"] * math.sqrt(max(
            c[0, 0] / rf**2 + c[1, 1] / rp**2 - 2 * c[0, 1] / (rf * rp), 0.0)))  # fmt: skip
    else:
        pt["flow_over_pairs_sem"] = float("nan")
    pt["e_in_pairs_rel_err"] = float(np.nanmedian([r["e_in_pairs_err"][j] for r in per]))
    pt["pairs_per_realisation"] = float(np.mean([r["pairs"] for r in per]))
    return pt


def _fmt(pt, k, nd=3) -> str:
    v, e = pt[k], pt.get(f"{k}_sem", float("nan"))
    return f"{v:.{nd}f}" + ("" if not np.isfinite(e) else f" ± {e:.{nd}f}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--coverage", type=Path, nargs="+", required=True,
                    help="coverage.py's output JSON(s) (their rows pooled)")  # fmt: skip
    ap.add_argument("--workdir", type=Path, required=True, help="its run directories")
    ap.add_argument("--flow", type=Path, help="its fixed flow (not with --own-flow)")
    ap.add_argument(
        "--own-flow", action="store_true",
        help="each realisation's own flow (<workdir>/<arm>_seed<S>/flow), as coverage.py "
        "--own-flow trains it",
    )  # fmt: skip
    ap.add_argument("--arm", default="stat")
    ap.add_argument("--config", type=Path, default=REPO / "analysis" / "na60_like.yaml")
    ap.add_argument("--masses", type=float, nargs="+", default=[0.3, 0.6, 0.9])
    ap.add_argument("--window", type=float, default=0.03,
                    help="a realisation's own weighted pairs: ± GeV around the mass")  # fmt: skip
    ap.add_argument(
        "--model-y-sigma", type=float, default=None,
        help="what-if for the 𝓔_out column: the model outside F at this σ_y (f_F and the "
        "acceptance part keep the fit's)",
    )  # fmt: skip
    ap.add_argument(
        "--model-t-scale", type=float, default=1.0,
        help="what-if for the 𝓔_out column: each realisation's T times this",
    )  # fmt: skip
    coverage.add_truth_arguments(ap)
    args = ap.parse_args(argv)
    if (args.flow is None) == (not args.own_flow):
        ap.error("give --flow (one fixed flow) or --own-flow (each realisation's), not both")

    from gammastar import flow
    from gammastar.config import load_config
    from gammastar.corrections.pair_acceptance import FiducialRegion
    from gammastar.reach.acceptance import draw
    from gammastar.source.geometry import Geometry
    from gammastar.source.production import load_yields
    from gammastar.yields.extrapolation import Extrapolation

    t0 = time.perf_counter()
    rows, drawn, head = read_outputs(args.coverage, args.arm)
    here = {"truth_seed": args.seed, "truth_sources": args.truth_sources}
    if diff := [k for k in TRUTH_KEYS if head.get(k) != here[k]]:
        k = diff[0]
        raise SystemExit(f"coverage_parts: the outputs' {k} is {head.get(k)}, this run's "
                         f"{here[k]} (--seed, --truth-sources): another truth")  # fmt: skip
    check_config(head, args.config)
    if args.own_flow and not head.get("own_flow"):
        raise SystemExit("coverage_parts: --own-flow on outputs run without it (their "
                         "realisations have no flow of their own)")  # fmt: skip
    ratio = {(r["seed"], r["mass"], r["ctau"]): r["nsig_dd"] / r["nsig_truth"] for r in rows}
    ctaus = np.array(sorted({r["ctau"] for r in rows}))
    seeds = sorted({r["seed"] for r in rows})
    if missing := [m for m in args.masses if not any(k[1] == m for k in ratio)]:
        raise SystemExit(f"coverage_parts: the outputs have no rows at {missing} GeV")
    check_runs(args.workdir, args.arm, seeds, args.own_flow)
    base = load_config(args.config)
    geo = Geometry.from_config(base.detector)
    fixed = None if args.own_flow else flow.load(args.flow)
    truths: dict[tuple, Any] = {}  # per drawn (σ_y, p_T form): (f_t, 𝓔_in, 𝓔_out) per mass
    per: dict[float, list[dict]] = {m: [] for m in args.masses}
    n = args.samples

    def truth_key(s):  # the mock the realisation's γ* came from
        mock = truth_config(base, drawn.get(s, {})).mock
        return (float(mock.rapidity_sigma), float(mock.pt_mt_power))

    for s in sorted(seeds, key=lambda s: (truth_key(s), s)):  # one truth per drawn (σ_y, a)
        run = args.workdir / f"{args.arm}_seed{s}"
        ex = load_yields(run / "yields.json").extrapolation
        fid, extrap = FiducialRegion.from_dict(ex["fiducial"]), Extrapolation.from_dict(ex)
        model = flow.load(run / "flow") if args.own_flow else fixed
        pairs = read_pairs([run])
        d, key = drawn.get(s, {}), truth_key(s)
        if key not in truths:
            truths.clear()  # one truth at a time (memory)
            g = coverage.generator_gstar(truth_config(base, d), sources=args.truth_sources,
                                         seed=args.seed)  # fmt: skip
            truths[key] = {m: truth_parts(g, fid, m, ctaus, geo, n, args.seed + 20)
                           for m in args.masses}  # fmt: skip
            del g
        for m in args.masses:
            f_t, et_in, et_out = truths[key][m]
            et = f_t * et_in + (1 - f_t) * et_out
            # the own flow draws with the realisation's seed; one fixed flow with one seed
            fs = s if args.own_flow else args.seed
            e_flow = draw(flow_inside(model, fid, m, n, fs + 22), m, n, geo,
                          seed=fs + 23).acceptance(ctaus)  # fmt: skip
            e_pairs, e_err, n_pairs = pairs_inside(pairs, fid, m, args.window, geo, ctaus, s + 24)
            f = float(extrap.at(m)[0])
            outside = model_outside(extrap, fid, m, n, args.seed + 30 + s, args.model_y_sigma,
                                    args.model_t_scale)  # fmt: skip
            eo = draw(outside, m, n, geo, seed=args.seed + 25).acceptance(ctaus)
            acc = ((f * e_flow + (1 - f) * eo) / f) / (et / f_t)
            per[m].append({
                "seed": s, "y_sigma": d.get("y_sigma"), "pt_form": d.get("pt_form"),
                "nsig": [ratio[(s, m, float(c))] for c in ctaus], "acc": acc, "f": f / f_t,
                "e_in_flow": e_flow / et_in, "e_in_pairs": e_pairs / et_in,
                "e_in_pairs_err": e_err / e_pairs, "pairs": n_pairs, "e_out": eo / et_out,
                "share_out": (1 - f_t) * et_out / et,
            })  # fmt: skip
    out: dict[str, Any] = {"benchmark": "coverage_parts",
                           "coverage": [str(c) for c in args.coverage], "arm": args.arm,
                           "own_flow": args.own_flow, "realisations": len(seeds),
                           "window": args.window, "model_y_sigma": args.model_y_sigma,
                           "model_t_scale": args.model_t_scale, "points": [],
                           "by_y_sigma": [], "by_pt_form": []}  # fmt: skip
    print(
        "| m (GeV) | cτ (m) | N_dd/N_t | yield part | acceptance part | f_dd/f_t | 𝓔_in flow/t "
        "| 𝓔_in pairs/t | 𝓔_in flow/pairs | 𝓔_out model/t | share of 𝓔_t outside F |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for m in args.masses:
        per[m].sort(key=lambda r: r["seed"])
        for j, ct in enumerate(ctaus):
            pt = summarise(per[m], m, j, ct)
            out["points"].append(pt)
            print(f"| {m:.2f} | {ct:g} | {_fmt(pt, 'nsig_ratio')} | {_fmt(pt, 'yield_part')} | "
                  f"{_fmt(pt, 'acceptance_part')} | {pt['f_ratio']:.3f} | "
                  f"{_fmt(pt, 'e_in_flow_ratio')} | {_fmt(pt, 'e_in_pairs_ratio')} | "
                  f"{_fmt(pt, 'flow_over_pairs')} | {_fmt(pt, 'e_out_model_ratio')} | "
                  f"{pt['share_outside']:.2f} |", flush=True)  # fmt: skip
    drawn_keys = {
        "y_sigma": "σ_y (the mock's rapidity width; the analysis keeps its stated one)",
        "pt_form": "p_T form (the mock mesons' m_T power a; the analysis fits its own)",
    }
    for key, what in drawn_keys.items():
        vals = sorted({r[key] for r in per[args.masses[0]] if r.get(key) is not None})
        if not vals:
            continue
        print(f"\nBy the drawn {what}:")
        print(f"| m (GeV) | cτ (m) | {key} | n | N_dd/N_t | acceptance part | yield part | "
              "f_dd/f_t | 𝓔_in flow/t | 𝓔_in pairs/t | 𝓔_out model/t |")  # fmt: skip
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        for m in args.masses:
            for j, ct in enumerate(ctaus):
                for v in vals:
                    sub = [r for r in per[m] if r.get(key) == v]
                    pt = {**summarise(sub, m, j, ct), key: v}
                    out[f"by_{key}"].append(pt)
                    print(f"| {m:.2f} | {ct:g} | {v:.3f} | {pt['n']} | {_fmt(pt, 'nsig_ratio')} "
                          f"| {_fmt(pt, 'acceptance_part')} | {_fmt(pt, 'yield_part')} | "
                          f"{pt['f_ratio']:.3f} | {_fmt(pt, 'e_in_flow_ratio')} | "
                          f"{_fmt(pt, 'e_in_pairs_ratio')} | {_fmt(pt, 'e_out_model_ratio')} |")  # fmt: skip
    out["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
