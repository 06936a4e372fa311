"""The deployment's prompt policy: terms and regular expressions that a prompt must not match.

Rules live in the database under REELFORGE_HOME, so the API and the CLI edit the same policy and a
change applies to the next request of every server process. A blocked prompt is refused with
`moderation_blocked` before its request is parsed further (no file decoded, no job queued) and is
kept for reviewers. Terms match whole words, case-insensitively, with any whitespace between their
words; patterns are Python regexes searched case-insensitively.
"""
from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit, crud
from .db import BlockedPrompt, PolicyRule, User
from .errors import ApiError, invalid_param

KINDS = ("term", "pattern")
MAX_VALUE_CHARS = 500
MAX_NOTE_CHARS = 2000


def rule_not_found(rule_id: int) -> ApiError:
    return ApiError(404, f"no policy rule {rule_id}; list them with GET /v1/admin/policy or `reelforge policy list`",
                    param="rule_id", code="not_found")


def _compile(kind: str, value: str) -> re.Pattern:
    if kind == "term":
        # \b only holds next to word characters; a term like "c++" is bounded by non-word edges instead.
        left = r"\b" if re.match(r"\w", value) else r"(?<!\S)"
        right = r"\b" if re.search(r"\w$", value) else r"(?!\S)"
        words = r"\s+".join(map(re.escape, value.split()))  # "red  ball" must not slip past "red ball"
        return re.compile(left + words + right, re.IGNORECASE)
    return re.compile(value, re.IGNORECASE)


def check_rule(kind: str, value: str, note: str | None = None) -> None:
    """400 naming the field for a rule that cannot be used."""
    if kind not in KINDS:
        raise invalid_param("kind", f"unknown rule kind {kind!r}; allowed: {', '.join(KINDS)}")
    if not isinstance(value, str) or not value.strip():
        raise invalid_param("value", "value is empty; give a term or a regular expression")
    if len(value) > MAX_VALUE_CHARS:
        raise invalid_param("value", f"value has {len(value)} characters; at most {MAX_VALUE_CHARS} are allowed")
    if note is not None and len(note) > MAX_NOTE_CHARS:
        raise invalid_param("note", f"note has {len(note)} characters; at most {MAX_NOTE_CHARS} are allowed")
    if kind == "pattern":
        try:
            re.compile(value)
        except re.error as e:
            raise invalid_param("value", f"value {value!r} is not a valid regular expression: {e}") from None


def rules(session: Session) -> list[PolicyRule]:
    return list(session.scalars(select(PolicyRule).order_by(PolicyRule.id)))


def add_rule(session: Session, kind: str, value: str, actor: str, note: str | None = None) -> PolicyRule:
    check_rule(kind, value, note)
    value = value.strip() if kind == "term" else value
    rule = PolicyRule(kind=kind, value=value, note=note, created_by=actor, created_at=crud.now())
    session.add(rule)
    session.flush()
    audit.record(session, actor, "policy.rule_added", f"rule {rule.id}", kind=kind, value=value, note=note)
    session.commit()
    return rule


def remove_rule(session: Session, rule_id: int, actor: str) -> PolicyRule:
    rule = session.get(PolicyRule, rule_id)
    if rule is None:
        raise rule_not_found(rule_id)
    audit.record(session, actor, "policy.rule_removed", f"rule {rule.id}", kind=rule.kind, value=rule.value)
    session.delete(rule)
    session.commit()
    return rule


def first_match(session: Session, prompt: str) -> PolicyRule | None:
    for rule in rules(session):
        if _compile(rule.kind, rule.value).search(prompt):
            return rule
    return None


def enforce(session: Session, user: User, prompt: str) -> None:
    """Refuse a prompt that matches the policy: the attempt is stored for reviewers, then a 400
    `moderation_blocked`. The message does not quote the rule, so it cannot be probed rule by rule."""
    rule = first_match(session, prompt)
    if rule is None:
        return
    session.add(BlockedPrompt(user_id=user.id, prompt=prompt, rule=f"{rule.kind}: {rule.value}", created_at=crud.now()))
    session.commit()
    raise ApiError(400, "the prompt was blocked by this deployment's content policy; the attempt was logged "
                   "for reviewers", param="prompt", code="moderation_blocked")


def blocked(session: Session, limit: int = 100) -> list[tuple[BlockedPrompt, str]]:
    """The newest blocked attempts with their user's name."""
    return list(session.execute(select(BlockedPrompt, User.name).join(User, User.id == BlockedPrompt.user_id)
                                .order_by(BlockedPrompt.id.desc()).limit(limit)).all())
