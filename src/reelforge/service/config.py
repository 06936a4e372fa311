"""One `Settings` object for the server and every `reelforge` command that touches its state.

Everything is read from the environment once (`Settings.from_env`); where state lives is chosen by
`REELFORGE_HOME` (default `~/.reelforge`): the SQLite database and the file store sit under it, so
`serve` and `keys` always agree.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..media.provenance import reelforge_home

# The official SDK's model names; by default they all mean the served model, so code written
# against Sora runs unchanged. REELFORGE_MODEL_ALIASES adds to or overrides these.
OPENAI_MODEL_NAMES = ("sora-2", "sora-2-pro", "sora-2-2025-10-06", "sora-2-pro-2025-10-06", "sora-2-2025-12-08")


class ConfigError(ValueError):
    """A setting that cannot be used; the message names the variable and what is allowed."""


def _int(env: dict, name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None
    if value < minimum:
        raise ConfigError(f"{name}={raw!r} must be >= {minimum}")
    return value


def _aliases(raw: str | None) -> dict[str, str]:
    """`sora-2=reelforge-base,my-model=reelforge-base` or the same as a JSON object."""
    if not raw:
        return {}
    if raw.lstrip().startswith("{"):
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as e:
            raise ConfigError(f"REELFORGE_MODEL_ALIASES is not valid JSON: {e}") from None
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ConfigError("REELFORGE_MODEL_ALIASES must map alias names to model names")
        return value
    out = {}
    for item in filter(None, (p.strip() for p in raw.split(","))):
        alias, sep, target = item.partition("=")
        if not sep or not alias.strip() or not target.strip():
            raise ConfigError(f"REELFORGE_MODEL_ALIASES entry {item!r} is not ALIAS=MODEL")
        out[alias.strip()] = target.strip()
    return out


@dataclass(frozen=True)
class Settings:
    home: Path
    host: str = "127.0.0.1"  # loopback: exposing the server is a deliberate choice (--host)
    port: int = 8000
    model_dir: Path | None = None  # None: the built-in model shipped in reelforge/weights/builtin
    model_aliases: dict[str, str] = field(default_factory=dict)  # alias -> served model name
    workers: int = 1  # generation threads; each holds its own pipeline, and 2 cores rarely want more
    torch_threads: int = 0  # 0: torch's default
    max_upload_bytes: int = 20 * 2**20  # one input_reference image or source video
    max_image_pixels: int = 4096 * 4096  # decoding a bigger image costs more than the video it seeds
    max_active_jobs: int = 32  # queued + in progress per user; more is a 429 (quota)
    create_per_minute: int = 120  # new jobs per user per minute; more is a 429 (rate)
    videos_per_day: int = 0  # new jobs per user in 24 hours; 0: no limit (a user's own limit wins)
    seconds_per_day: int = 0  # rendered seconds per user in 24 hours; 0: no limit
    poll_after_ms: int = 1000  # the `openai-poll-after-ms` hint the SDK's poll() honours
    retention_hours: int = 0  # 0: keep files until deleted; otherwise `expires_at` and a purge
    lease_seconds: int = 60  # a running job whose worker is silent this long is taken over
    max_attempts: int = 3  # claims of one job before it is failed for good (a crash loop stops)

    @classmethod
    def from_env(cls, env: dict | None = None, **overrides) -> "Settings":
        """Settings from REELFORGE_* variables; keyword overrides (the CLI's options) win."""
        env = dict(os.environ if env is None else env)
        home = reelforge_home(env)
        model_dir = env.get("REELFORGE_MODEL_DIR")
        settings = cls(
            home=home,
            host=env.get("REELFORGE_HOST") or cls.host,
            port=_int(env, "REELFORGE_PORT", cls.port),
            model_dir=Path(model_dir).expanduser() if model_dir else None,
            model_aliases=_aliases(env.get("REELFORGE_MODEL_ALIASES")),
            workers=_int(env, "REELFORGE_WORKERS", cls.workers, minimum=1),
            torch_threads=_int(env, "REELFORGE_TORCH_THREADS", cls.torch_threads),
            max_upload_bytes=_int(env, "REELFORGE_MAX_UPLOAD_BYTES", cls.max_upload_bytes, minimum=1),
            max_active_jobs=_int(env, "REELFORGE_MAX_ACTIVE_JOBS", cls.max_active_jobs, minimum=1),
            create_per_minute=_int(env, "REELFORGE_CREATE_PER_MINUTE", cls.create_per_minute, minimum=1),
            videos_per_day=_int(env, "REELFORGE_VIDEOS_PER_DAY", cls.videos_per_day),
            seconds_per_day=_int(env, "REELFORGE_SECONDS_PER_DAY", cls.seconds_per_day),
            poll_after_ms=_int(env, "REELFORGE_POLL_AFTER_MS", cls.poll_after_ms, minimum=10),
            retention_hours=_int(env, "REELFORGE_RETENTION_HOURS", cls.retention_hours),
            lease_seconds=_int(env, "REELFORGE_LEASE_SECONDS", cls.lease_seconds, minimum=5),
            max_attempts=_int(env, "REELFORGE_MAX_ATTEMPTS", cls.max_attempts, minimum=1),
        )
        return replace(settings, **{k: v for k, v in overrides.items() if v is not None})

    @property
    def database_path(self) -> Path:
        return self.home / "reelforge.db"

    @property
    def files_dir(self) -> Path:
        return self.home / "files"
