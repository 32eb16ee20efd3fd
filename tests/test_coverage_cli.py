"""benchmarks/coverage.py's refusals (issue 19): each a one-line error naming the option, field
or file, before any realisation is run. Fast: no chain, no flow, no truth."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cov():
    spec = importlib.util.spec_from_file_location(
        "coverage_bench", REPO / "benchmarks" / "coverage.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# --------------------------------------------------------------------------- --merge


def _output(seeds, *, points=((0.6, 1.0), (0.6, 100.0)), **header):
    """A minimal output of coverage.py: the stat arm's rows for ``seeds`` at ``points``."""
    rows = [
        {"seed": s, "mass": m, "ctau": ct, "nsig_dd": 1.0 + 0.01 * s, "nsig_truth": 1.0,
         "rel_sigma_truth": 0.01, "sigma": {"data_stat": 0.02, "mc_acceptance": 0.005}}
        for s in seeds for m, ct in points
    ]  # fmt: skip
    out = {
        "benchmark": "coverage", "config": "analysis/na60_like.yaml", "flow": "flow",
        "form_flows": {}, "vary_seed": 2026, "truth_seed": 11, "truth_sources": 1000,
        "response_sources": 1000, "samples": 100,
        "arms": {"stat": {"varied": [], "drawn_forms": [], "drawn": [{} for _ in seeds],
                          "rows": rows}},
    }  # fmt: skip
    out.update(header)
    return out


def _re(path) -> str:
    """``path`` as a regular expression matching it literally."""
    return re.escape(str(path))


def _write(tmp_path, name, out):
    path = tmp_path / name
    path.write_text(json.dumps(out))
    return path


def test_merge_keeps_the_header_rows_and_forms(cov, tmp_path, capsys):
    """Two seed ranges of one run merge into one table of all their realisations; the merged
    output keeps the shared header, each arm's rows, varied and drawn_forms (so that it can be
    merged again) and names the files under ``merged``."""
    a = _write(tmp_path, "a.json", _output([1, 2]))
    b = _write(tmp_path, "b.json", _output([3]))
    out = cov.main(["--merge", str(a), str(b)])
    capsys.readouterr()
    assert out["merged"] == [str(a), str(b)]
    assert (out["config"], out["vary_seed"], out["truth_seed"]) == (
        "analysis/na60_like.yaml",
        2026,
        11,
    )
    arm = out["arms"]["stat"]
    assert arm["realisations"] == 3
    assert (arm["varied"], arm["drawn_forms"]) == ([], [])
    assert sorted({r["seed"] for r in arm["rows"]}) == [1, 2, 3]
    assert all("pulls" not in r for r in arm["rows"])  # as main writes them
    assert [t["n"] for t in arm["table"]] == [3, 3]
    again = cov.main(["--merge", str(_write(tmp_path, "ab.json", out)), str(
        _write(tmp_path, "c.json", _output([4])))])  # fmt: skip
    assert again["arms"]["stat"]["realisations"] == 4


@pytest.mark.parametrize(
    ("changed", "field"),
    [
        ({"vary_seed": 7}, "vary_seed"),
        ({"config": "other.yaml"}, "config"),
        ({"truth_sources": 2000}, "truth_sources"),
        ({"samples": 200}, "samples"),
        ({"flow": "other"}, "flow"),
        ({"form_flows": {"1.2247": "f"}}, "form_flows"),
    ],
)
def test_merge_refuses_outputs_of_other_runs(cov, tmp_path, changed, field):
    a = _write(tmp_path, "a.json", _output([1]))
    b = _write(tmp_path, "b.json", _output([2], **changed))
    with pytest.raises(
        SystemExit,
        match=rf"--merge: {field} differs: .* in {_re(a)}, .* in {_re(b)}",
    ):
        cov.main(["--merge", str(a), str(b)])


def test_merge_refuses_an_arm_of_another_draw_or_other_points(cov, tmp_path):
    a = _write(tmp_path, "a.json", _output([1]))
    other = _output([2])
    other["arms"]["stat"]["drawn_forms"] = ["mt_boltzmann"]
    b = _write(tmp_path, "b.json", other)
    with pytest.raises(
        SystemExit,
        match=rf"arm 'stat' drawn_forms differs: .* in {_re(a)}, .* in {_re(b)}",
    ):
        cov.main(["--merge", str(a), str(b)])
    c = _write(tmp_path, "c.json", _output([3], points=((0.6, 1.0), (0.9, 1.0))))
    with pytest.raises(
        SystemExit, match=rf"arm 'stat' covers other \(mass, ctau\) points: .*{_re(c)}"
    ):
        cov.main(["--merge", str(a), str(c)])


def test_merge_refuses_a_missing_or_foreign_file(cov, tmp_path):
    a = _write(tmp_path, "a.json", _output([1]))
    missing = tmp_path / "nowhere.json"
    with pytest.raises(SystemExit, match=rf"--merge: cannot read {_re(missing)}"):
        cov.main(["--merge", str(a), str(missing)])
    log = tmp_path / "run.log"
    log.write_text("full realisation 1/30 ...\n")
    with pytest.raises(SystemExit, match=rf"--merge: {_re(log)} is not JSON"):
        cov.main(["--merge", str(a), str(log)])
    other = _write(tmp_path, "other.json", {"benchmark": "closure", "arms": {}})
    with pytest.raises(SystemExit, match=rf"--merge: {_re(other)} is not an output of"):
        cov.main(["--merge", str(a), str(other)])
