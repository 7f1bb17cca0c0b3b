"""Schemas of the vote path, voter identity, rankings and ledger health."""

from __future__ import annotations

from marshmallow import Schema, fields, validate


class DeviceVoterSchema(Schema):
    device_id = fields.String(
        required=True,
        validate=validate.Regexp(r"^[A-Za-z0-9_-]{8,128}$", error="设备标识格式不正确"),
    )


class VoterTokenSchema(Schema):
    voter_token = fields.String(required=True)
    expires_at = fields.AwareDateTime(required=True)


class VoteCreateSchema(Schema):
    nominee = fields.String(
        required=True,
        validate=validate.Length(min=1, max=16),
        metadata={"description": "the nominee's public number, e.g. D001"},
    )


class VoteResultSchema(Schema):
    vote_id = fields.String(required=True)
    nominee = fields.String(required=True)
    nominee_votes = fields.Integer(
        allow_none=True, metadata={"description": "null while the campaign hides counts"}
    )
    remaining_today = fields.Integer(required=True)
    status = fields.String(
        metadata={"description": "valid, or pending: kept for the committee's review"}
    )


class RankingArgsSchema(Schema):
    category = fields.String(required=True)


class RankingItemSchema(Schema):
    number = fields.String()
    name = fields.String()
    unit = fields.String()
    votes = fields.Integer()
    rank = fields.Integer()


class RankingSchema(Schema):
    category = fields.String()
    category_name = fields.String()
    hidden = fields.Boolean(metadata={"description": "true while the campaign hides counts"})
    items = fields.List(fields.Nested(RankingItemSchema))


class LedgerHealthSchema(Schema):
    stream_length = fields.Integer()
    pending = fields.Integer(metadata={"description": "read by a drainer, not yet acknowledged"})
    oldest_undrained_age_seconds = fields.Float(allow_none=True)
    drained_votes = fields.Integer()
    chain_head = fields.String(allow_none=True)


class ChallengeSchema(Schema):
    challenge_id = fields.String(required=True)
    image = fields.String(required=True, metadata={"description": "a PNG as a data: URL"})
    expires_at = fields.AwareDateTime(required=True)


class ChallengeAnswerSchema(Schema):
    answer = fields.String(required=True, validate=validate.Length(min=1, max=10))


class ChallengePassSchema(Schema):
    challenge_pass = fields.String(
        required=True, metadata={"description": "send as the X-Challenge-Pass header when voting"}
    )
    expires_at = fields.AwareDateTime(required=True)


class FreezeSchema(Schema):
    nominee = fields.String(attribute="nominee_number")
    frozen_at = fields.AwareDateTime()
    frozen_until = fields.AwareDateTime()
    minute_votes = fields.Integer()
    baseline_per_minute = fields.String()
    explanation = fields.String()
    lifted_at = fields.AwareDateTime(allow_none=True)
    lifted_by = fields.String(allow_none=True)
    lift_reason = fields.String(allow_none=True)


class FreezeListSchema(Schema):
    items = fields.List(fields.Nested(FreezeSchema))


class OAuthStartArgsSchema(Schema):
    campaign = fields.String(required=True, validate=validate.Length(min=1, max=64))
    next = fields.String(
        load_default=None,
        validate=validate.Length(max=500),
        metadata={"description": "a path on this site to return to (default: the campaign page)"},
    )


class OAuthCallbackArgsSchema(Schema):
    code = fields.String(load_default="")
    state = fields.String(load_default="")
    format = fields.String(
        load_default=None,
        validate=validate.OneOf(("json",)),
        metadata={"description": "json: answer with the token instead of redirecting"},
    )


class OAuthResultSchema(Schema):
    voter_token = fields.String(required=True)
    expires_at = fields.AwareDateTime(required=True)
    next = fields.String()


class JssdkArgsSchema(Schema):
    url = fields.String(required=True, validate=validate.Length(min=1, max=2048))


class JssdkConfigSchema(Schema):
    appId = fields.String()
    timestamp = fields.Integer()
    nonceStr = fields.String()
    signature = fields.String()
