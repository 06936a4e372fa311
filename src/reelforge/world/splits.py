"""The fixed held-out combinations: never trained on, evaluated separately.

A clip is held out when any of its objects matches one of these (colour, shape, motion) triples.
Every colour, shape and motion appears in at least one triple, and each triple's parts are seen in
training in other combinations, so the held-out set measures composition, not new words.
"""
from __future__ import annotations

import random
from dataclasses import replace

from .factors import BACKGROUNDS, FORBIDDEN_COLORS, PANNABLE_BACKGROUNDS, ClipFactors, sample_factors

HELD_OUT_TRIPLES: tuple[tuple[str, str, str], ...] = (
    ("red", "star", "bounce"),
    ("blue", "triangle", "orbit"),
    ("green", "ring", "left"),
    ("yellow", "square", "spin"),
    ("purple", "circle", "up"),
    ("orange", "triangle", "grow"),
    ("white", "star", "right"),
    ("black", "square", "shrink"),
    ("red", "ring", "down"),
    ("blue", "circle", "static"),
    ("green", "star", "orbit"),
    ("purple", "square", "bounce"),
)
_HELD_OUT = frozenset(HELD_OUT_TRIPLES)


def is_held_out(factors: ClipFactors) -> bool:
    return any((o.color, o.shape, o.motion) in _HELD_OUT for o in factors.objects)


def sample_train_factors(rng: random.Random, two_object_prob: float = 0.15) -> ClipFactors:
    """A random clip from the training split (rejection-samples the held-out triples away)."""
    while True:
        factors = sample_factors(rng, two_object_prob=two_object_prob)
        if not is_held_out(factors):
            return factors


def sample_held_out_factors(rng: random.Random) -> ClipFactors:
    """A random single-object clip whose object is one of the held-out triples."""
    color, shape, motion = rng.choice(HELD_OUT_TRIPLES)
    background = rng.choice([b for b in BACKGROUNDS if color not in FORBIDDEN_COLORS[b]])
    base = sample_factors(rng)
    obj = replace(base.objects[0], color=color, shape=shape, motion=motion)
    camera = "still"
    if background in PANNABLE_BACKGROUNDS and rng.random() < 0.3:
        camera = rng.choice(("pan_left", "pan_right"))
    return ClipFactors(objects=(obj,), background=background, camera=camera, seed=base.seed)
