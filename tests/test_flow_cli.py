"""`gammastar train / sample / validate` on a synthetic pairs table in a run directory."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from test_flow import synthetic_pairs

from gammastar.cli import main

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    (tmp / "run").mkdir()
    synthetic_pairs(5000, seed=2).to_parquet(tmp / "run" / "pairs.parquet")
    cfg = tmp / "a.yaml"
    cfg.write_text(
        "name: cli\noutput: run\nseed: 3\n"
        "beam: {energy: 400.0, interaction_lengths: 0.01}\nunfold: {efficiency_map: null}\n"
        "flow: {transforms: 2, bins: 6, hidden_features: [16], epochs: 3,"
        " points_per_epoch: 4000, batch_size: 1000}\n"
        "validate: {masses: [0.3, 0.5], repeats: 3, figure_masses: [0.4]}\n"
    )
    assert main(["train", str(cfg)]) == 0
    return tmp, cfg


def test_train_outputs_and_refusal(run, capsys):
    tmp, cfg = run
    assert (tmp / "run" / "flow" / "model.pt").exists()
    assert main(["train", str(cfg)]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["train", str(cfg), "--resume"]) == 0  # finished checkpoint: same model


def test_sample_aprime_and_mcp(run, capsys):
    tmp, cfg = run
    out = tmp / "a.parquet"
    assert main(["sample", str(cfg), "--mass", "0.5", "-n", "1000", "-o", str(out)]) == 0
    t = pq.read_table(out)
    assert t.num_rows == 1000
    assert {"qT", "E", "px", "py", "pz", "weight"} <= set(t.column_names)
    meta = json.loads(t.schema.metadata[b"gammastar"])
    assert meta["mass"] == 0.5
    assert meta["seed"] == 3
    out2 = tmp / "chi.root"
    rc = main(["sample", str(cfg), "--mcp-mass", "0.15", "-n", "500", "-o", str(out2)])
    assert rc == 0
    import uproot

    with uproot.open(out2) as f:
        m = f["samples"]["m_gstar"].array(library="np")
        assert np.all(m >= 0.3)
    # errors: one line, exit status 2
    assert main(["sample", str(cfg), "--mass", "5", "-n", "10", "-o", str(tmp / "x.parquet")]) == 2
    err = capsys.readouterr().err
    assert "outside the trained range" in err
    assert "Traceback" not in err
    rc = main(
        [
            "sample",
            str(cfg),
            "--mass",
            "5",
            "-n",
            "10",
            "-o",
            str(tmp / "x.parquet"),
            "--extrapolate",
        ]
    )
    assert rc == 0
    assert main(["sample", str(cfg), "-n", "10", "-o", str(tmp / "y.parquet")]) == 2


def test_validate_command(run, monkeypatch):
    from _phys_figures import skip_plot

    tmp, cfg = run
    # the command and its validation.json; the figures: test_validate.py's closure test
    kl = skip_plot(monkeypatch, "gammastar.flow.validate.plot_kl")
    kin = skip_plot(monkeypatch, "gammastar.flow.validate.plot_kinematics")
    assert main(["validate", str(cfg)]) == 0
    assert (len(kl), len(kin)) == (1, 1)
    res = json.loads((tmp / "run" / "validation.json").read_text())
    assert res["mass"] == [0.3, 0.5]
    assert len(res["kl_data_95"]) == 2
