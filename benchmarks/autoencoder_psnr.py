"""Reconstruction quality of the video autoencoder on fresh renderer clips (4 s, 64x64, 8 fps),
and whether the analyzer still reads the factors from the reconstructions.

    python benchmarks/autoencoder_psnr.py --clips 64 [--weights src/reelforge/weights/builtin/autoencoder.safetensors]
"""
from __future__ import annotations

import argparse
import random
import sys
from collections import Counter
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, write_results  # noqa: E402

from reelforge.evaluation.pixels import psnr  # noqa: E402
from reelforge.media.decode import h264_roundtrip  # noqa: E402
from reelforge.pipeline import BUILTIN_DIR  # noqa: E402
from reelforge.training.bank import load_autoencoder  # noqa: E402
from reelforge.training.data import render_batch, tensor_to_frames  # noqa: E402
from reelforge.world.analyzer import analyze  # noqa: E402


@torch.no_grad()
def main():
    p = argparse.ArgumentParser()
    p.add_argument("--clips", type=int, default=64)
    p.add_argument("--weights", default=str(BUILTIN_DIR / "autoencoder.safetensors"))
    p.add_argument("--seed", type=int, default=999)
    args = p.parse_args()
    ae = load_autoencoder(args.weights)
    rng = random.Random(args.seed)
    video, _, factors = render_batch(rng, args.clips, 64, 64, 33, 8.0, two_object_prob=0.0, max_start=2.0)
    recon = torch.cat([ae.decode(ae.encode(video[i:i + 16])) for i in range(0, args.clips, 16)])
    per_clip = [psnr(recon[i], video[i]) for i in range(args.clips)]
    agree = Counter()
    for i, f in enumerate(factors):
        a = analyze(h264_roundtrip(tensor_to_frames(recon[i])), 8.0)
        o = f.objects[0]
        agree["background"] += a.background == f.background
        agree["color"] += bool(a.main) and a.main.color == o.color
        agree["shape"] += bool(a.main) and a.main.shape == o.shape
        agree["motion"] += bool(a.main) and a.main.motion == o.motion
    result = {"clips": args.clips, "psnr_db": sum(per_clip) / len(per_clip), "psnr_db_min": min(per_clip),
              "compression": "4x4 space, 4x time, 8 channels: 24x fewer numbers than RGB",
              "analyzer_on_reconstructions": {k: v / args.clips for k, v in agree.items()}}
    path = write_results("autoencoder_psnr", result)
    print_table("Autoencoder reconstruction", ["metric", "value"],
                [["PSNR (mean)", f"{result['psnr_db']:.2f} dB"], ["PSNR (worst clip)", f"{result['psnr_db_min']:.2f} dB"]]
                + [[f"analyzer {k} on recon", f"{100 * v:.1f}%"] for k, v in result["analyzer_on_reconstructions"].items()])
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
