"""Schemas of the vote path, voter identity, rankings and ledger health."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate

from core import geo
from voting.detectors import DEFAULTS

# Ids in the database are 32-bit integers: a larger filter value is refused here (422) instead of
# overflowing in the database driver (500).
_DB_ID = validate.Range(min=1, max=2_147_483_647)
# Any time a query can mean. Far outside it (year 1 or 9999 with an offset), converting the value
# to UTC for the database overflows.
_QUERY_TIME = validate.Range(
    min=datetime(1900, 1, 1, tzinfo=UTC), max=datetime(3000, 1, 1, tzinfo=UTC)
)


class DeviceVoterSchema(Schema):
    device_id = fields.String(
        required=True,
        validate=validate.Regexp(r"^[A-Za-z0-9_-]{8,128}$", error="设备标识格式不正确"),
    )


class VoterTokenSchema(Schema):
    voter_token = fields.String(required=True)
    expires_at = fields.AwareDateTime(required=True)


def _plain_text(value: str) -> None:
    """No control characters and no lone surrogates (which no encoding can carry to Redis)."""
    if any(ord(ch) < 32 or 0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        raise ValidationError("包含无法识别的字符")


class VoteCreateSchema(Schema):
    nominee = fields.String(
        required=True,
        validate=[validate.Length(min=1, max=16), _plain_text],
        metadata={"description": "the nominee's public number, e.g. D001"},
    )


class MyQuotaSchema(Schema):
    day = fields.String(metadata={"description": "the voting day, in the campaign's time zone"})
    votes_per_day = fields.Integer()
    votes_per_nominee_per_day = fields.Integer()
    remaining_today = fields.Integer()
    voted_today = fields.Dict(
        keys=fields.String(), values=fields.Integer(), metadata={"description": "number → votes"}
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
    quarantined = fields.Integer(
        metadata={
            "description": "ledger entries the database could not store, set aside (outside "
            "the chain and the counts) and not yet resolved; see votes reconcile"
        }
    )
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


class ScanSchema(Schema):
    id = fields.Integer()
    status = fields.String(metadata={"description": "queued, running, done or failed"})
    trigger = fields.String()
    requested_by = fields.String(allow_none=True)
    votes_scanned = fields.Integer(allow_none=True)
    flags_created = fields.Integer(allow_none=True)
    error = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()
    finished_at = fields.AwareDateTime(allow_none=True)


class FlagSchema(Schema):
    id = fields.Integer()
    rule = fields.String()
    nominee = fields.String(attribute="nominee_number", allow_none=True)
    score = fields.Float()
    severity = fields.String(metadata={"description": "high, medium, low or watch (观察)"})
    vote_count = fields.Integer()
    explanation = fields.String()
    status = fields.String(metadata={"description": "open, confirmed or dismissed"})
    decided_by = fields.String(allow_none=True)
    decided_at = fields.AwareDateTime(allow_none=True)
    decision_reason = fields.String(allow_none=True)
    created_at = fields.AwareDateTime()


class FlagDetailSchema(FlagSchema):
    evidence = fields.Dict()


class FlagListArgsSchema(Schema):
    status = fields.String(
        load_default=None, validate=validate.OneOf(("open", "confirmed", "dismissed"))
    )
    severity = fields.String(
        load_default=None,
        validate=validate.OneOf(("high", "medium", "low", "watch")),
        metadata={
            "description": "high, medium, low or watch (观察: weak observations, left out of the"
            " default list and never confirmable)"
        },
    )


class FlagListSchema(Schema):
    items = fields.List(fields.Nested(FlagSchema))


class DecisionSchema(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=1000))


class PendingDecisionSchema(Schema):
    decision = fields.String(required=True, validate=validate.OneOf(("release", "void")))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=1000))
    vote_ids = fields.List(fields.String(), load_default=None, validate=validate.Length(max=10000))
    nominee = fields.String(load_default=None)


class CommitteeDecisionSchema(Schema):
    id = fields.Integer()
    chain_index = fields.Integer()
    action = fields.String()
    flag_id = fields.Integer(allow_none=True)
    vote_count = fields.Function(lambda d: len(d.vote_ids))
    from_status = fields.String(allow_none=True)
    to_status = fields.String(allow_none=True)
    actor = fields.String()
    reason = fields.String()
    at = fields.AwareDateTime()
    hash = fields.String()


class LiftFreezeSchema(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=1000))


class VoteFilterSchema(Schema):
    status = fields.String(
        load_default=None, validate=validate.OneOf(("valid", "pending", "invalid"))
    )
    nominee = fields.String(load_default=None)
    flag = fields.Integer(load_default=None, validate=_DB_ID)
    voter = fields.Integer(load_default=None, validate=_DB_ID)
    prefix = fields.String(
        load_default=None,
        validate=validate.Regexp(r"^[0-9a-fA-F:.]{1,45}$"),
        metadata={"description": "address prefix, e.g. 10.2.3. for a /24"},
    )
    start = fields.AwareDateTime(load_default=None, validate=_QUERY_TIME)
    end = fields.AwareDateTime(load_default=None, validate=_QUERY_TIME)


class VoteBrowseArgsSchema(VoteFilterSchema):
    # Bounded like core's PageArgsSchema: a huge page overflows the database's OFFSET.
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100000))
    per_page = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


class VoteRowSchema(Schema):
    id = fields.String()
    nominee = fields.String(attribute="nominee_number")
    category = fields.String(attribute="category_code")
    status = fields.String()
    status_reason = fields.String(allow_none=True)
    at = fields.AwareDateTime()
    voter = fields.Integer(attribute="voter_id")
    ip = fields.String()
    region = fields.Function(
        lambda vote: geo.describe(vote.ip),
        allow_none=True,
        metadata={
            "type": "string",
            "description": "where the offline IP data places the address (e.g. 浙江省杭州市 "
            "中国移动, a cloud provider's name for a datacenter); null when unknown",
        },
    )
    device = fields.String(allow_none=True)
    user_agent = fields.String(allow_none=True)
    chain_index = fields.Integer()
    hash = fields.String()


class VotePageSchema(Schema):
    items = fields.List(fields.Nested(VoteRowSchema))
    page = fields.Integer()
    per_page = fields.Integer()
    total = fields.Integer()


class TallySchema(Schema):
    campaign = fields.String()
    nominees = fields.List(fields.Dict())
    totals = fields.Dict()
    undrained = fields.Integer()
    differences = fields.List(fields.String())


class TrendArgsSchema(Schema):
    nominee = fields.String(load_default=None)
    since = fields.AwareDateTime(
        load_default=None, metadata={"description": "only snapshots at or after this time"}
    )


class TrendSchema(Schema):
    items = fields.List(fields.Dict())


def check_fraud_settings(settings: dict[str, Any]) -> None:
    """A campaign's ``rules.fraud``: thresholds of known detectors only, and only the settings
    each one has (campaigns' RulesSchema calls this through campaigns.ports)."""
    for rule, values in settings.items():
        if rule not in DEFAULTS:
            raise ValidationError(f"未知的检测规则：{rule}")
        unknown = set(values) - set(DEFAULTS[rule])
        if unknown:
            raise ValidationError(f"规则 {rule} 没有这些设置：{', '.join(sorted(unknown))}")
