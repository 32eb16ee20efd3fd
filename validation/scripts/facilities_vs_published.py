"""Facility reaches beside the published bounds they should reproduce: CHARM, NA62 (e+e-), NuCal.

Claim: the facility configs of analysis/facilities/, on the demo-like NA60-like mock runs,
reproduce the published dark-photon contours of the same experiments in ε_low and ε_high within
a factor 2 (ratio ours / published in 0.5–2) at every mass both exclude; where a ratio leaves
that range, the decomposition names the factor that drives it.

Inputs:

* the facility reaches: ``runs/facility_<name>/reach.json``, written by
  ``gammastar reach analysis/facilities/<name>.yaml`` (docs/howto/facilities.md) after the data
  run each config's ``reach.yields`` points to (CHARM, NA62: ``analysis/na60_like_both.yaml``;
  NuCal: ``analysis/na60_like_70gev.yaml``, the same analysis at 70 GeV); the observed limit
  where the config gives observed counts, else the median expected one;
* the published contours as their publishers ship them (``--bounds``, default
  ``../shared/data/bounds`` beside the repository; its README.md gives each file's source):
  CHARM: DarkCast ``CHARM_Tsai2019mtm.lmt`` (arXiv:1908.07525); NA62: FORESEE's
  ``bounds_NA62ee.txt`` (arXiv:2312.12055, e+e-); NuCal: DarkCast ``NuCAL_Tsai2019mtm.lmt``
  (arXiv:1908.07525) and, for the decomposition, the π0-only (``NuCAL_Blumlein1990ay``) and
  bremsstrahlung-only (``NuCAL_Blumlein1991xh``) recasts.

Per facility it prints, and writes (``--out``: ``facilities_vs_published.csv`` with one row per
mass and bound, ``facilities_vs_published.json`` with the ratio ranges), the ratios
ours / published of ε_low and ε_high at every mass of the reach that both exclude
(:func:`gammastar.formats.bounds.compare.compare_reach`), and draws the contours and the ratios
(``--figure``; the standard recipe's reach beside when it is there). Where a ratio leaves
0.5–2 it decomposes: the scaling (ε_low⁴ ∝ 1 / (N_POT × yield × acceptance × L/γcτ) in the
long-lifetime limit, so ratio_low⁴ is the factor of that product the published curve has over
ours) and the median expected ε range rescanned at a few
of those masses with one ingredient changed per row (``gammastar.reach.scan.scan``; the
config's statistics, the target's A-dependence as the only named nuisance):

* ``reach.json``: the reach as run (the config's named nuisances; observed where given);
* ``baseline``: the config's geometry, yield and statistics, median expected, the data's
  named nuisances off (the target's A-dependence the only one);
* ``+ proton bremsstrahlung``: the yields' FWW bremsstrahlung A′ yield (``yields.json``
  ``theory.brems_aprime``) added: production the published recasts include and the data do not;
* ``yield x 10``: the yield per POT ten times larger (what the scaling predicts: ε_low / 10^¼);
* ``target alpha = 1``: the A-dependence exponent at its upper edge;
* ``daughters: no energy threshold``: the acceptance without the daughters' energy cut;
* ``recipe kinematics (data yield)``: the A′ (q_T, E) of the standard recipe at the same
  yield (``gammastar.source.recipe``: meson decays, mixing, bremsstrahlung with the mock's
  meson spectra): the acceptance of the recipe's momentum spectrum alone;
* ``recipe yield (data kinematics)``: the recipe's yield per POT with the data's kinematics.

Usage (after the runs above; CPU: a few minutes):
    python validation/scripts/facilities_vs_published.py [--runs runs] [--bounds DIR]
        [--out runs/facilities_vs_published] [--figure docs/images/facilities-vs-published.png]
        [--decomp-masses 5] [--eps-points 40] [--production standard_recipe]
``--production standard_recipe`` compares the standard recipe's reaches instead
(``runs/facility_<name>/standard_recipe/``, ``gammastar reach --production standard_recipe``),
without the decomposition.
The last line printed is one JSON object with the ratio ranges and the decomposition.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]

from gammastar.config import load_config
from gammastar.formats.bounds import read_bound
from gammastar.formats.bounds.compare import compare_reach, ratio_ranges
from gammastar.reach.scan import scan
from gammastar.reach.scan.settings import ScanSettings
from gammastar.source.geometry import Geometry
from gammastar.source.modes import PRODUCTIONS
from gammastar.source.production import (
    Yields,
    load_yields,
    resolve_yield_scale,
    with_target_nuisance,
)
from gammastar.source.recipe import recipe_source
from gammastar.source.source import Source

# facility: (config, [(published file, format, units, legend label, compared in the table)])
FACILITIES = {
    "charm": ("charm.yaml", [
        ("darkcast_CHARM_Tsai2019mtm.lmt", "lmt", "eps", "CHARM (Tsai et al. 2019, DarkCast)", True),
    ]),
    "na62_dump": ("na62_dump.yaml", [
        ("foresee_bounds_NA62ee.txt", "polygon", "eps", "NA62 e+e- (2023, FORESEE)", True),
    ]),
    "nucal": ("nucal.yaml", [
        ("darkcast_NuCAL_Tsai2019mtm.lmt", "lmt", "eps", "NuCal (Tsai et al. 2019, DarkCast)", True),
        ("darkcast_NuCAL_Blumlein1990ay.lmt", "lmt", "eps", "NuCal π0 only (Blümlein et al.)", True),
        ("darkcast_NuCAL_Blumlein1991xh.lmt", "lmt", "eps", "NuCal p-brems only (Blümlein, Brunner)", True),
    ]),
}  # fmt: skip
LOW, HIGH = 0.5, 2.0


def _reach(run: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """The reach's (mass, ε_low, ε_high) and which limit: observed where given, else expected."""
    doc = json.loads((run / "reach.json").read_text())
    which = "observed" if isinstance(doc.get("observed"), dict) else "expected"
    band = doc[which]

    def arr(key: str) -> np.ndarray:
        return np.array([np.nan if v is None else v for v in band[key]], dtype=float)

    return np.asarray(band["mass"], dtype=float), arr("eps_low"), arr("eps_high"), which


def _variants(cfg, masses: np.ndarray, eps_points: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The median expected (ε_low, ε_high) at ``masses`` with one ingredient changed per row."""
    rc = cfg.reach
    y = load_yields(cfg.resolve(rc.yields))
    sampler = Source.from_config(cfg, y)
    y = sampler.yields if sampler.yields is not None else y  # the reach's (the arm's above the seam)
    doc = json.loads(Path(cfg.resolve(rc.yields)).read_text())
    br = doc.get("theory", {}).get("brems_aprime")
    geo = Geometry.from_config(cfg.detector)
    rows: dict[str, tuple] = {"baseline": (y, geo, cfg)}
    rec = recipe_source(cfg, y, Path(cfg.resolve(rc.yields)))
    samplers = {"recipe kinematics (data yield)": rec.kinematics}
    if br is not None:
        bm = np.asarray(br["mass"], float)
        bv = np.asarray([np.nan if v is None else v for v in br["per_pot_per_eps2"]], float)
        ok = np.isfinite(bv)
        yb = y._y + np.interp(y._m, bm[ok], bv[ok], left=0.0, right=0.0)
        rows["+ proton bremsstrahlung"] = (Yields(y._m, yb, y._rel * yb, y.meta), geo, cfg)
    rows["yield x 10"] = (Yields(y._m, 10 * y._y, 10 * y._y * y._rel, y.meta), geo, cfg)
    if rc.target is not None:
        tgt = rc.target.model_copy(update={"a_exponent": 1.0})
        rows["target alpha = 1"] = (
            y,
            geo,
            cfg.model_copy(update={"reach": rc.model_copy(update={"target": tgt})}),
        )
    rows["recipe kinematics (data yield)"] = (y, geo, cfg)
    rows["recipe yield (data kinematics)"] = (rec.yields, geo, cfg)
    if cfg.detector.daughters is not None:
        d = dict(cfg.detector.daughters)
        d["min_energy"] = 0.0
        det = cfg.detector.model_copy(update={"daughters": d, "min_daughter_energy": 0.0})
        rows["daughters: no energy threshold"] = (y, Geometry.from_config(det), cfg)
    eps = np.geomspace(rc.eps_min, rc.eps_max, eps_points)
    out = {}
    for name, (yy, gg, cc) in rows.items():
        sc, info = resolve_yield_scale(cc, y)
        nuis = with_target_nuisance(None, None, info, masses)[0]
        settings = ScanSettings(
            geometry=gg, yields=yy, n_pot=rc.n_pot * sc, signal_nuisances=nuis,
            channels=tuple(rc.channels), background=rc.background,
            background_kappa=rc.background_kappa, observed=None,
            n_pot_unc=rc.n_pot_rel_uncertainty, efficiency_uncertainty=rc.efficiency_uncertainty,
            cl=rc.cl, method=rc.method, samples=rc.samples, seed=cfg.seed,
        )  # fmt: skip
        res = scan(masses, eps, sampler=samplers.get(name, sampler), settings=settings)
        out[name] = res.boundaries["0"]
    return out


def _figure(path: Path, panels: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    from gammastar.core.artifacts import atomic_path
    from gammastar.formats.bounds.draw import draw_bounds

    fig, axes = plt.subplots(2, len(panels), figsize=(4.6 * len(panels), 7.2),
                             gridspec_kw={"height_ratios": [2.2, 1]}, squeeze=False)  # fmt: skip
    for k, p in enumerate(panels):
        ax, rax = axes[0, k], axes[1, k]
        handles = draw_bounds(ax, [(b, "line") for b in p["bounds"]])
        m, lo, hi = p["mass"], p["eps_low"], p["eps_high"]
        # NaN where nothing is excluded: the lines break there
        (ours,) = ax.plot(m, lo, "C0-", lw=1.8, label=f"ours ({p['which']})")
        ax.plot(m, hi, "C0-", lw=1.8)
        if p.get("recipe") is not None:  # the standard recipe's reach at the same facility
            rm, rlo, rhi, rwhich = p["recipe"]
            (rec,) = ax.plot(rm, rlo, "C4--", lw=1.4, label=f"standard recipe ({rwhich})")
            ax.plot(rm, rhi, "C4--", lw=1.4)
            handles = [rec, *handles]
        ax.set(xscale="log", yscale="log", title=p["title"], ylabel="ε")
        ax.legend(handles=[ours, *handles], fontsize=6, loc="lower left")
        for j, t in enumerate(p["tables"]):
            both = t["both"]
            rax.plot(t["mass"][both], t["ratio_low"][both], f"C{j + 1}o-", ms=3,
                     label=f"ε_low / {p['bounds'][j].label.split(' (')[0]}")  # fmt: skip
            rax.plot(t["mass"][both], t["ratio_high"][both], f"C{j + 1}s--", ms=3)
        rax.axhspan(LOW, HIGH, color="0.9", zorder=0)
        rax.set(xscale="log", yscale="log", xlabel="m_A′ (GeV)", xlim=ax.get_xlim(),
                ylabel="ours / published (o ε_low, □ ε_high)")  # fmt: skip
        rax.yaxis.set_major_formatter(ScalarFormatter())
        rax.yaxis.set_minor_formatter(NullFormatter())
        rax.set_yticks([0.25, 0.5, 1, 2, 4])
        rax.set_ylim(0.2, 6)
        rax.legend(fontsize=6)
    fig.tight_layout()
    with atomic_path(path, force=True) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, default=REPO / "runs")
    ap.add_argument("--bounds", type=Path, default=REPO.parent / "shared" / "data" / "bounds")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "facilities_vs_published")
    ap.add_argument("--figure", type=Path, default=None,
                    help="the figure (default: OUT/facilities-vs-published.png)")  # fmt: skip
    ap.add_argument("--facilities", nargs="+", default=list(FACILITIES))
    ap.add_argument("--decomp-masses", type=int, default=5)
    ap.add_argument("--eps-points", type=int, default=40)
    ap.add_argument("--production", choices=list(PRODUCTIONS), default="data_driven")
    args = ap.parse_args()
    sub = PRODUCTIONS[args.production].subdir
    if sub is not None:
        args.decomp_masses = 0  # the decomposition rescans the data-driven ingredients
    if not args.bounds.is_dir():
        raise SystemExit(f"{args.bounds}: the published bound files are not there (--bounds)")
    args.out.mkdir(parents=True, exist_ok=True)
    summary: dict = {"study": "facilities_vs_published", "production": args.production,
                     "facilities": {}}  # fmt: skip
    panels, csv_rows = [], []
    for name in args.facilities:
        cfg_file, published = FACILITIES[name]
        cfg = load_config(REPO / "analysis" / "facilities" / cfg_file)
        run = args.runs / f"facility_{name}" / (sub or "")
        m, lo, hi, which = _reach(run)
        bounds, tables, entry = [], [], {"limit": which, "compared": {}}
        for file, fmt, units, label, _ in published:
            b = read_bound(args.bounds / file, format=fmt, units=units, label=label)
            t = compare_reach(m, lo, hi, b)
            bounds.append(b)
            tables.append(t)
            r = ratio_ranges(t)
            entry["compared"][file] = r
            for i in np.flatnonzero(t["both"] | t["ours_only"] | t["theirs_only"]):
                csv_rows.append([name, file, f"{m[i]:.5g}"] + [
                    f"{t[k][i]:.4g}" for k in ("ours_low", "ours_high", "theirs_low",
                                               "theirs_high", "ratio_low", "ratio_high")
                ] + ["both" if t["both"][i] else ("ours only" if t["ours_only"][i] else
                                                  "published only")])  # fmt: skip
            print(f"{name:10s} vs {file:36s} masses both exclude: {r['n']:3d} "
                  f"({_span(r['mass'], '.3f')} GeV); ε_low ratio {_span(r['low'])}, ε_high ratio {_span(r['high'])}; "
                  f"only ours {r['ours_only']}, only published {r['theirs_only']}")  # fmt: skip
        recipe_run = args.runs / f"facility_{name}" / str(PRODUCTIONS["standard_recipe"].subdir)
        recipe = _reach(recipe_run) if sub is None and (recipe_run / "reach.json").exists() else None
        panels.append({"title": f"{name} ({cfg.reach.n_pot:.3g} POT)", "bounds": bounds,
                       "tables": tables, "mass": m, "eps_low": lo, "eps_high": hi,
                       "which": which, "recipe": recipe})  # fmt: skip
        t0 = tables[0]  # the main published curve decides whether to decompose
        out = t0["both"] & (
            (t0["ratio_low"] < LOW) | (t0["ratio_low"] > HIGH)
            | (t0["ratio_high"] < LOW) | (t0["ratio_high"] > HIGH)
        )  # fmt: skip
        if out.any() and args.decomp_masses > 0:
            idx = np.flatnonzero(out)
            pick = idx[
                np.unique(np.linspace(0, idx.size - 1, args.decomp_masses).round().astype(int))
            ]
            dm = m[pick]
            var = _variants(cfg, dm, args.eps_points)
            theirs_lo, theirs_hi = t0["theirs_low"][pick], t0["theirs_high"][pick]
            dec = {"masses": dm.tolist(),
                   "scaling_factor_low": (t0["ratio_low"][pick] ** 4).tolist(),
                   "variants": {}}  # fmt: skip
            print(f"  decomposition at m = {', '.join(f'{x:.3f}' for x in dm)} GeV "
                  f"(ratio_low^4, the yield x acceptance factor the published curve has over "
                  f"ours: {', '.join(f'{x:.3g}' for x in dec['scaling_factor_low'])})")  # fmt: skip
            shipped = {"reach.json (as run)": (
                t0["ours_low"][pick], t0["ours_high"][pick])}  # fmt: skip
            for vname, (vl, vh) in {**shipped, **var}.items():
                rl, rh = vl / theirs_lo, vh / theirs_hi
                dec["variants"][vname] = {"ratio_low": _list(rl), "ratio_high": _list(rh)}
                print(f"    {vname:34s} ε_low/pub " + " ".join(f"{x:7.3g}" for x in rl)
                      + " | ε_high/pub " + " ".join(f"{x:7.3g}" for x in rh))  # fmt: skip
            entry["decomposition"] = dec
        summary["facilities"][name] = entry
    header = ["facility", "published", "mass_GeV", "ours_eps_low", "ours_eps_high",
              "published_eps_low", "published_eps_high", "ratio_low", "ratio_high", "excluded_by"]  # fmt: skip
    from gammastar.core.artifacts import atomic_path, write_json

    out_csv = args.out / "facilities_vs_published.csv"
    with atomic_path(out_csv, force=True) as tmp, open(tmp, "w", newline="") as f:
        csv.writer(f).writerows([header, *csv_rows])
    write_json(args.out / "facilities_vs_published.json", summary, force=True)
    _figure(args.figure or args.out / "facilities-vs-published.png", panels)
    print(json.dumps(summary))


def _span(r: list[float] | None, fmt: str = ".2f") -> str:
    return "-" if r is None else f"{r[0]:{fmt}}-{r[1]:{fmt}}"


def _list(a: np.ndarray) -> list[float | None]:
    return [None if not np.isfinite(x) else float(x) for x in a]


if __name__ == "__main__":
    main()
