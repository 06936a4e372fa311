"""Request and response shapes of the governance API (users, keys, publication, reviews, reports,
policy), in the same families as schemas.py: `...Create` / `...Update` in, `...Public` out.
Requests forbid unknown fields; lengths are capped here so an over-long field is a 400 naming it."""
from __future__ import annotations

from typing import Annotated, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from .accounts import MAX_REASON_CHARS
from .db import ApiKey, PolicyRule, User, Video
from .policy import KINDS, MAX_VALUE_CHARS
from .policy import MAX_NOTE_CHARS as MAX_RULE_NOTE_CHARS
from .reports import CATEGORIES, MAX_DESCRIPTION_CHARS, MAX_NOTE_CHARS, SEVERITIES, STATUSES
from .rights import rights_of

Reason = Annotated[StrictStr, Field(max_length=MAX_REASON_CHARS)]
Limit = Optional[Annotated[int, Field(strict=True, ge=0)]]
Name = Annotated[StrictStr, Field(max_length=100)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Users and keys ---------------------------------------------------------------------------------

class UserCreate(_Request):
    name: Name
    role: Name
    publisher: StrictBool = False


class UserUpdate(_Request):
    """Fields left out are kept; a limit sent as null falls back to the deployment's setting."""
    role: Optional[Name] = None
    publisher: Optional[StrictBool] = None
    videos_per_day: Limit = None
    seconds_per_day: Limit = None
    create_per_minute: Limit = None


class UserGroup(_Request):
    """A group of users by name, or everyone with a role."""
    users: Optional[Annotated[list[Name], Field(min_length=1, max_length=1000)]] = None
    role: Optional[Name] = None


class Suspension(UserGroup):
    reason: Optional[Reason] = None


class RevokeAll(_Request):
    reason: Optional[Reason] = None


class Limits(BaseModel):
    videos_per_day: Optional[int]
    seconds_per_day: Optional[int]
    create_per_minute: Optional[int]


class UserPublic(BaseModel):
    object: Literal["user"] = "user"
    name: str
    role: str
    rights: list[str]
    publisher: bool
    suspended: bool
    suspended_at: Optional[int]
    suspended_reason: Optional[str]
    limits: Limits  # null: the deployment's setting
    created_at: int

    @classmethod
    def of(cls, user: User) -> "UserPublic":
        return cls(name=user.name, role=user.role, rights=sorted(r.value for r in rights_of(user)),
                   publisher=user.publisher, suspended=user.suspended_at is not None, suspended_at=user.suspended_at,
                   suspended_reason=user.suspended_reason,
                   limits=Limits(videos_per_day=user.videos_per_day, seconds_per_day=user.seconds_per_day,
                                 create_per_minute=user.create_per_minute), created_at=user.created_at)


class KeyPublic(BaseModel):
    object: Literal["api_key"] = "api_key"
    id: int
    prefix: str
    user: str
    created_at: int
    last_used_at: Optional[int]
    revoked_at: Optional[int]

    @classmethod
    def of(cls, key: ApiKey, user_name: str) -> "KeyPublic":
        return cls(id=key.id, prefix=key.prefix, user=user_name, created_at=key.created_at,
                   last_used_at=key.last_used_at, revoked_at=key.revoked_at)


class KeyCreated(KeyPublic):
    key: str  # shown once


class SuspensionResult(BaseModel):
    users: list[str]
    cancelled_videos: list[str]


class RevokeAllResult(BaseModel):
    revoked_keys: int
    cancelled_videos: list[str]


# Publication and review -------------------------------------------------------------------------

class PublicationRequest(_Request):
    action: Literal["submit", "publish"]


class ReviewDecision(_Request):
    reason: Optional[Reason] = None


class PublicationPublic(BaseModel):
    object: Literal["video.publication"] = "video.publication"
    video_id: str
    state: str
    public: bool
    submitted_at: Optional[int]
    reviewed_by: Optional[str]
    reviewed_at: Optional[int]
    reason: Optional[str]  # the reviewer's, when rejected or withdrawn (or an approval note)
    published_at: Optional[int]
    share_url: Optional[str]

    @classmethod
    def of(cls, video: Video, share_url: Optional[str]) -> "PublicationPublic":
        return cls(video_id=video.id, state=video.publication, public=share_url is not None,
                   submitted_at=video.submitted_at, reviewed_by=video.reviewed_by, reviewed_at=video.reviewed_at,
                   reason=video.review_reason, published_at=video.published_at, share_url=share_url)


class ReviewItem(BaseModel):
    object: Literal["review_item"] = "review_item"
    video_id: str
    creator: str
    prompt: str
    model: str
    seconds: str
    size: str
    status: str
    state: str
    created_at: int
    submitted_at: Optional[int]
    reviewed_by: Optional[str]
    reason: Optional[str]
    flags: dict[str, int]  # open red-team reports by category
    content_url: str


class ReviewQueue(BaseModel):
    object: Literal["list"] = "list"
    data: list[ReviewItem]


class GalleryItem(BaseModel):
    object: Literal["gallery_item"] = "gallery_item"
    id: str
    creator: str
    prompt: str
    seconds: str
    size: str
    published_at: int
    share_url: str
    content_url: str


class Gallery(BaseModel):
    object: Literal["list"] = "list"
    data: list[GalleryItem]
    has_more: bool
    last_id: Optional[str] = None


class GalleryParams(BaseModel):
    after: Optional[str] = None
    limit: int = Field(20, ge=1, le=100)


# Reports ----------------------------------------------------------------------------------------

class ReportCreate(_Request):
    video_id: Annotated[StrictStr, Field(max_length=100)]
    category: Literal[CATEGORIES]
    severity: Literal[SEVERITIES]
    description: Annotated[StrictStr, Field(min_length=1, max_length=MAX_DESCRIPTION_CHARS)]
    start_seconds: Optional[Annotated[float, Field(ge=0)]] = None
    end_seconds: Optional[Annotated[float, Field(ge=0)]] = None


class Triage(_Request):
    status: Annotated[StrictStr, Field(max_length=32)]
    note: Optional[Annotated[StrictStr, Field(max_length=MAX_NOTE_CHARS)]] = None


class ReportPublic(BaseModel):
    object: Literal["report"] = "report"
    id: int
    video_id: str
    reporter: str
    category: str
    severity: str
    description: str
    start_seconds: Optional[float]
    end_seconds: Optional[float]
    prompt: str
    model: str
    seed: int
    status: str
    created_at: int
    triaged_by: Optional[str]
    triaged_at: Optional[int]
    triage_note: Optional[str]


class ReportsPublic(BaseModel):
    object: Literal["list"] = "list"
    data: list[ReportPublic]


class Credit(BaseModel):
    reporter: str
    accepted: int


class Credits(BaseModel):
    object: Literal["list"] = "list"
    data: list[Credit]


class ReportListParams(BaseModel):
    status: Optional[Literal[STATUSES]] = None
    mine: bool = False
    limit: int = Field(100, ge=1, le=1000)


# Policy -----------------------------------------------------------------------------------------

class PolicyRuleCreate(_Request):
    kind: Literal[KINDS]
    value: Annotated[StrictStr, Field(min_length=1, max_length=MAX_VALUE_CHARS)]
    note: Optional[Annotated[StrictStr, Field(max_length=MAX_RULE_NOTE_CHARS)]] = None


class PolicyRulePublic(BaseModel):
    object: Literal["policy_rule"] = "policy_rule"
    id: int
    kind: str
    value: str
    note: Optional[str]
    created_by: str
    created_at: int

    @classmethod
    def of(cls, rule: PolicyRule) -> "PolicyRulePublic":
        return cls(id=rule.id, kind=rule.kind, value=rule.value, note=rule.note, created_by=rule.created_by,
                   created_at=rule.created_at)


class PolicyPublic(BaseModel):
    object: Literal["policy"] = "policy"
    rules: list[PolicyRulePublic]


class BlockedPromptPublic(BaseModel):
    id: int
    user: str
    prompt: str
    rule: str
    created_at: int


class BlockedPrompts(BaseModel):
    object: Literal["list"] = "list"
    data: list[BlockedPromptPublic]
