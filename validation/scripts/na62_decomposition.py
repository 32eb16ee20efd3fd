"""Why the NA62-like reach differs from NA62's: each ingredient swapped for another, one at a time.

Claim: the data-driven ingredients are not what limits the NA62-like reach: replacing the
fitted model's kinematics or the data-driven yield by the generator's truth, or the efficiency
by 1, each moves the excluded mass range by about one mass point (~0.02 GeV).

Runs ``gammastar.reach.scan.scan`` with the geometry and statistics of an NA62 config (``--config``:
analysis/na62_dump.yaml, the window keys, by default; analysis/facilities/na62_dump.yaml, the
decay-volume shapes and the target's A-dependence) and the yields of a finished NA60-like run,
changing one factor per row:

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
* ``efficiency 1.0``: the selection × trigger efficiency 0.7 → 1;

and, for a config with ``reach.target`` (the A-dependence carry from the data's nucleus to the
facility's, :func:`gammastar.source.production.resolve_yield_scale`):

* ``target: alpha = 1``: the A-dependence exponent at its upper edge, A¹;
* ``target A-dependence off``: no ``reach.target``, the yield carried by P_int alone (as
  analysis/na62_dump.yaml does), and no ``target_a_dependence`` nuisance;
* ``shapes -> window keys``: the detector of analysis/na62_dump.yaml (the window keys) in place of
  the config's shapes (given when ``--config`` is another file).

Every row is the median expected limit (``observed`` not used: NA62 observed 0 events on an
expected background of ~0.03) with the statistics inputs of the config; the only named signal
nuisance is ``target_a_dependence`` where the config has ``reach.target`` (the data's named
nuisances of yields.json are left out, as for the window config).

Usage: python validation/scripts/na62_decomposition.py --run runs/na60_like [--masses 40]
       python validation/scripts/na62_decomposition.py --config analysis/facilities/na62_dump.yaml
           --run runs/na60_like_both
The data config (the truth generator's) is analysis/<run directory name>.yaml when it exists,
else analysis/na60_like.yaml (``--data-config`` overrides). Prints one row per variant: the
excluded mass ranges (contiguous runs of the mass grid) and the ε band at three masses; the last
line is one JSON object with the same.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]

from gammastar.config import load_config
from gammastar.corrections.unfold.efficiency import EfficiencyMap
from gammastar.mock.detector import Detector
from gammastar.physics.constants import M_MU
from gammastar.physics.sampling import ParametricSampler
from gammastar.reach.scan import scan
from gammastar.reach.scan.settings import ScanSettings
from gammastar.source.geometry import Geometry
from gammastar.source.production import (
    Yields,
    load_yields,
    resolve_yield_scale,
    with_target_nuisance,
)
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


WINDOW_CONFIG = REPO / "analysis" / "na62_dump.yaml"


def _target_off(cfg, **target):
    """``cfg`` with ``reach.target`` changed by ``target`` (``None``: no target, P_int only)."""
    tgt = None if target.get("off") else cfg.reach.target.model_copy(update=target)
    return cfg.model_copy(update={"reach": cfg.reach.model_copy(update={"target": tgt})})


def _truth_yield(y: Yields, ty) -> Yields:
    """The generator's γ* yield as an A′ yield; where the data's yield starts below the truth's
    mass range (a run with the dielectrons from 10 MeV, the truth being the dimuon cocktail's),
    the data-driven yield is kept there."""
    if y.mass_range[0] >= float(np.min(ty.mass)) - 1e-9:
        return Yields(ty.mass, ty.per_pot_per_eps2, ty.stat_err, y.meta)
    inside = y._m >= float(np.min(ty.mass))
    yt = np.where(inside, np.interp(y._m, ty.mass, ty.per_pot_per_eps2), y._y)
    rel = np.where(inside, np.interp(y._m, ty.mass, ty.stat_err / ty.per_pot_per_eps2), y._rel)
    return Yields(y._m, yt, rel * yt, y.meta)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=WINDOW_CONFIG,
                    help="the NA62 config (default: analysis/na62_dump.yaml)")  # fmt: skip
    ap.add_argument("--run", type=Path, default=None,
                    help="a finished NA60-like run (default: the config's reach.yields directory)")  # fmt: skip
    ap.add_argument("--data-config", type=Path, default=None)
    ap.add_argument("--masses", type=int, default=40)
    ap.add_argument("--truth-sources", type=int, default=3_000_000)
    args = ap.parse_args()
    cfg_path = args.config.resolve()
    cfg = load_config(cfg_path)
    run = (args.run or cfg.resolve(cfg.reach.yields).parent).resolve()
    cfg = cfg.model_copy(update={"reach": cfg.reach.model_copy(
        update={"yields": str(run / "yields.json")})})  # fmt: skip
    data_path = args.data_config or REPO / "analysis" / f"{run.name}.yaml"
    if not data_path.exists():
        data_path = REPO / "analysis" / "na60_like.yaml"
    data_cfg = load_config(data_path).model_copy(update={"output": str(run)})
    rc = cfg.reach
    y = load_yields(run / "yields.json")
    scale, _ = resolve_yield_scale(cfg, y)
    sampler = Source.from_config(cfg, y)
    y = sampler.yields if sampler.yields is not None else y  # the reach's (the arm's above the seam)
    truth = truth_gstar(data_cfg, args.truth_sources, seed=5)
    det = Detector(data_cfg.mock.detector, EfficiencyMap.unity())
    ty = truth_aprime_yield(truth, np.asarray(y.extrapolation["bin_edges"]),
                            m_lepton=M_MU, sigma_m=det.sigma_m)  # fmt: skip
    y_truth = _truth_yield(y, ty)
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
    # the mass grid: the yields' range up to 1 GeV, from 0.22 GeV (the first full 10 MeV bin)
    # for a dimuon-only yield
    lo, hi = y.mass_range[0], min(y.mass_range[1], 1.0)
    if lo >= 2 * M_MU:
        lo = max(lo, 0.22)
    masses = np.linspace(lo, hi, args.masses)

    def carry(c) -> tuple[float, dict | None]:
        """The yield scale of config ``c`` and its named nuisances (target_a_dependence)."""
        sc, info = resolve_yield_scale(c, y)
        return sc, with_target_nuisance(None, None, info, masses)[0]

    base = carry(cfg)
    geo = Geometry.from_config(cfg.detector)
    geo_eff1 = Geometry.from_config(cfg.detector.model_copy(update={"efficiency": 1.0}))
    # name: (sampler, yields, geometry, (yield scale, named nuisances))
    variants = {
        "baseline": (sampler, y, geo, base),
        "kinematics: generator truth": (TruthSampler(truth), y, geo, base),
        "kinematics: docs/explanation/physics.md defaults": (ParametricSampler(0.2, 3.37, 1.2), y, geo, base),
        "yield: generator truth": (sampler, y_truth, geo, base),
        "yield: + bremsstrahlung": (sampler, y_brems, geo, base),
        "efficiency 1.0": (sampler, y, geo_eff1, base),
    }  # fmt: skip
    if y_brems is None:
        del variants["yield: + bremsstrahlung"]
    if rc.target is not None:
        variants["target: alpha = 1"] = (sampler, y, geo, carry(_target_off(cfg, a_exponent=1.0)))
        variants["target A-dependence off"] = (sampler, y, geo, carry(_target_off(cfg, off=True)))
    if cfg_path != WINDOW_CONFIG.resolve():
        window = Geometry.from_config(load_config(WINDOW_CONFIG).detector)
        variants["shapes -> window keys"] = (sampler, y, window, base)
    eps = np.geomspace(rc.eps_min, rc.eps_max, rc.eps_points)
    # the ε band at three grid masses: NA62's μμ range, or with the dielectrons from 10 MeV
    # one below 2m_μ and two where the dimuon truth exists too
    show = [0.3, 0.45, 0.6] if lo >= 0.2 else [0.05, 0.25, 0.45]
    print(f"{'variant':48s} {'excluded masses (GeV)':24s} " + " ".join(
        f"{f'eps at {m:.2f} GeV':>22s}" for m in show))  # fmt: skip
    out = {"study": "na62_decomposition", "config": cfg_path.name, "run": str(run),
           "yield_scale": scale, "variants": {}}  # fmt: skip
    for name, (smp, yy, gg, (sc, nuis)) in variants.items():
        settings = ScanSettings(
            geometry=gg, yields=yy, n_pot=rc.n_pot * sc, signal_nuisances=nuis,
            channels=tuple(rc.channels), background=rc.background,
            background_kappa=rc.background_kappa, observed=None,
            n_pot_unc=rc.n_pot_rel_uncertainty, efficiency_uncertainty=rc.efficiency_uncertainty,
            cl=rc.cl, method=rc.method, samples=rc.samples, seed=cfg.seed,
        )  # fmt: skip
        # a sampler whose mass range starts above the grid's (the truth's γ* from the dimuon
        # cocktail, against a yield from 10 MeV) is scanned over its own range only
        m_lo = getattr(smp, "mass_range", None)
        row = masses >= m_lo[0] - 1e-9 if m_lo is not None else np.ones(masses.size, bool)
        elo, ehi = np.full(masses.size, np.nan), np.full(masses.size, np.nan)
        res = scan(masses[row], eps, sampler=smp, settings=settings)
        elo[row], ehi[row] = res.boundaries["0"]
        ex = np.isfinite(elo)
        runs = _contiguous(masses, ex)
        rng = ", ".join(f"{a:.3f}-{b:.3f}" for a, b in runs) if runs else "none"
        if not row.all():
            rng += f" (scanned from {masses[row].min():.3f})"
        cells = []
        for m in show:
            i = int(np.argmin(np.abs(masses - m)))
            cells.append(f"{elo[i]:.2e}-{ehi[i]:.2e}" if np.isfinite(elo[i]) else "-")
        print(f"{name:48s} {rng:24s} " + " ".join(f"{c:>22s}" for c in cells))
        out["variants"][name] = {
            "excluded_masses": [float(masses[ex].min()), float(masses[ex].max())]
            if ex.any() else None,
            "excluded_ranges": [[float(a), float(b)] for a, b in runs],
            "scanned_from": float(masses[row].min()),
            "eps_band": {f"{m:g}": [float(elo[i]), float(ehi[i])] if np.isfinite(elo[i]) else None
                         for m, i in ((m, int(np.argmin(np.abs(masses - m)))) for m in show)},
        }  # fmt: skip
    print(json.dumps(out))


if __name__ == "__main__":
    main()
