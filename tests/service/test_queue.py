"""The durable queue without HTTP: the transition table exhaustively, claims, leases and recovery."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from sqlalchemy import update

from reelforge.service import crud
from reelforge.service.catalog import RenderSeconds, RenderSize
from reelforge.service.config import Settings
from reelforge.service.db import Job, Video, make_engine, make_sessionmaker
from reelforge.service.storage import Storage
from reelforge.service.workers.base import TRANSITIONS, VIDEO_STATUS, JobSpec
from reelforge.service.workers.embedded import EmbeddedWorkerPool


@pytest.fixture
def sessions(tmp_path):
    return make_sessionmaker(make_engine(tmp_path / "test.db"))


def add_job(session, user_name="u") -> str:
    crud.create_key(session, user_name)  # a job is only accepted from a user holding a live key
    user = crud.get_or_create_user(session, user_name)
    video_id = crud.new_video_id()
    spec = JobSpec("create", "a red ball", 1, 64, 64, 1.0)
    crud.create_video(session, user, video_id, kind="create", model="tiny", prompt=spec.prompt,
                      seconds=RenderSeconds("1", 1.0), size=RenderSize("64x64", 64, 64), seed=1, spec=spec)
    return video_id


def force_state(session, video_id, state, worker="w1", lease=1e12):
    session.execute(update(Job).where(Job.id == video_id).values(state=state, worker_id=worker, lease_until=lease))
    session.commit()


OPERATIONS = {  # operation -> the state it moves a job to
    "claim": "running",
    "complete": "done",
    "fail": "failed",
    "cancel": "cancelled",
    "release": "queued",
}


def run(session, op, video_id):
    if op == "claim":
        return crud.claim_job(session, "w1", 60) is not None
    if op == "complete":
        return crud.complete_job(session, video_id, "w1", None)
    if op == "fail":
        return crud.fail_job(session, video_id, "w1", "generation_failed", "boom")
    if op == "cancel":
        return crud.cancel_video(session, session.get(Video, _seq(session, video_id)))
    return crud.release_job(session, video_id, "w1")


def _seq(session, video_id):
    return session.query(Video.seq).filter(Video.id == video_id).scalar()


@pytest.mark.parametrize("state", list(TRANSITIONS))
@pytest.mark.parametrize("op", list(OPERATIONS))
def test_every_operation_from_every_state_follows_the_table(sessions, state, op):
    with sessions() as session:
        video_id = add_job(session)
        force_state(session, video_id, state)
        target = OPERATIONS[op]
        # A claim takes a queued job; a running one only after its lease ran out (tested below).
        allowed = target in TRANSITIONS[state] and not (op == "claim" and state == "running")
        assert run(session, op, video_id) is allowed
        job, video = session.get(Job, video_id), session.get(Video, _seq(session, video_id))
        session.refresh(job), session.refresh(video)
        assert job.state == (target if allowed else state)
        if allowed:
            assert video.status == VIDEO_STATUS[target]


def test_claims_are_oldest_first_and_never_shared(sessions):
    with sessions() as session:
        first, second = add_job(session), add_job(session)
        assert crud.claim_job(session, "w1", 60)[0] == first
        assert crud.claim_job(session, "w2", 60)[0] == second
        assert crud.claim_job(session, "w3", 60) is None
        assert not crud.complete_job(session, first, "w2", None)  # not w2's job
        assert not crud.report_progress(session, first, "w2", 50, 60)
        assert crud.report_progress(session, first, "w1", 50, 60)
        assert session.get(Video, _seq(session, first)).progress == 50


def test_progress_reports_fail_once_a_job_is_cancelled_or_deleted(sessions):
    with sessions() as session:
        cancelled, deleted = add_job(session), add_job(session)
        crud.claim_job(session, "w1", 60), crud.claim_job(session, "w1", 60)
        crud.cancel_video(session, session.get(Video, _seq(session, cancelled)))
        crud.delete_video(session, session.get(Video, _seq(session, deleted)))
        assert not crud.report_progress(session, cancelled, "w1", 10, 60)
        assert not crud.report_progress(session, deleted, "w1", 10, 60)
        assert crud.job_state(session, cancelled)[0] == "cancelled" and crud.job_state(session, deleted) is None


def test_a_silent_worker_loses_its_lease_and_a_crash_loop_is_failed(sessions):
    with sessions() as session:
        video_id = add_job(session)
        for attempt in range(3):
            assert crud.claim_job(session, f"w{attempt}", 0.01)[0] == video_id
            time.sleep(0.02)
        assert crud.fail_exhausted(session, time.time(), max_attempts=3) == 1
        video = session.get(Video, _seq(session, video_id))
        session.refresh(video)
        assert video.status == "failed" and video.error_code == "worker_lost"
        assert crud.claim_job(session, "w9", 60) is None


def test_jobs_of_a_dead_process_are_requeued_at_start(sessions, tmp_path):
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(child.stdout)
    pool = EmbeddedWorkerPool(Settings(home=tmp_path), sessions, Storage(tmp_path / "files"), lambda: None)
    host = pool.host
    workers = {"dead": f"embedded:{host}:{dead_pid}:abcd:0", "same_process": f"embedded:{host}:{os.getpid()}:old:0",
               "alive": f"embedded:{host}:{os.getppid()}:abcd:0", "elsewhere": f"embedded:otherhost:{dead_pid}:ab:0",
               "ours": pool._worker_id(0), "foreign": "some-other-engine:7"}
    with sessions() as session:
        ids = {name: add_job(session) for name in workers}
        for name, worker in workers.items():
            force_state(session, ids[name], "running", worker=worker)
        assert crud.requeue_orphans(session, pool._is_dead) == 2
        states = {name: crud.job_state(session, ids[name])[0] for name in workers}
    assert states == {"dead": "queued", "same_process": "queued", "alive": "running", "elsewhere": "running",
                      "ours": "running", "foreign": "running"}


def test_storage_sweep_removes_only_folders_without_rows(tmp_path):
    storage = Storage(tmp_path)
    storage.write_bytes("video_kept", "video.mp4", b"x")
    storage.write_bytes("video_orphan", "video.mp4", b"x")
    assert storage.sweep({"video_kept"}) == ["video_orphan"]
    assert storage.folder("video_kept").exists() and not storage.folder("video_orphan").exists()


def test_sprite_sheet_layout():
    import numpy as np

    from reelforge.service.storage import sprite_sheet
    frames = np.arange(5)[:, None, None, None] * np.ones((5, 4, 6, 3), np.uint8)  # (T, H, W, 3), frame index
    sheet = sprite_sheet(frames)
    assert sheet.shape == (2 * 4, 4 * 6, 3)
    assert sheet[0, 0, 0] == 0 and sheet[0, 6, 0] == 1 and sheet[4, 0, 0] == 4 and sheet[4, 6, 0] == 0
