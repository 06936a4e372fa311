"""Samplers: diffusers' flow-matching schedulers driven by one denoising loop.

The model predicts the velocity noise - x0 with sigma = t; diffusers' FlowMatch schedulers and
UniPC with flow sigmas integrate exactly that ODE, so no solver of our own is needed. The loop
calls `on_step(i, t, latents)` after every step and stops when it returns False (cancel).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from diffusers import FlowMatchEulerDiscreteScheduler, FlowMatchHeunDiscreteScheduler, UniPCMultistepScheduler

from .objective import shift_t

SAMPLERS = ("euler", "heun", "unipc", "stagger")
STAGGER_LAG = 0.5  # frame T-1 starts when frame 0 is a third of the way to clean


class SamplerError(ValueError):
    pass


class Cancelled(RuntimeError):
    """Raised when on_step asked to stop."""


class StaggeredEulerScheduler:
    """Euler steps over a noise level per latent frame, frame k lagging frame 0 (the pyramid
    schedule of diffusion forcing, Chen et al. 2024): later frames are drawn beside cleaner
    earlier ones, which a model trained with per-frame levels conditions on. The same
    `timesteps` / `step` surface as diffusers' schedulers, with (T,) timesteps."""

    def __init__(self, steps: int, frames: int, shift: float = 1.0, lag: float = STAGGER_LAG):
        progress = torch.linspace(0, 1, steps + 1)[:, None]  # (steps + 1, 1)
        behind = torch.arange(frames)[None] / max(1, frames - 1)  # (1, T): 0 for frame 0, 1 for the last
        t = 1 - (progress * (1 + lag) - lag * behind).clamp(0, 1)  # (steps + 1, T) from 1 to 0
        self.sigmas = shift_t(t, shift)
        self.timesteps = [1000 * self.sigmas[i] for i in range(steps)]
        self._index = 0

    def step(self, velocity: torch.Tensor, timestep, latents: torch.Tensor, return_dict: bool = False):
        dt = self.sigmas[self._index + 1] - self.sigmas[self._index]  # (T,): 0 for frames waiting or done
        self._index += 1
        return (latents + dt.view(1, 1, -1, 1, 1) * velocity,)


def make_scheduler(name: str, steps: int, shift: float = 1.0, frames: int = 1):
    """A scheduler with `steps` model evaluations' worth of timesteps set (`frames`: latent frames,
    for the staggered one)."""
    if name not in SAMPLERS:
        raise SamplerError(f"unknown sampler {name!r}; allowed: {', '.join(SAMPLERS)}")
    if steps < 1:
        raise SamplerError(f"steps must be >= 1, got {steps}")
    if name == "stagger":
        return StaggeredEulerScheduler(steps, frames, shift)
    # Noise levels evenly spaced down to 0, as diffusers' Flux and SD3 pipelines pass them: the Euler and
    # Heun schedulers' own spacing ends at t = 0.001, where the last evaluation moves the latents by a
    # thousandth of a step (a 4-step student did 3 steps of work, a 2-step one 1).
    if name == "euler":
        scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=shift)
        scheduler.set_timesteps(sigmas=np.linspace(1.0, 1.0 / steps, steps))
        return scheduler
    if name == "heun":  # two evaluations per step: halve the steps so `steps` is the cost in evaluations
        scheduler = FlowMatchHeunDiscreteScheduler(num_train_timesteps=1000, shift=shift)
        heun_steps = max(1, steps // 2)
        scheduler.sigma_min, scheduler.sigma_max = 1.0 / heun_steps, 1.0  # its set_timesteps spaces these
        scheduler.set_timesteps(heun_steps)
        return scheduler
    scheduler = UniPCMultistepScheduler(num_train_timesteps=1000, prediction_type="flow_prediction",
                                        use_flow_sigmas=True, flow_shift=shift, solver_order=2)
    scheduler.set_timesteps(steps)
    return scheduler


def denoise(velocity: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], latents: torch.Tensor,
            scheduler, on_step: Callable[[int, float, torch.Tensor], bool | None] | None = None) -> torch.Tensor:
    """Integrate from noise (t = 1) to data (t = 0). velocity(latents, t) -> v with t shaped (B,)."""
    timesteps = scheduler.timesteps
    for i, timestep in enumerate(timesteps):
        t = (torch.as_tensor(timestep) / 1000.0).float().to(latents.device)
        t = t.expand(latents.shape[0]) if t.dim() == 0 else t[None].expand(latents.shape[0], -1)  # (B,) or (B, T)
        v = velocity(latents, t)
        latents = scheduler.step(v, timestep, latents, return_dict=False)[0]
        if on_step is not None and on_step(i, float(t.max()), latents) is False:
            raise Cancelled(f"cancelled after step {i + 1} of {len(timesteps)}")
    return latents
