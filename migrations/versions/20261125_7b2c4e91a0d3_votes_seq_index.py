"""votes: index on (campaign_id, seq) for reconciliation's gap search

Revision ID: 7b2c4e91a0d3
Revises: 3fd95ff51a26
Create Date: 2026-11-25 14:10:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '7b2c4e91a0d3'
down_revision = '3fd95ff51a26'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_votes_campaign_seq', 'votes', ['campaign_id', 'seq'], unique=False)


def downgrade():
    op.drop_index('ix_votes_campaign_seq', table_name='votes')
