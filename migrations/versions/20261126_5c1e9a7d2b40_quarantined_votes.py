"""quarantined votes: ledger entries the database refused, set aside so the drain goes on

Revision ID: 5c1e9a7d2b40
Revises: 7b2c4e91a0d3
Create Date: 2026-11-26 09:30:00.000000

"""
from alembic import op
import sqlalchemy as sa

import core.types


# revision identifiers, used by Alembic.
revision = '5c1e9a7d2b40'
down_revision = '7b2c4e91a0d3'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('quarantined_votes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('stream_id', sa.String(length=48), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=True),
    sa.Column('vote_id', sa.String(length=64), nullable=True),
    sa.Column('seq', sa.BigInteger(), nullable=True),
    sa.Column('fields', sa.JSON(), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('quarantined_at', core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('resolved_at', core.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('resolved_by', sa.String(length=64), nullable=True),
    sa.Column('resolution', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_quarantined_votes_campaign_id_campaigns')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quarantined_votes')),
    sa.UniqueConstraint('stream_id', name=op.f('uq_quarantined_votes_stream_id'))
    )
    with op.batch_alter_table('quarantined_votes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_quarantined_votes_campaign_id'), ['campaign_id'], unique=False)


def downgrade():
    with op.batch_alter_table('quarantined_votes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_quarantined_votes_campaign_id'))

    op.drop_table('quarantined_votes')
