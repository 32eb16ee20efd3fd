"""The flow and its validation: ``flow`` (the conditional normalizing flow's architecture
and training) and ``validate`` (the k-NN KL comparison with the data).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from gammastar.config.base import NonNegFloat, PositiveFloat, Section


# --------------------------------------------------------------------------- flow
class FlowConfig(Section):
    """Conditional normalizing flow p(qT, E | m) (paper App. A, docs/explanation/physics.md §5).

    The architecture defaults are the paper's (autoregressive RQ-spline flow, 8 transforms,
    6 bins, MADE 2 × 32, a linear transform between steps). The training defaults are a
    faster recipe than the paper's (batch 1024, lr 1e-3 constant, 500 epochs of 5e4 points)
    that reaches the same validation loss; set those values to reproduce the paper exactly
    (see docs/explanation/flow.md).
    """

    transforms: Annotated[int, Field(gt=0)] = 8
    """Autoregressive rational-quadratic-spline transforms (MAF steps) of the flow (paper: 8;
    :func:`gammastar.flow.architecture.build_flow`)."""
    bins: Annotated[int, Field(gt=1)] = 6
    """Spline bins of each transform on zuko's domain [−5, 5] (identity outside; paper: 6)."""
    hidden_features: list[Annotated[int, Field(gt=0)]] = Field(default_factory=lambda: [32, 32])
    """Hidden-layer widths of each transform's MADE network (paper: ``[32, 32]``)."""
    linear: bool = True
    """A learnable LU linear transform between the autoregressive steps (paper App. A)."""
    data: Literal["os", "subtracted", "os_signal"] = "os"
    """Training rows: OS pairs (the paper); OS and SS with negative SS weights (background-
    subtracted); or OS pairs without truth-combinatorial ones (mock only, ``channel != 0``)."""
    use_weights: bool = True
    """Weighted likelihood with the pairs' ``weight`` (unfolding); else ``weight_raw``."""
    weighting: Literal["stratified", "sampler", "likelihood"] = "stratified"
    """How the weighted likelihood −Σ w ln p / Σ w is estimated per batch: ``stratified``
    draws the points of an epoch ∝ |weight| by systematic resampling (each pair ⌊λ⌋ or ⌈λ⌉
    times, λ its expected count) and carries sign(w)·Σ|w|/Σw in the loss; ``sampler`` draws
    ∝ |weight| with replacement (multinomial); ``likelihood`` draws uniformly and puts the
    weights in the loss (high gradient variance for strongly varying weights; docs/explanation/flow.md)."""
    mass_context: Literal["linear", "log"] = "linear"
    """The flow's context: the standardised mass or the standardised ln m (``log``: for a
    range over decades, e.g. dielectrons from 20 MeV; docs/explanation/flow.md "Mass context")."""
    mass_flatten: Annotated[float, Field(ge=0, le=1)] = 0.0
    """Up-weight sparse masses: weights × ρ(m)^(−mass_flatten), ρ the mass density (0: off)."""
    epochs: Annotated[int, Field(gt=0)] = 30
    """Most training epochs of ``points_per_epoch`` points each; early stopping (``patience``)
    may end training sooner (paper: 500 epochs of 5·10⁴ points)."""
    points_per_epoch: Annotated[int, Field(gt=0)] | None = 100_000
    """Training points drawn at random per epoch (``null``: one pass over the training set)."""
    batch_size: Annotated[int, Field(gt=0)] = 4096
    """Points per optimizer step, at most the points of an epoch (paper: 1024;
    :class:`gammastar.flow.training.EpochPlan`)."""
    learning_rate: PositiveFloat = 5e-3
    """AdamW learning rate at its peak: reached after ``warmup_epochs``, then following
    ``schedule`` (paper: 10⁻³, constant)."""
    weight_decay: NonNegFloat = 1e-5
    """AdamW's decoupled weight decay on the flow's parameters (0: none)."""
    schedule: Literal["constant", "cosine"] = "cosine"
    """Learning-rate schedule per optimizer step (cosine decay to 1% after warm-up)."""
    warmup_epochs: Annotated[int, Field(ge=0)] = 0
    """Epochs of a linear learning-rate warm-up to ``learning_rate`` before ``schedule`` takes
    over (0: none)."""
    validation_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.2
    """Fraction of the training pairs (after the hold-out) used for early stopping."""
    holdout_fraction: Annotated[float, Field(ge=0, lt=1)] = 0.2
    """Fraction of the events whose pairs are held out of training (never seen by ``train``;
    ``validate`` compares the model with them). Split by a seeded hash of ``event``, so that
    all pairs of an event go to the same side; 0: no hold-out (validation on training rows)."""
    holdout_seed: Annotated[int, Field(ge=0)] | None = None
    """Seed of the hold-out split (default: the top-level ``seed``; not ``flow.seed``, so that
    every ensemble member and ``--seed`` share one split)."""
    patience: Annotated[int, Field(gt=0)] = 50
    """Early stopping: epochs without a validation-loss improvement."""
    checkpoint_every: Annotated[int, Field(gt=0)] = 5
    """Epochs between checkpoints (``flow/checkpoint.pt``, used by ``--resume``)."""
    ensemble: Annotated[int, Field(gt=0)] = 1
    """Number of models trained with seeds seed, seed+1, ... (``flow/ensemble/<i>/``)."""
    bootstrap: bool = False
    """Members i ≥ 1 of the ensemble fit a Poisson-bootstrap replica of the training pairs:
    each pair's weight × k, k ~ Poisson(1) (seeded by ``bootstrap_seed`` and i), so that their
    spread covers the data's finite statistics as well as the training's variance; member 0
    (``flow/``) stays the nominal fit to the data (docs/explanation/flow.md "Ensemble")."""
    bootstrap_seed: Annotated[int, Field(ge=0)] | None = None
    """Seed of the bootstrap replicas (default: the training seed of member 0)."""
    workers: Annotated[int, Field(gt=0)] | None = None
    """Processes training the ensemble's members in parallel (torch with one thread each);
    default: min(ensemble, the usable CPU cores); 1: one after the other in this process."""
    seed: Annotated[int, Field(ge=0)] | None = None
    """Training seed (default: the top-level ``seed``)."""
    max_pairs: Annotated[int, Field(gt=0)] | None = None
    """Use at most this many rows (a random subset) for training."""
    threads: Annotated[int, Field(gt=0)] | None = None
    """torch intra-op threads of the training on the CPU (default: torch's, at most the cores
    this process may use: its CPU affinity, or ``OMP_NUM_THREADS``)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where the flow is trained: ``auto`` (a CUDA GPU where torch sees one, else the CPU),
    ``cpu`` or ``cuda`` (refused where there is none). Recorded in ``flow/meta.json``; the
    model is saved for the CPU either way (docs/explanation/flow.md "Training")."""
    cuda_batch_size: Annotated[int, Field(gt=0)] | None = 32768
    """Points per optimizer step on a GPU, where a step costs about the same at any batch of
    this size, with ``learning_rate`` × √(cuda_batch_size / batch_size); ``null``:
    ``batch_size`` (:class:`gammastar.flow.training.Backend`)."""


class ValidateConfig(Section):
    """k-NN KL validation of the flow (docs/explanation/physics.md §6)."""

    k: Annotated[int, Field(gt=0)] = 2
    """k of the k-nearest-neighbour KL estimate: each point's distances to its k-th neighbour
    in the two samples (:func:`gammastar.flow.kl.knn_kl`; paper: 2)."""
    masses: list[PositiveFloat] = Field(
        default_factory=lambda: [0.3, 0.5, 0.7, 0.9, 1.05], min_length=1
    )
    """Masses in GeV at which the flow is compared with the data, each in a window of full width
    ``window``; given, each must lie inside the selection's mass range (checked on load); those
    outside the flow's mass range (the data's extent) are skipped. The reach's flow closure
    (``reach.flow_closure``) uses the same masses."""
    window: PositiveFloat = 0.03
    """Full width of the data mass window around each mass (GeV; about the resolution), narrower
    than the selection's mass range."""
    repeats: Annotated[int, Field(gt=1)] = 50
    """Independent draws for the data-vs-data bands and the model mean."""
    max_points: Annotated[int, Field(gt=1)] = 20_000
    """At most this many data points per window half (speed)."""
    figure_masses: list[PositiveFloat] = Field(default_factory=lambda: [0.3, 0.6, 0.9])
    """Masses of the q_T / E comparison figure (Fig. 5 analogue)."""
