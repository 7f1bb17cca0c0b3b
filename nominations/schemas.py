"""Input and output schemas for nominations (staff) and nominees (public)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, pre_load, validate

from core.schemas import PageArgsSchema, PageMetaMixin
from nominations.models import DEEDS_MAX, STATUSES, SUMMARY_MAX

GENDERS = ("male", "female")


def _normalise_text(data: Any, names: tuple[str, ...]) -> Any:
    """Browsers send CRLF; a textarea counts a line break as one character, and so do we."""
    if isinstance(data, dict):
        data = dict(data)
        for name in names:
            if isinstance(data.get(name), str):
                data[name] = data[name].replace("\r\n", "\n").replace("\r", "\n").strip()
    return data


# What a clerk reads when a field is refused (the API answers in Chinese, like the pages).
REQUIRED = {"required": "此项必填", "null": "此项不能为空"}
NOT_TEXT = {"invalid": "应为文字"}


def _words(label: str, max_: int, *, required: bool = False, **kwargs: Any) -> fields.String:
    return fields.String(
        required=required,
        validate=validate.Length(min=1, max=max_, error=f"{label}应为 1–{{max}} 个字"),
        error_messages={**REQUIRED, **NOT_TEXT},
        **kwargs,
    )


def _gender(required: bool = False) -> fields.String:
    return fields.String(
        required=required,
        validate=validate.OneOf(GENDERS, error="性别请选择男或女"),
        error_messages={**REQUIRED, **NOT_TEXT},
    )


class NominationFieldsSchema(Schema):
    name = _words("姓名", 40)
    gender = _gender()
    title = _words("职称", 60)
    position = fields.String(
        allow_none=True,
        validate=validate.Length(max=60, error="职务最多 {max} 个字"),
        error_messages=NOT_TEXT,
    )
    department = _words("科室", 60)
    years_of_service = fields.Integer(
        allow_none=True,
        validate=validate.Range(min=0, max=70, error="从业年限应在 {min}–{max} 年之间"),
        error_messages={"invalid": "从业年限应为整数"},
    )
    summary = _words("一句话简介", SUMMARY_MAX)
    deeds = _words("事迹材料", DEEDS_MAX)
    unit_opinion = _words("推荐单位意见", 1000)

    @pre_load
    def _text(self, data: Any, **_: Any) -> Any:
        return _normalise_text(data, ("name", "summary", "deeds", "unit_opinion"))


class NominationCreateSchema(NominationFieldsSchema):
    category = _words("奖项", 40, required=True)
    name = _words("姓名", 40, required=True)
    gender = _gender(required=True)
    title = _words("职称", 60, required=True)
    department = _words("科室", 60, required=True)
    summary = _words("一句话简介", SUMMARY_MAX, required=True)
    deeds = _words("事迹材料", DEEDS_MAX, required=True)
    unit_opinion = _words("推荐单位意见", 1000, required=True)
    unit_code = fields.String(
        load_default=None,
        allow_none=True,
        metadata={"description": "admins only: the unit the nomination is made for"},
    )


class NominationUpdateSchema(NominationFieldsSchema):
    """What a unit may change on a draft or returned nomination; nothing else can be set."""

    category = _words("奖项", 40)


class ReviewSchema(Schema):
    decision = fields.String(
        required=True, validate=validate.OneOf(("approve", "return", "reject"))
    )
    comment = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=1000))


class WithdrawSchema(Schema):
    comment = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=1000))


class ReviewStepSchema(Schema):
    action = fields.String()
    from_status = fields.String()
    to_status = fields.String()
    actor_role = fields.String()
    actor_unit = fields.String(allow_none=True)
    comment = fields.String(allow_none=True)
    at = fields.AwareDateTime()


class NominationSchema(Schema):
    """A nomination as staff see it: the dossier, its status and its review history."""

    id = fields.Integer()
    campaign = fields.Function(lambda n: n.campaign.slug)
    category = fields.Function(lambda n: n.category.code)
    category_name = fields.Function(lambda n: n.category.name)
    unit_code = fields.Function(lambda n: n.unit.code)
    unit = fields.Function(lambda n: n.unit.name)
    name = fields.String()
    gender = fields.String()
    title = fields.String()
    position = fields.String(allow_none=True)
    department = fields.String()
    years_of_service = fields.Integer(allow_none=True)
    summary = fields.String()
    deeds = fields.String()
    unit_opinion = fields.String()
    status = fields.String()
    number = fields.String(allow_none=True)
    recommended = fields.Boolean()
    submitted_at = fields.AwareDateTime(allow_none=True)
    approved_at = fields.AwareDateTime(allow_none=True)
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()
    reviews = fields.List(fields.Nested(ReviewStepSchema))


class NominationListArgsSchema(PageArgsSchema):
    status = fields.String(load_default=None, validate=validate.OneOf(STATUSES))
    category = fields.String(load_default=None)
    unit = fields.String(load_default=None, metadata={"description": "unit code"})
    recommended = fields.Boolean(
        load_default=None,
        metadata={"description": "true: only those the bureau recommended; false: only the rest"},
    )


class NominationSummarySchema(Schema):
    id = fields.Integer()
    category = fields.Function(lambda n: n.category.code)
    unit_code = fields.Function(lambda n: n.unit.code)
    unit = fields.Function(lambda n: n.unit.name)
    name = fields.String()
    title = fields.String()
    status = fields.String()
    number = fields.String(allow_none=True)
    recommended = fields.Boolean()
    updated_at = fields.AwareDateTime()


class NominationPageSchema(PageMetaMixin):
    items = fields.List(fields.Nested(NominationSummarySchema))


# --- public -----------------------------------------------------------------------------------


class NomineeQueryArgsSchema(PageArgsSchema):
    category = fields.String(load_default=None, metadata={"description": "category code"})
    q = fields.String(
        load_default=None,
        validate=validate.Length(max=40),
        metadata={"description": "name (partial) or number (exact)"},
    )
    sort = fields.String(
        load_default="number",
        validate=validate.OneOf(("number", "votes")),
        metadata={
            "description": "number, or votes (most first; as number while counts are hidden)"
        },
    )


class NomineeSchema(Schema):
    """A nominee card as the public sees it. No phone, account or review comment can leak."""

    number = fields.String()
    name = fields.String()
    category = fields.String()
    category_name = fields.String()
    unit = fields.String()
    title = fields.String()
    position = fields.String(allow_none=True)
    department = fields.String()
    summary = fields.String()
    votes = fields.Integer(metadata={"description": "absent when the campaign hides counts"})
    rank = fields.Integer(metadata={"description": "absent when the campaign hides counts"})
    photo_url = fields.String(metadata={"description": "present once a photo is ready"})
    thumb_url = fields.String()
    video = fields.Dict(
        metadata={
            "description": "{poster_url, duration, renditions: [{label, width, height, url}]}"
        }
    )


class NomineeDetailSchema(NomineeSchema):
    gender = fields.String()
    years_of_service = fields.Integer(allow_none=True)
    deeds = fields.String()
    unit_opinion = fields.String()


class NomineePageSchema(PageMetaMixin):
    items = fields.List(fields.Nested(NomineeSchema))
