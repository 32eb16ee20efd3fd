"""Ensembles of flows trained with different seeds: their spread is a model uncertainty.

Offers :class:`Ensemble` (samples of every member, the spread of a statistic),
:func:`load_ensemble` (``flow/`` and ``flow/ensemble/<i>/``, checked to be of one training),
:func:`ensemble_size` and :func:`remove_stale_members`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gammastar.core import rundir
from gammastar.errors import GammastarError
from gammastar.flow.model import FlowModel, load, resolve_model_dir


class Ensemble:
    """Models trained with different seeds; their spread is a model uncertainty."""

    def __init__(self, models: Sequence[FlowModel]) -> None:
        if not models:
            raise GammastarError("empty flow ensemble")
        self.models = list(models)

    def __len__(self) -> int:
        return len(self.models)

    def sample(self, mass, n: int, seed: int | None = None, **kw: Any) -> dict[str, np.ndarray]:
        """n samples from each member: arrays of shape (members, n)."""
        ss = np.random.SeedSequence(seed)
        outs = [
            m.sample(mass, n, seed=int(c.generate_state(1)[0]), **kw)
            for m, c in zip(self.models, ss.spawn(len(self.models)), strict=True)
        ]
        return {k: np.stack([o[k] for o in outs]) for k in outs[0]}

    def spread(self, statistic: Any, mass, n: int, seed: int | None = None) -> tuple[float, float]:
        """Mean and standard deviation over members of ``statistic(samples_dict)``."""
        s = self.sample(mass, n, seed)
        vals = np.array(
            [statistic({k: v[i] for k, v in s.items()}) for i in range(len(self.models))]
        )
        return float(vals.mean()), float(vals.std(ddof=1) if len(vals) > 1 else 0.0)


def ensemble_size(model: FlowModel) -> int | None:
    """The ensemble size recorded in the model's ``meta.json`` (``None``: not recorded)."""
    size = model.meta.get("meta", {}).get("ensemble_size")
    return int(size) if isinstance(size, int) and size > 0 else None


def load_ensemble(path: str | os.PathLike[str]) -> Ensemble:
    """Load ``flow/`` and the members ``flow/ensemble/<i>/``, i = 1 … ensemble_size − 1.

    Only the members that ``flow/meta.json`` records (``ensemble_size``) are loaded: a directory
    beyond them is left from an older, larger ensemble and ignored. A model without a recorded
    size (older gammastar) loads every member directory found.

    Raises:
        GammastarError: a recorded member is missing, or was trained with another flow config
            or data set than ``flow/`` (left from an interrupted or older training).
    """
    d = resolve_model_dir(path)
    first = load(d)
    size = ensemble_size(first)
    ens = d / rundir.ENSEMBLE_DIR
    if size is None:
        subs = (
            sorted((p for p in ens.iterdir() if p.is_dir()), key=lambda p: int(p.name))
            if ens.is_dir()
            else []
        )
    else:
        subs = [ens / str(i) for i in range(1, size)]
    models = [first]
    ref = first.meta.get("meta", {})
    for sub in subs:
        if size is not None and not (sub / rundir.MODEL_META_FILE).exists():
            raise GammastarError(
                f"{sub}: ensemble member missing ({d / rundir.MODEL_META_FILE} records {size} members)"
            )
        member = load(sub)
        got = member.meta.get("meta", {})
        for key in ("config_sha256", "data_sha256"):
            if size is not None and got.get(key) != ref.get(key):
                raise GammastarError(
                    f"{sub}: ensemble member of another training ({key} differs from "
                    f"{d / rundir.MODEL_META_FILE}); retrain with --force"
                )
        models.append(member)
    return Ensemble(models)


def remove_stale_members(ens: Path, size: int) -> None:
    """Delete ``ensemble/<i>`` for i ≥ ``size`` (an older, larger ensemble), after the new
    members are written; the ``ensemble`` directory too when nothing is left in it."""
    import shutil

    if not ens.is_dir():
        return
    for sub in ens.iterdir():
        if sub.is_dir() and sub.name.isdigit() and int(sub.name) >= size:
            shutil.rmtree(sub)
    if not any(ens.iterdir()):
        ens.rmdir()
