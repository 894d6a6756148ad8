"""The database schema's version: bring it to Alembic's head, or check that it is there before serving."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, make_url, pool

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
MIGRATE_COMMAND = "marslabel migrate"


class SchemaNotCurrentError(RuntimeError):
    """The database is not at the migrations' head: the service must not start on it."""


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # Config values go through configparser interpolation: a literal % (e.g. in a password) must be doubled.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None, "migrations/versions holds no revision"
    return head


def _ensure_sqlite_folder(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def upgrade_to_head(url: str) -> str:
    """Apply every migration not yet applied; returns the revision the database is now at."""
    _ensure_sqlite_folder(url)
    command.upgrade(alembic_config(url), "head")
    return head_revision()


def current_revision(url: str) -> str | None:
    _ensure_sqlite_folder(url)
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def check_schema(url: str) -> None:
    """Raise SchemaNotCurrentError, naming the command that fixes it, unless the database is at head."""
    head = head_revision()
    current = current_revision(url)
    if current == head:
        return
    shown = make_url(url).render_as_string(hide_password=True)
    if current is None:
        raise SchemaNotCurrentError(
            f"The database {shown} has no marslabel schema yet. Run `{MIGRATE_COMMAND}` to create it."
        )
    raise SchemaNotCurrentError(
        f"The database {shown} is at schema revision {current}, this version of marslabel needs {head}. "
        f"Run `{MIGRATE_COMMAND}` to upgrade it."
    )
