r"""Data-driven A′ and χχ̄ yields per proton on target (paper Eqs. 6 and 8; docs/explanation/method.md).

Offers the pure yield functions with typed results: :func:`aprime_yield` and
:func:`aprime_yield_from_pairs` (Eq. 6, :class:`AprimeYield`), :func:`mcp_yield_from_hist` and
:func:`mcp_yield_from_pairs` (Eq. 8, :class:`McpYield`); N_POT (:func:`resolve_n_pot`), the
comparison curves (:func:`theory_curves`, :func:`standard_recipe`); and the ``gammastar yields`` stage
:func:`compute_yields`, a thin orchestration (:func:`read_yield_inputs`, the yields,
:func:`yields_document`, the writers) returning a :class:`YieldsResult`. The errors
(``stat_err``, ``bkg_sub_err``) and the flags are documented in docs/explanation/method.md.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.config import AnalysisConfig, flavour_config, load_config
from gammastar.core import rundir
from gammastar.core.artifacts import atomic_path, check_writable, make_meta
from gammastar.core.results import StageResult
from gammastar.corrections.migration import migration_correction, read_simulation
from gammastar.corrections.pair_acceptance import fiducial_from_config
from gammastar.corrections.unfold import PHASE_SPACE_FIDUCIAL
from gammastar.errors import ConfigError, GammastarError, InputError
from gammastar.physics import bremsstrahlung as br
from gammastar.physics.channels import LEPTON_CHANNELS
from gammastar.physics.kinematics import aprime_factor, mcp_factor
from gammastar.physics.millicharge import meson_branching_ratio
from gammastar.selection.flavours import FLAVOUR_CODES, flavour_channel
from gammastar.yields.extrapolation.fitting import FitSettings, fit_extrapolation
from gammastar.yields.plots import plot_aprime, plot_mcp, plot_standard_recipe
from gammastar.yields.standard_recipe import (
    brems_interpolated,
    meson_yields_from_meta,
    standard_recipe_section,
)
from gammastar.yields.uncertainties import yield_uncertainties
from gammastar.yields.universality import combine, combine_channels, compare_aprime

if TYPE_CHECKING:
    import hist


log = logging.getLogger(__name__)

OUTPUT_FILES = rundir.stage_outputs("yields")  # yields.json, yields_aprime.csv, yields_mcp.csv
FIGURES = rundir.stage_figures("yields")


# --------------------------------------------------------------------------- results
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


# ------------------------------------------------------------------------- internals
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


# --------------------------------------------------------------------------- A′ (Eq. 6)
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


def _universality(aprime: dict, other: Path, lepton: str, ycfg: Any) -> dict[str, Any]:
    """``lepton_universality`` and ``aprime_combined`` of ``yields.json`` against the other
    flavour's ``yields.json`` at ``other`` (:func:`gammastar.yields.universality.compare_aprime`)."""

    try:
        theirs = rundir.read_artifact(other, "yields.json", what="yields.compare_with")
        their_lepton = theirs["meta"].get("lepton", "mu" if theirs["meta"]["lepton_mass"] > 0.01
                                          else "e")  # fmt: skip
        block = theirs["aprime"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise InputError(
            f"{other}: yields.compare_with: not a readable yields.json ({err})"
        ) from None
    if their_lepton == lepton:
        raise InputError(
            f"{other}: yields.compare_with holds {lepton!r} yields too; give the other flavour's"
        )

    name = {c.flavour: c.name for c in LEPTON_CHANNELS.values()}
    rng = ycfg.universality_mass_range
    out = compare_aprime(
        {**aprime, "bin_edges": np.asarray(aprime["bin_edges"]).tolist()}, block,
        labels=(name[lepton], name[their_lepton]), mass_range=rng,
    )  # fmt: skip
    combined = out.pop("combined")
    combined.update(mass=out["mass"], bin_edges=out["bin_edges"], compared_with=str(other))
    return {"lepton_universality": out, "aprime_combined": combined}


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


# --------------------------------------------------------------------------- χχ̄ (Eq. 8)
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


# --------------------------------------------------------------------------- N_POT
def _meta_from_root(path: Path) -> dict[str, Any] | None:
    import uproot

    try:
        with uproot.open(path) as f:
            if "meta" not in f:
                return None
            obj = f["meta"]
            text = str(obj)
    except Exception as err:  # noqa: BLE001 - any unreadable file is reported by name
        raise InputError(f"{path}: cannot read the 'meta' string ({err})") from None
    try:
        return json.loads(text)
    except ValueError:
        raise InputError(f"{path}: 'meta' is not a JSON string") from None


def mock_normalisation(n_pot_source: str) -> dict[str, Any] | None:
    """The mock files' ``meta.mock_normalisation`` when N_POT came from their metadata
    (``n_pot_source`` ``input_meta:<paths>``, :func:`resolve_n_pot`): the first file's record
    with the largest ``rel_uncertainty`` of the files (``None`` if a file states none);
    ``None`` for an N_POT from the config or ``select.json``, or files without the record
    (real data, an older mock): no ``mock_normalisation`` nuisance then."""
    if not n_pot_source.startswith("input_meta:"):
        return None
    names = n_pot_source.removeprefix("input_meta:").split(" (n_pot_by_flavour.")[0]
    records = []
    for name in names.split(","):
        meta = _meta_from_root(Path(name))
        rec = (meta or {}).get("mock_normalisation")
        if not isinstance(rec, dict):
            return None
        records.append(rec)
    if not records:
        return None
    rels = [r.get("rel_uncertainty") for r in records]
    rel = None if any(r is None for r in rels) else max(float(r) for r in rels)
    return {**records[0], "rel_uncertainty": rel}


def _input_paths(cfg: AnalysisConfig) -> list[Path]:
    import glob

    files = cfg.input.files
    names: list[str] = []
    if isinstance(files, dict):
        for spec in files.values():
            fs = spec.get("files", {}) if isinstance(spec, dict) else spec
            names.extend(fs.keys() if isinstance(fs, dict) else fs)
    else:
        names = list(files)
    out: list[Path] = []
    for n in names:
        p = str(cfg.resolve(n))
        matches = sorted(glob.glob(p)) if any(c in p for c in "*?[") else [p]
        out.extend(Path(x) for x in matches)
    return out


def resolve_n_pot(
    cfg: AnalysisConfig, run_dir: Path | None = None, flavour: str | None = None
) -> tuple[float, str]:
    """N_POT and where it came from: the config, ``select.json``, or the input files' ``meta``.

    With ``beam.n_pot: from_input``: ``select.json`` in the run directory when it carries
    ``n_pot`` (top level or ``meta``); otherwise the sum of ``n_pot`` over the input ROOT files'
    ``meta`` JSON strings (the mock generator's files, DEVELOPERS.md).

    The flavour's effective exposure (``flavour``, default the config's one flavour; a
    both-flavour config without ``flavour``: the run's N_POT): the mock file's
    ``meta.n_pot_by_flavour`` (``mock.electrons.prescale``), else the run's N_POT divided by
    ``beam.prescale`` of the flavour (1 when not given).

    Raises:
        ConfigError / InputError: no N_POT found, or a non-positive one (naming the source);
            ``beam.prescale`` different from the prescale an input file records.
    """
    flavours = cfg.input.flavours
    if flavour is None and len(flavours) == 1:
        flavour = flavours[0]
    k = float(cfg.beam.prescale.get(flavour, 1.0)) if flavour is not None else 1.0
    tag = f" / beam.prescale.{flavour}" if k != 1.0 else ""
    if cfg.beam.n_pot != "from_input":
        return check_n_pot(cfg.beam.n_pot, "beam.n_pot") / k, "config:beam.n_pot" + tag
    run_dir = run_dir or cfg.output_dir
    sel = run_dir / rundir.SELECT
    if sel.exists():
        try:
            doc = json.loads(sel.read_text())
        except ValueError:
            raise InputError(f"{sel}: not valid JSON") from None
        for where in (doc, doc.get("meta", {})):
            if isinstance(where, dict) and where.get("n_pot") is not None:
                n = check_n_pot(where["n_pot"], f"{sel}: n_pot")
                return n / k, f"select.json:{sel}{tag}"
    total, used = 0.0, []
    for path in _input_paths(cfg):
        if not path.exists():
            continue
        meta = _meta_from_root(path)
        if meta is None or meta.get("n_pot") is None:
            raise InputError(
                f"{path}: no 'meta' with n_pot; set beam.n_pot in the config "
                "(beam.n_pot: from_input needs the mock generator's metadata)"
            )
        total += _file_n_pot(path, meta, flavour, k)
        used.append(str(path))
    if not used:
        raise ConfigError(
            "beam.n_pot is 'from_input' but neither select.json nor any input file "
            "carries n_pot; set beam.n_pot"
        )
    by = f" (n_pot_by_flavour.{flavour})" if flavour is not None and len(flavours) > 1 else ""
    return total, "input_meta:" + ",".join(used) + by


def _file_n_pot(path: Path, meta: dict[str, Any], flavour: str | None, k: float) -> float:
    """One input file's N_POT for ``flavour``: ``meta.n_pot_by_flavour`` when the file
    records it (then ``beam.prescale`` k must equal the file's ``meta.prescale``), else
    ``meta.n_pot`` / k."""
    by = meta.get("n_pot_by_flavour")
    if flavour is None or not isinstance(by, dict) or flavour not in by:
        return check_n_pot(meta["n_pot"], f"{path}: meta.n_pot") / k
    recorded = (meta.get("prescale") or {}).get(flavour, 1.0)
    if k != 1.0 and not math.isclose(k, float(recorded), rel_tol=1e-12):
        raise ConfigError(
            f"beam.prescale.{flavour}: {k:g}, but {path} records the mock's prescale "
            f"{recorded:g} (meta.prescale; its meta.n_pot_by_flavour already holds it): "
            f"drop beam.prescale.{flavour} with beam.n_pot: from_input"
        )
    return check_n_pot(by[flavour], f"{path}: meta.n_pot_by_flavour.{flavour}")


# --------------------------------------------------------------------------- theory
def _brems_settings(cfg: AnalysisConfig) -> br.BremsSettings:
    """The bremsstrahlung curve's settings (``beam``, ``yields.brems_*``)."""
    y = cfg.yields
    return br.BremsSettings(
        beam_energy=cfg.beam.energy,
        interaction_lengths=cfg.beam.interaction_lengths,
        z_min=y.brems_z_min,
        z_max=y.brems_z_max,
        pt_max=y.brems_pt_max,
        cutoff=y.brems_cutoff,
        band_factor=y.brems_band_factor,
        normalisation=y.brems_normalisation,
    )


def standard_recipe(cfg: AnalysisConfig, aprime: Mapping[str, Any]) -> dict[str, Any] | None:
    """``yields.json`` ``standard_recipe``: the generator-level recipe on ``aprime``'s mass bins
    (:func:`gammastar.yields.standard_recipe.standard_recipe_section`) with the mesons per POT
    of the input files' mock ``meta`` and the bremsstrahlung curve's settings; None (logged)
    when no input file carries them (real data: no generator behind it)."""
    metas = []
    for path in _input_paths(cfg):
        meta = _meta_from_root(path) if path.exists() else None
        if meta is not None:
            metas.append((str(path), meta))
    if not metas:
        log.info("yields: no standard-recipe comparison (no input file carries a mock 'meta')")
        return None
    try:
        mesons = meson_yields_from_meta(metas)
    except InputError as err:
        log.warning("yields: no standard-recipe comparison (%s)", err)
        return None
    st = _brems_settings(cfg)
    edges = np.asarray(aprime["bin_edges"], dtype=np.float64)
    return standard_recipe_section(
        aprime, mesons, brems=brems_interpolated(st, float(edges[0]), float(edges[-1])),
        brems_settings={**dataclasses.asdict(st), "curve": "theory.brems_aprime (central)"},
    )  # fmt: skip


def theory_curves(cfg: AnalysisConfig, aprime_mass: NDArray, mcp_mass: NDArray) -> dict[str, Any]:
    """Bremsstrahlung A′ and χχ̄ bands and the π0 → γχχ̄ / J/ψ → χχ̄ lines (docs/explanation/physics.md §8)."""

    y = cfg.yields
    st = _brems_settings(cfg)
    lo = min(float(aprime_mass.min(initial=1.0)), 0.2)
    hi = max(float(aprime_mass.max(initial=0.2)), 1.2)
    grid = np.linspace(lo, hi, 300)
    a_c, a_lo, a_hi = br.aprime_yield_band(grid, st)
    # theory lines on a dense log grid spanning the requested χ masses (smooth curves)
    req = np.asarray(mcp_mass, dtype=np.float64)
    mc = np.unique(
        np.concatenate(
            [
                np.geomspace(min(req.min(initial=0.01), 0.005), max(req.max(initial=0.5), 1.6), 80),
                req,
            ]
        )
    )
    c_c, c_lo, c_hi = br.mcp_yield_band(mc, st, m_max=y.brems_mcp_mass_max)
    return {
        "brems_aprime": {
            "mass": grid,
            "per_pot_per_eps2": a_c,
            "low": a_lo,
            "high": a_hi,
            "cutoff_gev": [st.cutoff / st.band_factor, st.cutoff, st.cutoff * st.band_factor],
        },
        "brems_mcp": {"mass": mc, "per_pot_per_q2": c_c, "low": c_lo, "high": c_hi},
        "pi0_mcp": {
            "mass": mc,
            "per_pot_per_q2": y.pi0_per_pot * meson_branching_ratio("pi0", mc),
            "pi0_per_pot": y.pi0_per_pot,
        },
        "jpsi_mcp": {
            "mass": mc,
            "per_pot_per_q2": y.jpsi_per_pot * meson_branching_ratio("jpsi", mc),
            "jpsi_per_pot": y.jpsi_per_pot,
        },
        "settings": {
            "beam_energy": st.beam_energy,
            "interaction_lengths": st.interaction_lengths,
            "z_range": [st.z_min, st.z_max],
            "pt_max": st.pt_max,
            "normalisation": st.normalisation,
            "mcp_mass_max": y.brems_mcp_mass_max,
            "method": "FWW splitting function (arXiv:1311.3870 eq. 3) x sigma_pp(s')/sigma_pp(s) "
            "x |F1(m^2)|^2 x off-shell cut-off (arXiv:2108.05900)",
        },
    }


# --------------------------------------------------------------------------- stage
def _read_histograms(path: Path, suffix: str = "") -> dict[str, Any]:
    """``unfolded_m``, ``comb_m``, ``signal_m`` (``suffix``: one flavour's of a both-channels
    run, e.g. ``_ee``, returned under the plain names)."""
    import uproot

    if not path.exists():
        raise InputError(f"{path}: histograms.root not found; run `gammastar select` first")
    out = {}
    try:
        with uproot.open(path) as f:
            if "unfolded_m" + suffix not in f:
                raise InputError(f"{path}: no histogram 'unfolded_m{suffix}'")
            rundir.RunDir(path.parent).check_histograms(f)  # schema check (one clear error)
            for name in ("unfolded_m", "comb_m", "signal_m"):
                if name + suffix in f:
                    out[name] = f[name + suffix].to_hist()
    except GammastarError:
        raise
    except Exception as err:  # noqa: BLE001 - reported with the file name
        raise InputError(f"{path}: cannot read histograms ({err})") from None
    return out


PHASE_SPACE_TEXT = {
    "full": "full phase space",
    "detector_acceptance": "inside the detector acceptance",
    "fiducial": "full phase space: fiducial region measured, the rest extrapolated",
}


def _fiducial_yields(
    cfg: AnalysisConfig,
    pairs: Any,
    edges: NDArray,
    n_pot: float,
    m_chi: NDArray,
    m_lepton: float,
) -> dict[str, Any]:
    """The fiducial-region yields, the fitted extrapolation and the full-phase-space pair
    weights (``weight_full`` = weight / f_F(m)); on mock data also the generator's true f_F.

    The A′ yield of the main keys is then computed from ``weight_full``: inside the fiducial
    region it is the data's, outside the model's (docs/explanation/method.md)."""
    fiducial = fiducial_from_config(cfg)
    m = pairs["m"].to_numpy()
    w = pairs["weight"].to_numpy()
    ap_fid = aprime_yield_from_pairs(
        m, w, n_pot, edges, m_lepton=m_lepton, bin_width=cfg.yields.mass_bin_width,
        charge=pairs["charge"].to_numpy(),
    )  # fmt: skip
    mcp_fid = mcp_yield_from_pairs(
        m, w, n_pot, m_chi, m_lepton=m_lepton, mass_range=(float(edges[0]), float(edges[-1]))
    )
    # ȳ fixed at the beam–nucleon c.m. rapidity (FitSettings.from_config)
    ex = fit_extrapolation(m, pairs["pT"].to_numpy(), pairs["y"].to_numpy(), w, ap_fid.edges,
                           fiducial, settings=FitSettings.from_config(cfg))  # fmt: skip
    f_pair = ex.at(m)[0]
    ext = ex.as_dict()
    mig = _migration(cfg, fiducial, ap_fid.edges)
    ext["resolution_migration"] = (
        {"applied": False, "note": "yields.resolution_migration not given: Y = Y_F / f_F"}
        if mig is None
        else {"applied": True, **mig.as_dict()}
    )
    c_pair = np.ones(m.shape) if mig is None else mig.at_pairs(m)
    aprime = {
        "per_pot_per_eps2_fiducial": ap_fid.per_pot_per_eps2,
        "stat_err_fiducial": ap_fid.stat_err,
        "fiducial_fraction": ex.fiducial_fraction,
        "fiducial_fraction_err": ex.fiducial_fraction_err,
        "extrapolated_fraction": 1.0 - ex.fiducial_fraction,
    }
    mcp = {"per_pot_per_q2_fiducial": mcp_fid.per_pot_per_q2, "stat_err_fiducial": mcp_fid.stat_err}
    log.info(
        "yields: fiducial region holds %s of the γ* (model fit, per mass bin)",
        ", ".join(f"{f:.2f}" for f in ex.fiducial_fraction[:: max(1, len(ex.mass) // 6)]),
    )
    return {"aprime": aprime, "mcp": mcp, "extrapolation": ext, "weight_full": w * c_pair / f_pair}


def _migration(cfg: AnalysisConfig, fiducial: Any, edges: NDArray) -> Any:
    """The configured simulation's migration correction (``yields.resolution_migration``) on
    the yield bins ``edges``, or ``None``."""

    mc = cfg.yields.resolution_migration
    if mc is None:
        return None
    paths = [cfg.resolve(p) for p in mc.simulation]
    sim = read_simulation(paths, tree=mc.tree, histogram=mc.histogram)
    seed = cfg.seed if mc.seed is None else mc.seed
    mig = migration_correction(sim, fiducial, edges, bootstrap=mc.bootstrap,
                               seed=seed, simulation=[str(p) for p in paths])  # fmt: skip
    if mig.uncorrected:
        log.warning(
            "yields: resolution_migration: %d mass bin(s) left uncorrected (no simulated γ*, or "
            "a bootstrap replica without any in F): %s GeV",
            len(mig.uncorrected),
            ", ".join(f"{0.5 * (edges[i] + edges[i + 1]):.3f}" for i in mig.uncorrected),
        )
    centres = 0.5 * (edges[1:] + edges[:-1])
    k = np.argsort(np.abs(np.nan_to_num(mig.correction, nan=1.0) - 1.0))[::-1][:3]
    largest = ", ".join(
        f"{mig.correction[i]:.3f} ± {mig.correction_err[i]:.3f} at {centres[i]:.3f} GeV"
        for i in sorted(k)
    )
    log.info("yields: resolution migration from %d simulated γ*: c = %s", mig.sources, largest)
    return mig


ACCEPTANCE_LOST_FLAG = 0.05
"""A yield point is flagged ``acceptance_lost`` when more than this fraction of the generated
γ* of its mass range lies in (m, pT) bins below ``unfold.min_acceptance`` (full phase space)."""


def read_acceptance_loss(
    run_dir: Path, channel: str | None = None
) -> tuple[np.ndarray, np.ndarray] | None:
    """``(edges, lost fraction per mass bin)`` from ``select.json`` → ``unfold.acceptance``
    (``lost_fraction_map_per_mass_bin``; NaN where unknown), or ``None``; ``channel``: that
    flavour's (``flavours.<channel>``) of a both-channels run."""
    sel = run_dir / rundir.SELECT
    try:
        doc = json.loads(sel.read_text())
    except (OSError, ValueError):
        return None
    if channel is not None:  # one flavour of a both-channels run
        doc = (doc.get("flavours") or {}).get(channel) or {}
    acc = doc.get("unfold", {}).get("acceptance") or {}
    per_bin = acc.get("lost_fraction_map_per_mass_bin")
    if not per_bin:
        return None
    values = np.array([np.nan if v is None else v for v in per_bin["values"]], dtype=float)
    return np.asarray(per_bin["edges"], dtype=float), values


def flag_acceptance_loss(
    loss: tuple[np.ndarray, np.ndarray], ap: AprimeYield, mcp: McpYield, m_lepton: float
) -> list[float]:
    """Add ``acceptance_lost`` to the A′ bins whose mean lost fraction (over the native bins
    inside) exceeds :data:`ACCEPTANCE_LOST_FLAG`, and to the χχ̄ points whose sum (m > 2m_χ)
    includes such a native bin. Returns the A′ bins' lost fractions.

    Example:
        >>> ap = AprimeYield(np.array([.3, .5]), np.array([.2, .4, .6]), np.ones(2), np.ones(2),
        ...                  np.ones(2), [[], []], 1.0)
        >>> mcp = McpYield(np.array([.05, .25]), np.ones(2), np.ones(2), [[], []], 1.0, "pairs")
        >>> flag_acceptance_loss((np.array([.2, .3, .4, .5, .6]), np.array([.4, .2, 0, 0])),
        ...                      ap, mcp, 0.1057)
        [0.30000000000000004, 0.0]
        >>> ap.flags, mcp.flags
        ([['acceptance_lost'], []], [['acceptance_lost'], []])
    """
    edges, values = loss
    centres = 0.5 * (edges[1:] + edges[:-1])
    out = []
    for i in range(len(ap.mass)):
        inside = (centres >= ap.edges[i]) & (centres < ap.edges[i + 1]) & np.isfinite(values)
        f = float(values[inside].mean()) if inside.any() else float("nan")
        out.append(f)
        if f > ACCEPTANCE_LOST_FLAG:
            ap.flags[i].append("acceptance_lost")
    lossy = centres[np.nan_to_num(values) > ACCEPTANCE_LOST_FLAG]
    for i, m_chi in enumerate(np.atleast_1d(mcp.mass)):
        if lossy.size and lossy.max() > 2 * max(float(m_chi), m_lepton):
            mcp.flags[i].append("acceptance_lost")
    return out


def read_phase_space(run_dir: Path) -> str:
    """Which phase space the unfolded spectrum stands for (``full``, ``detector_acceptance``;
    ``unknown`` when the run directory records neither): ``select.json`` ``meta.phase_space``,
    else the ``phase_space`` string of ``histograms.root``."""
    import uproot

    sel = run_dir / rundir.SELECT
    if sel.exists():
        try:
            ps = json.loads(sel.read_text()).get("meta", {}).get("phase_space")
        except (OSError, ValueError):
            ps = None
        if ps:
            return str(ps)
    try:
        with uproot.open(run_dir / rundir.HISTOGRAMS) as f:
            if "phase_space" in f:
                return str(f["phase_space"])
    except Exception as err:  # noqa: BLE001 - unreadable files are reported by _read_histograms
        log.debug("phase_space not readable from histograms.root: %s", err)
    return "unknown"


def _write_csv(
    path: Path, header: list[str], rows: list[list[Any]], comment: str, force: bool
) -> None:

    def fmt(x: Any) -> str:
        if isinstance(x, list):
            return ";".join(x)
        if isinstance(x, float | np.floating):
            return "" if not np.isfinite(x) else f"{float(x):.8g}"
        return str(x)

    lines = [f"# {comment}", ",".join(header)]
    lines += [",".join(fmt(x) for x in r) for r in rows]
    with atomic_path(path, force) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


@dataclass
class YieldInputs:
    """What the yields stage reads from the run directory (:func:`read_yield_inputs`)."""

    hists: dict[str, Any]
    """``unfolded_m`` and, when present, ``comb_m``, ``signal_m``."""
    phase_space: str
    n_pot: float
    n_pot_source: str
    pairs: Any
    """The pairs table (``m``, ``weight``, ``charge``; ``pT``, ``y`` in the fiducial phase
    space), or ``None`` when no source uses it."""
    consistent: bool | None
    """Whether the pairs' weights sum to ``unfolded_m`` (``None``: no pairs)."""
    inputs: list[Path]
    polarisation: dict[str, Any] | None = None
    """``select.json``'s ``polarisation`` block (λ_θ, λ_φ, λ_θφ per mass bin), or ``None``."""
    flavour: str | None = None
    """One flavour of a both-channels run (``input.lepton: [mu, e]``): these are its
    histograms (``unfolded_m_ee``, ...) and pairs (``pairs.parquet`` ``flavour``)."""


@dataclass(frozen=True, kw_only=True)
class YieldsResult(StageResult):
    """What :func:`compute_yields` wrote: ``yields.json`` (``path``), its ``document`` (as
    written, before the JSON encoding: arrays may be numpy), and the typed yields it was made
    from.

    Arguments:
        aprime: the A′ yield (Eq. 6; the channels' combination in a both-channels run).
        mcp: the χχ̄ yield (Eq. 8).
        aprime_source: where the A′ yield came from (``histogram``, ``pairs``, ``combined``).
        inputs: what was read (:class:`YieldInputs`; the first flavour's in a both-channels
            run).
        files: the stage's tracked outputs by name (``yields.json`` and the two CSV tables).
    """

    aprime: AprimeYield = field(repr=False)
    mcp: McpYield = field(repr=False)
    aprime_source: str = "histogram"
    inputs: YieldInputs | None = field(default=None, repr=False)
    files: Mapping[str, Path] = field(default_factory=dict)


def compute_yields(
    config: AnalysisConfig | str | os.PathLike[str],
    *,
    output: str | os.PathLike[str] | None = None,
    force: bool = False,
    plots: bool = True,
    theory: bool = True,
) -> YieldsResult:
    """The ``gammastar yields`` stage: A′ and χχ̄ yields per POT from the run directory.

    Reads ``histograms.root`` (``unfolded_m``, ``comb_m``, ``signal_m``) and, when present,
    ``pairs.parquet``; writes ``yields.json`` (public contract, docs/reference/outputs.md), ``yields_aprime.csv``,
    ``yields_mcp.csv`` and with ``plots`` the Fig. 2/3 analogues ``figures/yields_aprime.png``,
    ``figures/yields_mcp.png`` and, with a standard recipe, ``figures/yields_standard_recipe.png``.

    Arguments:
        config: the analysis config (object or YAML path).
        output: run directory (default: the config's).
        force: overwrite existing outputs.
        plots: also draw the figures.
        theory: compute the bremsstrahlung / π0 / J/ψ comparison curves (in ``theory``) and
            the standard generator-level recipe (``standard_recipe``).

    Returns:
        A :class:`YieldsResult`: ``yields.json``, its document (``.document``) and the typed
        yields (``.aprime``, ``.mcp``).

    Raises:
        GammastarError: missing inputs, bad N_POT, outputs exist without ``force``.
    """

    cfg = config if isinstance(config, AnalysisConfig) else load_config(config)
    if output is not None:
        cfg = cfg.model_copy(update={"output": str(Path(output).resolve())})
    run_dir = cfg.output_dir
    outs = [run_dir / n for n in OUTPUT_FILES] + ([run_dir / n for n in FIGURES] if plots else [])
    for p in outs:  # refuse early, before any work
        check_writable(p, force)
    if len(cfg.input.flavours) > 1:  # input.lepton: [mu, e]: both channels in one run
        res = _flavour_yields(cfg, theory)
        _write_outputs(cfg, res, force, plots)
        return res
    inp = read_yield_inputs(cfg)
    ap, ap_source, mcp, fid = _yields(cfg, inp)
    loss = read_acceptance_loss(run_dir) if inp.phase_space == "full" else None
    lost_fraction = (
        flag_acceptance_loss(loss, ap, mcp, cfg.input.lepton_mass) if loss is not None else None
    )
    _warn_flags(ap)
    res = YieldsResult(
        run_dir / rundir.YIELDS,
        yields_document(cfg, inp, ap, ap_source, mcp, fid, lost_fraction, theory),
        aprime=ap, mcp=mcp, aprime_source=ap_source, inputs=inp,
        files={n: run_dir / n for n in OUTPUT_FILES},
    )  # fmt: skip
    _write_outputs(cfg, res, force, plots)
    return res


def read_yield_inputs(cfg: AnalysisConfig, flavour: str | None = None) -> YieldInputs:
    """The run directory's inputs of the yields stage, checked: ``select.json`` (schema),
    ``histograms.root``, N_POT and the pairs table where a source (``yields.*_source``) or the
    fiducial phase space needs it; ``flavour``: that flavour's of a both-channels run
    (``cfg`` is then :func:`gammastar.config.flavour_config`'s)."""
    run_dir = cfg.output_dir
    rd = rundir.RunDir(run_dir)
    polarisation = None
    suffix, block = "", None
    if flavour is not None:

        suffix = "_" + flavour_channel(flavour)
    if rd.path(rundir.SELECT).exists():  # schema check: refuse an invalid/unknown-version one
        # the decay angular distribution the selection measured (gammastar.corrections.polarisation)
        sel = rd.read_json(rundir.SELECT)
        if flavour is not None:
            block = (sel.get("flavours") or {}).get(suffix[1:])
            if block is None:
                raise InputError(
                    f"{rd.path(rundir.SELECT)}: no flavours.{suffix[1:]} block: the selection "
                    f"did not select {flavour!r} (input.lepton); rerun select"
                )
            sel = block
        polarisation = sel.get("polarisation")
    hpath = rd.path(rundir.HISTOGRAMS)
    hists = _read_histograms(hpath, suffix)
    phase_space = block["phase_space"] if block is not None else read_phase_space(run_dir)
    n_pot, n_pot_source = resolve_n_pot(cfg, run_dir, flavour)
    inputs: list[Path | str] = [hpath]
    ppath = rd.pairs_location()  # pairs.parquet, or the dataset at select.json pairs_url
    has_pairs = rd.has_pairs()
    pairs = None
    wanted = {cfg.yields.mcp_source, cfg.yields.aprime_source}
    if "pairs" in wanted and not has_pairs:
        raise InputError(f"{ppath}: yields.*_source is 'pairs' but the file does not exist")
    fiducial_ps = phase_space == PHASE_SPACE_FIDUCIAL
    if fiducial_ps and not has_pairs:
        raise InputError(
            f"{ppath}: the fiducial-region yields (unfold.lepton_acceptance) need the pairs "
            "table to fit the extrapolation; rerun select"
        )
    if (wanted & {"auto", "pairs"} or fiducial_ps) and has_pairs:
        cols = ["m", "weight", "charge"] + (["pT", "y"] if fiducial_ps else [])
        pairs = _read_pairs(rd, cols, flavour)  # those columns checked against the contract
        inputs.append(ppath)
    consistent = None
    if pairs is not None:
        consistent = pairs_match_histogram(pairs["m"], pairs["weight"], hists["unfolded_m"])
        if not consistent and fiducial_ps:
            # the fiducial-region yields come from the pairs whatever the sources say: a
            # resolution unfolding of unfolded_m (unfold.bayesian_iterations) does not reach them
            log.warning(
                "yields: %s weights do not sum to unfolded_m (resolution unfolding?); the "
                "fiducial-region yields (unfold.lepton_acceptance) are the pairs', at the data's "
                "mass resolution: unfold.bayesian_iterations does not change them",
                ppath,
            )
        elif not consistent:
            log.warning(
                "yields: %s weights do not sum to unfolded_m (resolution unfolding?); "
                "'auto' sources use the histogram",
                ppath,
            )
    return YieldInputs(
        hists, phase_space, n_pot, n_pot_source, pairs, consistent, inputs, polarisation, flavour
    )


def _read_pairs(rd: rundir.RunDir, cols: list[str], flavour: str | None) -> Any:
    """``cols`` of ``pairs.parquet``; ``flavour``: only that flavour's rows (``flavour``
    column of a both-channels run, :data:`gammastar.selection.stage.FLAVOUR_CODES`)."""
    if flavour is None:
        return rd.read_pairs(cols)

    pairs = rd.read_pairs([*cols, "flavour"])
    keep = pairs["flavour"].to_numpy() == FLAVOUR_CODES[flavour]
    return pairs.loc[keep, cols].reset_index(drop=True)


def _yields(
    cfg: AnalysisConfig, inp: YieldInputs
) -> tuple[AprimeYield, str, McpYield, dict[str, Any] | None]:
    """``(A′ yield, its source, χχ̄ yield, fiducial-region document or None)``: from the pairs
    (``pairs``, or ``auto`` when they sum to ``unfolded_m``; always in the fiducial phase
    space, with the full-phase-space weights) or from the histogram."""
    ycfg, m_lepton, n_pot = cfg.yields, cfg.input.lepton_mass, inp.n_pot
    unf = inp.hists["unfolded_m"]
    edges = np.asarray(unf.axes[0].edges)
    m_chi = np.asarray(ycfg.mcp_masses, dtype=np.float64)
    pairs, fid = inp.pairs, None
    if inp.phase_space == PHASE_SPACE_FIDUCIAL:
        fid = _fiducial_yields(cfg, pairs, edges, n_pot, m_chi, m_lepton)
        # from here on the pairs stand for the full phase space: each weight / f_F(m)
        pairs = pairs.assign(weight=fid.pop("weight_full"))

    def use_pairs(choice: str) -> bool:
        return pairs is not None and (
            fid is not None or choice == "pairs" or (choice == "auto" and bool(inp.consistent))
        )

    if use_pairs(ycfg.aprime_source):
        ap = aprime_yield_from_pairs(
            pairs["m"].to_numpy(), pairs["weight"].to_numpy(), n_pot, edges, m_lepton=m_lepton,
            bin_width=ycfg.mass_bin_width, charge=pairs["charge"].to_numpy(),
        )  # fmt: skip
        ap_source = "pairs"
    else:
        ap = aprime_yield(
            unf, n_pot, m_lepton=m_lepton, bin_width=ycfg.mass_bin_width,
            comb=inp.hists.get("comb_m"), signal=inp.hists.get("signal_m"),
        )  # fmt: skip
        ap_source = "histogram"
    if use_pairs(ycfg.mcp_source):
        mcp = mcp_yield_from_pairs(
            pairs["m"].to_numpy(), pairs["weight"].to_numpy(), n_pot, m_chi, m_lepton=m_lepton,
            mass_range=(float(edges[0]), float(edges[-1])),
        )  # fmt: skip
    else:
        mcp = mcp_yield_from_hist(unf, n_pot, m_chi, m_lepton=m_lepton)
    return ap, ap_source, mcp, fid


def _warn_flags(ap: AprimeYield, channel: str | None = None) -> None:
    """Warn of the serious flags of ``ap``: the run's yield, or with ``channel`` one channel's
    yield of a both-channels run (its bins before the combination, which the other channel
    can cover)."""
    serious = {"negative", "empty", "below_threshold"}
    n_flagged = sum(1 for f in ap.flags if serious & set(f))
    if n_flagged:
        what, key = (f" ({channel}, before the combination)", f"flavours.{channel}.") \
            if channel else ("", "")  # fmt: skip
        log.warning(
            "yields%s: %d of %d A′ mass bins are negative, empty or below threshold "
            "(yields.json %saprime.flags)", what, n_flagged, len(ap.flags), key,
        )  # fmt: skip


def yields_document(
    cfg: AnalysisConfig,
    inp: YieldInputs,
    ap: AprimeYield,
    ap_source: str,
    mcp: McpYield,
    fid: dict[str, Any] | None,
    lost_fraction: list[float] | None,
    theory: bool,
) -> dict[str, Any]:
    """The ``yields.json`` document (public contract, docs/reference/outputs.md; schemas/…/yields.json):
    the JSON assembly, in one place."""

    doc: dict[str, Any] = {
        "aprime": {
            "mass": ap.mass,
            "per_pot_per_eps2": ap.per_pot_per_eps2,
            "stat_err": ap.stat_err,
            "bkg_sub_err": ap.bkg_sub_err,
            "bin_edges": ap.edges,
            "flags": ap.flags,
            "source": ap_source,
            "acceptance_lost_fraction": lost_fraction,
        },
        "mcp": {
            "mass": mcp.mass,
            "per_pot_per_q2": mcp.per_pot_per_q2,
            "stat_err": mcp.stat_err,
            "flags": mcp.flags,
            "source": mcp.source,
        },
    }
    inputs = list(inp.inputs)
    mc = cfg.yields.resolution_migration
    if fid is not None and mc is not None:  # the detector simulation behind the correction
        inputs += [cfg.resolve(p) for p in mc.simulation]
    if fid is not None:
        f, f_err = fid["aprime"]["fiducial_fraction"], fid["aprime"]["fiducial_fraction_err"]
        # the full-phase-space yield's uncertainty from the extrapolation (the fit's, 1σ)
        fid["aprime"]["extrapolation_err"] = np.abs(ap.per_pot_per_eps2) * f_err / f
        doc["aprime"].update(fid["aprime"])
        doc["mcp"].update(fid["mcp"])
        doc["extrapolation"] = fid["extrapolation"]
    doc["polarisation"] = inp.polarisation  # measured by the selection (gammastar.corrections.polarisation)
    if cfg.uncertainties.enabled:  # named nuisances (gammastar.yields.uncertainties)
        doc["uncertainties"] = _uncertainties(cfg, doc, inp, fiducial=fid is not None)
    if theory:
        doc["theory"] = theory_curves(cfg, ap.mass, np.asarray(cfg.yields.mcp_masses, float))
        doc["standard_recipe"] = standard_recipe(cfg, doc["aprime"])
    if cfg.yields.compare_with is not None:  # lepton universality
        other = cfg.resolve(cfg.yields.compare_with)
        doc.update(_universality(doc["aprime"], other, cfg.input.lepton, cfg.yields))
        inputs.append(other)
    doc["meta"] = _yields_meta(cfg, inp, ap, inputs)
    return doc


def _yields_meta(
    cfg: AnalysisConfig,
    inp: YieldInputs,
    ap: AprimeYield,
    inputs: list[Path],
    pairs_match: bool | None = None,
) -> dict[str, Any]:
    """``yields.json`` ``meta`` (``pairs_match``: overrides ``inp.consistent``, whether the
    pairs' weights sum to ``unfolded_m``; in the fiducial phase space the yields are the pairs'
    whatever it says, and it is False only after a resolution unfolding of ``unfolded_m``)."""

    return make_meta(
        config_sha256=cfg.section_sha256(
            "input", "selection", "background", "unfold", "beam", "yields", "uncertainties"
        ),
        seed=None,
        inputs=inputs,
        stage="yields",
        config_sha256_full=cfg.sha256,
        n_pot=inp.n_pot,
        n_pot_source=inp.n_pot_source,
        mock_normalisation=mock_normalisation(inp.n_pot_source),
        target_interaction_lengths=cfg.beam.interaction_lengths,
        phase_space=inp.phase_space,
        pairs_match_unfolded_m=inp.consistent if pairs_match is None else pairs_match,
        lepton_mass=cfg.input.lepton_mass,
        lepton=cfg.input.lepton,
        mass_bin_width=float(np.median(np.diff(ap.edges))) if len(ap.edges) > 1 else None,
        units={
            "mass": "GeV",
            "aprime.per_pot_per_eps2": "A′ per POT per ε² (Eq. 6)",
            "mcp.per_pot_per_q2": "χχ̄ pairs per POT per Q² (Eq. 8)",
        },
        stat_err="sqrt(sum w^2) incl. like-sign subtraction; bkg_sub_err is that part alone",
        flags_doc="docs/explanation/method.md#10-flags",
    )


def _write_outputs(cfg: AnalysisConfig, res: YieldsResult, force: bool, plots: bool) -> None:
    """``yields.json`` (schema-checked), the two CSV tables and, with ``plots``, the figures."""
    rd = rundir.RunDir(cfg.output_dir)
    ap, mcp, inp = res.aprime, res.mcp, res.inputs
    rd.write_json(rundir.YIELDS, res.document, force)  # schema-checked
    comment = (
        f"gammastar yields; n_pot={inp.n_pot:.6g} ({inp.n_pot_source}); "
        f"phase_space={inp.phase_space}; see yields.json meta"
    )
    _write_csv(
        rd.path(rundir.YIELDS_APRIME_CSV),
        ["mass", "m_lo", "m_hi", "per_pot_per_eps2", "stat_err", "bkg_sub_err", "flags"],
        [
            [
                ap.mass[i],
                ap.edges[i],
                ap.edges[i + 1],
                ap.per_pot_per_eps2[i],
                ap.stat_err[i],
                ap.bkg_sub_err[i],
                ap.flags[i],
            ]
            for i in range(len(ap.mass))
        ],
        comment,
        force,
    )
    _write_csv(
        rd.path(rundir.YIELDS_MCP_CSV),
        ["m_chi", "per_pot_per_q2", "stat_err", "flags"],
        [
            [mcp.mass[i], mcp.per_pot_per_q2[i], mcp.stat_err[i], mcp.flags[i]]
            for i in range(len(mcp.mass))
        ],
        comment,
        force,
    )
    if plots:

        plot_aprime(dict(res.document), cfg.output_dir / FIGURES[0], force=force)
        plot_mcp(dict(res.document), cfg.output_dir / FIGURES[1], force=force)
        if res.document.get("standard_recipe"):
            plot_standard_recipe(dict(res.document), cfg.output_dir / FIGURES[2], force=force)


def _uncertainties(
    cfg: AnalysisConfig, doc: dict[str, Any], inp: YieldInputs, *, fiducial: bool
) -> dict[str, Any]:
    """``yields.json`` ``uncertainties``: :func:`gammastar.yields.uncertainties.yield_uncertainties`
    on the document so far (with ``polarisation``), the histograms and the pairs."""

    rd = rundir.RunDir(cfg.output_dir)
    pairs = None
    if rd.has_pairs():
        kin = fiducial or cfg.unfold.acceptance_map is not None  # λ_θ, the map's statistics
        cols = ["m", "weight", "charge"] + (["pT", "pz"] if kin else [])
        if fiducial and isinstance(cfg.unfold.decay_lambda_theta, str):
            cols += ["acc", "eff", "y"]  # a measured λ_θ moves the region (and the fit)
        pairs = _read_pairs(rd, cols, inp.flavour)
    return yield_uncertainties(cfg, _jsonable(doc), hists=inp.hists, pairs=pairs)


# --------------------------------------------------------------------------- both channels
def _flavour_yields(cfg: AnalysisConfig, theory: bool) -> YieldsResult:
    """The yields of a both-channels run (``input.lepton: [mu, e]``).

    Each flavour's yields are those of its single-flavour run
    (:func:`gammastar.config.flavour_config` on its histograms and pairs:
    :func:`read_yield_inputs` with ``flavour``), in ``flavours.<channel>``. ``aprime`` is
    their combination (:func:`gammastar.yields.universality.combine_channels`: the inverse-variance
    mean where both measure a bin, half the difference as ``syst_err``; one channel alone
    elsewhere, e.g. ee below 2m_μ), with each channel's share per bin in ``aprime.weights``
    (what the flow's training weights use); ``lepton_universality`` the ee/μμ ratio per
    shared bin and its χ² (:func:`gammastar.yields.universality.compare_aprime`); ``mcp`` per χ
    mass the combination of the channels whose data reach down to 2m_χ."""

    per: dict[str, Any] = {}
    for f in cfg.input.flavours:
        fcfg = flavour_config(cfg, f)
        ch = flavour_channel(f)
        inp = read_yield_inputs(fcfg, f)
        ap, ap_source, mcp, fid = _yields(fcfg, inp)
        loss = read_acceptance_loss(cfg.output_dir, ch) if inp.phase_space == "full" else None
        lost = flag_acceptance_loss(loss, ap, mcp, fcfg.input.lepton_mass) if loss else None
        _warn_flags(ap, ch)
        doc = _jsonable(yields_document(fcfg, inp, ap, ap_source, mcp, fid, lost, theory=False))
        per[ch] = {"cfg": fcfg, "inp": inp, "ap": ap, "mcp": mcp, "doc": doc}
    chans = list(per)
    comb = combine_channels({c: per[c]["doc"]["aprime"] for c in chans})
    first = per[chans[0]]
    # the run's N_POT (meta.n_pot); each flavour's yields are per its own effective N_POT
    # (a prescaled trigger's: N_POT / k, resolve_n_pot), in meta.n_pot_by_flavour
    n_pot, n_pot_source = resolve_n_pot(cfg, cfg.output_dir)
    edges = np.asarray(comb["bin_edges"], float)
    nan = lambda v: np.asarray([np.nan if x is None else x for x in v], float)
    ap = AprimeYield(np.asarray(comb["mass"]), edges, nan(comb["per_pot_per_eps2"]),
                     nan(comb["stat_err"]), nan(comb["bkg_sub_err"]), comb["flags"], n_pot)  # fmt: skip
    universality = None
    if {"ee", "mumu"} <= set(chans):
        try:
            universality = compare_aprime(
                per["ee"]["doc"]["aprime"], per["mumu"]["doc"]["aprime"],
                labels=("ee", "mumu"), mass_range=cfg.yields.universality_mass_range,
            )  # fmt: skip
            universality.pop("combined")  # the combination is `aprime`
        except InputError as err:
            log.warning("yields: no lepton-universality comparison (%s)", err)
    mcp = _combined_mcp(per, combine)
    doc: dict[str, Any] = {
        "aprime": {
            **{k: v for k, v in comb.items() if k != "index"},
            "source": "combined",
            "combination": "inverse-variance mean of the channels measuring a bin; syst_err "
            "= |difference|/2 (the disagreement); weights: each channel's share per bin",
        },
        "mcp": mcp,
        "lepton_universality": universality,
        "flavours": {c: {k: v for k, v in per[c]["doc"].items() if k != "meta"} for c in chans},
        "polarisation": first["doc"].get("polarisation"),
    }
    seam = _seam_extrapolation(per)
    if seam is not None:
        doc["extrapolation"] = seam
    if cfg.uncertainties.enabled:
        doc["uncertainties"] = _combined_uncertainties(per, comb)
    if theory:
        doc["theory"] = theory_curves(cfg, ap.mass, np.asarray(cfg.yields.mcp_masses, float))
        doc["standard_recipe"] = standard_recipe(cfg, doc["aprime"])
    inputs = list(dict.fromkeys(p for c in chans for p in per[c]["inp"].inputs))
    meta_inp = dataclasses.replace(
        first["inp"], consistent=all(bool(per[c]["inp"].consistent) for c in chans),
        n_pot=n_pot, n_pot_source=n_pot_source,
    )  # fmt: skip
    doc["meta"] = {
        **_yields_meta(cfg, meta_inp, ap, inputs),
        "n_pot_by_flavour": {c: per[c]["inp"].n_pot for c in chans},
        "flavours": chans,
        "lepton_masses": {c: per[c]["cfg"].input.lepton_mass for c in chans},
        "phase_space_per_flavour": {c: per[c]["inp"].phase_space for c in chans},
    }
    mcp_y = McpYield(np.asarray(mcp["mass"]), nan(mcp["per_pot_per_q2"]), nan(mcp["stat_err"]),
                     mcp["flags"], n_pot, mcp["source"])  # fmt: skip
    return YieldsResult(
        cfg.output_dir / rundir.YIELDS, doc, aprime=ap, mcp=mcp_y, aprime_source="combined",
        inputs=first["inp"], files={n: cfg.output_dir / n for n in OUTPUT_FILES},
    )  # fmt: skip


def _seam_extrapolation(per: dict[str, Any]) -> dict[str, Any] | None:
    """The top-level ``extrapolation`` of a both-channels run: the fiducial channel's
    (``flavours.<channel>.extrapolation``, kept there too) with ``channel`` and ``seam`` (its
    lowest mass bin edge, GeV: where its yields start), when one channel is fiducial and
    another full phase space; else ``None`` (docs/howto/both-channels.md).

    Below the seam the run's flow and yields are the full-phase-space channel's alone;
    at and above it the reach samples the flow inside the fiducial region and the fitted
    model outside (:class:`gammastar.yields.extrapolation.samplers.ExtrapolatedSampler` ``seam``).
    """
    fid = [c for c in per if per[c]["inp"].phase_space == "fiducial"]
    full = [c for c in per if per[c]["inp"].phase_space == "full"]
    ex = per[fid[0]]["doc"].get("extrapolation") if len(fid) == 1 and full else None
    if ex is None:
        return None
    return {**ex, "channel": fid[0], "seam": float(ex["bin_edges"][0])}


def _combined_mcp(per: dict[str, Any], combine: Any) -> dict[str, Any]:
    """``mcp`` of a both-channels run: per χ mass the channels whose data start at or below
    2m_χ (their Eq. 8 sums cover the same γ* masses), inverse-variance combined where two
    do (``syst_err`` half their difference), one alone elsewhere (ee for light χ)."""
    chans = list(per)
    docs = {c: per[c]["doc"]["mcp"] for c in chans}
    lows = {c: float(per[c]["doc"]["aprime"]["bin_edges"][0]) for c in chans}
    out: dict[str, Any] = {k: [] for k in ("per_pot_per_q2", "stat_err", "syst_err", "flags",
                                           "channels")}  # fmt: skip
    mass = [float(v) for v in docs[chans[0]]["mass"]]
    for i, mc in enumerate(mass):
        ok = [
            c for c in chans
            if lows[c] <= 2 * mc + 1e-9 and docs[c]["per_pot_per_q2"][i] is not None
            and docs[c]["stat_err"][i] not in (None, 0.0)
        ]  # fmt: skip
        if not ok:  # no channel reaches 2m_χ: the lowest-reaching one's (flagged) value
            ok = [min(chans, key=lambda c: lows[c])]
        if len(ok) == 2:
            y, s, d, _ = (float(v[0]) for v in combine(
                *(np.array([docs[c][k][i]], float) for c in ok for k in ("per_pot_per_q2",
                                                                         "stat_err"))))  # fmt: skip
        else:
            y, s, d = docs[ok[0]]["per_pot_per_q2"][i], docs[ok[0]]["stat_err"][i], 0.0
        out["per_pot_per_q2"].append(y)
        out["stat_err"].append(s)
        out["syst_err"].append(d)
        out["flags"].append(sorted({f for c in ok for f in docs[c]["flags"][i]}))
        out["channels"].append(ok)
    return {"mass": mass, **out, "source": "combined"}


def _combined_uncertainties(per: dict[str, Any], comb: dict[str, Any]) -> dict[str, Any]:
    """``uncertainties`` of the combined A′ yield: each named nuisance's relative size per
    combined bin propagated linearly through the mean (Σ_ℓ λ_ℓ y_ℓ r_ℓ / y; a source of one
    channel only scales its share), ``data_stat`` the combination's own, plus
    ``universality``: the channels' disagreement ``syst_err``/y. The per-channel blocks stay
    in ``flavours.<channel>.uncertainties``."""
    chans = list(per)
    mass = np.asarray(comb["mass"], float)
    y = np.asarray([np.nan if v is None else v for v in comb["per_pot_per_eps2"]], float)
    lo, hi = np.asarray(comb["bin_edges"][:-1]), np.asarray(comb["bin_edges"][1:])
    names: dict[str, dict[str, Any]] = {}
    for c in chans:
        for n, blk in (per[c]["doc"].get("uncertainties") or {}).get("nuisances", {}).items():
            names.setdefault(n, blk)
    rel_sum = {n: np.zeros(mass.size) for n in names}
    for c in chans:
        blk = per[c]["doc"]["aprime"]
        ce = np.asarray(blk["bin_edges"], float)
        yc = np.asarray([np.nan if v is None else v for v in blk["per_pot_per_eps2"]], float)
        lam = np.asarray(comb["weights"][c], float)
        unc = (per[c]["doc"].get("uncertainties") or {}).get("nuisances", {})
        for k in range(mass.size):
            j = np.flatnonzero((np.abs(ce[:-1] - lo[k]) < 1e-9) & (np.abs(ce[1:] - hi[k]) < 1e-9))
            if not j.size or lam[k] == 0:
                continue
            for n in names:
                r = (unc.get(n) or {}).get("rel")
                rv = r[j[0]] if r is not None and r[j[0]] is not None else 0.0
                rel_sum[n][k] += lam[k] * yc[j[0]] * rv
    out: dict[str, Any] = {}
    with np.errstate(divide="ignore", invalid="ignore"):
        for n, blk in names.items():
            rel = np.abs(rel_sum[n] / y)
            if n == "data_stat":
                rel = np.asarray([np.nan if v is None else v for v in comb["stat_err"]]) / np.abs(y)
            out[n] = {**{k: v for k, v in blk.items() if k not in ("up", "down", "rel")},
                      "up": _nan_list(rel), "down": _nan_list(-rel), "rel": _nan_list(rel)}  # fmt: skip
        syst = np.asarray([np.nan if v is None else v for v in comb["syst_err"]], float)
        rel = syst / np.abs(y)
    out["universality"] = {
        "kind": "normsys", "up": _nan_list(rel), "down": _nan_list(-rel), "rel": _nan_list(rel),
        "origin": "half the ee - mumu difference of the A′ yield where both channels measure "
        "a bin (yields.json aprime.syst_err)",
        "correlation": "one parameter shared by all channels and mass points",
    }  # fmt: skip
    not_included = {
        k: v for c in chans
        for k, v in ((per[c]["doc"].get("uncertainties") or {}).get("not_included") or {}).items()
    }  # fmt: skip
    return {"mass": mass.tolist(), "nuisances": out, "not_included": not_included,
            "combination": "each channel's nuisances propagated through the mean (linear)"}  # fmt: skip


def _nan_list(a: np.ndarray) -> list[float | None]:
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(a, float)]


def _jsonable(doc: dict[str, Any]) -> dict[str, Any]:
    """The ``aprime`` arrays as lists (what :func:`gammastar.yields.uncertainties.yield_uncertainties`
    reads, the same as in the written file)."""
    ap = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in doc["aprime"].items()}
    return {**doc, "aprime": ap}
