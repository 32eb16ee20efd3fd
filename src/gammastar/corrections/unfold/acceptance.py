"""The geometric-acceptance map of the full-phase-space unfolding
(:mod:`gammastar.corrections.unfold`, ``unfold.acceptance_map``).

This module offers :class:`AcceptanceMap` (A(m, pT), a TH2) and :class:`AcceptanceMap3D`
(A(m, pT, y), a TH3 with y the pair's lab rapidity), read by :func:`load_acceptance_map`; the
per-pair weights 1/A (:func:`acceptance_weights`, pairs with A < ``unfold.min_acceptance`` at
weight 0) with :class:`AcceptanceReport`; and the estimates of the yield fraction those pairs
carry (:func:`lost_fraction_from_pairs`, :func:`lost_fraction_from_sums`,
:func:`lost_fraction_from_map`).
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from gammastar.corrections.unfold import _check_grid, _checked_grid, read_root_histogram
from gammastar.corrections.unfold.efficiency import EfficiencyMap, lookup_efficiency
from gammastar.errors import GammastarError, InputError
from gammastar.physics.kinematics import rapidity_pz

__all__ = [
    "AcceptanceMap",
    "AcceptanceMap3D",
    "AcceptanceReport",
    "acceptance_weights",
    "check_acceptance_outside",
    "load_acceptance_map",
    "lost_fraction_from_map",
    "lost_fraction_from_pairs",
    "lost_fraction_from_sums",
]


@dataclass(frozen=True)
class AcceptanceMap:
    """A(m, pT) on a 2-D grid, with the generated counts per bin when the file has them."""

    map: EfficiencyMap
    generated: np.ndarray | None
    """``<key>_generated`` (same binning; the mock writes it), for the lost-fraction estimate."""
    source: str


def load_acceptance_map(
    path: str | os.PathLike[str],
    key: str = "acceptance",
    mass_range: tuple[float, float] | None = None,
) -> AcceptanceMap | AcceptanceMap3D:
    """Read an acceptance map: ROOT TH2 ``key`` (x = mass, y = pair pT) or TH3 ``key``
    (x = mass, y = pair pT, z = pair lab rapidity; :class:`AcceptanceMap3D`), contents in
    [0, 1]; the dimension is the file's.

    Unlike :func:`~gammastar.corrections.unfold.efficiency.load_efficiency_map` the histogram
    is looked up by its exact name. A histogram ``<key>_generated`` with the same binning
    (generated sources per bin), when present, is read too.

    Arguments:
        path, key: the file and the histogram.
        mass_range: the selection's ``(mass_min, mass_max)``: a TH3 whose mass axis does not
            cover it is an error (``None``: not checked).

    Raises:
        ConfigError: the file or the histogram does not exist (naming ``unfold.acceptance_map``,
            the file and the key); InputError: not a TH2/TH3, unreadable or invalid contents.
    """
    path = os.fspath(path)
    label = f"{path}:{key}"
    h = read_root_histogram(path, key, kind="TH", key="unfold.acceptance_map",
                            what="x = mass, y = pair pT[, z = pair rapidity]")  # fmt: skip
    if len(h.axes) not in (2, 3):
        raise InputError(
            f"unfold.acceptance_map: {label} is a {len(h.axes)}-D histogram, not a TH2 "
            "(m, pT) or TH3 (m, pT, y)"
        )
    gen = None
    try:
        gen = read_root_histogram(path, f"{key}_generated", kind="TH",
                                  key="unfold.acceptance_map", what="generated counts")  # fmt: skip
    except GammastarError:  # optional: the lost-fraction estimate needs it, nothing else
        gen = None
    if len(h.axes) == 3:
        return _acceptance_map_3d(h, gen, label, mass_range)
    m_edges, pt_edges, values = _checked_grid(h, label, "acceptance")
    generated = None
    if gen is not None and len(gen.axes) == 2:
        g = np.asarray(gen.values(), dtype=float)
        same = g.shape == values.shape and np.allclose(gen.axes[0].edges, m_edges)
        generated = g if same and np.allclose(gen.axes[1].edges, pt_edges) else None
    return AcceptanceMap(EfficiencyMap(m_edges, pt_edges, values, label), generated, label)


def _acceptance_map_3d(
    h: Any, gen: Any, label: str, mass_range: tuple[float, float] | None
) -> AcceptanceMap3D:
    """The checked :class:`AcceptanceMap3D` of a TH3 (the 2-D checks on every y slice, y edges
    finite and increasing, the mass axis covering ``mass_range``)."""
    m_edges, pt_edges, y_edges = (np.asarray(a.edges, dtype=float) for a in h.axes)
    values = np.asarray(h.values(), dtype=float)
    _check_grid(m_edges, pt_edges, values, label, "acceptance")  # the 2-D map's checks
    if not (np.all(np.isfinite(y_edges)) and np.all(np.diff(y_edges) > 0)):
        raise InputError(f"{label}: z (rapidity) axis edges are not finite and increasing")
    if mass_range is not None and (
        m_edges[0] > mass_range[0] + 1e-12 or m_edges[-1] < mass_range[1] - 1e-12
    ):
        raise InputError(
            f"{label}: the map's mass axis {m_edges[0]:g}..{m_edges[-1]:g} GeV does not cover "
            f"the selection's {mass_range[0]:g}..{mass_range[1]:g} GeV"
        )
    generated = None
    if gen is not None and len(gen.axes) == 3:
        g = np.asarray(gen.values(), dtype=float)
        same = g.shape == values.shape and all(
            np.allclose(gen.axes[i].edges, e) for i, e in enumerate((m_edges, pt_edges, y_edges))
        )
        generated = g if same else None
    return AcceptanceMap3D(m_edges, pt_edges, y_edges, values, generated, label)


@dataclass(frozen=True)
class AcceptanceMap3D:
    """A(m, pT, y) on a 3-D grid (y: the pair's lab rapidity), with the generated counts per
    bin when the file has them; picklable (plain numpy arrays).

    The lookup is the 2-D map's: the bin holding the pair, or for a pair outside the map the
    nearest bin (``unfold.outside_map: nearest``) or NaN (``error``/``drop``). The pair's
    rapidity is computed from its (m, pT, pz) with :func:`gammastar.physics.kinematics.rapidity`.
    """

    m_edges: np.ndarray
    pt_edges: np.ndarray
    y_edges: np.ndarray
    values: np.ndarray
    """Shape ``(n_m, n_pT, n_y)``."""
    generated: np.ndarray | None
    """``<key>_generated`` (same binning), for the lost-fraction estimate."""
    source: str

    def lookup(
        self, m: np.ndarray, pt: np.ndarray, pz: np.ndarray, *, nearest: bool = False
    ) -> tuple[np.ndarray, int]:
        """A per pair and the number of pairs outside the map.

        Returns:
            ``(acc, n_outside)``; ``acc`` is NaN outside the map unless ``nearest``.

        Example:
            >>> am = AcceptanceMap3D(np.array([0., 1.]), np.array([0., 1.]),
            ...                      np.array([0., 2., 4.]), np.array([[[0.5, 0.25]]]), None, "a")
            >>> pz = np.array([1.0, 5.0, 1e4])   # y = asinh(pz/m_T) ≈ 1.1, 2.7, 10.2 (m_T² = 0.5)
            >>> acc, n = am.lookup(np.full(3, .5), np.full(3, .5), pz)
            >>> acc.tolist(), n
            ([0.5, 0.25, nan], 1)
            >>> am.lookup(np.full(3, .5), np.full(3, .5), pz, nearest=True)[0].tolist()
            [0.5, 0.25, 0.25]
        """

        m = np.asarray(m, dtype=float)
        pt = np.asarray(pt, dtype=float)
        pz = np.asarray(pz, dtype=float)
        y = rapidity_pz(pz, np.sqrt(m * m + pt * pt + pz * pz))
        idx, inside = [], np.ones(m.shape, dtype=bool)
        for edges, x, n in zip(
            (self.m_edges, self.pt_edges, self.y_edges), (m, pt, y), self.values.shape, strict=True
        ):
            i = np.searchsorted(edges, x, side="right") - 1
            inside &= (i >= 0) & (i < n)
            idx.append(np.clip(i, 0, n - 1))
        acc = self.values[idx[0], idx[1], idx[2]]
        n_outside = int((~inside).sum())
        if not nearest:
            acc = np.where(inside, acc, np.nan)
        return acc, n_outside

    def range_text(self) -> str:
        """The map's ranges, for messages."""
        return (
            f"m {self.m_edges[0]:g}..{self.m_edges[-1]:g} GeV, pT {self.pt_edges[0]:g}.."
            f"{self.pt_edges[-1]:g} GeV, y {self.y_edges[0]:g}..{self.y_edges[-1]:g}"
        )


@dataclass
class AcceptanceReport:
    """What the acceptance unfolding did (``select.json`` → ``unfold.acceptance``)."""

    source: str
    min_acceptance: float
    n_pairs: int
    n_outside: int
    n_below_min: int
    n_below_min_os: int
    n_below_min_ss: int
    n_zero_acceptance: int
    lost_fraction_pairs: float | None = None
    lost_fraction_pairs_err: float | None = None
    lost_fraction_map: float | None = None
    lost_fraction_map_per_mass_bin: dict[str, list[float | None]] | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "map": self.source,
            "min_acceptance": self.min_acceptance,
            "n_pairs": self.n_pairs,
            "n_outside_map": self.n_outside,
            "n_below_min_acceptance": self.n_below_min,
            "n_below_min_acceptance_os": self.n_below_min_os,
            "n_below_min_acceptance_ss": self.n_below_min_ss,
            "n_zero_acceptance": self.n_zero_acceptance,
            "lost_fraction_estimate_pairs": self.lost_fraction_pairs,
            "lost_fraction_estimate_pairs_err": self.lost_fraction_pairs_err,
            "lost_fraction_estimate_map": self.lost_fraction_map,
            "lost_fraction_map_per_mass_bin": self.lost_fraction_map_per_mass_bin,
        }


def acceptance_weights(
    am: Any,
    m: np.ndarray,
    pt: np.ndarray,
    *,
    min_acceptance: float,
    on_missing: str = "error",
    pz: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, AcceptanceReport]:
    """Per-pair A and 1/A; pairs with A < ``min_acceptance`` get 1/A = 0 and are counted.

    Arguments:
        am: the :class:`AcceptanceMap` or :class:`AcceptanceMap3D`, or a per-pair acceptance
            (:class:`gammastar.corrections.pair_acceptance.table.PairAcceptance`: A(m, q) from
            ``m``, ``pt`` and ``pz``, defined everywhere).
        m, pt: pair mass and pT (reconstructed: the map is applied at the measured values).
        pz: pair longitudinal momentum (needed by a 3-D map and a per-pair acceptance).
        min_acceptance: smallest A that is unfolded.
        on_missing: pairs outside the map: ``error`` raises, ``nearest`` takes the nearest
            bin's A, ``drop`` gives them 1/A = 0 (all counted in ``n_outside``).

    Returns:
        ``(acc, inverse, report)``; ``acc`` is NaN outside the map (``error``/``drop``).

    Raises:
        InputError: pairs outside the map and ``on_missing`` is ``error``.

    Example:
        >>> am = AcceptanceMap(EfficiencyMap(np.array([0., 1.]), np.array([0., 1., 2.]),
        ...                    np.array([[0.5, 0.001]])), None, "a.root:acceptance")
        >>> acc, inv, rep = acceptance_weights(am, np.array([.5, .5]), np.array([.5, 1.5]),
        ...                                    min_acceptance=0.01)
        >>> inv.tolist(), rep.n_below_min
        ([2.0, 0.0], 1)
    """
    if on_missing not in ("error", "drop", "nearest"):
        raise ValueError(f"unknown on_missing {on_missing!r}")
    if isinstance(am, AcceptanceMap3D):
        if pz is None:
            raise ValueError("a 3-D acceptance map needs the pairs' pz")
        acc, n_outside = am.lookup(m, pt, pz, nearest=on_missing == "nearest")
    elif not isinstance(am, AcceptanceMap):
        acc, n_outside = am.lookup(m, pt, pz), 0
    else:
        acc, n_outside = lookup_efficiency(am.map, m, pt, nearest=on_missing == "nearest")
    if on_missing == "error":
        check_acceptance_outside(am, n_outside)
    finite = np.isfinite(acc)
    ok = finite & (acc >= min_acceptance)
    below = finite & ~ok
    inv = np.zeros(len(acc))
    np.divide(1.0, acc, out=inv, where=ok)  # in place: no gather and scatter of the pairs
    rep = AcceptanceReport(
        source=am.source,
        min_acceptance=float(min_acceptance),
        n_pairs=len(acc),
        n_outside=n_outside,
        n_below_min=int(below.sum()),
        n_below_min_os=0,
        n_below_min_ss=0,
        n_zero_acceptance=int((finite & (acc <= 0)).sum()),
    )
    return acc, inv, rep


def check_acceptance_outside(am: AcceptanceMap | AcceptanceMap3D, n_outside: int) -> None:
    """Raise for pairs outside the acceptance map (``unfold.outside_map: error``).

    Raises:
        InputError: ``n_outside`` > 0, naming the map and its range.
    """
    if n_outside:
        if isinstance(am, AcceptanceMap3D):
            ranges = am.range_text()
        else:
            em = am.map
            ranges = (
                f"m {em.m_edges[0]:g}..{em.m_edges[-1]:g} GeV, pT {em.pt_edges[0]:g}.."
                f"{em.pt_edges[-1]:g} GeV"
            )
        raise InputError(
            f"{am.source}: {n_outside} selected pair(s) lie outside the acceptance map "
            f"({ranges}); extend the map, tighten the selection, or set "
            "unfold.outside_map: nearest or drop"
        )


def lost_fraction_from_pairs(
    weight_kept: np.ndarray, weight_naive_lost: np.ndarray
) -> tuple[float | None, float | None]:
    """Fraction of the unfolded yield in pairs below ``min_acceptance``, estimated by giving
    them their nominal weight 1/(A ε) (A > 0 only; pairs at A = 0 cannot be estimated).

    Returns:
        ``(fraction, error)`` (binomial-like error from Σw²), ``(None, None)`` if undefined.

    Example:
        >>> f, err = lost_fraction_from_pairs(np.full(90, 1.0), np.full(2, 5.0))
        >>> round(f, 6)
        0.1
    """
    return lost_fraction_from_sums(
        float(np.sum(weight_kept)),
        float(np.sum(weight_kept**2)),
        float(np.sum(weight_naive_lost)),
        float(np.sum(weight_naive_lost**2)),
    )


def lost_fraction_from_sums(
    kept: float, kept2: float, lost: float, lost2: float
) -> tuple[float | None, float | None]:
    """:func:`lost_fraction_from_pairs` from the sums Σw and Σw² of the kept and of the lost
    pairs (which add over chunks).

    Example:
        >>> f, err = lost_fraction_from_sums(90.0, 90.0, 10.0, 50.0)
        >>> round(f, 6)
        0.1
    """
    total = kept + lost
    if not np.isfinite(total) or total <= 0:
        return None, None
    f = lost / total
    # d f/d w: lost pairs (1 − f)/T, kept pairs −f/T
    var = ((1 - f) ** 2 * lost2 + f**2 * kept2) / total**2
    return f, float(np.sqrt(var))


def lost_fraction_from_map(
    am: AcceptanceMap | AcceptanceMap3D, min_acceptance: float, mass_edges: np.ndarray
) -> tuple[float | None, list[float] | None]:
    """Fraction of the generated γ* sources (the map's ``<key>_generated``) in bins with
    A < ``min_acceptance``: over ``mass_edges[0]..mass_edges[-1]`` and per mass bin.

    Map mass rows are weighted by their overlap with each bin (uniform within a row).

    Returns:
        ``(overall, per_bin)`` (``None`` without generated counts; NaN where nothing was
        generated).
    """
    if am.generated is None:
        return None, None
    values, m_edges = (
        (am.values, am.m_edges)
        if isinstance(am, AcceptanceMap3D)
        else (am.map.values, am.map.m_edges)
    )
    gen = am.generated
    other = tuple(range(1, gen.ndim))  # pT (and y): summed per mass row
    lost_row = np.where(values < min_acceptance, gen, 0.0).sum(axis=other)
    all_row = gen.sum(axis=other)
    lo, hi = m_edges[:-1], m_edges[1:]

    def frac(a: float, b: float) -> float:
        w = np.clip(np.minimum(hi, b) - np.maximum(lo, a), 0, None) / (hi - lo)
        d = float(np.sum(w * all_row))
        return float(np.sum(w * lost_row)) / d if d > 0 else float("nan")

    per_bin = [frac(a, b) for a, b in itertools.pairwise(mass_edges)]
    overall = frac(float(mass_edges[0]), float(mass_edges[-1]))
    return overall, per_bin
