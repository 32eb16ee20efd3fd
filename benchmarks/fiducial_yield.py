"""The fiducial yield Y_F of demo-sized realisations against the generator's truth, taken apart.

``benchmarks/coverage_parts.py`` located the coverage's 0.6 GeV shortfall in the yield part
c·Y_F/(Y_t f_t) of the realisations drawn with the harder p_T form (docs/coverage.md, session
24), pooled over drawn rapidity widths and with each realisation's own flow. This script
measures that part on its own, at one stated mock (``--pt-form`` a, the mesons' m_T power;
``--y-sigma``, their rapidity width, by default the analysis's stated σ_y so that the
extrapolation's f_F is not tested against a drawn width), on ``--realisations`` runs of the
config (generate → select → yields; no flow), and splits each run's ratio at each mass into

* ``Y``, ``f``, ``YF``: the chain's full-phase-space yield Y(m), its f_F(m) and Y·f_F over the
  truth's (Y_t at the data's mass resolution, as ``coverage.py``'s truth, and f_t, the
  generator's γ* at mass m inside the run's F);
* ``closure``: the signal-tagged pairs' 1/(A ε) inside F over the run's own truth tree's 1/A
  inside F (efficiency and per-pair acceptance at the same λ_θ; ``resolution_migration.py
  --runs``), and ``subtraction``: all pairs' weights inside F over the signal pairs' (the
  like-sign subtraction);
* ``acc_measured``, ``acc_fitted``, ``acc_iso``: the run's own truth-tree γ* (true mass in a
  ±``--window`` slice) Σ 1/A inside F over their generated number × f_t, with A at the run's
  measured λ_θ(m) (the acceptance's: with ``--lambda-simulation`` the corrected one), at the
  fit's own λ_θ(m) (before ``unfold.polarisation_correction``; without it the same) and at
  λ_θ = 0: the per-pair acceptance correction against the true count; their ratios are what
  the λ_θ moves the yield by;
* ``lambda_theta``, ``lambda_fitted``: the λ_θ the run's acceptance used and the fit's own, in
  the polarisation bin that holds the mass (the acceptance interpolates λ_θ between the bins'
  centres, so near an edge A mixes two),

and gives the generator's own λ_θ of the γ* inside F at each mass (:func:`truth_lambdas` of
the decay angles in the pair's helicity frame, true muons): the λ_θ a correct measurement
returns. Means over the realisations with their standard errors. The realisations are
``<workdir>/seed<S>``; ``--reuse`` keeps one whose mock file was generated with the same mock
parameters (``coverage.reuse_mismatch``), and redoes its selection and yields when its λ_θ
correction is not the one asked for (:func:`correction_mismatch`).

Usage: ``python benchmarks/fiducial_yield.py [--config analysis/na60_like.yaml] --workdir W
[--pt-form 1.2247] [--y-sigma 1.25] [--realisations 20] [--first-seed 2000]`` (about 25 s
per realisation on one core, nearly all of it the chain, and 1 min for the truth). The last line is one JSON object.
"""

from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/ holds select.py: keep it off sys.path so the stdlib `select` is found
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import importlib.util
import json
import math
import time
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


coverage = _load("coverage")
resolution_migration = _load("resolution_migration")

KEYS = (
    "Y",
    "f",
    "YF",
    "closure",
    "subtraction",
    "acc_measured",
    "acc_fitted",
    "acc_iso",
    "lambda_theta",
    "lambda_fitted",
)


def stated_mock(base: Any, pt_form: float | None, y_sigma: float | None) -> Any:
    """``base`` with the mock's p_T form and rapidity width replaced where given; the
    rapidity width defaults to the analysis's stated σ_y (``yields.extrapolation_y_sigma``)."""
    if y_sigma is None and base.yields.extrapolation_y_sigma is not None:
        y_sigma = float(base.yields.extrapolation_y_sigma.value)
    upd = {k: float(v) for k, v in (("pt_mt_power", pt_form), ("rapidity_sigma", y_sigma))
           if v is not None}  # fmt: skip
    if not upd:
        return base
    if (why := coverage.pt_mt_power_error(upd.get("pt_mt_power", 0.0))) is not None:
        raise SystemExit(f"fiducial_yield: --pt-form {why}")
    return base.model_copy(update={"mock": base.mock.model_copy(update=upd)})


def with_lambda_simulation(base: Any, paths, generated_tree: str | None = None) -> Any:
    """``base`` whose selection corrects its measured λ_θ with the simulation ``paths``
    (``unfold.polarisation_correction``; its truth side from ``generated_tree`` when given)."""
    from gammastar.config import PolarisationCorrectionConfig

    pc = PolarisationCorrectionConfig(simulation=[str(Path(p).resolve()) for p in paths],
                                      generated_tree=generated_tree)  # fmt: skip
    return base.model_copy(update={"unfold": base.unfold.model_copy(
        update={"polarisation_correction": pc})})  # fmt: skip


def correction_mismatch(run: Path, cfg: Any) -> str | None:
    """Why the selection in ``run`` is not ``cfg``'s λ_θ correction (``--reuse`` keeps a run's
    mock file; its selection must be redone when ``--lambda-simulation`` or
    ``--generated-tree`` differ), or ``None``: the wanted ``unfold.polarisation_correction``
    against its ``select.json`` → ``polarisation.selection_correction`` (files and truth side)."""
    try:
        pol = json.loads((run / "select.json").read_text()).get("polarisation") or {}
    except (OSError, ValueError) as e:
        return f"no readable select.json ({type(e).__name__})"
    have, pc = pol.get("selection_correction"), cfg.unfold.polarisation_correction
    if pc is None:
        return None if have is None else "it corrects λ_θ, this run does not"
    if have is None:
        return "it does not correct λ_θ"
    if have.get("simulation") != [str(cfg.resolve(p)) for p in pc.simulation]:
        return "another λ_θ simulation"
    if have.get("truth_tree") != (pc.generated_tree or pc.tree):  # absent: made before the key
        return f"its truth side's tree is {have.get('truth_tree', 'not recorded')}"
    return None


def rerun_selection(cfg: Any) -> None:
    """select → yields again on a realisation's own mock file."""
    import gammastar

    gammastar.select(cfg, force=True)
    gammastar.compute_yields(cfg, force=True, plots=False, theory=False)


def truth_lambda(cfg: Any, fiducial: Any, masses, window: float, *, sources: int, seed: int):
    """The generator's λ_θ (± its error) of the γ* inside F (λ_θ = 0) within ±``window`` of
    each mass: :func:`gammastar.corrections.polarisation.truth_lambdas` of the true muons' helicity-frame
    angles (μ⁺ as lepton 1, the convention of the selection)."""
    from gammastar.corrections.polarisation import helicity_angles, truth_lambdas
    from gammastar.mock.generate import MUON_GSTAR, MockGenerator

    iso = type(fiducial)(fiducial.acceptance.with_lambda(0.0), fiducial.min_acceptance)
    got: dict[str, list] = {"m": [], "c": [], "phi": []}
    for ch in MockGenerator(cfg, seed=seed).chunks(sources):
        s = ch.sources
        keep = np.isin(s.channel, list(MUON_GSTAR))
        g = s.gstar[:, keep]
        near = np.zeros(g.shape[1], bool)
        for m in masses:
            near |= np.abs(g[4] - m) < window
        near &= iso.contains(g[4], np.hypot(g[0], g[1]), g[3])
        plus = (s.charge1[keep] > 0)[near]
        mu1, mu2 = s.mu1[:, keep][:, near], s.mu2[:, keep][:, near]
        c, phi = helicity_angles(np.where(plus, mu1, mu2), np.where(plus, mu2, mu1))
        for k, v in (("m", g[4, near]), ("c", c), ("phi", phi)):
            got[k].append(v)
    m, c, phi = (np.concatenate(got[k]) for k in ("m", "c", "phi"))
    out = {}
    for x in masses:
        t = truth_lambdas(m, c, phi, [x - window, x + window])
        out[x] = (float(t["lambda_theta"][0]), float(t["lambda_theta_err"][0]))
    return out


def measured_lambda(polarisation: dict[str, Any], m: float) -> float:
    """The λ_θ a selection measured (its ``select.json`` ``polarisation``) in the bin holding
    ``m`` (the ends clip)."""
    edges = np.asarray(polarisation["mass_edges"], float)
    b = int(np.clip(np.searchsorted(edges, m, side="right") - 1, 0, edges.size - 2))
    return float(polarisation["lambda_theta"][b])


def acceptance_closure(rows, weights, gen, fine, f_t: float, m: float, window: float) -> float:
    """Σ ``weights`` (1/A inside F, :func:`gammastar.corrections.migration.fiducial_weights`) of the run's
    truth-tree γ* of true mass within ±``window`` of ``m``, over their generated number ×
    ``f_t``: the per-pair acceptance correction against the truth."""
    from gammastar.corrections.migration import binned

    k = np.abs(rows["m_true"] - m) < window
    n = binned(gen, fine, np.array([m - window, m + window]))[0]
    return float(weights[k].sum() / (n * f_t)) if n > 0 and f_t > 0 else float("nan")


def truth_yield(g: Any, edges, *, m_lepton: float, smear: Any, seed: int) -> Any:
    """The truth's A′ yield per POT per ε² in the yields' bins ``edges``, its γ* smeared with
    the data's mass response (as ``coverage.truth_nsig``; one for all realisations)."""
    from gammastar.mock.closure import truth_aprime_yield
    from gammastar.source.production import Yields

    ty = truth_aprime_yield(g, edges, m_lepton=m_lepton, seed=seed, smear=smear)
    return Yields(ty.mass, ty.per_pot_per_eps2, ty.stat_err, {})


def one_run(run: Path, seed: int, g: Any, truth: tuple[Any, Any], masses, window: float):
    """The split of one finished realisation (module docstring) as a dict; ``truth`` the
    yield bins' edges and the truth's yield in them (:func:`truth_yield`)."""
    from gammastar.corrections.migration import fiducial_weights, read_simulation
    from gammastar.corrections.pair_acceptance import FiducialRegion
    from gammastar.mock.truth import TruthSampler
    from gammastar.source.production import load_yields
    from gammastar.yields.extrapolation import Extrapolation

    y = load_yields(run / "yields.json")
    ex = Extrapolation.from_dict(y.extrapolation)
    edges, yt = truth
    if ex.edges.shape != edges.shape or not np.allclose(ex.edges, edges, rtol=0, atol=1e-12):
        raise SystemExit(f"fiducial_yield: {run}: other yield bins than the first run's")
    fid = FiducialRegion.from_dict(y.extrapolation["fiducial"])
    iso = FiducialRegion(fid.acceptance.with_lambda(0.0), fid.min_acceptance)
    sim = read_simulation([run / "mock.root"])
    rows, gen, fine = sim
    parts = resolution_migration.run_parts(run, ex.edges, fid, simulation=sim)
    w_fid, w_iso = fiducial_weights(rows, fid), fiducial_weights(rows, iso)
    pol = json.loads((run / "select.json").read_text())["polarisation"]
    # the fit's own λ_θ before unfold.polarisation_correction (the same as the used one without)
    sc = pol.get("selection_correction")
    fitted = pol if sc is None else {**pol, "lambda_theta": sc["lambda_theta_measured"]}
    fit_fid = FiducialRegion(fid.acceptance.with_lambda(fid.acceptance.lambda_nodes(
        fitted["mass_edges"], [np.nan if x is None else x for x in fitted["lambda_theta"]])),
        fid.min_acceptance)  # fmt: skip
    w_fit = fiducial_weights(rows, fit_fid)
    half = TruthSampler(g).half_width
    out: dict[str, Any] = {"seed": seed}
    for m in masses:
        win = g.in_window(m, half)
        at_m = np.full(win.qT.size, m)
        f_t = float(fid.contains(at_m, win.qT, win.E).mean())
        f_iso = float(iso.contains(at_m, win.qT, win.E).mean())
        f_fit = float(fit_fid.contains(at_m, win.qT, win.E).mean())
        y_dd, y_t, f_dd = float(y.at([m])[0][0]), float(yt.at([m])[0][0]), float(ex.at(m)[0])
        b = int(np.clip(np.searchsorted(ex.edges, m, side="right") - 1, 0, ex.edges.size - 2))
        out[str(m)] = {
            "Y": y_dd / y_t, "f": f_dd / f_t, "YF": y_dd * f_dd / (y_t * f_t),
            "closure": float(parts["fiducial_closure"][b]),
            "subtraction": float(parts["subtraction"][b]),
            "acc_measured": acceptance_closure(rows, w_fid, gen, fine, f_t, m, window),
            "acc_fitted": acceptance_closure(rows, w_fit, gen, fine, f_fit, m, window),
            "acc_iso": acceptance_closure(rows, w_iso, gen, fine, f_iso, m, window),
            "lambda_theta": measured_lambda(pol, m),
            "lambda_fitted": measured_lambda(fitted, m),
        }  # fmt: skip
    return out


def summary(per: list[dict[str, Any]], masses) -> dict[str, dict[str, list[float]]]:
    """Per mass and key: [mean, its standard error] over the realisations."""
    out = {}
    for m in masses:
        out[str(m)] = {}
        for k in KEYS:
            x = np.array([r[str(m)][k] for r in per], float)
            x = x[np.isfinite(x)]
            sem = float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else float("nan")
            out[str(m)][k] = [float(x.mean()) if x.size else float("nan"), sem]
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=REPO / "analysis" / "na60_like.yaml")
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--pt-form", type=float, default=None,
                    help="the mock mesons' m_T power a (default: the config's)")  # fmt: skip
    ap.add_argument("--y-sigma", type=float, default=None,
                    help="the mock's rapidity width (default: the analysis's stated σ_y)")  # fmt: skip
    ap.add_argument("--realisations", type=int, default=20)
    ap.add_argument("--first-seed", type=int, default=2000)
    ap.add_argument("--masses", type=float, nargs="+", default=[0.3, 0.6, 0.9])
    ap.add_argument("--window", type=float, default=0.03, help="± GeV of the mass slices")
    ap.add_argument("--truth-sources", type=int, default=20_000_000)
    ap.add_argument("--seed", type=int, default=99, help="the truth's seed")
    ap.add_argument("--reuse", action="store_true")
    ap.add_argument("--lambda-simulation", type=Path, nargs="+", default=[],
                    help="simulation files: the runs correct their measured λ_θ with them "
                         "(unfold.polarisation_correction; e.g. resolution_migration.py's)")  # fmt: skip
    ap.add_argument("--generated-tree", default=None,
                    help="with --lambda-simulation: its generator-level tree for the truth side "
                         "(the mock's truth_generated)")  # fmt: skip
    args = ap.parse_args(argv)
    if args.generated_tree is not None and not args.lambda_simulation:
        ap.error("--generated-tree needs --lambda-simulation (the files that hold the tree)")
    if args.realisations < 2:
        ap.error("--realisations must be at least 2 (the means' errors)")

    from gammastar.config import load_config
    from gammastar.corrections.pair_acceptance import fiducial_from_config

    t0 = time.perf_counter()
    base = stated_mock(load_config(args.config), args.pt_form, args.y_sigma)
    if args.lambda_simulation:
        base = with_lambda_simulation(base, args.lambda_simulation, args.generated_tree)
    g = coverage.generator_gstar(base, sources=args.truth_sources, seed=args.seed)
    smear = coverage.mass_response(base, {}, sources=args.truth_sources // 5, seed=args.seed + 1)[0]
    lam_t = truth_lambda(base, fiducial_from_config(base, lambda_theta=0.0), args.masses,
                         args.window, sources=args.truth_sources // 2, seed=args.seed + 2)  # fmt: skip
    print(f"truth: {args.truth_sources:.2g} sources, {time.perf_counter() - t0:.0f} s", flush=True)
    per, truth = [], None
    for s in range(args.first_seed, args.first_seed + args.realisations):
        run = args.workdir / f"seed{s}"
        cfg = base.model_copy(update={"seed": s, "output": str(run)})
        if not (args.reuse and coverage.reuse_mismatch(run, cfg) is None):
            coverage.realisation(cfg)
        elif (why := correction_mismatch(run, cfg)) is not None:  # the same mock file
            print(f"seed {s}: select and yields again ({why})", flush=True)
            rerun_selection(cfg)
        if truth is None:  # the yields' bins, the same for every realisation of the config
            edges = np.asarray(json.loads((run / "yields.json").read_text())["extrapolation"]
                               ["bin_edges"], float)  # fmt: skip
            truth = edges, truth_yield(g, edges, m_lepton=base.input.lepton_mass, smear=smear,
                                       seed=args.seed + 3)  # fmt: skip
        per.append(one_run(run, s, g, truth, args.masses, args.window))
        r = per[-1][str(args.masses[len(args.masses) // 2])]
        print(f"seed {s}: " + ", ".join(f"{k} {r[k]:.3f}" for k in KEYS), flush=True)
    summ = summary(per, args.masses)
    mock = base.mock
    print(f"\n{len(per)} realisations, mock p_T form a = {mock.pt_mt_power:g}, σ_y = "
          f"{mock.rapidity_sigma:g}; means ± their errors\n")  # fmt: skip
    print("| m (GeV) | Y/Y_t | f_F/f_t | Y_F/(Y_t f_t) | pairs / truth tree in F | "
          "subtracted / signal | Σ1/A (measured λ_θ) / N f_t | Σ1/A (the fit's own λ_θ) / N f_t "
          "| Σ1/A (λ_θ = 0) / N f_t | λ_θ measured | λ_θ fitted | λ_θ truth in F |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for m in args.masses:
        v = summ[str(m)]
        cells = [f"{v[k][0]:.4f} ± {v[k][1]:.4f}" for k in KEYS[:-2]]
        cells += [f"{v[k][0]:+.3f} ± {v[k][1]:.3f}" for k in ("lambda_theta", "lambda_fitted")]
        cells.append(f"{lam_t[m][0]:+.3f} ± {lam_t[m][1]:.3f}")
        print(f"| {m:.2f} | " + " | ".join(cells) + " |")
    out = {"benchmark": "fiducial_yield", "config": str(args.config),
           "pt_form": float(mock.pt_mt_power), "y_sigma": float(mock.rapidity_sigma),
           "realisations": len(per), "first_seed": args.first_seed, "truth_seed": args.seed,
           "truth_sources": args.truth_sources, "window": args.window,
           "lambda_simulation": [str(p) for p in args.lambda_simulation],
           "generated_tree": args.generated_tree,
           "summary": summ, "truth_lambda_theta": {str(m): lam_t[m] for m in args.masses},
           "per_run": per, "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip
    print(json.dumps(out))
    return out


if __name__ == "__main__":
    main()
