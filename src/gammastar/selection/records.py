"""The selection's run records: the options of a call, the run (executor, staging, streams) and
the weighted pairs, shared by the stage's steps.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gammastar.selection.executors import Execution
from gammastar.selection.weights.pairs import WeightSpec, _AtPairs

if TYPE_CHECKING:
    import hist
    import pandas as pd


log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- driver steps
@dataclass(frozen=True)
class _Options:
    """How :func:`select` runs (its keyword arguments)."""

    execution: Execution
    skip_bad_files: bool
    force: bool


@dataclass
class _Run:
    """What the checks established before processing, and the step timestamps."""

    outdir: Path
    checked: Any
    """:class:`gammastar.io.CheckedInputs`."""
    em: Any
    am: Any
    phase_space: str
    spec: WeightSpec | None
    staging: Path | str | None
    """The parts' staging directory (a URL with ``selection.pairs_url``)."""
    t0: float
    polarisation_used: bool = False
    """The acceptance follows the measured λ_θ(m) (``unfold.decay_lambda_theta: measured``)."""
    fit_lambda: bool = False
    """λ_θ(m) is fitted in this run (:func:`_measured_acceptance`): ``am`` is the isotropic
    acceptance until then, the one of the fitted λ_θ(m) after."""
    times: dict[str, float] = field(default_factory=dict)
    shared_staging: bool = True
    """The workers write their parts into ``staging`` (``Execution.shared_staging``)."""


@dataclass
class _Weighted:
    """The weighted pairs of a run (:func:`_weigh`)."""

    pairs: pd.DataFrame | None
    """The table (``None``: streamed to ``streamed``)."""
    streamed: Path | str | None
    """The dataset the workers wrote (a URL with ``selection.pairs_url``)."""
    raw: Mapping[str, hist.Hist]
    estimate: Any
    """The like-sign estimate (:func:`like_sign`)."""
    eff_report: Any
    """:class:`gammastar.corrections.unfold.efficiency.UnfoldReport`."""
    acc_report: dict[str, Any] | None
    unfolded: Mapping[str, hist.Hist] | None
    eta: dict[str, Any]
    acceptance: _AtPairs | None = None
    """A measured λ_θ's acceptance at every pair (the final weights'; ``None``: ``run.am``
    looks the pairs up itself)."""
    polarisation: dict[str, Any] | None = None
    """A measured λ_θ's fit, on the pairs of the isotropic fiducial region: the
    ``polarisation`` block (:func:`_measured_acceptance`)."""
    reuse: dict[str, Any] = field(default_factory=dict)
    """What a measured λ_θ's isotropic weighting shares with the final one
    (:func:`_weigh_table`'s ``reuse``)."""
    moments: list[np.ndarray] | None = None
    """The per-pair acceptance's four moments at every pair of ``pairs`` ((4, n_i) float32
    blocks of rows, in order), where the
    chunks looked them up with A (:class:`WeightSpec` ``moments``): the polarisation
    measurement's, released once it has them."""

    def table(self) -> pd.DataFrame:
        """The pairs table, held in memory (the steps that need every pair here: a measured
        λ_θ, the flavours' union)."""
        if self.pairs is None:
            raise RuntimeError("the selection's pairs were streamed to the dataset, not held")
        return self.pairs


@dataclass
class _Selected:
    """One flavour's selection, computed (:func:`_select_compute`), not yet written."""

    run: _Run
    w: _Weighted
    hists: dict[str, Any]
    meta: dict[str, Any]
    doc: dict[str, Any]
    cutflow: dict[str, int]
    bad_files: dict[str, str]
