"""The delivery networks against what they replace, on the renderer's exact ground truth.

- Upscaler (4x): learned vs bicubic, PSNR/SSIM, on clean renders and on autoencoder round trips
  (what generation feeds it); and end to end at 1080x1080 from a 64x64 clip (learned 4x then a
  resize, vs one bicubic resize).
- Interpolator (8 -> 48 fps in-betweens): learned vs cross-fade vs repeating the nearest frame,
  over whole frames and over the moving pixels (the only place they differ).
- Cost per delivered frame at the 112x64 bucket.

    python benchmarks/enhance.py [--clips 24] [--model src/reelforge/weights/builtin]
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

from reelforge.delivery import Enhancers, deliver_frames  # noqa: E402
from reelforge.evaluation.pixels import psnr, ssim  # noqa: E402
from reelforge.models.interpolator import FrameInterpolator, InterpolatorConfig  # noqa: E402
from reelforge.pipeline import BUILTIN_DIR, Pipeline, load_module  # noqa: E402
from reelforge.training.data import draw_clip, frames_to_tensor  # noqa: E402
from reelforge.training.enhance import evaluate_interpolator, evaluate_upscaler  # noqa: E402
from reelforge.world.render import render  # noqa: E402


def at_1080(enhancers: Enhancers, clips: int, seed: int) -> dict:
    """64x64 8 fps clips delivered at 1080x1080: learned 4x + resize vs bicubic, against a 1080 render."""
    rng = random.Random(seed)
    scores = {"learned": [], "bicubic": []}
    for _ in range(clips):
        factors, start, _ = draw_clip(rng, 0.0, 3.0)
        low = render(factors, 64, 64, 8.0, 3, start_time=start)
        truth = frames_to_tensor(render(factors, 1080, 1080, 8.0, 3, start_time=start)).transpose(0, 1)
        for name, e in (("learned", enhancers), ("bicubic", Enhancers())):
            out = deliver_frames(low, 8, 8, 3 / 8, (1080, 1080), Enhancers(upscaler=e.upscaler))
            out = frames_to_tensor(out).transpose(0, 1)
            scores[name].append((psnr(out, truth), ssim(out, truth)))
    return {m: {"psnr_db": float(np.mean([p for p, _ in v])), "ssim": float(np.mean([s for _, s in v]))}
            for m, v in scores.items()}


def cost(enhancers: Enhancers) -> dict:
    """Seconds per delivered 1920x1080 24 fps frame from 112x64 8 fps frames, with and without."""
    frames = np.random.default_rng(0).integers(0, 255, (17, 64, 112, 3), dtype=np.uint8)
    out = {}
    for name, e in (("learned", enhancers), ("plain", Enhancers())):
        start = time.perf_counter()
        delivered = deliver_frames(frames, 8, 24, 2.0, (1920, 1080), e)
        out[name] = (time.perf_counter() - start) / len(delivered)
    return out


@torch.no_grad()
def main():
    p = argparse.ArgumentParser()
    p.add_argument("--clips", type=int, default=24)
    p.add_argument("--model", default=str(BUILTIN_DIR))
    p.add_argument("--seed", type=int, default=12345)
    p.add_argument("--interpolator", default=None,
                   help="interpolator weights to judge when the model directory ships none (e.g. a run's checkpoint)")
    args = p.parse_args()
    pipe = Pipeline.from_pretrained(args.model)
    enhancers, ae = pipe.enhancers, pipe.autoencoder
    if enhancers.upscaler is None:
        sys.exit(f"{args.model} has no upscaler weights")
    interpolator = enhancers.interpolator
    if interpolator is None and args.interpolator:
        interpolator = load_module(FrameInterpolator, InterpolatorConfig, Path(args.interpolator))
    results = {"upscaler": evaluate_upscaler(enhancers.upscaler, ae, args.clips, args.seed),
               "upscaler_1080": at_1080(enhancers, max(4, args.clips // 4), args.seed),
               "interpolator": evaluate_interpolator(interpolator or FrameInterpolator().eval(), ae, args.clips * 2,
                                                     args.seed),
               "interpolator_weights": args.interpolator if enhancers.interpolator is None else "shipped",
               "seconds_per_1080p_frame": cost(enhancers), "clips": args.clips}
    rows = []
    for inp in ("clean", "decoded"):
        up = results["upscaler"][inp]
        rows.append([f"upscale 4x ({inp} input)", *(f"{up[m]['psnr_db']:.2f} / {up[m]['ssim']:.3f}" for m in ("learned", "bicubic")),
                     f"{up['learned']['psnr_db'] - up['bicubic']['psnr_db']:+.2f} dB"])
    e2e = results["upscaler_1080"]
    rows.append(["64x64 -> 1080x1080", *(f"{e2e[m]['psnr_db']:.2f} / {e2e[m]['ssim']:.3f}" for m in ("learned", "bicubic")),
                 f"{e2e['learned']['psnr_db'] - e2e['bicubic']['psnr_db']:+.2f} dB"])
    print_table("Upscaler vs bicubic (PSNR dB / SSIM against the renderer)", ["case", "learned", "bicubic", "gain"], rows)
    rows = []
    for inp in ("clean", "decoded"):
        r = results["interpolator"][inp]
        rows.append([f"in-betweens ({inp} input)", *(f"{r[m]['moving_psnr_db']:.2f} / {r[m]['psnr_db']:.2f}"
                                                     for m in ("learned", "blend", "repeat"))])
    print_table(f"Interpolator ({results['interpolator_weights'] or 'untrained = cross-fade'}): PSNR dB on moving "
                "pixels / whole frames", ["case", "learned", "cross-fade", "repeat"], rows)
    c = results["seconds_per_1080p_frame"]
    print(f"delivery cost per 1080p frame: learned {c['learned'] * 1000:.1f} ms, plain {c['plain'] * 1000:.1f} ms")
    print(f"wrote {write_results('enhance', results)}")


if __name__ == "__main__":
    main()
