"""The rectified-flow convention, written once: x_t = (1 - t) x0 + t noise, target noise - x0,
t = 1 is pure noise (Liu et al. 2022; Esser et al. 2024). Training and sampling both import it."""
from __future__ import annotations

import torch


def interpolate(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    t = t.view(-1, *([1] * (x0.dim() - 1)))
    return (1 - t) * x0 + t * noise


def velocity_target(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    return noise - x0


def sample_t(batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Logit-normal noise levels (SD3): most training where the sample's content is decided."""
    return torch.sigmoid(torch.randn(batch, generator=generator))


def flow_loss(model, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, **cond) -> torch.Tensor:
    """Per-sample mean squared velocity error (B,), so it can be logged by t."""
    v = model(interpolate(x0, noise, t), t, **cond)
    return (v.float() - velocity_target(x0, noise).float()).pow(2).flatten(1).mean(1)
