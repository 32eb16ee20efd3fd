"""The ``gammastar train`` stage: fit the flow (and its ensemble members) on the run's pairs.

Offers :func:`train` (pairs table → training and held-out rows → :func:`gammastar.flow.fit`
per member → ``flow/model.pt``, ``meta.json``, ``history.json``, ``loss.png``),
:func:`holdout_seed_of` and :func:`weight_report` (Kish n_eff overall, per mass bin and per
validation window, recorded in ``meta.json``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gammastar import rundir
from gammastar.artifacts import make_meta
from gammastar.errors import OutputExistsError
from gammastar.flow.architecture import architecture_from_config
from gammastar.flow.data import (
    TrainingData,
    effective_sample_size,
    n_eff_in_windows,
    read_pairs,
    training_data,
)
from gammastar.flow.ensemble import remove_stale_members
from gammastar.flow.model import save_model
from gammastar.flow.training import TrainResult, fit, plot_losses, weighted_nll

if TYPE_CHECKING:
    import pandas as pd

    from gammastar.config import AnalysisConfig


def train(
    config: AnalysisConfig,
    *,
    output: str | os.PathLike[str] | None = None,
    resume: bool = False,
    force: bool = False,
    seed: int | None = None,
    progress: bool = False,
    pairs: pd.DataFrame | None = None,
    stop_after: int | None = None,
) -> Path:
    """``gammastar train``: fit the flow on the run directory's pairs table.

    The pairs of the held-out events (``flow.holdout_fraction``, :func:`holdout_mask`) are not
    used; ``meta.json`` records the split (``holdout``), Kish's effective sample sizes
    (``n_eff``: overall, per mass bin, per validation window) and the weighted NLL of the
    fitted, early-stopping and held-out pairs (``loss``).

    Writes ``flow/model.pt``, ``flow/meta.json``, ``flow/loss.png`` and ``flow/history.json``
    (and ``flow/ensemble/<i>/`` for ``flow.ensemble > 1``; member directories of an older,
    larger ensemble are removed once the new members are written). ``flow/checkpoint.pt`` holds
    the latest checkpoint (``resume=True`` continues from it).

    Arguments:
        config: the analysis config.
        output: run directory (default: the config's).
        resume: continue an interrupted training from its checkpoint.
        force: overwrite an existing model.
        seed: training seed (default ``flow.seed`` or the top-level ``seed``).
        progress: show a progress bar.
        pairs: use this table instead of ``pairs.parquet`` (tests, notebooks).
        stop_after: stop after this many epochs (simulates an interruption; no model written).

    Returns:
        The ``flow`` directory.
    """
    if output is not None:
        config = config.model_copy(update={"output": str(Path(output).resolve())})
    cfg = config.flow
    out = config.output_dir / "flow"
    if pairs is None:
        pairs, src = read_pairs(config)
        inputs: list[Any] = [src]
    else:
        src, inputs = Path("<pairs table>"), []
    seed0 = int(seed if seed is not None else (cfg.seed if cfg.seed is not None else config.seed))
    if (out / rundir.MODEL_FILE).exists() and not (force or resume):
        raise OutputExistsError(f"{out / 'model.pt'}: output exists already; use --force")
    hseed = holdout_seed_of(config)
    data = training_data(pairs, cfg, source=str(src), seed=seed0, holdout_seed=hseed)
    held = training_data(
        pairs, cfg, source=str(src), seed=seed0, part="holdout", holdout_seed=hseed
    )
    mass_range = (float(data.m.min()), float(data.m.max()))
    cfg_hash = config.section_sha256("flow")
    for member in range(cfg.ensemble):
        s = seed0 + member
        d = out if member == 0 else out / rundir.ENSEMBLE_DIR / str(member)
        if member > 0 and (d / rundir.MODEL_FILE).exists() and not (force or resume):
            raise OutputExistsError(f"{d / 'model.pt'}: output exists already; use --force")
        ck = d / rundir.CHECKPOINT_FILE
        res = fit(
            data,
            cfg,
            seed=s,
            checkpoint=ck,
            resume=resume and ck.exists(),
            progress=progress,
            stop_after=stop_after,
            identity={"config_sha256": cfg_hash},
        )
        if stop_after is not None and res.epochs_run < cfg.epochs and not res.stopped_early:
            return out
        arch = architecture_from_config(cfg)
        meta = member_meta(config, res, data, held, inputs=inputs, seed=s, member=member)
        save_model(d, res.flow, res.preprocessing, arch, mass_range, meta, force=True)
        rundir.write_artifact(
            d / rundir.HISTORY_FILE, {**res.history, "meta": meta}, "flow_history.json", force=True
        )
        plot_losses(res.history, d / "loss.png")
    remove_stale_members(out / rundir.ENSEMBLE_DIR, cfg.ensemble)
    return out


def member_meta(
    config: AnalysisConfig,
    res: TrainResult,
    data: TrainingData,
    held: TrainingData,
    *,
    inputs: Sequence[Any],
    seed: int,
    member: int,
) -> dict[str, Any]:
    """The ``meta`` block of an ensemble member's ``flow/meta.json`` and ``history.json``:
    the training data and split, Kish n_eff (:func:`weight_report`), the weighted NLL of the
    fitted, early-stopping and held-out rows, and the training's course."""
    cfg = config.flow
    mass_range = (float(data.m.min()), float(data.m.max()))
    bins = int(architecture_from_config(cfg)["bins"])
    best_val = min(res.history["val"]) if res.history["val"] else None
    return make_meta(
        config_sha256=config.section_sha256("flow"),
        seed=seed,
        inputs=list(inputs),
        data_sha256=data.sha256,
        n_train_rows=data.n,
        training_data=data.description,
        weighting=cfg.weighting,
        holdout={
            **{k: v for k, v in data.split.items() if k != "part"},
            "holdout_sha256": held.sha256,
        },
        n_eff=weight_report(
            data, held, res, mass_range, config.validate_.masses, config.validate_.window
        ),
        loss={
            "fitted": res.train_nll,
            "early_stopping": best_val,
            "holdout": weighted_nll(res.flow, res.preprocessing, held, bins),
            "note": "weighted NLL −Σw ln p/Σw in the standardised space; holdout well "
            "above fitted (beyond its statistical error) signals overfitting",
        },
        best_epoch=res.best_epoch,
        epochs_run=res.epochs_run,
        stopped_early=res.stopped_early,
        best_val_loss=best_val,
        train_wall_s=res.wall_s,
        ensemble_member=member,
        ensemble_size=cfg.ensemble,
    )


def holdout_seed_of(config: AnalysisConfig) -> int:
    """The hold-out split seed: ``flow.holdout_seed``, else the top-level ``seed``."""
    hs = config.flow.holdout_seed
    return int(hs if hs is not None else config.seed)


def weight_report(
    data: TrainingData,
    held: TrainingData,
    res: TrainResult | None,
    mass_range: tuple[float, float],
    masses: Sequence[float],
    window: float,
    bins: int = 20,
) -> dict[str, Any]:
    """Kish n_eff (:func:`effective_sample_size`) of the training and held-out rows: overall,
    in ``bins`` equal mass bins of the trained range and in the validation windows."""
    edges = np.linspace(mass_range[0], mass_range[1], bins + 1)

    def per_bin(d: TrainingData) -> list[float]:
        k = np.clip(np.searchsorted(edges, d.m, side="right") - 1, 0, bins - 1)
        return [effective_sample_size(d.weight[k == i]) for i in range(bins)]

    inside = [float(m0) for m0 in masses if mass_range[0] <= m0 <= mass_range[1]]
    return {
        "formula": "Kish (Σw)²/Σw²",
        "train": data.n_eff,
        **(res.n_eff if res is not None else {}),
        "holdout": held.n_eff,
        "rows": {"train": data.n, "holdout": held.n},
        "mass_bins": {"edges": edges.tolist(), "train": per_bin(data), "holdout": per_bin(held)},
        "windows": {
            "mass": inside,
            "window": float(window),
            "train": n_eff_in_windows(data.m, data.weight, inside, window),
            "holdout": n_eff_in_windows(held.m, held.weight, inside, window),
        },
    }
