import dataclasses

import pytest
import torch

from reelforge.flow.guidance import autoguided
from reelforge.flow.layout import (layout_bias, object_and_scene_spans, plan_cells, pool_token_bias, token_cells,
                                   token_offsets, token_positions)
from reelforge.models.transformer import TransformerConfig, VideoTransformer


def _centre_x(cells: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
    """The planned object's mean token column per latent frame."""
    cells = cells.view(grid)
    cols = torch.arange(grid[2]).float()
    return (cells.sum(1) * cols).sum(1) / cells.sum((1, 2))


def test_planned_path_moves_the_way_the_prompt_says():
    grid = (9, 4, 4)
    left = _centre_x(plan_cells({"shape": "circle", "motion": "left"}, 0, 9, 64, 64, 8.0, (1, 4, 4)), grid)
    right = _centre_x(plan_cells({"shape": "circle", "motion": "right"}, 0, 9, 64, 64, 8.0, (1, 4, 4)), grid)
    still = _centre_x(plan_cells({"shape": "circle", "motion": "static"}, 0, 9, 64, 64, 8.0, (1, 4, 4)), grid)
    assert left[-1] < left[0] - 0.5 and right[-1] > right[0] + 0.5
    assert (still - still[0]).abs().max() < 1e-6


def test_planned_path_covers_one_object_and_fits_every_bucket():
    for width, height in ((64, 64), (112, 64), (64, 112)):
        cells = plan_cells({"shape": "square", "motion": "orbit", "size": "large"}, 3, 9, width, height, 8.0, (1, 4, 4))
        assert cells.shape == (9 * (height // 16) * (width // 16),)
        per_frame = cells.view(9, -1).sum(1)
        assert ((per_frame > 0.5) & (per_frame < cells.numel() / 9 / 2)).all()  # an object's sweep, not the frame


def test_object_words_and_scene_phrase_are_found_in_a_grammar_caption():
    prompt = "a large red ball rolls left on a blue background"
    objects, scenes = object_and_scene_spans(prompt)
    assert [prompt[a:b] for a, b in objects] == ["large red ball"]
    assert [prompt[a:b] for a, b in scenes] == ["on a blue background"]
    assert object_and_scene_spans("a red ball moves left while a blue box falls") == ([], [])
    # "moves in a circle" is an orbit, not a second object.
    prompt = "a large yellow star moves in a circle on a white background"
    objects, scenes = object_and_scene_spans(prompt)
    assert [prompt[a:b] for a, b in objects + scenes] == ["large yellow star", "on a white background"]
    # A noun the grammar lacks: the words up to the one after the first colour outside the scene.
    prompt = "on a white background, a small green tile moves left"
    objects, scenes = object_and_scene_spans(prompt)
    assert [prompt[a:b] for a, b in objects + scenes] == ["small green tile", "on a white background"]


def test_token_positions_pick_the_words_tokens(text_encoder):
    prompt = "a red five-pointed star spins at sunset"
    objects, scenes = object_and_scene_spans(prompt)
    tokenizer = text_encoder.tokenizer
    length = len(tokenizer(prompt)["input_ids"])
    offsets = token_offsets(tokenizer, prompt, length)
    chosen = token_positions(offsets, objects, length)
    ids = tokenizer(prompt)["input_ids"]
    assert tokenizer.decode([i for i, c in zip(ids, chosen) if c]) == "red five - pointed star"
    assert tokenizer.decode([i for i, c in zip(ids, token_positions(offsets, scenes, length)) if c]) == "at sunset"


def test_bias_favours_object_words_on_the_path_and_keeps_them_off_it():
    cells = torch.tensor([0.0, 0.25, 1.0])
    objects = torch.tensor([False, True, False])
    scenes = torch.tensor([False, False, True])
    bias = layout_bias(cells, objects, scenes, 3.0)
    assert bias[0, 1] == -3.0 and bias[2, 1] == 3.0 and bias[1, 1] == 0.0
    assert bias[0, 2] == 0.0 and bias[2, 2] == -3.0
    assert (bias[:, 0] == 0).all()


def test_transformer_with_a_zero_bias_is_unchanged_and_a_bias_reaches_the_output():
    torch.manual_seed(0)
    cfg = TransformerConfig(in_channels=4, dim=32, depth=1, heads=2, rope_split=(4, 6, 6))
    model = VideoTransformer(cfg)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.1)
    latents, t = torch.randn(1, 4, 2, 8, 8), torch.tensor([0.7])
    text, mask = torch.randn(1, 5, 384), torch.ones(1, 5, dtype=torch.bool)
    pooled = torch.randn(1, 384)
    plain = model(latents, t, text, mask, pooled)
    zero = model(latents, t, text, mask, pooled, text_bias=torch.zeros(1, 8, 5))
    assert torch.allclose(plain, zero, atol=1e-5)
    bias = torch.zeros(1, 8, 5)
    bias[:, :4, 1] = -20.0
    moved = model(latents, t, text, mask, pooled, text_bias=bias)
    changed = (moved - plain).abs().amax((0, 1, 2))  # (8, 8) latent cells
    assert changed.max() > 1e-3


def test_a_bias_over_fine_tokens_pooled_to_a_coarser_patch_is_the_coarse_tokens_bias():
    cells = torch.zeros(2, 8, 8)
    cells[:, 4:, :4] = 1.0  # one object filling a whole coarse token block in each latent frame
    objects, scenes = torch.tensor([False, True, False]), torch.tensor([False, False, True])
    fine = layout_bias(token_cells(cells, (1, 2, 2)), objects, scenes, 2.0)[None]  # (1, 32, 3)
    coarse = layout_bias(token_cells(cells, (1, 4, 4)), objects, scenes, 2.0)[None]  # (1, 8, 3)
    assert torch.equal(pool_token_bias(fine, (2, 8, 8), (1, 2, 2), (1, 4, 4)), coarse)
    assert pool_token_bias(fine, (2, 8, 8), (1, 2, 2), (1, 2, 2)) is fine
    with pytest.raises(ValueError, match="cannot be pooled"):
        pool_token_bias(coarse, (2, 8, 8), (1, 4, 4), (1, 2, 2))


def test_a_guide_with_a_coarser_patch_gets_the_models_layout_bias_recut_to_its_tokens():
    torch.manual_seed(0)
    model = VideoTransformer(TransformerConfig(in_channels=4, dim=32, depth=1, heads=2, rope_split=(4, 6, 6),
                                               patch=(1, 2, 2)))
    guide = VideoTransformer(TransformerConfig(in_channels=4, dim=32, depth=1, heads=2, rope_split=(4, 6, 6)))
    seen = {}

    def spy(latents, t, **kwargs):
        seen["bias"] = kwargs["text_bias"]
        return guide(latents, t, **kwargs)
    spy.cfg = guide.cfg
    latents, t = torch.randn(1, 4, 2, 8, 8), torch.tensor([0.9])
    text = {"text_tokens": torch.randn(1, 3, 384), "text_mask": torch.ones(1, 3, dtype=torch.bool),
            "text_pooled": torch.randn(1, 384), "text_bias": torch.randn(1, 32, 3)}
    autoguided(model, spy, 2.0)(latents, t, **text)
    assert torch.allclose(seen["bias"], pool_token_bias(text["text_bias"], (2, 8, 8), (1, 2, 2), (1, 4, 4)))


def test_pipeline_with_layout_guidance_records_it_and_changes_the_clip(tiny_pipeline):
    prompt = "a red ball moves left on a blue background"
    plain = tiny_pipeline(prompt, seconds=1.0, seed=3)
    before = tiny_pipeline.config
    tiny_pipeline.config = dataclasses.replace(before, layout_guidance=4.0)
    try:
        guided = tiny_pipeline(prompt, seconds=1.0, seed=3)
        two = tiny_pipeline("a red ball moves left while a blue box falls on a gray background", seconds=1.0, seed=3)
        unmoved = tiny_pipeline("a red ball on a blue background", seconds=1.0, seed=3)
        off = tiny_pipeline(prompt, seconds=1.0, seed=3, layout_guidance=0.0)
    finally:
        tiny_pipeline.config = before
    assert guided.settings["layout_guidance"] == 4.0 and "layout_guidance" not in plain.settings
    assert (guided.frames.astype(int) - plain.frames).__abs__().max() > 0
    assert (off.frames == plain.frames).all() and "layout_guidance" not in off.settings
    assert "layout_guidance" not in two.settings  # two objects: no single path to plan
    assert "layout_guidance" not in unmoved.settings  # no motion named: a planned path would hold it still


def test_layout_guidance_outside_its_range_is_a_clear_input_error(tiny_pipeline):
    from reelforge.pipeline import InputError
    with pytest.raises(InputError, match="layout guidance must be between 0"):
        tiny_pipeline("a red ball moves left", seconds=1.0, layout_guidance=-1.0)


def test_a_long_clip_continues_its_first_windows_planned_path(tiny_pipeline, monkeypatch):
    import reelforge.pipeline as pipeline_module
    from reelforge.long import Shot, generate_long
    starts = []
    plan = pipeline_module.plan_cells

    def recording(*args, **kwargs):
        starts.append(round(args[-1] if len(args) > 9 else kwargs.get("start", 0.0), 3))
        return plan(*args, **kwargs)

    monkeypatch.setattr(pipeline_module, "plan_cells", recording)
    before = tiny_pipeline.config
    tiny_pipeline.config = dataclasses.replace(before, layout_guidance=2.0)
    try:
        generate_long(tiny_pipeline, [Shot(0.0, "a red ball moves left on a blue background")], 7.0, seed=1, window=4.0)
        first_plan = list(starts)
        starts.clear()
        generate_long(tiny_pipeline, [Shot(0.0, "a red ball moves left"), Shot(3.5, "the red ball bounces")], 7.0,
                      seed=1, window=4.0)
    finally:
        tiny_pipeline.config = before
    # Windows of 4 s: the second holds the first's last 5 frames (1 + 4k for the causal autoencoder,
    # from 3.375 s) and its path goes on from there, not from the start.
    assert first_plan == [0.0, 3.375]
    assert len(starts) == 1  # a storyboard's next shot plans no path


@pytest.mark.parametrize("value", [-1.0, 25.0])
def test_layout_guidance_out_of_range_is_refused(value):
    from reelforge.pipeline import PipelineConfig
    with pytest.raises(ValueError, match="layout_guidance"):
        PipelineConfig(layout_guidance=value)
