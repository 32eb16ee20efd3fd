"""The paper-figure scripts (analysis/figures/figN_*.py) on a tiny mock run.

Each script runs as a user runs it (``python analysis/figures/figN_*.py CONFIG``) on a copy of ``analysis/na60_like.yaml`` with a small mock
(40 000 generated sources) and a 2-epoch flow; the test checks that the PNG (and PDF) is
written and is a real image of plausible size, not what it shows (the physics of each
figure is tested with its stage: test_mock, test_yields, test_flow, test_validate,
test_acceptance). Figures 1, 2, 7 and 9 (which trains the no-background flow) run by default,
about 25 s together on 2 cores; the rest are marked slow (about 30 s more).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
FIG_DIR = REPO / "analysis" / "figures"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

SCRIPTS = {
    1: "fig1_mock_spectra",
    2: "fig2_aprime_yield",
    3: "fig3_mcp_yield",
    4: "fig4_kl",
    5: "fig5_kinematics",
    7: "fig7_loss",
    8: "fig8_kl_vs_training_size",
    9: "fig9_acceptance",
    10: "fig10_acceptance_difference",
}


def _absolute(node: object, base: Path) -> object:
    """Relative file paths of the shipped config made absolute (the copy lives elsewhere)."""
    if isinstance(node, dict):
        return {k: _absolute(v, base) for k, v in node.items()}
    if isinstance(node, list):
        return [_absolute(v, base) for v in node]
    if isinstance(node, str) and node.startswith("../"):
        return str((base / node).resolve())
    return node


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """analysis/na60_like.yaml with a small mock, a 2-epoch flow and few KL draws."""
    src = REPO / "analysis" / "na60_like.yaml"
    data = _absolute(yaml.safe_load(src.read_text()), src.parent)
    assert isinstance(data, dict)
    tmp = tmp_path_factory.mktemp("figures")
    data["output"] = str(tmp / "run")
    data["mock"]["events"] = 40_000
    data["flow"] = {"epochs": 2, "points_per_epoch": 5000, "batch_size": 1024, "threads": 1}
    data["validate"] = {"repeats": 3}
    data["reach"] = {"samples": 2000}
    path = tmp / "tiny.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _script(number: int, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python analysis/figures/figN_*.py CONFIG ARGS`` as a user runs it (its folder first
    on its ``sys.path``, where it finds ``_common``), in a fresh interpreter."""
    script = FIG_DIR / f"{SCRIPTS[number]}.py"
    return subprocess.run(
        [sys.executable, str(script), str(config), *args],
        check=False,  # the caller reads the exit status
        capture_output=True,
        text=True,
    )


def _check_figure(path: Path, number: int) -> None:
    assert path.name == f"paper_fig{number}.png"
    blob = path.read_bytes()
    assert blob[:8] == PNG_SIGNATURE
    assert len(blob) > 10_000, f"{path} is suspiciously small ({len(blob)} bytes)"
    import matplotlib.pyplot as plt

    img = plt.imread(path)
    assert min(img.shape[:2]) > 200
    assert img.std() > 0.01, "blank image"
    pdf = path.with_suffix(".pdf")
    assert pdf.read_bytes()[:5] == b"%PDF-"
    if number in (1, 5, 8, 9, 10):  # drawn by analysis/figures/_common.save: provenance inside
        from PIL import Image

        with Image.open(path) as im:
            assert "config_sha256=" in im.text.get("Description", "")


def _run(number: int, config: Path, *extra: str) -> str:
    """Draw figure ``number`` with ``--force``, check its image; the script's output."""
    done = _script(number, config, "--force", *extra)
    assert done.returncode == 0, done.stderr
    run = Path(yaml.safe_load(config.read_text())["output"])
    _check_figure(run / "figures" / f"paper_fig{number}.png", number)
    return done.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    # every script writes through the same writer and reads the same run (2: the longest),
    # each a pipeline on a small mock: the slow suite (the default one draws each stage's
    # figures in the package's style, test_figure_style)
    "number", [1, 2, 7, 9]
)
def test_quick_figures(tiny_config: Path, number: int) -> None:
    """Each figure drawn; drawn again without --force it is refused (every script writes
    through the same writer)."""
    _run(number, tiny_config)
    again = _script(number, tiny_config)
    # the one-line refusal of an existing output (OutputExistsError: exit status 2)
    assert again.returncode == 2, again.stderr
    assert "output exists already" in again.stderr


@pytest.mark.slow
@pytest.mark.parametrize("number", [3, 4, 5, 8, 10])
def test_slow_figures(tiny_config: Path, number: int) -> None:
    _run(number, tiny_config)


@pytest.mark.slow
def test_nobkg_flow_is_reused(tiny_config: Path) -> None:
    """A second figure needing the no-background flow does not retrain it."""
    _run(9, tiny_config)
    assert "[train no-bkg] up to date" in _run(10, tiny_config)
