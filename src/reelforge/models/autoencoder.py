"""A causal video autoencoder: 4x in space and 4x in time.

Measured here: an 8x spatial version (Wan's ratio, 16 channels) reached only 22 dB PSNR after
the same CPU budget and drew shapes as blobs the analyzer could not tell apart; at 4x the
latents keep outlines, and a (1, 4, 4) transformer patch gives the same 144 tokens per 4-second
64x64 clip, so the transformer's cost does not change.

Frames are grouped causally: the first frame is its own latent frame (so one image is a valid
one-frame video) and every later latent frame covers the next 4 frames, so T frames with
T = 1 + 4k map to 1 + k latent frames. Spatial work happens per frame with 2D convolutions at
1/4 resolution (pixel-unshuffle first: full-resolution convolutions would dominate the cost on
a CPU), temporal work with causal 3D convolutions at the latent resolution.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import JsonConfig


@dataclass(frozen=True)
class AutoencoderConfig(JsonConfig):
    latent_channels: int = 8  # 4x4x4 pixels x 3 colours -> 8 numbers: 24x compression
    enc_channels: tuple[int, int] = (64, 96)  # the encoder runs once per training clip: keep it light
    dec_channels: tuple[int, int] = (96, 128)  # the decoder draws every output frame: a little wider
    time_down: int = 4
    space_down: int = 4  # pixel-unshuffle by 4
    # Latent frames the decoder's temporal convolutions see ahead. 0: causal, like the encoder. A
    # causal decoder draws the last frames of a latent frame's 4 without the next latent frame and
    # so jumps where they give way to the next 4 (a seam every half second). The encoder stays
    # causal (one image is still a one-frame video); a decoder always has the whole clip's latents.
    decoder_lookahead: int = 0
    # Frames each way of a residual temporal layer at the video's frame rate in the decoder (0: none).
    # Measured on the shipped decoder: its error holds still inside a latent frame's 4 frames and
    # jumps to another at the boundary (change there 1.9x the renders' own); frames on both sides
    # of a boundary must see each other to draw that change as gradually as the rest. Both measured,
    # not shipped: smoother on the model's own latents, but fewer frames with a readable shape
    # (MODEL_CARD.md, "A decoder that sees the next latent frame").
    decoder_frame_mix: int = 0


class ResBlock2d(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(8, channels), nn.Conv2d(channels, channels, 3, padding=1)
        self.norm2, self.conv2 = nn.GroupNorm(8, channels), nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        return x + self.conv2(F.silu(self.norm2(h)))


class FrameNorm(nn.GroupNorm):
    """GroupNorm over each frame alone: statistics across time would leak the future backwards."""

    def forward(self, x):  # (B, C, T, H, W)
        b, c, t, h, w = x.shape
        y = super().forward(x.transpose(1, 2).reshape(b * t, c, h, w))
        return y.reshape(b, t, c, h, w).transpose(1, 2)


class TimeConv3d(nn.Conv3d):
    """3x3 convolution over the current frame, the two before it and `lookahead` after it
    (0: causal). The ends are padded by repeating the first and last frames, not with fake zeros."""

    def __init__(self, cin: int, cout: int, lookahead: int = 0):
        super().__init__(cin, cout, kernel_size=(3 + lookahead, 3, 3), padding=0)
        self.lookahead = lookahead

    def forward(self, x):  # (B, C, T, H, W)
        x = F.pad(x, (1, 1, 1, 1, 0, 0))
        x = torch.cat([x[:, :, :1]] * 2 + [x] + [x[:, :, -1:]] * self.lookahead, dim=2)
        return super().forward(x)


class ResBlock3d(nn.Module):
    def __init__(self, channels: int, lookahead: int = 0):
        super().__init__()
        self.norm1, self.conv1 = FrameNorm(8, channels), TimeConv3d(channels, channels, lookahead)
        self.norm2, self.conv2 = FrameNorm(8, channels), TimeConv3d(channels, channels, lookahead)

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        return x + self.conv2(F.silu(self.norm2(h)))


class FrameMix(nn.Module):
    """A residual convolution over `radius` frames each way, pointwise in space, at the frame rate.
    Its output layer starts at zero, so a trained decoder given one starts out unchanged."""

    def __init__(self, channels: int, radius: int):
        super().__init__()
        self.radius = radius
        self.norm = FrameNorm(8, channels)
        self.mix = nn.Conv3d(channels, channels, (2 * radius + 1, 1, 1))
        self.out = nn.Conv3d(channels, channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x):  # (B, C, T, h, w)
        h = F.silu(self.norm(x))
        h = torch.cat([h[:, :, :1]] * self.radius + [h] + [h[:, :, -1:]] * self.radius, dim=2)
        return x + self.out(F.silu(self.mix(h)))


def _per_frame(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Apply a 2D module to every frame of (B, C, T, H, W)."""
    b, c, t, h, w = x.shape
    y = module(x.transpose(1, 2).reshape(b * t, c, h, w))  # (B*T, C', H', W')
    return y.reshape(b, t, *y.shape[1:]).transpose(1, 2)  # (B, C', T, H', W')


class Encoder(nn.Module):
    def __init__(self, cfg: AutoencoderConfig):
        super().__init__()
        c1, c2 = cfg.enc_channels
        self.time_down = cfg.time_down
        self.spatial = nn.Sequential(
            nn.PixelUnshuffle(4), nn.Conv2d(48, c1, 3, padding=1), ResBlock2d(c1),
            nn.Conv2d(c1, c2, 3, padding=1), ResBlock2d(c2))
        self.merge_time = nn.Conv3d(c2 * cfg.time_down, c2, 1)
        self.temporal = ResBlock3d(c2)
        self.out = nn.Sequential(FrameNorm(8, c2), nn.SiLU(), nn.Conv3d(c2, cfg.latent_channels, 1))
        # A linear path from each 4x4 block's mean colour over the group: flat regions (most of
        # every frame) are right from the first steps, and the deep path only has to learn edges.
        self.shortcut = nn.Conv3d(48, cfg.latent_channels, 1)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """video (B, 3, T, H, W) in [-1, 1], T = 1 + 4k, H and W multiples of 4 -> (B, C, 1 + k, H/4, W/4)."""
        x = _per_frame(self.spatial, video)  # (B, c2, T, h, w)
        b, c, t, h, w = x.shape
        x = self._group_time(x).permute(0, 3, 1, 2, 4, 5)  # (B, 4, c2, k+1, h, w)
        x = self.merge_time(x.reshape(b, self.time_down * c, -1, h, w))  # (B, c2, k+1, h, w)
        blocks = self._group_time(_per_frame(self.spatial[0], video)).mean(3)  # (B, 48, k+1, h, w)
        return self.out(self.temporal(x)) + self.shortcut(blocks)

    def _group_time(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, 1 + 4k, h, w) -> (B, C, k+1, 4, h, w), the first frame repeated causally."""
        b, c, t, h, w = x.shape
        x = torch.cat([x[:, :, :1]] * (self.time_down - 1) + [x], dim=2)  # (B, C, 4(k+1), h, w)
        return x.reshape(b, c, -1, self.time_down, h, w)


class Decoder(nn.Module):
    def __init__(self, cfg: AutoencoderConfig):
        super().__init__()
        c1, c2 = cfg.dec_channels
        self.time_down = cfg.time_down
        self.inp = nn.Conv3d(cfg.latent_channels, c2, 1)
        self.temporal = ResBlock3d(c2, cfg.decoder_lookahead)
        self.split_time = nn.Conv3d(c2, c2 * cfg.time_down, 1)
        self.frame_mix = FrameMix(c2, cfg.decoder_frame_mix) if cfg.decoder_frame_mix else nn.Identity()
        self.spatial = nn.Sequential(
            ResBlock2d(c2), nn.Conv2d(c2, c1, 3, padding=1), ResBlock2d(c1),
            ResBlock2d(c1), nn.GroupNorm(8, c1), nn.SiLU(), nn.Conv2d(c1, 48, 3, padding=1), nn.PixelShuffle(4))
        self.shortcut = nn.Conv3d(cfg.latent_channels, 48, 1)  # the encoder's linear path, mirrored
        self.shuffle = nn.PixelShuffle(4)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        """latents (B, C, 1 + k, h, w) -> video (B, 3, 1 + 4k, 4h, 4w), roughly in [-1, 1]."""
        x = self.temporal(self.inp(latents))
        b, c, t, h, w = x.shape
        x = self.split_time(x).reshape(b, self.time_down, c, t, h, w)  # (B, 4, c2, t, h, w)
        x = x.permute(0, 2, 3, 1, 4, 5).reshape(b, c, t * self.time_down, h, w)  # (B, c2, 4t, h, w)
        x = self.frame_mix(x[:, :, self.time_down - 1:])  # the first latent frame stands for one frame only
        flat = self.shortcut(latents).repeat_interleave(self.time_down, dim=2)[:, :, self.time_down - 1:]
        return _per_frame(self.spatial, x) + _per_frame(self.shuffle, flat)


class VideoAutoencoder(nn.Module):
    def __init__(self, cfg: AutoencoderConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder, self.decoder = Encoder(cfg), Decoder(cfg)
        # Per-channel statistics of the latents, measured after training, so the diffusion model
        # sees unit-variance inputs (what Wan's latents_mean / latents_std do).
        self.register_buffer("latents_mean", torch.zeros(cfg.latent_channels))
        self.register_buffer("latents_std", torch.ones(cfg.latent_channels))

    @staticmethod
    def num_latent_frames(num_frames: int) -> int:
        return (num_frames - 1) // 4 + 1

    @staticmethod
    def num_frames(num_latent_frames: int) -> int:
        return 4 * (num_latent_frames - 1) + 1

    def _stats(self, x):
        return self.latents_mean.view(1, -1, 1, 1, 1).to(x), self.latents_std.view(1, -1, 1, 1, 1).to(x)

    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """Normalised latents (B, C, t, h, w) of video (B, 3, T, H, W) in [-1, 1]."""
        t = video.shape[2]
        s = self.cfg.space_down
        if (t - 1) % self.cfg.time_down or video.shape[-1] % s or video.shape[-2] % s:
            raise ValueError(f"video of {t} frames at {video.shape[-1]}x{video.shape[-2]}: "
                             f"frames must be 1 + 4k and sides multiples of {s}")
        mean, std = self._stats(video)
        return (self.encoder(video) - mean) / std

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        mean, std = self._stats(latents)
        return self.decoder(latents * std + mean)

    def forward(self, video):
        return self.decode(self.encode(video))


def adapt_causal_state(state: dict[str, torch.Tensor], model: VideoAutoencoder) -> dict[str, torch.Tensor]:
    """`state` of a causal decoder's autoencoder for `model`, whose decoder may look ahead or mix
    frames: temporal kernels zero-padded for the future taps, the frame mixing layer taken as
    `model` initialised it (a zero residual), so `model` starts out drawing what `state` drew."""
    target = model.state_dict()
    adapted = {k: v for k, v in target.items() if k.startswith("decoder.frame_mix.")}
    for key, value in state.items():
        extra = target[key].shape[2] - value.shape[2] if value.ndim == 5 and key in target else 0
        adapted[key] = F.pad(value, (0, 0, 0, 0, 0, extra)) if extra > 0 else value  # future taps last
    return adapted
