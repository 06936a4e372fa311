"""Training clips rendered while the transformer trains: worker processes render uint8 frames and
object masks, the training device encodes them, and a ring buffer of latents per size bucket grows
(then turns over) as training goes.

Why not the latent bank on a GPU: an H100 trains the 7M transformer at thousands of clips a second,
so a fixed bank of 8k clips would be seen hundreds of times; the renderer on 12 cores makes about a
thousand fresh clips a second, and the buffer lets each be reused a few times instead.
"""
from __future__ import annotations

import queue
import random
import threading

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from ..models.autoencoder import VideoAutoencoder
from ..world.factors import ClipFactors
from ..world.render import render
from .data import draw_clip
from .masks import latent_object_mask


class RenderedChunks(IterableDataset):
    """Endless chunks {"bucket", "frames" uint8 (B, T, H, W, 3), "masks" bool (B, t, h, w), "factors"}."""

    def __init__(self, sizes: tuple, num_frames: int, fps: float, two_object_prob: float, max_start: float,
                 chunk: int, seed: int, time_down: int = 4, space_down: int = 4):
        self.sizes, self.num_frames, self.fps = sizes, num_frames, fps
        self.two_object_prob, self.max_start, self.chunk, self.seed = two_object_prob, max_start, chunk, seed
        self.time_down, self.space_down = time_down, space_down

    def __iter__(self):
        info = get_worker_info()
        rng = random.Random(f"{self.seed}-stream-{info.id if info else 0}")
        latent_frames = 1 + (self.num_frames - 1) // self.time_down
        while True:
            bucket = rng.choices(range(len(self.sizes)), [s[2] for s in self.sizes])[0]
            width, height = self.sizes[bucket][:2]
            frames, masks, factors = [], [], []
            for _ in range(self.chunk):
                f, start, _ = draw_clip(rng, self.two_object_prob, self.max_start)
                frames.append(render(f, width, height, self.fps, self.num_frames, start_time=start))
                masks.append(latent_object_mask(f, start, width, height, self.fps, latent_frames,
                                                self.time_down, self.space_down))
                factors.append(f.to_dict())
            yield {"bucket": bucket, "frames": torch.from_numpy(np.stack(frames)), "masks": torch.stack(masks),
                   "factors": factors}


class LatentStream:
    """A ring buffer of encoded clips per size bucket, fed by `workers` render processes."""

    def __init__(self, chunks: RenderedChunks, autoencoder: VideoAutoencoder, capacity: int, workers: int,
                 device: torch.device, bf16: bool = True):
        self.autoencoder = autoencoder.to(device).eval().requires_grad_(False)
        self.device, self.bf16 = device, bf16
        self.weights = [s[2] for s in chunks.sizes]
        self.capacity = [max(chunks.chunk, int(capacity * w / sum(self.weights))) for w in self.weights]
        self.latents: list[torch.Tensor | None] = [None] * len(self.weights)
        self.masks: list[torch.Tensor | None] = [None] * len(self.weights)
        self.factors: list[list] = [[None] * c for c in self.capacity]
        self.written = [0] * len(self.weights)  # clips ever written, so the ring overwrites the oldest
        self.received = 0
        loader = DataLoader(chunks, batch_size=None, num_workers=workers, prefetch_factor=4 if workers else None,
                            multiprocessing_context="spawn" if workers else None, persistent_workers=bool(workers))
        self._queue: queue.Queue = queue.Queue(maxsize=max(8, 2 * workers))
        self._thread = threading.Thread(target=self._feed, args=(loader,), daemon=True)
        self._thread.start()

    @property
    def filled(self) -> list[int]:
        """Clips held per bucket."""
        return [min(c, w) for c, w in zip(self.capacity, self.written)]

    def _feed(self, loader) -> None:
        for chunk in loader:
            self._queue.put(chunk)

    @torch.no_grad()
    def _add(self, chunk: dict) -> None:
        b = chunk["bucket"]
        video = chunk["frames"].to(self.device, non_blocking=True).permute(0, 4, 1, 2, 3).float().div(127.5).sub(1.0)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            latents = self.autoencoder.encode(video).float()
        masks = chunk["masks"].to(self.device)
        if self.latents[b] is None:
            self.latents[b] = torch.empty((self.capacity[b], *latents.shape[1:]), dtype=torch.float16,
                                          device=self.device)
            self.masks[b] = torch.empty((self.capacity[b], *masks.shape[1:]), dtype=torch.bool, device=self.device)
        n = latents.shape[0]
        slots = [(self.written[b] + i) % self.capacity[b] for i in range(n)]
        index = torch.tensor(slots, device=self.device)
        self.latents[b][index] = latents.half()
        self.masks[b][index] = masks
        for slot, f in zip(slots, chunk["factors"]):
            self.factors[b][slot] = f
        self.written[b] += n
        self.received += n

    def poll(self, max_chunks: int = 4) -> int:
        """Move up to `max_chunks` rendered chunks into the buffer without waiting; clips added."""
        before = self.received
        for _ in range(max_chunks):
            try:
                self._add(self._queue.get_nowait())
            except queue.Empty:
                break
        return self.received - before

    def wait_for(self, clips_per_bucket: int) -> None:
        """Block until every bucket holds at least this many clips (training needs all of them)."""
        while min(self.filled) < clips_per_bucket:
            self._add(self._queue.get())

    def sample(self, rng: random.Random, batch_size: int) -> tuple[torch.Tensor, torch.Tensor, list[ClipFactors], None]:
        """Latents (B, C, t, h, w) float, object masks (B, 1, t, h, w), factors and no layout cells
        (BankLatents.sample's fourth), from one bucket,
        after taking in whatever the workers have rendered since the last batch."""
        self.poll()
        b = rng.choices(range(len(self.weights)), self.weights)[0]
        held = self.filled[b]
        idx = [rng.randrange(held) for _ in range(batch_size)]
        index = torch.tensor(idx, device=self.device)
        factors = [ClipFactors.from_dict(self.factors[b][i]) for i in idx]
        return self.latents[b][index].float(), self.masks[b][index][:, None], factors, None  # no layout cells
