"""The role × action table over every route of the API, found from the routers themselves: a route added
later (any router in ALL_ROUTERS) is covered without touching this file. Each route must name its action
through server.deps.require(); each role gets 403 exactly where server/permissions.py says so."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from server.app import API_PREFIX
from server.deps import Requirement
from server.models import Role
from server.permissions import ALL_ACTIONS, PERMISSIONS
from server.routers import ALL_ROUTERS

# Routes under /api/v1 that anyone may call without a token. None so far; add one here deliberately.
PUBLIC_ROUTES: set[tuple[str, str]] = set()


def _walk(routes: list, prefix: str) -> Iterator[tuple[str, APIRoute]]:  # type: ignore[type-arg]
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, route
        elif hasattr(route, "original_router"):  # a router included into a router (FastAPI ≥ 0.12x)
            yield from _walk(route.original_router.routes, prefix + route.include_context.prefix)


def required_actions(route: APIRoute) -> set[str]:
    found: set[str] = set()
    pending = list(route.dependant.dependencies)
    while pending:
        dependency = pending.pop()
        if isinstance(dependency.call, Requirement):
            found.add(dependency.call.action)
        pending.extend(dependency.dependencies)
    return found


def api_operations() -> list[tuple[str, str, APIRoute]]:
    operations = []
    for router in ALL_ROUTERS:
        for path, route in _walk(router.routes, API_PREFIX):
            operations.extend((method, path, route) for method in sorted(route.methods or ()))
    return operations


OPERATIONS = api_operations()
CELLS = [(method, path, role) for method, path, _route in OPERATIONS for role in Role]


def concrete(path: str) -> str:
    # Ids that exist nowhere: an allowed role gets past the role check and then a 404 or 422, never 401/403.
    return re.sub(r"\{[^}]+\}", "999999", path)


def call(client: TestClient, method: str, path: str, headers: dict[str, str]) -> int:
    with client.stream(method, concrete(path), headers=headers) as response:
        return response.status_code


def action_of(method: str, path: str) -> str:
    route = next(route for m, p, route in OPERATIONS if (m, p) == (method, path))
    actions = required_actions(route)
    assert len(actions) == 1, f"{method} {path} must require exactly one action, has {sorted(actions)}"
    return actions.pop()


def test_every_route_names_one_known_action() -> None:
    assert len(OPERATIONS) >= 19
    for method, path, route in OPERATIONS:
        if (method, path) in PUBLIC_ROUTES:
            continue
        actions = required_actions(route)
        assert len(actions) == 1 and actions <= ALL_ACTIONS, f"{method} {path}: {sorted(actions)}"


def test_discovery_sees_every_operation_of_the_app(app: FastAPI) -> None:
    documented = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith(API_PREFIX)
        for method in operations
    }
    assert documented <= {(method, path) for method, path, _route in OPERATIONS}


@pytest.mark.parametrize(("method", "path", "role"), CELLS, ids=[f"{m} {p} {r.value}" for m, p, r in CELLS])
def test_role_table(client: TestClient, headers: dict, method: str, path: str, role: Role) -> None:
    if (method, path) in PUBLIC_ROUTES:
        pytest.skip("public route")
    action = action_of(method, path)
    status = call(client, method, path, headers[role])
    if action in PERMISSIONS[role]:
        assert status not in (401, 403), f"{role.value} may {action} but got {status}"
    else:
        assert status == 403, f"{role.value} may not {action} but got {status}"


@pytest.mark.parametrize(("method", "path"), [(m, p) for m, p, _r in OPERATIONS])
def test_missing_or_invalid_token_is_401(client: TestClient, role_tokens: dict, method: str, path: str) -> None:
    if (method, path) in PUBLIC_ROUTES:
        pytest.skip("public route")
    assert call(client, method, path, {}) == 401
    assert call(client, method, path, {"Authorization": "Bearer not-a-token"}) == 401
    assert call(client, method, path, {"Authorization": f"Basic {role_tokens[Role.admin]}"}) == 401


def test_a_denied_answer_names_the_role_and_action(client: TestClient, headers: dict) -> None:
    answer = client.post(f"{API_PREFIX}/projects", json={}, headers=headers[Role.annotator])
    assert answer.status_code == 403
    assert answer.json() == {"detail": "role annotator may not project.create", "errors": []}
    unauthenticated = client.get(f"{API_PREFIX}/projects")
    assert unauthenticated.status_code == 401 and "Authorization" in unauthenticated.json()["detail"]
    assert unauthenticated.headers["www-authenticate"] == "Bearer"
