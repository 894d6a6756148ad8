"""Users and their bearer tokens. Only a token's sha256 is stored; the token is shown once."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.models import ApiToken, Role, User
from server.store.errors import Conflict


def token_sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, user: User) -> str:
    token = "ml_" + secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_sha256=token_sha256(token)))
    session.flush()
    return token


def create_user(session: Session, name: str, role: Role) -> tuple[User, str]:
    """A new user with one fresh token; returns the user and the plain token. Conflict if the name is taken."""
    name = name.strip()
    if not name:
        raise ValueError("a user needs a non-empty name")
    if session.scalar(select(User.id).where(User.name == name)) is not None:
        raise Conflict(f"a user named {name!r} already exists")
    user = User(name=name, role=Role(role))
    try:
        with session.begin_nested():
            session.add(user)
            session.flush()
    except IntegrityError as error:  # created at the same moment by someone else
        raise Conflict(f"a user named {name!r} already exists") from error
    return user, issue_token(session, user)


def user_for_token(session: Session, token: str) -> User | None:
    return session.scalar(
        select(User)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.token_sha256 == token_sha256(token), ApiToken.revoked.is_(False))
    )


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.id)))
