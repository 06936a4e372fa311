"""Delivery: re-timing with in-between frames, upscaling, chunking; the delivery networks' training."""
import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from reelforge.delivery import Enhancers, deliver_frames, from_keyframes, join_windows, source_positions
from reelforge.models.interpolator import FrameInterpolator, InterpolatorConfig
from reelforge.models.upscaler import UpscalerConfig, VideoUpscaler
from reelforge.training.config import EnhanceTrainConfig
from reelforge.training.enhance import train_enhancer


def _random_init(module):
    torch.manual_seed(0)
    for p in module.parameters():
        torch.nn.init.normal_(p, std=0.02)
    return module.eval()


def test_untrained_networks_start_as_bicubic_and_cross_fade():
    frames = torch.rand(3, 3, 16, 24) * 2 - 1
    up = VideoUpscaler(UpscalerConfig(channels=8, blocks=1))
    assert torch.allclose(up(frames), F.interpolate(frames, scale_factor=4, mode="bicubic", align_corners=False))
    interp = FrameInterpolator(InterpolatorConfig(channels=(8, 8, 8)))
    a, b, t = frames[:2], frames[1:], torch.tensor([0.25, 0.5])
    assert torch.allclose(interp(a, b, t), a + t.view(-1, 1, 1, 1) * (b - a), atol=1e-5)


def test_interpolator_takes_sizes_not_divisible_by_four():
    interp = _random_init(FrameInterpolator(InterpolatorConfig(channels=(8, 8, 8))))
    a = torch.zeros(1, 3, 30, 45)
    assert interp(a, a, torch.tensor([0.5])).shape == (1, 3, 30, 45)


def test_source_positions_interpolate_only_when_denser():
    first, second, t = source_positions(6, 8, 24, available=3)
    assert first.tolist() == [0, 0, 0, 1, 1, 1] and second.tolist() == [1, 1, 1, 2, 2, 2]
    assert np.allclose(t, [0, 1 / 3, 2 / 3, 0, 1 / 3, 2 / 3])
    first, second, t = source_positions(4, 8, 4, available=8)
    assert first.tolist() == [0, 2, 4, 6] and (t == 0).all()
    first, _, t = source_positions(30, 8, 24, available=8)
    assert first.max() == 7 and t[-1] == 0  # past the last frame: hold it, never index beyond


def test_in_between_frames_come_from_the_interpolator_and_source_frames_stay_exact():
    frames = np.zeros((3, 16, 16, 3), np.uint8)
    frames[1] = 200
    frames[2] = 100
    plain = deliver_frames(frames, 8, 24, 3 / 8, (16, 16))
    assert [int(f.mean()) for f in plain] == [0, 0, 200, 200, 200, 100, 100, 100, 100]  # nearest frame
    fade = FrameInterpolator(InterpolatorConfig(channels=(8, 8, 8)))  # untrained: the cross-fade
    out = deliver_frames(frames, 8, 24, 3 / 8, (16, 16), Enhancers(interpolator=fade))
    assert [int(f.mean()) for f in out[:4]] == [0, 67, 133, 200]
    assert np.array_equal(out[3], frames[1])


@pytest.mark.parametrize("size", [(256, 256), (455, 256), (64, 128)])
def test_chunked_upscaled_delivery_equals_one_pass_and_keeps_the_aspect(size):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (9, 64, 64, 3), dtype=np.uint8)
    enhancers = Enhancers(upscaler=_random_init(VideoUpscaler(UpscalerConfig(channels=8, blocks=1))),
                          interpolator=_random_init(FrameInterpolator(InterpolatorConfig(channels=(8, 8, 8)))))
    whole = deliver_frames(frames, 8, 24, 1.0, size, enhancers, chunk=1000)
    chunked = deliver_frames(frames, 8, 24, 1.0, size, enhancers, chunk=5)
    assert whole.shape == (24, size[1], size[0], 3)
    assert np.abs(whole.astype(int) - chunked.astype(int)).max() <= 1


def test_upscaler_is_used_only_when_the_output_is_larger():
    class Spy(VideoUpscaler):
        calls = 0

        def forward(self, frames, before=None, after=None):
            Spy.calls += 1
            return super().forward(frames, before, after)

    frames = np.zeros((4, 64, 64, 3), np.uint8)
    spy = Spy(UpscalerConfig(channels=8, blocks=1))
    deliver_frames(frames, 8, 8, 0.5, (80, 80), Enhancers(upscaler=spy))
    assert Spy.calls == 0
    deliver_frames(frames, 8, 8, 0.5, (192, 108), Enhancers(upscaler=spy))
    assert Spy.calls == 1


@pytest.mark.parametrize("stage", ["upscaler", "interpolator"])
def test_delivery_networks_train_and_resume(stage, tiny_model_dir, tmp_path):
    model = {"channels": 8, "blocks": 1} if stage == "upscaler" else {"channels": [8, 8, 8]}
    cfg = EnhanceTrainConfig(stage=stage, run_dir=str(tmp_path / stage), steps=2, clips_per_step=1, crop=16,
                             autoencoder=str(tiny_model_dir / "autoencoder.safetensors"), log_every=1,
                             checkpoint_every=1, model=model)
    lines = []
    path = train_enhancer(cfg, lines.append)
    assert path.exists() and len([x for x in lines if x.startswith("step ")]) == 2
    lines = []
    train_enhancer(dataclasses.replace(cfg, steps=3), lines.append)
    assert lines[0] == "resumed from step 2" and lines[1].startswith("step 3/3")


def test_export_carries_the_delivery_networks_and_the_pipeline_loads_them(tiny_model_dir, tmp_path, text_encoder):
    from reelforge.pipeline import Pipeline, PipelineConfig
    from reelforge.training.checkpoint import save_weights
    from reelforge.training.export import export_model

    up_cfg, it_cfg = UpscalerConfig(channels=8, blocks=1), InterpolatorConfig(channels=(8, 8, 8))
    save_weights(VideoUpscaler(up_cfg), tmp_path / "up.safetensors", up_cfg.to_json())
    save_weights(FrameInterpolator(it_cfg), tmp_path / "it.safetensors", it_cfg.to_json())
    out = tmp_path / "model"
    args = (tiny_model_dir / "transformer.safetensors", tiny_model_dir / "autoencoder.safetensors", out,
            PipelineConfig(name="tiny", steps=2))
    export_model(*args, {"upscaler": tmp_path / "up.safetensors", "interpolator": tmp_path / "it.safetensors"})
    pipe = Pipeline.from_pretrained(out, text_encoder=text_encoder)
    assert pipe.enhancers.upscaler.cfg == up_cfg and pipe.enhancers.interpolator.cfg == it_cfg
    video = pipe("a red ball", seconds=1, fps=24, size=(256, 256), seed=0)
    assert video.frames.shape == (24, 256, 256, 3)
    export_model(*args)  # without them: removed, and delivery falls back to resizing
    assert not (out / "upscaler.safetensors").exists()
    assert Pipeline.from_pretrained(out, text_encoder=text_encoder).enhancers.upscaler is None


def test_uint8_resize_matches_the_float_bicubic_it_replaced():
    """The fast path quantises before resizing: within two 8-bit levels of resizing in float."""
    from reelforge.delivery import _resize_uint8
    torch.manual_seed(0)
    small = F.interpolate(torch.rand(2, 3, 8, 8) * 2 - 1, size=(64, 112), mode="bilinear")  # smooth content
    fast = _resize_uint8(small.clone(), (480, 270)).astype(np.int16)
    slow = F.interpolate(small, size=(270, 480), mode="bicubic", align_corners=False, antialias=True)
    slow = ((slow.clamp(-1, 1) + 1) * 127.5).round().permute(0, 2, 3, 1).numpy().astype(np.int16)
    assert fast.shape == (2, 270, 480, 3) and np.abs(fast - slow).max() <= 2


def test_fan_out_feeds_every_consumer_the_same_chunks_once():
    from reelforge.media.encode import fan_out
    made, got = [], [[], []]

    def chunks():
        for i in range(7):
            made.append(i)
            yield np.full((2, 4, 4, 3), i, np.uint8)
    fan_out(chunks(), [lambda parts, k=k: got[k].extend(int(p[0, 0, 0, 0]) for p in parts) for k in range(2)])
    assert made == list(range(7)) and got == [made, made]


def test_fan_out_stops_when_a_consumer_fails_and_tells_the_others_when_the_frames_stop():
    from reelforge.media.encode import FanOutAborted, fan_out
    aborted = []

    def broken(parts):
        next(iter(parts))
        raise OSError("disk full")

    def patient(parts):
        try:
            for _ in parts:
                pass
        except FanOutAborted:
            aborted.append(True)
            raise
    with pytest.raises(OSError, match="disk full"):
        fan_out((np.zeros((1, 2, 2, 3), np.uint8) for _ in range(100)), [broken, patient])
    assert aborted == [True]

    def failing():
        yield np.zeros((1, 2, 2, 3), np.uint8)
        raise ValueError("decoder broke")
    aborted.clear()
    with pytest.raises(ValueError, match="decoder broke"):
        fan_out(failing(), [patient])
    assert aborted == [True]


def test_relative_upscale_loss_is_each_runs_error_over_bicubics():
    from reelforge.training.enhance import _upscale_loss
    model = VideoUpscaler(UpscalerConfig(channels=8, blocks=1))  # zero tail: exactly bicubic
    gen = torch.Generator().manual_seed(0)
    low = torch.rand(2, 3, 3, 6, 6, generator=gen) - 0.5  # no overshoot past [-1, 1] to clamp
    high = torch.nn.functional.interpolate(low.flatten(0, 1), scale_factor=4, mode="bicubic").unflatten(0, (2, 3))
    high = high + 0.2 * torch.randn(high.shape, generator=gen)  # bicubic's error
    high[1] = 3 * high[1] - 2 * torch.nn.functional.interpolate(low[1], scale_factor=4, mode="bicubic")  # 9x the error
    plain, relative = _upscale_loss(model, low, high), _upscale_loss(model, low, high, relative=True)
    # Bicubic itself scores 1 on every run, however large its error there; plain error differs by run.
    assert relative.item() == pytest.approx(1.0, abs=0.02)
    assert plain.item() == pytest.approx(5 * 0.04, rel=0.1)


def test_from_keyframes_remakes_the_frames_between_latent_frames_first_frames():
    levels = [-0.8] + [-0.4] * 4 + [0.4] * 4 + [0.6] * 4  # a causal decoding: frame 0, then latent frames of 4
    video = torch.tensor(levels).view(1, 13, 1, 1).expand(3, 13, 8, 8).clone()
    fade = FrameInterpolator(InterpolatorConfig(channels=(8, 8, 8)))  # untrained: the cross-fade
    out = from_keyframes(video, 4, fade)
    means = out.mean((0, 2, 3))
    for key in (0, 1, 5, 9):
        assert torch.equal(out[:, key], video[:, key])
    assert torch.allclose(means[1:6], torch.linspace(-0.4, 0.4, 5), atol=1e-5)  # 1 -> 5 in even steps
    assert torch.equal(out[:, 10:], video[:, 10:])  # after the last key: as decoded
    jumps = video.mean((0, 2, 3)).diff().abs()
    assert jumps[4] == jumps.max() and out.mean((0, 2, 3)).diff()[1:].abs().max() < 0.5 * jumps[4]  # 0 -> 1: two keys


def test_smooth_seams_keeps_the_key_frames_and_needs_an_interpolator(tiny_model_dir, tmp_path, text_encoder):
    from reelforge.pipeline import CheckpointError, Pipeline, PipelineConfig
    from reelforge.training.checkpoint import save_weights
    from reelforge.training.export import export_model

    it_cfg = InterpolatorConfig(channels=(8, 8, 8))
    save_weights(_random_init(FrameInterpolator(it_cfg)), tmp_path / "it.safetensors", it_cfg.to_json())
    args = (tiny_model_dir / "transformer.safetensors", tiny_model_dir / "autoencoder.safetensors", tmp_path / "model")
    export_model(*args, PipelineConfig(name="tiny", steps=2), {"interpolator": tmp_path / "it.safetensors"})
    plain = Pipeline.from_pretrained(tmp_path / "model", text_encoder=text_encoder)("a red ball", seconds=1, seed=3)
    export_model(*args, PipelineConfig(name="tiny", steps=2, smooth_seams=True), {"interpolator": tmp_path / "it.safetensors"})
    smooth = Pipeline.from_pretrained(tmp_path / "model", text_encoder=text_encoder)("a red ball", seconds=1, seed=3)
    assert smooth.frames.shape == plain.frames.shape == (8, 64, 64, 3) and smooth.settings["smooth_seams"]
    assert np.array_equal(smooth.frames[[0, 1, 5]], plain.frames[[0, 1, 5]])
    assert not np.array_equal(smooth.frames[2:5], plain.frames[2:5])
    export_model(*args, PipelineConfig(name="tiny", steps=2, smooth_seams=True))  # no interpolator: named at loading
    with pytest.raises(CheckpointError, match="smooth_seams needs the learned frame interpolator"):
        Pipeline.from_pretrained(tmp_path / "model", text_encoder=text_encoder)


def test_window_join_runs_evenly_from_the_first_held_frame_to_the_first_new_one():
    held = np.zeros((5, 8, 8, 3), np.uint8)  # the video's last frames, held by the continuation
    redraw = np.full((6, 8, 8, 3), 100, np.uint8)  # its redraw of them, unlike the original...
    redraw[5] = 50  # ...and its first new frame
    fade = FrameInterpolator(InterpolatorConfig(channels=(8, 8, 8)))  # untrained: the cross-fade
    bridged = np.concatenate([join_windows(held, redraw, fade), redraw[5:]]).astype(int)[:, 0, 0, 0]
    assert bridged.tolist() == [0, 10, 20, 30, 40, 50]
    faded = np.concatenate([join_windows(held, redraw, None), redraw[5:]]).astype(int)[:, 0, 0, 0]
    assert faded.tolist() == [17, 33, 50, 67, 83, 50]  # without an interpolator: a jump into the new frames
    assert np.abs(np.diff(bridged)).max() < np.abs(np.diff(faded)).max()


def test_window_join_falls_back_to_the_fade_without_a_new_frame_and_keeps_a_single_held_frame():
    held, redraw = np.zeros((5, 4, 4, 3), np.uint8), np.full((5, 4, 4, 3), 60, np.uint8)  # no new frame
    fade = FrameInterpolator(InterpolatorConfig(channels=(8, 8, 8)))
    assert np.array_equal(join_windows(held, redraw, fade), join_windows(held, redraw, None))
    one = np.full((1, 4, 4, 3), 7, np.uint8)
    assert np.array_equal(join_windows(one, np.full((2, 4, 4, 3), 90, np.uint8), fade), one)
