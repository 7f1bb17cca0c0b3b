"""The console's campaign pages: the create form's rules (from CampaignCreateSchema itself), the
wording of the settings page's change log (campaigns.services.settings_history reads it), input
times in the campaign's zone, the campaign's categories and numbered nominees as the page
scripts receive them, and the H5 banner image the settings page uploads (stored as photos are:
checked by content, re-encoded without metadata; pages.h5 takes the form post and serves it)."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any, BinaryIO

from flask import current_app
from marshmallow import fields, missing, validate

from campaigns.labels import SETTING_LABELS
from campaigns.models import Campaign
from campaigns.schemas import CampaignCreateSchema
from core.audit import AuditLog
from core.errors import AppError
from media.photos import process_photo
from media.rejections import MediaRejected
from media.storage import IncompleteChunk, storage
from nominations import services as nomination_services
from pages.common import local_time

# The form that creates a campaign (/console, admins only): API field names in form order, nested
# ones dotted. Limits come from CampaignCreateSchema itself, so the page checks what the API will.
CREATE_FIELDS = (
    "slug",
    "title",
    "organizer",
    "description",
    "timezone",
    "nomination_start",
    "nomination_end",
    "voting_start",
    "voting_end",
    "rules.votes_per_day",
    "rules.votes_per_nominee_per_day",
    "rules.hide_counts",
    "weights.public",
    "weights.jury",
    "weights.organizer",
    "require_recommendation",
    "publicity_days",
)
CREATE_LABELS = {
    "slug": "活动标识",
    "title": "活动名称",
    "organizer": "主办单位",
    "description": "活动简介",
    "timezone": "时区",
    "nomination_start": "推荐开始",
    "nomination_end": "推荐截止",
    "voting_start": "投票开始",
    "voting_end": "投票截止",
    "rules.votes_per_day": "每人每日票数",
    "rules.votes_per_nominee_per_day": "每人每日投同一候选人票数",
    "rules.hide_counts": "隐藏票数与排名",
    "weights.public": "公众投票权重",
    "weights.jury": "专家评审权重",
    "weights.organizer": "组织评价权重",
    "require_recommendation": "须经主管部门推荐",
    "publicity_days": "公示天数",
}
# Where the API has no default, what the form starts with (the admin changes it at will).
CREATE_SUGGESTED: dict[str, Any] = {
    "rules.votes_per_day": 5,
    "rules.votes_per_nominee_per_day": 1,
    "weights.public": 30,
    "weights.jury": 70,
}
SLUG_HINT = (
    "用于网址，创建后不能更改：只能用小写英文字母、数字和连字符“-”，"
    "以字母或数字开头，共 2–63 位，如 2026-xian-doctor"
)


def input_time(value: datetime | None, campaign: Campaign) -> str:
    """The value of an <input type="datetime-local"> in the campaign's time zone."""
    return local_time(value, campaign, "%Y-%m-%dT%H:%M")


def nominee_directory(campaign: Campaign) -> dict[str, dict[str, str]]:
    """Every numbered nominee of the campaign (withdrawn ones too: their votes stay in the
    ledger), so that the dashboard and the fraud desk can show names beside numbers."""
    return {
        n.number: {
            "name": n.name,
            "category": n.category.code,
            "unit": n.unit.name,
            "status": n.status,
            "id": n.id,
        }
        for n in nomination_services.numbered_nominations(campaign)
        if n.number
    }


def category_rows(campaign: Campaign) -> list[dict[str, Any]]:
    return [
        {
            "code": c.code,
            "name": c.name,
            "prefix": c.prefix,
            "award_count": c.award_count,
            "max_per_unit": c.max_per_unit,
        }
        for c in campaign.categories
    ]


def _field_rule(name: str, field: fields.Field) -> dict[str, Any]:
    if isinstance(field, fields.Integer):
        kind = "integer"
    elif isinstance(field, fields.Boolean):
        kind = "boolean"
    elif isinstance(field, fields.DateTime):
        kind = "datetime"
    else:
        kind = "string"
    default = field.load_default
    if default is missing or callable(default):
        default = CREATE_SUGGESTED.get(name)
    rule: dict[str, Any] = {
        "name": name,
        "label": CREATE_LABELS[name],
        "type": kind,
        "required": bool(field.required),
        "value": default,
        "min": None,
        "max": None,
        "min_length": None,
        "max_length": None,
        "pattern": None,
    }
    for validator in field.validators:
        if isinstance(validator, validate.Length):
            rule["min_length"], rule["max_length"] = validator.min, validator.max
        elif isinstance(validator, validate.Range):
            rule["min"], rule["max"] = validator.min, validator.max
        elif isinstance(validator, validate.Regexp):
            rule["pattern"] = validator.regex.pattern
    return rule


def create_form_rules() -> dict[str, dict[str, Any]]:
    """Every field of the create form with CampaignCreateSchema's own limits: required, ranges,
    lengths, the slug's pattern, and the API's default (or a suggestion) as the initial value."""
    schema = CampaignCreateSchema()
    rules: dict[str, dict[str, Any]] = {}
    for name in CREATE_FIELDS:
        head, _, sub = name.partition(".")
        field = schema.fields[head]
        if sub:
            if not isinstance(field, fields.Nested):
                raise KeyError(name)
            field = field.schema.fields[sub]
        rules[name] = _field_rule(name, field)
    return rules


def timezones(current: str) -> list[str]:
    common = ["Asia/Shanghai", "Asia/Urumqi", "Asia/Hong_Kong", "Asia/Macau", "Asia/Taipei"]
    return common if current in common else [current, *common]


def hidden_counts_from(campaign: Campaign) -> str:
    """rules.hide_counts_from as the value of the settings form's datetime-local input."""
    value = (campaign.rules or {}).get("hide_counts_from")
    if not value:
        return ""
    try:
        return input_time(datetime.fromisoformat(value), campaign)
    except ValueError:
        return ""


def describe_change(entry: AuditLog) -> str:
    """A one-line Chinese summary of an audited campaign change."""
    if entry.action == "category.create":
        after = entry.after or {}
        return f"{after.get('name', '')}（{after.get('code', entry.object_id)}）"
    if entry.action == "campaign.create":
        return "活动已创建"
    before, after = entry.before or {}, entry.after or {}
    if set(after) == {"banner"}:
        return "更换横幅图片" if after["banner"] else "移除横幅图片"
    changed = [key for key in after if before.get(key) != after.get(key)]
    return "、".join(SETTING_LABELS.get(key, key) for key in changed) or "无实际变化"


# --- the H5 banner ------------------------------------------------------------------------------

BANNER_FILE = "photo.jpg"
# The banner's longest side after re-encoding (a phone shows it 390–750 px wide, 2× for retina).
BANNER_MAX_SIDE = 1500


def banner_limit() -> int:
    """The largest banner upload in bytes (the photos' limit)."""
    return int(current_app.config["MEDIA_PHOTO_MAX_BYTES"])


def store_banner(body: BinaryIO) -> str:
    """Store an uploaded banner image: the body is kept at most ``banner_limit`` bytes, its type
    decided by the content (JPEG, PNG or WebP), its pixels bounded before decoding, and it is
    re-encoded as a JPEG without EXIF (media.photos, as nominees' photos are). Returns the new
    storage key (``b-`` and 32 hex digits); raises AppError with the photos' refusal codes.
    Holds no database transaction: call with none open."""
    limit = banner_limit()
    key = f"b-{secrets.token_hex(16)}"
    store = storage()
    original = "original"
    try:
        written = store.append(key, original, body, limit + 1)
    except IncompleteChunk as exc:
        store.delete(key)
        raise AppError("图片没有上传完整，请重试", code="incomplete_upload", status=400) from exc
    if written > limit:
        store.delete(key)
        raise AppError("图片太大", code="upload_too_large", status=413)
    if written == 0:
        store.delete(key)
        raise AppError("请选择一张图片", code="empty_upload", status=400)
    try:
        result = process_photo(
            store.local_path(key, original),
            store.workdir(key),
            max_pixels=current_app.config["MEDIA_PHOTO_MAX_PIXELS"],
            decode_pixels=current_app.config["MEDIA_PHOTO_DECODE_PIXELS"],
            max_side=BANNER_MAX_SIDE,
        )
    except MediaRejected as exc:
        store.delete(key)
        raise AppError(exc.message, code=exc.code, status=422) from exc
    store.local_path(key, original).unlink(missing_ok=True)  # the EXIF lives there
    result.thumb.unlink(missing_ok=True)  # a portrait's square crop: the banner needs none
    return key
