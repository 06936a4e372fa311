"""Compare what a prompt asked for with what the analyzer saw."""
from __future__ import annotations

import numpy as np

from ..media.decode import h264_roundtrip
from ..world.analyzer import ClipAnalysis, analyze
from ..world.factors import ClipFactors

FACTORS = ("color", "shape", "motion", "background", "size", "speed", "camera")


def adherence(factors: ClipFactors, analysis: ClipAnalysis) -> dict[str, bool]:
    """Per factor: did the clip show what was asked? (single-object prompts; the main object)."""
    want, got = factors.objects[0], analysis.main
    result = {"background": analysis.background == factors.background, "camera": analysis.camera == factors.camera}
    for name in ("color", "shape", "motion", "size", "speed"):
        result[name] = got is not None and getattr(got, name) == getattr(want, name)
    if want.motion in ("static", "spin"):
        del result["speed"]  # no speed to see
    if want.motion in ("grow", "shrink"):
        del result["size"]  # the size changes by design
    return result


def judge(frames: np.ndarray, fps: float, factors: ClipFactors) -> tuple[ClipAnalysis, dict[str, bool]]:
    """What the analyzer reads in frames (T, H, W, 3) once they are an H.264 file, as a user's would
    be, and per factor whether that is what `factors` asked for."""
    analysis = analyze(h264_roundtrip(frames, fps), fps)
    return analysis, adherence(factors, analysis)


def temporal_consistency(analysis: ClipAnalysis) -> float:
    """Fraction of frames in which the main object shows the clip's own colour and shape.

    Frames where the shape cannot be read (object cut by the edge, too small) are skipped; a
    frame where the object vanishes counts as inconsistent.
    """
    obj = analysis.main
    if obj is None:
        return 0.0
    judged = consistent = 0
    for color, shape in zip(obj.frame_colors, obj.frame_shapes):
        if color is not None and shape is None:
            continue
        judged += 1
        consistent += color == obj.color and shape == obj.shape
    return consistent / judged if judged else 0.0


def adherence_rates(judgements: list[dict[str, bool]]) -> dict[str, float]:
    """Per factor, the share of clips that showed it, over the clips where it was judged."""
    return {f: sum(j[f] for j in judgements if f in j) / n
            for f in FACTORS if (n := sum(f in j for j in judgements))}


def consistency_summary(per_clip: list[float]) -> dict[str, float]:
    """Temporal consistency over a set: its mean, and the share of clips at >= 95%."""
    return {"temporal_consistency": sum(per_clip) / len(per_clip),
            "consistent_clips": sum(c >= 0.95 for c in per_clip) / len(per_clip)}
