"""Classifier-free guidance (Ho & Salimans 2022) with both branches in one batched forward pass."""
from __future__ import annotations

import torch


def guided_velocity(model, latents: torch.Tensor, t: torch.Tensor, text: dict[str, torch.Tensor],
                    guidance: float) -> torch.Tensor:
    """v_uncond + g (v_cond - v_uncond).

    `text` holds the unconditional (negative prompt or empty) rows first, then the conditional
    rows, encoded in one call so both are padded to the same length; with guidance 1 it holds
    the conditional rows alone.
    """
    if guidance == 1.0:
        return model(latents, t, **text)
    v_uncond, v_cond = model(torch.cat([latents, latents]), torch.cat([t, t]), **text).chunk(2)
    return v_uncond + guidance * (v_cond - v_uncond)
