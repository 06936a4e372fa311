import dataclasses

import pytest
import torch

from reelforge.models.autoencoder import AutoencoderConfig, VideoAutoencoder
from reelforge.models.transformer import TransformerConfig, VideoTransformer, preconditioned_velocity

TINY_AE = AutoencoderConfig(latent_channels=4, enc_channels=(16, 16), dec_channels=(16, 16))
TINY_DIT = TransformerConfig(in_channels=4, dim=64, depth=2, heads=2, rope_split=(8, 12, 12))


def test_autoencoder_compresses_4x_space_and_time_causally():
    ae = VideoAutoencoder(TINY_AE).eval()
    video = torch.rand(1, 3, 9, 32, 48) * 2 - 1
    latents = ae.encode(video)
    assert latents.shape == (1, 4, 3, 8, 12)
    assert ae.decode(latents).shape == video.shape
    # A single image is a valid one-frame video.
    assert ae.decode(ae.encode(video[:, :, :1])).shape == (1, 3, 1, 32, 48)
    # Causal: later frames cannot change earlier latents.
    changed = video.clone()
    changed[:, :, 5:] = 0
    assert torch.allclose(ae.encode(changed)[:, :, :2], latents[:, :, :2], atol=1e-5)


@pytest.mark.parametrize("lookahead,frame_mix", [(1, 0), (0, 2), (1, 2)])
def test_a_decoder_that_looks_ahead_starts_as_the_causal_one_and_then_sees_the_next_latent_frame(lookahead, frame_mix):
    from reelforge.models.autoencoder import adapt_causal_state

    torch.manual_seed(0)
    causal = VideoAutoencoder(TINY_AE).eval()
    ahead = VideoAutoencoder(dataclasses.replace(TINY_AE, decoder_lookahead=lookahead,
                                                 decoder_frame_mix=frame_mix)).eval()
    ahead.load_state_dict(adapt_causal_state(causal.state_dict(), ahead))
    latents = torch.randn(1, 4, 3, 8, 8)
    with torch.no_grad():
        assert torch.allclose(ahead.decode(latents), causal.decode(latents), atol=1e-5)
        # What training gives the parts that start at zero: the future taps, the mixing layer's output.
        for conv in (ahead.decoder.temporal.conv1, ahead.decoder.temporal.conv2):
            conv.weight[:, :, 3:].normal_(std=0.1)
        if frame_mix:
            ahead.decoder.frame_mix.out.weight.normal_(std=0.1)
        changed = latents.clone()
        changed[:, :, 2] += 1  # the last latent frame: frames 5-8
        # Frames 1-4 (latent frame 1) now see latent frame 2; the causal decoder's do not.
        assert torch.allclose(causal.decode(changed)[:, :, :5], causal.decode(latents)[:, :, :5], atol=1e-5)
        assert not torch.allclose(ahead.decode(changed)[:, :, 1:5], ahead.decode(latents)[:, :, 1:5], atol=1e-3)
        # The encoder is untouched: one image is still a one-frame video.
        assert ahead.decode(ahead.encode(torch.zeros(1, 3, 1, 32, 32))).shape == (1, 3, 1, 32, 32)


def test_autoencoder_rejects_wrong_frame_counts():
    ae = VideoAutoencoder(TINY_AE)
    try:
        ae.encode(torch.zeros(1, 3, 8, 32, 32))
    except ValueError as e:
        assert "1 + 4k" in str(e)
    else:
        raise AssertionError("8 frames must be rejected")


def test_autoencoder_overfits_one_clip():
    torch.manual_seed(0)
    ae = VideoAutoencoder(TINY_AE)
    video = torch.zeros(1, 3, 5, 16, 16)
    video[:, 0, :, 4:10, 4:10] = 1.0
    opt = torch.optim.Adam(ae.parameters(), 3e-3)
    for _ in range(150):
        loss = (ae(video) - video).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.01


def _text(batch, length=5):
    return dict(text_tokens=torch.randn(batch, length, 384), text_mask=torch.ones(batch, length, dtype=torch.bool),
                text_pooled=torch.randn(batch, 384))


def test_transformer_serves_several_sizes_and_lengths():
    model = VideoTransformer(TINY_DIT)
    for shape in [(2, 4, 3, 16, 16), (1, 4, 5, 16, 28), (1, 4, 1, 28, 16)]:
        x = torch.randn(shape)
        assert model(x, torch.rand(shape[0]), **_text(shape[0])).shape == shape


def test_transformer_patchify_roundtrip():
    model = VideoTransformer(TINY_DIT)
    x = torch.randn(2, 4, 3, 8, 12)
    tokens, grid = model.patchify(x)
    assert tokens.shape == (2, 3 * 2 * 3, 4 * 16) and grid == (3, 2, 3)
    assert torch.equal(model.unpatchify(tokens, grid), x)


def test_transformer_uses_the_text():
    torch.manual_seed(0)
    model = VideoTransformer(TINY_DIT)
    for p in model.parameters():  # leave the zero-init so every path carries signal
        torch.nn.init.normal_(p, std=0.05)
    x, t = torch.randn(1, 4, 2, 8, 8), torch.rand(1)
    a, b = model(x, t, **_text(1)), model(x, t, **_text(1))
    assert not torch.allclose(a, b)


def test_padding_tokens_are_ignored():
    torch.manual_seed(0)
    model = VideoTransformer(TINY_DIT)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.05)
    x, t, text = torch.randn(1, 4, 2, 8, 8), torch.rand(1), _text(1, 4)
    padded = dict(text)
    padded["text_tokens"] = torch.cat([text["text_tokens"], torch.randn(1, 3, 384)], 1)
    padded["text_mask"] = torch.cat([text["text_mask"], torch.zeros(1, 3, dtype=torch.bool)], 1)
    assert torch.allclose(model(x, t, **text), model(x, t, **padded), atol=1e-5)


def _random_dit(**changes):
    torch.manual_seed(0)
    model = VideoTransformer(dataclasses.replace(TINY_DIT, **changes))
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.05)
    return model


def test_per_frame_noise_levels_equal_to_one_level_give_the_same_velocity():
    model, x, text = _random_dit(), torch.randn(2, 4, 3, 8, 8), _text(2)
    t = torch.tensor([0.3, 0.8])
    per_frame = t[:, None].expand(2, 3)
    assert torch.allclose(model(x, t, **text), model(x, per_frame, **text), atol=1e-5)


def test_per_frame_noise_level_changes_that_frame_and_through_attention_the_others():
    model, x, text = _random_dit(), torch.randn(1, 4, 3, 8, 8), _text(1)
    a = model(x, torch.tensor([[0.5, 0.5, 0.5]]), **text)
    b = model(x, torch.tensor([[0.0, 0.5, 0.5]]), **text)
    assert not torch.allclose(a[:, :, 0], b[:, :, 0])
    assert not torch.allclose(a[:, :, 2], b[:, :, 2])


def test_per_frame_noise_levels_must_match_the_latent_frames():
    model = _random_dit()
    with pytest.raises(ValueError, match="one level per latent frame"):
        model(torch.randn(1, 4, 3, 8, 8), torch.rand(1, 2), **_text(1))


def test_fast_decoding_of_the_shipped_autoencoder_stays_within_two_levels_of_fp32():
    """bf16 and channels-last (models/precision.py) where the CPU has them: the same frames."""
    from reelforge.models.precision import channels_last, fast_autocast
    from reelforge.pipeline import BUILTIN_DIR, load_module
    from reelforge.training.data import frames_to_tensor
    from reelforge.world.factors import ClipFactors, ObjectFactors
    from reelforge.world.render import render

    autoencoder = load_module(VideoAutoencoder, AutoencoderConfig, BUILTIN_DIR / "autoencoder.safetensors")
    clip = ClipFactors(objects=(ObjectFactors("circle", "red", "large", "left", "fast"),), background="blue")
    video = frames_to_tensor(render(clip, 64, 64, 8.0, 17))[None]  # (1, 3, 17, 64, 64)
    with torch.no_grad():
        latents = autoencoder.encode(video)
        reference = autoencoder.decode(latents)
        fast = channels_last(autoencoder)
        with fast_autocast():
            frames = fast.decode(latents).float()
    to_levels = lambda x: ((x.clamp(-1, 1) + 1) * 127.5).round()  # noqa: E731
    assert (to_levels(frames) - to_levels(reference)).abs().max() <= 2
    assert (to_levels(frames) - to_levels(reference)).abs().mean() < 0.5


def _clean_estimate(model, x, t, text):
    """x0 = x_t - t v: what the model believes the clean clip is."""
    return x - t.view(-1, 1, 1, 1, 1) * model(x, t, **text)


@pytest.mark.parametrize("prediction, carries_noise", [("velocity", True), ("preconditioned", False)])
def test_only_velocity_prediction_must_carry_the_noise_into_its_clean_estimate_at_t_1(prediction, carries_noise):
    # An untrained output layer (zero) shows the parametrisation alone: predicting velocity, the
    # clean estimate at pure noise IS the noise unless the network learns to cancel it exactly.
    model = VideoTransformer(dataclasses.replace(TINY_DIT, prediction=prediction))
    x, text, t = torch.randn(1, 4, 3, 8, 8), _text(1), torch.ones(1)
    estimate = _clean_estimate(model, x, t, text)
    assert torch.allclose(estimate, x, atol=1e-5) is carries_noise
    if not carries_noise:
        assert estimate.abs().max() < 1e-5


def test_preconditioned_velocity_is_edm_clean_estimate_and_its_target_has_unit_variance():
    s_data = 1.07
    x0, noise = torch.randn(4000) * s_data, torch.randn(4000)
    for level in (0.02, 0.5, 0.98):
        t = torch.tensor([level])
        x_t = (1 - level) * x0 + level * noise
        d = (1 - level) ** 2 * s_data**2 + level**2
        c_skip, c_out = (1 - level) * s_data**2 / d, level * s_data / d**0.5
        target = (x0 - c_skip * x_t) / c_out  # what the network's output must learn
        assert abs(target.std().item() - 1) < 0.05
        v = preconditioned_velocity(target.view(1, 1, 1, 1, -1), x_t.view(1, 1, 1, 1, -1), t, s_data)
        assert torch.allclose(v.flatten(), noise - x0, atol=1e-3)  # the exact flow velocity


def test_preconditioned_model_takes_per_frame_levels_like_one_level():
    model, x, text = _random_dit(prediction="preconditioned"), torch.randn(2, 4, 3, 8, 8), _text(2)
    t = torch.tensor([0.02, 0.7])
    assert torch.allclose(model(x, t, **text), model(x, t[:, None].expand(2, 3), **text), atol=1e-5)


def test_unknown_prediction_is_refused():
    with pytest.raises(ValueError, match="prediction must be"):
        dataclasses.replace(TINY_DIT, prediction="noise")


def test_self_conditioned_transformer_reads_its_previous_estimate_and_zeros_by_default():
    model = VideoTransformer(dataclasses.replace(TINY_DIT, self_condition=True))
    torch.nn.init.normal_(model.proj_out.weight, std=0.1)
    x, t, text = torch.randn(1, 4, 3, 16, 16), torch.full((1,), 0.5), _text(1)
    plain = model(x, t, **text)
    assert torch.equal(plain, model(x, t, **text, self_cond=torch.zeros_like(x)))
    assert not torch.allclose(plain, model(x, t, **text, self_cond=torch.randn_like(x)))
    with pytest.raises(ValueError, match="without self-conditioning"):
        VideoTransformer(TINY_DIT)(x, t, **text, self_cond=x)


def test_convolutional_head_sees_across_token_borders():
    torch.manual_seed(0)
    model = VideoTransformer(dataclasses.replace(TINY_DIT, conv_head=8))
    torch.nn.init.normal_(model.head_conv[-1].weight, std=0.1)
    torch.nn.init.normal_(model.patch_embed.weight, std=0.5)
    for block in model.blocks:  # gates at zero: no token hears another through attention
        torch.nn.init.zeros_(block.modulation)
    x, text = torch.zeros(1, 4, 1, 8, 8), _text(1)
    base = model(x, torch.ones(1), **text)
    x[..., 3, 3] = 1.0  # one latent cell, in the token of rows and columns 0-3
    changed = (model(x, torch.ones(1), **text) - base).abs()
    assert changed[..., :4, :4].max() > 1e-3  # its own token, through the linear head
    assert changed[..., 4, 4].max() > 1e-4  # the next token's corner, through the convolutions
    assert changed[..., 6:, 6:].max() < 1e-6  # beyond their reach


@pytest.mark.parametrize("grid", [(2, 4, 4), (2, 4, 7), (1, 7, 4)])
def test_absolute_positions_are_measured_from_the_frame_centre_in_world_units(grid):
    from reelforge.models.transformer import position_features
    t, h, w = grid
    features = position_features(grid, (1, 4, 4), "cpu").view(t, h, w, 3, 2, 4)  # (t, y, x), (coord, sin/cos, freq)
    mirrored = features.flip(2)  # the column mirrored about the centre
    assert torch.allclose(mirrored[..., 2, 0, :], -features[..., 2, 0, :], atol=1e-6)  # sin of x flips sign
    assert torch.allclose(mirrored[..., 2, 1, :], features[..., 2, 1, :], atol=1e-6)
    # one unit is the shorter side: neighbouring tokens are 4 / (4 * min(h, w)) units apart
    x = torch.atan2(features[0, 0, :, 2, 0, 0], features[0, 0, :, 2, 1, 0]) / torch.pi
    assert torch.allclose(x.diff(), torch.full((w - 1,), 1 / min(h, w)), atol=1e-5)


def test_absolute_time_is_counted_in_the_rotary_positions_units(monkeypatch):
    from reelforge.models import transformer
    coarse = transformer.position_features((3, 2, 2), (1, 4, 4), "cpu").view(3, 4, 24)
    fine = transformer.position_features((9, 2, 2), (1, 4, 4), "cpu", time_spacing=0.25).view(9, 4, 24)
    assert torch.allclose(fine[::4], coarse, atol=1e-6)  # every fourth fine frame is a coarse one
    assert not torch.allclose(fine[1], coarse[1], atol=1e-3)
    spacings = []
    real = transformer.position_features
    monkeypatch.setattr(transformer, "position_features",
                        lambda *args: spacings.append(args[3]) or real(*args))
    for rope_patch in [None, (4, 4, 4), (2, 2, 2)]:
        model = VideoTransformer(dataclasses.replace(TINY_DIT, absolute_positions=True, rope_patch=rope_patch))
        model(torch.zeros(1, 4, 4, 8, 8), torch.ones(1), **_text(1))
    assert spacings == [1.0, 0.25, 0.5]


def test_a_model_with_absolute_positions_tells_the_centre_from_the_edge():
    model = VideoTransformer(dataclasses.replace(TINY_DIT, absolute_positions=True))
    torch.nn.init.normal_(model.pos_embed.weight, std=0.5)
    torch.nn.init.normal_(model.proj_out.weight, std=0.1)
    x = torch.zeros(1, 4, 1, 16, 16)  # the same content at every token
    v = model(x, torch.full((1,), 1.0), **_text(1))
    assert not torch.allclose(v[..., 6:10, 6:10].mean(), v[..., :2, :2].mean(), atol=1e-4)


def test_a_model_resized_to_a_smaller_patch_sees_each_new_token_as_the_old_one_saw_it_spread_out():
    from reelforge.models.transformer import resize_patch_weights
    torch.manual_seed(0)
    old = VideoTransformer(TINY_DIT)
    for p in old.parameters():  # every zero-started layer live, so nothing passes trivially
        torch.nn.init.normal_(p, std=0.2)
    new = VideoTransformer(dataclasses.replace(TINY_DIT, patch=(1, 2, 2)))
    new.load_state_dict(resize_patch_weights(old.state_dict(), (1, 4, 4), (1, 2, 2)))
    latents, t, text = torch.randn(1, 4, 2, 4, 6), torch.rand(1), _text(1)
    spread = latents.repeat_interleave(2, -1).repeat_interleave(2, -2)  # each cell over 2x2
    with torch.no_grad():
        expected = torch.nn.functional.avg_pool3d(old(spread, t, **text), (1, 2, 2))
        assert torch.allclose(new(latents, t, **text), expected, atol=1e-4)
    with pytest.raises(ValueError, match="divides"):
        resize_patch_weights(old.state_dict(), (1, 4, 4), (1, 3, 3))


def test_rotary_positions_counted_in_another_patch_keep_distances_in_latent_cells():
    from reelforge.models.transformer import rope_frequencies
    fine = rope_frequencies((1, 4, 4), TINY_DIT.rope_split, "cpu", spacing=(1.0, 0.5, 0.5))
    coarse = rope_frequencies((1, 2, 2), TINY_DIT.rope_split, "cpu")
    # fine tokens 2 apart are as far as coarse neighbours: (row 2, col 2) of 4x4 vs (1, 1) of 2x2
    assert torch.allclose(fine.view(4, 4, -1)[2, 2], coarse.view(2, 2, -1)[1, 1])
    model = VideoTransformer(dataclasses.replace(TINY_DIT, patch=(1, 2, 2), rope_patch=(1, 4, 4)))
    torch.nn.init.normal_(model.proj_out.weight, std=0.1)
    assert model(torch.randn(1, 4, 2, 8, 8), torch.rand(1), **_text(1)).shape == (1, 4, 2, 8, 8)


def test_the_discriminator_judges_any_size_and_length_and_its_verdict_depends_on_the_caption():
    from reelforge.models.discriminator import DiscriminatorConfig, LatentDiscriminator

    torch.manual_seed(0)
    disc = LatentDiscriminator(DiscriminatorConfig(in_channels=4, width=8, text_dim=16))
    pooled = torch.randn(2, 16)
    for shape in [(2, 4, 3, 8, 8), (2, 4, 5, 16, 28)]:
        logits = disc(torch.randn(shape), pooled)
        assert logits.shape == (2,)
    latents = torch.randn(2, 4, 3, 8, 8)
    assert not torch.allclose(disc(latents, pooled), disc(latents, pooled.roll(1, 0)))


def test_a_discriminator_learns_to_tell_real_latents_from_their_blur():
    from reelforge.models.discriminator import (DiscriminatorConfig, LatentDiscriminator, discriminator_loss,
                                                generator_loss)

    torch.manual_seed(0)
    disc = LatentDiscriminator(DiscriminatorConfig(in_channels=4, width=8, text_dim=16))
    optimizer = torch.optim.Adam(disc.parameters(), lr=2e-3, betas=(0.0, 0.99))
    pooled = torch.randn(8, 16)
    for _ in range(60):
        real = torch.randn(8, 4, 3, 8, 8)
        blurred = torch.nn.functional.avg_pool3d(real, (1, 3, 3), 1, (0, 1, 1))  # smoother and fainter, as a mean is
        loss = discriminator_loss(disc(real, pooled), disc(blurred, pooled))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    real = torch.randn(8, 4, 3, 8, 8)
    blurred = torch.nn.functional.avg_pool3d(real, (1, 3, 3), 1, (0, 1, 1))
    assert discriminator_loss(disc(real, pooled), disc(blurred, pooled)) < 0.5  # 2 when it cannot tell
    assert generator_loss(disc(blurred, pooled)) > generator_loss(disc(real, pooled))
