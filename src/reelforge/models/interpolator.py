"""A frame interpolation network: the frame at time t in (0, 1) between two frames.

Flow-based, as Super SloMo (Jiang et al. 2018) and RIFE (Huang et al. 2022) are: a small U-Net
(two downsamplings, so a 17-pixel bounce step at 64x64 is within its reach) predicts the motion
from the in-between frame back to each input, in pixels, and a mask saying which warped input to
trust. Moving an edge is then a matter of predicting where it went, not of drawing it; measured
here, a U-Net that drew the in-between frame directly (a residual over the cross-fade) never left
the cross-fade in 500 steps. At initialisation (zero motion, mask at t) it is the cross-fade.
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


def warp(frames: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample frames (B, 3, H, W) at each pixel + flow (B, 2, H, W), flow in pixels (x, y)."""
    b, _, h, w = frames.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=flow.dtype), torch.arange(w, dtype=flow.dtype), indexing="ij")
    gx = (xs + flow[:, 0]) * 2 / max(w - 1, 1) - 1  # (B, H, W) in grid_sample's [-1, 1]
    gy = (ys + flow[:, 1]) * 2 / max(h - 1, 1) - 1
    return F.grid_sample(frames, torch.stack([gx, gy], dim=-1), mode="bilinear", padding_mode="border",
                         align_corners=True)


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
        self.out = nn.Conv2d(c1, 5, 3, padding=1)  # flow to the first (2), to the second (2), mask logit (1)
        nn.init.zeros_(self.out.weight)  # starts as the cross-fade
        nn.init.zeros_(self.out.bias)

    def forward(self, first: torch.Tensor, second: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """first, second (B, 3, H, W) in [-1, 1], t (B,) -> (B, 3, H, W). Any H, W (padded to 4)."""
        b, _, h, w = first.shape
        tt = t.view(b, 1, 1, 1).to(first.dtype)
        pad = (0, -w % 4, 0, -h % 4)
        x = torch.cat([first, second, tt.expand(b, 1, h, w)], dim=1)  # (B, 7, H, W)
        x = F.pad(x, pad, mode="replicate")
        s1 = self.enc1(x)  # (B, c1, H, W)
        s2 = self.enc2(s1)  # (B, c2, H/2, W/2)
        s3 = self.enc3(s2)  # (B, c3, H/4, W/4)
        d2 = self.dec2(torch.cat([F.interpolate(s3, size=s2.shape[-2:], mode="nearest"), s2], dim=1))
        d1 = self.dec1(torch.cat([F.interpolate(d2, size=s1.shape[-2:], mode="nearest"), s1], dim=1))
        out = self.out(d1)[..., :h, :w]  # (B, 5, H, W)
        flow_first, flow_second, mask_logit = out[:, :2], out[:, 2:4], out[:, 4:]
        prior = torch.logit(1 - tt.clamp(1e-4, 1 - 1e-4))  # the cross-fade's weight on the first frame
        mask = torch.sigmoid(mask_logit + prior)  # (B, 1, H, W)
        return mask * warp(first, flow_first) + (1 - mask) * warp(second, flow_second)
