"""appraisal: per-phone invitation cap and console screens

Revision ID: abcdef012349
Revises: 9cabcdef0f38
Create Date: 2026-12-03 00:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

import core.types

# revision identifiers, used by Alembic.
revision = "abcdef012349"
down_revision = "9cabcdef0f38"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "appraisal_phone_caps",
        sa.Column("programme_id", sa.Integer(), nullable=False),
        sa.Column("phone_hash", sa.String(length=64), nullable=False),
        sa.Column("sends", sa.JSON(), nullable=False),
        sa.Column("expires_at", core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["appraisal_programmes.id"],
            name=op.f("fk_appraisal_phone_caps_programme_id_appraisal_programmes"),
        ),
        sa.PrimaryKeyConstraint("programme_id", "phone_hash", name=op.f("pk_appraisal_phone_caps")),
    )
    op.create_index(
        op.f("ix_appraisal_phone_caps_expires_at"),
        "appraisal_phone_caps",
        ["expires_at"],
        unique=False,
    )
    with op.batch_alter_table("appraisal_programmes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("phone_cap", sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table("appraisal_programmes", schema=None) as batch_op:
        batch_op.drop_column("phone_cap")
    op.drop_index(op.f("ix_appraisal_phone_caps_expires_at"), table_name="appraisal_phone_caps")
    op.drop_table("appraisal_phone_caps")
