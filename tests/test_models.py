import pytest
import torch

from reelforge.models.autoencoder import AutoencoderConfig, VideoAutoencoder
from reelforge.models.transformer import TransformerConfig, VideoTransformer

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


def _random_dit():
    torch.manual_seed(0)
    model = VideoTransformer(TINY_DIT)
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
