"""A verifier over video latents: which colour, shape, motion, ... of the procedural world a clip shows.

Why: the built-in transformer draws the named colour and scene nearly always but the named shape
and path rarely (MODEL_CARD.md); telling a clip's shape and path is a far easier task than drawing
them. The sampler follows this network's gradient towards the factors a prompt names (verifier
guidance: flow/guidance.verifier_guided). It is trained on the renderer's own labels
(training/verifier.py), never on the analyzer that judges the evaluation. (Picking the best of a
few drawn clips by it was measured too, and did not help: it ranks finished clips at chance.)

Convolutions over the latent grid and its frames (a motion is a displacement between latent
frames), the place of every cell in world units as three extra channels (which way an object
goes needs where it is), then features averaged and maxed over space and time, so that any size
and length works.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..world.factors import BACKGROUNDS, COLORS, MOTIONS, SHAPES, SIZES, SPEEDS
from .config import JsonConfig

VOCAB: dict[str, tuple[str, ...]] = {"color": tuple(COLORS), "shape": SHAPES, "motion": MOTIONS, "size": SIZES,
                                     "speed": SPEEDS, "background": BACKGROUNDS}


@dataclass(frozen=True)
class VerifierConfig(JsonConfig):
    in_channels: int = 8
    width: int = 64  # channels of the first convolution; 2x and 4x after each downsampling
    factors: tuple = tuple(VOCAB)  # one classification head per factor, over the world's values of it
    # Trained on noised latents x_t = (1 - t) x0 + t noise, with t as one more input channel: a
    # noise-aware classifier whose gradient can guide sampling (Dhariwal & Nichol 2021).
    noise_conditioned: bool = False


def _block(cin: int, cout: int, stride=1) -> nn.Sequential:
    return nn.Sequential(nn.Conv3d(cin, cout, 3, stride=stride, padding=1), nn.GroupNorm(8, cout), nn.SiLU())


def cell_positions(latents: torch.Tensor) -> torch.Tensor:
    """(1, 3, t, h, w): x and y of every latent cell from the frame centre in half-heights (so a wide
    frame reaches past +-1 sideways, as the renderer's world does), and its time from 0 to 1."""
    _, _, t, h, w = latents.shape
    ys = (torch.arange(h, dtype=latents.dtype) + 0.5 - h / 2) / (h / 2)
    xs = (torch.arange(w, dtype=latents.dtype) + 0.5 - w / 2) / (h / 2)
    ts = torch.linspace(0, 1, t, dtype=latents.dtype) if t > 1 else torch.zeros(1, dtype=latents.dtype)
    grid = torch.stack(torch.meshgrid(ts, ys, xs, indexing="ij"))  # (3, t, h, w) as (t, y, x)
    return grid.flip(0)[None]  # (1, 3, t, h, w) as (x, y, t)


class LatentVerifier(nn.Module):
    def __init__(self, cfg: VerifierConfig):
        super().__init__()
        unknown = set(cfg.factors) - set(VOCAB)
        if unknown:
            raise ValueError(f"unknown verifier factors {sorted(unknown)}; allowed: {', '.join(VOCAB)}")
        if cfg.width < 8 or cfg.width % 8:
            raise ValueError(f"verifier width must be a multiple of 8 (its group norms have 8 groups), got {cfg.width}")
        self.cfg = cfg
        w = cfg.width
        self.features = nn.Sequential(
            _block(cfg.in_channels + 3 + cfg.noise_conditioned, w),
            _block(w, 2 * w, stride=(1, 2, 2)),
            _block(2 * w, 2 * w),
            _block(2 * w, 4 * w, stride=2),
            _block(4 * w, 4 * w),
        )
        self.heads = nn.ModuleDict({name: nn.Linear(8 * w, len(VOCAB[name])) for name in cfg.factors})

    def forward(self, latents: torch.Tensor, t: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Logits per factor, {name: (B, values)}, for latents (B, C, t, h, w) at noise levels t (B,)
        (a noise-conditioned verifier; others judge clean latents and take no t)."""
        b, _, frames, h, w = latents.shape
        inputs = [latents, cell_positions(latents).expand(b, -1, -1, -1, -1)]
        if self.cfg.noise_conditioned:
            t = torch.zeros(b) if t is None else t
            inputs.append(t.to(latents.dtype).view(b, 1, 1, 1, 1).expand(b, 1, frames, h, w))
        x = torch.cat(inputs, 1)
        x = self.features(x)  # (B, 4w, t', h', w')
        pooled = torch.cat([x.mean((2, 3, 4)), x.amax((2, 3, 4))], 1)  # (B, 8w)
        return {name: head(pooled) for name, head in self.heads.items()}

    def log_likelihood(self, latents: torch.Tensor, wanted: dict[str, str], t: torch.Tensor | None = None) -> torch.Tensor:
        """(B,): the sum over the `wanted` factors ({"shape": "star", ...}) of log p(value | latents);
        factors this verifier has no head for are ignored."""
        logits = self(latents, t)
        total = torch.zeros(latents.shape[0])
        for name, value in wanted.items():
            if name not in logits:
                continue
            if value not in VOCAB[name]:
                raise ValueError(f"unknown {name} {value!r}; allowed: {', '.join(VOCAB[name])}")
            total = total + F.log_softmax(logits[name].float(), 1)[:, VOCAB[name].index(value)]
        return total
