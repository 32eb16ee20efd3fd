"""The dielectron trigger's prescale: ``mock.electrons.prescale`` k generates the ee
sources of 1/k of the collisions and records each flavour's effective N_POT in the mock's
``meta.n_pot_by_flavour``; the yields normalise each flavour by its own exposure
(``beam.n_pot: from_input``: the file's; real data: ``beam.prescale``)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from _experiment import stated_config
from _universality_mock import SELECTION, write_universality_mock

from gammastar.config import flavour_config
from gammastar.errors import ConfigError
from gammastar.mock.generate import read_meta
from gammastar.selection.stage import select
from gammastar.yields.npot import resolve_n_pot
from gammastar.yields.stage import compute_yields

K = 4.0
"""The prescale of the tests: large enough that normalising the ee yield by the run's N_POT
instead of N_POT/k (a factor 4) is ~10² standard deviations off, small enough that the
prescaled ee arm of 3 × 10⁵ sources still measures its yield to < 10% (asserted below)."""


@pytest.fixture(scope="module")
def mocks(tmp_path_factory):
    """The universality tests' [mu, e] mock (tests/_universality_mock.py) without and with
    the prescale K: two independent samples (different seeds) of 3e5 sources each."""
    tmp = tmp_path_factory.mktemp("prescale")
    plain = write_universality_mock(tmp / "plain.root", seed=5, events=300_000)
    pre = write_universality_mock(tmp / "pre.root", seed=6, events=300_000, prescale=K)
    return tmp, plain, pre


def _config(tmp, path, name, lepton=("mu", "e"), **beam):
    sel = dict(SELECTION) if len(lepton) > 1 else {**SELECTION, "per_flavour": {}}
    per_e = {"e": {"acceptance_map": f"{path}:acceptance_ee", "mass_bins": 109}}
    if lepton == ["e"]:
        sel["mass_min"] = 0.01
    return stated_config(
        {
            "name": name,
            "output": str(tmp / name),
            "beam": beam,
            "input": {"files": [str(path)], "lepton": list(lepton)},
            "unfold": {
                "efficiency_map": None,
                "acceptance_map": f"{path}:acceptance",
                "mass_bins": 89,
                "per_flavour": per_e if len(lepton) > 1 else {},
            },
            "background": {"remove_eta_mumu": "truth"},
            "selection": sel,
            "yields": {"mass_bin_width": 0.05, "universality_mass_range": [0.25, 0.5]},
        },
        source=str(tmp / f"{name}.yaml"),
    )


def test_meta_records_each_flavours_n_pot(mocks):
    """meta.n_pot_by_flavour: mu = the run's N_POT, e = N_POT / K exactly by construction
    (one division: 1 ulp); meta.prescale records K; the generated ee share of the sources
    falls by ~K (the ee/μμ source ratio per collision / K, within the multinomial's
    statistics)."""
    _, plain, pre = mocks
    m0, m1 = read_meta(plain), read_meta(pre)
    assert m1["prescale"] == {"mu": 1.0, "e": K}
    assert m0["prescale"] == {"mu": 1.0, "e": 1.0}
    assert math.isclose(m1["n_pot_by_flavour"]["mu"], m1["n_pot"], rel_tol=4e-16)
    assert math.isclose(m1["n_pot_by_flavour"]["e"], m1["n_pot"] / K, rel_tol=4e-16)
    assert math.isclose(m0["n_pot_by_flavour"]["e"], m0["n_pot"], rel_tol=4e-16)

    def ee_to_mumu(m):
        n = m["n_generated"]
        ee = sum(v for c, v in n.items() if c.endswith("_EE") or c == "CONVERSION")
        return ee / (sum(n.values()) - ee), ee

    r0, _ = ee_to_mumu(m0)
    r1, n_ee = ee_to_mumu(m1)
    # ~1e5 ee sources each: the ratio's relative error ≲ 1%; 5% is > 5σ
    assert r1 * K == pytest.approx(r0, rel=0.05)
    assert n_ee > 20_000


@pytest.fixture(scope="module")
def yields(mocks):
    """select + yields of both mocks as both-channels runs (input.lepton: [mu, e])."""
    tmp, plain, pre = mocks
    out = {}
    for name, path in (("plain", plain), ("pre", pre)):
        cfg = _config(tmp, path, name)
        select(cfg)
        compute_yields(cfg, plots=False, theory=False)
        out[name] = (cfg, json.loads((cfg.output_dir / "yields.json").read_text()))
    return out


def _integral(ap, lo, hi):
    """Σ of the A′ yield per POT per ε² over the bins inside [lo, hi] GeV, and its error."""
    e = np.asarray(ap["bin_edges"], float)
    y = np.asarray([np.nan if v is None else v for v in ap["per_pot_per_eps2"]], float)
    s = np.asarray([np.nan if v is None else v for v in ap["stat_err"]], float)
    k = (e[:-1] >= lo - 1e-9) & (e[1:] <= hi + 1e-9) & np.isfinite(y)
    assert k.sum() >= 3
    return float(np.sum(y[k])), float(np.sqrt(np.sum(s[k] ** 2)))


@pytest.mark.parametrize(("ch", "lo", "hi"), [("ee", 0.01, 0.2), ("ee", 0.26, 0.51),
                                               ("mumu", 0.26, 0.51)])  # fmt: skip
def test_per_flavour_yields_per_pot_agree(yields, ch, lo, hi):
    """Each flavour's A′ yield per POT of the prescaled run equals the unprescaled run's
    within the two independent samples' statistics (|Δ| < 4σ of the summed bins' stat_err in
    quadrature): the prescaled ee yield is normalised to N_POT / K (normalised to N_POT it
    would be K = 4 times smaller, ≫ 4σ away)."""
    (_, d0), (_, d1) = yields["plain"], yields["pre"]
    y0, s0 = _integral(d0["flavours"][ch]["aprime"], lo, hi)
    y1, s1 = _integral(d1["flavours"][ch]["aprime"], lo, hi)
    sigma = math.hypot(s0, s1)
    assert sigma < 0.1 * y0  # the check resolves a factor K
    assert abs(y1 - y0) < 4 * sigma, (y0, s0, y1, s1)
    n_pot = d1["meta"]["n_pot_by_flavour"]
    assert math.isclose(n_pot["mumu"] / n_pot["ee"], K, rel_tol=1e-12)


def test_resolve_n_pot_per_flavour(mocks, tmp_path):
    """resolve_n_pot: from_input → the file's meta.n_pot_by_flavour per flavour (the run's
    N_POT without a flavour); an explicit beam.n_pot divided by beam.prescale; a beam.prescale
    contradicting the file's recorded prescale, or naming a flavour not in input.lepton, is
    a one-line ConfigError naming the key."""
    _, _, pre = mocks
    meta = read_meta(pre)
    both = _config(tmp_path, pre, "r")
    n_run, _ = resolve_n_pot(both)
    assert math.isclose(n_run, meta["n_pot"], rel_tol=1e-15)
    for f in ("mu", "e"):
        n, src = resolve_n_pot(flavour_config(both, f), flavour=f)
        assert math.isclose(n, meta["n_pot_by_flavour"][f], rel_tol=1e-15)
        assert src.startswith("input_meta:")
    # the file's prescale given again in the config: the same exposure, not divided twice
    same = _config(tmp_path, pre, "s", prescale={"e": K})
    n, _ = resolve_n_pot(flavour_config(same, "e"), flavour="e")
    assert math.isclose(n, meta["n_pot_by_flavour"]["e"], rel_tol=1e-15)
    bad = _config(tmp_path, pre, "b", prescale={"e": 2.0})
    with pytest.raises(ConfigError, match=r"beam.prescale.e: 2, but .* records .* 4") as err:
        resolve_n_pot(flavour_config(bad, "e"), flavour="e")
    assert "\n" not in str(err.value)
    # real data: an explicit N_POT, the ee trigger prescaled 1:50
    real = _config(tmp_path, pre, "x", n_pot=1e12, prescale={"e": 50})
    n, src = resolve_n_pot(flavour_config(real, "e"), flavour="e")
    assert math.isclose(n, 1e12 / 50, rel_tol=1e-15)
    assert "beam.prescale.e" in src
    n, _ = resolve_n_pot(flavour_config(real, "mu"), flavour="mu")
    assert math.isclose(n, 1e12, rel_tol=1e-15)
    with pytest.raises(ConfigError, match=r"beam.prescale.mu: flavour 'mu' is not in") as err:
        _config(tmp_path, pre, "y", lepton=["e"], prescale={"mu": 2})
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match=r"beam.prescale.e.*greater than or equal to 1"):
        _config(tmp_path, pre, "z", prescale={"e": 0.5})
    with pytest.raises(ConfigError, match=r"mock.electrons.prescale.*greater than or equal"):
        stated_config({"mock": {"leptons": ["mu", "e"], "electrons": {"prescale": 0}}})


def test_flow_weights_per_pot_of_the_run(yields):
    """The flow's training weights of a both-channels run (flow.data.combination_weighted)
    count each channel's pairs at the run's exposure: below 2m_μ (ee alone, share λ_e = 1)
    Σ weight / N_POT of the run is the ee yield's, the same without and with the prescale
    within the two samples' statistics (4σ of √Σw² in quadrature); at the ee trigger's own
    exposure it would be K = 4 times smaller."""
    from gammastar.flow.data import read_pairs

    out = []
    for name in ("plain", "pre"):
        cfg, doc = yields[name]
        pairs, _ = read_pairs(cfg)
        m, w = pairs["m"].to_numpy(), pairs["weight"].to_numpy()
        k = (pairs["flavour"].to_numpy() == 11) & (m >= 0.02) & (m < 0.2)
        n_pot = doc["meta"]["n_pot"]
        out.append((w[k].sum() / n_pot, np.sqrt(np.sum(w[k] ** 2)) / n_pot))
    (s0, e0), (s1, e1) = out
    sigma = math.hypot(e0, e1)
    assert sigma < 0.1 * s0
    assert abs(s1 - s0) < 4 * sigma, out


def test_flow_leaves_out_fiducial_only_pairs(tmp_path):
    """A both-channels run whose μμ arm is unfolded to the fiducial region only (the default
    demo: na60_like_both.yaml) trains its flow on the full-phase-space ee pairs alone: the μμ
    pairs (inside the spectrometer's fiducial region only) get weight 0 and the ee pairs
    their share renormalised to 1 (the weight × N_POT/N_POT_e, the ee exposure); with both
    channels in full phase space the shares stay λ (construction: exact to 1 ulp)."""
    from gammastar.flow.data import combination_weighted

    cfg = _config(tmp_path, tmp_path / "x.root", "f")
    pairs = pd.DataFrame(
        {
            "m": [0.05, 0.3, 0.3, 0.35],
            "weight": [2.0, 3.0, 5.0, 7.0],
            "flavour": np.array([11, 11, 13, 13], dtype=np.int8),
        }
    )
    ap = {"bin_edges": [0.01, 0.2, 0.4], "weights": {"ee": [1.0, 0.25], "mumu": [0.0, 0.75]}}
    meta = {"n_pot": 4e10, "n_pot_by_flavour": {"mumu": 4e10, "ee": 1e10}}
    fid = {"mumu": "fiducial", "ee": "full"}
    out = combination_weighted(pairs, cfg, {"aprime": ap, "meta": {**meta,
                               "phase_space_per_flavour": fid}})  # fmt: skip
    np.testing.assert_allclose(out["weight"], [8.0, 12.0, 0.0, 0.0], rtol=4e-16)
    both_full = {"mumu": "full", "ee": "full"}
    out = combination_weighted(pairs, cfg, {"aprime": ap, "meta": {**meta,
                               "phase_space_per_flavour": both_full}})  # fmt: skip
    w = out["weight"].to_numpy()
    np.testing.assert_allclose(w[:2], [8.0, 0.25 * 4 * 3.0], rtol=4e-16)
    # μμ: 0.75 × F_μ/F_e (Eq. 6's factor, > 0 above 2m_μ) × exposure 1
    assert np.all(w[2:] > 0)


def _na60_region():
    """The NA60-like spectrometer's fiducial region F (analysis/na60_like.yaml: E_ℓ > 3 GeV,
    35–120 mrad, A ≥ 0.05) on a coarse table (6 × 24 × 24, quadrature 8 × 8: F's membership,
    not A's accuracy, matters here), as ``yields.json`` ``extrapolation.fiducial`` holds it."""
    from gammastar.corrections.pair_acceptance import FiducialRegion
    from gammastar.corrections.pair_acceptance.lepton import LeptonAcceptance
    from gammastar.corrections.pair_acceptance.table import PairAcceptance

    pa = PairAcceptance.build(LeptonAcceptance(3.0, 0.035, 0.120), lepton_mass=0.1056583755,
                              mass_range=(0.22, 1.1), p_max=400.0, grid=(6, 24, 24),
                              quadrature=(8, 8))  # fmt: skip
    return FiducialRegion(pa, 0.05)


def test_flow_weights_stitched_at_the_seam(tmp_path):
    """A both-channels run whose μμ arm is fiducial and whose yields carry the μμ
    extrapolation's seam m_s = 0.22 GeV (docs/howto/both-channels.md): below
    m_s the ee pairs at share 1 × the ee exposure N_POT/N_POT_e = 4 and the μμ pairs at 0
    (even at 0.215 GeV > 2m_μ, where the combination gives μμ a share); at and above m_s the
    μμ pairs at their share λ_μ × F_μ/F_e (Eq. 6) × 1, the ee pairs inside F at λ_e × 4 and
    those outside F at 0. Exact up to float rounding (1e-12)."""
    from gammastar.flow.data import combination_weighted
    from gammastar.physics.kinematics import aprime_factor

    region = _na60_region()
    # at m = 0.3 GeV a γ* of 40 GeV at 70 mrad (q_T 2.8) sends both muons into 35–120 mrad
    # (A = 1 on the table); one along the beam (q_T 0.1) none (A = 0)
    m = np.array([0.05, 0.215, 0.215, 0.3, 0.3, 0.3, 0.35])
    qt = np.array([0.1, 0.1, 2.8, 2.8, 0.1, 2.8, 2.8])
    e = np.full(m.size, 40.0)
    inside = region.contains(m, qt, e)
    assert inside[3]
    assert not inside[4]
    pairs = pd.DataFrame({"m": m, "qT": qt, "E": e, "weight": [2.0, 3.0, 5.0, 3.0, 3.0, 5.0, 7.0],
                          "flavour": np.array([11, 11, 13, 11, 11, 13, 13], dtype=np.int8)})  # fmt: skip
    cfg = _config(tmp_path, tmp_path / "x.root", "s")
    ap = {"bin_edges": [0.01, 0.2, 0.4], "weights": {"ee": [1.0, 0.25], "mumu": [0.0, 0.75]}}
    meta = {"n_pot": 4e10, "n_pot_by_flavour": {"mumu": 4e10, "ee": 1e10},
            "phase_space_per_flavour": {"mumu": "fiducial", "ee": "full"}}  # fmt: skip
    ex = {"seam": 0.22, "channel": "mumu", "fiducial": region.as_dict()}
    out = combination_weighted(pairs, cfg, {"aprime": ap, "meta": meta, "extrapolation": ex})
    conv = aprime_factor(m, 0.1056583755) / aprime_factor(m, 0.51099895e-3)
    expect = [8.0, 12.0, 0.0, 0.25 * 4 * 3.0, 0.0, 0.75 * conv[5] * 5.0, 0.75 * conv[6] * 7.0]
    np.testing.assert_allclose(out["weight"], expect, rtol=1e-12)


def test_sampler_stitched_at_the_seam():
    """ExtrapolatedSampler with a seam (a both-channels run): below it the flow's samples
    alone, none labelled extrapolated (outside F too); at and above it the flow's samples
    inside F for a binomial share f_F and the model outside F for the rest, every model
    sample labelled and outside F. f_F = 0.4,
    n = 4000: the labelled share 0.6 within 4σ = 4·√(0.24/4000) = 0.031. Seeds 1, 2."""
    from gammastar.yields.extrapolation.samplers import ExtrapolatedSampler

    class Flow:  # a marker sampler: E = 50 GeV, q_T = 0.05 GeV, every 4th 0.5 (outside F)
        mass_range = (0.01, 1.1)

        def sample(self, mass, n, seed=None):
            return {"qT": np.where(np.arange(n) % 4 == 3, 0.5, 0.05), "E": np.full(n, 50.0)}

    class Model:  # the fitted model's parameters: f_F, T, ȳ, σ_y (400 GeV beam, y_cm 3.37)
        edges = np.array([0.22, 1.1])

        def at(self, m):
            return tuple(np.full(np.shape(m), v) for v in (0.4, 0.15, 3.37, 1.1))

    class Region:  # F: q_T < 0.3 GeV
        def contains(self, m, qt, e):
            return np.asarray(qt) < 0.3

    s = ExtrapolatedSampler(Flow(), Model(), Region(), seam=0.22)
    assert s.mass_range == pytest.approx((0.01, 1.1), rel=1e-12)
    low = s.sample(0.1, 4000, seed=1)
    assert not low["extrapolated"].any()
    assert np.mean(low["qT"] == 0.5) == pytest.approx(0.25, rel=1e-12)  # the flow as it is
    high = s.sample(0.5, 4000, seed=2)
    lab = high["extrapolated"]
    assert abs(lab.mean() - 0.6) < 0.031
    assert np.all(high["qT"][lab] >= 0.3)
    # the flow's samples kept inside F only (its q_T = 0.5 ones rejected)
    np.testing.assert_allclose(high["qT"][~lab], 0.05, rtol=1e-12)
    # without a seam the extrapolation's first edge bounds the range (single-flavour runs)
    assert ExtrapolatedSampler(Flow(), Model(), Region()).mass_range[0] == pytest.approx(0.22)
    # no flow (reach.flow: null, the NA62-like config): below the seam the analytic sampler
    # with the model's rapidity at the seam (ȳ 3.37, σ_y 1.1 here) and the default T (the reach
    # then covers the ee range), above it the fitted model; every sample a model's, so every
    # one labelled
    from gammastar.physics.sampling import ParametricSampler

    bare = ExtrapolatedSampler(None, Model(), Region(), seam=0.22)
    assert bare.mass_range[0] < 0.22
    low = bare.sample(0.05, 2000, seed=3)
    assert low["extrapolated"].all()
    ss = np.random.SeedSequence(3).spawn(3)[2]  # the sampler's own stream for the model
    ref = ParametricSampler(y_mean=3.37, y_sigma=1.1).sample(
        0.05, 2000, seed=int(ss.generate_state(1)[0])
    )
    np.testing.assert_array_equal(low["E"], ref["E"])  # the same seeded draw, copied
    assert bare.sample(0.5, 2000, seed=4)["extrapolated"].all()


def test_below_the_seam_without_a_flow_the_rapidity_is_the_beams():
    """A 70 GeV beam's model (ȳ = y_cm(70 GeV) = 2.50, σ_y = 1.0): below the seam the A′ lab
    rapidity y = asinh(p_z/m_T) has that mean and width, not the 400 GeV defaults (3.37, 1.2).
    n = 20000: the mean within 5σ = 5 × 1.0/√20000 = 0.035, the width within 5 × 1.0/√40000."""
    from gammastar.physics.kinematics import cm_rapidity
    from gammastar.yields.extrapolation.samplers import ExtrapolatedSampler

    y_cm = cm_rapidity(70.0)

    class Model:
        edges = np.array([0.22, 1.1])

        def at(self, m):
            return tuple(np.full(np.shape(m), v) for v in (0.4, 0.15, y_cm, 1.0))

    s = ExtrapolatedSampler(None, Model(), None, seam=0.22).sample(0.05, 20000, seed=7)
    mt = np.sqrt(0.05**2 + s["qT"] ** 2)
    pz = np.sqrt(np.maximum(s["E"] ** 2 - mt**2, 0.0))
    y = np.arcsinh(pz / mt)
    assert abs(y.mean() - y_cm) < 0.035
    assert abs(y.std() - 1.0) < 0.025


def test_yields_top_level_extrapolation_of_a_both_run():
    """yields.json of a both-channels run: the top-level ``extrapolation`` is the fiducial
    channel's block plus ``channel`` and ``seam`` (its first bin edge, 0.22 GeV here); none
    when no channel is fiducial or both are (single-flavour runs never take this path)."""
    from types import SimpleNamespace

    from gammastar.yields.combined import _seam_extrapolation

    ex = {"bin_edges": [0.22, 0.25, 1.1], "model": "m"}

    def per(mu, e):
        def one(phase, doc):
            return {"inp": SimpleNamespace(phase_space=phase), "doc": doc}

        return {"mumu": one(mu, {"extrapolation": ex} if mu == "fiducial" else {}),
                "ee": one(e, {})}  # fmt: skip

    got = _seam_extrapolation(per("fiducial", "full"))
    assert got["channel"] == "mumu"
    assert got["seam"] == pytest.approx(0.22, rel=1e-15)
    assert {k: got[k] for k in ex} == ex
    assert _seam_extrapolation(per("full", "full")) is None
