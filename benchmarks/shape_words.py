"""Does the transformer draw the shape its caption names? Measured on single frames, where it is cheap.

The causal autoencoder encodes a clip's first frame alone, so a one-frame latent is an image and the
video transformer samples it like a clip. `measure` judges, for each given transformer:
- colour and shape of sampled images, by the analyzer (`image_tokens.judge_images`: 24 Euler steps,
  guidance 4), beside the same judgement of the bank's own first frames decoded (the ceiling);
- the flow loss on the bank's first frames with the right caption, and with only the shape or only
  the colour word swapped, at five noise levels: how much the model's prediction rests on that word.

`finetune` trains a transformer further on single frames: the bank's first latent frames, or with
`--pair-weight` > 0 fresh renders in counterfactual pairs, the same frame (same factors, start time,
noise and noise level) with only the shape changed, the loss being the flow loss on both plus
`pair_weight` times the flow loss on the pair's difference, where only the shape word can explain it.

`overfit` asks whether the transformer can draw the shapes at all: 20 captions (5 shapes x 4 colours,
large, still, on blue) trained on their own, the objects always in one place or somewhere new at
every step, then one image per caption judged.

    python benchmarks/shape_words.py finetune --init W --out W2 [--samples 48000] [--pair-weight 4]
    python benchmarks/shape_words.py measure W [W2 ...] [--images 128]
    python benchmarks/shape_words.py overfit W [--steps 1000] [--places fixed|random] [--patch 4]
                                             [--fixed-first K] [--relative-only]
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import random
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, write_results  # noqa: E402
from image_tokens import judge_images, read_image, sample_image  # noqa: E402

from reelforge.delivery import tensor_to_frames  # noqa: E402
from reelforge.flow.objective import flow_loss, interpolate, sample_t  # noqa: E402
from reelforge.models.text_encoder import TextEncoder  # noqa: E402
from reelforge.models.transformer import TransformerConfig, VideoTransformer, resize_patch_weights  # noqa: E402
from reelforge.pipeline import load_module  # noqa: E402
from reelforge.training.bank import load_autoencoder, load_bank  # noqa: E402
from reelforge.training.checkpoint import save_weights  # noqa: E402
from reelforge.training.data import frames_to_tensor  # noqa: E402
from reelforge.training.step import apply_gradients, set_lr  # noqa: E402
from reelforge.world.captions import caption  # noqa: E402
from reelforge.world.factors import (COLORS, FORBIDDEN_COLORS, SHAPES, ClipFactors, ObjectFactors, WorldError,  # noqa: E402
                                     validate)
from reelforge.world.render import render  # noqa: E402
from reelforge.world.splits import is_held_out, sample_train_factors  # noqa: E402

BATCH, PAIRS, TEXT_DROPOUT, SHIFT = 64, 32, 0.1, 2.0
GAP_TS = (0.3, 0.5, 0.7, 0.85, 0.95)


def bank_images(bank: str) -> tuple[torch.Tensor, list[ClipFactors]]:
    latents, factors, _ = load_bank(bank)["64x64"]
    return latents[:, :, :1].float(), [ClipFactors.from_dict(f) for f in factors]  # (N, C, 1, h, w)


@torch.no_grad()
def encode_first_frames(autoencoder, factors: list[ClipFactors], starts: list[float]) -> torch.Tensor:
    """Latents (B, C, 1, h, w) of each clip's 64x64 frame at its start time."""
    return autoencoder.encode(torch.stack([frames_to_tensor(render(f, 64, 64, 8.0, 1, start_time=s))
                                           for f, s in zip(factors, starts)]))


def swapped(factors: ClipFactors, **changes) -> ClipFactors:
    obj = dataclasses.replace(factors.objects[0], **changes)
    return dataclasses.replace(factors, objects=(obj,) + tuple(factors.objects[1:]))


def counterfactual_pair(rng: random.Random) -> tuple[ClipFactors, ClipFactors]:
    """A one-object training clip and the same clip with another shape, also a valid training clip."""
    while True:
        factors = sample_train_factors(rng, 0.0)
        for shape in rng.sample([s for s in SHAPES if s != factors.objects[0].shape], len(SHAPES) - 1):
            other = swapped(factors, shape=shape)
            try:
                validate(other)  # e.g. a ring cannot visibly spin
            except WorldError:
                continue
            if not is_held_out(other):
                return factors, other


def pair_batch(rng: random.Random, autoencoder) -> tuple[torch.Tensor, list[str], torch.Tensor]:
    """Latents (2P, C, 1, h, w) of PAIRS pairs side by side, their captions, and which pairs kept
    theirs (P,): a pair keeps or drops its captions together, or the unconditional branch would
    learn that no caption means another shape."""
    pairs = [counterfactual_pair(rng) for _ in range(PAIRS)]
    starts = [rng.uniform(0, 2) for _ in pairs]
    latents = encode_first_frames(autoencoder, [f for pair in pairs for f in pair], [s for s in starts for _ in range(2)])
    seeds = [rng.random() for _ in pairs]
    keep = [rng.random() >= TEXT_DROPOUT for _ in pairs]
    captions = [caption(f, random.Random(seed)) if k else "" for pair, seed, k in zip(pairs, seeds, keep) for f in pair]
    return latents, captions, torch.tensor(keep, dtype=torch.float32)


def finetune(args) -> None:
    torch.set_num_threads(2)
    model = load_module(VideoTransformer, TransformerConfig, Path(args.init)).requires_grad_(True).train()
    ema = copy.deepcopy(model).requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01, betas=(0.9, 0.99))
    text_encoder = TextEncoder()
    paired = args.pair_weight > 0
    seed = 7 if paired else 0
    rng, generator = random.Random(seed), torch.Generator().manual_seed(seed)
    if paired:
        autoencoder = load_autoencoder(args.autoencoder)
    else:
        images, factors = bank_images(args.bank)
    steps, started = args.samples // BATCH, time.time()
    for step in range(steps):
        if paired:
            x0, captions, kept = pair_batch(rng, autoencoder)
            t = sample_t(PAIRS, generator, shift=SHIFT).repeat_interleave(2)
            noise = torch.randn((PAIRS,) + x0.shape[1:], generator=generator).repeat_interleave(2, 0)
        else:
            idx = [rng.randrange(len(factors)) for _ in range(BATCH)]
            x0 = images[idx]
            captions = ["" if rng.random() < TEXT_DROPOUT else caption(factors[i], rng) for i in idx]
            t = sample_t(BATCH, generator, shift=SHIFT)
            noise = torch.randn(x0.shape, generator=generator)
        text = text_encoder(captions)
        set_lr(optimizer, args.lr, step, warmup=20, steps=steps)
        cond = {"text_tokens": text.tokens, "text_mask": text.mask, "text_pooled": text.pooled}
        if paired:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                v = model(interpolate(x0, noise, t), t, **cond)
            error = v.float() - (noise - x0)
            flow = error.pow(2).mean()
            # Where the pair's errors differ, only the shape word could have told the model.
            loss = flow + args.pair_weight * ((error[0::2] - error[1::2]).pow(2) * kept.view(-1, 1, 1, 1, 1)).mean()
        else:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = flow = flow_loss(model, x0, t, noise, None, **cond).mean()
        apply_gradients(model, optimizer, loss, ema, 0.995 if step > 50 else 0.0)
        if step % 50 == 0:
            print(f"step {step}/{steps} flow {flow.item():.4f} loss {loss.item():.4f} "
                  f"{(step + 1) * BATCH / (time.time() - started):.1f} images/s", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    save_weights(ema, Path(args.out), model.cfg.to_json())
    print(f"{args.out}: {steps} steps x {BATCH} images in {time.time() - started:.0f} s")


def judge_real(images: torch.Tensor, factors: list[ClipFactors], autoencoder, count: int) -> dict[str, float]:
    """The analyzer on the bank's own first frames, decoded: what a perfect model would score."""
    hits = {"color": 0, "shape": 0}
    for i in range(count):
        with torch.no_grad():
            seen = read_image(tensor_to_frames(autoencoder.decode(images[i:i + 1])[0]))
        want = factors[i].objects[0]
        hits["color"] += seen is not None and seen.color == want.color
        hits["shape"] += seen is not None and seen.shape == want.shape
    return {k: v / count for k, v in hits.items()}


@torch.no_grad()
def word_gap(model, images: torch.Tensor, factors: list[ClipFactors], text_encoder) -> dict[str, dict[str, float]]:
    """Flow loss on 96 one-object first frames with the right caption, and its rise (%) when only the
    shape or only the colour word names something else, by noise level."""
    rows = [i for i, f in enumerate(factors) if len(f.objects) == 1][:96]
    x0, rng = images[rows], random.Random(0)
    captions = {"right": [], "shape": [], "colour": []}
    for i in rows:
        f, obj, seed = factors[i], factors[i].objects[0], rng.random()
        shape = rng.choice([s for s in SHAPES if s != obj.shape])
        color = rng.choice([c for c in COLORS if c != obj.color and c not in FORBIDDEN_COLORS.get(f.background, ())])
        captions["right"].append(caption(f, random.Random(seed)))
        captions["shape"].append(caption(swapped(f, shape=shape), random.Random(seed)))
        captions["colour"].append(caption(swapped(f, color=color), random.Random(seed)))
    generator, gaps = torch.Generator().manual_seed(0), {}
    for level in GAP_TS:
        noise, t = torch.randn(x0.shape, generator=generator), torch.full((len(rows),), level)
        x_t, losses = interpolate(x0, noise, t), {}
        for name, texts in captions.items():
            text = text_encoder(texts)
            v = model(x_t, t, text_tokens=text.tokens, text_mask=text.mask, text_pooled=text.pooled)
            losses[name] = (v - (noise - x0)).pow(2).mean().item()
        gaps[str(level)] = {"loss": round(losses["right"], 4),
                            **{f"{w}_swapped_pct": round(100 * (losses[w] / losses["right"] - 1), 2)
                               for w in ("shape", "colour")}}
    return gaps


def measure(args) -> None:
    torch.set_num_threads(2)
    images, factors = bank_images(args.bank)
    autoencoder, text_encoder = load_autoencoder(args.autoencoder), TextEncoder()
    results = {"bank first frames, decoded": judge_real(images, factors, autoencoder, args.images)}
    for path in args.models:
        model = load_module(VideoTransformer, TransformerConfig, Path(path))
        results[path] = {**judge_images(model, autoencoder, text_encoder, args.images),
                         "word_gap": word_gap(model, images, factors, text_encoder)}
        print(path, results[path], flush=True)
    out = write_results(args.name, {"images": args.images, "bank": args.bank, "models": results})
    print_table(f"single frames: what the analyzer reads, and the loss rise when one word is swapped ({out})",
                ["transformer", "colour", "shape", "shape word, t 0.5 / 0.85", "colour word, t 0.5 / 0.85"],
                [[k, f"{r['color']:.0%}", f"{r['shape']:.0%}"] + [
                    " / ".join(f"+{r['word_gap'][t][f'{w}_swapped_pct']:.1f}%" for t in ("0.5", "0.85"))
                    if "word_gap" in r else "-" for w in ("shape", "colour")] for k, r in results.items()])


OVERFIT_COLORS = ("red", "yellow", "green", "white")


def overfit(args) -> None:
    torch.set_num_threads(2)
    autoencoder, text_encoder = load_autoencoder(args.autoencoder), TextEncoder()
    model = load_module(VideoTransformer, TransformerConfig, Path(args.model)).requires_grad_(True).train()
    if args.patch != model.cfg.patch[1] or args.relative_only:
        # A finer patch resized as init_from resizes a fine-tune; or the absolute-position layer
        # dropped, leaving the rotary positions, which see only where tokens are relative to each other.
        cfg = dataclasses.replace(model.cfg, patch=(1, args.patch, args.patch),
                                  absolute_positions=model.cfg.absolute_positions and not args.relative_only)
        state = resize_patch_weights(model.state_dict(), model.cfg.patch, cfg.patch)
        model = VideoTransformer(cfg)
        model.load_state_dict(state, strict=cfg.absolute_positions)
        model.train()
    ema = copy.deepcopy(model).requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.01, betas=(0.9, 0.99))
    factors = [ClipFactors(objects=(ObjectFactors(shape=s, color=c, size="large", motion="static", speed="slow"),),
                           background="blue") for s in SHAPES for c in OVERFIT_COLORS]
    captions = [f"a large {c} {s} on a blue background" for s in SHAPES for c in OVERFIT_COLORS]
    x0 = encode_first_frames(autoencoder, factors, [0.0] * len(factors))
    text = text_encoder(captions)
    generator, places, started = torch.Generator().manual_seed(0), random.Random(5), time.time()
    for step in range(args.steps):
        if args.places == "random" and step >= args.fixed_first:  # the same captions, each object somewhere else every step
            moved = [(dataclasses.replace(f, seed=places.randrange(10**9)), places.uniform(0, 2)) for f in factors]
            x0 = encode_first_frames(autoencoder, [f for f, _ in moved], [s for _, s in moved])
        t = sample_t(len(factors), generator, shift=SHIFT)
        noise = torch.randn(x0.shape, generator=generator)
        set_lr(optimizer, 3e-4, step, warmup=20, steps=args.steps)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            v = model(interpolate(x0, noise, t), t, text_tokens=text.tokens, text_mask=text.mask, text_pooled=text.pooled)
        loss = (v.float() - (noise - x0)).pow(2).mean()
        apply_gradients(model, optimizer, loss, ema, 0.99 if step > 50 else 0.0)
        if step % 100 == 0:
            print(f"step {step}/{args.steps} loss {loss.item():.4f} {time.time() - started:.0f} s", flush=True)
    hits = 0
    for i, f in enumerate(factors):  # noise seeds apart from judge_images' 0..count
        seen = read_image(sample_image(ema, autoencoder, text_encoder, captions[i], 100 + i))
        hits += seen is not None and seen.shape == f.objects[0].shape
    result = {"model": args.model, "steps": args.steps, "places": args.places, "patch": args.patch,
              "fixed_first": args.fixed_first, "relative_only": args.relative_only,
              "captions": len(factors), "shape": hits / len(factors), "final_loss": round(loss.item(), 4),
              "seconds": round(time.time() - started)}
    variant = (f"_fixed{args.fixed_first}" if args.fixed_first else "") + ("_relative" if args.relative_only else "")
    out = write_results(f"shape_words_overfit_{args.places}_{args.steps}_p{args.patch}{variant}", result)
    print_table(f"20 captions trained alone ({out})", ["places", "patch", "steps", "one place first", "positions", "shape"],
                [[args.places, args.patch, args.steps, args.fixed_first, "relative" if args.relative_only else "as trained",
                  f"{result['shape']:.0%}"]])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bank", default="runs/bank_time1")
    ap.add_argument("--autoencoder", default="checkpoints/autoencoder_time1.safetensors")
    sub = ap.add_subparsers(dest="command", required=True)
    tune = sub.add_parser("finetune")
    tune.add_argument("--init", required=True)
    tune.add_argument("--out", required=True)
    tune.add_argument("--samples", type=int, default=48_000)
    tune.add_argument("--lr", type=float, default=3e-4)
    tune.add_argument("--pair-weight", type=float, default=0.0)
    judge = sub.add_parser("measure")
    judge.add_argument("models", nargs="+")
    judge.add_argument("--images", type=int, default=128)
    judge.add_argument("--name", default="shape_words")
    fit = sub.add_parser("overfit")
    fit.add_argument("model")
    fit.add_argument("--steps", type=int, default=1000)
    fit.add_argument("--places", choices=("fixed", "random"), default="fixed")
    fit.add_argument("--patch", type=int, default=4)
    fit.add_argument("--fixed-first", type=int, default=0, help="steps in one place before moving (a curriculum)")
    fit.add_argument("--relative-only", action="store_true", help="drop the absolute-position layer")
    args = ap.parse_args()
    {"finetune": finetune, "measure": measure, "overfit": overfit}[args.command](args)


if __name__ == "__main__":
    main()
