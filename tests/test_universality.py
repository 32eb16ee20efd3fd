"""Lepton universality of the A′ yield: ee/μμ ratio per bin, χ², combination."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _experiment import stated_config
from _universality_mock import write_universality_mock
from scipy import stats

from gammastar.errors import InputError
from gammastar.selection.stage import select
from gammastar.yields.stage import compute_yields
from gammastar.yields.universality import compare_aprime


def _block(y, err, edges):
    return {"bin_edges": edges, "per_pot_per_eps2": y, "stat_err": err, "flags": [[]] * len(y)}


def test_compare_aprime_arithmetic():
    """Ratio error = relative errors in quadrature; χ² = Σ (a − b)²/(σa² + σb²) in range;
    weighted mean and half the difference; bins matched by their edges only."""
    a = _block([2.0, 4.0, 1.0], [0.2, 0.4, 0.1], [0.1, 0.2, 0.3, 0.4])
    b = _block([1.0, 4.0], [0.1, 0.3], [0.2, 0.3, 0.4])  # shares (0.2, 0.3), (0.3, 0.4)
    out = compare_aprime(a, b, mass_range=(0.2, 0.3))
    assert out["bin_edges"] == [[0.2, 0.3], [0.3, 0.4]]
    assert out["ratio"] == pytest.approx([4.0, 0.25])
    assert out["ratio_err"][0] == pytest.approx(4.0 * np.hypot(0.1, 0.1 / 1.0))
    assert out["chi2"] == pytest.approx(9.0 / (0.4**2 + 0.1**2))
    assert out["ndf"] == 1
    w = np.array([1 / 0.4**2, 1 / 0.1**2])
    assert out["combined"]["per_pot_per_eps2"][0] == pytest.approx(
        (w[0] * 4.0 + w[1] * 1.0) / w.sum()
    )
    assert out["combined"]["syst_err"] == pytest.approx([1.5, 1.5])
    with pytest.raises(InputError, match="share no usable mass bin"):
        compare_aprime(a, _block([1.0], [0.1], [0.25, 0.35]))


@pytest.mark.slow
def test_universality_on_the_mock(tmp_path):
    """ee and μμ runs on one [mu, e] mock (Dalitz BRs from the photon modes: universality
    exact in the generator) give A′ yields whose χ² in 0.25–0.5 GeV is below its 99.9%
    quantile, in yields.json next to the contract keys. A wide muon arm and a 5 MeV muon
    resolution (the NA60-like window has A < 1% near 2m_μ; the test is about Eq. 6, not about
    the acceptance extrapolation)."""
    path = write_universality_mock(tmp_path / "mock.root")

    def run(lepton, acc, extra=None):
        cfg = stated_config(
            {
                "name": lepton,
                "output": str(tmp_path / lepton),
                "input": {"files": [str(path)], "lepton": lepton},
                "unfold": {
                    "efficiency_map": None,
                    "acceptance_map": f"{path}:{acc}",
                    "mass_bins": 90,
                },
                "background": {"remove_eta_mumu": "truth"},
                # the same 10 MeV grid from 0.2 GeV, merged to 50 MeV from there
                "selection": {"mass_min": 0.2, "mass_max": 1.1, "lepton_min_energy": 1.0},
                "yields": {"mass_bin_width": 0.05, **(extra or {})},
            },
            source=str(tmp_path / "c.yaml"),
        )
        select(cfg)
        return compute_yields(cfg, plots=False, theory=False).document

    run("mu", "acceptance")
    doc = run(
        "e",
        "acceptance_ee",
        {
            "compare_with": str(tmp_path / "mu" / "yields.json"),
            "universality_mass_range": [0.25, 0.5],
        },
    )
    u = doc["lepton_universality"]
    assert u["ratio_of"] == "ee/mumu"
    assert u["ndf"] == 5
    assert u["chi2"] < stats.chi2(u["ndf"]).ppf(0.999), u
    on_disk = json.loads((tmp_path / "e" / "yields.json").read_text())
    assert {"aprime", "mcp", "meta", "lepton_universality", "aprime_combined"} <= set(on_disk)
    assert on_disk["meta"]["lepton"] == "e"
