"""How often does prompt rewriting (src/reelforge/prompting.py) put each factor into the words the
built-in model learnt? Text only, no video: for every prompt of a set, the factor counts as said
in the model's words when the text holds a grammar phrase of the right value and none of a wrong
one (colours: the object's colour word; plain backgrounds: the background's colour word).

Run on `reelforge eval`'s paraphrase prompts (words and orders the grammar never produced) with
rewriting off and on, and on its seen-combination prompts (grammar captions), which rewriting must
leave unchanged. The rewriter's dictionary step was built while looking at the paraphrase set, so a
third set, OWN_WORDINGS, words one object's colour, shape, motion and background in words that
neither the grammar nor the paraphrase vocabulary uses (only those four factors are scored there).

    python benchmarks/prompt_rewrite.py [--prompts 400]
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, write_results  # noqa: E402

from reelforge.evaluation.run import prompt_sets  # noqa: E402
from reelforge.models.text_encoder import TextEncoder  # noqa: E402
from reelforge.prompting import PromptRewriter  # noqa: E402
from reelforge.world.captions import GRAMMAR  # noqa: E402
from reelforge.world.factors import ClipFactors, ObjectFactors  # noqa: E402

FACTORS = ("color", "shape", "size", "motion", "speed", "background", "camera")
OWN_FACTORS = ("color", "shape", "motion", "background")
OWN_WORDINGS = [  # (prompt, colour, shape, motion, background)
    ("A crimson globe whirls in front of a navy backdrop", "red", "circle", "spin", "blue"),
    ("An ivory disk enlarges over a lavender backdrop", "white", "circle", "grow", "purple"),
    ("An amber slab diminishes against a mint wall", "orange", "square", "shrink", "green"),
    ("A navy wedge lifts upward with a lemon wall behind it", "blue", "triangle", "up", "yellow"),
    ("A small azure orb hops on a crimson backdrop", "blue", "circle", "bounce", "red"),
    ("A big ruby pyramid stays put against an ivory wall", "red", "triangle", "static", "white"),
    ("A lemon halo whirls against a charcoal wall", "yellow", "ring", "spin", "black"),
    ("A lavender doughnut enlarges against a lemon backdrop", "purple", "ring", "grow", "yellow"),
    ("A charcoal cube plunges downward against a mint backdrop", "black", "square", "down", "green"),
    ("A mint wedge doesn't budge on a crimson backdrop", "green", "triangle", "static", "red"),
    ("A ruby globe scoots leftward against an azure wall", "red", "circle", "left", "blue"),
    ("A huge amber disk rotates on a navy backdrop", "orange", "circle", "spin", "blue"),
    ("A tiny ivory pyramid ascends quickly against a ruby wall", "white", "triangle", "up", "red"),
    ("A lavender slab climbs upward on an amber backdrop", "purple", "square", "up", "orange"),
    ("A crimson annulus shrinks against a lemon wall", "red", "ring", "shrink", "yellow"),
    ("A navy ball diminishes slowly over a mint backdrop", "blue", "circle", "shrink", "green"),
]


def own_wordings() -> list[tuple[ClipFactors, str]]:
    return [(ClipFactors((ObjectFactors(shape, colour, motion=motion),), background), prompt)
            for prompt, colour, shape, motion, background in OWN_WORDINGS]


def _has(text: str, phrase: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(phrase)}(?![\w-])", text) is not None


def _said(text: str, slot: str, value: str) -> bool:
    """The text has a grammar phrase of `value` for `slot`, and none of another value's."""
    table = GRAMMAR[slot]
    found = {v for v, phrases in table.items() for p in phrases if p and _has(text, p)}
    if slot == "size" and not found:
        found = {"medium"}  # the grammar says nothing for medium as often as not
    return found == {value}


def said_in_model_words(text: str, factors: ClipFactors) -> dict[str, bool]:
    text = text.lower()
    obj = factors.objects[0]
    if factors.background in GRAMMAR["scene"]:
        background = _said(text, "scene", factors.background)
    else:
        background = _has(text, factors.background)
    no_motion = text
    for phrase in GRAMMAR["motion"]["orbit"]:  # "moves in a circle" names no shape
        no_motion = no_motion.replace(phrase, "")
    return {"color": _has(text, obj.color), "shape": _said(no_motion, "shape", obj.shape),
            "size": _said(text, "size", obj.size),
            "motion": _said(text, "motion", obj.motion),
            "speed": obj.motion == "static" or _said(text, "speed", obj.speed),
            "background": background,
            "camera": (not any(_has(text, p) for ps in GRAMMAR["camera"].values() for p in ps)
                       if factors.camera == "still" else _said(text, "camera", factors.camera))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=400)
    args = parser.parse_args()
    rewriter = PromptRewriter(TextEncoder())
    sets = {**prompt_sets(args.prompts, seed=0), "own wordings": own_wordings()}
    results, rows = {}, []
    started = time.time()
    for name, rewrite in (("paraphrase", False), ("paraphrase", True), ("seen", True),
                          ("own wordings", False), ("own wordings", True)):
        scored = OWN_FACTORS if name == "own wordings" else FACTORS
        hits = dict.fromkeys(scored, 0)
        unchanged = 0
        for factors, prompt in sets[name]:
            text = rewriter(prompt).revised if rewrite else prompt
            unchanged += text == prompt
            for factor, ok in said_in_model_words(text, factors).items():
                if factor in hits:
                    hits[factor] += ok
        n = len(sets[name])
        key = f"{name}, rewrite {'on' if rewrite else 'off'}"
        results[key] = {"prompts": n, "unchanged": unchanged / n, **{f: hits[f] / n for f in scored}}
        rows.append([key, n, *[f"{100 * hits[f] / n:.0f}%" if f in hits else "-" for f in FACTORS],
                     f"{100 * unchanged / n:.0f}%"])
    seconds = time.time() - started
    calls = 2 * len(sets["paraphrase"]) + len(sets["seen"]) + 2 * len(sets["own wordings"])
    results["ms_per_prompt"] = 1000 * seconds / calls
    path = write_results("prompt_rewrite", results)
    print_table(f"factor said in the model's words ({results['ms_per_prompt']:.0f} ms a prompt)",
                ["prompts", "n", *FACTORS, "unchanged"], rows)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
