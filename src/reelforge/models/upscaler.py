"""A video super-resolution network: 4x, from a frame and its two neighbours.

It predicts the detail bicubic upsampling misses (a residual over bicubic), all work at the low
resolution with a pixel shuffle at the end (ESPCN, Shi et al. 2016; EDSR-style residual blocks,
Lim et al. 2017): at 1080p delivery the full-resolution work is the final resize alone. The two
neighbours give it the motion context that keeps edges from flickering frame to frame.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import JsonConfig


@dataclass(frozen=True)
class UpscalerConfig(JsonConfig):
    scale: int = 4  # 64x64 base frames -> 256x256; delivery resizes the rest of the way
    channels: int = 32  # ~72k parameters, about 1 GFLOP per 112x64 frame
    blocks: int = 3


class ResBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        return x + self.conv2(F.gelu(self.conv1(x)))


class VideoUpscaler(nn.Module):
    def __init__(self, cfg: UpscalerConfig = UpscalerConfig()):
        super().__init__()
        self.cfg = cfg
        self.head = nn.Conv2d(9, cfg.channels, 3, padding=1)
        self.blocks = nn.Sequential(*[ResBlock(cfg.channels) for _ in range(cfg.blocks)])
        self.tail = nn.Conv2d(cfg.channels, 3 * cfg.scale**2, 3, padding=1)
        nn.init.zeros_(self.tail.weight)  # starts as plain bicubic
        nn.init.zeros_(self.tail.bias)

    def forward(self, frames: torch.Tensor, before: torch.Tensor | None = None,
                after: torch.Tensor | None = None) -> torch.Tensor:
        """frames (T, 3, H, W) in [-1, 1] -> (T, 3, sH, sW). `before`/`after` are the frames just
        outside this run of frames (1, 3, H, W), for callers that upscale a long clip in chunks;
        at the ends of a clip the edge frame stands in for its missing neighbour."""
        before = frames[:1] if before is None else before
        after = frames[-1:] if after is None else after
        prev = torch.cat([before, frames[:-1]])
        nxt = torch.cat([frames[1:], after])
        x = torch.cat([prev, frames, nxt], dim=1)  # (T, 9, H, W)
        detail = F.pixel_shuffle(self.tail(self.blocks(F.gelu(self.head(x)))), self.cfg.scale)  # (T, 3, sH, sW)
        base = F.interpolate(frames, scale_factor=self.cfg.scale, mode="bicubic", align_corners=False)
        return base + detail
