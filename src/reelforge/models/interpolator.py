"""A frame interpolation network: the frame at time t in (0, 1) between two frames.

A small U-Net (two downsamplings, so a 17-pixel bounce step at 64x64 is within its reach) that
predicts a residual over the linear cross-fade: where nothing moves the blend is already right,
and the network spends itself on moving edges, which a blend shows twice and frame repetition
shows as a stutter.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import JsonConfig


@dataclass(frozen=True)
class InterpolatorConfig(JsonConfig):
    channels: tuple[int, int, int] = (32, 48, 64)  # full, 1/2 and 1/4 resolution


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.GELU())


class FrameInterpolator(nn.Module):
    def __init__(self, cfg: InterpolatorConfig = InterpolatorConfig()):
        super().__init__()
        self.cfg = cfg
        c1, c2, c3 = cfg.channels
        self.enc1 = nn.Sequential(_conv(7, c1), _conv(c1, c1))
        self.enc2 = nn.Sequential(_conv(c1, c2, 2), _conv(c2, c2))
        self.enc3 = nn.Sequential(_conv(c2, c3, 2), _conv(c3, c3), _conv(c3, c3))
        self.dec2 = nn.Sequential(_conv(c3 + c2, c2), _conv(c2, c2))
        self.dec1 = nn.Sequential(_conv(c2 + c1, c1), _conv(c1, c1))
        self.out = nn.Conv2d(c1, 3, 3, padding=1)
        nn.init.zeros_(self.out.weight)  # starts as the cross-fade
        nn.init.zeros_(self.out.bias)

    def forward(self, first: torch.Tensor, second: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """first, second (B, 3, H, W) in [-1, 1], t (B,) -> (B, 3, H, W). Any H, W (padded to 4)."""
        b, _, h, w = first.shape
        blend = first + t.view(b, 1, 1, 1) * (second - first)
        pad = (0, -w % 4, 0, -h % 4)
        x = torch.cat([first, second, t.view(b, 1, 1, 1).expand(b, 1, h, w)], dim=1)  # (B, 7, H, W)
        x = F.pad(x, pad, mode="replicate")
        s1 = self.enc1(x)  # (B, c1, H, W)
        s2 = self.enc2(s1)  # (B, c2, H/2, W/2)
        s3 = self.enc3(s2)  # (B, c3, H/4, W/4)
        d2 = self.dec2(torch.cat([F.interpolate(s3, size=s2.shape[-2:], mode="nearest"), s2], dim=1))
        d1 = self.dec1(torch.cat([F.interpolate(d2, size=s1.shape[-2:], mode="nearest"), s1], dim=1))
        return blend + self.out(d1)[..., :h, :w]
