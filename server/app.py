"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from server.docs_page import add_offline_docs
from server.errors import add_error_handlers, document_errors
from server.frontend import FRONTEND_URL, add_frontend
from server.middleware import BodySizeLimitMiddleware, CrossOriginIsolationMiddleware
from server.routers import ALL_ROUTERS
from server.schema import check_schema
from server.settings import Settings, get_settings

API_PREFIX = "/api/v1"


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API for `settings` (default: the environment's). Raises SchemaNotCurrentError on an unmigrated
    or outdated database, naming `marslabel migrate`."""
    settings = settings or get_settings()
    check_schema(settings.resolved_database_url)

    app = FastAPI(
        title="marslabel",
        version="0.1.0",
        summary="Semi-automatic labeling of Mars terrain images",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # served by add_offline_docs, without a CDN
        redoc_url=None,
    )
    app.state.settings = settings
    add_offline_docs(app, f"{API_PREFIX}/openapi.json")
    for router in ALL_ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
    add_frontend(app, settings)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        # The web app is the front page; the API's documentation stays at /docs (server.docs_page.DOCS_URL).
        return RedirectResponse(f"{FRONTEND_URL}/")

    add_error_handlers(app)
    document_errors(app, API_PREFIX)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(CrossOriginIsolationMiddleware)
    return app
