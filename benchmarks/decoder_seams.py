"""Decoders side by side on the same sampled latents: how much generated clips jump where one
latent frame's 4 frames give way to the next's, and what the analyzer reads in them.

Each held-out prompt is sampled once by the built-in model (`Pipeline.sample_latents`, the user's
own path), and the same latents are decoded by every decoder, so the only difference between
the rows is the decoder. Seam ratio: mean change at latent-frame boundaries over the clip's median
frame-to-frame change (1 = no jump; the renders themselves score 1.00).

    python benchmarks/decoder_seams.py --clips 48 --decoders src/reelforge/weights/builtin/autoencoder.safetensors \
        runs/autoencoder_lookahead/model.safetensors
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, write_results  # noqa: E402

from reelforge.delivery import tensor_to_frames  # noqa: E402
from reelforge.evaluation.metrics import adherence_rates, consistency_summary, judge, temporal_consistency  # noqa: E402
from reelforge.evaluation.run import prompt_sets  # noqa: E402
from reelforge.long import latent_seam_ratio  # noqa: E402
from reelforge.models.autoencoder import AutoencoderConfig, VideoAutoencoder  # noqa: E402
from reelforge.models.precision import channels_last, fast_autocast  # noqa: E402
from reelforge.pipeline import BUILTIN_DIR, Pipeline, load_module  # noqa: E402


@torch.no_grad()
def main():
    p = argparse.ArgumentParser()
    p.add_argument("--clips", type=int, default=48)
    p.add_argument("--seed", type=int, default=0, help="the evaluation's prompt and seed set")
    p.add_argument("--decoders", nargs="+", default=[str(BUILTIN_DIR / "autoencoder.safetensors")])
    p.add_argument("--turbo", action="store_true", help="sample with the distilled student")
    args = p.parse_args()
    torch.set_num_threads(2)
    pipe = Pipeline.from_pretrained()
    if args.turbo:
        pipe = pipe.turbo()
    decoders = {path: channels_last(load_module(VideoAutoencoder, AutoencoderConfig, Path(path)))
                for path in args.decoders}
    seams, consistency, judgements = defaultdict(list), defaultdict(list), defaultdict(list)
    for i, (factors, prompt) in enumerate(prompt_sets(args.clips, args.seed)["held_out"]):
        _, latents, _ = pipe.sample_latents(prompt, seed=args.seed * 100_000 + i)  # as `reelforge eval` seeds it
        for path, autoencoder in decoders.items():
            with fast_autocast():
                frames = tensor_to_frames(autoencoder.decode(latents)[0].float())
            seams[path].append(latent_seam_ratio(frames, autoencoder.cfg.time_down))
            analysis, judged = judge(frames, pipe.config.fps, factors)
            consistency[path].append(temporal_consistency(analysis))
            judgements[path].append(judged)
    results, rows = {}, []
    for path in decoders:
        adherence = adherence_rates(judgements[path])
        results[path] = {"seam_ratio_median": float(np.median(seams[path])), "seam_ratio_mean": float(np.mean(seams[path])),
                         **consistency_summary(consistency[path]), "adherence": adherence}
        r = results[path]
        rows.append([path, f"{r['seam_ratio_median']:.2f}", f"{r['seam_ratio_mean']:.2f}",
                     *(f"{100 * adherence.get(f, 0):.0f}%" for f in ("color", "shape", "motion", "background")),
                     f"{100 * r['temporal_consistency']:.1f}%"])
    out = write_results("decoder_seams" + ("_turbo" if args.turbo else ""),
                        {"clips": args.clips, "seed": args.seed, "turbo": args.turbo, "decoders": results})
    print_table(f"The same {args.clips} held-out latents (seed {args.seed}{', turbo' if args.turbo else ''}) "
                "through each decoder", ["decoder", "seam ratio (median)", "(mean)", "colour", "shape", "motion",
                                         "background", "consistency"], rows)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
