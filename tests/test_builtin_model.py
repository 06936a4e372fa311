"""End to end: the shipped model, held-out prompts, judged by the analyzer."""
import random

import pytest

from reelforge.evaluation.metrics import judge
from reelforge.media.decode import h264_roundtrip
from reelforge.pipeline import BUILTIN_DIR, Pipeline
from reelforge.world.analyzer import analyze
from reelforge.world.captions import caption, paraphrase
from reelforge.world.splits import sample_held_out_factors, sample_train_factors

pytestmark = pytest.mark.skipif(not (BUILTIN_DIR / "transformer.safetensors").exists(),
                                reason="the built-in model has not been exported")


@pytest.fixture(scope="module")
def pipe(text_encoder):
    return Pipeline.from_pretrained(text_encoder=text_encoder)


def judge_held_out(pipe, clips: int = 8, draw=sample_held_out_factors, worded=caption, **kwargs) -> list[dict]:
    """The analyzer's verdict, factor by factor, on `clips` prompts (fixed prompts and seeds): held-out
    combinations in the grammar's words unless `draw` and `worded` say otherwise."""
    rng = random.Random(2024)
    results = []
    for i in range(clips):
        factors = draw(rng)
        video = pipe(worded(factors, rng), seed=i, **kwargs)
        a, judged = judge(video.frames, video.fps, factors)
        got = (a.main.color, a.main.shape, a.main.motion) if a.main else None
        results.append({"colour": judged["color"], "shape": judged["shape"], "motion": judged["motion"],
                        "background": judged["background"], "got": got})
    return results


def assert_floors(results: list[dict], floors: dict[str, int]) -> None:
    for factor, floor in floors.items():
        hits = sum(r[factor] for r in results)
        assert hits >= floor, f"{factor}: {hits}/{len(results)} held-out clips right: {results}"


def test_held_out_prompts_show_what_they_ask_for(pipe):
    # Floors at what the shipped model really does (MODEL_CARD.md: background 100%, colour 90% on
    # held-out prompts; shape about 20%), a little under this run's 8/8 and 6/8 so that other
    # CPUs' rounding does not flip the verdict. The model before (colour 3/8) fails here.
    assert_floors(judge_held_out(pipe), {"background": 7, "colour": 5})


def test_paraphrased_prompts_land_once_rewritten_into_the_models_words(pipe):
    def seen(rng):
        return sample_train_factors(rng, two_object_prob=0.0)

    rewritten = judge_held_out(pipe, draw=seen, worded=paraphrase)
    as_written = judge_held_out(pipe, draw=seen, worded=paraphrase, rewrite_prompt=False)
    # reelforge eval over 96 paraphrases: colour 89.5% and background 92% rewritten; over 48, 15% and
    # 50% as written (MODEL_CARD.md).
    assert_floors(rewritten, {"background": 5, "colour": 5})
    assert sum(r["colour"] for r in rewritten) >= sum(r["colour"] for r in as_written) + 3, (rewritten, as_written)


def test_layout_guidance_moves_held_out_objects_the_way_the_prompt_says(pipe):
    def travelling(rng):  # held-out combinations whose object travels along a path
        while (factors := sample_held_out_factors(rng)).objects[0].motion not in ("left", "right", "up", "down", "bounce"):
            pass
        return factors

    guided = judge_held_out(pipe, draw=travelling)
    plain = judge_held_out(pipe, draw=travelling, layout_guidance=0.0)
    # reelforge eval over 96 held-out prompts: these motions right in 17 of 19 seed-0 clips with layout
    # guidance, 4 of 19 without (MODEL_CARD.md, "Layout guidance").
    assert_floors(guided, {"motion": 5, "colour": 6, "background": 7})
    assert sum(r["motion"] for r in guided) >= sum(r["motion"] for r in plain) + 2, (guided, plain)


def test_turbo_student_shows_the_scene_and_colour_of_held_out_prompts_in_three_steps(pipe):
    turbo = pipe.turbo()
    assert (turbo.config.name, turbo.config.guidance, turbo.config.steps) == ("reelforge-turbo", 1.0, 3)
    # benchmarks/turbo.py over 48 held-out prompts: background 100%, colour 67% (teacher 90%); on
    # these 8 it gets 8/8 and 6/8. Floors a little under that.
    assert_floors(judge_held_out(turbo), {"background": 7, "colour": 4})


def test_default_clip_is_four_seconds_at_the_base_size(pipe):
    video = pipe("a red ball rolls left across a blue floor", seed=0)
    assert video.frames.shape == (32, 64, 64, 3) and video.fps == 8
    # The scene follows the prompt; the shipped model rarely draws this object yet (MODEL_CARD.md).
    assert analyze(h264_roundtrip(video.frames, video.fps), video.fps).background == "blue"


def test_shipped_upscaler_beats_bicubic_on_decoded_frames(pipe):
    from reelforge.training.enhance import evaluate_upscaler
    result = evaluate_upscaler(pipe.enhancers.upscaler, pipe.autoencoder, clips=6)["decoded"]
    # benchmarks/enhance.py over 24 clips: +0.83 dB (v2; +0.6 before); a floor under that, above noise.
    assert result["learned"]["psnr_db"] > result["bicubic"]["psnr_db"] + 0.2, result


def test_shipped_interpolator_beats_cross_fade_and_repeat_where_things_move(pipe):
    from reelforge.training.enhance import evaluate_interpolator
    result = evaluate_interpolator(pipe.enhancers.interpolator, None, clips=12)["clean"]
    moving = {m: r["moving_psnr_db"] for m, r in result.items()}
    # benchmarks/enhance.py over 48 clips: +1.2 dB over the cross-fade, +2.9 dB over repeats.
    assert moving["learned"] > moving["blend"] + 0.5 > moving["repeat"] + 1.0, moving
