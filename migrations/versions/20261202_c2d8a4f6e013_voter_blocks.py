"""voter blocks: a committee blocks a voter in a campaign, with a reason

Revision ID: c2d8a4f6e013
Revises: a4d7c2e9f813
Create Date: 2026-12-02 06:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

import core.types


# revision identifiers, used by Alembic.
revision = 'c2d8a4f6e013'
down_revision = 'a4d7c2e9f813'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('voter_blocks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('voter_id', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('flag_id', sa.Integer(), nullable=True),
    sa.Column('blocked_by', sa.String(length=64), nullable=False),
    sa.Column('blocked_at', core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('lifted_at', core.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('lifted_by', sa.String(length=64), nullable=True),
    sa.Column('lift_reason', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_voter_blocks_campaign_id_campaigns')),
    sa.ForeignKeyConstraint(['voter_id'], ['voters.id'], name=op.f('fk_voter_blocks_voter_id_voters')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_voter_blocks'))
    )
    with op.batch_alter_table('voter_blocks', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_voter_blocks_campaign_id'), ['campaign_id'], unique=False)
        batch_op.create_index('ix_voter_blocks_campaign_voter', ['campaign_id', 'voter_id'], unique=False)


def downgrade():
    with op.batch_alter_table('voter_blocks', schema=None) as batch_op:
        batch_op.drop_index('ix_voter_blocks_campaign_voter')
        batch_op.drop_index(batch_op.f('ix_voter_blocks_campaign_id'))

    op.drop_table('voter_blocks')
