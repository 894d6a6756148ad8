"""Consensus: the share of images a project has labelled by two annotators, the agreement below which a pair goes
to review, and the pairs with their agreement.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("consensus_percent", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("consensus_threshold", sa.Float(), nullable=False, server_default="0.8"))
    op.create_table(
        "consensus_pairs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("first_mask_id", sa.Integer(), nullable=False),
        sa.Column("second_mask_id", sa.Integer(), nullable=False),
        sa.Column("first_author_id", sa.Integer(), nullable=True),
        sa.Column("second_author_id", sa.Integer(), nullable=True),
        sa.Column("miou", sa.Float(), nullable=True),
        sa.Column("class_iou", sa.JSON(), nullable=False),
        sa.Column("compared_fraction", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("disagreement", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name=op.f("fk_consensus_pairs_image_id_images"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["first_mask_id"],
            ["mask_versions.id"],
            name=op.f("fk_consensus_pairs_first_mask_id_mask_versions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["second_mask_id"],
            ["mask_versions.id"],
            name=op.f("fk_consensus_pairs_second_mask_id_mask_versions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["first_author_id"],
            ["users.id"],
            name=op.f("fk_consensus_pairs_first_author_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["second_author_id"],
            ["users.id"],
            name=op.f("fk_consensus_pairs_second_author_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consensus_pairs")),
        sa.UniqueConstraint("image_id", name=op.f("uq_consensus_pairs_image_id")),
    )


def downgrade() -> None:
    op.drop_table("consensus_pairs")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("consensus_threshold")
        batch.drop_column("consensus_percent")
