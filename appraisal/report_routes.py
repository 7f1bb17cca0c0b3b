"""HTTP API of a programme's reports (item 4 of #19): the month per unit, a unit's trend, and
the monthly 通报 as Excel. Attached to the appraisal blueprint (``appraisal.routes``)."""

from __future__ import annotations

import functools
import io
from typing import Any

from flask import Response, g
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font

from appraisal import reports, services
from campaigns.services import staff_required
from core import audit
from core.extensions import db
from core.schemas import ErrorEnvelopeSchema

FORBIDDEN = "forbidden, no_unit, not_programme_bureau, not_own_unit, unit_not_in_programme"
RATE = {"description": "share from 0 to 1, four places; null when there is nothing to divide by"}


class AppraisalReportArgsSchema(Schema):
    month = fields.String(
        load_default=None,
        metadata={"description": "YYYY-MM in the programme's time zone; this month when absent"},
    )


class AppraisalTrendArgsSchema(Schema):
    unit = fields.String(
        load_default=None,
        metadata={"description": "a unit's code; absent: all the units you see, added up"},
    )
    months = fields.Integer(
        load_default=6,
        validate=validate.Range(min=1, max=reports.MAX_TREND_MONTHS),
        metadata={"description": "how many months up to this one (1–24, default 6)"},
    )


class AppraisalCountsSchema(Schema):
    sent = fields.Integer(metadata={"description": "invitations sent in the month"})
    capped = fields.Integer(
        metadata={
            "description": "invitations not sent in the month because the phone had its share "
            "(per-phone cap); apart from sent, in no rate"
        }
    )
    delivered = fields.Integer(metadata={"description": "of those, delivered (receipt)"})
    responded = fields.Integer(metadata={"description": "delivered invitations answered"})
    answers = fields.Integer(metadata={"description": "invited answers given in the month"})
    satisfied = fields.Integer(metadata={"description": "满意 among them"})
    basic = fields.Integer(metadata={"description": "基本满意 among them"})
    dissatisfied = fields.Integer(metadata={"description": "不满意 among them"})
    walk_in_answers = fields.Integer(metadata={"description": "walk-in answers (apart)"})
    walk_in_satisfied = fields.Integer(metadata={"description": "walk-in 满意"})
    walk_in_basic = fields.Integer(metadata={"description": "walk-in 基本满意"})
    walk_in_dissatisfied = fields.Integer(metadata={"description": "walk-in 不满意"})
    cases_opened = fields.Integer(metadata={"description": "cases opened in the month"})
    cases_closed = fields.Integer(metadata={"description": "cases answered in the month"})
    cases_overdue = fields.Integer(
        metadata={"description": "cases of the month past deadline: still open, or answered late"}
    )
    delivery_rate = fields.Float(allow_none=True, metadata={"description": "delivered / sent"})
    response_rate = fields.Float(
        allow_none=True, metadata={"description": "responded / delivered; " + RATE["description"]}
    )
    satisfaction_rate = fields.Float(
        allow_none=True,
        metadata={"description": "(满意 + 基本满意) / answers; " + RATE["description"]},
    )
    satisfied_rate = fields.Float(allow_none=True, metadata={"description": "满意 / answers"})
    walk_in_satisfaction_rate = fields.Float(
        allow_none=True, metadata={"description": "walk-in (满意 + 基本满意) / walk-in answers"}
    )
    walk_in_satisfied_rate = fields.Float(
        allow_none=True, metadata={"description": "walk-in 满意 / walk-in answers"}
    )


class AppraisalUnitReportSchema(AppraisalCountsSchema):
    rank = fields.Integer(
        allow_none=True, metadata={"description": "place by satisfaction; null without answers"}
    )
    unit_code = fields.String(metadata={"description": "unit code"})
    unit_name = fields.String(metadata={"description": "unit name"})


class AppraisalMonthReportSchema(Schema):
    programme = fields.String(metadata={"description": "programme code"})
    title = fields.String(metadata={"description": "programme name"})
    month = fields.String(metadata={"description": "YYYY-MM"})
    timezone = fields.String(metadata={"description": "the zone months are counted in"})
    units = fields.List(
        fields.Nested(AppraisalUnitReportSchema),
        metadata={"description": "one row per unit you see, ranked by satisfaction then answers"},
    )
    total = fields.Nested(AppraisalCountsSchema, metadata={"description": "the rows added up"})


class AppraisalTrendPointSchema(AppraisalCountsSchema):
    month = fields.String(metadata={"description": "YYYY-MM"})


class AppraisalTrendSchema(Schema):
    programme = fields.String(metadata={"description": "programme code"})
    unit_code = fields.String(
        allow_none=True, metadata={"description": "the unit, or null for all you see"}
    )
    months = fields.List(
        fields.Nested(AppraisalTrendPointSchema), metadata={"description": "oldest month first"}
    )


HEADERS = [
    ("名次", "rank", None),
    ("单位", "unit_name", None),
    ("发送邀请", "sent", None),
    ("送达", "delivered", None),
    ("送达率", "delivery_rate", "0.0%"),
    ("回复", "responded", None),
    ("回复率", "response_rate", "0.0%"),
    ("评价数", "answers", None),
    ("满意", "satisfied", None),
    ("基本满意", "basic", None),
    ("不满意", "dissatisfied", None),
    ("满意率（满意+基本满意）", "satisfaction_rate", "0.0%"),
    ("满意占比（仅满意）", "satisfied_rate", "0.0%"),
    ("现场评价数", "walk_in_answers", None),
    ("现场满意率", "walk_in_satisfaction_rate", "0.0%"),
    ("频次限制未发送", "capped", None),
    ("新增不满意件", "cases_opened", None),
    ("办结", "cases_closed", None),
    ("逾期", "cases_overdue", None),
]


def workbook(report: dict[str, Any]) -> bytes:
    """The 通报 as .xlsx: Chinese headers frozen on row 1, units in rank order, a total row.
    Rates are numbers shown as percentages; a rate over nothing is 「—」. No phone numbers."""
    book = Workbook()
    sheet = book.active
    sheet.title = f"{report['month']} 通报"
    sheet.append([title for title, _, _ in HEADERS])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(horizontal="center", wrap_text=True)
    rows = [*report["units"], report["total"] | {"rank": None, "unit_name": "合计"}]
    for row in rows:
        values = []
        for _, key, _ in HEADERS:
            value = row.get(key)
            values.append("—" if value is None and key.endswith("rate") else value)
        sheet.append(values)
        for cell, (_, _key, number_format) in zip(sheet[sheet.max_row], HEADERS, strict=True):
            if number_format and isinstance(cell.value, float):
                cell.number_format = number_format
    sheet.freeze_panes = "C2"
    sheet.column_dimensions["B"].width = 28
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _refusals(blp: Blueprint, **statuses: str):  # type: ignore[no-untyped-def]
    """The error answers an operation may give, as ``appraisal.routes.refusals`` declares them."""

    def decorate(view):  # type: ignore[no-untyped-def]
        for key, description in sorted(statuses.items(), reverse=True):
            view = blp.alt_response(
                int(key[1:]), schema=ErrorEnvelopeSchema, description=description
            )(view)
        return view

    return decorate


def attach(blp: Blueprint) -> None:
    """Add the report operations to the appraisal API blueprint (called by appraisal.routes)."""
    refusals = functools.partial(_refusals, blp)

    REPORT_REFUSALS = {
        "s403": FORBIDDEN,
        "s404": "programme_not_found, unit_not_found",
        "s422": "validation_error, bad_month, bad_months",
    }

    @blp.route("/programmes/<code>/reports", methods=["GET"])
    @blp.arguments(AppraisalReportArgsSchema, location="query")
    @blp.response(200, AppraisalMonthReportSchema)
    @refusals(**REPORT_REFUSALS)
    @staff_required("admin", "reviewer", "unit")
    def month_report(args: dict[str, Any], code: str) -> Any:
        """A month's report per unit.

        Invitations sent and delivered, response rate (answered / delivered), satisfaction rate
        ((满意 + 基本满意) / answers) and 满意 alone, walk-in answers apart, cases opened, closed
        and overdue; months in the programme's time zone. The bureau sees its units; a unit clerk
        only the unit's own row."""
        programme = services.get_programme(code)
        month = reports.parse_month(args.get("month"), programme)
        return reports.month_report(g.account, programme, month)

    @blp.route("/programmes/<code>/reports/trend", methods=["GET"])
    @blp.arguments(AppraisalTrendArgsSchema, location="query")
    @blp.response(200, AppraisalTrendSchema)
    @refusals(**REPORT_REFUSALS)
    @staff_required("admin", "reviewer", "unit")
    def report_trend(args: dict[str, Any], code: str) -> Any:
        """A unit's (or all your units') numbers month by month.

        The last ``months`` months up to this one, oldest first; a unit clerk only the own unit."""
        programme = services.get_programme(code)
        return reports.trend(g.account, programme, args.get("unit"), args["months"])

    @blp.route("/programmes/<code>/reports/<month>.xlsx", methods=["GET"])
    @blp.response(200, description="the 通报 workbook (.xlsx); no phone numbers")
    @refusals(**REPORT_REFUSALS)
    @staff_required("admin", "reviewer", "unit")
    def report_workbook(code: str, month: str) -> Response:
        """The monthly 通报 as Excel.

        One row per unit you see, ranked by satisfaction rate then by answers, with a total row;
        Chinese headers frozen at the top. Audited as an export."""
        programme = services.get_programme(code)
        parsed = reports.parse_month(month, programme)
        report = reports.month_report(g.account, programme, parsed)
        data = workbook(report)
        audit.record(
            "appraisal.report.export",
            "appraisal_programme",
            programme.code,
            after={"month": parsed.label, "units": len(report["units"])},
        )
        db.session.commit()
        return Response(
            data,
            mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={
                "Content-Disposition": f"attachment; filename={programme.code}-{parsed.label}.xlsx",
                "Cache-Control": "private, no-store",
            },
        )
