"""The vocabulary of the procedural world (see shared/WORLD.md) and the factors of one clip.

Everything that renders, captions, analyzes or evaluates clips reads its lists from here, so the
world is defined once.
"""
from __future__ import annotations

import random
from dataclasses import asdict, dataclass

# RGB in 0..255. Object colours are hues a person would name; they are far apart so that both a
# person and the analyzer can tell them apart after lossy encoding.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 35),
    "orange": (250, 140, 20),
    "yellow": (245, 225, 40),
    "green": (40, 175, 60),
    "blue": (35, 85, 225),
    "purple": (140, 50, 200),
    "white": (245, 245, 245),
    "black": (15, 15, 15),
}
PLAIN_BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    **{name: rgb for name, rgb in COLORS.items()},
    "gray": (128, 128, 128),
}
SCENE_BACKGROUNDS = ("sky", "night", "sunset", "checkerboard")
BACKGROUNDS = tuple(PLAIN_BACKGROUNDS) + SCENE_BACKGROUNDS

# Object colours a background forbids: its own colour, and for scenes the colours they are made of.
FORBIDDEN_COLORS: dict[str, frozenset[str]] = {
    **{name: frozenset({name}) for name in PLAIN_BACKGROUNDS},
    "sky": frozenset({"blue", "green"}),
    "night": frozenset({"black", "blue", "white"}),  # white would pass for a star
    "sunset": frozenset({"orange", "purple", "red"}),
    "checkerboard": frozenset({"white"}),
}

SHAPES = ("circle", "square", "triangle", "star", "ring")
SIZES = ("small", "medium", "large")
MOTIONS = ("left", "right", "up", "down", "static", "bounce", "grow", "shrink", "spin", "orbit")
SPEEDS = ("slow", "fast")
CAMERAS = ("still", "pan_left", "pan_right")
# A spinning circle or ring looks exactly like a still one, so nobody (person or analyzer) could
# tell; those combinations are not part of the world.
ROTATION_INVARIANT_SHAPES = frozenset({"circle", "ring"})
# Camera pans are only visible on textured scenes.
PANNABLE_BACKGROUNDS = frozenset({"checkerboard", "night"})


@dataclass(frozen=True)
class ObjectFactors:
    shape: str
    color: str
    size: str = "medium"
    motion: str = "static"
    speed: str = "slow"


@dataclass(frozen=True)
class ClipFactors:
    objects: tuple[ObjectFactors, ...]
    background: str = "black"
    camera: str = "still"
    # Free layout parameters (start positions, phases); not part of the caption.
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ClipFactors":
        return cls(objects=tuple(ObjectFactors(**o) for o in d["objects"]),
                   background=d["background"], camera=d["camera"], seed=d.get("seed", 0))


class WorldError(ValueError):
    """A factor value outside the world's vocabulary."""


def validate(factors: ClipFactors) -> None:
    """Raise WorldError naming the first factor that the world does not allow."""
    if factors.background not in BACKGROUNDS:
        raise WorldError(f"unknown background {factors.background!r}; allowed: {', '.join(BACKGROUNDS)}")
    if factors.camera not in CAMERAS:
        raise WorldError(f"unknown camera {factors.camera!r}; allowed: {', '.join(CAMERAS)}")
    if not 1 <= len(factors.objects) <= 2:
        raise WorldError(f"a clip has one or two objects, got {len(factors.objects)}")
    if len({o.color for o in factors.objects}) != len(factors.objects):
        raise WorldError("two objects in one clip must have different colours")
    for o in factors.objects:
        for name, value, allowed in (("shape", o.shape, SHAPES), ("color", o.color, tuple(COLORS)),
                                     ("size", o.size, SIZES), ("motion", o.motion, MOTIONS),
                                     ("speed", o.speed, SPEEDS)):
            if value not in allowed:
                raise WorldError(f"unknown {name} {value!r}; allowed: {', '.join(allowed)}")
        if o.color in FORBIDDEN_COLORS[factors.background]:
            raise WorldError(f"a {o.color} object is invisible on a {factors.background} background")
        if o.motion == "spin" and o.shape in ROTATION_INVARIANT_SHAPES:
            raise WorldError(f"a {o.shape} cannot visibly spin")


def sample_object(rng: random.Random, background: str, exclude_colors=frozenset()) -> ObjectFactors:
    colors = [c for c in COLORS if c not in FORBIDDEN_COLORS[background] and c not in exclude_colors]
    shape = rng.choice(SHAPES)
    motions = [m for m in MOTIONS if not (m == "spin" and shape in ROTATION_INVARIANT_SHAPES)]
    return ObjectFactors(shape=shape, color=rng.choice(colors), size=rng.choice(SIZES),
                         motion=rng.choice(motions), speed=rng.choice(SPEEDS))


def sample_factors(rng: random.Random, two_object_prob: float = 0.0, pan_prob: float = 0.3) -> ClipFactors:
    """A uniformly random valid clip; held-out combinations are filtered by the caller (splits.py)."""
    background = rng.choice(BACKGROUNDS)
    first = sample_object(rng, background)
    objects = (first,)
    if rng.random() < two_object_prob:
        objects = (first, sample_object(rng, background, exclude_colors={first.color}))
    camera = "still"
    if background in PANNABLE_BACKGROUNDS and rng.random() < pan_prob:
        camera = rng.choice(("pan_left", "pan_right"))
    return ClipFactors(objects=objects, background=background, camera=camera,
                       seed=rng.randrange(2**31))
