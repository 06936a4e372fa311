"""What the served model can do, and how the API's model names, sizes and seconds map onto it.

OpenAI's values are accepted and mapped to the model (README, "API server"); our own values are
any WIDTHxHEIGHT and any length the model can render. The video object reports what the client
asked for, as Sora did; what was rendered is stored beside it (`render_*` columns).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ..pipeline import BUILTIN_DIR, CheckpointError, InputError, Pipeline, PipelineConfig, parse_size, read_config, turbo_dir
from .config import OPENAI_MODEL_NAMES, ConfigError, Settings
from .errors import invalid_param

OPENAI_SIZES = ("720x1280", "1280x720", "1024x1792", "1792x1024")
OPENAI_SECONDS = (4, 8, 12)
OPENAI_EXTEND_SECONDS = (4, 8, 12, 16, 20)
DEFAULT_SECONDS = 4.0
# An extension re-denoises up to one second of the source as context, inside the model's window.
EXTEND_CONTEXT_SECONDS = 1.0
MAX_API_SECONDS = 20.0  # the API's longest lengths (OpenAI's extensions reach 20 s)


@dataclass(frozen=True)
class RenderSize:
    reported: str  # what the video object says
    width: int
    height: int


@dataclass(frozen=True)
class RenderSeconds:
    reported: str
    seconds: float


def _number(value: float) -> str:
    return f"{value:g}"


class Catalog:
    """The served model's name, aliases and limits, read from its `pipeline.json` (no weights), and
    its distilled turbo student's name where the model directory has one."""

    def __init__(self, model_dir: Path, config: PipelineConfig, aliases: dict[str, str],
                 turbo: PipelineConfig | None = None):
        self.model_dir, self.config, self.turbo = model_dir, config, turbo
        self.aliases = {**{name: config.name for name in OPENAI_MODEL_NAMES}, **aliases}
        served = [config.name, *([turbo.name] if turbo else [])]
        unknown = sorted(a for a, target in self.aliases.items() if target not in served)
        if unknown:
            raise ConfigError(f"REELFORGE_MODEL_ALIASES: aliases {unknown} point to models that are not served; "
                                  f"the served models are {', '.join(map(repr, served))}")
        # bucket_for reads only the config: one implementation of the aspect-ratio choice.
        self._sizer = Pipeline(None, None, None, config)

    @classmethod
    def load(cls, settings: Settings) -> "Catalog":
        model_dir = settings.model_dir or BUILTIN_DIR
        pipeline_json = model_dir / "pipeline.json"
        if not pipeline_json.is_file():
            raise CheckpointError(f"model directory {str(model_dir)!r} has no pipeline.json; "
                                  "set REELFORGE_MODEL_DIR or pass --model to a trained model")
        student = turbo_dir(model_dir)
        return cls(model_dir, read_config(model_dir), settings.model_aliases, read_config(student) if student else None)

    @property
    def model_names(self) -> list[str]:
        return [self.config.name, *([self.turbo.name] if self.turbo else []), *sorted(self.aliases)]

    def model(self, requested: str | None, turbo: bool = False) -> str:
        """The reported model name; raises 400 for a name that is neither served nor an alias.
        `turbo` asks for the distilled student when no name is given."""
        if requested is None:
            return self.turbo.name if turbo and self.turbo else self.config.name
        if requested in self.model_names:
            return requested
        raise invalid_param("model", f"unknown model {requested!r}; allowed: {', '.join(self.model_names)}")

    def is_turbo(self, model: str) -> bool:
        """Whether a reported model name (or alias) runs the distilled student."""
        return self.turbo is not None and self.aliases.get(model, model) == self.turbo.name

    def size(self, requested: str | None) -> RenderSize:
        """OpenAI's sizes map to the model's own size of the same aspect; WxH is rendered as asked."""
        if requested is None:
            width, height = self.config.buckets[0]
            return RenderSize(f"{width}x{height}", width, height)
        if requested in OPENAI_SIZES:
            width, height = self._sizer.bucket_for(parse_size(requested))
            return RenderSize(requested, width, height)
        try:
            width, height = parse_size(requested)
        except InputError as e:
            raise invalid_param("size", f"{e}; OpenAI's {', '.join(OPENAI_SIZES)} are also accepted") from None
        return RenderSize(requested, width, height)

    def max_seconds(self, extension: bool = False) -> float:
        """New clips and extensions may run past the model's window up to MAX_API_SECONDS: they are
        made window by window (reelforge.long), each window continuing the last."""
        return max(self.config.max_seconds, MAX_API_SECONDS)

    def seconds(self, requested: str | int | float | None, extension: bool = False) -> RenderSeconds:
        """OpenAI's lengths and ours up to the limit are rendered in full."""
        limit = self.max_seconds(extension)
        if requested is None:
            value = min(DEFAULT_SECONDS, limit)
            return RenderSeconds(_number(value), value)
        openai = OPENAI_EXTEND_SECONDS if extension else OPENAI_SECONDS
        try:
            value = float(requested)
        except (TypeError, ValueError):
            value = math.nan
        if value in openai:
            return RenderSeconds(_number(value), min(value, limit))
        if not (math.isfinite(value) and 0 < value <= limit):
            raise invalid_param("seconds", f"seconds {requested!r} is not available; allowed: "
                                f"{', '.join(map(str, openai))} (OpenAI's, rendered up to {limit:g}) "
                                f"or any number > 0 and <= {limit:g}")
        return RenderSeconds(_number(value), value)
