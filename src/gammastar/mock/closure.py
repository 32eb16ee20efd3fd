"""Truth closure of the reach inputs on the mock: data-driven 𝓔(m, cτ) and N_sig vs the
generator's full-phase-space γ*.

:func:`reach_closure` compares, per detector geometry, mass and cτ, the acceptance and the
expected signal (per POT per ε² and per unit BR: Y(m)·𝓔(m, cτ)) that a run directory's
yields and flow give (with the fitted extrapolation outside the fiducial region, as
``gammastar reach`` uses them) with the same quantities from the generator's own γ*
(:mod:`gammastar.mock.truth`; the truth yield is taken at the data's mass resolution, which
the data-driven yield carries: no resolution unfolding, as in the paper; the response is the
mock detector's own, measured on the file's ``truth`` tree). It checks; it never
feeds a correction.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["reach_closure", "truth_aprime_yield"]


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
) -> list[dict[str, Any]]:
    """Rows ``{geometry, mass, ctau, acc_dd, acc_truth, nsig_dd, nsig_truth, acc_err,
    extrapolated_fraction, fiducial_fraction_dd, fiducial_fraction_truth, n_truth_window}``
    (N as Y·𝓔 per POT per ε²; ``acc_err`` the binomial error of the truth acceptance;
    ``n_truth_window`` the true γ* the truth side resamples).

    Arguments:
        cfg: the analysis config of a finished run (yields.json and flow/ in its run dir).
        geometries: name → :class:`gammastar.acceptance.Geometry`.
        masses: A′ masses (GeV). ctaus: proper decay lengths (m).
        truth_sources: cocktail sources of the truth sample.
        samples: A′ samples per mass, each side.
        seed: seed of the truth and of the samples.
        inside: the data-driven sampler inside the fiducial region (default: the run's flow).
    """
    from gammastar import rundir
    from gammastar.acceptance import draw
    from gammastar.mock.detector import Detector
    from gammastar.mock.truth import (
        TruthSampler,
        empirical_smearing,
        truth_gstar,
    )
    from gammastar.pair_acceptance import fiducial_from_config
    from gammastar.reach import Yields, _sampler_from_config, load_yields
    from gammastar.unfold import EfficiencyMap

    run = cfg.output_dir
    y_dd = load_yields(run / rundir.YIELDS)
    if inside is None:
        sampler, _ = _sampler_from_config(cfg.model_copy(update={"reach": cfg.reach.model_copy(
            update={"flow": str(run / rundir.FLOW_DIR), "extrapolation": "label"})}), y_dd)  # fmt: skip
    else:
        from gammastar.extrapolation import ExtrapolatedSampler, Extrapolation
        from gammastar.pair_acceptance import FiducialRegion

        ex = y_dd.extrapolation
        sampler = ExtrapolatedSampler(inside, Extrapolation.from_dict(ex),
                                      FiducialRegion.from_dict(ex["fiducial"]))  # fmt: skip
    truth = truth_gstar(cfg, truth_sources, seed=seed)
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
            f_dd = float(np.interp(m, y_dd.extrapolation["mass"],
                                   y_dd.extrapolation["fiducial_fraction"]))  # fmt: skip
            for k, ct in enumerate(ctaus):
                rows.append({
                    "geometry": gname, "mass": float(m), "ctau": float(ct),
                    "acc_dd": float(a_dd[k]), "acc_truth": float(a_tr[k]),
                    "acc_err": float(np.sqrt(max(a_tr[k] * (1 - a_tr[k]), 0.0) / samples)),
                    "nsig_dd": yd * float(a_dd[k]), "nsig_truth": yt * float(a_tr[k]),
                    "extrapolated_fraction": float(a_x[k] / a_dd[k]) if a_dd[k] > 0 else None,
                    "fiducial_fraction_dd": f_dd, "fiducial_fraction_truth": f_tr,
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
        :class:`gammastar.yields.AprimeYield`.
    """
    from gammastar.yields import aprime_yield_from_pairs

    m = truth.m
    if smear is not None:
        m = smear(m, np.random.default_rng(seed))
    elif sigma_m is not None:
        m = m + np.random.default_rng(seed).standard_normal(m.size) * sigma_m(m)
    return aprime_yield_from_pairs(m, np.ones(m.size), truth.n_pot, edges, m_lepton=m_lepton)
