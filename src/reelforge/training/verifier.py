"""Train the latent verifier (models/verifier.py) on the latent bank's clips and the renderer's labels.

Only single-object clips: a label per factor is then the clip's, with nothing to tell which object
it belongs to. Every 20th clip is kept out and scored at the end, clean and with latent noise.
The inputs get Gaussian noise of a level drawn up to `noise_max` latent deviations (a generated
clip's latents are rougher than an encoded render's), mirrored left-right half the time (left and
right motions swap), and a quarter of them are cut to a shorter run of latent frames, so that the
verifier also judges the shorter windows the pipeline draws.
"""
from __future__ import annotations

import copy
import json
import random
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from ..flow.objective import interpolate
from ..models.verifier import VOCAB, LatentVerifier, VerifierConfig
from .bank import load_bank
from .checkpoint import resume, save_training_state
from .config import VerifierTrainConfig
from .step import apply_gradients, set_lr

MIRRORED = {"left": "right", "right": "left"}
HOLD_OUT_EVERY = 20


def labels_of(factors: dict) -> dict[str, int]:
    """{factor: index into VOCAB[factor]} of a single-object clip's factor dict."""
    obj = factors["objects"][0]
    values = {**{k: obj[k] for k in ("color", "shape", "motion", "size", "speed")}, "background": factors["background"]}
    return {name: VOCAB[name].index(value) for name, value in values.items()}


def _mirror(labels: torch.Tensor) -> torch.Tensor:
    """Motion labels (B,) of left-right mirrored clips."""
    swap = torch.arange(len(VOCAB["motion"]))
    for a, b in MIRRORED.items():
        swap[VOCAB["motion"].index(a)] = VOCAB["motion"].index(b)
    return swap[labels]


class LabelledBank:
    """Single-object bank clips per size bucket, split into training and held-out clips."""

    def __init__(self, bank_dir: str, log: Callable[[str], None]):
        self.train, self.held_out = {}, {}
        for name, (latents, factors, _) in load_bank(bank_dir).items():
            keep = [i for i, f in enumerate(factors) if len(f["objects"]) == 1]
            per_clip = [labels_of(factors[i]) for i in keep]
            labels = {k: torch.tensor([clip[k] for clip in per_clip]) for k in VOCAB}
            split = torch.tensor([j % HOLD_OUT_EVERY == 0 for j in range(len(keep))])
            for part, mask in ((self.train, ~split), (self.held_out, split)):
                part[name] = (latents[keep][mask], {k: v[mask] for k, v in labels.items()})
        self.std = torch.cat([x.float().transpose(0, 1).flatten(1) for x, _ in self.train.values()], 1).std(1)  # (C,)
        log("verifier bank: " + ", ".join(f"{n}: {len(self.train[n][0])} + {len(self.held_out[n][0])} held out"
                                          for n in self.train))

    def sample(self, rng: random.Random, batch_size: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        names = list(self.train)
        name = rng.choices(names, [len(self.train[n][0]) for n in names])[0]
        latents, labels = self.train[name]
        idx = torch.tensor([rng.randrange(len(latents)) for _ in range(batch_size)])
        return latents[idx].float(), {k: v[idx] for k, v in labels.items()}


def augment(rng: random.Random, latents: torch.Tensor, labels: dict[str, torch.Tensor], std: torch.Tensor,
            noise_max: float, generator: torch.Generator) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Noise, a left-right mirror and a shorter run of frames, each drawn once per batch."""
    b, c, t = latents.shape[:3]
    levels = torch.rand(b, generator=generator) * noise_max
    latents = latents + levels.view(b, 1, 1, 1, 1) * std.view(1, c, 1, 1, 1) * torch.randn(latents.shape, generator=generator)
    if rng.random() < 0.5:
        latents = latents.flip(4)
        labels = {**labels, "motion": _mirror(labels["motion"])}
    if t > 3 and rng.random() < 0.25:
        length = rng.randint(3, t - 1)
        start = rng.randint(0, t - length)
        latents = latents[:, :, start:start + length]
    return latents, labels


def noised(latents: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(x_t, t): each clip at a noise level drawn uniformly from [0, 1], as the sampler passes them."""
    t = torch.rand(latents.shape[0], generator=generator)
    return interpolate(latents, torch.randn(latents.shape, generator=generator), t), t


def verifier_loss(model: LatentVerifier, latents: torch.Tensor, labels: dict[str, torch.Tensor],
                  t: torch.Tensor | None = None) -> torch.Tensor:
    logits = model(latents, t)
    return sum(F.cross_entropy(logits[name].float(), labels[name]) for name in logits)


@torch.no_grad()
def held_out_accuracy(model: LatentVerifier, bank: LabelledBank, noise: float, seed: int = 0,
                      t: float | None = None) -> dict[str, float]:
    """Per factor, the share of held-out clips whose most likely value is the rendered one; with
    `t`, judged at that noise level (a noise-conditioned verifier)."""
    generator = torch.Generator().manual_seed(seed)
    right, total = {name: 0 for name in model.cfg.factors}, 0
    for latents, labels in bank.held_out.values():
        for i in range(0, len(latents), 64):
            x = latents[i:i + 64].float()
            x = x + noise * bank.std.view(1, -1, 1, 1, 1) * torch.randn(x.shape, generator=generator)
            levels = None
            if t is not None:
                levels = torch.full((len(x),), t)
                x = interpolate(x, torch.randn(x.shape, generator=generator), levels)
            logits = model(x, levels)
            for name in right:
                right[name] += int((logits[name].argmax(1) == labels[name][i:i + 64]).sum())
            total += len(x)
    return {name: right[name] / max(1, total) for name in right}


def train_verifier(cfg: VerifierTrainConfig, log: Callable[[str], None] = print) -> Path:
    run_dir = Path(cfg.run_dir)
    torch.manual_seed(cfg.seed)
    model = LatentVerifier(VerifierConfig.from_dict(cfg.model))
    ema = copy.deepcopy(model).requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    log(f"verifier: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters")
    bank = LabelledBank(cfg.bank, log)
    config_json = model.cfg.to_json()
    step = resume(run_dir, model, optimizer, log, ema)
    rng = random.Random(cfg.seed * 100_003 + step)  # a resumed run draws new batches, not the first ones again
    generator = torch.Generator().manual_seed(cfg.seed * 100_003 + step)
    started, seen = time.time(), 0
    while step < cfg.steps:
        lr = set_lr(optimizer, cfg.lr, step, cfg.warmup, cfg.steps)
        latents, labels = augment(rng, *bank.sample(rng, cfg.batch_size), bank.std, cfg.noise_max, generator)
        t = None
        if model.cfg.noise_conditioned:
            latents, t = noised(latents, generator)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            loss = verifier_loss(model, latents, labels, t)
        apply_gradients(model, optimizer, loss, ema, cfg.ema_decay if step >= cfg.warmup else 0.0)
        step += 1
        seen += len(latents)
        if step % cfg.log_every == 0:
            log(f"step {step} loss {loss.item():.4f} lr {lr:.2e} {seen / (time.time() - started):.0f} clips/s")
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            save_training_state(run_dir, step, model, optimizer, {"config": asdict(cfg)}, config_json, ema)
    scores = {f"noise {noise:g}": held_out_accuracy(ema.eval(), bank, noise) for noise in (0.0, 0.4)}
    if model.cfg.noise_conditioned:
        scores.update({f"t {t:g}": held_out_accuracy(ema.eval(), bank, 0.0, t=t) for t in (0.3, 0.5, 0.7, 0.9)})
    (run_dir / "held_out.json").write_text(json.dumps(scores, indent=2))
    for name, acc in scores.items():
        log(f"held-out clips, {name}: " + ", ".join(f"{k} {v:.1%}" for k, v in acc.items()))
    return run_dir / "ema.safetensors"
