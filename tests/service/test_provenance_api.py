"""Every video the service renders is signed and watermarked, and anyone can check a file through
`POST /v1/provenance/check` without a key."""
from __future__ import annotations

from service_helpers import Api, add_user, expect_error, make_video


def check(url: str, data: bytes, name: str = "clip.mp4"):
    return Api(url).post("/v1/provenance/check", files={"file": (name, data, "video/mp4")})


def test_a_served_video_checks_out_and_names_itself(governed):
    creator = add_user(governed.admin, "prov_creator", "creator")
    video_id = make_video(creator)
    content = creator.call("GET", f"/v1/videos/{video_id}/content")
    assert content.status_code == 200
    report = check(governed.url, content.content)
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["verified"] and body["manifest_valid"] and body["manifest_state"] == "Trusted"
    assert body["video_id"] == video_id and body["deployment_id"] == body["this_deployment"]
    assert body["watermark_found"]
    assert body["video_ids"] == [video_id]


def test_a_tampered_video_fails_with_reasons(governed):
    creator = add_user(governed.admin, "prov_tamper", "creator")
    data = bytearray(creator.call("GET", f"/v1/videos/{make_video(creator)}/content").content)
    data[data.index(b"mdat") + 64] ^= 0xFF
    body = check(governed.url, bytes(data)).json()
    assert body["manifest_present"] and not body["manifest_valid"] and body["manifest_problems"]


def test_bad_uploads_are_400_and_the_server_stays_up(governed):
    expect_error(check(governed.url, b"definitely not a video"), 400, code="invalid_file", param="file")
    expect_error(Api(governed.url).post("/v1/provenance/check", json={"file": "x"}), 400)
    expect_error(Api(governed.url).post("/v1/provenance/check", files={"other": ("a", b"x")}), 400,
                 code="unknown_parameter", param="other")
    assert Api(governed.url).get("/health").status_code == 200


def test_public_share_plays_the_visibly_labelled_copy(governed, tmp_path):
    import httpx
    import numpy as np

    from reelforge.media.decode import read_video

    publisher = add_user(governed.admin, "prov_publisher", "creator", publisher=True)
    video_id = make_video(publisher)
    decision = publisher.ok("POST", f"/v1/videos/{video_id}/publication", json={"action": "publish"})
    share = httpx.get(decision["share_url"]).json()
    public = httpx.get(share["content_url"])
    private = publisher.call("GET", f"/v1/videos/{video_id}/content")
    (tmp_path / "public.mp4").write_bytes(public.content)
    (tmp_path / "private.mp4").write_bytes(private.content)
    a = read_video(tmp_path / "public.mp4")[0].astype(int)
    b = read_video(tmp_path / "private.mp4")[0].astype(int)
    changed = np.abs(a - b).max(axis=(0, 3)) > 40  # (H, W): where the label is
    ys, xs = np.nonzero(changed)
    assert len(ys) and ys.min() >= a.shape[1] // 2 and xs.min() >= a.shape[2] // 4  # the bottom-right corner only
    assert check(governed.url, public.content).json()["verified"]
