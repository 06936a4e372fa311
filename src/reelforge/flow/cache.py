"""Step caching for any transformer the engine runs: First Block Cache (ParaAttention; the idea of
TeaCache, Liu et al. 2024) through diffusers' own hooks.

At each step the first block runs; when its output residual changed by less than `threshold`
(relative mean absolute difference) since the last full step, the remaining blocks are skipped
and their cached residual is reused. Late steps, where the velocity barely moves, are the ones
skipped. Our Block is registered with diffusers' block registry so the stock hooks find it.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
from diffusers.hooks import FirstBlockCacheConfig
from diffusers.hooks._helpers import TransformerBlockMetadata, TransformerBlockRegistry

from ..models.transformer import Block

# A Block returns the hidden states alone (no tuple, no text states to carry).
TransformerBlockRegistry.register(Block, TransformerBlockMetadata(return_hidden_states_index=None,
                                                                  return_encoder_hidden_states_index=None))


class CacheError(ValueError):
    pass


@contextmanager
def first_block_cache(transformer: torch.nn.Module, threshold: float):
    """Run the body with the cache on (threshold > 0) and fresh state; off again afterwards."""
    if not 0 <= threshold <= 1:
        raise CacheError(f"cache threshold must be between 0 (off) and 1, got {threshold}")
    if threshold == 0:
        yield
        return
    transformer.enable_cache(FirstBlockCacheConfig(threshold=threshold))
    try:
        with transformer.cache_context("denoise"):
            yield
    finally:
        transformer.disable_cache()
