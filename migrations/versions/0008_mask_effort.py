"""Annotation effort per mask version: the effort the web app counted for a human save (JSON, NULL when none was
sent) and the saved mask's agreement with the version it started from (NULL without one).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("mask_versions") as batch:
        batch.add_column(sa.Column("effort", sa.JSON(none_as_null=True), nullable=True))
        batch.add_column(sa.Column("base_agreement", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("mask_versions") as batch:
        batch.drop_column("base_agreement")
        batch.drop_column("effort")
