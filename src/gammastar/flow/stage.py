"""The ``gammastar train`` stage: fit the flow (and its ensemble members) on the run's pairs.

Offers :func:`train` (pairs table → training and held-out rows → :func:`gammastar.flow.training.fit`
per member → ``flow/model.pt``, ``meta.json``, ``history.json``, ``loss.png``),
:func:`holdout_seed_of` and :func:`weight_report` (Kish n_eff overall, per mass bin and per
validation window, recorded in ``meta.json``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gammastar.config import AnalysisConfig
from gammastar.config.flow import FlowConfig
from gammastar.core import rundir
from gammastar.core.artifacts import make_meta
from gammastar.core.results import StageResult
from gammastar.core.threads import allowed_cpus
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
from gammastar.flow.training import (
    Checkpoint,
    FitResult,
    fit,
    plot_losses,
    resolve_device,
    weighted_nll,
)

if TYPE_CHECKING:
    import pandas as pd

    from gammastar.config import AnalysisConfig


@dataclass(frozen=True)
class TrainResult(StageResult):
    """What :func:`train` wrote: the ``flow`` directory (``path``: ``model.pt``, ``meta.json``
    and the ensemble members)."""


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
) -> TrainResult:
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
        A :class:`TrainResult` naming the ``flow`` directory (path-like).
    """
    if output is not None:
        config = config.model_copy(update={"output": str(Path(output).resolve())})
    cfg = config.flow
    resolve_device(cfg.device)  # a GPU asked for where there is none: refused before anything
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
    jobs = []
    for member in range(cfg.ensemble):
        d = out if member == 0 else out / rundir.ENSEMBLE_DIR / str(member)
        if member > 0 and (d / rundir.MODEL_FILE).exists() and not (force or resume):
            raise OutputExistsError(f"{d / 'model.pt'}: output exists already; use --force")
        jobs.append(
            _MemberJob(
                config=config, data=data, held=held, inputs=list(inputs), member=member,
                seed=seed0 + member, directory=d, mass_range=mass_range, resume=resume,
            )
        )  # fmt: skip
    workers = ensemble_workers(cfg)
    if workers > 1 and stop_after is None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn: a fresh interpreter per worker (torch is not fork-safe); one torch thread each
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as ex:
            for _ in ex.map(_train_member, jobs, [1] * len(jobs)):
                pass
    else:
        for job in jobs:
            if not _train_member(job, None, progress=progress, stop_after=stop_after):
                return TrainResult(out)
    remove_stale_members(out / rundir.ENSEMBLE_DIR, cfg.ensemble)
    return TrainResult(out)


def ensemble_workers(cfg: FlowConfig) -> int:
    """Processes for the ensemble's training: ``flow.workers``, else min(ensemble, usable
    cores); 1 for a single model or on a GPU (one after the other on it)."""
    if cfg.ensemble < 2 or resolve_device(cfg.device) != "cpu":
        return 1
    if cfg.workers is not None:
        return min(int(cfg.workers), int(cfg.ensemble))
    return max(1, min(int(cfg.ensemble), allowed_cpus()))


def bootstrap_weights(n: int, seed: int, member: int) -> np.ndarray:
    """Poisson(1) multiplicities of ``n`` rows: the Poisson bootstrap of member ``member``.

    Resampling n rows with replacement gives each a Binomial(n, 1/n) count, which tends to
    Poisson(1); independent Poisson(1) counts (mean 1, variance 1) are the bootstrap of a data
    set whose size is itself Poisson, the case of counted pairs.

    Arguments:
        n: number of rows.
        seed: the bootstrap seed (``flow.bootstrap_seed``).
        member: the ensemble member (its own independent stream ``[seed, member]``).

    Returns:
        float64 array of n non-negative integers.

    References:
        A. B. Owen and D. Eckles, Ann. Appl. Stat. 6 (2012) 895 (the Poisson bootstrap);
        Hanley and MacGibbon, Comput. Methods Programs Biomed. 83 (2006) 57.

    >>> k = bootstrap_weights(5, seed=1, member=1)
    >>> k.shape, bool((k >= 0).all() and (k == k.round()).all())
    ((5,), True)
    """
    return np.random.default_rng([int(seed), int(member)]).poisson(1.0, int(n)).astype(np.float64)


def member_data(
    data: TrainingData, cfg: FlowConfig, seed0: int, member: int
) -> tuple[TrainingData, dict[str, Any] | None]:
    """The rows member ``member`` fits: ``data`` itself for member 0 or without
    ``flow.bootstrap``; else its weights × :func:`bootstrap_weights` (the data hash is the
    nominal one, so that the members are recognised as one training; the replica is recorded
    in the returned ``bootstrap`` block: method, seed, member, rows drawn 0 times)."""
    if not cfg.bootstrap or member == 0:
        return data, None
    bseed = int(cfg.bootstrap_seed if cfg.bootstrap_seed is not None else seed0)
    k = bootstrap_weights(data.n, bseed, member)
    info = {
        "method": "poisson",
        "seed": bseed,
        "member": member,
        "rows_not_drawn": int(np.count_nonzero(k == 0)),
    }
    return replace(data, weight=data.weight * k), info


@dataclass(frozen=True)
class _MemberJob:
    """One ensemble member's training (picklable: runs in a worker process)."""

    config: AnalysisConfig
    data: TrainingData
    held: TrainingData
    inputs: list[Any]
    member: int
    seed: int
    directory: Path
    mass_range: tuple[float, float]
    resume: bool


def _train_member(
    job: _MemberJob,
    threads: int | None,
    *,
    progress: bool = False,
    stop_after: int | None = None,
) -> bool:
    """Fit one member and write its ``model.pt``, ``meta.json``, ``history.json``,
    ``loss.png``; False when ``stop_after`` stopped it before the end (nothing written)."""
    config, cfg = job.config, job.config.flow
    seed0 = job.seed - job.member
    data, boot = member_data(job.data, cfg, seed0, job.member)
    ck = job.directory / rundir.CHECKPOINT_FILE
    res = fit(
        data,
        cfg,
        seed=job.seed,
        checkpoint=Checkpoint(
            ck,
            resume=job.resume and ck.exists(),
            identity={
                "config_sha256": config.section_sha256("flow"),
                **({"bootstrap": boot} if boot else {}),
            },
            stop_after=stop_after,
        ),
        progress=progress,
        # a worker's one thread is kept through numba's launch (warm_up's ensure_pool): the
        # kernels then run serially, no parallel region (docs/explanation/flow.md "Ensemble")
        threads=threads,
    )
    if stop_after is not None and res.epochs_run < cfg.epochs and not res.stopped_early:
        return False
    arch = architecture_from_config(cfg)
    meta = member_meta(
        config, res, data, job.held, inputs=job.inputs, seed=job.seed, member=job.member
    )
    meta["bootstrap"] = boot
    save_model(job.directory, res.flow, res.preprocessing, arch, job.mass_range, meta, force=True)
    rundir.write_artifact(
        job.directory / rundir.HISTORY_FILE,
        {**res.history, "meta": meta},
        "flow_history.json",
        force=True,
    )
    plot_losses(res.history, job.directory / "loss.png")
    return True


def member_meta(
    config: AnalysisConfig,
    res: FitResult,
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
        device=res.device,
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
    res: FitResult | None,
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
