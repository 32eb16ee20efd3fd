"""The binning of the selection's histograms (:class:`HistAxes`, from the config) and the pair
histograms filled per chunk or from the whole table: raw counts by charge class
(:func:`raw_histograms`) and the unfolded Σ weight (:func:`unfolded_histograms`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import hist

    from gammastar.config import AnalysisConfig


@dataclass(frozen=True)
class HistAxes:
    """The binning of every output histogram (picklable; from the config)."""

    mass_bins: int
    mass_min: float
    mass_max: float
    qt_bins: int
    qt_max: float
    energy_bins: int
    energy_min: float
    energy_max: float

    @classmethod
    def from_config(cls, cfg: AnalysisConfig) -> HistAxes:
        s = cfg.selection
        return cls(
            cfg.unfold.mass_bins,
            s.mass_min,
            s.mass_max,
            s.qt_bins,
            s.qt_max,
            s.energy_bins,
            s.energy_min,
            s.energy_max,
        )

    def mass(self) -> hist.axis.Regular:
        """The one mass axis shared by every output histogram."""
        import hist

        return hist.axis.Regular(
            self.mass_bins, self.mass_min, self.mass_max, name="m", label="m [GeV]"
        )

    def axes3(self) -> list[Any]:
        """(m, qT, E) axes of the 3-D histograms."""
        import hist

        return [
            self.mass(),
            hist.axis.Regular(self.qt_bins, 0.0, self.qt_max, name="qT", label="qT [GeV]"),
            hist.axis.Regular(
                self.energy_bins, self.energy_min, self.energy_max, name="E", label="E [GeV]"
            ),
        ]


def raw_histograms(
    axes: HistAxes, pairs: Mapping[str, np.ndarray]
) -> dict[str, hist.Hist[hist.storage.Weight]]:
    """Raw pair counts: ``os_m``, ``pp_m``, ``mm_m`` and their ``_m_qT_E`` versions.

    Arguments:
        axes: the binning.
        pairs: columns ``m``, ``pT`` (= qT), ``E``, ``charge`` (one chunk or the whole table).

    Returns:
        Weight-storage histograms filled with weight 1 (integer counts: they add exactly,
        in any order, across chunks).
    """
    import hist

    q = np.asarray(pairs["charge"])
    m, qt, e = (np.asarray(pairs[c], dtype=np.float64) for c in ("m", "pT", "E"))
    out = {}
    for name, sel in (("os", q == 0), ("pp", q == 2), ("mm", q == -2)):
        h1 = hist.Hist(axes.mass(), storage=hist.storage.Weight())
        h1.fill(m=m[sel])
        h3 = hist.Hist(*axes.axes3(), storage=hist.storage.Weight())
        h3.fill(m=m[sel], qT=qt[sel], E=e[sel])
        out[f"{name}_m"] = h1
        out[f"{name}_m_qT_E"] = h3
    return out


def unfolded_histograms(
    axes: HistAxes, pairs: Mapping[str, np.ndarray]
) -> dict[str, hist.Hist[hist.storage.Weight]]:
    """``unfolded_m`` and ``unfolded_m_qT_E``: Σ ``weight`` of the pairs (columns ``m``,
    ``qT``, ``E``, ``weight``), as in :func:`~gammastar.selection.histograms.fill_histograms`."""
    import hist

    w = np.asarray(pairs["weight"])
    cols = {c: np.asarray(pairs[c]) for c in ("m", "qT", "E")}
    out = {}
    for suffix, ax in (("m", [axes.mass()]), ("m_qT_E", axes.axes3())):
        h = hist.Hist(*ax, storage=hist.storage.Weight())
        h.fill(*(cols[a.name] for a in ax), weight=w)
        out[f"unfolded_{suffix}"] = h
    return out
