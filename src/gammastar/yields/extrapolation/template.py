"""A generator's rapidity shape as a model variation (:class:`RapidityTemplate`,
:func:`read_template`, :func:`template_form`): the generator's γ* dN/dy per mass bin divided by
the Gaussian of its own mean and width, a factor h(m, y) on the nominal model refitted to the
data inside F. What the fiducial data cannot see (the far-forward fall towards the beam
energy, a backward tail) then comes from the generator, its core from the data.
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
_LOG_H_FLOOR = -60.0
"""ln h where the generator has nothing (no γ* of that mass there): a factor e^{−60}."""


@dataclass(frozen=True)
class RapidityTemplate:
    """ln h(m, y) = ln[g_m(y) / N(y; ȳ_m, σ_m)] per mass bin: g_m the generator's γ* rapidity
    density (weighted Gaussian kernel estimate, Scott's bandwidth b), N the Gaussian of its
    mean ȳ_m and its width (σ_m² + b², the kernel's broadening of a Gaussian: h = 1 for a
    Gaussian generator), tabulated at :data:`TEMPLATE_Y`; linear in y between nodes, the
    nearest node beyond them, each mass bin's row at the masses inside it.

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
        m = np.asarray(m, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        w = np.ones_like(m) if weight is None else np.asarray(weight, dtype=np.float64)
        edges = np.asarray(edges, dtype=np.float64)
        nb = edges.size - 1
        order = np.argsort(m)
        m, y, w = m[order], y[order], w[order]
        cut = np.searchsorted(m, edges)  # γ* of bin i: cut[i]:cut[i + 1]
        c1 = np.concatenate([[0.0], np.cumsum(w)])
        c2 = np.concatenate([[0.0], np.cumsum(w * w)])

        def kish(lo: int, hi: int) -> float:
            s1, s2 = c1[cut[hi]] - c1[cut[lo]], c2[cut[hi]] - c2[cut[lo]]
            return s1 * s1 / s2 if s2 > 0 else 0.0

        if kish(0, nb) < TEMPLATE_MIN_EFF:
            raise InputError(f"yields.extrapolation_template ({label}): {kish(0, nb):.0f} effective "
                             f"γ* in the mass range, fewer than {TEMPLATE_MIN_EFF:.0f}")  # fmt: skip
        rows = np.empty((nb, TEMPLATE_Y.size))
        for i in range(nb):
            lo, hi = i, i + 1
            while kish(lo, hi) < TEMPLATE_MIN_EFF:
                lo, hi = max(lo - 1, 0), min(hi + 1, nb)
            k = slice(cut[lo], cut[hi])
            rows[i] = _log_ratio(y[k], w[k], kish(lo, hi))
        return cls(edges, rows, label)

    def __call__(self, m: ArrayLike, pt: ArrayLike, y: ArrayLike) -> NDArray[np.float64]:
        """ln h at (m, y) (``pt`` unused: the factor is the rapidity's), broadcast."""
        m, y = np.broadcast_arrays(np.asarray(m, dtype=np.float64), np.asarray(y, dtype=np.float64))
        i = np.clip(np.searchsorted(self.edges, m, side="right") - 1, 0, self.log_h.shape[0] - 1)
        step = TEMPLATE_Y[1] - TEMPLATE_Y[0]
        u = np.clip((y - TEMPLATE_Y[0]) / step, 0.0, TEMPLATE_Y.size - 1.0)
        j = np.minimum(u.astype(np.int64), TEMPLATE_Y.size - 2)
        f = u - j
        return (1.0 - f) * self.log_h[i, j] + f * self.log_h[i, j + 1]

    def as_record(self) -> dict[str, Any]:
        """The table as ``yields.json`` holds it (:meth:`from_record`; ln h to 10⁻⁴)."""
        return {"label": self.label, "edges": self.edges.tolist(), "y": TEMPLATE_Y.tolist(),
                "log_h": np.round(self.log_h, 4).tolist()}  # fmt: skip

    @classmethod
    def from_record(cls, rec: Mapping[str, Any]) -> RapidityTemplate:
        y = np.asarray(rec["y"], dtype=np.float64)
        if y.shape != TEMPLATE_Y.shape or not np.allclose(y, TEMPLATE_Y, rtol=0, atol=1e-9):
            raise InputError("yields.json: the generator template's rapidity nodes are not this "
                             "version's (rerun gammastar yields)")  # fmt: skip
        return cls(np.asarray(rec["edges"], dtype=np.float64),
                   np.asarray(rec["log_h"], dtype=np.float64), str(rec["label"]))  # fmt: skip


def _log_ratio(y: NDArray, w: NDArray, n_eff: float) -> NDArray[np.float64]:
    """ln[g(y)/N(y; ȳ, √(σ² + b²))] at :data:`TEMPLATE_Y` of the weighted sample (``y``,
    ``w``): g its Gaussian kernel estimate of bandwidth b = σ n_eff^{−1/5} (Scott's rule,
    D. W. Scott, Multivariate Density Estimation, Wiley 1992, §6.3), evaluated by binning the
    sample on a fine grid (0.01) and convolving, which is exact to the bin's width."""
    wsum = float(np.sum(w))
    mean = float(np.sum(w * y) / wsum)
    sigma = math.sqrt(max(float(np.sum(w * (y - mean) ** 2) / wsum), 1e-12))
    b = sigma * n_eff**-0.2
    fine = np.arange(TEMPLATE_Y[0] - 8 * b, TEMPLATE_Y[-1] + 8 * b + 0.01, 0.01)
    counts = np.bincount(np.clip(np.searchsorted(fine, y) - 1, 0, fine.size - 1), weights=w,
                         minlength=fine.size)[: fine.size]  # fmt: skip
    centres = fine + 0.005
    z = (TEMPLATE_Y[:, None] - centres[None, :]) / b
    dens = np.exp(-0.5 * z * z) @ counts / (wsum * b * math.sqrt(2 * math.pi))
    s_tot = math.sqrt(sigma * sigma + b * b)
    log_n = -0.5 * ((TEMPLATE_Y - mean) / s_tot) ** 2 - math.log(s_tot * math.sqrt(2 * math.pi))
    with np.errstate(divide="ignore"):
        return np.maximum(np.log(dens) - log_n, _LOG_H_FLOOR)


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


def _stamps(paths: tuple[str, ...]) -> tuple[float, ...]:
    """Each file's modification time (0 where it cannot be read: the reader says why)."""
    import os

    return tuple(os.stat(p).st_mtime if os.path.exists(p) else 0.0 for p in paths)


@functools.lru_cache(maxsize=2)
def _read_cached(paths: tuple[str, ...], stamps: tuple[float, ...], tree: str, mass: str,
                 rapidity: str, weight: str | None) -> tuple[NDArray, NDArray, NDArray | None]:  # fmt: skip
    """:func:`read_template` once per files' state (a yields run fits each flavour and the
    model below the seam with the same template)."""
    return read_template(list(paths), tree=tree, mass=mass, rapidity=rapidity, weight=weight)


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
