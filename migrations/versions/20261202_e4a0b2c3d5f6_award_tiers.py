"""award tiers: a category's ordered tiers (十佳, 优秀 …), each result entry's tier, tier moves

Revision ID: e4a0b2c3d5f6
Revises: b7e1f0c3d911
Create Date: 2026-12-02 11:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'e4a0b2c3d5f6'
down_revision = 'b7e1f0c3d911'
branch_labels = None
depends_on = None


def upgrade():
    # Nullable, no default: every existing category keeps its one implicit tier, and every
    # existing entry and adjustment has none.
    with op.batch_alter_table('categories', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tiers', sa.JSON(), nullable=True))
    with op.batch_alter_table('result_entries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tier', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('tier_name', sa.String(length=20), nullable=True))
    with op.batch_alter_table('result_adjustments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tier', sa.String(length=20), nullable=True))


def downgrade():
    with op.batch_alter_table('result_adjustments', schema=None) as batch_op:
        batch_op.drop_column('tier')
    with op.batch_alter_table('result_entries', schema=None) as batch_op:
        batch_op.drop_column('tier_name')
        batch_op.drop_column('tier')
    with op.batch_alter_table('categories', schema=None) as batch_op:
        batch_op.drop_column('tiers')
