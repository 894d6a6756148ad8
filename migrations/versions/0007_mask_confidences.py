"""Per-pixel confidence of model masks: an 8-bit PNG per model mask version (the top class probability × 255).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mask_confidences",
        sa.Column("mask_version_id", sa.Integer(), nullable=False),
        sa.Column("png", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["mask_version_id"],
            ["mask_versions.id"],
            name=op.f("fk_mask_confidences_mask_version_id_mask_versions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("mask_version_id", name=op.f("pk_mask_confidences")),
    )


def downgrade() -> None:
    op.drop_table("mask_confidences")
