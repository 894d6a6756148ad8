"""The role × action tables over every route of the API, found from the routers themselves: a route added
later (any router in ALL_ROUTERS) is covered without touching this file. Each route must name its action
through server.deps.require(). Outside projects, each account role gets 403 exactly where PERMISSIONS says so;
inside a project (its path names a project or a job of one), each project role gets 403 exactly where
PROJECT_PERMISSIONS says so, whatever their account's role, and a non-member gets the 404 of a missing project."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from server.app import API_PREFIX
from server.deps import Requirement
from server.models import Job, JobStatus, ProjectRole, Role
from server.permissions import ALL_ACTIONS, PERMISSIONS, PROJECT_PERMISSIONS
from server.routers import ALL_ROUTERS
from server.store.members import add_member
from server.store.users import create_user
from tests.factories import make_project

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


def in_project(path: str) -> bool:
    return "{project_id}" in path or "{job_id}" in path


CELLS = [(method, path, role) for method, path, _route in OPERATIONS if not in_project(path) for role in Role]
PROJECT_OPERATIONS = [(method, path) for method, path, _route in OPERATIONS if in_project(path)]
PROJECT_CELLS = [(method, path, role) for method, path in PROJECT_OPERATIONS for role in ProjectRole]


def concrete(path: str, ids: dict[str, int] | None = None) -> str:
    # Ids that exist nowhere, unless given: an allowed role gets past the checks and then a 404 or 422.
    given = ids or {}
    return re.sub(r"\{([^}]+)\}", lambda m: str(given.get(m.group(1), 999999)), path)


def answer(
    client: TestClient, method: str, path: str, headers: dict[str, str], ids: dict[str, int] | None = None
) -> tuple[int, str]:
    with client.stream(method, concrete(path, ids), headers=headers) as response:
        detail = ""
        if response.headers.get("content-type", "").startswith("application/json") and response.status_code >= 400:
            response.read()
            detail = response.json().get("detail", "")
        return response.status_code, detail


def call(client: TestClient, method: str, path: str, headers: dict[str, str]) -> int:
    return answer(client, method, path, headers)[0]


def action_of(method: str, path: str) -> str:
    route = next(route for m, p, route in OPERATIONS if (m, p) == (method, path))
    actions = required_actions(route)
    assert len(actions) == 1, f"{method} {path} must require exactly one action, has {sorted(actions)}"
    return actions.pop()


@pytest.fixture
def team(session: Session) -> dict[str, object]:
    """A project with a (finished) job, one member per project role (annotator accounts, a client account for
    the client: the project role decides, not the account's), a non-member with a lead account, and an admin
    who is no member."""
    project = make_project(session, "team", members=False)
    job = Job(project_id=project.id, kind="import", status=JobStatus.done, progress=1.0)
    session.add(job)
    auth: dict[object, dict[str, str]] = {}
    for role in ProjectRole:
        user, token = create_user(
            session, f"member-{role.value}", Role.client if role is ProjectRole.client else Role.annotator
        )
        add_member(session, project, user, role)
        auth[role] = {"Authorization": f"Bearer {token}"}
    for key, account in (("outsider", Role.lead), ("admin", Role.admin)):
        _user, token = create_user(session, f"{key}-account", account)
        auth[key] = {"Authorization": f"Bearer {token}"}
    session.commit()
    return {"ids": {"project_id": project.id, "job_id": job.id}, "auth": auth}


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


@pytest.mark.parametrize(
    ("method", "path", "role"), PROJECT_CELLS, ids=[f"{m} {p} {r.value}" for m, p, r in PROJECT_CELLS]
)
def test_project_role_table(client: TestClient, team: dict, method: str, path: str, role: ProjectRole) -> None:
    action = action_of(method, path)
    status, detail = answer(client, method, path, team["auth"][role], team["ids"])
    if action in PROJECT_PERMISSIONS[role]:
        assert status not in (401, 403), f"project {role.value} may {action} but got {status} {detail}"
        assert not (status == 404 and detail.startswith(("project", "job"))), f"member {role.value}: {detail}"
    else:
        assert status == 403, f"project {role.value} may not {action} but got {status} {detail}"
        assert detail == f"project role {role.value} may not {action} in project {team['ids']['project_id']}"


@pytest.mark.parametrize(("method", "path"), PROJECT_OPERATIONS)
def test_a_non_member_gets_404_and_an_admin_gets_in(client: TestClient, team: dict, method: str, path: str) -> None:
    ids = team["ids"]
    status, detail = answer(client, method, path, team["auth"]["outsider"], ids)
    hidden = f"job {ids['job_id']} not found" if "{job_id}" in path else f"project {ids['project_id']} not found"
    assert (status, detail) == (404, hidden)
    # Exactly what a project (or job) that does not exist answers: no leak of which ids exist.
    assert answer(client, method, path, team["auth"]["outsider"]) == (
        404,
        hidden.replace(str(ids["job_id"] if "{job_id}" in path else ids["project_id"]), "999999"),
    )
    status, detail = answer(client, method, path, team["auth"]["admin"], ids)
    assert status not in (401, 403) and not (status == 404 and detail == hidden), f"admin got {status} {detail}"


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
