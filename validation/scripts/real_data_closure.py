"""Real-data forward closure: the extrapolation model fitted to measured meson spectra where the
NA60-like arm looks, its prediction where each shipped facility looks, against the measurement
there; and the measured fall-off towards x_F → 1.

Claim (a measurement; the numbers: docs/validation/real-data-closure.md): per measured
spectrum (validation/data: NA49 p + p → π+ X at 158 GeV/c; the BMPT parametrisation of
p + Be → π±, K± inside its fitted range) and per facility (analysis/facilities/, its beam
energy), the measured share of the facility's region per unit of the arm's lies within the
model's quoted band (the fit's error and the forms' shifts in quadrature, each counted as
1σ, as the reach takes them) of the predicted share, or the page names the miss and its
size; and n of a (1 − x_F)^n fall-off fitted to each measured spectrum, with its error and
range.

How: each spectrum is carried to the facility's beam energy by Feynman scaling (the same x_F
or x_R, and p_T), on a (p_T, y_lab) grid with the meson's own mass as the proxy mass. The arm:
the meson's direction in the spectrometer's polar window and its energy above both leptons'
threshold (analysis/na60_like_both.yaml, at 70 GeV analysis/na60_like_70gev.yaml). Every form
the yields' fit uses (``FORMS``: the nominal and its variations, but the Boltzmann form, which
the fitted m_T power holds, and the generator template, which needs a generator) is fitted
there as the yields fit it (the truncated likelihood of ``--pairs`` weighted pairs; σ_y the
config's external value, its error a refit; ȳ by the ``auto`` rule); a facility's region: its decay volume and plane seen from the target
(the share of azimuths per polar angle) above its daughters' energy threshold, all energies
(``all``) and the upper half (``E > E_beam/2``, the short lifetimes of the ε_high edge),
restricted to where the spectrum is measured (``cover``: the predicted share of the region
that it covers; ``x_reach``: the largest E/E_beam it reaches there). The last line is one
JSON object (``falloff``: n per spectrum; ``n_summary``: median and range over them).

Usage: python validation/scripts/real_data_closure.py [--figure docs/images/real-data-closure.png]
[--pairs 100000] [--x-min 0.3] [--na49-pt-shape exponential|mt_exponential] [--pythia N]
[--out rows.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]

from gammastar.config import load_config
from gammastar.physics.constants import mass
from gammastar.yields.extrapolation.errors import variation_forms
from gammastar.yields.extrapolation.model import FALLOFF, NOMINAL
from gammastar_validation.forward import FACILITIES
from gammastar_validation.real_data import (
    DATA,
    Beam,
    arm_weight,
    azimuthal_coverage,
    bmpt_density,
    bmpt_reference,
    facility_weight,
    falloff,
    fit_form,
    grid,
    load_bmpt,
    load_csv,
    matching_width,
    na49_reference,
)

DATA_CONFIGS = {400.0: "na60_like_both.yaml", 70.0: "na60_like_70gev.yaml"}
SPECTRA = (("NA49 pp 158", "pi+"), ("BMPT pBe", "pi+"), ("BMPT pBe", "pi-"),
           ("BMPT pBe", "K+"), ("BMPT pBe", "K-"))  # fmt: skip
SLICES = {"all": 0.0, "E>Eb/2": 0.5}
THETAS = np.linspace(0.0, 0.4, 1601)
X_POWERS = tuple(float(n) for n in range(8))
"""n of the nominal × (1 − E/E_beam)^n of the calibration scan (:func:`matching_powers`)."""
PIONS = ("NA49 pp 158 pi+", "BMPT pBe pi+", "BMPT pBe pi-")
"""The spectra behind the fall-off's value: the non-strange mesons (the γ*'s parents η, ρ, ω
are non-strange or mostly so; a K− shares no valence quark with the beam, a K+ one)."""


def fit_forms(falloff: tuple[float, float] | None, energy: float) -> dict:
    """The nominal and the variations the yields' fit adds with a fitted m_T power
    (:func:`~gammastar.yields.extrapolation.errors.variation_forms`; the p_T forms of that
    family it holds itself, the generator template needs a generator), at ``falloff`` (n, its
    1σ; ``None``: none)."""
    nominal = NOMINAL if falloff is None else NOMINAL.with_falloff(falloff[0], energy)
    forms = variation_forms(nominal, energy, 0.0 if falloff is None else falloff[1])
    keep = {k: f for k, f in forms.items() if k != "generator_template"
            and not (f.maps_to == "T" and f.log_pt_family == "mt_power")}  # fmt: skip
    return {"nominal": nominal, **keep}


def reference(name: str, species: str, g, na49_pt: str = "exponential"):
    if name.startswith("NA49"):
        return na49_reference(g, pt_shape=na49_pt)
    return bmpt_reference(g, species)


def _sees(row: dict) -> bool:
    """Whether the facility sees any meson in the row's slice (its energy quantiles exist)."""
    return not math.isnan(row["x_facility"][1])


def _quantiles(g, weight, energy: float) -> list[float]:
    """The 10%, 50% and 90% quantiles of E/E_beam of ``weight`` on the grid."""
    x = (g.energy * np.ones_like(weight)).ravel() / energy
    w = weight.ravel()
    order = np.argsort(x)
    c = np.cumsum(w[order])
    if c[-1] <= 0:
        return [float("nan")] * 3
    return [round(float(x[order][np.searchsorted(c, q * c[-1])]), 4) for q in (0.1, 0.5, 0.9)]


def model_falloff(g, density) -> dict[str, float]:
    """n of (1 − x_F)^n of a fitted form's dN/dx_F on the grid at x_F 0.3-0.85 (the range of
    the measured fits), for comparison with the measured n."""
    xf = (g.beam.x_f(g.mt, g.y) * np.ones_like(density)).ravel()
    edges = np.linspace(0.275, 0.875, 13)
    dndx, _ = np.histogram(xf, bins=edges, weights=density.ravel())
    r = falloff(0.5 * (edges[1:] + edges[:-1]), dndx, None, 0.3)
    return {"n": round(r["n"], 3), "err": round(r["err"], 3)}


def closure_rows(pairs: float, na49_pt: str = "exponential",
                 falloff: tuple[float, float] | None = (FALLOFF.value, FALLOFF.error),
                 y_sigma: str = "reference"):  # fmt: skip
    """Per spectrum, facility and slice: the measured and predicted shares, the two-sided band
    (``band_up``, ``band_down``: the fit's widths with the forms' shifts of each sign, in
    quadrature), the coverage; per spectrum and beam energy each form's fitted (T, ȳ, σ_y, a)
    and the calibration scan of the fall-off's n. ``y_sigma``: ``reference`` takes the
    spectrum's own width as the external σ_y (:func:`matching_width`, at the nominal's
    fall-off), ``config`` the analysis config's (the γ*'s parents' width, not a pion's)."""
    rows, fits_out = [], []
    facs = {n: load_config(REPO / "analysis" / "facilities" / f"{n}.yaml") for n in FACILITIES}
    cover = {n: (THETAS, azimuthal_coverage(c.detector, THETAS)) for n, c in facs.items()}
    for energy, cfg_name in DATA_CONFIGS.items():
        here = [n for n, c in facs.items() if c.beam.energy == energy]
        if not here:
            continue
        cfg = load_config(REPO / "analysis" / cfg_name)
        la, ys = cfg.unfold.lepton_acceptance, cfg.yields.extrapolation_y_sigma
        for name, species in SPECTRA:
            g = grid(Beam(energy), mass(species[:-1] + "+"))  # π−, K− as π+, K+
            ref = reference(name, species, g, na49_pt)
            arm = arm_weight(g, (la.theta_min, la.theta_max), cfg.selection.lepton_min_energy)
            width = (ys.value, ys.error)
            if y_sigma == "reference":  # the spectrum's own width, at the config's error
                for _ in range(2):  # the arm fits ȳ with σ_y: matched, refitted, matched again
                    first = fit_form(fit_forms(falloff, energy)["nominal"], g, ref, arm,
                                     y_sigma=width, pairs=pairs,
                                     y_mean_error=cfg.yields.extrapolation_y_mean_error)  # fmt: skip
                    width = (matching_width(first, ref), ys.error)
            fits = {f: fit_form(form, g, ref, arm, y_sigma=width,
                                y_mean_error=cfg.yields.extrapolation_y_mean_error, pairs=pairs)
                    for f, form in fit_forms(falloff, energy).items()}  # fmt: skip
            # the nominal × (1 − E/E_beam)^n over the calibration's range of n
            scan = {}
            for n in X_POWERS:
                form = dataclasses.replace(NOMINAL.with_falloff(n, energy), name=f"falloff_{n:g}")
                scan[n] = fit_form(form, g, ref, arm, y_sigma=width,
                                   y_mean_error=cfg.yields.extrapolation_y_mean_error, pairs=pairs)  # fmt: skip
            spectrum = f"{name} {species}"
            fits_out.append({"spectrum": spectrum, "energy": energy, "y_sigma": round(width[0], 3),
                             "params": {f: [round(float(v), 4) for v in r.params]
                                        for f, r in fits.items()},
                             "y_mean_fitted": {f: r.y_mean_fitted for f, r in fits.items()}})  # fmt: skip
            nom = fits["nominal"]
            p_nom = nom.density()
            fits_out[-1]["falloff"] = {f: model_falloff(g, fits[f].density()) for f in fits}
            fits_out[-1]["falloff_by_x_power"] = {
                n: model_falloff(g, r.density())["n"] for n, r in scan.items()
            }
            arm_meas = float(np.sum(arm * ref.domain * ref.density))
            for fac in here:
                for sl, frac in SLICES.items():
                    w_all = facility_weight(g, facs[fac], frac, cover=cover[fac])
                    w = w_all * ref.domain
                    row = {"spectrum": spectrum, "facility": fac, "slice": sl, "energy": energy,
                           "x_facility": _quantiles(g, w_all * p_nom, energy)}  # fmt: skip
                    seen = (w * ref.density) > 0
                    if not np.any(seen):
                        rows.append({**row, "reached": False, "cover": 0.0})
                        continue
                    meas = float(np.sum(w * ref.density)) / arm_meas
                    pred = nom.share(w)
                    shifts = {
                        f: math.log(r.share(w) / pred) for f, r in fits.items() if f != "nominal"
                    }
                    parts = nom.log_share_width(w)
                    fit2 = sum(v * v for v in parts.values())
                    up = math.sqrt(fit2 + sum(v * v for v in shifts.values() if v > 0))
                    down = math.sqrt(fit2 + sum(v * v for v in shifts.values() if v < 0))
                    band = math.sqrt(fit2 + sum(v * v for v in shifts.values()))
                    lr = math.log(meas / pred)
                    rows.append({**row, "reached": True, "measured": meas, "predicted": pred,
                                 "ratio": meas / pred, "band": band, "band_up": up,
                                 "band_down": down, "fit_widths": parts, "shifts": shifts,
                                 "pull": lr / (up if lr > 0 else down),
                                 "cover": pred / nom.share(w_all),
                                 "ratio_by_x_power": {n: meas / r.share(w) for n, r in scan.items()},
                                 "x_reach": round(float((g.energy * np.ones_like(w))[seen].max() / energy), 4)})  # fmt: skip
    return rows, fits_out


def falloffs(x_min: float) -> list[dict]:
    """n of (1 − x_F)^n per measured spectrum: NA49's dn/dx_F (its printed errors) at x_F ≥
    ``x_min``; BMPT's dN/dx_F = ∫ 2π p_T f/E* dp_T (up to a constant; f its invariant density)
    at its fit's beam momentum over its fitted p_T range, x_F from ``x_min`` to where x_R
    reaches the end of its fitted range (no errors: the fit's residuals, or half the spread
    over the start 0.2-0.45 where larger; ``range``: that spread)."""
    out = []
    t = load_csv(DATA / "na49_pp158_piplus_dndxf.csv")
    starts = (0.2, 0.3, 0.45)
    main = falloff(t["xf"], t["dndxf"], t["dndxf_err"], x_min)
    spread = [falloff(t["xf"], t["dndxf"], t["dndxf_err"], s)["n"] for s in starts]
    out.append({"spectrum": "NA49 pp 158 pi+", **main, "range": [min(spread), max(spread)]})
    p = load_bmpt()
    fr = p["fitted_range"]
    beam = Beam(float(p["beam_momentum"]))
    pt = np.linspace(0.0, fr["pt_max"], 601)[:, None]
    for sp in ("pi+", "pi-", "K+", "K-"):
        m = mass(sp[:-1] + "+")
        mt = np.sqrt(pt**2 + m * m)
        xf = np.linspace(0.1, 0.8, 71)[None, :]
        e_star = np.sqrt((xf * beam.sqrt_s / 2) ** 2 + mt**2)
        xr = e_star / beam.e_max(m)
        dndx = np.trapezoid(2 * np.pi * pt * bmpt_density(sp, xr, pt, p) / e_star, pt[:, 0], axis=0)
        keep = np.max(xr, axis=0) <= fr["x_r_max"]
        x1, d1 = xf[0, keep], dndx[keep]
        main = falloff(x1, d1, None, x_min)
        spread = [falloff(x1, d1, None, s)["n"] for s in starts]
        err = max(main["err"], (max(spread) - min(spread)) / 2)
        out.append({"spectrum": f"BMPT pBe {sp}", **main, "err": err,
                    "range": [min(spread), max(spread)]})  # fmt: skip
    return out


def pythia_falloffs(collisions: int, seed: int, x_min: float) -> list[dict]:
    """n of (1 − x_F)^n of PYTHIA 8's p + p mesons at 158 GeV/c (NA49's energy; the mock's
    backend, decays off, its default tune) at x_F ≥ ``x_min``, their Poisson errors: the π0
    (beside NA49's π+ and BMPT's π±) and the η, ρ, ω, whose forward spectra are not among
    the measurements found."""
    from gammastar.config.mock import MockPythia
    from gammastar.mock.pythia import pythia_settings, run_pool

    beam = Beam(158.0)
    pool = run_pool(pythia_settings(MockPythia(mode="pp"), beam.energy, seed), collisions)
    edges = np.linspace(0.0, 1.0, 21)
    out = []
    for sp in ("pi0", "eta", "rho", "omega"):
        mt = np.sqrt(pool.pt[sp] ** 2 + mass(sp) ** 2)
        counts, _ = np.histogram(beam.x_f(mt, pool.y[sp]), bins=edges)
        ok = counts > 0
        x = 0.5 * (edges[1:] + edges[:-1])
        r = falloff(x[ok], counts[ok] / 1.0, np.sqrt(counts[ok]), x_min)
        out.append({"spectrum": f"PYTHIA pp 158 {sp}", **r, "mesons": int(counts.sum())})
    return out


def _crossing(ns: list[float], values: list[float], target: float) -> float | None:
    """Where the piecewise-linear ``values``(n) first reaches ``target`` (None: nowhere)."""
    for i in range(len(ns) - 1):
        v0, v1 = values[i], values[i + 1]
        if (v0 - target) * (v1 - target) <= 0 and v1 != v0:
            return round(ns[i] + (target - v0) * (ns[i + 1] - ns[i]) / (v1 - v0), 2)
    return None


def matching_powers(rows, fits, fo) -> list[dict]:
    """Per spectrum and beam energy, the n of the nominal × (1 − E/E_beam)^n that matches the
    measurement: its fall-off in x_F (0.3-0.85) equal to the measured one, and its predicted
    share of each facility's E > E_beam/2 region equal to the measured share."""
    measured = {f["spectrum"]: f["n"] for f in fo}
    out = []
    for f in fits:
        ns = sorted(float(k) for k in f["falloff_by_x_power"])
        eff = [f["falloff_by_x_power"][n] for n in ns]
        by_share = {}
        for r in rows:
            if r["spectrum"] == f["spectrum"] and r["energy"] == f["energy"] and r["reached"] \
                    and r["slice"] == "E>Eb/2":  # fmt: skip
                lr = [math.log(r["ratio_by_x_power"][n]) for n in ns]
                by_share[r["facility"]] = _crossing(ns, lr, 0.0)
        out.append({"spectrum": f["spectrum"], "energy": f["energy"],
                    "by_falloff": _crossing(ns, eff, measured[f["spectrum"]]), "by_share": by_share})  # fmt: skip
    return out


def calibration(matched: list[dict]) -> dict:
    """The fall-off's n from the measurements: per pion spectrum (:data:`PIONS`) and beam
    energy two matches of the model fitted in the arm (:func:`matching_powers`): the n at
    which it falls as the measured spectrum does over x_F 0.3-0.85, and the n at which it
    predicts the measured share of the facilities' E > E_beam/2 regions (the median over the
    facilities: the ε_high edge's region); their median and half their 16-84% spread (the
    value and 1σ the package's :data:`~gammastar.yields.extrapolation.model.FALLOFF` takes),
    beside the package's."""
    ns = []
    for m in matched:
        if m["spectrum"] not in PIONS:
            continue
        share = [v for v in m["by_share"].values() if v is not None]
        ns += [v for v in (m["by_falloff"], float(np.median(share)) if share else None) if v is not None]
    out = {"n": ns, "package": [FALLOFF.value, FALLOFF.error]}
    if not ns:
        return {**out, "median": None, "range": None, "half_spread": None}
    lo, hi = np.percentile(ns, [16, 84])
    return {**out, "median": round(float(np.median(ns)), 3), "range": [min(ns), max(ns)],
            "half_spread": round(0.5 * float(hi - lo), 3)}  # fmt: skip


def print_rows(rows) -> None:
    print(f"{'spectrum':18s} {'facility':10s} {'slice':7s} {'meas/pred':>9s} {'e^up/e^dn':>11s} "
          f"{'pull':>6s} {'cover':>6s} {'x_reach':>7s} {'E/Eb of facility (10,50,90%)':>30s}")  # fmt: skip
    for r in rows:
        q = ", ".join(f"{v:.3f}" for v in r["x_facility"])
        if not r["reached"]:
            what = "not reached" if _sees(r) else "sees none"
            print(f"{r['spectrum']:18s} {r['facility']:10s} {r['slice']:7s} {what:>11s} "
                  f"{'':9s} {'':6s} {0.0:6.2f} {'':7s} {q:>30s}")  # fmt: skip
            continue
        print(f"{r['spectrum']:18s} {r['facility']:10s} {r['slice']:7s} {r['ratio']:9.3f} "
              f"{math.exp(r['band_up']):5.2f}/{math.exp(r['band_down']):5.2f} {r['pull']:6.2f} {r['cover']:6.2f} {r['x_reach']:7.3f} {q:>30s}")  # fmt: skip


def figure(rows, path: Path) -> None:
    """Per facility: measured / predicted share per spectrum and slice, the band as its bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [f"{a} {b}" for a, b in SPECTRA]
    fig, axes = plt.subplots(2, 3, figsize=(12, 6.5), sharey=True)
    for ax, fac in zip(axes.ravel(), FACILITIES, strict=True):
        for k, (sl, marker) in enumerate((("all", "o"), ("E>Eb/2", "^"))):
            for i, n in enumerate(names):
                r = next(
                    r
                    for r in rows
                    if r["facility"] == fac and r["spectrum"] == n and r["slice"] == sl
                )
                x = i + (k - 0.5) * 0.25
                if not r["reached"]:  # no marker where the facility sees nothing at all
                    if not math.isnan(r["x_facility"][1]):
                        ax.plot(x, 1.0, marker="x", color="0.6", ls="none")
                    continue
                # 1 inside the bar: the measurement inside the band (a higher prediction,
                # e^up, lowers measured/predicted)
                lo, hi = (
                    r["ratio"] * (1 - math.exp(-r["band_up"])),
                    r["ratio"] * (math.exp(r["band_down"]) - 1),
                )
                ax.errorbar(x, r["ratio"], yerr=[[lo], [hi]], marker=marker, ls="none",
                            color=f"C{k}", mfc=f"C{k}" if r["cover"] > 0.5 else "white",
                            label=sl if i == 0 else None)  # fmt: skip
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_yscale("log")
        ax.set_title(fac)
        ax.set_xticks(range(len(names)), [n.replace("pp 158 ", "").replace("pBe ", "") for n in names],
                      rotation=30, fontsize=8)  # fmt: skip
    axes[0, 0].set_ylabel("measured / predicted")
    axes[1, 0].set_ylabel("measured / predicted")
    axes[0, 0].legend(fontsize=8, title="facility region", title_fontsize=8)
    fig.suptitle("The share of the arm's yield in each facility's region, measured over the model "
                 "fitted in the arm\nbars: the band the reach quotes; open: < 50% of the region "
                 "measured; x: the measurement does not reach it", fontsize=9)  # fmt: skip
    fig.tight_layout()
    from gammastar.core.artifacts import atomic_path

    with atomic_path(path, force=True) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=float, default=1e5,
                    help="the arm's weighted pairs the fit stands for (its statistical error)")  # fmt: skip
    ap.add_argument("--x-min", type=float, default=0.3, help="start of the fall-off fits")
    ap.add_argument("--na49-pt-shape", choices=["exponential", "mt_exponential"],
                    default="exponential",
                    help="the p_T shape given NA49's <p_T>(x_F) (its table has no p_T spectra)")  # fmt: skip
    ap.add_argument("--pythia", type=int, default=0, metavar="N",
                    help="also PYTHIA 8's p + p fall-off at 158 GeV/c from N collisions (0: not)")  # fmt: skip
    ap.add_argument("--seed", type=int, default=12345, help="PYTHIA's seed (with --pythia)")
    ap.add_argument("--falloff", default="measured",
                    help="the nominal's fall-off n: measured (the package's, with its 1σ), "
                         "none, or a number (no error)")  # fmt: skip
    ap.add_argument("--y-sigma", choices=["reference", "config"], default="reference",
                    help="the fit's external sigma_y: the spectrum's own width (reference) or the "
                         "analysis config's")  # fmt: skip
    ap.add_argument("--figure", type=Path, help="write the figure here (PNG)")
    ap.add_argument("--out", type=Path, help="write the rows as JSON here")
    args = ap.parse_args()
    t0 = time.perf_counter()
    falloff = None if args.falloff == "none" else (
        (FALLOFF.value, FALLOFF.error) if args.falloff == "measured" else (float(args.falloff), 0.0))
    rows, fits = closure_rows(args.pairs, args.na49_pt_shape, falloff, args.y_sigma)
    print_rows(rows)
    fo = falloffs(args.x_min)
    for f in fo:
        print(f"fall-off {f['spectrum']:18s} (1-x_F)^n: n = {f['n']:.2f} ± {f['err']:.2f} "
              f"(x_F {f['x_min']:.2f}-{f['x_max']:.2f}, {f['points']} points, "
              f"chi2/ndf {f['chi2_ndf']:.2f}; start 0.2-0.45: {f['range'][0]:.2f}-{f['range'][1]:.2f})")  # fmt: skip
    py = pythia_falloffs(args.pythia, args.seed, args.x_min) if args.pythia else []
    for f in py:
        print(f"fall-off {f['spectrum']:18s} (1-x_F)^n: n = {f['n']:.2f} ± {f['err']:.2f} "
              f"(x_F {f['x_min']:.2f}-{f['x_max']:.2f}, {f['mesons']} mesons, chi2/ndf {f['chi2_ndf']:.2f})")  # fmt: skip
    ns = [f["n"] for f in fo]
    # every region a facility sees is a point; one the measurement does not reach fails
    scored = [r for r in rows if r["reached"] or _sees(r)]
    reached = [r for r in scored if r["reached"]]
    within = sum(abs(r["pull"]) <= 1 for r in reached)
    within2 = sum(abs(r["pull"]) <= 2 for r in reached)
    for f in fits:
        print(f"model fall-off {f['spectrum']:18s} at {f['energy']:g} GeV, fitted in the arm: "
              + "  ".join(f"{k} n = {v['n']:.2f}" for k, v in f["falloff"].items()))  # fmt: skip
    print(f"within the band: 1σ {within}/{len(scored)}, 2σ {within2}/{len(scored)} "
          f"(the {len(scored) - len(reached)} regions no measurement reaches counted as failures; "
          f"{len(rows) - len(scored)} slices a facility does not see)")  # fmt: skip
    matched = matching_powers(rows, fits, fo)
    for m in matched:
        print(f"fall-off n matching {m['spectrum']:18s} at {m['energy']:g} GeV: the measured "
              f"fall-off n = {m['by_falloff']}; the measured share at E > E_beam/2: "
              + ", ".join(f"{k} {v}" for k, v in m["by_share"].items()))  # fmt: skip
    cal = calibration(matched)
    print(f"the fall-off from the pions: n = {cal['median']} +- {cal['half_spread']} (median, half "
          f"the 16-84% spread), range {cal['range']}; the package's: {FALLOFF.value} +- {FALLOFF.error}")  # fmt: skip
    if args.figure:
        figure(rows, args.figure)
    summary = {"benchmark": "real_data_closure", "seconds": round(time.perf_counter() - t0, 1),
               "pairs": args.pairs, "na49_pt_shape": args.na49_pt_shape, "within_1sigma": [within, len(scored)],
               "within_2sigma": [within2, len(scored)],
               "falloff": [{k: f[k] for k in ("spectrum", "n", "err", "x_min", "x_max", "range")}
                           for f in fo],
               "n_summary": {"median": float(np.median(ns)), "min": min(ns), "max": max(ns)},
               "pythia_falloff": [{k: f[k] for k in ("spectrum", "n", "err", "x_min", "x_max", "mesons")}
                                  for f in py],
               "x_power_matching": matched, "falloff_calibration": cal, "y_sigma": args.y_sigma,
               "y_sigma_by_spectrum": {f"{f['spectrum']} {f['energy']:g}": f["y_sigma"] for f in fits},
               "nominal_falloff": None if falloff is None else list(falloff),
               "model_falloff": [{k: f[k] for k in ("spectrum", "energy", "falloff")} for f in fits],
               "rows": [{k: r.get(k) for k in ("spectrum", "facility", "slice", "ratio", "band_up", "band_down",
                                               "cover", "x_reach")} for r in rows]}  # fmt: skip
    if args.out:
        from gammastar.core.artifacts import write_json

        write_json(args.out, {**summary, "rows": rows, "fits": fits}, force=True)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
