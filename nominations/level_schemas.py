"""Input and output schemas of the recommendation chain (nominations.levels)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from nominations.levels import BUREAU_LEVELS, MAX_LEVELS, QUOTA_MAX
from nominations.models import LEVEL_DECISIONS

PLACES = validate.Range(min=0, max=QUOTA_MAX, error="名额应在 {min}–{max} 之间")


class LevelSpecSchema(Schema):
    unit_level = fields.String(
        required=True,
        validate=validate.OneOf(BUREAU_LEVELS, error="推荐层级应为 county、city 或 province"),
        metadata={"description": "the bureaus' unit level: county, city or province"},
    )
    deadline = fields.AwareDateTime(
        required=True,
        metadata={
            "description": "when the level's list locks (ISO 8601 with offset); a higher "
            "level's deadline may not come before a lower one's"
        },
    )
    quotas = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(strict=True, validate=PLACES),
        required=True,
        metadata={
            "description": "places per category code: how many nominations each bureau of the "
            "level may pass up; every category of the campaign needs one (422 quota_required)",
            "example": {"doctor": 2, "nurse": 1},
        },
    )
    stamped_form = fields.Boolean(
        metadata={
            "description": "the level's bureaus must upload their stamped recommendation form "
            "(盖章推荐表) before they pass a nomination up (409 stamped_form_required); absent: "
            "unchanged (not required for a new level)"
        },
    )


class LevelsInSchema(Schema):
    levels = fields.List(
        fields.Nested(LevelSpecSchema),
        required=True,
        validate=validate.Length(max=MAX_LEVELS),
        metadata={
            "description": "the bureau levels, lowest first (e.g. county then city), at most "
            f"{MAX_LEVELS}; the institutions nominate below them and the committee decides "
            "above them; an empty list makes the campaign single-level"
        },
    )
    unit_stamped_form = fields.Boolean(
        metadata={
            "description": "the nominating units must upload their stamped recommendation form "
            "before they submit (409 stamped_form_required); absent: unchanged. A single-level "
            "campaign requires none"
        },
    )


class LevelSchema(Schema):
    position = fields.Integer(metadata={"description": "1 for the lowest bureau level"})
    unit_level = fields.String(metadata={"description": "county, city or province"})
    label = fields.String(metadata={"description": "the level in Chinese"})
    deadline = fields.AwareDateTime(metadata={"description": "when its list locks"})
    extended_at = fields.AwareDateTime(
        allow_none=True, metadata={"description": "when the committee last extended it"}
    )
    locked = fields.Boolean(metadata={"description": "the deadline has passed"})
    stamped_form = fields.Boolean(
        metadata={"description": "its bureaus must upload a stamped form before passing up"}
    )
    quotas = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(),
        metadata={"description": "places per category code for each bureau of the level"},
    )


class PlaceSchema(Schema):
    category = fields.String(metadata={"description": "category code"})
    name = fields.String(metadata={"description": "category name"})
    used = fields.Integer(metadata={"description": "places taken by passes still standing"})
    quota = fields.Integer(metadata={"description": "the bureau's places in the category"})


class MyLevelSchema(Schema):
    unit_level = fields.String(metadata={"description": "the caller's level"})
    label = fields.String(metadata={"description": "the level in Chinese"})
    unit = fields.String(metadata={"description": "the caller's bureau"})
    unit_code = fields.String(metadata={"description": "its code"})
    deadline = fields.AwareDateTime(metadata={"description": "when its list locks"})
    locked = fields.Boolean(metadata={"description": "the deadline has passed"})
    waiting = fields.Integer(metadata={"description": "nominations waiting for its decision"})
    places = fields.List(fields.Nested(PlaceSchema), metadata={"description": "per category"})


class LevelsSchema(Schema):
    levels = fields.List(
        fields.Nested(LevelSchema), metadata={"description": "the chain, lowest level first"}
    )
    unit_quotas = fields.Dict(
        keys=fields.String(),
        values=fields.Dict(keys=fields.String(), values=fields.Integer()),
        metadata={"description": "{unit code: {category code: places}} set for single units"},
    )
    unit_stamped_form = fields.Boolean(
        metadata={"description": "the nominating units must upload a stamped form to submit"}
    )
    mine = fields.Nested(
        MyLevelSchema,
        allow_none=True,
        metadata={"description": "a bureau reviewer's own level and places; null otherwise"},
    )


class ExtendSchema(Schema):
    deadline = fields.AwareDateTime(
        required=True,
        metadata={"description": "the new deadline, later than the old one and than now"},
    )
    reason = fields.String(
        required=True,
        validate=validate.Length(min=1, max=500, error="原因应为 1–{max} 个字"),
        metadata={"description": "why the level is given more time (kept in the audit log)"},
    )


class UnitQuotasInSchema(Schema):
    quotas = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(strict=True, allow_none=True, validate=PLACES),
        required=True,
        metadata={
            "description": "places per category code for this unit (null: back to the usual "
            "figure). A nominating unit: how many it may submit; a bureau: how many it may "
            "pass up",
            "example": {"doctor": 3},
        },
    )


class LevelDecisionSchema(Schema):
    decision = fields.String(
        required=True,
        validate=validate.OneOf(LEVEL_DECISIONS),
        metadata={
            "description": "pass (推荐上报: up to the next level, one of the bureau's places), "
            "return (退回修改: to the level that passed it up, or the unit) or reject (不予推荐)",
            "example": "pass",
        },
    )
    comment = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=1000),
        metadata={
            "description": "the level's opinion; required to return or reject "
            "(422 comment_required)"
        },
    )


# --- stamped recommendation forms (nominations.level_forms) -----------------------------------


class LevelFormSchema(Schema):
    id = fields.Integer()
    kind = fields.String(metadata={"description": "pdf, jpeg or png, as read from the content"})
    content_type = fields.String(metadata={"description": "what the download is served as"})
    size = fields.Integer(metadata={"description": "bytes"})
    pages = fields.Integer(metadata={"description": "the PDF's pages (an image: 1)"})
    sha256 = fields.String(metadata={"description": "the file's SHA-256, hex"})
    original_name = fields.String(
        allow_none=True, metadata={"description": "the name it was uploaded under (shown only)"}
    )
    unit = fields.String(metadata={"description": "the unit whose form it is"})
    uploaded_by = fields.String(metadata={"description": "who uploaded it"})
    uploaded_at = fields.AwareDateTime(metadata={"description": "when"})
    replaced_at = fields.AwareDateTime(
        allow_none=True, metadata={"description": "when a newer upload replaced it"}
    )
    download_url = fields.String(
        allow_none=True,
        metadata={
            "description": "where the caller may download it (the committee, the unit whose "
            "form it is and the bureaus above); null for anyone else"
        },
    )


class LevelFormStepSchema(Schema):
    unit_level = fields.String(
        metadata={"description": "unit (the nominating unit), county, city or province"}
    )
    level_label = fields.String(metadata={"description": "the level in Chinese"})
    unit = fields.String(metadata={"description": "the unit acting there"})
    unit_code = fields.String(metadata={"description": "its code"})
    required = fields.Boolean(metadata={"description": "the committee requires a stamped form"})
    uploaded = fields.Boolean(metadata={"description": "a current form is uploaded"})
    current = fields.Nested(LevelFormSchema, allow_none=True)
    history = fields.List(
        fields.Nested(LevelFormSchema),
        metadata={"description": "the forms it replaced, newest first (kept for the trail)"},
    )
    can_upload = fields.Boolean(metadata={"description": "the caller may upload here now"})


class LevelFormsSchema(Schema):
    chained = fields.Boolean(
        metadata={"description": "false: a single-level campaign, no stamped forms"}
    )
    max_bytes = fields.Integer(metadata={"description": "the largest file accepted"})
    timezone = fields.String(metadata={"description": "the campaign's time zone, for display"})
    levels = fields.List(
        fields.Nested(LevelFormStepSchema),
        metadata={"description": "the nominating unit first, then each bureau on its way"},
    )


class LevelFormArgsSchema(Schema):
    form = fields.Integer(
        load_default=None,
        validate=validate.Range(min=1, max=2_147_483_647),
        metadata={"description": "an earlier (replaced) form's id; absent: the current one"},
    )


class LevelFormUploadArgsSchema(Schema):
    name = fields.String(
        load_default=None,
        validate=validate.Length(max=200),
        metadata={
            "description": "the file's name, kept for display only: the type is read from the "
            "content"
        },
    )
