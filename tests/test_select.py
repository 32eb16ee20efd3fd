"""Selection on synthetic ntuples with hand-counted content, outputs and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import uproot
from _experiment import stated_config, stated_yaml
from _select_data import write_effmap, write_mock

from gammastar import io
from gammastar.cli import main
from gammastar.errors import ConfigError, InputError, OutputExistsError
from gammastar.selection.chunk import make_leptons, select_chunk
from gammastar.selection.cuts import Cuts
from gammastar.selection.executors import Execution
from gammastar.selection.stage import select

REPEAT = 10


def make_cfg(tmp_path, files, **over):
    eff = tmp_path / "eff.root"
    if not eff.exists():
        write_effmap(eff)
    data = {
        "name": "t",
        "output": str(tmp_path / "run"),
        "input": {"files": [str(f) for f in files]},
        "background": {"remove_eta_mumu": "truth"},
        "unfold": {"efficiency_map": str(eff), "mass_bins": 89},
    }
    for k, v in over.items():
        data[k] = {**data.get(k, {}), **v}
    return stated_config(data, source=str(tmp_path / "cfg.yaml"))


@pytest.fixture
def mockfile(tmp_path):
    p = tmp_path / "mock.root"
    write_mock(p, REPEAT)
    return p


def test_counts_hand_worked(tmp_path, mockfile):
    """Per pattern (see _select_data): 3 OS, 1 ++, 1 −−, 1 η→μμ removed, 1 NaN muon."""
    res = select(make_cfg(tmp_path, [mockfile]))
    n = REPEAT
    assert res.counts["os"] == 3 * n
    assert res.counts["pp"] == n
    assert res.counts["mm"] == n
    cf = res.cutflow
    assert cf["events"] == 7 * n
    assert cf["leptons_nonfinite"] == n
    assert cf["events_nonfinite"] == n
    assert cf["pairs_eta_mumu_removed"] == n
    # D: one muon below 3 GeV; F: NaN muon dropped → D and F have < 2 leptons
    assert cf["events_2leptons"] == 5 * n
    # A:1, B:3, C:1, E:1, G:1 pairs; G (m = 1.5) fails the mass window
    assert cf["pairs"] == 7 * n
    assert cf["pairs_mass"] == 6 * n
    # masses of the B pairs, from the construction (m = 0.78 exactly)
    os_m = np.sort(res.pairs.loc[res.pairs.charge == 0, "m"].unique())
    assert np.any(np.isclose(os_m, 0.78, atol=1e-3))
    assert np.any(np.isclose(os_m, 0.5, atol=1e-3))


def test_outputs_and_weights(tmp_path, mockfile):
    cfg = make_cfg(tmp_path, [mockfile])
    res = select(cfg)
    out = cfg.output_dir
    df = pd.read_parquet(out / "pairs.parquet")
    for col in (
        "event",
        "m",
        "qT",
        "E",
        "y",
        "pT",
        "charge",
        "weight_raw",
        "weight",
        "eff",
        "channel",
        "pz",
    ):
        assert col in df.columns, col
    assert df["event"].dtype == np.int64
    assert df["charge"].dtype == np.int8
    assert set(df["charge"]) == {0, 2, -2}
    # weight convention (DEVELOPERS.md): OS 1/ε, SS −R/ε; map is ε = 0.5 everywhere
    assert np.allclose(df.loc[df.charge == 0, "weight"], 2.0)
    assert np.allclose(df.loc[df.charge != 0, "weight"], -2.0)
    assert np.allclose(df["eff"], 0.5)
    assert (df["channel"] >= 0).all()
    with uproot.open(out / "histograms.root") as f:
        for name in (
            "os_m",
            "pp_m",
            "mm_m",
            "comb_m",
            "signal_m",
            "unfolded_m",
            "os_m_qT_E",
            "unfolded_m_qT_E",
        ):
            assert name in f, name
        h = f["os_m"].to_hist()
        assert h.sum().value == 3 * REPEAT
        assert np.array_equal(h.axes[0].edges, f["unfolded_m"].to_hist().axes[0].edges)
        assert f["os_m_qT_E"].to_hist().ndim == 3
        # Σ weight = unfolded histogram content
        assert f["unfolded_m"].to_hist().sum().value == pytest.approx(df["weight"].sum())
    meta = json.loads((out / "select.json").read_text())
    assert meta["meta"]["schema_version"] == 1
    assert meta["meta"]["inputs"][0]["path"] == str(mockfile)
    assert meta["counts"]["os"] == res.counts["os"]
    assert meta["cutflow"]["events"] == 7 * REPEAT
    # refuse to overwrite; force works
    with pytest.raises(OutputExistsError):
        select(cfg)
    select(cfg, force=True)


def test_comb_and_signal_histograms(tmp_path, mockfile):
    """The hand-made file has its 10 ++ pairs (pattern B) and 10 −− pairs (C) in different
    mass bins: the plain bin-wise 2√(N++N−−) is 0 in every bin (biased: the expected OS
    background of 2√(10·10) = 20 pairs would be lost). Each bin has fewer than
    ``min_like_sign`` (20) of a sign, so its factor comes from the whole axis,
    2√(10·10)/(10 + 10) = 1: comb_m = N++ + N−− bin by bin, 20 in all."""
    res = select(make_cfg(tmp_path, [mockfile]))
    h = res.histograms
    pp, mm = h["pp_m"].values(), h["mm_m"].values()
    assert np.all(pp * mm == 0)  # the plain geometric mean is 0 everywhere
    assert np.allclose(h["comb_m"].values(), pp + mm)
    assert h["comb_m"].values().sum() == pytest.approx(20.0)
    assert np.allclose(h["signal_m"].values(), h["os_m"].values() - h["comb_m"].values())
    bg = json.loads((res.output_dir / "select.json").read_text())["background"]
    assert bg["estimator"] == "geometric"
    assert bg["bins_whole_axis"] == 89
    assert bg["like_sign_ratio_all"] == pytest.approx(1.0)


def test_cuts_pt_rapidity_and_charge_classes(tmp_path, mockfile):
    res = select(make_cfg(tmp_path, [mockfile], selection={"pair_charges": ["os"]}))
    assert res.counts["pp"] == res.counts["mm"] == 0
    assert res.counts["os"] == 3 * REPEAT
    # pairs built along z have pT ≈ 0; only B's pairs with the extra muon (pT ≈ 0.5) fail
    res = select(make_cfg(tmp_path, [mockfile], selection={"pair_pt_max": 0.1}), force=True)
    assert (res.counts["os"], res.counts["pp"], res.counts["mm"]) == (2 * REPEAT, 0, REPEAT)
    assert res.pairs["pT"].max() < 0.1
    y = res.pairs["y"].to_numpy()
    res = select(
        make_cfg(tmp_path, [mockfile], selection={"rapidity_min": float(np.median(y)) + 1e-9}),
        force=True,
    )
    assert (res.pairs["y"] >= np.median(y)).all()


def test_pt_cut_gives_zero_pairs_error(tmp_path, mockfile):
    """All pairs here have pT ≈ 0 except B's mixed pairs; a lepton energy cut above every
    muon leaves nothing: a clear error naming the file, no output written."""
    cfg = make_cfg(tmp_path, [mockfile], selection={"lepton_min_energy": 1000.0})
    with pytest.raises(InputError, match="no pair passes the selection") as exc:
        select(cfg)
    assert str(mockfile) in str(exc.value)
    assert not (cfg.output_dir / "pairs.parquet").exists()


def test_no_truth_removal_keeps_eta(tmp_path, mockfile):
    res = select(make_cfg(tmp_path, [mockfile], background={"remove_eta_mumu": "none"}))
    assert res.counts["os"] == 4 * REPEAT


def test_binwise_ss_weights_reproduce_comb(tmp_path, mockfile):
    res = select(make_cfg(tmp_path, [mockfile], background={"ss_weight": "binwise"}))
    df = res.pairs
    ss = df[df.charge != 0]
    comb_from_weights = -(ss["weight"] * ss["eff"]).sum()
    assert comb_from_weights == pytest.approx(res.histograms["comb_m"].values().sum())


def test_make_leptons_one_path_all_layouts():
    """The same muon in the three layouts gives the same four-vector."""
    import awkward as ak

    px, py, pz, m = 1.0, 2.0, 30.0, 0.1056583755
    e = np.sqrt(px**2 + py**2 + pz**2 + m**2)
    pt = np.hypot(px, py)
    eta = np.arcsinh(pz / pt)
    phi = np.arctan2(py, px)
    cart = make_leptons(
        {
            "px": ak.Array([[px]]),
            "py": ak.Array([[py]]),
            "pz": ak.Array([[pz]]),
            "E": ak.Array([[e]]),
            "charge": ak.Array([[1]]),
        },
        "jagged_cartesian",
    )
    col = make_leptons(
        {
            "pt": ak.Array([[pt]]),
            "eta": ak.Array([[eta]]),
            "phi": ak.Array([[phi]]),
            "mass": ak.Array([[m]]),
            "charge": ak.Array([[1]]),
        },
        "jagged_ptetaphi",
    )
    flat = make_leptons(
        {
            "E1": [e],
            "px1": [px],
            "py1": [py],
            "pz1": [pz],
            "Q1": [1],
            "E2": [e],
            "px2": [px],
            "py2": [py],
            "pz2": [pz],
            "Q2": [-1],
        },
        "flat_pairs",
    )
    for lep in (cart, col, flat):
        assert float(lep[0, 0].E) == pytest.approx(e, rel=1e-12)
        assert float(lep[0, 0].pz) == pytest.approx(pz, rel=1e-12)
        assert float(lep[0, 0].px) == pytest.approx(px, rel=1e-12)


def test_select_chunk_pure():
    """The chunk function on plain arrays: one OS pair at the Z-like mass."""
    cols = {
        "E1": [50.0],
        "px1": [0.0],
        "py1": [0.0],
        "pz1": [50.0],
        "Q1": [1],
        "E2": [50.0],
        "px2": [0.0],
        "py2": [0.0],
        "pz2": [-50.0],
        "Q2": [-1],
    }
    pairs, flow = select_chunk(cols, "flat_pairs", Cuts(mass_min=0, mass_max=200))
    assert flow["os"] == 1
    assert pairs["m"][0] == pytest.approx(100.0)
    assert pairs["y"][0] == pytest.approx(0.0)


def test_cli_select(tmp_path, mockfile, capsys):
    cfg = tmp_path / "a.yaml"
    write_effmap(tmp_path / "eff.root")
    cfg.write_text(
        stated_yaml(
            f"name: a\noutput: {tmp_path / 'cli'}\ninput: {{files: ['{tmp_path}/*.root']}}\n"
            "unfold: {efficiency_map: eff.root}\n"
        )
    )
    # the glob also matches eff.root, which lacks the 'events' tree: reported by name
    rc = main(["select", str(cfg)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "eff.root" in err
    assert "no tree 'events'" in err
    rc = main(["select", str(cfg), "--skip-bad-files"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "skipped bad file" in captured.err
    assert "eff.root" in captured.err
    assert (tmp_path / "cli" / "pairs.parquet").exists()
    info = json.loads((tmp_path / "cli" / "select.json").read_text())
    assert any("eff.root" in k for k in info["bad_files"])
    assert info["counts"]["os"] == 3 * REPEAT
    # --input replaces input.files; existing outputs need --force
    assert main(["select", str(cfg), "--input", str(mockfile)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["select", str(cfg), "--input", str(mockfile), "--force"]) == 0
    assert main(["select", str(cfg), "--executor", "spark"]) == 2


# futures: also its staged parts removed; a process pool starts in seconds: in the slow suite
@pytest.mark.parametrize("executor", ["iterative", pytest.param("futures", marks=pytest.mark.slow)])
def test_interrupted_forced_rerun_keeps_the_old_outputs(tmp_path, mockfile, monkeypatch, executor):
    """The three outputs are one set: a forced rerun interrupted while writing them (here in
    select.json, the last) leaves the previous run's files, byte for byte, and no stray file."""
    import gammastar.selection.outputs

    cfg = make_cfg(tmp_path, [mockfile])
    select(cfg)
    run = tmp_path / "run"
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    assert sorted(before) == ["histograms.root", "pairs.parquet", "select.json"]
    other = tmp_path / "other.root"
    write_mock(other, 2 * REPEAT)

    def interrupted(obj):
        raise KeyboardInterrupt

    monkeypatch.setattr(gammastar.selection.outputs, "json_text", interrupted)
    execution = Execution(executor, workers=1)  # futures: one worker process (seconds to start)
    with pytest.raises(KeyboardInterrupt):
        select(make_cfg(tmp_path, [other]), execution=execution, force=True)
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
    monkeypatch.undo()
    res = select(make_cfg(tmp_path, [other]), execution=execution, force=True)
    assert res.counts["os"] == 2 * 3 * REPEAT
    assert sorted(p.name for p in run.iterdir()) == sorted(before)


@pytest.mark.parametrize(
    ("background", "key"),
    [
        ({"r_factor": "measured"}, "background.r_factor"),
        ({"r_factor": 0}, "background.r_factor"),
        ({"min_like_sign": 0}, "background.min_like_sign"),
        ({"mixing_depth": 0}, "background.mixing_depth"),
        ({"mixing_pool": "os"}, "background.mixing_pool"),
    ],
)
def test_background_config_errors(tmp_path, background, key):
    """Bad like-sign settings: one ConfigError naming the key."""
    from gammastar.errors import ConfigError

    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        make_cfg(tmp_path, [tmp_path / "x.root"], background=background)


@pytest.mark.parametrize("name", sorted(io.LAYOUTS))
def test_every_registered_layout_round_trips_its_leptons(name):
    """Each layout of the registry (gammastar.io.LAYOUTS) builds back, through the one path
    (make_leptons), the leptons its own ``from_vectors`` wrote: two muons per event, events of
    different momenta. Values go through at most a few float64 conversions (cartesian ↔ polar,
    ~10 operations): rel 1e-12. Its columns are its declared ones, and the selection's
    plausibility checks accept them. A new layout is tested here without a new test."""
    import awkward as ak
    import vector

    from gammastar.selection.plausibility import Plausibility

    lay = io.get_layout(name)
    px = np.array([[0.3, -0.25], [1.0, 2.0]])
    py = np.array([[-0.2, 0.3], [0.5, -1.5]])
    pz = np.array([[5.0, 4.0], [30.0, 12.0]])
    m = 0.1056583755
    e = np.sqrt(px**2 + py**2 + pz**2 + m**2)
    p4 = vector.zip({"px": ak.Array(px), "py": ak.Array(py), "pz": ak.Array(pz), "E": ak.Array(e)})
    charge = ak.Array([[1, -1], [-1, 1]])
    cols = lay.from_vectors(p4, charge)
    assert set(cols) <= lay.columns
    assert set(lay.required) <= set(cols)
    Plausibility(400.0).check(cols, name, {c: c for c in cols}, ("f.root", 0, 2))
    lep = make_leptons(cols, name, lepton_mass=m)
    assert ak.num(lep).tolist() == [2, 2]
    for comp, want in (("px", px), ("py", py), ("pz", pz), ("E", e)):
        got = np.asarray(getattr(lep, comp)).astype(np.float64)
        np.testing.assert_allclose(got, want, rtol=1e-12, err_msg=f"{name}: {comp}")
    np.testing.assert_array_equal(np.asarray(lep.charge), np.asarray(charge))


def test_layout_registry_feeds_the_config_and_the_branch_checks():
    """input.layout allows exactly the registered layouts; the branch defaults and which
    columns must be jagged come from the registry entry."""
    from pydantic import ValidationError

    from gammastar.config.selection import InputConfig

    for name, lay in io.LAYOUTS.items():
        assert InputConfig(layout=name).layout == name
        assert io.branch_map(name).required == dict(lay.required)
        assert lay.per_lepton == (frozenset() if lay.paired else lay.columns - io.EVENT_COLUMNS)
    with pytest.raises(ValidationError):
        InputConfig(layout="no_such_layout")
    with pytest.raises(ConfigError, match="unknown layout 'no_such_layout'"):
        io.get_layout("no_such_layout")
