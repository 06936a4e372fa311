"""Helpers for live-server tests: start uvicorn on a free loopback port, a stand-in engine, polling."""
from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path



def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Live:
    url: str
    settings: object
    app: object

    def key(self, user: str = "alice", role: str | None = None) -> str:
        from reelforge.service import crud
        with self.app.state.sessions() as session:
            return crud.create_key(session, user, role)[1]

    def client(self, key: str | None = None, **kwargs):
        import openai
        return openai.OpenAI(base_url=self.url + "/v1", api_key=key or self.key(), max_retries=0, **kwargs)


def start_server(app, port: int):
    import uvicorn
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    return server, thread


class GatedPipeline:
    """Stands in for the engine where a test must catch a job at a given stage: each denoising step
    waits for `gate`, so a job stays in progress until the test opens it. Frames are a flat colour."""

    def __init__(self, config, gate: threading.Event):
        self.config, self.gate = config, gate
        self.started = threading.Event()

    def __call__(self, prompt, seconds=4.0, size=None, seed=None, image=None, on_step=None, **_):
        import numpy as np

        from reelforge.flow.samplers import Cancelled
        from reelforge.pipeline import VideoOutput
        for i in range(self.config.steps if on_step is not None else 0):  # no hook: the worker's warm-up
            self.started.set()
            while not self.gate.wait(0.02):
                if on_step(i, 1.0, None) is False:
                    raise Cancelled("cancelled")
            if on_step(i, 1.0, None) is False:
                raise Cancelled("cancelled")
        width, height = size or self.config.buckets[0]
        frames = np.full((max(1, round(seconds * self.config.fps)), height, width, 3), 90, np.uint8)
        return VideoOutput(frames=frames, fps=self.config.fps, seed=seed or 0, settings={"prompt": prompt})


@dataclass
class Gated(Live):
    pipe: GatedPipeline = None
    server: object = None
    thread: object = None

    def stop(self):
        self.gate.set()
        self.server.should_exit = True
        self.thread.join(15)

    @property
    def gate(self) -> threading.Event:
        return self.pipe.gate


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(interval)
