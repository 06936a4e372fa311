"""Does the transformer listen to each word? Two measures, per model:

1. Word sensitivity: the same seed sampled with prompts that differ in one factor (colour, shape,
   motion, background); the mean squared change of the sampled latents, beside the change from
   another seed with the same prompt. A model that draws what the shape or motion says moves its
   latents when that word changes; one that ignores it does not.
2. Layout from text: at t = 1 the input is pure noise, so the best clean-clip estimate is the mean
   of every clip the prompt allows, E[x0 | text]. For objects whose place the prompt fixes (still,
   spinning, growing or shrinking ones sit near the centre), that mean holds a blurred object. The
   model's estimate averaged over noise draws is compared with that mean measured on renders of
   the same factors (new layout seeds): the share of the mean's spatial structure the model
   predicts (1 = all of it, 0 = a plain background).

    python benchmarks/prompt_listening.py [--seeds 4] [--weights A.safetensors ...]
"""
from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, write_results  # noqa: E402

from reelforge.models.transformer import TransformerConfig, VideoTransformer  # noqa: E402
from reelforge.pipeline import Pipeline, load_module  # noqa: E402
from reelforge.training.data import frames_to_tensor  # noqa: E402
from reelforge.world.captions import caption  # noqa: E402
from reelforge.world.factors import ClipFactors, ObjectFactors  # noqa: E402
from reelforge.world.render import render  # noqa: E402

BASE = {"color": "red", "shape": "square", "motion": "left", "background": "blue"}
CHANGES = {"color": ["green", "yellow"], "shape": ["circle", "star"], "motion": ["up", "spin"],
           "background": ["white", "black"]}
CENTRED = [("white", "star", "static", "purple"), ("green", "circle", "grow", "black"),
           ("yellow", "square", "spin", "blue"), ("red", "triangle", "shrink", "white")]


def factors(color, shape, motion, background, seed=0) -> ClipFactors:
    return ClipFactors((ObjectFactors(shape, color, "large", motion, "slow"),), background, seed=seed)


def sampled_latents(pipe: Pipeline, prompt: str, seed: int) -> torch.Tensor:
    """The latents the pipeline decodes: those after the sampler's last step (its on_step callback)."""
    caught = {}
    pipe(prompt, seed=seed, on_step=lambda i, t, latents: caught.update(latents=latents.clone()))
    return caught["latents"]


def word_sensitivity(pipe: Pipeline, seeds: int) -> dict[str, float]:
    rng = random.Random(0)
    prompt = lambda d: caption(factors(d["color"], d["shape"], d["motion"], d["background"]), rng)  # noqa: E731
    changes = {name: [] for name in ["another seed", *CHANGES]}
    for seed in range(seeds):
        base = sampled_latents(pipe, prompt(BASE), seed)
        changes["another seed"].append(((base - sampled_latents(pipe, prompt(BASE), seed + 1000)) ** 2).mean().item())
        for name, values in CHANGES.items():
            for value in values:
                other = sampled_latents(pipe, prompt({**BASE, name: value}), seed)
                changes[name].append(((base - other) ** 2).mean().item())
    return {name: float(np.mean(v)) for name, v in changes.items()}


@torch.no_grad()
def layout_from_text(pipe: Pipeline, draws: int = 32) -> float:
    """Share of E[x0 | text]'s spatial structure (variance over positions) that the model's
    t = 1 estimate, averaged over noise, reproduces, over the CENTRED prompts."""
    rng = random.Random(1)
    shares = []
    for color, shape, motion, background in CENTRED:
        video = torch.stack([frames_to_tensor(render(factors(color, shape, motion, background, seed), 64, 64, 8.0, 33))
                             for seed in range(draws)])  # (N, 3, 33, 64, 64)
        data_mean = pipe.autoencoder.encode(video).mean(0)  # (C, t, h, w)
        text = pipe.text_encoder([caption(factors(color, shape, motion, background), rng)] * draws)
        noise = torch.randn(draws, *data_mean.shape, generator=torch.Generator().manual_seed(0))
        v = pipe.transformer(noise, torch.ones(draws), text_tokens=text.tokens, text_mask=text.mask,
                             text_pooled=text.pooled)
        model_mean = (noise - v).mean(0)  # x0 = x_t - t v at t = 1
        spatial = lambda m: m - m.mean(dim=(2, 3), keepdim=True)  # noqa: E731 - structure over positions
        target = spatial(data_mean)
        # Projection of the model's structure on the data's: 1 = all of it, at the right places.
        shares.append(float((spatial(model_mean) * target).sum() / (target * target).sum()))
    return float(np.mean(shares))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--weights", nargs="*", default=[], help="transformer safetensors (with .json) besides the shipped one")
    args = p.parse_args()
    pipe = Pipeline.from_pretrained()
    shipped, shipped_guide = pipe.transformer, pipe.guide
    results, rows = {}, []
    for name in ["shipped", *args.weights]:
        pipe.transformer = shipped if name == "shipped" else load_module(VideoTransformer, TransformerConfig, Path(name))
        pipe.guide = shipped_guide if name == "shipped" else None  # made for the shipped model
        sensitivity = word_sensitivity(pipe, args.seeds)
        layout = layout_from_text(pipe)
        results[name] = {"latent_change": sensitivity, "layout_from_text": layout}
        rows.append([Path(name).name, *(f"{sensitivity[k]:.3f}" for k in ["another seed", *CHANGES]), f"{layout:.2f}"])
    path = write_results("prompt_listening", {"seeds": args.seeds, "models": results})
    print_table("Latent change when one word changes (same seed), and layout predicted from text at t = 1",
                ["model", "another seed", *(f"{k} changed" for k in CHANGES), "layout from text"], rows)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
