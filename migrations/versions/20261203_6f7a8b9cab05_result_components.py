"""result components: satisfaction, 同行互评 and 领导点评 beside votes and the jury

Revision ID: 6f7a8b9cab05
Revises: 5e6f7a8b9ca4
Create Date: 2026-12-03 00:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "6f7a8b9cab05"
down_revision = "5e6f7a8b9ca4"
branch_labels = None
depends_on = None


_ENTRY_COLUMNS = (
    ("peer_score", sa.Numeric(7, 2)),
    ("peer_count", sa.Integer()),
    ("leader_score", sa.Numeric(7, 2)),
    ("leader_count", sa.Integer()),
    ("satisfaction_answers", sa.Integer()),
    ("satisfaction_positive", sa.Integer()),
)


def upgrade():
    # Existing assignments and sheets are the jury's.
    for table in ("judge_assignments", "score_sheets"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("panel", sa.String(length=10), nullable=False, server_default="jury")
            )
    with op.batch_alter_table("result_entries") as batch:
        for name, type_ in _ENTRY_COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=False, server_default="0"))
        batch.add_column(sa.Column("satisfaction_score", sa.Numeric(7, 2), nullable=True))


def downgrade():
    with op.batch_alter_table("result_entries") as batch:
        batch.drop_column("satisfaction_score")
        for name, _ in reversed(_ENTRY_COLUMNS):
            batch.drop_column(name)
    for table in ("score_sheets", "judge_assignments"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("panel")
