"""HTTP routes for the nomination workflow and the public nominee listing."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, g
from flask_smorest import Blueprint

from campaigns import services as campaign_services
from core.extensions import db
from core.http import cacheable
from core.schemas import ErrorEnvelopeSchema
from nominations import ports, public_view, services
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


# The public reads answer from the cached public view (no SQL while it is current) and keep
# their serialised answer per process like the H5 pages (public_view.cached_body): reused for
# API_RENDER_SECONDS (1 s; 0 under test) without reading the counts, then while the counts it shows
# are unchanged. The schemas below still describe (and, on a miss, make) every answer.
_page_schema = NomineePageSchema()
_detail_schema = NomineeDetailSchema()


def _json(schema: Any) -> Any:
    def render(context: dict[str, Any]) -> tuple[bytes, list[tuple[str, str]]]:
        response = current_app.json.response(schema.dump(context))
        return response.get_data(), [("Content-Type", response.content_type)]

    return render


def _answer(body: public_view.Body) -> Response:
    return Response(body.data, status=200, headers=body.headers)


@blp.route("/campaigns/<slug>/nominees", methods=["GET"])
@blp.arguments(NomineeQueryArgsSchema, location="query")
@blp.response(200, NomineePageSchema)
@blp.alt_response(
    404, schema=ErrorEnvelopeSchema, description="campaign_not_found, category_not_found"
)
@cacheable(5)
def list_nominees(args: dict[str, Any], slug: str) -> Any:
    """Approved nominees: search by name or number, filter by category, paginate."""
    view = public_view.campaign_view(slug)
    if args["category"] is not None:
        view.category(args["category"])  # 404 before anything is kept
    key = ("api-nominees", *sorted(args.items()))
    body = public_view.cached_body(
        view,
        key,
        public_view.render_seconds("API_RENDER_SECONDS"),
        lambda: services.nominee_listing(view, **args),
        lambda listing: public_view.counts_fingerprint(*listing["items"]),
        _json(_page_schema),
    )
    return _answer(body)


@blp.route("/campaigns/<slug>/nominees/<number>", methods=["GET"])
@blp.response(200, NomineeDetailSchema)
@blp.alt_response(
    404, schema=ErrorEnvelopeSchema, description="campaign_not_found, nominee_not_found"
)
@cacheable(5)
def get_nominee(slug: str, number: str) -> Any:
    """One approved nominee: deeds and the unit's recommendation. A read during voting counts as
    a view of the nominee (the fraud detectors' view/vote ratio)."""
    view = public_view.campaign_view(slug)
    card = view.nominee(number[:16])
    if view.phase == "voting":
        ports.count_view(view.slug, card["number"])
    body = public_view.cached_body(
        view,
        ("api-nominee", card["number"]),
        public_view.render_seconds("API_RENDER_SECONDS"),
        lambda: services.nominee_detail(view, card["number"], count_view=False),
        lambda detail: public_view.counts_fingerprint(detail),
        _json(_detail_schema),
    )
    return _answer(body)
