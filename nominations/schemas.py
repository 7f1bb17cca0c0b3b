"""Input and output schemas for nominations (staff) and nominees (public)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, pre_load, validate

from core.schemas import PageArgsSchema, PageMetaMixin
from nominations import levels
from nominations.form_fields import PublicExtraSchema, plain_text
from nominations.models import DEEDS_MAX, STATUSES, SUMMARY_MAX

GENDERS = ("male", "female")


def _normalise_text(data: Any, names: tuple[str, ...]) -> Any:
    """The named text fields as plain text (form_fields.plain_text: CRLF is one break)."""
    if isinstance(data, dict):
        data = dict(data)
        for name in names:
            if isinstance(data.get(name), str):
                data[name] = plain_text(data[name])
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
        metadata={"description": "male or female", "example": "female"},
    )


# Field descriptions shared by the create, update and output schemas.
NAME = {"description": "the nominee's real name (1–40 characters)", "example": "李芳"}
TITLE = {"description": "professional title (职称), e.g. 主任医师", "example": "主任护师"}
POSITION = {"description": "post held (职务), optional, e.g. 护士长", "example": "护士长"}
DEPARTMENT = {"description": "department (科室)", "example": "急诊科"}
YEARS = {"description": "years in the profession (0–70), optional", "example": 22}
SUMMARY = {
    "description": f"one-line introduction shown on the public card (1–{SUMMARY_MAX} characters)",
    "example": "扎根急诊二十二年，带出一支「永不掉线」的护理团队",
}
DEEDS = {
    "description": f"the deeds (事迹材料), plain text with line breaks (1–{DEEDS_MAX} characters)",
    "example": "2020年起连续三年带队支援乡镇卫生院……",
}
UNIT_OPINION = {
    "description": "the nominating unit's opinion (推荐单位意见, 1–1000 characters), published "
    "with the dossier",
    "example": "同意推荐。",
}
EXTRA = {
    "description": "the campaign's own fields (GET /campaigns/<slug>/form-fields) by key, e.g. "
    '{"ethnicity": "汉族", "birth_month": "1980-05-01"}; on update merged over what '
    'is stored (null or "" clears one). Unknown keys, wrong types and limits: 422 invalid_extra '
    "with a message per ``extra.<key>``; required ones are checked at submit (422 extra_required)",
    "example": {"ethnicity": "汉族"},
}
CATEGORY = {
    "description": "the category (奖项) code of the campaign, e.g. nurse; a returned "
    "nomination cannot change it (409 category_locked)",
    "example": "nurse",
}


class NominationFieldsSchema(Schema):
    name = _words("姓名", 40, metadata=NAME)
    gender = _gender()
    title = _words("职称", 60, metadata=TITLE)
    position = fields.String(
        allow_none=True,
        validate=validate.Length(max=60, error="职务最多 {max} 个字"),
        error_messages=NOT_TEXT,
        metadata=POSITION,
    )
    department = _words("科室", 60, metadata=DEPARTMENT)
    years_of_service = fields.Integer(
        allow_none=True,
        validate=validate.Range(min=0, max=70, error="从业年限应在 {min}–{max} 年之间"),
        error_messages={"invalid": "从业年限应为整数"},
        metadata=YEARS,
    )
    summary = _words("一句话简介", SUMMARY_MAX, metadata=SUMMARY)
    deeds = _words("事迹材料", DEEDS_MAX, metadata=DEEDS)
    unit_opinion = _words("推荐单位意见", 1000, metadata=UNIT_OPINION)
    extra = fields.Dict(
        keys=fields.String(), error_messages={"invalid": "填报项格式有误"}, metadata=EXTRA
    )

    @pre_load
    def _text(self, data: Any, **_: Any) -> Any:
        return _normalise_text(data, ("name", "summary", "deeds", "unit_opinion"))


class NominationCreateSchema(NominationFieldsSchema):
    category = _words("奖项", 40, required=True, metadata=CATEGORY)
    name = _words("姓名", 40, required=True, metadata=NAME)
    gender = _gender(required=True)
    title = _words("职称", 60, required=True, metadata=TITLE)
    department = _words("科室", 60, required=True, metadata=DEPARTMENT)
    summary = _words("一句话简介", SUMMARY_MAX, required=True, metadata=SUMMARY)
    deeds = _words("事迹材料", DEEDS_MAX, required=True, metadata=DEEDS)
    unit_opinion = _words("推荐单位意见", 1000, required=True, metadata=UNIT_OPINION)
    unit_code = fields.String(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "admins only (required for them): the institution the nomination "
            "is made for; a unit clerk nominates for its own unit (another code: 403 foreign_unit)"
        },
    )


class NominationUpdateSchema(NominationFieldsSchema):
    """What a unit may change on a draft or returned nomination; nothing else can be set."""

    category = _words("奖项", 40, metadata=CATEGORY)


class ReviewSchema(Schema):
    decision = fields.String(
        required=True,
        validate=validate.OneOf(("approve", "return", "reject")),
        metadata={
            "description": "approve (a reviewer: recommend to the committee, or in a chain "
            "campaign pass up from its level; an admin: approve and give the public number), "
            "return (back to the unit for changes; in a chain campaign to the level below) or "
            "reject (final)",
            "example": "return",
        },
    )
    comment = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=1000),
        metadata={
            "description": "the reviewer's opinion, shown to the unit; required to return or "
            "reject (422 comment_required)",
            "example": "请补充近三年的获奖情况",
        },
    )


class WithdrawSchema(Schema):
    comment = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=1000),
        metadata={
            "description": "why; required when an admin withdraws an approved nominee "
            "(422 reason_required)"
        },
    )


class ReviewStepSchema(Schema):
    action = fields.String(
        metadata={
            "description": "submit, recommend, approve, return, reject or withdraw; in chain "
            "campaigns also pass_up, level_return and level_reject (see ``levels``)"
        }
    )
    from_status = fields.String(metadata={"description": "the status before this step"})
    to_status = fields.String(metadata={"description": "the status after this step"})
    actor_role = fields.String(metadata={"description": "the role of who took the step"})
    actor_unit = fields.String(allow_none=True, metadata={"description": "their unit's name"})
    comment = fields.String(allow_none=True)
    at = fields.AwareDateTime()


class LevelStepSchema(Schema):
    """One level's decision on a nomination (nominations.levels): the trail of a chain campaign."""

    unit_level = fields.String(
        metadata={"description": "the level: county, city, province, or committee"}
    )
    level_label = fields.String(metadata={"description": "the level in Chinese, e.g. 县（旗）级"})
    unit = fields.String(
        allow_none=True, metadata={"description": "the deciding bureau's name (null: committee)"}
    )
    decision = fields.String(
        metadata={"description": "pass (推荐上报), return (退回修改) or reject (不予推荐)"}
    )
    returned_to = fields.String(
        allow_none=True,
        metadata={
            "description": "a return: the level it went back to, or unit (the nominating unit)"
        },
    )
    holds_place = fields.Boolean(
        metadata={"description": "a pass still holding one of the bureau's places"}
    )
    actor = fields.String(metadata={"description": "who decided (display name or username)"})
    actor_role = fields.String(metadata={"description": "their role: reviewer or admin"})
    comment = fields.String(allow_none=True, metadata={"description": "why (the opinion)"})
    at = fields.AwareDateTime(metadata={"description": "when"})


STATUS = "draft, submitted, returned, approved, rejected or withdrawn"
NUMBER = "the public number (prefix + sequence, e.g. D001), given on approval; null before"
RECOMMENDED = "a bureau reviewer has recommended it to the committee"


class NominationSchema(Schema):
    """A nomination as staff see it: the dossier, its status and its review history."""

    id = fields.Integer()
    campaign = fields.Function(
        lambda n: n.campaign.slug, metadata={"description": "the campaign's slug"}
    )
    category = fields.Function(lambda n: n.category.code, metadata={"description": "category code"})
    category_name = fields.Function(lambda n: n.category.name)
    unit_code = fields.Function(
        lambda n: n.unit.code, metadata={"description": "the nominating unit's code"}
    )
    unit = fields.Function(lambda n: n.unit.name, metadata={"description": "its name"})
    name = fields.String(metadata=NAME)
    gender = fields.String(metadata={"description": "male or female"})
    title = fields.String(metadata=TITLE)
    position = fields.String(allow_none=True, metadata=POSITION)
    department = fields.String(metadata=DEPARTMENT)
    years_of_service = fields.Integer(allow_none=True, metadata=YEARS)
    summary = fields.String(metadata=SUMMARY)
    deeds = fields.String(metadata=DEEDS)
    unit_opinion = fields.String(metadata=UNIT_OPINION)
    extra = fields.Function(
        lambda n: n.extra or {},
        metadata={"description": "the campaign's own fields' values by key (all, phone included)"},
    )
    status = fields.String(metadata={"description": STATUS})
    number = fields.String(allow_none=True, metadata={"description": NUMBER})
    recommended = fields.Boolean(metadata={"description": RECOMMENDED})
    submitted_at = fields.AwareDateTime(allow_none=True)
    approved_at = fields.AwareDateTime(allow_none=True)
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()
    reviews = fields.List(
        fields.Nested(ReviewStepSchema),
        metadata={"description": "every step so far (submit, recommend, return …), oldest first"},
    )
    at_level = fields.String(
        allow_none=True,
        metadata={
            "description": "chain campaigns: the level where it waits (county, city, province, "
            "committee); null in single-level campaigns and for drafts"
        },
    )
    at_unit = fields.Function(
        lambda n: n.at_unit.name if n.at_unit is not None else None,
        metadata={"description": "the bureau holding it at that level (null: the committee)"},
    )
    at_unit_code = fields.Function(
        lambda n: n.at_unit.code if n.at_unit is not None else None,
        metadata={"description": "that bureau's code"},
    )
    levels = fields.Function(
        lambda n: LevelStepSchema(many=True).dump(levels.trail(n)),
        metadata={"description": "every level's decision (who, when, why), oldest first"},
    )


class NominationListArgsSchema(PageArgsSchema):
    status = fields.String(
        load_default=None, validate=validate.OneOf(STATUSES), metadata={"description": STATUS}
    )
    category = fields.String(load_default=None, metadata={"description": "category code"})
    unit = fields.String(load_default=None, metadata={"description": "unit code"})
    recommended = fields.Boolean(
        load_default=None,
        metadata={"description": "true: only those the bureau recommended; false: only the rest"},
    )
    awaiting = fields.Boolean(
        load_default=None,
        metadata={
            "description": "chain campaigns: true, only those waiting for the caller's decision "
            "(a bureau: at its level; the committee: passed up by every level); false, the rest"
        },
    )


class NominationSummarySchema(Schema):
    id = fields.Integer()
    category = fields.Function(lambda n: n.category.code)
    unit_code = fields.Function(lambda n: n.unit.code)
    unit = fields.Function(lambda n: n.unit.name)
    name = fields.String()
    title = fields.String()
    status = fields.String(metadata={"description": STATUS})
    number = fields.String(allow_none=True, metadata={"description": NUMBER})
    recommended = fields.Boolean(metadata={"description": RECOMMENDED})
    at_level = fields.String(
        allow_none=True, metadata={"description": "chain campaigns: the level where it waits"}
    )
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

    number = fields.String(metadata={"description": "the public number, e.g. D001"})
    name = fields.String()
    category = fields.String(metadata={"description": "category code"})
    category_name = fields.String()
    unit = fields.String(metadata={"description": "the nominating unit's name"})
    title = fields.String()
    position = fields.String(allow_none=True)
    department = fields.String()
    summary = fields.String(metadata={"description": "the one-line introduction"})
    votes = fields.Integer(metadata={"description": "absent when the campaign hides counts"})
    rank = fields.Integer(metadata={"description": "absent when the campaign hides counts"})
    photo_url = fields.String(
        metadata={"description": "the cover photo of the gallery, present once a photo is ready"}
    )
    thumb_url = fields.String(metadata={"description": "a small rendition of the cover photo"})
    video = fields.Dict(
        metadata={
            "description": "{poster_url, duration, renditions: [{label, width, height, url}]}"
        }
    )


class NomineeDetailSchema(NomineeSchema):
    gender = fields.String()
    photos = fields.List(
        fields.Dict(),
        metadata={
            "description": "the photo gallery (up to six), cover first: [{id, photo_url, "
            "thumb_url, width, height, cover}]; photo_url and thumb_url above are the cover's"
        },
    )
    years_of_service = fields.Integer(allow_none=True)
    deeds = fields.String(metadata={"description": "the deeds (事迹材料), plain text"})
    unit_opinion = fields.String(metadata={"description": "the unit's recommendation"})
    extra = fields.List(
        fields.Nested(PublicExtraSchema),
        metadata={
            "description": "the campaign's own fields marked public and filled, in form order "
            "(never a phone)"
        },
    )


class NomineePageSchema(PageMetaMixin):
    items = fields.List(fields.Nested(NomineeSchema))
