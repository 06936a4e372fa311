"""Write frames to video and image files with PyAV and Pillow; atomically (temp file, then rename)."""
from __future__ import annotations

import contextlib
import os
import queue
import tempfile
import threading
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable

import av
import numpy as np

FORMATS = ("mp4", "webm", "gif", "png")


class OutputError(ValueError):
    """An output path or format that cannot be written."""


def as_chunks(frames, chunk: int = 16) -> Iterable[np.ndarray]:
    """uint8 frames (T, H, W, 3) as views of `chunk` frames, or an iterable of pieces as it is."""
    if isinstance(frames, np.ndarray):
        return (frames[i:i + chunk] for i in range(0, len(frames), chunk))
    return frames


_END, _ABORT = object(), object()


class FanOutAborted(RuntimeError):
    """The frames stopped coming before the end (the producer failed)."""


def fan_out(chunks: Iterable[np.ndarray], consumers: list[Callable[[Iterable[np.ndarray]], None]]) -> None:
    """One pass over `chunks`, fed to several consumers at once (each writes a file), each in its
    own thread behind a queue of two chunks: the frames are made once and never held whole. A
    consumer that fails stops the pass and its error is raised; when the producer fails, every
    consumer's iterable raises, so each removes its half-written file."""
    queues = [queue.Queue(maxsize=2) for _ in consumers]
    failed: list[BaseException] = []

    def pieces(q):
        while (item := q.get()) is not _END:
            if item is _ABORT:
                raise FanOutAborted("the frames stopped coming")
            yield item

    def run(consume, q):
        try:
            consume(pieces(q))
        except BaseException as e:  # noqa: BLE001 - handed to the caller below
            failed.append(e)

    def put(q, item, thread):
        while thread.is_alive():  # a consumer that died reads no more: never wait on it
            try:
                return q.put(item, timeout=0.1)
            except queue.Full:
                continue

    threads = [threading.Thread(target=run, args=(c, q), daemon=True) for c, q in zip(consumers, queues)]
    for thread in threads:
        thread.start()
    end = _ABORT
    try:
        for part in chunks:
            if failed:
                break
            for q, thread in zip(queues, threads):
                put(q, part, thread)
        else:
            end = _END
    finally:
        for q, thread in zip(queues, threads):
            put(q, end, thread)
        for thread in threads:
            thread.join()
    if failed:
        raise failed[0]


def even_frames(frames: np.ndarray) -> np.ndarray:
    """yuv420p needs even sizes: pad by edge replication (never crop what the user asked for)."""
    t, h, w, _ = frames.shape
    if h % 2 == 0 and w % 2 == 0:
        return frames  # no copy: a long 1080p clip is gigabytes
    return np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def write_av(frames, path, fps: float, fmt: str, metadata: dict[str, str],
             crf: int, pix_fmt: str = "yuv420p") -> None:
    """Encode frames to MP4 (H.264) or WebM (VP9) at `path`, a file name or a binary file object.
    `frames`: uint8 (T, H, W, 3), or pieces of it in order (encoded as they arrive)."""
    codec = {"mp4": "libx264", "webm": "libvpx-vp9"}[fmt]
    with av.open(path, mode="w", format=fmt) as container:
        for key, value in metadata.items():
            container.metadata[key] = value
        stream = None
        for part in as_chunks(frames):
            part = even_frames(part) if fmt == "mp4" else part
            if stream is None:  # the size comes with the first piece
                stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
                stream.width, stream.height = part.shape[2], part.shape[1]
                stream.pix_fmt = pix_fmt
                stream.options = {"crf": str(crf)} if fmt == "mp4" else {"crf": str(crf), "b": "0"}
                if fmt == "mp4":
                    stream.options["movflags"] = "+faststart"
                    if stream.width * stream.height > 640 * 360:  # 1080p at x264's default preset takes longer than generating
                        stream.options["preset"] = "veryfast"
            for frame in part:
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
        if stream is None:
            raise OutputError("no frames to write")
        for packet in stream.encode():
            container.mux(packet)


def _write_gif(frames: np.ndarray, path: str, fps: float) -> None:
    from PIL import Image
    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:],
                   duration=int(round(1000 / fps)), loop=0)


def _write_png(frames: np.ndarray, path: str, metadata: dict[str, str]) -> None:
    """A single PNG: the frames side by side would be unreadable, so the middle frame, with metadata."""
    from PIL import Image, PngImagePlugin
    info = PngImagePlugin.PngInfo()
    for key, value in metadata.items():
        info.add_text(key, value)
    Image.fromarray(frames[len(frames) // 2]).save(path, format="PNG", pnginfo=info)


def check_output_path(path: str | os.PathLike, fmt: str | None = None) -> tuple[Path, str]:
    """Validate an output path before any compute is spent; returns (path, format)."""
    path = Path(path)
    fmt = fmt or path.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise OutputError(f"unknown output format {fmt!r}; allowed: {', '.join(FORMATS)}")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"output directory {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"output directory {str(parent)!r} is not writable")
    if path.is_dir():
        raise OutputError(f"output path {str(path)!r} is a directory")
    return path, fmt


def write_bytes_atomic(path: str | os.PathLike, data: bytes, mode: int | None = None) -> Path:
    """Write `data` to `path` through a temp file in the same folder and a rename: readers see the
    old file or the new one, never half of one. `mode` sets the permissions before the rename."""
    path = Path(path)
    with _replacing(path) as tmp:
        Path(tmp).write_bytes(data)
        if mode is not None:
            os.chmod(tmp, mode)
    return path


@contextlib.contextmanager
def _replacing(path: Path, suffix: str = ""):
    """A temp file beside `path` (mode 0600) that replaces it when the block ends, and is removed
    if the block fails."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent or ".")
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_video(frames, path: str | os.PathLike, fps: float, fmt: str | None = None,
                metadata: dict[str, str] | None = None, crf: int = 18) -> Path:
    """Write uint8 frames (T, H, W, 3), or pieces of them in order: MP4 and WebM are encoded piece
    by piece as they arrive; GIF and PNG take the frames whole. MP4 is H.264 yuv420p with
    faststart, so browsers play it."""
    path, fmt = check_output_path(path, fmt)
    metadata = metadata or {}
    with _replacing(path, suffix=f".{fmt}") as tmp:
        if fmt in ("mp4", "webm"):
            write_av(frames, tmp, fps, fmt, metadata, crf)
            return path
        frames = frames if isinstance(frames, np.ndarray) else np.concatenate(list(frames))
        if fmt == "gif":
            _write_gif(frames, tmp, fps)
        else:
            _write_png(frames, tmp, metadata)
    return path
