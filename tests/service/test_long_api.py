"""Lengths past the model's window through the official SDK: made window by window, delivered whole."""
from __future__ import annotations

import pytest
from openai.types import Video

from reelforge.media.decode import read_video

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")


def test_twelve_and_twenty_second_videos_are_rendered_in_full(live, tmp_path):
    client = live.client(live.key("longer"))
    video = client.videos.create_and_poll(prompt="a red ball rolls right", seconds="12", poll_interval_ms=50)
    assert video.status == "completed" and video.seconds == "12", video.error
    client.videos.download_content(video.id).write_to_file(tmp_path / "twelve.mp4")
    frames, fps, _ = read_video(tmp_path / "twelve.mp4")
    assert len(frames) / fps == pytest.approx(12, abs=0.2)
    # An extension longer than one window (OpenAI allows 20 s): several windows in a row.
    extended = client.post("/videos/extensions", cast_to=Video,
                           body={"video": {"id": video.id}, "prompt": "it keeps rolling", "seconds": "16"})
    extended = client.videos.poll(extended.id, poll_interval_ms=50)
    assert extended.status == "completed" and extended.seconds == "28", extended.error
    client.videos.download_content(extended.id).write_to_file(tmp_path / "longer.mp4")
    frames, fps, _ = read_video(tmp_path / "longer.mp4")
    assert len(frames) / fps == pytest.approx(28, abs=0.3)


def test_lengths_past_twenty_seconds_are_refused(live):
    import httpx
    response = httpx.post(f"{live.url}/v1/videos", headers={"Authorization": f"Bearer {live.key('longer')}"},
                          json={"prompt": "a red ball", "seconds": "25"})
    assert response.status_code == 400 and response.json()["error"]["param"] == "seconds"
