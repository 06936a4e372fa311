"""Pixel fidelity against ground truth: PSNR and SSIM of tensors in [-1, 1]."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of images or videos in [-1, 1]."""
    mse = F.mse_loss(a.float().clamp(-1, 1), b.float()).item() / 4.0  # to a [0, 1] range
    return 10 * math.log10(1.0 / max(mse, 1e-10))


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, per channel) of (N, 3, H, W)
    images in [-1, 1]."""
    x, y = (a.float().clamp(-1, 1) + 1) / 2, (b.float().clamp(-1, 1) + 1) / 2
    g = torch.exp(-(torch.arange(11, dtype=torch.float32) - 5) ** 2 / (2 * 1.5**2))
    g = g / g.sum()
    window = (g[:, None] * g[None, :]).expand(x.shape[1], 1, 11, 11)  # (3, 1, 11, 11)
    blur = lambda z: F.conv2d(z, window, groups=x.shape[1])  # noqa: E731 - valid region only
    mu_x, mu_y = blur(x), blur(y)
    var_x, var_y, cov = blur(x * x) - mu_x**2, blur(y * y) - mu_y**2, blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return s.mean().item()
