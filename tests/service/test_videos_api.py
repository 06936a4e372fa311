"""The happy paths, through the official openai SDK against a live server with the tiny model."""
from __future__ import annotations

import base64
import io

import httpx
import numpy as np
import pytest
from openai.types import Video
from PIL import Image

from reelforge.media.decode import read_video

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")
PROMPT = "a red ball rolls left on a blue background"


def png_bytes(size=(80, 60), color=(200, 20, 20)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def client(live):
    return live.client(live.key("alice"))


@pytest.fixture(scope="module")
def done(client):
    """One completed 1280x720 video, shared by the tests that start from one."""
    video = client.videos.create_and_poll(prompt=PROMPT, seconds="4", size="1280x720", poll_interval_ms=50)
    assert video.status == "completed", video.error
    return video


def test_create_and_poll_reports_the_sdk_video_object(live, client, done):
    assert done.object == "video" and done.id.startswith("video_")
    assert (done.progress, done.seconds, done.size, done.prompt) == (100, "4", "1280x720", PROMPT)
    assert done.model == "tiny" and done.error is None and done.remixed_from_video_id is None
    assert done.created_at <= done.completed_at and done.expires_at is None
    raw = httpx.get(f"{live.url}/v1/videos/{done.id}", headers={"Authorization": f"Bearer {client.api_key}"}).json()
    assert set(raw) == set(Video.model_fields)  # field for field the SDK's type, nothing else


def test_download_content_is_a_valid_mp4_at_the_mapped_size(live, client, done, tmp_path):
    path = tmp_path / "out.mp4"
    client.videos.download_content(done.id).write_to_file(path)
    frames, fps, metadata = read_video(path)
    # 1280x720 maps to the model's landscape size; 4 s at the model's 8 fps.
    assert frames.shape == (32, 64, 112, 3) and fps == 8 and metadata["title"] == PROMPT
    thumb = client.videos.download_content(done.id, variant="thumbnail")
    assert Image.open(io.BytesIO(thumb.content)).format == "WEBP"
    sheet = Image.open(io.BytesIO(client.videos.download_content(done.id, variant="spritesheet").content))
    assert sheet.format == "JPEG" and sheet.size == (4 * 112, 4 * 64)


def test_content_answers_range_requests(live, client, done):
    url, auth = f"{live.url}/v1/videos/{done.id}/content", {"Authorization": f"Bearer {client.api_key}"}
    whole = httpx.get(url, headers=auth)
    part = httpx.get(url, headers={**auth, "Range": "bytes=100-199"})
    assert whole.headers["content-type"] == "video/mp4" and whole.headers["accept-ranges"] == "bytes"
    assert part.status_code == 206 and part.content == whole.content[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(whole.content)}"


def test_list_paginates_with_cursors(gated):
    live = gated()
    live.gate.set()
    client = live.client(live.key("lister"))
    ids = [client.videos.create(prompt=f"{PROMPT} {i}", seconds="1", size="64x64").id for i in range(5)]
    page = client.videos.list(limit=2, order="asc")
    assert [v.id for v in page.data] == ids[:2] and page.has_more and page.last_id == ids[1]
    assert [v.id for v in client.videos.list(limit=2, order="asc")] == ids  # the SDK follows last_id
    assert [v.id for v in client.videos.list(limit=100)] == ids[::-1]  # newest first by default
    last = client.videos.list(limit=2, order="asc", after=ids[3])
    assert [v.id for v in last.data] == ids[4:] and not last.has_more
    raw = httpx.get(f"{live.url}/v1/videos", params={"limit": 2},
                    headers={"Authorization": f"Bearer {client.api_key}"}).json()
    assert raw["object"] == "list" and raw["first_id"] == ids[4] and raw["last_id"] == ids[3]


def test_users_see_only_their_own_videos(live, done):
    other = live.client(live.key("mallory"))
    assert done.id not in [v.id for v in other.videos.list()]
    with pytest.raises(Exception) as e:
        other.videos.retrieve(done.id)
    assert e.value.status_code == 404


def test_remix_keeps_seed_and_layout(live, client, done):
    remix = client.videos.remix(done.id, prompt="a green square slides right on a red background")
    assert remix.remixed_from_video_id == done.id and remix.size == done.size and remix.seconds == done.seconds
    remix = client.videos.poll(remix.id, poll_interval_ms=50)
    assert remix.status == "completed"
    from reelforge.service.db import Video as Row
    with live.app.state.sessions() as session:
        rows = {r.id: r for r in session.query(Row).filter(Row.id.in_([done.id, remix.id]))}
    assert rows[remix.id].seed == rows[done.id].seed


def test_extension_by_id_and_by_upload(live, client, done, tmp_path):
    by_id = client.post("/videos/extensions", cast_to=Video,
                        body={"video": {"id": done.id}, "prompt": "it keeps rolling", "seconds": "4"})
    source = tmp_path / "source.mp4"
    client.videos.download_content(done.id).write_to_file(source)
    by_upload = client.videos.extend(video=source.open("rb"), prompt="it keeps rolling", seconds="4")
    assert by_id.seconds == "8" and by_id.size == "1280x720" and by_upload.size == "112x64"
    for video in (by_id, by_upload):
        video = client.videos.poll(video.id, poll_interval_ms=50)
        assert video.status == "completed", video.error
        path = tmp_path / f"{video.id}.mp4"
        client.videos.download_content(video.id).write_to_file(path)
        assert read_video(path)[0].shape == (64, 64, 112, 3)  # the source's 32 frames, then 32 more


def test_edit_by_id_and_by_upload(live, client, done, tmp_path):
    source = tmp_path / "source.mp4"
    client.videos.download_content(done.id).write_to_file(source)
    edits = [client.post("/videos/edits", cast_to=Video, body={"video": {"id": done.id}, "prompt": "now green"}),
             client.videos.edit(video=source.open("rb"), prompt="now green")]
    for video in edits:
        assert client.videos.poll(video.id, poll_interval_ms=50).status == "completed"


def test_image_to_video_from_upload_and_data_url(client):
    upload = client.videos.create(prompt=PROMPT, seconds="2", size="64x64",
                                  input_reference=("start.png", png_bytes(), "image/png"))
    data_url = "data:image/png;base64," + base64.b64encode(png_bytes()).decode()
    inline = client.videos.create(prompt=PROMPT, seconds="2", extra_body={"input_reference": {"image_url": data_url}})
    for video in (upload, inline):
        assert client.videos.poll(video.id, poll_interval_ms=50).status == "completed"


def test_openai_sizes_seconds_and_model_aliases_map_to_the_model(gated):
    live = gated(model_aliases={"my-alias": "tiny"})
    live.gate.set()
    client = live.client()
    for model in ("sora-2", "sora-2-pro", "my-alias", "tiny"):
        video = client.videos.create(prompt=PROMPT, model=model, seconds="12", size="720x1280")
        assert (video.model, video.seconds, video.size) == (model, "12", "720x1280")
    own = client.videos.create(prompt=PROMPT, seconds="2.5", size="96x48")
    assert (own.seconds, own.size) == ("2.5", "96x48")
    assert client.videos.create(prompt=PROMPT).size == "64x64"  # the model's own default
    models = [m.id for m in client.models.list()]
    assert models[0] == "tiny" and {"sora-2", "my-alias"} <= set(models)


def test_delete_removes_row_and_files(gated):
    live = gated()
    live.gate.set()
    client = live.client()
    video = client.videos.create_and_poll(prompt=PROMPT, seconds="1", poll_interval_ms=50)
    folder = live.app.state.storage.folder(video.id)
    assert (folder / "video.mp4").is_file()
    deleted = client.videos.delete(video.id)
    assert (deleted.id, deleted.deleted, deleted.object) == (video.id, True, "video.deleted")
    assert not folder.exists()
    with pytest.raises(Exception) as e:
        client.videos.retrieve(video.id)
    assert e.value.status_code == 404


def test_progress_streams_as_server_sent_events(live, client):
    import json
    video = client.videos.create(prompt=PROMPT, seconds="2")
    events = []
    with httpx.stream("GET", f"{live.url}/v1/videos/{video.id}/events",
                      headers={"Authorization": f"Bearer {client.api_key}"}, timeout=30) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    progress = [e["progress"] for e in events]
    assert events[-1]["status"] == "completed" and progress == sorted(progress) and progress[-1] == 100
    assert np.all([e["id"] == video.id for e in events])


def test_the_same_seed_gives_the_same_video(live, tmp_path):
    auth = {"Authorization": f"Bearer {live.key('seeder')}"}
    client = live.client(auth["Authorization"][7:])
    ids = [httpx.post(f"{live.url}/v1/videos", headers=auth,
                      json={"prompt": PROMPT, "seconds": 1, "seed": seed}).json()["id"] for seed in (7, 7, 8)]
    frames = []
    for video_id in ids:
        assert client.videos.poll(video_id, poll_interval_ms=50).status == "completed"
        client.videos.download_content(video_id).write_to_file(tmp_path / f"{video_id}.mp4")
        frames.append(read_video(tmp_path / f"{video_id}.mp4")[0].astype(np.int16))
    # Each video carries its own watermark (a few levels of luma), so equal seeds give the same
    # picture up to that, and far closer to each other than to another seed's.
    same, other = np.abs(frames[0] - frames[1]).mean(), np.abs(frames[0] - frames[2]).mean()
    assert same < 0.5 * other, (same, other)
