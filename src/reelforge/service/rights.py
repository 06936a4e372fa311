"""Roles and what each may do: one plain table, checked in one place (`deps.requires`).

A user has one role; the `publisher` flag adds the right to publish without review to a role that
makes videos. Rights are checked on every request from the user row read with the key, so a change
of role takes effect on the next call.
"""
from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only a type here: `reelforge --help` must not import the database layer
    from .db import User


class Right(str, Enum):
    READ = "read"  # list and fetch one's own videos, the models
    GENERATE = "generate"  # create, remix, extend, edit; cancel and delete one's own
    SUBMIT = "submit"  # ask for one's video to be published
    PUBLISH = "publish"  # publish one's video without review (the per-user publisher right)
    REPORT = "report"  # file red-team reports on videos one can see
    REVIEW = "review"  # the review queue: approve, reject, withdraw; blocked prompts
    EXPORT_REPORTS = "export_reports"  # all reports, credits and their export
    TRIAGE = "triage"  # accept, reject or close reports
    MANAGE = "manage"  # users, roles, keys, suspensions, the kill switch
    POLICY = "policy"  # change the prompt policy
    AUDIT = "audit"  # read and export the audit log


_CREATE = frozenset({Right.READ, Right.GENERATE, Right.REPORT})
ROLE_RIGHTS: dict[str, frozenset[Right]] = {
    "admin": frozenset(Right),
    "reviewer": frozenset({Right.READ, Right.REPORT, Right.REVIEW, Right.EXPORT_REPORTS}),
    "creator": _CREATE | {Right.SUBMIT},
    "tester": _CREATE,  # the red team: makes videos to break the model, does not publish them
    "viewer": frozenset({Right.READ}),
}
ROLES = tuple(ROLE_RIGHTS)
DEFAULT_ROLE = "creator"

# What each right lets one do, for 403 messages that say what was refused.
DOING = {Right.READ: "read videos", Right.GENERATE: "generate or change videos",
         Right.SUBMIT: "submit videos for publication", Right.PUBLISH: "publish without review",
         Right.REPORT: "file reports", Right.REVIEW: "review videos", Right.EXPORT_REPORTS: "read all reports",
         Right.TRIAGE: "triage reports", Right.MANAGE: "manage users and keys",
         Right.POLICY: "change the prompt policy", Right.AUDIT: "read the audit log"}


class UnknownRole(ValueError):
    def __init__(self, role: str):
        super().__init__(f"unknown role {role!r}; allowed: {', '.join(ROLES)}")


def check_role(role: str) -> str:
    if role not in ROLE_RIGHTS:
        raise UnknownRole(role)
    return role


def rights_of(user: User) -> frozenset[Right]:
    rights = ROLE_RIGHTS.get(user.role, frozenset())  # a role removed from the table grants nothing
    if user.publisher and Right.GENERATE in rights:
        rights |= {Right.PUBLISH}
    return rights


def can(user: User, right: Right) -> bool:
    return right in rights_of(user)
