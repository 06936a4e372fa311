"""A real server on a loopback port, with the tiny model, driven by the official openai SDK."""
from __future__ import annotations

from pathlib import Path

import pytest

from service_helpers import Api, Gated, Live, free_port, start_gated, start_server


@pytest.fixture(scope="session")
def live(tmp_path_factory, tiny_model_dir, text_encoder):
    from reelforge.pipeline import Pipeline
    from reelforge.service.app import create_app
    from reelforge.service.config import Settings

    settings = Settings(home=Path(tmp_path_factory.mktemp("home")), model_dir=tiny_model_dir, poll_after_ms=50,
                        model_aliases={"my-alias": "tiny"}, max_upload_bytes=200_000, create_per_minute=1000)
    app = create_app(settings, load_pipeline=lambda: Pipeline.from_pretrained(tiny_model_dir, text_encoder=text_encoder))
    port = free_port()
    server, thread = start_server(app, port)
    yield Live(f"http://127.0.0.1:{port}", settings, app)
    server.should_exit = True
    thread.join(15)


@pytest.fixture
def gated(tmp_path, tiny_model_dir):
    """A server with one worker whose jobs wait at every step until `gated.gate` is set."""
    created = []

    def make(**overrides) -> Gated:
        live = start_gated(tmp_path / f"home{len(created)}", tiny_model_dir, **overrides)
        created.append(live)
        return live

    yield make
    for live in created:
        live.stop()


@pytest.fixture(scope="module")
def governed(tmp_path_factory, tiny_model_dir):
    """One server per test module whose jobs complete at once (a flat-colour stand-in engine), and
    `governed.admin`, an Api holding the first admin's key (made as `reelforge users create` would)."""
    live = start_gated(tmp_path_factory.mktemp("governed"), tiny_model_dir)
    live.gate.set()
    live.admin = Api(live.url, live.key("root", role="admin"))
    yield live
    live.stop()


