"""The distilled student through the official SDK: listed, chosen by name or by `turbo`, and run."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from service_helpers import Live, free_port, start_server

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")
PROMPT = "a red ball rolls left on a blue background"


@pytest.fixture(scope="module")
def turbo_live(tmp_path_factory, tiny_model_dir, text_encoder):
    from reelforge.pipeline import Pipeline
    from reelforge.service.app import create_app
    from reelforge.service.config import Settings
    from reelforge.training.export import export_student

    model_dir = tmp_path_factory.mktemp("with_turbo") / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    export_student(model_dir / "transformer.safetensors", model_dir, "tiny-turbo", 1, "euler", 1.0)
    settings = Settings(home=Path(tmp_path_factory.mktemp("home")), model_dir=model_dir, poll_after_ms=50,
                        create_per_minute=1000)
    app = create_app(settings, load_pipeline=lambda: Pipeline.from_pretrained(model_dir, text_encoder=text_encoder))
    server, thread = start_server(app, free_port())
    yield Live(f"http://127.0.0.1:{server.config.port}", settings, app)
    server.should_exit = True
    thread.join(15)


def spec_of(live, video_id):
    from reelforge.service import crud
    with live.app.state.sessions() as session:
        return crud.specs(session, [video_id])[video_id]


def test_the_student_is_listed_and_runs_when_named_or_asked_for_by_turbo(turbo_live, tmp_path):
    client = turbo_live.client()
    assert [m.id for m in client.models.list()][:2] == ["tiny", "tiny-turbo"]
    named = client.videos.create_and_poll(prompt=PROMPT, model="tiny-turbo", seconds="1", poll_interval_ms=50)
    flagged = client.videos.create_and_poll(prompt=PROMPT, seconds="1", extra_body={"turbo": True},
                                            poll_interval_ms=50)
    plain = client.videos.create_and_poll(prompt=PROMPT, seconds="1", poll_interval_ms=50)
    for video in (named, flagged, plain):
        assert video.status == "completed", video.error
    assert (named.model, flagged.model, plain.model) == ("tiny-turbo", "tiny-turbo", "tiny")
    assert spec_of(turbo_live, named.id).turbo and spec_of(turbo_live, flagged.id).turbo
    plain_spec = spec_of(turbo_live, plain.id)
    assert not plain_spec.turbo and plain_spec.cache_threshold == 0.0
    # The student's own settings made it: its one step, no guidance pass; the file says so.
    from reelforge.media.decode import read_video
    client.videos.download_content(named.id).write_to_file(tmp_path / "turbo.mp4")
    settings = json.loads(read_video(tmp_path / "turbo.mp4")[2]["comment"])
    assert (settings["model"], settings["steps"], settings["guidance"]) == ("tiny-turbo", 1, 1.0)


def test_an_extension_of_a_turbo_video_runs_the_student_too(turbo_live):
    from openai.types import Video
    client = turbo_live.client()
    source = client.videos.create_and_poll(prompt=PROMPT, model="tiny-turbo", seconds="1", poll_interval_ms=50)
    extended = client.post("/videos/extensions", cast_to=Video,
                           body={"video": {"id": source.id}, "prompt": "it keeps rolling", "seconds": "1"})
    extended = client.videos.poll(extended.id, poll_interval_ms=50)
    assert extended.status == "completed" and extended.model == "tiny-turbo", extended.error
    assert spec_of(turbo_live, extended.id).turbo


def test_cache_threshold_is_a_knob_of_its_own_and_is_bounded(turbo_live):
    import openai
    client = turbo_live.client()
    video = client.videos.create(prompt=PROMPT, seconds="1", extra_body={"cache_threshold": 0.2})
    assert spec_of(turbo_live, video.id).cache_threshold == 0.2
    with pytest.raises(openai.BadRequestError, match="cache_threshold"):
        client.videos.create(prompt=PROMPT, seconds="1", extra_body={"cache_threshold": 2})
