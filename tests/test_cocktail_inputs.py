"""The mock cocktail's inputs (``gammastar.cocktail_inputs``): every numeric default of the
mock's production model has a sourced record and equals it, the p + A scaling is the power law
it states, and ``mock.target`` moves the mesons per collision by that law."""

from __future__ import annotations

import math
import types
import typing

import pytest

from gammastar import cocktail_inputs as ci
from gammastar.config.mock import MockConfig, MockCrossSections
from gammastar.physics.target import inelastic_cross_section_mb

KINDS = {"measured", "PYTHIA 8.317", "unsourced", "exact"}


def _config_default(path: str) -> float:
    obj = MockConfig()
    for part in path.removeprefix("mock.").split("."):
        obj = getattr(obj, part)
    return float(obj)


def _is_float(ann: object) -> bool:
    if typing.get_origin(ann) is typing.Annotated:
        return _is_float(typing.get_args(ann)[0])
    if typing.get_origin(ann) in (typing.Union, types.UnionType):  # a list of floats is binning
        return any(_is_float(a) for a in typing.get_args(ann))
    return ann is float


def _float_fields(model: type, prefix: str) -> list[str]:
    return [f"{prefix}{n}" for n, f in model.model_fields.items() if _is_float(f.annotation)]


def test_every_numeric_default_of_the_production_model_has_a_record():
    # every float default of MockConfig (top level) and MockCrossSections: the production
    # model's numbers (the integer counts and the binning are not physics inputs)
    fields = _float_fields(MockConfig, "mock.") + _float_fields(
        MockCrossSections, "mock.cross_sections."
    )
    assert "mock.cross_sections.phi" in fields
    assert "mock.pt_temperature" in fields
    recorded = {r.config for r in ci.INPUTS.values() if r.config}
    # n_omega_per_collision's default is derived (None): its inputs are the records below
    fields.remove("mock.n_omega_per_collision")
    missing = sorted(set(fields) - recorded)
    assert not missing, f"numeric mock defaults without a cocktail_inputs record: {missing}"
    for name in ("n_omega_pp", "sigma_inel_pp", *(f"alpha_{m}" for m in ci.MESONS)):
        assert name in ci.INPUTS


def test_records_have_source_kind_and_an_uncertainty_unless_exact():
    for r in ci.INPUTS.values():
        assert r.kind in KINDS, r.name
        assert r.source.strip(), r.name
        if r.kind != "exact":
            assert r.uncertainty > 0, r.name
        if r.kind == "unsourced":
            # the knobs whose default is a form's choice, not a number from a generator
            assert "PYTHIA" in r.source or r.name.startswith(("alpha_", "pt_mt_power", "falloff")), r.name


def test_config_defaults_equal_the_table():
    for r in ci.INPUTS.values():
        if r.config:
            assert _config_default(r.config) == pytest.approx(r.value, rel=1e-15), r.config


def test_unsourced_uncertainty_covers_pythia():
    # the PYTHIA 8.317 p + p values quoted in the records (docs/reference/mock.md table)
    pythia = {"ratio_eta_prime": 0.090, "ratio_phi": 0.036, "ratio_pi0": 7.6,
              "pt_temperature": 0.152, "rapidity_sigma": 1.25}  # fmt: skip
    for name, v in pythia.items():
        r = ci.INPUTS[name]
        assert abs(r.value - v) <= r.uncertainty, name


def test_alpha_and_its_error():
    a, err = ci.alpha("omega")
    assert (a, err) == (ci.INPUTS["alpha_omega"].value, ci.INPUTS["alpha_omega"].uncertainty)
    with pytest.raises(KeyError, match="no A-dependence"):
        ci.alpha("jpsi")


def test_sigma_inel_is_the_package_formula():
    for name, nuc in ci.NUCLEI.items():
        if nuc.interaction_length_g_cm2 is None:
            assert ci.sigma_inel_mb(name) == ci.value("sigma_inel_pp")
            continue
        ref = inelastic_cross_section_mb(nuc.mass_number, nuc.interaction_length_g_cm2)
        assert ci.sigma_inel_mb(name) == pytest.approx(ref, rel=1e-14)


def test_pa_scaling_by_hand():
    # <n>_pA = <n>_pp A^alpha sigma_pp/sigma_pA with the numbers written out: Cu, A = 63.546,
    # lambda_I = 137.3 g/cm2 -> sigma = A/(N_A lambda_I) = 768.5 mb; alpha 0.86; sigma_pp 32.9 mb
    sigma_cu = 63.546 / (6.02214076e23 * 137.3) * 1e27
    expected = 0.39 * 63.546**0.86 * 32.9 / sigma_cu
    assert ci.per_collision("omega", "Cu") == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(0.5933, abs=1e-4)
    # the proton target returns the p + p multiplicity itself
    assert ci.per_collision("omega", "p") == pytest.approx(0.39, rel=1e-14)


def test_target_changes_the_mesons_per_collision_by_the_power_law():
    pb, cu = MockConfig(target="Pb"), MockConfig(target="Cu")
    a = ci.alpha("omega")[0]
    ratio = (63.546 / 207.2) ** a * ci.sigma_inel_mb("Pb") / ci.sigma_inel_mb("Cu")
    assert cu.omega_per_collision() / pb.omega_per_collision() == pytest.approx(ratio, rel=1e-12)
    # = (A_Cu/A_Pb)^(alpha - 1) x (lambda_Cu/lambda_Pb): sigma = A/(N_A lambda)
    alt = (63.546 / 207.2) ** (a - 1) * 137.3 / 199.6
    assert ratio == pytest.approx(alt, rel=1e-12)
    # the other mesons follow with their own alpha: sigma_m/sigma_omega x A^(alpha_m - alpha_w)
    for m in ("eta", "phi", "rho", "eta_prime"):
        d = ci.alpha(m)[0] - a
        assert cu.sigma_rel(m) == pytest.approx(getattr(cu.cross_sections, m) * 63.546**d)


def test_a_meson_with_its_own_alpha_moves_its_ratio(monkeypatch):
    # the shipped alphas are one value for every meson (the records say why); a meson with
    # its own alpha changes its sigma/sigma_omega in the target by A^(alpha_m - alpha_omega)
    import dataclasses

    rec = dataclasses.replace(ci.INPUTS["alpha_phi"], value=0.96)
    monkeypatch.setitem(ci.INPUTS, "alpha_phi", rec)
    d = 0.96 - ci.alpha("omega")[0]
    for target, a in (("Pb", 207.2), ("Be", 9.0122)):
        cfg = MockConfig(target=target)
        assert cfg.sigma_rel("phi") == pytest.approx(0.06 * a**d, rel=1e-12)
        assert cfg.sigma_rel("eta") == pytest.approx(0.8, rel=1e-12)
        # and <n_phi> per collision is its own power law
        n_phi = cfg.omega_per_collision() * cfg.sigma_rel("phi")
        assert n_phi == pytest.approx(
            0.39 * 0.06 * a**0.96 * 32.9 / ci.sigma_inel_mb(target), rel=1e-12
        )
    # an explicit n_omega_per_collision takes the ratios as given
    assert MockConfig(n_omega_per_collision=0.8).sigma_rel("phi") == 0.06  # copied, no arithmetic


def test_target_moves_the_cocktail_normalisation():
    # the cocktail's sum over channels of BR x <n_m> per collision equals the same sum built
    # meson by meson from the p + p multiplicities (cocktail_inputs.per_collision), per target
    from gammastar.mock.cocktail import Cocktail

    for target in ("Pb", "W", "Be"):
        c = Cocktail(MockConfig(target=target))
        expected = sum(
            c.branching_ratios[s.channel].value
            * ci.per_collision(s.parent, target, 0.39 * getattr(c.cfg.cross_sections, s.parent))
            for s in c.specs
        )
        assert c.mesons_per_collision() == pytest.approx(expected, rel=1e-12)


def test_explicit_n_omega_keeps_its_meaning():
    cfg = MockConfig(n_omega_per_collision=0.8, target="Cu", cross_sections={"phi": 0.1})
    assert cfg.omega_per_collision() == 0.8
    assert cfg.sigma_rel("phi") == 0.1
    assert cfg.normalisation()["rel_uncertainty"] is None


def test_normalisation_uncertainty_by_hand():
    # ln-sum of <n_omega>_pp (0.024/0.39), sigma_pp (1/32.9) and alpha_omega (ln A x 0.05)
    terms = [math.log1p(0.024 / 0.39), math.log1p(1.0 / 32.9), math.log(207.2) * 0.05]
    expected = math.expm1(math.sqrt(sum(t * t for t in terms)))
    assert ci.n_omega_rel_uncertainty("Pb") == pytest.approx(expected, rel=1e-12)
    assert MockConfig().normalisation()["rel_uncertainty"] == pytest.approx(expected, rel=1e-12)
    assert ci.n_omega_rel_uncertainty("p") == pytest.approx(0.024 / 0.39, rel=1e-12)


def test_config_loads_without_numpy():
    import subprocess
    import sys

    code = (
        "import sys\nfrom gammastar.config.mock import MockConfig\n"
        "MockConfig().omega_per_collision()\nprint('numpy' in sys.modules)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "False"
