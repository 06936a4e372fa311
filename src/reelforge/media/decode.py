"""Read video files back into frames with PyAV."""
from __future__ import annotations

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
    import io
    from fractions import Fraction
    buffer = io.BytesIO()
    h, w = frames.shape[1:3]
    padded = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height = padded.shape[2], padded.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(crf)}
        for frame in padded:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    buffer.seek(0)
    with av.open(buffer) as container:
        decoded = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    return decoded[:, :h, :w]
