"""sequence floor outside Redis, rewind events, idempotency keys carried into votes

Revision ID: b7e1f0c3d911
Revises: c2d8a4f6e013
Create Date: 2026-12-02 09:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

import core.types


# revision identifiers, used by Alembic.
revision = 'b7e1f0c3d911'
down_revision = 'c2d8a4f6e013'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('sequence_floors',
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('epoch', sa.String(length=40), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('redis_id', sa.String(length=40), nullable=True),
    sa.Column('updated_at', core.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_sequence_floors_campaign_id_campaigns')),
    sa.PrimaryKeyConstraint('campaign_id', name=op.f('pk_sequence_floors'))
    )
    op.create_table('ledger_rewinds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('event_key', sa.String(length=40), nullable=False),
    sa.Column('detected_at', core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('detected_by', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.String(length=20), nullable=False),
    sa.Column('redis_seq', sa.BigInteger(), nullable=False),
    sa.Column('known_seq', sa.BigInteger(), nullable=False),
    sa.Column('lifted_to', sa.BigInteger(), nullable=False),
    sa.Column('possibly_lost', sa.BigInteger(), nullable=False),
    sa.Column('acknowledged_at', core.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_by', sa.String(length=64), nullable=True),
    sa.Column('acknowledgement', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_ledger_rewinds_campaign_id_campaigns')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_rewinds')),
    sa.UniqueConstraint('event_key', name=op.f('uq_ledger_rewinds_event_key'))
    )
    with op.batch_alter_table('ledger_rewinds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_rewinds_campaign_id'), ['campaign_id'], unique=False)
    with op.batch_alter_table('votes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('idempotency_key', sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table('votes', schema=None) as batch_op:
        batch_op.drop_column('idempotency_key')
    with op.batch_alter_table('ledger_rewinds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_rewinds_campaign_id'))
    op.drop_table('ledger_rewinds')
    op.drop_table('sequence_floors')
