"""The API documentation page, served with Swagger UI's files from the `swagger-ui-bundle` package.

FastAPI's default page loads Swagger UI from a CDN, which an offline installation cannot reach (the page
stays blank), so the same page is built here on assets the service serves itself.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

DOCS_URL = "/docs"
ASSETS_URL = "/docs-assets"


def add_offline_docs(app: FastAPI, openapi_url: str) -> None:
    app.mount(ASSETS_URL, StaticFiles(directory=swagger_ui_path), name="docs-assets")

    @app.get(DOCS_URL, include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} API",
            swagger_js_url=f"{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS_URL}/favicon-32x32.png",
        )
