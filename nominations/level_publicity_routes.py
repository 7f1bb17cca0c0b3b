"""HTTP routes of a level's 公示 (nominations.level_publicity): a bureau's reviewer, or the
committee for any bureau of the chain, opens, reads and withdraws the publicities of the bureau's
passed-up list under ``/api/v1/campaigns/<slug>/level-publicity/<unit_code>``. The public reads
them on the H5 page ``/c/<slug>/level-publicity`` (pages.h5_level_publicity)."""

from __future__ import annotations

from typing import Any

from flask import g
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from campaigns import services as campaign_services
from core.extensions import db
from core.schemas import ErrorEnvelopeSchema
from nominations import level_publicity
from nominations.form_fields import PublicExtraSchema
from nominations.level_publicity import CONTACT_MAX, DAYS_MAX, REASON_MAX

blp = Blueprint(
    "level_publicity",
    __name__,
    url_prefix="/api/v1",
    description="层级公示 (publicity of a recommendation level's list)",
)

STAFF = [{"bearerAuth": []}]
PATH = "/campaigns/<slug>/level-publicity/<unit_code>"
ACCESS = "not_your_bureau, not_a_level"
NOT_FOUND = "campaign_not_found, unit_not_found (also a unit outside a reviewer's sub-tree)"


class LevelPublicityOpenSchema(Schema):
    contact = fields.String(
        required=True,
        validate=validate.Length(min=1, max=CONTACT_MAX, error="联系方式应为 1–{max} 个字"),
        metadata={
            "description": "how to raise an objection with the bureau (office, phone, address, "
            "e-mail), shown on the public page as entered",
            "example": "县卫生健康局医政股，电话 0471-1234567，地址 县府路 8 号",
        },
    )
    days = fields.Integer(
        load_default=5,
        strict=True,
        validate=validate.Range(min=1, max=DAYS_MAX, error="公示天数应为 {min}–{max} 天"),
        metadata={"description": f"length of the period in days, 1–{DAYS_MAX} (default 5)"},
    )
    working_days = fields.Boolean(
        load_default=True,
        metadata={
            "description": "count working days (Monday to Friday; holidays are not known) "
            "instead of calendar days (default true)"
        },
    )
    starts_at = fields.AwareDateTime(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "when the period starts (ISO 8601 with offset), not in the past and "
            "at most 90 days ahead; omitted: now"
        },
    )


class LevelPublicityWithdrawSchema(Schema):
    reason = fields.String(
        required=True,
        validate=validate.Length(min=1, max=REASON_MAX, error="原因应为 1–{max} 个字"),
        metadata={"description": "why the publicity is withdrawn (kept in the audit log)"},
    )


class LevelPublicityItemSchema(Schema):
    nomination_id = fields.Integer(metadata={"description": "the nomination (staff only)"})
    name = fields.String(metadata={"description": "the nominee's name"})
    unit = fields.String(metadata={"description": "the nominating unit"})
    category = fields.String(metadata={"description": "category code"})
    category_name = fields.String(metadata={"description": "category name"})
    title = fields.String(metadata={"description": "职称"})
    summary = fields.String(metadata={"description": "the one-line summary of the deeds"})
    extra = fields.List(
        fields.Nested(PublicExtraSchema),
        metadata={"description": "the campaign's own fields marked public (never a phone)"},
    )


class LevelPublicitySchema(Schema):
    id = fields.Integer()
    unit = fields.String(metadata={"description": "the bureau's name when it was opened"})
    unit_level = fields.String(metadata={"description": "county, city or province"})
    level_label = fields.String(metadata={"description": "the level in Chinese"})
    starts_at = fields.AwareDateTime(metadata={"description": "start of the period"})
    ends_at = fields.AwareDateTime(
        metadata={"description": "end of the period: local midnight after its last day"}
    )
    days = fields.Integer(metadata={"description": "length in days"})
    working_days = fields.Boolean(metadata={"description": "counted in working days"})
    contact = fields.String(metadata={"description": "where objections go"})
    status = fields.String(metadata={"description": "scheduled, open, closed or withdrawn"})
    status_label = fields.String(metadata={"description": "the status in Chinese"})
    items = fields.List(
        fields.Nested(LevelPublicityItemSchema),
        metadata={"description": "the snapshot taken when it was opened, by category"},
    )
    opened_by = fields.String(metadata={"description": "who opened it"})
    created_at = fields.AwareDateTime(metadata={"description": "when it was opened"})
    withdrawn_at = fields.AwareDateTime(allow_none=True)
    withdrawn_by = fields.String(allow_none=True)
    withdraw_reason = fields.String(allow_none=True)
    public_url = fields.String(metadata={"description": "the public H5 page of this publicity"})


class LevelPublicityListSchema(Schema):
    items = fields.List(
        fields.Nested(LevelPublicitySchema), metadata={"description": "newest first"}
    )


def _answer(slug: str, publicity: level_publicity.LevelPublicity) -> dict[str, Any]:
    return level_publicity.describe(publicity) | {
        "public_url": f"/c/{slug}/level-publicity/{publicity.id}"
    }


@blp.route(PATH, methods=["POST"])
@blp.doc(security=STAFF)
@blp.arguments(
    LevelPublicityOpenSchema,
    example={"contact": "县卫生健康局医政股，电话 0471-1234567", "days": 5, "working_days": True},
)
@blp.response(201, LevelPublicitySchema)
@blp.alt_response(403, schema=ErrorEnvelopeSchema, description=ACCESS)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description=NOT_FOUND)
@blp.alt_response(
    409, schema=ErrorEnvelopeSchema, description="nothing_to_publish, publicity_overlap"
)
@blp.alt_response(422, schema=ErrorEnvelopeSchema, description="invalid_start, contact_required")
@campaign_services.staff_required("reviewer", "admin")
def open_publicity(body: dict[str, Any], slug: str, unit_code: str) -> Any:
    """Open a 公示 of a bureau's passed-up list (层级公示).

    A reviewer of the bureau, or the committee for any bureau of the chain. Publishes a snapshot
    of what the bureau passed up and still holds a place for — per category: name, unit, 职称,
    summary and the public form fields — with the bureau's name, the period and ``contact`` for
    objections, from ``starts_at`` (default now) for ``days`` (working days by default, counted
    in the campaign's time zone; the period ends at local midnight after its last day).
    Refusals: a unit outside a reviewer's sub-tree 404 unit_not_found, another bureau 403
    not_your_bureau, a unit that is no level of the chain 403 not_a_level, nothing passed up
    409 nothing_to_publish, a period overlapping another of the bureau's 409 publicity_overlap.
    Audited as ``level_publicity.open``."""
    campaign = campaign_services.get_campaign(slug)
    unit = level_publicity.bureau_for(g.account, campaign, unit_code)
    publicity = level_publicity.open_publicity(g.account, campaign, unit, **body)
    db.session.commit()
    return _answer(campaign.slug, publicity)


@blp.route(PATH, methods=["GET"])
@blp.doc(security=STAFF)
@blp.response(200, LevelPublicityListSchema)
@blp.alt_response(403, schema=ErrorEnvelopeSchema, description=ACCESS)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description=NOT_FOUND)
@campaign_services.staff_required("reviewer", "admin")
def list_publicities(slug: str, unit_code: str) -> dict[str, Any]:
    """A bureau's 公示 of its passed-up list, newest first (层级公示).

    Every status (scheduled, open, closed, withdrawn with its reason), with the snapshot each
    published. Same access as opening one."""
    campaign = campaign_services.get_campaign(slug)
    unit = level_publicity.bureau_for(g.account, campaign, unit_code)
    return {"items": [_answer(slug, p) for p in level_publicity.of_bureau(campaign, unit)]}


@blp.route(f"{PATH}/<id:publicity_id>", methods=["DELETE"])
@blp.doc(security=STAFF)
@blp.arguments(
    LevelPublicityWithdrawSchema, example={"reason": "名单中一人已被上级退回，更正后重新公示"}
)
@blp.response(200, LevelPublicitySchema)
@blp.alt_response(403, schema=ErrorEnvelopeSchema, description=ACCESS)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description=f"{NOT_FOUND}, publicity_not_found")
@blp.alt_response(
    409, schema=ErrorEnvelopeSchema, description="publicity_ended, publicity_withdrawn"
)
@blp.alt_response(422, schema=ErrorEnvelopeSchema, description="reason_required")
@campaign_services.staff_required("reviewer", "admin")
def withdraw_publicity(body: dict[str, Any], slug: str, unit_code: str, publicity_id: int) -> Any:
    """Withdraw a scheduled or open 公示 of a bureau's list, with a reason.

    Same access as opening one. The public page then shows it as withdrawn, without its list;
    its record and the reason stay (audited as ``level_publicity.withdraw``). A period already
    over is 409 publicity_ended; one already withdrawn 409 publicity_withdrawn."""
    campaign = campaign_services.get_campaign(slug)
    unit = level_publicity.bureau_for(g.account, campaign, unit_code)
    publicity = level_publicity.get_publicity(campaign, unit, publicity_id)
    level_publicity.withdraw(publicity, g.account, body["reason"])
    db.session.commit()
    return _answer(campaign.slug, publicity)
