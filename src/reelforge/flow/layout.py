"""Layout guidance: the prompt's object is steered along a planned path by biasing cross-attention.

A prompt says what moves and how; the world's motion laws (world/render.py) say where such an
object is in each frame. The plan is drawn from them, as LLM-grounded video diffusion (Lian et al.
2023) plans boxes with a language model, and it reaches the transformer as a bias on its
cross-attention logits (Peekaboo, Jain et al. 2024; TrailBlazer, Ma et al. 2023): tokens inside the
planned path attend more to the words that name the object and less to the scene's, tokens outside
it less to the object's words. Nothing is drawn into the latents; the transformer still paints
the object, its shape and its colour. Only at high noise, where the layout is decided.
"""
from __future__ import annotations

import re

import torch
import torch.nn.functional as F

from ..training.masks import latent_object_mask
from ..world.captions import GRAMMAR
from ..world.factors import COLORS, ClipFactors, ObjectFactors

PLAN_MARGIN_CELLS = 0.5  # latent cells around the object's reach that count as its path
SIZE_WORDS = frozenset(w for phrases in GRAMMAR["size"].values() for p in phrases for w in p.split())


def _phrase_spans(prompt: str, phrases) -> list[tuple[int, int]]:
    """Character spans of whole-word occurrences of any phrase, longest phrases first, no overlaps."""
    spans: list[tuple[int, int]] = []
    for phrase in sorted({p for p in phrases if p}, key=len, reverse=True):
        for m in re.finditer(rf"(?<![a-z-]){re.escape(phrase)}(?![a-z-])", prompt):
            if all(m.end() <= a or m.start() >= b for a, b in spans):
                spans.append((m.start(), m.end()))
    return sorted(spans)


def object_and_scene_spans(prompt: str) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Character spans of the words naming the one object (its colour, size and shape words) and of
    the phrase naming the background, in a prompt in the grammar's words (a rewritten prompt). A
    shape the grammar does not name is the word right after the first colour ("a small green tile")."""
    text = prompt.lower()
    backgrounds = [t.format(c=c) for t in GRAMMAR["plain"] for c in (*COLORS, "gray")]
    scenes = _phrase_spans(text, backgrounds + [p for phrases in GRAMMAR["scene"].values() for p in phrases])
    # A motion's words are not a shape's: "moves in a circle" names no second object.
    motions = _phrase_spans(text, [p for phrases in GRAMMAR["motion"].values() for p in phrases])
    shapes = [(a, b) for a, b in _phrase_spans(text, [p for phrases in GRAMMAR["shape"].values() for p in phrases])
              if all(b <= s or a >= e for s, e in motions)]
    if len(shapes) > 1:
        return [], []  # two objects: which words go where is not this module's to guess
    if not shapes:  # a noun the grammar lacks ("a green tile"): the word after the object's colour
        colour = [m for m in re.finditer(r"[a-z-]+", text)
                  if m.group() in COLORS and all(m.end() <= a or m.start() >= b for a, b in scenes)]
        # The first colour outside the scene's phrase: an object's noun phrase comes before a
        # background written as a clause ("a green tile ... with a plain white wall behind it").
        noun = re.match(r"\s+[a-z-]+", text[colour[0].end():]) if colour else None
        if noun is None:
            return [], []
        shapes = [(colour[0].end() + noun.start(), colour[0].end() + noun.end())]
    start, end = shapes[0]
    # The words just before the shape that belong to its noun phrase: "a large red ball".
    for m in reversed(list(re.finditer(r"[a-z-]+", text[:start]))):
        if m.group() not in COLORS and m.group() not in SIZE_WORDS:
            break
        start = m.start()
    return [(start, end)], scenes


def token_offsets(tokenizer, prompt: str, length: int) -> list[tuple[int, int]]:
    """Each text token's character span in `prompt`, as the text encoder tokenizes it (at most `length`)."""
    return tokenizer(prompt, return_offsets_mapping=True, truncation=True, max_length=length)["offset_mapping"]


def token_positions(offsets: list[tuple[int, int]], spans: list[tuple[int, int]], length: int) -> torch.Tensor:
    """(L,) bool: the text tokens (of `length`, padded) whose characters fall in any span."""
    chosen = torch.zeros(length, dtype=torch.bool)
    for i, (a, b) in enumerate(offsets):
        if b > a and any(a >= s and b <= e for s, e in spans):
            chosen[i] = True
    return chosen


def plan_cells(named: dict[str, str], seed: int, latent_frames: int, width: int, height: int, fps: float,
               patch: tuple[int, int, int], time_down: int = 4, space_down: int = 4,
               start: float = 0.0) -> torch.Tensor:
    """(N,) in [0, 1]: the share of each transformer token (in patch order) that the planned object
    covers, for one object with the prompt's motion and its shape, size and speed (a circle, medium and
    slow where it names none) placed as the world would place it for this seed, from `start` seconds into
    its path (a later window of a long clip continues the path of the first)."""
    obj = ObjectFactors(shape=named.get("shape", "circle"), color="red", size=named.get("size", "medium"),
                        motion=named["motion"], speed=named.get("speed", "slow"))
    factors = ClipFactors(objects=(obj,), background="black", seed=seed)
    cells = latent_object_mask(factors, start, width, height, fps, latent_frames, time_down, space_down,
                               margin_cells=PLAN_MARGIN_CELLS)
    return token_cells(cells, patch)


def token_cells(cells: torch.Tensor, patch: tuple[int, int, int]) -> torch.Tensor:
    """Latent cells an object covers, (..., t, h, w) in [0, 1], as the share of each transformer
    token (..., N) in patch order."""
    _, ph, pw = patch
    *lead, t, h, w = cells.shape
    tokens = F.avg_pool2d(cells.reshape(-1, 1, h, w).float(), (ph, pw))  # (prod(lead) * t, 1, h / ph, w / pw)
    return tokens.reshape(*lead, -1)


def pool_token_bias(text_bias: torch.Tensor, grid: tuple[int, int, int], patch: tuple[int, int, int],
                    to_patch: tuple[int, int, int]) -> torch.Tensor:
    """(B, N, L) bias over the tokens of latents `grid` (t, h, w) cut at `patch`, as the bias over the
    same latents cut at the coarser `to_patch`: each coarse token gets the mean of its fine tokens'. A
    guide that cuts latents into larger patches than the model it guides gets the model's layout so."""
    if tuple(patch) == tuple(to_patch):
        return text_bias
    if patch[0] != to_patch[0] or to_patch[1] % patch[1] or to_patch[2] % patch[2]:
        raise ValueError(f"a bias at patch {tuple(patch)} cannot be pooled to patch {tuple(to_patch)}")
    (t, h, w), (pt, ph, pw) = grid, patch
    b, _, length = text_bias.shape
    fine = text_bias.reshape(b, t // pt, h // ph, w // pw, length).permute(0, 4, 1, 2, 3)  # (B, L, t, h, w) in tokens
    coarse = F.avg_pool3d(fine, (1, to_patch[1] // ph, to_patch[2] // pw))
    return coarse.flatten(2).transpose(1, 2)  # (B, N', L)


def prompt_bias(tokenizer, prompt: str, cells: torch.Tensor, length: int, strength: float) -> torch.Tensor | None:
    """(N, L) layout bias of one prompt's object and scene words against the object's cells (N,), or
    None for a prompt with no single object."""
    object_spans, scene_spans = object_and_scene_spans(prompt)
    if not object_spans:
        return None
    offsets = token_offsets(tokenizer, prompt, length)
    return layout_bias(cells, token_positions(offsets, object_spans, length),
                       token_positions(offsets, scene_spans, length), strength)


def caption_bias(tokenizer, captions: list[str], cells: torch.Tensor, length: int, strength: float) -> torch.Tensor:
    """(B, N, L) layout bias for a training batch: each caption's object and scene words against
    where its clip's object really is (cells (B, N)); zeros for a caption with no single object."""
    rows = [prompt_bias(tokenizer, text, row_cells, length, strength) for text, row_cells in zip(captions, cells)]
    return torch.stack([torch.zeros(len(c), length) if row is None else row for row, c in zip(rows, cells)])


def layout_bias(cells: torch.Tensor, object_tokens: torch.Tensor, scene_tokens: torch.Tensor,
                strength: float) -> torch.Tensor:
    """(N, L) cross-attention logit bias: +strength on the object's words where the plan covers a
    token fully, -strength where it does not touch it, and -strength x coverage on the scene's words."""
    covered = (2 * cells).clamp(max=1)[:, None]  # (N, 1): half a token covered counts as inside
    bias = strength * (2 * covered - 1) * object_tokens[None].float()
    return bias - strength * covered * scene_tokens[None].float()


def layout_guided(velocity_with_bias, velocity_without, interval: tuple[float, float]):
    """velocity(latents, t): the layout-biased one at noise levels in `interval`, the plain one elsewhere."""
    def forward(latents: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        inside = interval[0] <= float(t.max()) <= interval[1]
        return (velocity_with_bias if inside else velocity_without)(latents, t)
    return forward
