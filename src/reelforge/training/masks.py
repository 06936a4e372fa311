"""Where the objects are, at latent resolution, drawn from the factors rather than from pixels.

An object covers about 5% of a 64x64 frame, so under a plain mean squared error the background's
error drowns the object's and the model learns the scene long before the thing the prompt is about.
The flow loss can weight these cells up (`object_weight` in the training config), but that biases
the learnt velocity towards objects everywhere (see the config's note); it is kept for experiments."""
from __future__ import annotations

import numpy as np
import torch

from ..flow.objective import expand_t
from ..world.factors import ClipFactors
from ..world.render import frame_times, object_tracks

REACH = 1.4  # an object's extent in radii: stars and triangles poke out of their radius


def latent_object_mask(factors: ClipFactors, start: float, width: int, height: int, fps: float,
                       latent_frames: int, time_down: int = 4, space_down: int = 4,
                       margin_cells: float = 1.5) -> torch.Tensor:
    """(t, h, w) bool: latent cells any object touches in any of the frames that cell encodes.

    The autoencoder is causal: latent frame 0 holds pixel frame 0, latent frame k frames 4k-3 .. 4k.
    Cells `margin_cells` beyond the object count too, for the decoder's receptive field."""
    num_frames = 1 + (latent_frames - 1) * time_down
    unit = min(width, height)
    h, w = height // space_down, width // space_down
    cell_y = (np.arange(h) + 0.5) * space_down / unit - height / (2 * unit)  # cell centres in units
    cell_x = (np.arange(w) + 0.5) * space_down / unit - width / (2 * unit)
    margin = margin_cells * space_down / unit
    touched = np.zeros((num_frames, h, w), bool)
    for x, y, radius, _ in object_tracks(factors, start + frame_times(num_frames, fps), width, height):
        dist = np.hypot(cell_x[None, None, :] - x[:, None, None], cell_y[None, :, None] - y[:, None, None])
        touched |= dist <= (REACH * radius + margin)[:, None, None]
    first, rest = touched[:1], touched[1:].reshape(latent_frames - 1, time_down, h, w).any(1)
    return torch.from_numpy(np.concatenate([first, rest]))


def bank_object_masks(latents: torch.Tensor, factors: list[dict], starts: list[float], fps: float,
                      time_down: int = 4, space_down: int = 4, margin_cells: float = 1.5) -> torch.Tensor:
    """(N, 1, t, h, w) bool masks for a bank bucket's latents (N, C, t, h, w)."""
    _, _, t, h, w = latents.shape
    masks = [latent_object_mask(ClipFactors.from_dict(f), s, w * space_down, h * space_down, fps, t, time_down,
                                space_down, margin_cells) for f, s in zip(factors, starts)]
    return torch.stack(masks)[:, None]


def object_loss_weight(masks: torch.Tensor, t: torch.Tensor, object_weight: float, max_t: float = 1.0) -> torch.Tensor:
    """Flow-loss weights (B, 1, T, h, w): 1 + object_weight on object cells of latent frames whose
    noise level t (B,) or (B, T) is at most `max_t`, 1 elsewhere. Above max_t the model cannot see
    where the object is, and weighting there tilts it towards objects everywhere."""
    return 1.0 + object_weight * masks.float() * (expand_t(t, masks) <= max_t)
