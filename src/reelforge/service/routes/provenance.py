"""`POST /v1/provenance/check`: upload a file, learn whether ReelForge made it.

Open to anyone, without a key: checking where a video came from must not need an account here.
The check itself runs in a worker thread (decoding and the watermark search take a second)."""
from __future__ import annotations

import tempfile
from pathlib import Path

from fastapi import APIRouter
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from ...media import watermark
from ...media.provenance import ProvenanceError, load_identity, verify
from ..db import Video
from ..deps import BodyDep, SessionDep, SettingsDep
from ..errors import invalid_param

router = APIRouter(prefix="/v1/provenance", tags=["provenance"])


@router.post("/check")
async def check(body: BodyDep, session: SessionDep, settings: SettingsDep):
    if set(body.files) != {"file"} or body.fields:
        unknown = sorted((set(body.files) | set(body.fields)) - {"file"})
        if unknown:
            raise invalid_param(unknown[0], f"unknown parameter {unknown[0]!r}; send one file as 'file'",
                                code="unknown_parameter")
        raise invalid_param("file", "send the video or image to check as a multipart file named 'file'",
                            code="missing_required_parameter")
    identity = load_identity(settings.home)
    video_ids = session.scalars(select(Video.id)).all()  # candidates for a payload too worn to read blind
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "upload"
        path.write_bytes(body.files["file"])
        try:
            report = await run_in_threadpool(verify, path, identity.trust_pem, identity.deployment_id, video_ids)
        except ProvenanceError as e:
            raise invalid_param("file", str(e).replace(repr(str(path)), "the upload"), code="invalid_file") from None
    return {"object": "provenance.check", **report.to_dict(), "this_deployment": identity.deployment_id,
            "video_ids": _videos_named(report, identity.deployment_id, video_ids)}


def _videos_named(report, deployment_id: str, video_ids: list[str]) -> list[str]:
    """Videos of this deployment the file names: by its manifest, else by its watermark's payload
    read blind, else by the one of our videos the worn payload matches."""
    if report.manifest_valid and report.deployment_id == deployment_id and report.video_id:
        return [report.video_id] if report.video_id in video_ids else []
    if report.watermark_payload_ok and report.watermark_deployment_tag == f"{watermark.tag(deployment_id, 16):04x}":
        return [i for i in video_ids if f"{watermark.tag(i, 32):08x}" == report.watermark_video_tag]
    return [report.watermark_video_id] if report.watermark_video_id else []

