"""Training of the flow: weighted maximum likelihood with checkpoints and early stopping.

Offers :func:`fit` (a thin orchestration of :func:`fit_rows`, :class:`EpochPlan` and
:class:`TrainState`, whose checkpoints make ``--resume`` give the same model as an
uninterrupted run), the point samplers of an epoch (:class:`PointSampler`,
:func:`systematic_resample`), :func:`weighted_nll` and :func:`plot_losses`. The per-batch loss
estimator and the recipes are described in docs/explanation/flow.md.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gammastar.core.artifacts import atomic_path
from gammastar.core.figures import figure_style, save_figure
from gammastar.core.threads import usable_cores
from gammastar.errors import ConfigError, GammastarError, InputError
from gammastar.flow import _training_kernels as _flow_training
from gammastar.flow.architecture import architecture_from_config, build_flow
from gammastar.flow.data import (
    Preprocessing,
    TrainingData,
    effective_sample_size,
    split_indices,
)
from gammastar.flow.model import log_prob, zuko_log_prob

if TYPE_CHECKING:
    import torch

    from gammastar.config.flow import FlowConfig


class CheckpointMismatchError(GammastarError):
    """A checkpoint made from another config, data set or seed (``--resume`` refused)."""


def resolve_device(setting: str) -> str:
    """The torch device that ``flow.device`` names: ``cpu``, ``cuda``, or for ``auto`` CUDA
    where torch sees a CUDA device, else the CPU.

    Raises:
        ConfigError: ``cuda`` asked for where torch sees none (one line naming the key).

    >>> resolve_device("cpu")
    'cpu'
    """
    if setting not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"flow.device: {setting!r} is none of auto, cpu, cuda")
    if setting == "cpu":
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if setting == "cuda":
        raise ConfigError(
            "flow.device: 'cuda' asked for, but torch sees no CUDA device "
            f"(torch {torch.__version__}); use 'auto' or 'cpu'"
        )
    return "cpu"


@dataclass(frozen=True)
class Backend:
    """Where and how :func:`fit` trains: the torch device, the density (the compiled CPU
    kernels, or zuko's own torch operations, which run on any device) and the optimiser's
    batch size and peak learning rate."""

    device: str
    """The torch device of the model, the rows and the optimiser (``cpu``, ``cuda``)."""
    fused: bool
    """The compiled spline kernels (:mod:`gammastar.flow._training_kernels`, CPU only); else
    zuko's ``flow(c).log_prob(x)``."""
    batch_size: int
    learning_rate: float

    @classmethod
    def of(cls, cfg: FlowConfig, device: str | None = None) -> Backend:
        """The backend of ``flow`` on ``device`` (default: :func:`resolve_device` of
        ``flow.device``). The CPU takes ``batch_size`` and ``learning_rate`` as they are; a GPU
        ``cuda_batch_size`` points per step (a step costs about the same time at any batch
        below ~10⁵ points there), the learning rate scaled by the square root of the batch
        ratio, the rule that keeps the update's noise scale (Krizhevsky, arXiv:1404.5997;
        Hoffer, Hubara, Soudry, NeurIPS 2017).

        >>> from gammastar.config.flow import FlowConfig
        >>> b = Backend.of(FlowConfig(batch_size=4096, cuda_batch_size=16384), "cuda")
        >>> b.batch_size, round(b.learning_rate / FlowConfig().learning_rate, 6)
        (16384, 2.0)
        """
        device = resolve_device(cfg.device) if device is None else device
        if device == "cpu":
            return cls("cpu", True, int(cfg.batch_size), float(cfg.learning_rate))
        batch = int(cfg.cuda_batch_size or cfg.batch_size)
        lr = float(cfg.learning_rate) * math.sqrt(batch / int(cfg.batch_size))
        return cls(device, False, batch, lr)

    def log_prob(self, flow, x, c, bins: int):
        """ln p(x | c) of ``flow`` on this backend (differentiable)."""
        return log_prob(flow, x, c, bins) if self.fused else zuko_log_prob(flow, x, c)

    def describe(self) -> dict[str, Any]:
        """What ``flow/meta.json`` records of the training's device (``device``)."""
        import torch

        name = torch.cuda.get_device_name(self.device) if self.device.startswith("cuda") else None
        return {
            "kind": self.device,
            "name": name,
            "kernels": "compiled" if self.fused else "zuko",
            "torch_threads": torch.get_num_threads(),
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
        }


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch's intra-op threads set to ``n`` inside the block, restored after it."""
    import torch

    before = torch.get_num_threads()
    if n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def _lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    frac = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * frac))


@dataclass
class FitResult:
    """What :func:`fit` returns."""

    flow: Any
    preprocessing: Preprocessing
    history: dict[str, list[float]]
    best_epoch: int
    epochs_run: int
    stopped_early: bool
    wall_s: float
    train_nll: float = float("nan")
    """Weighted NLL of the returned flow on the rows it was fitted on (not the early-stopping
    rows); compare with the held-out NLL for overfitting."""
    n_eff: dict[str, float] = field(default_factory=dict)
    """Kish n_eff of the fitted and the early-stopping rows."""
    device: dict[str, Any] = field(default_factory=dict)
    """Where it was trained (:meth:`Backend.describe`)."""


def _weighted_nll(
    flow, x, c, w, bins: int, chunk: int = 1 << 16, backend: Backend | None = None
) -> float:
    """−Σ w ln p / Σ w (standardised space); NaN where Σ w ≤ 0 (no density to compare with)."""
    import torch

    tot = 0.0
    wsum = float(w.sum()) if len(w) else 0.0
    if wsum <= 0:
        return float("nan")
    density = log_prob if backend is None else backend.log_prob
    with torch.inference_mode():
        for s in range(0, len(x), chunk):
            lp = density(flow, x[s : s + chunk], c[s : s + chunk], bins)
            tot += float(-(w[s : s + chunk] * lp).sum())
    return tot / wsum


def weighted_nll(flow, pre: Preprocessing, data: TrainingData, bins: int) -> float:
    """Weighted NLL −Σ w ln p(x|m) / Σ w of ``data`` in the standardised space (the training
    loss's scale); NaN for no rows or Σ w ≤ 0."""
    import torch

    if data.n == 0:
        return float("nan")
    x = torch.as_tensor(pre.features(data.qT, data.E), dtype=torch.float32)
    c = torch.as_tensor(pre.context(data.m), dtype=torch.float32)
    w = torch.as_tensor(data.weight, dtype=torch.float64)
    return _weighted_nll(flow, x, c, w, bins)


def systematic_resample(cum: torch.Tensor, points: int, gen: torch.Generator) -> torch.Tensor:
    """``points`` indices drawn ∝ the probabilities whose cumulative sum is ``cum`` (float64,
    ending at 1) by systematic resampling, in random order.

    Row i is drawn ⌊λᵢ⌋ or ⌈λᵢ⌉ times, λᵢ = points·pᵢ (multinomial draws vary by ≈ √λᵢ), so
    every pair with λᵢ ≥ 1 is used in every epoch; with equal probabilities and ``points`` =
    rows it is a permutation.

    References:
        G. Kitagawa, J. Comput. Graph. Stat. 5 (1996) 1; R. Douc, O. Cappé, E. Moulines,
        ISPA 2005 (systematic resampling, variance of the counts).
    """
    import torch

    u = torch.rand(1, generator=gen, dtype=torch.float64)
    pos = (torch.arange(points, dtype=torch.float64) + u) / points
    idx = torch.searchsorted(cum, pos, right=True).clamp_(max=len(cum) - 1)
    return idx[torch.randperm(points, generator=gen)]


def _negative_batches(wb: torch.Tensor, batch: int) -> int:
    """Number of batches (consecutive ``batch`` loss weights) with net weight ≤ 0."""
    import torch

    nb = math.ceil(len(wb) / batch)
    pad = torch.zeros(nb * batch, dtype=wb.dtype)
    pad[: len(wb)] = wb
    return int((pad.view(nb, batch).sum(1) <= 0).sum())


class PointSampler:
    """The points of an epoch and their loss weights for ``flow.weighting`` (see :func:`fit`).

    All three schemes estimate the same loss −Σ wᵢ ln pᵢ / N (weights normalised to
    Σw/N = 1) without bias: ``likelihood`` draws a permutation and weights the loss by wᵢ;
    ``sampler`` (multinomial) and ``stratified`` (:func:`systematic_resample`) draw ∝ |wᵢ| and
    weight by sign(wᵢ)·Σ|w|/N.

    Arguments:
        w: weights of the fitted rows, normalised to Σw/N = 1 (torch tensor).
        scheme: ``stratified``, ``sampler`` or ``likelihood``.
    """

    def __init__(self, w: torch.Tensor, scheme: str) -> None:
        import torch

        if scheme not in ("stratified", "sampler", "likelihood"):
            raise GammastarError(f"flow.weighting: unknown scheme {scheme!r}")
        self.scheme = scheme
        self.n = len(w)
        if scheme == "likelihood":
            self.loss_weight = w
            return
        # draw ∝ |w|, carry sign(w)·Σ|w|/N: E[loss] = −Σ w ln p / N, as the uniform estimator
        absw = w.abs().double()
        self.probs = absw / absw.sum()
        self.cum = torch.cumsum(self.probs, 0)
        self.cum /= self.cum[-1].clone()
        self.loss_weight = torch.sign(w) * w.abs().mean()

    def epoch(self, points: int, gen: torch.Generator) -> torch.Tensor:
        """Indices of the ``points`` rows of one epoch, in the order they are used."""
        import torch

        if self.scheme == "stratified":
            return systematic_resample(self.cum, points, gen)
        if self.scheme == "sampler":
            return torch.multinomial(self.probs, points, replacement=True, generator=gen)
        if points >= self.n:
            return torch.randperm(self.n, generator=gen)
        return torch.randperm(self.n, generator=gen)[:points]


@dataclass
class FitRows:
    """The standardised tensors of the fitted and the early-stopping rows (:func:`fit_rows`)."""

    pre: Preprocessing
    x_fit: torch.Tensor
    c_fit: torch.Tensor
    w_fit: torch.Tensor
    """float32 loss weights, normalised to Σw/N = 1 on the fitted rows (never a batch's sum)."""
    w_fit_raw: torch.Tensor
    """float64 weights of the fitted rows as given (for the fitted NLL of the result)."""
    x_val: torch.Tensor
    c_val: torch.Tensor
    w_val: torch.Tensor
    n_eff: dict[str, float]

    def to(self, device: str) -> FitRows:
        """The same rows with every tensor on ``device`` (themselves on the CPU)."""
        if device == "cpu":
            return self
        moved = {
            k: getattr(self, k).to(device)
            for k in ("x_fit", "c_fit", "w_fit", "w_fit_raw", "x_val", "c_val", "w_val")
        }
        return replace(self, **moved)


def fit_rows(data: TrainingData, cfg: FlowConfig, seed: int) -> FitRows:
    """Split ``data`` (:func:`split_indices`), fit the preprocessing on the fitted rows and
    convert both parts to tensors.

    Raises:
        InputError: Σw ≤ 0 on the fitted or the early-stopping rows.
    """
    import torch

    tr_idx, val_idx = split_indices(data.n, cfg.validation_fraction, seed)
    pre = Preprocessing.fit(
        data.qT[tr_idx],
        data.E[tr_idx],
        data.m[tr_idx],
        data.weight[tr_idx],
        mass_transform=cfg.mass_context,
    )

    def tensors(idx):
        x = torch.as_tensor(pre.features(data.qT[idx], data.E[idx]), dtype=torch.float32)
        c = torch.as_tensor(pre.context(data.m[idx]), dtype=torch.float32)
        w = torch.as_tensor(data.weight[idx], dtype=torch.float32)
        return x, c, w

    x_tr, c_tr, w_tr = tensors(tr_idx)
    x_va, c_va, w_va = tensors(val_idx)
    wsum_tr = float(data.weight[tr_idx].sum())
    if wsum_tr <= 0 or float(data.weight[val_idx].sum()) <= 0:
        raise InputError(
            "the training weights sum to ≤ 0 on the fitted or the early-stopping rows "
            f"(flow.validation_fraction={cfg.validation_fraction:g}): too few rows or too much "
            "like-sign subtraction"
        )
    n_eff = {
        "fitted": effective_sample_size(data.weight[tr_idx]),
        "early_stopping": effective_sample_size(data.weight[val_idx]),
    }
    return FitRows(
        pre=pre,
        x_fit=x_tr,
        c_fit=c_tr,
        w_fit=w_tr / (wsum_tr / len(tr_idx)),
        w_fit_raw=torch.as_tensor(data.weight[tr_idx], dtype=torch.float64),
        x_val=x_va,
        c_val=c_va,
        w_val=w_va,
        n_eff=n_eff,
    )


@dataclass(frozen=True)
class EpochPlan:
    """Points per epoch, batch size and the learning-rate schedule's step counts."""

    points: int
    batch: int
    total_steps: int
    warmup: int

    @classmethod
    def of(cls, cfg: FlowConfig, n_fit: int, batch_size: int | None = None) -> EpochPlan:
        """The plan of ``flow`` for ``n_fit`` fitted rows (``batch_size``: the backend's, default
        ``flow.batch_size``)."""
        points = n_fit if cfg.points_per_epoch is None else int(cfg.points_per_epoch)
        batch = min(int(batch_size or cfg.batch_size), points)
        steps_per_epoch = max(1, math.ceil(points / batch))
        return cls(points, batch, steps_per_epoch * cfg.epochs, cfg.warmup_epochs * steps_per_epoch)


@dataclass
class TrainState:
    """Everything a checkpoint holds: model, optimiser, schedule, random streams, history,
    the best state so far and the early-stopping counter."""

    flow: Any
    flat: Any
    opt: Any
    sched: Any
    gen: Any
    history: dict[str, list[float]] = field(
        default_factory=lambda: {
            k: [] for k in ("train", "val", "lr", "train_s", "negative_batches")
        }
    )
    best: dict[str, Any] = field(
        default_factory=lambda: {"loss": math.inf, "epoch": -1, "state": None}
    )
    bad_epochs: int = 0
    epoch: int = 0
    stopped_early: bool = False
    train_s: float = 0.0
    """optimisation time, excluding the validation passes"""
    backend: Backend = field(default_factory=lambda: Backend("cpu", True, 0, 0.0))

    @classmethod
    def new(
        cls,
        arch: Mapping[str, Any],
        cfg: FlowConfig,
        plan: EpochPlan,
        seed: int,
        backend: Backend | None = None,
    ):
        """A freshly initialised flow (seeded, on the CPU whatever the device, so that every
        device starts from the same weights) with its AdamW optimiser and schedule."""
        import torch

        backend = backend or Backend.of(cfg, "cpu")
        if backend.fused:
            _flow_training.warm_up()  # one-time kernel loading, before the first step's clock
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)  # the epochs' draws: on the CPU everywhere
        flow = build_flow(arch).to(backend.device)
        # one flat parameter tensor for the optimizer (the module's parameters are views of it)
        flat = _flow_training.FlatParameters(flow)
        opt = torch.optim.AdamW(
            [flat.param], lr=backend.learning_rate, weight_decay=cfg.weight_decay, foreach=False
        )
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: _lr_factor(s, plan.total_steps, plan.warmup, cfg.schedule)
        )
        return cls(flow, flat, opt, sched, gen, backend=backend)

    def save(self, checkpoint: str | os.PathLike[str] | None, ident: Mapping[str, Any]) -> None:
        """Write the checkpoint (atomically); nothing without a ``checkpoint`` path."""
        import torch

        if checkpoint is None:
            return
        ck = {
            "identity": json.dumps(ident),
            "model": self.flow.state_dict(),
            "optimizer": self.opt.state_dict(),
            "scheduler": self.sched.state_dict(),
            "generator": self.gen.get_state(),
            "torch_rng": torch.get_rng_state(),
            "history": json.dumps(self.history),
            "best_loss": self.best["loss"],
            "best_epoch": self.best["epoch"],
            "best_state": self.best["state"] or {},
            "bad_epochs": self.bad_epochs,
            "epoch": self.epoch,
            "stopped_early": self.stopped_early,
        }
        with atomic_path(checkpoint, force=True) as tmp:
            torch.save(ck, tmp)

    def resume(self, checkpoint: str | os.PathLike[str] | None, ident: Mapping[str, Any]) -> None:
        """Continue from ``checkpoint`` (the same result as an uninterrupted run).

        Raises:
            GammastarError: no or an unreadable checkpoint.
            CheckpointMismatchError: a checkpoint of another config, data set or seed.
        """
        import torch

        if checkpoint is None or not Path(checkpoint).exists():
            raise GammastarError(f"{checkpoint}: no checkpoint to resume from")
        try:
            ck = torch.load(checkpoint, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 (reported as a GammastarError)
            raise GammastarError(f"{checkpoint}: unreadable checkpoint ({err})") from None
        saved = json.loads(ck.get("identity", "{}"))
        if saved != json.loads(json.dumps(ident)):
            diff = sorted(k for k in set(saved) | set(ident) if saved.get(k) != ident.get(k))
            raise CheckpointMismatchError(
                f"{checkpoint}: checkpoint does not match this config/data ({', '.join(diff)}); "
                "train without --resume"
            )
        self.flow.load_state_dict(ck["model"])
        self.opt.load_state_dict(ck["optimizer"])
        self.sched.load_state_dict(ck["scheduler"])
        self.gen.set_state(ck["generator"])
        torch.set_rng_state(ck["torch_rng"])
        self.history = {k: list(v) for k, v in json.loads(ck["history"]).items()}
        self.history.setdefault("negative_batches", [])
        best_state = ck["best_state"] if ck["best_state"] else None
        self.best = {
            "loss": float(ck["best_loss"]),
            "epoch": int(ck["best_epoch"]),
            "state": best_state,
        }
        self.bad_epochs = int(ck["bad_epochs"])
        self.train_s = self.history["train_s"][-1] if self.history.get("train_s") else 0.0
        self.epoch = int(ck["epoch"])
        self.stopped_early = bool(ck.get("stopped_early", False))

    def train_epoch(self, rows: FitRows, draw: PointSampler, plan: EpochPlan, bins: int):
        """One epoch of AdamW steps; returns (mean training loss, batches with net weight ≤ 0)."""
        self.flow.train()
        idx = draw.epoch(plan.points, self.gen)
        negative = _negative_batches(draw.loss_weight[idx], plan.batch)
        dev = self.backend.device
        # the rows and their loss weights on the device; the draws stay on the CPU's generator
        idx_d = idx.to(dev)
        loss_weight = draw.loss_weight.to(dev)
        losses = []
        t_epoch = time.perf_counter()
        for s in range(0, len(idx), plan.batch):
            b = idx_d[s : s + plan.batch]
            lp = self.backend.log_prob(self.flow, rows.x_fit[b], rows.c_fit[b], bins)
            # normalised by the global Σw/N = 1 (FitRows.w_fit), not by this batch's Σw
            loss = -(loss_weight[b] * lp).sum() / len(b)
            self.flat.backward(loss)
            self.opt.step()
            self.sched.step()
            losses.append((loss.detach(), len(b)))
        # read once the epoch is queued: a read per step would wait for the GPU every step
        tot, n = 0.0, 0
        for loss_b, nb in losses:
            tot += loss_b.item() * nb
            n += nb
        self.train_s += time.perf_counter() - t_epoch
        self.flow.eval()
        return tot / n, negative

    def record(self, epoch: int, train_loss: float, val_loss: float, negative: int) -> None:
        """Append the epoch to the history; keep the best-validation state."""
        h = self.history
        h["train"].append(train_loss)
        h["val"].append(val_loss)
        h["lr"].append(float(self.opt.param_groups[0]["lr"]))
        h["train_s"].append(self.train_s)
        h["negative_batches"].append(negative)
        if val_loss < self.best["loss"]:
            state = {k: v.detach().clone() for k, v in self.flow.state_dict().items()}
            self.best = {"loss": val_loss, "epoch": epoch, "state": state}
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1


@dataclass(frozen=True)
class Checkpoint:
    """How :func:`fit` checkpoints: the file, a resumed run, what the checkpoint must match,
    and a stop (as if interrupted) after a number of epochs."""

    path: str | os.PathLike[str] | None = None
    """File for periodic checkpoints (every ``flow.checkpoint_every`` epochs); ``None``: none."""
    resume: bool = False
    """Continue from ``path``; gives the same result as an uninterrupted run."""
    identity: Mapping[str, Any] | None = None
    """Data/config hashes that a resumed checkpoint must match (besides the training data's
    hash, the seed, the architecture and the optimiser's layout, always checked)."""
    stop_after: int | None = None
    """Stop (as if interrupted) after this many epochs, writing a checkpoint."""


def fit(
    data: TrainingData,
    cfg: FlowConfig,
    *,
    seed: int,
    checkpoint: Checkpoint | None = None,
    progress: bool = False,
    callback: Any = None,
    restore_best: bool = True,
    threads: int | None = None,
    backend: Backend | None = None,
) -> FitResult:
    """Weighted maximum-likelihood training (the engine of :func:`gammastar.flow.stage.train`).

    The loss is the weighted NLL L = −Σ wᵢ ln p(xᵢ|mᵢ) / Σ wᵢ over the fitted rows (negative
    like-sign weights included), each batch an unbiased estimate normalised by the *global*
    Σ w (:class:`FitRows`), the points drawn by :class:`PointSampler`; see docs/explanation/flow.md
    "Strongly varying weights". Steps: :func:`fit_rows`, :class:`EpochPlan`,
    :meth:`TrainState.new` / :meth:`~TrainState.resume`, then per epoch
    :meth:`~TrainState.train_epoch`, the validation NLL, :meth:`~TrainState.record` and
    :meth:`~TrainState.save`.

    Arguments:
        data: training rows (weights may be negative; normalised to mean 1).
        cfg: ``flow`` config section (architecture, optimisation, ``device``).
        seed: seeds the split, the initialisation and the batch order.
        checkpoint: where and how to checkpoint, resume or stop early (:class:`Checkpoint`;
            ``None``: no checkpoints).
        progress: show a progress bar with the train/validation loss.
        callback: ``callback(epoch, train_loss, val_loss)`` after each epoch; a true return
            value stops the training there.
        restore_best: return the best-validation state (early stopping); ``False`` returns
            the last state (tests of overfitting).
        threads: torch's CPU threads during the training (``flow.threads`` first; default
            torch's, at most the cores this process may use,
            :func:`gammastar.core.threads.usable_cores`); restored afterwards.
        backend: device, density and batch (default :meth:`Backend.of` ``flow``).

    Returns:
        :class:`FitResult` with the best-validation flow (early stopping), on the CPU.
    """
    import torch

    backend = backend or Backend.of(cfg)
    # torch's default is the machine's cores, whatever share of them this process has (a
    # batch slot's affinity, taskset): at most that share, fewer where the caller set fewer
    n = cfg.threads or threads or min(torch.get_num_threads(), usable_cores())
    with torch_threads(int(n)):
        return _fit(data, cfg, seed, checkpoint, progress, callback, restore_best, backend)


def _fit(
    data: TrainingData,
    cfg: FlowConfig,
    seed: int,
    checkpoint: Checkpoint | None,
    progress: bool,
    callback: Any,
    restore_best: bool,
    backend: Backend,
) -> FitResult:
    t_start = time.perf_counter()
    arch = architecture_from_config(cfg)
    bins = int(arch["bins"])
    rows_cpu = fit_rows(data, cfg, seed)
    rows = rows_cpu.to(backend.device)
    plan = EpochPlan.of(cfg, len(rows.x_fit), backend.batch_size)
    draw = PointSampler(rows_cpu.w_fit, cfg.weighting)
    st = TrainState.new(arch, cfg, plan, seed, backend)
    ck = checkpoint or Checkpoint()
    stop_after = ck.stop_after
    ident = {
        **dict(ck.identity or {}),
        "data_sha256": data.sha256,
        "seed": seed,
        "arch": json.dumps(arch),
        "optimizer": _flow_training.OPTIMIZER_LAYOUT,
        **({} if backend.device == "cpu" else {"device": backend.device}),
    }
    if ck.resume:
        st.resume(ck.path, ident)
    with _progress(progress, cfg.epochs, st.epoch) as bar:
        for epoch in range(st.epoch, cfg.epochs):
            if st.stopped_early or (stop_after is not None and epoch >= stop_after):
                break
            train_loss, negative = st.train_epoch(rows, draw, plan, bins)
            val_loss = _weighted_nll(
                st.flow, rows.x_val, rows.c_val, rows.w_val, bins, backend=backend
            )
            st.record(epoch, train_loss, val_loss, negative)
            if callback is not None and callback(epoch, train_loss, val_loss):
                break
            bar(epoch + 1, train_loss, val_loss)
            st.epoch = epoch + 1
            st.stopped_early = st.bad_epochs >= cfg.patience
            stop = stop_after is not None and st.epoch >= stop_after
            if (
                st.epoch % cfg.checkpoint_every == 0
                or st.epoch == cfg.epochs
                or st.stopped_early
                or stop
            ):
                st.save(ck.path, ident)
            if st.stopped_early:
                break
    if restore_best and st.best["state"] is not None:
        st.flow.load_state_dict(st.best["state"])
    st.flow.eval()
    train_nll = _weighted_nll(
        st.flow, rows.x_fit, rows.c_fit, rows.w_fit_raw, bins, backend=backend
    )
    return FitResult(
        flow=st.flow.to("cpu"),  # the model, its NLLs and its samples: on the CPU from here
        preprocessing=rows.pre,
        history=st.history,
        best_epoch=int(st.best["epoch"]),
        epochs_run=len(st.history["val"]),
        stopped_early=st.stopped_early,
        wall_s=time.perf_counter() - t_start,
        train_nll=train_nll,
        n_eff=rows.n_eff,
        device=backend.describe(),
    )


@contextlib.contextmanager
def _progress(enabled: bool, total: int, start: int) -> Iterator[Any]:
    if not enabled:
        yield lambda *a: None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("flow"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} epochs"),
        TextColumn("train {task.fields[tl]}  val {task.fields[vl]}"),
        TimeElapsedColumn(),
    ) as prog:
        task = prog.add_task("train", total=total, completed=start, tl="-", vl="-")

        def update(done: int, tl: float, vl: float) -> None:
            prog.update(task, completed=done, tl=f"{tl:.4f}", vl=f"{vl:.4f}")

        yield update


@figure_style()
def plot_losses(history: Mapping[str, Sequence[float]], path: Path, force: bool = True) -> Path:
    """Training and validation loss vs epoch (paper Fig. 7 analogue)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 5))
    ax = fig.subplots()
    ep = np.arange(1, len(history["train"]) + 1)
    ax.plot(ep, history["train"], label="training")
    ax.plot(ep, history["val"], label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("negative log-likelihood")
    ax.legend()
    # fixed margins that hold tick labels of up to seven characters (a tight layout would
    # draw the figure once more to measure them: half of this figure's time)
    fig.subplots_adjust(left=0.16, right=0.95, top=0.95)
    return save_figure(fig, path, force=force, close=True, dpi=120)
