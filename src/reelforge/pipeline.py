"""Prompt -> frames: the text-to-video pipeline, in numbered steps as diffusers' pipelines read.

The pipeline composes the text encoder, transformer, samplers and autoencoder; it owns no model
code and prints nothing (progress goes through `on_step`).
"""
from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from safetensors import SafetensorError

from .delivery import Delivery, Enhancers, from_keyframes, join_windows, resize_video, retime, tensor_to_frames
from .flow.cache import first_block_cache
from .flow.guidance import sampling_velocity, verifier_guided
from .flow.layout import layout_guided, plan_cells, prompt_bias
from .flow.objective import frame_correlated_noise, interpolate
from .flow.samplers import SAMPLERS, denoise, make_scheduler
from .models.autoencoder import AutoencoderConfig, VideoAutoencoder
from .models.interpolator import FrameInterpolator, InterpolatorConfig
from .models.precision import channels_last, fast_autocast
from .models.text_encoder import TextEncoder
from .models.transformer import TransformerConfig, VideoTransformer
from .models.upscaler import UpscalerConfig, VideoUpscaler
from .models.verifier import LatentVerifier, VerifierConfig
from .prompting import PromptRewriter, named_factors
from .training.checkpoint import load_weights

BUILTIN_DIR = Path(__file__).parent / "weights" / "builtin"
TURBO_SUBDIR = "turbo"  # a model directory's distilled few-step student (training/distill.py), if it has one
MIN_SIDE, MAX_SIDE = 32, 1920
MIN_FPS, MAX_FPS = 1, 60
# What verifier guidance steers by: what a prompt is about. Steering size and speed too cost shape
# and motion more than it gained speed (MODEL_CARD.md, "A verifier, and guidance by it").
GUIDED_FACTORS = ("color", "shape", "motion", "background")
MAX_LAYOUT_GUIDANCE = 20.0  # a logit bias of 20 already shuts the object's words out of the frame's other tokens
# PipelineConfig's noise-level intervals: [lo, hi] pairs, checked and read from JSON alike.
INTERVAL_FIELDS = ("guidance_interval", "autoguidance_interval", "verifier_guidance_interval", "layout_interval")
MAX_PROMPT_CHARS = 32_000  # OpenAI's limit; the text encoder reads the first 48 tokens


class InputError(ValueError):
    """A request the pipeline cannot serve; the message names the value and what is allowed."""


class CheckpointError(RuntimeError):
    """A model directory that is missing, incomplete or corrupt."""


@dataclass(frozen=True)
class PipelineConfig:
    name: str = "reelforge-base"
    # Generation sizes the transformer was trained on: (width, height) per aspect bucket.
    buckets: tuple = ((64, 64), (112, 64), (64, 112))
    fps: float = 8.0  # the model's native frame rate
    max_seconds: float = 8.0  # longest single window (twice the training length)
    steps: int = 24
    guidance: float = 5.0
    # Noise levels t where guidance applies; elsewhere it is `guidance_outside` (1: the
    # conditional branch alone, at half the cost).
    guidance_interval: tuple[float, float] = (0.0, 1.0)
    guidance_outside: float = 1.0
    # Autoguidance: a weaker checkpoint of this transformer (a file in this directory; "" for none)
    # that every branch is pushed away from, by `autoguidance`, at noise levels in its interval.
    guide: str = ""
    autoguidance: float = 1.0
    autoguidance_interval: tuple[float, float] = (0.0, 1.0)
    sampler: str = "unipc"
    shift: float = 2.0  # timestep shift toward noise: more of the budget where layout is decided
    # The transformer was trained with a noise level per latent frame (diffusion forcing): known
    # frames (a start image, the video being extended) are then given to it clean, at t = 0.
    clean_context: bool = False
    # Share of the starting noise's variance common to all latent frames, as the transformer was
    # trained (flow/objective.frame_correlated_noise); 0: independent frames.
    noise_correlation: float = 0.0
    # Re-make the frames between latent frames' first frames with the learned interpolator
    # (delivery.from_keyframes): no jump every latent frame, a few points less shape (MODEL_CARD.md,
    # "Seams every half second").
    smooth_seams: bool = False
    # Verifier guidance (flow/guidance.verifier_guided): `verifier` is a file in the directory of the
    # autoencoder whose latents it reads (models/verifier.py); each step at noise levels in the
    # interval moves the clean-clip estimate by `verifier_guidance` along its gradient towards the
    # factors the prompt names; 0 for none.
    verifier: str = ""
    verifier_guidance: float = 0.0
    verifier_guidance_interval: tuple[float, float] = (0.4, 0.9)
    # Layout guidance (flow/layout.py): at noise levels in the interval, the conditional branch's
    # cross-attention is biased by `layout_guidance` towards the object's words along the path the
    # world's motion laws plan for what the prompt names; 0 for none.
    layout_guidance: float = 0.0
    layout_interval: tuple[float, float] = (0.6, 1.0)
    # A directory, relative to this one, holding the autoencoder and delivery networks this model
    # shares with another (a distilled student shares its teacher's: ".."); "" means this one.
    parts_from: str = ""

    def __post_init__(self):
        for name in INTERVAL_FIELDS:
            lo, hi = getattr(self, name)
            if not 0 <= lo < hi <= 1:
                raise ValueError(f"{name} must be [lo, hi] with 0 <= lo < hi <= 1, got {[lo, hi]}")
        if not 1 <= self.autoguidance <= 10:
            raise ValueError(f"autoguidance must be between 1 (off) and 10, got {self.autoguidance}")
        if self.autoguidance != 1 and not self.guide:
            raise ValueError("autoguidance needs a guide checkpoint ('guide': e.g. \"guide.safetensors\")")
        if not 0 <= self.verifier_guidance <= 10:
            raise ValueError(f"verifier_guidance must be between 0 (off) and 10, got {self.verifier_guidance}")
        if self.verifier_guidance and not self.verifier:
            raise ValueError("verifier guidance needs a verifier checkpoint ('verifier': e.g. \"verifier.safetensors\")")
        if not 0 <= self.layout_guidance <= MAX_LAYOUT_GUIDANCE:
            raise ValueError(f"layout_guidance must be between 0 (off) and {MAX_LAYOUT_GUIDANCE}, got {self.layout_guidance}")
        if not 0 <= self.noise_correlation < 1:
            raise ValueError(f"noise_correlation must be in [0, 1), got {self.noise_correlation}")
        if not 1 <= self.guidance_outside <= self.guidance:
            raise ValueError(f"guidance_outside must be between 1 and guidance ({self.guidance}), "
                             f"got {self.guidance_outside}")

    @classmethod
    def from_dict(cls, d: dict) -> "PipelineConfig":
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise CheckpointError(f"unknown pipeline config keys: {sorted(unknown)}")
        if "buckets" in d:
            d = {**d, "buckets": tuple(tuple(b) for b in d["buckets"])}
        for name in INTERVAL_FIELDS:
            if name in d:
                d = {**d, name: tuple(d[name])}
        try:
            return cls(**d)
        except ValueError as e:
            raise CheckpointError(str(e)) from None


class VideoOutput:
    """A generated video: uint8 frames (T, H, W, 3), or a `Delivery` that makes them on demand.
    `frames` makes them all (once); `chunks()` hands them on a few at a time, which is how the
    CLI encodes a long 1080p clip without holding it whole."""

    def __init__(self, frames: np.ndarray | None, fps: float, seed: int, settings: dict | None = None,
                 delivery: Delivery | None = None):
        if frames is None and delivery is None:
            raise ValueError("a VideoOutput needs frames or a delivery that makes them")
        self._frames, self.delivery = frames, delivery
        self.fps, self.seed, self.settings = fps, seed, settings or {}

    @property
    def frames(self) -> np.ndarray:
        if self._frames is None:
            self._frames = self.delivery.frames()
        return self._frames

    @property
    def count(self) -> int:
        return len(self._frames) if self._frames is not None else self.delivery.count

    @property
    def size(self) -> tuple[int, int]:
        """(width, height)."""
        return (self._frames.shape[2], self._frames.shape[1]) if self._frames is not None else self.delivery.size

    def chunks(self, chunk: int = 16):
        """uint8 (n, H, W, 3) pieces in order; made as they are asked for when not made yet."""
        if self._frames is not None:
            for i in range(0, len(self._frames), chunk):
                yield self._frames[i:i + chunk]
        else:
            yield from self.delivery.chunks(chunk)

    @property
    def metadata(self) -> dict[str, str]:
        """What goes into the file: the prompt, seed and model, readable by any player."""
        return {"title": self.settings.get("prompt", ""), "comment": json.dumps(self.settings, sort_keys=True)}


def parse_size(size: str | None) -> tuple[int, int] | None:
    if size is None:
        return None
    try:
        w, h = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise InputError(f"unknown size {size!r}; use WIDTHxHEIGHT, e.g. 64x64 or 1920x1080") from None
    if not (MIN_SIDE <= w <= MAX_SIDE and MIN_SIDE <= h <= MAX_SIDE):
        raise InputError(f"size {size!r} out of range; each side must be {MIN_SIDE}..{MAX_SIDE} pixels")
    return w, h


def turbo_dir(model_dir: Path) -> Path | None:
    """The distilled student's directory beside a model, or None when it has none."""
    path = model_dir / TURBO_SUBDIR
    return path if (path / "pipeline.json").is_file() else None


def read_config(model_dir: Path) -> PipelineConfig:
    pipeline_json = model_dir / "pipeline.json"
    try:
        return PipelineConfig.from_dict(json.loads(pipeline_json.read_text()))
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{str(pipeline_json)!r} is missing or corrupt: {e}") from None


def parts_dir(model_dir: Path, config: PipelineConfig) -> Path:
    """Where a model directory's autoencoder and the networks beside it live (`config.parts_from`)."""
    return (model_dir / config.parts_from) if config.parts_from else model_dir


def load_module(cls, cfg_cls, weights: Path) -> torch.nn.Module:
    """An eval-mode module of class `cls` from safetensors and the JSON config beside them."""
    config_path = weights.with_suffix(".json")
    if not weights.exists() or not config_path.exists():
        raise CheckpointError(f"checkpoint {str(weights)!r} (with its .json config) is missing")
    try:
        module = cls(cfg_cls.from_dict(json.loads(config_path.read_text())))
        load_weights(module, weights)
    except (SafetensorError, json.JSONDecodeError, RuntimeError, ValueError, OSError) as e:
        raise CheckpointError(f"checkpoint {str(weights)!r} is corrupt or does not match its config: "
                              f"{str(e).splitlines()[0][:200]}") from None
    return module.eval().requires_grad_(False)


def load_guide(model_dir: Path, config: PipelineConfig, transformer: VideoTransformer) -> VideoTransformer | None:
    """The model directory's autoguidance checkpoint (`config.guide`), checked to fit `transformer`;
    None when it has none."""
    if not config.guide:
        return None
    guide = load_module(VideoTransformer, TransformerConfig, model_dir / config.guide)
    mine, theirs = ((c.in_channels, c.text_dim, c.patch[0]) for c in (transformer.cfg, guide.cfg))
    if mine != theirs:
        raise CheckpointError(f"guide {str(model_dir / config.guide)!r} does not fit the transformer: latent channels, "
                              f"text width and time patch must match, got {theirs} against {mine}")
    return guide


def verifier_targets(named: dict[str, str], verifier: LatentVerifier) -> dict[str, str]:
    """Of the world's factors a prompt names, those verifier guidance steers towards (none: not steered)."""
    return {k: v for k, v in named.items() if k in GUIDED_FACTORS and k in verifier.cfg.factors}


def load_verifier(parts_dir: Path, config: PipelineConfig, autoencoder: VideoAutoencoder) -> LatentVerifier | None:
    """The verifier that steers sampling (`config.verifier`, beside the autoencoder whose latents it
    reads), checked to read them; None when the model has none."""
    if not config.verifier:
        return None
    verifier = load_module(LatentVerifier, VerifierConfig, parts_dir / config.verifier)
    if verifier.cfg.in_channels != autoencoder.cfg.latent_channels:
        raise CheckpointError(f"verifier {str(parts_dir / config.verifier)!r} reads {verifier.cfg.in_channels} latent "
                              f"channels; the autoencoder makes {autoencoder.cfg.latent_channels}")
    return verifier


class Pipeline:
    def __init__(self, transformer: VideoTransformer, autoencoder: VideoAutoencoder, text_encoder: TextEncoder,
                 config: PipelineConfig = PipelineConfig(), enhancers: Enhancers | None = None,
                 guide: VideoTransformer | None = None, verifier: LatentVerifier | None = None):
        self.transformer, self.text_encoder, self.config = transformer, text_encoder, config
        self.guide = guide  # the autoguidance checkpoint (PipelineConfig.guide), if the model has one
        self.verifier = verifier  # steers sampling (PipelineConfig.verifier), if the model has one
        self.autoencoder = channels_last(autoencoder) if autoencoder is not None else None
        self.enhancers = enhancers or Enhancers()
        self.model_dir: Path | None = None  # set by from_pretrained; where a turbo student is looked for
        self._turbo: Pipeline | None = None
        self._rewriter: PromptRewriter | None = None

    @property
    def rewriter(self) -> PromptRewriter:
        """Maps a user's words onto the grammar the built-in model learnt (prompting.py)."""
        if self._rewriter is None:
            self._rewriter = PromptRewriter(self.text_encoder)
        return self._rewriter

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None, text_encoder: TextEncoder | None = None,
                        turbo: bool = False) -> "Pipeline":
        """Load a model directory (transformer, autoencoder, pipeline JSON); the built-in model by
        default. `turbo`: its distilled few-step student instead (`<dir>/turbo`)."""
        path = Path(path) if path is not None else BUILTIN_DIR
        if not path.is_dir():
            raise CheckpointError(f"model directory {str(path)!r} does not exist")
        if turbo:
            if turbo_dir(path) is None:
                raise CheckpointError(f"model directory {str(path)!r} has no distilled turbo student "
                                      f"({TURBO_SUBDIR}/); train one with configs/turbo_*.json")
            path = turbo_dir(path)
        config = read_config(path)
        parts = parts_dir(path, config)
        transformer = load_module(VideoTransformer, TransformerConfig, path / "transformer.safetensors")
        guide = load_guide(path, config, transformer)
        autoencoder = load_module(VideoAutoencoder, AutoencoderConfig, parts / "autoencoder.safetensors")
        # The delivery networks are optional: a model directory without them delivers by resizing.
        enhancers = Enhancers(
            upscaler=load_module(VideoUpscaler, UpscalerConfig, parts / "upscaler.safetensors")
            if (parts / "upscaler.safetensors").exists() else None,
            interpolator=load_module(FrameInterpolator, InterpolatorConfig, parts / "interpolator.safetensors")
            if (parts / "interpolator.safetensors").exists() else None)
        pipe = cls(transformer, autoencoder, text_encoder or TextEncoder(), config, enhancers, guide,
                   load_verifier(parts, config, autoencoder))
        pipe.model_dir = path
        pipe.check_smoothing()
        return pipe

    @property
    def has_turbo(self) -> bool:
        return self.model_dir is not None and turbo_dir(self.model_dir) is not None

    def turbo(self) -> "Pipeline":
        """The distilled student beside this model, sharing its autoencoder, text encoder and delivery
        networks (loaded once, on first use)."""
        if self._turbo is None:
            if not self.has_turbo:
                raise CheckpointError(f"model {self.config.name!r} has no distilled turbo student")
            path = turbo_dir(self.model_dir)
            transformer = load_module(VideoTransformer, TransformerConfig, path / "transformer.safetensors")
            config = read_config(path)
            self._turbo = Pipeline(transformer, self.autoencoder, self.text_encoder, config, self.enhancers,
                                   verifier=load_verifier(parts_dir(path, config), config, self.autoencoder))
            self._turbo.model_dir = path
            self._turbo._rewriter = self._rewriter
            self._turbo.check_smoothing()
        return self._turbo

    def check_inputs(self, prompt, seconds, fps, size, guidance, steps, sampler) -> None:
        if not isinstance(prompt, str) or not prompt.strip():
            raise InputError("prompt is empty; describe the video, e.g. 'a red ball rolls left on a blue background'")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise InputError(f"prompt has {len(prompt)} characters; at most {MAX_PROMPT_CHARS} are allowed")
        if not (isinstance(seconds, (int, float)) and math.isfinite(seconds)) or not 0 < seconds <= self.config.max_seconds:
            raise InputError(f"seconds must be > 0 and <= {self.config.max_seconds:g}, got {seconds}")
        if not (isinstance(fps, (int, float)) and math.isfinite(fps)) or not MIN_FPS <= fps <= MAX_FPS:
            raise InputError(f"fps must be between {MIN_FPS} and {MAX_FPS}, got {fps}")
        if size is not None:
            parse_size(f"{size[0]}x{size[1]}")
        if not 1 <= steps <= 200:
            raise InputError(f"steps must be between 1 and 200, got {steps}")
        if not 0 < guidance <= 30:
            raise InputError(f"guidance must be > 0 and <= 30, got {guidance}")
        if sampler not in SAMPLERS:
            raise InputError(f"unknown sampler {sampler!r}; allowed: {', '.join(SAMPLERS)}")

    def check_smoothing(self) -> None:
        if self.config.smooth_seams and self.enhancers.interpolator is None:
            raise CheckpointError(f"{self.config.name}: smooth_seams needs the learned frame interpolator "
                                  "(interpolator.safetensors), which this model directory lacks")

    def bucket_for(self, size: tuple[int, int] | None) -> tuple[int, int]:
        """The trained generation size whose aspect ratio is closest to the request."""
        if size is None:
            return self.config.buckets[0]
        aspect = math.log(size[0] / size[1])
        return min(self.config.buckets, key=lambda b: abs(math.log(b[0] / b[1]) - aspect))

    @torch.no_grad()
    def __call__(self, prompt: str, negative_prompt: str | None = None, seconds: float = 4.0,
                 fps: float | None = None, size: tuple[int, int] | None = None, seed: int | None = None,
                 steps: int | None = None, guidance: float | None = None, sampler: str | None = None,
                 image: np.ndarray | None = None,
                 on_step: Callable[[int, float, torch.Tensor], bool | None] | None = None,
                 cache_threshold: float = 0.0, rewrite_prompt: bool = True,
                 layout_guidance: float | None = None) -> VideoOutput:
        """Text to video; with `image` (H, W, 3) uint8, the video starts from that image.
        `cache_threshold` > 0 skips transformer work on steps that change little (flow.cache).
        `rewrite_prompt` maps words the model never learnt onto ones it did (prompting.py); the
        settings keep both as `prompt` and `revised_prompt`. `layout_guidance` overrides the model's
        (flow/layout.py; 0: off)."""
        fps = self.config.fps if fps is None else fps
        width, height = self.bucket_for(size)
        prefix = None
        if image is not None:
            prefix = self._frames_to_model(np.asarray(image)[None], self.config.fps, (width, height))
        video, settings = self._generate(prompt, negative_prompt, seconds, fps, size, seed, steps, guidance,
                                         sampler, prefix, on_step, cache_threshold, rewrite_prompt, layout_guidance)
        return self._deliver(video, self.config.fps, fps, seconds, size, settings)

    @torch.no_grad()
    def extend(self, frames: np.ndarray, fps: float, prompt: str, seconds: float = 4.0,
               negative_prompt: str | None = None, seed: int | None = None, steps: int | None = None,
               guidance: float | None = None, sampler: str | None = None,
               on_step: Callable[[int, float, torch.Tensor], bool | None] | None = None,
               cache_threshold: float = 0.0, rewrite_prompt: bool = True,
               layout_guidance: float | None = None, layout_seed: int | None = None) -> VideoOutput:
        """Continue `frames` (T, H, W, 3) uint8 at `fps` by `seconds`: the returned video is the
        original followed by the continuation, at the original's size and frame rate.

        The last second of the original, encoded by the causal autoencoder, is held fixed while
        the rest is denoised (temporal inpainting), so the continuation starts where it ended.
        `layout_seed`: the seed whose planned path `frames` followed from their first frame (a long
        clip's first window); the continuation is steered along the rest of it. None: a video whose
        path nobody planned, continued without layout guidance."""
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
            raise InputError("a video to extend must be frames shaped (T, H, W, 3)")
        size = (frames.shape[2], frames.shape[1])
        bucket = self.bucket_for(size)
        context = min(len(frames), max(1, round(fps)))  # the last second
        tail = retime(torch.from_numpy(frames[-context:]).permute(3, 0, 1, 2), fps, self.config.fps,
                      context / fps)  # (3, T, H, W) uint8
        keep = 1 + 4 * ((tail.shape[1] - 1) // 4)  # the causal autoencoder takes 1 + 4k frames
        prefix = self._frames_to_model(tail[:, -keep:].permute(1, 2, 3, 0).numpy(), self.config.fps, bucket)
        plan = None if layout_seed is None else (layout_seed, len(frames) / fps - keep / self.config.fps)
        video, settings = self._generate(prompt, negative_prompt, seconds + keep / self.config.fps, fps, size,
                                         seed, steps, guidance, sampler, prefix, on_step, cache_threshold,
                                         rewrite_prompt, layout_guidance, plan)
        if fps == self.config.fps and keep <= len(frames):
            # Overlapping windows: the new decode redraws the held frames too; the join is made
            # over them (delivery.join_windows), so it shows no jump.
            both = self._deliver(video, self.config.fps, fps, seconds + keep / fps, size, settings)
            new = VideoOutput(both.frames[keep:], fps, both.seed, both.settings)
            joined = join_windows(frames[-keep:], both.frames[:keep + 1], self.enhancers.interpolator)
            out = np.concatenate([frames[:-keep], joined, new.frames])
        else:
            new = self._deliver(video[:, keep:], self.config.fps, fps, seconds, size, settings)
            out = np.concatenate([frames, new.frames])
        return VideoOutput(frames=out, fps=fps, seed=new.seed,
                           settings={**new.settings, "seconds": seconds, "extended_from_frames": len(frames)})

    def _frames_to_model(self, frames: np.ndarray, fps: float, bucket: tuple[int, int]) -> torch.Tensor:
        """Encode uint8 frames (T, H, W, 3), T = 1 + 4k, at the bucket size to latents (1, C, t, h, w)."""
        video = torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2).float() / 127.5 - 1
        video = resize_video(video, bucket)  # (3, T, H, W)
        with fast_autocast():  # models/precision.py: bf16 where the CPU has it
            return self.autoencoder.encode(video[None]).float()

    def _generate(self, prompt, negative_prompt, seconds, fps, size, seed, steps, guidance, sampler,
                  prefix: torch.Tensor | None, on_step, cache_threshold: float = 0.0,
                  rewrite_prompt: bool = True, layout_guidance: float | None = None,
                  layout_plan: tuple[int, float] | None = None) -> tuple[torch.Tensor, dict]:
        """Video (3, T, H, W) in [-1, 1] at the model's frame rate and bucket size, and its settings.
        `layout_plan`: (seed, start in seconds) of the path a clip with a prefix continues; a clip
        without one follows its own seed's path from the start."""
        self.check_smoothing()  # before any sampling: the config may have been changed since loading
        _, latents, settings = self.sample_latents(prompt, negative_prompt, seconds, fps, size, seed, steps, guidance,
                                                   sampler, prefix, on_step, cache_threshold, rewrite_prompt,
                                                   layout_guidance, layout_plan)
        with fast_autocast():  # models/precision.py: 3x faster decoding where the CPU has bf16
            video = self.autoencoder.decode(latents)[0].float()  # (3, T', H, W)
        if self.config.smooth_seams:
            video = from_keyframes(video, self.autoencoder.cfg.time_down, self.enhancers.interpolator)
            settings["smooth_seams"] = True
        return video, settings

    def sample_latents(self, prompt, negative_prompt=None, seconds=4.0, fps=None, size=None, seed=None, steps=None,
                       guidance=None, sampler=None, prefix: torch.Tensor | None = None, on_step=None,
                       cache_threshold: float = 0.0, rewrite_prompt: bool = True,
                       layout_guidance: float | None = None, layout_plan: tuple[int, float] | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """The starting noise and the sampled latents, both (1, C, t, h, w), and the settings: everything
        `__call__` does before decoding (turbo's pairs are drawn through it, training/distill.py)."""
        cfg = self.config
        fps = cfg.fps if fps is None else fps
        steps = cfg.steps if steps is None else steps
        guidance = cfg.guidance if guidance is None else guidance
        sampler = sampler or cfg.sampler
        # 1. Check inputs before any compute is spent.
        self.check_inputs(prompt, seconds, fps, size, guidance, steps, sampler)
        if not (isinstance(cache_threshold, (int, float)) and 0 <= cache_threshold <= 1):
            raise InputError(f"cache threshold must be between 0 (off) and 1, got {cache_threshold}")
        layout_guidance = cfg.layout_guidance if layout_guidance is None else layout_guidance
        if not (isinstance(layout_guidance, (int, float)) and 0 <= layout_guidance <= MAX_LAYOUT_GUIDANCE):
            raise InputError(f"layout guidance must be between 0 (off) and {MAX_LAYOUT_GUIDANCE}, got {layout_guidance}")
        seed = random.randrange(2**31) if seed is None else int(seed)
        # 2. Encode the prompt; the negative prompt (or nothing) is the unconditional branch.
        def revise(text: str | None) -> str | None:
            return self.rewriter(text).revised if rewrite_prompt and text else text

        revised = revise(prompt)
        prompts = [revised] if guidance == 1.0 else [revise(negative_prompt) or "", revised]
        text = self.text_encoder(prompts)
        text_kwargs = {"text_tokens": text.tokens, "text_mask": text.mask, "text_pooled": text.pooled}
        # 3. Prepare latents: enough model frames to cover the clip at the model's frame rate.
        width, height = self.bucket_for(size)
        num_frames = max(1, math.ceil(seconds * cfg.fps))
        latent_frames = 1 + math.ceil((num_frames - 1) / self.autoencoder.cfg.time_down)  # causal: 1 + 4k frames
        generator = torch.Generator().manual_seed(seed)
        shape = (1, self.autoencoder.cfg.latent_channels, latent_frames, height // 4, width // 4)
        noise = frame_correlated_noise(shape, generator, cfg.noise_correlation)  # (1, C, t, h, w)
        latents = noise.clone()
        # 4. Denoise; known frames (a start image, the end of a video to extend) ride their exact path.
        scheduler = make_scheduler(sampler, steps, cfg.shift, frames=latent_frames)
        def guided(text_kwargs):
            return sampling_velocity(self.transformer, text_kwargs, guidance, cfg.guidance_interval,
                                     cfg.guidance_outside, self.guide, cfg.autoguidance, cfg.autoguidance_interval)

        model_velocity = guided(text_kwargs)
        named = named_factors(revised)
        # A fresh clip follows its seed's path from the start; one that continues known frames (a start
        # image, an extension) only the path it was told to continue.
        plan = (seed, 0.0) if prefix is None else layout_plan
        bias = (self._layout_bias(revised, named, plan, latent_frames, width, height, text.tokens.shape[1],
                                  layout_guidance) if plan is not None and layout_guidance else None)
        if bias is not None:
            rows = torch.cat([torch.zeros_like(bias), bias]) if len(prompts) == 2 else bias  # (B, N, L)
            model_velocity = layout_guided(guided({**text_kwargs, "text_bias": rows}), model_velocity,
                                           cfg.layout_interval)
        wanted = verifier_targets(named, self.verifier) if self.verifier is not None and cfg.verifier_guidance else {}
        if wanted:
            model_velocity = verifier_guided(model_velocity, self.verifier, wanted, cfg.verifier_guidance,
                                             cfg.verifier_guidance_interval)

        def velocity(x, t):
            if prefix is None:
                return model_velocity(x, t)
            p = prefix.shape[2]
            x = x.clone()
            if cfg.clean_context:
                x[:, :, :p] = prefix
                t = (t[:, None].repeat(1, x.shape[2]) if t.dim() == 1 else t.clone())  # (B, T): known frames at t = 0
                t[:, :p] = 0.0
            else:
                x[:, :, :p] = interpolate(prefix, prefix_noise, t[:, :p] if t.dim() == 2 else t)
            v = model_velocity(x, t)
            v[:, :, :p] = prefix_noise - prefix  # the known frames ride their exact path
            return v

        prefix_noise = latents[:, :, :prefix.shape[2]] if prefix is not None else None
        with first_block_cache(self.transformer, cache_threshold):
            latents = denoise(velocity, latents, scheduler, on_step)
        if prefix is not None:
            latents[:, :, :prefix.shape[2]] = prefix
        settings = {"prompt": prompt, "negative_prompt": negative_prompt or "", "seed": seed, "steps": steps,
                    **({"revised_prompt": revised} if revised != prompt else {}),
                    **({"cache_threshold": cache_threshold} if cache_threshold else {}),
                    **({"autoguidance": cfg.autoguidance} if self.guide is not None and cfg.autoguidance != 1 else {}),
                    **({"verifier_guidance": cfg.verifier_guidance} if wanted else {}),
                    **({"layout_guidance": layout_guidance} if bias is not None else {}),
                    "guidance": guidance, "sampler": sampler, "seconds": seconds, "fps": fps, "model": cfg.name}
        return noise, latents, settings

    def _layout_bias(self, prompt: str, named: dict[str, str], plan: tuple[int, float], latent_frames: int, width: int,
                     height: int, length: int, strength: float) -> torch.Tensor | None:
        """(1, N, L) cross-attention bias along the planned path of the prompt's one object, or None
        (a prompt that names no motion, or no single object: an unplanned path would hold it still)."""
        cells = self.planned_cells(named, plan, latent_frames, width, height)
        bias = None if cells is None else prompt_bias(self.text_encoder.tokenizer, prompt, cells, length, strength)
        return None if bias is None else bias[None]

    def planned_cells(self, named: dict[str, str], plan: tuple[int, float], latent_frames: int, width: int,
                      height: int) -> torch.Tensor | None:
        """(N,) the share of each transformer token on the planned path of an object with the `named`
        factors, for plan (seed, start in seconds); None when they name no motion."""
        if "motion" not in named:
            return None
        seed, start = plan
        return plan_cells(named, seed, latent_frames, width, height, self.config.fps, self.transformer.cfg.patch,
                          self.autoencoder.cfg.time_down, self.autoencoder.cfg.space_down, start)

    def _deliver(self, video: torch.Tensor, source_fps: float, fps: float, seconds: float,
                 size: tuple[int, int] | None, settings: dict) -> VideoOutput:
        """Re-time and resize (3, T, H, W) in [-1, 1] to what was asked, as uint8 frames."""
        frames = tensor_to_frames(video)
        size = size or (frames.shape[2], frames.shape[1])
        settings = {**settings, "size": f"{size[0]}x{size[1]}"}
        return VideoOutput(None, fps, settings["seed"], settings,
                           delivery=Delivery(frames, source_fps, fps, seconds, size, self.enhancers))
