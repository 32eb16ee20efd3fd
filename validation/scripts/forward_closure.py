"""Forward closure at every shipped facility: the data-driven 𝓔(m, cτ) and N_sig per POT per
ε² of each analysis/facilities/ config, as it ships, against the mock generator's
full-phase-space γ* carried through the same geometry.

Claim (the targets; the measured counts: docs/validation/closure.md), on the contour, every
facility × mass × edge point scored (one the truth or the data-driven side does not resolve, or
whose extrapolation size is the reach's fallback for an unresolved edge, fails): the truth's ε
where N_truth(ε) = s_up lies inside the data-driven band from N_dd e^{+w₊} = s_up to
N_dd e^{−w₋} = s_up at ≥ 68% of the points and at 2w± at ≥ 95% (w± the likelihood's two sides at
the edge, with the closure's own sampling errors; both sides' draws tilted and weighted); |ln(ε_dd/ε_truth)| ≤ ln 1.3 at ≥ 90% of the ε_high points; the excluded mass
range within one mass point of the truth's; the band's median factor e^w at ε_high ≤ ×3.
Also printed, at N_sig's level (resolved points only): N_sig within its quoted 1σ at ≥ 68%
and 2σ at ≥ 95%; at the ε_low points of the μμ masses (0.25–1.0 GeV) within ±20%; the
full-phase-space yield within ±5%.

Per facility (its volume, plane, daughters' requirement and energy threshold, efficiency and
``reach.flow`` as configured; ``reach.yields`` the run's), per mass and at two cτ:

* the cτ of the facility's ε_low regime and of its ε_high edge, where its own data-driven N(ε)
  (its N_POT, the yield carried to its target, its channels) crosses the zero-background
  90% CL limit (N_max/10 where the facility excludes nothing at that mass:
  :func:`gammastar_validation.forward.facility_ctaus`);
* data-driven: the yield and the A′ kinematics as ``gammastar reach`` takes them
  (``Source.from_config``), 𝓔 over ``--samples`` draws; truth: the generator's γ* of the
  mass window (``--truth-sources`` per mass, 4× below the π⁰ mass: ``forward.LIGHT_SOURCES``;
  only the cocktail channels that reach the window: importance sampling by channel), each
  once, and its A′ yield at the data's resolution;
* 𝓔 and N ratios data-driven / truth with their 1σ (the data-driven 𝓔's and the truth's own
  are errors of the mean of exact per-sample decay probabilities, which resolves the tiny
  𝓔 at the ε_high edges), the pull of N against the reach's own quoted 1σ (the named
  nuisances, the extrapolation at N_sig's level: :func:`gammastar_validation.forward.quoted_errors`)
  and the truth's error, the share of N_dd from outside the data's fiducial region
  (``out_F``), and the N_sig-level coverage counts;
* on the contour (:func:`gammastar_validation.forward.contour_counts`): per point the truth's
  and the data-driven ε, the 1σ band and its factor, then per facility the counts with the
  widths before an unresolved edge took the reach's fallback and after. The last line is one
  JSON object (``contour``, ``contour_per_facility``, ``contour_before``, ``coverage``).

Crosswise generator templates: ``--template FILE`` (``generator_template.py`` of the other
mock) adds the ``generator_template`` form to a fresh run's model (with ``--run``, name it in
the run's config and rerun ``gammastar yields``).

Usage: python validation/scripts/forward_closure.py [--run DIR | --events N] [--energy 400|70]
[--backend parametric|pythia] [--pythia-collisions N] [--facilities ...] [--masses ...]
[--samples 200000] [--truth-sources 6000000] [--yield-sources 4000000] [--seed S]
[--workdir DIR] [--out rows.json]
``--run``: a finished run of the data config (analysis/na60_like_both.yaml at 400 GeV,
analysis/na60_like_70gev.yaml at 70 GeV; with ``--backend pythia`` analysis/na60_like_pythia.yaml,
at 70 GeV the 70 GeV config with its mock's mesons from that PYTHIA section); without it
``--events`` sources are generated, selected and their yields computed into ``--workdir``
(the flow is trained only where a facility's ``reach.flow`` names one). The facilities are
those whose beam energy is ``--energy`` (400 GeV: all but NuCal; 70 GeV: NuCal). Demo-sized
data: ``--events 2500000``; 40× (the method's bias alone): ``--events 100000000``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]

from gammastar.config import load_config
from gammastar_validation.closure import make_run
from gammastar_validation.forward import (
    FACILITIES,
    MASSES,
    contour_counts,
    contour_resolved,
    coverage_counts,
    facility_config,
    forward_closure,
    resolved,
    truth_samplers,
    truth_yield,
)

DATA_CONFIGS = {400.0: "na60_like_both.yaml", 70.0: "na60_like_70gev.yaml"}


def data_config(energy: float, backend: str, collisions: int | None):
    """The data config at ``energy`` (GeV), its mock's mesons bounded by the beam energy
    (``mock.kinematic_limit``: the reach's model stops there, as energy conservation does, and
    an unbounded mock's 10⁻³ of mesons above it would decide the truth's ε_high edges); with
    ``backend`` ``pythia`` the 400 GeV one is analysis/na60_like_pythia.yaml, another energy's
    takes that file's ``mock.pythia``."""
    cfg = _bounded(load_config(REPO / "analysis" / DATA_CONFIGS[energy]))
    if backend != "pythia":
        return cfg
    py_cfg = _bounded(load_config(REPO / "analysis" / "na60_like_pythia.yaml"))
    if energy == 400.0:
        cfg = py_cfg
    py = py_cfg.mock.pythia
    if collisions:
        py = py.model_copy(update={"collisions": collisions})
    return cfg.model_copy(update={"mock": cfg.mock.model_copy(update={"backend": "pythia", "pythia": py})})


def with_template(cfg, path: Path):
    """``cfg`` with ``yields.extrapolation_template`` the γ* file ``path`` of
    ``generator_template.py`` (tree ``gstar``: ``m``, ``y``, ``w``)."""
    from gammastar.config.yields import GeneratorTemplate

    tc = GeneratorTemplate(files=[str(path.resolve())], tree="gstar", mass="m", rapidity="y",
                           weight="w", label=f"generator template {path.name}")  # fmt: skip
    return cfg.model_copy(update={"yields": cfg.yields.model_copy(update={"extrapolation_template": tc})})


def _bounded(cfg):
    """``cfg`` with ``mock.kinematic_limit`` on."""
    return cfg.model_copy(update={"mock": cfg.mock.model_copy(update={"kinematic_limit": True})})


def print_table(rows) -> None:
    print(f"{'facility':19s} {'m':>5s} {'regime':8s} {'ctau':>9s} {'acc_truth':>9s} "
          f"{'acc dd/tr':>15s} {'N dd/tr':>15s} {'Y dd/tr':>7s} {'Y pull':>6s} {'q_rel':>6s} "
          f"{'pull':>6s} "
          f"{'out_F':>5s} {'n_tr':>7s} {'neff_tr':>7s} {'neff_dd':>7s}")  # fmt: skip
    for r in rows:
        at, a = r["acc_truth"], r["acc_dd"]
        ra = a / at if at > 0 else float("nan")
        era = ra * np.hypot(r["acc_dd_err"] / a if a > 0 else 0, r["acc_err"] / at if at > 0 else 0)
        nt, nd = r["nsig_truth"], r["nsig_dd"]
        rn = nd / nt if nt > 0 else float("nan")
        ern = rn * np.hypot(r["quoted_width"], r["nsig_truth_err"] / nt if nt > 0 else 0)
        ry = r["y_dd"] / r["y_truth"] if r["y_truth"] > 0 else float("nan")
        yp = r.get("y_pull", float("nan"))
        out = "  n/a" if r["outside_share"] is None else f"{r['outside_share']:5.2f}"
        print(f"{r['facility']:19s} {r['mass']:5.2f} {r['regime']:8s} {r['ctau']:9.3g} {at:9.2e} "
              f"{ra:7.3f} ± {era:5.3f} {rn:7.3f} ± {ern:5.3f} {ry:7.3f} {yp:6.2f} {r['quoted_rel']:6.3f} "
              f"{r['pull']:6.2f} {out} {r['n_truth']:7d} {r['n_eff_truth']:7.0f} {r['n_eff_dd']:7.0f}"
              + ("" if resolved(r) else "  unresolved"))  # fmt: skip


def print_contour_table(rows) -> None:
    """Per point the contour's ε: the truth's, the data-driven one, their ratio, the 1σ band
    and the band's factor e^w in N_sig (after the reach's fallback at an unresolved edge)."""
    print(f"{'facility':19s} {'m':>5s} {'regime':8s} {'s_up':>6s} {'eps_truth':>9s} {'eps_dd':>9s} "
          f"{'dd/tr':>6s} {'band 1 sigma':>19s} {'e^w':>8s} {'before':>8s} {'in1':>3s} {'in2':>3s}")  # fmt: skip
    for r in rows:
        c, b = r["contour"], r["contour_before"]
        lo, hi = c["band_1"]
        flag = "" if contour_resolved(c) else ("  fallback" if c["fallback"] else "  unresolved")
        print(f"{r['facility']:19s} {r['mass']:5.2f} {r['regime']:8s} {c['level']:6.3g} "
              f"{c['eps_truth']:9.3e} {c['eps_dd']:9.3e} {np.exp(c['log_ratio']):6.3f} "
              f"{lo:9.3e}-{hi:9.3e} {c['factor']:8.3g} {b['factor']:8.3g} "
              f"{int(c['within_1']):3d} {int(c['within_2']):3d}" + flag)  # fmt: skip


def print_contour_counts(counts) -> None:
    """One line per facility (and all): resolved of all points, the targets' counts, the ε
    ratios ε_dd/ε_truth (median, min–max) and the band's median factor at ε_high."""

    def ratio(v):
        return "n/a" if v[0] is None else f"{v[0]:.3f} ({v[1]:.3f}-{v[2]:.3f})"

    for name, c in counts.items():
        band = c["band_factor_eps_high_median"]
        print(f"  {name:12s} resolved {c['resolved']}/{c['points']}  "
              + "  ".join(f"{k} {p}/{n}" for k, (p, n) in ((k, c[k]) for k in c["targets"]))
              + f"  eps_high dd/tr {ratio(c['eps_ratio_eps_high'])}"
              + f"  eps_low dd/tr {ratio(c['eps_ratio_eps_low'])}"
              + f"  band median x{'n/a' if band is None else f'{band:.3g}'} at eps_high"
              + f"  fallback edges {c['fallback_edges']}")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, help="a finished run of the data config")
    ap.add_argument("--events", type=int, default=2_500_000)
    ap.add_argument("--energy", type=float, choices=sorted(DATA_CONFIGS), default=400.0)
    ap.add_argument("--backend", choices=["parametric", "pythia"], default="parametric")
    ap.add_argument("--pythia-collisions", type=int, default=None)
    ap.add_argument("--facilities", nargs="+", choices=FACILITIES, default=list(FACILITIES))
    ap.add_argument("--masses", type=float, nargs="+", default=list(MASSES))
    ap.add_argument("--samples", type=int, default=200_000, help="data-driven A′ draws per point")
    ap.add_argument("--truth-sources", type=int, default=6_000_000,
                    help="truth sources per mass (of the channels reaching its window; "
                    "LIGHT_SOURCES times as many below the π⁰ mass)")  # fmt: skip
    ap.add_argument("--yield-sources", type=int, default=4_000_000,
                    help="truth sources per flavour for the full-phase-space yield")  # fmt: skip
    ap.add_argument("--seed", type=int, default=None, help="mock seed (default: the config's)")
    ap.add_argument("--workdir", type=Path, help="without --run: the new run's directory")
    ap.add_argument("--out", type=Path, help="write the rows and counts as JSON here")
    ap.add_argument("--template", type=Path,
                    help="without --run: the other mock's γ* (generator_template.py) as the "
                    "new run's yields.extrapolation_template")  # fmt: skip
    args = ap.parse_args()
    t0 = time.perf_counter()
    base = data_config(args.energy, args.backend, args.pythia_collisions)
    if args.template is not None:
        if args.run is not None:
            ap.error("--template makes a fresh run: with --run, name it in the run's config "
                     "(yields.extrapolation_template) and rerun gammastar yields")  # fmt: skip
        base = with_template(base, args.template)
    cfgs = {}
    for name in args.facilities:
        path = REPO / "analysis" / "facilities" / f"{name}.yaml"
        if load_config(path).beam.energy == args.energy:
            cfgs[name] = path
    if not cfgs:
        ap.error(f"no facility of {args.facilities} has a {args.energy:g} GeV beam")
    mesons = None
    if args.backend == "pythia":  # one PYTHIA pool for the data and the truth
        from gammastar.mock.pythia import PythiaMesons

        mesons = PythiaMesons(base, base.seed if args.seed is None else args.seed)
    train = any(load_config(p).reach.flow is not None for p in cfgs.values())
    run = args.run or make_run(args.events, args.seed, args.workdir, base=base, mesons=mesons,
                               train=train)  # fmt: skip
    run = run.resolve()
    data = base.model_copy(update={"output": str(run)})
    seed = data.seed if args.seed is None else args.seed
    doc = json.loads((run / "yields.json").read_text())
    ty = truth_yield(data, run, doc, args.yield_sources, seed=seed + 1, mesons=mesons)
    truth = truth_samplers(data, args.masses, args.truth_sources, seed=seed + 2, mesons=mesons)
    rows = []
    for path in cfgs.values():
        rows += forward_closure(facility_config(path, run / "yields.json"), truth, ty,
                                args.masses, samples=args.samples, seed=seed + 3)  # fmt: skip
    print_table(rows)
    per = {name: coverage_counts([r for r in rows if r["facility"] == f"facility_{name}"])
           for name in cfgs}  # fmt: skip
    total = coverage_counts(rows)
    for name, c in {**per, "all": total}.items():
        print(f"{name:12s} " + "  ".join(f"{k} {p}/{n}" for k, (p, n) in
                                          ((k, c[k]) for k in c["targets"])))  # fmt: skip
    print("by the quoted error: " + "  ".join(f"{k} {p}/{n}" for k, (p, n) in
                                              total["within_quoted"].items()))  # fmt: skip
    print_contour_table(rows)
    groups = {n: [r for r in rows if r["facility"] == f"facility_{n}"] for n in cfgs}
    groups["all"] = rows
    contour = {key: {n: contour_counts(g, key) for n, g in groups.items()}
               for key in ("contour", "contour_before")}  # fmt: skip
    for key, label in (("contour_before", "today's widths (an unresolved edge: the other edge's)"),
                       ("contour", "the reach's fallback at an unresolved edge, which fails")):  # fmt: skip
        print(f"contour coverage, {label}:")
        print_contour_counts(contour[key])
    out = {"benchmark": "forward_closure", "run": str(run), "backend": args.backend,
           "energy": args.energy, "seconds": time.perf_counter() - t0, "coverage": total,
           "coverage_per_facility": per, "points": len(rows),
           "contour": contour["contour"]["all"],
           "contour_per_facility": {n: c for n, c in contour["contour"].items() if n != "all"},
           "contour_before": contour["contour_before"]["all"]}  # fmt: skip
    if mesons is not None:
        out["pythia"] = {k: mesons.meta()[k] for k in ("mode", "collisions")}
    if args.out:
        from gammastar.core.artifacts import write_json

        write_json(args.out, {"rows": rows, **out}, force=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
