"""The facility reaches data-driven beside the standard recipe: N_sig data-driven / recipe per
facility and mass at ε_low and ε_high, decomposed into yield × acceptance.

Claim (a measurement, no target): at the same facility geometry, statistics and (m, ε),
N_sig(data-driven) / N_sig(recipe) = Y_data/Y_recipe × 𝓔_data/𝓔_recipe exactly (N_sig ∝ Y ε²
ΣBR 𝓔 with the same N_POT, yield scale and branching ratios); the table says which factor
makes the two productions differ where each facility sets its contour, and the A′ mean
energy ratio ⟨E⟩_data/⟨E⟩_recipe at that mass: at ε_high (short lifetimes) the acceptance is
the momentum tail's, so the energy decides it there.

Inputs, per facility (``--facilities``, default charm na62_dump nucal):
``runs/facility_<name>/acceptance.npz`` and ``reach.json`` (``gammastar reach
analysis/facilities/<name>.yaml``) and ``runs/facility_<name>/standard_recipe/`` (the same with
``--production standard_recipe``), after the data runs the configs name
(``analysis/na60_like_both.yaml``, ``analysis/na60_like_70gev.yaml``). The ε are the
data-driven median expected ε_low and ε_high; the masses the ones of the reach grid nearest
to ``--masses`` that the data-driven reach excludes.

Usage:
    python validation/scripts/facilities_recipe.py [--runs runs] [--masses 0.02 0.05 ...]
        [--out runs/facilities_recipe] [--samples 20000]
Prints a Markdown table per facility; writes ``facilities_recipe.json``; the last line printed
is that JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from gammastar.config import load_config
from gammastar.core.artifacts import write_json
from gammastar.source.production import load_yields
from gammastar.source.recipe import recipe_source
from gammastar.source.source import Source

REPO = Path(__file__).resolve().parents[2]
MASSES = (0.02, 0.05, 0.1, 0.2, 0.3, 0.45, 0.6, 0.8, 1.0)


def _npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as f:
        return dict(f)


def _edges(run: Path) -> tuple[np.ndarray, np.ndarray]:
    """The median expected (ε_low, ε_high) per mass of ``run``'s reach.json (NaN: none)."""
    exp = json.loads((run / "reach.json").read_text())["expected"]
    return tuple(np.array([np.nan if v is None else v for v in exp[k]], float)
                 for k in ("eps_low", "eps_high"))  # type: ignore[return-value]  # fmt: skip


def _at(values: np.ndarray, eps: np.ndarray, e: float) -> float:
    """``values`` (on the ε grid) at ``e``, log-log between the grid's neighbours (so that
    the ratios of products stay products); 0 where a neighbour is 0."""
    j = int(np.clip(np.searchsorted(eps, e), 1, eps.size - 1))
    a, b = values[j - 1], values[j]
    if not (a > 0 and b > 0):
        return float(np.interp(np.log(e), np.log(eps), values))
    t = (np.log(e) - np.log(eps[j - 1])) / (np.log(eps[j]) - np.log(eps[j - 1]))
    return float(np.exp((1 - t) * np.log(a) + t * np.log(b)))


def facility_rows(name: str, runs: Path, masses: tuple[float, ...], samples: int) -> list[dict]:
    cfg = load_config(REPO / "analysis" / "facilities" / f"{name}.yaml")
    run = runs / f"facility_{name}"
    dd, rc = _npz(run / "acceptance.npz"), _npz(run / "standard_recipe" / "acceptance.npz")
    lo, hi = _edges(run)
    lo_rc, hi_rc = _edges(run / "standard_recipe")
    path = cfg.resolve(cfg.reach.yields)
    data = load_yields(path)
    recipe = recipe_source(cfg, data, Path(path))
    data_src = Source.from_config(cfg, data)
    rows = []
    grid = dd["mass"]
    for want in masses:
        i = int(np.argmin(np.abs(grid - want)))
        if not np.isfinite(lo[i]) or any(r["mass"] == grid[i] for r in rows):
            continue
        m = float(grid[i])
        y_ratio = float(data.at(m)[0] / recipe.yield_at(m)[0])
        e_ratio = float(data_src.sample(m, samples, seed=1)["E"].mean()
                        / recipe.sample(m, samples, seed=1)["E"].mean())  # fmt: skip
        row = {"mass": m, "yield_ratio": y_ratio, "energy_ratio": e_ratio,
               "eps_low_ratio": lo[i] / lo_rc[i], "eps_high_ratio": hi[i] / hi_rc[i]}  # fmt: skip
        for key, e in (("low", lo[i]), ("high", hi[i])):
            n_dd, n_rc = _at(dd["nsig"][i], dd["eps"], e), _at(rc["nsig"][i], rc["eps"], e)
            a_dd = _at(dd["acceptance"][i], dd["eps"], e)
            a_rc = _at(rc["acceptance"][i], rc["eps"], e)
            row[key] = {
                "eps": float(e), "nsig_data": n_dd, "nsig_recipe": n_rc,
                "nsig_ratio": n_dd / n_rc if n_rc > 0 else None,
                "acceptance_ratio": a_dd / a_rc if a_rc > 0 else None,
            }  # fmt: skip
        rows.append(row)
    return rows


def _fmt(x: float | None, f: str = ".3g") -> str:
    return "–" if x is None else format(x, f)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, default=REPO / "runs")
    ap.add_argument("--facilities", nargs="+", default=["charm", "na62_dump", "nucal"])
    ap.add_argument("--masses", nargs="+", type=float, default=list(MASSES))
    ap.add_argument("--samples", type=int, default=20_000)
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "facilities_recipe")
    args = ap.parse_args()
    summary: dict = {"study": "facilities_recipe", "facilities": {}}
    for name in args.facilities:
        rows = facility_rows(name, args.runs, tuple(args.masses), args.samples)
        summary["facilities"][name] = rows
        print(f"\n{name}: N_sig data-driven / recipe at the data-driven expected ε_low, ε_high")
        print("| m (GeV) | ε_low | N ratio | = yield × 𝓔 | ε_high | N ratio | = yield × 𝓔 "
              "| ⟨E⟩ ratio | ε_low, ε_high data/recipe |")  # fmt: skip
        print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for r in rows:
            lo, hi = r["low"], r["high"]
            print(f"| {r['mass']:.3f} | {lo['eps']:.2e} | {_fmt(lo['nsig_ratio'])} | "
                  f"{r['yield_ratio']:.3g} × {_fmt(lo['acceptance_ratio'])} | {hi['eps']:.2e} | "
                  f"{_fmt(hi['nsig_ratio'])} | {r['yield_ratio']:.3g} × "
                  f"{_fmt(hi['acceptance_ratio'])} | {r['energy_ratio']:.3g} | "
                  f"{r['eps_low_ratio']:.2f}, {r['eps_high_ratio']:.2f} |")  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "facilities_recipe.json", summary, force=True)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
