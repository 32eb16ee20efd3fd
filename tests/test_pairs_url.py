"""The parallel selection's pair dataset at an fsspec URL (``selection.pairs_url``): the workers
write their parts there, ``select.json`` ``pairs_url`` records it, the stages read the pairs
from there, and the dataset is the one the run directory would hold, byte for byte."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from _experiment import stated_config, stated_yaml
from _select_data import write_effmap, write_mock

from gammastar.core import rundir
from gammastar.errors import ConfigError, OutputExistsError
from gammastar.flow.data import read_pairs
from gammastar.selection.executors import Execution
from gammastar.selection.stage import select

# binwise like-sign factors (the default) and the η → μμ rate scale: the parts are rewritten by
# the second pass too (tests/test_scaleout.py's settings)
BACKGROUND = {"ss_weight": "binwise", "remove_eta_mumu": "rate", "r_factor": 1.3,
              "eta_dalitz_window": [0.45, 0.52]}  # fmt: skip


def _cfg(tmp_path, out, pairs_url=None):
    write_effmap(tmp_path / "eff.root", np.random.default_rng(0).uniform(0.3, 0.9, (20, 10)))
    files = [tmp_path / "b.root", tmp_path / "a.root"]
    if not files[0].exists():
        write_mock(files[0], 30)
        write_mock(files[1], 20, event_offset=10_000)
    selection = {} if pairs_url is None else {"pairs_url": pairs_url}
    return stated_config(
        {
            "output": str(tmp_path / out),
            "input": {"files": [str(f) for f in files], "step_size": 60},
            "selection": selection,
            "unfold": {"efficiency_map": str(tmp_path / "eff.root")},
            "background": BACKGROUND,
        },
        source=str(tmp_path / "c.yaml"),
    )


def _parallel(cfg, executor="dask", shared_staging=True, **kw):
    # Dask on threads: the workers' code without the process pool's start-up
    ex = Execution(executor, workers=2, dask_processes=False, shared_staging=shared_staging)
    return select(cfg, execution=ex, **kw)


@pytest.mark.parametrize(
    "executor",
    ["dask", pytest.param("futures", marks=pytest.mark.slow)],  # futures: its pool's start-up
)
def test_dataset_at_a_file_url_is_the_run_directory_one(tmp_path, executor):
    """The default (``pairs.parquet/`` in the run directory) against ``selection.pairs_url`` =
    a ``file://`` URL outside it: the same part names with the same bytes (each part is
    encoded by the same code from the same chunk, whichever executor runs it; exact on
    purpose, as tests/test_scaleout.py), ``select.json`` naming the URL, no ``pairs.parquet``
    and no staged parts left behind, and every reader (the run directory's, the flow's, the
    selection result's) giving the default's table."""
    ref = _parallel(_cfg(tmp_path, "default"))
    remote = tmp_path / "remote" / "run1"
    url = f"file://{remote}/pairs.parquet/"
    cfg = _cfg(tmp_path, "url", url)
    res = _parallel(cfg, executor)

    local = ref.files[rundir.PAIRS]
    parts = sorted(p.name for p in local.iterdir())
    assert parts
    assert all(p.startswith("part-") for p in parts)
    assert sorted(p.name for p in (remote / "pairs.parquet").iterdir()) == parts
    for name in parts:
        assert (remote / "pairs.parquet" / name).read_bytes() == (local / name).read_bytes(), name
    assert sorted(p.name for p in remote.iterdir()) == ["pairs.parquet"]  # staging removed
    assert not (cfg.output_dir / rundir.PAIRS).exists()
    assert not [p for p in cfg.output_dir.iterdir() if p.name.startswith(".")]

    doc = json.loads((cfg.output_dir / rundir.SELECT).read_text())
    assert doc["pairs_url"] == url
    assert "pairs_url" not in json.loads((ref.output_dir / rundir.SELECT).read_text())
    rundir.RunDir(cfg.output_dir).check()  # select.json with pairs_url against its schema

    table = pd.read_parquet(local)
    rd = rundir.RunDir(cfg.output_dir)
    assert rd.pairs_location() == url
    assert rd.has_pairs()
    assert rd.read_pairs().equals(table)
    assert rd.read_pairs(["m", "weight"]).equals(table[["m", "weight"]])
    flow_pairs, where = read_pairs(cfg)  # the flow's (and the events' spectrum's) reader
    assert where == url
    assert flow_pairs.equals(table)
    assert res.pairs.equals(table)
    # a rerun with force replaces the dataset at the URL (and leaves nothing else there); the
    # parts sent to the driver as bytes (--no-shared-staging) are written there by the driver
    _parallel(cfg, executor, shared_staging=False, force=True)
    assert sorted(p.name for p in remote.iterdir()) == ["pairs.parquet"]
    for name in parts:
        assert (remote / "pairs.parquet" / name).read_bytes() == (local / name).read_bytes(), name
    assert rd.read_pairs().equals(table)


def test_yields_read_the_pairs_at_the_url(tmp_path):
    """The yields stage reads ``pairs.parquet`` through ``select.json`` ``pairs_url``: with the
    pairs moved to a URL (the run directory's dataset moved there, the record added) it
    records the URL among its inputs and gives the yields it gives with the run directory's."""
    from gammastar.yields.stage import compute_yields

    cfg = _cfg(tmp_path, "run")
    ref_cfg = cfg.model_copy(update={"beam": cfg.beam.model_copy(update={"n_pot": 1e12})})
    select(ref_cfg)  # iterative: one file; the reader does not care how it was written
    compute_yields(ref_cfg, plots=False, theory=False)
    ref = json.loads((ref_cfg.output_dir / rundir.YIELDS).read_text())
    # the same run with its pairs at a URL
    remote = tmp_path / "remote" / "pairs.parquet"
    remote.parent.mkdir()
    (ref_cfg.output_dir / rundir.PAIRS).rename(remote)
    sel = ref_cfg.output_dir / rundir.SELECT
    doc = json.loads(sel.read_text())
    sel.write_text(json.dumps({**doc, "pairs_url": f"file://{remote}"}))
    compute_yields(ref_cfg, force=True, plots=False, theory=False)
    got = json.loads((ref_cfg.output_dir / rundir.YIELDS).read_text())
    assert f"file://{remote}" in [i["path"] for i in got["meta"]["inputs"]]
    for key in ("aprime", "mcp"):
        assert got[key] == ref[key], key


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("nope://bucket/pairs.parquet/", "unknown protocol 'nope'"),
        ("/data/run/pairs.parquet", "is not a URL"),
    ],
)
def test_a_bad_url_is_one_line_naming_the_key(tmp_path, url, says):
    with pytest.raises(ConfigError) as err:
        _cfg(tmp_path, "bad", url)
    msg = str(err.value)
    assert "selection.pairs_url" in msg
    assert says in msg
    assert "\n" not in msg


def test_a_url_needs_the_parallel_selection(tmp_path):
    """The iterative executor writes one table in the run directory: a URL is refused, naming
    the key, before anything is written."""
    cfg = _cfg(tmp_path, "it", f"file://{tmp_path}/remote/pairs.parquet/")
    with pytest.raises(ConfigError, match=r"selection\.pairs_url: .*futures or dask"):
        select(cfg)
    assert not (tmp_path / "remote").exists()
    assert not (cfg.output_dir / rundir.SELECT).exists()


def test_a_rerun_refuses_an_existing_dataset(tmp_path):
    """An existing dataset at the URL is refused without ``force`` (as the run directory's
    outputs are), before any chunk is processed; a fresh run directory does not change that."""
    remote = tmp_path / "remote" / "pairs.parquet"
    remote.mkdir(parents=True)
    (remote / "part-000000-000000000000.parquet").write_bytes(b"earlier run")
    cfg = _cfg(tmp_path, "again", f"file://{remote}/")
    refused = re.escape(f"file://{remote}/: output exists already")
    with pytest.raises(OutputExistsError, match=refused):
        _parallel(cfg)
    assert (remote / "part-000000-000000000000.parquet").read_bytes() == b"earlier run"
    assert not (cfg.output_dir / rundir.SELECT).exists()


def test_cli_option_bad_url_is_one_line(tmp_path, capsys):
    """``gammastar select --pairs-url`` checks the URL as the config key is checked: a bad one
    is one line naming the option, exit status 2, before any input is read."""
    from gammastar.cli import main

    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        stated_yaml(f"output: {tmp_path / 'out'}\ninput:\n  files: [{tmp_path / 'none.root'}]\n")
    )
    rc = main(["select", str(cfg), "--executor", "futures", "--pairs-url", "nope://b/p/"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert "--pairs-url: unknown protocol 'nope'" in err
    assert "\n" not in err
