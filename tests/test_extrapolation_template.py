"""The ``generator_template`` model form: a generator's rapidity shape h(m, y) on the nominal
model (:mod:`gammastar.yields.extrapolation.template`), its table, its fit as a model
variation, its record and the reading of a generator's γ* from ROOT files."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_extrapolation import MASS, TRUE, _toy, _ToyRegion
from test_extrapolation_xf import E_BEAM, _xf_pairs

from gammastar.config import load_config
from gammastar.errors import ConfigError, InputError
from gammastar.physics.sampling import ParametricSampler
from gammastar.yields.extrapolation.fitting import FitSettings, fit_extrapolation
from gammastar.yields.extrapolation.model import FORMS, XF_POWER, _log_xf, fiducial_fraction
from gammastar.yields.extrapolation.nsig.forms import variation_form
from gammastar.yields.extrapolation.template import (
    TEMPLATE_Y,
    RapidityTemplate,
    TemplateSample,
    read_template,
    template_form,
)


def _sample(y: np.ndarray) -> TemplateSample:
    return TemplateSample(np.full(y.size, MASS), y, None, "toy")


def test_a_gaussian_generator_has_no_factor():
    """A Gaussian generator's h is 1: |ln h| within five times the kernel estimate's relative
    1σ, √(R(K)/(n b g(y))) with R(K) = 1/(2√π), at |y − ȳ| ≤ 1.5σ of 10⁵ γ* (b = σ n^{−1/5});
    and the weights enter: uniform rapidities weighted by that Gaussian's density are the same
    shape (within the same bound at the weights' Kish size)."""
    n, mu, s = 100_000, 3.0, 1.2
    y = np.random.default_rng(1).normal(mu, s, n)
    t = RapidityTemplate.from_sample(np.full(n, MASS), y, None, [0.4, 0.6], "toy")
    near = np.abs(TEMPLATE_Y - mu) <= 1.5 * s
    g = np.exp(-0.5 * ((TEMPLATE_Y[near] - mu) / s) ** 2) / (s * math.sqrt(2 * math.pi))

    def bound(n_eff: float) -> np.ndarray:
        return 5 * np.sqrt(1 / (2 * math.sqrt(math.pi)) / (n_eff * s * n_eff**-0.2 * g))

    assert np.all(np.abs(t(MASS, 0.0, TEMPLATE_Y[near])) < bound(n))
    u = np.random.default_rng(2).uniform(mu - 6 * s, mu + 6 * s, 4 * n)
    w = np.exp(-0.5 * ((u - mu) / s) ** 2)
    tw = RapidityTemplate.from_sample(np.full(u.size, MASS), u, w, [0.4, 0.6], "toy")
    assert np.all(np.abs(tw(MASS, 0.0, TEMPLATE_Y[near])) < bound(w.sum() ** 2 / (w * w).sum()))
    # unweighted, the uniform sample over its own Gaussian (width 12σ/√12) at the centre:
    # ln(√(2π) √12 / 12) = −0.325
    flat = RapidityTemplate.from_sample(np.full(u.size, MASS), u, None, [0.4, 0.6], "toy")
    want = math.log(math.sqrt(2 * math.pi) * math.sqrt(12.0) / 12.0)
    assert float(flat(MASS, 0.0, mu)) == pytest.approx(want, abs=0.03)  # 5 × its 1σ, 0.006


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_the_tail_holds_where_the_generator_is_thin(seed):
    """Beyond the rapidities the generator resolves, ln h holds the last resolved node's value
    instead of a fall its sample size makes: 2000 γ* of a Gaussian give |ln h| ≤ 1 at every
    node, five times a resolved node's relative 1σ, 1/√25 (:data:`TAIL_MIN_EFF`)."""
    y = np.random.default_rng(seed).normal(3.0, 1.2, 2000)
    t = RapidityTemplate.from_sample(np.full(y.size, MASS), y, None, [0.4, 0.6], "toy")
    assert np.max(np.abs(t.log_h)) <= 5 / math.sqrt(25.0)


def test_the_table_follows_the_mass_bins_and_survives_its_record():
    """Each mass bin has its own row (a generator whose shape changes with the mass), a bin
    with too few γ* takes its neighbours', and the ``yields.json`` record rebuilds the table
    (4 decimals of ln h) and the form."""
    rng = np.random.default_rng(2)
    m = np.concatenate([np.full(50_000, 0.3), np.full(50_000, 0.7), np.full(100, 0.5)])
    y = np.concatenate([rng.normal(3.0, 1.2, 50_000), rng.uniform(1.0, 5.0, 50_000),
                        rng.normal(3.0, 1.2, 100)])  # fmt: skip
    t = RapidityTemplate.from_sample(m, y, None, [0.2, 0.4, 0.6, 0.8], "toy")
    at = np.array([3.0, 4.8])
    low, high, mid = t(0.3, 0.0, at), t(0.7, 0.0, at), t(0.5, 0.0, at)
    # Gaussian: flat, within 5 × the kernel estimate's relative 1σ at 1.5σ (0.02 at 5·10⁴ γ*)
    assert abs(low[1] - low[0]) < 0.1
    # uniform on [1, 5] over its Gaussian (σ = 4/√12): rising by 1.8²/(2σ²) = 1.2 from the
    # centre to y = 4.8, less the kernel's rounding of the edge 1.5 bandwidths away
    assert high[1] - high[0] > 0.5
    union = RapidityTemplate.from_sample(m, y, None, [0.2, 0.8], "toy")  # the widened window
    np.testing.assert_allclose(mid, union(0.5, 0.0, at), rtol=0, atol=1e-12)
    rec = template_form(t).factor.as_record()
    back = RapidityTemplate.from_record(rec)
    np.testing.assert_allclose(back.log_h, t.log_h, rtol=0, atol=5.000001e-5)
    form = variation_form("generator_template", {"form": "generator_template", "template": rec})
    assert form.factor is not None
    assert variation_form("generator_template", {"form": "generator_template"}) is None
    with pytest.raises(InputError, match=r"template\.log_h: shape \(2, 241\)"):
        RapidityTemplate.from_record({**rec, "log_h": rec["log_h"][:2]})
    with pytest.raises(InputError, match=r"template: no 'edges'"):
        RapidityTemplate.from_record({k: v for k, v in rec.items() if k != "edges"})


def test_a_generator_with_too_few_gstar_is_a_clear_error():
    with pytest.raises(InputError, match=r"extrapolation_template \(toy\): 100 effective"):
        RapidityTemplate.from_sample(np.full(100, MASS), np.zeros(100), None, [0.4, 0.6], "toy")


def _generator_y(n: int, seed: int, true: tuple[float, float, float]) -> np.ndarray:
    """Rapidities of a generator with the ``xf_suppressed`` truth's fall at E_BEAM but another
    core (T, ȳ, σ_y) = ``true``: accept–reject as :func:`test_extrapolation_xf._xf_draws`."""
    rng = np.random.default_rng(seed)
    out = ParametricSampler(*true).sample(MASS, n, seed=int(rng.integers(2**31)))
    qt, e = out["qT"], out["E"]
    y = np.arccosh(e / np.sqrt(qt**2 + MASS**2))
    return y[rng.random(n) < np.exp(_log_xf(MASS, qt, y, E_BEAM, XF_POWER))]


@pytest.mark.parametrize("core", [(0.2, 3.0, 1.0), (0.2, 3.7, 1.4)])
def test_a_template_of_another_generator_closes(core):
    """Pairs of the fall-off truth (the ``xf_suppressed`` form at E_beam = 50 GeV, 4·10⁵
    sources through the toy's acceptance), the template from a generator with the same fall
    but another Gaussian core: the variation's P_F is the truth's within 0.05 (this size's
    scatter over seeds and cores: −0.004 to +0.027), while the nominal form misses it by more
    than 0.1 (+0.17); the record names the generator."""
    region = _ToyRegion()
    pairs = _xf_pairs(region)
    settings = FitSettings(y_mean=TRUE[1], seed=7, compare=False,
                           template=_sample(_generator_y(400_000, 1000, core)))  # fmt: skip
    ex = fit_extrapolation(*pairs, [0.45, 0.55], region, settings=settings)
    truth = fiducial_fraction(region, MASS, TRUE, form=FORMS["xf_suppressed"].at_beam(E_BEAM))
    rec = ex.model_variations["generator_template"]
    assert rec["fiducial_fraction"][0] == pytest.approx(truth, abs=0.05)
    assert abs(ex.fiducial_fraction[0] - truth) > 0.1
    assert rec["template"]["label"] == "toy"


def test_a_generator_without_the_fits_masses_is_left_out_with_a_warning(caplog):
    """A template with no γ* in the fit's mass bins (a generator without the low masses of
    the model below the seam) leaves its form out of that fit, saying so."""
    region = _ToyRegion()
    far = TemplateSample(np.full(5000, 0.9), np.random.default_rng(3).normal(3.0, 1.2, 5000),
                         None, "heavy generator")  # fmt: skip
    with caplog.at_level("WARNING", logger="gammastar.yields.extrapolation.fitting"):
        ex = fit_extrapolation(*_toy(region, 5_000, seed=21), [0.45, 0.55], region,
                               settings=FitSettings(y_mean=TRUE[1], seed=7, compare=False,
                                                    template=far))  # fmt: skip
    assert "generator_template" not in ex.model_variations
    assert "heavy generator): 0 effective γ* in m = 0.45-0.55 GeV" in caplog.text
    assert "left out of this fit" in caplog.text


def test_without_a_template_the_form_is_not_a_variation():
    region = _ToyRegion()
    ex = fit_extrapolation(*_toy(region, 5_000, seed=21), [0.45, 0.55], region,
                           settings=FitSettings(y_mean=TRUE[1], seed=7, compare=False))  # fmt: skip
    assert "generator_template" not in ex.model_variations


def _write(path, **branches):
    import uproot

    with uproot.recreate(path) as f:
        f["gen"] = branches


def test_an_rntuple_generator_is_read(tmp_path):
    """The γ* in an RNTuple, as in a TTree."""
    import awkward as ak
    import uproot

    y = np.linspace(1.0, 5.0, 10)
    with uproot.recreate(tmp_path / "rn.root") as f:
        f.mkrntuple("gen", ak.Array({"mass": np.full(10, 0.5), "rap": y}))
    _, got_y, w = read_template([str(tmp_path / "rn.root")], tree="gen", mass="mass", rapidity="rap")
    np.testing.assert_array_equal(got_y, y)  # the float64 values written, read back: copies
    assert w is None


def test_the_generator_is_read_with_its_branch_names(tmp_path):
    """The config's files, tree and branch names; a missing file, tree or branch is a one-line
    error naming it."""
    y = np.linspace(1.0, 5.0, 10)
    _write(tmp_path / "a.root", mass=np.full(10, 0.5), rap=y, wt=np.full(10, 2.0))
    got_m, got_y, w = read_template([str(tmp_path / "a.root")], tree="gen", mass="mass",
                                rapidity="rap", weight="wt")  # fmt: skip
    np.testing.assert_array_equal(got_y, y)  # the float64 values written, read back: copies
    np.testing.assert_array_equal(got_m, np.full(10, 0.5))  # the float64 0.5 written: a copy
    assert w is not None
    assert float(w.sum()) == pytest.approx(20.0, rel=1e-15)
    with pytest.raises(InputError, match=r"a\.root: tree 'gen' has no branch 'y'"):
        read_template([str(tmp_path / "a.root")], tree="gen", mass="mass", rapidity="y")
    with pytest.raises(InputError, match=r"a\.root: no 'truth'"):
        read_template([str(tmp_path / "a.root")], tree="truth", mass="mass", rapidity="rap")
    with pytest.raises(InputError, match=r"nope\.root"):
        read_template([str(tmp_path / "nope.root")], tree="gen", mass="mass", rapidity="rap")


def test_the_config_names_the_template(tmp_path):
    """``yields.extrapolation_template`` in a config: its files relative to the config, read
    into the fit's settings; without one, none; a missing key is named."""
    _write(tmp_path / "gen.root", m=np.full(5, 0.5), y=np.linspace(2.0, 4.0, 5))
    path = tmp_path / "cfg.yaml"
    path.write_text("mock: {}\nyields:\n  extrapolation_template: {files: [gen.root], tree: gen, mass: m, "
                    "rapidity: y, label: toy generator}\n")  # fmt: skip
    got = FitSettings.from_config(load_config(path)).template
    assert got is not None
    assert (got.label, got.y.size) == ("toy generator", 5)
    path.write_text("mock: {}\nyields: {}\n")
    assert FitSettings.from_config(load_config(path)).template is None
    path.write_text("mock: {}\nyields:\n  extrapolation_template: {files: [gen.root], tree: gen, "
                    "mass: m}\n")  # fmt: skip
    with pytest.raises(ConfigError, match=r"extrapolation_template\.rapidity"):
        load_config(path)
