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


class NominationFieldsSchema(Schema):
    name = fields.String(validate=validate.Length(min=1, max=40))
    gender = fields.String(validate=validate.OneOf(GENDERS))
    title = fields.String(validate=validate.Length(min=1, max=60))
    position = fields.String(allow_none=True, validate=validate.Length(max=60))
    department = fields.String(validate=validate.Length(min=1, max=60))
    years_of_service = fields.Integer(allow_none=True, validate=validate.Range(min=0, max=70))
    summary = fields.String(
        validate=validate.Length(min=1, max=SUMMARY_MAX, error="一句话简介最多 {max} 个字")
    )
    deeds = fields.String(
        validate=validate.Length(min=1, max=DEEDS_MAX, error="事迹材料最多 {max} 个字")
    )
    unit_opinion = fields.String(validate=validate.Length(min=1, max=1000))

    @pre_load
    def _text(self, data: Any, **_: Any) -> Any:
        return _normalise_text(data, ("name", "summary", "deeds", "unit_opinion"))


class NominationCreateSchema(NominationFieldsSchema):
    category = fields.String(required=True, validate=validate.Length(min=1, max=40))
    name = fields.String(required=True, validate=validate.Length(min=1, max=40))
    gender = fields.String(required=True, validate=validate.OneOf(GENDERS))
    title = fields.String(required=True, validate=validate.Length(min=1, max=60))
    department = fields.String(required=True, validate=validate.Length(min=1, max=60))
    summary = fields.String(
        required=True,
        validate=validate.Length(min=1, max=SUMMARY_MAX, error="一句话简介最多 {max} 个字"),
    )
    deeds = fields.String(
        required=True,
        validate=validate.Length(min=1, max=DEEDS_MAX, error="事迹材料最多 {max} 个字"),
    )
    unit_opinion = fields.String(required=True, validate=validate.Length(min=1, max=1000))
    unit_code = fields.String(
        load_default=None,
        allow_none=True,
        metadata={"description": "admins only: the unit the nomination is made for"},
    )


class NominationUpdateSchema(NominationFieldsSchema):
    """What a unit may change on a draft or returned nomination; nothing else can be set."""

    category = fields.String(validate=validate.Length(min=1, max=40))


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
