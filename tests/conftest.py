"""Shared fixtures: a real PostgreSQL database (MARSLABEL_TEST_DATABASE_URL), migrated once with Alembic and
emptied before each test that asks for it; the app against it; one user and token per role.

Isolation is by TRUNCATE rather than a rolled-back transaction, so that what a test commits is visible to
other connections and processes (threads in the queue tests, the Celery worker in integration tests).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, make_url, pool, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from server.app import create_app
from server.db import Base, get_sessionmaker, session_scope
from server.models import Role
from server.schema import upgrade_to_head
from server.settings import Settings
from server.store.users import create_user
from tests.factories import join_projects

DEFAULT_TEST_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/marslabel_test"


def _ensure_database(url: str) -> None:
    parsed = make_url(url)
    admin = create_engine(parsed.set(database="postgres"), poolclass=pool.NullPool, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            exists = connection.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": parsed.database}
            )
            if not exists:
                connection.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    finally:
        admin.dispose()


@pytest.fixture(scope="session")
def database_url() -> str:
    """The test database, created if missing and migrated to head once per session."""
    url = os.environ.get("MARSLABEL_TEST_DATABASE_URL", DEFAULT_TEST_DATABASE_URL)
    try:
        if make_url(url).get_backend_name() == "postgresql":
            _ensure_database(url)
        upgrade_to_head(url)
    except OperationalError as error:
        shown = make_url(url).render_as_string(hide_password=True)
        pytest.fail(
            f"cannot reach the test database {shown} ({error.orig}). Start PostgreSQL (scripts/services) or set "
            "MARSLABEL_TEST_DATABASE_URL; database tests fail rather than skip.",
            pytrace=False,
        )
    return url


def truncate_all(url: str) -> None:
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.begin() as connection:
            if engine.dialect.name == "postgresql":
                # A connection left open by an earlier test must not make this one hang.
                connection.execute(text("SET LOCAL lock_timeout = '20s'"))
                connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            else:
                for table in reversed(Base.metadata.sorted_tables):
                    connection.execute(table.delete())
    finally:
        engine.dispose()


@pytest.fixture
def db_url(database_url: str) -> str:
    """The test database, empty: every table truncated before the test."""
    truncate_all(database_url)
    return database_url


@pytest.fixture
def session(db_url: str) -> Iterator[Session]:
    """A session of its own for setting up and checking the database; commit what the app must see."""
    with get_sessionmaker(db_url)() as own_session:
        yield own_session


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=db_url, data_dir=tmp_path / "data")


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def role_tokens(db_url: str) -> dict[Role, str]:
    """One user per role, named after it; the plain bearer token of each. Each is a member of every project there
    is (tests.factories.make_project adds them to later ones), in the project role of their account."""
    tokens: dict[Role, str] = {}
    with session_scope(db_url) as own_session:
        for role in Role:
            user, tokens[role] = create_user(own_session, f"{role.value}-user", role)
            join_projects(own_session, user)
    return tokens


@pytest.fixture
def headers(role_tokens: dict[Role, str]) -> dict[Role, dict[str, str]]:
    """Authorization headers per role: `client.get(url, headers=headers[Role.lead])`."""
    return {role: {"Authorization": f"Bearer {token}"} for role, token in role_tokens.items()}
