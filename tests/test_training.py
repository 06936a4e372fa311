"""Training plumbing on tiny configs: the latent bank, object masks, weighted flow loss, init and resume."""
import dataclasses
import json
import random
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from reelforge.flow.objective import flow_loss
from reelforge.models.transformer import TransformerConfig, VideoTransformer
from reelforge.training.bank import build_bank, load_bank
from reelforge.training.config import BankConfig, ConfigError, TransformerTrainConfig
from reelforge.training.data import draw_clip
from reelforge.training.loop import _param_groups, train_transformer
from reelforge.training.masks import latent_object_mask, object_loss_weight
from reelforge.training.step import set_lr
from reelforge.world.factors import WorldError
from reelforge.world.render import render


def _object_pixels(factors, start, width, height):
    """Pixels whose colour changes when the objects are recoloured: where the objects really are."""
    recolour = ["white" if o.color != "white" else "black" for o in factors.objects]
    other = dataclasses.replace(factors, objects=tuple(dataclasses.replace(o, color=c)
                                                       for o, c in zip(factors.objects, recolour)))
    a = render(factors, width, height, 8.0, 33, start_time=start).astype(int)
    b = render(other, width, height, 8.0, 33, start_time=start).astype(int)
    return np.abs(a - b).sum(-1) > 30  # (33, H, W)


@pytest.mark.parametrize("size", [(64, 64), (112, 64), (64, 112)])
def test_object_mask_covers_every_object_pixel_and_not_the_whole_frame(size):
    width, height = size
    rng, checked = random.Random(3), 0
    while checked < 12:
        factors, start, _ = draw_clip(rng, 0.3, 2.0)
        try:
            pixels = _object_pixels(factors, start, width, height)
        except WorldError:  # recolouring two objects the same: skip that clip
            continue
        checked += 1
        mask = latent_object_mask(factors, start, width, height, 8.0, 9).numpy()
        per_latent = np.concatenate([pixels[:1], pixels[1:].reshape(8, 4, height, width).any(1)])
        cells = per_latent.reshape(9, height // 4, 4, width // 4, 4).any((2, 4))
        assert not (cells & ~mask).any()
        assert mask.mean() < 0.6


def test_weighted_flow_loss_counts_weighted_cells_more():
    x0, noise = torch.zeros(1, 1, 1, 2, 2), torch.zeros(1, 1, 1, 2, 2)
    model = lambda x, t: torch.tensor([[[[[1.0, 0.0], [0.0, 0.0]]]]])  # noqa: E731 - error in one cell only
    t = torch.tensor([0.5])
    plain = flow_loss(model, x0, t, noise)
    weight = torch.tensor([[[[[5.0, 1.0], [1.0, 1.0]]]]])
    assert plain.item() == pytest.approx(0.25)
    assert flow_loss(model, x0, t, noise, weight).item() == pytest.approx(5 / 8)


@pytest.fixture(scope="module")
def tiny_bank(tmp_path_factory, tiny_model_dir):
    cfg = BankConfig(run_dir=str(tmp_path_factory.mktemp("bank")), autoencoder=str(tiny_model_dir / "autoencoder.safetensors"),
                     sizes=((64, 64, 8),), num_frames=9, chunk=4, max_start=2.0)
    build_bank(cfg)
    return cfg


def test_bank_records_start_times_and_backfills_old_chunks(tiny_bank):
    chunk = sorted((Path(tiny_bank.run_dir) / "64x64").glob("chunk_*"))[0]
    with safe_open(str(chunk), "pt") as f:
        meta = f.metadata()
    starts = json.loads(meta["starts"])
    assert len(starts) == 4 and all(0 <= s <= 2.0 for s in starts) and len(set(starts)) == 4
    save_file(load_file(str(chunk)), str(chunk), metadata={"factors": meta["factors"]})  # an old chunk
    build_bank(tiny_bank)
    with safe_open(str(chunk), "pt") as f:
        assert json.loads(f.metadata()["starts"]) == starts
    latents, factors, bank_starts = load_bank(tiny_bank.run_dir)["64x64"]
    assert latents.shape[0] == len(factors) == len(bank_starts) == 8


def test_backfill_refuses_a_bank_built_with_another_config(tiny_bank):
    chunk = sorted((Path(tiny_bank.run_dir) / "64x64").glob("chunk_*"))[0]
    with safe_open(str(chunk), "pt") as f:
        meta = f.metadata()
    save_file(load_file(str(chunk)), str(chunk), metadata={"factors": meta["factors"]})
    with pytest.raises(ValueError, match="another config"):
        build_bank(dataclasses.replace(tiny_bank, seed=tiny_bank.seed + 1))
    build_bank(tiny_bank)  # the right config restores it


def test_training_with_object_weight_runs_resumes_and_starts_from_given_weights(tiny_bank, tiny_model_dir, tmp_path):
    model = json.loads((tiny_model_dir / "transformer.json").read_text())
    cfg = TransformerTrainConfig(run_dir=str(tmp_path / "run"), bank=tiny_bank.run_dir, steps=3, batch_size=2, warmup=1,
                                 checkpoint_every=2, log_every=1, object_weight=4.0, frame_t_prob=1.0, model=model,
                                 autoencoder=tiny_bank.autoencoder,
                                 init_from=str(tiny_model_dir / "transformer.safetensors"))
    lines = []
    train_transformer(cfg, lines.append)
    assert any("initialised from" in line for line in lines)
    losses = [float(line.split("loss ")[1].split()[0]) for line in lines if line.startswith("step ")]
    assert len(losses) == 3 and all(np.isfinite(losses))
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["step"] == 3
    more, lines = dataclasses.replace(cfg, steps=4), []
    train_transformer(more, lines.append)
    assert any("resumed from step 3" in line for line in lines)
    assert [line for line in lines if line.startswith("step ")][0].startswith("step 4/4")
    # init_from really seeded the run: the first checkpoint sits near the given weights, not a fresh init
    start = load_file(str(tiny_model_dir / "transformer.safetensors"))
    trained = load_file(str(tmp_path / "run" / "model.safetensors"))
    assert max((start[k] - trained[k]).abs().max().item() for k in start) < 0.05


def _finetune_at_no_rate(tiny_bank, tiny_model_dir, tmp_path, steps: int, **model_changes) -> list[str]:
    """Train the tiny model, changed as given, from its own weights at a negligible rate; the log."""
    model = {**json.loads((tiny_model_dir / "transformer.json").read_text()), **model_changes}
    cfg = TransformerTrainConfig(run_dir=str(tmp_path / "run"), bank=tiny_bank.run_dir, steps=steps, batch_size=2 * steps,
                                 warmup=1, checkpoint_every=steps, log_every=1, lr=1e-9, model=model,
                                 init_from=str(tiny_model_dir / "transformer.safetensors"))
    lines = []
    train_transformer(cfg, lines.append)
    return lines


def test_starting_a_preconditioned_model_from_velocity_weights_restarts_only_its_output_layer(tiny_bank, tiny_model_dir,
                                                                                                 tmp_path):
    lines = _finetune_at_no_rate(tiny_bank, tiny_model_dir, tmp_path, 1, prediction="preconditioned")
    assert any("output layer reset to predict preconditioned" in line for line in lines)
    start = load_file(str(tiny_model_dir / "transformer.safetensors"))
    trained = load_file(str(tmp_path / "run" / "model.safetensors"))
    assert trained["proj_out.weight"].abs().max() < 1e-6 < start["proj_out.weight"].abs().max()
    assert torch.allclose(trained["blocks.0.mlp.0.weight"].float(), start["blocks.0.mlp.0.weight"].float(), atol=1e-4)
    assert json.loads((tmp_path / "run" / "model.json").read_text())["prediction"] == "preconditioned"


def test_a_fine_tune_at_a_finer_patch_starts_from_resized_weights(tiny_bank, tiny_model_dir, tmp_path):
    lines = _finetune_at_no_rate(tiny_bank, tiny_model_dir, tmp_path, 1, patch=[1, 2, 2], rope_patch=[1, 4, 4])
    assert any("trained at patch (1, 4, 4); its input and output layers resized to (1, 2, 2)" in line for line in lines)
    start = load_file(str(tiny_model_dir / "transformer.safetensors"))
    trained = load_file(str(tmp_path / "run" / "model.safetensors"))
    assert trained["patch_embed.weight"].shape[1] * 4 == start["patch_embed.weight"].shape[1]
    assert trained["proj_out.weight"].shape[0] * 4 == start["proj_out.weight"].shape[0]
    assert torch.allclose(trained["blocks.0.mlp.0.weight"].float(), start["blocks.0.mlp.0.weight"].float(), atol=1e-4)


def test_streamed_training_renders_encodes_and_fits_the_schedule_to_its_time_budget(tiny_model_dir, tmp_path):
    model = json.loads((tiny_model_dir / "transformer.json").read_text())
    cfg = TransformerTrainConfig(run_dir=str(tmp_path / "run"), data="stream", workers=1, stream_chunk=2,
                                 stream_capacity=8, stream_sizes=((64, 64, 0.5), (48, 32, 0.5)), num_frames=9,
                                 autoencoder=str(tiny_model_dir / "autoencoder.safetensors"), steps=1000,
                                 time_budget_s=30.0, batch_size=2, warmup=2, checkpoint_every=1000, log_every=1,
                                 object_weight=4.0, frame_t_prob=0.5, model=model, device="auto")
    lines = []
    train_transformer(cfg, lines.append)
    planned = [line for line in lines if line.startswith("time budget")]
    assert len(planned) == 1
    total = int(planned[0].split("training ")[1].split()[0])
    assert 12 <= total < 1000  # fitted to the budget, not the configured upper bound
    steps = [line for line in lines if line.startswith("step ")]
    assert steps[-1].startswith(f"step {total}/{total}") and "clips rendered" in steps[-1]
    assert json.loads((tmp_path / "run" / "state.json").read_text())["step"] == total


def test_stream_buffer_turns_over_and_keeps_every_bucket(tiny_model_dir):
    from reelforge.training.bank import load_autoencoder
    from reelforge.training.stream import LatentStream, RenderedChunks
    chunks = RenderedChunks(((64, 64, 0.5), (48, 32, 0.5)), 9, 8.0, 0.15, 1.0, chunk=2, seed=0)
    stream = LatentStream(chunks, load_autoencoder(tiny_model_dir / "autoencoder.safetensors"), capacity=8,
                          workers=0, device=torch.device("cpu"))
    stream.wait_for(2)
    while stream.received < 24:
        if not stream.poll():
            time.sleep(0.01)
    assert stream.filled == stream.capacity == [4, 4]  # full, and overwritten rather than grown
    latents, masks, factors, layout = stream.sample(random.Random(0), 3)
    assert latents.shape[0] == masks.shape[0] == len(factors) == 3 and layout is None
    assert latents.shape[1:3] == (4, 3) and masks.dtype == torch.bool and masks.any()


@pytest.mark.parametrize("temporal_weight", [0.0, 1.0])
def test_decoder_finetune_keeps_the_encoder_and_its_latent_space(tiny_model_dir, tmp_path, temporal_weight):
    from reelforge.training.autoencoder import train_autoencoder
    from reelforge.training.config import AutoencoderTrainConfig

    start = tiny_model_dir / "autoencoder.safetensors"
    cfg = AutoencoderTrainConfig(run_dir=str(tmp_path / "dec"), init_from=str(start), train_encoder=False, steps=3,
                                 batch_size=2, num_frames=5, width=32, height=32, latent_noise_max=0.4,
                                 temporal_weight=temporal_weight, checkpoint_every=3, log_every=1)
    before, after = load_file(str(start)), load_file(str(train_autoencoder(cfg)))
    for name, value in before.items():
        same = torch.equal(value, after[name])
        # The encoder and the latent statistics define the space transformers were trained in.
        assert same == (name.startswith("encoder.") or name.startswith("latents_")), name
    with pytest.raises(ValueError, match="init_from"):
        train_autoencoder(AutoencoderTrainConfig(run_dir=str(tmp_path / "bad"), train_encoder=False))


def test_a_causal_decoder_starts_a_decoder_that_looks_ahead(tiny_model_dir, tmp_path):
    from reelforge.training.autoencoder import train_autoencoder
    from reelforge.training.config import AutoencoderTrainConfig

    start = tiny_model_dir / "autoencoder.safetensors"
    cfg = AutoencoderTrainConfig(run_dir=str(tmp_path / "ahead"), init_from=str(start), train_encoder=False,
                                 model={"decoder_lookahead": 1, "decoder_frame_mix": 2}, steps=2, batch_size=2, num_frames=9, width=32,
                                 height=32, latent_noise_max=0.4, checkpoint_every=2, log_every=1)
    out = train_autoencoder(cfg)
    before, after = load_file(str(start)), load_file(str(out))
    assert json.loads((out.with_suffix(".json")).read_text())["decoder_lookahead"] == 1
    kernel = "decoder.temporal.conv1.weight"
    assert before[kernel].shape[2] == 3 and after[kernel].shape[2] == 4  # one tap for the next latent frame
    assert after[kernel][:, :, 3].abs().sum() > 0  # learned from zero
    assert after["decoder.frame_mix.out.weight"].abs().sum() > 0  # the frame mixing layer too
    assert all(torch.equal(v, after[k]) for k, v in before.items() if k.startswith("encoder."))


def test_temporal_reconstruction_loss_penalises_an_error_that_jumps_not_one_that_holds_still():
    from reelforge.training.autoencoder import reconstruction_loss

    video = torch.zeros(1, 3, 9, 8, 8)
    video[:, 0, :, 2:5, 2:5] = 1.0  # an object, weighted as objects are
    steady = video + 0.1
    jumping = video + 0.1 * torch.tensor([1.0, -1.0] * 4 + [1.0]).view(1, 1, 9, 1, 1)  # the same size of error
    assert reconstruction_loss(steady, video) == pytest.approx(reconstruction_loss(jumping, video).item())
    assert reconstruction_loss(steady, video, 1.0) < 0.6 * reconstruction_loss(jumping, video, 1.0)


def test_the_edge_term_costs_a_blurred_outline_more_than_an_error_with_the_outline_kept():
    from reelforge.training.autoencoder import reconstruction_loss

    video = -torch.ones(1, 3, 5, 16, 16)
    video[:, 0, :, 5:10, 5:10] = 1.0  # a red square on black
    blurred = torch.nn.functional.avg_pool3d(video, (1, 3, 3), stride=1, padding=(0, 1, 1), count_include_pad=False)
    kept = video + 0.3  # every pixel off by the same amount: each outline exactly where it was
    plain = [reconstruction_loss(x, video).item() for x in (blurred, kept)]
    edged = [reconstruction_loss(x, video, edge_weight=1.0).item() for x in (blurred, kept)]
    # The edge term adds nothing where the outline is right, and a blur's lost corners cost more.
    assert edged[1] == pytest.approx(plain[1]) and plain[1] > 0
    assert edged[0] - plain[0] > 0.1 * plain[0]


def test_self_conditioned_training_with_absolute_positions_starts_from_plain_weights_as_the_same_model(tiny_bank, tiny_model_dir, tmp_path):
    lines = _finetune_at_no_rate(tiny_bank, tiny_model_dir, tmp_path, 2, self_condition=True, absolute_positions=True)
    assert any("no self-conditioning input" in line for line in lines)
    assert any("had no weights for the absolute positions; it starts with a zero output" in line for line in lines)
    losses = [float(line.split("loss ")[1].split()[0]) for line in lines if line.startswith("step ")]
    assert len(losses) == 2 and all(np.isfinite(losses))
    start = load_file(str(tiny_model_dir / "transformer.safetensors"))["patch_embed.weight"].float()
    trained = load_file(str(tmp_path / "run" / "model.safetensors"))["patch_embed.weight"].float()
    inputs = start.shape[1]
    assert trained.shape[1] == 2 * inputs  # latents, then the estimate
    assert torch.allclose(trained[:, :inputs], start, atol=1e-4) and trained[:, inputs:].abs().max() < 1e-4


def test_a_convolutional_head_added_in_a_fine_tune_starts_as_the_model_it_came_from(tiny_bank, tiny_model_dir, tmp_path):
    lines = _finetune_at_no_rate(tiny_bank, tiny_model_dir, tmp_path, 1, conv_head=8)
    assert any("had no weights for the convolutional head; it starts with a zero output" in line for line in lines)
    model_cfg = json.loads((tmp_path / "run" / "model.json").read_text())
    assert model_cfg["conv_head"] == 8
    with_head = VideoTransformer(TransformerConfig.from_dict(model_cfg))
    with_head.load_state_dict({k: v.float() for k, v in load_file(str(tmp_path / "run" / "model.safetensors")).items()})
    plain = VideoTransformer(TransformerConfig.from_dict(json.loads((tiny_model_dir / "transformer.json").read_text())))
    plain.load_state_dict({k: v.float() for k, v in load_file(str(tiny_model_dir / "transformer.safetensors")).items()})
    x, t = torch.randn(1, plain.cfg.in_channels, 2, 8, 8), torch.rand(1)
    text = {"text_tokens": torch.randn(1, 3, 384), "text_mask": torch.ones(1, 3, dtype=torch.bool),
            "text_pooled": torch.randn(1, 384)}
    with torch.no_grad():
        assert torch.allclose(with_head(x, t, **text), plain(x, t, **text), atol=1e-3)


def test_position_layer_learns_at_its_multiple_of_the_schedule(tiny_model_dir):
    model_cfg = {**json.loads((tiny_model_dir / "transformer.json").read_text()), "absolute_positions": True}
    model = VideoTransformer(TransformerConfig.from_dict(model_cfg))
    optimizer = torch.optim.AdamW(_param_groups(model, 10.0), lr=1.0)
    lr = set_lr(optimizer, 1e-3, step=200, warmup=10, steps=1000)
    rest, positions = optimizer.param_groups
    assert rest["lr"] == lr and positions["lr"] == 10 * lr
    assert {id(p) for p in positions["params"]} == {id(p) for p in model.pos_embed.parameters()}
    assert len(rest["params"]) + len(positions["params"]) == len(list(model.parameters()))
    with_head = VideoTransformer(TransformerConfig.from_dict({**model_cfg, "conv_head": 8}))
    rest, positions, head = torch.optim.AdamW(_param_groups(with_head, 10.0, 5.0), lr=1.0).param_groups
    assert positions["lr_scale"] == 10.0 and head["lr_scale"] == 5.0 and "lr_scale" not in rest
    assert {id(p) for p in head["params"]} == {id(p) for name, p in with_head.named_parameters() if name.startswith("head_")}


def test_object_weight_only_where_the_noise_level_lets_the_object_show():
    masks = torch.zeros(2, 1, 3, 4, 4, dtype=torch.bool)
    masks[:, :, :, 1, 1] = True
    every_level = object_loss_weight(masks, torch.tensor([0.9, 0.2]), 4.0)
    assert every_level[:, 0, :, 1, 1].eq(5).all() and every_level[:, 0, :, 0, 0].eq(1).all()
    per_clip = object_loss_weight(masks, torch.tensor([0.9, 0.2]), 4.0, max_t=0.5)
    assert per_clip[0].eq(1).all() and per_clip[1, 0, :, 1, 1].eq(5).all()
    per_frame = object_loss_weight(masks, torch.tensor([[0.1, 0.7, 0.5], [0.9, 0.95, 1.0]]), 4.0, max_t=0.5)
    assert per_frame[0, 0, :, 1, 1].tolist() == [5, 1, 5] and per_frame[1].eq(1).all()


@pytest.mark.parametrize("noise_conditioned", [False, True])
def test_the_verifier_learns_the_banks_labels_scores_held_out_clips_and_resumes(tiny_bank, tmp_path, noise_conditioned):
    from reelforge.training.config import VerifierTrainConfig
    from reelforge.training.verifier import train_verifier
    cfg = VerifierTrainConfig(run_dir=str(tmp_path / "verifier"), bank=tiny_bank.run_dir, steps=40, batch_size=8,
                              lr=5e-3, warmup=1, noise_max=0.0, log_every=1, checkpoint_every=20,
                              model={"in_channels": 4, "width": 8, "noise_conditioned": noise_conditioned})
    lines = []
    out = train_verifier(cfg, lines.append)
    losses = [float(line.split()[3]) for line in lines if line.startswith("step ")]
    # It fits the clips' six labels (through the noise, on the clips drawn at low levels).
    assert len(losses) == 40 and sum(losses[-5:]) / 5 < (0.7 if noise_conditioned else 0.3) * losses[0]
    assert out.exists() and out.with_suffix(".json").exists()
    scores = json.loads((Path(cfg.run_dir) / "held_out.json").read_text())
    levels = {"t 0.3", "t 0.5", "t 0.7", "t 0.9"} if noise_conditioned else set()
    assert set(scores) == {"noise 0", "noise 0.4"} | levels
    assert set(scores["noise 0"]) == {"color", "shape", "motion", "size", "speed", "background"}
    lines.clear()
    train_verifier(dataclasses.replace(cfg, steps=42), lines.append)
    assert "resumed from step 40" in lines and sum(line.startswith("step ") for line in lines) == 2


def _tiny_verifier(path: Path) -> Path:
    from reelforge.models.verifier import LatentVerifier, VerifierConfig
    from reelforge.training.checkpoint import save_weights
    torch.manual_seed(1)
    cfg = VerifierConfig(in_channels=4, width=8)
    save_weights(LatentVerifier(cfg), path, cfg.to_json())
    return path


def test_feedback_labels_name_one_objects_factors_and_ignore_unconditional_and_two_object_clips():
    from reelforge.models.verifier import VOCAB
    from reelforge.training.feedback import NAMED, feedback_labels
    rng = random.Random(0)
    one = next(f for f in (draw_clip(rng, 0.5, 0.0)[0] for _ in range(200)) if len(f.objects) == 1)
    two = next(f for f in (draw_clip(rng, 0.5, 0.0)[0] for _ in range(200)) if len(f.objects) == 2)
    labels = feedback_labels([one, one, two], [True, False, True])
    obj = one.objects[0]
    named = {"color": obj.color, "shape": obj.shape, "motion": obj.motion, "background": one.background}
    assert labels[0].tolist() == [VOCAB[name].index(named[name]) for name in NAMED]
    assert labels[1].tolist() == labels[2].tolist() == [-1] * len(NAMED)


def test_verifier_feedback_trains_the_models_estimate_towards_the_labels_only_inside_its_noise_levels(tiny_model_dir,
                                                                                                     tmp_path):
    from reelforge.flow.objective import clean_estimate, interpolate
    from reelforge.models.verifier import LatentVerifier, VerifierConfig
    from reelforge.pipeline import load_module
    from reelforge.training.feedback import feedback_loss
    verifier = load_module(LatentVerifier, VerifierConfig, _tiny_verifier(tmp_path / "verifier.safetensors"))
    model = VideoTransformer(TransformerConfig.from_dict(json.loads((tiny_model_dir / "transformer.json").read_text())))
    model.load_state_dict(load_file(str(tiny_model_dir / "transformer.safetensors")))
    torch.manual_seed(0)
    x0, noise = torch.randn(4, 4, 3, 8, 8), torch.randn(4, 4, 3, 8, 8)
    t = torch.tensor([0.5, 0.6, 0.7, 0.99])  # the last outside the interval
    labels = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4], [-1, -1, -1, -1], [2, 2, 2, 2]])
    text = {"text_tokens": torch.randn(4, 5, 384), "text_mask": torch.ones(4, 5, dtype=torch.bool),
            "text_pooled": torch.randn(4, 384)}
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)

    def loss() -> torch.Tensor:
        x_t = interpolate(x0, noise, t)
        return feedback_loss(verifier, clean_estimate(x_t, t, model(x_t, t, **text)), labels, t, (0.3, 0.9))
    first = loss()
    assert first[0] > 0 and first[1] > 0 and first[2] == 0 and first[3] == 0  # no caption; too noisy
    for _ in range(30):
        optimizer.zero_grad()
        loss().mean().backward()
        optimizer.step()
    assert loss()[:2].sum() < 0.7 * first[:2].sum()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())


def test_training_with_verifier_feedback_logs_the_verifiers_reading(tiny_bank, tiny_model_dir, tmp_path):
    model = json.loads((tiny_model_dir / "transformer.json").read_text())
    cfg = TransformerTrainConfig(run_dir=str(tmp_path / "run"), bank=tiny_bank.run_dir, steps=4, batch_size=4, warmup=1,
                                 checkpoint_every=4, log_every=1, model=model, text_dropout=0.0, verifier_weight=0.1,
                                 verifier=str(_tiny_verifier(tmp_path / "verifier.safetensors")),
                                 verifier_interval=(0.0, 1.0))
    lines = []
    train_transformer(cfg, lines.append)
    read = [float(line.split("verifier ")[1].split()[0]) for line in lines if " verifier " in line]
    assert len(read) >= 3 and all(np.isfinite(read)) and all(r > 0 for r in read)


def test_a_verifier_interval_that_is_not_two_ordered_noise_levels_is_refused():
    from reelforge.training.config import ConfigError
    with pytest.raises(ConfigError, match="verifier_interval"):
        TransformerTrainConfig(verifier_interval=(0.9, 0.3))
    with pytest.raises(ConfigError, match="verifier_weight"):
        TransformerTrainConfig(verifier_weight=-1.0)


def test_object_masks_follow_the_autoencoders_time_factor(tmp_path):
    """A bank made by an autoencoder with 2x time compression holds 2 frames per latent frame; the
    object masks must place the objects at those frames' times, not at 4x's."""
    from reelforge.models.autoencoder import AutoencoderConfig, VideoAutoencoder
    from reelforge.training.checkpoint import save_weights
    from reelforge.training.loop import BankLatents
    from reelforge.world.factors import ClipFactors
    ae_cfg = AutoencoderConfig(latent_channels=4, enc_channels=(16, 16), dec_channels=(16, 16), time_down=2)
    ae_path = tmp_path / "ae.safetensors"
    save_weights(VideoAutoencoder(ae_cfg), ae_path, ae_cfg.to_json())
    bank = BankConfig(run_dir=str(tmp_path / "bank"), autoencoder=str(ae_path), sizes=((64, 64, 4),), num_frames=9,
                      chunk=4, max_start=2.0)
    build_bank(bank)
    cfg = TransformerTrainConfig(bank=bank.run_dir, autoencoder=str(ae_path), object_weight=4.0)
    source = BankLatents(cfg, torch.device("cpu"), lambda s: None)
    latents, factors, starts = load_bank(bank.run_dir)["64x64"]
    assert latents.shape[2] == 5
    for i in range(4):
        expected = latent_object_mask(ClipFactors.from_dict(factors[i]), starts[i], 64, 64, 8.0, 5, time_down=2)
        assert torch.equal(source.masks["64x64"][i, 0], expected)


def test_training_with_layout_guidance_biases_object_words_where_the_clips_object_is(tiny_bank, tiny_model_dir,
                                                                                    tmp_path, monkeypatch):
    from reelforge.models.transformer import VideoTransformer
    biases = []
    forward = VideoTransformer.forward

    def recording(self, *args, **kwargs):
        biases.append(kwargs.get("text_bias"))
        return forward(self, *args, **kwargs)

    monkeypatch.setattr(VideoTransformer, "forward", recording)
    model = json.loads((tiny_model_dir / "transformer.json").read_text())
    cfg = TransformerTrainConfig(run_dir=str(tmp_path / "run"), bank=tiny_bank.run_dir, steps=3, batch_size=4, warmup=1,
                                 checkpoint_every=3, log_every=1, model=model, text_dropout=0.0,
                                 autoencoder=tiny_bank.autoencoder, layout_guidance=2.0, layout_prob=1.0)
    lines = []
    train_transformer(cfg, lines.append)
    assert len(biases) == 3 and all(b is not None and b.shape[0] == 4 for b in biases)
    for bias in biases:  # (B, N, L): each one-object caption's words on its object's path and off it
        single = bias.abs().amax((1, 2)) > 0
        assert single.any() and bias.max() == 2.0 and bias.min() == -2.0
    losses = [float(line.split("loss ")[1].split()[0]) for line in lines if line.startswith("step ")]
    assert len(losses) == 3 and all(np.isfinite(losses))


def test_layout_guidance_in_training_needs_the_bank():
    with pytest.raises(ConfigError, match="layout_guidance in training needs the bank"):
        TransformerTrainConfig(data="stream", layout_guidance=2.0)


def test_training_with_a_temporal_term_logs_it_and_names_bad_weights(tiny_bank, tiny_model_dir, tmp_path):
    model = json.loads((tiny_model_dir / "transformer.json").read_text())
    cfg = TransformerTrainConfig(run_dir=str(tmp_path / "run"), bank=tiny_bank.run_dir, steps=2, batch_size=2, warmup=1,
                                 checkpoint_every=2, log_every=1, model=model, temporal_weight=1.0,
                                 autoencoder=tiny_bank.autoencoder, init_from=str(tiny_model_dir / "transformer.safetensors"))
    lines = []
    train_transformer(cfg, lines.append)
    temporal = [float(line.split("temporal ")[1].split()[0]) for line in lines if line.startswith("step ")]
    assert len(temporal) == 2 and all(np.isfinite(temporal)) and all(v > 0 for v in temporal)
    with pytest.raises(ConfigError, match="temporal_weight must be >= 0"):
        TransformerTrainConfig(temporal_weight=-1.0)
    with pytest.raises(ConfigError, match=r"noise_correlation must be in \[0, 1\)"):
        TransformerTrainConfig(noise_correlation=1.0)


def test_every_committed_config_loads_into_its_stage_and_model():
    """A recipe the model card cites must run as committed: its keys are its stage's, and its model
    overrides are the network's (a typo would only surface hours into a lent GPU's time otherwise)."""
    from reelforge.models.autoencoder import AutoencoderConfig
    from reelforge.models.interpolator import InterpolatorConfig
    from reelforge.models.upscaler import UpscalerConfig
    from reelforge.models.verifier import VerifierConfig
    from reelforge.training.config import load_config

    # The network config each stage builds from its `model` overrides (the pairs and student stages have none).
    networks = {"autoencoder": AutoencoderConfig, "transformer": TransformerConfig, "upscaler": UpscalerConfig,
                "interpolator": InterpolatorConfig, "verifier": VerifierConfig}
    paths = sorted((Path(__file__).parent.parent / "configs").glob("*.json"))
    assert len(paths) > 50
    checked = set()
    for path in paths:
        cfg = load_config(path)
        if cfg.stage in networks:
            networks[cfg.stage].from_dict(cfg.model)
            checked.add(cfg.stage)
    assert checked == set(networks)
