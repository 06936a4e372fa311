"""One optimiser step as every transformer trainer takes it: warm-up then cosine learning rate,
clipped gradients, and the EMA that gets shipped."""
from __future__ import annotations

import math

import torch

from .ema import update_ema


def set_lr(optimizer, peak: float, step: int, warmup: int, steps: int) -> float:
    """Linear warm-up to `peak`, then a cosine down to 10% of it at `steps`."""
    lr = peak * min(1.0, (step + 1) / warmup) * (0.55 + 0.45 * math.cos(math.pi * step / steps))
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr


def apply_gradients(model: torch.nn.Module, optimizer, loss: torch.Tensor, ema: torch.nn.Module,
                    ema_decay: float) -> torch.Tensor:
    """Backward, clip to norm 1, step, and move the EMA (a copy while `ema_decay` is 0); the norm."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    update_ema(ema, model, ema_decay)
    return grad_norm
