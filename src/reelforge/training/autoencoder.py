"""Train the video autoencoder on rendered clips, then measure its latent statistics."""
from __future__ import annotations

import json
import math
import random
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file

from ..evaluation.pixels import psnr
from ..models.autoencoder import AutoencoderConfig, VideoAutoencoder, adapt_causal_state
from .checkpoint import resume, save_training_state, save_weights
from .config import AutoencoderTrainConfig
from .data import render_batch


@torch.no_grad()
def measure_latent_stats(model: VideoAutoencoder, cfg: AutoencoderTrainConfig, clips: int = 64) -> None:
    rng = random.Random(cfg.seed + 7)
    video, _, _ = render_batch(rng, clips, cfg.width, cfg.height, 33, cfg.fps)
    raw = model.encoder(video)  # (B, C, t, h, w)
    model.latents_mean.copy_(raw.mean(dim=(0, 2, 3, 4)))
    model.latents_std.copy_(raw.std(dim=(0, 2, 3, 4)).clamp_min(1e-3))


def _noise_levels(cfg: AutoencoderTrainConfig, latents: torch.Tensor) -> torch.Tensor | float:
    """Latent noise per clip, as a fraction of the latents' deviation: fixed, or uniform up to a maximum."""
    if not cfg.latent_noise_max:
        return cfg.latent_noise
    return cfg.latent_noise_max * torch.rand(latents.shape[0], 1, 1, 1, 1)


def _weighted_error(out: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    error = (out - target).abs() + (out - target).pow(2)
    return (weight * error).mean() / weight.mean()


def _change_error(recon: torch.Tensor, video: torch.Tensor, weight: torch.Tensor, dim: int) -> torch.Tensor:
    """Weighted error in the change from each element to the next along `dim` (time, height or
    width); a pair weighs what the heavier of its two elements weighs."""
    pairs = weight.shape[dim] - 1
    pair_weight = torch.maximum(weight.narrow(dim, 1, pairs), weight.narrow(dim, 0, pairs))
    return _weighted_error(recon.diff(dim=dim), video.diff(dim=dim), pair_weight)


def reconstruction_loss(recon: torch.Tensor, video: torch.Tensor, temporal_weight: float = 0.0,
                        edge_weight: float = 0.0) -> torch.Tensor:
    """Error of (B, 3, T, H, W) frames, plus with `temporal_weight` the error in the change from
    each frame to the next, so that the decoder's errors hold still instead of jumping, and with
    `edge_weight` the error in the change from each pixel to its right and lower neighbours."""
    # Objects cover a few percent of each frame but are all that matters to a viewer: pixels
    # away from the frame's dominant colour weigh 10x.
    dominant = video.flatten(2).median(dim=2).values[:, :, None, None, None]  # (B, 3, 1, 1, 1)
    weight = 1 + 9 * ((video - dominant).abs().sum(1, keepdim=True) > 0.3).float()
    loss = _weighted_error(recon, video, weight)
    if temporal_weight:
        loss = loss + temporal_weight * _change_error(recon, video, weight, dim=2)
    if edge_weight:
        # A gradient difference loss (Mathieu et al. 2016): a per-pixel error is content with a blur,
        # which turns a 6-pixel star into a disc; matching edges asks for the corners.
        loss = loss + edge_weight * sum(_change_error(recon, video, weight, dim) for dim in (3, 4))
    return loss


def train_autoencoder(cfg: AutoencoderTrainConfig, log: Callable[[str], None] = lambda s: None) -> Path:
    torch.manual_seed(cfg.seed)
    run_dir = Path(cfg.run_dir)
    # A run that starts from trained weights takes their architecture from the config beside them.
    start = json.loads(Path(cfg.init_from).with_suffix(".json").read_text()) if cfg.init_from else {}
    model_cfg = AutoencoderConfig.from_dict({**start, **cfg.model})
    model = VideoAutoencoder(model_cfg)
    if cfg.init_from:  # a causal decoder's weights also start a decoder that looks ahead
        model.load_state_dict(adapt_causal_state(load_file(cfg.init_from), model))
    if not cfg.train_encoder:
        if not cfg.init_from:
            raise ValueError("train_encoder false needs init_from: a fixed encoder must be a trained one")
        model.encoder.requires_grad_(False)
    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=cfg.lr, weight_decay=0.0)
    step = resume(run_dir, model, optimizer, log)
    rng = random.Random(cfg.seed * 1000 + step)  # a resumed run continues with fresh clips
    started = time.time()
    while step < cfg.steps:
        lr = cfg.lr * 0.5 * (1 + math.cos(math.pi * step / cfg.steps))
        for group in optimizer.param_groups:
            group["lr"] = lr
        video, _, _ = render_batch(rng, cfg.batch_size, cfg.width, cfg.height, cfg.num_frames, cfg.fps,
                                   max_start=3.0)
        with torch.autocast("cpu", dtype=torch.bfloat16), torch.set_grad_enabled(cfg.train_encoder):
            latents = model.encoder(video)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            noisy = latents + _noise_levels(cfg, latents) * latents.detach().std() * torch.randn_like(latents)
            recon = model.decoder(noisy).float()
        loss = (reconstruction_loss(recon, video, cfg.temporal_weight, cfg.edge_weight)
                + 1e-4 * latents.float().pow(2).mean())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        optimizer.step()
        step += 1
        if step % cfg.log_every == 0:
            rate = cfg.log_every * cfg.batch_size / (time.time() - started)
            log(f"step {step}/{cfg.steps} loss {loss.item():.4f} psnr {psnr(recon.detach(), video):.2f} "
                f"lr {lr:.2e} clips/s {rate:.1f}")
            started = time.time()
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            save_training_state(run_dir, step, model, optimizer, {"config": asdict(cfg)}, model_cfg.to_json())
    model.eval()
    if cfg.train_encoder:  # a fixed encoder keeps the statistics it came with
        measure_latent_stats(model, cfg)
    save_weights(model, run_dir / "model.safetensors", model_cfg.to_json())
    return run_dir / "model.safetensors"
