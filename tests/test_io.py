"""Input handling: layouts, branch mapping, files/globs/filesets, and every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import uproot
from _experiment import stated_config
from _select_data import write_effmap, write_mock

from gammastar import io
from gammastar.errors import ConfigError, InputError
from gammastar.selection.stage import select


def cfg_for(tmp_path, files, **over):
    data = {
        "name": "t",
        "output": str(tmp_path / "run"),
        "input": {"files": [str(f) for f in files]},
        "unfold": {"efficiency_map": None},
    }
    for k, v in over.items():
        data[k] = {**data.get(k, {}), **v}
    return stated_config(data, source=str(tmp_path / "cfg.yaml"))


def assert_nothing_written(cfg):
    for name in ("pairs.parquet", "histograms.root", "select.json"):
        assert not (cfg.output_dir / name).exists()


# --------------------------------------------------------------------------- mapping
def test_branch_map_defaults_and_overrides():
    bm = io.branch_map("jagged_ptetaphi", {"pt": "mu_pt", "event": "evt"})
    assert bm.required["pt"] == "mu_pt"
    assert bm.required["event"] == "evt"  # an explicitly mapped optional column is required
    assert "event" not in bm.optional
    assert bm.required["charge"] == "Muon_charge"
    with pytest.raises(ConfigError, match="unknown column"):
        io.branch_map("flat_pairs", {"pt": "x"})


def test_resolve_files_paths_globs_fileset(tmp_path):
    for n in ("a", "b"):
        (tmp_path / f"{n}.root").touch()
    fs = io.resolve_files([str(tmp_path / "*.root")], "events")
    assert list(fs["data"]["files"]) == [str(tmp_path / "a.root"), str(tmp_path / "b.root")]
    fs = io.resolve_files({"ds": {"files": {str(tmp_path / "a.root"): "T"}}}, "events")
    assert fs["ds"]["files"] == {str(tmp_path / "a.root"): "T"}
    fs = io.resolve_files({"ds": [str(tmp_path / "b.root")]}, "events")
    assert fs["ds"]["files"] == {str(tmp_path / "b.root"): "events"}
    with pytest.raises(InputError, match="matches no file"):
        io.resolve_files([str(tmp_path / "*.nothing")], "events")


def test_fileset_in_config_two_datasets(tmp_path):
    write_mock(tmp_path / "m1.root", 3)
    write_mock(tmp_path / "m2.root", 2, event_offset=1000)
    cfg = stated_config(
        {
            "output": str(tmp_path / "run"),
            "input": {
                "files": {
                    "one": {"files": {str(tmp_path / "m1.root"): "events"}},
                    "two": {"files": [str(tmp_path / "m2.root")]},
                }
            },
            "unfold": {"efficiency_map": None},
        },
        source=str(tmp_path / "c.yaml"),
    )
    res = select(cfg)
    assert res.counts["os"] == 3 * 5
    assert res.cutflow["events"] == 7 * 5


# --------------------------------------------------------------------------- bad inputs
def test_not_root_file(tmp_path):
    bad = tmp_path / "notroot.root"
    bad.write_text("this is not a ROOT file\n" * 100)
    cfg = cfg_for(tmp_path, [bad])
    with pytest.raises(InputError, match="not a readable ROOT file") as exc:
        select(cfg)
    assert str(bad) in str(exc.value)
    assert_nothing_written(cfg)


def test_truncated_file(tmp_path):
    good = tmp_path / "good.root"
    write_mock(good, 50)
    data = good.read_bytes()
    bad = tmp_path / "truncated.root"
    bad.write_bytes(data[: len(data) // 2])
    cfg = cfg_for(tmp_path, [bad])
    with pytest.raises(InputError) as exc:
        select(cfg)
    assert str(bad) in str(exc.value)
    assert_nothing_written(cfg)
    # skipped with a report when asked
    res = select(cfg_for(tmp_path, [good, bad]), skip_bad_files=True)
    assert str(bad) in res.bad_files
    assert res.counts["os"] == 3 * 50
    info = json.loads((tmp_path / "run" / "select.json").read_text())
    assert str(bad) in info["bad_files"]
    assert [i["path"] for i in info["meta"]["inputs"]] == [str(good)]


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="input file not found"):
        select(cfg_for(tmp_path, [tmp_path / "nope.root"]))


def test_missing_tree(tmp_path):
    p = tmp_path / "m.root"
    write_mock(p, 2)
    cfg = cfg_for(tmp_path, [p], input={"tree": "Events"})
    with pytest.raises(InputError, match=r"no tree 'Events'.*events") as exc:
        select(cfg)
    assert str(p) in str(exc.value)
    assert_nothing_written(cfg)


def test_missing_branches_named_before_processing(tmp_path):
    p = tmp_path / "m.root"
    write_mock(p, 2)
    cfg = cfg_for(tmp_path, [p], input={"branches": {"px": "mu_px", "charge": "mu_q"}})
    with pytest.raises(InputError) as exc:
        select(cfg)
    msg = str(exc.value)
    assert "'mu_px'" in msg
    assert "'mu_q'" in msg
    assert str(p) in msg
    assert_nothing_written(cfg)


def test_truth_removal_needs_truth_branch(tmp_path):
    p = tmp_path / "flat.root"
    with uproot.recreate(p) as f:
        cols = {k: np.array([1.0]) for k in ("E1", "px1", "py1", "pz1", "E2", "px2", "py2", "pz2")}
        cols |= {"Q1": np.array([1], np.int32), "Q2": np.array([-1], np.int32)}
        f.mktree("events", {k: v.dtype for k, v in cols.items()})
        f["events"].extend(cols)
    cfg = cfg_for(
        tmp_path, [p], input={"layout": "flat_pairs"}, background={"remove_eta_mumu": "truth"}
    )
    with pytest.raises(ConfigError, match="truth_channel"):
        select(cfg)


def test_nan_and_inf_momenta_counted(tmp_path):
    """NaN (pattern F) and an extra inf muon are dropped, counted and reported."""
    p = tmp_path / "m.root"
    write_mock(p, 4)
    res = select(cfg_for(tmp_path, [p]))
    assert res.cutflow["leptons_nonfinite"] == 4
    info = json.loads((tmp_path / "run" / "select.json").read_text())
    assert info["cutflow"]["leptons_nonfinite"] == 4
    assert np.isfinite(res.pairs[["m", "E", "pT", "y"]].to_numpy()).all()
    # inf
    q = tmp_path / "inf.root"
    with uproot.recreate(q) as f:
        # E1 ≥ |p1| = 10.0005 (gammastar.selection.plausibility: E < |p| marks a damaged file)
        cols = {k: np.array([10.0, 10.0]) for k in ("pz1", "E2")} | {"E1": np.full(2, 10.01)}
        cols |= {
            "px1": np.array([0.0, np.inf]),
            "py1": np.array([0.1, 0.1]),
            "px2": np.array([0.3, 0.3]),
            "py2": np.array([0.0, 0.0]),
            "pz2": np.array([-9.0, -9.0]),
        }
        cols |= {"Q1": np.array([1, 1], np.int32), "Q2": np.array([-1, -1], np.int32)}
        f.mktree("events", {k: v.dtype for k, v in cols.items()})
        f["events"].extend(cols)
    cfg = cfg_for(
        tmp_path,
        [q],
        input={"layout": "flat_pairs"},
        background={"remove_eta_mumu": "none"},
        selection={"lepton_min_energy": 0, "mass_min": 0, "mass_max": 100},
    )
    res = select(cfg, force=True)
    assert res.cutflow["leptons_nonfinite"] == 1
    assert res.counts["os"] == 1


def test_efficiency_map_with_zeros(tmp_path):
    p = tmp_path / "m.root"
    write_mock(p, 3)
    vals = np.full((20, 10), 0.5)
    vals[5, :] = 0.0  # 0.5 ≤ m < 0.6: B's ++ pair (0.559) and C's −− pair (0.59999, float32)
    write_effmap(tmp_path / "zeros.root", vals)
    cfg = cfg_for(tmp_path, [p], unfold={"efficiency_map": str(tmp_path / "zeros.root")})
    with pytest.raises(InputError, match="ε = 0") as exc:
        select(cfg)
    assert "zeros.root" in str(exc.value)
    assert_nothing_written(cfg)
    cfg = cfg_for(
        tmp_path,
        [p],
        unfold={"efficiency_map": str(tmp_path / "zeros.root"), "outside_map": "drop"},
    )
    res = select(cfg)
    assert res.unfold["n_zero_efficiency"] == 2 * 3
    assert res.unfold["n_zero_efficiency"] == int(
        ((res.pairs.m >= 0.5) & (res.pairs.m < 0.6)).sum()
    )
    df = res.pairs
    assert (df.loc[df.eff == 0, "weight"] == 0).all()


def test_efficiency_map_outside(tmp_path):
    p = tmp_path / "m.root"
    write_mock(p, 3)
    small = str(tmp_path / "small.root")
    write_effmap(small, np.full((5, 10), 0.5), m_edges=np.linspace(0, 0.55, 6))
    cfg = cfg_for(tmp_path, [p], unfold={"efficiency_map": small, "outside_map": "error"})
    with pytest.raises(InputError, match="outside the efficiency map"):
        select(cfg)
    assert_nothing_written(cfg)
    # drop: weight 0, ε NaN, counted
    cfg = cfg_for(tmp_path, [p], unfold={"efficiency_map": small, "outside_map": "drop"})
    res = select(cfg)
    outside = res.pairs["m"] >= 0.55
    assert outside.sum() > 0
    assert res.unfold["n_outside_map"] == outside.sum()
    assert res.pairs.loc[outside, "eff"].isna().all()
    assert (res.pairs.loc[outside, "weight"] == 0).all()
    # nearest: the last mass bin's ε, counted and reported
    cfg = cfg_for(tmp_path, [p], unfold={"efficiency_map": small, "outside_map": "nearest"})
    res = select(cfg, force=True)
    assert res.unfold["n_outside_map"] == outside.sum()
    assert (res.pairs.loc[outside, "eff"] == 0.5).all()
    # the default is `error`: a map not covering the selection stops the run
    cfg = cfg_for(tmp_path, [p], unfold={"efficiency_map": small})
    with pytest.raises(InputError, match="outside the efficiency map"):
        select(cfg, force=True)


def test_efficiency_map_invalid_values(tmp_path):
    from gammastar.corrections.unfold.efficiency import load_efficiency_map

    write_effmap(tmp_path / "big.root", np.full((20, 10), 1.5))
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        load_efficiency_map(tmp_path / "big.root")
    with pytest.raises(InputError, match="not found"):
        load_efficiency_map(tmp_path / "none.root")
    (tmp_path / "junk.root").write_text("junk")
    with pytest.raises(InputError, match=r"junk\.root"):
        load_efficiency_map(tmp_path / "junk.root")


def test_empty_file_zero_pairs(tmp_path):
    """A file with the right branches but no entries: the clear zero-pairs error."""
    import awkward as ak

    q = tmp_path / "empty.root"
    with uproot.recreate(q) as f:
        muon = ak.zip({k: ak.Array([[1.0]]) for k in ("px", "py", "pz", "E")})
        f.mktree("events", {"event": np.int64, "muon": muon.type})
    # charge mapped onto a float branch: only the branch names matter for an empty file
    cfg = cfg_for(
        tmp_path,
        [q],
        input={"branches": {"charge": "muon_px"}},
        background={"remove_eta_mumu": "none"},
    )
    with pytest.raises(InputError, match="no pair passes the selection") as exc:
        select(cfg)
    assert str(q) in str(exc.value)
    assert_nothing_written(cfg)


def test_truncated_anywhere_is_caught_before_processing(tmp_path):
    """The up-front check reads no data for a TTree (metadata only): a file cut at any point
    must still fail there, at open or at the header-length / basket-position check."""
    good = tmp_path / "good.root"
    write_mock(good, 200)
    data = good.read_bytes()
    bm = io.branch_map("jagged_cartesian", {})
    cut_points = np.linspace(64, len(data) - 1, 40).astype(int)
    for cut in cut_points:
        bad = tmp_path / f"cut{cut}.root"
        bad.write_bytes(data[:cut])
        with pytest.raises(InputError) as exc:
            io.check_inputs(io.resolve_files([str(bad)], "events"), bm)
        assert str(bad) in str(exc.value)
    # the intact file passes and its entries are counted
    ok = io.check_inputs(io.resolve_files([str(good)], "events"), bm)
    assert ok.entries == {str(good): 7 * 200}  # write_mock: 7 events per pattern


@pytest.mark.parametrize("kind", ["ttree", "rntuple"])
def test_flat_branch_for_per_lepton_column_is_named(tmp_path, kind, request):
    """A per-lepton column mapped onto a one-value-per-event branch: the TTree check (from
    the branch interpretation) and the RNTuple check (from one read entry) both name it."""
    if kind == "ttree":
        path = tmp_path / "m.root"
        write_mock(path, 20)
        bm = io.branch_map("jagged_cartesian", {"charge": "event"})
        tree, bad = "events", "charge → 'event'"
    else:
        path = Path(request.getfixturevalue("cms_data_dir")) / (
            "Run2012BC_DoubleMuParked_Muons_1000evts_rntuple_v1-0-0-0.root"
        )
        bm = io.branch_map("jagged_ptetaphi", {"mass": "nMuon"})
        tree, bad = "Events", "mass → 'nMuon'"
    with pytest.raises(InputError, match="do not fit layout") as exc:
        io.check_inputs(io.resolve_files([str(path)], tree), bm)
    assert bad in str(exc.value)
    assert "one value per entry" in str(exc.value)
    assert str(path) in str(exc.value)


def test_fileset_entries_as_strings_and_files_listed_twice(tmp_path):
    """A fileset entry may be one path (not split into characters); a file in two datasets,
    or with two trees, is a config error naming it (its chunks would be counted twice);
    overlapping globs in one list read the file once."""
    a, b = tmp_path / "a.root", tmp_path / "b.root"
    write_mock(a, 2)
    write_mock(b, 2)
    for spec in (str(a), {"files": str(a)}):
        fs = io.resolve_files({"A": spec}, "events")
        assert fs["A"]["files"] == {str(a): "events"}
    with pytest.raises(ConfigError, match=r"a\.root is listed twice \(datasets 'A' and 'B'\)"):
        io.resolve_files({"A": [str(a)], "B": [str(b), str(a)]}, "events")
    with pytest.raises(ConfigError, match="two trees"):
        io.resolve_files({"A": {"files": {str(a): "events", str(tmp_path / "*.root"): "t"}}}, "x")
    fs = io.resolve_files([str(a), str(tmp_path / "*.root")], "events")
    assert fs["data"]["files"] == {str(a): "events", str(b): "events"}
    # and end to end: the string entry selects the file's events
    cfg = cfg_for(tmp_path, [a])
    res = select(
        cfg.model_copy(update={"input": cfg.input.model_copy(update={"files": {"A": str(a)}})})
    )
    assert res.cutflow["events"] == 7 * 2


def _write_ptetaphi(src, dst, *, parent=True):
    """The mock file `src` in the NanoAOD-like layout: Muon_pt/eta/phi/charge(/parent), no
    Muon_mass."""
    import awkward as ak
    import vector

    with uproot.open(src) as f:
        a = f["events"].arrays()
    p4 = vector.zip({k: a[f"muon_{k}"] for k in ("px", "py", "pz", "E")})
    fields = {"pt": p4.pt, "eta": p4.eta, "phi": p4.phi, "charge": a["muon_charge"]}
    if parent:
        fields["parent"] = a["muon_parent"]
    data = {"Muon": ak.zip(fields), "truth_channel": a["truth_channel"], "event": a["event"]}
    with uproot.recreate(dst) as f:
        f.mktree(
            "events", {k: v.type if isinstance(v, ak.Array) else v.dtype for k, v in data.items()}
        )
        f["events"].extend(data)


def test_ptetaphi_without_mass_branch_uses_lepton_mass(tmp_path):
    """Muon_mass is optional: without it input.lepton_mass is the lepton mass. Two leptons of
    pT = 1 GeV back to back at η = 0: m = 2·sqrt(1 + m_l²) (here m_l = 0.3 GeV)."""
    import awkward as ak

    p = tmp_path / "nano.root"
    muon = ak.zip(
        {
            "pt": ak.Array([[1.0, 1.0]]),
            "eta": ak.Array([[0.0, 0.0]]),
            "phi": ak.Array([[0.0, np.pi]]),
            "charge": ak.values_astype(ak.Array([[1, -1]]), np.int32),
        }
    )
    with uproot.recreate(p) as f:
        f.mktree("Events", {"Muon": muon.type})
        f["Events"].extend({"Muon": muon})
    cfg = cfg_for(
        tmp_path,
        [p],
        input={"layout": "jagged_ptetaphi", "tree": "Events", "lepton_mass": 0.3},
        selection={"mass_min": 0.0, "mass_max": 5.0, "lepton_min_energy": 0.0},
        background={"remove_eta_mumu": "none"},
    )
    res = select(cfg)
    assert res.counts["os"] == 1
    assert res.pairs["m"].iloc[0] == pytest.approx(2 * np.sqrt(1 + 0.3**2), rel=1e-6)


def test_truth_eta_removal_needs_the_parent_branch_in_jagged_layouts(tmp_path):
    """The event tag alone would drop every OS pair of a tagged event: without the per-lepton
    parent branch 'truth' is refused (naming the branch); with it the NanoAOD-like layout
    gives the hand-counted numbers of the cartesian mock (3 OS, 1 ++, 1 −− per pattern)."""
    src = tmp_path / "mock.root"
    write_mock(src, 4)
    bare, full = tmp_path / "bare.root", tmp_path / "full.root"
    _write_ptetaphi(src, bare, parent=False)
    _write_ptetaphi(src, full)
    over = {"input": {"layout": "jagged_ptetaphi"}, "background": {"remove_eta_mumu": "truth"}}
    with pytest.raises(ConfigError, match=r"parent branch.*'Muon_parent'"):
        select(cfg_for(tmp_path, [bare], **over))
    res = select(cfg_for(tmp_path, [full], **over), force=True)
    assert (res.counts["os"], res.counts["pp"], res.counts["mm"]) == (3 * 4, 4, 4)


# --------------------------------------------------------------------------- a new layout
def _write_layout(src, dst, layout):
    """The mock file ``src``'s muons written anew with uproot in ``layout`` (its default
    branch names; ``muon`` / ``lep`` prefixes): from the mock's float32 px, py, pz only, in
    float64, with E = sqrt(p² + m_μ²) where the layout has an energy."""
    import awkward as ak
    import vector

    from gammastar.physics.constants import M_MU

    with uproot.open(src) as f:
        a = f["events"].arrays()
    mom = {k: ak.values_astype(a[f"muon_{k}"], np.float64) for k in ("px", "py", "pz")}
    p = np.sqrt(mom["px"] ** 2 + mom["py"] ** 2 + mom["pz"] ** 2)
    p4 = vector.zip({**mom, "E": np.sqrt(p**2 + M_MU**2)})
    lay = io.get_layout(layout)
    cols = lay.from_vectors(p4, a["muon_charge"])
    cols["parent"] = a["muon_parent"]
    names = {**lay.required, **lay.optional}
    prefix = names["charge"].rsplit("_", 1)[0]  # the layout's lepton collection
    data = {
        prefix: ak.zip({names[c].rsplit("_", 1)[1]: v for c, v in cols.items()}),
        "truth_channel": a["truth_channel"],
        "event": a["event"],
    }
    with uproot.recreate(dst) as f:
        f.mktree(
            "events", {k: v.type if isinstance(v, ak.Array) else v.dtype for k, v in data.items()}
        )
        f["events"].extend(data)


def test_pthetaphi_layout_gives_the_pairs_of_the_cartesian_layout(tmp_path):
    """The worked example of the layout registry (DEVELOPERS.md): per-lepton p, θ, φ and charge
    (input.lepton_mass the mass), written with uproot from the mock's px, py, pz, gives the same
    pairs as the same muons in the px, py, pz, E layout (and the mock's hand-counted numbers).

    Tolerance: both paths are float64 from the same float32 momenta and differ only in the
    roundings of the coordinate conversions (p, θ, φ → pt, pz, E: ~10 operations, each ≤ 2 ulp;
    n = 32 as a bound). E, pT, pz keep that relative precision; m = sqrt(E² − |p|²) and
    y = artanh(pz/E) amplify it by (E/m)² and (E/m_T)² (cancellation)."""
    src = tmp_path / "mock.root"
    write_mock(src, 10)
    cart, polar = tmp_path / "cart.root", tmp_path / "polar.root"
    _write_layout(src, cart, "jagged_cartesian")
    _write_layout(src, polar, "jagged_pthetaphi")
    mu = 0.1056583755
    res = {}
    for name, path in (("jagged_cartesian", cart), ("jagged_pthetaphi", polar)):
        cfg = cfg_for(tmp_path, [path], input={"layout": name, "lepton_mass": mu})
        res[name] = select(cfg, force=True)
    a, b = res["jagged_cartesian"], res["jagged_pthetaphi"]
    # write_mock(10): 3 OS, 1 ++, 1 −− per pattern (tests/_select_data.py)
    assert (b.counts["os"], b.counts["pp"], b.counts["mm"]) == (30, 10, 10)
    assert b.cutflow == a.cutflow
    pa = a.pairs.sort_values(["event", "m"]).reset_index(drop=True)
    pb = b.pairs.sort_values(["event", "m"]).reset_index(drop=True)
    np.testing.assert_array_equal(pa["event"], pb["event"])
    np.testing.assert_array_equal(pa["charge"], pb["charge"])
    tol = 32 * np.finfo(np.float64).eps
    for col in ("E", "pT", "pz"):
        np.testing.assert_allclose(pb[col], pa[col], rtol=tol, atol=tol * pa["E"].max())
    amp_m = (pa["E"] / pa["m"]) ** 2
    assert np.all(np.abs(pb["m"] - pa["m"]) <= tol * amp_m * pa["m"])
    amp_y = pa["E"] ** 2 / (pa["m"] ** 2 + pa["pT"] ** 2)
    assert np.all(np.abs(pb["y"] - pa["y"]) <= tol * amp_y)


def test_pthetaphi_plausibility_names_the_branch():
    """The layout's own checks (its registry entry): p below the kinematic bound, θ in [0, π],
    |φ| ≤ π; a value outside names the branch (a damaged file, docs/howto/runs-and-failures.md)."""
    import awkward as ak

    from gammastar.selection.plausibility import Plausibility

    ok = {
        "p": ak.Array([[10.0, 5.0]]),
        "theta": ak.Array([[0.01, 0.0]]),  # on the axis: allowed
        "phi": ak.Array([[0.1, -3.0]]),
        "charge": ak.Array([[1, -1]]),
    }
    branches = {c: f"lep_{c}" for c in ok}
    check = Plausibility(800.0).check
    check(ok, "jagged_pthetaphi", branches, ("f.root", 0, 1))
    with pytest.raises(InputError, match=r"'lep_theta'.*θ ∉ \[0, π\]"):
        check(ok | {"theta": ak.Array([[0.01, 4.0]])}, "jagged_pthetaphi", branches, ("f", 0, 1))
    with pytest.raises(InputError, match=r"'lep_p'.*\|p\| above 800"):
        check(ok | {"p": ak.Array([[1e4, 5.0]])}, "jagged_pthetaphi", branches, ("f", 0, 1))
