"""Migrations: `alembic upgrade head` on PostgreSQL and SQLite gives exactly the models' schema; the app
refuses an unmigrated or outdated database and names the command that fixes it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, pool, text

from server.app import create_app
from server.db import Base
from server.schema import (
    SchemaNotCurrentError,
    alembic_config,
    check_schema,
    current_revision,
    head_revision,
    upgrade_to_head,
)
from server.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def schema_differences(url: str) -> list[object]:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()


def test_postgresql_schema_matches_models(database_url: str) -> None:
    assert schema_differences(database_url) == []
    check_schema(database_url)


def test_sqlite_migration_matches_models(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nested' / 'fresh.sqlite3'}"
    assert upgrade_to_head(url) == head_revision()
    assert schema_differences(url) == []
    check_schema(url)
    upgrade_to_head(url)  # a second run is a no-op


def test_alembic_command_line_on_sqlite(tmp_path: Path) -> None:
    database = tmp_path / "cli.sqlite3"
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(REPO / "alembic.ini"), "upgrade", "head"],
        cwd=tmp_path,
        env={"MARSLABEL_DATABASE_URL": f"sqlite:///{database}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    check_schema(f"sqlite:///{database}")


def test_app_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)  # embedded default: a SQLite file nobody has migrated
    with pytest.raises(SchemaNotCurrentError, match="marslabel migrate"):
        create_app(settings)


def test_app_refuses_an_outdated_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    upgrade_to_head(url)
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '0000_older'"))
    engine.dispose()
    with pytest.raises(SchemaNotCurrentError, match=r"revision 0000_older.*marslabel migrate"):
        create_app(Settings(database_url=url))


def test_sqlite_downgrade_to_base_and_back(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'roundtrip.sqlite3'}"
    upgrade_to_head(url)
    command.downgrade(alembic_config(url), "base")
    assert current_revision(url) is None
    with pytest.raises(SchemaNotCurrentError, match="no marslabel schema"):
        check_schema(url)
    upgrade_to_head(url)
    assert schema_differences(url) == []
