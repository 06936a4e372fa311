"""A diffusion transformer over spacetime patches of video latents (DiT / PixArt / Wan lineage).

Tokens are spacetime patches of the latent video ((1 x 4 x 4) in the built-in model). Each block:
self-attention over all tokens with 3D rotary positions (time, row, column), cross-attention to the
text's token states, and an MLP; the timestep (plus the pooled sentence) modulates every block
through one shared adaLN projection and a per-block table (PixArt-alpha's adaLN-single), which
keeps the model small.
Rotary positions are grid indices (in units of `rope_patch` where set), so the same weights run at
any length and aspect ratio.
An optional convolutional head (`conv_head`) refines the linear output across token borders.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers.models.cache_utils import CacheMixin

from ..flow.objective import expand_t
from .config import JsonConfig


@dataclass(frozen=True)
class TransformerConfig(JsonConfig):
    in_channels: int = 8  # the autoencoder's latent channels
    patch: tuple[int, int, int] = (1, 4, 4)  # (t, h, w): 64x64x33 video -> 9x16x16 latents -> 9x4x4 = 144 tokens
    dim: int = 256  # ~7M parameters at depth 6: what a few CPU-hours can train
    depth: int = 6
    heads: int = 4
    mlp_ratio: float = 4.0
    text_dim: int = 384  # MiniLM's hidden size
    rope_split: tuple[int, int, int] = (16, 24, 24)  # head-dim channels for t, h, w (sum = dim / heads)
    # What the last layer outputs; forward() always returns velocity. "velocity" makes the network
    # carry the noise through to its output, and a small one carries it imperfectly: measured, its
    # clean-clip estimate x_t - t v at t = 1 followed each token's noise, so tokens committed on
    # their own. "preconditioned" is EDM's (Karras et al. 2022) x0 = c_skip x_t + c_out F, written
    # for x_t = (1 - t) x0 + t noise: F's target has unit variance at every t, and at t = 1 it is
    # the clean clip alone (no noise to carry, as Li & He 2025 argue); near t = 0 it is a small
    # residual on x_t. The loss and its minimiser are unchanged.
    prediction: str = "velocity"
    sigma_data: float = 1.0  # the latents' standard deviation (measured on the bank: 1.07)
    # Self-conditioning (Chen et al. 2023, "Analog Bits"): the model also sees its own clean-clip
    # estimate from the sampler's previous step (zeros at the first). Measured on the shipped model:
    # by t = 0.9 each token had committed to "object" or "not object" from its own noise; with the
    # previous estimate as input, every step can see where the whole clip's objects already are.
    self_condition: bool = False
    # Where a token sits in the frame (in the world's units from the centre, so every aspect ratio
    # agrees) and which latent frame it is, added to the tokens. Rotary positions are relative
    # only: measured on the shipped model (same seed, prompts differing in one word), changing
    # the shape moved the sampled latents by 0.11 and the motion by 0.05, against 0.72 for the
    # colour and 0.91 for another seed. From noise alone no token can tell it is at the centre,
    # where a still object belongs, or at the edge a leftward one starts from.
    absolute_positions: bool = False
    # Channels of a small convolutional head after the linear one (0: none). Measured: a (1, 4, 4)
    # patch's linear output decides each 16x16-pixel token on its own, and objects came out as
    # token-aligned squares; 3x3 convolutions over the latent grid see across token borders
    # (U-ViT's final convolution, Bao et al. 2023). Its last layer starts at zero, so a model
    # fine-tuned with it begins as the one it came from.
    conv_head: int = 0
    # Rotary positions (and the absolute time feature) counted in patches of this size instead of
    # the model's own (None), so a model fine-tuned from one patch size to another keeps its sense
    # of distance: measured on images, a (1, 2, 2) patch learns far more per sample than the
    # (1, 4, 4) one the built-in model was trained at (`benchmarks/image_tokens.py`).
    rope_patch: tuple[int, int, int] | None = None

    def __post_init__(self):
        if self.prediction not in ("velocity", "preconditioned"):
            raise ValueError(f"prediction must be 'velocity' or 'preconditioned', got {self.prediction!r}")


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal features of t in [0, 1] (scaled by 1000, as diffusers' timesteps are)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)
    args = 1000.0 * t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def rope_frequencies(grid: tuple[int, int, int], split: tuple[int, int, int], device,
                     spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> torch.Tensor:
    """Complex rotations (N, head_dim / 2) for a (t, h, w) token grid, N = t * h * w, neighbouring
    tokens `spacing` apart on each axis."""
    parts = []
    for axis, (size, channels) in enumerate(zip(grid, split)):
        freqs = 1.0 / (10000 ** (torch.arange(0, channels, 2, device=device).float() / channels))
        angles = torch.outer(torch.arange(size, device=device).float() * spacing[axis], freqs)  # (size, channels/2)
        shape = [1, 1, 1, channels // 2]
        shape[axis] = size
        parts.append(angles.view(shape).expand(*grid, channels // 2))
    angles = torch.cat(parts, dim=-1).reshape(-1, sum(split) // 2)  # (N, head_dim/2)
    return torch.polar(torch.ones_like(angles), angles)


POSITION_FREQS = (1.0, 2.0, 4.0, 8.0)  # x pi: a unit-wide frame holds 0.5 to 4 periods


def position_features(grid: tuple[int, int, int], patch: tuple[int, int, int], device,
                      time_spacing: float = 1.0) -> torch.Tensor:
    """Fourier features (N, 24) of each token's centre: x and y in units of the frame's shorter
    side from its centre (the world's coordinates), and time as token frame x time_spacing / 16.
    time_spacing is the rotary positions' (patch / rope_patch): a model fine-tuned from 4x-time
    latents onto 1x-time ones (rope_patch 4 in time) keeps the same feature for the same second."""
    t, h, w = grid
    _, ph, pw = patch
    unit = min(h * ph, w * pw)
    ys = ((torch.arange(h, device=device) + 0.5) * ph - h * ph / 2) / unit
    xs = ((torch.arange(w, device=device) + 0.5) * pw - w * pw / 2) / unit
    ts = torch.arange(t, device=device).float() * time_spacing / 16
    coords = torch.stack(torch.meshgrid(ts, ys, xs, indexing="ij"), -1).reshape(-1, 3)  # (N, 3): t, y, x
    angles = math.pi * coords[:, :, None] * torch.tensor(POSITION_FREQS, device=device)  # (N, 3, 4)
    return torch.cat([angles.sin(), angles.cos()], -1).flatten(1)


def resize_patch_weights(state: dict[str, torch.Tensor], old: tuple[int, int, int],
                         new: tuple[int, int, int]) -> dict[str, torch.Tensor]:
    """Weights trained at patch `old` made to start a model at a smaller patch `new` (each axis of
    `old` a multiple of `new`'s), FlexiViT's PI-resize (Beyer et al. 2023): a new token embeds as
    an old one would embed its content spread over the old patch (the input weights summed over
    each group of cells), and outputs the mean of what the old one output over that group."""
    ratios = [o // n for o, n in zip(old, new)]
    if any(o % n for o, n in zip(old, new)):  # a larger new patch leaves a remainder too
        raise ValueError(f"can only resize a patch to one that divides it, not {old} to {new}")
    grouped = [x for n, r in zip(new, ratios) for x in (n, r)]  # (t', rt, h', rh, w', rw)

    def regroup(weight: torch.Tensor, leading: int, reduce) -> torch.Tensor:
        # weight (..., C * prod(old), ...) with the patch axis at `leading`
        w = weight.movedim(leading, -1)
        channels = w.shape[-1] // math.prod(old)
        w = w.reshape(*w.shape[:-1], channels, *grouped)
        w = reduce(w, dim=(-5, -3, -1))
        return w.flatten(-4).movedim(-1, leading)

    state = dict(state)
    state["patch_embed.weight"] = regroup(state["patch_embed.weight"], 1, torch.sum)
    for name in ("proj_out", "head_features"):
        if f"{name}.weight" in state:
            state[f"{name}.weight"] = regroup(state[f"{name}.weight"], 0, torch.mean)
            state[f"{name}.bias"] = regroup(state[f"{name}.bias"], 0, torch.mean)
    return state


def apply_rope(x: torch.Tensor, freqs: torch.Tensor) -> torch.Tensor:
    """x (B, heads, N, head_dim) rotated pairwise by freqs (N, head_dim/2)."""
    xc = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
    return torch.view_as_real(xc * freqs).flatten(-2).type_as(x)


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv, self.out = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.q_norm, self.k_norm = nn.RMSNorm(dim // heads), nn.RMSNorm(dim // heads)

    def forward(self, x, freqs):
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)  # (B, nh, N, hs) each
        q, k = apply_rope(self.q_norm(q), freqs), apply_rope(self.k_norm(k), freqs)
        y = F.scaled_dot_product_attention(q, k, v)  # (B, nh, N, hs)
        return self.out(y.transpose(1, 2).reshape(b, n, d))


class CrossAttention(nn.Module):
    def __init__(self, dim: int, text_dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q, self.kv, self.out = nn.Linear(dim, dim), nn.Linear(text_dim, 2 * dim), nn.Linear(dim, dim)
        self.q_norm, self.k_norm = nn.RMSNorm(dim // heads), nn.RMSNorm(dim // heads)

    def forward(self, x, text, attn_mask):
        """attn_mask (B, 1, 1 or N, L): True where a word may be attended, or a float logit bias."""
        b, n, d = x.shape
        hs = d // self.heads
        q = self.q_norm(self.q(x).view(b, n, self.heads, hs).transpose(1, 2))  # (B, nh, N, hs)
        k, v = self.kv(text).view(b, text.shape[1], 2, self.heads, hs).permute(2, 0, 3, 1, 4)  # (B, nh, L, hs)
        if attn_mask.dtype != torch.bool:
            attn_mask = attn_mask.to(q.dtype)  # bf16 under autocast
        y = F.scaled_dot_product_attention(q, self.k_norm(k), v, attn_mask=attn_mask)
        return self.out(y.transpose(1, 2).reshape(b, n, d))


class Block(nn.Module):
    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        d = cfg.dim
        self.norm1 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.attn = SelfAttention(d, cfg.heads)
        self.norm_cross = nn.LayerNorm(d, eps=1e-6)
        self.cross = CrossAttention(d, d, cfg.heads)
        self.norm2 = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        hidden = int(d * cfg.mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(d, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, d))
        self.modulation = nn.Parameter(torch.randn(6, d) / d**0.5)

    def forward(self, hidden_states, t_mod, text, text_attn_mask, freqs):
        # `hidden_states`: the name diffusers' caching hooks look the tokens up by.
        x = hidden_states  # (B, N, d)
        # t_mod (B, 1 or N, 6, d): one noise level per clip, or one per token (per latent frame)
        shift1, scale1, gate1, shift2, scale2, gate2 = (self.modulation + t_mod).unbind(2)  # (B, 1 or N, d) each
        x = x + gate1 * self.attn(self.norm1(x) * (1 + scale1) + shift1, freqs)
        x = x + self.cross(self.norm_cross(x), text, text_attn_mask)
        return x + gate2 * self.mlp(self.norm2(x) * (1 + scale2) + shift2)


def preconditioned_velocity(out: torch.Tensor, latents: torch.Tensor, t: torch.Tensor, sigma_data: float) -> torch.Tensor:
    """t (B,), (B, 1) or per latent frame (B, T). v = (x_t - x0) / t with x0 = c_skip x_t + c_out out, c_skip = (1 - t) s^2 / D,
    c_out = t s / sqrt(D), D = (1 - t)^2 s^2 + t^2; simplified so nothing divides by t."""
    t = expand_t(t, latents).float()
    s2 = sigma_data**2
    d = (1 - t) ** 2 * s2 + t**2
    return ((t - (1 - t) * s2) / d * latents.float() - sigma_data / d.sqrt() * out.float()).to(out.dtype)


class VideoTransformer(nn.Module, CacheMixin):
    """Predicts the flow velocity (noise - x0) of latents (B, C, T, H, W) at noise level t
    (directly, or through its clean-clip estimate: `TransformerConfig.prediction`)."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.dim
        pt, ph, pw = cfg.patch
        inputs = 2 * cfg.in_channels if cfg.self_condition else cfg.in_channels  # latents, then the estimate
        self.patch_embed = nn.Linear(inputs * pt * ph * pw, d)
        if cfg.absolute_positions:
            self.pos_embed = nn.Linear(6 * len(POSITION_FREQS), d)
        self.time_embed = nn.Sequential(nn.Linear(256, d), nn.SiLU(), nn.Linear(d, d))
        self.pooled_embed = nn.Linear(cfg.text_dim, d)
        self.text_proj = nn.Sequential(nn.Linear(cfg.text_dim, d), nn.GELU(approximate="tanh"), nn.Linear(d, d))
        self.t_modulation = nn.Sequential(nn.SiLU(), nn.Linear(d, 6 * d))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.depth))
        self.norm_out = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.out_modulation = nn.Parameter(torch.randn(2, d) / d**0.5)
        self.proj_out = nn.Linear(d, cfg.in_channels * pt * ph * pw)
        if cfg.conv_head:
            self.head_features = nn.Linear(d, cfg.conv_head * pt * ph * pw)
            self.head_conv = nn.Sequential(
                nn.Conv3d(cfg.conv_head, cfg.conv_head, (1, 3, 3), padding=(0, 1, 1)), nn.GELU(approximate="tanh"),
                nn.Conv3d(cfg.conv_head, cfg.in_channels, (1, 3, 3), padding=(0, 1, 1)))
        self._init_weights()

    def _init_weights(self):
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        # adaLN-Zero: every residual branch and the output start at zero.
        nn.init.zeros_(self.t_modulation[-1].weight)
        nn.init.zeros_(self.proj_out.weight)
        if self.cfg.absolute_positions:  # starts as the model without them (init_from keeps that true)
            nn.init.zeros_(self.pos_embed.weight)
        for block in self.blocks:
            nn.init.zeros_(block.cross.out.weight)
        if self.cfg.conv_head:
            nn.init.zeros_(self.head_conv[-1].weight)
            nn.init.zeros_(self.head_conv[-1].bias)

    def patchify(self, latents: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int]]:
        b, c, t, h, w = latents.shape
        pt, ph, pw = self.cfg.patch
        if t % pt or h % ph or w % pw:
            raise ValueError(f"latent grid {t}x{h}x{w} is not divisible by the patch {self.cfg.patch}")
        grid = (t // pt, h // ph, w // pw)
        x = latents.reshape(b, c, grid[0], pt, grid[1], ph, grid[2], pw)
        x = x.permute(0, 2, 4, 6, 1, 3, 5, 7).reshape(b, -1, c * pt * ph * pw)  # (B, N, C*pt*ph*pw)
        return x, grid

    def unpatchify(self, x: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        """Tokens (B, N, c * pt * ph * pw) -> (B, c, T, H, W), for any channel count c."""
        b = x.shape[0]
        pt, ph, pw = self.cfg.patch
        c = x.shape[-1] // (pt * ph * pw)
        x = x.reshape(b, *grid, c, pt, ph, pw).permute(0, 4, 1, 5, 2, 6, 3, 7)  # (B, C, T', pt, H', ph, W', pw)
        return x.reshape(b, c, grid[0] * pt, grid[1] * ph, grid[2] * pw)

    def forward(self, latents: torch.Tensor, t: torch.Tensor, text_tokens: torch.Tensor,
                text_mask: torch.Tensor, text_pooled: torch.Tensor,
                self_cond: torch.Tensor | None = None, text_bias: torch.Tensor | None = None) -> torch.Tensor:
        """latents (B, C, T, H, W), t in [0, 1] shaped (B,) or per latent frame (B, T) (diffusion
        forcing: clean frames condition noisy ones), text_tokens (B, L, 384), text_mask (B, L),
        text_pooled (B, 384), self_cond: the previous clean-clip estimate (B, C, T, H, W), for a
        self-conditioned model only (None: zeros), text_bias: added to each token's cross-attention
        logits (B, N, L), N in patch order (layout guidance, flow/layout.py) -> velocity (B, C, T, H, W)."""
        if self.cfg.self_condition:
            x, grid = self.patchify(torch.cat([latents, torch.zeros_like(latents) if self_cond is None else self_cond], 1))
        elif self_cond is not None:
            raise ValueError("self_cond given to a model trained without self-conditioning")
        else:
            x, grid = self.patchify(latents)
        x = self.patch_embed(x)  # (B, N, d)
        spacing = (1.0, 1.0, 1.0) if self.cfg.rope_patch is None else tuple(
            p / r for p, r in zip(self.cfg.patch, self.cfg.rope_patch))
        if self.cfg.absolute_positions:
            x = x + self.pos_embed(position_features(grid, self.cfg.patch, x.device, spacing[0]).to(x.dtype))
        freqs = rope_frequencies(grid, self.cfg.rope_split, x.device, spacing)
        b = x.shape[0]
        t = t.view(b, -1)  # (B, 1) or (B, T)
        t_frames = t
        if t.shape[1] > 1:  # one noise level per latent frame: repeat over each frame's tokens
            if t.shape[1] != latents.shape[2] or self.cfg.patch[0] != 1:
                raise ValueError(f"per-frame t needs one level per latent frame ({latents.shape[2]}), got {t.shape[1]}")
            t = t.repeat_interleave(grid[1] * grid[2], dim=1)  # (B, N)
        temb = self.time_embed(timestep_embedding(t.flatten(), 256).to(x.dtype)).view(b, t.shape[1], -1)
        cond = temb + self.pooled_embed(text_pooled)[:, None]  # (B, 1 or N, d)
        t_mod = self.t_modulation(cond).view(b, t.shape[1], 6, self.cfg.dim)  # (B, 1 or N, 6, d)
        text = self.text_proj(text_tokens)  # (B, L, d)
        text_attn_mask = text_mask[:, None, None, :]  # (B, 1, 1, L): padding is never attended
        if text_bias is not None:  # built once for every block: padding at -inf, the bias on the rest
            text_attn_mask = (torch.zeros(text_attn_mask.shape, device=x.device).masked_fill(~text_attn_mask, float("-inf"))
                              + text_bias[:, None].float())  # (B, 1, N, L)
        for block in self.blocks:
            x = block(x, t_mod, text, text_attn_mask, freqs)
        shift, scale = (self.out_modulation[:, None] + cond[:, None]).unbind(1)  # (B, 1 or N, d) each
        x = self.norm_out(x) * (1 + scale) + shift
        out = self.unpatchify(self.proj_out(x), grid)
        if self.cfg.conv_head:
            out = out + self.head_conv(self.unpatchify(self.head_features(x), grid))
        if self.cfg.prediction == "velocity":
            return out
        return preconditioned_velocity(out, latents, t_frames, self.cfg.sigma_data)
