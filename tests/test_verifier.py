"""The latent verifier (models/verifier.py): what it reads and how it scores a prompt's factors."""
import pytest
import torch
import torch.nn.functional as F

from reelforge.models.verifier import VOCAB, LatentVerifier, VerifierConfig, cell_positions
from reelforge.training.verifier import _mirror


def test_cells_are_placed_in_half_heights_from_the_centre_and_time_runs_zero_to_one():
    x, y, t = cell_positions(torch.zeros(1, 8, 3, 16, 28))[0]  # a 16:9-like latent grid, 3 frames
    assert x[0, 0, 0].item() == pytest.approx(-1.6875) and x[0, 0, -1].item() == pytest.approx(1.6875)
    assert y[0, 0, 0].item() == pytest.approx(-0.9375) and y[0, -1, 0].item() == pytest.approx(0.9375)
    assert t[0].unique().tolist() == [0.0] and t[-1].unique().tolist() == [1.0]
    assert cell_positions(torch.zeros(1, 8, 1, 4, 4))[0, 2].unique().tolist() == [0.0]  # one frame: an image


def test_a_mirrored_clip_swaps_left_and_right_and_no_other_motion():
    mirrored = [VOCAB["motion"][i] for i in _mirror(torch.arange(len(VOCAB["motion"])))]
    expected = [{"left": "right", "right": "left"}.get(m, m) for m in VOCAB["motion"]]
    assert mirrored == expected


def test_a_prompts_score_sums_the_log_probabilities_of_what_it_names_that_the_verifier_judges():
    torch.manual_seed(0)
    verifier = LatentVerifier(VerifierConfig(in_channels=4, width=8, factors=("color", "shape")))
    latents = torch.randn(3, 4, 2, 8, 8)
    logits = verifier(latents)
    expected = (F.log_softmax(logits["color"], 1)[:, VOCAB["color"].index("red")]
                + F.log_softmax(logits["shape"], 1)[:, VOCAB["shape"].index("star")])
    # motion has no head here and camera none anywhere: both are left out of the score.
    score = verifier.log_likelihood(latents, {"color": "red", "shape": "star", "motion": "left", "camera": "still"})
    assert torch.allclose(score, expected, atol=1e-6)
    assert verifier.log_likelihood(latents, {}).tolist() == [0.0, 0.0, 0.0]


def test_a_verifier_for_a_factor_the_world_does_not_have_is_refused():
    with pytest.raises(ValueError, match="unknown verifier factors \\['mood'\\]"):
        LatentVerifier(VerifierConfig(factors=("color", "mood")))


def test_a_noise_conditioned_verifier_reads_the_noise_level_and_takes_none_as_clean():
    torch.manual_seed(0)
    verifier = LatentVerifier(VerifierConfig(in_channels=4, width=8, noise_conditioned=True))
    latents = torch.randn(2, 4, 3, 8, 8)
    clean, noisy = verifier(latents, torch.zeros(2)), verifier(latents, torch.full((2,), 0.8))
    assert torch.equal(verifier(latents)["shape"], clean["shape"])
    assert not torch.allclose(clean["shape"], noisy["shape"])


def test_a_width_its_group_norms_cannot_split_and_a_value_the_world_lacks_are_named():
    with pytest.raises(ValueError, match="verifier width must be a multiple of 8"):
        LatentVerifier(VerifierConfig(width=12))
    verifier = LatentVerifier(VerifierConfig(in_channels=4, width=8))
    with pytest.raises(ValueError, match="unknown shape 'hexagon'; allowed: circle, square"):
        verifier.log_likelihood(torch.randn(1, 4, 2, 8, 8), {"shape": "hexagon"})
