"""Conversion subtraction with a template (``background.conversion_template``).

The mock's photon conversions (π0 → γγ, γ → ee in 1% X0) reach 10–20 MeV after the detector
(docs/reference/mock.md: 2.4% of them above 10 MeV, i.e. 0.2–0.4 of the π0 → γee pairs per 1 MeV bin
at 10–13 MeV). With ``selection.mass_min`` at 10 MeV and the template R(m) that the mock
writes from its own, separate simulation (``conversion_ratio_ee``), the like-sign subtracted,
acceptance-corrected yield of *all* pairs (no truth selection: the truth only says what the
answer is) must recover π0 → γA′ from π0 → γee (Eq. 6 applied to one decay, as in
tests/test_closure_ee.py), and without the template it must not.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from _experiment import stated_config
from scipy import stats

from gammastar.config import AnalysisConfig
from gammastar.config.mock import MockConfig
from gammastar.corrections.background import ConversionTemplate, load_conversion_template
from gammastar.errors import ConfigError
from gammastar.mock.generate import generate_file
from gammastar.physics import aprime_meson
from gammastar.physics.constants import M_E
from gammastar.physics.target import interaction_probability
from gammastar.selection.stage import select
from gammastar.yields.formulas import aprime_yield_from_pairs

# only π0 → γee below 30 MeV (the muon cocktail needs one σ > 0: φ → ee, at 1.02 GeV)
NO_OTHER_MESONS = {"eta": 0.0, "eta_prime": 0.0, "rho": 0.0, "omega": 0.0, "phi": 1e-6}
EDGES = np.array([0.01, 0.0125, 0.015, 0.0175, 0.02, 0.03])


@pytest.fixture(scope="module")
def mock_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("conv") / "mock_ee.root"
    mock = MockConfig(
        efficiency_map=None,
        leptons=["e"],
        dalitz_br="kroll_wada",
        cross_sections=NO_OTHER_MESONS,
        # the template's R: 3e5 simulated sources, a relative error ≤ 1% × √(1e6/3e5) ≈ 1.8% of
        # R, ≤ 0.55% of the yield (R ≤ 0.3), against the yield's statistical 1.7-3% per bin
        electrons={"conversion_template_sources": 300_000},
    )
    res = generate_file(AnalysisConfig(seed=31, mock=mock), path, events=600_000)
    return path, res


def _yield(tmp_path, mock_file, template):
    path, res = mock_file
    bkg = {"remove_eta_mumu": "none"}
    if template:
        bkg["conversion_template"] = f"{path}:conversion_ratio_ee"
    run = stated_config(
        {
            "name": "conv",
            "output": str(tmp_path / f"run_{template}"),
            "input": {"files": [str(path)], "lepton": "e"},
            "unfold": {"efficiency_map": None, "acceptance_map": f"{path}:acceptance_ee"},
            "background": bkg,
            "selection": {"mass_min": 0.01, "mass_max": 0.2, "lepton_min_energy": 1.0},
        },
        source=str(tmp_path / "c.yaml"),
    )
    df = select(run).pairs  # every pair: OS and SS, conversions included
    return aprime_yield_from_pairs(df["m"], df["weight"], res.n_pot, EDGES, m_lepton=M_E)


def _expected_pi0():
    """N_π0/N_POT × BR(π0 → γA′)/ε² bin-averaged (aprime_meson: 2(1 − m²/M²)³|F|² BR(γγ)),
    N_π0/N_POT = P_int(0.01 λ_I) ⟨n_ω⟩ σ_π0/σ_ω (the default mock's: ⟨n_ω⟩ per p + Pb collision,
    gammastar.cocktail_inputs, and σ_π0/σ_ω = 9)."""
    per_pot = interaction_probability(0.01) * MockConfig().omega_per_collision() * 9.0
    out = []
    for lo, hi in itertools.pairwise(EDGES):
        g = np.linspace(lo, hi, 401)
        out.append(per_pot * np.trapezoid(aprime_meson.branching_ratio("pi0", g), g) / (hi - lo))
    return np.array(out)


def test_template_recovers_pi0_to_gamma_aprime_from_10_mev(tmp_path, mock_file):
    """10–30 MeV: each bin within 4σ, χ² below its 99.9% quantile (σ: the yield's statistical
    error; the template's own, 3e5 simulated sources, is ≤ 1.8% of R, ≤ 0.55% of the yield)."""
    y = _yield(tmp_path, mock_file, template=True)
    expected = _expected_pi0()
    pull = (y.per_pot_per_eps2 - expected) / y.stat_err
    assert np.all(np.abs(pull) < 4), pull
    assert np.sum(pull**2) < stats.chi2(len(pull)).ppf(0.999), pull


def test_without_template_the_conversions_stay(tmp_path, mock_file):
    """The same selection without the template over-counts 10–12.5 MeV by the conversions'
    share (R ≈ 0.3 there, 3e5-source template): > 5σ high, so the first test can fail."""
    y = _yield(tmp_path, mock_file, template=False)
    pull = (y.per_pot_per_eps2 - _expected_pi0()) / y.stat_err
    assert pull[0] > 5, pull


def test_template_factor_and_bad_template(tmp_path, mock_file):
    """1/(1 + R) per (m, pT) cell, 1 outside; a missing histogram is one ConfigError naming
    the key."""
    path, _ = mock_file
    t = load_conversion_template(f"{path}:conversion_ratio_ee", lambda p: p)
    assert isinstance(t, ConversionTemplate)
    # the 10–11 MeV, pT 0.1–0.2 GeV cell: R between 0.1 and 0.8 (docs/explanation/method.md: R of the
    # 10–11 MeV bin summed over pT 0.40 ± 0.01 with 2e6 sources at the default 1% X0)
    assert 0.1 < t.ratio[10, 1] < 0.8
    f = t.factor(np.array([0.0105, 0.5]), np.array([0.15, 0.15]))
    np.testing.assert_allclose(f, [1.0 / (1.0 + t.ratio[10, 1]), 1.0], rtol=1e-12)
    with pytest.raises(ConfigError, match=r"background\.conversion_template"):
        load_conversion_template(f"{path}:nope", lambda p: p)
