"""The web studio: server-rendered pages for every role, served by `reelforge serve` at `/`.

Pages read and change state through the same modules as the JSON API (submit, crud, publication,
reports, accounts); the one script (static/studio.js) only streams progress from the API's
server-sent events with the session cookie. No build step and nothing from a CDN.
"""
from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.staticfiles import StaticFiles

from . import actions, admin, pages
from ..errors import ApiError
from .pages import wants_html
from .templating import SignInRequired, error_page, optional_viewer, sign_in_redirect

STATIC = Path(__file__).parent / "static"


def mount(app: FastAPI) -> None:
    """Add the studio to `app`, after the API's routes and error handlers."""
    json_error = app.exception_handlers[ApiError]

    async def api_error(request: Request, exc: ApiError):
        # A browser on a studio page sees a page; the API (/v1) always answers in OpenAI's JSON.
        if not request.url.path.startswith("/v1/") and wants_html(request):
            with request.app.state.sessions() as session:
                return error_page(request, optional_viewer(request, session), exc)
        return await json_error(request, exc)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(SignInRequired, sign_in_redirect)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(pages.router)
    app.include_router(actions.router)
    app.include_router(admin.router)
