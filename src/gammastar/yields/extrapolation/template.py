"""A generator's rapidity shape as a model variation (:class:`RapidityTemplate`,
:func:`read_template`, :func:`template_form`): the generator's γ* dN/dy per mass bin divided by
the Gaussian of its own mean and width, a factor h(m, y) on the nominal model refitted to the
data inside F. What the fiducial data cannot see (the far-forward fall towards the beam
energy, a backward tail) then follows the generator's shape, tilted by the ratio of the
refitted Gaussian to the generator's own (exp of a quadratic in y), its core the data's.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gammastar.errors import InputError
from gammastar.yields.extrapolation.model import FORMS, ModelForm

__all__ = [
    "TAIL_MIN_EFF",
    "TEMPLATE_MIN_EFF",
    "TEMPLATE_Y",
    "RapidityTemplate",
    "TemplateSample",
    "read_template",
    "template_form",
]

TEMPLATE_Y = np.linspace(-3.0, 9.0, 241)
"""The rapidity nodes of h(m, y) (0.05 apart; the fit's quadrature grid's range)."""
TEMPLATE_MIN_EFF = 2000.0
"""Kish effective γ* of the generator a mass bin's window is widened to (neighbouring bins
joined): fewer make h noise."""
TAIL_MIN_EFF = 25.0
"""Kish effective γ* under the kernel at a rapidity node below which the node is not
resolved: there ln h holds the nearest resolved node's value (the generator says nothing
there, rather than a fall its sample size would make)."""


@dataclass(frozen=True, eq=False)
class RapidityTemplate:
    """ln h(m, y) = ln[g_m(y) / N(y; ȳ_m, σ_m)] per mass bin: g_m the generator's γ* rapidity
    density (weighted Gaussian kernel estimate, bandwidth b), N the Gaussian of its mean ȳ_m
    and its width (σ_m² + b², the kernel's broadening of a Gaussian: h = 1 for a Gaussian
    generator), tabulated at :data:`TEMPLATE_Y`, held at the nearest resolved node where the
    generator has too few γ* (:data:`TAIL_MIN_EFF`); linear in y between nodes, the nearest
    node beyond them, each mass bin's row at the masses inside it.

    Example:
        >>> rng = np.random.default_rng(1)
        >>> t = RapidityTemplate.from_sample(np.full(40000, 0.5), rng.normal(3.0, 1.2, 40000),
        ...                                  None, np.array([0.4, 0.6]), "toy")
        >>> bool(np.max(np.abs(t(0.5, 0.0, np.array([2.0, 3.0, 4.0])))) < 0.05)
        True
    """

    edges: NDArray[np.float64]
    log_h: NDArray[np.float64]
    """(n_bins, len(:data:`TEMPLATE_Y`))."""
    label: str
    """The generator (recorded)."""

    @classmethod
    def from_sample(cls, m: ArrayLike, y: ArrayLike, weight: ArrayLike | None, edges: ArrayLike,
                    label: str) -> RapidityTemplate:  # fmt: skip
        """The table from a generator's γ* (mass, lab rapidity, weight or ``None``) on the
        mass bins ``edges``; a bin with fewer than :data:`TEMPLATE_MIN_EFF` effective γ* takes
        its neighbours' until it has them (the window grows one bin each side at a time).

        Raises:
            InputError: the generator has fewer than that many γ* in all the bins together.
        """
        m_all = np.asarray(m, dtype=np.float64)
        y_all = np.asarray(y, dtype=np.float64)
        w_all = np.ones_like(m_all) if weight is None else np.asarray(weight, dtype=np.float64)
        ok = np.isfinite(m_all) & np.isfinite(y_all) & np.isfinite(w_all)
        order = np.argsort(m_all[ok])
        ms, ys, ws = m_all[ok][order], y_all[ok][order], w_all[ok][order]
        edges = np.asarray(edges, dtype=np.float64)
        nb = edges.size - 1
        cut = np.searchsorted(ms, edges)  # γ* of bin i: cut[i]:cut[i + 1]
        c1 = np.concatenate([[0.0], np.cumsum(ws)])
        c2 = np.concatenate([[0.0], np.cumsum(ws * ws)])

        def kish(lo: int, hi: int) -> float:
            s1, s2 = c1[cut[hi]] - c1[cut[lo]], c2[cut[hi]] - c2[cut[lo]]
            return s1 * s1 / s2 if s2 > 0 else 0.0

        if kish(0, nb) < TEMPLATE_MIN_EFF:
            raise InputError(f"yields.extrapolation_template ({label}): {kish(0, nb):.0f} effective "
                             f"γ* in m = {edges[0]:g}-{edges[-1]:g} GeV, fewer than "
                             f"{TEMPLATE_MIN_EFF:.0f}")  # fmt: skip
        rows = np.empty((nb, TEMPLATE_Y.size))
        for i in range(nb):
            lo, hi = i, i + 1
            while kish(lo, hi) < TEMPLATE_MIN_EFF:
                lo, hi = max(lo - 1, 0), min(hi + 1, nb)
            k = slice(cut[lo], cut[hi])
            rows[i] = _log_ratio(ys[k], ws[k], kish(lo, hi), label)
        return cls(edges, rows, label)

    def __call__(self, m: ArrayLike, pt: ArrayLike, y: ArrayLike) -> NDArray[np.float64]:
        """ln h at (m, y) (``pt`` unused: the factor is the rapidity's), broadcast."""
        m, y = np.broadcast_arrays(np.asarray(m, dtype=np.float64), np.asarray(y, dtype=np.float64))
        i = np.clip(np.searchsorted(self.edges, m, side="right") - 1, 0, self.log_h.shape[0] - 1)
        step = TEMPLATE_Y[1] - TEMPLATE_Y[0]
        u = np.clip(np.nan_to_num((y - TEMPLATE_Y[0]) / step), 0.0, TEMPLATE_Y.size - 1.0)
        j = np.minimum(u.astype(np.int64), TEMPLATE_Y.size - 2)
        f = u - j
        return (1.0 - f) * self.log_h[i, j] + f * self.log_h[i, j + 1]

    def as_record(self) -> dict[str, Any]:
        """The table as ``yields.json`` holds it (:meth:`from_record`; ln h to 10⁻⁴)."""
        return {"label": self.label, "edges": self.edges.tolist(), "y": TEMPLATE_Y.tolist(),
                "log_h": np.round(self.log_h, 4).tolist()}  # fmt: skip

    @classmethod
    def from_record(cls, rec: Mapping[str, Any]) -> RapidityTemplate:
        """The table of a ``yields.json`` record (:meth:`as_record`).

        Raises:
            InputError: a key is missing, or the table's shape or nodes are not this
                version's (naming the key).
        """
        key = "yields.json: extrapolation model_variations.generator_template.template"
        missing = [k for k in ("label", "edges", "y", "log_h") if k not in rec]
        if missing:
            raise InputError(f"{key}: no {missing[0]!r}")
        y = np.asarray(rec["y"], dtype=np.float64)
        if y.shape != TEMPLATE_Y.shape or not np.allclose(y, TEMPLATE_Y, rtol=0, atol=1e-9):
            raise InputError(f"{key}.y: not this version's rapidity nodes (rerun gammastar yields)")
        edges = np.asarray(rec["edges"], dtype=np.float64)
        log_h = np.asarray(rec["log_h"], dtype=np.float64)
        if edges.ndim != 1 or log_h.shape != (edges.size - 1, TEMPLATE_Y.size):
            raise InputError(f"{key}.log_h: shape {log_h.shape}, not (len(edges) - 1, "
                             f"{TEMPLATE_Y.size})")  # fmt: skip
        if not (np.all(np.diff(edges) > 0) and np.all(np.isfinite(log_h))):
            raise InputError(f"{key}: edges not increasing or ln h not finite")
        return cls(edges, log_h, str(rec["label"]))


def _log_ratio(y: NDArray, w: NDArray, n_eff: float, label: str) -> NDArray[np.float64]:
    """ln[g(y)/N(y; ȳ, √(σ² + b²))] at :data:`TEMPLATE_Y` of the weighted sample (``y``,
    ``w``): g its Gaussian kernel estimate of bandwidth b = σ n_eff^{−1/5} (Scott's factor, as
    ``scipy.stats.gaussian_kde``'s default; D. W. Scott, Multivariate Density Estimation, Wiley
    1992), evaluated by binning the sample on a fine grid (0.01) and convolving, which is exact
    to the bin's width. A node whose kernel holds fewer than :data:`TAIL_MIN_EFF` effective γ*
    (or a non-positive density: negative weights) takes the nearest resolved node's value.

    Raises:
        InputError: no node is resolved.
    """
    wsum = float(np.sum(w))
    mean = float(np.sum(w * y) / wsum)
    sigma = math.sqrt(max(float(np.sum(w * (y - mean) ** 2) / wsum), 1e-12))
    b = sigma * n_eff**-0.2
    fine = np.arange(TEMPLATE_Y[0] - 8 * b, TEMPLATE_Y[-1] + 8 * b + 0.01, 0.01)
    cell = np.clip(np.searchsorted(fine, y) - 1, 0, fine.size - 1)
    counts = np.bincount(cell, weights=w, minlength=fine.size)[: fine.size]
    counts2 = np.bincount(cell, weights=w * w, minlength=fine.size)[: fine.size]
    z = (TEMPLATE_Y[:, None] - (fine + 0.005)[None, :]) / b
    k = np.exp(-0.5 * z * z)
    s1, s2 = k @ counts, (k * k) @ counts2
    dens = s1 / (wsum * b * math.sqrt(2 * math.pi))
    with np.errstate(under="ignore"):  # far from every γ* the sums underflow: not resolved
        resolved = (dens > 0) & (s2 > 0) & (s1 * s1 >= TAIL_MIN_EFF * s2)
    if not np.any(resolved):
        raise InputError(f"yields.extrapolation_template ({label}): no rapidity resolved")
    s_tot = math.sqrt(sigma * sigma + b * b)
    log_n = -0.5 * ((TEMPLATE_Y - mean) / s_tot) ** 2 - math.log(s_tot * math.sqrt(2 * math.pi))
    at = np.log(dens[resolved]) - log_n[resolved]
    return np.interp(TEMPLATE_Y, TEMPLATE_Y[resolved], at)


class TemplateSample(NamedTuple):
    """A generator's γ* as the fit takes them (``yields.extrapolation_template``): mass, lab
    rapidity, weight (``None``: 1) and the generator's label."""

    m: NDArray[np.float64]
    y: NDArray[np.float64]
    weight: NDArray[np.float64] | None
    label: str

    @classmethod
    def from_config(cls, cfg: Any) -> TemplateSample | None:
        """The configuration's template (its files relative to it), ``None`` without one."""
        tc = cfg.yields.extrapolation_template
        if tc is None:
            return None
        paths = tuple(str(cfg.resolve(p)) for p in tc.files)
        m, y, w = _read_cached(paths, _stamps(paths), tc.tree, tc.mass, tc.rapidity, tc.weight)
        return cls(m, y, w, tc.label)

    def on(self, edges: ArrayLike) -> RapidityTemplate:
        """The template's table on the mass bins ``edges`` (:meth:`RapidityTemplate.from_sample`)."""
        return RapidityTemplate.from_sample(self.m, self.y, self.weight, edges, self.label)


def _stamps(paths: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    """Each file's (modification time in ns, size); (0, 0) where it cannot be read (the
    reader says why)."""
    import os

    out = []
    for p in paths:
        st = os.stat(p) if os.path.exists(p) else None
        out.append((0, 0) if st is None else (st.st_mtime_ns, st.st_size))
    return tuple(out)


@functools.lru_cache(maxsize=2)
def _read_cached(paths: tuple[str, ...], stamps: tuple[tuple[int, int], ...], tree: str,
                 mass: str, rapidity: str, weight: str | None
                 ) -> tuple[NDArray, NDArray, NDArray | None]:  # fmt: skip
    """:func:`read_template` once per files' state (a yields run fits each flavour and the
    model below the seam with the same template), its arrays read-only (shared)."""
    got = read_template(list(paths), tree=tree, mass=mass, rapidity=rapidity, weight=weight)
    for a in got:
        if a is not None:
            a.setflags(write=False)
    return got


def template_form(template: RapidityTemplate) -> ModelForm:
    """The ``generator_template`` model form: the nominal form × h(m, y) of ``template``."""
    from dataclasses import replace

    return replace(FORMS["generator_template"], factor=template)


def read_template(paths: Sequence[str], *, tree: str, mass: str, rapidity: str,
                  weight: str | None = None) -> tuple[NDArray, NDArray, NDArray | None]:  # fmt: skip
    """(mass, rapidity, weight or ``None``) of the generator's γ* in the ``tree`` (TTree or
    RNTuple) of the ROOT files ``paths``, the branches named as given.

    Raises:
        InputError: a file, tree or branch is missing or unreadable (naming it).
    """
    from gammastar.corrections.migration import read_simulation_arrays

    cols = [mass, rapidity] + ([weight] if weight else [])
    rows, _, _ = read_simulation_arrays(list(paths), tree=tree, histograms=[], columns=cols,
                                        key="yields.extrapolation_template")  # fmt: skip
    return rows[mass], rows[rapidity], rows[weight] if weight else None
