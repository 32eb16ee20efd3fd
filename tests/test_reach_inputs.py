"""The reach's statistics inputs: no experiment-specific defaults, the yield
scale derived from the targets with the formula of the mock's N_POT, observed counts per mass
point or as observed reconstructed masses (a list or a ROOT TH1)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import uproot
import yaml
from _phys_figures import skip_reach_figures

from gammastar import pipeline
from gammastar.cli import main
from gammastar.config import config_from_dict, load_config
from gammastar.core.artifacts import make_meta, write_json
from gammastar.errors import ConfigError, InputError
from gammastar.physics.target import interaction_probability, yield_scale
from gammastar.reach.observed import observed_counts
from gammastar.reach.signal import window_edges
from gammastar.reach.stage import run_reach
from gammastar.source.production import load_yields, resolve_yield_scale

# NA62's statistics inputs (NA62, arXiv:2312.12055, App. B, Table I)
NA62_STATS = {
    "background": {"mumu": 0.016, "ee": 0.0094},
    "background_kappa": {"mumu": 1.125, "ee": 4.0},
    "efficiency_uncertainty": 0.029,
    "n_pot_rel_uncertainty": 0.2,
}
REQUIRED = (
    "background",
    "background_kappa",
    "efficiency_uncertainty",
    "n_pot_rel_uncertainty",
    "target_interaction_lengths",
)
GEOMETRY = {"l1": 82.0, "l2": 157.0, "theta_min": 0.0, "theta_max": 0.05, "efficiency": 0.9}


def synthetic_yields(path, target=None):
    """NA60-magnitude A′ yield per POT per ε² (docs/explanation/reach.md §5); ``target``: the thickness
    recorded in meta, as the yields stage writes it."""
    m = np.linspace(0.215, 1.1, 60)
    y = 3e-3 * np.exp(-(m - 0.2) / 0.4)
    extra = {} if target is None else {"target_interaction_lengths": target}
    meta = make_meta(config_sha256=None, seed=None, n_pot=1e13, **extra)
    doc = {"aprime": {"mass": m, "per_pot_per_eps2": y, "stat_err": 0.05 * y}, "meta": meta}
    write_json(path, doc, force=True)
    return path


def reach_dict(tmp_path, *, drop=(), beam=None, target=0.01, **reach):
    rc = {
        "channels": ["mumu", "ee"],
        "yields": str(synthetic_yields(tmp_path / "yields.json", target=target)),
        "flow": None,
        "n_pot": 1.4e17,
        "target_interaction_lengths": "dump",
        "mass_points": 4,
        "eps_points": 15,
        "samples": 800,
        **NA62_STATS,
        **reach,
    }
    for key in drop:
        rc.pop(key)
    out = {"name": "t", "output": str(tmp_path / "run"), "detector": GEOMETRY, "reach": rc}
    if beam is not None:
        out["beam"] = beam
    return out


def config(tmp_path, **kw):
    return config_from_dict(reach_dict(tmp_path, **kw), source=str(tmp_path / "cfg.yaml"))


# --------------------------------------------------------------------------- yield scale
def test_interaction_probability_is_the_attenuation_law():
    # P_int = 1 − e^{−L} (PDG passage of particles through matter): thin target L(1 − L/2),
    # dump 1
    lengths = np.array([1e-4, 0.01, 1.0, 19.6])
    assert interaction_probability(lengths) == pytest.approx(1 - np.exp(-lengths), rel=1e-13)
    assert interaction_probability(1e-4) == pytest.approx(1e-4 * (1 - 0.5e-4), rel=1e-8)
    assert interaction_probability("dump") == 1.0
    assert interaction_probability(math.inf) == 1.0
    for bad in (0.0, -1.0, "thick"):
        with pytest.raises(ValueError, match="target thickness"):
            interaction_probability(bad)


@pytest.mark.parametrize(
    ("facility", "expected"),
    [
        ("dump", 1 / (1 - math.exp(-0.01))),  # 100.50: the number the configs used to type
        (19.6, (1 - math.exp(-19.6)) / (1 - math.exp(-0.01))),  # NA62's TAX
        (0.01, 1.0),
        ("data", 1.0),
    ],
)
def test_yield_scale_is_derived_from_the_two_targets(tmp_path, facility, expected):
    cfg = config(tmp_path, target_interaction_lengths=facility)
    yields = load_yields(cfg.resolve(cfg.reach.yields))  # records 0.01 λ_I
    scale, info = resolve_yield_scale(cfg, yields)
    assert scale == pytest.approx(expected, rel=1e-12)
    assert info["target_interaction_lengths"] == facility


def test_data_target_from_yields_or_beam(tmp_path):
    # the thickness recorded with the yields wins; the config's beam, when given, must agree
    cfg = config(tmp_path, target=0.02)
    scale, info = resolve_yield_scale(cfg, load_yields(cfg.resolve(cfg.reach.yields)))
    assert scale == pytest.approx(1 / (1 - math.exp(-0.02)), rel=1e-12)
    assert info["data_target_interaction_lengths"] == 0.02
    cfg = config(tmp_path, target=0.02, beam={"interaction_lengths": 0.01})
    with pytest.raises(ConfigError, match=r"beam\.interaction_lengths \(0\.01\) differs"):
        resolve_yield_scale(cfg, load_yields(cfg.resolve(cfg.reach.yields)))
    # a yields file without the record: the config's beam when stated, else an error
    cfg = config(tmp_path, target=None, beam={"interaction_lengths": 0.03})
    scale, _ = resolve_yield_scale(cfg, load_yields(cfg.resolve(cfg.reach.yields)))
    assert scale == pytest.approx(1 / (1 - math.exp(-0.03)), rel=1e-12)
    cfg = config(tmp_path, target=None)
    with pytest.raises(ConfigError, match=r"beam\.interaction_lengths: not given"):
        resolve_yield_scale(cfg, load_yields(cfg.resolve(cfg.reach.yields)))
    # an explicit override is taken as is, and cannot be combined with a target
    cfg = config(tmp_path, target_interaction_lengths=None, yield_scale=42.0)
    assert resolve_yield_scale(cfg, load_yields(cfg.resolve(cfg.reach.yields)))[0] == 42.0
    with pytest.raises(ConfigError, match="not both"):
        config(tmp_path, yield_scale=42.0)


def test_reach_signal_scales_with_the_derived_factor(tmp_path, monkeypatch):
    # same seed, same samples: N_sig(dump)/N_sig(data) is exactly P_int(dump)/P_int(0.01)
    figures = skip_reach_figures(monkeypatch)  # numbers only (figures: test_reach.py)
    nsig = {}
    for facility in ("dump", "data"):
        cfg = config(tmp_path, target_interaction_lengths=facility, channels=["mumu"])
        out = tmp_path / facility
        doc = run_reach(cfg, output=out).document
        with np.load(out / "acceptance.npz") as f:
            nsig[facility] = f["nsig"]
        expected = 1.0 if facility == "data" else yield_scale(facility, 0.01)
        assert doc["meta"]["yield_scale"] == pytest.approx(expected, rel=1e-12)
    pos = nsig["data"] > 0
    assert pos.any()
    ratio = nsig["dump"][pos] / nsig["data"][pos]
    assert ratio == pytest.approx(1 / (1 - math.exp(-0.01)), rel=1e-12)
    assert figures == [tmp_path / "dump", tmp_path / "data"]


# --------------------------------------------------------------------------- missing inputs
@pytest.mark.parametrize("key", REQUIRED)
def test_missing_statistics_input_is_one_line_and_writes_nothing(tmp_path, capsys, key):
    cfg_path = tmp_path / "a.yaml"
    cfg_path.write_text(yaml.safe_dump(reach_dict(tmp_path, drop=(key,))))
    assert main(["reach", str(cfg_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert f"reach.{key}: not given" in err[0]
    assert not (tmp_path / "run").exists()


def test_mass_template_needs_the_mass_resolution(tmp_path):
    with pytest.raises(ConfigError, match=r"reach\.mass_resolution: not given"):
        run_reach(config(tmp_path, template="mass"))
    with pytest.raises(ConfigError, match=r"reach\.mass_resolution: not given"):
        run_reach(config(tmp_path, observed={"mumu": {"masses": [0.3]}, "ee": 0}))
    assert not (tmp_path / "run").exists()


def test_incomplete_inputs_are_config_errors():
    base = {"channels": ["mumu", "ee"]}
    for key in ("background", "background_kappa", "observed"):
        with pytest.raises(ConfigError, match=rf"{key}: nothing given for channel 'ee'"):
            config_from_dict({"reach": {**base, key: {"mumu": 1}}})
    with pytest.raises(ConfigError, match=r"observed\.mumu: 2 counts, but mass_points is 60"):
        config_from_dict({"reach": {"observed": {"mumu": [0, 1]}}})
    with pytest.raises(ConfigError, match=r"reach\.observed: .*mumu: give exactly one"):
        config_from_dict({"reach": {"observed": {"mumu": {"masses": [0.3], "histogram": "a"}}}})
    with pytest.raises(ConfigError, match=r"reach\.target_interaction_lengths: .*'thick'"):
        config_from_dict({"reach": {"target_interaction_lengths": "thick"}})
    with pytest.raises(ConfigError, match=r"moved to reach\.n_pot_rel_uncertainty"):
        config_from_dict({"beam": {"n_pot_rel_uncertainty": 0.2}})


def test_pipeline_checks_the_reach_before_running_anything(tmp_path):
    d = reach_dict(tmp_path, drop=("background",))
    d["mock"] = {"events": 1000}
    cfg = config_from_dict(d, source=str(tmp_path / "cfg.yaml"))
    with pytest.raises(ConfigError, match=r"reach\.background: not given"):
        pipeline.run(cfg, echo=lambda s: None, report=False)
    assert not (tmp_path / "run").exists()  # not even the mock was generated


def test_reach_stage_only_for_configs_with_a_reach(repo_dir):
    stage = next(s for s in pipeline.STAGES if s.name == "reach")
    assert not stage.enabled(load_config(f"{repo_dir}/analysis/cms_zmumu.yaml"))
    for name in ("na60_like", "na62_dump", "ship", "paper_mock_detector"):
        cfg = load_config(f"{repo_dir}/analysis/{name}.yaml")
        assert stage.enabled(cfg)
        assert cfg.reach.missing() == []


# --------------------------------------------------------------------------- observed counts
MASSES = [0.3, 0.4, 0.5, 0.6]  # mass_min 0.3, mass_max 0.6, 4 points
SIGMA = 0.01  # windows m ± 3σ = ±0.03 GeV
# events ≥ 2 MeV from every window edge (the TH1 below has 1 MeV bins); 0.45 lies between
# windows, 0.7 above the scan
EVENTS = [0.29, 0.312, 0.405, 0.518, 0.45, 0.7]
COUNTS = [2, 1, 1, 0]


def test_observed_masses_are_counted_in_the_signal_windows():
    got = observed_counts(
        {"mumu": {"masses": EVENTS}}, MASSES, template="counting", mass_resolution=SIGMA
    )
    assert got["mumu"].tolist() == COUNTS
    # template mass: the same windows split into bins; the bin counts add up to the window's
    binned = observed_counts(
        {"mumu": {"masses": EVENTS}},
        MASSES,
        template="mass",
        mass_resolution=SIGMA,
        mass_bins=6,
    )["mumu"]
    assert binned.shape == (4, 6)
    assert binned.sum(axis=1).tolist() == COUNTS
    edges = window_edges(0.3, template="mass", mass_resolution=SIGMA, mass_bins=6)
    assert binned[0].tolist() == np.histogram([0.29, 0.312], bins=edges)[0].tolist()


def write_th1(path, counts, edges, name="obs"):
    with uproot.recreate(path) as f:
        f[name] = (np.asarray(counts, dtype=np.float64), np.asarray(edges, dtype=np.float64))
    return path


def test_observed_histogram_gives_the_per_point_limits(tmp_path, monkeypatch):
    figures = skip_reach_figures(monkeypatch)  # numbers only (figures: test_reach.py)
    edges = np.round(np.arange(0.2, 0.8 + 1e-9, 0.001), 6)  # 1 MeV bins
    th1 = write_th1(tmp_path / "obs.root", np.histogram(EVENTS, bins=edges)[0], edges)
    common = {
        "channels": ["mumu"],
        "background": {"mumu": 0.5},  # large enough that the observed counts matter
        "background_kappa": {"mumu": 1.0},
        "mass_min": 0.3,
        "mass_max": 0.6,
        "mass_resolution": SIGMA,
    }
    docs = {}
    for label, obs in [
        ("points", COUNTS),
        ("masses", {"masses": EVENTS}),
        ("histogram", {"histogram": f"{th1}:obs"}),
    ]:
        cfg = config(tmp_path, observed={"mumu": obs}, **common)
        docs[label] = run_reach(cfg, output=tmp_path / label).document
    ref = docs["points"]
    assert ref["meta"]["statistics"]["observed_counts"] == {"mumu": COUNTS}
    lim = np.array(ref["signal_limit"]["observed"], dtype=float)
    # more observed events, a weaker limit (exact CLs, b = 0.5): 2 > 1 > 0 events
    assert lim[0] > lim[1] > lim[3]
    for label in ("masses", "histogram"):
        doc = docs[label]
        assert doc["meta"]["statistics"]["observed_counts"] == {"mumu": COUNTS}
        assert np.array(doc["signal_limit"]["observed"], dtype=float) == pytest.approx(
            lim, rel=1e-12
        )
        for k in ("eps_low", "eps_high"):
            a = np.array(doc["observed"][k], dtype=float)
            b = np.array(ref["observed"][k], dtype=float)
            assert np.array_equal(np.isnan(a), np.isnan(b))
            assert a[~np.isnan(a)] == pytest.approx(b[~np.isnan(b)], rel=1e-12)
    assert json.loads((tmp_path / "histogram" / "reach.json").read_text())["meta"]["statistics"][
        "observed_source"
    ] == {"mumu": f"histogram {th1}:obs"}
    assert len(figures) == 3


def test_bad_observed_histograms_are_one_line_errors(tmp_path):
    edges = np.linspace(0.2, 0.8, 601)
    ok = np.zeros(600)

    def counts_of(name, counts, e=edges, key="obs"):
        path = write_th1(tmp_path / f"{name}.root", counts, e, key)
        return observed_counts(
            {"mumu": {"histogram": f"{path}:obs"}},
            MASSES,
            template="counting",
            mass_resolution=SIGMA,
        )

    bad = ok.copy()
    bad[10] = -1
    with pytest.raises(InputError, match=r"reach\.observed\.mumu\.histogram: .*>= 0"):
        counts_of("neg", bad)
    bad = ok.copy()
    bad[10] = 0.5
    with pytest.raises(InputError, match="integer event counts"):
        counts_of("frac", bad)
    with pytest.raises(InputError, match="wider than the signal window"):
        counts_of("coarse", np.zeros(6), np.linspace(0.2, 0.8, 7))
    with pytest.raises(ConfigError, match="no such histogram"):
        counts_of("other", ok, key="masses")
    with pytest.raises(ConfigError, match="not found"):
        observed_counts(
            {"mumu": {"histogram": str(tmp_path / "nowhere.root:obs")}},
            MASSES,
            template="counting",
            mass_resolution=SIGMA,
        )
    with uproot.recreate(tmp_path / "h2.root") as f:
        f["obs"] = (np.zeros((2, 2)), np.array([0.0, 1.0, 2.0]), np.array([0.0, 1.0, 2.0]))
    with pytest.raises(InputError, match="not a TH1"):
        observed_counts(
            {"mumu": {"histogram": f"{tmp_path / 'h2.root'}:obs"}},
            MASSES,
            template="counting",
            mass_resolution=SIGMA,
        )
