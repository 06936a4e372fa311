"""How large objects are drawn: the median radius (of the disc with the object's mean area, in units of
the frame's short side) of small and medium objects over held-out prompts, with a bare sampler (20 Euler
steps, guidance 5 everywhere, nothing else) and with the model's own sampling, for one or more models
side by side. The world draws small at 0.10 and medium at 0.14; the analyzer calls >= 0.168 "large".

    python benchmarks/object_size.py [--clips 12] [--models builtin,path/to/model_dir]
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, write_results  # noqa: E402

from reelforge.evaluation.run import prompt_sets  # noqa: E402
from reelforge.world.analyzer import analyze  # noqa: E402


def bare_config(config):
    """The model's pipeline settings with every sampling device off: only guidance 5 at every level."""
    return dataclasses.replace(config, autoguidance=1.0, verifier_guidance=0.0, layout_guidance=0.0, shift=1.0,
                               guidance_interval=(0.0, 1.0), smooth_seams=False)


def measure(pipe, prompts, **kwargs) -> dict:
    radii, shapes = [], 0
    for i, (factors, prompt) in enumerate(prompts):
        video = pipe(prompt, seconds=4, seed=i, **kwargs)
        objects = analyze(video.frames, video.fps).objects
        if objects:
            radii.append(math.sqrt(objects[0].area / math.pi))
            shapes += objects[0].shape == factors.objects[0].shape
    return {"median_radius": float(np.median(radii)) if radii else None, "radii": radii, "sized": len(radii),
            "shape_right": shapes}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--clips", type=int, default=12)
    p.add_argument("--models", default="builtin", help='model directories, comma-separated ("builtin": the shipped one)')
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from reelforge.pipeline import Pipeline
    # Small and medium objects whose size does not change on purpose.
    prompts = [(f, text) for f, text in prompt_sets(96, seed=0)["held_out"]
               if f.objects[0].size in ("small", "medium") and f.objects[0].motion not in ("grow", "shrink")][:args.clips]
    results, rows = {}, []
    for model in args.models.split(","):
        pipe = Pipeline.from_pretrained(None if model == "builtin" else model)
        shipped = pipe.config
        for sampling, config, kwargs in (("bare: 20 Euler steps, guidance 5", bare_config(shipped),
                                          {"steps": 20, "sampler": "euler"}), ("the model's own", shipped, {})):
            pipe.config = config
            r = measure(pipe, prompts, **kwargs)
            results[f"{model}: {sampling}"] = r
            rows.append([model, sampling, f"{r['median_radius']:.3f}", f"{r['shape_right']} / {r['sized']}"])
        pipe.config = shipped
    path = write_results("object_size", {"clips": len(prompts), "threads": args.threads, "results": results})
    print_table(f"Drawn radius of small and medium objects, {len(prompts)} held-out prompts (world: 0.10 / 0.14)",
                ["model", "sampling", "median radius", "shape right"], rows)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
