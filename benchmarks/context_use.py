"""Does the transformer use the other frames? One latent frame of fresh renderer clips is noised to
t, and the model's velocity error on it is measured twice: with every other frame at the same t,
and with every other frame clean. A model that has learnt that objects persist predicts a frame
far better from clean neighbours; one that draws each frame on its own gains nothing. This is the
diagnostic behind the "frames were generated independently" finding in MODEL_CARD.md.

    python benchmarks/context_use.py [--clips 48] [--weights A.safetensors B.safetensors ...]
"""
from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, write_results  # noqa: E402

from reelforge.flow.objective import interpolate, velocity_target  # noqa: E402
from reelforge.models.text_encoder import TextEncoder  # noqa: E402
from reelforge.models.transformer import TransformerConfig, VideoTransformer  # noqa: E402
from reelforge.pipeline import BUILTIN_DIR, load_module  # noqa: E402
from reelforge.training.bank import load_autoencoder  # noqa: E402
from reelforge.training.data import render_batch  # noqa: E402

LEVELS = (0.5, 0.8, 0.95)


@torch.no_grad()
def frame_errors(model, latents, noise, text, frame: int) -> dict[float, dict[str, float]]:
    """Velocity MSE on latent frame `frame` at each level, neighbours noisy alike or clean."""
    b, _, frames = latents.shape[:3]
    out = {}
    for level in LEVELS:
        row = {}
        for context, others in (("noisy", level), ("clean", 0.0)):
            t = torch.full((b, frames), others)
            t[:, frame] = level
            with torch.autocast("cpu", torch.bfloat16):
                v = model(interpolate(latents, noise, t), t, **text)
            row[context] = (v.float() - velocity_target(latents, noise))[:, :, frame].pow(2).mean().item()
        row["gain"] = 1 - row["clean"] / row["noisy"]
        out[level] = row
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--clips", type=int, default=48)
    p.add_argument("--weights", nargs="+", default=[str(BUILTIN_DIR / "transformer.safetensors")])
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    rng = random.Random(args.seed)
    video, captions, _ = render_batch(rng, args.clips, 64, 64, 33, 8.0, two_object_prob=0.0, max_start=2.0)
    ae = load_autoencoder(str(BUILTIN_DIR / "autoencoder.safetensors"))
    with torch.no_grad():
        latents = torch.cat([ae.encode(video[i:i + 16]) for i in range(0, args.clips, 16)]).float()
    noise = torch.randn(latents.shape, generator=torch.Generator().manual_seed(args.seed))
    embeds = TextEncoder()(captions)
    text = {"text_tokens": embeds.tokens, "text_mask": embeds.mask, "text_pooled": embeds.pooled}
    frame = latents.shape[2] // 2
    # What copying the clean neighbour before achieves: the context a model could use at the least.
    copied = {}
    for level in LEVELS:
        x_t = interpolate(latents, noise, torch.full((latents.shape[0],), level))[:, :, frame]
        v = (x_t - latents[:, :, frame - 1]) / level
        copied[level] = (v - velocity_target(latents, noise)[:, :, frame]).pow(2).mean().item()
    rows = [["copy the frame before", level, "-", f"{e:.4f}", "-"] for level, e in copied.items()]
    results = {}
    for weights in args.weights:
        model = load_module(VideoTransformer, TransformerConfig, Path(weights)).float()
        errors = frame_errors(model, latents, noise, text, frame)
        results[weights] = {"prediction": model.cfg.prediction, "levels": {str(k): v for k, v in errors.items()}}
        for level, row in errors.items():
            rows.append([weights, level, f"{row['noisy']:.4f}", f"{row['clean']:.4f}", f"{100 * row['gain']:.0f}%"])
    path = write_results("context_use", {"clips": args.clips, "frame": frame, "models": results,
                                         "copy_previous_frame": {str(k): v for k, v in copied.items()}})
    print_table("velocity error on one latent frame: other frames noisy alike vs clean",
                ["weights", "t", "others noisy", "others clean", "gain"], rows)
    print(path)


if __name__ == "__main__":
    main()
