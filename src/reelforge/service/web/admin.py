"""The studio's admin page: users and roles, passwords, keys, suspensions, the kill switch (with a
typed confirmation), the audit log and usage. Admins only; the work is in accounts and logins."""
from __future__ import annotations

from fastapi import APIRouter, Request

from .. import accounts, audit, crud, logins
from ..deps import QueueDep, SessionDep, StorageDep
from ..errors import ApiError, invalid_param
from ..quotas import DAY, usage_by_user
from ..rights import ROLES, Right, can
from .actions import FormDep, _text, back
from .templating import SignedIn, check_csrf, error_page, needs, page

router = APIRouter(prefix="/admin", include_in_schema=False)
KILL_CONFIRMATION = "SUSPEND ALL"
AUDIT_ROWS = 100


def _stop(queue, storage, video_ids: list[str]) -> None:
    for video_id in video_ids:
        queue.cancel(video_id)
        storage.delete(video_id)


@router.get("")
def admin_page(request: Request, viewer: SignedIn, session: SessionDep):
    needs(viewer, Right.MANAGE)
    return render(request, viewer, session)


def render(request: Request, viewer, session, new_key: tuple[str, str] | None = None, status: int = 200):
    entries = audit.entries(session)[-AUDIT_ROWS:][::-1] if can(viewer.user, Right.AUDIT) else []
    return page(request, "admin.html", viewer, status=status, users=accounts.list_users(session),
                keys=crud.list_keys(session), roles=ROLES, audit=entries, new_key=new_key,
                usage=usage_by_user(session, crud.now() - DAY), confirmation=KILL_CONFIRMATION)


def _admin_post(request: Request, viewer, form) -> None:
    check_csrf(viewer, form.fields)
    needs(viewer, Right.MANAGE)


@router.post("/users")
def create_user(request: Request, viewer: SignedIn, form: FormDep, session: SessionDep):
    _admin_post(request, viewer, form)
    f = form.fields
    try:
        user = accounts.create_user(session, _text(f, "name"), _text(f, "role"), viewer.user.name,
                                    f.get("publisher") == "on")
        if str(f.get("password", "")):
            logins.set_password(session, user.name, str(f["password"]), viewer.user.name)
    except ApiError as e:
        return error_page(request, viewer, e, back="/admin")
    return back("/admin")


@router.post("/users/{name}")
def update_user(name: str, request: Request, viewer: SignedIn, form: FormDep, session: SessionDep):
    _admin_post(request, viewer, form)
    change = accounts.UserChange(role=_text(form.fields, "role") or None,
                                 publisher=form.fields.get("publisher") == "on")
    try:
        accounts.update_user(session, name, change, viewer.user.name)
    except ApiError as e:
        return error_page(request, viewer, e, back="/admin")
    return back("/admin")


@router.post("/users/{name}/password")
def set_password(name: str, request: Request, viewer: SignedIn, form: FormDep, session: SessionDep):
    _admin_post(request, viewer, form)
    try:
        logins.set_password(session, name, str(form.fields.get("password", "")), viewer.user.name)
    except ApiError as e:
        return error_page(request, viewer, e, back="/admin")
    return back("/admin")


@router.post("/users/{name}/suspension")
def suspension(name: str, request: Request, viewer: SignedIn, form: FormDep, session: SessionDep,
               queue: QueueDep, storage: StorageDep):
    _admin_post(request, viewer, form)
    try:
        users = accounts.users_named(session, [name])
        if _text(form.fields, "action") == "unsuspend":
            accounts.unsuspend(session, users, viewer.user.name)
        elif users[0].id == viewer.user.id:
            raise ApiError(409, f"user {name!r} may not suspend themselves; use the CLI on the server",
                           code="self_suspension")
        else:
            _stop(queue, storage, accounts.suspend(session, users, viewer.user.name,
                                                   _text(form.fields, "reason") or None))
    except ApiError as e:
        return error_page(request, viewer, e, back="/admin")
    return back("/admin")


@router.post("/users/{name}/keys")
def create_key(name: str, request: Request, viewer: SignedIn, form: FormDep, session: SessionDep):
    _admin_post(request, viewer, form)
    try:
        _, plaintext = accounts.create_key(session, name, viewer.user.name)
    except ApiError as e:
        return error_page(request, viewer, e, back="/admin")
    return render(request, viewer, session, new_key=(name, plaintext))  # shown once, never stored


@router.post("/keys/{key_id}/revoke")
def revoke_key(key_id: int, request: Request, viewer: SignedIn, form: FormDep, session: SessionDep):
    _admin_post(request, viewer, form)
    if crud.revoke_key(session, str(key_id), actor=viewer.user.name) is None:
        return error_page(request, viewer, ApiError(404, f"no key {key_id}", code="not_found"), back="/admin")
    return back("/admin")


@router.post("/kill-switch")
def kill_switch(request: Request, viewer: SignedIn, form: FormDep, session: SessionDep, queue: QueueDep,
                storage: StorageDep):
    """Every key and every browser session (this one too) stops working; every job is cancelled."""
    _admin_post(request, viewer, form)
    try:
        if _text(form.fields, "confirm") != KILL_CONFIRMATION:
            raise invalid_param("confirm", f"type {KILL_CONFIRMATION} to confirm; nothing was changed")
        _, cancelled = accounts.revoke_all_keys(session, viewer.user.name, _text(form.fields, "reason") or None)
    except ApiError as e:
        return error_page(request, viewer, e, back="/admin")
    _stop(queue, storage, cancelled)
    return back("/signin")
