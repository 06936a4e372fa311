"""The kill switch through the API of a live server: a suspended user's key fails on its very next
call while their job runs, and the job is cancelled; a group is suspended by role; revoking every
key stops everything at once. Jobs wait at a gate, so "while it runs" holds without timing."""
from __future__ import annotations

import openai
import pytest

from reelforge.service import crud
from service_helpers import Api, add_user, expect_error, make_video, wait_for

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")
PROMPT = "a red ball rolls left on a blue background"


@pytest.fixture
def server(gated):
    live = gated()
    live.admin = Api(live.url, live.key("root", role="admin"))
    return live


def _job_state(live, video_id):
    with live.app.state.sessions() as session:
        return crud.job_state(session, video_id)[0]


def test_a_suspended_key_fails_on_its_next_call_and_its_running_job_is_cancelled(server):
    creator = add_user(server.admin, "carl", "creator")
    bystander = add_user(server.admin, "bea", "creator")
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=creator.key, max_retries=0)
    running = client.videos.create(prompt=PROMPT, seconds="1")
    assert server.pipe.started.wait(20)
    queued = client.videos.create(prompt=PROMPT, seconds="1")
    assert client.videos.retrieve(running.id).status == "in_progress"
    waiting = bystander.ok("POST", "/v1/videos", json={"prompt": PROMPT, "seconds": "1"})["id"]

    result = server.admin.ok("POST", "/v1/admin/suspend", json={"users": ["carl"], "reason": "spam"})
    assert result["users"] == ["carl"] and set(result["cancelled_videos"]) == {running.id, queued.id}
    with pytest.raises(openai.AuthenticationError) as e:
        client.videos.retrieve(running.id)
    assert e.value.code == "user_suspended"
    assert _job_state(server, running.id) == "cancelled" and _job_state(server, queued.id) == "cancelled"
    assert server.pipe.cancelled.wait(20)  # the worker stopped the job while its gate was still shut

    server.gate.set()  # the worker is free again: the bystander's job runs, carl's never do
    wait_for(lambda: bystander.ok("GET", f"/v1/videos/{waiting}")["status"] == "completed")
    assert _job_state(server, running.id) == "cancelled"

    user = server.admin.ok("GET", "/v1/admin/users/carl")
    assert user["suspended"] and user["suspended_reason"] == "spam"
    server.admin.ok("POST", "/v1/admin/unsuspend", json={"users": ["carl"]})
    video = client.videos.retrieve(running.id)  # the same key works again
    assert video.status == "failed" and video.error.code == "cancelled"
    expect_error(creator.post(f"/v1/videos/{running.id}/publication", json={"action": "submit"}), 409,
                 code="video_not_ready")


def test_a_group_is_suspended_by_role_and_nobody_else(server):
    testers = [add_user(server.admin, name, "tester") for name in ("tess", "toby")]
    creator = add_user(server.admin, "carl", "creator")
    result = server.admin.ok("POST", "/v1/admin/suspend", json={"role": "tester"})
    assert result["users"] == ["tess", "toby"]
    for tester in testers:
        expect_error(tester.get("/v1/videos"), 401, code="user_suspended")
    assert creator.get("/v1/videos").status_code == 200
    expect_error(server.admin.post("/v1/admin/suspend", json={"role": "admin"}), 409, code="self_suspension")
    server.admin.ok("POST", "/v1/admin/unsuspend", json={"role": "tester"})
    assert all(t.get("/v1/videos").status_code == 200 for t in testers)


def test_revoking_every_key_stops_everything_at_once(server):
    creator = add_user(server.admin, "carl", "creator")
    running = creator.ok("POST", "/v1/videos", json={"prompt": PROMPT, "seconds": "1"})["id"]
    assert server.pipe.started.wait(20)
    result = server.admin.ok("POST", "/v1/admin/keys/revoke-all", json={"reason": "leaked keys"})
    assert result["revoked_keys"] == 2 and result["cancelled_videos"] == [running]  # root's and carl's
    expect_error(creator.get("/v1/videos"), 401, code="invalid_api_key")
    expect_error(server.admin.get("/v1/admin/users"), 401)  # the caller's own key too
    assert _job_state(server, running) == "cancelled"
    fresh = Api(server.url, server.key("root"))  # a new key, as `reelforge keys create` makes one
    assert fresh.get("/v1/admin/users").status_code == 200


def test_an_admin_revokes_one_key_and_the_users_other_key_still_works(server):
    creator = add_user(server.admin, "carl", "creator")
    second = Api(server.url, server.admin.ok("POST", "/v1/admin/users/carl/keys")["key"])
    keys = [k for k in server.admin.ok("GET", "/v1/admin/keys")["data"] if k["user"] == "carl"]
    assert len(keys) == 2 and all("key" not in k for k in keys)
    revoked = server.admin.ok("DELETE", f"/v1/admin/keys/{keys[0]['id']}")
    assert revoked["revoked_at"] is not None
    expect_error(creator.get("/v1/videos"), 401)
    assert second.get("/v1/videos").status_code == 200
    server.gate.set()
    make_video(second)
