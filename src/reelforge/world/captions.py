"""Captions for clips: a grammar with synonyms and word orders, and a second vocabulary of
paraphrases that the training grammar never produces (used only to evaluate generalisation).
"""
from __future__ import annotations

import random

from .factors import ClipFactors, ObjectFactors

GRAMMAR = {
    "shape": {
        "circle": ["circle", "ball", "disc", "sphere"],
        "square": ["square", "box", "block", "cube"],
        "triangle": ["triangle", "triangle shape"],
        "star": ["star", "five-pointed star"],
        "ring": ["ring", "hoop"],
    },
    "size": {"small": ["small", "tiny", "little"], "medium": ["", "medium", "medium-sized"],
             "large": ["large", "big", "huge"]},
    "motion": {
        "left": ["moves left", "slides left", "drifts to the left", "travels leftwards", "rolls left"],
        "right": ["moves right", "slides right", "drifts to the right", "travels rightwards", "rolls right"],
        "up": ["moves up", "rises", "floats upward", "drifts up"],
        "down": ["moves down", "sinks", "slides down", "drifts downward"],
        "static": ["stays still", "sits still", "rests in place", "is motionless"],
        "bounce": ["bounces", "bounces on the ground", "falls and bounces"],
        "grow": ["grows", "gets bigger", "grows larger"],
        "shrink": ["shrinks", "gets smaller", "shrinks down"],
        "spin": ["spins", "rotates", "spins in place"],
        "orbit": ["orbits the center", "circles around the middle", "moves in a circle"],
    },
    "speed": {"slow": ["slowly"], "fast": ["quickly", "fast"]},
    "plain": ["on a {c} background", "against {c}", "over a {c} backdrop", "in front of a {c} background"],
    "scene": {
        "sky": ["under a blue sky", "on a sky background", "in front of the sky and grass"],
        "night": ["at night", "against a starry night sky", "on a night background"],
        "sunset": ["at sunset", "against a sunset", "on a sunset background"],
        "checkerboard": ["on a checkerboard", "over a checkered floor", "against a checkerboard background"],
    },
    "camera": {"pan_left": ["as the camera pans left", "while the camera pans to the left"],
               "pan_right": ["as the camera pans right", "while the camera pans to the right"]},
    "color": {},
}

# Words and orders the grammar above never uses.
PARAPHRASE = {
    "shape": {"circle": ["orb", "round dot"], "square": ["tile", "square shape"],
              "triangle": ["three-sided shape", "triangular shape"], "star": ["starburst", "star shape"],
              "ring": ["donut", "loop"]},
    "size": {"small": ["petite", "miniature"], "medium": ["mid-sized", ""], "large": ["giant", "enormous"]},
    "motion": {
        "left": ["heads toward the left edge", "glides leftward"],
        "right": ["heads toward the right edge", "glides rightward"],
        "up": ["ascends", "climbs upward"],
        "down": ["descends", "drops downward"],
        "static": ["does not move", "remains stationary"],
        "bounce": ["keeps bouncing", "bounces off the floor"],
        "grow": ["expands", "swells up"],
        "shrink": ["contracts", "dwindles"],
        "spin": ["twirls", "turns around its center"],
        "orbit": ["revolves around the middle", "goes round in a loop"],
    },
    "speed": {"slow": ["gently", "at a leisurely pace"], "fast": ["rapidly", "speedily"]},
    "plain": ["with a plain {c} wall behind it", "set against solid {c}"],
    "scene": {
        "sky": ["outdoors on a sunny day with grass"], "night": ["under the stars"],
        "sunset": ["at dusk with an orange and purple sky"], "checkerboard": ["on a chessboard pattern"],
    },
    "camera": {"pan_left": ["with the camera sweeping left"], "pan_right": ["with the camera sweeping right"]},
    "color": {"red": ["scarlet"], "orange": ["tangerine"], "yellow": ["golden"], "green": ["emerald"],
              "blue": ["cobalt blue"], "purple": ["violet"], "white": ["snow-white"], "black": ["jet-black"]},
}


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _pick(rng: random.Random, options: list[str]) -> str:
    return rng.choice(options)


def _object_phrase(obj: ObjectFactors, vocab: dict, rng: random.Random) -> str:
    color = _pick(rng, vocab["color"].get(obj.color, [obj.color]))
    words = [_pick(rng, vocab["size"][obj.size]), color, _pick(rng, vocab["shape"][obj.shape])]
    noun = " ".join(w for w in words if w)
    motion = _pick(rng, vocab["motion"][obj.motion])
    speed = _pick(rng, vocab["speed"][obj.speed])
    # Speed only means something for things that move; word order varies.
    if obj.motion == "static":
        verb = motion
    elif rng.random() < 0.5:
        verb = f"{motion} {speed}"
    else:
        verb = f"{speed} {motion}"
    return f"{_article(noun)} {noun} {verb}"


def _background_phrase(background: str, vocab: dict, rng: random.Random) -> str:
    if background in vocab["scene"]:
        return _pick(rng, vocab["scene"][background])
    color = _pick(rng, vocab["color"].get(background, [background]))
    return _pick(rng, vocab["plain"]).format(c=color)


def _caption(factors: ClipFactors, vocab: dict, rng: random.Random) -> str:
    objects = [_object_phrase(o, vocab, rng) for o in factors.objects]
    subject = " while ".join(objects)
    background = _background_phrase(factors.background, vocab, rng)
    camera = "" if factors.camera == "still" else " " + _pick(rng, vocab["camera"][factors.camera])
    if rng.random() < 0.3:
        return f"{background[0].upper()}{background[1:]}, {subject}{camera}"
    return f"{subject[0].upper()}{subject[1:]} {background}{camera}"


def caption(factors: ClipFactors, rng: random.Random) -> str:
    """A caption from the training grammar."""
    return _caption(factors, GRAMMAR, rng)


def paraphrase(factors: ClipFactors, rng: random.Random) -> str:
    """A caption in words and orders the training grammar never produces."""
    return _caption(factors, PARAPHRASE, rng)
