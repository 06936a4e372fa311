"""The prompt policy through the API of a live server: a matching prompt is refused with
`moderation_blocked` before any work (no video, no job, no file, no quota used), the attempt is kept
for reviewers, and every change to the policy is audited."""
from __future__ import annotations

import io

import openai
import pytest
from PIL import Image

from reelforge.service.db import Usage, Video
from service_helpers import add_user, expect_error, make_video

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")
PROMPT = "a red ball rolls left on a blue background"


@pytest.fixture(scope="module")
def people(governed):
    admin = governed.admin
    return admin, add_user(admin, "carl", "creator"), add_user(admin, "rita", "reviewer")


def _count(governed, table) -> int:
    with governed.app.state.sessions() as session:
        return session.query(table).count()


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), (0, 200, 0)).save(buffer, "PNG")
    return buffer.getvalue()


def test_blocked_prompts_are_refused_before_any_work_and_logged(governed, people):
    admin, creator, reviewer = people
    rule = admin.ok("POST", "/v1/admin/policy/rules", json={"kind": "term", "value": "Purple Cube",
                                                             "note": "brand"})
    pattern = admin.ok("POST", "/v1/admin/policy/rules", json={"kind": "pattern", "value": r"\bzap+\b"})
    source = make_video(creator)
    before = {t: _count(governed, t) for t in (Video, Usage)}
    files = list(governed.app.state.storage.root.iterdir())
    client = openai.OpenAI(base_url=governed.url + "/v1", api_key=creator.key, max_retries=0)
    attempts = [
        lambda: client.videos.create(prompt="a PURPLE cube spins", input_reference=("a.png", _png(), "image/png")),
        lambda: client.videos.create(prompt="zappp goes the star"),
        lambda: client.videos.remix(source, prompt="now a purple cube"),
        lambda: client.post("/videos/extensions", cast_to=object,  # by id: the SDK's own dict
                            body={"video": {"id": source}, "prompt": "a purple cube appears", "seconds": "4"}),
        lambda: client.post("/videos/edits", cast_to=object, body={"video": {"id": source}, "prompt": "zap"}),
    ]
    for attempt in attempts:
        with pytest.raises(openai.BadRequestError) as e:
            attempt()
        assert e.value.code == "moderation_blocked" and e.value.param == "prompt"
        assert "purple" not in e.value.message.lower()  # the rule is not revealed
    assert {t: _count(governed, t) for t in (Video, Usage)} == before
    assert list(governed.app.state.storage.root.iterdir()) == files

    blocked = reviewer.ok("GET", "/v1/reviews/blocked")["data"]
    assert [b["prompt"] for b in blocked[:5]] == ["zap", "a purple cube appears", "now a purple cube",
                                                   "zappp goes the star", "a PURPLE cube spins"]
    assert blocked[0]["user"] == "carl" and blocked[0]["rule"] == r"pattern: \bzap+\b"
    expect_error(creator.get("/v1/reviews/blocked"), 403)

    for word_inside in ("purple cubes everywhere", "a zappy star", "the purplecube"):
        assert creator.post("/v1/videos", json={"prompt": word_inside, "seconds": "1"}).status_code == 200
    admin.ok("DELETE", f"/v1/admin/policy/rules/{rule['id']}")
    admin.ok("DELETE", f"/v1/admin/policy/rules/{pattern['id']}")
    assert creator.post("/v1/videos", json={"prompt": "a purple cube spins", "seconds": "1"}).status_code == 200
    actions = [(e["action"], e["actor"]) for e in admin.ok("GET", "/v1/admin/audit")["data"]
               if e["action"].startswith("policy.")]
    assert actions == [("policy.rule_added", "root")] * 2 + [("policy.rule_removed", "root")] * 2


def test_a_blocked_prompt_uses_no_quota(governed, people):
    admin, _, _ = people
    creator = add_user(admin, "quinn", "creator")
    admin.ok("PATCH", "/v1/admin/users/quinn", json={"videos_per_day": 1})
    rule = admin.ok("POST", "/v1/admin/policy/rules", json={"kind": "term", "value": "forbidden"})
    for _ in range(3):
        expect_error(creator.post("/v1/videos", json={"prompt": "a forbidden dance", "seconds": "1"}), 400,
                     code="moderation_blocked")
    make_video(creator)
    admin.ok("DELETE", f"/v1/admin/policy/rules/{rule['id']}")


@pytest.mark.parametrize("body, param", [
    ({"kind": "pattern", "value": "(unclosed"}, "value"),
    ({"kind": "word", "value": "x"}, "kind"),
    ({"kind": "term", "value": ""}, "value"),
    ({"kind": "term", "value": "   "}, "value"),
    ({"kind": "term", "value": "x" * 501}, "value"),
    ({"kind": "term", "value": "x", "note": "n" * 2001}, "note"),
    ({"kind": "term"}, "value"),
])
def test_bad_rules_are_400_and_change_nothing(governed, people, body, param):
    admin, _, _ = people
    before = admin.ok("GET", "/v1/admin/policy")["rules"]
    expect_error(admin.post("/v1/admin/policy/rules", json=body), 400, param=param)
    assert admin.ok("GET", "/v1/admin/policy")["rules"] == before


def test_only_admins_change_the_policy(people):
    admin, creator, reviewer = people
    for client in (creator, reviewer):
        expect_error(client.post("/v1/admin/policy/rules", json={"kind": "term", "value": "x"}), 403)
        expect_error(client.get("/v1/admin/policy"), 403)
    expect_error(admin.delete("/v1/admin/policy/rules/999999"), 404)


@pytest.mark.parametrize("kind, value, prompt, matches", [
    ("term", "cube", "A CUBE spins", True),
    ("term", "cube", "cubes spin", False),
    ("term", "red ball", "a red \n ball", True),
    ("term", "red ball", "a redball", False),
    ("term", "red ball", "the red ball.", True),
    ("term", "c++", "code in c++ now", True),
    ("term", "c++", "code in c+++", False),
    ("pattern", r"\d{3,}", "room 101", True),
    ("pattern", r"^a ", "a ball", True),
    ("pattern", r"^a ", "the a ball", False),
])
def test_terms_match_whole_words_and_patterns_search(kind, value, prompt, matches):
    from reelforge.service.policy import _compile
    assert bool(_compile(kind, value).search(prompt)) is matches
