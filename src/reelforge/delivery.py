"""From the model's frames to what was asked: the requested frame rate and size.

More frames per second come from the learned frame interpolator (in-between frames, not repeats)
and larger sizes from the learned 4x upscaler followed by a resize; without those networks (a
model directory that lacks them) delivery falls back to nearest-frame re-timing and bicubic.
Work goes `chunk` frames at a time, so a 1080p clip never exists as floats all at once, and
`Delivery.chunks` hands the frames on as they are made, so an encoder need never hold them all.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .models.interpolator import FrameInterpolator
from .models.upscaler import VideoUpscaler

UPSCALE_FROM = 1.5  # upscale when the output is at least this much larger than the generated frames


@dataclass
class Enhancers:
    upscaler: VideoUpscaler | None = None
    interpolator: FrameInterpolator | None = None


def retime(video: torch.Tensor, source_fps: float, target_fps: float, seconds: float) -> torch.Tensor:
    """(3, T, H, W) at source_fps -> exactly round(seconds * target_fps) frames, nearest in time."""
    count = max(1, round(seconds * target_fps))
    times = torch.arange(count) / target_fps
    index = (times * source_fps).round().long().clamp(max=video.shape[1] - 1)
    return video[:, index]


@torch.no_grad()
def from_keyframes(video: torch.Tensor, time_down: int, interpolator: FrameInterpolator) -> torch.Tensor:
    """(3, T, H, W) in [-1, 1] as a causal autoencoder decoded it (frame 0 alone, then `time_down`
    frames per latent frame), with every frame between the first frames of consecutive latent frames
    re-made by the interpolator; frames after the last such key stay as decoded.

    The decoder draws a generated latent frame's frames alike and then jumps to the next one's:
    measured on the built-in model's held-out clips, the change into a latent frame is 3x the clip's
    typical frame-to-frame change (the renders: 1x). Re-made between keys, the jump is gone (0.82x
    over 96 held-out clips), for 0 to 7 points of the analyzer's shape reading (MODEL_CARD.md, "Seams
    every half second")."""
    frames = video.transpose(0, 1)  # (T, 3, H, W)
    keys = [0, *range(1, len(frames), time_down)]
    made, first, second, t = [], [], [], []  # every in-between frame in one batch
    for a, b in zip(keys[:-1], keys[1:]):
        for i in range(a + 1, b):
            made.append(i), first.append(a), second.append(b), t.append((i - a) / (b - a))
    out = frames.clone()
    if made:
        out[made] = interpolator(frames[first], frames[second], torch.tensor(t, dtype=frames.dtype)).clamp(-1, 1)
    return out.transpose(0, 1)


@torch.no_grad()
def join_windows(held: np.ndarray, redraw: np.ndarray, interpolator: FrameInterpolator | None) -> np.ndarray:
    """The `keep` frames where a continuation joins a video, uint8 (keep, H, W, 3).

    `held`: the video's last `keep` frames, which the continuation held fixed in latent space;
    `redraw`: the continuation's first keep + 1 frames (its decode of the held frames, then its
    first new frame). The redraw is not the original (an autoencoder round trip and another
    window's smoothing), so switching to it jumps. With an interpolator, the held frames after the
    first are re-made between the first and the first new frame. Measured over 24 ten-second clips
    (benchmarks/window_joins.py; MODEL_CARD.md, "Window joins"): the change into the first new frame
    fell from 1.38x the clip's median change (the cross-fade below) to 0.74x, and the largest change
    anywhere in the join from 1.56x to 1.52x (1.49x over the same stretch inside a window);
    consistency unchanged. Without an interpolator, or when the continuation made no new frame, the
    original fades into the redraw over the held frames. The frames are those of the model's size
    and rate (a long clip's windows), so one batch holds only `keep` of them."""
    keep = len(held)
    if interpolator is None or len(redraw) <= keep:
        weight = np.linspace(0, 1, keep + 2)[1:-1, None, None, None]  # (keep, 1, 1, 1): toward the redraw
        return np.rint((1 - weight) * held + weight * redraw[:keep]).astype(np.uint8)
    if keep == 1:
        return held.copy()
    t = torch.arange(1, keep, dtype=torch.float32) / keep
    first = _to_float(held[:1]).expand(keep - 1, -1, -1, -1)
    last = _to_float(redraw[keep:keep + 1]).expand(keep - 1, -1, -1, -1)
    made = to_uint8(interpolator(first, last, t))
    return np.concatenate([held[:1], made.permute(0, 2, 3, 1).numpy()])


def crop_to_aspect(video: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Centre-crop (..., H, W) to the aspect ratio of size (W, H): never stretch."""
    h, w = video.shape[-2:]
    tw, th = size
    if w * th > tw * h:  # too wide: crop columns
        cw = round(h * tw / th)
        return video[..., (w - cw) // 2:(w - cw) // 2 + cw]
    if w * th < tw * h:
        ch = round(w * th / tw)
        return video[..., (h - ch) // 2:(h - ch) // 2 + ch, :]
    return video


def resize_video(video: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Centre-crop to the target aspect ratio, then bicubic resize: (3, T, H, W)."""
    frames = crop_to_aspect(video, size).transpose(0, 1).float()  # (T, 3, H, W)
    out = F.interpolate(frames, size=(size[1], size[0]), mode="bicubic", align_corners=False, antialias=True)
    return out.transpose(0, 1)


def source_positions(count: int, source_fps: float, fps: float, available: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each output frame: the source frames before and after it and how far between (0..1).
    When the output is not denser than the source, the nearest frame is taken (t = 0)."""
    pos = np.arange(count) / fps * source_fps
    if fps <= source_fps:
        first = np.minimum(np.rint(pos).astype(int), available - 1)
        return first, first, np.zeros(count)
    first = np.minimum(np.floor(pos + 1e-6).astype(int), available - 1)
    second = np.minimum(first + 1, available - 1)
    t = np.where(second > first, pos - first, 0.0)
    return first, second, np.clip(t, 0.0, 1.0)


def to_uint8(video: torch.Tensor) -> torch.Tensor:
    """Frames in [-1, 1], any layout -> uint8 in the same layout."""
    return video.clamp(-1, 1).add(1).mul(127.5).round().to(torch.uint8)


def tensor_to_frames(video: torch.Tensor) -> np.ndarray:
    """float (3, T, H, W) in [-1, 1] -> uint8 (T, H, W, 3)."""
    return to_uint8(video.float()).permute(1, 2, 3, 0).cpu().numpy()


def _to_float(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 127.5 - 1  # (T, 3, H, W)


def _in_between(frames: np.ndarray, first, second, t, interpolator: FrameInterpolator | None) -> torch.Tensor:
    """Output frames (N, 3, H, W) at the given source positions."""
    a = _to_float(frames[first])
    moving = t > 1e-3
    if not moving.any():
        return a
    b = _to_float(frames[second[moving]])
    tt = torch.from_numpy(t[moving]).float()
    if interpolator is None:  # nearest frame, as plain re-timing does
        made = torch.where((tt < 0.5).view(-1, 1, 1, 1), a[torch.from_numpy(moving)], b)
    else:
        made = interpolator(a[torch.from_numpy(moving)], b, tt)
    a[torch.from_numpy(moving)] = made
    return a


@dataclass
class Delivery:
    """The model's uint8 frames (T, h, w, 3) at `source_fps`, to be delivered as exactly
    round(seconds * fps) frames at `size`: made `chunk` frames at a time on demand, so a caller that
    encodes as it goes never holds the whole output (a 40 s 1080p clip is 6 GB of uint8)."""
    source: np.ndarray
    source_fps: float
    fps: float
    seconds: float
    size: tuple[int, int]  # (width, height)
    enhancers: Enhancers | None = None

    @property
    def count(self) -> int:
        return max(1, round(self.seconds * self.fps))

    @torch.no_grad()
    def chunks(self, chunk: int = 16):
        """uint8 (n, H, W, 3) pieces of the output, in order, n <= chunk."""
        enhancers = self.enhancers or Enhancers()
        frames, (width, height), count = self.source, self.size, self.count
        first, second, t = source_positions(count, self.source_fps, self.fps, len(frames))
        crop_h, crop_w = crop_to_aspect(torch.empty(frames.shape[1], frames.shape[2]), self.size).shape
        upscale = enhancers.upscaler is not None and height >= UPSCALE_FROM * crop_h and width >= UPSCALE_FROM * crop_w
        for i in range(0, count, chunk):
            # One frame of context either side, so the upscaler sees true neighbours across chunks.
            lo, hi = max(0, i - 1), min(count, i + chunk + 1)
            part = _in_between(frames, first[lo:hi], second[lo:hi], t[lo:hi], enhancers.interpolator)  # (n, 3, H, W)
            part = crop_to_aspect(part, self.size)
            core = slice(i - lo, i - lo + min(chunk, count - i))
            if upscale:
                before = part[core.start - 1:core.start] if core.start > 0 else None
                after = part[core.stop:core.stop + 1] if core.stop < len(part) else None
                part = enhancers.upscaler(part[core], before, after)
            else:
                part = part[core]
            yield _resize_uint8(part, self.size)

    def frames(self, chunk: int = 16) -> np.ndarray:
        """The whole output at once, (count, H, W, 3) uint8."""
        width, height = self.size
        out = np.empty((self.count, height, width, 3), np.uint8)
        done = 0
        for part in self.chunks(chunk):
            out[done:done + len(part)] = part
            done += len(part)
        return out


def deliver_frames(frames: np.ndarray, source_fps: float, fps: float, seconds: float, size: tuple[int, int],
                   enhancers: Enhancers | None = None, chunk: int = 16) -> np.ndarray:
    """uint8 frames (T, H, W, 3) at source_fps -> exactly round(seconds * fps) frames at `size`."""
    return Delivery(frames, source_fps, fps, seconds, size, enhancers).frames(chunk)


def _resize_uint8(part: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """(N, 3, h, w) in [-1, 1] -> uint8 (N, H, W, 3) at `size`. Quantised before the last resize:
    PyTorch's uint8 channels-last bicubic kernel is ~12x faster than the float one at 1080p and
    spares three float passes over every output pixel (measured: 0.07 s vs 0.8 s per 16 frames)."""
    small = to_uint8(part)
    small = small.contiguous(memory_format=torch.channels_last)
    width, height = size
    if (small.shape[-1], small.shape[-2]) != (width, height):
        small = F.interpolate(small, size=(height, width), mode="bicubic", align_corners=False, antialias=True)
    return small.permute(0, 2, 3, 1).numpy()  # channels-last: a view, no copy
