"""Small zuko flows with randomised parameters for the kernel tests."""

from __future__ import annotations

import torch

from gammastar.config.flow import FlowConfig
from gammastar.flow.architecture import architecture_from_config, build_flow


def randomised_flow(seed=0, scale=0.2, **arch):
    """A flow of the package's architecture (3 steps, 6 bins, MADE 16 × 16 unless ``arch``
    says otherwise) whose parameters are moved off their initial values by ``scale`` × N(0, 1),
    so that every spline is far from the identity; returns ``(flow, bins)``."""
    torch.manual_seed(seed)
    cfg = FlowConfig(**{"transforms": 3, "bins": 6, "hidden_features": [16, 16], **arch})
    fl = build_flow(architecture_from_config(cfg))
    with torch.no_grad():
        for p in fl.parameters():
            p.add_(scale * torch.randn_like(p))
    return fl, cfg.bins
