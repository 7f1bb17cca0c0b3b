"""voter phones: which voter a verified phone belongs to (one phone, one voter), in the database

Until now the claim of a WeChat voter upgraded by a phone code lived only in Redis
(``<prefix>:sms:owner:<phone hash>``, voting/phone.py). Those Redis claims are not copied: they
were never in production, and a migration does not read Redis. What the database already knows
is copied: every ``sms`` voter's subject is its phone's keyed hash (64 hex digits), so each
such voter gets its row, verified at the time the voter was made.

Revision ID: f5b1c3d4e6a7
Revises: e4a0b2c3d5f6
Create Date: 2026-12-02 12:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

import core.types

# revision identifiers, used by Alembic.
revision = "f5b1c3d4e6a7"
down_revision = "e4a0b2c3d5f6"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "voter_phones",
        sa.Column("phone_hash", sa.String(length=64), nullable=False),
        sa.Column("voter_id", sa.Integer(), nullable=False),
        sa.Column("verified_at", core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["voter_id"], ["voters.id"], name=op.f("fk_voter_phones_voter_id_voters")
        ),
        sa.PrimaryKeyConstraint("phone_hash", name=op.f("pk_voter_phones")),
        sa.UniqueConstraint("voter_id", name=op.f("uq_voter_phones_voter_id")),
    )

    op.execute(
        """
        INSERT INTO voter_phones (phone_hash, voter_id, verified_at)
        SELECT subject, id, created_at FROM voters
        WHERE provider = 'sms' AND length(subject) = 64
        """
    )


def downgrade():
    op.drop_table("voter_phones")
