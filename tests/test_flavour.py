"""input.lepton: branch names, lepton mass and the flavour checks of the input."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import uproot
from _experiment import stated_config

from gammastar import io
from gammastar.config import AnalysisConfig
from gammastar.config.mock import MockConfig
from gammastar.config.selection import InputConfig
from gammastar.errors import ConfigError, InputError
from gammastar.mock.generate import generate_file
from gammastar.physics.constants import M_E, M_MU
from gammastar.selection.flavour_check import lepton_flavours
from gammastar.selection.stage import select


def cfg_for(tmp_path, files, **over):
    data = {
        "name": "t",
        "output": str(tmp_path / "run"),
        "input": {"files": [str(f) for f in files]},
        "unfold": {"efficiency_map": None},
        "background": {"remove_eta_mumu": "none"},
        "selection": {"mass_min": 0.02, "lepton_min_energy": 1.0},
    }
    for k, v in over.items():
        data[k] = {**data.get(k, {}), **v}
    return stated_config(data, source=str(tmp_path / "cfg.yaml"))


@pytest.fixture(scope="module")
def ee_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("ee") / "ee.root"
    # the conversion template's own simulation (its own random stream: the events do not depend
    # on its size) small, as no test here reads the template
    electrons = {"conversion_template_sources": 20_000}
    cfg = AnalysisConfig(
        seed=4, mock=MockConfig(leptons=["e"], efficiency_map=None, electrons=electrons)
    )
    generate_file(cfg, path, events=60_000)
    return path


def test_lepton_sets_mass_and_branch_names():
    """input.lepton e: lepton_mass = m_e (PDG, physics.channels.LEPTON_CHANNELS), electron_* /
    Electron_* default branches; a lepton_mass of the other flavour is a config error."""
    assert InputConfig(lepton="e").lepton_mass == M_E
    assert InputConfig().lepton_mass == M_MU
    assert io.branch_map("jagged_cartesian", lepton="e").optional["parent"] == "electron_parent"
    assert io.branch_map("jagged_ptetaphi", lepton="e").required["pt"] == "Electron_pt"
    with pytest.raises(ConfigError, match="lepton_mass"):
        stated_config({"input": {"lepton": "e", "lepton_mass": M_MU}})


def test_lepton_flavours_resolution():
    """m² = E² − p² resolves m_μ from m_e while 8 ε E² < m_μ² (float32: E ≲ 110 GeV)."""
    m = np.array([M_MU, M_E])
    for e, resolved in ((50.0, True), (1000.0, False)):
        ee = np.full(2, e, dtype=np.float32)
        p = np.sqrt(ee.astype(np.float64) ** 2 - m**2).astype(np.float32)
        n = lepton_flavours(ee, p.astype(np.float64) ** 2)
        assert (n["mu"] == 1) is resolved
        assert (n["unresolved"] == 2) is not resolved


def test_electron_selection_on_the_ee_mock(ee_file, tmp_path):
    """input.lepton e on the dielectron mock: every selected pair is a dielectron source and
    the masses start at the cut (the π0 Dalitz pairs dominate below the π0 mass)."""
    res = select(cfg_for(tmp_path, [ee_file], input={"lepton": "e"}))
    df = res.pairs
    assert len(df) > 1000
    assert df["m"].min() >= 0.02
    os_ = df[df["charge"] == 0]
    assert (os_["channel"] == 8).mean() > 0.5  # PI0_DALITZ_EE


def test_electrons_asked_on_a_muon_file(tmp_path):
    path = tmp_path / "mu.root"
    generate_file(AnalysisConfig(seed=1, mock=MockConfig(efficiency_map=None)), path, events=5000)
    with pytest.raises(InputError, match=r"input.lepton is 'e' but the file holds only muon"):
        select(cfg_for(tmp_path, [path], input={"lepton": "e"}))


def test_mass_inconsistent_with_flavour(ee_file, tmp_path):
    """Electron branches read as muons (input.branches) and a mass branch of the wrong flavour:
    one InputError naming the flavour."""
    cols = {k: f"electron_{k}" for k in ("px", "py", "pz", "E", "charge")}
    with pytest.raises(InputError, match="electron mass"):
        select(cfg_for(tmp_path, [ee_file], input={"lepton": "mu", "branches": cols}))
    nano = tmp_path / "nano.root"
    lep = ak.zip(
        {
            "pt": ak.Array([[1.0, 1.0]]),
            "eta": ak.Array([[0.0, 0.0]]),
            "phi": ak.Array([[0.0, np.pi]]),
            "mass": ak.Array([[M_MU, M_MU]]),
            "charge": ak.values_astype(ak.Array([[1, -1]]), np.int32),
        }
    )
    with uproot.recreate(nano) as f:
        f.mktree("Events", {"Electron": lep.type})
        f["Events"].extend({"Electron": lep})
    over = {"input": {"lepton": "e", "layout": "jagged_ptetaphi", "tree": "Events"}}
    with pytest.raises(InputError, match=r"Electron_mass.*inconsistent with input\.lepton 'e'"):
        select(cfg_for(tmp_path, [nano], **over))


def test_mixed_flavour_pairs(tmp_path):
    """One lepton collection with a muon and an electron per event: refused."""
    path = tmp_path / "mixed.root"
    m = np.array([M_MU, M_E] * 3)
    e = np.linspace(5.0, 10.0, 6)
    pz = np.sqrt(e**2 - m**2)
    counts = np.full(3, 2)
    lep = ak.zip(
        {
            "px": ak.unflatten(np.zeros(6), counts),
            "py": ak.unflatten(np.zeros(6), counts),
            "pz": ak.unflatten(pz, counts),
            "E": ak.unflatten(e, counts),
            "charge": ak.unflatten(np.array([1, -1] * 3, dtype=np.int32), counts),
        }
    )
    with uproot.recreate(path) as f:
        f.mktree("events", {"electron": lep.type})
        f["events"].extend({"electron": lep})
    with pytest.raises(InputError, match="mixed-flavour"):
        select(cfg_for(tmp_path, [path], input={"lepton": "e"}))


def test_flavour_probes_run_where_the_executor_maps_them(ee_file, tmp_path):
    """The flavour probes run in the input check's task of each file (on a parallel executor
    its workers, not a serial loop on the driver), or through check_flavour's own map; the
    error names the first bad file in the input's order either way, as the serial check."""
    import shutil
    from concurrent.futures import ThreadPoolExecutor
    from functools import partial

    from gammastar.selection.flavour_check import check_flavour, flavour_probe

    files = [tmp_path / "a.root", tmp_path / "b.root"]
    for f in files:
        shutil.copyfile(ee_file, f)
    cols = {k: f"electron_{k}" for k in ("px", "py", "pz", "E", "charge")}
    cfg = cfg_for(tmp_path, files, input={"lepton": "mu", "branches": cols})
    bmap = io.branch_map(cfg.input.layout, cfg.input.branches, cfg.input.lepton)
    checked = io.check_inputs(io.fileset_from_config(cfg, None), bmap)
    mapped = []

    def pool_map(fn, items):
        items = list(items)
        mapped.extend(p for p, _ in items)
        with ThreadPoolExecutor(2) as pool:
            return list(pool.map(fn, items))

    with pytest.raises(InputError, match=r"a\.root: the leptons have the electron mass"):
        check_flavour(checked, "mu", map_files=pool_map)
    assert mapped == [str(f) for f in files]
    with pytest.raises(InputError, match=r"a\.root: the leptons have the electron mass"):
        check_flavour(checked, "mu")  # the serial check: the same line
    # probed in the check's tasks (mapped as the executor maps them): no second pass
    mapped.clear()
    probed = io.check_inputs(
        io.fileset_from_config(cfg, None), bmap, map_files=pool_map,
        probe=partial(flavour_probe, cfg.input.layout),
    )  # fmt: skip
    assert mapped == [str(f) for f in files]
    assert all(probed.probes[str(f)]["e"] > 0 for f in files)
    with pytest.raises(InputError, match=r"a\.root: the leptons have the electron mass"):
        check_flavour(probed, "mu", map_files=pool_map)
    assert mapped == [str(f) for f in files]  # the check's own map only


def test_chunks_count_the_flavours_of_the_first_entries(ee_file):
    """The selection's chunks that read a file's first PROBE_ENTRIES entries count their
    leptons' flavours (chunk_flavours, with the branch precision that precision_probe reads
    from the metadata); over the chunks they add up to the check's own read of those entries
    (file_flavours): integer counts of the same values with the same tolerance, so equal."""
    from collections import Counter

    from gammastar.selection.flavour_check import (
        PROBE_ENTRIES,
        chunk_flavours,
        file_flavours,
        precision_probe,
    )

    cols = {k: f"electron_{k}" for k in ("px", "py", "pz", "E", "charge")}
    want = file_flavours(str(ee_file), "events", cols, "jagged_cartesian")
    eps = precision_probe("jagged_cartesian", str(ee_file), "events", cols)
    with uproot.open(ee_file) as f:
        n = f["events"].num_entries
        arrays = f["events"].arrays(list(cols.values()), how=dict)
    # the precision of the stored energies' type (the branch's metadata, no basket read)
    stored = ak.to_numpy(ak.flatten(arrays["electron_E"])).dtype
    assert eps == {"E": float(np.finfo(stored).eps)}
    step = max(1, min(n, PROBE_ENTRIES) // 3)  # several chunks inside the probed entries
    got: Counter[str] = Counter()
    for start in range(0, n, step):
        stop = min(n, start + step)
        part = {c: arrays[b][start:stop] for c, b in cols.items()}
        counts = chunk_flavours(part, "jagged_cartesian", eps, start, stop)
        assert (counts is None) == (start >= PROBE_ENTRIES)
        got.update(counts or {})
    assert dict(got) == want
    assert want["e"] > 0  # the ee mock's electrons
    assert want["mu"] == 0
    part = {c: arrays[b][:1] for c, b in cols.items()}
    assert chunk_flavours(part, "jagged_cartesian", eps, PROBE_ENTRIES, PROBE_ENTRIES + 1) is None


@pytest.mark.parametrize("executor", ["iterative", pytest.param("futures", marks=pytest.mark.slow)])
def test_flavour_refused_from_the_chunks_counts(ee_file, tmp_path, executor):
    """The flavour check of a selection takes the chunks' counts (small chunks: several of
    them in the first entries, on every executor): electrons read as muons are refused with
    the check's line, and nothing is written."""
    from gammastar.selection.executors import Execution

    cols = {k: f"electron_{k}" for k in ("px", "py", "pz", "E", "charge")}
    cfg = cfg_for(tmp_path, [ee_file], input={"lepton": "mu", "branches": cols})
    with pytest.raises(InputError, match=r"ee\.root: the leptons have the electron mass"):
        select(cfg, execution=Execution(executor, workers=2, chunksize=400))
    assert not (tmp_path / "run" / "select.json").exists()


def test_flavour_refused_at_the_first_chunks_of_a_file(ee_file, tmp_path, monkeypatch):
    """A wrong input.lepton is refused as soon as the chunks of a file's first PROBE_ENTRIES
    entries are in, not after the whole input: with chunks of 5000 entries the first file's
    first entries are several chunks, and no chunk after them (of that file, or of the
    second file) is processed; the line names the file and nothing is written."""
    import shutil

    from gammastar.selection.executors import Execution
    from gammastar.selection.executors.processor import DileptonProcessor, chunk_items
    from gammastar.selection.flavour_check import PROBE_ENTRIES

    files = [tmp_path / "a.root", tmp_path / "b.root"]
    for f in files:
        shutil.copyfile(ee_file, f)
    seen: list[tuple[str, int]] = []
    process_item = DileptonProcessor.process_item

    def counted(self, item):
        seen.append((item.filename, item.entrystart))
        return process_item(self, item)

    monkeypatch.setattr(DileptonProcessor, "process_item", counted)
    cols = {k: f"electron_{k}" for k in ("px", "py", "pz", "E", "charge")}
    cfg = cfg_for(tmp_path, files, input={"lepton": "mu", "branches": cols})
    with pytest.raises(InputError, match=r"a\.root: the leptons have the electron mass"):
        select(cfg, execution=Execution("iterative", chunksize=5000))
    # the chunks that read a.root's first PROBE_ENTRIES entries, and only those
    with uproot.open(files[0]) as f:
        n = f["events"].num_entries
    paths = [str(f) for f in files]
    items = chunk_items({"d": {"files": dict.fromkeys(paths, "events")}},
                        dict.fromkeys(paths, n), 5000)  # fmt: skip
    probed = [(i.filename, i.entrystart) for i in items
              if i.filename == paths[0] and i.entrystart < PROBE_ENTRIES]  # fmt: skip
    assert 1 < len(probed) < len(items)  # several chunks in the first entries, more after
    assert seen == probed
    assert not (tmp_path / "run" / "select.json").exists()
