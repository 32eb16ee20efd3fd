"""What the data inside F say about the fall of the γ* spectrum towards the beam energy: the
profile likelihood of the model × (1 − E/E_beam)^n in the power n.

Claim (a measurement): refitted to a run's pairs inside the spectrometer's fiducial region
(ȳ and σ_y free at each n, the groups' T and m_T powers at the nominal fit's), the model's
Kish-scaled negative log-likelihood is lowest at n = 0 on both mocks: the spectrometer's F
prefers no fall, while PYTHIA's far-forward γ* do fall (docs/validation/closure.md). With
``--fit below_seam``, the model below the seam fitted to the electron arm's pairs, which see
further forward: lowest at n = 0 on the parametric mock, near n = 1 on the PYTHIA mock (the
arm sees the fall begin).

Usage:
    python validation/scripts/extrapolation_xf_profile.py --config CFG --run DIR
        [--fit spectrometer|below_seam] [--powers 0 1 2 3 4 6]
``DIR``: a finished run of the config ``CFG`` (``gammastar run analysis/na60_like_both.yaml``
or ``analysis/na60_like_pythia.yaml``; its pairs and ``yields.json``). Prints one row per n
(ΔNLL_eff, ȳ, σ_y) and one JSON line.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np


def _pairs_and_region(cfg, fit: str, doc: dict):
    """The pairs the yields stage fits (m, p_T, y, weight), the region, and the bin edges of
    the run's fit (``yields.json``)."""
    from gammastar.config import flavour_config
    from gammastar.corrections.pair_acceptance import fiducial_from_config
    from gammastar.yields.inputs import read_yield_inputs

    both = len(cfg.input.flavours) > 1
    ex = doc["extrapolation"]
    if fit == "below_seam":
        from gammastar.yields.below_seam import below_seam_region, below_seam_weights

        fc = flavour_config(cfg, "e") if both else cfg
        edges = np.asarray(ex["below_seam"]["bin_edges"], dtype=np.float64)
        pairs = read_yield_inputs(fc, "e" if both else None).pairs
        region = below_seam_region(fc, float(edges[-1]))
        below = pairs[pairs["m"].to_numpy() < edges[-1]]
        w = below_seam_weights(below, region)
        return fc, (below["m"], below["pT"], below["y"], w), region, edges
    fc = flavour_config(cfg, "mu") if both else cfg
    if both:
        ex = doc["flavours"]["mumu"]["extrapolation"]
    edges = np.asarray(ex["bin_edges"], dtype=np.float64)
    pairs = read_yield_inputs(fc, "mu" if both else None).pairs
    return (
        fc,
        (pairs["m"], pairs["pT"], pairs["y"], pairs["weight"]),
        fiducial_from_config(fc),
        edges,
    )


def profile(cfg, fit: str, powers: list[float], doc: dict) -> list[dict[str, float]]:
    """Per power n, the Kish-scaled NLL above its minimum over ``powers`` and the fitted ȳ,
    σ_y (the joint fit's groups and reference samples, as ``fit_extrapolation`` makes them)."""
    from gammastar.yields.extrapolation.errors import _fit_rapidity, pt_power_of
    from gammastar.yields.extrapolation.fitting import (
        FitSettings,
        _fit_pairs,
        _joint_fit,
        _mass_groups,
    )
    from gammastar.yields.extrapolation.likelihood import nll_and_grad
    from gammastar.yields.extrapolation.model import FORMS

    fc, (m, pt, y, w), region, edges = _pairs_and_region(cfg, fit, doc)
    settings = FitSettings.from_config(fc)
    if fit == "below_seam":
        settings = dataclasses.replace(settings, y_sigma=None, y_sigma_source=None)
    settings = dataclasses.replace(settings, y_mean=None, y_mean_auto=False)
    power = pt_power_of(settings.pt_power)
    pairs = _fit_pairs(np.asarray(m), np.asarray(pt), np.asarray(y), np.asarray(w), edges)
    nominal = _joint_fit(
        pairs, _mass_groups(pairs, edges.size - 1), region, edges, (settings, power)
    )
    wsum = sum(float(np.sum(d[3])) for d in nominal.data)
    kish = wsum**2 / sum(float(np.sum(d[3] ** 2)) for d in nominal.data)
    rows = []
    for n in powers:
        # n = 0: the factor's form with a vanishing power (the same numpy path as the others)
        form = dataclasses.replace(FORMS["xf_suppressed"], x_power=max(float(n), 1e-12))
        form = form.at_beam(fc.beam.energy)
        x = _fit_rapidity(nominal, form, None, None)
        nll, _ = nll_and_grad(x, nominal.data, None, None, form, nominal.power)
        rows.append({"n": float(n), "nll_eff": float(nll) * kish, "y_mean": float(x[0]),
                     "y_sigma": float(x[1])})  # fmt: skip
    best = min(r["nll_eff"] for r in rows)
    for r in rows:
        r["delta_nll_eff"] = r.pop("nll_eff") - best
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, required=True, help="the run's analysis config")
    ap.add_argument("--run", type=Path, required=True, help="the run (its output directory)")
    ap.add_argument("--fit", choices=["spectrometer", "below_seam"], default="spectrometer")
    ap.add_argument("--powers", type=float, nargs="+", default=[0, 1, 2, 3, 4, 6])
    args = ap.parse_args()
    from gammastar.config import load_config

    cfg = load_config(args.config).model_copy(update={"output": str(args.run.resolve())})
    doc = json.loads((args.run / "yields.json").read_text())
    rows = profile(cfg, args.fit, args.powers, doc)
    print(f"{'n':>4s} {'dNLL_eff':>10s} {'y_mean':>7s} {'y_sigma':>7s}")
    for r in rows:
        print(f"{r['n']:4g} {r['delta_nll_eff']:10.1f} {r['y_mean']:7.3f} {r['y_sigma']:7.3f}")
    print(json.dumps({"study": "extrapolation_xf_profile", "run": str(args.run), "fit": args.fit,
                      "rows": rows}))  # fmt: skip


if __name__ == "__main__":
    main()
