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
    username = fields.String(
        required=True,
        validate=validate.Length(min=1, max=64),
        metadata={"description": "the staff account's username", "example": "admin"},
    )
    password = fields.String(
        required=True,
        load_only=True,
        validate=validate.Length(min=1, max=256),
        metadata={"description": "the account's password; failures are throttled per address"},
    )


class LoginResultSchema(Schema):
    access_token = fields.String(
        required=True,
        metadata={"description": "signed staff token: send it as `Authorization: Bearer …`"},
    )
    token_type = fields.String(dump_default="Bearer", metadata={"description": "always Bearer"})
    role = fields.String(required=True, metadata={"description": "admin, reviewer, unit or judge"})
    expires_at = fields.AwareDateTime(required=True, metadata={"description": "8 hours from login"})
    username = fields.String()
    unit_code = fields.String(
        allow_none=True,
        metadata={"description": "the account's unit (reviewers and unit clerks); null for others"},
    )


class UnitCreateSchema(Schema):
    code = fields.String(
        required=True,
        validate=CODE,
        metadata={"description": "stable unit code (letters, digits, _ . -), unique"},
    )
    name = fields.String(
        required=True,
        validate=validate.Length(min=1, max=120),
        metadata={"description": "the unit's name as shown, e.g. 青山市人民医院"},
    )
    level = fields.String(
        required=True,
        validate=validate.OneOf(UNIT_LEVELS),
        metadata={
            "description": "province, city, county (bureaus: reviewers belong here) or "
            "institution (hospitals: unit clerks belong here)"
        },
    )
    parent_code = fields.String(
        load_default=None,
        allow_none=True,
        validate=CODE,
        metadata={
            "description": "the unit one level up (a province has none); a reviewer of a "
            "unit sees the nominations of its whole sub-tree"
        },
    )


class UnitSchema(Schema):
    code = fields.String()
    name = fields.String()
    level = fields.String(metadata={"description": "province, city, county or institution"})
    parent_code = fields.Function(
        lambda unit: unit.parent.code if unit.parent else None,
        metadata={"description": "the unit one level up; null for a province"},
    )


class UnitListSchema(Schema):
    items = fields.List(fields.Nested(UnitSchema))


class AccountCreateSchema(Schema):
    username = fields.String(
        required=True,
        validate=validate.Regexp(
            r"^[A-Za-z0-9_.@-]{3,64}$", error="用户名为 3–64 位字母、数字或 _ . @ -"
        ),
        metadata={"description": "login name: 3–64 letters, digits or _ . @ -, unique"},
    )
    password = fields.String(
        required=True,
        load_only=True,
        validate=validate.Length(min=10, max=256, error="密码长度为 10–256 个字符"),
        metadata={"description": "10–256 characters, not the username (422 weak_password)"},
    )
    role = fields.String(
        required=True,
        validate=validate.OneOf(ROLES),
        metadata={
            "description": "admin (评选办), reviewer (主管部门), unit (推荐单位 clerk) or judge"
        },
    )
    unit_code = fields.String(
        load_default=None,
        allow_none=True,
        validate=CODE,
        metadata={
            "description": "required for reviewer (a bureau: province, city or county) and "
            "unit (an institution); 422 unit_required / invalid_unit_level otherwise"
        },
    )
    display_name = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=80),
        metadata={"description": "the person's name as the console shows it"},
    )


class AccountSchema(Schema):
    id = fields.Integer()
    username = fields.String()
    role = fields.String(metadata={"description": "admin, reviewer, unit or judge"})
    display_name = fields.String(allow_none=True)
    unit_code = fields.Function(
        lambda account: account.unit.code if account.unit else None,
        metadata={"description": "the account's unit; null for admins and judges"},
    )
    is_active = fields.Boolean(metadata={"description": "false once deactivated (no login)"})
    last_login_at = fields.AwareDateTime(allow_none=True, metadata={"description": "null: never"})


class AccountListSchema(Schema):
    items = fields.List(fields.Nested(AccountSchema))


NEW_PASSWORD = validate.Length(min=10, max=256, error="密码长度为 10–256 个字符")
REASON = validate.Length(max=1000, error="原因最多 1000 个字符")


class PasswordChangeSchema(Schema):
    current_password = fields.String(
        required=True,
        load_only=True,
        validate=validate.Length(min=1, max=256),
        metadata={"description": "the password in use now (wrong: 403 wrong_password)"},
    )
    new_password = fields.String(
        required=True,
        load_only=True,
        validate=NEW_PASSWORD,
        metadata={"description": "10–256 characters, not the username, not the current password"},
    )


class PasswordResetSchema(Schema):
    new_password = fields.String(
        required=True,
        load_only=True,
        validate=NEW_PASSWORD,
        metadata={"description": "10–256 characters, not the username (422 weak_password)"},
    )
    reason = fields.String(
        load_default=None,
        allow_none=True,
        validate=REASON,
        metadata={"description": "why, for the audit log (optional, at most 1000 characters)"},
    )


class AccountDeactivateSchema(Schema):
    reason = fields.String(
        required=True,
        validate=validate.Length(min=1, max=1000, error="请填写 1–1000 个字符的原因"),
        metadata={"description": "why the account is stopped (audited; 1–1000 characters)"},
    )


class AccountActivateSchema(Schema):
    reason = fields.String(
        load_default=None,
        allow_none=True,
        validate=REASON,
        metadata={"description": "why, for the audit log (optional)"},
    )


class RulesSchema(Schema):
    """Voting rules. Unknown keys are refused, so no setting can reward shares or follows."""

    votes_per_day = fields.Integer(
        required=True,
        validate=validate.Range(min=1, max=50),
        metadata={
            "description": "votes one voter may cast per day of the campaign's time zone "
            "(1–50), across all nominees; past it: 429 daily_quota_exhausted"
        },
    )
    votes_per_nominee_per_day = fields.Integer(
        required=True,
        validate=validate.Range(min=1, max=50),
        metadata={
            "description": "votes one voter may give the same nominee per day (1–50, at most "
            "votes_per_day); past it: 429 nominee_daily_limit"
        },
    )
    hide_counts = fields.Boolean(
        load_default=False,
        metadata={"description": "hide vote counts and the ranking from the public throughout"},
    )
    hide_counts_from = fields.AwareDateTime(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "hide counts and the ranking from this moment on (e.g. the last "
            "day of voting); null: never, unless hide_counts"
        },
    )
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


def _share(what: str, **options: Any) -> fields.Integer:
    """A weight, in percent (0–100)."""
    description = f"share of {what}, in percent (0–100)"
    return fields.Integer(
        validate=validate.Range(0, 100), metadata={"description": description}, **options
    )


class WeightsSchema(Schema):
    """How the final score mixes its parts, in percent; the weights add up to 100. Satisfaction
    (群众评议), 同行互评 and 领导点评 are optional parts: awards.scoring.METHOD."""

    public = _share("the public vote", required=True)
    jury = _share("the judges' mean score", required=True)
    organizer = _share("the organiser's own 0–100 score", load_default=0)
    satisfaction = _share("the patients' satisfaction (群众评议 invited answers; absent: 0)")
    peer = _share("the 同行互评 panel's mean score (absent: 0)")
    leader = _share("the 领导点评 panel's mean score (absent: 0)")
    satisfaction_min_answers = fields.Integer(
        validate=validate.Range(1, 100000),
        metadata={"description": "invited answers before satisfaction counts (absent: 30)"},
    )

    @validates_schema
    def _sum_is_100(self, data: dict[str, Any], **_: Any) -> None:
        parts = ("public", "jury", "organizer", "satisfaction", "peer", "leader")
        if sum(data.get(key, 0) for key in parts) != 100:
            raise ValidationError("各项权重之和必须为 100", "_schema")


def _check_timezone(value: str) -> None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError("未知的时区") from exc


TITLE = "the campaign's public title, e.g. 2026年度「最美医务工作者」评选"
ORGANIZER = "who runs it, as published, e.g. 青山市卫生健康委员会"
DESCRIPTION = "the public introduction (plain text, at most 5000 characters)"
TIMEZONE = (
    "IANA time zone (default Asia/Shanghai): days for the vote quotas, exports' local "
    "columns and the console's times are counted in it. Locked while voting"
)
NOMINATION_START = "nominations open (ISO 8601 with an offset; stored in UTC)"
NOMINATION_END = "nominations close; units create drafts only inside the window"
VOTING_START = "voting opens (locked once the campaign is in voting)"
VOTING_END = "voting closes; votes at or after this moment are refused (403 voting_closed)"
RULES = "the voting rules; locked while the campaign is in voting (409 rules_locked)"
WEIGHTS = "how public vote, jury and organiser scores mix into the final score (sum 100)"
REQUIRE_RECOMMENDATION = (
    "the committee may approve only nominations a bureau reviewer recommended "
    "(409 recommendation_required otherwise)"
)
PUBLICITY_DAYS = "days the winners list is on public notice (公示) and open to objections"


class CampaignFieldsSchema(Schema):
    title = fields.String(validate=validate.Length(min=1, max=120), metadata={"description": TITLE})
    organizer = fields.String(
        validate=validate.Length(min=1, max=120), metadata={"description": ORGANIZER}
    )
    description = fields.String(
        validate=validate.Length(max=5000), metadata={"description": DESCRIPTION}
    )
    timezone = fields.String(validate=validate.Length(max=64), metadata={"description": TIMEZONE})
    nomination_start = fields.AwareDateTime(metadata={"description": NOMINATION_START})
    nomination_end = fields.AwareDateTime(metadata={"description": NOMINATION_END})
    voting_start = fields.AwareDateTime(metadata={"description": VOTING_START})
    voting_end = fields.AwareDateTime(metadata={"description": VOTING_END})
    rules = fields.Nested(RulesSchema, metadata={"description": RULES})
    weights = fields.Nested(WeightsSchema, metadata={"description": WEIGHTS})
    require_recommendation = fields.Boolean(metadata={"description": REQUIRE_RECOMMENDATION})
    publicity_days = fields.Integer(
        validate=validate.Range(min=1, max=60), metadata={"description": PUBLICITY_DAYS}
    )

    @validates("timezone")
    def _timezone(self, value: str, **_: Any) -> None:
        _check_timezone(value)


class CampaignCreateSchema(CampaignFieldsSchema):
    slug = fields.String(
        required=True,
        validate=SLUG,
        metadata={
            "description": "the campaign's id in every URL (lowercase letters, digits, "
            "hyphens); never changes once created"
        },
    )
    title = fields.String(
        required=True, validate=validate.Length(min=1, max=120), metadata={"description": TITLE}
    )
    organizer = fields.String(
        required=True,
        validate=validate.Length(min=1, max=120),
        metadata={"description": ORGANIZER},
    )
    description = fields.String(
        load_default="", validate=validate.Length(max=5000), metadata={"description": DESCRIPTION}
    )
    timezone = fields.String(
        load_default="Asia/Shanghai",
        validate=validate.Length(max=64),
        metadata={"description": TIMEZONE},
    )
    nomination_start = fields.AwareDateTime(
        required=True, metadata={"description": NOMINATION_START}
    )
    nomination_end = fields.AwareDateTime(required=True, metadata={"description": NOMINATION_END})
    voting_start = fields.AwareDateTime(required=True, metadata={"description": VOTING_START})
    voting_end = fields.AwareDateTime(required=True, metadata={"description": VOTING_END})
    rules = fields.Nested(RulesSchema, required=True, metadata={"description": RULES})
    weights = fields.Nested(WeightsSchema, required=True, metadata={"description": WEIGHTS})
    require_recommendation = fields.Boolean(
        load_default=False, metadata={"description": REQUIRE_RECOMMENDATION}
    )
    publicity_days = fields.Integer(
        load_default=7,
        validate=validate.Range(min=1, max=60),
        metadata={"description": PUBLICITY_DAYS},
    )


class CampaignUpdateSchema(CampaignFieldsSchema):
    """Every field optional; the slug never changes once the public has links to it."""


class PhaseChangeSchema(Schema):
    phase = fields.String(
        required=True,
        validate=validate.OneOf(PHASES),
        metadata={
            "description": "the phase to move to: draft → nominating → reviewing → voting → "
            "judging → publicity → closed. Forward freely (steps may be skipped); back only "
            "with a reason"
        },
    )
    reason = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=1000),
        metadata={"description": "required to move back (422 reason_required); audited"},
    )


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
    code = fields.String(
        required=True,
        validate=CODE,
        metadata={"description": "stable category code, unique in the campaign, e.g. doctor"},
    )
    name = fields.String(
        required=True,
        validate=validate.Length(min=1, max=120),
        metadata={"description": "the award's name as published, e.g. 十大最美医生"},
    )
    prefix = fields.String(
        required=True,
        validate=validate.Regexp(r"^[A-Z]{1,3}$", error="编号前缀为 1–3 个大写字母"),
        metadata={
            "description": "1–3 capital letters before approved nominees' public numbers "
            "(D → D001, D002 …)"
        },
    )
    award_count = fields.Integer(
        load_default=None,
        validate=validate.Range(min=1, max=200),
        metadata={
            "description": "winners in the category (1–200); required without tiers, "
            "derived from the tiers (their sum) when omitted with them"
        },
    )
    max_per_unit = fields.Integer(
        required=True,
        validate=validate.Range(min=1, max=100),
        metadata={
            "description": "nominations one unit may hold in this category (submitted, "
            "returned and approved count; 409 unit_quota_exceeded at submit)"
        },
    )
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
    prefix = fields.String(metadata={"description": "the public numbers' prefix (D → D001)"})
    award_count = fields.Integer(metadata={"description": "winners in the category"})
    max_per_unit = fields.Integer(metadata={"description": "nominations one unit may hold"})
    tiers = fields.List(
        fields.Nested(TierSchema),
        attribute="tier_list",
        metadata={"description": "the award tiers in order; [] for one implicit tier"},
    )


class PublicRulesSchema(Schema):
    """What a voter plans by. Never a pressure check (the per-network captcha threshold
    included) or a detector threshold: knowing them is knowing how to brush unseen."""

    votes_per_day = fields.Integer(
        metadata={"description": "votes a voter may cast per day (campaign's time zone)"}
    )
    votes_per_nominee_per_day = fields.Integer(
        metadata={"description": "votes a voter may give one nominee per day"}
    )
    hide_counts = fields.Boolean(metadata={"description": "counts and ranking hidden throughout"})
    # Stored as ISO 8601 text in the rules JSON.
    hide_counts_from = fields.String(
        allow_none=True,
        metadata={"description": "ISO 8601 moment from which counts and ranking are hidden"},
    )
    regions = fields.List(
        fields.String(),
        metadata={"description": "地区限制: only voters placed in these regions vote (empty: all)"},
    )
    require_phone = fields.Boolean(
        metadata={"description": "一人一号: voters verify a phone by text message before voting"}
    )


class CampaignSchema(Schema):
    """What anyone may read about a campaign."""

    slug = fields.String(metadata={"description": "the campaign's id in every URL"})
    title = fields.String(metadata={"description": TITLE})
    organizer = fields.String(metadata={"description": ORGANIZER})
    description = fields.String(metadata={"description": DESCRIPTION})
    timezone = fields.String(metadata={"description": "IANA zone the campaign's days use"})
    phase = fields.String(
        metadata={
            "description": "draft, nominating, reviewing, voting, judging, publicity or closed"
        }
    )
    nomination_start = fields.AwareDateTime(metadata={"description": NOMINATION_START})
    nomination_end = fields.AwareDateTime(metadata={"description": NOMINATION_END})
    voting_start = fields.AwareDateTime(metadata={"description": "voting opens (UTC)"})
    voting_end = fields.AwareDateTime(metadata={"description": "voting closes (UTC)"})
    voting_open = fields.Boolean(
        metadata={"description": "true while the phase is voting and now is inside the window"}
    )
    publicity_days = fields.Integer(metadata={"description": PUBLICITY_DAYS})
    rules = fields.Nested(PublicRulesSchema, metadata={"description": "the public voting rules"})
    weights = fields.Dict(
        metadata={"description": "weights in percent: {public, jury, organizer, satisfaction?, …}"}
    )
    categories = fields.List(fields.Nested(CategorySchema))


class CampaignAdminSchema(CampaignSchema):
    id = fields.Integer()
    # Staff see every rule, detector thresholds included (the public sees PublicRulesSchema).
    rules = fields.Dict(
        metadata={"description": "every rule (Rules), pressure checks and thresholds included"}
    )
    require_recommendation = fields.Boolean(metadata={"description": REQUIRE_RECOMMENDATION})
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


class ClerkRulesSchema(Schema):
    """The voting rules a clerk plans by: the daily quotas and whether counts are hidden. No
    pressure check and no detector threshold: knowing them is knowing how to brush unseen."""

    votes_per_day = fields.Integer(
        metadata={"description": "votes a voter may cast per day (campaign's time zone)"}
    )
    votes_per_nominee_per_day = fields.Integer(
        metadata={"description": "votes a voter may give one nominee per day"}
    )
    hide_counts = fields.Boolean(metadata={"description": "counts and ranking hidden throughout"})
    hide_counts_from = fields.String(
        allow_none=True,
        metadata={"description": "ISO 8601 moment from which counts and ranking are hidden"},
    )


class CampaignClerkSchema(CampaignSchema):
    """A campaign as unit clerks and reviewers read it (drafts included): title, windows,
    categories and their quotas, what a nomination needs, the daily vote quotas. The full
    rules (pressure checks, fraud thresholds) are the committee office's only."""

    view = fields.String(
        dump_default="clerk",
        validate=validate.OneOf(["clerk"]),
        metadata={"description": "always `clerk`: this reduced view, not CampaignAdmin"},
    )
    rules = fields.Nested(ClerkRulesSchema, metadata={"description": "the daily vote quotas"})
    require_recommendation = fields.Boolean(metadata={"description": REQUIRE_RECOMMENDATION})


class CampaignListSchema(Schema):
    items = fields.List(fields.Nested(CampaignSchema))
