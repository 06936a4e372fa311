"""The FastAPI application: wiring only. Settings -> database, file store, catalog, job queue.

Every error leaves in OpenAI's shape; a user's mistake is a 4xx that names the bad value, and an
unexpected failure is a 500 with no traceback in the body.
"""
from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..pipeline import Pipeline
from . import web
from .catalog import Catalog
from .config import Settings
from .db import make_engine, make_sessionmaker
from .errors import ApiError
from .routes import admin, models, provenance, publication, reports, reviews, videos
from .storage import Storage
from .workers.base import JobQueue
from .workers.embedded import EmbeddedWorkerPool

log = logging.getLogger("reelforge.server")


def _error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
    return _error_response(exc)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    error = exc.errors()[0]
    loc = [str(p) for p in error.get("loc", ()) if p not in ("query", "path", "body", "header")]
    param = ".".join(loc) or None
    return _error_response(ApiError(400, f"invalid {param}: {error.get('msg')}", param=param, code="invalid_value"))


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code)
    return _error_response(ApiError(exc.status_code, f"{exc.detail}: {request.method} {request.url.path}",
                                    code=code, headers=dict(exc.headers or {})))


async def _server_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return _error_response(ApiError(500, "the server failed to handle this request", type="server_error",
                                    code="server_error"))


def create_app(settings: Settings | None = None, load_pipeline: Callable[[], Pipeline] | None = None,
               queue: JobQueue | None = None) -> FastAPI:
    """The server for `settings` (default: from the environment). Raises CheckpointError or
    ConfigError before anything binds if the model cannot be served.

    `load_pipeline` builds one worker's pipeline (default: from the model directory); `queue`
    replaces the embedded worker pool with another JobQueue."""
    settings = settings or Settings.from_env()
    catalog = Catalog.load(settings)
    engine = make_engine(settings.database_path)
    sessions = make_sessionmaker(engine)
    storage = Storage(settings.files_dir)
    if queue is None:
        load = load_pipeline or (lambda: Pipeline.from_pretrained(catalog.model_dir))
        queue = EmbeddedWorkerPool(settings, sessions, storage, load)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        queue.start()
        try:
            yield
        finally:
            queue.stop()
            engine.dispose()

    app = FastAPI(title="ReelForge", version="0.1.0", lifespan=lifespan,
                  description="Text-to-video with OpenAI's Videos API: point the openai SDK's base_url here.")
    app.state.settings, app.state.sessions, app.state.storage = settings, sessions, storage
    app.state.catalog, app.state.queue = catalog, queue
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _server_error)
    app.include_router(publication.router)  # before videos: /v1/videos/{id}/publication is more specific
    app.include_router(videos.router)
    app.include_router(models.router)
    app.include_router(reviews.router)
    app.include_router(reports.router)
    app.include_router(admin.router)
    app.include_router(provenance.router)
    web.mount(app)  # the studio's pages at / (last: the API's routes and error handlers come first)

    @app.get("/health", include_in_schema=False)
    def health():
        return {"status": "ok", "model": catalog.config.name}

    return app
