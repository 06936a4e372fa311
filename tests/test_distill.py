"""Turbo distillation (training/distill.py) on tiny models: the pairs are the teacher's own output,
the student straightens the teacher's paths, and a shipped student loads beside its teacher."""
import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from reelforge.cli import main
from reelforge.flow.samplers import denoise, make_scheduler
from reelforge.models.transformer import TransformerConfig, VideoTransformer
from reelforge.pipeline import CheckpointError, Pipeline, load_module
from reelforge.training.config import DistillConfig
from reelforge.training.distill import (load_pairs, load_plans, make_pairs, plan_bias, replan, teacher_latents,
                                       train_student)
from reelforge.training.export import export_student
from reelforge.world.splits import is_held_out
from reelforge.world.factors import ClipFactors


@pytest.fixture()
def teacher_dir(tiny_model_dir, tmp_path):
    path = tmp_path / "teacher"
    shutil.copytree(tiny_model_dir, path)
    return path


def tiny_config(teacher_dir, tmp_path, **overrides):
    base = dict(teacher=str(teacher_dir), pairs_dir=str(tmp_path / "pairs"), run_dir=str(tmp_path / "student"),
                buckets=((32, 32, 1.0),), latent_frames=((3, 1.0),), pair_chunks=2, chunk=8, teacher_steps=12,
                steps=4, batch_size=8, warmup=1, checkpoint_every=2, log_every=2, lr=1e-3)
    return DistillConfig(**{**base, **overrides})


def test_pairs_are_the_teachers_guided_output_on_training_prompts_and_are_not_remade(teacher_dir, tmp_path,
                                                                                     text_encoder):
    cfg = tiny_config(teacher_dir, tmp_path)
    out = make_pairs(cfg)
    chunks = load_pairs(out)
    assert len(chunks) == 2 and all(n.shape == (8, 4, 3, 8, 8) for n, _, _ in chunks)
    noise, latents, captions = chunks[0]
    teacher = load_module(VideoTransformer, TransformerConfig, teacher_dir / "transformer.safetensors")
    again = teacher_latents(teacher, text_encoder, captions, noise.float(), 12, 2.0, "unipc", 2.0)
    assert torch.allclose(again.half().float(), latents.float(), atol=2e-2)
    assert (latents.float() - noise.float()).abs().mean() > 0.1  # the sampler moved them
    first = (out / "chunk_00000.safetensors").stat().st_mtime_ns
    make_pairs(cfg)  # resumable: finished chunks are kept as they are
    assert (out / "chunk_00000.safetensors").stat().st_mtime_ns == first


def give_a_guide(teacher_dir) -> tuple[VideoTransformer, VideoTransformer]:
    """Make the teacher sample with autoguidance 2 at t in [0.5, 1] by a guide that knows nothing (a
    zero-started output); the teacher and the guide."""
    from reelforge.training.checkpoint import save_weights
    teacher = load_module(VideoTransformer, TransformerConfig, teacher_dir / "transformer.safetensors")
    guide = VideoTransformer(teacher.cfg)
    save_weights(guide, teacher_dir / "guide.safetensors", teacher.cfg.to_json())
    config = json.loads((teacher_dir / "pipeline.json").read_text())
    (teacher_dir / "pipeline.json").write_text(json.dumps({**config, "guide": "guide.safetensors", "autoguidance": 2.0,
                                                           "autoguidance_interval": [0.5, 1.0]}))
    return teacher, guide


def test_pairs_of_an_autoguided_teacher_are_made_with_its_guide(teacher_dir, tmp_path, text_encoder):
    teacher, guide = give_a_guide(teacher_dir)
    noise, latents, captions = load_pairs(make_pairs(tiny_config(teacher_dir, tmp_path, teacher_steps=2,
                                                                 pair_chunks=1)))[0]
    guided = teacher_latents(teacher, text_encoder, captions, noise.float(), 2, 2.0, "unipc", 2.0,
                             guide=guide.eval(), guide_weight=2.0, guide_interval=(0.5, 1.0))
    plain = teacher_latents(teacher, text_encoder, captions, noise.float(), 2, 2.0, "unipc", 2.0)
    # Made under bf16 autocast and stored in fp16: the same within rounding, and far from the unguided result.
    assert (guided - latents.float()).abs().max() < 0.1 < 1.0 < (plain - latents.float()).abs().max()


def test_pair_prompts_come_from_the_training_split_only(teacher_dir, tmp_path):
    from safetensors import safe_open
    cfg = tiny_config(teacher_dir, tmp_path, pair_chunks=1, chunk=16, teacher_steps=1)
    out = make_pairs(cfg)
    with safe_open(str(out / "chunk_00000.safetensors"), "pt") as f:
        factors = [ClipFactors.from_dict(d) for d in json.loads(f.metadata()["factors"])]
    assert len(factors) == 16 and not any(is_held_out(f) for f in factors)


def sample(model, text_encoder, captions, noise, steps, guidance):
    return teacher_latents(model, text_encoder, captions, noise, steps, guidance, "euler", 1.0)


def test_student_lands_nearer_the_teachers_result_in_two_steps_than_the_teacher_does(teacher_dir, tmp_path,
                                                                                    text_encoder):
    torch.manual_seed(0)
    cfg = tiny_config(teacher_dir, tmp_path, pair_chunks=1, chunk=8, steps=150, lr=2e-3, ema_decay=0.9,
                      frame_t_prob=0.0)
    make_pairs(cfg)
    noise, latents, captions = load_pairs(cfg.pairs_dir)[0]
    noise, latents = noise.float(), latents.float()
    teacher = load_module(VideoTransformer, TransformerConfig, teacher_dir / "transformer.safetensors")
    teacher_error = (sample(teacher, text_encoder, captions, noise, 2, 2.0) - latents).pow(2).mean()
    student = load_module(VideoTransformer, TransformerConfig, train_student(cfg))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        text = text_encoder(captions)
        out = denoise(lambda x, t: student(x, t, text_tokens=text.tokens, text_mask=text.mask,
                                           text_pooled=text.pooled).float(),
                      noise.clone(), make_scheduler("euler", 2, 1.0))
    student_error = (out.float() - latents).pow(2).mean()
    assert student_error < 0.5 * teacher_error, (student_error, teacher_error)


def test_student_training_resumes_where_it_stopped(teacher_dir, tmp_path):
    cfg = tiny_config(teacher_dir, tmp_path, teacher_steps=1, pair_chunks=1)
    make_pairs(cfg)
    train_student(cfg)
    state = json.loads((tmp_path / "student" / "state.json").read_text())
    assert state["step"] == 4
    lines = []
    train_student(tiny_config(teacher_dir, tmp_path, teacher_steps=1, pair_chunks=1, steps=6), lines.append)
    assert any("resumed from step 4" in line for line in lines)
    assert json.loads((tmp_path / "student" / "state.json").read_text())["step"] == 6


def test_a_second_round_starts_from_the_last_student_and_follows_the_teachers_guidance_interval(
        teacher_dir, tmp_path, text_encoder):
    from safetensors.torch import load_file

    first = tiny_config(teacher_dir, tmp_path, teacher_steps=1, pair_chunks=1)
    make_pairs(first)
    train_student(first)
    config = json.loads((teacher_dir / "pipeline.json").read_text())
    (teacher_dir / "pipeline.json").write_text(json.dumps({**config, "guidance_interval": [0.0, 0.5]}))
    second = tiny_config(teacher_dir, tmp_path, teacher_steps=2, pair_chunks=1, steps=1, lr=0.0, pairs_dir=str(tmp_path / "pairs2"),
                         run_dir=str(tmp_path / "student2"), init_from=str(tmp_path / "student" / "ema.safetensors"))
    noise, latents, captions = load_pairs(make_pairs(second))[0]
    teacher = load_module(VideoTransformer, TransformerConfig, teacher_dir / "transformer.safetensors")
    limited = teacher_latents(teacher, text_encoder, captions, noise.float(), 2, 2.0, "unipc", 2.0, (0.0, 0.5))
    everywhere = teacher_latents(teacher, text_encoder, captions, noise.float(), 2, 2.0, "unipc", 2.0)
    assert torch.allclose(limited.half().float(), latents.float(), atol=2e-2)
    assert not torch.allclose(everywhere, limited, atol=1e-3)
    student = load_file(str(train_student(second)))  # at lr 0: the starting weights as they were
    start = load_file(str(tmp_path / "student" / "ema.safetensors"))
    assert all(torch.equal(student[k], start[k]) for k in start)


def test_exported_student_loads_beside_its_teacher_and_shares_its_parts(teacher_dir, tmp_path, text_encoder):
    base = Pipeline.from_pretrained(teacher_dir, text_encoder=text_encoder)
    assert not base.has_turbo
    with pytest.raises(CheckpointError, match="no distilled turbo student"):
        Pipeline.from_pretrained(teacher_dir, text_encoder=text_encoder, turbo=True)
    export_student(teacher_dir / "transformer.safetensors", teacher_dir, "tiny-turbo", 2, "euler", 1.0)
    turbo = Pipeline.from_pretrained(teacher_dir, text_encoder=text_encoder, turbo=True)
    assert (turbo.config.name, turbo.config.steps, turbo.config.guidance) == ("tiny-turbo", 2, 1.0)
    shared = base.turbo()
    assert shared.autoencoder is base.autoencoder and shared.config == turbo.config and base.turbo() is shared
    video = shared("a red ball rolls left", seconds=1, seed=3)
    assert video.settings["model"] == "tiny-turbo" and video.settings["guidance"] == 1.0


def test_cli_turbo_without_a_student_is_one_clear_error(teacher_dir, tmp_path):
    result = CliRunner().invoke(main, ["generate", "a red ball", "-o", str(tmp_path / "x.mp4"), "--model",
                                       str(teacher_dir), "--turbo"])
    assert result.exit_code == 2 and "no distilled turbo student" in result.output
    assert not (tmp_path / "x.mp4").exists()


def test_adversarial_distillation_trains_a_discriminator_on_bank_clips_moves_the_student_and_resumes(
        teacher_dir, tmp_path):
    from reelforge.training.bank import build_bank
    from reelforge.training.config import BankConfig

    bank = BankConfig(run_dir=str(tmp_path / "bank"), autoencoder=str(teacher_dir / "autoencoder.safetensors"),
                      sizes=((32, 32, 8),), num_frames=9, chunk=8, max_start=2.0)
    build_bank(bank)
    plain = tiny_config(teacher_dir, tmp_path, teacher_steps=1, pair_chunks=1, run_dir=str(tmp_path / "plain"))
    make_pairs(plain)
    train_student(plain)
    adversarial = tiny_config(teacher_dir, tmp_path, teacher_steps=1, pair_chunks=1, adversarial_weight=1.0,
                              bank=bank.run_dir, disc_width=8)
    trains_beside_the_student(adversarial, tmp_path / "plain", "discriminator", (" disc ", " student logit "),
                              "discriminator resumed")


def trains_beside_the_student(cfg, plain_dir, companion: str, logged: tuple[str, ...], resumed: str) -> dict:
    """Train `cfg`'s student with a network beside it (saved as COMPANION.safetensors): it is logged, it
    makes the student differ from the plain one of the same seed, pairs and batches, and it resumes and
    trains on. Its first weights."""
    from safetensors.torch import load_file

    lines = []
    train_student(cfg, lines.append)
    run = Path(cfg.run_dir)
    assert any(all(word in line for word in logged) for line in lines)
    first = load_file(str(run / f"{companion}.safetensors"))
    a, b = load_file(str(plain_dir / "model.safetensors")), load_file(str(run / "model.safetensors"))
    assert any(not torch.equal(a[k], b[k]) for k in a)
    lines = []
    train_student(dataclasses.replace(cfg, steps=6), lines.append)
    assert resumed in lines
    again = load_file(str(run / f"{companion}.safetensors"))
    assert any(not torch.equal(first[k], again[k]) for k in first)
    return first


def test_distribution_matching_trains_a_fake_model_moves_the_student_and_resumes(teacher_dir, tmp_path):
    from safetensors.torch import load_file

    plain = tiny_config(teacher_dir, tmp_path, teacher_steps=1, pair_chunks=1, run_dir=str(tmp_path / "plain"))
    make_pairs(plain)
    train_student(plain)
    matched = dataclasses.replace(plain, run_dir=str(tmp_path / "dmd"), dmd_weight=1.0)
    first = trains_beside_the_student(matched, tmp_path / "plain", "fake", (" fake ", " gap "),
                                      "fake score model resumed")
    teacher = load_file(str(teacher_dir / "transformer.safetensors"))
    assert any(not torch.equal(first[k], teacher[k].float()) for k in first)  # trained, from the teacher's weights


def test_matching_towards_verifier_guidance_needs_a_teacher_that_samples_with_it(teacher_dir, tmp_path):
    cfg = tiny_config(teacher_dir, tmp_path, teacher_steps=1, pair_chunks=1, dmd_weight=1.0, dmd_verifier=True)
    make_pairs(cfg)
    with pytest.raises(ValueError, match="dmd_verifier needs a teacher that samples with verifier guidance"):
        train_student(cfg)


def test_matching_towards_autoguidance_needs_a_teacher_that_samples_with_a_guide(teacher_dir, tmp_path):
    cfg = tiny_config(teacher_dir, tmp_path, teacher_steps=1, pair_chunks=1, dmd_weight=1.0, dmd_autoguidance=True)
    make_pairs(cfg)
    with pytest.raises(ValueError, match="dmd_autoguidance needs a teacher that samples with autoguidance"):
        train_student(cfg)
    give_a_guide(teacher_dir)
    lines = []
    train_student(cfg, lines.append)
    assert any(" fake " in line for line in lines) and (Path(cfg.run_dir) / "fake.safetensors").exists()


def test_adversarial_distillation_can_take_the_teachers_outputs_as_the_real_clips(teacher_dir, tmp_path):
    cfg = tiny_config(teacher_dir, tmp_path, teacher_steps=1, pair_chunks=1, adversarial_weight=1.0,
                      adversarial_real="teacher", bank=str(tmp_path / "no_bank"), disc_width=8)
    make_pairs(cfg)
    lines = []
    train_student(cfg, lines.append)  # no bank needed
    assert (tmp_path / "student" / "discriminator.safetensors").exists()
    assert any(" disc " in line for line in lines)


def test_an_unknown_source_of_real_clips_is_refused_when_the_config_is_made(teacher_dir, tmp_path):
    from reelforge.training.config import ConfigError

    with pytest.raises(ConfigError, match="adversarial_real must be 'bank' or 'teacher'"):
        tiny_config(teacher_dir, tmp_path, adversarial_real="web")


def test_pairs_longer_than_the_bank_clips_are_judged_on_their_first_frames_and_a_missing_size_is_named(
        teacher_dir, tmp_path):
    from reelforge.training.bank import build_bank
    from reelforge.training.config import BankConfig

    short = BankConfig(run_dir=str(tmp_path / "bank"), autoencoder=str(teacher_dir / "autoencoder.safetensors"),
                       sizes=((32, 32, 8),), num_frames=5, chunk=8, max_start=2.0)  # 2 latent frames
    build_bank(short)
    cfg = tiny_config(teacher_dir, tmp_path, teacher_steps=1, pair_chunks=1, adversarial_weight=1.0,
                      bank=short.run_dir, disc_width=8)  # pairs of 3 latent frames
    make_pairs(cfg)
    train_student(cfg)
    assert (tmp_path / "student" / "discriminator.safetensors").exists()
    other = tiny_config(teacher_dir, tmp_path, teacher_steps=1, pair_chunks=1, adversarial_weight=1.0,
                        bank=short.run_dir, buckets=((48, 32, 1.0),), pairs_dir=str(tmp_path / "pairs48"),
                        run_dir=str(tmp_path / "student48"))
    make_pairs(other)
    with pytest.raises(ValueError, match="has no 48x32 clips"):
        train_student(other)


def _layout_teacher(teacher_dir):
    config = json.loads((teacher_dir / "pipeline.json").read_text())
    (teacher_dir / "pipeline.json").write_text(json.dumps({**config, "layout_guidance": 4.0,
                                                           "layout_interval": [0.0, 1.0]}))
    return Pipeline.from_pretrained(teacher_dir)


def test_pipeline_pairs_are_the_users_clips_with_their_seeds_and_planned_paths(teacher_dir, tmp_path):
    from safetensors import safe_open
    pipe = _layout_teacher(teacher_dir)
    cfg = tiny_config(teacher_dir, tmp_path, pair_chunks=1, chunk=6, teacher_pipeline=True, buckets=((64, 64, 1.0),))
    out = make_pairs(cfg)
    noise, latents, captions = load_pairs(out)[0]
    (cells, planned), = load_plans(out)
    with safe_open(str(out / "chunk_00000.safetensors"), "pt") as f:
        seeds = json.loads(f.metadata()["seeds"])
    assert noise.shape == latents.shape == (6, 4, 3, 16, 16) and cells.shape == (6, 3 * 4 * 4)
    for i in range(6):  # each pair is what a user asking for that caption and seed gets
        again_noise, again, settings = pipe.sample_latents(captions[i], seconds=1.0, size=(64, 64), seed=seeds[i])
        assert torch.allclose(again_noise.half(), noise[i:i + 1]) and torch.allclose(again.half(), latents[i:i + 1])
        assert planned[i] == ("layout_guidance" in settings)
        assert (cells[i].sum() > 0) == planned[i]  # a steered clip's path is stored, an unsteered one's is empty
    assert any(planned)


def test_student_sees_the_layout_bias_only_on_steered_pairs_inside_its_interval(text_encoder):
    cells = torch.zeros(3, 4)
    cells[:, 0] = 1.0  # the path covers the first token
    captions = ["a red ball moves left on a blue background"] * 3
    t = torch.tensor([0.9, 0.9, 0.2])
    bias = plan_bias(text_encoder.tokenizer, (cells, [True, False, True]), [0, 1, 2], captions, t, 16, 4.0, (0.4, 1.0))
    assert bias.shape == (3, 4, 16)
    assert bias[0, 0].max() == 4.0 and bias[0, 1].min() == -4.0  # on the path: the object's words; off it: not
    assert (bias[1] == 0).all()  # not steered by the teacher
    assert (bias[2] == 0).all()  # noise level below the interval, as in sampling
    assert plan_bias(text_encoder.tokenizer, (cells, [False] * 3), [0, 1], captions, t, 16, 4.0, (0.4, 1.0)) is None


def test_a_layout_student_trains_on_pipeline_pairs_and_refuses_pairs_without_paths(teacher_dir, tmp_path):
    _layout_teacher(teacher_dir)
    cfg = tiny_config(teacher_dir, tmp_path, pair_chunks=1, chunk=8, teacher_pipeline=True, layout_guidance=4.0,
                      steps=2, buckets=((64, 64, 1.0),))
    make_pairs(cfg)
    student = load_module(VideoTransformer, TransformerConfig, train_student(cfg))
    unbiased = load_module(VideoTransformer, TransformerConfig, train_student(
        dataclasses.replace(cfg, layout_guidance=0.0, run_dir=str(tmp_path / "unbiased"))))
    # Same pairs, batches and noise: only the bias differs, and it reaches the weights.
    assert any(not torch.equal(a, b) for a, b in zip(student.parameters(), unbiased.parameters()))
    with pytest.raises(ValueError, match="use its buckets"):
        make_pairs(dataclasses.replace(cfg, buckets=((32, 32, 1.0),), pairs_dir=str(tmp_path / "wrong")))
    plain = tiny_config(teacher_dir, tmp_path, pair_chunks=1, teacher_steps=1, pairs_dir=str(tmp_path / "plain"),
                        run_dir=str(tmp_path / "plain_student"), layout_guidance=4.0)
    make_pairs(plain)
    with pytest.raises(ValueError, match="teacher_pipeline"):
        train_student(plain)


def test_a_real_score_with_a_finer_patch_gets_each_pairs_path_replanned_at_its_own_tokens(teacher_dir, tmp_path):
    from reelforge.models.transformer import resize_patch_weights
    from reelforge.training.checkpoint import save_weights

    _layout_teacher(teacher_dir)
    coarse_path = tmp_path / "coarse" / "transformer.safetensors"
    cfg = tiny_config(teacher_dir, tmp_path, pair_chunks=1, chunk=8, teacher_pipeline=True, layout_guidance=4.0,
                      steps=2, buckets=((64, 64, 1.0),), dmd_weight=1.0, init_from=str(coarse_path))
    make_pairs(cfg)  # by the teacher at its (1, 4, 4) patch; then the real score moves to (1, 2, 2)
    coarse = load_module(VideoTransformer, TransformerConfig, teacher_dir / "transformer.safetensors")
    save_weights(coarse, coarse_path, coarse.cfg.to_json())
    fine_cfg = dataclasses.replace(coarse.cfg, patch=(1, 2, 2), rope_patch=(1, 4, 4))
    fine = VideoTransformer(fine_cfg)
    fine.load_state_dict(resize_patch_weights(coarse.state_dict(), coarse.cfg.patch, fine_cfg.patch))
    save_weights(fine, teacher_dir / "transformer.safetensors", fine_cfg.to_json())

    (stored, planned), = load_plans(cfg.pairs_dir)
    (fine_cells, replanned), = replan(cfg.pairs_dir, Pipeline.from_pretrained(teacher_dir))
    assert replanned == planned and any(planned) and fine_cells.shape == (8, 3 * 8 * 8)
    # Each coarse token's share of the path is the mean of its four fine tokens' shares.
    pooled = torch.nn.functional.avg_pool2d(fine_cells.view(8 * 3, 1, 8, 8), 2).view(8, -1)
    assert torch.allclose(pooled, stored) and not torch.equal(fine_cells.view(8, 3, 8, 8)[..., ::2, ::2],
                                                              fine_cells.view(8, 3, 8, 8)[..., 1::2, 1::2])
    lines = []
    student = load_module(VideoTransformer, TransformerConfig, train_student(cfg, lines.append))
    assert "layout plans redrawn at the real score's patch (1, 2, 2)" in lines
    assert student.cfg.patch == (1, 4, 4)  # the student keeps its own tokens


def test_a_student_exported_beside_a_teacher_with_guidance_outside_its_interval_loads(teacher_dir, text_encoder):
    config = json.loads((teacher_dir / "pipeline.json").read_text())
    (teacher_dir / "pipeline.json").write_text(json.dumps({**config, "guidance": 5.0, "guidance_outside": 2.0}))
    export_student(teacher_dir / "transformer.safetensors", teacher_dir, "tiny-turbo", 4, "euler", 1.0, 4.0)
    turbo = Pipeline.from_pretrained(teacher_dir, text_encoder=text_encoder, turbo=True)
    # The student runs one pass per step: no guidance inside the interval, none outside it either.
    assert (turbo.config.guidance, turbo.config.guidance_outside, turbo.config.layout_guidance) == (1.0, 1.0, 4.0)
