"""`reelforge users`, `keys revoke --all`, `audit`, `reports` and `policy`, tried as a new admin would:
in a temporary REELFORGE_HOME, and against a live server sharing it. Every mistake is one line,
`error: ...`, and exit status 2."""
from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner

from reelforge.cli import main
from service_helpers import Api, expect_error, wait_for

PROMPT = "a red ball rolls left on a blue background"


@pytest.fixture
def cli(tmp_path, monkeypatch):
    monkeypatch.setenv("REELFORGE_HOME", str(tmp_path / "home"))
    runner = CliRunner()

    def run(*args: str, ok: bool = True):
        result = runner.invoke(main, list(args))
        if ok:
            assert result.exit_code == 0, (args, result.output)
        return result

    return run


def test_a_first_admin_and_a_team_from_the_cli(cli):
    assert "created user 'admin' with role admin" in cli("users", "create", "admin", "--role", "admin").output
    key = cli("keys", "create", "--user", "admin").stdout.strip()
    assert key.startswith("rf-")
    cli("users", "create", "carl", "--role", "creator", "--publisher")
    cli("users", "set-role", "carl", "tester")
    cli("users", "set-publisher", "carl", "no")
    cli("users", "set-limits", "carl", "--videos-per-day", "5", "--per-minute", "default")
    assert _row(cli, "carl") == ["carl", "tester", "no", "no", "5/-/-"]
    cli("users", "suspend", "carl", "--reason", "testing")
    assert _row(cli, "carl")[3] == "yes"
    cli("users", "unsuspend", "carl")

    entries = json.loads(cli("audit", "export").stdout)
    assert [(e["action"], e["target"]) for e in entries] == [
        ("user.created", "admin"), ("key.created", "admin"), ("user.created", "carl"),
        ("user.publisher_changed", "carl"), ("user.role_changed", "carl"), ("user.publisher_changed", "carl"),
        ("user.limits_changed", "carl"), ("user.suspended", "carl"), ("user.unsuspended", "carl")]
    assert all(e["actor"].startswith("cli") for e in entries)


def test_policy_from_the_cli(cli, tmp_path):
    added = cli("policy", "add", "term", "purple cube", "--note", "brand").output
    assert "added rule 1" in added
    cli("policy", "add", "pattern", r"\bzap+\b")
    assert cli("policy", "list").output.splitlines()[0].split()[:3] == ["1", "term", "purple"]
    assert cli("policy", "check", "a PURPLE  cube", ok=False).exit_code == 1
    assert cli("policy", "check", "a red ball").output.strip() == "allowed"
    cli("policy", "remove", "1")
    assert cli("policy", "check", "a purple cube").output.strip() == "allowed"
    out = tmp_path / "audit.csv"
    cli("audit", "export", "--format", "csv", "-o", str(out))
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["action"] for r in rows] == ["policy.rule_added", "policy.rule_added", "policy.rule_removed"]


@pytest.mark.parametrize("args, message", [
    (["users", "create", "bob"], "--role"),
    (["users", "create", "bob", "--role", "king"], "king"),
    (["users", "create", "bob", "--role", "member"], "member"),
    (["users", "create", "bad name/..", "--role", "creator"], "user name"),
    (["users", "set-role", "nobody", "viewer"], "no user 'nobody'"),
    (["users", "set-role", "nobody", "emperor"], "emperor"),
    (["users", "set-publisher", "nobody", "yes"], "no user 'nobody'"),
    (["users", "set-limits", "nobody", "--videos-per-day", "3"], "no user 'nobody'"),
    (["users", "set-limits", "nobody"], "give at least one"),
    (["users", "set-limits", "nobody", "--videos-per-day", "lots"], "'lots' is not an integer"),
    (["users", "suspend", "nobody"], "no user 'nobody'"),
    (["users", "suspend"], "give user names"),
    (["users", "suspend", "a", "--role", "tester"], "give user names"),
    (["users", "unsuspend", "nobody"], "no user 'nobody'"),
    (["users", "frobnicate"], "frobnicate"),
    (["keys", "revoke"], "give one KEY"),
    (["keys", "revoke", "1", "--all"], "give one KEY"),
    (["policy", "add", "pattern", "(unclosed"], "not a valid regular expression"),
    (["policy", "add", "word", "x"], "word"),
    (["policy", "add", "term", "x" * 501], "at most 500"),
    (["policy", "remove", "999"], "no policy rule 999"),
    (["policy", "remove", "one"], "one"),
    (["audit", "export", "--format", "xml"], "xml"),
    (["reports", "export", "-o", "/nonexistent/folder/reports.csv"], "cannot write"),
])
def test_mistakes_are_one_line_and_exit_2(cli, args, message):
    result = cli(*args, ok=False)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and message in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_a_creation_that_fails_changes_nothing(cli):
    cli("users", "create", "ann", "--role", "creator")
    assert cli("users", "create", "ann", "--role", "admin", ok=False).exit_code == 2
    assert _row(cli, "ann")[1] == "creator"


def test_keys_revoke_all_from_the_cli_stops_a_live_servers_running_job(gated, monkeypatch):
    live = gated()
    monkeypatch.setenv("REELFORGE_HOME", str(live.settings.home))
    runner = CliRunner()
    creator = Api(live.url, live.key("carl", role="creator"))
    running = creator.ok("POST", "/v1/videos", json={"prompt": PROMPT, "seconds": "1"})["id"]
    assert live.pipe.started.wait(20)
    # Past the worker's first report: from here only its periodic check can tell it to stop.
    wait_for(lambda: creator.ok("GET", f"/v1/videos/{running}")["progress"] > 0)

    result = runner.invoke(main, ["keys", "revoke", "--all", "--reason", "drill"])
    assert result.exit_code == 0 and "revoked 1 keys and cancelled 1 jobs" in result.output
    expect_error(creator.get("/v1/videos"), 401)  # the very next call
    # The CLI is another process as far as the worker knows: it learns from the database at its next
    # report and stops the job while the gate is still shut.
    assert live.pipe.cancelled.wait(20)
    fresh = Api(live.url, runner.invoke(main, ["keys", "create", "--user", "carl"]).stdout.strip())
    video = fresh.ok("GET", f"/v1/videos/{running}")
    assert video["status"] == "failed" and video["error"]["code"] == "cancelled"
    entries = json.loads(runner.invoke(main, ["audit", "export"]).stdout)
    assert entries[-2]["action"] == "keys.revoked_all" and entries[-2]["detail"]["videos_cancelled"] == [running]


def test_reports_export_and_credits_from_the_cli(cli, tmp_path):
    from reelforge.service.accounts import get_user
    from reelforge.service.config import Settings
    from reelforge.service.db import Report, make_engine, make_sessionmaker
    cli("users", "create", "tess", "--role", "tester")
    with make_sessionmaker(make_engine(Settings.from_env().database_path))() as session:
        user_id = get_user(session, "tess").id
        for status in ("accepted", "fixed", "rejected"):
            session.add(Report(video_id="video_x", reporter_id=user_id, category="physics", severity="low",
                               description=f"a {status} one", prompt="p", model="tiny", seed=1, status=status,
                               created_at=0))
        session.commit()
    assert cli("reports", "credits").output.split() == ["2", "tess"]
    rows = json.loads(cli("reports", "export").stdout)
    assert [r["status"] for r in rows] == ["accepted", "fixed", "rejected"] and rows[0]["reporter"] == "tess"
    out = tmp_path / "reports.csv"
    cli("reports", "export", "--format", "csv", "-o", str(out))
    assert [r["description"] for r in csv.DictReader(out.open())] == ["a accepted one", "a fixed one", "a rejected one"]


def _row(cli, name: str) -> list[str]:
    """NAME's line of `reelforge users list`, split into its columns."""
    return next(line.split() for line in cli("users", "list").output.splitlines() if line.split()[0] == name)
