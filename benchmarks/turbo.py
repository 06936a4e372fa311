"""Turbo side by side: the teacher's default sampler against the distilled student (1, 2, 4
steps) and training-free acceleration (First Block Cache across thresholds, fewer Euler steps), on
the same held-out prompts and seeds, end to end (prompt -> watermarked, signed MP4), with adherence
judged by the analyzer; plus the floor: one unguided transformer pass + decode + marked MP4.

    python benchmarks/turbo.py [--clips 48] [--thresholds 0.05,0.1,0.2,0.3]
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, write_results  # noqa: E402

from reelforge.evaluation.metrics import FACTORS, judge, temporal_consistency  # noqa: E402
from reelforge.evaluation.run import prompt_sets  # noqa: E402
from reelforge.media.provenance import load_identity, write_marked  # noqa: E402


def run_config(pipe, prompts, identity, out: Path, **kwargs) -> dict:
    times, hits, consistency = [], {f: [] for f in FACTORS}, []
    for i, (factors, prompt) in enumerate(prompts):
        t0 = time.perf_counter()
        video = pipe(prompt, seconds=4, seed=i, **kwargs)
        write_marked(video.frames, out, video.fps, "mp4", video.settings, video.metadata, f"bench_{i}", identity)
        times.append(time.perf_counter() - t0)
        analysis, judged = judge(video.frames, video.fps, factors)
        for factor, ok in judged.items():
            hits[factor].append(ok)
        consistency.append(temporal_consistency(analysis))
    return {"seconds_mean": float(np.mean(times)), "seconds_all": times,
            "adherence": {f: float(np.mean(v)) for f, v in hits.items() if v},
            "temporal_consistency": float(np.mean(consistency))}


def floor_seconds(pipe, identity, out: Path, repeats: int = 5) -> float:
    """One unguided transformer evaluation + decode + marked MP4: what no sampler can beat. Without
    keyframe smoothing, a delivery step the student skips (0.14 s of the teacher's time)."""
    times, config = [], pipe.config
    pipe.config = dataclasses.replace(config, smooth_seams=False)
    try:
        for i in range(repeats):
            t0 = time.perf_counter()
            video = pipe("a red ball rolls left across a blue floor", seconds=4, seed=i, steps=1, sampler="euler",
                         guidance=1.0)
            write_marked(video.frames, out, video.fps, "mp4", video.settings, video.metadata, f"floor_{i}", identity)
            times.append(time.perf_counter() - t0)
    finally:
        pipe.config = config
    return float(np.median(times))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--clips", type=int, default=48)
    p.add_argument("--thresholds", default="0.05,0.1,0.2,0.3")
    p.add_argument("--model", default=None)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from reelforge.pipeline import Pipeline
    pipe = Pipeline.from_pretrained(args.model)
    prompts = prompt_sets(args.clips, seed=1)["held_out"]
    configs = {"default": (pipe, {})}
    student = pipe.turbo() if pipe.has_turbo else None
    if student is not None:
        configs.update({f"turbo student, {n} step{'s' * (n > 1)}": (student, {"steps": n}) for n in (1, 2, 3, 4)})
    configs.update({f"cache {t}": (pipe, {"cache_threshold": float(t)}) for t in args.thresholds.split(",")})
    configs["8 steps euler"] = (pipe, {"steps": 8, "sampler": "euler"})
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["REELFORGE_HOME"] = str(Path(tmp) / "home")
        identity = load_identity()
        out = Path(tmp) / "clip.mp4"
        for model, _ in configs.values():
            model("warm up", seconds=1, steps=1)
        results = {name: run_config(model, prompts, identity, out, **kw) for name, (model, kw) in configs.items()}
        # The floor of the network turbo runs: the student, when there is one (since stage 10 the teacher's
        # transformer cuts latents into four times the tokens, and its one pass would flatter the student).
        floor = floor_seconds(student or pipe, identity, out)
    base = results["default"]
    rows = []
    for name, r in results.items():
        worst = min(r["adherence"][f] - base["adherence"][f] for f in ("color", "shape", "motion", "background"))
        rows.append([name, f"{r['seconds_mean']:.2f} s", f"{base['seconds_mean'] / r['seconds_mean']:.1f}x",
                     *[f"{100 * r['adherence'][f]:.0f}%" for f in ("color", "shape", "motion", "background")],
                     f"{100 * worst:+.0f}", f"{100 * r['temporal_consistency']:.0f}%",
                     f"{r['seconds_mean'] / floor:.1f}x"])
    settings = {name: {"model": model.config.name, **kw} for name, (model, kw) in configs.items()}
    path = write_results("turbo", {"clips": args.clips, "threads": args.threads, "configs": settings,
                                   "results": results, "floor_seconds": floor})
    print_table(f"Turbo vs default, {args.clips} held-out prompts, same seeds, prompt -> MP4, {args.threads} threads",
                ["config", "time", "speed-up", "color", "shape", "motion", "background", "worst vs default (pts)",
                 "consistency", "vs floor"], rows)
    print(f"floor (1 unguided pass of the student, or of the model without one, + decode + marked MP4): {floor:.3f} s")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
