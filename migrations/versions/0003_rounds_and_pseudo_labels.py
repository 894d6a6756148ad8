"""Active-learning rounds end to end: a round's job and labelled count, one active round per project,
auto-round and pseudo-label settings on the project, and a confidence on model masks.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 14:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE_ROUND_WHERE = sa.text("status IN ('queued', 'running')")


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("auto_round_after", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("round_defaults", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("pseudo_label_threshold", sa.Float(), nullable=False, server_default="0"))
    with op.batch_alter_table("mask_versions") as batch:
        batch.add_column(sa.Column("confidence", sa.Float(), nullable=True))
    with op.batch_alter_table("rounds") as batch:
        batch.add_column(sa.Column("job_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("labeled_count", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("trigger", sa.String(16), nullable=False, server_default="manual"))
        batch.create_foreign_key("fk_rounds_job_id_jobs", "jobs", ["job_id"], ["id"], ondelete="SET NULL")
    op.create_index(
        "ux_rounds_one_active",
        "rounds",
        ["project_id"],
        unique=True,
        postgresql_where=ACTIVE_ROUND_WHERE,
        sqlite_where=ACTIVE_ROUND_WHERE,
    )


def downgrade() -> None:
    op.drop_index("ux_rounds_one_active", table_name="rounds")
    with op.batch_alter_table("rounds") as batch:
        batch.drop_constraint("fk_rounds_job_id_jobs", type_="foreignkey")
        batch.drop_column("trigger")
        batch.drop_column("labeled_count")
        batch.drop_column("job_id")
    with op.batch_alter_table("mask_versions") as batch:
        batch.drop_column("confidence")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("pseudo_label_threshold")
        batch.drop_column("round_defaults")
        batch.drop_column("auto_round_after")
