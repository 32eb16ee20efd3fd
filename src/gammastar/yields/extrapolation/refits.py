"""Refits of a fitted extrapolation to moved pairs (:func:`refit_fractions`, :func:`refit`,
:func:`refit_moves`): what the yields' polarisation and migration variations need.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.core.threads import single_thread_blas, thread_map
from gammastar.yields._fiducial_bound import mt_exponential_superset
from gammastar.yields.extrapolation.likelihood import (
    FitGroup,
    fit_joint,
    group_params,
)
from gammastar.yields.extrapolation.model import (
    fiducial_fraction,
    grid_in_f,
    grids_in_f,
)
from gammastar.yields.extrapolation.reference import (
    REFERENCE,
    ReferenceSample,
    reference_draws,
)
from gammastar.yields.extrapolation.result import Extrapolation

__all__ = ["refit", "refit_fractions", "refit_moves"]


def refit_fractions(
    ex: Extrapolation,
    m: ArrayLike,
    pt: ArrayLike,
    y: ArrayLike,
    weight: ArrayLike,
    fiducial: Any,
    *,
    groups: ArrayLike | None = None,
    seed: int = 0,
) -> NDArray[np.float64]:
    """f_F per mass bin of ``ex``'s model fitted again to other weights inside another region.

    The fit of :func:`fit_extrapolation` redone as ``ex`` was made (its form with its
    fall-off, :attr:`Extrapolation.form`; its fit groups, its fixed ȳ, external σ_y and
    m_T-power settings, the same reference samples' seeds ``seed + g``), started at ``ex``'s
    parameters, without errors. Where σ_y and ȳ are fixed the groups' fits
    are independent and only ``groups`` are refitted (the other bins keep ``ex``'s f_F); with
    a fitted σ_y or ȳ every group is. What the extrapolation does when the fiducial region
    follows a varied λ_θ (:func:`gammastar.yields.lambda_theta.lambda_theta_moving_variation`).
    The fraction of :func:`refit`'s record.

    Arguments:
        ex: the nominal :class:`Extrapolation` (with its fit groups, ``bin_group``).
        m, pt, y, weight: the pairs with their new weights (0 outside ``fiducial``).
        fiducial: the new :class:`~gammastar.corrections.pair_acceptance.FiducialRegion`.
        groups: the fit groups to refit (default: all).
        seed: :func:`fit_extrapolation`'s ``seed`` of the nominal fit.

    Returns:
        f_F per mass bin of ``ex``.

    Raises:
        ValueError: ``ex`` has no fit groups (written before they were recorded).
    """
    rec = refit(ex, m, pt, y, weight, fiducial, groups=groups, seed=seed)
    return np.asarray(rec["fiducial_fraction"], dtype=np.float64)


def refit(
    ex: Extrapolation,
    m: ArrayLike,
    pt: ArrayLike,
    y: ArrayLike,
    weight: ArrayLike,
    fiducial: Any,
    *,
    groups: ArrayLike | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """``ex``'s model fitted again to other weights inside another region (as
    :func:`refit_fractions`), the whole fit per mass bin of ``ex``.

    Arguments:
        as :func:`refit_fractions`.

    Returns:
        ``{fiducial_fraction, temperature, pt_power}`` (lists per mass bin of ``ex``; bins of
        groups not refitted keep ``ex``'s values) and ``y_mean``, ``y_sigma`` (floats): a
        record as :attr:`Extrapolation.model_variations` holds one per form, which
        :func:`nsig_error_parts` evaluates N/Y_F at (``lambda_theta``).

    Raises:
        ValueError: ``ex`` has no fit groups (written before they were recorded).
    """
    return refit_moves(ex, m, pt, y, [(weight, fiducial, groups)], seed=seed)[0]


def refit_moves(
    ex: Extrapolation,
    m: ArrayLike,
    pt: ArrayLike,
    y: ArrayLike,
    moves: Sequence[tuple[ArrayLike, Any, ArrayLike | None]],
    *,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """:func:`refit` for several moves of the same pairs at once, one record per move:
    ``moves`` holds each move's ``(weight, fiducial, groups)``. Where the groups' fits are
    independent (ȳ and σ_y fixed, the m_T powers fitted: one Newton fit per group,
    :func:`fit_joint`), a group's reference sample is drawn once (:func:`reference_draws`)
    for every move that refits it, and made at each move's mass and region from those draws:
    the records of one :func:`refit` per move, number for number.

    Raises:
        ValueError: ``ex`` has no fit groups (written before they were recorded).
    """
    if ex.bin_group is None:
        raise ValueError("this extrapolation has no fit groups (no covariance): refit it")
    m, pt, y = (np.asarray(a, dtype=np.float64) for a in (m, pt, y))
    bg = np.asarray(ex.bin_group)
    n_g = int(bg.max()) + 1
    external = ex.y_sigma_external
    # under the auto rule (ex.y_mean_rule) the refits hold the rapidity parameters it fitted
    # at the nominal's values: a move's effect through the groups' T and a is kept, that
    # through the shared ȳ, σ_y left out, so the groups stay independent fits (a joint refit
    # of every group per move costs the demo's yields stage several times its budget)
    rule = ex.y_mean_rule is not None
    fixed = _Fixed(float(ex.y_mean[0]) if ex.y_mean_fixed or rule else None,
                   float(external["value"]) if external
                   else float(ex.y_sigma[0]) if rule else None,
                   None if ex.pt_power_fitted else float(ex.power_at(ex.mass[:1])[0]))  # fmt: skip
    idx = np.searchsorted(np.asarray(ex.edges, dtype=np.float64), m, side="right") - 1
    plans = []
    for weight, fiducial, groups in moves:
        w = np.asarray(weight, dtype=np.float64)
        every = groups is None or fixed.mu is None or fixed.sigma is None
        todo = set(range(n_g)) if every or groups is None else {int(g) for g in np.ravel(groups)}
        plans.append((w, (w != 0) & np.isfinite(y) & (pt > 0), fiducial, todo))
    records = [_RefitRecord(ex) for _ in plans]
    if fixed.mu is None or fixed.sigma is None or fixed.power is not None:
        # one joint fit of every refitted group per move
        for rec, (w, use, fiducial, todo) in zip(records, plans, strict=True):
            data, bins = [], []
            for g in sorted(todo):
                b = _group_bins(bg, g)
                got = _refit_group(ex, (m, pt, y, w), use & np.isin(idx, b), fiducial, seed + g)
                if got is not None:
                    data.append(got)
                    bins.append(b)
            _fit_record(ex, rec, data, bins, fiducial, fixed)
        return [r.as_dict() for r in records]

    # the groups' fits are independent: group by group (side by side on threads), each
    # one's reference draws made once and the moves' reference samples and quadrature grids
    # tested together; the records written in group order afterwards
    def one_group(g: int) -> list[tuple[_RefitRecord, Any, NDArray, NDArray, dict]]:
        b = _group_bins(bg, g)
        in_g = np.isin(idx, b)
        jobs = []  # (record, fiducial, the group's pairs, their mean mass)
        for rec, (w, use, fiducial, todo) in zip(records, plans, strict=True):
            if g in todo:
                k = use & in_g
                m_c = _mean_mass(m, w, k)
                if m_c is not None:
                    jobs.append((rec, fiducial, (m[k], pt[k], y[k], w[k]), m_c))
        if not jobs:
            return []
        draws, size = _group_draws(seed + g, [j[1] for j in jobs], [j[3] for j in jobs])
        refs = [ReferenceSample(fid, m_c, seed + g, draws, size) for _, fid, _, m_c in jobs]
        grids = {int(i): grids_in_f([j[1] for j in jobs], float(ex.mass[i])) for i in b}
        out = []
        for n, ((rec, fiducial, pairs, _), ref) in enumerate(zip(jobs, refs, strict=True)):
            x = _fit_x(ex, [FitGroup((*pairs, ref))], [b], fixed)
            out.append((rec, fiducial, b, x, {i: v[n] for i, v in grids.items()}))
        return out

    with single_thread_blas():  # the fits' own holds nest inside it
        done = thread_map(one_group, sorted(set().union(*(todo for *_, todo in plans))))
    for group in done:
        for rec, fiducial, b, x, inside in group:
            _store(ex, rec, x, 1, [b], fiducial, fixed, inside)
    return [r.as_dict() for r in records]


def _mean_mass(m: NDArray, w: NDArray, k: NDArray[np.bool_]) -> float | None:
    """The weighted mean mass of the pairs ``k`` (``None`` without a positive weighted sum)."""
    ws = float(np.sum(w[k]))
    if ws <= 0:
        return None
    return float(np.sum(w[k] * m[k]) / ws)


def _group_draws(seed: int, fiducials: list[Any], masses: list[float]
                 ) -> tuple[dict[str, NDArray], int | None]:  # fmt: skip
    """The reference draws of ``seed`` for the moves of one fit group (their regions and mean
    masses): ``(draws, size)``, the draws' mass-free parts at the points that may lie inside
    any move's region (:func:`mt_exponential_superset`) and the sample's size, or all the
    draws and ``None`` where that does not apply."""
    draws = reference_draws(seed)
    sub = mt_exponential_superset(fiducials, masses, draws, REFERENCE[0])
    if sub is None:
        return draws, None
    return {k: draws[k][sub] for k in ("r", "u_exp", "u_gamma", "cosh_y")}, draws["r"].size


class _Fixed(NamedTuple):
    """What a refit keeps of the nominal fit: a fixed ȳ, an external σ_y, a fixed m_T power
    (``None``: fitted)."""

    mu: float | None
    sigma: float | None
    power: float | None


def _group_bins(bin_group: NDArray, g: int) -> NDArray[np.intp]:
    """The mass bins of fit group ``g``."""
    return np.flatnonzero(bin_group == g)


def _refit_group(ex: Extrapolation, pairs: tuple[NDArray, ...], k: NDArray[np.bool_],
                 fiducial: Any, seed: int, draws: Mapping[str, NDArray] | None = None
                 ) -> FitGroup | None:  # fmt: skip
    """One fit group of a refit: the pairs ``k`` of ``pairs`` (m, p_T, y, w) with the
    reference sample at their weighted mean mass (``None`` without a positive weighted
    sum)."""
    m, pt, y, w = pairs
    m_c = _mean_mass(m, w, k)
    if m_c is None:
        return None
    return FitGroup((m[k], pt[k], y[k], w[k], ReferenceSample(fiducial, m_c, seed, draws)))


class _RefitRecord:
    """A refit's record (:func:`refit`'s return) as its groups are fitted: ``ex``'s values
    until a group's bins take the refit's."""

    def __init__(self, ex: Extrapolation) -> None:
        self.frac = np.array(ex.fiducial_fraction, dtype=np.float64)
        self.temp = np.array(ex.temperature, dtype=np.float64)
        self.a_pow = ex.power_at(ex.mass)
        self.shared = {"y_mean": float(ex.y_mean[0]), "y_sigma": float(ex.y_sigma[0])}

    def as_dict(self) -> dict[str, Any]:
        return {"fiducial_fraction": self.frac.tolist(), "temperature": self.temp.tolist(),
                "pt_power": self.a_pow.tolist(), **self.shared}  # fmt: skip


def _fit_record(ex: Extrapolation, rec: _RefitRecord, data: list, bins: list, fiducial: Any,
                fixed: _Fixed, inside: Mapping[int, NDArray] | None = None) -> None:  # fmt: skip
    """Fit the refit's groups ``data`` (``bins``: each one's mass bins) jointly, started at
    ``ex``'s parameters, into ``rec`` (``inside``: F on the quadrature grid of some bins, else
    computed)."""
    if not data:
        return
    _store(ex, rec, _fit_x(ex, data, bins, fixed), len(data), bins, fiducial, fixed, inside)


def _fit_x(ex: Extrapolation, data: list, bins: list, fixed: _Fixed) -> NDArray:
    """The joint fit of the groups ``data`` (``bins``: each one's mass bins) started at
    ``ex``'s parameters: (ȳ, σ_y, T_g..., [a_g...])."""
    first = np.asarray([b[0] for b in bins])
    a0 = ex.power_at(ex.mass[first])
    x0 = np.concatenate([[ex.y_mean[first[0]], ex.y_sigma[first[0]]], ex.temperature[first], a0])
    x, _ = fit_joint(data, (), sigma=fixed.sigma, mu_fixed=fixed.mu, power=fixed.power,
                      x_start=x0, form=ex.form)  # fmt: skip
    return x


def _store(ex: Extrapolation, rec: _RefitRecord, x: NDArray, n_groups: int, bins: list,
           fiducial: Any, fixed: _Fixed, inside: Mapping[int, NDArray] | None) -> None:  # fmt: skip
    """The fit ``x`` of ``n_groups`` groups written into ``rec`` at their bins."""
    for j, b in enumerate(bins):
        par = group_params(x, j, n_groups, fixed.power)
        for i in b:
            c = float(ex.mass[i])
            f_in = inside[i] if inside is not None and i in inside else grid_in_f(fiducial, c)
            rec.frac[i] = fiducial_fraction(fiducial, c, par, f_in, ex.form)
            rec.temp[i] = par[0]
            if len(par) > 3:
                rec.a_pow[i] = par[3]
        rec.shared = {"y_mean": float(par[1]), "y_sigma": float(par[2])}
