"""The studio's pages (GET): sign in, create, my videos, review queue, gallery, report forms and the
reports list, and the public share page. Each reads through the same modules as the JSON API."""
from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse

from .. import crud, publication, reports
from ..deps import CatalogDep, SessionDep, visible_video
from ..errors import ApiError
from ..rights import Right, can
from ..security import generate_token
from .templating import MaybeViewer, SignedIn, error_page, needs, page

router = APIRouter(include_in_schema=False)

SIGNIN_CSRF_COOKIE = "reelforge_signin"  # double-submit token: no session exists yet to hold one
ASPECTS = {"16:9": (16, 9), "9:16": (9, 16), "1:1": (1, 1)}
SIZES = ("native", "480", "720", "1080")  # "native": the model's own size of that aspect; else the short side
LIST_LIMIT = 100


@router.get("/")
def home(viewer: MaybeViewer):
    return RedirectResponse("/videos" if viewer else "/signin", status_code=303)


@router.get("/signin")
def signin_page(request: Request, viewer: MaybeViewer, next: str = "/videos", failed: bool = False):
    token = generate_token()
    response = page(request, "signin.html", viewer, status=401 if failed else 200, csrf=token,
                    next=safe_next(next), failed=failed)
    response.set_cookie(SIGNIN_CSRF_COOKIE, token, httponly=True, samesite="lax", path="/signin")
    return response


def safe_next(target: str) -> str:
    """Only a path on this server: `//evil.example` or `https://...` would send a user elsewhere."""
    return target if target.startswith("/") and not target.startswith("//") and "\\" not in target else "/videos"


@router.get("/create")
def create_page(request: Request, viewer: SignedIn, catalog: CatalogDep):
    return page(request, "create.html", viewer, **create_context(catalog))


def create_context(catalog, values: dict | None = None, error: str | None = None) -> dict:
    return {"values": values or {}, "error": error, "aspects": ASPECTS, "sizes": SIZES,
            "max_seconds": catalog.max_seconds(), "default_steps": catalog.config.steps,
            "default_guidance": catalog.config.guidance, "model": catalog.config.name,
            "turbo_model": catalog.turbo.name if catalog.turbo else None,
            "turbo_steps": catalog.turbo.steps if catalog.turbo else None}


@router.get("/videos")
def my_videos(request: Request, viewer: SignedIn, session: SessionDep, catalog: CatalogDep):
    videos, _ = crud.list_videos(session, viewer.user, None, LIST_LIMIT, "desc")
    return page(request, "videos.html", viewer, videos=videos, specs=crud.specs(session, [v.id for v in videos]),
                flags=publication.open_flags(session, [v.id for v in videos]), public=publication.PUBLIC,
                max_extend=catalog.max_seconds(extension=True))


@router.get("/review")
def review_page(request: Request, viewer: SignedIn, session: SessionDep):
    needs(viewer, Right.REVIEW)
    pending = publication.review_queue(session, "pending", LIST_LIMIT)
    public = [*publication.review_queue(session, "approved", LIST_LIMIT),
              *publication.review_queue(session, "published", LIST_LIMIT)]
    ids = [v.id for v, _ in pending + public]
    return page(request, "review.html", viewer, pending=pending, public=public,
                flags=publication.open_flags(session, ids), reports=_reports_by_video(session, ids))


def _reports_by_video(session, video_ids: list[str]) -> dict[str, list]:
    out: dict[str, list] = {}
    for report, name in reports.listing(session, None, None, 1000):
        if report.video_id in video_ids:
            out.setdefault(report.video_id, []).append((report, name))
    return out


@router.get("/gallery")
def gallery_page(request: Request, viewer: MaybeViewer, session: SessionDep):
    rows, _ = publication.gallery(session, LIST_LIMIT, None)
    return page(request, "gallery.html", viewer, rows=rows)


@router.get("/videos/{video_id}/report")
def report_form(video_id: str, request: Request, viewer: SignedIn, session: SessionDep):
    needs(viewer, Right.REPORT)
    try:
        video = visible_video(session, viewer.user, video_id)
    except ApiError as e:
        return error_page(request, viewer, e, back="/videos")
    return page(request, "report.html", viewer, video=video, categories=reports.CATEGORIES,
                severities=reports.SEVERITIES, values={}, error=None, own=video.user_id == viewer.user.id)


@router.get("/reports")
def reports_page(request: Request, viewer: SignedIn, session: SessionDep, status: str | None = None):
    needs(viewer, Right.REPORT)
    everyone = can(viewer.user, Right.EXPORT_REPORTS)
    status = status if status in reports.STATUSES else None
    rows = reports.listing(session, None if everyone else viewer.user, status, 500)
    return page(request, "reports.html", viewer, rows=rows, everyone=everyone, shown=status,
                statuses=reports.STATUSES, triage=reports.TRIAGE, may_triage=can(viewer.user, Right.TRIAGE))


def wants_html(request: Request) -> bool:
    """A browser navigating (Accept: text/html first); the SDK, curl and fetch() get JSON."""
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "application/json" not in accept.split(",")[0]


def share_page(request: Request, viewer, video, creator: str, content_url: str, report=None):
    """The public page of a shared video: a player, what the server knows of the file's origin, and
    what checking the file itself finds (the same report as POST /v1/provenance/check)."""
    provenance = f"Generated by ReelForge ({video.model}, seed {video.seed})."
    checks = []
    if report is not None:
        if report.manifest_valid:
            checks.append(f"Signed C2PA manifest: valid ({report.manifest_state}), made by {report.generator}, "
                          f"video {report.video_id}.")
        else:
            checks.append("Signed C2PA manifest: " + ("invalid." if report.manifest_present else "none."))
        if report.watermark_found:
            named = f", naming video {report.watermark_video_id}" if report.watermark_video_id else ""
            checks.append(f"Invisible watermark: found ({report.watermark_pilot_z:.1f} sigma){named}.")
        else:
            checks.append("Invisible watermark: not found.")
    return page(request, "share.html", viewer, video=video, creator=creator, content_url=content_url,
                provenance=provenance, checks=checks)
