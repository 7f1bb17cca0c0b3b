"""「不满意」 becomes a case: assigned to the unit, due by the 15th of the next month (in the
programme's zone), answered with what the unit found and did, escalated to the bureau when
overdue. Every step is in the audit log."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from flask import current_app
from sqlalchemy import select

from appraisal.models import Case, Programme, Rating
from appraisal.services import check_manage, zone
from campaigns.models import Account
from core import audit
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


def cases_of(account: Account, programme: Programme, status: str | None) -> list[Case]:
    query = select(Case).where(Case.programme_id == programme.id).order_by(Case.deadline_at)
    if account.role == "unit":
        query = query.where(Case.unit_id == account.unit_id)
    else:
        check_manage(account, programme)
    if status == "overdue":
        query = query.where(Case.status == "open", Case.deadline_at <= utcnow())
    elif status:
        query = query.where(Case.status == status)
    return list(db.session.scalars(query))


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
