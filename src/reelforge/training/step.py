"""What every transformer trainer shares: its device, warm-up then cosine learning rate, clipped
gradients and the EMA that gets shipped, and a step count fitted to a time budget."""
from __future__ import annotations

import math
import time
from typing import Callable

import torch

from .ema import update_ema


def training_device(name: str) -> torch.device:
    """A config's "cpu", "cuda" or "auto" (cuda where there is one)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def set_lr(optimizer, peak: float, step: int, warmup: int, steps: int) -> float:
    """Linear warm-up to `peak`, then a cosine down to 10% of it at `steps`; a group with an
    `lr_scale` gets that multiple of it."""
    lr = peak * min(1.0, (step + 1) / warmup) * (0.55 + 0.45 * math.cos(math.pi * step / steps))
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
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


class StepBudget:
    """The run's total step count: `steps`, or, with a wall-clock budget, as many as fit in it at the
    rate measured over the warm-up steps (a lent GPU's rate is only known once it runs), so that the
    cosine schedule still ends at its floor."""

    def __init__(self, steps: int, budget_s: float, warmup: int, first_step: int):
        self.total, self.budget_s, self.warmup = steps, budget_s, max(1, warmup)
        self.began, self.first_step, self.timed_from = time.time(), first_step, 0.0

    def __call__(self, step: int, log: Callable[[str], None]) -> int:
        if self.budget_s and step == self.first_step + 10:
            self.timed_from = time.time()  # the first steps include the GPU's warm-up
        if self.budget_s and step == self.first_step + 10 + self.warmup:
            rate = self.warmup / (time.time() - self.timed_from)
            self.total = min(self.total, max(step + 1, step + int(rate * (self.budget_s - (time.time() - self.began)))))
            log(f"time budget {self.budget_s:.0f} s at {rate:.1f} steps/s: training {self.total} steps")
        return self.total
