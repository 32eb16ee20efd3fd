"""The selection's mass histograms: the axis of the config, the like-sign combinatorial estimate
and its mixed-event R, and the raw and unfolded histograms filled from the weighted pairs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from gammastar import io
from gammastar.config import AnalysisConfig
from gammastar.corrections.background import (
    ESTIMATORS,
    LikeSignEstimate,
    like_sign_estimate,
    r_factor_mixed,
)
from gammastar.corrections.unfold.resolution import (
    bayesian_unfold,
    bayesian_unfold_variance,
    response_matrix,
)
from gammastar.errors import ConfigError
from gammastar.selection.pairhists import HistAxes, raw_histograms, unfolded_histograms

if TYPE_CHECKING:
    import hist
    import pandas as pd


log = logging.getLogger(__name__)
from gammastar.selection.records import (
    _Run,
    _Weighted,
)

__all__ = ["MIN_MIXED", "fill_histograms", "like_sign", "mass_axis", "mixed_r"]


def mass_axis(cfg: AnalysisConfig) -> hist.axis.Regular:
    """The one mass axis shared by every output histogram."""
    return HistAxes.from_config(cfg).mass()


def like_sign(
    cfg: AnalysisConfig, raw: Mapping[str, hist.Hist[hist.storage.Weight]]
) -> LikeSignEstimate:
    """The like-sign estimate (:func:`gammastar.corrections.background.like_sign_estimate`) of the
    config's estimator (``background.ss_weight``) from the raw ``pp_m``/``mm_m`` counts:
    one estimate for ``comb_m``, ``signal_m`` and the per-pair SS weights."""

    b = cfg.background
    vp, vm = raw["pp_m"].view(), raw["mm_m"].view()
    r = mixed_r(raw)[0] if b.r_factor == "mixed" else b.r_factor
    return like_sign_estimate(
        vp["value"],
        vm["value"],
        vp["variance"],
        vm["variance"],
        r=r,
        estimator=ESTIMATORS[b.ss_weight],
        min_counts=b.min_like_sign,
    )


MIN_MIXED = 100.0
"""Mixed pairs of each charge class a mass bin needs for its own R (else a window)."""


def mixed_r(raw: Mapping[str, hist.Hist[hist.storage.Weight]]) -> tuple[np.ndarray, np.ndarray]:
    """R per mass bin from the mixed-event histograms ``mix_{os,pp,mm}_m`` in ``raw``
    (:func:`gammastar.corrections.background.r_factor_mixed`)."""

    if "mix_os_m" not in raw:
        raise ConfigError(
            "background.r_factor: 'mixed' needs the mixed-event histograms, which this run "
            "did not fill"
        )
    return r_factor_mixed(
        *(raw[f"mix_{c}_m"].values() for c in ("os", "pp", "mm")), min_counts=MIN_MIXED
    )


def fill_histograms(
    cfg: AnalysisConfig,
    pairs: pd.DataFrame | None,
    raw: Mapping[str, hist.Hist[hist.storage.Weight]] | None = None,
    unfolded: Mapping[str, hist.Hist[hist.storage.Weight]] | None = None,
    estimate: LikeSignEstimate | None = None,
) -> dict[str, hist.Hist[hist.storage.Weight]]:
    """All output histograms from the (weighted) pairs table.

    ``os_m``, ``pp_m``, ``mm_m``: raw counts (``raw`` from the processor, or filled from the
    table); ``comb_m`` the like-sign estimate k_b (N++ + N−−) of :func:`like_sign`
    (``estimate``, default computed from ``raw``): 2R√(N++N−−) per populated mass bin for
    ``ss_weight: binwise``, R(N++ + N−−) for ``constant``, with propagated variance; the
    same per-mass-bin k_b on the (m, qT, E) cells of ``comb_m_qT_E`` (variance
    k_b²(σ²++ + σ²−−) per cell, k_b's own uncertainty neglected there); ``signal_m = os_m −
    comb_m``; ``unfolded_m``: Σ ``weight`` over all pairs (OS 1/ε, SS −k_b/ε: the same
    estimator; ``unfolded`` from the processor, or filled from the table); the same with
    ``_m_qT_E`` on (m, qT, E). ``pairs`` may be ``None`` when both are given.
    """
    import hist

    axes = HistAxes.from_config(cfg)
    if raw is None:
        raw = raw_histograms(axes, _columns(pairs, ("m", "pT", "E", "charge")))
    if unfolded is None:
        unfolded = unfolded_histograms(axes, _columns(pairs, ("m", "qT", "E", "weight")))
    est = like_sign(cfg, raw) if estimate is None else estimate
    # k_b on the flow bins too: the nearest bin's (as the per-pair weights take it)
    k_flow = np.concatenate([est.factor[:1], est.factor, est.factor[-1:]])
    out: dict[str, hist.Hist[hist.storage.Weight]] = {}
    for suffix, ax in (("m", [axes.mass()]), ("m_qT_E", axes.axes3())):
        os_h, pp_h, mm_h = (raw[f"{c}_{suffix}"] for c in ("os", "pp", "mm"))
        comb_h = hist.Hist(*ax, storage=hist.storage.Weight())
        vp, vm = pp_h.view(flow=True), mm_h.view(flow=True)
        k = k_flow.reshape((-1,) + (1,) * (vp.ndim - 1))
        val = k * (vp["value"] + vm["value"])
        var = k**2 * (vp["variance"] + vm["variance"])
        if suffix == "m":  # the in-range bins: the estimate itself, with k_b's uncertainty
            val[1:-1], var[1:-1] = est.value, est.variance
        comb_h.view(flow=True)["value"] = val
        comb_h.view(flow=True)["variance"] = var
        sig_h = hist.Hist(*ax, storage=hist.storage.Weight())
        vo = os_h.view(flow=True)
        sig_h.view(flow=True)["value"] = vo["value"] - val
        sig_h.view(flow=True)["variance"] = vo["variance"] + var
        unf_h = unfolded[f"unfolded_{suffix}"]
        for name in ("mix_os", "mix_pp", "mix_mm"):  # r_factor: mixed
            if f"{name}_{suffix}" in raw:
                out[f"{name}_{suffix}"] = raw[f"{name}_{suffix}"]
        for name, h in (
            ("os", os_h),
            ("pp", pp_h),
            ("mm", mm_h),
            ("comb", comb_h),
            ("signal", sig_h),
            ("unfolded", unf_h),
        ):
            out[f"{name}_{suffix}"] = h
    return out


def _columns(pairs: pd.DataFrame | None, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The columns ``names`` of the pairs table, for the histograms not given."""
    if pairs is None:
        raise ValueError("fill_histograms: the pairs table is needed for the histograms not given")
    return {c: pairs[c].to_numpy() for c in names}


def _like_sign_estimate(
    cfg: AnalysisConfig, raw: Mapping[str, hist.Hist[hist.storage.Weight]]
) -> LikeSignEstimate:
    """:func:`like_sign` of the whole sample's raw N++, N−− per mass bin (the same k_b in
    ``comb_m`` and in the SS pairs' weights), with a warning when nothing is subtracted."""
    est = like_sign(cfg, raw)
    if (
        est.ratio_all == 0.0
        and est.factor.size
        and (raw["pp_m"].sum().value + raw["mm_m"].sum().value > 0)
    ):
        log.warning(
            "like-sign subtraction: only one like-sign charge class is present; the geometric "
            "mean 2R*sqrt(N++ N--) is 0 and nothing is subtracted"
        )
    return est


def _histograms(
    cfg: AnalysisConfig, run: _Run, w: _Weighted
) -> tuple[dict[str, hist.Hist[hist.storage.Weight]], dict[str, Any]]:
    """The output histograms (:func:`fill_histograms`) and, with
    ``unfold.bayesian_iterations``, the resolution unfolding of ``unfolded_m``."""

    hists = fill_histograms(cfg, w.pairs, raw=w.raw, unfolded=w.unfolded, estimate=w.estimate)
    for name in ("unfolded_m", "unfolded_m_qT_E"):
        hists[name].name = f"unfolded, phase_space={run.phase_space}"
    bayes: dict[str, Any] = {"iterations": cfg.unfold.bayesian_iterations}
    if cfg.unfold.bayesian_iterations > 0:
        if not run.checked.truth_trees:
            raise ConfigError(
                "unfold.bayesian_iterations > 0 needs a response from a 'truth' tree "
                "(m_true vs m) in the input files; none has one"
            )
        truth = io.read_truth(run.checked.truth_trees, ("m", "m_true"))
        edges = np.asarray(mass_axis(cfg).edges)
        resp = response_matrix(np.asarray(truth["m_true"]), np.asarray(truth["m"]), edges)
        h = hists["unfolded_m"]
        eff_only = h.copy()
        n_it = cfg.unfold.bayesian_iterations
        values, variances = h.view()["value"].copy(), h.view()["variance"].copy()
        h.view()["value"] = bayesian_unfold(values, resp, n_it)
        h.view()["variance"] = bayesian_unfold_variance(values, variances, resp, n_it)
        hists["effcorr_m"] = eff_only
        bayes["note"] = "unfolded_m is resolution unfolded; effcorr_m is before it"
    return hists, bayes
