"""The rectified-flow convention, written once: x_t = (1 - t) x0 + t noise, target noise - x0,
t = 1 is pure noise (Liu et al. 2022; Esser et al. 2024). Training and sampling both import it."""
from __future__ import annotations

import math

import torch


def frame_correlated_noise(shape: tuple, generator: torch.Generator | None = None, correlation: float = 0.0,
                           device: torch.device | str | None = None) -> torch.Tensor:
    """Standard Gaussian noise of (B, C, T, H, W) whose latent frames share `correlation` of their
    variance: a part drawn once per clip plus a part drawn per frame (PYoCo's mixed noise prior,
    Ge et al. 2023). Independent frames get independent details from the sampler, which a clip
    shows as a jump at every latent frame; a model trained and sampled with a shared part draws
    them alike. At 0 it is plain `torch.randn`, drawn identically."""
    noise = torch.randn(shape, generator=generator, device=device)
    if correlation:
        shared = torch.randn((*shape[:2], 1, *shape[3:]), generator=generator, device=device)
        noise = math.sqrt(1 - correlation) * noise + math.sqrt(correlation) * shared
    return noise


def expand_t(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """t (B,) or per latent frame (B, T) -> broadcastable against latents (B, C, T, H, W)."""
    if t.dim() == 2:
        return t.view(t.shape[0], 1, t.shape[1], 1, 1)
    return t.view(-1, *([1] * (x.dim() - 1)))


def interpolate(x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    t = expand_t(t, x0)
    return (1 - t) * x0 + t * noise


def velocity_target(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    return noise - x0


def velocity_error(v: torch.Tensor, x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Squared error of a predicted velocity, per element, in fp32."""
    return (v.float() - velocity_target(x0, noise).float()).pow(2)


def clean_estimate(x_t: torch.Tensor, t: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The clean clip a velocity implies: x0 = x_t - t v."""
    return x_t - expand_t(t, x_t) * v


def shift_t(t: torch.Tensor, shift: float) -> torch.Tensor:
    """Noise levels moved towards t = 1 (SD3's timestep shift); shift 1 leaves them as they are."""
    return shift * t / (1 + (shift - 1) * t)


def sample_t(batch: int, generator: torch.Generator | None = None, uniform_prob: float = 0.5,
             shift: float = 1.0) -> torch.Tensor:
    """Noise levels: logit-normal (SD3) mixed with uniform, then shifted towards noise by `shift`
    as the sampler's schedule is (`shift_t`).

    Logit-normal alone almost never draws t > 0.9 (1.4% of samples), yet a sampler's first steps
    run there and decide the layout from the text alone; measured here, a model trained that way
    ignored the prompt at t = 1 and drew each token's content on its own. The uniform half covers
    both ends."""
    logit_normal = torch.sigmoid(torch.randn(batch, generator=generator))
    uniform = torch.rand(batch, generator=generator)
    pick = torch.rand(batch, generator=generator) < uniform_prob
    return shift_t(torch.where(pick, uniform, logit_normal), shift)


def flow_loss(model, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, weight: torch.Tensor | None = None,
              **cond) -> torch.Tensor:
    """Per-sample mean squared velocity error (B,), so it can be logged by t; `weight` (broadcast
    against x0) makes it a weighted mean."""
    return velocity_loss(model(interpolate(x0, noise, t), t, **cond), x0, noise, weight)


def per_sample_mean(values: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over everything but the batch dimension (B,); with `weight` (broadcast against
    `values`), the weighted mean."""
    if weight is None:
        return values.flatten(1).mean(1)
    weight = weight.float().expand_as(values)
    return (values * weight).flatten(1).sum(1) / weight.flatten(1).sum(1)


def velocity_loss(v: torch.Tensor, x0: torch.Tensor, noise: torch.Tensor, weight: torch.Tensor | None = None
                  ) -> torch.Tensor:
    """flow_loss of a velocity already predicted (B,)."""
    return per_sample_mean(velocity_error(v, x0, noise), weight)


def temporal_loss(v: torch.Tensor, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor,
                  weight: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample mean squared change, from one latent frame to the next, of the clean-clip
    estimate's error (B,): x0 - clean_estimate = t (v - target).

    (e1 - e2)^2 = e1^2 + e2^2 - 2 e1 e2: beside the plain error it rewards making the same error in
    adjacent latent frames. A generated clip whose latent frames each err their own way jumps
    every latent frame (the seam ratio of ~3 measured on the built-in model's clips, where the
    decoder alone gives 1.7); this term asks the model to err coherently in time instead."""
    error = expand_t(t, x0) * (v.float() - velocity_target(x0, noise).float())
    change = (error[:, :, 1:] - error[:, :, :-1]).pow(2)
    if weight is not None:  # a pair of latent frames weighs the mean of its two
        weight = (weight[:, :, 1:].float() + weight[:, :, :-1].float()) / 2
    return per_sample_mean(change, weight)


def self_condition_input(model, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor, use: torch.Tensor,
                         **cond) -> torch.Tensor:
    """What a self-conditioned model sees beside x_t while it trains: for the rows where `use` (B,)
    is set, its own clean-clip estimate from a pass without gradients (as the sampler's previous
    step would give it); zeros elsewhere, as at the sampler's first step (Chen et al. 2023)."""
    estimate = torch.zeros_like(x0)
    if use.any():
        rows = use.nonzero().flatten()
        x_t = interpolate(x0[rows], noise[rows], t[rows])
        with torch.no_grad():
            v = model(x_t, t[rows], **{name: value[rows] for name, value in cond.items()})
        estimate[rows] = clean_estimate(x_t, t[rows], v).to(estimate.dtype)
    return estimate
