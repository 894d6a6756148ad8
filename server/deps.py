"""FastAPI dependencies, in one place: settings, the request's one transaction, the caller, role checks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy.orm import Session

from server.db import session_scope
from server.models import User
from server.permissions import ALL_ACTIONS, is_allowed
from server.settings import Settings
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


class Requirement:
    """The dependency require(action) returns. It keeps its action so tests can find every route's action."""

    def __init__(self, action: str) -> None:
        if action not in ALL_ACTIONS:
            raise KeyError(f"unknown action {action!r}; add it to server/permissions.py")
        self.action = action

    def __call__(self, user: CurrentUser) -> User:
        if not is_allowed(user.role, self.action):
            raise HTTPException(403, f"role {user.role.value} may not {self.action}")
        return user

    def __repr__(self) -> str:
        return f"require({self.action!r})"


def require(action: str) -> Requirement:
    """Use as `user: Annotated[User, Depends(require("image.upload"))]` or in a route's `dependencies`."""
    return Requirement(action)
