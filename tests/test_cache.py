"""First Block Cache through diffusers' hooks: skips the deeper blocks on steps that change little,
changes nothing when off, and leaves the model as it found it."""
from __future__ import annotations

import numpy as np
import pytest

from reelforge.pipeline import InputError


def count_deep_calls(pipe):
    calls = []
    handle = pipe.transformer.blocks[-1].attn.register_forward_hook(lambda *a: calls.append(1))
    return calls, handle


def test_cache_skips_deep_blocks_and_is_removed_afterwards(tiny_pipeline):
    plain = tiny_pipeline("a red ball", seconds=1, seed=0, steps=8)
    calls, handle = count_deep_calls(tiny_pipeline)
    try:
        cached = tiny_pipeline("a red ball", seconds=1, seed=0, steps=8, cache_threshold=1.0)
        skipped = 8 - len(calls)
        calls.clear()
        again = tiny_pipeline("a red ball", seconds=1, seed=0, steps=8)
        full = len(calls)
    finally:
        handle.remove()
    assert skipped >= 6  # threshold 1: only the first step (no reference yet) and rare jumps run fully
    assert full == 8 and not tiny_pipeline.transformer.is_cache_enabled
    assert np.array_equal(plain.frames, again.frames)  # no state leaks into the next generation
    assert not np.array_equal(plain.frames, cached.frames)
    assert cached.settings["cache_threshold"] == 1.0


def test_zero_threshold_is_exactly_the_plain_sampler(tiny_pipeline):
    a = tiny_pipeline("a blue star", seconds=1, seed=1, steps=4)
    b = tiny_pipeline("a blue star", seconds=1, seed=1, steps=4, cache_threshold=0.0)
    assert np.array_equal(a.frames, b.frames)


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_bad_threshold_is_refused(tiny_pipeline, bad):
    with pytest.raises(InputError, match="cache threshold"):
        tiny_pipeline("a red ball", seconds=1, cache_threshold=bad)
