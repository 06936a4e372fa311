"""Train the video transformer with the rectified-flow objective on the pre-encoded latent bank."""
from __future__ import annotations

import copy
import random
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import torch

from ..flow.objective import flow_loss, sample_t
from ..models.text_encoder import TextEncoder
from ..models.transformer import TransformerConfig, VideoTransformer
from ..world.captions import caption
from ..world.factors import ClipFactors
from .bank import load_bank
from .checkpoint import load_weights, resume, save_training_state
from .config import TransformerTrainConfig
from .step import apply_gradients, set_lr
from .masks import bank_object_masks

T_BINS = (0.25, 0.5, 0.75, 1.0)


def train_transformer(cfg: TransformerTrainConfig, log: Callable[[str], None] = lambda s: None) -> Path:
    torch.manual_seed(cfg.seed)
    run_dir = Path(cfg.run_dir)
    buckets = load_bank(cfg.bank)
    names = list(buckets)
    weights = [len(buckets[n][1]) for n in names]
    log(f"bank: {', '.join(f'{n}: {w} clips' for n, w in zip(names, weights))}")
    masks = {n: bank_object_masks(*buckets[n], cfg.bank_fps) for n in names} if cfg.object_weight else {}
    model_cfg = TransformerConfig.from_dict(cfg.model)
    model = VideoTransformer(model_cfg)
    if cfg.init_from:
        load_weights(model, Path(cfg.init_from))
    ema = copy.deepcopy(model).requires_grad_(False)
    log(f"transformer: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters")
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.99))
    step = resume(run_dir, model, optimizer, log, ema)
    if not step and cfg.init_from:
        log(f"initialised from {cfg.init_from}")
    text_encoder = TextEncoder()
    rng = random.Random(cfg.seed * 1000 + step)
    generator = torch.Generator().manual_seed(cfg.seed * 1000 + step)
    started, losses = time.time(), []
    while step < cfg.steps:
        lr = set_lr(optimizer, cfg.lr, step, cfg.warmup, cfg.steps)
        bucket = rng.choices(names, weights)[0]
        bank_latents, bank_factors, _ = buckets[bucket]
        idx = [rng.randrange(len(bank_factors)) for _ in range(cfg.batch_size)]
        x0 = bank_latents[idx].float()  # (B, C, t, h, w)
        weight = 1.0 + cfg.object_weight * masks[bucket][idx].float() if masks else None  # (B, 1, t, h, w)
        if rng.random() < 0.2:  # shorter clips too, always from the causal first latent frame
            frames = rng.randint(2, x0.shape[2] - 1)
            x0 = x0[:, :, :frames]
            weight = weight[:, :, :frames] if weight is not None else None
        captions = ["" if rng.random() < cfg.text_dropout else caption(ClipFactors.from_dict(bank_factors[i]), rng)
                    for i in idx]
        text = text_encoder(captions)
        if rng.random() < cfg.frame_t_prob:
            t = sample_t(cfg.batch_size * x0.shape[2], generator).view(cfg.batch_size, x0.shape[2])  # (B, T)
        else:
            t = sample_t(cfg.batch_size, generator)  # (B,)
        noise = torch.randn(x0.shape, generator=generator)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            per_sample = flow_loss(model, x0, t, noise, weight, text_tokens=text.tokens, text_mask=text.mask,
                                   text_pooled=text.pooled)
        loss = per_sample.mean()
        grad_norm = apply_gradients(model, optimizer, loss, ema, cfg.ema_decay if step > cfg.warmup else 0.0)
        step += 1
        losses.append((t.view(cfg.batch_size, -1).mean(1), per_sample.detach()))
        if step % cfg.log_every == 0:
            ts = torch.cat([a for a, _ in losses])
            ls = torch.cat([b for _, b in losses])
            bins = torch.bucketize(ts, torch.tensor(T_BINS[:-1]))
            by_t = " ".join(f"{ls[bins == i].mean():.3f}" if (bins == i).any() else "-" for i in range(len(T_BINS)))
            rate = cfg.log_every * cfg.batch_size / (time.time() - started)
            log(f"step {step}/{cfg.steps} loss {ls.mean():.4f} by-t [{by_t}] grad {grad_norm:.2f} "
                f"lr {lr:.2e} samples/s {rate:.1f}")
            started, losses = time.time(), []
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            save_training_state(run_dir, step, model, optimizer, {"config": asdict(cfg)}, model_cfg.to_json(), ema)
    return run_dir / "ema.safetensors"
