"""Request bodies (JSON, multipart or urlencoded form) and uploaded files, checked before any work.

The official SDK sends `videos.create` as multipart even without a file, and `extend`/`edit` as JSON
unless a file is attached; nested objects arrive as `video[id]` form fields. Everything becomes one
plain dict, then the route's schema validates it the same way whichever encoding came in.
"""
from __future__ import annotations

import base64
import binascii
import io
import json
import re
from dataclasses import dataclass

import numpy as np
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.formparsers import FormParser, MultiPartException, MultiPartParser
from starlette.requests import Request

from .errors import ApiError, invalid_param, too_large

FORM_OVERHEAD_BYTES = 1 << 20  # room for the text fields beside one file
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")
MAX_SOURCE_SIDE = 1920
MAX_SOURCE_FRAMES = 20 * 60  # a minute at 20 fps; an extension keeps the whole source in memory


@dataclass
class Body:
    fields: dict  # nested: "video[id]" -> {"video": {"id": ...}}
    files: dict[str, bytes]


async def _read_capped(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large("body", int(declared), limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large("body", size, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _nest(items: list[tuple[str, object]]) -> dict:
    out: dict = {}
    for key, value in items:
        match = re.fullmatch(r"([^\[\]]+)\[([^\[\]]+)\]", key)
        if match:
            out.setdefault(match[1], {})
            if not isinstance(out[match[1]], dict):
                raise invalid_param(match[1], f"{match[1]} is given both as a value and as an object")
            out[match[1]][match[2]] = value
        else:
            out[key] = value
    return out


async def read_body(request: Request, max_upload_bytes: int) -> Body:
    """The request's fields and files; 400 for a malformed body, 413 for an oversized one."""
    limit = max_upload_bytes + FORM_OVERHEAD_BYTES
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await _read_capped(request, limit)

    async def stream():
        yield raw

    if content_type == "application/json":
        try:
            fields = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ApiError(400, f"the request body is not valid JSON: {e}", code="invalid_json") from None
        if not isinstance(fields, dict):
            raise ApiError(400, "the request body must be a JSON object", code="invalid_json")
        return Body(fields, {})
    if content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        try:
            if content_type == "multipart/form-data":
                form = await MultiPartParser(request.headers, stream(), max_files=4, max_fields=64,
                                             max_part_size=limit).parse()
            else:
                form = await FormParser(request.headers, stream()).parse()
        except (MultiPartException, UnicodeDecodeError, ValueError) as e:
            raise ApiError(400, f"the form body is malformed: {getattr(e, 'message', e)}", code="invalid_form") from None
        files, items = {}, []
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                files[key] = await value.read()
                await value.close()
            else:
                items.append((key, value))
        return Body(_nest(items), files)
    shown = content_type or "none"
    raise ApiError(400, f"unsupported content type {shown!r}; send application/json or multipart/form-data",
                   code="invalid_content_type")


def validate(schema, fields: dict):
    """The schema's instance, or a 400 naming the first bad parameter in OpenAI's words."""
    try:
        return schema.model_validate(fields)
    except ValidationError as e:
        error = e.errors()[0]
        param = ".".join(str(p) for p in error["loc"]) or None
        if error["type"] == "extra_forbidden":
            raise invalid_param(param, f"Unknown parameter: {param!r}", code="unknown_parameter") from None
        if error["type"] == "missing":
            raise invalid_param(param, f"Missing required parameter: {param!r}",
                                code="missing_required_parameter") from None
        message = str(error["msg"]).removeprefix("Value error, ")
        raise invalid_param(param, f"invalid {param}: {message}") from None


def decode_image(data: bytes, param: str, max_bytes: int, max_pixels: int) -> np.ndarray:
    """An uploaded image as (H, W, 3) uint8; 400 if it is not an image, 413 if it is too big."""
    from PIL import Image, UnidentifiedImageError
    if len(data) > max_bytes:
        raise too_large(param, len(data), max_bytes)
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in IMAGE_FORMATS:
                raise invalid_param(param, f"{param} is a {image.format} image; allowed: {', '.join(IMAGE_FORMATS)}")
            if image.width * image.height > max_pixels:
                raise ApiError(413, f"{param} is {image.width}x{image.height} pixels; at most {max_pixels} pixels "
                               "are allowed", param=param, code="too_large")
            return np.asarray(image.convert("RGB"))
    except Image.DecompressionBombError:
        raise ApiError(413, f"{param} has more than {max_pixels} pixels", param=param, code="too_large") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise invalid_param(param, f"{param} is not an image; allowed: {', '.join(IMAGE_FORMATS)}") from None


def data_url_bytes(url: str, param: str) -> bytes:
    match = re.fullmatch(r"data:image/[\w.+-]+;base64,(.*)", url, flags=re.S)
    if not match:
        raise invalid_param(param, f"{param} must be a base64 data: URL of an image "
                            "(data:image/png;base64,...); the server fetches no URLs")
    try:
        return base64.b64decode(match[1], validate=True)
    except (binascii.Error, ValueError):
        raise invalid_param(param, f"{param} is not valid base64") from None


def probe_video(data: bytes, param: str, max_bytes: int) -> tuple[int, int, float]:
    """An uploaded source video's (width, height, seconds), read from its headers only."""
    import av
    if len(data) > max_bytes:
        raise too_large(param, len(data), max_bytes)
    try:
        with av.open(io.BytesIO(data)) as container:
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            fps = float(stream.average_rate or stream.guessed_rate or 0)
            frames = stream.frames or (float(container.duration or 0) / 1e6 * fps)
    except (av.error.FFmpegError, IndexError, OSError, ValueError):
        raise invalid_param(param, f"{param} is not a video PyAV can read; upload an MP4") from None
    if not (0 < width <= MAX_SOURCE_SIDE and 0 < height <= MAX_SOURCE_SIDE) or not fps or not frames:
        raise invalid_param(param, f"{param} must be a video up to {MAX_SOURCE_SIDE} pixels a side with a known "
                            f"frame rate, got {width}x{height} at {fps:g} fps")
    if frames > MAX_SOURCE_FRAMES:
        raise ApiError(413, f"{param} has {frames:g} frames; at most {MAX_SOURCE_FRAMES} are allowed",
                       param=param, code="too_large")
    return width, height, frames / fps
