"""Input and output schemas for campaigns, categories, units, accounts and login."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import (
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates,
    validates_schema,
)

from campaigns import ports
from campaigns.models import PHASES, ROLES, UNIT_LEVELS
from core import geo

SLUG = validate.Regexp(r"^[a-z0-9][a-z0-9-]{1,62}$", error="只能使用小写字母、数字和连字符")
CODE = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$", error="只能使用字母、数字、_ . -")


class LoginSchema(Schema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=64))
    password = fields.String(
        required=True, load_only=True, validate=validate.Length(min=1, max=256)
    )


class LoginResultSchema(Schema):
    access_token = fields.String(required=True)
    token_type = fields.String(dump_default="Bearer")
    role = fields.String(required=True)
    expires_at = fields.AwareDateTime(required=True)
    username = fields.String()
    unit_code = fields.String(allow_none=True)


class UnitCreateSchema(Schema):
    code = fields.String(required=True, validate=CODE)
    name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    level = fields.String(required=True, validate=validate.OneOf(UNIT_LEVELS))
    parent_code = fields.String(load_default=None, allow_none=True, validate=CODE)


class UnitSchema(Schema):
    code = fields.String()
    name = fields.String()
    level = fields.String()
    parent_code = fields.Function(lambda unit: unit.parent.code if unit.parent else None)


class UnitListSchema(Schema):
    items = fields.List(fields.Nested(UnitSchema))


class AccountCreateSchema(Schema):
    username = fields.String(
        required=True,
        validate=validate.Regexp(
            r"^[A-Za-z0-9_.@-]{3,64}$", error="用户名为 3–64 位字母、数字或 _ . @ -"
        ),
    )
    password = fields.String(
        required=True,
        load_only=True,
        validate=validate.Length(min=10, max=256, error="密码长度为 10–256 个字符"),
    )
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    unit_code = fields.String(load_default=None, allow_none=True, validate=CODE)
    display_name = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=80)
    )


class AccountSchema(Schema):
    id = fields.Integer()
    username = fields.String()
    role = fields.String()
    display_name = fields.String(allow_none=True)
    unit_code = fields.Function(lambda account: account.unit.code if account.unit else None)
    is_active = fields.Boolean()
    last_login_at = fields.AwareDateTime(allow_none=True)


class AccountListSchema(Schema):
    items = fields.List(fields.Nested(AccountSchema))


NEW_PASSWORD = validate.Length(min=10, max=256, error="密码长度为 10–256 个字符")
REASON = validate.Length(max=1000, error="原因最多 1000 个字符")


class PasswordChangeSchema(Schema):
    current_password = fields.String(
        required=True, load_only=True, validate=validate.Length(min=1, max=256)
    )
    new_password = fields.String(required=True, load_only=True, validate=NEW_PASSWORD)


class PasswordResetSchema(Schema):
    new_password = fields.String(required=True, load_only=True, validate=NEW_PASSWORD)
    reason = fields.String(load_default=None, allow_none=True, validate=REASON)


class AccountDeactivateSchema(Schema):
    reason = fields.String(
        required=True, validate=validate.Length(min=1, max=1000, error="请填写 1–1000 个字符的原因")
    )


class AccountActivateSchema(Schema):
    reason = fields.String(load_default=None, allow_none=True, validate=REASON)


class RulesSchema(Schema):
    """Voting rules. Unknown keys are refused, so no setting can reward shares or follows."""

    votes_per_day = fields.Integer(required=True, validate=validate.Range(min=1, max=50))
    votes_per_nominee_per_day = fields.Integer(
        required=True, validate=validate.Range(min=1, max=50)
    )
    hide_counts = fields.Boolean(load_default=False)
    hide_counts_from = fields.AwareDateTime(load_default=None, allow_none=True)
    # Pressure checks (see docs/voting.md). They can hold or slow votes, never add any.
    ip_soft_limit = fields.Integer(
        load_default=30,
        validate=validate.Range(min=0, max=10000),
        metadata={"description": "votes per minute from one address before a captcha (0: off)"},
    )
    velocity_factor = fields.Integer(
        load_default=10,
        validate=validate.Range(min=0, max=1000),
        metadata={"description": "a nominee's minute above this × its 10-minute average is held"},
    )
    velocity_floor = fields.Integer(
        load_default=300,
        validate=validate.Range(min=1, max=1000000),
        metadata={"description": "votes per minute a nominee may always get"},
    )
    freeze_minutes = fields.Integer(
        load_default=10,
        validate=validate.Range(min=0, max=1440),
        metadata={"description": "how long a nominee whose pace exploded is frozen (0: never)"},
    )

    require_phone = fields.Boolean(
        load_default=False,
        metadata={
            "description": "一人一号: every voter proves a phone number by a text-message code "
            "before voting, even inside WeChat (403 phone_required otherwise)"
        },
    )

    fraud = fields.Dict(
        keys=fields.String(),
        values=fields.Dict(keys=fields.String(), values=fields.Float(allow_nan=False)),
        load_default=None,
        allow_none=True,
        metadata={"description": "detector thresholds by rule, e.g. {lockstep_group: {...}}"},
    )

    regions = fields.List(
        fields.String(validate=validate.Length(min=1, max=40)),
        load_default=list,
        validate=validate.Length(max=100),
        metadata={
            "description": "地区限制: provinces or cities whose voters may vote, in Chinese "
            '(e.g. ["浙江省", "浙江省杭州市"], a city alone when only one province has it; '
            "stored in the IP data set's names, 北京 for 北京市); empty: no restriction. "
            "Addresses the data set cannot place (IPv6, unknown) may vote (docs/voting.md)"
        },
    )

    @validates("fraud")
    def _known_detector_settings(self, value: dict[str, Any] | None, **_: Any) -> None:
        ports.check_fraud_settings(value)

    @validates("regions")
    def _known_regions(self, value: list[str], **_: Any) -> None:
        unknown = [name for name in value if geo.canonical_region(name) is None]
        if unknown:
            raise ValidationError(
                "无法识别的地区："
                + "、".join(unknown)
                + "（请填写省份，或省份加城市，如 浙江省杭州市）"
            )

    @post_load
    def _canonical_regions(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        if data.get("regions"):
            names = (geo.canonical_region(name) for name in data["regions"])
            data["regions"] = list(dict.fromkeys(name for name in names if name))
        return data

    @validates_schema
    def _quota_within_daily(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("votes_per_nominee_per_day", 0) > data.get("votes_per_day", 0):
            raise ValidationError(
                "每位候选人每日票数不能超过每日总票数", "votes_per_nominee_per_day"
            )


class WeightsSchema(Schema):
    public = fields.Integer(required=True, validate=validate.Range(min=0, max=100))
    jury = fields.Integer(required=True, validate=validate.Range(min=0, max=100))
    organizer = fields.Integer(load_default=0, validate=validate.Range(min=0, max=100))

    @validates_schema
    def _sum_is_100(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("public", 0) + data.get("jury", 0) + data.get("organizer", 0) != 100:
            raise ValidationError("各项权重之和必须为 100", "_schema")


def _check_timezone(value: str) -> None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError("未知的时区") from exc


class CampaignFieldsSchema(Schema):
    title = fields.String(validate=validate.Length(min=1, max=120))
    organizer = fields.String(validate=validate.Length(min=1, max=120))
    description = fields.String(validate=validate.Length(max=5000))
    timezone = fields.String(validate=validate.Length(max=64))
    nomination_start = fields.AwareDateTime()
    nomination_end = fields.AwareDateTime()
    voting_start = fields.AwareDateTime()
    voting_end = fields.AwareDateTime()
    rules = fields.Nested(RulesSchema)
    weights = fields.Nested(WeightsSchema)
    require_recommendation = fields.Boolean()
    publicity_days = fields.Integer(validate=validate.Range(min=1, max=60))

    @validates("timezone")
    def _timezone(self, value: str, **_: Any) -> None:
        _check_timezone(value)


class CampaignCreateSchema(CampaignFieldsSchema):
    slug = fields.String(required=True, validate=SLUG)
    title = fields.String(required=True, validate=validate.Length(min=1, max=120))
    organizer = fields.String(required=True, validate=validate.Length(min=1, max=120))
    description = fields.String(load_default="", validate=validate.Length(max=5000))
    timezone = fields.String(load_default="Asia/Shanghai", validate=validate.Length(max=64))
    nomination_start = fields.AwareDateTime(required=True)
    nomination_end = fields.AwareDateTime(required=True)
    voting_start = fields.AwareDateTime(required=True)
    voting_end = fields.AwareDateTime(required=True)
    rules = fields.Nested(RulesSchema, required=True)
    weights = fields.Nested(WeightsSchema, required=True)
    require_recommendation = fields.Boolean(load_default=False)
    publicity_days = fields.Integer(load_default=7, validate=validate.Range(min=1, max=60))


class CampaignUpdateSchema(CampaignFieldsSchema):
    """Every field optional; the slug never changes once the public has links to it."""


class PhaseChangeSchema(Schema):
    phase = fields.String(required=True, validate=validate.OneOf(PHASES))
    reason = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=1000))


MAX_TIERS = 5
TIER_CODE = validate.Regexp(
    r"^[a-z0-9][a-z0-9_-]{0,19}$", error="等次代码为 1–20 位小写字母、数字、_ 或 -"
)


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("等次名称不能为空")


class TierSchema(Schema):
    """One award tier of a category (e.g. 十佳 10): its winners are the next ``count`` by rank."""

    code = fields.String(
        required=True,
        validate=TIER_CODE,
        metadata={"description": "stable code of the tier, unique in the category, e.g. top10"},
    )
    name = fields.String(
        required=True,
        validate=[validate.Length(min=1, max=20, error="等次名称为 1–20 个字符"), _not_blank],
        metadata={"description": "the tier's name as published (zh-CN, 1–20 chars), e.g. 十佳"},
    )
    count = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Range(min=1, max=200, error="每个等次的名额为 1–200 名"),
        metadata={"description": "how many winners the tier holds (at least 1)"},
    )

    @post_load
    def _trimmed(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        data["name"] = data["name"].strip()
        return data


TIERS_DESCRIPTION = (
    f"optional award tiers in order (1–{MAX_TIERS}), e.g. "
    '[{"code": "top10", "name": "十佳", "count": 10}, '
    '{"code": "excellent", "name": "优秀", "count": 10}]: the first `count` winners by rank '
    "take the first tier, the next ones the second… With tiers, award_count is their sum "
    "(derived when omitted; a different value is refused). null or []: no tiers, one "
    "implicit tier whose winners carry no tier name"
)


def _tiers_field(**kwargs: Any) -> fields.List:
    return fields.List(
        fields.Nested(TierSchema),
        allow_none=True,
        validate=validate.Length(max=MAX_TIERS, error=f"最多设置 {MAX_TIERS} 个等次"),
        metadata={"description": TIERS_DESCRIPTION},
        **kwargs,
    )


def check_tiers(tiers: list[dict[str, Any]] | None) -> None:
    """Tier codes and names unique within a category (the rest is TierSchema's)."""
    for key, label in (("code", "代码"), ("name", "名称")):
        seen: set[str] = set()
        for tier in tiers or []:
            if tier[key] in seen:
                raise ValidationError(f"等次{label}不能重复：{tier[key]}", "tiers")
            seen.add(tier[key])


class CategoryCreateSchema(Schema):
    code = fields.String(required=True, validate=CODE)
    name = fields.String(required=True, validate=validate.Length(min=1, max=120))
    prefix = fields.String(
        required=True,
        validate=validate.Regexp(r"^[A-Z]{1,3}$", error="编号前缀为 1–3 个大写字母"),
    )
    award_count = fields.Integer(
        load_default=None,
        validate=validate.Range(min=1, max=200),
        metadata={
            "description": "winners in the category (1–200); required without tiers, "
            "derived from the tiers (their sum) when omitted with them"
        },
    )
    max_per_unit = fields.Integer(required=True, validate=validate.Range(min=1, max=100))
    tiers = _tiers_field(load_default=None)

    @validates_schema
    def _unique_tiers(self, data: dict[str, Any], **_: Any) -> None:
        check_tiers(data.get("tiers"))


class CategoryUpdateSchema(Schema):
    """The award settings of a category; every field optional. Refused (409 awards_locked) once
    the results are in publicity."""

    award_count = fields.Integer(
        validate=validate.Range(min=1, max=200),
        metadata={"description": "winners in the category; with tiers it must equal their sum"},
    )
    tiers = _tiers_field()

    @validates_schema
    def _unique_tiers(self, data: dict[str, Any], **_: Any) -> None:
        check_tiers(data.get("tiers"))


class CategorySchema(Schema):
    code = fields.String()
    name = fields.String()
    prefix = fields.String()
    award_count = fields.Integer()
    max_per_unit = fields.Integer()
    tiers = fields.List(
        fields.Nested(TierSchema),
        attribute="tier_list",
        metadata={"description": "the award tiers in order; [] for one implicit tier"},
    )


class PublicRulesSchema(Schema):
    """What a voter plans by. Never a pressure check (the per-network captcha threshold
    included) or a detector threshold: knowing them is knowing how to brush unseen."""

    votes_per_day = fields.Integer()
    votes_per_nominee_per_day = fields.Integer()
    hide_counts = fields.Boolean()
    # Stored as ISO 8601 text in the rules JSON.
    hide_counts_from = fields.String(allow_none=True)
    regions = fields.List(
        fields.String(),
        metadata={"description": "地区限制: only voters placed in these regions vote (empty: all)"},
    )
    require_phone = fields.Boolean(
        metadata={"description": "一人一号: voters verify a phone by text message before voting"}
    )


class CampaignSchema(Schema):
    """What anyone may read about a campaign."""

    slug = fields.String()
    title = fields.String()
    organizer = fields.String()
    description = fields.String()
    timezone = fields.String()
    phase = fields.String()
    nomination_start = fields.AwareDateTime()
    nomination_end = fields.AwareDateTime()
    voting_start = fields.AwareDateTime()
    voting_end = fields.AwareDateTime()
    voting_open = fields.Boolean()
    publicity_days = fields.Integer()
    rules = fields.Nested(PublicRulesSchema)
    weights = fields.Dict()
    categories = fields.List(fields.Nested(CategorySchema))


class CampaignAdminSchema(CampaignSchema):
    id = fields.Integer()
    # Staff see every rule, detector thresholds included (the public sees PublicRulesSchema).
    rules = fields.Dict()
    require_recommendation = fields.Boolean()
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


class ClerkRulesSchema(Schema):
    """The voting rules a clerk plans by: the daily quotas and whether counts are hidden. No
    pressure check and no detector threshold: knowing them is knowing how to brush unseen."""

    votes_per_day = fields.Integer()
    votes_per_nominee_per_day = fields.Integer()
    hide_counts = fields.Boolean()
    hide_counts_from = fields.String(allow_none=True)


class CampaignClerkSchema(CampaignSchema):
    """A campaign as unit clerks and reviewers read it (drafts included): title, windows,
    categories and their quotas, what a nomination needs, the daily vote quotas. The full
    rules (pressure checks, fraud thresholds) are the committee office's only."""

    view = fields.String(
        dump_default="clerk",
        validate=validate.OneOf(["clerk"]),
        metadata={"description": "always `clerk`: this reduced view, not CampaignAdmin"},
    )
    rules = fields.Nested(ClerkRulesSchema)
    require_recommendation = fields.Boolean()


class CampaignListSchema(Schema):
    items = fields.List(fields.Nested(CampaignSchema))
