"""The flow's architecture: a zuko masked-autoregressive rational-quadratic-spline flow.

Offers :func:`architecture_from_config` (the JSON record stored in ``flow/meta.json``),
:func:`build_flow` (the zuko flow it describes) and the walkers of a built flow's structure
(:func:`split_transforms`, :func:`lu_matrix`, :func:`made_layers`) that the compiled kernels
(:mod:`gammastar.flow._training_kernels`, :mod:`gammastar.flow._sampling_kernels`) read the parameters with.
zuko's own transforms are the reference implementation of the mathematics (docs/explanation/flow.md).

References:
    Durkan et al. (2019), Neural Spline Flows; Papamakarios et al. (2017), MAF; zuko
    (``MaskedAutoregressiveTransform``, ``MonotonicRQSTransform``, ``LULinearTransform``).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from gammastar.errors import GammastarError

if TYPE_CHECKING:
    import torch

    from gammastar.config.flow import FlowConfig

BOUND = 5.0
"""zuko's spline domain [−B, B] (identity outside)."""
SLOPE = 1e-3
"""zuko's minimum spline slope."""


def architecture_from_config(cfg: FlowConfig) -> dict[str, Any]:
    """The JSON architecture record that :func:`build_flow` understands."""
    return {
        "kind": "zuko-maf-rqs",
        "features": 2,
        "context": 1,
        "transforms": int(cfg.transforms),
        "bins": int(cfg.bins),
        "hidden_features": [int(h) for h in cfg.hidden_features],
        "linear": bool(cfg.linear),
        "slope": SLOPE,
        "bound": BOUND,
    }


def build_flow(arch: Mapping[str, Any]) -> torch.nn.Module:
    """Build the zuko flow described by ``arch`` (see :func:`architecture_from_config`).

    Transforms map data → latent in the order [MAF_0, LU_0, MAF_1, LU_1, ..., MAF_{K−1}];
    the MAF feature orders alternate. The LU transforms start at the identity.
    """
    import torch
    import zuko
    from zuko.flows.autoregressive import MaskedAutoregressiveTransform
    from zuko.lazy import UnconditionalDistribution, UnconditionalTransform
    from zuko.transforms import LULinearTransform, MonotonicRQSTransform

    if arch.get("kind") != "zuko-maf-rqs" or arch.get("features") != 2:
        raise GammastarError(f"unknown flow architecture {arch.get('kind')!r}")
    bins = int(arch["bins"])
    transforms: list[Any] = []
    orders = [torch.arange(2), torch.tensor([1, 0])]
    for i in range(int(arch["transforms"])):
        transforms.append(
            MaskedAutoregressiveTransform(
                features=2,
                context=int(arch["context"]),
                order=orders[i % 2],
                univariate=partial(MonotonicRQSTransform, slope=float(arch["slope"])),
                shapes=[(bins,), (bins,), (bins - 1,)],
                hidden_features=list(arch["hidden_features"]),
            )
        )
        if arch["linear"] and i < int(arch["transforms"]) - 1:
            transforms.append(UnconditionalTransform(LULinearTransform, torch.eye(2)))
    base = UnconditionalDistribution(
        zuko.distributions.DiagNormal, torch.zeros(2), torch.ones(2), buffer=True
    )
    return zuko.flows.Flow(transforms, base)


def split_transforms(flow) -> list[tuple[str, Any]]:
    """[('maf', MaskedAutoregressiveTransform) | ('lu', UnconditionalTransform)] in flow order."""
    out = []
    for t in flow.transform.transforms:
        out.append(("maf", t) if hasattr(t, "hyper") else ("lu", t))
    return out


def lu_matrix(t) -> tuple[torch.Tensor, torch.Tensor]:
    """(L, U) of zuko's LU linear transform ``t``: W = L·U, L lower triangular with the learned
    diagonal, U unit upper triangular."""
    import torch

    lu = next(iter(t.parameters()))
    eye = torch.eye(lu.shape[-1], dtype=lu.dtype)
    return torch.tril(lu), torch.triu(lu, diagonal=1) + eye


def made_layers(t):
    """(weight ⊙ mask, bias) of the MADE hyper-network's linear layers."""
    import torch

    return [(m.mask * m.weight, m.bias) for m in t.hyper if isinstance(m, torch.nn.Linear)]
