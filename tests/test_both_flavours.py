"""Both channels in one run (``input.lepton: [mu, e]``): one selection holding the ee
and μμ pairs, per-flavour yields, their combination and the universality ratio, one flow."""

from __future__ import annotations

import json

import numpy as np
import pytest
import uproot
from _experiment import stated_config
from _tolerance import EPS64
from _universality_mock import SELECTION, write_universality_mock

from gammastar.config import AnalysisConfig, flavour_config
from gammastar.config.mock import MockConfig
from gammastar.errors import ConfigError, InputError
from gammastar.flow.data import read_pairs, training_data
from gammastar.mock.generate import generate_file
from gammastar.physics.kinematics import aprime_factor
from gammastar.selection.flavour_codes import FLAVOUR_CODES
from gammastar.selection.stage import select
from gammastar.yields.stage import compute_yields
from gammastar.yields.universality import compare_aprime

M_E, M_MU = 0.51099895e-3, 0.1056583755


@pytest.fixture(scope="module")
def mock(tmp_path_factory):
    """The universality tests' [mu, e] mock (tests/_universality_mock.py), 1.5e5 sources: the
    tests compare the both-channels run with its single-flavour runs of the same file (equal
    to rounding), which asks of the sample only pairs of both flavours in every shared bin
    (here ~6·10³ μμ and 3·10⁴ ee pairs, ≥ 250 of each flavour in each 50 MeV bin of
    0.26-0.46 GeV)."""
    tmp = tmp_path_factory.mktemp("both")
    return tmp, write_universality_mock(tmp / "mock.root", events=150_000)


def _config(tmp, path, name, lepton, **extra):
    data = {
        "name": name,
        "output": str(tmp / name),
        "input": {"files": [str(path)], "lepton": lepton},
        "unfold": {
            "efficiency_map": None,
            "acceptance_map": f"{path}:acceptance",
            "mass_bins": 89,
            "per_flavour": {"e": {"acceptance_map": f"{path}:acceptance_ee", "mass_bins": 109}},
        },
        "background": {"remove_eta_mumu": "truth"},
        "selection": SELECTION,
        "yields": {"mass_bin_width": 0.05, "universality_mass_range": [0.25, 0.5]},
        "uncertainties": {"enabled": True, "r_factor_rel_err": 0.01},
        "flow": {
            "transforms": 2,
            "bins": 6,
            "hidden_features": [16],
            "epochs": 1,
            "points_per_epoch": 2000,
            "batch_size": 500,
            "mass_context": "log",
        },
        **extra,
    }
    return stated_config(data, source=str(tmp / f"{name}.yaml"))


@pytest.fixture(scope="module")
def runs(mock):
    """The both-channels run and, from its flavour configs, the two single-flavour runs on
    the same file (select + yields each)."""
    tmp, path = mock
    both = _config(tmp, path, "both", ["mu", "e"])
    out = {"both": both}
    for f in ("mu", "e"):
        out[f] = flavour_config(both, f).model_copy(update={"output": str(tmp / f)})
    for cfg in out.values():
        select(cfg)
        compute_yields(cfg, plots=False, theory=False)
    return out


def _yields(cfg):
    return json.loads((cfg.output_dir / "yields.json").read_text())


def test_select_holds_both_flavours(runs):
    """pairs.parquet holds both flavours' pairs (flavour = |PDG id|), each flavour's rows
    the single-flavour run's (same inputs, same code path: equal to rounding, compared at
    64 ulp); the contract histograms are the primary (first) flavour's, the suffixed ones
    each flavour's; select.json has a block per flavour."""
    both = runs["both"]
    pairs = both.output_dir / "pairs.parquet"
    import pandas as pd

    p = pd.read_parquet(pairs)
    assert set(np.unique(p["flavour"])) == {FLAVOUR_CODES["mu"], FLAVOUR_CODES["e"]}
    for f in ("mu", "e"):
        mine = p[p["flavour"] == FLAVOUR_CODES[f]]
        single = pd.read_parquet(runs[f].output_dir / "pairs.parquet")
        assert len(mine) == len(single) > 1000
        for col in ("m", "qT", "E", "weight"):
            np.testing.assert_allclose(mine[col], single[col], rtol=64 * EPS64, atol=0)
    # ee pairs reach down to 10 MeV (selection.per_flavour.e.mass_min), μμ start at 0.21 GeV
    assert p.loc[p["flavour"] == 11, "m"].min() < 0.02
    assert p.loc[p["flavour"] == 13, "m"].min() >= 0.21
    with uproot.open(both.output_dir / "histograms.root") as f:
        h = f["unfolded_m"].to_hist()
        for name, single in (("unfolded_m", "mu"), ("unfolded_m_mumu", "mu"),
                             ("unfolded_m_ee", "e")):  # fmt: skip
            with uproot.open(runs[single].output_dir / "histograms.root") as g:
                ref = g["unfolded_m"].to_hist()
            h = f[name].to_hist()
            assert np.allclose(h.axes[0].edges, ref.axes[0].edges, rtol=0, atol=1e-12)
            np.testing.assert_allclose(h.values(), ref.values(), rtol=1e-12)
    sel = json.loads((both.output_dir / "select.json").read_text())
    assert sel["meta"]["flavours"] == ["mumu", "ee"]
    assert set(sel["flavours"]) == {"mumu", "ee"}
    assert (
        sel["flavours"]["ee"]["counts"]["os"]
        == json.loads((runs["e"].output_dir / "select.json").read_text())["counts"]["os"]
    )


def test_yields_per_flavour_and_combined(runs):
    """yields.json of the both-channels run: per flavour the single-flavour run's A′ and χχ̄
    yields (same numbers: 1e-12); ``aprime`` their combination, equal to
    universality.compare_aprime's in the shared bins and to the ee yield alone below
    2m_μ; ``lepton_universality`` the ratio per shared bin, as compare_aprime gives it."""
    doc = _yields(runs["both"])
    single = {"mumu": _yields(runs["mu"]), "ee": _yields(runs["e"])}
    for ch in ("mumu", "ee"):
        mine, ref = doc["flavours"][ch], single[ch]
        for blk, keys in (("aprime", ("per_pot_per_eps2", "stat_err")),
                          ("mcp", ("per_pot_per_q2", "stat_err"))):  # fmt: skip
            for k in keys:
                np.testing.assert_allclose(
                    np.asarray(mine[blk][k], float), np.asarray(ref[blk][k], float), rtol=1e-12
                )
    ref = compare_aprime(single["ee"]["aprime"], single["mumu"]["aprime"], mass_range=(0.25, 0.5))
    ap = doc["aprime"]
    lo = np.asarray(ap["bin_edges"][:-1])
    shared = [i for i, c in enumerate(ap["channels"]) if sorted(c) == ["ee", "mumu"]]
    assert len(shared) == len(ref["mass"]) >= 10
    np.testing.assert_allclose(
        [ap["per_pot_per_eps2"][i] for i in shared], ref["combined"]["per_pot_per_eps2"],
        rtol=1e-12,
    )  # fmt: skip
    np.testing.assert_allclose([ap["syst_err"][i] for i in shared], ref["combined"]["syst_err"],
                               rtol=1e-12)  # fmt: skip
    below = np.flatnonzero(lo < 2 * M_MU - 0.01)
    assert below.size >= 4
    assert all(ap["channels"][i] == ["ee"] for i in below)
    ee = single["ee"]["aprime"]
    np.testing.assert_allclose([ap["per_pot_per_eps2"][i] for i in below],
                               [ee["per_pot_per_eps2"][i] for i in below], rtol=1e-12)  # fmt: skip
    u = doc["lepton_universality"]
    # the 50 MeV bins from 0.26 GeV inside 0.25-0.5 GeV: 0.26-0.31, ..., 0.41-0.46
    assert u["ratio_of"] == "ee/mumu"
    assert u["ndf"] == ref["ndf"] == 4
    np.testing.assert_allclose(u["ratio"], ref["ratio"], rtol=1e-12)
    # the combination's shares: 1 for ee alone, the inverse-variance share where both
    w = ap["weights"]
    assert all(w["ee"][i] == 1.0 and w["mumu"][i] == 0.0 for i in below)
    assert all(0 < w["ee"][i] < 1 and abs(w["ee"][i] + w["mumu"][i] - 1) < 1e-12 for i in shared)
    # the combined nuisances: the disagreement as its own, the reach reads them all
    assert "universality" in doc["uncertainties"]["nuisances"]
    assert len(doc["uncertainties"]["mass"]) == len(ap["mass"])


def test_flow_trains_on_both_channels(runs):
    """The flow's pairs of a both-channels run: each pair's weight × its channel's share λ
    of the combined bin × F_ℓ/F_e (Eq. 6): per combined bin the weights sum to
    λ_e Σw_e + λ_μ Σw_μ F_μ/F_e; trained on both, down to the ee pairs at 10 MeV."""
    both = runs["both"]
    pairs, _ = read_pairs(both)
    doc = _yields(both)
    ap = doc["aprime"]
    edges = np.asarray(ap["bin_edges"])
    i = next(i for i, c in enumerate(ap["channels"]) if sorted(c) == ["ee", "mumu"])
    import pandas as pd

    raw = pd.read_parquet(both.output_dir / "pairs.parquet")
    inside = (raw["m"] >= edges[i]) & (raw["m"] < edges[i + 1])
    expect = 0.0
    for f, ch, ml in (("e", "ee", M_E), ("mu", "mumu", M_MU)):
        sel = inside & (raw["flavour"] == FLAVOUR_CODES[f])
        m = raw.loc[sel, "m"].to_numpy()
        conv = aprime_factor(m, ml) / aprime_factor(m, M_E)
        expect += ap["weights"][ch][i] * float((raw.loc[sel, "weight"].to_numpy() * conv).sum())
    got = float(pairs.loc[inside.to_numpy(), "weight"].sum())
    assert got == pytest.approx(expect, rel=1e-9)
    td = training_data(pairs, both.flow, seed=1)
    assert td.m.min() < 0.02
    assert td.m.max() > 0.75
    import gammastar

    res = gammastar.train(both, force=True).path
    meta = json.loads((both.output_dir / "flow" / "meta.json").read_text())
    assert meta["mass_range"][0] < 0.02, (res, meta["mass_range"])


def test_bad_both_channel_inputs(mock, tmp_path):
    """One-line errors naming the key or branch: an override for a flavour the run does
    not hold, an unknown key in an override, a listed flavour whose branches the file
    lacks (a muon-only mock)."""
    tmp, path = mock
    with pytest.raises(ConfigError, match=r"selection\.per_flavour\.e: flavour 'e' is not in"):
        _config(tmp, path, "x", "mu")
    with pytest.raises(ConfigError, match=r"unfold\.per_flavour\.e\.foo: unknown key"):
        stated_config({"input": {"lepton": ["mu", "e"]},
                          "unfold": {"per_flavour": {"e": {"foo": 1}}}})  # fmt: skip
    with pytest.raises(ConfigError, match=r"yields\.compare_with: this run holds both"):
        stated_config({"input": {"lepton": ["mu", "e"]}, "yields": {"compare_with": "x"}})
    mu_only = tmp_path / "mu.root"
    generate_file(AnalysisConfig(seed=6, mock=MockConfig(leptons=["mu"], efficiency_map=None)),
                  mu_only, events=20_000)  # fmt: skip
    cfg = _config(tmp_path, mu_only, "bad", ["mu", "e"])
    with pytest.raises(InputError, match="electron_px") as err:
        select(cfg)
    assert "\n" not in str(err.value)


def test_pipeline_trains_after_the_yields(runs):
    """`gammastar run`: the flow of a both-channels run reads yields.json (its channel shares),
    so `train` tracks it there, and only there (a single-flavour flow does not retrain when
    the yields section changes)."""
    from gammastar.pipeline import STAGES

    train = next(s for s in STAGES if s.name == "train")
    assert runs["both"].output_dir / "yields.json" in train.inputs(runs["both"])
    assert runs["mu"].output_dir / "yields.json" not in train.inputs(runs["mu"])


def test_report_shows_both_channels(runs):
    """The report of a both-channels run: a row per channel (OS pairs as select.json
    flavours has them) and the universality table with the combined yield (the
    ratio per mass bin with its error, in yields.json and the report)."""
    import gammastar

    both = runs["both"]
    gammastar.build_report(both, force=True)
    html = (both.output_dir / "report.html").read_text()
    assert "Channels (both in one run)" in html
    assert "Lepton universality: A′ yield ratio ee/mumu" in html
    assert "the other channel of this run" in html
    sel = json.loads((both.output_dir / "select.json").read_text())
    assert f"{sel['flavours']['ee']['counts']['os']:,}" in html
    # each channel's exposure (yields.json meta.n_pot_by_flavour; no prescale here: equal)
    n = json.loads((both.output_dir / "yields.json").read_text())["meta"]["n_pot_by_flavour"]
    assert "N_POT per channel" in html
    assert f"ee {n['ee']:.4e}" in html


def test_mcp_data_driven_refuses_a_both_channels_run(runs):
    """reach-mcp's data-driven χ flux reads the pairs with one lepton mass and one N_POT; a
    both-channels run's pairs hold two of each: one line naming the file, not a silently
    mixed flux (the single-flavour runs of the same file are accepted)."""
    from gammastar.darksector.mcp import data_driven_yields
    from gammastar.errors import InputError
    from gammastar.physics.scintillator import ScintillatorDetector

    det = ScintillatorDetector(distance=10.0, n_layers=3, layer_length=1.0, area=1.0,
                               npe_per_q2=1.0)  # fmt: skip
    with pytest.raises(InputError, match=r"both-channels run.*single-flavour run"):
        data_driven_yields(runs["both"].output_dir, [0.05], det, 1.0, seed=1)
    out = data_driven_yields(runs["e"].output_dir, [0.05], det, 1.0, seed=1)
    assert out.shape == (1,)
    assert np.isfinite(out[0])


def test_chi_spectrum_refuses_a_both_channels_run(runs):
    """The χχ̄ events' γ* mass spectrum (flow.data.run_mass_spectrum: `gammastar events --mchi`,
    `gammastar sample --mcp-mass`) takes one lepton mass: a both-channels run is one line, not
    the primary flavour's spectrum from 2m_μ silently."""
    from gammastar.errors import InputError
    from gammastar.flow.data import run_mass_spectrum

    with pytest.raises(InputError, match="both-channels run"):
        run_mass_spectrum(runs["both"])
    edges, contents, _ = run_mass_spectrum(runs["e"])
    assert edges[0] < 0.05  # the ee run's spectrum starts below 2m_μ
    assert contents.sum() > 0
