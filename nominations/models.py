"""Nominations (推荐 / 候选人), their review history and the public number counters."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from campaigns.models import Account, Campaign, Category, Unit
from core.extensions import db
from core.types import UTCDateTime, utcnow

STATUSES = ("draft", "submitted", "returned", "approved", "rejected", "withdrawn")
EDITABLE = ("draft", "returned")
# Statuses that hold one of the unit's places in a category (see services.submit).
HOLDS_QUOTA = ("submitted", "returned", "approved")
DEEDS_MAX = 3000
SUMMARY_MAX = 120


class Nomination(db.Model):
    __tablename__ = "nominations"
    __table_args__ = (UniqueConstraint("campaign_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))

    name: Mapped[str] = mapped_column(String(40))
    gender: Mapped[str] = mapped_column(String(10))
    title: Mapped[str] = mapped_column(String(60))
    position: Mapped[str | None] = mapped_column(String(60))
    department: Mapped[str] = mapped_column(String(60))
    years_of_service: Mapped[int | None] = mapped_column(Integer)
    summary: Mapped[str] = mapped_column(String(SUMMARY_MAX))
    deeds: Mapped[str] = mapped_column(Text)
    unit_opinion: Mapped[str] = mapped_column(Text)

    status: Mapped[str] = mapped_column(String(20), default="draft", index=True)
    number: Mapped[str | None] = mapped_column(String(16))
    number_seq: Mapped[int | None] = mapped_column(Integer)
    recommended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    recommended_by_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    # Optimistic lock: two reviewers deciding at once cannot both win.
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012

    campaign: Mapped[Campaign] = relationship()
    category: Mapped[Category] = relationship()
    unit: Mapped[Unit] = relationship()
    created_by: Mapped[Account | None] = relationship(foreign_keys=[created_by_id])
    reviews: Mapped[list[NominationReview]] = relationship(
        back_populates="nomination", order_by="NominationReview.id"
    )

    @property
    def recommended(self) -> bool:
        return self.recommended_at is not None


class NominationReview(db.Model):
    """One step of a nomination's history: submit, recommend, approve, return, reject, withdraw."""

    __tablename__ = "nomination_reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    nomination_id: Mapped[int] = mapped_column(ForeignKey("nominations.id"), index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    actor_role: Mapped[str] = mapped_column(String(20))
    actor_unit: Mapped[str | None] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(20))
    from_status: Mapped[str] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    comment: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    nomination: Mapped[Nomination] = relationship(back_populates="reviews")


class NumberCounter(db.Model):
    """The last public number handed out per campaign and prefix; bumped in the approving
    transaction, so a rolled-back approval gives its number back and the sequence stays gapless."""

    __tablename__ = "number_counters"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), primary_key=True)
    prefix: Mapped[str] = mapped_column(String(8), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)
