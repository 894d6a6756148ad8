"""Users: one's own account; admins list users and create them (the token is shown once)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status

from server.deps import SessionDep, require
from server.errors import error_responses
from server.models import User
from server.schemas import UserCreate, UserPublic, UserWithToken
from server.store import users as store

router = APIRouter(prefix="/users", tags=["users"])


@router.get("/me")
def who_am_i(user: Annotated[User, Depends(require("user.self"))]) -> UserPublic:
    return UserPublic.model_validate(user)


@router.get("")
def list_users(session: SessionDep, _user: Annotated[User, Depends(require("user.admin"))]) -> list[UserPublic]:
    return [UserPublic.model_validate(u) for u in store.list_users(session)]


@router.post("", status_code=status.HTTP_201_CREATED, responses=error_responses(409))
def create_user(
    body: UserCreate, session: SessionDep, _user: Annotated[User, Depends(require("user.admin"))]
) -> UserWithToken:
    user, token = store.create_user(session, body.name, body.role)
    return UserWithToken(**UserPublic.model_validate(user).model_dump(), token=token)
