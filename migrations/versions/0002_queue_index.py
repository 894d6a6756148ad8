"""A partial index for the annotation queue: unlabeled pool images of a project in import order.

Without it, `next` scans past every already-labeled image at the front of the import order, so the claim
got slower with every label saved.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 13:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUEUE_WHERE = sa.text("status = 'unlabeled' AND split = 'pool'")


def upgrade() -> None:
    op.create_index(
        "ix_images_queue",
        "images",
        ["project_id", "import_order", "id"],
        postgresql_where=QUEUE_WHERE,
        sqlite_where=QUEUE_WHERE,
    )


def downgrade() -> None:
    op.drop_index("ix_images_queue", table_name="images")
