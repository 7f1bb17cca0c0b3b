"""Schemas for criteria, judges, score sheets, results, publicity, objections and exports."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from awards.exports import KINDS, VOTE_KINDS
from awards.models import PANELS
from core.schemas import PageArgsSchema, PageMetaMixin
from voting.schemas import VoteFilterSchema


class CriterionSchema(Schema):
    code = fields.String(
        required=True,
        validate=validate.Regexp(r"^[a-z0-9_]{1,40}$"),
        metadata={
            "description": "stable code (lowercase letters, digits, _), the key in score sheets",
            "example": "deeds",
        },
    )
    name = fields.String(
        required=True,
        validate=validate.Length(min=1, max=60),
        metadata={"description": "the criterion as judges read it", "example": "先进事迹"},
    )
    max_points = fields.Integer(
        required=True,
        validate=validate.Range(min=1, max=100),
        metadata={"description": "the most points a judge may give (1–100)", "example": 40},
    )


class CriteriaSchema(Schema):
    items = fields.List(
        fields.Nested(CriterionSchema),
        required=True,
        validate=validate.Length(min=1, max=20),
        metadata={
            "description": "1–20 criteria with unique codes; they replace the campaign's "
            "criteria. A sheet's total is out of the sum of their max_points"
        },
    )


class JudgeAssignSchema(Schema):
    username = fields.String(
        required=True, metadata={"description": "a judge account's username", "example": "judge1"}
    )
    categories = fields.List(
        fields.String(),
        required=True,
        metadata={
            "description": "category codes the judge scores; replaces the judge's assignments "
            "in this campaign ([] takes them all away)",
            "example": ["doctor", "nurse"],
        },
    )
    panel = fields.String(
        load_default="jury",
        validate=validate.OneOf(PANELS),
        metadata={
            "description": "who the judge scores for: jury (评委, the default), peer (同行互评: "
            "may score the nominees of its own unit) or leader (领导点评); each counts with its "
            "own weight (weights.jury, weights.peer, weights.leader). Fixed once the judge has "
            "saved a sheet in the campaign (409 panel_locked)",
            "example": "jury",
        },
    )


class JudgeAssignmentSchema(Schema):
    username = fields.String()
    categories = fields.List(fields.String(), metadata={"description": "category codes now"})
    panel = fields.String(metadata={"description": "jury, peer or leader"})


class ConflictCreateSchema(Schema):
    nominee = fields.String(
        required=True,
        validate=validate.Length(min=1, max=16),
        metadata={"description": "the nominee's public number", "example": "D003"},
    )
    reason = fields.String(
        required=True,
        validate=validate.Length(min=1, max=500),
        metadata={
            "description": "why the judge must not score them (audited)",
            "example": "近亲属",
        },
    )
    judge = fields.String(
        load_default=None,
        metadata={"description": "admins only: the judge's username (a judge declares for itself)"},
    )


class SheetSaveSchema(Schema):
    scores = fields.Dict(
        keys=fields.String(),
        values=fields.Float(),
        required=True,
        metadata={
            "description": "points by criterion code, each 0 to the criterion's max_points "
            "(422 invalid_scores); a draft may leave some out, a submitted sheet may not",
            "example": {"deeds": 36, "service": 27.5},
        },
    )
    comment = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=1000),
        metadata={"description": "the judge's remarks (optional, kept with the sheet)"},
    )
    submit = fields.Boolean(
        load_default=False,
        metadata={
            "description": "true: submit the sheet (it counts in the jury average from then "
            "on; it can still be revised while judging lasts); false: keep it as a draft"
        },
    )


SHEET_STATUS = "none (not scored yet), draft or submitted (counts in the jury average)"


class QueueItemSchema(Schema):
    number = fields.String(metadata={"description": "the nominee's public number"})
    name = fields.String()
    category = fields.String(metadata={"description": "category code"})
    unit = fields.String(metadata={"description": "the nominating unit's name"})
    title = fields.String()
    summary = fields.String()
    deeds = fields.String()
    panel = fields.String(
        metadata={"description": "the panel the judge scores this nominee for: jury, peer, leader"}
    )
    sheet_status = fields.String(metadata={"description": SHEET_STATUS})
    scores = fields.Dict(metadata={"description": "the judge's points by criterion code"})
    total = fields.Float(allow_none=True, metadata={"description": "sum of the points"})
    comment = fields.String(allow_none=True)


class JudgeQueueSchema(Schema):
    criteria = fields.List(
        fields.Nested(CriterionSchema), metadata={"description": "what to score, and out of what"}
    )
    items = fields.List(
        fields.Nested(QueueItemSchema),
        metadata={"description": "the nominees this judge scores (no vote counts)"},
    )


class SheetSchema(Schema):
    panel = fields.String(metadata={"description": "the panel it counts for: jury, peer, leader"})
    scores = fields.Dict(metadata={"description": "points by criterion code"})
    total = fields.Float(metadata={"description": "sum of the points"})
    status = fields.String(metadata={"description": "draft or submitted"})
    comment = fields.String(allow_none=True)
    submitted_at = fields.AwareDateTime(allow_none=True)


class ProgressSchema(Schema):
    items = fields.List(
        fields.Dict(),
        metadata={
            "description": "per judge: {judge, display_name, panel, to_score, submitted, drafts}"
        },
    )


class OrganizerScoreSchema(Schema):
    points = fields.Float(
        required=True,
        validate=validate.Range(min=0, max=100),
        metadata={"description": "the organiser's score of the nominee, 0–100", "example": 85},
    )
    reason = fields.String(
        load_default=None,
        allow_none=True,
        metadata={"description": "why (optional, audited)"},
    )


class ComputeSchema(Schema):
    reason = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=1000),
        metadata={"description": "why this version is computed (optional, kept with it)"},
    )


class AdjustSchema(Schema):
    nominee = fields.String(
        required=True,
        metadata={"description": "the nominee's public number", "example": "D007"},
    )
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
    reason = fields.String(
        required=True,
        validate=validate.Length(min=1, max=1000),
        metadata={
            "description": "the committee's written reason (audited, shown with the result)",
            "example": "经评审委员会复核，该候选人事迹材料存在重大失实，取消入选资格",
        },
    )

    @validates_schema
    def _tier_with_tier_action(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("action") == "tier" and not data.get("tier"):
            raise ValidationError("请选择要调整到的等次", "tier")
        if data.get("action") != "tier" and data.get("tier"):
            raise ValidationError("只有调整等次（action: tier）时才能指定等次", "tier")


class EntrySchema(Schema):
    category = fields.String(attribute="category_code", metadata={"description": "category code"})
    number = fields.String(metadata={"description": "the nominee's public number"})
    name = fields.String()
    unit = fields.String(metadata={"description": "the nominating unit's name"})
    valid_votes = fields.Integer(metadata={"description": "valid votes in the ledger"})
    public_score = fields.Float(
        metadata={"description": "valid votes ÷ the category leader's × 100 (0–100)"}
    )
    jury_score = fields.Float(
        metadata={"description": "mean submitted sheet total ÷ the criteria's maximum × 100"}
    )
    jury_count = fields.Integer(metadata={"description": "submitted sheets in that mean"})
    organizer_score = fields.Float(metadata={"description": "the organiser's 0–100 score"})
    peer_score = fields.Float(
        metadata={
            "description": "同行互评: mean submitted peer sheet ÷ the criteria's maximum × 100"
        }
    )
    peer_count = fields.Integer(metadata={"description": "submitted peer sheets in that mean"})
    leader_score = fields.Float(
        metadata={"description": "领导点评: mean submitted leader sheet ÷ the criteria's max × 100"}
    )
    leader_count = fields.Integer(metadata={"description": "submitted leader sheets in that mean"})
    satisfaction_score = fields.Float(
        allow_none=True,
        metadata={
            "description": "群众满意度: (满意 + 基本满意) ÷ invited answers × 100; null: 样本不足 "
            "(fewer answers than weights.satisfaction_min_answers; the other weights are "
            "rescaled to 100 for this nominee)"
        },
    )
    satisfaction_answers = fields.Integer(
        metadata={"description": "invited 群众评议 answers naming the nominee (walk-ins apart)"}
    )
    satisfaction_positive = fields.Integer(
        metadata={"description": "of those answers, 满意 or 基本满意"}
    )
    combined = fields.Float(
        metadata={
            "description": "the weighted sum of the scores ÷ 100, 2 decimals (see the method)"
        }
    )
    rank = fields.Integer(
        metadata={
            "description": "by combined; ties to the higher jury score, more votes, then the "
            "smaller number"
        }
    )
    winner = fields.Boolean(metadata={"description": "among the award_count after adjustments"})
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
    adjustment_reason = fields.String(
        allow_none=True, metadata={"description": "the committee's reason for it"}
    )


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
    reason = fields.String(metadata={"description": "the committee's written reason"})
    created_by = fields.String(metadata={"description": "who made it"})
    created_at = fields.AwareDateTime()
    made_in_version = fields.Integer(metadata={"description": "the version it was made in"})
    carried_from_version = fields.Integer(
        allow_none=True,
        metadata={"description": "the version it was carried forward from, if any"},
    )
    status = fields.String(metadata={"description": "applied | not_applied | removed"})
    not_applied_reason = fields.String(
        allow_none=True, metadata={"description": "why a carried adjustment no longer applies"}
    )
    removed_by = fields.String(allow_none=True)
    removed_at = fields.AwareDateTime(allow_none=True)
    removed_reason = fields.String(allow_none=True)


class VersionSchema(Schema):
    version = fields.Integer(metadata={"description": "1, 2, … per campaign"})
    status = fields.String(
        metadata={"description": "draft (adjustable), final, published or superseded"}
    )
    weights = fields.Dict(metadata={"description": "the weights it was computed with"})
    method = fields.String(
        metadata={"description": "the scoring method in words, written next to every version"}
    )
    reason = fields.String(allow_none=True, metadata={"description": "why it was computed"})
    ledger_head = fields.String(
        allow_none=True, metadata={"description": "the vote chain's head hash when computed"}
    )
    ledger_votes = fields.Integer(
        allow_none=True, metadata={"description": "votes in the chain up to that head"}
    )
    created_by = fields.String()
    created_at = fields.AwareDateTime()
    finalized_at = fields.AwareDateTime(allow_none=True)
    published_at = fields.AwareDateTime(allow_none=True)
    publicity_ends_at = fields.AwareDateTime(
        allow_none=True, metadata={"description": "objections close then (once published)"}
    )
    entries = fields.List(
        fields.Nested(EntrySchema), metadata={"description": "every nominee, by category"}
    )
    adjustments = fields.List(fields.Nested(AdjustmentSchema))


class SensitivitySchema(Schema):
    items = fields.List(
        fields.Dict(),
        metadata={
            "description": "per category: {category, scenarios: [{component, weights, "
            "changed, new_winners, dropped}]} for 5 and 10 points moved each way between the "
            "public and the jury, then the public and each other weighted component "
            "(organizer, satisfaction, peer, leader)"
        },
    )


class WinnerSchema(Schema):
    category = fields.String(attribute="category_code", metadata={"description": "category code"})
    number = fields.String(metadata={"description": "the public number"})
    name = fields.String()
    unit = fields.String(metadata={"description": "the nominating unit's name"})
    rank = fields.Integer(metadata={"description": "rank in the category"})
    combined = fields.Float(metadata={"description": "the combined score"})
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
    version = fields.Integer(metadata={"description": "the published result version"})
    published_at = fields.AwareDateTime()
    publicity_ends_at = fields.AwareDateTime(
        metadata={"description": "objections are taken until then"}
    )
    method = fields.String(metadata={"description": "how the scores were combined, in words"})
    ledger_head = fields.String(allow_none=True, metadata={"description": "the vote chain's head"})
    ledger_votes = fields.Integer(
        allow_none=True, metadata={"description": "votes in the chain up to that head"}
    )
    categories = fields.List(
        fields.Nested(WinnerCategorySchema),
        metadata={"description": "the campaign's categories in order, with their award tiers"},
    )
    winners = fields.List(
        fields.Nested(WinnerSchema),
        metadata={"description": "by category, then tier, then rank"},
    )


class ObjectionCreateSchema(Schema):
    nominee = fields.String(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "the winner's or nominee's number the objection concerns; null for "
            "the result as a whole",
            "example": "D002",
        },
    )
    contact_name = fields.String(
        required=True,
        validate=validate.Length(min=1, max=40),
        metadata={"description": "the objector's name (never published)", "example": "张伟"},
    )
    contact_phone = fields.String(
        required=True,
        validate=validate.Regexp(r"^[0-9+\- ]{6,20}$", error="请填写有效的联系电话"),
        metadata={
            "description": "a phone the committee can call back (never published)",
            "example": "13812341234",
        },
    )
    text = fields.String(
        required=True,
        validate=validate.Length(min=5, max=2000),
        metadata={
            "description": "the objection (5–2000 characters); published with the answer",
            "example": "该候选人所述获奖情况与实际不符。",
        },
    )
    attachment = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=1_500_000),
        metadata={"description": "optional: a JPEG, PNG or PDF as a data: URL, at most 1 MB"},
    )


class ObjectionAnswerSchema(Schema):
    decision = fields.String(
        required=True,
        validate=validate.OneOf(("upheld", "dismissed")),
        metadata={
            "description": "upheld (成立: a new draft result is computed for the committee to "
            "adjust, finalise and publish) or dismissed (不成立)",
            "example": "dismissed",
        },
    )
    answer = fields.String(
        required=True,
        validate=validate.Length(min=1, max=2000),
        metadata={
            "description": "the committee's answer, published with the objection",
            "example": "经核实，相关获奖证书真实有效，异议不成立。",
        },
    )


OBJECTION_STATUS = "open (not answered yet), upheld or dismissed"


class ObjectionAdminSchema(Schema):
    id = fields.Integer()
    nominee = fields.String(
        attribute="nominee_number", allow_none=True, metadata={"description": "its number"}
    )
    contact_name = fields.String(metadata={"description": "the objector (staff only)"})
    contact_phone = fields.String(metadata={"description": "their phone (staff only)"})
    text = fields.String()
    status = fields.String(metadata={"description": OBJECTION_STATUS})
    answer = fields.String(allow_none=True, metadata={"description": "the committee's answer"})
    answered_at = fields.AwareDateTime(allow_none=True)
    created_at = fields.AwareDateTime()
    has_attachment = fields.Function(
        lambda o: o.attachment_key is not None,
        metadata={"description": "the objector sent a file (the console shows it)"},
    )


class ObjectionPublicSchema(Schema):
    """Answered objections as published: no contact details."""

    id = fields.Integer()
    nominee = fields.String(
        attribute="nominee_number", allow_none=True, metadata={"description": "its number"}
    )
    text = fields.String()
    status = fields.String(metadata={"description": "upheld or dismissed"})
    answer = fields.String(allow_none=True, metadata={"description": "the committee's answer"})
    answered_at = fields.AwareDateTime(allow_none=True)


class ObjectionFiledSchema(Schema):
    id = fields.Integer()
    status = fields.String(metadata={"description": "open: waiting for the committee"})


class ObjectionListSchema(Schema):
    items = fields.List(fields.Nested(ObjectionAdminSchema))


class PublicObjectionListSchema(Schema):
    items = fields.List(fields.Nested(ObjectionPublicSchema))


class AnswerResultSchema(Schema):
    objection = fields.Nested(ObjectionAdminSchema)
    reopened_version = fields.Integer(
        allow_none=True,
        metadata={"description": "upheld: the new draft result version; null when dismissed"},
    )


class AuditEntrySchema(Schema):
    at = fields.AwareDateTime()
    actor = fields.String(attribute="actor_name", metadata={"description": "who acted"})
    role = fields.String(
        attribute="actor_role", allow_none=True, metadata={"description": "their role"}
    )
    action = fields.String(
        metadata={"description": "what was done, e.g. campaign.phase, nomination.create"}
    )
    object_type = fields.String(metadata={"description": "what it was done to, e.g. nomination"})
    object_id = fields.String(metadata={"description": "that object's id, code or slug"})
    reason = fields.String(allow_none=True)
    before = fields.Dict(allow_none=True, metadata={"description": "the state before"})
    after = fields.Dict(allow_none=True, metadata={"description": "the state after"})
    ip = fields.String(allow_none=True, metadata={"description": "the actor's address"})


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
    code = fields.String(metadata={"description": "stable English code"})
    message = fields.String(metadata={"description": "zh-CN sentence for people"})


class ExportStatusSchema(Schema):
    job_id = fields.String()
    kind = fields.String(metadata={"description": "the export's kind (see ExportCreate)"})
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
    requested_by = fields.String(allow_none=True, metadata={"description": "who started it"})
    file = fields.String(allow_none=True, metadata={"description": "the file's name, once made"})
    size = fields.Integer(allow_none=True, metadata={"description": "the file's size in bytes"})
    status_url = fields.String(metadata={"description": "poll this for progress"})
    download_url = fields.String(
        allow_none=True, metadata={"description": "where to fetch the file once finished"}
    )
    error = fields.Nested(
        ExportErrorSchema, allow_none=True, metadata={"description": "why it failed"}
    )


class ExportListSchema(Schema):
    items = fields.List(
        fields.Nested(ExportStatusSchema),
        metadata={"description": "the campaign's latest exports, newest first"},
    )
