"""Reports of a satisfaction programme (item 4 of #19): per unit and month, in the programme's
time zone — invitations sent and delivered, the response rate, the satisfaction rates of invited
answers, walk-in answers apart, the invitations the per-phone cap kept from being sent (apart,
in no rate), and the 「不满意」 cases opened, closed and overdue.

Counting is done by SQL aggregates grouped by unit: a month's report is four queries however
many units take part; a trend is three queries a month. Rates over nothing are None, never 0."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import and_, case, func, or_, select

from appraisal.models import Case, Encounter, Invitation, Programme, Rating
from appraisal.services import check_manage, zone
from campaigns import services as campaign_services
from campaigns.models import Account, Unit
from core.clock import utcnow
from core.errors import Forbidden, ValidationFailed
from core.extensions import db

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
MAX_TREND_MONTHS = 24
COUNTS = (
    "sent",
    "capped",
    "delivered",
    "responded",
    "answers",
    "satisfied",
    "basic",
    "dissatisfied",
    "walk_in_answers",
    "walk_in_satisfied",
    "walk_in_basic",
    "walk_in_dissatisfied",
    "cases_opened",
    "cases_closed",
    "cases_overdue",
)


@dataclass(frozen=True)
class Month:
    year: int
    month: int

    @property
    def label(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def shift(self, months: int) -> Month:
        index = self.year * 12 + self.month - 1 + months
        return Month(index // 12, index % 12 + 1)

    def bounds(self, programme: Programme) -> tuple[datetime, datetime]:
        """The month's first and the next month's first moment, local midnight, in UTC."""
        tz = zone(programme)
        nxt = self.shift(1)
        start = datetime.combine(date(self.year, self.month, 1), time(0), tzinfo=tz)
        end = datetime.combine(date(nxt.year, nxt.month, 1), time(0), tzinfo=tz)
        return start.astimezone(UTC), end.astimezone(UTC)


def current_month(programme: Programme, now: datetime | None = None) -> Month:
    local = (now or utcnow()).astimezone(zone(programme))
    return Month(local.year, local.month)


def parse_month(value: str | None, programme: Programme) -> Month:
    """``YYYY-MM``, or this month in the programme's zone when not given."""
    if not value:
        return current_month(programme)
    match = MONTH.match(value.strip())
    if match is None or not 2000 <= int(match.group(1)) <= 2100:
        raise ValidationFailed("月份格式应为 YYYY-MM", code="bad_month", details={"month": value})
    return Month(int(match.group(1)), int(match.group(2)))


def rate(part: int, whole: int) -> float | None:
    """A share rounded to four places; None when there is nothing to divide by."""
    return None if not whole else round(part / whole, 4)


# --- who sees what ------------------------------------------------------------------------------


def visible_units(account: Account, programme: Programme) -> list[Unit]:
    """The bureau (admins, its reviewers): every unit under the programme's bureau; a unit
    clerk: the clerk's own unit only, when it takes part (403 otherwise)."""
    bureau = programme.bureau
    if account.role == "unit":
        unit = account.unit
        if unit is None:
            raise Forbidden("账号未关联单位", code="no_unit")
        if not bureau.contains(unit) or unit.id == bureau.id:
            raise Forbidden("该单位不在本评议项目范围内", code="unit_not_in_programme")
        return [unit]
    check_manage(account, programme)
    query = (
        select(Unit)
        .where(Unit.path.startswith(bureau.path), Unit.id != bureau.id)
        .order_by(Unit.path, Unit.code)
    )
    return list(db.session.scalars(query))


def trend_units(account: Account, programme: Programme, unit_code: str | None) -> list[Unit]:
    """The units a trend adds up: one named unit (it must be visible), or all visible."""
    units = visible_units(account, programme)
    if not unit_code:
        return units
    for unit in units:
        if unit.code == unit_code:
            return [unit]
    if account.role == "unit":
        raise Forbidden("只能查看本单位的报表", code="not_own_unit")
    campaign_services.get_unit(unit_code)  # 404 unit_not_found for an unknown code
    raise Forbidden("该单位不在本评议项目范围内", code="unit_not_in_programme")


# --- counting -----------------------------------------------------------------------------------


def _ones(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def counts(
    programme: Programme, month: Month, unit_ids: list[int], now: datetime | None = None
) -> dict[int, dict[str, int]]:
    """Every count of ``COUNTS`` for each unit id (zeros included): three grouped queries."""
    now = now or utcnow()
    start, end = month.bounds(programme)
    out: dict[int, dict[str, int]] = {uid: dict.fromkeys(COUNTS, 0) for uid in unit_ids}
    if not unit_ids:
        return out
    delivered = Invitation.delivery == "delivered"
    sent = and_(Invitation.sent_at >= start, Invitation.sent_at < end)
    # A capped invitation is final when it is written (nothing changes it after): its
    # updated_at is the moment the cap stopped it.
    capped = and_(
        Invitation.status == "capped", Invitation.updated_at >= start, Invitation.updated_at < end
    )
    invitations = db.session.execute(
        select(
            Encounter.unit_id,
            _ones(sent),
            _ones(and_(sent, delivered)),
            _ones(and_(sent, delivered, Rating.id.is_not(None))),
            _ones(capped),
        )
        .join(Encounter, Encounter.id == Invitation.encounter_id)
        .outerjoin(Rating, Rating.encounter_id == Encounter.id)
        .where(
            Invitation.programme_id == programme.id,
            Encounter.unit_id.in_(unit_ids),
            or_(sent, capped),
        )
        .group_by(Encounter.unit_id)
    )
    for unit_id, n_sent, n_delivered, responded, n_capped in invitations:
        row = out[unit_id]
        row["sent"], row["delivered"], row["responded"] = (
            int(n_sent),
            int(n_delivered),
            int(responded),
        )
        row["capped"] = int(n_capped)
    ratings = db.session.execute(
        select(
            Rating.unit_id,
            Rating.kind,
            func.count(Rating.id),
            _ones(Rating.choice == "satisfied"),
            _ones(Rating.choice == "basic"),
            _ones(Rating.choice == "dissatisfied"),
        )
        .where(
            Rating.programme_id == programme.id,
            Rating.unit_id.in_(unit_ids),
            Rating.created_at >= start,
            Rating.created_at < end,
        )
        .group_by(Rating.unit_id, Rating.kind)
    )
    for unit_id, kind, answers, satisfied, basic, dissatisfied in ratings:
        prefix = "walk_in_" if kind == "walk_in" else ""
        row = out[unit_id]
        row[f"{prefix}answers"] += int(answers)
        row[f"{prefix}satisfied"] += int(satisfied)
        row[f"{prefix}basic"] += int(basic)
        row[f"{prefix}dissatisfied"] += int(dissatisfied)
    opened = and_(Case.created_at >= start, Case.created_at < end)
    closed = and_(Case.closed_at >= start, Case.closed_at < end)
    overdue = and_(
        opened,
        or_(
            and_(Case.status == "open", Case.deadline_at <= now),
            and_(Case.closed_at.is_not(None), Case.closed_at > Case.deadline_at),
        ),
    )
    cases = db.session.execute(
        select(Case.unit_id, _ones(opened), _ones(closed), _ones(overdue))
        .where(Case.programme_id == programme.id, Case.unit_id.in_(unit_ids), or_(opened, closed))
        .group_by(Case.unit_id)
    )
    for unit_id, n_opened, n_closed, n_overdue in cases:
        row = out[unit_id]
        row["cases_opened"], row["cases_closed"] = int(n_opened), int(n_closed)
        row["cases_overdue"] = int(n_overdue)
    return out


def with_rates(row: dict[str, Any]) -> dict[str, Any]:
    """The counts with their rates: delivery, response, satisfaction (满意 + 基本满意) and 满意
    alone, over invited answers; the same two for walk-in answers."""
    return row | {
        "delivery_rate": rate(row["delivered"], row["sent"]),
        "response_rate": rate(row["responded"], row["delivered"]),
        "satisfaction_rate": rate(row["satisfied"] + row["basic"], row["answers"]),
        "satisfied_rate": rate(row["satisfied"], row["answers"]),
        "walk_in_satisfaction_rate": rate(
            row["walk_in_satisfied"] + row["walk_in_basic"], row["walk_in_answers"]
        ),
        "walk_in_satisfied_rate": rate(row["walk_in_satisfied"], row["walk_in_answers"]),
    }


def _rank_key(row: dict[str, Any]) -> tuple[int, float, int, str]:
    satisfaction = row["satisfaction_rate"]
    return (satisfaction is None, -(satisfaction or 0.0), -row["answers"], row["unit_code"])


def month_report(account: Account, programme: Programme, month: Month) -> dict[str, Any]:
    """The month's rows, ranked by satisfaction rate (units without answers last), then by
    number of answers, then code; with the total over the rows shown."""
    units = visible_units(account, programme)
    numbers = counts(programme, month, [u.id for u in units])
    rows = [with_rates({"unit_code": u.code, "unit_name": u.name} | numbers[u.id]) for u in units]
    rows.sort(key=_rank_key)
    for position, row in enumerate(rows, start=1):
        row["rank"] = position if row["satisfaction_rate"] is not None else None
    total = with_rates({key: sum(r[key] for r in rows) for key in COUNTS})
    return {
        "programme": programme.code,
        "title": programme.title,
        "month": month.label,
        "timezone": programme.timezone,
        "units": rows,
        "total": total,
    }


def trend(
    account: Account, programme: Programme, unit_code: str | None, months: int
) -> dict[str, Any]:
    """The last ``months`` months up to this one, for one unit or all the visible ones added."""
    if not 1 <= months <= MAX_TREND_MONTHS:
        raise ValidationFailed(
            f"月数应在 1 到 {MAX_TREND_MONTHS} 之间", code="bad_months", details={"months": months}
        )
    units = trend_units(account, programme, unit_code)
    ids = [u.id for u in units]
    last = current_month(programme)
    points = []
    for back in range(months - 1, -1, -1):
        month = last.shift(-back)
        numbers = counts(programme, month, ids)
        added = {key: sum(n[key] for n in numbers.values()) for key in COUNTS}
        points.append(with_rates({"month": month.label} | added))
    return {
        "programme": programme.code,
        "unit_code": unit_code if unit_code else None,
        "months": points,
    }
