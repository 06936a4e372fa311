"""The publication state machine, exhaustively: every action from every state, first as the pure
table, then through the API of a live server with the video put in that state."""
from __future__ import annotations

import itertools

import httpx
import pytest

from reelforge.service.db import Video
from reelforge.service.publication import ACTIONS, PUBLIC, STATES, TRANSITIONS, TransitionError, next_state
from service_helpers import add_user, expect_error, make_video


@pytest.mark.parametrize("state, action", list(itertools.product(STATES, ACTIONS)))
def test_next_state_follows_the_table(state, action):
    if (state, action) in TRANSITIONS:
        assert next_state(state, action) == TRANSITIONS[state, action]
    else:
        with pytest.raises(TransitionError, match=state):
            next_state(state, action)


def test_only_a_review_or_a_publisher_makes_a_video_public():
    assert {(s, a) for (s, a), to in TRANSITIONS.items() if to in PUBLIC} == {("pending", "approve"),
                                                                              ("private", "publish")}
    assert all(s in STATES and to in STATES for (s, _), to in TRANSITIONS.items())


@pytest.fixture(scope="module")
def actors(governed):
    admin = governed.admin
    return add_user(admin, "pat", "creator", publisher=True), add_user(admin, "rex", "reviewer")


@pytest.fixture(scope="module")
def video_id(actors):
    return make_video(actors[0])


def _force(governed, video_id, state):
    """Put the video straight into `state`, public ones with a share token as the API gives them."""
    with governed.app.state.sessions() as session:
        video = session.query(Video).filter(Video.id == video_id).one()
        video.publication = state
        video.share_token = f"token-{state}" if state in PUBLIC else None
        session.commit()


@pytest.mark.parametrize("state, action", list(itertools.product(STATES, ACTIONS)))
def test_every_action_from_every_state_through_the_api(governed, actors, video_id, state, action):
    owner, reviewer = actors
    _force(governed, video_id, state)
    if action in ("submit", "publish"):
        response = owner.post(f"/v1/videos/{video_id}/publication", json={"action": action})
    elif action == "retract":
        response = owner.delete(f"/v1/videos/{video_id}/publication")
    else:
        response = reviewer.post(f"/v1/reviews/{video_id}/{action}", json={"reason": "because"})
    target = TRANSITIONS.get((state, action))
    if target is None:
        expect_error(response, 409, code="invalid_transition")
        assert owner.ok("GET", f"/v1/videos/{video_id}/publication")["state"] == state
        return
    assert response.status_code == 200, response.text
    seen = owner.ok("GET", f"/v1/videos/{video_id}/publication")
    assert seen["state"] == target and seen["public"] == (target in PUBLIC)
    shared = httpx.get(f"{governed.url}/share/token-{state}")
    assert shared.status_code == 404  # leaving a state always replaces or clears the link
    if target in PUBLIC:
        assert httpx.get(seen["share_url"]).status_code == 200
