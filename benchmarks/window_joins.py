"""Window joins of long clips: how a continuation is joined to the video it continues.

Each held-out prompt is generated as a 10 s clip at the model's own size and frame rate, once for
every join method, with the same seeds: `bridge` (the shipped `delivery.join_windows`: the held
frames re-made by the interpolator from the first held frame to the first new one) and `fade`
(the cross-fade into the continuation's redraw used before, and still used by models without an
interpolator). Reported per method:

- join ratio: the change into each window's first new frame over the clip's median frame-to-frame
  change (`long.seam_ratio`; 1 = a join no larger than the clip's typical change);
- joined-stretch peak: the largest change into any held frame or into the first new frame, over
  the median, next to the same statistic 12 frames earlier, inside a window (what the clip does
  anyway);
- the analyzer's adherence and temporal consistency over the whole clip.

    python benchmarks/window_joins.py [--clips 24] [--seconds 10]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, write_results  # noqa: E402

import reelforge.pipeline as pipeline_module  # noqa: E402
from reelforge.delivery import join_windows  # noqa: E402
from reelforge.evaluation.metrics import (FACTORS, adherence_rates, consistency_summary, judge,  # noqa: E402
                                          temporal_consistency)
from reelforge.evaluation.run import prompt_sets  # noqa: E402
from reelforge.long import Shot, generate_long, seam_ratio  # noqa: E402
from reelforge.pipeline import Pipeline  # noqa: E402

HELD = 5  # frames the continuation holds at the model's 8 fps: 1 + 4k of the last second
INSIDE = 12  # how far before a join the inside-a-window stretch is taken


def fade(held, redraw, interpolator):
    return join_windows(held, redraw, None)


def peaks(frames: np.ndarray, boundaries: list[int]) -> tuple[float, float]:
    """Largest change from the frame before each join's held frames up to its first new frame
    (HELD + 1 changes: into each held frame and into the first new one), and over the same stretch
    INSIDE frames earlier, both over the clip's median change (mean over joins)."""
    diffs = np.abs(np.diff(frames.astype(np.int16), axis=0)).mean(axis=(1, 2, 3))
    typical = float(np.median(diffs)) or 1e-6
    join = [diffs[b - HELD - 1:b].max() / typical for b in boundaries]
    inside = [diffs[b - HELD - 1 - INSIDE:b - INSIDE].max() / typical for b in boundaries]
    return float(np.mean(join)), float(np.mean(inside))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--clips", type=int, default=24)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--model", default=None, help="a model directory [default: the built-in model]")
    args = p.parse_args()
    torch.set_num_threads(2)
    pipe = Pipeline.from_pretrained(args.model)
    if pipe.enhancers.interpolator is None:
        raise SystemExit("this model has no frame interpolator: its joins are the cross-fade only")
    prompts = prompt_sets(args.clips)["held_out"]
    shipped = pipeline_module.join_windows
    results, rows = {}, []
    for method, join in (("bridge", shipped), ("fade", fade)):
        pipeline_module.join_windows = join
        started, clips = time.time(), []
        try:
            for i, (factors, prompt) in enumerate(prompts):
                video = generate_long(pipe, [Shot(0.0, prompt)], args.seconds, seed=i)
                frames, boundaries = video.frames, video.settings["window_boundaries"]
                analysis, judged = judge(frames, video.fps, factors)
                join_peak, inside_peak = peaks(frames, boundaries)
                clips.append({"prompt": prompt, "join_ratio": seam_ratio(frames, boundaries), "join_peak": join_peak,
                              "inside_peak": inside_peak, "judged": judged,
                              "consistency": temporal_consistency(analysis)})
        finally:
            pipeline_module.join_windows = shipped
        r = {"join_ratio_mean": float(np.mean([c["join_ratio"] for c in clips])),
             "join_ratio_median": float(np.median([c["join_ratio"] for c in clips])),
             "join_peak": float(np.mean([c["join_peak"] for c in clips])),
             "inside_peak": float(np.mean([c["inside_peak"] for c in clips])),
             "adherence": adherence_rates([c["judged"] for c in clips]),
             **consistency_summary([c["consistency"] for c in clips]),
             "seconds_per_clip": (time.time() - started) / len(clips), "clips": clips}
        results[method] = r
        rows.append([method, f"{r['join_ratio_mean']:.2f}", f"{r['join_ratio_median']:.2f}",
                     f"{r['join_peak']:.2f}", f"{r['inside_peak']:.2f}",
                     *[f"{100 * r['adherence'][f]:.0f}%" for f in FACTORS if f in r["adherence"]],
                     f"{100 * r['temporal_consistency']:.1f}%", f"{100 * r['consistent_clips']:.0f}%",
                     f"{r['seconds_per_clip']:.1f} s"])
    path = write_results("window_joins", {"clips": args.clips, "seconds": args.seconds, **results})
    print_table(f"Window joins, {args.clips} held-out prompts, {args.seconds:g} s at the model's size and rate",
                ["join", "join ratio (mean)", "(median)", "joined-stretch peak", "inside-window peak",
                 *[f for f in FACTORS if f in results["bridge"]["adherence"]], "consistency", "clips >= 95%",
                 "per clip"], rows)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
