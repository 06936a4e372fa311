"""Alembic migrations: a database made before them (by `create_all`) is stamped and upgraded with
its data intact; a new one matches the models exactly; upgrading again changes nothing."""
from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from reelforge.service import crud, migrate
from reelforge.service.db import ApiKey, Base, Usage, User, Video, make_engine, make_sessionmaker
from reelforge.service.security import hash_key
from service_helpers import Api, start_gated, wait_for

# What `Base.metadata.create_all` made before governance, statement for statement.
PRE_ALEMBIC_SCHEMA = """
CREATE TABLE users (id INTEGER NOT NULL, name VARCHAR(100) NOT NULL, role VARCHAR(32) NOT NULL,
    disabled BOOLEAN NOT NULL, created_at INTEGER NOT NULL, PRIMARY KEY (id), UNIQUE (name));
CREATE TABLE api_keys (id INTEGER NOT NULL, user_id INTEGER NOT NULL, prefix VARCHAR(16) NOT NULL,
    hash VARCHAR(64) NOT NULL, created_at INTEGER NOT NULL, revoked_at INTEGER, last_used_at INTEGER,
    PRIMARY KEY (id), FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE, UNIQUE (hash));
CREATE INDEX ix_api_keys_user_id ON api_keys (user_id);
CREATE TABLE videos (seq INTEGER NOT NULL, id VARCHAR(64) NOT NULL, user_id INTEGER NOT NULL,
    status VARCHAR(16) NOT NULL, progress INTEGER NOT NULL, created_at INTEGER NOT NULL, completed_at INTEGER,
    expires_at INTEGER, error_code VARCHAR(64), error_message TEXT, model VARCHAR(100) NOT NULL,
    prompt TEXT NOT NULL, seconds VARCHAR(16) NOT NULL, size VARCHAR(16) NOT NULL,
    remixed_from_video_id VARCHAR(64), kind VARCHAR(16) NOT NULL, source_video_id VARCHAR(64),
    render_width INTEGER NOT NULL, render_height INTEGER NOT NULL, render_seconds FLOAT NOT NULL,
    seed INTEGER NOT NULL, PRIMARY KEY (seq), UNIQUE (id),
    FOREIGN KEY(user_id) REFERENCES users (id) ON DELETE CASCADE);
CREATE INDEX ix_videos_user_seq ON videos (user_id, seq);
CREATE INDEX ix_videos_expires_at ON videos (expires_at);
CREATE TABLE jobs (id VARCHAR(64) NOT NULL, state VARCHAR(16) NOT NULL, spec TEXT NOT NULL,
    attempts INTEGER NOT NULL, worker_id VARCHAR(200), lease_until FLOAT, created_at FLOAT NOT NULL,
    PRIMARY KEY (id), FOREIGN KEY(id) REFERENCES videos (id) ON DELETE CASCADE);
CREATE INDEX ix_jobs_state_created ON jobs (state, created_at);
"""
OLD_KEY = "rf-an-old-key-made-before-governance-000000000"
SPEC = '{"height": 64, "kind": "create", "prompt": "a red ball", "reference": false, "seconds": 1.0, ' \
       '"seed": 3, "source": false, "width": 64}'


def old_database(path, now: int) -> None:
    with sqlite3.connect(path) as db:
        db.executescript(PRE_ALEMBIC_SCHEMA)
        db.execute("INSERT INTO users VALUES (1, 'mia', 'member', 0, ?), (2, 'val', 'viewer', 0, ?), "
                   "(3, 'old', 'member', 1, ?)", (now, now, now))
        db.execute("INSERT INTO api_keys VALUES (1, 1, ?, ?, ?, NULL, NULL)", (OLD_KEY[:10], hash_key(OLD_KEY), now))
        db.execute("INSERT INTO videos VALUES (1, 'video_old', 1, 'completed', 100, ?, ?, NULL, NULL, NULL, 'tiny', "
                   "'a red ball', '1', '64x64', NULL, 'create', NULL, 64, 64, 1.0, 3)", (now, now))
        db.execute("INSERT INTO jobs VALUES ('video_old', 'done', ?, 1, NULL, NULL, ?)", (SPEC, float(now)))


def test_a_create_all_database_is_stamped_and_upgraded_with_its_data(tmp_path):
    path = tmp_path / "reelforge.db"
    old_database(path, crud.now())
    sessions = make_sessionmaker(make_engine(path))
    with sessions() as session:
        users = {u.name: u for u in session.query(User)}
        assert {n: u.role for n, u in users.items()} == {"mia": "creator", "val": "viewer", "old": "creator"}
        assert users["old"].suspended_at is not None and users["mia"].suspended_at is None
        assert not users["mia"].publisher
        assert crud.user_for_key(session, OLD_KEY).name == "mia"
        video = session.query(Video).one()
        assert video.publication == "private" and video.share_token is None and video.prompt == "a red ball"
        assert [(u.video_id, u.seconds) for u in session.query(Usage)] == [("video_old", 1.0)]
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(migrate.head(),)]
        assert "disabled" not in [row[1] for row in db.execute("PRAGMA table_info(users)")]


def test_a_new_database_matches_the_models_exactly(tmp_path):
    engine = make_engine(tmp_path / "new.db")
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()


def test_upgrading_again_changes_nothing(tmp_path):
    path = tmp_path / "reelforge.db"
    sessions = make_sessionmaker(make_engine(path))
    with sessions() as session:
        crud.create_key(session, "ann")
    before = _dump(path)
    make_engine(path).dispose()
    assert _dump(path) == before


def test_a_database_at_the_first_revision_is_upgraded(tmp_path):
    path = tmp_path / "reelforge.db"
    engine = sqlalchemy.create_engine(f"sqlite:///{path}")
    with engine.connect() as connection:
        config = migrate.alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, migrate.BASELINE)
        connection.exec_driver_sql("INSERT INTO users VALUES (1, 'mia', 'member', 0, 0)")
        connection.commit()
    engine.dispose()
    with make_sessionmaker(make_engine(path))() as session:
        assert session.query(User).one().role == "creator"


def test_a_server_on_an_old_database_serves_its_old_keys(tmp_path, tiny_model_dir):
    home = tmp_path / "home"
    home.mkdir()
    old_database(home / "reelforge.db", crud.now())
    live = start_gated(home, tiny_model_dir)
    try:
        live.gate.set()
        mia = Api(live.url, OLD_KEY)
        assert [v["id"] for v in mia.ok("GET", "/v1/videos")["data"]] == ["video_old"]
        new = mia.ok("POST", "/v1/videos", json={"prompt": "a red ball", "seconds": "1"})["id"]
        wait_for(lambda: mia.ok("GET", f"/v1/videos/{new}")["status"] == "completed")
        assert mia.ok("POST", f"/v1/videos/{new}/publication", json={"action": "submit"})["state"] == "pending"
        with live.app.state.sessions() as session:
            assert session.query(ApiKey).count() == 1
    finally:
        live.stop()


def _dump(path) -> list[str]:
    with sqlite3.connect(path) as db:
        return list(db.iterdump())


def test_a_failed_upgrade_leaves_the_database_as_it_was(tmp_path):
    path = tmp_path / "reelforge.db"
    old_database(path, crud.now())
    with sqlite3.connect(path) as db:  # an index SQLite cannot keep when the column goes: 0002 fails midway
        db.execute("CREATE INDEX ix_users_disabled ON users (disabled)")
    before = _dump(path)
    with pytest.raises(sqlalchemy.exc.OperationalError):
        make_engine(path)
    assert _dump(path) == before
