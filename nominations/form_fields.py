"""Campaign-defined form fields (推荐表 填报项): the extra questions a campaign asks beyond the
built-in dossier (出生年月, 民族, 政治面貌, 联系电话 …), their definition, and the checks of
the values a nomination stores in ``Nomination.extra``.

A definition is a list of fields, each with a key, a label, a type, a limit, whether it is
required (checked at submit, not on drafts) and whether it is public (shown on the nominee's
public page; a phone never is). Once a nomination of the campaign has been submitted, the
definition may change only in ways that keep every stored value valid."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

from marshmallow import Schema, fields, validate
from sqlalchemy import JSON, Boolean, ForeignKey, Integer, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column

from campaigns.models import Campaign
from core import audit
from core.errors import Conflict, ValidationFailed
from core.extensions import db
from core.signals import campaign_changed
from core.types import UTCDateTime, utcnow
from nominations.models import Nomination

TYPES = ("text", "long_text", "integer", "date", "choice", "phone")
TYPE_LABELS = {
    "text": "短文本",
    "long_text": "长文本",
    "integer": "整数",
    "date": "日期",
    "choice": "单选",
    "phone": "电话",
}
MAX_FIELDS = 30
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,29}$")
# The built-in dossier fields: an extra field cannot shadow one of them.
# A nomination's own dossier fields (what a clerk fills and edits; nominations.services), and
# the keys a campaign's extra field may not take: those plus what a nomination is filed under.
DOSSIER_FIELDS = (
    "name",
    "gender",
    "title",
    "position",
    "department",
    "years_of_service",
    "summary",
    "deeds",
    "unit_opinion",
    "extra",
)
RESERVED = ("category", "unit_code", *DOSSIER_FIELDS)
# Default and largest length per text type; integers default to 0–100.
TEXT_LIMITS = {"text": (60, 200), "long_text": (1000, 5000)}
INTEGER_BOUNDS = (-1_000_000, 1_000_000)
PHONE_PATTERN = re.compile(r"^(1[3-9]\d{9}|0\d{2,3}-?\d{7,8})$")
EARLIEST_DATE = date(1900, 1, 1)


class FormField(db.Model):
    """One extra field of a campaign's nomination form, in display order (``position``)."""

    __tablename__ = "nomination_form_fields"
    __table_args__ = (UniqueConstraint("campaign_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(30))
    label: Mapped[str] = mapped_column(String(20))
    type: Mapped[str] = mapped_column(String(16))
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    max_length: Mapped[int | None] = mapped_column(Integer)
    min_value: Mapped[int | None] = mapped_column(Integer)
    max_value: Mapped[int | None] = mapped_column(Integer)
    options: Mapped[list[str] | None] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


# --- API schemas ------------------------------------------------------------------------------


class FormFieldInSchema(Schema):
    key = fields.String(
        required=True,
        metadata={
            "description": "stable identifier: lower-case letters, digits and _, starting with a "
            "letter (1–30), not a built-in field name",
            "example": "ethnicity",
        },
    )
    label = fields.String(
        required=True,
        validate=validate.Length(min=1, max=20, error="名称应为 1–{max} 个字"),
        metadata={"description": "what the form shows (1–20 characters)", "example": "民族"},
    )
    type = fields.String(
        required=True,
        validate=validate.OneOf(TYPES, error="类型应为 " + "、".join(TYPES) + " 之一"),
        metadata={"description": "text, long_text, integer, date, choice or phone"},
    )
    required = fields.Boolean(
        load_default=False,
        metadata={"description": "must be filled before the nomination is submitted"},
    )
    public = fields.Boolean(
        load_default=False,
        metadata={
            "description": "shown on the nominee's public page; a phone field never "
            "(422 phone_not_public)"
        },
    )
    max_length = fields.Integer(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "text: 1–200 (default 60); long_text: 1–5000 (default 1000); "
            "ignored for other types"
        },
    )
    min_value = fields.Integer(
        load_default=None,
        allow_none=True,
        metadata={"description": "integer: the smallest value (default 0)"},
    )
    max_value = fields.Integer(
        load_default=None,
        allow_none=True,
        metadata={"description": "integer: the largest value (default 100)"},
    )
    options = fields.List(
        fields.String(),
        load_default=None,
        allow_none=True,
        metadata={"description": "choice: 2–50 distinct options (1–20 characters each)"},
    )


class FormFieldsInSchema(Schema):
    fields_ = fields.List(
        fields.Nested(FormFieldInSchema),
        required=True,
        data_key="fields",
        metadata={"description": f"the extra fields in display order (at most {MAX_FIELDS})"},
    )


class FormFieldSchema(FormFieldInSchema):
    type_label = fields.String(metadata={"description": "the type in Chinese"})


class FormFieldsSchema(Schema):
    fields_ = fields.List(
        fields.Nested(FormFieldSchema),
        data_key="fields",
        metadata={"description": "the campaign's extra fields in display order"},
    )
    locked = fields.Boolean(
        metadata={
            "description": "a nomination was submitted: only changes that keep every stored "
            "value valid are accepted (409 form_fields_locked otherwise)"
        }
    )


class PublicExtraSchema(Schema):
    key = fields.String(metadata={"description": "the field's key"})
    label = fields.String(metadata={"description": "its label, e.g. 民族"})
    value = fields.Raw(metadata={"description": "the value (text, integer or YYYY-MM-DD)"})


# --- the definition ---------------------------------------------------------------------------


def definition(campaign_id: int) -> list[FormField]:
    """The campaign's extra fields in display order."""
    return list(
        db.session.scalars(
            select(FormField)
            .where(FormField.campaign_id == campaign_id)
            .order_by(FormField.position)
        )
    )


def describe(field: FormField) -> dict[str, Any]:
    return {
        "key": field.key,
        "label": field.label,
        "type": field.type,
        "type_label": TYPE_LABELS.get(field.type, field.type),
        "required": field.required,
        "public": field.public,
        "max_length": field.max_length,
        "min_value": field.min_value,
        "max_value": field.max_value,
        "options": list(field.options) if field.options is not None else None,
    }


def is_locked(campaign: Campaign) -> bool:
    return (
        db.session.scalar(
            select(Nomination.id)
            .where(Nomination.campaign_id == campaign.id, Nomination.submitted_at.is_not(None))
            .limit(1)
        )
        is not None
    )


def answer(campaign: Campaign) -> dict[str, Any]:
    return {
        "fields_": [describe(f) for f in definition(campaign.id)],
        "locked": is_locked(campaign),
    }


def _refuse(code: str, message: str, index: int, name: str) -> ValidationFailed:
    return ValidationFailed(
        message, code=code, details={"fields": {f"fields.{index}.{name}": [message]}}
    )


def _normalised(index: int, item: dict[str, Any]) -> dict[str, Any]:
    """One field's definition checked and completed with its defaults."""
    kind = item["type"]
    out: dict[str, Any] = {
        "key": item["key"],
        "label": item["label"].strip(),
        "type": kind,
        "required": bool(item.get("required")),
        "public": bool(item.get("public")),
        "max_length": None,
        "min_value": None,
        "max_value": None,
        "options": None,
    }
    if not KEY_PATTERN.match(out["key"]) or out["key"] in RESERVED:
        raise _refuse(
            "invalid_field_key",
            "标识只能由小写字母、数字和下划线组成，以字母开头，且不能与固有字段重名",
            index,
            "key",
        )
    if not out["label"]:
        raise _refuse("invalid_field_label", "请填写名称", index, "label")
    if kind == "phone" and out["public"]:
        raise _refuse("phone_not_public", "联系电话不能设为公开", index, "public")
    if kind in TEXT_LIMITS:
        default, largest = TEXT_LIMITS[kind]
        length = item.get("max_length") or default
        if not 1 <= length <= largest:
            raise _refuse(
                "invalid_field_limit", f"长度上限应在 1–{largest} 之间", index, "max_length"
            )
        out["max_length"] = length
    elif kind == "integer":
        low = item["min_value"] if item.get("min_value") is not None else 0
        high = item["max_value"] if item.get("max_value") is not None else 100
        if not INTEGER_BOUNDS[0] <= low <= high <= INTEGER_BOUNDS[1]:
            raise _refuse(
                "invalid_field_limit", "取值范围有误：下限不能大于上限", index, "min_value"
            )
        out["min_value"], out["max_value"] = low, high
    elif kind == "choice":
        options = [str(o).strip() for o in (item.get("options") or [])]
        if (
            not 2 <= len(options) <= 50
            or len(set(options)) != len(options)
            or any(not 1 <= len(o) <= 20 for o in options)
        ):
            raise _refuse(
                "invalid_field_options",
                "单选项应有 2–50 个互不相同的选项，每项 1–20 个字",
                index,
                "options",
            )
        out["options"] = options
    return out


def _stored_values(campaign: Campaign) -> list[dict[str, Any]]:
    rows = db.session.scalars(
        select(Nomination.extra).where(Nomination.campaign_id == campaign.id)
    ).all()
    return [row for row in rows if row]


def _check_lock(campaign: Campaign, old: list[FormField], new: list[dict[str, Any]]) -> None:
    """After a submission: no field removed, no type changed, no field newly required, and every
    stored value still valid under the new limits and options."""
    before = {f.key: f for f in old}
    after = {f["key"]: f for f in new}

    def locked(key: str, reason: str) -> Conflict:
        return Conflict(
            f"已有推荐材料提交，填报项「{key}」{reason}",
            code="form_fields_locked",
            details={"field": key, "reason": reason},
        )

    for key, field in before.items():
        if key not in after:
            raise locked(key, "不能删除")
        if after[key]["type"] != field.type:
            raise locked(key, "不能更改类型")
        if after[key]["required"] and not field.required:
            raise locked(key, "不能改为必填")
    for key, field in after.items():
        if key not in before and field["required"]:
            raise locked(key, "新增时不能设为必填")
    probe = [_transient(f) for f in new]
    for stored in _stored_values(campaign):
        errors = _errors(probe, {k: v for k, v in stored.items() if k in after})
        if errors:
            key = next(iter(errors)).removeprefix("extra.")
            raise locked(key, "的新限制与已填写的内容不符")


def _transient(values: dict[str, Any]) -> FormField:
    return FormField(**values)


def configure(campaign: Campaign, items: list[dict[str, Any]]) -> list[FormField]:
    """Replace the campaign's extra fields with ``items`` (checked; see the module doc)."""
    if len(items) > MAX_FIELDS:
        raise ValidationFailed(f"填报项最多 {MAX_FIELDS} 个", code="too_many_fields")
    new = [_normalised(i, item) for i, item in enumerate(items)]
    keys = [f["key"] for f in new]
    for index, key in enumerate(keys):
        if keys.index(key) != index:
            raise _refuse("duplicate_field_key", f"标识「{key}」重复", index, "key")
    old = definition(campaign.id)
    if is_locked(campaign):
        _check_lock(campaign, old, new)
    before = [describe(f) for f in old]
    for field in old:
        db.session.delete(field)
    db.session.flush()
    now = utcnow()
    for position, values in enumerate(new, start=1):
        db.session.add(
            FormField(campaign_id=campaign.id, position=position, updated_at=now, **values)
        )
    db.session.flush()
    audit.record(
        "form_fields.set",
        "campaign",
        campaign.id,
        campaign_id=campaign.id,
        before={"fields": before},
        after={"fields": new},
    )
    # A label or a public flag changed what the public pages show: rebuild the cached view
    # (nominations.public_view listens) once this commits.
    campaign_changed.send(campaign)
    return definition(campaign.id)


# --- the values -------------------------------------------------------------------------------


def plain_text(value: str) -> str:
    """Browsers send CRLF; a textarea counts a line break as one character, and so do we."""
    return value.replace("\r\n", "\n").replace("\r", "\n").strip()


def _check(field: FormField, value: Any) -> tuple[Any, str | None]:
    """(the value as stored, or None when empty; a zh-CN message when refused)."""
    label = field.label
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, None
    kind = field.type
    if kind in ("text", "long_text"):
        if not isinstance(value, str):
            return None, f"{label}应为文字"
        value = plain_text(value)
        if field.max_length is not None and len(value) > field.max_length:
            return None, f"{label}最多 {field.max_length} 个字"
        return value, None
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return None, f"{label}应为整数"
        if not (field.min_value or 0) <= value <= (field.max_value or 0):
            return None, f"{label}应在 {field.min_value}–{field.max_value} 之间"
        return value, None
    if not isinstance(value, str):
        return None, f"{label}格式有误"
    value = value.strip()
    if kind == "date":
        try:
            day = date.fromisoformat(value)
        except ValueError:
            return None, f"{label}应为日期，如 1980-05-01"
        # A day of slack: "today" where the campaign is may be tomorrow in UTC.
        if not EARLIEST_DATE <= day <= (utcnow() + timedelta(days=1)).date():
            return None, f"{label}应在 1900-01-01 至今天之间"
        return day.isoformat(), None
    if kind == "choice":
        if value not in (field.options or []):
            return None, f"{label}请从给定选项中选择"
        return value, None
    phone = value.replace(" ", "")
    if not PHONE_PATTERN.match(phone):
        return None, f"{label}应为手机号码或带区号的固定电话"
    return phone, None


def _errors(defined: list[FormField], values: dict[str, Any]) -> dict[str, list[str]]:
    by_key = {f.key: f for f in defined}
    errors: dict[str, list[str]] = {}
    for key, value in values.items():
        field = by_key.get(key)
        if field is None:
            errors[f"extra.{key}"] = ["本活动没有这个填报项"]
            continue
        _, message = _check(field, value)
        if message:
            errors[f"extra.{key}"] = [message]
    return errors


def clean(campaign_id: int, values: Any, stored: dict[str, Any] | None = None) -> dict[str, Any]:
    """``values`` merged over ``stored``, checked against the campaign's definition: unknown
    keys, wrong types and limits are refused together (422 invalid_extra, per-field messages
    under ``details.fields["extra.<key>"]``). An empty value clears the field."""
    if not isinstance(values, dict):
        raise ValidationFailed(
            "填报项格式有误",
            code="invalid_extra",
            details={"fields": {"extra": ["应为对象"]}},
        )
    defined = definition(campaign_id)
    errors = _errors(defined, values)
    if errors:
        raise ValidationFailed(
            "填报项有误，请按提示修改", code="invalid_extra", details={"fields": errors}
        )
    merged = dict(stored or {})
    by_key = {f.key: f for f in defined}
    for key, value in values.items():
        checked, _ = _check(by_key[key], value)
        if checked is None:
            merged.pop(key, None)
        else:
            merged[key] = checked
    return merged


def require_complete(nomination: Nomination) -> None:
    """At submit: every required field filled (422 extra_required, naming each missing one)."""
    stored = nomination.extra or {}
    missing = {
        f"extra.{f.key}": [f"请填写{f.label}"]
        for f in definition(nomination.campaign_id)
        if f.required and stored.get(f.key) in (None, "")
    }
    if missing:
        labels = "、".join(m[0].removeprefix("请填写") for m in missing.values())
        raise ValidationFailed(
            f"请先填写必填项：{labels}", code="extra_required", details={"fields": missing}
        )


def shown(
    campaign_id: int, stored: dict[str, Any] | None, *, public_only: bool
) -> list[dict[str, Any]]:
    """The filled fields in display order as {key, label, value} (the public: public ones only;
    a phone never, whatever its row says)."""
    stored = stored or {}
    return [
        {"key": f.key, "label": f.label, "value": stored[f.key]}
        for f in definition(campaign_id)
        if f.key in stored and (not public_only or (f.public and f.type != "phone"))
    ]
