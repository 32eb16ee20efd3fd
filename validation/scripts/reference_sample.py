"""The size of the extrapolation fit's reference sample (``REFERENCE_SAMPLES``).

Claim: the fiducial fraction f_F that the fit gives moves with the reference sample's seed by
less than a fifth of its statistical error in every mass bin (so that the sample's Monte Carlo
error, added in quadrature, changes f_F's error by at most 2%).

Generates the NA60-like mock (``analysis/na60_like.yaml``, ``--events`` sources), selects it
and computes its yields once (the fiducial route: the pairs inside the fiducial region and the
fit's mass bins), then fits the extrapolation again with ``--seeds`` reference seeds
(``FitSettings.seed``; each fit group's sample is drawn from seed + group). Per mass bin: the
standard deviation of f_F over the seeds against the fit's statistical error
(``fiducial_fraction_err_stat``).

Usage::

    python validation/scripts/reference_sample.py [--events 1000000] [--seeds 5] [--workdir DIR]

Prints the worst and median ratio; the last line is one JSON object (``met``); exits with
status 1 when the claim fails.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import tempfile
from pathlib import Path

import numpy as np

from gammastar.config import load_config
from gammastar.corrections.pair_acceptance import fiducial_from_config
from gammastar.mock.generate import generate_file
from gammastar.selection.stage import select
from gammastar.yields.extrapolation.fitting import FitSettings, fit_extrapolation
from gammastar.yields.extrapolation.reference import REFERENCE_SAMPLES
from gammastar.yields.inputs import read_yield_inputs
from gammastar.yields.stage import compute_yields

REPO = Path(__file__).resolve().parents[2]
LIMIT = 0.2
"""The claim: the seeds' spread of f_F below this fraction of its statistical error."""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--workdir", default=None)
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="reference_sample_")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    cfg = load_config(REPO / "analysis" / "na60_like.yaml")
    cfg = cfg.model_copy(update={"output": str(work)})
    generate_file(cfg, work / "mock.root", events=args.events, force=True)
    select(cfg, force=True)
    doc = compute_yields(cfg, force=True, plots=False, theory=False).document
    edges = np.asarray(doc["aprime"]["bin_edges"], dtype=float)
    pairs = read_yield_inputs(cfg).pairs
    cols = [pairs[c].to_numpy() for c in ("m", "pT", "y", "weight")]
    fiducial = fiducial_from_config(cfg)
    nominal = FitSettings.from_config(cfg)
    fractions, err = [], None
    for k in range(args.seeds):
        ex = fit_extrapolation(*cols, edges, fiducial,
                               settings=dataclasses.replace(nominal, seed=nominal.seed + 1000 * k))  # fmt: skip
        fractions.append(ex.fiducial_fraction)
        err = ex.fiducial_fraction_err_stat
    spread = np.std(np.asarray(fractions), axis=0, ddof=1)
    ratio = spread / np.asarray(err)
    worst, median = float(np.nanmax(ratio)), float(np.nanmedian(ratio))
    print(f"reference sample {REFERENCE_SAMPLES} points, {args.seeds} seeds, {edges.size - 1} bins:")
    print(f"spread of f_F / its statistical error: median {median:.3f}, worst {worst:.3f} "
          f"(claim: < {LIMIT})")  # fmt: skip
    print(json.dumps({"study": "reference_sample", "reference_samples": REFERENCE_SAMPLES,
                      "events": args.events, "seeds": args.seeds, "median_ratio": median,
                      "worst_ratio": worst, "limit": LIMIT, "met": worst < LIMIT}))  # fmt: skip
    if not worst < LIMIT:
        raise SystemExit(f"claim not met: the seeds move f_F by {worst:.3f} of its error")


if __name__ == "__main__":
    main()
