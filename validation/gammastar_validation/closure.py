"""Truth closure of the reach inputs on the mock: data-driven 𝓔(m, cτ) and N_sig vs the
generator's full-phase-space γ*.

:func:`reach_closure` compares, per detector geometry, mass and cτ, the acceptance and the
expected signal (per POT per ε² and per unit BR: Y(m)·𝓔(m, cτ)) that a run directory's
yields and flow give (with the fitted extrapolation outside the fiducial region, as
``gammastar reach`` uses them) with the same quantities from the generator's own γ*
(:mod:`gammastar_validation.truth`; the truth yield is taken at the data's mass resolution, which
the data-driven yield carries: no resolution unfolding, as in the paper; the response is the
mock detector's own, measured on the file's ``truth`` tree). It checks; it never
feeds a correction.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["make_run", "reach_closure", "truth_aprime_yield"]


def make_run(events: int, seed: int | None = None, workdir: Path | None = None, *,
             base: Any = None, mesons: Any = None, train: bool = True) -> Path:  # fmt: skip
    """Generate ``events`` mock sources of the config ``base`` (``seed``: default the
    config's; ``mesons``: the meson source, e.g. a PYTHIA pool shared with the truth), select,
    compute the yields and (``train``) train the flow into ``workdir`` (default: a fresh
    temporary directory); returns the run directory."""
    from gammastar.flow.stage import train as train_flow
    from gammastar.mock.generate import generate_file
    from gammastar.selection.stage import select
    from gammastar.yields.stage import compute_yields

    out = (workdir or Path(tempfile.mkdtemp(prefix="gammastar-closure-"))).resolve()
    out.mkdir(parents=True, exist_ok=True)
    cfg = base.model_copy(update={"output": str(out)})
    generate_file(cfg, out / "mock.root", events=events, seed=cfg.seed if seed is None else seed,
                  force=True, mesons=mesons)  # fmt: skip
    select(cfg, force=True)
    compute_yields(cfg, force=True, plots=False, theory=False)
    if train:
        train_flow(cfg, force=True)
    return out


def reach_closure(
    cfg: Any,
    geometries: dict[str, Any],
    masses: list[float],
    ctaus: Any,
    *,
    truth_sources: int = 4_000_000,
    samples: int = 40_000,
    seed: int = 11,
    inside: Any = None,
    mesons: Any = None,
) -> list[dict[str, Any]]:
    """Rows ``{geometry, mass, ctau, acc_dd, acc_truth, nsig_dd, nsig_truth, acc_err,
    acc_dd_err, nsig_dd_err, nsig_truth_err, nsig_pull, extrapolated_fraction,
    fiducial_fraction_dd, fiducial_fraction_dd_err, fiducial_fraction_truth, n_truth_window}``
    (N as Y·𝓔 per POT per ε²; ``n_truth_window`` the true γ* the truth side resamples).

    Errors (1σ, per row; rows of one geometry and mass share their samples, hence correlated):

    * ``nsig_dd_err``: the yield's statistical error (Σw², background subtraction included),
      the fit's f_F error carried through the extrapolated share x of N_sig
      (N = Y_F [𝓔_in + (1/f_F − 1) 𝓔_out] ⇒ δN/N = x δf_F / (f_F (1 − f_F))) and the
      binomial error of 𝓔 from ``samples`` draws; ``acc_dd_err`` the last two for 𝓔 alone
      (δ𝓔 = |𝓔_in − 𝓔_out| δf_F);
    * ``nsig_truth_err``: the truth yield's statistical error and the binomial error of 𝓔
      from ``samples`` draws out of ``n_truth_window`` γ* (resampling with replacement:
      1/n = 1/samples + 1/n_truth_window); ``acc_err`` the latter alone;
    * ``nsig_pull`` = (N_dd − N_truth)/√(δN_dd² + δN_truth²).

    Arguments:
        cfg: the analysis config of a finished run (yields.json and flow/ in its run dir).
        geometries: name → :class:`gammastar.source.geometry.Geometry`.
        masses: A′ masses (GeV). ctaus: proper decay lengths (m).
        truth_sources: cocktail sources of the truth sample.
        samples: A′ samples per mass, each side.
        seed: seed of the truth and of the samples.
        inside: the data-driven sampler inside the fiducial region (default: the run's flow).
        mesons: the meson source of the run's mock (:func:`gammastar_validation.truth.truth_gstar`;
            default: ``mock.backend``'s).
    """
    from gammastar.core import rundir
    from gammastar.corrections.pair_acceptance import fiducial_from_config
    from gammastar.corrections.unfold.efficiency import EfficiencyMap
    from gammastar.mock.detector import Detector
    from gammastar.reach.acceptance import draw
    from gammastar.source.production import Yields, load_yields
    from gammastar.source.source import Source
    from gammastar_validation.truth import (
        TruthSampler,
        empirical_smearing,
        truth_gstar,
    )

    run = cfg.output_dir
    y_dd = load_yields(run / rundir.YIELDS)
    if inside is None:
        sampler = Source.from_config(cfg.model_copy(update={"reach": cfg.reach.model_copy(
            update={"flow": str(run / rundir.FLOW_DIR), "extrapolation": "label"})}), y_dd)  # fmt: skip
    else:
        from gammastar.corrections.pair_acceptance import FiducialRegion
        from gammastar.yields.extrapolation.result import Extrapolation
        from gammastar.yields.extrapolation.samplers import ExtrapolatedSampler

        ex = y_dd.extrapolation
        sampler = ExtrapolatedSampler(inside, Extrapolation.from_dict(ex),
                                      FiducialRegion.from_dict(ex["fiducial"]))  # fmt: skip
    truth = truth_gstar(cfg, truth_sources, seed=seed, mesons=mesons)
    det = Detector(cfg.mock.detector, EfficiencyMap.unity())
    edges = np.asarray(y_dd.extrapolation["bin_edges"]) if y_dd.extrapolation else None
    mock_file = run / rundir.MOCK
    smear = empirical_smearing(mock_file) if mock_file.exists() else None
    ty = truth_aprime_yield(truth, edges, m_lepton=cfg.input.lepton_mass,
                            sigma_m=det.sigma_m, seed=seed, smear=smear)  # fmt: skip
    y_tr = Yields(ty.mass, ty.per_pot_per_eps2, ty.stat_err, {})
    fid = fiducial_from_config(cfg)
    inside = fid.contains(truth.m, truth.qT, truth.E)
    ts = TruthSampler(truth)
    ctaus = np.asarray(ctaus, dtype=np.float64)
    rows = []
    for gname, geo in geometries.items():
        for m in masses:
            s_dd = draw(sampler, m, samples, geo, seed=seed + 1)
            a_dd = s_dd.acceptance(ctaus)
            a_x = s_dd.extrapolated_acceptance(ctaus)
            a_tr = draw(ts, m, samples, geo, seed=seed + 2).acceptance(ctaus)
            yd, yt = float(y_dd.at(m)[0]), float(y_tr.at(m)[0])
            win = np.abs(truth.m - m) < ts.half_width
            f_tr = float(inside[win].mean()) if win.any() else float("nan")
            ex = y_dd.extrapolation or {}
            f_dd = float(np.interp(m, ex["mass"], ex["fiducial_fraction"])) if ex else 1.0
            f_err = ex.get("fiducial_fraction_err") if ex else None
            f_err = float(np.interp(m, ex["mass"], f_err)) if f_err is not None else 0.0
            rel_yd, rel_yt = float(y_dd.at(m)[1]), float(y_tr.at(m)[1])
            n_tr_eff = 1.0 / (1.0 / samples + 1.0 / max(int(win.sum()), 1))
            for k, ct in enumerate(ctaus):
                a, at, ax = float(a_dd[k]), float(a_tr[k]), float(a_x[k])
                x = ax / a if a > 0 else None
                bin_dd = np.sqrt(max(a * (1 - a), 0.0) / samples)
                bin_tr = np.sqrt(max(at * (1 - at), 0.0) / n_tr_eff)
                # 𝓔 = f 𝓔_in + (1 − f) 𝓔_out: the inside and outside acceptances of the sampler
                e_in = (a - ax) / f_dd if f_dd > 0 else 0.0
                e_out = ax / (1 - f_dd) if f_dd < 1 else 0.0
                acc_dd_err = float(np.hypot(bin_dd, abs(e_in - e_out) * f_err))
                rel_f = (x or 0.0) * f_err / (f_dd * (1 - f_dd)) if 0 < f_dd < 1 else 0.0
                rel_a = bin_dd / a if a > 0 else 0.0
                n_dd, n_tr = yd * a, yt * at
                e_dd = abs(n_dd) * float(np.sqrt(rel_yd**2 + rel_f**2 + rel_a**2))
                e_tr = float(np.hypot(abs(n_tr) * rel_yt, abs(yt) * bin_tr))
                err = float(np.hypot(e_dd, e_tr))
                rows.append({
                    "geometry": gname, "mass": float(m), "ctau": float(ct),
                    "acc_dd": a, "acc_truth": at, "acc_err": float(bin_tr),
                    "acc_dd_err": acc_dd_err,
                    "nsig_dd": n_dd, "nsig_truth": n_tr,
                    "nsig_dd_err": float(e_dd), "nsig_truth_err": e_tr,
                    "nsig_pull": float((n_dd - n_tr) / err) if err > 0 else float("nan"),
                    "extrapolated_fraction": x,
                    "fiducial_fraction_dd": f_dd, "fiducial_fraction_dd_err": f_err,
                    "fiducial_fraction_truth": f_tr,
                    "n_truth_window": int(win.sum()),
                })  # fmt: skip
    return rows


def truth_aprime_yield(truth: Any, edges, *, m_lepton: float, sigma_m=None, seed: int = 0,
                       smear=None):  # fmt: skip
    """Eq. 6 applied to the true γ* (A′ per POT per ε² per mass bin, full phase space).

    Arguments:
        truth: the generator's γ*.
        edges: mass bin edges (GeV).
        m_lepton: lepton mass (GeV).
        sigma_m: callable m → mass resolution (GeV): the true masses are smeared by it, the
            resolution the data-driven yield carries (no resolution unfolding, as the paper);
            ``None``: true masses.
        seed: seed of the smearing.
        smear: a response ``smear(m_true, rng)`` (:func:`empirical_smearing`) instead of the
            Gaussian ``sigma_m``.

    Returns:
        :class:`gammastar.yields.formulas.AprimeYield`.
    """
    from gammastar.yields.formulas import aprime_yield_from_pairs

    m = truth.m
    if smear is not None:
        m = smear(m, np.random.default_rng(seed))
    elif sigma_m is not None:
        m = m + np.random.default_rng(seed).standard_normal(m.size) * sigma_m(m)
    return aprime_yield_from_pairs(m, np.ones(m.size), truth.n_pot, edges, m_lepton=m_lepton)
