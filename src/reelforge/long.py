"""Long videos and storyboards: one model window after another, each continuing the last.

A window is the length the model was trained on. Every next window is generated with the end of
the video so far held fixed in latent space (`Pipeline.extend`, temporal inpainting: the same
mechanism that serves the API's extensions), so the object, its colour, position and motion carry
across the join; its prompt is whatever the storyboard says at the window's start. All windows
run at the model's size and frame rate; only the finished clip is re-timed and resized, a few
frames at a time as the caller asks for them (`VideoOutput.chunks`), so a caller that encodes as
it goes holds the small model-rate clip and one chunk of output, and time grows with the length.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .delivery import Delivery
from .pipeline import InputError, Pipeline, VideoOutput

MAX_LONG_SECONDS = 120.0
WINDOW_SECONDS = 4.0  # the training clips' length: what the model draws best


@dataclass(frozen=True)
class Shot:
    start: float  # seconds
    prompt: str


def parse_storyboard(text: str) -> list[Shot]:
    """"0s: a red ball rolls right; 5s: the red ball bounces" -> shots in time order.

    Entries are separated by ';' or new lines; each is 'TIME: prompt' with TIME in seconds
    (a trailing 's' is optional). The first must start at 0."""
    shots = []
    for entry in filter(None, (e.strip() for e in re.split(r"[;\n]", text))):
        match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*s?\s*:\s*(.+)", entry, flags=re.S)
        if not match:
            raise InputError(f"storyboard entry {entry[:60]!r} is not 'TIME: prompt', e.g. '0s: a red ball rolls right'")
        shots.append(Shot(float(match.group(1)), match.group(2).strip()))
    if not shots:
        raise InputError("storyboard is empty; write e.g. '0s: a red ball rolls right; 5s: the red ball bounces'")
    if shots[0].start != 0:
        raise InputError(f"storyboard must start at 0s, not {shots[0].start:g}s")
    starts = [s.start for s in shots]
    if any(b <= a for a, b in zip(starts, starts[1:])):
        raise InputError(f"storyboard times must increase: {', '.join(f'{s:g}s' for s in starts)}")
    return shots


def prompt_at(shots: list[Shot], time: float) -> str:
    return [s for s in shots if s.start <= time + 1e-6][-1].prompt


def window_plan(seconds: float, window: float, context: float) -> list[tuple[float, float]]:
    """(start, new seconds) of each window: the first draws `window`, each next one `window -
    context` more, the last only what is left."""
    plan, made = [(0.0, min(window, seconds))], min(window, seconds)
    while made < seconds - 1e-6:
        step = min(window - context, seconds - made)
        plan.append((made, step))
        made += step
    return plan


def generate_long(pipe: Pipeline, shots: list[Shot], seconds: float, fps: float | None = None,
                  size: tuple[int, int] | None = None, seed: int | None = None, steps: int | None = None,
                  guidance: float | None = None, sampler: str | None = None, negative_prompt: str | None = None,
                  cache_threshold: float = 0.0, rewrite_prompt: bool = True,
                  layout_guidance: float | None = None, window: float = WINDOW_SECONDS,
                  on_step: Callable[[int, float, torch.Tensor], bool | None] | None = None,
                  on_window: Callable[[int, int], None] | None = None) -> VideoOutput:
    """A clip of any length up to MAX_LONG_SECONDS following `shots`, at `fps` and `size`."""
    if not (isinstance(seconds, (int, float)) and math.isfinite(seconds)) or not 0 < seconds <= MAX_LONG_SECONDS:
        raise InputError(f"seconds must be > 0 and <= {MAX_LONG_SECONDS:g}, got {seconds}")
    fps = pipe.config.fps if fps is None else fps
    pipe.check_inputs(shots[0].prompt, min(seconds, window), fps, size, guidance or pipe.config.guidance,
                      steps or pipe.config.steps, sampler or pipe.config.sampler)
    for shot in shots[1:]:
        pipe.check_inputs(shot.prompt, 1.0, fps, size, guidance or pipe.config.guidance,
                          steps or pipe.config.steps, sampler or pipe.config.sampler)
    native_fps, bucket = pipe.config.fps, pipe.bucket_for(size)
    plan = window_plan(seconds, window, context=1.0)
    common = dict(steps=steps, guidance=guidance, sampler=sampler, negative_prompt=negative_prompt, on_step=on_step,
                  cache_threshold=cache_threshold, rewrite_prompt=rewrite_prompt, layout_guidance=layout_guidance)
    video = pipe(prompt_at(shots, 0.0), seconds=plan[0][1], fps=native_fps, size=bucket, seed=seed, **common)
    base_seed = video.seed
    boundaries = []
    if on_window:
        on_window(1, len(plan))
    for k, (start, new) in enumerate(plan[1:], start=1):
        boundaries.append(len(video.frames))
        prompt = prompt_at(shots, start)
        # The first window's planned path goes on while its prompt does; a storyboard's next shot plans
        # nothing (its path would start elsewhere than the object is).
        video = pipe.extend(video.frames, native_fps, prompt, seconds=new, seed=base_seed + k,
                            layout_seed=base_seed if prompt == shots[0].prompt else None, **common)
        if on_window:
            on_window(k + 1, len(plan))
    delivery = Delivery(video.frames, native_fps, fps, seconds, size or bucket, pipe.enhancers)
    scale = fps / native_fps
    settings = {**video.settings, "prompt": shots[0].prompt, "seed": base_seed, "seconds": seconds, "fps": fps,
                "size": f"{delivery.size[0]}x{delivery.size[1]}", "windows": len(plan),
                "storyboard": [[s.start, s.prompt] for s in shots] if len(shots) > 1 else None,
                "window_boundaries": [round(b * scale) for b in boundaries]}
    settings.pop("extended_from_frames", None)
    return VideoOutput(None, fps, base_seed, settings, delivery=delivery)  # delivered when asked for


def seam_ratio(frames: np.ndarray, boundaries: list[int]) -> float:
    """Mean frame-to-frame change at window joins over the clip's median change (1 = invisible)."""
    diffs = np.abs(np.diff(frames.astype(np.int16), axis=0)).mean(axis=(1, 2, 3))  # (T-1,)
    joins = [diffs[b - 1] for b in boundaries if 0 < b < len(frames)]
    typical = float(np.median(diffs)) or 1e-6
    return float(np.mean(joins)) / typical if joins else 1.0


def latent_seam_ratio(frames: np.ndarray, time_down: int = 4) -> float:
    """Seam ratio of (T, H, W, 3) frames at the first frame of every latent frame from the third on
    (frame 0 is a latent frame of its own): the jump a causal autoencoder's decoding makes every
    `time_down` frames, measured as a window join is."""
    return seam_ratio(frames, list(range(1 + time_down, len(frames), time_down)))
