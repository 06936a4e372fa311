"""Samplers: diffusers' flow-matching schedulers driven by one denoising loop.

The model predicts the velocity noise - x0 with sigma = t; diffusers' FlowMatch schedulers and
UniPC with flow sigmas integrate exactly that ODE, so no solver of our own is needed. The loop
calls `on_step(i, t, latents)` after every step and stops when it returns False (cancel).
"""
from __future__ import annotations

from typing import Callable

import torch
from diffusers import FlowMatchEulerDiscreteScheduler, FlowMatchHeunDiscreteScheduler, UniPCMultistepScheduler

SAMPLERS = ("euler", "heun", "unipc")


class SamplerError(ValueError):
    pass


class Cancelled(RuntimeError):
    """Raised when on_step asked to stop."""


def make_scheduler(name: str, steps: int, shift: float = 1.0):
    """A diffusers scheduler with `steps` model evaluations' worth of timesteps set."""
    if name not in SAMPLERS:
        raise SamplerError(f"unknown sampler {name!r}; allowed: {', '.join(SAMPLERS)}")
    if steps < 1:
        raise SamplerError(f"steps must be >= 1, got {steps}")
    if name == "euler":
        scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=shift)
    elif name == "heun":
        scheduler = FlowMatchHeunDiscreteScheduler(num_train_timesteps=1000, shift=shift)
    else:
        scheduler = UniPCMultistepScheduler(num_train_timesteps=1000, prediction_type="flow_prediction",
                                            use_flow_sigmas=True, flow_shift=shift, solver_order=2)
    # Heun evaluates the model twice per step: halve its steps so `steps` is the cost in evaluations.
    scheduler.set_timesteps(max(1, steps // 2) if name == "heun" else steps)
    return scheduler


def denoise(velocity: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], latents: torch.Tensor,
            scheduler, on_step: Callable[[int, float, torch.Tensor], bool | None] | None = None) -> torch.Tensor:
    """Integrate from noise (t = 1) to data (t = 0). velocity(latents, t) -> v with t shaped (B,)."""
    timesteps = scheduler.timesteps
    for i, timestep in enumerate(timesteps):
        t = (timestep / 1000.0).float().expand(latents.shape[0])
        v = velocity(latents, t)
        latents = scheduler.step(v, timestep, latents, return_dict=False)[0]
        if on_step is not None and on_step(i, float(t[0]), latents) is False:
            raise Cancelled(f"cancelled after step {i + 1} of {len(timesteps)}")
    return latents
