"""Train the video transformer with the rectified-flow objective, on the pre-encoded latent bank
(CPU) or on clips rendered while it trains (`data: "stream"`, for a GPU)."""
from __future__ import annotations

import copy
import json
import random
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file

from ..flow.layout import PLAN_MARGIN_CELLS, caption_bias, token_cells
from ..flow.objective import (clean_estimate, frame_correlated_noise, interpolate, sample_t, self_condition_input,
                              temporal_loss, velocity_loss)
from ..models.text_encoder import TextEncoder
from ..models.transformer import TransformerConfig, VideoTransformer, resize_patch_weights
from ..models.verifier import LatentVerifier, VerifierConfig
from ..pipeline import load_module
from ..world.captions import caption
from ..world.factors import ClipFactors
from .bank import autoencoder_config, load_autoencoder, load_bank
from .checkpoint import resume, save_training_state
from .config import TransformerTrainConfig
from .feedback import feedback_labels, feedback_loss
from .step import StepBudget, apply_gradients, set_lr, training_device
from .masks import bank_object_masks, object_loss_weight

T_BINS = (0.25, 0.5, 0.75, 1.0)


class BankLatents:
    """The latent bank as a training source: a random bucket (by its clip count), then random clips."""

    def __init__(self, cfg: TransformerTrainConfig, device: torch.device, log: Callable[[str], None]):
        buckets = load_bank(cfg.bank)
        self.names = list(buckets)
        self.weights = [len(buckets[n][1]) for n in self.names]
        log(f"bank: {', '.join(f'{n}: {w} clips' for n, w in zip(self.names, self.weights))}")
        self.buckets = buckets
        ae = autoencoder_config(cfg.autoencoder) if cfg.object_weight or cfg.layout_guidance else None
        if cfg.object_weight:  # where the objects are depends on how many frames a latent frame holds
            self.masks = {n: bank_object_masks(*buckets[n], cfg.bank_fps, ae.time_down, ae.space_down)
                          for n in self.names}
        else:
            self.masks = {}
        # Where each clip's object is, as sampling's planned path marks it (flow/layout.py).
        self.layout = {n: bank_object_masks(*buckets[n], cfg.bank_fps, ae.time_down, ae.space_down,
                                            PLAN_MARGIN_CELLS)[:, 0] for n in self.names} if cfg.layout_guidance else {}
        self.device = device

    def sample(self, rng: random.Random, batch_size: int) -> tuple[torch.Tensor, torch.Tensor | None,
                                                                  list[ClipFactors], torch.Tensor | None]:
        """Latents (B, C, t, h, w), object masks (B, 1, t, h, w) or None, factors, and the objects'
        latent cells (B, t, h, w) for layout guidance or None."""
        bucket = rng.choices(self.names, self.weights)[0]
        latents, factors, _ = self.buckets[bucket]
        idx = [rng.randrange(len(factors)) for _ in range(batch_size)]
        masks = self.masks[bucket][idx].to(self.device) if self.masks else None
        layout = self.layout[bucket][idx] if self.layout else None
        return latents[idx].float().to(self.device), masks, [ClipFactors.from_dict(factors[i]) for i in idx], layout


def _source(cfg: TransformerTrainConfig, device: torch.device, log: Callable[[str], None]):
    if cfg.data == "bank":
        return BankLatents(cfg, device, log)
    from .stream import LatentStream, RenderedChunks
    chunks = RenderedChunks(cfg.stream_sizes, cfg.num_frames, cfg.bank_fps, cfg.two_object_prob, cfg.max_start,
                            cfg.stream_chunk, cfg.seed)
    stream = LatentStream(chunks, load_autoencoder(cfg.autoencoder), cfg.stream_capacity, cfg.workers, device,
                          cfg.bf16)
    started = time.time()
    stream.wait_for(cfg.stream_chunk)
    log(f"stream: {cfg.workers} render workers, first clips of every bucket after {time.time() - started:.0f} s")
    return stream


# Parts a model may gain in a fine-tune, by the prefix of their weights; each starts with a zero
# output layer, so the fine-tune begins as exactly the model it came from.
ADDED_LATER = {"pos_embed.": "the absolute positions", "head_": "the convolutional head"}


def _init_from(model: VideoTransformer, path: Path, log: Callable[[str], None]) -> None:
    """Start from trained weights; when they predicted something else (velocity vs clean sample),
    the last layer's output changes meaning, so it restarts at zero as adaLN-Zero starts it. Weights
    without self-conditioning (or absolute positions) start a model with them at zero on the new
    input, so it begins as exactly the model it came from. Weights trained at a coarser patch are
    resized to the model's (`resize_patch_weights`)."""
    state = load_file(str(path))
    sidecar = path.with_suffix(".json")
    was = TransformerConfig.from_dict(json.loads(sidecar.read_text())) if sidecar.exists() else TransformerConfig()
    if was.patch != model.cfg.patch:
        state = resize_patch_weights(state, was.patch, model.cfg.patch)
        log(f"{path} was trained at patch {was.patch}; its input and output layers resized to {model.cfg.patch}")
    embed, wanted = state["patch_embed.weight"], model.patch_embed.weight
    if embed.shape[1] < wanted.shape[1]:
        state["patch_embed.weight"] = torch.cat([embed, embed.new_zeros(embed.shape[0], wanted.shape[1] - embed.shape[1])], 1)
        log(f"{path} had no self-conditioning input; its weights on it start at zero")
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or any(not name.startswith(tuple(ADDED_LATER)) for name in missing):
        raise ValueError(f"{path} does not fit this model: missing {missing}, unexpected {unexpected}")
    for prefix, part in ADDED_LATER.items():
        if any(name.startswith(prefix) for name in missing):
            log(f"{path} had no weights for {part}; it starts with a zero output")
    if was.prediction != model.cfg.prediction:
        torch.nn.init.zeros_(model.proj_out.weight)
        torch.nn.init.zeros_(model.proj_out.bias)
        log(f"{path} predicted {was.prediction}; output layer reset to predict {model.cfg.prediction}")


def _param_groups(model: VideoTransformer, position_lr_scale: float, head_lr_scale: float = 1.0) -> list[dict]:
    """The rest of the model, then the absolute-position layer and the convolutional head where the
    model has them, each at its own multiple of the schedule (parts added in a fine-tune start at
    zero and would barely move at a fine-tune's rate)."""
    scales = {"pos_embed.": position_lr_scale, "head_": head_lr_scale}  # by ADDED_LATER's prefixes
    rest, added = [], {prefix: [] for prefix in scales}
    for name, p in model.named_parameters():
        part = next((prefix for prefix in scales if name.startswith(prefix)), None)
        (added[part] if part else rest).append(p)
    return [{"params": rest}] + [{"params": params, "lr_scale": scales[prefix]}
                                 for prefix, params in added.items() if params]


def train_transformer(cfg: TransformerTrainConfig, log: Callable[[str], None] = lambda s: None) -> Path:
    torch.manual_seed(cfg.seed)
    device = training_device(cfg.device)
    run_dir = Path(cfg.run_dir)
    model_cfg = TransformerConfig.from_dict(cfg.model)
    model = VideoTransformer(model_cfg)
    if cfg.init_from:
        _init_from(model, Path(cfg.init_from), log)
    model.to(device)
    ema = copy.deepcopy(model).requires_grad_(False)
    log(f"transformer: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters on {device}")
    optimizer = torch.optim.AdamW(_param_groups(model, cfg.position_lr_scale, cfg.head_lr_scale), lr=cfg.lr,
                                  weight_decay=cfg.weight_decay, betas=(0.9, 0.99))
    step = resume(run_dir, model, optimizer, log, ema)
    if not step and cfg.init_from:
        log(f"initialised from {cfg.init_from}")
    source = _source(cfg, device, log)
    text_encoder = TextEncoder(device)
    verifier = None
    if cfg.verifier_weight:  # frozen: its reading trains the transformer and it learns nothing here
        verifier = load_module(LatentVerifier, VerifierConfig, Path(cfg.verifier)).to(device)
    rng = random.Random(cfg.seed * 1000 + step)
    generator = torch.Generator().manual_seed(cfg.seed * 1000 + step)
    noise_generator = torch.Generator(device).manual_seed(cfg.seed * 1000 + step)
    budget = StepBudget(cfg.steps, cfg.time_budget_s, cfg.warmup, step)
    total_steps = cfg.steps
    started = time.time()
    losses, feedback, temporal = [], [], []
    while step < total_steps:
        total_steps = budget(step, log)
        lr = set_lr(optimizer, cfg.lr, step, cfg.warmup, total_steps)
        x0, masks, factors, layout = source.sample(rng, cfg.batch_size)  # (B, C, t, h, w)
        if rng.random() < 0.2:  # shorter clips too, always from the causal first latent frame
            frames = rng.randint(2, x0.shape[2] - 1)
            x0 = x0[:, :, :frames]
            masks = masks[:, :, :frames] if masks is not None else None
            layout = layout[:, :frames] if layout is not None else None
        captions = ["" if rng.random() < cfg.text_dropout else caption(f, rng) for f in factors]
        labels = feedback_labels(factors, [bool(c) for c in captions]) if verifier is not None else None
        text = text_encoder(captions)
        if rng.random() < cfg.frame_t_prob:
            t = sample_t(cfg.batch_size * x0.shape[2], generator, shift=cfg.t_shift).view(cfg.batch_size, x0.shape[2])  # (B, T)
        else:
            t = sample_t(cfg.batch_size, generator, shift=cfg.t_shift)  # (B,)
        t = t.to(device)
        weight = (object_loss_weight(masks, t, cfg.object_weight, cfg.object_weight_max_t)
                  if masks is not None and cfg.object_weight else None)
        noise = frame_correlated_noise(x0.shape, noise_generator, cfg.noise_correlation, device)
        cond = {"text_tokens": text.tokens, "text_mask": text.mask, "text_pooled": text.pooled}
        if layout is not None:
            chosen = [c if rng.random() < cfg.layout_prob else "" for c in captions]  # "": no bias on that row
            cond["text_bias"] = caption_bias(text_encoder.tokenizer, chosen, token_cells(layout, model_cfg.patch),
                                             text.tokens.shape[1], cfg.layout_guidance).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            if model_cfg.self_condition:  # half the rows see their own estimate, half zeros (a first step)
                use = torch.rand(cfg.batch_size, generator=generator) < 0.5
                cond["self_cond"] = self_condition_input(model, x0, noise, t, use.to(device), **cond)
            x_t = interpolate(x0, noise, t)
            v = model(x_t, t, **cond)
            per_sample = velocity_loss(v, x0, noise, weight)
        loss = per_sample.mean()
        if cfg.temporal_weight:
            change = temporal_loss(v, x0, noise, t, weight).mean()
            loss = loss + cfg.temporal_weight * change
            temporal.append(change.detach())
        if verifier is not None:
            read_as = feedback_loss(verifier, clean_estimate(x_t, t, v), labels, t, cfg.verifier_interval)
            loss = loss + cfg.verifier_weight * read_as.mean()
            feedback.append(read_as.detach()[read_as > 0])
        grad_norm = apply_gradients(model, optimizer, loss, ema, cfg.ema_decay if step > cfg.warmup else 0.0)
        step += 1
        losses.append((t.view(cfg.batch_size, -1).mean(1), per_sample.detach()))
        if step % cfg.log_every == 0:
            ts = torch.cat([a for a, _ in losses]).cpu()
            ls = torch.cat([b for _, b in losses]).cpu()
            bins = torch.bucketize(ts, torch.tensor(T_BINS[:-1]))
            by_t = " ".join(f"{ls[bins == i].mean():.3f}" if (bins == i).any() else "-" for i in range(len(T_BINS)))
            rate = cfg.log_every * cfg.batch_size / (time.time() - started)
            fresh = f" clips rendered {source.received}" if hasattr(source, "received") else ""
            read = f" verifier {torch.cat(feedback).mean():.3f}" if feedback and torch.cat(feedback).numel() else ""
            read += f" temporal {torch.stack(temporal).mean():.3f}" if temporal else ""
            log(f"step {step}/{total_steps} loss {ls.mean():.4f} by-t [{by_t}]{read} grad {grad_norm:.2f} "
                f"lr {lr:.2e} samples/s {rate:.1f}{fresh}")
            started, losses, feedback, temporal = time.time(), [], [], []
        if step % cfg.checkpoint_every == 0 or step == total_steps:
            save_training_state(run_dir, step, model, optimizer, {"config": asdict(cfg), "total_steps": total_steps},
                                model_cfg.to_json(), ema)
    return run_dir / "ema.safetensors"
