"""Users: admins create them (token shown once, only its sha256 kept); everyone can see themselves."""

from __future__ import annotations

import hashlib

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.models import ApiToken, Role, User


def test_admin_creates_a_user_whose_token_works(client: TestClient, headers: dict, session: Session) -> None:
    created = client.post("/api/v1/users", json={"name": "ada", "role": "annotator"}, headers=headers[Role.admin])
    assert created.status_code == 201, created.text
    token = created.json()["token"]
    me = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert (me["name"], me["role"]) == ("ada", "annotator") and "token" not in me
    user = session.scalar(select(User).where(User.name == "ada"))
    assert user is not None
    stored = session.scalars(select(ApiToken.token_sha256).where(ApiToken.user_id == user.id)).all()
    assert stored == [hashlib.sha256(token.encode()).hexdigest()]
    again = client.post("/api/v1/users", json={"name": "ada", "role": "client"}, headers=headers[Role.admin])
    assert again.status_code == 409 and "ada" in again.json()["detail"]
    names = [u["name"] for u in client.get("/api/v1/users", headers=headers[Role.admin]).json()]
    assert "ada" in names and len(names) == 5


def test_revoked_token_is_401(client: TestClient, headers: dict, session: Session) -> None:
    assert client.get("/api/v1/users/me", headers=headers[Role.client]).status_code == 200
    for token in session.scalars(select(ApiToken)):
        token.revoked = True
    session.commit()
    answer = client.get("/api/v1/users/me", headers=headers[Role.client])
    assert answer.status_code == 401 and answer.json()["detail"] == "invalid or revoked token"


def test_unknown_role_is_422(client: TestClient, headers: dict) -> None:
    answer = client.post("/api/v1/users", json={"name": "x", "role": "overlord"}, headers=headers[Role.admin])
    assert answer.status_code == 422 and "role" in answer.json()["detail"]
