"""HTTP routes for the nomination workflow and the public nominee listing."""

from __future__ import annotations

from typing import Any

from flask import g
from flask_smorest import Blueprint

from campaigns import services as campaign_services
from core.extensions import db
from core.http import cacheable
from core.schemas import ErrorEnvelopeSchema
from nominations import services
from nominations.schemas import (
    NominationCreateSchema,
    NominationListArgsSchema,
    NominationPageSchema,
    NominationSchema,
    NominationUpdateSchema,
    NomineeDetailSchema,
    NomineePageSchema,
    NomineeQueryArgsSchema,
    ReviewSchema,
    WithdrawSchema,
)

blp = Blueprint(
    "nominations",
    __name__,
    url_prefix="/api/v1",
    description="推荐、审核与候选人公开信息 (nominations, review, public nominees)",
)

STAFF = [{"bearerAuth": []}]
staff_required = campaign_services.staff_required


@blp.route("/campaigns/<slug>/nominations", methods=["POST"])
@blp.doc(security=STAFF)
@blp.arguments(NominationCreateSchema)
@blp.response(201, NominationSchema)
@blp.alt_response(403, schema=ErrorEnvelopeSchema, description="foreign_unit, no_unit")
@blp.alt_response(
    404,
    schema=ErrorEnvelopeSchema,
    description="campaign_not_found, category_not_found, unit_not_found",
)
@blp.alt_response(409, schema=ErrorEnvelopeSchema, description="nomination_closed")
@staff_required("unit", "admin")
def create_nomination(body: dict[str, Any], slug: str) -> Any:
    """Create a draft nomination for the caller's unit (admins name the unit)."""
    campaign = campaign_services.get_campaign(slug)
    nomination = services.create(g.account, campaign, body)
    db.session.commit()
    return nomination


@blp.route("/campaigns/<slug>/nominations", methods=["GET"])
@blp.doc(security=STAFF)
@blp.arguments(NominationListArgsSchema, location="query")
@blp.response(200, NominationPageSchema)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found")
@staff_required("unit", "reviewer", "admin")
def list_nominations(args: dict[str, Any], slug: str) -> dict[str, Any]:
    """Nominations the caller may see: its unit's, its sub-tree's, or (admins) all submitted."""
    campaign = campaign_services.get_campaign(slug)
    items, total = services.list_for(g.account, campaign, **args)
    return {"items": items, "page": args["page"], "per_page": args["per_page"], "total": total}


@blp.route("/nominations/<id:nomination_id>", methods=["GET"])
@blp.doc(security=STAFF)
@blp.response(200, NominationSchema)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="nomination_not_found")
@staff_required("unit", "reviewer", "admin")
def get_nomination(nomination_id: int) -> Any:
    """One nomination with its review history."""
    return services.get_for(g.account, nomination_id)


@blp.route("/nominations/<id:nomination_id>", methods=["PATCH"])
@blp.doc(security=STAFF)
@blp.arguments(NominationUpdateSchema)
@blp.response(200, NominationSchema)
@blp.alt_response(403, schema=ErrorEnvelopeSchema, description="not_owner")
@blp.alt_response(
    404, schema=ErrorEnvelopeSchema, description="nomination_not_found, category_not_found"
)
@blp.alt_response(
    409,
    schema=ErrorEnvelopeSchema,
    description="not_editable, nomination_closed, category_locked, concurrent_update",
)
@staff_required("unit", "admin")
def update_nomination(body: dict[str, Any], nomination_id: int) -> Any:
    """Edit a draft or returned nomination. Status and number cannot be set here."""
    nomination = services.get_for(g.account, nomination_id)
    services.update_dossier(g.account, nomination, body)
    db.session.commit()
    return nomination


@blp.route("/nominations/<id:nomination_id>/submit", methods=["POST"])
@blp.doc(security=STAFF)
@blp.response(200, NominationSchema)
@blp.alt_response(403, schema=ErrorEnvelopeSchema, description="not_owner")
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="nomination_not_found")
@blp.alt_response(
    409,
    schema=ErrorEnvelopeSchema,
    description="not_submittable, nomination_closed, unit_quota_exceeded, concurrent_update",
)
@staff_required("unit", "admin")
def submit_nomination(nomination_id: int) -> Any:
    """Submit (or resubmit after return); the unit's quota per category is checked here."""
    nomination = services.get_for(g.account, nomination_id)
    services.submit(g.account, nomination)
    db.session.commit()
    return nomination


@blp.route("/nominations/<id:nomination_id>/withdraw", methods=["POST"])
@blp.doc(security=STAFF)
@blp.arguments(WithdrawSchema)
@blp.response(200, NominationSchema)
@blp.alt_response(403, schema=ErrorEnvelopeSchema, description="not_owner")
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="nomination_not_found")
@blp.alt_response(
    409, schema=ErrorEnvelopeSchema, description="not_withdrawable, concurrent_update"
)
@staff_required("unit", "admin")
def withdraw_nomination(body: dict[str, Any], nomination_id: int) -> Any:
    """Withdraw a nomination (admins may also withdraw an approved one, with a reason)."""
    nomination = services.get_for(g.account, nomination_id)
    services.withdraw(g.account, nomination, body["comment"])
    db.session.commit()
    return nomination


@blp.route("/nominations/<id:nomination_id>/review", methods=["POST"])
@blp.doc(security=STAFF)
@blp.arguments(ReviewSchema)
@blp.response(200, NominationSchema)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="nomination_not_found")
@blp.alt_response(
    409,
    schema=ErrorEnvelopeSchema,
    description="not_reviewable, review_closed, already_recommended, recommendation_required, "
    "concurrent_update",
)
@staff_required("reviewer", "admin")
def review_nomination(body: dict[str, Any], nomination_id: int) -> Any:
    """Review: a bureau reviewer's approve recommends the nomination to the committee; the
    committee's approve assigns the public number. Return and reject need a comment."""
    nomination = services.get_for(g.account, nomination_id)
    services.review(g.account, nomination, body["decision"], body["comment"])
    db.session.commit()
    return nomination


@blp.route("/campaigns/<slug>/nominees", methods=["GET"])
@blp.arguments(NomineeQueryArgsSchema, location="query")
@blp.response(200, NomineePageSchema)
@blp.alt_response(
    404, schema=ErrorEnvelopeSchema, description="campaign_not_found, category_not_found"
)
@cacheable(5)
def list_nominees(args: dict[str, Any], slug: str) -> dict[str, Any]:
    """Approved nominees: search by name or number, filter by category, paginate."""
    campaign = campaign_services.get_public_campaign(slug)
    return services.nominee_listing(
        campaign,
        category=args["category"],
        q=args["q"],
        sort=args["sort"],
        page=args["page"],
        per_page=args["per_page"],
    )


@blp.route("/campaigns/<slug>/nominees/<number>", methods=["GET"])
@blp.response(200, NomineeDetailSchema)
@blp.alt_response(
    404, schema=ErrorEnvelopeSchema, description="campaign_not_found, nominee_not_found"
)
@cacheable(5)
def get_nominee(slug: str, number: str) -> dict[str, Any]:
    """One approved nominee: deeds and the unit's recommendation."""
    campaign = campaign_services.get_public_campaign(slug)
    return services.nominee_detail(campaign, number)
