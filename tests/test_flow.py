import pytest
import torch

from reelforge.flow.guidance import guided_velocity
from reelforge.flow.objective import frame_correlated_noise, interpolate, temporal_loss, velocity_loss, velocity_target
from reelforge.flow.samplers import SamplerError, denoise, make_scheduler, Cancelled


def exact_velocity(x0):
    """The true velocity field when the data is the single point x0: v = (x_t - x0) / t."""
    def v(x, t):
        return (x - x0) / t.view(-1, 1)
    return v


@pytest.mark.parametrize("name", ["euler", "heun", "unipc"])
def test_samplers_reach_the_data_point(name):
    x0 = torch.tensor([[0.5, -1.0, 2.0]])
    noise = torch.randn(1, 3, generator=torch.Generator().manual_seed(0))
    out = denoise(exact_velocity(x0), noise.clone(), make_scheduler(name, 8, shift=2.0))
    assert torch.allclose(out, x0, atol=5e-3)


def test_interpolation_matches_the_convention():
    x0, noise = torch.zeros(2, 3), torch.ones(2, 3)
    t = torch.tensor([0.0, 1.0])
    assert torch.equal(interpolate(x0, noise, t), torch.tensor([[0.0] * 3, [1.0] * 3]))
    # Moving along the target velocity from x_t by t lands on x0.
    x = interpolate(x0, noise, torch.tensor([0.3, 0.3]))
    assert torch.allclose(x - 0.3 * velocity_target(x0, noise), x0)


def test_euler_integrates_a_linear_flow_exactly_in_one_step():
    x0 = torch.tensor([[1.0, 2.0]])
    out = denoise(exact_velocity(x0), torch.zeros(1, 2), make_scheduler("euler", 1))
    assert torch.allclose(out, x0, atol=1e-5)


@pytest.mark.parametrize("steps", [1, 2, 3, 4])
def test_every_euler_evaluation_moves_the_latents_an_even_share_of_the_way(steps):
    # diffusers' own spacing ends at t = 0.001, where a 4-step student's last pass did no work.
    seen, moves = [], []
    def velocity(x, t):
        seen.append(float(t[0]))
        return torch.ones_like(x)
    scheduler = make_scheduler("euler", steps)
    denoise(velocity, torch.zeros(1, 2), scheduler, on_step=lambda i, t, x: moves.append(float(x[0, 0])))
    assert seen == pytest.approx([1 - k / steps for k in range(steps)])
    assert torch.diff(torch.tensor([0.0] + moves)).neg().tolist() == pytest.approx([1 / steps] * steps)


def test_no_heun_evaluation_is_spent_at_the_end_of_the_path():
    seen = []
    denoise(lambda x, t: seen.append(float(t[0])) or torch.ones_like(x), torch.zeros(1, 2), make_scheduler("heun", 8))
    assert min(seen) == pytest.approx(0.25) and len(seen) == 7  # 4 Heun steps down to t = 1/4, then to 0


def test_on_step_can_cancel():
    calls = []
    with pytest.raises(Cancelled):
        denoise(lambda x, t: x, torch.zeros(1, 2), make_scheduler("euler", 10),
                on_step=lambda i, t, x: calls.append(i) or i < 2)
    assert calls == [0, 1, 2]


def test_unknown_sampler_is_named():
    with pytest.raises(SamplerError, match="allowed: euler, heun, unipc"):
        make_scheduler("ddim", 10)


def _text_sum_model(batches: list):
    """velocity = the text row's value (uncond 0, cond 1), so guided output = the guidance used."""
    def model(x, t, text_tokens):
        batches.append(x.shape[0])
        return text_tokens.sum(dim=(1, 2)).view(-1, 1) + 0 * x
    return model


def test_guidance_extrapolates_from_the_unconditional_branch():
    text = {"text_tokens": torch.tensor([[[0.0]], [[1.0]]])}  # uncond row first
    v = guided_velocity(_text_sum_model([]), torch.zeros(1, 1), torch.zeros(1), text, guidance=3.0)
    assert torch.allclose(v, torch.tensor([[3.0]]))


def _guided_at(t: float, guidance: float, batches: list, **kwargs) -> float:
    text = {"text_tokens": torch.tensor([[[0.0]], [[1.0]]])}
    return guided_velocity(_text_sum_model(batches), torch.zeros(1, 1), torch.full((1,), t), text, guidance,
                           interval=(0.2, 0.8), **kwargs).item()


def test_guidance_outside_its_interval_runs_the_conditional_branch_alone():
    batches = []
    assert (_guided_at(0.5, 3.0, batches), _guided_at(0.9, 3.0, batches)) == (3.0, 1.0) and batches == [2, 1]


def test_a_weaker_guidance_outside_the_interval_still_runs_both_branches():
    batches = []
    guided = [_guided_at(0.5, 3.0, batches, outside=2.0), _guided_at(0.9, 3.0, batches, outside=2.0),
              _guided_at(0.9, 1.5, batches, outside=2.0)]  # never above the guidance asked for
    assert guided == [3.0, 2.0, 1.5] and batches == [2, 2, 2]


def test_autoguidance_pushes_each_branch_away_from_the_guide_only_inside_its_interval():
    from types import SimpleNamespace

    from reelforge.flow.guidance import sampling_velocity
    guide_calls = []

    def model(x, t, text_tokens):  # the conditional row says 1, the unconditional 0
        return text_tokens.sum(dim=(1, 2)).view(-1, 1) + 0 * x
    model.cfg = SimpleNamespace(self_condition=False)

    def guide(x, t, text_tokens):  # a weaker model: half the answer
        guide_calls.append(x.shape[0])
        return 0.5 * model(x, t, text_tokens)
    text = {"text_tokens": torch.tensor([[[0.0]], [[1.0]]])}
    velocity = sampling_velocity(model, text, guidance=3.0, guide=guide, guide_weight=2.5, guide_interval=(0.8, 1.0))
    x = torch.zeros(1, 1)
    # Inside: the conditional branch becomes 0.5 + 2.5 (1 - 0.5) = 1.75, then CFG: 0 + 3 (1.75 - 0) = 5.25.
    assert velocity(x, torch.full((1,), 0.9)).item() == pytest.approx(5.25)
    assert velocity(x, torch.full((1,), 0.5)).item() == pytest.approx(3.0)  # outside: CFG alone
    assert guide_calls == [2]  # both CFG branches in one pass, and only inside the interval


def test_a_guide_without_self_conditioning_is_not_given_the_models_estimate():
    from types import SimpleNamespace

    from reelforge.flow.guidance import sampling_velocity

    def model(x, t, text_tokens, self_cond):  # self-conditioned
        return text_tokens.sum(dim=(1, 2)).view(-1, 1) + 0 * x + 0 * self_cond
    model.cfg = SimpleNamespace(self_condition=True)

    def guide(x, t, text_tokens):  # would raise on a self_cond argument
        return 0.5 * text_tokens.sum(dim=(1, 2)).view(-1, 1) + 0 * x
    guide.cfg = SimpleNamespace(self_condition=False)
    text = {"text_tokens": torch.tensor([[[0.0]], [[1.0]]])}
    velocity = sampling_velocity(model, text, guidance=3.0, guide=guide, guide_weight=2.5)
    assert velocity(torch.zeros(1, 1), torch.full((1,), 0.9)).item() == pytest.approx(5.25)


def test_staggered_sampler_reaches_the_data_with_later_frames_lagging():
    x0 = torch.randn(1, 2, 5, 3, 3, generator=torch.Generator().manual_seed(1))
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
    levels = []

    def v(x, t):  # the exact field per frame, t (B, T)
        levels.append(t[0].clone())
        return (x - x0) / t.clamp_min(1e-6).view(1, 1, -1, 1, 1)

    scheduler = make_scheduler("stagger", 12, shift=2.0, frames=5)
    out = denoise(v, noise.clone(), scheduler)
    assert torch.allclose(out, x0, atol=1e-4)
    assert all((t[:-1] <= t[1:]).all() for t in levels)  # frame 0 always at least as clean as frame 4
    assert levels[0].tolist() == [1.0] * 5 and levels[-1][0] == 0 and levels[-1][-1] > 0


def test_self_conditioned_sampling_feeds_each_step_the_guided_estimate_of_the_step_before():
    from types import SimpleNamespace

    from reelforge.flow.guidance import sampling_velocity
    seen = []

    class Model:
        cfg = SimpleNamespace(self_condition=True)

        def __call__(self, x, t, text_tokens, self_cond):
            seen.append(self_cond[:1].clone())
            return text_tokens.sum(dim=(1, 2)).view(-1, 1) + 0 * x
    text = {"text_tokens": torch.tensor([[[0.0]], [[1.0]]])}
    velocity = sampling_velocity(Model(), text, guidance=3.0)
    x, t = torch.ones(1, 1), torch.full((1,), 0.5)
    v = velocity(x, t)
    velocity(x, t)
    assert torch.equal(seen[0], torch.zeros(1, 1))  # the first step has no estimate yet
    assert torch.allclose(seen[1], x - 0.5 * v)  # then x0 = x_t - t v of the guided velocity


def test_shifted_noise_levels_move_towards_noise_and_keep_their_order():
    from reelforge.flow.objective import sample_t
    plain = sample_t(20000, torch.Generator().manual_seed(0))
    shifted = sample_t(20000, torch.Generator().manual_seed(0), shift=3.0)
    assert torch.all((shifted >= plain) & (shifted <= 1))
    order = torch.argsort(plain)
    assert torch.all(shifted[order].diff() >= -1e-6)  # the same order, up to float rounding
    # A sampler's first steps run above t = 0.9: shift 3 trains there about 3x as often.
    assert (shifted > 0.9).float().mean() > 2.5 * (plain > 0.9).float().mean()


def test_verifier_guidance_moves_the_clean_estimate_along_the_verifiers_unit_gradient_inside_its_interval():
    from types import SimpleNamespace

    from reelforge.flow.guidance import verifier_guided
    direction = torch.randn(2, 3, 2, 4, 4)
    # A verifier whose log-likelihood is linear in the clip: its gradient is `direction` everywhere.
    verifier = SimpleNamespace(log_likelihood=lambda x, wanted: (x * direction).sum((1, 2, 3, 4)))
    velocity = lambda x, t: 0.5 * x  # noqa: E731
    latents = torch.randn(2, 3, 2, 4, 4)
    steered = verifier_guided(velocity, verifier, {"shape": "star"}, scale=0.3, interval=(0.4, 0.9))
    unit = direction / direction.pow(2).mean((1, 2, 3, 4), keepdim=True).sqrt()
    t = torch.full((2,), 0.6)
    assert torch.allclose(steered(latents, t), 0.5 * latents - 0.3 / 0.6 * unit, atol=1e-5)
    # x0 = x_t - t v moved by exactly 0.3 along the unit gradient:
    moved = (latents - 0.6 * steered(latents, t)) - (latents - 0.6 * velocity(latents, t))
    assert torch.allclose(moved, 0.3 * unit, atol=1e-5)
    for level in (0.95, 0.2):  # outside the interval: the velocity as it was
        assert torch.equal(steered(latents, torch.full((2,), level)), velocity(latents, None))
    assert torch.equal(verifier_guided(velocity, verifier, {}, 0.3)(latents, t), velocity(latents, t))


def test_verifier_guidance_with_a_level_per_frame_pushes_only_the_frames_inside_its_interval():
    from types import SimpleNamespace

    from reelforge.flow.guidance import verifier_guided
    direction = torch.randn(1, 3, 2, 4, 4)
    verifier = SimpleNamespace(log_likelihood=lambda x, wanted: (x * direction).sum((1, 2, 3, 4)))
    velocity = lambda x, t: 0.5 * x  # noqa: E731
    latents = torch.randn(1, 3, 2, 4, 4)
    t = torch.tensor([[0.1, 0.6]])  # frame 0 nearly clean (e.g. the staggered sampler's lead), frame 1 mid-noise
    out = verifier_guided(velocity, verifier, {"shape": "star"}, scale=0.3, interval=(0.4, 0.9))(latents, t)
    assert torch.equal(out[:, :, 0], 0.5 * latents[:, :, 0])
    pushed = direction[:, :, 1] / direction[:, :, 1].pow(2).mean().sqrt()  # unit RMS over the pushed frame
    assert torch.allclose(out[:, :, 1], 0.5 * latents[:, :, 1] - 0.3 / 0.6 * pushed, atol=1e-5)


def test_temporal_loss_costs_an_error_that_jumps_between_latent_frames_not_one_that_holds_still():
    x0, noise = torch.randn(2, 4, 5, 6, 6), torch.randn(2, 4, 5, 6, 6)
    t = torch.tensor([0.5, 0.9])
    steady = velocity_target(x0, noise) + 0.2
    jumping = velocity_target(x0, noise) + 0.2 * torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0]).view(1, 1, 5, 1, 1)
    assert torch.allclose(velocity_loss(steady, x0, noise), velocity_loss(jumping, x0, noise))  # the same size
    assert torch.allclose(temporal_loss(steady, x0, noise, t), torch.zeros(2))
    # a jump of 0.4 in velocity is one of 0.4 t in the clean clip estimate
    assert torch.allclose(temporal_loss(jumping, x0, noise, t), (0.4 * t) ** 2)
    # a weight (the object's cells) counts where it lies: error jumps only outside the weighted cells
    weight = torch.ones(1, 1, 5, 6, 6)
    weight[..., :3, :] = 9.0
    outside = velocity_target(x0, noise).clone()
    outside[..., 3:, :] = jumping[..., 3:, :]
    assert (temporal_loss(outside, x0, noise, t, weight) < 0.5 * temporal_loss(outside, x0, noise, t)).all()


def test_frame_correlated_noise_shares_a_part_across_latent_frames_and_is_plain_noise_at_zero():
    shape = (4, 8, 6, 16, 16)
    plain = frame_correlated_noise(shape, torch.Generator().manual_seed(1))
    assert torch.equal(plain, torch.randn(shape, generator=torch.Generator().manual_seed(1)))
    mixed = frame_correlated_noise(shape, torch.Generator().manual_seed(1), correlation=0.5)
    assert mixed.var().item() == pytest.approx(1.0, abs=0.03)  # still standard noise, element by element
    frames = mixed.transpose(1, 2).flatten(2)  # (B, T, rest)
    across_time = torch.corrcoef(torch.stack([frames[:, 0].flatten(), frames[:, 3].flatten()]))[0, 1]
    across_space = torch.corrcoef(torch.stack([mixed[..., 0].flatten(), mixed[..., 5].flatten()]))[0, 1]
    assert across_time.item() == pytest.approx(0.5, abs=0.05) and abs(across_space.item()) < 0.05
