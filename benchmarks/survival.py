"""At which noise level does the model lose each factor? Renderer clips are encoded, noised to
t0 (x = (1 - t0) x0 + t0 noise, as training does) and sampled back to t = 0 with the pipeline's
guidance (16 Euler steps); the analyzer then judges the decoded clip against the clip's factors.
At t0 = 0 this is the autoencoder alone; at t0 = 1 it is plain generation. The level where a
factor falls away is where the model, not the sampler's start, has to decide it.

    python benchmarks/survival.py [--clips 24] [--levels 0.5,0.7,0.85,0.95] [--weights A.safetensors]
"""
from __future__ import annotations

import argparse
import random
import sys
from collections import defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, write_results  # noqa: E402

from reelforge.delivery import tensor_to_frames  # noqa: E402
from reelforge.evaluation.metrics import judge  # noqa: E402
from reelforge.flow.guidance import sampling_velocity  # noqa: E402
from reelforge.flow.objective import interpolate  # noqa: E402
from reelforge.models.transformer import TransformerConfig, VideoTransformer  # noqa: E402
from reelforge.pipeline import Pipeline, load_module  # noqa: E402
from reelforge.training.data import frames_to_tensor  # noqa: E402
from reelforge.world.captions import caption  # noqa: E402
from reelforge.world.render import render  # noqa: E402
from reelforge.world.splits import sample_train_factors  # noqa: E402

FACTORS = ("color", "shape", "motion", "background")
STEPS = 16


def judged(pipe: Pipeline, latents: torch.Tensor, factors) -> dict[str, bool]:
    frames = tensor_to_frames(pipe.autoencoder.decode(latents)[0])
    return judge(frames, pipe.config.fps, factors)[1]


@torch.no_grad()
def survival(pipe: Pipeline, clips: int, levels: list[float]) -> dict[str, dict[str, float]]:
    cfg = pipe.config
    rng = random.Random(11)
    hits = {level: defaultdict(int) for level in [0.0, *levels]}
    for i in range(clips):
        factors = sample_train_factors(rng, two_object_prob=0.0)
        frames = render(factors, 64, 64, cfg.fps, 33)
        x0 = pipe.autoencoder.encode(frames_to_tensor(frames)[None]).float()  # (1, C, t, h, w)
        for factor, ok in judged(pipe, x0, factors).items():
            hits[0.0][factor] += ok
        prompt = caption(factors, random.Random(i))
        text = pipe.text_encoder([prompt] if cfg.guidance == 1.0 else ["", prompt])  # as the pipeline encodes
        velocity = sampling_velocity(pipe.transformer, {"text_tokens": text.tokens, "text_mask": text.mask,
                                                        "text_pooled": text.pooled},
                                     cfg.guidance, cfg.guidance_interval, cfg.guidance_outside,
                                     pipe.guide, cfg.autoguidance, cfg.autoguidance_interval)
        noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(i))
        for level in levels:
            ts = torch.linspace(level, 0.0, STEPS + 1)
            x = interpolate(x0, noise, torch.tensor([level]))
            for t, t_next in zip(ts[:-1], ts[1:]):
                x = x + (t_next - t) * velocity(x, t.expand(1))
            for factor, ok in judged(pipe, x, factors).items():
                hits[level][factor] += ok
    return {f"t0={level:g}": {f: hits[level][f] / clips for f in FACTORS} for level in hits}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--levels", default="0.5,0.7,0.85,0.95")
    parser.add_argument("--weights", nargs="*", default=[], help="Transformer weights to compare with the shipped one.")
    args = parser.parse_args()
    levels = [float(x) for x in args.levels.split(",")]
    pipe = Pipeline.from_pretrained()
    results, rows = {}, []
    for name in ["shipped", *args.weights]:
        if name != "shipped":
            pipe.transformer = load_module(VideoTransformer, TransformerConfig, Path(name))
            pipe.guide = None  # the guide was made for the shipped model
        results[name] = survival(pipe, args.clips, levels)
        rows += [[name, level, *[f"{100 * r[f]:.0f}%" for f in FACTORS]] for level, r in results[name].items()]
    path = write_results("survival", {"clips": args.clips, "steps": STEPS, "results": results})
    print_table(f"factors that survive noising to t0 and sampling back ({args.clips} clips)",
                ["model", "start", *FACTORS], rows)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
