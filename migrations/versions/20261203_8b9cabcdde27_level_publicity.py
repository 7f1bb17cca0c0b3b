"""公示 of each recommendation level's list

Revision ID: 8b9cabcdde27
Revises: 7a8b9cabcd16
Create Date: 2026-12-03 00:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

import core.types

# revision identifiers, used by Alembic.
revision = "8b9cabcdde27"
down_revision = "7a8b9cabcd16"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "level_publicities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("unit_level", sa.String(length=20), nullable=False),
        sa.Column("unit_name", sa.String(length=120), nullable=False),
        sa.Column("starts_at", core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("working_days", sa.Boolean(), nullable=False),
        sa.Column("contact", sa.Text(), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("opened_by", sa.String(length=80), nullable=False),
        sa.Column("opened_role", sa.String(length=20), nullable=False),
        sa.Column("created_at", core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_at", core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("withdrawn_by", sa.String(length=80), nullable=True),
        sa.Column("withdraw_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_level_publicities_campaign_id_campaigns"),
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_level_publicities_unit_id_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_level_publicities")),
    )
    with op.batch_alter_table("level_publicities", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_level_publicities_campaign_id"), ["campaign_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_level_publicities_unit_id"), ["unit_id"], unique=False)


def downgrade():
    with op.batch_alter_table("level_publicities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_level_publicities_unit_id"))
        batch_op.drop_index(batch_op.f("ix_level_publicities_campaign_id"))

    op.drop_table("level_publicities")
