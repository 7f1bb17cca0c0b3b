"""Nominations (推荐 / 候选人), their review history and the public number counters."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
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
    # The campaign-defined fields' values (nominations.form_fields), by key; null: none filled.
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    status: Mapped[str] = mapped_column(String(20), default="draft", index=True)
    number: Mapped[str | None] = mapped_column(String(16))
    number_seq: Mapped[int | None] = mapped_column(Integer)
    recommended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    recommended_by_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Campaigns with a recommendation chain (nominations.levels): the chain level where the
    # nomination waits ("county", "city", … or "committee" once every level passed it up) and
    # the bureau unit that holds it there. Null in single-level campaigns and for drafts.
    at_level: Mapped[str | None] = mapped_column(String(20))
    at_unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    # Optimistic lock: two reviewers deciding at once cannot both win.
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012

    campaign: Mapped[Campaign] = relationship()
    category: Mapped[Category] = relationship()
    unit: Mapped[Unit] = relationship(foreign_keys=[unit_id])
    at_unit: Mapped[Unit | None] = relationship(foreign_keys=[at_unit_id])
    created_by: Mapped[Account | None] = relationship(foreign_keys=[created_by_id])
    reviews: Mapped[list[NominationReview]] = relationship(
        back_populates="nomination", order_by="NominationReview.id"
    )
    level_decisions: Mapped[list[LevelDecision]] = relationship(
        back_populates="nomination", order_by="LevelDecision.id"
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


# --- recommendation levels (nominations.levels) ------------------------------------------------

COMMITTEE = "committee"
LEVEL_DECISIONS = ("pass", "return", "reject")


class RecommendationLevel(db.Model):
    """One bureau level of a campaign's recommendation chain, lowest first (position 1): the
    bureaus of ``unit_level`` decide what their sub-tree nominates, until ``deadline``."""

    __tablename__ = "recommendation_levels"
    __table_args__ = (
        UniqueConstraint("campaign_id", "position"),
        UniqueConstraint("campaign_id", "unit_level"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    unit_level: Mapped[str] = mapped_column(String(20))
    deadline: Mapped[datetime] = mapped_column(UTCDateTime())
    extended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    quotas: Mapped[list[LevelQuota]] = relationship(
        back_populates="level", cascade="all, delete-orphan"
    )


class LevelQuota(db.Model):
    """How many nominations of a category each bureau of a level may pass up."""

    __tablename__ = "level_quotas"

    level_id: Mapped[int] = mapped_column(ForeignKey("recommendation_levels.id"), primary_key=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"), primary_key=True)
    quota: Mapped[int] = mapped_column(Integer)

    level: Mapped[RecommendationLevel] = relationship(back_populates="quotas")


class UnitQuota(db.Model):
    """A quota set for one unit in a category: for a nominating unit (厅直属单位, 三级医院) how
    many it may submit, for a bureau how many it may pass up, instead of the usual figure."""

    __tablename__ = "unit_quotas"

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), primary_key=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"), primary_key=True)
    quota: Mapped[int] = mapped_column(Integer)


class LevelDecision(db.Model):
    """A bureau's decision on a nomination at its level: pass (推荐上报), return (退回修改) or
    reject (不予推荐). A pass holds one of the bureau's places while ``holds_place``; a return
    from above, or the nomination's withdrawal, frees it."""

    __tablename__ = "level_decisions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    nomination_id: Mapped[int] = mapped_column(ForeignKey("nominations.id"), index=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    unit_level: Mapped[str] = mapped_column(String(20))
    decision: Mapped[str] = mapped_column(String(20))
    returned_to: Mapped[str | None] = mapped_column(String(20))
    holds_place: Mapped[bool] = mapped_column(Boolean, default=False)
    comment: Mapped[str | None] = mapped_column(Text)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    actor_name: Mapped[str] = mapped_column(String(80))
    actor_role: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    nomination: Mapped[Nomination] = relationship(back_populates="level_decisions")
    unit: Mapped[Unit | None] = relationship()
