"""The real-data forward closure end to end (validation/scripts/real_data_closure.py): the
model fitted to measured spectra in the NA60-like arm against the measurements where the
facilities look, and the measured fall-off towards x_F → 1."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def closure(tmp_path_factory):
    out = tmp_path_factory.mktemp("real_data") / "rows.json"
    subprocess.run([sys.executable, str(REPO / "validation" / "scripts" / "real_data_closure.py"),
                    "--out", str(out)], check=True, capture_output=True)  # fmt: skip
    return json.loads(out.read_text())


@pytest.mark.slow
def test_two_measurements_of_the_pion_falloff_agree(closure):
    """n of (1 − x_F)^n at x_F ≥ 0.3 for π+ from NA49 (p + p, 158 GeV/c, measured dn/dx_F) and
    from BMPT (p + Be, 400-450 GeV/c data) agree within 2σ of their combined errors: two
    experiments, targets and energies, one fall-off (Feynman scaling); and every spectrum's n
    lies in 2-8, around the counting rule's (1 − x)^3 for a meson from the proton's valence
    quarks (Gunion; Blankenbecler and Brodsky, Phys. Rev. D 10 (1974))."""
    f = {r["spectrum"]: r for r in closure["falloff"]}
    a, b = f["NA49 pp 158 pi+"], f["BMPT pBe pi+"]
    assert abs(a["n"] - b["n"]) < 2 * (a["err"] ** 2 + b["err"] ** 2) ** 0.5
    assert all(2.0 < r["n"] < 8.0 for r in closure["falloff"])


@pytest.mark.slow
def test_the_package_falloff_is_the_measured_one(closure):
    """The fall-off's n the pion spectra give (the median of the model's matches to their
    fall-off and to their share above E_beam/2, and half their 16-84% spread) is the package's
    ``FALLOFF`` to the rounding of its two digits."""
    from gammastar.yields.extrapolation.model import FALLOFF

    cal = closure["falloff_calibration"]
    assert len(cal["n"]) == 12  # 3 pion spectra × 2 beam energies × 2 matches
    assert cal["median"] == pytest.approx(FALLOFF.value, abs=0.05)
    assert cal["half_spread"] == pytest.approx(FALLOFF.error, abs=0.05)


@pytest.mark.slow
def test_the_band_covers_the_measured_forward_shares(closure):
    """Where the 400 GeV beam dumps' ε_high edges look (E > E_beam/2 at NA62, SHiP, HIKE),
    every measured share lies within 2σ of the two-sided band the reach quotes, a band of at
    most ×2.5 either way (the fall-off from the measurements; ×23-31 with a Gaussian cut only at
    the beam energy); over every region a facility sees, at least four in five lie within
    2σ, a region no measurement reaches counted as a miss (the leading π+ lies above the
    band at CHARM and NuCal: docs/validation/real-data-closure.md)."""
    rows = closure["rows"]
    dumps = [r for r in rows if r["slice"] == "E>Eb/2" and r.get("ratio") is not None
             and r["facility"] in ("na62_dump", "ship_ecn3", "hike_dump")]  # fmt: skip
    # 5 spectra × 3 facilities: every one reached
    assert len(dumps) == 15
    assert all(abs(r["pull"]) <= 2 for r in dumps)
    # ×2.5: the band of a factor 2 in N_sig that a beam dump's ε_high edge needs (r ≤ 1),
    # with the fit's own statistical width (up to ×1.3 for K−) on top
    assert all(max(r["band_up"], r["band_down"]) <= math.log(2.5) for r in dumps)
    scored, within = closure["within_2sigma"][1], closure["within_2sigma"][0]
    # four in five: the 2σ rate (95%) less the regions no measurement reaches (4 of 55) and
    # the leading π+'s known misses at CHARM and NuCal (docs/validation/real-data-closure.md)
    assert within >= 0.8 * scored
