"""Request and response shapes, field for field the official SDK's `videos` types.

Families as the FastAPI template names them: `VideoCreate` / `VideoRemix` / `VideoExtend` /
`VideoEdit` in, `VideoPublic` / `VideosPublic` / `VideoDeleted` out. Requests forbid unknown
fields so a typo is a 400 naming it, not a silently ignored setting.
"""
from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictStr, field_validator

from ..pipeline import MAX_PROMPT_CHARS
from .workers.base import MAX_GUIDANCE, MAX_STEPS, MIN_STEPS
from .db import Video

OPENAI_MAX_PROMPT_CHARS = 32_000


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _check_prompt(value: str) -> str:
    limit = min(MAX_PROMPT_CHARS, OPENAI_MAX_PROMPT_CHARS)
    if not value.strip():
        raise ValueError("prompt is empty; describe the video, e.g. 'a red ball rolls left on a blue background'")
    if len(value) > limit:
        raise ValueError(f"prompt has {len(value)} characters; at most {limit} are allowed")
    return value


def _seconds_text(value):
    """OpenAI sends seconds as a string ("4"); JSON clients often send 4. Both become "4"."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ValueError(f"seconds must be a string such as \"4\", got {value!r}")


Seconds = Annotated[str, BeforeValidator(_seconds_text)]


class VideoReference(_Request):
    """`{"id": "video_..."}`: a completed video of the caller's, instead of an uploaded file."""
    id: StrictStr


class ImageReference(_Request):
    """`input_reference` as an object: a base64 `data:` URL (the server fetches no URLs)."""
    image_url: Optional[StrictStr] = None
    file_id: Optional[StrictStr] = None


class VideoCreate(_Request):
    prompt: StrictStr
    model: Optional[StrictStr] = None
    seconds: Optional[Seconds] = None
    size: Optional[StrictStr] = None
    input_reference: Optional[ImageReference] = None  # an uploaded file arrives beside, not in here
    # Lax: the SDK sends extra_body fields as multipart text when it posts a form.
    seed: Optional[Annotated[int, Field(ge=0, lt=2**31)]] = None  # ours: the same seed, the same video
    # Ours too (the SDK passes them through extra_body): the engine's own knobs. Lax types, because
    # a multipart form sends every value as text.
    negative_prompt: Optional[Annotated[StrictStr, Field(max_length=MAX_PROMPT_CHARS)]] = None
    steps: Optional[Annotated[int, Field(ge=MIN_STEPS, le=MAX_STEPS)]] = None  # None: the model's default
    guidance: Optional[Annotated[float, Field(gt=0, le=MAX_GUIDANCE)]] = None  # None: the model's default
    # The distilled few-step student (model "reelforge-turbo"); where the served model has none,
    # First Block Cache at TURBO_CACHE_THRESHOLD instead.
    turbo: bool = False
    cache_threshold: Optional[Annotated[float, Field(ge=0, le=1)]] = None  # First Block Cache; 0 = off

    _prompt = field_validator("prompt")(_check_prompt)


class VideoRemix(_Request):
    prompt: StrictStr

    _prompt = field_validator("prompt")(_check_prompt)


class VideoExtend(_Request):
    prompt: StrictStr
    seconds: Seconds
    video: Optional[VideoReference] = None  # None: an uploaded file

    _prompt = field_validator("prompt")(_check_prompt)


class VideoEdit(_Request):
    prompt: StrictStr
    video: Optional[VideoReference] = None

    _prompt = field_validator("prompt")(_check_prompt)


class VideoError(BaseModel):
    code: str
    message: str


class VideoPublic(BaseModel):
    id: str
    object: Literal["video"] = "video"
    status: Literal["queued", "in_progress", "completed", "failed"]
    progress: int
    created_at: int
    completed_at: Optional[int] = None
    expires_at: Optional[int] = None
    error: Optional[VideoError] = None
    model: str
    seconds: str
    size: str
    prompt: Optional[str] = None
    remixed_from_video_id: Optional[str] = None

    @classmethod
    def of(cls, video: Video) -> "VideoPublic":
        error = VideoError(code=video.error_code, message=video.error_message or "") if video.error_code else None
        return cls(id=video.id, status=video.status, progress=video.progress, created_at=video.created_at,
                   completed_at=video.completed_at, expires_at=video.expires_at, error=error, model=video.model,
                   seconds=video.seconds, size=video.size, prompt=video.prompt,
                   remixed_from_video_id=video.remixed_from_video_id)


class VideosPublic(BaseModel):
    object: Literal["list"] = "list"
    data: list[VideoPublic]
    first_id: Optional[str] = None
    last_id: Optional[str] = None
    has_more: bool


class VideoDeleted(BaseModel):
    id: str
    object: Literal["video.deleted"] = "video.deleted"
    deleted: bool = True


class ListParams(BaseModel):
    after: Optional[str] = None
    limit: int = Field(20, ge=1, le=100)
    order: Literal["asc", "desc"] = "desc"
