"""The mock's γ* truth maps, counted chunk by chunk: the channel codes of the γ* sources
(:data:`MUON_GSTAR`, :data:`EE_GSTAR`), and :class:`AcceptanceAccumulator`: the geometric
acceptance map in (true m, true pT[, true y]), the true-mass spectrum ``truth_all_m`` and the
sums of the helicity-frame angular functions (:data:`TRUTH_HELICITY`) as ``hist`` histograms.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gammastar.cocktail_channels import ELECTRON_CHANNELS, Channel
from gammastar.config.mock import MockConfig
from gammastar.corrections.polarisation.angles import angular_functions, helicity_angles
from gammastar.mock.generator import Chunk
from gammastar.physics.kinematics import rapidity

MUON_GSTAR = frozenset(range(int(Channel.ETA_DALITZ), int(Channel.PHI_MUMU) + 1)) - {
    int(Channel.ETA_MUMU)
}
"""Channel codes of the muon γ* sources (the ``truth`` tree and the ``acceptance`` map)."""
EE_GSTAR = frozenset(int(c) for c in ELECTRON_CHANNELS) - {
    int(Channel.CONVERSION),
    int(Channel.COMBINATORIAL_EE),
}
"""Channel codes of the dielectron γ* sources (``truth_ee``, ``acceptance_ee``)."""


EE_ACCEPTANCE_MASS_EDGES = (
    *(0.0, 0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1, 0.12, 0.135, 0.16, 0.2),
    *(round(0.05 * i, 2) for i in range(5, 15)),
    *(0.85, 0.95, 1.1, 1.4, 2.0),
)
"""Mass edges (GeV) of ``acceptance_ee``: 5–20 MeV steps below the π0 mass (the π0 Dalitz
region, where the acceptance changes fast with m), then the muon map's rows."""


TRUTH_MASS_AXIS = (2000, 0.0, 2.0)
"""``truth_all_m``: 1 MeV bins from 0 to 2 GeV (true γ* mass)."""


TRUTH_HELICITY = {
    "truth_hel_cos2_m": "cos^2 theta*",
    "truth_hel_sin2cos2phi_m": "sin^2 theta* cos 2phi*",
    "truth_hel_sin2thetacosphi_m": "sin 2theta* cos phi*",
}
"""Histograms (on :data:`TRUTH_MASS_AXIS`) of the sums of the angular functions of every
generated γ* source's decay (μ+ in the γ* lab helicity frame): with ``truth_all_m`` the
generator's true λ_θ, λ_φ, λ_θφ per mass bin (``gammastar_validation.truth.truth_polarisation``,
in validation/)."""


def _bin_index(edges: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Bin of ``x`` on ``edges`` (−1 below, len(edges) − 1 at or above the last edge)."""
    return np.searchsorted(edges, x, side="right") - 1


class AcceptanceAccumulator:
    """Counts, over the chunks, of the generated γ* sources for the ``acceptance`` map.

    γ* sources: every cocktail channel except η → μμ (no virtual photon); combinatorial
    pairs excluded. Per (true mass, true pair pT) bin: all generated sources (``generated``)
    and those whose two (smeared) muons pass the energy and angle cuts (``accepted``); the
    efficiency accept/reject is not applied. ``truth`` histograms the true mass of all γ*
    sources on the fine axis :data:`TRUTH_MASS_AXIS` (under/overflow kept). With ``y_edges``
    (``mock.acceptance_y_edges``) the same counts per (true mass, true pT, true lab rapidity y)
    cell too (``generated3``, ``accepted3``: the 3-D map ``acceptance_3d``).
    """

    def __init__(
        self,
        cfg: MockConfig,
        codes: frozenset[int] = MUON_GSTAR,
        m_edges: list[float] | None = None,
        y_edges: list[float] | None = None,
    ) -> None:
        self.codes = np.array(sorted(codes), dtype=np.int32)
        """The channel codes of the γ* sources counted (default: the muon ones)."""
        if m_edges is None:
            m_edges = cfg.acceptance_mass_edges
        self.m_edges = np.asarray(m_edges, dtype=np.float64)
        self.pt_edges = np.asarray(cfg.acceptance_pt_edges, dtype=np.float64)
        shape = (len(self.m_edges) - 1, len(self.pt_edges) - 1)
        self.generated = np.zeros(shape)
        self.accepted = np.zeros(shape)
        self.y_edges = None if y_edges is None else np.asarray(y_edges, dtype=np.float64)
        shape3 = (*shape, 0 if self.y_edges is None else len(self.y_edges) - 1)
        self.generated3 = np.zeros(shape3)
        self.accepted3 = np.zeros(shape3)
        n, lo, hi = TRUTH_MASS_AXIS
        self._truth_scale = n / (hi - lo)
        self.truth = np.zeros(n + 2)
        """``truth_all_m`` counts, underflow first and overflow last."""
        self.hel = np.zeros((len(TRUTH_HELICITY), n + 2))
        """Σ of the helicity-frame angular functions per truth bin (:data:`TRUTH_HELICITY`)."""
        step = (hi - lo) / n
        k = (self.m_edges - lo) / step
        self._m_table = None
        if np.allclose(k, np.round(k), atol=1e-6) and k[0] >= 0 and k[-1] <= n:
            centres = lo + (np.arange(-1, n + 1) + 0.5) * step  # under, bins, over
            self._m_table = _bin_index(self.m_edges, centres)

    def add(self, chunk: Chunk) -> None:
        s = chunk.sources
        sig = np.isin(s.channel, self.codes)
        m = np.where(sig, s.gstar[4], -1.0)  # not γ*: below every axis
        pt = np.hypot(s.gstar[0], s.gstar[1])
        n, lo, _ = TRUTH_MASS_AXIS
        fine = np.clip(np.floor((m - lo) * self._truth_scale), -1, n).astype(np.int64) + 1
        nx, ny = self.generated.shape
        ix = self._m_index(m, fine)
        iy = _bin_index(self.pt_edges, pt)
        inside = (ix >= 0) & (ix < nx) & (iy >= 0) & (iy < ny)
        cell = ix * ny + iy
        self.generated += np.bincount(cell[inside], minlength=nx * ny).reshape(nx, ny)
        acc = inside & chunk.reco.in_acceptance
        self.accepted += np.bincount(cell[acc], minlength=nx * ny).reshape(nx, ny)
        if self.y_edges is not None:

            nz = len(self.y_edges) - 1
            iz = _bin_index(self.y_edges, rapidity(s.gstar[:4]))
            in3 = inside & (iz >= 0) & (iz < nz)
            cell3 = cell * nz + iz
            size = nx * ny * nz
            self.generated3 += np.bincount(cell3[in3], minlength=size).reshape(nx, ny, nz)
            acc3 = in3 & chunk.reco.in_acceptance
            self.accepted3 += np.bincount(cell3[acc3], minlength=size).reshape(nx, ny, nz)
        self.truth += np.bincount(fine[sig], minlength=n + 2)
        # the true decay angles of the μ+ in the γ*'s lab helicity frame (polarisation truth)

        cos_t, phi = helicity_angles(s.mu1[:, sig], s.mu2[:, sig])
        for i, f in enumerate(angular_functions(cos_t, phi)):
            self.hel[i] += np.bincount(fine[sig], weights=f, minlength=n + 2)

    def _m_index(self, m: np.ndarray, fine: np.ndarray) -> np.ndarray:
        """Row of the acceptance map: a table lookup on the 1 MeV truth bins when every edge
        is a multiple of 1 MeV inside the truth axis (the defaults), else a binary search."""
        if self._m_table is None:
            return _bin_index(self.m_edges, m)
        return self._m_table[fine]

    def histograms(self) -> dict[str, Any]:
        """``acceptance`` (A with binomial variances A(1 − A)/N; 0 where nothing was
        generated), ``acceptance_generated`` (N per bin) and ``truth_all_m``."""
        import hist

        n, k = self.generated, self.accepted
        axes = (
            hist.axis.Variable(self.m_edges, name="m", label="m [GeV]"),
            hist.axis.Variable(self.pt_edges, name="pT", label="p_T [GeV]"),
        )
        acc, gen = _acceptance_hists(
            n, k, axes, "(m_true, pT_true)",
            "geometric acceptance A(m_true, pT_true) of gamma* sources (E and angle cuts)",
        )  # fmt: skip
        truth = hist.Hist(
            hist.axis.Regular(*TRUTH_MASS_AXIS, name="m", label="m [GeV]"),
            storage=hist.storage.Weight(),
            name="all generated gamma* sources (no cuts, no efficiency): true mass",
        )
        truth.view(flow=True)["value"] = self.truth
        truth.view(flow=True)["variance"] = self.truth
        out = {"acceptance": acc, "acceptance_generated": gen, "truth_all_m": truth}
        if self.y_edges is not None:
            out.update(self._histograms_3d(axes))
        for name, values in zip(TRUTH_HELICITY, self.hel, strict=True):
            h = hist.Hist(
                hist.axis.Regular(*TRUTH_MASS_AXIS, name="m", label="m [GeV]"),
                storage=hist.storage.Double(),
                name=f"all generated gamma* sources: sum of {TRUTH_HELICITY[name]} (helicity "
                "frame, mu+) per true-mass bin",
            )
            h.view(flow=True)[...] = values
            out[name] = h
        return out

    def _histograms_3d(self, axes: tuple[Any, Any]) -> dict[str, Any]:
        """``acceptance_3d`` (TH3: A per (m, pT, y) cell, binomial variances) and
        ``acceptance_3d_generated`` (N per cell)."""
        import hist

        assert self.y_edges is not None
        axes3 = (*axes, hist.axis.Variable(self.y_edges, name="y", label="y (lab)"))
        acc, gen = _acceptance_hists(
            self.generated3, self.accepted3, axes3, "(m_true, pT_true, y_true)",
            "geometric acceptance A(m_true, pT_true, y_true) of gamma* sources",
        )  # fmt: skip
        return {"acceptance_3d": acc, "acceptance_3d_generated": gen}

    def summary(self) -> dict[str, Any]:
        n = float(self.generated.sum())
        three_d = [] if self.y_edges is None else ["acceptance_3d", "acceptance_3d_generated"]
        return {
            "histograms": [
                "acceptance",
                "acceptance_generated",
                *three_d,
                "truth_all_m",
                *TRUTH_HELICITY,
            ],
            "sources": "all cocktail channels except ETA_MUMU (combinatorial excluded)",
            "axes": "x = true gamma* mass (GeV), y = true pair pT (GeV)",
            "n_gamma_star_generated": int(self.truth.sum()),
            "mean_acceptance": float(self.accepted.sum() / n) if n else None,
        }


def _acceptance_hists(n, k, axes, cell: str, title: str) -> tuple[Any, Any]:
    """A = k/n per cell (binomial variances A(1 − A)/n; 0 where nothing was generated) and
    the generated counts n, as ``hist`` histograms on ``axes``."""
    import hist

    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(n > 0, k / n, 0.0)
        var = np.where(n > 0, a * (1.0 - a) / n, 0.0)
    acc = hist.Hist(*axes, storage=hist.storage.Weight(), name=title)
    acc.view()["value"] = a
    acc.view()["variance"] = var
    gen = hist.Hist(
        *axes, storage=hist.storage.Double(), name=f"generated gamma* sources per {cell} bin"
    )
    gen.view()[...] = n
    return acc, gen
