"""The app as a whole: front page, OpenAPI, cross-origin isolation headers, the request body limit."""

from __future__ import annotations

import re
from collections.abc import Iterator

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.app import create_app
from server.models import Image, ImageBlob, Role
from server.settings import Settings
from tests.factories import image_bytes, make_project


def test_root_redirects_to_the_web_app_docs_stay_and_openapi_lists_the_api(client: TestClient) -> None:
    root = client.get("/", follow_redirects=False)
    assert root.status_code in (302, 307) and root.headers["location"] == "/app/"
    assert client.get("/app/").status_code == 200
    assert client.get("/docs").status_code == 200
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert "/api/v1/projects/{project_id}/queue/next" in paths


def test_docs_page_loads_its_assets_from_the_service_not_a_cdn(client: TestClient) -> None:
    page = client.get("/docs").text
    sources = re.findall(r'(?:src|href)="([^"]+)"', page) + re.findall(r"url: '([^']+)'", page)
    assert sources, page
    for source in sources:
        assert source.startswith("/"), f"the docs page loads {source} from another host"
        assert client.get(source).status_code == 200, source
    assert client.get("/redoc").status_code == 404


def test_isolation_headers_on_every_answer(client: TestClient) -> None:
    for answer in (client.get("/docs"), client.get("/api/v1/projects"), client.get("/nowhere")):
        assert answer.headers["cross-origin-opener-policy"] == "same-origin"
        assert answer.headers["cross-origin-embedder-policy"] == "require-corp"


def upload_parts(count: int) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", (f"{n}.png", image_bytes(64, 64, seed=n), "image/png")) for n in range(count)]


def test_oversized_request_is_413_by_content_length(settings: Settings, headers: dict, session: Session) -> None:
    project = make_project(session)
    limited = settings.model_copy(update={"max_request_bytes": 20_000})
    with TestClient(create_app(limited)) as client:
        answer = client.post(f"/api/v1/projects/{project.id}/images", files=upload_parts(3), headers=headers[Role.lead])
    assert answer.status_code == 413
    assert "limit of 20000 bytes" in answer.json()["detail"]
    assert session.scalar(select(func.count()).select_from(Image)) == 0


def test_oversized_streamed_request_is_413(settings: Settings, headers: dict, session: Session) -> None:
    project = make_project(session)
    limited = settings.model_copy(update={"max_request_bytes": 20_000})

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit must hold while the body streams in
        for _ in range(40):
            yield b"x" * 1000

    with TestClient(create_app(limited)) as client:
        answer = client.post(
            f"/api/v1/projects/{project.id}/images",
            content=chunks(),
            headers={**headers[Role.lead], "Content-Type": "multipart/form-data; boundary=abc"},
        )
        small = client.post("/api/v1/projects", json={"name": "ok", "classes": []}, headers=headers[Role.lead])
    assert answer.status_code == 413, answer.text
    assert "larger than the limit" in answer.json()["detail"]
    assert small.status_code == 422  # a body under the limit goes through to validation
    assert session.scalar(select(func.count()).select_from(ImageBlob)) == 0
