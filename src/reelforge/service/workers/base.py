"""The job queue's contract: what is stored for a job, its states, and the interface a runner of
jobs implements.

A job is durable the moment `crud.create_video` commits its row; a `JobQueue` only *runs* what the
jobs table holds. The embedded thread pool is one implementation; a distributed engine can be
another (claim rows, or mirror them into its own broker) without the API changing, because every
state change goes through the same crud functions and the transition table below.
"""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass

# Job states and the moves between them; crud's conditional UPDATEs only ever make these moves.
TRANSITIONS: dict[str, frozenset[str]] = {
    "queued": frozenset({"running", "cancelled"}),
    "running": frozenset({"done", "failed", "cancelled", "queued"}),  # queued: lease lost, or shutdown
    "done": frozenset(),
    "failed": frozenset(),
    "cancelled": frozenset(),
}
# What the public video object shows for each job state.
VIDEO_STATUS = {"queued": "queued", "running": "in_progress", "done": "completed", "failed": "failed",
                "cancelled": "failed"}
ACTIVE_STATES = ("queued", "running")
# What a request may ask of the engine (the pipeline checks the same bounds again).
MIN_STEPS, MAX_STEPS, MAX_GUIDANCE = 1, 200, 30.0
TURBO_CACHE_THRESHOLD = 0.1  # First Block Cache's threshold for "turbo" on a model with no student


def can_move(state: str, to: str) -> bool:
    return to in TRANSITIONS[state]


@dataclass(frozen=True)
class JobSpec:
    """Everything a worker needs, besides files in the video's storage folder:
    `reference.png` when `reference`, `source.mp4` (a video to extend or edit) when `source`."""
    kind: str  # create, remix, extension, edit
    prompt: str
    seed: int
    width: int
    height: int
    seconds: float
    reference: bool = False
    source: bool = False
    # The engine's knobs; None: the model's defaults. Kept here, so every video shows what made it.
    negative_prompt: str | None = None
    steps: int | None = None
    guidance: float | None = None
    cache_threshold: float = 0.0  # > 0: First Block Cache
    turbo: bool = False  # run the model's distilled student

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "JobSpec":
        return cls(**json.loads(text))


class JobQueue(ABC):
    """Runs jobs committed to the jobs table. Implementations must tolerate a job's rows changing
    under them (cancelled, deleted): every report is a conditional update that says if it still holds."""

    @abstractmethod
    def start(self) -> None:
        """Begin taking jobs, including those a crashed predecessor left running."""

    @abstractmethod
    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking jobs; running ones go back to the queue and resume at the next start."""

    @abstractmethod
    def wake(self) -> None:
        """A job was committed: take it without waiting for the next poll."""

    @abstractmethod
    def cancel(self, video_id: str) -> None:
        """The job's rows already say cancelled or are gone: stop spending compute on it soon."""
