"""The unit's 群众评议 pages in the portal, phone first (a clinic clerk at 390×844: cards, not
tables): upload a week's encounters and read the row-by-row report, the past uploads, and the
unit's 「不满意」 cases with their deadline and state, answered with what was found and done.

The pages are server-rendered through the same services as the API (another unit's upload or
case is the API's own 404); the upload and the answers go from appraisal_unit.js through
/api/v1/appraisal with the session cookie and the CSRF header."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, redirect, request

from appraisal import cases, phone_cap, services
from appraisal.labels import CASE_STATE_LABELS, CASE_STEP_LABELS, CHOICE_LABELS, KIND_LABELS
from appraisal.models import Case, Programme
from core.audit import AuditLog
from core.errors import AppError
from pages.common import error_page, local_time, render_page, staff_page

bp = Blueprint(
    "appraisal_unit", __name__, url_prefix="/portal/appraisal", template_folder="templates"
)
bp.register_error_handler(AppError, error_page)

CASE_TABS = {"open": "待办理", "closed": "已办结"}
CASES_SHOWN = 50
UPLOADS_SHOWN = 20
API = "/api/v1/appraisal"


def step_rows(entries: list[AuditLog], programme: Programme) -> list[dict[str, Any]]:
    """A case's audited steps as people read them: what, when (the programme's zone), who."""
    return [
        {
            "action": e.action,
            "label": CASE_STEP_LABELS.get(e.action, e.action),
            "at": local_time(e.at, programme),
            "actor": "系统" if e.actor_name == "system" else e.actor_name,
        }
        for e in entries
    ]


def case_rows(found: list[Case], programme: Programme) -> list[dict[str, Any]]:
    """Cases with their state, local times and audited steps (the steps in one query)."""
    steps = cases.steps_of([c.id for c in found])
    rows = []
    for case in found:
        state = cases.state_of(case)
        rows.append(
            {
                "case": case,
                "rating": case.rating,
                "state": state,
                "state_label": CASE_STATE_LABELS[state],
                "choice_label": CHOICE_LABELS.get(case.rating.choice, case.rating.choice),
                "kind_label": KIND_LABELS.get(case.rating.kind, case.rating.kind),
                "answered_at": local_time(case.rating.created_at, programme),
                "deadline": local_time(case.deadline_at, programme),
                "closed_at": local_time(case.closed_at, programme),
                "steps": step_rows(steps[case.id], programme),
            }
        )
    return rows


@bp.route("")
@staff_page("unit", login="portal")
def index() -> Any:
    """The programmes the clerk's unit takes part in; straight to the only one."""
    programmes = services.visible_programmes(g.account)
    if len(programmes) == 1:
        return redirect(f"/portal/appraisal/{programmes[0].code}")
    return render_page("pages/appraisal/index.html", programmes=programmes, section="appraisal")


@bp.route("/<code>")
@staff_page("unit", login="portal")
def programme_page(code: str) -> Any:
    programme = services.get_programme(code)
    unit = services.programme_unit(g.account, programme, None, writing=False)
    tab = request.args.get("cases") if request.args.get("cases") in CASE_TABS else "open"
    found, total = cases.page_of(g.account, programme, status=tab, per_page=CASES_SHOWN)
    open_cases = cases.cases_of(g.account, programme, "open")
    overdue = sum(1 for c in open_cases if cases.state_of(c) in ("overdue", "escalated"))
    uploads = services.uploads_of(g.account, programme, None, limit=UPLOADS_SHOWN)
    data = {
        "upload_url": f"{API}/programmes/{programme.code}/uploads",
        "report_url": f"/portal/appraisal/{programme.code}/uploads/",
        "case_url": f"{API}/cases/",
        "done_url": f"/portal/appraisal/{programme.code}?cases=closed&done=",
    }
    return render_page(
        "pages/appraisal/programme.html",
        section="appraisal",
        programme=programme,
        unit=unit,
        writable=programme.status == "active",
        tab=tab,
        tabs=CASE_TABS,
        cases=case_rows(found, programme),
        cases_total=total,
        cases_shown=CASES_SHOWN,
        open_count=len(open_cases),
        overdue_count=overdue,
        done=request.args.get("done", ""),
        uploads=[{"u": u, "at": local_time(u.created_at, programme)} for u in uploads],
        cap=phone_cap.describe(phone_cap.rules_of(programme)),
        data=data,
    )


@bp.route("/<code>/uploads/<id:upload_id>")
@staff_page("unit", login="portal")
def upload_page(code: str, upload_id: int) -> Any:
    """One upload's report: rows read, accepted, and each refused row with its reason."""
    programme = services.get_programme(code)
    services.programme_unit(g.account, programme, None, writing=False)
    record = services.get_upload(g.account, programme, upload_id)
    return render_page(
        "pages/appraisal/upload.html",
        section="appraisal",
        programme=programme,
        upload=record,
        at=local_time(record.created_at, programme),
        refused=record.refused or [],
    )
