"""appraisal: satisfaction programmes (群众评议) — programmes, windows, uploads, encounters with
encrypted phones, invitations, ratings, opt-outs and cases

Revision ID: 1a2b3c4d5e60
Revises: f5b1c3d4e6a7
Create Date: 2026-12-02 17:20:00.000000

"""

import sqlalchemy as sa
from alembic import op

import core.types

# revision identifiers, used by Alembic.
revision = "1a2b3c4d5e60"
down_revision = "f5b1c3d4e6a7"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "appraisal_opt_outs",
        sa.Column("phone_hash", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("created_at", core.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("phone_hash", name=op.f("pk_appraisal_opt_outs")),
    )
    op.create_table(
        "appraisal_programmes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("title", sa.String(length=120), nullable=False),
        sa.Column("bureau_unit_id", sa.Integer(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("retention_days", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("created_at", core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["bureau_unit_id"],
            ["units.id"],
            name=op.f("fk_appraisal_programmes_bureau_unit_id_units"),
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_appraisal_programmes_campaign_id_campaigns"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appraisal_programmes")),
        sa.UniqueConstraint("code", name=op.f("uq_appraisal_programmes_code")),
    )
    op.create_index(
        op.f("ix_appraisal_programmes_bureau_unit_id"),
        "appraisal_programmes",
        ["bureau_unit_id"],
        unique=False,
    )
    op.create_table(
        "appraisal_uploads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("programme_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("rows_total", sa.Integer(), nullable=False),
        sa.Column("rows_accepted", sa.Integer(), nullable=False),
        sa.Column("refused", sa.JSON(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["appraisal_programmes.id"],
            name=op.f("fk_appraisal_uploads_programme_id_appraisal_programmes"),
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_appraisal_uploads_unit_id_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appraisal_uploads")),
    )
    op.create_index(
        op.f("ix_appraisal_uploads_programme_id"),
        "appraisal_uploads",
        ["programme_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_appraisal_uploads_unit_id"), "appraisal_uploads", ["unit_id"], unique=False
    )
    op.create_table(
        "appraisal_windows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("programme_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("created_at", core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["appraisal_programmes.id"],
            name=op.f("fk_appraisal_windows_programme_id_appraisal_programmes"),
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_appraisal_windows_unit_id_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appraisal_windows")),
        sa.UniqueConstraint("token", name=op.f("uq_appraisal_windows_token")),
    )
    op.create_index(
        op.f("ix_appraisal_windows_programme_id"),
        "appraisal_windows",
        ["programme_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_appraisal_windows_unit_id"), "appraisal_windows", ["unit_id"], unique=False
    )
    op.create_table(
        "appraisal_encounters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("programme_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("upload_id", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=10), nullable=False),
        sa.Column("phone_cipher", sa.String(length=200), nullable=True),
        sa.Column("phone_hash", sa.String(length=64), nullable=True),
        sa.Column("phone_masked", sa.String(length=16), nullable=False),
        sa.Column("dedupe_key", sa.String(length=64), nullable=True),
        sa.Column("encounter_date", sa.Date(), nullable=False),
        sa.Column("department", sa.String(length=60), nullable=False),
        sa.Column("staff_name", sa.String(length=40), nullable=True),
        sa.Column("staff_number", sa.String(length=40), nullable=True),
        sa.Column("nomination_id", sa.Integer(), nullable=True),
        sa.Column("link_nonce", sa.String(length=32), nullable=False),
        sa.Column("purge_after", core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("purged_at", core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["nomination_id"],
            ["nominations.id"],
            name=op.f("fk_appraisal_encounters_nomination_id_nominations"),
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["appraisal_programmes.id"],
            name=op.f("fk_appraisal_encounters_programme_id_appraisal_programmes"),
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_appraisal_encounters_unit_id_units")
        ),
        sa.ForeignKeyConstraint(
            ["upload_id"],
            ["appraisal_uploads.id"],
            name=op.f("fk_appraisal_encounters_upload_id_appraisal_uploads"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appraisal_encounters")),
        sa.UniqueConstraint("programme_id", "dedupe_key", name="uq_appraisal_encounters_dedupe"),
    )
    op.create_index(
        op.f("ix_appraisal_encounters_nomination_id"),
        "appraisal_encounters",
        ["nomination_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_appraisal_encounters_phone_hash"),
        "appraisal_encounters",
        ["phone_hash"],
        unique=False,
    )
    op.create_index(
        op.f("ix_appraisal_encounters_programme_id"),
        "appraisal_encounters",
        ["programme_id"],
        unique=False,
    )
    op.create_index(
        "ix_appraisal_encounters_purge",
        "appraisal_encounters",
        ["purge_after", "purged_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_appraisal_encounters_unit_id"), "appraisal_encounters", ["unit_id"], unique=False
    )
    op.create_table(
        "appraisal_invitations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("encounter_id", sa.Integer(), nullable=False),
        sa.Column("programme_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("claimed_at", core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("provider", sa.String(length=20), nullable=True),
        sa.Column("message_id", sa.String(length=80), nullable=True),
        sa.Column("error_code", sa.String(length=40), nullable=True),
        sa.Column("provider_code", sa.String(length=80), nullable=True),
        sa.Column("sent_at", core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("delivery", sa.String(length=20), nullable=True),
        sa.Column("delivered_at", core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["encounter_id"],
            ["appraisal_encounters.id"],
            name=op.f("fk_appraisal_invitations_encounter_id_appraisal_encounters"),
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["appraisal_programmes.id"],
            name=op.f("fk_appraisal_invitations_programme_id_appraisal_programmes"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appraisal_invitations")),
        sa.UniqueConstraint("encounter_id", name=op.f("uq_appraisal_invitations_encounter_id")),
    )
    op.create_index(
        "ix_appraisal_invitations_due",
        "appraisal_invitations",
        ["status", "next_attempt_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_appraisal_invitations_message_id"),
        "appraisal_invitations",
        ["message_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_appraisal_invitations_programme_id"),
        "appraisal_invitations",
        ["programme_id"],
        unique=False,
    )
    op.create_table(
        "appraisal_ratings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("programme_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("encounter_id", sa.Integer(), nullable=True),
        sa.Column("window_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("choice", sa.String(length=20), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("staff_name", sa.String(length=40), nullable=True),
        sa.Column("nomination_id", sa.Integer(), nullable=True),
        sa.Column("department", sa.String(length=60), nullable=True),
        sa.Column("created_at", core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["encounter_id"],
            ["appraisal_encounters.id"],
            name=op.f("fk_appraisal_ratings_encounter_id_appraisal_encounters"),
        ),
        sa.ForeignKeyConstraint(
            ["nomination_id"],
            ["nominations.id"],
            name=op.f("fk_appraisal_ratings_nomination_id_nominations"),
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["appraisal_programmes.id"],
            name=op.f("fk_appraisal_ratings_programme_id_appraisal_programmes"),
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_appraisal_ratings_unit_id_units")
        ),
        sa.ForeignKeyConstraint(
            ["window_id"],
            ["appraisal_windows.id"],
            name=op.f("fk_appraisal_ratings_window_id_appraisal_windows"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appraisal_ratings")),
        sa.UniqueConstraint("encounter_id", name=op.f("uq_appraisal_ratings_encounter_id")),
    )
    op.create_index(
        op.f("ix_appraisal_ratings_created_at"), "appraisal_ratings", ["created_at"], unique=False
    )
    op.create_index(
        op.f("ix_appraisal_ratings_nomination_id"),
        "appraisal_ratings",
        ["nomination_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_appraisal_ratings_programme_id"),
        "appraisal_ratings",
        ["programme_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_appraisal_ratings_unit_id"), "appraisal_ratings", ["unit_id"], unique=False
    )
    op.create_table(
        "appraisal_cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("programme_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("rating_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("deadline_at", core.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("escalated_at", core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("findings", sa.Text(), nullable=True),
        sa.Column("actions", sa.Text(), nullable=True),
        sa.Column("closed_at", core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", core.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["appraisal_programmes.id"],
            name=op.f("fk_appraisal_cases_programme_id_appraisal_programmes"),
        ),
        sa.ForeignKeyConstraint(
            ["rating_id"],
            ["appraisal_ratings.id"],
            name=op.f("fk_appraisal_cases_rating_id_appraisal_ratings"),
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_appraisal_cases_unit_id_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appraisal_cases")),
        sa.UniqueConstraint("rating_id", name=op.f("uq_appraisal_cases_rating_id")),
    )
    op.create_index(
        "ix_appraisal_cases_due", "appraisal_cases", ["status", "deadline_at"], unique=False
    )
    op.create_index(
        op.f("ix_appraisal_cases_programme_id"), "appraisal_cases", ["programme_id"], unique=False
    )
    op.create_index(
        op.f("ix_appraisal_cases_unit_id"), "appraisal_cases", ["unit_id"], unique=False
    )


def downgrade():
    op.drop_table("appraisal_cases")
    op.drop_table("appraisal_ratings")
    op.drop_table("appraisal_invitations")
    op.drop_table("appraisal_encounters")
    op.drop_table("appraisal_windows")
    op.drop_table("appraisal_uploads")
    op.drop_table("appraisal_programmes")
    op.drop_table("appraisal_opt_outs")
