"""Long clips and storyboards: window planning, storyboard parsing, and generation past one
window at any size and frame rate (tiny model)."""
from __future__ import annotations

import numpy as np
import pytest

from reelforge.delivery import Delivery, deliver_frames
from reelforge.long import Shot, generate_long, parse_storyboard, prompt_at, seam_ratio, window_plan
from reelforge.pipeline import InputError


def test_storyboard_parses_times_and_prompts():
    shots = parse_storyboard("0s: a red ball rolls right; 5s: the red ball bounces\n7.5: a blue star spins")
    assert shots == [Shot(0.0, "a red ball rolls right"), Shot(5.0, "the red ball bounces"), Shot(7.5, "a blue star spins")]
    assert prompt_at(shots, 4.9) == "a red ball rolls right" and prompt_at(shots, 5.0) == "the red ball bounces"


@pytest.mark.parametrize("text, message", [
    ("", "empty"), ("a red ball", "TIME: prompt"), ("2s: late start", "start at 0s"),
    ("0s: a; 5s: b; 3s: c", "must increase")])
def test_bad_storyboards_name_the_problem(text, message):
    with pytest.raises(InputError, match=message):
        parse_storyboard(text)


def test_windows_cover_the_clip_with_one_second_of_context():
    assert window_plan(3, 4, 1) == [(0.0, 3)]
    assert window_plan(10, 4, 1) == [(0.0, 4), (4, 3), (7, 3)]
    plan = window_plan(41, 4, 1)
    assert sum(new for _, new in plan) == pytest.approx(41) and all(new <= 4 for _, new in plan)


def test_long_storyboard_clip_has_the_asked_length_size_and_rate(tiny_pipeline):
    shots = parse_storyboard("0s: a red ball rolls right; 5s: a red ball bounces")
    seen = []
    video = generate_long(tiny_pipeline, shots, seconds=10, fps=12, size=(96, 54), seed=0, steps=2,
                          on_window=lambda k, n: seen.append((k, n)))
    assert video.frames.shape == (120, 54, 96, 3) and video.fps == 12
    assert seen == [(1, 3), (2, 3), (3, 3)] and video.settings["windows"] == 3
    assert video.settings["window_boundaries"] == [48, 84]  # 4 s and 7 s at 12 fps
    assert np.isfinite(seam_ratio(video.frames, video.settings["window_boundaries"]))


def test_long_clip_starts_like_the_short_one(tiny_pipeline):
    """The first window is the single-window generation: extending only fades its last held
    frames (fewer than one second) into the next window's redraw of them."""
    short = tiny_pipeline("a green box", seconds=4, seed=5, steps=2)
    long = generate_long(tiny_pipeline, [Shot(0.0, "a green box")], seconds=9, seed=5, steps=2)
    held = 5  # 1 + 4k frames of the last second at 8 fps
    assert np.array_equal(long.frames[:len(short.frames) - held], short.frames[:-held])
    assert not np.array_equal(long.frames[:len(short.frames)], short.frames)


def test_too_long_is_refused(tiny_pipeline):
    with pytest.raises(InputError, match="seconds must be"):
        generate_long(tiny_pipeline, [Shot(0.0, "a red ball")], seconds=500)


def test_delivery_in_chunks_matches_the_size_and_never_stretches():
    frames = np.zeros((8, 64, 64, 3), np.uint8)
    frames[:, :, 28:36] = 255  # a vertical bar in the middle
    out = deliver_frames(frames, 8, 24, 1.0, (128, 72))
    assert out.shape == (24, 72, 128, 3)
    bar_width = (out[0, 36, :, 0] > 128).sum()
    assert 14 <= bar_width <= 18  # 8 px at 2x, cropped rather than stretched horizontally


def test_a_long_clip_is_delivered_piece_by_piece_without_ever_being_held_whole(tiny_pipeline, monkeypatch):
    video = generate_long(tiny_pipeline, [Shot(0.0, "a red ball")], seconds=9, fps=12, size=(96, 54), seed=1, steps=2)
    expected = deliver_frames(video.delivery.source, video.delivery.source_fps, 12, 9, (96, 54), tiny_pipeline.enhancers)

    def whole(*args, **kwargs):
        raise AssertionError("the whole clip was made at once")
    monkeypatch.setattr(Delivery, "frames", whole)
    pieces = list(video.chunks(chunk=10))
    assert video.count == 108 and video.size == (96, 54)
    assert max(len(p) for p in pieces) == 10 and np.array_equal(np.concatenate(pieces), expected)


def test_latent_seam_ratio_sees_a_jump_every_latent_frame_and_none_in_smooth_motion():
    from reelforge.long import latent_seam_ratio

    t = np.arange(33)
    smooth = np.broadcast_to((t * 4)[:, None, None, None], (33, 8, 8, 3)).astype(np.uint8)
    # Motion that holds still for a latent frame's 4 frames, then catches up at once.
    held = t.copy()
    held[1:] = 1 + 4 * ((t[1:] - 1) // 4)
    stepped = np.broadcast_to((held * 4)[:, None, None, None], (33, 8, 8, 3)).astype(np.uint8)
    assert latent_seam_ratio(smooth) == 1.0
    assert latent_seam_ratio(stepped) > 3
