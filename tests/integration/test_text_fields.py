"""Text a request stores (names, descriptions, comments): a NUL, a control character in a name, or a blank name
is a 422 naming the field, on PostgreSQL (whose text columns cannot hold U+0000), and nothing is stored."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.models import Image, Project, ProjectMember, Role, User
from server.schemas import NAME_PATTERN, TEXT_PATTERN
from tests.factories import image_bytes, make_project, project_payload


def _count(session: Session, model: type) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model)) or 0


def _refused(answer: Any, field: str, words: str) -> None:
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert field in detail and words in detail, detail


@pytest.mark.parametrize(
    ("name", "words"),
    [("   ", "blank"), ("a\x00b", "control characters"), ("\x1c", "control characters"), ("ab\tc", "control")],
)
def test_a_user_name_that_is_blank_or_holds_control_characters_is_a_422(
    client: TestClient, headers: dict, session: Session, name: str, words: str
) -> None:
    before = _count(session, User)
    answer = client.post("/api/v1/users", json={"name": name, "role": "annotator"}, headers=headers[Role.admin])
    _refused(answer, "name", words)
    assert _count(session, User) == before


def test_a_project_with_a_nul_in_its_description_or_a_bad_class_name_is_a_422(
    client: TestClient, headers: dict, session: Session
) -> None:
    before = _count(session, Project)
    bad_description = client.post(
        "/api/v1/projects", json=project_payload(description="line\x00"), headers=headers[Role.admin]
    )
    _refused(bad_description, "description", "NUL")
    classes = [{"id": 0, "name": "soil", "color": [1, 2, 3]}, {"id": 1, "name": " ", "color": [4, 5, 6]}]
    bad_class = client.post("/api/v1/projects", json=project_payload(classes=classes), headers=headers[Role.admin])
    _refused(bad_class, "name", "blank")
    assert _count(session, Project) == before
    # Newlines and tabs are text, not an error, in a description.
    fine = client.post("/api/v1/projects", json=project_payload(description="a\n\tb"), headers=headers[Role.admin])
    assert fine.status_code == 201 and fine.json()["description"] == "a\n\tb"


def test_an_update_with_a_nul_changes_nothing(client: TestClient, headers: dict, session: Session) -> None:
    project = make_project(session)
    answer = client.patch(
        f"/api/v1/projects/{project.id}",
        json={"name": "new name", "description": "x\x00"},
        headers=headers[Role.admin],
    )
    _refused(answer, "description", "NUL")
    session.expire_all()
    stored = session.get(Project, project.id)
    assert stored is not None and (stored.name, stored.description) == ("jezero", "test project")


def test_a_member_name_with_a_nul_is_a_422(client: TestClient, headers: dict, session: Session) -> None:
    project = make_project(session)
    before = _count(session, ProjectMember)
    answer = client.post(
        f"/api/v1/projects/{project.id}/members",
        json={"user": "ada\x00", "role": "annotator"},
        headers=headers[Role.admin],
    )
    _refused(answer, "user", "control characters")
    assert _count(session, ProjectMember) == before


def test_an_unknown_job_kind_filter_is_a_422_listing_the_kinds(
    client: TestClient, headers: dict, session: Session
) -> None:
    project = make_project(session)
    answer = client.get(
        f"/api/v1/projects/{project.id}/jobs", params={"kind": "rou\x00nd"}, headers=headers[Role.admin]
    )
    _refused(answer, "kind", "'round'")
    known = client.get(f"/api/v1/projects/{project.id}/jobs", params={"kind": "round"}, headers=headers[Role.admin])
    assert known.status_code == 200 and known.json() == []


def test_an_upload_whose_file_name_holds_control_characters_is_stored_under_a_clean_name(
    client: TestClient, headers: dict, session: Session
) -> None:
    project = make_project(session)
    # Written by hand: httpx would percent-encode the control characters, a raw client need not.
    boundary = "marslabelboundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="ro\x00ck\x07.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + image_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    answer = client.post(
        f"/api/v1/projects/{project.id}/images",
        content=body,
        headers={**headers[Role.admin], "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert answer.status_code == 200, answer.text
    item = answer.json()["items"][0]
    assert item["status"] == "stored", item
    session.expire_all()
    assert session.get(Image, item["image_id"]).file_name == "rock.png"


def test_the_document_gives_the_patterns_the_server_enforces(app: FastAPI) -> None:
    schemas = app.openapi()["components"]["schemas"]
    assert schemas["UserCreate"]["properties"]["name"]["pattern"] == NAME_PATTERN
    assert schemas["ProjectCreate"]["properties"]["description"]["pattern"] == TEXT_PATTERN
    for good in ("ada", " a b ", "Sol 1000 — rock"):
        assert re.fullmatch(NAME_PATTERN, good)
    for bad in ("", "  ", "a\x00", "\x1f", "a\x7fb"):
        assert not re.fullmatch(NAME_PATTERN, bad)
