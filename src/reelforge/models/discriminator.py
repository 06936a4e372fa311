"""A text-conditional discriminator over video latents, for adversarial distillation (training/distill.py).

Why: a few-step student trained by regression alone (reflow) predicts the mean of what the teacher
might draw from nearby noise, and a mean over object places is a faint smear whose colour the
analyzer no longer reads. An adversarial term against real clips' latents penalises the smear
itself (ADD, Sauer et al. 2023; LADD, Sauer et al. 2024, which also judges in latent space).

One logit per clip, from features averaged over space and time, so any size or length works, and a
projection of the pooled sentence vector onto those features (Miyato & Koyama 2018), so that a clip
is real only together with its caption. Measured, not shipped (MODEL_CARD.md, "Turbo student"):
against renderer clips the student learnt to draw less object, with patch logits (PatchGAN) as with
one logit per clip; against the teacher's outputs this small network could not tell them apart.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import JsonConfig


@dataclass(frozen=True)
class DiscriminatorConfig(JsonConfig):
    in_channels: int = 8
    width: int = 64
    text_dim: int = 384


class LatentDiscriminator(nn.Module):
    def __init__(self, cfg: DiscriminatorConfig):
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        self.features = nn.Sequential(
            nn.Conv3d(cfg.in_channels, w, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv3d(w, 2 * w, 3, stride=(1, 2, 2), padding=1), nn.LeakyReLU(0.2),
            nn.Conv3d(2 * w, 2 * w, 3, padding=1), nn.LeakyReLU(0.2),
        )
        self.head = nn.Linear(2 * w, 1)
        self.text_proj = nn.Linear(cfg.text_dim, 2 * w)

    def forward(self, latents: torch.Tensor, text_pooled: torch.Tensor) -> torch.Tensor:
        """Logits (B,) for latents (B, C, t, h, w) and sentence vectors (B, text_dim)."""
        features = self.features(latents).mean((2, 3, 4))  # (B, 2w)
        projection = (features * self.text_proj(text_pooled)).sum(1)
        # A sum over 2w channels: scaled back to the size of one, as attention scales its dot products.
        return self.head(features)[:, 0] + projection / features.shape[1] ** 0.5


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Hinge loss (Lim & Ye 2017), as StyleGAN-T and ADD use it."""
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """The student's side of the hinge game: raise the discriminator's logit on its clips."""
    return -fake_logits.mean()
