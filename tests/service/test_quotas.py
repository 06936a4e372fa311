"""Per-user quotas and rate limits through the API of a live server: each is a 429 with Retry-After,
a user's own limit wins over the deployment's, and deleting videos does not give quota back."""
from __future__ import annotations

import openai
import pytest

from service_helpers import Api, add_user, expect_error, make_video

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")
PROMPT = "a red ball rolls left on a blue background"
DAY = 24 * 3600


def _create(api, seconds="1"):
    return api.post("/v1/videos", json={"prompt": PROMPT, "seconds": seconds})


def test_videos_per_day_is_429_with_retry_after_and_deleting_does_not_reset_it(governed):
    creator = add_user(governed.admin, "daisy", "creator")
    governed.admin.ok("PATCH", "/v1/admin/users/daisy", json={"videos_per_day": 2})
    first, _ = make_video(creator), make_video(creator)
    error = expect_error(_create(creator), 429, code="quota_exceeded")
    assert "2 a day" in error["message"]
    response = _create(creator)
    assert 1 <= int(response.headers["retry-after"]) <= DAY and response.json()["error"]["type"] == "rate_limit_error"
    creator.ok("DELETE", f"/v1/videos/{first}")
    expect_error(_create(creator), 429, code="quota_exceeded")
    client = openai.OpenAI(base_url=governed.url + "/v1", api_key=creator.key, max_retries=0)
    with pytest.raises(openai.RateLimitError):
        client.videos.create(prompt=PROMPT)
    assert governed.admin.ok("PATCH", "/v1/admin/users/daisy", json={"videos_per_day": None})["limits"] == {
        "videos_per_day": None, "seconds_per_day": None, "create_per_minute": None}
    make_video(creator)  # back to the deployment's setting: no daily limit


def test_seconds_per_day_counts_rendered_seconds(governed):
    creator = add_user(governed.admin, "sam", "creator")
    governed.admin.ok("PATCH", "/v1/admin/users/sam", json={"seconds_per_day": 2})
    make_video(creator), make_video(creator)
    error = expect_error(_create(creator), 429, code="quota_exceeded")
    assert "2 s a day" in error["message"]
    governed.admin.ok("PATCH", "/v1/admin/users/sam", json={"seconds_per_day": 3})
    error = expect_error(_create(creator, seconds="2"), 429, code="quota_exceeded")
    assert "needs 2 s more" in error["message"]
    make_video(creator)  # one more second fits
    governed.admin.ok("PATCH", "/v1/admin/users/sam", json={"seconds_per_day": 1})
    error = expect_error(_create(creator, seconds="2"), 429)
    assert "whole quota" in error["message"]


def test_a_users_own_rate_limit_is_a_429(governed):
    creator = add_user(governed.admin, "rafe", "creator")
    governed.admin.ok("PATCH", "/v1/admin/users/rafe", json={"create_per_minute": 1})
    make_video(creator)
    response = _create(creator)
    expect_error(response, 429, code="rate_limit_exceeded")
    assert 1 <= int(response.headers["retry-after"]) <= 60
    other = add_user(governed.admin, "rhea", "creator")
    make_video(other)  # limits are per user


def test_a_limit_of_zero_lifts_the_deployments_limit(gated):
    live = gated(videos_per_day=1)
    live.gate.set()
    admin = Api(live.url, live.key("root", role="admin"))
    creator = add_user(admin, "zed", "creator")
    make_video(creator)
    expect_error(_create(creator), 429, code="quota_exceeded")
    admin.ok("PATCH", "/v1/admin/users/zed", json={"videos_per_day": 0})
    make_video(creator)
