"""Bad input and refused requests: the right 4xx, in OpenAI's error shape, and the server stays up."""
from __future__ import annotations

import io

import httpx
import openai
import pytest
from PIL import Image

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")
PROMPT = "a red ball rolls left on a blue background"


@pytest.fixture(scope="module")
def key(live):
    return live.key("erin")


def call(live, method, path, key=None, **kwargs) -> httpx.Response:
    headers = kwargs.pop("headers", {})
    if key:
        headers["Authorization"] = f"Bearer {key}"
    return httpx.request(method, f"{live.url}{path}", headers=headers, timeout=30, **kwargs)


def assert_error(response: httpx.Response, status: int, param: str | None = None, code: str | None = None):
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    if param is not None:
        assert error["param"] == param, error
        assert param.split(".")[0] in error["message"], error
    if code is not None:
        assert error["code"] == code, error
    return error


@pytest.fixture(autouse=True)
def server_stays_up(live):
    yield
    assert httpx.get(f"{live.url}/health").json()["status"] == "ok"


def test_missing_wrong_and_revoked_keys_are_401(live):
    from reelforge.service import crud
    assert_error(call(live, "GET", "/v1/videos"), 401, code="invalid_api_key")
    assert_error(call(live, "GET", "/v1/videos", key="rf-not-a-key"), 401, code="invalid_api_key")
    assert_error(call(live, "GET", "/v1/videos", headers={"Authorization": "Basic abc"}), 401)
    key = live.key("revoked")
    assert call(live, "GET", "/v1/videos", key=key).status_code == 200
    with live.app.state.sessions() as session:
        crud.revoke_key(session, key)
    with pytest.raises(openai.AuthenticationError):
        live.client(key).videos.list()


def test_viewer_may_read_but_not_create_or_delete(live):
    viewer = live.key("vera", role="viewer")
    assert call(live, "GET", "/v1/videos", key=viewer).status_code == 200
    with pytest.raises(openai.PermissionDeniedError):
        live.client(viewer).videos.create(prompt=PROMPT)
    assert_error(call(live, "DELETE", "/v1/videos/video_abc", key=viewer), 403)


@pytest.mark.parametrize("body, content_type, code", [
    (b'{"prompt": "a red ball', "application/json", "invalid_json"),
    (b'["a red ball"]', "application/json", "invalid_json"),
    (b"\xff\xfe", "application/json", "invalid_json"),
    (b"--x\r\nno headers\r\n--x--", "multipart/form-data; boundary=x", None),
    (b"--x\r\n", "multipart/form-data", "invalid_form"),
    (b"prompt=hello", "text/plain", "invalid_content_type"),
    (b"", None, "invalid_content_type"),
])
def test_malformed_bodies_are_400(live, key, body, content_type, code):
    headers = {"Content-Type": content_type} if content_type else {}
    response = call(live, "POST", "/v1/videos", key=key, content=body, headers=headers)
    assert_error(response, 400, code=code)


@pytest.mark.parametrize("fields, param, code", [
    ({}, "prompt", "missing_required_parameter"),
    ({"prompt": PROMPT, "colour": "red"}, "colour", "unknown_parameter"),
    ({"prompt": 5}, "prompt", None),
    ({"prompt": ["a", "b"]}, "prompt", None),
    ({"prompt": "   "}, "prompt", None),
    ({"prompt": "x" * 32_001}, "prompt", None),
    ({"prompt": PROMPT, "size": "huge"}, "size", None),
    ({"prompt": PROMPT, "size": "4000x4000"}, "size", None),
    ({"prompt": PROMPT, "seconds": "25"}, "seconds", None),
    ({"prompt": PROMPT, "seconds": "-1"}, "seconds", None),
    ({"prompt": PROMPT, "seconds": "nan"}, "seconds", None),
    ({"prompt": PROMPT, "seconds": 4.5}, "seconds", None),
    ({"prompt": PROMPT, "model": "sora-3"}, "model", None),
    ({"prompt": PROMPT, "seed": -1}, "seed", None),
    ({"prompt": PROMPT, "seed": "seven"}, "seed", None),
    ({"prompt": PROMPT, "seed": 2.5}, "seed", None),
    ({"prompt": PROMPT, "input_reference": {"image_url": "https://example.com/a.png"}}, "input_reference", None),
    ({"prompt": PROMPT, "input_reference": {"image_url": "data:image/png;base64,@@@"}}, "input_reference", None),
    ({"prompt": PROMPT, "input_reference": {"file_id": "file_123"}}, "input_reference", None),
    ({"prompt": PROMPT, "input_reference": "just text"}, "input_reference", None),
])
def test_bad_parameters_are_400_naming_them(live, key, fields, param, code):
    assert_error(call(live, "POST", "/v1/videos", key=key, json=fields), 400, param=param, code=code)


def test_bad_parameters_through_the_sdk(live, key):
    client = live.client(key)
    with pytest.raises(openai.BadRequestError) as e:
        client.videos.create(prompt=PROMPT, size="1x1")
    assert e.value.body["param"] == "size" and "32..1920" in e.value.body["message"]
    with pytest.raises(openai.BadRequestError) as e:
        client.videos.create(prompt=PROMPT, seconds="30")
    assert e.value.body["param"] == "seconds"


def test_uploads_that_are_not_images_or_too_big(live, key):
    client = live.client(key)
    with pytest.raises(openai.BadRequestError) as e:
        client.videos.create(prompt=PROMPT, input_reference=("a.png", b"not an image at all", "image/png"))
    assert e.value.body["param"] == "input_reference"
    big = io.BytesIO()
    Image.effect_noise((400, 400), 64).convert("RGB").save(big, "PNG")  # noise does not compress
    assert len(big.getvalue()) > live.settings.max_upload_bytes
    with pytest.raises(openai.APIStatusError) as e:
        client.videos.create(prompt=PROMPT, input_reference=("big.png", big.getvalue(), "image/png"))
    assert e.value.status_code == 413
    huge = b"x" * (live.settings.max_upload_bytes + (2 << 20))
    assert_error(call(live, "POST", "/v1/videos", key=key, files={"input_reference": ("x.png", huge)},
                      data={"prompt": PROMPT}), 413)
    with pytest.raises(openai.BadRequestError) as e:
        client.videos.extend(video=("v.mp4", b"not a video", "video/mp4"), prompt=PROMPT, seconds="4")
    assert e.value.body["param"] == "video"


@pytest.mark.parametrize("path", ["/v1/videos/..%2F..%2Fetc%2Fpasswd", "/v1/videos/video_..",
                                  "/v1/videos/video_abc%00", "/v1/videos/video_" + "a" * 65, "/v1/videos/x",
                                  "/v1/videos/video_doesnotexist", "/v1/videos/video_doesnotexist/content"])
def test_unknown_or_malformed_ids_are_404(live, key, path):
    assert_error(call(live, "GET", path, key=key), 404)


def test_unknown_ids_through_the_sdk(live, key):
    client = live.client(key)
    for action in (lambda: client.videos.retrieve("video_nope"), lambda: client.videos.delete("video_nope"),
                   lambda: client.videos.remix("video_nope", prompt=PROMPT),
                   lambda: client.videos.download_content("../../etc/passwd")):
        with pytest.raises(openai.NotFoundError):
            action()
    assert_error(call(live, "POST", "/v1/videos/extensions", key=key,
                      json={"prompt": PROMPT, "seconds": "4", "video": {"id": "video_nope"}}), 404)


@pytest.mark.parametrize("query, param", [({"limit": 0}, "limit"), ({"limit": "many"}, "limit"),
                                          ({"limit": 101}, "limit"), ({"order": "sideways"}, "order"),
                                          ({"after": "video_unknown"}, "after")])
def test_bad_list_parameters_are_400(live, key, query, param):
    assert_error(call(live, "GET", "/v1/videos", key=key, params=query), 400, param=param)


def test_unknown_routes_and_methods(live, key):
    assert_error(call(live, "GET", "/v1/nothing", key=key), 404)
    assert_error(call(live, "PUT", "/v1/videos", key=key), 405)
    video = live.client(key).videos.create(prompt=PROMPT, seconds="1")
    assert_error(call(live, "GET", f"/v1/videos/{video.id}/content", key=key, params={"variant": "gif"}), 400,
                 param="variant")


def test_not_ready_is_409_and_cancel_works_at_every_stage(gated):
    live = gated()
    client = live.client()
    running = client.videos.create(prompt=PROMPT, seconds="1")
    live.pipe.started.wait(10)
    queued = client.videos.create(prompt=PROMPT, seconds="1")
    assert client.videos.retrieve(running.id).status == "in_progress"
    assert client.videos.retrieve(queued.id).status == "queued"
    for video in (running, queued):
        with pytest.raises(openai.ConflictError):
            client.videos.download_content(video.id)
        with pytest.raises(openai.ConflictError):
            client.videos.remix(video.id, prompt=PROMPT)
        with pytest.raises(openai.ConflictError):
            client.post("/videos/extensions", cast_to=object,
                        body={"prompt": PROMPT, "seconds": "4", "video": {"id": video.id}})
    for video in (queued, running):
        cancelled = client.post(f"/videos/{video.id}/cancel", cast_to=openai.types.Video)
        assert cancelled.status == "failed" and cancelled.error.code == "cancelled"
    storage = live.app.state.storage
    from service_helpers import wait_for
    wait_for(lambda: not storage.folder(running.id).exists() and not storage.folder(queued.id).exists())
    live.gate.set()
    done = client.videos.create_and_poll(prompt=PROMPT, seconds="1", poll_interval_ms=20)
    assert done.status == "completed"
    with pytest.raises(openai.ConflictError):
        client.post(f"/videos/{done.id}/cancel", cast_to=object)
    assert client.videos.retrieve(running.id).status == "failed"  # a cancelled job never comes back


def test_delete_works_at_every_stage_and_removes_files(gated):
    from service_helpers import wait_for
    live = gated()
    client = live.client()
    running = client.videos.create(prompt=PROMPT, seconds="1",
                                   input_reference=("a.png", _png(), "image/png"))
    live.pipe.started.wait(10)
    queued = client.videos.create(prompt=PROMPT, seconds="1", input_reference=("a.png", _png(), "image/png"))
    storage = live.app.state.storage
    assert (storage.folder(queued.id) / "reference.png").is_file()
    for video in (queued, running):
        assert client.videos.delete(video.id).deleted
    wait_for(lambda: not storage.folder(running.id).exists())
    live.gate.set()
    done = client.videos.create_and_poll(prompt=PROMPT, seconds="1", poll_interval_ms=20)
    assert client.videos.delete(done.id).deleted
    assert list(storage.root.iterdir()) == []
    assert [v.id for v in client.videos.list()] == []


def test_quota_and_rate_limits_are_429_with_retry_after(gated):
    live = gated(max_active_jobs=2, create_per_minute=3)
    client = live.client()
    client.videos.create(prompt=PROMPT)
    client.videos.create(prompt=PROMPT)
    with pytest.raises(openai.RateLimitError) as e:
        client.videos.create(prompt=PROMPT)
    assert e.value.code == "quota_exceeded" and int(e.value.response.headers["retry-after"]) >= 1
    live.gate.set()
    from service_helpers import wait_for
    wait_for(lambda: all(v.status == "completed" for v in client.videos.list()))
    client.videos.create(prompt=PROMPT)
    with pytest.raises(openai.RateLimitError) as e:
        client.videos.create(prompt=PROMPT)
    assert e.value.code == "rate_limit_exceeded" and 1 <= int(e.value.response.headers["retry-after"]) <= 60


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), (0, 200, 0)).save(buffer, "PNG")
    return buffer.getvalue()
