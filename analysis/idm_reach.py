"""Analysis script: the iDM expected reach in (m₁, y) from a finished NA60-like run (docs/howto/dark-sectors.md).

A′ yields of ``<run>/yields.json`` carried to a thick dump (× P_int(dump)/P_int(0.01)), 1e18
POT, background-free with a 20% N_POT uncertainty; A′ kinematics from ``<run>/flow`` (or the
analytic sampler with ``--parametric``); α_D = 0.1, Δ = 0.1, m_A′ = 3m₁; the paper's mock
detector as a decay volume from 5 m, both leptons in 35–120 mrad with E > 1 GeV.

Usage: PYTHONPATH=src python analysis/idm_reach.py [--run runs/na60_like] [--parametric]
(the function-level entry is gammastar reach-idm; this script keeps the fixed settings above.)
The last line of the output is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from gammastar.darksector.idm import (
    IdmReachSettings,
    SoftLeptonSelection,
    idm_reach,
    plot_idm_reach,
)
from gammastar.physics.target import yield_scale
from gammastar.source.production import load_yields


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default="runs/na60_like")
    ap.add_argument("--parametric", action="store_true")
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--figure", default=None, help="write the reach plot (PNG) here")
    args = ap.parse_args()
    t0 = time.time()
    y = load_yields(f"{args.run}/yields.json")
    scale = yield_scale("dump", float(y.meta.get("target_interaction_lengths", 0.01)))
    if args.parametric:
        from gammastar.physics.sampling import ParametricSampler

        sampler, kin = ParametricSampler(), "parametric"
    else:
        from gammastar.flow.model import load

        sampler, kin = load(f"{args.run}/flow"), "flow"
    sel = SoftLeptonSelection(z_range=(5.0, 1e4), theta_min=0.035, theta_max=0.120, min_energy=1.0)
    m1 = np.array([0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35])
    r = idm_reach(
        m1,
        aprime_yield=lambda m: y.at(m)[0] * scale,
        sampler=sampler,
        selection=sel,
        settings=IdmReachSettings(
            n_pot=1e18, background=0.0, n_pot_rel_uncertainty=0.2, n=args.n, seed=7
        ),
    )
    if args.figure:
        plot_idm_reach(r, args.figure)
    for i, m in enumerate(m1):
        print(f"m1 {m:.3f}  y_low {r['y_low']['0'][i]}  y_high {r['y_high']['0'][i]}")
    print(json.dumps({"kinematics": kin, "seconds": round(time.time() - t0, 1), **r}))


if __name__ == "__main__":
    main()
