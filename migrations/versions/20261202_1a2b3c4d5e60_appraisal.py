"""appraisal: satisfaction programmes, encounters, invitations, ratings (placeholder, filled by its work in progress)

Revision ID: 1a2b3c4d5e60
Revises: f5b1c3d4e6a7
Create Date: 2026-12-02 17:20:00.000000

"""

# revision identifiers, used by Alembic.
revision = "1a2b3c4d5e60"
down_revision = "f5b1c3d4e6a7"
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
