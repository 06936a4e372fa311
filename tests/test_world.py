import random

import numpy as np
import pytest

from reelforge.media.decode import h264_roundtrip
from reelforge.world.analyzer import analyze
from reelforge.world.captions import GRAMMAR, caption, paraphrase
from reelforge.world.factors import ClipFactors, ObjectFactors, WorldError, sample_factors, validate
from reelforge.world.render import render
from reelforge.world.splits import HELD_OUT_TRIPLES, is_held_out, sample_held_out_factors, sample_train_factors


def clip(shape="square", color="red", motion="static", background="blue", size="large", speed="fast", camera="still"):
    return ClipFactors(objects=(ObjectFactors(shape, color, size, motion, speed),), background=background,
                       camera=camera, seed=3)


def test_render_any_size_keeps_shapes_round():
    frames = render(clip(shape="circle", motion="static"), width=160, height=90, fps=12, num_frames=5)
    assert frames.shape == (5, 90, 160, 3) and frames.dtype == np.uint8
    red = (frames[0, ..., 0] > 150) & (frames[0, ..., 2] < 100)
    ys, xs = np.nonzero(red)
    assert abs((xs.max() - xs.min()) - (ys.max() - ys.min())) <= 1  # no stretching on 16:9


def test_object_never_has_its_background_colour():
    with pytest.raises(WorldError, match="invisible"):
        validate(clip(color="blue", background="blue"))
    with pytest.raises(WorldError, match="cannot visibly spin"):
        validate(clip(shape="circle", motion="spin"))


def test_held_out_triples_never_sampled_for_training():
    rng = random.Random(0)
    for _ in range(2000):
        assert not is_held_out(sample_train_factors(rng))
    assert all(is_held_out(sample_held_out_factors(rng)) for _ in range(50))
    for part in range(3):  # every colour, shape and motion is held out somewhere
        assert len({t[part] for t in HELD_OUT_TRIPLES}) >= 5


def test_captions_use_synonyms_and_paraphrases_use_other_words():
    rng = random.Random(1)
    f = clip(shape="circle", motion="left")
    wordings = {caption(f, rng) for _ in range(60)}
    assert len(wordings) > 20
    assert any("ball" in w for w in wordings) and any("disc" in w for w in wordings)
    grammar_motion = set(GRAMMAR["motion"]["left"])
    for _ in range(20):
        p = paraphrase(f, rng)
        assert not any(m in p for m in grammar_motion)


@pytest.mark.parametrize("motion", ["left", "right", "up", "down", "static", "bounce", "grow", "shrink", "spin", "orbit"])
def test_analyzer_recovers_motion_after_h264(motion):
    shape = "star" if motion == "spin" else "square"
    f = clip(shape=shape, color="yellow", motion=motion, background="purple", size="medium")
    a = analyze(h264_roundtrip(render(f, 64, 64, 8, 32)), 8)
    assert (a.background, a.main.color, a.main.shape, a.main.motion) == ("purple", "yellow", shape, motion)


def test_analyzer_reads_scenes_camera_and_two_objects():
    f = ClipFactors(objects=(ObjectFactors("triangle", "red", "large", "right", "slow"),
                             ObjectFactors("ring", "yellow", "large", "up", "slow")),
                    background="checkerboard", camera="pan_left", seed=5)
    a = analyze(h264_roundtrip(render(f, 96, 96, 8, 32)), 8)
    assert a.background == "checkerboard" and a.camera == "pan_left"
    got = {(o.color, o.shape, o.motion) for o in a.objects}
    assert got == {("red", "triangle", "right"), ("yellow", "ring", "up")}


def test_analyzer_accuracy_on_random_clips():
    """A small sample of the benchmark in benchmarks/analyzer_accuracy.py (which reports >= 99%)."""
    rng = random.Random(11)
    correct = total = 0
    for _ in range(30):
        f = sample_factors(rng)
        a = analyze(h264_roundtrip(render(f, 64, 64, 8, 32)), 8)
        o = f.objects[0]
        correct += (a.background, a.main.color, a.main.shape, a.main.motion) == (f.background, o.color, o.shape, o.motion)
        total += 1
    assert correct / total >= 0.95
