"""Alembic environment. The URL is the one set in the Alembic config (tests, server.schema) or else the
service's own, get_settings().resolved_database_url."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

import server.models  # noqa: F401  (registers every table on Base.metadata)
from server.db import Base
from server.settings import get_settings

config = context.config
target_metadata = Base.metadata


def database_url() -> str:
    return config.get_main_option("sqlalchemy.url") or get_settings().resolved_database_url


def run_migrations_offline() -> None:
    url = database_url()
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=url.startswith("sqlite"),
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = database_url()
    connectable = config.attributes.get("connection")
    if connectable is not None:
        _run(connectable, url)
        return
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            _run(connection, url)
    finally:
        engine.dispose()


def _run(connection, url: str) -> None:  # type: ignore[no-untyped-def]
    # SQLite cannot ALTER most things in place: batch mode rebuilds the table instead.
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=url.startswith("sqlite"),
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
