"""Distribution matching for the turbo student (DMD, Yin et al. 2024; DMD2, Yin et al. 2024).

Reflow regresses the student onto the teacher's pairs, and a regression target is the mean of what
the teacher might draw from that noise: a few steps land on a smear. Distribution matching instead
moves each clip the student makes towards where the teacher's guided velocity says real clips are,
and away from where a second model, trained on the student's own clips, says the student's are: the
difference of the two clean-clip estimates at a random noise level is the gradient of the KL
divergence between the two distributions. The "fake" model starts as a copy of the teacher and is
trained beside the student with the plain flow loss on its clips; the regression onto the pairs
stays, as in DMD, so the student keeps the teacher's layout for each noise draw.
"""
from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Callable

import torch

from ..flow.guidance import guide_kwargs
from ..flow.objective import clean_estimate, interpolate, sample_t, velocity_error
from ..models.transformer import VideoTransformer
from .checkpoint import resume_companion, save_companion


def guidance_per_row(t: torch.Tensor, guidance: float, interval: tuple[float, float], outside: float) -> torch.Tensor:
    """(B,) classifier-free guidance weight per clip, as the teacher's sampler applies it at each level."""
    inside = (t >= interval[0]) & (t <= interval[1])
    return torch.where(inside, torch.full_like(t, guidance), torch.full_like(t, min(outside, guidance)))


def verifier_push(verifier, estimate: torch.Tensor, wanted: list[dict[str, str]], t: torch.Tensor, scale: float,
                  interval: tuple[float, float]) -> torch.Tensor:
    """How far the teacher's verifier guidance (flow/guidance.verifier_guided) would still move each
    clean-clip estimate (B, C, T, h, w) on its way down from level t (B,): the sampler moves the
    estimate by scale dt / t along the verifier's unit-RMS gradient at every level in `interval`, so
    from t down to the interval's low end that is scale ln(t / low), taken along the gradient at t.
    Zeros for rows outside the interval (above it the estimate is a blur the verifier cannot read)
    and for rows that name no factor."""
    push = torch.zeros_like(estimate)
    for i, factors in enumerate(wanted):
        level = float(t[i])
        if not factors or not interval[0] < level <= interval[1]:
            continue
        with torch.enable_grad():
            clip = estimate[i:i + 1].detach().float().requires_grad_(True)
            grad, = torch.autograd.grad(verifier.log_likelihood(clip, factors).sum(), clip)
        push[i:i + 1] = scale * math.log(level / interval[0]) * grad / (grad.pow(2).mean().sqrt() + 1e-12)
    return push


def matching_direction(estimate: torch.Tensor, real_x0: torch.Tensor, fake_x0: torch.Tensor) -> torch.Tensor:
    """DMD's step for each clip: fake minus real clean estimate, over the mean distance of the clip
    from the real estimate (so that every clip and noise level moves by a comparable amount)."""
    scale = (estimate - real_x0).abs().mean(dim=tuple(range(1, estimate.dim())), keepdim=True).clamp_min(1e-4)
    return (fake_x0 - real_x0) / scale


class DistributionMatcher:
    """The teacher (real score, frozen), the fake score model and its optimiser."""

    def __init__(self, teacher: VideoTransformer, guidance: float, interval: tuple[float, float], outside: float,
                 lr: float, t_range: tuple[float, float] = (0.02, 0.98), verifier=None, verifier_guidance: float = 0.0,
                 verifier_interval: tuple[float, float] = (0.4, 0.9), guide: VideoTransformer | None = None,
                 guide_weight: float = 1.0, guide_interval: tuple[float, float] = (0.0, 1.0)):
        self.real = teacher.eval().requires_grad_(False)
        # The teacher's branches are autoguided at high noise as it samples (flow/guidance.autoguided).
        self.guide = None if guide is None else guide.eval().requires_grad_(False)
        self.guide_weight, self.guide_interval = guide_weight, guide_interval
        # The teacher samples with verifier guidance too: its real clips are where the pushed estimate is.
        self.verifier = None if verifier is None else verifier.eval().requires_grad_(False)
        self.verifier_guidance, self.verifier_interval = verifier_guidance, verifier_interval
        self.fake = copy.deepcopy(teacher).train().requires_grad_(True)
        self.guidance, self.interval, self.outside, self.t_range = guidance, interval, outside, t_range
        self.optimizer = torch.optim.AdamW(self.fake.parameters(), lr=lr, weight_decay=0.0, betas=(0.9, 0.99))
        self.losses: list[torch.Tensor] = []
        self.distances: list[torch.Tensor] = []

    def _levels(self, batch: int, generator: torch.Generator, device) -> torch.Tensor:
        low, high = self.t_range
        return (low + (high - low) * torch.rand(batch, generator=generator)).to(device)

    def generator_loss(self, estimate: torch.Tensor, cond: dict, uncond: dict, generator: torch.Generator,
                       bias_at: Callable[[torch.Tensor], torch.Tensor | None] = lambda t: None,
                       wanted: list[dict[str, str]] | None = None) -> torch.Tensor:
        """The student's distribution-matching loss on its clean-clip estimates (B, C, t, h, w): its
        gradient is the matching direction, and nothing flows into either score model.
        `bias_at(t)` gives the conditional rows' layout bias at the levels t (or None); `wanted`, each
        row's factors for the verifier to steer the real estimate towards."""
        b = estimate.shape[0]
        t = self._levels(b, generator, estimate.device)
        noise = torch.randn(estimate.shape, generator=generator).to(estimate.device)
        with torch.no_grad():
            x_t = interpolate(estimate.detach(), noise, t)
            bias = bias_at(t)
            cond_b = cond if bias is None else {**cond, "text_bias": bias}
            uncond_b = uncond if bias is None else {**uncond, "text_bias": torch.zeros_like(bias)}
            both = {k: torch.cat([uncond_b[k], cond_b[k]]) for k in cond_b}
            v_uncond, v_cond = self.real(torch.cat([x_t, x_t]), torch.cat([t, t]), **both).float().chunk(2)
            if self.guide is not None:
                v_uncond, v_cond = self._autoguided(x_t, t, uncond_b, cond_b, v_uncond, v_cond)
            g = guidance_per_row(t, self.guidance, self.interval, self.outside).view(-1, *[1] * (x_t.dim() - 1))
            real_x0 = clean_estimate(x_t, t, v_uncond + g * (v_cond - v_uncond))
            if self.verifier is not None and wanted:
                real_x0 = real_x0 + verifier_push(self.verifier, real_x0, wanted, t, self.verifier_guidance,
                                                  self.verifier_interval)
            fake_x0 = clean_estimate(x_t, t, self.fake(x_t, t, **cond_b).float())
            direction = matching_direction(estimate.detach().float(), real_x0, fake_x0)
            self.distances.append((fake_x0 - real_x0).abs().mean())
        target = (estimate.detach().float() - direction)
        return 0.5 * (estimate.float() - target).pow(2).mean()

    def _autoguided(self, x_t, t, uncond, cond, v_uncond, v_cond):
        """Each branch pushed away from the guide's, v_guide + w (v - v_guide), on the rows whose level
        lies in the guide's interval (weight 1, the plain teacher, elsewhere)."""
        w = guidance_per_row(t, self.guide_weight, self.guide_interval, 1.0)
        rows = w != 1.0
        if not rows.any():
            return v_uncond, v_cond
        x, levels = x_t[rows], t[rows]
        text = {k: torch.cat([uncond[k][rows], cond[k][rows]]) for k in cond}
        x2 = torch.cat([x, x])
        guide_text = guide_kwargs(text, x2, self.real, self.guide)  # the layout bias at the guide's patch
        g_uncond, g_cond = self.guide(x2, torch.cat([levels, levels]), **guide_text).float().chunk(2)
        w = w[rows].view(-1, *[1] * (x.dim() - 1))
        v_uncond, v_cond = v_uncond.clone(), v_cond.clone()
        v_uncond[rows] = g_uncond + w * (v_uncond[rows] - g_uncond)
        v_cond[rows] = g_cond + w * (v_cond[rows] - g_cond)
        return v_uncond, v_cond

    def step(self, estimate: torch.Tensor, cond: dict, generator: torch.Generator, bf16: bool,
             bias_at: Callable[[torch.Tensor], torch.Tensor | None] = lambda t: None) -> None:
        """One flow-matching step of the fake model on the student's clips (detached), conditioned as
        it is queried."""
        clips = estimate.detach().float()
        t = sample_t(clips.shape[0], generator).to(clips.device)
        noise = torch.randn(clips.shape, generator=generator).to(clips.device)
        bias = bias_at(t)
        with torch.autocast(clips.device.type, dtype=torch.bfloat16, enabled=bf16):
            v = self.fake(interpolate(clips, noise, t), t, **(cond if bias is None else {**cond, "text_bias": bias}))
            loss = velocity_error(v, clips, noise).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.fake.parameters(), 1.0)
        self.optimizer.step()
        self.losses.append(loss.detach())

    def report(self) -> str:
        """Since the last report: the fake model's flow loss on the student's clips, and the mean
        distance between the real and fake clean estimates (what the student is pushed along)."""
        fake, gap = (float(torch.stack(x).mean()) if x else float("nan") for x in (self.losses, self.distances))
        self.losses, self.distances = [], []
        return f" fake {fake:.4f} gap {gap:.4f}"

    def save(self, run_dir: Path) -> None:
        save_companion(run_dir, "fake", self.fake, self.optimizer)

    def resume(self, run_dir: Path, log: Callable[[str], None]) -> None:
        if resume_companion(run_dir, "fake", self.fake, self.optimizer):
            log("fake score model resumed")
