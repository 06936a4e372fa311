"""`/v1/admin`: users, roles, keys, suspensions and the kill switch, the audit log and the prompt
policy. Admins only (each route names its right); the work is in accounts, audit and policy."""
from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from .. import accounts, audit, crud, export, policy
from ..deps import Admin, Auditor, FieldsDep, PolicyEditor, QueueDep, SessionDep, StorageDep
from ..governance_schemas import (KeyCreated, KeyPublic, PolicyPublic, PolicyRuleCreate, PolicyRulePublic,
                                  RevokeAll, RevokeAllResult, Suspension, SuspensionResult, UserCreate, UserGroup,
                                  UserPublic, UserUpdate)
from ..db import User
from ..errors import ApiError, invalid_param
from ..uploads import validate

router = APIRouter(prefix="/v1/admin", tags=["admin"])


def _stop(queue, storage, video_ids: list[str]) -> None:
    """Jobs already cancelled in the database: stop this process's workers on them now."""
    for video_id in video_ids:
        queue.cancel(video_id)
        storage.delete(video_id)


@router.get("/users")
def list_users(user: Admin, session: SessionDep):
    return {"object": "list", "data": [UserPublic.of(u) for u in accounts.list_users(session)]}


@router.post("/users", response_model=UserPublic)
def create_user(user: Admin, session: SessionDep, fields: FieldsDep):
    request = validate(UserCreate, fields)
    return UserPublic.of(accounts.create_user(session, request.name, request.role, user.name, request.publisher))


@router.get("/users/{name}", response_model=UserPublic)
def get_user(name: str, user: Admin, session: SessionDep):
    return UserPublic.of(accounts.get_user(session, name))


@router.patch("/users/{name}", response_model=UserPublic)
def update_user(name: str, user: Admin, session: SessionDep, fields: FieldsDep):
    request = validate(UserUpdate, fields)
    limits = {f: getattr(request, f) for f in accounts.LIMITS if f in request.model_fields_set}
    change = accounts.UserChange(role=request.role, publisher=request.publisher, limits=limits)
    return UserPublic.of(accounts.update_user(session, name, change, user.name))


@router.post("/users/{name}/keys", response_model=KeyCreated)
def create_key(name: str, user: Admin, session: SessionDep):
    key, plaintext = accounts.create_key(session, name, user.name)
    return KeyCreated(**KeyPublic.of(key, name).model_dump(), key=plaintext)


@router.get("/keys")
def list_keys(user: Admin, session: SessionDep):
    return {"object": "list", "data": [KeyPublic.of(k, u.name) for k, u in crud.list_keys(session)]}


@router.delete("/keys/{key_id}", response_model=KeyPublic)
def revoke_key(key_id: int, user: Admin, session: SessionDep):
    key = crud.revoke_key(session, str(key_id), actor=user.name)
    if key is None:
        raise ApiError(404, f"no key {key_id}; GET /v1/admin/keys lists them", param="key_id", code="not_found")
    return KeyPublic.of(key, session.get(User, key.user_id).name)


@router.post("/keys/revoke-all", response_model=RevokeAllResult)
def revoke_all_keys(user: Admin, session: SessionDep, queue: QueueDep, storage: StorageDep, fields: FieldsDep):
    """The kill switch: every key, the caller's included, stops working; every job is cancelled."""
    request = validate(RevokeAll, fields)
    revoked, cancelled = accounts.revoke_all_keys(session, user.name, request.reason)
    _stop(queue, storage, cancelled)
    return RevokeAllResult(revoked_keys=revoked, cancelled_videos=cancelled)


def _group(session, request: UserGroup) -> list[User]:
    if (request.users is None) == (request.role is None):
        raise invalid_param("users", "give either users (a list of names) or role, not both and not neither")
    if request.users is not None:
        return accounts.users_named(session, request.users)
    return accounts.users_with_role(session, request.role)


@router.post("/suspend", response_model=SuspensionResult)
def suspend(user: Admin, session: SessionDep, queue: QueueDep, storage: StorageDep, fields: FieldsDep):
    request = validate(Suspension, fields)
    users = _group(session, request)
    if any(u.id == user.id for u in users):
        raise ApiError(409, f"user {user.name!r} may not suspend themselves; use the CLI on the server",
                       param="users", code="self_suspension")
    cancelled = accounts.suspend(session, users, user.name, request.reason)
    _stop(queue, storage, cancelled)
    return SuspensionResult(users=[u.name for u in users], cancelled_videos=cancelled)


@router.post("/unsuspend", response_model=SuspensionResult)
def unsuspend(user: Admin, session: SessionDep, fields: FieldsDep):
    request = validate(UserGroup, fields)
    users = _group(session, request)
    accounts.unsuspend(session, users, user.name)
    return SuspensionResult(users=[u.name for u in users], cancelled_videos=[])


@router.get("/audit")
def export_audit(user: Auditor, session: SessionDep, format: Annotated[Literal["json", "csv"], Query()] = "json",
                 after_id: Annotated[int, Query(ge=0)] = 0, action: Annotated[str | None, Query(max_length=64)] = None):
    rows = audit.entries(session, after_id, action)
    if format == "csv":
        return Response(export.to_csv(rows, audit.COLUMNS), media_type="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="audit.csv"'})
    return {"object": "list", "data": rows}


@router.get("/policy", response_model=PolicyPublic)
def get_policy(user: PolicyEditor, session: SessionDep):
    return PolicyPublic(rules=[PolicyRulePublic.of(r) for r in policy.rules(session)])


@router.post("/policy/rules", response_model=PolicyRulePublic)
def add_policy_rule(user: PolicyEditor, session: SessionDep, fields: FieldsDep):
    request = validate(PolicyRuleCreate, fields)
    return PolicyRulePublic.of(policy.add_rule(session, request.kind, request.value, user.name, request.note))


@router.delete("/policy/rules/{rule_id}", response_model=PolicyRulePublic)
def remove_policy_rule(rule_id: int, user: PolicyEditor, session: SessionDep):
    return PolicyRulePublic.of(policy.remove_rule(session, rule_id, user.name))
