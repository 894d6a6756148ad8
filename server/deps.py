"""FastAPI dependencies, in one place: settings, the request's one transaction, the caller, role checks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.db import session_scope
from server.models import Job, Role, User
from server.permissions import ALL_ACTIONS, is_allowed, is_allowed_in_project
from server.schemas import MAX_INT
from server.settings import Settings
from server.store.members import member_role
from server.store.users import user_for_token


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


def get_session(settings: SettingsDep) -> Iterator[Session]:
    """One transaction per request: commit when the route returned, roll back when it raised."""
    with session_scope(settings.resolved_database_url) as session:
        yield session


# scope="function": the commit runs before the response is sent, so a failed commit is never answered 2xx.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]

_UNAUTHORIZED_HEADERS = {"WWW-Authenticate": "Bearer"}


def get_current_user(request: Request, session: SessionDep) -> User:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise HTTPException(
            401, "missing Authorization header: send `Authorization: Bearer <token>`", headers=_UNAUTHORIZED_HEADERS
        )
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(
            401, "malformed Authorization header: expected `Bearer <token>`", headers=_UNAUTHORIZED_HEADERS
        )
    user = user_for_token(session, token.strip())
    if user is None:
        raise HTTPException(401, "invalid or revoked token", headers=_UNAUTHORIZED_HEADERS)
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def _path_id(request: Request, name: str) -> int | None:
    raw = request.path_params.get(name)
    if raw is None or not str(raw).isdigit():
        return None
    value = int(raw)
    return value if 1 <= value <= MAX_INT else None  # out of range: the route's own 422 says so


def project_in_scope(request: Request, session: Session) -> tuple[int, str] | None:
    """The project a request acts in, and what a non-member is told (the answer a missing one gets): the path's
    project, or the project of the path's job. None for routes outside any project."""
    project_id = _path_id(request, "project_id")
    if project_id is not None:
        return project_id, f"project {project_id} not found"
    job_id = _path_id(request, "job_id")
    if job_id is not None:
        job = session.execute(select(Job.id, Job.project_id).where(Job.id == job_id)).first()
        if job is None:  # the same answer as a job of someone else's project, whatever the caller's role
            raise HTTPException(404, f"job {job_id} not found")
        if job.project_id is not None:
            return job.project_id, f"job {job_id} not found"
    return None


class Requirement:
    """The dependency require(action) returns, and the one place that decides whether the caller may act: inside
    a project by their membership and project role there (a non-member gets the 404 a missing project gets),
    elsewhere by their account's role. It keeps its action so tests can find every route's action."""

    def __init__(self, action: str) -> None:
        if action not in ALL_ACTIONS:
            raise KeyError(f"unknown action {action!r}; add it to server/permissions.py")
        self.action = action

    def __call__(self, request: Request, user: CurrentUser, session: SessionDep) -> User:
        scope = project_in_scope(request, session)
        if scope is None or user.role is Role.admin:
            if not is_allowed(user.role, self.action):
                raise HTTPException(403, f"role {user.role.value} may not {self.action}")
            return user
        project_id, not_found = scope
        role = member_role(session, project_id, user.id)
        if role is None:
            raise HTTPException(404, not_found)
        if not is_allowed_in_project(role, self.action):
            raise HTTPException(403, f"project role {role.value} may not {self.action} in project {project_id}")
        return user

    def __repr__(self) -> str:
        return f"require({self.action!r})"


def require(action: str) -> Requirement:
    """Use as `user: Annotated[User, Depends(require("image.upload"))]` or in a route's `dependencies`."""
    return Requirement(action)
