"""How well the analyzer recovers the renderer's own factors after H.264 encoding (target >= 99%).

    python benchmarks/analyzer_accuracy.py --clips 300
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, write_results  # noqa: E402

from reelforge.media.decode import h264_roundtrip  # noqa: E402
from reelforge.world.analyzer import analyze  # noqa: E402
from reelforge.world.factors import sample_factors  # noqa: E402
from reelforge.world.render import render  # noqa: E402

FACTORS = ("background", "camera", "color", "shape", "motion", "size", "speed")


def run(clips: int, width: int, height: int, fps: float, seconds: float, seed: int, crf: int) -> dict:
    rng = random.Random(seed)
    hits, totals, confusions = Counter(), Counter(), Counter()
    started = time.time()
    for _ in range(clips):
        f = sample_factors(rng, two_object_prob=0.0)
        frames = h264_roundtrip(render(f, width, height, fps, round(fps * seconds)), fps, crf=crf)
        a = analyze(frames, fps)
        o, m = f.objects[0], a.main
        want = {"background": f.background, "camera": f.camera, "color": o.color, "shape": o.shape,
                "motion": o.motion, "size": o.size, "speed": o.speed}
        got = {"background": a.background, "camera": a.camera,
               **{k: getattr(m, k) if m else None for k in ("color", "shape", "motion", "size", "speed")}}
        for k in FACTORS:
            if k == "speed" and o.motion in ("static", "spin") or k == "size" and o.motion in ("grow", "shrink"):
                continue
            totals[k] += 1
            hits[k] += got[k] == want[k]
            if got[k] != want[k]:
                confusions[f"{k}: {want[k]} -> {got[k]}"] += 1
    return {"clips": clips, "size": f"{width}x{height}", "fps": fps, "seconds": seconds, "crf": crf,
            "accuracy": {k: hits[k] / totals[k] for k in FACTORS}, "confusions": dict(confusions.most_common(20)),
            "wall_s": time.time() - started}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--clips", type=int, default=300)
    p.add_argument("--size", default="64x64")
    p.add_argument("--fps", type=float, default=8.0)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--crf", type=int, default=23)
    p.add_argument("--seed", type=int, default=123)
    args = p.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    result = run(args.clips, w, h, args.fps, args.seconds, args.seed, args.crf)
    path = write_results(f"analyzer_accuracy_{args.size}_{args.fps:g}fps", result)
    print_table(f"Analyzer accuracy on {args.clips} renderer clips ({args.size}, {args.fps:g} fps, H.264 crf {args.crf})",
                ["factor", "accuracy"], [[k, f"{100 * v:.1f}%"] for k, v in result["accuracy"].items()])
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
