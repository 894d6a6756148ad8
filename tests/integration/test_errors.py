"""One error model for every error answer, the OpenAPI document that declares it (and every datetime with its
time zone), the per-profile caps of a round, and rejection reasons in the user's terms."""

from __future__ import annotations

import io
import typing
import zlib
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from PIL import Image as PILImage
from pydantic import BaseModel
from sqlalchemy.orm import Session

from server import job_schemas, label_schemas, round_schemas, sam_schemas, schemas
from server.app import API_PREFIX, create_app
from server.db import session_scope
from server.errors import ErrorBody
from server.job_schemas import JobPublic
from server.models import Job, JobStatus, Project, Role
from server.schema import upgrade_to_head
from server.settings import Settings
from server.store.users import create_user
from tests.factories import image_bytes, make_project

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}


@pytest.fixture
def project(session: Session) -> Project:
    project = make_project(session)
    session.commit()
    return project


def _is_error_body(response: Any) -> bool:
    body = response.json()
    return response.headers["content-type"] == "application/json" and ErrorBody.model_validate(body) is not None


def test_every_error_status_answers_in_the_one_model(
    client: TestClient, app: FastAPI, headers: dict, project: Project
) -> None:
    lead = headers[Role.lead]
    answers = {
        400: client.post(
            f"{API_PREFIX}/projects", content=b"{not json", headers={**lead, "content-type": "application/json"}
        ),
        401: client.get(f"{API_PREFIX}/projects"),
        403: client.post(f"{API_PREFIX}/users", json={"name": "x", "role": "lead"}, headers=lead),
        404: client.get(f"{API_PREFIX}/projects/4242", headers=lead),
        409: client.post(
            f"{API_PREFIX}/projects", json={"name": project.name, "classes": project.classes}, headers=lead
        ),
        422: client.get(f"{API_PREFIX}/projects/{project.id}/images", params={"limit": 0}, headers=lead),
    }
    answers[404 + 1000] = client.get(f"{API_PREFIX}/jobs/77", headers=lead)  # an HTTPException of a route
    answers[404 + 2000] = client.get(f"{API_PREFIX}/no-such-route", headers=lead)  # the router's own 404
    answers[405] = client.delete(f"{API_PREFIX}/projects", headers=lead)
    for status, response in answers.items():
        assert response.status_code == status % 1000, (status, response.text)
        assert _is_error_body(response), (status, response.text)
        assert isinstance(response.json()["detail"], str) and response.json()["detail"]
        assert isinstance(response.json()["errors"], list)
    invalid = answers[422].json()
    assert invalid["errors"] == [
        {"type": "greater_than_equal", "loc": ["query", "limit"], "msg": "Input should be greater than or equal to 1"}
    ]
    assert invalid["detail"] == "query.limit: Input should be greater than or equal to 1"
    assert answers[401].json()["errors"] == [] and answers[401].headers["www-authenticate"] == "Bearer"


def test_a_body_over_the_request_limit_is_a_413_in_the_one_model(settings: Settings, headers: dict) -> None:
    with TestClient(create_app(settings.model_copy(update={"max_request_bytes": 1000}))) as client:
        answer = client.post(f"{API_PREFIX}/projects", content=b"x" * 2000, headers=headers[Role.lead])
    assert answer.status_code == 413 and _is_error_body(answer)
    assert "MARSLABEL_MAX_REQUEST_BYTES" in answer.json()["detail"] and answer.json()["errors"] == []


def test_an_http_error_raised_anywhere_is_rendered_in_the_one_model(settings: Settings) -> None:
    """What a route (or another module's enqueue) raises as HTTPException, with any detail, keeps the model."""
    app = create_app(settings)

    @app.get("/raises/{status}")
    def raises(status: int) -> None:
        raise HTTPException(status, {"broker": "down"} if status == 503 else "plain words")

    with TestClient(app) as client:
        for status in (409, 503):
            answer = client.get(f"/raises/{status}")
            assert answer.status_code == status and _is_error_body(answer)
            assert isinstance(answer.json()["detail"], str)


def test_the_document_declares_the_one_model_for_every_error_status(app: FastAPI) -> None:
    document = app.openapi()
    schemas_ = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas_ and "ValidationError" not in schemas_
    assert schemas_["ErrorBody"]["properties"]["detail"]["type"] == "string"
    declared: dict[str, set[str]] = {}
    for path, operations in document["paths"].items():
        if not path.startswith(API_PREFIX):
            continue
        for method, operation in operations.items():
            statuses = {s for s in operation["responses"] if s.isdigit() and int(s) >= 400}
            declared[f"{method.upper()} {path}"] = statuses
            assert {"401", "403"} <= statuses, (method, path)
            for status in statuses:
                content = operation["responses"][status]["content"]
                assert content == {"application/json": {"schema": ERROR_REF}}, (method, path, status)
            if "{" in path:
                assert "404" in statuses, (method, path)
            if operation.get("parameters") or operation.get("requestBody"):
                assert "422" in statuses, (method, path)
            if operation.get("requestBody"):
                assert {"400", "413"} <= statuses, (method, path)
    projects = f"{API_PREFIX}/projects"
    assert "409" in declared[f"POST {projects}"] and "409" in declared[f"PATCH {projects}/{{project_id}}"]
    assert "409" in declared[f"POST {projects}/{{project_id}}/queue/release"]
    assert {"409", "503"} <= declared[f"POST {projects}/{{project_id}}/rounds"]
    assert "503" in declared[f"POST {projects}/{{project_id}}/imports"]
    assert {"501", "503"} <= declared[f"POST {projects}/{{project_id}}/images/{{image_id}}/sam/predict"]


def _datetime_fields(model: type[BaseModel]) -> list[str]:
    found = []
    hints = typing.get_type_hints(model, include_extras=True)
    for name, hint in hints.items():
        if name.startswith("_") or name == "model_config":
            continue
        text = repr(hint)
        if "datetime" in text and "_as_utc" not in text:
            found.append(f"{model.__name__}.{name}")
    return found


def test_every_datetime_of_an_answer_carries_its_time_zone() -> None:
    models = [
        value
        for module in (schemas, job_schemas, round_schemas, label_schemas, sam_schemas)
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, BaseModel) and value is not BaseModel
    ]
    assert JobPublic in models and len(models) > 20
    assert [field for model in models for field in _datetime_fields(model)] == []
    naive = datetime(2026, 12, 4, 3, 42, 12, 914752)  # as SQLite hands it back
    job = Job(id=1, kind="import", status=JobStatus.done, progress=1.0, message="", params={}, cancel_requested=False,
              attempts=1, created_at=naive, started_at=naive, heartbeat_at=naive, finished_at=naive)  # fmt: skip
    dumped = JobPublic.model_validate(job).model_dump(mode="json")
    assert dumped["created_at"] == "2026-12-04T03:42:12.914752Z" and dumped["finished_at"].endswith("Z")


def test_job_timestamps_on_the_embedded_sqlite_default_have_a_time_zone(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    upgrade_to_head(settings.resolved_database_url)
    with session_scope(settings.resolved_database_url) as own:
        _user, token = create_user(own, "lead", Role.lead)
        job = Job(kind="import", status=JobStatus.queued, progress=0.0, message="", params={})
        own.add(job)
        own.flush()
        job_id = job.id
    with TestClient(create_app(settings)) as client:
        answer = client.get(f"{API_PREFIX}/jobs/{job_id}", headers={"Authorization": f"Bearer {token}"}).json()
    assert answer["created_at"].endswith("Z"), answer


# Round caps per profile, from the settings.


def test_round_steps_and_crop_over_the_profile_caps_are_a_422_naming_the_setting(
    client: TestClient, headers: dict, project: Project
) -> None:
    url = f"{API_PREFIX}/projects/{project.id}/rounds"
    lead = headers[Role.lead]
    too_many = client.post(url, json={"profile": "cpu", "steps": 5001, "crop_size": 2048}, headers=lead)
    assert too_many.status_code == 422, too_many.text
    body = too_many.json()
    assert [e["loc"] for e in body["errors"]] == [["body", "steps"], ["body", "crop_size"]]
    assert "at most 5000 (MARSLABEL_MAX_ROUND_STEPS_CPU)" in body["detail"]
    assert "at most 512 (MARSLABEL_MAX_CROP_SIZE_CPU)" in body["detail"]
    # The same numbers are within the paper profile's caps: refused for another reason (nothing labelled).
    paper = client.post(url, json={"profile": "paper", "steps": 5001, "crop_size": 1024}, headers=lead)
    assert "MARSLABEL_MAX" not in paper.text
    paper_crop = client.post(url, json={"profile": "paper", "crop_size": 1056}, headers=lead)
    assert paper_crop.status_code == 422 and "at most 1024 (MARSLABEL_MAX_CROP_SIZE_PAPER)" in paper_crop.text


def test_round_caps_come_from_the_settings(settings: Settings, headers: dict, project: Project) -> None:
    tight = settings.model_copy(update={"max_round_steps_paper": 100})
    with TestClient(create_app(tight)) as client:
        base = f"{API_PREFIX}/projects/{project.id}"
        refused = client.post(f"{base}/rounds", json={"profile": "paper", "steps": 101}, headers=headers[Role.lead])
        assert refused.status_code == 422 and "at most 100 (MARSLABEL_MAX_ROUND_STEPS_PAPER)" in refused.text
        defaults = {"round_defaults": {"profile": "paper", "steps": 101}, "auto_round_after": 5}
        patched = client.patch(f"{base}/ml-settings", json=defaults, headers=headers[Role.lead])
        assert patched.status_code == 422
        assert patched.json()["errors"][0]["loc"] == ["body", "round_defaults", "steps"]
        kept = client.get(f"{base}/ml-settings", headers=headers[Role.lead]).json()
        assert kept["round_defaults"] is None and kept["auto_round_after"] is None  # nothing half-stored
        null = client.patch(f"{base}/ml-settings", json={"pseudo_label_threshold": None}, headers=headers[Role.lead])
        assert null.status_code == 422 and null.json()["errors"][0]["loc"] == ["body", "pseudo_label_threshold"]


# Rejections in the user's terms.


def _png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return len(payload).to_bytes(4, "big") + kind + payload + zlib.crc32(kind + payload).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def _upload(client: TestClient, project_id: int, name: str, data: bytes, auth: dict) -> dict[str, Any]:
    """The answer for one file: 200 when it is stored, a 422 with the same `items` when it is rejected."""
    files = [("files", (name, data, "application/octet-stream"))]
    answer = client.post(f"{API_PREFIX}/projects/{project_id}/images", files=files, headers=auth)
    item = answer.json()["items"][0]
    if item["status"] == "rejected":
        assert answer.status_code == 422, answer.text  # its only file rejected: nothing stored
        assert answer.json()["detail"].startswith(f"no image stored, every file was rejected: {name}: ")
    else:
        assert answer.status_code == 200, answer.text
    return item


def test_a_non_image_upload_says_so_without_internals(client: TestClient, headers: dict, project: Project) -> None:
    item = _upload(client, project.id, "notes.txt", b"these are not pixels\n" * 10, headers[Role.lead])
    assert item["status"] == "rejected"
    assert item["reason"].startswith("file is not an image: expected PNG, JPEG or TIFF")
    assert "BytesIO" not in item["reason"] and "0x" not in item["reason"]


def test_an_image_bomb_is_refused_quoting_the_configured_limit(
    client: TestClient, settings: Settings, headers: dict, project: Project
) -> None:
    item = _upload(client, project.id, "bomb.png", _png_header(20000, 20000), headers[Role.lead])
    assert item["status"] == "rejected"
    assert "400000000 pixels" in item["reason"]
    assert f"limit of {settings.max_image_pixels} pixels (MARSLABEL_MAX_IMAGE_PIXELS)" in item["reason"]
    assert "178956970" not in item["reason"] and "DOS" not in item["reason"]
    small = settings.model_copy(update={"max_image_pixels": 1_000_000})
    with TestClient(create_app(small)) as tight:
        item = _upload(tight, project.id, "big.png", _png_header(2000, 1000), headers[Role.lead])
    assert item["reason"] == (
        "refused as a decompression bomb: 2000×1000 = 2000000 pixels, more than the limit of 1000000 pixels "
        "(MARSLABEL_MAX_IMAGE_PIXELS)"
    )


def test_a_file_over_the_upload_limit_names_the_setting(settings: Settings, headers: dict, project: Project) -> None:
    data = image_bytes(64, 64, seed=3)
    with TestClient(create_app(settings.model_copy(update={"max_upload_bytes": len(data) - 1}))) as client:
        item = _upload(client, project.id, "big.png", data, headers[Role.lead])
    assert item["reason"] == f"file is larger than the limit of {len(data) - 1} bytes (MARSLABEL_MAX_UPLOAD_BYTES)"


def test_a_non_png_mask_says_so_without_internals(
    client: TestClient, headers: dict, project: Project, session: Session
) -> None:
    stored = _upload(client, project.id, "a.png", image_bytes(32, 24, seed=4), headers[Role.lead])
    url = f"{API_PREFIX}/projects/{project.id}/images/{stored['image_id']}/masks"
    answer = client.post(url, files={"mask": ("m.png", b"GIF89a not really", "image/png")}, headers=headers[Role.lead])
    assert answer.status_code == 422 and _is_error_body(answer)
    assert answer.json()["detail"].startswith("mask is not an image: expected PNG")
    assert "BytesIO" not in answer.text
    jpeg = io.BytesIO()
    PILImage.new("L", (32, 24)).save(jpeg, format="JPEG")
    answer = client.post(url, files={"mask": ("m.jpg", jpeg.getvalue(), "image/jpeg")}, headers=headers[Role.lead])
    assert answer.status_code == 422 and answer.json()["detail"] == "mask must be a PNG, got JPEG"
