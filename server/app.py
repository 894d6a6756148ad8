"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse

from server.docs_page import add_offline_docs
from server.frontend import FRONTEND_URL, add_frontend
from server.middleware import BodySizeLimitMiddleware, CrossOriginIsolationMiddleware
from server.routers import ALL_ROUTERS
from server.schema import check_schema
from server.settings import Settings, get_settings
from server.store.errors import StoreError

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

    app.add_exception_handler(StoreError, _store_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(CrossOriginIsolationMiddleware)
    return app


def _store_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StoreError)
    return JSONResponse({"detail": error.detail, **error.extra}, status_code=error.status_code)


def _describe(error: dict) -> str:  # type: ignore[type-arg]
    if error.get("type") == "json_invalid":
        reason = (error.get("ctx") or {}).get("error", "not valid JSON")
        return f"malformed JSON in the request body: {reason}"
    where = ".".join(str(part) for part in error.get("loc", ()))
    return f"{where}: {error.get('msg', 'invalid')}"


def _validation_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    errors = list(error.errors())
    malformed = any(e.get("type") == "json_invalid" for e in errors)
    # Only type, place and message go back: an error's `input` may be bytes or a whole upload.
    listed = [{"type": e.get("type"), "loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in errors]
    return JSONResponse(
        {"detail": "; ".join(_describe(e) for e in errors), "errors": jsonable_encoder(listed)},
        status_code=400 if malformed else 422,
    )
