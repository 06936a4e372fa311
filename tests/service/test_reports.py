"""Red-team reports through the API of a live server: filed by testers against videos they can see,
triaged by admins, accepted ones credited by name, exported as CSV and JSON; bad reports are 4xx."""
from __future__ import annotations

import csv
import io
import itertools

import pytest

from reelforge.service.reports import CATEGORIES, TRIAGE
from service_helpers import add_user, expect_error, make_video

PROMPT = "a red ball rolls left on a blue background"


@pytest.fixture(scope="module")
def crew(governed):
    admin = governed.admin
    return (admin, add_user(admin, "tess", "tester"), add_user(admin, "toby", "tester"),
            add_user(admin, "rita", "reviewer"), add_user(admin, "vic", "viewer"), add_user(admin, "carl", "creator"))


@pytest.fixture(scope="module")
def one_video(crew) -> str:
    """A completed video of tess's, for tests that need many reports and no particular video."""
    return make_video(crew[1])


def _report(client, video_id, category="physics", **extra):
    body = {"video_id": video_id, "category": category, "severity": "high",
            "description": "the ball passes through the floor", **extra}
    return client.ok("POST", "/v1/reports", json=body)


def test_reports_flow_from_filing_to_credit(crew):
    admin, tess, toby, rita, _, _ = crew
    own = make_video(tess, PROMPT)
    filed = _report(tess, own, start_seconds=0.25, end_seconds=0.75)
    assert filed["status"] == "open" and filed["reporter"] == "tess" and filed["prompt"] == PROMPT
    assert (filed["start_seconds"], filed["end_seconds"]) == (0.25, 0.75)
    second = _report(tess, own, category="temporal_inconsistency")
    third = _report(toby, make_video(toby), category="visual_artifact")

    assert [r["id"] for r in tess.ok("GET", "/v1/reports")["data"]] == [second["id"], filed["id"]]
    assert {r["id"] for r in rita.ok("GET", "/v1/reports")["data"]} >= {filed["id"], second["id"], third["id"]}
    expect_error(toby.get(f"/v1/reports/{filed['id']}"), 404)  # another tester's report

    item = rita.ok("GET", f"/v1/reviews/{own}")
    assert item["flags"] == {"physics": 1, "temporal_inconsistency": 1}

    assert admin.ok("POST", f"/v1/reports/{filed['id']}/triage", json={"status": "accepted"})["triaged_by"] == "root"
    admin.ok("POST", f"/v1/reports/{second['id']}/triage", json={"status": "accepted"})
    admin.ok("POST", f"/v1/reports/{second['id']}/triage", json={"status": "fixed", "note": "sampler fix"})
    admin.ok("POST", f"/v1/reports/{third['id']}/triage", json={"status": "rejected", "note": "as intended"})
    expect_error(rita.post(f"/v1/reports/{third['id']}/triage", json={"status": "open"}), 403)

    assert tess.ok("GET", f"/v1/reports/{second['id']}")["status"] == "fixed"
    credits = tess.ok("GET", "/v1/reports/credits")["data"]
    assert credits[0] == {"reporter": "tess", "accepted": 2}
    assert all(c["reporter"] != "toby" for c in credits)
    assert rita.ok("GET", f"/v1/reviews/{own}")["flags"] == {}  # no open reports left

    rows = rita.ok("GET", "/v1/reports/export")["data"]
    exported = {r["id"]: r for r in rows}
    assert exported[second["id"]]["triage_note"] == "sampler fix" and exported[filed["id"]]["seed"] == filed["seed"]
    table = list(csv.DictReader(io.StringIO(rita.get("/v1/reports/export", params={"format": "csv"}).text)))
    assert [int(r["id"]) for r in table] == [r["id"] for r in rows]
    assert table[0]["prompt"] == rows[0]["prompt"] and table[0]["start_seconds"] == "0.25"
    expect_error(tess.get("/v1/reports/export"), 403)


def test_a_report_survives_its_videos_deletion(crew):
    admin, tess, *_ = crew
    video_id = make_video(tess, "a green star spins")
    report = _report(tess, video_id)
    tess.ok("DELETE", f"/v1/videos/{video_id}")
    kept = admin.ok("GET", f"/v1/reports/{report['id']}")
    assert kept["video_id"] == video_id and kept["prompt"] == "a green star spins"


def test_reports_on_public_videos_but_not_on_private_ones(crew):
    admin, tess, _, rita, viewer, carl = crew
    private = make_video(carl)
    expect_error(tess.post("/v1/reports", json={"video_id": private, "category": "physics", "severity": "low",
                                                  "description": "x"}), 404)
    assert _report(rita, private)["reporter"] == "rita"  # reviewers see every video
    carl.ok("POST", f"/v1/videos/{private}/publication", json={"action": "submit"})
    rita.ok("POST", f"/v1/reviews/{private}/approve")
    assert _report(tess, private)["video_id"] == private  # public now
    expect_error(viewer.post("/v1/reports", json={"video_id": private, "category": "physics", "severity": "low",
                                                  "description": "x"}), 403)


@pytest.mark.parametrize("change, param", [
    ({"video_id": "video_nope"}, "video_id"),
    ({"video_id": "../etc"}, "video_id"),
    ({"category": "boring"}, "category"),
    ({"severity": "apocalyptic"}, "severity"),
    ({"description": ""}, "description"),
    ({"description": "x" * 4001}, "description"),
    ({"start_seconds": -1}, "start_seconds"),
    ({"start_seconds": 0.5, "end_seconds": 0.25}, "end_seconds"),
    ({"end_seconds": 99}, "end_seconds"),
    ({"colour": "red"}, "colour"),
])
def test_bad_reports_are_4xx_and_nothing_is_filed(crew, change, param):
    admin, tess, *_ = crew
    video_id = make_video(tess)
    before = len(admin.ok("GET", "/v1/reports")["data"])
    body = {"video_id": video_id, "category": "physics", "severity": "low", "description": "falls up", **change}
    response = tess.post("/v1/reports", json=body)
    assert response.status_code in (400, 404)
    expect_error(response, response.status_code, param=param)
    assert len(admin.ok("GET", "/v1/reports")["data"]) == before


def test_every_category_is_accepted(crew):
    _, tess, *_ = crew
    video_id = make_video(tess)
    assert {_report(tess, video_id, category=c)["category"] for c in CATEGORIES} == set(CATEGORIES)


@pytest.mark.parametrize("start, to", list(itertools.product(TRIAGE, TRIAGE)))
def test_triage_follows_its_table(crew, governed, one_video, start, to):
    admin, tess, *_ = crew
    report = _report(tess, one_video)
    _force_status(governed, report["id"], start)
    response = admin.post(f"/v1/reports/{report['id']}/triage", json={"status": to})
    if to in TRIAGE[start]:
        assert response.status_code == 200 and response.json()["status"] == to
    else:
        expect_error(response, 409, code="invalid_transition")
        assert admin.ok("GET", f"/v1/reports/{report['id']}")["status"] == start


def test_bad_triage_is_4xx(crew):
    admin, tess, *_ = crew
    report = _report(tess, make_video(tess))
    expect_error(admin.post(f"/v1/reports/{report['id']}/triage", json={"status": "done"}), 400, param="status")
    expect_error(admin.post(f"/v1/reports/{report['id']}/triage", json={"status": "accepted", "note": "n" * 2001}),
                 400, param="note")
    expect_error(admin.post("/v1/reports/999999/triage", json={"status": "accepted"}), 404)
    expect_error(admin.get("/v1/reports/not-a-number"), 400)
    assert admin.ok("GET", f"/v1/reports/{report['id']}")["status"] == "open"


def _force_status(governed, report_id, status):
    """Put a report straight into a status, to try every move from it."""
    from reelforge.service.db import Report
    with governed.app.state.sessions() as session:
        session.get(Report, report_id).status = status
        session.commit()
