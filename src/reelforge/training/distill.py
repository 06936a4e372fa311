"""Turbo: distil the guided many-step teacher into a guidance-free few-step student by reflow.

Why reflow (Liu et al. 2022, "Flow straight and fast"; InstaFlow, Liu et al. 2023): the teacher's
ODE already couples each noise draw with one video. Training a student on straight lines between
those exact pairs makes its paths nearly straight, so two to four Euler steps land where the
teacher's 24 land. The pairs are drawn once with classifier-free guidance, so the student learns the
guided result and needs no unconditional pass (guidance distillation, Meng et al. 2023, for free).
Against consistency or progressive distillation it needs no teacher call during training, which on
two CPU cores is what decides: the teacher runs once per pair, in batches, before training starts.

Two stages, each resumable: "pairs" writes chunks of (noise, teacher latents, caption), and
"student" trains on them from the teacher's weights.
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
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from ..flow.guidance import sampling_velocity
from ..flow.layout import caption_bias
from ..flow.objective import clean_estimate, frame_correlated_noise, interpolate, sample_t, velocity_error
from ..flow.samplers import denoise, make_scheduler
from ..models.discriminator import DiscriminatorConfig, LatentDiscriminator, discriminator_loss, generator_loss
from ..models.text_encoder import TextEmbeddings, TextEncoder
from ..models.transformer import TransformerConfig, VideoTransformer
from ..models.verifier import LatentVerifier, VerifierConfig
from ..pipeline import Pipeline, load_guide, load_module, parts_dir, read_config, verifier_targets
from ..prompting import named_factors
from ..world.captions import caption
from ..world.factors import ClipFactors
from ..world.splits import sample_train_factors
from .bank import load_bank
from .checkpoint import resume, resume_companion, save_companion, save_training_state
from .config import DistillConfig
from .score_matching import DistributionMatcher
from .step import StepBudget, apply_gradients, set_lr, training_device


def _chunk_plan(cfg: DistillConfig, i: int) -> tuple[random.Random, tuple[int, int], int]:
    """Chunk i's rng, bucket (width, height) and latent frames: the same whenever it is made."""
    rng = random.Random(f"{cfg.seed}-pairs-{i}")
    (width, height), = rng.choices([tuple(b[:2]) for b in cfg.buckets], [b[2] for b in cfg.buckets])
    frames, = rng.choices([f for f, _ in cfg.latent_frames], [w for _, w in cfg.latent_frames])
    return rng, (width, height), frames


@torch.no_grad()
def teacher_latents(teacher: VideoTransformer, text_encoder: TextEncoder, captions: list[str], noise: torch.Tensor,
                    steps: int, guidance: float, sampler: str, shift: float,
                    interval: tuple[float, float] = (0.0, 1.0), outside: float = 1.0, guide=None,
                    guide_weight: float = 1.0, guide_interval: tuple[float, float] = (0.0, 1.0)) -> torch.Tensor:
    """What the teacher's sampler makes of `noise` (B, C, t, h, w) for `captions`, all in one batch
    (autoguided by `guide` as the teacher's pipeline is, when it has one)."""
    text = text_encoder([""] * len(captions) + captions)  # unconditional rows first, as guided_velocity reads them
    text_kwargs = {"text_tokens": text.tokens, "text_mask": text.mask, "text_pooled": text.pooled}
    scheduler = make_scheduler(sampler, steps, shift, frames=noise.shape[2])
    with torch.autocast(noise.device.type, dtype=torch.bfloat16):
        velocity = sampling_velocity(teacher, text_kwargs, guidance, interval, outside, guide, guide_weight,
                                     guide_interval)
        return denoise(lambda x, t: velocity(x, t).float(),
                       noise.clone(), scheduler).float()


@torch.no_grad()
def pipeline_latents(pipe: Pipeline, captions: list[str], seeds: list[int], width: int, height: int,
                     frames: int) -> tuple[torch.Tensor, torch.Tensor, list[str], torch.Tensor, list[bool]]:
    """What the teacher's whole pipeline makes of each caption with its seed, one clip at a time: noise
    and latents (B, C, t, h, w), the captions as the pipeline rewrote them, and the planned path (B, N)
    of the clips its layout guidance steered (`planned`; zeros for the others)."""
    seconds = (frames - 1) * pipe.autoencoder.cfg.time_down / pipe.config.fps
    bucket = pipe.bucket_for((width, height))
    if bucket != (width, height):  # checked before any clip is sampled
        raise ValueError(f"the teacher makes {width}x{height} clips as {bucket[0]}x{bucket[1]} clips; use its buckets "
                         f"({', '.join(f'{w}x{h}' for w, h in pipe.config.buckets)})")
    noises, outputs, revised, cells, planned = [], [], [], [], []
    for text, seed in zip(captions, seeds):
        noise, latents, settings = pipe.sample_latents(text, seconds=seconds, size=(width, height), seed=seed)
        if latents.shape[2] != frames:
            raise ValueError(f"{seconds:g} s made {latents.shape[2]} latent frames, not the {frames} asked for")
        prompt = settings.get("revised_prompt", text)
        steered = bool(settings.get("layout_guidance"))
        path = pipe.planned_cells(named_factors(prompt), (seed, 0.0), frames, width, height) if steered else None
        noises.append(noise)
        outputs.append(latents)
        revised.append(prompt)
        planned.append(steered)
        cells.append(path)
    return torch.cat(noises), torch.cat(outputs), revised, stack_paths(cells), planned


def stack_paths(paths: list[torch.Tensor | None]) -> torch.Tensor:
    """(B, N) planned paths, zeros for the clips layout guidance did not steer (None); (B, 0) when none was."""
    tokens = next((c.numel() for c in paths if c is not None), 0)
    return torch.stack([torch.zeros(tokens) if c is None else c for c in paths])


def make_pairs(cfg: DistillConfig, log: Callable[[str], None] = lambda s: None) -> Path:
    if cfg.teacher_pipeline:
        return make_pipeline_pairs(cfg, log)
    teacher_dir = Path(cfg.teacher)
    settings = read_config(teacher_dir)  # the teacher's own sampler, guidance and shift
    device = training_device(cfg.device)
    teacher = load_module(VideoTransformer, TransformerConfig, teacher_dir / "transformer.safetensors").to(device)
    guide = load_guide(teacher_dir, settings, teacher)
    guide = guide.to(device) if guide is not None else None
    text_encoder = TextEncoder(device)

    def make(rng, captions, width, height, frames):
        generator = torch.Generator().manual_seed(rng.randrange(2**31))
        noise = frame_correlated_noise((len(captions), teacher.cfg.in_channels, frames, height // 4, width // 4),
                                       generator, settings.noise_correlation)  # as the teacher samples
        latents = teacher_latents(teacher, text_encoder, captions, noise.to(device), cfg.teacher_steps,
                                  settings.guidance, settings.sampler, settings.shift,
                                  settings.guidance_interval, settings.guidance_outside, guide,
                                  settings.autoguidance, settings.autoguidance_interval).cpu()
        return {"noise": noise, "latents": latents}, {}, ""
    return _write_chunks(cfg, make, log)


def make_pipeline_pairs(cfg: DistillConfig, log: Callable[[str], None] = lambda s: None) -> Path:
    """Pairs from the teacher's whole pipeline (`teacher_pipeline`), with each clip's seed and planned path."""
    pipe = Pipeline.from_pretrained(cfg.teacher)
    pipe.transformer.to(training_device(cfg.device))

    def make(rng, captions, width, height, frames):
        seeds = [rng.randrange(2**31) for _ in captions]
        noise, latents, revised, cells, planned = pipeline_latents(pipe, captions, seeds, width, height, frames)
        return ({"noise": noise, "latents": latents, "cells": cells},
                {"captions": json.dumps(revised), "seeds": json.dumps(seeds), "planned": json.dumps(planned)},
                f", {sum(planned)}/{len(planned)} steered")
    return _write_chunks(cfg, make, log)


def _write_chunks(cfg: DistillConfig, make, log: Callable[[str], None]) -> Path:
    """Every chunk not yet on disk: its training captions, and the tensors (fp16), metadata and log note
    that make(rng, captions, width, height, frames) returns for them, written whole or not at all."""
    out = Path(cfg.pairs_dir)
    out.mkdir(parents=True, exist_ok=True)
    started, made = time.time(), 0
    for i in range(cfg.pair_chunks):
        path = out / f"chunk_{i:05d}.safetensors"
        if path.exists():
            continue
        rng, (width, height), frames = _chunk_plan(cfg, i)
        factors = [sample_train_factors(rng) for _ in range(cfg.chunk)]
        captions = [caption(f, rng) for f in factors]
        tensors, metadata, note = make(rng, captions, width, height, frames)
        tmp = path.with_name(f".{path.name}.tmp")
        save_file({k: v.half().contiguous() for k, v in tensors.items()}, str(tmp),
                  metadata={"captions": json.dumps(captions), "factors": json.dumps([f.to_dict() for f in factors]),
                            **metadata})
        tmp.replace(path)
        made += 1
        log(f"pairs chunk {i + 1}/{cfg.pair_chunks} {width}x{height}x{frames} "
            f"{made * cfg.chunk / (time.time() - started):.2f} clips/s{note}")
    return out


def _planned_chunks(pairs_dir: str | Path):
    """Each chunk, open, with its metadata, in load_pairs' order; pairs made without planned paths refused."""
    for path in sorted(Path(pairs_dir).glob("chunk_*.safetensors")):
        with safe_open(str(path), "pt") as f:
            meta = f.metadata()
            if "planned" not in meta:
                raise ValueError(f"{path} has no planned paths: make the pairs with teacher_pipeline true "
                                 f"to train a student with layout_guidance")
            yield f, meta


def load_plans(pairs_dir: str | Path) -> list[tuple[torch.Tensor, list[bool]]]:
    """Every chunk's planned paths (B, N) and which clips layout guidance steered, in load_pairs' order."""
    return [(f.get_tensor("cells").float(), json.loads(meta["planned"])) for f, meta in _planned_chunks(pairs_dir)]


def replan(pairs_dir: str | Path, pipe: Pipeline) -> list[tuple[torch.Tensor, list[bool]]]:
    """Every chunk's planned paths as `pipe` would plan them for the same captions and seeds, in
    load_plans' order: the paths at the tokens of its transformer, for a real score that cuts the
    latents finer than the teacher that made the pairs."""
    plans = []
    for f, meta in _planned_chunks(pairs_dir):
        _, _, frames, h, w = f.get_slice("latents").get_shape()
        captions, seeds, planned = (json.loads(meta[k]) for k in ("captions", "seeds", "planned"))
        width, height = w * pipe.autoencoder.cfg.space_down, h * pipe.autoencoder.cfg.space_down
        paths = [pipe.planned_cells(named_factors(text), (seed, 0.0), frames, width, height) if steered else None
                 for text, seed, steered in zip(captions, seeds, planned)]
        plans.append((stack_paths(paths), planned))
    return plans


def load_pairs(pairs_dir: str | Path) -> list[tuple[torch.Tensor, torch.Tensor, list[str]]]:
    """Every chunk as (noise, teacher latents, captions); chunks differ in size and length."""
    chunks = []
    for path in sorted(Path(pairs_dir).glob("chunk_*.safetensors")):
        with safe_open(str(path), "pt") as f:
            captions = json.loads(f.metadata()["captions"])
        tensors = load_file(str(path))
        chunks.append((tensors["noise"], tensors["latents"], captions))
    if not chunks:
        raise FileNotFoundError(f"no teacher pairs in {pairs_dir}; run the 'pairs' stage first")
    return chunks


def train_student(cfg: DistillConfig, log: Callable[[str], None] = lambda s: None) -> Path:
    torch.manual_seed(cfg.seed)
    run_dir = Path(cfg.run_dir)
    device = training_device(cfg.device)
    chunks = [(noise.to(device), latents.to(device), captions) for noise, latents, captions in load_pairs(cfg.pairs_dir)]
    log(f"pairs: {sum(len(c) for _, _, c in chunks)} clips in {len(chunks)} chunks")
    plans = load_plans(cfg.pairs_dir) if cfg.layout_guidance else None
    teacher_weights = Path(cfg.teacher) / "transformer.safetensors"
    # A new round of pairs (a better teacher) can start from the last student instead of the teacher.
    start = Path(cfg.init_from) if cfg.init_from else teacher_weights
    model = load_module(VideoTransformer, TransformerConfig, start).to(device).train().requires_grad_(True)
    model_cfg = model.cfg
    ema = copy.deepcopy(model).requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0, betas=(0.9, 0.99))
    step = resume(run_dir, model, optimizer, log, ema)
    text_encoder = TextEncoder(device)
    adversary = None
    if cfg.adversarial_weight > 0:
        adversary = Adversary(cfg, model_cfg.in_channels, model_cfg.text_dim, text_encoder, chunks, device, step)
        adversary.resume(run_dir, log)
    matcher, real_plans = None, plans
    if cfg.dmd_weight > 0:
        teacher_cfg = read_config(Path(cfg.teacher))  # the real score is guided as the teacher samples
        teacher = load_module(VideoTransformer, TransformerConfig, teacher_weights).to(device)
        verifier = None
        if cfg.dmd_verifier:
            if not teacher_cfg.verifier or not teacher_cfg.verifier_guidance:
                raise ValueError(f"dmd_verifier needs a teacher that samples with verifier guidance; {cfg.teacher} "
                                 f"has none in its pipeline.json")
            verifier = load_module(LatentVerifier, VerifierConfig,
                                   parts_dir(Path(cfg.teacher), teacher_cfg) / teacher_cfg.verifier).to(device)
        guide = None
        if cfg.dmd_autoguidance:
            guide = load_guide(Path(cfg.teacher), teacher_cfg, teacher)
            if guide is None or teacher_cfg.autoguidance == 1:
                raise ValueError(f"dmd_autoguidance needs a teacher that samples with autoguidance; {cfg.teacher} "
                                 f"has none in its pipeline.json")
            guide = guide.to(device)
        matcher = DistributionMatcher(teacher, teacher_cfg.guidance, teacher_cfg.guidance_interval,
                                      teacher_cfg.guidance_outside, cfg.dmd_lr, verifier=verifier,
                                      verifier_guidance=teacher_cfg.verifier_guidance,
                                      verifier_interval=teacher_cfg.verifier_guidance_interval, guide=guide,
                                      guide_weight=teacher_cfg.autoguidance,
                                      guide_interval=teacher_cfg.autoguidance_interval)
        matcher.resume(run_dir, log)
        if plans is not None and tuple(teacher.cfg.patch) != tuple(model_cfg.patch):
            real_plans = replan(cfg.pairs_dir, Pipeline.from_pretrained(cfg.teacher))
            log(f"layout plans redrawn at the real score's patch {tuple(teacher.cfg.patch)}")
    rng = random.Random(cfg.seed * 1000 + step)
    generator = torch.Generator().manual_seed(cfg.seed * 1000 + step)
    budget = StepBudget(cfg.steps, cfg.time_budget_s, cfg.warmup, step)
    total_steps = cfg.steps
    started, losses = time.time(), []
    while step < total_steps:
        total_steps = budget(step, log)
        lr = set_lr(optimizer, cfg.lr, step, cfg.warmup, total_steps)
        chunk = rng.randrange(len(chunks))  # one chunk: one size and length
        noise_all, latents_all, captions_all = chunks[chunk]
        idx = rng.sample(range(len(captions_all)), min(cfg.batch_size, len(captions_all)))
        index = torch.tensor(idx, device=device)
        noise, x0 = noise_all[index].float(), latents_all[index].float()
        b = len(idx)
        captions = [captions_all[i] for i in idx]
        if matcher is None:
            text = text_encoder(captions)
        else:  # one call, so the unconditional rows the real score needs are padded as the student's are
            both = text_encoder([""] * b + captions)
            uncond = {"text_tokens": both.tokens[:b], "text_mask": both.mask[:b], "text_pooled": both.pooled[:b]}
            text = TextEmbeddings(both.tokens[b:], both.mask[b:], both.pooled[b:])
        if rng.random() < cfg.frame_t_prob:  # per-frame levels keep clean-context extension working
            t = sample_t(b * x0.shape[2], generator).view(b, x0.shape[2])
        else:
            t = sample_t(b, generator)
        t = t.to(device)
        plain = {"text_tokens": text.tokens, "text_mask": text.mask, "text_pooled": text.pooled}

        def bias_at(levels: torch.Tensor, plans=plans) -> torch.Tensor | None:  # along each steered pair's path
            bias = None if plans is None else plan_bias(text_encoder.tokenizer, plans[chunk], idx, captions_all,
                                                        levels, text.tokens.shape[1], cfg.layout_guidance,
                                                        cfg.layout_interval)
            return None if bias is None else bias.to(device)

        def real_bias_at(levels: torch.Tensor) -> torch.Tensor | None:  # the same at the score models' tokens
            return bias_at(levels, real_plans)
        bias = bias_at(t)
        cond = plain if bias is None else {**plain, "text_bias": bias}
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            x_t = interpolate(x0, noise, t)
            v = model(x_t, t, **cond).float()
            loss = velocity_error(v, x0, noise).mean()
            losses.append(loss.detach())
            estimate = clean_estimate(x_t, t, v)  # the student's clean clip at this step
            if adversary is not None:
                loss = loss + cfg.adversarial_weight * adversary.generator_loss(estimate, text.pooled)
            if matcher is not None:
                wanted = ([verifier_targets(named_factors(prompt), matcher.verifier) for prompt in captions]
                          if matcher.verifier is not None else None)
                loss = loss + cfg.dmd_weight * matcher.generator_loss(estimate, plain, uncond, generator,
                                                                      real_bias_at, wanted)
        grad_norm = apply_gradients(model, optimizer, loss, ema, cfg.ema_decay if step > cfg.warmup else 0.0)
        if adversary is not None:
            adversary.step(estimate, text.pooled)
        if matcher is not None:
            matcher.step(estimate, plain, generator, cfg.bf16, real_bias_at)
        step += 1
        if step % cfg.log_every == 0:
            rate = cfg.log_every * cfg.batch_size / (time.time() - started)
            extra = (adversary.report() if adversary is not None else "") + (matcher.report() if matcher else "")
            log(f"step {step}/{total_steps} loss {torch.stack(losses).mean():.4f}{extra} grad {grad_norm:.2f} "
                f"lr {lr:.2e} samples/s {rate:.1f}")
            started, losses = time.time(), []
        if step % cfg.checkpoint_every == 0 or step == total_steps:
            save_training_state(run_dir, step, model, optimizer, {"config": asdict(cfg), "total_steps": total_steps},
                                model_cfg.to_json(), ema)
            if adversary is not None:
                adversary.save(run_dir)
            if matcher is not None:
                matcher.save(run_dir)
    return run_dir / "ema.safetensors"


def plan_bias(tokenizer, plan: tuple[torch.Tensor, list[bool]], idx: list[int], captions: list[str],
              t: torch.Tensor, length: int, strength: float, interval: tuple[float, float]) -> torch.Tensor | None:
    """(B, N, L) layout bias of a student batch: along each steered pair's planned path, on the clips
    whose highest noise level lies in `interval` (the pipeline turns the bias on by the level too);
    None when no clip of the batch was steered."""
    cells, planned = plan
    if not any(planned[i] for i in idx):
        return None
    chosen = [captions[i] if planned[i] else "" for i in idx]  # "": no bias on that row
    bias = caption_bias(tokenizer, chosen, cells[torch.tensor(idx)], length, strength)
    level = t.reshape(len(idx), -1).amax(1).cpu()
    inside = (level >= interval[0]) & (level <= interval[1])
    return bias * inside[:, None, None]


class Adversary:
    """The discriminator of adversarial distillation and its optimiser. Real: clips with their own
    captions, either the latent bank's renderer clips or the teacher's outputs in the pairs. Fake: the
    student's clean-clip estimates, and real clips under another clip's caption (so that the caption,
    not only realism, is judged)."""

    def __init__(self, cfg: DistillConfig, channels: int, text_dim: int, text_encoder: TextEncoder,
                 chunks: list, device: torch.device, step: int):
        self.text_encoder, self.device, self.bf16 = text_encoder, device, cfg.bf16
        self.chunks_by_shape: dict[tuple, list] = {}
        for chunk in chunks:
            self.chunks_by_shape.setdefault(tuple(chunk[1].shape[1:]), []).append(chunk)
        self.bank, self.frames = None, None
        if cfg.adversarial_real == "bank":
            self.bank = load_bank(cfg.bank)
            for _, _, h, w in self.chunks_by_shape:
                if f"{4 * w}x{4 * h}" not in self.bank:
                    raise ValueError(f"the bank {cfg.bank} has no {4 * w}x{4 * h} clips for the pairs of that size; "
                                     f"it has {', '.join(self.bank)}")
            # Longer pairs (an extension's context) are judged on their first frames, as long as the bank's.
            self.frames = min(latents.shape[2] for latents, _, _ in self.bank.values())
        disc_cfg = DiscriminatorConfig(in_channels=channels, width=cfg.disc_width, text_dim=text_dim)
        with torch.random.fork_rng():  # its own draws, so the student's batches are those of a plain run
            torch.manual_seed(cfg.seed)
            self.discriminator = LatentDiscriminator(disc_cfg).to(device).train()
        self.rng = random.Random(f"{cfg.seed}-adversary-{step}")
        self.optimizer = torch.optim.AdamW(self.discriminator.parameters(), lr=cfg.disc_lr, betas=(0.0, 0.99),
                                           weight_decay=0.0)
        self.losses: list[torch.Tensor] = []
        self.student_logits: list[torch.Tensor] = []

    def resume(self, run_dir: Path, log: Callable[[str], None]) -> None:
        if resume_companion(run_dir, "discriminator", self.discriminator, self.optimizer):
            log("discriminator resumed")

    def judged(self, latents: torch.Tensor) -> torch.Tensor:
        return latents if self.frames is None else latents[:, :, :self.frames]

    def generator_loss(self, estimate: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
        """The student's adversarial loss; the discriminator's weights get no gradient from it."""
        self.discriminator.requires_grad_(False)
        logits = self.discriminator(self.judged(estimate), pooled).float()
        self.discriminator.requires_grad_(True)
        self.student_logits.append(logits.detach().mean())
        return generator_loss(logits)

    def real(self, like: torch.Tensor) -> tuple[torch.Tensor, list[str]]:
        """As many real clips of the fakes' shape as there are fakes, with their captions."""
        b, _, frames, h, w = like.shape
        if self.bank is None:
            _, latents, captions = self.rng.choice(self.chunks_by_shape[tuple(like.shape[1:])])
            idx = self.rng.sample(range(len(captions)), b)
            return latents[torch.tensor(idx, device=latents.device)].float(), [captions[i] for i in idx]
        latents, factors, _ = self.bank[f"{4 * w}x{4 * h}"]
        idx = self.rng.sample(range(len(factors)), b)
        real = latents[torch.tensor(idx)][:, :, :frames].float().to(self.device)
        return real, [caption(ClipFactors.from_dict(factors[i]), self.rng) for i in idx]

    def step(self, estimate: torch.Tensor, pooled: torch.Tensor) -> None:
        fakes = self.judged(estimate.detach())
        real, captions = self.real(fakes)
        real_pooled = self.text_encoder(captions).pooled
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            real_logits = self.discriminator(real, real_pooled).float()
            # With one clip, or repeated captions, a swapped caption can be the clip's own: rare at batch 32.
            fake_logits = torch.cat([self.discriminator(fakes, pooled).float(),
                                     self.discriminator(real, real_pooled.roll(1, 0)).float()])
            loss = discriminator_loss(real_logits, fake_logits)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.losses.append(loss.detach())

    def report(self) -> str:
        """Since the last report: the discriminator's hinge loss (2 when it cannot tell real from fake,
        0 when it always can) and its mean logit on the student's clips (the student's loss is minus it)."""
        disc, student = (float(torch.stack(x).mean()) if x else float("nan")
                         for x in (self.losses, self.student_logits))
        self.losses, self.student_logits = [], []
        return f" disc {disc:.3f} student logit {student:.3f}"

    def save(self, run_dir: Path) -> None:
        save_companion(run_dir, "discriminator", self.discriminator, self.optimizer)
