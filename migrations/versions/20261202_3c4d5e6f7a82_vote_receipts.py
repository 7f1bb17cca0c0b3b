"""vote receipts: the published leaves and Merkle trees of counted votes (docs/receipts.md)

Revision ID: 3c4d5e6f7a82
Revises: 2b3c4d5e6f71
Create Date: 2026-12-02 17:20:00.000000

"""
from alembic import op
import sqlalchemy as sa

import core.types


# revision identifiers, used by Alembic.
revision = "3c4d5e6f7a82"
down_revision = "2b3c4d5e6f71"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('receipt_publications',
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('started_at', core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('published_at', core.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('chain_index', sa.BigInteger(), nullable=False),
    sa.Column('chain_head', sa.String(length=64), nullable=False),
    sa.Column('root', sa.String(length=64), nullable=True),
    sa.Column('leaf_count', sa.BigInteger(), nullable=False),
    sa.Column('nominees', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_receipt_publications_campaign_id_campaigns')),
    sa.PrimaryKeyConstraint('campaign_id', name=op.f('pk_receipt_publications'))
    )
    op.create_table('receipt_nodes',
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('nominee_number', sa.String(length=16), nullable=False),
    sa.Column('level', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('position', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('vote_id', sa.String(length=40), nullable=True),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_receipt_nodes_campaign_id_campaigns')),
    sa.PrimaryKeyConstraint('campaign_id', 'nominee_number', 'level', 'position', name=op.f('pk_receipt_nodes'))
    )
    with op.batch_alter_table('receipt_nodes', schema=None) as batch_op:
        batch_op.create_index('ix_receipt_nodes_campaign_vote', ['campaign_id', 'vote_id'], unique=False)


def downgrade():
    with op.batch_alter_table('receipt_nodes', schema=None) as batch_op:
        batch_op.drop_index('ix_receipt_nodes_campaign_vote')

    op.drop_table('receipt_nodes')
    op.drop_table('receipt_publications')
