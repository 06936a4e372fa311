import json

import numpy as np
import pytest
import torch

from reelforge.pipeline import CheckpointError, InputError, Pipeline, parse_size


def test_generates_requested_length_size_and_fps(tiny_pipeline):
    out = tiny_pipeline("a red ball rolls left", seconds=2, fps=12, size=(96, 54), seed=1)
    assert out.frames.shape == (24, 54, 96, 3) and out.frames.dtype == np.uint8
    assert out.settings["seed"] == 1 and out.settings["size"] == "96x54"


def test_same_seed_same_video_and_steps_are_reported(tiny_pipeline):
    seen = []
    a = tiny_pipeline("a blue star spins", seconds=1, seed=7, on_step=lambda i, t, x: seen.append((i, t)))
    b = tiny_pipeline("a blue star spins", seconds=1, seed=7)
    c = tiny_pipeline("a blue star spins", seconds=1, seed=8)
    assert np.array_equal(a.frames, b.frames) and not np.array_equal(a.frames, c.frames)
    assert [i for i, _ in seen] == [0, 1] and seen[0][1] > seen[1][1]


def test_negative_prompt_changes_the_result(tiny_pipeline):
    a = tiny_pipeline("a red square", seconds=1, seed=3)
    b = tiny_pipeline("a red square", seconds=1, seed=3, negative_prompt="a green circle")
    assert not np.array_equal(a.frames, b.frames)


def test_image_to_video_keeps_the_start_image(tiny_pipeline):
    image = np.zeros((64, 64, 3), np.uint8)
    out = tiny_pipeline("a red square", seconds=1, seed=3, image=image, guidance=1.0)
    assert out.frames.shape[0] == 8


def test_clean_context_gives_the_model_the_known_frames_at_t_zero(tiny_pipeline):
    from dataclasses import replace

    from reelforge.pipeline import Pipeline
    seen = []
    model = tiny_pipeline.transformer
    hook = model.register_forward_pre_hook(lambda m, args: seen.append(args[1].clone()))
    clean = Pipeline(model, tiny_pipeline.autoencoder, tiny_pipeline.text_encoder,
                     replace(tiny_pipeline.config, clean_context=True))
    try:
        out = clean("a red square", seconds=1, seed=3, image=np.zeros((64, 64, 3), np.uint8), guidance=1.0)
        tiny_pipeline("a red square", seconds=1, seed=3, image=np.zeros((64, 64, 3), np.uint8), guidance=1.0)
    finally:
        hook.remove()
    steps = tiny_pipeline.config.steps
    per_frame, shared = seen[:steps], seen[steps:]
    assert all(t.shape == (1, 3) and t[0, 0] == 0 and (t[0, 1:] > 0).all() for t in per_frame)
    assert all(t.shape == (1,) for t in shared)
    assert out.frames.shape[0] == 8


def test_extend_appends_the_continuation(tiny_pipeline):
    first = tiny_pipeline("a red square moves right", seconds=1, seed=3)
    longer = tiny_pipeline.extend(first.frames, first.fps, "a red square moves right", seconds=1, seed=4)
    assert longer.frames.shape[0] == first.frames.shape[0] + 8
    held = 5  # the last 1 + 4k frames of the last second are faded into the continuation's redraw
    assert np.array_equal(longer.frames[: len(first.frames) - held], first.frames[:-held])
    # The first held frame is still mostly the original.
    first_faded = longer.frames[len(first.frames) - held].astype(int)
    assert np.abs(first_faded - first.frames[-held]).mean() < np.abs(first_faded - longer.frames[-1]).mean() + 1


def test_extend_with_an_interpolator_bridges_from_the_first_held_frame_to_the_continuation(tiny_pipeline, monkeypatch):
    from reelforge.models.interpolator import FrameInterpolator, InterpolatorConfig
    monkeypatch.setattr(tiny_pipeline.enhancers, "interpolator", FrameInterpolator(InterpolatorConfig(channels=(8, 8, 8))))
    first = tiny_pipeline("a red square moves right", seconds=1, seed=3)
    longer = tiny_pipeline.extend(first.frames, first.fps, "a red square moves right", seconds=1, seed=4)
    held, start = 5, len(first.frames) - 5
    assert np.array_equal(longer.frames[:start + 1], first.frames[:start + 1])
    a, b = longer.frames[start].astype(float), longer.frames[start + held].astype(float)
    for i in range(1, held):  # the untrained interpolator cross-fades: the bridge is the straight blend
        assert np.abs(longer.frames[start + i] - ((1 - i / held) * a + i / held * b)).max() <= 1
    # A continuation too short for a frame of its own still joins (by the fade) and ends where asked.
    tiny = tiny_pipeline.extend(first.frames, first.fps, "a red square moves right", seconds=0.05, seed=4)
    assert len(tiny.frames) == len(first.frames)


@pytest.mark.parametrize("kwargs, message", [
    ({"prompt": "   "}, "prompt is empty"),
    ({"seconds": 0}, "seconds must be > 0"),
    ({"seconds": 1000}, "seconds must be > 0 and <= 8"),
    ({"fps": 0}, "fps must be between"),
    ({"steps": 0}, "steps must be between"),
    ({"sampler": "ddim"}, "unknown sampler 'ddim'"),
])
def test_bad_input_is_named(tiny_pipeline, kwargs, message):
    args = {"prompt": "a red ball", **kwargs}
    with pytest.raises(InputError, match=message):
        tiny_pipeline(**args)


def test_parse_size():
    assert parse_size("1920x1080") == (1920, 1080)
    for bad in ("big", "10x10", "4000x100", "64x"):
        with pytest.raises(InputError):
            parse_size(bad)


def test_missing_and_corrupt_checkpoints_are_named(tmp_path, tiny_model_dir, text_encoder):
    with pytest.raises(CheckpointError, match="does not exist"):
        Pipeline.from_pretrained(tmp_path / "nope", text_encoder=text_encoder)
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in tiny_model_dir.iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "transformer.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="corrupt"):
        Pipeline.from_pretrained(broken, text_encoder=text_encoder)
    (broken / "pipeline.json").write_text(json.dumps({"nonsense": 1}))
    with pytest.raises(CheckpointError, match="unknown pipeline config keys"):
        Pipeline.from_pretrained(broken, text_encoder=text_encoder)
    (broken / "pipeline.json").write_text(json.dumps({"guidance_interval": [0.9, 0.2]}))
    with pytest.raises(CheckpointError, match="guidance_interval must be"):
        Pipeline.from_pretrained(broken, text_encoder=text_encoder)
    (broken / "pipeline.json").write_text(json.dumps({"guidance_outside": 0.5}))
    with pytest.raises(CheckpointError, match="guidance_outside must be between 1 and guidance"):
        Pipeline.from_pretrained(broken, text_encoder=text_encoder)


def test_guidance_interval_skips_the_unconditional_pass_at_high_noise(tiny_model_dir, tmp_path, text_encoder):
    import shutil
    from dataclasses import replace
    model_dir = tmp_path / "limited"
    shutil.copytree(tiny_model_dir, model_dir)
    config = json.loads((model_dir / "pipeline.json").read_text())
    (model_dir / "pipeline.json").write_text(json.dumps({**config, "guidance_interval": [0.0, 0.5], "shift": 1.0}))
    pipe = Pipeline.from_pretrained(model_dir, text_encoder=text_encoder)
    assert pipe.config.guidance_interval == (0.0, 0.5)
    batches = []
    pipe.transformer.register_forward_hook(lambda module, args, out: batches.append(args[0].shape[0]))
    pipe("a red square", seconds=1, seed=0, steps=4, sampler="euler")
    # Euler's 4 levels at shift 1 are t = 1, 0.667, 0.334, 0.001: the two above 0.5 run the conditional branch alone.
    assert batches == [1, 1, 2, 2]
    pipe.config = replace(pipe.config, guidance_interval=(0.0, 1.0))
    batches.clear()
    pipe("a red square", seconds=1, seed=0, steps=4, sampler="euler")
    assert batches == [2, 2, 2, 2]


def test_noise_correlation_starts_every_latent_frame_from_a_shared_draw(tiny_pipeline):
    from dataclasses import replace
    starts = []
    hook = tiny_pipeline.transformer.register_forward_hook(lambda module, args, out: starts.append(args[0][-1]))

    def frame_correlation(correlation: float) -> float:
        config = tiny_pipeline.config
        tiny_pipeline.config = replace(config, noise_correlation=correlation)
        try:
            starts.clear()
            tiny_pipeline("a red square", seconds=2, seed=0, steps=2, sampler="euler")
        finally:
            tiny_pipeline.config = config
        frames = starts[0].float().transpose(0, 1).flatten(1)  # (T, C h w) of the first step's input: the noise
        return torch.corrcoef(frames[1:3])[0, 1].item()

    try:
        assert abs(frame_correlation(0.0)) < 0.2 and frame_correlation(0.9) > 0.75
    finally:
        hook.remove()
    with pytest.raises(ValueError, match=r"noise_correlation must be in \[0, 1\)"):
        replace(tiny_pipeline.config, noise_correlation=1.0)


def test_an_exported_guide_is_loaded_and_steers_only_the_high_noise_steps(tiny_model_dir, tmp_path, text_encoder):
    from dataclasses import replace

    from reelforge.models.transformer import VideoTransformer
    from reelforge.training.checkpoint import save_weights
    from reelforge.training.export import export_model, export_student
    plain = Pipeline.from_pretrained(tiny_model_dir, text_encoder=text_encoder)
    guide = VideoTransformer(plain.transformer.cfg)  # a weaker model: zero-started output, all velocities 0
    save_weights(guide, tmp_path / "guide.safetensors", plain.transformer.cfg.to_json())
    config = replace(plain.config, shift=1.0, autoguidance=2.0, autoguidance_interval=(0.5, 1.0),
                     guide="guide.safetensors")
    parts = (tiny_model_dir / "transformer.safetensors", tiny_model_dir / "autoencoder.safetensors")
    with pytest.raises(ValueError, match="autoguidance and a guide checkpoint go together"):
        export_model(*parts, tmp_path / "model", config)
    out = export_model(*parts, tmp_path / "model", config, {"guide": tmp_path / "guide.safetensors"})
    export_model(out / "transformer.safetensors", out / "autoencoder.safetensors", out, config,
                 {"guide": out / "guide.safetensors"})  # re-exported in place, from its own files
    pipe = Pipeline.from_pretrained(out, text_encoder=text_encoder)
    assert pipe.guide is not None and pipe.config.autoguidance_interval == (0.5, 1.0)
    calls = []
    pipe.guide.register_forward_hook(lambda module, args, output: calls.append(args[1].max().item()))
    guided_video = pipe("a red square", seconds=1, seed=0, steps=4, sampler="euler")
    guided = guided_video.frames
    assert guided_video.settings["autoguidance"] == 2.0  # recorded with the output, as every setting is
    assert calls == pytest.approx([1.0, 0.75, 0.5])  # of Euler's four levels 1, 0.75, 0.5, 0.25
    guide, pipe.guide = pipe.guide, None
    assert not np.array_equal(guided, pipe("a red square", seconds=1, seed=0, steps=4, sampler="euler").frames)
    pipe.guide = guide
    export_student(out / "transformer.safetensors", out, "tiny-turbo", 2, "euler", 1.0)
    student = pipe.turbo()  # the student learnt the guided result: it runs without the guide
    assert (student.guide, student.config.guide, student.config.autoguidance) == (None, "", 1.0)
    assert "autoguidance" not in student("a red square", seconds=1, seed=0).settings
    wide = replace(plain.transformer.cfg, in_channels=8)  # a guide for another latent space
    save_weights(VideoTransformer(wide), out / "guide.safetensors", wide.to_json())
    with pytest.raises(CheckpointError, match="guide .* does not fit the transformer"):
        Pipeline.from_pretrained(out, text_encoder=text_encoder)
    (out / "pipeline.json").write_text(json.dumps({"autoguidance": 2.0}))
    with pytest.raises(CheckpointError, match="autoguidance needs a guide checkpoint"):
        Pipeline.from_pretrained(out, text_encoder=text_encoder)


@pytest.mark.parametrize("args, message", [
    (["--autoguidance", "2"], "--guide and --autoguidance W"),
    (["--guide", "g.safetensors"], "--guide and --autoguidance W"),
    (["--autoguidance-interval", "0.8", "1"], "--autoguidance-interval needs --guide"),
    (["--verifier-guidance", "1"], "--verifier and --verifier-guidance W (W > 0) go together"),
    (["--verifier", "v.safetensors"], "--verifier and --verifier-guidance W (W > 0) go together"),
    (["--verifier-guidance-interval", "0.4", "0.9"], "--verifier-guidance-interval needs --verifier"),
    (["--smooth-seams", "--interpolator", "none"], "--smooth-seams needs the learned frame interpolator"),
])
def test_export_names_the_flags_that_go_together(tmp_path, args, message):
    from click.testing import CliRunner

    from reelforge.cli import main
    result = CliRunner().invoke(main, ["export", "--out", str(tmp_path / "model"), *args])
    assert result.exit_code == 2 and message in result.output and not (tmp_path / "model").exists()


@pytest.mark.parametrize("sampler", ["euler", "heun", "unipc", "stagger"])
def test_every_sampler_generates_and_extends(tiny_pipeline, sampler):
    out = tiny_pipeline("a red square", seconds=1, seed=3, sampler=sampler)
    assert out.frames.shape == (8, 64, 64, 3) and out.settings["sampler"] == sampler
    longer = tiny_pipeline.extend(out.frames, out.fps, "a red square", seconds=1, seed=4, sampler=sampler)
    assert longer.frames.shape[0] == 16


def test_a_verifier_steers_only_prompts_that_name_its_factors_and_not_the_turbo_student(tiny_model_dir, tmp_path,
                                                                                        text_encoder):
    from dataclasses import replace

    from reelforge.models.verifier import LatentVerifier, VerifierConfig
    from reelforge.training.checkpoint import save_weights
    from reelforge.training.export import export_model, export_student
    plain = Pipeline.from_pretrained(tiny_model_dir, text_encoder=text_encoder)
    torch.manual_seed(1)
    verifier_cfg = VerifierConfig(in_channels=4, width=8)
    save_weights(LatentVerifier(verifier_cfg), tmp_path / "verifier.safetensors", verifier_cfg.to_json())
    config = replace(plain.config, verifier="verifier.safetensors", verifier_guidance=2.0,
                     verifier_guidance_interval=(0.0, 1.0))
    parts = (tiny_model_dir / "transformer.safetensors", tiny_model_dir / "autoencoder.safetensors")
    with pytest.raises(ValueError, match="verifier guidance needs a verifier checkpoint"):
        export_model(*parts, tmp_path / "model", config)
    out = export_model(*parts, tmp_path / "model", config, {"verifier": tmp_path / "verifier.safetensors"})
    pipe = Pipeline.from_pretrained(out, text_encoder=text_encoder)
    assert pipe.verifier is not None and pipe.config.verifier_guidance == 2.0
    # A prompt that names only what is not steered (size, speed) is not steered either.
    prompt, elsewhere = "a red ball rolls left on a blue background", "a large cat sleeps quickly"
    steered, cat = (pipe(p, seconds=1, seed=4) for p in (prompt, elsewhere))
    assert steered.settings["verifier_guidance"] == 2.0 and "verifier_guidance" not in cat.settings
    pipe.config = replace(pipe.config, verifier_guidance=0.0)
    assert not np.array_equal(steered.frames, pipe(prompt, seconds=1, seed=4).frames)
    assert np.array_equal(cat.frames, pipe(elsewhere, seconds=1, seed=4).frames)  # nothing to steer by
    export_student(out / "transformer.safetensors", out, "tiny-turbo", 2, "euler", 1.0)
    student = pipe.turbo()
    # Steering hurt the student; it does not even name the teacher's verifier, so re-exporting the teacher
    # without one cannot leave it pointing at a removed file.
    assert student.verifier is None and (student.config.verifier, student.config.verifier_guidance) == ("", 0.0)
    assert "verifier_guidance" not in student(prompt, seconds=1, seed=4).settings
    wide = VerifierConfig(in_channels=8, width=8)  # a verifier of another latent space
    save_weights(LatentVerifier(wide), out / "verifier.safetensors", wide.to_json())
    with pytest.raises(CheckpointError, match="verifier .* reads 8 latent channels; the autoencoder makes 4"):
        Pipeline.from_pretrained(out, text_encoder=text_encoder)
    (out / "pipeline.json").write_text(json.dumps({"verifier_guidance": 1.0}))
    with pytest.raises(CheckpointError, match="verifier guidance needs a verifier checkpoint"):
        Pipeline.from_pretrained(out, text_encoder=text_encoder)
