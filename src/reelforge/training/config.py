"""Training configs: frozen dataclasses read from JSON files in configs/; unknown keys are errors."""
from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class AutoencoderTrainConfig:
    stage: str = "autoencoder"
    run_dir: str = "runs/autoencoder"
    steps: int = 2500
    batch_size: int = 8
    num_frames: int = 9  # 1 + 4k; short clips are enough to learn causal 4x time compression
    width: int = 64
    height: int = 64
    fps: float = 8.0
    lr: float = 1e-3
    latent_noise: float = 0.1  # decoder learns to tolerate imperfect latents from the diffusion model
    # > 0: each clip's latent noise is drawn uniformly up to this instead (in latent standard
    # deviations), so the decoder also turns a diffusion model's rougher samples into clean frames.
    latent_noise_max: float = 0.0
    # A trained autoencoder to start from; with train_encoder false its encoder (and so the latent
    # space every transformer was trained on) stays fixed and only the decoder learns.
    init_from: str = ""
    train_encoder: bool = True
    # Weight of the error in frame-to-frame change (reconstruction's against the clip's). Measured:
    # decoded renders change 2.2x as much across a latent frame's 4-frame boundary as inside one
    # (the renders themselves: 1.0x), which shows as a jump every half second and at window joins.
    temporal_weight: float = 0.0
    # Weight of the error in pixel-to-pixel change: the shipped autoencoder keeps the analyzer's shape
    # in only 41-59% of held-out renders (benchmarks/autoencoder_psnr.py --prompts held_out).
    edge_weight: float = 0.0
    seed: int = 0
    checkpoint_every: int = 250
    log_every: int = 25
    model: dict = field(default_factory=dict)  # AutoencoderConfig overrides


@dataclass(frozen=True)
class TransformerTrainConfig:
    stage: str = "transformer"
    run_dir: str = "runs/transformer"
    autoencoder: str = "runs/autoencoder/model.safetensors"
    bank: str = "runs/bank"  # pre-encoded latents (see `reelforge train` with stage "bank")
    steps: int = 20000
    batch_size: int = 32
    lr: float = 4e-4
    warmup: int = 300
    weight_decay: float = 0.01
    text_dropout: float = 0.1  # the unconditional branch for classifier-free guidance
    ema_decay: float = 0.999
    seed: int = 0
    checkpoint_every: int = 500
    log_every: int = 50
    bf16: bool = True
    # Loss weight of latent cells an object touches is 1 + object_weight (see training/masks.py).
    # Keep it 0: the weight depends on x0, which the model cannot see at high noise, so the loss's
    # minimiser is no longer the posterior mean but one tilted towards "an object is here" by the
    # weight's ratio, at every cell at once. Measured: a model trained at 4 sampled dozens of object
    # blocks per frame; 100 unweighted steps cut that to one to three.
    object_weight: float = 0.0
    # ...so weight only frames at noise levels t <= object_weight_max_t, where the clean clip shows
    # through and the posterior of "object here" is near 0 or 1: no tilt, only emphasis on the
    # object's detail. 1.0 weights every level, as stages 2-6 were trained.
    object_weight_max_t: float = 1.0
    bank_fps: float = 8.0  # the frame rate the bank was rendered at, to place the objects in time
    # Share of clips whose latent frames each get their own noise level (diffusion forcing, Chen et
    # al. 2024): a model trained only with one level per clip was measured to ignore the other
    # frames' content (a held first second did not move the object in the rest); with clean or
    # cleaner frames beside noisy ones, using them is the only way to lower the loss.
    frame_t_prob: float = 0.0
    # Noise levels shifted towards t = 1 (flow/objective.sample_t). The first sampling steps, where
    # the layout is decided from the text alone, run at t > 0.9: unshifted that is 6% of training.
    t_shift: float = 1.0
    # Weights (safetensors) to start a fresh run from, e.g. an earlier stage's EMA; ignored on resume.
    init_from: str = ""
    # Learning-rate multiple for the absolute-position layer: it starts at zero in a fine-tune, and
    # at the trained layers' rate it was measured to stay near zero (weights ~0.003 after 575 steps).
    position_lr_scale: float = 1.0
    head_lr_scale: float = 1.0  # the convolutional head's multiple of the learning rate (`model.conv_head`)
    # Verifier feedback (training/feedback.py): > 0 adds this weight times the cross-entropy of the
    # frozen `verifier`'s reading of the model's clean-clip estimate, for clips whose noise level lies
    # in `verifier_interval`, against what their caption names.
    verifier_weight: float = 0.0
    verifier: str = "src/reelforge/weights/builtin/verifier.safetensors"
    verifier_interval: tuple = (0.3, 0.9)
    # > 0 adds this weight times flow/objective.temporal_loss: the clean-clip estimate's error should
    # change little from one latent frame to the next, so generated clips do not jump at every one.
    temporal_weight: float = 0.0
    # Share of the noise's variance common to all latent frames of a clip (flow/objective.frame_correlated_noise);
    # a model trained with it must be sampled with the same (the pipeline's `noise_correlation`).
    noise_correlation: float = 0.0
    device: str = "cpu"  # or "cuda", or "auto" (cuda where there is one)
    # When > 0, the step count is fitted (after warm-up) to end training in this many seconds; `steps`
    # is then an upper bound. For lent GPU time, whose rate is unknown beforehand.
    time_budget_s: float = 0.0
    # "bank": the pre-encoded latent bank; "stream": clips rendered by `workers` processes while
    # training runs (training/stream.py), kept in a ring buffer of `stream_capacity` clips.
    data: str = "bank"
    workers: int = 0
    stream_sizes: tuple = ((64, 64, 0.77), (112, 64, 0.115), (64, 112, 0.115))  # (width, height, weight)
    stream_capacity: int = 200_000
    stream_chunk: int = 32
    num_frames: int = 33
    two_object_prob: float = 0.15
    max_start: float = 2.0
    model: dict = field(default_factory=dict)  # TransformerConfig overrides

    # Layout guidance in training (flow/layout.py): on this share of the rows, the caption's object and
    # scene words get the cross-attention bias that sampling gives them along a planned path, here
    # along where the clip's object really is, at this strength; so the model learns to draw the
    # object where the bias says. 0: off (bank data only).
    layout_guidance: float = 0.0
    layout_prob: float = 0.5

    def __post_init__(self):
        if not 0 <= self.layout_prob <= 1 or self.layout_guidance < 0:
            raise ConfigError(f"layout_prob must be in [0, 1] and layout_guidance >= 0, got "
                              f"{self.layout_prob} and {self.layout_guidance}")
        if self.layout_guidance and self.data != "bank":
            raise ConfigError("layout_guidance in training needs the bank (data: 'bank')")
        if self.data not in ("bank", "stream"):
            raise ConfigError(f"data must be 'bank' or 'stream', not {self.data!r}")
        if not 0 <= self.noise_correlation < 1:
            raise ConfigError(f"noise_correlation must be in [0, 1), got {self.noise_correlation}")
        if self.verifier_weight < 0 or self.temporal_weight < 0:
            raise ConfigError(f"verifier_weight and temporal_weight must be >= 0, got {self.verifier_weight} "
                              f"and {self.temporal_weight}")
        if len(self.verifier_interval) != 2 or not 0 <= self.verifier_interval[0] <= self.verifier_interval[1] <= 1:
            raise ConfigError(f"verifier_interval must be two noise levels 0 <= low <= high <= 1, got {self.verifier_interval}")


@dataclass(frozen=True)
class BankConfig:
    stage: str = "bank"
    run_dir: str = "runs/bank"
    autoencoder: str = "runs/autoencoder/model.safetensors"
    # (width, height, clips): mostly the base size, plus 16:9-like and 9:16-like buckets so that
    # the rotary positions learn other aspect ratios.
    sizes: tuple = ((64, 64, 10240), (112, 64, 1536), (64, 112, 1536))
    num_frames: int = 33  # 4 s at 8 fps plus the causal first frame
    fps: float = 8.0
    two_object_prob: float = 0.15
    max_start: float = 2.0
    chunk: int = 64
    seed: int = 1


@dataclass(frozen=True)
class EnhanceTrainConfig:
    stage: str = "upscaler"  # or "interpolator"
    run_dir: str = "runs/upscaler"
    autoencoder: str = "src/reelforge/weights/builtin/autoencoder.safetensors"  # for realistic inputs
    steps: int = 1500
    clips_per_step: int = 4  # an upscaler step sees 4 x 9 frames; an interpolator step 4 x 5 pairs
    crop: int = 32  # upscaler: low-res crop size; 4x cheaper than whole 64x64 frames
    # Share of inputs passed through the autoencoder first. The upscaler learns to sharpen decoded
    # frames from it; for the interpolator the decoder's errors, which no in-between can undo,
    # swamped the motion signal (measured: no gain over the cross-fade at 0.5), so it trains clean.
    degrade_prob: float = 0.5
    # Upscaler: each run's squared error over bicubic's on the same run, so a plain background's
    # few object edges weigh as much as a textured scene's thousands (what a per-clip PSNR gain
    # measures); plain squared error let the textures drown the objects out (gain -1 to +1 dB on
    # plain backgrounds, +5 to +6 on textured ones, measured).
    relative_loss: bool = False
    lr: float = 2e-3
    seed: int = 0
    checkpoint_every: int = 250
    log_every: int = 25
    model: dict = field(default_factory=dict)  # UpscalerConfig / InterpolatorConfig overrides


@dataclass(frozen=True)
class DistillConfig:
    """Turbo (training/distill.py): stage "pairs" runs the teacher, stage "student" trains on its output."""
    stage: str = "pairs"  # or "student"
    run_dir: str = "runs/turbo"
    pairs_dir: str = "runs/turbo_pairs"
    teacher: str = "src/reelforge/weights/builtin"  # a model directory; its pipeline.json sets the sampler
    # (width, height, weight): the teacher's training buckets in the bank's proportions.
    buckets: tuple = ((64, 64, 0.77), (112, 64, 0.115), (64, 112, 0.115))
    # (latent frames, weight): 4 s clips, plus the shorter ones and the 4 s + context of an extension.
    latent_frames: tuple = ((9, 0.8), (5, 0.1), (11, 0.1))
    pair_chunks: int = 128
    chunk: int = 32
    teacher_steps: int = 24
    init_from: str = ""  # student: weights to start from (default: the teacher's)
    steps: int = 3000
    batch_size: int = 32
    lr: float = 1e-4
    warmup: int = 50
    ema_decay: float = 0.998
    frame_t_prob: float = 0.25
    seed: int = 0
    checkpoint_every: int = 100
    log_every: int = 25
    bf16: bool = True
    device: str = "cpu"  # or "cuda", or "auto"
    time_budget_s: float = 0.0  # student: fit the step count to this many seconds (see TransformerTrainConfig)
    # Adversarial distillation (models/discriminator.py; measured, not shipped: MODEL_CARD.md): > 0 adds
    # this weight times the adversarial loss of the student's clean-clip estimate to its reflow loss.
    adversarial_weight: float = 0.0
    adversarial_real: str = "bank"  # what the discriminator sees as real: "bank" clips or the "teacher"'s outputs
    bank: str = "runs/bank"  # renderer clips' latents, for adversarial_real "bank"
    disc_lr: float = 2e-4  # twice the student's, as GANs usually give their discriminator
    disc_width: int = 64  # channels of its first convolution (then twice that)
    # Pairs: drawn through the teacher's whole pipeline (its guidance, autoguidance, verifier and layout
    # guidance: a user's clip, as pipeline.py makes it), one clip at a time with a seed of its own, and
    # stored with the path its layout guidance planned. Otherwise batched through the sampler with
    # classifier-free guidance and autoguidance only.
    teacher_pipeline: bool = False
    # Student: the layout bias (flow/layout.py) along each pair's planned path at this strength, at noise
    # levels in `layout_interval`, as the student's own pipeline will give it (needs teacher_pipeline pairs).
    # A regression target is the mean of the teacher's possible outputs; given the path, the object's place
    # is no longer among the things averaged.
    layout_guidance: float = 0.0
    layout_interval: tuple = (0.4, 1.0)
    # Distribution matching (training/score_matching.py): > 0 adds this weight times DMD's loss on the
    # student's clean-clip estimates, the real score being the teacher guided as its pipeline.json
    # says and the fake one a copy of it trained at `dmd_lr` on the student's clips.
    dmd_weight: float = 0.0
    dmd_lr: float = 1e-4
    dmd_verifier: bool = False  # the real estimate also pushed by the teacher's verifier guidance, as it samples
    dmd_autoguidance: bool = False  # the real score also autoguided by the teacher's guide, as it samples

    def __post_init__(self):
        if self.dmd_weight < 0 or self.dmd_lr <= 0:
            raise ConfigError(f"dmd_weight must be >= 0 and dmd_lr > 0, got {self.dmd_weight} and {self.dmd_lr}")
        if self.layout_guidance < 0 or not 0 <= self.layout_interval[0] <= self.layout_interval[1] <= 1:
            raise ConfigError(f"layout_guidance must be >= 0 and layout_interval within [0, 1], got "
                              f"{self.layout_guidance} and {list(self.layout_interval)}")
        if self.adversarial_real not in ("bank", "teacher"):
            raise ConfigError(f"adversarial_real must be 'bank' or 'teacher', not {self.adversarial_real!r}")
        if self.adversarial_weight < 0:
            raise ConfigError(f"adversarial_weight must be >= 0, got {self.adversarial_weight}")


@dataclass(frozen=True)
class VerifierTrainConfig:
    """The latent verifier (models/verifier.py, training/verifier.py) on the latent bank."""
    stage: str = "verifier"
    run_dir: str = "runs/verifier"
    bank: str = "runs/bank"
    steps: int = 3000
    batch_size: int = 64
    lr: float = 2e-3
    warmup: int = 100
    weight_decay: float = 0.05
    ema_decay: float = 0.998
    # Latent noise up to this many deviations: a generated clip's latents are rougher than an encoded
    # render's (the decoder was fine-tuned for up to 0.4, training/autoencoder.py).
    noise_max: float = 0.6
    seed: int = 0
    checkpoint_every: int = 250
    log_every: int = 25
    # Under bf16 autocast the 3D convolutions' gradients went non-finite within 50 steps (measured,
    # here and in a tiny config); fp32 costs 1.6x the time.
    bf16: bool = False
    model: dict = field(default_factory=dict)  # VerifierConfig overrides

    def __post_init__(self):
        for name in ("steps", "batch_size", "warmup"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.noise_max < 0:
            raise ConfigError(f"noise_max must be >= 0, got {self.noise_max}")


STAGES = {"autoencoder": AutoencoderTrainConfig, "transformer": TransformerTrainConfig, "bank": BankConfig,
          "upscaler": EnhanceTrainConfig, "interpolator": EnhanceTrainConfig,
          "pairs": DistillConfig, "student": DistillConfig, "verifier": VerifierTrainConfig}


def load_config(path: str | Path):
    data = json.loads(Path(path).read_text())
    stage = data.get("stage")
    if stage not in STAGES:
        raise ConfigError(f"{path}: unknown stage {stage!r}; allowed: {', '.join(STAGES)}")
    cls = STAGES[stage]
    unknown = set(data) - {f.name for f in fields(cls)}
    if unknown:
        raise ConfigError(f"{path}: unknown keys {sorted(unknown)}; allowed: {sorted(f.name for f in fields(cls))}")
    for key in ("buckets", "latent_frames", "sizes", "stream_sizes"):
        if isinstance(data.get(key), list):
            data[key] = tuple(tuple(v) for v in data[key])
    for key in ("verifier_interval", "layout_interval"):
        if isinstance(data.get(key), list):
            data[key] = tuple(data[key])
    return cls(**data)
