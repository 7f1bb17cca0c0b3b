"""Schemas of the committee's voter blocks (屏蔽投票人): what the API takes and answers."""

from __future__ import annotations

from marshmallow import Schema, fields, validate
from marshmallow.utils import get_value

# Ids in the database are 32-bit integers: a larger value is refused here (422), not overflowed.
_DB_ID = validate.Range(min=1, max=2_147_483_647)
# The service checks the trimmed reason (2–500 characters, reason_required / reason_length);
# this bound only keeps absurd bodies out.
_REASON = fields.String(
    required=True,
    validate=validate.Length(max=5000),
    metadata={"description": "理由，2–500 字 (reason, 2–500 characters once trimmed)"},
)


class WarningSchema(Schema):
    code = fields.String(metadata={"description": "e.g. vote_service_unavailable"})
    message = fields.String(metadata={"description": "zh-CN, for the committee"})


class BlockCreateSchema(Schema):
    voter_id = fields.Integer(
        required=True,
        strict=True,
        validate=_DB_ID,
        metadata={"description": "投票人编号 (the voter id the vote browser shows)"},
    )
    reason = _REASON
    flag_id = fields.Integer(
        load_default=None,
        strict=True,
        validate=_DB_ID,
        metadata={
            "description": "从该线索屏蔽：投票人须为线索涉及的投票人 "
            "(block from this flag: the voter must be one it names)"
        },
    )


class LiftBlockSchema(Schema):
    reason = _REASON


class FlagBlockSchema(Schema):
    reason = _REASON


class BlockListArgsSchema(Schema):
    status = fields.String(
        load_default="active",
        validate=validate.OneOf(("active", "lifted", "all")),
        metadata={"description": "active (default), lifted or all"},
    )
    page = fields.Integer(
        load_default=1,
        validate=validate.Range(min=1, max=100000),
        metadata={"description": "page number, from 1"},
    )
    per_page = fields.Integer(
        load_default=50,
        validate=validate.Range(min=1, max=500),
        metadata={"description": "items per page (1–500, default 50)"},
    )


class BlockSchema(Schema):
    id = fields.Integer()
    voter_id = fields.Integer()
    reason = fields.String(metadata={"description": "why the voter was blocked"})
    source = fields.String(
        metadata={"description": "browser (from the vote browser) or flag (from a fraud flag)"}
    )
    flag_id = fields.Integer(allow_none=True, metadata={"description": "the flag it came from"})
    blocked_by = fields.String(metadata={"description": "username of who blocked"})
    blocked_at = fields.AwareDateTime()
    active = fields.Function(
        lambda b: get_value(b, "lifted_at") is None,
        dump_only=True,
        metadata={"description": "true until lifted: the vote script refuses the voter"},
    )
    lifted_at = fields.AwareDateTime(allow_none=True)
    lifted_by = fields.String(allow_none=True, metadata={"description": "username of who lifted"})
    lift_reason = fields.String(allow_none=True, metadata={"description": "why it was lifted"})


class BlockResultSchema(BlockSchema):
    warning = fields.Nested(
        WarningSchema,
        allow_none=True,
        metadata={
            "description": "已保存但投票服务未能即时更新时给出 "
            "(set when the block is stored but the vote service could not be told yet)"
        },
    )


class BlockPageSchema(Schema):
    items = fields.List(fields.Nested(BlockSchema))
    page = fields.Integer(metadata={"description": "this page's number"})
    per_page = fields.Integer(metadata={"description": "items per page asked"})
    total = fields.Integer(metadata={"description": "blocks matching status, over all pages"})


class FlagBlockResultSchema(Schema):
    flag_id = fields.Integer()
    blocked = fields.List(fields.Integer(), metadata={"description": "newly blocked voter ids"})
    already_blocked = fields.List(
        fields.Integer(), metadata={"description": "voter ids that were blocked already"}
    )
    items = fields.List(fields.Nested(BlockSchema), metadata={"description": "the new blocks"})
    warning = fields.Nested(
        WarningSchema,
        allow_none=True,
        metadata={"description": "set when the vote service could not be told at once"},
    )
