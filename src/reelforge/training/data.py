"""Training batches straight from the procedural renderer: an endless, never-repeating data set."""
from __future__ import annotations

import random

import numpy as np
import torch

from ..world.captions import caption
from ..world.factors import ClipFactors
from ..world.render import render
from ..world.splits import sample_train_factors


def frames_to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 (T, H, W, 3) -> float (3, T, H, W) in [-1, 1]."""
    return torch.from_numpy(frames).permute(3, 0, 1, 2).float().div(127.5).sub(1.0)


def render_batch(rng: random.Random, batch_size: int, width: int, height: int, num_frames: int,
                 fps: float, two_object_prob: float = 0.15, max_start: float = 0.0
                 ) -> tuple[torch.Tensor, list[str], list[ClipFactors]]:
    """Videos (B, 3, T, H, W) in [-1, 1] from the training split, their captions and factors.

    max_start > 0 starts clips at a random time, so that models also see the middle of motions.
    """
    videos, captions, factors = [], [], []
    for _ in range(batch_size):
        f, start, text = draw_clip(rng, two_object_prob, max_start)
        videos.append(frames_to_tensor(render(f, width, height, fps, num_frames, start_time=start)))
        captions.append(text)
        factors.append(f)
    return torch.stack(videos), captions, factors


def draw_clip(rng: random.Random, two_object_prob: float, max_start: float) -> tuple[ClipFactors, float, str]:
    """One training clip's factors, start time and caption, in the order render_batch draws them,
    so that a seeded rng replays a batch without rendering it."""
    f = sample_train_factors(rng, two_object_prob)
    start = rng.uniform(0, max_start) if max_start else 0.0
    return f, start, caption(f, rng)
