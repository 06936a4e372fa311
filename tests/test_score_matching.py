"""Distribution matching (training/score_matching.py): the student's clips move from where the fake
model says they are towards where the guided teacher says real clips are, and the fake model learns
the student's clips."""
import math

import pytest
import torch

from reelforge.training.config import ConfigError, DistillConfig
from reelforge.training.score_matching import DistributionMatcher, guidance_per_row, matching_direction


class PointFlow(torch.nn.Module):
    """The exact velocity field of data that is one point: v = (x_t - point) / t; text-blind, except that
    an empty caption (the unconditional rows) points at `uncond_point`."""

    def __init__(self, point: torch.Tensor, uncond_point: torch.Tensor | None = None):
        super().__init__()
        self.point = torch.nn.Parameter(point.clone())
        self.uncond_point = point.clone() if uncond_point is None else uncond_point

    def forward(self, x, t, text_tokens, text_mask, text_pooled, text_bias=None):
        empty = (~text_mask.any(1)).view(-1, 1, 1, 1, 1)
        target = torch.where(empty, self.uncond_point, self.point)
        return (x - target) / t.view(-1, 1, 1, 1, 1)


def text_rows(n: int, empty: bool) -> dict:
    mask = torch.zeros(n, 3, dtype=torch.bool) if empty else torch.ones(n, 3, dtype=torch.bool)
    return {"text_tokens": torch.zeros(n, 3, 4), "text_mask": mask, "text_pooled": torch.zeros(n, 4)}


def test_the_matching_direction_points_from_the_real_estimate_to_the_fake_one_in_units_of_the_clips_distance():
    estimate = torch.zeros(2, 1, 1, 2, 2)
    real = torch.full_like(estimate, 2.0)
    fake = torch.cat([torch.full_like(estimate[:1], 1.0), torch.full_like(estimate[:1], 2.0)])
    direction = matching_direction(estimate, real, fake)
    assert torch.allclose(direction[0], torch.full_like(direction[0], -0.5))  # (1 - 2) / mean |0 - 2|
    assert (direction[1] == 0).all()  # the fake model agrees with the real one: no push


def test_guidance_per_row_follows_the_teachers_interval():
    t = torch.tensor([0.2, 0.85, 0.9])
    assert guidance_per_row(t, 5.0, (0.0, 0.85), 2.0).tolist() == [5.0, 5.0, 2.0]


def test_the_student_moves_from_where_its_clips_are_towards_where_the_teacher_says_real_clips_are():
    real_point, student_point = torch.full((1, 1, 1, 2, 2), 1.0), torch.full((1, 1, 1, 2, 2), -1.0)
    matcher = DistributionMatcher(PointFlow(real_point), 1.0, (0.0, 1.0), 1.0, lr=1e-3)
    matcher.fake.point.data = student_point.clone()  # the fake model has learnt where the student's clips are
    estimate = student_point.clone().expand(4, -1, -1, -1, -1).clone().requires_grad_(True)
    loss = matcher.generator_loss(estimate, text_rows(4, False), text_rows(4, True), torch.Generator().manual_seed(0))
    loss.backward()
    assert (estimate.grad < 0).all()  # descending it raises every value, towards the real point
    # Where the student already draws what the teacher draws, nothing pulls.
    at_real = real_point.expand(4, -1, -1, -1, -1).clone().requires_grad_(True)
    matcher.fake.point.data = real_point.clone()
    matcher.generator_loss(at_real, text_rows(4, False), text_rows(4, True), torch.Generator().manual_seed(0)).backward()
    assert at_real.grad.abs().max() < 1e-3


def test_the_real_score_is_guided_away_from_the_unconditional_branch():
    point, uncond = torch.full((1, 1, 1, 2, 2), 1.0), torch.full((1, 1, 1, 2, 2), 0.0)
    estimate = point.expand(2, -1, -1, -1, -1).clone().requires_grad_(True)
    unguided = DistributionMatcher(PointFlow(point, uncond), 1.0, (0.0, 1.0), 1.0, lr=1e-3)
    unguided.generator_loss(estimate, text_rows(2, False), text_rows(2, True), torch.Generator().manual_seed(0)).backward()
    assert estimate.grad.abs().max() < 1e-3  # guidance 1: the conditional branch alone, which is where the clip is
    estimate.grad = None
    guided = DistributionMatcher(PointFlow(point, uncond), 3.0, (0.0, 1.0), 1.0, lr=1e-3)
    guided.generator_loss(estimate, text_rows(2, False), text_rows(2, True), torch.Generator().manual_seed(0)).backward()
    assert (estimate.grad < 0).all()  # guided past the conditional point, away from the unconditional one


def test_the_real_score_is_autoguided_away_from_the_guide_only_inside_the_guides_interval():
    point, weaker = torch.full((1, 1, 1, 2, 2), 1.0), torch.full((1, 1, 1, 2, 2), 0.0)
    estimate = point.expand(4, -1, -1, -1, -1).clone().requires_grad_(True)

    def matcher(interval):
        return DistributionMatcher(PointFlow(point), 1.0, (0.0, 1.0), 1.0, lr=1e-3, guide=PointFlow(weaker),
                                   guide_weight=3.0, guide_interval=interval)

    matcher((0.0, 1.0)).generator_loss(estimate, text_rows(4, False), text_rows(4, True),
                                       torch.Generator().manual_seed(0)).backward()
    assert (estimate.grad < 0).all()  # extrapolated past the teacher's point, away from the guide's
    estimate.grad = None
    matcher((0.99, 1.0)).generator_loss(estimate, text_rows(4, False), text_rows(4, True),  # levels reach 0.98
                                        torch.Generator().manual_seed(0)).backward()
    assert estimate.grad.abs().max() < 1e-3  # the plain teacher, which draws where the clip is


def test_the_fake_model_learns_where_the_students_clips_are():
    matcher = DistributionMatcher(PointFlow(torch.zeros(1, 1, 1, 2, 2)), 1.0, (0.0, 1.0), 1.0, lr=0.05)
    clips = torch.full((4, 1, 1, 2, 2), 1.5)
    for _ in range(100):
        matcher.step(clips, text_rows(4, False), torch.Generator().manual_seed(0), bf16=False)
    assert torch.allclose(matcher.fake.point.data, clips[:1], atol=0.1)
    assert (matcher.real.point.data == 0).all()  # the teacher stays as it was
    assert " fake " in matcher.report()


def test_a_negative_matching_weight_is_refused():
    with pytest.raises(ConfigError, match="dmd_weight must be >= 0"):
        DistillConfig(dmd_weight=-1.0)


def test_the_verifier_pushes_only_rows_that_name_factors_inside_its_interval_towards_them():
    from reelforge.models.verifier import LatentVerifier, VerifierConfig
    from reelforge.training.score_matching import verifier_push

    torch.manual_seed(0)
    verifier = LatentVerifier(VerifierConfig(in_channels=4, width=8)).eval()
    estimate = torch.randn(3, 4, 2, 4, 4)
    wanted = [{"shape": "star"}, {}, {"shape": "star"}]
    push = verifier_push(verifier, estimate, wanted, torch.tensor([0.5, 0.5, 0.95]), 0.5, (0.4, 0.9))
    # What the sampler's pushes from t = 0.5 down to 0.4 add up to: 0.5 ln(0.5 / 0.4), along the unit gradient.
    assert push[0].pow(2).mean().sqrt() == pytest.approx(0.5 * math.log(0.5 / 0.4), rel=1e-4)
    assert (push[1] == 0).all() and (push[2] == 0).all()  # names nothing / above the interval
    before = verifier.log_likelihood(estimate[:1], wanted[0])
    after = verifier.log_likelihood(estimate[:1] + 0.05 * push[:1], wanted[0])
    assert after.sum() > before.sum()
