"""Campaigns, their categories, the unit hierarchy and staff accounts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.extensions import db
from core.types import UTCDateTime, utcnow

PHASES = ("draft", "nominating", "reviewing", "voting", "judging", "publicity", "closed")
UNIT_LEVELS = ("province", "city", "county", "institution")
ROLES = ("admin", "reviewer", "unit", "judge")


class Unit(db.Model):
    __tablename__ = "units"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    level: Mapped[str] = mapped_column(String(20))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    # Materialised path of ids, e.g. "/1/4/9/": a sub-tree is one prefix match.
    path: Mapped[str] = mapped_column(String(400), index=True, default="/")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    parent: Mapped[Unit | None] = relationship(remote_side=[id])

    def contains(self, other: Unit) -> bool:
        return other.path.startswith(self.path)


class Account(db.Model):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    display_name: Mapped[str | None] = mapped_column(String(80))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Bumped to revoke every token issued before (password change, deactivation).
    token_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    unit: Mapped[Unit | None] = relationship()


class Campaign(db.Model):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(120))
    organizer: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    phase: Mapped[str] = mapped_column(String(20), default="draft")
    nomination_start: Mapped[datetime] = mapped_column(UTCDateTime())
    nomination_end: Mapped[datetime] = mapped_column(UTCDateTime())
    voting_start: Mapped[datetime] = mapped_column(UTCDateTime())
    voting_end: Mapped[datetime] = mapped_column(UTCDateTime())
    rules: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    weights: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # When set, a bureau reviewer must recommend a nomination before the committee may approve it.
    require_recommendation: Mapped[bool] = mapped_column(Boolean, default=False)
    # How long the published winners stay open to objections (公示期).
    publicity_days: Mapped[int] = mapped_column(Integer, default=7, server_default="7")
    # The H5 page's banner image: the storage key of its folder (``b-`` and 32 hex digits,
    # holding ``photo.jpg``), uploaded from the console's settings; None shows the plain header.
    banner_key: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    categories: Mapped[list[Category]] = relationship(
        back_populates="campaign", order_by="Category.position, Category.id"
    )

    def is_voting_open(self, now: datetime | None = None) -> bool:
        """Open when the phase is ``voting`` and now lies inside the voting window."""
        now = now or utcnow()
        return self.phase == "voting" and self.voting_start <= now < self.voting_end

    @property
    def voting_open(self) -> bool:
        return self.is_voting_open()


class Category(db.Model):
    __tablename__ = "categories"
    __table_args__ = (
        UniqueConstraint("campaign_id", "code"),
        UniqueConstraint("campaign_id", "prefix"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(120))
    prefix: Mapped[str] = mapped_column(String(8))
    award_count: Mapped[int] = mapped_column(Integer, default=10)
    # The award tiers in order, e.g. [{"code": "top10", "name": "十佳", "count": 10},
    # {"code": "excellent", "name": "优秀", "count": 10}]; award_count is then their sum.
    # None: one implicit tier (the winners carry no tier name).
    tiers: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    max_per_unit: Mapped[int] = mapped_column(Integer, default=1)
    position: Mapped[int] = mapped_column(Integer, default=0)

    campaign: Mapped[Campaign] = relationship(back_populates="categories")

    @property
    def tier_list(self) -> list[dict[str, Any]]:
        """The category's tiers in order; empty when it awards one implicit tier."""
        return list(self.tiers or [])
