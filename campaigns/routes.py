"""HTTP routes for login, units, accounts, campaigns and categories."""

from __future__ import annotations

from typing import Any

from flask import g
from flask.views import MethodView
from flask_smorest import Blueprint

from campaigns import services
from campaigns.schemas import (
    AccountCreateSchema,
    AccountListSchema,
    AccountSchema,
    CampaignAdminSchema,
    CampaignCreateSchema,
    CampaignListSchema,
    CampaignSchema,
    CampaignUpdateSchema,
    CategoryCreateSchema,
    CategorySchema,
    LoginResultSchema,
    LoginSchema,
    PhaseChangeSchema,
    UnitCreateSchema,
    UnitListSchema,
    UnitSchema,
)
from core.auth import client_ip
from core.extensions import db
from core.schemas import ErrorEnvelopeSchema

blp = Blueprint(
    "campaigns",
    __name__,
    url_prefix="/api/v1",
    description="登录、单位、账号、评选活动与奖项 (login, units, accounts, campaigns, categories)",
)

STAFF_SECURITY = [{"bearerAuth": []}]


@blp.route("/auth/login", methods=["POST"])
@blp.arguments(LoginSchema)
@blp.response(200, LoginResultSchema)
@blp.alt_response(401, schema=ErrorEnvelopeSchema, description="invalid_credentials")
@blp.alt_response(
    429, schema=ErrorEnvelopeSchema, description="login_throttled / login_locked, with Retry-After"
)
@blp.alt_response(503, schema=ErrorEnvelopeSchema, description="service_unavailable (Redis)")
def login(body: dict[str, Any]) -> dict[str, Any]:
    """Staff login: username and password for a signed, expiring bearer token."""
    account, token = services.login(body["username"], body["password"], client_ip())
    db.session.commit()
    return {
        "access_token": token.token,
        "role": account.role,
        "expires_at": token.expires_at,
        "username": account.username,
        "unit_code": account.unit.code if account.unit else None,
    }


@blp.route("/auth/me", methods=["GET"])
@blp.response(200, AccountSchema)
@blp.doc(security=STAFF_SECURITY)
@services.staff_required()
def me() -> Any:
    """The signed-in staff account."""

    return g.account


@blp.route("/units")
class Units(MethodView):
    @blp.doc(security=STAFF_SECURITY)
    @blp.response(200, UnitListSchema)
    @services.staff_required("admin", "reviewer", "unit")
    def get(self) -> dict[str, Any]:
        """Units the caller can see: all (admins), the sub-tree (reviewers), its own (a unit)."""
        from flask import g

        return {"items": services.visible_units(g.account)}

    @blp.doc(security=STAFF_SECURITY)
    @blp.arguments(UnitCreateSchema)
    @blp.response(201, UnitSchema)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="unit_not_found (parent_code)")
    @blp.alt_response(409, schema=ErrorEnvelopeSchema, description="unit_exists")
    @services.staff_required("admin")
    def post(self, body: dict[str, Any]) -> Any:
        """Create a unit under its parent (province → city → county → institution)."""
        unit = services.create_unit(**body)
        db.session.commit()
        return unit


@blp.route("/accounts")
class Accounts(MethodView):
    @blp.doc(security=STAFF_SECURITY)
    @blp.response(200, AccountListSchema)
    @services.staff_required("admin")
    def get(self) -> dict[str, Any]:
        """All staff accounts."""
        return {"items": services.list_accounts()}

    @blp.doc(security=STAFF_SECURITY)
    @blp.arguments(AccountCreateSchema)
    @blp.response(201, AccountSchema)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="unit_not_found")
    @blp.alt_response(409, schema=ErrorEnvelopeSchema, description="account_exists")
    @services.staff_required("admin")
    def post(self, body: dict[str, Any]) -> Any:
        """Create a staff account (password hashed with argon2)."""
        account = services.create_account(**body)
        db.session.commit()
        return account


@blp.route("/campaigns")
class Campaigns(MethodView):
    @blp.response(200, CampaignListSchema)
    def get(self) -> dict[str, Any]:
        """Published campaigns (every phase but draft)."""
        return {"items": services.list_campaigns()}

    @blp.doc(security=STAFF_SECURITY)
    @blp.arguments(CampaignCreateSchema)
    @blp.response(201, CampaignAdminSchema)
    @blp.alt_response(409, schema=ErrorEnvelopeSchema, description="campaign_exists")
    @services.staff_required("admin")
    def post(self, body: dict[str, Any]) -> Any:
        """Create a campaign in the draft phase with its windows, voting rules and weights."""
        campaign = services.create_campaign(body)
        db.session.commit()
        return campaign


@blp.route("/campaigns/<slug>")
class CampaignDetail(MethodView):
    @blp.response(200, CampaignSchema)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found")
    def get(self, slug: str) -> Any:
        """A campaign, its categories, phase, windows and public rules."""
        return services.get_public_campaign(slug)

    @blp.doc(security=STAFF_SECURITY)
    @blp.arguments(CampaignUpdateSchema)
    @blp.response(200, CampaignAdminSchema)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found")
    @blp.alt_response(409, schema=ErrorEnvelopeSchema, description="campaign_closed, rules_locked")
    @services.staff_required("admin")
    def patch(self, body: dict[str, Any], slug: str) -> Any:
        """Edit a campaign. Voting rules are locked while voting is under way."""
        campaign = services.update_campaign(services.get_campaign(slug), body)
        db.session.commit()
        return campaign


@blp.route("/admin/campaigns/<slug>", methods=["GET"])
@blp.doc(security=STAFF_SECURITY)
@blp.response(200, CampaignAdminSchema)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found")
@services.staff_required("admin", "reviewer", "unit")
def campaign_for_staff(slug: str) -> Any:
    """A campaign as staff see it, drafts included."""
    return services.get_campaign(slug)


@blp.route("/campaigns/<slug>/phase", methods=["POST"])
@blp.doc(security=STAFF_SECURITY)
@blp.arguments(PhaseChangeSchema)
@blp.response(200, CampaignAdminSchema)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found")
@blp.alt_response(
    409,
    schema=ErrorEnvelopeSchema,
    description="phase_unchanged, no_categories; the awards rules: no_final_result, "
    "not_published, unpublished_result, publicity_running, objections_open",
)
@services.staff_required("admin")
def change_phase(body: dict[str, Any], slug: str) -> Any:
    """Move the campaign forward, or back with a reason (audited)."""
    campaign = services.change_phase(services.get_campaign(slug), body["phase"], body["reason"])
    db.session.commit()
    return campaign


@blp.route("/campaigns/<slug>/categories", methods=["POST"])
@blp.doc(security=STAFF_SECURITY)
@blp.arguments(CategoryCreateSchema)
@blp.response(201, CategorySchema)
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found")
@blp.alt_response(409, schema=ErrorEnvelopeSchema, description="categories_locked, category_exists")
@services.staff_required("admin")
def add_category(body: dict[str, Any], slug: str) -> Any:
    """Add a category (奖项) with its number prefix, award count and per-unit quota."""
    category = services.add_category(services.get_campaign(slug), body)
    db.session.commit()
    return category
