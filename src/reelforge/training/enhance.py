"""Train the delivery networks, the 4x upscaler and the frame interpolator, on pairs the renderer
makes exactly: the same clip at the base size and at 4x, or at 8 fps and at 48 fps.

Inputs are passed through the shipped autoencoder half of the time, so the networks learn to
sharpen the slightly soft frames the decoder really produces, not only perfect renders."""
from __future__ import annotations

import math
import random
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from ..evaluation.pixels import psnr, ssim
from ..models.autoencoder import VideoAutoencoder
from ..models.interpolator import FrameInterpolator, InterpolatorConfig
from ..models.upscaler import UpscalerConfig, VideoUpscaler
from ..world.render import render
from .bank import load_autoencoder
from .checkpoint import resume, save_training_state, save_weights
from .config import EnhanceTrainConfig
from .data import draw_clip, frames_to_tensor

BUCKETS = ((64, 64), (112, 64), (64, 112))
INTERP_STEPS = 6  # targets at t = 1/6 .. 5/6 between two 8 fps frames


def _degrade(clip: torch.Tensor, autoencoder: VideoAutoencoder | None) -> torch.Tensor:
    """(3, T, H, W) with T = 1 + 4k: through the autoencoder, as generated frames are."""
    if autoencoder is None:
        return clip
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        return autoencoder.decode(autoencoder.encode(clip[None]))[0].float().clamp(-1, 1)


def _busy_crop(rng: random.Random, low: torch.Tensor, crop: int, tries: int = 8) -> tuple[int, int]:
    """Top-left corner of the crop of (C, T, H, W) with the most edges among a few random ones:
    most of a frame is flat colour (or still) that bicubic (or a cross-fade) already gets right,
    and a flat crop teaches nothing."""
    _, _, height, width = low.shape
    edges = (low[:, :, 1:, 1:] - low[:, :, :-1, :-1]).abs().sum((0, 1))  # (h-1, w-1)
    corners = [(rng.randrange(height - crop + 1), rng.randrange(width - crop + 1)) for _ in range(tries)]
    return max(corners, key=lambda c: edges[c[0]:c[0] + crop, c[1]:c[1] + crop].sum().item())


def upscale_pairs(rng: random.Random, clips: int, scale: int, autoencoder: VideoAutoencoder | None,
                  degrade_prob: float = 0.5, crop: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Low-res runs of 9 frames (N, 9, 3, h, w) and the high-res truth of each (N, 9, 3, sh, sw),
    all from one randomly chosen size bucket; `crop` > 0 cuts a random crop x crop low-res window
    (and its high-res twin) from each clip, since the network only ever looks 9 pixels around."""
    width, height = rng.choice(BUCKETS)
    lows, highs = [], []
    for _ in range(clips):
        factors, start, _ = draw_clip(rng, 0.15, 3.0)
        low = frames_to_tensor(render(factors, width, height, 8.0, 9, start_time=start))  # (3, 9, h, w)
        if rng.random() < degrade_prob:
            low = _degrade(low, autoencoder)
        high = frames_to_tensor(render(factors, scale * width, scale * height, 8.0, 9, start_time=start))
        if crop:
            y, x = _busy_crop(rng, low, crop)
            low = low[..., y:y + crop, x:x + crop]
            high = high[..., scale * y:scale * (y + crop), scale * x:scale * (x + crop)]
        lows.append(low.transpose(0, 1))
        highs.append(high.transpose(0, 1))
    return torch.stack(lows), torch.stack(highs)


def interpolation_triples(rng: random.Random, clips: int, autoencoder: VideoAutoencoder | None,
                          degrade_prob: float = 0.5, crop: int = 0
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(first, second, t, truth): frames 3 and 4 of an 8 fps clip and the renderer's frames at
    t = k/6 between them, flattened to (N, 3, h, w), (N, 3, h, w), (N,), (N, 3, h, w); `crop` > 0
    cuts the crop x crop window where the two frames differ most."""
    width, height = rng.choice(BUCKETS)
    firsts, seconds, ts, truths = [], [], [], []
    for _ in range(clips):
        factors, start, _ = draw_clip(rng, 0.15, 3.0)
        low = frames_to_tensor(render(factors, width, height, 8.0, 5, start_time=start))  # (3, 5, h, w)
        if rng.random() < degrade_prob:
            low = _degrade(low, autoencoder)
        between = render(factors, width, height, 8.0 * INTERP_STEPS, INTERP_STEPS - 1,
                         start_time=start + 3 / 8.0 + 1 / (8.0 * INTERP_STEPS))
        truth = frames_to_tensor(between).transpose(0, 1)  # (5, 3, h, w)
        if crop:
            y, x = _busy_crop(rng, (low[:, 4] - low[:, 3])[:, None], crop)
            low, truth = low[..., y:y + crop, x:x + crop], truth[..., y:y + crop, x:x + crop]
        firsts.append(low[:, 3][None].expand(INTERP_STEPS - 1, -1, -1, -1))
        seconds.append(low[:, 4][None].expand(INTERP_STEPS - 1, -1, -1, -1))
        ts.append(torch.arange(1, INTERP_STEPS) / INTERP_STEPS)
        truths.append(truth)
    return torch.cat(firsts), torch.cat(seconds), torch.cat(ts), torch.cat(truths)


def _bicubic(frames: torch.Tensor, scale: int) -> torch.Tensor:
    """(N, 3, h, w) -> (N, 3, sh, sw) by bicubic, clamped to the frames' range: what the upscaler must beat."""
    return F.interpolate(frames, scale_factor=scale, mode="bicubic", align_corners=False).clamp(-1, 1)


def _upscale_loss(model: VideoUpscaler, low: torch.Tensor, high: torch.Tensor, relative: bool = False) -> torch.Tensor:
    """Mean squared error over the runs (N, 9, 3, h, w), or with `relative` the mean of each run's
    error over bicubic's (1 = no better than bicubic)."""
    # Squared error only: with an L1 term the sign of every near-zero error in flat areas pushed
    # back and forth, and the networks learned nothing (measured: loss flat over 500 steps).
    errors = torch.stack([(model(run) - truth).pow(2).mean() for run, truth in zip(low, high)])  # (N,)
    if not relative:
        return errors.mean()
    with torch.no_grad():
        bicubic = _bicubic(low.flatten(0, 1), model.cfg.scale)
        floor = (bicubic - high.flatten(0, 1)).pow(2).unflatten(0, low.shape[:2]).mean((1, 2, 3, 4))
    return (errors / (floor + 1e-4)).mean()  # 1e-4: a run bicubic already gets right (~46 dB) cannot dominate


def motion_mask(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) bool: pixels near anything that changed between the two frames."""
    changed = ((second - first).abs().sum(1, keepdim=True) > 0.1).float()
    return F.max_pool2d(changed, 5, stride=1, padding=2) > 0


def _interp_loss(model: FrameInterpolator, first, second, t, truth) -> torch.Tensor:
    # Moving pixels weigh 10x: they are a few percent of a frame, and all the cross-fade gets wrong.
    weight = 1 + 9 * motion_mask(first, second).float()
    out = model(first, second, t)
    return (weight * (out - truth).pow(2)).mean() / weight.mean()


def train_enhancer(cfg: EnhanceTrainConfig, log: Callable[[str], None] = lambda s: None) -> Path:
    """Train the upscaler or the interpolator (cfg.stage); resumable; returns the weights' path."""
    torch.manual_seed(cfg.seed)
    run_dir = Path(cfg.run_dir)
    if cfg.stage == "upscaler":
        model_cfg = UpscalerConfig.from_dict(cfg.model)
        model = VideoUpscaler(model_cfg)
    else:
        model_cfg = InterpolatorConfig.from_dict(cfg.model)
        model = FrameInterpolator(model_cfg)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
    step = resume(run_dir, model, optimizer, log)
    autoencoder = load_autoencoder(cfg.autoencoder).requires_grad_(False)
    rng = random.Random(cfg.seed * 1000 + step)
    started, losses = time.time(), []
    while step < cfg.steps:
        lr = cfg.lr * 0.5 * (1 + math.cos(math.pi * step / cfg.steps))
        for group in optimizer.param_groups:
            group["lr"] = lr
        if cfg.stage == "upscaler":
            loss = _upscale_loss(model, *upscale_pairs(rng, cfg.clips_per_step, model_cfg.scale, autoencoder,
                                                       cfg.degrade_prob, cfg.crop), cfg.relative_loss)
        else:
            loss = _interp_loss(model, *interpolation_triples(rng, cfg.clips_per_step, autoencoder, cfg.degrade_prob,
                                                              cfg.crop))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        losses.append(loss.item())
        if step % cfg.log_every == 0:
            log(f"step {step}/{cfg.steps} loss {sum(losses) / len(losses):.4f} lr {lr:.2e} "
                f"s/step {(time.time() - started) / cfg.log_every:.2f}")
            started, losses = time.time(), []
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            save_training_state(run_dir, step, model, optimizer, {"config": asdict(cfg)}, model_cfg.to_json())
    save_weights(model, run_dir / f"{cfg.stage}.safetensors", model_cfg.to_json())
    return run_dir / f"{cfg.stage}.safetensors"


@torch.no_grad()
def evaluate_upscaler(model: VideoUpscaler, autoencoder: VideoAutoencoder | None, clips: int = 24,
                      seed: int = 12345) -> dict:
    """PSNR/SSIM against the renderer's 4x frames: learned vs bicubic, on clean renders and on
    autoencoder round trips (what generation feeds it). Same clips for both methods."""
    result = {}
    for name, prob in (("clean", 0.0), ("decoded", 1.0)):
        rng = random.Random(seed)
        scores = {"learned": [], "bicubic": []}
        for _ in range(clips):
            low, high = upscale_pairs(rng, 1, model.cfg.scale, autoencoder, degrade_prob=prob)
            truth = high[0]
            learned = model(low[0]).clamp(-1, 1)
            bicubic = _bicubic(low[0], model.cfg.scale)
            for method, out in (("learned", learned), ("bicubic", bicubic)):
                scores[method].append((psnr(out, truth), ssim(out, truth)))
        result[name] = {m: {"psnr_db": sum(p for p, _ in v) / len(v), "ssim": sum(s for _, s in v) / len(v)}
                        for m, v in scores.items()}
    return result


@torch.no_grad()
def evaluate_interpolator(model: FrameInterpolator, autoencoder: VideoAutoencoder | None, clips: int = 48,
                          seed: int = 12345) -> dict:
    """PSNR/SSIM of in-between frames against the renderer's, over whole frames and over the
    moving pixels: learned vs cross-fade vs repeating the nearest frame (plain re-timing)."""
    result = {}
    for name, prob in (("clean", 0.0), ("decoded", 1.0)):
        rng = random.Random(seed)
        first, second, t, truth = interpolation_triples(rng, clips, autoencoder, degrade_prob=prob)
        nearest = torch.where((t < 0.5).view(-1, 1, 1, 1), first, second)
        outs = {"learned": model(first, second, t).clamp(-1, 1), "blend": first + t.view(-1, 1, 1, 1) * (second - first),
                "repeat": nearest}
        moving = motion_mask(first, second).expand_as(truth)
        # Whole-frame numbers are mostly still background, the same for every method; the moving
        # pixels are where the methods differ.
        result[name] = {m: {"psnr_db": psnr(o, truth), "ssim": ssim(o, truth),
                            "moving_psnr_db": psnr(o[moving], truth[moving])} for m, o in outs.items()}
    return result
