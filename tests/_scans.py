"""A made-up reach scan for the figure tests: 7 masses, 11 ε values from 1e-8 to 1e-3, the
given bands' (low, high) ε boundaries, nothing computed."""

from __future__ import annotations

import numpy as np

from gammastar.reach.scan.settings import ScanResult


def made_up_scan(bands: dict[str, tuple[np.ndarray, np.ndarray]], masses=None) -> ScanResult:
    """A :class:`ScanResult` with ``bands`` as its boundaries (band → (ε low, ε high) per mass)
    on ``masses`` (default 7 from 0.2 to 0.8 GeV)."""
    m = np.linspace(0.2, 0.8, 7) if masses is None else np.asarray(masses, dtype=float)
    return ScanResult(
        masses=m,
        eps=np.logspace(-8, -3, 11),
        limits=[None] * m.size,
        boundaries=bands,
        nsig=np.zeros((m.size, 11)),
        acceptance=np.zeros((m.size, 11)),
        models=[None] * m.size,
        method="exact",
        seconds={},
    )
