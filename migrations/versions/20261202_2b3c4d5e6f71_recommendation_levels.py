"""recommendation levels: chain, quotas, deadlines, decisions

Revision ID: 2b3c4d5e6f71
Revises: 1a2b3c4d5e60
Create Date: 2026-12-02 17:20:00.000000

"""
from alembic import op
import sqlalchemy as sa

import core.types


# revision identifiers, used by Alembic.
revision = "2b3c4d5e6f71"
down_revision = "1a2b3c4d5e60"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('recommendation_levels',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('unit_level', sa.String(length=20), nullable=False),
    sa.Column('deadline', core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('extended_at', core.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', core.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_recommendation_levels_campaign_id_campaigns')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recommendation_levels')),
    sa.UniqueConstraint('campaign_id', 'position', name=op.f('uq_recommendation_levels_campaign_id_position')),
    sa.UniqueConstraint('campaign_id', 'unit_level', name=op.f('uq_recommendation_levels_campaign_id_unit_level'))
    )
    with op.batch_alter_table('recommendation_levels', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recommendation_levels_campaign_id'), ['campaign_id'], unique=False)

    op.create_table('level_quotas',
    sa.Column('level_id', sa.Integer(), nullable=False),
    sa.Column('category_id', sa.Integer(), nullable=False),
    sa.Column('quota', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['category_id'], ['categories.id'], name=op.f('fk_level_quotas_category_id_categories')),
    sa.ForeignKeyConstraint(['level_id'], ['recommendation_levels.id'], name=op.f('fk_level_quotas_level_id_recommendation_levels')),
    sa.PrimaryKeyConstraint('level_id', 'category_id', name=op.f('pk_level_quotas'))
    )
    op.create_table('unit_quotas',
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=False),
    sa.Column('category_id', sa.Integer(), nullable=False),
    sa.Column('quota', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_unit_quotas_campaign_id_campaigns')),
    sa.ForeignKeyConstraint(['category_id'], ['categories.id'], name=op.f('fk_unit_quotas_category_id_categories')),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_unit_quotas_unit_id_units')),
    sa.PrimaryKeyConstraint('campaign_id', 'unit_id', 'category_id', name=op.f('pk_unit_quotas'))
    )
    op.create_table('level_decisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('nomination_id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('category_id', sa.Integer(), nullable=False),
    sa.Column('unit_id', sa.Integer(), nullable=True),
    sa.Column('unit_level', sa.String(length=20), nullable=False),
    sa.Column('decision', sa.String(length=20), nullable=False),
    sa.Column('returned_to', sa.String(length=20), nullable=True),
    sa.Column('holds_place', sa.Boolean(), nullable=False),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('actor_name', sa.String(length=80), nullable=False),
    sa.Column('actor_role', sa.String(length=20), nullable=False),
    sa.Column('at', core.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['actor_id'], ['accounts.id'], name=op.f('fk_level_decisions_actor_id_accounts')),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_level_decisions_campaign_id_campaigns')),
    sa.ForeignKeyConstraint(['category_id'], ['categories.id'], name=op.f('fk_level_decisions_category_id_categories')),
    sa.ForeignKeyConstraint(['nomination_id'], ['nominations.id'], name=op.f('fk_level_decisions_nomination_id_nominations')),
    sa.ForeignKeyConstraint(['unit_id'], ['units.id'], name=op.f('fk_level_decisions_unit_id_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_level_decisions'))
    )
    with op.batch_alter_table('level_decisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_level_decisions_campaign_id'), ['campaign_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_level_decisions_nomination_id'), ['nomination_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_level_decisions_unit_id'), ['unit_id'], unique=False)

    with op.batch_alter_table('nominations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('at_level', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('at_unit_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_nominations_at_unit_id'), ['at_unit_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_nominations_at_unit_id_units'), 'units', ['at_unit_id'], ['id'])


def downgrade():
    with op.batch_alter_table('nominations', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_nominations_at_unit_id_units'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_nominations_at_unit_id'))
        batch_op.drop_column('at_unit_id')
        batch_op.drop_column('at_level')

    with op.batch_alter_table('level_decisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_level_decisions_unit_id'))
        batch_op.drop_index(batch_op.f('ix_level_decisions_nomination_id'))
        batch_op.drop_index(batch_op.f('ix_level_decisions_campaign_id'))

    op.drop_table('level_decisions')
    op.drop_table('unit_quotas')
    op.drop_table('level_quotas')
    with op.batch_alter_table('recommendation_levels', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recommendation_levels_campaign_id'))

    op.drop_table('recommendation_levels')
