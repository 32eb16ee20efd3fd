r"""Data-driven A′ and χχ̄ yields per POT (paper Eqs. 6 and 8; docs/explanation/method.md).

The pure yield functions with their typed results: :func:`aprime_yield` (Eq. 6 on the bins of
``unfolded_m``) and :func:`aprime_yield_from_pairs` (pair by pair), both an
:class:`AprimeYield`; :func:`mcp_yield_from_hist` and :func:`mcp_yield_from_pairs` (Eq. 8), a
:class:`McpYield`; :func:`pairs_match_histogram` (do the pairs reproduce ``unfolded_m``),
:func:`merge_factor` and :func:`check_n_pot`. The errors (``stat_err``, ``bkg_sub_err``) and
the flags are documented in docs/explanation/method.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.errors import ConfigError, InputError
from gammastar.physics.kinematics import aprime_factor, mcp_factor

if TYPE_CHECKING:
    import hist


@dataclass
class AprimeYield:
    """A′ yield per POT per ε², one entry per (merged) mass bin."""

    mass: NDArray[np.float64]
    """Bin centres, GeV."""
    edges: NDArray[np.float64]
    per_pot_per_eps2: NDArray[np.float64]
    stat_err: NDArray[np.float64]
    """Full statistical error (Σw², includes the background subtraction)."""
    bkg_sub_err: NDArray[np.float64]
    """The background-subtraction part of ``stat_err`` (NaN where it cannot be estimated)."""
    flags: list[list[str]]
    n_pot: float

    def at(self, masses: ArrayLike) -> tuple[NDArray[np.float64], list[list[str]]]:
        """The yield of the bin holding each mass; NaN and ``outside_data_range`` outside.

        Example:
            >>> y = AprimeYield(np.array([0.5]), np.array([0.4, 0.6]), np.array([2.0]),
            ...                 np.array([0.1]), np.array([0.0]), [[]], 1.0)
            >>> y.at([0.45, 0.7])[0].tolist(), y.at([0.7])[1]
            ([2.0, nan], [['outside_data_range']])
        """
        masses = np.atleast_1d(np.asarray(masses, dtype=np.float64))
        idx = np.searchsorted(self.edges, masses, side="right") - 1
        inside = (masses >= self.edges[0]) & (masses <= self.edges[-1])
        idx = np.clip(idx, 0, len(self.mass) - 1)
        values = np.where(inside, self.per_pot_per_eps2[idx], np.nan)
        flags = [
            list(self.flags[i]) if ok else ["outside_data_range"]
            for i, ok in zip(idx, inside, strict=True)
        ]
        return values, flags


@dataclass
class McpYield:
    """χχ̄ yield per POT per Q² at the requested χ masses."""

    mass: NDArray[np.float64]
    per_pot_per_q2: NDArray[np.float64]
    stat_err: NDArray[np.float64]
    flags: list[list[str]]
    n_pot: float
    source: str
    """``"pairs"`` (exact per pair) or ``"histogram"`` (per bin of ``unfolded_m``)."""
    extra: dict[str, Any] = field(default_factory=dict)


def check_n_pot(n_pot: float, where: str = "n_pot") -> float:
    """Return N_POT as a float; raise :class:`ConfigError` unless it is finite and > 0."""
    try:
        value = float(n_pot)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: N_POT must be a number, not {n_pot!r}") from None
    if not np.isfinite(value) or value <= 0:
        raise ConfigError(f"{where}: N_POT must be positive and finite, got {value!r}")
    return value


def merge_factor(edges: ArrayLike, width: float | None) -> int:
    """Number of adjacent bins to merge so that merged bins are about ``width`` wide.

    Example:
        >>> merge_factor(np.linspace(0.2, 1.1, 91), 0.03)
        3
    """
    edges = np.asarray(edges, dtype=np.float64)
    if width is None:
        return 1
    native = float(np.median(np.diff(edges)))
    return max(1, round(width / native))


def _merge(edges: NDArray, arrays: Sequence[NDArray], k: int) -> tuple[NDArray, list[NDArray]]:
    n = len(edges) - 1
    starts = np.arange(0, n, k)
    new_edges = np.append(edges[starts], edges[-1])
    return new_edges, [np.add.reduceat(a, starts) for a in arrays]


def _hist_arrays(h: hist.Hist, name: str) -> tuple[NDArray, NDArray, NDArray]:
    """(edges, values, variances) of a 1-D histogram with Weight storage (or counts)."""
    if h.ndim != 1:
        raise InputError(f"{name}: expected a 1-D mass histogram, got {h.ndim} dimensions")
    edges = np.asarray(h.axes[0].edges, dtype=np.float64)
    values = np.asarray(h.values(), dtype=np.float64)
    var = h.variances()
    if var is None:  # plain counts: Poisson
        var = np.abs(values)
    return edges, values, np.asarray(var, dtype=np.float64)


def aprime_yield(
    unfolded: hist.Hist,
    n_pot: float,
    *,
    m_lepton: float,
    bin_width: float | None = None,
    comb: hist.Hist | None = None,
    signal: hist.Hist | None = None,
    ss_variance: ArrayLike | None = None,
) -> AprimeYield:
    r"""A′ yield per POT per ε² from an unfolded dilepton mass histogram (Eq. 6).

    Bins are merged to about ``bin_width`` (the mass resolution); in each merged bin
    :math:`Y = \frac{3\pi m_c}{2\alpha K_\ell(m_c)} \frac{W}{\Delta m\, N_{\rm POT}}` with W the
    sum of unfolded weights and m_c the bin centre; ``stat_err`` scales √(Σw²) the same way.

    Arguments:
        unfolded: ``unfolded_m`` (1-D, Weight storage): Σ of pair weights per mass bin.
        n_pot: protons on target (> 0).
        m_lepton: lepton mass of the dilepton data, GeV.
        bin_width: target bin width in GeV (None: keep the histogram's bins).
        comb: ``comb_m`` (raw-count like-sign estimate with variance), for ``bkg_sub_err``.
        signal: ``signal_m`` (raw OS − comb), to scale ``comb_m``'s variance by unfolded/signal.
        ss_variance: per native bin Σw² of the SS pairs (exact ``bkg_sub_err``; overrides comb).

    Returns:
        :class:`AprimeYield`.

    Raises:
        ConfigError: N_POT not positive.
        InputError: not a 1-D histogram.

    References:
        Allison & Blinov Eq. (6), Section III B 1; docs/explanation/physics.md §1.

    Example:
        >>> import hist
        >>> h = hist.Hist.new.Reg(10, 0.3, 0.4, name="m").Weight()
        >>> _ = h.fill(m=[0.355] * 4)
        >>> y = aprime_yield(h, 1.0, m_lepton=0.0)
        >>> bool(np.isclose(y.per_pot_per_eps2[5], 4 / 0.01 * aprime_factor(0.355, 0.0)))
        True
    """
    n_pot = check_n_pot(n_pot)
    edges, values, var = _hist_arrays(unfolded, "unfolded_m")
    counts_nonzero = (values != 0) | (var != 0)
    k = merge_factor(edges, bin_width)
    arrays = [values, var, counts_nonzero.astype(float)]
    bkg_var = None
    if ss_variance is not None:
        bkg_var = np.asarray(ss_variance, dtype=np.float64)
    elif comb is not None and signal is not None:
        _, _, cvar = _hist_arrays(comb, "comb_m")
        _, sval, _ = _hist_arrays(signal, "signal_m")
        arrays += [cvar, sval]
    if bkg_var is not None:
        arrays.append(bkg_var)
    new_edges, merged = _merge(edges, arrays, k)
    w, v, nz = merged[0], merged[1], merged[2]
    if bkg_var is not None:
        bvar = merged[-1]
    elif comb is not None and signal is not None:
        cvar_m, sval_m = merged[3], merged[4]
        with np.errstate(divide="ignore", invalid="ignore"):
            factor = np.where(sval_m > 0, w / sval_m, np.nan)
        bvar = cvar_m * factor**2
    else:
        bvar = np.full(len(w), np.nan)
    width = np.diff(new_edges)
    centre = 0.5 * (new_edges[1:] + new_edges[:-1])
    conv = aprime_factor(centre, m_lepton)
    finite = np.isfinite(conv)
    conv_safe = np.where(finite, conv, 0.0)
    y = np.where(finite, conv_safe * w / (width * n_pot), np.nan)
    err = np.where(finite, conv_safe * np.sqrt(v) / (width * n_pot), np.nan)
    berr = np.where(finite, conv_safe * np.sqrt(bvar) / (width * n_pot), np.nan)
    flags: list[list[str]] = []
    nominal = width[0] if len(width) else 0.0
    for i in range(len(w)):
        f = []
        if not finite[i]:
            f.append("below_threshold")
        if nz[i] == 0:
            f.append("empty")
        elif w[i] < 0:
            f.append("negative")
        if i == len(w) - 1 and width[i] < 0.999 * nominal:
            f.append("partial_bin")
        flags.append(f)
    return AprimeYield(centre, new_edges, y, err, berr, flags, n_pot)


def aprime_yield_from_pairs(
    m: ArrayLike,
    weight: ArrayLike,
    n_pot: float,
    edges: ArrayLike,
    *,
    m_lepton: float,
    bin_width: float | None = None,
    charge: ArrayLike | None = None,
) -> AprimeYield:
    r"""A′ yield per POT per ε², Eq. 6 applied pair by pair and averaged over each mass bin.

    :math:`Y_b = \frac{1}{\Delta m_b N_{\rm POT}} \sum_{i \in b} w_i \frac{3\pi m_i}{2\alpha
    K_\ell(m_i)}`: the bin average of N_A′(m)/ε². Unlike Eq. 6 at the bin centre
    (:func:`aprime_yield`) it carries no bias from the curvature of dN/dm (the 1/K_ℓ and 1/m
    of the γ* spectrum near threshold cancel pair by pair). Same binning and flags as
    :func:`aprime_yield`; pairs at or below 2m_ℓ cannot be converted and flag their bin
    ``below_threshold``.

    Arguments:
        m, weight: pair masses (GeV) and unfolded weights.
        n_pot: protons on target.
        edges: the native mass-bin edges (those of ``unfolded_m``); pairs outside are ignored.
        m_lepton: lepton mass, GeV.
        bin_width: merge to about this width (as :func:`aprime_yield`).
        charge: pair charges; SS pairs (≠ 0) give ``bkg_sub_err``.

    Example:
        >>> y = aprime_yield_from_pairs([0.5, 0.5], [1.0, 1.0], 1.0, [0.4, 0.6], m_lepton=0.0)
        >>> bool(np.isclose(y.per_pot_per_eps2[0], 2 * aprime_factor(0.5, 0.0) / 0.2))
        True
    """
    n_pot = check_n_pot(n_pot)
    edges = np.asarray(edges, dtype=np.float64)
    m = np.asarray(m, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)
    ss = np.zeros(m.shape, bool) if charge is None else np.asarray(charge) != 0
    k = merge_factor(edges, bin_width)
    new_edges = np.append(edges[np.arange(0, len(edges) - 1, k)], edges[-1])
    inside = (m >= new_edges[0]) & (m < new_edges[-1])
    m, w, ss = m[inside], w[inside], ss[inside]
    idx = np.clip(np.searchsorted(new_edges, m, side="right") - 1, 0, len(new_edges) - 2)
    f = aprime_factor(m, m_lepton)
    ok = np.isfinite(f)
    wf = np.where(ok, w * np.where(ok, f, 0.0), 0.0)
    nb = len(new_edges) - 1
    sum_wf = np.bincount(idx, weights=wf, minlength=nb)
    var_wf = np.bincount(idx, weights=wf**2, minlength=nb)
    bkg_wf = np.bincount(idx, weights=np.where(ss, wf**2, 0.0), minlength=nb)
    n_in = np.bincount(idx, minlength=nb)
    n_bad = np.bincount(idx, weights=(~ok).astype(float), minlength=nb)
    width = np.diff(new_edges)
    centre = 0.5 * (new_edges[1:] + new_edges[:-1])
    y = sum_wf / (width * n_pot)
    err = np.sqrt(var_wf) / (width * n_pot)
    berr = np.sqrt(bkg_wf) / (width * n_pot) if charge is not None else np.full(nb, np.nan)
    flags: list[list[str]] = []
    nominal = width[0] if nb else 0.0
    for i in range(nb):
        fl = []
        if n_bad[i] > 0 or not np.isfinite(aprime_factor(centre[i], m_lepton)):
            fl.append("below_threshold")
        if n_in[i] == 0:
            fl.append("empty")
        elif y[i] < 0:
            fl.append("negative")
        if i == nb - 1 and width[i] < 0.999 * nominal:
            fl.append("partial_bin")
        flags.append(fl)
    return AprimeYield(centre, new_edges, y, err, berr, flags, n_pot)


def pairs_match_histogram(m: ArrayLike, weight: ArrayLike, h: hist.Hist) -> bool:
    """Whether the pairs' weights, histogrammed, reproduce ``unfolded_m`` (rtol 1e-6).

    False e.g. when ``unfolded_m`` was resolution unfolded (``unfold.bayesian_iterations``).
    The pairs are filled into the histogram's own axis (its bin rule, as select filled it):
    ``np.histogram`` on the axis's edges puts a pair within a rounding of an edge into the
    other bin (a pair at m ≈ 1.0 GeV of the 10 MeV grid did, in the both-channels demo).
    """
    import hist as _hist

    filled = _hist.Hist(h.axes[0], storage=_hist.storage.Double())
    filled.fill(np.asarray(m, dtype=np.float64), weight=np.asarray(weight, dtype=np.float64))
    summed = np.asarray(filled.values(), dtype=np.float64)
    values = np.asarray(h.values(), dtype=np.float64)
    scale = max(float(np.abs(values).max(initial=0.0)), 1e-300)
    return bool(np.allclose(summed, values, rtol=1e-6, atol=1e-9 * scale))


def _mcp_flags(m_chi: NDArray, lo: float, hi: float) -> list[list[str]]:
    flags = []
    for mc in m_chi:
        f = []
        if 2 * mc < lo:
            f.append("below_data_range")
        if 2 * mc >= hi:
            f.append("above_data_range")
        flags.append(f)
    return flags


def mcp_yield_from_hist(
    unfolded: hist.Hist, n_pot: float, m_chi: ArrayLike, *, m_lepton: float, q: float = 1.0
) -> McpYield:
    r"""χχ̄ yield per POT (per Q² for q = 1) from the bins of ``unfolded_m`` (Eq. 8).

    :math:`Y(m_\chi) = \sum_b W_b\, Q^2 K_\chi(m_b)/K_\ell(m_b) / N_{\rm POT}` over bins with
    centre m_b > 2m_χ; the bin holding 2m_χ counts from its centre (accurate to the bin width;
    :func:`mcp_yield_from_pairs` is exact). ``stat_err`` = √(Σ_b f_b² σ_b²)/N_POT.

    Example:
        >>> import hist
        >>> h = hist.Hist.new.Reg(4, 0.2, 1.0, name="m").Weight()
        >>> _ = h.fill(m=[0.9, 0.9])
        >>> y = mcp_yield_from_hist(h, 2.0, [0.5], m_lepton=0.0)
        >>> float(y.per_pot_per_q2[0]), y.flags
        (0.0, [['above_data_range']])
    """
    n_pot = check_n_pot(n_pot)
    edges, values, var = _hist_arrays(unfolded, "unfolded_m")
    m_chi = np.atleast_1d(np.asarray(m_chi, dtype=np.float64))
    centre = 0.5 * (edges[1:] + edges[:-1])
    f = mcp_factor(centre[None, :], m_chi[:, None], m_lepton, q)
    y = (f * values[None, :]).sum(axis=1) / n_pot
    err = np.sqrt((f**2 * var[None, :]).sum(axis=1)) / n_pot
    flags = _mcp_flags(m_chi, edges[0], edges[-1])
    contributing = (f != 0) & (values[None, :] < 0)
    for i in range(len(m_chi)):
        if contributing[i].any():
            flags[i].append("negative_bins")
    return McpYield(m_chi, y, err, flags, n_pot, "histogram")


def mcp_yield_from_pairs(
    m: ArrayLike,
    weight: ArrayLike,
    n_pot: float,
    m_chi: ArrayLike,
    *,
    m_lepton: float,
    q: float = 1.0,
    mass_range: tuple[float, float] | None = None,
) -> McpYield:
    r"""χχ̄ yield per POT (per Q² for q = 1) summed exactly over pairs (Eq. 8).

    :math:`Y(m_\chi) = \sum_i w_i\, Q^2 K_\chi(m_i)/K_\ell(m_i) / N_{\rm POT}`, the pairs' own
    masses (no binning). ``stat_err`` = √(Σ f_i² w_i²)/N_POT.

    Arguments:
        m, weight: pair masses (GeV) and weights (``pairs.parquet`` ``m``, ``weight``).
        n_pot: protons on target.
        m_chi: χ masses, GeV.
        m_lepton: lepton mass, GeV.
        q: millicharge.
        mass_range: keep pairs in [lo, hi) (the analysis' mass window); default: all pairs.

    Example:
        >>> y = mcp_yield_from_pairs([0.5, 0.9], [1.0, 2.0], 1.0, [0.3], m_lepton=0.0)
        >>> bool(np.isclose(y.per_pot_per_q2[0], 2 * mcp_factor(0.9, 0.3, 0.0)))
        True
    """
    n_pot = check_n_pot(n_pot)
    m = np.asarray(m, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)
    if mass_range is not None:
        keep = (m >= mass_range[0]) & (m < mass_range[1])
        m, w = m[keep], w[keep]
    m_chi = np.atleast_1d(np.asarray(m_chi, dtype=np.float64))
    y = np.empty(len(m_chi))
    err = np.empty(len(m_chi))
    for i, mc in enumerate(m_chi):
        f = mcp_factor(m, mc, m_lepton, q)
        y[i] = np.sum(f * w) / n_pot
        err[i] = np.sqrt(np.sum((f * w) ** 2)) / n_pot
    lo, hi = (
        mass_range
        if mass_range is not None
        else (float(m.min(initial=np.inf)), float(m.max(initial=0.0)))
    )
    return McpYield(m_chi, y, err, _mcp_flags(m_chi, lo, hi), n_pot, "pairs")
