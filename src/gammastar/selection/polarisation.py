"""The selection's polarisation block: λ_θ (and λ_φ, λ_θφ) of the weighted pairs per mass bin,
measured in the helicity frame (:mod:`gammastar.corrections.polarisation`), in the bins of
:class:`BinRule` (the one rule, applied to the masses here and to their histogram on the
workers, :mod:`gammastar.selection.onworkers`), logged by :func:`log_lambda`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from gammastar.config import AnalysisConfig
from gammastar.corrections.polarisation import MIN_PAIRS, Polarisation, measure
from gammastar.corrections.polarisation.edges import peak_safe_edges, polarisation_edges
from gammastar.selection.records import _Run, _Weighted

log = logging.getLogger(__name__)


def _polarisation_block(cfg: AnalysisConfig, run: _Run, w: _Weighted) -> dict[str, Any] | None:
    """``select.json`` ``polarisation``: a measured λ_θ's fit, else in the fiducial phase space
    the decay angles' measurement on the selected pairs (timed: ``timings_s.polarisation``)."""
    import time

    polarisation = w.polarisation  # a measured λ_θ: its fit (timed there)
    if run.phase_space == "fiducial" and polarisation is None:
        t_pol = time.perf_counter()
        polarisation = _measure_polarisation(
            cfg, run.am, w.pairs, w.streamed, run.polarisation_used, w.moments
        )
        w.moments = None  # not held while the outputs are written
        run.times["polarisation"] = time.perf_counter() - t_pol
    return polarisation


def _measure_polarisation(
    cfg: AnalysisConfig,
    am: Any,
    pairs: Any,
    streamed: Any,
    used: bool,
    moments: Any = None,
) -> dict[str, Any]:
    """The ``polarisation`` block of ``select.json`` (:func:`gammastar.corrections.polarisation.measure`
    on the weighted pairs in the bins of :func:`_polarisation_edges`; ``moments``: the
    acceptance's moments at every pair, when already computed)."""

    cols = ("m", "pT", "pz", "charge", "cos_theta_hel", "phi_hel", "weight", "acc")
    if pairs is None:
        import pyarrow.parquet as pq

        table = pq.read_table(streamed, columns=list(cols))
        data = {c: table.column(c).to_numpy() for c in cols}
    else:
        data = {c: pairs[c].to_numpy() for c in cols}
    os_in = (data["charge"] == 0) & (data["weight"] != 0)
    edges = _polarisation_edges(cfg, data["m"][os_in])
    pol = measure(data, am, edges, used_in_acceptance=used, moments=moments)
    log_lambda(pol)
    return pol.as_dict()


def _polarisation_edges(cfg: AnalysisConfig, m_os: np.ndarray) -> np.ndarray:
    """The polarisation bins' mass edges of the OS masses ``m_os`` (:class:`BinRule`)."""
    rule = BinRule.from_config(cfg)
    return rule.edges(
        int(m_os.size),
        lambda n_bins: polarisation_edges(m_os, n_bins, rule.lo, rule.hi),
        lambda edges, window: peak_safe_edges(edges, m_os, window),
    )


@dataclass(frozen=True)
class BinRule:
    """The polarisation bins' rule: outer edges ``lo``, ``hi``; inside them the configured
    ``unfold.polarisation_edges``, or at most ``polarisation_bins`` bins of equal OS counts with
    :data:`~gammastar.corrections.polarisation.MIN_PAIRS` each (a small sample: fewer bins);
    kept off the narrow peaks by ``polarisation_peak_window``
    (:func:`gammastar.corrections.polarisation.edges.peak_safe_edges`). Picklable."""

    lo: float
    hi: float
    fixed: tuple[float, ...] | None
    bins: int
    window: float | None

    @classmethod
    def from_config(cls, cfg: AnalysisConfig) -> BinRule:
        u = cfg.unfold
        fixed = None if u.polarisation_edges is None else tuple(u.polarisation_edges)
        return cls(cfg.selection.mass_min, cfg.selection.mass_max, fixed,
                   u.polarisation_bins, u.polarisation_peak_window)  # fmt: skip

    def n_bins(self, n_os: int) -> int:
        """The equal-count bins for ``n_os`` OS pairs: at most ``bins``, each with
        ``MIN_PAIRS``, at least one."""
        return max(1, min(self.bins, n_os // MIN_PAIRS))

    def edges(
        self,
        n_os: int,
        equal_counts: Callable[[int], np.ndarray],
        peak_safe: Callable[[np.ndarray, float], np.ndarray],
    ) -> np.ndarray:
        """The edges for ``n_os`` OS pairs, given how this sample's masses give
        ``equal_counts(n_bins)`` edges (``polarisation_edges``) and ``peak_safe(edges, window)``
        (``peak_safe_edges``): from the masses, or from their histogram on the workers."""
        if self.fixed is not None:
            inner = [x for x in self.fixed if self.lo < x < self.hi]
            edges = np.array([self.lo, *inner, self.hi], dtype=np.float64)
        else:
            edges = equal_counts(self.n_bins(n_os))
        return edges if self.window is None else peak_safe(edges, self.window)


def log_lambda(pol: Polarisation) -> None:
    """The measured λ_θ per polarisation bin, logged (INFO)."""
    e = pol.mass_edges
    log.info(
        "select: lambda_theta (helicity frame) per mass bin %s",
        ", ".join(f"{0.5 * (a + b):.2f} GeV: {v:.2f} ± {d:.2f}" for a, b, v, d in zip(
            e[:-1], e[1:], pol.lambda_theta, pol.lambda_theta_err, strict=True)),
    )  # fmt: skip
