"""The studio's form posts: sign in and out, create, and what a card or the review queue offers.

Every post but sign-in carries the session's CSRF token; each calls the module the JSON API calls,
then redirects (303) back to the page, so a reload never posts twice. A user's mistake is a page
with the API's message and status, never a traceback.
"""
from __future__ import annotations

import math
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse

from .. import crud, logins, policy, publication, reports, submit
from ..catalog import Catalog
from ..deps import (VIDEO_ID, CatalogDep, QueueDep, SessionDep, SettingsDep, StorageDep, owned_video, visible_video)
from ..errors import ApiError, forbidden, invalid_param, not_found
from ..governance_schemas import ReportCreate
from ..quotas import check_start
from ..rights import Right
from ..schemas import VideoCreate, VideoExtend, VideoRemix
from ..uploads import Body, read_body, validate
from .pages import ASPECTS, SIGNIN_CSRF_COOKIE, create_context, safe_next
from .templating import SignedIn, check_csrf, error_page, needs, page

router = APIRouter(include_in_schema=False)
MAX_VARIATIONS = 8


async def form_body(request: Request) -> Body:
    return await read_body(request, request.app.state.settings.max_upload_bytes)


FormDep = Annotated[Body, Depends(form_body)]


def back(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def _text(fields: dict, name: str) -> str:
    value = fields.get(name, "")
    return value.strip() if isinstance(value, str) else ""


@router.post("/signin")
def sign_in(request: Request, form: FormDep, session: SessionDep):
    fields = form.fields
    expected = request.cookies.get(SIGNIN_CSRF_COOKIE, "")
    if not expected or not secrets.compare_digest(str(fields.get("csrf", "")), expected):
        return error_page(request, None, forbidden("this sign-in form has expired; reload it and try again"),
                          back="/signin")
    target = safe_next(str(fields.get("next") or "/videos"))
    found = logins.sign_in(session, _text(fields, "username"), str(fields.get("password", "")))
    if found is None:
        return RedirectResponse(f"/signin?failed=1&next={target}", status_code=303)
    response = back(target)
    response.set_cookie(logins.COOKIE, found[1], max_age=logins.SESSION_SECONDS, httponly=True, samesite="lax",
                        secure=request.url.scheme == "https", path="/")
    response.delete_cookie(SIGNIN_CSRF_COOKIE, path="/signin")
    return response


@router.post("/signout")
def sign_out(request: Request, viewer: SignedIn, form: FormDep, session: SessionDep):
    check_csrf(viewer, form.fields)
    logins.sign_out(session, request.cookies[logins.COOKIE])
    response = back("/signin")
    response.delete_cookie(logins.COOKIE, path="/")
    return response


# Create -----------------------------------------------------------------------------------------

def _number(fields: dict, name: str, kind=int):
    raw = _text(fields, name)
    if not raw:
        return None
    try:
        value = kind(raw)
    except ValueError:
        raise invalid_param(name, f"{name} {raw!r} is not a number") from None
    if kind is float and not math.isfinite(value):
        raise invalid_param(name, f"{name} {raw!r} is not a number")
    return value


def size_for(catalog: Catalog, aspect: str, size: str) -> str:
    """The WxH the form's aspect ratio and size mean: the model's own bucket nearest that aspect for
    "native", else that short side, the long one rounded to a multiple of 16."""
    if aspect not in ASPECTS:
        raise invalid_param("aspect", f"unknown aspect ratio {aspect!r}; allowed: {', '.join(ASPECTS)}")
    w, h = ASPECTS[aspect]
    if size == "native":
        width, height = min(catalog.config.buckets, key=lambda b: abs(math.log((b[0] / b[1]) / (w / h))))
        return f"{width}x{height}"
    if not size.isdigit():
        raise invalid_param("size", f"unknown size {size!r}")
    short = int(size)
    long = round(short * max(w, h) / min(w, h) / 16) * 16
    return f"{long}x{short}" if w >= h else f"{short}x{long}"


def create_request(catalog: Catalog, fields: dict) -> tuple[VideoCreate, int]:
    """The API's VideoCreate from the form's text fields, and the number of variations."""
    variations = _number(fields, "variations") or 1
    if not 1 <= variations <= MAX_VARIATIONS:
        raise invalid_param("variations", f"variations must be 1 to {MAX_VARIATIONS}, got {variations}")
    data = {"prompt": str(fields.get("prompt", "")),
            "seconds": _text(fields, "seconds") or None,
            "size": size_for(catalog, _text(fields, "aspect") or "16:9", _text(fields, "size") or "native"),
            "seed": _number(fields, "seed"), "steps": _number(fields, "steps"),
            "guidance": _number(fields, "guidance", float),
            "negative_prompt": str(fields.get("negative_prompt", "")).strip() or None,
            "turbo": fields.get("turbo") in ("on", "true", "1")}
    request = validate(VideoCreate, {k: v for k, v in data.items() if v is not None})
    if request.seed is None:
        request = request.model_copy(update={"seed": submit.new_seed()})
    if request.seed + variations > 2**31:
        raise invalid_param("seed", f"seed {request.seed} leaves no room for {variations} variations")
    return request, variations


@router.post("/create")
def create(request: Request, viewer: SignedIn, form: FormDep, session: SessionDep, storage: StorageDep,
           queue: QueueDep, catalog: CatalogDep, settings: SettingsDep):
    check_csrf(viewer, form.fields)
    files = {name: data for name, data in form.files.items() if data}  # an empty file input sends b""
    try:
        needs(viewer, Right.GENERATE)
        video_request, variations = create_request(catalog, form.fields)
        policy.enforce(session, viewer.user, video_request.prompt)
        for i in range(variations):  # variations: seed, seed+1, ... so each can be made again alone
            check_start(session, viewer.user, settings)
            one = video_request.model_copy(update={"seed": video_request.seed + i})
            submit.create(session, storage, queue, catalog, settings, viewer.user, one, Body({}, files))
    except ApiError as e:
        return page(request, "create.html", viewer, status=e.status,
                    **create_context(catalog, {k: v for k, v in form.fields.items() if isinstance(v, str)},
                                     e.message))
    return back("/videos")


# A card's buttons ---------------------------------------------------------------------------------

def _own(session, viewer, video_id: str):
    return owned_video(session, viewer.user, video_id)


@router.post("/videos/{video_id}/delete")
def delete(video_id: str, request: Request, viewer: SignedIn, form: FormDep, session: SessionDep,
           storage: StorageDep, queue: QueueDep):
    check_csrf(viewer, form.fields)
    try:
        needs(viewer, Right.GENERATE)
        video = _own(session, viewer, video_id)
        crud.delete_video(session, video, actor=viewer.user.name)
    except ApiError as e:
        return error_page(request, viewer, e, back="/videos")
    queue.cancel(video.id)
    storage.delete(video.id)
    return back("/videos")


@router.post("/videos/{video_id}/remix")
def remix(video_id: str, request: Request, viewer: SignedIn, form: FormDep, session: SessionDep,
          storage: StorageDep, queue: QueueDep, settings: SettingsDep):
    check_csrf(viewer, form.fields)
    try:
        needs(viewer, Right.GENERATE)
        check_start(session, viewer.user, settings)
        source = _own(session, viewer, video_id)
        body = validate(VideoRemix, {"prompt": str(form.fields.get("prompt", ""))})
        policy.enforce(session, viewer.user, body.prompt)
        submit.remix(session, storage, queue, settings, viewer.user, source, body.prompt)
    except ApiError as e:
        return error_page(request, viewer, e, back="/videos")
    return back("/videos")


@router.post("/videos/{video_id}/extend")
def extend(video_id: str, request: Request, viewer: SignedIn, form: FormDep, session: SessionDep,
           storage: StorageDep, queue: QueueDep, catalog: CatalogDep, settings: SettingsDep):
    check_csrf(viewer, form.fields)
    try:
        needs(viewer, Right.GENERATE)
        check_start(session, viewer.user, settings)
        body = validate(VideoExtend, {"prompt": str(form.fields.get("prompt", "")),
                                      "seconds": _text(form.fields, "seconds"), "video": {"id": video_id}})
        policy.enforce(session, viewer.user, body.prompt)
        submit.extend(session, storage, queue, catalog, settings, viewer.user, body, Body({}, {}))
    except ApiError as e:
        return error_page(request, viewer, e, back="/videos")
    return back("/videos")


@router.post("/videos/{video_id}/publication")
def publication_action(video_id: str, request: Request, viewer: SignedIn, form: FormDep, session: SessionDep):
    """submit (for review), publish (publisher right) or retract, as the API's POST/DELETE publication."""
    check_csrf(viewer, form.fields)
    action = _text(form.fields, "action")
    try:
        if action not in publication.OWNER_ACTIONS:
            raise invalid_param("action", f"unknown action {action!r}; allowed: submit, publish, retract")
        publication.apply(session, _own(session, viewer, video_id), action, viewer.user)
    except ApiError as e:
        return error_page(request, viewer, e, back="/videos")
    return back("/videos")


# Review and reports -----------------------------------------------------------------------------

@router.post("/review/{video_id}/{decision}")
def review_decision(video_id: str, decision: str, request: Request, viewer: SignedIn, form: FormDep,
                    session: SessionDep):
    check_csrf(viewer, form.fields)
    try:
        if decision not in publication.REVIEW_ACTIONS:
            raise ApiError(404, f"unknown decision {decision!r}; allowed: {', '.join(publication.REVIEW_ACTIONS)}",
                           code="not_found")
        video = crud.find_video(session, video_id) if VIDEO_ID.fullmatch(video_id) else None
        if video is None:
            raise not_found(video_id)
        reason = _text(form.fields, "reason") or None
        publication.apply(session, video, decision, viewer.user, reason)
    except ApiError as e:
        return error_page(request, viewer, e, back="/review")
    return back("/review")


@router.post("/videos/{video_id}/report")
def file_report(video_id: str, request: Request, viewer: SignedIn, form: FormDep, session: SessionDep):
    check_csrf(viewer, form.fields)
    fields = {k: v for k, v in form.fields.items() if isinstance(v, str) and v.strip()}
    try:
        needs(viewer, Right.REPORT)
        video = visible_video(session, viewer.user, video_id)
        data = {**fields, "video_id": video.id}
        for name in ("start_seconds", "end_seconds"):
            if name in data:
                data[name] = _number(data, name, float)
        body = validate(ReportCreate, data)
        reports.file(session, viewer.user, video, category=body.category, severity=body.severity,
                     description=body.description, start_seconds=body.start_seconds, end_seconds=body.end_seconds)
    except ApiError as e:
        return error_page(request, viewer, e, back=f"/videos/{video_id}/report" if VIDEO_ID.fullmatch(video_id)
                          else "/videos")
    return back("/reports")


@router.post("/reports/{report_id}/triage")
def triage(report_id: int, request: Request, viewer: SignedIn, form: FormDep, session: SessionDep):
    check_csrf(viewer, form.fields)
    try:
        needs(viewer, Right.TRIAGE)
        reports.triage(session, report_id, _text(form.fields, "status"), viewer.user,
                       _text(form.fields, "note") or None)
    except ApiError as e:
        return error_page(request, viewer, e, back="/reports")
    return back("/reports")
