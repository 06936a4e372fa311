"""Model configs are frozen dataclasses saved as JSON beside the weights; unknown keys are errors."""
from __future__ import annotations

import json
from dataclasses import asdict


class JsonConfig:
    """Mixin for frozen dataclass configs: to_json / from_dict (JSON lists become tuples)."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, d: dict):
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} keys: {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})
