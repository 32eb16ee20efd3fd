"""Speed of the yields stage on the demo (analysis/na60_like_both.yaml): the whole stage, and
its extrapolation fit against the reference implementation in this script.

The stage (``compute_yields``: both channels, the μμ extrapolation fit with its sandwich,
model variations and external σ_y, the 14 λ_θ refits, figures) is timed as it runs in
``gammastar yields``. The λ_θ refits' reference samples (4·10⁵ γ* of the broad reference model
per fit group and move, at the move's mass, inside its fiducial region) are timed as the stage
makes them, the random numbers drawn once per group for all its moves
(``ParametricSampler.draws``/``sample_at``) and ``contains`` asked only about the points whose
acceptance-table cells can pass (``gammastar.yields._fiducial_bound``), against the reference,
``ParametricSampler.sample`` and ``contains`` on every point for each: here 12 of the μμ groups
(evenly spread) at 4 masses within ±0.3 per mille of their own (as the moves shift a group's
mean mass, by up to 0.35 per mille; a group meets 2–6 of the 14 moves), the same kept points
either way. The fit's core, each μμ fit group's (T, a) at the demo's fixed ȳ and
σ_y, is timed twice on the same groups: as the stage fits it (one compiled pass per
evaluation for the likelihood, its gradient and its Hessian; Newton's method) and as the
reference, the numpy formulas of ``gammastar.yields.extrapolation`` (a model form without a
compiled rapidity density takes them) minimised by L-BFGS-B, as the stage fitted before
(BLAS held to one thread in both: with a threaded OpenBLAS, L-BFGS-B's small LAPACK calls
alone cost ~10× more CPU time, gammastar.core.threads.single_thread_blas). The two must land
on the same minimum: L-BFGS-B stops at ftol = 10⁻¹⁴, ≈ 10⁻⁵ from it along a
group's weakly constrained direction, far inside the parameters' errors (σ_a ≳ 0.5).

Usage: python benchmarks/yields.py [--run DIR] [--events 2500000] [--repeat 2]
Without --run it generates and selects the demo's mock into a fresh directory (~20 s). Timings
are CPU time (user + sys) and wall time, the least of ``--repeat`` runs; on a shared machine
the wall time follows the load. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

CONFIG = REPO / "analysis" / "na60_like_both.yaml"


def _clock():
    t = os.times()
    return time.perf_counter(), t.user + t.system


def make_run(events: int, out: Path) -> Path:
    from gammastar import generate, select
    from gammastar.config import load_config

    cfg = load_config(CONFIG).model_copy(update={"output": str(out)})
    generate(cfg, events=events)
    select(cfg)
    return out


def stage_time(run: Path, repeat: int) -> tuple[float, float]:
    """(wall, CPU) seconds of ``compute_yields`` on ``run``, the least of ``repeat``."""
    from gammastar.config import load_config
    from gammastar.yields.stage import compute_yields

    cfg = load_config(CONFIG).model_copy(update={"output": str(run)})
    best = (np.inf, np.inf)
    for _ in range(repeat):
        w0, c0 = _clock()
        compute_yields(cfg, force=True, plots=True)
        w1, c1 = _clock()
        best = (min(best[0], w1 - w0), min(best[1], c1 - c0))
    return best


def fit_groups(run: Path):
    """The μμ extrapolation's fit groups as the stage builds them, with the fixed ȳ, σ_y and
    the stage's starting point."""
    from gammastar.config import flavour_config, load_config
    from gammastar.corrections.pair_acceptance import fiducial_from_config
    from gammastar.physics.kinematics import cm_rapidity
    from gammastar.yields.extrapolation import likelihood as fit
    from gammastar.yields.extrapolation import model, reference
    from gammastar.yields.inputs import read_yield_inputs

    cfg = flavour_config(load_config(CONFIG).model_copy(update={"output": str(run)}), "mu")
    pairs = read_yield_inputs(cfg, "mu").pairs
    m, pt, y, w = (pairs[k].to_numpy() for k in ("m", "pT", "y", "weight"))
    use = (w != 0) & np.isfinite(y) & (pt > 0)
    m, pt, y, w = m[use], pt[use], y[use], w[use]
    fiducial = fiducial_from_config(cfg)
    edges = np.linspace(cfg.selection.mass_min, cfg.selection.mass_max,
                        int(cfg.unfold.mass_bins) + 1)  # fmt: skip
    idx = np.searchsorted(edges, m, side="right") - 1
    sw = np.bincount(idx, weights=w, minlength=edges.size - 1)
    sw2 = np.bincount(idx, weights=w**2, minlength=edges.size - 1)
    groups, cur, a, b = [], [], 0.0, 0.0  # fit_extrapolation's grouping (MIN_EFF_PAIRS)
    for i in range(edges.size - 1):
        cur.append(i)
        a, b = a + sw[i], b + sw2[i]
        if b > 0 and a > 0 and a * a / b >= model.MIN_EFF_PAIRS:
            groups.append(cur)
            cur, a, b = [], 0.0, 0.0
    if cur:
        groups[-1].extend(cur)
    data = []
    for g in groups:
        k = (idx >= g[0]) & (idx <= g[-1])
        m_c = float(np.sum(w[k] * m[k]) / np.sum(w[k]))
        data.append(fit.FitGroup((m[k], pt[k], y[k], w[k], reference.ReferenceSample(fiducial, m_c, len(data)))))
    ys = cfg.yields.extrapolation_y_sigma
    return data, cm_rapidity(cfg.beam.energy), ys.value, fiducial


def reference_times(data, fiducial, n_groups: int = 12) -> dict:
    """The reference samples of ``n_groups`` fit groups at 4 masses around their own: as the
    λ_θ refits make them (one draw per group, the fiducial bound) and as the reference (a
    sample and ``contains`` on every point per mass), CPU seconds, and whether the kept points
    agree."""
    from gammastar.physics import kinematics
    from gammastar.physics.sampling import ParametricSampler
    from gammastar.yields.extrapolation import reference

    moves = 1.0 + 1e-4 * np.array([-3.0, -1.0, 1.0, 3.0])
    out, kept = {}, {}
    for name in ("stage", "reference"):
        w0, c0 = _clock()
        got = []
        for k in np.unique(np.linspace(0, len(data) - 1, n_groups).round().astype(int)):
            k, d = int(k), data[k]
            draws = reference.reference_draws(k) if name == "stage" else None
            for f in moves:
                m = d[4].m * f
                if name == "stage":
                    ref = reference.ReferenceSample(fiducial, m, k, draws)
                    got.append((ref.pt, ref.y))
                    continue
                s = ParametricSampler(*reference.REFERENCE).sample(m, reference.REFERENCE_SAMPLES, seed=k)
                keep = fiducial.contains(np.full(s["qT"].size, m), s["qT"], s["E"])
                qt, e = s["qT"][keep], s["E"][keep]
                pz = np.sqrt(np.clip(e**2 - m**2 - qt**2, 0.0, None))
                got.append((qt, kinematics.rapidity_pz(pz, e)))
        w1, c1 = _clock()
        out[name] = {"cpu_s": c1 - c0, "wall_s": w1 - w0}
        kept[name] = got
    out["n"] = len(kept["stage"])
    out["identical"] = all(
        np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
        for a, b in zip(kept["stage"], kept["reference"], strict=True)
    )
    return out


def fit_times(data, mu, sigma) -> dict:
    """The groups' (T, a) fits: the stage's (compiled, Newton) and the reference (numpy
    formulas, L-BFGS-B), CPU seconds and the largest differences of the results."""
    from gammastar.yields.extrapolation import likelihood as fit
    from gammastar.yields.extrapolation import model

    reference_form = dataclasses.replace(model.NOMINAL, y_kernel=None)  # the numpy formulas
    out = {}
    for name, form in (("stage", model.NOMINAL), ("reference", reference_form)):
        w0, c0 = _clock()
        if name == "stage":
            x, _ = fit.fit_joint(data, (0.2, mu, sigma, 0.0), sigma=sigma, mu_fixed=mu,
                                   power=None)  # fmt: skip
            fits = [(x[2 + k], x[2 + len(data) + k]) for k in range(len(data))]
        else:
            fits = [tuple(fit._lbfgs([d], [0.2, 0.0], [model.BOUNDS[0], model.POWER_BOUNDS], sigma,
                                    mu, form, None)[0]) for d in data]  # fmt: skip
        w1, c1 = _clock()
        out[name] = {"cpu_s": c1 - c0, "wall_s": w1 - w0, "fits": np.array(fits)}
    d = np.abs(out["stage"]["fits"] - out["reference"]["fits"])
    out["max_abs_diff_T"], out["max_abs_diff_a"] = float(d[:, 0].max()), float(d[:, 1].max())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, help="a run directory selected with the demo config")
    ap.add_argument("--events", type=int, default=2_500_000)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run.resolve() if args.run else make_run(args.events, Path(tmp) / "run")
        wall, cpu = stage_time(run, args.repeat)
        data, mu, sigma, fiducial = fit_groups(run)
        refs = reference_times(data, fiducial)
        fits = fit_times(data, mu, sigma)
    ratio = fits["reference"]["cpu_s"] / fits["stage"]["cpu_s"]
    ref_ratio = refs["reference"]["cpu_s"] / refs["stage"]["cpu_s"]
    print(f"yields stage: {wall:.1f} s wall, {cpu:.1f} s CPU (least of {args.repeat})")
    print(f"reference samples, {refs['n']} (4 masses per group): stage "
          f"{refs['stage']['cpu_s']:.2f} s CPU, reference (sample and contains each) "
          f"{refs['reference']['cpu_s']:.2f} s: {ref_ratio:.1f}x, the same points: "
          f"{refs['identical']}")  # fmt: skip
    print(f"extrapolation fit, {len(data)} groups' (T, a): stage {fits['stage']['cpu_s']:.2f} s "
          f"CPU, reference (numpy, L-BFGS-B) {fits['reference']['cpu_s']:.2f} s: "
          f"{ratio:.1f}x")  # fmt: skip
    print(f"largest difference of the fits: T {fits['max_abs_diff_T']:.2e} GeV, "
          f"a {fits['max_abs_diff_a']:.2e}")  # fmt: skip
    print(json.dumps({
        "benchmark": "yields", "stage_wall_s": round(wall, 2), "stage_cpu_s": round(cpu, 2),
        "fit_groups": len(data), "fit_cpu_s": round(fits["stage"]["cpu_s"], 3),
        "fit_reference_cpu_s": round(fits["reference"]["cpu_s"], 3),
        "fit_speedup": round(ratio, 2), "max_abs_diff_T": fits["max_abs_diff_T"],
        "max_abs_diff_a": fits["max_abs_diff_a"], "ref_samples": refs["n"],
        "ref_cpu_s": round(refs["stage"]["cpu_s"], 3),
        "ref_reference_cpu_s": round(refs["reference"]["cpu_s"], 3),
        "ref_speedup": round(ref_ratio, 2), "ref_identical": refs["identical"],
    }))  # fmt: skip


if __name__ == "__main__":
    main()
