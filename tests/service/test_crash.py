"""kill -9 the server in the middle of a generation, start it again: every job completes and no row
or file is lost. The server runs as `python -m reelforge.cli serve` in a subprocess."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import httpx
import pytest

from reelforge.media.decode import read_video
from service_helpers import free_port, wait_for

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")


@pytest.fixture
def slow_model_dir(tmp_path, tiny_model_dir):
    """The tiny weights at a bigger size and more steps: a job lasts seconds, long enough to kill."""
    path = tmp_path / "slow_model"
    path.mkdir()
    for item in tiny_model_dir.iterdir():
        if item.name != "pipeline.json":
            (path / item.name).symlink_to(item)
    (path / "pipeline.json").write_text(json.dumps({"name": "tiny", "steps": 120, "guidance": 2.0,
                                                    "buckets": [[256, 256]]}))
    return path


def start(home, model_dir, port, log) -> subprocess.Popen:
    env = {**os.environ, "REELFORGE_HOME": str(home), "REELFORGE_MODEL_DIR": str(model_dir),
           "REELFORGE_TORCH_THREADS": "1", "REELFORGE_POLL_AFTER_MS": "50"}
    process = subprocess.Popen([sys.executable, "-m", "reelforge.cli", "serve", "--port", str(port)], env=env,
                               stdout=log, stderr=subprocess.STDOUT)

    def healthy():
        assert process.poll() is None, "the server exited; see serve.log"
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    wait_for(healthy, timeout=90, interval=0.1)
    return process


def test_kill_9_mid_job_then_restart_completes_everything(tmp_path, slow_model_dir):
    import openai

    from reelforge.service import crud
    from reelforge.service.config import Settings
    from reelforge.service.db import make_engine, make_sessionmaker

    home, port = tmp_path / "home", free_port()
    settings = Settings(home=home)
    with make_sessionmaker(make_engine(settings.database_path))() as session:
        key = crud.create_key(session, "crash")[1]
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=key, max_retries=0)
    log = open(tmp_path / "serve.log", "ab")

    server = start(home, slow_model_dir, port, log)
    try:
        finished = client.videos.create_and_poll(prompt="a red ball", seconds="0.5", poll_interval_ms=50)
        assert finished.status == "completed"
        running = client.videos.create(prompt="a blue square", seconds="2")
        queued = client.videos.create(prompt="a green star", seconds="0.5")
        wait_for(lambda: client.videos.retrieve(running.id).progress >= 10, timeout=60)
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait()
    with make_sessionmaker(make_engine(settings.database_path))() as session:
        assert crud.job_state(session, running.id)[0] == "running"  # what the dead worker left
        assert crud.job_state(session, queued.id)[0] == "queued"

    server = start(home, slow_model_dir, port, log)
    try:
        for video in (running, queued):
            done = client.videos.poll(video.id, poll_interval_ms=50)
            assert done.status == "completed", done.error
        videos = client.videos.list(order="asc").data
        assert [v.id for v in videos] == [finished.id, running.id, queued.id]
        assert all(v.status == "completed" and v.progress == 100 for v in videos)
        for video in videos:
            path = tmp_path / f"{video.id}.mp4"
            client.videos.download_content(video.id).write_to_file(path)
            frames, fps, _ = read_video(path)
            assert frames.shape[1:] == (256, 256, 3) and len(frames) == round(float(video.seconds) * 8)
        folders = sorted(p.name for p in (home / "files" / "videos").iterdir())
        assert folders == sorted(v.id for v in videos)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
