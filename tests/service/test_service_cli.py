"""`reelforge keys` and `reelforge serve`'s refusals, in a temporary REELFORGE_HOME."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from reelforge.cli import main


@pytest.fixture
def runner(tmp_path, monkeypatch):
    monkeypatch.setenv("REELFORGE_HOME", str(tmp_path / "home"))
    return CliRunner()


def test_keys_create_list_revoke(runner, tmp_path):
    from reelforge.service import crud
    from reelforge.service.config import Settings
    from reelforge.service.db import make_engine, make_sessionmaker

    created = runner.invoke(main, ["keys", "create", "--user", "alice"])
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    assert key.startswith("rf-") and len(key) > 40
    sessions = make_sessionmaker(make_engine(Settings.from_env().database_path))
    with sessions() as session:
        assert crud.user_for_key(session, key).name == "alice"
        stored = [k.hash for k, _ in crud.list_keys(session)]
    assert key not in stored and len(stored) == 1  # only the hash is kept

    listing = runner.invoke(main, ["keys", "list"])
    assert key[:10] in listing.output and "alice" in listing.output and key not in listing.output
    revoked = runner.invoke(main, ["keys", "revoke", key[:10]])
    assert revoked.exit_code == 0, revoked.output
    with sessions() as session:
        assert crud.user_for_key(session, key) is None


@pytest.mark.parametrize("args, message", [
    (["keys", "create", "--user", "bad name/.."], "user name"),
    (["keys", "create"], "--user"),
    (["keys", "create", "--user", "a", "--role", "king"], "king"),
    (["keys", "revoke", "rf-nothing"], "no key"),
    (["serve", "--model", "/nonexistent/model"], "/nonexistent/model"),
])
def test_user_errors_are_one_line_and_exit_2(runner, args, message):
    result = runner.invoke(main, args)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and message in result.stderr and "Traceback" not in result.stderr


def test_an_unusable_home_is_one_line(runner, monkeypatch, tmp_path, tiny_model_dir):
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("REELFORGE_HOME", str(tmp_path / "file" / "home"))
    for args in (["keys", "list"], ["serve", "--model", str(tiny_model_dir)]):
        result = runner.invoke(main, args)
        assert result.exit_code == 2 and result.stderr.startswith("error: ") and "Traceback" not in result.stderr


def test_bad_settings_are_reported(runner, monkeypatch, tiny_model_dir):
    monkeypatch.setenv("REELFORGE_WORKERS", "many")
    result = runner.invoke(main, ["serve", "--model", str(tiny_model_dir)])
    assert result.exit_code == 2 and "REELFORGE_WORKERS" in result.stderr
    monkeypatch.delenv("REELFORGE_WORKERS")
    monkeypatch.setenv("REELFORGE_MODEL_ALIASES", "sora-2=other-model")
    result = runner.invoke(main, ["serve", "--model", str(tiny_model_dir)])
    assert result.exit_code == 2 and "sora-2" in result.stderr
