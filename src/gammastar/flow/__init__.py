"""Conditional normalizing flow p(q_T, E | m) of γ* / A′ kinematics (paper Sec. III C, App. A).

A zuko masked-autoregressive rational-quadratic-spline flow on standardised (ln q_T, ln E)
with the standardised mass as context. The package, one module per concern:

* :mod:`~gammastar.flow.architecture`: the architecture record and the zuko flow it builds;
* :mod:`~gammastar.flow.data`: pairs table → weighted training rows, hold-out split,
  preprocessing;
* :mod:`~gammastar.flow.model`: :class:`FlowModel` (density, sampling), save and load;
* :mod:`~gammastar.flow.training`: :func:`fit` with checkpoints and early stopping;
* :mod:`~gammastar.flow.stage`: the ``gammastar train`` stage (:func:`train`);
* :mod:`~gammastar.flow.ensemble`: ensembles of seeds.

The compiled kernels live in :mod:`gammastar.flow._training_kernels` and
:mod:`gammastar.flow._sampling_kernels` (checked against zuko's own transforms); the millicharged
recipe on a flow is :func:`gammastar.source.mcp.sample_mcp`. Design and measurements: docs/explanation/flow.md.

References:
    Allison & Blinov, Sec. III C and App. A; docs/explanation/physics.md §5; Durkan et al. (2019), Neural Spline
    Flows; Papamakarios et al. (2017), MAF.
"""

from __future__ import annotations

from gammastar.flow.architecture import (
    BOUND,
    SLOPE,
    architecture_from_config,
    build_flow,
    lu_matrix,
    made_layers,
    split_transforms,
)
from gammastar.flow.data import (
    FEATURES,
    HOLDOUT_METHOD,
    QT_FLOOR,
    Preprocessing,
    TrainingData,
    effective_sample_size,
    holdout_mask,
    mass_spectrum_from_pairs,
    n_eff_in_windows,
    read_pairs,
    split_indices,
    training_data,
)
from gammastar.flow.ensemble import Ensemble, ensemble_size, load_ensemble, remove_stale_members
from gammastar.flow.model import (
    MODEL_FORMAT,
    MODEL_FORMAT_VERSION,
    PHYSICAL_REDRAWS,
    FlowModel,
    ZukoSampler,
    load,
    log_prob,
    resolve_model_dir,
    save_model,
    write_samples,
)
from gammastar.flow.stage import (
    TrainResult,
    bootstrap_weights,
    ensemble_workers,
    holdout_seed_of,
    member_data,
    train,
    weight_report,
)
from gammastar.flow.training import (
    Checkpoint,
    CheckpointMismatchError,
    EpochPlan,
    FitResult,
    FitRows,
    PointSampler,
    TrainState,
    fit,
    fit_rows,
    plot_losses,
    systematic_resample,
    weighted_nll,
)
from gammastar.flow.training import _negative_batches as _negative_batches

__all__ = [
    "BOUND",
    "FEATURES",
    "HOLDOUT_METHOD",
    "MODEL_FORMAT",
    "MODEL_FORMAT_VERSION",
    "PHYSICAL_REDRAWS",
    "QT_FLOOR",
    "SLOPE",
    "Checkpoint",
    "CheckpointMismatchError",
    "Ensemble",
    "EpochPlan",
    "FitResult",
    "FitRows",
    "FlowModel",
    "PointSampler",
    "Preprocessing",
    "TrainResult",
    "TrainState",
    "TrainingData",
    "ZukoSampler",
    "architecture_from_config",
    "bootstrap_weights",
    "build_flow",
    "effective_sample_size",
    "ensemble_size",
    "ensemble_workers",
    "fit",
    "fit_rows",
    "holdout_mask",
    "holdout_seed_of",
    "load",
    "load_ensemble",
    "log_prob",
    "lu_matrix",
    "made_layers",
    "mass_spectrum_from_pairs",
    "member_data",
    "n_eff_in_windows",
    "plot_losses",
    "read_pairs",
    "remove_stale_members",
    "resolve_model_dir",
    "save_model",
    "split_indices",
    "split_transforms",
    "systematic_resample",
    "train",
    "training_data",
    "weight_report",
    "weighted_nll",
    "write_samples",
]
