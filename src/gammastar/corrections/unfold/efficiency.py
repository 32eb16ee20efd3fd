"""The efficiency map ε(m, pT) of the unfolding (:mod:`gammastar.corrections.unfold`).

This module offers :class:`EfficiencyMap` (a TH2 in mass and pair pT, read by
:func:`load_efficiency_map`) and its lookup (:meth:`EfficiencyMap.lookup`,
:func:`lookup_efficiency`, on the bins of :func:`bin_index`), and the per-pair weights 1/ε
(:func:`efficiency_weights`, :func:`inverse_weights`) with :class:`UnfoldReport`, the pairs
outside the map or at ε = 0, which ``unfold.outside_map`` either stops the run for
(:func:`check_unfoldable`) or gives weight 0.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from gammastar.corrections.unfold import _checked_grid, _read_root_hist
from gammastar.errors import InputError

__all__ = [
    "EfficiencyMap",
    "UnfoldReport",
    "bin_index",
    "check_unfoldable",
    "efficiency_map_cached",
    "efficiency_weights",
    "inverse_weights",
    "load_efficiency_map",
    "lookup_efficiency",
]


@dataclass(frozen=True)
class EfficiencyMap:
    """ε(m, pT) on a 2-D grid (picklable: plain numpy arrays)."""

    m_edges: np.ndarray
    pt_edges: np.ndarray
    values: np.ndarray
    """Shape ``(len(m_edges) - 1, len(pt_edges) - 1)``."""
    source: str = "<memory>"

    @classmethod
    def unity(cls) -> EfficiencyMap:
        """ε = 1 everywhere (no map)."""
        return cls(np.array([0.0, np.inf]), np.array([0.0, np.inf]), np.ones((1, 1)), "unity")

    def lookup(self, m: np.ndarray, pt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """ε for each pair and a mask of pairs inside the map.

        Returns:
            ``(eff, inside)``; ``eff`` is NaN outside the map.

        Example:
            >>> em = EfficiencyMap(np.array([0., 1.]), np.array([0., 2., 4.]),
            ...                    np.array([[0.5, 0.25]]))
            >>> em.lookup(np.array([0.5, 0.5, 2.0]), np.array([1.0, 3.0, 1.0]))[0].tolist()
            [0.5, 0.25, nan]
        """
        m = np.asarray(m, dtype=float)
        pt = np.asarray(pt, dtype=float)
        i = bin_index(self.m_edges, m)
        j = bin_index(self.pt_edges, pt)
        inside = (i >= 0) & (i < self.values.shape[0]) & (j >= 0) & (j < self.values.shape[1])
        eff = np.full(m.shape, np.nan)
        eff[inside] = self.values[i[inside], j[inside]]
        return eff, inside


def bin_index(edges: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``np.searchsorted(edges, x, side="right") - 1``: the bin [e_i, e_i+1) of each value
    (−1 below the first edge, ``len(edges) - 1`` at or above the last and for NaN), the same
    integers, faster for evenly spaced edges (a histogram's regular axis).

    A binary search per value costs a few unpredictable branches; for evenly spaced edges each
    value's bin is first computed from the spacing, then moved by one where that estimate
    (rounded) disagrees with the comparison against the edges themselves, so the result is
    that of the comparisons, as searchsorted's.

    Example:
        >>> bin_index(np.array([0.0, 1.0, 2.0]), np.array([-1.0, 0.0, 1.5, 2.0, np.nan])).tolist()
        [-1, 0, 1, 2, 2]
    """
    edges = np.asarray(edges, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    n = edges.size - 1
    if n < 1 or x.size < 4 * n or not np.isfinite(edges).all():  # (ε = 1: edges 0, ∞)
        return np.searchsorted(edges, x, side="right") - 1
    width = np.diff(edges)
    if not np.all(width > 0) or np.ptp(width) > 1e-9 * width.mean():
        return np.searchsorted(edges, x, side="right") - 1
    with np.errstate(over="ignore", invalid="ignore"):  # |x| near the float maximum: ±∞
        g = x - edges[0]
        g *= n / (edges[-1] - edges[0])
    np.floor(g, out=g)
    np.clip(g, -1.0, float(n), out=g)  # NaN stays NaN
    g[np.isnan(g)] = n
    i = g.astype(np.intp)
    # the estimate is at most one bin off (the spacing's rounding): the edges decide
    # ext[i + 1] = edges[i]; past the last edge NaN, which no value is at or above
    ext = np.concatenate([[-np.inf], edges, [np.nan]])
    # (i + 1, i + 2 are in ext's range: mode "clip", the same values without the bounds check)
    i -= x < ext.take(i + 1, mode="clip")
    i += x >= ext.take(i + 2, mode="clip")
    return i


def load_efficiency_map(
    path: str | os.PathLike[str] | None,
    name: str = "efficiency",
    key: str = "unfold.efficiency_map",
) -> EfficiencyMap:
    """Read and check an efficiency map (ROOT TH2 ``efficiency``; ``None`` means ε = 1).

    Checks: the file opens, holds a 2-D histogram (``name``, or the only TH2), increasing
    finite edges, contents finite and within [0, 1]. Zero bins are allowed here; pairs that
    land in them are handled by :func:`efficiency_weights`. A map that passed is cached
    (:mod:`gammastar.core.cachedir`, keyed by the file's bytes and ``name``): read again, the
    same arrays without the ROOT reader (a selection on a cluster starts its chunks without
    loading uproot first).

    Arguments:
        path: the ROOT file (``None``: ε = 1).
        name: the histogram.
        key: the config key named in errors.

    Raises:
        InputError: naming the config key, the file and what is wrong.
    """
    if path is None:
        return EfficiencyMap.unity()
    path = os.fspath(path)
    entry = _cache_entry(path, name)
    cached = _cache_load(entry)
    if cached is not None:
        return EfficiencyMap(*cached, path)
    name, h = _read_root_hist(path, name, kind="TH2", key=key, what="efficiency map",
                              only_of_kind=True, missing=InputError)  # fmt: skip
    m_edges, pt_edges, values = _checked_grid(h, f"{path}:{name}", "efficiency")
    _cache_store(entry, m_edges, pt_edges, values)
    return EfficiencyMap(m_edges, pt_edges, values, path)


_CACHED = ("m_edges", "pt_edges", "values")


def efficiency_map_cached(path: str | os.PathLike[str], name: str = "efficiency") -> bool:
    """Whether :func:`load_efficiency_map` finds the map in its cache (it then reads no ROOT
    file)."""
    entry = _cache_entry(os.fspath(path), name)
    return entry is not None and os.path.exists(entry)


def _cache_entry(path: str, name: str) -> str | None:
    """The cache entry of the map ``name`` in the file ``path`` as it is now (the digest of
    its bytes: a file written again is read again); ``None`` without a cache or a file to
    read (the reader's error then names it)."""
    import hashlib

    from gammastar.core.cachedir import cache_path

    if cache_path() is None:
        return None
    try:
        with open(path, "rb") as fh:
            digest = hashlib.file_digest(fh, "sha256")
    except OSError:
        return None
    digest.update(b"\0" + name.encode())
    return cache_path("efficiency_maps", f"{digest.hexdigest()[:32]}.npz")


def _cache_load(entry: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """A map checked and cached before (:func:`_cache_store`), the arrays as they were read;
    ``None`` when absent or unreadable (then read from the file again)."""
    if entry is None or not os.path.exists(entry):
        return None
    try:
        with np.load(entry, allow_pickle=False) as z:
            m_edges, pt_edges, values = (np.array(z[k]) for k in _CACHED)
    except (OSError, ValueError, KeyError):
        return None
    return m_edges, pt_edges, values


def _cache_store(
    entry: str | None, m_edges: np.ndarray, pt_edges: np.ndarray, values: np.ndarray
) -> None:
    """Cache a checked map's arrays (:func:`gammastar.core.cachedir.store`: atomic, skipped
    when unwritable): a run that finds it needs no ROOT reader to start its chunks."""
    if entry is None:
        return
    from gammastar.core.cachedir import store

    store(entry, lambda f: np.savez(f, m_edges=m_edges, pt_edges=pt_edges, values=values))


@dataclass
class UnfoldReport:
    """Pairs the map could not unfold."""

    n_pairs: int
    n_outside: int
    n_zero: int
    source: str

    def as_dict(self) -> dict[str, object]:
        return {
            "map": self.source,
            "n_pairs": self.n_pairs,
            "n_outside_map": self.n_outside,
            "n_zero_efficiency": self.n_zero,
        }


def lookup_efficiency(
    em: EfficiencyMap, m: np.ndarray, pt: np.ndarray, *, nearest: bool = False
) -> tuple[np.ndarray, int]:
    """ε per pair and the number of pairs outside the map.

    Arguments:
        em: the map.
        m, pt: pair mass and transverse momentum.
        nearest: pairs outside the map take the nearest bin's ε (else NaN).

    Returns:
        ``(eff, n_outside)``.

    Example:
        >>> em = EfficiencyMap(np.array([0., 1.]), np.array([0., 1.]), np.array([[0.5]]))
        >>> eff, n = lookup_efficiency(em, np.array([0.5, 3.]), np.array([.5, .5]), nearest=True)
        >>> eff.tolist(), n
        ([0.5, 0.5], 1)
    """
    eff, inside = em.lookup(m, pt)
    n_outside = int((~inside).sum())
    if nearest and n_outside:
        m = np.asarray(m, dtype=float)
        pt = np.asarray(pt, dtype=float)
        i = np.clip(np.searchsorted(em.m_edges, m, side="right") - 1, 0, em.values.shape[0] - 1)
        j = np.clip(np.searchsorted(em.pt_edges, pt, side="right") - 1, 0, em.values.shape[1] - 1)
        eff = np.where(inside, eff, em.values[i, j])
    return eff, n_outside


def inverse_weights(
    eff: np.ndarray, *, n_outside: int, on_missing: str = "error", em: EfficiencyMap | None = None
) -> tuple[np.ndarray, UnfoldReport]:
    """1/ε per pair (0 where ε is NaN — outside the map — or 0), with the report.

    Arguments:
        eff: ε per pair from :func:`lookup_efficiency`.
        n_outside: pairs outside the map (already given the nearest ε under ``nearest``).
        on_missing: ``error`` raises if any pair is outside the map or at ε = 0; ``drop``
            gives them inverse weight 0 and counts them; ``nearest`` (pairs outside the
            map have the nearest bin's ε) raises for ε = 0.
        em: the map (for the message).

    Raises:
        InputError: pairs that cannot be unfolded and ``on_missing`` is not ``drop``.
    """
    if on_missing not in ("error", "drop", "nearest"):
        raise ValueError(f"unknown on_missing {on_missing!r}")
    em = em or EfficiencyMap.unity()
    eff = np.asarray(eff, dtype=float)
    ok = np.isfinite(eff) & (eff > 0)
    n_zero = int((np.isfinite(eff) & (eff <= 0)).sum())
    inv = np.zeros(len(eff))
    # divide where ok (the same numbers as inv[ok] = 1/eff[ok], without the two boolean
    # gathers and the scatter, several times faster)
    np.divide(1.0, eff, out=inv, where=ok)
    rep = UnfoldReport(len(eff), n_outside, n_zero, em.source)
    check_unfoldable(rep, on_missing, em)
    return inv, rep


def check_unfoldable(rep: UnfoldReport, on_missing: str, em: EfficiencyMap | None = None) -> None:
    """Raise if the report holds pairs that ``on_missing`` does not allow (see
    :func:`inverse_weights`; also used on the counts summed over chunks).

    Raises:
        InputError: naming the map, the count outside it and the count at ε = 0.
    """
    em = em or EfficiencyMap.unity()
    n_outside, n_zero = rep.n_outside, rep.n_zero
    missing = (n_zero > 0) if on_missing == "nearest" else (n_outside > 0 or n_zero > 0)
    if on_missing != "drop" and missing:
        outside = 0 if on_missing == "nearest" else n_outside
        raise InputError(
            f"{em.source}: {outside} selected pair(s) lie outside the efficiency map "
            f"(m {em.m_edges[0]:g}..{em.m_edges[-1]:g} GeV, pT {em.pt_edges[0]:g}.."
            f"{em.pt_edges[-1]:g} GeV) and {n_zero} fall in bins with ε = 0; extend the "
            "map, tighten the selection, or set unfold.outside_map: nearest (outside "
            "the map) or drop (weight 0)"
        )


def efficiency_weights(
    em: EfficiencyMap, m: np.ndarray, pt: np.ndarray, *, on_missing: str = "error"
) -> tuple[np.ndarray, np.ndarray, UnfoldReport]:
    """Per-pair ε and 1/ε (0 for pairs that cannot be unfolded, counted in the report).

    Arguments:
        em: the map.
        m, pt: pair mass and transverse momentum.
        on_missing: ``error`` raises if any pair is outside the map or at ε = 0; ``drop``
            gives them inverse weight 0 and counts them; ``nearest`` gives pairs outside the
            map the nearest bin's ε (counted in ``n_outside``) and raises for ε = 0.

    Returns:
        ``(eff, inverse, report)``; ``eff`` is NaN outside the map, 0 in empty bins.

    Raises:
        InputError: some pairs cannot be unfolded (see ``on_missing``).

    Example:
        >>> em = EfficiencyMap(np.array([0., 1.]), np.array([0., 1.]), np.array([[0.5]]))
        >>> eff, inv, rep = efficiency_weights(em, np.array([0.5, 3.]), np.array([.5, .5]),
        ...                                    on_missing="drop")
        >>> inv.tolist(), rep.n_outside
        ([2.0, 0.0], 1)
    """
    eff, n_outside = lookup_efficiency(em, m, pt, nearest=on_missing == "nearest")
    inv, rep = inverse_weights(eff, n_outside=n_outside, on_missing=on_missing, em=em)
    return eff, inv, rep
