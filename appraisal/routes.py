"""HTTP API of satisfaction programmes (群众评议): programmes, windows, encounters, 退订."""

from __future__ import annotations

import csv
import hmac
import io
from typing import Any

from flask import Response, current_app, g, request
from flask_smorest import Blueprint

from appraisal import cases, invitations, jobs, pii, report_routes, services, uploads
from appraisal.invitations import link_base
from appraisal.labels import CHOICE_LABELS, INVITATION_STATUS_LABELS
from appraisal.models import Upload, Window
from appraisal.schemas import (
    CaseArgsSchema,
    CaseListSchema,
    CaseResponseSchema,
    CaseSchema,
    EncounterArgsSchema,
    EncounterBatchSchema,
    EncounterPageSchema,
    OptOutResultSchema,
    OptOutSchema,
    ProgrammeCreateSchema,
    ProgrammeListSchema,
    ProgrammeSchema,
    ProgrammeUpdateSchema,
    RegisterResultSchema,
    SmsCallbackArgsSchema,
    SmsCallbackResultSchema,
    SmsReceiptSchema,
    SmsReplySchema,
    UploadArgsSchema,
    UploadListSchema,
    WindowCreateSchema,
    WindowListSchema,
)
from campaigns.services import staff_required
from core import audit
from core.errors import NotFound, ValidationFailed
from core.extensions import db
from core.http import accepts_any_body
from core.schemas import ErrorEnvelopeSchema

blp = Blueprint(
    "appraisal",
    __name__,
    url_prefix="/api/v1/appraisal",
    description="群众评议：就诊登记、短信邀请、退订 (satisfaction programmes)",
)


def refusals(**statuses: str):  # type: ignore[no-untyped-def]
    """Declare the error answers an operation may give: ``refusals(s404="…")``."""

    def decorate(view):  # type: ignore[no-untyped-def]
        for key, description in sorted(statuses.items(), reverse=True):
            view = blp.alt_response(
                int(key[1:]), schema=ErrorEnvelopeSchema, description=description
            )(view)
        return view

    return decorate


NOT_FOUND = "programme_not_found, unit_not_found"
FORBIDDEN = "forbidden, no_unit, not_programme_bureau, not_own_unit, unit_not_in_programme"


EXAMPLE_PROGRAMME = {
    "code": "qs-pj",
    "title": "青山县群众满意度评议",
    "bureau_code": "K1",
    "retention_days": 90,
}
EXAMPLE_BATCH = {
    "encounters": [
        {"phone": "13812341234", "date": "2024-05-01", "department": "内科", "staff_name": "王医生"}
    ]
}


def _window_out(window: Window) -> dict[str, Any]:
    url = f"{link_base()}/r/u/{window.token}"
    return {
        "id": window.id,
        "name": window.name,
        "unit_code": window.unit.code,
        "url": url,
        "qr_url": f"{url}/qr.svg",
    }


def _after_register(outcome: services.Outcome) -> None:
    db.session.commit()
    if outcome.accepted:
        jobs.enqueue_dispatch()


@blp.route("/programmes", methods=["POST"])
@blp.arguments(ProgrammeCreateSchema, example=EXAMPLE_PROGRAMME)
@blp.response(201, ProgrammeSchema)
@refusals(
    s403=FORBIDDEN,
    s404="unit_not_found",
    s409="programme_exists",
    s422="validation_error, bureau_required, invalid_timezone",
)
@staff_required("admin", "reviewer")
def create_programme(body: dict[str, Any]) -> Any:
    """Set up a satisfaction programme.

    Admins, or a bureau's reviewers for their bureau or one below it. The units under the
    bureau upload encounters; phone numbers are deleted ``retention_days`` after each visit."""
    programme = services.create_programme(g.account, body)
    db.session.commit()
    return programme


@blp.route("/programmes", methods=["GET"])
@blp.response(200, ProgrammeListSchema)
@refusals(s403="no_unit")
@staff_required("admin", "reviewer", "unit")
def list_programmes() -> Any:
    """The programmes you take part in.

    Admins see all; reviewers their bureau's and those below; unit clerks the active ones
    their unit belongs to."""
    return {"items": services.visible_programmes(g.account)}


@blp.route("/programmes/<code>", methods=["PATCH"])
@blp.arguments(ProgrammeUpdateSchema, example={"retention_days": 60})
@blp.response(200, ProgrammeSchema)
@refusals(s403=FORBIDDEN, s404=NOT_FOUND, s422="validation_error")
@staff_required("admin", "reviewer")
def update_programme(body: dict[str, Any], code: str) -> Any:
    """Rename, change the retention, or close a programme.

    A shorter retention applies to the numbers already stored: the hourly purge deletes those
    now past it. Audited."""
    programme = services.update_programme(g.account, services.get_programme(code), body)
    db.session.commit()
    return programme


@blp.route("/programmes/<code>/windows", methods=["POST"])
@blp.arguments(WindowCreateSchema, example={"name": "门诊大厅"})
@blp.response(201, WindowListSchema)
@refusals(
    s403=FORBIDDEN, s404=NOT_FOUND, s409="programme_closed", s422="validation_error, unit_required"
)
@staff_required("admin", "reviewer", "unit")
def create_window(body: dict[str, Any], code: str) -> Any:
    """Add a service window with its walk-in QR code.

    The answer lists the unit's windows, this one last: each has the page its QR code opens and
    the code itself as SVG. Walk-in answers are reported apart from invited ones."""
    programme = services.get_programme(code)
    window = services.create_window(g.account, programme, body.get("unit_code"), body["name"])
    db.session.commit()
    return {"items": [_window_out(window)]}


@blp.route("/programmes/<code>/windows", methods=["GET"])
@blp.response(200, WindowListSchema)
@refusals(s403=FORBIDDEN, s404=NOT_FOUND)
@staff_required("admin", "reviewer", "unit")
def list_windows(code: str) -> Any:
    """The windows of a programme.

    A unit clerk sees the unit's own windows; the bureau every unit's."""
    programme = services.get_programme(code)
    return {"items": [_window_out(w) for w in services.windows_of(g.account, programme)]}


@accepts_any_body
@blp.route("/programmes/<code>/uploads", methods=["POST"])
@blp.arguments(UploadArgsSchema, location="query")
@blp.doc(
    requestBody={
        "required": True,
        "description": "the file: multipart field ``file``, or the raw bytes of the file",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": (
                                ".xlsx or CSV; first row: 手机号, 就诊日期, 科室[, 工作人员, 工号]"
                            ),
                        }
                    },
                }
            },
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
        },
    }
)
@blp.response(201, RegisterResultSchema)
@refusals(
    s403=FORBIDDEN,
    s404=NOT_FOUND,
    s409="programme_closed",
    s413="payload_too_large",
    s422="wrong_file_type, file_too_large, missing_columns, too_many_rows, empty_file",
    s503="pii_key_missing, pii_key_invalid",
)
@staff_required("admin", "reviewer", "unit")
def upload(args: dict[str, Any], code: str) -> Any:
    """Upload a file of encounters (Excel .xlsx or CSV).

    The type is told from the content, not the name. Each row is validated on its own (a valid
    mainland mobile number, a date neither in the future nor past the retention, a department,
    no duplicate of another row or an earlier upload, no number that opted out); the good rows
    are stored with the phone encrypted and invited by text, the others come back with their
    row number and reason. The report is kept (GET …/uploads/<id>) and holds no phone number."""
    programme = services.get_programme(code)
    unit = services.programme_unit(g.account, programme, args.get("unit_code"))
    if request.files.get("file") is not None:
        storage = request.files["file"]
        data, filename = storage.read(), storage.filename or "upload"
    else:
        data, filename = request.get_data(), request.headers.get("X-Filename", "upload")
    if not data:
        raise ValidationFailed("请选择要上传的文件", code="empty_file")
    kind, rows = uploads.read(data)
    record = Upload(
        programme_id=programme.id,
        unit_id=unit.id,
        filename=filename[:200],
        kind=kind,
        created_by_id=g.account.id,
    )
    db.session.add(record)
    db.session.flush()
    outcome = services.register(programme, unit, rows, source="upload", upload=record)
    record.rows_total = len(rows)
    record.rows_accepted = len(outcome.accepted)
    record.refused = [r.as_dict() for r in outcome.refused]
    audit.record(
        "appraisal.upload",
        "appraisal_upload",
        record.id,
        after={"unit": unit.code, "rows": len(rows), "accepted": len(outcome.accepted)},
    )
    _after_register(outcome)
    return _upload_out(record)


def _upload_out(record: Upload) -> dict[str, Any]:
    return {
        "upload_id": record.id,
        "kind": record.kind,
        "rows_total": record.rows_total,
        "rows_accepted": record.rows_accepted,
        "refused": record.refused,
    }


@blp.route("/programmes/<code>/uploads", methods=["GET"])
@blp.arguments(UploadArgsSchema, location="query")
@blp.response(200, UploadListSchema)
@refusals(s403=FORBIDDEN, s404=NOT_FOUND)
@staff_required("admin", "reviewer", "unit")
def list_uploads(args: dict[str, Any], code: str) -> Any:
    """The latest 50 uploads, newest first.

    A unit clerk sees the unit's own; the bureau every unit's, or one unit's with
    ``unit_code``. Each with its file name, rows read, accepted and refused (no phone number)."""
    programme = services.get_programme(code)
    return {
        "items": [
            {
                "upload_id": u.id,
                "unit_code": u.unit.code,
                "filename": u.filename,
                "kind": u.kind,
                "rows_total": u.rows_total,
                "rows_accepted": u.rows_accepted,
                "rows_refused": len(u.refused or []),
                "created_at": u.created_at,
            }
            for u in services.uploads_of(g.account, programme, args.get("unit_code"))
        ]
    }


@blp.route("/programmes/<code>/uploads/<id:upload_id>", methods=["GET"])
@blp.response(200, RegisterResultSchema)
@refusals(s403=FORBIDDEN, s404="programme_not_found, upload_not_found")
@staff_required("admin", "reviewer", "unit")
def get_upload(code: str, upload_id: int) -> Any:
    """An upload's report.

    Rows read, rows accepted, and each refused row with its reason; for the unit that uploaded
    it and its bureau (404 for another unit)."""
    programme = services.get_programme(code)
    record = services.get_upload(g.account, programme, upload_id)
    return _upload_out(record)


@blp.route("/programmes/<code>/encounters", methods=["POST"])
@blp.arguments(EncounterBatchSchema, example=EXAMPLE_BATCH)
@blp.response(201, RegisterResultSchema)
@refusals(
    s403=FORBIDDEN,
    s404=NOT_FOUND,
    s409="programme_closed",
    s422="validation_error, too_many_rows, unit_required",
    s503="pii_key_missing, pii_key_invalid",
)
@staff_required("admin", "reviewer", "unit")
def register(body: dict[str, Any], code: str) -> Any:
    """Register encounters from a hospital system.

    The same checks as an upload, row by row (``row`` is the position in ``encounters`` from
    1); at most ``APPRAISAL_API_MAX_ROWS`` (500) per call. Accepted visits are invited by text."""
    from_config = int(current_app.config.get("APPRAISAL_API_MAX_ROWS") or 500)
    if len(body["encounters"]) > from_config:
        raise ValidationFailed(
            f"一次最多登记 {from_config} 条",
            code="too_many_rows",
            details={"max_rows": from_config},
        )
    programme = services.get_programme(code)
    unit = services.programme_unit(g.account, programme, body.get("unit_code"))
    rows = list(enumerate(body["encounters"], start=1))
    outcome = services.register(programme, unit, rows, source="api")
    audit.record(
        "appraisal.register",
        "appraisal_programme",
        programme.code,
        after={"unit": unit.code, "rows": len(rows), "accepted": len(outcome.accepted)},
    )
    _after_register(outcome)
    return {
        "upload_id": None,
        "kind": None,
        "rows_total": len(rows),
        "rows_accepted": len(outcome.accepted),
        "refused": [r.as_dict() for r in outcome.refused],
    }


@blp.route("/programmes/<code>/encounters", methods=["GET"])
@blp.arguments(EncounterArgsSchema, location="query")
@blp.response(200, EncounterPageSchema)
@refusals(s403=FORBIDDEN, s404=NOT_FOUND, s422="validation_error")
@staff_required("admin", "reviewer", "unit")
def list_encounters(args: dict[str, Any], code: str) -> Any:
    """Encounters with their invitation's status, newest first.

    Phone numbers are masked (138****1234), and *** once deleted by the retention; no answer
    of this API ever holds a whole number."""
    programme = services.get_programme(code)
    rows, total = services.encounters_of(
        g.account, programme, args.get("unit_code"), args["page"], args["per_page"]
    )
    items = []
    numbers = services.nominees_by_id([e.nomination_id for e, _, _ in rows])
    for encounter, invitation, rating in rows:
        nominee = numbers.get(encounter.nomination_id)
        items.append(
            {
                "id": encounter.id,
                "unit_code": encounter.unit.code,
                "phone": encounter.phone_masked,
                "date": encounter.encounter_date,
                "department": encounter.department,
                "staff_name": encounter.staff_name,
                "source": encounter.source,
                "nominee_number": nominee.number if nominee else None,
                "invitation_status": invitation.status if invitation else None,
                "invitation_error": invitation.error_code if invitation else None,
                "delivery": invitation.delivery if invitation else None,
                "answered": rating is not None,
            }
        )
    return {"items": items, "page": args["page"], "per_page": args["per_page"], "total": total}


@blp.route("/opt-outs", methods=["POST"])
@blp.arguments(OptOutSchema, example={"phone": "13812341234", "source": "reply"})
@blp.response(200, OptOutResultSchema)
@refusals(s422="validation_error, bad_phone")
@staff_required("admin", "reviewer")
def opt_out(body: dict[str, Any]) -> Any:
    """Record a 退订 (an SMS reply, or asked in person).

    The number is kept only as its keyed hash and is never texted again by any programme;
    invitations to it not yet sent are stopped. Audited with the number masked."""
    new = services.opt_out_phone(body["phone"], body["source"])
    db.session.commit()
    return {"new": new}


@blp.route("/programmes/<code>/cases", methods=["GET"])
@blp.arguments(CaseArgsSchema, location="query")
@blp.response(200, CaseListSchema)
@refusals(s403=FORBIDDEN, s404=NOT_FOUND, s422="validation_error")
@staff_required("admin", "reviewer", "unit")
def list_cases(args: dict[str, Any], code: str) -> Any:
    """Cases opened by 「不满意」 answers: escalated first, then open, then closed.

    Each group by earliest deadline. A unit clerk sees the unit's own; the bureau every unit's
    (or one unit's with ``unit_code``), with ``status=overdue`` for the open ones past their
    deadline (escalated by the worker every 15 minutes) and ``overdue=true`` for those open past
    it or answered after it."""
    programme = services.get_programme(code)
    found = cases.cases_of(
        g.account,
        programme,
        args.get("status"),
        unit_code=args.get("unit_code"),
        overdue=args.get("overdue", False),
    )
    return {"items": found}


@blp.route("/cases/<id:case_id>/response", methods=["POST"])
@blp.arguments(CaseResponseSchema, example={"findings": "已核实", "actions": "已约谈并整改"})
@blp.response(200, CaseSchema)
@refusals(
    s403="not_case_unit, not_programme_bureau",
    s404="case_not_found",
    s409="case_closed",
    s422="validation_error, response_incomplete, response_too_long",
)
@staff_required("unit")
def respond_case(body: dict[str, Any], case_id: int) -> Any:
    """The unit's answer to a case: what it found and what it did.

    Only the rated unit's clerks; once. The case closes (an answer after the deadline is kept
    as late). Audited."""
    case = cases.respond(
        g.account, cases.get_case(g.account, case_id), body["findings"], body["actions"]
    )
    db.session.commit()
    return case


EXPORT_MAX_ROWS = 100_000


@blp.route("/programmes/<code>/encounters.csv", methods=["GET"])
@blp.arguments(UploadArgsSchema, location="query")
@blp.response(200, description="CSV (UTF-8 with BOM); phone numbers masked, never whole")
@refusals(s403=FORBIDDEN, s404=NOT_FOUND, s422="validation_error")
@staff_required("admin", "reviewer", "unit")
def export_encounters(args: dict[str, Any], code: str) -> Response:
    """Encounters as CSV, phone numbers masked.

    The same rows as the listing (a unit clerk: the unit's own), newest first, at most
    100,000: unit, date, department, masked number (138****1234, or *** once deleted), staff
    member, invitation status and the answer. No export holds a whole number. Audited."""
    programme = services.get_programme(code)
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow(["单位", "就诊日期", "科室", "手机号", "工作人员", "邀请状态", "评价"])
    page = 1
    while page * 1000 <= EXPORT_MAX_ROWS:
        rows, _ = services.encounters_of(g.account, programme, args.get("unit_code"), page, 1000)
        for encounter, invitation, rating in rows:
            writer.writerow(
                [
                    encounter.unit.name,
                    encounter.encounter_date.isoformat(),
                    encounter.department,
                    encounter.phone_masked,
                    encounter.staff_name or "",
                    INVITATION_STATUS_LABELS.get(invitation.status, "") if invitation else "",
                    CHOICE_LABELS.get(rating.choice, "") if rating else "",
                ]
            )
        if len(rows) < 1000:
            break
        page += 1
    audit.record("appraisal.export", "appraisal_programme", programme.code, after=dict(args))
    db.session.commit()
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f"attachment; filename={programme.code}-encounters.csv",
            "Cache-Control": "private, no-store",
        },
    )


def _check_callback(token: str) -> None:
    expected = current_app.config.get("APPRAISAL_SMS_CALLBACK_TOKEN")
    if not expected or not hmac.compare_digest(str(expected), token):
        raise NotFound("未找到请求的地址", code="not_found")


@blp.route("/sms/status", methods=["POST"])
@blp.arguments(SmsCallbackArgsSchema, location="query")
@blp.arguments(
    SmsReceiptSchema(many=True),
    example=[{"sid": "2433:4f1e", "report_status": "SUCCESS", "errmsg": "DELIVRD"}],
)
@blp.response(200, SmsCallbackResultSchema)
@refusals(s404="not_found: wrong or no token", s422="validation_error")
def sms_status(args: dict[str, Any], receipts: list[dict[str, Any]]) -> Any:
    """Delivery receipts from the SMS provider (Tencent Cloud's 状态回调).

    Called by the provider with the shared ``token``; each receipt marks its invitation
    delivered or undelivered. Unknown serial numbers are ignored; numbers are not stored."""
    _check_callback(args["token"])
    for receipt in receipts:
        invitations.record_receipt(receipt["sid"], receipt["report_status"] == "SUCCESS")
    db.session.commit()
    return {"result": 0, "errmsg": "OK"}


@blp.route("/sms/replies", methods=["POST"])
@blp.arguments(SmsCallbackArgsSchema, location="query")
@blp.arguments(SmsReplySchema, example={"mobile": "13812341234", "text": "TD", "nationcode": "86"})
@blp.response(200, SmsCallbackResultSchema)
@refusals(s404="not_found: wrong or no token", s422="validation_error")
def sms_reply(args: dict[str, Any], reply: dict[str, Any]) -> Any:
    """Replies to invitations from the SMS provider (Tencent Cloud's 回复回调).

    Called by the provider with the shared ``token``. A reply of TD, T, N or 退订 is a 退订:
    the number (kept as its keyed hash) is never texted again. Other replies are dropped."""
    _check_callback(args["token"])
    if invitations.is_opt_out_reply(reply["text"]) and pii.normalise(reply["mobile"]):
        services.opt_out_phone(reply["mobile"], "reply")
        db.session.commit()
    return {"result": 0, "errmsg": "OK"}


report_routes.attach(blp)
