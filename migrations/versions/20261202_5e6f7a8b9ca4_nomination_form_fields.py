"""nomination form fields: a campaign's extra fields (推荐表 填报项) and their values

Revision ID: 5e6f7a8b9ca4
Revises: 4d5e6f7a8b93
Create Date: 2026-12-02 18:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

import core.types

# revision identifiers, used by Alembic.
revision = "5e6f7a8b9ca4"
down_revision = "4d5e6f7a8b93"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "nomination_form_fields",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=30), nullable=False),
        sa.Column("label", sa.String(length=20), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("max_length", sa.Integer(), nullable=True),
        sa.Column("min_value", sa.Integer(), nullable=True),
        sa.Column("max_value", sa.Integer(), nullable=True),
        sa.Column("options", sa.JSON(), nullable=True),
        sa.Column("updated_at", core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("campaign_id", "key"),
    )
    with op.batch_alter_table("nomination_form_fields", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_nomination_form_fields_campaign_id"), ["campaign_id"], unique=False
        )
    with op.batch_alter_table("nominations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("extra", sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table("nominations", schema=None) as batch_op:
        batch_op.drop_column("extra")
    with op.batch_alter_table("nomination_form_fields", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_nomination_form_fields_campaign_id"))
    op.drop_table("nomination_form_fields")
