"""`reelforge eval`: generate from fixed prompt sets, encode to H.264 as a user's file would be,
and judge each clip with the analyzer."""
from __future__ import annotations

import random
import time

import numpy as np

from ..long import latent_seam_ratio
from ..world.captions import caption, paraphrase
from ..world.factors import ClipFactors
from ..world.splits import sample_held_out_factors, sample_train_factors
from .metrics import FACTORS, adherence_rates, consistency_summary, judge, temporal_consistency

SETS = ("seen", "held_out", "paraphrase")


def prompt_sets(per_set: int, seed: int = 0) -> dict[str, list[tuple[ClipFactors, str]]]:
    """The fixed evaluation prompts: single objects, seen combinations (new seeds), held-out
    combinations, and seen combinations worded with the paraphrase vocabulary."""
    rng = random.Random(seed)
    seen = [sample_train_factors(rng, two_object_prob=0.0) for _ in range(per_set)]
    held = [sample_held_out_factors(rng) for _ in range(per_set)]
    para = [sample_train_factors(rng, two_object_prob=0.0) for _ in range(per_set)]
    return {"seen": [(f, caption(f, rng)) for f in seen],
            "held_out": [(f, caption(f, rng)) for f in held],
            "paraphrase": [(f, paraphrase(f, rng)) for f in para]}


def evaluate(pipe, per_set: int = 24, steps=None, guidance=None, sampler=None, seed: int = 0,
             sets: tuple[str, ...] = SETS, cache_threshold: float = 0.0, rewrite_prompt: bool = True,
             layout_guidance: float | None = None) -> dict:
    prompts = prompt_sets(per_set, seed)
    results = {"settings": {"per_set": per_set, "steps": steps or pipe.config.steps,
                            "guidance": guidance or pipe.config.guidance, "sampler": sampler or pipe.config.sampler,
                            "model": pipe.config.name, "seed": seed, "cache_threshold": cache_threshold,
                            "rewrite_prompt": rewrite_prompt, "smooth_seams": pipe.config.smooth_seams,
                            "layout_guidance": pipe.config.layout_guidance if layout_guidance is None else layout_guidance}}
    started = time.time()
    for name in sets:
        judgements, consistency, seams, clips = [], [], [], []
        for i, (factors, prompt) in enumerate(prompts[name]):
            video = pipe(prompt, seed=seed * 100_000 + i, steps=steps, guidance=guidance, sampler=sampler,
                         cache_threshold=cache_threshold, rewrite_prompt=rewrite_prompt, layout_guidance=layout_guidance)
            analysis, judged = judge(video.frames, video.fps, factors)
            judgements.append(judged)
            consistency.append(temporal_consistency(analysis))
            seams.append(latent_seam_ratio(video.frames, pipe.autoencoder.cfg.time_down))  # at the model's fps
            clips.append({"prompt": prompt, "revised_prompt": video.settings.get("revised_prompt", prompt),
                          "factors": factors.to_dict(), "judged": judged, "consistency": consistency[-1],
                          "seen": {"background": analysis.background,
                                   **({k: getattr(analysis.main, k) for k in ("color", "shape", "motion", "size", "speed")}
                                      if analysis.main else {})}})
        results[name] = {"adherence": adherence_rates(judgements), **consistency_summary(consistency),
                         "seam_ratio": float(np.median(seams)), "clips": clips}
    results["seconds"] = time.time() - started
    return results


def results_table(results: dict):
    from rich.table import Table
    table = Table(title=f"ReelForge eval ({results['settings']['model']}, {results['settings']['per_set']} clips a set)")
    table.add_column("set")
    for f in FACTORS:
        table.add_column(f, justify="right")
    table.add_column("consistency", justify="right")
    table.add_column("seam ratio", justify="right")
    for name in SETS:
        if name not in results:
            continue
        r = results[name]
        table.add_row(name, *[f"{100 * r['adherence'][f]:.0f}%" if f in r["adherence"] else "-" for f in FACTORS],
                      f"{100 * r['temporal_consistency']:.1f}%",
                      f"{r['seam_ratio']:.2f}")
    return table
