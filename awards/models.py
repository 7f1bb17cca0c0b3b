"""Judging (criteria, assignments, conflicts, score sheets), result versions, objections."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from campaigns.models import Account, Category
from core.extensions import db
from core.types import UTCDateTime, utcnow
from nominations.models import Nomination


class Criterion(db.Model):
    """A scoring criterion of a campaign, e.g. 医德医风 30."""

    __tablename__ = "criteria"
    __table_args__ = (UniqueConstraint("campaign_id", "code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(60))
    max_points: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer, default=0)


# Who a score sheet speaks for: the jury (评委), peers (同行互评) or leaders (领导点评).
PANELS = ("jury", "peer", "leader")


class JudgeAssignment(db.Model):
    """A judge account scoring a category, on one panel (a judge has one panel per campaign)."""

    __tablename__ = "judge_assignments"
    __table_args__ = (UniqueConstraint("account_id", "category_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"))
    panel: Mapped[str] = mapped_column(String(10), default="jury", server_default="jury")

    account: Mapped[Account] = relationship()
    category: Mapped[Category] = relationship()


class JudgeConflict(db.Model):
    """A conflict a judge declared (their own unit is a conflict without declaring it)."""

    __tablename__ = "judge_conflicts"
    __table_args__ = (UniqueConstraint("account_id", "nomination_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    nomination_id: Mapped[int] = mapped_column(ForeignKey("nominations.id"))
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ScoreSheet(db.Model):
    __tablename__ = "score_sheets"
    __table_args__ = (UniqueConstraint("judge_id", "nomination_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    judge_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    nomination_id: Mapped[int] = mapped_column(ForeignKey("nominations.id"), index=True)
    # The panel of the judge's assignment when the sheet was saved (PANELS).
    panel: Mapped[str] = mapped_column(String(10), default="jury", server_default="jury")
    scores: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    total: Mapped[float] = mapped_column(Numeric(7, 2), default=0)
    status: Mapped[str] = mapped_column(String(10), default="draft")  # draft | submitted
    comment: Mapped[str | None] = mapped_column(Text)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    judge: Mapped[Account] = relationship()
    nomination: Mapped[Nomination] = relationship()


class OrganizerScore(db.Model):
    """The organiser's own score of a nominee (0–100), when the weights give it a share."""

    __tablename__ = "organizer_scores"
    __table_args__ = (UniqueConstraint("nomination_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    nomination_id: Mapped[int] = mapped_column(ForeignKey("nominations.id"))
    points: Mapped[float] = mapped_column(Numeric(6, 2))
    reason: Mapped[str | None] = mapped_column(Text)


class ResultVersion(db.Model):
    """A numbered computation of the results: draft → final → published (→ superseded)."""

    __tablename__ = "result_versions"
    __table_args__ = (UniqueConstraint("campaign_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12), default="draft")
    weights: Mapped[dict[str, Any]] = mapped_column(JSON)
    method: Mapped[str] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    ledger_head: Mapped[str | None] = mapped_column(String(64))
    ledger_votes: Mapped[int | None] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finalized_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    publicity_ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    entries: Mapped[list[ResultEntry]] = relationship(
        back_populates="version", order_by="ResultEntry.category_position, ResultEntry.rank"
    )
    adjustments: Mapped[list[ResultAdjustment]] = relationship(
        back_populates="version", order_by="ResultAdjustment.id"
    )


class ResultEntry(db.Model):
    __tablename__ = "result_entries"
    __table_args__ = (UniqueConstraint("version_id", "nomination_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("result_versions.id"), index=True)
    nomination_id: Mapped[int] = mapped_column(ForeignKey("nominations.id"))
    category_code: Mapped[str] = mapped_column(String(40))
    category_position: Mapped[int] = mapped_column(Integer, default=0)
    number: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(40))
    unit: Mapped[str] = mapped_column(String(120))
    valid_votes: Mapped[int] = mapped_column(Integer)
    public_score: Mapped[float] = mapped_column(Numeric(7, 2))
    jury_score: Mapped[float] = mapped_column(Numeric(7, 2))
    jury_count: Mapped[int] = mapped_column(Integer)
    organizer_score: Mapped[float] = mapped_column(Numeric(7, 2))
    # The components beside votes and the jury (awards.components): 同行互评 and 领导点评
    # means with their sheet counts, and the patients' satisfaction with the invited answers
    # it is computed from (None: 样本不足, fewer answers than the campaign's minimum).
    peer_score: Mapped[float] = mapped_column(Numeric(7, 2), default=0, server_default="0")
    peer_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    leader_score: Mapped[float] = mapped_column(Numeric(7, 2), default=0, server_default="0")
    leader_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    satisfaction_score: Mapped[float | None] = mapped_column(Numeric(7, 2))
    satisfaction_answers: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    satisfaction_positive: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    combined: Mapped[float] = mapped_column(Numeric(7, 2))
    rank: Mapped[int] = mapped_column(Integer)
    winner: Mapped[bool] = mapped_column(Boolean, default=False)
    # A winner's award tier (Category.tiers code) and its name as it was when computed; None
    # for a non-winner and in a category without tiers.
    tier: Mapped[str | None] = mapped_column(String(20))
    tier_name: Mapped[str | None] = mapped_column(String(20))
    adjustment: Mapped[str | None] = mapped_column(String(10))  # exclude | promote | tier
    adjustment_reason: Mapped[str | None] = mapped_column(Text)

    version: Mapped[ResultVersion] = relationship(back_populates="entries")


class ResultAdjustment(db.Model):
    """The committee's exclusion, promotion or move to another award tier of a nominee in one
    version, with its reason and author. A version reopened after an upheld objection carries
    its predecessor's adjustments forward (``carried_from_version``), keeping the original author
    and time; one that no longer fits the new computation stays listed as ``not_applied`` with
    why. Only an explicit removal (``removed``, with who, when and why) takes one out of force."""

    __tablename__ = "result_adjustments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("result_versions.id"), index=True)
    nomination_id: Mapped[int] = mapped_column(ForeignKey("nominations.id"))
    number: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(40))
    category_code: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(10))  # exclude | promote | tier
    # The tier (Category.tiers code) a ``tier`` adjustment places the nominee in.
    tier: Mapped[str | None] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    made_in_version: Mapped[int] = mapped_column(Integer)
    carried_from_version: Mapped[int | None] = mapped_column(Integer)
    # applied | not_applied (kept in force, but it no longer fits) | removed
    status: Mapped[str] = mapped_column(String(12), default="applied")
    not_applied_reason: Mapped[str | None] = mapped_column(Text)
    removed_by: Mapped[str | None] = mapped_column(String(64))
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    removed_reason: Mapped[str | None] = mapped_column(Text)

    version: Mapped[ResultVersion] = relationship(back_populates="adjustments")


class Objection(db.Model):
    """异议 filed during publicity; the office upholds (the result reopens) or dismisses it."""

    __tablename__ = "objections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("result_versions.id"))
    nominee_number: Mapped[str | None] = mapped_column(String(16))
    contact_name: Mapped[str] = mapped_column(String(40))
    contact_phone: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text)
    attachment_key: Mapped[str | None] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(10), default="open")  # open | upheld | dismissed
    answer: Mapped[str | None] = mapped_column(Text)
    answered_by: Mapped[str | None] = mapped_column(String(64))
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ip: Mapped[str | None] = mapped_column(String(64))
