"""Projects: create, list, read, update classes (409 while a mask uses a class that would go)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from server.models import Project, Role
from tests.factories import DEFAULT_CLASSES, project_payload

URL = "/api/v1/projects"


def test_create_list_get(client: TestClient, headers: dict, session: Session) -> None:
    created = client.post(URL, json=project_payload(), headers=headers[Role.lead])
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["name"] == "jezero" and body["ignore_index"] == 255
    assert [c["name"] for c in body["classes"]] == [c["name"] for c in DEFAULT_CLASSES]
    assert body["classes"][0]["color"] == [120, 80, 40]

    # Only members (and admins) see a project: the lead who made it, then those the lead adds.
    assert client.get(URL, headers=headers[Role.client]).json() == []
    assert [p["id"] for p in client.get(URL, headers=headers[Role.lead]).json()] == [body["id"]]
    for name, role in (("client-user", "client"), ("annotator-user", "annotator")):
        added = client.post(
            f"{URL}/{body['id']}/members", json={"user": name, "role": role}, headers=headers[Role.lead]
        )
        assert added.status_code == 201, added.text
    listed = client.get(URL, headers=headers[Role.client]).json()
    assert [p["id"] for p in listed] == [body["id"]]
    # The same project, told with each caller's own project role there.
    seen = client.get(f"{URL}/{body['id']}", headers=headers[Role.annotator]).json()
    assert (body["my_role"], seen["my_role"]) == ("lead", "annotator")
    assert {**seen, "my_role": "lead"} == body
    assert session.scalar(select(func.count()).select_from(Project)) == 1


def test_duplicate_name_is_409(client: TestClient, headers: dict) -> None:
    assert client.post(URL, json=project_payload(), headers=headers[Role.lead]).status_code == 201
    again = client.post(URL, json=project_payload(), headers=headers[Role.lead])
    assert again.status_code == 409
    assert "jezero" in again.json()["detail"]


def test_bad_class_lists_are_422(client: TestClient, headers: dict, session: Session) -> None:
    gappy = [dict(DEFAULT_CLASSES[0]), {**DEFAULT_CLASSES[1], "id": 5}]
    for payload in (
        project_payload(classes=gappy),
        project_payload(classes=[]),
        project_payload(classes=[{**DEFAULT_CLASSES[0], "color": [0, 0, 300]}]),
        project_payload(ignore_index=0),
        {**project_payload(), "surprise": 1},
    ):
        answer = client.post(URL, json=payload, headers=headers[Role.lead])
        assert answer.status_code == 422, payload
        assert isinstance(answer.json()["detail"], str) and answer.json()["detail"]
    assert session.scalar(select(func.count()).select_from(Project)) == 0


def test_unknown_project_is_404_naming_it(client: TestClient, headers: dict) -> None:
    answer = client.get(f"{URL}/4242", headers=headers[Role.client])
    assert answer.status_code == 404
    assert answer.json()["detail"] == "project 4242 not found"


def test_update_renames_and_adds_classes(client: TestClient, headers: dict) -> None:
    project = client.post(URL, json=project_payload(), headers=headers[Role.lead]).json()
    classes = [*DEFAULT_CLASSES, {"id": 4, "name": "sky", "color": [0, 0, 255]}]
    classes[0] = {**classes[0], "name": "regolith"}
    answer = client.patch(
        f"{URL}/{project['id']}", json={"classes": classes, "description": "new"}, headers=headers[Role.lead]
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["classes"][0]["name"] == "regolith"
    assert len(answer.json()["classes"]) == 5 and answer.json()["description"] == "new"
    assert answer.json()["name"] == "jezero"


def test_malformed_json_is_400_with_a_message(client: TestClient, headers: dict) -> None:
    answer = client.post(
        URL, content=b'{"name": "x", "classes": [', headers={**headers[Role.lead], "Content-Type": "application/json"}
    )
    assert answer.status_code == 400
    assert answer.json()["detail"].startswith("malformed JSON")
