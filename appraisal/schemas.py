"""Request and response bodies of the appraisal API."""

from __future__ import annotations

from marshmallow import EXCLUDE, Schema, fields, validate

from appraisal import cases
from appraisal import phone_cap as cap_rules
from core.schemas import PageArgsSchema, PageMetaMixin

CODE = validate.Regexp(r"^[A-Za-z0-9_.-]{2,40}$", error="2–40 个字母、数字或 _ . -")


class PhoneCapRuleSchema(Schema):
    max = fields.Integer(
        required=True,
        validate=validate.Range(min=1, max=100),
        metadata={"description": "at most this many invitations to one phone…", "example": 1},
    )
    days = fields.Integer(
        required=True,
        validate=validate.Range(min=1, max=cap_rules.MAX_DAYS),
        metadata={"description": "…in any this many days (1–92)", "example": 7},
    )


def _phone_cap_field(description: str) -> fields.List:
    return fields.List(
        fields.Nested(PhoneCapRuleSchema),
        allow_none=True,
        validate=validate.Length(max=cap_rules.MAX_RULES),
        metadata={"description": description},
    )


PHONE_CAP_HELP = (
    "per-phone invitation cap over the programme's units, e.g. "
    '[{"max": 1, "days": 7}, {"max": 4, "days": 30}] (the default, also when null); '
    "[] for no cap; at most 4 rules"
)


class ProgrammeCreateSchema(Schema):
    code = fields.String(
        required=True,
        validate=CODE,
        metadata={"description": "stable programme code, unique", "example": "qs-pj-2026"},
    )
    title = fields.String(
        required=True,
        validate=validate.Length(min=2, max=120),
        metadata={
            "description": "the programme's name as shown",
            "example": "青山县群众满意度评议",
        },
    )
    bureau_code = fields.String(
        required=True,
        metadata={"description": "the running bureau's unit code; its units below take part"},
    )
    timezone = fields.String(
        load_default="Asia/Shanghai",
        metadata={"description": "IANA zone for dates and deadlines (default Asia/Shanghai)"},
    )
    campaign_slug = fields.String(
        allow_none=True,
        metadata={"description": "optional: match named staff to this campaign's nominees"},
    )
    retention_days = fields.Integer(
        load_default=90,
        validate=validate.Range(min=7, max=730),
        metadata={"description": "days after the visit before its phone number is deleted"},
    )
    phone_cap = _phone_cap_field(PHONE_CAP_HELP)


class ProgrammeUpdateSchema(Schema):
    campaign_slug = fields.String(
        allow_none=True,
        metadata={"description": "match named staff to this campaign's nominees (null: stop)"},
    )
    title = fields.String(
        validate=validate.Length(min=2, max=120), metadata={"description": "new name"}
    )
    retention_days = fields.Integer(
        validate=validate.Range(min=7, max=730),
        metadata={"description": "new retention; applies to numbers already stored too"},
    )
    status = fields.String(
        validate=validate.OneOf(("active", "closed")),
        metadata={"description": "active, or closed (no more encounters, answers or texts)"},
    )
    phone_cap = _phone_cap_field(PHONE_CAP_HELP + "; applies from the next text sent")


class ProgrammeSchema(Schema):
    code = fields.String(metadata={"description": "programme code"})
    title = fields.String(metadata={"description": "name"})
    bureau_code = fields.Function(
        lambda p: p.bureau.code, metadata={"description": "the running bureau's unit code"}
    )
    timezone = fields.String(metadata={"description": "IANA zone"})
    retention_days = fields.Integer(metadata={"description": "phone retention in days"})
    status = fields.String(metadata={"description": "active or closed"})
    campaign_id = fields.Integer(
        allow_none=True, metadata={"description": "the campaign whose nominees staff match"}
    )
    phone_cap = fields.Function(
        cap_rules.rules_of,
        metadata={"description": "the per-phone cap in force ([] for none): [{max, days}, ...]"},
    )
    created_at = fields.AwareDateTime(metadata={"description": "when it was set up"})


class ProgrammeListSchema(Schema):
    items = fields.List(
        fields.Nested(ProgrammeSchema), metadata={"description": "the programmes you can see"}
    )


class WindowCreateSchema(Schema):
    name = fields.String(
        required=True,
        validate=validate.Length(min=1, max=60),
        metadata={"description": "the window or area, e.g. 门诊大厅", "example": "门诊大厅"},
    )
    unit_code = fields.String(
        metadata={"description": "the unit (bureau staff); a unit clerk's own unit by default"}
    )


class WindowSchema(Schema):
    id = fields.Integer(metadata={"description": "window id"})
    name = fields.String(metadata={"description": "window name"})
    unit_code = fields.String(metadata={"description": "its unit's code"})
    url = fields.String(metadata={"description": "the walk-in rating page its QR code opens"})
    qr_url = fields.String(metadata={"description": "the QR code as SVG, for printing"})


class WindowListSchema(Schema):
    items = fields.List(fields.Nested(WindowSchema), metadata={"description": "windows"})


class EncounterInSchema(Schema):
    phone = fields.String(
        required=True,
        metadata={"description": "the patient's mainland mobile number", "example": "13812341234"},
    )
    date = fields.String(
        required=True,
        metadata={"description": "the visit's date, YYYY-MM-DD, not in the future"},
    )
    department = fields.String(
        required=True, metadata={"description": "department (科室)", "example": "内科"}
    )
    staff_name = fields.String(
        allow_none=True, metadata={"description": "optional: who served the patient"}
    )
    staff_number = fields.String(
        allow_none=True, metadata={"description": "optional: that staff member's number"}
    )


class EncounterBatchSchema(Schema):
    unit_code = fields.String(
        metadata={"description": "the unit (bureau staff); a unit clerk's own unit by default"}
    )
    encounters = fields.List(
        fields.Nested(EncounterInSchema),
        required=True,
        validate=validate.Length(min=1),
        metadata={"description": "the visits, each validated on its own (row = position from 1)"},
    )


class RefusalSchema(Schema):
    row = fields.Integer(metadata={"description": "row number (file: as the sheet shows it)"})
    code = fields.String(metadata={"description": "stable reason code, e.g. bad_phone"})
    message = fields.String(metadata={"description": "the reason in Chinese"})


class RegisterResultSchema(Schema):
    upload_id = fields.Integer(allow_none=True, metadata={"description": "the upload's id"})
    kind = fields.String(allow_none=True, metadata={"description": "xlsx or csv (uploads)"})
    rows_total = fields.Integer(metadata={"description": "rows read"})
    rows_accepted = fields.Integer(metadata={"description": "rows stored and invited"})
    refused = fields.List(
        fields.Nested(RefusalSchema), metadata={"description": "rows refused, and why"}
    )


class UploadArgsSchema(Schema):
    unit_code = fields.String(
        metadata={"description": "the unit (bureau staff); a unit clerk's own unit by default"}
    )


class UploadSummarySchema(Schema):
    upload_id = fields.Integer(metadata={"description": "the upload's id"})
    unit_code = fields.String(metadata={"description": "the unit that uploaded it"})
    filename = fields.String(metadata={"description": "the file's name as uploaded"})
    kind = fields.String(metadata={"description": "xlsx or csv"})
    rows_total = fields.Integer(metadata={"description": "rows read"})
    rows_accepted = fields.Integer(metadata={"description": "rows stored and invited"})
    rows_refused = fields.Integer(metadata={"description": "rows refused"})
    created_at = fields.AwareDateTime(metadata={"description": "when it was uploaded"})


class UploadListSchema(Schema):
    items = fields.List(
        fields.Nested(UploadSummarySchema), metadata={"description": "uploads, newest first"}
    )


class EncounterSchema(Schema):
    id = fields.Integer(metadata={"description": "encounter id"})
    unit_code = fields.String(metadata={"description": "its unit's code"})
    phone = fields.String(metadata={"description": "masked: 138****1234 (*** once deleted)"})
    date = fields.Date(metadata={"description": "visit date"})
    department = fields.String(metadata={"description": "department"})
    staff_name = fields.String(allow_none=True, metadata={"description": "who served"})
    source = fields.String(metadata={"description": "upload or api"})
    nominee_number = fields.String(
        allow_none=True, metadata={"description": "the campaign nominee the staff matched"}
    )
    invitation_status = fields.String(
        allow_none=True,
        metadata={
            "description": "queued, sending, retrying, sent, failed, opted_out, or capped "
            "(not sent: the phone had its share of invitations, appraisal.phone_cap)"
        },
    )
    invitation_error = fields.String(
        allow_none=True, metadata={"description": "why the text failed (core.sms codes)"}
    )
    delivery = fields.String(
        allow_none=True,
        metadata={"description": "the provider's receipt: delivered, undelivered, or null"},
    )
    answered = fields.Boolean(metadata={"description": "whether the patient has answered"})


class EncounterArgsSchema(PageArgsSchema):
    unit_code = fields.String(metadata={"description": "only this unit's encounters"})


class EncounterPageSchema(PageMetaMixin):
    items = fields.List(fields.Nested(EncounterSchema), metadata={"description": "encounters"})


class OptOutSchema(Schema):
    phone = fields.String(
        required=True,
        metadata={"description": "the number that replied 退订 (TD/T)", "example": "13812341234"},
    )
    source = fields.String(
        load_default="reply",
        validate=validate.OneOf(("reply", "staff")),
        metadata={"description": "reply (an SMS reply) or staff (asked by phone or in person)"},
    )


class OptOutResultSchema(Schema):
    new = fields.Boolean(metadata={"description": "false when the number had opted out already"})


class CaseArgsSchema(Schema):
    status = fields.String(
        validate=validate.OneOf(("open", "closed", "overdue")),
        metadata={"description": "open, closed, or overdue (open past the deadline)"},
    )
    unit_code = fields.String(metadata={"description": "only this unit's cases (the bureau)"})
    overdue = fields.Boolean(
        load_default=False,
        metadata={"description": "only cases open past their deadline or answered after it"},
    )


class CaseSchema(Schema):
    id = fields.Integer(metadata={"description": "case id"})
    unit_code = fields.Function(lambda c: c.unit.code, metadata={"description": "the unit"})
    unit_name = fields.Function(lambda c: c.unit.name, metadata={"description": "its name"})
    status = fields.String(metadata={"description": "open or closed"})
    state = fields.Function(
        lambda c: cases.state_of(c),
        metadata={"description": "open, overdue, escalated, closed or closed_late"},
    )
    choice = fields.Function(lambda c: c.rating.choice, metadata={"description": "the answer"})
    kind = fields.Function(lambda c: c.rating.kind, metadata={"description": "invited or walk_in"})
    comment = fields.Function(
        lambda c: c.rating.comment, metadata={"description": "the patient's comment"}
    )
    department = fields.Function(
        lambda c: c.rating.department, metadata={"description": "department or window"}
    )
    staff_name = fields.Function(
        lambda c: c.rating.staff_name, metadata={"description": "staff member named"}
    )
    deadline_at = fields.AwareDateTime(metadata={"description": "answer due by"})
    escalated_at = fields.AwareDateTime(
        allow_none=True, metadata={"description": "when it was escalated to the bureau"}
    )
    findings = fields.String(allow_none=True, metadata={"description": "what the unit found"})
    actions = fields.String(allow_none=True, metadata={"description": "what the unit did"})
    closed_at = fields.AwareDateTime(allow_none=True, metadata={"description": "answered at"})
    created_at = fields.AwareDateTime(metadata={"description": "opened at"})


class CaseListSchema(Schema):
    items = fields.List(fields.Nested(CaseSchema), metadata={"description": "cases"})


class CaseResponseSchema(Schema):
    findings = fields.String(
        required=True,
        validate=validate.Length(min=1, max=2000),
        metadata={"description": "what the unit verified (核实情况)", "example": "已核实"},
    )
    actions = fields.String(
        required=True,
        validate=validate.Length(min=1, max=2000),
        metadata={"description": "what it did about it (整改措施)", "example": "已约谈并整改"},
    )


class SmsCallbackArgsSchema(Schema):
    token = fields.String(
        required=True, metadata={"description": "APPRAISAL_SMS_CALLBACK_TOKEN, set in the console"}
    )


class SmsReceiptSchema(Schema):
    """One delivery receipt as Tencent Cloud SMS posts it (状态回调)."""

    class Meta:
        unknown = EXCLUDE

    sid = fields.String(
        required=True, metadata={"description": "the message's serial number (SerialNo)"}
    )
    report_status = fields.String(
        required=True, metadata={"description": "SUCCESS or FAIL", "example": "SUCCESS"}
    )
    mobile = fields.String(metadata={"description": "the number (not stored)"})
    errmsg = fields.String(metadata={"description": "the carrier's code, e.g. DELIVRD"})
    user_receive_time = fields.String(metadata={"description": "when the phone got it"})


class SmsReplySchema(Schema):
    """An SMS reply as Tencent Cloud SMS posts it (回复回调)."""

    class Meta:
        unknown = EXCLUDE

    mobile = fields.String(
        required=True, metadata={"description": "the replying number", "example": "13812341234"}
    )
    text = fields.String(
        required=True, metadata={"description": "the reply; TD, T, N or 退订 opt out"}
    )
    nationcode = fields.String(metadata={"description": "country code, 86"})


class SmsCallbackResultSchema(Schema):
    result = fields.Integer(metadata={"description": "0: taken (what Tencent Cloud expects)"})
    errmsg = fields.String(metadata={"description": "OK"})
