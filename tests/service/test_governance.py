"""Roles and approval before sharing, through the API of a live server: each role gets exactly its
rights, nothing is public until a reviewer approves it (or a publisher publishes it), withdrawal
unpublishes at once, and bad requests change nothing."""
from __future__ import annotations

from types import SimpleNamespace

import httpx
import openai
import pytest

from reelforge.service.rights import ROLE_RIGHTS, Right
from service_helpers import Api, add_user, expect_error, make_video

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")
PROMPT = "a red ball rolls left on a blue background"


@pytest.fixture(scope="module")
def team(governed):
    admin = governed.admin
    return SimpleNamespace(admin=admin, reviewer=add_user(admin, "rita", "reviewer"),
                           creator=add_user(admin, "carl", "creator"), other=add_user(admin, "cora", "creator"),
                           publisher=add_user(admin, "pia", "creator", publisher=True),
                           tester=add_user(admin, "tess", "tester"), viewer=add_user(admin, "vic", "viewer"),
                           anonymous=Api(governed.url))


# One request per right: allowed, it gets past the rights check (200, or 404 for a made-up id);
# refused, it is a 403.
PROBES = {
    Right.GENERATE: ("POST", "/v1/videos", {"json": {"prompt": PROMPT, "seconds": "1"}}),
    Right.REVIEW: ("GET", "/v1/reviews", {}),
    Right.REPORT: ("POST", "/v1/reports", {"json": {"video_id": "video_nope", "category": "physics",
                                                     "severity": "low", "description": "x"}}),
    Right.EXPORT_REPORTS: ("GET", "/v1/reports/export", {}),
    Right.TRIAGE: ("POST", "/v1/reports/999999/triage", {"json": {"status": "accepted"}}),
    Right.MANAGE: ("GET", "/v1/admin/users", {}),
    Right.POLICY: ("GET", "/v1/admin/policy", {}),
    Right.AUDIT: ("GET", "/v1/admin/audit", {}),
}
ROLE_CLIENT = {"admin": "admin", "reviewer": "reviewer", "creator": "creator", "tester": "tester",
               "viewer": "viewer"}


@pytest.mark.parametrize("role", list(ROLE_RIGHTS))
@pytest.mark.parametrize("right", list(PROBES))
def test_every_role_gets_exactly_the_rights_in_the_table(team, role, right):
    method, path, kwargs = PROBES[right]
    response = getattr(team, ROLE_CLIENT[role]).call(method, path, **kwargs)
    if right in ROLE_RIGHTS[role]:
        assert response.status_code in (200, 404), response.text
    else:
        expect_error(response, 403, code="forbidden")


def test_a_viewer_cannot_generate(governed, team):
    client = openai.OpenAI(base_url=governed.url + "/v1", api_key=team.viewer.key, max_retries=0)
    with pytest.raises(openai.PermissionDeniedError) as e:
        client.videos.create(prompt=PROMPT)
    assert "viewer" in e.value.message
    assert client.videos.list().data == []  # reading is allowed


def test_a_creator_cannot_publish_without_approval(team):
    video_id = make_video(team.creator)
    publication = f"/v1/videos/{video_id}/publication"
    expect_error(team.creator.post(publication, json={"action": "publish"}), 403, code="forbidden")
    assert team.creator.ok("GET", publication)["state"] == "private"
    assert video_id not in _gallery(team)

    pending = team.creator.ok("POST", publication, json={"action": "submit"})
    assert pending["state"] == "pending" and pending["share_url"] is None
    assert video_id not in _gallery(team)

    queue = team.reviewer.ok("GET", "/v1/reviews")["data"]
    item = next(i for i in queue if i["video_id"] == video_id)
    assert item["prompt"] == PROMPT and item["creator"] == "carl" and item["flags"] == {}
    assert team.reviewer.get(item["content_url"]).content[4:8] == b"ftyp"  # the MP4 itself
    expect_error(team.tester.get(f"/v1/reviews/{video_id}"), 403)
    expect_error(team.tester.get(f"/v1/videos/{video_id}"), 404)  # private to its creator

    approved = team.reviewer.ok("POST", f"/v1/reviews/{video_id}/approve")
    assert approved["state"] == "approved" and approved["public"]
    decision = team.creator.ok("GET", publication)
    assert decision["state"] == "approved" and decision["reviewed_by"] == "rita"
    assert video_id in _gallery(team)

    share = httpx.get(decision["share_url"])  # no key
    assert share.status_code == 200 and share.json()["prompt"] == PROMPT and share.json()["creator"] == "carl"
    content = httpx.get(share.json()["content_url"])
    assert content.status_code == 200 and content.content[4:8] == b"ftyp"


def test_withdrawing_an_approval_unpublishes_at_once(team):
    video_id = _approved(team)
    share_url = team.creator.ok("GET", f"/v1/videos/{video_id}/publication")["share_url"]
    assert httpx.get(share_url).status_code == 200
    expect_error(team.reviewer.post(f"/v1/reviews/{video_id}/withdraw"), 400, param="reason")
    withdrawn = team.reviewer.ok("POST", f"/v1/reviews/{video_id}/withdraw", json={"reason": "shows a logo"})
    assert withdrawn["state"] == "withdrawn" and withdrawn["share_url"] is None
    expect_error(httpx.get(share_url), 404, code="not_found")
    expect_error(httpx.get(share_url + "/content"), 404)
    assert video_id not in _gallery(team)
    seen = team.creator.ok("GET", f"/v1/videos/{video_id}/publication")
    assert seen["state"] == "withdrawn" and seen["reason"] == "shows a logo"
    # Submitting again makes a new link: the withdrawn one stays dead.
    team.creator.ok("POST", f"/v1/videos/{video_id}/publication", json={"action": "submit"})
    again = team.reviewer.ok("POST", f"/v1/reviews/{video_id}/approve")
    assert again["share_url"] != share_url and httpx.get(share_url).status_code == 404


def test_a_rejection_and_its_reason_reach_the_creator(team):
    video_id = make_video(team.creator)
    team.creator.ok("POST", f"/v1/videos/{video_id}/publication", json={"action": "submit"})
    expect_error(team.reviewer.post(f"/v1/reviews/{video_id}/reject", json={}), 400, param="reason")
    team.reviewer.ok("POST", f"/v1/reviews/{video_id}/reject", json={"reason": "the ball leaves the frame"})
    seen = team.creator.ok("GET", f"/v1/videos/{video_id}/publication")
    assert seen["state"] == "rejected" and seen["reason"] == "the ball leaves the frame" and not seen["public"]
    assert video_id not in _gallery(team)
    resubmitted = team.creator.ok("POST", f"/v1/videos/{video_id}/publication", json={"action": "submit"})
    assert resubmitted["state"] == "pending"


def test_a_publisher_publishes_without_review_and_can_take_it_back(team):
    video_id = make_video(team.publisher)
    published = team.publisher.ok("POST", f"/v1/videos/{video_id}/publication", json={"action": "publish"})
    assert published["state"] == "published" and httpx.get(published["share_url"]).status_code == 200
    assert video_id in _gallery(team)
    retracted = team.publisher.ok("DELETE", f"/v1/videos/{video_id}/publication")
    assert retracted["state"] == "private"
    assert httpx.get(published["share_url"]).status_code == 404 and video_id not in _gallery(team)


def test_nobody_publishes_or_approves_someone_elses_video_or_their_own(team, governed):
    video_id = make_video(team.creator)
    for client in (team.other, team.publisher, team.admin):
        expect_error(client.post(f"/v1/videos/{video_id}/publication", json={"action": "publish"}), 404)
        expect_error(client.delete(f"/v1/videos/{video_id}/publication"), 404)
    own = make_video(team.admin)
    team.admin.ok("POST", f"/v1/videos/{own}/publication", json={"action": "submit"})
    expect_error(team.admin.post(f"/v1/reviews/{own}/approve"), 403)
    assert team.admin.ok("GET", f"/v1/videos/{own}/publication")["state"] == "pending"


def test_bad_review_requests_are_4xx_and_change_nothing(team):
    video_id = make_video(team.creator)
    publication = f"/v1/videos/{video_id}/publication"
    expect_error(team.reviewer.post(f"/v1/reviews/{video_id}/approve"), 409, code="invalid_transition")
    expect_error(team.reviewer.post(f"/v1/reviews/{video_id}/withdraw", json={"reason": "x"}), 409)
    expect_error(team.reviewer.post("/v1/reviews/video_nope/approve"), 404)
    expect_error(team.reviewer.post("/v1/reviews/../approve"), 404)
    expect_error(team.creator.post(publication, json={"action": "shout"}), 400, param="action")
    expect_error(team.creator.post(publication, json={"action": "submit", "extra": 1}), 400,
                 code="unknown_parameter")
    expect_error(team.creator.post(publication, content=b"{", headers={"Content-Type": "application/json"}),
                 400, code="invalid_json")
    expect_error(team.reviewer.get("/v1/reviews", params={"state": "everything"}), 400, param="state")
    assert team.creator.ok("GET", publication)["state"] == "private"
    team.creator.ok("POST", publication, json={"action": "submit"})
    expect_error(team.creator.post(publication, json={"action": "submit"}), 409)
    expect_error(team.reviewer.post(f"/v1/reviews/{video_id}/reject", json={"reason": "x" * 2001}), 400,
                 param="reason")
    assert team.creator.ok("GET", publication)["state"] == "pending"


def test_the_gallery_pages_and_needs_no_key(team):
    ids = [_approved(team) for _ in range(3)]
    first = team.anonymous.ok("GET", "/v1/gallery", params={"limit": 2})
    assert first["has_more"] and len(first["data"]) == 2 and first["data"][0]["id"] == ids[-1]
    rest = team.anonymous.ok("GET", "/v1/gallery", params={"limit": 2, "after": first["last_id"]})
    assert rest["data"][0]["id"] == ids[0]
    expect_error(team.anonymous.get("/v1/gallery", params={"after": "video_nope"}), 400, param="after")
    expect_error(team.anonymous.get("/share/not-a-token"), 404)
    expect_error(team.anonymous.get("/v1/reviews"), 401)


@pytest.mark.parametrize("request_, status, code", [
    (("PATCH", "/v1/admin/users/nobody", {"json": {"role": "viewer"}}), 404, "user_not_found"),
    (("POST", "/v1/admin/users/nobody/keys", {}), 404, "user_not_found"),
    (("POST", "/v1/admin/users", {"json": {"name": "newbie", "role": "king"}}), 400, None),
    (("PATCH", "/v1/admin/users/carl", {"json": {"role": "member"}}), 400, None),
    (("POST", "/v1/admin/users", {"json": {"name": "carl", "role": "creator"}}), 409, "user_exists"),
    (("POST", "/v1/admin/users", {"json": {"name": "bad name/..", "role": "creator"}}), 400, None),
    (("POST", "/v1/admin/users", {"json": {"name": "x" * 101, "role": "creator"}}), 400, None),
    (("PATCH", "/v1/admin/users/carl", {"json": {"videos_per_day": -1}}), 400, None),
    (("PATCH", "/v1/admin/users/carl", {"json": {"colour": "red"}}), 400, "unknown_parameter"),
    (("POST", "/v1/admin/suspend", {"json": {"users": ["carl", "nobody"]}}), 404, "user_not_found"),
    (("POST", "/v1/admin/suspend", {"json": {"role": "king"}}), 400, None),
    (("POST", "/v1/admin/suspend", {"json": {}}), 400, None),
    (("POST", "/v1/admin/suspend", {"json": {"users": ["root"]}}), 409, "self_suspension"),
    (("DELETE", "/v1/admin/keys/999999", {}), 404, "not_found"),
])
def test_bad_admin_requests_are_4xx_and_change_nothing(team, request_, status, code):
    before = team.admin.ok("GET", "/v1/admin/users")["data"]
    method, path, kwargs = request_
    error = expect_error(team.admin.call(method, path, **kwargs), status, code=code)
    assert error["message"]
    assert team.admin.ok("GET", "/v1/admin/users")["data"] == before
    assert team.creator.get("/v1/videos").status_code == 200  # carl is not suspended


def test_a_role_change_applies_to_the_next_request(team):
    client = add_user(team.admin, "rory", "creator")
    assert client.post("/v1/videos", json={"prompt": PROMPT, "seconds": "1"}).status_code == 200
    assert team.admin.ok("PATCH", "/v1/admin/users/rory", json={"role": "viewer"})["rights"] == ["read"]
    expect_error(client.post("/v1/videos", json={"prompt": PROMPT, "seconds": "1"}), 403)


def _gallery(team) -> list[str]:
    return [v["id"] for v in team.anonymous.ok("GET", "/v1/gallery", params={"limit": 100})["data"]]


def _approved(team) -> str:
    video_id = make_video(team.creator)
    team.creator.ok("POST", f"/v1/videos/{video_id}/publication", json={"action": "submit"})
    team.reviewer.ok("POST", f"/v1/reviews/{video_id}/approve")
    return video_id
