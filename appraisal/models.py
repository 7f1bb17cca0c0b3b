"""Satisfaction programmes (群众评议): encounters, invitations, ratings, opt-outs, uploads."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from campaigns.models import Unit
from core.extensions import db
from core.types import UTCDateTime, utcnow

PROGRAMME_STATUSES = ("active", "closed")
CHOICES = ("satisfied", "basic", "dissatisfied")
RATING_KINDS = ("invited", "walk_in")
# queued → sending → sent; transient failures go to retrying (then sending again), refusals and
# exhausted retries to failed; a phone that opted out is never texted (opted_out); a phone that
# had its share of invitations in the programme's cap periods is not texted either (capped).
INVITATION_STATUSES = ("queued", "sending", "retrying", "sent", "failed", "opted_out", "capped")


class Programme(db.Model):
    """A bureau's satisfaction programme over the units below it, independent of campaigns."""

    __tablename__ = "appraisal_programmes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    title: Mapped[str] = mapped_column(String(120))
    # The bureau that runs it; its units are the institutions under this unit.
    bureau_unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    # Phone numbers are deleted this many days after their encounter.
    retention_days: Mapped[int] = mapped_column(Integer, default=90)
    status: Mapped[str] = mapped_column(String(20), default="active")
    # When set, the staff member an encounter or answer names is matched to that campaign's
    # approved nominees of the same unit (by name), so a nominee's patients can be counted.
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))
    # The per-phone invitation cap (appraisal.phone_cap): [{"max": 1, "days": 7}, ...] over the
    # programme's units; null: the default rules; []: no cap.
    phone_cap: Mapped[list[dict[str, int]] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    bureau: Mapped[Unit] = relationship()


class Window(db.Model):
    """A service window of a unit (门诊大厅, 住院部): its QR code lets walk-in patients rate."""

    __tablename__ = "appraisal_windows"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    programme_id: Mapped[int] = mapped_column(ForeignKey("appraisal_programmes.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    name: Mapped[str] = mapped_column(String(60))
    token: Mapped[str] = mapped_column(String(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    unit: Mapped[Unit] = relationship()
    programme: Mapped[Programme] = relationship()


class Upload(db.Model):
    """One file of encounters a unit uploaded, with the rows it refused and why."""

    __tablename__ = "appraisal_uploads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    programme_id: Mapped[int] = mapped_column(ForeignKey("appraisal_programmes.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(10))  # xlsx | csv
    rows_total: Mapped[int] = mapped_column(Integer, default=0)
    rows_accepted: Mapped[int] = mapped_column(Integer, default=0)
    # [{"row": 7, "code": "bad_phone", "message": "手机号码格式不正确"}, ...]; phones never kept.
    refused: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_by_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    unit: Mapped[Unit] = relationship()


class Encounter(db.Model):
    """A patient's visit, with the phone to invite (encrypted; deleted after the retention)."""

    __tablename__ = "appraisal_encounters"
    __table_args__ = (
        UniqueConstraint("programme_id", "dedupe_key", name="uq_appraisal_encounters_dedupe"),
        Index("ix_appraisal_encounters_purge", "purge_after", "purged_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    programme_id: Mapped[int] = mapped_column(ForeignKey("appraisal_programmes.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    upload_id: Mapped[int | None] = mapped_column(ForeignKey("appraisal_uploads.id"))
    source: Mapped[str] = mapped_column(String(10))  # upload | api
    # appraisal.pii: the number encrypted, its keyed hash (opt-outs, duplicates) and its mask.
    # All three are cleared by the retention job.
    phone_cipher: Mapped[str | None] = mapped_column(String(200))
    phone_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    phone_masked: Mapped[str] = mapped_column(String(16))
    # Keyed hash of phone, date and department: one invitation per visit.
    dedupe_key: Mapped[str | None] = mapped_column(String(64))
    encounter_date: Mapped[date] = mapped_column(Date)
    department: Mapped[str] = mapped_column(String(60))
    staff_name: Mapped[str | None] = mapped_column(String(40))
    staff_number: Mapped[str | None] = mapped_column(String(40))
    # The campaign nominee the staff member was matched to (Programme.campaign_id).
    nomination_id: Mapped[int | None] = mapped_column(ForeignKey("nominations.id"), index=True)
    # A random part of the one-time link's signature, so a link can be made and checked
    # without storing it.
    link_nonce: Mapped[str] = mapped_column(String(32))
    purge_after: Mapped[datetime] = mapped_column(UTCDateTime())
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    unit: Mapped[Unit] = relationship()
    programme: Mapped[Programme] = relationship()


class Invitation(db.Model):
    """The text message inviting one encounter's patient, and what became of it."""

    __tablename__ = "appraisal_invitations"
    __table_args__ = (Index("ix_appraisal_invitations_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    encounter_id: Mapped[int] = mapped_column(ForeignKey("appraisal_encounters.id"), unique=True)
    programme_id: Mapped[int] = mapped_column(ForeignKey("appraisal_programmes.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    provider: Mapped[str | None] = mapped_column(String(20))
    message_id: Mapped[str | None] = mapped_column(String(80), index=True)
    error_code: Mapped[str | None] = mapped_column(String(40))
    provider_code: Mapped[str | None] = mapped_column(String(80))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The provider's delivery receipt, when it calls back: delivered | undelivered.
    delivery: Mapped[str | None] = mapped_column(String(20))
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    encounter: Mapped[Encounter] = relationship()


class Rating(db.Model):
    """One answer: through an invitation's link (one per encounter) or at a window (walk-in)."""

    __tablename__ = "appraisal_ratings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    programme_id: Mapped[int] = mapped_column(ForeignKey("appraisal_programmes.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    encounter_id: Mapped[int | None] = mapped_column(
        ForeignKey("appraisal_encounters.id"), unique=True
    )
    window_id: Mapped[int | None] = mapped_column(ForeignKey("appraisal_windows.id"))
    kind: Mapped[str] = mapped_column(String(10))  # invited | walk_in
    choice: Mapped[str] = mapped_column(String(20))
    comment: Mapped[str | None] = mapped_column(Text)
    staff_name: Mapped[str | None] = mapped_column(String(40))
    nomination_id: Mapped[int | None] = mapped_column(ForeignKey("nominations.id"), index=True)
    department: Mapped[str | None] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class OptOut(db.Model):
    """退订: a phone (by its keyed hash) that is never texted again, whatever the programme."""

    __tablename__ = "appraisal_opt_outs"

    phone_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(20))  # link | reply | staff
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PhoneCap(db.Model):
    """The invitations a phone (by its keyed hash) was sent in a programme within its longest cap
    period: the ledger the cap is checked against (appraisal.phone_cap). One row per phone and
    programme, locked while a sender takes a place in it; deleted once past every period."""

    __tablename__ = "appraisal_phone_caps"

    programme_id: Mapped[int] = mapped_column(
        ForeignKey("appraisal_programmes.id"), primary_key=True
    )
    phone_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    # [[invitation id, unix seconds], ...]: the places taken, oldest first.
    sends: Mapped[list[list[int]]] = mapped_column(JSON, default=list)
    # When the row holds nothing within any period any more (the purge deletes it then).
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


CASE_STATUSES = ("open", "closed")


class Case(db.Model):
    """A 「不满意」 answer the unit must verify and act on by its deadline (item 3 of #19)."""

    __tablename__ = "appraisal_cases"
    __table_args__ = (Index("ix_appraisal_cases_due", "status", "deadline_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    programme_id: Mapped[int] = mapped_column(ForeignKey("appraisal_programmes.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    rating_id: Mapped[int] = mapped_column(ForeignKey("appraisal_ratings.id"), unique=True)
    status: Mapped[str] = mapped_column(String(20), default="open")
    # The 15th of the month after the answer, end of day in the programme's zone, by default.
    deadline_at: Mapped[datetime] = mapped_column(UTCDateTime())
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    findings: Mapped[str | None] = mapped_column(Text)
    actions: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_by_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    unit: Mapped[Unit] = relationship()
    rating: Mapped[Rating] = relationship()
