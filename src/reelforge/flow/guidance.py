"""Classifier-free guidance (Ho & Salimans 2022) with both branches in one batched forward pass, and
autoguidance (Karras et al. 2024) by a weaker version of the same model."""
from __future__ import annotations

from typing import Callable

import torch

from .layout import pool_token_bias
from .objective import clean_estimate, expand_t


def guided_velocity(model, latents: torch.Tensor, t: torch.Tensor, text: dict[str, torch.Tensor],
                    guidance: float, interval: tuple[float, float] = (0.0, 1.0),
                    self_cond: torch.Tensor | None = None, outside: float = 1.0) -> torch.Tensor:
    """v_uncond + g (v_cond - v_uncond).

    `text` holds the unconditional (negative prompt or empty) rows first, then the conditional
    rows, encoded in one call so both are padded to the same length; with guidance 1 it holds
    the conditional rows alone. Outside `interval` (the noise levels t where guidance applies,
    Kynkaanniemi et al. 2024) the guidance is `outside` (capped at `guidance`); at 1 the
    conditional branch runs alone, at half the cost.
    """
    extra = {} if self_cond is None else {"self_cond": self_cond}
    if guidance == 1.0:
        return model(latents, t, **text, **extra)
    if not interval[0] <= float(t.max()) <= interval[1]:
        guidance = min(outside, guidance)
        if guidance == 1.0:
            return model(latents, t, **{name: rows[rows.shape[0] // 2:] for name, rows in text.items()}, **extra)
    if self_cond is not None:
        extra = {"self_cond": torch.cat([self_cond, self_cond])}
    v_uncond, v_cond = model(torch.cat([latents, latents]), torch.cat([t, t]), **text, **extra).chunk(2)
    return v_uncond + guidance * (v_cond - v_uncond)


def autoguided(model, guide, weight: float, interval: tuple[float, float] = (0.0, 1.0)):
    """model(latents, t, ...) pushed away from `guide`: v_guide + w (v_model - v_guide).

    The guide is an earlier, weaker checkpoint of the same model; the difference points along what
    training added since, so w > 1 extrapolates it. Applied only at noise levels t in `interval`:
    the built-in model's later training went into high noise, where the layout is decided, and
    that is where extrapolating it helps (MODEL_CARD, "Three more sampling-time tries").
    """
    # A guide trained without self-conditioning is not given the model's previous estimate.
    guide_self_conditioned = getattr(getattr(guide, "cfg", None), "self_condition", False)

    def forward(latents: torch.Tensor, t: torch.Tensor, **kwargs) -> torch.Tensor:
        v = model(latents, t, **kwargs)
        if weight == 1.0 or not interval[0] <= float(t.max()) <= interval[1]:
            return v
        if not guide_self_conditioned:
            kwargs.pop("self_cond", None)
        v_guide = guide(latents, t, **guide_kwargs(kwargs, latents, model, guide))
        return v_guide + weight * (v - v_guide)
    return forward


def guide_kwargs(kwargs: dict, latents: torch.Tensor, model, guide) -> dict:
    """The model's conditioning for its guide: a layout bias over the model's tokens re-cut to the
    guide's patch (the built-in guide has 16x16-pixel tokens whatever the model it guides)."""
    patch, guide_patch = (getattr(getattr(m, "cfg", None), "patch", None) for m in (model, guide))
    if kwargs.get("text_bias") is None or patch is None or guide_patch is None:
        return kwargs
    return {**kwargs, "text_bias": pool_token_bias(kwargs["text_bias"], tuple(latents.shape[2:]), patch, guide_patch)}


def sampling_velocity(model, text: dict[str, torch.Tensor], guidance: float, interval: tuple[float, float] = (0.0, 1.0),
                      outside: float = 1.0, guide=None, guide_weight: float = 1.0,
                      guide_interval: tuple[float, float] = (0.0, 1.0)
                      ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """velocity(latents, t) for one sampling run: guided (each CFG branch autoguided when a `guide`
    is given), and for a self-conditioned model fed the guided clean-clip estimate of the call
    before (zeros at the first), as it was trained."""
    self_conditioned = getattr(model.cfg, "self_condition", False)
    if guide is not None:
        model = autoguided(model, guide, guide_weight, guide_interval)
    if not self_conditioned:
        return lambda latents, t: guided_velocity(model, latents, t, text, guidance, interval, outside=outside)
    estimate = None

    def velocity(latents: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        nonlocal estimate
        previous = torch.zeros_like(latents) if estimate is None else estimate.to(latents.dtype)
        v = guided_velocity(model, latents, t, text, guidance, interval, self_cond=previous, outside=outside)
        estimate = clean_estimate(latents, t, v)
        return v
    return velocity


def verifier_guided(velocity: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], verifier, wanted: dict[str, str],
                    scale: float, interval: tuple[float, float] = (0.4, 0.9)
                    ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """velocity(latents, t) steered towards clips the verifier (models/verifier.py) reads as `wanted`.

    At noise levels in `interval` the clean-clip estimate x0 = x_t - t v moves `scale` along the
    gradient of log p(wanted | x0), scaled to unit RMS per clip, so v moves by -scale / t times it.
    The gradient is taken at the estimate, the transformer's Jacobian taken as the identity: one
    backward pass through the small verifier and none through the transformer (forward universal
    guidance, Bansal et al. 2023, without its pass back through the denoiser). Outside the interval:
    at high noise the estimate is a blur the verifier cannot read, and at low noise the clip's
    colours are settled and a push there only spoils them (MODEL_CARD.md, "A verifier").
    """
    def forward(latents: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        v = velocity(latents, t)
        levels = expand_t(t, latents)  # (B, 1, T or 1, 1, 1): a level per latent frame with some samplers
        inside = ((levels >= interval[0]) & (levels <= interval[1])).to(latents.dtype)
        if scale == 0 or not wanted or not inside.any():
            return v
        with torch.enable_grad():
            estimate = clean_estimate(latents, t, v).detach().requires_grad_(True)
            grad, = torch.autograd.grad(verifier.log_likelihood(estimate, wanted).sum(), estimate)
        grad = grad * inside  # frames outside the interval (waiting, done, known) are not pushed
        cells = inside.expand_as(grad).sum((1, 2, 3, 4), keepdim=True).clamp_min(1)
        grad = grad / ((grad.pow(2).sum((1, 2, 3, 4), keepdim=True) / cells).sqrt() + 1e-12)  # unit RMS where pushed
        return v - scale * grad / levels.clamp_min(1e-3)
    return forward
