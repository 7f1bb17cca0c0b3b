"""stamped recommendation forms (盖章推荐表) per level

Revision ID: 7a8b9cabcd16
Revises: 6f7a8b9cab05
Create Date: 2026-12-03 00:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

import core.types

# revision identifiers, used by Alembic.
revision = "7a8b9cabcd16"
down_revision = "6f7a8b9cab05"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "level_form_rules",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("unit_level", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_level_form_rules_campaign_id_campaigns"),
        ),
        sa.PrimaryKeyConstraint("campaign_id", "unit_level", name=op.f("pk_level_form_rules")),
    )
    op.create_table(
        "level_forms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("nomination_id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("unit_level", sa.String(length=20), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("storage_key", sa.String(length=80), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("pages", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("original_name", sa.String(length=200), nullable=True),
        sa.Column("is_current", sa.Boolean(), nullable=False),
        sa.Column("uploaded_by_id", sa.Integer(), nullable=True),
        sa.Column("uploaded_by", sa.String(length=80), nullable=False),
        sa.Column("uploaded_at", core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("replaced_at", core.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_level_forms_campaign_id_campaigns")
        ),
        sa.ForeignKeyConstraint(
            ["nomination_id"],
            ["nominations.id"],
            name=op.f("fk_level_forms_nomination_id_nominations"),
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_level_forms_unit_id_units")
        ),
        sa.ForeignKeyConstraint(
            ["uploaded_by_id"],
            ["accounts.id"],
            name=op.f("fk_level_forms_uploaded_by_id_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_level_forms")),
        sa.UniqueConstraint("storage_key", name=op.f("uq_level_forms_storage_key")),
    )
    with op.batch_alter_table("level_forms", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_level_forms_campaign_id"), ["campaign_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_level_forms_nomination_id"), ["nomination_id"], unique=False
        )


def downgrade():
    with op.batch_alter_table("level_forms", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_level_forms_nomination_id"))
        batch_op.drop_index(batch_op.f("ix_level_forms_campaign_id"))
    op.drop_table("level_forms")
    op.drop_table("level_form_rules")
