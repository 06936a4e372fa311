"""Read video files back into frames with PyAV."""
from __future__ import annotations

import io
import os

import av
import numpy as np


def read_video(path: str | os.PathLike) -> tuple[np.ndarray, float, dict[str, str]]:
    """Frames (T, H, W, 3) uint8, frames per second, and the container's metadata."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 8)
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        metadata = dict(container.metadata)
    return np.stack(frames), fps, metadata


def h264_roundtrip(frames: np.ndarray, fps: float = 8.0, crf: int = 23) -> np.ndarray:
    """Encode to H.264 yuv420p in memory and decode again: what a viewer's file really holds."""
    from .encode import even_frames, write_av
    buffer = io.BytesIO()
    h, w = frames.shape[1:3]
    write_av(even_frames(frames), buffer, fps, "mp4", {}, crf)
    buffer.seek(0)
    with av.open(buffer) as container:
        decoded = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    return decoded[:, :h, :w]
