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
        metadata={
            "description": "a random id the device keeps (8–128 letters, digits, _ or -); the "
            "same id is the same voter",
            "example": "dev-3f9a1c27b8e04d55",
        },
    )


VOTER_CREDENTIAL_HINT = (
    "signed voter token (7 days): send it as `Authorization: Bearer …` when voting"
)


class VoterTokenSchema(Schema):
    voter_token = fields.String(required=True, metadata={"description": VOTER_CREDENTIAL_HINT})
    expires_at = fields.AwareDateTime(
        required=True, metadata={"description": "when the token stops working"}
    )


def _plain_text(value: str) -> None:
    """No control characters and no lone surrogates (which no encoding can carry to Redis)."""
    if any(ord(ch) < 32 or 0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        raise ValidationError("包含无法识别的字符")


class VoteCreateSchema(Schema):
    nominee = fields.String(
        required=True,
        validate=[validate.Length(min=1, max=16), _plain_text],
        metadata={"description": "the nominee's public number, e.g. D001", "example": "D001"},
    )


class MyQuotaSchema(Schema):
    day = fields.String(metadata={"description": "the voting day, in the campaign's time zone"})
    votes_per_day = fields.Integer(metadata={"description": "the campaign's daily quota"})
    votes_per_nominee_per_day = fields.Integer(
        metadata={"description": "the campaign's daily quota per nominee"}
    )
    remaining_today = fields.Integer(metadata={"description": "votes the caller has left today"})
    voted_today = fields.Dict(
        keys=fields.String(), values=fields.Integer(), metadata={"description": "number → votes"}
    )


class VoteResultSchema(Schema):
    vote_id = fields.String(
        required=True, metadata={"description": "the vote's id in the ledger (keep it to check)"}
    )
    nominee = fields.String(required=True, metadata={"description": "the nominee's number"})
    nominee_votes = fields.Integer(
        allow_none=True, metadata={"description": "null while the campaign hides counts"}
    )
    remaining_today = fields.Integer(
        required=True, metadata={"description": "votes the caller has left today"}
    )
    status = fields.String(
        metadata={"description": "valid, or pending: kept for the committee's review"}
    )


class RankingArgsSchema(Schema):
    category = fields.String(required=True, metadata={"description": "category code"})


class RankingItemSchema(Schema):
    number = fields.String(metadata={"description": "the public number, e.g. D001"})
    name = fields.String()
    unit = fields.String(metadata={"description": "the nominating unit's name"})
    votes = fields.Integer(metadata={"description": "valid votes counted so far"})
    rank = fields.Integer(metadata={"description": "1 for the most votes"})


class RankingSchema(Schema):
    category = fields.String(metadata={"description": "category code"})
    category_name = fields.String()
    hidden = fields.Boolean(metadata={"description": "true while the campaign hides counts"})
    items = fields.List(fields.Nested(RankingItemSchema))


class LedgerHealthSchema(Schema):
    stream_length = fields.Integer(metadata={"description": "entries in the ledger stream"})
    pending = fields.Integer(metadata={"description": "read by a drainer, not yet acknowledged"})
    oldest_undrained_age_seconds = fields.Float(
        allow_none=True,
        metadata={"description": "age of the oldest vote not yet stored; null when none waits"},
    )
    drained_votes = fields.Integer(metadata={"description": "votes stored in the database"})
    quarantined = fields.Integer(
        metadata={
            "description": "ledger entries the database could not store, set aside (outside "
            "the chain and the counts) and not yet resolved; see votes reconcile"
        }
    )
    chain_head = fields.String(
        allow_none=True, metadata={"description": "hash of the last vote stored in the chain"}
    )


class ChallengeSchema(Schema):
    challenge_id = fields.String(
        required=True, metadata={"description": "answer it at POST /challenges/{challenge_id}"}
    )
    image = fields.String(required=True, metadata={"description": "a PNG as a data: URL"})
    expires_at = fields.AwareDateTime(
        required=True, metadata={"description": "after this the challenge is gone (410)"}
    )


class ChallengeAnswerSchema(Schema):
    answer = fields.String(
        required=True,
        validate=validate.Length(min=1, max=10),
        metadata={"description": "the characters in the image; one try", "example": "7K3P"},
    )


class ChallengePassSchema(Schema):
    challenge_pass = fields.String(
        required=True, metadata={"description": "send as the X-Challenge-Pass header when voting"}
    )
    expires_at = fields.AwareDateTime(
        required=True, metadata={"description": "the pass is good until then (5 minutes)"}
    )


class FreezeSchema(Schema):
    nominee = fields.String(attribute="nominee_number", metadata={"description": "its number"})
    frozen_at = fields.AwareDateTime()
    frozen_until = fields.AwareDateTime(
        metadata={"description": "votes for the nominee are refused until then (unless lifted)"}
    )
    minute_votes = fields.Integer(metadata={"description": "votes in the minute that froze it"})
    baseline_per_minute = fields.String(
        metadata={"description": "its average per minute over the previous 10 minutes"}
    )
    explanation = fields.String(metadata={"description": "why, in Chinese, for the committee"})
    lifted_at = fields.AwareDateTime(allow_none=True)
    lifted_by = fields.String(allow_none=True, metadata={"description": "who lifted it early"})
    lift_reason = fields.String(allow_none=True, metadata={"description": "why it was lifted"})


class FreezeListSchema(Schema):
    items = fields.List(fields.Nested(FreezeSchema))


class OAuthStartArgsSchema(Schema):
    campaign = fields.String(
        required=True,
        validate=validate.Length(min=1, max=64),
        metadata={"description": "the campaign's slug"},
    )
    next = fields.String(
        load_default=None,
        validate=validate.Length(max=500),
        metadata={"description": "a path on this site to return to (default: the campaign page)"},
    )


class OAuthCallbackArgsSchema(Schema):
    code = fields.String(load_default="", metadata={"description": "WeChat's one-time code"})
    state = fields.String(
        load_default="", metadata={"description": "the state /wechat/oauth/start gave WeChat"}
    )
    format = fields.String(
        load_default=None,
        validate=validate.OneOf(("json",)),
        metadata={"description": "json: answer with the token instead of redirecting"},
    )


class OAuthResultSchema(Schema):
    voter_token = fields.String(required=True, metadata={"description": VOTER_CREDENTIAL_HINT})
    expires_at = fields.AwareDateTime(required=True)
    next = fields.String(metadata={"description": "the page to go back to"})


class JssdkArgsSchema(Schema):
    url = fields.String(
        required=True,
        validate=validate.Length(min=1, max=2048),
        metadata={"description": "the page's own http(s) URL"},
    )


class JssdkConfigSchema(Schema):
    """Pass these to ``wx.config`` as they are."""

    appId = fields.String(metadata={"description": "the official account's AppID"})
    timestamp = fields.Integer(metadata={"description": "seconds since the epoch, as signed"})
    nonceStr = fields.String(metadata={"description": "the random string that was signed"})
    signature = fields.String(metadata={"description": "SHA-1 signature over ticket and URL"})


class ScanSchema(Schema):
    id = fields.Integer()
    status = fields.String(metadata={"description": "queued, running, done or failed"})
    trigger = fields.String(metadata={"description": "manual (a committee member) or schedule"})
    requested_by = fields.String(allow_none=True, metadata={"description": "their username"})
    votes_scanned = fields.Integer(allow_none=True, metadata={"description": "votes read"})
    flags_created = fields.Integer(allow_none=True, metadata={"description": "new flags raised"})
    error = fields.String(allow_none=True, metadata={"description": "why it failed"})
    created_at = fields.AwareDateTime()
    finished_at = fields.AwareDateTime(allow_none=True)


class FlagSchema(Schema):
    id = fields.Integer()
    rule = fields.String(metadata={"description": "the detector that raised it"})
    nominee = fields.String(
        attribute="nominee_number",
        allow_none=True,
        metadata={"description": "the nominee it concerns; null when it spans several"},
    )
    score = fields.Float(metadata={"description": "how certain the detector is (higher: more)"})
    severity = fields.String(metadata={"description": "high, medium, low or watch (观察)"})
    vote_count = fields.Integer(metadata={"description": "votes the flag covers"})
    explanation = fields.String(metadata={"description": "what was seen, in Chinese"})
    status = fields.String(metadata={"description": "open, confirmed or dismissed"})
    decided_by = fields.String(allow_none=True, metadata={"description": "who decided"})
    decided_at = fields.AwareDateTime(allow_none=True)
    decision_reason = fields.String(allow_none=True, metadata={"description": "why"})
    created_at = fields.AwareDateTime()


class FlagDetailSchema(FlagSchema):
    evidence = fields.Dict(
        metadata={
            "description": "the figures behind the flag, per rule: top addresses and devices, "
            "per-minute histogram, sample voters, thresholds crossed"
        }
    )


class FlagListArgsSchema(Schema):
    status = fields.String(
        load_default=None,
        validate=validate.OneOf(("open", "confirmed", "dismissed")),
        metadata={"description": "open, confirmed or dismissed; all when absent"},
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


COMMITTEE_REASON = (
    "why the committee decides so (1–1000 characters; blank: 422 reason_required); recorded "
    "in the decision chain"
)


class DecisionSchema(Schema):
    reason = fields.String(
        required=True,
        validate=validate.Length(min=1, max=1000),
        metadata={
            "description": COMMITTEE_REASON,
            "example": "同一网段 3 分钟内集中投票 412 票，设备指纹高度重复，经核实为刷票",
        },
    )


class PendingDecisionSchema(Schema):
    decision = fields.String(
        required=True,
        validate=validate.OneOf(("release", "void")),
        metadata={"description": "release: the held votes become valid; void: invalid"},
    )
    reason = fields.String(
        required=True,
        validate=validate.Length(min=1, max=1000),
        metadata={"description": COMMITTEE_REASON},
    )
    vote_ids = fields.List(
        fields.String(),
        load_default=None,
        validate=validate.Length(max=10000),
        metadata={"description": "the held votes to decide (at most 10,000); or give nominee"},
    )
    nominee = fields.String(
        load_default=None,
        metadata={"description": "every held vote of this nominee (its number), if no vote_ids"},
    )


class CommitteeDecisionSchema(Schema):
    id = fields.Integer()
    chain_index = fields.Integer(metadata={"description": "its place in the decision chain"})
    action = fields.String(
        metadata={"description": "confirm, dismiss, undo, release, void or lift_freeze"}
    )
    flag_id = fields.Integer(allow_none=True, metadata={"description": "the flag decided on"})
    vote_count = fields.Function(
        lambda d: len(d.vote_ids), metadata={"description": "votes whose status it changed"}
    )
    from_status = fields.String(allow_none=True, metadata={"description": "status before"})
    to_status = fields.String(allow_none=True, metadata={"description": "status after"})
    actor = fields.String(metadata={"description": "username of who decided"})
    reason = fields.String()
    at = fields.AwareDateTime()
    hash = fields.String(
        metadata={"description": "hash over this decision and the one before (the chain)"}
    )


class LiftFreezeSchema(Schema):
    reason = fields.String(
        required=True,
        validate=validate.Length(min=1, max=1000),
        metadata={"description": COMMITTEE_REASON},
    )


class VoteFilterSchema(Schema):
    status = fields.String(
        load_default=None,
        validate=validate.OneOf(("valid", "pending", "invalid")),
        metadata={"description": "valid, pending (held for review) or invalid"},
    )
    nominee = fields.String(load_default=None, metadata={"description": "the nominee's number"})
    flag = fields.Integer(
        load_default=None, validate=_DB_ID, metadata={"description": "votes a flag covers"}
    )
    voter = fields.Integer(
        load_default=None, validate=_DB_ID, metadata={"description": "one voter's votes"}
    )
    prefix = fields.String(
        load_default=None,
        validate=validate.Regexp(r"^[0-9a-fA-F:.]{1,45}$"),
        metadata={"description": "address prefix, e.g. 10.2.3. for a /24"},
    )
    start = fields.AwareDateTime(
        load_default=None,
        validate=_QUERY_TIME,
        metadata={"description": "votes at or after this moment (ISO 8601 with an offset)"},
    )
    end = fields.AwareDateTime(
        load_default=None,
        validate=_QUERY_TIME,
        metadata={"description": "votes before this moment"},
    )


class VoteBrowseArgsSchema(VoteFilterSchema):
    # Bounded like core's PageArgsSchema: a huge page overflows the database's OFFSET.
    page = fields.Integer(
        load_default=1,
        validate=validate.Range(min=1, max=100000),
        metadata={"description": "page number, from 1"},
    )
    per_page = fields.Integer(
        load_default=50,
        validate=validate.Range(min=1, max=500),
        metadata={"description": "votes per page (1–500, default 50)"},
    )


class VoteRowSchema(Schema):
    id = fields.String()
    nominee = fields.String(attribute="nominee_number", metadata={"description": "its number"})
    category = fields.String(attribute="category_code", metadata={"description": "category code"})
    status = fields.String(metadata={"description": "valid, pending or invalid"})
    status_reason = fields.String(
        allow_none=True,
        metadata={
            "description": "why it is held or changed, e.g. flag:12 (a confirmed flag), "
            "release:<username> or void:<username> (a committee decision), or why the vote "
            "script held it"
        },
    )
    at = fields.AwareDateTime()
    voter = fields.Integer(attribute="voter_id", metadata={"description": "the voter's id"})
    ip = fields.String(metadata={"description": "the client address"})
    region = fields.Function(
        lambda vote: geo.describe(vote.ip),
        allow_none=True,
        metadata={
            "type": "string",
            "description": "where the offline IP data places the address (e.g. 浙江省杭州市 "
            "中国移动, a cloud provider's name for a datacenter); null when unknown",
        },
    )
    device = fields.String(
        allow_none=True,
        metadata={"description": "the browser's signed device cookie id, or the voter's device"},
    )
    user_agent = fields.String(allow_none=True)
    chain_index = fields.Integer(metadata={"description": "its place in the vote chain"})
    hash = fields.String(metadata={"description": "hash over this vote and the one before"})


class VotePageSchema(Schema):
    items = fields.List(fields.Nested(VoteRowSchema))
    page = fields.Integer(metadata={"description": "this page's number"})
    per_page = fields.Integer(metadata={"description": "votes per page asked"})
    total = fields.Integer(metadata={"description": "votes matching the filters"})


class TallySchema(Schema):
    campaign = fields.String(metadata={"description": "the campaign's slug"})
    nominees = fields.List(
        fields.Dict(),
        metadata={
            "description": "per nominee: {nominee, category, valid, pending, invalid, "
            "live_valid} (stored counts and the live counter)"
        },
    )
    totals = fields.Dict(metadata={"description": "{valid, pending, invalid} over all nominees"})
    undrained = fields.Integer(metadata={"description": "votes still in the ledger stream"})
    differences = fields.List(
        fields.String(),
        metadata={"description": "numbers whose stored valid count differs from the live one"},
    )


class TrendArgsSchema(Schema):
    nominee = fields.String(load_default=None, metadata={"description": "one nominee's number"})
    since = fields.AwareDateTime(
        load_default=None, metadata={"description": "only snapshots at or after this time"}
    )


class TrendSchema(Schema):
    items = fields.List(
        fields.Dict(),
        metadata={"description": "snapshots: {at (ISO 8601, UTC), nominee, valid, pending}"},
    )


def check_fraud_settings(settings: dict[str, Any]) -> None:
    """A campaign's ``rules.fraud``: thresholds of known detectors only, and only the settings
    each one has (campaigns' RulesSchema calls this through campaigns.ports)."""
    for rule, values in settings.items():
        if rule not in DEFAULTS:
            raise ValidationError(f"未知的检测规则：{rule}")
        unknown = set(values) - set(DEFAULTS[rule])
        if unknown:
            raise ValidationError(f"规则 {rule} 没有这些设置：{', '.join(sorted(unknown))}")
