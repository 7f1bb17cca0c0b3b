"""HTTP routes for login, units, accounts, campaigns and categories."""

from __future__ import annotations

from typing import Any

from flask import current_app, g, make_response
from flask.views import MethodView
from flask_smorest import Blueprint

from campaigns import services
from campaigns.schemas import (
    AccountActivateSchema,
    AccountCreateSchema,
    AccountDeactivateSchema,
    AccountListSchema,
    AccountSchema,
    CampaignAdminSchema,
    CampaignClerkSchema,
    CampaignCreateSchema,
    CampaignListSchema,
    CampaignSchema,
    CampaignUpdateSchema,
    CategoryCreateSchema,
    CategorySchema,
    CategoryUpdateSchema,
    LoginResultSchema,
    LoginSchema,
    PasswordChangeSchema,
    PasswordResetSchema,
    PhaseChangeSchema,
    UnitCreateSchema,
    UnitListSchema,
    UnitSchema,
)
from core.auth import client_ip
from core.extensions import db
from core.schemas import ErrorEnvelopeSchema
from core.web import STAFF_COOKIE, clear_credential, credential_is_cookie, set_credential

blp = Blueprint(
    "campaigns",
    __name__,
    url_prefix="/api/v1",
    description="登录、单位、账号、评选活动与奖项 (login, units, accounts, campaigns, categories)",
)

STAFF_SECURITY = [{"bearerAuth": []}]
SESSION_REFUSALS = "unauthorized, invalid_token, token_expired, token_revoked"


@blp.route("/auth/login", methods=["POST"])
@blp.arguments(LoginSchema)
@blp.response(200, LoginResultSchema)
@blp.alt_response(401, schema=ErrorEnvelopeSchema, description="invalid_credentials")
@blp.alt_response(
    403, schema=ErrorEnvelopeSchema, description="account_inactive (right password, deactivated)"
)
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


@blp.route("/auth/logout", methods=["POST"])
@blp.doc(security=STAFF_SECURITY)
@blp.response(204)
@blp.alt_response(403, schema=ErrorEnvelopeSchema, description="csrf_failed (cookie without token)")
@blp.alt_response(503, schema=ErrorEnvelopeSchema, description="service_unavailable (Redis)")
def logout() -> Any:
    """Revoke the caller's token (this session only). A missing or invalid token: 204 as well."""
    from_cookie = services.logout()
    response = make_response("", 204)
    if from_cookie:
        clear_credential(response, STAFF_COOKIE)
    return response


@blp.route("/auth/password", methods=["POST"])
@blp.doc(security=STAFF_SECURITY)
@blp.arguments(PasswordChangeSchema)
@blp.response(200, LoginResultSchema)
@blp.alt_response(401, schema=ErrorEnvelopeSchema, description=SESSION_REFUSALS)
@blp.alt_response(
    403, schema=ErrorEnvelopeSchema, description="wrong_password (current), csrf_failed"
)
@blp.alt_response(
    422, schema=ErrorEnvelopeSchema, description="validation_error, weak_password (new password)"
)
@blp.alt_response(
    429, schema=ErrorEnvelopeSchema, description="login_throttled / login_locked, with Retry-After"
)
@blp.alt_response(503, schema=ErrorEnvelopeSchema, description="service_unavailable (Redis)")
@services.staff_required()
def change_password(body: dict[str, Any]) -> Any:
    """Change one's own password; every other session ends, this one gets a fresh token."""
    account = g.account
    token = services.change_own_password(
        account, body["current_password"], body["new_password"], client_ip()
    )
    db.session.commit()
    result = LoginResultSchema().dump(
        {
            "access_token": token.token,
            "role": account.role,
            "expires_at": token.expires_at,
            "username": account.username,
            "unit_code": account.unit.code if account.unit else None,
        }
    )
    response = make_response(result, 200)
    if credential_is_cookie(STAFF_COOKIE):
        set_credential(response, STAFF_COOKIE, token.token, current_app.config["STAFF_TOKEN_TTL"])
    return response


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
        """All staff accounts, active or not."""
        return {"items": services.list_accounts()}

    @blp.doc(security=STAFF_SECURITY)
    @blp.arguments(AccountCreateSchema)
    @blp.response(201, AccountSchema)
    @blp.alt_response(404, schema=ErrorEnvelopeSchema, description="unit_not_found")
    @blp.alt_response(
        422,
        schema=ErrorEnvelopeSchema,
        description="validation_error, weak_password, unit_required, invalid_unit_level",
    )
    @blp.alt_response(409, schema=ErrorEnvelopeSchema, description="account_exists")
    @services.staff_required("admin")
    def post(self, body: dict[str, Any]) -> Any:
        """Create a staff account (password hashed with argon2)."""
        account = services.create_account(**body)
        db.session.commit()
        return account


def _admin_account_change(view: Any) -> Any:
    """What every admin change of another account documents."""
    for status, codes in (
        (401, SESSION_REFUSALS),
        (403, "forbidden (not an admin), csrf_failed"),
        (404, "account_not_found"),
    ):
        view = blp.alt_response(status, schema=ErrorEnvelopeSchema, description=codes)(view)
    return view


@blp.route("/accounts/<username>/password", methods=["POST"])
@blp.doc(security=STAFF_SECURITY)
@blp.arguments(PasswordResetSchema)
@blp.response(200, AccountSchema)
@_admin_account_change
@blp.alt_response(
    409, schema=ErrorEnvelopeSchema, description="use_password_change (one's own account)"
)
@blp.alt_response(422, schema=ErrorEnvelopeSchema, description="validation_error, weak_password")
@services.staff_required("admin")
def reset_password(body: dict[str, Any], username: str) -> Any:
    """Set another account's password (audited); all of that account's sessions end."""
    account = services.reset_password(
        services.get_account(username), body["new_password"], g.account, body["reason"]
    )
    db.session.commit()
    return account


@blp.route("/accounts/<username>/deactivate", methods=["POST"])
@blp.doc(security=STAFF_SECURITY)
@blp.arguments(AccountDeactivateSchema)
@blp.response(200, AccountSchema)
@_admin_account_change
@blp.alt_response(
    409, schema=ErrorEnvelopeSchema, description="cannot_deactivate_self, already_inactive"
)
@blp.alt_response(422, schema=ErrorEnvelopeSchema, description="validation_error, reason_required")
@services.staff_required("admin")
def deactivate_account(body: dict[str, Any], username: str) -> Any:
    """Deactivate an account with a reason (audited): it cannot log in, its sessions end."""
    account = services.set_account_active(
        services.get_account(username), False, g.account, body["reason"]
    )
    db.session.commit()
    return account


@blp.route("/accounts/<username>/activate", methods=["POST"])
@blp.doc(security=STAFF_SECURITY)
@blp.arguments(AccountActivateSchema)
@blp.response(200, AccountSchema)
@_admin_account_change
@blp.alt_response(409, schema=ErrorEnvelopeSchema, description="already_active")
@blp.alt_response(422, schema=ErrorEnvelopeSchema, description="validation_error")
@services.staff_required("admin")
def activate_account(body: dict[str, Any], username: str) -> Any:
    """Reactivate an account (audited); it logs in afresh."""
    account = services.set_account_active(
        services.get_account(username), True, g.account, body["reason"]
    )
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
@blp.doc(
    security=STAFF_SECURITY,
    responses={
        "200": {
            "description": "admin: CampaignAdmin, every rule (pressure checks and detector "
            "thresholds included); reviewer and unit: CampaignClerk (`view: clerk`), without them",
            "content": {
                "application/json": {
                    "schema": {"oneOf": [CampaignAdminSchema, CampaignClerkSchema]}
                }
            },
        }
    },
)
@blp.response(200, description="CampaignAdmin (admin) or CampaignClerk (reviewer, unit)")
@blp.alt_response(404, schema=ErrorEnvelopeSchema, description="campaign_not_found")
@services.staff_required("admin", "reviewer", "unit")
def campaign_for_staff(slug: str) -> Any:
    """A campaign as staff see it, drafts included; only admins read the full rules."""
    campaign = services.get_campaign(slug)
    if g.account.role == "admin":
        return CampaignAdminSchema().dump(campaign)
    return CampaignClerkSchema().dump(campaign)


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
    """Add a category (奖项) with its number prefix, award count, per-unit quota and optional
    award tiers (e.g. 十佳 10, 优秀 10; the award count is then their sum)."""
    category = services.add_category(services.get_campaign(slug), body)
    db.session.commit()
    return category


@blp.route("/campaigns/<slug>/categories/<code>", methods=["PATCH"])
@blp.doc(security=STAFF_SECURITY)
@blp.arguments(CategoryUpdateSchema)
@blp.response(200, CategorySchema)
@blp.alt_response(
    404, schema=ErrorEnvelopeSchema, description="campaign_not_found, category_not_found"
)
@blp.alt_response(
    409, schema=ErrorEnvelopeSchema, description="awards_locked (publicity or closed)"
)
@services.staff_required("admin")
def update_category(body: dict[str, Any], slug: str, code: str) -> Any:
    """Change a category's award count or award tiers (audited as category.update). Allowed
    until the campaign enters publicity; a result version already computed keeps the tiers it
    was computed with until it is recomputed or adjusted."""
    campaign = services.get_campaign(slug)
    category = services.update_category(campaign, services.get_category(campaign, code), body)
    db.session.commit()
    return category
