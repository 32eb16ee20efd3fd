"""The run report: numbers and figures of a synthetic run directory, the summary at the top
(its numbers as the documents hold them, its verdicts and warnings), partial runs, escaping,
and a headless-Chromium render of the page copied alone (every embedded figure loads, every
table fits its column at 1300 px), with a negative control.

The synthetic artifacts copy the key layouts of the writers (select.py, yields.py, flow.py,
validate.py, reach.py, mock/generate.py); their numbers are arbitrary markers that the report
must show verbatim.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import hist
import numpy as np
import pytest
import uproot

from gammastar.cli import main
from gammastar.config import load_config
from gammastar.core.artifacts import make_meta, write_json
from gammastar.errors import GammastarError
from gammastar.report import build_report
from gammastar.report.reading import find_figures
from gammastar.selection.chunk import CUTFLOW_KEYS

FIGURES = (
    "figures/mock_mass.png",
    "figures/yields_aprime.png",
    "figures/flow_kl.png",
    "figures/reach.png",
    "figures/my_extra_plot.png",
    "flow/loss.png",
)

CONFIG_YAML = """\
# test analysis <script>alert("config")</script>
schema_version: 1
name: report_test
output: {output}
seed: 777
mock:
  events: 1000
  efficiency_map: null
input:
  tree: "<script>alert(1)</script>"
"""


@pytest.fixture(scope="module")
def png_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A real (small) matplotlib PNG."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot([0, 1], [0, 1])
    path = tmp_path_factory.mktemp("png") / "x.png"
    fig.savefig(path, dpi=40)
    plt.close(fig)
    return path.read_bytes()


def _config(tmp_path: Path, run: Path):
    cfg_path = tmp_path / "analysis.yaml"
    cfg_path.write_text(CONFIG_YAML.format(output=run))
    return load_config(cfg_path)


def _meta(seed: int | None, **extra):
    return make_meta(config_sha256="ab" * 32, seed=seed, **extra)


def write_full_run(run: Path, png: bytes) -> None:
    """Every artifact a full run writes, with marker numbers."""
    run.mkdir(parents=True, exist_ok=True)
    # mock.root: meta JSON as a TObjString (mock/generate.py)
    meta = _meta(
        4242,
        generator="gammastar-mock",
        n_pot=1.2345e11,
        n_generated={"ETA_DALITZ": 700, "OMEGA_MUMU": 200, "COMBINATORIAL": 100},
        n_generated_total=1000,
        n_events_written=321,
        n_truth=250,
        events=1000,
        pdg_edition="2024",
    )
    with uproot.recreate(run / "mock.root") as f:
        f["meta"] = json.dumps(meta)
    # select.json (select.py)
    cutflow = {k: 0 for k in CUTFLOW_KEYS}
    cutflow.update(events=321, leptons=700, pairs=555, pairs_mass=500, os=311, pp=97, mm=88)
    write_json(
        run / "select.json",
        {
            "meta": _meta(None, stage="select", layout="jagged_cartesian", r_factor=1.0),
            "counts": {
                "events": 321,
                "os": 311,
                "pp": 97,
                "mm": 88,
                "comb_estimate": 184.77,
                "comb_estimate_err": 13.5,
                "signal": 126.23,
                "signal_err": 21.0,
                "unfolded": 987.6,
                "unfolded_err": 55.0,
            },
            "cutflow": cutflow,
            "unfold": {"map": "eff.root", "n_pairs": 496, "n_outside_map": 0},
            "eta_mumu": {"mode": "truth", "pairs_removed": 3},
            "bad_files": {},
            "elapsed_s": 1.5,
        },
    )
    h = hist.Hist(hist.axis.Regular(10, 0.2113, 1.1, name="m"), storage=hist.storage.Weight())
    h.fill(m=[0.3, 0.5, 0.7], weight=[1.0, 2.0, 3.0])
    with uproot.recreate(run / "histograms.root") as f:
        f["os_m"] = h
        f["unfolded_m"] = h
    # yields.json (yields.py)
    mass = np.linspace(0.25, 1.05, 12)
    y = 1e-6 * (1 + np.arange(12))
    y[3] = 3.1415e-5  # a marker in the short table (_pick(12, 8) includes index 3)
    flags = [[] for _ in mass]
    flags[0] = ["near_threshold"]
    write_json(
        run / "yields.json",
        {
            "aprime": {
                "mass": mass,
                "per_pot_per_eps2": y,
                "stat_err": 0.1 * y,
                "bkg_sub_err": 0.05 * y,
                "bin_edges": np.linspace(0.21, 1.1, 13),
                "flags": flags,
                "source": "pairs",
            },
            "mcp": {
                "mass": [0.01, 0.1, 0.3],
                "per_pot_per_q2": [2.7182e-4, 1e-4, 1e-5],
                "stat_err": [1e-6, 1e-6, 1e-7],
                "flags": [["below_data_range"], [], []],
                "source": "pairs",
            },
            "meta": _meta(None, stage="yields", n_pot=1.2345e11, n_pot_source="input: mock"),
        },
    )
    # flow (flow.py)
    fmeta = _meta(31, n_train_rows=4096, epochs_run=7, best_epoch=6, best_val_loss=1.2468)
    write_json(
        run / "flow" / "meta.json",
        {
            "format": "gammastar-flow",
            "format_version": 1,
            "architecture": {"transforms": 8, "bins": 6},
            "mass_range": [0.2113, 1.1],
            "model_sha256": "cd" * 32,
            "meta": fmeta,
        },
    )
    write_json(
        run / "flow" / "history.json",
        {"train": [2.0, 1.5, 1.3], "val": [2.1, 1.6, 1.2468], "lr": [1e-3] * 3, "meta": fmeta},
    )
    # validation.json (validate.py): the second window fails (KL above the 95 % band)
    write_json(
        run / "validation.json",
        {
            "mass": [0.3, 0.5, 0.7],
            "kl_model": [0.011, 0.5, 0.02],
            "kl_data_68": [[0.005, 0.015], [0.004, 0.012], [0.006, 0.018]],
            "kl_data_95": [[0.002, 0.02], [0.001, 0.03], [0.003, 0.025]],
            "kl_model_std": [0.002, 0.01, 0.003],
            "n_data": [5000, 4000, 3000],
            "meta": _meta(55, k=2, window=0.03, repeats=50),
        },
    )
    # acceptance.npz and reach.json (reach.py)
    eps = np.logspace(-8, -3, 5)
    with open(run / "acceptance.npz", "wb") as f:
        np.savez(f, mass=np.array([0.3, 0.6]), eps=eps, acceptance=np.full((2, 5), 0.0123))
    band = {"mass": [0.3, 0.6], "eps_low": [1.111e-7, None], "eps_high": [2.222e-5, None]}
    wide = {"mass": [0.3, 0.6], "eps_low": [5.5e-8, 7.7e-7], "eps_high": [4.4e-5, 8.8e-6]}
    write_json(
        run / "reach.json",
        {
            "cl": 0.9,
            "expected": band,
            "bands": {"-2": band, "-1": band, "+1": wide, "+2": wide},
            "signal_limit": {"mass": [0.3, 0.6], "method": ["exact", None]},
            "meta": _meta(12345, stage="reach", method="exact", channels=["mumu"], n_pot=1e18),
        },
    )
    write_json(
        run / "workspaces" / "index.json",
        {"workspaces": [{"mass": 0.3, "file": "workspaces/m_0.30000.json"}], "meta": _meta(1)},
    )
    for rel in FIGURES:
        (run / rel).parent.mkdir(parents=True, exist_ok=True)
        (run / rel).write_bytes(png)


def _figures(page: str) -> list[str]:
    """The run-directory paths of the figures in ``page`` (each caption ends with it)."""
    return re.findall(r"\(([\w/.-]+\.png)\)</figcaption>", page)


def _section(page: str, ident: str) -> str:
    m = re.search(rf'<section id="{ident}">(.*?)</section>', page, re.DOTALL)
    assert m, f"no section {ident}"
    return m.group(1)


# --------------------------------------------------------------------------- unit
def test_full_run_numbers_and_figures(tmp_path: Path, png_bytes: bytes) -> None:
    run = tmp_path / "run"
    write_full_run(run, png_bytes)
    path = build_report(_config(tmp_path, run)).path
    assert path == run / "report.html"
    page = path.read_text()
    # provenance: versions, config hash, seeds of every artifact
    for pkg in ("numpy", "uproot", "awkward", "vector", "hist", "torch", "zuko", "pyhf", "dask"):
        assert f"<td>{pkg}</td>" in page
    import hashlib

    text = (tmp_path / "analysis.yaml").read_text()
    assert hashlib.sha256(text.encode()).hexdigest() in page
    seeds = _section(page, "run")
    for seed in ("4,242", "31", "55", "12,345"):
        assert f"<td>{seed}</td>" in seeds
    # one number per stage, as written
    assert "1.2345e+11" in _section(page, "mock")
    assert "OMEGA_MUMU" in _section(page, "mock")
    sel = _section(page, "selection")
    assert "<td>311</td>" in sel
    assert "<td>97</td>" in sel
    assert "<td>88</td>" in sel
    assert "184.8 ± 14" in sel  # comb estimate ± error
    assert "pairs in the mass window" in sel
    assert "os_m" in _section(page, "spectra")
    yl = _section(page, "yields")
    assert "3.1415e-05" in yl
    assert "2.7182e-04" in yl
    assert "near_threshold" in yl
    fl = _section(page, "flow")
    assert "4,096" in fl
    assert "1.2468" in fl
    val = _section(page, "validation")
    assert "2 of 3 mass windows pass" in val
    assert val.count('class="pass"') == 2
    assert val.count('class="fail"') == 1
    assert "0.0123" in _section(page, "acceptance")
    rc = _section(page, "reach")
    assert "1.111e-07" in rc
    assert "2.222e-05" in rc
    assert "not excluded" in rc
    assert "exact" in rc
    assert "90 % CLs" in rc
    assert "7.70e-07 – 8.80e-06" in rc  # the +1σ band at the second mass
    assert "not run" not in page
    # figures: embedded (the PNG's bytes as a data: URI), placed by name, nothing loaded
    # from beside the page: every src is a data: URI and every link an anchor of the page
    assert sorted(_figures(page)) == sorted(FIGURES)
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)" alt="([^"]+)"', page)
    assert len(images) == len(FIGURES)
    for data, alt in images:
        assert base64.b64decode(data) == png_bytes
        assert alt
    assert all(src.startswith("data:") for src in re.findall(r'src="([^"]*)"', page))
    assert all(href.startswith("#") for href in re.findall(r'href="([^"]*)"', page))
    assert _figures(_section(page, "mock")) == ["figures/mock_mass.png"]
    assert _figures(_section(page, "validation")) == ["figures/flow_kl.png"]
    assert _figures(_section(page, "flow")) == ["flow/loss.png"]
    assert _figures(_section(page, "summary")) == ["figures/reach.png"]  # at the top, only there
    assert _figures(_section(page, "reach")) == []
    assert _figures(_section(page, "other")) == ["figures/my_extra_plot.png"]
    assert 'id="gammastar-selfcheck"' in page
    assert "http://" not in page
    assert "https://" not in page


def test_a_file_that_is_not_a_png_is_a_warning_not_an_image(tmp_path: Path, png_bytes: bytes):
    run = tmp_path / "run"
    write_full_run(run, png_bytes)
    (run / "figures" / "my_extra_plot.png").write_bytes(b"GIF89a not a png")
    page = build_report(_config(tmp_path, run)).path.read_text()
    other = _section(page, "other")
    assert "figures/my_extra_plot.png is not a valid PNG file" in other
    assert "<img" not in other
    assert page.count("<img") == len(FIGURES) - 1


def test_partial_run_says_not_run(tmp_path: Path, png_bytes: bytes) -> None:
    run = tmp_path / "run"
    write_full_run(run, png_bytes)
    for name in ("yields.json", "validation.json", "reach.json", "acceptance.npz"):
        (run / name).unlink()
    shutil.rmtree(run / "flow")
    (run / "select.json").write_text("{not json")  # bad JSON: a warning, not an exception
    page = build_report(_config(tmp_path, run)).path.read_text()
    for ident in ("yields", "flow", "validation", "acceptance", "reach"):
        assert "not run" in _section(page, ident), ident
    assert "not run" not in _section(page, "mock")
    sel = _section(page, "selection")
    assert 'class="warn"' in sel
    assert "select.json: not a readable JSON" in sel  # one line naming the file
    # figures still shown where they belong; the missing flow/loss.png is not referenced
    assert "figures/yields_aprime.png" in _figures(_section(page, "yields"))
    assert "flow/loss.png" not in page


def test_empty_run_dir_and_missing_dir(tmp_path: Path) -> None:
    run = tmp_path / "empty"
    run.mkdir()
    page = build_report(_config(tmp_path, run)).path.read_text()
    for ident in ("mock", "selection", "spectra", "yields", "flow", "reach"):
        assert "not run" in _section(page, ident)
    assert find_figures(run) == []
    assert "<img" not in page
    with pytest.raises(GammastarError, match="run directory not found"):
        build_report(_config(tmp_path, tmp_path / "nowhere"))


def test_html_escaping(tmp_path: Path, png_bytes: bytes) -> None:
    run = tmp_path / "run"
    write_full_run(run, png_bytes)
    # hostile text inside an artifact too
    doc = json.loads((run / "select.json").read_text())
    doc["bad_files"] = {"<img src=x onerror=alert(2)>.root": "<b>broken</b>"}
    (run / "select.json").write_text(json.dumps(doc))
    page = build_report(_config(tmp_path, run)).path.read_text()
    assert "<script>alert" not in page
    assert "<img src=x" not in page
    assert "<b>broken" not in page
    assert "&lt;script&gt;alert(&quot;config&quot;)&lt;/script&gt;" in page  # YAML comment
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # a config value
    assert "&lt;img src=x onerror=alert(2)&gt;.root" in page
    assert page.count("<script>") == 1  # only the self-check


def test_cli_report(tmp_path: Path, png_bytes: bytes, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    write_full_run(run, png_bytes)
    cfg = tmp_path / "analysis.yaml"
    cfg.write_text(CONFIG_YAML.format(output=tmp_path / "elsewhere"))
    assert main(["report", str(cfg), "--output", str(run)]) == 0
    path = run / "report.html"
    # the page's size printed with its path: 1024-based units, 1 decimal
    printed = re.search(rf"report: {re.escape(str(path))} \((\d+\.\d) (kB|MB)\)",
                        capsys.readouterr().out)  # fmt: skip
    assert printed, "the report's path and size"
    scale = {"kB": 1024, "MB": 1024**2}[printed.group(2)]
    assert float(printed.group(1)) == pytest.approx(path.stat().st_size / scale, abs=0.05)
    assert main(["report", str(cfg)]) == 2  # the config's run directory does not exist


# --------------------------------------------------------------------------- summary
def _write(run: Path, name: str, doc: dict) -> None:
    (run / name).unlink(missing_ok=True)
    write_json(run / name, doc)


def _demo_like_reach(run: Path) -> dict:
    """reach.json on 7 masses, excluded at masses 1–5 (zero background: the bands are the
    median), with a flow closure whose trusted pull at 0.5 GeV is 4.2σ."""
    mass = [0.22, 0.3, 0.4, 0.5, 0.65, 0.8, 1.0]  # inside the yields' bins (0.21–1.1)
    lo = [None, 1.2345e-9, 2.5e-9, 3.75e-9, 5.5e-9, 7.125e-9, None]
    hi = [None, 9.8765e-5, 4.4e-5, 2.2e-5, 1.1e-5, 5.5e-6, None]
    band = {"mass": mass, "eps_low": lo, "eps_high": hi}
    pull = {"ratio": 1.3, "ratio_err": 0.07, "pull": 4.2, "carriers": 800.0}
    few = {"ratio": 2.0, "ratio_err": 0.1, "pull": 10.0, "carriers": 5.0}  # untrusted
    doc = {
        "cl": 0.9,
        "expected": band,
        "bands": {b: band for b in ("-2", "-1", "+1", "+2")},
        "signal_limit": {"mass": mass, "method": ["exact"] * 7},
        "flow_closure": {
            "points": [{"mass": 0.5, "eps_low": pull, "eps_high": few}],
            "chi2": 17.64,
            "ndf": 1,
            "max_abs_pull": 4.2,
            "chi2_carriers_min": 50.0,
        },
        "extrapolation": {
            "mode": "label",
            "model": "mT-exponential x Gaussian rapidity",
            "max_fraction_in_excluded_region": [None, 0.0, 0.1, 0.25, 0.42, 0.3, None],
        },
        "meta": _meta(12345, stage="reach", method="exact", channels=["mumu"], n_pot=1e18),
    }
    _write(run, "reach.json", doc)
    return doc


def _rows(page: str, ident: str) -> list[list[str]]:
    """The cells of the first table after the heading containing ``ident`` (text, unescaped)."""
    summary = _section(page, "summary")
    at = summary.index(ident)
    body = re.search(r"<tbody>(.*?)</tbody>", summary[at:], re.DOTALL)
    assert body, ident
    return [
        [html.unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td>(.*?)</td>", r)]
        for r in re.findall(r"<tr>(.*?)</tr>", body.group(1))
    ]


def _mass_table(page: str) -> tuple[list[str], list[list[str]]]:
    """The summary's table at 3 masses, a column per mass in the page, as (its quantities,
    a row per mass: the mass, then each quantity), text unescaped."""
    summary = _section(page, "summary")
    tab = re.search(r"at 3 masses</h3><div[^>]*><table[^>]*>(.*?)</table>", summary, re.DOTALL)
    assert tab, "no table at 3 masses"

    def text(cells: str) -> list[str]:
        return [html.unescape(re.sub(r"<[^>]+>", "", c))
                for c in re.findall(r"<t[dh]>(.*?)</t[dh]>", cells)]  # fmt: skip

    lines = [text(r) for r in re.findall(r"<tr>(.*?)</tr>", tab.group(1))]
    columns = [[line[j] for line in lines] for j in range(len(lines[0]))]
    return columns[0], columns[1:]


def _mass_rows(page: str) -> list[list[str]]:
    return _mass_table(page)[1]


def test_the_summary_comes_first_and_the_provenance_last(tmp_path: Path, png_bytes: bytes):
    run = tmp_path / "run"
    write_full_run(run, png_bytes)
    page = build_report(_config(tmp_path, run)).path.read_text()
    order = re.findall(r'<section id="([a-z]+)">', page)
    assert order[0] == "summary"
    assert order[-1] == "run"  # config, package versions, seeds, files
    assert order.index("reach") < order.index("run")
    assert "<td>numpy</td>" in _section(page, "run")  # package versions there, not before
    assert "<td>numpy</td>" not in page.split('<section id="run">')[0]
    assert _figures(page)[0] == "figures/reach.png"  # the reach plot on top
    nav = re.findall(r'<li><a class="[^"]*" href="#([a-z]+)"|<li><a href="#([a-z]+)"', page)
    links = [a or b for a, b in nav]
    assert links[0] == "summary"
    assert links[-1] == "run"


def test_the_summary_numbers_are_the_documents(tmp_path: Path, png_bytes: bytes):
    """The excluded range, the ε band at the lowest, middle and highest excluded mass, and the
    A′ yield per POT per ε² of the yields' bin holding each, as reach.json and yields.json
    hold them."""
    run = tmp_path / "run"
    write_full_run(run, png_bytes)
    reach = _demo_like_reach(run)
    ylds = json.loads((run / "yields.json").read_text())
    page = build_report(_config(tmp_path, run)).path.read_text()
    summary = _section(page, "summary")
    exp = reach["expected"]
    # excluded at masses 1..5 of 7: from 0.3 to 0.8 GeV, ε from min(eps_low) to max(eps_high)
    assert "m_A′ from 0.3 to 0.8 GeV (5 of 7 scanned masses)" in summary
    assert f"ε from {min(v for v in exp['eps_low'] if v):.3e}" in summary
    assert f"to {max(v for v in exp['eps_high'] if v):.3e}" in summary
    rows = _mass_rows(page)
    picked = [1, 3, 5]  # lowest, middle, highest of the excluded indices 1..5
    assert [float(r[0]) for r in rows] == pytest.approx([exp["mass"][i] for i in picked])
    ap = ylds["aprime"]
    edges = np.asarray(ap["bin_edges"])
    for r, i in zip(rows, picked, strict=True):
        assert r[1] == f"{exp['eps_low'][i]:.3e}"
        assert r[2] == f"{exp['eps_high'][i]:.3e}"
        b = int(np.searchsorted(edges, exp["mass"][i], side="right")) - 1  # bin holding m
        assert edges[b] <= exp["mass"][i] < edges[b + 1]
        assert r[3] == f"{edges[b]:.4g}–{edges[b + 1]:.4g}"
        assert float(r[4]) == pytest.approx(ap["per_pot_per_eps2"][b], rel=5e-5)  # 5 digits
        # no uncertainties block in this run: the statistical error is the one part
        total = float(r[5].removeprefix("± ").split(" (")[0])
        assert total == pytest.approx(ap["stat_err"][b], rel=5e-3)  # 3 digits
    # the marker yield of bin 3 (0.4325–0.5067 GeV) is the one shown at m = 0.5 GeV
    assert rows[1][4] == "3.1415e-05"


def test_the_summary_shows_the_whole_error_and_its_parts(tmp_path: Path, png_bytes: bytes):
    """The yield's total error at each of the 3 masses is its named parts in quadrature
    (yields.json uncertainties, meta.mock_normalisation; the reach's N_POT), each part a
    column of its relative size; a part that is 0 at every mass is left out and named, one
    that is 0 at a mass reads "—" there, and no total reads 0 where a part is not 0."""
    run = tmp_path / "run"
    write_full_run(run, png_bytes)
    reach = _demo_like_reach(run)
    reach["meta"]["n_pot_rel_uncertainty"] = 0.2
    _write(run, "reach.json", reach)
    ylds = json.loads((run / "yields.json").read_text())
    ap = ylds["aprime"]
    y = np.abs(np.asarray(ap["per_pot_per_eps2"], float))
    n = y.size
    rel = {
        "data_stat": (np.asarray(ap["stat_err"], float) / y).tolist(),
        "like_sign_r": [0.02] * n,
        "extrapolation": [0.0] * (n // 2) + [0.15] * (n - n // 2),
        "eta_mumu": [0.0] * n,
    }
    ylds["uncertainties"] = {"mass": ap["mass"], "nuisances": {k: {"rel": v} for k, v in rel.items()}}
    ylds["meta"]["mock_normalisation"] = {"rel_uncertainty": 0.3}
    _write(run, "yields.json", ylds)
    rel["mock_normalisation"], rel["n_pot"] = [0.3] * n, [0.2] * n
    page = build_report(_config(tmp_path, run)).path.read_text()
    summary = _section(page, "summary")
    headers = _mass_table(page)[0]
    shown = ["data_stat", "like_sign_r", "extrapolation", "mock_normalisation", "n_pot"]
    labels = ["stat", "background subtraction (R)", "extrapolation", "normalisation (mock)", "N_POT"]
    start = headers.index("total error")
    assert headers[start + 1 : start + 6] == labels
    assert "Parts 0 at every mass, left out: η → μμ removal." in html.unescape(summary)
    edges = np.asarray(ap["bin_edges"])
    rows = _mass_rows(page)
    for r in rows:
        b = int(np.searchsorted(edges, float(r[0]), side="right")) - 1
        parts = np.array([rel[k][b] for k in shown])
        total = float(r[start].removeprefix("± ").split(" (")[0])
        # printed with 3 digits: within half a unit of the third
        assert total == pytest.approx(np.sqrt(np.sum(parts**2)) * y[b], rel=5e-3)
        assert total > 0
        for cell, part in zip(r[start + 1 : start + 6], parts, strict=True):
            if part == 0:
                assert cell == "—"
            else:  # 2 digits, per cent
                assert float(cell.removesuffix(" %")) == pytest.approx(100 * part, rel=5e-2)
    assert {r[start + 3] for r in rows} >= {"—"}  # the low bins are not extrapolated


def test_an_exclusion_at_the_scan_edge_is_shown_as_such(tmp_path: Path, png_bytes: bytes):
    """A lower boundary at the scan's eps_min (reach.json eps_low_at_scan_edge) is where the
    scan stopped: the summary and the reach section say "≤ … (scan edge)" and warn, naming
    the mass and the key to widen; the other boundaries are shown as numbers."""
    run = tmp_path / "run"
    write_full_run(run, png_bytes)
    reach = _demo_like_reach(run)
    exp = reach["expected"]
    exp["eps_low_at_scan_edge"] = [False, True, False, False, False, False, False]
    exp["eps_high_at_scan_edge"] = [False] * 7
    _write(run, "reach.json", reach)
    page = html.unescape(build_report(_config(tmp_path, run)).path.read_text())
    summary = _section(page, "summary")
    assert "ε from ≤ 1.235e-09 (scan edge) to 9.876e-05." in summary
    reach_section = _section(page, "reach")
    assert "ε from ≤ 1.235e-09 (scan edge) to 9.876e-05" in reach_section
    assert "reaches the scan's edge reach.eps_min at m = 0.3 GeV" in reach_section
    assert "reach.eps_max" not in reach_section
    assert "≤ 2.500e-09" not in page  # the boundaries found inside the scan stay numbers


def test_the_summary_verdicts_and_every_warning(tmp_path: Path, png_bytes: bytes):
    run = tmp_path / "run"
    write_full_run(run, png_bytes)
    _demo_like_reach(run)
    ylds = json.loads((run / "yields.json").read_text())
    ylds["aprime"]["flags"][5] = ["negative"]
    ylds["lepton_universality"] = {"ratio_of": "ee/mumu", "mass": [0.3], "ratio": [1.4],
                                   "ratio_err": [0.1], "chi2": 16.0, "ndf": 1, "p_value": 6.3e-5}  # fmt: skip
    _write(run, "yields.json", ylds)
    sel = json.loads((run / "select.json").read_text())
    sel["bad_files"] = {"broken.root": "not a ROOT file"}
    _write(run, "select.json", sel)
    page = build_report(_config(tmp_path, run)).path.read_text()
    verdicts = {r[0]: r[1] for r in _rows(page, "<h3>Validation</h3>")}
    kl = verdicts["Flow vs data (k-NN KL, validation.json)"]
    assert kl.startswith("2 of 3 mass windows pass")  # 0.5 above its 95 % band (0.5 > 0.03)
    assert "m = 0.5 GeV" in kl
    closure = verdicts["Flow closure in the detector (reach.json flow_closure)"]
    assert "0.5 GeV (eps_low: +4.2σ)" in closure  # the trusted pull beyond 3σ
    assert "eps_high" not in closure  # 5 effective pairs: not trusted
    uni = verdicts["Lepton universality (ee/mumu, yields.json)"]
    assert "p = 6.3e-05" in uni
    assert "disagree" in uni
    assert verdicts["A′ yield mass bins (yields.json aprime.flags)"].startswith("1 of 12 bins")
    assert (
        "up to 42 % of N_sig"
        in verdicts["Signal outside the fiducial region (reach.json extrapolation)"]
    )
    summary = _section(page, "summary")
    warnings = re.findall(r"<li><b>(.*?)</b>: (.*?)</li>", summary)
    assert f"<h3>Warnings ({len(warnings)})</h3>" in summary
    where = [html.unescape(w) for w, _ in warnings]
    assert where.count("Flow vs data (k-NN KL, validation.json)") == 1
    assert "Flow closure in the detector (reach.json flow_closure)" in where
    assert "Lepton universality (ee/mumu, yields.json)" in where
    assert "A′ yield mass bins (yields.json aprime.flags)" in where
    # every warning a section shows is in the summary too
    texts = [html.unescape(t) for _, t in warnings]
    for ident in ("selection", "yields", "reach"):
        for shown in re.findall(r'<p class="warn">⚠ (.*?)</p>', _section(page, ident)):
            assert html.unescape(shown) in texts, shown
    assert "1 input file(s) skipped as unreadable" in texts


def test_the_summary_of_a_run_that_stopped_after_the_yields(tmp_path: Path, png_bytes: bytes):
    run = tmp_path / "run"
    write_full_run(run, png_bytes)
    for name in ("validation.json", "reach.json", "acceptance.npz", "figures/reach.png"):
        (run / name).unlink()
    shutil.rmtree(run / "flow")
    (run / "workspaces" / "index.json").unlink()
    page = build_report(_config(tmp_path, run)).path.read_text()
    summary = _section(page, "summary")
    missing = re.search(r'<div class="missing">(.*?)</div>', summary, re.DOTALL)
    assert missing, "the summary says what the run lacks"
    for name in ("validation.json", "reach.json", "figures/reach.png"):
        assert f"<code>{name}</code>" in missing.group(1)
    assert "yields.json" not in missing.group(1)
    assert "figures/reach.png not found" in summary
    # the A′ yield at 3 of its mass bins (lowest, middle, highest), from yields.json
    ap = json.loads((run / "yields.json").read_text())["aprime"]
    assert "The A′ yield at 3 masses" in _section(page, "summary")
    rows = _mass_rows(page)
    assert [float(r[0]) for r in rows] == pytest.approx(
        [ap["mass"][i] for i in (0, 6, 11)], rel=1e-4
    )
    assert rows[0][-1] == "near_threshold"  # the flagged first bin: a flags column
    verdicts = {r[0]: r[1] for r in _rows(page, "<h3>Validation</h3>")}
    assert verdicts["Flow vs data (k-NN KL, validation.json)"] == "not run"
    assert verdicts["Flow closure in the detector (reach.json flow_closure)"] == "not run"


# --------------------------------------------------------------------------- browser
def chromium_binary() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None


WINDOW = (1300, 900)
"""The browser window the layout is measured in: a laptop's browser at its usual width."""


def render_selfcheck(page: Path, tmp: Path) -> dict:
    """Load ``page`` in headless Chromium in a :data:`WINDOW`-sized window and return the
    self-check JSON it wrote (images, script errors, the layout it measured)."""
    exe = chromium_binary()
    if exe is None:
        pytest.skip("no Chromium binary (chromium, chromium-browser or /usr/bin/chromium)")
    profile = tmp / "chromium-profile"
    cmd = [
        exe,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=5000",
        "--dump-dom",
        page.resolve().as_uri(),
    ]
    env = {**os.environ, "HOME": str(tmp)}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env, check=False)
    m = re.search(r'<pre id="gammastar-selfcheck">(.*?)</pre>', proc.stdout, re.DOTALL)
    assert m, f"no self-check element in the DOM (rc {proc.returncode}): {proc.stderr[-2000:]}"
    text = html.unescape(m.group(1))
    assert text.startswith("{"), f"self-check did not run: {text!r} ({proc.stderr[-2000:]})"
    check = json.loads(text)
    # measured at the window's width, not at a default one
    assert check["layout"]["viewport"] == WINDOW[0], check["layout"]
    return check


def write_wide_run(run: Path, png: bytes) -> None:
    """A full run whose summary table at 3 masses has the demo's columns (the ε band, the
    yield bin, the yield, its total error, six named parts of it) and a flags column: the
    widest table the page shows."""
    write_full_run(run, png)
    _demo_like_reach(run)
    ylds = json.loads((run / "yields.json").read_text())
    ap = ylds["aprime"]
    n = len(ap["mass"])
    ap["flags"] = [["near_threshold", "extrapolated"]] * n
    parts = ("data_stat", "like_sign_r", "acceptance_lambda_theta", "extrapolation", "universality")
    nuisance = {"kind": "normsys", "rel": [0.0123] * n, "origin": "a marker"}
    ylds["uncertainties"] = {"mass": ap["mass"], "nuisances": dict.fromkeys(parts, nuisance)}
    ylds["meta"]["mock_normalisation"] = {"rel_uncertainty": 0.3}
    _write(run, "yields.json", ylds)


def test_report_travels_and_fits_a_1300_px_window(tmp_path: Path, png_bytes: bytes) -> None:
    """The report, copied alone to another folder (as mailed), opens in a headless browser
    without errors and shows every figure; at 1300 px every table (those in closed
    <details> too) fits the box it sits in, none overlaps a figure, and the page does not
    scroll sideways."""
    run = tmp_path / "run"
    write_wide_run(run, png_bytes)
    built = build_report(_config(tmp_path, run)).path
    assert len(_mass_table(built.read_text())[0]) == 13  # the demo's 12 quantities and flags
    mailed = tmp_path / "mailed" / "report.html"
    mailed.parent.mkdir()
    shutil.copy(built, mailed)
    shutil.rmtree(run)  # nothing of the run left to load from
    check = render_selfcheck(mailed, tmp_path)
    assert check["images"] == len(FIGURES)
    assert check["loaded"] == check["images"], check
    assert check["errors"] == [], check
    layout = check["layout"]
    assert layout["tables"] == mailed.read_text().count("<table")
    assert layout["wide"] == [], layout
    assert layout["overlaps"] == [], layout
    assert layout["page_width"] <= layout["viewport"], layout


def test_chromium_selfcheck_detects_failures(tmp_path: Path, png_bytes: bytes) -> None:
    """Negative control: an image by relative path (the figure is beside the page, but the
    Content-Security-Policy admits data: images only), an external resource (.invalid never
    resolves), a script error, and the summary's table at 3 masses as it once was (a row per
    mass, 13 columns, beside the reach figure, where it ran under the figure) are all seen."""
    run = tmp_path / "run"
    write_wide_run(run, png_bytes)
    page = build_report(_config(tmp_path, run)).path
    text = page.read_text()
    quantities, rows = _mass_table(text)
    cells = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    heads = "".join(f"<th>{h}</th>" for h in quantities)
    old = f'<table class="num"><thead><tr>{heads}</tr></thead><tbody>{cells}</tbody></table>'
    column = '<div class="summary-grid"><div>'
    inject = (
        '<img src="figures/reach.png" alt="r"><img src="https://example.invalid/x.png" alt="x">'
        '<script>throw new Error("boom")</script>'
    )
    page.write_text(text.replace(column, column + old).replace("</body>", inject + "</body>"))
    check = render_selfcheck(page, tmp_path)
    assert check["images"] == len(FIGURES) + 2
    assert check["loaded"] == len(FIGURES)
    assert check["broken"] == ["figures/reach.png", "https://example.invalid/x.png"]
    assert any("boom" in e for e in check["errors"]), check
    assert any("Content-Security-Policy" in e for e in check["errors"]), check
    layout = check["layout"]
    wide = [re.sub(r" \(\d+ px in \d+ px\)$", "", w) for w in layout["wide"]]
    assert wide == ["summary: m_A′ (GeV)"], layout
    assert layout["overlaps"] == ["summary: m_A′ (GeV)"], layout  # under the reach figure


def test_yields_section_shows_lepton_universality(tmp_path: Path, png_bytes: bytes) -> None:
    # yields.compare_with (docs/howto/both-channels.md): the report shows the ratio
    # per shared bin with its error, χ²/ndf, p-value and the combined yield, as written
    run = tmp_path / "run"
    write_full_run(run, png_bytes)
    doc = json.loads((run / "yields.json").read_text())
    doc["lepton_universality"] = {
        "ratio_of": "ee/mumu",
        "mass": [0.275, 0.325],
        "bin_edges": [0.25, 0.3, 0.35],
        "ratio": [0.983, 1.0061],
        "ratio_err": [0.025, 0.03],
        "chi2": 3.912,
        "ndf": 2,
        "p_value": 0.1414,
        "mass_range": [0.25, 0.35],
    }
    doc["aprime_combined"] = {
        "mass": [0.275, 0.325],
        "bin_edges": [0.25, 0.3, 0.35],
        "per_pot_per_eps2": [2.4681e-3, 1.9e-3],
        "stat_err": [4e-5, 5e-5],
        "syst_err": [2e-5, 1e-6],
        "compared_with": "runs/mu/yields.json",
    }
    (run / "yields.json").unlink()
    write_json(run / "yields.json", doc)
    yl = _section(build_report(_config(tmp_path, run)).path.read_text(), "yields")
    assert "Lepton universality" in yl
    assert "ee/mumu" in yl
    assert "0.983 ± 0.025" in yl
    assert "1.006 ± 0.03" in yl
    assert "3.91 / 2" in yl
    assert "0.141" in yl
    assert "2.4681e-03" in yl
    assert "runs/mu/yields.json" in yl


def test_yields_section_shows_the_standard_recipe_ratio(tmp_path: Path, png_bytes: bytes) -> None:
    # yields.json standard_recipe (gammastar.yields.standard_recipe): the report gives the
    # meson yields' source and the ratio data-driven / recipe per mass with its error, as written
    from gammastar.yields.standard_recipe import MesonYields, standard_recipe_section

    run = tmp_path / "run"
    write_full_run(run, png_bytes)
    doc = json.loads((run / "yields.json").read_text())
    mesons = MesonYields({"eta": 1e-3, "omega": 1e-3}, {"kind": "mock_<parametric>"})
    doc["standard_recipe"] = standard_recipe_section(doc["aprime"], mesons)
    (run / "yields.json").unlink()
    write_json(run / "yields.json", doc)
    yl = _section(build_report(_config(tmp_path, run)).path.read_text(), "yields")
    assert "Data-driven A′ yield / standard generator-level recipe" in yl
    assert "mock_&lt;parametric&gt;" in yl  # escaped
    sr = doc["standard_recipe"]
    r, e = sr["ratio_data_driven"][0], sr["ratio_data_driven_err"][0]
    assert f"{r:.3f} ± {e:.2g}" in yl  # the first bin's ratio (report.fmt_err)


def test_the_yields_section_names_an_external_sigma_y_escaped():
    """The extrapolation's σ_y in the yields section: its value ± error, and the source of an
    external σ_y (yields.json ``extrapolation.y_sigma_external``) HTML-escaped; nothing
    without a σ_y."""
    from gammastar.report.data_sections import _sigma_y_text

    ext = {"y_sigma_external": {"value": 1.25, "error": 0.2, "source": "PYTHIA <8.3>"}}
    assert _sigma_y_text(ext, [1.25], 0.2) == " (σ_y = 1.250 ± 0.200, external: PYTHIA &lt;8.3&gt;)"
    assert _sigma_y_text({}, [1.1], 0.05) == " (σ_y = 1.100 ± 0.050)"
    assert _sigma_y_text({}, [], None) == ""


def test_the_polarisation_table_shows_the_corrected_and_the_fitted_lambda():
    """With ``selection_correction`` in the block the table gives λ_θ (corrected) and the
    fit's own λ_θ side by side; without it the four columns of before."""
    from gammastar.report.data_sections import _polarisation_table
    from gammastar.report.reading import Section

    pol = {"frame": "helicity", "mass_edges": [0.5, 0.6], "lambda_theta": [0.04],
           "lambda_theta_err": [0.18], "lambda_phi": [0.01], "lambda_phi_err": [0.05],
           "lambda_theta_phi": [0.0], "lambda_theta_phi_err": [0.05], "n_pairs": [900],
           "used_in_acceptance": True}  # fmt: skip
    plain = Section("y", "Yields")
    _polarisation_table(pol, plain)
    assert "as fitted" not in "".join(plain.parts)
    s = Section("y", "Yields")
    sc = {"lambda_theta_measured": [0.146], "lambda_theta_measured_err": [0.186],
          "uncorrected_bins": []}  # fmt: skip
    _polarisation_table(pol | {"selection_correction": sc}, s)
    text = "".join(s.parts)
    assert "λ_θ as fitted" in text
    assert "+0.146 ± 0.186" in text
    assert "+0.040 ± 0.180" in text
    assert "unfold.polarisation_correction" in text
    assert "Truth side: the reconstructed γ* at their truth." in text  # a block before the key
    assert "(as fitted)" not in text
    kept = Section("y", "Yields")  # a bin the simulation left as measured is marked
    sc = {"lambda_theta_measured": [0.04], "lambda_theta_measured_err": [0.18],
          "uncorrected_bins": [0]}  # fmt: skip
    _polarisation_table(pol | {"selection_correction": sc}, kept)
    assert "+0.040 ± 0.180 (as fitted)" in "".join(kept.parts)
    gen = Section("y", "Yields")  # the truth side the selection recorded
    side = "'truth_generated': the generator-level γ* at the analysis's lepton cuts"
    _polarisation_table(pol | {"selection_correction": sc | {"truth_side": side}}, gen)
    assert "Truth side: &#x27;truth_generated&#x27;: the generator-level" in "".join(gen.parts)
    assert "own statistics" not in "".join(gen.parts)  # a block before simulation_share
    shared = Section("y", "Yields")  # the largest share of the simulation's statistics, and where
    pol2 = pol | {"mass_edges": [0.5, 0.6, 0.7], "lambda_theta": [0.04, 0.1]}
    sc2 = sc | {"simulation_share": [0.04, 0.31], "uncorrected_bins": []}
    _polarisation_table(pol2 | {"selection_correction": sc2}, shared)
    assert "at most 31% of a corrected λ_θ's variance (0.600–0.700 GeV)" in "".join(shared.parts)
    none = Section("y", "Yields")  # bins without a share (uncorrected: null) are skipped
    _polarisation_table(pol2 | {"selection_correction": sc2 | {"simulation_share": [None, 0.02]}},
                        none)  # fmt: skip
    assert "at most 2% of" in "".join(none.parts)
