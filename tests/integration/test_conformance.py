"""What an OpenAPI fuzzer with every check on (schemathesis' default `run`) holds the API to, beyond no 5xx:

- a 405 names in `Allow` every method the path serves, not only those of the first route that matched it;
- an id in the path that is not an id (`/projects/abc`, `/projects/0`) is a 404, as an id that names nothing;
- a JSON value of another kind than the document says is refused, where lax validation would convert it (true
  for a number, "7" for an integer, 0 for a boolean);
- a request the schema allows but the current state refuses is a 409 (or a 404 for a row it names that does not
  exist, a 403 for what this server does not allow), never a 422, which says the request itself is invalid;
- the documented patterns are what the server takes (a round budget as text).
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from server.app import API_PREFIX
from server.models import Project, Role
from server.round_schemas import BUDGET_PATTERN, parse_budget
from tests.factories import make_project


@pytest.fixture
def project(session: Session) -> Project:
    project = make_project(session)
    session.commit()
    return project


@pytest.mark.parametrize(
    ("method", "path", "served"),
    [
        ("PUT", "/projects", {"GET", "POST"}),
        ("DELETE", "/projects/{id}", {"GET", "PATCH"}),
        ("PUT", "/projects/{id}/members", {"GET", "POST"}),
        ("POST", "/projects/{id}/ml-settings", {"GET", "PATCH"}),
    ],
)
def test_a_405_lists_every_method_the_path_serves(
    client: TestClient, headers: dict, project: Project, method: str, path: str, served: set[str]
) -> None:
    answer = client.request(method, API_PREFIX + path.format(id=project.id), headers=headers[Role.admin])
    assert answer.status_code == 405, answer.text
    allowed = {m.strip() for m in answer.headers["allow"].split(",")}
    assert allowed - {"HEAD"} == served, answer.headers["allow"]
    assert method not in allowed
    assert answer.json()["detail"].startswith(f"method {method} is not allowed here")


@pytest.mark.parametrize("bad_id", ["abc", "None", "0", "-3", "2147483648"])
def test_a_path_id_that_is_not_an_id_is_a_404_naming_the_field(
    client: TestClient, headers: dict, project: Project, bad_id: str
) -> None:
    answer = client.get(f"{API_PREFIX}/projects/{project.id}/images/{bad_id}", headers=headers[Role.admin])
    assert answer.status_code == 404, answer.text
    body = answer.json()
    assert body["detail"].startswith("no such resource: path.image_id")
    assert [error["loc"] for error in body["errors"]] == [["path", "image_id"]]


def test_a_bad_query_beside_a_path_id_is_still_a_422(client: TestClient, headers: dict, project: Project) -> None:
    answer = client.get(f"{API_PREFIX}/projects/{project.id}/images", params={"limit": 0}, headers=headers[Role.admin])
    assert answer.status_code == 422, answer.text


@pytest.mark.parametrize(
    ("method", "path", "body", "words"),
    [
        (
            "POST",
            "/projects",
            {"name": "p", "classes": [{"id": 0, "name": "a", "color": [0, 0, False]}]},
            "color.2: boolean where the field takes integer",
        ),
        (
            "POST",
            "/projects",
            {"name": "p", "classes": [{"id": "0", "name": "a", "color": [0, 0, 0]}]},
            "id: string where the field takes integer",
        ),
        (
            "PATCH",
            "/projects/{id}/ml-settings",
            {"pseudo_label_threshold": False},
            "pseudo_label_threshold: boolean where the field takes number",
        ),
        (
            "PATCH",
            "/projects/{id}/ml-settings",
            {"round_defaults": {"accepted_only": 0}},
            "accepted_only: integer where the field takes boolean",
        ),
        ("PATCH", "/projects/{id}", {"review_percent": True}, "review_percent: boolean where the field takes integer"),
        ("POST", "/projects/{id}/rounds", {"seed": "7"}, "seed: string where the field takes integer"),
        ("POST", "/projects/{id}/rounds", {"budget": True}, "budget: boolean where the field takes integer or string"),
        ("POST", "/projects/{id}/first-set", {"seed": False}, "seed: boolean where the field takes integer"),
        ("POST", "/projects/{id}/sam/auto-masks", {"image_ids": [1, "2"]}, "image_ids.1: string where"),
    ],
)
def test_a_value_of_another_kind_than_documented_is_a_422_naming_it(
    client: TestClient, headers: dict, project: Project, method: str, path: str, body: dict[str, Any], words: str
) -> None:
    before = client.get(f"{API_PREFIX}/projects/{project.id}/ml-settings", headers=headers[Role.lead]).json()
    answer = client.request(method, API_PREFIX + path.format(id=project.id), json=body, headers=headers[Role.lead])
    assert answer.status_code == 422, answer.text
    assert words in answer.json()["detail"], answer.text
    after = client.get(f"{API_PREFIX}/projects/{project.id}/ml-settings", headers=headers[Role.lead]).json()
    assert after == before  # nothing stored


def test_an_integral_float_is_still_an_integer(client: TestClient, headers: dict, project: Project) -> None:
    """JSON Schema's `integer` includes 3.0; the API takes it as 3."""
    answer = client.patch(
        f"{API_PREFIX}/projects/{project.id}", json={"review_percent": 30.0}, headers=headers[Role.lead]
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["review_percent"] == 30


def test_the_pseudo_label_threshold_is_a_number_and_null_is_refused(
    client: TestClient, headers: dict, project: Project
) -> None:
    url = f"{API_PREFIX}/projects/{project.id}/ml-settings"
    assert client.patch(url, json={"pseudo_label_threshold": 0.7}, headers=headers[Role.lead]).status_code == 200
    refused = client.patch(url, json={"pseudo_label_threshold": None}, headers=headers[Role.lead])
    assert refused.status_code == 422 and refused.json()["errors"][0]["loc"] == ["body", "pseudo_label_threshold"]
    assert client.get(url, headers=headers[Role.lead]).json()["pseudo_label_threshold"] == 0.7  # unchanged
    schema = client.get(f"{API_PREFIX}/openapi.json").json()["components"]["schemas"]["ProjectMlSettingsUpdate"]
    assert schema["properties"]["pseudo_label_threshold"]["type"] == "number"  # not nullable in the document


def test_a_round_or_first_set_the_state_refuses_is_a_409(client: TestClient, headers: dict, project: Project) -> None:
    """A project without images: a round needs a human label, a first set an unlabelled pool image."""
    answer = client.post(f"{API_PREFIX}/projects/{project.id}/rounds", json={}, headers=headers[Role.lead])
    assert answer.status_code == 409, answer.text
    assert "has no human-labelled image yet" in answer.json()["detail"]
    answer = client.post(f"{API_PREFIX}/projects/{project.id}/first-set", json={}, headers=headers[Role.lead])
    assert answer.status_code == 409, answer.text
    assert "no unlabelled pool image" in answer.json()["detail"]


def test_server_side_imports_disabled_is_a_403(client: TestClient, headers: dict, project: Project) -> None:
    answer = client.post(
        f"{API_PREFIX}/projects/{project.id}/imports", json={"path": "somewhere"}, headers=headers[Role.lead]
    )
    assert answer.status_code == 403, answer.text
    assert "MARSLABEL_IMPORT_ROOT is not set" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("63", (63, None)),
        (" 7 ", (7, None)),
        ("3%", (None, 3.0)),
        ("0.5 %", (None, 0.5)),
        (".5%", (None, 0.5)),
        ("100%", (None, 100.0)),
        ("100.00%", (None, 100.0)),
        ("0%", None),
        ("0.0%", None),
        ("100.5%", None),
        ("101%", None),
        ("0", None),
        ("1000000000", None),
        ("3 images", None),
        ("", None),
    ],
)
def test_a_budget_as_text_is_taken_exactly_when_it_matches_the_documented_pattern(
    text: str, expected: tuple[int | None, float | None] | None
) -> None:
    import re

    assert (re.fullmatch(BUDGET_PATTERN, text) is not None) == (expected is not None)
    if expected is None:
        with pytest.raises(ValueError, match="neither a count"):
            parse_budget(text)
    else:
        assert parse_budget(text) == expected
