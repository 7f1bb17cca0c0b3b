"""公示 of a recommendation level's list (层级公示): a bureau of the chain publishes the nominations
it passed up, for a period, before or while the level above decides.

A bureau's reviewer (or the committee, for any bureau of the chain) opens a publicity: from now or
from a given time, for a number of days — working days (Monday to Friday) by default, counted in
the campaign's time zone from the starting day, the period ending at local midnight after its last
day. What is published is a **snapshot** taken at opening: per category, each nomination the
bureau passed up and still holds a place for (the same list ``levels.places_used`` counts) —
name, nominating unit, category, 职称, the one-line summary and the campaign's own form fields
marked public (never a phone) — plus the bureau's name and the contact for objections the bureau
enters. A later pass, return or correction does not change it; the bureau withdraws it (with a
reason) and opens a new one. Objections themselves go to the bureau through that contact: the
system shows it and takes none (docs/level-publicity.md).

Periods of one bureau in one campaign may not overlap (409 publicity_overlap), exact under
parallel requests: opening locks the bureau's unit row as a pass does. Opening and withdrawing are
audited (``level_publicity.open``, ``level_publicity.withdraw``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, Text, select
from sqlalchemy.orm import Mapped, mapped_column

from campaigns import services as campaign_services
from campaigns.models import Account, Campaign, Unit
from core import audit
from core.clock import zone
from core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from core.extensions import db
from core.types import UTCDateTime, utcnow
from nominations import form_fields
from nominations.labels import level_label
from nominations.levels import chain
from nominations.models import LevelDecision, Nomination

DAYS_MAX = 30
START_AHEAD_MAX = timedelta(days=90)
CONTACT_MAX = 300
REASON_MAX = 500
STATUS_LABELS = {
    "scheduled": "未开始",
    "open": "公示中",
    "closed": "已结束",
    "withdrawn": "已撤回",
}


class LevelPublicity(db.Model):
    """One 公示 of a bureau's passed-up list: its period, its contact and the snapshot taken when
    it was opened (``items``); ``withdrawn_at`` once withdrawn."""

    __tablename__ = "level_publicities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    unit_level: Mapped[str] = mapped_column(String(20))
    unit_name: Mapped[str] = mapped_column(String(120))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    days: Mapped[int] = mapped_column(Integer)
    working_days: Mapped[bool] = mapped_column(Boolean, default=True)
    contact: Mapped[str] = mapped_column(Text)
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    opened_by: Mapped[str] = mapped_column(String(80))
    opened_role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    withdrawn_by: Mapped[str | None] = mapped_column(String(80))
    withdraw_reason: Mapped[str | None] = mapped_column(Text)

    def status(self, now: datetime | None = None) -> str:
        """scheduled, open, closed or withdrawn."""
        now = now or utcnow()
        if self.withdrawn_at is not None:
            return "withdrawn"
        if now < self.starts_at:
            return "scheduled"
        return "open" if now < self.ends_at else "closed"


# --- the period ---------------------------------------------------------------------------------


def period_end(start: datetime, days: int, working_days: bool, timezone: str | None) -> datetime:
    """The end of a period of ``days`` starting at ``start``: local midnight (in ``timezone``)
    after its last day. The starting day counts as the first; with ``working_days`` Saturdays and
    Sundays are skipped (a weekend start counts from Monday). Public holidays and their make-up
    working days (调休) are not known: a bureau gives more days around them."""
    tz = zone(timezone)
    day = start.astimezone(tz).date()
    counted = 0
    while True:
        if not working_days or day.weekday() < 5:
            counted += 1
            if counted == days:
                break
        day += timedelta(days=1)
    following = day + timedelta(days=1)
    return datetime(following.year, following.month, following.day, tzinfo=tz).astimezone(
        start.tzinfo
    )


def _invalid(message: str, code: str, **details: Any) -> ValidationFailed:
    return ValidationFailed(message, code=code, details=details)


# --- who may act for which bureau ----------------------------------------------------------------


def bureau_for(account: Account, campaign: Campaign, unit_code: str) -> Unit:
    """The bureau ``unit_code`` names, if the caller may act for it: its own reviewers, or the
    committee. A unit outside a reviewer's sub-tree is 404 unit_not_found (as a missing one);
    another bureau inside it 403 not_your_bureau; a unit whose level is no level of the
    campaign's chain 403 not_a_level."""
    unit = campaign_services.get_unit(unit_code)  # 404 unit_not_found
    if account.role == "reviewer":
        own = account.unit
        if own is None or not own.contains(unit):
            raise NotFound("单位不存在", code="unit_not_found", details={"unit_code": unit_code})
        if own.id != unit.id:
            raise Forbidden("只能公示本单位推荐上报的名单", code="not_your_bureau")
    elif account.role != "admin":
        raise Forbidden()
    if unit.level not in {level.unit_level for level in chain(campaign)}:
        raise Forbidden("该单位不在本活动的推荐层级中", code="not_a_level")
    return unit


# --- the snapshot -------------------------------------------------------------------------------


def passed_up(campaign: Campaign, unit: Unit) -> list[dict[str, Any]]:
    """What the bureau passed up and still holds a place for, per category in the campaign's
    order, then in the order passed: the public fields only."""
    rows = db.session.execute(
        select(Nomination, LevelDecision.at)
        .join(LevelDecision, LevelDecision.nomination_id == Nomination.id)
        .where(
            LevelDecision.campaign_id == campaign.id,
            LevelDecision.unit_id == unit.id,
            LevelDecision.decision == "pass",
            LevelDecision.holds_place.is_(True),
            Nomination.status != "withdrawn",
        )
        .order_by(LevelDecision.at, LevelDecision.id)
    ).all()
    order = {category.id: i for i, category in enumerate(campaign.categories)}
    rows.sort(key=lambda row: order.get(row[0].category_id, len(order)))
    return [
        {
            "nomination_id": nomination.id,
            "name": nomination.name,
            "unit": nomination.unit.name,
            "category": nomination.category.code,
            "category_name": nomination.category.name,
            "title": nomination.title,
            "summary": nomination.summary,
            "extra": form_fields.shown(campaign.id, nomination.extra, public_only=True),
        }
        for nomination, _ in rows
    ]


# --- open, withdraw, read -----------------------------------------------------------------------


def _overlapping(campaign: Campaign, unit: Unit, start: datetime, end: datetime) -> Any:
    return db.session.scalar(
        select(LevelPublicity)
        .where(
            LevelPublicity.campaign_id == campaign.id,
            LevelPublicity.unit_id == unit.id,
            LevelPublicity.withdrawn_at.is_(None),
            LevelPublicity.starts_at < end,
            LevelPublicity.ends_at > start,
        )
        .limit(1)
    )


def open_publicity(
    account: Account,
    campaign: Campaign,
    unit: Unit,
    *,
    contact: str,
    days: int,
    working_days: bool = True,
    starts_at: datetime | None = None,
) -> LevelPublicity:
    """Open a 公示 of ``unit``'s passed-up list (``bureau_for`` checked the caller). 422
    invalid_start for a start in the past or more than 90 days ahead; 409 nothing_to_publish
    when the bureau holds no passed-up nomination; 409 publicity_overlap when another of its
    publicities (not withdrawn) shares part of the period."""
    now = utcnow()
    start = starts_at or now
    if start < now - timedelta(minutes=1) or start > now + START_AHEAD_MAX:
        raise _invalid("公示开始时间不能早于现在，也不能晚于 90 天后", "invalid_start")
    contact = contact.strip()
    if not contact:
        raise _invalid("请填写受理异议的联系方式", "contact_required", fields={"contact": ["必填"]})
    end = period_end(start, days, working_days, campaign.timezone)
    # Lock the bureau's row: two opens by one bureau cannot both miss the other's period
    # (PostgreSQL); SQLite write transactions are already serialised by BEGIN IMMEDIATE.
    db.session.execute(select(Unit.id).where(Unit.id == unit.id).with_for_update())
    items = passed_up(campaign, unit)
    if not items:
        raise Conflict(
            "本单位还没有推荐上报的人选，没有可公示的名单",
            code="nothing_to_publish",
            details={"unit_code": unit.code},
        )
    other = _overlapping(campaign, unit, start, end)
    if other is not None:
        raise Conflict(
            "本单位已有与该时段重叠的公示，如需重新公示请先撤回",
            code="publicity_overlap",
            details={
                "id": other.id,
                "starts_at": other.starts_at.isoformat(),
                "ends_at": other.ends_at.isoformat(),
            },
        )
    publicity = LevelPublicity(
        campaign_id=campaign.id,
        unit_id=unit.id,
        unit_level=unit.level,
        unit_name=unit.name,
        starts_at=start,
        ends_at=end,
        days=days,
        working_days=working_days,
        contact=contact,
        items=items,
        opened_by=account.display_name or account.username,
        opened_role=account.role,
        created_at=now,
    )
    db.session.add(publicity)
    db.session.flush()
    audit.record(
        "level_publicity.open",
        "level_publicity",
        publicity.id,
        campaign_id=campaign.id,
        after=_audited(publicity),
    )
    return publicity


def _audited(publicity: LevelPublicity) -> dict[str, Any]:
    return {
        "unit": publicity.unit_name,
        "unit_level": publicity.unit_level,
        "starts_at": publicity.starts_at,
        "ends_at": publicity.ends_at,
        "nominations": [item["nomination_id"] for item in publicity.items],
        "status": publicity.status(),
    }


def get_publicity(campaign: Campaign, unit: Unit, publicity_id: int) -> LevelPublicity:
    """One publicity of the bureau (404 publicity_not_found otherwise)."""
    publicity = find(campaign.id, publicity_id)
    if publicity is None or publicity.unit_id != unit.id:
        raise NotFound("公示不存在", code="publicity_not_found")
    return publicity


def find(campaign_id: int, publicity_id: int) -> LevelPublicity | None:
    """A publicity of the campaign by id, or None."""
    publicity = db.session.get(LevelPublicity, publicity_id)
    return publicity if publicity is not None and publicity.campaign_id == campaign_id else None


def withdraw(publicity: LevelPublicity, account: Account, reason: str) -> LevelPublicity:
    """Withdraw a scheduled or open publicity, with a reason (409 publicity_ended once its
    period is over, 409 publicity_withdrawn when already withdrawn)."""
    reason = reason.strip()
    if not reason:
        raise _invalid("请填写撤回的原因", "reason_required", fields={"reason": ["必填"]})
    status = publicity.status()
    if status == "withdrawn":
        raise Conflict("该公示已撤回", code="publicity_withdrawn")
    if status == "closed":
        raise Conflict("该公示已结束，不能撤回", code="publicity_ended")
    before = _audited(publicity)
    publicity.withdrawn_at = utcnow()
    publicity.withdrawn_by = account.display_name or account.username
    publicity.withdraw_reason = reason
    db.session.flush()
    audit.record(
        "level_publicity.withdraw",
        "level_publicity",
        publicity.id,
        campaign_id=publicity.campaign_id,
        before=before,
        after=_audited(publicity),
        reason=reason,
    )
    return publicity


def of_bureau(campaign: Campaign, unit: Unit) -> list[LevelPublicity]:
    """The bureau's publicities in the campaign, newest first."""
    return list(
        db.session.scalars(
            select(LevelPublicity)
            .where(LevelPublicity.campaign_id == campaign.id, LevelPublicity.unit_id == unit.id)
            .order_by(LevelPublicity.starts_at.desc(), LevelPublicity.id.desc())
        )
    )


def of_campaign(campaign_id: int) -> list[LevelPublicity]:
    """Every publicity of the campaign, newest first (the console; the public page filters)."""
    return list(
        db.session.scalars(
            select(LevelPublicity)
            .where(LevelPublicity.campaign_id == campaign_id)
            .order_by(LevelPublicity.starts_at.desc(), LevelPublicity.id.desc())
        )
    )


def describe(publicity: LevelPublicity, now: datetime | None = None) -> dict[str, Any]:
    """A publicity as the API and the pages show it (staff: with the withdrawal's reason)."""
    status = publicity.status(now)
    return {
        "id": publicity.id,
        "unit": publicity.unit_name,
        "unit_level": publicity.unit_level,
        "level_label": level_label(publicity.unit_level),
        "starts_at": publicity.starts_at,
        "ends_at": publicity.ends_at,
        "days": publicity.days,
        "working_days": publicity.working_days,
        "contact": publicity.contact,
        "status": status,
        "status_label": STATUS_LABELS[status],
        "items": publicity.items,
        "opened_by": publicity.opened_by,
        "created_at": publicity.created_at,
        "withdrawn_at": publicity.withdrawn_at,
        "withdrawn_by": publicity.withdrawn_by,
        "withdraw_reason": publicity.withdraw_reason,
    }
