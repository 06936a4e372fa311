"""Pre-encode rendered clips to latents once, so transformer training spends its CPU on the
transformer. Each chunk is its own file (resumable); captions are re-drawn from the factors at
training time, so every epoch sees new wordings."""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Callable

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from ..models.autoencoder import AutoencoderConfig, VideoAutoencoder
from ..world.factors import ClipFactors
from .checkpoint import load_weights
from .config import BankConfig
from .data import draw_clip, render_batch


def autoencoder_config(path: str | Path) -> AutoencoderConfig:
    """The config beside an autoencoder's weights (its time and space factors, without the weights)."""
    return AutoencoderConfig.from_dict(json.loads(Path(path).with_suffix(".json").read_text()))


def load_autoencoder(path: str | Path) -> VideoAutoencoder:
    path = Path(path)
    model = VideoAutoencoder(autoencoder_config(path))
    load_weights(model, path)
    return model.eval()


@torch.no_grad()
def build_bank(cfg: BankConfig, log: Callable[[str], None] = lambda s: None) -> Path:
    autoencoder = load_autoencoder(cfg.autoencoder)
    for width, height, clips in cfg.sizes:
        _build_bucket(cfg, autoencoder, width, height, clips, log)
    return Path(cfg.run_dir)


def _build_bucket(cfg: BankConfig, autoencoder: VideoAutoencoder, width: int, height: int, clips: int,
                  log: Callable[[str], None]) -> None:
    run_dir = Path(cfg.run_dir) / f"{width}x{height}"
    run_dir.mkdir(parents=True, exist_ok=True)
    n_chunks = (clips + cfg.chunk - 1) // cfg.chunk
    for i in range(n_chunks):
        path = run_dir / f"chunk_{i:05d}.safetensors"
        if path.exists():
            _add_starts(cfg, width, height, i, path)
            continue
        video, _, factors = render_batch(_chunk_rng(cfg, width, height, i), cfg.chunk, width, height, cfg.num_frames,
                                         cfg.fps, two_object_prob=cfg.two_object_prob, max_start=cfg.max_start)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            latents = autoencoder.encode(video).float()
        _write_chunk(path, latents.half().contiguous(), factors, _chunk_starts(cfg, width, height, i))
        if i % 10 == 0:
            log(f"bank {width}x{height} chunk {i + 1}/{n_chunks}")


def _chunk_rng(cfg: BankConfig, width: int, height: int, i: int) -> random.Random:
    return random.Random(f"{cfg.seed}-{width}x{height}-{i}")  # chunk i is the same whenever it is made


def _chunk_starts(cfg: BankConfig, width: int, height: int, i: int) -> list[float]:
    """Each clip's start time, replayed from the chunk's seed (render_batch draws them in this order)."""
    rng = _chunk_rng(cfg, width, height, i)
    return [draw_clip(rng, cfg.two_object_prob, cfg.max_start)[1] for _ in range(cfg.chunk)]


def _write_chunk(path: Path, latents: torch.Tensor, factors: list, starts: list[float]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    save_file({"latents": latents}, str(tmp), metadata={"factors": json.dumps([f.to_dict() for f in factors]),
                                                        "starts": json.dumps(starts)})
    tmp.replace(path)


def _add_starts(cfg: BankConfig, width: int, height: int, i: int, path: Path) -> None:
    """Banks built before start times were recorded get them by replay, checked against the stored
    factors, so object masks can be drawn without re-encoding a single clip."""
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    if "starts" in meta:
        return
    rng = _chunk_rng(cfg, width, height, i)
    drawn = [draw_clip(rng, cfg.two_object_prob, cfg.max_start) for _ in range(cfg.chunk)]
    stored = [ClipFactors.from_dict(d) for d in json.loads(meta["factors"])]
    if [f for f, _, _ in drawn] != stored:
        raise ValueError(f"{path}: replaying its seed does not give its factors; was it built with another config?")
    _write_chunk(path, load_file(str(path))["latents"], stored, [start for _, start, _ in drawn])


def load_bank(run_dir: str | Path) -> dict[str, tuple[torch.Tensor, list[dict], list[float]]]:
    """Per size bucket ("WxH"): all latents (N, C, t, h, w) as fp16, the factors and the start time of
    each clip (0.0 where a chunk predates recorded starts)."""
    buckets = {}
    for bucket in sorted(p for p in Path(run_dir).iterdir() if p.is_dir()):
        buckets[bucket.name] = _load_bucket(bucket)
    if not buckets:
        raise FileNotFoundError(f"no latent bank in {run_dir}")
    return buckets


def _load_bucket(run_dir: Path) -> tuple[torch.Tensor, list[dict], list[float]]:
    latents, factors, starts = [], [], []
    for path in sorted(run_dir.glob("chunk_*.safetensors")):
        with safe_open(str(path), "pt") as f:
            meta = f.metadata()
        chunk_factors = json.loads(meta["factors"])
        factors.extend(chunk_factors)
        starts.extend(json.loads(meta.get("starts", "null")) or [0.0] * len(chunk_factors))
        latents.append(load_file(str(path))["latents"])
    return torch.cat(latents), factors, starts
