"""Every integer a request carries is bounded where it enters: the walk below finds each integer parameter of
every operation (path, query, JSON body fields at any depth, list items, multipart form fields) in the app's
own OpenAPI document, sends out-of-range values in it, and wants a 422 in the one error model naming that
field (a 404 for an id in the path, which then names no resource): never a 500, whatever the database (an id
of 2^63 overflowed SQLite, 2^31 PostgreSQL's `integer`). Text fields: every string a request carries has a
maximum length (or is an enum, a pattern, a file)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from server.app import API_PREFIX
from server.models import Project, Role
from server.schemas import MAX_DESCRIPTION_CHARS
from tests.factories import make_project, project_payload

OUT_OF_RANGE = [2**63, 2**64 + 1, -(2**63) - 1]


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        schema = document["components"]["schemas"][name]
    return schema


def _leaves(document: dict[str, Any], schema: dict[str, Any], path: tuple[str | int, ...]) -> Iterator[tuple]:
    """(path in the body, leaf schema) of every scalar a body schema may hold; a list's item is at index 0."""
    schema = _resolve(document, schema)
    for alternative in schema.get("anyOf", []) + schema.get("oneOf", []):
        yield from _leaves(document, alternative, path)
    if schema.get("type") == "object" or "properties" in schema:
        for name, sub in schema.get("properties", {}).items():
            yield from _leaves(document, sub, (*path, name))
    elif schema.get("type") == "array":
        items = schema.get("prefixItems") or [schema.get("items", {})]
        for index, sub in enumerate(items):
            yield from _leaves(document, sub, (*path, index))
    elif "type" in schema:
        yield path, schema


@dataclass(frozen=True)
class IntegerInput:
    method: str
    path: str
    where: str  # path | query | body | form
    name: tuple[str | int, ...]
    schema: dict[str, Any]

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.where}.{'.'.join(map(str, self.name))}"


def integer_inputs(document: dict[str, Any]) -> Iterator[IntegerInput]:
    for path, operations in document["paths"].items():
        if not path.startswith(API_PREFIX):
            continue
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                for leaf, schema in _leaves(document, parameter["schema"], (parameter["name"],)):
                    if schema.get("type") == "integer":
                        yield IntegerInput(method.upper(), path, parameter["in"], leaf, schema)
            content = operation.get("requestBody", {}).get("content", {})
            for media_type, body in content.items():
                where = "form" if media_type == "multipart/form-data" else "body"
                for leaf, schema in _leaves(document, body["schema"], ()):
                    if schema.get("type") == "integer":
                        yield IntegerInput(method.upper(), path, where, leaf, schema)


def string_inputs(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                for leaf, schema in _leaves(document, parameter["schema"], (parameter["name"],)):
                    yield f"{method.upper()} {path} {parameter['in']}.{leaf}", schema
            for body in operation.get("requestBody", {}).get("content", {}).values():
                for leaf, schema in _leaves(document, body["schema"], ()):
                    yield f"{method.upper()} {path} body.{leaf}", schema


def _nest(name: tuple[str | int, ...], value: Any) -> Any:
    """The smallest JSON body that puts `value` at `name`: {"a": {"b": [value]}} for ("a", "b", 0)."""
    if not name:
        return value
    head, rest = name[0], name[1:]
    return [_nest(rest, value)] if isinstance(head, int) else {head: _nest(rest, value)}


def _send(client: TestClient, target: IntegerInput, value: int, auth: dict[str, str]):  # type: ignore[no-untyped-def]
    path_values = {"project_id": 1, "image_id": 1}
    if target.where == "path":
        path_values[str(target.name[0])] = value
    url = target.path
    for key in [segment[1:-1] for segment in url.split("/") if segment.startswith("{")]:
        url = url.replace(f"{{{key}}}", str(path_values.get(key, 1)))
    kwargs: dict[str, Any] = {"headers": auth}
    if target.where == "query":
        kwargs["params"] = {str(target.name[0]): str(value)}
    elif target.where == "body":
        kwargs["json"] = _nest(target.name, value)
    elif target.where == "form":
        kwargs["data"] = {str(target.name[0]): str(value)}
        kwargs["files"] = {"mask": ("m.png", b"\x89PNG", "image/png")}
    with client.stream(target.method, url, **kwargs) as response:
        response.read()
        return response


def _names_field(errors: list[dict[str, Any]], target: IntegerInput) -> bool:
    wanted = [str(part) for part in target.name]
    for error in errors:
        loc = [str(part) for part in error["loc"]]
        # pydantic adds the alternative it tried (`int`, `str`) after a field of a union type
        if loc[1 : 1 + len(wanted)] == wanted and loc[0] in ("path", "query", "body", "form"):
            return True
    return False


@pytest.fixture
def project(session: Session) -> Project:
    project = make_project(session)
    session.commit()
    return project


def test_the_walk_finds_the_integers_of_every_kind_of_input(app: FastAPI) -> None:
    found = {str(target) for target in integer_inputs(app.openapi())}
    for expected in [
        "GET /api/v1/jobs/{job_id} path.job_id",
        "GET /api/v1/projects/{project_id}/images query.offset",
        "POST /api/v1/projects/{project_id}/queue/skip body.image_id",
        "POST /api/v1/projects/{project_id}/sam/auto-masks body.image_ids.0",
        "PATCH /api/v1/projects/{project_id}/ml-settings body.round_defaults.steps",
        "POST /api/v1/projects/{project_id}/images/{image_id}/masks form.base_version",
        "GET /api/v1/projects/{project_id}/images/{image_id}/masks/{version} path.version",
    ]:
        assert expected in found
    assert len(found) >= 60


def test_every_integer_input_declares_its_range(app: FastAPI) -> None:
    unbounded = [
        str(target)
        for target in integer_inputs(app.openapi())
        if target.schema.get("maximum", 2**63) > 2**31 - 1 or "minimum" not in target.schema
    ]
    assert unbounded == []


def test_an_out_of_range_integer_anywhere_is_a_4xx_naming_it(
    client: TestClient, app: FastAPI, headers: dict, project: Project
) -> None:
    """Every integer input of every operation, with 2^63, 2^64 + 1, -2^63 - 1 and its declared maximum + 1."""
    wrong: list[str] = []
    sent = 0
    for target in integer_inputs(app.openapi()):
        for value in [*OUT_OF_RANGE, target.schema["maximum"] + 1]:
            response = _send(client, target, value, headers[Role.admin])
            sent += 1
            body = response.json() if response.headers.get("content-type") == "application/json" else None
            if (
                response.status_code != (404 if target.where == "path" else 422)
                or body is None
                or not isinstance(body.get("detail"), str)
                or not _names_field(body.get("errors", []), target)
            ):
                wrong.append(f"{target} = {value}: {response.status_code} {response.text[:300]}")
    assert sent >= 240
    assert wrong == []


def test_every_string_input_has_a_maximum_length(app: FastAPI) -> None:
    unbounded = [
        where
        for where, schema in string_inputs(app.openapi())
        if schema.get("type") == "string"
        and "maxLength" not in schema
        and "enum" not in schema
        and "const" not in schema
        and schema.get("format") != "binary"
        and "contentMediaType" not in schema  # an uploaded file
        and not str(schema.get("pattern", "")).endswith("$")
    ]
    assert unbounded == []


def test_a_huge_project_description_is_refused(client: TestClient, headers: dict, project: Project) -> None:
    huge = "x" * (MAX_DESCRIPTION_CHARS + 1)
    created = client.post(
        f"{API_PREFIX}/projects", json=project_payload("huge", description=huge), headers=headers[Role.lead]
    )
    assert created.status_code == 422
    assert [e["loc"] for e in created.json()["errors"]] == [["body", "description"]]
    assert f"at most {MAX_DESCRIPTION_CHARS} characters" in created.json()["detail"]
    assert huge not in created.text  # the refused input is not echoed back
    updated = client.patch(
        f"{API_PREFIX}/projects/{project.id}", json={"description": huge}, headers=headers[Role.lead]
    )
    assert updated.status_code == 422 and updated.json()["errors"][0]["loc"] == ["body", "description"]
    kept = client.get(f"{API_PREFIX}/projects/{project.id}", headers=headers[Role.lead]).json()
    assert kept["description"] == project.description
    at_limit = "y" * MAX_DESCRIPTION_CHARS
    accepted = client.patch(
        f"{API_PREFIX}/projects/{project.id}", json={"description": at_limit}, headers=headers[Role.lead]
    )
    assert accepted.status_code == 200 and accepted.json()["description"] == at_limit


def test_a_budget_beyond_any_pool_is_refused(client: TestClient, headers: dict, project: Project) -> None:
    url = f"{API_PREFIX}/projects/{project.id}/rounds"
    for budget in [2**31, str(2**40)]:
        answer = client.post(url, json={"budget": budget}, headers=headers[Role.lead])
        assert answer.status_code == 422, answer.text
        assert answer.json()["errors"][0]["loc"][:2] == ["body", "budget"]
