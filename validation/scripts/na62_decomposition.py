"""Why the NA62-like reach differs from NA62's: each ingredient swapped for another, one at a time.

Claim: the data-driven ingredients are not what limits the NA62-like reach: replacing the
fitted model's kinematics or the data-driven yield by the generator's truth, or the efficiency
by 1, each moves the excluded mass range by about one mass point (~0.02 GeV).

Runs ``gammastar.reach.stage.scan`` with analysis/na62_dump.yaml's geometry and statistics and the
yields of a finished NA60-like run, changing one factor per row:

* ``baseline``: the config as shipped (data-driven yield; kinematics from the yields' fitted
  extrapolation model, every sample labelled extrapolated: NA62 needs θ ≲ 5 mrad, outside the
  NA60-like data);
* ``kinematics: generator truth``: the mock generator's own γ* as the A′ kinematics (what the
  model should have given);
* ``kinematics: docs/explanation/physics.md defaults``: the analytic sampler with T = 0.2 GeV, y = 3.37 ± 1.2;
* ``yield: generator truth``: the generator's full-phase-space γ* yield (Eq. 6) instead of the
  data-driven one (the extrapolation's error on the yield);
* ``yield: + bremsstrahlung``: the proton-bremsstrahlung yield (FWW, yields.json ``theory``)
  added, NA62's dominant production mode above ~0.2 GeV;
* ``efficiency 1.0``: the selection × trigger efficiency 0.7 → 1.

Usage: python validation/scripts/na62_decomposition.py --run runs/na60_like [--masses 40]
Prints one row per variant: the excluded mass ranges (contiguous runs of the mass grid) and the ε
band at three masses; the last line is one JSON object with the same.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]

from gammastar.config import load_config
from gammastar.corrections.unfold import EfficiencyMap
from gammastar.mock.detector import Detector
from gammastar.physics.sampling import ParametricSampler
from gammastar.reach.stage import ScanSettings, scan
from gammastar.source.geometry import Geometry
from gammastar.source.production import Yields, load_yields, resolve_yield_scale
from gammastar.source.source import Source
from gammastar_validation.closure import truth_aprime_yield
from gammastar_validation.truth import TruthSampler, truth_gstar


def _contiguous(masses: np.ndarray, excluded: np.ndarray) -> list[tuple[float, float]]:
    """The excluded masses as contiguous ranges (first, last) of the mass grid: an island (at
    the φ, say) stays apart from the main range instead of stretching it."""
    runs: list[tuple[float, float]] = []
    for i in np.flatnonzero(excluded):
        if runs and i > 0 and excluded[i - 1]:
            runs[-1] = (runs[-1][0], float(masses[i]))
        else:
            runs.append((float(masses[i]), float(masses[i])))
    return runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=REPO / "runs" / "na60_like")
    ap.add_argument("--masses", type=int, default=40)
    ap.add_argument("--truth-sources", type=int, default=3_000_000)
    args = ap.parse_args()
    run = args.run.resolve()
    cfg = load_config(REPO / "analysis" / "na62_dump.yaml")
    cfg = cfg.model_copy(update={"reach": cfg.reach.model_copy(
        update={"yields": str(run / "yields.json")})})  # fmt: skip
    data_cfg = load_config(REPO / "analysis" / "na60_like.yaml").model_copy(
        update={"output": str(run)}
    )
    rc = cfg.reach
    y = load_yields(run / "yields.json")
    scale, _ = resolve_yield_scale(cfg, y)
    sampler = Source.from_config(cfg, y)
    truth = truth_gstar(data_cfg, args.truth_sources, seed=5)
    det = Detector(data_cfg.mock.detector, EfficiencyMap.unity())
    ty = truth_aprime_yield(truth, np.asarray(y.extrapolation["bin_edges"]),
                            m_lepton=data_cfg.input.lepton_mass, sigma_m=det.sigma_m)  # fmt: skip
    y_truth = Yields(ty.mass, ty.per_pot_per_eps2, ty.stat_err, y.meta)
    doc = json.loads((run / "yields.json").read_text())
    br = doc.get("theory", {}).get("brems_aprime")
    y_brems = None
    if br is None:
        print("yields.json has no theory.brems_aprime (yields computed without the theory "
              "curves): the bremsstrahlung variant is left out")  # fmt: skip
    else:
        bm = np.asarray(br["mass"], float)
        bv = np.asarray([np.nan if v is None else v for v in br["per_pot_per_eps2"]], float)
        ok = np.isfinite(bv)
        yb = y._y + np.interp(y._m, bm[ok], bv[ok])
        y_brems = Yields(y._m, yb, y._rel * y._y, y.meta)
    geo = Geometry.from_config(cfg.detector)
    geo_eff1 = Geometry.from_config(cfg.detector.model_copy(update={"efficiency": 1.0}))
    variants = {
        "baseline": (sampler, y, geo),
        "kinematics: generator truth": (TruthSampler(truth), y, geo),
        "kinematics: docs/explanation/physics.md defaults": (ParametricSampler(0.2, 3.37, 1.2), y, geo),
        "yield: generator truth": (sampler, y_truth, geo),
        "yield: + bremsstrahlung": (sampler, y_brems, geo),
        "efficiency 1.0": (sampler, y, geo_eff1),
    }
    if y_brems is None:
        del variants["yield: + bremsstrahlung"]
    lo, hi = max(y.mass_range[0], 0.22), min(y.mass_range[1], 1.0)
    masses = np.linspace(lo, hi, args.masses)
    eps = np.geomspace(rc.eps_min, rc.eps_max, rc.eps_points)
    n_pot = rc.n_pot * scale
    show = [0.3, 0.45, 0.6]
    print(f"{'variant':34s} {'excluded masses (GeV)':24s} " + " ".join(
        f"{f'eps at {m:.2f} GeV':>22s}" for m in show))  # fmt: skip
    out = {"study": "na62_decomposition", "run": str(run), "variants": {}}
    for name, (smp, yy, gg) in variants.items():
        settings = ScanSettings(
            geometry=gg, yields=yy, n_pot=n_pot,
            channels=tuple(rc.channels), background=rc.background,
            background_kappa=rc.background_kappa, observed=None,
            n_pot_unc=rc.n_pot_rel_uncertainty, efficiency_uncertainty=rc.efficiency_uncertainty,
            cl=rc.cl, method=rc.method, samples=rc.samples, seed=cfg.seed,
        )  # fmt: skip
        res = scan(masses, eps, sampler=smp, settings=settings)
        elo, ehi = res.boundaries["0"]
        ex = np.isfinite(elo)
        runs = _contiguous(masses, ex)
        rng = ", ".join(f"{a:.3f}-{b:.3f}" for a, b in runs) if runs else "none"
        cells = []
        for m in show:
            i = int(np.argmin(np.abs(masses - m)))
            cells.append(f"{elo[i]:.2e}-{ehi[i]:.2e}" if np.isfinite(elo[i]) else "-")
        print(f"{name:34s} {rng:24s} " + " ".join(f"{c:>22s}" for c in cells))
        out["variants"][name] = {
            "excluded_masses": [float(masses[ex].min()), float(masses[ex].max())]
            if ex.any() else None,
            "excluded_ranges": [[float(a), float(b)] for a, b in runs],
            "eps_band": {f"{m:g}": [float(elo[i]), float(ehi[i])] if np.isfinite(elo[i]) else None
                         for m, i in ((m, int(np.argmin(np.abs(masses - m)))) for m in show)},
        }  # fmt: skip
    print(json.dumps(out))


if __name__ == "__main__":
    main()
