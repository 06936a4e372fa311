"""The audit log through the API of a live server: every sensitive step is recorded with its actor,
target and time, in order; the export is JSON or CSV; the log cannot be changed, even in SQL."""
from __future__ import annotations

import csv
import io

import pytest
import sqlalchemy

from service_helpers import Api, add_user, expect_error, make_video

PROMPT = "a red ball rolls left on a blue background"


@pytest.fixture
def server(gated):
    live = gated()
    live.gate.set()
    live.admin = Api(live.url, live.key("root", role="admin"))
    return live


def _log(admin: Api, after_id: int = 0) -> list[dict]:
    return admin.ok("GET", "/v1/admin/audit", params={"after_id": after_id})["data"]


def test_each_sensitive_step_is_recorded_with_actor_target_and_time(server):
    admin = server.admin
    start = _log(admin)[-1]["id"]
    carl = add_user(admin, "carl", "creator")
    rita = add_user(admin, "rita", "reviewer")
    admin.ok("PATCH", "/v1/admin/users/carl", json={"publisher": True, "videos_per_day": 50})
    admin.ok("PATCH", "/v1/admin/users/carl", json={"role": "tester"})
    admin.ok("PATCH", "/v1/admin/users/carl", json={"role": "creator", "publisher": False})
    video = make_video(carl)
    carl.ok("POST", f"/v1/videos/{video}/publication", json={"action": "submit"})
    rita.ok("POST", f"/v1/reviews/{video}/reject", json={"reason": "blurry"})
    carl.ok("POST", f"/v1/videos/{video}/publication", json={"action": "submit"})
    rita.ok("POST", f"/v1/reviews/{video}/approve")
    rita.ok("POST", f"/v1/reviews/{video}/withdraw", json={"reason": "complaint"})
    carl.ok("DELETE", f"/v1/videos/{video}")
    admin.ok("PATCH", "/v1/admin/users/carl", json={"publisher": True})
    second = make_video(carl)
    carl.ok("POST", f"/v1/videos/{second}/publication", json={"action": "publish"})
    carl.ok("DELETE", f"/v1/videos/{second}/publication")
    rule = admin.ok("POST", "/v1/admin/policy/rules", json={"kind": "term", "value": "zap"})
    admin.ok("DELETE", f"/v1/admin/policy/rules/{rule['id']}")
    admin.ok("POST", "/v1/admin/suspend", json={"users": ["carl"], "reason": "spam"})
    admin.ok("POST", "/v1/admin/unsuspend", json={"users": ["carl"]})
    key_id = next(k["id"] for k in admin.ok("GET", "/v1/admin/keys")["data"] if k["user"] == "carl")
    admin.ok("DELETE", f"/v1/admin/keys/{key_id}")
    admin.ok("POST", "/v1/admin/keys/revoke-all", json={"reason": "drill"})

    entries = _log(Api(server.url, server.key("root")), after_id=start)
    steps = [(e["actor"], e["action"], e["target"]) for e in entries]
    assert steps == [
        ("root", "user.created", "carl"), ("root", "key.created", "carl"),
        ("root", "user.created", "rita"), ("root", "key.created", "rita"),
        ("root", "user.publisher_changed", "carl"), ("root", "user.limits_changed", "carl"),
        ("root", "user.role_changed", "carl"),
        ("root", "user.role_changed", "carl"), ("root", "user.publisher_changed", "carl"),
        ("carl", "video.submitted", video), ("rita", "video.rejected", video),
        ("carl", "video.submitted", video), ("rita", "video.approved", video), ("rita", "video.withdrawn", video),
        ("carl", "video.deleted", video),
        ("root", "user.publisher_changed", "carl"), ("carl", "video.published", second),
        ("carl", "video.retracted", second),
        ("root", "policy.rule_added", f"rule {rule['id']}"), ("root", "policy.rule_removed", f"rule {rule['id']}"),
        ("root", "user.suspended", "carl"), ("root", "user.unsuspended", "carl"),
        ("root", "key.revoked", "carl"), ("root", "keys.revoked_all", None),
        ("test", "key.created", "root"),
    ]
    assert [e["at"] for e in entries] == sorted(e["at"] for e in entries)
    detail = {(e["action"], e["target"]): e["detail"] for e in entries}  # the last of each
    assert entries[6]["detail"] == {"field": "role", "old": "creator", "new": "tester"}
    assert detail["video.rejected", video]["reason"] == "blurry"
    assert detail["user.suspended", "carl"] == {"reason": "spam"}
    assert detail["keys.revoked_all", None]["keys"] == 2 and detail["keys.revoked_all", None]["reason"] == "drill"


def test_the_export_is_json_or_csv_and_only_for_admins(server):
    admin = server.admin
    creator = add_user(admin, "carl", "creator")
    response = admin.get("/v1/admin/audit", params={"format": "csv"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    entries = _log(admin)
    assert [int(r["id"]) for r in rows] == [e["id"] for e in entries]
    assert rows[-1]["action"] == "key.created" and rows[-1]["target"] == "carl" and rows[-1]["actor"] == "root"
    assert rows[-1]["time"].endswith("+00:00")
    only = admin.ok("GET", "/v1/admin/audit", params={"action": "user.created"})["data"]
    assert {e["target"] for e in only} == {"root", "carl"}
    expect_error(admin.get("/v1/admin/audit", params={"format": "xml"}), 400, param="format")
    expect_error(creator.get("/v1/admin/audit"), 403)
    expect_error(add_user(admin, "rita", "reviewer").get("/v1/admin/audit"), 403)


def test_the_log_is_append_only_in_the_database_itself(server):
    engine = sqlalchemy.create_engine(f"sqlite:///{server.settings.database_path}")
    try:
        with engine.connect() as connection:
            count = connection.exec_driver_sql("SELECT count(*) FROM audit_log").scalar()
            assert count > 0
            for statement in ("UPDATE audit_log SET actor = 'nobody'", "DELETE FROM audit_log"):
                with pytest.raises(sqlalchemy.exc.DatabaseError, match="append-only"):
                    connection.exec_driver_sql(statement)
                connection.rollback()
            assert connection.exec_driver_sql("SELECT count(*) FROM audit_log").scalar() == count
            assert connection.exec_driver_sql("SELECT count(*) FROM audit_log WHERE actor = 'nobody'").scalar() == 0
    finally:
        engine.dispose()
