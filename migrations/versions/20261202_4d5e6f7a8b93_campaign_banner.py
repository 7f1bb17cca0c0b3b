"""campaign banner: the H5 page's banner image, uploaded from the console's settings

Revision ID: 4d5e6f7a8b93
Revises: 3c4d5e6f7a82
Create Date: 2026-12-02 17:20:00.000000

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "4d5e6f7a8b93"
down_revision = "3c4d5e6f7a82"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.add_column(sa.Column("banner_key", sa.String(length=40), nullable=True))


def downgrade():
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_column("banner_key")
