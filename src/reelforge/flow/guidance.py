"""Classifier-free guidance (Ho & Salimans 2022) with both branches in one batched forward pass."""
from __future__ import annotations

import torch


def guided_velocity(model, latents: torch.Tensor, t: torch.Tensor, text: dict[str, torch.Tensor],
                    guidance: float, interval: tuple[float, float] = (0.0, 1.0)) -> torch.Tensor:
    """v_uncond + g (v_cond - v_uncond).

    `text` holds the unconditional (negative prompt or empty) rows first, then the conditional
    rows, encoded in one call so both are padded to the same length; with guidance 1 it holds
    the conditional rows alone. Outside `interval` (the noise levels t where guidance applies,
    Kynkaanniemi et al. 2024) the conditional branch runs alone, at half the cost.
    """
    if guidance == 1.0:
        return model(latents, t, **text)
    if not interval[0] <= float(t.max()) <= interval[1]:
        return model(latents, t, **{name: rows[rows.shape[0] // 2:] for name, rows in text.items()})
    v_uncond, v_cond = model(torch.cat([latents, latents]), torch.cat([t, t]), **text).chunk(2)
    return v_uncond + guidance * (v_cond - v_uncond)
