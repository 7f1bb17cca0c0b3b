"""Schemas for criteria, judges, score sheets, results, publicity, objections and exports."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from awards.exports import KINDS, VOTE_KINDS
from core.schemas import PageArgsSchema, PageMetaMixin
from voting.schemas import VoteFilterSchema


class CriterionSchema(Schema):
    code = fields.String(required=True, validate=validate.Regexp(r"^[a-z0-9_]{1,40}$"))
    name = fields.String(required=True, validate=validate.Length(min=1, max=60))
    max_points = fields.Integer(required=True, validate=validate.Range(min=1, max=100))


class CriteriaSchema(Schema):
    items = fields.List(
        fields.Nested(CriterionSchema), required=True, validate=validate.Length(min=1, max=20)
    )


class JudgeAssignSchema(Schema):
    username = fields.String(required=True)
    categories = fields.List(fields.String(), required=True)


class JudgeAssignmentSchema(Schema):
    username = fields.String()
    categories = fields.List(fields.String())


class ConflictCreateSchema(Schema):
    nominee = fields.String(required=True, validate=validate.Length(min=1, max=16))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))
    judge = fields.String(load_default=None, metadata={"description": "admins: the judge"})


class SheetSaveSchema(Schema):
    scores = fields.Dict(keys=fields.String(), values=fields.Float(), required=True)
    comment = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=1000))
    submit = fields.Boolean(load_default=False)


class QueueItemSchema(Schema):
    number = fields.String()
    name = fields.String()
    category = fields.String()
    unit = fields.String()
    title = fields.String()
    summary = fields.String()
    deeds = fields.String()
    sheet_status = fields.String(metadata={"description": "none, draft or submitted"})
    scores = fields.Dict()
    total = fields.Float(allow_none=True)
    comment = fields.String(allow_none=True)


class JudgeQueueSchema(Schema):
    criteria = fields.List(fields.Nested(CriterionSchema))
    items = fields.List(fields.Nested(QueueItemSchema))


class SheetSchema(Schema):
    scores = fields.Dict()
    total = fields.Float()
    status = fields.String()
    comment = fields.String(allow_none=True)
    submitted_at = fields.AwareDateTime(allow_none=True)


class ProgressSchema(Schema):
    items = fields.List(fields.Dict())


class OrganizerScoreSchema(Schema):
    points = fields.Float(required=True, validate=validate.Range(min=0, max=100))
    reason = fields.String(load_default=None, allow_none=True)


class ComputeSchema(Schema):
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=1000))


class AdjustSchema(Schema):
    nominee = fields.String(required=True)
    action = fields.String(
        required=True,
        validate=validate.OneOf(("exclude", "promote", "tier", "clear")),
        metadata={
            "description": "exclude (never wins), promote (wins; the lowest-ranked unadjusted "
            "winner makes room), tier (moves a winner into `tier`; it stays a winner), clear "
            "(takes the nominee's adjustment out)"
        },
    )
    tier = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(min=1, max=20),
        metadata={
            "description": "only with action tier: the code of the category's tier to move the "
            "winner into. Refused when the committee has already placed as many winners in it "
            "as it holds (409 tier_full)"
        },
    )
    reason = fields.String(required=True, validate=validate.Length(min=1, max=1000))

    @validates_schema
    def _tier_with_tier_action(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("action") == "tier" and not data.get("tier"):
            raise ValidationError("请选择要调整到的等次", "tier")
        if data.get("action") != "tier" and data.get("tier"):
            raise ValidationError("只有调整等次（action: tier）时才能指定等次", "tier")


class EntrySchema(Schema):
    category = fields.String(attribute="category_code")
    number = fields.String()
    name = fields.String()
    unit = fields.String()
    valid_votes = fields.Integer()
    public_score = fields.Float()
    jury_score = fields.Float()
    jury_count = fields.Integer()
    organizer_score = fields.Float()
    combined = fields.Float()
    rank = fields.Integer()
    winner = fields.Boolean()
    tier = fields.String(
        allow_none=True,
        metadata={"description": "a winner's award tier code; null without tiers or not winning"},
    )
    tier_name = fields.String(
        allow_none=True, metadata={"description": "the tier's name, e.g. 十佳 (zh-CN)"}
    )
    adjustment = fields.String(
        allow_none=True, metadata={"description": "exclude | promote | tier"}
    )
    adjustment_reason = fields.String(allow_none=True)


class AdjustmentSchema(Schema):
    """One committee adjustment of a version; a reopened version carries the earlier ones."""

    id = fields.Integer()
    nominee = fields.String(attribute="number")
    name = fields.String()
    category = fields.String(attribute="category_code")
    action = fields.String(metadata={"description": "exclude | promote | tier"})
    tier = fields.String(
        allow_none=True, metadata={"description": "action tier: the tier the winner was moved to"}
    )
    reason = fields.String()
    created_by = fields.String()
    created_at = fields.AwareDateTime()
    made_in_version = fields.Integer()
    carried_from_version = fields.Integer(allow_none=True)
    status = fields.String(metadata={"description": "applied | not_applied | removed"})
    not_applied_reason = fields.String(allow_none=True)
    removed_by = fields.String(allow_none=True)
    removed_at = fields.AwareDateTime(allow_none=True)
    removed_reason = fields.String(allow_none=True)


class VersionSchema(Schema):
    version = fields.Integer()
    status = fields.String()
    weights = fields.Dict()
    method = fields.String()
    reason = fields.String(allow_none=True)
    ledger_head = fields.String(allow_none=True)
    ledger_votes = fields.Integer(allow_none=True)
    created_by = fields.String()
    created_at = fields.AwareDateTime()
    finalized_at = fields.AwareDateTime(allow_none=True)
    published_at = fields.AwareDateTime(allow_none=True)
    publicity_ends_at = fields.AwareDateTime(allow_none=True)
    entries = fields.List(fields.Nested(EntrySchema))
    adjustments = fields.List(fields.Nested(AdjustmentSchema))


class SensitivitySchema(Schema):
    items = fields.List(fields.Dict())


class WinnerSchema(Schema):
    category = fields.String(attribute="category_code")
    number = fields.String()
    name = fields.String()
    unit = fields.String()
    rank = fields.Integer()
    combined = fields.Float()
    tier = fields.String(
        allow_none=True,
        metadata={"description": "the award tier's code; null in a category without tiers"},
    )
    tier_name = fields.String(
        allow_none=True,
        metadata={"description": "the award tier as published, e.g. 十佳 or 优秀 (zh-CN)"},
    )


class WinnerTierSchema(Schema):
    code = fields.String()
    name = fields.String()
    count = fields.Integer(metadata={"description": "the places the tier has"})


class WinnerCategorySchema(Schema):
    code = fields.String()
    name = fields.String()
    award_count = fields.Integer()
    tiers = fields.List(
        fields.Nested(WinnerTierSchema),
        attribute="tier_list",
        metadata={"description": "the award tiers in order; [] for one implicit tier"},
    )


class WinnersSchema(Schema):
    version = fields.Integer()
    published_at = fields.AwareDateTime()
    publicity_ends_at = fields.AwareDateTime()
    method = fields.String()
    ledger_head = fields.String(allow_none=True, metadata={"description": "the vote chain's head"})
    ledger_votes = fields.Integer(allow_none=True)
    categories = fields.List(
        fields.Nested(WinnerCategorySchema),
        metadata={"description": "the campaign's categories in order, with their award tiers"},
    )
    winners = fields.List(
        fields.Nested(WinnerSchema),
        metadata={"description": "by category, then tier, then rank"},
    )


class ObjectionCreateSchema(Schema):
    nominee = fields.String(load_default=None, allow_none=True)
    contact_name = fields.String(required=True, validate=validate.Length(min=1, max=40))
    contact_phone = fields.String(
        required=True, validate=validate.Regexp(r"^[0-9+\- ]{6,20}$", error="请填写有效的联系电话")
    )
    text = fields.String(required=True, validate=validate.Length(min=5, max=2000))
    attachment = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=1_500_000),
        metadata={"description": "optional: a JPEG, PNG or PDF as a data: URL, at most 1 MB"},
    )


class ObjectionAnswerSchema(Schema):
    decision = fields.String(required=True, validate=validate.OneOf(("upheld", "dismissed")))
    answer = fields.String(required=True, validate=validate.Length(min=1, max=2000))


class ObjectionAdminSchema(Schema):
    id = fields.Integer()
    nominee = fields.String(attribute="nominee_number", allow_none=True)
    contact_name = fields.String()
    contact_phone = fields.String()
    text = fields.String()
    status = fields.String()
    answer = fields.String(allow_none=True)
    answered_at = fields.AwareDateTime(allow_none=True)
    created_at = fields.AwareDateTime()
    has_attachment = fields.Function(lambda o: o.attachment_key is not None)


class ObjectionPublicSchema(Schema):
    """Answered objections as published: no contact details."""

    id = fields.Integer()
    nominee = fields.String(attribute="nominee_number", allow_none=True)
    text = fields.String()
    status = fields.String()
    answer = fields.String(allow_none=True)
    answered_at = fields.AwareDateTime(allow_none=True)


class ObjectionFiledSchema(Schema):
    id = fields.Integer()
    status = fields.String()


class ObjectionListSchema(Schema):
    items = fields.List(fields.Nested(ObjectionAdminSchema))


class PublicObjectionListSchema(Schema):
    items = fields.List(fields.Nested(ObjectionPublicSchema))


class AnswerResultSchema(Schema):
    objection = fields.Nested(ObjectionAdminSchema)
    reopened_version = fields.Integer(allow_none=True)


class AuditEntrySchema(Schema):
    at = fields.AwareDateTime()
    actor = fields.String(attribute="actor_name")
    role = fields.String(attribute="actor_role", allow_none=True)
    action = fields.String()
    object_type = fields.String()
    object_id = fields.String()
    reason = fields.String(allow_none=True)
    before = fields.Dict(allow_none=True)
    after = fields.Dict(allow_none=True)
    ip = fields.String(allow_none=True)


class AuditPageSchema(PageMetaMixin):
    items = fields.List(fields.Nested(AuditEntrySchema))


class AuditArgsSchema(PageArgsSchema):
    pass


class ExportCreateSchema(Schema):
    kind = fields.String(
        required=True,
        validate=validate.OneOf(KINDS),
        metadata={
            "description": "workbook (xlsx), winners_html (printable list), audit_csv, "
            "votes_xlsx / votes_csv (every vote, one row each; the workbook continues on a "
            "new sheet before Excel's 1,048,576 rows)"
        },
    )
    filters = fields.Nested(
        VoteFilterSchema,
        load_default=None,
        metadata={
            "description": f"only for {', '.join(VOTE_KINDS)}: the vote browser's filters "
            "(422 filters_not_supported for another kind)"
        },
    )


class ExportErrorSchema(Schema):
    code = fields.String()
    message = fields.String()


class ExportStatusSchema(Schema):
    job_id = fields.String()
    kind = fields.String()
    status = fields.String(
        metadata={"description": "queued, started, finished, failed (rq's job status)"}
    )
    progress = fields.Integer(metadata={"description": "0–100"})
    filters = fields.Dict(
        metadata={"description": "the vote kinds' filters (ISO 8601 times); {} for the others"}
    )
    rows_done = fields.Integer(
        allow_none=True, metadata={"description": "vote kinds: votes written so far"}
    )
    rows_total = fields.Integer(
        allow_none=True, metadata={"description": "vote kinds: votes the export will hold"}
    )
    requested_at = fields.String(allow_none=True, metadata={"description": "ISO 8601"})
    requested_by = fields.String(allow_none=True)
    file = fields.String(allow_none=True)
    size = fields.Integer(allow_none=True)
    status_url = fields.String(metadata={"description": "poll this for progress"})
    download_url = fields.String(allow_none=True)
    error = fields.Nested(ExportErrorSchema, allow_none=True)


class ExportListSchema(Schema):
    items = fields.List(
        fields.Nested(ExportStatusSchema),
        metadata={"description": "the campaign's latest exports, newest first"},
    )
