"""Shared plumbing of the paper-figure scripts in ``analysis/figures/``.

Every script ``figN_*.py`` has a ``main(argv)`` that

1. reads the config (default ``analysis/na60_like.yaml``; ``--output RUN_DIR`` overrides the
   run directory),
2. brings the stages it needs up to date with :func:`gammastar.pipeline.run` (stages that are
   up to date are reused, not recomputed),
3. draws the figure with the package's own plotting function where one exists, and
4. writes ``<run>/figures/paper_figN.png`` and ``.pdf`` (refusing to overwrite without
   ``--force``) and prints the PNG path.

Flows that a figure trains itself are cached by their ``flow:`` config and training-data hashes
(retrained when either changes, or with ``--retrain``).

The flow trained without the combinatorial background (Figs. 5, 9, 10) is trained here with
:func:`gammastar.flow.stage.train` and ``flow.data: os_signal`` (OS pairs with truth ``channel != 0``)
into ``<run>/nobkg/flow/``; it is reused while its config and training data are unchanged.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from gammastar.config import AnalysisConfig

HERE = Path(__file__).resolve().parent
DEFAULT_CONFIG = HERE.parent / "na60_like.yaml"
FIGURE_DIR = "figures"
NOBKG_DIR = "nobkg"
"""Run-directory sub-directory of the no-background flow (``<run>/nobkg/flow/``)."""

FIG_MASSES = (0.3, 0.6, 0.9)
"""Masses of the Fig. 5 rows and the Fig. 9 curves (the package defaults, inside the data)."""


# --------------------------------------------------------------------------- command line
def parser(description: str) -> argparse.ArgumentParser:
    """The common command line: ``[CONFIG] [--output RUN_DIR] [--force] [--retrain]``.

    ``description``: the script's docstring (its first paragraph is shown by ``--help``).
    """
    p = argparse.ArgumentParser(description=" ".join(description.split("\n\n")[0].split()))
    p.add_argument(
        "config",
        nargs="?",
        default=str(DEFAULT_CONFIG),
        help=f"analysis YAML (default: {DEFAULT_CONFIG.relative_to(HERE.parent.parent)})",
    )
    p.add_argument("--output", default=None, help="run directory (default: the config's)")
    p.add_argument("--force", action="store_true", help="overwrite an existing figure")
    p.add_argument(
        "--retrain",
        action="store_true",
        help="retrain this figure's own flows (no-background flow, Fig. 8 flows) even when "
        "an identical model exists; pipeline stages are reused whenever up to date",
    )
    return p


def load(args: argparse.Namespace) -> AnalysisConfig:
    """The config named on the command line, with ``--output`` applied."""
    from gammastar.config import load_config

    cfg = load_config(args.config)
    if args.output is not None:
        cfg = cfg.model_copy(update={"output": str(Path(args.output).resolve())})
    return cfg


def run_main(func: Callable[[list[str] | None], Path], argv: Sequence[str] | None = None) -> int:
    """Run a figure's ``main`` as a script: one line for user errors (exit status 2)."""
    from gammastar.errors import GammastarError

    try:
        func(list(argv) if argv is not None else None)
    except GammastarError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


# --------------------------------------------------------------------------- stages
def ensure(cfg: AnalysisConfig, stages: Sequence[str]) -> None:
    """Bring ``stages`` (and nothing else) up to date with :func:`gammastar.pipeline.run`.

    Stages that are up to date are skipped by the pipeline (outputs newer than inputs, config
    sections unchanged); stages the config disables (``generate`` without ``mock:``) are ignored.
    """
    from gammastar import pipeline

    pipeline.run(cfg, only=list(stages), report=False, echo=lambda s: print(s, flush=True))


# --------------------------------------------------------------------------- flows
def _flow_is_current(flow_dir: Path, cfg: AnalysisConfig, data_sha256: str) -> bool:
    """Whether ``flow_dir`` holds a model of this ``flow`` config trained on these rows."""
    try:
        info = json.loads((flow_dir / "meta.json").read_text())
    except (OSError, ValueError):
        return False
    meta = info.get("meta", {}) if isinstance(info, dict) else {}
    return (
        (flow_dir / "model.pt").exists()
        and meta.get("config_sha256") == cfg.section_sha256("flow")
        and meta.get("data_sha256") == data_sha256
    )


def train_cached(
    cfg: AnalysisConfig, run_dir: Path, pairs: pd.DataFrame, *, force: bool, label: str
) -> Path:
    """:func:`gammastar.flow.stage.train` into ``run_dir/flow`` unless an identical model is there.

    Arguments:
        cfg: config whose ``flow`` section (and seed) defines the training.
        run_dir: directory that receives ``flow/`` (model, history, loss curve).
        pairs: the pairs table to train on (selection by ``cfg.flow.data``).
        force: retrain even when an identical model exists.
        label: name in the progress line.

    Returns:
        The ``flow`` directory.
    """
    from gammastar.flow.data import training_data
    from gammastar.flow.stage import train

    sub = cfg.model_copy(update={"output": str(run_dir)})
    seed = cfg.flow.seed if cfg.flow.seed is not None else cfg.seed
    data = training_data(pairs, cfg.flow, source=label, seed=seed)
    flow_dir = run_dir / "flow"
    if not force and _flow_is_current(flow_dir, sub, data.sha256):
        print(f"[{label}] up to date: {flow_dir}", flush=True)
        return flow_dir
    t0 = time.perf_counter()
    train(sub, force=True, pairs=pairs)
    print(f"[{label}] trained in {time.perf_counter() - t0:.1f} s: {flow_dir}", flush=True)
    return flow_dir


def nobkg_config(cfg: AnalysisConfig) -> AnalysisConfig:
    """The config with ``flow.data: os_signal`` (OS pairs without the truth-combinatorial)."""
    return cfg.model_copy(update={"flow": cfg.flow.model_copy(update={"data": "os_signal"})})


def read_pairs(cfg: AnalysisConfig) -> pd.DataFrame:
    """The run directory's pairs table (:func:`gammastar.flow.data.read_pairs`)."""
    from gammastar.flow.data import read_pairs as _read

    return _read(cfg)[0]


def flows_with_and_without_background(
    cfg: AnalysisConfig, *, retrain: bool = False
) -> tuple[Any, Any]:
    """The run's flow (trained with the background) and the no-background flow, loaded.

    The no-background flow uses the same architecture, recipe and seed; only the training rows
    differ (``flow.data: os_signal``). Needs mock input (truth channels).
    """
    from gammastar.flow.model import load as load_flow

    ensure(cfg, ("generate", "select", "train"))
    pairs = read_pairs(cfg)
    d = train_cached(
        nobkg_config(cfg), cfg.output_dir / NOBKG_DIR, pairs, force=retrain, label="train no-bkg"
    )
    return load_flow(cfg.output_dir / "flow"), load_flow(d)


# --------------------------------------------------------------------------- output
def figure_paths(cfg: AnalysisConfig, number: int, *, force: bool) -> tuple[Path, Path]:
    """``<run>/figures/paper_figN.png`` and ``.pdf``; refuses existing files without ``force``."""
    from gammastar.core.artifacts import check_writable

    base = cfg.output_dir / FIGURE_DIR / f"paper_fig{number}"
    png, pdf = base.with_suffix(".png"), base.with_suffix(".pdf")
    for p in (png, pdf):
        check_writable(p, force)
    return png, pdf


def provenance(cfg: AnalysisConfig) -> str:
    """One line naming the gammastar version, config and seed (stored in the image files)."""
    from gammastar import __version__

    return (
        f"gammastar {__version__}; config {cfg.source or cfg.name}; "
        f"config_sha256={cfg.sha256}; seed={cfg.seed}; run {cfg.output_dir}"
    )


def save(fig: Any, paths: Sequence[Path], *, dpi: int = 120, note: str = "") -> Path:
    """Write a matplotlib figure to every path atomically, close it, return the first path.

    ``note`` (see :func:`provenance`) goes into the PNG ``Description`` / PDF ``Subject``.
    """
    import matplotlib.pyplot as plt

    from gammastar.core.artifacts import atomic_path

    for p in paths:
        fmt = p.suffix.lstrip(".")
        key = {"png": "Description", "pdf": "Subject"}.get(fmt)
        info = {"Software" if fmt == "png" else "Creator": "gammastar analysis/figures"}
        if key and note:
            info[key] = note
        with atomic_path(p, force=True) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight", metadata=info)
    plt.close(fig)
    return paths[0]


def compose(
    images: Sequence[Path], paths: Sequence[Path], *, title: str = "", note: str = ""
) -> Path:
    """Place PNGs drawn by the package side by side in one figure, written to every path.

    Used where a package function draws one panel per file (Fig. 1) or writes PNG only
    (Fig. 4's PDF): the PDF then embeds the raster image.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arrays = [plt.imread(p) for p in images]
    height = max(a.shape[0] for a in arrays)
    width = sum(a.shape[1] for a in arrays)
    dpi = 120
    fig, axes = plt.subplots(
        1,
        len(arrays),
        figsize=(width / dpi, height / dpi),
        gridspec_kw={"width_ratios": [a.shape[1] for a in arrays]},
        squeeze=False,
    )
    for ax, a in zip(axes[0], arrays, strict=True):
        ax.imshow(a)
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
    fig.subplots_adjust(left=0, right=1, bottom=0, top=0.95 if title else 1, wspace=0.01)
    return save(fig, paths, dpi=dpi, note=note)


def done(path: Path, t0: float) -> Path:
    """Print where the figure is and how long it took."""
    print(f"{path}  ({time.perf_counter() - t0:.1f} s)", flush=True)
    return path
