"""The [mu, e] mock of the lepton-universality tests (tests/test_universality.py,
tests/test_both_flavours.py): Dalitz BRs from the photon modes (universality exact in the
generator), a wide muon arm and a 5 MeV muon resolution (the NA60-like window has A < 1% near
2m_μ; these tests are about Eq. 6, not about the acceptance extrapolation), no π0, conversions
or combinatorial electrons (the μμ statistics stay comparable to the ee ones)."""

from __future__ import annotations

from pathlib import Path

from gammastar.config import AnalysisConfig
from gammastar.config.mock import MockConfig
from gammastar.mock.generate import generate_file

# The same 10 MeV grid for both flavours (ee from 10 MeV, μμ from 0.21 GeV: 0.21 - 0.01 is
# 20 ee bins), merged to 50 MeV from there: every μμ yield bin is an ee yield bin too (the
# selection of the both-channels runs of tests/test_both_flavours.py, tests/test_prescale.py).
SELECTION = {
    "mass_min": 0.21,
    "mass_max": 1.1,
    "lepton_min_energy": 1.0,
    "per_flavour": {"e": {"mass_min": 0.01}},
}


def write_universality_mock(
    path: Path, *, seed: int = 5, events: int = 400_000, prescale: float = 1.0
) -> Path:
    """Generate the mock into ``path`` (``events`` sources of both flavours, ``seed``; the
    dielectron trigger's ``prescale``, ``mock.electrons.prescale``)."""
    mock = MockConfig(
        leptons=["mu", "e"],
        efficiency_map=None,
        dalitz_br="kroll_wada",
        cross_sections={"rho": 0.0, "phi": 0.0},  # two-body BRs: PDG, not K_ℓ-consistent
        detector={
            "muon_min_energy": 1.0,
            "theta_min": 0.005,
            "theta_max": 0.2,
            "mass_resolution": 0.005,
            "resolution_model": "momentum",  # a 5 MeV Gaussian σ_m (scattering: ≥ 7 MeV)
        },
        combinatorial={"os_fraction": 0.0, "pilot_events": 20_000},
        electrons={
            "pi0": {"sigma_rel": 0.0},
            "conversions": False,
            "combinatorial_fraction": 0,
            "prescale": prescale,
        },
    )
    generate_file(AnalysisConfig(seed=seed, mock=mock), path, events=events)
    return path
