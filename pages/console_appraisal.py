"""The console's 群众评议 pages: a programme's month per unit (ranked as the 通报 ranks them),
the trend of the last months drawn as inline SVG by pages/static/console_appraisal.js, links to
the Excel 通报, the printable 通报 page, and the bureau's 「不满意」 cases across its units
(filters: unit, state, overdue; escalated first; each with its audited steps). Reads go through
appraisal.reports and appraisal.cases, with the same rules as the API: the bureau sees its
units, a unit clerk only its own row (and has the portal's page for its cases)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, request

from appraisal import cases, reports, services
from core.errors import AppError
from pages.appraisal_unit import case_rows
from pages.common import error_page, render_page, staff_page

bp = Blueprint("console_appraisal", __name__, url_prefix="/console", template_folder="templates")
bp.register_error_handler(AppError, error_page)
TREND_MONTHS = 6
CASES_PER_PAGE = 30
CASE_STATES = {"": "全部", "open": "待办理", "closed": "已办结"}


def percent(value: float | None) -> str:
    """A rate as the 通报 prints it: 85.7%, or 「—」 when there was nothing to divide by."""
    return "—" if value is None else f"{value * 100:.1f}%"


def _month_choices(programme: Any, count: int = 12) -> list[str]:
    last = reports.current_month(programme)
    return [last.shift(-back).label for back in range(count)]


@bp.route("/appraisal/<code>")
@staff_page("admin", "reviewer", "unit", login="console")
def appraisal_page(code: str) -> Any:
    programme = services.get_programme(code)
    try:
        month = reports.parse_month(request.args.get("month"), programme)
    except AppError:
        month = reports.current_month(programme)
    report = reports.month_report(g.account, programme, month)
    trend = reports.trend(g.account, programme, None, TREND_MONTHS)
    api = f"/api/v1/appraisal/programmes/{programme.code}/reports"
    data = {
        "programme": programme.code,
        "month": month.label,
        "trend": trend["months"],
        "trend_url": f"{api}/trend",
        "units": [{"code": r["unit_code"], "name": r["unit_name"]} for r in report["units"]],
    }
    return render_page(
        "pages/console/appraisal.html",
        campaign=None,
        percent=percent,
        programme=programme,
        report=report,
        months=_month_choices(programme),
        month=month.label,
        xlsx_url=f"{api}/{month.label}.xlsx",
        print_url=f"/console/appraisal/{programme.code}/bulletin/{month.label}",
        data=data,
        tab="report",
    )


@bp.route("/appraisal/<code>/bulletin/<month>")
@staff_page("admin", "reviewer", "unit", login="console")
def bulletin_page(code: str, month: str) -> Any:
    """The monthly 通报, printable: the ranked table and the cases, nothing to click."""
    programme = services.get_programme(code)
    parsed = reports.parse_month(month, programme)
    report = reports.month_report(g.account, programme, parsed)
    return render_page(
        "pages/console/appraisal_bulletin.html",
        campaign=None,
        percent=percent,
        programme=programme,
        report=report,
        month=parsed.label,
    )


@bp.route("/appraisal/<code>/cases")
@staff_page("admin", "reviewer", login="console")
def cases_page(code: str) -> Any:
    """The bureau's 「不满意」 cases across its units: escalated first, then open, then closed."""
    programme = services.get_programme(code)
    units = reports.visible_units(g.account, programme)
    unit_code = (request.args.get("unit") or "").strip()
    if unit_code not in {u.code for u in units}:
        unit_code = ""
    state = request.args.get("state") or ""
    state = state if state in CASE_STATES else ""
    overdue = request.args.get("overdue") == "1"
    try:
        page = max(1, min(int(request.args.get("page") or 1), 10_000))
    except ValueError:
        page = 1
    found, total = cases.page_of(
        g.account,
        programme,
        status=state or None,
        unit_code=unit_code or None,
        overdue=overdue,
        page=page,
        per_page=CASES_PER_PAGE,
    )
    pages = max(1, -(-total // CASES_PER_PAGE))
    query = {"unit": unit_code, "state": state, "overdue": "1" if overdue else ""}
    base = "&".join(f"{k}={v}" for k, v in query.items() if v)
    return render_page(
        "pages/console/appraisal_cases.html",
        campaign=None,
        tab="cases",
        programme=programme,
        units=units,
        unit_code=unit_code,
        state=state,
        states=CASE_STATES,
        overdue=overdue,
        rows=case_rows(found, programme),
        total=total,
        page=page,
        pages=pages,
        page_url=f"/console/appraisal/{programme.code}/cases?{base}{'&' if base else ''}page=",
    )
