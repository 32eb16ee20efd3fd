"""The 400 GeV SPS dump facilities (analysis/facilities/): their configs load with a valid shaped
geometry and their sourced numbers, and the yield carried to a facility's nucleus (A-dependence
and its nuisance ``target_a_dependence``)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from gammastar.config import config_from_dict, load_config
from gammastar.errors import ConfigError
from gammastar.physics.target import (
    inelastic_cross_section_mb,
    interaction_probability,
    nucleus_scale,
    nucleus_scale_rel_err,
)
from gammastar.physics.volumes import shapes
from gammastar.source.geometry import Geometry
from gammastar.source.production import (
    TARGET_NUISANCE,
    load_yields,
    resolve_yield_scale,
    with_target_nuisance,
)

FACILITIES = ("na62_dump", "ship_ecn3", "shadows", "hike_dump", "charm")

# PDG "Atomic and nuclear properties of materials": standard atomic weight A and nuclear
# interaction length λ_I in g/cm²
PB = (207.2, 199.6)
CU = (63.546, 137.3)
MO = (95.95, 152.9)


def load(repo_dir, name):
    return load_config(Path(repo_dir) / "analysis" / "facilities" / f"{name}.yaml")


# --------------------------------------------------------------------------- the configs
@pytest.mark.parametrize("name", FACILITIES)
def test_facility_config_loads_with_a_valid_shaped_geometry(repo_dir, name):
    cfg = load(repo_dir, name)
    geo = Geometry.from_config(cfg.detector)
    vol, plane = geo.volume_shape(), geo.plane_shape()
    assert plane is not None
    assert plane.z > vol.z_range[1]
    assert cfg.reach.missing() == []
    assert cfg.beam.energy == pytest.approx(400.0)  # the data's beam energy is the facility's
    # every facility carries the yield to its own nucleus, from the data's Pb (PDG)
    assert cfg.beam.target_mass_number == pytest.approx(PB[0])
    assert cfg.beam.sigma_inel_mb == pytest.approx(inelastic_cross_section_mb(*PB), rel=1e-3)
    tgt = cfg.reach.target
    assert tgt is not None
    assert tgt.a_exponent_origin
    table = {"Cu": CU, "Mo": MO}
    assert tgt.mass_number == pytest.approx(table[tgt.material][0])
    assert tgt.sigma_inel_mb == pytest.approx(
        inelastic_cross_section_mb(*table[tgt.material]), rel=1e-3
    )
    # the yields are the demo's run, next to the facility runs
    runs = os.path.join(repo_dir, "runs")
    assert os.path.normpath(cfg.base_dir / cfg.reach.yields) == os.path.join(
        runs, "na60_like_both", "yields.json"
    )
    assert os.path.normpath(cfg.base_dir / cfg.output) == os.path.join(runs, f"facility_{name}")


def test_facility_numbers_are_the_sourced_ones(repo_dir):
    na62 = load(repo_dir, "na62_dump")
    # NA62 arXiv:2312.12055: 1.4e17 POT, TAX 19.6 λ_I, FV z = 105-180 m minus the TAX at 23 m,
    # p > 10 GeV; the last STRAW chamber at z ≈ 219.5 m
    assert na62.reach.n_pot == pytest.approx(1.4e17)
    assert na62.reach.target_interaction_lengths == pytest.approx(19.6)
    vol = Geometry.from_config(na62.detector).volume_shape()
    assert isinstance(vol, shapes.Slab)
    assert (vol.z1, vol.z2) == pytest.approx((82.0, 157.0))
    assert na62.detector.min_daughter_energy == pytest.approx(10.0)
    # the window keys the shapes imply are today's analysis/na62_dump.yaml
    old = load_config(Path(repo_dir) / "analysis" / "na62_dump.yaml").detector
    for key in ("l1", "l2", "plane_z", "r_min", "r_max", "both_daughters", "min_daughter_energy"):
        assert getattr(na62.detector, key) == getattr(old, key), key

    # SHiP (CERN-SPSC-2023-033 via SensCalc "SHiP-ECN3"): a frustum 1.0 × 2.7 m to 4 × 6.2 m
    # over 50 m from z = 32 m, 6e20 POT
    ship = load(repo_dir, "ship_ecn3")
    f = Geometry.from_config(ship.detector).volume_shape()
    assert isinstance(f, shapes.Frustum)
    widths = (2 * f.half_x1, 2 * f.half_y1, 2 * f.half_x2, 2 * f.half_y2)
    assert widths == pytest.approx((1.0, 2.7, 4.0, 6.2))
    assert f.z2 - f.z1 == pytest.approx(50.0)
    assert ship.reach.n_pot == pytest.approx(6e20)

    # SHADOWS (SensCalc "SHADOWS-latest"): 2.5 × 2.5 m, its inner edge 1.55 m off the beam line
    sh = load(repo_dir, "shadows")
    box = Geometry.from_config(sh.detector).volume_shape()
    assert isinstance(box, shapes.Box)
    assert abs(box.offset[0]) - box.half_x == pytest.approx(1.55)
    assert sh.reach.n_pot == pytest.approx(5e19)
    # the beam line (x = y = 0) lies outside it: an off-axis volume
    assert not box.contains(np.array([[0.0], [0.0], [20.0]]))[0]

    # CHARM (Phys. Lett. B 157 (1985) 458, SensCalc "CHARM"): 3 × 3 × 35 m at 480 m, axis 5 m
    # off the beam, 2.4e18 POT on a copper dump, e+e- only
    ch = load(repo_dir, "charm")
    box = Geometry.from_config(ch.detector).volume_shape()
    assert (box.z1, box.z2, box.offset[0]) == pytest.approx((480.0, 515.0, 5.0))
    assert (2 * box.half_x, 2 * box.half_y) == pytest.approx((3.0, 3.0))
    assert ch.reach.n_pot == pytest.approx(2.4e18)
    assert ch.reach.target_interaction_lengths == "dump"
    assert ch.reach.channels == ["ee"]

    hike = load(repo_dir, "hike_dump")
    assert hike.reach.n_pot == pytest.approx(5e19)  # arXiv:2311.08231, SensCalc "HIKE-dump"


# --------------------------------------------------------------------------- A-dependence
def test_inelastic_cross_section_from_the_interaction_length():
    # σ = A / (N_A λ_I): Pb 207.2 / (6.02214076e23 × 199.6) cm² = 1.7238 b, the config's
    # default 1720 mb to its rounding
    assert inelastic_cross_section_mb(*PB) == pytest.approx(1723.8, abs=0.1)
    assert inelastic_cross_section_mb(*CU) == pytest.approx(768.5, abs=0.1)


def test_nucleus_scale_against_a_hand_calculation():
    s_pb, s_cu = inelastic_cross_section_mb(*PB), inelastic_cross_section_mb(*CU)
    # by hand: 63.546/207.2 = 0.306689, ^0.85 = exp(0.85 × (-1.181920)) = 0.366179;
    # σ_Pb/σ_Cu = (207.2/199.6)/(63.546/137.3) = 1.038076/0.462826 = 2.242908; product 0.821306
    assert nucleus_scale(CU[0], s_cu, PB[0], s_pb, 0.85) == pytest.approx(0.821306, rel=2e-6)
    # same nucleus: no change
    assert nucleus_scale(PB[0], s_pb, PB[0], s_pb, 0.85) == pytest.approx(1.0, rel=1e-15)
    # if the production grew like the inelastic cross section itself (σ_X ∝ σ_inel), the
    # yield per interacting proton would not depend on A: the exponent of σ_inel between
    # Cu and Pb, ln(σ_Pb/σ_Cu)/ln(A_Pb/A_Cu), gives exactly 1
    alpha_inel = math.log(s_pb / s_cu) / math.log(PB[0] / CU[0])
    assert alpha_inel == pytest.approx(0.684, abs=1e-3)
    assert nucleus_scale(CU[0], s_cu, PB[0], s_pb, alpha_inel) == pytest.approx(1.0, rel=1e-12)
    # α = 1 (production ∝ nucleons): the ratio of nucleons per unit of σ_inel, λ_Cu/λ_Pb
    assert nucleus_scale(CU[0], s_cu, PB[0], s_pb, 1.0) == pytest.approx(137.3 / 199.6, rel=1e-12)


def test_the_alpha_error_is_a_log_normal_of_the_scale():
    s_pb, s_cu = inelastic_cross_section_mb(*PB), inelastic_cross_section_mb(*CU)
    rel = nucleus_scale_rel_err(CU[0], PB[0], 0.15)
    # exp(|ln(63.546/207.2)| × 0.15) − 1 = exp(0.177286) − 1 = 0.193975
    assert rel == pytest.approx(0.193975, rel=1e-5)
    # α ± σ_α moves the scale by (1 + rel)^∓1 (A_f < A_d: a larger α lowers it)
    mid = nucleus_scale(CU[0], s_cu, PB[0], s_pb, 0.85)
    lo = nucleus_scale(CU[0], s_cu, PB[0], s_pb, 1.0)
    hi = nucleus_scale(CU[0], s_cu, PB[0], s_pb, 0.7)
    assert hi / mid == pytest.approx(1 + rel, rel=1e-12)
    assert mid / lo == pytest.approx(1 + rel, rel=1e-12)


# --------------------------------------------------------------------------- in the reach
TARGET = {
    "material": "Cu",
    "mass_number": CU[0],
    "sigma_inel_mb": 768.5,
    "a_exponent": 0.85,
    "a_exponent_err": 0.15,
    "a_exponent_origin": "test",
}
DATA_BEAM = {"target_mass_number": PB[0], "sigma_inel_mb": 1723.8}


def facility_config(tmp_path, *, beam=DATA_BEAM, nucleus=None, **reach):
    """The synthetic reach of test_reach_inputs (yields on a 0.01 λ_I target) behind a
    19.6 λ_I dump, with ``reach.target`` = ``nucleus``."""
    from test_reach_inputs import reach_dict

    d = reach_dict(tmp_path, beam=beam, target=0.01, target_interaction_lengths=19.6, **reach)
    if nucleus is not None:
        d["reach"]["target"] = nucleus
    return config_from_dict(d, source=str(tmp_path / "cfg.yaml"))


def test_yield_scale_has_the_p_int_and_the_nucleus_factors(tmp_path):
    cfg = facility_config(tmp_path, nucleus=TARGET)
    y = load_yields(cfg.reach.yields)
    scale, info = resolve_yield_scale(cfg, y)
    p_ratio = float(interaction_probability(19.6) / interaction_probability(0.01))
    a_part = (CU[0] / PB[0]) ** 0.85 * 1723.8 / 768.5
    assert scale == pytest.approx(p_ratio * a_part, rel=1e-12)
    assert info["target_nucleus"]["factor"] == pytest.approx(a_part, rel=1e-12)
    assert "not_modelled" in info["target_nucleus"]
    # without reach.target: P_int alone, as before
    plain = facility_config(tmp_path)
    assert resolve_yield_scale(plain, y)[0] == pytest.approx(p_ratio, rel=1e-12)


@pytest.mark.parametrize(
    ("beam", "match"),
    [
        ({}, r"beam\.target_mass_number: not given"),
        ({"target_mass_number": 207.2}, r"beam\.sigma_inel_mb: not given"),
    ],
)
def test_the_data_nucleus_must_be_stated(tmp_path, beam, match):
    cfg = facility_config(tmp_path, beam=beam, nucleus=TARGET)
    with pytest.raises(ConfigError, match=match):
        resolve_yield_scale(cfg, load_yields(cfg.reach.yields))


@pytest.mark.parametrize(
    ("reach", "match"),
    [
        ({"target": {**TARGET, "a_exponent": 0.0}}, r"reach\.target\.a_exponent"),
        ({"target": {k: v for k, v in TARGET.items() if k != "a_exponent_err"}}, "a_exponent_err"),
        ({"target": TARGET, "target_interaction_lengths": "data"}, "not with an explicit"),
    ],
)
def test_bad_facility_target(tmp_path, reach, match):
    from test_reach_inputs import reach_dict

    d = reach_dict(tmp_path, beam=DATA_BEAM, target=0.01)
    d["reach"].update(reach)
    with pytest.raises(ConfigError, match=match):
        config_from_dict(d, source=str(tmp_path / "cfg.yaml"))


def test_target_nuisance_is_added_to_the_reach_nuisances():
    info = {
        "target_nucleus": {
            "rel_err": 0.2,
            "a_exponent": 0.85,
            "a_exponent_err": 0.15,
            "a_exponent_origin": "x",
            "data_target": "Pb",
            "data_mass_number": 207.2,
            "material": "Cu",
            "mass_number": 63.546,
        }
    }
    nu, rec = with_target_nuisance({"data_stat": np.array([0.1, 0.2])}, None, info, [0.3, 0.5])
    assert set(nu) == {"data_stat", TARGET_NUISANCE}
    np.testing.assert_allclose(nu[TARGET_NUISANCE], [0.2, 0.2])
    assert rec["nuisances"][TARGET_NUISANCE]["rel"] == [0.2, 0.2]
    # no A-dependence: nothing changes
    assert with_target_nuisance(None, None, {}, [0.3]) == (None, None)


def test_target_nuisance_in_the_workspaces_with_its_size(tmp_path, monkeypatch):
    from _phys_figures import skip_reach_figures

    from gammastar.reach.stage import run_reach

    skip_reach_figures(monkeypatch)  # the workspaces' numbers (figures: test_reach.py)

    cfg = facility_config(tmp_path, nucleus=TARGET, mass_points=3, eps_points=10, samples=400)
    doc = run_reach(cfg).document
    rel = nucleus_scale_rel_err(CU[0], PB[0], 0.15)
    rec = doc["nuisances"]["nuisances"][TARGET_NUISANCE]
    np.testing.assert_allclose(rec["rel"], [rel] * 3, rtol=1e-12)
    assert "alpha = 0.85 +- 0.15" in rec["origin"]
    assert doc["meta"]["target_nucleus"]["material"] == "Cu"
    index = json.loads((tmp_path / "run" / "workspaces" / "index.json").read_text())
    assert index["workspaces"]
    for entry in index["workspaces"]:
        spec = json.loads((tmp_path / "run" / entry["file"]).read_text())
        for ch in spec["channels"]:
            signal = ch["samples"][0]
            mods = {m["name"]: m for m in signal["modifiers"]}
            assert mods[TARGET_NUISANCE]["type"] == "normsys"
            assert mods[TARGET_NUISANCE]["data"]["hi"] == pytest.approx(1 + rel, rel=1e-12)
            assert mods[TARGET_NUISANCE]["data"]["lo"] == pytest.approx(1 / (1 + rel), rel=1e-12)


def test_event_cross_section_is_the_facility_targets(tmp_path):
    """The HepMC3 GenCrossSection is σ_inel of the target the events are for: the facility's
    (``reach.target.sigma_inel_mb``) when the config names one, the data's (``beam``) else;
    σ × expected / (N_POT P_int) in pb (1 mb = 10⁹ pb)."""
    from gammastar.source.setup import cross_section_pb

    src = {"n_pot": 1e17, "p_int": 0.5}
    facility = facility_config(tmp_path, nucleus=TARGET)
    plain = facility_config(tmp_path)
    assert cross_section_pb(facility, src, 4.0) == pytest.approx(
        facility.reach.target.sigma_inel_mb * 1e9 * 4.0 / 0.5e17, rel=1e-12
    )
    assert cross_section_pb(plain, src, 4.0) == pytest.approx(
        plain.beam.sigma_inel_mb * 1e9 * 4.0 / 0.5e17, rel=1e-12
    )
    assert facility.reach.target.sigma_inel_mb != pytest.approx(plain.beam.sigma_inel_mb)


# --------------------------------------------------------------------------- NuCal at 70 GeV
def test_nucal_config_numbers_are_the_sourced_ones(repo_dir):
    """NuCal (Z. Phys. C 51 (1991) 341): 70 GeV protons on iron, 1.71e18 POT, a 23 m decay
    region 64 m behind the dump, 2.6 m in diameter; e+e- with 5 candidates on 3.5 expected."""
    cfg = load(repo_dir, "nucal")
    assert cfg.beam.energy == pytest.approx(70.0)  # the data's beam energy is NuCal's
    assert cfg.reach.n_pot == pytest.approx(1.71e18)
    assert cfg.reach.target_interaction_lengths == "dump"
    tgt = cfg.reach.target
    assert tgt.material == "Fe"
    # PDG: Fe A = 55.845, λ_I = 132.1 g/cm²
    assert tgt.sigma_inel_mb == pytest.approx(inelastic_cross_section_mb(55.845, 132.1), rel=1e-3)
    geo = Geometry.from_config(cfg.detector)
    vol, plane = geo.volume_shape(), geo.plane_shape()
    assert vol.z_range == pytest.approx((64.0, 87.0))
    assert vol.radius == pytest.approx(1.3)
    assert plane.radius == pytest.approx(1.3)
    assert plane.z > vol.z_range[1]
    assert cfg.reach.channels == ["ee"]
    assert cfg.reach.observed["ee"] == 5
    assert cfg.reach.missing() == []
    # its yields are the 70 GeV data run's
    data = load_config(Path(repo_dir) / "analysis" / "na60_like_70gev.yaml")
    assert os.path.normpath(cfg.base_dir / cfg.reach.yields) == os.path.normpath(
        data.base_dir / data.output / "yields.json"
    )


def test_the_70_gev_mock_is_centred_on_its_own_beams_cm_rapidity(repo_dir):
    """The mock's rapidity mean is a config key whose default (3.37) is 400 GeV's y_cm; the
    70 GeV data config states its own: y_cm = asinh(p/m_p)/2 = 2.50 for 70 GeV protons, within
    the 0.005 its two decimals allow, and the yields' extrapolation takes y_cm from beam.energy."""
    from gammastar.physics.kinematics import cm_rapidity

    data = load_config(Path(repo_dir) / "analysis" / "na60_like_70gev.yaml")
    assert data.beam.energy == pytest.approx(70.0)
    assert data.mock.rapidity_mean == pytest.approx(cm_rapidity(70.0), abs=0.005)
    assert data.mock.kinematic_limit  # no meson above the beam's energy
    demo = load_config(Path(repo_dir) / "analysis" / "na60_like_both.yaml")
    assert demo.mock.rapidity_mean == pytest.approx(cm_rapidity(400.0), abs=0.005)
