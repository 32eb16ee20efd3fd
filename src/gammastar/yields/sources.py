r"""Each named source of the ``uncertainties`` block as one step.

The steps :func:`gammastar.yields.uncertainties.yield_uncertainties` takes in the block's
order: ``data_stat``, ``like_sign_r``, ``acceptance_lambda_theta`` (with its λ_θ errors),
``acceptance_map_stat``, ``eta_mumu``, ``extrapolation`` and ``resolution_migration``; each
puts its :class:`gammastar.yields.nuisance.Nuisance` into ``out`` or its reason into
``skipped``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.config import AnalysisConfig
from gammastar.corrections.background import eta_mumu_rate_peak
from gammastar.corrections.migration import applied_correction
from gammastar.corrections.pair_acceptance import fiducial_from_config
from gammastar.corrections.pair_acceptance.table import PairAcceptance
from gammastar.corrections.unfold import split_map_spec
from gammastar.corrections.unfold.acceptance import load_acceptance_map
from gammastar.errors import ConfigError, InputError
from gammastar.yields.extrapolation.result import Extrapolation
from gammastar.yields.lambda_theta import (
    _signed_quadrature,
    interpolated_error,
    lambda_tables,
    lambda_theta_moving_variation,
    lambda_theta_refits,
    lambda_theta_variation,
)
from gammastar.yields.nuisance import PER_BIN, Nuisance, _list
from gammastar.yields.variations import (
    _bin_sums,
    _rebin,
    acceptance_map_variation,
    like_sign_variation,
)


def _lambda_errors(doc: Mapping[str, Any], masses: NDArray, cfg: AnalysisConfig) -> NDArray | None:
    """δλ_θ per mass bin: measured (``polarisation.lambda_theta_err``) or the config's."""
    pol = doc.get("polarisation")
    if isinstance(pol, Mapping) and pol.get("lambda_theta_err") is not None:
        err = np.asarray(
            [np.nan if v is None else v for v in np.atleast_1d(pol["lambda_theta_err"])],
            dtype=float,
        )
        if np.any(err[np.isfinite(err)] < 0):
            raise InputError("yields.json polarisation.lambda_theta_err: a negative λ_θ error")
        if err.size == 1 and np.isfinite(err[0]):
            return np.full(masses.size, float(err[0]))
        if "mass" in pol:
            pm = np.asarray(pol["mass"], dtype=float)
        else:  # the measurement's bins (gammastar.corrections.polarisation): their centres
            edges = np.asarray(pol.get("mass_edges", []), dtype=float)
            pm = 0.5 * (edges[1:] + edges[:-1]) if edges.size > 1 else np.zeros(0)
        if pm.size != err.size:
            raise InputError(
                "yields.json polarisation: lambda_theta_err needs one mass bin per entry "
                "(polarisation.mass_edges or polarisation.mass)"
            )
        good = np.isfinite(err)
        fallback = cfg.uncertainties.lambda_theta_err
        if good.any():
            return interpolated_error(masses, pm[good], err[good])
        if fallback is None:
            return None
        return np.full(masses.size, float(fallback))
    val = cfg.uncertainties.lambda_theta_err
    return None if val is None else np.full(masses.size, float(val))


def _floats(values: Any) -> NDArray[np.float64]:
    """A JSON list of numbers as floats, ``None`` as NaN."""
    return np.asarray([np.nan if v is None else v for v in values], dtype=float)


def _data_stat_nuisance(y: NDArray, err: NDArray) -> Nuisance:
    """``data_stat``: the yield's statistical error relative to the yield, per mass bin."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(y != 0, err / np.abs(y), np.nan)
    return Nuisance(
        "data_stat",
        rel,
        -rel,
        "yields.json aprime.stat_err / per_pot_per_eps2: sqrt(sum w^2) of the unfolded pairs, "
        "incl. the like-sign subtraction's statistics",
        PER_BIN,
    )


def _like_sign_nuisance(
    cfg: AnalysisConfig, hists: Mapping[str, Any], pairs: Any, edges: NDArray
) -> tuple[Nuisance, NDArray[np.float64]]:
    """``like_sign_r``: the like-sign normalisation R varied
    (:func:`~gammastar.yields.variations.like_sign_variation`).

    Returns:
        The nuisance and W, the unfolded, subtracted sum of weights per mass bin (the η → μμ
        step's denominator).

    Raises:
        ConfigError: ``uncertainties.r_factor_rel_err`` is not given.
    """
    uc = cfg.uncertainties
    if uc.r_factor_rel_err is None:
        raise ConfigError(
            f"{cfg.source or '<config>'}: uncertainties.r_factor_rel_err: not given (relative "
            "1σ error of the like-sign normalisation R; 0 on purpose for an exactly known R, "
            "or set uncertainties.enabled: false)"
        )
    unf = hists["unfolded_m"]
    native = np.asarray(unf.axes[0].edges, dtype=float)
    if pairs is not None:
        m_p = np.asarray(pairs["m"], dtype=float)
        w_p = np.asarray(pairs["weight"], dtype=float)
        ss = np.asarray(pairs["charge"]) != 0
        w_tot = _bin_sums(m_p, w_p, edges)
        comb = -_bin_sums(m_p[ss], w_p[ss], edges)
        how = "the like-sign pairs' weights"
    else:
        w_tot = _rebin(native, np.asarray(unf.values(), dtype=float), edges)
        c = np.asarray(hists["comb_m"].values(), dtype=float)
        s = np.asarray(hists["signal_m"].values(), dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            f = np.where(s > 0, np.asarray(unf.values(), dtype=float) / s, 0.0)
        comb = _rebin(native, c * f, edges)
        how = "comb_m times the bin's unfolding factor"
    up, down = like_sign_variation(w_tot, comb, float(uc.r_factor_rel_err))
    nuisance = Nuisance(
        "like_sign_r",
        up,
        down,
        f"background.r_factor varied by ±uncertainties.r_factor_rel_err = "
        f"{uc.r_factor_rel_err:g}; subtracted combinatorial yield from {how}",
    )
    return nuisance, w_tot


def _lambda_theta_step(
    cfg: AnalysisConfig,
    doc: Mapping[str, Any],
    pairs: Any,
    edges: NDArray,
    grid: tuple[int, int, int] | None,
    out: dict[str, Nuisance],
    skipped: dict[str, str],
) -> dict[str, Any] | None:
    """``acceptance_lambda_theta`` into ``out``, or its reason into ``skipped``.

    Returns:
        The measured λ_θ's moves at N_sig's level
        (:func:`~gammastar.yields.lambda_theta.lambda_theta_refits`), or ``None``.

    Raises:
        ConfigError: neither ``uncertainties.lambda_theta_err`` nor a measured error is given.
    """
    if cfg.unfold.lepton_acceptance is None:
        skipped["acceptance_lambda_theta"] = (
            "no unfold.lepton_acceptance: the acceptance map comes from the generator, "
            "not from an assumed decay distribution"
        )
        return None
    columns = set(getattr(pairs, "columns", pairs)) if pairs is not None else set()
    if pairs is None or not {"pT", "pz"} <= columns:
        skipped["acceptance_lambda_theta"] = "the pairs table (pT, pz) is not available"
        return None
    dl = _lambda_errors(doc, np.asarray(doc["aprime"]["mass"], dtype=float), cfg)
    if dl is None:
        raise ConfigError(
            f"{cfg.source or '<config>'}: uncertainties.lambda_theta_err: not given and "
            "yields.json has no measured polarisation.lambda_theta_err (the per-pair "
            "acceptance assumes unfold.decay_lambda_theta; state its 1σ error)"
        )
    pol = doc.get("polarisation")
    measured = isinstance(pol, Mapping) and pol.get("lambda_theta_err") is not None
    moving = (
        measured and isinstance(cfg.unfold.decay_lambda_theta, str) and {"acc", "eff"} <= columns
    )
    refit_ex = _refittable_extrapolation(doc) if moving and "y" in columns else None
    up, down, origin, refits = _lambda_nuisance(
        cfg, pairs, edges, dl, grid, measured, pol if moving else None, refit_ex
    )
    out["acceptance_lambda_theta"] = Nuisance("acceptance_lambda_theta", up, down, origin)
    return refits


def _refittable_extrapolation(doc: Mapping[str, Any]) -> Any:
    """The document's extrapolation, whose λ_θ moves are carried to N_sig's level, or ``None``.

    A model written before the fit groups (no ``bin_group``) cannot be refitted.
    """
    ext = doc.get("extrapolation")
    if not isinstance(ext, Mapping):
        return None

    refit_ex = Extrapolation.from_dict(dict(ext))
    return None if refit_ex.bin_group is None else refit_ex


def _eta_mumu_step(
    cfg: AnalysisConfig,
    unf: Any,
    bins: tuple[NDArray, NDArray],
    w_tot: NDArray,
    out: dict[str, Nuisance],
    skipped: dict[str, str],
) -> None:
    """``eta_mumu`` into ``out`` (truth tag: 0; rate method: the subtracted peak's error).

    ``bins`` holds the yield's mass bins (centres, edges), ``w_tot`` the unfolded, subtracted
    sum of weights per bin.

    Raises:
        ConfigError: the rate method without ``uncertainties.eta_mumu_rel_err``.
    """
    uc, bg = cfg.uncertainties, cfg.background
    mass, edges = bins
    if bg.remove_eta_mumu == "truth":
        z = np.zeros(mass.size)
        out["eta_mumu"] = Nuisance(
            "eta_mumu", z, z, "background.remove_eta_mumu: truth (exact truth tag): no error"
        )
        return
    if bg.remove_eta_mumu != "rate":
        skipped["eta_mumu"] = "background.remove_eta_mumu: none (the peak is kept, not removed)"
        return
    if uc.eta_mumu_rel_err is None:
        raise ConfigError(
            f"{cfg.source or '<config>'}: uncertainties.eta_mumu_rel_err: not given (relative "
            "1σ error of the η → μμ peak that background.remove_eta_mumu: rate subtracts)"
        )

    native = np.asarray(unf.axes[0].edges, dtype=float)
    peak, _, _ = eta_mumu_rate_peak(
        native,
        np.asarray(unf.values(), dtype=float),
        dalitz_window=(bg.eta_dalitz_window[0], bg.eta_dalitz_window[1]),
        sigma=bg.eta_peak_sigma,
    )
    pk = _rebin(native, peak, edges)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(w_tot != 0, float(uc.eta_mumu_rel_err) * pk / np.abs(w_tot), np.nan)
    out["eta_mumu"] = Nuisance(
        "eta_mumu",
        r,
        -r,
        f"the subtracted η → μμ peak (rate method) × uncertainties.eta_mumu_rel_err = "
        f"{uc.eta_mumu_rel_err:g}",
    )


def _extrapolation_step(
    doc: Mapping[str, Any], y: NDArray, out: dict[str, Nuisance], skipped: dict[str, str]
) -> None:
    """``extrapolation`` into ``out``: the fitted fiducial fraction's error, where extrapolated."""
    ap = doc["aprime"]
    if ap.get("extrapolation_err") is None:
        skipped["extrapolation"] = "the yields are not extrapolated beyond a fiducial region"
        return
    e = _floats(ap["extrapolation_err"])
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(y != 0, e / np.abs(y), np.nan)
    ext = doc.get("extrapolation")
    ys = ext.get("y_sigma_external") if isinstance(ext, Mapping) else None
    fitted = isinstance(ext, Mapping) and str(ext.get("pt_power_source", "")).startswith("fitted")
    forms = (
        "the p_T form's m_T power fitted per mass range (its error in the covariance), "
        "alternative rapidity forms fitted to the same pairs"
        if fitted
        else "alternative p_T and rapidity forms fitted to the same pairs"
    )
    external = (
        f"; sigma_y external, {ys.get('value')} +- {ys.get('error')} "
        f"({ys.get('source')}), its error included"
        if isinstance(ys, Mapping)
        else ""
    )
    out["extrapolation"] = Nuisance(
        "extrapolation",
        r,
        -r,
        "yields.json aprime.extrapolation_err: the fitted fiducial fraction's 1σ error, "
        f"the fit's sandwich covariance plus the model's form ({forms}; "
        "reach.extrapolation: label)" + external,
    )


def _refits_block(refits: Mapping[str, Any]) -> dict[str, Any]:
    """The ``lambda_theta_refits`` entry of the block (JSON lists)."""
    return {
        "mass": _list(refits["mass"]),
        "lambda_edges": refits["lambda_edges"],
        "moves": [{**mv, "yield_shift": _list(mv["yield_shift"])} for mv in refits["moves"]],
        "note": "per polarisation bin and sign: the fiducial yield's relative change and "
        "the extrapolation refitted in the moved region; the reach carries them to "
        "N_sig (acceptance_lambda_theta at N's level, docs/explanation/reach.md)",
    }


def _migration_nuisance(
    doc: Mapping[str, Any], edges: NDArray, out: dict[str, Nuisance], skipped: dict[str, str]
) -> None:
    """``resolution_migration``: the migration correction's statistical 1σ per bin
    (``extrapolation.resolution_migration``, :mod:`gammastar.corrections.migration`), when applied."""
    ext = doc.get("extrapolation")
    mig = ext.get("resolution_migration") if isinstance(ext, Mapping) else None
    if not isinstance(mig, Mapping) or not mig.get("applied"):
        skipped["resolution_migration"] = (
            "yields.resolution_migration not given: the fiducial yields are not corrected for "
            "the mass resolution's migration"
        )
        return
    c, corrected = applied_correction(mig)
    dc = np.asarray([np.nan if v is None else v for v in mig["correction_err"]], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        r_mig = np.where(corrected & np.isfinite(dc), dc / c, 0.0)
    e_mig = np.asarray(mig["bin_edges"], dtype=float)
    # the correction is made on the yield bins
    if e_mig.shape != edges.shape or not np.allclose(e_mig, edges, rtol=0, atol=1e-9):
        raise InputError(
            "yields.json: extrapolation.resolution_migration has other mass bins than aprime"
        )
    out["resolution_migration"] = Nuisance(
        "resolution_migration",
        r_mig,
        -r_mig,
        f"extrapolation.resolution_migration.correction_err / correction: the statistics of "
        f"the detector simulation ({mig.get('sources')} recorded γ*, Poisson bootstrap of "
        f"{mig.get('bootstrap')}, seed {mig.get('seed')}) behind the migration correction "
        "c = f_true/f_reco (gammastar.corrections.migration); the simulation's cocktail is assumed",
        PER_BIN,
    )


def _map_statistics(
    cfg: AnalysisConfig, pairs: Any, edges: NDArray, mass: ArrayLike, out: dict, skipped: dict
) -> None:
    """The ``acceptance_map_stat`` source (module docstring) into ``out`` or ``skipped``."""
    name = "acceptance_map_stat"
    mass = np.asarray(mass, dtype=float)
    u = cfg.unfold
    if u.lepton_acceptance is not None:
        if u.lepton_acceptance.map is not None:
            skipped[name] = (
                "unfold.lepton_acceptance.map: the (p, θ) map's statistics are not propagated"
            )
            return
        z = np.zeros(mass.size)
        out[name] = Nuisance(
            name, z, z,
            "unfold.lepton_acceptance: computed from the configured per-lepton cuts (no map "
            "statistics): no error",
            PER_BIN,
        )  # fmt: skip
        return
    if u.acceptance_map is None:
        skipped[name] = "no acceptance map (unfold.acceptance_map) and no lepton acceptance"
        return
    cols = set() if pairs is None else set(getattr(pairs, "columns", pairs))
    if "pT" not in cols:
        skipped[name] = "the pairs table (pT) is not available"
        return

    path, key = split_map_spec(u.acceptance_map)
    amap = load_acceptance_map(cfg.resolve(path), key,
                               mass_range=(cfg.selection.mass_min, cfg.selection.mass_max))  # fmt: skip
    three_d = hasattr(amap, "y_edges")
    if amap.generated is None:
        skipped[name] = (
            f"unfold.acceptance_map: {amap.source} has no {key}_generated counts: the map's "
            "binomial errors are unknown"
        )
        return
    if three_d and "pz" not in cols:
        skipped[name] = "the pairs table (pz) is not available for the 3-D map"
        return
    r = acceptance_map_variation(
        pairs["m"], pairs["pT"], pairs["weight"], edges, amap,
        pz=pairs["pz"] if three_d else None,
    )  # fmt: skip
    out[name] = Nuisance(
        name, r, -r,
        f"unfold.acceptance_map {amap.source} ({'3' if three_d else '2'}-D): binomial error "
        f"sqrt(A(1-A)/N) per map bin (N from {key}_generated), propagated to the pairs' "
        "weights 1/A; the pairs of one map bin share it",
        PER_BIN,
    )  # fmt: skip


def _lambda_nuisance(
    cfg: AnalysisConfig,
    pairs: Any,
    edges: NDArray,
    dl: NDArray,
    grid: tuple[int, int, int] | None,
    measured: bool,
    polarisation: Mapping[str, Any] | None = None,
    extrapolation: Any = None,
) -> tuple[NDArray, NDArray, str, dict[str, Any] | None]:
    """The yield's relative shifts when the per-pair acceptance's λ_θ(m) moves by ±δλ(m).

    The nominal table is the selection's (:func:`gammastar.corrections.pair_acceptance.fiducial_from_config`:
    the configured λ_θ, or with ``unfold.decay_lambda_theta: measured`` the λ_θ(m) the selection
    measured and used); the varied ones follow from its decay-angle moments without a new
    tabulation (:meth:`~gammastar.corrections.pair_acceptance.table.PairAcceptance.with_lambda`), λ_θ ± δλ per
    mass node, clipped to [−1, 1]. A configured λ_θ holds the fiducial region (it does not move
    with the data: :func:`~gammastar.yields.lambda_theta.lambda_theta_variation`); a measured
    λ_θ (``polarisation``, the pairs with ``acc`` and ``eff``) moves it, each polarisation bin
    alone (:func:`~gammastar.yields.lambda_theta.lambda_theta_moving_variation`), and with an
    ``extrapolation`` the moves' refits (:func:`~gammastar.yields.lambda_theta.lambda_theta_refits`;
    else ``None``)."""

    fid = fiducial_from_config(cfg)
    assert fid is not None  # unfold.lepton_acceptance is given (_lambda_theta_step)
    nominal = fid.acceptance
    if grid is not None:  # a coarser table (tests): the same λ_θ at its own nodes
        lam0 = np.broadcast_to(nominal.lambda_theta, nominal.m_grid.shape)
        sel = cfg.selection
        coarse = PairAcceptance.build(
            nominal.lepton,
            lepton_mass=nominal.lepton_mass,
            mass_range=(sel.mass_min, sel.mass_max),
            p_max=cfg.beam.energy,
            grid=grid,
        )
        nominal = coarse.with_lambda(np.interp(coarse.m_grid, nominal.m_grid, lam0))
    if not np.any(np.isfinite(dl) & (dl > 0)):
        z = np.zeros(edges.size - 1)
        return z, z, "λ_θ with a zero error", None
    amin = float(cfg.unfold.min_acceptance)
    if polarisation is not None:
        refits = None
        if extrapolation is None:
            up, down = lambda_theta_moving_variation(
                pairs, edges, nominal, polarisation, min_acceptance=amin
            )
        else:  # the same moves, refitted too: their yield shifts are the nuisance
            refits = lambda_theta_refits(
                pairs, edges, nominal, polarisation, min_acceptance=amin,
                extrapolation=extrapolation,
            )  # fmt: skip
            shifts = {s: [mv["yield_shift"] for mv in refits["moves"] if mv["sign"] == s]
                      for s in (1, -1)}  # fmt: skip
            up, down = _signed_quadrature(shifts, edges.size - 1)
        origin = (
            "per-pair acceptance with each polarisation bin's measured λ_θ moved alone by "
            "±σ (yields.json polarisation.lambda_theta_err), the fiducial region following it "
            "as the selection's does (A_λ′ ≥ unfold.min_acceptance; pairs entering it weighted "
            "their bin's in-region factor over ε A_λ′); the fiducial yield's change, the bins in "
            "quadrature (docs/validation/uncertainties-and-coverage.md)"
        )
        if refits is not None:
            origin += "; in the reach at N_sig's level with the extrapolation refitted"
        return up, down, origin, refits
    tables = lambda_tables(nominal, edges, dl)
    up, down = lambda_theta_variation(pairs, edges, nominal, tables, min_acceptance=amin)
    origin = (
        "per-pair acceptance at λ_θ(m) ± δλ(m) around the selection's λ_θ ("
        + ("measured" if isinstance(cfg.unfold.decay_lambda_theta, str) else "configured")
        + "), from the table's decay-angle moments; δλ from "
        + (
            "yields.json polarisation.lambda_theta_err (measured)"
            if measured
            else "uncertainties.lambda_theta_err (stated)"
        )
    )
    return up, down, origin, None
