"""One error model for every 4xx and 5xx answer, the handlers that render it, and the OpenAPI document's
declaration of it: every operation lists each error status it can return, with this model.

Body: `{"detail": "<what is wrong, in words>", "errors": [{"type", "loc", "msg"}, ...]}`. `errors` names each
invalid field (422, 400 for a malformed body, 404 for an id in the path that is not one); it is empty for the
other statuses. A few answers add fields beside these two (a 409 for a busy round names `round_id` and `job_id`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from server.store.errors import StoreError

log = logging.getLogger(__name__)


class ErrorItem(BaseModel):
    type: str = Field(description="machine-readable kind, e.g. `less_than_equal`, `missing`, `string_too_long`")
    loc: list[str | int] = Field(description="where: `body`, `query`, `path` or `form`, then the field's path")
    msg: str = Field(description="what is wrong with that field")


class ErrorBody(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": True})

    detail: str = Field(description="what is wrong, in words")
    errors: list[ErrorItem] = Field(
        default_factory=list,
        description="one entry per invalid field (400, 422; 404 for a path id); empty for other statuses",
    )


STATUS_DESCRIPTIONS: dict[int, str] = {
    400: "Malformed request: the body is not valid JSON or not a readable multipart form",
    401: "Missing, malformed, invalid or revoked bearer token",
    403: "The caller's role may not do this",
    404: "A named resource (project, image, job, ...) does not exist, or an id in the path is not an id",
    409: "Conflicts with the current state; nothing was changed",
    413: "The request body or an uploaded file is larger than the configured limit",
    422: "A parameter or body field is invalid; `errors` names each one",
    501: "Not available in this deployment",
    503: "A service this needs (the job broker, the SAM model files) is unavailable; retry later",
}


NOT_MODIFIED: dict[int | str, dict[str, Any]] = {304: {"description": "If-None-Match named the current ETag"}}


def error_responses(*statuses: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: the statuses it can return beyond those every operation declares (those
    are added to the document by `document_errors`). `descriptions` override by `s409="..."`."""
    return {
        status: {"model": ErrorBody, "description": descriptions.get(f"s{status}", STATUS_DESCRIPTIONS[status])}
        for status in statuses
    }


def _body(detail: str, errors: Sequence[Mapping[str, Any]] = (), **extra: Any) -> dict[str, Any]:
    return {"detail": detail, "errors": jsonable_encoder(list(errors)), **jsonable_encoder(extra)}


def error_response(status: int, detail: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(_body(detail), status_code=status, headers=dict(headers) if headers else None)


def _allowed_methods(request: Request) -> list[str]:
    """Every method the OpenAPI document gives the request's path. Starlette's own 405 names only the methods of
    the first route whose path matched, and a path served by two routes (GET and POST /projects) is two routes."""
    app = request.app
    table: list[tuple[re.Pattern[str], list[str]]] | None = getattr(app.state, "allowed_methods", None)
    if table is None:
        table = [
            (re.compile("^" + re.sub(r"\\{[^/]+?\\}", "[^/]+", re.escape(path)) + "$"), [m.upper() for m in ops])
            for path, ops in app.openapi().get("paths", {}).items()
        ]
        app.state.allowed_methods = table
    path = request.url.path
    allowed = {method for pattern, methods in table if pattern.match(path) for method in methods}
    return sorted(allowed | {"HEAD"} if "GET" in allowed else allowed)  # Starlette answers HEAD wherever GET


def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    if error.status_code in (204, 304):  # no body allowed
        return Response(status_code=error.status_code, headers=error.headers)
    detail = error.detail if isinstance(error.detail, str) else str(error.detail)
    headers = dict(error.headers or {})
    allowed = _allowed_methods(request) if error.status_code == 405 else []
    if allowed:  # a path of the document; elsewhere (the web app's files) Starlette's Allow stands
        headers["Allow"] = ", ".join(allowed)
        detail = f"method {request.method} is not allowed here; this path serves {', '.join(allowed)}"
    return error_response(error.status_code, detail, headers)


def _store_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StoreError)
    return JSONResponse(_body(error.detail, **error.extra), status_code=error.status_code)


def _where(loc: Iterable[Any]) -> str:
    return ".".join(str(part) for part in loc)


def _describe(error: Mapping[str, Any]) -> str:
    if error.get("type") == "json_invalid":
        reason = (error.get("ctx") or {}).get("error", "not valid JSON")
        return f"malformed JSON in the request body: {reason}"
    return f"{_where(error.get('loc', ()))}: {error.get('msg', 'invalid')}"


def _validation_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    errors = list(error.errors())
    malformed = any(e.get("type") == "json_invalid" for e in errors)
    # Only type, place and message go back: an error's `input` may be bytes, a whole upload or 60 MB of text.
    listed = [{"type": str(e.get("type")), "loc": list(e.get("loc", ())), "msg": str(e.get("msg"))} for e in errors]
    in_path = [i for i, e in enumerate(errors) if tuple(e.get("loc", ()))[:1] == ("path",)]
    if in_path:
        # An id in the path that is not an id (`/images/abc`, `/images/0`) names no resource: a 404, as for an id
        # that names none, whatever the body holds; the path's fields are listed.
        detail = "; ".join(_describe(errors[i]) for i in in_path)
        return JSONResponse(_body(f"no such resource: {detail}", [listed[i] for i in in_path]), status_code=404)
    return JSONResponse(_body("; ".join(_describe(e) for e in errors), listed), status_code=400 if malformed else 422)


def _unexpected_error(_request: Request, error: Exception) -> JSONResponse:
    log.error("unhandled error", exc_info=error)
    return error_response(500, "internal error: the server failed to answer this request; it has been logged")


def add_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(StoreError, _store_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected_error)


def invalid_field(loc: Sequence[str | int], message: str, value: Any = None) -> RequestValidationError:
    """A 422 for one field that passed the schema but not a check that needs the settings or the database."""
    return RequestValidationError([{"type": "value_error", "loc": tuple(loc), "msg": message, "input": value}])


_ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}


def _error_entry(status: int) -> dict[str, Any]:
    return {"description": STATUS_DESCRIPTIONS[status], "content": {"application/json": {"schema": _ERROR_REF}}}


def _inferred_statuses(path: str, operation: Mapping[str, Any], api_prefix: str) -> list[int]:
    """The error statuses that follow from an operation's shape: signed in (401, 403), ids in the path (404),
    parameters or a body (422), a body (400 malformed, 413 too large)."""
    statuses: list[int] = []
    if path.startswith(api_prefix):
        statuses += [401, 403]
    parameters = operation.get("parameters", [])
    if any(p.get("in") == "path" for p in parameters):
        statuses.append(404)
    if "requestBody" in operation:
        statuses += [400, 413]
    if parameters or "requestBody" in operation:
        statuses.append(422)
    return statuses


def document_errors(app: FastAPI, api_prefix: str) -> None:
    """Replace app.openapi: the document FastAPI builds, with ErrorBody for every error status (FastAPI's own
    HTTPValidationError, which says `detail` is a list, is gone) and the inferred statuses of each operation."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            description=app.description,
            routes=app.routes,
        )
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for name, schema in (
            ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}").get("$defs", {}).items()
        ):
            schemas[name] = schema
        error_schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
        error_schema.pop("$defs", None)
        schemas["ErrorBody"] = error_schema
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        for path, operations in document.get("paths", {}).items():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                for status in _inferred_statuses(path, operation, api_prefix):
                    responses.setdefault(str(status), _error_entry(status))
                for status, response in responses.items():
                    if status.isdigit() and int(status) >= 400:
                        response["content"] = {"application/json": {"schema": _ERROR_REF}}
                        if status == "422":
                            response["description"] = STATUS_DESCRIPTIONS[422]
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
