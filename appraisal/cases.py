"""「不满意」 becomes a case: assigned to the unit, due by the 15th of the next month (in the
programme's zone), answered with what the unit found and did, escalated to the bureau when
overdue. Every step is in the audit log."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from flask import current_app
from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy import case as sql_case
from sqlalchemy.orm import selectinload

from appraisal.models import Case, Programme, Rating
from appraisal.services import check_manage, programme_unit, zone
from campaigns.models import Account
from core import audit
from core.audit import AuditLog
from core.clock import utcnow
from core.errors import Conflict, Forbidden, NotFound, ValidationFailed
from core.extensions import db

MAX_TEXT = 2000


def deadline_for(programme: Programme, answered_at: datetime) -> datetime:
    """The end of day ``APPRAISAL_CASE_DAY`` (15) of the month after the answer, local time."""
    day = int(current_app.config.get("APPRAISAL_CASE_DAY") or 15)
    local = answered_at.astimezone(zone(programme)).date()
    year, month = (local.year + 1, 1) if local.month == 12 else (local.year, local.month + 1)
    due = datetime.combine(local.replace(year=year, month=month, day=day), time(0))
    return (due.replace(tzinfo=zone(programme)) + timedelta(days=1)).astimezone(UTC)


def open_for(rating: Rating, programme: Programme) -> Case | None:
    """A case for a 「不满意」 answer (None for the others)."""
    if rating.choice != "dissatisfied":
        return None
    case = Case(
        programme_id=rating.programme_id,
        unit_id=rating.unit_id,
        rating=rating,
        status="open",
        deadline_at=deadline_for(programme, rating.created_at or utcnow()),
    )
    db.session.add(case)
    db.session.flush()
    audit.record(
        "appraisal.case.open",
        "appraisal_case",
        case.id,
        after={"unit_id": case.unit_id, "deadline_at": case.deadline_at, "kind": rating.kind},
        actor=False,
    )
    return case


def _filtered(
    account: Account,
    programme: Programme,
    status: str | None,
    unit_code: str | None = None,
    overdue: bool = False,
) -> Select[tuple[Case]]:
    query = select(Case).where(Case.programme_id == programme.id)
    if account.role == "unit":
        query = query.where(Case.unit_id == account.unit_id)
    else:
        check_manage(account, programme)
    if unit_code:
        unit = programme_unit(account, programme, unit_code, writing=False)
        query = query.where(Case.unit_id == unit.id)
    now = utcnow()
    if status == "overdue":
        query = query.where(Case.status == "open", Case.deadline_at <= now)
    elif status:
        query = query.where(Case.status == status)
    if overdue:  # open past the deadline, or answered after it
        query = query.where(
            or_(
                and_(Case.status == "open", Case.deadline_at <= now),
                and_(Case.closed_at.is_not(None), Case.closed_at > Case.deadline_at),
            )
        )
    return query


# Escalated cases first, then the other open ones, then the closed; earliest deadline first.
_ORDER = (
    sql_case(
        (and_(Case.status == "open", Case.escalated_at.is_not(None)), 0),
        (Case.status == "open", 1),
        else_=2,
    ),
    Case.deadline_at,
    Case.id,
)


def cases_of(
    account: Account,
    programme: Programme,
    status: str | None,
    unit_code: str | None = None,
    overdue: bool = False,
) -> list[Case]:
    """The cases you see (a unit clerk: the unit's own), escalated ones first, then the open
    ones, then the closed, each by deadline. ``status``: open, closed, or overdue (open past the
    deadline); ``overdue``: open past the deadline or answered after it."""
    query = _filtered(account, programme, status, unit_code, overdue)
    return list(db.session.scalars(query.order_by(*_ORDER)))


def page_of(
    account: Account,
    programme: Programme,
    *,
    status: str | None = None,
    unit_code: str | None = None,
    overdue: bool = False,
    page: int = 1,
    per_page: int = 30,
) -> tuple[list[Case], int]:
    """One page of ``cases_of`` and the number of cases in all."""
    query = _filtered(account, programme, status, unit_code, overdue)
    total = db.session.scalar(
        select(func.count()).select_from(query.with_only_columns(Case.id).subquery())
    )
    rows = db.session.scalars(
        query.options(selectinload(Case.unit), selectinload(Case.rating))
        .order_by(*_ORDER)
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    return list(rows), int(total or 0)


def state_of(case: Case, now: datetime | None = None) -> str:
    """open, overdue (open past the deadline), escalated (overdue and reported to the bureau),
    closed, or closed_late (answered after the deadline)."""
    if case.status == "closed":
        late = case.closed_at is not None and case.closed_at > case.deadline_at
        return "closed_late" if late else "closed"
    if case.escalated_at is not None:
        return "escalated"
    return "overdue" if case.deadline_at <= (now or utcnow()) else "open"


def steps_of(case_ids: list[int]) -> dict[int, list[AuditLog]]:
    """Each case's audited steps (opened, escalated, answered), oldest first: one query."""
    out: dict[int, list[AuditLog]] = {i: [] for i in case_ids}
    if not case_ids:
        return out
    entries = db.session.scalars(
        select(AuditLog)
        .where(
            AuditLog.object_type == "appraisal_case",
            AuditLog.object_id.in_([str(i) for i in case_ids]),
            AuditLog.action.like("appraisal.case.%"),
        )
        .order_by(AuditLog.at, AuditLog.id)
    )
    for entry in entries:
        out[int(entry.object_id)].append(entry)
    return out


def get_case(account: Account, case_id: int) -> Case:
    case = db.session.get(Case, case_id)
    if case is None:
        raise NotFound("案件不存在", code="case_not_found")
    if account.role == "unit":
        if case.unit_id != account.unit_id:
            raise NotFound("案件不存在", code="case_not_found")
    else:
        programme = db.session.get(Programme, case.programme_id)
        assert programme is not None
        check_manage(account, programme)
    return case


def respond(account: Account, case: Case, findings: str, actions: str) -> Case:
    """The unit records what it found and did; the case closes (late answers are kept late)."""
    if account.role != "unit" or case.unit_id != account.unit_id:
        raise Forbidden("只有被评价的单位可以答复", code="not_case_unit")
    if case.status != "open":
        raise Conflict("该案件已答复", code="case_closed")
    findings, actions = findings.strip(), actions.strip()
    if not findings or not actions:
        raise ValidationFailed("请填写核实情况和整改措施", code="response_incomplete")
    if len(findings) > MAX_TEXT or len(actions) > MAX_TEXT:
        raise ValidationFailed(f"每项最多 {MAX_TEXT} 字", code="response_too_long")
    case.findings, case.actions = findings, actions
    case.status, case.closed_at, case.closed_by_id = "closed", utcnow(), account.id
    audit.record(
        "appraisal.case.respond",
        "appraisal_case",
        case.id,
        before={"status": "open"},
        after={"status": "closed", "late": case.closed_at > case.deadline_at},
    )
    return case


def escalate_overdue(now: datetime | None = None) -> int:
    """Mark open cases past their deadline as escalated to the bureau, once each."""
    now = now or utcnow()
    due = list(
        db.session.scalars(
            select(Case).where(
                Case.status == "open", Case.deadline_at <= now, Case.escalated_at.is_(None)
            )
        )
    )
    for case in due:
        case.escalated_at = now
        audit.record(
            "appraisal.case.escalate",
            "appraisal_case",
            case.id,
            after={"deadline_at": case.deadline_at, "escalated_at": now},
        )
    db.session.flush()
    return len(due)
