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
            return crud.create_key(session, user, role, actor="test")[1]

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
        self.cancelled = threading.Event()  # set when the worker told a job to stop

    def __call__(self, prompt, seconds=4.0, size=None, seed=None, image=None, on_step=None, **_):
        import numpy as np

        from reelforge.flow.samplers import Cancelled
        from reelforge.pipeline import VideoOutput
        for i in range(self.config.steps if on_step is not None else 0):  # no hook: the worker's warm-up
            self.started.set()
            while not self.gate.wait(0.02):
                if on_step(i, 1.0, None) is False:
                    self.cancelled.set()
                    raise Cancelled("cancelled")
            if on_step(i, 1.0, None) is False:
                self.cancelled.set()
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


def start_gated(home: Path, model_dir: Path, **overrides) -> Gated:
    """A server with one worker on a GatedPipeline; its gate starts closed."""
    from reelforge.service.app import create_app
    from reelforge.service.config import Settings

    settings = Settings(home=home, model_dir=model_dir, poll_after_ms=20, **overrides)
    app = create_app(settings, load_pipeline=lambda: pipe)
    pipe = GatedPipeline(app.state.catalog.config, threading.Event())
    port = free_port()
    server, thread = start_server(app, port)
    return Gated(f"http://127.0.0.1:{port}", settings, app, pipe, server, thread)


class Api:
    """Plain HTTP calls with one key (or none), for our own endpoints the SDK does not know."""

    def __init__(self, url: str, key: str | None = None):
        self.url, self.key = url, key

    def call(self, method: str, path: str, **kwargs):
        import httpx
        headers = kwargs.pop("headers", {})
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        return httpx.request(method, self.url + path, headers=headers, timeout=30, **kwargs)

    def get(self, path: str, **kwargs):
        return self.call("GET", path, **kwargs)

    def post(self, path: str, **kwargs):
        return self.call("POST", path, **kwargs)

    def patch(self, path: str, **kwargs):
        return self.call("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs):
        return self.call("DELETE", path, **kwargs)

    def ok(self, method: str, path: str, **kwargs) -> dict:
        response = self.call(method, path, **kwargs)
        assert response.status_code == 200, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()


def expect_error(response, status: int, code: str | None = None, param: str | None = None) -> dict:
    """The response is an error in OpenAI's shape with this status (and code, param)."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"], error
    if code is not None:
        assert error["code"] == code, error
    if param is not None:
        assert error["param"] == param, error
    return error


def add_user(admin: Api, name: str, role: str, publisher: bool = False) -> Api:
    """A user made through the admin API, and a client holding a key of theirs."""
    admin.ok("POST", "/v1/admin/users", json={"name": name, "role": role, "publisher": publisher})
    return Api(admin.url, admin.ok("POST", f"/v1/admin/users/{name}/keys")["key"])


def make_video(api: Api, prompt: str = "a red ball rolls left on a blue background", wait: bool = True) -> str:
    """A one-second video's id, completed when `wait` (the server's gate must be open)."""
    video = api.ok("POST", "/v1/videos", json={"prompt": prompt, "seconds": "1"})
    if wait:
        wait_for(lambda: api.ok("GET", f"/v1/videos/{video['id']}")["status"] == "completed")
    return video["id"]


class Browserless:
    """A signed-in browser without a browser: an httpx client holding the session cookie, and the
    CSRF token its pages carry."""

    def __init__(self, url: str, name: str, password: str):
        import httpx
        self.client = httpx.Client(base_url=url, follow_redirects=False, timeout=30,
                                   headers={"Accept": "text/html"})
        response = self.client.post("/signin", data={"csrf": self.signin_token(), "username": name,
                                                     "password": password})
        assert response.status_code == 303 and response.headers["location"] == "/videos", response.text
        self.csrf = form_token(self.client.get("/videos").text)

    def signin_token(self) -> str:
        return form_token(self.client.get("/signin").text)

    def post(self, path: str, data: dict | None = None, **kwargs):
        return self.client.post(path, data={"csrf": self.csrf, **(data or {})}, **kwargs)


def form_token(html: str) -> str:
    import re
    return re.search(r'name="csrf" value="([^"]+)"', html)[1]


def add_studio_user(live, name: str, role: str, password: str = "correct horse", publisher: bool = False) -> None:
    """A user with a password, made as `reelforge users create` and `users set-password` would."""
    from reelforge.service import accounts, logins
    with live.app.state.sessions() as session:
        accounts.create_user(session, name, role, "test", publisher)
        logins.set_password(session, name, password, "test")
