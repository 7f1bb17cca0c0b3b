"""result adjustments: the committee's exclusions and promotions per version, carried forward

Revision ID: a4d7c2e9f813
Revises: 5c1e9a7d2b40
Create Date: 2026-11-26 14:00:00.000000

"""
from alembic import op
import sqlalchemy as sa

import core.types


# revision identifiers, used by Alembic.
revision = 'a4d7c2e9f813'
down_revision = '5c1e9a7d2b40'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('result_adjustments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=False),
    sa.Column('nomination_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=40), nullable=False),
    sa.Column('category_code', sa.String(length=40), nullable=False),
    sa.Column('action', sa.String(length=10), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', core.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('made_in_version', sa.Integer(), nullable=False),
    sa.Column('carried_from_version', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('not_applied_reason', sa.Text(), nullable=True),
    sa.Column('removed_by', sa.String(length=64), nullable=True),
    sa.Column('removed_at', core.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('removed_reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['nomination_id'], ['nominations.id'], name=op.f('fk_result_adjustments_nomination_id_nominations')),
    sa.ForeignKeyConstraint(['version_id'], ['result_versions.id'], name=op.f('fk_result_adjustments_version_id_result_versions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_result_adjustments'))
    )
    with op.batch_alter_table('result_adjustments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_result_adjustments_version_id'), ['version_id'], unique=False)

    # The adjustments made so far lived only on the entries: give each its own row (author and
    # time unknown before this table existed: the version's author and creation time stand in).
    op.execute(
        """
        INSERT INTO result_adjustments (version_id, nomination_id, number, name, category_code,
            action, reason, created_by, created_at, made_in_version, status)
        SELECT e.version_id, e.nomination_id, e.number, e.name, e.category_code, e.adjustment,
            COALESCE(e.adjustment_reason, ''), v.created_by, v.created_at, v.version, 'applied'
        FROM result_entries e JOIN result_versions v ON v.id = e.version_id
        WHERE e.adjustment IS NOT NULL
        """
    )


def downgrade():
    with op.batch_alter_table('result_adjustments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_result_adjustments_version_id'))

    op.drop_table('result_adjustments')
