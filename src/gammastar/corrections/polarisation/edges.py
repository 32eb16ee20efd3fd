"""The polarisation measurement's mass bins: :func:`polarisation_edges` (equal numbers of
pairs per bin) and :func:`peak_safe_edges` (no inner edge within a window of a narrow
resonance, :func:`narrow_peaks`; no bin with fewer than
:data:`~gammastar.corrections.polarisation.MIN_PAIRS` pairs).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.corrections.polarisation import MIN_PAIRS
from gammastar.physics.constants import mass

__all__ = [
    "NARROW_PEAKS",
    "edges_from_quantiles",
    "narrow_peaks",
    "peak_safe_edges",
    "polarisation_edges",
    "quantile_levels",
]


NARROW_PEAKS = ("omega", "phi", "jpsi", "psi2S", "upsilon1S", "upsilon2S", "upsilon3S")
"""The narrow vector mesons whose dilepton peaks :func:`peak_safe_edges` keeps inside one
polarisation bin (names of :data:`gammastar.physics.constants.PDGID`)."""


def narrow_peaks() -> tuple[float, ...]:
    """PDG masses (GeV, :func:`gammastar.physics.constants.mass`) of :data:`NARROW_PEAKS`,
    ascending."""

    return tuple(sorted(mass(n) for n in NARROW_PEAKS))


def peak_safe_edges(
    edges: ArrayLike,
    m: ArrayLike,
    window: float,
    *,
    peaks: ArrayLike | None = None,
    min_pairs: int = MIN_PAIRS,
    counts: ArrayLike | None = None,
) -> NDArray[np.float64]:
    r"""Polarisation bin edges with no inner edge within ``window`` of a narrow resonance.

    Why: near a peak narrower than the bins, which pairs are reconstructed on which side of an
    edge depends on their decay angles (the mass resolution differs between symmetric and
    asymmetric decays: the softer muon scatters more), so a reconstructed-mass bin that cuts
    through a peak selects cos θ*: on the default mock (σ_m = 30 MeV at the ω, λ_θ = 0 for
    every vector meson) equal-count bins that cut through the ω measure a λ_θ far from the
    truth on either side of the edge, and the fiducial yield follows (docs/explanation/method.md
    "Narrow peaks"). With the peaks kept whole (window 0.105 GeV = 3.5 σ_m) the same pairs
    give λ_θ consistent with 0.

    Each inner edge inside a window (p − window, p + window) moves to the window's nearer side
    (inside the outer edges and no other window; none: the edge is dropped); then, while a
    bin holds fewer than ``min_pairs`` of the masses ``m`` (the OS pairs), its edge shared
    with the smaller neighbour is dropped.

    Arguments:
        edges: the edges to fix (outer edges kept).
        m: the masses the bins count (the fiducial OS pairs).
        window: half-width (GeV) around each peak: a few σ_m (the experiment's mass
            resolution at that peak).
        peaks: peak masses (GeV; default :func:`narrow_peaks`).
        min_pairs: fewest masses per bin.
        counts: how many masses each value of ``m`` stands for (default one each): a
            histogram's counts with its bins' lower edges as ``m`` gives the same edges
            wherever every edge tested (``edges``' outer ones, the windows' sides and the
            1 MeV grid the inner edges are rounded to) is one of its bin edges.

    Returns:
        The edges, ascending.

    Example:
        >>> m = np.linspace(0.3, 1.1, 8001)
        >>> peak_safe_edges([0.2, 0.5, 0.77, 0.8, 1.1], m, 0.1, peaks=[0.78]).tolist()
        [0.2, 0.5, 0.68, 0.88, 1.1]
    """
    e = np.asarray(edges, dtype=np.float64)
    lo, hi = float(e[0]), float(e[-1])
    pk = np.asarray(narrow_peaks() if peaks is None else peaks, dtype=np.float64)
    wins = [(p - window, p + window) for p in pk if p + window > lo and p - window < hi]

    def inside(x: float) -> bool:
        return any(a < x < b for a, b in wins)

    inner = []
    for x in e[1:-1]:
        if inside(x):
            sides = [c for a, b in wins if a < x < b for c in (a, b)]
            ok = [c for c in sides if lo < c < hi and not inside(c)]
            if not ok:
                continue
            x = min(ok, key=lambda c: abs(c - x))
        inner.append(round(float(x), 3))
    out = np.unique(np.concatenate([[lo], inner, [hi]]))
    m = np.asarray(m, dtype=np.float64)
    c = None if counts is None else np.asarray(counts, dtype=np.int64)
    while out.size > 2:
        n = _counts_in(m, out, c)
        k = int(np.argmin(n))
        if n[k] >= min_pairs:
            break
        # drop the edge towards the smaller neighbour (the only one at either end)
        if k == 0:
            drop = 1
        elif k == n.size - 1:
            drop = out.size - 2
        else:
            drop = k if n[k - 1] <= n[k + 1] else k + 1
        out = np.delete(out, drop)
    return out


def _counts_in(
    m: NDArray[np.float64], edges: NDArray[np.float64], counts: NDArray[np.int64] | None = None
) -> NDArray[np.int64]:
    """``np.histogram(m, bins=edges, weights=counts)[0]`` (bins [e_i, e_i+1), the last closed;
    NaN and values outside in none) by one comparison per edge: np.histogram sorts the values
    for unequal bins, which costs far more than a few comparisons."""
    at_or_above: list[int]
    if counts is None:
        at_or_above = [int(np.count_nonzero(m >= e)) for e in edges[:-1]]
        above = int(np.count_nonzero(m > edges[-1]))
    else:
        at_or_above = [int(counts[m >= e].sum()) for e in edges[:-1]]
        above = int(counts[m > edges[-1]].sum())
    ge = np.array([*at_or_above, above], dtype=np.int64)
    return ge[:-1] - ge[1:]


def polarisation_edges(m: ArrayLike, n_bins: int, lo: float, hi: float) -> NDArray[np.float64]:
    """Mass edges with equal numbers of the given masses per bin (rounded to 1 MeV; ``lo``
    and ``hi`` the outer edges; duplicate edges merged).

    Example:
        >>> polarisation_edges(np.linspace(0.3, 0.9, 601), 3, 0.2, 1.0).tolist()
        [0.2, 0.5, 0.7, 1.0]
    """
    m = np.asarray(m, dtype=np.float64)
    m = m[(m >= lo) & (m < hi)]
    if m.size == 0 or n_bins == 1:
        return np.array([lo, hi])
    # m is the filtered copy above: np.quantile may partition it in place (the same numbers,
    # without a second copy of ~10⁶ masses)
    q = np.quantile(m, quantile_levels(n_bins), overwrite_input=True)
    return edges_from_quantiles(q, lo, hi)


def quantile_levels(n_bins: int) -> NDArray[np.float64]:
    """The inner quantile levels of ``n_bins`` bins of equal counts (:func:`polarisation_edges`)."""
    return np.linspace(0, 1, n_bins + 1)[1:-1]


def edges_from_quantiles(q: ArrayLike, lo: float, hi: float) -> NDArray[np.float64]:
    """:func:`polarisation_edges`' edges from the masses' quantiles ``q``: rounded to 1 MeV,
    inside (``lo``, ``hi``), with ``lo`` and ``hi`` around them (duplicates merged)."""
    inner = np.round(np.asarray(q, dtype=np.float64), 3)
    inner = inner[(inner > lo) & (inner < hi)]
    return np.unique(np.concatenate([[lo], inner, [hi]]))
