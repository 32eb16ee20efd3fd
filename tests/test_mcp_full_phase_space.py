"""The data-driven χ flux of ``reach-mcp`` in the full phase space: the fiducial
pairs of a small NA60-like mock run carried with the yields' fiducial fraction reproduce the
stage's own full-phase-space χχ̄ yield (``yields.json`` ``mcp``, Eq. 8) for a 4π detector."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gammastar.config import load_config
from gammastar.selection.stage import select
from gammastar.yields.stage import compute_yields

REPO = Path(__file__).resolve().parents[1]
# The checks are identities (the same pairs and weights as the yields stage) and bounds set by
# the run's own f_F, not statistical levels: ≈ 1e3 selected pairs (2e4 sources) give the
# fiducial fit and the masses they need.
EVENTS, SEED = 20_000, 23


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from gammastar.mock.generate import generate_file

    out = tmp_path_factory.mktemp("mcpfull")
    cfg = load_config(REPO / "analysis" / "na60_like.yaml")
    # without the named uncertainties (their λ_θ refits are most of the yields' time): the
    # tests read the yields, their errors and f_F, none of the nuisances
    plain = cfg.uncertainties.model_copy(update={"enabled": False})
    cfg = cfg.model_copy(update={"output": str(out), "uncertainties": plain})
    generate_file(cfg, out / "mock.root", events=EVENTS, seed=SEED)
    select(cfg)
    doc = compute_yields(cfg, plots=False, theory=False).document
    return cfg, doc


def test_full_phase_space_chi_yield_4pi_equals_yields_mcp(run, monkeypatch):
    from gammastar.darksector import mcp as reach_mcp
    from gammastar.physics.scintillator import ScintillatorDetector

    cfg, _ = run
    doc = json.loads((cfg.output_dir / "yields.json").read_text())
    assert doc.get("extrapolation") is not None  # the NA60-like run is fiducial
    # a 4π detector: both χ of every γ* cross it (2 per pair; yields.json counts pairs)
    monkeypatch.setattr(
        reach_mcp, "chi_flux_into_detector", lambda g, m, det, seed: np.full(np.shape(g)[1], 2.0)
    )
    det = ScintillatorDetector(distance=10.0, n_layers=1, layer_length=1.0, area=1.0,
                               npe_per_q2=1e6)  # fmt: skip
    mass = np.asarray(doc["mcp"]["mass"], dtype=float)
    y_ref = np.asarray([np.nan if v is None else v for v in doc["mcp"]["per_pot_per_q2"]])
    err = np.asarray([np.nan if v is None else v for v in doc["mcp"]["stat_err"]])
    pick = np.nonzero(np.isfinite(y_ref) & (y_ref > 0))[0][:: max(1, len(mass) // 4)][:4]
    assert pick.size >= 2
    thick = doc["meta"]["target_interaction_lengths"]  # the data's target: scale 1
    share: list[float] = []
    y = reach_mcp.data_driven_yields(cfg.output_dir, mass[pick], det, thick, seed=1,
                                     extrapolated=share)  # fmt: skip
    fid = reach_mcp.data_driven_yields(cfg.output_dir, mass[pick], det, thick, seed=1,
                                       full_phase_space=False)  # fmt: skip
    # the same pairs and the same per-pair weight w/f_F(m) as the yields stage
    # (Extrapolation.at): equal to summation rounding (1e-9), far inside its statistical error
    np.testing.assert_allclose(y / 2, y_ref[pick], rtol=1e-9)
    assert np.all(np.abs(y / 2 - y_ref[pick]) < 0.1 * err[pick])
    # the fiducial-only flux is a lower bound: the stated share of the rest is 1 − fid/full,
    # fid/full = Σw / Σ(w/f_F(m)) over the pairs above 2 m_χ, a weighted (harmonic) mean of
    # the yields' f_F: between their smallest and largest (positive net weights per bin)
    np.testing.assert_allclose(share, 1 - fid / y, rtol=1e-12)
    f = np.asarray(doc["aprime"]["fiducial_fraction"], dtype=float)
    assert all(1 - f.max() <= s <= 1 - f.min() for s in share), (share, f.min(), f.max())
    assert all(0.0 < s < 1.0 for s in share)


def test_run_mcp_reach_states_the_extrapolated_share(run, tmp_path, monkeypatch):
    # the end-to-end stage on the same run: reach_mcp.json (schema-checked on write) carries
    # the share per mass, the data's flux its full-phase-space value (> the fiducial one)
    import yaml
    from _phys_figures import skip_plot

    from gammastar.darksector.mcp import run_mcp_reach

    skip_plot(monkeypatch, "gammastar.darksector.mcp.plot_mcp_reach")  # test_mcp_detector.py draws it

    cfg_run, _ = run
    det = {"distance": 30.0, "n_layers": 2, "layer_length": 1.0, "area": 1.0, "npe_per_q2": 1e6}
    mcp = {"detector": det, "beam_energy": 400.0, "n_pot": 1e18,
           "target_interaction_lengths": "dump", "n_pot_rel_uncertainty": 0.0,
           "data_driven": {"run": str(cfg_run.output_dir)},
           "mass_min": 0.1, "mass_max": 0.2, "mass_points": 2, "n_samples": 1000}  # fmt: skip
    p = tmp_path / "a.yaml"
    p.write_text(yaml.safe_dump({"name": "t", "output": str(tmp_path / "out"), "mcp": mcp}))
    doc = json.loads(run_mcp_reach(load_config(p)).read_text())
    share = doc["data_extrapolated_share"]
    assert len(share) == 2
    # the extrapolated part carries the fiducial pairs' kinematics (the stated model), so the
    # share in any detector is ≈ 1 − f_F of the masses it sees: 0.5–0.75 as above
    assert all(0.5 < s < 0.75 for s in share)
    assert np.all(np.asarray(doc["yield_by_source"]["data"]) > 0)
