"""How the transformer's token size limits what it learns, measured on images, where it is cheap.

The causal autoencoder encodes a clip's first frame alone, so the bank's first latent frames are
text-to-image data. The shipped transformer's width and depth are trained from scratch for the same
samples (the same batches, noise and captions) at each setting; the analyzer then judges the
colour and shape of 64 sampled images. The training losses at every 50th step compare pairwise,
since every setting sees the same batches. A (1, 4, 4) patch makes 16 tokens of 16x16 pixels
per 64x64 frame, the shipped model's; (1, 2, 2) makes 64 tokens of 8x8; `+conv` adds the
convolutional head (`TransformerConfig.conv_head`).

    python benchmarks/image_tokens.py [--samples 48000] [--settings 4,2,4+conv32] [--images 64]
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, write_results  # noqa: E402

from reelforge.delivery import tensor_to_frames  # noqa: E402
from reelforge.flow.guidance import guided_velocity  # noqa: E402
from reelforge.flow.objective import flow_loss, sample_t, shift_t  # noqa: E402
from reelforge.models.text_encoder import TextEncoder  # noqa: E402
from reelforge.models.transformer import TransformerConfig, VideoTransformer  # noqa: E402
from reelforge.training.bank import load_autoencoder, load_bank  # noqa: E402
from reelforge.training.step import apply_gradients, set_lr  # noqa: E402
from reelforge.world.analyzer import analyze  # noqa: E402
from reelforge.world.captions import caption  # noqa: E402
from reelforge.world.factors import ClipFactors  # noqa: E402
from reelforge.world.splits import sample_train_factors  # noqa: E402

BATCH, LR, GUIDANCE, STEPS = 64, 5e-4, 4.0, 24


def parse_setting(text: str) -> TransformerConfig:
    patch, _, head = text.partition("+conv")
    return TransformerConfig(patch=(1, int(patch), int(patch)), absolute_positions=True, conv_head=int(head or 0))


def train(cfg: TransformerConfig, images: torch.Tensor, factors: list, text_encoder, samples: int) -> tuple:
    torch.manual_seed(0)
    model = VideoTransformer(cfg)
    ema = VideoTransformer(cfg).requires_grad_(False)
    ema.load_state_dict(model.state_dict())
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.01, betas=(0.9, 0.99))
    rng, generator = random.Random(0), torch.Generator().manual_seed(0)
    steps, losses, started = samples // BATCH, {}, time.time()
    for step in range(steps):
        idx = [rng.randrange(len(factors)) for _ in range(BATCH)]
        text = text_encoder(["" if rng.random() < 0.1 else caption(factors[i], rng) for i in idx])
        t = sample_t(BATCH, generator, shift=2.0)
        noise = torch.randn(images[idx].shape, generator=generator)
        set_lr(optimizer, LR, step, warmup=50, steps=steps)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = flow_loss(model, images[idx], t, noise, None, text_tokens=text.tokens, text_mask=text.mask,
                             text_pooled=text.pooled).mean()
        apply_gradients(model, optimizer, loss, ema, 0.995 if step > 100 else 0.0)
        if step % 50 == 0:
            losses[step] = round(loss.item(), 4)
    return ema.eval(), losses, steps * BATCH / (time.time() - started)


@torch.no_grad()
def sample_image(model, autoencoder, text_encoder, text: str, seed: int) -> np.ndarray:
    """One 64x64 image for `text` from the noise of `seed`: STEPS Euler steps at GUIDANCE, decoded
    to frames (1, H, W, 3)."""
    pair = text_encoder(["", text])
    cond = {"text_tokens": pair.tokens, "text_mask": pair.mask, "text_pooled": pair.pooled}
    latents = torch.randn(1, 8, 1, 16, 16, generator=torch.Generator().manual_seed(seed))
    ts = shift_t(torch.linspace(1, 0, STEPS + 1), 2.0)
    for a, b in zip(ts[:-1], ts[1:]):
        latents = latents + (b - a) * guided_velocity(model, latents, a.expand(1), cond, GUIDANCE)
    return tensor_to_frames(autoencoder.decode(latents)[0])


def read_image(frames: np.ndarray):
    """The analyzer's main object in an image, or None."""
    return analyze(np.repeat(frames, 2, 0), 8.0).main  # two frames: the analyzer tracks objects


def judge_images(model, autoencoder, text_encoder, count: int) -> dict[str, float]:
    rng, hits = random.Random(1), {"color": 0, "shape": 0}
    for i in range(count):
        factors = sample_train_factors(rng, 0.0)
        seen = read_image(sample_image(model, autoencoder, text_encoder, caption(factors, rng), i))
        want = factors.objects[0]
        hits["color"] += seen is not None and seen.color == want.color
        hits["shape"] += seen is not None and seen.shape == want.shape
    return {k: v / count for k, v in hits.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=48_000)
    ap.add_argument("--settings", default="4,2,4+conv32")
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--bank", default="runs/bank")
    ap.add_argument("--autoencoder", default="runs/autoencoder/model.safetensors")
    args = ap.parse_args()
    latents, factor_dicts, _ = load_bank(args.bank)["64x64"]
    images = latents[:, :, :1].float()  # (N, C, 1, 16, 16): first frames
    factors = [ClipFactors.from_dict(f) for f in factor_dicts]
    text_encoder, autoencoder = TextEncoder(), load_autoencoder(args.autoencoder)
    results = {}
    for setting in args.settings.split(","):
        model, losses, rate = train(parse_setting(setting), images, factors, text_encoder, args.samples)
        results[setting] = {"samples": args.samples, "samples_per_s": round(rate, 1), "losses": losses,
                            **judge_images(model, autoencoder, text_encoder, args.images)}
        print(setting, results[setting], flush=True)
    path = write_results("image_tokens", {"settings": results, "images": args.images})
    logged = sorted(next(iter(results.values()))["losses"])
    late = logged[len(logged) * 2 // 5:]  # the last 60% of logged steps: 300-700 at the defaults
    print_table(f"text-to-image from scratch, {args.samples} samples ({path})",
                ["patch", "samples/s", f"loss, steps {late[0]}+", "colour", "shape"],
                [[k, r["samples_per_s"], f"{np.mean([r['losses'][s] for s in late]):.3f}", f"{r['color']:.0%}",
                  f"{r['shape']:.0%}"] for k, r in results.items()])


if __name__ == "__main__":
    main()
