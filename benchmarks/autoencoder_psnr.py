"""Reconstruction quality of the video autoencoder on fresh renderer clips (4 s, 64x64, 8 fps),
whether the analyzer still reads the factors from the reconstructions, and how much more the
frames change where one latent frame's 4 frames give way to the next's than elsewhere (the seam
ratio of long videos, at every latent boundary: 1 = no jump).

    python benchmarks/autoencoder_psnr.py --clips 64 [--weights A.safetensors B.safetensors] [--latent-noise 0 0.2 0.4]
        [--prompts random|seen|held_out|paraphrase]

`--prompts held_out` renders the evaluation's own held-out prompts (`reelforge eval`'s set for
`--seed`) instead of random training clips: what a generator perfect in latent space would score
there. The analyzer's shape on the reconstructions is also reported per motion.
"""
from __future__ import annotations

import argparse
import random
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, write_results  # noqa: E402

from reelforge.delivery import tensor_to_frames  # noqa: E402
from reelforge.evaluation.metrics import consistency_summary, temporal_consistency  # noqa: E402
from reelforge.evaluation.pixels import psnr  # noqa: E402
from reelforge.evaluation.run import SETS, prompt_sets  # noqa: E402
from reelforge.long import latent_seam_ratio  # noqa: E402
from reelforge.media.decode import h264_roundtrip  # noqa: E402
from reelforge.pipeline import BUILTIN_DIR  # noqa: E402
from reelforge.training.bank import load_autoencoder  # noqa: E402
from reelforge.training.data import frames_to_tensor, render_batch  # noqa: E402
from reelforge.world.analyzer import analyze  # noqa: E402
from reelforge.world.render import render  # noqa: E402


def latent_boundary_jump(clip: torch.Tensor, time_down: int = 4) -> float:
    """Seam ratio of a (3, 33, H, W) clip at its latent boundaries."""
    return latent_seam_ratio(tensor_to_frames(clip), time_down)


def change_by_position(clips: torch.Tensor, time_down: int = 4) -> list[float]:
    """Mean change (8-bit levels) into each frame of (B, 3, 1 + 4k, H, W) clips, by the frame's place
    among its latent frame's `time_down`: the first entry is the change across a latent boundary."""
    change = clips.float().diff(dim=2).abs().mean(dim=(0, 1, 3, 4)) * 127.5  # (4k,)
    return change.reshape(-1, time_down).mean(0).tolist()


def judge(ae, video, factors, latent_noise: float, generator: torch.Generator) -> dict:
    """PSNR and analyzer agreement of decode(encode(video) + noise): noise in latent standard
    deviations stands in for a diffusion model's imperfect samples."""
    recon = []
    for i in range(0, len(video), 16):
        latents = ae.encode(video[i:i + 16])
        recon.append(ae.decode(latents + latent_noise * torch.randn(latents.shape, generator=generator)))
    recon = torch.cat(recon)
    per_clip = [psnr(recon[i], video[i]) for i in range(len(video))]
    jumps = [latent_boundary_jump(clip, ae.cfg.time_down) for clip in recon]
    agree, consistency, by_motion = Counter(), [], {}
    for i, f in enumerate(factors):
        a = analyze(h264_roundtrip(tensor_to_frames(recon[i])), 8.0)
        consistency.append(temporal_consistency(a))
        o = f.objects[0]
        agree["background"] += a.background == f.background
        agree["color"] += bool(a.main) and a.main.color == o.color
        shape_kept = bool(a.main) and a.main.shape == o.shape
        agree["shape"] += shape_kept
        agree["motion"] += bool(a.main) and a.main.motion == o.motion
        by_motion.setdefault(o.motion, []).append(shape_kept)
    return {"compression": f"{ae.cfg.space_down}x{ae.cfg.space_down} space, {ae.cfg.time_down}x time, "
                           f"{ae.cfg.latent_channels} channels",
            "shape_by_motion": {m: sum(v) / len(v) for m, v in sorted(by_motion.items())},
            "psnr_db": sum(per_clip) / len(per_clip), "psnr_db_min": min(per_clip),
            "latent_boundary_jump": float(np.median(jumps)), **consistency_summary(consistency),
            "change_by_position": change_by_position(recon.clamp(-1, 1), ae.cfg.time_down),
            "analyzer_on_reconstructions": {k: v / len(video) for k, v in agree.items()}}


@torch.no_grad()
def main():
    p = argparse.ArgumentParser()
    p.add_argument("--clips", type=int, default=64)
    p.add_argument("--weights", nargs="+", default=[str(BUILTIN_DIR / "autoencoder.safetensors")],
                   help="one or more autoencoders, measured side by side on the same clips")
    p.add_argument("--latent-noise", type=float, nargs="+", default=[0.0, 0.2, 0.4])
    p.add_argument("--seed", type=int, default=999)
    p.add_argument("--prompts", choices=("random", *SETS), default="random",
                   help="random training clips, or the evaluation's prompts of one set for --seed")
    args = p.parse_args()
    if args.prompts == "random":
        rng = random.Random(args.seed)
        video, _, factors = render_batch(rng, args.clips, 64, 64, 33, 8.0, two_object_prob=0.0, max_start=2.0)
    else:
        factors = [f for f, _ in prompt_sets(args.clips, args.seed)[args.prompts]]
        video = torch.stack([frames_to_tensor(render(f, 64, 64, 8.0, 33)) for f in factors])
    runs, time_downs = {}, []
    for weights in args.weights:
        ae = load_autoencoder(weights)
        time_downs.append(ae.cfg.time_down)
        for sigma in args.latent_noise:
            generator = torch.Generator().manual_seed(args.seed)
            runs[f"{weights} @ noise {sigma:g}"] = judge(ae, video, factors, sigma, generator)
    first = runs[f"{args.weights[0]} @ noise {args.latent_noise[0]:g}"]
    # The renders' own change at the first autoencoder's latent boundaries (1 = none).
    truth_jump = float(np.median([latent_boundary_jump(clip, time_downs[0]) for clip in video]))
    # What a perfect generator would score on these clips: the renders themselves, after H.264.
    truth = consistency_summary([temporal_consistency(analyze(h264_roundtrip(tensor_to_frames(clip)), 8.0))
                                 for clip in video])
    result = {"clips": args.clips, "prompts": args.prompts, "seed": args.seed, **first,
              "latent_boundary_jump_of_the_renders": truth_jump,
              "change_by_position_of_the_renders": change_by_position(video, time_downs[0]),
              "consistency_of_the_renders": truth, "runs": runs}
    name = "autoencoder_psnr" if args.prompts == "random" else f"autoencoder_ceiling_{args.prompts}_seed{args.seed}"
    path = write_results(name, result)
    factors_read = ("background", "color", "shape", "motion")
    print_table("Autoencoder reconstruction (analyzer agreement after H.264)",
                ["autoencoder @ latent noise", "PSNR mean / worst", "boundary jump"] + list(factors_read)
                + ["consistency", "clips >= 95%"],
                [[name, f"{r['psnr_db']:.2f} / {r['psnr_db_min']:.2f} dB", f"{r['latent_boundary_jump']:.2f}"]
                 + [f"{100 * r['analyzer_on_reconstructions'][k]:.0f}%" for k in factors_read]
                 + [f"{100 * r['temporal_consistency']:.1f}%", f"{100 * r['consistent_clips']:.0f}%"]
                 for name, r in runs.items()])
    motions = sorted({m for r in runs.values() for m in r["shape_by_motion"]})
    print_table("The analyzer's shape on the reconstructions, per motion",
                ["autoencoder @ latent noise"] + motions,
                [[name] + [f"{100 * r['shape_by_motion'][m]:.0f}%" if m in r["shape_by_motion"] else "-"
                           for m in motions] for name, r in runs.items()])
    for name, r in runs.items():
        print(f"change into frames 1..4 of a latent frame (1 = across the boundary), {name}: "
              + " / ".join(f"{c:.2f}" for c in r["change_by_position"]))
    print("the renders: " + " / ".join(f"{c:.2f}" for c in result["change_by_position_of_the_renders"]))
    print(f"the renders themselves: boundary jump {truth_jump:.2f}, consistency "
          f"{100 * truth['temporal_consistency']:.1f}%, clips >= 95%: {100 * truth['consistent_clips']:.0f}%")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
