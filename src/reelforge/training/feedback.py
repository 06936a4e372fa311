"""Verifier feedback while the transformer trains: its clean-clip estimate at mid noise should be
read by the verifier (models/verifier.py) as the clip the caption describes.

Why: the flow loss hardly cares about the object's shape or path (an object covers ~5% of a frame,
and at high noise its layout is worth little loss; MODEL_CARD.md), so the model learns the scene and
the colour long before them, and verifier guidance at sampling time doubled shape and motion but cost
consistency. Here the same signal is a training loss instead: cross-entropy of the frozen verifier's
reading of x0 = x_t - t v against the renderer's labels, back through the transformer (a reward on
the one-step estimate, as ControlNet++ (Li et al. 2024) and ReFL (Xu et al. 2023) train with theirs).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..models.verifier import LatentVerifier
from ..world.factors import ClipFactors
from .verifier import labels_of

# What a training caption always names of its one object (captions.py); speed is left out, since a
# still object's caption has none, and size, since "medium" is often left unsaid.
NAMED = ("color", "shape", "motion", "background")


def feedback_labels(factors: list[ClipFactors], captioned: list[bool]) -> torch.Tensor:
    """(B, len(NAMED)) indices into VOCAB of each clip's named factors; -1 (ignored) for every factor of
    a clip without a caption (the unconditional branch has nothing to be read as) or with two objects
    (a clip-level label would not say which object it belongs to)."""
    rows = []
    for clip, has_caption in zip(factors, captioned):
        if not has_caption or len(clip.objects) != 1:
            rows.append([-1] * len(NAMED))
            continue
        labels = labels_of(clip.to_dict())
        rows.append([labels[name] for name in NAMED])
    return torch.tensor(rows, dtype=torch.long)


def feedback_loss(verifier: LatentVerifier, estimate: torch.Tensor, labels: torch.Tensor, t: torch.Tensor,
                  interval: tuple[float, float]) -> torch.Tensor:
    """(B,) the verifier's cross-entropy on the clean-clip estimates (B, C, T, h, w), summed over the
    named factors, for clips whose mean noise level lies in `interval` (0 elsewhere). Outside it: at
    the highest noise the estimate is a blur the verifier cannot read, and at low noise it is the
    clip itself, already right. In fp32: under bf16 the verifier's gradients were measured to go
    non-finite (training/config.VerifierTrainConfig)."""
    levels = t.view(t.shape[0], -1).mean(1)
    rows = ((levels >= interval[0]) & (levels <= interval[1]) & (labels >= 0).any(1)).nonzero().flatten()
    loss = estimate.new_zeros(estimate.shape[0], dtype=torch.float32)
    if not len(rows):
        return loss
    with torch.autocast(estimate.device.type, enabled=False):
        logits = verifier(estimate[rows].float())
    for i, name in enumerate(NAMED):
        if name in logits:
            loss = loss.index_add(0, rows, F.cross_entropy(logits[name].float(), labels[rows, i].to(estimate.device),
                                                           ignore_index=-1, reduction="none"))
    return loss
