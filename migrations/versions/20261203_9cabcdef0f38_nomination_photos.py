"""up to six photos per nomination, one of them the cover

Revision ID: 9cabcdef0f38
Revises: 8b9cabcdde27
Create Date: 2026-12-03 00:00:00.000000

"""

import sqlalchemy as sa
from alembic import op

import core.types  # noqa: F401  (the revision template's import, kept for its siblings)

# revision identifiers, used by Alembic.
revision = "9cabcdef0f38"
down_revision = "8b9cabcdde27"
branch_labels = None
depends_on = None

_assets = sa.table(
    "media_assets",
    sa.column("id", sa.Integer),
    sa.column("nomination_id", sa.Integer),
    sa.column("kind", sa.String),
    sa.column("status", sa.String),
    sa.column("is_current", sa.Boolean),
    sa.column("is_cover", sa.Boolean),
)


def upgrade():
    with op.batch_alter_table("media_assets", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("is_cover", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.create_index(
        "uq_media_assets_cover",
        "media_assets",
        ["nomination_id"],
        unique=True,
        sqlite_where=sa.text("is_cover"),
        postgresql_where=sa.text("is_cover"),
    )
    # Each nomination's current photo becomes the cover of its gallery (the newest, should a
    # nomination somehow hold two).
    newest = (
        sa.select(sa.func.max(_assets.c.id))
        .where(
            _assets.c.kind == "photo",
            _assets.c.status == "ready",
            _assets.c.is_current.is_(sa.true()),
        )
        .group_by(_assets.c.nomination_id)
    )
    op.execute(_assets.update().where(_assets.c.id.in_(newest)).values(is_cover=sa.true()))
    # Any other current photo leaves the gallery as the one-photo rule had it.
    op.execute(
        _assets.update()
        .where(
            _assets.c.kind == "photo",
            _assets.c.is_current.is_(sa.true()),
            _assets.c.is_cover.is_(sa.false()),
        )
        .values(is_current=sa.false(), status="replaced")
    )


def downgrade():
    # Back to one current photo per nomination: the cover stays, the rest of the gallery and the
    # removed photos read as replaced.
    op.execute(
        _assets.update()
        .where(
            _assets.c.kind == "photo",
            _assets.c.is_cover.is_(sa.false()),
            sa.or_(_assets.c.is_current.is_(sa.true()), _assets.c.status == "removed"),
        )
        .values(is_current=sa.false(), status="replaced")
    )
    op.drop_index("uq_media_assets_cover", table_name="media_assets")
    with op.batch_alter_table("media_assets", schema=None) as batch_op:
        batch_op.drop_column("is_cover")
