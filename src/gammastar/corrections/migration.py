r"""The mass resolution's migration in the fiducial fraction, from a detector simulation.

The yields extrapolate each reconstructed-mass bin's fiducial yield Y_F to the full phase
space with the model's f_F, which follows the γ* *of that mass*. Where the resolution brings
γ* of other true masses into the bin (the ω's tail between ω and φ), Y_F/Y at the
reconstructed mass is a mixture's fraction. A detector simulation measures the difference:
with F judged at the reconstructed kinematics and A the per-pair acceptance there,

    f_reco(b) = Σ_{in F, m ∈ b} 1/A / Σ_t R(b|t) N(t),   f_true(b) = Σ_{in F, m_true ∈ b} 1/A / N(b),

(N(t) all generated γ* by true mass, R the simulation's own mass response) and the yield of
bin b at the data's resolution is Y_F(b) c(b) / f_F(b) with c = f_true/f_reco
(:func:`migration_correction`). Its 1σ is the simulation's statistics (a Poisson bootstrap
of the recorded sources' in-F sums; the response's own residual sample, which spreads the
generated counts, is held fixed); it assumes the simulation's cocktail, not the data's.

The simulation is ROOT files of the mock's ntuple layout (DEVELOPERS.md, "Mock ntuple"): a
tree (``truth``) of the γ* sources inside the spectrometer with the reconstructed ``m``,
``qT``, ``E`` and ``m_true`` (``channel`` optional: η → μμ and combinatorial rows are left
out), and a histogram (``truth_all_m``) of every generated γ* by true mass.

References:
    docs/validation/uncertainties-and-coverage.md (the ω tail in the NA60-like valley).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.cocktail_channels import Channel
from gammastar.errors import InputError

__all__ = [
    "MigrationCorrection",
    "Simulation",
    "applied_correction",
    "binned",
    "fiducial_weights",
    "migration_correction",
    "read_simulation",
    "read_simulation_arrays",
    "smeared_counts",
]

class Simulation(NamedTuple):
    """A detector simulation's γ* (:func:`read_simulation`): the recorded ones and every
    generated one by true mass."""

    rows: dict[str, NDArray[np.float64]]
    """The recorded γ* (``m``, ``qT``, ``E`` reconstructed; ``m_true``)."""
    generated: NDArray[np.float64]
    """Every generated γ* by true mass, in the bins ``fine_edges``."""
    fine_edges: NDArray[np.float64]


_CHUNK = 100_000
"""Residuals folded at once by :func:`smeared_counts` (bounds its memory)."""

RESPONSE_BIN_WIDTH = 0.01
"""True-mass bins (GeV) of the response: one residual distribution each, as
``gammastar_validation.truth.smearing_from_residuals`` (validation/) draws them."""


def binned(counts: ArrayLike, fine_edges: ArrayLike, edges: ArrayLike) -> NDArray[np.float64]:
    """Counts in the bins ``fine_edges`` re-binned to ``edges``, each spread uniformly over its
    bin (piecewise-linear cumulative); ``edges`` may lie off the fine grid.

    Example:
        >>> binned(np.array([10.0, 0.0]), np.array([0.0, 0.1, 0.2]), np.array([0.0, 0.05, 0.2]))
        array([5., 5.])
    """
    cum = np.concatenate([[0.0], np.cumsum(np.asarray(counts, dtype=np.float64))])
    x = np.asarray(edges, dtype=np.float64)
    return np.diff(np.interp(x, np.asarray(fine_edges, dtype=np.float64), cum))


def smeared_counts(
    counts: ArrayLike,
    fine_edges: ArrayLike,
    m_true: ArrayLike,
    residual: ArrayLike,
    edges: ArrayLike,
    bin_width: float = RESPONSE_BIN_WIDTH,
) -> NDArray[np.float64]:
    """Expected counts per bin of ``edges`` of sources counted by true mass (``counts`` in the
    bins ``fine_edges``, uniform within each), each smeared by the residuals m − m_true of the
    recorded sources of its ``bin_width`` bin of true mass (that of the fine bin's centre;
    without recorded sources the next populated bin above, or the last), as
    ``gammastar_validation.truth.smearing_from_residuals`` (validation/) draws them: exact,
    every residual applied to the uniform fine bins, not a random draw.

    Example:
        >>> smeared_counts(np.array([10.0, 0.0]), np.array([0.0, 0.1, 0.2]),
        ...     np.array([0.05, 0.05]), np.array([-0.01, 0.07]), np.array([0.0, 0.1, 0.2]))
        array([6. , 3.5])
    """
    n_fine = np.asarray(counts, dtype=np.float64)
    fine = np.asarray(fine_edges, dtype=np.float64)
    out_edges = np.asarray(edges, dtype=np.float64)
    true = np.asarray(m_true, dtype=np.float64)
    res = np.asarray(residual, dtype=np.float64)
    ok = np.isfinite(true) & np.isfinite(res)
    true, res = true[ok], res[ok]
    lo = float(true.min())
    g_rows = np.floor((true - lo) / bin_width).astype(np.int64)
    filled = np.unique(g_rows)
    centres = 0.5 * (fine[1:] + fine[:-1])
    g_fine = np.clip(np.floor((centres - lo) / bin_width).astype(np.int64), 0, filled[-1])
    near = filled[np.clip(np.searchsorted(filled, g_fine), 0, filled.size - 1)]
    out = np.zeros(out_edges.size - 1)
    for g in np.unique(near[n_fine > 0]):
        d = res[g_rows == g]
        cum = np.concatenate([[0.0], np.cumsum(np.where(near == g, n_fine, 0.0))])
        for k in range(0, d.size, _CHUNK):  # each residual's shift, in chunks (memory)
            at = np.interp(out_edges[None, :] - d[k : k + _CHUNK, None], fine, cum)
            out += np.diff(at, axis=1).sum(axis=0) / d.size
    return out


def fiducial_weights(rows: dict[str, NDArray[np.float64]], fiducial: Any) -> NDArray[np.float64]:
    """1/A of each recorded γ* inside F at its reconstructed kinematics, 0 outside: the data's
    acceptance correction without the efficiency (the simulation's γ* are all recorded)."""
    a = fiducial.acceptance.of_kinematics(rows["m"], rows["qT"], rows["E"])
    return np.where(a >= fiducial.min_acceptance, 1.0 / np.maximum(a, 1e-12), 0.0)


@dataclass
class MigrationCorrection:
    """Per yield bin: c = f_true/f_reco and its 1σ (module docstring)."""

    edges: NDArray[np.float64]
    correction: NDArray[np.float64]
    correction_err: NDArray[np.float64]
    f_reco: NDArray[np.float64]
    f_true: NDArray[np.float64]
    y_smeared: NDArray[np.float64]
    """Σ_t R(b|t) N(t): all generated γ* at the simulation's resolution, per bin."""
    sources: int
    """Recorded simulation γ* (rows of the trees) used."""
    simulation: list[str]
    bootstrap: int
    seed: int

    @property
    def uncorrected(self) -> list[int]:
        """Bins left at c = 1 (:meth:`at_pairs`): :func:`_uncorrected`."""
        bad = _uncorrected(self.correction, self.correction_err, self.bootstrap)
        return [int(i) for i in np.flatnonzero(bad)]

    def at_pairs(self, m: ArrayLike) -> NDArray[np.float64]:
        """c of the bin holding each mass (a bin is [low, high)); 1 outside the bins and in
        the :attr:`uncorrected` ones.

        Example:
            >>> f = np.full(2, 0.3)
            >>> mc = MigrationCorrection(np.array([0.3, 0.4, 0.5]), np.array([1.1, np.nan]),
            ...     np.array([0.01, np.nan]), f, f, f, 0, [], 2, 0)
            >>> mc.at_pairs([0.29, 0.3, 0.45, 0.5]).tolist()
            [1.0, 1.1, 1.0, 1.0]
        """
        m = np.asarray(m, dtype=np.float64)
        b = np.searchsorted(self.edges, m, side="right") - 1
        ok = (b >= 0) & (b < self.correction.size)
        good = np.ones(self.correction.size, dtype=bool)
        good[self.uncorrected] = False
        ok &= good[np.clip(b, 0, self.correction.size - 1)]
        c = np.ones(m.shape)
        c[ok] = self.correction[b[ok]]
        return c

    def as_dict(self) -> dict[str, Any]:
        def lst(a):
            return [float(x) if np.isfinite(x) else None for x in a]

        return {
            "bin_edges": lst(self.edges), "correction": lst(self.correction),
            "correction_err": lst(self.correction_err), "f_reco": lst(self.f_reco),
            "f_true": lst(self.f_true), "sources": self.sources,
            "uncorrected_bins": self.uncorrected,
            "simulation": self.simulation, "bootstrap": self.bootstrap, "seed": self.seed,
            "note": "the yield at the data's resolution is Y_F c / f_F per bin; c = f_true/f_reco "
            "of the simulation (gammastar.corrections.migration), its error the simulation's statistics",
        }  # fmt: skip


def _uncorrected(correction: NDArray, correction_err: NDArray, bootstrap: int) -> NDArray:
    """Per bin, whether the yields leave it at c = 1: no γ* of the simulation (c not finite
    or ≤ 0), or, with a bootstrap, an error that is not finite (a replica with nothing inside
    F)."""
    bad = ~(np.isfinite(correction) & (correction > 0))
    if bootstrap > 1:
        bad |= ~np.isfinite(correction_err)
    return bad


def applied_correction(block: Any) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """The per-bin factor a written correction (``yields.json`` ``extrapolation.
    resolution_migration``, :meth:`MigrationCorrection.as_dict`) applied and which bins it
    applied it to: c, and 1 in its ``uncorrected_bins`` (blocks written before that field:
    the same rule from c, its error and the bootstrap, :func:`_uncorrected`).

    Example:
        >>> applied_correction({"correction": [1.1, None], "correction_err": [0.01, None],
        ...                     "bootstrap": 30})[0].tolist()
        [1.1, 1.0]
    """

    def arr(key):  # None (JSON's NaN) and a missing error as NaN
        vals = block.get(key) or [None] * len(block["correction"])
        return np.asarray([np.nan if v is None else v for v in vals], dtype=np.float64)

    c = arr("correction")
    if "uncorrected_bins" in block:
        bad = np.zeros(c.size, dtype=bool)
        bad[[int(i) for i in block["uncorrected_bins"]]] = True
    else:
        bad = _uncorrected(c, arr("correction_err"), int(block.get("bootstrap", 0)))
    return np.where(bad, 1.0, c), ~bad


_COLUMNS = ("m", "qT", "E", "m_true")
"""The simulation tree's branches the correction reads (``channel`` too when present)."""


def _read_one(
    path: Any, tree: str, histograms: Sequence[str], columns: Sequence[str], key: str
) -> tuple[dict, list[NDArray], NDArray]:
    """One file's tree columns, histograms' counts and the first one's edges
    (:func:`read_simulation_arrays`)."""
    import uproot

    with uproot.open(path) as f:
        names = {k.split(";")[0] for k in f.keys(recursive=False)}
        for what in (tree, *histograms):
            if what not in names:
                raise InputError(f"{path}: no '{what}' ({key})")
        t = f[tree]
        if not hasattr(t, "arrays"):
            raise InputError(f"{path}: '{tree}' is not a tree ({key})")
        branches = set(t.keys())
        missing = [b for b in columns if b not in branches]
        if missing:
            raise InputError(f"{path}: tree '{tree}' has no branch {missing[0]!r} ({key})")
        need = [*columns, "channel"] if "channel" in branches else list(columns)
        arr = t.arrays(need, library="np")
        counts, edges = [], None
        for name in histograms:
            h = f[name]
            if not hasattr(h, "axes") or len(h.axes) != 1:
                raise InputError(f"{path}: '{name}' is not a 1-D histogram")
            e = np.asarray(h.axes[0].edges(), np.float64)
            if edges is not None and not (
                e.shape == edges.shape and np.allclose(e, edges, rtol=0, atol=1e-12)
            ):
                raise InputError(f"{path}: '{name}' has another mass axis than '{histograms[0]}'")
            edges = e if edges is None else edges
            counts.append(np.asarray(h.values(), np.float64))
        if edges is None:  # no histogram asked for: the tree's columns only
            edges = np.empty(0)
        return arr, counts, edges


def read_simulation_arrays(
    paths: Sequence[str | Path],
    *,
    tree: str,
    histograms: Sequence[str],
    columns: Sequence[str],
    key: str,
) -> tuple[dict[str, NDArray[np.float64]], list[NDArray[np.float64]], NDArray[np.float64]]:
    """The ``columns`` of the files' γ* ``tree`` (η → μμ and combinatorial rows dropped when a
    ``channel`` branch says so, and rows with a non-finite value) and each of ``histograms``
    summed over the files, with the mass edges they share; ``key`` names the config entry in
    the errors.

    Raises:
        InputError: a file, tree, branch or histogram is missing or unreadable, or the files'
            histograms have different mass axes (each names the file).
    """

    drop = [int(Channel.ETA_MUMU), int(Channel.COMBINATORIAL)]
    parts, gen, fine = [], None, None
    for path in paths:
        try:
            arr, counts, edges = _read_one(path, tree, histograms, columns, key)
        except InputError:
            raise
        except Exception as err:  # noqa: BLE001 - any reader failure, named with the file
            text = " ".join(str(err).split())
            raise InputError(f"{path}: cannot read the simulation ({text}) ({key})") from None
        same = fine is None or (
            fine.shape == edges.shape
            and (edges.size == 0
                 or np.allclose(fine, edges, rtol=0, atol=1e-9 * float(np.min(np.diff(edges)))))
        )
        if not same:
            raise InputError(f"{path}: '{histograms[0]}' has another mass axis than {paths[0]}'s")
        gen = counts if gen is None else [g + c for g, c in zip(gen, counts, strict=True)]
        fine = edges
        row = {k: np.asarray(arr[k], dtype=np.float64) for k in columns}
        keep = np.logical_and.reduce([np.isfinite(v) for v in row.values()])  # unusable rows
        if "channel" in arr:
            keep &= ~np.isin(arr["channel"], drop)
        parts.append({k: v[keep] for k, v in row.items()})
    if not parts or gen is None or fine is None:  # (one file read sets all three)
        raise InputError(f"{key}.simulation: no file given")
    rows = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    if rows[columns[0]].size == 0:
        raise InputError(f"{paths[0]}: the simulation records no γ* in '{tree}' ({key})")
    return rows, [np.asarray(g, dtype=np.float64) for g in gen], fine


def read_simulation(
    paths: Sequence[str | Path], *, tree: str = "truth", histogram: str = "truth_all_m"
) -> Simulation:
    """The γ* rows (``m``, ``qT``, ``E``, ``m_true``) of the files' ``tree`` and the summed
    ``histogram`` counts with their edges (:func:`read_simulation_arrays`), as a
    :class:`Simulation`.

    Raises:
        InputError: a file, tree, branch or histogram is missing or unreadable, or the files'
            histograms have different mass axes (each names the file).
    """
    rows, (gen,), fine = read_simulation_arrays(
        paths, tree=tree, histograms=[histogram], columns=_COLUMNS,
        key="yields.resolution_migration",
    )  # fmt: skip
    return Simulation(rows, gen, fine)


def migration_correction(
    sim: Simulation,
    fiducial: Any,
    edges: ArrayLike,
    *,
    bootstrap: int = 30,
    seed: int = 0,
    simulation: Sequence[str] = (),
    weights: ArrayLike | None = None,
) -> MigrationCorrection:
    """c = f_true/f_reco per bin of ``edges`` (module docstring) and its 1σ.

    Arguments:
        sim: the recorded γ* and every generated one by true mass (:class:`Simulation`,
            :func:`read_simulation`).
        fiducial: the data's region (``acceptance.of_kinematics``, ``min_acceptance``):
            :class:`gammastar.corrections.pair_acceptance.FiducialRegion`.
        edges: the yields' mass bins.
        bootstrap: Poisson replicas of the recorded sources for c's error (< 2: no error).
        seed: the replicas' seed.
        simulation: the files' names, recorded.
        weights: :func:`fiducial_weights` of ``rows`` when the caller has them already.

    Returns:
        A :class:`MigrationCorrection` (NaN where a bin has no γ*).

    Example:
        >>> class Region:  # F: q_T < 1 GeV, A = 1 inside
        ...     min_acceptance = 0.5
        ...     class acceptance:
        ...         of_kinematics = staticmethod(lambda m, q, e: np.where(q < 1, 1.0, 0.0))
        >>> m = np.full(4, 0.3505)
        >>> rows = {"m": m, "m_true": m, "qT": np.array([0.5, 2, 0.5, 2]), "E": np.full(4, 9.0)}
        >>> fine = np.linspace(0, 2, 2001)
        >>> sim = Simulation(rows, np.histogram(m, fine)[0], fine)
        >>> c = migration_correction(sim, Region(), np.array([0.3, 0.4]), bootstrap=0)
        >>> c.f_reco.tolist(), c.correction.tolist()
        ([0.5], [1.0])
    """
    rows = sim.rows
    gen = np.asarray(sim.generated, dtype=np.float64)
    fine_edges = np.asarray(sim.fine_edges, dtype=np.float64)
    edges = np.asarray(edges, dtype=np.float64)
    w = fiducial_weights(rows, fiducial) if weights is None else np.asarray(weights, np.float64)
    n_true = binned(gen, fine_edges, edges)
    y_smeared = smeared_counts(gen, fine_edges, rows["m_true"], rows["m"] - rows["m_true"], edges)

    def ratio(weights):
        with np.errstate(divide="ignore", invalid="ignore"):  # NaN in a bin with no γ* (0/0)
            f_reco = np.histogram(rows["m"], edges, weights=weights)[0] / y_smeared
            f_true = np.histogram(rows["m_true"], edges, weights=weights)[0] / n_true
            return f_reco, f_true, f_true / f_reco

    f_reco, f_true, c = ratio(w)
    rng = np.random.default_rng(seed)
    boot = [ratio(w * rng.poisson(1.0, w.size))[2] for _ in range(bootstrap)]
    c_err = np.std(boot, axis=0, ddof=1) if bootstrap > 1 else np.full(c.size, np.nan)
    return MigrationCorrection(edges, c, c_err, f_reco, f_true, y_smeared, int(w.size),
                               [str(p) for p in simulation], int(bootstrap), int(seed))  # fmt: skip
