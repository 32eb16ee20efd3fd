"""``reach.production: standard_recipe``: the recipe's A′ as a Source (gammastar.source.recipe),
its yield the standard recipe's numbers, its two-body kinematics and bremsstrahlung sampler
against their formulas, and a small reach run beside the data-driven one."""

from __future__ import annotations

import itertools
import json
import typing

import numpy as np
import pytest
import uproot
import yaml

from gammastar.cli import main
from gammastar.cli.reach import PRODUCTIONS as CLI_PRODUCTIONS
from gammastar.config import config_from_dict
from gammastar.config.mock import MockConfig
from gammastar.config.reach import Production
from gammastar.core.artifacts import make_meta, write_json
from gammastar.errors import ConfigError, InputError
from gammastar.physics import bremsstrahlung as br
from gammastar.physics.constants import M_PROTON, mass
from gammastar.physics.kinematics import four_momentum
from gammastar.source.modes import PRODUCTIONS
from gammastar.source.production import load_yields
from gammastar.source.recipe import (
    MesonSpectra,
    PoolSpectra,
    decay_to_lab,
    meson_spectra,
    recipe_source,
)
from gammastar.yields.npot import meta_from_root
from gammastar.yields.standard_recipe import (
    MAX_STEP,
    brems_interpolated,
    meson_yields_from_meta,
    standard_recipe_section,
)

EDGES = np.linspace(0.01, 1.1, 110)  # 10 MeV bins, the demo's combined table


def test_the_production_modes_are_one_list():
    # the config's Literal and the command line's choices name the registry's keys
    assert set(typing.get_args(Production)) == set(PRODUCTIONS) == set(CLI_PRODUCTIONS)


# --------------------------------------------------------------------------- kinematics
@pytest.mark.parametrize(
    ("parent", "partner", "m"),
    [("pi0", 0.0, 0.05), ("eta", 0.0, 0.4), ("omega", "pi0", 0.3), ("phi", "eta", 0.2)],
)
def test_two_body_energy_in_the_parent_frame(parent, partner, m):
    """At rest E* = (M² + m² − m_X²)/(2M) (PDG Kinematics Eq. 49.17, m_X = 0 for the photon),
    exactly (to the float64 rounding of a handful of operations); the direction isotropic:
    ⟨cos θ⟩ = 0 within 5/√(3n) (cos θ uniform on [−1, 1], variance 1/3)."""
    mp = mass(parent)
    mx = 0.0 if partner == 0.0 else mass(partner)
    n = 40_000
    rest = np.zeros((4, n))
    rest[3] = mp
    p = decay_to_lab(np.random.default_rng(3), rest, mp, m, mx)
    e_star = (mp**2 + m**2 - mx**2) / (2 * mp)
    np.testing.assert_allclose(p[3], e_star, rtol=1e-14)
    p_abs = np.sqrt((p[:3] ** 2).sum(axis=0))
    np.testing.assert_allclose(p_abs**2 + m**2, e_star**2, rtol=1e-12)
    assert abs(np.mean(p[2] / p_abs)) < 5 / np.sqrt(3 * n)


def test_two_body_lab_energy_is_flat_between_its_limits():
    """A moving parent (γ, β): the A′'s lab energy is uniform on γ(E* ∓ βp*) (isotropic decay),
    so its mean is γE* within 5 σ/√n, σ = γβp*/√3, and nothing lies outside the limits."""
    mp, m = mass("eta"), 0.3
    n = 40_000
    parent = four_momentum(np.full(n, mp), np.full(n, 0.4), np.full(n, 2.5), np.zeros(n))
    p = decay_to_lab(np.random.default_rng(5), parent, mp, m)
    gamma = parent[3, 0] / mp
    beta = np.sqrt(1 - 1 / gamma**2)
    e_star = (mp**2 + m**2) / (2 * mp)
    p_star = (mp**2 - m**2) / (2 * mp)
    sigma = gamma * beta * p_star / np.sqrt(3)
    assert abs(p[3].mean() - gamma * e_star) < 5 * sigma / np.sqrt(n)
    lo, hi = gamma * (e_star - beta * p_star), gamma * (e_star + beta * p_star)
    assert p[3].min() >= lo * (1 - 1e-12)
    assert p[3].max() <= hi * (1 + 1e-12)


def test_brems_sampler_has_the_quadratures_mean_z():
    """The sampled ⟨z⟩ and ⟨p_T²⟩ equal those of the emission density's Gauss–Legendre
    quadrature (the integrand of emission_probability, 64 × 64 points) within 5 σ/√n plus the
    cell approximation (1e-3 relative, 96 × 96 cells)."""
    st = br.BremsSettings()
    m = 0.3
    xz, wz = np.polynomial.legendre.leggauss(64)
    z = (0.5 * (st.z_max - st.z_min) * xz + 0.5 * (st.z_max + st.z_min))[:, None]
    wz = (0.5 * (st.z_max - st.z_min) * wz)[:, None]
    a = (1 - z) * m**2 + z**2 * M_PROTON**2
    t0, t1 = np.log(a), np.log(a + st.pt_max**2)
    xt, wt = np.polynomial.legendre.leggauss(64)
    t = 0.5 * (t1 - t0) * xt[None, :] + 0.5 * (t1 + t0)
    pt2 = np.exp(t) - a
    s = 2 * M_PROTON * st.beam_energy
    f = br.splitting_function(z, pt2, m) * br.sigma_pp(s * (1 - z)) / br.sigma_pp(s)
    f = f * br.offshell_form_factor(z, pt2, m, st.cutoff) ** 2 * np.exp(t) * 0.5 * (t1 - t0) * wt
    f = f * wz
    mean_z, mean_pt2 = (f * z).sum() / f.sum(), (f * pt2).sum() / f.sum()
    n = 200_000
    zs, pts = br.sample_emission(m, n, np.random.default_rng(7), st)
    assert abs(zs.mean() - mean_z) < 5 * zs.std() / np.sqrt(n) + 1e-3 * mean_z
    assert abs((pts**2).mean() - mean_pt2) < 5 * (pts**2).std() / np.sqrt(n) + 1e-3 * mean_pt2


# --------------------------------------------------------------------------- the source
def mock_file(path, **meta):
    """A ROOT file holding only a parametric mock's ``meta`` (what the recipe reads)."""
    doc = make_meta(config_sha256=None, seed=1, n_pot=1e12, target_interaction_lengths=0.01,
                    beam_energy=400.0, mock_config=MockConfig().model_dump(mode="json"), **meta)  # fmt: skip
    with uproot.recreate(path) as f:
        f["meta"] = json.dumps(doc)
    return path


def recipe_yields(tmp_path, mock=None):
    """A yields.json with the data-driven table on EDGES and the yields stage's
    ``standard_recipe`` block (standard_recipe_section) naming the mock file (default: a
    parametric one, mock_file)."""
    mock = mock or mock_file(tmp_path / "mock.root")
    mesons = meson_yields_from_meta([(str(mock), meta_from_root(mock))])
    centres = 0.5 * (EDGES[1:] + EDGES[:-1])
    y = 3e-3 * np.exp(-(centres - 0.01) / 0.3)
    aprime = {"mass": centres, "bin_edges": EDGES, "per_pot_per_eps2": y, "stat_err": 0.05 * y}
    st = br.BremsSettings()
    block = standard_recipe_section(
        {k: np.asarray(v).tolist() for k, v in aprime.items()}, mesons,
        brems=brems_interpolated(st, EDGES[0], EDGES[-1]),
        brems_settings={**st.__dict__, "curve": "theory.brems_aprime (central)"},
    )  # fmt: skip
    meta = make_meta(config_sha256=None, seed=None, n_pot=1e13, target_interaction_lengths=0.01)
    path = tmp_path / "yields.json"
    write_json(path, {"aprime": aprime, "standard_recipe": block, "meta": meta}, force=True)
    return path, block


def recipe_reach_dict(tmp_path, mock=None, **reach):
    """A small reach (test_reach_inputs's) on recipe_yields' yields.json."""
    from test_reach_inputs import reach_dict

    d = reach_dict(tmp_path, channels=["ee", "mumu"], mass_points=3, eps_points=12,
                   samples=400, mass_min=0.05, mass_max=0.6, **reach)  # fmt: skip
    path, _ = recipe_yields(tmp_path, mock)
    d["reach"]["yields"] = str(path)
    d["uncertainties"] = {"enabled": False}
    return d


def reach_config(tmp_path, mock=None, **reach):
    d = recipe_reach_dict(tmp_path, mock, **reach)
    return config_from_dict(d, source=str(tmp_path / "cfg.yaml"))


def test_recipe_yield_is_the_standard_recipes_per_pot_count(tmp_path):
    """The Source's yield per POT per ε² is yields.json ``standard_recipe.per_pot_per_eps2`` (the
    yields stage's numbers, bin by bin, to float64 rounding of the same sums), and its
    kinematics' channel weights, averaged over a bin (Gauss–Legendre on MAX_STEP steps, as the
    recipe), integrate to it: the mixture the reach draws is the yield it scans (to 1e-3: the
    interpolated bremsstrahlung against its direct quadrature, 2e-4, and 4 points a step)."""
    cfg = reach_config(tmp_path, production="standard_recipe")
    path, block = recipe_yields(tmp_path)
    src = recipe_source(cfg, load_yields(path), path)
    got, rel = src.yield_at(np.asarray(block["mass"]))
    np.testing.assert_allclose(got, block["per_pot_per_eps2"], rtol=1e-12)
    # the recipe states no statistical error of its own: zeros, within float64 rounding
    np.testing.assert_allclose(rel, 0.0, atol=1e-15)
    xg, wg = np.polynomial.legendre.leggauss(4)
    for i in (4, 29, 77, 100):  # 0.05, 0.30 (η), 0.78 (ω), 1.01 (φ) GeV
        a, b = EDGES[i], EDGES[i + 1]
        k = int(np.ceil((b - a) / MAX_STEP))
        sub = np.linspace(a, b, k + 1)
        nodes = [(lo, hi, j) for lo, hi in itertools.pairwise(sub) for j in range(xg.size)]
        avg = sum(
            0.5 * (hi - lo) * wg[j] * src.kinematics.weights(lo + 0.5 * (hi - lo) * (1 + xg[j])).sum()
            for lo, hi, j in nodes
        ) / (b - a)  # fmt: skip
        assert avg == pytest.approx(block["per_pot_per_eps2"][i], rel=1e-3)


def test_recipe_kinematics_follow_the_mock_spectra(tmp_path):
    """Near m → 0 the recipe is π0 → γA′: the A′ carry on average (M² + m²)/(2M²) of the π0's
    energy (the isotropic decay's γE*), the π0's spectra the mock's (mock.electrons.pi0):
    compared with the π0s themselves within 5 σ/√n of both samples."""
    cfg = reach_config(tmp_path, production="standard_recipe")
    path, _ = recipe_yields(tmp_path)
    src = recipe_source(cfg, load_yields(path), path)
    n, m = 40_000, 0.02
    assert not src.sample(m, 100, seed=11)["extrapolated"].any()
    out = src.kinematics.sample(m, n, seed=11)
    chans = [c.name for c in src.kinematics.channels]
    pi0 = out["channel"] == chans.index("pi0")
    assert pi0.mean() > 0.9  # the π0 dominates at 20 MeV (N_π0 BR(γγ) ≫ the others)
    mp = mass("pi0")
    spectra = MesonSpectra.from_meta(meta_from_root(tmp_path / "mock.root"), "mock")
    rng = np.random.default_rng(2)
    pt, y = spectra.pt_y(rng, "pi0", np.full(n, mp))
    e_pi0 = np.sqrt(mp**2 + pt**2) * np.cosh(y)
    e = out["E"][pi0]
    expect = e_pi0.mean() * (mp**2 + m**2) / (2 * mp**2)
    tol = 5 * np.hypot(e.std() / np.sqrt(e.size), e_pi0.std() / np.sqrt(n) * expect / e_pi0.mean())
    assert abs(e.mean() - expect) < tol


def test_recipe_needs_a_mock_file(tmp_path):
    cfg = reach_config(tmp_path, production="standard_recipe")
    bare = tmp_path / "bare.json"
    doc = json.loads((tmp_path / "yields.json").read_text())
    doc.pop("standard_recipe")
    bare.write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match=r"reach\.recipe_mock"):
        recipe_source(cfg, load_yields(bare), bare)
    cfg2 = reach_config(tmp_path, production="standard_recipe", recipe_mock=["nothere.root"])
    with pytest.raises(InputError, match=r"nothere\.root"):
        recipe_source(cfg2, load_yields(bare), bare)


def test_recipe_reach_runs_beside_the_data_driven_one(tmp_path, monkeypatch):
    """Both productions on one small config: the recipe's reach lands in standard_recipe/
    without touching the data-driven one, the productions figure is drawn, and at every
    (m, ε) N_sig(data) / N_sig(recipe) = Y_data/Y_recipe × 𝓔_data/𝓔_recipe (N_sig ∝ Y ε² 𝓔
    with the same N_POT, scale and branching ratios), to float64 rounding."""
    from _phys_figures import skip_reach_figures

    from gammastar.reach.stage import run_reach

    skip_reach_figures(monkeypatch)  # the stage's own figures (test_reach.py); not this one
    dd = run_reach(reach_config(tmp_path))
    before = dd.path.read_bytes()
    cfg_path = tmp_path / "cfg.yaml"  # the recipe's reach by the command line's --production
    cfg_path.write_text(yaml.safe_dump(recipe_reach_dict(tmp_path)))
    assert main(["reach", str(cfg_path), "--production", "standard_recipe"]) == 0
    rc_path = tmp_path / "run" / "standard_recipe" / "reach.json"
    assert dd.path.read_bytes() == before
    assert json.loads(rc_path.read_text())["meta"]["production"] == "standard_recipe"
    assert (tmp_path / "run" / "standard_recipe" / "figures" / "reach_productions.png").exists()
    with np.load(tmp_path / "run" / "acceptance.npz") as fa:
        a = dict(fa)
    with np.load(tmp_path / "run" / "standard_recipe" / "acceptance.npz") as fb:
        b = dict(fb)
    # the same config's mass grid computed twice: equal to a few roundings of a linspace
    np.testing.assert_allclose(a["mass"], b["mass"], rtol=4 * np.finfo(float).eps, atol=0)
    y_data = load_yields(tmp_path / "yields.json").at(a["mass"])[0]
    path, _ = recipe_yields(tmp_path)
    src = recipe_source(
        reach_config(tmp_path, production="standard_recipe"), load_yields(path), path
    )
    y_rec = src.yield_at(a["mass"])[0]
    ok = (a["acceptance"] > 0) & (b["acceptance"] > 0) & (b["nsig"] > 0)
    assert ok.sum() > 10
    lhs = a["nsig"][ok] / b["nsig"][ok]
    ratio_y = np.broadcast_to((y_data / y_rec)[:, None], ok.shape)[ok]
    rhs = ratio_y * a["acceptance"][ok] / b["acceptance"][ok]
    np.testing.assert_allclose(lhs, rhs, rtol=1e-10)


# --------------------------------------------------------------------------- a PYTHIA mock
# A hand-made pool (no PYTHIA run): π0 spectra far from the parametric cocktail's (⟨y⟩ 2.0
# against 3.37, σ_y 0.8 against 1.4), so that the recipe's A′ tell which one they came from.
POOL_COUNTS = {"pi0": 6000, "eta": 800, "eta_prime": 80, "rho": 600, "omega": 600, "phi": 60}
POOL_COLLISIONS = 2_000


def hand_pool(counts=POOL_COUNTS):
    from gammastar.mock.pythia import MesonPool

    rng = np.random.default_rng(4)
    pt = {k: rng.exponential(0.3, n) for k, n in counts.items()}
    y = {k: rng.normal(2.0, 0.8, n) for k, n in counts.items()}
    return MesonPool(pt, y, POOL_COLLISIONS, 30.0, ["hand-made pool (tests)"])


@pytest.fixture(scope="module")
def pythia_mock(tmp_path_factory):
    """A small PYTHIA-backed mock file (the generator with PythiaMesons on hand_pool) and its
    pool."""
    pytest.importorskip("pythia8mc")  # meta.pythia records its version
    from pathlib import Path

    from gammastar.config import AnalysisConfig
    from gammastar.mock.generate import generate_file
    from gammastar.mock.pythia import PythiaMesons

    eff = Path(__file__).resolve().parents[1] / "data" / "efficiency_na60_like.root"
    cfg = AnalysisConfig.model_validate({"mock": {
        "backend": "pythia", "events": 600, "chunk_size": 600, "efficiency_map": str(eff),
        "leptons": ["mu"], "combinatorial": {"pilot_events": 300},
        "pythia": {"mode": "pp", "collisions": POOL_COLLISIONS},
    }})  # fmt: skip
    pool = hand_pool()
    path = tmp_path_factory.mktemp("pythia_mock") / "pythia.root"
    generate_file(cfg, path, seed=5, mesons=PythiaMesons(cfg, 5, pool=pool))
    return path, pool


def test_pythia_mock_stores_its_meson_pool(pythia_mock):
    """The file's meson_pool tree is the pool, species by species in pool order, to float32
    rounding (one rounding of each float64: relative EPS32/2), and meta.meson_pool says so."""
    from _tolerance import EPS32

    path, pool = pythia_mock
    meta = meta_from_root(path)
    spec = meta["meson_pool"]
    assert spec["tree"] == "meson_pool"
    assert set(spec["branches"]) == {"species", "pt", "y"}
    assert spec["entries"] == POOL_COUNTS
    with uproot.open(path) as f:
        a = f["meson_pool"].arrays(["species", "pt", "y"], library="np")
    assert a["pt"].dtype == np.float32
    assert a["y"].dtype == np.float32
    for name, code in spec["species"].items():
        sel = a["species"] == code
        np.testing.assert_allclose(a["pt"][sel], pool.pt[name], rtol=EPS32 / 2, atol=0)
        np.testing.assert_allclose(a["y"][sel], pool.y[name], rtol=EPS32 / 2, atol=0)


def test_recipe_kinematics_follow_the_pythia_pool(tmp_path, pythia_mock):
    """On a PYTHIA mock the recipe's π0 → γA′ at m → 0 carry on average (M² + m²)/(2M²) of the
    *pool's* π0 energy (the isotropic decay's γE*, as test_recipe_kinematics_follow_the_mock_spectra):
    the pool's mean is exact (the population the recipe resamples), so the tolerance is 5σ/√n
    of the A′ sample alone; the parametric spectra's expectation lies far outside it."""
    path, _ = pythia_mock
    cfg = reach_config(tmp_path, path, production="standard_recipe")
    ypath, _ = recipe_yields(tmp_path, path)
    src = recipe_source(cfg, load_yields(ypath), ypath)
    assert "PYTHIA meson pool" in src.description
    n, m = 40_000, 0.02
    out = src.kinematics.sample(m, n, seed=11)
    pi0 = out["channel"] == [c.name for c in src.kinematics.channels].index("pi0")
    assert pi0.mean() > 0.9  # the π0 dominates at 20 MeV
    mp = mass("pi0")
    pool = PoolSpectra.from_files([(str(path), meta_from_root(path))])
    e_pi0 = np.sqrt(mp**2 + pool.pt["pi0"] ** 2) * np.cosh(pool.y["pi0"])
    expect = e_pi0.mean() * (mp**2 + m**2) / (2 * mp**2)
    e = out["E"][pi0]
    tol = 5 * e.std() / np.sqrt(e.size)
    assert abs(e.mean() - expect) < tol
    para = MesonSpectra.from_meta(meta_from_root(mock_file(tmp_path / "para.root")), "para")
    pt, y = para.pt_y(np.random.default_rng(2), "pi0", np.full(n, mp))
    e_para = np.sqrt(mp**2 + pt**2) * np.cosh(y)
    assert abs(e.mean() - e_para.mean() * (mp**2 + m**2) / (2 * mp**2)) > 20 * tol


def _copy_with_pool(src, dst, drop=None, meta_pop=None):
    """A copy of a PYTHIA mock's meta and meson_pool (what the recipe reads), without the
    species ``drop`` in the tree or without the meta key ``meta_pop``."""
    meta = meta_from_root(src)
    if meta_pop:
        meta.pop(meta_pop)
    with uproot.open(src) as f:
        a = f["meson_pool"].arrays(["species", "pt", "y"], library="np")
    if drop:
        keep = a["species"] != meta["meson_pool"]["species"][drop]
        a = {k: v[keep] for k, v in a.items()}
    with uproot.recreate(dst) as f:
        f["meta"] = json.dumps(meta)
        f["meson_pool"] = a
    return dst


def test_recipe_names_a_species_its_pool_lacks(tmp_path, pythia_mock):
    """A pool without a species the recipe needs (the η: meta's multiplicities say > 0) is one
    InputError line naming the file and the species; a PYTHIA file without meta.meson_pool is
    one naming the file; parametric and PYTHIA files are not mixed."""
    path, _ = pythia_mock
    bad = _copy_with_pool(path, tmp_path / "no_eta.root", drop="eta")
    ypath, _ = recipe_yields(tmp_path, bad)
    cfg = reach_config(tmp_path, bad, production="standard_recipe")
    with pytest.raises(InputError, match=r"no_eta\.root: no eta in the meson pool") as err:
        recipe_source(cfg, load_yields(ypath), ypath)
    assert "\n" not in str(err.value)
    old = _copy_with_pool(path, tmp_path / "old.root", meta_pop="meson_pool")
    with pytest.raises(InputError, match=r"old\.root: a PYTHIA mock without meta\.meson_pool"):
        meson_spectra([(str(old), meta_from_root(old))])
    para = mock_file(tmp_path / "para.root")
    with pytest.raises(InputError, match="parametric and PYTHIA"):
        meson_spectra([(str(para), meta_from_root(para)), (str(path), meta_from_root(path))])
