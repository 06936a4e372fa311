"""Rendering pages: one Jinja2 environment with autoescape on (a prompt is text, never markup), the
signed-in viewer, and the CSRF check every form post goes through."""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from ..db import User, WebSession
from ..deps import SessionDep, browser_session
from ..errors import ApiError, forbidden
from ..rights import Right, can

TEMPLATES = Path(__file__).parent / "templates"
env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True,
                                                                                   default_for_string=True))


class SignInRequired(Exception):
    def __init__(self, path: str):
        self.path = path


async def sign_in_redirect(request: Request, exc: SignInRequired) -> RedirectResponse:
    return RedirectResponse(f"/signin?next={quote(exc.path)}", status_code=303)


@dataclass
class Viewer:
    """Who is looking at a page: their user row and their session (whose CSRF token forms carry)."""
    user: User
    web: WebSession

    def can(self, right: str) -> bool:
        return can(self.user, Right(right))


def optional_viewer(request: Request, session: SessionDep) -> Viewer | None:
    found = browser_session(session, request)
    if found is None or found[1].suspended_at is not None:
        return None
    return Viewer(user=found[1], web=found[0])


def required_viewer(request: Request, viewer: Annotated[Viewer | None, Depends(optional_viewer)]) -> Viewer:
    if viewer is None:
        raise SignInRequired(request.url.path)
    return viewer


MaybeViewer = Annotated[Viewer | None, Depends(optional_viewer)]
SignedIn = Annotated[Viewer, Depends(required_viewer)]


def needs(viewer: Viewer, right: Right) -> None:
    if not can(viewer.user, right):
        raise forbidden(f"user {viewer.user.name!r} has the role {viewer.user.role!r}, which may not see this page")


def check_csrf(viewer: Viewer, fields: dict) -> None:
    """A form post carries the session's token: another site's form cannot (SameSite=Lax already
    keeps the cookie off cross-site posts; this holds even where a browser ignores SameSite)."""
    token = fields.pop("csrf", "")
    if not isinstance(token, str) or not secrets.compare_digest(token, viewer.web.csrf):
        raise forbidden("this form has expired or did not come from ReelForge; reload the page and try again")


def page(request: Request, name: str, viewer: Viewer | None, status: int = 200, **context) -> HTMLResponse:
    html = env.get_template(name).render(request=request, viewer=viewer, path=request.url.path, **context)
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def error_page(request: Request, viewer: Viewer | None, error: ApiError, back: str = "/") -> HTMLResponse:
    """A user's mistake as a page that says what was wrong, with the same status as the API's."""
    return page(request, "error.html", viewer, status=error.status, message=error.message, back=back)
