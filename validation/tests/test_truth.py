"""The mock generator's truth (:mod:`gammastar_validation.truth`): its mass response and its
dielectron γ*."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gammastar.config import AnalysisConfig
from gammastar.config.mock import MockConfig
from gammastar.mock.cocktail import EE_CHANNELS
from gammastar.physics.constants import M_E, mass

REPO = Path(__file__).resolve().parents[2]
EFF_MAP = REPO / "data" / "efficiency_na60_like.root"


def _spread(d):
    """std of the residuals d and its statistical error √(μ₄ − σ⁴)/(2σ√n) (the residuals are
    a mixture of Gaussians: heavier tails than one Gaussian, so not σ/√(2n))."""
    c = d - d.mean()
    return c.std(), np.sqrt(np.var(c**2)) / (2 * c.std() * np.sqrt(c.size))


def test_response_residuals_carry_the_detectors_mass_resolution():
    """``response_residuals`` (the coverage study's mass response, from a sample larger than
    one file): the recorded sources' m − m_true at the ω have the configured 30 MeV
    (the absorber's calibration mass) within 4σ_stat + 1% (as test_mass_resolution); and
    ``smearing_from_residuals`` draws each mass's residual from its own true-mass bin: masses
    at the ω get the ω bin's spread, masses near threshold the far narrower one there."""
    from gammastar_validation.truth import response_residuals, smearing_from_residuals

    cfg = AnalysisConfig(seed=11, mock=MockConfig(efficiency_map=str(EFF_MAP),
                                               combinatorial={"pilot_events": 1000}))
    mt, d = response_residuals(cfg, 400_000, seed=8, chunk=150_000)
    omega = np.abs(mt - mass("omega")) < 0.01
    assert omega.sum() > 2000
    sigma, err = _spread(d[omega])
    assert sigma == pytest.approx(0.030, abs=4 * err + 0.01 * 0.030)
    smear = smearing_from_residuals(mt, d)
    rng = np.random.default_rng(9)
    at_omega = smear(np.full(100_000, mass("omega")), rng) - mass("omega")
    near = smear(np.full(100_000, 0.25), rng) - 0.25
    assert at_omega.std() == pytest.approx(sigma, rel=0.1)
    assert near.std() < 0.5 * at_omega.std()  # σ_m ∝ β* falls towards threshold


def test_truth_gstar_of_electrons():
    """With input.lepton e the mock truth (the true fiducial fraction's sample) is the
    dielectron cocktail's γ*: codes of EE_CHANNELS only, masses from 2m_e (π0 → γee below
    2m_μ), the same N_POT formula."""
    from gammastar.config import config_from_dict
    from gammastar_validation.truth import truth_gstar

    cfg = config_from_dict(
        {"input": {"lepton": "e"}, "mock": {"leptons": ["e"], "efficiency_map": None}}
    )
    tr = truth_gstar(cfg, 20_000, seed=4)
    assert set(np.unique(tr.channel)) <= {int(s.channel) for s in EE_CHANNELS}
    assert tr.m.min() >= 2 * M_E
    assert np.mean(tr.m < 2 * 0.1056583755) > 0.9  # π0 Dalitz dominates (σ_π0/σ_ω = 9)


def test_truth_gstar_of_a_pythia_mock():
    """With ``mock.backend: pythia`` the truth's mesons are the data's PYTHIA pool: N_POT from
    PYTHIA's multiplicities (n_sources / (P_int Σ ⟨n⟩ BR), the generator's formula), and its
    ω → μμ parents the pool's rapidities (mean within 5 standard errors of the pool's)."""
    pytest.importorskip("pythia8mc")
    from gammastar.cocktail_channels import Channel
    from gammastar.config import config_from_dict
    from gammastar.mock.cocktail import CHANNELS
    from gammastar.mock.pythia import PythiaMesons
    from gammastar.physics.pdgdata import branching_ratio
    from gammastar.physics.target import interaction_probability
    from gammastar_validation.truth import truth_gstar

    cfg = config_from_dict({"mock": {"backend": "pythia", "efficiency_map": None,
                                     "combinatorial": {"pilot_events": 1000},
                                     "pythia": {"mode": "pp", "collisions": 300}}})  # fmt: skip
    mesons = PythiaMesons(cfg, cfg.seed)
    n = 20_000
    tr = truth_gstar(cfg, n, seed=4, mesons=mesons)
    per_collision = sum(mesons.multiplicity[s.parent] * branching_ratio(s.br_key).value
                        for s in CHANNELS)  # fmt: skip
    p_int = interaction_probability(cfg.beam.interaction_lengths)
    assert tr.n_pot == pytest.approx(n / (p_int * per_collision), rel=1e-9)
    omega = tr.channel == int(Channel.OMEGA_MUMU)
    y = 0.5 * np.log((tr.E[omega] + tr.pz[omega]) / (tr.E[omega] - tr.pz[omega]))
    pool = mesons.pool.y["omega"]
    assert abs(y.mean() - pool.mean()) < 5 * pool.std() / np.sqrt(min(pool.size, y.size))
