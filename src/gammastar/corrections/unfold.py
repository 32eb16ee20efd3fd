"""Acceptance × efficiency unfolding (docs/explanation/physics.md §4) and optional resolution unfolding.

Each pair gets the weight 1/ε(m, pT) from the efficiency map (a TH2 with x = mass,
y = pair pT, contents in (0, 1]) and, with ``unfold.acceptance_map``, also 1/A(m, pT) from a
geometric-acceptance map (a TH2 in (m, pT), or a TH3 in (m, pT, y) with y the pair's lab
rapidity: :class:`AcceptanceMap3D`): the unfolded spectrum then stands for the full phase space
(``phase_space: full``) instead of the inside of the detector acceptance. Pairs in bins with
A < ``unfold.min_acceptance`` get weight 0, counted and reported with an estimate of the lost
fraction. Pairs outside the map or in a bin with ε = 0 are never
dropped silently: they are counted and either stop the run or get weight 0 and are reported
(``unfold.outside_map``). Resolution unfolding is iterative Bayesian (D'Agostini), off by
default as in the paper.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from gammastar.errors import ConfigError, GammastarError, InputError
from gammastar.physics.kinematics import rapidity_pz


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
    i -= x < ext.take(i + 1)
    i += x >= ext.take(i + 2)
    return i


def load_efficiency_map(
    path: str | os.PathLike[str] | None,
    name: str = "efficiency",
    key: str = "unfold.efficiency_map",
) -> EfficiencyMap:
    """Read and check an efficiency map (ROOT TH2 ``efficiency``; ``None`` means ε = 1).

    Checks: the file opens, holds a 2-D histogram (``name``, or the only TH2), increasing
    finite edges, contents finite and within [0, 1]. Zero bins are allowed here; pairs that
    land in them are handled by :func:`efficiency_weights`.

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
    name, h = _read_root_hist(path, name, kind="TH2", key=key, what="efficiency map",
                              only_of_kind=True, missing=InputError)  # fmt: skip
    m_edges, pt_edges, values = _checked_grid(h, f"{path}:{name}", "efficiency")
    return EfficiencyMap(m_edges, pt_edges, values, path)


def _checked_grid(h: Any, label: str, what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edges and contents of a (mass, pT) map, checked (:func:`_check_grid`)."""
    m_edges = np.asarray(h.axes[0].edges, dtype=float)
    pt_edges = np.asarray(h.axes[1].edges, dtype=float)
    values = np.asarray(h.values(), dtype=float)
    _check_grid(m_edges, pt_edges, values, label, what)
    return m_edges, pt_edges, values


def _check_grid(
    m_edges: np.ndarray, pt_edges: np.ndarray, values: np.ndarray, label: str, what: str
) -> None:
    """Checks of a (mass, pT[, ...]) map: finite, increasing edges starting at ≥ 0 (GeV);
    finite contents in [0, 1].

    Raises:
        InputError: naming ``label`` (file and histogram) and what is wrong.
    """
    for axis, e in (("x (mass)", m_edges), ("y (pT)", pt_edges)):
        if not (np.all(np.isfinite(e)) and np.all(np.diff(e) > 0)):
            raise InputError(f"{label}: {axis} axis edges are not finite and increasing")
    if pt_edges[0] < 0 or m_edges[0] < 0:
        raise InputError(f"{label}: axes must start at ≥ 0 (mass, pT in GeV)")
    if not np.all(np.isfinite(values)):
        raise InputError(f"{label}: the {what} map holds NaN or infinite values")
    if values.min() < 0 or values.max() > 1:
        raise InputError(
            f"{label}: {what} contents must lie in [0, 1] (found {values.min():g}..{values.max():g})"
        )


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


def response_matrix(m_true: np.ndarray, m_reco: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Migration matrix P(reco bin j | true bin i), rows = true bins (from mock truth).

    Example:
        >>> response_matrix(np.array([.1, .1, .6]), np.array([.1, .6, .6]), np.array([0., .5, 1.]))
        array([[0.5, 0.5],
               [0. , 1. ]])
    """
    h, _, _ = np.histogram2d(m_true, m_reco, bins=[edges, edges])
    rows = h.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(rows > 0, h / rows, 0.0)


def bayesian_unfold(
    measured: np.ndarray, response: np.ndarray, iterations: int, prior: np.ndarray | None = None
) -> np.ndarray:
    """Iterative Bayesian unfolding (D'Agostini) of a spectrum for bin migrations.

    Arguments:
        measured: reco-binned spectrum (already efficiency corrected).
        response: P(reco j | true i), rows summing to 1 where populated.
        iterations: number of iterations (≥ 1).
        prior: starting truth spectrum (default: ``measured``).

    Returns:
        The unfolded true-binned spectrum.

    References:
        G. D'Agostini, Nucl. Instrum. Meth. A 362 (1995) 487. Hand-written.

    Example:
        >>> r = np.array([[0.8, 0.2], [0.2, 0.8]])
        >>> t = np.array([100.0, 50.0]); meas = t @ r
        >>> np.round(bayesian_unfold(meas, r, 200), 1).tolist()
        [100.0, 50.0]
    """
    measured = np.asarray(measured, dtype=float)
    truth = np.clip(measured.copy() if prior is None else np.asarray(prior, float), 1e-12, None)
    eff = response.sum(axis=1)
    for _ in range(iterations):
        folded = truth @ response
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(folded > 0, measured / folded, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            truth = np.where(eff > 0, truth * (response @ ratio) / np.where(eff > 0, eff, 1), 0.0)
    return truth


def bayesian_unfold_variance(
    measured: np.ndarray,
    variance: np.ndarray,
    response: np.ndarray,
    iterations: int,
    prior: np.ndarray | None = None,
) -> np.ndarray:
    """Variance of :func:`bayesian_unfold`'s result, propagated to first order.

    The unfolded spectrum is a smooth function u(n) of the measured spectrum n (the prior too
    depends on n when it defaults to ``measured``); with J = ∂u/∂n from central finite
    differences, Var(u_i) = Σ_j J_ij² Var(n_j) (reco bins independent). This is the full
    first-order propagation of Adye, which D'Agostini's original formula approximates by
    ignoring the iterations' dependence on n. One extra unfolding per populated bin and
    direction (cheap for the ~100-bin mass axis).

    Arguments:
        measured: reco-binned spectrum, as for :func:`bayesian_unfold`.
        variance: its per-bin variance.
        response: P(reco j | true i).
        iterations: number of iterations (≥ 1).
        prior: starting truth spectrum (default: ``measured``).

    Returns:
        The per-bin variance of the unfolded spectrum.

    References:
        T. Adye, "Corrected error calculation for iterative Bayesian unfolding" (2011),
        http://hepunx.rl.ac.uk/~adye/software/unfold/bayes_errors.pdf; G. D'Agostini, Nucl.
        Instrum. Meth. A 362 (1995) 487. Hand-written (finite differences of the function
        above).

    Example:
        >>> n = np.array([4.0, 9.0, 1.0])  # no migrations: the variance is unchanged
        >>> bayesian_unfold_variance(n, n, np.eye(3), 3).round(6).tolist()
        [4.0, 9.0, 1.0]
    """
    n = np.asarray(measured, dtype=float)
    var = np.asarray(variance, dtype=float)
    out = np.zeros(len(response), dtype=float)
    for j in np.flatnonzero(var > 0):
        h = 1e-4 * max(abs(n[j]), np.sqrt(var[j]), 1e-12)
        up, down = n.copy(), n.copy()
        up[j] += h
        down[j] -= h
        col = (
            bayesian_unfold(up, response, iterations, prior)
            - bayesian_unfold(down, response, iterations, prior)
        ) / (2 * h)
        out += col**2 * var[j]
    return out


# --------------------------------------------------------------------------- acceptance
PHASE_SPACE_FULL = "full"
PHASE_SPACE_DETECTOR = "detector_acceptance"
PHASE_SPACE_FIDUCIAL = "fiducial"
"""Weights 1/(A ε) with the per-pair acceptance, inside the fiducial region A ≥ min."""


def split_map_spec(spec: str, default_key: str = "acceptance") -> tuple[str, str]:
    """``"path"`` or ``"path:key"`` → ``(path, key)``.

    Example:
        >>> split_map_spec("run/mock.root:acceptance")
        ('run/mock.root', 'acceptance')
        >>> split_map_spec("/data/acc.root")
        ('/data/acc.root', 'acceptance')
    """
    head, sep, tail = spec.rpartition(":")
    if sep and head and tail and "/" not in tail and "\\" not in tail and len(head) > 1:
        return head, tail
    return spec, default_key


def read_root_histogram(path: str, name: str, *, kind: str, key: str, what: str) -> Any:
    """Read the histogram ``name`` of ROOT class ``kind`` (``TH1``/``TH2``) from ``path`` as
    ``hist``, every failure one error naming the config ``key``, the file and the histogram.

    Raises:
        ConfigError: the file or the histogram does not exist; InputError: another class, or
            an unreadable file.
    """
    return _read_root_hist(path, name, kind=kind, key=key, what=what)[1]


def _read_root_hist(
    path: str,
    name: str,
    *,
    kind: str,
    key: str,
    what: str,
    only_of_kind: bool = False,
    missing: type[GammastarError] | None = None,
) -> tuple[str, Any]:
    """:func:`read_root_histogram`, the one ROOT-histogram reader: ``(name read, hist)``.
    ``only_of_kind``: without ``name``, the file's only histogram of class ``kind``;
    ``missing``: the error class of a missing file or histogram (default ConfigError)."""
    import uproot


    missing = missing or ConfigError
    path = os.fspath(path)
    if not os.path.exists(path):
        raise missing(f"{key}: {path} not found (histogram {name!r})")
    try:
        with uproot.open(path) as f:
            classes = {k.split(";")[0]: v for k, v in f.classnames().items()}
            if name not in classes and only_of_kind:
                of_kind = [k for k, v in classes.items() if v.startswith(kind)]
                name = of_kind[0] if len(of_kind) == 1 else name
            if name not in classes:
                raise missing(
                    f"{key}: {path} has no histogram {name!r}: no such histogram "
                    f"(found {sorted(classes)})"
                )
            label = f"{key}: {path}:{name}"
            if not classes[name].startswith(kind):
                raise InputError(f"{label} is a {classes[name]}, not a {kind} ({what})")
            return name, f[name].to_hist()
    except GammastarError:
        raise
    except Exception as err:  # noqa: BLE001  (a broken file: name it, no library traceback)
        raise InputError(
            f"{key}: {path}:{name}: cannot read ({type(err).__name__}: {err})"
        ) from None


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

    Unlike :func:`load_efficiency_map` the histogram is looked up by its exact name. A
    histogram ``<key>_generated`` with the same binning (generated sources per bin), when
    present, is read too.

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
    lost_fraction_map_per_mass_bin: dict[str, list[float]] | None = None

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
            (:class:`gammastar.corrections.pair_acceptance.table.PairAcceptance`: A(m, q) from ``m``, ``pt``
            and ``pz``, defined everywhere).
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
