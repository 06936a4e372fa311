"""The embedded JobQueue: a few threads inside the server, each with its own pipeline, claiming rows
from the jobs table.

Because the queue *is* the table, crash recovery needs no journal: at start, jobs left `running` by
a dead process on this host are put back at once; anywhere else a silent worker's lease runs out
and the job is claimed again. Generation runs in these threads, never on the event loop; torch
releases the GIL in its kernels, so status requests stay fast while a video renders.
"""
from __future__ import annotations

import logging
import os
import secrets
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

from sqlalchemy.orm import sessionmaker

from ...flow.samplers import Cancelled
from ...media.provenance import load_identity
from ...pipeline import CheckpointError, InputError, Pipeline
from .. import crud
from ..config import Settings
from ..storage import Storage
from .base import JobQueue, JobSpec
from .render import render, render_files

log = logging.getLogger("reelforge.worker")

POLL_SECONDS = 0.5  # a missed wake-up costs at most this much latency
REPORT_SECONDS = 0.2  # progress is written at most this often (and on every whole-step change after)
CHECK_SECONDS = 1.0  # unchanged progress is still reported this often: a cancel from another process
# (a suspension through the CLI) is noticed within a second even during one long step
HOUSEKEEPING_SECONDS = 60.0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def warm_up(pipe: Pipeline) -> None:
    """One throwaway one-step clip, encoded: the first real job would otherwise pay for lazy
    imports and codec set-up, some of which hold the GIL and stall every request for ~200 ms."""
    with tempfile.TemporaryDirectory() as tmp:
        video = pipe("warm up", seconds=1.0, steps=1, seed=0)
        storage = Storage(Path(tmp))
        render_files(storage, "warm_up", video, load_identity(Path(tmp)))


class EmbeddedWorkerPool(JobQueue):
    def __init__(self, settings: Settings, sessions: sessionmaker, storage: Storage,
                 load_pipeline: Callable[[], Pipeline]):
        self.settings, self.sessions, self.storage, self.load_pipeline = settings, sessions, storage, load_pipeline
        self.identity = load_identity(settings.home)  # made now, not racing in several workers
        self.host, self.boot = socket.gethostname(), secrets.token_hex(4)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._cancels: dict[str, threading.Event] = {}
        self._threads: list[threading.Thread] = []

    # JobQueue ------------------------------------------------------------------------------------

    def start(self) -> None:
        if self.settings.torch_threads:
            import torch
            torch.set_num_threads(self.settings.torch_threads)
        with self.sessions() as session:
            requeued = crud.requeue_orphans(session, self._is_dead)
            orphans = self.storage.sweep(crud.all_video_ids(session))
        if requeued or orphans:
            log.info("recovered %d interrupted jobs, removed %d orphaned folders", requeued, len(orphans))
        for index in range(self.settings.workers):
            thread = threading.Thread(target=self._run, args=(index,), name=f"reelforge-worker-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._wake.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def wake(self) -> None:
        self._wake.set()

    def cancel(self, video_id: str) -> None:
        event = self._cancels.get(video_id)
        if event is not None:
            event.set()

    # Workers -------------------------------------------------------------------------------------

    def _worker_id(self, index: int) -> str:
        return f"embedded:{self.host}:{os.getpid()}:{self.boot}:{index}"

    def _is_dead(self, worker_id: str) -> bool:
        """Whether the worker that holds a job is certainly gone (otherwise its lease decides)."""
        parts = worker_id.split(":")
        if len(parts) != 5 or parts[0] != "embedded" or parts[1] != self.host or not parts[2].isdigit():
            return False
        pid = int(parts[2])
        if parts[3] == self.boot:
            return False
        return pid == os.getpid() or not _pid_alive(pid)

    def _run(self, index: int) -> None:
        worker_id = self._worker_id(index)
        try:
            pipe, load_error = self.load_pipeline(), None
        except (CheckpointError, OSError) as e:
            pipe, load_error = None, str(e)
            log.error("worker %d cannot load the model: %s", index, e)
        if pipe is not None:
            try:
                warm_up(pipe)
            except Exception:  # only a missed optimisation; the first job will report real trouble
                log.warning("worker %d: warm-up failed", index, exc_info=True)
        next_housekeeping = 0.0
        while not self._stopping.is_set():
            try:
                if index == 0 and time.monotonic() >= next_housekeeping:
                    next_housekeeping = time.monotonic() + HOUSEKEEPING_SECONDS
                    self._housekeeping()
                self._take_one(pipe, load_error, worker_id)
            except Exception:  # a database hiccup must not end the thread: its lease protects the job
                log.exception("worker %d: error outside a job; retrying", index)
                self._stopping.wait(POLL_SECONDS)

    def _take_one(self, pipe: Pipeline | None, load_error: str | None, worker_id: str) -> None:
        with self.sessions() as session:
            crud.fail_exhausted(session, time.time(), self.settings.max_attempts)
            claimed = crud.claim_job(session, worker_id, self.settings.lease_seconds)
        if claimed is None:
            self._wake.wait(POLL_SECONDS)
            self._wake.clear()
            return
        video_id, spec = claimed
        if pipe is None:
            with self.sessions() as session:
                crud.fail_job(session, video_id, worker_id, "model_unavailable", load_error)
            return
        self._execute(pipe, worker_id, video_id, spec)

    def _execute(self, pipe: Pipeline, worker_id: str, video_id: str, spec: JobSpec) -> None:
        cancel = self._cancels.setdefault(video_id, threading.Event())
        last = {"time": 0.0, "progress": 0}

        def report(progress: int) -> bool:
            if cancel.is_set() or self._stopping.is_set():
                return False
            at = time.monotonic()
            quiet = at - last["time"]
            if quiet < REPORT_SECONDS or (progress == last["progress"] and quiet < CHECK_SECONDS):
                return True
            with self.sessions() as session:
                held = crud.report_progress(session, video_id, worker_id, progress, self.settings.lease_seconds)
            last.update(time=at, progress=progress)
            if not held:
                cancel.set()
            return held

        try:
            render(pipe, self.storage, video_id, spec, report, self.identity)
            outcome = ("done", None, None)
        except Cancelled:
            outcome = ("stopped", None, None)
        except InputError as e:
            outcome = ("failed", "invalid_request", str(e))
        except CheckpointError as e:  # e.g. a turbo job on a worker whose model has no student
            outcome = ("failed", "model_unavailable", str(e))
        except Exception as e:  # a bug or a broken file must fail this job, not the worker
            log.exception("job %s failed", video_id)
            outcome = ("failed", "generation_failed", f"{type(e).__name__}: {e}")
        finally:
            self._cancels.pop(video_id, None)
        self._settle(worker_id, video_id, *outcome)

    def _settle(self, worker_id: str, video_id: str, outcome: str, code: str | None, message: str | None) -> None:
        with self.sessions() as session:
            if outcome == "done":
                held = crud.complete_job(session, video_id, worker_id, self._expires_at())
            elif outcome == "failed":
                held = crud.fail_job(session, video_id, worker_id, code, message)
            elif self._stopping.is_set():
                held = crud.release_job(session, video_id, worker_id)
            else:
                held = False
            if not held:
                state = crud.job_state(session, video_id)
                # Gone (deleted) or cancelled: its files must not outlive it. Taken over by another
                # worker after a lost lease: the files are that worker's now.
                if state is None or state[0] == "cancelled":
                    self.storage.delete(video_id)

    def _expires_at(self) -> int | None:
        hours = self.settings.retention_hours
        return crud.now() + hours * 3600 if hours else None

    def _housekeeping(self) -> None:
        """Delete videos whose retention ran out: the row first, then its files (a crash in between
        leaves an orphaned folder, which the next start sweeps away)."""
        with self.sessions() as session:
            for video in crud.expired_videos(session, crud.now()):
                crud.delete_video(session, video, actor="system:retention")
                self.storage.delete(video.id)
