"""The selection's polarisation block: λ_θ (and λ_φ, λ_θφ) of the weighted pairs per mass bin,
measured in the helicity frame (:mod:`gammastar.corrections.polarisation`).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from gammastar.config import AnalysisConfig
from gammastar.corrections.polarisation import MIN_PAIRS, measure
from gammastar.corrections.polarisation.edges import peak_safe_edges, polarisation_edges

log = logging.getLogger(__name__)
from gammastar.selection.records import (
    _Run,
    _Weighted,
)


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
    log.info(
        "select: lambda_theta (helicity frame) per mass bin %s",
        ", ".join(
            f"{0.5 * (a + b):.2f} GeV: {v:.2f} ± {e:.2f}"
            for a, b, v, e in zip(
                edges[:-1], edges[1:], pol.lambda_theta, pol.lambda_theta_err, strict=True
            )
        ),
    )
    return pol.as_dict()


def _polarisation_edges(cfg: AnalysisConfig, m_os: np.ndarray) -> np.ndarray:
    """The polarisation bins' mass edges: ``unfold.polarisation_edges`` or at most
    ``polarisation_bins`` of equal OS counts with :data:`~gammastar.corrections.polarisation.MIN_PAIRS`
    each (a small sample: fewer bins), kept off the narrow peaks by
    ``polarisation_peak_window``
    (:func:`gammastar.corrections.polarisation.edges.peak_safe_edges`)."""

    u, lo, hi = cfg.unfold, cfg.selection.mass_min, cfg.selection.mass_max
    if u.polarisation_edges is not None:
        inner = [x for x in u.polarisation_edges if lo < x < hi]
        edges = np.array([lo, *inner, hi], dtype=np.float64)
    else:
        n_bins = max(1, min(u.polarisation_bins, int(m_os.size) // MIN_PAIRS))
        edges = polarisation_edges(m_os, n_bins, lo, hi)
    if u.polarisation_peak_window is not None:
        return peak_safe_edges(edges, m_os, u.polarisation_peak_window)
    return edges
