"""Make ``data/efficiency_na60_like.root``: a smooth NA60-like pair efficiency ε(m, pT).

Run from the repository root (it overwrites the file)::

    python data/make_efficiency_map.py

The map is a TH2D named ``efficiency`` (x = dimuon mass in GeV, 0–2 GeV in 10 MeV bins;
y = pair pT in GeV, 0–5 GeV in 50 MeV bins), contents in (0, 1], values at the bin centres of

    ε(m, pT) = ε0 · [1 − a · exp(−(m' − m0)/b)] · [1 − c · exp(−pT/d)],   m' = max(m, m0)

with ε0 = 0.90, m0 = 0.20 GeV, a = 0.50, b = 0.20 GeV, c = 0.40, d = 0.70 GeV.

What it stands for: the reconstruction × trigger × selection efficiency of a dimuon that
is already inside the geometric acceptance (the generator applies the absorber energy cut and
the angular window itself). It only loosely follows the trend of the NA60 p–A efficiencies
(PLB 757 (2016) 437; EPJC 79 (2019) 443), which rise with the pair mass (close-in muons from
low-mass pairs are lost in the spectrometer) and with pT; the published tables were not
available here, so the numbers above are a smooth, documented stand-in, not a fit. ε falls
to 0.27 at threshold and low pT and approaches 0.90 at high mass and pT. Outside the map the
generator and the unfolding use the nearest bin (ε is flat beyond the edges).
"""

from __future__ import annotations

from pathlib import Path

import hist
import numpy as np
import uproot

EPS0, M0, A, B, C, D = 0.90, 0.20, 0.50, 0.20, 0.40, 0.70


def efficiency(m: np.ndarray, pt: np.ndarray) -> np.ndarray:
    """ε(m, pT) of the module docstring (GeV)."""
    mm = np.maximum(m, M0)
    return EPS0 * (1.0 - A * np.exp(-(mm - M0) / B)) * (1.0 - C * np.exp(-pt / D))


def make(path: Path) -> hist.Hist:
    """Write the map to ``path`` and return it."""
    h = hist.Hist(
        hist.axis.Regular(200, 0.0, 2.0, name="m", label="m [GeV]"),
        hist.axis.Regular(100, 0.0, 5.0, name="pT", label="p_T [GeV]"),
        storage=hist.storage.Double(),
    )
    m, pt = np.meshgrid(h.axes[0].centers, h.axes[1].centers, indexing="ij")
    h.view()[...] = efficiency(m, pt)
    with uproot.recreate(path) as f:
        f["efficiency"] = h
    return h


if __name__ == "__main__":
    out = Path(__file__).resolve().parent / "efficiency_na60_like.root"
    h = make(out)
    print(f"wrote {out}: eps in [{h.values().min():.3f}, {h.values().max():.3f}]")
