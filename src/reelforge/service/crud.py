"""Data access for users and keys, videos, and the job queue's state changes. (Governance keeps its
own in accounts, publication, reports, policy, quotas and audit, each beside its rules.)

Job state changes are single conditional UPDATEs (`WHERE state = ... AND worker_id = ...`) so two
workers, a worker and a DELETE, or a worker and a restarted server can never both win: the loser
sees rowcount 0 and backs off. Each change updates the job and its video in one transaction.
"""
from __future__ import annotations

import secrets
import time

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from . import audit
from .catalog import RenderSeconds, RenderSize
from .db import ApiKey, Job, Usage, User, Video, WebSession
from .errors import unauthorized
from .rights import DEFAULT_ROLE, check_role
from .security import generate_key, hash_key, shown_prefix
from .workers.base import ACTIVE_STATES, VIDEO_STATUS, JobSpec, can_move

KEY_TOUCH_SECONDS = 60  # last_used_at is refreshed at most this often: no write per request


def now() -> int:
    return int(time.time())


def new_video_id() -> str:
    return "video_" + secrets.token_hex(24)


# Users and keys ---------------------------------------------------------------------------------

def get_or_create_user(session: Session, name: str, role: str | None = None, actor: str = "system") -> User:
    """The user called `name`, made with `role` (default creator) if new, or given `role` if named.
    Raises UnknownRole for a role not in the rights table."""
    if role is not None:
        check_role(role)
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        user = User(name=name, role=role or DEFAULT_ROLE, created_at=now())
        session.add(user)
        audit.record(session, actor, "user.created", name, role=user.role)
    elif role is not None and role != user.role:
        audit.record(session, actor, "user.role_changed", name, old=user.role, new=role)
        user.role = role
    session.flush()
    return user


def create_key(session: Session, user_name: str, role: str | None = None, actor: str = "system") -> tuple[ApiKey, str]:
    """A new key for the user (created if new); the plaintext is returned once and never stored."""
    user = get_or_create_user(session, user_name, role, actor)
    plaintext = generate_key()
    key = ApiKey(user_id=user.id, prefix=shown_prefix(plaintext), hash=hash_key(plaintext), created_at=now())
    session.add(key)
    session.flush()
    audit.record(session, actor, "key.created", user_name, key_id=key.id, prefix=key.prefix)
    session.commit()
    return key, plaintext


def list_keys(session: Session) -> list[tuple[ApiKey, User]]:
    return list(session.execute(select(ApiKey, User).join(User).order_by(ApiKey.id)).all())


def find_key(session: Session, key_ref: str) -> ApiKey | None:
    """A key by id (as `keys list` shows it), by its shown prefix, or by the whole key."""
    if key_ref.isdigit():
        return session.get(ApiKey, int(key_ref))
    return session.scalar(select(ApiKey).where(or_(ApiKey.hash == hash_key(key_ref), ApiKey.prefix == key_ref)))


def revoke_key(session: Session, key_ref: str, actor: str = "system") -> ApiKey | None:
    """Revoke by id, shown prefix or the whole key; None when there is no such key."""
    key = find_key(session, key_ref)
    if key is None:
        return None
    if key.revoked_at is None:
        key.revoked_at = now()
        audit.record(session, actor, "key.revoked", session.get(User, key.user_id).name, key_id=key.id,
                     prefix=key.prefix)
    session.commit()
    return key


def user_for_key(session: Session, plaintext: str) -> User | None:
    """The key's user, or None when the key is unknown or revoked."""
    row = session.execute(select(ApiKey, User).join(User).where(ApiKey.hash == hash_key(plaintext))).first()
    if row is None or row.ApiKey.revoked_at is not None:
        return None
    t = now()
    if (row.ApiKey.last_used_at or 0) < t - KEY_TOUCH_SECONDS:
        session.execute(update(ApiKey).where(ApiKey.id == row.ApiKey.id).values(last_used_at=t))
        session.commit()
    return row.User


# Videos -----------------------------------------------------------------------------------------

def create_video(session: Session, user: User, video_id: str, *, kind: str, model: str, prompt: str,
                 seconds: RenderSeconds, size: RenderSize, seed: int, spec: JobSpec,
                 remixed_from: str | None = None, source_video_id: str | None = None,
                 reported_seconds: str | None = None) -> Video:
    """The video and its job in one commit: once this returns, the job is never lost."""
    video = Video(id=video_id, user_id=user.id, status="queued", progress=0, created_at=now(), model=model,
                  prompt=prompt, seconds=reported_seconds or seconds.reported, size=size.reported,
                  remixed_from_video_id=remixed_from, kind=kind, source_video_id=source_video_id,
                  render_width=size.width, render_height=size.height, render_seconds=seconds.seconds, seed=seed)
    session.add(video)
    session.flush()  # the job's foreign key needs the video row first; this also takes the write lock
    _still_allowed(session, user)
    session.add(Job(id=video_id, state="queued", spec=spec.to_json(), created_at=time.time()))
    session.add(Usage(user_id=user.id, video_id=video_id, created_at=video.created_at, seconds=spec.seconds))
    session.commit()
    return video


def _still_allowed(session: Session, user: User) -> None:
    """Checked under the write lock: a suspension or a revocation that committed after this request
    was authenticated still stops it, so no job starts after the kill switch has answered."""
    suspended = session.scalar(select(User.suspended_at).where(User.id == user.id))
    live_key = session.scalar(select(ApiKey.id).where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None)).limit(1))
    if live_key is None:  # a browser's session is a credential too; the kill switch deletes them all
        live_key = session.scalar(select(WebSession.id).where(WebSession.user_id == user.id,
                                                              WebSession.expires_at > now()).limit(1))
    if suspended is not None or live_key is None:
        session.rollback()
        raise unauthorized(f"user {user.name!r} was suspended or lost their keys while this request ran")


def get_video(session: Session, user: User, video_id: str) -> Video | None:
    """Another user's video is reported as missing, not forbidden: ids do not leak."""
    return session.scalar(select(Video).where(Video.id == video_id, Video.user_id == user.id))


def specs(session: Session, video_ids: list[str]) -> dict[str, JobSpec]:
    """What made each video (seed, size, the engine's knobs), by video id."""
    rows = session.execute(select(Job.id, Job.spec).where(Job.id.in_(video_ids)))
    return {video_id: JobSpec.from_json(spec) for video_id, spec in rows}


def find_video(session: Session, video_id: str) -> Video | None:
    """Any user's video: for reviewers, admins and public links, never for an owner's routes."""
    return session.scalar(select(Video).where(Video.id == video_id))


def list_videos(session: Session, user: User, after_seq: int | None, limit: int,
                order: str) -> tuple[list[Video], bool]:
    query = select(Video).where(Video.user_id == user.id)
    if after_seq is not None:
        query = query.where(Video.seq < after_seq if order == "desc" else Video.seq > after_seq)
    query = query.order_by(Video.seq.desc() if order == "desc" else Video.seq.asc()).limit(limit + 1)
    rows = list(session.scalars(query))
    return rows[:limit], len(rows) > limit


def video_seq(session: Session, user: User, video_id: str) -> int | None:
    return session.scalar(select(Video.seq).where(Video.id == video_id, Video.user_id == user.id))


def active_count(session: Session, user: User) -> int:
    return session.scalar(select(func.count()).select_from(Video).where(
        Video.user_id == user.id, Video.status.in_(("queued", "in_progress")))) or 0


def cancel_video(session: Session, video: Video) -> bool:
    """Queued or running -> cancelled (the video reads failed, code `cancelled`); False if finished."""
    changed = _move(session, video.id, ACTIVE_STATES, "cancelled", worker_id=None,
                    error=("cancelled", "the video was cancelled before it completed"))
    session.refresh(video)
    return changed


def delete_video(session: Session, video: Video, actor: str = "system") -> None:
    """Deletes the video and its job; a worker still on it loses its next conditional update."""
    audit.record(session, actor, "video.deleted", video.id, status=video.status, publication=video.publication)
    session.delete(video)
    session.execute(Job.__table__.delete().where(Job.id == video.id))
    session.commit()


def cancel_active(session: Session, user_ids: list[int] | None) -> list[str]:
    """Every queued or running job of these users (None: of everyone) moves to cancelled, in the
    caller's transaction: a suspension and the end of its user's work commit together. Returns the
    ids, so an in-process queue can stop them at once; any other worker finds out at its next report."""
    assert all(can_move(s, "cancelled") for s in ACTIVE_STATES)
    query = update(Job).where(Job.state.in_(ACTIVE_STATES))
    if user_ids is not None:
        query = query.where(Job.id.in_(select(Video.id).where(Video.user_id.in_(user_ids))))
    # Only the jobs this UPDATE moved have their videos marked: one that finished meanwhile stays done.
    ids = list(session.scalars(query.values(state="cancelled", worker_id=None, lease_until=None)
                               .returning(Job.id)))
    for chunk in range(0, len(ids), 500):  # SQLite's limit on bound parameters
        session.execute(update(Video).where(Video.id.in_(ids[chunk:chunk + 500])).values(
            status=VIDEO_STATUS["cancelled"], completed_at=now(), error_code="cancelled",
            error_message="the video was cancelled: its user was suspended or their keys were revoked"))
    return ids


def expired_videos(session: Session, at: int) -> list[Video]:
    return list(session.scalars(select(Video).where(Video.expires_at.is_not(None), Video.expires_at <= at)))


def all_video_ids(session: Session) -> set[str]:
    return set(session.scalars(select(Video.id)))


# Jobs: the queue's state changes ------------------------------------------------------------------

def _move(session: Session, video_id: str, from_states: tuple[str, ...], to: str, worker_id: str | None,
          progress: int | None = None, error: tuple[str, str] | None = None, expires_at: int | None = None,
          lease_until: float | None = None, owned_by: str | None = None) -> bool:
    """One allowed transition of a job and its video, if the job is still in `from_states` (and owned by
    `owned_by` when given). Returns whether it happened."""
    assert all(can_move(s, to) for s in from_states), (from_states, to)
    where = [Job.id == video_id, Job.state.in_(from_states)]
    if owned_by is not None:
        where.append(Job.worker_id == owned_by)
    result = session.execute(update(Job).where(*where).values(state=to, worker_id=worker_id,
                                                              lease_until=lease_until))
    if result.rowcount == 0:
        session.rollback()
        return False
    values: dict = {"status": VIDEO_STATUS[to]}
    if progress is not None:
        values["progress"] = progress
    if to in ("done", "failed", "cancelled"):
        values["completed_at"] = now()
        values["expires_at"] = expires_at
    if error is not None:
        values["error_code"], values["error_message"] = error
    session.execute(update(Video).where(Video.id == video_id).values(**values))
    session.commit()
    return True


def fail_exhausted(session: Session, at: float, max_attempts: int) -> int:
    """Jobs whose lease ran out after `max_attempts` claims fail for good: a job that crashes its
    worker every time must not take the server down forever."""
    ids = list(session.scalars(select(Job.id).where(Job.state == "running", Job.lease_until < at,
                                                   Job.attempts >= max_attempts)))
    return sum(_move(session, i, ("running",), "failed", None,
                     error=("worker_lost", f"the job's worker stopped {max_attempts} times; giving up"))
               for i in ids)


def claim_job(session: Session, worker_id: str, lease_seconds: float) -> tuple[str, JobSpec] | None:
    """The oldest queued job, or a running one whose worker went silent, now owned by `worker_id`."""
    at = time.time()
    candidate = (select(Job.id).where(or_(Job.state == "queued", (Job.state == "running") & (Job.lease_until < at)))
                 .order_by(Job.created_at).limit(1).scalar_subquery())
    row = session.execute(update(Job).where(Job.id == candidate).values(
        state="running", worker_id=worker_id, lease_until=at + lease_seconds, attempts=Job.attempts + 1)
        .returning(Job.id, Job.spec)).first()
    if row is None:
        session.rollback()
        return None
    session.execute(update(Video).where(Video.id == row.id).values(status="in_progress", progress=0))
    session.commit()
    return row.id, JobSpec.from_json(row.spec)


def report_progress(session: Session, video_id: str, worker_id: str, progress: int, lease_seconds: float) -> bool:
    """Store progress and renew the lease; False when the job was cancelled, deleted or taken over."""
    result = session.execute(update(Job).where(Job.id == video_id, Job.state == "running",
                                               Job.worker_id == worker_id)
                             .values(lease_until=time.time() + lease_seconds))
    if result.rowcount == 0:
        session.rollback()
        return False
    session.execute(update(Video).where(Video.id == video_id).values(progress=progress))
    session.commit()
    return True


def complete_job(session: Session, video_id: str, worker_id: str, expires_at: int | None) -> bool:
    return _move(session, video_id, ("running",), "done", worker_id, progress=100, expires_at=expires_at,
                 owned_by=worker_id)


def fail_job(session: Session, video_id: str, worker_id: str, code: str, message: str) -> bool:
    return _move(session, video_id, ("running",), "failed", worker_id, error=(code, message), owned_by=worker_id)


def release_job(session: Session, video_id: str, worker_id: str) -> bool:
    """Back to the queue (shutdown): the next start runs it again from the beginning."""
    return _move(session, video_id, ("running",), "queued", None, progress=0, owned_by=worker_id)


def job_state(session: Session, video_id: str) -> tuple[str, str | None] | None:
    row = session.execute(select(Job.state, Job.worker_id).where(Job.id == video_id)).first()
    return None if row is None else (row.state, row.worker_id)


def running_jobs(session: Session) -> list[tuple[str, str | None]]:
    return list(session.execute(select(Job.id, Job.worker_id).where(Job.state == "running")).all())


def requeue_orphans(session: Session, is_dead) -> int:
    """Running jobs whose worker `is_dead(worker_id)` go back to the queue at once, without waiting
    for their lease to run out (a restart after kill -9 resumes immediately)."""
    return sum(_move(session, video_id, ("running",), "queued", None, progress=0, owned_by=worker_id)
               for video_id, worker_id in running_jobs(session) if worker_id and is_dead(worker_id))
